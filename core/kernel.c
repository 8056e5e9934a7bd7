/* kernel.c - attach a server's device to the kernel's nbd driver (/dev/nbdN).
 *
 * The kernel is an NBD client that has already "negotiated": it is given the
 * size, the block size and the transmission flags by ioctl, and one end of
 * each connection (a socketpair) by NBD_SET_SOCK. The other end goes to the
 * server through usbd_server_adopt(), which serves it from the transmission
 * phase on. NBD_DO_IT then runs the device and blocks in the kernel until the
 * device is disconnected, so it gets a thread of its own.
 *
 * Life of an attachment:
 *   attach:  pick /dev/nbdN -> open -> SET_BLKSIZE, SET_SIZE_BLOCKS, SET_FLAGS,
 *            (SET_TIMEOUT) -> SET_SOCK x nconn (+ adopt) -> DO_IT thread ->
 *            wait until /sys/block/nbdN/pid names that thread
 *   detach:  fsync (write back the page cache of /dev/nbdN) -> DISCONNECT (the
 *            kernel sends NBD_CMD_DISC on every socket) -> DO_IT returns ->
 *            CLEAR_SOCK -> close; the kernel drops the device's configuration
 *            (pid file, size) when its last opener has closed it.
 *
 * Only the public API of usbd.h is used: the kernel is a client like others.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nbd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "modprobe.h"
#include "usbd.h"

#define KERNEL_MAX_CONN 16
/* The kernel's nbd queue never sends a request larger than this
 * (max_hw_sectors = 65536 sectors); a device with a smaller max_block needs
 * the queue's max_sectors_kb lowered. */
#define KERNEL_MAX_REQUEST (32u * 1024 * 1024)
/* How long attach waits for NBD_DO_IT to start the device. It only creates
 * the pid file and queues the receive work, so this is generous. */
#define KERNEL_START_TIMEOUT_MS 10000
/* How long detach lets the kernel finish its queued requests after
 * NBD_DISCONNECT before it shuts the sockets down itself. */
#define KERNEL_DETACH_TIMEOUT_MS 60000
/* With several connections the kernel treats a request that takes longer
 * than the command timeout as a dead connection (it shuts that socket down
 * and requeues), and a timeout of 0 means the block layer's 30 s there. A
 * slow object store must not cost us connections, so several connections get
 * a long timeout. One connection keeps 0: the kernel then waits forever and
 * only logs "Possible stuck request". */
#define KERNEL_MULTI_CONN_TIMEOUT_S 3600

struct usbd_kernel {
    struct usbd_server *srv;
    char name[32]; /* "nbd0" */
    char path[48]; /* "/dev/nbd0" */
    int fd;        /* the open /dev/nbdN; the DO_IT thread blocks on it */
    unsigned nconn;

    pthread_t thread;
    pthread_mutex_t lock; /* protects tid, done, doit_err */
    pthread_cond_t cond;  /* signalled when done becomes true */
    pid_t tid;            /* the DO_IT thread, as the kernel's pid file shows it */
    bool done;            /* NBD_DO_IT has returned */
    int doit_err;         /* its errno, 0 if it returned 0 */
    atomic_bool started;   /* attach saw the device run */
    atomic_bool detaching; /* the end of DO_IT is expected, not an error */
};

/* ------------------------------------------------------------ sysfs helpers */

static bool sysfs_has(const char *name, const char *attr)
{
    char p[128];
    snprintf(p, sizeof p, "/sys/block/%s/%s", name, attr);
    return access(p, F_OK) == 0;
}

/* Read a small sysfs attribute as an integer; false if it is not there. */
static bool sysfs_read_long(const char *name, const char *attr, long *out)
{
    char p[128], buf[64];
    snprintf(p, sizeof p, "/sys/block/%s/%s", name, attr);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno != 0 || end == buf)
        return false;
    *out = v;
    return true;
}

static int sysfs_write_long(const char *name, const char *attr, long v)
{
    char p[128], buf[32];
    snprintf(p, sizeof p, "/sys/block/%s/%s", name, attr);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int len = snprintf(buf, sizeof buf, "%ld\n", v);
    int err = write(fd, buf, (size_t)len) == len ? 0 : errno;
    close(fd);
    return err;
}

