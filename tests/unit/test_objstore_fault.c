/* test_objstore_fault.c - the fault-injecting wrapper, stacked on a real
 * local store: spec parsing, error rates with a seed, damaged bodies,
 * hangs, latency, counters.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/objstore.h"

#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static char base_dir[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct objstore *open_local(void)
{
    struct objstore_local_config cfg = {
        .root = base_dir, .log = cap_log, .log_opaque = &logcap};
    struct objstore *s = NULL;
    CHECK_ERR(objstore_local_open(&cfg, &s), 0);
    return s;
}

/* A fault wrapper over the shared local store; *inner gets the local store
 * (owned by the wrapper, but usable until the wrapper is closed). */
static struct objstore *open_fault(const char *spec, struct objstore **inner)
{
    struct objstore *in = open_local(), *s = NULL;
    CHECK_ERR(objstore_fault_open_spec(in, spec, cap_log, &logcap, &s), 0);
    CHECK(s && strncmp(s->name, "fault(local:", 12) == 0);
    if (inner)
        *inner = in;
    return s;
}

/* ---------------------------------------------------------------- tests */

static void test_parse_ok(void)
{
    struct objstore_fault_config c;
    char err[256];
    CHECK_ERR(objstore_fault_parse("put-error=0.5,get-corrupt=0.1,latency=20ms,hang=put,seed=42",
                                   &c, err, sizeof err),
              0);
    CHECK(err[0] == '\0');
    CHECK(c.op[OBJSTORE_OP_PUT].error == 0.5 && c.op[OBJSTORE_OP_GET].error == 0);
    CHECK(c.op[OBJSTORE_OP_GET].corrupt == 0.1 && c.op[OBJSTORE_OP_RANGE].corrupt == 0);
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++)
        CHECK(c.op[i].latency_ns == 20000000 && c.op[i].latency_max_ns == 0 && c.op[i].err == 0);
    CHECK(c.hang_ops == 1u << OBJSTORE_OP_PUT && c.seed == 42);

    /* Defaults apply to all ops; later items override; percentages; spaces. */
    CHECK_ERR(objstore_fault_parse(" error=5% , put-error=1 ,errno=ETIMEDOUT,put-errno=5xx,"
                                   "corrupt=0.25,truncate=1,put-truncate=0.5,"
                                   "list-latency=1ms..3ms,hang=get+list,hang-after=3,"
                                   "hang-for=1.5s,delete-error-after=0.125,head-errno=104",
                                   &c, err, sizeof err),
              0);
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
        CHECK(c.op[i].error == (i == OBJSTORE_OP_PUT ? 1.0 : 0.05));
        int want = i == OBJSTORE_OP_PUT ? OBJSTORE_ESERVER : i == OBJSTORE_OP_HEAD ? 104
                                                                                   : ETIMEDOUT;
        CHECK(c.op[i].err == want);
    }
    CHECK(c.op[OBJSTORE_OP_GET].corrupt == 0.25 && c.op[OBJSTORE_OP_RANGE].corrupt == 0.25);
    CHECK(c.op[OBJSTORE_OP_PUT].corrupt == 0 && c.op[OBJSTORE_OP_HEAD].corrupt == 0);
    CHECK(c.op[OBJSTORE_OP_GET].truncate == 1 && c.op[OBJSTORE_OP_PUT].truncate == 0.5);
    CHECK(c.op[OBJSTORE_OP_LIST].latency_ns == 1000000);
    CHECK(c.op[OBJSTORE_OP_LIST].latency_max_ns == 3000000);
    CHECK(c.op[OBJSTORE_OP_GET].latency_ns == 0);
    CHECK(c.hang_ops == ((1u << OBJSTORE_OP_GET) | (1u << OBJSTORE_OP_LIST)));
    CHECK(c.hang_after == 3 && c.hang_for_ns == 1500000000u);
    CHECK(c.op[OBJSTORE_OP_DELETE].error_after == 0.125);

    CHECK_ERR(objstore_fault_parse("", &c, err, sizeof err), 0);
    CHECK_ERR(objstore_fault_parse(NULL, &c, err, sizeof err), 0);
    CHECK_ERR(objstore_fault_parse("hang=all,latency=0,errno=slowdown", &c, err, sizeof err), 0);
    CHECK(c.hang_ops == OBJSTORE_OP_ALL && c.op[OBJSTORE_OP_GET].err == OBJSTORE_ESLOWDOWN);
    CHECK_ERR(objstore_fault_parse("hang=all,hang=none", &c, err, sizeof err), 0);
    CHECK(c.hang_ops == 0);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *spec;
        const char *msg; /* must appear in the error */
    } bad[] = {
        {"put-eror=0.5", "item 1 \"put-eror=0.5\": unknown key \"put-eror\""},
        {"seed=1,pt-error=0.1", "item 2 \"pt-error=0.1\": unknown operation \"pt\""},
        {"put-error=1.5", "probability 1.5 is out of range"},
        {"put-error=150%", "out of range"},
        {"put-error=-0.1", "out of range"},
        {"put-error=half", "\"half\" is not a probability"},
        {"put-error=nan", "not a probability"},
        {"latency=20", "duration \"20\" needs a unit"},
        {"latency=20parsecs", "unknown unit \"parsecs\""},
        {"latency=-5ms", "not a duration"},
        {"latency=5ms..1ms", "ends before it starts"},
        {"latency=2d", "unknown unit"},
        {"hang=put+foo", "unknown operation \"foo\""},
        {"hang=", "missing value after '='"},
        {"head-corrupt=0.1", "corrupt applies to put, get and range, not head"},
        {"list-truncate=0.1", "truncate applies to put, get and range, not list"},
        {"seed=-1", "\"-1\" is not an unsigned integer"},
        {"seed=99999999999999999999", "not an unsigned 64-bit integer"},
        {"hang-after=3x", "not an unsigned 64-bit integer"},
        {"errno=EFOO", "unknown errno \"EFOO\""},
        {"errno=0", "unknown errno"},
        {"put-error", "item 1 \"put-error\": expected key=value"},
        {"=1", "missing key"},
        {"seed=1,,error=0.1", "item 2 \"\": empty item"},
        {"seed=1,", "item 2 \"\": empty item"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct objstore_fault_config c;
        char err[256] = "unset";
        int rc = objstore_fault_parse(bad[i].spec, &c, err, sizeof err);
        if (rc != EINVAL || !strstr(err, bad[i].msg) || strncmp(err, "fault spec item ", 16)) {
            fprintf(stderr, "spec \"%s\": rc %d, message \"%s\", want \"%s\"\n", bad[i].spec, rc,
                    err, bad[i].msg);
            exit(1);
        }
        printf("  \"%s\" -> %s\n", bad[i].spec, err);
    }
    /* A tiny or absent message buffer is fine. */
    struct objstore_fault_config c;
    char tiny[8];
    CHECK_ERR(objstore_fault_parse("bogus=1", &c, tiny, sizeof tiny), EINVAL);
    CHECK(strlen(tiny) == 7);
    CHECK_ERR(objstore_fault_parse("bogus=1", &c, NULL, 0), EINVAL);

    /* Opening with a bad spec logs the message and leaves inner to us. */
    struct objstore *in = open_local(), *s = NULL;
    CHECK_ERR(objstore_fault_open_spec(in, "put-error=2", cap_log, &logcap, &s), EINVAL);
    CHECK(s == NULL && strstr(logcap.last, "out of range"));
    /* A bad configuration given as a struct is refused too. */
    memset(&c, 0, sizeof c);
    c.op[OBJSTORE_OP_HEAD].corrupt = 0.5;
    CHECK_ERR(objstore_fault_open(in, &c, cap_log, &logcap, &s), EINVAL);
    c.op[OBJSTORE_OP_HEAD].corrupt = 0;
    c.op[OBJSTORE_OP_GET].error = NAN;
    CHECK_ERR(objstore_fault_open(in, &c, cap_log, &logcap, &s), EINVAL);
    objstore_close(in);
}

