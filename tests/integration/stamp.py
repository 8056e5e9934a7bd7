#!/usr/bin/python3
"""stamp - an LSVD-style crash-consistency writer and checkers.

Every 4 KiB sector the writer puts on the device is a *stamp*:

    off size
      0    8  magic b"USBDSTMP"
      8    8  LBA (sector number) the sector was written to
     16    8  write sequence number (global over the whole journal)
     24    8  run id (random per writer run)
     32 2048  random filler (so chunks do not compress to nothing)
   2080 2012  zeros
   4092    4  CRC32 of bytes [0, 4092)

The writer issues writes one at a time (queue depth 1, so "a prefix of the
write stream" is well defined), random extents of 1..64 sectors, many of them
across chunk boundaries, with an NBD FLUSH every few writes. It appends to a
journal (fsync'd) *before* each write ("I"), after each acknowledged write
("A") and after each acknowledged FLUSH ("F"), so after a crash the checker
knows what was issued, what was acknowledged and what must be durable.

Journal records, one per line, append-only:
    R <run id> <device bytes>      a writer run starts
    I <seq> <lba> <sectors>        write seq is about to be sent
    A <seq>                        write seq was acknowledged
    F <seq>                        a FLUSH was acknowledged; writes <= seq precede it
    P <S>                          a checked recovery kept exactly writes <= S:
                                   later writes issued so far are gone for good
    K <seq> <lba>,<lba>...         ...except that this torn write survived on these sectors

The model (what the device should hold) is the journal's writes in order,
minus what P records discarded.

Checkers (both read the whole device):
  durability  every write acknowledged before the last acknowledged FLUSH is
              visible, unless a later journaled write covers it; every sector
              is zeros or a stamp the journal issued for that very LBA.
  prefix      there is an S such that every sector equals the latest write
              with seq <= S touching it (zeros if none). The one write that was
              in flight when the daemon died (issued, never acknowledged) may
              be torn: present on some of its sectors only.

Run with Debian's /usr/bin/python3 (it has libnbd's `nbd` module).
Usage:
  stamp.py write URI JOURNAL [--seconds T] [--writes N] [--flush-every N]
                             [--chunk BYTES] [--seed N]
  stamp.py check URI|FILE JOURNAL [--durability] [--prefix] [--record] [--label L]
  stamp.py selftest          prove the checkers catch broken images
Exit status: 0 ok, 1 check failed / a write failed, 2 usage or setup error,
3 only the prefix check failed (no lost flushed write, no bad sector).
"""
import argparse
import os
import random
import struct
import sys
import time
import zlib

SECTOR = 4096
MAGIC = b"USBDSTMP"
HDR = struct.Struct("<8sQQQ")
INF = float("inf")


# ------------------------------------------------------------------ stamps

def stamp(lba, seq, run):
    body = HDR.pack(MAGIC, lba, seq, run) + os.urandom(2048)
    body += bytes(SECTOR - 4 - len(body))
    return body + struct.pack("<I", zlib.crc32(body))


ZERO = bytes(SECTOR)


def parse_sector(b):
    """('zero', None) | ('stamp', (lba, seq, run)) | ('garbage', why)"""
    if b == ZERO:
        return "zero", None
    magic, lba, seq, run = HDR.unpack_from(b)
    if magic != MAGIC:
        return "garbage", "no stamp magic (first bytes %s)" % b[:16].hex()
    if struct.unpack_from("<I", b, SECTOR - 4)[0] != zlib.crc32(b[:SECTOR - 4]):
        return "garbage", "stamp lba=%d seq=%d with a bad CRC" % (lba, seq)
    return "stamp", (lba, seq, run)


# ----------------------------------------------------------------- journal

