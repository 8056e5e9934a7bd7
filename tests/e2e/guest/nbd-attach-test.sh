#!/bin/bash
# nbd-attach-test.sh - the daemon attaches the kernel's /dev/nbdN itself.
#  1. -nbd-device=/dev/nbd0 -kind=mem: size and queue settings; raw write,
#     FLUSH (seen by the daemon), readback, also through a second client on
#     the daemon's socket (/dev/nbd1 by nbd-client); ext4 mkfs, mount,
#     remount, fsck; SIGTERM detaches (pid file gone, size 0) and exits 0 in
#     bounded time; the exit counters show the FLUSHes and TRIMs.
#  2. -kind=file: what a buffered writer left in /dev/nbd0's page cache when
#     SIGTERM came reaches the file (detach writes it back first).
#  3. -nbd-connections=4: four sockets, four hardware queues, same data.
#  4. -nbd-device=auto loads nbd itself and picks /dev/nbd0; with nbd0 taken
#     it picks nbd1; a taken or missing explicit device is a clear error.
#  5. SIGTERM under write load still exits 0 in bounded time; after kill -9
#     the kernel frees the device and a new daemon takes it; -readonly makes
#     /dev/nbd0 read-only.
# STANDIN=nbdkit runs part 1 with nbdkit + nbd-client as the server: it
# checks the VM and this script without our daemon.
# Exit 0 = PASS.
set -u
. "$(dirname "$0")/lib.sh"
DISK_MB=${DISK_MB:-256}
DD_MB=${DD_MB:-128}
STANDIN=${STANDIN:-}

# Per-request FLUSH lines in the server's log, if it writes them.
flush_lines() {
    if [ "$STANDIN" = nbdkit ]; then grep -c 'Flush id=' /tmp/nbdkit-req.log
    else grep -E 'debug: .*\b(FLUSH|flush)\b' /tmp/main.log | grep -vc 'flushes'; fi
}

log "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
pattern
[ "$(stat -c %s /tmp/pattern.bin)" = $((DD_MB * MiB)) ] || fail "pattern size"
[ "$STANDIN" = nbdkit ] || get_daemon

# ======================= 1. /dev/nbd0, RAM disk =======================
modprobe nbd || fail "modprobe nbd"
modprobe ext4 || fail "modprobe ext4"
[ -e /sys/block/nbd0 ] || fail "/sys/block/nbd0 missing after modprobe nbd"
mark_dmesg
SOCK=/tmp/main.sock
if [ "$STANDIN" = nbdkit ]; then
    EXPORT=e2e
    nbdkit -f -U $SOCK --filter=log --filter=stats memory ${DISK_MB}M \
        logfile=/tmp/nbdkit-req.log statsfile=/tmp/nbdkit-stats.txt > /tmp/main.log 2>&1 &
    PIDS[main]=$!
    wait_for 10 test -S $SOCK || fail "nbdkit socket did not appear"
    nbd-client -unix $SOCK /dev/nbd0 -N $EXPORT > /dev/null || fail "nbd-client attach"
else
    EXPORT=usbd
    start_usbd main /dev/nbd0 -kind=mem -size=${DISK_MB}MiB
fi
wait_attached nbd0 ${PIDS[main]}
NBDSZ=$(blockdev --getsize64 /dev/nbd0)
[ "$NBDSZ" = $((DISK_MB * MiB)) ] || fail "nbd0 size $NBDSZ, expected $((DISK_MB * MiB))"
Q=/sys/block/nbd0/queue
log "nbd0: logical block $(blockdev --getss /dev/nbd0), write_cache '$(cat $Q/write_cache)'," \
    "fua $(cat $Q/fua 2>/dev/null), discard_max_bytes $(cat $Q/discard_max_bytes)," \
    "max_sectors_kb $(cat $Q/max_sectors_kb), hw queues $(ls /sys/block/nbd0/mq | wc -l)"
[ "$(blockdev --getss /dev/nbd0)" = 512 ] || fail "logical block size $(blockdev --getss /dev/nbd0), expected 512"
[ "$(cat $Q/write_cache)" = "write back" ] || fail "write cache off: SEND_FLUSH not given to the kernel"
if [ "$STANDIN" != nbdkit ]; then
    [ -e $Q/fua ] && { [ "$(cat $Q/fua)" = 1 ] || fail "FUA off: SEND_FUA not given to the kernel"; }
    [ "$(cat $Q/discard_max_bytes)" -gt 0 ] || fail "discard off: SEND_TRIM not given to the kernel"
    T=$(cat /sys/block/nbd0/pid)
    [ -d /proc/${PIDS[main]}/task/$T ] || fail "pid file $T is not a thread of the daemon ${PIDS[main]}"
    grep -q 'attached /dev/nbd0' /tmp/main.log || fail "no 'attached /dev/nbd0' in the log"
