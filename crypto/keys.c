/* keys.c - derive a volume's AES key, HMAC key, ChaCha20-Poly1305 key and
 * key check value from the master key (HKDF-SHA256), compare and wipe them.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

/* The info strings are part of the format: changing one makes every
 * existing volume unreadable (tests/unit/test_keys.c pins their output). */
static const char info_enc[] = "usbd-objstore v1 aes-256-ctr key";
static const char info_mac[] = "usbd-objstore v1 hmac-sha256 key";
static const char info_kcv[] = "usbd-objstore v1 key check value";
/* Its own key, not the AES one: a key is never used by two algorithms. */
static const char info_chacha[] = "usbd-objstore v1 chacha20-poly1305 key";

static int hkdf(EVP_KDF_CTX *kctx, const uint8_t master[SEAL_KEY_SIZE],
                const uint8_t uuid[SEAL_UUID_SIZE], const char *info, uint8_t *out, size_t n)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, SEAL_KEY_SIZE),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)uuid, SEAL_UUID_SIZE),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    /* A reset first, so no parameter of the previous derivation can carry
     * over (how repeated INFO parameters combine has varied in OpenSSL). */
    EVP_KDF_CTX_reset(kctx);
    return EVP_KDF_derive(kctx, out, n, params) == 1 ? 0 : EIO;
}

int seal_keys_derive(const uint8_t master[SEAL_KEY_SIZE], const uint8_t uuid[SEAL_UUID_SIZE],
                     struct seal_keys *out)
{
    if (!out)
        return EINVAL;
    memset(out, 0, sizeof *out);
    if (!master || !uuid)
        return EINVAL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!kdf)
        return EIO;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!kctx)
        return ENOMEM;
    int err = hkdf(kctx, master, uuid, info_enc, out->enc, sizeof out->enc);
    if (!err)
        err = hkdf(kctx, master, uuid, info_mac, out->mac, sizeof out->mac);
    if (!err)
        err = hkdf(kctx, master, uuid, info_chacha, out->chacha, sizeof out->chacha);
    if (!err)
        err = hkdf(kctx, master, uuid, info_kcv, out->kcv, sizeof out->kcv);
    EVP_KDF_CTX_free(kctx);
    if (err) {
        seal_keys_wipe(out);
        return err;
    }
    memcpy(out->uuid, uuid, SEAL_UUID_SIZE);
    return 0;
}

bool seal_kcv_equal(const struct seal_keys *keys, const uint8_t kcv[SEAL_KCV_SIZE])
{
    return CRYPTO_memcmp(keys->kcv, kcv, SEAL_KCV_SIZE) == 0;
}

void seal_wipe(void *p, size_t n)
{
    if (p && n > 0)
        OPENSSL_cleanse(p, n);
}

void seal_keys_wipe(struct seal_keys *keys)
{
    seal_wipe(keys, sizeof *keys);
}
