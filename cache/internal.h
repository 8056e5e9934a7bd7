/* internal.h - the state of the object-store device (private to cache/).
 *
 * A chunk's content can be in up to three local slots at once, plus the store:
 *
 *   gen    the generation committed in the store (0: none; reads as zeros)
 *   cslot  a slot holding exactly generation gen ("clean")
 *   fslot  the frozen copy being uploaded as part of the epoch in flight
 *   lslot  the live copy: what reads see, where writes go ("dirty")
 *   fzero / lzero: the frozen / live state is "all zeros" with no slot
 *
 *   read:   lslot | lzero | fslot | fzero | cslot | fetch gen into cslot | zeros
 *   write:  into lslot; without one, a new slot filled from the newest of
 *           fslot, cslot, the store, zeros (copy on write)
 *   freeze: lslot/lzero -> fslot/fzero (under the freeze barrier)
 *   commit: fslot -> cslot, gen = epoch; the old cslot is released
 *
 * Invariants (checked by cache_check_chunk in debug builds):
 *   - A slot is owned by at most one (chunk, role), and is not reused while
 *     slot_pins[slot] > 0 (a read or a copy still uses it).
 *   - cslot is never written in place: it is filled once (fetch or commit)
 *     and freed later. So whatever LMDB says is clean really is generation
 *     gen, also after a crash (DESIGN.md invariant 3): writes only ever touch
 *     a live slot, which LMDB records as dirty ("dslot") at the next FLUSH.
 *   - A slot that LMDB may still reference is not reused before an LMDB
 *     commit that no longer references it (slots freed in memory wait on
 *     the pending list until the next persist).
 *   - lzero implies lslot == NONE; fzero implies fslot == NONE.
 */
#ifndef USBD_CACHE_INTERNAL_H
#define USBD_CACHE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "cache.h"

#define SLOT_NONE UINT32_MAX
#define NO_CHUNK UINT32_MAX

struct chunk {
    uint64_t gen;
    uint32_t cslot, fslot, lslot;
    uint32_t lru_prev, lru_next; /* list of chunks with a cslot, oldest first */
    uint8_t lzero : 1, fzero : 1;
    uint8_t busy : 1;      /* a fetch or copy-on-write is filling a slot */
    uint8_t in_lru : 1;
    uint8_t index_dirty : 1; /* LMDB record differs from memory */
};

/* The persisted form of a chunk (LMDB "chunks" database, key = index). */
struct chunk_rec {
    uint64_t gen;
    uint32_t cslot;
    uint32_t dslot; /* newest dirty slot: lslot, else fslot; SLOT_NONE if clean */
    uint32_t flags; /* REC_DZERO: newest dirty state is zeros */
    uint32_t reserved;
};
#define REC_DZERO 1u

struct slot_list {
    uint32_t *v;
    size_t n, cap;
};

/* The remote map as loaded from the store: gen per chunk. */
struct remote_state {
    uint64_t epoch;     /* last committed epoch (0: none yet) */
    uint64_t checkpoint;/* epoch of the checkpoint it started from (0: none) */
    uint64_t *gen;      /* nchunks entries */
};

struct superblock {
    uint8_t uuid[SEAL_UUID_SIZE];
    uint64_t size;
    uint32_t chunk_size;
    uint8_t kcv[SEAL_KCV_SIZE];
};

/* Read-ahead fetch threads (readahead.c). */
#define RA_THREADS 2

struct cache {
    struct cache_config cfg;
    struct objstore *store;
    struct seal_keys keys;
    struct superblock sb;
    char *vol_dir;   /* state_dir/volume */
    int lock_fd;
    int slot_fd;
    uint32_t chunk_size;
    uint32_t chunk_shift;
    uint64_t nchunks;
    uint32_t nslots;

    MDB_env *env;
    MDB_dbi db_meta, db_chunks;

    pthread_mutex_t lock;     /* everything below, and every struct chunk */
    pthread_cond_t changed;   /* a chunk stopped being busy, slots freed, epoch done */
    pthread_rwlock_t freeze;  /* writes hold it shared; freezing takes it */
    struct chunk *chunks;
    uint16_t *slot_pins;      /* reads/copies in progress per slot: not reusable */
    unsigned fetches;         /* fetches in progress (bounded: memory) */
    uint32_t lru_head, lru_tail;
    struct slot_list free_slots, pending_free, freeing;
    uint64_t dirty_slots;     /* live + frozen slots (bytes / chunk_size) */
    uint64_t dirty_max_slots;
    uint64_t live_dirty;      /* chunks with lslot or lzero */
    uint32_t *index_dirty;    /* chunks to write at the next persist */
    size_t nindex_dirty;
    uint64_t committed_epoch; /* last epoch in the store */
    uint64_t next_epoch;      /* the number the next freeze takes */
    uint64_t checkpoint_epoch;
    bool flush_requested, stopping, abandon, flusher_idle;
    int last_store_err;
    pthread_mutex_t persist_lock; /* one LMDB writer */
    pthread_t flusher;
    pthread_cond_t flusher_cv;

