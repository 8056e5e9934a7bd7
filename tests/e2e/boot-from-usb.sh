#!/bin/bash
# boot-from-usb.sh - a PC boots from the drive. On the host, no root-only
# step, no loop device, no kernel nbd:
#  1. build a bootable USB-stick image in a temp dir: an MBR (syslinux's
#     mbr.bin, one active FAT16 partition at 1 MiB), SYSLINUX installed into
#     the unmounted partition with mtools, Debian's kernel, and a tiny
#     initramfs (static busybox + /init) whose /init prints a marker holding a
#     nonce made for this run on ttyS0, then leaves through isa-debug-exit;
#  2. start the daemon (-kind=local, private store and cache), write the image
#     with nbdcopy, SIGTERM it (it flushes to the store and must exit 0),
#     delete its cache dir, start it again from the store alone;
#  3. boot a qemu PC (SeaBIOS) whose only disk is a USB drive
#     (-device usb-storage on qemu-xhci) backed by the daemon over NBD; PASS
#     only if the exact nonce appears on the serial console, the daemon
#     fetched chunks from the store and served reads, and exits 0 on SIGTERM
#     afterwards. Then the image read back through the daemon must equal the
#     one written (tells a daemon fault from a boot-chain fault).
# Each stage's wall time is printed as "boot-from-usb: stage NAME took N.N s"
# and written to $E2E_OUT/timings.txt ("NAME N.N" lines). Under TCG these
# are emulation figures: they say nothing about real boards.
#
# Usage: tests/e2e/boot-from-usb.sh
# Environment:
#   BUILD      build tree holding usbd-objstore (default: <repo>/build)
#   USBD_BIN   the daemon to test (default: $BUILD/usbd-objstore)
#   E2E_OUT    serial log, firmware log, daemon logs, timings
#              (default: $BUILD/e2e-out/boot-from-usb)
#   ACCEL MEM TIMEOUT KVER   the VM (defaults: tcg,thread=multi, 512, 600 s
#              for the boot, newest *-amd64 in /lib/modules)
#   USB_HC     qemu-xhci (default) or usb-ehci: the USB host controller
#   KEEP_WORK=1  keep the temp dir
#   BREAK=store-emptied|no-commit|wrong-nonce   break one link on purpose
#              (to see the test fail): empty the store before the restart
#              (the cache dir is kept); remove the epoch commit records from
#              the store (the chunks stay, the cache dir goes); or expect a
#              nonce the image does not hold
# Needs: qemu-system-x86 linux-image-amd64 busybox-static cpio syslinux
#   syslinux-common mtools dosfstools libnbd-bin, and root for nothing but
#   reading the kernel image.
# Exit: 0 PASS, 1 FAIL, 2 no verdict (timeout, broken set-up), 77 cannot run here.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
USBD_BIN=${USBD_BIN:-$BUILD/usbd-objstore}
E2E_OUT=${E2E_OUT:-$BUILD/e2e-out/boot-from-usb}
KVER=${KVER:-$(ls /lib/modules 2>/dev/null | grep -E 'amd64$' | sort -V | tail -1)}
KERNEL=/boot/vmlinuz-$KVER
ACCEL=${ACCEL:-tcg,thread=multi}
MEM=${MEM:-512}
TIMEOUT=${TIMEOUT:-600}
USB_HC=${USB_HC:-qemu-xhci}
BREAK=${BREAK:-}
SYSLINUX_MBR=/usr/lib/syslinux/mbr/mbr.bin
IMG_MB=32          # the stick image; the device is bigger (DEV_MB)
DEV_MB=64
PART_START=2048    # sectors: the partition starts at 1 MiB
EXPORT=boot
ME=boot-from-usb

say() { echo "$ME: $*"; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; show_logs; exit 1; }
noverdict() { say "NO VERDICT: $*"; show_logs; exit 2; }

[ -n "$KVER" ] && [ -r "$KERNEL" ] || skip "no readable Debian kernel $KERNEL (apt-get install linux-image-amd64)"
for t in qemu-system-x86_64 nbdcopy syslinux mcopy mkfs.vfat cpio gzip timeout awk; do
    command -v $t >/dev/null || skip "missing $t (apt-get install qemu-system-x86 libnbd-bin syslinux mtools dosfstools cpio)"
done
[ -r $SYSLINUX_MBR ] || skip "missing $SYSLINUX_MBR (apt-get install syslinux-common)"
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx poweroff ||
    skip "missing a static /bin/busybox (apt-get install busybox-static)"
