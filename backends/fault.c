/* fault.c - a wrapper that makes any object store misbehave on purpose.
 *
 * Every call draws all of its random decisions at once, under the lock, in
 * a fixed order, before doing anything slow: with one caller thread the
 * faults depend only on the seed and the sequence of calls, not on timing.
 * Sleeping, hanging and the inner call happen outside the lock.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "objstore.h"

#include <ctype.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FAULT_BODY_OPS ((1u << OBJSTORE_OP_PUT) | (1u << OBJSTORE_OP_GET) | (1u << OBJSTORE_OP_RANGE))
#define FAULT_READ_OPS ((1u << OBJSTORE_OP_GET) | (1u << OBJSTORE_OP_RANGE))

struct fault {
    struct objstore pub;
    struct objstore *inner;
    pthread_mutex_t mu;
    pthread_cond_t released;        /* signalled when release_gen changes */
    /* Under mu: */
    struct objstore_fault_config cfg;
    uint64_t rng;
    uint64_t hang_seen;             /* calls of hang ops since (re)configuring */
    uint64_t release_gen;
    struct objstore_fault_stats st;
    char name[];                    /* "fault(<inner name>)" */
};

/* What one call will suffer, decided up front. */
struct plan {
    bool hang;
    uint64_t hang_gen;  /* release_gen when the hang was decided */
    uint64_t hang_for_ns;
    uint64_t sleep_ns;
    int err_before;
    int err_after;
    bool truncate;
    bool corrupt;
    uint64_t r_trunc, r_pos, r_xor; /* random numbers for the damage */
};

/* splitmix64: tiny, good enough for fault decisions, and seedable. */
static uint64_t fault_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* True with probability p. Draws nothing when p is 0, so faults that are
 * off consume no random numbers. */
static bool fault_chance(uint64_t *state, double p)
{
    if (p <= 0)
        return false;
    return (double)(fault_rand(state) >> 11) * 0x1.0p-53 < p;
}

/* ---------------------------------------------------------------- config */

static int config_check(const struct objstore_fault_config *cfg)
{
    if (cfg->hang_ops & ~OBJSTORE_OP_ALL)
        return EINVAL;
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
        const struct objstore_fault_op *o = &cfg->op[i];
        const double ps[] = {o->error, o->error_after, o->corrupt, o->truncate};
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++)
            if (!(ps[j] >= 0 && ps[j] <= 1)) /* also rejects NaN */
                return EINVAL;
        if (o->err < 0 || o->err > 4095)
            return EINVAL;
        if ((o->corrupt > 0 || o->truncate > 0) && !(FAULT_BODY_OPS & (1u << i)))
            return EINVAL;
        if (o->latency_max_ns && o->latency_max_ns < o->latency_ns)
            return EINVAL;
    }
    return 0;
}

/* Called with mu held (or before the wrapper is shared). */
static void fault_apply(struct fault *f, const struct objstore_fault_config *cfg)
{
    f->cfg = *cfg;
    f->rng = cfg->seed;
    f->hang_seen = 0;
}

/* ------------------------------------------------------------ the plumbing */

