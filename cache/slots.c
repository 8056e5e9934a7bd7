/* slots.c - the slot file: fixed-size slots of one chunk each; allocation,
 * least-recently-used eviction of clean chunks, and slot I/O. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void slot_list_push(struct slot_list *l, uint32_t s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            abort(); /* cannot happen: lists never exceed nslots, reserved at open */
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

void mark_index_dirty(struct cache *c, uint32_t i)
{
    if (!c->chunks[i].index_dirty) {
        c->chunks[i].index_dirty = 1;
        c->index_dirty[c->nindex_dirty++] = i;
    }
}

void lru_remove(struct cache *c, uint32_t i)
{
    struct chunk *k = &c->chunks[i];
    if (!k->in_lru)
        return;
    if (k->lru_prev != NO_CHUNK)
        c->chunks[k->lru_prev].lru_next = k->lru_next;
    else
        c->lru_head = k->lru_next;
    if (k->lru_next != NO_CHUNK)
        c->chunks[k->lru_next].lru_prev = k->lru_prev;
    else
        c->lru_tail = k->lru_prev;
    k->in_lru = 0;
    k->lru_prev = k->lru_next = NO_CHUNK;
}

/* Most recently used at the tail; eviction takes from the head. */
void lru_touch(struct cache *c, uint32_t i)
{
    struct chunk *k = &c->chunks[i];
    if (k->cslot == SLOT_NONE || (k->in_lru && c->lru_tail == i))
        return;
    lru_remove(c, i);
    k->lru_prev = c->lru_tail;
    k->lru_next = NO_CHUNK;
    if (c->lru_tail != NO_CHUNK)
        c->chunks[c->lru_tail].lru_next = i;
    else
        c->lru_head = i;
    c->lru_tail = i;
    k->in_lru = 1;
}

void slot_release(struct cache *c, uint32_t slot)
{
    if (slot != SLOT_NONE)
        slot_list_push(&c->pending_free, slot);
}

/* Evict up to n clean chunks from the head of the LRU. Their slots become
 * reusable after the next persist. */
static size_t evict(struct cache *c, size_t n)
{
    size_t done = 0;
    uint32_t i = c->lru_head;
    while (i != NO_CHUNK && done < n) {
        struct chunk *k = &c->chunks[i];
        uint32_t next = k->lru_next;
        if (!c->slot_pins[k->cslot] && !k->busy) {
            lru_remove(c, i);
            slot_release(c, k->cslot);
            k->cslot = SLOT_NONE;
            mark_index_dirty(c, i);
            done++;
        }
        i = next;
    }
    return done;
}

/* A free slot that no read still uses. */
static uint32_t pop_free(struct cache *c)
{
    struct slot_list *l = &c->free_slots;
    for (size_t j = l->n; j-- > 0;) {
        uint32_t s = l->v[j];
        if (!c->slot_pins[s]) {
            l->v[j] = l->v[--l->n];
            return s;
        }
    }
    return SLOT_NONE;
}

uint32_t slot_alloc(struct cache *c)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        uint32_t s = pop_free(c);
        if (s != SLOT_NONE)
            return s;
        /* Evict in batches: each batch costs one LMDB commit. */
        if (c->pending_free.n == 0 && evict(c, c->nslots / 16 + 1) == 0)
            return SLOT_NONE;
        pthread_mutex_unlock(&c->lock);
        int err = index_persist(c);
        pthread_mutex_lock(&c->lock);
        if (err)
            return SLOT_NONE;
    }
    return pop_free(c);
}

int slots_open(struct cache *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/slots", c->vol_dir);
    c->slot_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->slot_fd < 0) {
        int err = errno;
        cache_log(c, USBD_LOG_ERROR, "cannot open slot file %s: %s", path, strerror(err));
        return err;
    }
    off_t want = (off_t)c->nslots * c->chunk_size;
    off_t have = lseek(c->slot_fd, 0, SEEK_END);
    /* Sparse: space is used as chunks are cached. */
    if (have < want && ftruncate(c->slot_fd, want) != 0) {
        int err = errno;
        cache_log(c, USBD_LOG_ERROR, "cannot size slot file %s: %s", path, strerror(err));
        return err;
    }
    return 0;
}

static off_t slot_off(const struct cache *c, uint32_t slot, uint64_t off)
{
    return (off_t)((uint64_t)slot * c->chunk_size + off);
}

int slot_pread(struct cache *c, uint32_t slot, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(c->slot_fd, p, len, slot_off(c, slot, off));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            cache_log(c, USBD_LOG_ERROR, "slot %u: local read failed: %s", slot, strerror(err));
            return err;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

int slot_pwrite(struct cache *c, uint32_t slot, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(c->slot_fd, p, len, slot_off(c, slot, off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int err = errno;
            cache_log(c, USBD_LOG_ERROR, "slot %u: local write failed: %s%s", slot, strerror(err),
                      err == ENOSPC ? " (the cache disk is full)" : "");
            return err;
        }
        p += w;
        off += (uint64_t)w;
        len -= (size_t)w;
    }
    return 0;
}

int slot_punch(struct cache *c, uint32_t slot)
{
    if (fallocate(c->slot_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, slot_off(c, slot, 0),
                  c->chunk_size) == 0)
        return 0;
    /* No hole punching here: write zeros instead. */
    void *z = calloc(1, c->chunk_size);
    if (!z)
        return ENOMEM;
    int err = slot_pwrite(c, slot, z, c->chunk_size, 0);
    free(z);
    return err;
}

int slot_copy(struct cache *c, uint32_t from, uint32_t to)
{
    /* In the kernel: no chunk-sized buffer in user space, and a reflink
     * where the file system can. */
    loff_t in = slot_off(c, from, 0), out = slot_off(c, to, 0);
    size_t left = c->chunk_size;
    while (left > 0) {
        ssize_t n = copy_file_range(c->slot_fd, &in, c->slot_fd, &out, left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= (size_t)n;
    }
    if (left == 0)
        return 0;
    void *buf = malloc(c->chunk_size);
    if (!buf)
        return ENOMEM;
    int err = slot_pread(c, from, buf, c->chunk_size, 0);
    if (!err)
        err = slot_pwrite(c, to, buf, c->chunk_size, 0);
    free(buf);
    return err;
}
