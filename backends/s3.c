/* s3.c - the object store in an S3 bucket (AWS S3, Ceph RGW, MinIO), over
 * HTTP(S) with libcurl; signing is libcurl's own CURLOPT_AWS_SIGV4.
 *
 * What SigV4 through libcurl 7.88 needs (found against RGW 16.2, see
 * tests/rgw/): every request carries x-amz-content-sha256 (the body's
 * SHA-256 hex, UNSIGNED-PAYLOAD, or the hash of "" when there is no body):
 * without it the server and curl disagree about the payload hash. curl
 * signs the path and the query string exactly as given, so both are built
 * here already in canonical form: keys percent-encoded except
 * A-Za-z0-9-_.~/ (s3_encode_path), query parameters sorted by name and
 * encoded with '/' as %2F, a valueless sub-resource written "delete=".
 * curl signs every header we add (x-amz-security-token, Content-MD5,
 * Content-Type), and also an empty "Expect:" (which breaks the signature),
 * so curl's own Expect: 100-continue stays as it is.
 *
 * Requests run on a pool of curl easy handles, at most `connections` of
 * them, one per running request and kept between requests so each keeps
 * its connection alive; a caller that finds none free waits. The handles
 * share DNS and TLS session caches through a CURLSH, whose locks are one
 * mutex per kind of shared data. curl_easy_reset() before each request
 * clears options but keeps the connection, the caches and the share.
 *
 * Each operation retries retriable failures itself (see objstore.h, "s3"),
 * releasing its handle during the back-off so that waiting does not block
 * other callers. The whole error table is in s3_errors.c.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S3_CONNECTIONS_DEFAULT 8
#define S3_CONNECTIONS_MAX 256
#define S3_ATTEMPTS_DEFAULT 4
#define S3_ATTEMPTS_MAX 100
#define S3_RETRY_BASE_MS_DEFAULT 100
#define S3_RETRY_CAP_MS_DEFAULT 5000
/* OBJSTORE_ESLOWDOWN: the server asked for less traffic; back off harder. */
#define S3_SLOWDOWN_FACTOR 10
#define S3_CONNECT_TIMEOUT_MS_DEFAULT 10000
#define S3_LOW_SPEED_BYTES_DEFAULT 1
#define S3_LOW_SPEED_TIME_S_DEFAULT 30
/* Error bodies are a few hundred bytes; more is kept only this far. */
#define S3_ERRBODY_MAX (16 * 1024)
/* What the XML parser reads at most; a page of 1000 keys of 1024 bytes with
 * their metadata stays far below. */
#define S3_TEXTBODY_MAX S3_XML_DOC_MAX
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_UNSIGNED "UNSIGNED-PAYLOAD"
#define S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* One pooled curl handle and the socket of its connection (for ack_now). */
struct s3_handle {
    CURL *easy;           /* NULL until first needed */
    curl_socket_t fd;     /* the connection's socket, or CURL_SOCKET_BAD */
};

struct s3 {
    struct objstore pub;
    char *base;          /* URL of the bucket, no trailing '/':
                          * "http://h:p/bucket" or "https://bucket.h" */
    bool path_style;
    char *bucket;
    char *prefix;        /* "" or "a/b": keys become "a/b/<key>" */
    size_t prefix_len;
    char *region;
    char *sigv4;         /* "aws:amz:<region>:s3" */
    char *ca_file;
    bool insecure;
    bool unsigned_payload;
    struct s3_creds creds;
    unsigned attempts, retry_base_ms, retry_cap_ms;
    unsigned connect_timeout_ms, low_speed_bytes, low_speed_time_s, request_timeout_s;

    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    struct s3_handle *handles; /* max_handles of them; the first `created` live */
    struct s3_handle **idle;   /* stack of free handles */
    unsigned nidle;
    unsigned created;
    unsigned max_handles;

    atomic_uint_fast64_t rng;
    atomic_bool no_multi_delete; /* the store answered NotImplemented */
    char name[];         /* "s3:http://h:p/bucket/prefix" */
};

/* --------------------------------------------------------------- one-time */

/* libcurl must be initialised once per process before any other call, and
 * curl_global_init is not safe to race with itself. pthread_once makes the
 * one call; this flag and its result are the only process-wide state of the
 * module. curl_global_cleanup is never called: other parts of the process
 * may use libcurl or OpenSSL, and the OS reclaims everything at exit. */
static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_init_rc;

static void s3_curl_init(void)
{
    s3_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ----------------------------------------------------------------- helpers */

static uint64_t s3_rand(struct s3 *s)
{
    /* splitmix64 over an atomic counter: jitter, not secrecy. */
    uint64_t z = atomic_fetch_add(&s->rng, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void s3_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int s3_digest(const EVP_MD *md, const void *data, size_t len, unsigned char *out)
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, md, NULL) == 1 ? 0 : ENOMEM;
}

static bool ip_literal(const char *host)
{
    unsigned char a[16];
    return host[0] == '[' || inet_pton(AF_INET, host, a) == 1 || strcasecmp(host, "localhost") == 0;
}

/* "<prefix>/<key>" (or key) into *full; EINVAL if S3 could not hold it. */
static int s3_full_key(struct s3 *s, const char *key, struct s3_str *full)
{
    if (s->prefix_len) {
        s3_str_add(full, s->prefix, s->prefix_len);
        s3_str_add(full, "/", 1);
    }
    s3_str_adds(full, key);
    if (full->err)
        return full->err;
    return full->len > OBJSTORE_KEY_MAX ? EINVAL : 0;
}

/* ------------------------------------------------------------ handle pool */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *opaque)
{
    struct s3 *s = opaque;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&s->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *opaque)
{
    struct s3 *s = opaque;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&s->share_mu[data]);
}

/* A free handle, created on first need; waits while all are busy. NULL
 * only if curl cannot allocate one. */
