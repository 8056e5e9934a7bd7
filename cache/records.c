/* records.c - the volume's map in the store: epoch records and checkpoints.
 *
 *   <volume>/epochs/<e>        the (index, generation, tag) triples epoch e
 *                              made current; generation 0: the chunk is zeros
 *   <volume>/checkpoints/<e>   every non-zero chunk as of epoch e
 *
 * The map as of the last committed epoch is the latest checkpoint plus the
 * records after it, applied in order without a gap. Payload of both kinds
 * (version 2; little-endian):
 *
 *      0  8  magic "USBDMAP2"
 *      8  8  number: the epoch
 *     16  8  chunks in the volume
 *     24  8  count of entries
 *     32  8  the writer's fencing token
 *     40  8  flags: MAP_TAKEOVER (a record that claims its token, no entries)
 *     48 16  the writer's owner id
 *     64     count x (index 8, generation 8, tag 16)
 *
 * Version 1 (before fencing: number, chunks, count, then (index, generation)
 * pairs) is still read; its entries have no tag and token 0.
 *
 * Fencing. A record is created, never replaced (objstore_create): of two
 * writers at the same epoch one lands, the other meets EEXIST and stops. A
 * new writer claims its token with a takeover record at the epoch after the
 * one it loaded; every record after it carries that token. A writer frozen
 * since before the takeover finds its next epoch taken. One gap remains: a
 * checkpoint at epoch e deletes the records up to e, so a writer still at
 * such an epoch could create one of those keys again. Its record would lie
 * below the checkpoint, which readers start from: invisible, but the writer
 * would take it for committed. So after every create the writer lists the
 * checkpoints from its epoch on; finding one means it was fenced.
 *
 * On a store without conditional creates (the probe in lease.c) the writer
 * re-reads the lease and checks that the key is free before each commit:
 * best effort, as the log says at start. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAP_MAGIC "USBDMAP2"
#define MAP_HDR 64
#define MAP_ENTRY 32
#define MAP_V1_HDR 24
#define MAP_V1_ENTRY 16
#define MAP_TAKEOVER 1u

static size_t map_max_plain(const struct cache *c)
{
    return MAP_HDR + MAP_ENTRY * (size_t)c->nchunks;
}

static int encode_map(struct cache *c, uint64_t number, const struct map_entry *e, size_t n,
                      uint64_t flags, uint8_t **out, size_t *len)
{
    *len = MAP_HDR + MAP_ENTRY * n;
    uint8_t *p = calloc(1, *len);
    if (!p)
        return ENOMEM;
    memcpy(p, MAP_MAGIC, 8);
    le64_put(p + 8, number);
    le64_put(p + 16, c->nchunks);
    le64_put(p + 24, n);
    le64_put(p + 32, c->token);
    le64_put(p + 40, flags);
    memcpy(p + 48, c->owner, 16);
    for (size_t j = 0; j < n; j++) {
        uint8_t *q = p + MAP_HDR + MAP_ENTRY * j;
        le64_put(q, e[j].index);
        le64_put(q + 8, e[j].gen);
        memcpy(q + 16, e[j].tag, TAG_SIZE);
    }
    *out = p;
    return 0;
}

/* A generation a record of epoch `number` by token may name: one of that
 * token or an earlier one; an old-style generation is an epoch number. */
static bool gen_plausible(uint64_t g, uint64_t number, uint64_t token)
{
    return GEN_TOKEN(g) ? GEN_TOKEN(g) <= token : g <= number;
}

