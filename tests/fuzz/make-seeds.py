"""Write seed inputs for fuzz_nbd: valid sessions the fuzzer mutates from."""
import os, struct, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
IHAVEOPT = 0x49484156454F5054
def opt(o, d=b""): return struct.pack(">QII", IHAVEOPT, o, len(d)) + d
def req(cmd, off=0, ln=0, flags=0, data=b"", cookie=1):
    return struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, off, ln) + data
go = opt(7, struct.pack(">I", 0) + struct.pack(">HH", 2, 3))
meta = opt(10, struct.pack(">I", 0) + struct.pack(">II", 1, 15) + b"base:allocation")
cmds = (req(1, 0, 8, 1, b"abcdefgh") + req(0, 0, 8) + req(3) + req(4, 4096, 4096) +
        req(6, 0, 8192, 2) + req(5, 0, 512) + req(7, 0, 65536, 8) + req(2))
seeds = {
    "session-simple": b"\0" + struct.pack(">I", 3) + go + cmds,
    "session-structured": b"\0" + struct.pack(">I", 3) + opt(8) + meta + go + cmds,
    "session-export-name": b"\0" + struct.pack(">I", 1) + opt(3) + opt(9, struct.pack(">II", 0, 0)) + opt(1, b"fuzz") + cmds,
    "session-info-abort": b"\0" + struct.pack(">I", 3) + opt(6, struct.pack(">IH", 4, 1) + b"fuzz" + b"\0\1") + opt(2),
    "kernel-requests": b"\1" + cmds,
}
for name, data in seeds.items():
    open(os.path.join(out, name), "wb").write(data)
