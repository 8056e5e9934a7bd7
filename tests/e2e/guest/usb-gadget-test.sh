#!/bin/bash
# usb-gadget-test.sh - the whole USB drive, in one VM, made by the daemon:
#   usbd-objstore -kind=local -gadget -> /dev/nbd0 (attached by the daemon)
#   -> configfs mass_storage gadget (made and bound by the daemon, which also
#   loads libcomposite and mounts configfs) -> dummy_udc -> dummy_hcd host
#   side -> usb-storage -> /dev/sdX (what a TV sees)
#  1. raw: a pattern written to /dev/sdX, SYNCHRONIZE CACHE (sync /dev/sdX)
#     arriving as NBD FLUSH, read back identical through USB.
#  2. ext4 made, filled, unmounted, synced, remounted and verified via USB.
#  3. SIGTERM while plugged in: the daemon unbinds the UDC (/dev/sdX goes),
#     removes the gadget, flushes, commits to the store, detaches nbd0,
#     exits 0; nothing is left in configfs.
#  4. The cache directory deleted; the daemon started again from the store
#     alone: the host sees the same drive (same serial) and the files intact.
#  5. kill -9 while plugged in: the gadget is left behind; the next start
#     replaces it (one gadget, not two) and the files are still intact.
#  6. A gadget that cannot be made (no such UDC): exit 1, nothing left
#     behind, nbd0 free.
# STANDIN=nbdkit: nbdkit + nbd-client and a gadget made by hand here, parts
# 1-2 only (checks the VM and the test itself).
# Exit 0 = PASS.
set -u
. "$(dirname "$0")/lib.sh"
DISK_MB=${DISK_MB:-256}
DD_MB=${DD_MB:-128}
SS=${E2E_SS:-0}                           # 1: dummy_hcd in SuperSpeed mode
USB_MAX_SECTORS=${E2E_USB_MAX_SECTORS:-}  # raise usb-storage's max_sectors (240)
STANDIN=${STANDIN:-}
DISK=/tmp/disk.img
SOCK=/tmp/usb.sock
CFS=/sys/kernel/config/usb_gadget
G=$CFS/usbd-e2e                           # the daemon names it usbd-NAME
KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
VOL_FLAGS="-kind=local -store=/tmp/store -store-dir=/tmp/cache -name=e2e -size=${DISK_MB}MiB -key=key:$KEY -flush-every=2s"
BYTES=$((DD_MB * MiB))

# The host side's /dev/sdX behind dummy_hcd; SD and SDN set.
find_sd() {
    local b
    SD=
    for b in /sys/block/sd*; do
        [ -e "$b" ] || continue
        case "$(readlink -f $b)" in *dummy_hcd*)
            [ "$(cat $b/size)" -gt 0 ] && SD=/dev/${b##*/} && SDN=${b##*/} && return 0 ;;
        esac
    done
    return 1
}
# The USB serial number the host read from the device.
usb_serial() { cat "$(readlink -f /sys/block/$SDN/device)/../../../../serial"; }

wait_sd() {
    local t=$(now)
    wait_for 30 find_sd || fail "the host side's /dev/sdX did not appear"
    log "host side sees $SD after $(since $t) s: $(cat /sys/block/$SDN/device/vendor)" \
        "$(cat /sys/block/$SDN/device/model) serial=$(usb_serial) size=$(blockdev --getsize64 $SD)" \
        "speed=$(cat $(readlink -f /sys/block/$SDN/device)/../../../../speed) Mb/s" \
        "max_sectors_kb=$(cat /sys/block/$SDN/queue/max_sectors_kb)"
    if [ -n "$USB_MAX_SECTORS" ]; then
        echo $USB_MAX_SECTORS > /sys/block/$SDN/device/max_sectors
        log "max_sectors_kb now $(cat /sys/block/$SDN/queue/max_sectors_kb)"
    fi
}
sd_gone() { [ ! -e /sys/block/$SDN ]; }