/* Outcomes of n gets under spec, as a string of '.' and 'x'. */
static char *error_pattern(const char *spec, unsigned n, unsigned *errors)
{
    struct objstore *s = open_fault(spec, NULL);
    char *pat = malloc(n + 1);
    CHECK(pat);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    *errors = 0;
    for (unsigned i = 0; i < n; i++) {
        int err = objstore_get(s, "rate/obj", 100, &b);
        CHECK(err == 0 || err == OBJSTORE_ESERVER);
        if (err)
            ++*errors;
        else
            CHECK(b.len == 5 && memcmp(b.data, "12345", 5) == 0);
        pat[i] = err ? 'x' : '.';
    }
    pat[n] = '\0';
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_GET] == n && st.errors[OBJSTORE_OP_GET] == *errors);
    CHECK(st.errors_after[OBJSTORE_OP_GET] == 0 && st.calls[OBJSTORE_OP_PUT] == 0);
    objstore_buf_free(&b);
    objstore_close(s);
    return pat;
}

static void test_error_rate(void)
{
    struct objstore *in = open_local();
    CHECK_ERR(objstore_put(in, "rate/obj", "12345", 5), 0);
    objstore_close(in);

    enum { N = 4000 };
    unsigned e1, e2, e3;
    char *a = error_pattern("get-error=0.3,seed=42", N, &e1);
    char *b = error_pattern("get-error=0.3,seed=42", N, &e2);
    char *c = error_pattern("get-error=0.3,seed=43", N, &e3);
    printf("  seed 42: %u/%u errors, seed 43: %u/%u\n", e1, N, e3, N);
    /* sd of the rate is sqrt(0.3 * 0.7 / 4000) = 0.0072: 0.03 is 4 sd. */
    CHECK(fabs(e1 / (double)N - 0.3) < 0.03);
    CHECK(fabs(e3 / (double)N - 0.3) < 0.03);
    CHECK(e1 == e2 && strcmp(a, b) == 0); /* same seed: same faults */
    CHECK(strcmp(a, c) != 0);              /* another seed: others */
    free(a);
    free(b);
    free(c);

    unsigned e0;
    char *z = error_pattern("get-error=0", 500, &e0);
    CHECK(e0 == 0);
    free(z);
    z = error_pattern("error=100%", 500, &e0);
    CHECK(e0 == 500);
    free(z);
}