static void fault_log(struct fault *f, int level, const char *op, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void fault_log(struct fault *f, int level, const char *op, const char *key,
                      const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    objstore_logf(f->pub.log, f->pub.log_opaque, level, "%s: %s %s: injected %s", f->name, op,
                  key, what);
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
}

/* Does key suffer faults (cfg.match)? Called with mu held. */
static bool fault_matches(const struct fault *f, const char *key)
{
    const char *m = f->cfg.match;
    if (!m[0])
        return true;
    char glob[sizeof f->cfg.match];
    while (*m) {
        size_t n = strcspn(m, "+");
        memcpy(glob, m, n);
        glob[n] = '\0';
        if (fnmatch(glob, key, 0) == 0)
            return true;
        m += n + (m[n] == '+');
    }
    return false;
}

/* Count the call and decide what happens to it. */
static void fault_plan(struct fault *f, enum objstore_op op, const char *key, struct plan *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_lock(&f->mu);
    const struct objstore_fault_op *o = &f->cfg.op[op];
    f->st.calls[op]++;
    if (!fault_matches(f, key)) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    if (f->cfg.hang_ops & (1u << op)) {
        if (f->hang_seen >= f->cfg.hang_after) {
            /* Counted and generation taken now, under the same lock as the
             * decision: a release that comes before we start waiting must
             * still let this call go. */
            p->hang = true;
            p->hang_gen = f->release_gen;
            p->hang_for_ns = f->cfg.hang_for_ns;
            f->st.hung[op]++;
            f->st.hanging++;
        } else {
            f->hang_seen++;
        }
    }
    p->sleep_ns = o->latency_ns;
    if (o->latency_max_ns > o->latency_ns)
        p->sleep_ns += fault_rand(&f->rng) % (o->latency_max_ns - o->latency_ns + 1);
    int err = o->err ? o->err : OBJSTORE_ESERVER;
    if (fault_chance(&f->rng, o->error))
        p->err_before = err;
    else if (fault_chance(&f->rng, o->error_after))
        p->err_after = err;
    p->truncate = fault_chance(&f->rng, o->truncate);
    p->corrupt = fault_chance(&f->rng, o->corrupt);
    if (p->truncate || p->corrupt) {
        p->r_trunc = fault_rand(&f->rng);
        p->r_pos = fault_rand(&f->rng);
        p->r_xor = fault_rand(&f->rng);
    }
    if (p->sleep_ns)
        f->st.delayed[op]++;
    if (p->err_before || p->err_after)
        f->st.errors[op]++;
    if (p->err_after)
        f->st.errors_after[op]++;
    pthread_mutex_unlock(&f->mu);
}

/* Hang (if planned), then sleep (if planned); return the error to inject
 * before the call, or 0 to go ahead. */
static int fault_enter(struct fault *f, enum objstore_op op, const char *key, const struct plan *p)
{
    if (p->hang) {
        uint64_t hang_for = p->hang_for_ns;
        if (hang_for)
            fault_log(f, OBJSTORE_LOG_INFO, objstore_op_name(op), key, "hang for %" PRIu64 " ms",
                      hang_for / 1000000);
        else
            fault_log(f, OBJSTORE_LOG_INFO, objstore_op_name(op), key, "hang until released");

        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t ns = (uint64_t)deadline.tv_nsec + hang_for % 1000000000u;
        deadline.tv_sec += (time_t)(hang_for / 1000000000u + ns / 1000000000u);
        deadline.tv_nsec = (long)(ns % 1000000000u);

        pthread_mutex_lock(&f->mu);
        while (f->release_gen == p->hang_gen) {
            if (!hang_for)
                pthread_cond_wait(&f->released, &f->mu);
            else if (pthread_cond_timedwait(&f->released, &f->mu, &deadline) == ETIMEDOUT)
                break;
        }
        f->st.hanging--;
        pthread_mutex_unlock(&f->mu);
    }
    if (p->sleep_ns)
        sleep_ns(p->sleep_ns);
    if (p->err_before) {
        fault_log(f, objstore_err_log_level(p->err_before), objstore_op_name(op), key,
                  "error: %s", objstore_strerror(p->err_before));
        return p->err_before;
    }
    return 0;
}

/* After the inner call: turn its success into the planned lost reply. */
static int fault_leave(struct fault *f, enum objstore_op op, const char *key,
                       const struct plan *p, int err)
{
    if (err || !p->err_after)
        return err;
    fault_log(f, objstore_err_log_level(p->err_after), objstore_op_name(op), key,
              "error after success: %s", objstore_strerror(p->err_after));
    return p->err_after;
}

/* Damage a body in place as planned; returns its new length. */
static size_t fault_damage(struct fault *f, enum objstore_op op, const char *key,
                           const struct plan *p, unsigned char *body, size_t len)
{
    if (len == 0)
        return 0;
    size_t old = len;
    if (p->truncate) {
        len = (size_t)(p->r_trunc % len);
        pthread_mutex_lock(&f->mu);
        f->st.truncated[op]++;
        pthread_mutex_unlock(&f->mu);
        fault_log(f, OBJSTORE_LOG_INFO, objstore_op_name(op), key,
                  "truncation: %zu of %zu bytes", len, old);
    }
    if (p->corrupt && len > 0) {
        size_t pos = (size_t)(p->r_pos % len);
        unsigned char x = (unsigned char)(1 + p->r_xor % 255); /* never 0 */
        body[pos] ^= x;
        pthread_mutex_lock(&f->mu);
        f->st.corrupted[op]++;
        pthread_mutex_unlock(&f->mu);
        fault_log(f, OBJSTORE_LOG_INFO, objstore_op_name(op), key,
                  "corruption: byte %zu of %zu xor 0x%02x", pos, len, x);
    }
    return len;
}

/* -------------------------------------------------------------------- ops */

/* put and create: the same faults and counters (a create's lost reply is
 * what makes its callers read the object back and compare). */
static int fault_write(struct objstore *s, const char *key, const void *buf, size_t len,
                       bool create)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_PUT, key, &p);
    int err = fault_enter(f, OBJSTORE_OP_PUT, key, &p);
    if (err)
        return err;
    void *copy = NULL;
    if ((p.truncate || p.corrupt) && len > 0) {
        /* Damage a copy: the caller's buffer is const and may be reused. */
        copy = malloc(len);
        if (!copy)
            return ENOMEM;
        memcpy(copy, buf, len);
        len = fault_damage(f, OBJSTORE_OP_PUT, key, &p, copy, len);
        buf = copy;
    }
    pthread_mutex_lock(&f->mu);
    enum objstore_fault_create how = f->cfg.create;
    pthread_mutex_unlock(&f->mu);
    if (create && how == OBJSTORE_CREATE_NONE)
        err = ENOTSUP;
    else if (create && how == OBJSTORE_CREATE_PASS)
        err = objstore_create(f->inner, key, buf, len);
    else
        err = objstore_put(f->inner, key, buf, len);
    free(copy);
    return fault_leave(f, OBJSTORE_OP_PUT, key, &p, err);
}

