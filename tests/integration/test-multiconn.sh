#!/bin/bash
# CAN_MULTI_CONN honoured: writes on one connection, FLUSH on a second, read
# back on a third; also with the file device, where FLUSH is fdatasync.
. "$(dirname "$0")/lib.sh"
need nbdsh

multi() {
PATH=/usr/bin:$PATH nbdsh -c "
import os
hs = []
for i in range(3):
    x = nbd.NBD()
    x.connect_uri('$URI')
    assert x.can_multi_conn()
    hs.append(x)
a, b, c = hs
data = os.urandom(1 << 20)
a.pwrite(data, 0)
a.pwrite(b'fua' * 100, 2 << 20, nbd.CMD_FLAG_FUA)
b.flush()
assert c.pread(1 << 20, 0) == data
assert c.pread(300, 2 << 20) == b'fua' * 100
# concurrent writers on different connections, flushed by a third
for i in range(64):
    hs[i % 2].pwrite(bytes([i]) * 4096, (8 << 20) + i * 4096)
c.flush()
for i in range(64):
    assert hs[(i + 1) % 3].pread(4096, (8 << 20) + i * 4096) == bytes([i]) * 4096
for x in hs:
    x.shutdown()
print('ok: multi-conn')
"
}
start_usbd mc -kind=mem -size=64MiB
multi
stop_usbd
start_usbd mcf -kind=file -file=$TMP/disk.img -size=64MiB
multi
stop_usbd
ok "multi-conn"
