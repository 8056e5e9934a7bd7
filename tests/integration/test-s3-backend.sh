#!/bin/bash
# test-s3-backend.sh - the s3 backend against a real Ceph RADOS Gateway.
# Starts a throwaway cluster on 127.0.0.1 (tests/rgw/start-rgw.sh, random free
# ports, its own CEPH_DIR under this test's /tmp dir), drives it with
# objstore-cli and stops it on exit, whatever happens.
# Covers: put/get/range/head/delete, a 20 MiB object, odd keys, listing with
# pagination over 2500 keys, multi-object delete, the store prefix,
# 16 concurrent puts, credentials (environment, file, profile, none),
# wrong credentials, a missing bucket, the gateway stopped (bounded retries,
# then a retriable error) and started again. Skips (77) without radosgw.
. "$(dirname "$0")/lib.sh"

RGW_SCRIPTS=$USBD_SRC/tests/rgw
CLI=${USBD_BUILD:-$USBD_SRC/build}/backends/objstore-cli
[ -x "$CLI" ] || skip "objstore-cli not built ($CLI)"
command -v radosgw >/dev/null 2>&1 ||
    skip "radosgw is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common)"
need ceph-mon ceph-osd radosgw-admin monmaptool ceph-authtool uuidgen curl ss cmp
[ "$(id -u)" = 0 ] || skip "a Ceph cluster needs root"

# --- the cluster --------------------------------------------------------------
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    fail "no free port found"
}
export CEPH_DIR=$TMP/ceph
RGW_PORT=$(free_port)
MON_PORT=$(free_port)
[ "$RGW_PORT" != "$MON_PORT" ] || MON_PORT=$((RGW_PORT + 1))

s3_cleanup() {
    local rc=$?
    if [ -d "$CEPH_DIR" ]; then
        if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
            for l in "$CEPH_DIR"/log/client.rgw.a.log "$TMP"/start-rgw.log; do
                [ -f "$l" ] && { echo "--- $l (last 20 lines)"; tail -20 "$l"; }
            done
        fi
        "$RGW_SCRIPTS/stop-rgw.sh" >/dev/null 2>&1 || echo "warning: stop-rgw.sh failed" >&2
    fi
    (exit $rc)
    cleanup
}
trap s3_cleanup EXIT

t0=$(date +%s%N)
env RGW_PORT="$RGW_PORT" MON_PORT="$MON_PORT" "$RGW_SCRIPTS/start-rgw.sh" \
    >"$TMP/rgw.env" 2>"$TMP/start-rgw.log" || { cat "$TMP/start-rgw.log"; fail "start-rgw.sh failed"; }
. "$TMP/rgw.env"
ok "RGW up at $S3_ENDPOINT in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE
BUCKET=usbd-test
ALL_ERR=$TMP/all-stderr.log

# cli ARGS...: objstore-cli on the bucket; stderr to $TMP/err (and kept).
# Sets RC (never fails the script by itself).
cli() {
    RC=0
    "$CLI" --store=s3 --s3-endpoint="$S3_ENDPOINT" --s3-bucket="$BUCKET" "$@" 2>"$TMP/err" || RC=$?
    cat "$TMP/err" >>"$ALL_ERR"
}
expect_rc() { # WANT WHAT
    [ "$RC" = "$1" ] || { cat "$TMP/err" >&2; fail "$2: exit status $RC, want $1"; }
}
expect_err() { # TEXT WHAT
    grep -qF -- "$1" "$TMP/err" || { cat "$TMP/err" >&2; fail "$2: stderr lacks: $1"; }
}

# --- bucket -------------------------------------------------------------------
cli --log-level=info --s3-create-bucket list
expect_rc 0 "create bucket"
expect_err "bucket '$BUCKET'" "create bucket"
cli --s3-create-bucket list
expect_rc 0 "create bucket again (already ours)"
ok "bucket created, and creating it again is fine"

