# lib.sh - sourced by the guest tests. They run inside the VM of ../run-vm.sh,
# chrooted into the host's root (read-only) with tmpfs on /tmp, the exchange
# share on /run/e2e (pattern.bin and bin/ in, out/ back to the host) and
# their own files in /tmp/e2e.
[ -f /tmp/e2e/env ] && . /tmp/e2e/env
OUT=/run/e2e/out
T0=$EPOCHREALTIME
MiB=$((1024 * 1024))

log() { printf 'E2E [%7.2fs] %s\n' "$(echo "$EPOCHREALTIME - $T0" | bc)" "$*"; }

fail() {
    log "FAIL: $*"
    on_fail
    dmesg | tail -40
    dmesg > $OUT/dmesg.txt 2>/dev/null
    exit 1
}

# now: seconds since the epoch, with microseconds
now() { echo "$EPOCHREALTIME"; }
# since T: seconds elapsed, one decimal
since() { printf '%.1f' "$(echo "$EPOCHREALTIME - $1" | bc)"; }

# ddt LABEL MB dd-args... : run dd, log its MiB/s
ddt() {
    local label=$1 mb=$2 s out
    shift 2
    s=$EPOCHREALTIME
    out=$(dd "$@" 2>&1) || { echo "$out"; fail "dd $label"; }
    log "THROUGHPUT $label: $(echo "scale=1; $mb / ($EPOCHREALTIME - $s)" | bc) MiB/s ($(echo "$out" | tail -1))"
}

# wait_for SECONDS COMMAND... : poll every 0.1 s until COMMAND succeeds
# (bash scoping is dynamic: the counter has a name no caller uses)
wait_for() {
    local _wait_for_left=$(($1 * 10))
    shift
    while [ $_wait_for_left -gt 0 ]; do
        "$@" && return 0
        sleep 0.1
        _wait_for_left=$((_wait_for_left - 1))
    done
    "$@"
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# The random test data made by the host (urandom under TCG is slow).
pattern() {
    [ -f /tmp/pattern.bin ] && return 0
    if [ -f /run/e2e/pattern.bin ]; then cp /run/e2e/pattern.bin /tmp/pattern.bin
    else head -c ${DD_MB:-64}M /dev/urandom > /tmp/pattern.bin; fi
}

# ---------------------------------------------------------- the daemon
BIN=/tmp/usbd-objstore              # copied from the share by get_daemon
STOP_BOUND=${E2E_STOP_BOUND:-20}   # seconds from SIGTERM to exit
declare -A PIDS

get_daemon() {
    cp /run/e2e/bin/usbd-objstore $BIN || fail "no daemon in the share"
    log "daemon: $($BIN -version 2>&1)"
}

# On failure: the daemons' logs, to the console and to the host.
on_fail() {
    for f in /tmp/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 25 lines)"
        tail -25 "$f"
        cp "$f" $OUT/ 2>/dev/null
    done
}

# start_usbd TAG DEVICE FLAGS... : the daemon in the background, logging to
# /tmp/TAG.log, listening on /tmp/TAG.sock; PIDS[TAG] is its pid.
start_usbd() {
    local tag=$1 dev=$2
    shift 2
    $BIN -listen=unix:/tmp/$tag.sock -nbd-device=$dev -log-level=debug ${NBD_FLAGS:-} "$@" \
        > /tmp/$tag.log 2>&1 &
    PIDS[$tag]=$!
    log "started $tag (pid $!): usbd-objstore -nbd-device=$dev $*"
}

# wait_attached NAME PID : until /sys/block/NAME has a size and a pid file
wait_attached() {
    local n=$1 pid=$2 t
    t=$(now)
    is_up() { [ -e /sys/block/$n/pid ] && [ "$(cat /sys/block/$n/size)" -gt 0 ]; }
    alive_or_up() { is_up || ! kill -0 $pid 2>/dev/null; }
    wait_for 60 alive_or_up
    is_up || fail "/dev/$n not attached within 60 s (daemon alive: $(kill -0 $pid 2>/dev/null && echo yes || echo no))"
    log "/dev/$n attached after $(since $t) s: size $(blockdev --getsize64 /dev/$n), pid file $(cat /sys/block/$n/pid)"
}

# stop_usbd TAG NAME [held] : SIGTERM; exit 0 within STOP_BOUND; /dev/NAME
# let go (held: another process still has it open, so the kernel keeps its
# configuration until that one closes it, and the daemon says so)
stop_usbd() {
    local tag=$1 n=$2 held=${3:-} pid=${PIDS[$1]} t rc
    t=$(now)
    kill -TERM $pid || fail "$tag: daemon already gone"
    gone() { ! kill -0 $pid 2>/dev/null; }
    wait_for $STOP_BOUND gone || fail "$tag: still running $STOP_BOUND s after SIGTERM"
    wait $pid
    rc=$?
    log "$tag: exited $rc $(since $t) s after SIGTERM"
    [ $rc = 0 ] || fail "$tag: exit status $rc"
    if [ -n "$held" ]; then
        grep -q "/dev/$n is disconnected but still open elsewhere" /tmp/$tag.log ||
            fail "$tag: no 'still open elsewhere' in its log"
    elif [ -n "$n" ]; then
        [ -e /sys/block/$n/pid ] && fail "$tag: /sys/block/$n/pid still there after exit"
        [ "$(cat /sys/block/$n/size)" = 0 ] || fail "$tag: /dev/$n size $(cat /sys/block/$n/size) after exit"
        grep -q "detached /dev/$n" /tmp/$tag.log || fail "$tag: no 'detached /dev/$n' in its log"
    fi
    unset "PIDS[$tag]"
    cp /tmp/$tag.log $OUT/
}

nbd0_free() { [ ! -e /sys/block/nbd0/pid ]; }
has_size() { [ "$(cat /sys/block/$1/size)" -gt 0 ]; }
no_size() { [ "$(cat /sys/block/$1/size)" = 0 ]; }


# counter TAG WORD : from the daemon's exit line "served ... N flushes, N trims, ..."
counter() {
    grep -E 'served [0-9]+ reads' /tmp/$1.log | tail -1 | grep -oE "[0-9]+ $2" | cut -d' ' -f1
}

# New kernel complaints about nbd since mark_dmesg.
mark_dmesg() { DMESG_MARK=$(dmesg | wc -l); }
check_dmesg() {
    local bad
    bad=$(dmesg | tail -n +$((DMESG_MARK + 1)) |
        grep -E 'nbd[0-9]+: .*(failed|timed out|Dead|dead|[Ee]rror|stuck)|I/O error, dev nbd')
    [ -z "$bad" ] || { echo "$bad"; fail "$1: the kernel complained about nbd (above)"; }
}

