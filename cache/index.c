/* index.c - the local index in LMDB: one record per chunk (generation and
 * its tag, clean slot, newest dirty slot) and the volume's settings.
 *
 * Ordering is what makes it crash-safe: index_persist() makes the slot file
 * durable (fdatasync) before it commits records that point into it, and a
 * slot freed in memory only becomes reusable after a commit that no longer
 * points to it. LMDB commits are durable and atomic (MDB's default sync).
 *
 * A failed fdatasync or LMDB commit is never retried into success: the
 * kernel reports a writeback error once, so a later fdatasync that passes
 * proves nothing about the pages that failed. c->local_err then makes the
 * volume read-only and stops uploads until a restart (which reads only what
 * the last successful commit recorded).
 *
 * Format 2 (this code) adds the tag to chunk records and the writer's token
 * and owner id to the settings; format 1 is read and upgraded in place. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define INDEX_FORMAT 2

static int lmdb_error(struct cache *c, const char *what, int rc)
{
    bool damaged = rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_PAGE_NOTFOUND ||
                   rc == MDB_VERSION_MISMATCH;
    cache_log(c, USBD_LOG_ERROR, "local index %s/index: %s: %s%s", c->vol_dir, what,
              mdb_strerror(rc),
              damaged ? " (the index is damaged: move the state directory aside to rebuild it "
                        "from the store; data not yet uploaded is only in it)"
                      : "");
    return damaged ? EBADMSG : rc > 0 ? rc : EIO;
}

/* Once: the local disk lost writes we cannot name, so nothing here is
 * vouched for any more (see the top of this file). */
static void local_failed(struct cache *c, const char *what, int err)
{
    pthread_mutex_lock(&c->lock);
    bool first = !c->local_err;
    if (first)
        c->local_err = err;
    pthread_cond_broadcast(&c->changed);
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_mutex_unlock(&c->lock);
    if (first)
        cache_log(c, USBD_LOG_ERROR, "%s: %s: the local disk (%s) failed a write; the volume is "
                  "read-only and nothing more is uploaded until a restart, which goes on from the "
                  "last state the disk confirmed (check the disk: dmesg)", what, strerror(err),
                  c->vol_dir);
}

int index_open(struct cache *c, bool *fresh)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index", c->vol_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        int err = errno;
        cache_log(c, USBD_LOG_ERROR, "cannot create %s: %s", path, strerror(err));
        return err;
    }
    int rc = mdb_env_create(&c->env);
    if (rc)
        return lmdb_error(c, "create", rc);
    /* Records are 24 bytes; leave ample room, LMDB maps lazily. */
    size_t map = (size_t)64 << 20;
    map += (size_t)c->nchunks * 256;
    mdb_env_set_mapsize(c->env, map);
    mdb_env_set_maxdbs(c->env, 4);
    rc = mdb_env_open(c->env, path, MDB_NOTLS, 0600);
    if (rc) {
        mdb_env_close(c->env);
        c->env = NULL;
        return lmdb_error(c, "open", rc);
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->db_meta);
    if (!rc)
        rc = mdb_dbi_open(txn, "chunks", MDB_CREATE | MDB_INTEGERKEY, &c->db_chunks);
    MDB_val k = {.mv_size = 4, .mv_data = "uuid"}, v;
    int got = rc ? rc : mdb_get(txn, c->db_meta, &k, &v);
    *fresh = got == MDB_NOTFOUND;
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc ? lmdb_error(c, "open databases", rc) : 0;
}

int index_put_meta_u64(MDB_txn *txn, struct cache *c, const char *key, uint64_t v)
{
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key};
    MDB_val d = {.mv_size = sizeof v, .mv_data = &v};
    return mdb_put(txn, c->db_meta, &k, &d, 0);
}

static int get_meta_u64(MDB_txn *txn, struct cache *c, const char *key, uint64_t *v)
{
    MDB_val k = {.mv_size = strlen(key), .mv_data = (void *)key}, d;
    int rc = mdb_get(txn, c->db_meta, &k, &d);
    if (rc)
        return rc;
    if (d.mv_size != sizeof *v)
        return MDB_CORRUPTED;
    memcpy(v, d.mv_data, sizeof *v);
    return 0;
}

