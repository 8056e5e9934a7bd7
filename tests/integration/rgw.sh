# rgw.sh - sourced after lib.sh: a throwaway Ceph RGW on 127.0.0.1 for this
# test (tests/rgw/start-rgw.sh), stopped when the test ends. Skips (77)
# without radosgw. After start_rgw: S3_ENDPOINT and AWS_* credentials.
RGW_SCRIPTS=$USBD_SRC/tests/rgw
command -v radosgw >/dev/null 2>&1 ||
    skip "radosgw is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common)"
need ceph-mon ceph-osd radosgw-admin monmaptool ceph-authtool uuidgen curl ss
[ "$(id -u)" = 0 ] || skip "a throwaway Ceph cluster needs root (tests/rgw/start-rgw.sh)"

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    fail "no free port found"
}

start_rgw() {
    # once per test: lib.sh may have started it already (USBD_TEST_STORE=rgw)
    [ -z "${RGW_STARTED:-}" ] || return 0
    RGW_STARTED=1
    export CEPH_DIR=$TMP/ceph RGW_PORT MON_PORT
    AFTER_CLEANUP+=("$RGW_SCRIPTS/stop-rgw.sh >/dev/null 2>&1")
    # A second try on new ports: the cluster is test equipment, and a port
    # taken between free_port and bind (other jobs share the machine) is not
    # what a test is about. The first failure's logs are shown either way.
    local try
    for try in 1 2; do
        RGW_PORT=$(free_port); MON_PORT=$(free_port)
        [ "$RGW_PORT" != "$MON_PORT" ] || MON_PORT=$((RGW_PORT + 1))
        "$RGW_SCRIPTS/start-rgw.sh" >$TMP/rgw.env 2>$TMP/start-rgw.log && break
        cat $TMP/start-rgw.log
        { tail -n 5 $CEPH_DIR/log/*.err $CEPH_DIR/log/*.log 2>/dev/null || true; } | tail -n 40
        "$RGW_SCRIPTS/stop-rgw.sh" >/dev/null 2>&1 || true
        [ $try = 2 ] && fail "start-rgw.sh failed twice"
        echo "start-rgw.sh failed (above); once more on other ports"
    done
    . $TMP/rgw.env
    export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
    ok "RGW at $S3_ENDPOINT"
}
stop_radosgw() { "$RGW_SCRIPTS/stop-rgw.sh" --radosgw-only 2>>$TMP/start-rgw.log || fail "stopping radosgw"; }
start_radosgw() { "$RGW_SCRIPTS/start-rgw.sh" --radosgw-only 2>>$TMP/start-rgw.log >/dev/null || fail "restarting radosgw"; }
