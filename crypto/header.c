/* header.c - the sealed object's wire header: encode, and parse with every
 * structural check that needs no key (seal_peek).
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal_priv.h"

#include <errno.h>
#include <string.h>

static const uint8_t magic[8] = {'U', 'S', 'B', 'D', 'O', 'B', 'J', '\0'};

/* Offsets of the version 1 header; the table in seal.h is the reference. */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_KIND = 10,
    OFF_COMP = 11,
    OFF_CIPHER = 12,
    OFF_MAC = 13,
    OFF_RSV1 = 14,
    OFF_UUID = 16,
    OFF_INDEX = 32,
    OFF_GEN = 40,
    OFF_PLAIN = 48,
    OFF_STORED = 52,
    OFF_IV = 56,
    OFF_RSV2 = 72,
};
_Static_assert(OFF_RSV2 + 8 == SEAL_HDR_SIZE, "header layout and SEAL_HDR_SIZE disagree");

/* Byte by byte so the format does not depend on the host's endianness or
 * alignment. */
static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

void seal_hdr_encode(const struct seal_hdr *hdr, uint8_t out[SEAL_HDR_SIZE])
{
    memset(out, 0, SEAL_HDR_SIZE);
    memcpy(out + OFF_MAGIC, magic, sizeof magic);
    put_le(out + OFF_VERSION, hdr->version, 2);
    out[OFF_KIND] = hdr->kind;
    out[OFF_COMP] = hdr->comp;
    out[OFF_CIPHER] = hdr->cipher;
    out[OFF_MAC] = hdr->mac;
    memcpy(out + OFF_UUID, hdr->uuid, SEAL_UUID_SIZE);
    put_le(out + OFF_INDEX, hdr->index, 8);
    put_le(out + OFF_GEN, hdr->gen, 8);
    put_le(out + OFF_PLAIN, hdr->plain_len, 4);
    put_le(out + OFF_STORED, hdr->stored_len, 4);
    memcpy(out + OFF_IV, hdr->iv, SEAL_IV_SIZE);
}

size_t seal_mac_size(unsigned mac)
{
    return mac == SEAL_MAC_HMAC_SHA256 ? SEAL_HMAC_SIZE
           : mac == SEAL_MAC_POLY1305  ? SEAL_POLY1305_SIZE
                                       : 0;
}

/* The MAC algorithm that goes with cipher: an AEAD brings its own tag. */
unsigned seal_cipher_mac(unsigned cipher)
{
    return cipher == SEAL_CIPHER_CHACHA20POLY1305 ? SEAL_MAC_POLY1305 : SEAL_MAC_HMAC_SHA256;
}

static const char *const cipher_names[] = {
    [SEAL_CIPHER_NONE] = "none",
    [SEAL_CIPHER_AES256CTR] = "aes-256-ctr",
    [SEAL_CIPHER_CHACHA20POLY1305] = "chacha20-poly1305",
};

const char *seal_cipher_name(unsigned cipher)
{
    return cipher < sizeof cipher_names / sizeof cipher_names[0] ? cipher_names[cipher] : NULL;
}

int seal_cipher_parse(const char *name, enum seal_cipher *out)
{
    for (unsigned i = 0; name && i < sizeof cipher_names / sizeof cipher_names[0]; i++)
        if (strcmp(name, cipher_names[i]) == 0) {
            *out = (enum seal_cipher)i;
            return 0;
        }
    return EINVAL;
}

bool seal_kind_known(unsigned kind)
{
    /* A delta (5) is reserved in the format but has no defined payload yet. */
    return (kind >= SEAL_KIND_CHUNK && kind <= SEAL_KIND_CHECKPOINT) || kind == SEAL_KIND_LEASE ||
           kind == SEAL_KIND_MARK;
}

int seal_peek(const void *obj, size_t obj_len, struct seal_hdr *hdr)
{
    if (!obj || !hdr)
        return EINVAL;
    memset(hdr, 0, sizeof *hdr);
    const uint8_t *p = obj;
    /* The shortest object: a header and the shortest authenticator. */
    if (obj_len < SEAL_HDR_SIZE + SEAL_POLY1305_SIZE)
        return EPROTO;
    if (memcmp(p + OFF_MAGIC, magic, sizeof magic) != 0)
        return EPROTO;

    struct seal_hdr h = {0};
    h.version = (uint16_t)get_le(p + OFF_VERSION, 2);
    /* Everything past the version may mean something else in another
     * version, so nothing else is read before it is known. */
    if (h.version != SEAL_VERSION)
        return EPROTO;
    h.kind = p[OFF_KIND];
    h.comp = p[OFF_COMP];
    h.cipher = p[OFF_CIPHER];
    h.mac = p[OFF_MAC];
    memcpy(h.uuid, p + OFF_UUID, SEAL_UUID_SIZE);
    h.index = get_le(p + OFF_INDEX, 8);
    h.gen = get_le(p + OFF_GEN, 8);
    h.plain_len = (uint32_t)get_le(p + OFF_PLAIN, 4);
    h.stored_len = (uint32_t)get_le(p + OFF_STORED, 4);
    memcpy(h.iv, p + OFF_IV, SEAL_IV_SIZE);

    if (!seal_kind_known(h.kind))
        return EPROTO;
    if (h.comp != SEAL_COMP_NONE && h.comp != SEAL_COMP_ZSTD)
        return EPROTO;
    if (h.cipher != SEAL_CIPHER_NONE && h.cipher != SEAL_CIPHER_AES256CTR &&
        h.cipher != SEAL_CIPHER_CHACHA20POLY1305)
        return EPROTO;
    /* One MAC per cipher: a header that pairs them otherwise (Poly1305
     * without its cipher, HMAC beside an AEAD) is not of this format. */
    if (h.mac != seal_cipher_mac(h.cipher))
        return EPROTO;
    if (!all_zero(p + OFF_RSV1, 2) || !all_zero(p + OFF_RSV2, 8))
        return EPROTO;
    if (h.cipher == SEAL_CIPHER_NONE && !all_zero(h.iv, SEAL_IV_SIZE))
        return EPROTO;
    if (h.cipher == SEAL_CIPHER_CHACHA20POLY1305 &&
        !all_zero(h.iv + SEAL_NONCE_SIZE, SEAL_IV_SIZE - SEAL_NONCE_SIZE))
        return EPROTO;
    if (h.plain_len > SEAL_MAX_PLAIN)
        return EPROTO;
    if ((uint64_t)obj_len != (uint64_t)SEAL_HDR_SIZE + h.stored_len + seal_mac_size(h.mac))
        return EPROTO;
    /* The sealer keeps compression only when it shrinks the payload, so any
     * other combination is not something this format produces. */
    if (h.comp == SEAL_COMP_NONE && h.stored_len != h.plain_len)
        return EPROTO;
    if (h.comp == SEAL_COMP_ZSTD && (h.stored_len == 0 || h.stored_len >= h.plain_len))
        return EPROTO;

    *hdr = h;
    return 0;
}

int seal_tag(const void *obj, size_t obj_len, uint8_t tag[SEAL_TAG_SIZE])
{
    struct seal_hdr h;
    int err = seal_peek(obj, obj_len, &h);
    if (err)
        return err;
    /* The authenticator ends the object; seal_peek checked its length. */
    memcpy(tag, (const uint8_t *)obj + obj_len - seal_mac_size(h.mac), SEAL_TAG_SIZE);
    return 0;
}
