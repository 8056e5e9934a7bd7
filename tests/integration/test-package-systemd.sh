#!/bin/bash
# The Debian package under a real systemd: a minimal Debian 12 (debootstrap,
# made once into build-deb/nspawn-bookworm and reused) boots in
# systemd-nspawn with systemd as its PID 1, its root an overlay that the
# test throws away. Inside it, exactly README's "On a board": dpkg -i the
# package, tv.conf from example.conf pointed at a real RGW on this machine
# (the container shares its network), tv.env with the credentials, and
# systemctl enable --now usbd-objstore@tv. Then the hardened unit is seen
# doing its work: the volume serves real clients from the outside, its
# process has the sandbox (capabilities, no new privileges, a read-only
# /usr, no /home), reload flushes (SIGHUP through ExecReload), stop exits 0
# with everything in the store, and dpkg -P leaves no unit behind.
# What a board adds (-gadget, /dev/nbdX) is off: a container has neither.
# Needs root, systemd-nspawn and debootstrap (scripts/deps.sh --test); the
# first run fetches Debian's packages for the root file system.
. "$(dirname "$0")/lib.sh"
need systemd-nspawn debootstrap nsenter nbdcopy nbdinfo
[ "$(id -u)" = 0 ] || skip "systemd-nspawn needs root"
arch=$(dpkg --print-architecture)
DEB=${USBD_DEB:-$(ls "$USBD_SRC"/build-deb/usbd-objstore_*_$arch.deb 2>/dev/null | tail -1)}
[ -n "$DEB" ] && [ -f "$DEB" ] || skip "no package for $arch (scripts/package.sh builds it)"
. "$(dirname "$0")/rgw.sh"

# The root file system: Debian 12 with systemd and what a Raspberry Pi OS
# Lite image has of the package's Depends; the package itself is not in it.
ROOT=${USBD_NSPAWN_ROOT:-$USBD_SRC/build-deb/nspawn-bookworm}
if [ ! -f $ROOT/.complete ]; then
    rm -rf $ROOT
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,procps,kmod,libzstd1,liblmdb0,libssl3,libcurl4,libexpat1 \
        bookworm $ROOT http://deb.debian.org/debian >$TMP/debootstrap.log 2>&1 ||
        { tail -5 $TMP/debootstrap.log; rm -rf $ROOT; skip "debootstrap could not make a Debian 12 root"; }
    echo usbd-board >$ROOT/etc/hostname
    touch $ROOT/.complete
fi

start_rgw
PORT=$((20000 + RANDOM % 20000))
mkdir -p $TMP/deb && cp "$DEB" $TMP/deb/
# --volatile=overlay: every change goes to a tmpfs above $ROOT, gone at exit.
systemd-nspawn -q --register=no --keep-unit -D $ROOT --volatile=overlay -b \
    --bind-ro=$TMP/deb:/mnt/deb >$TMP/boot.log 2>&1 </dev/null &
NSPAWN=$!
PIDS+=("$NSPAWN")
INIT=
for _ in $(seq 300); do
    INIT=$(pgrep -P $NSPAWN -x systemd | head -1) && [ -n "$INIT" ] && break
    kill -0 $NSPAWN 2>/dev/null || { cat $TMP/boot.log; fail "systemd-nspawn exited"; }
    sleep 0.1
done
[ -n "$INIT" ] || { cat $TMP/boot.log; fail "no systemd in the container"; }
in_board() { nsenter -t $INIT -a "$@"; }
# (systemctl answers once the manager's socket exists: until then, ask again)
state=
for _ in $(seq 600); do
    state=$(timeout 60 nsenter -t $INIT -a systemctl is-system-running --wait 2>/dev/null || true)
    case $state in running|degraded|maintenance|stopping) break ;; esac
    sleep 0.1
done
case $state in running|degraded) ;; *) cat $TMP/boot.log; fail "the container's systemd: '$state'" ;; esac
ok "a Debian 12 container booted with systemd as PID 1 ($state)"
stop_board() { kill -TERM $NSPAWN 2>/dev/null; for _ in $(seq 300); do kill -0 $NSPAWN 2>/dev/null || return 0; sleep 0.1; done; }
AFTER_CLEANUP=(stop_board "${AFTER_CLEANUP[@]}")

# README's "On a board", with the package.
in_board dpkg -i /mnt/deb/$(basename "$DEB") >$TMP/dpkg.log 2>&1 || { cat $TMP/dpkg.log; fail "dpkg -i in the container"; }
in_board sh -e -c "
sed -e 's|^s3-endpoint = .*|s3-endpoint = $S3_ENDPOINT|' -e 's|^# s3-create-bucket = true|s3-create-bucket = true|' \
    /etc/usbd-objstore/example.conf >/etc/usbd-objstore/tv.conf
printf 'gadget = false\nnbd-device = none\nlisten = tcp:127.0.0.1:$PORT\n' >>/etc/usbd-objstore/tv.conf
install -m 600 /dev/null /etc/usbd-objstore/tv.env
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' '$AWS_ACCESS_KEY_ID' '$AWS_SECRET_ACCESS_KEY' >/etc/usbd-objstore/tv.env
" || fail "writing tv.conf and tv.env in the container"
in_board systemctl enable --now usbd-objstore@tv >$TMP/enable.log 2>&1 ||
    { cat $TMP/enable.log; in_board journalctl -u usbd-objstore@tv --no-pager | tail -20; fail "systemctl enable --now usbd-objstore@tv"; }