static void test_errno_and_after(void)
{
    struct objstore *in, *s = open_fault("put-error=1,put-errno=ETIMEDOUT", &in);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    logcap.last[0] = '\0';
    CHECK_ERR(objstore_put(s, "e/never", "x", 1), ETIMEDOUT);
    CHECK(strstr(logcap.last, "e/never") && strstr(logcap.last, "injected error"));
    CHECK_ERR(objstore_get(in, "e/never", 10, &b), ENOENT); /* did not happen */
    objstore_close(s);

    /* A lost reply: the put happened, the caller is told it failed. */
    s = open_fault("put-error-after=1,list-error-after=1", &in);
    CHECK_ERR(objstore_put(s, "e/ghost", "boo", 3), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_get(in, "e/ghost", 10, &b), 0);
    CHECK(b.len == 3 && memcmp(b.data, "boo", 3) == 0);
    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK_ERR(objstore_list(s, "e/", NULL, 0, &l), OBJSTORE_ESERVER);
    CHECK(l.count == 0 && l.entries == NULL && l.next == NULL);
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.errors[OBJSTORE_OP_PUT] == 1 && st.errors_after[OBJSTORE_OP_PUT] == 1);
    CHECK(st.errors_after[OBJSTORE_OP_LIST] == 1);
    /* Errors from the store itself pass through, uncounted. */
    uint64_t size;
    CHECK_ERR(objstore_head(s, "e/missing", &size), ENOENT);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_HEAD] == 1 && st.errors[OBJSTORE_OP_HEAD] == 0);
    objstore_close(s);

    /* Every operation can fail. */
    s = open_fault("error=1,errno=ECONNRESET", &in);
    size_t got;
    char rb[4];
    CHECK_ERR(objstore_put(s, "e/x", "x", 1), ECONNRESET);
    CHECK_ERR(objstore_get(s, "e/ghost", 10, &b), ECONNRESET);
    CHECK(b.len == 0);
    CHECK_ERR(objstore_get_range(s, "e/ghost", 0, 2, rb, &got), ECONNRESET);
    CHECK(got == 0);
    CHECK_ERR(objstore_head(s, "e/ghost", &size), ECONNRESET);
    CHECK_ERR(objstore_delete(s, "e/ghost"), ECONNRESET);
    CHECK_ERR(objstore_list(s, "e/", NULL, 0, &l), ECONNRESET);
    CHECK(objstore_err_retriable(ECONNRESET));
    CHECK_ERR(objstore_get(in, "e/ghost", 10, &b), 0); /* delete did not happen */
    /* Bad keys are still refused before any injection. */
    CHECK_ERR(objstore_put(s, "../x", "x", 1), EINVAL);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_PUT] == 1);
    objstore_buf_free(&b);
    objstore_close(s);
}

