#!/bin/bash
# stop-rgw.sh - stop the daemons started by start-rgw.sh (by their pid files)
# and remove the cluster dir. Only kills a pid whose command line references
# this cluster's ceph.conf, so stale pid files can never hit a foreign process.
#   CEPH_DIR (default /tmp/usbd-rgw)   KEEP_DIR=1 keeps the dir (logs)
#   stop-rgw.sh --radosgw-only   stop the gateway alone (SIGTERM, no grace
#                                period for clients) and keep mon, OSD and
#                                the dir: start-rgw.sh --radosgw-only brings
#                                it back with the same data
set -uo pipefail
CEPH_DIR=${CEPH_DIR:-/tmp/usbd-rgw}
KEEP_DIR=${KEEP_DIR:-0}
DAEMONS=(client.rgw.a osd.0 mon.a)
if [ "${1:-}" = --radosgw-only ]; then
  DAEMONS=(client.rgw.a)
  KEEP_DIR=1
fi
[ -d "$CEPH_DIR" ] || { echo "stop-rgw: $CEPH_DIR does not exist, nothing to do" >&2; exit 0; }
CEPH_DIR=$(cd "$CEPH_DIR" && pwd)
CONF=$CEPH_DIR/ceph.conf

ours() {  # ours PID -> true if PID is alive and was started with our conf
  local pid=$1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$CONF"
}

# stop order: rgw first, then osd, mon last
pids=()
for name in "${DAEMONS[@]}"; do
  f=$CEPH_DIR/run/$name.pid
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null && echo "stop-rgw: SIGTERM $name (pid $pid)" >&2
    # wait up to 30 s for this daemon before moving to the next one
    for i in $(seq 1 300); do ours "$pid" || break; sleep 0.1; done
    if ours "$pid"; then
      kill -KILL "$pid" 2>/dev/null && echo "stop-rgw: SIGKILL $name (pid $pid)" >&2
      for i in $(seq 1 50); do ours "$pid" || break; sleep 0.1; done
    fi
    pids+=("$pid")
  else
    echo "stop-rgw: $name pid $pid not running (or not ours), skipping" >&2
  fi
done

left=0
for pid in "${pids[@]}"; do ours "$pid" && { echo "stop-rgw: pid $pid still alive!" >&2; left=1; }; done
[ "$left" = 0 ] || exit 1

if [ "$KEEP_DIR" = 1 ]; then
  echo "stop-rgw: stopped; kept $CEPH_DIR" >&2
else
  rm -rf -- "$CEPH_DIR"
  echo "stop-rgw: stopped; removed $CEPH_DIR" >&2
fi
