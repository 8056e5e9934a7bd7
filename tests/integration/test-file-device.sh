#!/bin/bash
# -kind=file: created with -size, reopened without it, a size mismatch is a
# clear error, TRIM punches holes, block status follows the file's holes.
. "$(dirname "$0")/lib.sh"
need nbdsh nbdinfo

start_usbd f -kind=file -file=$TMP/disk.img -size=64MiB
[ "$(stat -c %a $TMP/disk.img)" = 600 ] || fail "new disk file should be mode 0600"
nbdsh_run '
h.pwrite(b"A" * (8 << 20), 0)
h.flush()
h.trim(4 << 20, 2 << 20)
assert h.pread(4 << 20, 2 << 20) == bytes(4 << 20)
h.shutdown()
'
used=$(du -k $TMP/disk.img | cut -f1)
[ "$used" -le 4200 ] || fail "TRIM did not punch a hole: $used KiB used"
nbdinfo --map "$URI" | awk '$3 == 3 && $1 == 2097152' | grep -q . || { nbdinfo --map "$URI"; fail "map does not show the trimmed hole"; }
stop_usbd

rc=0; "$USBD_BIN" -kind=file -file=$TMP/disk.img -size=32MiB -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "has 67108864 bytes but -size asks for 33554432" $TMP/e || { cat $TMP/e; fail "size mismatch"; }
rc=0; "$USBD_BIN" -kind=file -file=$TMP/missing.img -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "give -size to create it" $TMP/e || { cat $TMP/e; fail "missing file without -size"; }

start_usbd g -kind=file -file=$TMP/disk.img -readonly
nbdsh_run 'assert h.is_read_only(); assert h.pread(4, 0) == b"AAAA"'
stop_usbd
ok "file device"
