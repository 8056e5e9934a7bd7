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
    /* ChaCha20-Poly1305; NULL when the provider lacks them (sealing or
     * opening such an object is then EIO). Sealing uses the AEAD in one
     * pass; opening checks the Poly1305 tag first (ChaCha20 for the
     * one-time key, Poly1305 itself), then decrypts with ChaCha20 alone. */
    EVP_CIPHER *aead, *chacha;
    EVP_CIPHER_CTX *aead_cc, *chacha_cc;
    EVP_MAC *poly;
    EVP_MAC_CTX *pc;
    uint8_t *scratch;    /* decrypted compressed payload while opening */
    size_t scratch_cap;
};

/* Write hdr as the 80-byte wire header at out (reserved bytes zero). */
void seal_hdr_encode(const struct seal_hdr *hdr, uint8_t out[SEAL_HDR_SIZE]);

/* The MAC algorithm cipher implies (enum seal_mac). */
unsigned seal_cipher_mac(unsigned cipher);

/* The authenticator of the object whose header is hdr and whose first n
 * bytes (header and payload, n >= SEAL_HDR_SIZE) are at obj, into tag
 * (seal_mac_size(hdr->mac) bytes): HMAC-SHA256 of those bytes, or the
 * Poly1305 tag that ChaCha20-Poly1305 gives a ciphertext with the header as
 * associated data. Errors: EIO. */
int seal_auth_compute(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const uint8_t *obj, size_t n, uint8_t *tag);

/* hdr's cipher (AES-256-CTR, or ChaCha20 from block 1 as the AEAD uses it)
 * over n bytes from in to out (in == out allowed); the same call encrypts
 * and decrypts. Errors: EIO. */
int seal_stream_crypt(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const void *in, void *out, size_t n);

/* ChaCha20-Poly1305 (OpenSSL's AEAD) of n bytes from in to out (in == out
 * allowed) under hdr's nonce, with the encoded header aad as associated
 * data; the tag into tag (SEAL_POLY1305_SIZE bytes). Errors: EIO. */
int seal_aead_encrypt(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const uint8_t aad[SEAL_HDR_SIZE],
                      const void *in, void *out, size_t n, uint8_t tag[SEAL_POLY1305_SIZE]);

#endif /* USBD_CRYPTO_SEAL_PRIV_H */
