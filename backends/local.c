/* local.c - an object store in a local directory.
 *
 * Key "a/b/c" is the regular file <root>/a/b/c. Every path is resolved with
 * the *at() calls relative to one directory fd opened at start, so a key can
 * never reach outside the root (objstore_key_check already rejects "..",
 * empty components and a leading '/').
 *
 * put: write .objstore-tmp-<pid>-<salt>-<seq> in the key's directory, fsync,
 * rename over the key, fsync the directory. rename is atomic, so readers see
 * the old file or the new one; the temporary lives in the same directory so
 * the rename never crosses a file system. Any failure before the rename
 * unlinks the temporary: no partial object, no leftover (also on ENOSPC).
 * create is the same with a move that refuses an existing name.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "objstore.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_TMP_PREFIX ".objstore-tmp-"
#define LOCAL_TMP_PREFIX_LEN (sizeof LOCAL_TMP_PREFIX - 1)
/* Temporaries older than this at open are leftovers of a crash; younger
 * ones may belong to another process writing the same tree right now. */
#define LOCAL_TMP_STALE_S 3600
/* Deeper trees than valid keys can make are not walked (bounds the fds a
 * walk holds open). */
#define LOCAL_MAX_DEPTH (OBJSTORE_KEY_MAX / 2 + 1)

struct local {
    struct objstore pub;
    int root_fd;
    bool read_only;
    uint64_t salt;              /* random per open: temp names differ between
                                 * processes even across pid namespaces */
    atomic_uint_fast64_t seq;   /* temp names differ between threads */
    char name[];                /* "local:<root>" */
};

/* Log err once for op on key and return it. */
static int local_fail(struct local *l, const char *op, const char *key, const char *what,
                      int err)
{
    objstore_logf(l->pub.log, l->pub.log_opaque, objstore_err_log_level(err), "%s: %s %s: %s: %s",
                  l->name, op, key, what, objstore_strerror(err));
    return err;
}

static bool is_tmp_name(const char *name)
{
    return strncmp(name, LOCAL_TMP_PREFIX, LOCAL_TMP_PREFIX_LEN) == 0;
}

/* Temporary names must never be addressable as keys, or a put could be
 * renamed away under another writer. */
static bool key_has_tmp_component(const char *key)
{
    for (const char *c = key;;) {
        if (is_tmp_name(c))
            return true;
        c = strchr(c, '/');
        if (!c)
            return false;
        c++;
    }
}

/* ------------------------------------------------------------- file I/O */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes at off; a file that ends early is EIO (our files
 * never shrink: they are replaced, not rewritten). */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (n == 0)
            return EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ----------------------------------------------------------- directories */

/* The directory part of key ("a/b" for "a/b/c", "" for "c") and its base. */
static size_t key_dir_len(const char *key, const char **base)
{
    const char *slash = strrchr(key, '/');
    *base = slash ? slash + 1 : key;
    return slash ? (size_t)(slash - key) : 0;
}

/* Open the directory that holds key. With create, make missing directories
 * and fsync the parent of each one, so that once our rename is durable the
 * path to it is too. *fd is l->root_fd (not to be closed) for a key without
 * '/'. Errors: errno of openat/mkdirat/fsync (ENOENT without create,
 * ENOTDIR if a component is an object). */
static int local_open_dir(struct local *l, const char *key, bool create, int *fd,
                          const char **base)
{
    size_t dlen = key_dir_len(key, base);
    if (dlen == 0) {
        *fd = l->root_fd;
        return 0;
    }
    char path[OBJSTORE_KEY_MAX + 1];
    memcpy(path, key, dlen);
    path[dlen] = '\0';
    int dfd = openat(l->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        *fd = dfd;
        return 0;
    }
    if (errno != ENOENT || !create)
        return errno;

    /* Slow path, once per new directory: walk down creating. A directory
     * another thread just created (EEXIST) may not be fsync'd yet by that
     * thread, so fsync the parent in both cases. */
    int parent = l->root_fd;
    char *c = path;
    for (;;) {
        char *slash = strchr(c, '/');
        if (slash)
            *slash = '\0';
        int err = 0;
        if (mkdirat(parent, c, 0755) != 0 && errno != EEXIST)
            err = errno;
        else if (fsync(parent) != 0)
            err = errno;
        int child = err ? -1 : openat(parent, c, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!err && child < 0)
            err = errno;
        if (parent != l->root_fd)
            close(parent);
        if (err)
            return err;
        parent = child;
        if (!slash)
            break;
        c = slash + 1;
    }
    *fd = parent;
    return 0;
}

