#!/bin/bash
# Crash consistency of the object-store device (docs/design.md, invariants 1-3),
# LSVD-style, with -kind=local or (USBD_TEST_STORE=rgw) -kind=s3 on RGW.
# Each round: a stamping writer (stamp.py, queue depth 1, FLUSH every few
# writes) runs against the daemon; the daemon is killed with SIGKILL at a
# random moment, half the time right after "epoch N: uploading" (a store flush
# in progress); the store is snapshotted at once. Then:
#   - the snapshot, opened with an EMPTY state dir (store alone), must hold a
#     prefix of the write stream (invariant 2: an epoch boundary, never a mix);
#   - the daemon restarted on its own state dir must hold every write that
#     was acknowledged before the last acknowledged FLUSH (invariant 1) and a
#     prefix of the write stream; every third round, after a SIGTERM the
#     store alone must then hold exactly that (invariant 3).
# Rounds continue the same volume. Then rounds where the store fails puts
# (-store-faults), rounds with -sync=remote (where the store alone must also
# hold every flushed write), and a clean SIGTERM after which the store alone
# must hold every write.
# Env: CRASH_ROUNDS (default 20), CRASH_SEED (default: random, printed),
# CRASH_KEEP (a directory to keep everything in on failure), CRASH_ALLOW_TORN=1
# (accept a state that is a prefix plus one write applied on some of its
# chunks only: to look past that one bug for others), CRASH_LOCAL_PREFIX=0
# (report, but do not fail on, a local state that is not a prefix: NBD only
# promises what was flushed).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's python3: it has libnbd's module
[ -x $PY ] && $PY -c "import nbd" 2>/dev/null || skip "python3-libnbd is not installed"
STAMP="$PY $HERE/stamp.py"
TORN=; [ -z "${CRASH_ALLOW_TORN:-}" ] || TORN=--allow-torn
# CRASH_KEEP=DIR: on failure, keep the journal, logs and stores there.
# (set +e: under errexit, the trap itself would stop before lib.sh's cleanup)
# With rgw the stores are in the gateway (in RAM): export them all first.
keep() {
    [ $USBD_TEST_STORE = local ] || "$STORE_CLI" --store=s3 --s3-endpoint="$S3_ENDPOINT" \
        --s3-bucket=$RGW_BUCKET export "" $TMP/rgw-bucket 2>/dev/null
    cp -a $TMP "$CRASH_KEEP"
}
trap 'rc=$?; set +e; [ $rc = 0 ] || [ $rc = 77 ] || [ -z "${CRASH_KEEP:-}" ] || keep; (exit $rc); cleanup' EXIT
$STAMP selftest || fail "stamp.py's checkers do not catch broken images"
# (help read whole first: with pipefail, grep -q could SIGPIPE the daemon)
HELP=$("$USBD_BIN" --help 2>&1 || true)
grep -q -- -store-dir <<<"$HELP" || skip "this build has no -kind=local"

