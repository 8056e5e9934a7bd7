# lib.sh - sourced by every integration test: start the daemon on a private
# socket, wait for it, clean up on exit (also on failure), skip with a reason.
# Env (set by ctest): USBD_BIN, USBD_BUILD, USBD_SRC; in a cross build also
# USBD_EMULATOR (e.g. "qemu-aarch64-static -L /"), which the binaries under
# test then run through, while the clients are this machine's own.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USBD_SRC=${USBD_SRC:-$(cd "$HERE/../.." && pwd)}
USBD_BIN=${USBD_BIN:-$USBD_SRC/build/usbd-objstore}
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/usbd-$TEST_NAME.XXXXXX")
PIDS=()
AFTER_CLEANUP=() # commands run once the processes are gone (umount ...)

# usbd_tool PATH: how to run a program of the build under test: PATH itself,
# or under USBD_EMULATOR a wrapper in $TMP that execs it there (so its pid
# is the emulated program's, and signals reach it).
USBD_EMULATOR=${USBD_EMULATOR:-}
usbd_tool() {
    [ -n "$USBD_EMULATOR" ] || { echo "$1"; return; }
    local w=$TMP/emulated-$(basename "$1")
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$USBD_EMULATOR" "$1" >"$w"
    chmod +x "$w"
    echo "$w"
}
# USBD_SLOW: how many times longer than natively a wait that is bounded by
# how fast the daemon works (not by a timeout it is told) may take: 4 under
# emulation, where the daemon runs several times slower.
USBD_SLOW=${USBD_SLOW:-$([ -n "$USBD_EMULATOR" ] && echo 4 || echo 1)}
USBD_BIN=$(usbd_tool "$USBD_BIN")
[ -z "${USBD_EXAMPLE:-}" ] || USBD_EXAMPLE=$(usbd_tool "$USBD_EXAMPLE")
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
    # an rgw variant must not pass by quietly testing the local store
    [ "$USBD_TEST_STORE" = local ] || [[ " $* " != *" -kind=local "* ]] ||
        fail "USBD_TEST_STORE=$USBD_TEST_STORE but the test starts -kind=local: give the store with store_flags/vol_flags"
    "$USBD_BIN" -listen=unix:$SOCK -nbd-device=none -log-level=debug "$@" 2>"$LOG" &
    USBD_PID=$!
    PIDS+=("$USBD_PID")
    printf -v "PID_$name" %s "$USBD_PID"
    for _ in $(seq $((200 * USBD_SLOW))); do
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

# For object-store tests: a fixed key, and the flags of one volume.
TEST_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
# vol_flags STORE STATE [more flags]: volume 'vol' in STORE with its local
# state in STATE (STORE is a path either way: see store_flags).
vol_flags() {
    local store=$1 state=$2; shift 2
    store_flags $store $state -name=vol -key=key:$TEST_KEY "$@"
}
# wait_log PATTERN [SECONDS]: until the last started daemon logs PATTERN.
wait_log() {
    local pat=$1 secs=${2:-30}
    for _ in $(seq $((secs * 10))); do grep -q -- "$pat" "$LOG" && return 0; sleep 0.1; done
    fail "log never showed '$pat' within ${secs}s"
}

