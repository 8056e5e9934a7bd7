/* test_objstore_local.c - the local directory backend against the contract
 * in backends/objstore.h.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/objstore.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c)                                                                     \
    do {                                                                             \
        if (!(c)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);   \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define CHECK_ERR(expr, want)                                                        \
    do {                                                                             \
        int got_ = (expr), want_ = (want);                                           \
        if (got_ != want_) {                                                         \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n", __FILE__, __LINE__, \
                    #expr, got_, objstore_strerror(got_), want_,                     \
                    objstore_strerror(want_));                                       \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* ------------------------------------------------------------- helpers */

/* A log sink that counts lines per level and keeps the last one. */
struct logcap {
    pthread_mutex_t mu;
    unsigned n[4];
    char last[1024];
};
static struct logcap logcap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cap_log(void *opaque, int level, const char *line)
{
    struct logcap *c = opaque;
    pthread_mutex_lock(&c->mu);
    if (level >= 0 && level <= 3)
        c->n[level]++;
    snprintf(c->last, sizeof c->last, "%s", line);
    pthread_mutex_unlock(&c->mu);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, line);
}

static void cap_reset(void)
{
    pthread_mutex_lock(&logcap.mu);
    memset(logcap.n, 0, sizeof logcap.n);
    logcap.last[0] = '\0';
    pthread_mutex_unlock(&logcap.mu);
}

static char base_dir[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh empty directory under base_dir. */
static void fresh_dir(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", base_dir, name);
    rm_rf(out);
    CHECK(mkdir(out, 0755) == 0);
}

static struct objstore *open_store(const char *root)
{
    struct objstore_local_config cfg = {.root = root, .log = cap_log, .log_opaque = &logcap};
    struct objstore *s = NULL;
    CHECK_ERR(objstore_local_open(&cfg, &s), 0);
    CHECK(s != NULL);
    return s;
}

static void put_str(struct objstore *s, const char *key, const char *v)
{
    CHECK_ERR(objstore_put(s, key, v, strlen(v)), 0);
}

/* Count files whose name starts with .objstore-tmp- anywhere under root. */
static unsigned tmp_count;
static int count_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (strncmp(path + ftw->base, ".objstore-tmp-", 14) == 0)
        tmp_count++;
    return 0;
}
static unsigned count_tmp_files(const char *root)
{
    tmp_count = 0;
    nftw(root, count_tmp, 16, FTW_PHYS);
    return tmp_count;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- tests */

static void test_roundtrip(void)
{
    char root[600];
    fresh_dir("roundtrip", root, sizeof root);
    struct objstore *s = open_store(root);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    uint64_t size;
    char rb[16];
    size_t got;

    put_str(s, "p/vol/superblock", "hello");
    CHECK_ERR(objstore_get(s, "p/vol/superblock", 1 << 20, &b), 0);
    CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
    CHECK_ERR(objstore_head(s, "p/vol/superblock", &size), 0);
    CHECK(size == 5);

    CHECK_ERR(objstore_get_range(s, "p/vol/superblock", 1, 3, rb, &got), 0);
    CHECK(got == 3 && memcmp(rb, "ell", 3) == 0);
    CHECK_ERR(objstore_get_range(s, "p/vol/superblock", 3, sizeof rb, rb, &got), 0);
    CHECK(got == 2 && memcmp(rb, "lo", 2) == 0);
    CHECK_ERR(objstore_get_range(s, "p/vol/superblock", 5, sizeof rb, rb, &got), 0);
    CHECK(got == 0);
    CHECK_ERR(objstore_get_range(s, "p/vol/superblock", 1000, sizeof rb, rb, &got), 0);
    CHECK(got == 0);

    /* Replace, then a key without any '/'. */
    put_str(s, "p/vol/superblock", "a longer value");
    CHECK_ERR(objstore_get(s, "p/vol/superblock", 1 << 20, &b), 0);
    CHECK(b.len == 14 && memcmp(b.data, "a longer value", 14) == 0);
    put_str(s, "top", "t");
    CHECK_ERR(objstore_head(s, "top", &size), 0);
    CHECK(size == 1);

    /* An empty object is an object. */
    CHECK_ERR(objstore_put(s, "p/vol/empty", NULL, 0), 0);
    CHECK_ERR(objstore_get(s, "p/vol/empty", 10, &b), 0);
    CHECK(b.len == 0);
    CHECK_ERR(objstore_head(s, "p/vol/empty", &size), 0);
    CHECK(size == 0);

    /* Delete; missing objects: ENOENT for reads (logged at debug level
     * only), success for delete. */
    CHECK_ERR(objstore_delete(s, "p/vol/superblock"), 0);
    cap_reset();
    CHECK_ERR(objstore_get(s, "p/vol/superblock", 1 << 20, &b), ENOENT);
    CHECK(b.len == 0);
    CHECK_ERR(objstore_head(s, "p/vol/superblock", &size), ENOENT);
    CHECK_ERR(objstore_get_range(s, "p/vol/superblock", 0, 4, rb, &got), ENOENT);
    CHECK_ERR(objstore_get(s, "nowhere/at/all", 10, &b), ENOENT);
    CHECK_ERR(objstore_get(s, "top/below", 10, &b), ENOENT); /* through an object */
    CHECK_ERR(objstore_get(s, "p/vol", 10, &b), ENOENT);     /* a directory */
    CHECK_ERR(objstore_head(s, "p/vol", &size), ENOENT);
    CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 0 && logcap.n[OBJSTORE_LOG_WARN] == 0);
    CHECK(logcap.n[OBJSTORE_LOG_DEBUG] >= 7);
    CHECK(strstr(logcap.last, "p/vol") != NULL);
    CHECK_ERR(objstore_delete(s, "p/vol/superblock"), 0);
    CHECK_ERR(objstore_delete(s, "never/existed"), 0);
    CHECK_ERR(objstore_delete(s, "top/below"), 0);

    objstore_buf_free(&b);
    objstore_close(s);
}

