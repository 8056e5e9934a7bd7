/* server.c - the server's life: accept, one thread per connection, stop.
 *
 * Stopping: usbd_server_stop() only writes a byte to a pipe (so a signal
 * handler may call it). usbd_server_run() then closes the listeners and
 * half-closes every connection for reading, so each client's requests in
 * flight finish and are answered; connections still stuck after a grace
 * period (a client that does not read its replies) are shut down fully. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define STOP_GRACE_S 10

uint16_t server_tflags(const struct usbd_server *s, bool structured)
{
    const struct usbd_dev_ops *ops = s->dev->ops;
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE |
                 NBD_FLAG_CAN_MULTI_CONN; /* flush() covers all connections: see usbd.h */
    if (ops->trim)
        f |= NBD_FLAG_SEND_TRIM;
    if (s->dev->read_only)
        f |= NBD_FLAG_READ_ONLY;
    if (structured)
        f |= NBD_FLAG_SEND_DF; /* a READ is always answered in one chunk */
    return f;
}

uint16_t usbd_server_transmission_flags(const struct usbd_server *srv)
{
    return server_tflags(srv, false);
}

const struct usbd_dev *usbd_server_device(const struct usbd_server *srv)
{
    return srv->dev;
}

bool server_export_matches(const struct usbd_server *s, const char *name, size_t len)
{
    return len == 0 || (strlen(s->export_name) == len && memcmp(s->export_name, name, len) == 0);
}

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

int usbd_server_create(struct usbd_dev *dev, const struct usbd_server_config *cfg,
                       struct usbd_server **out)
{
    struct usbd_server_config c = cfg ? *cfg : (struct usbd_server_config){0};
    if (!c.log) {
        c.log = usbd_log_stderr;
        if (!cfg)
            c.log_level = USBD_LOG_INFO;
    }
    if (!c.threads)
        c.threads = 16;
    if (!c.max_clients)
        c.max_clients = 16;
    if (!c.handshake_timeout_s)
        c.handshake_timeout_s = 30;
    if (!c.send_timeout_s)
        c.send_timeout_s = 30;

    struct usbd_server *s = calloc(1, sizeof *s);
    if (!s)
        return ENOMEM;
    s->cfg = c;
    s->dev = dev;
    s->wake_pipe[0] = s->wake_pipe[1] = -1;
    s->min_block = dev->min_block ? dev->min_block : 1;
    s->pref_block = dev->pref_block ? dev->pref_block : USBD_DEFAULT_PREF_BLOCK;
    s->max_block = dev->max_block ? dev->max_block : USBD_DEFAULT_MAX_BLOCK;
    if (s->pref_block < s->min_block)
        s->pref_block = s->min_block;
    /* Every request that fits the limits must also fit the budget. */
    if (!s->cfg.inflight_bytes)
        s->cfg.inflight_bytes = 64u * 1024 * 1024;
    if (s->cfg.inflight_bytes < s->max_block)
        s->cfg.inflight_bytes = s->max_block;

    if (!dev->ops || !dev->ops->read || (!dev->read_only && !dev->ops->write) ||
        !is_pow2(s->min_block) || !is_pow2(s->pref_block) || s->max_block < s->pref_block ||
        s->max_block % s->min_block || dev->size == 0 || dev->size % s->min_block) {
        srv_log(s, USBD_LOG_ERROR, "device geometry or operations invalid: size %llu, block "
                "sizes %u/%u/%u (must be powers of two, size a non-zero multiple of the minimum)",
                (unsigned long long)dev->size, s->min_block, s->pref_block, s->max_block);
        free(s);
        return EINVAL;
    }
    s->export_name = strdup(c.export_name ? c.export_name : "usbd");
    const char *d = c.description ? c.description : dev->description ? dev->description : "";
    s->description = strdup(d);
    if (!s->export_name || !s->description || pipe2(s->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        int err = errno ? errno : ENOMEM;
        usbd_server_destroy(s);
        return err;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->conns_done, NULL);
    *out = s;
    return 0;
}

void usbd_server_stop(struct usbd_server *srv)
{
    int saved = errno;
    atomic_store(&srv->stopping, true);
    ssize_t w = write(srv->wake_pipe[1], "x", 1);
    (void)w; /* a full pipe means a wake-up is already pending */
    errno = saved;
}

static void conn_unlink_and_free(struct conn *c)
{
    struct usbd_server *s = c->srv;
    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    pthread_cond_broadcast(&s->conns_done);
    pthread_mutex_unlock(&s->lock);
    close(c->fd);
    pthread_mutex_destroy(&c->rlock);
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->budget_lock);
    pthread_cond_destroy(&c->budget_cv);
    free(c);
}