ROUNDS=${CRASH_ROUNDS:-20}
SEED=${CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
echo "crash-consistency: $ROUNDS rounds, seed $SEED (CRASH_SEED=$SEED to repeat)"

OBJ=65536 # small chunks: every write of up to 64 sectors hits several
STORE=$TMP/store STATE=$TMP/state J=$TMP/journal
mkdir -p $STATE
VOL=(-name=vol -size=8MiB -objsize=64KiB -key=key:$(printf '5a%.0s' $(seq 32))
     -cache-size=4MiB -dirty-max=2MiB -flush-workers=2 -compress=zstd -cipher=aes-256-ctr)
FAILED=0 LOCAL_FAILED=0 KEPT=

# Processes we waited for are forgotten, so lib.sh's cleanup never signals a
# PID the system may have reused.
forget() { local p keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
crash() { kill -KILL "$1"; wait "$1" 2>/dev/null || true; forget "$1"; }
alive() { [ -e /proc/$1 ] && ! grep -q '^[0-9]* (.*) Z' /proc/$1/stat; } # not a zombie
clean_stop() { stop_usbd "$1"; forget "$1"; }
flush_every() { local v=(300ms 500ms 700ms 1s); echo ${v[RANDOM % 4]}; }

# start_vol NAME STATEDIR STOREDIR [flags]: the daemon on a volume.
start_vol() { local n=$1 st=$2 so=$3; shift 3; start_usbd "$n" $(store_flags $so $st) "${VOL[@]}" "$@"; }

# check_store TAG LABEL SNAPSHOT [CHECKS]: open a copy of the store as it was
# at the crash with an empty state dir and check it holds a prefix (flushed
# writes newer than the last committed epoch may be missing: only the prefix
# is checked, unless CHECKS adds --durability).
check_store() {
    local tag=$1 label=$2 snap=$3 checks=${4:-} st=$TMP/snapstate out=$TMP/store-check.out
    rm -rf $st; mkdir -p $st
    # another machine, while the killed daemon's lease still runs: -takeover
    start_vol s$tag $st $snap -takeover
    if $STAMP check "$URI" $J --prefix $checks --chunk $OBJ $TORN --label "$label store" >$out; then
        STORE_RESULT=$(sed -n 's/.*prefix \(S=[0-9]*\) .*(\([0-9]*\) writes lost.*/\1 (\2 behind)/p' $out)
        grep -q "allowed by --allow-torn" $out && STORE_RESULT="$STORE_RESULT + a torn write"
        clean_stop $USBD_PID; rm $LOG
    else
        cat $out; FAILED=$((FAILED + 1)); STORE_RESULT="FAILED (see above; logs kept: $LOG $KILLED_LOG)"
        KILLED_LOG= # keep the log of the daemon that wrote this store
        clean_stop $USBD_PID
    fi
    rm -rf $st; store_rm $snap
}

# check_local TAG LABEL FLAGS...: restart on the same state dir; check durability
# and prefix, and record the recovered prefix in the journal (the next round
# continues from it). The daemon stays up for the next round.
check_local() {
    local tag=$1 label=$2 out=$TMP/local-check.out; shift 2
    start_vol l$tag $STATE $STORE "$@"
    local rc=0
    $STAMP check "$URI" $J --durability --prefix --record --chunk $OBJ $TORN --label "$label local" >$out || rc=$?
    case $rc in
    0)  LOCAL_RESULT=$(sed -n 's/.*prefix \(S=[0-9]*\) .*(\([0-9]*\) writes lost, \([0-9]*\) of them acknowledged.*/\1 (\2 lost, \3 acked)/p' $out)
        grep -q "allowed by --allow-torn" $out && LOCAL_RESULT="$LOCAL_RESULT + a torn write"
        [ -z "$KILLED_LOG" ] || rm -f $KILLED_LOG ;; # passed: keep only logs worth reading
    3)  # every flushed write is there, but unflushed ones survived out of
        # order; the journal now records what survived: go on, fail at the end
        cat $out; LOCAL_RESULT="NOT A PREFIX (see above)"
        # Reported, not failed, by default: like a disk's volatile cache,
        # the local state owes only flushed writes (NBD FLUSH semantics);
        # the prefix property is owed by the store image, checked above.
        [ "${CRASH_LOCAL_PREFIX:-0}" = 0 ] || LOCAL_FAILED=$((LOCAL_FAILED + 1)) ;;
    *)  cat $out; fail "$label: the daemon restarted on its state lost flushed writes or returned bad sectors (invariant 1)" ;;
    esac
}

# kill_round LABEL MODE [SECONDS]: run the writer and SIGKILL the daemon.
# MODE timer: after 0.2-1.6 s; upload: 0-20 ms after the first "epoch N:
# uploading" that comes after SECONDS (default 0.1-0.5) of writing.
kill_round() {
    local label=$1 mode=$2 first=${3:-0.$((1 + RANDOM % 5))} w n0 delay c
    $STAMP write "$URI" $J --seconds 60 --chunk $OBJ --seed $RANDOM >$TMP/writer.out &
    w=$!; PIDS+=($w)
    if [ $mode = timer ]; then
        delay=$((200 + RANDOM % 1400)); sleep $(printf '0.%03d' $((delay % 1000))); sleep $((delay / 1000))
        HOW="kill after ${delay} ms"
    else
        sleep $first # let some writes land before the next epoch
        n0=$(grep -c ': uploading' $LOG || true)
        for _ in $(seq $((1000 * USBD_SLOW))); do
            [ "$(grep -c ': uploading' $LOG || true)" -gt "$n0" ] && break; sleep 0.005
        done
        [ "$(grep -c ': uploading' $LOG || true)" -gt "$n0" ] ||
            fail "$label: no 'epoch N: uploading' within $((5 * USBD_SLOW)) s"
        delay=$((RANDOM % 21)); sleep $(printf '0.%03d' $delay)
        HOW="kill $delay ms into '$(grep -o 'epoch [0-9]*: uploading [0-9]* chunks' $LOG | tail -1)'"
    fi
    alive $USBD_PID || fail "$label: the daemon died before the kill: $(tail -3 $LOG)"
    alive $w || { cat $TMP/writer.out; fail "$label: the writer stopped before the kill"; }
    crash $USBD_PID
    store_copy $STORE $TMP/snap # right after the kill: what a second machine would see
    c=$(grep -o "epoch [0-9]* committed" $LOG | tail -1 | cut -d' ' -f1,2 || true)
    HOW="$HOW, last commit: ${c:-none since start}"
    wait $w || { cat $TMP/writer.out; fail "$label: the writer failed (an NBD error while connected)"; }
    forget $w
    WROTE=$(sed -n 's/.*(seq \([0-9]*\.\.[0-9]*\) issued), .*last flush covers seq \([0-9]*\).*/\1 flushed \2/p' $TMP/writer.out)
    KILLED_LOG=$LOG ROUND_LOG=$LOG
}

