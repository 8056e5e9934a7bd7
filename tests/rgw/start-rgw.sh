#!/bin/bash
# start-rgw.sh - throwaway single-node Ceph 16.2 (1 mon, 1 OSD, 1 radosgw/beast),
# no mgr, cephx off, every daemon bound to 127.0.0.1 only. Run as root.
# Everything (conf, data, logs, pid files, sockets) lives under $CEPH_DIR.
# Needs Debian's ceph-mon ceph-osd radosgw ceph-common (and curl, uuid-runtime,
# iproute2). The project's test fixture; tests/integration/test-s3-*.sh use it.
#
#   start-rgw.sh                 a new cluster in an empty $CEPH_DIR
#   start-rgw.sh --radosgw-only  start the gateway again in a cluster whose
#                                mon and OSD still run (after
#                                stop-rgw.sh --radosgw-only): same data, same
#                                port, same keys
# Without a mgr, 'ceph df', 'ceph osd df', 'ceph pg stat' hang (they are mgr
# commands); 'ceph -s', 'ceph osd dump', 'radosgw-admin' work.
#
# Env (all optional):
#   CEPH_DIR     cluster dir (default /tmp/usbd-rgw); must not exist or be empty
#   RGW_PORT     S3 port (default 7480)
#   MON_PORT     mon msgr-v2 port (default 3300)
#   S3_ACCESS_KEY / S3_SECRET_KEY  (defaults below)
#   OSD_BACKEND  memstore (default; data in RAM, ~2x RSS per byte stored)
#                or bluestore (data in a sparse file $CEPH_DIR/osd/0.block, bounded RAM)
#   MEMSTORE_BYTES  memstore capacity (default 4 GiB; RAM is only used for data stored)
#   BLUESTORE_BYTES sparse block file size for bluestore (default 20 GiB)
# Prints shell-style KEY=VALUE lines on stdout at the end; progress goes to stderr.
set -euo pipefail

CEPH_DIR=${CEPH_DIR:-/tmp/usbd-rgw}
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-3300}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-TESTACCESSKEY0000001}
S3_SECRET_KEY=${S3_SECRET_KEY:-TestSecretKey0000000000000000000000000001}
OSD_BACKEND=${OSD_BACKEND:-memstore}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-4294967296}
BLUESTORE_BYTES=${BLUESTORE_BYTES:-21474836480}

T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[start-rgw %3d.%03ds] %s\n' $((ms/1000)) $((ms%1000)) "$*" >&2; }
die() { log "ERROR: $*"; [ -n "${CONF:-}" ] && on_err; exit 1; }

# wait_s3 ENDPOINT: until an anonymous and then a signed request answer 200.
wait_s3() {
  local endpoint=$1 code=
  for i in $(seq 1 240); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/" || true)
    [ "$code" = 200 ] && break
    sleep 0.25
    [ "$i" = 240 ] && die "S3 endpoint did not answer (last http code $code)"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "$endpoint/")
  [ "$code" = 200 ] || die "signed ListBuckets returned $code"
  log "S3 answering at $endpoint"
}

if [ "${1:-}" = --radosgw-only ]; then
  [ "$(id -u)" = 0 ] || die "must run as root"
  CEPH_DIR=$(cd "$CEPH_DIR" && pwd)
  [ -f "$CEPH_DIR/ceph.conf" ] || die "$CEPH_DIR/ceph.conf missing: no cluster to restart the gateway in"
  RGW_PORT=$(sed -n 's/^rgw_frontends = beast endpoint=127.0.0.1:\([0-9]*\)$/\1/p' "$CEPH_DIR/ceph.conf")
  [ -n "$RGW_PORT" ] || die "no gateway port in $CEPH_DIR/ceph.conf"
  if ss -Htln "sport = :$RGW_PORT" | grep -q .; then die "port $RGW_PORT already in use"; fi
  radosgw -c "$CEPH_DIR/ceph.conf" -n client.rgw.a 2>>"$CEPH_DIR/log/daemon-start.err" \
    || die "radosgw failed to start (see $CEPH_DIR/log/client.rgw.a.log)"
  log "radosgw started again"
  wait_s3 "http://127.0.0.1:$RGW_PORT"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root"
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool uuidgen curl; do
  command -v "$b" >/dev/null || die "missing $b"
done
if [ -e "$CEPH_DIR" ] && [ -n "$(ls -A "$CEPH_DIR" 2>/dev/null)" ]; then
  die "$CEPH_DIR exists and is not empty (run stop-rgw.sh first)"
fi
# refuse if ports are already taken on loopback
for p in "$RGW_PORT" "$MON_PORT"; do
  if ss -Htln "sport = :$p" | grep -q .; then die "port $p already in use"; fi
done

