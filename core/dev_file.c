/* dev_file.c - a regular file or block device (-kind=file -file=PATH). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "usbd.h"

struct file_dev {
    int fd;
    bool is_block;
    bool can_punch; /* cleared the first time the filesystem says no */
    char *path;
    usbd_log_fn log;
    void *log_opaque;
};

static void file_log(struct file_dev *f, enum usbd_log_level lvl, const char *what, uint64_t off,
                     uint64_t len, int err)
{
    char line[512];
    snprintf(line, sizeof line, "file %s: %s offset %llu length %llu: %s", f->path, what,
             (unsigned long long)off, (unsigned long long)len, strerror(err));
    f->log(f->log_opaque, lvl, line);
}

static int file_read(void *priv, void *buf, uint32_t len, uint64_t off)
{
    struct file_dev *f = priv;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(f->fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO; /* short file: someone truncated it */
            file_log(f, USBD_LOG_ERROR, "read", off, len, err);
            return err;
        }
        p += r;
        off += (uint64_t)r;
        len -= (uint32_t)r;
    }
    return 0;
}

static int file_write(void *priv, const void *buf, uint32_t len, uint64_t off, unsigned flags)
{
    struct file_dev *f = priv;
    const uint8_t *p = buf;
    /* FUA: RWF_DSYNC makes just this write durable, not the whole file. */
    int rwf = (flags & USBD_FUA) ? RWF_DSYNC : 0;
    bool sync_after = false;
    while (len > 0) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
        ssize_t w = pwritev2(f->fd, &iov, 1, (off_t)off, rwf);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && rwf && (errno == EOPNOTSUPP || errno == ENOSYS)) {
            /* No RWF_DSYNC here (a kernel before 4.7; qemu-user, which
             * refuses every flag): the same write, then fdatasync. */
            rwf = 0;
            sync_after = true;
            continue;
        }
        if (w < 0) {
            int err = errno;
            file_log(f, USBD_LOG_ERROR, "write", off, len, err);
            return err;
        }
        p += w;
        off += (uint64_t)w;
        len -= (uint32_t)w;
    }
    if (sync_after && fdatasync(f->fd) != 0) {
        int err = errno;
        file_log(f, USBD_LOG_ERROR, "fdatasync after a FUA write", 0, 0, err);
        return err;
    }
    return 0;
}

static int file_flush(void *priv)
{
    struct file_dev *f = priv;
    if (fdatasync(f->fd) != 0) {
        int err = errno;
        file_log(f, USBD_LOG_ERROR, "fdatasync", 0, 0, err);
        return err;
    }
    return 0;
}

static int punch(struct file_dev *f, uint32_t len, uint64_t off)
{
    if (f->is_block) {
        uint64_t range[2] = {off, len};
        return ioctl(f->fd, BLKDISCARD, range) == 0 ? 0 : errno;
    }
    if (!__atomic_load_n(&f->can_punch, __ATOMIC_RELAXED))
        return EOPNOTSUPP;
    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, len) == 0)
        return 0;
    int err = errno;
    if (err == EOPNOTSUPP)
        __atomic_store_n(&f->can_punch, false, __ATOMIC_RELAXED);
    return err;
}

static int file_trim(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    struct file_dev *f = priv;
    int err = punch(f, len, off);
    /* TRIM is advisory: a filesystem that cannot punch holes loses nothing. */
    if (err && err != EOPNOTSUPP && err != ENOTTY) {
        file_log(f, USBD_LOG_WARN, "trim", off, len, err);
        return err;
    }
    return (flags & USBD_FUA) ? file_flush(f) : 0;
}

static int file_write_zeroes(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    struct file_dev *f = priv;
    int err = EOPNOTSUPP;
    if (!f->is_block) {
        int mode = (flags & USBD_NO_HOLE) ? FALLOC_FL_ZERO_RANGE
                                          : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        err = fallocate(f->fd, mode, (off_t)off, len) == 0 ? 0 : errno;
    }
    if (err == EOPNOTSUPP || err == ENOTTY) {
        if (flags & USBD_FAST_ZERO)
            return ENOTSUP;
        size_t bl = len < (1u << 20) ? len : (1u << 20);
        uint8_t *z = calloc(1, bl);
        if (!z)
            return ENOMEM;
        err = 0;
        for (uint32_t done = 0; done < len && !err;) {
            uint32_t n = len - done < bl ? len - done : (uint32_t)bl;
            err = file_write(f, z, n, off + done, 0);
            done += n;
        }
        free(z);
        if (err)
            return err;
    } else if (err) {
        file_log(f, USBD_LOG_ERROR, "write_zeroes", off, len, err);
        return err;
    }
    return (flags & USBD_FUA) ? file_flush(f) : 0;
}

