#!/bin/bash
# s3backer-vs-usbd.sh - usbd-objstore -kind=s3 against s3backer (Debian's 1.5.4,
# FUSE) on the same throwaway Ceph RGW on 127.0.0.1, in the same run, with the
# same device size, block/chunk size, cache size, compression and encryption.
#
#   tests/bench/s3backer-vs-usbd.sh                  # ROUNDS=2, about 10 min
#   USBD_CACHE=4GiB USBD_DIRTY=2GiB tests/bench/s3backer-vs-usbd.sh
#   env: USBD_BIN (default build/usbd-objstore), S3BACKER (default s3backer),
#        ROUNDS (2; the order of the two peers alternates), MB (data, 1024),
#        SIZE_GIB (device, 4), RAND_SECS (20), RATE_IOPS (100), WORKERS (8),
#        FLUSH_SECS (10), USBD_CACHE (2GiB), USBD_DIRTY (1GiB), USBD_FLAGS
#        (more flags for ours),
#        DATA_FILE (default: MB MiB of /usr/bin, /usr/lib, /usr/libexec files,
#        which compress 2.6x with zstd -1 and 2.8x with gzip -6)
#
# Needs: s3backer (apt-get install s3backer; the script skips, exit 77, when it
# is missing), fuse (/dev/fuse, fusermount), fio with the nbd engine, nbdcopy,
# the Ceph packages for tests/rgw/start-rgw.sh, python3, root.
#
# What it measures, for each peer, each round on new buckets:
#  1. sequential write of MB MiB of DATA_FILE, 4 MiB requests one at a time
#     (s3backer: dd oflag=direct conv=fsync bs=4M into its FUSE file, whose
#     fsync returns before the upload; ours: nbdcopy -C 1 -R 1
#     --request-size=4MiB --flush over the unix socket), then stop the peer
#     (s3backer: fusermount -u; ours: SIGTERM) and wait for the process to
#     exit: both upload everything dirty before exiting, so "until in store"
#     is from the first byte written to the exit.
#  2. cold sequential read of the MB MiB: a new process with an empty cache
#     (s3backer: a new mount, no cache file; ours: an empty -store-dir),
#     fio rw=read bs=4M iodepth=1 (s3backer: psync direct=1 on the FUSE file;
#     ours: the nbd engine). The start-up (exec until the file/socket is
#     there) is reported apart. The data is then compared with DATA_FILE.
#  3. write amplification, the same writes for both: 4 KiB random writes at
#     queue depth 1, RATE_IOPS a second for RAND_SECS, over the MB MiB, in the
#     process of step 2 (every block/chunk cached and clean), new random data
#     in each write (fio --refill_buffers); the same fio job, psync direct=1
#     on the FUSE file vs the nbd engine; then stop and wait for everything
#     to be in the store.
#  4. the same at full speed for RAND_SECS (IOPS), in a new process whose
#     cache was filled by reading the MB MiB once (s3backer's cache is RAM);
#     the peers do different numbers of writes here, so its bytes put are
#     shown per 1000 writes.
#  Every peer process is stopped and waited for between steps 1, 2-3 and 4.
#  Bytes put to the store: RGW's own usage log (rgw_enable_usage_log, turned
#  on in this throwaway cluster), put_obj bytes_received per bucket, for both
#  peers; each step's figure is the difference before/after it. Write
#  amplification = bytes put / bytes the client wrote. Our daemon's own count
#  ("this run: ... objects put") is printed beside it as a cross-check.
#  CPU seconds and peak RSS of each daemon process come from /proc.
#  Results and what they mean: BENCHMARKS.md, "Against s3backer".
#
# The peers' options (4 MiB blocks/chunks, 2 GiB cache of which 1 GiB may be
# dirty, WORKERS parallel uploads, changes held up to FLUSH_SECS):
#   s3backer -f --accessFile=F --baseURL=http://127.0.0.1:PORT/ --authVersion=aws4
#     --blockSize=4M --size=${SIZE_GIB}G --compress --encrypt=AES-256-CBC --passwordFile=F
#     --blockCacheSize=512 --blockCacheMaxDirty=256 --blockCacheThreads=$WORKERS
#     --blockCacheWriteDelay=$((FLUSH_SECS*1000)) --listBlocks BUCKET MNT
#   (--compress is zlib level 6, its default; no --region: 1.5.4 switches to
#   virtual-host URLs when --region is given, and RGW here signs us-east-1,
#   its default; path-style is what 1.5.4 does without --vhost. --listBlocks
#   on: it learns which blocks exist at mount, as our chunk map does, so
#   writes to absent blocks need no GET.)
#   usbd-objstore -kind=s3 -s3-endpoint=http://127.0.0.1:PORT -s3-bucket=B
#     -s3-create-bucket -key=key:HEX -size=${SIZE_GIB}GiB -objsize=4MiB -compress=zstd
#     (level 1) -cipher=aes-256-ctr -cache-size=$USBD_CACHE -dirty-max=$USBD_DIRTY
#     -flush-workers=$WORKERS -s3-connections=$WORKERS -flush-every=${FLUSH_SECS}s
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
USBD_BIN=${USBD_BIN:-$SRC/build/usbd-objstore}
S3BACKER=${S3BACKER:-s3backer}
ROUNDS=${ROUNDS:-2}
MB=${MB:-1024}
SIZE_GIB=${SIZE_GIB:-4}
RAND_SECS=${RAND_SECS:-20}
WORKERS=${WORKERS:-8}
FLUSH_SECS=${FLUSH_SECS:-10}
RATE_IOPS=${RATE_IOPS:-100}
USBD_CACHE=${USBD_CACHE:-2GiB}
USBD_DIRTY=${USBD_DIRTY:-1GiB}
USBD_FLAGS=${USBD_FLAGS:-}
skip() { echo "SKIP: $*"; exit 77; }
command -v "$S3BACKER" >/dev/null || skip "s3backer is not installed (apt-get install s3backer)"
for t in fio nbdcopy fusermount mountpoint python3 radosgw-admin bc; do
    command -v $t >/dev/null || skip "$t is not installed"