static int fault_put(struct objstore *s, const char *key, const void *buf, size_t len)
{
    return fault_write(s, key, buf, len, false);
}

static int fault_create(struct objstore *s, const char *key, const void *buf, size_t len)
{
    return fault_write(s, key, buf, len, true);
}

static int fault_get(struct objstore *s, const char *key, size_t max, struct objstore_buf *out)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_GET, key, &p);
    int err = fault_enter(f, OBJSTORE_OP_GET, key, &p);
    if (err)
        return err;
    err = objstore_get(f->inner, key, max, out);
    if (!err)
        out->len = fault_damage(f, OBJSTORE_OP_GET, key, &p, out->data, out->len);
    return fault_leave(f, OBJSTORE_OP_GET, key, &p, err);
}

static int fault_get_range(struct objstore *s, const char *key, uint64_t off, size_t len,
                           void *buf, size_t *got)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_RANGE, key, &p);
    int err = fault_enter(f, OBJSTORE_OP_RANGE, key, &p);
    if (err)
        return err;
    err = objstore_get_range(f->inner, key, off, len, buf, got);
    if (!err)
        *got = fault_damage(f, OBJSTORE_OP_RANGE, key, &p, buf, *got);
    return fault_leave(f, OBJSTORE_OP_RANGE, key, &p, err);
}

static int fault_head(struct objstore *s, const char *key, uint64_t *size)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_HEAD, key, &p);
    int err = fault_enter(f, OBJSTORE_OP_HEAD, key, &p);
    if (err)
        return err;
    err = objstore_head(f->inner, key, size);
    return fault_leave(f, OBJSTORE_OP_HEAD, key, &p, err);
}

static int fault_del(struct objstore *s, const char *key)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_DELETE, key, &p);
    int err = fault_enter(f, OBJSTORE_OP_DELETE, key, &p);
    if (err)
        return err;
    err = objstore_delete(f->inner, key);
    return fault_leave(f, OBJSTORE_OP_DELETE, key, &p, err);
}

/* A batch is one call of the delete operation, as it is one request to S3
 * (a multi-object delete): one decision for the whole batch, so an error
 * before deletes none of the keys and an error after deletes all of them
 * (the caller repeats the batch either way). The inner store's own
 * del_many runs when it has one, so a wrapped S3 store still batches. */
static int fault_del_many(struct objstore *s, const char *const *keys, size_t n)
{
    struct fault *f = s->priv;
    struct plan p;
    char what[OBJSTORE_KEY_MAX + 64];
    snprintf(what, sizeof what, "%s (%s%zu keys)", keys[0], n > 1 ? "first of " : "", n);
    fault_plan(f, OBJSTORE_OP_DELETE, keys[0], &p);
    int err = fault_enter(f, OBJSTORE_OP_DELETE, what, &p);
    if (err)
        return err;
    err = objstore_delete_many(f->inner, keys, n);
    return fault_leave(f, OBJSTORE_OP_DELETE, what, &p, err);
}

