#!/bin/bash
# cache-bench.sh - the object-store device (-kind=local), measured:
#  1. hot-cache throughput through NBD against `nbdkit file` on a file of the
#     same size, same run, fio's nbd engine (ratio ours/nbdkit)
#  2. flush throughput to the local store (seal + put, epoch committed)
#  3. write amplification: bytes put to the store per byte written, for
#     sequential 1 MiB writes and for 4 KiB random writes
#  4. compression: an ext4 image filled from /usr/share (mke2fs -d)
#  5. RSS of the daemon with a 20 GiB volume and a 1 GiB cache
# env: USBD_BIN, SIZE (default 1G), RUNTIME (default 6 s), DIR (scratch, default /var/tmp),
#      PARTS (default "1 2 4 5")
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
USBD_BIN=${USBD_BIN:-$HERE/../../build/usbd-objstore}
SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-6}
T=$(mktemp -d "${DIR:-/var/tmp}/usbd-cbench.XXXXXX")
PIDS=()
cleanup() { set +e; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
KEY=key:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
uri() { echo "nbd+unix:///?socket=$1"; }
fio_run() { # sock args -> KiB/s IOPS
  fio --name=b --ioengine=nbd --uri="$(uri $1)" $2 --size=$SIZE --time_based --runtime=$RUNTIME \
      --output-format=json | sed -n '/^{/,$p' | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; d=j["read"] if j["read"]["io_bytes"] else j["write"]; print(int(d["bw"]), int(d["iops"]))'
}
start_local() { # name extra-flags...
  local n=$1; shift
  "$USBD_BIN" -kind=local -store=$T/store-$n -store-dir=$T/state-$n -name=v -key=$KEY \
      -listen=unix:$T/$n.sock -nbd-device=none -log-level=info "$@" 2>$T/$n.log &
  PIDS+=($!); wait_sock $T/$n.sock; LAST=$!
}
store_bytes() { du -sb --apparent-size "$1/v/chunks" 2>/dev/null | cut -f1; }
PARTS=${PARTS:-1 2 4 5}
part() { [[ " $PARTS " == *" $1 "* ]]; }
# epoch_figures LOG N: "MiB-sealed MiB-stored seconds" of the Nth committed epoch
epoch_figures() { grep 'committed:' "$1" | sed -n "${2}p" | sed 's/.*, \([0-9.]*\) MiB sealed into \([0-9.]*\) MiB in \([0-9.]*\)s.*/\1 \2 \3/'; }
wait_committed() { # log: wait until no epoch is uploading and the count of commits is >= $2
  for _ in $(seq 600); do
    [ "$(grep -c 'committed' $1)" -ge "$2" ] && return 0; sleep 0.1; done; echo "no commit in $1" >&2; exit 1; }

if part 1; then
echo "== 1. hot cache vs nbdkit file ($SIZE, fio nbd engine, ${RUNTIME}s each, best of 2)"
truncate -s $SIZE $T/nbdkit.img
nbdkit -f -U $T/nbdkit.sock file $T/nbdkit.img & PIDS+=($!)
wait_sock $T/nbdkit.sock
# The cache path alone: no epoch during the runs (-flush-every=1h) and room
# for every write (-dirty-max is at most half of -cache-size).
start_local hot -size=$SIZE -flush-every=1h -cache-size=4GiB -dirty-max=2GiB
for s in hot nbdkit; do   # fill: the cache is hot, the file is allocated
  fio --name=fill --ioengine=nbd --uri="$(uri $T/$s.sock)" --rw=write --bs=1M --iodepth=16 --size=$SIZE >/dev/null
done
kill -HUP $LAST; wait_committed $T/hot.log 1   # filled chunks are clean, as on a warm board
printf '%-20s %14s %14s %7s\n' test usbd-objstore "nbdkit file" ratio
for job in "seq-read-1M-qd16|--rw=read --bs=1M --iodepth=16" "seq-write-1M-qd16|--rw=write --bs=1M --iodepth=16" \
           "rand-read-4K-qd32|--rw=randread --bs=4k --iodepth=32" "rand-write-4K-qd32|--rw=randwrite --bs=4k --iodepth=32"; do
  name=${job%%|*}; args=${job#*|}; bu=0; bk=0; iu=0; ik=0
  for r in 1 2; do
    read -r bw io < <(fio_run $T/hot.sock "$args"); [ $bw -gt $bu ] && { bu=$bw; iu=$io; }
    read -r bw io < <(fio_run $T/nbdkit.sock "$args"); [ $bw -gt $bk ] && { bk=$bw; ik=$io; }
  done
  case $name in
    seq*) printf '%-20s %8.0f MiB/s %8.0f MiB/s %6.2fx\n' $name $(echo "$bu/1024" | bc -l) $(echo "$bk/1024" | bc -l) $(echo "$bu/$bk" | bc -l) ;;
    *)    printf '%-20s %9d IOPS %9d IOPS %6.2fx\n' $name $iu $ik $(echo "$iu/$ik" | bc -l) ;;
  esac
done
kill -TERM $LAST; wait $LAST 2>/dev/null || true

