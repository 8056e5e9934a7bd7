#!/bin/bash
# An open never destroys (-kind=local, or -kind=s3 on RGW with
# USBD_TEST_STORE=rgw):
# - a store whose newest epoch record is gone (a rollback, a stale listing)
#   is refused by this machine's high-water mark, also with an empty cache,
#   and nothing in it is deleted; -accept-rollback opens it;
# - clean-up at open deletes only chunk objects of older writers that no
#   record names, never a generation of a newer token, never a key it does
#   not recognise (foreign keys in the volume's prefix and beside it);
# - an object with a valid MAC under a current key that is not the object
#   its record committed is an I/O error, never data;
# - no key is generated when the store cannot say whether the volume exists.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store C=$TMP/cache
RESEAL=$(usbd_tool ${USBD_BUILD:-$USBD_SRC/build}/crypto/objstore-reseal)
[ -x "$RESEAL" ] || skip "objstore-reseal not built ($RESEAL)"
head -c 2M /dev/urandom >$TMP/d1; head -c 2M /dev/urandom >$TMP/d2
FLAGS=(-size=8MiB -objsize=256KiB -flush-every=1h)
commits() { grep -c "committed: " $LOG || true; }
commit() { # DATA: write it at 0, SIGHUP, wait for its commit
    local n; n=$(commits)
    nbdcopy --flush "$1" "$URI"; kill -HUP $USBD_PID
    for _ in $(seq 300); do [ "$(commits)" -gt "$n" ] && return 0; sleep 0.1; done
    fail "no commit within 30 s"
}
start_fails() { # LOGFILE FLAGS...: the daemon must exit 1 without becoming ready
    local out=$1 rc=0; shift
    timeout 60 "$USBD_BIN" -listen=unix:$TMP/x.sock -nbd-device=none "$@" 2>$out || rc=$?
    [ $rc = 1 ] || { cat $out; fail "exit status $rc, want 1"; }
    ! grep -q "ready:" $out || fail "the daemon became ready"
}

# --- a rolled-back store ------------------------------------------------------
start_usbd a $(vol_flags $S $C "${FLAGS[@]}")
commit $TMP/d1
store_copy $S $TMP/backup # a backup of the store at this epoch
commit $TMP/d2
stop_usbd
newest=$(store_keys $S vol/epochs/ | tail -1)
store_delete $S $newest
rm -rf $C/vol # an empty cache: only the mark beside it remembers
[ -e $C/vol.hwm ] || fail "no high-water mark beside the key"
CHUNKS=$(store_keys $S vol/chunks/) SUM=$(store_sum $S)
start_fails $TMP/rb.err $(vol_flags $S $C "${FLAGS[@]}")
grep -q "this machine has seen epoch .*-accept-rollback" $TMP/rb.err || { cat $TMP/rb.err; fail "rollback: no clear refusal"; }
[ "$(store_keys $S vol/chunks/)" = "$CHUNKS" ] || fail "a refused rolled-back open deleted chunk objects"
[ "$(store_sum $S)" = "$SUM" ] || fail "a refused rolled-back open modified the store"
ok "rollback refused with an empty cache: $(grep -o 'the store has volume.*seen epoch [0-9]* (token [0-9]*)' $TMP/rb.err)"
# The same refusal for a store restored from the backup, whole (the
# superseded chunks of the newest epoch are gone from the live store, so
# only a restore reads back); -accept-rollback then opens it.
store_rm $S; store_copy $TMP/backup $S
start_fails $TMP/rb2.err $(vol_flags $S $C "${FLAGS[@]}")
grep -q "this machine has seen epoch" $TMP/rb2.err || { cat $TMP/rb2.err; fail "restored backup: no refusal"; }
start_usbd b $(vol_flags $S $C "${FLAGS[@]}" -accept-rollback)
grep -q "although this machine has seen epoch" $LOG || fail "-accept-rollback did not say what it accepted"
nbdcopy "$URI" $TMP/back
cmp -n $((2 << 20)) $TMP/back $TMP/d1 || fail "-accept-rollback does not serve the backup's epoch"
stop_usbd
ok "a restored backup is refused too, and -accept-rollback opens it"