static int fault_list(struct objstore *s, const char *prefix, const char *after, size_t max,
                      struct objstore_list *out)
{
    struct fault *f = s->priv;
    struct plan p;
    fault_plan(f, OBJSTORE_OP_LIST, prefix ? prefix : "", &p);
    int err = fault_enter(f, OBJSTORE_OP_LIST, prefix, &p);
    if (err)
        return err;
    err = objstore_list(f->inner, prefix, after, max, out);
    err = fault_leave(f, OBJSTORE_OP_LIST, prefix, &p, err);
    if (err)
        objstore_list_free(out);
    return err;
}

static void fault_close(struct objstore *s)
{
    struct fault *f = s->priv;
    objstore_close(f->inner);
    pthread_cond_destroy(&f->released);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static const struct objstore_ops fault_ops = {
    .put = fault_put,
    .get = fault_get,
    .get_range = fault_get_range,
    .head = fault_head,
    .del = fault_del,
    .list = fault_list,
    .close = fault_close,
    .del_many = fault_del_many,
    .create = fault_create,
};

static struct fault *fault_of(struct objstore *s)
{
    return s && s->ops == &fault_ops ? s->priv : NULL;
}

/* ------------------------------------------------------------ public calls */

int objstore_fault_open(struct objstore *inner, const struct objstore_fault_config *cfg,
                        objstore_log_fn log, void *log_opaque, struct objstore **out)
{
    if (!inner || !cfg || !out)
        return EINVAL;
    if (config_check(cfg)) {
        objstore_logf(log, log_opaque, OBJSTORE_LOG_ERROR, "fault(%s): invalid configuration",
                      inner->name);
        return EINVAL;
    }
    size_t nlen = strlen(inner->name) + sizeof "fault()";
    struct fault *f = calloc(1, sizeof *f + nlen);
    if (!f)
        return ENOMEM;
    snprintf(f->name, nlen, "fault(%s)", inner->name);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* hang-for deadlines must not jump with the wall clock. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&f->released, &ca);
    pthread_condattr_destroy(&ca);
    if (err) {
        free(f);
        return err;
    }
    err = pthread_mutex_init(&f->mu, NULL);
    if (err) {
        pthread_cond_destroy(&f->released);
        free(f);
        return err;
    }
    f->inner = inner;
    fault_apply(f, cfg);
    f->pub.ops = &fault_ops;
    f->pub.priv = f;
    f->pub.name = f->name;
    f->pub.log = log;
    f->pub.log_opaque = log_opaque;
    *out = &f->pub;
    return 0;
}

int objstore_fault_open_spec(struct objstore *inner, const char *spec, objstore_log_fn log,
                             void *log_opaque, struct objstore **out)
{
    struct objstore_fault_config cfg;
    char msg[256];
    int err = objstore_fault_parse(spec, &cfg, msg, sizeof msg);
    if (err) {
        objstore_logf(log, log_opaque, OBJSTORE_LOG_ERROR, "%s", msg);
        return err;
    }
    return objstore_fault_open(inner, &cfg, log, log_opaque, out);
}