case "$OSD_BACKEND" in memstore|bluestore) ;; *) die "OSD_BACKEND must be memstore or bluestore";; esac
mkdir -p "$CEPH_DIR"/{mon/a,osd/0,rgw/a,run,log,crash,tmp}
CEPH_DIR=$(cd "$CEPH_DIR" && pwd)
# on any failure: stop whatever was started, keep the dir for the logs
on_err() { log "FAILED - stopping daemons, logs kept in $CEPH_DIR/log (run stop-rgw.sh to remove)";
           CEPH_DIR=$CEPH_DIR KEEP_DIR=1 "$(dirname "$0")/stop-rgw.sh" || true; }
trap on_err ERR
CONF=$CEPH_DIR/ceph.conf
FSID=$(uuidgen)

cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
mon_initial_members = a
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
public_network = 127.0.0.0/8
ms_bind_ipv4 = true
ms_bind_ipv6 = false
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw hard-codes defaults auth_client_required=cephx and ms_mon_client_mode=secure;
# with auth none "secure" mode is impossible (mon connect fails with -13), so force crc.
ms_mon_client_mode = crc
client_mount_timeout = 30
keyring = $CEPH_DIR/keyring
run_dir = $CEPH_DIR/run
admin_socket = $CEPH_DIR/run/\$name.asok
pid_file = $CEPH_DIR/run/\$name.pid
log_file = $CEPH_DIR/log/\$name.log
crash_dir = $CEPH_DIR/crash
mon_cluster_log_file = $CEPH_DIR/log/cluster.log
log_to_stderr = false
err_to_stderr = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon]
mon_data = $CEPH_DIR/mon/\$id
# commit paxos proposals quickly (default 1 s); makes pool creation much faster
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_allow_pool_delete = true

[osd]
osd_data = $CEPH_DIR/osd/\$id
osd_objectstore = $OSD_BACKEND
memstore_device_bytes = $MEMSTORE_BYTES
bluestore_block_path = $CEPH_DIR/osd/0.block
bluestore_block_create = true
bluestore_block_size = $BLUESTORE_BYTES
osd_memory_target = 1073741824
bluestore_fsck_on_mount = false
bluestore_fsck_on_mkfs = false
osd_op_num_shards = 2
osd_op_num_threads_per_shard = 2

[client.rgw.a]
rgw_data = $CEPH_DIR/rgw/a
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_thread_pool_size = 64
rgw_enable_usage_log = false
# garbage-collect deleted/overwritten tail objects after 30 s instead of 2 h (memstore = RAM)
rgw_gc_obj_min_wait = 30
rgw_gc_processor_period = 30
# no lifecycle threads: they sleep 5 s between lock attempts and delay shutdown by 4-10 s
rgw_enable_lc_threads = false
EOF
log "conf written: $CONF (fsid $FSID)"

C=(-c "$CONF")

# --- mon ---
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$CEPH_DIR/tmp/monmap" >/dev/null
ceph-authtool --create-keyring "$CEPH_DIR/tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon "${C[@]}" -i a --mkfs --monmap "$CEPH_DIR/tmp/monmap" --keyring "$CEPH_DIR/tmp/mon.keyring"
ceph-mon "${C[@]}" -i a 2>>"$CEPH_DIR/log/daemon-start.err"
log "mon started"

# wait for quorum
for i in $(seq 1 120); do
  if ceph "${C[@]}" --connect-timeout 5 mon stat >/dev/null 2>&1; then break; fi
  sleep 0.5
  [ "$i" = 120 ] && die "mon did not answer"
done
log "mon answering"

# --- osd ($OSD_BACKEND) ---
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph "${C[@]}" osd new "$OSD_UUID")
[ "$OSD_ID" = 0 ] || die "unexpected osd id $OSD_ID"
ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>>"$CEPH_DIR/log/osd-mkfs.err" >/dev/null
ceph-osd "${C[@]}" -i 0 2>>"$CEPH_DIR/log/daemon-start.err"
log "osd started"
for i in $(seq 1 240); do
  if ceph "${C[@]}" osd dump 2>/dev/null | grep -q '^osd.0 up *in'; then break; fi
  sleep 0.5
  [ "$i" = 240 ] && die "osd did not come up"
done
log "osd up"

# --- radosgw ---
radosgw "${C[@]}" -n client.rgw.a 2>>"$CEPH_DIR/log/daemon-start.err" \
  || die "radosgw failed to start (see $CEPH_DIR/log/client.rgw.a.log)"
log "radosgw started"

# S3 user (radosgw-admin works once rgw has created its pools/zone; it can also create them itself)
for i in $(seq 1 120); do
  if radosgw-admin "${C[@]}" user create --uid=test --display-name="test user" \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" \
        >"$CEPH_DIR/tmp/user.json" 2>>"$CEPH_DIR/log/radosgw-admin.err"; then break; fi
  sleep 0.5
  [ "$i" = 120 ] && die "radosgw-admin user create failed (see $CEPH_DIR/log/radosgw-admin.err)"
done
log "user created"

ENDPOINT=http://127.0.0.1:$RGW_PORT
wait_s3 "$ENDPOINT"

trap - ERR
cat <<EOF
CEPH_DIR=$CEPH_DIR
CEPH_CONF=$CONF
S3_ENDPOINT=$ENDPOINT
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=us-east-1
EOF