static void test_bad_keys(void)
{
    char root[600];
    fresh_dir("badkeys", root, sizeof root);
    struct objstore *s = open_store(root);
    char longkey[OBJSTORE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    char longcomp[OBJSTORE_COMPONENT_MAX + 3];
    memset(longcomp, 'c', sizeof longcomp - 1);
    longcomp[sizeof longcomp - 1] = '\0';
    const char *bad[] = {
        "", "/abs", "a//b", "a/", "..", ".", "a/../b", "a/./b", "../x", "a/..",
        "ctl\nchar", "del\x7f", longkey, longcomp,
    };
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    uint64_t size;
    size_t got;
    char rb[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cap_reset();
        CHECK_ERR(objstore_key_check(bad[i]), EINVAL);
        CHECK_ERR(objstore_put(s, bad[i], "x", 1), EINVAL);
        CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 1 && strstr(logcap.last, "invalid key"));
        CHECK_ERR(objstore_get(s, bad[i], 10, &b), EINVAL);
        CHECK_ERR(objstore_get_range(s, bad[i], 0, 1, rb, &got), EINVAL);
        CHECK_ERR(objstore_head(s, bad[i], &size), EINVAL);
        CHECK_ERR(objstore_delete(s, bad[i]), EINVAL);
    }
    CHECK_ERR(objstore_put(s, NULL, "x", 1), EINVAL);
    CHECK_ERR(objstore_put(s, "ok", NULL, 1), EINVAL);
    /* The longest valid key and component are fine. */
    longcomp[OBJSTORE_COMPONENT_MAX] = '\0';
    CHECK_ERR(objstore_key_check(longcomp), 0);
    CHECK_ERR(objstore_put(s, longcomp, "x", 1), 0);
    CHECK_ERR(objstore_key_check("a/b..c/.d/e.f/UTF-8-\xc3\xa9"), 0);
    CHECK_ERR(objstore_put(s, "a/b..c/.d/e.f/UTF-8-\xc3\xa9", "y", 1), 0);
    /* Reserved by the local backend for its temporaries. */
    CHECK_ERR(objstore_put(s, ".objstore-tmp-1", "x", 1), EINVAL);
    CHECK_ERR(objstore_put(s, "a/.objstore-tmp-1/b", "x", 1), EINVAL);

    /* Prefixes. */
    const char *badp[] = {"/", "/a", "a//", "../", "a/../b", "./x"};
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        struct objstore_list l = OBJSTORE_LIST_INIT;
        CHECK_ERR(objstore_prefix_check(badp[i]), EINVAL);
        CHECK_ERR(objstore_list(s, badp[i], NULL, 0, &l), EINVAL);
        CHECK(l.count == 0 && l.entries == NULL && l.next == NULL);
    }
    const char *goodp[] = {"", "a", "a/", "a/b..c/", "a/..", "a/."};
    for (size_t i = 0; i < sizeof goodp / sizeof goodp[0]; i++) {
        struct objstore_list l = OBJSTORE_LIST_INIT;
        CHECK_ERR(objstore_list(s, goodp[i], NULL, 0, &l), 0);
        objstore_list_free(&l);
    }
    /* A result that was not freed is refused rather than leaked. */
    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), 0);
    CHECK(l.count == 2);
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), EINVAL);
    objstore_list_free(&l);
    objstore_close(s);
}