int objstore_fault_configure(struct objstore *s, const struct objstore_fault_config *cfg)
{
    struct fault *f = fault_of(s);
    if (!f || !cfg || config_check(cfg))
        return EINVAL;
    pthread_mutex_lock(&f->mu);
    fault_apply(f, cfg);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int objstore_fault_hang(struct objstore *s, unsigned ops_mask)
{
    struct fault *f = fault_of(s);
    if (!f || (ops_mask & ~OBJSTORE_OP_ALL))
        return EINVAL;
    pthread_mutex_lock(&f->mu);
    f->cfg.hang_ops = ops_mask;
    f->cfg.hang_after = 0;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int objstore_fault_release(struct objstore *s)
{
    struct fault *f = fault_of(s);
    if (!f)
        return EINVAL;
    pthread_mutex_lock(&f->mu);
    f->cfg.hang_ops = 0;
    f->release_gen++;
    pthread_cond_broadcast(&f->released);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

int objstore_fault_stats(struct objstore *s, struct objstore_fault_stats *out)
{
    struct fault *f = fault_of(s);
    if (!f || !out)
        return EINVAL;
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* ----------------------------------------------------------------- parser */

struct parse {
    char *err;
    size_t errlen;
    unsigned item;      /* 1-based, for messages */
    const char *text;   /* the item, for messages */
};

static int parse_fail(struct parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse_fail(struct parse *ps, const char *fmt, ...)
{
    if (ps->errlen == 0)
        return EINVAL;
    char why[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "fault spec item %u \"%s\": %s", ps->item, ps->text, why);
    return EINVAL;
}

static int parse_op(const char *s, size_t n)
{
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
        const char *name = objstore_op_name((enum objstore_op)i);
        if (strlen(name) == n && memcmp(s, name, n) == 0)
            return i;
    }
    return -1;
}

#define OP_NAMES "put, get, range, head, delete, list"

static int parse_prob(struct parse *ps, const char *v, double *out)
{
    char *end;
    errno = 0;
    double p = strtod(v, &end);
    if (end == v || errno || !isfinite(p))
        return parse_fail(ps, "\"%s\" is not a probability (expected 0..1 or 0%%..100%%)", v);
    if (*end == '%') {
        p /= 100;
        end++;
    }
    if (*end)
        return parse_fail(ps, "\"%s\" is not a probability (expected 0..1 or 0%%..100%%)", v);
    if (p < 0 || p > 1)
        return parse_fail(ps, "probability %s is out of range (expected 0..1 or 0%%..100%%)", v);
    *out = p;
    return 0;
}

static int parse_duration(struct parse *ps, const char *v, size_t n, uint64_t *out)
{
    char num[64];
    if (n == 0 || n >= sizeof num)
        return parse_fail(ps, "\"%.*s\" is not a duration (expected e.g. 20ms, 1.5s)", (int)n, v);
    memcpy(num, v, n);
    num[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(num, &end);
    if (end == num || errno || !isfinite(d) || d < 0 || num[0] == '-')
        return parse_fail(ps, "\"%s\" is not a duration (expected e.g. 20ms, 1.5s)", num);
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}};
    double scale = -1;
    if (*end == '\0' && d == 0)
        scale = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && scale < 0; i++)
        if (strcmp(end, units[i].unit) == 0)
            scale = units[i].ns;
    if (scale < 0) {
        if (*end == '\0')
            return parse_fail(ps, "duration \"%s\" needs a unit (ns, us, ms, s, m)", num);
        return parse_fail(ps, "duration \"%s\": unknown unit \"%s\" (expected ns, us, ms, s, m)",
                          num, end);
    }
    double ns = d * scale;
    if (ns > 86400e9)
        return parse_fail(ps, "duration \"%s\" is longer than a day", num);
    *out = (uint64_t)ns;
    return 0;
}

static int parse_latency(struct parse *ps, const char *v, uint64_t *lo, uint64_t *hi)
{
    const char *dots = strstr(v, "..");
    if (!dots) {
        *hi = 0;
        return parse_duration(ps, v, strlen(v), lo);
    }
    int err = parse_duration(ps, v, (size_t)(dots - v), lo);
    if (!err)
        err = parse_duration(ps, dots + 2, strlen(dots + 2), hi);
    if (!err && *hi < *lo)
        return parse_fail(ps, "latency range \"%s\" ends before it starts", v);
    return err;
}

static int parse_count(struct parse *ps, const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)v[0]))
        return parse_fail(ps, "\"%s\" is not an unsigned integer", v);
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno)
        return parse_fail(ps, "\"%s\" is not an unsigned 64-bit integer", v);
    *out = n;
    return 0;
}

