#!/bin/bash
# The Debian package (scripts/package.sh, dist/package.cmake) on this
# machine, as README's "On a board" installs it: apt install ./usbd-objstore_
# VERSION_ARCH.deb puts the binary, the hardened unit and the example config
# in place, each library the binary needs is a Depends by its Debian name,
# systemctl enable usbd-objstore@tv links the instance, and the installed
# unit's own ExecStart serves tv.conf + tv.env on a real RGW. dpkg -r then
# -P removes every file of the package and the instance's link, and nothing
# of the volume's state. The package is removed at the end whatever happens.
# Needs root and a package built for this machine (USBD_DEB, default
# build-deb/usbd-objstore_*_ARCH.deb); skipped when a usbd-objstore package
# is already installed here (it is not this test's to remove).
#
# Without systemd as PID 1 (a container, this project's CI), systemctl
# enable works on the file system but start does not: the unit's command
# line then runs as test-install-service.sh runs it, without the sandbox,
# which systemd-analyze verify and security check offline instead.
. "$(dirname "$0")/lib.sh"
need dpkg dpkg-deb apt-get systemctl objdump file nbdcopy
[ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
arch=$(dpkg --print-architecture)
DEB=${USBD_DEB:-$(ls "$USBD_SRC"/build-deb/usbd-objstore_*_$arch.deb 2>/dev/null | tail -1)}
[ -n "$DEB" ] && [ -f "$DEB" ] || skip "no package for $arch (scripts/package.sh builds it)"
if dpkg-query -W -f='${Status}' usbd-objstore 2>/dev/null | grep -q "ok installed"; then
    skip "a usbd-objstore package is already installed here: not touching it"
fi
. "$(dirname "$0")/rgw.sh"

# Contents and metadata, before anything is installed: of this machine's
# package and of the boards' (arm64, armhf) when scripts/package.sh made them
# beside it; their libraries are checked against the cross build's
# multiarch packages (scripts/build-cross.sh installs them).
check_deb() { # DEB ARCH
    local deb=$1 arch=$2 x=$TMP/x-$2 so pkg depends needed=
    dpkg-deb -f "$deb" Package Architecture Depends >$TMP/fields
    grep -qx "Package: usbd-objstore" $TMP/fields && grep -qx "Architecture: $arch" $TMP/fields ||
        { cat $TMP/fields; fail "$deb: package name or architecture"; }
    dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >$TMP/files
    diff $TMP/want $TMP/files >$TMP/files.diff || { cat $TMP/files.diff; fail "$deb: the package's files"; }
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/usbd-objstore/example.conf ||
        fail "$deb: example.conf is not a conffile"
    mkdir $x && dpkg-deb -x "$deb" $x
    local machine
    case $arch in amd64) machine=x86-64 ;; arm64) machine=aarch64 ;; armhf) machine="ARM, EABI5" ;; esac
    file $x/usr/sbin/usbd-objstore | grep -q "$machine" || fail "$deb: $(file $x/usr/sbin/usbd-objstore)"
    # Every library the binary links is provided by a package named in Depends.
    depends=$(sed -n 's/^Depends: //p' $TMP/fields)
    for so in $(objdump -p $x/usr/sbin/usbd-objstore | awk '$1 == "NEEDED" {print $2}'); do
        pkg=$(dpkg -S "*/$so" 2>/dev/null | sed -n "s/^\([^:]*\):$arch: .*/\1/p" | head -1)
        [ -n "$pkg" ] || fail "$deb: $so: no $arch package installed here provides it"
        grep -Eq "(^|, )$pkg( |,|$)" <<<"$depends" ||
            fail "$deb: $so comes from $pkg, which Depends does not name ($depends)"
        needed+=" $so:$pkg"
    done
    # ... and every program the unit runs, by a package in Depends (or this one).
    local prog
    for prog in $(sed -n 's/^Exec[A-Za-z]*=[-@+!]*\([^ ]*\).*/\1/p' $x/usr/lib/systemd/system/usbd-objstore@.service); do
        [ -e $x$prog ] && continue
        pkg=$(dpkg -S "$prog" 2>/dev/null | sed -n 's/^\([^:,]*\)[:,].*/\1/p' | head -1)
        [ -n "$pkg" ] || pkg=$(dpkg -S "$(readlink -f $prog)" 2>/dev/null | sed -n 's/^\([^:,]*\)[:,].*/\1/p' | head -1)
        [ -n "$pkg" ] || fail "$deb: the unit runs $prog, which no package installed here provides"
        grep -Eq "(^|, )$pkg( |,|$)" <<<"$depends" ||
            fail "$deb: the unit runs $prog from $pkg, which Depends does not name ($depends)"
        needed+=" $prog:$pkg"
    done
    ok "$(basename "$deb"): $(wc -l <$TMP/files) files, conffile example.conf; Depends: $depends (covers$needed)"
}
cat >$TMP/want <<EOF
/etc/usbd-objstore/example.conf
/usr/lib/systemd/system/usbd-objstore@.service
/usr/sbin/usbd-objstore
/usr/share/doc/usbd-objstore/README.md
/usr/share/doc/usbd-objstore/copyright
EOF
check_deb "$DEB" $arch
for other in arm64 armhf; do
    d=$(dirname "$DEB")/usbd-objstore_$(dpkg-deb -f "$DEB" Version)_$other.deb
    [ $other = $arch ] || [ ! -f "$d" ] || check_deb "$d" $other
done
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >$TMP/files