/* Keys whose byte order differs from a naive per-directory walk. */
static void test_list_order(void)
{
    char root[600];
    fresh_dir("order", root, sizeof root);
    struct objstore *s = open_store(root);
    const char *keys[] = {
        "x/a.c", "x/a/b", "x/a0", "x/a/c/d", "x/a-", "x/A", "x/a/c.d", "x/a/c0",
        "x/\xc3\xa9", "x/z", "x/a/c/e", "y", "x0", "w/x",
    };
    size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++)
        put_str(s, keys[i], keys[i]);
    /* A temporary and a non-object must not appear. */
    char path[900];
    snprintf(path, sizeof path, "%s/x/a/.objstore-tmp-99-1-1", root);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("junk", f) >= 0 && fclose(f) == 0);
    snprintf(path, sizeof path, "%s/x/a/link", root);
    CHECK(symlink("b", path) == 0);

    const char *sorted[sizeof keys / sizeof keys[0]];
    memcpy(sorted, keys, sizeof keys);
    qsort(sorted, n, sizeof sorted[0], cmp_str);

    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), 0);
    CHECK(l.count == n && l.next == NULL);
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(l.entries[i].key, sorted[i]) == 0);
        CHECK(l.entries[i].size == strlen(sorted[i]));
    }
    objstore_list_free(&l);

    /* One key per page, walking with `after`. */
    size_t i = 0;
    char *after = NULL;
    for (;;) {
        CHECK_ERR(objstore_list(s, "", after, 1, &l), 0);
        free(after);
        after = NULL;
        CHECK(l.count <= 1);
        if (l.count) {
            CHECK(i < n);
            CHECK(strcmp(l.entries[0].key, sorted[i]) == 0);
            i++;
        }
        if (!l.next) {
            objstore_list_free(&l);
            break;
        }
        after = strdup(l.next);
        objstore_list_free(&l);
    }
    CHECK(i == n);

    /* A partial last component filters names. */
    const char *want_xa[] = {"x/a-", "x/a.c", "x/a/b", "x/a/c.d", "x/a/c/d", "x/a/c/e",
                             "x/a/c0", "x/a0"};
    CHECK_ERR(objstore_list(s, "x/a", NULL, 0, &l), 0);
    CHECK(l.count == 8 && !l.next);
    for (i = 0; i < l.count; i++)
        CHECK(strcmp(l.entries[i].key, want_xa[i]) == 0);
    objstore_list_free(&l);
    CHECK_ERR(objstore_list(s, "x/a/c", NULL, 0, &l), 0);
    CHECK(l.count == 4); /* c.d, c/d, c/e, c0 */
    objstore_list_free(&l);
    CHECK_ERR(objstore_list(s, "x/a/c/", NULL, 0, &l), 0);
    CHECK(l.count == 2 && strcmp(l.entries[0].key, "x/a/c/d") == 0);
    objstore_list_free(&l);
    /* after inside a subtree, and after a whole subtree. */
    CHECK_ERR(objstore_list(s, "x/", "x/a/c/d", 0, &l), 0);
    CHECK(l.count == 5 && strcmp(l.entries[0].key, "x/a/c/e") == 0);
    objstore_list_free(&l);
    CHECK_ERR(objstore_list(s, "x/", "x/a/zzz", 0, &l), 0);
    CHECK(l.count == 3 && strcmp(l.entries[0].key, "x/a0") == 0);
    objstore_list_free(&l);
    /* Nothing there. */
    CHECK_ERR(objstore_list(s, "nothing/here/", NULL, 0, &l), 0);
    CHECK(l.count == 0 && !l.next);
    CHECK_ERR(objstore_list(s, "y/", NULL, 0, &l), 0); /* through an object */
    CHECK(l.count == 0 && !l.next);
    CHECK_ERR(objstore_list(s, "x/zz", NULL, 0, &l), 0);
    CHECK(l.count == 0 && !l.next);
    objstore_close(s);
}