# --- one object, 20 MiB -------------------------------------------------------
head -c $((20 << 20)) /dev/urandom >"$TMP/big"
cli put big/obj "$TMP/big"; expect_rc 0 "put 20 MiB"
cli get big/obj "$TMP/big.out"; expect_rc 0 "get 20 MiB"
cmp "$TMP/big" "$TMP/big.out" || fail "20 MiB object came back different"
cli head big/obj >"$TMP/out"; expect_rc 0 "head"
[ "$(cat "$TMP/out")" = $((20 << 20)) ] || fail "head says $(cat "$TMP/out")"
off=$((10 << 20)); len=300
cli range big/obj $off $len >"$TMP/out"; expect_rc 0 "range"
cmp "$TMP/out" <(tail -c +$((off + 1)) "$TMP/big" | head -c $len) || fail "range bytes differ"
cli range big/obj $(((20 << 20) - 10)) 100 >"$TMP/out"; expect_rc 0 "range over the end"
[ "$(stat -c %s "$TMP/out")" = 10 ] || fail "range over the end gave $(stat -c %s "$TMP/out") bytes"
cli range big/obj $((30 << 20)) 100 >"$TMP/out"; expect_rc 0 "range past the end"
[ ! -s "$TMP/out" ] || fail "range past the end returned bytes"
cli --max=1MiB get big/obj "$TMP/out"; expect_rc 27 "get over --max (EFBIG)"
expect_err "exceeds the limit" "get over --max"
ok "20 MiB object: put, get, head, ranges, EFBIG over the limit"

# --- conditional create (If-None-Match: *) --------------------------------------
echo first >"$TMP/c1"; echo second >"$TMP/c2"
cli create cond/rec "$TMP/c1"; expect_rc 0 "create a new key"
cli create cond/rec "$TMP/c2"; expect_rc 17 "create over an existing key (EEXIST)"
# the tool's own line only: the backend takes 412 as an answer, not a failure to log
[ "$(wc -l <"$TMP/err")" = 1 ] || { cat "$TMP/err"; fail "an EEXIST create logged more than the tool's own line"; }
cli get cond/rec "$TMP/out"; expect_rc 0 "get the created key"
cmp -s "$TMP/out" "$TMP/c1" || fail "a refused create changed the object"
for i in 1 2 3 4 5 6; do echo "writer $i" >"$TMP/w$i"; done
won=0
for i in 1 2 3 4 5 6; do
    ( rc=0; "$CLI" --store=s3 --s3-endpoint="$S3_ENDPOINT" --s3-bucket="$BUCKET" create cond/race "$TMP/w$i" 2>/dev/null || rc=$?
      echo $rc >"$TMP/rc$i" ) &
done
wait
for i in 1 2 3 4 5 6; do
    case $(cat "$TMP/rc$i") in 0) won=$((won + 1)); winner=$i ;; 17) ;; *) fail "racing create $i: exit $(cat "$TMP/rc$i")" ;; esac
done
[ $won = 1 ] || fail "$won of 6 racing creates of one key succeeded, want exactly 1"
cli get cond/race "$TMP/out"; expect_rc 0 "get the raced key"
cmp -s "$TMP/out" "$TMP/w$winner" || fail "the raced key does not hold the winner's bytes"
ok "create: 412 on an existing key is EEXIST and changes nothing; 1 of 6 racing creates wins"

# --- missing objects ----------------------------------------------------------
cli get no/such/key; expect_rc 2 "get missing"
cli head no/such/key; expect_rc 2 "head missing"
cli range no/such/key 0 10; expect_rc 2 "range missing"
cli delete no/such/key; expect_rc 0 "delete missing"
ok "missing keys: ENOENT for reads, success for delete"

# --- odd keys -------------------------------------------------------------------
keys=(
    "odd/with space" "odd/plus+sign" "odd/percent%20literal" "odd/tilde~x"
    "odd/ünïcødé/日本語" "odd/q?x#y" "odd/xml&lt;<>\"'" "odd/semi;colon=eq,comma"
    "odd/.dotfile" "odd/star*paren()[]{}" "odd/back\\slash" "odd/dollar\$caret^pipe|"
    "odd/@at!bang" "odd/-dash_under.dot"
)
for k in "${keys[@]}"; do
    printf '%s' "$k" >"$TMP/k"
    cli put "$k" "$TMP/k"; expect_rc 0 "put '$k'"
    cli get "$k" "$TMP/k.out"; expect_rc 0 "get '$k'"
    cmp -s "$TMP/k" "$TMP/k.out" || fail "'$k' came back different"
