#!/bin/bash
# A hostile store (docs/design.md, invariant 4): with -kind=local (or -kind=s3 on
# RGW with USBD_TEST_STORE=rgw, the objects altered through objstore-cli
# export/import), a chunk object
# with a flipped byte (header, payload, MAC), two objects swapped, an older
# generation replayed, a truncated or a missing object is an I/O error for the
# range it holds, never data; the rest of the disk still reads right, the
# daemon keeps running and logs one line naming the chunk. A wrong key stops
# the daemon at start, before it writes anything; a missing key file is a
# clear error; a key file readable by others is a warning.
# USBD_TEST_CIPHER (default aes-256-ctr; ctest also runs chacha20-poly1305 as
# integration/test-tamper-chacha20-poly1305) is the volume's -cipher.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's python3: it has libnbd's module
[ -x $PY ] && $PY -c "import nbd" 2>/dev/null || skip "python3-libnbd is not installed"
# (help read whole first: with pipefail, grep -q could SIGPIPE the daemon)
HELP=$("$USBD_BIN" --help 2>&1 || true)
grep -q -- -store-dir <<<"$HELP" || skip "this build has no -kind=local"

HEX=$(printf '3c%.0s' $(seq 32)) OTHER=$(printf '3d%.0s' $(seq 32))
STORE=$TMP/store
CIPHER=${USBD_TEST_CIPHER:-aes-256-ctr}
case $CIPHER in aes-256-ctr) CIPHER_ID=1 ;; chacha20-poly1305) CIPHER_ID=2 ;;
                *) fail "USBD_TEST_CIPHER=$CIPHER: expected aes-256-ctr or chacha20-poly1305" ;; esac
VOL=(-name=vol -size=2MiB -objsize=64KiB -compress=zstd -cipher=$CIPHER -flush-every=10s)
N=32 # chunks of 64 KiB

# The content: chunk c holds data(c, 1), except chunk 3, rewritten as
# data(3, 2). Chunk 9 is text, to look for in the store.
cat >$TMP/data.py <<'PY'
import random
CH, N = 65536, 32
def data(c, v):
    if c == 9:
        return b"".join(b"PLAINTEXT-MARKER-%05d-v%d\n" % (i, v) for i in range(CH // 26)).ljust(CH, b".")
    return random.Random(c * 7 + v).randbytes(CH)
def expected(c):
    return data(c, 2 if c == 3 else 1)
PY
write_chunks() { # URI VERSION CHUNKS...
    $PY - "$@" <<'PY'
import sys, nbd, data
uri, v = sys.argv[1], int(sys.argv[2])
h = nbd.NBD(); h.connect_uri(uri)
for c in map(int, sys.argv[3:]):
    h.pwrite(data.data(c, v), c * data.CH)
h.flush(); h.shutdown()
PY
}
# verify URI BAD: every chunk reads as expected(c), except the chunks in BAD
# (comma-separated), each read of which must fail with EIO, alone or as part
# of a read that spans into it. Prints one line per problem.
verify() {
    PYTHONPATH=$TMP $PY - "$@" <<'PY'
import errno, sys, nbd, data
uri, bad = sys.argv[1], {int(x) for x in sys.argv[2].split(",") if x}
CH = data.CH
h = nbd.NBD(); h.connect_uri(uri)
problems = []
def expect(off, ln, must_fail):
    want = b"".join(data.expected(c) for c in range(off // CH, (off + ln - 1) // CH + 1))
    want = want[off % CH:off % CH + ln]
    try:
        got = h.pread(ln, off)
    except nbd.Error as e:
        if not must_fail or e.errnum != errno.EIO:
            problems.append("read [%#x, +%#x): %s" % (off, ln, e))
        return
    if must_fail:
        problems.append("read [%#x, +%#x) of a tampered chunk returned %s data instead of EIO"
                        % (off, ln, "its old (correct)" if got == want else "WRONG"))
    elif got != want:
        i = next(i for i in range(ln) if got[i] != want[i])
        problems.append("read [%#x, +%#x): WRONG data from offset %#x" % (off, ln, off + i))
for c in range(data.N):
    expect(c * CH, CH, c in bad)                 # the whole chunk
    expect(c * CH + 8192, 4096, c in bad)        # a piece of it
    if c > 0:                                    # a read that spans two chunks
        expect(c * CH - 4096, 8192, c in bad or c - 1 in bad)
for c in sorted(bad) or [0]:                     # the good chunks still read, after the errors
    expect(((c + 1) % data.N) * CH, CH, (c + 1) % data.N in bad)
for p in problems[:10]:
    print(p)
sys.exit(1 if problems else 0)
PY
}
chunk_key() { store_keys "$1" vol/chunks/ | grep "/$(printf %016x $2)-" | tail -1; } # the newest generation
flip() { $PY -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]) % f.seek(0, 2); f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 0x40]))' "$@"; }

