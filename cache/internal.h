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
 *     gen, also after a crash (docs/design.md, invariant 3): writes only ever touch
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

/* The first bytes of a sealed object's MAC: what an epoch record or a
 * checkpoint says the object under a chunk key must end with. The store can
 * only replay objects this volume's key sealed, so matching 128 bits of the
 * tag tells the committed one from any other (a never-committed upload, an
 * older copy). All zeros: unknown (a volume made before tags existed). */
#define TAG_SIZE SEAL_TAG_SIZE

struct chunk {
    uint64_t gen;
    uint8_t tag[TAG_SIZE]; /* of generation gen's object */
    uint32_t cslot, fslot, lslot;
    uint32_t lru_prev, lru_next; /* list of chunks with a cslot, oldest first */
    uint8_t lzero : 1, fzero : 1;
    uint8_t busy : 1;      /* a fetch or copy-on-write is filling a slot */
    uint8_t in_lru : 1;
    uint8_t index_dirty : 1; /* LMDB record differs from memory */
};

/* The persisted form of a chunk (LMDB "chunks" database, key = index).
 * Index format 1 had the first 24 bytes only (no tag). */
struct chunk_rec {
    uint64_t gen;
    uint32_t cslot;
    uint32_t dslot; /* newest dirty slot: lslot, else fslot; SLOT_NONE if clean */
    uint32_t flags; /* REC_DZERO: newest dirty state is zeros */
    uint32_t reserved;
    uint8_t tag[TAG_SIZE];
};
#define CHUNK_REC_V1_SIZE 24
#define REC_DZERO 1u

struct slot_list {
    uint32_t *v;
    size_t n, cap;
};

/* The remote map as loaded from the store: gen and tag per chunk. */
struct remote_state {
    uint64_t epoch;     /* last committed epoch (0: none yet) */
    uint64_t checkpoint;/* epoch of the checkpoint it started from (0: none) */
    uint64_t token;     /* the highest fencing token in the records read */
    uint8_t owner[16];  /* the writer of the last record read (zeros: unknown) */
    uint64_t *gen;      /* nchunks entries */
    uint8_t (*tag)[TAG_SIZE];
};

/* One (index, generation, tag) pair of an epoch record or a checkpoint. */
struct map_entry {
    uint64_t index, gen;
    uint8_t tag[TAG_SIZE];
};

/* A writer's fencing token is the high half of every generation it makes:
 * gen = token << 32 | seq, seq counting this run's epochs from 1. Tokens are
 * unique to a writer's run (claimed by its takeover record) and seq never
 * goes back within one, so an (index, generation) pair names one content
 * forever. Generations below 1 << 32 are epoch numbers, from volumes made
 * before tokens. */
#define GEN_TOKEN(g) ((g) >> 32)
#define TOKEN_MAX 0xfffffffeull

/* A lease, or a reader's pin on an epoch (lease.c). */
struct lease {
    uint64_t token;
    uint8_t owner[16];
    uint64_t pid;
    uint64_t taken_ms, expires_ms, ttl_ms; /* wall clock, ms since 1970 */
    uint64_t flags;                        /* LEASE_RELEASED */
    uint64_t epoch;                        /* a reader: the epoch it reads */
    char host[65];
};
#define LEASE_RELEASED 1u

/* The rollback high-water mark of this machine (mark.c). */
struct mark {
    bool valid;
    uint64_t epoch, token;
    uint8_t owner[16]; /* the last run here that wrote the volume */
};

/* A superseded generation, deleted once no reader may still need it. */
struct retired {
    uint64_t index, gen;
    uint64_t epoch; /* the epoch that superseded it */
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