static struct s3_handle *pool_get(struct s3 *s)
{
    pthread_mutex_lock(&s->pool_mu);
    while (s->nidle == 0 && s->created == s->max_handles)
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
    struct s3_handle *h = NULL;
    if (s->nidle) {
        h = s->idle[--s->nidle];
    } else {
        /* Created under the lock: rare (once per handle), and it keeps
         * handles[0 .. created) all live for s3_free. */
        h = &s->handles[s->created];
        h->fd = CURL_SOCKET_BAD;
        h->easy = curl_easy_init();
        if (h->easy && curl_easy_setopt(h->easy, CURLOPT_SHARE, s->share) != CURLE_OK) {
            curl_easy_cleanup(h->easy);
            h->easy = NULL;
        }
        if (h->easy)
            s->created++;
        else
            h = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    return h;
}

static void pool_put(struct s3 *s, struct s3_handle *h)
{
    pthread_mutex_lock(&s->pool_mu);
    s->idle[s->nidle++] = h;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

/* ---------------------------------------------------------------- requests */

/* Where a successful answer's body goes. */
enum s3_sink {
    SINK_NONE,  /* discarded */
    SINK_BUF,   /* the whole object into an objstore_buf, at most max */
    SINK_RANGE, /* into a caller's buffer of rlen bytes */
    SINK_TEXT,  /* an XML answer into a string */
};

/* One logical request, repeated on failure. */
struct s3_req {
    const char *op;          /* for the log: "put", "get", ... */
    const char *key;         /* the caller's key, or NULL for the bucket */
    const char *method;      /* GET PUT HEAD DELETE POST */
    const char *url;
    const void *body;        /* PUT, POST */
    size_t body_len;
    const char *content_type;
    const char *content_md5;
    const char *range;       /* "a-b" or NULL */
    bool if_none_match;      /* PUT only if the key is absent ("If-None-Match: *") */
    enum s3_sink sink;
    struct objstore_buf *buf;
    size_t max;
    unsigned char *rbuf;
    size_t rlen;
    uint64_t roff;
    struct s3_str *text;
    /* Answers (status, S3 code) that this operation takes as success;
     * NULL: only 2xx. */
    bool (*accept)(long status, const char *code);
    int quiet_err;           /* an error the caller handles and logs itself */
    /* Results of the last attempt: */
    long status;
    char code[64];
    size_t got;              /* body bytes delivered to the sink */
    int64_t content_length;  /* -1 if not announced */
};

/* The state of one attempt, seen by curl's callbacks. */
struct s3_call {
    struct s3_req *r;
    CURL *h;
    struct s3_handle *handle;
    size_t body_off;         /* upload position */
    bool started;            /* first body byte seen: status known */
    bool to_err;             /* the body is an error document */
    struct s3_str errbody;
    int cb_err;              /* failure decided in a callback */
    const char *cb_why;
    bool range_done;         /* a 200 to a range request: all we need read */
    uint64_t skip;           /* bytes of a 200 to skip before the range */
    int64_t cr_start;        /* first byte of Content-Range, or -1 */
    char reqid[80];          /* x-amz-request-id */
};

static size_t on_read(char *dst, size_t size, size_t nmemb, void *opaque)
{
    struct s3_call *c = opaque;
    size_t room = size * nmemb, left = c->r->body_len - c->body_off;
    size_t n = left < room ? left : room;
    memcpy(dst, (const char *)c->r->body + c->body_off, n);
    c->body_off += n;
    return n;
}

/* curl rewinds the body when it must send it again (a reused connection
 * that turned out dead, an auth round). */
static int on_seek(void *opaque, curl_off_t off, int origin)
{
    struct s3_call *c = opaque;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > c->r->body_len)
        return CURL_SEEKFUNC_FAIL;
    c->body_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
                      size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return false;
    const char *v = line + k + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    *val = v;
    *vlen = (size_t)(e - v);
    return true;
}

/* Servers that write the header and the body of an answer separately,
 * without TCP_NODELAY (RGW's beast frontend does), hold the body until the
 * header is acknowledged (Nagle), while Linux delays that ACK by up to
 * 40 ms once a kept-alive connection looks interactive: every small GET on
 * a reused connection would take 40 ms instead of 2. Asking for a quick ACK
 * as the status line arrives sends the pending ACK at once. Best effort:
 * no socket yet known, or another OS, just means no speed-up. */
static void ack_now(struct s3_handle *h)
{
#ifdef TCP_QUICKACK
    if (h->fd != CURL_SOCKET_BAD) {
        int one = 1;
        setsockopt(h->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
#endif
}

/* The socket of a new connection of this handle. (CURLINFO_ACTIVESOCKET
 * does not know it while the transfer runs.) */
static int on_sockopt(void *opaque, curl_socket_t fd, curlsocktype purpose)
{
    struct s3_handle *h = opaque;
    h->fd = fd;
    return CURL_SOCKOPT_OK;
}

static int on_closesocket(void *opaque, curl_socket_t fd)
{
    struct s3_handle *h = opaque;
    if (h->fd == fd)
        h->fd = CURL_SOCKET_BAD;
    return close(fd);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *opaque)
{
    struct s3_call *c = opaque;
    size_t n = size * nmemb;
    const char *v;
    size_t vlen;
    if (n > 5 && memcmp(line, "HTTP/", 5) == 0)
        ack_now(c->handle);
    if (header_is(line, n, "x-amz-request-id", &v, &vlen)) {
        if (vlen >= sizeof c->reqid)
            vlen = sizeof c->reqid - 1;
        memcpy(c->reqid, v, vlen);
        c->reqid[vlen] = '\0';
    } else if (header_is(line, n, "content-range", &v, &vlen)) {
        /* "bytes START-END/TOTAL" */
        c->cr_start = -1;
        if (vlen > 6 && strncasecmp(v, "bytes ", 6) == 0) {
            int64_t x = 0;
            size_t i = 6;
            for (; i < vlen && v[i] >= '0' && v[i] <= '9' && x < INT64_MAX / 10; i++)
                x = x * 10 + (v[i] - '0');
            if (i > 6 && i < vlen && v[i] == '-')
                c->cr_start = x;
        }
    }
    return n;
}

/* The first body byte of a 2xx answer: decide where the body goes. */
static bool begin_body(struct s3_call *c)
{
    struct s3_req *r = c->r;
    curl_off_t cl = -1;
    curl_easy_getinfo(c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (r->sink == SINK_BUF && cl >= 0) {
        if ((uint64_t)cl > r->max) {
            c->cb_err = EFBIG;
            return false;
        }
        if ((size_t)cl > r->buf->cap) {
            void *p = realloc(r->buf->data, (size_t)cl);
            if (!p) {
                c->cb_err = ENOMEM;
                return false;
            }
            r->buf->data = p;
            r->buf->cap = (size_t)cl;
        }
    }
    if (r->sink == SINK_RANGE) {
        if (r->status == 200) {
            c->skip = r->roff; /* the server ignored Range: whole object */
        } else if (c->cr_start != (int64_t)r->roff) {
            c->cb_err = EPROTO;
            c->cb_why = "206 answer for another range";
            return false;
        }
    }
    return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct s3_call *c = opaque;
    struct s3_req *r = c->r;
    size_t n = size * nmemb;
    if (!c->started) {
        c->started = true;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
        c->to_err = r->status < 200 || r->status > 299;
        if (!c->to_err && !begin_body(c))
            return 0;
    }
    if (c->to_err) {
        size_t room = S3_ERRBODY_MAX - c->errbody.len;
        s3_str_add(&c->errbody, data, n < room ? n : room);
        return n;
    }
    switch (r->sink) {
    case SINK_NONE:
        return n;
    case SINK_BUF: {
        struct objstore_buf *b = r->buf;
        if (n > r->max - r->got) {
            c->cb_err = EFBIG;
            return 0;
        }
        if (r->got + n > b->cap) {
            /* No Content-Length (chunked): grow, doubling, up to max. */
            size_t cap = b->cap ? b->cap : 65536;
            while (cap < r->got + n)
                cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (cap > r->max)
                cap = r->max;
            void *p = realloc(b->data, cap);
            if (!p) {
                c->cb_err = ENOMEM;
                return 0;
            }
            b->data = p;
            b->cap = cap;
        }
        memcpy((char *)b->data + r->got, data, n);
        r->got += n;
        return n;
    }
    case SINK_RANGE: {
        size_t i = 0;
        if (c->skip) {
            i = c->skip < n ? (size_t)c->skip : n;
            c->skip -= i;
        }
        size_t take = n - i, room = r->rlen - r->got;
        if (take > room) {
            if (r->status == 200) {
                take = room; /* the rest of the object is not wanted */
                c->range_done = true;
            } else {
                c->cb_err = EPROTO;
                c->cb_why = "206 answer longer than the range";
                return 0;
            }
        }
        memcpy(r->rbuf + r->got, data + i, take);
        r->got += take;
        if (c->range_done)
            return 0; /* stop reading; the connection is dropped */
        return n;
    }
    case SINK_TEXT:
        if (r->text->len + n > S3_TEXTBODY_MAX) {
            c->cb_err = EBADMSG;
            c->cb_why = "answer too large";
            return 0;
        }
        s3_str_add(r->text, data, n);
        if (r->text->err) {
            c->cb_err = r->text->err;
            return 0;
        }
        return n;
    }
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *v,
                                     int *err)
{
    if (*err)
        return l;
    char line[2048];
    if ((size_t)snprintf(line, sizeof line, "%s: %s", name, v) >= sizeof line) {
        *err = EINVAL;
        return l;
    }
    struct curl_slist *n = curl_slist_append(l, line);
    explicit_bzero(line, sizeof line); /* may have held the session token */
    if (!n) {
        *err = ENOMEM;
        return l;
    }
    return n;
}

static void free_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

#define SETOPT(h, opt, val) (rc = rc ? rc : curl_easy_setopt((h), (opt), (val)))

/* One attempt of r on handle h. Returns 0 or an errno; detail says what
 * happened, for the log. */
static int s3_attempt(struct s3 *s, struct s3_req *r, struct s3_handle *handle,
                      const char *payload_hash, char *detail, size_t dlen)
{
    CURL *h = handle->easy;
    struct s3_call c = {.r = r, .h = h, .handle = handle, .errbody = S3_STR_INIT, .cr_start = -1};
    r->status = 0;
    r->code[0] = '\0';
    r->got = 0;
    r->content_length = -1;
    if (r->text)
        r->text->len = 0;
    detail[0] = '\0';

    int err = 0;
    struct curl_slist *hdrs = NULL;
    hdrs = add_header(hdrs, "x-amz-content-sha256", payload_hash, &err);
    if (s->creds.session_token)
        hdrs = add_header(hdrs, "x-amz-security-token", s->creds.session_token, &err);
    if (r->content_type)
        hdrs = add_header(hdrs, "Content-Type", r->content_type, &err);
    if (r->content_md5)
        hdrs = add_header(hdrs, "Content-MD5", r->content_md5, &err);
    if (r->if_none_match)
        hdrs = add_header(hdrs, "If-None-Match", "*", &err);
    if (err) {
        free_headers(hdrs);
        snprintf(detail, dlen, "building headers: %s", objstore_strerror(err));
        return err;
    }

    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_OK;
    curl_easy_reset(h);
    SETOPT(h, CURLOPT_URL, r->url);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, (long)s->low_speed_bytes);
    SETOPT(h, CURLOPT_LOW_SPEED_TIME, (long)s->low_speed_time_s);
    SETOPT(h, CURLOPT_TIMEOUT, (long)s->request_timeout_s);
    SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(h, CURLOPT_AWS_SIGV4, s->sigv4);
    SETOPT(h, CURLOPT_USERNAME, s->creds.access_key);
    SETOPT(h, CURLOPT_PASSWORD, s->creds.secret_key);
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, &c);
    SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(h, CURLOPT_HEADERDATA, &c);
    /* Kept valid past this attempt: curl may close the socket later. */
    SETOPT(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    SETOPT(h, CURLOPT_SOCKOPTDATA, handle);
    SETOPT(h, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
    SETOPT(h, CURLOPT_CLOSESOCKETDATA, handle);
    if (s->ca_file)
        SETOPT(h, CURLOPT_CAINFO, s->ca_file);
    if (s->insecure) {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!strcmp(r->method, "HEAD")) {
        SETOPT(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(r->method, "PUT")) {
        SETOPT(h, CURLOPT_UPLOAD, 1L);
        SETOPT(h, CURLOPT_READFUNCTION, on_read);
        SETOPT(h, CURLOPT_READDATA, &c);
        SETOPT(h, CURLOPT_SEEKFUNCTION, on_seek);
        SETOPT(h, CURLOPT_SEEKDATA, &c);
        SETOPT(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (!strcmp(r->method, "POST")) {
        SETOPT(h, CURLOPT_POST, 1L);
        SETOPT(h, CURLOPT_POSTFIELDS, r->body);
        SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (!strcmp(r->method, "DELETE")) {
        SETOPT(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    if (r->range)
        SETOPT(h, CURLOPT_RANGE, r->range);
    if (rc != CURLE_OK) {
        free_headers(hdrs);
        snprintf(detail, dlen, "curl setup: %s", curl_easy_strerror(rc));
        return s3_map_curl(rc, 0);
    }

    rc = curl_easy_perform(h);
    free_headers(hdrs);
    /* Nothing below may use curl's copies of these pointers. */
    if (!c.started)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t cl = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    r->content_length = cl;
    const char *rid = c.reqid[0] ? c.reqid : NULL;

    if (c.cb_err) {
        err = c.cb_err;
        if (err == EFBIG && r->sink == SINK_BUF)
            snprintf(detail, dlen, "object of %s%" PRId64 " bytes exceeds the limit of %zu",
                     cl >= 0 ? "" : "more than ", cl >= 0 ? (int64_t)cl : (int64_t)r->max,
                     r->max);
        else
            snprintf(detail, dlen, "HTTP %ld: %s", r->status,
                     c.cb_why ? c.cb_why : objstore_strerror(err));
    } else if (c.range_done) {
        err = 0;
    } else if (rc != CURLE_OK) {
        long os = 0;
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os);
        err = s3_map_curl((int)rc, os);
        if (rc == CURLE_PARTIAL_FILE)
            snprintf(detail, dlen, "HTTP %ld: body cut short (%s)", r->status,
                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
        else
            snprintf(detail, dlen, "%s (%s)", errbuf[0] ? errbuf : curl_easy_strerror(rc),
                     objstore_strerror(err));
    } else if (r->status >= 200 && r->status <= 299) {
        err = 0;
    } else {
        char msg[256] = "";
        if (c.errbody.len)
            s3_xml_parse_error(c.errbody.p, c.errbody.len, r->code, sizeof r->code, msg,
                               sizeof msg);
        if (r->accept && r->accept(r->status, r->code)) {
            err = 0;
        } else {
            struct s3_errmap m = s3_map_http(r->status, r->code);
            err = m.err;
            const char *hint = m.hint;
            char bucket_hint[160];
            if (!strcmp(r->code, "NoSuchBucket")) {
                snprintf(bucket_hint, sizeof bucket_hint,
                         "bucket '%s' does not exist (create it or use the create option)",
                         s->bucket);
                hint = bucket_hint;
            }
            snprintf(detail, dlen, "HTTP %ld%s%s%s%s%s%s%s%s", r->status, r->code[0] ? " " : "",
                     r->code, msg[0] ? " (" : "", msg, msg[0] ? ")" : "", hint ? ": " : "",
                     hint ? hint : "", !r->code[0] && c.errbody.len ? " (body not S3 XML)" : "");
        }
    }
    if (err && rid) {
        size_t used = strlen(detail);
        if (used < dlen)
            snprintf(detail + used, dlen - used, " [request %s]", rid);
    }
    s3_str_free(&c.errbody);
    return err;
}

/* Run r, retrying retriable failures; log the outcome of a failure once. */
static int s3_request(struct s3 *s, struct s3_req *r)
{
    char hash[65];
    if (!r->body_len) {
        snprintf(hash, sizeof hash, "%s", S3_EMPTY_SHA256);
    } else if (s->unsigned_payload) {
        snprintf(hash, sizeof hash, "%s", S3_UNSIGNED);
    } else {
        unsigned char d[32];
        if (s3_digest(EVP_sha256(), r->body, r->body_len, d))
            return ENOMEM;
        s3_hex(d, sizeof d, hash);
    }
    char detail[768];
    const char *key = r->key ? r->key : "(bucket)";
    unsigned attempt = 1;
    int err;
    for (;; attempt++) {
        struct s3_handle *h = pool_get(s);
        if (!h) {
            err = ENOMEM;
            snprintf(detail, sizeof detail, "cannot create a curl handle");
            break;
        }
        err = s3_attempt(s, r, h, hash, detail, sizeof detail);
        pool_put(s, h);
        if (!err || !objstore_err_retriable(err) || attempt >= s->attempts)
            break;
        uint64_t base = (uint64_t)s->retry_base_ms * (err == OBJSTORE_ESLOWDOWN ? S3_SLOWDOWN_FACTOR : 1);
        uint64_t ms = s3_backoff_ms(attempt, base, s->retry_cap_ms, s3_rand(s));
        objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_INFO,
                      "%s: %s %s: %s (attempt %u/%u, retrying in %.2fs)", s->name, r->op, key,
                      detail, attempt, s->attempts, (double)ms / 1000);
        s3_sleep_ms(ms);
    }
    if (err && err != r->quiet_err) {
        char tries[48] = "";
        if (attempt > 1)
            snprintf(tries, sizeof tries, " (after %u attempts)", attempt);
        objstore_logf(s->pub.log, s->pub.log_opaque, objstore_err_log_level(err), "%s: %s %s: %s%s",
                      s->name, r->op, key, detail, tries);
    }
    return err;
}

/* The URL of a key, or of the bucket (key NULL) with a query. */
static int s3_url(struct s3 *s, const char *key, const char *query, struct s3_str *url)
{
    s3_str_adds(url, s->base);
    if (key) {
        struct s3_str full = S3_STR_INIT;
        int err = s3_full_key(s, key, &full);
        if (err) {
            s3_str_free(&full);
            return err;
        }
        s3_str_add(url, "/", 1);
        s3_encode_path(url, full.p);
        s3_str_free(&full);
    } else if (!s->path_style) {
        s3_str_add(url, "/", 1);
    }
    if (query) {
        s3_str_add(url, "?", 1);
        s3_str_adds(url, query);
    }
    return url->err;
}

static int s3_key_too_long(struct s3 *s, const char *op, const char *key, int err)
{
    objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_ERROR,
                  "%s: %s %s: %s", s->name, op, key,
                  err == EINVAL ? "key with the store's prefix is longer than S3's 1024 bytes"
                                : objstore_strerror(err));
    return err;
}

/* --------------------------------------------------------------------- ops */

static int s3_write(struct objstore *os, const char *op, const char *key, const void *buf,
                    size_t len, bool create)
{
    struct s3 *s = os->priv;
    struct s3_str url = S3_STR_INIT;
    int err = s3_url(s, key, NULL, &url);
    if (!err) {
        /* EEXIST is the answer a create asks for, not a failure to log. */
        struct s3_req r = {.op = op, .key = key, .method = "PUT", .url = url.p,
                           .body = len ? buf : "", .body_len = len, .sink = SINK_NONE,
                           .if_none_match = create, .quiet_err = create ? EEXIST : 0};
        err = s3_request(s, &r);
    } else {
        s3_key_too_long(s, op, key, err);
    }
    s3_str_free(&url);
    return err;
}

static int s3_put(struct objstore *os, const char *key, const void *buf, size_t len)
{
    return s3_write(os, "put", key, buf, len, false);
}

static int s3_create(struct objstore *os, const char *key, const void *buf, size_t len)
{
    return s3_write(os, "create", key, buf, len, true);
}

static int s3_get(struct objstore *os, const char *key, size_t max, struct objstore_buf *out)
{
    struct s3 *s = os->priv;
    struct s3_str url = S3_STR_INIT;
    int err = s3_url(s, key, NULL, &url);
    if (!err) {
        struct s3_req r = {.op = "get", .key = key, .method = "GET", .url = url.p,
                           .sink = SINK_BUF, .buf = out, .max = max};
        err = s3_request(s, &r);
        out->len = err ? 0 : r.got;
    } else {
        s3_key_too_long(s, "get", key, err);
    }
    s3_str_free(&url);
    return err;
}

static int s3_head(struct objstore *os, const char *key, uint64_t *size)
{
    struct s3 *s = os->priv;
    struct s3_str url = S3_STR_INIT;
    int err = s3_url(s, key, NULL, &url);
    if (!err) {
        struct s3_req r = {.op = "head", .key = key, .method = "HEAD", .url = url.p};
        err = s3_request(s, &r);
        if (!err && r.content_length < 0) {
            err = EPROTO;
            objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_WARN,
                          "%s: head %s: HTTP %ld without Content-Length", s->name, key, r.status);
        }
        if (!err)
            *size = (uint64_t)r.content_length;
    } else {
        s3_key_too_long(s, "head", key, err);
    }
    s3_str_free(&url);
    return err;
}

/* 416: the range starts at or past the end (also: any range of an empty
 * object). The contract makes that a read of 0 bytes. */
static bool accept_416(long status, const char *code)
{
    return status == 416;
}

static int s3_get_range(struct objstore *os, const char *key, uint64_t off, size_t len,
                        void *buf, size_t *got)
{
    struct s3 *s = os->priv;
    if (len == 0) {
        uint64_t size; /* nothing to read, but a missing key is still ENOENT */
        return s3_head(os, key, &size);
    }
    uint64_t last = off + len - 1 < off ? UINT64_MAX - 1 : off + len - 1;
    char range[48];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, off, last);
    struct s3_str url = S3_STR_INIT;
    int err = s3_url(s, key, NULL, &url);
    if (!err) {
        struct s3_req r = {.op = "range", .key = key, .method = "GET", .url = url.p,
                           .range = range, .sink = SINK_RANGE, .rbuf = buf, .rlen = len,
                           .roff = off, .accept = accept_416};
        err = s3_request(s, &r);
        *got = err || r.status == 416 ? 0 : r.got;
    } else {
        s3_key_too_long(s, "range", key, err);
    }
    s3_str_free(&url);
    return err;
}

/* S3 answers 204 for a missing key; some stores 404 NoSuchKey. A missing
 * bucket stays an error. */
static bool accept_missing_key(long status, const char *code)
{
    return status == 404 && strcmp(code, "NoSuchBucket") != 0;
}

static int s3_del(struct objstore *os, const char *key)
{
    struct s3 *s = os->priv;
    struct s3_str url = S3_STR_INIT;
    int err = s3_url(s, key, NULL, &url);
    if (!err) {
        struct s3_req r = {.op = "delete", .key = key, .method = "DELETE", .url = url.p,
                           .accept = accept_missing_key};
        err = s3_request(s, &r);
    } else {
        s3_key_too_long(s, "delete", key, err);
    }
    s3_str_free(&url);
    return err;
}

/* The caller's view of a full key: without "<prefix>/". NULL if the key is
 * not under the prefix. */
static const char *s3_strip(struct s3 *s, const char *full)
{
    if (!s->prefix_len)
        return full;
    if (strncmp(full, s->prefix, s->prefix_len) != 0 || full[s->prefix_len] != '/')
        return NULL;
    return full + s->prefix_len + 1;
}

static int s3_list(struct objstore *os, const char *prefix, const char *after, size_t max,
                   struct objstore_list *out)
{
    struct s3 *s = os->priv;
    struct s3_str q = S3_STR_INIT, full = S3_STR_INIT, url = S3_STR_INIT, text = S3_STR_INIT;
    struct objstore_list raw = OBJSTORE_LIST_INIT;
    int err = 0;

    /* Sorted by name: list-type < max-keys < prefix < start-after. */
    s3_str_addf(&q, "list-type=2&max-keys=%zu&prefix=", max);
    if (s->prefix_len) {
        s3_str_add(&full, s->prefix, s->prefix_len);
        s3_str_add(&full, "/", 1);
    }
    s3_str_adds(&full, prefix);
    s3_encode_query(&q, full.p ? full.p : "");
    if (after) {
        full.len = 0;
        if (s->prefix_len) {
            s3_str_add(&full, s->prefix, s->prefix_len);
            s3_str_add(&full, "/", 1);
        }
        s3_str_adds(&full, after);
        s3_str_adds(&q, "&start-after=");
        s3_encode_query(&q, full.p);
    }
    err = q.err ? q.err : full.err;
    if (!err)
        err = s3_url(s, NULL, q.p, &url);
    if (err) {
        objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_ERROR, "%s: list %s: %s",
                      s->name, prefix, objstore_strerror(err));
        goto out;
    }
    struct s3_req r = {.op = "list", .key = prefix[0] ? prefix : "(all)", .method = "GET",
                       .url = url.p, .sink = SINK_TEXT, .text = &text};
    err = s3_request(s, &r);
    if (err)
        goto out;
    bool truncated = false;
    err = s3_xml_parse_list(text.p ? text.p : "", text.len, &raw, &truncated);
    if (!err && truncated && raw.count == 0)
        err = EBADMSG; /* nothing to continue after: would loop forever */
    if (err) {
        objstore_logf(s->pub.log, s->pub.log_opaque, objstore_err_log_level(err),
                      "%s: list %s: unreadable ListBucketResult (%zu bytes): %s", s->name,
                      prefix, text.len, objstore_strerror(err));
        goto out;
    }
    out->entries = raw.count ? calloc(raw.count, sizeof *out->entries) : NULL;
    if (raw.count && !out->entries) {
        err = ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < raw.count; i++) {
        const char *k = s3_strip(s, raw.entries[i].key);
        if (!k || objstore_key_check(k) != 0) {
            /* Put there by something else: no key of ours looks like it. */
            objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_DEBUG,
                          "%s: list %s: skipping object \"%s\" (not a valid key)", s->name,
                          prefix, raw.entries[i].key);
            continue;
        }
        out->entries[out->count].key = strdup(k);
        if (!out->entries[out->count].key) {
            err = ENOMEM;
            goto out;
        }
        out->entries[out->count++].size = raw.entries[i].size;
    }
    if (truncated) {
        const char *last = s3_strip(s, raw.entries[raw.count - 1].key);
        out->next = strdup(last ? last : "");
        if (!out->next)
            err = ENOMEM;
    }
out:
    if (err == ENOMEM)
        objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_ERROR, "%s: list %s: %s",
                      s->name, prefix, objstore_strerror(err));
    objstore_list_free(&raw);
    s3_str_free(&q);
    s3_str_free(&full);
    s3_str_free(&url);
    s3_str_free(&text);
    return err;
}

/* The error a batch reports (as objstore_delete_many): the first one,
 * unless a later one is permanent and the first was not. */
static int merge_err(int have, int err)
{
    if (!have)
        return err;
    if (err && objstore_err_retriable(have) && !objstore_err_retriable(err))
        return err;
    return have;
}

struct delete_many_ctx {
    struct s3 *s;
    int err;
};

/* One <Error> of a DeleteResult: what the code would mean as an answer to
 * a single DELETE. */
static int on_delete_error(void *opaque, const struct s3_delete_error *e)
{
    struct delete_many_ctx *d = opaque;
    struct s3 *s = d->s;
    if (!strcmp(e->code, "NoSuchKey"))
        return 0;
    static const struct {
        const char *code;
        long status;
    } statuses[] = {
        {"AccessDenied", 403},  {"InternalError", 500},  {"SlowDown", 503},
        {"ServiceUnavailable", 503}, {"NoSuchBucket", 404}, {"QuotaExceeded", 403},
    };
    long status = 400;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (!strcmp(e->code, statuses[i].code))
            status = statuses[i].status;
    struct s3_errmap m = s3_map_http(status, e->code);
    const char *k = s3_strip(s, e->key);
    objstore_logf(s->pub.log, s->pub.log_opaque, objstore_err_log_level(m.err),
                  "%s: delete %s: %s%s%s%s%s", s->name, k ? k : e->key,
                  e->code[0] ? e->code : "error", e->msg[0] ? " (" : "", e->msg,
                  e->msg[0] ? ")" : "", " (in a multi-object delete)");
    d->err = merge_err(d->err, m.err);
    return 0;
}

static int s3_del_many_singly(struct objstore *os, const char *const *keys, size_t n)
{
    int err = 0;
    for (size_t i = 0; i < n; i++)
        err = merge_err(err, s3_del(os, keys[i]));
    return err;
}

static int s3_del_many(struct objstore *os, const char *const *keys, size_t n)
{
    struct s3 *s = os->priv;
    if (n == 1 || atomic_load(&s->no_multi_delete))
        return s3_del_many_singly(os, keys, n);

    struct s3_str body = S3_STR_INIT, full = S3_STR_INIT, url = S3_STR_INIT, text = S3_STR_INIT;
    int err = 0;
    s3_str_adds(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns=\"" S3_XMLNS
                       "\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n && !err; i++) {
        full.len = 0;
        err = s3_full_key(s, keys[i], &full);
        if (err) {
            s3_key_too_long(s, "delete", keys[i], err);
            break;
        }
        s3_str_adds(&body, "<Object><Key>");
        s3_xml_escape(&body, full.p);
        s3_str_adds(&body, "</Key></Object>");
    }
    s3_str_adds(&body, "</Delete>");
    if (!err)
        err = body.err;
    if (!err)
        err = s3_url(s, NULL, "delete=", &url);
    unsigned char md5[16];
    char md5b64[32];
    if (!err)
        err = s3_digest(EVP_md5(), body.p, body.len, md5);
    if (err)
        goto out;
    s3_base64(md5, sizeof md5, md5b64);

    char what[48];
    snprintf(what, sizeof what, "(%zu keys)", n);
    struct s3_req r = {.op = "delete-many", .key = what, .method = "POST", .url = url.p,
                       .body = body.p, .body_len = body.len, .content_type = "application/xml",
                       .content_md5 = md5b64, .sink = SINK_TEXT, .text = &text,
                       .quiet_err = EOPNOTSUPP};
    err = s3_request(s, &r);
    if (err == EOPNOTSUPP) {
        /* Some S3 look-alikes lack the call: fall back, and remember. */
        atomic_store(&s->no_multi_delete, true);
        objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_INFO,
                      "%s: the store does not implement multi-object delete (HTTP %ld %s): "
                      "deleting one key per request from now on",
                      s->name, r.status, r.code);
        err = s3_del_many_singly(os, keys, n);
        goto out;
    }
    if (err)
        goto out;
    struct delete_many_ctx d = {.s = s};
    err = s3_xml_parse_delete_result(text.p ? text.p : "", text.len, on_delete_error, &d);
    if (err) {
        objstore_logf(s->pub.log, s->pub.log_opaque, objstore_err_log_level(err),
                      "%s: delete-many %s: unreadable DeleteResult (%zu bytes): %s", s->name,
                      what, text.len, objstore_strerror(err));
        goto out;
    }
    err = d.err;
out:
    if (err == ENOMEM)
        objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_ERROR, "%s: delete-many: %s",
                      s->name, objstore_strerror(err));
    s3_str_free(&body);
    s3_str_free(&full);
    s3_str_free(&url);
    s3_str_free(&text);
    return err;
}

static void s3_free(struct s3 *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->created; i++)
        curl_easy_cleanup(s->handles[i].easy);
    if (s->share)
        curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_mu[i]);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    free(s->idle);
    free(s->handles);
    s3_creds_free(&s->creds);
    free(s->base);
    free(s->bucket);
    free(s->prefix);
    free(s->region);
    free(s->sigv4);
    free(s->ca_file);
    free(s);
}

