/* volume.c - the volume in the store: superblock, epoch records,
 * checkpoints, garbage, and the retry policy for the store.
 *
 *   <volume>/superblock          sealed with cipher none: its payload holds
 *                                the key check value, so a wrong key is told
 *                                apart from a damaged superblock
 *   <volume>/epochs/<e>          (index, generation) pairs epoch e made
 *                                current; generation 0 = the chunk is zeros
 *   <volume>/checkpoints/<e>     every chunk's generation as of epoch e
 *
 * The map as of the last committed epoch = the latest checkpoint plus the
 * epoch records after it, applied in order. A generation is the number of the
 * epoch that wrote it, so a chunk object's key never repeats with other
 * content once its epoch has committed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#define SB_MAGIC "USBDVOL\0"
#define SB_VERSION 1u
#define SB_PAYLOAD 64
#define SB_KCV_OFF 40

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ------------------------------------------------------------ retries */

static bool sleep_or_abandon(struct cache *c, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->lock);
    while (!c->abandon)
        if (pthread_cond_timedwait(&c->changed, &c->lock, &until) == ETIMEDOUT)
            break;
    bool abandoned = c->abandon;
    pthread_mutex_unlock(&c->lock);
    return abandoned;
}

int volume_retry(struct cache *c, const char *what, unsigned max_attempts, int (*op)(void *),
                 void *arg)
{
    unsigned cap_ms = 100;
    for (unsigned attempt = 1;; attempt++) {
        int err = op(arg);
        if (!err)
            return 0;
        bool retriable = objstore_err_retriable(err);
        if (max_attempts && (attempt >= max_attempts || !retriable))
            return err;
        /* Data that is not in the store yet must not be dropped: even a
         * "permanent" error (credentials, a full store) is retried, slowly,
         * because a person may fix it while writers wait. */
        unsigned max_ms = retriable ? 30000 : 60000;
        cap_ms = cap_ms * 2 > max_ms ? max_ms : cap_ms * 2;
        unsigned ms = cap_ms / 2 + (unsigned)(random() % (cap_ms / 2 + 1)); /* jitter */
        pthread_mutex_lock(&c->lock);
        c->last_store_err = err;
        pthread_mutex_unlock(&c->lock);
        cache_log(c, retriable ? USBD_LOG_WARN : USBD_LOG_ERROR, "%s failed: %s (retry %u in %.1fs)",
                  what, strerror(err), attempt, ms / 1000.0);
        if (sleep_or_abandon(c, ms))
            return err;
    }
}

/* --------------------------------------------------------- superblock */

struct put_args {
    struct cache *c;
    const char *key;
    const void *data;
    size_t len;
};

static int put_op(void *arg)
{
    struct put_args *a = arg;
    return objstore_put(a->c->store, a->key, a->data, a->len);
}



static int seal_small(struct cache *c, const struct seal_params *p, const struct seal_id *id,
                      const void *plain, size_t n, void **out, size_t *out_len)
{
    struct seal_ctx *sc;
    int err = seal_ctx_new(&sc);
    if (err)
        return err;
    size_t cap = seal_bound((uint32_t)n);
    *out = malloc(cap ? cap : 1);
    err = *out ? seal_object(sc, &c->keys, p, id, plain, (uint32_t)n, *out, cap, out_len) : ENOMEM;
    seal_ctx_free(sc);
    if (err) {
        free(*out);
        *out = NULL;
    }
    return err;
}

