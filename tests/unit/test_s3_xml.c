/* test_s3_xml.c - reading S3's XML answers: Error, ListBucketResult,
 * DeleteResult, as RGW and AWS write them, garbage that must be EBADMSG
 * rather than misread, and hostile bodies that must stay within the
 * parser's bounds.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/s3_priv.h"
#include "tests/unit/check.h"

#include <string.h>

static int parse_error(const char *x, char *code, char *msg)
{
    return s3_xml_parse_error(x, strlen(x), code, 64, msg, 256);
}

static int list(const char *x, struct objstore_list *l, bool *trunc)
{
    objstore_list_free(l);
    return s3_xml_parse_list(x, strlen(x), l, trunc);
}

struct seen {
    int n;
    char keys[4][64];
    char codes[4][64];
};

static int on_err(void *opaque, const struct s3_delete_error *e)
{
    struct seen *s = opaque;
    if (s->n < 4) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%.63s", e->key);
        snprintf(s->codes[s->n], sizeof s->codes[0], "%.63s", e->code);
    }
    s->n++;
    return 0;
}

static int stop_at_first(void *opaque, const struct s3_delete_error *e)
{
    return EINTR;
}

static int count_err(void *opaque, const struct s3_delete_error *e)
{
    (*(size_t *)opaque)++;
    return 0;
}

static int list_str(const struct s3_str *x, struct objstore_list *l, bool *trunc)
{
    objstore_list_free(l);
    CHECK(!x->err);
    return s3_xml_parse_list(x->p, x->len, l, trunc);
}

/* A listing of one Contents whose Key element holds key_xml. */
static int list_key(const char *key_xml, struct objstore_list *l, bool *trunc)
{
    char doc[512];
    snprintf(doc, sizeof doc,
             "<ListBucketResult><Contents><Key>%s</Key><Size>1</Size></Contents>"
             "</ListBucketResult>",
             key_xml);
    return list(doc, l, trunc);
}

/* A listing of n Contents, each Key key_len bytes long. */
static void listing(struct s3_str *x, size_t n, size_t key_len)
{
    x->len = 0;
    s3_str_adds(x, "<ListBucketResult><IsTruncated>false</IsTruncated>");
    for (size_t i = 0; i < n; i++) {
        s3_str_adds(x, "<Contents><Key>");
        for (size_t j = 0; j < key_len; j++)
            s3_str_add(x, "k", 1);
        s3_str_adds(x, "</Key><Size>1</Size></Contents>");
    }
    s3_str_adds(x, "</ListBucketResult>");
}

/* Bodies a broken or hostile server (or a proxy in between) could send:
 * each is a clear error, in bounded time and memory, or a valid document
 * read right. */
