#!/bin/bash
# nbdfuse: the disk as a file; write through it, read back through NBD.
. "$(dirname "$0")/lib.sh"
need nbdfuse fusermount3 nbdcopy
[ -c /dev/fuse ] || skip "no /dev/fuse"

start_usbd fuse -kind=mem -size=64MiB
mkdir $TMP/mnt
nbdfuse $TMP/mnt/disk "$URI" &
FUSE_PID=$!
PIDS+=($FUSE_PID)
AFTER_CLEANUP+=("fusermount3 -u $TMP/mnt 2>/dev/null")
for _ in $(seq 100); do [ -f $TMP/mnt/disk ] && break; sleep 0.1; done
[ -f $TMP/mnt/disk ] || skip "nbdfuse could not mount (no FUSE permission here?)"
[ "$(stat -c %s $TMP/mnt/disk)" = $((64 << 20)) ] || fail "size through FUSE"
head -c 8M /dev/urandom > $TMP/data
dd if=$TMP/data of=$TMP/mnt/disk bs=1M seek=3 conv=notrunc,fsync status=none
cmp -n $((8 << 20)) $TMP/data <(dd if=$TMP/mnt/disk bs=1M skip=3 count=8 status=none) || fail "read through FUSE"
nbdcopy "$URI" $TMP/all.bin
cmp -n $((8 << 20)) -i $((3 << 20)):0 $TMP/all.bin $TMP/data || fail "FUSE write not seen over NBD"
fusermount3 -u $TMP/mnt
wait $FUSE_PID || true
stop_usbd
ok "nbdfuse"
