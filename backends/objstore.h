/* objstore.h - the object-store interface and its implementations.
 *
 * This is the whole public API of the backends module. An object store is a
 * flat namespace of keys (byte strings) mapping to immutable byte blobs. The
 * cache stores sealed chunks, epoch records and the superblock in one; it
 * never knows which store it talks to. Implementations:
 *
 *   local   a directory tree on a local file system (objstore_local_open)
 *   fault   a wrapper over any store that injects errors, latency, hangs and
 *           damaged bodies, for tests (objstore_fault_open)
 *   s3      S3 / Ceph RGW over HTTP with libcurl (objstore_s3_open)
 *
 * Callers use the objstore_*() functions below, never the ops table
 * directly: those functions check keys and arguments once, so a backend
 * never sees an invalid key or a NULL out-pointer.
 *
 * Error convention (everywhere in this API): a function returns 0 on success
 * or a positive errno value on failure. The two codes a remote store needs
 * and errno lacks are aliases of real errno values (OBJSTORE_ESERVER,
 * OBJSTORE_ESLOWDOWN) so strerror() and the NBD error mapping still work.
 * Whether an error is worth retrying is decided in one place:
 * objstore_err_retriable().
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#ifndef USBD_OBJSTORE_H
#define USBD_OBJSTORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

/* The server answered with a 5xx other than throttling (500, 502, 504), or a
 * response broke off in the middle. Retriable. */
#define OBJSTORE_ESERVER EREMOTEIO
/* The server asked us to slow down (HTTP 503 SlowDown, 429). Retriable, with
 * a longer back-off than OBJSTORE_ESERVER. */
#define OBJSTORE_ESLOWDOWN EBUSY

/* True if err is transient: the same request, repeated after a back-off,
 * may succeed without anything else changing.
 *
 * Retriable: ETIMEDOUT, EAGAIN, EINTR, EBUSY (OBJSTORE_ESLOWDOWN),
 * EREMOTEIO (OBJSTORE_ESERVER), ECONNRESET, ECONNREFUSED, ECONNABORTED,
 * ENOTCONN, EPIPE, EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN, ENETRESET,
 * EPROTO (a garbled HTTP exchange, typically a proxy hiccup).
 *
 * Everything else is permanent, notably: ENOENT (missing object: an answer,
 * not a failure), EACCES and EPERM (credentials, policy), EINVAL (bad key or
 * argument), EFBIG (object larger than the caller's limit), EBADMSG (a body or
 * listing that does not parse or does not match its announced length), ENOSPC
 * and EDQUOT (the store is full: retrying fast will not free space; the
 * caller reports it and may try again much later), EROFS, ENOTDIR/EISDIR
 * (a key collides with a "directory" in the local backend), EIO (a local
 * disk error), ENOMEM. */
bool objstore_err_retriable(int err);

/* A short description of err ("Remote I/O error (server error)", ...). Never
 * NULL, thread-safe, the string is static. */
const char *objstore_strerror(int err);

/* ----------------------------------------------------------------- logging */

enum objstore_log_level {
    OBJSTORE_LOG_ERROR = 0,
    OBJSTORE_LOG_WARN = 1,
    OBJSTORE_LOG_INFO = 2,
    OBJSTORE_LOG_DEBUG = 3,
};

/* Receives one complete log line (no trailing newline) at one of the levels
 * above.
 * May be called from any thread, concurrently; the sink filters by level.
 * The levels have the same values as core's usbd_log_level. NULL in a
 * config means objstore_log_stderr. */
typedef void (*objstore_log_fn)(void *opaque, int level, const char *line);

/* The default sink: "objstore: <level>: <line>\n" to stderr. */
void objstore_log_stderr(void *opaque, int level, const char *line);

/* Format one line and hand it to fn (objstore_log_stderr if fn is NULL).
 * For backends: every failure is logged once, by the backend that sees it,
 * with the key and the cause; ENOENT is logged at debug level only, a
 * retriable error at warn, a permanent one at error. Callers add their own
 * decision (retry 3/8, giving up) but need not repeat the cause. */
