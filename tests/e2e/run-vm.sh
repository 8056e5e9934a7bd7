#!/bin/bash
# Run one guest test (tests/e2e/guest/*.sh) in a qemu VM with Debian's kernel,
# which has what the build machines' kernel lacks: nbd, configfs, the USB
# gadget stack and dummy_hcd. The host's / is the guest's root (virtio-9p,
# read-only, tmpfs on /tmp /run /var/tmp), so host tools run in the guest.
#
# Usage: tests/e2e/run-vm.sh [TEST]     TEST: a name in guest/ (default
#                                       nbd-attach-test.sh) or a path
# Environment:
#   BUILD      build tree holding usbd-objstore (default: <repo>/build)
#   USBD_BIN   the daemon to test (default: $BUILD/usbd-objstore); copied
#              into the share, so it may live anywhere, /tmp included
#   STANDIN=nbdkit  serve with nbdkit + nbd-client instead of our daemon
#              (checks the VM and the test itself; no daemon needed)
#   DD_MB DISK_MB NBD_FLAGS, and any E2E_* variable: passed to the guest
#   E2E_OUT    where the serial log and the guest's files go
#              (default: $BUILD/e2e-out/<test>)
#   SMP MEM ACCEL TIMEOUT KVER   the VM (defaults: 2, 2048, tcg, 900 s, newest
#              *-amd64 in /lib/modules)
# Needs: qemu-system-x86 linux-image-amd64 busybox-static cpio kmod nbd-client
#   e2fsprogs bc (apt-get install -y ...), and root for nothing but reading
#   the kernel image.
# Exit: 0 PASS, 1 FAIL, 2 no verdict (timeout, crash), 77 cannot run here.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TEST=${1:-nbd-attach-test.sh}
[ -f "$TEST" ] || TEST=$HERE/guest/$TEST
[ -f "$TEST" ] || { echo "run-vm: no test $1"; exit 77; }
NAME=$(basename "$TEST" .sh)
BUILD=${BUILD:-$REPO/build}
USBD_BIN=${USBD_BIN:-$BUILD/usbd-objstore}
STANDIN=${STANDIN:-}
KVER=${KVER:-$(ls /lib/modules 2>/dev/null | grep -E 'amd64$' | sort -V | tail -1)}
KERNEL=/boot/vmlinuz-$KVER
SMP=${SMP:-2}
MEM=${MEM:-2048}
# KVM, where /dev/kvm exists at all, has hung guests on these machines: TCG
# unless asked.
ACCEL=${ACCEL:-tcg,thread=multi}
TIMEOUT=${TIMEOUT:-900}
DD_MB=${DD_MB:-128}
E2E_OUT=${E2E_OUT:-$BUILD/e2e-out/$NAME}

skip() { echo "run-vm: SKIP: $*"; exit 77; }
[ -n "$KVER" ] && [ -r "$KERNEL" ] || skip "no Debian kernel (apt-get install linux-image-amd64)"
for t in qemu-system-x86_64 cpio modinfo bc; do
    command -v $t >/dev/null || skip "missing $t"
done
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod ||
    skip "missing a static /bin/busybox (apt-get install busybox-static)"
if [ "$STANDIN" = nbdkit ]; then
    command -v nbdkit >/dev/null && command -v nbd-client >/dev/null || skip "missing nbdkit/nbd-client"
else
    [ -x "$USBD_BIN" ] || skip "no daemon at $USBD_BIN (build it, or set BUILD / USBD_BIN)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/usbd-e2e.XXXXXX") || exit 2