done
cli list odd/ >"$TMP/list"; expect_rc 0 "list odd/"
printf '%s\n' "${keys[@]}" | LC_ALL=C sort >"$TMP/want"
cut -d' ' -f2- "$TMP/list" >"$TMP/got"
diff "$TMP/want" "$TMP/got" || fail "listing of odd keys differs"
cli delete-many "${keys[@]}"; expect_rc 0 "delete-many odd keys"
cli list odd/ >"$TMP/list"; expect_rc 0 "list odd/ after delete"
[ ! -s "$TMP/list" ] || fail "odd keys left after delete-many: $(cat "$TMP/list")"
ok "${#keys[@]} odd keys (spaces, +, %, ~, unicode, XML specials): round trip, list, delete-many"

# --- pagination: 2500 keys, pages of 1000 ---------------------------------------
t0=$(date +%s%N)
cli --threads=16 fill pg/ 2500 100; expect_rc 0 "fill 2500"
fill_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cli --page-size=1000 list pg/ >"$TMP/list"; expect_rc 0 "list 2500"
expect_err "pages=3 keys=2500" "list 2500"
[ "$(wc -l <"$TMP/list")" = 2500 ] || fail "listed $(wc -l <"$TMP/list") lines"
cut -d' ' -f2 "$TMP/list" | LC_ALL=C sort -uc || fail "listing not sorted or not unique"
awk '$1 != 100 { exit 1 }' "$TMP/list" || fail "listed sizes wrong"
cli --page-size=1000 --one-page list pg/ >"$TMP/list"; expect_rc 0 "one page"
expect_err "next=pg/000999" "one page"
[ "$(wc -l <"$TMP/list")" = 1000 ] || fail "one page held $(wc -l <"$TMP/list") keys"
cli --after=pg/002400 list pg/ >"$TMP/list"; expect_rc 0 "list after"
[ "$(wc -l <"$TMP/list")" = 99 ] && [ "$(head -1 "$TMP/list")" = "100 pg/002401" ] ||
    fail "list after pg/002400: $(wc -l <"$TMP/list") keys, first $(head -1 "$TMP/list")"
cli --threads=16 verify pg/ 2500 100; expect_rc 0 "verify 2500"
t0=$(date +%s%N)
cli rm-prefix pg/; expect_rc 0 "rm-prefix 2500"
expect_err "deleted 2500 keys" "rm-prefix"
rm_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
cli list pg/ >"$TMP/list"; expect_rc 0 "list after rm-prefix"
expect_err "keys=0" "list after rm-prefix"
ok "2500 keys: put in ${fill_ms} ms (16 threads), 3 pages, start-after, multi-delete in ${rm_ms} ms"

# --- 16 concurrent puts through 8 handles ---------------------------------------
cli --threads=16 --s3-connections=8 fill par/ 16 1MiB; expect_rc 0 "16 concurrent puts"
cli --threads=16 --s3-connections=16 verify par/ 16 1MiB; expect_rc 0 "verify 16"
cli rm-prefix par/; expect_rc 0 "rm par/"
ok "16 concurrent 1 MiB puts (8 handles), 16 concurrent gets"

# --- the store prefix -------------------------------------------------------------
echo prefixed >"$TMP/p"
cli --s3-prefix=vol1/ put a/b "$TMP/p"; expect_rc 0 "put with prefix"
cli list vol1/ >"$TMP/list"; expect_rc 0 "list without prefix"
grep -qx "9 vol1/a/b" "$TMP/list" || fail "prefix not applied: $(cat "$TMP/list")"
cli --s3-prefix=vol1 list >"$TMP/list"; expect_rc 0 "list with prefix"
grep -qx "9 a/b" "$TMP/list" || fail "prefix not stripped: $(cat "$TMP/list")"
cli --s3-prefix=vol1 delete a/b; expect_rc 0 "delete with prefix"
ok "prefix prepended on put, stripped from listings"

