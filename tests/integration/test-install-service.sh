#!/bin/bash
# A board's set-up as `cmake --install` leaves it: the binary, the systemd
# unit usbd-objstore@.service and the example config. The unit passes
# systemd-analyze verify; its ExecStart line, run as systemd would for the
# instance "tv" (EnvironmentFile for the credentials, the example config with
# only the endpoint changed), is the used-by line: -kind=s3 -size=20GiB on a
# real RGW, from the config file and the environment alone. The same
# config, found by name in USBD_CONFIG_DIR without -config, works too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rgw.sh"
need cmake nbdcopy
BUILD=${USBD_BUILD:-$USBD_SRC/build}
P=$TMP/prefix
cmake --install "$BUILD" --prefix $P >/dev/null
UNIT=$P/lib/systemd/system/usbd-objstore@.service
CONF=$P/etc/usbd-objstore/example.conf
for f in $P/sbin/usbd-objstore $UNIT $CONF; do [ -f $f ] || fail "$f not installed"; done
ok "installed: sbin/usbd-objstore, lib/systemd/system/usbd-objstore@.service, etc/usbd-objstore/example.conf"

# The unit refers to the prefix the build was configured with.
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
grep -q "^ExecStart=$prefix/sbin/usbd-objstore -name=%i -config=" $UNIT || fail "ExecStart: $(grep ExecStart $UNIT)"
grep -q "^After=network-online.target" $UNIT || fail "not ordered after network-online.target"
grep -q "^Restart=on-failure" $UNIT || fail "no Restart=on-failure"
if command -v systemd-analyze >/dev/null; then
    # verify wants the instance and the binary where ExecStart says.
    mkdir -p $TMP/units
    sed "s|$prefix/|$P/|g" $UNIT > $TMP/units/usbd-objstore@tv.service
    systemd-analyze verify $TMP/units/usbd-objstore@tv.service >$TMP/verify.out 2>&1 ||
        { cat $TMP/verify.out; fail "systemd-analyze verify"; }
    ok "systemd-analyze verify: clean"
    # The sandbox (the unit's [Service] section): systemd's own score of
    # it, 0 (locked down) to 10 (none: 9.6 for this unit before it had one).
    # The daemon runs as root with CAP_SYS_ADMIN and CAP_SYS_MODULE, and sees
    # the network: 3.1 is about what that leaves.
    if systemd-analyze security --offline=true $TMP/units/usbd-objstore@tv.service \
        >$TMP/security.out 2>&1; then
        score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' $TMP/security.out)
        [ -n "$score" ] || { cat $TMP/security.out; fail "systemd-analyze security: no score"; }
        awk -v s=$score 'BEGIN { exit !(s <= 3.5) }' ||
            { grep '✗' $TMP/security.out; fail "systemd-analyze security: exposure $score, above 3.5"; }
        for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
            "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_MODULE" "DeviceAllow=block-nbd rw"; do
            grep -qx "$want" $UNIT || fail "the unit lacks $want"
        done
        ok "systemd-analyze security: exposure $score ($(sed -n 's/.*: [0-9.]* \([A-Z]*\).*/\1/p' $TMP/security.out | tail -1))"
    else
        ok "systemd-analyze security --offline is not in this systemd: score not checked"
    fi
fi

# /etc/usbd-objstore/tv.conf and tv.env as the README's "On a board" says.
start_rgw
ETC=$TMP/etc
mkdir -p $ETC
sed -e "s|^s3-endpoint = .*|s3-endpoint = $S3_ENDPOINT|" -e "s|^# s3-create-bucket = true|s3-create-bucket = true|" \
    $CONF > $ETC/tv.conf
grep -q "^kind = s3" $ETC/tv.conf && grep -q "^size = 20GiB" $ETC/tv.conf || fail "the example is not the used-by line"
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > $ETC/tv.env
chmod 600 $ETC/tv.env

# ExecStart with %i=tv and the paths of this test; what a board adds on its
# own (-gadget needs /dev/nbdX and a UDC) is switched off for this machine.
exec_line=$(sed -n 's/^ExecStart=//p' $UNIT | sed -e "s|%i|tv|g" -e "s|$prefix/sbin/|$P/sbin/|" \
    -e "s|-config=[^ ]*|-config=$ETC/tv.conf|")
run_unit() { # TAG STATE: the unit's command, its environment from tv.env only
    local tag=$1 state=$2
    SOCK=$TMP/$tag.sock LOG=$TMP/$tag.log URI="nbd+unix:///tv?socket=$TMP/$tag.sock"
    env -i PATH=/usr/bin:/bin $(cat $ETC/tv.env) $exec_line -gadget=false -nbd-device=none \
        -listen=unix:$SOCK -store-dir=$state 2>$LOG &
    USBD_PID=$!
    PIDS+=("$USBD_PID")
    for _ in $(seq 300); do
        grep -q "ready:" $LOG && return 0
        kill -0 $USBD_PID 2>/dev/null || { cat $LOG; fail "the unit's command exited at start"; }
        sleep 0.1
    done
    cat $LOG; fail "not ready"
}
run_unit a $TMP/state1
grep -q "ready: export 'tv', 20 GiB, kind s3" $LOG || { cat $LOG; fail "not the used-by line"; }
grep -q "config: $ETC/tv.conf" $LOG || fail "config file not named in the log"
grep -q "$AWS_SECRET_ACCESS_KEY" $LOG && fail "the secret is in the log"
head -c 8M /dev/urandom > $TMP/data
nbdcopy --flush $TMP/data "$URI"
stop_usbd
grep -q "everything is in the store" $LOG || fail "not flushed to RGW at stop"
ok "the unit's ExecStart: a 20 GiB volume on RGW from tv.conf + tv.env, written and flushed"

# Found by name, no -config (USBD_CONFIG_DIR stands for /etc/usbd-objstore),
# on an empty cache directory: from the bucket alone. The volume's key was
# generated in state1 at creation; the new board gets the copy kept.
mkdir $TMP/state2
cp $TMP/state1/tv.key $TMP/state2/
LOG=$TMP/b.log SOCK=$TMP/b.sock
env -i PATH=/usr/bin:/bin USBD_CONFIG_DIR=$ETC $(cat $ETC/tv.env) $P/sbin/usbd-objstore -name=tv \
    -gadget=false -nbd-device=none -listen=unix:$SOCK -store-dir=$TMP/state2 2>$LOG &
USBD_PID=$!
PIDS+=("$USBD_PID")
for _ in $(seq 300); do grep -q "ready:" $LOG && break; sleep 0.1; done
grep -q "ready: export 'tv', 20 GiB, kind s3" $LOG || { cat $LOG; fail "tv.conf not found by name"; }
URI="nbd+unix:///tv?socket=$SOCK"
nbdsh_run "
d = open('$TMP/data', 'rb').read()
assert h.pread(len(d), 0) == d, 'the data read from the bucket alone differs'
" || fail "data read from the bucket alone differs"
stop_usbd
ok "USBD_CONFIG_DIR/tv.conf found by -name=tv; the data read back from the bucket alone"
