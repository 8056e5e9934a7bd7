/* test_s3_errors.c - how S3 answers and transport failures map to errno,
 * and that the classification agrees with objstore_err_retriable(); the
 * retry back-off.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/s3_priv.h"
#include "tests/unit/check.h"

#include <curl/curl.h>
#include <string.h>

static int map(long status, const char *code)
{
    return s3_map_http(status, code).err;
}

static const char *hint(long status, const char *code)
{
    const char *h = s3_map_http(status, code).hint;
    return h ? h : "";
}

int main(void)
{
    CHECK(map(404, "NoSuchKey") == ENOENT);
    CHECK(map(404, "") == ENOENT); /* HEAD has no body */
    CHECK(map(404, "NoSuchBucket") == ENXIO);
    CHECK(strstr(hint(404, "NoSuchBucket"), "create"));
    CHECK(!objstore_err_retriable(ENXIO));

    static const char *const cred_codes[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId",
                                             "RequestTimeTooSkewed"};
    for (int i = 0; i < 3; i++) {
        CHECK(map(403, cred_codes[i]) == EACCES);
        CHECK(strstr(hint(403, cred_codes[i]), "clock"));
        CHECK(strstr(hint(403, cred_codes[i]), "AWS_ACCESS_KEY_ID"));
    }
    CHECK(map(403, "AccessDenied") == EACCES && strstr(hint(403, "AccessDenied"), "allowed"));
    CHECK(map(403, "") == EACCES);
    CHECK(map(403, "QuotaExceeded") == EDQUOT);
    CHECK(map(400, "ExpiredToken") == EACCES);

    CHECK(map(500, "InternalError") == OBJSTORE_ESERVER);
    CHECK(map(502, "") == OBJSTORE_ESERVER);
    CHECK(map(504, "") == OBJSTORE_ESERVER);
    CHECK(map(599, "") == OBJSTORE_ESERVER);
    CHECK(map(503, "SlowDown") == OBJSTORE_ESLOWDOWN);
    CHECK(map(503, "ServiceUnavailable") == OBJSTORE_ESLOWDOWN);
    CHECK(map(429, "") == OBJSTORE_ESLOWDOWN);
    CHECK(map(501, "NotImplemented") == EOPNOTSUPP);
    CHECK(map(507, "InsufficientCapacity") == ENOSPC);

    CHECK(map(400, "RequestTimeout") == ETIMEDOUT);
    CHECK(map(400, "XAmzContentSHA256Mismatch") == EPROTO);
    CHECK(map(400, "BadDigest") == EPROTO);
    CHECK(map(400, "EntityTooLarge") == EFBIG);
    CHECK(map(413, "") == EFBIG);
    CHECK(map(400, "InvalidArgument") == EINVAL);
    CHECK(map(400, "AuthorizationHeaderMalformed") == EINVAL);
    CHECK(strstr(hint(400, "AuthorizationHeaderMalformed"), "region"));
    CHECK(map(301, "PermanentRedirect") == EINVAL && strstr(hint(301, ""), "region"));
    CHECK(map(405, "MethodNotAllowed") == EPERM);
    CHECK(map(409, "BucketAlreadyExists") == EEXIST);
    CHECK(map(409, "OperationAborted") == EAGAIN);
    CHECK(map(409, "ConditionalRequestConflict") == EAGAIN);
    CHECK(map(412, "PreconditionFailed") == EEXIST);
    CHECK(map(412, "") == EEXIST);
    CHECK(map(416, "InvalidRange") == EINVAL);
    CHECK(map(418, "") == EINVAL);
    CHECK(map(100, "") == EPROTO);
    CHECK(map(302, "") == EPROTO);

    /* The classification: transient answers are retriable, the rest not. */
    CHECK(objstore_err_retriable(map(500, "")) && objstore_err_retriable(map(503, "")));
    CHECK(objstore_err_retriable(map(400, "RequestTimeout")));
    CHECK(!objstore_err_retriable(map(403, "SignatureDoesNotMatch")));
    CHECK(!objstore_err_retriable(map(404, "NoSuchKey")));
    CHECK(!objstore_err_retriable(map(404, "NoSuchBucket")));
    CHECK(!objstore_err_retriable(map(400, "InvalidArgument")));
    CHECK(!objstore_err_retriable(map(501, "")));

    /* Transport. */
    CHECK(s3_map_curl(CURLE_COULDNT_CONNECT, 0) == ECONNREFUSED);
    CHECK(s3_map_curl(CURLE_COULDNT_CONNECT, ECONNREFUSED) == ECONNREFUSED);
    CHECK(s3_map_curl(CURLE_COULDNT_CONNECT, EHOSTUNREACH) == EHOSTUNREACH);
    CHECK(s3_map_curl(CURLE_COULDNT_CONNECT, ENETUNREACH) == ENETUNREACH);
    CHECK(s3_map_curl(CURLE_COULDNT_CONNECT, EACCES) == ECONNREFUSED);
    CHECK(s3_map_curl(CURLE_COULDNT_RESOLVE_HOST, 0) == EHOSTUNREACH);
    CHECK(s3_map_curl(CURLE_OPERATION_TIMEDOUT, 0) == ETIMEDOUT);
    CHECK(s3_map_curl(CURLE_RECV_ERROR, 0) == ECONNRESET);
    CHECK(s3_map_curl(CURLE_SEND_ERROR, EPIPE) == EPIPE);
    CHECK(s3_map_curl(CURLE_GOT_NOTHING, 0) == ECONNRESET);
    CHECK(s3_map_curl(CURLE_PARTIAL_FILE, 0) == OBJSTORE_ESERVER);
    CHECK(s3_map_curl(CURLE_WEIRD_SERVER_REPLY, 0) == EPROTO);
    CHECK(s3_map_curl(CURLE_UNSUPPORTED_PROTOCOL, 0) == EPROTO); /* HTTP/0.9 */
    CHECK(s3_map_curl(CURLE_PEER_FAILED_VERIFICATION, 0) == EACCES);
    CHECK(s3_map_curl(CURLE_SSL_CACERT_BADFILE, 0) == EACCES);
    CHECK(s3_map_curl(CURLE_URL_MALFORMAT, 0) == EINVAL);
    CHECK(s3_map_curl(CURLE_OUT_OF_MEMORY, 0) == ENOMEM);
    CHECK(s3_map_curl(CURLE_OK, 0) != 0);
    for (int rc = 1; rc < CURL_LAST; rc++)
        CHECK(s3_map_curl(rc, 0) > 0);
    /* Everything network-shaped is retriable; TLS trust and bad URLs not. */
    CHECK(objstore_err_retriable(s3_map_curl(CURLE_COULDNT_CONNECT, 0)));
    CHECK(objstore_err_retriable(s3_map_curl(CURLE_COULDNT_RESOLVE_HOST, 0)));
    CHECK(objstore_err_retriable(s3_map_curl(CURLE_OPERATION_TIMEDOUT, 0)));
    CHECK(objstore_err_retriable(s3_map_curl(CURLE_RECV_ERROR, 0)));
    CHECK(objstore_err_retriable(s3_map_curl(CURLE_PARTIAL_FILE, 0)));
    CHECK(!objstore_err_retriable(s3_map_curl(CURLE_PEER_FAILED_VERIFICATION, 0)));
    CHECK(!objstore_err_retriable(s3_map_curl(CURLE_URL_MALFORMAT, 0)));

    /* Full jitter: within [0, min(cap, base * 2^(n-1))], covering it. */
    CHECK(s3_backoff_ms(0, 100, 5000, 12345) == 0);
    for (unsigned a = 1; a < 70; a++) {
        uint64_t ceil = a < 7 ? 100u << (a - 1) : 5000;
        if (ceil > 5000)
            ceil = 5000;
        uint64_t lo = UINT64_MAX, hi = 0, r = 88172645463325252ull;
        for (int i = 0; i < 2000; i++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            uint64_t ms = s3_backoff_ms(a, 100, 5000, r);
            CHECK(ms <= ceil);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        CHECK(lo < ceil / 10 + 1 && hi > ceil - ceil / 10 - 1);
    }
    CHECK(s3_backoff_ms(1, 100, 5000, UINT64_MAX) <= 100);
    CHECK(s3_backoff_ms(200, 1000, 60000, UINT64_MAX) <= 60000);
    return CHECK_DONE();
}
