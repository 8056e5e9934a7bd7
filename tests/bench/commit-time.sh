#!/bin/bash
# commit-time.sh - how long an epoch takes from "uploading" to "committed",
# for small epochs (one 4 KiB write each: the upload is one small object, so
# the commit protocol is most of it) and for large ones (32 MiB), on a
# throwaway Ceph RGW on 127.0.0.1, for one or two builds in the same run
# (alternating), so a change to the commit path is measured against its
# predecessor.
#
#   tests/bench/commit-time.sh                         # build/usbd-objstore only
#   OLD_BIN=/path/to/old/usbd-objstore tests/bench/commit-time.sh
#   env: USBD_BIN, OLD_BIN, EPOCHS (small epochs per run, 40), ROUNDS (2)
#
# Each run: a new bucket, a 1 GiB volume (4 MiB chunks), -flush-every=1h;
# EPOCHS times: write 4 KiB at a new chunk, SIGHUP, wait for the commit;
# then 4 epochs of 32 MiB. The time of an epoch is read from the daemon's
# log (millisecond stamps of "epoch N: uploading" and "epoch N committed").
# Prints the median and the 90th percentile of each kind, per build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
USBD_BIN=${USBD_BIN:-$SRC/build/usbd-objstore}
OLD_BIN=${OLD_BIN:-}
EPOCHS=${EPOCHS:-40}
ROUNDS=${ROUNDS:-2}
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || { echo "SKIP: must run as root (Ceph)"; exit 77; }
$PY -c "import nbd" 2>/dev/null || { echo "SKIP: python3-libnbd is not installed"; exit 77; }
T=$(mktemp -d /var/tmp/usbd-commit-time.XXXXXX)
PID=
export CEPH_DIR=$T/ceph RGW_PORT=$((20000 + RANDOM % 20000)) MON_PORT=$((40000 + RANDOM % 20000))
cleanup() {
    set +e
    [ -n "$PID" ] && { kill -KILL $PID 2>/dev/null; wait $PID 2>/dev/null; }
    "$SRC/tests/rgw/stop-rgw.sh" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
"$SRC/tests/rgw/start-rgw.sh" >$T/env 2>$T/rgw.log
. $T/env
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
KEY=$(printf '3c%.0s' $(seq 32))
head -c 32M /dev/urandom >$T/big

# run TAG BIN: one daemon, EPOCHS small epochs and 4 large ones.
run() {
    local tag=$1 bin=$2 log=$T/$1.log sock=$T/$1.sock n
    rm -rf $T/state; rm -f $log
    "$bin" -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=ct-$tag-$RANDOM -s3-create-bucket \
        -key=key:$KEY -name=ct -size=1GiB -store-dir=$T/state -flush-every=1h \
        -listen=unix:$sock -nbd-device=none -log-level=info 2>$log &
    PID=$!
    for _ in $(seq 200); do grep -q "ready:" $log 2>/dev/null && break; sleep 0.05; done
    grep -q "ready:" $log || { cat $log; exit 1; }
    commit() { # wait until the log has more than $1 commits
        for _ in $(seq 600); do [ "$(grep -c ' committed: ' $log)" -gt "$1" ] && return 0; sleep 0.05; done
        echo "no commit" >&2; cat $log >&2; exit 1
    }
    for i in $(seq $EPOCHS); do
        n=$(grep -c ' committed: ' $log || true)
        $PY -c 'import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(b"%08d" % int(sys.argv[2]) * 512, int(sys.argv[2]) * 4 << 20)
h.flush(); h.shutdown()' "nbd+unix:///?socket=$sock" $i
        kill -HUP $PID; commit $n
    done
    for i in 1 2 3 4; do
        n=$(grep -c ' committed: ' $log || true)
        nbdcopy --flush $T/big "nbd+unix:///?socket=$sock"
        kill -HUP $PID; commit $n
    done
    kill -TERM $PID; wait $PID || true; PID=
    $PY - "$log" "$tag" "$EPOCHS" >>$T/results <<'PY'
import re, sys
log, tag, small = sys.argv[1], sys.argv[2], int(sys.argv[3])
def ms(line):
    h, m, s = line.split()[0].split(":")
    return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000
up, done = {}, []
for line in open(log):
    m = re.search(r"epoch (\d+): uploading", line)
    if m: up[m.group(1)] = ms(line)
    m = re.search(r"epoch (\d+) committed: (\d+) chunks", line)
    if m and m.group(1) in up: done.append(ms(line) - up[m.group(1)])
for kind, xs in (("small", done[:small]), ("32MiB", done[small:])):
    for x in xs: print(tag, kind, "%.1f" % x)
PY
}
for r in $(seq $ROUNDS); do
    run new $USBD_BIN
    [ -z "$OLD_BIN" ] || run old $OLD_BIN
done
$PY - $T/results <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
for tag in ("old", "new"):
    for kind in ("small", "32MiB"):
        xs = sorted(float(r[2]) for r in rows if r[0] == tag and r[1] == kind)
        if not xs: continue
        p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
        print("%-4s %-6s epochs %3d  median %7.1f ms  p90 %7.1f ms" % (tag, kind, len(xs), statistics.median(xs), p90))
PY