static int file_block_status(void *priv, uint32_t len, uint64_t off, struct usbd_extent *ext,
                             size_t *n)
{
    struct file_dev *f = priv;
    size_t max = *n, k = 0;
    uint64_t pos = off, end = off + len;
    if (f->is_block) {
        ext[0] = (struct usbd_extent){.length = len};
        *n = 1;
        return 0;
    }
    while (pos < end && k < max) {
        off_t data = lseek(f->fd, (off_t)pos, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            data = (off_t)end; /* only a hole remains */
        else if (data < 0)
            break;
        if ((uint64_t)data > pos) {
            uint64_t e = (uint64_t)data < end ? (uint64_t)data : end;
            ext[k++] = (struct usbd_extent){e - pos, USBD_EXTENT_HOLE | USBD_EXTENT_ZERO};
            pos = e;
            continue;
        }
        off_t hole = lseek(f->fd, (off_t)pos, SEEK_HOLE);
        uint64_t e = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
        if (e <= pos)
            break;
        ext[k++] = (struct usbd_extent){e - pos, 0};
        pos = e;
    }
    if (k == 0) { /* SEEK_DATA unsupported: call it all data */
        ext[0] = (struct usbd_extent){.length = len};
        k = 1;
    }
    *n = k;
    return 0;
}

static void file_close(void *priv)
{
    struct file_dev *f = priv;
    close(f->fd);
    free(f->path);
    free(f);
}

static const struct usbd_dev_ops file_ops = {
    .read = file_read,
    .write = file_write,
    .flush = file_flush,
    .trim = file_trim,
    .write_zeroes = file_write_zeroes,
    .block_status = file_block_status,
    .close = file_close,
};

static void say(usbd_log_fn log, void *opaque, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(usbd_log_fn log, void *opaque, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(opaque, USBD_LOG_ERROR, line);
}

int usbd_file_open(const char *path, uint64_t size, bool read_only, usbd_log_fn log,
                   void *log_opaque, struct usbd_dev *dev)
{
    if (!log)
        log = usbd_log_stderr;
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    int fd = open(path, flags);
    bool created = false;
    if (fd < 0 && errno == ENOENT && size > 0 && !read_only) {
        fd = open(path, flags | O_CREAT | O_EXCL, 0600);
        created = fd >= 0;
    }
    if (fd < 0) {
        int err = errno;
        char line[512];
        snprintf(line, sizeof line, "cannot open %s: %s%s", path, strerror(err),
                 err == ENOENT ? " (give -size to create it)" : "");
        log(log_opaque, USBD_LOG_ERROR, line);
        return err;
    }
    struct stat st;
    uint64_t have = 0;
    bool is_block = false;
    int err = fstat(fd, &st) != 0 ? errno : 0;
    if (!err && S_ISBLK(st.st_mode)) {
        is_block = true;
        err = ioctl(fd, BLKGETSIZE64, &have) != 0 ? errno : 0;
    } else if (!err && S_ISREG(st.st_mode)) {
        have = (uint64_t)st.st_size;
    } else if (!err) {
        say(log, log_opaque, "%s is neither a regular file nor a block device", path);
        err = EINVAL;
    }
    if (!err && created && ftruncate(fd, (off_t)size) != 0)
        err = errno;
    else if (!err && created)
        have = size;
    if (!err && size && have != size) {
        say(log, log_opaque, "%s has %llu bytes but -size asks for %llu: omit -size to use the "
            "file's size", path, (unsigned long long)have, (unsigned long long)size);
        err = EINVAL;
    }
    if (!err && (have == 0 || have % 512)) {
        say(log, log_opaque, "%s: size %llu is not a non-zero multiple of 512", path,
            (unsigned long long)have);
        err = EINVAL;
    }
    struct file_dev *f = err ? NULL : calloc(1, sizeof *f);
    if (!err && (!f || !(f->path = strdup(path)))) {
        free(f);
        err = ENOMEM;
    }
    if (err) {
        close(fd);
        if (created)
            unlink(path);
        return err;
    }
    f->fd = fd;
    f->is_block = is_block;
    f->can_punch = true;
    f->log = log;
    f->log_opaque = log_opaque;
    *dev = (struct usbd_dev){
        .ops = &file_ops,
        .priv = f,
        .size = have,
        .min_block = 1,
        .pref_block = 4096,
        .read_only = read_only,
        .description = "file",
    };
    return 0;
}