static int create_superblock(struct cache *c, const char *key)
{
    uint64_t size = c->cfg.size;
    uint32_t cs = c->cfg.chunk_size ? c->cfg.chunk_size : 4u << 20;
    if (size % cs) {
        cache_log(c, USBD_LOG_ERROR, "-size=%llu is not a multiple of -objsize=%u",
                  (unsigned long long)size, cs);
        return EINVAL;
    }
    uint8_t uuid[SEAL_UUID_SIZE];
    if (getrandom(uuid, sizeof uuid, 0) != sizeof uuid)
        return EIO;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    int err = seal_keys_derive(c->cfg.master_key, uuid, &c->keys);
    if (err)
        return err;
    /* Payload: 0 magic, 8 version, 16 size, 24 chunk size, 40 KCV; the
     * uuid is in the (MAC'd) header. */
    uint8_t p[SB_PAYLOAD] = {0};
    memcpy(p, SB_MAGIC, 8);
    p[8] = SB_VERSION;
    put_le64(p + 16, size);
    put_le64(p + 24, cs);
    memcpy(p + SB_KCV_OFF, c->keys.kcv, SEAL_KCV_SIZE);
    struct seal_params plain = {.comp = SEAL_COMP_NONE, .cipher = SEAL_CIPHER_NONE};
    struct seal_id id = {.kind = SEAL_KIND_SUPERBLOCK};
    void *obj;
    size_t len;
    err = seal_small(c, &plain, &id, p, sizeof p, &obj, &len);
    if (!err) {
        struct put_args a = {c, key, obj, len};
        err = volume_retry(c, "creating the superblock", 6, put_op, &a);
    }
    free(obj);
    if (err) {
        cache_log(c, USBD_LOG_ERROR, "cannot create volume '%s': writing %s: %s", c->cfg.volume,
                  key, strerror(err));
        return err;
    }
    memcpy(c->sb.uuid, uuid, sizeof uuid);
    c->sb.size = size;
    c->sb.chunk_size = cs;
    cache_log(c, USBD_LOG_INFO, "created volume '%s': %llu bytes in chunks of %u bytes", c->cfg.volume,
              (unsigned long long)size, cs);
    return 0;
}

int volume_open_superblock(struct cache *c)
{
    char key[KEY_LEN];
    key_superblock(c, key, sizeof key);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    int err;
    unsigned attempts = 0;
    do { /* the store may be starting: a few quick retries, then say so */
        err = objstore_get(c->store, key, 4096, &b);
        if (err && objstore_err_retriable(err) && ++attempts < 5)
            sleep_or_abandon(c, 200u << attempts);
        else
            break;
    } while (1);
    if (err == ENOENT) {
        if (!c->cfg.size) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s' does not exist in the store: give -size to "
                      "create it", c->cfg.volume);
            return ENOENT;
        }
        /* Local state without a volume in the store: a wrong -store,
         * bucket or prefix (or an unmounted one). Creating a fresh volume
         * there would later serve a blank disk from the store alone. */
        char idx[4200];
        snprintf(idx, sizeof idx, "%s/index/data.mdb", c->vol_dir);
        if (access(idx, F_OK) == 0) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s' has local state in %s but the store has no "
                      "such volume: is the store (-store, or -s3-bucket/-s3-prefix) the right "
                      "one? Not creating a new volume over it; to start afresh, delete %s",
                      c->cfg.volume, c->vol_dir, c->vol_dir);
            return EEXIST;
        }
        return create_superblock(c, key);
    }
    if (err) {
        cache_log(c, USBD_LOG_ERROR, "cannot read the superblock of volume '%s' (%s): %s",
                  c->cfg.volume, key, strerror(err));
        return err;
    }
    struct seal_hdr h;
    err = seal_peek(b.data, b.len, &h);
    uint8_t p[SB_PAYLOAD];
    uint32_t n = 0;
    if (!err)
        err = seal_keys_derive(c->cfg.master_key, h.uuid, &c->keys);
    if (!err) {
        struct seal_ctx *sc;
        err = seal_ctx_new(&sc);
        struct seal_id id = {.kind = SEAL_KIND_SUPERBLOCK};
        if (!err)
            err = seal_open(sc, &c->keys, &id, b.data, b.len, p, sizeof p, &n);
        seal_ctx_free(sc);
    }
    if (err == EBADMSG && h.cipher == SEAL_CIPHER_NONE && h.stored_len == SB_PAYLOAD &&
        !seal_kcv_equal(&c->keys, (const uint8_t *)b.data + SEAL_HDR_SIZE + SB_KCV_OFF)) {
        objstore_buf_free(&b);
        cache_log(c, USBD_LOG_ERROR, "wrong key for volume '%s' (its key check value does not "
                  "match): nothing was written", c->cfg.volume);
        return EACCES;
    }
    objstore_buf_free(&b);
    if (!err && (n != SB_PAYLOAD || memcmp(p, SB_MAGIC, 8) != 0 || p[8] != SB_VERSION))
        err = EPROTO;
    if (err) {
        cache_log(c, USBD_LOG_ERROR, "superblock of volume '%s' is damaged or tampered with (%s)",
                  c->cfg.volume, strerror(err));
        return err == EACCES ? err : EBADMSG;
    }
    memcpy(c->sb.uuid, h.uuid, SEAL_UUID_SIZE);
    c->sb.size = get_le64(p + 16);
    c->sb.chunk_size = (uint32_t)get_le64(p + 24);
    memcpy(c->sb.kcv, p + SB_KCV_OFF, SEAL_KCV_SIZE);
    if (c->cfg.size && c->cfg.size != c->sb.size) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s' has %llu bytes but -size asks for %llu: omit "
                  "-size or give the volume's size", c->cfg.volume,
                  (unsigned long long)c->sb.size, (unsigned long long)c->cfg.size);
        return EINVAL;
    }
    if (c->cfg.chunk_size && c->cfg.chunk_size != c->sb.chunk_size) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s' has chunks of %u bytes, fixed at creation; "
                  "-objsize=%u differs", c->cfg.volume, c->sb.chunk_size, c->cfg.chunk_size);
        return EINVAL;
    }
    return 0;
}

