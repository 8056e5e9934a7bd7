#!/bin/bash
# Local damage: a corrupt LMDB index is a clear error at start; a full cache
# disk gives the client an error for the write that does not fit, and what
# was acknowledged before is intact.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store
start_usbd a $(vol_flags $S $TMP/state -size=16MiB -objsize=256KiB)
head -c 4M /dev/urandom > $TMP/rand
nbdcopy --flush $TMP/rand "$URI"
stop_usbd
dd if=/dev/urandom of=$TMP/state/vol/index/data.mdb bs=4096 count=4 conv=notrunc status=none
rc=0; "$USBD_BIN" $(vol_flags $S $TMP/state) -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] || { cat $TMP/e; fail "started on a corrupt index (status $rc)"; }
grep -q "local index .*the index is damaged: move the state directory aside" $TMP/e || { cat $TMP/e; fail "unclear message for a corrupt index"; }
ok "corrupt LMDB: clear error"

# Full cache disk: the state directory on a 3 MiB tmpfs.
mkdir -p $TMP/small
mount -t tmpfs -o size=3m tmpfs $TMP/small 2>/dev/null || skip "cannot mount a tmpfs (not root?)"
AFTER_CLEANUP+=("umount $TMP/small")
start_usbd b $(vol_flags $TMP/store2 $TMP/small -size=16MiB -objsize=256KiB -flush-every=1h)
nbdsh_run '
import errno, os
a = os.urandom(1 << 20)
h.pwrite(a, 0)
h.flush()
# 1 MiB writes (within the maximum block size) until the 3 MiB disk is full
for i in range(4, 16):
    try:
        h.pwrite(os.urandom(1 << 20), i << 20)
    except nbd.Error as e:
        assert e.errnum == errno.ENOSPC, e.string
        print("ok: write that does not fit:", e.string)
        break
else:
    raise AssertionError("12 MiB into a 3 MiB cache disk succeeded")
assert h.pread(1 << 20, 0) == a
h.shutdown()'
grep -q "the cache disk is full" $LOG || fail "no log line naming the full disk"
kill -0 $USBD_PID || fail "daemon died on a full disk"
ok "full cache disk"