# For the stand-in only: the gadget by hand, as the daemon makes it.
gadget_up_by_hand() {
    local udc F=$G/functions/mass_storage.usb0
    modprobe libcomposite && modprobe usb_f_mass_storage || fail "modprobe libcomposite"
    mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config || fail "mount configfs"
    udc=$(ls /sys/class/udc | head -1)
    mkdir $G && echo 0x1d6b > $G/idVendor && echo 0x0104 > $G/idProduct || fail "mkdir gadget"
    mkdir $G/strings/0x409 && echo e2e000000001 > $G/strings/0x409/serialnumber
    mkdir -p $G/configs/c.1 && mkdir $F || fail "mkdir mass_storage function"
    echo /dev/nbd0 > $F/lun.0/file || fail "lun.0/file = /dev/nbd0"
    ln -s $F $G/configs/c.1/ && echo $udc > $G/UDC || fail "bind UDC"
}
gadget_down_by_hand() {
    echo "" > $G/UDC || fail "unbind"
    wait_for 10 sd_gone || fail "$SD still present after unbind"
    rm $G/configs/c.1/mass_storage.usb0
    rmdir $G/configs/c.1 $G/functions/mass_storage.usb0 $G/strings/0x409 $G || fail "configfs cleanup"
}

# wait_ready TAG: until the daemon logs "ready:" (or dies).
wait_ready() {
    local pid=${PIDS[$1]} t=$(now)
    READY_LOG=/tmp/$1.log
    up() { grep -q "ready:" $READY_LOG || ! kill -0 $pid 2>/dev/null; }
    wait_for 60 up
    grep -q "ready:" /tmp/$1.log || fail "$1: not ready within 60 s (alive: $(kill -0 $pid 2>/dev/null && echo yes || echo no))"
    log "$1: ready after $(since $t) s"
}

# One gadget of ours in configfs, bound.
check_one_gadget() {
    local n
    n=$(ls $CFS | wc -l)
    [ "$n" = 1 ] || fail "$n gadgets in configfs: $(ls $CFS | tr '\n' ' ')"
    [ -n "$(cat $G/UDC)" ] || fail "$G is not bound"
    [ "$(cat $G/functions/mass_storage.usb0/lun.0/file)" = /dev/nbd0 ] ||
        [ "$(cat $G/functions/mass_storage.usb0/lun.0/file)" = /dev/nbd1 ] ||
        fail "lun.0/file is '$(cat $G/functions/mass_storage.usb0/lun.0/file)'"
}

# Verify the ext4 of part 2 through USB (read-only mount).
verify_fs() {
    mkdir -p /tmp/mnt
    e2fsck -fn $SD > /tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "$1: e2fsck through USB"; }
    mount -o ro $SD /tmp/mnt || fail "$1: mount $SD"
    cmp /tmp/mnt/data.bin <(head -c 32M /tmp/pattern.bin) || fail "$1: data.bin differs"
    for i in $(seq 50); do cmp -s /tmp/small/s$i.txt /tmp/mnt/s$i.txt || fail "$1: s$i.txt differs"; done
    umount /tmp/mnt
    log "$1: ext4 clean, 51 files intact through USB"
}

log "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
# No udev in the guest: load the host side explicitly. usb-storage waits 1 s
# before it scans a new device unless told not to. The gadget side
# (configfs, libcomposite, usb_f_mass_storage) is the daemon's job.
modprobe usb-storage delay_use=0 || fail "modprobe usb-storage"
if [ "$SS" = 1 ]; then modprobe dummy_hcd is_super_speed=1 || fail "modprobe dummy_hcd"; fi
for m in nbd dummy_hcd sd_mod ext4; do
    modprobe $m || fail "modprobe $m"
done
pattern
[ "$(stat -c %s /tmp/pattern.bin)" = $BYTES ] || fail "pattern size"
[ "$STANDIN" = nbdkit ] || get_daemon
mark_dmesg

# ======================= 1. raw through USB =======================
if [ "$STANDIN" = nbdkit ]; then
    truncate -s ${DISK_MB}M $DISK
    nbdkit -f -U $SOCK --filter=stats file $DISK statsfile=/tmp/nbdkit-stats.txt > /tmp/usb.log 2>&1 &
    PIDS[usb]=$!
    wait_for 10 test -S $SOCK || fail "nbdkit socket did not appear"
    nbd-client -unix $SOCK /dev/nbd0 -N e2e > /dev/null || fail "nbd-client attach"
    gadget_up_by_hand
