/* cache.c - opening and closing the object-store device.
 *
 * Start-up after an unclean shutdown needs no scan: the local index only
 * ever names a slot as clean if it holds exactly that generation (clean
 * slots are never written in place, and records are committed after the
 * slot file is synced), and dirty slots are recorded as dirty. What the
 * index may lack are writes after the last FLUSH, which NBD allows to lose.
 * The store is then read (checkpoint + epoch records) and the local index
 * brought up to it: an epoch that committed in the store just before the
 * crash updates the generations, and its chunks, still dirty locally, are
 * simply uploaded again.
 *
 * The order of an open: the superblock (the key checked); the lease, read
 * only, so a refused start writes nothing; the local lock and index; the
 * store's map, checked against this machine's rollback mark and against
 * the local changes (made under an older writer, they are not uploaded over
 * a newer one's); then, for writing, the takeover (lease.c); then the local
 * index brought up to the map and garbage removed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MIN_SLOTS 8

static int make_dir(struct cache *c, const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    int err = errno;
    cache_log(c, USBD_LOG_ERROR, "cannot create %s: %s", path, strerror(err));
    return err;
}

/* One daemon per local state: a second one would corrupt it. */
static int take_lock(struct cache *c)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", c->vol_dir);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0) {
        int err = errno;
        cache_log(c, USBD_LOG_ERROR, "cannot open %s: %s", path, strerror(err));
        return err;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t n = pread(c->lock_fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[strcspn(pid, "\n")] = 0;
        cache_log(c, USBD_LOG_ERROR, "local state %s is in use by another usbd-objstore (pid %s): "
                  "stop it first, or use another -store-dir", c->vol_dir, n > 0 ? pid : "?");
        return EBUSY;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, pid, (size_t)len, 0) != len)
        cache_log(c, USBD_LOG_WARN, "cannot write the pid into %s", path);
    return 0;
}

static int alloc_state(struct cache *c)
{
    c->chunks = calloc(c->nchunks, sizeof *c->chunks);
    c->slot_pins = calloc(c->nslots, sizeof *c->slot_pins);
    c->index_dirty = malloc(c->nchunks * sizeof *c->index_dirty);
    struct slot_list *lists[] = {&c->free_slots, &c->pending_free, &c->freeing};
    for (size_t j = 0; j < 3; j++) {
        /* Reserved once: a list never holds more than every slot. */
        lists[j]->v = malloc(c->nslots * sizeof *lists[j]->v);
        lists[j]->cap = c->nslots;
        if (!lists[j]->v)
            return ENOMEM;
    }
    if (!c->chunks || !c->slot_pins || !c->index_dirty)
        return ENOMEM;
    for (uint64_t i = 0; i < c->nchunks; i++) {
        struct chunk *k = &c->chunks[i];
        k->cslot = k->fslot = k->lslot = SLOT_NONE;
        k->lru_prev = k->lru_next = NO_CHUNK;
    }
    c->lru_head = c->lru_tail = NO_CHUNK;
    return 0;
}

/* Before anything is written: is the store's map one this machine can go
 * on from? */
static int check_remote(struct cache *c, const struct remote_state *rs, bool fresh,
                        uint64_t local_epoch)
{
    if (!fresh && rs->epoch < local_epoch) {
        cache_log(c, USBD_LOG_ERROR, "the store has volume '%s' at epoch %llu but this machine "
                  "committed epoch %llu: the store lost or rolled back data (or it is another "
                  "store); refusing to go on", c->cfg.volume, (unsigned long long)rs->epoch,
                  (unsigned long long)local_epoch);
        return EBADMSG;
    }
    if (c->mark.valid && (rs->epoch < c->mark.epoch || rs->token < c->mark.token)) {
        if (!c->cfg.accept_rollback) {
            cache_log(c, USBD_LOG_ERROR, "the store has volume '%s' at epoch %llu (token %llu) but "
                      "this machine has seen epoch %llu (token %llu): the store lost or rolled "
                      "back its newest records, or its listing is stale. Nothing was changed; if "
                      "the store was restored from a backup on purpose, start with "
                      "-accept-rollback", c->cfg.volume, (unsigned long long)rs->epoch,
                      (unsigned long long)rs->token, (unsigned long long)c->mark.epoch,
                      (unsigned long long)c->mark.token);
            return EBADMSG;
        }
        cache_log(c, USBD_LOG_WARN, "volume '%s': opening epoch %llu although this machine has "
                  "seen epoch %llu (-accept-rollback)", c->cfg.volume,
                  (unsigned long long)rs->epoch, (unsigned long long)c->mark.epoch);
    }
    return 0;
}