    /* read-ahead: chunks to fetch, found by sequential reads */
    uint32_t ra_queue[64];
    unsigned ra_head, ra_count;
    uint32_t ra_last;         /* last chunk a read touched */
    pthread_cond_t ra_cv;
    pthread_t ra_threads[RA_THREADS];
    unsigned ra_started;
    atomic_uint_fast64_t fetched_ahead;

    /* figures, for logs and status */
    atomic_uint_fast64_t bytes_uploaded, bytes_fetched, objects_put, objects_fetched;
    atomic_uint_fast64_t uploading_left; /* bytes of the epoch in flight not yet put */
};

/* ------------------------------------------------------------- logging */
void cache_log(const struct cache *c, enum usbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------- names */
/* "<volume>/chunks/<index>-<gen>" etc., into buf (at least 96 + volume). */
void key_chunk(const struct cache *c, uint64_t index, uint64_t gen, char *buf, size_t len);
void key_epoch(const struct cache *c, uint64_t epoch, char *buf, size_t len);
void key_checkpoint(const struct cache *c, uint64_t epoch, char *buf, size_t len);
void key_superblock(const struct cache *c, char *buf, size_t len);
#define KEY_LEN 1200

/* ------------------------------------------------------------ volume.c */
/* Read or create the superblock, check the key; fills c->sb and c->keys. */
int volume_open_superblock(struct cache *c);
/* Load the remote map: the latest checkpoint, then the epoch records after
 * it, in order and without gaps. */
int volume_load_remote(struct cache *c, struct remote_state *rs);
/* Delete chunk objects that no map references (an unfinished epoch's). */
void volume_collect_garbage(struct cache *c, const uint64_t *gen);
/* Seal and put an epoch record / a checkpoint. */
int volume_put_epoch(struct cache *c, uint64_t epoch, const uint64_t *idx, const uint64_t *gen,
                     size_t n);
int volume_put_checkpoint(struct cache *c, uint64_t epoch);
/* Retry op with exponential backoff and jitter until it succeeds, the cache
 * is abandoned, or (max_attempts > 0) attempts run out. With max_attempts 0
 * even permanent errors are retried (slowly): data not yet in the store
 * must not be dropped because, say, credentials expired. */
int volume_retry(struct cache *c, const char *what, unsigned max_attempts, int (*op)(void *),
                 void *arg);

/* ------------------------------------------------------------- index.c */
int index_open(struct cache *c, bool *fresh);
/* Load chunk records and meta into memory. */
int index_load(struct cache *c, uint64_t *local_epoch);
/* Write the records of index-dirty chunks (and meta), after fdatasync of
 * the slot file; then release slots freed before the call. */
int index_persist(struct cache *c);
int index_put_meta_u64(MDB_txn *txn, struct cache *c, const char *key, uint64_t v);
/* Write the settings of a new local state. */
int index_init_meta(struct cache *c);
void index_close(struct cache *c);

/* ------------------------------------------------------------- slots.c */
/* With c->lock held: a free slot, evicting clean chunks if needed. May
 * drop and retake the lock (to persist); returns SLOT_NONE if none can be
 * had right now (all dirty or pinned): the caller waits on c->changed. */
uint32_t slot_alloc(struct cache *c);
/* With c->lock held: the slot no longer holds anything LMDB needs once the
 * next persist has run. */
void slot_release(struct cache *c, uint32_t slot);
void lru_touch(struct cache *c, uint32_t i);
void lru_remove(struct cache *c, uint32_t i);
void mark_index_dirty(struct cache *c, uint32_t i);
int slots_open(struct cache *c);
int slot_pread(struct cache *c, uint32_t slot, void *buf, size_t len, uint64_t off);
int slot_pwrite(struct cache *c, uint32_t slot, const void *buf, size_t len, uint64_t off);
/* Make slot read as zeros (and give its disk space back). */
int slot_punch(struct cache *c, uint32_t slot);
int slot_copy(struct cache *c, uint32_t from, uint32_t to);
void slot_list_push(struct slot_list *l, uint32_t s);

/* ------------------------------------------------------------- fetch.c */
/* Fetch generation gen of chunk index into slot (whole chunk). */
int fetch_chunk(struct cache *c, uint64_t index, uint64_t gen, uint32_t slot);

/* With c->lock held: bring chunk i (which has no slot and gen > 0) into
 * a clean slot. May wait; returns with c->lock held. */
int fetch_into_cache(struct cache *c, uint32_t i);
/* Queue chunks after i for read-ahead if reads look sequential (lock held). */
void readahead_note(struct cache *c, uint32_t i);
int readahead_start(struct cache *c);
void readahead_stop(struct cache *c);

/* ----------------------------------------------------------- flusher.c */
int flusher_start(struct cache *c);
void flusher_stop(struct cache *c);
/* Run epochs until nothing is dirty (or abandoned). */
int flusher_drain(struct cache *c);

/* ---------------------------------------------------------------- io.c */
extern const struct usbd_dev_ops cache_dev_ops;

#endif