fi

# A second, ordinary client on the daemon's socket while the kernel is attached.
nbd-client -unix $SOCK /dev/nbd1 -N $EXPORT > /dev/null 2>&1 || fail "nbd-client on $SOCK"
wait_for 10 has_size nbd1 || fail "nbd1 did not come up"
[ "$(blockdev --getsize64 /dev/nbd1)" = "$NBDSZ" ] || fail "nbd1 size differs"
log "second client: /dev/nbd1 through $SOCK"

# ---- raw: write, FLUSH, read back on both connections ----
ddt "nbd0-write(direct)" $DD_MB if=/tmp/pattern.bin of=/dev/nbd0 bs=1M oflag=direct
# BLKFLSBUF (blockdev --flushbufs) and sync(2) only write dirty pages back;
# an NBD FLUSH comes from fsync() of the device (sync FILE, dd conv=fsync)
# or from a file system's journal commits.
F0=$(flush_lines)
blockdev --flushbufs /dev/nbd0 || fail "blockdev --flushbufs"
F1=$(flush_lines)
sync /dev/nbd0 || fail "sync /dev/nbd0 (fsync)"
F2=$(flush_lines)
if [ "$F2" -gt "$F1" ]; then log "FLUSH reached the server: flushbufs +$((F1 - F0)), fsync(/dev/nbd0) +$((F2 - F1))"
elif [ "$F2" = 0 ]; then log "the server logs no per-request FLUSH lines; its exit counters are checked instead"
else fail "fsync of /dev/nbd0 sent no FLUSH to the server"; fi
drop_caches
ddt "nbd0-read(direct)" $DD_MB if=/dev/nbd0 of=/tmp/readback.bin bs=1M count=$DD_MB iflag=direct
cmp /tmp/pattern.bin /tmp/readback.bin || fail "nbd0 readback differs from the pattern"
rm -f /tmp/readback.bin
ddt "nbd1-read(direct)" $DD_MB if=/dev/nbd1 of=/tmp/readback.bin bs=1M count=$DD_MB iflag=direct
cmp /tmp/pattern.bin /tmp/readback.bin || fail "nbd1 (second client) readback differs"
rm -f /tmp/readback.bin
log "raw: ${DD_MB} MiB written through nbd0, read back identical through nbd0 and nbd1"

# ---- ext4 ----
t=$(now)
mkfs.ext4 -q -F -L e2e /dev/nbd0 || fail "mkfs.ext4"
log "fs: mkfs.ext4 in $(since $t) s"
mkdir -p /tmp/mnt /tmp/small
mount /dev/nbd0 /tmp/mnt || fail "mount"
head -c 32M /tmp/pattern.bin > /tmp/mnt/data.bin
for i in $(seq 50); do echo "file $i $RANDOM $(date +%s%N)" | tee /tmp/small/s$i.txt > /tmp/mnt/s$i.txt; done
umount /tmp/mnt || fail "umount"
sync /dev/nbd0
drop_caches
e2fsck -fn /dev/nbd0 > /tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "e2fsck found problems"; }
mount -o ro /dev/nbd0 /tmp/mnt || fail "remount"
cmp /tmp/mnt/data.bin <(head -c 32M /tmp/pattern.bin) || fail "data.bin differs after remount"
for i in $(seq 50); do cmp -s /tmp/small/s$i.txt /tmp/mnt/s$i.txt || fail "s$i.txt differs after remount"; done
umount /tmp/mnt
# The other connection sees the same file system.
drop_caches
debugfs -R "dump /data.bin /tmp/data.out" /dev/nbd1 > /dev/null 2>&1
cmp /tmp/data.out <(head -c 32M /tmp/pattern.bin) || fail "data.bin read through nbd1 differs"
rm -f /tmp/data.out
log "fs: ext4 written, remounted, fsck clean, 51 files verified (also through nbd1)"

nbd-client -d /dev/nbd1 > /dev/null 2>&1 || fail "nbd-client -d /dev/nbd1"
wait_for 10 no_size nbd1 || fail "nbd1 still has a size after nbd-client -d"

