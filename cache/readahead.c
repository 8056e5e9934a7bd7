/* readahead.c - sequential reads fetch the next chunks in parallel.
 *
 * A read of chunk i right after a read of chunk i-1 queues chunks i+1 ..
 * i+RA_WINDOW that exist only in the store; RA_THREADS threads fetch them
 * into clean slots. A reader that gets there first waits on the chunk's busy
 * flag instead of fetching it twice. Read-ahead never waits for a slot: if
 * the cache has none to spare, the chunk is skipped. */
#include <errno.h>

#include "internal.h"

#define RA_WINDOW 4
#define RA_QUEUE (sizeof ((struct cache *)0)->ra_queue / sizeof(uint32_t))

static bool store_only(const struct chunk *k)
{
    return k->gen && !k->busy && k->cslot == SLOT_NONE && k->fslot == SLOT_NONE &&
           k->lslot == SLOT_NONE && !k->lzero && !k->fzero;
}

void readahead_note(struct cache *c, uint32_t i)
{
    bool sequential = i == c->ra_last + 1;
    c->ra_last = i;
    if (!sequential || !c->ra_started)
        return;
    for (uint32_t j = i + 1; j <= i + RA_WINDOW && j < c->nchunks; j++) {
        if (!store_only(&c->chunks[j]) || c->ra_count == RA_QUEUE)
            continue;
        bool queued = false;
        for (unsigned q = 0; q < c->ra_count && !queued; q++)
            queued = c->ra_queue[(c->ra_head + q) % RA_QUEUE] == j;
        if (!queued)
            c->ra_queue[(c->ra_head + c->ra_count++) % RA_QUEUE] = j;
    }
    pthread_cond_broadcast(&c->ra_cv);
}

static void *readahead_main(void *arg)
{
    struct cache *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->stopping && c->ra_count == 0)
            pthread_cond_wait(&c->ra_cv, &c->lock);
        if (c->stopping)
            break;
        uint32_t i = c->ra_queue[c->ra_head];
        c->ra_head = (c->ra_head + 1) % RA_QUEUE;
        c->ra_count--;
        /* Only with a slot to spare: read-ahead must not evict what a reader
         * is about to use, nor wait for the flusher. */
        if (!store_only(&c->chunks[i]) || c->free_slots.n == 0)
            continue;
        if (fetch_into_cache(c, i) == 0 && c->chunks[i].cslot != SLOT_NONE)
            atomic_fetch_add(&c->fetched_ahead, 1);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int readahead_start(struct cache *c)
{
    pthread_cond_init(&c->ra_cv, NULL);
    c->ra_last = NO_CHUNK - 1;
    for (unsigned t = 0; t < RA_THREADS; t++)
        if (pthread_create(&c->ra_threads[t], NULL, readahead_main, c) == 0)
            c->ra_started++;
    return 0; /* without threads reads still work, only slower */
}

void readahead_stop(struct cache *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->ra_cv);
    pthread_mutex_unlock(&c->lock);
    for (unsigned t = 0; t < c->ra_started; t++)
        pthread_join(c->ra_threads[t], NULL);
    c->ra_started = 0;
    pthread_cond_destroy(&c->ra_cv);
}