/* create is a put to the faults and counters, and reaches the inner
 * store's create (an existing key stays EEXIST, uncounted as a fault). */
static void test_create(void)
{
    struct objstore *in, *s = open_fault("", &in);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    CHECK_ERR(objstore_create(s, "c/rec", "one", 3), 0);
    CHECK_ERR(objstore_create(s, "c/rec", "two", 3), EEXIST);
    CHECK_ERR(objstore_get(in, "c/rec", 10, &b), 0);
    CHECK(b.len == 3 && memcmp(b.data, "one", 3) == 0);
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_PUT] == 2 && st.errors[OBJSTORE_OP_PUT] == 0);
    objstore_close(s);

    /* A lost reply: the object is created, the caller told it failed; its
     * retry then meets its own object (what callers compare for). */
    s = open_fault("put-error-after=1", &in);
    CHECK_ERR(objstore_create(s, "c/lost", "mine", 4), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_get(in, "c/lost", 10, &b), 0);
    CHECK(b.len == 4 && memcmp(b.data, "mine", 4) == 0);
    CHECK_ERR(objstore_create(s, "c/lost", "mine", 4), EEXIST);
    objstore_close(s);

    /* A store without conditional creates, and one that ignores them. */
    s = open_fault("create=none", &in);
    CHECK_ERR(objstore_create(s, "c/none", "x", 1), ENOTSUP);
    CHECK_ERR(objstore_get(in, "c/none", 10, &b), ENOENT);
    objstore_close(s);
    s = open_fault("create=ignored", &in);
    CHECK_ERR(objstore_create(s, "c/rec", "over", 4), 0);
    CHECK_ERR(objstore_get(in, "c/rec", 10, &b), 0);
    CHECK(b.len == 4 && memcmp(b.data, "over", 4) == 0);
    objstore_close(s);
    struct objstore_fault_config cfg;
    CHECK_ERR(objstore_fault_parse("create=maybe", &cfg, NULL, 0), EINVAL);

    /* An error before: nothing created. */
    s = open_fault("put-error=1", &in);
    CHECK_ERR(objstore_create(s, "c/never", "x", 1), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_get(in, "c/never", 10, &b), ENOENT);
    objstore_close(s);
    objstore_buf_free(&b);
}

/* match= limits faults to some keys; the others pass, counted. */
static void test_match(void)
{
    struct objstore *in, *s = open_fault("put-error=1,match=v/chunks/*+v/epochs/0*", &in);
    CHECK_ERR(objstore_put(s, "v/chunks/0001-0002", "x", 1), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_put(s, "v/epochs/00000001", "x", 1), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_create(s, "v/epochs/00000002", "x", 1), OBJSTORE_ESERVER);
    CHECK_ERR(objstore_put(s, "v/lease", "x", 1), 0);
    CHECK_ERR(objstore_put(s, "v/epochs/10000001", "x", 1), 0);
    CHECK_ERR(objstore_put(s, "w/chunks/0001-0002", "x", 1), 0);
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_PUT] == 6 && st.errors[OBJSTORE_OP_PUT] == 3);
    objstore_close(s);
    struct objstore_fault_config cfg;
    char msg[200];
    CHECK_ERR(objstore_fault_parse("match=", &cfg, msg, sizeof msg), EINVAL);
    CHECK(strstr(msg, "match"));
    CHECK_ERR(objstore_fault_parse("put-error=1,match=a*+b", &cfg, msg, sizeof msg), 0);
    CHECK(strcmp(cfg.match, "a*+b") == 0);
}

static void fill_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + 7);
}

static size_t count_diff(const unsigned char *a, const unsigned char *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += a[i] != b[i];
    return d;
}