/* A send that makes no progress for cfg.send_timeout_s fails with EAGAIN
 * (wire_writev: ETIMEDOUT), so a client that stops reading its replies
 * cannot hold a worker for ever. Not for the kernel's own sockets: the
 * kernel reads every reply, and a slow moment there (memory pressure,
 * a stuck filesystem above /dev/nbdX) must not cost /dev/nbdX its link. */
static int set_send_timeout(struct conn *c)
{
    struct timeval tv = {.tv_sec = c->srv->cfg.send_timeout_s};
    if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0)
        return 0;
    int err = errno;
    srv_log(c->srv, USBD_LOG_ERROR, "%s: cannot set the send timeout: %s, disconnecting",
            c->label, strerror(err));
    return err;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct usbd_server *s = c->srv;
    int err = 0;
    if (c->adopted)
        c->tflags = server_tflags(s, false);
    else if ((err = nbd_handshake(c)) == 0)
        err = set_send_timeout(c);
    if (!err) {
        srv_log(s, USBD_LOG_INFO, "%s: serving export '%s' (%s replies%s)", c->label,
                s->export_name, c->structured ? "structured" : "simple",
                c->base_allocation ? ", base:allocation" : "");
        nbd_transmission(c);
        srv_log(s, USBD_LOG_INFO, "%s: closed after %llu requests%s", c->label,
                (unsigned long long)c->nrequests, c->disc_seen ? " (NBD_CMD_DISC)" : "");
    }
    conn_unlink_and_free(c);
    return NULL;
}

/* A new connection, linked into the server's list. NULL (fd closed) on ENOMEM. */
static struct conn *conn_new(struct usbd_server *s, int fd, const char *label, bool adopted)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return NULL;
    }
    c->srv = s;
    c->fd = fd;
    c->adopted = adopted;
    pthread_mutex_init(&c->rlock, NULL);
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->budget_lock, NULL);
    pthread_cond_init(&c->budget_cv, NULL);
    pthread_mutex_lock(&s->lock);
    c->id = ++s->next_id;
    snprintf(c->label, sizeof c->label, "client %llu (%s)", (unsigned long long)c->id, label);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static int start_conn(struct usbd_server *s, int fd, const char *label, bool adopted)
{
    struct conn *c = conn_new(s, fd, label, adopted);
    if (!c)
        return ENOMEM;
    srv_log(s, USBD_LOG_DEBUG, "%s: connected", c->label);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(&c->thread, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (err) {
        srv_log(s, USBD_LOG_ERROR, "%s: cannot start a thread: %s", c->label, strerror(err));
        conn_unlink_and_free(c);
    }
    return err;
}

void server_serve_fd_inline(struct usbd_server *s, int fd, bool handshake)
{
    struct conn *c = conn_new(s, fd, "inline", !handshake);
    if (c)
        conn_main(c);
}

int usbd_server_adopt(struct usbd_server *srv, int fd, const char *label)
{
    return start_conn(srv, fd, label ? label : "adopted", true);
}

static void accept_one(struct usbd_server *s, struct listener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            srv_log(s, USBD_LOG_WARN, "accept on %s: %s", l->label, strerror(errno));
        if (errno == EMFILE || errno == ENFILE)
            usleep(100 * 1000); /* let connections close before trying again */
        return;
    }
    pthread_mutex_lock(&s->lock);
    unsigned n = s->nconns;
    pthread_mutex_unlock(&s->lock);
    if (n >= s->cfg.max_clients) {
        srv_log(s, USBD_LOG_WARN, "%s: refusing a connection: %u clients already (-max-clients)",
                l->label, n);
        close(fd);
        return;
    }
    int one = 1;
    /* Replies are written whole; do not let Nagle hold back the last segment. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    start_conn(s, fd, l->label, false);
}

/* Shut down every connection's socket in the given direction. */
static void shutdown_conns(struct usbd_server *s, int how)
{
    pthread_mutex_lock(&s->lock);
    for (struct conn *c = s->conns; c; c = c->next)
        shutdown(c->fd, how);
    pthread_mutex_unlock(&s->lock);
}

static bool wait_conns_done(struct usbd_server *s, int seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&s->lock);
    while (s->nconns > 0)
        if (pthread_cond_timedwait(&s->conns_done, &s->lock, &until) == ETIMEDOUT)
            break;
    bool done = s->nconns == 0;
    pthread_mutex_unlock(&s->lock);
    return done;
}

