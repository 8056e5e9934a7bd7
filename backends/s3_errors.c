/* s3_errors.c - what an S3 or transport failure means to the caller.
 *
 * The classification follows objstore.h: a transient failure maps to an
 * errno that objstore_err_retriable() accepts, everything else to a
 * permanent one. The table (HTTP status, S3 Code -> errno):
 *
 *   404 NoSuchKey (and any 404 without a body, as HEAD gets) -> ENOENT
 *   404 NoSuchBucket -> ENXIO: permanent, and deliberately not ENOENT,
 *       which the cache reads as "this chunk was never written: zeros"
 *       (objstore_s3_open reports a missing bucket as ENOENT, where it
 *       means what it says)
 *   403 SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed,
 *       AuthorizationHeaderMalformed -> EACCES, hint: credentials or clock
 *   403 QuotaExceeded (RGW) -> EDQUOT
 *   403 anything else (AccessDenied, ...) -> EACCES, hint: permissions
 *   400 ExpiredToken, InvalidToken, TokenRefreshRequired -> EACCES
 *   400 RequestTimeout -> ETIMEDOUT (the server gave up waiting for our
 *       body: a slow link, worth another try)
 *   400 IncompleteBody, BadDigest, XAmzContentSHA256Mismatch -> EPROTO
 *       (the body the server got is not the one we sent: damage in
 *       transit, retriable)
 *   400 EntityTooLarge, 413 -> EFBIG
 *   412 PreconditionFailed -> EEXIST (only a create sends a precondition,
 *       If-None-Match: *, and it fails because the key exists)
 *   400 other, 411, 414, 416 -> EINVAL (a request we should not have
 *       sent; the S3 code in the log says which)
 *   301, 307 PermanentRedirect, TemporaryRedirect -> EINVAL, hint: the
 *       bucket lives in another region/endpoint
 *   405 MethodNotAllowed -> EPERM
 *   409 BucketAlreadyExists -> EEXIST, BucketNotEmpty -> ENOTEMPTY,
 *       OperationAborted, ConditionalRequestConflict -> EAGAIN (a
 *       conflicting operation is running: AWS answers the latter to a
 *       create racing another write of the key, and asks for a retry),
 *       other 409 -> EINVAL
 *   429, 503 (SlowDown, ServiceUnavailable) -> OBJSTORE_ESLOWDOWN
 *   501 NotImplemented -> EOPNOTSUPP (permanent: the store lacks the call)
 *   507 (RGW's InsufficientCapacity) -> ENOSPC
 *   500, 502, 504, other 5xx -> OBJSTORE_ESERVER
 *   other 4xx -> EINVAL; anything else (1xx, other 3xx) -> EPROTO
 *
 * Transport (curl) failures:
 *   could not connect -> ECONNREFUSED, or the socket's own errno when it
 *       says EHOSTUNREACH, ENETUNREACH, ETIMEDOUT, ...
 *   could not resolve the host -> EHOSTUNREACH (a board on Wi-Fi loses
 *       DNS for a while; a typo shows in the log line, which names it)
 *   timeout, including the low-speed limit -> ETIMEDOUT
 *   send/receive failure, empty reply -> ECONNRESET (or the socket errno)
 *   body cut short (CURLE_PARTIAL_FILE) -> OBJSTORE_ESERVER
 *   garbled HTTP (also "HTTP/0.9", which curl reports as an unsupported
 *       protocol), TLS handshake broken off -> EPROTO
 *   certificate not trusted, CA file unusable -> EACCES (a configuration
 *       fault: retrying will not make the certificate valid)
 *   bad URL -> EINVAL; out of memory -> ENOMEM
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <curl/curl.h>
#include <string.h>

static const char hint_creds[] =
    "bad credentials or clock skew: check AWS_ACCESS_KEY_ID/SECRET and the system clock";
static const char hint_denied[] =
    "the credentials are not allowed to do this (user or bucket policy); S3 also answers 403 "
    "for a missing key when the credentials may not list the bucket";
static const char hint_token[] = "the session token (AWS_SESSION_TOKEN) is expired or invalid";
static const char hint_region[] =
    "the bucket lives in another region or behind another endpoint: check the region and endpoint";
static const char hint_bucket[] = "the bucket does not exist (create it or use the create option)";

static bool is(const char *code, const char *want)
{
    return strcmp(code, want) == 0;
}

struct s3_errmap s3_map_http(long status, const char *code)
{
    if (!code)
        code = "";
    switch (status) {
    case 301:
    case 307:
        return (struct s3_errmap){EINVAL, hint_region};
    case 400:
        if (is(code, "ExpiredToken") || is(code, "InvalidToken") ||
            is(code, "TokenRefreshRequired"))
            return (struct s3_errmap){EACCES, hint_token};
        if (is(code, "AuthorizationHeaderMalformed"))
            return (struct s3_errmap){EINVAL, hint_region};
        if (is(code, "RequestTimeout"))
            return (struct s3_errmap){ETIMEDOUT, NULL};
        if (is(code, "IncompleteBody") || is(code, "BadDigest") ||
            is(code, "XAmzContentSHA256Mismatch"))
            return (struct s3_errmap){EPROTO, NULL};
        if (is(code, "EntityTooLarge"))
            return (struct s3_errmap){EFBIG, NULL};
        return (struct s3_errmap){EINVAL, NULL};
    case 403:
        if (is(code, "SignatureDoesNotMatch") || is(code, "InvalidAccessKeyId") ||
            is(code, "RequestTimeTooSkewed") || is(code, "AuthorizationHeaderMalformed"))
            return (struct s3_errmap){EACCES, hint_creds};
        if (is(code, "QuotaExceeded"))
            return (struct s3_errmap){EDQUOT, NULL};
        if (is(code, "ExpiredToken") || is(code, "InvalidToken"))
            return (struct s3_errmap){EACCES, hint_token};
        if (code[0] == '\0') /* HEAD: no body, so no telling which */
            return (struct s3_errmap){EACCES, "bad credentials, clock skew or missing permission"};
        return (struct s3_errmap){EACCES, hint_denied};
    case 404:
        if (is(code, "NoSuchBucket"))
            return (struct s3_errmap){ENXIO, hint_bucket};
        return (struct s3_errmap){ENOENT, NULL};
    case 405:
        return (struct s3_errmap){EPERM, NULL};
    case 409:
        if (is(code, "BucketAlreadyExists"))
            return (struct s3_errmap){EEXIST, "the bucket name is taken by another account"};
        if (is(code, "BucketNotEmpty"))
            return (struct s3_errmap){ENOTEMPTY, NULL};
        if (is(code, "OperationAborted") || is(code, "ConditionalRequestConflict"))
            return (struct s3_errmap){EAGAIN, NULL};
        return (struct s3_errmap){EINVAL, NULL};
    case 412:
        return (struct s3_errmap){EEXIST, NULL};
    case 413:
        return (struct s3_errmap){EFBIG, NULL};
    case 429:
    case 503:
        return (struct s3_errmap){OBJSTORE_ESLOWDOWN, NULL};
    case 501:
        return (struct s3_errmap){EOPNOTSUPP, NULL};
    case 507:
        return (struct s3_errmap){ENOSPC, NULL};
    default:
        break;
    }
    if (status >= 500 && status <= 599)
        return (struct s3_errmap){OBJSTORE_ESERVER, NULL};
    if (status >= 400 && status <= 499)
        return (struct s3_errmap){EINVAL, NULL};
    return (struct s3_errmap){EPROTO, NULL};
}

