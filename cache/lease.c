/* lease.c - one writer per volume: the lease, the takeover, fencing, and
 * the pins of read-only daemons.
 *
 *   <volume>/lease               who writes: owner id (random per run), host,
 *                                pid, expiry, fencing token; sealed (kind
 *                                lease, index 0); renewed every third of its
 *                                time-to-live, released at a clean stop
 *   <volume>/readers/<owner>     a read-only daemon's pin on the epoch it
 *                                serves (kind lease, index 1)
 *   <volume>/probe/<owner>       created twice at a writer's start: a store
 *                                that refuses the second create can fence
 *
 * The lease tells a starting board that another one writes (so it refuses,
 * unless -takeover) and tells a writer quickly that it was taken over. It is
 * not what keeps data safe: the store lacks an atomic read-modify-write that
 * works everywhere (RGW 16.2 refuses If-Match even with the right ETag), so
 * two boards may both write the lease. Safety comes from the records
 * (records.c): a token is claimed by a conditionally created takeover
 * record, every later record carries it, and a writer whose record collides
 * is fenced. The lease's times are wall-clock: boards whose clocks differ by
 * more than a few seconds may refuse or take over early; data stays safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LEASE_MAGIC "USBDLEAS"
#define LEASE_PAYLOAD 144
#define LEASE_INDEX 0
#define READER_INDEX 1
#define TAKEOVER_ATTEMPTS 5

static uint64_t ttl_ms(const struct cache *c)
{
    return c->cfg.lease_ms ? c->cfg.lease_ms : 60000;
}

static void encode(const struct lease *l, uint8_t p[LEASE_PAYLOAD])
{
    memset(p, 0, LEASE_PAYLOAD);
    memcpy(p, LEASE_MAGIC, 8);
    le64_put(p + 8, l->token);
    memcpy(p + 16, l->owner, 16);
    le64_put(p + 32, l->pid);
    le64_put(p + 40, l->taken_ms);
    le64_put(p + 48, l->expires_ms);
    le64_put(p + 56, l->ttl_ms);
    le64_put(p + 64, l->flags);
    le64_put(p + 72, l->epoch);
    memcpy(p + 80, l->host, strnlen(l->host, 64));
}

int lease_decode(const uint8_t *p, uint32_t n, struct lease *l)
{
    if (n != LEASE_PAYLOAD || memcmp(p, LEASE_MAGIC, 8) != 0)
        return EPROTO;
    memset(l, 0, sizeof *l);
    l->token = le64_get(p + 8);
    memcpy(l->owner, p + 16, 16);
    l->pid = le64_get(p + 32);
    l->taken_ms = le64_get(p + 40);
    l->expires_ms = le64_get(p + 48);
    l->ttl_ms = le64_get(p + 56);
    l->flags = le64_get(p + 64);
    l->epoch = le64_get(p + 72);
    memcpy(l->host, p + 80, 64);
    for (char *h = l->host; *h; h++) /* a name for log lines, nothing more */
        if (*h < 0x20 || *h == 0x7f)
            *h = '?';
    return 0;
}

/* This run's lease (or pin), valid for one time-to-live from now. */
static void make_own(struct cache *c, struct lease *l, uint64_t epoch)
{
    memset(l, 0, sizeof *l);
    uint64_t now = now_wall_ms();
    l->token = c->token;
    memcpy(l->owner, c->owner, 16);
    l->pid = (uint64_t)getpid();
    l->taken_ms = now;
    l->expires_ms = now + ttl_ms(c);
    l->ttl_ms = ttl_ms(c);
    l->epoch = epoch;
    if (gethostname(l->host, 64) != 0)
        snprintf(l->host, sizeof l->host, "?");
    l->host[64] = 0;
}

struct get_args {
    struct cache *c;
    const char *key;
    unsigned index;
    struct lease *out;
};

static int read_op(void *arg)
{
    struct get_args *a = arg;
    struct seal_id id = {.kind = SEAL_KIND_LEASE, .index = a->index};
    uint8_t *p;
    uint32_t n;
    int err = volume_get_open(a->c, a->key, &id, LEASE_PAYLOAD, &p, &n);
    if (!err)
        err = lease_decode(p, n, a->out);
    free(p);
    return err;
}