int index_load(struct cache *c, uint64_t *local_epoch)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_error(c, "read", rc);
    MDB_val k = {.mv_size = 4, .mv_data = "uuid"}, v;
    uint64_t chunk_size = 0, format = 0;
    rc = mdb_get(txn, c->db_meta, &k, &v);
    if (!rc)
        rc = get_meta_u64(txn, c, "chunk_size", &chunk_size);
    if (!rc)
        rc = get_meta_u64(txn, c, "format", &format);
    if (!rc)
        rc = get_meta_u64(txn, c, "epoch", local_epoch);
    c->local_token = 0;
    memset(c->local_owner, 0, sizeof c->local_owner);
    if (!rc && format == INDEX_FORMAT) {
        MDB_val ok = {.mv_size = 5, .mv_data = "owner"}, ov;
        rc = get_meta_u64(txn, c, "token", &c->local_token);
        if (!rc)
            rc = mdb_get(txn, c->db_meta, &ok, &ov);
        if (!rc && ov.mv_size != sizeof c->local_owner)
            rc = MDB_CORRUPTED;
        if (!rc)
            memcpy(c->local_owner, ov.mv_data, sizeof c->local_owner);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return lmdb_error(c, "read settings", rc);
    }
    if (v.mv_size != SEAL_UUID_SIZE || memcmp(v.mv_data, c->sb.uuid, SEAL_UUID_SIZE) != 0 ||
        chunk_size != c->chunk_size || (format != INDEX_FORMAT && format != 1)) {
        mdb_txn_abort(txn);
        cache_log(c, USBD_LOG_ERROR, "local state %s belongs to another volume or format (not "
                  "the volume '%s' in this store): use another -store-dir", c->vol_dir, c->cfg.volume);
        return EINVAL;
    }
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, c->db_chunks, &cur);
    MDB_val key, data;
    int op = MDB_FIRST;
    while (!rc && (rc = mdb_cursor_get(cur, &key, &data, op)) == 0) {
        op = MDB_NEXT;
        uint64_t i;
        struct chunk_rec r = {0};
        /* A format-1 record (no tag) may outlive the upgrade: one beyond
         * the volume is never rewritten. */
        if (key.mv_size != sizeof i ||
            (data.mv_size != sizeof r && data.mv_size != CHUNK_REC_V1_SIZE)) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&i, key.mv_data, sizeof i);
        memcpy(&r, data.mv_data, data.mv_size);
        if (i >= c->nchunks || (r.cslot != SLOT_NONE && r.cslot >= c->nslots) ||
            (r.dslot != SLOT_NONE && r.dslot >= c->nslots)) {
            /* A smaller -cache-size than before, or damage: a slot beyond
             * the end cannot be trusted. Dirty data there would be lost. */
            if (r.dslot != SLOT_NONE && r.dslot >= c->nslots) {
                cache_log(c, USBD_LOG_ERROR, "chunk 0x%llx: dirty slot %u is beyond the cache "
                          "(%u slots): was -cache-size reduced? use the previous size",
                          (unsigned long long)i, r.dslot, c->nslots);
                rc = EINVAL;
                break;
            }
            r.cslot = SLOT_NONE;
            if (i >= c->nchunks)
                continue;
        }
        struct chunk *ch = &c->chunks[i];
        ch->gen = r.gen;
        memcpy(ch->tag, r.tag, TAG_SIZE);
        ch->cslot = r.cslot;
        ch->lslot = r.dslot;
        ch->lzero = (r.flags & REC_DZERO) != 0;
        if (ch->lslot != SLOT_NONE || ch->lzero)
            c->live_dirty++;
        if (ch->lslot != SLOT_NONE)
            c->dirty_slots++;
        if (format == 1)
            mark_index_dirty(c, (uint32_t)i); /* rewritten as format 2 by the next persist */
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc == EINVAL)
        return rc;
    return rc ? lmdb_error(c, "read chunk records", rc) : 0;
}

static struct chunk_rec record_of(const struct chunk *k)
{
    struct chunk_rec r = {
        .gen = k->gen,
        .cslot = k->cslot,
        .dslot = k->lslot != SLOT_NONE ? k->lslot : k->lzero ? SLOT_NONE : k->fslot,
        .flags = (k->lzero || (k->lslot == SLOT_NONE && k->fzero)) ? REC_DZERO : 0,
    };
    memcpy(r.tag, k->tag, TAG_SIZE);
    return r;
}

