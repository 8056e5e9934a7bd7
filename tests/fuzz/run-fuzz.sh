#!/bin/bash
# run-fuzz.sh BUILD_DIR [SECONDS [TARGET...]]: fuzz for a bounded time,
# starting from generated seeds; fails on any finding. Targets: nbd (the NBD
# handshake and request parser, fuzz_nbd) and s3_xml (the S3 XML answers,
# fuzz_s3_xml), each for SECONDS (default 60). Without a target, both: nbd
# for SECONDS and s3_xml for a third of it (a far smaller parser, fast
# runs), so CI's fuzzing grows by 20 s at the default. A finding's input is
# kept in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
BUILD=$(cd "${1:?usage: run-fuzz.sh BUILD_DIR [SECONDS [TARGET...]]}" && pwd)
SECS=${2:-60}
shift $(($# < 2 ? $# : 2))
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/usbd-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$BUILD/fuzz-artifacts"

if [ $# -eq 0 ]; then
    runs=("nbd $SECS" "s3_xml $(( SECS / 3 > 1 ? SECS / 3 : 1 ))")
else
    runs=()
    for t in "$@"; do runs+=("$t $SECS"); done
fi

for run in "${runs[@]}"; do
    read -r target secs <<<"$run"
    opts=()
    case $target in
    nbd) python3 "$HERE/make-seeds.py" "$T/$target" ;;
    s3_xml)
        python3 "$HERE/make-s3-xml-seeds.py" "$T/$target"
        # Inputs are at most 64 KiB: one allocation of 64 MiB is a finding
        # (the parser's bounds have failed), not a big document.
        opts=(-dict="$T/$target.dict" -malloc_limit_mb=64) ;;
    *) echo "run-fuzz.sh: unknown target '$target' (nbd, s3_xml)" >&2; exit 2 ;;
    esac
    echo "=== fuzz_$target (${secs}s)"
    (cd "$T" && "$BUILD/tests/fuzz/fuzz_$target" -max_total_time="$secs" -max_len=65536 \
        -timeout=20 -rss_limit_mb=2048 "${opts[@]}" -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz-artifacts/$target-" "$T/$target" 2>&1 | tail -25)
    echo "fuzz_$target: ${secs}s without a finding"
done