static void s3_close(struct objstore *os)
{
    s3_free(os->priv);
}

static const struct objstore_ops s3_ops = {
    .put = s3_put,
    .get = s3_get,
    .get_range = s3_get_range,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
    .close = s3_close,
    .del_many = s3_del_many,
    .create = s3_create,
};

/* ------------------------------------------------------------ open, bucket */

static const char *shown(const char *v)
{
    return v && v[0] ? v : "(default)";
}

int objstore_s3_config_describe(const struct objstore_s3_config *cfg, char *buf, size_t len)
{
    return snprintf(
        buf, len,
        "endpoint=%s region=%s bucket=%s prefix=%s path_style=%s ca_file=%s "
        "insecure_skip_tls_verify=%s access_key_id=%s secret_access_key=%s session_token=%s "
        "profile=%s credentials_file=%s connections=%u attempts=%u retry_base_ms=%u "
        "retry_cap_ms=%u connect_timeout_ms=%u low_speed=%uB/%us request_timeout_s=%u "
        "unsigned_payload=%s create_bucket=%s skip_check=%s",
        shown(cfg->endpoint), shown(cfg->region), cfg->bucket ? cfg->bucket : "(none)",
        cfg->prefix && cfg->prefix[0] ? cfg->prefix : "(none)", cfg->path_style ? "yes" : "no",
        shown(cfg->ca_file), cfg->insecure_skip_tls_verify ? "yes" : "no",
        cfg->access_key_id ? cfg->access_key_id : "(from environment or file)",
        cfg->secret_access_key ? "<redacted>" : "(from environment or file)",
        cfg->session_token ? "<redacted>" : "(none)", shown(cfg->profile),
        shown(cfg->credentials_file), cfg->connections, cfg->attempts, cfg->retry_base_ms,
        cfg->retry_cap_ms, cfg->connect_timeout_ms, cfg->low_speed_bytes, cfg->low_speed_time_s,
        cfg->request_timeout_s, cfg->unsigned_payload ? "yes" : "no",
        cfg->create_bucket ? "yes" : "no", cfg->skip_check ? "yes" : "no");
}

