/* test_s3_http.c - the s3 backend's request engine against a scripted HTTP
 * server on 127.0.0.1: what it sends (signing headers, payload hashes,
 * canonical paths and queries, Content-MD5), and what it makes of answers
 * a real RGW will not give on demand: 500 then success, endless SlowDown,
 * bodies cut short, a stalled body, garbage instead of HTTP, an object over
 * the caller's limit, a server that ignores Range, unreadable listings,
 * NotImplemented for multi-object delete, and nothing listening at all.
 * The real server is tests/integration/test-s3-backend.sh.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/objstore.h"
#include "tests/unit/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Replies are written (struct reply){status, headers, body} with the mode
 * left out when it is NORMAL (0). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

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

/* ------------------------------------------------------ scripted server */

enum mode {
    NORMAL,
    CUT_BODY,   /* announce the whole body, send 10 bytes, close */
    STALL,      /* send headers and 1 byte, then nothing for 3 s, close */
    GARBAGE,    /* not HTTP at all */
    HANG_UP,    /* close without answering */
};

struct reply {
    int status;
    const char *headers; /* extra header lines, each ending in \r\n */
    const char *body;
    enum mode mode;
};

struct request {
    char method[16];
    char target[2048];
    char headers[8192];
    char *body;
    size_t body_len;
};

#define MAX_REPLIES 64
#define MAX_REQUESTS 256
#define MAX_CONNS 512

