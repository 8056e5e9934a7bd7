#!/bin/bash
# Fencing (-kind=local, or -kind=s3 on RGW with USBD_TEST_STORE=rgw):
# 1. a writer frozen past its lease (SIGSTOP), a second board takes over
#    with -takeover and commits; the first, resumed, learns it was fenced:
#    its clients' writes fail (EPERM on the wire: EROFS), it commits nothing
#    more, and a cold open reads exactly the second board's data;
#    (with a lease of an hour, the same at its next commit, which collides);
# 2. the same while the first writer runs normally (clock and renewals
#    intact): -takeover fences it within a renewal;
#    and on a store that ignores conditional creates, best effort through the
#    lease read before each commit;
# 3. the fenced board, restarted over its unsaved changes, refuses to upload
#    them over the newer volume, keeps them, and -readonly serves them.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store
for d in a1 a2 b1 d1; do head -c 1M /dev/urandom >$TMP/$d; done
FLAGS=(-size=8MiB -objsize=256KiB -flush-every=1h -lease=3s)

# commit DATA URI PID LOG: write DATA at 0, SIGHUP, wait for the commit.
commit() {
    local n; n=$(grep -c "committed: " $4 || true)
    nbdcopy --flush "$1" "$2"
    kill -HUP $3
    for _ in $(seq 300); do [ "$(grep -c "committed: " $4)" -gt "$n" ] && return 0; sleep 0.1; done
    fail "no epoch committed within 30 s of SIGHUP ($4)"
}
# try_write URI: "refused ERRNO" or "accepted".
try_write() {
    URI=$1 nbdsh_run '
try:
    h.pwrite(b"w" * 4096, 0)
    print("accepted")
except nbd.Error as e:
    print("refused", e.errnum)'
}
# cold_read FILE: the volume from the store alone (-readonly, empty state).
cold_read() {
    local st=$TMP/cold-$RANDOM
    start_usbd cold $(vol_flags $S $st -readonly)
    nbdcopy "$URI" "$1"
    stop_usbd
}

# --- 1. frozen past its lease -------------------------------------------------
start_usbd a $(vol_flags $S $TMP/state-a "${FLAGS[@]}")
A=$USBD_PID A_LOG=$LOG A_URI=$URI
commit $TMP/a1 $A_URI $A $A_LOG
nbdcopy --flush $TMP/a2 "$A_URI" # acknowledged and on A's disk, not in the store
kill -STOP $A
sleep 4 # past the 3 s lease
start_usbd b $(vol_flags $S $TMP/state-b "${FLAGS[@]}" -takeover)
B=$USBD_PID B_LOG=$LOG B_URI=$URI
commit $TMP/b1 $B_URI $B $B_LOG
commits_a=$(grep -c "committed: " $A_LOG)
kill -CONT $A
LOG=$A_LOG wait_log "is no longer this board's to write" 10
[ "$(try_write $A_URI)" = "refused 1" ] || fail "the fenced writer accepted a write: $(try_write $A_URI)"
kill -HUP $A; sleep 1
[ "$(grep -c "committed: " $A_LOG)" = "$commits_a" ] || fail "the fenced writer committed an epoch"
grep "no longer this board's" $A_LOG | grep -q "1.0 MiB changed here" ||
    fail "the fenced writer does not say what it keeps: $(grep "no longer" $A_LOG)"
rc=0; kill -TERM $A; wait $A || rc=$?
[ $rc = 1 ] || fail "the fenced writer exited with $rc at SIGTERM, want 1 (changes not in the store)"
grep -q "lease released" $A_LOG && fail "the fenced writer released the lease it no longer holds"
stop_usbd $B
cold_read $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/b1 || fail "a cold open does not read the second board's data"
ok "frozen writer fenced: $(grep -o 'no longer this board.s to write: [^.]*' $A_LOG)"

# --- 1b. the same with a lease that would not expire for an hour: the
# resumed writer learns it at its next commit, which collides and lands nothing
start_usbd e $(vol_flags $S $TMP/state-e "${FLAGS[@]}" -lease=1h)
E=$USBD_PID E_LOG=$LOG E_URI=$URI
commit $TMP/a1 $E_URI $E $E_LOG
nbdcopy --flush $TMP/a2 "$E_URI"
kill -STOP $E
start_usbd f $(vol_flags $S $TMP/state-f "${FLAGS[@]}" -takeover)
F=$USBD_PID F_LOG=$LOG
commit $TMP/b1 $URI $F $F_LOG
kill -CONT $E
kill -HUP $E
LOG=$E_LOG wait_log "is no longer this board's to write" 10
grep "no longer this board's" $E_LOG | grep -q "was committed by another writer" ||
    fail "the resumed writer was not fenced by its colliding commit: $(grep "no longer" $E_LOG)"