static const char *s3_getenv(const char *name)
{
    return getenv(name);
}

static bool accept_own_bucket(long status, const char *code)
{
    return status == 409 && !strcmp(code, "BucketAlreadyOwnedByYou");
}

static int s3_create_bucket(struct s3 *s)
{
    struct s3_str url = S3_STR_INIT, body = S3_STR_INIT;
    int err = s3_url(s, NULL, NULL, &url);
    /* us-east-1 is the one region that takes no (and rejects an explicit)
     * LocationConstraint. */
    if (strcmp(s->region, "us-east-1") != 0) {
        s3_str_adds(&body, "<CreateBucketConfiguration xmlns=\"" S3_XMLNS "\"><LocationConstraint>");
        s3_xml_escape(&body, s->region);
        s3_str_adds(&body, "</LocationConstraint></CreateBucketConfiguration>");
        err = err ? err : body.err;
    }
    if (!err) {
        struct s3_req r = {.op = "create-bucket", .key = s->bucket, .method = "PUT",
                           .url = url.p, .body = body.p ? body.p : "", .body_len = body.len,
                           .accept = accept_own_bucket};
        err = s3_request(s, &r);
        if (!err)
            objstore_logf(s->pub.log, s->pub.log_opaque, OBJSTORE_LOG_INFO,
                          "%s: bucket '%s' %s", s->name, s->bucket,
                          r.status == 409 ? "already exists (ours)" : "created or already ours");
    }
    s3_str_free(&url);
    s3_str_free(&body);
    return err;
}

