#!/bin/bash
# Bad requests get the proper NBD error (or a clean disconnect) and one log
# line; none crashes the daemon, and other clients keep being served.
. "$(dirname "$0")/lib.sh"
need python3

start_usbd err -kind=mem -size=16MiB
python3 - "$SOCK" <<'PY'
import struct, sys, nbdraw as n
S, MiB = sys.argv[1], 1 << 20

for structured in (False, True):
    c = n.Raw(S); c.go(structured=structured, meta=structured)
    E = lambda *a, **k: c.cmd(*a, **k)[0]
    # out of range: EINVAL for reads, ENOSPC for writes
    assert E(n.CMD_READ, 16 * MiB, 1) == n.EINVAL
    assert E(n.CMD_READ, 16 * MiB - 1, 2) == n.EINVAL
    assert E(n.CMD_READ, 2**64 - 512, 1024) == n.EINVAL
    assert E(n.CMD_WRITE, 16 * MiB - 2, 4, data=b"abcd") == n.ENOSPC
    assert E(n.CMD_TRIM, 16 * MiB, 4096) == n.ENOSPC
    assert E(n.CMD_WRITE_ZEROES, 2**63, 4096) == n.ENOSPC
    assert E(n.CMD_CACHE, 16 * MiB, 1) == n.EINVAL
    # length 0
    assert E(n.CMD_READ, 0, 0) == n.EINVAL
    assert E(n.CMD_WRITE, 0, 0) == n.EINVAL
    assert E(n.CMD_TRIM, 0, 0) == n.EINVAL
    # FLUSH with offset/length, unknown commands, unknown/misplaced flags
    assert E(n.CMD_FLUSH, 0, 4096) == n.EINVAL
    assert E(9, 0, 4096) == n.EINVAL
    assert E(0xFFFF, 0, 1) == n.EINVAL
    assert E(n.CMD_READ, 0, 512, flags=n.FLAG_FUA) == n.EINVAL
    assert E(n.CMD_WRITE, 0, 4, flags=n.FLAG_NO_HOLE, data=b"abcd") == n.EINVAL
    assert E(n.CMD_WRITE, 0, 4, flags=0x8000, data=b"abcd") == n.EINVAL
    assert E(n.CMD_BLOCK_STATUS, 0, 512) == (0 if structured else n.EINVAL)
    assert E(n.CMD_READ, 0, 512, flags=n.FLAG_DF) == (0 if structured else n.EINVAL)
    # reads over the advertised maximum
    assert E(n.CMD_READ, 0, 32 * MiB + 1) == n.EINVAL
    # a rejected WRITE's payload is consumed: the stream stays in sync
    assert E(n.CMD_WRITE, 16 * MiB, 8, data=b"12345678") == n.ENOSPC
    assert c.cmd(n.CMD_WRITE, 0, 4, data=b"good")[0] == 0
    assert c.cmd(n.CMD_READ, 0, 4) == (0, b"good")
    c.close()
print("ok: errors for out-of-range, length 0, unknown command and flags")

# Many requests in flight, replies in any order, every cookie answered once.
# (Sent from a thread: a client that does not read while it writes would
# deadlock against any server once the socket buffers fill.)
import threading
c = n.Raw(S); c.go()
want = {}
def sender():
    for i in range(200):
        c.cookie += 1; want[c.cookie] = 0
        c.s.sendall(struct.pack(">IHHQQI", n.REQ_MAGIC, 0, n.CMD_WRITE, c.cookie, i * 4096, 4096) + bytes([i]) * 4096)
    for i in range(200):
        c.cookie += 1; want[c.cookie] = 4096
        c.s.sendall(struct.pack(">IHHQQI", n.REQ_MAGIC, 0, n.CMD_READ, c.cookie, i * 4096, 4096))
t = threading.Thread(target=sender); t.start()
seen = set()
for _ in range(400):
    magic, err, cookie = struct.unpack(">IIQ", c.recv(16))
    assert magic == n.SIMPLE_MAGIC and err == 0 and cookie not in seen
    seen.add(cookie)
    if want[cookie]:
        c.recv(want[cookie])
t.join()
assert seen == set(want)
c.close()
print("ok: 400 requests in flight, all answered")

# A 4 GiB WRITE announced: error reply and disconnect, no 4 GiB allocation.
c = n.Raw(S); c.go()
c.request(n.CMD_WRITE, 0, 0xFFFFFFFF)
cookie, err, _ = c.reply()
assert err == n.EINVAL
assert c.closed_by_server()
# Bad request magic: disconnect.
c = n.Raw(S); c.go(); c.request(n.CMD_READ, 0, 512, magic=0xDEADBEEF)
assert c.closed_by_server()
# Disconnect in the middle of a header, and in the middle of a payload.
c = n.Raw(S); c.go(); c.s.sendall(b"\x25\x60\x95\x13\0\0"); c.close()
c = n.Raw(S); c.go(); c.s.sendall(struct.pack(">IHHQQI", n.REQ_MAGIC, 0, 1, 1, 0, 65536) + b"x" * 1000); c.close()
print("ok: oversized write, bad magic and mid-request disconnects")

# The server is still fine.
c = n.Raw(S); c.go()
assert c.cmd(n.CMD_WRITE, 8192, 5, data=b"still")[0] == 0
assert c.cmd(n.CMD_READ, 8192, 5) == (0, b"still")
c.close()
PY
kill -0 $USBD_PID || fail "daemon died"
for line in "WRITE of 4294967295 bytes announced (maximum 33554432), disconnecting" \
            "bad request magic 0xdeadbeef, disconnecting" \
            "client disconnected mid-request (6 of 28 header bytes)" \
            "client disconnected mid-request (1000 of 65536 payload bytes)" \
            "READ (type 0) flags 0x0 offset 16777216 length 1 rejected: beyond the end of the device" \
            "UNKNOWN (type 9) flags 0x0 offset 0 length 4096 rejected: unknown command"; do
    grep -qF "$line" $LOG || fail "log lacks: $line"
done
stop_usbd
ok "errors"

# A WRITE over the maximum block size but within reason: its payload is read
# and dropped, the answer is EINVAL, and the connection goes on (libnbd and
# qemu send the whole payload before they look for the reply).
start_usbd small -kind=local -store=$TMP/store -store-dir=$TMP/state -name=v \
    -key=key:$TEST_KEY -size=4MiB -objsize=64KiB -cache-size=1MiB
python3 - "$SOCK" <<'PY'
import struct, sys, nbdraw as n
c = n.Raw(sys.argv[1]); c.go(infos=(n.INFO_BLOCK_SIZE,))
err, _ = c.cmd(n.CMD_WRITE, 0, 1 << 20, data=b"x" * (1 << 20))
assert err == n.EINVAL, err
assert c.cmd(n.CMD_WRITE, 0, 4, data=b"next")[0] == 0
assert c.cmd(n.CMD_READ, 0, 4) == (0, b"next")
print("ok: oversized WRITE drained, EINVAL, connection alive")
PY
stop_usbd
