/* test_s3_encode.c - the s3 backend's strings and encodings: URL path and
 * query percent-encoding in SigV4's canonical form, XML escaping, hex,
 * base64.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/s3_priv.h"
#include "tests/unit/check.h"

#include <string.h>

static char out[4096];

static const char *path(const char *in)
{
    struct s3_str s = S3_STR_INIT;
    s3_encode_path(&s, in);
    CHECK(!s.err);
    snprintf(out, sizeof out, "%s", s.p ? s.p : "");
    s3_str_free(&s);
    return out;
}

static const char *query(const char *in)
{
    struct s3_str s = S3_STR_INIT;
    s3_encode_query(&s, in);
    CHECK(!s.err);
    snprintf(out, sizeof out, "%s", s.p ? s.p : "");
    s3_str_free(&s);
    return out;
}

static const char *xml(const char *in)
{
    struct s3_str s = S3_STR_INIT;
    s3_xml_escape(&s, in);
    CHECK(!s.err);
    snprintf(out, sizeof out, "%s", s.p ? s.p : "");
    s3_str_free(&s);
    return out;
}

static const char *b64(const char *in)
{
    s3_base64((const unsigned char *)in, strlen(in), out);
    return out;
}

int main(void)
{
    /* Unreserved bytes and '/' stay raw in a path; '~' must not be encoded
     * (RGW and AWS canonicalise it raw). */
    CHECK(!strcmp(path("AZaz09-_.~/x"), "AZaz09-_.~/x"));
    CHECK(!strcmp(path("a b+c%d"), "a%20b%2Bc%25d"));
    CHECK(!strcmp(path("q?x#y&z=1;'\"<>"), "q%3Fx%23y%26z%3D1%3B%27%22%3C%3E"));
    /* UTF-8 bytes one by one, uppercase hex. */
    CHECK(!strcmp(path("\xc3\xbc/\xe2\x82\xac"), "%C3%BC/%E2%82%AC"));
    CHECK(!strcmp(path("\x7f\xff"), "%7F%FF"));
    CHECK(!strcmp(path(""), ""));

    /* A query value: '/' too. */
    CHECK(!strcmp(query("p/vol/chunks/00"), "p%2Fvol%2Fchunks%2F00"));
    CHECK(!strcmp(query("a b~"), "a%20b~"));
    CHECK(!strcmp(query("="), "%3D"));

    CHECK(!strcmp(xml("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f"));
    CHECK(!strcmp(xml("plain/key"), "plain/key"));

    unsigned char bytes[] = {0x00, 0xab, 0xff};
    s3_hex(bytes, 3, out);
    CHECK(!strcmp(out, "00abff"));

    /* RFC 4648 test vectors. */
    CHECK(!strcmp(b64(""), ""));
    CHECK(!strcmp(b64("f"), "Zg=="));
    CHECK(!strcmp(b64("fo"), "Zm8="));
    CHECK(!strcmp(b64("foo"), "Zm9v"));
    CHECK(!strcmp(b64("foob"), "Zm9vYg=="));
    CHECK(!strcmp(b64("fooba"), "Zm9vYmE="));
    CHECK(!strcmp(b64("foobar"), "Zm9vYmFy"));

    /* Growing strings: formatted appends, long runs. */
    struct s3_str s = S3_STR_INIT;
    s3_str_addf(&s, "%s=%d", "max-keys", 1000);
    CHECK(!strcmp(s.p, "max-keys=1000") && s.len == 13);
    for (int i = 0; i < 10000; i++)
        s3_str_add(&s, "x", 1);
    CHECK(s.len == 10013 && s.p[s.len] == '\0' && !s.err);
    s3_str_free(&s);
    CHECK(s.p == NULL && s.len == 0);
    return CHECK_DONE();
}