static struct server {
    int fd;
    int port;
    pthread_t accept_thread;
    pthread_mutex_t mu;
    struct reply replies[MAX_REPLIES]; /* queue; empty: 200 with no body */
    int nreplies, next_reply;
    struct request reqs[MAX_REQUESTS];
    int nreqs; /* total seen (reqs holds the first MAX_REQUESTS) */
    pthread_t conns[MAX_CONNS];
    int nconns;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void script(struct reply r)
{
    pthread_mutex_lock(&srv.mu);
    CHECK(srv.nreplies < MAX_REPLIES);
    srv.replies[srv.nreplies++] = r;
    pthread_mutex_unlock(&srv.mu);
}

static void script_n(int n, struct reply r)
{
    for (int i = 0; i < n; i++)
        script(r);
}

/* Forget replies and requests; returns how many requests were seen. */
static int reset(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.nreqs;
    for (int i = 0; i < srv.nreqs && i < MAX_REQUESTS; i++)
        free(srv.reqs[i].body);
    srv.nreqs = 0;
    srv.nreplies = srv.next_reply = 0;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static int requests(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.nreqs;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static const struct request *req(int i)
{
    CHECK(i < MAX_REQUESTS && i < requests());
    return &srv.reqs[i];
}

/* The value of header name in r (NULL if absent), in a static buffer. */
static const char *header(const struct request *r, const char *name)
{
    static char v[4096];
    size_t n = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *b = p + n + 1;
            while (*b == ' ')
                b++;
            snprintf(v, sizeof v, "%.*s", (int)(eol - b), b);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

static bool send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void *conn_main(void *opaque)
{
    int fd = (int)(intptr_t)opaque;
    char *buf = malloc(1 << 20);
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t n = recv(fd, buf + have, (1 << 20) - have, 0);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        struct request r = {0};
        size_t hlen = (size_t)(end - buf) + 4;
        char *line_end = memmem(buf, hlen, "\r\n", 2);
        sscanf(buf, "%15s %2047s", r.method, r.target);
        snprintf(r.headers, sizeof r.headers, "%.*s", (int)(hlen - (size_t)(line_end + 2 - buf)),
                 line_end + 2);
        const char *cl = header(&r, "Content-Length");
        size_t blen = cl ? strtoul(cl, NULL, 10) : 0;
        const char *expect = header(&r, "Expect");
        if (expect && !strcasecmp(expect, "100-continue"))
            send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        memmove(buf, buf + hlen, have - hlen);
        have -= hlen;
        while (have < blen) {
            ssize_t n = recv(fd, buf + have, (1 << 20) - have, 0);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        r.body = malloc(blen + 1);
        memcpy(r.body, buf, blen);
        r.body[blen] = '\0';
        r.body_len = blen;
        memmove(buf, buf + blen, have - blen);
        have -= blen;

        pthread_mutex_lock(&srv.mu);
        struct reply rep = {200, "", "", NORMAL};
        if (srv.next_reply < srv.nreplies)
            rep = srv.replies[srv.next_reply++];
        if (srv.nreqs < MAX_REQUESTS)
            srv.reqs[srv.nreqs] = r;
        else
            free(r.body);
        srv.nreqs++;
        pthread_mutex_unlock(&srv.mu);

        bool head = !strcmp(r.method, "HEAD");
        const char *body = rep.body ? rep.body : "";
        size_t len = strlen(body);
        char hdr[4096];
        int hn = snprintf(hdr, sizeof hdr,
                          "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n"
                          "x-amz-request-id: tx-test-%d\r\n%s\r\n",
                          rep.status, len, srv.nreqs, rep.headers ? rep.headers : "");
        switch (rep.mode) {
        case NORMAL:
            if (!send_all(fd, hdr, (size_t)hn) || (!head && !send_all(fd, body, len)))
                goto out;
            break;
        case CUT_BODY:
            send_all(fd, hdr, (size_t)hn);
            send_all(fd, body, len < 10 ? len : 10);
            goto out;
        case STALL:
            send_all(fd, hdr, (size_t)hn);
            send_all(fd, body, 1);
            sleep(3);
            goto out;
        case GARBAGE:
            send_all(fd, "HELLO THERE\r\n\r\n", 15);
            goto out;
        case HANG_UP:
            goto out;
        }
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void *accept_main(void *opaque)
{
    for (;;) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_mutex_lock(&srv.mu);
        CHECK(srv.nconns < MAX_CONNS);
        CHECK(pthread_create(&srv.conns[srv.nconns++], NULL, conn_main, (void *)(intptr_t)c) == 0);
        pthread_mutex_unlock(&srv.mu);
    }
}

static void server_start(void)
{
    srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(srv.fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(srv.fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(srv.fd, 64) == 0);
    CHECK(getsockname(srv.fd, (struct sockaddr *)&a, &al) == 0);
    srv.port = ntohs(a.sin_port);
    CHECK(pthread_create(&srv.accept_thread, NULL, accept_main, NULL) == 0);
}

static void server_stop(void)
{
    shutdown(srv.fd, SHUT_RDWR);
    pthread_join(srv.accept_thread, NULL);
    close(srv.fd);
    for (int i = 0; i < srv.nconns; i++)
        pthread_join(srv.conns[i], NULL);
    reset();
}

/* A port with nothing listening (bound once, then released). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------- logging */

static struct {
    pthread_mutex_t mu;
    char text[1 << 16];
} logs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cap_log(void *opaque, int level, const char *line)
{
    pthread_mutex_lock(&logs.mu);
    size_t n = strlen(logs.text);
    snprintf(logs.text + n, sizeof logs.text - n, "%d %s\n", level, line);
    pthread_mutex_unlock(&logs.mu);
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, line);
}

static bool logged(const char *s)
{
    pthread_mutex_lock(&logs.mu);
    bool r = strstr(logs.text, s) != NULL;
    pthread_mutex_unlock(&logs.mu);
    return r;
}

static void logs_clear(void)
{
    pthread_mutex_lock(&logs.mu);
    logs.text[0] = '\0';
    pthread_mutex_unlock(&logs.mu);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --------------------------------------------------------------- tests */

static char endpoint[64];

static struct objstore_s3_config base_cfg(void)
{
    return (struct objstore_s3_config){
        .endpoint = endpoint, .bucket = "bkt", .prefix = "pre/", .access_key_id = "AKIDTEST",
        .secret_access_key = "SECRETTEST", .session_token = "TOKENTEST", .retry_base_ms = 1,
        .retry_cap_ms = 5, .skip_check = true, .log = cap_log,
    };
}

static struct objstore *open_ok(struct objstore_s3_config cfg)
{
    struct objstore *s = NULL;
    CHECK_ERR(objstore_s3_open(&cfg, &s), 0);
    return s;
}

#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define LIST_EMPTY "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"

static void test_open_and_signing(void)
{
    /* The probe at open: a one-key listing under the prefix. */
    struct objstore_s3_config cfg = base_cfg();
    cfg.skip_check = false;
    script((struct reply){200, "", LIST_EMPTY});
    struct objstore *s = open_ok(cfg);
    CHECK(requests() == 1);
    const struct request *r = req(0);
    CHECK(!strcmp(r->method, "GET"));
    CHECK(!strcmp(r->target, "/bkt?list-type=2&max-keys=1&prefix=pre%2F"));
    CHECK(!strcmp(header(r, "x-amz-content-sha256"), EMPTY_SHA));
    CHECK(!strcmp(header(r, "x-amz-security-token"), "TOKENTEST"));
    const char *auth = header(r, "Authorization");
    CHECK(auth && strstr(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
    CHECK(strstr(auth, "/us-east-1/s3/aws4_request"));
    CHECK(strstr(auth, "x-amz-content-sha256") && strstr(auth, "x-amz-security-token"));
    CHECK(header(r, "x-amz-date"));
    /* The secret and the token never reach the log. */
    CHECK(logged("<redacted>") && !logged("SECRETTEST") && !logged("TOKENTEST"));
    reset();

    /* put: the body's SHA-256, the key encoded canonically under the prefix. */
    CHECK_ERR(objstore_put(s, "a b+c/%~\xc3\xbc", "hello", 5), 0);
    r = req(0);
    CHECK(!strcmp(r->method, "PUT"));
    CHECK(!strcmp(r->target, "/bkt/pre/a%20b%2Bc/%25~%C3%BC"));
    CHECK(!strcmp(header(r, "x-amz-content-sha256"),
                  "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"));
    CHECK(r->body_len == 5 && !memcmp(r->body, "hello", 5));
    reset();
    CHECK_ERR(objstore_put(s, "empty", "", 0), 0);
    CHECK(req(0)->body_len == 0 && !strcmp(header(req(0), "x-amz-content-sha256"), EMPTY_SHA));
    reset();
    objstore_close(s);

    /* Unsigned payloads, virtual-host style needs a name: use path style. */
    cfg = base_cfg();
    cfg.unsigned_payload = true;
    cfg.session_token = NULL;
    s = open_ok(cfg);
    CHECK_ERR(objstore_put(s, "k", "hello", 5), 0);
    CHECK(!strcmp(header(req(0), "x-amz-content-sha256"), "UNSIGNED-PAYLOAD"));
    CHECK(!header(req(0), "x-amz-security-token"));
    reset();
    objstore_close(s);
}

static void test_get_head_range(struct objstore *s)
{
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    script((struct reply){200, "", "0123456789abcdef"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), 0);
    CHECK(b.len == 16 && !memcmp(b.data, "0123456789abcdef", 16));
    CHECK(!strcmp(req(0)->target, "/bkt/pre/k"));
    reset();

    /* Missing: ENOENT at once, no retry, logged at debug only. */
    logs_clear();
    script((struct reply){404, "", "<Error><Code>NoSuchKey</Code></Error>"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), ENOENT);
    CHECK(b.len == 0 && reset() == 1);
    CHECK(logged("3 ") && !logged("\n0 ") && !logged("\n1 "));
    /* Missing bucket: not ENOENT (that would read as zeros), a clear line. */
    script((struct reply){404, "", "<Error><Code>NoSuchBucket</Code></Error>"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), ENXIO);
    CHECK(logged("bucket 'bkt' does not exist (create it or use the create option)"));
    reset();

    /* Over the caller's limit: EFBIG before reading, nothing allocated. */
    struct objstore_buf fresh = OBJSTORE_BUF_INIT;
    script((struct reply){200, "", "0123456789abcdef"});
    CHECK_ERR(objstore_get(s, "k", 15, &fresh), EFBIG);
    CHECK(fresh.data == NULL && fresh.cap == 0 && reset() == 1);
    /* Exactly at the limit is fine. */
    script((struct reply){200, "", "0123456789abcdef"});
    CHECK_ERR(objstore_get(s, "k", 16, &fresh), 0);
    CHECK(fresh.len == 16);
    objstore_buf_free(&fresh);
    reset();

    /* head */
    uint64_t size = 0;
    script((struct reply){200, "", "0123456789"});
    CHECK_ERR(objstore_head(s, "k", &size), 0);
    CHECK(size == 10 && !strcmp(req(0)->method, "HEAD"));
    reset();
    script((struct reply){404, "", "ignored"});
    CHECK_ERR(objstore_head(s, "k", &size), ENOENT);
    script((struct reply){403, "", "ignored"});
    CHECK_ERR(objstore_head(s, "k", &size), EACCES);
    reset();

    /* Ranges: 206, 416 past the end, and a server ignoring Range. */
    char buf[8];
    size_t got = 99;
    script((struct reply){206, "Content-Range: bytes 4-7/16\r\n", "4567"});
    CHECK_ERR(objstore_get_range(s, "k", 4, 4, buf, &got), 0);
    CHECK(got == 4 && !memcmp(buf, "4567", 4));
    CHECK(!strcmp(header(req(0), "Range"), "bytes=4-7"));
    reset();
    script((struct reply){206, "Content-Range: bytes 14-15/16\r\n", "ef"});
    CHECK_ERR(objstore_get_range(s, "k", 14, 8, buf, &got), 0);
    CHECK(got == 2 && !memcmp(buf, "ef", 2));
    script((struct reply){416, "", "<Error><Code>InvalidRange</Code></Error>"});
    CHECK_ERR(objstore_get_range(s, "k", 16, 8, buf, &got), 0);
    CHECK(got == 0);
    script((struct reply){200, "", "0123456789abcdef"});
    CHECK_ERR(objstore_get_range(s, "k", 10, 4, buf, &got), 0);
    CHECK(got == 4 && !memcmp(buf, "abcd", 4));
    /* A 206 for the wrong range is not data (and is retried, as any
     * garbled exchange). */
    script_n(4, (struct reply){206, "Content-Range: bytes 0-3/16\r\n", "0123"});
    CHECK_ERR(objstore_get_range(s, "k", 4, 4, buf, &got), EPROTO);
    reset();
    /* Zero bytes: still ENOENT for a missing key. */
    script((struct reply){404, "", ""});
    CHECK_ERR(objstore_get_range(s, "k", 0, 0, buf, &got), ENOENT);
    reset();
    objstore_buf_free(&b);
}

static void test_retries(struct objstore *s)
{
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    /* Two 500s, then success: hidden from the caller, logged at info. */
    logs_clear();
    script_n(2, (struct reply){500, "", "<Error><Code>InternalError</Code></Error>"});
    script((struct reply){200, "", "data"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), 0);
    CHECK(b.len == 4 && reset() == 3);
    CHECK(logged("2 s3:") && logged("InternalError") && logged("attempt 2/4"));
    CHECK(!logged("\n0 ") && !logged("\n1 "));

    /* SlowDown forever: OBJSTORE_ESLOWDOWN after 4 attempts, logged once
     * at warn. */
    logs_clear();
    script_n(4, (struct reply){503, "", "<Error><Code>SlowDown</Code></Error>"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), OBJSTORE_ESLOWDOWN);
    CHECK(reset() == 4 && logged("1 s3:") && logged("after 4 attempts"));

    /* A body cut short, every time: OBJSTORE_ESERVER. */
    script_n(4, (struct reply){200, "", "0123456789abcdefghij", CUT_BODY});
    CHECK_ERR(objstore_get(s, "k", 100, &b), OBJSTORE_ESERVER);
    CHECK(reset() == 4);
    /* Once cut, then whole. */
    script((struct reply){200, "", "0123456789abcdefghij", CUT_BODY});
    script((struct reply){200, "", "0123456789abcdefghij"});
    CHECK_ERR(objstore_get(s, "k", 100, &b), 0);
    CHECK(b.len == 20 && reset() == 2);

    /* Garbage instead of HTTP, hang-ups: retriable transport errors. */
    script_n(4, (struct reply){200, "", "", GARBAGE});
    int err = objstore_get(s, "k", 100, &b);
    CHECK(err == EPROTO && objstore_err_retriable(err));
    reset();
    script_n(4, (struct reply){200, "", "", HANG_UP});
    err = objstore_get(s, "k", 100, &b);
    CHECK(objstore_err_retriable(err));
    reset();

    /* Permanent errors are not retried. */
    logs_clear();
    script((struct reply){403, "", "<Error><Code>SignatureDoesNotMatch</Code></Error>"});
    CHECK_ERR(objstore_put(s, "k", "x", 1), EACCES);
    CHECK(reset() == 1);
    CHECK(logged("0 s3:") && logged("HTTP 403 SignatureDoesNotMatch") &&
          logged("bad credentials or clock skew: check AWS_ACCESS_KEY_ID/SECRET and the "
                 "system clock"));
    script((struct reply){400, "", "<Error><Code>InvalidArgument</Code></Error>"});
    CHECK_ERR(objstore_put(s, "k", "x", 1), EINVAL);
    CHECK(reset() == 1);
    /* An HTML error page from a proxy: the status decides. */
    script_n(4, (struct reply){502, "", "<html><body>Bad Gateway</body></html>"});
    CHECK_ERR(objstore_put(s, "k", "x", 1), OBJSTORE_ESERVER);
    CHECK(reset() == 4);
    objstore_buf_free(&b);
}

static void test_stall(void)
{
    /* A body that stops flowing: ETIMEDOUT from the low-speed limit. */
    struct objstore_s3_config cfg = base_cfg();
    cfg.attempts = 1;
    cfg.low_speed_bytes = 1;
    cfg.low_speed_time_s = 1;
    struct objstore *s = open_ok(cfg);
    struct objstore_buf b = OBJSTORE_BUF_INIT;
    script((struct reply){200, "", "0123456789", STALL});
    double t0 = now();
    CHECK_ERR(objstore_get(s, "k", 100, &b), ETIMEDOUT);
    double dt = now() - t0;
    CHECK(dt >= 0.9 && dt < 2.9);
    reset();
    objstore_buf_free(&b);
    objstore_close(s);
}

static void test_list(struct objstore *s)
{
    struct objstore_list l = OBJSTORE_LIST_INIT;
    script((struct reply){200, "",
                          "<ListBucketResult><IsTruncated>true</IsTruncated>"
                          "<Contents><Key>pre/c/1</Key><Size>5</Size></Contents>"
                          "<Contents><Key>pre/c/2 x</Key><Size>6</Size></Contents>"
                          "</ListBucketResult>"});
    CHECK_ERR(objstore_list(s, "c/", "c/0", 2, &l), 0);
    CHECK(!strcmp(req(0)->target,
                  "/bkt?list-type=2&max-keys=2&prefix=pre%2Fc%2F&start-after=pre%2Fc%2F0"));
    CHECK(l.count == 2 && !strcmp(l.entries[0].key, "c/1") && l.entries[0].size == 5);
    CHECK(!strcmp(l.entries[1].key, "c/2 x") && l.next && !strcmp(l.next, "c/2 x"));
    objstore_list_free(&l);
    reset();
    script((struct reply){200, "", LIST_EMPTY});
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), 0);
    CHECK(l.count == 0 && !l.next);
    CHECK(!strcmp(req(0)->target, "/bkt?list-type=2&max-keys=1000&prefix=pre%2F"));
    reset();
    /* Garbage where a listing should be: EBADMSG, not retried, nothing
     * returned. */
    script((struct reply){200, "", "<ListBucketResult><Contents><Key>pre/x</Key>"});
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), EBADMSG);
    CHECK(l.count == 0 && l.entries == NULL && reset() == 1);
    script((struct reply){200, "", "<ListBucketResult><IsTruncated>true</IsTruncated>"
                                   "</ListBucketResult>"});
    CHECK_ERR(objstore_list(s, "", NULL, 0, &l), EBADMSG);
    reset();
}

static void test_delete(struct objstore *s)
{
    script((struct reply){204, "", ""});
    CHECK_ERR(objstore_delete(s, "k"), 0);
    CHECK(!strcmp(req(0)->method, "DELETE") && !strcmp(req(0)->target, "/bkt/pre/k"));
    reset();
    script((struct reply){404, "", "<Error><Code>NoSuchKey</Code></Error>"});
    CHECK_ERR(objstore_delete(s, "k"), 0);
    script((struct reply){404, "", "<Error><Code>NoSuchBucket</Code></Error>"});
    CHECK_ERR(objstore_delete(s, "k"), ENXIO);
    reset();

    /* Multi-object delete: one POST ?delete= with Content-MD5 and XML. */
    const char *keys[] = {"a", "b&c", "d"};
    script((struct reply){200, "", "<DeleteResult></DeleteResult>"});
    CHECK_ERR(objstore_delete_many(s, keys, 3), 0);
    CHECK(reset() == 1);
    /* (the request was freed by reset: look again with a failing answer) */
    script((struct reply){200, "",
                          "<DeleteResult><Error><Key>pre/b&amp;c</Key><Code>AccessDenied</Code>"
                          "<Message>Access Denied</Message></Error></DeleteResult>"});
    logs_clear();
    CHECK_ERR(objstore_delete_many(s, keys, 3), EACCES);
    const struct request *r = req(0);
    CHECK(!strcmp(r->method, "POST") && !strcmp(r->target, "/bkt?delete="));
    CHECK(header(r, "Content-MD5") && strlen(header(r, "Content-MD5")) == 24);
    CHECK(strstr(r->body, "<Quiet>true</Quiet>"));
    CHECK(strstr(r->body, "<Key>pre/a</Key>") && strstr(r->body, "<Key>pre/b&amp;c</Key>"));
    CHECK(logged("delete b&c: AccessDenied"));
    reset();
    /* NotImplemented: one by one from now on. */
    script((struct reply){501, "", "<Error><Code>NotImplemented</Code></Error>"});
    CHECK_ERR(objstore_delete_many(s, keys, 3), 0);
    CHECK(reset() == 4);
    CHECK_ERR(objstore_delete_many(s, keys, 3), 0);
    CHECK(reset() == 3);
    CHECK(!strcmp(srv.reqs[0].method, "DELETE"));
}

static void test_open_failures(void)
{
    struct objstore *s = NULL;
    struct objstore_s3_config cfg = base_cfg();
    cfg.skip_check = false;
    logs_clear();
    script((struct reply){404, "", "<Error><Code>NoSuchBucket</Code></Error>"});
    CHECK_ERR(objstore_s3_open(&cfg, &s), ENOENT);
    CHECK(logged("bucket 'bkt' does not exist (create it or use the create option)"));
    reset();
    script((struct reply){403, "", "<Error><Code>InvalidAccessKeyId</Code></Error>"});
    CHECK_ERR(objstore_s3_open(&cfg, &s), EACCES);
    reset();
    /* Creating: BucketAlreadyOwnedByYou is success. */
    cfg.create_bucket = true;
    script((struct reply){409, "", "<Error><Code>BucketAlreadyOwnedByYou</Code></Error>"});
    script((struct reply){200, "", LIST_EMPTY});
    CHECK_ERR(objstore_s3_open(&cfg, &s), 0);
    CHECK(!strcmp(srv.reqs[0].method, "PUT") && !strcmp(srv.reqs[0].target, "/bkt"));
    CHECK(srv.reqs[0].body_len == 0); /* us-east-1: no LocationConstraint */
    objstore_close(s);
    reset();
    cfg.region = "eu-west-1";
    script((struct reply){200, "", ""});
    script((struct reply){200, "", LIST_EMPTY});
    CHECK_ERR(objstore_s3_open(&cfg, &s), 0);
    CHECK(strstr(srv.reqs[0].body, "<LocationConstraint>eu-west-1</LocationConstraint>"));
    CHECK(strstr(header(&srv.reqs[1], "Authorization"), "/eu-west-1/s3/aws4_request"));
    objstore_close(s);
    reset();
    script((struct reply){409, "", "<Error><Code>BucketAlreadyExists</Code></Error>"});
    CHECK_ERR(objstore_s3_open(&cfg, &s), EEXIST);
    reset();

    /* Bad configurations. */
    cfg = base_cfg();
    cfg.bucket = NULL;
    CHECK_ERR(objstore_s3_open(&cfg, &s), EINVAL);
    cfg = base_cfg();
    cfg.endpoint = "ftp://x";
    CHECK_ERR(objstore_s3_open(&cfg, &s), EINVAL);
    cfg.endpoint = "http://u:p@host";
    CHECK_ERR(objstore_s3_open(&cfg, &s), EINVAL);
    cfg = base_cfg();
    cfg.prefix = "a//b";
    CHECK_ERR(objstore_s3_open(&cfg, &s), EINVAL);
    cfg = base_cfg();
    cfg.secret_access_key = NULL;
    CHECK_ERR(objstore_s3_open(&cfg, &s), EINVAL);
    CHECK(reset() == 0);

    /* Nothing listening: ECONNREFUSED after the attempts, quickly. */
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", dead_port());
    cfg = base_cfg();
    cfg.endpoint = dead;
    cfg.attempts = 3;
    cfg.retry_base_ms = 50;
    cfg.retry_cap_ms = 100;
    s = open_ok(cfg);
    logs_clear();
    double t0 = now();
    int err = objstore_put(s, "k", "x", 1);
    double dt = now() - t0;
    CHECK_ERR(err, ECONNREFUSED);
    CHECK(objstore_err_retriable(err) && dt < 1.0);
    CHECK(logged("after 3 attempts"));
    objstore_close(s);
}

/* Many callers, few handles: everybody gets through, nobody deadlocks. */
struct par {
    struct objstore *s;
    int id;
    int err;
};

static void *par_main(void *opaque)
{
    struct par *p = opaque;
    char key[32];
    for (int i = 0; i < 20 && !p->err; i++) {
        snprintf(key, sizeof key, "t%d/%d", p->id, i);
        p->err = objstore_put(p->s, key, key, strlen(key));
    }
    return NULL;
}

static void test_parallel(void)
{
    struct objstore_s3_config cfg = base_cfg();
    cfg.connections = 3;
    struct objstore *s = open_ok(cfg);
    struct par ps[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {
        ps[i] = (struct par){.s = s, .id = i};
        CHECK(pthread_create(&t[i], NULL, par_main, &ps[i]) == 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        CHECK_ERR(ps[i].err, 0);
    }
    CHECK(reset() == 16 * 20);
    objstore_close(s);
}

/* objstore_delete_many() on a backend without del_many (local): one del
 * per key, every key checked first. */
static void test_delete_many_fallback(void)
{
    char dir[] = "/tmp/test_s3_http.XXXXXX";
    CHECK(mkdtemp(dir));
    struct objstore_local_config lc = {.root = dir, .log = cap_log};
    struct objstore *l = NULL;
    CHECK_ERR(objstore_local_open(&lc, &l), 0);
    const char *keys[] = {"a", "b/c", "missing"};
    CHECK_ERR(objstore_put(l, "a", "1", 1), 0);
    CHECK_ERR(objstore_put(l, "b/c", "2", 1), 0);
    const char *bad[] = {"a", "b//c"};
    CHECK_ERR(objstore_delete_many(l, bad, 2), EINVAL);
    uint64_t size;
    CHECK_ERR(objstore_head(l, "a", &size), 0); /* nothing deleted */
    CHECK_ERR(objstore_delete_many(l, keys, 0), 0);
    CHECK_ERR(objstore_delete_many(l, keys, 3), 0);
    CHECK_ERR(objstore_head(l, "a", &size), ENOENT);
    CHECK_ERR(objstore_head(l, "b/c", &size), ENOENT);
    CHECK_ERR(objstore_delete_many(NULL, keys, 3), EINVAL);
    CHECK_ERR(objstore_delete_many(l, NULL, 1), EINVAL);
    objstore_close(l);
    char sub[64];
    snprintf(sub, sizeof sub, "%s/b", dir);
    CHECK(rmdir(sub) == 0 && rmdir(dir) == 0);
}

int main(void)
{
    test_delete_many_fallback();
    server_start();
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", srv.port);

    test_open_and_signing();
    struct objstore *s = open_ok(base_cfg());
    test_get_head_range(s);
    test_retries(s);
    test_list(s);
    test_delete(s);
    objstore_close(s);
    test_stall();
    test_open_failures();
    test_parallel();

    /* The description never shows a secret. */
    struct objstore_s3_config cfg = base_cfg();
    char line[2048];
    objstore_s3_config_describe(&cfg, line, sizeof line);
    CHECK(strstr(line, "bucket=bkt") && strstr(line, "access_key_id=AKIDTEST"));
    CHECK(strstr(line, "secret_access_key=<redacted>") && strstr(line, "session_token=<redacted>"));
    CHECK(!strstr(line, "SECRETTEST") && !strstr(line, "TOKENTEST"));

    server_stop();
    return CHECK_DONE();
}