/* Local changes not in the store, made by a run whose token is older than
 * the store's newest (another writer took over since, maybe fencing this
 * board): uploading them would lay one history over another. */
static bool stale_changes(const struct cache *c, const struct remote_state *rs, bool fresh)
{
    if (fresh || !c->live_dirty)
        return false;
    return rs->token > c->local_token ||
           (rs->token == c->local_token && memcmp(rs->owner, c->local_owner, 16) != 0);
}

/* Bring the chunk map in line with the store's committed map. */
static void reconcile(struct cache *c, const struct remote_state *rs)
{
    for (uint64_t i = 0; i < c->nchunks; i++) {
        struct chunk *k = &c->chunks[i];
        if (k->gen == rs->gen[i]) {
            if (memcmp(k->tag, rs->tag[i], TAG_SIZE) != 0) {
                memcpy(k->tag, rs->tag[i], TAG_SIZE); /* learnt from a newer record */
                mark_index_dirty(c, (uint32_t)i);
            }
            continue;
        }
        k->gen = rs->gen[i];
        memcpy(k->tag, rs->tag[i], TAG_SIZE);
        if (k->cslot != SLOT_NONE) { /* holds an older generation */
            slot_release(c, k->cslot);
            k->cslot = SLOT_NONE;
        }
        mark_index_dirty(c, (uint32_t)i);
    }
}

/* Free slots = slots no chunk uses; every used slot used once. */
static int build_slot_lists(struct cache *c)
{
    uint8_t *used = calloc(c->nslots, 1);
    if (!used)
        return ENOMEM;
    int err = 0;
    for (uint64_t i = 0; i < c->nchunks && !err; i++) {
        struct chunk *k = &c->chunks[i];
        uint32_t s[2] = {k->cslot, k->lslot};
        for (int j = 0; j < 2; j++) {
            if (s[j] == SLOT_NONE)
                continue;
            if (used[s[j]]) {
                cache_log(c, USBD_LOG_ERROR, "local index %s: slot %u is used twice: the index "
                          "is damaged", c->vol_dir, s[j]);
                err = EBADMSG;
            }
            used[s[j]] = 1;
        }
        if (k->cslot != SLOT_NONE)
            lru_touch(c, (uint32_t)i);
    }
    for (size_t j = 0; j < c->pending_free.n; j++)
        used[c->pending_free.v[j]] = 1;
    for (uint32_t s = c->nslots; s-- > 0;)
        if (!used[s])
            slot_list_push(&c->free_slots, s);
    free(used);
    return err;
}

static void cache_free(struct cache *c)
{
    index_close(c);
    if (c->slot_fd >= 0)
        close(c->slot_fd);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    free(c->chunks);
    free(c->slot_pins);
    free(c->index_dirty);
    free(c->free_slots.v);
    free(c->pending_free.v);
    free(c->freeing.v);
    free(c->retired);
    free(c->vol_dir);
    seal_keys_wipe(&c->keys);
    seal_wipe(c->cfg.master_key, sizeof c->cfg.master_key);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->persist_lock);
    pthread_cond_destroy(&c->changed);
    pthread_cond_destroy(&c->flusher_cv);
    pthread_rwlock_destroy(&c->freeze);
    free(c);
}