else
    [ -e /sys/module/libcomposite ] && fail "libcomposite loaded before the daemon ran"
    T_START=$(now)
    start_usbd usb auto $VOL_FLAGS -gadget
    wait_ready usb
    log "STAGE daemon start to gadget bound: $(since $T_START) s"
    [ -e /sys/module/libcomposite ] || fail "the daemon did not load libcomposite"
    mountpoint -q /sys/kernel/config || fail "configfs is not mounted"
    check_one_gadget
fi
wait_sd
[ "$(blockdev --getsize64 $SD)" = $((DISK_MB * MiB)) ] || fail "$SD size differs from the disk"
if [ "$STANDIN" != nbdkit ]; then
    [ "$(cat /sys/block/$SDN/device/vendor | tr -d ' ')" = usbd ] || fail "SCSI vendor '$(cat /sys/block/$SDN/device/vendor)'"
    [ "$(cat /sys/block/$SDN/device/model | tr -d ' ')" = usbd-objstore ] || fail "SCSI model '$(cat /sys/block/$SDN/device/model)'"
    SERIAL=$(usb_serial)
    [[ $SERIAL =~ ^[0-9A-F]{32}$ ]] || fail "serial '$SERIAL' is not the volume uuid in hex"
    [ "$(cat /sys/block/$SDN/removable)" = 1 ] || fail "the drive is not removable"
fi
ddt "usb-sd-write(direct)" $DD_MB if=/tmp/pattern.bin of=$SD bs=1M oflag=direct
# oflag=direct on sdX is not direct on the gadget side: the gadget writes
# into nbd0's page cache. fsync of sdX sends SYNCHRONIZE CACHE, which the
# gadget turns into fsync of nbd0, which the kernel sends as NBD FLUSH after
# writing the pages back. (blockdev --flushbufs does not: no cache flush.)
t=$(now)
sync $SD || fail "sync $SD"
log "STAGE sync $SD (SYNCHRONIZE CACHE) took $(since $t) s"
if [ "$STANDIN" = nbdkit ]; then
    cmp -n $BYTES /tmp/pattern.bin $DISK || fail "the file does not hold the pattern after the USB host synced"
fi
drop_caches
ddt "usb-sd-read(direct)" $DD_MB if=$SD of=/tmp/readback.bin bs=1M count=$DD_MB iflag=direct
cmp /tmp/pattern.bin /tmp/readback.bin || fail "USB readback differs from the pattern"
rm -f /tmp/readback.bin
log "raw: written through USB, synced, read back identical"

# ======================= 2. ext4 through USB =======================
mkfs.ext4 -q -F -L e2e $SD || fail "mkfs.ext4 on $SD"
mkdir -p /tmp/mnt /tmp/small
mount $SD /tmp/mnt || fail "mount $SD"
head -c 32M /tmp/pattern.bin > /tmp/mnt/data.bin
for i in $(seq 50); do echo "file $i $RANDOM $(date +%s%N)" | tee /tmp/small/s$i.txt > /tmp/mnt/s$i.txt; done
umount /tmp/mnt || fail "umount"
sync $SD
drop_caches
verify_fs "fs"
sync $SD
check_dmesg "parts 1-2"
if [ "$STANDIN" = nbdkit ]; then
    gadget_down_by_hand
    nbd-client -d /dev/nbd0 > /dev/null 2>&1 || fail "nbd-client -d"
    kill ${PIDS[usb]}; wait ${PIDS[usb]}; unset "PIDS[usb]"
    log "nbdkit: $(grep -E '^ *(write|flush):' /tmp/nbdkit-stats.txt | tr -s ' \n' ' ')"
    dmesg > $OUT/dmesg.txt
    log "ALL CHECKS PASSED (stand-in nbdkit: parts 1-2)"
    exit 0
fi

