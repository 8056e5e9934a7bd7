#!/bin/bash
# libusbd as a user gets it: `cmake --install` puts one header and the
# library in a prefix; the example device compiles against them alone
# (not the source tree) and serves a real client.
. "$(dirname "$0")/lib.sh"
need cc cmake nbdcopy
BUILD=${USBD_BUILD:-$USBD_SRC/build}
cmake --install "$BUILD" --prefix $TMP/prefix >/dev/null
[ -f $TMP/prefix/include/usbd.h ] || fail "usbd.h not installed"
lib=$(find $TMP/prefix -name libusbd.a | head -1)
[ -n "$lib" ] || fail "libusbd.a not installed"
[ "$(find $TMP/prefix/include -name '*.h' | wc -l)" = 1 ] || fail "more than one header installed"
san=
grep -q "USBD_SANITIZE:BOOL=ON" "$BUILD/CMakeCache.txt" && san="-fsanitize=address,undefined"
cp "$USBD_SRC/core/examples/xor_device.c" $TMP/
cc -std=c17 -Wall -Wextra -Werror $san -I$TMP/prefix/include $TMP/xor_device.c -L$(dirname $lib) \
    -lusbd -lpthread -o $TMP/xor || fail "the example does not build against the installed library"
$TMP/xor unix:$TMP/x.sock 2>$TMP/x.log &
P=$!; PIDS+=($P)
for _ in $(seq 100); do [ -S $TMP/x.sock ] && break; sleep 0.05; done
head -c 4M /dev/urandom > $TMP/in
nbdcopy $TMP/in "nbd+unix:///?socket=$TMP/x.sock"
nbdcopy "nbd+unix:///?socket=$TMP/x.sock" $TMP/out
cmp -n $((4 << 20)) $TMP/in $TMP/out || fail "round trip through the installed example"
kill -TERM $P; wait $P || fail "example exit status $?"
ok "installed libusbd builds and serves"