/* "nbd12" -> true. Partitions (nbd0p1) and anything else -> false. */
static bool is_nbd_name(const char *s, unsigned *index)
{
    if (strncmp(s, "nbd", 3) != 0 || s[3] < '0' || s[3] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s + 3, &end, 10);
    if (errno != 0 || *end != '\0' || v > INT_MAX)
        return false;
    if (index)
        *index = (unsigned)v;
    return true;
}

/* Is the nbd driver there? /sys/module/nbd exists when it is loaded or built
 * in; nbd0 covers kernels that do not show built-in modules. */
static bool nbd_driver_present(void)
{
    return access("/sys/module/nbd", F_OK) == 0 || access("/sys/block/nbd0", F_OK) == 0;
}

/* Run "modprobe nbd" once. The result does not matter: the caller looks at
 * sysfs again. */
static void try_modprobe_nbd(struct usbd_server *srv)
{
    int status = -1, err = usbd_modprobe("nbd", &status);
    if (err)
        usbd_server_log(srv, USBD_LOG_DEBUG, "kernel: cannot run modprobe: %s", strerror(err));
    else
        usbd_server_log(srv, USBD_LOG_DEBUG, "kernel: modprobe nbd: exit status %d", status);
}

/* Make sure the driver is loaded, trying modprobe once. Without one, "auto"
 * is a warning (a build machine or a container: the sockets still serve),
 * an explicit device an error. */
static int ensure_driver(struct usbd_server *srv, const char *which, bool is_auto)
{
    if (nbd_driver_present())
        return 0;
    try_modprobe_nbd(srv);
    if (nbd_driver_present())
        return 0;
    if (is_auto) {
        usbd_server_log(srv, USBD_LOG_WARN,
                        "no nbd kernel driver (/sys/block/nbd0 missing, modprobe nbd failed): not "
                        "attaching a /dev/nbdX; NBD clients can still connect to the sockets");
    } else {
        usbd_server_log(srv, USBD_LOG_ERROR,
                        "no nbd kernel driver (/sys/block/nbd0 missing, modprobe nbd failed): "
                        "cannot attach %s", which);
    }
    return ENODEV;
}

/* ------------------------------------------------------------ the DO_IT thread */