/* The socket's errno, when it is a more precise network answer. */
static bool os_errno_useful(long e)
{
    switch (e) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
        return true;
    default:
        return false;
    }
}

int s3_map_curl(int curlcode, long os_errno)
{
    switch ((CURLcode)curlcode) {
    case CURLE_OK:
        return EPROTO; /* not a failure: a caller bug, but never 0 */
    case CURLE_COULDNT_CONNECT:
        return os_errno_useful(os_errno) ? (int)os_errno : ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return os_errno_useful(os_errno) ? (int)os_errno : ECONNRESET;
    case CURLE_PARTIAL_FILE:
        return OBJSTORE_ESERVER;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_RANGE_ERROR:
        return EPROTO;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
        return EACCES;
    case CURLE_UNSUPPORTED_PROTOCOL:
        /* The scheme was checked at open: here this means the answer was
         * not HTTP/1.x ("Received HTTP/0.9"), i.e. garbage. */
        return EPROTO;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return ENOMEM;
    default:
        /* Unknown transport trouble is more often transient than not. */
        return EPROTO;
    }
}

uint64_t s3_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd)
{
    if (attempt == 0)
        return 0;
    uint64_t ceil = base_ms;
    for (unsigned i = 1; i < attempt && ceil < cap_ms; i++)
        ceil *= 2;
    if (ceil > cap_ms)
        ceil = cap_ms;
    return rnd % (ceil + 1);
}
