#!/bin/bash
# build-cross.sh [--deps-only] arm64|armhf...: build the daemon, libusbd, the
# tests and the tools for a board's architecture into build-ARCH/, with
# Debian's cross toolchain (crossbuild-essential-ARCH) and the target's
# multiarch -dev packages. Installs what is missing first (as root; on a fresh
# Debian 12 machine it adds the foreign architecture to dpkg), and
# qemu-user-static, with which ctest in build-ARCH runs the unit tests and
# the integration tests that need no VM and no RGW (tests/CMakeLists.txt).
# The trees are configured for /usr, as a package installs them
# (scripts/package.sh); BUILD_TYPE (default Release) picks the build type.
set -euo pipefail
cd "$(dirname "$0")/.."
deps_only=false
[ "${1:-}" = --deps-only ] && { deps_only=true; shift; }
[ $# -gt 0 ] || { echo "usage: build-cross.sh [--deps-only] arm64|armhf..." >&2; exit 2; }
triplet() {
    case $1 in
    arm64) echo aarch64-linux-gnu ;;
    armhf) echo arm-linux-gnueabihf ;;
    *) echo "build-cross.sh: unknown architecture '$1' (arm64, armhf)" >&2; exit 2 ;;
    esac
}
# The target's libraries: the same -dev packages as scripts/deps.sh, for ARCH.
LIBS=(libzstd-dev liblmdb-dev libssl-dev libcurl4-openssl-dev libexpat1-dev)

missing=() add_arch=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have qemu-user-static || missing+=(qemu-user-static)
for arch in "$@"; do
    triplet $arch >/dev/null
    dpkg --print-foreign-architectures | grep -qx $arch || add_arch+=($arch)
    have crossbuild-essential-$arch || missing+=(crossbuild-essential-$arch)
    for p in "${LIBS[@]}"; do have $p:$arch || missing+=($p:$arch); done
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "build-cross.sh: missing packages: ${missing[*]}; run as root" >&2
        exit 1
    fi
    for arch in "${add_arch[@]}"; do dpkg --add-architecture $arch; done
    echo "build-cross.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$deps_only && exit 0

for arch in "$@"; do
    cmake -S . -B build-$arch -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-linux-cross.cmake \
        -DUSBD_CROSS_TRIPLET=$(triplet $arch) -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} \
        -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
    cmake --build build-$arch
    echo "build-cross.sh: $arch build ready in build-$arch/ (ctest there runs it under $(
        sed -n 's/^USBD_QEMU:FILEPATH=//p' build-$arch/CMakeCache.txt))"
done
