#!/bin/bash
# test.sh: the whole test suite, as CI runs it. Installs what is missing
# (needs root for that), builds release and ASan+UBSan, runs every test in
# both; builds for arm64 and armhf (scripts/build-cross.sh) and runs their
# unit tests and the integration tests that need no VM and no RGW under
# qemu-user; then fuzzes the NBD parser for FUZZ_SECONDS (default 60) and the
# S3 XML parser for a third of that (tests/fuzz/run-fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
scripts/build.sh release asan fuzz
scripts/build-cross.sh arm64 armhf
scripts/package.sh amd64 arm64 armhf # test-package.sh installs the first
status=0 passed=0 failed=0 skipped=0
log=$(mktemp /tmp/usbd-ctest.XXXXXX)
trap 'rm -f "$log"' EXIT
for dir in build build-asan build-arm64 build-armhf; do
    echo "=== ctest in $dir"
    (cd $dir && ctest --output-on-failure --timeout 600) | tee "$log" || status=1
    passed=$((passed + $(grep -c ' Passed ' "$log" || true)))
    failed=$((failed + $(grep -Ec '\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception' "$log" || true)))
    skipped=$((skipped + $(grep -c 'Skipped' "$log" || true)))
done
# The kernel path: /dev/nbd0 (and the USB gadget chain) inside a qemu VM;
# then a qemu PC that boots from the drive (usb-storage over NBD: no VM
# around it, so not through run-vm.sh).
for t in nbd-attach-test.sh usb-gadget-test.sh boot-from-usb.sh; do
    echo "=== VM: $t"
    rc=0
    case $t in
    boot-from-usb.sh) BUILD=$PWD/build tests/e2e/boot-from-usb.sh || rc=$? ;;
    *) BUILD=$PWD/build E2E_QUIET=1 tests/e2e/run-vm.sh "$t" || rc=$? ;;
    esac
    case $rc in 0) passed=$((passed + 1)) ;; 77) skipped=$((skipped + 1)) ;;
                *) failed=$((failed + 1)); status=1 ;; esac
done
echo "=== fuzz (tests/fuzz/run-fuzz.sh, FUZZ_SECONDS=${FUZZ_SECONDS:-60})"
if tests/fuzz/run-fuzz.sh build-fuzz "${FUZZ_SECONDS:-60}"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
[ $status = 0 ] || echo "test.sh: FAILURES above"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
