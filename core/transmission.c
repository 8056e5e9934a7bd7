/* transmission.c - the request loop of one connection.
 *
 * Concurrency: cfg.threads workers share the connection. A worker takes the
 * read lock, reads one request (header and, for WRITE, payload), releases it,
 * runs the request on the device, then takes the write lock and sends the
 * whole reply. So up to `threads` requests are in flight per connection and
 * replies go out in completion order, as the protocol allows.
 *
 * Memory: every payload buffer is charged to the connection's budget
 * (cfg.inflight_bytes) before it is allocated, and no request may exceed
 * max_block, so a client cannot make the server allocate more than that,
 * whatever lengths it announces. A client that stops reading its replies
 * stalls only its own connection: its workers block in send, its budget runs
 * out, and no one else is affected; after cfg.send_timeout_s without
 * progress the connection is cut off (send_locked).
 *
 * Ending: DISC, end of stream or a protocol error marks the connection dead;
 * workers finish and answer the requests they hold, then exit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"

#define RBUF_SIZE (64 * 1024)
#define KEEP_BUF_MAX (1024 * 1024) /* a worker keeps buffers up to this size */
#define MAX_EXTENTS 256            /* per BLOCK_STATUS reply */
#define ZERO_CHUNK (1024 * 1024)
#define DRAIN_MAX (64u * 1024 * 1024) /* oversized WRITE payloads read and dropped */

struct worker {
    struct conn *c;
    uint8_t *buf; /* kept between requests */
    size_t cap;
};

/* Buffered read under rlock: small requests come many per recv(). Large
 * payloads go straight from the socket into their buffer. */
