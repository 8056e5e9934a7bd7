/* primitives.c - the OpenSSL calls sealing and opening share: HMAC-SHA256
 * and AES-256-CTR, and ChaCha20-Poly1305 (the AEAD to seal; its tag and its
 * keystream separately to open), on the contexts a struct seal_ctx keeps.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/params.h>

static int hmac_compute(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE], const void *data,
                        size_t n, uint8_t tag[SEAL_HMAC_SIZE])
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
        EVP_MAC_final(ctx->mc, tag, &tag_len, SEAL_HMAC_SIZE) != 1 || tag_len != SEAL_HMAC_SIZE)
        return EIO;
    return 0;
}

/* One run of a stream cipher over n bytes (n == 0 included). */
static int stream(EVP_CIPHER_CTX *cc, const EVP_CIPHER *cipher, const uint8_t *key,
                  const uint8_t iv[16], const void *in, void *out, size_t n)
{
    /* EVP lengths are int; SEAL_MAX_PLAIN keeps n far below INT_MAX. */
    if (!cipher || n > INT_MAX)
        return EIO;
    int len = 0, fin = 0;
    if (EVP_EncryptInit_ex2(cc, cipher, key, iv, NULL) != 1)
        return EIO;
    if (n > 0 && (EVP_EncryptUpdate(cc, out, &len, in, (int)n) != 1 || (size_t)len != n))
        return EIO;
    /* A stream mode: Final writes nothing but ends the operation. */
    if (EVP_EncryptFinal_ex(cc, (unsigned char *)out + len, &fin) != 1 || fin != 0)
        return EIO;
    return 0;
}

/* OpenSSL's raw ChaCha20 takes a 16-byte IV: the 32-bit block counter
 * (little endian), then the 96-bit nonce, as RFC 8439 lays out the state. */
static void chacha_iv(uint8_t iv[16], uint32_t counter, const uint8_t nonce[SEAL_NONCE_SIZE])
{
    for (int i = 0; i < 4; i++)
        iv[i] = (uint8_t)(counter >> (8 * i));
    memcpy(iv + 4, nonce, SEAL_NONCE_SIZE);
}

/* RFC 8439, 2.8: the AEAD's tag is Poly1305 under a one-time key (the first
 * 32 bytes of ChaCha20 block 0 under this nonce) over
 *   aad | pad16 | ciphertext | pad16 | le64(aad length) | le64(ct length).
 * Computed here the way the AEAD computes it, so that opening can check the
 * tag before it decrypts anything (tests/unit/test_seal.c checks both ways
 * against OpenSSL's AEAD and RFC 8439's test vector). */
static int poly1305_tag(struct seal_ctx *ctx, const uint8_t key[SEAL_KEY_SIZE],
                        const uint8_t nonce[SEAL_NONCE_SIZE], const uint8_t *aad, size_t aad_len,
                        const uint8_t *ct, size_t ct_len, uint8_t tag[SEAL_POLY1305_SIZE])
{
    if (!ctx->pc)
        return EIO;
    static const uint8_t zeros[32];
    uint8_t iv[16], otk[32], lens[16];
    chacha_iv(iv, 0, nonce);
    int err = stream(ctx->chacha_cc, ctx->chacha, key, iv, zeros, otk, sizeof otk);
    for (int i = 0; i < 8; i++) {
        lens[i] = (uint8_t)((uint64_t)aad_len >> (8 * i));
        lens[8 + i] = (uint8_t)((uint64_t)ct_len >> (8 * i));
    }
    size_t tag_len = 0;
    if (!err &&
        (EVP_MAC_init(ctx->pc, otk, sizeof otk, NULL) != 1 ||
         EVP_MAC_update(ctx->pc, aad, aad_len) != 1 ||
         EVP_MAC_update(ctx->pc, zeros, (16 - aad_len % 16) % 16) != 1 ||
         EVP_MAC_update(ctx->pc, ct, ct_len) != 1 ||
         EVP_MAC_update(ctx->pc, zeros, (16 - ct_len % 16) % 16) != 1 ||
         EVP_MAC_update(ctx->pc, lens, sizeof lens) != 1 ||
         EVP_MAC_final(ctx->pc, tag, &tag_len, SEAL_POLY1305_SIZE) != 1 ||
         tag_len != SEAL_POLY1305_SIZE))
        err = EIO;
    seal_wipe(otk, sizeof otk);
    return err;
}

int seal_auth_compute(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const uint8_t *obj, size_t n, uint8_t *tag)
{
    if (hdr->mac == SEAL_MAC_POLY1305)
        return poly1305_tag(ctx, keys->chacha, hdr->iv, obj, SEAL_HDR_SIZE, obj + SEAL_HDR_SIZE,
                            n - SEAL_HDR_SIZE, tag);
    return hmac_compute(ctx, keys->mac, obj, n, tag);
}

int seal_stream_crypt(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const void *in, void *out, size_t n)
{
    if (hdr->cipher == SEAL_CIPHER_CHACHA20POLY1305) {
        /* Block 0 made the one-time Poly1305 key: the payload starts at 1. */
        uint8_t iv[16];
        chacha_iv(iv, 1, hdr->iv);
        return stream(ctx->chacha_cc, ctx->chacha, keys->chacha, iv, in, out, n);
    }
    return stream(ctx->cc, ctx->aes, keys->enc, hdr->iv, in, out, n);
}

int seal_aead_encrypt(struct seal_ctx *ctx, const struct seal_keys *keys,
                      const struct seal_hdr *hdr, const uint8_t aad[SEAL_HDR_SIZE],
                      const void *in, void *out, size_t n, uint8_t tag[SEAL_POLY1305_SIZE])
{
    if (!ctx->aead || n > INT_MAX)
        return EIO;
    EVP_CIPHER_CTX *cc = ctx->aead_cc;
    int len = 0, fin = 0;
    /* 12 bytes is the AEAD's default nonce length. */
    if (EVP_EncryptInit_ex2(cc, ctx->aead, keys->chacha, hdr->iv, NULL) != 1 ||
        EVP_EncryptUpdate(cc, NULL, &len, aad, SEAL_HDR_SIZE) != 1)
        return EIO;
    if (n > 0 && (EVP_EncryptUpdate(cc, out, &len, in, (int)n) != 1 || (size_t)len != n))
        return EIO;
    if (EVP_EncryptFinal_ex(cc, (unsigned char *)out + n, &fin) != 1 || fin != 0 ||
        EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_GET_TAG, SEAL_POLY1305_SIZE, tag) != 1)
        return EIO;
    return 0;
}
