#!/bin/bash
# -listen=tcp: on an address that other machines can reach (0.0.0.0, [::])
# is a usage error unless -listen-insecure is given: NBD has no encryption
# or authentication. With it, the daemon starts and says so in one WARN
# line. Loopback needs no flag and gets no warning. The 0.0.0.0 listener
# lives for a moment only, and the test connects to 127.0.0.1 alone.
. "$(dirname "$0")/lib.sh"
need python3

PORT=$((20000 + RANDOM % 20000))
expect_refused() { # spec [flags...]
    local spec=$1; shift
    local rc=0
    timeout 10 "$USBD_BIN" -kind=mem -size=1MiB -nbd-device=none -listen=$spec "$@" >$TMP/out 2>$TMP/err || rc=$?
    [ $rc = 2 ] || { cat $TMP/err; fail "-listen=$spec without -listen-insecure: exit status $rc, want 2"; }
    [ "$(wc -l < $TMP/err)" = 1 ] || { cat $TMP/err; fail "-listen=$spec: the error is not one line"; }
    grep -qF -- "-listen=$spec: other machines could connect, and NBD has no encryption or authentication: add -listen-insecure" $TMP/err ||
        { cat $TMP/err; fail "-listen=$spec: the error does not say why and what to add"; }
}
expect_refused tcp:0.0.0.0:$PORT
expect_refused "tcp:[::]:$PORT"
expect_refused tcp:0.0.0.0:$PORT -listen-insecure=false
printf 'kind = mem\nsize = 1MiB\nlisten = tcp:0.0.0.0:%s\n' $PORT > $TMP/net.conf
expect_refused tcp:0.0.0.0:$PORT -config=$TMP/net.conf
ok "non-loopback addresses refused without -listen-insecure"

# Loopback: no flag needed, no warning.
start_usbd lo -kind=mem -size=1MiB -listen=tcp:127.0.0.1:$PORT -listen=tcp:localhost:$((PORT + 1))
grep -q "warn:" $LOG && { cat $LOG; fail "a warning for loopback listeners"; }
stop_usbd
ok "loopback listeners start without a warning"

start_usbd any -kind=mem -size=1MiB -listen=tcp:0.0.0.0:$PORT -listen-insecure
[ "$(grep -c "warn:" $LOG)" = 1 ] || { cat $LOG; fail "want exactly one warning"; }
grep "warn:" $LOG | grep -q "listening on tcp:0.0.0.0:$PORT, which other machines can reach: NBD has no encryption or authentication" ||
    { cat $LOG; fail "the warning does not name the address and what is missing"; }
python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5); assert len(s.recv(18)) == 18' $PORT ||
    fail "no greeting on 127.0.0.1:$PORT"
stop_usbd
ok "-listen-insecure: one warning at start"