void objstore_logf(objstore_log_fn fn, void *opaque, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The level a backend logs err at: debug for ENOENT, warn for a retriable
 * error, error for a permanent one. */
int objstore_err_log_level(int err);

/* -------------------------------------------------------------------- keys */

/* Longest key, in bytes (S3's limit). */
#define OBJSTORE_KEY_MAX 1024
/* Longest component between slashes (what a local file system allows). */
#define OBJSTORE_COMPONENT_MAX 255

/* 0 if key is valid for every backend, else EINVAL. A valid key is 1 to
 * OBJSTORE_KEY_MAX bytes, made of components separated by single '/', with
 * no leading or trailing '/', no empty component, no "." or ".." component,
 * no component longer than OBJSTORE_COMPONENT_MAX, and no byte below 0x20 or
 * equal to 0x7f. Bytes >= 0x80 (UTF-8) are allowed. The same rules for every
 * backend keep a volume portable between them. */
int objstore_key_check(const char *key);

/* 0 if prefix is a valid listing prefix, else EINVAL: "" or a valid key
 * optionally followed by '/' and a partial component; every complete
 * component obeys the key rules. Examples: "", "p/vol/", "p/vol/chunks/00". */
int objstore_prefix_check(const char *prefix);

/* ---------------------------------------------------------- results of ops */

/* A body read by objstore_get(). The caller owns data (malloc'd) and may
 * reuse one objstore_buf across many gets: a get grows data with realloc
 * only when the object does not fit, never beyond the caller's max. Start
 * from {0} (OBJSTORE_BUF_INIT); release with objstore_buf_free(). */
struct objstore_buf {
    void *data;  /* NULL or malloc'd, cap bytes */
    size_t len;  /* bytes valid after a successful get; 0 after a failed one */
    size_t cap;  /* allocated size of data */
};
#define OBJSTORE_BUF_INIT {NULL, 0, 0}
void objstore_buf_free(struct objstore_buf *buf);

/* One key of a listing. */
struct objstore_entry {
    char *key;     /* the full key, NUL-terminated */
    uint64_t size; /* object size in bytes */
};

/* One page of a listing. */
struct objstore_list {
    struct objstore_entry *entries; /* count entries in byte order of key */
    size_t count;
    /* NULL: the listing is complete. Otherwise more keys may follow: pass
     * next as `after` to get the next page. The page may hold fewer than
     * max entries (even none) and next still be set. */
    char *next;
};
#define OBJSTORE_LIST_INIT {NULL, 0, NULL}
/* Free a page filled by objstore_list() and reset it to empty. */
void objstore_list_free(struct objstore_list *list);

/* Default (and, for S3, largest useful) page size. */
#define OBJSTORE_LIST_MAX_DEFAULT 1000

/* ------------------------------------------------------- the store itself */

/* The operations of an object store.
 *
 * Threading: every operation may be called from many threads at once, on
 * the same or different keys (several flushers and fetchers). A backend that
 * cannot do that serialises internally. close() is called once, when no
 * other operation is running or will run.
 *
 * Arguments: objstore_*() check them before calling an op; an op may assume
 * a valid key (objstore_key_check), a valid prefix, non-NULL out-pointers,
 * buf != NULL when len > 0, and 1 <= max <= OBJSTORE_LIST_MAX_DEFAULT.
 *
 * Atomicity: put replaces the whole object at once: a concurrent or later
 * get, get_range or head sees the old object, no object, or the whole new
 * object, never a part or a mix. A put that fails leaves the old object (or
 * no object), or, if it failed after the store took the object (a lost
 * reply, a failed directory fsync), the whole new object; never a partial
 * object, never a temporary object in listings. Hence callers write new
 * content under new keys (immutable chunk generations) or treat a failed
 * put as "maybe done".
 *
 * Durability: when put or delete returns 0, the change survives a crash or
 * power cut of the machine holding the store.
 *
 * Consistency: once put returns 0, every get, head and list that starts
 * afterwards (any thread) sees the new object; once delete returns 0, none
 * sees the deleted one. (Real S3 has been strongly consistent since 2020;
 * Ceph RGW always was.)
 *
 * Missing objects: get, get_range and head of a missing key return ENOENT;
 * delete of a missing key returns 0.
 *
 * Errors: 0 or a positive errno value, classified by
 * objstore_err_retriable(). Each op logs its failure once (see
 * objstore_logf) through the log sink given when the store was opened. On
 * failure, out-parameters hold "nothing" (len 0, empty list) and the
 * caller's buffers stay owned by the caller.
 */
struct objstore;

struct objstore_ops {
    /* Store len bytes of buf under key, replacing any object there. */
    int (*put)(struct objstore *s, const char *key, const void *buf, size_t len);

    /* Read the whole object into out (see struct objstore_buf): EFBIG, with
     * nothing allocated, if the object is larger than max bytes. */
    int (*get)(struct objstore *s, const char *key, size_t max, struct objstore_buf *out);

    /* Read bytes [off, off + len) of the object into buf, clipped at the
     * object's end: *got is the number of bytes read, less than len only if
     * the object ends first (0 if off >= size). */
    int (*get_range)(struct objstore *s, const char *key, uint64_t off, size_t len, void *buf,
                     size_t *got);

    /* Set *size to the object's size. */
    int (*head)(struct objstore *s, const char *key, uint64_t *size);

    /* Remove the object. A missing object is success. */
    int (*del)(struct objstore *s, const char *key);

    /* One page of the keys that start with prefix and sort strictly after
     * `after` (NULL: from the start), in byte order (memcmp, like S3),
     * at most max of them. Fill *out (which is empty on entry). Keys put or
     * deleted while a listing is under way may or may not appear; every key
     * that exists from the first page to the last appears exactly once. */
    int (*list)(struct objstore *s, const char *prefix, const char *after, size_t max,
                struct objstore_list *out);

    /* Release everything, including s itself. */
    void (*close)(struct objstore *s);

    /* Optional (NULL: objstore_delete_many() calls del for each key).
     * Remove the n objects (1 <= n, every key valid, no more than
     * OBJSTORE_DELETE_MANY_MAX); missing ones are success. Keys whose delete
     * failed are logged each; the return value is 0 if every key is gone,
     * else the error of one key that failed, a permanent one if any failed
     * permanently. Keys may be deleted although the call fails (deleting is
     * idempotent: the caller repeats the whole batch). */
    int (*del_many)(struct objstore *s, const char *const *keys, size_t n);

    /* Optional (NULL: objstore_create() answers ENOTSUP). Store len bytes
     * of buf under key only if no object has that key: EEXIST, with the
     * existing object left as it was, if one does. Of concurrent creates of
     * one key exactly one succeeds; atomicity, durability and consistency
     * are those of put. A create whose reply was lost may be repeated by
     * the backend's own retries and then answer EEXIST about its own
     * object: a caller that must know reads the object back and compares.
     * This is what fences a second writer (an epoch record is created, never
     * replaced), so a backend offers it only where the store really refuses
     * the second create. */
    int (*create)(struct objstore *s, const char *key, const void *buf, size_t len);
};

struct objstore {
    const struct objstore_ops *ops;
    void *priv;          /* the backend's state */
    const char *name;    /* for log lines: "local:/srv/store", "fault(local:...)" */
    objstore_log_fn log; /* the sink given at open (NULL: stderr) */
    void *log_opaque;
};

/* The calls. Each checks its arguments (EINVAL, logged at error level for a
 * bad key) and dispatches to s->ops; see struct objstore_ops for the
 * contract. */
int objstore_put(struct objstore *s, const char *key, const void *buf, size_t len);
/* Put only if absent (see the create op): 0, EEXIST if the key exists,
 * ENOTSUP if the backend cannot do it, or an error as for put. A store may
 * claim conditional creates and ignore them (an old S3 implementation
 * simply overwrites): callers probe once (create a key twice) before they
 * rely on it. */
int objstore_create(struct objstore *s, const char *key, const void *buf, size_t len);
int objstore_get(struct objstore *s, const char *key, size_t max, struct objstore_buf *out);
int objstore_get_range(struct objstore *s, const char *key, uint64_t off, size_t len, void *buf,
                       size_t *got);
int objstore_head(struct objstore *s, const char *key, uint64_t *size);
int objstore_delete(struct objstore *s, const char *key);
/* Delete n keys (0 is a no-op), in batches of at most
 * OBJSTORE_DELETE_MANY_MAX through the backend's del_many when it has one
 * (S3's multi-object delete: one request per 1000 keys), else one by one.
 * Every key is checked first: one invalid key is EINVAL with nothing
 * deleted. Otherwise every key is attempted even after a failure (so a
 * repeat has less to do), and the result is as for del_many. */
#define OBJSTORE_DELETE_MANY_MAX 1000
int objstore_delete_many(struct objstore *s, const char *const *keys, size_t n);
/* max 0 means OBJSTORE_LIST_MAX_DEFAULT; larger values are capped to it.
 * prefix NULL means "". *out must be empty (OBJSTORE_LIST_INIT or freed). */
int objstore_list(struct objstore *s, const char *prefix, const char *after, size_t max,
                  struct objstore_list *out);
/* Close s (NULL is a no-op). No operation may be running. */
void objstore_close(struct objstore *s);

/* ------------------------------------------------------------------ local */

/* A store in a directory. Key "a/b/c" is the file <root>/a/b/c; directories
 * are created on demand (and their parent fsync'd). put writes a temporary
 * file ".objstore-tmp-*" in the target directory, fsyncs it, renames it over
 * the final name and fsyncs the directory; create does the same but moves
 * the temporary in with renameat2(RENAME_NOREPLACE), or link() where the
 * file system lacks that flag, so the kernel refuses an existing name
 * (ENOTSUP on a file system with neither, such as vfat); delete unlinks and fsyncs the
 * directory. Empty directories are left in place. Temporary files are never
 * listed; at open, those older than one hour (left by a crash) are removed
 * (younger ones may belong to another live writer of the same tree).
 *
 * Local-only limits: a key cannot be both an object and a "directory" of
 * other keys ("a" and "a/b"): such a put fails with ENOTDIR or EISDIR, and a
 * get sees ENOENT. A component starting with ".objstore-tmp-" is EINVAL.
 * A full file system is ENOSPC, leaving the old object (if any) and no
 * temporary file. */
struct objstore_local_config {
    const char *root;      /* the directory; required */
    bool create;           /* create root (one level, mode 0755) if missing */
    bool read_only;        /* put and delete fail with EROFS; no clean-up at open */
    objstore_log_fn log;   /* NULL: objstore_log_stderr */
    void *log_opaque;
};

/* Open a local store. Errors: EINVAL (no root), ENOENT (root missing and
 * !create), ENOTDIR, errno of mkdir/open; logged. */
int objstore_local_open(const struct objstore_local_config *cfg, struct objstore **out);

/* ------------------------------------------------------------------ fault */

/* The operations, as indexes into per-operation settings and counters and
 * as bits (1u << op) in operation masks. */
enum objstore_op {
    OBJSTORE_OP_PUT = 0,
    OBJSTORE_OP_GET,
    OBJSTORE_OP_RANGE, /* get_range */
    OBJSTORE_OP_HEAD,
    OBJSTORE_OP_DELETE,
    OBJSTORE_OP_LIST,
    OBJSTORE_OP_COUNT
};
#define OBJSTORE_OP_ALL ((1u << OBJSTORE_OP_COUNT) - 1)

/* What to inject into one operation. Probabilities are in [0, 1]. */
struct objstore_fault_op {
    double error;        /* fail before reaching the store */
    double error_after;  /* do it in the store, then fail anyway (a lost
                          * reply: the caller must cope with a put that
                          * happened although it "failed") */
    int err;             /* the errno injected; 0 means OBJSTORE_ESERVER */
    double corrupt;      /* get/range: flip one byte of the body returned;
                          * put: store the body with one byte flipped.
                          * Bodies of 0 bytes are left alone. */
    double truncate;     /* get/range: return a shorter body (0 to len-1
                          * bytes) with success; put: store a shorter one */
    uint64_t latency_ns; /* added before the operation */
    uint64_t latency_max_ns; /* if > latency_ns: uniform in [latency, max] */
};

struct objstore_fault_config {
    struct objstore_fault_op op[OBJSTORE_OP_COUNT];
    unsigned hang_ops;     /* mask of operations that hang */
    uint64_t hang_after;   /* that many calls of hang_ops pass before the
                            * hang starts */
    uint64_t hang_for_ns;  /* 0: hang until objstore_fault_release();
                            * else hang that long, then proceed */
    uint64_t seed;         /* random source; the same seed and the same
                            * sequence of calls give the same faults */
    enum objstore_fault_create {
        OBJSTORE_CREATE_PASS = 0, /* create goes to the inner store's create */
        OBJSTORE_CREATE_NONE,     /* the store has no conditional create: ENOTSUP */
        OBJSTORE_CREATE_IGNORED,  /* the store ignores the condition: a put */
    } create;
    char match[256];       /* "" (every key) or globs separated by '+'
                            * (fnmatch; a star also matches slashes): only calls on a
                            * matching key (the prefix, for list) suffer
                            * faults; the others are only counted */
};

/* Parse a fault spec into *cfg (which is reset first). On error, returns
 * EINVAL and writes a one-line explanation naming the offending item into
 * err (if errlen > 0).
 *
 * Grammar (no spaces needed; spaces around items are ignored; items are
 * applied left to right, so a later item overrides an earlier one):
 *
 *   spec     = "" | item *( "," item )
 *   item     = [ op "-" ] fault "=" value
 *            | "hang=" ops | "hang-after=" count | "hang-for=" duration
 *            | "seed=" count | "match=" glob *( "+" glob )
 *            | "create=" ( "pass" | "none" | "ignored" )
 *   op       = "put" | "get" | "range" | "head" | "delete" | "list"
 *   ops      = "all" | "none" | op *( "+" op )
 *   fault    = "error" | "error-after"      value: probability
 *            | "errno"                      value: errno
 *            | "corrupt" | "truncate"       value: probability
 *            | "latency"                    value: duration [ ".." duration ]
 *   probability = decimal in [0, 1] | decimal "%"       ("0.05" or "5%")
 *   duration = decimal unit, unit = "ns" | "us" | "ms" | "s" | "m"  ("0" alone is allowed)
 *   errno    = "5xx" (OBJSTORE_ESERVER) | "slowdown" (OBJSTORE_ESLOWDOWN)
 *            | a name such as "ETIMEDOUT", "ECONNRESET", "EIO", "ENOSPC"
 *            | a number 1..4095
 *   count    = decimal unsigned 64-bit integer
 *
 * Without an op, error, error-after, errno and latency apply to every
 * operation; corrupt and truncate apply to get and range (the reads: to
 * damage what is stored, say put-corrupt / put-truncate explicitly).
 * corrupt and truncate exist only for put, get and range.
 *
 * create= makes the wrapped store one without conditional creates (none:
 * ENOTSUP) or one that takes If-None-Match for a plain put (ignored), as
 * old S3 implementations do: what a writer's probe must detect.
 * match= limits every fault to keys matching one of its globs, e.g.
 * "put-error=1,match=vol/chunks/?*": chunk uploads fail, the rest works.
 *
 * Example: "put-error=0.5,get-corrupt=0.1,latency=20ms,hang=put,seed=42". */
int objstore_fault_parse(const char *spec, struct objstore_fault_config *cfg, char *err,
                         size_t errlen);

/* Wrap inner. On success the wrapper owns inner (closing the wrapper closes
 * it); on failure the caller still does. Each injected fault is logged:
 * errors at warn, damaged bodies and hangs at info.
 * objstore_create() is a put for the faults (put-error, put-corrupt, ...)
 * and the counters, and goes through to the inner store's create.
 * objstore_delete_many() goes through to the inner store's del_many (an S3
 * multi-object delete stays one request) and counts as one delete call per
 * batch: one fault decision for the batch, so an injected error before
 * deletes none of its keys, an error after deletes all of them.
 * Errors: ENOMEM, EINVAL (a probability outside [0, 1], corrupt/truncate on
 * an op other than put/get/range, latency_max_ns below latency_ns). */
int objstore_fault_open(struct objstore *inner, const struct objstore_fault_config *cfg,
                        objstore_log_fn log, void *log_opaque, struct objstore **out);

/* Parse spec (logging the parse error, if any, at error level) and wrap. */
int objstore_fault_open_spec(struct objstore *inner, const char *spec, objstore_log_fn log,
                             void *log_opaque, struct objstore **out);

/* Replace the configuration of a running wrapper (the random source is
 * reseeded; the hang-after count restarts). Operations hanging now stay
 * hanging until released. EINVAL if s is not a fault wrapper or cfg is bad. */
int objstore_fault_configure(struct objstore *s, const struct objstore_fault_config *cfg);

/* From now on, calls of the operations in ops_mask hang (0: none do). */
int objstore_fault_hang(struct objstore *s, unsigned ops_mask);

/* Let every operation hanging now proceed, and stop hanging new calls (as
 * objstore_fault_hang(s, 0)). */
int objstore_fault_release(struct objstore *s);

/* Counters of what the wrapper did, per operation. */
struct objstore_fault_stats {
    uint64_t calls[OBJSTORE_OP_COUNT];     /* calls received */
    uint64_t errors[OBJSTORE_OP_COUNT];    /* errors injected (before + after) */
    uint64_t errors_after[OBJSTORE_OP_COUNT]; /* of which after the store did it */
    uint64_t corrupted[OBJSTORE_OP_COUNT]; /* bodies with a byte flipped */
    uint64_t truncated[OBJSTORE_OP_COUNT]; /* bodies cut short */
    uint64_t delayed[OBJSTORE_OP_COUNT];   /* calls that slept for latency */
    uint64_t hung[OBJSTORE_OP_COUNT];      /* calls that hung */
    unsigned hanging;                      /* calls hanging right now */
};

/* Copy the counters. EINVAL if s is not a fault wrapper. */
int objstore_fault_stats(struct objstore *s, struct objstore_fault_stats *out);

/* "put", "get", "range", "head", "delete", "list"; "?" for anything else. */
const char *objstore_op_name(enum objstore_op op);

/* --------------------------------------------------------------------- s3 */

/* A store in an S3 bucket (AWS S3, Ceph RADOS Gateway, MinIO, ...), over
 * HTTP(S) with libcurl, requests signed with AWS Signature V4.
 *
 * Key "a/b" is the object "<prefix>/a/b" in the bucket (just "a/b" with no
 * prefix); listings strip the prefix again. put is one PUT with the whole
 * body (S3 makes it atomic); get, get_range and head are GET, ranged GET and
 * HEAD; list is ListObjectsV2 (start-after = `after`, next = the last key
 * of a truncated page); del_many is the multi-object delete (POST ?delete,
 * up to 1000 keys), falling back to single deletes on a store that answers
 * NotImplemented; create is a PUT with "If-None-Match: *" (AWS since 2024,
 * MinIO, Ceph RGW): 412 PreconditionFailed is EEXIST. A store that ignores
 * the header overwrites instead: callers probe (see objstore_create).
 *
 * Threading: up to `connections` operations run at once, each on its own
 * curl handle (kept between operations, so its connection stays open);
 * further callers wait for a free one. The handles share the DNS and TLS
 * session caches.
 *
 * Retries: a retriable failure (objstore_err_retriable: connection refused
 * or reset, timeouts, 5xx, throttling) is retried inside the operation, up
 * to `attempts` tries in all, after a back-off drawn uniformly from
 * [0, min(retry_cap_ms, retry_base_ms * 2^(n-1))] ("full jitter"), with a
 * base ten times larger after OBJSTORE_ESLOWDOWN. Each retry is logged at
 * info; the final failure once, at its level. Then the error is returned:
 * the caller decides about longer waits. Permanent errors return at once.
 *
 * Error mapping (the whole table is in s3_errors.c): 404 NoSuchKey ->
 * ENOENT; 404 NoSuchBucket -> ENXIO (never ENOENT, which the cache would
 * read as "absent chunk"); 403 -> EACCES (RGW's 403 QuotaExceeded ->
 * EDQUOT); 500/502/504 and bodies cut short -> OBJSTORE_ESERVER; 503 and
 * 429 -> OBJSTORE_ESLOWDOWN; cannot connect -> ECONNREFUSED (or
 * EHOSTUNREACH, ENETUNREACH); timeouts and stalls below the low-speed
 * limit -> ETIMEDOUT; a listing that does not parse -> EBADMSG; other 4xx
 * -> EINVAL, EPERM, EFBIG, ... Every log line of a failed request names the
 * key, the HTTP status, the S3 error Code and, where it helps, what to check.
 *
 * Credentials, in this order: access_key_id + secret_access_key (+
 * session_token) in the config; the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the shared credentials file
 * (credentials_file, else $AWS_SHARED_CREDENTIALS_FILE, else
 * ~/.aws/credentials) at profile (else $AWS_PROFILE, else "default").
 * The secret and the session token are never logged. */
struct objstore_s3_config {
    const char *endpoint;    /* URL: "http://127.0.0.1:7480", "https://s3.example";
                              * NULL: https://s3.<region>.amazonaws.com */
    const char *region;      /* signing region; NULL: "us-east-1" (also right
                              * for RGW and MinIO out of the box) */
    const char *bucket;      /* required */
    const char *prefix;      /* NULL or "": none; else a valid key (see
                              * objstore_key_check), one trailing '/' allowed */
    bool path_style;         /* http://host/bucket/key instead of
                              * http://bucket.host/key; implied when the
                              * endpoint's host is an IP address or localhost */
    const char *ca_file;     /* PEM bundle to trust; NULL: the system's */
    bool insecure_skip_tls_verify; /* accept any certificate and host name:
                                    * for tests against self-signed servers */
    const char *access_key_id;     /* NULL: environment, then file */
    const char *secret_access_key;
    const char *session_token;     /* NULL: none (or from the same source) */
    const char *profile;           /* NULL: $AWS_PROFILE, else "default" */
    const char *credentials_file;  /* NULL: see above */
    unsigned connections;    /* parallel requests (curl handles); 0: 8 */
    unsigned attempts;       /* tries per operation, >= 1; 0: 4 */
    unsigned retry_base_ms;  /* 0: 100 */
    unsigned retry_cap_ms;   /* 0: 5000 */
    unsigned connect_timeout_ms; /* 0: 10000 */
    unsigned low_speed_bytes;    /* a transfer slower than this many bytes/s ... */
    unsigned low_speed_time_s;   /* ... for this long fails with ETIMEDOUT;
                                  * 0: 1 byte/s for 30 s (a dead peer) */
    unsigned request_timeout_s;  /* whole request; 0: none (large objects
                                  * on slow links rely on the low-speed limit) */
    bool unsigned_payload;   /* sign bodies as UNSIGNED-PAYLOAD instead of
                              * hashing them: saves CPU on small boards; only
                              * TLS then protects the body in transit */
    bool create_bucket;      /* create the bucket at open if missing (in
                              * `region`); BucketAlreadyOwnedByYou is success */
    bool skip_check;         /* do not probe the bucket at open (see below) */
    objstore_log_fn log;     /* NULL: objstore_log_stderr */
    void *log_opaque;
};

/* Open an S3 store. Unless skip_check, probes the bucket with a one-key
 * listing under the prefix, so that bad credentials, a clock off by more
 * than 15 minutes, a missing bucket or an unreachable endpoint are one
 * clear error here rather than on the first flush. Logs one info line
 * describing the store (secrets shown as <redacted>).
 * Errors: EINVAL (no bucket, bad endpoint URL, bad prefix, half a
 * credentials pair), ENOENT (no credentials found anywhere; or the bucket
 * does not exist: the log line says which), EACCES, ENOMEM, and whatever
 * the probe met (ECONNREFUSED, ETIMEDOUT, ... after the retries). */
int objstore_s3_open(const struct objstore_s3_config *cfg, struct objstore **out);

/* Write a one-line description of cfg into buf ("endpoint=... bucket=...
 * secret_access_key=<redacted> ..."): what a program may print or log.
 * Never includes a secret or a session token. Returns the length
 * snprintf would have written. */
int objstore_s3_config_describe(const struct objstore_s3_config *cfg, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* USBD_OBJSTORE_H */
