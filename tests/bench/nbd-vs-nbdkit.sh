#!/bin/bash
# nbd-vs-nbdkit.sh - the NBD path of usbd-objstore's RAM device against
# `nbdkit memory` of the same size, in the same run, with fio's nbd engine.
# Prints each figure and the ratio ours/nbdkit.
#   env: USBD_BIN (default build/usbd-objstore), RUNTIME (s, default 6), SIZE (default 2G),
#        ROUNDS (default 2: alternate the servers, keep the best of each)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
USBD_BIN=${USBD_BIN:-$HERE/../../build/usbd-objstore}
RUNTIME=${RUNTIME:-6}
SIZE=${SIZE:-2G}
ROUNDS=${ROUNDS:-2}
for t in fio nbdkit "$USBD_BIN"; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 2; }; done
T=$(mktemp -d /tmp/usbd-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }

"$USBD_BIN" -kind=mem -size=$SIZE -listen=unix:$T/usbd.sock -nbd-device=none -log-level=warn 2>$T/usbd.log &
PIDS+=($!)
nbdkit -f -U $T/nbdkit.sock memory $SIZE &
PIDS+=($!)
wait_sock $T/usbd.sock; wait_sock $T/nbdkit.sock

# job name, fio args
JOBS=(
  "seq-read-1M-qd16|--rw=read --bs=1M --iodepth=16"
  "seq-write-1M-qd16|--rw=write --bs=1M --iodepth=16"
  "rand-read-4K-qd32|--rw=randread --bs=4k --iodepth=32"
  "rand-write-4K-qd32|--rw=randwrite --bs=4k --iodepth=32"
)
# fill both disks first so reads hit written memory, not holes
for s in usbd nbdkit; do
  fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$T/$s.sock" --rw=write --bs=1M \
      --iodepth=16 --size=$SIZE --output-format=terse >/dev/null
done

run() { # sock args -> bandwidth KiB/s and IOPS
  local out
  out=$(fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$1" $2 --size=$SIZE \
        --time_based --runtime=$RUNTIME --output-format=json | sed -n "/^{/,\$p")
  python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; r=j["read"]; w=j["write"]; d=r if r["io_bytes"] else w; print(int(d["bw"]), int(d["iops"]))' <<<"$out"
}

printf '%-20s %14s %14s %7s\n' test usbd-objstore nbdkit ratio
for job in "${JOBS[@]}"; do
  name=${job%%|*}; args=${job#*|}
  best_u=0; best_k=0; iu=0; ik=0
  for r in $(seq $ROUNDS); do
    read -r bw io < <(run $T/usbd.sock "$args"); [ "$bw" -gt "$best_u" ] && { best_u=$bw; iu=$io; }
    read -r bw io < <(run $T/nbdkit.sock "$args"); [ "$bw" -gt "$best_k" ] && { best_k=$bw; ik=$io; }
  done
  case $name in
    seq*) printf '%-20s %10.0f MiB/s %8.0f MiB/s %6.2fx\n' "$name" "$(echo "$best_u/1024" | bc -l)" "$(echo "$best_k/1024" | bc -l)" "$(echo "$best_u/$best_k" | bc -l)";;
    *)    printf '%-20s %10d IOPS %9d IOPS %6.2fx\n' "$name" "$iu" "$ik" "$(echo "$iu/$ik" | bc -l)";;
  esac
done