/* Check a record's payload and apply its entries to rs. */
static int apply_map(struct cache *c, uint64_t number, const uint8_t *p, uint32_t n,
                     struct remote_state *rs)
{
    bool v2 = n >= MAP_HDR && memcmp(p, MAP_MAGIC, 8) == 0;
    size_t hdr = v2 ? MAP_HDR : MAP_V1_HDR, esz = v2 ? MAP_ENTRY : MAP_V1_ENTRY;
    size_t off = v2 ? 8 : 0;
    if (n < hdr || le64_get(p + off) != number || le64_get(p + off + 8) != c->nchunks)
        return EPROTO;
    uint64_t count = le64_get(p + off + 16);
    if (count > c->nchunks || n != hdr + esz * count)
        return EPROTO;
    uint64_t token = v2 ? le64_get(p + 32) : 0;
    if (v2 && token > TOKEN_MAX)
        return EPROTO;
    for (uint64_t j = 0; j < count; j++) {
        const uint8_t *q = p + hdr + esz * j;
        uint64_t i = le64_get(q), g = le64_get(q + 8);
        if (i >= c->nchunks || !gen_plausible(g, number, token))
            return EPROTO;
        rs->gen[i] = g;
        if (v2)
            memcpy(rs->tag[i], q + 16, TAG_SIZE);
        else
            memset(rs->tag[i], 0, TAG_SIZE);
    }
    if (token < rs->token)
        cache_log(c, USBD_LOG_WARN, "volume '%s': epoch %llu was written by token %llu after "
                  "token %llu took over: two writers wrote this volume (on a store without "
                  "conditional creates, fencing is best effort)", c->cfg.volume,
                  (unsigned long long)number, (unsigned long long)token,
                  (unsigned long long)rs->token);
    if (token >= rs->token) {
        rs->token = token;
        if (v2)
            memcpy(rs->owner, p + 48, 16);
    }
    return 0;
}

static int load_map(struct cache *c, enum seal_kind kind, uint64_t number, const char *key,
                    struct remote_state *rs)
{
    uint8_t *p;
    uint32_t n;
    struct seal_id id = {.kind = kind, .index = number, .gen = number};
    int err = volume_get_open(c, key, &id, map_max_plain(c), &p, &n);
    if (!err)
        err = apply_map(c, number, p, n, rs);
    free(p);
    if (err)
        cache_log(c, USBD_LOG_ERROR, "%s: %s", key,
                  err == EBADMSG ? "fails authentication (damaged, swapped or replayed)"
                  : err == EPROTO ? "is not a valid record (damaged, or written by a newer "
                                    "version)"
                                  : strerror(err));
    return err;
}

struct last_args {
    struct cache *c;
    uint64_t last;
    bool found;
};

static int keep_last(void *arg, const char *key)
{
    struct last_args *a = arg;
    uint64_t n;
    if (key_parse_number(a->c, "checkpoints", key, &n)) {
        a->last = n;
        a->found = true;
    }
    return 0;
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
    if (!key_parse_number(c, "epochs", key, &e) || e <= a->rs->epoch)
        return 0;
    if (e != a->rs->epoch + 1) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s': epoch record %llu is missing (next found: %llu): "
                  "the store lost data", c->cfg.volume, (unsigned long long)a->rs->epoch + 1,
                  (unsigned long long)e);
        return EBADMSG;
    }
    int err = load_map(c, SEAL_KIND_EPOCH, e, key, a->rs);
    if (!err)
        a->rs->epoch = e;
    return err;
}

int records_load(struct cache *c, struct remote_state *rs)
{
    char prefix[KEY_LEN];
    memset(rs->gen, 0, c->nchunks * sizeof *rs->gen);
    memset(rs->tag, 0, c->nchunks * sizeof *rs->tag);
    memset(rs->owner, 0, sizeof rs->owner);
    rs->epoch = rs->checkpoint = rs->token = 0;

    snprintf(prefix, sizeof prefix, "%s/checkpoints/", c->cfg.volume);
    struct last_args la = {c, 0, false};
    int err = volume_list_each(c, prefix, NULL, keep_last, &la);
    if (!err && la.found) {
        char key[KEY_LEN];
        key_checkpoint(c, la.last, key, sizeof key);
        err = load_map(c, SEAL_KIND_CHECKPOINT, la.last, key, rs);
        rs->epoch = rs->checkpoint = la.last;
    }

    char start[KEY_LEN];
    key_epoch(c, rs->checkpoint, start, sizeof start);
    snprintf(prefix, sizeof prefix, "%s/epochs/", c->cfg.volume);
    struct replay_args ra = {c, rs};
    if (!err)
        err = volume_list_each(c, prefix, rs->checkpoint ? start : NULL, replay_one, &ra);
    return err;
}

/* ------------------------------------------------------------- commit */

struct create_args {
    struct cache *c;
    const char *key;
    const void *obj;
    size_t len;
    bool exists;
};

/* EEXIST is an answer, not a failure to retry. */
static int create_op(void *arg)
{
    struct create_args *a = arg;
    int err = objstore_create(a->c->store, a->key, a->obj, a->len);
    a->exists = err == EEXIST;
    return a->exists ? 0 : err;
}