static void test_damage(void)
{
    enum { N = 4096 };
    unsigned char orig[N], rb[N];
    fill_pattern(orig, N);
    struct objstore *in, *s = open_fault("get-corrupt=1,seed=7", &in);
    CHECK_ERR(objstore_put(s, "d/obj", orig, N), 0); /* puts are left alone */
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    CHECK_ERR(objstore_get(in, "d/obj", N, &b), 0);
    CHECK(b.len == N && memcmp(b.data, orig, N) == 0);
    for (int i = 0; i < 20; i++) {
        CHECK_ERR(objstore_get(s, "d/obj", N, &b), 0);
        CHECK(b.len == N && count_diff(b.data, orig, N) == 1);
    }
    size_t got;
    CHECK_ERR(objstore_get_range(s, "d/obj", 0, N, rb, &got), 0);
    CHECK(got == N && count_diff(rb, orig, N) == 0); /* get-corrupt is get only */
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.corrupted[OBJSTORE_OP_GET] == 20 && st.corrupted[OBJSTORE_OP_RANGE] == 0);
    objstore_close(s);

    /* corrupt without an op covers ranges too. */
    s = open_fault("corrupt=1", &in);
    CHECK_ERR(objstore_get_range(s, "d/obj", 100, 1000, rb, &got), 0);
    CHECK(got == 1000 && count_diff(rb, orig + 100, 1000) == 1);
    objstore_close(s);

    /* Truncation: success, a shorter body, the bytes it has are right. */
    s = open_fault("truncate=1,seed=3", &in);
    for (int i = 0; i < 20; i++) {
        CHECK_ERR(objstore_get(s, "d/obj", N, &b), 0);
        CHECK(b.len < N && memcmp(b.data, orig, b.len) == 0);
        CHECK_ERR(objstore_get_range(s, "d/obj", 10, 100, rb, &got), 0);
        CHECK(got < 100 && memcmp(rb, orig + 10, got) == 0);
    }
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.truncated[OBJSTORE_OP_GET] == 20 && st.truncated[OBJSTORE_OP_RANGE] == 20);
    /* An empty body cannot be damaged. */
    CHECK_ERR(objstore_put(s, "d/empty", NULL, 0), 0);
    CHECK_ERR(objstore_get(s, "d/empty", N, &b), 0);
    CHECK(b.len == 0);
    objstore_close(s);

    /* Damage at rest: what is stored is wrong, the caller's buffer is not
     * touched. */
    s = open_fault("put-corrupt=1", &in);
    unsigned char keep[N];
    memcpy(keep, orig, N);
    CHECK_ERR(objstore_put(s, "d/rot", orig, N), 0);
    CHECK(memcmp(keep, orig, N) == 0);
    CHECK_ERR(objstore_get(in, "d/rot", N, &b), 0);
    CHECK(b.len == N && count_diff(b.data, orig, N) == 1);
    objstore_close(s);
    s = open_fault("put-truncate=1", &in);
    CHECK_ERR(objstore_put(s, "d/short", orig, N), 0);
    CHECK_ERR(objstore_get(in, "d/short", N, &b), 0);
    CHECK(b.len < N && memcmp(b.data, orig, b.len) == 0);
    objstore_close(s);

    /* Roughly the asked rate. */
    s = open_fault("get-corrupt=0.2,seed=11", &in);
    unsigned bad = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK_ERR(objstore_get(s, "d/obj", N, &b), 0);
        bad += memcmp(b.data, orig, N) != 0;
    }
    printf("  get-corrupt=0.2: %u/1000 bodies damaged\n", bad);
    CHECK(bad > 150 && bad < 250);
    objstore_close(s);
    objstore_buf_free(&b);
}

struct bg_put {
    struct objstore *s;
    const char *key;
    int rc;
    atomic_bool done;
    double took;
};

static void *bg_put_fn(void *arg)
{
    struct bg_put *p = arg;
    double t0 = now_s();
    p->rc = objstore_put(p->s, p->key, "hung", 4);
    p->took = now_s() - t0;
    atomic_store(&p->done, true);
    return NULL;
}

struct bg_del {
    struct objstore *s;
    const char *const *keys;
    size_t n;
    int rc;
    atomic_bool done;
};

static void *bg_del_fn(void *arg)
{
    struct bg_del *d = arg;
    d->rc = objstore_delete_many(d->s, d->keys, d->n);
    atomic_store(&d->done, true);
    return NULL;
}

static unsigned hanging_now(struct objstore *s)
{
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    return st.hanging;
}

