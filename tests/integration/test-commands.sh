#!/bin/bash
# Every command through libnbd (nbdsh): READ, WRITE (+FUA), FLUSH, TRIM,
# WRITE_ZEROES (+NO_HOLE, FAST_ZERO), CACHE, BLOCK_STATUS, DISC; with both
# the RAM and the file device.
. "$(dirname "$0")/lib.sh"
need nbdsh

check_commands() {
nbdsh_run '
import os
MiB = 1 << 20
assert h.get_size() == 64 * MiB
data = os.urandom(3 * MiB)
h.pwrite(data, 5 * MiB)
assert h.pread(3 * MiB, 5 * MiB) == data
h.pwrite(b"x" * 4096, 0, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 0) == b"x" * 4096
h.flush()
# unaligned, odd-sized I/O
h.pwrite(b"hello", 12345)
assert h.pread(7, 12344) == b"\0hello\0"

def extents(off, length):
    ext = []
    def cb(meta, offset, e, err):
        assert meta == nbd.CONTEXT_BASE_ALLOCATION
        ext.extend(zip(e[0::2], e[1::2]))
        return 0
    h.block_status(length, off, cb)
    return ext

# block status: written data is data, never-written space is a hole
e = extents(5 * MiB, 3 * MiB)
assert all(flags == 0 for _, flags in e) and sum(l for l, _ in e) == 3 * MiB, e
e = extents(40 * MiB, 8 * MiB)
assert e[0][1] & 3 == 3, e
e1 = []
h.block_status(8 * MiB, 5 * MiB, lambda m, o, e, err: e1.extend(e) or 0, nbd.CMD_FLAG_REQ_ONE)
assert len(e1) == 2, e1

# TRIM: reads back as zeros (RAM and file devices both give zeros)
h.trim(MiB, 6 * MiB)
assert h.pread(MiB, 6 * MiB) == bytes(MiB)
assert h.pread(MiB, 5 * MiB) == data[:MiB]
assert h.pread(MiB, 7 * MiB) == data[2 * MiB:]

# WRITE_ZEROES, with and without NO_HOLE, with FAST_ZERO and FUA
h.zero(MiB, 5 * MiB)
assert h.pread(MiB, 5 * MiB) == bytes(MiB)
h.zero(MiB, 7 * MiB, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(MiB, 7 * MiB) == bytes(MiB)
h.pwrite(b"y" * 8192, 9 * MiB)
h.zero(100, 9 * MiB + 10, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
got = h.pread(8192, 9 * MiB)
assert got == b"y" * 10 + bytes(100) + b"y" * (8192 - 110), "zero of a partial range"
# CACHE is advisory and succeeds
h.cache(MiB, 0)
h.flush()
h.shutdown()  # sends NBD_CMD_DISC
print("ok: all commands")
'
}

start_usbd mem -kind=mem -size=64MiB
check_commands
grep -q "closed after .* requests (NBD_CMD_DISC)" $LOG || fail "no DISC seen by the server"
stop_usbd
grep -q "1 flushes\|[1-9][0-9]* flushes" $LOG || fail "FLUSH never reached the server"

start_usbd file -kind=file -file=$TMP/disk.img -size=64MiB
check_commands
stop_usbd
[ "$(stat -c %s $TMP/disk.img)" = $((64 << 20)) ] || fail "file size changed"
ok "commands"