# 1. Write every chunk, stop (SIGTERM commits everything); keep a copy of
# chunk 3's object; rewrite chunk 3 (a new generation), stop again.
export PYTHONPATH=$TMP:$PYTHONPATH
mkdir -p $TMP/state
start_usbd w1 $(store_flags $STORE $TMP/state) "${VOL[@]}" -key=key:$HEX
write_chunks "$URI" 1 $(seq 0 $((N - 1)))
stop_usbd
old3=$(chunk_key $STORE 3); store_get $STORE $old3 $TMP/old3
start_usbd w2 $(store_flags $STORE $TMP/state) "${VOL[@]}" -key=key:$HEX
write_chunks "$URI" 2 3
stop_usbd
new3=$(chunk_key $STORE 3)
[ "$new3" != "$old3" ] || fail "rewriting chunk 3 did not make a new generation ($new3)"
[ $(store_count $STORE vol/chunks/) -ge $N ] || { store_keys $STORE vol/chunks/; fail "fewer than $N chunk objects in the store"; }
store_export $STORE $TMP/objects
grep -rqa PLAINTEXT-MARKER $TMP/objects && fail "plaintext of chunk 9 is readable in the store"
# every chunk object says the cipher (header byte 12) and its MAC (13)
ids=$(for o in $TMP/objects/vol/chunks/*; do od -An -tu1 -j12 -N2 $o; done | sort -u | xargs)
[ "$ids" = "$CIPHER_ID $CIPHER_ID" ] || fail "chunk objects have cipher and MAC ids '$ids', expected $CIPHER_ID $CIPHER_ID ($CIPHER)"
rm -rf $TMP/objects
ok "store written ($CIPHER): $(store_count $STORE vol/chunks/) chunk objects, chunk 3 at $(basename $old3) then $(basename $new3), no plaintext"

# 2. The keys. A wrong key: exit 1 with one clear line, before any write to
# the store (with the volume's local state, and with none).
SUM=$(store_sum $STORE)
for st in $TMP/state $TMP/empty-state; do
    mkdir -p $st; rc=0
    timeout 20 "$USBD_BIN" -listen=unix:$TMP/k.sock -nbd-device=none $(store_flags $STORE $st) \
        "${VOL[@]}" -key=key:$OTHER 2>$TMP/k.err || rc=$?
    [ $rc = 1 ] || { cat $TMP/k.err; fail "wrong key ($st): exit status $rc, expected 1"; }
    grep -q "ready:" $TMP/k.err && fail "wrong key: the daemon became ready"
    [ "$(grep -c 'error' $TMP/k.err)" = 1 ] && grep 'error' $TMP/k.err | grep -qi key ||
        { cat $TMP/k.err; fail "wrong key: expected one error line about the key"; }
    [ "$(store_sum $STORE)" = "$SUM" ] || fail "wrong key ($st): the store was modified"
done
ok "wrong key: $(grep error $TMP/k.err | sed 's/^[0-9:.]* //')"
# ... and the volume's local state still serves with the right key.
DATA_SUM=$(store_sum $STORE $CONTROL_KEYS) RECORDS=$(store_keys $STORE vol/epochs/)
start_usbd rightkey $(store_flags $STORE $TMP/state) "${VOL[@]}" -key=key:$HEX
verify "$URI" "" || fail "after a wrong-key attempt, the right key no longer reads the volume"
stop_usbd
[ "$(store_sum $STORE $CONTROL_KEYS)" = "$DATA_SUM" ] ||
    fail "a clean start and stop with nothing to write modified data in the store"
# a writer's start adds its takeover record, and nothing else to the map
new_records=$(comm -13 <(echo "$RECORDS") <(store_keys $STORE vol/epochs/))
[ $(wc -w <<<"$new_records") = 1 ] || fail "a start with nothing to write added records: $new_records"
[ -z "$(comm -23 <(echo "$RECORDS") <(store_keys $STORE vol/epochs/))" ] || fail "a start removed records"
SUM=$(store_sum $STORE)
# A missing key file: a clear error naming it; nothing written.
rc=0
timeout 20 "$USBD_BIN" -listen=unix:$TMP/k.sock -nbd-device=none $(store_flags $STORE $TMP/state) \
    "${VOL[@]}" -key=file:$TMP/no-such-key 2>$TMP/k.err || rc=$?
[ $rc = 1 ] || [ $rc = 2 ] || { cat $TMP/k.err; fail "missing key file: exit status $rc"; }
grep -q "no-such-key" $TMP/k.err || { cat $TMP/k.err; fail "missing key file: the error does not name it"; }
[ "$(store_sum $STORE)" = "$SUM" ] || fail "missing key file: the store was modified"
ok "missing key file: $(grep no-such-key $TMP/k.err | head -1 | sed 's/^[0-9:.]* //')"
# A key file others can read: a warning, and it starts (empty state: every
# read comes from the store, which doubles as the untampered baseline).
echo $HEX >$TMP/key.hex; chmod 0644 $TMP/key.hex
mkdir -p $TMP/st-keyfile
start_usbd keyfile $(store_flags $STORE $TMP/st-keyfile) "${VOL[@]}" -key=file:$TMP/key.hex
grep -i "warn" $LOG | grep -q "key.hex" || { cat $LOG; fail "a 0644 key file gave no warning naming it"; }
verify "$URI" "" || fail "reading the volume back from the store alone"
stop_usbd
ok "key file mode 0644: $(grep -i warn $LOG | grep key.hex | head -1 | sed 's/^[0-9:.]* //')"

# 3. The attacks. Each on a fresh copy of the store, served with an empty
# state dir so every read comes from the store. The copy is altered as files
# (store_export), then becomes a store of its own (store_load: for local, the
# directory itself).
attack() { # NAME "BAD CHUNKS" COMMANDS (run in the copy's chunks directory)
    local name=$1 bad=$2 cmd=$3 d=$TMP/att-$1 c hex n
    store_export $STORE $d; mkdir -p $d-state
    (cd $d/vol/chunks && eval "$cmd") || fail "$name: setting up the attack"
    store_load $d $d
    start_usbd $name $(store_flags $d $d-state) "${VOL[@]}" -key=key:$HEX
    verify "$URI" "$bad" || fail "$name: see the reads above"
    kill -0 $USBD_PID 2>/dev/null || fail "$name: the daemon died"
    for c in ${bad//,/ }; do
        hex=$(printf %x $c)
        n=$(grep -E "chunk 0x0*$hex gen [0-9]+:" $LOG | grep -ciE "EIO|authentic|Input/output") || true
        [ "$n" -ge 1 ] || { cat $LOG; fail "$name: no log line names chunk 0x$hex with EIO/authentication"; }
    done
    # no error for a chunk that was not touched
    if grep -E "chunk 0x[0-9a-f]+ gen [0-9]+:" $LOG | grep -vE "chunk 0x0*($(printf '%x|' ${bad//,/ } | sed 's/|$//')) gen" | grep -q .; then
        grep -E "chunk 0x[0-9a-f]+ gen" $LOG; fail "$name: errors logged for chunks that were not tampered with"
    fi
    stop_usbd
    ok "$name: EIO for chunk(s) $bad, the rest intact; log: $(grep -E "chunk 0x0*$(printf %x ${bad%%,*}) gen" $LOG | head -1 | sed 's/^[0-9:.]* //')"
    store_rm $d; rm -rf $d $d-state
}
f() { ls $(printf %016x $1)-* | sort | tail -1; } # in the copy's chunks dir: chunk $1's newest object
attack flip_magic      1 'flip $(f 1) 0'
attack flip_uuid       1 'flip $(f 1) 20'
attack flip_index      1 'flip $(f 1) 32'
attack flip_generation 1 'flip $(f 1) 41'
attack flip_lengths    1 'flip $(f 1) 49'
attack flip_iv         1 'flip $(f 1) 60' # inside ChaCha20-Poly1305's nonce too
attack flip_iv_end     1 'flip $(f 1) 70' # the nonce field's tail, zero with ChaCha20-Poly1305
attack flip_payload    2 'flip $(f 2) 4000'
attack flip_mac        4 'flip $(f 4) -1'
attack swap          5,6 'a=$(f 5) b=$(f 6); mv $a x; mv $b $a; mv x $b'
attack replay_old_gen  3 "cp $TMP/old3 \$(f 3)"
attack truncate_half   7 't=$(f 7); truncate -s $(($(stat -c %s $t) / 2)) $t'
attack truncate_mac    7 't=$(f 7); truncate -s -1 $t'
attack truncate_empty  7 ': >$(f 7)'
attack missing         8 'rm $(f 8)'
ok "tamper ($CIPHER)"