int usbd_server_run(struct usbd_server *s)
{
    size_t n = s->nlisteners + 1;
    struct pollfd *p = calloc(n, sizeof *p);
    if (!p)
        return ENOMEM;
    p[0] = (struct pollfd){.fd = s->wake_pipe[0], .events = POLLIN};
    for (size_t i = 0; i < s->nlisteners; i++)
        p[i + 1] = (struct pollfd){.fd = s->listeners[i].fd, .events = POLLIN};

    while (!atomic_load(&s->stopping)) {
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            srv_log(s, USBD_LOG_ERROR, "poll: %s", strerror(errno));
            break;
        }
        for (size_t i = 1; i < n; i++)
            if (p[i].revents & POLLIN)
                accept_one(s, &s->listeners[i - 1]);
    }
    free(p);

    for (size_t i = 0; i < s->nlisteners; i++) {
        close(s->listeners[i].fd);
        s->listeners[i].fd = -1;
    }
    shutdown_conns(s, SHUT_RD);
    if (!wait_conns_done(s, STOP_GRACE_S)) {
        srv_log(s, USBD_LOG_WARN, "clients still busy after %ds (not reading replies?): "
                "closing their connections", STOP_GRACE_S);
        shutdown_conns(s, SHUT_RDWR);
        while (!wait_conns_done(s, 1))
            ;
    }
    srv_log(s, USBD_LOG_INFO, "served %llu reads (%llu bytes), %llu writes (%llu bytes), "
            "%llu flushes, %llu trims, %llu write-zeroes, %llu caches, %llu block-status, "
            "%llu errors",
            (unsigned long long)s->ncmd[NBD_CMD_READ], (unsigned long long)s->bytes_read,
            (unsigned long long)s->ncmd[NBD_CMD_WRITE], (unsigned long long)s->bytes_written,
            (unsigned long long)s->ncmd[NBD_CMD_FLUSH], (unsigned long long)s->ncmd[NBD_CMD_TRIM],
            (unsigned long long)s->ncmd[NBD_CMD_WRITE_ZEROES],
            (unsigned long long)s->ncmd[NBD_CMD_CACHE],
            (unsigned long long)s->ncmd[NBD_CMD_BLOCK_STATUS], (unsigned long long)s->nerrors);
    return 0;
}

void usbd_server_destroy(struct usbd_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nlisteners; i++) {
        if (s->listeners[i].fd >= 0)
            close(s->listeners[i].fd);
        if (s->listeners[i].unix_path)
            unlink(s->listeners[i].unix_path);
        free(s->listeners[i].unix_path);
        free(s->listeners[i].label);
    }
    free(s->listeners);
    if (s->wake_pipe[0] >= 0) {
        close(s->wake_pipe[0]);
        close(s->wake_pipe[1]);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->conns_done);
    }
    free(s->export_name);
    free(s->description);
    free(s);
}

/* ------------------------------------------------------------ usbd_serve */

/* SIGINT/SIGTERM are blocked in every server thread and taken by sigwait()
 * in this one, so no signal handler and no global state are needed. */
static void *serve_signal_thread(void *arg)
{
    struct usbd_server *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    if (sigwait(&set, &sig) == 0 && !atomic_load(&s->stopping))
        srv_log(s, USBD_LOG_INFO, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    usbd_server_stop(s);
    return NULL;
}

int usbd_serve(struct usbd_dev *dev, const char *listen_spec)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGPIPE, SIG_IGN);

    struct usbd_server *s = NULL;
    int err = usbd_server_create(dev, NULL, &s);
    if (!err)
        err = usbd_server_listen(s, listen_spec);
    pthread_t sigthread;
    if (!err)
        err = pthread_create(&sigthread, NULL, serve_signal_thread, s);
    if (!err) {
        err = usbd_server_run(s);
        atomic_store(&s->stopping, true);
        pthread_kill(sigthread, SIGTERM); /* wakes sigwait if no signal came */
        pthread_join(sigthread, NULL);
    }
    if (!err && dev->ops->flush)
        err = dev->ops->flush(dev->priv);
    usbd_server_destroy(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}