/* 0, ENOENT, EBADMSG/EPROTO (damaged, or sealed with another key), or the
 * store's error after a few tries. */
static int read_lease(struct cache *c, const char *key, unsigned index, struct lease *out,
                      unsigned attempts)
{
    struct get_args a = {c, key, index, out};
    char what[64];
    snprintf(what, sizeof what, "reading %s", index == LEASE_INDEX ? "the lease" : "a reader pin");
    int err = read_op(&a);
    if (err && objstore_err_retriable(err))
        err = volume_retry(c, what, attempts, read_op, &a);
    return err;
}

static int write_lease(struct cache *c, const char *key, unsigned index, const struct lease *l,
                       unsigned attempts)
{
    uint8_t p[LEASE_PAYLOAD];
    encode(l, p);
    struct seal_id id = {.kind = SEAL_KIND_LEASE, .index = index};
    void *obj;
    size_t len;
    int err = volume_seal(c, &c->cfg.seal, &id, p, sizeof p, &obj, &len);
    if (err)
        return err;
    err = volume_put(c, index == LEASE_INDEX ? "writing the lease" : "writing the reader pin",
                     attempts, key, obj, len);
    free(obj);
    return err;
}

static void format_utc(uint64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ----------------------------------------------------------- at start */

int lease_check(struct cache *c)
{
    char key[KEY_LEN];
    key_lease(c, key, sizeof key);
    struct lease l;
    int err = read_lease(c, key, LEASE_INDEX, &l, 6);
    if (err == ENOENT)
        return 0;
    if (err == EBADMSG || err == EPROTO) {
        if (c->cfg.takeover) {
            cache_log(c, USBD_LOG_WARN, "volume '%s': the lease %s is damaged or not sealed with "
                      "this key: taking the volume over (-takeover)", c->cfg.volume, key);
            return 0;
        }
        cache_log(c, USBD_LOG_ERROR, "volume '%s': the lease %s is damaged or not sealed with this "
                  "key, so who writes the volume is unknown; if no other board writes it, start "
                  "with -takeover", c->cfg.volume, key);
        return EBADMSG;
    }
    if (err) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s': cannot read the lease %s: %s", c->cfg.volume,
                  key, strerror(err));
        return err;
    }
    c->prev_lease = l;
    c->have_prev_lease = true;
    uint64_t now = now_wall_ms();
    bool live = !(l.flags & LEASE_RELEASED) && l.expires_ms > now;
    /* Our own previous run here (killed, or the power cut): the mark beside
     * the key names it, and the state directory's lock, taken next, proves
     * it is not still running. */
    bool ours_before = c->mark.valid && memcmp(l.owner, c->mark.owner, 16) == 0;
    if (!live)
        return 0;
    char until[40];
    format_utc(l.expires_ms, until, sizeof until);
    if (ours_before) {
        cache_log(c, USBD_LOG_INFO, "volume '%s': the lease is this machine's previous run's (pid "
                  "%llu, until %s): taking it back", c->cfg.volume, (unsigned long long)l.pid, until);
        return 0;
    }
    if (!c->cfg.takeover) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s' is being written by usbd-objstore on host %s (pid "
                  "%llu): its lease runs until %s (in %llu s, renewed every %llu s); stop it there "
                  "first, or if that board is gone for good, start with -takeover",
                  c->cfg.volume, l.host, (unsigned long long)l.pid, until,
                  (unsigned long long)((l.expires_ms - now + 999) / 1000),
                  (unsigned long long)(l.ttl_ms / 3000));
        return EBUSY;
    }
    cache_log(c, USBD_LOG_WARN, "volume '%s': taking over from host %s (pid %llu, lease until %s): "
              "that writer is fenced from now on and its changes not yet committed stay on it",
              c->cfg.volume, l.host, (unsigned long long)l.pid, until);
    return 0;
}

struct probe_args {
    struct cache *c;
    const char *key;
    int first, second;
};

static int probe_op(void *arg)
{
    struct probe_args *a = arg;
    a->first = objstore_create(a->c->store, a->key, "1", 1);
    if (a->first && a->first != ENOTSUP && a->first != EEXIST)
        return a->first;
    a->second = a->first ? a->first : objstore_create(a->c->store, a->key, "2", 1);
    if (a->second && a->second != ENOTSUP && a->second != EEXIST)
        return a->second;
    return 0;
}