static int conn_read(struct conn *c, void *dst, size_t n, size_t *got)
{
    uint8_t *d = dst;
    size_t want = n;
    while (n > 0) {
        size_t avail = c->rend - c->rstart;
        if (avail > 0) {
            size_t k = avail < n ? avail : n;
            memcpy(d, c->rbuf + c->rstart, k);
            c->rstart += k;
            d += k;
            n -= k;
            continue;
        }
        c->rstart = c->rend = 0;
        if (n >= RBUF_SIZE / 2) {
            size_t g = 0;
            int err = wire_read(c->fd, d, n, &g, NULL);
            *got = want - n + g;
            return err;
        }
        ssize_t r = recv(c->fd, c->rbuf, RBUF_SIZE, 0);
        if (r > 0) {
            c->rend = (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        *got = want - n;
        return r == 0 ? ECONNRESET : errno;
    }
    *got = want;
    return 0;
}

/* Read and drop n payload bytes. */
static int drain(struct conn *c, uint64_t n)
{
    uint8_t sink[4096];
    size_t got;
    while (n > 0) {
        size_t k = n < sizeof sink ? (size_t)n : sizeof sink;
        int err = conn_read(c, sink, k, &got);
        if (err)
            return err;
        n -= k;
    }
    return 0;
}

static void budget_take(struct conn *c, uint64_t n)
{
    pthread_mutex_lock(&c->budget_lock);
    while (c->budget_used + n > c->srv->cfg.inflight_bytes && !atomic_load(&c->dead))
        pthread_cond_wait(&c->budget_cv, &c->budget_lock);
    c->budget_used += n;
    pthread_mutex_unlock(&c->budget_lock);
}

static void budget_give(struct conn *c, uint64_t n)
{
    pthread_mutex_lock(&c->budget_lock);
    c->budget_used -= n;
    pthread_cond_broadcast(&c->budget_cv);
    pthread_mutex_unlock(&c->budget_lock);
}

/* A buffer of n bytes: the worker's own if it is big enough to keep, else
 * a temporary one. NULL on ENOMEM. */
static void *buf_get(struct worker *w, size_t n)
{
    if (n <= w->cap)
        return w->buf;
    if (n <= KEEP_BUF_MAX) {
        void *b = realloc(w->buf, n);
        if (!b)
            return NULL;
        w->buf = b;
        w->cap = n;
        return b;
    }
    return malloc(n);
}

static void buf_put(struct worker *w, void *b)
{
    if (b != w->buf)
        free(b);
}

static void mark_dead(struct conn *c)
{
    atomic_store(&c->dead, true);
    /* Wake a reader that waits for budget so it notices. */
    pthread_mutex_lock(&c->budget_lock);
    pthread_cond_broadcast(&c->budget_cv);
    pthread_mutex_unlock(&c->budget_lock);
}

/* ---------------------------------------------------------------- replies */

/* After a failed send the stream may hold part of a reply: nothing more can
 * be sent on it. A client that stopped reading (the send timeout, see
 * set_send_timeout() in server.c) is told so in one line and cut off whole:
 * the shutdown wakes the worker waiting in recv for its next request. */
static int send_locked(struct conn *c, struct iovec *iov, int n)
{
    pthread_mutex_lock(&c->wlock);
    int err = atomic_load(&c->send_failed) ? EPIPE : wire_writev(c->fd, iov, n, NULL);
    if (err && !atomic_load(&c->send_failed)) {
        atomic_store(&c->send_failed, true);
        if (err == ETIMEDOUT) {
            srv_log(c->srv, USBD_LOG_WARN, "%s: client not reading its replies: nothing could be "
                    "sent for %us, disconnecting (-send-timeout)", c->label,
                    c->srv->cfg.send_timeout_s);
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&c->wlock);
    if (err)
        mark_dead(c);
    return err;
}

static int reply_simple(struct conn *c, uint64_t cookie, uint32_t error, const void *data,
                        uint32_t len)
{
    uint8_t h[16];
    be32_store(h, NBD_SIMPLE_REPLY_MAGIC);
    be32_store(h + 4, error);
    be64_store(h + 8, cookie);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
    return send_locked(c, iov, data && len ? 2 : 1);
}

static void chunk_header(uint8_t h[20], uint16_t flags, uint16_t type, uint64_t cookie,
                         uint32_t len)
{
    be32_store(h, NBD_STRUCTURED_REPLY_MAGIC);
    be16_store(h + 4, flags);
    be16_store(h + 6, type);
    be64_store(h + 8, cookie);
    be32_store(h + 16, len);
}

static int reply_error_chunk(struct conn *c, uint64_t cookie, uint32_t error, const char *msg)
{
    uint16_t ml = (uint16_t)strlen(msg);
    uint8_t h[20 + 6];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6u + ml);
    be32_store(h + 20, error);
    be16_store(h + 24, ml);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)msg, ml}};
    return send_locked(c, iov, ml ? 2 : 1);
}

/* An error answer, in the form the connection negotiated. */
static int reply_error(struct conn *c, const struct nbd_request *r, uint32_t error,
                       const char *msg)
{
    /* With structured replies, READ must never get a simple reply. */
    if (c->structured && r->type == NBD_CMD_READ)
        return reply_error_chunk(c, r->cookie, error, msg);
    return reply_simple(c, r->cookie, error, NULL, 0);
}

static int reply_read(struct conn *c, const struct nbd_request *r, const void *data)
{
    if (!c->structured)
        return reply_simple(c, r->cookie, 0, data, r->length);
    uint8_t h[20 + 8];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie, 8 + r->length);
    be64_store(h + 20, r->offset);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, r->length}};
    return send_locked(c, iov, 2);
}

/* --------------------------------------------------------------- commands */

static unsigned dev_flags(uint16_t f)
{
    return ((f & NBD_CMD_FLAG_FUA) ? USBD_FUA : 0) | ((f & NBD_CMD_FLAG_NO_HOLE) ? USBD_NO_HOLE : 0) |
           ((f & NBD_CMD_FLAG_FAST_ZERO) ? USBD_FAST_ZERO : 0);
}