[ -x "$USBD_BIN" ] || skip "no daemon at $USBD_BIN (build it, or set BUILD / USBD_BIN)"
case $USB_HC in qemu-xhci|usb-ehci) ;; *) skip "USB_HC=$USB_HC: qemu-xhci or usb-ehci" ;; esac
case $BREAK in ''|store-emptied|no-commit|wrong-nonce) ;; *) skip "BREAK=$BREAK: store-emptied, no-commit or wrong-nonce" ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/usbd-boot.XXXXXX") || exit 2
STORE=$WORK/store CACHE=$WORK/cache SOCK=$WORK/usbd.sock
DPID='' QPID='' SPID=''
cleanup() {
    set +e
    # Only what this script started: the daemon and qemu (through timeout).
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    for f in "$WORK"/*.log; do [ -f "$f" ] && cp "$f" "$E2E_OUT"/ 2>/dev/null; done
    [ "${KEEP_WORK:-0}" = 1 ] && say "work dir kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP
mkdir -p "$E2E_OUT" || exit 2
rm -f "$E2E_OUT"/*.log "$E2E_OUT"/timings.txt
TIMINGS=$E2E_OUT/timings.txt

show_logs() {
    local f
    for f in "$WORK"/*.log; do
        [ -s "$f" ] || continue
        echo "---- $(basename "$f") (last 25 lines)"
        tail -25 "$f" | tr -d '\r'
    done
}

# Stage timing: stage_start; ...; stage_end NAME
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
stage_start() { STAGE_T0=$(now); }
stage_end() { record "$1" "$(secs "$STAGE_T0" "$(now)")"; }
record() {
    say "stage $1 took $2 s"
    echo "$1 $2" >> "$TIMINGS"
}
T_ALL=$(now)

# ---- the daemon ----
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
# start_usbd TAG: in the background on $SOCK, logging to $WORK/TAG.log
start_usbd() {
    local tag=$1
    DLOG=$WORK/$tag.log
    rm -f "$SOCK"
    "$USBD_BIN" -kind=local -store="$STORE" -store-dir="$CACHE" -name=$EXPORT -size=${DEV_MB}MiB \
        -key=key:$KEY -listen=unix:"$SOCK" -nbd-device=none 2>"$DLOG" &
    DPID=$!
    for _ in $(seq 600); do
        [ -S "$SOCK" ] && grep -q 'ready:' "$DLOG" && return 0
        kill -0 $DPID 2>/dev/null || { wait $DPID; fail "$tag: the daemon exited at start (status $?)"; }
        sleep 0.1
    done
    fail "$tag: the daemon was not ready within 60 s"
}
# stop_usbd TAG: SIGTERM; it flushes everything to the store and must exit 0
stop_usbd() {
    local tag=$1 rc
    kill -TERM $DPID || fail "$tag: the daemon was already gone"
    for _ in $(seq 1200); do kill -0 $DPID 2>/dev/null || break; sleep 0.1; done
    kill -0 $DPID 2>/dev/null && fail "$tag: the daemon still ran 120 s after SIGTERM"
    wait $DPID
    rc=$?
    DPID=
    [ $rc = 0 ] || fail "$tag: the daemon exited with status $rc after SIGTERM"
    grep -q 'stopped cleanly' "$WORK/$tag.log" || fail "$tag: no 'stopped cleanly' in its log"
}
# counter TAG WORD: from the exit line "served N reads (B bytes), N writes ..."
counter() {
    grep -E 'served [0-9]+ reads' "$WORK/$1.log" | tail -1 | grep -oE "[0-9]+ $2" | head -1 | cut -d' ' -f1
}

# ============================ 1. the image ============================
stage_start
NONCE=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
EXPECT=$NONCE
[ "$BREAK" = wrong-nonce ] && EXPECT=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
MARKER=USBD-BOOT-MARKER

# The initramfs: busybox and an /init that needs no device node in the
# archive (cpio -o of /dev/console would need root). The nonce lives only
# here, inside the compressed archive on the stick: never on the kernel
# command line, which the kernel echoes to the console.
I=$WORK/initrd
mkdir -p $I/bin $I/dev $I/proc $I/sys
cp /bin/busybox $I/bin/busybox
cat > $I/init <<EOF
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "$MARKER $NONCE up \$(/bin/busybox cut -d' ' -f1 /proc/uptime) s" > /dev/ttyS0
# isa-debug-exit: qemu exits 1; poweroff if that device is missing
/bin/busybox printf '\\000' | /bin/busybox dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
/bin/busybox poweroff -f
EOF
chmod 755 $I/init
(cd $I && find . | cpio -o -H newc --quiet | gzip -9) > $WORK/initrd.gz ||
    noverdict "cannot make the initramfs"

# The FAT16 partition, made as a file of its own (mtools works on unmounted
# images); its hidden-sectors field says where it starts on the disk.
PART=$WORK/part.img
PART_SECTORS=$((IMG_MB * 2048 - PART_START))
export MTOOLS_SKIP_CHECK=1
truncate -s $((PART_SECTORS * 512)) $PART
mkfs.vfat -F 16 -h $PART_START -n USBDBOOT $PART >$WORK/mkfs.out 2>&1 ||
    { cat $WORK/mkfs.out; noverdict "mkfs.vfat failed"; }
cat > $WORK/syslinux.cfg <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0 loglevel=6 panic=-1
EOF
mcopy -i $PART "$KERNEL" ::/vmlinuz &&
    mcopy -i $PART $WORK/initrd.gz ::/initrd.gz &&
    mcopy -i $PART $WORK/syslinux.cfg ::/syslinux.cfg || noverdict "mcopy into the FAT image failed"
syslinux --install $PART || noverdict "syslinux --install failed"

# The disk: MBR boot code, one active partition of type 0x0e (FAT16 LBA),
# the boot signature, then the partition at PART_START.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) \
    $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
chs() { # LBA -> 3 CHS bytes for 255 heads, 63 sectors per track
    local c=$(($1 / (255 * 63))) h=$((($1 / 63) % 255)) s=$(($1 % 63 + 1))
    [ $c -gt 1023 ] && { printf '\\xfe\\xff\\xff'; return; }
    printf '\\x%02x\\x%02x\\x%02x' $h $((s | ((c >> 2) & 0xc0))) $((c & 255))
}
IMG=$WORK/stick.img
truncate -s ${IMG_MB}M $IMG
{
    dd if=$SYSLINUX_MBR of=$IMG bs=440 count=1 conv=notrunc status=none &&
    printf "\\x80$(chs $PART_START)\\x0e$(chs $((PART_START + PART_SECTORS - 1)))$(le32 $PART_START)$(le32 $PART_SECTORS)" |
        dd of=$IMG bs=1 seek=446 conv=notrunc status=none &&
    printf '\x55\xaa' | dd of=$IMG bs=1 seek=510 conv=notrunc status=none &&
    dd if=$PART of=$IMG bs=1M seek=$((PART_START / 2048)) conv=notrunc,sparse status=none
} || noverdict "cannot assemble the disk image"
[ "$(stat -c %s $IMG)" = $((IMG_MB * 1024 * 1024)) ] || noverdict "the disk image has the wrong size"
stage_end image-build
say "image: $IMG_MB MiB, MBR + FAT16 at sector $PART_START, kernel $KVER ($(stat -c %s "$KERNEL") bytes), initramfs $(stat -c %s $WORK/initrd.gz) bytes, nonce $NONCE"

# ===================== 2. onto the device, into the store =====================
stage_start
start_usbd write
stage_end daemon-create
stage_start
nbdcopy $IMG "nbd+unix:///$EXPORT?socket=$SOCK" || fail "nbdcopy of the image onto the device failed"
stage_end nbdcopy-write
stage_start
stop_usbd write
stage_end flush-stop
W=$(counter write writes)
[ "${W:-0}" -gt 0 ] || fail "write: the daemon's exit line counts no writes"
grep -q 'everything is in the store' $WORK/write.log || fail "write: no 'everything is in the store' in its log"
say "write: $W writes served; $(grep -oE 'this run: .*' $WORK/write.log)"

# Forget everything local: the boot must come from the store alone.
case $BREAK in
store-emptied)
    say "BREAK: emptying the store, keeping the cache dir"
    rm -rf "$STORE"; mkdir -p "$STORE" ;;
no-commit)
    say "BREAK: removing the commit records (epochs/, checkpoints/) from the store"
    rm -rf "$STORE/$EXPORT/epochs" "$STORE/$EXPORT/checkpoints"
    rm -rf "$CACHE"; mkdir -p "$CACHE" ;;
*)  rm -rf "$CACHE"; mkdir -p "$CACHE" ;;
esac
stage_start
start_usbd boot
stage_end restart-from-store
grep -q 'created volume' $WORK/boot.log && fail "boot: the volume was not in the store (the daemon created a new one)"
grep -qE 'cache slots \(0 in use\)' $WORK/boot.log || say "boot: note: the cache was not empty at start"

# ============================ 3. the boot ============================
SERIAL=$WORK/serial.log BIOSLOG=$WORK/firmware.log
: > $BIOSLOG
# shellcheck disable=SC2054 # the commas belong to qemu's option syntax
QEMU=(qemu-system-x86_64 -accel "$ACCEL" -cpu max -m "$MEM"
    -nodefaults -no-user-config -display none -nic none -monitor none -serial stdio
    -chardev "file,id=fw,path=$BIOSLOG" -device isa-debugcon,iobase=0x402,chardev=fw
    -device isa-debug-exit,iobase=0xf4,iosize=0x04
    -blockdev "driver=nbd,node-name=usbdisk,server.type=unix,server.path=$SOCK,export=$EXPORT"
    -device "$USB_HC,id=usbhc" -device usb-storage,bus=usbhc.0,drive=usbdisk,bootindex=0
    -boot menu=off,strict=on,reboot-timeout=1000 -no-reboot)
printf '%q ' "${QEMU[@]}" > "$E2E_OUT/qemu-cmdline.txt"
say "qemu: ${QEMU[*]}"
# Every console line gets the host time it arrived at ("SECONDS LINE"), so
# the stages of the boot can be timed afterwards.
stamp() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"
    done
}
mkfifo $WORK/serial.fifo || noverdict "mkfifo failed"
stamp < $WORK/serial.fifo > $SERIAL &
SPID=$!
T_BOOT=$(now)
timeout -k 10 $TIMEOUT "${QEMU[@]}" </dev/null >$WORK/serial.fifo 2>$WORK/qemu.log &
QPID=$!
wait $QPID
QRC=$?
QPID=
T_END=$(now)
wait $SPID
SPID=
cp $SERIAL $BIOSLOG "$E2E_OUT"/
# first PATTERN: the host time of the first console line holding PATTERN
first() { grep -a -m1 -- "$1" $SERIAL | cut -d' ' -f1; }
# firmware-to-loader: qemu start, SeaBIOS, its USB scan, MBR, SYSLINUX up;
# loader-reads: SYSLINUX reads the kernel and the initramfs from the drive;
# kernel-start: decompression and early boot, up to the kernel's console
# (its first lines come out then, backlogged); kernel-to-marker: the rest
# of the boot, up to /init's line.
T_LOADER=$(first ' SYSLINUX ') T_LOADED=$(first 'Loading /initrd.gz')
T_KERNEL=$(first 'Linux version') T_MARK=$(first "$MARKER")
stage() { [ -n "$2" ] && [ -n "$3" ] && record $1 "$(secs $2 $3)"; }
stage firmware-to-loader "$T_BOOT" "$T_LOADER"
stage loader-reads "$T_LOADER" "$T_LOADED"
stage kernel-start "$T_LOADED" "$T_KERNEL"
stage kernel-to-marker "$T_KERNEL" "$T_MARK"
stage boot-to-marker "$T_BOOT" "$T_MARK"
say "qemu exit $QRC after $(secs $T_BOOT $T_END) s"
LINE=$(grep -a "$MARKER" $SERIAL | tail -1 | cut -d' ' -f2-)
[ -n "$LINE" ] && say "console: $LINE"

# ============================ 4. the verdict ============================
# Every check runs, also after a failed boot, so the report tells a daemon
# fault (no fetch, a different image read back) from a boot-chain fault.
FAILS=() NOVERDICT=
if grep -aq "$MARKER $EXPECT " $SERIAL; then :
elif [ -n "$LINE" ]; then FAILS+=("the marker on the console holds another nonce than $EXPECT")
elif [ $QRC = 124 ] || [ $QRC = 137 ]; then
    NOVERDICT="no marker within $TIMEOUT s (qemu timed out; TCG on a busy machine?)"
else
    say "no marker; the firmware log ends:"; tail -3 $BIOSLOG | tr -d '\r'
    FAILS+=("qemu ended (exit $QRC) without the marker: the PC did not boot from the USB drive")
fi
stage_start
stop_usbd boot
stage_end stop-after-boot
R=$(counter boot reads)
W=$(counter boot writes)
F=$(grep -oE 'this run: [0-9]+ chunks fetched' $WORK/boot.log | grep -oE '[0-9]+' | head -1)
say "boot: ${R:-0} reads, ${W:-0} writes served; $(grep -oE 'this run: .*' $WORK/boot.log)"
[ "${R:-0}" -gt 0 ] || FAILS+=("boot: the daemon's exit line counts no reads")
[ "${F:-0}" -gt 0 ] || FAILS+=("boot: the daemon fetched no chunk from the store")

# The image read back through the daemon (from its cache, and the store for
# what the boot did not read) must be the one written.
stage_start
start_usbd readback
nbdcopy "nbd+unix:///$EXPORT?socket=$SOCK" $WORK/readback.img || FAILS+=("nbdcopy of the device into a file failed")
if cmp -s -n $((IMG_MB * 1024 * 1024)) $WORK/readback.img $IMG; then
    say "readback: the image read back through the daemon is the one written"
else
    FAILS+=("the image read back through the daemon differs from the one written")
fi
rm -f $WORK/readback.img
stop_usbd readback
stage_end readback-compare
record total "$(secs $T_ALL "$(now)")"

if [ ${#FAILS[@]} -gt 0 ]; then
    for f in "${FAILS[@]:1}"; do say "also: $f"; done
    fail "${FAILS[0]}"
fi
[ -n "$NOVERDICT" ] && noverdict "$NOVERDICT"
say "PASS: booted from the USB drive: $LINE"
exit 0
