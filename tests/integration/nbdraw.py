"""nbdraw - a deliberately low-level NBD client for tests that send what no
well-behaved client sends: bad magic, wrong lengths, unknown commands,
truncated requests. Standard library only."""
import socket
import struct

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR_UNSUP, REP_ERR_INVALID, REP_ERR_UNKNOWN = 2**31 + 1, 2**31 + 3, 2**31 + 6
INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE = 0, 1, 2, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = range(8)
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_REQ_ONE, FLAG_FAST_ZERO = 1, 2, 4, 8, 16
EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN = 1, 5, 12, 22, 28, 75, 95, 108


class Closed(Exception):
    pass


class Raw:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.cookie = 0

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise Closed("server closed after %d of %d bytes" % (len(b), n))
            b += c
        return b

    def closed_by_server(self):
        """True if the server has closed its end (EOF or reset)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    # -------- handshake
    def greeting(self, client_flags=3):
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
        self.s.sendall(struct.pack(">I", client_flags))
        self.no_zeroes = bool(client_flags & 2)
        return hflags

    def send_opt(self, opt, data=b"", magic=IHAVEOPT, length=None):
        self.s.sendall(struct.pack(">QII", magic, opt, len(data) if length is None else length) + data)

    def read_rep(self):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv(20))
        assert magic == REP_MAGIC, "bad reply magic %x" % magic
        return opt, rtype, self.recv(length)

    def opt_replies(self, opt, data=b""):
        """Send an option; return the list of (type, data) up to ACK or an error."""
        self.send_opt(opt, data)
        out = []
        while True:
            o, t, d = self.read_rep()
            assert o == opt, "reply for option %d, expected %d" % (o, opt)
            out.append((t, d))
            if t == REP_ACK or t & 2**31:
                return out

    @staticmethod
    def info_data(name=b"", infos=()):
        return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
            struct.pack(">H", i) for i in infos)

    def go(self, name=b"", structured=False, meta=False, infos=(INFO_BLOCK_SIZE,)):
        """Negotiate up to transmission; return the transmission flags."""
        self.greeting()
        if structured:
            assert self.opt_replies(OPT_STRUCTURED_REPLY)[-1][0] == REP_ACK
        if meta:
            q = b"base:allocation"
            data = struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q
            assert self.opt_replies(OPT_SET_META_CONTEXT, data)[-1][0] == REP_ACK
        reps = self.opt_replies(OPT_GO, self.info_data(name, infos))
        assert reps[-1][0] == REP_ACK, "OPT_GO failed: %r" % (reps,)
        self.structured = structured
        for t, d in reps:
            if t == REP_INFO and struct.unpack(">H", d[:2])[0] == INFO_EXPORT:
                self.size, self.tflags = struct.unpack(">QH", d[2:])
        return self.tflags

    # -------- transmission
    def request(self, cmd, offset=0, length=0, flags=0, data=b"", magic=REQ_MAGIC):
        self.cookie += 1
        self.s.sendall(struct.pack(">IHHQQI", magic, flags, cmd, self.cookie, offset, length) + data)
        return self.cookie

    def reply(self, read_len=0):
        """Read one reply. Returns (cookie, error, payload). For structured
        replies, reads chunks up to the one with the DONE flag."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            err, cookie = struct.unpack(">IQ", self.recv(12))
            return cookie, err, self.recv(read_len) if err == 0 and read_len else b""
        assert magic == STRUCT_MAGIC, "bad reply magic %x" % magic
        payload, err = b"", 0
        while True:
            flags, rtype, cookie, length = struct.unpack(">HHQI", self.recv(16))
            body = self.recv(length)
            if rtype == 1:
                payload += body[8:]
            elif rtype == 5:
                payload += body
            elif rtype & 0x8000:
                err = struct.unpack(">I", body[:4])[0]
            if flags & 1:
                return cookie, err, payload
            assert self.recv(4) == struct.pack(">I", STRUCT_MAGIC)

    def cmd(self, cmd, offset=0, length=0, flags=0, data=b""):
        c = self.request(cmd, offset, length, flags, data)
        cookie, err, payload = self.reply(length if cmd == CMD_READ else 0)
        assert cookie == c, "cookie %d, expected %d" % (cookie, c)
        return err, payload

    def close(self):
        self.s.close()