static void test_pagination(void)
{
    char root[600];
    fresh_dir("pages", root, sizeof root);
    struct objstore *s = open_store(root);
    enum { N = 2500 };
    /* Put in a scrambled order; chunk keys as the cache writes them. */
    for (unsigned i = 0; i < N; i++) {
        unsigned j = (i * 1009u) % N; /* 1009 is prime to 2500: a permutation */
        char key[128];
        snprintf(key, sizeof key, "p/vol/chunks/%016x-%016x", j / 2, j % 2 + 1);
        CHECK_ERR(objstore_put(s, key, key, j % 7), 0);
    }
    put_str(s, "p/vol/superblock", "sb");
    put_str(s, "p/vol/epochs/0000000000000001", "e");
    put_str(s, "p/volume2/chunks/0000000000000000-0000000000000001", "other volume");

    struct objstore_list l = OBJSTORE_LIST_INIT;
    char *after = NULL;
    size_t total = 0, pages = 0;
    char prev[128] = "";
    for (;;) {
        CHECK_ERR(objstore_list(s, "p/vol/chunks/", after, 1000, &l), 0);
        free(after);
        after = NULL;
        pages++;
        CHECK(l.count == (pages < 3 ? 1000u : 500u));
        for (size_t i = 0; i < l.count; i++) {
            unsigned idx, gen;
            CHECK(sscanf(l.entries[i].key, "p/vol/chunks/%x-%x", &idx, &gen) == 2);
            unsigned j = idx * 2 + gen - 1;
            CHECK(l.entries[i].size == j % 7);
            CHECK(strcmp(prev, l.entries[i].key) < 0);
            snprintf(prev, sizeof prev, "%s", l.entries[i].key);
            CHECK(j == total); /* in order, none missing, none twice */
            total++;
        }
        if (!l.next) {
            objstore_list_free(&l);
            break;
        }
        CHECK(strcmp(l.next, l.entries[l.count - 1].key) == 0);
        after = strdup(l.next);
        objstore_list_free(&l);
    }
    CHECK(total == N && pages == 3);

    /* An exact multiple of the page size: the last full page says "done". */
    total = 0;
    pages = 0;
    for (;;) {
        CHECK_ERR(objstore_list(s, "p/vol/chunks/", after, 500, &l), 0);
        free(after);
        after = NULL;
        pages++;
        total += l.count;
        if (!l.next) {
            objstore_list_free(&l);
            break;
        }
        after = strdup(l.next);
        objstore_list_free(&l);
    }
    CHECK(total == N && pages == 5);

    /* max 0 means the default page; a larger max is capped to it. */
    CHECK_ERR(objstore_list(s, "p/vol/", NULL, 0, &l), 0);
    CHECK(l.count == OBJSTORE_LIST_MAX_DEFAULT && l.next);
    objstore_list_free(&l);
    CHECK_ERR(objstore_list(s, "p/vol/", NULL, 100000, &l), 0);
    CHECK(l.count == OBJSTORE_LIST_MAX_DEFAULT && l.next);
    objstore_list_free(&l);
    /* The last page of the volume holds epochs and the superblock, in
     * order, and not the other volume. */
    CHECK_ERR(objstore_list(s, "p/vol/", "p/vol/chunks/~", 0, &l), 0);
    CHECK(l.count == 2 && !l.next);
    CHECK(strcmp(l.entries[0].key, "p/vol/epochs/0000000000000001") == 0);
    CHECK(strcmp(l.entries[1].key, "p/vol/superblock") == 0);
    objstore_list_free(&l);
    CHECK_ERR(objstore_list(s, "p/vol", "p/vol/superblock", 0, &l), 0);
    CHECK(l.count == 1 && strncmp(l.entries[0].key, "p/volume2/", 10) == 0);
    objstore_list_free(&l);
    objstore_close(s);
}

/* ------------------------------------------------------------ atomicity */

struct atomic_ctx {
    struct objstore *s;
    atomic_bool stop;
    atomic_ulong reads, lists;
};

/* Version v of the object: v % 251 + 1 repeated, size depending on v. */
static size_t version_size(unsigned v)
{
    return 1000 + (v * 7919u) % 300000;
}

static void *atomic_writer(void *arg)
{
    struct atomic_ctx *c = arg;
    unsigned char *buf = malloc(version_size(0) + 300000);
    CHECK(buf);
    for (unsigned v = 0; v < 300; v++) {
        size_t n = version_size(v);
        memset(buf, (int)(v % 251 + 1), n);
        CHECK_ERR(objstore_put(c->s, "a/obj", buf, n), 0);
    }
    free(buf);
    atomic_store(&c->stop, true);
    return NULL;
}

static void check_version(const unsigned char *p, size_t len)
{
    CHECK(len > 0);
    unsigned byte = p[0];
    for (size_t i = 0; i < len; i++)
        CHECK(p[i] == byte);
    /* The size must belong to a version that wrote this byte. */
    bool ok = false;
    for (unsigned v = byte - 1; v < 300 && !ok; v += 251)
        ok = version_size(v) == len;
    CHECK(ok);
}

static void *atomic_reader(void *arg)
{
    struct atomic_ctx *c = arg;
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    unsigned char *rb = malloc(400000);
    CHECK(rb);
    while (!atomic_load(&c->stop)) {
        CHECK_ERR(objstore_get(c->s, "a/obj", 1 << 20, &b), 0);
        check_version(b.data, b.len);
        size_t got;
        CHECK_ERR(objstore_get_range(c->s, "a/obj", 0, 400000, rb, &got), 0);
        check_version(rb, got);
        atomic_fetch_add(&c->reads, 1);
    }
    free(rb);
    objstore_buf_free(&b);
    return NULL;
}