# ---- stop ----
if [ "$STANDIN" = nbdkit ]; then
    nbd-client -d /dev/nbd0 > /dev/null 2>&1 || fail "nbd-client -d /dev/nbd0"
    wait_for 10 no_size nbd0 || fail "nbd0 still has a size"
    kill ${PIDS[main]}; wait ${PIDS[main]}
    log "nbdkit stats: $(grep -E '^ *(read|write|flush|trim|zero):' /tmp/nbdkit-stats.txt | tr -s ' \n' ' ')"
    FL=$(awk '/^ *flush:/{print $2}' /tmp/nbdkit-stats.txt)
    [ "${FL:-0}" -ge 3 ] || fail "only ${FL:-0} FLUSH requests reached nbdkit"
    cp /tmp/nbdkit-stats.txt $OUT/
    check_dmesg "part 1"
    dmesg > $OUT/dmesg.txt
    log "ALL CHECKS PASSED (stand-in nbdkit: part 1 only)"
    exit 0
fi
stop_usbd main nbd0
log "main: $(grep -E 'served [0-9]+ reads' /tmp/main.log | sed 's/.*: served/served/')"
FL=$(counter main flushes)
TR=$(counter main trims)
ER=$(counter main errors)
WB=$(grep -E 'served [0-9]+ reads' /tmp/main.log | grep -oE 'writes \([0-9]+ bytes' | grep -oE '[0-9]+')
[ "${FL:-0}" -ge 3 ] || fail "only ${FL:-0} FLUSH requests reached the daemon (2 fsyncs, umount, detach)"
[ "${TR:-0}" -ge 1 ] || fail "no TRIM reached the daemon (mkfs.ext4 discards)"
[ "${ER:-1}" = 0 ] || fail "the daemon counted $ER errors"
[ "${WB:-0}" -ge $((DD_MB * MiB)) ] || fail "the daemon counted ${WB:-0} bytes written, less than $DD_MB MiB"
check_dmesg "part 1"
log "part 1 passed"

# ======================= 2. write-back at detach =======================
mark_dmesg
start_usbd file /dev/nbd0 -kind=file -file=/tmp/disk.img -size=64MiB
wait_attached nbd0 ${PIDS[file]}
# Buffered: the data sits in nbd0's page cache, as the USB gadget leaves it.
dd if=/tmp/pattern.bin of=/dev/nbd0 bs=1M count=32 status=none || fail "buffered dd"
log "buffered 32 MiB into nbd0's page cache; $(grep -E '^Dirty:' /proc/meminfo | tr -s ' ')"
stop_usbd file nbd0
cmp -n $((32 * MiB)) /tmp/pattern.bin /tmp/disk.img || fail "data buffered in nbd0 when SIGTERM came did not reach the file"
rm -f /tmp/disk.img
check_dmesg "part 2"
log "part 2 passed: detach wrote the page cache back before disconnecting"

# ======================= 3. four connections =======================
mark_dmesg
start_usbd multi /dev/nbd0 -kind=mem -size=${DISK_MB}MiB -nbd-connections=4
wait_attached nbd0 ${PIDS[multi]}
# One hardware queue per connection, but blk-mq caps them at the CPU count;
# a request goes out on the socket of its queue.
HWQ=$(ls /sys/block/nbd0/mq | wc -l)
WANT=$(( $(nproc) < 4 ? $(nproc) : 4 ))
[ "$HWQ" = $WANT ] || fail "$HWQ hardware queues on nbd0, expected $WANT (4 connections, $(nproc) cpus)"
# Several connections get a long command timeout, so that a slow request
# does not make the kernel drop a connection after the default 30 s.
IOT=$(cat /sys/block/nbd0/queue/io_timeout 2>/dev/null || echo ?)
log "4 connections: $HWQ hardware queues, io_timeout $IOT ms"
[ "$IOT" = ? ] || [ "$IOT" -ge 600000 ] || fail "io_timeout $IOT ms with 4 connections"
ddt "nbd0-write(direct, 4 conns)" $DD_MB if=/tmp/pattern.bin of=/dev/nbd0 bs=1M oflag=direct
sync /dev/nbd0
drop_caches
ddt "nbd0-read(direct, 4 conns)" $DD_MB if=/dev/nbd0 of=/tmp/readback.bin bs=1M count=$DD_MB iflag=direct
cmp /tmp/pattern.bin /tmp/readback.bin || fail "readback over 4 connections differs"
rm -f /tmp/readback.bin
N=$(grep -c 'serving export' /tmp/multi.log)
[ "$N" -ge 4 ] || fail "the daemon served $N connections, expected 4"
stop_usbd multi nbd0
check_dmesg "part 3"
log "part 3 passed: 4 connections"

