#!/bin/bash
# -send-timeout: a client that floods reads and never reads the replies is
# disconnected once nothing could be sent to it for that long, with one log
# line; the other clients are served all along, and the daemon still stops
# at once (nothing is left for the stop's grace period to cut off).
. "$(dirname "$0")/lib.sh"
need python3

start_usbd st -kind=mem -size=64MiB -send-timeout=2s
python3 - "$SOCK" "$LOG" <<'PY'
import re, socket, struct, sys, time, nbdraw as n
S, LOG = sys.argv[1], sys.argv[2]

hog = n.Raw(S); hog.go(); hog.s.setblocking(False)
try:
    for i in range(100000):
        hog.s.send(struct.pack(">IHHQQI", n.REQ_MAGIC, 0, n.CMD_READ, i, 0, 1 << 20))
except BlockingIOError:
    pass
t0 = time.time()

# Served while the hog is stalled, and after it is gone.
c = n.Raw(S); c.go()
assert c.cmd(n.CMD_WRITE, 0, 4, data=b"live")[0] == 0

drop = None
while time.time() - t0 < 8:
    if "not reading its replies" in open(LOG).read():
        drop = time.time() - t0; break
    time.sleep(0.1)
assert drop is not None, "no disconnect 8s after the client stopped reading (-send-timeout=2s)"
assert drop < 5, "disconnected after %.1fs, timeout 2s" % drop

# The server's end is closed: what was sent can be drained, then EOF.
hog.s.setblocking(True); hog.s.settimeout(5)
while True:
    try:
        if not hog.s.recv(1 << 20):
            break
    except ConnectionResetError:
        break
assert c.cmd(n.CMD_READ, 0, 4) == (0, b"live")
c.close()
print("ok: the stalled client is cut off after %.1fs, another is served" % drop)
PY
grep "warn:.*client 1 " $LOG | grep -q "client not reading its replies: nothing could be sent for 2s, disconnecting" ||
    fail "the drop is not logged as one warn line"
[ "$(grep -c "warn:.*client 1 " $LOG)" = 1 ] || { grep "client 1 " $LOG; fail "more than one warn line for the dropped client"; }
stop_usbd
grep -q "clients still busy" $LOG && fail "the stop still had to cut off a client"
ok "send timeout"