static void *atomic_lister(void *arg)
{
    struct atomic_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        struct objstore_list l = OBJSTORE_LIST_INIT;
        CHECK_ERR(objstore_list(c->s, "a/", NULL, 0, &l), 0);
        /* Never a temporary, never two objects: always exactly the one. */
        CHECK(l.count == 1 && strcmp(l.entries[0].key, "a/obj") == 0);
        objstore_list_free(&l);
        atomic_fetch_add(&c->lists, 1);
    }
    return NULL;
}

static void test_atomic_replace(void)
{
    char root[600];
    fresh_dir("atomic", root, sizeof root);
    struct atomic_ctx c = {.s = open_store(root)};
    unsigned char first[1000];
    memset(first, 1, sizeof first);
    CHECK_ERR(objstore_put(c.s, "a/obj", first, version_size(0)), 0);
    pthread_t w, r[2], ls;
    CHECK(pthread_create(&r[0], NULL, atomic_reader, &c) == 0);
    CHECK(pthread_create(&r[1], NULL, atomic_reader, &c) == 0);
    CHECK(pthread_create(&ls, NULL, atomic_lister, &c) == 0);
    CHECK(pthread_create(&w, NULL, atomic_writer, &c) == 0);
    pthread_join(w, NULL);
    pthread_join(r[0], NULL);
    pthread_join(r[1], NULL);
    pthread_join(ls, NULL);
    printf("  atomic: %lu reads, %lu lists during 300 replacements\n",
           (unsigned long)c.reads, (unsigned long)c.lists);
    CHECK(c.reads > 0 && c.lists > 0);
    CHECK(count_tmp_files(root) == 0);
    objstore_close(c.s);
}

/* ---------------------------------------------------------- concurrency */

struct conc_ctx {
    struct objstore *s;
    unsigned t;
};

static void *conc_putter(void *arg)
{
    struct conc_ctx *c = arg;
    for (unsigned j = 0; j < 40; j++) {
        char key[128], val[160];
        /* Threads share new directories, so mkdir races happen. */
        snprintf(key, sizeof key, "c/%u/d%u/k-%u-%u", j % 4, j % 5, c->t, j);
        snprintf(val, sizeof val, "value of %s", key);
        CHECK_ERR(objstore_put(c->s, key, val, strlen(val)), 0);
    }
    return NULL;
}

static void test_concurrent_puts(void)
{
    char root[600];
    fresh_dir("concurrent", root, sizeof root);
    struct objstore *s = open_store(root);
    enum { T = 8 };
    pthread_t th[T];
    struct conc_ctx ctx[T];
    for (unsigned t = 0; t < T; t++) {
        ctx[t] = (struct conc_ctx){s, t};
        CHECK(pthread_create(&th[t], NULL, conc_putter, &ctx[t]) == 0);
    }
    for (unsigned t = 0; t < T; t++)
        pthread_join(th[t], NULL);

    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "c/", NULL, 0, &l), 0);
    CHECK(l.count == T * 40 && !l.next);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    for (size_t i = 0; i < l.count; i++) {
        char val[160];
        snprintf(val, sizeof val, "value of %s", l.entries[i].key);
        CHECK_ERR(objstore_get(s, l.entries[i].key, 1000, &b), 0);
        CHECK(b.len == strlen(val) && memcmp(b.data, val, b.len) == 0);
        if (i)
            CHECK(strcmp(l.entries[i - 1].key, l.entries[i].key) < 0);
    }
    objstore_buf_free(&b);
    objstore_list_free(&l);
    CHECK(count_tmp_files(root) == 0);
    objstore_close(s);
}

/* ------------------------------------------------------------- create */

struct create_ctx {
    struct objstore *s;
    unsigned id;
    atomic_uint *won;
    int err;
};

static void *creator(void *arg)
{
    struct create_ctx *c = arg;
    char val[32];
    snprintf(val, sizeof val, "writer %u", c->id);
    c->err = objstore_create(c->s, "race/epochs/0000000000000007", val, strlen(val));
    if (c->err == 0)
        atomic_fetch_add(c->won, 1);
    return NULL;
}

/* create refuses an existing key and leaves it alone; of writers racing for
 * one key exactly one wins, and the object is the winner's. */
