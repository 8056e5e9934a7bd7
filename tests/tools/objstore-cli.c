/* objstore-cli.c - a small command-line tool over backends/objstore.h: put,
 * get, head, delete and list objects in any store (s3, local:DIR), plus
 * bulk commands the integration tests and benchmarks use. See --help.
 *
 * Exit status: 0, or the errno of the failure (2 ENOENT, 13 EACCES,
 * 111 ECONNREFUSED, 121 EREMOTEIO = server error, 16 EBUSY = slow down,
 * ...), so scripts can tell outcomes apart; a usage error is 22 (EINVAL).
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/objstore.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cli {
    const char *store;
    struct objstore_s3_config s3;
    int log_level;
    size_t max;
    unsigned threads;
    size_t page_size;
    const char *after;
    bool one_page;
    struct objstore *os;
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: objstore-cli [options] COMMAND [ARGS]\n"
        "\n"
        "Store (one of):\n"
        "  --store=local:DIR            a directory (created if missing)\n"
        "  --store=s3                   an S3 bucket, with:\n"
        "    --s3-endpoint=URL          default https://s3.<region>.amazonaws.com\n"
        "    --s3-region=NAME           default us-east-1\n"
        "    --s3-bucket=NAME           required\n"
        "    --s3-prefix=P              keys live under P/\n"
        "    --s3-path-style            http://host/bucket/key (implied for IP hosts)\n"
        "    --s3-ca-file=PEM           CA bundle to trust\n"
        "    --s3-insecure              do not verify TLS certificates\n"
        "    --s3-connections=N         parallel requests (default 8)\n"
        "    --s3-attempts=N            tries per operation (default 4)\n"
        "    --s3-retry-base-ms=N, --s3-retry-cap-ms=N   back-off (100, 5000)\n"
        "    --s3-connect-timeout-ms=N  default 10000\n"
        "    --s3-low-speed=BYTES/SECS  stall limit (default 1/30)\n"
        "    --s3-request-timeout=SECS  whole request (default none)\n"
        "    --s3-profile=NAME, --s3-credentials-file=PATH\n"
        "    --s3-unsigned-payload      do not hash bodies (UNSIGNED-PAYLOAD)\n"
        "    --s3-create-bucket         create the bucket if missing\n"
        "    --s3-no-check              do not probe the bucket at open\n"
        "  Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,\n"
        "  else ~/.aws/credentials [$AWS_PROFILE or default].\n"
        "\n"
        "Other options:\n"
        "  --log-level=error|warn|info|debug   default warn\n"
        "  --max=SIZE       largest object get accepts (default 1GiB)\n"
        "  --threads=N      fill, verify, bench, copy, export, import (default 8)\n"
        "  --page-size=N    list page size (default 1000)\n"
        "  --after=KEY      list: start after KEY\n"
        "  --one-page       list: print one page and the next key\n"
        "\n"
        "Commands:\n"
        "  put KEY FILE|-           store FILE (or stdin)\n"
        "  create KEY FILE|-        store it only if KEY is absent (17 EEXIST if not)\n"
        "  get KEY [FILE|-]         fetch to FILE (default stdout)\n"
        "  range KEY OFF LEN        bytes [OFF, OFF+LEN) to stdout\n"
        "  head KEY                 print the size\n"
        "  delete KEY...            one request per key\n"
        "  delete-many KEY...       one objstore_delete_many call\n"
        "  list [PREFIX]            'SIZE KEY' lines; 'pages=N keys=N' on stderr\n"
        "  rm-prefix PREFIX         delete every key under PREFIX (batches of 1000)\n"
        "  copy SRC DST             copy every key SRC* to DST*: the part after SRC is\n"
        "                           kept (a whole store under one prefix to another)\n"
        "  export PREFIX DIR        every key PREFIX* into the file DIR/* (directories\n"
        "                           made as needed): the layout of --store=local:DIR\n"
        "  import DIR PREFIX        every regular file DIR/* as the key PREFIX*\n"
        "                           (the reverse of export; temporary files skipped)\n"
        "  fill PREFIX COUNT SIZE   put COUNT objects PREFIX000000.. of SIZE bytes\n"
        "  verify PREFIX COUNT SIZE get them back and compare\n"
        "  bench PREFIX COUNT SIZE  fill + verify, timed (MB/s), then rm-prefix\n"
        "  config                   print the store configuration (secrets redacted)\n"
        "\n"
        "Exit status: 0, or the errno of the failure (2 ENOENT, 13 EACCES, 111\n"
        "ECONNREFUSED, 121 EREMOTEIO: server error, 16 EBUSY: slow down, ...).\n");
}

static void cli_log(void *opaque, int level, const char *line)
{
    const struct cli *c = opaque;
    if (level <= c->log_level)
        objstore_log_stderr(NULL, level, line);
}

static int fail(const char *what, const char *key, int err)
{
    const char *name = strerrorname_np(err);
    fprintf(stderr, "objstore-cli: %s%s%s: %s (%s, %s)\n", what, key ? " " : "", key ? key : "",
            objstore_strerror(err), name ? name : "?",
            objstore_err_retriable(err) ? "retriable" : "permanent");
    return err;
}

static int bad_usage(const char *what, const char *arg)
{
    fprintf(stderr, "objstore-cli: %s%s%s%s (see --help)\n", what, arg ? " '" : "",
            arg ? arg : "", arg ? "'" : "");
    return EINVAL;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return EINVAL;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},         {"B", 1},          {"k", 1000},    {"K", 1024},
                 {"KiB", 1024},   {"M", 1000000},    {"MiB", 1 << 20}, {"G", 1000000000},
                 {"GiB", 1 << 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return EINVAL;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return EINVAL;
}

static int parse_uint(const char *s, unsigned *out)
{
    uint64_t v;
    if (parse_size(s, &v) || v > 1000000000u)
        return EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* -------------------------------------------------------------- file I/O */

