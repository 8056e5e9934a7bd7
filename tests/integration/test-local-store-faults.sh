#!/bin/bash
# A store that fails half of its puts, then one that hangs: writers are never
# failed for it (they wait at -dirty-max), nothing acknowledged is lost, and
# the flush completes by itself once the store behaves.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store
head -c 16M /dev/urandom > $TMP/rand

start_usbd f $(vol_flags $S $TMP/state -size=32MiB -objsize=256KiB -flush-every=300ms) \
    -store-faults=put-error=0.5,seed=7,match=vol/chunks/*
nbdcopy --flush $TMP/rand "$URI"
wait_log "epoch [0-9]* committed" 120
grep -q "PUT failed" $LOG || fail "no put failure was injected"
stop_usbd
grep -q "everything is in the store\|stopped cleanly" $LOG || fail "clean stop"
# Read it back from the store alone (no faults).
start_usbd g $(vol_flags $S $TMP/state-fresh)
nbdcopy "$URI" $TMP/back
cmp -n $((16 << 20)) $TMP/back $TMP/rand || fail "data lost with a failing store"
stop_usbd
ok "50% failing puts: retried, nothing lost"

# A store whose puts take 1 s: with -dirty-max=2MiB writers wait, then go on.
start_usbd h $(vol_flags $S $TMP/state2 -size=32MiB -objsize=256KiB -flush-every=200ms -dirty-max=2MiB \
    -flush-workers=8) -store-faults=put-latency=1s,match=vol/chunks/*
start=$(date +%s)
nbdcopy --flush $TMP/rand "$URI"
took=$(( $(date +%s) - start ))
[ $took -ge 3 ] || fail "writes did not wait for the store ($took s): no backpressure"
nbdcopy "$URI" $TMP/back2
cmp -n $((16 << 20)) $TMP/back2 $TMP/rand || fail "data differs after backpressure"
stop_usbd
grep -q " errors$" $LOG && grep -Eq " [1-9][0-9]* errors$" $LOG && fail "the client saw errors"
ok "hanging store: writers waited ${took}s, no error, nothing lost"

# A store whose every put hangs 3 s before it answers: with -dirty-max=1MiB
# writes wait, none fails, and everything reaches the store. 3 MiB: the
# epoch stuck uploading holds up to 1 MiB, the changes after it 1 MiB more.
head -c 3M $TMP/rand > $TMP/two
start_usbd k $(vol_flags $TMP/store-hang $TMP/state3 -size=32MiB -objsize=256KiB -flush-every=200ms \
    -dirty-max=1MiB -flush-workers=4) -store-faults=hang=put,hang-for=3s,match=vol/chunks/*
start=$(date +%s)
nbdcopy --flush $TMP/two "$URI"
took=$(( $(date +%s) - start ))
[ $took -ge 3 ] || fail "writes did not wait for the hanging store ($took s)"
stop_usbd
start_usbd m $(vol_flags $TMP/store-hang $TMP/state-fresh2)
nbdcopy "$URI" $TMP/back3
cmp -n $((3 << 20)) $TMP/back3 $TMP/two || fail "data lost with a hanging store"
stop_usbd
ok "store hanging on every put: writers waited ${took}s, nothing lost"