/* Wait (up to 10 s) until n calls hang. */
static void wait_hanging(struct objstore *s, unsigned n)
{
    for (int i = 0; i < 1000 && hanging_now(s) != n; i++)
        usleep(10000);
    CHECK(hanging_now(s) == n);
}

static void test_hang(void)
{
    struct objstore *in, *s = open_fault("hang=put", &in);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    struct bg_put p = {.s = s, .key = "h/one"};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, bg_put_fn, &p) == 0);
    wait_hanging(s, 1);
    /* Other operations are not affected. */
    uint64_t size;
    CHECK_ERR(objstore_head(s, "h/one", &size), ENOENT);
    usleep(100000);
    CHECK(!atomic_load(&p.done));
    CHECK_ERR(objstore_get(in, "h/one", 10, &b), ENOENT); /* not done yet */
    CHECK_ERR(objstore_fault_release(s), 0);
    pthread_join(th, NULL);
    CHECK_ERR(p.rc, 0);
    CHECK(p.took >= 0.1);
    CHECK_ERR(objstore_get(in, "h/one", 10, &b), 0);
    /* Released means: new calls pass. */
    CHECK_ERR(objstore_put(s, "h/two", "x", 1), 0);
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.hung[OBJSTORE_OP_PUT] == 1 && st.hanging == 0 && st.calls[OBJSTORE_OP_PUT] == 2);

    /* Hang again on demand, several at once, one release frees them all. */
    CHECK_ERR(objstore_fault_hang(s, 1u << OBJSTORE_OP_PUT), 0);
    struct bg_put q[3] = {{.s = s, .key = "h/a"}, {.s = s, .key = "h/b"}, {.s = s, .key = "h/c"}};
    pthread_t tq[3];
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&tq[i], NULL, bg_put_fn, &q[i]) == 0);
    wait_hanging(s, 3);
    CHECK_ERR(objstore_fault_release(s), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(tq[i], NULL);
        CHECK_ERR(q[i].rc, 0);
    }
    objstore_close(s);

    /* hang-after: the first calls pass. hang-for: a bounded hang. */
    s = open_fault("hang=put,hang-after=2,hang-for=200ms", &in);
    double t0 = now_s();
    CHECK_ERR(objstore_put(s, "h/p1", "x", 1), 0);
    CHECK_ERR(objstore_put(s, "h/p2", "x", 1), 0);
    CHECK(now_s() - t0 < 0.2);
    t0 = now_s();
    CHECK_ERR(objstore_put(s, "h/p3", "x", 1), 0);
    double took = now_s() - t0;
    printf("  hang-for=200ms: put took %.3fs\n", took);
    CHECK(took >= 0.2 && took < 5);
    CHECK_ERR(objstore_get(in, "h/p3", 10, &b), 0);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.hung[OBJSTORE_OP_PUT] == 1);
    objstore_close(s);
    objstore_buf_free(&b);

    /* Not a fault wrapper. */
    in = open_local();
    CHECK_ERR(objstore_fault_release(in), EINVAL);
    CHECK_ERR(objstore_fault_hang(in, 1), EINVAL);
    CHECK_ERR(objstore_fault_stats(in, &st), EINVAL);
    objstore_close(in);
}

/* objstore_delete_many through the wrapper: one fault decision per batch,
 * and the batch reaches the inner store's del_many (a wrapped S3 store must
 * keep its multi-object delete). The inner store here is a second fault
 * wrapper, whose counters show whether it got one batch or single deletes. */
