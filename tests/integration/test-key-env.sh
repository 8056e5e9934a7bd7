#!/bin/bash
# -key=env:VAR: the variable is removed from the daemon's environment once
# the key is read. Checked where it shows: /proc/PID/environ (the block the
# kernel copied at exec, whose copy of the value the daemon wipes: unsetenv
# alone leaves it there), and the environment of a program the daemon
# starts (modprobe nbd, replaced by a script in a private mount namespace;
# that part is skipped where it cannot be set up).
. "$(dirname "$0")/lib.sh"
need python3

export USBD_TEST_VOLKEY=$TEST_KEY
start_usbd e -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -size=4MiB -key=env:USBD_TEST_VOLKEY
python3 - $USBD_PID "$TEST_KEY" <<'PY' || fail "the key is still in /proc/PID/environ"
import sys
env = open("/proc/%s/environ" % sys.argv[1], "rb").read()
assert sys.argv[2].encode() not in env, "key found in /proc/PID/environ"
PY
grep -q "process list" $LOG && fail "a process-list warning for env:VAR"
stop_usbd
ok "the key is not in /proc/PID/environ"

# The key was right: the volume opens again with it, from the environment.
start_usbd e2 -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -key=env:USBD_TEST_VOLKEY
stop_usbd
unset USBD_TEST_VOLKEY
rc=0
"$USBD_BIN" -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -nbd-device=none \
    -listen=unix:$TMP/x.sock -key=env:USBD_TEST_VOLKEY 2>$TMP/unset.log || rc=$?
[ $rc = 1 ] && grep -q "environment variable USBD_TEST_VOLKEY is not set" $TMP/unset.log ||
    { cat $TMP/unset.log; fail "an unset variable: status $rc, want 1 and a clear line"; }
ok "env:VAR reads the key; an unset variable is an error"

# modprobe, the one program the daemon starts, must not inherit the key.
modprobe_bin=$(readlink -f /sbin/modprobe 2>/dev/null || true)
if [ -e /sys/block/nbd0 ]; then
    echo "note: this machine has an nbd driver (no modprobe at start): the child check is skipped"
elif [ -z "$modprobe_bin" ] || ! unshare -m --propagation private true 2>/dev/null; then
    echo "note: no modprobe or no private mount namespace here: the child check is skipped"
else
    printf '#!/bin/sh\nenv > %s\nexit 1\n' $TMP/child.env > $TMP/fake-modprobe; chmod +x $TMP/fake-modprobe
    USBD_TEST_VOLKEY=$TEST_KEY unshare -m --propagation private bash -c \
        'mount --bind "$1" "$2" && shift 2 && exec "$@"' _ $TMP/fake-modprobe "$modprobe_bin" \
        "$USBD_BIN" -kind=local -store=$TMP/store -store-dir=$TMP/state -name=vol -nbd-device=auto \
        -listen=unix:$TMP/m.sock -key=env:USBD_TEST_VOLKEY 2>$TMP/m.log &
    P=$!; PIDS+=($P)
    for _ in $(seq 100); do grep -q "ready:" $TMP/m.log && break; sleep 0.05; done
    grep -q "ready:" $TMP/m.log || { cat $TMP/m.log; fail "daemon with a fake modprobe did not start"; }
    stop_usbd $P
    [ -s $TMP/child.env ] || fail "the fake modprobe did not run"
    grep -q "^PATH=" $TMP/child.env || fail "the fake modprobe saw no environment at all"
    grep -q "USBD_TEST_VOLKEY" $TMP/child.env && fail "modprobe inherited USBD_TEST_VOLKEY"
    ok "modprobe does not inherit the variable"
fi
ok "key from the environment"
