/* internal.h - structures shared by the files of core/ (not installed). */
#ifndef USBD_INTERNAL_H
#define USBD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nbd_proto.h"
#include "usbd.h"

#define USBD_DEFAULT_MAX_BLOCK (32u * 1024 * 1024)
#define USBD_DEFAULT_PREF_BLOCK 4096u

/* ------------------------------------------------------------- logging */
void srv_log(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --------------------------------------------------------------- wire */
static inline uint16_t be16_load(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t be32_load(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint64_t be64_load(const void *p)
{
    const uint8_t *b = p;
    return (uint64_t)be32_load(b) << 32 | be32_load(b + 4);
}
static inline void be16_store(void *p, uint16_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}
static inline void be32_store(void *p, uint32_t v)
{
    uint8_t *b = p;
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}
static inline void be64_store(void *p, uint64_t v)
{
    be32_store(p, (uint32_t)(v >> 32));
    be32_store((uint8_t *)p + 4, (uint32_t)v);
}

/* Read exactly n bytes. 0, or ECONNRESET at end of stream (*got says how
 * far it came), ETIMEDOUT when deadline (CLOCK_MONOTONIC; NULL: none) passes
 * first or SO_RCVTIMEO expires, or the errno of recv or poll. */
int wire_read(int fd, void *buf, size_t n, size_t *got, const struct timespec *deadline);
/* Write all of the iovecs. 0, ETIMEDOUT (deadline passed, or SO_SNDTIMEO
 * expired with nothing sent), or the errno of sendmsg (EPIPE: peer gone). */
struct iovec;
int wire_writev(int fd, struct iovec *iov, int iovcnt, const struct timespec *deadline);
int wire_write(int fd, const void *buf, size_t n, const struct timespec *deadline);

/* ----------------------------------------------------------- requests */
struct nbd_request {
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t length;
};

/* What a request is checked against. */
struct nbd_limits {
    uint64_t size;
    uint32_t min_block, max_block;
    uint16_t tflags;      /* transmission flags advertised on this connection */
    bool structured;      /* structured replies negotiated */
    bool base_allocation; /* base:allocation meta context selected */
};

/* Check one request; the single place where requests are validated.
 * Returns 0 if the device may run it, else the NBD error to answer with
 * (NBD_EINVAL, NBD_ENOSPC, NBD_EPERM, NBD_EOVERFLOW, NBD_ENOTSUP) and *why
 * says why in a few words. */
uint32_t nbd_validate_request(const struct nbd_request *req, const struct nbd_limits *lim,
                              const char **why);
const char *nbd_cmd_name(uint16_t type);
/* Map a device's errno to the nearest NBD error. */
uint32_t nbd_errno_to_wire(int err);

/* ------------------------------------------------------------- server */
struct listener {
    int fd;
    char *unix_path; /* removed at destroy; NULL for TCP */
    char *label;
};

struct conn;

struct usbd_server {
    struct usbd_dev *dev;
    struct usbd_server_config cfg; /* defaults filled in */
    char *export_name;
    char *description;
    uint32_t min_block, pref_block, max_block;

    struct listener *listeners;
    size_t nlisteners;
    int wake_pipe[2];
    atomic_bool stopping;

    pthread_mutex_t lock; /* protects conns, nconns, next_id */
    pthread_cond_t conns_done;
    struct conn *conns;
    unsigned nconns;
    uint64_t next_id;

    /* counters, for the exit summary and tests */
    atomic_uint_fast64_t ncmd[NBD_CMD_COUNT];
    atomic_uint_fast64_t nerrors;
    atomic_uint_fast64_t bytes_read, bytes_written;
};

/* One client connection. Owned by its own thread; linked into srv->conns. */
struct conn {
    struct usbd_server *srv;
    struct conn *next, *prev;
    int fd;
    uint64_t id;
    char label[96];
    bool adopted; /* kernel socket: no handshake */
    pthread_t thread;
    struct timespec deadline; /* CLOCK_MONOTONIC: when the handshake must be over */

    /* negotiated in the handshake */
    bool no_zeroes;
    bool structured;
    bool base_allocation;
    uint16_t tflags;

    /* transmission phase */
    pthread_mutex_t rlock; /* one reader at a time: request header + payload */
    pthread_mutex_t wlock; /* one writer at a time: a whole reply */
    atomic_bool dead;      /* stop reading; workers exit after their request */
    atomic_bool send_failed; /* set under wlock: the stream is broken, send nothing more */
    bool disc_seen;
    /* buffered input, guarded by rlock */
    uint8_t *rbuf;
    size_t rstart, rend;
    /* payload budget, guarded by budget_lock */
    pthread_mutex_t budget_lock;
    pthread_cond_t budget_cv;
    uint64_t budget_used;
    atomic_uint_fast64_t nrequests;
};

/* handshake.c: negotiate options until transmission starts (0) or the
 * client is gone or misbehaved (an errno; already logged). */
int nbd_handshake(struct conn *c);
/* transmission.c: serve requests with cfg.threads workers until the client
 * disconnects or the server stops. */
void nbd_transmission(struct conn *c);
/* The transmission flags for a connection with these negotiated features. */
uint16_t server_tflags(const struct usbd_server *srv, bool structured);
/* server.c: serve fd in the calling thread until the connection ends (the
 * fuzzer's entry point; the fd is closed on return). */
void server_serve_fd_inline(struct usbd_server *s, int fd, bool handshake);
/* server.c: does the export answer to this name? */
bool server_export_matches(const struct usbd_server *srv, const char *name, size_t len);

#endif