static void local_close_dir(struct local *l, int fd)
{
    if (fd != l->root_fd)
        close(fd);
}

/* -------------------------------------------------------------------- ops */

/* Move the finished temporary to its name. Without replace, an existing
 * name is EEXIST: renameat2(RENAME_NOREPLACE) where the file system has it,
 * else link() (which never replaces either) and the temporary unlinked;
 * ENOTSUP where neither works. */
static int local_publish(int dfd, const char *tmp, const char *base, bool replace)
{
    if (replace)
        return renameat(dfd, tmp, dfd, base) == 0 ? 0 : errno;
    if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return errno;
    if (linkat(dfd, tmp, dfd, base, 0) != 0)
        return errno == EPERM || errno == EOPNOTSUPP ? ENOTSUP : errno;
    unlinkat(dfd, tmp, 0); /* the object is in place: a leftover name is only a leftover */
    return 0;
}

static int local_write_object(struct objstore *s, const char *op, const char *key, const void *buf,
                       size_t len, bool replace)
{
    struct local *l = s->priv;
    if (l->read_only)
        return local_fail(l, op, key, "read-only store", EROFS);
    if (key_has_tmp_component(key))
        return local_fail(l, op, key, "reserved name", EINVAL);

    int dfd;
    const char *base;
    int err = local_open_dir(l, key, true, &dfd, &base);
    if (err)
        return local_fail(l, op, key, "create directory", err);

    char tmp[64];
    snprintf(tmp, sizeof tmp, LOCAL_TMP_PREFIX "%ld-%" PRIx64 "-%" PRIx64, (long)getpid(),
             l->salt, (uint64_t)atomic_fetch_add(&l->seq, 1));
    const char *what = "create temporary";
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = errno;
        local_close_dir(l, dfd);
        return local_fail(l, op, key, what, err);
    }
    what = "write";
    err = write_all(fd, buf, len);
    if (!err) {
        what = "fsync";
        if (fsync(fd) != 0)
            err = errno;
    }
    /* close can report a deferred write error (NFS, some FUSE). */
    if (close(fd) != 0 && !err) {
        what = "close";
        err = errno;
    }
    if (!err) {
        what = replace ? "rename" : "create";
        err = local_publish(dfd, tmp, base, replace);
    }
    if (err) {
        unlinkat(dfd, tmp, 0);
        local_close_dir(l, dfd);
        if (err == EEXIST) /* an answer, not a failure: the caller decides */
            return EEXIST;
        return local_fail(l, op, key, what, err);
    }
    /* The new object is visible; without this fsync the rename might not
     * survive a power cut. Failing here is "maybe done", as documented. */
    if (fsync(dfd) != 0)
        err = local_fail(l, op, key, "fsync directory", errno);
    local_close_dir(l, dfd);
    return err;
}

static int local_put(struct objstore *s, const char *key, const void *buf, size_t len)
{
    return local_write_object(s, "put", key, buf, len, true);
}

static int local_create(struct objstore *s, const char *key, const void *buf, size_t len)
{
    return local_write_object(s, "create", key, buf, len, false);
}

/* Open key for reading and return its size. A missing path, a path through
 * an object, or a directory is ENOENT: no object has that key. */
