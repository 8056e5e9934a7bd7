#!/bin/bash
# Offsets past 4 GiB, where a 32-bit board (armhf: 32-bit size_t and long,
# ctest runs this under qemu-arm there) would wrap: a 64 GiB object-store
# volume written across the 4 GiB boundary, at 40 GiB and in its last
# chunk, read back, then again from the store alone (an empty state
# directory); and a sparse 6 GiB file device written at 5 GiB.
. "$(dirname "$0")/lib.sh"
need nbdsh
G=$((1 << 30))
OFFS="0 $((4 * G - 4096)) $((4 * G + 65536)) $((4 * G + 12345 * 4096)) $((40 * G)) $((64 * G - 8192))"
write_read() { # OFFSETS...: write 8 KiB of its own at each, flush, read each back
    nbdsh_run "
import random
for o in map(int, '$*'.split()):
    h.pwrite(random.Random(o).randbytes(8192), o)
h.flush()
for o in map(int, '$*'.split()):
    assert h.pread(8192, o) == random.Random(o).randbytes(8192), 'offset %#x' % o
assert h.get_size() == 64 << 30 or h.get_size() == 6 << 30, h.get_size()
"
}
read_back() { # OFFSETS...
    nbdsh_run "
import random
for o in map(int, '$*'.split()):
    assert h.pread(8192, o) == random.Random(o).randbytes(8192), 'offset %#x read from the store' % o
"
}
mkdir -p $TMP/s1 $TMP/s2
start_usbd big $(vol_flags $TMP/store $TMP/s1) -size=64GiB
write_read $OFFS || fail "64 GiB volume: a write past 4 GiB did not read back"
stop_usbd
start_usbd again $(vol_flags $TMP/store $TMP/s2)
read_back $OFFS || fail "64 GiB volume: from the store alone, a chunk past 4 GiB differs"
stop_usbd
ok "64 GiB volume: 8 KiB at 0, across 4 GiB, at 4 GiB + 48 MiB, 40 GiB and the end; read back, and from the store alone"

start_usbd file -kind=file -file=$TMP/disk.img -size=6GiB
write_read 0 $((4 * G - 4096)) $((5 * G)) $((6 * G - 8192)) || fail "6 GiB file device: a write past 4 GiB did not read back"
stop_usbd
[ "$(stat -c %s $TMP/disk.img)" = $((6 * G)) ] || fail "the file is $(stat -c %s $TMP/disk.img) bytes, not 6 GiB"
ok "6 GiB file device (sparse): writes at 4 GiB - 4 KiB, 5 GiB and the end read back"
