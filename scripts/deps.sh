#!/bin/bash
# deps.sh [--test]: install (Debian 12, as root) what usbd-objstore needs to
# build, and with --test what its test suite uses (the arm64 and armhf cross
# builds and qemu-user included: scripts/build-cross.sh --deps-only). Installs
# only what is missing, so a second run is quick.
set -euo pipefail
BUILD_PKGS=(build-essential cmake ninja-build pkg-config libzstd-dev libssl-dev liblmdb-dev
            libcurl4-openssl-dev libexpat1-dev)
# nbdfuse comes with libnbd-bin (which Provides it: naming it here made every
# run think something was missing and call apt-get).
TEST_PKGS=(clang libclang-rt-14-dev python3 python3-libnbd libnbd-bin nbdkit fuse3 fio
           qemu-utils nbd-client bc procps e2fsprogs curl
           qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils zstd
           ceph-mon ceph-osd radosgw ceph-common uuid-runtime iproute2 faketime s3backer
           syslinux syslinux-common mtools dosfstools systemd systemd-container debootstrap)
pkgs=("${BUILD_PKGS[@]}")
[ "${1:-}" = --test ] && pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
cross() { [ "${1:-}" != --test ] || "$(dirname "$0")/build-cross.sh" --deps-only arm64 armhf; }
[ ${#missing[@]} -eq 0 ] && { echo "deps: all ${#pkgs[@]} packages present"; cross "$@"; exit 0; }
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
cross "$@"