static void *doit_main(void *arg)
{
    struct usbd_kernel *k = arg;
    pthread_mutex_lock(&k->lock);
    k->tid = gettid();
    pthread_mutex_unlock(&k->lock);

    /* Blocks until the device is disconnected or its sockets die. */
    int err = ioctl(k->fd, NBD_DO_IT) < 0 ? errno : 0;

    if (atomic_load(&k->started) && !atomic_load(&k->detaching)) {
        /* Nobody asked for this: the server closed the connections, or the
         * kernel timed a request out. The device is gone for its users. */
        usbd_server_log(k->srv, USBD_LOG_ERROR, "kernel: %s: NBD_DO_IT ended unexpectedly: %s",
                        k->path, err ? strerror(err) : "device disconnected");
    }
    pthread_mutex_lock(&k->lock);
    k->done = true;
    k->doit_err = err;
    pthread_cond_broadcast(&k->cond);
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static void deadline_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Wait up to ms for DO_IT to return; true if it has. */
static bool wait_done(struct usbd_kernel *k, long ms)
{
    struct timespec dl;
    deadline_after_ms(&dl, ms);
    pthread_mutex_lock(&k->lock);
    while (!k->done) {
        if (pthread_cond_timedwait(&k->cond, &k->lock, &dl) == ETIMEDOUT)
            break;
    }
    bool done = k->done;
    pthread_mutex_unlock(&k->lock);
    return done;
}

/* Wait until the kernel shows our DO_IT thread in /sys/block/nbdN/pid (the
 * device runs), or DO_IT has returned (it failed). 0, the errno of DO_IT, or
 * ETIMEDOUT.
 * The pid file holds the thread id in the kernel's initial pid namespace; in
 * a container gettid() differs. So a pid file with another value also counts
 * once DO_IT has stayed blocked for a while after it appeared: had another
 * process started the device, our DO_IT would have returned EBUSY at once. */
static int wait_started(struct usbd_kernel *k)
{
    struct timespec dl, now, step, other_until = {0, 0};
    bool other_seen = false;
    deadline_after_ms(&dl, KERNEL_START_TIMEOUT_MS);
    pthread_mutex_lock(&k->lock);
    for (;;) {
        if (k->done) {
            int err = k->doit_err ? k->doit_err : EIO;
            pthread_mutex_unlock(&k->lock);
            return err;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long pid;
        if (k->tid != 0 && sysfs_read_long(k->name, "pid", &pid)) {
            if (!other_seen && pid != k->tid) {
                other_seen = true;
                deadline_after_ms(&other_until, 200);
            }
            if (pid == k->tid || !before(&now, &other_until)) {
                atomic_store(&k->started, true);
                pthread_mutex_unlock(&k->lock);
                return 0;
            }
        }
        if (!before(&now, &dl)) {
            pthread_mutex_unlock(&k->lock);
            return ETIMEDOUT;
        }
        deadline_after_ms(&step, 5);
        pthread_cond_timedwait(&k->cond, &k->lock, &step);
    }
}

static int start_doit_thread(struct usbd_kernel *k)
{
    /* The thread blocks every signal. NBD_DO_IT waits interruptibly: a signal
     * delivered to this thread (SIGTERM, SIGHUP, SIGCHLD... process-directed
     * signals go to any thread that does not block them) would make the
     * kernel shut the sockets down at once, without the orderly disconnect.
     * Blocking here, before pthread_create, leaves no window. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&k->thread, NULL, doit_main, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* ------------------------------------------------------------ attach one device */

static struct usbd_kernel *kernel_new(struct usbd_server *srv, const char *name)
{
    struct usbd_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->srv = srv;
    k->fd = -1;
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->path, sizeof k->path, "/dev/%s", name);
    pthread_mutex_init(&k->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cond, &ca);
    pthread_condattr_destroy(&ca);
    return k;
}

static void kernel_free(struct usbd_kernel *k)
{
    if (k->fd >= 0)
        close(k->fd);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

/* The logical block size the kernel will use: the smallest the device allows,
 * at least 512. Not pref_block: most USB hosts (TVs, car radios, older
 * Windows) only handle 512-byte sectors, and the gadget exports the nbd
 * device's logical block size. The kernel accepts powers of two from 512 to
 * the page size (to 64 KiB on some recent kernels); it says EINVAL otherwise. */
static uint32_t kernel_blksize(const struct usbd_dev *dev)
{
    uint32_t b = dev->min_block ? dev->min_block : 1;
    return b < 512 ? 512 : b;
}

/* Give max_block to the queue if the kernel could otherwise send more. */
static int limit_request_size(struct usbd_kernel *k, const struct usbd_dev *dev)
{
    uint32_t max = dev->max_block ? dev->max_block : KERNEL_MAX_REQUEST;
    long cur_kb;
    if (max >= KERNEL_MAX_REQUEST || !sysfs_read_long(k->name, "queue/max_sectors_kb", &cur_kb) ||
        (uint64_t)cur_kb * 1024 <= max)
        return 0;
    int err = sysfs_write_long(k->name, "queue/max_sectors_kb", (long)(max / 1024));
    if (err) {
        usbd_server_log(k->srv, USBD_LOG_ERROR,
                        "kernel: %s: cannot limit requests to the device's max_block %u "
                        "(queue/max_sectors_kb): %s",
                        k->path, max, strerror(err));
        return err;
    }
    return 0;
}

/* Configure, connect and start one device. On failure everything done here is
 * undone; EBUSY means someone else has the device. */
static int attach_one(struct usbd_server *srv, const char *name, unsigned nconn,
                      struct usbd_kernel **out)
{
    const struct usbd_dev *dev = usbd_server_device(srv);
    uint16_t flags = usbd_server_transmission_flags(srv);
    struct usbd_kernel *k = kernel_new(srv, name);
    if (!k)
        return ENOMEM;
    k->nconn = nconn;

    long pid;
    if (sysfs_read_long(name, "pid", &pid)) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s is in use (by pid %ld)", k->path, pid);
        kernel_free(k);
        return EBUSY;
    }
    k->fd = open(k->path, O_RDWR | O_CLOEXEC);
    if (k->fd < 0) {
        int err = errno;
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: cannot open %s: %s", k->path,
                        strerror(err));
        kernel_free(k);
        return err == ENOENT || err == ENXIO ? ENODEV : err;
    }

    const char *step;
    int err = 0;
    bool socks_set = false;
    uint32_t bs = kernel_blksize(dev);
    uint64_t blocks = dev->size / bs;
    if (dev->size % bs != 0) {
        usbd_server_log(srv, USBD_LOG_WARN,
                        "kernel: %s: device size %llu is not a multiple of the block size %u; "
                        "the last %llu bytes are not reachable through it",
                        k->path, (unsigned long long)dev->size, bs,
                        (unsigned long long)(dev->size % bs));
    }
    /* SET_SIZE_BLOCKS rather than SET_SIZE: the ioctl argument is an unsigned
     * long, 32 bits on the ARM boards, and a byte count overflows at 4 GiB. */
    if (blocks == 0 || blocks > ULONG_MAX) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: cannot express a size of %llu bytes "
                        "in %u-byte blocks to this kernel", k->path,
                        (unsigned long long)dev->size, bs);
        kernel_free(k);
        return EFBIG;
    }
    if ((flags & NBD_FLAG_CAN_MULTI_CONN) == 0 && nconn > 1) {
        /* The kernel refuses several connections to a server that does not
         * promise a consistent view across them. */
        usbd_server_log(srv, USBD_LOG_WARN,
                        "kernel: %s: the server does not advertise CAN_MULTI_CONN; using 1 "
                        "connection instead of %u", k->path, nconn);
        nconn = k->nconn = 1;
    }

    /* Block size first: the kernel keeps the byte size when it changes, but
     * computes SET_SIZE_BLOCKS with the block size in force. */
    if (ioctl(k->fd, NBD_SET_BLKSIZE, (unsigned long)bs) < 0) {
        err = errno;
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: NBD_SET_BLKSIZE %u: %s%s", k->path, bs,
                        strerror(err),
                        err == EINVAL ? " (this kernel takes 512 up to the page size)" : "");
        goto undo;
    }
    step = "NBD_SET_SIZE_BLOCKS";
    if (ioctl(k->fd, NBD_SET_SIZE_BLOCKS, (unsigned long)blocks) < 0)
        goto ioctl_failed;
    step = "NBD_SET_FLAGS";
    if (ioctl(k->fd, NBD_SET_FLAGS, (unsigned long)flags) < 0)
        goto ioctl_failed;
    step = "NBD_SET_TIMEOUT";
    if (nconn > 1 && ioctl(k->fd, NBD_SET_TIMEOUT, (unsigned long)KERNEL_MULTI_CONN_TIMEOUT_S) < 0)
        goto ioctl_failed;
    err = limit_request_size(k, dev);
    if (err)
        goto undo;

    /* All SET_SOCKs come from this thread: the kernel remembers the first
     * task that set a socket and answers EBUSY to any other. */
    for (unsigned i = 0; i < nconn; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            err = errno;
            usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: socketpair: %s", k->path,
                            strerror(err));
            goto undo;
        }
        if (ioctl(k->fd, NBD_SET_SOCK, (unsigned long)sv[0]) < 0) {
            err = errno;
            close(sv[0]);
            close(sv[1]);
            if (err == EBUSY) {
                usbd_server_log(srv, USBD_LOG_ERROR,
                                "kernel: %s is in use (being set up by another process)",
                                k->path);
            } else {
                usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: NBD_SET_SOCK: %s", k->path,
                                strerror(err));
            }
            goto undo;
        }
        socks_set = true;
        /* The kernel holds its own reference to the socket now. */
        close(sv[0]);
        char label[64];
        snprintf(label, sizeof label, "%s#%u", k->path, i + 1);
        err = usbd_server_adopt(srv, sv[1], label); /* the server owns sv[1] from here */
        if (err) {
            usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: the server did not take "
                            "connection %u: %s", k->path, i + 1, strerror(err));
            goto undo;
        }
    }

    err = start_doit_thread(k);
    if (err) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: cannot start a thread: %s", k->path,
                        strerror(err));
        goto undo;
    }
    err = wait_started(k);
    if (err) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: NBD_DO_IT: %s", k->path,
                        err == ETIMEDOUT ? "the device did not start within 10 s" : strerror(err));
        /* If DO_IT is still running, shutting the sockets ends it. */
        atomic_store(&k->detaching, true);
        ioctl(k->fd, NBD_CLEAR_SOCK);
        pthread_join(k->thread, NULL);
        socks_set = false;
        goto undo;
    }

    usbd_server_log(srv, USBD_LOG_INFO,
                    "kernel: attached %s: %llu bytes (%llu MiB), block size %u, %u "
                    "connection%s, flags 0x%04x%s",
                    k->path, (unsigned long long)(blocks * bs),
                    (unsigned long long)(blocks * bs >> 20), bs, nconn, nconn == 1 ? "" : "s",
                    flags, dev->read_only ? ", read-only" : "");
    *out = k;
    return 0;