done
[ -c /dev/fuse ] || skip "no /dev/fuse"
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"
[ -x "$USBD_BIN" ] || { echo "no $USBD_BIN (set USBD_BIN)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || skip "must run as root (Ceph, FUSE)"

T=$(mktemp -d /var/tmp/usbd-vs-s3b.XXXXXX)
CUR=   # the peer process running now (exited ones are not kept: their pids get reused)
export CEPH_DIR=$T/ceph RGW_PORT=$((20000 + RANDOM % 20000)) MON_PORT=$((40000 + RANDOM % 20000))
cleanup() {
    local rc=$?
    set +e
    [ $rc = 0 ] || for f in $T/*.log; do echo "== $f"; tail -n 8 $f; done >&2
    mountpoint -q $T/mnt 2>/dev/null && fusermount -u -z $T/mnt
    [ -n "$CUR" ] && { kill $CUR 2>/dev/null; wait $CUR 2>/dev/null; }
    "$SRC/tests/rgw/stop-rgw.sh" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
calc() { echo "$*" | bc -l; }

# --- the store: RGW with its usage log on, flushed every second ----------------
OSD_BACKEND=memstore MEMSTORE_BYTES=$((8 << 30)) "$SRC/tests/rgw/start-rgw.sh" >$T/env 2>$T/rgw.log
. $T/env
sed -i 's/^rgw_enable_usage_log = false$/rgw_enable_usage_log = true\nrgw_usage_log_tick_interval = 1\nrgw_usage_log_flush_threshold = 1/' \
    $CEPH_DIR/ceph.conf
grep -q '^rgw_enable_usage_log = true' $CEPH_DIR/ceph.conf
"$SRC/tests/rgw/stop-rgw.sh" --radosgw-only >/dev/null 2>&1
"$SRC/tests/rgw/start-rgw.sh" --radosgw-only >/dev/null 2>>$T/rgw.log
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY

# usage BUCKET -> "put_bytes put_ops get_bytes get_ops", once RGW's log is quiet
usage_raw() {
    radosgw-admin -c $CEPH_CONF usage show --uid=test 2>/dev/null | python3 -c '
import json, sys
b = sys.argv[1]; pb = po = gb = go = 0
for e in json.load(sys.stdin).get("entries", []):
    for k in e.get("buckets", []):
        if k.get("bucket") != b:
            continue
        for c in k.get("categories", []):
            if c["category"] == "put_obj":
                pb += c["bytes_received"]; po += c["successful_ops"]
            elif c["category"] == "get_obj":
                gb += c["bytes_sent"]; go += c["successful_ops"]
print(pb, po, gb, go)' "$1"
}
usage() {
    local a b
    sleep 1.5
    a=$(usage_raw $1)
    for _ in $(seq 30); do sleep 1.5; b=$(usage_raw $1); [ "$a" = "$b" ] && break; a=$b; done
    echo "$b"
}
mkbucket() {
    curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        -X PUT "$S3_ENDPOINT/$1"
}

# --- process accounting, sampled every 50 ms while the process runs (bash reaps
# its children itself, so nothing is left to read after the exit): CPU seconds
# (the last sample) and peak RSS (VmHWM) ---
HZ=$(getconf CLK_TCK)
CPU=0; HWM=0
sample() {
    local c h
    c=$(awk -v hz=$HZ '{ sub(/.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' /proc/$1/stat 2>/dev/null) || return 1
    h=$(awk '/^VmHWM/ { print int($2 / 1024) }' /proc/$1/status 2>/dev/null) || return 1
    CPU=$c
    [ "${h:-0}" -gt "$HWM" ] && HWM=$h
    return 0
}
# wait_exit PID: until PID has exited; CPU and HWM as last sampled
wait_exit() {
    while sample $1 && kill -0 $1 2>/dev/null; do sleep 0.05; done
    wait $1 || echo "warning: pid $1 exited with status $?" >&2
    CUR=
}
wait_for() { for _ in $(seq 600); do eval "$1" && return 0; sleep 0.05; done; echo "timeout: $1" >&2; exit 1; }

# fio_run OUTFILE fio-args... -> "iops bytes runtime_ms max_latency_ms" (fio's json)
fio_run() {
    local out=$1; shift
    fio --output-format=json --output=$out "$@" >/dev/null
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
print(r["iops"] + w["iops"], r["io_bytes"] + w["io_bytes"], r["runtime"] + w["runtime"],
      round(max(r["clat_ns"]["max"], w["clat_ns"]["max"]) / 1e6))' $out
}

# --- data: real executables and libraries (compressible, not trivially) ------
if [ -n "${DATA_FILE:-}" ]; then
    cp "$DATA_FILE" $T/data
else
    (find /usr/bin /usr/lib /usr/libexec -type f -size +16k 2>/dev/null | sort | xargs cat 2>/dev/null || true) |
        head -c $((MB << 20)) > $T/data || true
fi
[ "$(stat -c %s $T/data)" -ge $((MB << 20)) ] || { echo "data file shorter than $MB MiB" >&2; exit 2; }
truncate -s $((MB << 20)) $T/data
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$S3_ACCESS_KEY:$S3_SECRET_KEY" > $T/s3b.access
echo "$KEY" > $T/s3b.password
chmod 600 $T/s3b.access $T/s3b.password
mkdir -p $T/mnt
NBLK=$((MB / 4))

declare -A R   # R[peer.round.metric]

usbd_start() { # bucket statedir -> P, STARTUP
    local t0; t0=$(now)
    rm -f $T/u.sock
    "$USBD_BIN" -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=$1 -s3-create-bucket -key=key:$KEY -name=v \
        -size=${SIZE_GIB}GiB -objsize=4MiB -compress=zstd -cipher=aes-256-ctr -store-dir=$2 \
        -cache-size=$USBD_CACHE -dirty-max=$USBD_DIRTY $USBD_FLAGS -flush-workers=$WORKERS -s3-connections=$WORKERS \
        -flush-every=${FLUSH_SECS}s -listen=unix:$T/u.sock -nbd-device=none 2>>$T/usbd-$1.log &
    P=$!; CUR=$P; HWM=0
    wait_for "[ -S $T/u.sock ] || ! kill -0 $P 2>/dev/null"
    [ -S $T/u.sock ] || { echo "usbd-objstore did not start" >&2; exit 1; }
    STARTUP=$(calc "$(now) - $t0")
}
usbd_stop() { sample $P || true; kill -TERM $P; wait_exit $P; }
URI="nbd+unix:///?socket=$T/u.sock"

s3b_start() { # bucket -> P, STARTUP
    local t0; t0=$(now)
    "$S3BACKER" -f --accessFile=$T/s3b.access --baseURL=$S3_ENDPOINT/ --authVersion=aws4 \
        --blockSize=4M --size=${SIZE_GIB}G --compress --encrypt=AES-256-CBC --passwordFile=$T/s3b.password \
        --blockCacheSize=512 --blockCacheMaxDirty=256 --blockCacheThreads=$WORKERS \
        --blockCacheWriteDelay=$((FLUSH_SECS * 1000)) --listBlocks $1 $T/mnt >>$T/s3b-$1.log 2>&1 &
    P=$!; CUR=$P; HWM=0
    wait_for "[ -f $T/mnt/file ] || ! kill -0 $P 2>/dev/null"
    [ -f $T/mnt/file ] || { echo "s3backer did not mount" >&2; exit 1; }
    STARTUP=$(calc "$(now) - $t0")
}
s3b_stop() { sample $P || true; fusermount -u $T/mnt; wait_exit $P; }

# randw PEER JSON fio-args...: 4 KiB random writes at queue depth 1 over MB MiB,
# new random data in every write (fio's default buffer would compress ~17x)
randw() {
    local peer=$1 out=$2; shift 2
    if [ $peer = usbd ]; then
        fio_run $out --name=w --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=1 --refill_buffers \
            --size=${MB}m "$@"
    else
        fio_run $out --name=w --filename=$T/mnt/file --ioengine=psync --direct=1 --rw=randwrite --bs=4k \
            --iodepth=1 --refill_buffers --size=${MB}m "$@"
    fi
}
# readall PEER FILE: the MB MiB to FILE
readall() {
    if [ $1 = usbd ]; then
        local to=$2; [ $to = /dev/null ] && to=null:
        nbdcopy "$URI" $to   # the rest of the device is holes, skipped
    else
        dd if=$T/mnt/file of=$2 bs=4M count=$NBLK iflag=direct status=none
    fi
}

# run_peer PEER ROUND
run_peer() {
    local peer=$1 r=$2 b=$1-$2 t0 t1 t2 u0 x hwm
    local k=$peer.$r
    [ $peer = s3b ] && mkbucket $b   # ours: -s3-create-bucket
    # 1. sequential write, then stop: everything uploaded when the process is gone
    ${peer}_start $b $T/$b-a
    t0=$(now)
    if [ $peer = usbd ]; then
        nbdcopy -C 1 -R 1 --request-size=$((4 << 20)) --flush $T/data "$URI"
    else
        dd if=$T/data of=$T/mnt/file bs=4M count=$NBLK oflag=direct conv=notrunc,fsync status=none
    fi
    t1=$(now)
    ${peer}_stop
    t2=$(now)
    R[$k.w_client]=$(calc "$t1 - $t0"); R[$k.w_store]=$(calc "$t2 - $t0")
    R[$k.w_cpu]=$CPU; hwm=$HWM
    R[$k.w_put]=$(usage $b)
    [ $peer = usbd ] && R[$k.w_self]=$(grep "this run" $T/usbd-$b.log | tail -1 | sed 's/.*, //')

    # 2. cold read with a new process and an empty cache, then compare (warm)
    ${peer}_start $b $T/$b-b
    R[$k.startup]=$STARTUP
    u0=$(usage $b)
    if [ $peer = usbd ]; then
        x=$(fio_run $T/fio-r.json --name=r --ioengine=nbd --uri="$URI" --rw=read --bs=4M --iodepth=1 --size=${MB}m)
    else
        x=$(fio_run $T/fio-r.json --name=r --filename=$T/mnt/file --ioengine=psync --direct=1 --rw=read --bs=4M \
            --size=${MB}m)
    fi
    R[$k.r_secs]=$(calc "$(echo $x | cut -d' ' -f3) / 1000")
    R[$k.r_get]="$u0 / $(usage $b)"
    readall $peer $T/back
    cmp -n $((MB << 20)) $T/back $T/data || { echo "$peer round $r: data read back differs" >&2; exit 1; }
    rm -f $T/back

    # 3. the same number of writes for both: RATE_IOPS for RAND_SECS, in the
    # same process (every block cached and clean), then stop
    u0=$(usage $b)
    x=$(randw $peer $T/fio-l.json --runtime=$RAND_SECS --time_based --rate_iops=$RATE_IOPS)
    t1=$(now)
    ${peer}_stop
    t2=$(now)
    R[$k.lw_iops]=$(echo $x | cut -d' ' -f1); R[$k.lw_bytes]=$(echo $x | cut -d' ' -f2)
    R[$k.lw_drain]=$(calc "$t2 - $t1"); R[$k.lw_lat]=$(echo $x | cut -d' ' -f4)
    R[$k.lw_put]="$u0 / $(usage $b)"
    [ $HWM -gt $hwm ] && hwm=$HWM

    # 4. full speed for RAND_SECS, on a new process whose cache holds the data
    # (read once first: ours keeps its cache on disk, s3backer's is in RAM)
    ${peer}_start $b $T/$b-b
    readall $peer /dev/null
    u0=$(usage $b)
    x=$(randw $peer $T/fio-w.json --runtime=$RAND_SECS --time_based)
    t1=$(now)
    ${peer}_stop
    t2=$(now)
    R[$k.rw_iops]=$(echo $x | cut -d' ' -f1); R[$k.rw_bytes]=$(echo $x | cut -d' ' -f2)
    R[$k.rw_drain]=$(calc "$t2 - $t1"); R[$k.rw_cpu]=$CPU; R[$k.rw_lat]=$(echo $x | cut -d' ' -f4)
    R[$k.rw_put]="$u0 / $(usage $b)"
    [ $peer = usbd ] && R[$k.rw_self]=$(grep "this run" $T/usbd-$b.log | tail -1 | sed 's/.*, //')
    [ $HWM -gt $hwm ] && hwm=$HWM
    R[$k.rss]=$hwm
    echo "round $r $peer done ($(uptime | sed 's/.*load/load/'))" >&2
}

for r in $(seq $ROUNDS); do
    if [ $((r % 2)) = 1 ]; then run_peer usbd $r; run_peer s3b $r; else run_peer s3b $r; run_peer usbd $r; fi
done

# --- report -------------------------------------------------------------------
delta() { # "usage before / usage after" FIELD -> after - before of that field
    local before=${1%% / *} after=${1##* / }
    echo $(( $(echo $after | cut -d' ' -f$2) - $(echo $before | cut -d' ' -f$2) ))
}
MIB=1048576
row() { printf '%-54s %16s %16s %8s\n' "$1" "$2" "$3" "$4"; }
rat() { calc "$1 / $2" | xargs printf '%.2fx'; }
f() { printf "%.${2:-1}f" $1; }
for r in $(seq $ROUNDS); do
    declare -A V=()
    for p in usbd s3b; do
        k=$p.$r
        V[$p.wmb]=$(calc "$MB * $MIB / 1000000 / ${R[$k.w_store]}")
        V[$p.wput]="$(f $(calc "$(echo ${R[$k.w_put]} | cut -d' ' -f1) / $MIB") 0) ($(echo ${R[$k.w_put]} | cut -d' ' -f2))"
        V[$p.rmb]=$(calc "$MB * $MIB / 1000000 / ${R[$k.r_secs]}")
        V[$p.rget]="$(f $(calc "$(delta "${R[$k.r_get]}" 3) / $MIB") 0) ($(delta "${R[$k.r_get]}" 4))"
        for s in rw lw; do
            V[$p.${s}put]="$(f $(calc "$(delta "${R[$k.${s}_put]}" 1) / $MIB") 0) ($(delta "${R[$k.${s}_put]}" 2))"
            V[$p.${s}mb]=$(calc "${R[$k.${s}_bytes]} / $MIB")
            V[$p.${s}wa]=$(calc "$(delta "${R[$k.${s}_put]}" 1) / ${R[$k.${s}_bytes]}")
            V[$p.${s}k]=$(calc "$(delta "${R[$k.${s}_put]}" 1) / $MIB * 4096000 / ${R[$k.${s}_bytes]}")
        done
    done
    echo
    echo "round $r: $MB MiB, device $SIZE_GIB GiB, 4 MiB blocks, $WORKERS uploads, changes held ${FLUSH_SECS}s;" \
         "ours -cache-size=$USBD_CACHE -dirty-max=$USBD_DIRTY $USBD_FLAGS; $(uptime | sed 's/.*load/load/')"
    row "" usbd-objstore "s3backer 1.5.4" ratio
    row "seq write: client done (s)" $(f ${R[usbd.$r.w_client]}) $(f ${R[s3b.$r.w_client]}) ""
    row "seq write: until all in the store (s)" $(f ${R[usbd.$r.w_store]}) $(f ${R[s3b.$r.w_store]}) ""
    row "seq write: MB/s until in the store" $(f ${V[usbd.wmb]}) $(f ${V[s3b.wmb]}) $(rat ${V[usbd.wmb]} ${V[s3b.wmb]})
    row "seq write: MiB put (objects)" "${V[usbd.wput]}" "${V[s3b.wput]}" ""
    row "seq write: daemon CPU (s)" ${R[usbd.$r.w_cpu]} ${R[s3b.$r.w_cpu]} ""
    row "start-up with an empty cache (s)" $(f ${R[usbd.$r.startup]} 2) $(f ${R[s3b.$r.startup]} 2) ""
    row "cold seq read 4M QD1: MB/s" $(f ${V[usbd.rmb]}) $(f ${V[s3b.rmb]}) $(rat ${V[usbd.rmb]} ${V[s3b.rmb]})
    row "cold seq read: MiB fetched (GETs)" "${V[usbd.rget]}" "${V[s3b.rget]}" ""
    row "4K rand write QD1 ${RAND_SECS}s at $RATE_IOPS/s: writes done" $((R[usbd.$r.lw_bytes] / 4096)) $((R[s3b.$r.lw_bytes] / 4096)) ""
    row "  longest write (ms)" ${R[usbd.$r.lw_lat]} ${R[s3b.$r.lw_lat]} ""
    row "  MiB put (objects)" "${V[usbd.lwput]}" "${V[s3b.lwput]}" ""
    row "  write amplification (put/written)" $(f ${V[usbd.lwwa]} 0)x $(f ${V[s3b.lwwa]} 0)x $(rat ${V[s3b.lwwa]} ${V[usbd.lwwa]})
    row "  from fio's end to all in the store (s)" $(f ${R[usbd.$r.lw_drain]}) $(f ${R[s3b.$r.lw_drain]}) ""
    row "4K rand write QD1 ${RAND_SECS}s full speed: IOPS" $(f ${R[usbd.$r.rw_iops]} 0) $(f ${R[s3b.$r.rw_iops]} 0) $(rat ${R[usbd.$r.rw_iops]} ${R[s3b.$r.rw_iops]})
    row "  longest write (ms)" ${R[usbd.$r.rw_lat]} ${R[s3b.$r.rw_lat]} ""
    row "  MiB written by the client" $(f ${V[usbd.rwmb]}) $(f ${V[s3b.rwmb]}) ""
    row "  MiB put (objects)" "${V[usbd.rwput]}" "${V[s3b.rwput]}" ""
    row "  MiB put per 1000 writes" $(f ${V[usbd.rwk]}) $(f ${V[s3b.rwk]}) ""
    row "  from fio's end to all in the store (s)" $(f ${R[usbd.$r.rw_drain]}) $(f ${R[s3b.$r.rw_drain]}) ""
    row "  daemon CPU, whole process (s)" ${R[usbd.$r.rw_cpu]} ${R[s3b.$r.rw_cpu]} ""
    row "peak RSS (MiB)" ${R[usbd.$r.rss]} ${R[s3b.$r.rss]} ""
    echo "usbd-objstore's own count: seq write ${R[usbd.$r.w_self]}; full-speed random-write process ${R[usbd.$r.rw_self]}"
    echo "(full speed: the peers did different numbers of writes; compare MiB put per 1000 writes)"
done
echo "(ratios: ours/s3backer for throughput, s3backer/ours for write amplification: above 1 means ours is better)"