static void test_create(void)
{
    char root[600];
    fresh_dir("create", root, sizeof root);
    struct objstore *s = open_store(root);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    CHECK_ERR(objstore_create(s, "v/epochs/01", "first", 5), 0);
    cap_reset();
    CHECK_ERR(objstore_create(s, "v/epochs/01", "second", 6), EEXIST);
    CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 0 && logcap.n[OBJSTORE_LOG_WARN] == 0);
    CHECK_ERR(objstore_get(s, "v/epochs/01", 100, &b), 0);
    CHECK(b.len == 5 && memcmp(b.data, "first", 5) == 0);
    CHECK(count_tmp_files(root) == 0);
    /* Deleted, the key can be created again; put still replaces. */
    CHECK_ERR(objstore_delete(s, "v/epochs/01"), 0);
    CHECK_ERR(objstore_create(s, "v/epochs/01", "third", 5), 0);
    CHECK_ERR(objstore_put(s, "v/epochs/01", "fourth", 6), 0);
    CHECK_ERR(objstore_get(s, "v/epochs/01", 100, &b), 0);
    CHECK(b.len == 6 && memcmp(b.data, "fourth", 6) == 0);
    CHECK_ERR(objstore_create(s, "v/bad//key", "x", 1), EINVAL);

    enum { T = 8 };
    for (unsigned round = 0; round < 20; round++) {
        atomic_uint won = 0;
        pthread_t th[T];
        struct create_ctx ctx[T];
        for (unsigned t = 0; t < T; t++) {
            ctx[t] = (struct create_ctx){s, t, &won, 0};
            CHECK(pthread_create(&th[t], NULL, creator, &ctx[t]) == 0);
        }
        for (unsigned t = 0; t < T; t++)
            pthread_join(th[t], NULL);
        CHECK(won == 1);
        unsigned winner = T;
        for (unsigned t = 0; t < T; t++) {
            CHECK(ctx[t].err == 0 || ctx[t].err == EEXIST);
            if (ctx[t].err == 0)
                winner = t;
        }
        char want[32];
        snprintf(want, sizeof want, "writer %u", winner);
        CHECK_ERR(objstore_get(s, "race/epochs/0000000000000007", 100, &b), 0);
        CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
        CHECK_ERR(objstore_delete(s, "race/epochs/0000000000000007"), 0);
    }
    CHECK(count_tmp_files(root) == 0);
    objstore_buf_free(&b);
    objstore_close(s);

    /* A read-only store refuses creates as it refuses puts. */
    struct objstore_local_config cfg = {.root = root, .read_only = true, .log = cap_log,
                                        .log_opaque = &logcap};
    CHECK_ERR(objstore_local_open(&cfg, &s), 0);
    CHECK_ERR(objstore_create(s, "v/epochs/02", "x", 1), EROFS);
    objstore_close(s);
}

/* ---------------------------------------------------------- size limits */

static void test_max_size(void)
{
    char root[600];
    fresh_dir("maxsize", root, sizeof root);
    struct objstore *s = open_store(root);
    char big[1000], small[10];
    memset(big, 'b', sizeof big);
    memset(small, 's', sizeof small);
    CHECK_ERR(objstore_put(s, "m/big", big, sizeof big), 0);
    CHECK_ERR(objstore_put(s, "m/small", small, sizeof small), 0);

    struct objstore_buf b = OBJSTORE_BUF_INIT;
    cap_reset();
    CHECK_ERR(objstore_get(s, "m/big", 999, &b), EFBIG);
    CHECK(b.data == NULL && b.cap == 0 && b.len == 0); /* nothing allocated */
    CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 1 && strstr(logcap.last, "m/big"));
    CHECK_ERR(objstore_get(s, "m/big", 1000, &b), 0);
    CHECK(b.len == 1000 && b.cap == 1000 && memcmp(b.data, big, 1000) == 0);
    /* The buffer is reused, not shrunk or reallocated, for a smaller one. */
    void *data = b.data;
    CHECK_ERR(objstore_get(s, "m/small", 10, &b), 0);
    CHECK(b.len == 10 && b.data == data && b.cap == 1000 && memcmp(b.data, small, 10) == 0);
    /* A failed get leaves the caller's buffer in place, len 0. */
    CHECK_ERR(objstore_get(s, "m/big", 10, &b), EFBIG);
    CHECK(b.len == 0 && b.data == data);
    objstore_buf_free(&b);
    CHECK(b.data == NULL && b.cap == 0);
    CHECK_ERR(objstore_get(s, "m/big", 0, &b), EFBIG);
    objstore_close(s);
}

