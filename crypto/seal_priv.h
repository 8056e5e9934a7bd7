/* seal_priv.h - private to crypto/: shared between its .c files, never
 * included from outside the module (the public API is seal.h).
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#ifndef USBD_CRYPTO_SEAL_PRIV_H
#define USBD_CRYPTO_SEAL_PRIV_H

#include "crypto/seal.h"

#include <openssl/evp.h>
#include <zstd.h>
#include <zstd_errors.h> /* ZSTD_getErrorCode: tell ENOMEM from bad data */

struct seal_ctx {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    EVP_CIPHER *aes;     /* fetched once: an implicit fetch per call costs a lookup */
    EVP_CIPHER_CTX *cc;
    EVP_MAC *hmac;
    EVP_MAC_CTX *mc;
    uint8_t *scratch;    /* decrypted compressed payload while opening */
    size_t scratch_cap;
};

/* Write hdr as the 80-byte wire header at out (reserved bytes zero). */
void seal_hdr_encode(const struct seal_hdr *hdr, uint8_t out[SEAL_HDR_SIZE]);

/* HMAC-SHA256 under key over n bytes at data into tag. Errors: EIO. */
int seal_mac_compute(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE], const void *data,
                     size_t n, uint8_t tag[SEAL_MAC_SIZE]);

/* AES-256-CTR of n bytes from in to out (in == out allowed); the same call
 * encrypts and decrypts. Errors: EIO. */
int seal_ctr_crypt(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE],
                   const uint8_t iv[SEAL_IV_SIZE], const void *in, void *out, size_t n);

#endif /* USBD_CRYPTO_SEAL_PRIV_H */
