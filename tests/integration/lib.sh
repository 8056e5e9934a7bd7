# lib.sh - sourced by every integration test: start the daemon on a private
# socket, wait for it, clean up on exit (also on failure), skip with a reason.
# Env (set by ctest): USBD_BIN, USBD_BUILD, USBD_SRC.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USBD_SRC=${USBD_SRC:-$(cd "$HERE/../.." && pwd)}
USBD_BIN=${USBD_BIN:-$USBD_SRC/build/usbd-objstore}
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/usbd-$TEST_NAME.XXXXXX")
PIDS=()
AFTER_CLEANUP=() # commands run once the processes are gone (umount ...)
export PYTHONPATH=$HERE${PYTHONPATH:+:$PYTHONPATH}

cleanup() {
    local rc=$?
    set +e # a failing step must not skip the rest of the clean-up
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for cmd in "${AFTER_CLEANUP[@]}"; do eval "$cmd"; done
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for l in "$TMP"/*.log; do [ -f "$l" ] && { echo "--- $l (last 30 lines)"; tail -30 "$l"; }; done
    fi
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
need() { for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"; done; }
ok() { echo "ok: $*"; }

# start_usbd NAME [flags...]: run the daemon on $TMP/NAME.sock, log in $TMP/NAME.log.
# Sets PID_<NAME>, and SOCK / URI / LOG / USBD_PID for the last one started.
start_usbd() {
    local name=$1; shift
    SOCK=$TMP/$name.sock
    LOG=$TMP/$name.log
    URI="nbd+unix:///?socket=$SOCK"
    "$USBD_BIN" -listen=unix:$SOCK -nbd-device=none -log-level=debug "$@" 2>"$LOG" &
    USBD_PID=$!
    PIDS+=("$USBD_PID")
    printf -v "PID_$name" %s "$USBD_PID"
    for _ in $(seq 200); do
        [ -S "$SOCK" ] && grep -q "ready:" "$LOG" && return 0
        kill -0 "$USBD_PID" 2>/dev/null || { cat "$LOG"; fail "daemon exited at start"; }
        sleep 0.05
    done
    cat "$LOG"; fail "daemon did not become ready"
}

# stop_usbd [PID]: SIGTERM, which must end in exit status 0 within 30 s.
stop_usbd() {
    local pid=${1:-$USBD_PID} rc=0
    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && fail "daemon $pid still running 30 s after SIGTERM"
    wait "$pid" || rc=$?
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}") # never signal a pid that may be reused
    [ $rc -eq 0 ] || fail "daemon $pid exited with status $rc after SIGTERM"
}

# nbdsh_run CODE: run Python with a connected libnbd handle `h` on $URI.
# nbdsh is a python3 script: use Debian's python3, which has libnbd's module.
nbdsh_run() { PATH=/usr/bin:$PATH nbdsh --base-allocation -u "$URI" -c "$1"; }

# For -kind=local tests: a fixed key, and the flags of one volume.
TEST_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
local_flags() { # STORE STATE [more flags]
    local store=$1 state=$2; shift 2
    echo -kind=local -store=$store -store-dir=$state -name=vol -key=key:$TEST_KEY "$@"
}
# wait_log PATTERN [SECONDS]: until the last started daemon logs PATTERN.
wait_log() {
    local pat=$1 secs=${2:-30}
    for _ in $(seq $((secs * 10))); do grep -q -- "$pat" "$LOG" && return 0; sleep 0.1; done
    fail "log never showed '$pat' within ${secs}s"
}
