#!/bin/bash
# s3-flush-vs-curl.sh - flush throughput of -kind=s3 (seal + parallel PUTs +
# epoch commit) against raw parallel PUTs with curl of the same number and
# size of objects, to the same throwaway Ceph RGW on 127.0.0.1, same run.
# env: USBD_BIN, MB (data written, default 256), WORKERS (default 8)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
USBD_BIN=${USBD_BIN:-$SRC/build/usbd-objstore}
MB=${MB:-256}
WORKERS=${WORKERS:-8}
T=$(mktemp -d /var/tmp/usbd-s3bench.XXXXXX)
PIDS=()
export CEPH_DIR=$T/ceph RGW_PORT=$((20000 + RANDOM % 20000)) MON_PORT=$((40000 + RANDOM % 20000))
cleanup() { set +e; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
            "$SRC/tests/rgw/stop-rgw.sh" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
OSD_BACKEND=memstore MEMSTORE_BYTES=$((8 << 30)) "$SRC/tests/rgw/start-rgw.sh" >$T/env 2>$T/rgw.log
. $T/env
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
KEY=key:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
head -c ${MB}M /dev/urandom > $T/data
n=$((MB / 4))

# 1. the daemon: one epoch of MB MiB in 4 MiB chunks
"$USBD_BIN" -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=bench -s3-create-bucket -key=$KEY -name=v \
    -size=1GiB -store-dir=$T/state -flush-every=1h -cache-size=2GiB -dirty-max=1GiB \
    -flush-workers=$WORKERS -s3-connections=$WORKERS -listen=unix:$T/s.sock -nbd-device=none 2>$T/d.log &
P=$!; PIDS+=($P)
for _ in $(seq 100); do [ -S $T/s.sock ] && break; sleep 0.1; done
nbdcopy --flush $T/data "nbd+unix:///?socket=$T/s.sock"
kill -HUP $P
for _ in $(seq 600); do grep -q "committed" $T/d.log && break; sleep 0.1; done
secs=$(grep "committed" $T/d.log | head -1 | sed 's/.* in \([0-9.]*\)s.*/\1/')
kill -TERM $P; wait $P || true

# 2. raw: the same number of 4 MiB objects, WORKERS curl processes at a time
split -b 4M -a 4 $T/data $T/part.
sha_empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: $sha_empty" -X PUT "$S3_ENDPOINT/raw"
put() { curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$1" "$S3_ENDPOINT/raw/$(basename $1)"; }
export -f put; export S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY
t0=$(date +%s.%N)
ls $T/part.* | xargs -P $WORKERS -n 1 bash -c 'put "$0"'
t1=$(date +%s.%N)
raw=$(echo "$t1 - $t0" | bc -l)

printf '%d x 4 MiB objects to RGW, %d in parallel\n' $n $WORKERS
printf '%-48s %6.2f s %7.1f MB/s %6.1f objects/s\n' "usbd-objstore epoch (seal zstd+AES+HMAC, PUT, commit)" \
    $secs $(echo "$MB*1.048576/$secs" | bc -l) $(echo "$n/$secs" | bc -l)
printf '%-48s %6.2f s %7.1f MB/s %6.1f objects/s\n' "raw curl PUTs (UNSIGNED-PAYLOAD)" \
    $raw $(echo "$MB*1.048576/$raw" | bc -l) $(echo "$n/$raw" | bc -l)
printf 'ratio (ours/raw): %.2fx\n' $(echo "$raw/$secs" | bc -l)