journal() { in_board journalctl -u usbd-objstore@tv --no-pager -o cat; }
for _ in $(seq 300); do journal | grep -q "ready:" && break; sleep 0.1; done
journal | grep -q "ready: export 'tv', 20 GiB, kind s3" || { journal | tail -20; fail "the unit did not become ready"; }
ok "dpkg -i, tv.conf + tv.env, systemctl enable --now usbd-objstore@tv: $(journal | grep -o "ready: .*")"

# The sandbox, as the kernel sees the service's process.
MAIN=$(in_board systemctl show -p MainPID --value usbd-objstore@tv)
HOSTPID=
for p in $(pgrep -x usbd-objstore); do # the one in the container's pid namespace, as pid $MAIN there
    [ "$(readlink /proc/$p/ns/pid)" = "$(readlink /proc/$INIT/ns/pid)" ] &&
        [ "$(awk '/^NSpid:/ {print $NF}' /proc/$p/status)" = "$MAIN" ] && HOSTPID=$p
done
[ -n "$HOSTPID" ] || fail "the service's process (pid $MAIN in the container) is not to be found"
status=$(cat /proc/$HOSTPID/status)
capbnd=$(sed -n 's/^CapBnd:\s*//p' <<<"$status")
# At most CAP_SYS_MODULE (16) and CAP_SYS_ADMIN (21); systemd-nspawn itself
# keeps CAP_SYS_MODULE from every container, so here it is the second alone.
[ $((16#$capbnd & ~((1 << 16) | (1 << 21)))) = 0 ] && [ $((16#$capbnd & (1 << 21))) != 0 ] ||
    fail "CapBnd $capbnd: expected CAP_SYS_ADMIN and at most CAP_SYS_MODULE besides (0x210000)"
grep -q "^NoNewPrivs:\s*1" <<<"$status" || fail "NoNewPrivs is not set"
grep -q "^Seccomp:\s*2" <<<"$status" || fail "no seccomp filter"
nsenter -t $HOSTPID -m sh -c 'touch /usr/.usbd-probe' 2>/dev/null && fail "/usr is writable for the service"
nsenter -t $HOSTPID -m sh -c 'touch /var/lib/usbd-objstore/.probe && rm /var/lib/usbd-objstore/.probe' ||
    fail "/var/lib/usbd-objstore is not writable for the service"
in_board touch /root/.usbd-probe
nsenter -t $HOSTPID -m test -e /root/.usbd-probe && fail "/root (ProtectHome) is visible to the service"
ok "the service's process: CapBnd $capbnd (sys_admin; nspawn takes sys_module), NoNewPrivs, seccomp, /usr read-only, /root hidden, its state dir writable"

# Real clients, from outside the container.
URI=nbd://127.0.0.1:$PORT/tv
nbdinfo "$URI" | grep -q "export-size: 21474836480" || fail "nbdinfo $URI"
head -c 8M /dev/urandom >$TMP/data
nbdcopy --flush $TMP/data "$URI"
in_board systemctl reload usbd-objstore@tv || fail "systemctl reload"
for _ in $(seq 300); do journal | grep -q "committed: " && break; sleep 0.1; done
journal | grep -q "SIGHUP: flush done" && journal | grep -q "committed: " ||
    { journal | tail; fail "reload (ExecReload's SIGHUP) did not flush and commit an epoch"; }
# more after that epoch, for the stop to commit
nbdsh_run "
d = open('$TMP/data', 'rb').read()
assert h.pread(len(d), 0) == d, 'the data read back differs'
h.pwrite(d[:1 << 20], len(d))
h.flush()
" || fail "the data read back differs"
in_board systemctl stop usbd-objstore@tv
[ "$(in_board systemctl show -p ExecMainStatus --value usbd-objstore@tv)" = 0 ] || { journal | tail; fail "stop: exit status not 0"; }
journal | grep -q "everything is in the store" || { journal | tail; fail "not flushed to RGW at stop"; }
ok "8 MiB written from outside, reload committed epoch $(journal | grep -o "epoch [0-9]* committed" | head -1 | cut -d' ' -f2), read back; stop: exit 0, $(journal | grep -o "everything is in the store.*" | head -1)"

# Removed: no unit is left for systemd, no link for the instance.
in_board dpkg -P usbd-objstore >$TMP/purge.log 2>&1 || { cat $TMP/purge.log; fail "dpkg -P in the container"; }
in_board test ! -e /etc/systemd/system/multi-user.target.wants/usbd-objstore@tv.service || fail "the purge left the instance's link"
load=$(in_board systemctl show -p LoadState --value usbd-objstore@tv)
[ "$load" = not-found ] || fail "after the purge systemd still has the unit ($load): no daemon-reload?"
in_board test -f /var/lib/usbd-objstore/cache/tv.key || fail "the purge removed the volume's key"
ok "dpkg -P: the unit is gone for systemd (LoadState $load), the link too; /var/lib/usbd-objstore (the key) kept"
