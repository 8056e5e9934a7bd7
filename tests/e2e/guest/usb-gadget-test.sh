#!/bin/bash
# usb-gadget-test.sh - the whole USB drive, in one VM:
#   usbd-objstore (-kind=file) -> /dev/nbd0 (attached by the daemon) ->
#   configfs mass_storage gadget, lun.0/file=/dev/nbd0 -> dummy_udc ->
#   dummy_hcd host side -> usb-storage -> sd -> /dev/sdX (what a TV sees)
#  1. raw: the pattern written to /dev/sdX reaches the daemon's file once the
#     USB host syncs (SYNCHRONIZE CACHE -> gadget fsync -> NBD FLUSH), and
#     reads back identical through USB.
#  2. ext4 made, filled, remounted and verified through USB, then found
#     intact in the daemon's file after the gadget is removed and the daemon
#     stopped by SIGTERM.
#  3. "unplug" by SIGTERM while the gadget is still bound: what the USB host
#     wrote but nobody synced reaches the file; the daemon exits 0 and says
#     the device is still held.
# The gadget is made here by hand; the daemon does not make it (yet).
# STANDIN=nbdkit: nbdkit + nbd-client instead of the daemon (parts 1-2).
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
G=/sys/kernel/config/usb_gadget/e2e
F=$G/functions/mass_storage.usb0
BYTES=$((DD_MB * MiB))