static int read_all(const char *path, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return errno;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int err = 0;
    while (buf) {
        if (n == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                err = ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                err = EIO;
            break;
        }
    }
    if (!buf)
        err = ENOMEM;
    if (f != stdin)
        fclose(f);
    if (err) {
        free(buf);
        return err;
    }
    *data = buf;
    *len = n;
    return 0;
}

static int write_all(const char *path, const void *data, size_t len)
{
    FILE *f = path && strcmp(path, "-") ? fopen(path, "wb") : stdout;
    if (!f)
        return errno;
    /* an empty object's data may be NULL, which fwrite must not see */
    int err = len == 0 || fwrite(data, 1, len, f) == len ? 0 : EIO;
    if (fflush(f) != 0 && !err)
        err = EIO;
    if (f != stdout && fclose(f) != 0 && !err)
        err = EIO;
    return err;
}

/* ---------------------------------------------------- content for bulk ops */

/* The bytes of object i of a fill: a function of the key only, so verify
 * can recompute them. */
static void fill_content(const char *key, unsigned char *buf, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the key seeds xorshift */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    for (size_t i = 0; i < len; i++) {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        buf[i] = (unsigned char)h;
    }
}

struct bulk {
    struct cli *c;
    const char *prefix;
    unsigned count;
    size_t size;
    bool verify;
    atomic_uint next;
    atomic_int err;
    atomic_uint done;
};

