#!/bin/bash
# Stopping with a store that cannot take the data: SIGINT flushes and shows
# progress; a second SIGINT says what is not in the store yet; a third exits
# at once, keeping the data in the local cache; the next start uploads it.
. "$(dirname "$0")/lib.sh"
need nbdcopy
S=$TMP/store
head -c 8M /dev/urandom > $TMP/rand
start_usbd new $(vol_flags $S $TMP/state -size=32MiB -objsize=256KiB)
stop_usbd
start_usbd a $(vol_flags $S $TMP/state -flush-every=1h) -store-faults=put-error=1,match=vol/chunks/*
nbdcopy --flush $TMP/rand "$URI"
kill -INT $USBD_PID
wait_log "flushing 8.0 MiB to the store before exit"
kill -INT $USBD_PID
wait_log "MiB are not in the store yet and the flush goes on"
kill -0 $USBD_PID || fail "exited after the second SIGINT"
kill -INT $USBD_PID
rc=0; wait $USBD_PID || rc=$?
[ $rc = 1 ] || fail "exit status $rc after abandoning the flush, want 1"
grep -q "stopped with 8.0 MiB not in the store" $LOG || fail "no line saying what stayed local"
[ "$(store_count $S vol/chunks/)" = 0 ] && ! grep -q "epoch [0-9]* committed" $LOG ||
    fail "an epoch was committed although every chunk put failed"

# The next start (a working store) uploads it, and the store alone has it.
start_usbd b $(vol_flags $S $TMP/state -flush-every=300ms)
grep -q "32 chunks to upload" $LOG || fail "dirty chunks not found at start"
wait_log "epoch [0-9]* committed"
stop_usbd
start_usbd c $(vol_flags $S $TMP/state-fresh)
nbdcopy "$URI" $TMP/back
cmp -n $((8 << 20)) $TMP/back $TMP/rand || fail "data uploaded after restart differs"
stop_usbd
ok "shutdown with a failing store"