gadget_up() {
    local udc
    udc=$(ls /sys/class/udc | head -1)
    [ -n "$udc" ] || fail "no UDC in /sys/class/udc"
    mkdir $G || fail "mkdir gadget"
    echo 0x1d6b > $G/idVendor # Linux Foundation
    echo 0x0104 > $G/idProduct # Multifunction Composite Gadget
    echo 0x0200 > $G/bcdUSB
    mkdir $G/strings/0x409
    echo e2e0001 > $G/strings/0x409/serialnumber
    echo usbd-objstore > $G/strings/0x409/manufacturer
    echo e2e-drive > $G/strings/0x409/product
    mkdir -p $G/configs/c.1/strings/0x409
    echo "mass storage" > $G/configs/c.1/strings/0x409/configuration
    echo 250 > $G/configs/c.1/MaxPower
    mkdir $F || fail "mkdir mass_storage function"
    echo 1 > $F/stall
    echo 0 > $F/lun.0/cdrom
    echo 0 > $F/lun.0/ro
    echo 0 > $F/lun.0/nofua
    echo 1 > $F/lun.0/removable
    echo /dev/nbd0 > $F/lun.0/file || fail "lun.0/file = /dev/nbd0"
    ln -s $F $G/configs/c.1/ || fail "link function"
    echo $udc > $G/UDC || fail "bind UDC"
    SD=
    find_sd() {
        local b
        for b in /sys/block/sd*; do
            [ -e "$b" ] || continue
            case "$(readlink -f $b)" in *dummy_hcd*)
                [ "$(cat $b/size)" -gt 0 ] && SD=/dev/${b##*/} && return 0 ;;
            esac
        done
        return 1
    }
    wait_for 30 find_sd || fail "the host side's /dev/sdX did not appear"
    SDN=${SD#/dev/}
    log "gadget bound to $udc; host side sees $SD: $(cat /sys/block/$SDN/device/vendor)" \
        "$(cat /sys/block/$SDN/device/model) size=$(blockdev --getsize64 $SD)" \
        "sector=$(blockdev --getss $SD) speed=$(cat $(readlink -f /sys/block/$SDN/device)/../../../../speed) Mb/s" \
        "max_sectors_kb=$(cat /sys/block/$SDN/queue/max_sectors_kb)"
    if [ -n "$USB_MAX_SECTORS" ]; then
        echo $USB_MAX_SECTORS > /sys/block/$SDN/device/max_sectors
        log "max_sectors_kb now $(cat /sys/block/$SDN/queue/max_sectors_kb)"
    fi
}

gadget_down() {
    echo "" > $G/UDC || fail "unbind"
    sd_gone() { [ ! -e /sys/block/$SDN ]; }
    wait_for 10 sd_gone || fail "$SD still present after unbind"
    rm $G/configs/c.1/mass_storage.usb0
    rmdir $G/configs/c.1/strings/0x409 $G/configs/c.1 $F $G/strings/0x409 $G || fail "configfs cleanup"
    log "gadget unbound and removed"
}

start_server() {
    if [ "$STANDIN" = nbdkit ]; then
        truncate -s ${DISK_MB}M $DISK
        nbdkit -f -U $SOCK --filter=stats file $DISK statsfile=/tmp/nbdkit-stats.txt > /tmp/usb.log 2>&1 &
        PIDS[usb]=$!
        wait_for 10 test -S $SOCK || fail "nbdkit socket did not appear"
        nbd-client -unix $SOCK /dev/nbd0 -N e2e > /dev/null || fail "nbd-client attach"
    else
        start_usbd usb /dev/nbd0 -kind=file -file=$DISK -size=${DISK_MB}MiB "$@"
    fi
    wait_attached nbd0 ${PIDS[usb]}
}

stop_server() {
    if [ "$STANDIN" = nbdkit ]; then
        nbd-client -d /dev/nbd0 > /dev/null 2>&1 || fail "nbd-client -d"
        wait_for 10 no_size nbd0 || fail "nbd0 still has a size"
        kill ${PIDS[usb]}
        wait ${PIDS[usb]}
        unset "PIDS[usb]"
        log "nbdkit: $(grep -E '^ *(write|flush):' /tmp/nbdkit-stats.txt | tr -s ' \n' ' ')"
    else
        stop_usbd usb nbd0 "$@"
        log "daemon: $(grep -E 'served [0-9]+ reads' /tmp/usb.log | sed 's/.*: served/served/')"
    fi
}

log "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
# No udev in the guest: load everything explicitly. usb-storage waits 1 s
# before it scans a new device unless told not to.
modprobe usb-storage delay_use=0 || fail "modprobe usb-storage"
if [ "$SS" = 1 ]; then modprobe dummy_hcd is_super_speed=1 || fail "modprobe dummy_hcd"; fi
for m in nbd configfs libcomposite usb_f_mass_storage dummy_hcd sd_mod ext4; do
    modprobe $m || fail "modprobe $m"
done
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config || fail "mount configfs"
pattern
[ "$(stat -c %s /tmp/pattern.bin)" = $BYTES ] || fail "pattern size"
[ "$STANDIN" = nbdkit ] || get_daemon
mark_dmesg

# ======================= 1. raw through USB =======================
start_server
gadget_up
[ "$(blockdev --getsize64 $SD)" = $((DISK_MB * MiB)) ] || fail "$SD size differs from the disk"
ddt "usb-sd-write(direct)" $DD_MB if=/tmp/pattern.bin of=$SD bs=1M oflag=direct
# oflag=direct on sdX is not direct on the gadget side: the gadget writes
# into nbd0's page cache. fsync of sdX sends SYNCHRONIZE CACHE, which the
# gadget turns into fsync of nbd0, which the kernel sends as NBD FLUSH after
# writing the pages back. (blockdev --flushbufs does not: no cache flush.)
t=$(now)
sync $SD || fail "sync $SD"
log "sync $SD (SYNCHRONIZE CACHE) took $(since $t) s"
cmp -n $BYTES /tmp/pattern.bin $DISK || fail "the daemon's file does not hold the pattern after the USB host synced"
drop_caches
ddt "usb-sd-read(direct)" $DD_MB if=$SD of=/tmp/readback.bin bs=1M count=$DD_MB iflag=direct
cmp /tmp/pattern.bin /tmp/readback.bin || fail "USB readback differs from the pattern"
rm -f /tmp/readback.bin
log "raw: written through USB, in the daemon's file after sync, read back identical"

# ======================= 2. ext4 through USB =======================
mkfs.ext4 -q -F -L e2e $SD || fail "mkfs.ext4 on $SD"
mkdir -p /tmp/mnt /tmp/small
mount $SD /tmp/mnt || fail "mount $SD"
head -c 32M /tmp/pattern.bin > /tmp/mnt/data.bin
for i in $(seq 50); do echo "file $i $RANDOM $(date +%s%N)" | tee /tmp/small/s$i.txt > /tmp/mnt/s$i.txt; done
umount /tmp/mnt || fail "umount"
sync $SD
drop_caches
mount -o ro $SD /tmp/mnt || fail "remount"
cmp /tmp/mnt/data.bin <(head -c 32M /tmp/pattern.bin) || fail "data.bin differs after remount"
for i in $(seq 50); do cmp -s /tmp/small/s$i.txt /tmp/mnt/s$i.txt || fail "s$i.txt differs after remount"; done
umount /tmp/mnt
log "fs: ext4 through USB written, remounted, 51 files verified"
sync $SD
gadget_down
stop_server
e2fsck -fn $DISK > /tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "e2fsck of the daemon's file"; }
debugfs -R "dump /data.bin /tmp/data.out" $DISK > /dev/null 2>&1
cmp /tmp/data.out <(head -c 32M /tmp/pattern.bin) || fail "data.bin in the daemon's file differs"
rm -f /tmp/data.out
log "the daemon's file holds a clean ext4 '$(dumpe2fs -h $DISK 2>/dev/null | awk -F': *' '/volume name/{print $2}')' with the right data.bin"
if [ "$STANDIN" != nbdkit ]; then
    FL=$(counter usb flushes)
    ER=$(counter usb errors)
    [ "${FL:-0}" -ge 3 ] || fail "only ${FL:-0} FLUSH requests reached the daemon through USB"
    [ "${ER:-1}" = 0 ] || fail "the daemon counted $ER errors"
fi
check_dmesg "parts 1-2"
if [ "$STANDIN" = nbdkit ]; then
    dmesg > $OUT/dmesg.txt
    log "ALL CHECKS PASSED (stand-in nbdkit: parts 1-2)"
    exit 0
fi

# ======================= 3. SIGTERM while plugged in =======================
rm -f $DISK
start_server
gadget_up
dd if=/tmp/pattern.bin of=$SD bs=1M count=32 oflag=direct status=none || fail "dd to $SD"
log "32 MiB written through USB, not synced; nbd0 $(grep -E '^Dirty:' /proc/meminfo | tr -s ' ')"
stop_server held
cmp -n $((32 * MiB)) /tmp/pattern.bin $DISK || fail "what the USB host wrote before SIGTERM is not in the file"
log "SIGTERM while plugged in: the data is in the file; the gadget still holds nbd0"
gadget_down
wait_for 10 nbd0_free || fail "nbd0 still taken after the gadget let go"
dmesg > $OUT/dmesg.txt
log "ALL CHECKS PASSED"
exit 0