QPID= TPID=
cleanup() {
    # Only what this script started: qemu (through timeout) and the tail.
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    [ -n "$TPID" ] && kill "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null
    [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

# ---- initramfs: busybox, the virtio/9p modules, init, the guest scripts ----
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
I=$WORK/initrd
mkdir -p $I/bin $I/dev $I/proc $I/sys $I/newroot $I/modules $I/e2e
cp /bin/busybox $I/bin/busybox
cp "$HERE/guest/init" $I/init
cp "$HERE"/guest/*.sh $I/e2e/
cp "$TEST" $I/e2e/
basename "$TEST" > $I/e2e/test
: > $I/e2e/modules
for m in $MODS; do
    f=$(modinfo -k "$KVER" -F filename $m 2>/dev/null) || { echo "run-vm: module $m not in $KVER"; exit 2; }
    [ "$f" = "(builtin)" ] && continue
    case $f in
    *.ko) cp "$f" $I/modules/$m.ko ;;
    *.ko.xz) xz -dc "$f" > $I/modules/$m.ko ;;
    *.ko.zst) zstd -qdc "$f" > $I/modules/$m.ko ;;
    *) echo "run-vm: cannot unpack $f"; exit 2 ;;
    esac
    echo $m >> $I/e2e/modules
done
: > $I/e2e/env
for v in STANDIN DD_MB DISK_MB NBD_FLAGS $(compgen -v E2E_); do
    [ -n "${!v:-}" ] && printf '%s=%q\n' $v "${!v}" >> $I/e2e/env
done
(cd $I && find . | cpio -o -H newc --quiet | gzip -1) > $WORK/initramfs.cpio.gz || exit 2

# ---- the writable share, /run/e2e in the guest ----
# in: pattern.bin (random test data: /dev/urandom is slow under TCG), bin/
# out: whatever the guest puts in out/ (logs, dmesg)
SHARE=$WORK/share
mkdir -p $SHARE/out $SHARE/bin
head -c ${DD_MB}M /dev/urandom > $SHARE/pattern.bin
[ "$STANDIN" = nbdkit ] || cp "$USBD_BIN" $SHARE/bin/usbd-objstore

# ---- boot ----
mkdir -p "$E2E_OUT"
LOG=$E2E_OUT/serial.log
: > "$LOG"
echo "run-vm: $NAME${STANDIN:+ (stand-in: $STANDIN)}: kernel $KVER, accel=$ACCEL smp=$SMP mem=${MEM}M, log $LOG"
START=$(date +%s.%N)
timeout -k 10 $TIMEOUT qemu-system-x86_64 \
    -accel $ACCEL -cpu max -smp $SMP -m $MEM \
    -nodefaults -no-user-config -display none -nic none \
    -serial stdio -monitor none \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path=$SHARE,mount_tag=e2e,security_model=none \
    -kernel "$KERNEL" -initrd $WORK/initramfs.cpio.gz \
    -append "console=ttyS0 loglevel=4 panic=-1 oops=panic" \
    -no-reboot </dev/null >"$LOG" 2>&1 &
QPID=$!
if [ "${E2E_QUIET:-0}" != 1 ]; then
    tail -n +1 -f --pid=$QPID "$LOG" &
    TPID=$!
fi
wait $QPID
QRC=$?
QPID=
[ -n "$TPID" ] && { wait $TPID 2>/dev/null; TPID=; }
END=$(date +%s.%N)
cp -r $SHARE/out/. "$E2E_OUT"/ 2>/dev/null
printf 'run-vm: qemu exit %s, wall time %.1f s\n' $QRC "$(echo "$END - $START" | bc)"

# isa-debug-exit: the guest writes 0 -> qemu exits 1 (PASS); 1 -> exits 3 (FAIL)
if [ $QRC = 1 ] && grep -q '^E2E-RESULT: PASS' "$LOG"; then echo "run-vm: $NAME: PASS"; exit 0; fi
if [ $QRC = 3 ] || grep -q '^E2E-RESULT: FAIL' "$LOG"; then echo "run-vm: $NAME: FAIL"; exit 1; fi
[ $QRC = 124 ] && echo "run-vm: timed out after $TIMEOUT s"
echo "run-vm: $NAME: NO VERDICT (qemu rc=$QRC)"
exit 2
