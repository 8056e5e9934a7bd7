/* s3_xml.c - read the few XML documents S3 answers with (Error,
 * ListBucketResult, DeleteResult) through expat.
 *
 * expat checks the XML (one root, tags nested and closed, entities and
 * character references, UTF-8); one small walker on top of it turns the
 * document into "element opened" and "element closed, with its text"
 * events, each with the path of local names from the root
 * ("ListBucketResult/Contents/Key"), and the three readers below are event
 * handlers. The answers are untrusted input (a proxy, a broken or hostile
 * server), so the walker adds what expat leaves to its caller: the bounds
 * of s3_priv.h (document size, depth, text per element, entries per page),
 * no DTD at all, no mixed content. The first failure stops the parser.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

/* S3's documents are 3 levels deep; room for a few more. Stopping here also
 * keeps expat's own tag stack small. */
#define XML_DEPTH_MAX 16
#define XML_PATH_MAX 512
/* Splits expat's "URI<sep>local" names. The header of expat advises '\n':
 * no XML name holds one, so the local name is what follows the last. */
#define XML_NS_SEP '\n'

typedef int (*xml_fn)(void *opaque, bool close, const char *path, const char *text, size_t len);

struct walk {
    XML_Parser parser;
    xml_fn fn;
    void *opaque;
    int err;                      /* the first failure; the parser is stopped */
    size_t depth, plen;
    size_t marks[XML_DEPTH_MAX];  /* path length before each open element */
    char path[XML_PATH_MAX];
    bool leaf;                    /* the innermost open element has no child yet */
    struct s3_str text;           /* character data since the last tag */
};

static void walk_fail(struct walk *w, int err)
{
    if (!w->err)
        w->err = err;
    /* expat may still call a handler or two (the end of an empty element):
     * each returns at once on w->err. */
    XML_StopParser(w->parser, XML_FALSE);
}

static void text_reset(struct walk *w)
{
    w->text.len = 0;
    if (w->text.p)
        w->text.p[0] = '\0';
}