/* WRITE_ZEROES for a device without its own: write zero buffers. */
static int emulate_write_zeroes(struct usbd_dev *dev, uint32_t len, uint64_t off, unsigned flags)
{
    if (flags & USBD_FAST_ZERO)
        return ENOTSUP;
    size_t bl = len < ZERO_CHUNK ? len : ZERO_CHUNK;
    void *z = calloc(1, bl);
    if (!z)
        return ENOMEM;
    int err = 0;
    while (len > 0 && !err) {
        uint32_t n = len < bl ? len : (uint32_t)bl;
        err = dev->ops->write(dev->priv, z, n, off, flags & USBD_FUA);
        off += n;
        len -= n;
    }
    free(z);
    return err;
}

static int do_block_status(struct conn *c, const struct nbd_request *r)
{
    struct usbd_dev *dev = c->srv->dev;
    struct usbd_extent ext[MAX_EXTENTS];
    size_t n = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : MAX_EXTENTS;
    int err = 0;
    if (dev->ops->block_status) {
        err = dev->ops->block_status(dev->priv, r->length, r->offset, ext, &n);
    } else {
        ext[0] = (struct usbd_extent){.length = r->length, .flags = 0};
        n = 1;
    }
    uint64_t total = 0;
    for (size_t i = 0; !err && i < n; i++) {
        total += ext[i].length;
        if (ext[i].length == 0 || ext[i].length > UINT32_MAX)
            err = EIO;
    }
    if (!err && (n == 0 || total > r->length)) {
        srv_log(c->srv, USBD_LOG_ERROR, "%s: device block_status returned %zu extents covering %llu "
                "of %u bytes (bug in the device)", c->label, n, (unsigned long long)total, r->length);
        err = EIO;
    }
    if (err)
        return reply_error(c, r, nbd_errno_to_wire(err), "block status failed");

    uint8_t h[20 + 4];
    uint8_t body[MAX_EXTENTS * 8];
    chunk_header(h, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie,
                 (uint32_t)(4 + 8 * n));
    be32_store(h + 20, NBD_META_ID_BASE_ALLOCATION);
    for (size_t i = 0; i < n; i++) {
        uint32_t st = 0;
        st |= (ext[i].flags & USBD_EXTENT_HOLE) ? NBD_STATE_HOLE : 0;
        st |= (ext[i].flags & USBD_EXTENT_ZERO) ? NBD_STATE_ZERO : 0;
        be32_store(body + 8 * i, (uint32_t)ext[i].length);
        be32_store(body + 8 * i + 4, st);
    }
    struct iovec iov[2] = {{h, sizeof h}, {body, 8 * n}};
    return send_locked(c, iov, 2);
}

/* Run a validated request on the device and answer it. */
static void run_request(struct conn *c, const struct nbd_request *r, void *buf)
{
    struct usbd_dev *dev = c->srv->dev;
    const struct usbd_dev_ops *ops = dev->ops;
    int err = 0;
    atomic_fetch_add(&c->srv->ncmd[r->type], 1);
    switch (r->type) {
    case NBD_CMD_READ:
        err = ops->read(dev->priv, buf, r->length, r->offset);
        if (!err) {
            atomic_fetch_add(&c->srv->bytes_read, r->length);
            reply_read(c, r, buf);
            return;
        }
        break;
    case NBD_CMD_WRITE:
        err = ops->write(dev->priv, buf, r->length, r->offset, dev_flags(r->flags));
        if (!err)
            atomic_fetch_add(&c->srv->bytes_written, r->length);
        break;
    case NBD_CMD_FLUSH:
        err = ops->flush ? ops->flush(dev->priv) : 0;
        break;
    case NBD_CMD_TRIM:
        err = ops->trim(dev->priv, r->length, r->offset, dev_flags(r->flags));
        break;
    case NBD_CMD_WRITE_ZEROES:
        err = ops->write_zeroes
                  ? ops->write_zeroes(dev->priv, r->length, r->offset, dev_flags(r->flags))
                  : emulate_write_zeroes(dev, r->length, r->offset, dev_flags(r->flags));
        break;
    case NBD_CMD_CACHE:
        err = ops->cache ? ops->cache(dev->priv, r->length, r->offset) : 0;
        break;
    case NBD_CMD_BLOCK_STATUS:
        do_block_status(c, r);
        return;
    }
    if (err) {
        atomic_fetch_add(&c->srv->nerrors, 1);
        /* FAST_ZERO's ENOTSUP is an answer, not a failure. */
        if (!(err == ENOTSUP && (r->flags & NBD_CMD_FLAG_FAST_ZERO)))
            srv_log(c->srv, USBD_LOG_WARN, "%s: %s offset %llu length %u failed: %s", c->label,
                    nbd_cmd_name(r->type), (unsigned long long)r->offset, r->length,
                    strerror(err));
        reply_error(c, r, nbd_errno_to_wire(err), strerror(err));
        return;
    }
    reply_simple(c, r->cookie, 0, NULL, 0);
}

