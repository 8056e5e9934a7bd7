#!/bin/bash
# The command line: a true --help, one-line errors with exit status 2 for bad
# flags, socket in use, stale sockets, SIGINT/SIGTERM exit 0, SIGHUP flushes,
# the config file, -nbd-device without a kernel driver.
. "$(dirname "$0")/lib.sh"
need nbdinfo

expect_usage_error() { # expected-message flags...
    local want=$1; shift
    local rc=0
    "$USBD_BIN" "$@" >$TMP/out 2>$TMP/err || rc=$?
    [ $rc = 2 ] || fail "'$*': exit status $rc, want 2"
    [ "$(wc -l < $TMP/err)" = 1 ] || { cat $TMP/err; fail "'$*': error is not one line"; }
    grep -qF -- "$want" $TMP/err || { cat $TMP/err; fail "'$*': message lacks '$want'"; }
}

# --help documents every flag the parser knows, and exits 0.
"$USBD_BIN" --help > $TMP/help
for f in kind size file listen name description readonly nbd-device nbd-connections threads \
         max-clients max-inflight handshake-timeout log-level config; do
    grep -q -- "-$f" $TMP/help || fail "--help does not mention -$f"
done
"$USBD_BIN" -h | cmp -s - $TMP/help || fail "-h differs from --help"
"$USBD_BIN" --version | grep -q "^usbd-objstore [0-9]" || fail "--version"

expect_usage_error "unknown flag -sise" -kind=mem -sise=1GiB
expect_usage_error "-kind=mem needs a -size above 0" -kind=mem
expect_usage_error "-size=lots: not a size" -kind=mem -size=lots
expect_usage_error "must be a multiple of 4096" -kind=mem -size=1000
expect_usage_error "-kind=mem needs a -size above 0" -kind=mem -size=0
expect_usage_error "-kind=tape: unknown kind" -kind=tape -size=1GiB
expect_usage_error "-kind=file needs -file=PATH" -kind=file
expect_usage_error "unexpected argument 'extra'" -kind=mem -size=1GiB extra
expect_usage_error "-threads=0: expected 1 to 1024" -kind=mem -size=1GiB -threads=0
expect_usage_error "-nbd-device=/tmp/x: expected auto, none or /dev/nbdN" -kind=mem -size=1GiB -nbd-device=/tmp/x
expect_usage_error "-log-level=loud" -kind=mem -size=1GiB -log-level=loud
expect_usage_error "-gadget needs the kernel's nbd device" -kind=mem -size=1GiB -gadget -nbd-device=none
expect_usage_error "at most 59 characters with -gadget" -kind=mem -size=1GiB -gadget -name=$(printf 'v%.0s' $(seq 60))
expect_usage_error "-gadget-vendor-id=0x12345: expected a hex id" -kind=mem -size=1GiB -gadget-vendor-id=0x12345
ok "usage errors"

# -gadget where the nbd driver is missing (this machine): one clear error,
# exit 1, and no socket or configfs entry left behind.
if [ ! -e /sys/block/nbd0 ] && ! modprobe -n nbd 2>/dev/null; then
    rc=0
    "$USBD_BIN" -kind=mem -size=1MiB -gadget -gadget-configfs=$TMP/cfs -listen=unix:$TMP/g.sock \
        2>$TMP/gerr || rc=$?
    [ $rc = 1 ] || { cat $TMP/gerr; fail "-gadget without nbd: status $rc, want 1"; }
    grep -q "no /dev/nbdX to put behind the USB drive" $TMP/gerr || { cat $TMP/gerr; fail "-gadget without nbd: message"; }
    [ ! -e $TMP/g.sock ] && [ ! -e $TMP/cfs ] || fail "-gadget without nbd left a socket or configfs entry"
    ok "-gadget without an nbd driver: exit 1, nothing left"
fi

# Both flag spellings; answers on the socket.
start_usbd a --kind=mem --size 32MiB
nbdinfo --size "$URI" | grep -qx $((32 << 20)) || fail "--size 32MiB"

