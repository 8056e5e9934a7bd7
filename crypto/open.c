/* open.c - open one object: check structure, MAC, identity and bounds, and
 * only then decrypt and decompress.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* Room for n bytes of decrypted payload. n has been authenticated and is
 * below a plain length the caller accepted, so this never grows past what the
 * caller allows. */
static int scratch_reserve(struct seal_ctx *ctx, size_t n)
{
    if (n <= ctx->scratch_cap)
        return 0;
    uint8_t *p = malloc(n);
    if (!p)
        return ENOMEM;
    if (ctx->scratch) {
        seal_wipe(ctx->scratch, ctx->scratch_cap);
        free(ctx->scratch);
    }
    ctx->scratch = p;
    ctx->scratch_cap = n;
    return 0;
}

static int decompress(struct seal_ctx *ctx, const void *src, size_t src_len, void *dst,
                      uint32_t plain_len)
{
    size_t r = ZSTD_decompressDCtx(ctx->zd, dst, plain_len, src, src_len);
    if (ZSTD_isError(r)) {
        ZSTD_DCtx_reset(ctx->zd, ZSTD_reset_session_only);
        return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? ENOMEM : EPROTO;
    }
    /* More than plain_len cannot happen (dst is exactly that big and zstd
     * fails instead); less means the header lied. */
    return r == plain_len ? 0 : EPROTO;
}

int seal_open(struct seal_ctx *ctx, const struct seal_keys *keys, const struct seal_id *id,
              const void *obj, size_t obj_len, void *out, size_t out_cap, uint32_t *plain_len)
{
    if (!ctx || !keys || !id || !obj || !plain_len || (!out && out_cap > 0))
        return EINVAL;
    *plain_len = 0;

    struct seal_hdr h;
    int err = seal_peek(obj, obj_len, &h);
    if (err)
        return err;

    /* Authenticate before trusting a single header field beyond its
     * structure: nothing below runs on bytes the MAC key did not vouch for. */
    const uint8_t *o = obj;
    size_t macced = SEAL_HDR_SIZE + (size_t)h.stored_len;
    uint8_t tag[SEAL_MAC_SIZE];
    err = seal_auth_compute(ctx, keys, &h, o, macced, tag);
    if (err)
        return err;
    if (CRYPTO_memcmp(tag, o + macced, seal_mac_size(h.mac)) != 0)
        return EBADMSG;

    /* Authentic, but is it the object the caller asked for? A store that
     * serves another chunk, another volume's object or an old generation
     * under this name fails here. */
    if (CRYPTO_memcmp(h.uuid, keys->uuid, SEAL_UUID_SIZE) != 0 || h.kind != id->kind ||
        h.index != id->index || h.gen != id->gen)
        return EBADMSG;
    if (h.plain_len > out_cap)
        return EMSGSIZE;

    const uint8_t *payload = o + SEAL_HDR_SIZE;
    bool cipher = h.cipher != SEAL_CIPHER_NONE;
    if (h.comp == SEAL_COMP_NONE) {
        if (cipher)
            err = seal_stream_crypt(ctx, keys, &h, payload, out, h.stored_len);
        else if (h.stored_len > 0)
            memcpy(out, payload, h.stored_len);
    } else if (!cipher) {
        err = decompress(ctx, payload, h.stored_len, out, h.plain_len);
    } else {
        err = scratch_reserve(ctx, h.stored_len);
        if (!err)
            err = seal_stream_crypt(ctx, keys, &h, payload, ctx->scratch, h.stored_len);
        if (!err)
            err = decompress(ctx, ctx->scratch, h.stored_len, out, h.plain_len);
    }
    if (err) {
        /* Never hand back part of an object that failed. */
        seal_wipe(out, h.plain_len);
        return err;
    }
    *plain_len = h.plain_len;
    return 0;
}
