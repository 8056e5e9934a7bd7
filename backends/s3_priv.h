/* s3_priv.h - private to the s3 backend (s3.c and its s3_*.c helpers) and its
 * unit tests; no other module includes this.
 *
 * The pure parts of the backend live here, each testable without a server:
 * growing strings, key and query encoding (s3_encode.c), the XML answers
 * of S3 (s3_xml.c), credentials (s3_creds.c) and the mapping of HTTP status
 * and S3 error codes, and of curl failures, to errno (s3_errors.c).
 * Everything returns 0 or a positive errno, as the rest of the module.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#ifndef USBD_S3_PRIV_H
#define USBD_S3_PRIV_H

#include "objstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ strings */

/* A growing NUL-terminated string. Appends never fail: the first allocation
 * failure sets err (ENOMEM) and later appends do nothing, so a caller
 * builds the whole string and checks err once. */
struct s3_str {
    char *p;    /* NULL until the first append; NUL-terminated after */
    size_t len;
    size_t cap;
    int err;
};
#define S3_STR_INIT {NULL, 0, 0, 0}

void s3_str_add(struct s3_str *s, const char *data, size_t len);
void s3_str_adds(struct s3_str *s, const char *cstr);
void s3_str_addf(struct s3_str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void s3_str_free(struct s3_str *s);

/* ---------------------------------------------------------------- encoding */

/* Append key percent-encoded for a URL path, the way SigV4 wants the
 * canonical URI of S3 (curl signs the path exactly as sent): A-Z a-z 0-9
 * '-' '_' '.' '~' '/' raw, every other byte %XX with uppercase hex. */
void s3_encode_path(struct s3_str *s, const char *key);

/* Append a query value (or name) percent-encoded: as s3_encode_path but '/'
 * also becomes %2F (SigV4's canonical query string). */
void s3_encode_query(struct s3_str *s, const char *value);

/* Append text escaped for an XML element (& < > " '). */
void s3_xml_escape(struct s3_str *s, const char *text);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void s3_hex(const unsigned char *in, size_t n, char *out);

/* Standard base64 (with padding) of n bytes into out (4 * ((n + 2) / 3) + 1
 * bytes). */
void s3_base64(const unsigned char *in, size_t n, char *out);

/* --------------------------------------------------------------------- XML */

/* The parts of S3's XML answers the backend uses, read with expat. Strict
 * about what could be misread: well-formed XML (one root, every tag closed
 * and nested, only the predefined entities and character references,
 * namespace prefixes declared), UTF-8 whatever the document declares (a
 * UTF-16 byte order mark is honoured; the text handed on is UTF-8), no
 * DOCTYPE, no text beside child elements. Elements are matched by local
 * name: namespace URIs (S3's xmlns), attributes, comments and processing
 * instructions are ignored. Anything it cannot read is EBADMSG, and so is
 * anything past these bounds, far above what S3 sends:
 * - a document longer than S3_XML_DOC_MAX bytes;
 * - elements nested more than 16 deep, or names from the root longer
 *   than 511 bytes together;
 * - a text longer than S3_XML_TEXT_MAX (no S3 field comes close);
 * - more than S3_XML_ENTRIES_MAX Contents in a listing page, or Deleted and
 *   Error in a DeleteResult (S3 sends at most 1000: max-keys, and the keys
 *   of one multi-object delete);
 * - a listed Key longer than OBJSTORE_KEY_MAX (S3 refuses them at PUT).
 * So a hostile body costs memory in proportion to its length (expat's copy
 * of it) plus at most S3_XML_TEXT_MAX, and for a listing the keys kept. */
#define S3_XML_DOC_MAX (16u << 20)
#define S3_XML_TEXT_MAX 65536
#define S3_XML_ENTRIES_MAX 1024

/* Error response: <Error><Code>..</Code><Message>..</Message></Error>.
 * code and msg are set to "" when absent; text is cut to fit. 0 if the body
 * is an Error document, EBADMSG otherwise (empty, HTML from a proxy, ...),
 * ENOMEM. */
int s3_xml_parse_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
                       size_t msglen);