static void limits_of(const struct conn *c, struct nbd_limits *lim)
{
    const struct usbd_server *s = c->srv;
    *lim = (struct nbd_limits){
        .size = s->dev->size,
        .min_block = s->min_block,
        .max_block = s->max_block,
        .tflags = c->tflags,
        .structured = c->structured,
        .base_allocation = c->base_allocation,
    };
}

static void log_read_end(struct conn *c, int err, size_t got, size_t want, const char *what)
{
    if (atomic_load(&c->send_failed))
        return; /* cut off by send_locked(), which said why */
    if (err == ECONNRESET && got == 0 && what[0] == 'h')
        srv_log(c->srv, USBD_LOG_INFO, "%s: client closed the connection without NBD_CMD_DISC",
                c->label);
    else if (err == ECONNRESET)
        srv_log(c->srv, USBD_LOG_WARN, "%s: client disconnected mid-request (%zu of %zu %s bytes)",
                c->label, got, want, what);
    else if (!atomic_load(&c->srv->stopping))
        srv_log(c->srv, USBD_LOG_WARN, "%s: receive failed: %s", c->label, strerror(err));
}

/* Read one request and its payload. Returns false when the worker should
 * exit. On true, *payload is the buffer to use (may be NULL) and *charged
 * the budget taken. *verdict is the validation result. */