# ======================= 3. SIGTERM while plugged in =======================
# More data the host wrote but nobody synced: the stop sequence must get it
# to the store (the restart from the store alone below checks it).
dd if=/tmp/pattern.bin of=$SD bs=1M count=16 seek=$((DISK_MB - 16)) oflag=direct status=none || fail "dd tail"
t=$(now)
stop_usbd usb nbd0
log "STAGE SIGTERM to exit (unplug, flush, commit, detach): $(since $t) s"
sd_gone || fail "$SD still there after the daemon stopped"
[ -e $G ] && fail "the gadget is still in configfs after the daemon stopped"
grep -q "gadget usbd-e2e: unbound from" /tmp/usb.log || fail "no unbind in the log"
# The order of the stop sequence, from the log.
order=$(grep -noE "unbound from|gadget usbd-e2e removed|committing [0-9.]+ MiB|every write is in the store|detached /dev/nbd0|stopped cleanly" /tmp/usb.log | cut -d: -f1,2 | tr '\n' ' ')
log "stop sequence: $order"
line() { grep -n "$1" /tmp/usb.log | head -1 | cut -d: -f1; }
[ -n "$(line 'every write is in the store')" ] || fail "no commit before detach: $order"
[ "$(line 'unbound from')" -lt "$(line 'gadget usbd-e2e removed')" ] &&
    [ "$(line 'gadget usbd-e2e removed')" -lt "$(line 'every write is in the store')" ] &&
    [ "$(line 'every write is in the store')" -lt "$(line 'detached /dev/nbd0')" ] ||
    fail "stop order: unbind, remove, commit, detach expected: $order"
FL=$(counter usb flushes)
ER=$(counter usb errors)
[ "${FL:-0}" -ge 3 ] || fail "only ${FL:-0} FLUSH requests reached the daemon through USB"
[ "${ER:-1}" = 0 ] || fail "the daemon counted $ER errors"
cp /tmp/usb.log $OUT/usb-1.log
log "SIGTERM while plugged in: unplugged, flushed ($FL FLUSH), committed, detached, exit 0"

# ======================= 4. from the store alone =======================
rm -rf /tmp/cache
T_START=$(now)
start_usbd usb auto $VOL_FLAGS -gadget
wait_ready usb
log "STAGE restart from the store alone (empty cache) to gadget bound: $(since $T_START) s"
check_one_gadget
wait_sd
[ "$(usb_serial)" = "$SERIAL" ] || fail "serial changed across restart: $(usb_serial) vs $SERIAL"
verify_fs "from the store alone"
t=$(now)
cmp <(dd if=$SD bs=1M skip=$((DISK_MB - 16)) count=16 iflag=direct status=none) <(head -c 16M /tmp/pattern.bin) ||
    fail "the unsynced tail written before SIGTERM is not in the store"
log "from the store alone: the unsynced 16 MiB written before SIGTERM are there too"

check_dmesg "parts 3-4"

# ======================= 5. kill -9 while plugged in =======================
# (the kernel rightly complains about nbd I/O from here on: not checked)
kill -KILL ${PIDS[usb]}; wait ${PIDS[usb]} 2>/dev/null; unset "PIDS[usb]"
[ -e $G ] || fail "expected the gadget left behind after kill -9"
log "kill -9: gadget left behind, UDC '$(cat $G/UDC)'"
start_usbd usb auto $VOL_FLAGS -gadget
wait_ready usb
grep -q "left behind by a run that did not stop cleanly" /tmp/usb.log || fail "the stale gadget was not reported"
check_one_gadget
wait_for 10 sd_gone  # the old sdX goes with the stale gadget...
wait_sd              # ...and the new one comes
verify_fs "after kill -9 and restart"
NBDDEV=$(grep -oE 'attached /dev/nbd[0-9]+' /tmp/usb.log | tail -1 | cut -d/ -f3)
log "after kill -9 the new start took $NBDDEV"
stop_usbd usb $NBDDEV
[ -e $G ] && fail "gadget left after the second stop"
sd_gone || fail "$SD still there after the second stop"

# ======================= 6. a gadget that cannot be made =======================
start_usbd usb auto $VOL_FLAGS -gadget -gadget-udc=no_such_udc.0
pid=${PIDS[usb]}
gone() { ! kill -0 $pid 2>/dev/null; }
wait_for 30 gone || fail "the daemon did not exit with a bad -gadget-udc"
rc=0; wait $pid || rc=$?
unset "PIDS[usb]"
[ $rc = 1 ] || fail "exit status $rc with a bad -gadget-udc (expected 1)"
grep -q "UDC no_such_udc.0 not found" /tmp/usb.log || fail "no clear error for a bad UDC"
[ -e $G ] && fail "a failed start left a gadget behind"
wait_for 10 nbd0_free || fail "a failed start left nbd0 attached"
log "bad UDC: exit 1, '$(grep -oE 'UDC no_such_udc.0 not found[^)]*\)' /tmp/usb.log)', nothing left"

dmesg > $OUT/dmesg.txt
log "ALL CHECKS PASSED"
exit 0
