#!/bin/bash
# A cache directory whose volume the store does not have (a wrong -store,
# bucket or prefix, or an unmounted store) is refused at start, and no new
# volume is created in that store: a fresh one there would later serve a
# blank disk to a start from the store alone. Also: at the default log
# level the daemon prints no debug lines.
. "$(dirname "$0")/lib.sh"
need nbdcopy
head -c 1M /dev/urandom > $TMP/data
start_usbd a $(vol_flags $TMP/store1 $TMP/state -size=16MiB)
nbdcopy --flush $TMP/data "$URI"
stop_usbd
ok "volume made in store1, its state in \$TMP/state"

rc=0
"$USBD_BIN" $(vol_flags $TMP/store2 $TMP/state -size=16MiB) -listen=unix:$TMP/b.sock \
    -nbd-device=none 2>$TMP/b.log || rc=$?
[ $rc = 1 ] || { cat $TMP/b.log; fail "exit status $rc with a store that lacks the volume (expected 1)"; }
grep -q "has local state in .* but the store has no such volume" $TMP/b.log ||
    { cat $TMP/b.log; fail "no clear error naming the mismatch"; }
grep -q "created volume" $TMP/b.log && fail "a volume was created before the refusal"
[ -z "$(store_keys $TMP/store2 vol/)" ] || fail "store2 holds objects: $(store_keys $TMP/store2 vol/ | head -3)"
ok "refused: $(grep -o "volume 'vol' has local state[^:]*" $TMP/b.log); store2 untouched"

# The right store still opens, with the data.
start_usbd c $(vol_flags $TMP/store1 $TMP/state)
nbdcopy "$URI" $TMP/back
cmp -n 1048576 $TMP/back $TMP/data || fail "data differs after the refused start"
stop_usbd
ok "the right store opens as before"

# Default -log-level (info): no debug lines, not even from the store.
"$USBD_BIN" $(vol_flags $TMP/store3 $TMP/state3 -size=16MiB) -listen=unix:$TMP/d.sock \
    -nbd-device=none 2>$TMP/d.log &
pid=$!
PIDS+=("$pid")
for _ in $(seq 200); do grep -q "ready:" $TMP/d.log && break; sleep 0.05; done
grep -q "ready:" $TMP/d.log || { cat $TMP/d.log; fail "daemon not ready"; }
stop_usbd $pid
grep -q " debug: " $TMP/d.log && { grep " debug: " $TMP/d.log | head -3; fail "debug lines at -log-level=info"; }
ok "no debug lines at the default log level ($(wc -l < $TMP/d.log) lines logged)"