# lib.sh prints every log left on failure: keep those of the first failing
# round only.
round_logs() {
    case "$LOCAL_RESULT $STORE_RESULT" in *FAIL*|*"NOT A PREFIX"*)
        if [ -z "$KEPT" ]; then KEPT=$1; else rm -f $TMP/s$1.log $ROUND_LOG; fi ;;
    esac
}

# check_exact TAG LABEL: after a crash and a restart, SIGTERM uploads
# whatever the crash left dirty; the store alone must then hold exactly what
# the local cache held (invariant 3: no chunk that differs from the store is
# taken for clean). Then the daemon is restarted for the next round.
check_exact() {
    local tag=$1 label=$2 st=$TMP/snapstate out=$TMP/exact-check.out
    clean_stop $USBD_PID; rm -f $LOG
    store_copy $STORE $TMP/snap; rm -rf $st; mkdir -p $st
    start_vol e$tag $st $TMP/snap
    $STAMP check "$URI" $J --durability --prefix --chunk $OBJ --label "$label after SIGTERM" >$out ||
        { cat $out; fail "$label: after recovery and SIGTERM the store differs from the local cache (invariant 3)"; }
    grep -q "(0 writes lost" $out ||
        { cat $out; fail "$label: after recovery and SIGTERM the store lacks writes the local cache held (invariant 3)"; }
    clean_stop $USBD_PID; rm -f $LOG; rm -rf $st; store_rm $TMP/snap
    EXACT=", after SIGTERM the store = the cache"
    start_vol m$tag $STATE $STORE -flush-every=$(flush_every)
}

start_vol first $STATE $STORE -flush-every=$(flush_every)
for i in $(seq $ROUNDS); do
    label="round $i/$ROUNDS"
    mode=timer; [ $((RANDOM % 2)) = 0 ] && mode=upload
    kill_round "$label" $mode
    check_store r$i "$label" $TMP/snap
    check_local r$i "$label" -flush-every=$(flush_every)
    EXACT=; [ $((i % 3)) != 0 ] || check_exact r$i "$label"
    round_logs r$i
    echo "$label: wrote $WROTE; $HOW; local $LOCAL_RESULT; store $STORE_RESULT$EXACT"
done

# The store fails puts (before, or after doing them: a lost reply): uploads
# are retried, nothing acknowledged and flushed may be lost, and the store
# must still be at an epoch boundary.
k=0
# (the faults hit chunks and records, not the start's lease and probe: a
# start that cannot take the lease fails, which is another test's subject)
for spec in "put-error=0.3,seed=$RANDOM,match=vol/chunks/*+vol/epochs/*" \
            "put-error-after=0.3,put-latency=1ms..20ms,seed=$RANDOM,match=vol/chunks/*+vol/epochs/*"; do
    label="faults $spec" k=$((k + 1))
    clean_stop $USBD_PID; rm -f $LOG
    start_vol f$k $STATE $STORE -flush-every=300ms -store-faults=$spec
    kill_round "$label" upload 1.$((RANDOM % 10))
    grep -q "injected" $KILLED_LOG || fail "$label: no fault was injected (is -store-faults wired?)"
    injected=$(grep -c "injected" $KILLED_LOG)
    check_store f$k "$label" $TMP/snap
    check_local f$k "$label" -flush-every=500ms
    round_logs f$k
    echo "$label: wrote $WROTE; $injected faults injected; $HOW; local $LOCAL_RESULT; store $STORE_RESULT"
done

# -sync=remote: FLUSH returns once the epoch is committed in the store, so
# the store alone must hold every write acknowledged before the last FLUSH.
for k in 1 2; do
    label="sync=remote $k"
    clean_stop $USBD_PID; rm -f $LOG
    start_vol sync$k $STATE $STORE -flush-every=$(flush_every) -sync=remote
    kill_round "$label" timer
    check_store y$k "$label" $TMP/snap --durability
    check_local y$k "$label" -flush-every=500ms
    round_logs y$k
    echo "$label: wrote $WROTE; $HOW; local $LOCAL_RESULT; store $STORE_RESULT, durable"
done

# A clean stop flushes and commits everything: the store alone then holds
# every write.
$STAMP write "$URI" $J --writes 300 --chunk $OBJ --seed $RANDOM >$TMP/writer.out || { cat $TMP/writer.out; fail "writer"; }
clean_stop $USBD_PID
grep -q "committed" $LOG || fail "SIGTERM did not commit an epoch"
store_copy $STORE $TMP/final
mkdir -p $TMP/finalstate
start_vol final $TMP/finalstate $TMP/final
$STAMP check "$URI" $J --durability --prefix --label "after SIGTERM, store alone" || fail "SIGTERM did not put every write in the store"
clean_stop $USBD_PID

[ $FAILED = 0 ] || fail "$FAILED store snapshots were not a prefix of the write stream (invariant 2)"
[ $LOCAL_FAILED = 0 ] || fail "after $LOCAL_FAILED crashes the local state was not a prefix of the write stream (acknowledged, unflushed writes survived out of order)"
ok "crash consistency: $ROUNDS crash rounds + 2 with store faults + 2 with -sync=remote, seed $SEED"
