#!/bin/bash
# Option negotiation: LIST, INFO, GO, EXPORT_NAME, NO_ZEROES, ABORT, unknown
# options (ERR_UNSUP and negotiation goes on), meta contexts, wrong names.
. "$(dirname "$0")/lib.sh"
need nbdinfo python3

start_usbd opts -kind=mem -size=16MiB -name=tv -description="the tv disk"
[ "$(nbdinfo --list --json "nbd+unix:///?socket=$SOCK" | python3 -c 'import json,sys; print([e["export-name"] for e in json.load(sys.stdin)["exports"]])')" = "['tv']" ] \
    || fail "OPT_LIST does not list exactly 'tv'"
nbdinfo "nbd+unix:///tv?socket=$SOCK" >/dev/null || fail "export 'tv' by name"
nbdinfo "nbd+unix:///?socket=$SOCK" >/dev/null || fail "empty export name"
if nbdinfo "nbd+unix:///nope?socket=$SOCK" 2>$TMP/err; then fail "unknown export accepted"; fi
grep -q "option 7 refused: no export named 'nope' (this server has 'tv')" $LOG || fail "unknown export: no clear log line"

python3 - "$SOCK" <<'PY'
import struct, sys, nbdraw as n
S = sys.argv[1]

# Unknown options get ERR_UNSUP and the negotiation continues to GO.
c = n.Raw(S); c.greeting()
for opt in (99, 0, 12345678, n.OPT_STARTTLS):
    r = c.opt_replies(opt)
    assert r == [(n.REP_ERR_UNSUP, r[0][1])], (opt, r)
c.opt_replies(n.OPT_GO, c.info_data())
err, data = c.cmd(n.CMD_READ, 0, 512)
assert err == 0 and data == bytes(512)
c.close()

# OPT_INFO: export, name, description and block size when asked.
c = n.Raw(S); c.greeting()
r = c.opt_replies(n.OPT_INFO, c.info_data(b"tv", (n.INFO_NAME, n.INFO_DESCRIPTION, n.INFO_BLOCK_SIZE)))
infos = {struct.unpack(">H", d[:2])[0]: d[2:] for t, d in r if t == n.REP_INFO}
assert r[-1][0] == n.REP_ACK
assert struct.unpack(">Q", infos[n.INFO_EXPORT][:8])[0] == 16 << 20
assert infos[n.INFO_NAME] == b"tv" and infos[n.INFO_DESCRIPTION] == b"the tv disk"
assert struct.unpack(">III", infos[n.INFO_BLOCK_SIZE]) == (1, 4096, 32 << 20)
# INFO does not end negotiation: GO still works on the same connection.
c.opt_replies(n.OPT_GO, c.info_data(b"tv"))
assert c.cmd(n.CMD_FLUSH)[0] == 0
c.close()

# Malformed INFO/GO payloads: ERR_INVALID, and the connection lives on.
c = n.Raw(S); c.greeting()
for bad in (b"", b"\0\0\0\5ab", struct.pack(">I", 0) + struct.pack(">H", 3) + b"\0\0",
            struct.pack(">I", 0xFFFFFFFF) + b"\0\0"):
    r = c.opt_replies(n.OPT_GO, bad)
    assert r[-1][0] == n.REP_ERR_INVALID, (bad, r)
r = c.opt_replies(n.OPT_GO, c.info_data(b"other"))
assert r[-1][0] == n.REP_ERR_UNKNOWN and b"no export named 'other'" in r[-1][1], r
assert c.opt_replies(n.OPT_LIST, b"x")[-1][0] == n.REP_ERR_INVALID
assert c.opt_replies(n.OPT_STRUCTURED_REPLY, b"x")[-1][0] == n.REP_ERR_INVALID
c.opt_replies(n.OPT_GO, c.info_data())
c.close()

# Meta contexts: SET needs structured replies; LIST answers base:allocation.
c = n.Raw(S); c.greeting()
q = lambda name, *qs: struct.pack(">I", len(name)) + name + struct.pack(">I", len(qs)) + b"".join(struct.pack(">I", len(x)) + x for x in qs)
assert c.opt_replies(n.OPT_SET_META_CONTEXT, q(b"", b"base:allocation"))[-1][0] == n.REP_ERR_INVALID
r = c.opt_replies(n.OPT_LIST_META_CONTEXT, q(b""))
assert (n.REP_META_CONTEXT, struct.pack(">I", 1) + b"base:allocation") in r and r[-1][0] == n.REP_ACK, r
r = c.opt_replies(n.OPT_LIST_META_CONTEXT, q(b"tv", b"base:"))
assert r[0][0] == n.REP_META_CONTEXT, r
r = c.opt_replies(n.OPT_LIST_META_CONTEXT, q(b"", b"qemu:dirty-bitmap:x"))
assert r == [(n.REP_ACK, b"")], r
c.opt_replies(n.OPT_STRUCTURED_REPLY)
r = c.opt_replies(n.OPT_SET_META_CONTEXT, q(b"", b"nothing:here", b"base:allocation"))
assert r[0][0] == n.REP_META_CONTEXT and r[-1][0] == n.REP_ACK, r
assert c.opt_replies(n.OPT_SET_META_CONTEXT, q(b"", b"base:allocation") + b"junk")[-1][0] == n.REP_ERR_INVALID
c.close()

# OPT_EXPORT_NAME: 124 zero bytes unless NO_ZEROES; unknown name closes.
for cflags, tail in ((1, 124), (3, 0)):
    c = n.Raw(S); c.greeting(cflags); c.send_opt(n.OPT_EXPORT_NAME, b"tv")
    size, flags = struct.unpack(">QH", c.recv(10))
    assert size == 16 << 20 and c.recv(tail) == bytes(tail)
    assert c.cmd(n.CMD_READ, 0, 16)[0] == 0, "transmission after EXPORT_NAME"
    c.close()
c = n.Raw(S); c.greeting(); c.send_opt(n.OPT_EXPORT_NAME, b"nope")
assert c.closed_by_server()

# OPT_ABORT: ACK, then the server closes.
c = n.Raw(S); c.greeting()
assert c.opt_replies(n.OPT_ABORT) == [(n.REP_ACK, b"")]
assert c.closed_by_server()

# Clients that are not fixed-newstyle, or set unknown flags, are refused.
for cflags in (0, 2, 1 | 4):
    c = n.Raw(S); c.greeting(cflags)
    assert c.closed_by_server(), cflags

# Bad option magic and oversized option data: disconnect.
c = n.Raw(S); c.greeting(); c.send_opt(n.OPT_GO, b"", magic=0x1234)
assert c.closed_by_server()
c = n.Raw(S); c.greeting(); c.send_opt(n.OPT_GO, b"", length=1 << 30)
assert c.closed_by_server()
print("ok: option negotiation")
PY
kill -0 $USBD_PID || fail "daemon died"
grep -q "bad option magic" $LOG || fail "no log line for bad option magic"
stop_usbd
ok "options"
