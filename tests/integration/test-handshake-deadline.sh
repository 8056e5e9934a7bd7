#!/bin/bash
# -handshake-timeout is one deadline for the whole negotiation, from the
# connection to the transmission phase: a client that trickles its option
# one byte at a time (each byte well within the timeout), or that sends
# options and never reads the replies, is cut off at the deadline and its
# slot (-max-clients=1 here) goes to the next client.
. "$(dirname "$0")/lib.sh"
need python3

start_usbd hs -kind=mem -size=4MiB -max-clients=1 -handshake-timeout=2s
python3 - "$SOCK" <<'PY'
import socket, struct, sys, time, nbdraw as n
S = sys.argv[1]

def greeted():
    """A connection that got the greeting, once the only slot is free (a
    client that just closed may still hold it for a moment)."""
    for _ in range(20):
        c = n.Raw(S)
        try:
            c.greeting()
            return c
        except (n.Closed, ConnectionResetError):
            c.close()
            time.sleep(0.1)
    raise AssertionError("no free slot within 2s")

def served():
    """A well-behaved client gets the only slot and is served."""
    try:
        c = greeted()
    except AssertionError:
        return False
    r = c.opt_replies(n.OPT_GO, c.info_data())
    ok = r[-1][0] == n.REP_ACK and c.cmd(n.CMD_READ, 0, 512)[0] == 0
    c.close()
    return ok

# One byte of an OPT_LIST every second: no single read waits longer than
# the 2 s timeout, but the option would take 16 s.
c = greeted()
t0 = time.time()
opt = struct.pack(">QII", n.IHAVEOPT, n.OPT_LIST, 0)
cut = None
for i, b in enumerate(opt):
    try:
        c.s.send(bytes([b]))
    except (BrokenPipeError, ConnectionResetError):
        cut = time.time() - t0; break
    c.s.settimeout(1)
    try:
        if c.s.recv(1) == b"":
            cut = time.time() - t0; break
    except socket.timeout:
        pass
    except ConnectionResetError:
        cut = time.time() - t0; break
    if time.time() - t0 > 6:
        break
assert cut is not None, "a client trickling one byte a second still connected after %.1fs" % (time.time() - t0)
assert cut < 4, "cut off after %.1fs, deadline 2s" % cut
assert served(), "the slot was not given back"
print("ok: a trickling client is cut off after %.1fs (deadline 2s)" % cut)

# Options sent as fast as the socket takes them, replies never read: the
# server blocks sending, and the deadline covers that too. The client keeps
# its end open and unread, so only the server can free the slot.
c = greeted(); c.s.setblocking(False)
t0 = time.time()
try:
    while True:
        c.s.send(struct.pack(">QII", n.IHAVEOPT, n.OPT_LIST, 0) * 64)
except BlockingIOError:
    pass
time.sleep(max(0, t0 + 3 - time.time()))
assert served(), "a client not reading its option replies still holds the slot after 3s"
c.close()
print("ok: a client not reading option replies is cut off at the deadline")
PY
grep -q "option negotiation not finished within 2s, disconnecting" $LOG || fail "no log line for the trickling client"
grep -q "option negotiation not finished within 2s sending a reply" $LOG || fail "no log line for the client not reading"
stop_usbd
ok "handshake deadline"