ioctl_failed:
    err = errno;
    usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: %s: %s", k->path, step, strerror(err));
undo:
    /* CLEAR_SOCK shuts down the sockets already given to the kernel (the
     * server's ends see EOF and close) and forgets our setup task; closing
     * the device drops the rest of the configuration. */
    if (socks_set)
        ioctl(k->fd, NBD_CLEAR_SOCK);
    kernel_free(k);
    return err;
}

/* ------------------------------------------------------------ finding a device */

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* "auto": the free nbd devices in index order, first come first served. A
 * device another process grabs between our check and our SET_SOCK answers
 * EBUSY; then the next one is tried. */
static int attach_auto(struct usbd_server *srv, unsigned nconn, struct usbd_kernel **out)
{
    DIR *d = opendir("/sys/block");
    if (!d) {
        int err = errno;
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: cannot list /sys/block: %s",
                        strerror(err));
        return err;
    }
    unsigned *idx = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned i;
        if (!is_nbd_name(de->d_name, &i))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            unsigned *p = realloc(idx, cap * sizeof *idx);
            if (!p) {
                closedir(d);
                free(idx);
                return ENOMEM;
            }
            idx = p;
        }
        idx[n++] = i;
    }
    closedir(d);
    qsort(idx, n, sizeof *idx, cmp_unsigned);

    int err = ENODEV;
    size_t busy = 0;
    for (size_t j = 0; j < n; j++) {
        char name[32];
        snprintf(name, sizeof name, "nbd%u", idx[j]);
        if (sysfs_has(name, "pid")) {
            busy++;
            continue;
        }
        err = attach_one(srv, name, nconn, out);
        if (err != EBUSY)
            break;
        busy++;
    }
    free(idx);
    if (err == ENODEV && n == 0) {
        usbd_server_log(srv, USBD_LOG_ERROR,
                        "kernel: the nbd driver is loaded but has no devices (nbds_max=0?)");
    } else if (err == ENODEV || err == EBUSY) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: all %zu nbd devices are in use", busy);
        err = EBUSY;
    }
    return err;
}