/* ----------------------------------------------------- epochs, checkpoints */

/* Seal a list of (index, gen) pairs as kind/number and put it, retrying. */
static int put_map(struct cache *c, enum seal_kind kind, uint64_t number, const uint64_t *idx,
                   const uint64_t *gen, size_t n, const char *key, const char *what)
{
    size_t plen = 24 + 16 * n;
    uint8_t *p = malloc(plen);
    if (!p)
        return ENOMEM;
    put_le64(p, number);
    put_le64(p + 8, c->nchunks);
    put_le64(p + 16, n);
    for (size_t j = 0; j < n; j++) {
        put_le64(p + 24 + 16 * j, idx ? idx[j] : j);
        put_le64(p + 32 + 16 * j, gen[j]);
    }
    struct seal_id id = {.kind = kind, .index = number, .gen = number};
    void *obj = NULL;
    size_t len = 0;
    int err = seal_small(c, &c->cfg.seal, &id, p, plen, &obj, &len);
    free(p);
    if (!err) {
        struct put_args a = {c, key, obj, len};
        err = volume_retry(c, what, 0, put_op, &a);
    }
    free(obj);
    return err;
}

int volume_put_epoch(struct cache *c, uint64_t epoch, const uint64_t *idx, const uint64_t *gen,
                     size_t n)
{
    char key[KEY_LEN], what[64];
    key_epoch(c, epoch, key, sizeof key);
    snprintf(what, sizeof what, "epoch %llu: commit record", (unsigned long long)epoch);
    return put_map(c, SEAL_KIND_EPOCH, epoch, idx, gen, n, key, what);
}

/* Call fn(arg, key) for every key under prefix after `after` (NULL: all),
 * in order, across pages. fn returns 0 to go on, LIST_STOP to stop, or an
 * errno to stop with that error. Returns 0 or the first error. */