static bool text_blank(const struct walk *w)
{
    for (size_t i = 0; i < w->text.len; i++) {
        char c = w->text.p[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
            return false;
    }
    return true;
}

static void XMLCALL on_start(void *opaque, const XML_Char *name, const XML_Char **atts)
{
    struct walk *w = opaque;
    if (w->err)
        return;
    /* S3 has no mixed content: text beside child elements is not an answer
     * (and reading "<Key>a<x/>b</Key>" as "b" would misread one). */
    if (!text_blank(w)) {
        walk_fail(w, EBADMSG);
        return;
    }
    const char *local = strrchr(name, XML_NS_SEP);
    local = local ? local + 1 : name;
    size_t nlen = strlen(local);
    if (w->depth == XML_DEPTH_MAX || w->plen + 1 + nlen >= sizeof w->path) {
        walk_fail(w, EBADMSG);
        return;
    }
    w->marks[w->depth++] = w->plen;
    if (w->depth > 1)
        w->path[w->plen++] = '/';
    memcpy(w->path + w->plen, local, nlen + 1);
    w->plen += nlen;
    w->leaf = true;
    text_reset(w);
    int err = w->fn(w->opaque, false, w->path, "", 0);
    if (err)
        walk_fail(w, err);
}

static void XMLCALL on_end(void *opaque, const XML_Char *name)
{
    struct walk *w = opaque;
    if (w->err)
        return;
    if (!w->leaf && !text_blank(w)) {
        walk_fail(w, EBADMSG);
        return;
    }
    /* Only a leaf has text: the blanks between children are layout. */
    int err = w->leaf ? w->fn(w->opaque, true, w->path, w->text.p ? w->text.p : "", w->text.len)
                      : w->fn(w->opaque, true, w->path, "", 0);
    if (err) {
        walk_fail(w, err);
        return;
    }
    w->plen = w->marks[--w->depth];
    w->path[w->plen] = '\0';
    w->leaf = false;
    text_reset(w);
}

static void XMLCALL on_text(void *opaque, const XML_Char *s, int len)
{
    struct walk *w = opaque;
    if (w->err)
        return;
    size_t n = (size_t)len;
    /* expat never passes a NUL (neither a raw one nor &#0; is XML), but the
     * readers hand text on as C strings: a NUL would cut a key silently. */
    if (n > S3_XML_TEXT_MAX - w->text.len || memchr(s, '\0', n)) {
        walk_fail(w, EBADMSG);
        return;
    }
    s3_str_add(&w->text, s, n);
    if (w->text.err)
        walk_fail(w, w->text.err);
}

/* S3 never sends a DTD, and a DTD is where entity declarations live (the
 * billion laughs, external entities): refused before its internal subset is
 * read, so no entity but the five predefined ones can ever be referenced.
 * (expat >= 2.4 would also cap the amplification; it never gets that far.) */
static void XMLCALL on_doctype(void *opaque, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    walk_fail(opaque, EBADMSG);
}

static int xml_walk(const char *xml, size_t len, xml_fn fn, void *opaque)
{
    /* The callers cap the body before this (s3.c: S3_TEXTBODY_MAX for
     * listings and delete results, which is S3_XML_DOC_MAX; S3_ERRBODY_MAX
     * for error bodies); the check here keeps the parser's own promise, and
     * XML_Parse's int length, whoever calls it. */
    if (len > S3_XML_DOC_MAX)
        return EBADMSG;
    /* "UTF-8" as if the protocol said so: S3 answers in UTF-8, and expat
     * then ignores an encoding declaration instead of switching decoders
     * (a UTF-16 byte order mark still wins; the text is UTF-8 anyway). */
    struct walk w = {.parser = XML_ParserCreateNS("UTF-8", XML_NS_SEP), .fn = fn,
                     .opaque = opaque, .text = S3_STR_INIT};
    if (!w.parser)
        return ENOMEM;
    XML_SetUserData(w.parser, &w);
    XML_SetElementHandler(w.parser, on_start, on_end);
    XML_SetCharacterDataHandler(w.parser, on_text);
    XML_SetStartDoctypeDeclHandler(w.parser, on_doctype);
    enum XML_Status st = XML_Parse(w.parser, xml, (int)len, XML_TRUE);
    int err = w.err;
    if (!err && st != XML_STATUS_OK)
        err = XML_GetErrorCode(w.parser) == XML_ERROR_NO_MEMORY ? ENOMEM : EBADMSG;
    XML_ParserFree(w.parser);
    s3_str_free(&w.text);
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
    size_t added;       /* Contents seen by this call */
    bool *truncated;
    char *key;          /* of the Contents being read */
    uint64_t size;
    bool have_size;
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
            if (c->added++ == S3_XML_ENTRIES_MAX)
                return EBADMSG;
            free(c->key);
            c->key = NULL;
            c->have_size = false;
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
        /* S3 refuses longer keys at PUT: a longer one is not a listing. */
        if (len == 0 || len > OBJSTORE_KEY_MAX || c->key)
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
    size_t entries;     /* Deleted and Error seen */
    struct s3_delete_error e;
};

static int delete_ev(void *opaque, bool close, const char *path, const char *text, size_t len)
{
    struct delete_ctx *c = opaque;
    if (!close) {
        if (!strchr(path, '/') && strcmp(path, "DeleteResult") != 0)
            return EBADMSG;
        /* One entry per key asked (at most OBJSTORE_DELETE_MANY_MAX): more
         * would only flood the log with an error line each. */
        bool error = !strcmp(path, "DeleteResult/Error");
        if ((error || !strcmp(path, "DeleteResult/Deleted")) &&
            c->entries++ == S3_XML_ENTRIES_MAX)
            return EBADMSG;
        if (error)
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
