/* volume.c - the volume in the store: the superblock, garbage, and what
 * every store access shares (retries, listings, sealed small objects).
 *
 *   <volume>/superblock          sealed with cipher none: its payload holds
 *                                the key check value, so a wrong key is told
 *                                apart from a damaged superblock; created
 *                                with a conditional create, never replaced
 *   <volume>/chunks/<i>-<g>      chunk i, generation g (records.c, GEN_TOKEN)
 *   <volume>/epochs/<e>, checkpoints/<e>   the map (records.c)
 *   <volume>/lease, readers/<owner>        who writes, who reads (lease.c)
 */
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
    /* A fenced writer or a failed local disk stops retrying too: what it
     * would upload is no longer wanted or no longer vouched for. */
    pthread_mutex_lock(&c->lock);
    while (!c->abandon && !c->fenced && !c->local_err)
        if (pthread_cond_timedwait(&c->changed, &c->lock, &until) == ETIMEDOUT)
            break;
    bool abandoned = c->abandon || c->fenced || c->local_err;
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

int volume_put(struct cache *c, const char *what, unsigned max_attempts, const char *key,
               const void *obj, size_t len)
{
    struct put_args a = {c, key, obj, len};
    return volume_retry(c, what, max_attempts, put_op, &a);
}

/* Two boards creating one volume at once: one superblock wins, the other
 * board opens it (and finds its own key wrong) instead of replacing it. */
static int create_op(void *arg)
{
    struct put_args *a = arg;
    int err = objstore_create(a->c->store, a->key, a->data, a->len);
    return err == ENOTSUP ? objstore_put(a->c->store, a->key, a->data, a->len) : err;
}

int volume_seal(struct cache *c, const struct seal_params *p, const struct seal_id *id,
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
    le64_put(p + 16, size);
    le64_put(p + 24, cs);
    memcpy(p + SB_KCV_OFF, c->keys.kcv, SEAL_KCV_SIZE);
    struct seal_params plain = {.comp = SEAL_COMP_NONE, .cipher = SEAL_CIPHER_NONE};
    struct seal_id id = {.kind = SEAL_KIND_SUPERBLOCK};
    void *obj;
    size_t len;
    err = volume_seal(c, &plain, &id, p, sizeof p, &obj, &len);
    if (!err) {
        struct put_args a = {c, key, obj, len};
        err = volume_retry(c, "creating the superblock", 6, create_op, &a);
    }
    free(obj);
    if (err == EEXIST)
        return EEXIST; /* created by another board meanwhile: the caller reads it */
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

static int read_superblock(struct cache *c, bool may_create);

int volume_open_superblock(struct cache *c)
{
    return read_superblock(c, !c->cfg.read_only);
}

static int read_superblock(struct cache *c, bool may_create)
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
        if (!may_create && c->cfg.read_only) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s' does not exist in the store (-readonly "
                      "never creates one)", c->cfg.volume);
            return ENOENT;
        }
        if (!may_create) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s': the superblock vanished while it was "
                      "being created", c->cfg.volume);
            return EPROTO;
        }
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
        err = create_superblock(c, key);
        return err == EEXIST ? read_superblock(c, false) : err;
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
    c->sb.size = le64_get(p + 16);
    c->sb.chunk_size = (uint32_t)le64_get(p + 24);
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

/* ------------------------------------------------------------ listings */

int volume_list_each(struct cache *c, const char *prefix, const char *after,
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

struct gc_args {
    struct cache *c;
    const uint64_t *gen;
    size_t removed;
};

static int collect_one(void *arg, const char *key)
{
    struct gc_args *a = arg;
    uint64_t i, g;
    if (!key_parse_chunk(a->c, key, &i, &g))
        return 0; /* not a chunk name this code makes: leave it */
    if (i < a->c->nchunks && a->gen[i] == g)
        return 0;
    /* A generation of this writer's token or a later one may be an upload
     * in flight that a record is about to name (ours, or a writer who took
     * over since): never touched. Older tokens were fenced by ours. */
    if (GEN_TOKEN(g) >= a->c->token)
        return 0;
    if (objstore_delete(a->c->store, key) == 0)
        a->removed++;
    return 0;
}

void volume_collect_garbage(struct cache *c, const uint64_t *gen)
{
    if (!c->token)
        return; /* not the writer: nothing here is ours to delete */
    uint64_t pinned = lease_readers_min(c);
    if (pinned < c->committed_epoch) {
        cache_log(c, USBD_LOG_INFO, "not removing unreferenced chunk objects: a reader still "
                  "reads epoch %llu", (unsigned long long)pinned);
        return;
    }
    char prefix[KEY_LEN];
    snprintf(prefix, sizeof prefix, "%s/chunks/", c->cfg.volume);
    struct gc_args a = {c, gen, 0};
    (void)volume_list_each(c, prefix, NULL, collect_one, &a); /* garbage: best effort */
    if (a.removed)
        cache_log(c, USBD_LOG_INFO, "removed %zu chunk objects no epoch refers to (an unfinished "
                  "epoch or superseded generations)", a.removed);
}

int volume_get_open(struct cache *c, const char *key, const struct seal_id *id, size_t max,
                    uint8_t **plain, uint32_t *n)
{
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    *plain = NULL;
    *n = 0;
    int err = objstore_get(c->store, key, seal_bound((uint32_t)max), &b);
    uint8_t *p = err ? NULL : malloc(max ? max : 1);
    if (!err && !p)
        err = ENOMEM;
    if (!err) {
        struct seal_ctx *sc;
        err = seal_ctx_new(&sc);
        if (!err)
            err = seal_open(sc, &c->keys, id, b.data, b.len, p, max, n);
        seal_ctx_free(sc);
    }
    objstore_buf_free(&b);
    if (err)
        free(p);
    else
        *plain = p;
    return err;
}
