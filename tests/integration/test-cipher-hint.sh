#!/bin/bash
# -cipher: the daemon says once, at start, that AES-256-CTR runs in software
# when the CPU has no AES instructions (and suggests chacha20-poly1305), and
# says nothing when it has them, with another cipher, or without a store.
# Natively the CPU's answer comes from /proc/cpuinfo; under qemu-user
# (USBD_EMULATOR) the emulated CPU is chosen with QEMU_CPU: a Cortex-A15
# (ARMv7, no AES, as on a Cubietruck) for 32-bit ARM, and qemu's "max" CPU,
# which has the ARMv8 AES instructions, for both ARM targets.
. "$(dirname "$0")/lib.sh"
HINT="no AES instructions"
hint_count() { # CIPHER [KIND]: GOT = how many hint lines a start with them logs
    local cipher=$1 kind=${2:-local} n=$((++STARTS)) flags
    flags=(-kind=mem)
    [ $kind = mem ] || flags=($(vol_flags $TMP/store $TMP/state$n))
    start_usbd h$n "${flags[@]}" -size=4MiB -cipher=$cipher
    stop_usbd
    GOT=$(grep -c "$HINT" $LOG || true)
}
STARTS=0
expect() { # WANT CIPHER [KIND]
    hint_count "${@:2}"
    [ "$GOT" = "$1" ] || { cat $LOG; fail "-cipher=$2 ${3:-local} (${QEMU_CPU:-native}): $GOT hint lines, expected $1"; }
}
check_cpu() { # HAS_AES: 1 or 0
    expect $((1 - $1)) aes-256-ctr
    expect 0 chacha20-poly1305
    expect 0 none
    expect 0 aes-256-ctr mem
    if [ $1 = 0 ]; then
        ok "${QEMU_CPU:-this CPU} has no AES: one line: $(grep -h "$HINT" $TMP/h*.log | head -1 | sed 's/^[0-9:.]* //')"
    else
        ok "${QEMU_CPU:-this CPU} has AES: no hint, for any cipher"
    fi
}
case "$USBD_EMULATOR" in
*qemu-arm*)
    export QEMU_CPU=cortex-a15; check_cpu 0
    export QEMU_CPU=max; check_cpu 1 ;;
*qemu-aarch64*)
    export QEMU_CPU=max; check_cpu 1 ;;
'')
    if grep -qw aes /proc/cpuinfo; then check_cpu 1; else check_cpu 0; fi ;;
*) skip "no expectation for the emulator '$USBD_EMULATOR'" ;;
esac
