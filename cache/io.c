/* io.c - the block-device operations of the object-store device.
 *
 * A request is cut at chunk boundaries; each piece follows the chunk state
 * machine of internal.h. Reads never wait for the flusher except to get a
 * slot; writes wait when dirty data reaches -dirty-max (backpressure, never
 * an error). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Why writes fail now (EROFS, documented in cache.h): another writer took
 * the volume over, the local disk failed a sync, or -readonly. 0 if not. */
static int writes_refused(const struct cache *c)
{
    return c->fenced || c->local_err || c->cfg.read_only ? EROFS : 0;
}

/* Wait, without holding the freeze barrier (the flusher needs it), until a
 * write that needs a new dirty slot may take one. */
static int wait_for_dirty_room(struct cache *c, uint32_t i)
{
    pthread_mutex_lock(&c->lock);
    bool kicked = false;
    /* Only the changes waiting for the next epoch count: the epoch being
     * uploaded has room of its own (dirty_max_slots is at most half the
     * slots for that reason). Counting it too made a working set as large
     * as -dirty-max stall at every epoch (random 4K writes over 1 GiB with
     * -dirty-max=1GiB: 3-4 s stalls, 0.03x s3backer's IOPS). */
    while (c->live_dirty >= c->dirty_max_slots && c->chunks[i].lslot == SLOT_NONE &&
           !c->abandon && !c->fenced && !c->local_err) {
        if (!kicked) {
            c->flush_requested = true;
            pthread_cond_broadcast(&c->flusher_cv);
            kicked = true;
        }
        pthread_cond_wait(&c->changed, &c->lock);
    }
    /* Start an epoch early when dirty data nears the limit. */
    if (c->live_dirty * 4 >= c->dirty_max_slots * 3 && c->flusher_idle) {
        c->flush_requested = true;
        pthread_cond_broadcast(&c->flusher_cv);
    }
    int err = writes_refused(c);
    pthread_mutex_unlock(&c->lock);
    return err;
}

/* No slot to be had: every slot is dirty, frozen or in use. Let the flusher
 * turn frozen slots into evictable clean ones. Called and returns with
 * c->lock held. */
static int wait_for_slot(struct cache *c)
{
    /* No epoch will run to turn dirty slots clean: do not wait for one. */
    if (c->fenced || c->local_err)
        return EIO;
    c->flush_requested = true;
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_cond_wait(&c->changed, &c->lock);
    return 0;
}

/* The same, for a writer holding the freeze barrier (shared) and c->lock:
 * the flusher needs the barrier to make progress, so let go of it while
 * waiting. Returns with both held again. */
static int wait_for_slot_outside_barrier(struct cache *c)
{
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_unlock(&c->freeze);
    pthread_mutex_lock(&c->lock);
    int err = wait_for_slot(c);
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_rdlock(&c->freeze);
    pthread_mutex_lock(&c->lock);
    return err ? err : writes_refused(c);
}

