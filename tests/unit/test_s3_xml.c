/* test_s3_xml.c - reading S3's XML answers: Error, ListBucketResult,
 * DeleteResult, as RGW and AWS write them, and garbage that must be
 * EBADMSG rather than misread.
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
    return CHECK_DONE();
}