# ======================= 4. auto, busy, missing =======================
mark_dmesg
if rmmod nbd 2>/dev/null; then
    log "nbd unloaded: the daemon has to load it"
else
    log "nbd could not be unloaded ($(lsmod | awk '$1=="nbd"{print "used by " $3}')); auto runs with it loaded"
fi
start_usbd autoA auto -kind=mem -size=64MiB
wait_attached nbd0 ${PIDS[autoA]}
grep -q 'attached /dev/nbd0' /tmp/autoA.log || fail "auto did not pick /dev/nbd0"
start_usbd autoB auto -kind=mem -size=64MiB
wait_attached nbd1 ${PIDS[autoB]}
grep -q 'attached /dev/nbd1' /tmp/autoB.log || fail "auto with nbd0 taken did not pick /dev/nbd1"
log "auto: first daemon took nbd0, second nbd1"
for case in busy:/dev/nbd0:'in use' missing:/dev/nbd99:'no such'; do
    IFS=: read -r tag dev want <<< "$case"
    start_usbd $tag $dev -kind=mem -size=64MiB
    gone() { ! kill -0 ${PIDS[$tag]} 2>/dev/null; }
    wait_for 20 gone || fail "$tag: the daemon with $dev still runs"
    wait ${PIDS[$tag]}
    rc=$?
    [ $rc != 0 ] || fail "$tag: the daemon with $dev exited 0"
    grep -q "$want" /tmp/$tag.log || fail "$tag: no '$want' in its log"
    log "$tag: $dev refused (exit $rc): $(grep -m1 "$want" /tmp/$tag.log)"
    unset "PIDS[$tag]"
    cp /tmp/$tag.log $OUT/
done
[ "$(cat /sys/block/nbd0/size)" = $((64 * MiB / 512)) ] || fail "the refused daemon disturbed nbd0"
stop_usbd autoB nbd1
stop_usbd autoA nbd0
check_dmesg "part 4"
log "part 4 passed"

# ======================= 5. stop under load, kill -9, read-only =======================
# SIGTERM while a writer is busy: the daemon still exits 0 in bounded time;
# the writer's requests after the disconnect fail, as they must.
start_usbd load /dev/nbd0 -kind=mem -size=${DISK_MB}MiB
wait_attached nbd0 ${PIDS[load]}
dd if=/tmp/pattern.bin of=/dev/nbd0 bs=1M oflag=direct > /tmp/dd-load.out 2>&1 &
DD=$!
sleep 2
stop_usbd load nbd0 held
wait $DD
log "load: dd during SIGTERM: exit $?: $(tail -1 /tmp/dd-load.out)"
wait_for 5 nbd0_free || fail "nbd0 still taken after dd closed it"
no_size nbd0 || fail "nbd0 still has a size after dd closed it"

# kill -9: the kernel lets go of the device when the process dies, and the
# next daemon can take it again.
start_usbd crash /dev/nbd0 -kind=mem -size=64MiB
wait_attached nbd0 ${PIDS[crash]}
t=$(now)
kill -9 ${PIDS[crash]}
wait ${PIDS[crash]} 2>/dev/null
unset "PIDS[crash]"
wait_for 10 nbd0_free || fail "nbd0 still taken 10 s after kill -9 of its daemon"
log "crash: nbd0 free $(since $t) s after kill -9"
mark_dmesg
start_usbd again /dev/nbd0 -kind=mem -size=64MiB
wait_attached nbd0 ${PIDS[again]}
dd if=/tmp/pattern.bin of=/dev/nbd0 bs=1M count=8 oflag=direct status=none || fail "write after re-attach"
stop_usbd again nbd0
check_dmesg "re-attach after kill -9"

# -readonly: the kernel device is read-only too.
mark_dmesg
start_usbd ro /dev/nbd0 -kind=mem -size=64MiB -readonly
wait_attached nbd0 ${PIDS[ro]}
[ "$(blockdev --getro /dev/nbd0)" = 1 ] || fail "-readonly: /dev/nbd0 is not read-only"
dd if=/tmp/pattern.bin of=/dev/nbd0 bs=4k count=1 oflag=direct status=none 2>/dev/null &&
    fail "-readonly: a write to /dev/nbd0 succeeded"
dd if=/dev/nbd0 of=/dev/null bs=1M count=4 iflag=direct status=none || fail "-readonly: read failed"
stop_usbd ro nbd0
check_dmesg "read-only"
log "part 5 passed: stop under load, kill -9 and re-attach, read-only"

dmesg > $OUT/dmesg.txt
log "ALL CHECKS PASSED"
exit 0