/* One key under the prefix: proves endpoint, credentials, clock, bucket. */
static int s3_probe(struct s3 *s)
{
    struct s3_str q = S3_STR_INIT, url = S3_STR_INIT, text = S3_STR_INIT, p = S3_STR_INIT;
    if (s->prefix_len) {
        s3_str_add(&p, s->prefix, s->prefix_len);
        s3_str_add(&p, "/", 1);
    }
    s3_str_adds(&q, "list-type=2&max-keys=1&prefix=");
    s3_encode_query(&q, p.p ? p.p : "");
    int err = q.err ? q.err : s3_url(s, NULL, q.p, &url);
    if (!err) {
        struct s3_req r = {.op = "check", .key = s->bucket, .method = "GET", .url = url.p,
                           .sink = SINK_TEXT, .text = &text};
        err = s3_request(s, &r);
        if (err == ENXIO && !strcmp(r.code, "NoSuchBucket"))
            err = ENOENT; /* at open, a missing bucket is just that */
    }
    s3_str_free(&q);
    s3_str_free(&url);
    s3_str_free(&text);
    s3_str_free(&p);
    return err;
}

static int s3_fail_open(struct s3 *s, objstore_log_fn log, void *lo, int err, const char *what)
{
    if (what)
        objstore_logf(log, lo, OBJSTORE_LOG_ERROR, "%s: %s", s ? s->name : "s3", what);
    s3_free(s);
    return err;
}

