#!/bin/bash
# The example device built on libusbd alone serves real clients.
. "$(dirname "$0")/lib.sh"
need nbdcopy
EX=${USBD_EXAMPLE:-$USBD_SRC/build/core/usbd-example-xor}
[ -x "$EX" ] || fail "example not built: $EX"
"$EX" unix:$TMP/xor.sock 2>$TMP/xor.log &
P=$!; PIDS+=($P)
for _ in $(seq 100); do [ -S $TMP/xor.sock ] && break; sleep 0.05; done
head -c 16M /dev/urandom > $TMP/in
nbdcopy $TMP/in "nbd+unix:///?socket=$TMP/xor.sock"
nbdcopy "nbd+unix:///?socket=$TMP/xor.sock" $TMP/out
cmp -n $((16 << 20)) $TMP/in $TMP/out || fail "xor device round trip"
kill -TERM $P; wait $P || fail "example exit status $?"
ok "library example"
