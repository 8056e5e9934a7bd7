#!/bin/bash
# fio's nbd engine: random writes at queue depth 32 verified with crc32c,
# then a mixed random read/write workload verified the same way.
. "$(dirname "$0")/lib.sh"
need fio
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"

cd $TMP  # fio writes state files into the working directory
start_usbd fio -kind=mem -size=256MiB
fio --name=randwrite --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=32 \
    --size=128M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --output=$TMP/fio1.txt \
    || { cat $TMP/fio1.txt; fail "fio randwrite verify"; }
fio --name=mixed --ioengine=nbd --uri="$URI" --rw=randrw --bsrange=512-256k --iodepth=16 \
    --size=64M --offset=128M --verify=crc32c --verify_fatal=1 --verify_state_save=0 --output=$TMP/fio2.txt \
    || { cat $TMP/fio2.txt; fail "fio mixed verify"; }
grep -q "err= 0" $TMP/fio1.txt && grep -q "err= 0" $TMP/fio2.txt || fail "fio reported errors"
stop_usbd
ok "fio verify"