# --- credentials ------------------------------------------------------------------
printf '[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n[test]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$TMP/creds"
(
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    cli --s3-credentials-file="$TMP/creds" --s3-profile=test list big/ >/dev/null
    expect_rc 0 "credentials file, profile test"
    AWS_PROFILE=test AWS_SHARED_CREDENTIALS_FILE=$TMP/creds cli list big/ >/dev/null
    expect_rc 0 "AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE"
    cli --s3-credentials-file="$TMP/creds" list big/
    expect_rc 13 "credentials file, default profile (wrong keys)"
    expect_err "InvalidAccessKeyId" "default profile"
    HOME=$TMP/nohome cli list big/
    expect_rc 2 "no credentials at all"
    expect_err "no credentials" "no credentials at all"
)
ok "credentials from a file, with profiles; none at all is a clear error"

AWS_SECRET_ACCESS_KEY=wrong-secret cli get big/obj "$TMP/out"
expect_rc 13 "wrong secret"
expect_err "SignatureDoesNotMatch" "wrong secret"
expect_err "bad credentials or clock skew: check AWS_ACCESS_KEY_ID/SECRET and the system clock" "wrong secret"
AWS_ACCESS_KEY_ID=NOSUCHKEY0000000000 cli --s3-no-check get big/obj "$TMP/out"
expect_rc 13 "wrong key id"
expect_err "InvalidAccessKeyId" "wrong key id"
ok "wrong credentials: EACCES, the S3 code and what to check, in one line"

# --- a missing bucket -------------------------------------------------------------
BUCKET=no-such-bucket-$$ cli head x
expect_rc 2 "open, missing bucket"
expect_err "bucket 'no-such-bucket-$$' does not exist (create it or use the create option)" "missing bucket"
BUCKET=no-such-bucket-$$ cli --s3-no-check get x
expect_rc 6 "get, missing bucket (ENXIO, never ENOENT)"
expect_err "does not exist (create it or use the create option)" "missing bucket on get"
ok "missing bucket: a clear message; object reads say ENXIO, not 'no such key'"

# --- the gateway stops, then comes back -----------------------------------------
"$RGW_SCRIPTS/stop-rgw.sh" --radosgw-only 2>>"$TMP/start-rgw.log" || fail "stopping radosgw failed"
t0=$(date +%s%N)
cli --s3-no-check --s3-attempts=4 --s3-retry-base-ms=100 --s3-retry-cap-ms=1000 get big/obj "$TMP/out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_rc 111 "get with the gateway down (ECONNREFUSED)"
expect_err "after 4 attempts" "gateway down"
expect_err "retriable" "gateway down"
# 3 back-offs of at most 0.1 + 0.2 + 0.4 s, connection refused at once.
[ "$ms" -lt 3000 ] || fail "4 attempts against a stopped gateway took $ms ms"
cli put big/new "$TMP/p"; expect_rc 111 "open with the gateway down"
ok "gateway down: ECONNREFUSED (retriable) after 4 attempts in $ms ms"

"$RGW_SCRIPTS/start-rgw.sh" --radosgw-only 2>>"$TMP/start-rgw.log" || fail "restarting radosgw failed"
cli get big/obj "$TMP/big.out"; expect_rc 0 "get after restart"
cmp "$TMP/big" "$TMP/big.out" || fail "20 MiB object differs after the restart"
cli delete big/obj; expect_rc 0 "delete after restart"
cli head big/obj; expect_rc 2 "head after delete"
ok "gateway back: works again, data intact"

# --- secrets never printed --------------------------------------------------------
cli --log-level=debug list "" >/dev/null; expect_rc 0 "debug listing"
cli --log-level=debug config >"$TMP/out"; expect_rc 0 "config"
if grep -qF -- "$S3_SECRET_KEY" "$ALL_ERR" "$TMP/out"; then fail "the secret key was printed"; fi
grep -q "<redacted>" "$ALL_ERR" || fail "no <redacted> in the logs"
ok "the secret key appears in no output"