fi
if part 2; then
echo "== 2+3. flush throughput and write amplification (zstd 1 + AES-256-CTR + HMAC, 4 MiB chunks)"
# One epoch each: no automatic flush (-flush-every=1h), room for all of it.
BIG="-size=$SIZE -flush-every=1h -cache-size=4GiB -dirty-max=2GiB"
head -c 512M /dev/urandom > $T/rand.bin
start_local seq $BIG
nbdcopy --flush $T/rand.bin "$(uri $T/seq.sock)"
kill -HUP $LAST; wait_committed $T/seq.log 1
read -r sealed stored secs < <(epoch_figures $T/seq.log 1)
printf 'flush of 512 MiB random data: %.2f s, %.0f MiB/s; put %.1f MiB: amplification %.3f (sequential writes)\n' \
  $secs $(echo "$sealed/$secs" | bc -l) $stored $(echo "$stored/512" | bc -l)
kill -TERM $LAST; wait $LAST 2>/dev/null || true
# 4 KiB random writes over 256 MiB of existing data, then one epoch
start_local rnd $BIG
nbdcopy --flush $T/rand.bin "$(uri $T/rnd.sock)"; kill -HUP $LAST; wait_committed $T/rnd.log 1
# incompressible data in every write (fio reuses one buffer by default)
fio --name=r --ioengine=nbd --uri="$(uri $T/rnd.sock)" --rw=randwrite --bs=4k --iodepth=1 --size=512M \
    --refill_buffers=1 --randrepeat=0 \
    --time_based --runtime=10 --output-format=json | sed -n '/^{/,$p' > $T/r.json
written=$(python3 -c 'import json; print(json.load(open("'$T'/r.json"))["jobs"][0]["write"]["io_bytes"])')
kill -HUP $LAST; wait_committed $T/rnd.log 2
read -r sealed stored secs < <(epoch_figures $T/rnd.log 2)
printf '4 KiB random writes (QD1, 10 s over 512 MiB): %.1f MiB written, %.1f MiB put: amplification %.1fx\n' \
  $(echo "$written/1048576" | bc -l) $stored $(echo "$stored*1048576/$written" | bc -l)
# The same, sparse: 100 writes a second for 10 s (s3backer's measured QD1 rate)
fio --name=r --ioengine=nbd --uri="$(uri $T/rnd.sock)" --rw=randwrite --bs=4k --iodepth=1 --size=512M \
    --refill_buffers=1 --randrepeat=0 --rate_iops=100 \
    --time_based --runtime=10 --output-format=json | sed -n '/^{/,$p' > $T/r2.json
written=$(python3 -c 'import json; print(json.load(open("'$T'/r2.json"))["jobs"][0]["write"]["io_bytes"])')
kill -HUP $LAST; wait_committed $T/rnd.log 3
read -r sealed stored secs < <(epoch_figures $T/rnd.log 3)
printf '4 KiB random writes at 100/s (10 s over 512 MiB): %.1f MiB written, %.1f MiB put: amplification %.0fx\n' \
  $(echo "$written/1048576" | bc -l) $stored $(echo "$stored*1048576/$written" | bc -l)
kill -TERM $LAST; wait $LAST 2>/dev/null || true
fi
if part 4; then
echo "== 4. compression of an ext4 image filled from /usr/share"
mke2fs -q -t ext4 -d /usr/share $T/fs.img 1200M 2>/dev/null || mke2fs -q -t ext4 -d /usr/share/doc $T/fs.img 1200M
used=$(du -sb /usr/share 2>/dev/null | cut -f1)
start_local fs -size=1200MiB -flush-every=1h
nbdcopy --flush $T/fs.img "$(uri $T/fs.sock)"; kill -HUP $LAST; wait_committed $T/fs.log 1
read -r sealed stored secs < <(epoch_figures $T/fs.log 1)
bs=$(dumpe2fs -h $T/fs.img 2>/dev/null | awk -F': *' '/^Block size/{print $2}')
blocks=$(dumpe2fs -h $T/fs.img 2>/dev/null | awk -F': *' '/^Block count/{b=$2} /^Free blocks/{f=$2} END{print b-f}')
printf 'ext4 image (%.0f MiB of used blocks): %.0f MiB of non-zero chunks sealed into %.0f MiB: compression %.2fx\n' \
  $(echo "$blocks*$bs/1048576" | bc -l) $sealed $stored $(echo "$sealed/$stored" | bc -l)
kill -TERM $LAST; wait $LAST 2>/dev/null || true
fi
if part 5; then
echo "== 5. RSS with a 20 GiB volume and a 1 GiB cache"
start_local big -size=20GiB -cache-size=1GiB -flush-every=1h
rss0=$(awk '/VmRSS/{print $2}' /proc/$LAST/status)
fio --name=w --ioengine=nbd --uri="$(uri $T/big.sock)" --rw=randwrite --bs=64k --iodepth=16 --size=20G --io_size=256M >/dev/null
rss1=$(awk '/VmRSS/{print $2}' /proc/$LAST/status)
printf 'RSS idle %d MiB, after 256 MiB of random 64 KiB writes over 20 GiB (cache 1 GiB): %d MiB\n' $((rss0 / 1024)) $((rss1 / 1024))
kill -TERM $LAST; wait $LAST 2>/dev/null || true
fi