class Journal:
    """The journal, replayed into a model of the device."""

    def __init__(self, path):
        self.issued = {}    # seq -> (lba, n, run): every write ever issued
        self.acked = set()
        self.flush = 0      # highest seq covered by an acknowledged FLUSH
        self.live = {}      # seq -> set of sectors (or None = all): the model
        self.discarded = {} # seq -> the P record's S that discarded it
        self.size = None
        self.runs = 0
        self.last = 0       # highest seq ever issued
        run = None
        if not os.path.exists(path):
            return
        with open(path) as f:
            for ln, line in enumerate(f, 1):
                w = line.split()
                if not w or (not line.endswith("\n")):
                    continue  # a torn last line: the writer died mid-append
                t = w[0]
                if t == "R":
                    run, self.size = int(w[1]), int(w[2])
                    self.runs += 1
                elif t == "I":
                    seq = int(w[1])
                    self.issued[seq] = (int(w[2]), int(w[3]), run)
                    self.live[seq] = None
                elif t == "A":
                    self.acked.add(int(w[1]))
                elif t == "F":
                    self.flush = max(self.flush, int(w[1]))
                elif t == "P":
                    s = int(w[1])
                    for seq in [q for q in self.live if q > s]:
                        del self.live[seq]
                        self.discarded[seq] = s
                elif t == "K":
                    seq = int(w[1])
                    self.live[seq] = set(int(x) for x in w[2].split(","))
                    self.discarded.pop(seq, None)
                else:
                    raise SystemExit("journal %s:%d: bad record %r" % (path, ln, line))
        self.last = max(self.issued, default=0)

    def per_sector(self, nsect):
        """sector -> ascending list of live seqs that wrote it."""
        m = {}
        for seq in sorted(self.live):
            lba, n, _ = self.issued[seq]
            keep = self.live[seq]
            for s in range(lba, min(lba + n, nsect)):
                if keep is None or s in keep:
                    m.setdefault(s, []).append(seq)
        return m

    def inflight(self):
        """The write that was in flight when the writer stopped (issued, not
        acknowledged, the last one issued and still live), or None."""
        q = self.last
        if q and q not in self.acked and q in self.live and self.live[q] is None:
            return q
        return None


class JournalWriter:
    def __init__(self, path, sync=True):
        self.f = open(path, "a")
        self.sync = sync

    def put(self, *words):
        self.f.write(" ".join(str(w) for w in words) + "\n")
        self.f.flush()
        if self.sync:
            os.fsync(self.f.fileno())


# ------------------------------------------------------------------ writer

