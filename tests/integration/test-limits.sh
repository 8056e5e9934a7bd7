#!/bin/bash
# Limits that protect the daemon: handshake timeout, -max-clients, and TCP
# listeners on 127.0.0.1 and ::1.
. "$(dirname "$0")/lib.sh"
need python3 nbdinfo

start_usbd lim -kind=mem -size=4MiB -max-clients=2 -handshake-timeout=1s
python3 - "$SOCK" <<'PY'
import sys, time, socket, nbdraw as n
S = sys.argv[1]
# A client that connects and says nothing is cut off after the timeout.
c = n.Raw(S, timeout=10); c.recv(18)
t = time.time()
assert c.closed_by_server() and time.time() - t < 5
# -max-clients=2: the third connection is refused; the first two are served.
a = n.Raw(S); a.go(); b = n.Raw(S); b.go()
x = n.Raw(S)
try:
    x.recv(18); raise AssertionError("third client got a greeting")
except (n.Closed, ConnectionResetError):
    pass
assert a.cmd(n.CMD_READ, 0, 4)[0] == 0 and b.cmd(n.CMD_READ, 0, 4)[0] == 0
a.close(); b.close()
print("ok: handshake timeout and max-clients")
PY
grep -q "option negotiation not finished within 1s" $LOG || fail "no log line for the handshake timeout"
grep -q "refusing a connection: 2 clients already" $LOG || fail "no log line for max-clients"
stop_usbd

PORT=$((20000 + RANDOM % 20000))
"$USBD_BIN" -kind=mem -size=4MiB -listen=tcp:$PORT -listen=tcp:[::1]:$PORT -listen=unix:$TMP/t.sock \
    -nbd-device=none 2>$TMP/tcp.log &
P=$!; PIDS+=($P)
for _ in $(seq 100); do grep -q "ready:" $TMP/tcp.log && break; sleep 0.05; done
grep -q "ready:" $TMP/tcp.log || { cat $TMP/tcp.log; skip "could not listen on TCP port $PORT"; }
nbdinfo --size "nbd://127.0.0.1:$PORT" | grep -qx 4194304 || fail "tcp 127.0.0.1"
if [ -e /proc/net/if_inet6 ]; then nbdinfo --size "nbd://[::1]:$PORT" | grep -qx 4194304 || fail "tcp ::1"; fi
stop_usbd $P
rc=0; "$USBD_BIN" -kind=mem -size=4MiB -listen=tcp:127.0.0.1:99999 -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "bad port" $TMP/e || fail "bad port"
ok "limits"