static int open_local(struct cache *c)
{
    int err = alloc_state(c);
    bool fresh = false;
    if (!err)
        err = index_open(c, &fresh);
    struct remote_state rs = {.gen = calloc(c->nchunks, sizeof *rs.gen),
                              .tag = calloc(c->nchunks, TAG_SIZE)};
    if (!err && (!rs.gen || !rs.tag))
        err = ENOMEM;
    if (!err)
        err = records_load(c, &rs);
    uint64_t local_epoch = 0;
    if (!err && !fresh)
        err = index_load(c, &local_epoch);
    if (!err)
        err = check_remote(c, &rs, fresh, local_epoch);
    bool stale = !err && stale_changes(c, &rs, fresh);
    if (stale && !c->cfg.read_only) {
        cache_log(c, USBD_LOG_ERROR, "local state %s holds %llu chunks changed on this board that "
                  "are not in the store, but another writer (token %llu) has written volume '%s' "
                  "since (this board's token %llu): uploading them would mix two histories. They "
                  "are kept: move %s aside to start from the store (serve it with -readonly to "
                  "copy them out)", c->vol_dir, (unsigned long long)c->live_dirty,
                  (unsigned long long)rs.token, c->cfg.volume, (unsigned long long)c->local_token,
                  c->vol_dir);
        err = ESTALE;
    }
    if (!err && !c->cfg.read_only)
        err = lease_take(c, &rs);
    if (!err && stale) {
        /* -readonly over changes made under an older writer: this board's
         * own view as it stopped, for copying data out. */
        cache_log(c, USBD_LOG_WARN, "serving this board's own view of volume '%s' as of epoch "
                  "%llu with its %llu unsaved chunks, read-only (the store has epoch %llu by "
                  "another writer); chunks not cached here may fail to read", c->cfg.volume,
                  (unsigned long long)local_epoch, (unsigned long long)c->live_dirty,
                  (unsigned long long)rs.epoch);
        rs.epoch = local_epoch;
    } else if (!err) {
        reconcile(c, &rs);
    }
    if (!err) {
        c->committed_epoch = rs.epoch;
        c->checkpoint_epoch = rs.checkpoint;
        c->next_epoch = rs.epoch + 1;
        if (rs.epoch > c->mark.epoch)
            c->mark.epoch = rs.epoch;
        if (rs.token > c->mark.token)
            c->mark.token = rs.token;
        c->mark.valid = true;
        err = mark_save(c);
    }
    if (!err && fresh)
        err = index_init_meta(c);
    if (!err && !c->cfg.read_only)
        volume_collect_garbage(c, rs.gen);
    free(rs.gen);
    free(rs.tag);
    if (!err)
        err = slots_open(c);
    if (!err)
        err = build_slot_lists(c);
    if (!err)
        err = index_persist(c);
    if (!err && fresh && local_epoch == 0 && c->committed_epoch)
        cache_log(c, USBD_LOG_INFO, "local state rebuilt from the store alone (epoch %llu)",
                  (unsigned long long)c->committed_epoch);
    return err;
}

int cache_open(const struct cache_config *cfg, struct objstore *store, struct cache **out)
{
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->cfg = *cfg;
    c->store = store;
    c->lock_fd = c->slot_fd = -1;
    if (!c->cfg.log)
        c->cfg.log = usbd_log_stderr;
    if (!c->cfg.flush_every_ms)
        c->cfg.flush_every_ms = 10000;
    if (!c->cfg.flush_workers)
        c->cfg.flush_workers = 4;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->persist_lock, NULL);
    pthread_cond_init(&c->changed, NULL);
    pthread_cond_init(&c->flusher_cv, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers of the barrier (the freeze) must not starve under a steady
     * stream of writes. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->freeze, &ra);
    pthread_rwlockattr_destroy(&ra);

    uint32_t cs = cfg->chunk_size;
    int err = 0;
    if (cs && (cs < (64u << 10) || cs > (64u << 20) || (cs & (cs - 1)))) {
        cache_log(c, USBD_LOG_ERROR, "-objsize=%u: a power of two from 64KiB to 64MiB", cs);
        err = EINVAL;
    }
    size_t dl = strlen(cfg->state_dir) + strlen(cfg->volume) + 2;
    c->vol_dir = malloc(dl);
    if (!err && !c->vol_dir)
        err = ENOMEM;
    if (!err)
        snprintf(c->vol_dir, dl, "%s/%s", cfg->state_dir, cfg->volume);
    if (!err && getrandom(c->owner, sizeof c->owner, 0) != sizeof c->owner)
        err = EIO;
    /* The key is checked before anything is created or written; a start
     * refused by another writer's lease writes nothing either. */
    if (!err)
        err = volume_open_superblock(c);
    if (!err)
        mark_load(c);
    if (!err && !c->cfg.read_only)
        err = lease_check(c);
    if (!err && c->cfg.read_only)
        lease_pin(c, 0);
    if (!err)
        err = make_dir(c, cfg->state_dir, 0755);
    if (!err)
        err = make_dir(c, c->vol_dir, 0700);
    if (!err)
        err = take_lock(c);
    if (!err) {
        c->chunk_size = c->sb.chunk_size;
        c->chunk_shift = (uint32_t)__builtin_ctz(c->chunk_size);
        c->nchunks = c->sb.size / c->chunk_size;
        uint64_t cache = cfg->cache_size ? cfg->cache_size : c->sb.size;
        uint64_t slots = cache / c->chunk_size;
        c->nslots = (uint32_t)(slots < MIN_SLOTS ? MIN_SLOTS : slots > UINT32_MAX - 1 ? UINT32_MAX - 1 : slots);
        uint64_t dmax = cfg->dirty_max ? cfg->dirty_max / c->chunk_size : c->nslots / 2;
        /* Dirty chunks need room besides themselves: their frozen copies
         * and the clean chunks reads bring in. */
        if (dmax > c->nslots / 2) {
            if (cfg->dirty_max)
                cache_log(c, USBD_LOG_WARN, "-dirty-max above half of -cache-size: using %llu bytes",
                          (unsigned long long)(c->nslots / 2) * c->chunk_size);
            dmax = c->nslots / 2;
        }
        c->dirty_max_slots = dmax ? dmax : 1;
        err = open_local(c);
    }
    if (!err)
        err = flusher_start(c);
    if (!err && c->cfg.read_only)
        lease_pin(c, c->committed_epoch);
    if (!err)
        err = lease_start(c);
    if (err) {
        if (c->flusher_started)
            flusher_stop(c);
        lease_stop(c, c->cfg.read_only); /* a reader's pin goes; a writer's lease expires */
        cache_free(c);
        return err;
    }
    readahead_start(c);
    uint64_t dirty = c->live_dirty;
    cache_log(c, USBD_LOG_INFO, "volume '%s': %llu chunks of %u KiB, epoch %llu, %u cache slots "
              "(%llu in use), %llu chunks to upload", c->cfg.volume, (unsigned long long)c->nchunks,
              c->chunk_size >> 10, (unsigned long long)c->committed_epoch, c->nslots,
              (unsigned long long)(c->nslots - c->free_slots.n), (unsigned long long)dirty);
    if (dirty && !c->cfg.read_only)
        cache_flush_soon(c);
    *out = c;
    return 0;
}