static int local_open_obj(struct local *l, const char *op, const char *key, int *fd,
                          uint64_t *size)
{
    /* O_NONBLOCK: a FIFO dropped into the tree must not block a fetcher;
     * regular files ignore the flag. */
    int f = openat(l->root_fd, key, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0) {
        int err = errno == ENOTDIR ? ENOENT : errno;
        return local_fail(l, op, key, "open", err);
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return local_fail(l, op, key, "fstat", err);
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return local_fail(l, op, key, "not a regular file", ENOENT);
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int local_get(struct objstore *s, const char *key, size_t max, struct objstore_buf *out)
{
    struct local *l = s->priv;
    int fd = -1;
    uint64_t size = 0;
    int err = local_open_obj(l, "get", key, &fd, &size);
    if (err)
        return err;
    if (size > max) {
        close(fd);
        char what[96];
        snprintf(what, sizeof what, "%" PRIu64 " bytes, limit %zu", size, max);
        return local_fail(l, "get", key, what, EFBIG);
    }
    if (size > out->cap) {
        void *p = realloc(out->data, (size_t)size);
        if (!p) {
            close(fd);
            return local_fail(l, "get", key, "allocate", ENOMEM);
        }
        out->data = p;
        out->cap = (size_t)size;
    }
    err = pread_all(fd, out->data, (size_t)size, 0);
    close(fd);
    if (err)
        return local_fail(l, "get", key, "read", err);
    out->len = (size_t)size;
    return 0;
}

static int local_get_range(struct objstore *s, const char *key, uint64_t off, size_t len,
                           void *buf, size_t *got)
{
    struct local *l = s->priv;
    int fd = -1;
    uint64_t size = 0;
    int err = local_open_obj(l, "range", key, &fd, &size);
    if (err)
        return err;
    size_t n = off >= size ? 0 : (size - off < len ? (size_t)(size - off) : len);
    err = n ? pread_all(fd, buf, n, off) : 0;
    close(fd);
    if (err)
        return local_fail(l, "range", key, "read", err);
    *got = n;
    return 0;
}

static int local_head(struct objstore *s, const char *key, uint64_t *size)
{
    struct local *l = s->priv;
    struct stat st;
    if (fstatat(l->root_fd, key, &st, 0) != 0) {
        int err = errno == ENOTDIR ? ENOENT : errno;
        return local_fail(l, "head", key, "stat", err);
    }
    if (!S_ISREG(st.st_mode))
        return local_fail(l, "head", key, "not a regular file", ENOENT);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int local_del(struct objstore *s, const char *key)
{
    struct local *l = s->priv;
    if (l->read_only)
        return local_fail(l, "delete", key, "read-only store", EROFS);
    int dfd;
    const char *base;
    int err = local_open_dir(l, key, false, &dfd, &base);
    if (err == ENOENT || err == ENOTDIR)
        return 0;
    if (err)
        return local_fail(l, "delete", key, "open directory", err);
    if (unlinkat(dfd, base, 0) != 0) {
        err = errno;
        local_close_dir(l, dfd);
        /* EISDIR: the key names a directory of other keys, not an object. */
        if (err == ENOENT || err == EISDIR)
            return 0;
        return local_fail(l, "delete", key, "unlink", err);
    }
    /* Without this a deleted object could come back after a power cut. */
    if (fsync(dfd) != 0)
        err = local_fail(l, "delete", key, "fsync directory", errno);
    local_close_dir(l, dfd);
    return err;
}

/* ------------------------------------------------------------------- list */

/* Byte order of keys across directories: the keys under directory "a" all
 * start with "a/", so a directory sorts as its name followed by '/'. That
 * puts "a.c" < "a/..." < "a0", as a flat S3 listing would. */
struct walk_ent {
    char *name;
    bool dir;
};

struct walker {
    struct local *l;
    const char *prefix;
    size_t plen;
    const char *after;          /* NULL: from the start */
    size_t max;
    struct objstore_list *out;
    size_t cap;
    bool full;                  /* max collected and one more key seen */
    char key[OBJSTORE_KEY_MAX + 2]; /* the path of the directory walked, with
                                     * its trailing '/' */
};

static int walk_ent_cmp(const void *a, const void *b)
{
    const struct walk_ent *x = a, *y = b;
    const unsigned char *p = (const unsigned char *)x->name, *q = (const unsigned char *)y->name;
    for (;; p++, q++) {
        int c = *p ? *p : (x->dir ? '/' : 0);
        int d = *q ? *q : (y->dir ? '/' : 0);
        if (c != d || !*p || !*q) {
            /* A name ended: compare its virtual '/' (or end) against the
             * other's byte. Names are unique, so equality here means one
             * is longer than the other. */
            if (c != d)
                return c - d;
            return *p ? 1 : -1;
        }
    }
}

/* Could a key starting with k (length n) match the prefix? */
static bool prefix_compatible(const struct walker *w, const char *k, size_t n)
{
    size_t m = n < w->plen ? n : w->plen;
    return memcmp(k, w->prefix, m) == 0;
}

static int walk_append(struct walker *w, const char *key, uint64_t size)
{
    if (w->out->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        if (cap > w->max)
            cap = w->max;
        void *p = realloc(w->out->entries, cap * sizeof *w->out->entries);
        if (!p)
            return ENOMEM;
        w->out->entries = p;
        w->cap = cap;
    }
    char *k = strdup(key);
    if (!k)
        return ENOMEM;
    w->out->entries[w->out->count].key = k;
    w->out->entries[w->out->count].size = size;
    w->out->count++;
    return 0;
}

static void free_ents(struct walk_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* Walk the directory dfd (owned: closed here) whose keys start with w->key
 * (klen bytes), in key order, appending matches until the page is full. */
static int walk_dir(struct walker *w, int dfd, size_t klen, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        return err;
    }
    struct walk_ent *ents = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            err = errno;
            break;
        }
        const char *name = de->d_name;
        size_t nlen = strlen(name);
        if (is_tmp_name(name) || objstore_key_check(name) != 0)
            continue; /* temporaries, ".", "..", names no key can have */
        if (klen + nlen + 1 > OBJSTORE_KEY_MAX)
            continue;
        bool dir;
        if (de->d_type == DT_DIR || de->d_type == DT_REG) {
            dir = de->d_type == DT_DIR;
        } else if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue; /* gone meanwhile */
            if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                continue;
            dir = S_ISDIR(st.st_mode);
        } else {
            continue; /* symlinks, FIFOs, ...: not objects */
        }
        memcpy(w->key + klen, name, nlen);
        size_t full = klen + nlen;
        if (dir)
            w->key[full++] = '/';
        w->key[full] = '\0';
        if (!prefix_compatible(w, w->key, full))
            continue;
        if (!dir && full < w->plen)
            continue; /* the key is shorter than the prefix */
        if (w->after) {
            int c = strcmp(w->key, w->after);
            /* A directory's keys all start with "name/": all of them are
             * <= after if that string sorts before after and is not a
             * prefix of it. */
            if (dir ? (c < 0 && strncmp(w->after, w->key, full) != 0) : c <= 0)
                continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            void *p = realloc(ents, cap * sizeof *ents);
            if (!p) {
                err = ENOMEM;
                break;
            }
            ents = p;
        }
        ents[n].name = strdup(name);
        if (!ents[n].name) {
            err = ENOMEM;
            break;
        }
        ents[n++].dir = dir;
    }
    if (err) {
        closedir(d);
        free_ents(ents, n);
        return err;
    }
    if (n > 1) /* qsort's array argument must not be NULL, even for 0 */
        qsort(ents, n, sizeof *ents, walk_ent_cmp);

    for (size_t i = 0; i < n && !err && !w->full; i++) {
        size_t nlen = strlen(ents[i].name);
        memcpy(w->key + klen, ents[i].name, nlen);
        if (ents[i].dir) {
            w->key[klen + nlen] = '/';
            w->key[klen + nlen + 1] = '\0';
            if (depth >= LOCAL_MAX_DEPTH)
                continue;
            int sub = openat(dirfd(d), ents[i].name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                    continue; /* removed or replaced meanwhile */
                err = errno;
                break;
            }
            err = walk_dir(w, sub, klen + nlen + 1, depth + 1);
            continue;
        }
        w->key[klen + nlen] = '\0';
        struct stat st;
        if (fstatat(dirfd(d), ents[i].name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* deleted meanwhile */
            err = errno;
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue; /* replaced by a directory meanwhile */
        if (w->out->count == w->max) {
            w->full = true; /* one key past the page: there is a next page */
            break;
        }
        err = walk_append(w, w->key, (uint64_t)st.st_size);
    }
    closedir(d);
    free_ents(ents, n);
    return err;
}

static int local_list(struct objstore *s, const char *prefix, const char *after, size_t max,
                      struct objstore_list *out)
{
    struct local *l = s->priv;
    struct walker w = {
        .l = l, .prefix = prefix, .plen = strlen(prefix), .after = after, .max = max, .out = out,
    };
    /* Start in the prefix's directory: "p/vol/chunks/00" walks
     * p/vol/chunks and keeps names starting with "00". */
    const char *slash = strrchr(prefix, '/');
    size_t dlen = slash ? (size_t)(slash - prefix) + 1 : 0;
    memcpy(w.key, prefix, dlen);
    w.key[dlen] = '\0';
    int dfd = openat(l->root_fd, dlen ? w.key : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* nothing under that prefix */
        return local_fail(l, "list", prefix, "open directory", errno);
    }
    int err = walk_dir(&w, dfd, dlen, 0);
    if (!err && w.full) {
        out->next = strdup(out->entries[out->count - 1].key);
        if (!out->next)
            err = ENOMEM;
    }
    if (err)
        return local_fail(l, "list", prefix, "walk", err);
    return 0;
}

/* ------------------------------------------------------------ open, close */

/* Remove temporaries older than LOCAL_TMP_STALE_S under dfd (owned). Best
 * effort: a failure here costs disk space, not correctness. */
static void local_clean_tmp(struct local *l, int dfd, time_t now, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth >= LOCAL_MAX_DEPTH)
                continue;
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub >= 0)
                local_clean_tmp(l, sub, now, depth + 1);
        } else if (S_ISREG(st.st_mode) && is_tmp_name(name) &&
                   now - st.st_mtime > LOCAL_TMP_STALE_S) {
            if (unlinkat(dirfd(d), name, 0) == 0)
                objstore_logf(l->pub.log, l->pub.log_opaque, OBJSTORE_LOG_INFO,
                              "%s: removed stale temporary %s (%lld bytes)", l->name, name,
                              (long long)st.st_size);
        }
    }
    closedir(d);
}

