#!/bin/bash
# The unix socket is made 0660 whatever the umask; the default socket's
# directory is made 0750 when the daemon creates it, and a directory that
# exists is left as it is; a -listen=unix: path in a missing directory is an
# error that says so (the daemon does not create it).
. "$(dirname "$0")/lib.sh"
need python3 stat

# run_default NAME: the daemon on its default socket ($USBD_RUN_DIR/NAME.sock),
# under the umask already set; waits for ready.
run_default() {
    "$USBD_BIN" -kind=mem -size=1MiB -nbd-device=none -name=$1 2>$TMP/$1.log &
    P=$!; PIDS+=($P)
    for _ in $(seq 100); do grep -q "ready:" $TMP/$1.log && return 0; sleep 0.05; done
    cat $TMP/$1.log; fail "daemon $1 did not become ready"
}
connects() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); assert len(s.recv(18)) == 18' "$1"; }

for m in 000 077; do
    umask $m
    start_usbd u$m -kind=mem -size=1MiB
    [ "$(stat -c %a $SOCK)" = 660 ] || fail "umask $m: socket mode $(stat -c %a $SOCK), want 660"
    [ "$(stat -c %a $TMP)" = 700 ] || fail "umask $m: the daemon changed the mode of a directory it did not make"
    connects $SOCK || fail "umask $m: cannot connect"
    stop_usbd

    export USBD_RUN_DIR=$TMP/run$m
    run_default d$m
    umask 022
    [ "$(stat -c %a $USBD_RUN_DIR)" = 750 ] || fail "umask $m: default directory mode $(stat -c %a $USBD_RUN_DIR), want 750"
    [ "$(stat -c %a $USBD_RUN_DIR/d$m.sock)" = 660 ] || fail "umask $m: default socket mode $(stat -c %a $USBD_RUN_DIR/d$m.sock), want 660"
    connects $USBD_RUN_DIR/d$m.sock || fail "umask $m: cannot connect to the default socket"
    stop_usbd $P
    ok "umask $m: socket 0660, default directory 0750"
done

# A default directory that exists keeps its mode.
mkdir -m 0777 $TMP/mine; chmod 0777 $TMP/mine
export USBD_RUN_DIR=$TMP/mine
umask 077
run_default m
umask 022
[ "$(stat -c %a $TMP/mine)" = 777 ] || fail "an existing default directory was changed to $(stat -c %a $TMP/mine)"
[ "$(stat -c %a $TMP/mine/m.sock)" = 660 ] || fail "socket in an existing directory: mode $(stat -c %a $TMP/mine/m.sock)"
stop_usbd $P
unset USBD_RUN_DIR
ok "an existing directory is left as it is"

rc=0
"$USBD_BIN" -kind=mem -size=1MiB -nbd-device=none -listen=unix:$TMP/nodir/x.sock 2>$TMP/nodir.log || rc=$?
[ $rc = 1 ] || fail "a socket in a missing directory: exit status $rc, want 1"
grep -q "directory $TMP/nodir does not exist" $TMP/nodir.log || { cat $TMP/nodir.log; fail "missing directory: unclear message"; }
[ ! -e $TMP/nodir ] || fail "the daemon created the directory of -listen=unix:PATH"
ok "unix socket mode"