/* An explicit path: must be a block device of the nbd driver. Its sysfs name
 * comes from its device number, so symlinks to it work too. */
static int resolve_path(struct usbd_server *srv, const char *path, char *name, size_t size)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int err = errno;
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: %s", path,
                        err == ENOENT ? "no such nbd device" : strerror(err));
        return err == ENOENT ? ENODEV : err;
    }
    if (!S_ISBLK(st.st_mode)) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s is not a block device", path);
        return ENODEV;
    }
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: not known to sysfs (%s): %s", path,
                        link, strerror(errno));
        return ENODEV;
    }
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (!is_nbd_name(base, NULL) || strlen(base) >= size) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s is %s, not an nbd device", path, base);
        return ENODEV;
    }
    memcpy(name, base, strlen(base) + 1);
    return 0;
}

/* ------------------------------------------------------------ public API */

int usbd_kernel_attach(struct usbd_server *srv, const char *which, unsigned nconn,
                       struct usbd_kernel **out)
{
    *out = NULL;
    if (!which || !*which)
        which = "auto";
    if (nconn < 1 || nconn > KERNEL_MAX_CONN) {
        usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %u connections asked; 1 to %d are possible",
                        nconn, KERNEL_MAX_CONN);
        return EINVAL;
    }
    bool is_auto = strcmp(which, "auto") == 0;
    int err = ensure_driver(srv, which, is_auto);
    if (err)
        return err;
    if (is_auto)
        return attach_auto(srv, nconn, out);

    char name[32];
    err = resolve_path(srv, which, name, sizeof name);
    if (err)
        return err;
    return attach_one(srv, name, nconn, out);
}

