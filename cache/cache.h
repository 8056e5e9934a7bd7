/* cache.h - the object-store device: a block device whose content lives as
 * sealed chunk objects in an object store, with a local cache.
 *
 * The device is split into chunks (chunk_size bytes, fixed when the volume is
 * created). Each chunk lives in the store as an immutable object per
 * generation; locally, chunks are kept in slots of one slot file, indexed by
 * an LMDB environment. Writes go to the local cache; a flusher periodically
 * freezes the dirty chunks as one epoch, seals and uploads them in parallel,
 * and commits the epoch with one record, so the store always holds the
 *  device as of some epoch boundary (docs/design.md, invariant 2).
 *
 * Error convention: 0 or a positive errno value; every failure a user must
 * act on is logged once, as one line, through the configured sink.
 */
#ifndef USBD_CACHE_H
#define USBD_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/objstore.h"
#include "core/usbd.h"
#include "crypto/seal.h"

struct cache_config {
    const char *state_dir;  /* local state root; the volume's state is state_dir/volume */
    const char *volume;     /* volume name: the store prefix and the state subdirectory */
    uint64_t size;          /* bytes; required to create; 0 on open = the volume's size */
    uint32_t chunk_size;    /* power of two, 64 KiB..64 MiB; 0 = 4 MiB (create) or the
                             * volume's (open); a different value on open is an error */
    uint64_t cache_size;    /* local disk for slots, bytes; 0 = the device size */
    uint64_t dirty_max;     /* bytes changed since the last freeze before writers wait
                             * (the epoch uploading may hold as much again); 0 = half
                             * the cache, the maximum */
    uint64_t flush_every_ms;/* epoch interval; 0 = 10 s */
    unsigned flush_workers; /* parallel uploads; 0 = 4 */
    struct seal_params seal;/* compression and cipher for new objects */
    uint8_t master_key[SEAL_KEY_SIZE];
    bool sync_remote;       /* FLUSH also waits for the epoch to be in the store */
    bool read_only;         /* serve the last committed epoch: no lease, nothing
                             * written to the store but this reader's pin */
    bool takeover;          /* take the volume over although another owner's
                             * lease is live (that writer is fenced) */
    bool accept_rollback;   /* open a store older than this machine has seen */
    uint64_t lease_ms;      /* the lease's time-to-live; 0 = 60 s; renewed every
                             * third of it */
    int (*sync_fd)(int fd); /* tests: replaces fdatasync of the slot file */
    usbd_log_fn log;        /* NULL: stderr */
    void *log_opaque;
    enum usbd_log_level log_level;
};

struct cache;

/* Open the volume (create it in the store if it has no superblock and size
 * is given), lock and open its local state (creating it, or rebuilding it
 * from the store alone when the state directory is empty), check the key
 * against the superblock before anything is written, and start the flusher.
 * One writer per volume: unless read_only, the open takes the volume's lease
 * (refused while another owner's is live, unless takeover) and commits a
 * takeover record that fences any earlier writer; a writer that finds
 * itself fenced later stops taking writes (EROFS) and uploads nothing more,
 * keeping its changes in its state directory.
 * Errors: EACCES (wrong key), EBUSY (state in use by another process, or
 * the volume by another writer), EINVAL (size/chunk size mismatch, bad
 * config), ENOENT (no volume and no size), EBADMSG/EPROTO (store or local
 * state damaged, or the store older than this machine has seen), ESTALE
 * (local changes made before another writer took over), errno of I/O; each
 * logged as one line. */
int cache_open(const struct cache_config *cfg, struct objstore *store, struct cache **out);

/* The block device view: ops and geometry. Valid until cache_close(). */
void cache_device(struct cache *c, struct usbd_dev *dev);

/* The volume's uuid, fixed when it was created (stable across restarts and
 * machines: the USB serial number is derived from it). */
void cache_volume_uuid(const struct cache *c, uint8_t uuid[SEAL_UUID_SIZE]);

/* Start an epoch now (SIGHUP). Returns at once. */
void cache_flush_soon(struct cache *c);

/* Commit every write completed so far to the store and wait until it is
 * there (the stop sequence, before the kernel device goes). 0, or EIO if
 * cache_abandon() was called first, or the errno of persisting locally. */
int cache_commit(struct cache *c);

/* Stop retrying uploads (a third SIGINT at shutdown): cache_close() then
 * returns after persisting local state; dirty data stays in the local cache
 * and is uploaded by the next start. */
void cache_abandon(struct cache *c);

/* Bytes not yet committed to the store (dirty + uploading). */
uint64_t cache_dirty_bytes(struct cache *c);

/* True once this writer was fenced by another or a local sync failed:
 * clients get EROFS on writes from then on. */
bool cache_read_only_now(struct cache *c);

/* Flush everything to the store and commit it (logging progress every few
 * seconds), persist the local state, stop the flusher and free c. Returns 0
 * if everything reached the store, else the last store error (local state is
 * saved either way). */
int cache_close(struct cache *c);

#endif