[ "$(try_write $E_URI)" = "refused 1" ] || fail "the writer fenced at commit accepted a write"
rc=0; kill -TERM $E; wait $E || rc=$?
[ $rc = 1 ] || fail "the writer fenced at commit exited with $rc, want 1"
stop_usbd $F
cold_read $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/b1 || fail "the colliding commit changed what the store holds"
ok "writer fenced by its colliding commit: $(grep -o 'no longer this board.s to write: [^.]*' $E_LOG)"

# --- 2. a live writer taken over ----------------------------------------------
start_usbd b2 $(vol_flags $S $TMP/state-b "${FLAGS[@]}")
B=$USBD_PID B_LOG=$LOG B_URI=$URI
[ "$(try_write $B_URI)" = accepted ] || fail "the writer refused a write before any takeover"
start_usbd d $(vol_flags $S $TMP/state-d "${FLAGS[@]}" -takeover)
D=$USBD_PID D_LOG=$LOG D_URI=$URI
grep -q "taking over from host $(hostname) (pid $B" $D_LOG || fail "the takeover does not name the writer it fences"
commit $TMP/d1 $D_URI $D $D_LOG
LOG=$B_LOG wait_log "is no longer this board's to write" 10
[ "$(try_write $B_URI)" = "refused 1" ] || fail "the live writer taken over accepted a write"
rc=0; kill -TERM $B; wait $B || rc=$?
[ $rc = 1 ] || fail "the writer taken over exited with $rc, want 1 (its last write is not in the store)"
stop_usbd $D
cold_read $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/d1 || fail "a cold open does not read the new writer's data"
ok "live writer fenced within a renewal: $(grep -o 'no longer this board.s to write: [^.]*' $B_LOG)"

# --- 2b. a store that ignores conditional creates (old S3 implementations): the
# start says fencing is best effort; the lease read before each commit still
# fences a writer that was frozen while another took over
IGN=-store-faults=create=ignored
start_usbd g $(vol_flags $S $TMP/state-g "${FLAGS[@]}" -lease=1h) $IGN
G=$USBD_PID G_LOG=$LOG G_URI=$URI
grep -q "does not refuse a second create of a key (If-None-Match ignored): fencing a second writer is best effort" $G_LOG ||
    fail "no best-effort warning on a store that ignores conditional creates"
commit $TMP/a1 $G_URI $G $G_LOG
nbdcopy --flush $TMP/a2 "$G_URI"
kill -STOP $G
start_usbd h $(vol_flags $S $TMP/state-h "${FLAGS[@]}" -takeover) $IGN
H=$USBD_PID H_LOG=$LOG
commit $TMP/b1 $URI $H $H_LOG
kill -CONT $G
kill -HUP $G
LOG=$G_LOG wait_log "is no longer this board's to write" 10
grep "no longer this board's" $G_LOG | grep -q "the lease names another writer" ||
    fail "best effort: not fenced by the lease read before the commit: $(grep "no longer" $G_LOG)"
[ "$(try_write $G_URI)" = "refused 1" ] || fail "best effort: the fenced writer accepted a write"
rc=0; kill -TERM $G; wait $G || rc=$?
stop_usbd $H
cold_read $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/b1 || fail "best effort: the store does not hold the new writer's data"
ok "store ignoring If-None-Match: best effort said at start, the lease read before the commit fenced the writer"

# --- 3. the fenced board starts again over its unsaved changes -----------------
SUM=$(store_sum $S)
rc=0
timeout 30 "$USBD_BIN" -listen=unix:$TMP/a3.sock -nbd-device=none $(vol_flags $S $TMP/state-a "${FLAGS[@]}") \
    2>$TMP/a3.err || rc=$?
[ $rc = 1 ] || { cat $TMP/a3.err; fail "restart over stale changes: exit status $rc, want 1"; }
grep -q "changed on this board that are not in the store, but another writer" $TMP/a3.err ||
    { cat $TMP/a3.err; fail "restart over stale changes: no clear refusal"; }
[ "$(store_sum $S)" = "$SUM" ] || fail "the refused restart modified the store"
start_usbd a4 $(vol_flags $S $TMP/state-a "${FLAGS[@]}" -readonly)
grep -q "serving this board's own view" $LOG || fail "-readonly over stale changes did not say what it serves"
nbdcopy "$URI" $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/a2 || fail "-readonly does not serve the fenced board's unsaved changes"
stop_usbd
cold_read $TMP/back
cmp -n $((1 << 20)) $TMP/back $TMP/b1 || fail "the refused restart changed the volume"
ok "a fenced board keeps its changes: refused to upload them, -readonly serves them"
