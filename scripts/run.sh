#!/bin/bash
# run.sh [flags...]: install what is missing, build, and start usbd-objstore in
# the foreground. Without flags it runs the embedded default: a 1 GiB volume
# whose chunks are sealed into the local directory store
# /var/lib/usbd-objstore/store (cache in /var/lib/usbd-objstore/cache), served
# on /run/usbd-objstore/usbd.sock. Stop it with Ctrl-C: it flushes first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh release >/dev/null
[ $# -eq 0 ] && set -- -size=1GiB
exec build/usbd-objstore "$@"