int objstore_s3_open(const struct objstore_s3_config *cfg, struct objstore **out)
{
    objstore_log_fn log = cfg ? cfg->log : NULL;
    void *lo = cfg ? cfg->log_opaque : NULL;
    char why[512];
    if (!cfg || !out)
        return s3_fail_open(NULL, log, lo, EINVAL, "no configuration");
    if (!cfg->bucket || !cfg->bucket[0] || strlen(cfg->bucket) > 255 ||
        strpbrk(cfg->bucket, "/?#% \t\r\n"))
        return s3_fail_open(NULL, log, lo, EINVAL, "a bucket name is required (no '/', '?', "
                                                   "'#', '%' or spaces, at most 255 bytes)");
    const char *region = cfg->region && cfg->region[0] ? cfg->region : "us-east-1";
    if (strpbrk(region, ":/ \t\r\n") || strlen(region) > 64)
        return s3_fail_open(NULL, log, lo, EINVAL, "bad region name");

    /* The prefix: a valid key, with one trailing '/' tolerated. */
    char prefix[OBJSTORE_KEY_MAX + 2] = "";
    if (cfg->prefix && cfg->prefix[0]) {
        size_t pl = strnlen(cfg->prefix, sizeof prefix);
        if (pl == sizeof prefix)
            return s3_fail_open(NULL, log, lo, EINVAL, "prefix too long");
        memcpy(prefix, cfg->prefix, pl + 1);
        if (prefix[pl - 1] == '/')
            prefix[--pl] = '\0';
        if (objstore_key_check(prefix) != 0) {
            snprintf(why, sizeof why, "bad prefix \"%s\" (components separated by single '/', "
                     "no '.' or '..', no control characters)", cfg->prefix);
            return s3_fail_open(NULL, log, lo, EINVAL, why);
        }
    }

    pthread_once(&s3_curl_once, s3_curl_init);
    if (s3_curl_init_rc != CURLE_OK) {
        snprintf(why, sizeof why, "libcurl initialisation failed: %s",
                 curl_easy_strerror(s3_curl_init_rc));
        return s3_fail_open(NULL, log, lo, ENOMEM, why);
    }

    /* The endpoint, taken apart by curl's own URL parser. */
    char default_ep[128];
    const char *endpoint = cfg->endpoint && cfg->endpoint[0] ? cfg->endpoint : NULL;
    if (!endpoint) {
        snprintf(default_ep, sizeof default_ep, "https://s3.%s.amazonaws.com", region);
        endpoint = default_ep;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL;
    int err = 0;
    if (!u) {
        err = ENOMEM;
    } else if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        err = EINVAL;
    } else {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        curl_url_get(u, CURLUPART_QUERY, &query, 0);
        curl_url_get(u, CURLUPART_USER, &user, 0);
        if ((strcmp(scheme, "http") && strcmp(scheme, "https")) || query || user)
            err = EINVAL;
    }
    struct s3_str base = S3_STR_INIT;
    bool path_style = cfg->path_style || (host && ip_literal(host));
    if (!err) {
        /* The endpoint's path (if any) without its trailing '/'. */
        size_t plen = path ? strlen(path) : 0;
        while (plen && path[plen - 1] == '/')
            plen--;
        s3_str_addf(&base, "%s://", scheme);
        if (!path_style) {
            s3_encode_path(&base, cfg->bucket);
            s3_str_add(&base, ".", 1);
        }
        s3_str_adds(&base, host);
        if (port)
            s3_str_addf(&base, ":%s", port);
        s3_str_add(&base, path ? path : "", plen);
        if (path_style) {
            s3_str_add(&base, "/", 1);
            s3_encode_path(&base, cfg->bucket);
        }
        err = base.err;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    if (err) {
        s3_str_free(&base);
        snprintf(why, sizeof why, "bad endpoint URL \"%s\" (want http[s]://host[:port][/path])",
                 endpoint);
        return s3_fail_open(NULL, log, lo, err, err == ENOMEM ? NULL : why);
    }

    /* The name, for every log line: the URL of the bucket and the prefix. */
    size_t nlen = strlen("s3:") + base.len + strlen(prefix) + 2;
    struct s3 *s = calloc(1, sizeof *s + nlen);
    if (!s) {
        s3_str_free(&base);
        return ENOMEM;
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_mu[i], NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    s->base = base.p;
    s->path_style = path_style;
    snprintf(s->name, nlen, "s3:%s%s%s", base.p, prefix[0] ? "/" : "", prefix);
    s->pub.ops = &s3_ops;
    s->pub.priv = s;
    s->pub.name = s->name;
    s->pub.log = log;
    s->pub.log_opaque = lo;
    s->bucket = strdup(cfg->bucket);
    s->prefix = strdup(prefix);
    s->prefix_len = strlen(prefix);
    s->region = strdup(region);
    size_t slen = strlen("aws:amz::s3") + strlen(region) + 1;
    s->sigv4 = malloc(slen);
    if (s->sigv4)
        snprintf(s->sigv4, slen, "aws:amz:%s:s3", region);
    s->ca_file = cfg->ca_file && cfg->ca_file[0] ? strdup(cfg->ca_file) : NULL;
    s->insecure = cfg->insecure_skip_tls_verify;
    s->unsigned_payload = cfg->unsigned_payload;
    s->max_handles = cfg->connections ? cfg->connections : S3_CONNECTIONS_DEFAULT;
    if (s->max_handles > S3_CONNECTIONS_MAX)
        s->max_handles = S3_CONNECTIONS_MAX;
    s->attempts = cfg->attempts ? cfg->attempts : S3_ATTEMPTS_DEFAULT;
    if (s->attempts > S3_ATTEMPTS_MAX)
        s->attempts = S3_ATTEMPTS_MAX;
    s->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : S3_RETRY_BASE_MS_DEFAULT;
    s->retry_cap_ms = cfg->retry_cap_ms ? cfg->retry_cap_ms : S3_RETRY_CAP_MS_DEFAULT;
    s->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : S3_CONNECT_TIMEOUT_MS_DEFAULT;
    s->low_speed_bytes = cfg->low_speed_bytes ? cfg->low_speed_bytes : S3_LOW_SPEED_BYTES_DEFAULT;
    s->low_speed_time_s =
        cfg->low_speed_time_s ? cfg->low_speed_time_s : S3_LOW_SPEED_TIME_S_DEFAULT;
    s->request_timeout_s = cfg->request_timeout_s;
    s->idle = calloc(s->max_handles, sizeof *s->idle);
    s->handles = calloc(s->max_handles, sizeof *s->handles);
    s->share = curl_share_init();
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
        seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
    atomic_init(&s->rng, seed);
    atomic_init(&s->no_multi_delete, false);
    if (!s->bucket || !s->prefix || !s->region || !s->sigv4 || !s->idle || !s->handles ||
        !s->share ||
        (cfg->ca_file && cfg->ca_file[0] && !s->ca_file))
        return s3_fail_open(s, log, lo, ENOMEM, NULL);
    CURLSHcode sc = curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (sc == CURLSHE_OK)
        sc = curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    if (sc != CURLSHE_OK) {
        snprintf(why, sizeof why, "curl share setup: %s", curl_share_strerror(sc));
        return s3_fail_open(s, log, lo, ENOMEM, why);
    }

    err = s3_creds_resolve(cfg, s3_getenv, &s->creds, why, sizeof why);
    if (err) {
        char line[600];
        snprintf(line, sizeof line, "credentials: %s", why);
        return s3_fail_open(s, log, lo, err, line);
    }

    objstore_logf(log, lo, OBJSTORE_LOG_INFO,
                  "%s: region %s, %s-style, %u connections, %u attempts, credentials from %s "
                  "(access key %s, secret <redacted>%s)%s%s",
                  s->name, s->region, s->path_style ? "path" : "virtual-host", s->max_handles,
                  s->attempts, s->creds.source, s->creds.access_key,
                  s->creds.session_token ? ", session token <redacted>" : "",
                  s->unsigned_payload ? ", unsigned payloads" : "",
                  s->ca_file ? ", custom CA file" : "");
    if (s->insecure)
        objstore_logf(log, lo, OBJSTORE_LOG_WARN,
                      "%s: TLS certificate verification is OFF (insecure_skip_tls_verify)",
                      s->name);

    if (cfg->create_bucket) {
        err = s3_create_bucket(s);
        if (err)
            return s3_fail_open(s, log, lo, err, NULL);
    }
    if (!cfg->skip_check) {
        err = s3_probe(s);
        if (err)
            return s3_fail_open(s, log, lo, err, NULL);
    }
    *out = &s->pub;
    return 0;
}
