/* flusher.c - epochs: freeze the dirty chunks, upload them, commit.
 *
 * 1. Freeze (under the freeze barrier, so no write is half-applied): every
 *    live chunk state becomes the frozen state of epoch e, with a new
 *    generation g = token << 32 | seq (seq grows at every freeze and is
 *    never given back, so no two uploads ever share a key). Writes after
 *    this copy the frozen slot to a new live slot (copy on write), so what
 *    epoch e uploads is exactly the device at the freeze.
 * 2. Upload: flush_workers threads seal each frozen chunk as generation g
 *    and put it, retrying with backoff; an all-zero chunk is not uploaded.
 *    Each object's tag (the head of its MAC) goes into the record.
 * 3. Commit: create the epoch record (records.c). Only now does the store's
 *    map change: a crash before this leaves the previous epoch intact (the
 *    new objects are garbage, removed at the next open). A record that
 *    collides means another writer took over: this one is fenced, and its
 *    frozen changes stay local.
 * 4. Locally: frozen slots become clean slots of generation g; persisted.
 * 5. Retire superseded generations (deleted once no reader pins an epoch
 *    that needs them); every CHECKPOINT_EVERY epochs, a checkpoint, so
 *    opening never replays more than that many records.
 * Nothing is marked clean before the store confirmed it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define CHECKPOINT_EVERY 32

struct upload {
    uint32_t index;
    uint32_t slot;    /* frozen slot; SLOT_NONE: frozen as zeros */
    uint64_t new_gen; /* the epoch's generation, or 0 if the chunk is all zeros */
    uint8_t tag[TAG_SIZE];
};

struct epoch_job {
    struct cache *c;
    uint64_t epoch;
    uint64_t gen;     /* of every chunk this epoch uploads */
    struct upload *u;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    unsigned finished;
    int err;
    uint64_t sealed_bytes;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    /* Word at a time; chunks are 64 KiB aligned multiples. */
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < n / 8; i++)
        if (w[i])
            return false;
    return true;
}