static void local_close(struct objstore *s)
{
    struct local *l = s->priv;
    close(l->root_fd);
    free(l);
}

static const struct objstore_ops local_ops = {
    .put = local_put,
    .get = local_get,
    .get_range = local_get_range,
    .head = local_head,
    .del = local_del,
    .list = local_list,
    .close = local_close,
    .create = local_create,
};

int objstore_local_open(const struct objstore_local_config *cfg, struct objstore **out)
{
    objstore_log_fn log = cfg ? cfg->log : NULL;
    void *lo = cfg ? cfg->log_opaque : NULL;
    if (!cfg || !cfg->root || !cfg->root[0] || !out) {
        objstore_logf(log, lo, OBJSTORE_LOG_ERROR, "local: no root directory given");
        return EINVAL;
    }
    const char *root = cfg->root;
    if (cfg->create && !cfg->read_only && mkdir(root, 0755) != 0 && errno != EEXIST) {
        int err = errno;
        objstore_logf(log, lo, OBJSTORE_LOG_ERROR, "local:%s: create: %s", root,
                      objstore_strerror(err));
        return err;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        objstore_logf(log, lo, OBJSTORE_LOG_ERROR, "local:%s: open: %s", root,
                      objstore_strerror(err));
        return err;
    }
    size_t nlen = strlen("local:") + strlen(root) + 1;
    struct local *l = calloc(1, sizeof *l + nlen);
    if (!l) {
        close(fd);
        return ENOMEM;
    }
    snprintf(l->name, nlen, "local:%s", root);
    l->root_fd = fd;
    l->read_only = cfg->read_only;
    if (getrandom(&l->salt, sizeof l->salt, GRND_NONBLOCK) != sizeof l->salt)
        l->salt = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)l; /* uniqueness, not secrecy */
    atomic_init(&l->seq, 0);
    l->pub.ops = &local_ops;
    l->pub.priv = l;
    l->pub.name = l->name;
    l->pub.log = log;
    l->pub.log_opaque = lo;

    if (!l->read_only) {
        /* A fresh fd: readdir moves the offset of the fd it walks. */
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
            local_clean_tmp(l, dfd, time(NULL), 0);
    }
    *out = &l->pub;
    return 0;
}