/* Does the store refuse a second create of a key? */
static int probe_conditional(struct cache *c)
{
    char key[KEY_LEN], hex[33];
    hex_owner(c->owner, hex);
    snprintf(key, sizeof key, "%s/probe/%s", c->cfg.volume, hex);
    struct probe_args a = {c, key, 0, 0};
    int err = volume_retry(c, "probing conditional creates", 6, probe_op, &a);
    if (err) {
        cache_log(c, USBD_LOG_ERROR, "volume '%s': cannot write to the store: %s", c->cfg.volume,
                  strerror(err));
        return err;
    }
    (void)objstore_delete(c->store, key);
    c->cond_create = a.first == 0 && a.second == EEXIST;
    if (c->cond_create)
        cache_log(c, USBD_LOG_DEBUG, "%s refuses a second create of a key: a second writer is "
                  "fenced", c->store->name);
    else
        cache_log(c, USBD_LOG_WARN, "%s does not refuse a second create of a key (%s): fencing a "
                  "second writer is best effort here (the lease is read again before each commit)",
                  c->store->name, a.first == ENOTSUP || a.second == ENOTSUP
                                      ? "no conditional create"
                                      : "If-None-Match ignored");
    return 0;
}

int lease_take(struct cache *c, struct remote_state *rs)
{
    int err = probe_conditional(c);
    if (err)
        return err;
    char key[KEY_LEN];
    key_lease(c, key, sizeof key);
    uint64_t token = rs->token;
    if (c->have_prev_lease && c->prev_lease.token > token)
        token = c->prev_lease.token;
    if (c->mark.valid && c->mark.token > token)
        token = c->mark.token;
    for (unsigned attempt = 1;; attempt++) {
        if (token >= TOKEN_MAX) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s': fencing tokens are used up", c->cfg.volume);
            return EOVERFLOW;
        }
        c->token = token + 1;
        /* The mark and the local state learn this run's id first, so that
         * after a cut from here on the next start knows the lease and the
         * local changes for its own. */
        memcpy(c->mark.owner, c->owner, 16);
        c->mark.valid = true;
        if ((err = mark_save(c)) || (err = index_save_owner(c)))
            return err;
        struct lease l;
        make_own(c, &l, rs->epoch);
        err = write_lease(c, key, LEASE_INDEX, &l, 6);
        if (err) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s': cannot write the lease: %s", c->cfg.volume,
                      strerror(err));
            return err;
        }
        char why[256] = "";
        err = records_commit(c, rs->epoch + 1, NULL, 0, true, why, sizeof why);
        if (!err) {
            rs->epoch++;
            rs->token = c->token;
            memcpy(rs->owner, c->owner, 16);
            c->lease_renewed = now_mono();
            cache_log(c, USBD_LOG_INFO, "volume '%s': this board writes it now (epoch %llu, "
                      "fencing token %llu, lease %llu s)", c->cfg.volume,
                      (unsigned long long)rs->epoch, (unsigned long long)c->token,
                      (unsigned long long)(ttl_ms(c) / 1000));
            return 0;
        }
        if (err != EEXIST)
            return err;
        if (!c->cfg.takeover || attempt == TAKEOVER_ATTEMPTS) {
            cache_log(c, USBD_LOG_ERROR, "volume '%s': another writer started at the same time "
                      "(%s); not writing the volume%s", c->cfg.volume, why,
                      c->cfg.takeover ? "" : " (-takeover takes it over)");
            c->token = 0;
            return EBUSY;
        }
        cache_log(c, USBD_LOG_WARN, "volume '%s': %s; loading the map again", c->cfg.volume, why);
        err = records_load(c, rs);
        if (err)
            return err;
        token = rs->token > c->token ? rs->token : c->token;
    }
}

void lease_pin(struct cache *c, uint64_t epoch)
{
    char key[KEY_LEN];
    key_reader(c, c->owner, key, sizeof key);
    struct lease l;
    make_own(c, &l, epoch);
    int err = write_lease(c, key, READER_INDEX, &l, 3);
    if (err && !c->pin_failed)
        cache_log(c, USBD_LOG_WARN, "volume '%s': cannot pin an epoch in the store (%s): the "
                  "writer may remove chunks this reader has not cached yet, and reads of those "
                  "fail", c->cfg.volume, strerror(err));
    c->pin_failed = err != 0;
    c->lease_renewed = now_mono();
}

