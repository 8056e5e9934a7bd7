#!/bin/bash
# One writer per volume (-kind=local, or -kind=s3 on RGW with
# USBD_TEST_STORE=rgw): while a board writes a volume, a second board's start
# for writing is refused (exit 1, one line naming the first board's host and
# when its lease expires) and writes nothing, neither to the store nor to its
# own cache directory; a -readonly board serves the last committed epoch
# while the first one keeps writing; a clean stop releases the lease.
. "$(dirname "$0")/lib.sh"
need nbdcopy nbdsh
S=$TMP/store
head -c 4M /dev/urandom >$TMP/x
head -c 4M /dev/urandom >$TMP/y
start_usbd a $(vol_flags $S $TMP/state-a -size=16MiB -objsize=256KiB -flush-every=1h)
A=$USBD_PID A_LOG=$LOG A_URI=$URI
# commit_a DATA: write DATA through A, SIGHUP, wait for that epoch's commit.
commit_a() {
    local n; n=$(grep -c "committed: " $A_LOG || true)
    nbdcopy --flush "$1" "$A_URI"
    kill -HUP $A
    for _ in $(seq 300); do [ "$(grep -c "committed: " $A_LOG)" -gt "$n" ] && return 0; sleep 0.1; done
    fail "no epoch committed within 30 s of SIGHUP"
}
commit_a $TMP/x

# A second writer is refused, and nothing changes anywhere.
SUM=$(store_sum $S)
rc=0
timeout 30 "$USBD_BIN" -listen=unix:$TMP/b.sock -nbd-device=none $(vol_flags $S $TMP/state-b) \
    2>$TMP/b.err || rc=$?
[ $rc = 1 ] || { cat $TMP/b.err; fail "second writer: exit status $rc, want 1"; }
grep -q "ready:" $TMP/b.err && fail "second writer became ready"
line=$(grep ' error: ' $TMP/b.err)
[ "$(wc -l <<<"$line")" = 1 ] || { cat $TMP/b.err; fail "second writer: want exactly one error line"; }
grep -q "is being written by usbd-objstore on host $(hostname) (pid $A)" <<<"$line" &&
    grep -q "lease runs until 20[0-9-]* [0-9:]* UTC" <<<"$line" && grep -q -- "-takeover" <<<"$line" ||
    { cat $TMP/b.err; fail "second writer: the error does not name the owner, the expiry and -takeover"; }
[ "$(store_sum $S)" = "$SUM" ] || fail "a refused second writer modified the store"
[ ! -e $TMP/state-b/vol ] || { ls -laR $TMP/state-b; fail "a refused second writer wrote its cache directory"; }
ok "second writer refused: ${line#* error: }"

# A -readonly board serves the committed epoch (x) while the first writes y
# over it and commits, several times: what it reads stays x, whole.
start_usbd r $(vol_flags $S $TMP/state-r -readonly)
R=$USBD_PID R_URI=$URI
grep -q "this board writes it now" $LOG && fail "-readonly took the lease"
for d in y x y x; do commit_a $TMP/$d; done
nbdcopy "$R_URI" $TMP/r-back
cmp -n $((4 << 20)) $TMP/r-back $TMP/x || fail "the -readonly board did not read the epoch it opened (x)"
nbdsh_run 'h.pwrite(b"z" * 4096, 0)' 2>$TMP/r-write.err && fail "-readonly accepted a write"
stop_usbd $R
ok "-readonly board read the committed epoch whole while the writer committed 4 more ($(store_count $S vol/chunks/) chunk objects kept for it)"

# Once the reader is gone, the writer removes what only it needed.
before=$(store_count $S vol/chunks/)
[ "$before" -gt 16 ] || fail "only $before chunk objects while a reader pinned the first epoch"
commit_a $TMP/y
for _ in $(seq 100); do [ "$(store_count $S vol/chunks/)" -le 16 ] && break; sleep 0.1; done
[ "$(store_count $S vol/chunks/)" = 16 ] ||
    fail "$before chunk objects before, $(store_count $S vol/chunks/) after the reader left, want 16"
[ "$(store_count $S vol/readers/)" = 0 ] || fail "the reader's pin is still in the store"

# A clean stop releases the lease: the second board now starts at once.
stop_usbd $A
grep -q "lease released" $A_LOG || fail "no release at a clean stop"
start_usbd b $(vol_flags $S $TMP/state-b)
grep -q "this board writes it now" $LOG || fail "the second board did not take the released volume"
nbdcopy "$URI" $TMP/b-back
cmp -n $((4 << 20)) $TMP/b-back $TMP/y || fail "the second board read something else"
stop_usbd
ok "clean stop released the lease; the next board writes without -takeover"
