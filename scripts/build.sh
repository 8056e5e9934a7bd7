#!/bin/bash
# build.sh [release|asan|fuzz]...: configure and build into build/,
# build-asan/ (ASan+UBSan) and build-fuzz/ (clang, libFuzzer). Default: release.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 0 ] && set -- release
for kind in "$@"; do
    case $kind in
        release) dir=build;      env=();          args=(-DCMAKE_BUILD_TYPE=Release) ;;
        asan)    dir=build-asan; env=();          args=(-DCMAKE_BUILD_TYPE=Debug -DUSBD_SANITIZE=ON) ;;
        fuzz)    dir=build-fuzz; env=(CC=clang);  args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSBD_SANITIZE=ON -DUSBD_FUZZ=ON) ;;
        *) echo "build.sh: unknown build '$kind' (release, asan, fuzz)" >&2; exit 2 ;;
    esac
    env "${env[@]}" cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
    cmake --build "$dir"
    echo "build.sh: $kind build ready in $dir/"
done