static int parse_errno(struct parse *ps, const char *v, int *out)
{
    static const struct {
        const char *name;
        int err;
    } names[] = {
        {"5xx", OBJSTORE_ESERVER},   {"slowdown", OBJSTORE_ESLOWDOWN},
        {"EIO", EIO},                {"ETIMEDOUT", ETIMEDOUT},
        {"EAGAIN", EAGAIN},          {"EINTR", EINTR},
        {"EBUSY", EBUSY},            {"EREMOTEIO", EREMOTEIO},
        {"ECONNRESET", ECONNRESET},  {"ECONNREFUSED", ECONNREFUSED},
        {"ECONNABORTED", ECONNABORTED}, {"ENOTCONN", ENOTCONN},
        {"EPIPE", EPIPE},            {"EHOSTUNREACH", EHOSTUNREACH},
        {"EHOSTDOWN", EHOSTDOWN},    {"ENETUNREACH", ENETUNREACH},
        {"ENETDOWN", ENETDOWN},      {"ENETRESET", ENETRESET},
        {"EPROTO", EPROTO},          {"ENOENT", ENOENT},
        {"EACCES", EACCES},          {"EPERM", EPERM},
        {"EINVAL", EINVAL},          {"EFBIG", EFBIG},
        {"EBADMSG", EBADMSG},        {"ENOSPC", ENOSPC},
        {"EDQUOT", EDQUOT},          {"EROFS", EROFS},
        {"ENOMEM", ENOMEM},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(v, names[i].name) == 0) {
            *out = names[i].err;
            return 0;
        }
    if (isdigit((unsigned char)v[0])) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*end && n >= 1 && n <= 4095) {
            *out = (int)n;
            return 0;
        }
    }
    return parse_fail(ps,
                      "unknown errno \"%s\" (expected 5xx, slowdown, a name such as ETIMEDOUT or "
                      "ECONNRESET, or a number 1..4095)",
                      v);
}

static int parse_ops(struct parse *ps, const char *v, unsigned *mask)
{
    if (!strcmp(v, "all")) {
        *mask = OBJSTORE_OP_ALL;
        return 0;
    }
    if (!strcmp(v, "none")) {
        *mask = 0;
        return 0;
    }
    unsigned m = 0;
    for (const char *c = v;;) {
        const char *plus = strchr(c, '+');
        size_t n = plus ? (size_t)(plus - c) : strlen(c);
        int op = parse_op(c, n);
        if (op < 0)
            return parse_fail(ps, "unknown operation \"%.*s\" (expected all, none, or " OP_NAMES
                                  " joined by '+')",
                              (int)n, c);
        m |= 1u << op;
        if (!plus)
            break;
        c = plus + 1;
    }
    *mask = m;
    return 0;
}

enum fault_kind { F_ERROR, F_ERROR_AFTER, F_ERRNO, F_CORRUPT, F_TRUNCATE, F_LATENCY, F_NONE };

static enum fault_kind parse_kind(const char *s)
{
    static const char *const kinds[] = {"error", "error-after", "errno",
                                        "corrupt", "truncate", "latency"};
    for (int i = 0; i < F_NONE; i++)
        if (!strcmp(s, kinds[i]))
            return (enum fault_kind)i;
    return F_NONE;
}

