/* fuzz_s3_xml.c - libFuzzer target for the S3 XML answers (s3_xml.c).
 *
 * The input is a body as a store (or a proxy) could answer, byte for byte;
 * all three readers get it, as s3.c would hand it to each: an error body,
 * a ListBucketResult, a DeleteResult. Any other root is refused at once,
 * so each reader costs little on the others' documents, and one corpus
 * (real documents from make-s3-xml-seeds.py) serves all three. Beyond no
 * crash, no sanitizer report and no leak, each reader's contract of
 * s3_priv.h is checked: only the errors it documents, the bounds, every
 * string NUL-terminated inside its buffer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/s3_priv.h"

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_s3_xml: %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Hostile text must come out as C strings that fit: NUL inside the buffer. */
static bool terminated(const char *buf, size_t cap)
{
    return memchr(buf, '\0', cap) != NULL;
}

static void check_error(const char *xml, size_t len)
{
    /* Buffer sizes from the input, so that cutting to fit is exercised at
     * every length, 0 included (the contract allows it). */
    size_t codelen = len % 65, msglen = len % 257;
    char code[64 + 1], msg[256 + 1];
    memset(code, 'x', sizeof code);
    memset(msg, 'x', sizeof msg);
    int err = s3_xml_parse_error(xml, len, code, codelen, msg, msglen);
    REQUIRE(err == 0 || err == EBADMSG || err == ENOMEM);
    REQUIRE(!codelen || terminated(code, codelen));
    REQUIRE(!msglen || terminated(msg, msglen));
    if (err) {
        REQUIRE(!codelen || code[0] == '\0');
        REQUIRE(!msglen || msg[0] == '\0');
    }
    /* Nothing past the buffers given. */
    REQUIRE(code[codelen] == 'x' && msg[msglen] == 'x');
}

static void check_list(const char *xml, size_t len)
{
    struct objstore_list l = OBJSTORE_LIST_INIT;
    bool truncated = true;
    int err = s3_xml_parse_list(xml, len, &l, &truncated);
    REQUIRE(err == 0 || err == EBADMSG || err == ENOMEM);
    /* On error too: the entries kept so far are the caller's to free. */
    REQUIRE(l.count <= S3_XML_ENTRIES_MAX);
    REQUIRE(l.count == 0 || l.entries);
    for (size_t i = 0; i < l.count; i++) {
        REQUIRE(l.entries[i].key);
        size_t n = strlen(l.entries[i].key);
        REQUIRE(n >= 1 && n <= OBJSTORE_KEY_MAX);
    }
    objstore_list_free(&l);
}

struct delete_seen {
    size_t calls;
    size_t stop_at; /* the call that answers EINTR (0: none) */
};

static int on_delete_error(void *opaque, const struct s3_delete_error *e)
{
    struct delete_seen *d = opaque;
    REQUIRE(terminated(e->key, sizeof e->key));
    REQUIRE(terminated(e->code, sizeof e->code));
    REQUIRE(terminated(e->msg, sizeof e->msg));
    d->calls++;
    REQUIRE(d->calls <= S3_XML_ENTRIES_MAX);
    return d->calls == d->stop_at ? EINTR : 0;
}

static void check_delete(const char *xml, size_t len)
{
    /* Stopping the walk from the callback: its error must come back. */
    struct delete_seen d = {.stop_at = len % 4};
    int err = s3_xml_parse_delete_result(xml, len, on_delete_error, &d);
    if (d.stop_at && d.calls == d.stop_at)
        REQUIRE(err == EINTR);
    else
        REQUIRE(err == 0 || err == EBADMSG || err == ENOMEM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libFuzzer hands a heap copy of exactly size bytes: ASan sees any read
     * past the body. */
    const char *xml = (const char *)data;
    check_error(xml, size);
    check_list(xml, size);
    check_delete(xml, size);
    return 0;
}
