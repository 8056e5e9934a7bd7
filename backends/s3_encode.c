/* s3_encode.c - growing strings and the encodings S3 requests need: URL path
 * and query percent-encoding (in SigV4's canonical form), XML escaping,
 * hex and base64.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- strings */

static bool str_reserve(struct s3_str *s, size_t more)
{
    if (s->err)
        return false;
    if (more > SIZE_MAX / 2 - s->len) {
        s->err = ENOMEM;
        return false;
    }
    size_t need = s->len + more + 1;
    if (need <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(s->p, cap);
    if (!p) {
        s->err = ENOMEM;
        return false;
    }
    s->p = p;
    s->cap = cap;
    return true;
}

void s3_str_add(struct s3_str *s, const char *data, size_t len)
{
    if (!str_reserve(s, len))
        return;
    if (len)
        memcpy(s->p + s->len, data, len);
    s->len += len;
    s->p[s->len] = '\0';
}

void s3_str_adds(struct s3_str *s, const char *cstr)
{
    s3_str_add(s, cstr, strlen(cstr));
}

void s3_str_addf(struct s3_str *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!s->err)
            s->err = EINVAL;
        return;
    }
    if (!str_reserve(s, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

void s3_str_free(struct s3_str *s)
{
    free(s->p);
    *s = (struct s3_str)S3_STR_INIT;
}

/* ---------------------------------------------------------------- encoding */

static const char hex_upper[] = "0123456789ABCDEF";

/* RFC 3986 unreserved: what SigV4 leaves raw. */
static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

static void encode(struct s3_str *s, const char *in, bool keep_slash)
{
    /* Worst case three bytes out per byte in: reserve once. */
    size_t n = strlen(in);
    if (!str_reserve(s, n * 3))
        return;
    char *o = s->p + s->len;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex_upper[*p >> 4];
            *o++ = hex_upper[*p & 15];
        }
    }
    *o = '\0';
    s->len = (size_t)(o - s->p);
}

void s3_encode_path(struct s3_str *s, const char *key)
{
    encode(s, key, true);
}

void s3_encode_query(struct s3_str *s, const char *value)
{
    encode(s, value, false);
}

void s3_xml_escape(struct s3_str *s, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': s3_str_adds(s, "&amp;"); break;
        case '<': s3_str_adds(s, "&lt;"); break;
        case '>': s3_str_adds(s, "&gt;"); break;
        case '"': s3_str_adds(s, "&quot;"); break;
        case '\'': s3_str_adds(s, "&apos;"); break;
        default: s3_str_add(s, p, 1); break;
        }
    }
}

void s3_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void s3_base64(const unsigned char *in, size_t n, char *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}