struct get_args {
    struct cache *c;
    const char *key;
    size_t max;
    struct objstore_buf *b;
};

static int get_op(void *arg)
{
    struct get_args *a = arg;
    return objstore_get(a->c->store, a->key, a->max, a->b);
}

/* The record at key exists: is it the one we sealed (our create whose
 * reply was lost, repeated)? Sealing draws a fresh IV, so nobody else's
 * record has the same bytes. 0 if ours, EEXIST with who in why if not. */
static int existing_is_ours(struct cache *c, uint64_t epoch, const char *key, const void *obj,
                            size_t len, char *why, size_t whylen)
{
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    struct get_args ga = {c, key, len + 1, &b};
    char what[96];
    snprintf(what, sizeof what, "epoch %llu: reading the existing record", (unsigned long long)epoch);
    int err = volume_retry(c, what, 0, get_op, &ga);
    bool same = !err && b.len == len && memcmp(b.data, obj, len) == 0;
    objstore_buf_free(&b);
    if (same)
        return 0;
    if (err && err != EFBIG && err != ENOENT)
        return err; /* abandoned */
    struct remote_state one = {0};
    uint64_t *gen = calloc(c->nchunks, sizeof *gen);
    uint8_t(*tag)[TAG_SIZE] = calloc(c->nchunks, TAG_SIZE);
    one.gen = gen;
    one.tag = tag;
    uint8_t *p = NULL;
    uint32_t n = 0;
    struct seal_id id = {.kind = SEAL_KIND_EPOCH, .index = epoch, .gen = epoch};
    if (gen && tag && volume_get_open(c, key, &id, map_max_plain(c), &p, &n) == 0 &&
        apply_map(c, epoch, p, n, &one) == 0) {
        char hex[33];
        hex_owner(one.owner, hex);
        snprintf(why, whylen, "epoch %llu was committed by another writer (token %llu, owner %.8s)",
                 (unsigned long long)epoch, (unsigned long long)one.token, hex);
    } else {
        snprintf(why, whylen, "epoch %llu was committed by another writer", (unsigned long long)epoch);
    }
    free(p);
    free(gen);
    free(tag);
    return EEXIST;
}

struct newer_args {
    struct cache *c;
    uint64_t from, found;
};

static int note_newer(void *arg, const char *key)
{
    struct newer_args *a = arg;
    uint64_t n;
    if (key_parse_number(a->c, "checkpoints", key, &n) && n >= a->from) {
        a->found = n;
        return LIST_STOP;
    }
    return 0;
}

/* Is there a checkpoint at epoch or later (see the comment at the top)? */
static int newer_checkpoint(struct cache *c, uint64_t epoch, uint64_t *found)
{
    char prefix[KEY_LEN], after[KEY_LEN];
    snprintf(prefix, sizeof prefix, "%s/checkpoints/", c->cfg.volume);
    key_checkpoint(c, epoch - 1, after, sizeof after);
    struct newer_args a = {c, epoch, 0};
    int err = volume_list_each(c, prefix, after, note_newer, &a);
    *found = a.found;
    return err;
}

/* A store without conditional creates: the lease and the key, read just
 * before the put. Not atomic, hence "best effort". */
static int check_before_put(struct cache *c, uint64_t epoch, const char *key, bool takeover,
                            char *why, size_t whylen)
{
    if (!takeover) {
        struct lease l;
        char lkey[KEY_LEN];
        key_lease(c, lkey, sizeof lkey);
        struct seal_id lid = {.kind = SEAL_KIND_LEASE};
        uint8_t *p;
        uint32_t n;
        int err = volume_get_open(c, lkey, &lid, 4096, &p, &n);
        if (!err) {
            err = lease_decode(p, n, &l);
            free(p);
        }
        if (!err && (l.token > c->token || memcmp(l.owner, c->owner, 16) != 0)) {
            snprintf(why, whylen, "the lease names another writer (host %s, token %llu)", l.host,
                     (unsigned long long)l.token);
            return EEXIST;
        }
    }
    uint64_t size;
    int err = objstore_head(c->store, key, &size);
    if (err == 0) {
        snprintf(why, whylen, "epoch %llu was committed by another writer", (unsigned long long)epoch);
        return EEXIST;
    }
    return 0;
}