static void test_delete_many(void)
{
    static const char *const keys[] = {"m/a", "m/b", "m/c", "m/missing"};
    const size_t n = sizeof keys / sizeof keys[0];
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    struct objstore_fault_stats st, ist;
    struct objstore *local = open_local(), *mid = NULL, *s = NULL;
    CHECK_ERR(objstore_fault_open_spec(local, "", cap_log, &logcap, &mid), 0);
    CHECK_ERR(objstore_fault_open_spec(mid, "delete-error=1,delete-errno=ETIMEDOUT", cap_log,
                                       &logcap, &s), 0);
    for (size_t i = 0; i < 3; i++)
        CHECK_ERR(objstore_put(local, keys[i], "x", 1), 0);

    /* An error before: the batch never reached the store. */
    logcap.last[0] = '\0';
    CHECK_ERR(objstore_delete_many(s, keys, n), ETIMEDOUT);
    CHECK(strstr(logcap.last, "m/a (first of 4 keys)") && strstr(logcap.last, "injected error"));
    for (size_t i = 0; i < 3; i++)
        CHECK_ERR(objstore_get(local, keys[i], 10, &b), 0);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK_ERR(objstore_fault_stats(mid, &ist), 0);
    CHECK(st.calls[OBJSTORE_OP_DELETE] == 1 && st.errors[OBJSTORE_OP_DELETE] == 1);
    CHECK(ist.calls[OBJSTORE_OP_DELETE] == 0);

    /* An error after: every key is gone, the caller is told it failed. */
    struct objstore_fault_config cfg;
    CHECK_ERR(objstore_fault_parse("delete-error-after=1", &cfg, NULL, 0), 0);
    CHECK_ERR(objstore_fault_configure(s, &cfg), 0);
    CHECK_ERR(objstore_delete_many(s, keys, n), OBJSTORE_ESERVER);
    for (size_t i = 0; i < 3; i++)
        CHECK_ERR(objstore_get(local, keys[i], 10, &b), ENOENT);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK_ERR(objstore_fault_stats(mid, &ist), 0);
    CHECK(st.calls[OBJSTORE_OP_DELETE] == 2 && st.errors_after[OBJSTORE_OP_DELETE] == 1);
    CHECK(ist.calls[OBJSTORE_OP_DELETE] == 1); /* one batch, not 4 single deletes */

    /* A hang holds the whole batch until released; no faults: plain success. */
    CHECK_ERR(objstore_fault_parse("hang=delete", &cfg, NULL, 0), 0);
    CHECK_ERR(objstore_fault_configure(s, &cfg), 0);
    for (size_t i = 0; i < 3; i++)
        CHECK_ERR(objstore_put(local, keys[i], "x", 1), 0);
    struct bg_del d = {.s = s, .keys = keys, .n = n};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, bg_del_fn, &d) == 0);
    wait_hanging(s, 1);
    CHECK(!atomic_load(&d.done));
    CHECK_ERR(objstore_get(local, "m/a", 10, &b), 0); /* not deleted yet */
    CHECK_ERR(objstore_fault_release(s), 0);
    pthread_join(th, NULL);
    CHECK_ERR(d.rc, 0);
    for (size_t i = 0; i < 3; i++)
        CHECK_ERR(objstore_get(local, keys[i], 10, &b), ENOENT);
    CHECK_ERR(objstore_fault_stats(mid, &ist), 0);
    CHECK(ist.calls[OBJSTORE_OP_DELETE] == 2);

    /* More keys than one batch: one call per OBJSTORE_DELETE_MANY_MAX. */
    CHECK_ERR(objstore_fault_parse("", &cfg, NULL, 0), 0);
    CHECK_ERR(objstore_fault_configure(s, &cfg), 0);
    enum { BIG = OBJSTORE_DELETE_MANY_MAX + 5 };
    static char names[BIG][16];
    static const char *big[BIG];
    for (int i = 0; i < BIG; i++) {
        snprintf(names[i], sizeof names[i], "m/n%05d", i);
        big[i] = names[i];
    }
    CHECK_ERR(objstore_put(local, big[BIG - 1], "x", 1), 0);
    CHECK_ERR(objstore_delete_many(s, big, BIG), 0);
    CHECK_ERR(objstore_get(local, big[BIG - 1], 10, &b), ENOENT);
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_DELETE] == 5);
    objstore_buf_free(&b);
    objstore_close(s);
}

