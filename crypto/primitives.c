/* primitives.c - the OpenSSL calls sealing and opening share: HMAC-SHA256
 * and AES-256-CTR on the contexts a struct seal_ctx keeps.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <limits.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

int seal_mac_compute(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE], const void *data,
                     size_t n, uint8_t tag[SEAL_MAC_SIZE])
{
    /* The digest is named on every init: a reused EVP_MAC_CTX keeps it, but
     * naming it costs nothing and keeps this call self-contained. */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t tag_len = 0;
    if (EVP_MAC_init(ctx->mc, key, SEAL_KEY_SIZE, params) != 1 ||
        EVP_MAC_update(ctx->mc, data, n) != 1 ||
        EVP_MAC_final(ctx->mc, tag, &tag_len, SEAL_MAC_SIZE) != 1 || tag_len != SEAL_MAC_SIZE)
        return EIO;
    return 0;
}

int seal_ctr_crypt(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE],
                   const uint8_t iv[SEAL_IV_SIZE], const void *in, void *out, size_t n)
{
    /* EVP lengths are int; SEAL_MAX_PLAIN keeps n far below INT_MAX. */
    if (n > INT_MAX)
        return EIO;
    if (n == 0)
        return 0;
    int len = 0, fin = 0;
    if (EVP_EncryptInit_ex2(ctx->cc, ctx->aes, key, iv, NULL) != 1)
        return EIO;
    if (EVP_EncryptUpdate(ctx->cc, out, &len, in, (int)n) != 1 || (size_t)len != n)
        return EIO;
    /* CTR is a stream mode: Final writes nothing but ends the operation. */
    if (EVP_EncryptFinal_ex(ctx->cc, (unsigned char *)out + len, &fin) != 1 || fin != 0)
        return EIO;
    return 0;
}
