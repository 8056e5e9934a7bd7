#!/bin/bash
# package.sh [amd64|arm64|armhf]...: the Debian packages usbd-objstore and
# libusbd-dev (dist/package.cmake) for each architecture, in build-deb/:
# usbd-objstore_VERSION_ARCH.deb and libusbd-dev_VERSION_ARCH.deb. amd64 is
# built in build-deb/ itself (configured for /usr, unlike build/), arm64 and
# armhf in build-ARCH/ by scripts/build-cross.sh. Default: this machine's
# architecture.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- "$(dpkg --print-architecture)"
mkdir -p build-deb
out=$PWD/build-deb
for arch in "$@"; do
    case $arch in
    "$(dpkg --print-architecture)")
        dir=build-deb
        cmake -S . -B $dir -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
        cmake --build $dir >/dev/null ;;
    arm64|armhf)
        dir=build-$arch
        scripts/build-cross.sh $arch >/dev/null ;;
    *) echo "package.sh: unknown architecture '$arch' (amd64, arm64, armhf)" >&2; exit 2 ;;
    esac
    (cd $dir && cpack -B "$out/cpack-$arch" >/dev/null)
    mv build-deb/cpack-$arch/*.deb build-deb/
    rm -rf build-deb/cpack-$arch
done
ls build-deb/*.deb