# The object store under test: USBD_TEST_STORE=local (the default) or rgw.
# The tests name a store by a path (STORE, e.g. $TMP/store) and touch it only
# through the store_* helpers below, so one test body runs against both:
#   local  the store is that directory (-kind=local -store=STORE);
#   rgw    the store is the prefix "<STORE without $TMP/>" in the bucket
#          $RGW_BUCKET of a Ceph RGW that this test starts on 127.0.0.1 when
#          it sources lib.sh (-kind=s3 -s3-prefix=...). ctest runs the
#          object-store tests this way as integration-rgw/<name>.
# Keys given to and printed by the helpers are relative to the store
# ("vol/chunks/..."), as in the local directory. The RGW is started here,
# not on first use: store_flags runs in $(...), a subshell, where the
# endpoint and credentials it would set are lost.
USBD_TEST_STORE=${USBD_TEST_STORE:-local}
RGW_BUCKET=usbd-tests
STORE_CLI=${USBD_BUILD:-$USBD_SRC/build}/backends/objstore-cli
case $USBD_TEST_STORE in
local) ;;
rgw)
    . "$HERE/rgw.sh"
    [ -x "$STORE_CLI" ] || skip "objstore-cli not built ($STORE_CLI): the rgw variant needs it"
    start_rgw
    "$STORE_CLI" --store=s3 --s3-endpoint="$S3_ENDPOINT" --s3-bucket=$RGW_BUCKET --s3-create-bucket \
        list >/dev/null 2>$TMP/store-cli.err || { cat $TMP/store-cli.err; fail "creating bucket $RGW_BUCKET"; }
    ;;
*) fail "USBD_TEST_STORE=$USBD_TEST_STORE: expected local or rgw" ;;
esac