/* ------------------------------------------------------------ fencing */

void cache_fence(struct cache *c, const char *why)
{
    pthread_mutex_lock(&c->lock);
    bool already = c->fenced;
    c->fenced = true;
    uint64_t dirty = c->dirty_slots * c->chunk_size, epoch = c->committed_epoch;
    pthread_cond_broadcast(&c->changed);
    pthread_cond_broadcast(&c->flusher_cv);
    pthread_mutex_unlock(&c->lock);
    if (already)
        return;
    cache_log(c, USBD_LOG_ERROR, "volume '%s' is no longer this board's to write: %s. Writes now "
              "fail (read-only) and nothing more is uploaded; %.1f MiB changed here after epoch "
              "%llu are not in the store and stay in %s. To keep the other writer's volume, stop "
              "this daemon and move %s aside; to copy this board's changes out, serve it with "
              "-readonly", c->cfg.volume, why, dirty / 1048576.0, (unsigned long long)epoch,
              c->vol_dir, c->vol_dir);
}

/* ------------------------------------------------------------ renewal */

static void renew_writer(struct cache *c, const char *key)
{
    struct lease l;
    int err = read_lease(c, key, LEASE_INDEX, &l, 1);
    if (!err && (l.token > c->token || (l.token == c->token && memcmp(l.owner, c->owner, 16)))) {
        char why[200];
        snprintf(why, sizeof why, "host %s (pid %llu) took the volume over with fencing token %llu",
                 l.host, (unsigned long long)l.pid, (unsigned long long)l.token);
        cache_fence(c, why);
        return;
    }
    /* A lower token is a fenced writer that wrote the lease after we did:
     * ours goes back over it. A missing or damaged one is rewritten. */
    make_own(c, &l, c->committed_epoch);
    err = write_lease(c, key, LEASE_INDEX, &l, 1);
    if (!err) {
        c->lease_renewed = now_mono();
        return;
    }
    double late = now_mono() - c->lease_renewed;
    if (late * 1000 > (double)ttl_ms(c))
        cache_log(c, USBD_LOG_WARN, "volume '%s': the lease expired %.0f s ago (the store did not "
                  "take its renewal: %s); another board may now take the volume over, which "
                  "fences this one", c->cfg.volume, late - ttl_ms(c) / 1000.0, strerror(err));
}