# --- clean-up at open ---------------------------------------------------------
echo foreign >$TMP/foreign
FOREIGN="vol/chunks/not-a-chunk vol/chunks/0000000000000001-0000000000000001x
 vol/chunks/0000000000000001-000000000000000G vol/chunks/1-1 vol/chunksX
 vol/epochs/0000000000000001.bak vol/checkpoints/junk vol/checkpoints/000000000000001
 volX/chunks/0000000000000001-0000000000000001 other/chunks/0000000000000002-0000000000000001"
for k in $FOREIGN; do store_put $S $k $TMP/foreign; done
# chunk names this code makes, referenced by no record: one of token 0 (an
# older writer: garbage), one of a token far above (a writer that may be
# about to commit it: kept)
store_put $S vol/chunks/0000000000000005-0000000000000001 $TMP/foreign
store_put $S vol/chunks/0000000000000005-0000fff000000001 $TMP/foreign
start_usbd c $(vol_flags $S $C "${FLAGS[@]}" -flush-every=100ms)
# 33 epochs: the 32nd writes a checkpoint and deletes the records below it
for i in $(seq 34); do nbdsh_run "h.pwrite(b'%c' % (65 + $i % 26) * 4096, $i * 8192); h.flush()"; sleep 0.15; done
for _ in $(seq 100); do grep -q "checkpoint at epoch" $LOG && break; sleep 0.1; done
grep -q "checkpoint at epoch" $LOG || fail "no checkpoint after 34 epochs"
stop_usbd
start_usbd d $(vol_flags $S $C "${FLAGS[@]}")
stop_usbd
for k in $FOREIGN; do
    store_get $S $k $TMP/got 2>/dev/null || fail "a foreign key was deleted: $k"
    cmp -s $TMP/got $TMP/foreign || fail "a foreign key was changed: $k"
done
store_keys $S vol/chunks/ | grep -q 0000000000000005-0000000000000001 && fail "an older writer's unreferenced chunk object was kept"
store_keys $S vol/chunks/ | grep -q 0000000000000005-0000fff000000001 || fail "a newer token's chunk object was deleted"
ok "clean-up at open: $(wc -w <<<"$FOREIGN") foreign keys and a newer token's object kept, an older writer's garbage removed"

# --- a valid object that is not the committed one -----------------------------
start_usbd e $(vol_flags $S $C "${FLAGS[@]}")
commit $TMP/d2
stop_usbd
key=$(store_keys $S vol/chunks/ | grep '^vol/chunks/0000000000000000-' | tail -1)
store_get $S $key $TMP/obj
"$RESEAL" $TEST_KEY $TMP/obj $TMP/obj2
store_put $S $key $TMP/obj2
start_usbd f $(vol_flags $S $TMP/cold)
nbdcopy "$URI" $TMP/back 2>$TMP/copy.err && fail "a replaced object (valid MAC, other content) was read as data"
grep -q "not the one its epoch committed" $LOG || fail "the log does not say what is wrong with the object"
nbdsh_run 'h.pread(4096, 256 * 1024)' >/dev/null || fail "the other chunks no longer read"
stop_usbd
store_put $S $key $TMP/obj # the committed object back: it reads again
start_usbd g $(vol_flags $S $TMP/cold2)
nbdcopy "$URI" $TMP/back
cmp -n $((2 << 20)) $TMP/back $TMP/d2 || fail "with the committed object back, the data differs"
stop_usbd
ok "an object under the right key with a valid MAC but not the committed one: EIO"

# --- no key without an answer from the store ----------------------------------
start_fails $TMP/key.err $(store_flags $S $C -name=fresh -size=8MiB) -store-faults=head-error=1,match=fresh/*
grep -q "cannot tell whether volume 'fresh' exists" $TMP/key.err || { cat $TMP/key.err; fail "no clear error"; }
[ ! -e $C/fresh.key ] || fail "a key was generated although the store did not answer"
ok "no key generated while the store does not answer"