#define LIST_STOP (-1)
static int list_each(struct cache *c, const char *prefix, const char *after,
                     int (*fn)(void *arg, const char *key), void *arg)
{
    struct objstore_list l = OBJSTORE_LIST_INIT;
    char *cursor = after ? strdup(after) : NULL;
    int err = after && !cursor ? ENOMEM : 0;
    while (!err) {
        err = objstore_list(c->store, prefix, cursor, 0, &l);
        int r = 0;
        for (size_t j = 0; !err && !r && j < l.count; j++)
            r = fn(arg, l.entries[j].key);
        if (r > 0)
            err = r;
        free(cursor);
        cursor = !err && !r && l.next ? strdup(l.next) : NULL;
        objstore_list_free(&l);
        if (!cursor)
            break;
    }
    free(cursor);
    return err;
}

struct delete_below_args {
    struct cache *c;
    const char *below;
};

static int delete_below_one(void *arg, const char *key)
{
    struct delete_below_args *a = arg;
    if (a->below && strcmp(key, a->below) >= 0)
        return LIST_STOP;
    (void)objstore_delete(a->c->store, key); /* garbage: best effort */
    return 0;
}

/* Delete every key under prefix that sorts before `below` (NULL: all). */
static void delete_below(struct cache *c, const char *prefix, const char *below)
{
    struct delete_below_args a = {c, below};
    (void)list_each(c, prefix, NULL, delete_below_one, &a);
}

int volume_put_checkpoint(struct cache *c, uint64_t epoch)
{
    uint64_t *gen = malloc(c->nchunks * sizeof *gen + 1);
    if (!gen)
        return ENOMEM;
    pthread_mutex_lock(&c->lock);
    for (uint64_t i = 0; i < c->nchunks; i++)
        gen[i] = c->chunks[i].gen;
    pthread_mutex_unlock(&c->lock);
    char key[KEY_LEN], what[64], prefix[KEY_LEN];
    key_checkpoint(c, epoch, key, sizeof key);
    snprintf(what, sizeof what, "checkpoint at epoch %llu", (unsigned long long)epoch);
    int err = put_map(c, SEAL_KIND_CHECKPOINT, epoch, NULL, gen, c->nchunks, key, what);
    free(gen);
    if (err)
        return err;
    /* Older checkpoints and the records they include are no longer needed. */
    snprintf(prefix, sizeof prefix, "%s/checkpoints/", c->cfg.volume);
    delete_below(c, prefix, key);
    char ekey[KEY_LEN];
    key_epoch(c, epoch + 1, ekey, sizeof ekey);
    snprintf(prefix, sizeof prefix, "%s/epochs/", c->cfg.volume);
    delete_below(c, prefix, ekey);
    c->checkpoint_epoch = epoch;
    cache_log(c, USBD_LOG_INFO, "checkpoint at epoch %llu written", (unsigned long long)epoch);
    return 0;
}

/* Get and open a map object; apply its pairs to gen[]. */
static int load_map(struct cache *c, enum seal_kind kind, uint64_t number, const char *key,
                    uint64_t *gen)
{
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    size_t plain_max = 24 + 16 * (size_t)c->nchunks;
    int err = objstore_get(c->store, key, seal_bound((uint32_t)plain_max), &b);
    uint8_t *p = err ? NULL : malloc(plain_max);
    uint32_t n = 0;
    if (!err && !p)
        err = ENOMEM;
    if (!err) {
        struct seal_ctx *sc;
        err = seal_ctx_new(&sc);
        struct seal_id id = {.kind = kind, .index = number, .gen = number};
        if (!err)
            err = seal_open(sc, &c->keys, &id, b.data, b.len, p, plain_max, &n);
        seal_ctx_free(sc);
    }
    objstore_buf_free(&b);
    uint64_t count = n >= 24 ? get_le64(p + 16) : 0;
    if (!err && (n < 24 || get_le64(p) != number || get_le64(p + 8) != c->nchunks ||
                 count > c->nchunks || n != 24 + 16 * count))
        err = EPROTO;
    for (uint64_t j = 0; !err && j < count; j++) {
        uint64_t i = get_le64(p + 24 + 16 * j), g = get_le64(p + 32 + 16 * j);
        if (i >= c->nchunks || g > number)
            err = EPROTO;
        else
            gen[i] = g;
    }
    free(p);
    if (err)
        cache_log(c, USBD_LOG_ERROR, "%s: %s", key,
                  err == EBADMSG ? "fails authentication (damaged, swapped or replayed)"
                                 : strerror(err));
    return err;
}

