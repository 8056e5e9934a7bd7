#!/bin/bash
# test.sh: the whole test suite, as CI runs it. Installs what is missing
# (needs root for that), builds release and ASan+UBSan, runs every test in
# both, then fuzzes the NBD parser for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
scripts/build.sh release asan fuzz
status=0
for dir in build build-asan; do
    echo "=== ctest in $dir"
    (cd $dir && ctest --output-on-failure --timeout 600) || status=1
done
echo "=== fuzz (${FUZZ_SECONDS:-60}s)"
tests/fuzz/run-fuzz.sh build-fuzz "${FUZZ_SECONDS:-60}" || status=1
[ $status = 0 ] && echo "test.sh: all passed" || echo "test.sh: FAILURES above"
exit $status
