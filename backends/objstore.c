/* objstore.c - what every backend shares: argument checks and dispatch, key
 * rules, error classification, logging, result buffers.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "objstore.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ errors */

bool objstore_err_retriable(int err)
{
    switch (err) {
    case ETIMEDOUT:
    case EAGAIN:
    case EINTR:
    case EBUSY:     /* OBJSTORE_ESLOWDOWN */
    case EREMOTEIO: /* OBJSTORE_ESERVER */
    case ECONNRESET:
    case ECONNREFUSED:
    case ECONNABORTED:
    case ENOTCONN:
    case EPIPE:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETUNREACH:
    case ENETDOWN:
    case ENETRESET:
    case EPROTO:
        return true;
    default:
        return false;
    }
}

const char *objstore_strerror(int err)
{
    /* The two aliases read as what they mean for a remote store; the log
     * line of the backend that saw them carries the HTTP detail. */
    if (err == OBJSTORE_ESERVER)
        return "Remote I/O error (server error)";
    if (err == OBJSTORE_ESLOWDOWN)
        return "Busy (server asked to slow down)";
    if (err == 0)
        return "Success";
    /* strerrordesc_np, unlike strerror, never uses a shared buffer. */
    const char *s = strerrordesc_np(err);
    return s ? s : "Unknown error";
}

int objstore_err_log_level(int err)
{
    if (err == ENOENT)
        return OBJSTORE_LOG_DEBUG;
    return objstore_err_retriable(err) ? OBJSTORE_LOG_WARN : OBJSTORE_LOG_ERROR;
}

/* ----------------------------------------------------------------- logging */

void objstore_log_stderr(void *opaque, int level, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *name = level >= 0 && level <= 3 ? names[level] : "?";
    /* One fprintf per line: stdio locks the stream, so concurrent lines do
     * not interleave. */
    fprintf(stderr, "objstore: %s: %s\n", name, line);
}

void objstore_logf(objstore_log_fn fn, void *opaque, int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    (fn ? fn : objstore_log_stderr)(opaque, level, line);
}

/* -------------------------------------------------------------------- keys */

static bool key_byte_ok(unsigned char c)
{
    return c >= 0x20 && c != 0x7f;
}

/* A complete component: 1..OBJSTORE_COMPONENT_MAX allowed bytes, not "." or
 * "..". */
static bool component_ok(const char *c, size_t n)
{
    if (n == 0 || n > OBJSTORE_COMPONENT_MAX)
        return false;
    if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!key_byte_ok((unsigned char)c[i]))
            return false;
    return true;
}

int objstore_key_check(const char *key)
{
    if (!key)
        return EINVAL;
    size_t len = strnlen(key, OBJSTORE_KEY_MAX + 1);
    if (len == 0 || len > OBJSTORE_KEY_MAX)
        return EINVAL;
    const char *c = key;
    for (;;) {
        const char *slash = memchr(c, '/', (size_t)(key + len - c));
        size_t n = slash ? (size_t)(slash - c) : (size_t)(key + len - c);
        if (!component_ok(c, n))
            return EINVAL;
        if (!slash)
            return 0;
        c = slash + 1;
    }
}

int objstore_prefix_check(const char *prefix)
{
    if (!prefix)
        return EINVAL;
    size_t len = strnlen(prefix, OBJSTORE_KEY_MAX + 1);
    if (len > OBJSTORE_KEY_MAX)
        return EINVAL;
    const char *c = prefix;
    for (;;) {
        const char *slash = memchr(c, '/', (size_t)(prefix + len - c));
        if (!slash) {
            /* The partial last component only filters names, it never
             * becomes a path, so "." or ".." there is harmless. */
            size_t n = (size_t)(prefix + len - c);
            if (n > OBJSTORE_COMPONENT_MAX)
                return EINVAL;
            for (size_t i = 0; i < n; i++)
                if (!key_byte_ok((unsigned char)c[i]))
                    return EINVAL;
            return 0;
        }
        if (!component_ok(c, (size_t)(slash - c)))
            return EINVAL;
        c = slash + 1;
    }
}

/* ---------------------------------------------------------------- results */

void objstore_buf_free(struct objstore_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void objstore_list_free(struct objstore_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->entries[i].key);
    free(list->entries);
    free(list->next);
    list->entries = NULL;
    list->count = 0;
    list->next = NULL;
}

const char *objstore_op_name(enum objstore_op op)
{
    static const char *const names[OBJSTORE_OP_COUNT] = {
        [OBJSTORE_OP_PUT] = "put",       [OBJSTORE_OP_GET] = "get",
        [OBJSTORE_OP_RANGE] = "range",   [OBJSTORE_OP_HEAD] = "head",
        [OBJSTORE_OP_DELETE] = "delete", [OBJSTORE_OP_LIST] = "list",
    };
    return (unsigned)op < OBJSTORE_OP_COUNT ? names[op] : "?";
}

