#!/bin/bash
# -kind=s3 against a real Ceph RGW on 127.0.0.1: the volume round trip, a
# restart, another machine opening it from the bucket alone; wrong key, wrong
# credentials and a missing bucket are clear errors at start; RGW stopped for
# 30 s in the middle of a flush while the client keeps writing loses nothing
# and the flush resumes by itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rgw.sh"
need nbdcopy
start_rgw
s3() { echo -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=vols -key=key:$TEST_KEY -name=tv "$@"; }
head -c 16M /dev/urandom > $TMP/rand

start_usbd a $(s3 -s3-create-bucket -store-dir=$TMP/st1 -size=64MiB -objsize=256KiB -flush-every=500ms)
nbdcopy --flush $TMP/rand "$URI"
stop_usbd
grep -q "everything is in the store" $LOG || fail "final flush to RGW"
start_usbd b $(s3 -store-dir=$TMP/st1)
nbdcopy "$URI" $TMP/back1
cmp -n $((16 << 20)) $TMP/back1 $TMP/rand || fail "restart"
stop_usbd
start_usbd c $(s3 -store-dir=$TMP/st2)
grep -q "local state rebuilt from the store alone" $LOG || fail "not rebuilt from the bucket"
nbdcopy "$URI" $TMP/back2
cmp -n $((16 << 20)) $TMP/back2 $TMP/rand || fail "read from the bucket alone"
stop_usbd
ok "round trip, restart, open from the bucket alone"

expect_fail() { # message flags...
    local want=$1 rc=0; shift
    "$USBD_BIN" "$@" -listen=unix:$TMP/x.sock -nbd-device=none 2>$TMP/e || rc=$?
    [ $rc = 1 ] && grep -q -- "$want" $TMP/e || { cat $TMP/e; fail "want exit 1 and '$want'"; }
}
expect_fail "wrong key for volume 'tv'" -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=vols -name=tv \
    -key=key:ff112233445566778899aabbccddeeff00112233445566778899aabbccddeeff -store-dir=$TMP/st3
AWS_SECRET_ACCESS_KEY=wrong expect_fail "SignatureDoesNotMatch" $(s3 -store-dir=$TMP/st4)
grep -q "wrong" $TMP/e && fail "the secret was printed"
expect_fail "bucket 'nosuch' does not exist" -kind=s3 -s3-endpoint=$S3_ENDPOINT -s3-bucket=nosuch \
    -key=key:$TEST_KEY -name=tv -size=16MiB -store-dir=$TMP/st5
# This machine's clock 30 minutes ahead of the store's: SigV4 refused, said so.
if command -v faketime >/dev/null; then
    rc=0
    # faketime preloads itself; an ASan build must be told to accept that
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 faketime -f '+30m' "$USBD_BIN" $(s3 -store-dir=$TMP/st7) -listen=unix:$TMP/x.sock -nbd-device=none \
        2>$TMP/e || rc=$?
    [ $rc = 1 ] && grep -q "RequestTimeTooSkewed.*clock" $TMP/e || { cat $TMP/e; fail "clock skew"; }
else
    echo "note: faketime not installed, clock skew not checked"
fi
ok "wrong key, wrong credentials, missing bucket, clock skew"

# RGW down for 30 s while the client writes: writes wait at -dirty-max.
# Every put also takes 200 ms (-store-faults adds latency, RGW stays real),
# so that at most a few MiB can reach RGW in the 0.5 s before it stops,
# whatever the machine's speed: the 8 MiB cannot all fit in the cache's
# 2x -dirty-max of room.
head -c 8M /dev/urandom > $TMP/more
start_usbd d $(s3 -store-dir=$TMP/st1 -flush-every=300ms -dirty-max=1MiB) -store-faults=put-latency=200ms
nbdcopy --flush $TMP/more "$URI" & COPY=$!; PIDS+=($COPY)
sleep 0.5
stop_radosgw
sleep 30
kill -0 $COPY 2>/dev/null || fail "the writer finished while RGW was down (no backpressure?)"
start_radosgw
wait $COPY || fail "the writer failed while RGW was down"
stop_usbd
grep -q "PUT failed" $LOG || fail "RGW outage not seen"
start_usbd e $(s3 -store-dir=$TMP/st6)
nbdcopy "$URI" $TMP/back3
cmp -n $((8 << 20)) $TMP/back3 $TMP/more || fail "data written during the outage"
cmp -n $((8 << 20)) -i $((8 << 20)) $TMP/back3 $TMP/rand || fail "older data after the outage"
stop_usbd
ok "RGW stopped for 30 s mid-flush: writers waited, nothing lost, the flush resumed"