static void test_latency(void)
{
    struct objstore *s = open_fault("latency=50ms", NULL);
    uint64_t size;
    double t0 = now_s();
    CHECK_ERR(objstore_head(s, "l/none", &size), ENOENT);
    double took = now_s() - t0;
    CHECK(took >= 0.05 && took < 2);
    struct objstore_list l = OBJSTORE_LIST_INIT;
    t0 = now_s();
    CHECK_ERR(objstore_list(s, "l/", NULL, 0, &l), 0);
    CHECK(now_s() - t0 >= 0.05);
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.delayed[OBJSTORE_OP_HEAD] == 1 && st.delayed[OBJSTORE_OP_LIST] == 1);
    objstore_close(s);

    /* A range: every call within it, not all the same. */
    s = open_fault("head-latency=10ms..30ms,seed=5", NULL);
    double lo = 1, hi = 0;
    for (int i = 0; i < 10; i++) {
        t0 = now_s();
        CHECK_ERR(objstore_head(s, "l/none", &size), ENOENT);
        took = now_s() - t0;
        lo = took < lo ? took : lo;
        hi = took > hi ? took : hi;
    }
    printf("  head-latency=10ms..30ms: %.1f..%.1f ms\n", lo * 1e3, hi * 1e3);
    CHECK(lo >= 0.01 && hi < 1 && hi - lo > 0.002);
    objstore_close(s);
}

static void test_reconfigure(void)
{
    struct objstore *s = open_fault("", NULL);
    CHECK_ERR(objstore_put(s, "r/x", "x", 1), 0);
    struct objstore_fault_config c;
    char err[256];
    CHECK_ERR(objstore_fault_parse("put-error=1,put-errno=ENOSPC", &c, err, sizeof err), 0);
    CHECK_ERR(objstore_fault_configure(s, &c), 0);
    CHECK_ERR(objstore_put(s, "r/x", "x", 1), ENOSPC);
    CHECK(!objstore_err_retriable(ENOSPC));
    memset(&c, 0, sizeof c);
    CHECK_ERR(objstore_fault_configure(s, &c), 0);
    CHECK_ERR(objstore_put(s, "r/x", "x", 1), 0);
    c.op[OBJSTORE_OP_PUT].error = 2;
    CHECK_ERR(objstore_fault_configure(s, &c), EINVAL);
    objstore_close(s);
}

/* Many threads through one wrapper: counters add up, nothing crashes. */
struct mt_ctx {
    struct objstore *s;
    unsigned t;
    unsigned errors;
};

static void *mt_fn(void *arg)
{
    struct mt_ctx *c = arg;
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    for (unsigned i = 0; i < 200; i++) {
        char key[64];
        snprintf(key, sizeof key, "mt/%u/%u", c->t, i % 10);
        int e1 = objstore_put(c->s, key, key, strlen(key));
        int e2 = objstore_get(c->s, key, 100, &b);
        c->errors += (e1 != 0) + (e2 != 0 && e2 != ENOENT);
    }
    objstore_buf_free(&b);
    return NULL;
}

static void test_threads(void)
{
    struct objstore *s = open_fault("error=0.1,get-corrupt=0.1,latency=0..1ms", NULL);
    enum { T = 6 };
    pthread_t th[T];
    struct mt_ctx ctx[T];
    for (unsigned t = 0; t < T; t++) {
        ctx[t] = (struct mt_ctx){.s = s, .t = t};
        CHECK(pthread_create(&th[t], NULL, mt_fn, &ctx[t]) == 0);
    }
    unsigned errors = 0;
    for (unsigned t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        errors += ctx[t].errors;
    }
    struct objstore_fault_stats st;
    CHECK_ERR(objstore_fault_stats(s, &st), 0);
    CHECK(st.calls[OBJSTORE_OP_PUT] == T * 200 && st.calls[OBJSTORE_OP_GET] == T * 200);
    CHECK(st.errors[OBJSTORE_OP_PUT] + st.errors[OBJSTORE_OP_GET] == errors);
    printf("  %u threads: %u injected errors, %llu corrupted bodies\n", T, errors,
           (unsigned long long)st.corrupted[OBJSTORE_OP_GET]);
    objstore_close(s);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(base_dir, sizeof base_dir, "%s/test_objstore_fault.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base_dir) != NULL);

    static const struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"parse_ok", test_parse_ok},
        {"parse_errors", test_parse_errors},
        {"error_rate", test_error_rate},
        {"errno_and_after", test_errno_and_after},
        {"create", test_create},
        {"match", test_match},
        {"damage", test_damage},
        {"hang", test_hang},
        {"delete_many", test_delete_many},
        {"latency", test_latency},
        {"reconfigure", test_reconfigure},
        {"threads", test_threads},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        double t0 = now_s();
        printf("%s\n", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        printf("  ok (%.2fs)\n", now_s() - t0);
        fflush(stdout);
    }
    nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    printf("all fault wrapper tests passed\n");
    return 0;
}