/* --------------------------------------------------------------- dispatch */

/* A bad key is a caller bug: say so once, with the key made printable. */
static int bad_arg(struct objstore *s, const char *op, const char *what, const char *key)
{
    char shown[128];
    size_t i = 0;
    if (key) {
        for (; key[i] && i < sizeof shown - 4; i++)
            shown[i] = key_byte_ok((unsigned char)key[i]) ? key[i] : '?';
        if (key[i])
            shown[i++] = '.', shown[i++] = '.', shown[i++] = '.';
    }
    shown[i] = '\0';
    objstore_logf(s->log, s->log_opaque, OBJSTORE_LOG_ERROR, "%s: %s \"%s\": %s", s->name, op,
                  key ? shown : "(null)", what);
    return EINVAL;
}

static int check_key(struct objstore *s, const char *op, const char *key)
{
    if (objstore_key_check(key))
        return bad_arg(s, op, "invalid key", key);
    return 0;
}

int objstore_put(struct objstore *s, const char *key, const void *buf, size_t len)
{
    if (!s)
        return EINVAL;
    int err = check_key(s, "put", key);
    if (err)
        return err;
    if (!buf && len)
        return bad_arg(s, "put", "NULL body", key);
    return s->ops->put(s, key, buf, len);
}

int objstore_create(struct objstore *s, const char *key, const void *buf, size_t len)
{
    if (!s)
        return EINVAL;
    int err = check_key(s, "create", key);
    if (err)
        return err;
    if (!buf && len)
        return bad_arg(s, "create", "NULL body", key);
    return s->ops->create ? s->ops->create(s, key, buf, len) : ENOTSUP;
}

int objstore_get(struct objstore *s, const char *key, size_t max, struct objstore_buf *out)
{
    if (!s || !out)
        return EINVAL;
    out->len = 0;
    int err = check_key(s, "get", key);
    if (err)
        return err;
    err = s->ops->get(s, key, max, out);
    if (err)
        out->len = 0;
    return err;
}

int objstore_get_range(struct objstore *s, const char *key, uint64_t off, size_t len, void *buf,
                       size_t *got)
{
    if (!s || !got)
        return EINVAL;
    *got = 0;
    int err = check_key(s, "range", key);
    if (err)
        return err;
    if (!buf && len)
        return bad_arg(s, "range", "NULL buffer", key);
    err = s->ops->get_range(s, key, off, len, buf, got);
    if (err)
        *got = 0;
    return err;
}

int objstore_head(struct objstore *s, const char *key, uint64_t *size)
{
    if (!s || !size)
        return EINVAL;
    *size = 0;
    int err = check_key(s, "head", key);
    if (err)
        return err;
    return s->ops->head(s, key, size);
}

int objstore_delete(struct objstore *s, const char *key)
{
    if (!s)
        return EINVAL;
    int err = check_key(s, "delete", key);
    if (err)
        return err;
    return s->ops->del(s, key);
}

/* The error a batch reports: the first one, unless a later one is
 * permanent and the first was not (a permanent failure must not hide
 * behind one that a retry would clear). */
static int merge_err(int have, int err)
{
    if (!have)
        return err;
    if (err && objstore_err_retriable(have) && !objstore_err_retriable(err))
        return err;
    return have;
}

int objstore_delete_many(struct objstore *s, const char *const *keys, size_t n)
{
    if (!s || (!keys && n))
        return EINVAL;
    for (size_t i = 0; i < n; i++) {
        int err = check_key(s, "delete", keys[i]);
        if (err)
            return err;
    }
    int result = 0;
    for (size_t i = 0; i < n;) {
        size_t batch = n - i < OBJSTORE_DELETE_MANY_MAX ? n - i : OBJSTORE_DELETE_MANY_MAX;
        if (s->ops->del_many) {
            result = merge_err(result, s->ops->del_many(s, keys + i, batch));
        } else {
            for (size_t j = 0; j < batch; j++)
                result = merge_err(result, s->ops->del(s, keys[i + j]));
        }
        i += batch;
    }
    return result;
}

int objstore_list(struct objstore *s, const char *prefix, const char *after, size_t max,
                  struct objstore_list *out)
{
    if (!s || !out)
        return EINVAL;
    if (out->entries || out->count || out->next)
        return bad_arg(s, "list", "result not empty (missing objstore_list_free?)", prefix);
    if (!prefix)
        prefix = "";
    if (objstore_prefix_check(prefix))
        return bad_arg(s, "list", "invalid prefix", prefix);
    if (max == 0 || max > OBJSTORE_LIST_MAX_DEFAULT)
        max = OBJSTORE_LIST_MAX_DEFAULT;
    int err = s->ops->list(s, prefix, after, max, out);
    if (err)
        objstore_list_free(out);
    return err;
}

void objstore_close(struct objstore *s)
{
    if (s)
        s->ops->close(s);
}
