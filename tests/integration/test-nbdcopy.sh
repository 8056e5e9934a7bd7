#!/bin/bash
# nbdcopy round trips with checksums: random data, a sparse image whose holes
# stay holes (base:allocation), and the file device across a restart.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdinfo sha256sum

head -c 48M /dev/urandom > $TMP/rand.bin
truncate -s 128M $TMP/sparse.bin
dd if=$TMP/rand.bin of=$TMP/sparse.bin bs=1M count=4 seek=10 conv=notrunc status=none
dd if=$TMP/rand.bin of=$TMP/sparse.bin bs=1M count=4 seek=100 conv=notrunc status=none

start_usbd copy -kind=mem -size=128MiB
nbdcopy $TMP/sparse.bin "$URI"
nbdcopy "$URI" $TMP/back.bin
cmp $TMP/sparse.bin $TMP/back.bin || fail "sparse image differs after the round trip"
# Only what was written is data: 2 x 4 MiB.
data=$(nbdinfo --map "$URI" | awk '$3 == 0 {s += $2} END {print s+0}')
[ "$data" = $((8 << 20)) ] || { nbdinfo --map "$URI"; fail "map shows $data bytes of data, want 8 MiB"; }
nbdcopy $TMP/rand.bin "$URI"
nbdcopy "$URI" $TMP/back2.bin
[ "$(head -c 48M $TMP/back2.bin | sha256sum)" = "$(sha256sum < $TMP/rand.bin)" ] || fail "random data checksum differs"
# --flush: the copy ends with NBD FLUSH
nbdcopy --flush $TMP/rand.bin "$URI"
stop_usbd
grep -Eq "[1-9][0-9]* flushes" $LOG || fail "nbdcopy --flush did not reach the server as FLUSH"

start_usbd f1 -kind=file -file=$TMP/disk.img -size=64MiB
nbdcopy --flush $TMP/rand.bin "$URI"
stop_usbd
start_usbd f2 -kind=file -file=$TMP/disk.img
nbdcopy "$URI" $TMP/back3.bin
cmp -n $((48 << 20)) $TMP/back3.bin $TMP/rand.bin || fail "file device lost data across restart"
stop_usbd
ok "nbdcopy"
