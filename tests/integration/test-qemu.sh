#!/bin/bash
# qemu-img and qemu-io against nbd+unix://: info, pattern writes and reads,
# convert in and out with compare, map (holes), and a qcow2 image inside.
. "$(dirname "$0")/lib.sh"
need qemu-img qemu-io

start_usbd q -kind=mem -size=128MiB
NBD="nbd+unix:///usbd?socket=$SOCK"
qemu-img info "$NBD" | grep -q "virtual size: 128 MiB" || fail "qemu-img info"
qemu-io -f raw -c "write -P 0xab 1M 3M" -c "write -P 0xcd -f 10M 64k" -c "flush" "$NBD" >/dev/null
qemu-io -f raw -c "read -P 0xab 1M 3M" -c "read -P 0xcd 10M 64k" -c "read -P 0 0 1M" "$NBD" \
    | grep -q "read 65536/65536" || fail "qemu-io pattern read back"
qemu-io -f raw -c "write -z 1M 1M" -c "read -P 0 1M 1M" -c "discard 2M 1M" -c "read -P 0 2M 1M" "$NBD" >/dev/null \
    || fail "qemu-io zero/discard"
qemu-img map --output=json -f raw "$NBD" > $TMP/map.json
grep -q '"data": false' $TMP/map.json || fail "qemu-img map sees no hole"
# convert out and back
head -c 32M /dev/urandom > $TMP/in.raw
qemu-img convert -n -f raw -O raw $TMP/in.raw "$NBD"
qemu-img convert -f raw -O raw "$NBD" $TMP/out.raw
qemu-img compare -f raw -F raw $TMP/in.raw "$TMP/out.raw" >/dev/null 2>&1 \
    || cmp -n $((32 << 20)) $TMP/in.raw $TMP/out.raw || fail "convert round trip"
# a qcow2 image on top of the NBD disk
qemu-img create -f qcow2 "$NBD" 100M >/dev/null
qemu-io -f qcow2 -c "write -P 0x5a 0 2M" "$NBD" >/dev/null
qemu-io -f qcow2 -c "read -P 0x5a 0 2M" "$NBD" | grep -q "read 2097152/2097152" || fail "qcow2 on nbd"
qemu-img check -f qcow2 "$NBD" >/dev/null || fail "qemu-img check"
stop_usbd
ok "qemu"
