#!/bin/bash
# -kind=s3: the gateway restarted (radosgw stopped and started again; mon and
# OSD keep the data) in the middle of flushes while a client keeps writing.
# Each time, flushing resumes by itself (no signal, no client action): new
# epochs are committed after the restart. Nothing is lost: a daemon with an
# EMPTY state dir reads back, from the bucket alone, exactly what the client
# wrote last.
#   1. -sync=local (the default): the background flusher; a clean stop.
#   2. -sync=remote: the client's FLUSHes wait across the restart; then the
#      daemon is killed with SIGKILL (no flush at exit), so the bucket alone
#      must already hold everything the client wrote.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rgw.sh"
PY=/usr/bin/python3 # Debian's python3: it has libnbd's module
[ -x $PY ] && $PY -c "import nbd" 2>/dev/null || skip "python3-libnbd is not installed"
need nbdcopy
start_rgw
s3() { echo -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=restart -key=key:$TEST_KEY -name=rv "$@"; }
REGION=$((16 << 20))

# The client: writes the first 16 MiB over and over in 256 KiB pieces (each
# pass with new content, a FLUSH every 4 MiB) until STOPFILE exists, then
# finishes its pass, flushes, writes what the disk must now hold to EXPECT.
cat >$TMP/writer.py <<'PY'
import os, random, sys, nbd
uri, stopfile, expect, base = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
REGION, PIECE = 16 << 20, 256 << 10
def piece(p, i):
    return random.Random(p * 100003 + i).randbytes(PIECE)
h = nbd.NBD()
h.connect_uri(uri)
p = base
while True:
    p += 1
    for i in range(REGION // PIECE):
        h.pwrite(piece(p, i), i * PIECE)
        if i % 16 == 15:
            h.flush()
    if os.path.exists(stopfile):
        break
h.flush()
h.shutdown()
with open(expect, "wb") as f:
    for i in range(REGION // PIECE):
        f.write(piece(p, i))
print("writer: %d passes of 16 MiB" % (p - base))
PY
start_writer() { # TAG BASE
    rm -f $TMP/stop
    $PY $TMP/writer.py "$URI" $TMP/stop $TMP/expect-$1 $2 >$TMP/writer-$1.out 2>&1 &
    WRITER=$!; PIDS+=($WRITER)
}
finish_writer() { # TAG
    touch $TMP/stop
    wait $WRITER || { cat $TMP/writer-$1.out; fail "$1: the client got an error (it must only wait)"; }
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$WRITER" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
count() { grep -cE -- "$1" $LOG || true; }
STORE_FAILED=' failed: .*\(retry |, retrying in [0-9.]+s\)'
# wait_more PATTERN N SECONDS: until the log has more than N lines matching.
wait_more() {
    for _ in $(seq $(($3 * 10))); do [ "$(count "$1")" -gt "$2" ] && return 0; sleep 0.1; done
    fail "no new '$1' within $3 s"
}
# restart_gateway TAG: stop radosgw while an epoch is uploading, keep it down
# for 2 s (the client goes on writing into the cache, then waits), start it,
# and wait for the next commit: the daemon must get there by itself.
restart_gateway() {
    local tag=$1 up failed committed
    up=$(count ': uploading')
    wait_more ': uploading' $up 30
    # A store operation that failed while radosgw was down: retried by the
    # cache ("failed: ... (retry") or, when the outage fits in them, by the
    # S3 backend's own attempts ("(attempt 1/N, retrying in").
    failed=$(count "$STORE_FAILED")
    stop_radosgw
    kill -0 $WRITER 2>/dev/null || { cat $TMP/writer-$tag.out; fail "$tag: the client stopped"; }
    sleep 2
    start_radosgw
    committed=$(count ' committed:')
    wait_more ' committed:' $committed 120
    [ "$(count "$STORE_FAILED")" -gt $failed ] ||
        fail "$tag: no store operation failed while radosgw was down: the restart did not hit a flush"
    echo "$tag: $(grep -E "$STORE_FAILED" $LOG | tail -1 | sed 's/^[0-9:.]* [^:]*: //'); then $(grep ' committed:' $LOG | tail -1 | sed 's/^[0-9:.]* [^:]*: //')"
}
# read_back TAG: a daemon with an empty state dir, the bucket alone.
read_back() {
    start_usbd back_$1 $(s3 -store-dir=$TMP/empty-$1 -readonly) # (the killed writer's lease still runs)
    grep -q "local state rebuilt from the store alone" $LOG || fail "$1: not rebuilt from the bucket"
    nbdcopy "$URI" $TMP/back-$1
    stop_usbd
    cmp -n $REGION $TMP/back-$1 $TMP/expect-$1 || fail "$1: the bucket alone does not hold what the client wrote last"
}

# 1. Background flushes.
start_usbd a $(s3 -s3-create-bucket -store-dir=$TMP/st -size=32MiB -objsize=256KiB -flush-every=300ms -dirty-max=2MiB)
start_writer local 0
for r in 1 2 3; do restart_gateway "restart $r"; done
finish_writer local
cat $TMP/writer-local.out
stop_usbd
grep -q "everything is in the store\|stopped cleanly" $LOG || fail "the clean stop did not end with everything in the store"
read_back local
ok "-sync=local: radosgw restarted 3 times mid-flush, flushing resumed each time, nothing lost"

# 2. -sync=remote, then SIGKILL.
start_usbd b $(s3 -store-dir=$TMP/st -flush-every=300ms -dirty-max=2MiB -sync=remote)
start_writer remote 1000
restart_gateway "restart 4 (-sync=remote)"
finish_writer remote
cat $TMP/writer-remote.out
kill -KILL $USBD_PID; wait $USBD_PID 2>/dev/null || true
keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$USBD_PID" ] || keep+=("$p"); done; PIDS=("${keep[@]}")
read_back remote
ok "-sync=remote: FLUSH waited across the restart; after SIGKILL the bucket alone holds every write"
