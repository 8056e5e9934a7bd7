#!/bin/bash
# Sequential reads of chunks that are only in the store fetch the next ones
# ahead, in parallel (a machine that opens the volume from the store alone).
. "$(dirname "$0")/lib.sh"
need nbdcopy
S=$TMP/store
head -c 16M /dev/urandom > $TMP/rand
start_usbd a $(vol_flags $S $TMP/state1 -size=16MiB -objsize=256KiB)
nbdcopy --flush $TMP/rand "$URI"
stop_usbd
start_usbd b $(vol_flags $S $TMP/state2)
# Reads in order, 64 KiB at a time, one at a time: the pattern read-ahead is for.
PATH=/usr/bin:$PATH nbdsh -u "$URI" -c '
data = b"".join(h.pread(65536, off) for off in range(0, 16 << 20, 65536))
open("'$TMP/back'", "wb").write(data)
h.shutdown()'
cmp $TMP/back $TMP/rand || fail "data read with read-ahead differs"
stop_usbd
ahead=$(sed -n 's/.*this run: [0-9]* chunks fetched (\([0-9]*\) by read-ahead.*/\1/p' $LOG)
total=$(sed -n 's/.*this run: \([0-9]*\) chunks fetched.*/\1/p' $LOG)
[ "$total" = 64 ] || fail "fetched $total chunks, want each of the 64 exactly once"
[ "${ahead:-0}" -ge 32 ] || fail "only ${ahead:-0} of 64 chunks came by read-ahead"
ok "read-ahead: $ahead of $total chunks fetched ahead of the reader"