# The socket is in use: a second daemon refuses, the first keeps serving.
rc=0
"$USBD_BIN" -kind=mem -size=1MiB -listen=unix:$SOCK -nbd-device=none 2>$TMP/err2 || rc=$?
[ $rc = 1 ] || fail "second daemon on a busy socket: status $rc, want 1"
grep -q "socket $SOCK is in use by another running server" $TMP/err2 || { cat $TMP/err2; fail "busy socket message"; }
nbdinfo --size "$URI" >/dev/null || fail "first daemon stopped serving"

# SIGHUP flushes and the daemon goes on; SIGINT stops it with status 0.
kill -HUP $USBD_PID
for _ in $(seq 50); do grep -q "SIGHUP: flush done" $LOG && break; sleep 0.1; done
grep -q "SIGHUP: flush done" $LOG || fail "SIGHUP not handled"
kill -INT $USBD_PID
wait $USBD_PID || fail "exit status $? after SIGINT"
grep -q "stopped cleanly" $LOG || fail "no clean-stop line"

# A stale socket file (its server died) is replaced; a non-socket is not.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" $TMP/stale.sock
[ -S $TMP/stale.sock ] || fail "could not make a stale socket"
"$USBD_BIN" -kind=mem -size=1MiB -listen=unix:$TMP/stale.sock -nbd-device=none 2>$TMP/s.log &
P=$!; PIDS+=($P)
for _ in $(seq 100); do grep -q "ready:" $TMP/s.log && break; sleep 0.05; done
grep -q "replaced stale socket" $TMP/s.log || fail "stale socket not replaced"
stop_usbd $P
[ ! -e $TMP/stale.sock ] || fail "socket file left behind after stop"
echo data > $TMP/notasock
rc=0; "$USBD_BIN" -kind=mem -size=1MiB -listen=unix:$TMP/notasock -nbd-device=none 2>$TMP/err3 || rc=$?
[ $rc = 1 ] && grep -q "exists and is not a socket" $TMP/err3 || fail "a regular file must not be replaced"
[ "$(cat $TMP/notasock)" = data ] || fail "regular file was touched"

# The config file: same keys as the flags; the command line wins.
cat > $TMP/tv.conf <<CONF
# board config
kind = mem
size = 8MiB
name = tv
CONF
start_usbd conf -config=$TMP/tv.conf -size=16MiB
nbdinfo --json "$URI" | grep -q '"export-name": "tv"' || fail "config file name"
nbdinfo --size "$URI" | grep -qx $((16 << 20)) || fail "command line must override the config file"
stop_usbd
echo "sise = 1" > $TMP/bad.conf
expect_usage_error "bad.conf:1: unknown key 'sise'" -config=$TMP/bad.conf

# -nbd-device: auto without a driver says so in one line and serves; an
# explicit device that cannot be attached is fatal.
if [ ! -e /sys/block/nbd0 ]; then
    "$USBD_BIN" -kind=mem -size=1MiB -listen=unix:$TMP/auto.sock -nbd-device=auto 2>$TMP/auto.log &
    P=$!; PIDS+=($P)
    for _ in $(seq 100); do grep -q "ready:" $TMP/auto.log && break; sleep 0.05; done
    [ "$(grep -c "no nbd kernel driver" $TMP/auto.log)" = 1 ] || { cat $TMP/auto.log; fail "auto: want one line about the missing driver"; }
    nbdinfo --size "nbd+unix:///?socket=$TMP/auto.sock" >/dev/null || fail "auto: sockets not served"
    stop_usbd $P
    rc=0; "$USBD_BIN" -kind=mem -size=1MiB -listen=unix:$TMP/x.sock -nbd-device=/dev/nbd7 2>$TMP/x.log || rc=$?
    [ $rc = 1 ] || fail "-nbd-device=/dev/nbd7 without a driver: status $rc, want 1"
    [ ! -e $TMP/x.sock ] || fail "socket left behind after a failed start"
else
    echo "note: this machine has an nbd driver; the no-driver checks are skipped"
fi
ok "cli"
