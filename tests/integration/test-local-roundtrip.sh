#!/bin/bash
# The object-store device (-kind=local, or -kind=s3 on RGW with
# USBD_TEST_STORE=rgw): data goes through the cache into sealed chunks in the store;
# it survives a restart, and a daemon with an EMPTY state directory (another
# machine) reads the same disk from the store alone. Zeros are never stored,
# TRIM drops whole chunks, and nothing readable is in the store.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store
head -c 24M /dev/urandom > $TMP/rand
start_usbd a $(vol_flags $S $TMP/state1 -size=64MiB -objsize=256KiB -flush-every=500ms)
nbdcopy --flush $TMP/rand "$URI"
wait_log "epoch [0-9]* committed"
n=$(store_count $S vol/chunks/)
[ "$n" = 96 ] || fail "want 96 chunk objects for 24 MiB in 256 KiB chunks, have $n"
# encrypted: no 64-byte run of the data appears in any object
probe=$(head -c 64 $TMP/rand | od -An -tx1 | tr -d ' \n')
store_export $S $TMP/objects
for f in $TMP/objects/vol/chunks/*; do
    od -An -tx1 "$f" | tr -d ' \n' | grep -q "$probe" && fail "plaintext found in $f"
done
rm -rf $TMP/objects
ok "24 MiB sealed into 96 objects, no plaintext in the store"

# TRIM of 4 whole chunks and zeros written over 4 more: objects removed.
nbdsh_run '
h.trim(1 << 20, 0)
h.zero(1 << 20, 1 << 20)
h.flush()
h.shutdown()'
[ "$(grep -c 'epoch [0-9]* committed' $LOG)" = 1 ] || fail "more than one epoch before the TRIM"
wait_log "epoch [0-9]* committed: 8 chunks"
# The replaced objects are deleted after the commit, one request each: give
# a remote store time for them (the count must then be exact).
for _ in $(seq 100); do [ "$(store_count $S vol/chunks/)" -gt 88 ] || break; sleep 0.1; done
n=$(store_count $S vol/chunks/)
[ "$n" = 88 ] || fail "after TRIM/zero of 8 chunks want 88 objects, have $n"
ok "TRIM and WRITE_ZEROES of whole chunks drop their objects"
stop_usbd

# Restart on the same state: same content (first 2 MiB now zeros).
head -c 2M /dev/zero > $TMP/expect; tail -c +$((2 * 1048576 + 1)) $TMP/rand >> $TMP/expect
start_usbd b $(vol_flags $S $TMP/state1)
nbdcopy "$URI" $TMP/back
cmp -n $((24 << 20)) $TMP/back $TMP/expect || fail "content after restart"
stop_usbd

# Another machine: empty state directory, the same store and key.
start_usbd c $(vol_flags $S $TMP/state2)
grep -q "local state rebuilt from the store alone" $LOG || fail "did not rebuild from the store"
nbdcopy "$URI" $TMP/back2
cmp -n $((24 << 20)) $TMP/back2 $TMP/expect || fail "content read from the store alone"
cmp -s -n $((40 << 20)) <(tail -c +$((24 * 1048576 + 1)) $TMP/back2) /dev/zero || fail "unwritten space is not zeros"
stop_usbd
ok "restart and open from the store alone"

# Geometry is fixed: a different -size or -objsize is a clear error.
rc=0; "$USBD_BIN" $(vol_flags $S $TMP/state1 -size=32MiB) -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "has 67108864 bytes but -size asks for 33554432" $TMP/e || { cat $TMP/e; fail "size mismatch"; }
rc=0; "$USBD_BIN" $(vol_flags $S $TMP/state1 -objsize=1MiB) -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "chunks of 262144 bytes, fixed at creation" $TMP/e || { cat $TMP/e; fail "objsize mismatch"; }
rc=0; "$USBD_BIN" $(store_flags $S $TMP/state3 -name=other -key=key:$TEST_KEY) -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "volume 'other' does not exist in the store: give -size" $TMP/e || { cat $TMP/e; fail "missing volume"; }

# One daemon per state directory.
start_usbd d $(vol_flags $S $TMP/state1)
rc=0; "$USBD_BIN" $(vol_flags $S $TMP/state1) -listen=unix:$TMP/y.sock -nbd-device=none 2>$TMP/e || rc=$?
[ $rc = 1 ] && grep -q "is in use by another usbd-objstore (pid $USBD_PID)" $TMP/e || { cat $TMP/e; fail "second daemon on the same state"; }
stop_usbd
ok "geometry, missing volume and state lock errors"