static void hostile(void)
{
    char code[64], msg[256];
    struct objstore_list l = OBJSTORE_LIST_INIT;
    bool trunc;
    struct s3_str x = S3_STR_INIT;

    /* Billion laughs: refused at the DOCTYPE, before any expansion. So is
     * any DOCTYPE, and an external entity. */
    s3_str_adds(&x, "<?xml version=\"1.0\"?><!DOCTYPE Error [<!ENTITY a \"aaaaaaaaaa\">");
    for (char c = 'b'; c <= 'k'; c++)
        s3_str_addf(&x, "<!ENTITY %c \"&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;\">", c, c - 1,
                    c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    s3_str_adds(&x, "]><Error><Code>&k;</Code></Error>");
    CHECK(!x.err && s3_xml_parse_error(x.p, x.len, code, 64, msg, 256) == EBADMSG);
    CHECK(code[0] == '\0' && msg[0] == '\0');
    CHECK(parse_error("<!DOCTYPE Error><Error><Code>X</Code></Error>", code, msg) == EBADMSG);
    CHECK(parse_error("<!DOCTYPE Error SYSTEM \"file:///etc/passwd\"><Error><Code>&x;</Code>"
                      "</Error>",
                      code, msg) == EBADMSG);

    /* 100k nested elements: stopped at the depth bound. */
    x.len = 0;
    s3_str_adds(&x, "<ListBucketResult>");
    for (int i = 0; i < 100000; i++)
        s3_str_adds(&x, "<a>");
    for (int i = 0; i < 100000; i++)
        s3_str_adds(&x, "</a>");
    s3_str_adds(&x, "</ListBucketResult>");
    CHECK(list_str(&x, &l, &trunc) == EBADMSG);
    /* 16 levels (the root included) are fine, 17 are not. */
    for (int depth = 16; depth <= 17; depth++) {
        x.len = 0;
        s3_str_adds(&x, "<Error>");
        for (int i = 1; i < depth; i++)
            s3_str_adds(&x, "<a>");
        for (int i = 1; i < depth; i++)
            s3_str_adds(&x, "</a>");
        s3_str_adds(&x, "</Error>");
        CHECK(s3_xml_parse_error(x.p, x.len, code, 64, msg, 256) == (depth == 16 ? 0 : EBADMSG));
    }

    /* A 10 MB Key; a key of OBJSTORE_KEY_MAX bytes is fine, one more is not
     * (S3 would not have stored it). A long text in an element nobody reads
     * is bounded by S3_XML_TEXT_MAX. */
    listing(&x, 1, 10 << 20);
    CHECK(list_str(&x, &l, &trunc) == EBADMSG);
    listing(&x, 1, OBJSTORE_KEY_MAX);
    CHECK(!list_str(&x, &l, &trunc) && l.count == 1 && strlen(l.entries[0].key) == 1024);
    listing(&x, 1, OBJSTORE_KEY_MAX + 1);
    CHECK(list_str(&x, &l, &trunc) == EBADMSG);
    for (size_t n = S3_XML_TEXT_MAX; n <= S3_XML_TEXT_MAX + 1; n++) {
        x.len = 0;
        s3_str_adds(&x, "<Error><Code>C</Code><Message>");
        for (size_t i = 0; i < n; i++)
            s3_str_add(&x, "m", 1);
        s3_str_adds(&x, "</Message></Error>");
        CHECK(s3_xml_parse_error(x.p, x.len, code, 64, msg, 256) ==
              (n == S3_XML_TEXT_MAX ? 0 : EBADMSG));
    }
    CHECK(strlen(msg) == 0 && strlen(code) == 0);
    /* A document past S3_XML_DOC_MAX, however valid. */
    x.len = 0;
    s3_str_adds(&x, "<Error><Code>C</Code>");
    while (x.len <= S3_XML_DOC_MAX)
        s3_str_adds(&x, "<Message>m</Message>");
    s3_str_adds(&x, "</Error>");
    CHECK(s3_xml_parse_error(x.p, x.len, code, 64, msg, 256) == EBADMSG);

    /* 100k Contents: stopped at S3_XML_ENTRIES_MAX, which itself is fine. */
    listing(&x, 100000, 8);
    CHECK(list_str(&x, &l, &trunc) == EBADMSG);
    listing(&x, S3_XML_ENTRIES_MAX, 8);
    CHECK(!list_str(&x, &l, &trunc) && l.count == S3_XML_ENTRIES_MAX);
    listing(&x, S3_XML_ENTRIES_MAX + 1, 8);
    CHECK(list_str(&x, &l, &trunc) == EBADMSG);
    /* The same for a DeleteResult's entries, and the callback is not
     * called for those past the bound. */
    x.len = 0;
    s3_str_adds(&x, "<DeleteResult>");
    for (int i = 0; i < 100000; i++)
        s3_str_adds(&x, "<Error><Key>k</Key><Code>AccessDenied</Code></Error><Deleted/>");
    s3_str_adds(&x, "</DeleteResult>");
    size_t calls = 0;
    CHECK(!x.err && s3_xml_parse_delete_result(x.p, x.len, count_err, &calls) == EBADMSG);
    CHECK(calls == S3_XML_ENTRIES_MAX / 2);

    /* Invalid UTF-8 (a bad byte, an overlong '/', a lone continuation, a
     * cut sequence), also where the document declares another encoding:
     * S3 answers in UTF-8, and it is read as UTF-8. */
    static const char *const bad_utf8[] = {"\xff", "\xc0\xaf", "\x80", "\xc3", "\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++)
        CHECK(list_key(bad_utf8[i], &l, &trunc) == EBADMSG);
    CHECK(parse_error("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>\xe9</Code>"
                      "</Error>",
                      code, msg) == EBADMSG);
    CHECK(!parse_error("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>\xc3\xa9"
                       "</Code></Error>",
                       code, msg) &&
          !strcmp(code, "\xc3\xa9"));
    /* A byte order mark still wins (expat's rule): UTF-16 is read, and the
     * text handed on is UTF-8 all the same. */
    static const char utf16[] = "\xff\xfe<\0E\0r\0r\0o\0r\0>\0<\0C\0o\0d\0e\0>\0\xe9\0"
                                "<\0/\0C\0o\0d\0e\0>\0<\0/\0E\0r\0r\0o\0r\0>\0";
    CHECK(!s3_xml_parse_error(utf16, sizeof utf16 - 1, code, 64, msg, 256) &&
          !strcmp(code, "\xc3\xa9"));
    /* Character references: any valid one, as UTF-8; never a NUL, a
     * surrogate or a character XML excludes. */
    CHECK(!parse_error("<Error><Code>&#x1F600;&#233;</Code></Error>", code, msg) &&
          !strcmp(code, "\xf0\x9f\x98\x80\xc3\xa9"));
    CHECK(parse_error("<Error><Code>&#xD800;</Code></Error>", code, msg) == EBADMSG);
    CHECK(parse_error("<Error><Code>&#1;</Code></Error>", code, msg) == EBADMSG);
    CHECK(parse_error("<Error><Code>&#x110000;</Code></Error>", code, msg) == EBADMSG);

    /* A NUL byte anywhere. */
    static const char nul_msg[] = "<Error><Code>C</Code><Message>a\0b</Message></Error>";
    CHECK(s3_xml_parse_error(nul_msg, sizeof nul_msg - 1, code, 64, msg, 256) == EBADMSG);
    static const char nul_after[] = "<Error><Code>C</Code></Error>\0";
    CHECK(s3_xml_parse_error(nul_after, sizeof nul_after - 1, code, 64, msg, 256) == EBADMSG);
    static const char nul_tag[] = "<Error><Co\0de>C</Code></Error>";
    CHECK(s3_xml_parse_error(nul_tag, sizeof nul_tag - 1, code, 64, msg, 256) == EBADMSG);

    /* Truncated Error documents (cut anywhere) are EBADMSG and leave the
     * fields empty, even when the Code came before the cut. */
    const char *err_doc = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
                          "<Message>gone</Message></Error>";
    for (size_t n = 0; n < strlen(err_doc); n++) {
        CHECK(s3_xml_parse_error(err_doc, n, code, 64, msg, 256) == EBADMSG);
        CHECK(code[0] == '\0' && msg[0] == '\0');
    }

    /* An unknown entity, in a Key; an unterminated one. */
    CHECK(list_key("a&nbsp;b", &l, &trunc) == EBADMSG);
    CHECK(list_key("a&amp", &l, &trunc) == EBADMSG);

    /* CDATA in a Key is valid XML: read as its bytes, next to escaped text,
     * with the key's own "]]" and "<&>" kept. */
    CHECK(!list_key("<![CDATA[p/<&>]]]]><![CDATA[>x]]>&amp;y", &l, &trunc));
    CHECK(l.count == 1 && !strcmp(l.entries[0].key, "p/<&>]]>x&y"));
    /* A comment or a processing instruction inside a Key is not text. */
    CHECK(!list_key("a<!-- c -->b<?pi x?>c", &l, &trunc) && l.count == 1 &&
          !strcmp(l.entries[0].key, "abc"));

    /* Two roots, a root after a comment, text after the root. */
    CHECK(list("<ListBucketResult></ListBucketResult><ListBucketResult></ListBucketResult>", &l,
               &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult/><!-- x --><Error/>", &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult/>junk", &l, &trunc) == EBADMSG);
    CHECK(!list("<ListBucketResult/>\n<!-- trailing comment -->\n", &l, &trunc));

    /* Mixed content would be misread: "<Key>a<x/>b</Key>" is not a key. */
    CHECK(list_key("a<x/>b", &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents>k<Key>a</Key><Size>1</Size></Contents>"
               "</ListBucketResult>",
               &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents><Key>a</Key><Size>1</Size>k</Contents>"
               "</ListBucketResult>",
               &l, &trunc) == EBADMSG);

    /* Namespaces: S3's default one, a declared prefix, another URI (the
     * local name is what counts); an undeclared prefix is not XML. */
    CHECK(!list("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>",
                &l, &trunc) &&
          l.count == 1);
    CHECK(!list("<ListBucketResult xmlns=\"urn:x\"><Contents xmlns=\"urn:y\"><Key>k</Key>"
                "<Size>1</Size></Contents></ListBucketResult>",
                &l, &trunc) &&
          l.count == 1);
    CHECK(!list("<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                "<s3:Contents><s3:Key>k</s3:Key><Size>1</Size></s3:Contents>"
                "</s3:ListBucketResult>",
                &l, &trunc) &&
          l.count == 1);
    CHECK(list("<s3:ListBucketResult></s3:ListBucketResult>", &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult a=\"1\" a=\"2\"/>", &l, &trunc) == EBADMSG);

    s3_str_free(&x);
    objstore_list_free(&l);
}

int main(void)
{
    char code[64], msg[256];

    /* RGW's error body, verbatim. */
    CHECK(!parse_error("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>"
                       "<Message></Message><BucketName>dev</BucketName><RequestId>tx0-1</RequestId>"
                       "<HostId>100c-default-default</HostId></Error>",
                       code, msg));
    CHECK(!strcmp(code, "NoSuchKey") && !strcmp(msg, ""));
    /* AWS's, with whitespace, entities in the message. */
    CHECK(!parse_error("<?xml version=\"1.0\"?>\n<Error>\n  <Code>SignatureDoesNotMatch</Code>\n"
                       "  <Message>The request signature we calculated does not match &amp; "
                       "&lt;so on&gt; &#x41;&#66;</Message>\n</Error>\n",
                       code, msg));
    CHECK(!strcmp(code, "SignatureDoesNotMatch"));
    CHECK(!strcmp(msg, "The request signature we calculated does not match & <so on> AB"));
    /* Not an Error document, or not XML: EBADMSG and empty fields. */
    CHECK(parse_error("<html><body>502 Bad Gateway</body></html>", code, msg) == EBADMSG);
    CHECK(code[0] == '\0' && msg[0] == '\0');
    CHECK(parse_error("", code, msg) == EBADMSG);
    CHECK(parse_error("Bad Gateway", code, msg) == EBADMSG);
    CHECK(parse_error("<Error><Code>X</Code>", code, msg) == EBADMSG);   /* unclosed */
    CHECK(parse_error("<Error><Code>X</Error></Code>", code, msg) == EBADMSG); /* crossed */
    CHECK(parse_error("<Error></Error><Error></Error>", code, msg) == EBADMSG); /* two roots */
    CHECK(parse_error("<Error><Code>&bogus;</Code></Error>", code, msg) == EBADMSG);
    CHECK(parse_error("<Error><Code>&#0;</Code></Error>", code, msg) == EBADMSG);
    CHECK(parse_error("<Error><Code>a&b</Code></Error>", code, msg) == EBADMSG);
    /* A long code is cut to fit, not overflowed. */
    char big[512] = "<Error><Code>";
    memset(big + strlen(big), 'C', 200);
    strcat(big, "</Code></Error>");
    CHECK(!parse_error(big, code, msg) && strlen(code) == 63);
    /* Comments, CDATA, attributes with '>' in quotes, namespace prefixes. */
    CHECK(!parse_error("<!-- x --><s3:Error xmlns:s3=\"u>v\"><s3:Code><![CDATA[A<B]]></s3:Code>"
                       "</s3:Error>",
                       code, msg));
    CHECK(!strcmp(code, "A<B"));

    /* ListObjectsV2, as RGW answered in tests/rgw (keys with odd bytes). */
    struct objstore_list l = OBJSTORE_LIST_INIT;
    bool trunc = true;
    CHECK(!list("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3"
                ".amazonaws.com/doc/2006-03-01/\"><Name>dev</Name><Prefix></Prefix><MaxKeys>2"
                "</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a b+c~d</Key>"
                "<LastModified>2026-11-22T04:29:06.856Z</LastModified><ETag>&quot;2237&quot;"
                "</ETag><Size>2000000</Size><StorageClass>STANDARD</StorageClass><Type>Normal"
                "</Type></Contents><Contents><Key>p/&lt;&amp;&gt;\xc3\xbc</Key><Size>0</Size>"
                "</Contents><KeyCount>2</KeyCount></ListBucketResult>",
                &l, &trunc));
    CHECK(!trunc && l.count == 2);
    CHECK(!strcmp(l.entries[0].key, "a b+c~d") && l.entries[0].size == 2000000);
    CHECK(!strcmp(l.entries[1].key, "p/<&>\xc3\xbc") && l.entries[1].size == 0);
    CHECK(!list("<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>k</Key>"
                "<Size>18446744073709551615</Size></Contents>"
                "<NextContinuationToken>x</NextContinuationToken></ListBucketResult>",
                &l, &trunc));
    CHECK(trunc && l.count == 1 && l.entries[0].size == UINT64_MAX);
    CHECK(!list("<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount>"
                "</ListBucketResult>",
                &l, &trunc));
    CHECK(!trunc && l.count == 0);
    /* Self-closing elements. */
    CHECK(!list("<ListBucketResult><Prefix/><IsTruncated>false</IsTruncated></ListBucketResult>",
                &l, &trunc));
    /* Damage: a missing Size, a bad number, an overflow, a wrong root, a
     * bad IsTruncated, an empty Key, a Key twice. */
    CHECK(list("<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>", &l,
               &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents><Key>k</Key><Size>1x</Size></Contents>"
               "</ListBucketResult>",
               &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551616</Size>"
               "</Contents></ListBucketResult>",
               &l, &trunc) == EBADMSG);
    CHECK(list("<ListAllMyBucketsResult></ListAllMyBucketsResult>", &l, &trunc) == EBADMSG);
    CHECK(list("<Error><Code>NoSuchBucket</Code></Error>", &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>", &l,
               &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents>"
               "</ListBucketResult>",
               &l, &trunc) == EBADMSG);
    CHECK(list("<ListBucketResult><Contents><Key>a</Key><Key>b</Key><Size>1</Size></Contents>"
               "</ListBucketResult>",
               &l, &trunc) == EBADMSG);
    /* Truncated in the middle (a cut body). */
    const char *whole = "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents>"
                        "</ListBucketResult>";
    for (size_t n = 0; n < strlen(whole); n++) {
        objstore_list_free(&l);
        CHECK(s3_xml_parse_list(whole, n, &l, &trunc) == EBADMSG);
    }
    /* An embedded NUL. */
    objstore_list_free(&l);
    static const char nul[] = "<ListBucketResult><Contents><Key>a\0b</Key><Size>1</Size>"
                              "</Contents></ListBucketResult>";
    CHECK(s3_xml_parse_list(nul, sizeof nul - 1, &l, &trunc) == EBADMSG);
    /* Too deep (although well-formed). */
    char deep[2048] = "<ListBucketResult>";
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    for (int i = 0; i < 40; i++)
        strcat(deep, "</a>");
    strcat(deep, "</ListBucketResult>");
    CHECK(list(deep, &l, &trunc) == EBADMSG);
    /* A thousand entries. */
    struct s3_str x = S3_STR_INIT;
    s3_str_adds(&x, "<ListBucketResult><IsTruncated>true</IsTruncated>");
    for (int i = 0; i < 1000; i++)
        s3_str_addf(&x, "<Contents><Key>chunks/%06d</Key><Size>%d</Size></Contents>", i, i);
    s3_str_adds(&x, "</ListBucketResult>");
    objstore_list_free(&l);
    CHECK(!s3_xml_parse_list(x.p, x.len, &l, &trunc));
    CHECK(l.count == 1000 && trunc && !strcmp(l.entries[999].key, "chunks/000999") &&
          l.entries[999].size == 999);
    s3_str_free(&x);
    objstore_list_free(&l);

    /* DeleteResult (quiet: errors only). */
    struct seen s = {0};
    const char *empty = "<?xml version=\"1.0\"?><DeleteResult xmlns=\"x\"></DeleteResult>";
    CHECK(!s3_xml_parse_delete_result(empty, strlen(empty), on_err, &s));
    CHECK(s.n == 0);
    const char *dr = "<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>p/b&amp;c</Key>"
                     "<Code>AccessDenied</Code><Message>Access Denied</Message></Error><Error>"
                     "<Key>p/d</Key><Code>InternalError</Code></Error></DeleteResult>";
    CHECK(!s3_xml_parse_delete_result(dr, strlen(dr), on_err, &s));
    CHECK(s.n == 2 && !strcmp(s.keys[0], "p/b&c") && !strcmp(s.codes[0], "AccessDenied") &&
          !strcmp(s.keys[1], "p/d") && !strcmp(s.codes[1], "InternalError"));
    CHECK(s3_xml_parse_delete_result(dr, strlen(dr), stop_at_first, NULL) == EINTR);
    const char *notdr = "<Error><Code>NotImplemented</Code></Error>";
    CHECK(s3_xml_parse_delete_result(notdr, strlen(notdr), on_err, &s) == EBADMSG);
    for (size_t n = 0; n < strlen(dr); n++) {
        s.n = 0;
        CHECK(s3_xml_parse_delete_result(dr, n, on_err, &s) == EBADMSG);
    }

    hostile();
    return CHECK_DONE();
}