int index_persist(struct cache *c)
{
    pthread_mutex_lock(&c->persist_lock);
    pthread_mutex_lock(&c->lock);
    size_t n = c->nindex_dirty;
    uint64_t *idx = malloc((n ? n : 1) * sizeof *idx);
    struct chunk_rec *recs = malloc((n ? n : 1) * sizeof *recs);
    if (!idx || !recs) {
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->persist_lock);
        free(idx);
        free(recs);
        return ENOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        uint32_t i = c->index_dirty[j];
        idx[j] = i;
        recs[j] = record_of(&c->chunks[i]);
        c->chunks[i].index_dirty = 0;
    }
    c->nindex_dirty = 0;
    /* Freed before this commit: unreferenced once it lands. */
    for (size_t j = 0; j < c->pending_free.n; j++)
        slot_list_push(&c->freeing, c->pending_free.v[j]);
    c->pending_free.n = 0;
    uint64_t epoch = c->committed_epoch;
    pthread_mutex_unlock(&c->lock);

    int err = c->local_err;
    if (!err && (c->cfg.sync_fd ? c->cfg.sync_fd(c->slot_fd) : fdatasync(c->slot_fd)) != 0) {
        err = errno ? errno : EIO;
        local_failed(c, "slot file: fdatasync", err);
    }
    MDB_txn *txn = NULL;
    int rc = err ? 0 : mdb_txn_begin(c->env, NULL, 0, &txn);
    for (size_t j = 0; !err && !rc && j < n; j++) {
        MDB_val k = {.mv_size = sizeof idx[j], .mv_data = &idx[j]};
        const struct chunk_rec *r = &recs[j];
        if (r->gen == 0 && r->cslot == SLOT_NONE && r->dslot == SLOT_NONE && !r->flags) {
            rc = mdb_del(txn, c->db_chunks, &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        } else {
            MDB_val d = {.mv_size = sizeof *r, .mv_data = (void *)r};
            rc = mdb_put(txn, c->db_chunks, &k, &d, 0);
        }
    }
    if (!err && !rc)
        rc = index_put_meta_u64(txn, c, "epoch", epoch);
    if (!err && !rc)
        rc = index_put_meta_u64(txn, c, "format", INDEX_FORMAT);
    if (!err && !rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (!err && rc) {
        err = lmdb_error(c, "commit", rc);
        local_failed(c, "local index: commit", err);
    }

    pthread_mutex_lock(&c->lock);
    if (!err) {
        for (size_t j = 0; j < c->freeing.n; j++)
            slot_list_push(&c->free_slots, c->freeing.v[j]);
    } else {
        /* Nothing landed: those records and slots wait for the next try. */
        for (size_t j = 0; j < c->freeing.n; j++)
            slot_list_push(&c->pending_free, c->freeing.v[j]);
        for (size_t j = 0; j < n; j++)
            mark_index_dirty(c, (uint32_t)idx[j]);
    }
    c->freeing.n = 0;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&c->persist_lock);
    free(idx);
    free(recs);
    return err;
}

int index_save_owner(struct cache *c)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    MDB_val k = {.mv_size = 5, .mv_data = "owner"};
    MDB_val v = {.mv_size = sizeof c->owner, .mv_data = c->owner};
    if (!rc)
        rc = index_put_meta_u64(txn, c, "token", c->token);
    if (!rc)
        rc = mdb_put(txn, c->db_meta, &k, &v, 0);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc) {
        int err = lmdb_error(c, "write the writer's token", rc);
        local_failed(c, "local index: commit", err);
        return err;
    }
    c->local_token = c->token;
    memcpy(c->local_owner, c->owner, sizeof c->owner);
    return 0;
}

/* The records follow via index_persist. */
int index_init_meta(struct cache *c)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    MDB_val k = {.mv_size = 4, .mv_data = "uuid"};
    MDB_val v = {.mv_size = SEAL_UUID_SIZE, .mv_data = c->sb.uuid};
    if (!rc)
        rc = mdb_put(txn, c->db_meta, &k, &v, 0);
    if (!rc)
        rc = index_put_meta_u64(txn, c, "chunk_size", c->chunk_size);
    if (!rc)
        rc = index_put_meta_u64(txn, c, "format", INDEX_FORMAT);
    if (!rc)
        rc = index_put_meta_u64(txn, c, "epoch", c->committed_epoch);
    if (!rc)
        rc = index_put_meta_u64(txn, c, "token", c->local_token);
    MDB_val ok = {.mv_size = 5, .mv_data = "owner"};
    MDB_val ov = {.mv_size = sizeof c->local_owner, .mv_data = c->local_owner};
    if (!rc)
        rc = mdb_put(txn, c->db_meta, &ok, &ov, 0);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc ? lmdb_error(c, "write settings", rc) : 0;
}

void index_close(struct cache *c)
{
    if (c->env)
        mdb_env_close(c->env);
    c->env = NULL;
}