const char *usbd_kernel_path(const struct usbd_kernel *k)
{
    return k->path;
}

int usbd_kernel_flush(struct usbd_kernel *k)
{
    /* fsync on the block device writes its page cache back and makes the
     * kernel send NBD_CMD_FLUSH: what a gadget or a filesystem wrote above
     * the device becomes the daemon's to make durable. */
    if (fsync(k->fd) == 0)
        return 0;
    int err = errno;
    usbd_server_log(k->srv, USBD_LOG_ERROR, "kernel: %s: fsync: %s", k->path, strerror(err));
    return err;
}

int usbd_kernel_detach(struct usbd_kernel *k)
{
    if (!k)
        return 0;
    struct usbd_server *srv = k->srv;
    int err = 0;
    atomic_store(&k->detaching, true);

    pthread_mutex_lock(&k->lock);
    bool running = !k->done;
    pthread_mutex_unlock(&k->lock);

    if (running) {
        /* NBD_DISCONNECT does not write back the block device's page cache:
         * what a buffered writer (the USB gadget, dd without oflag=direct)
         * left there would be lost. fsync writes it back and then sends a
         * FLUSH, while the server still serves the connections. */
        if (fsync(k->fd) < 0) {
            err = errno;
            usbd_server_log(srv, USBD_LOG_ERROR, "kernel: %s: writing back before disconnect: %s",
                            k->path, strerror(err));
        }
        if (ioctl(k->fd, NBD_DISCONNECT) < 0) {
            usbd_server_log(srv, USBD_LOG_WARN, "kernel: %s: NBD_DISCONNECT: %s", k->path,
                            strerror(errno));
        }
        if (!wait_done(k, KERNEL_DETACH_TIMEOUT_MS)) {
            usbd_server_log(srv, USBD_LOG_WARN,
                            "kernel: %s: still busy %d s after the disconnect request; shutting "
                            "its connections down (requests in flight fail)",
                            k->path, KERNEL_DETACH_TIMEOUT_MS / 1000);
        }
    }
    /* Ends DO_IT if it still runs, and releases the sockets and the setup
     * task either way, as nbd-client -d does. */
    if (ioctl(k->fd, NBD_CLEAR_SOCK) < 0) {
        usbd_server_log(srv, USBD_LOG_WARN, "kernel: %s: NBD_CLEAR_SOCK: %s", k->path,
                        strerror(errno));
    }
    pthread_join(k->thread, NULL);
    if (!err && k->doit_err) {
        err = k->doit_err;
        usbd_server_log(srv, USBD_LOG_WARN, "kernel: %s: NBD_DO_IT returned %s", k->path,
                        strerror(err));
    }
    close(k->fd);
    k->fd = -1;
    /* The kernel drops the configuration when the last opener closes the
     * device; a mount or a USB gadget still holding it keeps it. */
    if (sysfs_has(k->name, "pid")) {
        usbd_server_log(srv, USBD_LOG_WARN,
                        "kernel: %s is disconnected but still open elsewhere (mounted, or a "
                        "gadget's lun file?)", k->path);
    } else {
        usbd_server_log(srv, USBD_LOG_INFO, "kernel: detached %s", k->path);
    }
    kernel_free(k);
    return err;
}