void cache_device(struct cache *c, struct usbd_dev *dev)
{
    /* A request is applied whole inside one epoch, so all its chunks need
     * live slots at once: keep it within a quarter of the cache. */
    uint64_t max = (uint64_t)(c->nslots / 4 ? c->nslots / 4 : 1) * c->chunk_size;
    uint64_t cap = c->chunk_size > (32u << 20) ? c->chunk_size : (32u << 20);
    *dev = (struct usbd_dev){
        .ops = &cache_dev_ops,
        .priv = c,
        .size = c->sb.size,
        .min_block = 1,
        .pref_block = c->chunk_size,
        .max_block = (uint32_t)(max < cap ? max : cap),
        .description = "usbd-objstore volume",
    };
}

void cache_volume_uuid(const struct cache *c, uint8_t uuid[SEAL_UUID_SIZE])
{
    memcpy(uuid, c->sb.uuid, SEAL_UUID_SIZE);
}

void cache_flush_soon(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    c->flush_requested = true;
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_mutex_unlock(&c->lock);
}

void cache_abandon(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    c->abandon = true;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

bool cache_read_only_now(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    bool ro = c->fenced || c->local_err;
    pthread_mutex_unlock(&c->lock);
    return ro;
}

uint64_t cache_dirty_bytes(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t n = c->dirty_slots * c->chunk_size;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int cache_close(struct cache *c)
{
    if (!c)
        return 0;
    readahead_stop(c);
    flusher_stop(c);
    uint64_t dirty = cache_dirty_bytes(c);
    if (dirty && !cache_read_only_now(c) && !c->cfg.read_only)
        cache_log(c, USBD_LOG_INFO, "flushing %.1f MiB to the store before exit",
                  dirty / 1048576.0);
    int err = c->cfg.read_only ? 0 : flusher_drain(c);
    int perr = index_persist(c);
    /* Released only with everything in the store: a lease left to expire
     * says that this board stopped with changes of its own. */
    lease_stop(c, !err && !perr);
    if (err) {
        cache_log(c, USBD_LOG_WARN, "stopped with %.1f MiB not in the store (%s): it is kept in %s "
                  "and uploaded at the next start", cache_dirty_bytes(c) / 1048576.0,
                  strerror(err), c->vol_dir);
    } else if (dirty) {
        cache_log(c, USBD_LOG_INFO, "everything is in the store (epoch %llu)",
                  (unsigned long long)c->committed_epoch);
    }
    cache_log(c, USBD_LOG_INFO, "this run: %llu chunks fetched (%llu by read-ahead, %.1f MiB), "
              "%llu objects put (%.1f MiB)", (unsigned long long)c->objects_fetched,
              (unsigned long long)c->fetched_ahead, c->bytes_fetched / 1048576.0,
              (unsigned long long)c->objects_put, c->bytes_uploaded / 1048576.0);
    cache_free(c);
    return err ? err : perr;
}