def connect(uri):
    import nbd
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def cmd_write(a):
    import nbd
    j = Journal(a.journal)
    rng = random.Random(a.seed)
    h = connect(a.uri)
    size = h.get_size()
    nsect = size // SECTOR
    if j.size is not None and j.size != size:
        raise SystemExit("device has %d bytes, the journal %d" % (size, j.size))
    cs = max(1, a.chunk // SECTOR)
    run = rng.getrandbits(63) or 1
    jw = JournalWriter(a.journal, sync=not a.no_fsync)
    jw.put("R", run, size)
    seq = j.last
    n_w = n_f = 0
    last_flush = j.flush
    next_flush = rng.randint(1, 2 * a.flush_every)
    end = time.monotonic() + a.seconds if a.seconds else INF
    why = "done"
    try:
        while time.monotonic() < end and (not a.writes or n_w < a.writes):
            n = rng.randint(1, a.max_sectors)
            if rng.random() < 0.4 and n > 1:
                # straddle a chunk boundary on purpose
                b = rng.randrange(cs, nsect, cs) if nsect > cs else 0
                lba = max(0, min(b - rng.randint(1, n - 1), nsect - n))
            else:
                lba = rng.randint(0, nsect - n)
            seq += 1
            buf = b"".join(stamp(lba + i, seq, run) for i in range(n))
            jw.put("I", seq, lba, n)
            h.pwrite(buf, lba * SECTOR)
            jw.put("A", seq)
            n_w += 1
            next_flush -= 1
            if next_flush == 0:
                h.flush()
                jw.put("F", seq)
                last_flush = seq
                n_f += 1
                next_flush = rng.randint(1, 2 * a.flush_every)
        h.flush()  # a clean end is a flushed end
        jw.put("F", seq)
        last_flush = seq
        h.shutdown()
    except nbd.Error as e:
        if h.aio_is_dead() or h.aio_is_closed():
            why = "disconnected (%s)" % e.string.splitlines()[0]
        else:
            print("writer: run %x: seq %d FAILED with an NBD error while connected: %s"
                  % (run, seq, e), file=sys.stderr)
            return 1
    print("writer: run %x: %d writes acknowledged (seq %d..%d issued), %d flushes, last flush covers seq %d; %s"
          % (run, n_w, j.last + 1, seq, n_f, last_flush, why))
    return 0


# ---------------------------------------------------------------- checkers

def read_device(src, nsect):
    """Yield (sector, 4 KiB) for the whole device: src is an NBD URI or a file."""
    step = 256
    if "://" in src:
        h = connect(src)
        if h.get_size() != nsect * SECTOR:
            raise SystemExit("device has %d bytes, the journal says %d"
                             % (h.get_size(), nsect * SECTOR))
        rd = lambda off, ln: h.pread(ln, off)
    else:
        f = open(src, "rb")
        rd = lambda off, ln: os.pread(f.fileno(), ln, off)
    for s in range(0, nsect, step):
        n = min(step, nsect - s)
        buf = rd(s * SECTOR, n * SECTOR)
        for i in range(n):
            yield s + i, buf[i * SECTOR:(i + 1) * SECTOR]


def describe(kind, v):
    if kind == "zero":
        return "zeros"
    if kind == "garbage":
        return "garbage: " + v
    return "seq %d" % v[1]


def ranges(xs):
    """[1,2,3,7] -> "1-3,7" """
    out, xs = [], sorted(xs)
    for x in xs:
        if out and x == out[-1][1] + 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ",".join("%d" % a if a == b else "%d-%d" % (a, b) for a, b in out)


def explain_write(j, q, seen, chunk):
    """One line on write q: where it went, whether it was acknowledged, and
    which of its sectors hold it now (seen: sector -> seq found, 0 = zeros)."""
    lba, n, _ = j.issued[q]
    cs = max(1, chunk // SECTOR)
    has = [s for s in range(lba, lba + n) if seen.get(s) == q]
    hasnt = [s for s in range(lba, lba + n) if seen.get(s) != q]
    flushes = "acknowledged" if q in j.acked else "NOT acknowledged"
    if q <= j.flush:
        flushes += ", flushed"
    line = "seq %d: LBA %d-%d (chunk %s), %s; present on LBA %s" % (
        q, lba, lba + n - 1, ranges({s // cs for s in range(lba, lba + n)}), flushes,
        ranges(has) or "none")
    if hasnt:
        line += "; absent on LBA %s (holding %s)" % (ranges(hasnt), ", ".join(
            sorted({"zeros" if seen.get(s) == 0 else "seq %s" % seen.get(s) for s in hasnt})))
    return line


def torn_fit(j, m, seen, q):
    """If the device holds every write before q and write q on some of its
    sectors only (a cut through the middle of write q), return that S = the
    last live write before q; else None."""
    S = max((p for p in j.live if p < q), default=0)
    for L, found in seen.items():
        seqs = m.get(L, [])
        exp = max((p for p in seqs if p <= S), default=0)
        if found != exp and not (found == q and q in seqs):
            return None
    return S


def check(j, src, want_dur, want_prefix, label, record_to=None, chunk=65536,
          allow_torn=False):
    if j.size is None:
        raise SystemExit("journal has no run")
    nsect = j.size // SECTOR
    m = j.per_sector(nsect)
    F = j.flush
    t = j.inflight()
    errs = []
    hard = []                   # errors other than "not a prefix"
    lo, hi = 0, j.last          # the prefix S lies in [lo, hi]
    lo_why = hi_why = "no constraint"
    torn_present = []           # sectors of the in-flight write that hold it
    durable_lost = set()        # flushed writes whose sectors are gone
    seen = {}                   # sector -> seq found (0: zeros)
    dur_runs = []               # [first, last, message, index in errs]
    lo_q = hi_q = None          # the writes behind the two bounds

    def bad(msg, prefix_only=False):
        errs.append(msg)
        if not prefix_only:
            hard.append(msg)

    for L, data in read_device(src, nsect):
        kind, v = parse_sector(data)
        seqs = m.get(L, [])
        if kind == "garbage":
            bad("LBA %d: %s (expected %s)" % (L, v, "seq %d" % seqs[-1] if seqs else "zeros"))
            continue
        if kind == "stamp":
            lba, q, run = v
            if q not in j.issued:
                bad("LBA %d: stamp of seq %d, which the journal never issued" % (L, q))
                continue
            ilba, n, irun = j.issued[q]
            if run != irun or not (ilba <= lba < ilba + n):
                bad("LBA %d: stamp seq %d lba %d run %x does not match the journal "
                    "(seq %d wrote lba %d+%d run %x)" % (L, q, lba, run, q, ilba, n, irun))
                continue
            if lba != L:
                bad("LBA %d: holds the sector written to LBA %d by seq %d (misdirected)"
                    % (L, lba, q))
                continue
            if q not in seqs:
                why = ("discarded by the recovery at S=%d" % j.discarded[q]
                       if q in j.discarded else "not in the model")
                bad("LBA %d: stamp of seq %d, a write %s" % (L, q, why))
                continue
        found = 0 if kind == "zero" else v[1]
        seen[L] = found
        # (a) durability: the state as of the last FLUSH, or any later write
        if want_dur:
            before = [q for q in seqs if q <= F]
            exp = before[-1] if before else 0
            later = [q for q in seqs if q > F]
            if found != exp and found not in later:
                what = "expected %s (acknowledged before the FLUSH at seq %d)%s, found %s" % (
                    "seq %d" % exp if exp else "zeros", F,
                    " or one of %d later writes" % len(later) if later else "",
                    describe(kind, v))
                # one line per run of sectors with the same story
                prev = dur_runs[-1] if dur_runs else None
                if prev and prev[1] == L - 1 and prev[2] == what:
                    prev[1] = L
                    errs[prev[3]] = "durability: LBA %d-%d: %s" % (prev[0], L, what)
                else:
                    dur_runs.append([L, L, what, len(errs)])
                    bad("durability: LBA %d: %s" % (L, what))
                if exp:
                    durable_lost.add(exp)
        # (b) prefix: the sector pins S to an interval
        if want_prefix:
            if found == 0:
                a, b = 0, (seqs[0] - 1 if seqs else INF)
            elif found == t:
                a, b = t - 1, INF   # torn in-flight write: allowed on any subset
                torn_present.append(L)
            else:
                i = seqs.index(found)
                a, b = found, (seqs[i + 1] - 1 if i + 1 < len(seqs) else INF)
            if a > lo:
                lo, lo_why, lo_q = a, "LBA %d holds %s" % (L, describe(kind, v)), found
            if b < hi:
                hi_q = b + 1
                hi, hi_why = b, "LBA %d holds %s, %s by seq %d" % (
                    L, describe(kind, v), "first written" if found == 0 else "overwritten",
                    b + 1)
    out = []
    torn_S = torn_q = None
    if want_prefix and lo > hi and len(seen) == nsect:
        for q in sorted({lo_q, hi_q} - {None, 0}):
            torn_S = torn_fit(j, m, seen, q)
            if torn_S is not None:
                torn_q = q
                break
    if want_prefix and lo > hi and not (torn_q and allow_torn):
        bad("prefix: no prefix of the write stream matches: %s (so S >= %d) but %s "
            "(so S <= %d)" % (lo_why, lo, hi_why, hi), True)
        for q in sorted({lo_q, hi_q} - {None, 0}):
            bad("prefix:   " + explain_write(j, q, seen, chunk), True)
        if j.last:
            bad("prefix:   the journal: %d writes issued, the last (seq %d) %s; last FLUSH "
                "acknowledged after seq %d" % (len(j.issued), j.last, "acknowledged"
                if j.last in j.acked else "in flight", j.flush), True)
        if torn_q:
            bad("prefix:   the device holds exactly the writes up to seq %d plus seq %d on "
                "some of its sectors: a crash or an epoch cut through the middle of write %d"
                % (torn_S, torn_q, torn_q), True)
        S = hi  # for the record below: every write <= hi is intact
    elif want_prefix:
        torn = ""
        if lo > hi:  # torn_q and allow_torn
            S = torn_S
            torn = ", seq %d torn (allowed by --allow-torn): %s" % (
                torn_q, explain_write(j, torn_q, seen, chunk))
        else:
            # the highest live write inside [lo, hi] (discarded seqs name no state)
            S = max((q for q in j.live if lo <= q <= hi), default=lo)
            if t and torn_present and S < t:
                torn = ", in-flight seq %d torn (%d of %d sectors present)" % (
                    t, len(torn_present), j.issued[t][1])
        lost = sum(1 for q in j.live if q > S)
        lost_acked = sum(1 for q in j.live if q > S and q in j.acked)
        lost_flushed = sum(1 for q in j.live if S < q <= F)
        out.append("prefix S=%d of %d issued (%d writes lost, %d of them acknowledged; "
                   "last flush at %d, %d flushed writes lost)%s"
                   % (S, j.last, lost, lost_acked, F, lost_flushed, torn))
    # --record: append what the device now holds, so the next run continues
    # from it: every write <= S, plus the later writes found on some sectors
    # (a torn in-flight write; or, if the state is not a prefix, whatever
    # survived) restricted to those sectors. Impossible with unknown sectors.
    if record_to and want_prefix and len(seen) == nsect:
        later = {}
        for L, q in seen.items():
            if q > S:
                later.setdefault(q, []).append(L)
        jw = JournalWriter(record_to)
        jw.put("P", S)
        for q in sorted(later):
            jw.put("K", q, ",".join(map(str, sorted(later[q]))))
    if want_dur and not errs:
        out.append("durable: all writes up to the FLUSH at seq %d present" % F)
    if errs:
        for e in errs[:12]:
            print("%s: FAIL %s" % (label, e))
        if len(errs) > 12:
            print("%s: ... and %d more" % (label, len(errs) - 12))
        if durable_lost:
            print("%s: FAIL %d writes acknowledged and flushed are missing (e.g. seq %s)"
                  % (label, len(durable_lost), ",".join(map(str, sorted(durable_lost)[:8]))))
        return 1 if hard else 3
    print("%s: ok: %s" % (label, "; ".join(out)))
    return 0


def cmd_check(a):
    if not (a.durability or a.prefix):
        a.durability = a.prefix = True
    j = Journal(a.journal)
    return check(j, a.src, a.durability, a.prefix, a.label,
                 record_to=a.journal if a.record else None, chunk=a.chunk,
                 allow_torn=a.allow_torn)


# ---------------------------------------------------------------- selftest

def cmd_selftest(a):
    """Build images by hand and prove each checker accepts the good ones and
    rejects the broken ones (a checker that cannot fail proves nothing)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="stamp-selftest.")
    nsect, run = 64, 7
    jpath, img = os.path.join(d, "journal"), os.path.join(d, "img")
    # 1: 0-7; 2: 4-11 (flush after 2); 3: 0-3; 4: 20-23 (in flight at the "crash")
    writes = {1: (0, 8), 2: (4, 8), 3: (0, 4), 4: (20, 4)}
    with open(jpath, "w") as f:
        f.write("R %d %d\n" % (run, nsect * SECTOR))
        for q, (lba, n) in writes.items():
            f.write("I %d %d %d\n" % (q, lba, n))
            if q < 4:
                f.write("A %d\n" % q)
            if q == 2:
                f.write("F 2\n")

    def image(upto, tweak=None):
        sec = [ZERO] * nsect
        for q in sorted(writes):
            if q <= upto:
                lba, n = writes[q]
                for s in range(lba, lba + n):
                    sec[s] = stamp(s, q, run)
        if tweak:
            tweak(sec)
        with open(img, "wb") as f:
            f.write(b"".join(sec))

    def expect(name, rc_dur, rc_pre, upto, tweak=None):
        image(upto, tweak)
        j = Journal(jpath)
        sys.stdout = open(os.devnull, "w")
        try:
            got = (check(j, img, True, False, name), min(1, check(j, img, False, True, name)))
        finally:
            sys.stdout = sys.__stdout__
        if got != (rc_dur, rc_pre):
            print("selftest %s: durability/prefix returned %s, expected %s"
                  % (name, got, (rc_dur, rc_pre)))
            check(Journal(jpath), img, True, True, name)
            return 1
        return 0

    def put(s, q):
        return lambda sec: sec.__setitem__(s, stamp(s, q, run))

    def setz(s):
        return lambda sec: sec.__setitem__(s, ZERO)

    fails = 0
    nbroken = 10
    fails += expect("all present", 0, 0, 4)
    fails += expect("up to the flush", 0, 0, 2)
    fails += expect("in-flight write 4 lost", 0, 0, 3)
    fails += expect("in-flight write torn", 0, 0, 3, put(21, 4))
    fails += expect("flushed write 2 lost", 1, 0, 1)
    fails += expect("flushed sector zeroed", 1, 1, 4, setz(9))
    fails += expect("a hole in the prefix: 3 without 2", 1, 1, 1, lambda sec: [
        sec.__setitem__(s, stamp(s, 3, run)) for s in range(0, 4)])
    fails += expect("an acknowledged write torn", 0, 1, 3, put(2, 1))
    sys.stdout = open(os.devnull, "w")
    try:  # ... which --allow-torn accepts, unlike a hole in the prefix
        got = (check(Journal(jpath), img, False, True, "torn", allow_torn=True),
               expect("a hole, with --allow-torn", 1, 1, 1, lambda sec: [
                   sec.__setitem__(s, stamp(s, 3, run)) for s in range(0, 4)]))
    finally:
        sys.stdout = sys.__stdout__
    if got != (0, 0):
        print("selftest allow-torn: %s, expected (0, 0)" % (got,))
        fails += 1
    fails += expect("a bit flip", 1, 1, 4, lambda sec: sec.__setitem__(
        5, sec[5][:100] + bytes([sec[5][100] ^ 1]) + sec[5][101:]))
    fails += expect("a misdirected sector", 1, 1, 4, lambda sec: sec.__setitem__(
        30, sec[10]))
    fails += expect("a stamp of another run", 1, 1, 4, lambda sec: sec.__setitem__(
        10, stamp(10, 2, run + 1)))
    fails += expect("garbage", 1, 1, 4, lambda sec: sec.__setitem__(40, b"x" * SECTOR))
    # a recovery record: S=2 discards 3 and 4; then 3's stamp must not reappear
    with open(jpath, "a") as f:
        f.write("P 2\n")
    fails += expect("state after P 2", 0, 0, 2)
    fails += expect("a discarded write reappears", 1, 1, 3)
    # --record of a state that is not a prefix: the model follows the device
    image(2, setz(9))
    sys.stdout = open(os.devnull, "w")
    try:
        rec = check(Journal(jpath), img, True, True, "record", record_to=jpath)
    finally:
        sys.stdout = sys.__stdout__
    if rec != 1:
        print("selftest record: check returned %d, expected 1" % rec)
        fails += 1
    fails += expect("after recording a non-prefix state", 0, 0, 2, setz(9))
    for p in (jpath, img):
        os.unlink(p)
    os.rmdir(d)
    if fails:
        return 1
    print("ok: stamp selftest: the checkers accept good images and reject %d kinds of broken ones" % nbroken)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="stamping writer")
    w.add_argument("uri")
    w.add_argument("journal")
    w.add_argument("--seconds", type=float, default=0, help="stop after T seconds (0: no limit)")
    w.add_argument("--writes", type=int, default=0, help="stop after N writes (0: no limit)")
    w.add_argument("--flush-every", type=int, default=8, help="FLUSH every 1..2N writes")
    w.add_argument("--chunk", type=int, default=65536, help="chunk size, to straddle boundaries")
    w.add_argument("--max-sectors", type=int, default=64)
    w.add_argument("--seed", type=int, default=None)
    w.add_argument("--no-fsync", action="store_true", help="do not fsync the journal")
    c = sub.add_parser("check", help="check a device (NBD URI) or an image file")
    c.add_argument("src")
    c.add_argument("journal")
    c.add_argument("--durability", action="store_true")
    c.add_argument("--prefix", action="store_true")
    c.add_argument("--record", action="store_true",
                   help="append the recovered prefix (P/K records) to the journal")
    c.add_argument("--label", default="check")
    c.add_argument("--chunk", type=int, default=65536, help="chunk size, for diagnostics")
    c.add_argument("--allow-torn", action="store_true",
                   help="accept a state that is a prefix plus one write applied in part")
    sub.add_parser("selftest")
    a = p.parse_args()
    return {"write": cmd_write, "check": cmd_check, "selftest": cmd_selftest}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
