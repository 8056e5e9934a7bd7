/* seal.c - seal one object: compress if it helps, encrypt under a fresh IV,
 * then MAC header and payload (or, with ChaCha20-Poly1305, encrypt and
 * authenticate in one pass of the AEAD).
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

size_t seal_bound(uint32_t plain_len)
{
    if (plain_len > SEAL_MAX_PLAIN)
        return 0;
    return SEAL_HDR_SIZE + ZSTD_compressBound(plain_len) + SEAL_MAC_SIZE;
}

static void set_msg(char *msg, size_t msgsize, const char *text)
{
    if (msg && msgsize > 0)
        snprintf(msg, msgsize, "%s", text);
}

int seal_params_check(const struct seal_params *p, char *msg, size_t msgsize)
{
    set_msg(msg, msgsize, "");
    if (!p) {
        set_msg(msg, msgsize, "no sealing parameters");
        return EINVAL;
    }
    if (p->comp != SEAL_COMP_NONE && p->comp != SEAL_COMP_ZSTD) {
        set_msg(msg, msgsize, "unknown compression (want none or zstd)");
        return EINVAL;
    }
    if (p->cipher != SEAL_CIPHER_NONE && p->cipher != SEAL_CIPHER_AES256CTR &&
        p->cipher != SEAL_CIPHER_CHACHA20POLY1305) {
        set_msg(msg, msgsize, "unknown cipher (want none, aes-256-ctr or chacha20-poly1305)");
        return EINVAL;
    }
    if (p->comp == SEAL_COMP_ZSTD) {
        ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
        if (ZSTD_isError(b.error) || p->level < b.lowerBound || p->level > b.upperBound) {
            if (msg && msgsize > 0)
                snprintf(msg, msgsize, "zstd level %d out of range %d..%d", p->level,
                         b.lowerBound, b.upperBound);
            return EINVAL;
        }
    }
    return 0;
}

static int zstd_errno(size_t r)
{
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? ENOMEM : EIO;
}

/* Compress plain into dst if that makes it smaller. Returns 0 and sets
 * *stored to the compressed size, or to 0 when the caller should store the
 * plaintext as it is; *written is how much of dst zstd wrote either way. */
static int try_compress(struct seal_ctx *ctx, int level, const void *plain, uint32_t plain_len,
                        uint8_t *dst, size_t dst_cap, size_t *stored, size_t *written)
{
    *stored = 0;
    *written = 0;
    /* Nothing of zero bytes can be smaller than zero bytes. */
    if (plain_len == 0)
        return 0;
    size_t r = ZSTD_CCtx_setParameter(ctx->zc, ZSTD_c_compressionLevel, level);
    if (ZSTD_isError(r))
        return EINVAL;
    r = ZSTD_compress2(ctx->zc, dst, dst_cap, plain, plain_len);
    if (ZSTD_isError(r)) {
        /* compress2 leaves the context mid-frame on error; a reset makes the
         * next call start clean. */
        ZSTD_CCtx_reset(ctx->zc, ZSTD_reset_session_only);
        return zstd_errno(r);
    }
    *written = r;
    if (r < plain_len)
        *stored = r;
    return 0;
}

int seal_object(struct seal_ctx *ctx, const struct seal_keys *keys, const struct seal_params *p,
                const struct seal_id *id, const void *plain, uint32_t plain_len, void *out,
                size_t out_cap, size_t *out_len)
{
    if (!ctx || !keys || !id || !out || !out_len || (!plain && plain_len > 0))
        return EINVAL;
    *out_len = 0;
    int err = seal_params_check(p, NULL, 0);
    if (err)
        return err;
    if (!seal_kind_known(id->kind))
        return EINVAL;
    size_t need = seal_bound(plain_len);
    if (need == 0)
        return EINVAL;
    if (out_cap < need)
        return ENOBUFS;

    uint8_t *obj = out;
    uint8_t *payload = obj + SEAL_HDR_SIZE;
    struct seal_hdr h = {
        .version = SEAL_VERSION,
        .kind = (uint8_t)id->kind,
        .comp = SEAL_COMP_NONE,
        .cipher = (uint8_t)p->cipher,
        .mac = (uint8_t)seal_cipher_mac(p->cipher),
        .index = id->index,
        .gen = id->gen,
        .plain_len = plain_len,
        .stored_len = plain_len,
    };
    memcpy(h.uuid, keys->uuid, SEAL_UUID_SIZE);

    size_t zlen = 0, zwritten = 0;
    if (p->comp == SEAL_COMP_ZSTD) {
        err = try_compress(ctx, p->level, plain, plain_len, payload,
                           out_cap - SEAL_HDR_SIZE - SEAL_MAC_SIZE, &zlen, &zwritten);
        if (err)
            goto fail;
    }
    /* Either the compressed bytes are already in place in payload and get
     * encrypted there, or the plaintext goes to payload in one pass
     * (encrypted straight from plain, so it is never copied in the clear). */
    const void *src = plain;
    if (zlen > 0) {
        h.comp = SEAL_COMP_ZSTD;
        h.stored_len = (uint32_t)zlen;
        src = payload;
    }
    size_t mac_len = seal_mac_size(h.mac);
    uint8_t *mac = payload + h.stored_len;
    if (h.cipher != SEAL_CIPHER_NONE) {
        /* A fresh random IV or nonce per object: a stream cipher with a
         * repeated key and IV would give away the XOR of two payloads (and
         * Poly1305 its key). 96 random bits make a repeat unlikely for far
         * more objects than a volume ever has (2^32 objects: about 2^-33). */
        size_t iv_len = h.cipher == SEAL_CIPHER_CHACHA20POLY1305 ? SEAL_NONCE_SIZE : SEAL_IV_SIZE;
        if (RAND_bytes(h.iv, (int)iv_len) != 1) {
            err = EIO;
            goto fail;
        }
    }
    if (h.cipher == SEAL_CIPHER_CHACHA20POLY1305) {
        /* The header is the associated data, so it is final before the
         * payload is encrypted. */
        seal_hdr_encode(&h, obj);
        err = seal_aead_encrypt(ctx, keys, &h, obj, src, payload, h.stored_len, mac);
    } else {
        if (h.cipher == SEAL_CIPHER_AES256CTR)
            err = seal_stream_crypt(ctx, keys, &h, src, payload, h.stored_len);
        else if (src != payload && h.stored_len > 0)
            memcpy(payload, src, h.stored_len);
        seal_hdr_encode(&h, obj);
        if (!err)
            err = seal_auth_compute(ctx, keys, &h, obj, SEAL_HDR_SIZE + (size_t)h.stored_len, mac);
    }
    if (err)
        goto fail;
    *out_len = SEAL_HDR_SIZE + (size_t)h.stored_len + mac_len;
    /* A rejected compression attempt can reach past the object's end: that
     * tail is compressed plaintext, and the caller's buffer must not keep it. */
    if (SEAL_HDR_SIZE + zwritten > *out_len)
        seal_wipe(obj + *out_len, SEAL_HDR_SIZE + zwritten - *out_len);
    return 0;
fail:
    /* A half-built object may hold compressed plaintext: leave none behind. */
    seal_wipe(out, need);
    return err;
}