static void unpin(struct cache *c, uint32_t slot)
{
    pthread_mutex_lock(&c->lock);
    if (--c->slot_pins[slot] == 0)
        pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

/* The chunk's newest content: a slot, or zeros (*zero), or the store. */
static uint32_t newest_slot(const struct chunk *k, bool *zero)
{
    *zero = false;
    if (k->lslot != SLOT_NONE)
        return k->lslot;
    if (k->lzero || (k->fslot == SLOT_NONE && k->fzero)) {
        *zero = true;
        return SLOT_NONE;
    }
    if (k->fslot != SLOT_NONE)
        return k->fslot;
    if (k->cslot == SLOT_NONE && k->gen == 0)
        *zero = true;
    return k->cslot;
}

static int read_chunk(struct cache *c, uint32_t i, uint8_t *buf, uint32_t off, uint32_t len)
{
    struct chunk *k = &c->chunks[i];
    pthread_mutex_lock(&c->lock);
    readahead_note(c, i);
    for (;;) {
        if (k->busy) {
            pthread_cond_wait(&c->changed, &c->lock);
            continue;
        }
        bool zero;
        uint32_t s = newest_slot(k, &zero);
        if (zero) {
            pthread_mutex_unlock(&c->lock);
            memset(buf, 0, len);
            return 0;
        }
        if (s != SLOT_NONE) {
            c->slot_pins[s]++;
            if (s == k->cslot)
                lru_touch(c, i);
            pthread_mutex_unlock(&c->lock);
            int err = slot_pread(c, s, buf, len, off);
            unpin(c, s);
            return err;
        }
        /* Only in the store: fetch it into a clean slot. */
        int err = fetch_into_cache(c, i);
        if (err) {
            pthread_mutex_unlock(&c->lock);
            return err;
        }
    }
}

int fetch_into_cache(struct cache *c, uint32_t i)
{
    struct chunk *k = &c->chunks[i];
    uint32_t ns = slot_alloc(c);
    if (ns == SLOT_NONE)
        return wait_for_slot(c); /* 0: the caller looks again */
    k->busy = 1;
    uint64_t gen = k->gen;
    uint8_t tag[TAG_SIZE];
    memcpy(tag, k->tag, TAG_SIZE);
    pthread_mutex_unlock(&c->lock);
    int err = fetch_chunk(c, i, gen, tag, ns);
    pthread_mutex_lock(&c->lock);
    k->busy = 0;
    pthread_cond_broadcast(&c->changed);
    if (!err && k->gen == gen && k->cslot == SLOT_NONE) {
        k->cslot = ns;
        lru_touch(c, i);
        mark_index_dirty(c, i);
    } else {
        slot_list_push(&c->free_slots, ns); /* never published */
    }
    return err;
}

/* Give chunk i a live slot holding its newest content (copy on write).
 * Called with the freeze barrier (shared) and c->lock held. If it has to
 * wait for a slot it lets go of both (the flusher needs the barrier) and
 * sets *dropped: an epoch may have been frozen meanwhile. full: the caller
 * overwrites the whole chunk. */
static int make_live(struct cache *c, uint32_t i, bool full, bool *dropped)
{
    struct chunk *k = &c->chunks[i];
    for (;;) {
        if (k->busy) {
            pthread_cond_wait(&c->changed, &c->lock);
            continue;
        }
        if (k->lslot != SLOT_NONE)
            return 0;
        uint32_t ns = slot_alloc(c);
        if (ns == SLOT_NONE) {
            int err = wait_for_slot_outside_barrier(c);
            *dropped = true;
            if (err)
                return err;
            continue;
        }
        bool zero;
        uint32_t src = newest_slot(k, &zero);
        bool was_dirty = k->lzero;
        uint64_t gen = k->gen;
        uint8_t tag[TAG_SIZE];
        memcpy(tag, k->tag, TAG_SIZE);
        k->busy = 1;
        if (src != SLOT_NONE)
            c->slot_pins[src]++;
        pthread_mutex_unlock(&c->lock);
        int err = 0;
        if (!full)
            err = src != SLOT_NONE ? slot_copy(c, src, ns)
                  : zero           ? slot_punch(c, ns)
                                   : fetch_chunk(c, i, gen, tag, ns);
        pthread_mutex_lock(&c->lock);
        if (src != SLOT_NONE && --c->slot_pins[src] == 0)
            pthread_cond_broadcast(&c->changed);
        k->busy = 0;
        pthread_cond_broadcast(&c->changed);
        if (err) {
            slot_list_push(&c->free_slots, ns);
            return err;
        }
        k->lslot = ns;
        k->lzero = 0;
        c->dirty_slots++;
        if (!was_dirty)
            c->live_dirty++;
        mark_index_dirty(c, i);
        return 0;
    }
}

/* The whole chunk becomes zeros: no slot, nothing to upload but a removal.
 * Called with the freeze barrier (shared) and c->lock held. */
static void zero_chunk_locked(struct cache *c, uint32_t i)
{
    struct chunk *k = &c->chunks[i];
    while (k->busy)
        pthread_cond_wait(&c->changed, &c->lock);
    /* Is every older state (committed, frozen) zeros already? */
    bool older_zero = k->gen == 0 && k->fslot == SLOT_NONE;
    bool was_dirty = k->lslot != SLOT_NONE || k->lzero;
    if (k->lslot != SLOT_NONE) {
        slot_release(c, k->lslot);
        c->dirty_slots--;
        k->lslot = SLOT_NONE;
    }
    if (older_zero) {
        k->lzero = 0; /* back to never written */
        if (was_dirty)
            c->live_dirty--;
    } else if (!k->lzero) {
        k->lzero = 1;
        if (!was_dirty)
            c->live_dirty++;
    }
    if (was_dirty || !older_zero)
        mark_index_dirty(c, i);
}

/* One chunk's part of a request. */
enum piece_kind { P_DATA, P_ZERO_PART, P_ZERO_FULL };
struct piece {
    uint32_t idx, off, len;
    enum piece_kind kind;
    const uint8_t *src; /* P_DATA */
    uint32_t slot;      /* the slot written */
    bool fresh;         /* a whole-chunk write into a new slot, published after */
    bool pinned;        /* slot_pins[slot] taken */
};

static bool whole_chunk_data(const struct cache *c, const struct piece *p)
{
    return p->kind == P_DATA && p->len == c->chunk_size;
}

/* Phase A of apply_pieces: give every piece a slot to write. A piece that
 * overwrites a whole chunk without a live slot gets a new, unpublished slot
 * (the chunk is marked busy until it is published): publishing it before its
 * data is written would let a concurrent index commit record a slot that
 * still holds another chunk's old bytes. Returns with the locks held;
 * *again if they were dropped (an epoch may have frozen earlier pieces). */
static int prepare_pieces(struct cache *c, struct piece *p, size_t n, bool *again)
{
    for (size_t j = 0; j < n; j++) {
        if (p[j].kind == P_ZERO_FULL || p[j].fresh)
            continue;
        struct chunk *k = &c->chunks[p[j].idx];
        if (!whole_chunk_data(c, &p[j])) {
            int err = make_live(c, p[j].idx, false, again);
            if (err || *again)
                return err;
            continue;
        }
        while (k->busy)
            pthread_cond_wait(&c->changed, &c->lock);
        if (k->lslot != SLOT_NONE)
            continue; /* overwritten in place: it is this chunk's own live copy */
        uint32_t ns = slot_alloc(c);
        if (ns == SLOT_NONE) {
            *again = true;
            return wait_for_slot_outside_barrier(c);
        }
        k->busy = 1;
        p[j].slot = ns;
        p[j].fresh = true;
    }
    return 0;
}

/* Apply every piece of one request inside one hold of the freeze barrier,
 * so an epoch contains all of the request or none of it (invariant 2).
 * First every piece gets a slot; waiting for one drops the barrier, which is
 * harmless then (no data of this request is written yet) but means starting
 * the pass again, as an epoch may have frozen earlier pieces. */
static int apply_pieces(struct cache *c, struct piece *p, size_t n)
{
    int err = wait_for_dirty_room(c, p[0].idx);
    if (err)
        return err;
    pthread_rwlock_rdlock(&c->freeze);
    pthread_mutex_lock(&c->lock);
    err = writes_refused(c); /* checked again under the barrier: fenced meanwhile? */
    bool again = true;
    while (again && !err) {
        again = false;
        err = prepare_pieces(c, p, n, &again);
        for (size_t j = 0; j < n && !err && !again; j++)
            again = p[j].kind != P_ZERO_FULL && !p[j].fresh &&
                    c->chunks[p[j].idx].lslot == SLOT_NONE;
    }
    for (size_t j = 0; j < n && !err; j++) {
        if (p[j].kind == P_ZERO_FULL)
            zero_chunk_locked(c, p[j].idx);
        else if (!p[j].fresh)
            p[j].slot = c->chunks[p[j].idx].lslot;
        if (p[j].slot != SLOT_NONE) {
            c->slot_pins[p[j].slot]++;
            p[j].pinned = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    uint8_t *zeros = NULL;
    for (size_t j = 0; j < n && !err; j++) {
        if (p[j].kind == P_ZERO_FULL)
            continue;
        const uint8_t *src = p[j].src;
        if (p[j].kind == P_ZERO_PART) {
            if (!zeros && !(zeros = calloc(1, c->chunk_size)))
                err = ENOMEM;
            src = zeros;
        }
        if (!err)
            err = slot_pwrite(c, p[j].slot, src, p[j].len, p[j].off);
    }
    free(zeros);
    pthread_mutex_lock(&c->lock);
    for (size_t j = 0; j < n; j++) {
        if (p[j].fresh) {
            struct chunk *k = &c->chunks[p[j].idx];
            if (err) {
                slot_list_push(&c->free_slots, p[j].slot); /* never published */
            } else {
                if (!k->lzero)
                    c->live_dirty++;
                k->lslot = p[j].slot;
                k->lzero = 0;
                c->dirty_slots++;
                mark_index_dirty(c, p[j].idx);
            }
            k->busy = 0;
        }
        if (p[j].pinned)
            c->slot_pins[p[j].slot]--;
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_unlock(&c->freeze);
    return err;
}

/* Cut a request into pieces and apply them (kind P_DATA with buf, or the
 * zero kinds with buf NULL). */
static int write_range(struct cache *c, const uint8_t *buf, uint32_t len, uint64_t off)
{
    size_t n = (size_t)(((off + len - 1) >> c->chunk_shift) - (off >> c->chunk_shift) + 1);
    struct piece stack[16];
    struct piece *p = n <= 16 ? stack : malloc(n * sizeof *p);
    if (!p)
        return ENOMEM;
    uint64_t pos = off, end = off + len;
    for (size_t j = 0; j < n; j++) {
        uint32_t poff = (uint32_t)(pos & (c->chunk_size - 1));
        uint64_t room = c->chunk_size - poff;
        uint32_t plen = (uint32_t)(end - pos < room ? end - pos : room);
        p[j] = (struct piece){
            .idx = (uint32_t)(pos >> c->chunk_shift),
            .off = poff,
            .len = plen,
            .kind = buf ? P_DATA : plen == c->chunk_size ? P_ZERO_FULL : P_ZERO_PART,
            .src = buf ? buf + (pos - off) : NULL,
            .slot = SLOT_NONE,
        };
        pos += plen;
    }
    int err = apply_pieces(c, p, n);
    if (p != stack)
        free(p);
    return err;
}

/* Cut [off, off+len) at chunk boundaries and call fn on each piece. */
#define FOR_EACH_PIECE(c, off, len, ...)                                      \
    do {                                                                       \
        uint64_t pos_ = (off), end_ = (off) + (len);                           \
        while (pos_ < end_) {                                                  \
            uint32_t idx = (uint32_t)(pos_ >> (c)->chunk_shift);               \
            uint32_t poff = (uint32_t)(pos_ & ((c)->chunk_size - 1));          \
            uint64_t room = (c)->chunk_size - poff;                            \
            uint32_t plen = (uint32_t)(end_ - pos_ < room ? end_ - pos_ : room); \
            uint64_t done = pos_ - (off);                                      \
            (void)done;                                                        \
            __VA_ARGS__;                                                       \
            pos_ += plen;                                                      \
        }                                                                      \
    } while (0)

static int cache_read(void *priv, void *buf, uint32_t len, uint64_t off)
{
    struct cache *c = priv;
    FOR_EACH_PIECE(c, off, len, {
        int err = read_chunk(c, idx, (uint8_t *)buf + done, poff, plen);
        if (err)
            return err;
    });
    return 0;
}

static int cache_flush(void *priv);

static int cache_write(void *priv, const void *buf, uint32_t len, uint64_t off, unsigned flags)
{
    struct cache *c = priv;
    int err = write_range(c, buf, len, off);
    return !err && (flags & USBD_FUA) ? cache_flush(c) : err;
}

static int cache_trim(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    struct cache *c = priv;
    int err = write_range(c, NULL, len, off);
    return !err && (flags & USBD_FUA) ? cache_flush(c) : err;
}

static int cache_write_zeroes(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    /* Zeros are never stored, so NO_HOLE changes nothing here, and zeroing
     * is always fast. */
    return cache_trim(priv, len, off, flags & USBD_FUA);
}

/* The epoch that will hold every write completed so far: the next one to
 * freeze if anything is live, else the one in flight, else none. */
static uint64_t epoch_of_writes_so_far(struct cache *c)
{
    return c->live_dirty ? c->next_epoch
           : c->next_epoch - 1 > c->committed_epoch ? c->next_epoch - 1
                                                    : c->committed_epoch;
}

/* Until epoch target is in the store. EIO if abandoned first. */
static int wait_committed(struct cache *c, uint64_t target)
{
    pthread_mutex_lock(&c->lock);
    while (c->committed_epoch < target && !c->abandon && !c->fenced && !c->local_err) {
        c->flush_requested = true;
        pthread_cond_broadcast(&c->flusher_cv);
        pthread_cond_wait(&c->changed, &c->lock);
    }
    int err = c->committed_epoch >= target ? 0 : EIO;
    pthread_mutex_unlock(&c->lock);
    return err;
}

static int cache_flush(void *priv)
{
    struct cache *c = priv;
    pthread_mutex_lock(&c->lock);
    uint64_t target = epoch_of_writes_so_far(c);
    pthread_mutex_unlock(&c->lock);
    int err = index_persist(c);
    if (err || !c->cfg.sync_remote)
        return err;
    /* -sync=remote: also wait until that epoch is in the store. */
    return wait_committed(c, target);
}

int cache_commit(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t target = epoch_of_writes_so_far(c);
    pthread_mutex_unlock(&c->lock);
    int err = index_persist(c);
    return err ? err : wait_committed(c, target);
}

static int cache_cache(void *priv, uint32_t len, uint64_t off)
{
    struct cache *c = priv;
    uint8_t one;
    /* Reading one byte of each chunk brings it into the cache. */
    FOR_EACH_PIECE(c, off, len, {
        int err = read_chunk(c, idx, &one, poff, 1);
        if (err)
            return err;
    });
    return 0;
}

static bool chunk_is_zero(struct cache *c, uint32_t i)
{
    bool zero;
    (void)newest_slot(&c->chunks[i], &zero);
    return zero;
}

static int cache_block_status(void *priv, uint32_t len, uint64_t off, struct usbd_extent *ext,
                              size_t *n)
{
    struct cache *c = priv;
    size_t max = *n, k = 0;
    pthread_mutex_lock(&c->lock);
    FOR_EACH_PIECE(c, off, len, {
        uint32_t flags = chunk_is_zero(c, idx) ? USBD_EXTENT_HOLE | USBD_EXTENT_ZERO : 0;
        if (k > 0 && ext[k - 1].flags == flags)
            ext[k - 1].length += plen;
        else if (k < max)
            ext[k++] = (struct usbd_extent){.length = plen, .flags = flags};
        else
            break;
    });
    pthread_mutex_unlock(&c->lock);
    *n = k;
    return 0;
}

const struct usbd_dev_ops cache_dev_ops = {
    .read = cache_read,
    .write = cache_write,
    .flush = cache_flush,
    .trim = cache_trim,
    .write_zeroes = cache_write_zeroes,
    .cache = cache_cache,
    .block_status = cache_block_status,
};