# Install; from here on, the package is removed at exit.
ETC=/etc/usbd-objstore
LINK=/etc/systemd/system/multi-user.target.wants/usbd-objstore@tv.service
cleanup_package() {
    dpkg -P usbd-objstore >/dev/null 2>&1
    rm -f $ETC/tv.conf $ETC/tv.env $LINK
    rmdir $ETC 2>/dev/null
}
AFTER_CLEANUP+=(cleanup_package)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$(readlink -f "$DEB")" \
    >$TMP/apt.log 2>&1 || { cat $TMP/apt.log; fail "apt-get install ./$(basename "$DEB")"; }
dpkg-query -W -f='${Status}' usbd-objstore | grep -q "ok installed" || fail "not installed"
/usr/sbin/usbd-objstore --version | grep -q "usbd-objstore" || fail "/usr/sbin/usbd-objstore --version"
UNIT=/usr/lib/systemd/system/usbd-objstore@.service
grep -q "^ExecStart=/usr/sbin/usbd-objstore -name=%i -config=$ETC/%i.conf" $UNIT || fail "ExecStart: $(grep ExecStart $UNIT)"
mkdir -p $TMP/units && cp $UNIT $TMP/units/usbd-objstore@tv.service
systemd-analyze verify $TMP/units/usbd-objstore@tv.service >$TMP/verify.out 2>&1 ||
    { cat $TMP/verify.out; fail "systemd-analyze verify of the installed unit"; }
score=$(systemd-analyze security --offline=true $TMP/units/usbd-objstore@tv.service 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -z "$score" ] || awk -v s=$score 'BEGIN { exit !(s <= 3.5) }' ||
    fail "the installed unit's sandbox: exposure $score (systemd-analyze security), above 3.5"
ok "installed: /usr/sbin/usbd-objstore, the unit (verify clean, exposure ${score:-not scored}), $ETC/example.conf"

# The README's configuration, and the instance enabled.
start_rgw
sed -e "s|^s3-endpoint = .*|s3-endpoint = $S3_ENDPOINT|" -e "s|^# s3-create-bucket = true|s3-create-bucket = true|" \
    $ETC/example.conf >$ETC/tv.conf
install -m 600 /dev/null $ETC/tv.env
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >$ETC/tv.env
systemctl enable usbd-objstore@tv >$TMP/enable.log 2>&1 || { cat $TMP/enable.log; fail "systemctl enable usbd-objstore@tv"; }
[ "$(readlink -f $LINK)" = "$(readlink -f $UNIT)" ] || fail "systemctl enable: $LINK -> $(readlink $LINK)"
ok "systemctl enable usbd-objstore@tv: $LINK"

# Started: the installed unit's ExecStart with %i=tv, its environment from
# tv.env; what a board adds on its own (-gadget needs /dev/nbdX and a UDC)
# is switched off, and the state goes to this test's directory.
exec_line=$(sed -n 's/^ExecStart=//p' $UNIT | sed "s|%i|tv|g")
LOG=$TMP/unit.log SOCK=$TMP/unit.sock URI="nbd+unix:///tv?socket=$TMP/unit.sock"
env -i PATH=/usr/bin:/bin $(cat $ETC/tv.env) $exec_line -gadget=false -nbd-device=none \
    -listen=unix:$SOCK -store-dir=$TMP/state 2>$LOG &
USBD_PID=$!
PIDS+=("$USBD_PID")
for _ in $(seq 300); do
    grep -q "ready:" $LOG && break
    kill -0 $USBD_PID 2>/dev/null || { cat $LOG; fail "the installed unit's command exited at start"; }
    sleep 0.1
done
grep -q "ready: export 'tv', 20 GiB, kind s3" $LOG || { cat $LOG; fail "not the used-by line"; }
head -c 4M /dev/urandom >$TMP/data
nbdcopy --flush $TMP/data "$URI"
stop_usbd
grep -q "everything is in the store" $LOG || { cat $LOG; fail "not flushed to RGW at stop"; }
ok "the installed unit's ExecStart: tv.conf + tv.env on RGW, written, flushed, stopped"

# Removed, then purged: nothing of the package is left, the volume's state is.
dpkg -r usbd-objstore >$TMP/remove.log 2>&1 || { cat $TMP/remove.log; fail "dpkg -r"; }
[ ! -e /usr/sbin/usbd-objstore ] && [ ! -e $UNIT ] || fail "dpkg -r left the binary or the unit"
[ -f $ETC/example.conf ] || fail "dpkg -r removed the conffile (only a purge should)"
dpkg -P usbd-objstore >$TMP/purge.log 2>&1 || { cat $TMP/purge.log; fail "dpkg -P"; }
[ ! -e $ETC/example.conf ] || fail "dpkg -P left $ETC/example.conf"
[ ! -L $LINK ] || fail "dpkg -P left the link $LINK"
[ -f $ETC/tv.conf ] && [ -f $TMP/state/tv.key ] || fail "a purge removed what the admin made (tv.conf, the key)"
dpkg-query -W usbd-objstore >/dev/null 2>&1 && fail "dpkg still knows usbd-objstore"
while read -r f; do [ ! -e "$f" ] || fail "$f is left after the purge"; done <$TMP/files
ok "dpkg -r, dpkg -P: every file and the instance's link gone; tv.conf and the volume's key kept"

# libusbd-dev beside it: the header and the static library, for the target's
# multiarch directory.
DEV=$(dirname "$DEB")/libusbd-dev_$(dpkg-deb -f "$DEB" Version)_$arch.deb
[ -f "$DEV" ] || fail "no $(basename "$DEV") beside $(basename "$DEB")"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
dpkg-deb -c "$DEV" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >$TMP/dev-files
printf '%s\n' /usr/include/usbd.h /usr/lib/$multiarch/libusbd.a /usr/share/doc/libusbd-dev/copyright |
    diff - $TMP/dev-files || fail "$(basename "$DEV"): its files"
ok "$(basename "$DEV"): usbd.h, libusbd.a in /usr/lib/$multiarch"