static void *bulk_worker(void *opaque)
{
    struct bulk *b = opaque;
    unsigned char *want = malloc(b->size ? b->size : 1);
    struct objstore_buf got = OBJSTORE_BUF_INIT;
    char key[OBJSTORE_KEY_MAX + 1];
    for (;;) {
        unsigned i = atomic_fetch_add(&b->next, 1);
        if (i >= b->count || !want)
            break;
        snprintf(key, sizeof key, "%s%06u", b->prefix, i);
        fill_content(key, want, b->size);
        int err;
        if (!b->verify) {
            err = objstore_put(b->c->os, key, want, b->size);
        } else {
            err = objstore_get(b->c->os, key, b->size, &got);
            if (!err && (got.len != b->size || memcmp(got.data, want, b->size) != 0)) {
                fprintf(stderr, "objstore-cli: verify %s: content differs (%zu bytes, want %zu)\n",
                        key, got.len, b->size);
                err = EBADMSG;
            }
        }
        if (err) {
            fail(b->verify ? "get" : "put", key, err);
            int zero = 0;
            atomic_compare_exchange_strong(&b->err, &zero, err);
        } else {
            atomic_fetch_add(&b->done, 1);
        }
    }
    if (!want) {
        int zero = 0;
        atomic_compare_exchange_strong(&b->err, &zero, ENOMEM);
    }
    free(want);
    objstore_buf_free(&got);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bulk_run(struct cli *c, const char *prefix, unsigned count, size_t size, bool verify,
                    double *secs)
{
    struct bulk b = {.c = c, .prefix = prefix, .count = count, .size = size, .verify = verify};
    unsigned n = c->threads ? c->threads : 1;
    if (n > count)
        n = count ? count : 1;
    pthread_t *t = calloc(n, sizeof *t);
    if (!t)
        return ENOMEM;
    double t0 = now_s();
    unsigned started = 0;
    for (; started < n; started++)
        if (pthread_create(&t[started], NULL, bulk_worker, &b) != 0)
            break;
    if (started == 0)
        bulk_worker(&b);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    *secs = now_s() - t0;
    free(t);
    fprintf(stderr, "objstore-cli: %s %u/%u objects of %zu bytes in %.3fs (%u threads)\n",
            verify ? "verified" : "stored", atomic_load(&b.done), count, size, *secs, n);
    return atomic_load(&b.err);
}

/* ---------------------------------------------------------------- listing */

static int list_all(struct cli *c, const char *prefix, bool print, char ***keys_out,
                    size_t *nkeys_out)
{
    const char *after = c->after;
    char *after_buf = NULL;
    size_t pages = 0, nkeys = 0, cap = 0;
    char **keys = NULL;
    int err = 0;
    for (;;) {
        struct objstore_list page = OBJSTORE_LIST_INIT;
        err = objstore_list(c->os, prefix, after, c->page_size, &page);
        if (err) {
            fail("list", prefix, err);
            break;
        }
        pages++;
        for (size_t i = 0; i < page.count; i++) {
            if (print)
                printf("%" PRIu64 " %s\n", page.entries[i].size, page.entries[i].key);
            if (keys_out) {
                if (nkeys == cap) {
                    cap = cap ? cap * 2 : 1024;
                    char **p = realloc(keys, cap * sizeof *keys);
                    if (!p) {
                        err = ENOMEM;
                        break;
                    }
                    keys = p;
                }
                keys[nkeys] = strdup(page.entries[i].key);
                if (!keys[nkeys]) {
                    err = ENOMEM;
                    break;
                }
            }
            nkeys++;
        }
        free(after_buf);
        after_buf = page.next;
        page.next = NULL;
        objstore_list_free(&page);
        after = after_buf;
        if (err || !after)
            break;
        if (c->one_page) {
            fprintf(stderr, "next=%s\n", after);
            break;
        }
    }
    free(after_buf);
    fflush(stdout);
    fprintf(stderr, "pages=%zu keys=%zu\n", pages, nkeys);
    if (keys_out) {
        *keys_out = keys;
        *nkeys_out = err ? 0 : nkeys;
        if (err) {
            for (size_t i = 0; i < nkeys && keys; i++)
                free(keys[i]);
            free(keys);
            *keys_out = NULL;
        }
    }
    return err;
}

static int rm_prefix(struct cli *c, const char *prefix)
{
    char **keys = NULL;
    size_t n = 0;
    bool save = c->one_page;
    c->one_page = false;
    int err = list_all(c, prefix, false, &keys, &n);
    c->one_page = save;
    if (!err && n) {
        err = objstore_delete_many(c->os, (const char *const *)keys, n);
        if (err)
            fail("delete-many under", prefix, err);
        else
            fprintf(stderr, "objstore-cli: deleted %zu keys\n", n);
    }
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    return err;
}

/* ------------------------------------------- copy, export and import */

/* Work on many keys (or files) in parallel: one call of fn per item, on
 * --threads threads. Every item is tried; the first error is returned. */
struct each {
    struct cli *c;
    char **items;
    size_t n;
    const char *from, *to; /* what fn maps an item from and to */
    int (*fn)(struct each *e, const char *item, struct objstore_buf *buf);
    atomic_size_t next;
    atomic_int err;
    atomic_size_t done;
};

static void *each_worker(void *opaque)
{
    struct each *e = opaque;
    struct objstore_buf buf = OBJSTORE_BUF_INIT;
    for (;;) {
        size_t i = atomic_fetch_add(&e->next, 1);
        if (i >= e->n)
            break;
        int err = e->fn(e, e->items[i], &buf);
        if (err) {
            int zero = 0;
            atomic_compare_exchange_strong(&e->err, &zero, err);
        } else {
            atomic_fetch_add(&e->done, 1);
        }
    }
    objstore_buf_free(&buf);
    return NULL;
}

static int each_run(struct each *e, const char *verb)
{
    unsigned n = e->c->threads ? e->c->threads : 1;
    if (n > e->n)
        n = e->n ? (unsigned)e->n : 1;
    pthread_t *t = calloc(n, sizeof *t);
    if (!t)
        return ENOMEM;
    unsigned started = 0;
    for (; started < n; started++)
        if (pthread_create(&t[started], NULL, each_worker, e) != 0)
            break;
    if (started == 0)
        each_worker(e);
    for (unsigned i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    fprintf(stderr, "objstore-cli: %s %zu/%zu objects\n", verb, atomic_load(&e->done), e->n);
    return atomic_load(&e->err);
}

static void free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

/* from + rest of item (after strlen(from)) -> to + rest. */
static int map_name(char *out, size_t len, const char *to, const char *item, const char *from)
{
    int n = snprintf(out, len, "%s%s", to, item + strlen(from));
    return n < 0 || (size_t)n >= len ? ENAMETOOLONG : 0;
}

static int copy_one(struct each *e, const char *key, struct objstore_buf *buf)
{
    char dst[OBJSTORE_KEY_MAX + 2];
    int err = map_name(dst, sizeof dst, e->to, key, e->from);
    if (err)
        return fail("copy", key, err);
    if ((err = objstore_get(e->c->os, key, e->c->max, buf)))
        return fail("get", key, err);
    if ((err = objstore_put(e->c->os, dst, buf->data, buf->len)))
        return fail("put", dst, err);
    return 0;
}

/* mkdir -p of the directory part of path. */
static int make_parents(char *path)
{
    for (char *p = path + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        int err = mkdir(path, 0755) && errno != EEXIST ? errno : 0;
        *p = '/';
        if (err)
            return err;
    }
    return 0;
}

static int export_one(struct each *e, const char *key, struct objstore_buf *buf)
{
    char path[4096];
    int err = map_name(path, sizeof path, e->to, key, e->from);
    if (!err)
        err = make_parents(path);
    if (err)
        return fail("export to", path, err);
    if ((err = objstore_get(e->c->os, key, e->c->max, buf)))
        return fail("get", key, err);
    if ((err = write_all(path, buf->data, buf->len)))
        return fail("write", path, err);
    return 0;
}

static int import_one(struct each *e, const char *path, struct objstore_buf *buf)
{
    (void)buf;
    char key[OBJSTORE_KEY_MAX + 2];
    int err = map_name(key, sizeof key, e->to, path, e->from);
    if (err)
        return fail("import", path, err);
    char *data = NULL;
    size_t len = 0;
    if ((err = read_all(path, &data, &len)))
        return fail("read", path, err);
    err = objstore_put(e->c->os, key, data, len);
    free(data);
    return err ? fail("put", key, err) : 0;
}

/* Append the regular files under dir (recursively) to *items, skipping a
 * local store's unfinished puts; symlinks are neither followed nor taken. */
static int walk_dir(const char *dir, char ***items, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return fail("opendir", dir, errno);
    int err = 0;
    struct dirent *de;
    while (!err && (errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strncmp(de->d_name, ".objstore-tmp-", 14))
            continue;
        char *path;
        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
            err = ENOMEM;
            break;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            err = fail("stat", path, errno);
        } else if (S_ISDIR(st.st_mode)) {
            err = walk_dir(path, items, n, cap);
        } else if (S_ISREG(st.st_mode)) {
            if (*n == *cap) {
                size_t c2 = *cap ? *cap * 2 : 1024;
                char **p = realloc(*items, c2 * sizeof *p);
                if (!p) {
                    err = ENOMEM;
                } else {
                    *items = p;
                    *cap = c2;
                }
            }
            if (!err) {
                (*items)[(*n)++] = path;
                path = NULL;
            }
        }
        free(path);
    }
    if (!err && errno)
        err = fail("readdir", dir, errno);
    closedir(d);
    return err;
}

static int copy_prefix(struct cli *c, const char *cmd, const char *from, const char *to)
{
    struct each e = {.c = c, .from = from, .to = to};
    int err;
    if (!strcmp(cmd, "import")) {
        /* from is "DIR/": walk DIR */
        char *dir = strndup(from, strlen(from) - 1);
        size_t cap = 0;
        err = dir ? walk_dir(dir, &e.items, &e.n, &cap) : ENOMEM;
        free(dir);
        if (err) {
            free_items(e.items, e.n);
            return err;
        }
        e.fn = import_one;
    } else {
        bool save = c->one_page;
        c->one_page = false;
        err = list_all(c, from, false, &e.items, &e.n);
        c->one_page = save;
        if (err)
            return err;
        e.fn = !strcmp(cmd, "export") ? export_one : copy_one;
    }
    err = each_run(&e, !strcmp(cmd, "copy") ? "copied" : !strcmp(cmd, "export") ? "exported"
                                                                                : "imported");
    free_items(e.items, e.n);
    return err;
}

/* --------------------------------------------------------------- commands */

static int need_args(int argc, int want_min, int want_max, const char *cmd)
{
    if (argc - 1 < want_min || (want_max >= 0 && argc - 1 > want_max))
        return bad_usage("wrong number of arguments for", cmd);
    return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
    const char *cmd = argv[0];
    int err;
    if (!strcmp(cmd, "put") || !strcmp(cmd, "create")) {
        if ((err = need_args(argc, 2, 2, cmd)))
            return err;
        char *data = NULL;
        size_t len = 0;
        if ((err = read_all(argv[2], &data, &len)))
            return fail("read", argv[2], err);
        err = !strcmp(cmd, "put") ? objstore_put(c->os, argv[1], data, len)
                                  : objstore_create(c->os, argv[1], data, len);
        free(data);
        return err ? fail(cmd, argv[1], err) : 0;
    }
    if (!strcmp(cmd, "get")) {
        if ((err = need_args(argc, 1, 2, cmd)))
            return err;
        struct objstore_buf b = OBJSTORE_BUF_INIT;
        err = objstore_get(c->os, argv[1], c->max, &b);
        if (!err && (err = write_all(argc > 2 ? argv[2] : NULL, b.data, b.len)))
            fail("write", argc > 2 ? argv[2] : "stdout", err);
        else if (err)
            fail("get", argv[1], err);
        objstore_buf_free(&b);
        return err;
    }
    if (!strcmp(cmd, "range")) {
        if ((err = need_args(argc, 3, 3, cmd)))
            return err;
        uint64_t off, len;
        if (parse_size(argv[2], &off) || parse_size(argv[3], &len) || len > SIZE_MAX / 2)
            return bad_usage("bad offset or length for", cmd);
        void *buf = malloc(len ? (size_t)len : 1);
        if (!buf)
            return fail("range", argv[1], ENOMEM);
        size_t got = 0;
        err = objstore_get_range(c->os, argv[1], off, (size_t)len, buf, &got);
        if (err)
            fail("range", argv[1], err);
        else if ((err = write_all(NULL, buf, got)))
            fail("write", "stdout", err);
        free(buf);
        return err;
    }
    if (!strcmp(cmd, "head")) {
        if ((err = need_args(argc, 1, 1, cmd)))
            return err;
        uint64_t size;
        if ((err = objstore_head(c->os, argv[1], &size)))
            return fail("head", argv[1], err);
        printf("%" PRIu64 "\n", size);
        return 0;
    }
    if (!strcmp(cmd, "delete")) {
        if ((err = need_args(argc, 1, -1, cmd)))
            return err;
        int first = 0;
        for (int i = 1; i < argc; i++)
            if ((err = objstore_delete(c->os, argv[i])) && !first)
                first = fail("delete", argv[i], err);
        return first;
    }
    if (!strcmp(cmd, "delete-many")) {
        if ((err = need_args(argc, 1, -1, cmd)))
            return err;
        err = objstore_delete_many(c->os, (const char *const *)argv + 1, (size_t)argc - 1);
        return err ? fail("delete-many", NULL, err) : 0;
    }
    if (!strcmp(cmd, "list")) {
        if ((err = need_args(argc, 0, 1, cmd)))
            return err;
        return list_all(c, argc > 1 ? argv[1] : "", true, NULL, NULL);
    }
    if (!strcmp(cmd, "rm-prefix")) {
        if ((err = need_args(argc, 1, 1, cmd)))
            return err;
        return rm_prefix(c, argv[1]);
    }
    if (!strcmp(cmd, "copy")) {
        if ((err = need_args(argc, 2, 2, cmd)))
            return err;
        return copy_prefix(c, cmd, argv[1], argv[2]);
    }
    if (!strcmp(cmd, "export") || !strcmp(cmd, "import")) {
        if ((err = need_args(argc, 2, 2, cmd)))
            return err;
        bool out = !strcmp(cmd, "export");
        /* Paths map from or to "DIR/", however DIR was given. */
        const char *d = argv[out ? 2 : 1];
        size_t dl = strlen(d);
        while (dl > 1 && d[dl - 1] == '/')
            dl--;
        char dir[4096];
        if (dl + 2 > sizeof dir)
            return bad_usage("directory name too long:", d);
        memcpy(dir, d, dl);
        dir[dl] = '\0';
        if (out && mkdir(dir, 0755) != 0 && errno != EEXIST)
            return fail("mkdir", dir, errno);
        dir[dl] = '/';
        dir[dl + 1] = '\0';
        return out ? copy_prefix(c, cmd, argv[1], dir) : copy_prefix(c, cmd, dir, argv[2]);
    }
    if (!strcmp(cmd, "fill") || !strcmp(cmd, "verify") || !strcmp(cmd, "bench")) {
        if ((err = need_args(argc, 3, 3, cmd)))
            return err;
        unsigned count;
        uint64_t size;
        if (parse_uint(argv[2], &count) || parse_size(argv[3], &size) || size > SIZE_MAX / 2)
            return bad_usage("bad count or size for", cmd);
        double put_s = 0, get_s = 0;
        if (strcmp(cmd, "verify") != 0 &&
            (err = bulk_run(c, argv[1], count, (size_t)size, false, &put_s)))
            return err;
        if (strcmp(cmd, "fill") != 0 &&
            (err = bulk_run(c, argv[1], count, (size_t)size, true, &get_s)))
            return err;
        if (!strcmp(cmd, "bench")) {
            double mb = (double)count * (double)size / 1e6;
            printf("put %u x %" PRIu64 " B: %.3f s, %.1f MB/s, %.1f objects/s\n", count, size,
                   put_s, mb / put_s, count / put_s);
            printf("get %u x %" PRIu64 " B: %.3f s, %.1f MB/s, %.1f objects/s\n", count, size,
                   get_s, mb / get_s, count / get_s);
            err = rm_prefix(c, argv[1]);
        }
        return err;
    }
    return bad_usage("unknown command", cmd);
}

enum {
    OPT_STORE = 256, OPT_ENDPOINT, OPT_REGION, OPT_BUCKET, OPT_PREFIX, OPT_PATH_STYLE,
    OPT_CA_FILE, OPT_INSECURE, OPT_CONNECTIONS, OPT_ATTEMPTS, OPT_RETRY_BASE, OPT_RETRY_CAP,
    OPT_CONNECT_TIMEOUT, OPT_LOW_SPEED, OPT_REQUEST_TIMEOUT, OPT_PROFILE, OPT_CREDS_FILE,
    OPT_UNSIGNED, OPT_CREATE, OPT_NO_CHECK, OPT_LOG_LEVEL, OPT_MAX, OPT_THREADS, OPT_PAGE,
    OPT_AFTER, OPT_ONE_PAGE, OPT_HELP,
};

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, OPT_STORE},
        {"s3-endpoint", required_argument, NULL, OPT_ENDPOINT},
        {"s3-region", required_argument, NULL, OPT_REGION},
        {"s3-bucket", required_argument, NULL, OPT_BUCKET},
        {"s3-prefix", required_argument, NULL, OPT_PREFIX},
        {"s3-path-style", no_argument, NULL, OPT_PATH_STYLE},
        {"s3-ca-file", required_argument, NULL, OPT_CA_FILE},
        {"s3-insecure", no_argument, NULL, OPT_INSECURE},
        {"s3-connections", required_argument, NULL, OPT_CONNECTIONS},
        {"s3-attempts", required_argument, NULL, OPT_ATTEMPTS},
        {"s3-retry-base-ms", required_argument, NULL, OPT_RETRY_BASE},
        {"s3-retry-cap-ms", required_argument, NULL, OPT_RETRY_CAP},
        {"s3-connect-timeout-ms", required_argument, NULL, OPT_CONNECT_TIMEOUT},
        {"s3-low-speed", required_argument, NULL, OPT_LOW_SPEED},
        {"s3-request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
        {"s3-profile", required_argument, NULL, OPT_PROFILE},
        {"s3-credentials-file", required_argument, NULL, OPT_CREDS_FILE},
        {"s3-unsigned-payload", no_argument, NULL, OPT_UNSIGNED},
        {"s3-create-bucket", no_argument, NULL, OPT_CREATE},
        {"s3-no-check", no_argument, NULL, OPT_NO_CHECK},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"max", required_argument, NULL, OPT_MAX},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"page-size", required_argument, NULL, OPT_PAGE},
        {"after", required_argument, NULL, OPT_AFTER},
        {"one-page", no_argument, NULL, OPT_ONE_PAGE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {.log_level = OBJSTORE_LOG_WARN, .max = (size_t)1 << 30, .threads = 8};
    int o;
    /* '+': options end at the command, so keys may start with '-'. */
    while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        uint64_t v = 0;
        unsigned u = 0;
        const char *a = optarg;
        switch (o) {
        case OPT_STORE: c.store = a; break;
        case OPT_ENDPOINT: c.s3.endpoint = a; break;
        case OPT_REGION: c.s3.region = a; break;
        case OPT_BUCKET: c.s3.bucket = a; break;
        case OPT_PREFIX: c.s3.prefix = a; break;
        case OPT_PATH_STYLE: c.s3.path_style = true; break;
        case OPT_CA_FILE: c.s3.ca_file = a; break;
        case OPT_INSECURE: c.s3.insecure_skip_tls_verify = true; break;
        case OPT_PROFILE: c.s3.profile = a; break;
        case OPT_CREDS_FILE: c.s3.credentials_file = a; break;
        case OPT_UNSIGNED: c.s3.unsigned_payload = true; break;
        case OPT_CREATE: c.s3.create_bucket = true; break;
        case OPT_NO_CHECK: c.s3.skip_check = true; break;
        case OPT_AFTER: c.after = a; break;
        case OPT_ONE_PAGE: c.one_page = true; break;
        case OPT_CONNECTIONS:
        case OPT_ATTEMPTS:
        case OPT_RETRY_BASE:
        case OPT_RETRY_CAP:
        case OPT_CONNECT_TIMEOUT:
        case OPT_REQUEST_TIMEOUT:
        case OPT_THREADS:
        case OPT_PAGE:
            if (parse_uint(a, &u))
                return bad_usage("bad number", a);
            if (o == OPT_CONNECTIONS) c.s3.connections = u;
            if (o == OPT_ATTEMPTS) c.s3.attempts = u;
            if (o == OPT_RETRY_BASE) c.s3.retry_base_ms = u;
            if (o == OPT_RETRY_CAP) c.s3.retry_cap_ms = u;
            if (o == OPT_CONNECT_TIMEOUT) c.s3.connect_timeout_ms = u;
            if (o == OPT_REQUEST_TIMEOUT) c.s3.request_timeout_s = u;
            if (o == OPT_THREADS) c.threads = u;
            if (o == OPT_PAGE) c.page_size = u;
            break;
        case OPT_LOW_SPEED: {
            unsigned b = 0, t = 0;
            char tail;
            if (sscanf(a, "%u/%u%c", &b, &t, &tail) != 2)
                return bad_usage("bad --s3-low-speed (want BYTES/SECONDS):", a);
            c.s3.low_speed_bytes = b;
            c.s3.low_speed_time_s = t;
            break;
        }
        case OPT_MAX:
            if (parse_size(a, &v) || v > SIZE_MAX)
                return bad_usage("bad size", a);
            c.max = (size_t)v;
            break;
        case OPT_LOG_LEVEL:
            if (!strcmp(a, "error")) c.log_level = OBJSTORE_LOG_ERROR;
            else if (!strcmp(a, "warn")) c.log_level = OBJSTORE_LOG_WARN;
            else if (!strcmp(a, "info")) c.log_level = OBJSTORE_LOG_INFO;
            else if (!strcmp(a, "debug")) c.log_level = OBJSTORE_LOG_DEBUG;
            else return bad_usage("bad log level", a);
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EINVAL;
        }
    }
    if (optind >= argc)
        return bad_usage("no command given", NULL);
    if (!c.store)
        return bad_usage("no --store given (s3 or local:DIR)", NULL);
    c.s3.log = cli_log;
    c.s3.log_opaque = &c;

    if (!strcmp(argv[optind], "config")) {
        char line[2048];
        if (!strcmp(c.store, "s3"))
            objstore_s3_config_describe(&c.s3, line, sizeof line);
        else
            snprintf(line, sizeof line, "store=%s", c.store);
        printf("%s\n", line);
        return 0;
    }

    int err;
    if (!strcmp(c.store, "s3")) {
        err = objstore_s3_open(&c.s3, &c.os);
    } else if (!strncmp(c.store, "local:", 6)) {
        struct objstore_local_config lc = {.root = c.store + 6, .create = true, .log = cli_log,
                                           .log_opaque = &c};
        err = objstore_local_open(&lc, &c.os);
    } else {
        return bad_usage("unknown store (s3 or local:DIR):", c.store);
    }
    if (err)
        return fail("open", c.store, err);
    err = run(&c, argc - optind, argv + optind);
    objstore_close(c.os);
    return err;
}