    /* One writer per volume (lease.c, records.c). */
    uint8_t owner[16];        /* this run's id, random */
    uint64_t token;           /* this writer's fencing token; 0 read-only */
    uint32_t gen_seq;         /* generations made this run (never given back) */
    bool cond_create;         /* the store refused a second create at the probe */
    atomic_bool fenced;       /* another writer took over: no writes, no uploads */
    atomic_int local_err;     /* a local sync failed: no writes, no uploads */
    uint64_t local_token;     /* the token of the last run that wrote this state */
    uint8_t local_owner[16];  /* and its owner id */
    struct lease prev_lease;  /* the lease found at start (token 0: none) */
    bool have_prev_lease;
    struct mark mark;
    pthread_t lease_thread;
    bool lease_started;
    pthread_cond_t lease_cv;
    double lease_renewed;     /* monotonic seconds of the last renewal */
    bool lease_stopping;
    struct retired *retired;  /* superseded generations waiting for readers */
    size_t nretired, retired_cap;
    bool pin_failed;          /* a reader could not write its pin (said once) */
    pthread_mutex_t persist_lock; /* one LMDB writer */
    pthread_t flusher;
    bool flusher_started;
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

/* Little-endian fields of the formats in the store and on disk. */
static inline void le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t le64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ------------------------------------------------------------- logging */
void cache_log(const struct cache *c, enum usbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* -------------------------------------------------------------- names */
/* "<volume>/chunks/<index>-<gen>" etc., into buf (at least 96 + volume). */
void key_chunk(const struct cache *c, uint64_t index, uint64_t gen, char *buf, size_t len);
void key_epoch(const struct cache *c, uint64_t epoch, char *buf, size_t len);
void key_checkpoint(const struct cache *c, uint64_t epoch, char *buf, size_t len);
void key_superblock(const struct cache *c, char *buf, size_t len);
void key_lease(const struct cache *c, char *buf, size_t len);
/* A reader's pin: "<volume>/readers/<owner hex>". */
void key_reader(const struct cache *c, const uint8_t owner[16], char *buf, size_t len);
#define KEY_LEN 1200
/* Listed keys are untrusted (a hostile or broken store): these accept only
 * "<volume>/<dir>/<16 hex>" and "<volume>/chunks/<16 hex>-<16 hex>" exactly,
 * as this code writes them, and never a key outside the volume. */
bool key_parse_number(const struct cache *c, const char *dir, const char *key, uint64_t *n);
bool key_parse_chunk(const struct cache *c, const char *key, uint64_t *index, uint64_t *gen);
/* Monotonic and wall-clock time. */
double now_mono(void);
uint64_t now_wall_ms(void);
void hex_owner(const uint8_t owner[16], char out[33]);

/* ------------------------------------------------------------ volume.c */
/* Read or create the superblock, check the key; fills c->sb and c->keys. */
int volume_open_superblock(struct cache *c);
/* Delete chunk objects no map references that no writer can still commit:
 * only generations of tokens below this writer's (see GEN_TOKEN). */
void volume_collect_garbage(struct cache *c, const uint64_t *gen);
/* Retry op with exponential backoff and jitter until it succeeds, the cache
 * is abandoned, or (max_attempts > 0) attempts run out. With max_attempts 0
 * even permanent errors are retried (slowly): data not yet in the store
 * must not be dropped because, say, credentials expired. */
int volume_retry(struct cache *c, const char *what, unsigned max_attempts, int (*op)(void *),
                 void *arg);
/* Put obj under key, retrying as volume_retry does. */
int volume_put(struct cache *c, const char *what, unsigned max_attempts, const char *key,
               const void *obj, size_t len);
/* Call fn(arg, key) for every key under prefix after `after` (NULL: all),
 * in order, across pages. fn returns 0 to go on, LIST_STOP to stop, or an
 * errno to stop with that error. Returns 0 or the first error. */
#define LIST_STOP (-1)
int volume_list_each(struct cache *c, const char *prefix, const char *after,
                     int (*fn)(void *arg, const char *key), void *arg);
/* Seal plain as object id into *out (malloc'd). */
int volume_seal(struct cache *c, const struct seal_params *p, const struct seal_id *id,
                const void *plain, size_t n, void **out, size_t *out_len);
/* Get key and open it as object id into *plain (malloc'd, *n bytes, at
 * most max). ENOENT if absent; EBADMSG/EPROTO if not authentic. */
int volume_get_open(struct cache *c, const char *key, const struct seal_id *id, size_t max,
                    uint8_t **plain, uint32_t *n);

/* ----------------------------------------------------------- records.c */
/* Load the remote map: the latest checkpoint, then the epoch records after
 * it, in order and without gaps. */
int records_load(struct cache *c, struct remote_state *rs);
/* Commit epoch: create its record (entries, this writer's token; takeover:
 * the record that claims the token) so that it lands only if no other
 * writer has that epoch, and check that no newer checkpoint hides it.
 * 0; EEXIST if another writer has the epoch (who, in why: this writer is
 * fenced); the store's error if abandoned first. */
int records_commit(struct cache *c, uint64_t epoch, const struct map_entry *e, size_t n,
                   bool takeover, char *why, size_t whylen);
/* Write a checkpoint of the map at epoch and drop what it makes redundant. */
int records_put_checkpoint(struct cache *c, uint64_t epoch);

/* ------------------------------------------------------------- lease.c */
/* The payload of a lease or a reader's pin. 0 or EPROTO. */
int lease_decode(const uint8_t *p, uint32_t n, struct lease *out);
/* Before any local state: read the lease; refuse (EBUSY, logged) while
 * another owner holds it, unless cfg.takeover. */
int lease_check(struct cache *c);
/* Become the writer: probe conditional creates, claim a token above every
 * one seen (rs, the lease, the mark), write the lease and commit the
 * takeover record as epoch rs->epoch + 1 (retrying after a collision with
 * cfg.takeover, refusing with EBUSY without). Updates rs. */
int lease_take(struct cache *c, struct remote_state *rs);
/* A read-only daemon: pin the epoch it serves (best effort): 0 before it
 * loads the map (whatever it loads is kept), then the epoch loaded. */
void lease_pin(struct cache *c, uint64_t epoch);
/* Renew in the background every third of the time-to-live. */
int lease_start(struct cache *c);
/* Stop renewing; release the lease (or remove the pin) unless fenced. */
void lease_stop(struct cache *c, bool release);
/* Mark this writer fenced (once) and say by whom and what to do. */
void cache_fence(struct cache *c, const char *why);
/* The lowest epoch a live reader pins (UINT64_MAX: none; 0 if the listing
 * fails). */
uint64_t lease_readers_min(struct cache *c);
/* Queue a superseded generation for deletion; delete those no live reader
 * may still read. */
void lease_retire(struct cache *c, uint64_t index, uint64_t gen, uint64_t epoch);
void lease_collect_retired(struct cache *c);

/* -------------------------------------------------------------- mark.c */
/* <state_dir>/<volume>.hwm: the highest epoch and token this machine saw,
 * MAC'd with the volume's keys. A missing or damaged file is no mark. */
void mark_load(struct cache *c);
int mark_save(struct cache *c);

/* ------------------------------------------------------------- index.c */
int index_open(struct cache *c, bool *fresh);
/* Load chunk records and meta into memory. */
int index_load(struct cache *c, uint64_t *local_epoch);
/* Write the records of index-dirty chunks (and meta), after fdatasync of
 * the slot file; then release slots freed before the call. */
int index_persist(struct cache *c);
int index_put_meta_u64(MDB_txn *txn, struct cache *c, const char *key, uint64_t v);
/* Record c->token and c->owner as this state's writer before it writes
 * (see cache.c: changes made under an older writer are not uploaded). */
int index_save_owner(struct cache *c);
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
/* Fetch generation gen of chunk index into slot (whole chunk); the
 * object must end with tag (unless all zeros). */
int fetch_chunk(struct cache *c, uint64_t index, uint64_t gen, const uint8_t *tag, uint32_t slot);

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