# store_prefix STORE: the S3 prefix of a store named by a path.
store_prefix() { local p=${1#$TMP/}; p=${p#/}; echo "${p//\//-}"; }
# store_cli ARGS...: objstore-cli on the test bucket (rgw only); its stderr
# is shown if it fails, and the test fails.
store_cli() {
    "$STORE_CLI" --store=s3 --s3-endpoint="$S3_ENDPOINT" --s3-bucket=$RGW_BUCKET "$@" 2>$TMP/store-cli.err ||
        { cat $TMP/store-cli.err >&2; fail "objstore-cli $*"; }
}

# store_flags STORE STATE [more flags]: the daemon's flags for STORE, with its
# local state in STATE.
store_flags() {
    local store=$1 state=$2; shift 2
    case $USBD_TEST_STORE in
    local) echo -kind=local -store=$store -store-dir=$state "$@" ;;
    rgw) echo -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=$RGW_BUCKET -s3-prefix=$(store_prefix $store) \
        -store-dir=$state "$@" ;;
    esac
}
# store_keys STORE DIR/: the keys under DIR/ (e.g. vol/chunks/), sorted.
store_keys() {
    case $USBD_TEST_STORE in
    local) [ ! -d "$1/$2" ] || (cd "$1" && find "${2%/}" -type f ! -name '.objstore-tmp-*' | LC_ALL=C sort) ;;
    rgw) local p; p=$(store_prefix $1)/; store_cli list "$p$2" | sed "s|^[0-9]* $p||" ;;
    esac
}
# store_count STORE DIR/: how many objects are under DIR/.
store_count() { local k; k=$(store_keys "$@"); [ -z "$k" ] && echo 0 || wc -l <<<"$k"; }
# store_get STORE KEY FILE: one object into FILE.
store_get() {
    case $USBD_TEST_STORE in
    local) cp "$1/$2" "$3" ;;
    rgw) store_cli get "$(store_prefix $1)/$2" "$3" ;;
    esac
}
# store_put STORE KEY FILE: put FILE as the object KEY (replacing it).
store_put() {
    case $USBD_TEST_STORE in
    local) mkdir -p "$(dirname "$1/$2")"; cp "$3" "$1/$2" ;;
    rgw) store_cli put "$(store_prefix $1)/$2" "$3" ;;
    esac
}
# store_delete STORE KEY: delete the object KEY.
store_delete() {
    case $USBD_TEST_STORE in
    local) rm -f "$1/$2" ;;
    rgw) store_cli delete "$(store_prefix $1)/$2" ;;
    esac
}
# store_copy SRC DST: DST (a new store) becomes a copy of every object of SRC
# (a snapshot: nothing may write to SRC meanwhile).
store_copy() {
    case $USBD_TEST_STORE in
    local) cp -a "$1" "$2" ;;
    rgw) store_cli copy "$(store_prefix $1)/" "$(store_prefix $2)/" ;;
    esac
}
# store_export STORE DIR: every object of STORE as a file in the new
# directory DIR (DIR/vol/chunks/...), to read or to alter.
store_export() {
    case $USBD_TEST_STORE in
    local) cp -a "$1" "$2" ;;
    rgw) store_cli export "$(store_prefix $1)/" "$2" ;;
    esac
}
# store_load DIR STORE: STORE (new, or the directory DIR itself for local)
# holds exactly the files of DIR, e.g. after store_export and an alteration.
store_load() {
    case $USBD_TEST_STORE in
    local) [ "$1" -ef "$2" ] || { rm -rf "$2"; cp -a "$1" "$2"; } ;;
    rgw) store_rm "$2"; store_cli import "$1" "$(store_prefix $2)/" ;;
    esac
}
# store_rm STORE: delete every object of STORE.
store_rm() {
    case $USBD_TEST_STORE in
    local) rm -rf "$1" ;;
    rgw) store_cli rm-prefix "$(store_prefix $1)/" ;;
    esac
}
# store_sum STORE [KEY...]: a fingerprint that changes if any object of STORE
# is put, replaced (even by the same bytes), or deleted: names, sizes,
# contents and times of change (the listing's ETag and LastModified for rgw).
# Objects under the KEYs given (e.g. vol/lease vol/epochs) are left out.
store_sum() {
    local store=$1 k prune=() skip=^$; shift
    # (with exclusions, directories are left out too: a lease put into vol/
    # changes the directory's time)
    for k in "$@"; do prune+=(-path "./$k" -prune -o); skip="$skip|^$(store_prefix $store)/$k"; done
    [ $# = 0 ] || prune+=(-type f)
    case $USBD_TEST_STORE in
    local) (cd "$store" && find . "${prune[@]}" -printf '%p %s %T@\n' | LC_ALL=C sort &&
            find . "${prune[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum) | sha256sum ;;
    rgw) rgw_listing "$(store_prefix $store)/" | grep -Ev "$skip" | sha256sum ;;
    esac
}
# The objects a writer's start and clean stop add or replace even with
# nothing to write: the lease, its takeover record, the probe of
# conditional creates, and readers' pins.
CONTROL_KEYS="vol/lease vol/epochs vol/probe vol/readers"
# rgw_listing PREFIX: "key size etag last-modified" of every object under
# PREFIX, from RGW's own ListObjectsV2 (objstore-cli shows neither ETag nor
# time), page after page.
rgw_listing() {
    local after= page query
    while :; do
        # (curl's --data-urlencode writes %2f, which SigV4 signs as a
        # different string than RGW does: upper-case escapes, sorted)
        query=$(/usr/bin/python3 -c 'import sys, urllib.parse as u
print(u.urlencode([("list-type", "2"), ("prefix", sys.argv[1])] + [("start-after", a) for a in sys.argv[2:] if a], quote_via=u.quote, safe=""))' "$1" "$after")
        page=$(curl -sS --fail-with-body --max-time 30 --aws-sigv4 "aws:amz:us-east-1:s3" \
            --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
            -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
            "$S3_ENDPOINT/$RGW_BUCKET?$query") || fail "listing $1 in RGW: $page"
        /usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
ns = {"s": root.tag.split("}")[0].strip("{")}
last = ""
for c in root.findall("s:Contents", ns):
    last = c.findtext("s:Key", "", ns)
    print(last, *(c.findtext("s:" + f, "", ns) for f in ("Size", "ETag", "LastModified")))
more = root.findtext("s:IsTruncated", "", ns) == "true"
open(sys.argv[1], "w").write(last if more else "")
' $TMP/listing.next <<<"$page" || fail "listing $1 in RGW: cannot parse $page"
        after=$(cat $TMP/listing.next)
        [ -n "$after" ] || break
    done
}
