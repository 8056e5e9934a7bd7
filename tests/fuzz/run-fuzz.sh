#!/bin/bash
# run-fuzz.sh BUILD_DIR [SECONDS]: fuzz the NBD handshake and request parser
# for a bounded time, starting from generated seeds; fails on any finding.
set -euo pipefail
BUILD=$(cd "${1:?usage: run-fuzz.sh BUILD_DIR [SECONDS]}" && pwd)
SECS=${2:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/usbd-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
python3 "$HERE/make-seeds.py" "$T/corpus"
cd "$T"
"$BUILD/tests/fuzz/fuzz_nbd" -max_total_time="$SECS" -max_len=65536 -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 "$T/corpus" 2>&1 | tail -25
echo "fuzz: ${SECS}s without a finding"