static void *lease_main(void *arg)
{
    struct cache *c = arg;
    char key[KEY_LEN];
    if (c->token)
        key_lease(c, key, sizeof key);
    else
        key_reader(c, c->owner, key, sizeof key);
    pthread_mutex_lock(&c->lock);
    while (!c->lease_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ms = ttl_ms(c) / 3;
        until.tv_sec += (time_t)(ms / 1000);
        until.tv_nsec += (long)(ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!c->lease_stopping)
            if (pthread_cond_timedwait(&c->lease_cv, &c->lock, &until) == ETIMEDOUT)
                break;
        if (c->lease_stopping || c->fenced)
            continue;
        pthread_mutex_unlock(&c->lock);
        if (c->token) {
            renew_writer(c, key);
        } else {
            lease_pin(c, c->committed_epoch);
        }
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int lease_start(struct cache *c)
{
    pthread_cond_init(&c->lease_cv, NULL);
    int err = pthread_create(&c->lease_thread, NULL, lease_main, c);
    c->lease_started = err == 0;
    return err;
}

void lease_stop(struct cache *c, bool release)
{
    if (c->lease_started) {
        pthread_mutex_lock(&c->lock);
        c->lease_stopping = true;
        pthread_cond_broadcast(&c->lease_cv);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->lease_thread, NULL);
        pthread_cond_destroy(&c->lease_cv);
        c->lease_started = false;
    }
    if (!release || c->fenced)
        return;
    char key[KEY_LEN];
    if (!c->token) {
        key_reader(c, c->owner, key, sizeof key);
        (void)objstore_delete(c->store, key); /* an old pin expires by itself */
        return;
    }
    key_lease(c, key, sizeof key);
    struct lease l;
    int err = read_lease(c, key, LEASE_INDEX, &l, 1);
    if (!err && (l.token != c->token || memcmp(l.owner, c->owner, 16) != 0))
        return; /* taken over meanwhile: not ours to release */
    make_own(c, &l, c->committed_epoch);
    l.flags |= LEASE_RELEASED;
    l.expires_ms = now_wall_ms();
    if (write_lease(c, key, LEASE_INDEX, &l, 3) == 0)
        cache_log(c, USBD_LOG_INFO, "volume '%s': lease released", c->cfg.volume);
}

/* ------------------------------------------------------------ readers */

struct readers_args {
    struct cache *c;
    uint64_t min, now;
};

static int note_reader(void *arg, const char *key)
{
    struct readers_args *a = arg;
    struct cache *c = a->c;
    size_t vl = strlen(c->cfg.volume);
    /* "<volume>/readers/<32 hex>" exactly: anything else is not a pin. */
    if (strncmp(key, c->cfg.volume, vl) != 0 || strncmp(key + vl, "/readers/", 9) != 0 ||
        strlen(key + vl + 9) != 32 || strspn(key + vl + 9, "0123456789abcdef") != 32)
        return 0;
    struct lease l;
    int err = read_lease(c, key, READER_INDEX, &l, 1);
    if (err)
        return 0; /* unreadable or gone: not a live reader */
    if (l.expires_ms > a->now) {
        if (l.epoch < a->min)
            a->min = l.epoch;
    } else if (a->now - l.expires_ms > 10 * ttl_ms(c)) {
        (void)objstore_delete(c->store, key); /* a reader that never said goodbye */
    }
    return 0;
}

/* Listed afresh for every decision: a reader pins (epoch 0 first) before
 * it loads the map, so a listing taken after that pin is visible keeps
 * what the reader may load; an older, cached listing would not. */
uint64_t lease_readers_min(struct cache *c)
{
    char prefix[KEY_LEN];
    snprintf(prefix, sizeof prefix, "%s/readers/", c->cfg.volume);
    struct readers_args a = {c, UINT64_MAX, now_wall_ms()};
    if (volume_list_each(c, prefix, NULL, note_reader, &a) != 0)
        return 0; /* unknown: keep everything for now */
    return a.min;
}

void lease_collect_retired(struct cache *c)
{
    if (!c->nretired || c->fenced)
        return;
    uint64_t min = lease_readers_min(c);
    /* A pin is bounded by the cache's room for it: beyond that the oldest go
     * (the reader then gets an error for those chunks, not wrong data). */
    size_t cap = (size_t)c->nchunks * 2 + 64, keep = 0;
    size_t force = c->nretired > cap ? c->nretired - cap : 0;
    if (force)
        cache_log(c, USBD_LOG_WARN, "volume '%s': a reader pins epoch %llu while %zu superseded "
                  "chunks wait: removing the %zu oldest", c->cfg.volume, (unsigned long long)min,
                  c->nretired, force);
    for (size_t j = 0; j < c->nretired; j++) {
        struct retired *r = &c->retired[j];
        /* A reader at epoch p reads what was current at p: a generation
         * superseded at epoch e is needed by readers with p < e. */
        if (j < force || min >= r->epoch) {
            char key[KEY_LEN];
            key_chunk(c, r->index, r->gen, key, sizeof key);
            if (objstore_delete(c->store, key) == 0)
                continue;
        }
        c->retired[keep++] = *r; /* a failed delete is tried again later */
    }
    c->nretired = keep;
}

void lease_retire(struct cache *c, uint64_t index, uint64_t gen, uint64_t epoch)
{
    if (c->nretired == c->retired_cap) {
        size_t cap = c->retired_cap ? 2 * c->retired_cap : 256;
        struct retired *r = realloc(c->retired, cap * sizeof *r);
        if (!r) { /* no room to wait: delete now, as before readers existed */
            char key[KEY_LEN];
            key_chunk(c, index, gen, key, sizeof key);
            (void)objstore_delete(c->store, key);
            return;
        }
        c->retired = r;
        c->retired_cap = cap;
    }
    c->retired[c->nretired++] = (struct retired){index, gen, epoch};
}
