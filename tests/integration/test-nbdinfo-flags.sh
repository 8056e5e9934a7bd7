#!/bin/bash
# nbdinfo sees exactly the flags and block sizes we mean to advertise, and the
# raw OPT_GO reply carries them bit by bit.
. "$(dirname "$0")/lib.sh"
need nbdinfo python3

start_usbd rw -kind=mem -size=64MiB -name=disk1 -description="test disk"
nbdinfo --json "$URI" > $TMP/info.json
python3 - $TMP/info.json <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
want = {"export-name": "disk1", "description": "test disk", "export-size": 64 << 20,
        "is_read_only": False, "is_rotational": False, "can_flush": True, "can_fua": True,
        "can_trim": True, "can_zero": True, "can_fast_zero": True, "can_cache": True,
        "can_multi_conn": True, "can_df": True, "block_size_minimum": 1,
        "block_size_preferred": 4096, "block_size_maximum": 32 << 20}
for k, v in want.items():
    assert e.get(k) == v, "%s: got %r, want %r" % (k, e.get(k), v)
assert "base:allocation" in e["contexts"], e["contexts"]
print("ok: nbdinfo --json matches")
PY

# The exact 16-bit transmission flags, with and without structured replies.
python3 - "$SOCK" <<'PY'
import sys, nbdraw as n
HAS, RO, FLUSH, FUA, ROT, TRIM, WZ, DF, MC, RESIZE, CACHE, FZ = [1 << i for i in range(12)]
base = HAS | FLUSH | FUA | TRIM | WZ | MC | CACHE | FZ
c = n.Raw(sys.argv[1]); f = c.go(b"disk1"); c.close()
assert f == base, "simple: flags 0x%04x, want 0x%04x" % (f, base)
c = n.Raw(sys.argv[1]); f = c.go(b"", structured=True); c.close()
assert f == base | DF, "structured: flags 0x%04x, want 0x%04x" % (f, base | DF)
print("ok: transmission flags 0x%04x / 0x%04x" % (base, base | DF))
PY
stop_usbd

start_usbd ro -kind=mem -size=64MiB -readonly
[ "$(nbdinfo --json "$URI" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["is_read_only"])')" = True ] \
    || fail "-readonly not advertised"
python3 - "$SOCK" <<'PY'
import sys, nbdraw as n
c = n.Raw(sys.argv[1]); f = c.go()
assert f & 2, "READ_ONLY bit missing: 0x%04x" % f
err, _ = c.cmd(n.CMD_WRITE, 0, 4, data=b"abcd")
assert err == n.EPERM, "write on read-only export: error %d, want EPERM" % err
c.close()
print("ok: read-only export advertises READ_ONLY and refuses writes with EPERM")
PY
stop_usbd
ok "flags"