/* The number in ".../<16 hex>" keys. */
static bool key_number(const char *key, uint64_t *out)
{
    const char *s = strrchr(key, '/');
    char *end;
    if (!s || strlen(s + 1) != 16)
        return false;
    *out = strtoull(s + 1, &end, 16);
    return *end == 0;
}

static int keep_last(void *arg, const char *key)
{
    char **last = arg;
    free(*last);
    *last = strdup(key);
    return *last ? 0 : ENOMEM;
}

struct replay_args {
    struct cache *c;
    struct remote_state *rs;
};

/* Apply one epoch record; records must follow each other without a gap. */
static int replay_one(void *arg, const char *key)
{
    struct replay_args *a = arg;
    struct cache *c = a->c;
    uint64_t e;
    if (!key_number(key, &e) || e <= a->rs->epoch)
        return 0;
    if (e != a->rs->epoch + 1) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s': epoch record %llu is missing (next found: %llu): "
                  "the store lost data", c->cfg.volume, (unsigned long long)a->rs->epoch + 1,
                  (unsigned long long)e);
        return EBADMSG;
    }
    int err = load_map(c, SEAL_KIND_EPOCH, e, key, a->rs->gen);
    if (!err)
        a->rs->epoch = e;
    return err;
}

int volume_load_remote(struct cache *c, struct remote_state *rs)
{
    char prefix[KEY_LEN];
    memset(rs->gen, 0, c->nchunks * sizeof *rs->gen);
    rs->epoch = rs->checkpoint = 0;

    /* The latest checkpoint: the last key of its listing. */
    snprintf(prefix, sizeof prefix, "%s/checkpoints/", c->cfg.volume);
    char *last = NULL;
    int err = list_each(c, prefix, NULL, keep_last, &last);
    uint64_t cp = 0;
    if (!err && last && key_number(last, &cp)) {
        err = load_map(c, SEAL_KIND_CHECKPOINT, cp, last, rs->gen);
        rs->epoch = rs->checkpoint = cp;
    }
    free(last);

    /* Then every epoch record after it, in order. */
    char start[KEY_LEN];
    key_epoch(c, cp, start, sizeof start);
    snprintf(prefix, sizeof prefix, "%s/epochs/", c->cfg.volume);
    struct replay_args ra = {c, rs};
    if (!err)
        err = list_each(c, prefix, cp ? start : NULL, replay_one, &ra);
    return err;
}

struct gc_args {
    struct cache *c;
    const uint64_t *gen;
    size_t prefix_len, removed;
};

static int collect_one(void *arg, const char *key)
{
    struct gc_args *a = arg;
    unsigned long long i, g;
    char tail;
    if (sscanf(key + a->prefix_len, "%16llx-%16llx%c", &i, &g, &tail) != 2)
        return 0; /* not ours: leave it */
    if (i < a->c->nchunks && a->gen[i] == g)
        return 0;
    if (objstore_delete(a->c->store, key) == 0)
        a->removed++;
    return 0;
}

void volume_collect_garbage(struct cache *c, const uint64_t *gen)
{
    char prefix[KEY_LEN];
    snprintf(prefix, sizeof prefix, "%s/chunks/", c->cfg.volume);
    struct gc_args a = {c, gen, strlen(prefix), 0};
    (void)list_each(c, prefix, NULL, collect_one, &a); /* garbage: best effort */
    if (a.removed)
        cache_log(c, USBD_LOG_INFO, "removed %zu chunk objects no epoch refers to (an unfinished "
                  "epoch or superseded generations)", a.removed);
}
