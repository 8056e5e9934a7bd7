#!/bin/bash
# s3-cold-open.sh - a 20 GiB volume holding 1 GiB of data in a Ceph RGW on
# 127.0.0.1, opened by a daemon with an EMPTY state directory (another board):
# the time from exec until the first 4 KiB read is answered, and until the
# whole 1 GiB has been read once (cold, through read-ahead).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
USBD_BIN=${USBD_BIN:-$SRC/build/usbd-objstore}
T=$(mktemp -d /var/tmp/usbd-cold.XXXXXX)
PIDS=()
export CEPH_DIR=$T/ceph RGW_PORT=$((20000 + RANDOM % 20000)) MON_PORT=$((40000 + RANDOM % 20000))
cleanup() { set +e; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
            "$SRC/tests/rgw/stop-rgw.sh" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
OSD_BACKEND=memstore MEMSTORE_BYTES=$((8 << 30)) "$SRC/tests/rgw/start-rgw.sh" >$T/env 2>$T/rgw.log
. $T/env
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
KEY=key:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
S3="-kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=cold -key=$KEY -name=v -nbd-device=none"
sock() { for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.01; done; exit 1; }

"$USBD_BIN" $S3 -s3-create-bucket -size=20GiB -store-dir=$T/a -listen=unix:$T/a.sock 2>$T/a.log &
P=$!; PIDS+=($P); sock $T/a.sock
head -c 1G /dev/urandom > $T/data
nbdcopy --flush $T/data "nbd+unix:///?socket=$T/a.sock"
kill -TERM $P; wait $P   # everything committed to the store

t0=$(date +%s.%N)
"$USBD_BIN" $S3 -store-dir=$T/b -listen=unix:$T/b.sock 2>$T/b.log &
P=$!; PIDS+=($P); sock $T/b.sock
PATH=/usr/bin:$PATH nbdsh -u "nbd+unix:///?socket=$T/b.sock" -c 'h.pread(4096, 0)'
t1=$(date +%s.%N)
nbdcopy "nbd+unix:///?socket=$T/b.sock" $T/back   # the 19 GiB of holes are skipped
cmp -n $((1 << 30)) $T/back $T/data
t2=$(date +%s.%N)
printf 'cold open of a 20 GiB volume (1 GiB of data, 256 chunks): first 4 KiB read after %.2f s\n' $(echo "$t1-$t0" | bc -l)
printf 'then 1 GiB read cold from the store in %.1f s (%.0f MiB/s)\n' $(echo "$t2-$t1" | bc -l) $(echo "1024/($t2-$t1)" | bc -l)
kill -TERM $P; wait $P || true
grep "this run" $T/b.log | sed 's/.*info: //'
