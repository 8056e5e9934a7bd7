/* ctx.c - the per-thread struct seal_ctx: create and free the reusable zstd
 * and OpenSSL contexts.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <stdlib.h>

int seal_ctx_new(struct seal_ctx **out)
{
    if (!out)
        return EINVAL;
    *out = NULL;
    struct seal_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ENOMEM;
    int err = ENOMEM;
    ctx->zc = ZSTD_createCCtx();
    ctx->zd = ZSTD_createDCtx();
    ctx->cc = EVP_CIPHER_CTX_new();
    ctx->aead_cc = EVP_CIPHER_CTX_new();
    ctx->chacha_cc = EVP_CIPHER_CTX_new();
    if (!ctx->zc || !ctx->zd || !ctx->cc || !ctx->aead_cc || !ctx->chacha_cc)
        goto fail;
    /* A provider without these algorithms (a FIPS-only build missing CTR,
     * say) is a configuration problem, not a memory one. */
    err = EIO;
    ctx->aes = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
    ctx->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!ctx->aes || !ctx->hmac)
        goto fail;
    ctx->mc = EVP_MAC_CTX_new(ctx->hmac);
    if (!ctx->mc) {
        err = ENOMEM;
        goto fail;
    }
    /* ChaCha20-Poly1305 is optional: a FIPS provider has none of it, and a
     * volume that does not use it must still open (its objects give EIO). */
    ctx->aead = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    ctx->chacha = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL);
    ctx->poly = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    if (ctx->aead && ctx->chacha && ctx->poly) {
        ctx->pc = EVP_MAC_CTX_new(ctx->poly);
        if (!ctx->pc) {
            err = ENOMEM;
            goto fail;
        }
    }
    /* The MAC covers the payload, so zstd's own checksum would be redundant
     * work; the content size in the frame lets opening cross-check it. */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_contentSizeFlag, 1))) {
        err = EIO;
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    seal_ctx_free(ctx);
    return err;
}

void seal_ctx_free(struct seal_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->zc);
    ZSTD_freeDCtx(ctx->zd);
    EVP_CIPHER_CTX_free(ctx->cc);
    EVP_CIPHER_free(ctx->aes);
    EVP_MAC_CTX_free(ctx->mc);
    EVP_MAC_free(ctx->hmac);
    EVP_CIPHER_CTX_free(ctx->aead_cc);
    EVP_CIPHER_CTX_free(ctx->chacha_cc);
    EVP_CIPHER_free(ctx->aead);
    EVP_CIPHER_free(ctx->chacha);
    EVP_MAC_CTX_free(ctx->pc);
    EVP_MAC_free(ctx->poly);
    if (ctx->scratch)
        seal_wipe(ctx->scratch, ctx->scratch_cap);
    free(ctx->scratch);
    free(ctx);
}
