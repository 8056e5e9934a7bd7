/* s3_xml.c - read the few XML documents S3 answers with (Error,
 * ListBucketResult, DeleteResult) without an XML library.
 *
 * One small walker turns a document into "element opened" and "element
 * closed, with its text" events, each with the path of element names from
 * the root ("ListBucketResult/Contents/Key"); the three readers below are
 * event handlers. The walker checks what matters for not misreading an
 * answer: tags nest and close, one root, entities are known, text has no
 * NUL. It skips what S3 adds around the data (the <?xml?> declaration,
 * comments, attributes such as xmlns, namespace prefixes). Input is
 * untrusted (a proxy, a broken server): every bound is explicit.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <stdlib.h>
#include <string.h>

/* S3's documents are 3 levels deep; room for a few more. */
#define XML_DEPTH_MAX 16
#define XML_PATH_MAX 512

typedef int (*xml_fn)(void *opaque, bool close, const char *path, const char *text, size_t len);

static const char *find(const char *p, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (; (size_t)(end - p) >= n; p++)
        if (memcmp(p, needle, n) == 0)
            return p;
    return NULL;
}

static bool starts(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void put_utf8(struct s3_str *t, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    s3_str_add(t, b, n);
}

/* Append character data [p, end) to t, decoding entities. */
static int add_text(struct s3_str *t, const char *p, const char *end)
{
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (memchr(p, '\0', (size_t)(stop - p)))
            return EBADMSG;
        s3_str_add(t, p, (size_t)(stop - p));
        if (!amp)
            break;
        const char *semi = memchr(amp, ';', (size_t)(end - amp) < 12 ? (size_t)(end - amp) : 12);
        if (!semi)
            return EBADMSG;
        const char *e = amp + 1;
        size_t n = (size_t)(semi - e);
        if (n == 2 && !memcmp(e, "lt", 2))
            s3_str_adds(t, "<");
        else if (n == 2 && !memcmp(e, "gt", 2))
            s3_str_adds(t, ">");
        else if (n == 3 && !memcmp(e, "amp", 3))
            s3_str_adds(t, "&");
        else if (n == 4 && !memcmp(e, "quot", 4))
            s3_str_adds(t, "\"");
        else if (n == 4 && !memcmp(e, "apos", 4))
            s3_str_adds(t, "'");
        else if (n >= 2 && e[0] == '#') {
            bool hex = e[1] == 'x' || e[1] == 'X';
            const char *d = e + 1 + hex;
            if (d == semi)
                return EBADMSG;
            uint32_t cp = 0;
            for (; d < semi; d++) {
                int v;
                if (*d >= '0' && *d <= '9')
                    v = *d - '0';
                else if (hex && *d >= 'a' && *d <= 'f')
                    v = *d - 'a' + 10;
                else if (hex && *d >= 'A' && *d <= 'F')
                    v = *d - 'A' + 10;
                else
                    return EBADMSG;
                cp = cp * (hex ? 16 : 10) + (uint32_t)v;
                if (cp > 0x10ffff)
                    return EBADMSG;
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                return EBADMSG;
            put_utf8(t, cp);
        } else {
            return EBADMSG;
        }
        p = semi + 1;
    }
    if (t->err)
        return t->err;
    return t->len > S3_XML_TEXT_MAX ? EBADMSG : 0;
}

static int xml_walk(const char *xml, size_t len, xml_fn fn, void *opaque)
{
    const char *p = xml, *end = xml + len;
    char path[XML_PATH_MAX];
    size_t marks[XML_DEPTH_MAX]; /* path length before each open element */
    size_t depth = 0, plen = 0;
    bool root_seen = false;
    struct s3_str text = S3_STR_INIT;
    int err = 0;
    path[0] = '\0';

    while (p < end && !err) {
        if (*p != '<') {
            const char *lt = memchr(p, '<', (size_t)(end - p));
            const char *stop = lt ? lt : end;
            if (depth == 0) {
                for (; p < stop; p++)
                    if (!is_space(*p))
                        err = EBADMSG;
            } else {
                err = add_text(&text, p, stop);
            }
            p = stop;
            continue;
        }
        if (starts(p, end, "<?")) {
            const char *q = find(p, end, "?>");
            err = q ? 0 : EBADMSG;
            p = q ? q + 2 : end;
        } else if (starts(p, end, "<!--")) {
            const char *q = find(p + 4, end, "-->");
            err = q ? 0 : EBADMSG;
            p = q ? q + 3 : end;
        } else if (starts(p, end, "<![CDATA[")) {
            const char *q = find(p + 9, end, "]]>");
            if (!q || depth == 0 || memchr(p + 9, '\0', (size_t)(q - p - 9))) {
                err = EBADMSG;
                break;
            }
            s3_str_add(&text, p + 9, (size_t)(q - p - 9));
            err = text.err ? text.err : (text.len > S3_XML_TEXT_MAX ? EBADMSG : 0);
            p = q + 3;
        } else if (starts(p, end, "<!")) {
            /* <!DOCTYPE ...>: only before the root; no internal subsets. */
            const char *q = memchr(p, '>', (size_t)(end - p));
            if (!q || root_seen || memchr(p, '[', (size_t)(q - p)))
                err = EBADMSG;
            p = q ? q + 1 : end;
        } else {
            bool closing = p[1] == '/';
            const char *name = p + 1 + closing;
            const char *q = name;
            while (q < end && !is_space(*q) && *q != '>' && *q != '/')
                q++;
            size_t nlen = (size_t)(q - name);
            /* Attributes: skip to the '>' outside quotes. */
            char quote = 0;
            const char *gt = q;
            for (; gt < end; gt++) {
                if (quote) {
                    if (*gt == quote)
                        quote = 0;
                } else if (*gt == '"' || *gt == '\'') {
                    quote = *gt;
                } else if (*gt == '>' || *gt == '<') {
                    break;
                }
            }
            if (nlen == 0 || gt >= end || *gt != '>') {
                err = EBADMSG;
                break;
            }
            bool empty = !closing && gt[-1] == '/';
            if (closing && gt != q) {
                for (const char *c = q; c < gt; c++)
                    if (!is_space(*c))
                        err = EBADMSG;
            }
            /* Namespace prefix ("s3:Key"): the local name is what counts. */
            const char *colon = memchr(name, ':', nlen);
            if (colon) {
                nlen -= (size_t)(colon + 1 - name);
                name = colon + 1;
            }
            p = gt + 1;
            if (err)
                break;
            if (closing) {
                if (depth == 0 || plen - marks[depth - 1] - (depth > 1) != nlen ||
                    memcmp(path + plen - nlen, name, nlen) != 0) {
                    err = EBADMSG;
                    break;
                }
                err = fn(opaque, true, path, text.p ? text.p : "", text.len);
                text.len = 0;
                if (text.p)
                    text.p[0] = '\0';
                plen = marks[--depth];
                path[plen] = '\0';
                continue;
            }
            if ((depth == 0 && root_seen) || depth == XML_DEPTH_MAX ||
                plen + 1 + nlen >= sizeof path || memchr(name, '\0', nlen)) {
                err = EBADMSG;
                break;
            }
            root_seen = true;
            marks[depth++] = plen;
            if (depth > 1)
                path[plen++] = '/';
            memcpy(path + plen, name, nlen);
            plen += nlen;
            path[plen] = '\0';
            text.len = 0;
            if (text.p)
                text.p[0] = '\0';
            err = fn(opaque, false, path, "", 0);
            if (!err && empty) {
                err = fn(opaque, true, path, "", 0);
                plen = marks[--depth];
                path[plen] = '\0';
            }
        }
    }
    s3_str_free(&text);
    if (!err && (depth != 0 || !root_seen))
        err = EBADMSG;
    return err;
}

/* Copy text into a fixed buffer, cut to fit. */
static void copy_text(char *dst, size_t cap, const char *text, size_t len)
{
    if (cap == 0)
        return;
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(dst, text, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------ Error */

struct error_ctx {
    char *code, *msg;
    size_t codelen, msglen;
};

static int error_ev(void *opaque, bool close, const char *path, const char *text, size_t len)
{
    struct error_ctx *c = opaque;
    if (!close && !strchr(path, '/') && strcmp(path, "Error") != 0)
        return EBADMSG;
    if (close && !strcmp(path, "Error/Code"))
        copy_text(c->code, c->codelen, text, len);
    else if (close && !strcmp(path, "Error/Message"))
        copy_text(c->msg, c->msglen, text, len);
    return 0;
}

int s3_xml_parse_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
                       size_t msglen)
{
    if (codelen)
        code[0] = '\0';
    if (msglen)
        msg[0] = '\0';
    struct error_ctx c = {code, msg, codelen, msglen};
    int err = xml_walk(xml, len, error_ev, &c);
    if (err) {
        if (codelen)
            code[0] = '\0';
        if (msglen)
            msg[0] = '\0';
    }
    return err;
}

/* ------------------------------------------------------------------- list */

struct list_ctx {
    struct objstore_list *out;
    size_t cap;
    bool *truncated;
    char *key;          /* of the Contents being read */
    uint64_t size;
    bool have_size;
    bool in_contents;
};

static int parse_u64(const char *text, size_t len, uint64_t *v)
{
    if (len == 0 || len > 20)
        return EBADMSG;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return EBADMSG;
        unsigned d = (unsigned)(text[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return EBADMSG;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static int list_ev(void *opaque, bool close, const char *path, const char *text, size_t len)
{
    struct list_ctx *c = opaque;
    if (!close) {
        if (!strchr(path, '/') && strcmp(path, "ListBucketResult") != 0)
            return EBADMSG;
        if (!strcmp(path, "ListBucketResult/Contents")) {
            free(c->key);
            c->key = NULL;
            c->have_size = false;
            c->in_contents = true;
        }
        return 0;
    }
    if (!strcmp(path, "ListBucketResult/IsTruncated")) {
        if (len == 4 && !memcmp(text, "true", 4))
            *c->truncated = true;
        else if (len == 5 && !memcmp(text, "false", 5))
            *c->truncated = false;
        else
            return EBADMSG;
    } else if (!strcmp(path, "ListBucketResult/Contents/Key")) {
        if (len == 0 || c->key)
            return EBADMSG;
        c->key = strndup(text, len);
        if (!c->key)
            return ENOMEM;
    } else if (!strcmp(path, "ListBucketResult/Contents/Size")) {
        if (parse_u64(text, len, &c->size))
            return EBADMSG;
        c->have_size = true;
    } else if (!strcmp(path, "ListBucketResult/Contents")) {
        if (!c->key || !c->have_size)
            return EBADMSG;
        struct objstore_list *o = c->out;
        if (o->count == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            void *p = realloc(o->entries, cap * sizeof *o->entries);
            if (!p)
                return ENOMEM;
            o->entries = p;
            c->cap = cap;
        }
        o->entries[o->count].key = c->key;
        o->entries[o->count].size = c->size;
        o->count++;
        c->key = NULL;
        c->in_contents = false;
    }
    return 0;
}

int s3_xml_parse_list(const char *xml, size_t len, struct objstore_list *out, bool *truncated)
{
    *truncated = false;
    struct list_ctx c = {.out = out, .cap = out->count, .truncated = truncated};
    int err = xml_walk(xml, len, list_ev, &c);
    free(c.key);
    return err;
}

/* ------------------------------------------------------------ DeleteResult */

struct delete_ctx {
    int (*fn)(void *opaque, const struct s3_delete_error *e);
    void *opaque;
    struct s3_delete_error e;
};

static int delete_ev(void *opaque, bool close, const char *path, const char *text, size_t len)
{
    struct delete_ctx *c = opaque;
    if (!close) {
        if (!strchr(path, '/') && strcmp(path, "DeleteResult") != 0)
            return EBADMSG;
        if (!strcmp(path, "DeleteResult/Error"))
            memset(&c->e, 0, sizeof c->e);
        return 0;
    }
    if (!strcmp(path, "DeleteResult/Error/Key"))
        copy_text(c->e.key, sizeof c->e.key, text, len);
    else if (!strcmp(path, "DeleteResult/Error/Code"))
        copy_text(c->e.code, sizeof c->e.code, text, len);
    else if (!strcmp(path, "DeleteResult/Error/Message"))
        copy_text(c->e.msg, sizeof c->e.msg, text, len);
    else if (!strcmp(path, "DeleteResult/Error"))
        return c->fn(c->opaque, &c->e);
    return 0;
}

int s3_xml_parse_delete_result(const char *xml, size_t len,
                               int (*fn)(void *opaque, const struct s3_delete_error *e),
                               void *opaque)
{
    struct delete_ctx *c = calloc(1, sizeof *c); /* ~2.4 KiB: keep it off small stacks */
    if (!c)
        return ENOMEM;
    c->fn = fn;
    c->opaque = opaque;
    int err = xml_walk(xml, len, delete_ev, c);
    free(c);
    return err;
}
