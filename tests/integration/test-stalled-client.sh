#!/bin/bash
# A client that floods 1 MiB reads and never reads its replies (the one that
# makes nbdkit 1.32 abort) stalls only itself: memory stays bounded, other
# clients are served, and it can disconnect or be cut off at stop.
. "$(dirname "$0")/lib.sh"
need python3 nbdsh

start_usbd st -kind=mem -size=256MiB -max-inflight=32MiB
python3 - "$SOCK" $USBD_PID <<'PY'
import socket, struct, sys, time, nbdraw as n
S, pid = sys.argv[1], sys.argv[2]

def rss_mib():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

# Fill a bit so reads copy real pages.
c = n.Raw(S); c.go()
c.cmd(n.CMD_WRITE, 0, 1 << 20, data=b"z" * (1 << 20)); c.close()
base = rss_mib()

hogs = []
for _ in range(3):
    h = n.Raw(S); h.go(); h.s.setblocking(False)
    sent = 0
    try:
        for i in range(100000):
            h.s.send(struct.pack(">IHHQQI", n.REQ_MAGIC, 0, n.CMD_READ, i, 0, 1 << 20))
            sent += 1
    except BlockingIOError:
        pass
    hogs.append(h)
time.sleep(1)
grown = rss_mib() - base
# 3 connections x (32 MiB budget + buffers): far below what 100k x 1 MiB would cost.
assert grown < 3 * 64, "RSS grew by %d MiB" % grown
print("ok: 3 stalled clients, RSS grew by %d MiB" % grown)

# Another client is served meanwhile.
c = n.Raw(S); c.go()
assert c.cmd(n.CMD_WRITE, 4096, 4, data=b"live")[0] == 0
assert c.cmd(n.CMD_READ, 4096, 4) == (0, b"live")
c.close()
print("ok: a fourth client is served while three are stalled")

# One hog disconnects abruptly with replies pending.
hogs.pop().s.close()
time.sleep(0.5)
c = n.Raw(S); c.go(); assert c.cmd(n.CMD_READ, 4096, 4) == (0, b"live"); c.close()
print("ok: abrupt disconnect of a stalled client")
# The other two stay stalled: the daemon must still stop, cutting them off.
import os, signal
os.kill(int(pid), signal.SIGTERM)
for _ in range(300):
    if not os.path.exists("/proc/%s" % pid) or open("/proc/%s/stat" % pid).read().split()[2] == "Z":
        break
    time.sleep(0.1)
else:
    raise AssertionError("daemon still running 30 s after SIGTERM with stalled clients")
print("ok: SIGTERM ends the daemon despite stalled clients")
PY
wait $USBD_PID || fail "daemon exit status $? after SIGTERM"
grep -q "not reading replies" $LOG || fail "stop did not report the stalled clients"
ok "stalled clients"