/* Trim spaces in place from [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static int parse_item(struct parse *ps, char *key, char *val, struct objstore_fault_config *cfg)
{
    if (!strcmp(key, "seed"))
        return parse_count(ps, val, &cfg->seed);
    if (!strcmp(key, "hang"))
        return parse_ops(ps, val, &cfg->hang_ops);
    if (!strcmp(key, "hang-after"))
        return parse_count(ps, val, &cfg->hang_after);
    if (!strcmp(key, "hang-for"))
        return parse_duration(ps, val, strlen(val), &cfg->hang_for_ns);
    if (!strcmp(key, "create")) {
        if (!strcmp(val, "pass"))
            cfg->create = OBJSTORE_CREATE_PASS;
        else if (!strcmp(val, "none"))
            cfg->create = OBJSTORE_CREATE_NONE;
        else if (!strcmp(val, "ignored"))
            cfg->create = OBJSTORE_CREATE_IGNORED;
        else
            return parse_fail(ps, "create=%s: expected pass, none or ignored", val);
        return 0;
    }
    if (!strcmp(key, "match")) {
        if (!val[0] || strlen(val) >= sizeof cfg->match)
            return parse_fail(ps, "match=%s: one or more globs joined by '+', at most %zu "
                              "characters", val, sizeof cfg->match - 1);
        snprintf(cfg->match, sizeof cfg->match, "%s", val);
        return 0;
    }

    int op = -1;
    const char *kname = key;
    const char *dash = strchr(key, '-');
    if (dash && (op = parse_op(key, (size_t)(dash - key))) >= 0)
        kname = dash + 1;
    enum fault_kind kind = parse_kind(kname);
    if (kind == F_NONE) {
        if (dash && op < 0 && parse_kind(dash + 1) != F_NONE)
            return parse_fail(ps, "unknown operation \"%.*s\" (expected " OP_NAMES ")",
                              (int)(dash - key), key);
        return parse_fail(ps,
                          "unknown key \"%s\" (expected [op-]error, [op-]error-after, "
                          "[op-]errno, [op-]corrupt, [op-]truncate, [op-]latency, hang, "
                          "hang-after, hang-for, seed, match, create)",
                          key);
    }
    unsigned mask;
    if (op >= 0)
        mask = 1u << op;
    else
        mask = kind == F_CORRUPT || kind == F_TRUNCATE ? FAULT_READ_OPS : OBJSTORE_OP_ALL;
    if ((kind == F_CORRUPT || kind == F_TRUNCATE) && !(mask & FAULT_BODY_OPS))
        return parse_fail(ps, "%s applies to put, get and range, not %s", kname,
                          objstore_op_name((enum objstore_op)op));

    double p = 0;
    int e = 0;
    uint64_t lo = 0, hi = 0;
    int err = 0;
    switch (kind) {
    case F_ERROR:
    case F_ERROR_AFTER:
    case F_CORRUPT:
    case F_TRUNCATE:
        err = parse_prob(ps, val, &p);
        break;
    case F_ERRNO:
        err = parse_errno(ps, val, &e);
        break;
    case F_LATENCY:
        err = parse_latency(ps, val, &lo, &hi);
        break;
    case F_NONE:
        break;
    }
    if (err)
        return err;
    for (int i = 0; i < OBJSTORE_OP_COUNT; i++) {
        if (!(mask & (1u << i)))
            continue;
        struct objstore_fault_op *o = &cfg->op[i];
        switch (kind) {
        case F_ERROR: o->error = p; break;
        case F_ERROR_AFTER: o->error_after = p; break;
        case F_ERRNO: o->err = e; break;
        case F_CORRUPT: o->corrupt = p; break;
        case F_TRUNCATE: o->truncate = p; break;
        case F_LATENCY: o->latency_ns = lo; o->latency_max_ns = hi; break;
        case F_NONE: break;
        }
    }
    return 0;
}

int objstore_fault_parse(const char *spec, struct objstore_fault_config *cfg, char *err,
                         size_t errlen)
{
    struct parse ps = {.err = err, .errlen = errlen, .text = ""};
    if (errlen)
        err[0] = '\0';
    if (!cfg)
        return EINVAL;
    memset(cfg, 0, sizeof *cfg);
    if (!spec)
        return 0;
    size_t slen = strlen(spec);
    const char *c = spec;
    trim(&c, &slen);
    if (slen == 0)
        return 0;
    /* One buffer for the item being parsed, NUL-split into key and value. */
    char *item = malloc(slen + 1);
    if (!item)
        return ENOMEM;
    int rc = 0;
    const char *end = c + slen;
    for (ps.item = 1; !rc; ps.item++) {
        const char *comma = memchr(c, ',', (size_t)(end - c));
        const char *s = c;
        size_t n = comma ? (size_t)(comma - c) : (size_t)(end - c);
        trim(&s, &n);
        memcpy(item, s, n);
        item[n] = '\0';
        ps.text = item;
        if (n == 0) {
            rc = parse_fail(&ps, "empty item (stray ',')");
            break;
        }
        char *eq = strchr(item, '=');
        if (!eq) {
            rc = parse_fail(&ps, "expected key=value");
            break;
        }
        /* Keep the item intact for messages: parse a copy split in two. */
        char key[64], val[128];
        const char *k = item, *v = eq + 1;
        size_t kn = (size_t)(eq - item), vn = strlen(v);
        trim(&k, &kn);
        trim(&v, &vn);
        if (kn == 0 || kn >= sizeof key) {
            rc = parse_fail(&ps, kn ? "key too long" : "missing key before '='");
            break;
        }
        if (vn == 0 || vn >= sizeof val) {
            rc = parse_fail(&ps, vn ? "value too long" : "missing value after '='");
            break;
        }
        memcpy(key, k, kn);
        key[kn] = '\0';
        memcpy(val, v, vn);
        val[vn] = '\0';
        rc = parse_item(&ps, key, val, cfg);
        if (!comma)
            break;
        c = comma + 1;
    }
    free(item);
    if (rc)
        memset(cfg, 0, sizeof *cfg);
    return rc;
}