/* An object and a "directory" of keys cannot share a name locally. */
static void test_collisions(void)
{
    char root[600];
    fresh_dir("collide", root, sizeof root);
    struct objstore *s = open_store(root);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    put_str(s, "k/a", "file");
    CHECK_ERR(objstore_put(s, "k/a/b", "x", 1), ENOTDIR);
    CHECK_ERR(objstore_put(s, "k", "x", 1), EISDIR);
    CHECK_ERR(objstore_get(s, "k", 100, &b), ENOENT);
    CHECK_ERR(objstore_delete(s, "k"), 0);
    CHECK_ERR(objstore_get(s, "k/a", 100, &b), 0); /* still there */
    CHECK(count_tmp_files(root) == 0);
    objstore_buf_free(&b);
    objstore_close(s);
}

static void make_file(const char *path, const char *content, time_t age_s)
{
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(content, f) >= 0 && fclose(f) == 0);
    if (age_s) {
        struct timespec t[2];
        clock_gettime(CLOCK_REALTIME, &t[0]);
        t[0].tv_sec -= age_s;
        t[1] = t[0];
        CHECK(utimensat(AT_FDCWD, path, t, 0) == 0);
    }
}

static void test_stale_tmp(void)
{
    char root[600], dir[700], old1[800], old2[800], young[800];
    fresh_dir("stale", root, sizeof root);
    snprintf(dir, sizeof dir, "%s/t", root);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(dir, sizeof dir, "%s/t/sub", root);
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(old1, sizeof old1, "%s/.objstore-tmp-1-2-3", dir);
    snprintf(old2, sizeof old2, "%s/.objstore-tmp-1-2-4", root);
    snprintf(young, sizeof young, "%s/.objstore-tmp-9-9-9", dir);
    make_file(old1, "partial", 2 * 3600);
    make_file(old2, "partial", 2 * 3600);
    make_file(young, "in progress elsewhere", 0);

    /* Read-only: nothing removed, nothing writable. */
    struct objstore_local_config cfg = {
        .root = root, .read_only = true, .log = cap_log, .log_opaque = &logcap};
    struct objstore *s;
    CHECK_ERR(objstore_local_open(&cfg, &s), 0);
    CHECK(access(old1, F_OK) == 0);
    CHECK_ERR(objstore_put(s, "t/x", "x", 1), EROFS);
    CHECK_ERR(objstore_delete(s, "t/x"), EROFS);
    objstore_close(s);

    s = open_store(root);
    CHECK(access(old1, F_OK) != 0 && access(old2, F_OK) != 0);
    CHECK(access(young, F_OK) == 0);
    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), 0);
    CHECK(l.count == 0 && !l.next);
    objstore_list_free(&l);
    put_str(s, "t/sub/real", "r");
    CHECK_ERR(objstore_list(s, "t/", NULL, 0, &l), 0);
    CHECK(l.count == 1 && strcmp(l.entries[0].key, "t/sub/real") == 0);
    objstore_list_free(&l);
    objstore_close(s);
}

static void test_open_errors(void)
{
    char root[600], file[700];
    fresh_dir("open", root, sizeof root);
    struct objstore *s = NULL;
    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing", root);
    struct objstore_local_config cfg = {.root = missing, .log = cap_log, .log_opaque = &logcap};
    cap_reset();
    CHECK_ERR(objstore_local_open(&cfg, &s), ENOENT);
    CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 1 && strstr(logcap.last, "missing"));
    cfg.create = true;
    CHECK_ERR(objstore_local_open(&cfg, &s), 0);
    CHECK(strncmp(s->name, "local:", 6) == 0);
    objstore_close(s);
    CHECK_ERR(objstore_local_open(&cfg, &s), 0); /* exists: fine */
    objstore_close(s);
    snprintf(file, sizeof file, "%s/file", root);
    make_file(file, "x", 0);
    cfg.root = file;
    CHECK_ERR(objstore_local_open(&cfg, &s), ENOTDIR);
    cfg.root = NULL;
    CHECK_ERR(objstore_local_open(&cfg, &s), EINVAL);
    CHECK_ERR(objstore_local_open(NULL, &s), EINVAL);
}

static void test_errors(void)
{
    const int retriable[] = {ETIMEDOUT, EAGAIN, EINTR, OBJSTORE_ESLOWDOWN, OBJSTORE_ESERVER,
                             ECONNRESET, ECONNREFUSED, ECONNABORTED, ENOTCONN, EPIPE,
                             EHOSTUNREACH, EHOSTDOWN, ENETUNREACH, ENETDOWN, ENETRESET, EPROTO};
    const int permanent[] = {0, ENOENT, EACCES, EPERM, EINVAL, EFBIG, EBADMSG, ENOSPC, EDQUOT,
                             EROFS, ENOTDIR, EISDIR, EIO, ENOMEM, 99999};
    for (size_t i = 0; i < sizeof retriable / sizeof retriable[0]; i++) {
        CHECK(objstore_err_retriable(retriable[i]));
        CHECK(objstore_err_log_level(retriable[i]) == OBJSTORE_LOG_WARN);
    }
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        CHECK(!objstore_err_retriable(permanent[i]));
    CHECK(objstore_err_log_level(ENOENT) == OBJSTORE_LOG_DEBUG);
    CHECK(objstore_err_log_level(EACCES) == OBJSTORE_LOG_ERROR);
    CHECK(strstr(objstore_strerror(OBJSTORE_ESERVER), "server"));
    CHECK(strstr(objstore_strerror(OBJSTORE_ESLOWDOWN), "slow down"));
    CHECK(strcmp(objstore_strerror(ENOSPC), "No space left on device") == 0);
    CHECK(objstore_strerror(99999) != NULL);
}