static bool read_request(struct worker *w, struct nbd_request *r, uint32_t *verdict,
                         const char **why, void **payload, uint64_t *charged)
{
    struct conn *c = w->c;
    uint8_t h[28];
    size_t got = 0;
    *payload = NULL;
    *charged = 0;
    if (atomic_load(&c->dead))
        return false;
    int err = conn_read(c, h, sizeof h, &got);
    if (err) {
        log_read_end(c, err, got, sizeof h, "header");
        mark_dead(c);
        return false;
    }
    if (be32_load(h) != NBD_REQUEST_MAGIC) {
        srv_log(c->srv, USBD_LOG_WARN, "%s: bad request magic 0x%08x, disconnecting", c->label,
                be32_load(h));
        mark_dead(c);
        return false;
    }
    *r = (struct nbd_request){
        .flags = be16_load(h + 4),
        .type = be16_load(h + 6),
        .cookie = be64_load(h + 8),
        .offset = be64_load(h + 16),
        .length = be32_load(h + 24),
    };
    c->nrequests++;
    if (r->type == NBD_CMD_DISC) {
        c->disc_seen = true;
        mark_dead(c);
        return false;
    }
    struct nbd_limits lim;
    limits_of(c, &lim);
    *verdict = nbd_validate_request(r, &lim, why);

    const bool has_payload = r->type == NBD_CMD_WRITE;
    if (has_payload && r->length > c->srv->max_block) {
        /* A client sends the whole payload before it expects the reply, so
         * drain it through a small buffer (no allocation of its size) and
         * answer EINVAL. Beyond DRAIN_MAX that costs too much time: answer
         * and hang up. */
        if (r->length > DRAIN_MAX) {
            srv_log(c->srv, USBD_LOG_WARN,
                    "%s: WRITE of %u bytes announced (maximum %u), disconnecting", c->label,
                    r->length, c->srv->max_block);
            mark_dead(c);
        } else if ((err = drain(c, r->length)) != 0) {
            log_read_end(c, err, 0, r->length, "payload");
            mark_dead(c);
            return false;
        }
        *verdict = NBD_EINVAL;
        *why = "payload over the maximum block size";
        return true;
    }
    if (!has_payload && (*verdict || r->type != NBD_CMD_READ))
        return true;
    if (r->length == 0) /* nothing to read or hold; the verdict says EINVAL */
        return true;

    budget_take(c, r->length);
    *charged = r->length;
    if (atomic_load(&c->dead))
        return false; /* the caller gives the budget back */
    *payload = buf_get(w, r->length);
    if (!*payload) {
        if (!has_payload) {
            *verdict = NBD_ENOMEM;
            *why = "out of memory";
            return true;
        }
        /* Cannot even drain the payload: hang up. */
        srv_log(c->srv, USBD_LOG_ERROR, "%s: out of memory for a %u-byte WRITE, disconnecting",
                c->label, r->length);
        mark_dead(c);
        return false;
    }
    if (has_payload) {
        err = conn_read(c, *payload, r->length, &got);
        if (err) {
            log_read_end(c, err, got, r->length, "payload");
            mark_dead(c);
            return false;
        }
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct conn *c = w->c;
    /* Serving the kernel's own /dev/nbdX: memory reclaim may wait on our
     * replies, so our allocations must not wait on reclaim (best effort:
     * needs Linux 5.6 and CAP_SYS_RESOURCE). */
    if (c->adopted)
        (void)prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
    for (;;) {
        struct nbd_request r;
        uint32_t verdict = 0;
        const char *why = "";
        void *payload = NULL;
        uint64_t charged = 0;

        pthread_mutex_lock(&c->rlock);
        bool go = read_request(w, &r, &verdict, &why, &payload, &charged);
        pthread_mutex_unlock(&c->rlock);
        if (!go) {
            if (payload)
                buf_put(w, payload);
            if (charged)
                budget_give(c, charged);
            break;
        }
        if (verdict) {
            atomic_fetch_add(&c->srv->nerrors, 1);
            srv_log(c->srv, USBD_LOG_WARN, "%s: %s (type %u) flags 0x%x offset %llu length %u "
                    "rejected: %s", c->label, nbd_cmd_name(r.type), r.type, r.flags,
                    (unsigned long long)r.offset, r.length, why);
            reply_error(c, &r, verdict, why);
        } else {
            run_request(c, &r, payload);
        }
        if (payload)
            buf_put(w, payload);
        if (charged)
            budget_give(c, charged);
    }
    return NULL;
}

void nbd_transmission(struct conn *c)
{
    struct usbd_server *s = c->srv;
    unsigned n = s->cfg.threads;
    struct worker *ws = calloc(n, sizeof *ws);
    pthread_t *tids = calloc(n, sizeof *tids);
    c->rbuf = malloc(RBUF_SIZE);
    if (!ws || !tids || !c->rbuf) {
        srv_log(s, USBD_LOG_ERROR, "%s: out of memory starting the connection", c->label);
        goto out;
    }
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        ws[i].c = c;
        if (i > 0 && pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0)
            break; /* fewer workers still serve correctly */
        started++;
    }
    worker_main(&ws[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    for (unsigned i = 0; i < started; i++)
        free(ws[i].buf);
out:
    free(ws);
    free(tids);
    free(c->rbuf);
    c->rbuf = NULL;
}
