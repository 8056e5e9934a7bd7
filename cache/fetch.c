/* fetch.c - bring one chunk generation from the store into a slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define FETCH_ATTEMPTS 5
#define FETCH_PARALLEL 8 /* chunk buffers in memory at once for fetches */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int fetch_chunk(struct cache *c, uint64_t index, uint64_t gen, const uint8_t *tag, uint32_t slot)
{
    char key[KEY_LEN];
    key_chunk(c, index, gen, key, sizeof key);

    pthread_mutex_lock(&c->lock);
    while (c->fetches >= FETCH_PARALLEL)
        pthread_cond_wait(&c->changed, &c->lock);
    c->fetches++;
    pthread_mutex_unlock(&c->lock);

    struct objstore_buf obj = OBJSTORE_BUF_INIT;
    struct seal_ctx *sc = NULL;
    void *plain = malloc(c->chunk_size);
    int err = plain ? seal_ctx_new(&sc) : ENOMEM;
    unsigned backoff = 100;
    for (int attempt = 1; !err || objstore_err_retriable(err); attempt++) {
        err = objstore_get(c->store, key, seal_bound(c->chunk_size), &obj);
        if (!err || !objstore_err_retriable(err) || attempt == FETCH_ATTEMPTS)
            break;
        cache_log(c, USBD_LOG_WARN, "chunk 0x%llx gen %llx: fetch failed: %s (retry %d/%d in %ums)",
                  (unsigned long long)index, (unsigned long long)gen, strerror(err), attempt,
                  FETCH_ATTEMPTS - 1, backoff);
        sleep_ms(backoff);
        backoff *= 2;
    }
    uint32_t n = 0;
    if (!err) {
        struct seal_id id = {.kind = SEAL_KIND_CHUNK, .index = index, .gen = gen};
        err = seal_open(sc, &c->keys, &id, obj.data, obj.len, plain, c->chunk_size, &n);
        if (!err && n != c->chunk_size)
            err = EPROTO;
        /* Authentic and in the right place, but is it the object the map
         * committed? A never-committed upload or an older copy under the
         * same key has another tag. */
        static const uint8_t unknown[TAG_SIZE];
        uint8_t got[TAG_SIZE];
        if (!err && tag && memcmp(tag, unknown, TAG_SIZE) != 0 &&
            (seal_tag(obj.data, obj.len, got) != 0 || memcmp(got, tag, TAG_SIZE) != 0)) {
            cache_log(c, USBD_LOG_ERROR, "chunk 0x%llx gen %llx: the object in the store is not the "
                      "one its epoch committed (a replaced or never-committed object): reads of it "
                      "get EIO", (unsigned long long)index, (unsigned long long)gen);
            memset(plain, 0, c->chunk_size);
            err = EIO;
        } else if (err) {
            cache_log(c, USBD_LOG_ERROR,
                      "chunk 0x%llx gen %llx: object in the store fails %s (%s): reads of it get EIO",
                      (unsigned long long)index, (unsigned long long)gen,
                      err == EBADMSG ? "authentication: damaged, swapped or replayed"
                                     : "to parse: damaged or truncated",
                      strerror(err));
            err = EIO;
        }
    } else {
        cache_log(c, USBD_LOG_ERROR, "chunk 0x%llx gen %llx: cannot fetch %s: %s (EIO to the client)",
                  (unsigned long long)index, (unsigned long long)gen, key,
                  err == ENOENT ? "object missing from the store" : strerror(err));
        err = EIO;
    }
    if (!err)
        err = slot_pwrite(c, slot, plain, c->chunk_size, 0);
    if (!err) {
        atomic_fetch_add(&c->bytes_fetched, obj.len);
        atomic_fetch_add(&c->objects_fetched, 1);
    }
    objstore_buf_free(&obj);
    seal_ctx_free(sc);
    free(plain);

    pthread_mutex_lock(&c->lock);
    c->fetches--;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    return err;
}