/* --------------------------------------------------------- a full disk */

/* A failed CHECK exits: never leave the tmpfs mounted behind. */
static char mounted[600];
static void unmount_at_exit(void)
{
    if (mounted[0])
        umount2(mounted, MNT_DETACH);
}

static void test_enospc(void)
{
    char mnt[600];
    fresh_dir("tiny", mnt, sizeof mnt);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        printf("  SKIP enospc: mount -t tmpfs -o size=1m %s: %s (needs root or "
               "CAP_SYS_ADMIN)\n",
               mnt, strerror(errno));
        return;
    }
    snprintf(mounted, sizeof mounted, "%s", mnt);
    atexit(unmount_at_exit);
    struct objstore *s = open_store(mnt);
    size_t bigsz = 2 << 20;
    unsigned char *big = malloc(bigsz);
    CHECK(big);
    memset(big, 0xab, bigsz);

    put_str(s, "v/small", "the old content");
    cap_reset();
    CHECK_ERR(objstore_put(s, "v/big", big, bigsz), ENOSPC);
    CHECK(logcap.n[OBJSTORE_LOG_ERROR] == 1 && strstr(logcap.last, "v/big") &&
          strstr(logcap.last, "No space"));
    /* Replacing an object with one that does not fit keeps the old one. */
    CHECK_ERR(objstore_put(s, "v/small", big, bigsz), ENOSPC);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    CHECK_ERR(objstore_get(s, "v/small", 100, &b), 0);
    CHECK(b.len == 15 && memcmp(b.data, "the old content", 15) == 0);
    CHECK_ERR(objstore_get(s, "v/big", bigsz, &b), ENOENT);
    CHECK(count_tmp_files(mnt) == 0);

    /* Fill it up with 100 KiB objects: the one that does not fit fails
     * cleanly, every listed object is whole. */
    unsigned stored = 0;
    int err = 0;
    for (unsigned i = 0; i < 100 && !err; i++) {
        char key[64];
        snprintf(key, sizeof key, "v/fill/%03u", i);
        err = objstore_put(s, key, big, 100 << 10);
        if (!err)
            stored++;
    }
    CHECK_ERR(err, ENOSPC);
    CHECK(stored > 0);
    CHECK(count_tmp_files(mnt) == 0);
    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "v/fill/", NULL, 0, &l), 0);
    CHECK(l.count == stored);
    for (size_t i = 0; i < l.count; i++) {
        CHECK(l.entries[i].size == 100 << 10);
        CHECK_ERR(objstore_get(s, l.entries[i].key, bigsz, &b), 0);
        CHECK(b.len == 100 << 10 && memcmp(b.data, big, b.len) == 0);
    }
    objstore_list_free(&l);
    /* Deleting makes room again. */
    CHECK_ERR(objstore_delete(s, "v/fill/000"), 0);
    CHECK_ERR(objstore_put(s, "v/after", big, 50 << 10), 0);
    printf("  enospc: %u objects of 100 KiB fit in a 1 MiB tmpfs\n", stored);

    objstore_buf_free(&b);
    free(big);
    objstore_close(s);
    if (umount(mnt) != 0)
        umount2(mnt, MNT_DETACH);
    mounted[0] = '\0';
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof base_dir, "%s/test_objstore_local.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base_dir) != NULL);

    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"roundtrip", test_roundtrip},
        {"bad_keys", test_bad_keys},
        {"list_order", test_list_order},
        {"pagination", test_pagination},
        {"atomic_replace", test_atomic_replace},
        {"concurrent_puts", test_concurrent_puts},
        {"create", test_create},
        {"max_size", test_max_size},
        {"collisions", test_collisions},
        {"stale_tmp", test_stale_tmp},
        {"open_errors", test_open_errors},
        {"errors", test_errors},
        {"enospc", test_enospc},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        double t0 = now_s();
        printf("%s\n", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        printf("  ok (%.2fs)\n", now_s() - t0);
        fflush(stdout);
    }
    rm_rf(base_dir);
    printf("all local backend tests passed\n");
    return 0;
}