static void *upload_worker(void *arg)
{
    struct epoch_job *job = arg;
    struct cache *c = job->c;
    struct seal_ctx *sc = NULL;
    size_t cap = seal_bound(c->chunk_size);
    uint8_t *plain = malloc(c->chunk_size), *obj = malloc(cap);
    int err = plain && obj ? seal_ctx_new(&sc) : ENOMEM;
    uint64_t sealed = 0;
    for (size_t j; !err && (j = atomic_fetch_add(&job->next, 1)) < job->n;) {
        struct upload *u = &job->u[j];
        u->new_gen = 0;
        memset(u->tag, 0, TAG_SIZE);
        if (c->fenced || c->local_err) {
            err = EROFS;
            break;
        }
        if (u->slot == SLOT_NONE)
            continue;
        err = slot_pread(c, u->slot, plain, c->chunk_size, 0);
        if (err)
            break;
        atomic_fetch_sub(&c->uploading_left, c->chunk_size);
        if (all_zero(plain, c->chunk_size))
            continue; /* zeros are never stored: an absent chunk reads as zeros */
        struct seal_id id = {.kind = SEAL_KIND_CHUNK, .index = u->index, .gen = job->gen};
        size_t len;
        err = seal_object(sc, &c->keys, &c->cfg.seal, &id, plain, c->chunk_size, obj, cap, &len);
        if (err)
            break;
        char key[KEY_LEN], what[96];
        key_chunk(c, u->index, job->gen, key, sizeof key);
        snprintf(what, sizeof what, "chunk 0x%x gen %llx: PUT", u->index,
                 (unsigned long long)job->gen);
        err = volume_put(c, what, 0, key, obj, len);
        if (!err) {
            u->new_gen = job->gen;
            err = seal_tag(obj, len, u->tag);
            sealed += len;
            atomic_fetch_add(&c->bytes_uploaded, len);
            atomic_fetch_add(&c->objects_put, 1);
        }
    }
    seal_ctx_free(sc);
    free(plain);
    free(obj);
    pthread_mutex_lock(&job->lock);
    if (err && !job->err)
        job->err = err;
    job->sealed_bytes += sealed;
    job->finished++;
    pthread_cond_broadcast(&job->done_cv);
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

/* Step 1. Returns the frozen chunks (malloc'd), *n of them; NULL on ENOMEM
 * (nothing frozen then). */
static struct upload *freeze(struct cache *c, size_t *n, uint64_t *epoch, uint64_t *gen)
{
    pthread_rwlock_wrlock(&c->freeze);
    pthread_mutex_lock(&c->lock);
    /* live_dirty counts exactly the chunks to freeze. */
    size_t cap = c->live_dirty ? c->live_dirty : 1, k = 0;
    struct upload *u = c->gen_seq < UINT32_MAX ? malloc(cap * sizeof *u) : NULL;
    if (u) {
        *epoch = c->next_epoch++;
        *gen = c->token << 32 | ++c->gen_seq;
        for (uint32_t i = 0; i < c->nchunks; i++) {
            struct chunk *ch = &c->chunks[i];
            if (ch->lslot == SLOT_NONE && !ch->lzero)
                continue;
            if (k == cap) { /* live_dirty out of step: a bug, but freeze them all */
                struct upload *bigger = realloc(u, 2 * cap * sizeof *u);
                if (!bigger)
                    break; /* the rest stays live for the next epoch */
                u = bigger;
                cap *= 2;
            }
            ch->fslot = ch->lslot;
            ch->fzero = ch->lzero;
            ch->lslot = SLOT_NONE;
            ch->lzero = 0;
            u[k++] = (struct upload){.index = i, .slot = ch->fslot};
        }
        c->live_dirty = 0;
        for (uint32_t i = 0; i < c->nchunks; i++) /* normally none are left */
            c->live_dirty += c->chunks[i].lslot != SLOT_NONE || c->chunks[i].lzero;
        /* Writers waiting at -dirty-max may go on now: the frozen epoch
         * has room of its own (wait_for_dirty_room). */
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_unlock(&c->freeze);
    *n = k;
    return u;
}

/* The epoch failed (abandoned): its frozen state becomes live again unless
 * a newer live state replaced it. */
static void unfreeze(struct cache *c, struct upload *u, size_t n)
{
    pthread_mutex_lock(&c->lock);
    for (size_t j = 0; j < n; j++) {
        struct chunk *ch = &c->chunks[u[j].index];
        if (ch->lslot != SLOT_NONE || ch->lzero) {
            if (ch->fslot != SLOT_NONE) {
                slot_release(c, ch->fslot);
                c->dirty_slots--;
            }
        } else {
            ch->lslot = ch->fslot;
            ch->lzero = ch->fzero;
            c->live_dirty++;
        }
        ch->fslot = SLOT_NONE;
        ch->fzero = 0;
        mark_index_dirty(c, u[j].index);
    }
    c->next_epoch--;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

/* Step 4; returns the superseded (index, gen) pairs to retire in *old. */
static size_t commit_locally(struct cache *c, uint64_t epoch, struct upload *u, size_t n,
                             uint64_t *old_idx, uint64_t *old_gen)
{
    size_t nold = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t j = 0; j < n; j++) {
        struct chunk *ch = &c->chunks[u[j].index];
        if (ch->gen && ch->gen != u[j].new_gen) {
            old_idx[nold] = u[j].index;
            old_gen[nold++] = ch->gen;
        }
        ch->gen = u[j].new_gen;
        memcpy(ch->tag, u[j].tag, TAG_SIZE);
        if (ch->cslot != SLOT_NONE) {
            lru_remove(c, u[j].index);
            slot_release(c, ch->cslot);
            ch->cslot = SLOT_NONE;
        }
        if (ch->fslot != SLOT_NONE) {
            c->dirty_slots--;
            if (ch->gen) {
                ch->cslot = ch->fslot;
                lru_touch(c, u[j].index);
            } else {
                slot_release(c, ch->fslot); /* all zeros: nothing to keep */
            }
        }
        ch->fslot = SLOT_NONE;
        ch->fzero = 0;
        mark_index_dirty(c, u[j].index);
    }
    c->committed_epoch = epoch;
    pthread_mutex_unlock(&c->lock);
    return nold;
}

static int run_epoch(struct cache *c, bool progress)
{
    size_t n;
    uint64_t epoch, gen;
    struct upload *u = freeze(c, &n, &epoch, &gen);
    if (!u)
        return ENOMEM;
    if (n == 0) {
        pthread_mutex_lock(&c->lock);
        c->next_epoch--;
        pthread_mutex_unlock(&c->lock);
        free(u);
        return 0;
    }
    size_t nslots = 0;
    for (size_t j = 0; j < n; j++)
        nslots += u[j].slot != SLOT_NONE;
    uint64_t bytes = (uint64_t)nslots * c->chunk_size;
    atomic_store(&c->uploading_left, bytes);
    cache_log(c, USBD_LOG_INFO, "epoch %llu: uploading %zu chunks (%llu bytes)",
              (unsigned long long)epoch, n, (unsigned long long)bytes);
    double t0 = now_s();

    struct epoch_job job = {.c = c, .epoch = epoch, .gen = gen, .u = u, .n = n};
    pthread_mutex_init(&job.lock, NULL);
    pthread_cond_init(&job.done_cv, NULL);
    unsigned nw = c->cfg.flush_workers < n ? c->cfg.flush_workers : (unsigned)n, started = 0;
    pthread_t tids[64];
    for (unsigned w = 0; w < nw && w < 64; w++)
        if (pthread_create(&tids[w], NULL, upload_worker, &job) == 0)
            started++;
    if (!started)
        upload_worker(&job); /* no thread to spare: do it here */
    pthread_mutex_lock(&job.lock);
    uint64_t last_left = bytes;
    double last_t = t0;
    while (job.finished < (started ? started : 1)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3;
        if (pthread_cond_timedwait(&job.done_cv, &job.lock, &until) == ETIMEDOUT && progress) {
            uint64_t left = atomic_load(&c->uploading_left);
            double t = now_s();
            cache_log(c, USBD_LOG_INFO, "flushing to the store: %.1f MiB left, %.1f MiB/s",
                      left / 1048576.0, (double)(last_left - left) / 1048576.0 / (t - last_t));
            last_left = left;
            last_t = t;
        }
    }
    pthread_mutex_unlock(&job.lock);
    for (unsigned w = 0; w < started; w++)
        pthread_join(tids[w], NULL);
    int err = job.err;

    struct map_entry *e = malloc(n * sizeof *e);
    uint64_t *old_idx = malloc(n * sizeof *old_idx), *old_gen = malloc(n * sizeof *old_gen);
    if (!err && (!e || !old_idx || !old_gen))
        err = ENOMEM;
    for (size_t j = 0; !err && j < n; j++) {
        e[j].index = u[j].index;
        e[j].gen = u[j].new_gen;
        memcpy(e[j].tag, u[j].tag, TAG_SIZE);
    }
    char why[256] = "";
    if (!err) {
        err = records_commit(c, epoch, e, n, false, why, sizeof why);
        if (err == EEXIST) {
            cache_fence(c, why);
            err = EROFS;
        }
    }
    if (err) {
        cache_log(c, USBD_LOG_WARN, "epoch %llu not committed (%s): its %zu chunks stay dirty",
                  (unsigned long long)epoch, strerror(err), n);
        unfreeze(c, u, n);
    } else {
        size_t nold = commit_locally(c, epoch, u, n, old_idx, old_gen);
        int perr = index_persist(c);
        double t = now_s() - t0;
        cache_log(c, USBD_LOG_INFO, "epoch %llu committed: %zu chunks, %.1f MiB sealed into "
                  "%.1f MiB in %.2fs%s", (unsigned long long)epoch, n, bytes / 1048576.0,
                  job.sealed_bytes / 1048576.0, t, perr ? " (local index not saved)" : "");
        c->mark.epoch = epoch;
        (void)mark_save(c); /* logged; the next commit writes it again */
        /* The store's map no longer names them (after the persist, so a
         * crash cannot leave the local index pointing at deleted objects
         * without the epoch record that explains it). Leftovers are
         * collected at the next open. */
        for (size_t j = 0; j < nold; j++)
            lease_retire(c, old_idx[j], old_gen[j], epoch);
        lease_collect_retired(c);
        if (epoch - c->checkpoint_epoch >= CHECKPOINT_EVERY)
            (void)records_put_checkpoint(c, epoch); /* logged; retried next epoch */
    }
    pthread_mutex_lock(&c->lock);
    if (!err)
        c->last_store_err = 0;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_destroy(&job.lock);
    pthread_cond_destroy(&job.done_cv);
    free(e);
    free(old_idx);
    free(old_gen);
    free(u);
    return err;
}

static void *flusher_main(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ms = c->cfg.flush_every_ms;
        until.tv_sec += (time_t)(ms / 1000);
        until.tv_nsec += (long)(ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        c->flusher_idle = true;
        while (!c->stopping && !c->flush_requested)
            if (pthread_cond_timedwait(&c->flusher_cv, &c->lock, &until) == ETIMEDOUT)
                break;
        c->flusher_idle = false;
        c->flush_requested = false;
        if (c->stopping || c->live_dirty == 0 || c->cfg.read_only || c->fenced || c->local_err)
            continue;
        pthread_mutex_unlock(&c->lock);
        run_epoch(c, false);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int flusher_start(struct cache *c)
{
    int err = pthread_create(&c->flusher, NULL, flusher_main, c);
    c->flusher_started = err == 0;
    return err;
}

void flusher_stop(struct cache *c)
{
    if (!c->flusher_started)
        return;
    c->flusher_started = false;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->flusher, NULL);
}

int flusher_drain(struct cache *c)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        uint64_t dirty = c->live_dirty;
        bool abandoned = c->abandon;
        int stuck = c->fenced ? EROFS : c->local_err;
        pthread_mutex_unlock(&c->lock);
        if (dirty == 0)
            return 0;
        if (stuck)
            return stuck;
        if (abandoned)
            return c->last_store_err ? c->last_store_err : EINTR;
        int err = run_epoch(c, true);
        if (err && c->abandon)
            return err;
    }
}