int records_commit(struct cache *c, uint64_t epoch, const struct map_entry *e, size_t n,
                   bool takeover, char *why, size_t whylen)
{
    uint8_t *plain;
    size_t plen;
    int err = encode_map(c, epoch, e, n, takeover ? MAP_TAKEOVER : 0, &plain, &plen);
    if (err)
        return err;
    struct seal_id id = {.kind = SEAL_KIND_EPOCH, .index = epoch, .gen = epoch};
    void *obj = NULL;
    size_t len = 0;
    err = volume_seal(c, &c->cfg.seal, &id, plain, plen, &obj, &len);
    free(plain);
    if (err)
        return err;
    char key[KEY_LEN], what[96];
    key_epoch(c, epoch, key, sizeof key);
    snprintf(what, sizeof what, "epoch %llu: commit record", (unsigned long long)epoch);
    struct create_args a = {c, key, obj, len, false};
    if (c->cond_create) {
        err = volume_retry(c, what, 0, create_op, &a);
        if (!err && a.exists)
            err = existing_is_ours(c, epoch, key, obj, len, why, whylen);
    } else {
        err = check_before_put(c, epoch, key, takeover, why, whylen);
        if (!err)
            err = volume_put(c, what, 0, key, obj, len);
    }
    free(obj);
    uint64_t found = 0;
    if (!err)
        err = newer_checkpoint(c, epoch, &found);
    if (!err && found) {
        snprintf(why, whylen, "the store has a checkpoint at epoch %llu, newer than this writer's "
                 "epoch %llu", (unsigned long long)found, (unsigned long long)epoch);
        err = EEXIST;
    }
    return err;
}

/* --------------------------------------------------------- checkpoints */

struct delete_below_args {
    struct cache *c;
    const char *dir;
    uint64_t below;
};

static int delete_below_one(void *arg, const char *key)
{
    struct delete_below_args *a = arg;
    uint64_t n;
    if (!key_parse_number(a->c, a->dir, key, &n))
        return 0; /* not a name this code makes: leave it */
    if (n >= a->below)
        return LIST_STOP;
    (void)objstore_delete(a->c->store, key); /* redundant now: best effort */
    return 0;
}

/* Delete <volume>/<dir>/<n> for every n below `below`. */
static void delete_below(struct cache *c, const char *dir, uint64_t below)
{
    char prefix[KEY_LEN];
    snprintf(prefix, sizeof prefix, "%s/%s/", c->cfg.volume, dir);
    struct delete_below_args a = {c, dir, below};
    (void)volume_list_each(c, prefix, NULL, delete_below_one, &a);
}

int records_put_checkpoint(struct cache *c, uint64_t epoch)
{
    struct map_entry *e = malloc((c->nchunks ? c->nchunks : 1) * sizeof *e);
    if (!e)
        return ENOMEM;
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (uint64_t i = 0; i < c->nchunks; i++) {
        if (!c->chunks[i].gen)
            continue;
        e[n].index = i;
        e[n].gen = c->chunks[i].gen;
        memcpy(e[n].tag, c->chunks[i].tag, TAG_SIZE);
        n++;
    }
    pthread_mutex_unlock(&c->lock);
    uint8_t *plain;
    size_t plen;
    int err = encode_map(c, epoch, e, n, 0, &plain, &plen);
    free(e);
    if (err)
        return err;
    struct seal_id id = {.kind = SEAL_KIND_CHECKPOINT, .index = epoch, .gen = epoch};
    void *obj = NULL;
    size_t len = 0;
    err = volume_seal(c, &c->cfg.seal, &id, plain, plen, &obj, &len);
    free(plain);
    char key[KEY_LEN], what[64];
    key_checkpoint(c, epoch, key, sizeof key);
    snprintf(what, sizeof what, "checkpoint at epoch %llu", (unsigned long long)epoch);
    if (!err)
        err = volume_put(c, what, 0, key, obj, len);
    free(obj);
    if (err)
        return err;
    /* Older checkpoints and the records they include are no longer needed. */
    delete_below(c, "checkpoints", epoch);
    delete_below(c, "epochs", epoch + 1);
    c->checkpoint_epoch = epoch;
    cache_log(c, USBD_LOG_INFO, "checkpoint at epoch %llu written", (unsigned long long)epoch);
    return 0;
}
