#!/bin/bash
# run.sh [flags...]: install what is missing, build, and start usbd-objstore in
# the foreground. Without flags it runs the embedded default: a 1 GiB disk on
# the default socket /run/usbd-objstore/usbd.sock. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release >/dev/null
[ $# -eq 0 ] && set -- -kind=mem -size=1GiB
exec build/usbd-objstore "$@"