/* ListObjectsV2 response: appends each <Contents> (Key, Size) to out as a
 * full key (nothing stripped), sets *truncated from <IsTruncated>. On error
 * out may hold some entries (the caller frees it). EBADMSG: not a
 * ListBucketResult, a Contents without Key or Size, a bad number; ENOMEM. */
int s3_xml_parse_list(const char *xml, size_t len, struct objstore_list *out, bool *truncated);

/* One <Error> of a DeleteResult (multi-object delete). */
struct s3_delete_error {
    char key[OBJSTORE_KEY_MAX * 2 + 2]; /* a full key: prefix '/' key */
    char code[64];
    char msg[256];
};
/* DeleteResult: calls fn for each <Error> (quiet mode lists only errors).
 * A non-zero return of fn stops the walk and is returned. EBADMSG if the
 * body is not a DeleteResult; ENOMEM. */
int s3_xml_parse_delete_result(const char *xml, size_t len,
                               int (*fn)(void *opaque, const struct s3_delete_error *e),
                               void *opaque);

/* ------------------------------------------------------------- credentials */

struct s3_creds {
    char *access_key;    /* required */
    char *secret_key;    /* required; never logged */
    char *session_token; /* NULL if none; never logged */
    char source[320];    /* where they came from, for the log ("environment",
                          * "/root/.aws/credentials [default]") */
};

/* Free and wipe (explicit_bzero) the secrets. */
void s3_creds_free(struct s3_creds *c);

/* Parse an AWS shared credentials (or config) file held in text: INI
 * sections "[name]" or "[profile name]", keys aws_access_key_id,
 * aws_secret_access_key, aws_session_token (aws_security_token, its old
 * name, too), '#' and ';' comment lines, spaces around '=' and names.
 * Fills out from the section named profile. ENOENT: no such section;
 * EINVAL: the section lacks the key id or the secret (why in err). */
int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *out,
                   char *err, size_t errlen);

/* Resolve credentials for a store, in this order: the config's own fields;
 * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) from
 * getenv_fn; the shared credentials file (cfg->credentials_file, else
 * $AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials) at the
 * profile cfg->profile, else $AWS_PROFILE, else "default". getenv_fn is
 * getenv outside tests. On failure err says why (never a secret); errors:
 * ENOENT (nothing found anywhere), EINVAL (half a pair, a bad file),
 * ENOMEM, errno of reading the file. */
struct objstore_s3_config;
int s3_creds_resolve(const struct objstore_s3_config *cfg, const char *(*getenv_fn)(const char *),
                     struct s3_creds *out, char *err, size_t errlen);

/* ------------------------------------------------------------------ errors */

/* What an S3 error answer means. */
struct s3_errmap {
    int err;          /* errno for the caller */
    const char *hint; /* advice for the log line, or NULL */
};

/* Map an HTTP status (>= 300) and the S3 error Code from the body ("" when
 * there was none, as for HEAD) to an errno and a hint. The table and the
 * reasons are in s3_errors.c. A 404 NoSuchBucket maps to ENXIO (never
 * ENOENT: to the cache ENOENT means "absent chunk, reads as zeros"). */
struct s3_errmap s3_map_http(long status, const char *code);

/* Map a failed curl transfer (its CURLcode as int, and CURLINFO_OS_ERRNO)
 * to an errno: connection refused or unreachable, timeouts, resets, broken
 * bodies, TLS failures. Never 0. */
int s3_map_curl(int curlcode, long os_errno);

/* Back-off before attempt `attempt` (1 for the first retry): full jitter,
 * uniform in [0, min(cap, base * 2^(attempt-1))] milliseconds, drawn from
 * rnd (any 64-bit random number). */
uint64_t s3_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd);

#endif /* USBD_S3_PRIV_H */
