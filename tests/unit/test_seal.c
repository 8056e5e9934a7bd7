/* test_seal.c - crypto/: sealing and opening objects.
 *
 * Round trips over every compression x cipher and several sizes; every
 * byte of a sealed object flipped, every truncation, swapped and replayed
 * objects, a wrong key, hand-made objects with a valid MAC over a bad header
 * (to reach the checks behind the MAC), bounds, and objects sealed by an
 * earlier build that must stay readable. Each for AES-256-CTR + HMAC-SHA256
 * and for ChaCha20-Poly1305, whose objects are also checked against
 * OpenSSL's AEAD directly (both ways), since opening splits it in two.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <zstd.h>

/* CHECK for an errno-style result: prints both values on a mismatch. */
#define CHECK_ERR(expr, want)                                                          \
    do {                                                                               \
        int got_ = (expr);                                                             \
        check_count++;                                                                 \
        if (got_ != (want)) {                                                          \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n", __FILE__, __LINE__, \
                    #expr, got_, strerror(got_), (want), strerror(want));              \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define MIB (1024u * 1024u)

static struct seal_ctx *ctx;
static struct seal_keys keys;
static const uint8_t master[SEAL_KEY_SIZE] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
static const uint8_t uuid[SEAL_UUID_SIZE] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                             0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    return p;
}

static void fill_random(uint8_t *p, size_t n)
{
    while (n > 0) {
        int k = n > (1u << 20) ? 1 << 20 : (int)n;
        CHECK(RAND_bytes(p, k) == 1);
        p += k;
        n -= (size_t)k;
    }
}

/* Text-like data that zstd shrinks a lot but not to nothing. */
static void fill_text(uint8_t *p, size_t n, unsigned seed)
{
    static const char *words[] = {"chunk ", "epoch ", "flush ", "sealed ", "object ",
                                  "volume ", "nbd ",   "zstd ",  "\n",       "gen "};
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 10];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
    }
}

static const enum seal_cipher ciphers[] = {SEAL_CIPHER_AES256CTR, SEAL_CIPHER_CHACHA20POLY1305};
#define NCIPHERS (sizeof ciphers / sizeof ciphers[0])

/* The authenticator's size of a sealed object, from its header. */
static size_t mac_len(const uint8_t *obj, size_t len)
{
    struct seal_hdr h;
    CHECK(seal_peek(obj, len, &h) == 0);
    return seal_mac_size(h.mac);
}

/* Seal into a fresh buffer of exactly seal_bound() bytes. */
static uint8_t *seal_new(const struct seal_params *p, const struct seal_id *id, const void *plain,
                         uint32_t n, size_t *len)
{
    size_t cap = seal_bound(n);
    CHECK(cap > 0);
    uint8_t *obj = xmalloc(cap);
    CHECK_ERR(seal_object(ctx, &keys, p, id, plain, n, obj, cap, len), 0);
    CHECK(*len <= cap);
    return obj;
}

/* Open must fail with EBADMSG or EPROTO and leave out as it was. */
static int open_must_fail(const struct seal_keys *k, const struct seal_id *id, const void *obj,
                          size_t len, size_t plain_cap)
{
    uint8_t *out = xmalloc(plain_cap);
    memset(out, 0x5a, plain_cap);
    uint32_t got = 12345;
    int err = seal_open(ctx, k, id, obj, len, out, plain_cap, &got);
    CHECK(err != 0);
    CHECK(got == 0);
    bool clean = true;
    for (size_t i = 0; i < plain_cap; i++)
        clean &= out[i] == 0x5a || out[i] == 0;
    CHECK(clean);
    free(out);
    return err;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trips(void)
{
    static const uint32_t sizes[] = {0, 1, 15, 16, 17, 100, 4096, 65537, 4 * MIB};
    const struct seal_params params[] = {
        {SEAL_COMP_NONE, 0, SEAL_CIPHER_NONE},       {SEAL_COMP_NONE, 0, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_ZSTD, 1, SEAL_CIPHER_NONE},       {SEAL_COMP_ZSTD, 1, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_ZSTD, 3, SEAL_CIPHER_AES256CTR},  {SEAL_COMP_ZSTD, -5, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_ZSTD, 0, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_NONE, 0, SEAL_CIPHER_CHACHA20POLY1305},
        {SEAL_COMP_ZSTD, 1, SEAL_CIPHER_CHACHA20POLY1305},
        {SEAL_COMP_ZSTD, -5, SEAL_CIPHER_CHACHA20POLY1305},
    };
    uint8_t *rnd = xmalloc(4 * MIB), *txt = xmalloc(4 * MIB), *zero = calloc(1, 4 * MIB);
    uint8_t *out = xmalloc(4 * MIB);
    CHECK(zero != NULL);
    fill_random(rnd, 4 * MIB);
    fill_text(txt, 4 * MIB, 7);
    const uint8_t *inputs[] = {rnd, txt, zero};

    for (size_t pi = 0; pi < sizeof params / sizeof params[0]; pi++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (size_t ii = 0; ii < 3; ii++) {
                const struct seal_params *p = &params[pi];
                uint32_t n = sizes[si];
                struct seal_id id = {SEAL_KIND_CHUNK, 1000 + si, 7 + pi};
                size_t len;
                uint8_t *obj = seal_new(p, &id, inputs[ii], n, &len);

                struct seal_hdr h;
                CHECK_ERR(seal_peek(obj, len, &h), 0);
                CHECK(h.version == 1 && h.kind == SEAL_KIND_CHUNK);
                CHECK(h.index == id.index && h.gen == id.gen);
                CHECK(memcmp(h.uuid, uuid, sizeof uuid) == 0);
                CHECK(h.plain_len == n && h.cipher == (uint8_t)p->cipher);
                bool aead = p->cipher == SEAL_CIPHER_CHACHA20POLY1305;
                CHECK(h.mac == (aead ? SEAL_MAC_POLY1305 : SEAL_MAC_HMAC_SHA256));
                CHECK(len == SEAL_HDR_SIZE + h.stored_len +
                                 (aead ? SEAL_POLY1305_SIZE : SEAL_HMAC_SIZE));
                if (h.comp == SEAL_COMP_ZSTD)
                    CHECK(p->comp == SEAL_COMP_ZSTD && h.stored_len < n);
                else
                    CHECK(h.comp == SEAL_COMP_NONE && h.stored_len == n);
                /* Text and zeros from 4 KiB on always shrink; random data and
                 * tiny inputs never do, so they are stored as they are. */
                if (p->comp == SEAL_COMP_ZSTD && ii != 0 && n >= 4096)
                    CHECK(h.comp == SEAL_COMP_ZSTD);
                if (ii == 0 || n < 16)
                    CHECK(h.comp == SEAL_COMP_NONE);

                memset(out, 0xee, 4 * MIB);
                uint32_t got = 0;
                CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, n, &got), 0);
                CHECK(got == n);
                CHECK(n == 0 || memcmp(out, inputs[ii], n) == 0);
                free(obj);
            }
    free(rnd);
    free(txt);
    free(zero);
    free(out);
}

/* Every kind seals and opens, and kind is part of the identity. */
static void test_kinds(enum seal_cipher cipher)
{
    const struct seal_params p = {SEAL_COMP_ZSTD, 3, cipher};
    uint8_t plain[300], out[300];
    fill_text(plain, sizeof plain, 1);
    for (int k = SEAL_KIND_CHUNK; k <= SEAL_KIND_MARK; k++) {
        if (k == SEAL_KIND_DELTA)
            continue; /* reserved: refused (below) */
        struct seal_id id = {(enum seal_kind)k, 42, 1};
        size_t len;
        uint8_t *obj = seal_new(&p, &id, plain, sizeof plain, &len);
        uint32_t got;
        CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
        CHECK(got == sizeof plain && memcmp(out, plain, got) == 0);
        uint8_t tag[SEAL_TAG_SIZE];
        CHECK_ERR(seal_tag(obj, len, tag), 0); /* the head of the MAC that ends it */
        CHECK(memcmp(tag, obj + len - mac_len(obj, len), SEAL_TAG_SIZE) == 0);
        /* Poly1305's tag is all of it: the 16 bytes that end the object. */
        if (cipher == SEAL_CIPHER_CHACHA20POLY1305)
            CHECK(memcmp(tag, obj + len - SEAL_TAG_SIZE, SEAL_TAG_SIZE) == 0);
        CHECK_ERR(seal_tag(obj, len - 1, tag), EPROTO);
        for (int other = SEAL_KIND_CHUNK; other <= SEAL_KIND_MARK; other++) {
            if (other == k)
                continue;
            struct seal_id wrong = {(enum seal_kind)other, 42, 1};
            CHECK_ERR(open_must_fail(&keys, &wrong, obj, len, sizeof out), EBADMSG);
        }
        free(obj);
    }
}

/* With a cipher the plaintext never shows, and no two objects are alike. */
static void test_encryption_hides_and_varies(void)
{
    uint8_t plain[4096];
    fill_text(plain, sizeof plain, 3);
    struct seal_id id = {SEAL_KIND_CHUNK, 1, 1};
    size_t l1, l2;
    uint8_t *a, *b;
    struct seal_hdr ha, hb;
    static const uint8_t zero_iv[SEAL_IV_SIZE];
    for (size_t c = 0; c < NCIPHERS; c++) {
        const struct seal_params p = {SEAL_COMP_NONE, 0, ciphers[c]};
        a = seal_new(&p, &id, plain, sizeof plain, &l1);
        b = seal_new(&p, &id, plain, sizeof plain, &l2);
        CHECK(l1 == l2);
        CHECK_ERR(seal_peek(a, l1, &ha), 0);
        CHECK_ERR(seal_peek(b, l2, &hb), 0);
        CHECK(memcmp(ha.iv, hb.iv, SEAL_IV_SIZE) != 0);
        CHECK(memcmp(a + SEAL_HDR_SIZE, b + SEAL_HDR_SIZE, sizeof plain) != 0);
        /* No 12-byte window of the text appears in the object. */
        for (size_t i = 0; i + 12 <= sizeof plain; i += 12)
            CHECK(memmem(a, l1, plain + i, 12) == NULL);
        /* ChaCha20-Poly1305: a 96-bit nonce, the IV field's last 4 bytes
         * zero. */
        if (ciphers[c] == SEAL_CIPHER_CHACHA20POLY1305) {
            CHECK(memcmp(ha.iv + SEAL_NONCE_SIZE, zero_iv, SEAL_IV_SIZE - SEAL_NONCE_SIZE) == 0);
            CHECK(memcmp(ha.iv, hb.iv, SEAL_NONCE_SIZE) != 0);
            CHECK(memcmp(ha.iv, zero_iv, SEAL_NONCE_SIZE) != 0);
        }
        free(a);
        free(b);
    }

    /* Without a cipher the payload is the plaintext, and the IV is zero. */
    const struct seal_params clear = {SEAL_COMP_NONE, 0, SEAL_CIPHER_NONE};
    a = seal_new(&clear, &id, plain, sizeof plain, &l1);
    CHECK(memcmp(a + SEAL_HDR_SIZE, plain, sizeof plain) == 0);
    CHECK_ERR(seal_peek(a, l1, &ha), 0);
    CHECK(memcmp(ha.iv, zero_iv, SEAL_IV_SIZE) == 0);
    free(a);
}

/* ----------------------------------------------------------------- damage */

static void flip_every_byte(const struct seal_params *p, const uint8_t *plain, uint32_t n,
                            size_t payload_step)
{
    struct seal_id id = {SEAL_KIND_CHUNK, 5, 9};
    size_t len;
    uint8_t *obj = seal_new(p, &id, plain, n, &len);
    uint8_t *bad = xmalloc(len);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    size_t tried = 0, ml = mac_len(obj, len);
    for (size_t i = 0; i < len; i++) {
        /* Header and MAC: every byte. A large payload: a sample of them. */
        bool in_payload = i >= SEAL_HDR_SIZE && i < len - ml;
        if (in_payload && (i - SEAL_HDR_SIZE) % payload_step != 0)
            continue;
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(bad, obj, len);
            bad[i] ^= masks[m];
            int err = open_must_fail(&keys, &id, bad, len, n);
            if (err != EBADMSG && err != EPROTO) {
                fprintf(stderr, "byte %zu ^ 0x%02x: error %d\n", i, masks[m], err);
                CHECK(0);
            }
            tried++;
        }
    }
    CHECK(tried >= 3 * (SEAL_HDR_SIZE + ml));
    free(bad);
    free(obj);
}

static void test_flipped_bytes(void)
{
    uint8_t small[300];
    fill_text(small, sizeof small, 11);
    const struct seal_params all[] = {
        {SEAL_COMP_ZSTD, 3, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_NONE, 0, SEAL_CIPHER_AES256CTR},
        {SEAL_COMP_ZSTD, 1, SEAL_CIPHER_NONE},
        {SEAL_COMP_NONE, 0, SEAL_CIPHER_NONE},
        {SEAL_COMP_ZSTD, 3, SEAL_CIPHER_CHACHA20POLY1305},
        {SEAL_COMP_NONE, 0, SEAL_CIPHER_CHACHA20POLY1305},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        flip_every_byte(&all[i], small, sizeof small, 1);
    flip_every_byte(&all[0], small, 0, 1);
    flip_every_byte(&all[4], small, 0, 1);

    uint32_t n = 4 * MIB;
    uint8_t *big = xmalloc(n);
    fill_text(big, n, 12);
    flip_every_byte(&all[0], big, n, 40009);
    flip_every_byte(&all[4], big, n, 40009);
    free(big);
}

static void test_truncated_and_extended(enum seal_cipher cipher)
{
    uint8_t plain[500];
    fill_text(plain, sizeof plain, 13);
    struct seal_id id = {SEAL_KIND_EPOCH, 77, 0};
    const struct seal_params p = {SEAL_COMP_ZSTD, 3, cipher};
    size_t len;
    uint8_t *obj = seal_new(&p, &id, plain, sizeof plain, &len);
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so ASan sees any read past the end. */
        uint8_t *t = xmalloc(cut);
        memcpy(t, obj, cut);
        CHECK_ERR(open_must_fail(&keys, &id, t, cut, sizeof plain), EPROTO);
        struct seal_hdr h;
        CHECK_ERR(seal_peek(t, cut, &h), EPROTO);
        free(t);
    }
    uint8_t *longer = xmalloc(len + 1);
    memcpy(longer, obj, len);
    longer[len] = 0;
    CHECK_ERR(open_must_fail(&keys, &id, longer, len + 1, sizeof plain), EPROTO);
    free(longer);
    free(obj);
}

/* --------------------------------------------------------- wrong identity */

static void test_swapped_replayed_wrong_key(enum seal_cipher cipher)
{
    uint8_t plain[1000], out[1000];
    fill_text(plain, sizeof plain, 17);
    const struct seal_params p = {SEAL_COMP_ZSTD, 1, cipher};
    struct seal_id id = {SEAL_KIND_CHUNK, 0x1a, 7};
    size_t len;
    uint8_t *obj = seal_new(&p, &id, plain, sizeof plain, &len);
    uint32_t got;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);

    /* Another chunk's object served under this name. */
    struct seal_id other = id;
    other.index = 0x1b;
    CHECK_ERR(open_must_fail(&keys, &other, obj, len, sizeof out), EBADMSG);
    other.index = 0x1a + (1ull << 32);
    CHECK_ERR(open_must_fail(&keys, &other, obj, len, sizeof out), EBADMSG);
    /* Generation 7 replayed where 8 was expected, and the reverse. */
    other = id;
    other.gen = 8;
    CHECK_ERR(open_must_fail(&keys, &other, obj, len, sizeof out), EBADMSG);
    other.gen = 6;
    CHECK_ERR(open_must_fail(&keys, &other, obj, len, sizeof out), EBADMSG);

    /* Another volume under the same master key: other keys, so the MAC
     * fails. */
    uint8_t uuid2[SEAL_UUID_SIZE];
    memcpy(uuid2, uuid, sizeof uuid2);
    uuid2[15] ^= 1;
    struct seal_keys k2;
    CHECK_ERR(seal_keys_derive(master, uuid2, &k2), 0);
    CHECK_ERR(open_must_fail(&k2, &id, obj, len, sizeof out), EBADMSG);
    /* Same MAC key but a different volume uuid expected: the identity check
     * alone must catch it. */
    k2 = keys;
    k2.uuid[0] ^= 0x80;
    CHECK_ERR(open_must_fail(&k2, &id, obj, len, sizeof out), EBADMSG);

    /* A wrong master key: EBADMSG, and its KCV differs, which is how a
     * caller tells "wrong key" from "damaged". */
    uint8_t master2[SEAL_KEY_SIZE];
    memcpy(master2, master, sizeof master2);
    master2[0] ^= 1;
    CHECK_ERR(seal_keys_derive(master2, uuid, &k2), 0);
    CHECK_ERR(open_must_fail(&k2, &id, obj, len, sizeof out), EBADMSG);
    CHECK(!seal_kcv_equal(&k2, keys.kcv));
    CHECK(seal_kcv_equal(&keys, keys.kcv));
    seal_keys_wipe(&k2);
    free(obj);
}

/* ------------------------------------------ hand-made, authentic, but bad */

enum { OFF_VERSION = 8, OFF_KIND = 10, OFF_COMP = 11, OFF_CIPHER = 12, OFF_MAC = 13,
       OFF_PLAIN = 48, OFF_STORED = 52, OFF_IV = 56 };

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the MAC at the end of obj as the sealer would. */
static void remac(uint8_t *obj, size_t len)
{
    unsigned tag_len = 0;
    CHECK(HMAC(EVP_sha256(), keys.mac, SEAL_KEY_SIZE, obj, len - SEAL_MAC_SIZE,
               obj + len - SEAL_MAC_SIZE, &tag_len) != NULL);
    CHECK(tag_len == SEAL_MAC_SIZE);
}

/* Build an object with cipher none by hand: header fields as given, the
 * payload as given, a valid MAC. */
static uint8_t *craft(uint8_t comp, uint32_t plain_len, const void *payload, uint32_t stored,
                      size_t *len)
{
    const struct seal_params p = {SEAL_COMP_NONE, 0, SEAL_CIPHER_NONE};
    struct seal_id id = {SEAL_KIND_CHUNK, 3, 4};
    size_t l0;
    uint8_t *base = seal_new(&p, &id, "", 0, &l0); /* a valid header to start from */
    *len = SEAL_HDR_SIZE + stored + SEAL_MAC_SIZE;
    uint8_t *obj = xmalloc(*len);
    memcpy(obj, base, SEAL_HDR_SIZE);
    free(base);
    obj[OFF_COMP] = comp;
    put32(obj + OFF_PLAIN, plain_len);
    put32(obj + OFF_STORED, stored);
    if (stored)
        memcpy(obj + SEAL_HDR_SIZE, payload, stored);
    remac(obj, *len);
    return obj;
}

static void test_authentic_but_malformed(void)
{
    const struct seal_id id = {SEAL_KIND_CHUNK, 3, 4};
    uint8_t plain[2000];
    fill_text(plain, sizeof plain, 19);
    size_t len;

    /* The starting point opens: the crafting itself is sound. */
    uint8_t *obj = craft(SEAL_COMP_NONE, 100, plain, 100, &len);
    uint8_t out[2000];
    uint32_t got;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == 100 && memcmp(out, plain, 100) == 0);

    /* Each header field set to something this version does not know. */
    struct {
        size_t off;
        uint8_t val;
    } fields[] = {
        {0, 'X'},            /* magic */
        {OFF_VERSION, 2},    {OFF_VERSION, 0},   {OFF_VERSION + 1, 1},
        {OFF_KIND, 0},       {OFF_KIND, SEAL_KIND_DELTA}, {OFF_KIND, 8}, {OFF_KIND, 200},
        {OFF_COMP, 2},       {OFF_CIPHER, 2},    {OFF_MAC, 0}, {OFF_MAC, 2},
        {14, 1},             {15, 1},            /* reserved */
        {72, 1},             {79, 0x80},         /* reserved */
        {OFF_IV, 1},         {OFF_IV + 15, 1},   /* an IV without a cipher */
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint8_t *bad = xmalloc(len);
        memcpy(bad, obj, len);
        bad[fields[i].off] = fields[i].val;
        remac(bad, len);
        struct seal_id want = id;
        if (fields[i].off == OFF_KIND)
            want.kind = (enum seal_kind)fields[i].val;
        CHECK_ERR(open_must_fail(&keys, &want, bad, len, sizeof out), EPROTO);
        free(bad);
    }
    free(obj);

    /* Compression none, but stored and plain lengths differ. */
    obj = craft(SEAL_COMP_NONE, 101, plain, 100, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);

    /* A real zstd frame of 2000 bytes, with a header that claims more, less,
     * or no gain from compression. */
    uint8_t z[2000];
    size_t zlen = ZSTD_compress(z, sizeof z, plain, sizeof plain, 3);
    CHECK(!ZSTD_isError(zlen) && zlen < 1000);
    obj = craft(SEAL_COMP_ZSTD, 2000, z, (uint32_t)zlen, &len);
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == 2000 && memcmp(out, plain, 2000) == 0);
    free(obj);
    static const uint32_t lies[] = {1999, 2001, 1000};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        obj = craft(SEAL_COMP_ZSTD, lies[i], z, (uint32_t)zlen, &len);
        /* The failure happens after decompressing into out: what is left in
         * out must not be the plaintext (open_must_fail checks it). */
        CHECK_ERR(open_must_fail(&keys, &id, obj, len, 4000), EPROTO);
        free(obj);
    }
    obj = craft(SEAL_COMP_ZSTD, (uint32_t)zlen, z, (uint32_t)zlen, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);
    obj = craft(SEAL_COMP_ZSTD, SEAL_MAX_PLAIN + 1, z, (uint32_t)zlen, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);
    obj = craft(SEAL_COMP_ZSTD, 10, "", 0, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);

    /* Garbage where a zstd frame should be. */
    uint8_t junk[500];
    fill_random(junk, sizeof junk);
    obj = craft(SEAL_COMP_ZSTD, 1000, junk, sizeof junk, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);
    /* A good frame followed by junk. */
    uint8_t two[1100];
    memcpy(two, z, zlen);
    memcpy(two + zlen, junk, 50);
    obj = craft(SEAL_COMP_ZSTD, 2000, two, (uint32_t)zlen + 50, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);
}


/* -------------------------------------------------- ChaCha20-Poly1305 */

/* The fields of a header as test-only offsets (seal.h's table). */
enum { OFF_NONCE = OFF_IV, OFF_IV_TAIL = OFF_IV + SEAL_NONCE_SIZE };

/* OpenSSL's AEAD by itself, as any RFC 8439 implementation would run it:
 * the 80 header bytes of obj as associated data, its nonce, n bytes of in
 * to out (encrypt) and the tag to or from tag. Returns 1 if it worked (for
 * decryption: the tag matched). */
static int aead_run(bool enc, const uint8_t *hdr, const uint8_t *in, size_t n, uint8_t *out,
                    uint8_t tag[SEAL_POLY1305_SIZE])
{
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    CHECK(cc != NULL);
    int len = 0, ok = EVP_CipherInit_ex(cc, EVP_chacha20_poly1305(), NULL, keys.chacha,
                                        hdr + OFF_NONCE, enc ? 1 : 0) == 1 &&
                      EVP_CipherUpdate(cc, NULL, &len, hdr, SEAL_HDR_SIZE) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_SET_TAG, SEAL_POLY1305_SIZE, tag) == 1;
    if (ok && n > 0)
        ok = EVP_CipherUpdate(cc, out, &len, in, (int)n) == 1 && (size_t)len == n;
    if (ok)
        ok = EVP_CipherFinal_ex(cc, out + n, &len) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_GET_TAG, SEAL_POLY1305_SIZE, tag) == 1;
    EVP_CIPHER_CTX_free(cc);
    return ok;
}

/* A ChaCha20-Poly1305 object made by OpenSSL's AEAD alone, not by
 * seal_object(): hdr as given (80 bytes), plaintext payload of stored bytes
 * encrypted, the tag after it. */
static uint8_t *craft_aead(const uint8_t *hdr, const void *payload, uint32_t stored, size_t *len)
{
    *len = SEAL_HDR_SIZE + stored + SEAL_POLY1305_SIZE;
    uint8_t *obj = xmalloc(*len);
    memcpy(obj, hdr, SEAL_HDR_SIZE);
    put32(obj + OFF_STORED, stored);
    CHECK(aead_run(true, obj, payload, stored, obj + SEAL_HDR_SIZE, obj + *len - SEAL_POLY1305_SIZE));
    return obj;
}

/* seal_object()'s ChaCha20-Poly1305 objects are the AEAD's, byte for byte:
 * OpenSSL's AEAD opens them (header as associated data), and seal_open()
 * (which checks the tag with Poly1305 before it decrypts with ChaCha20)
 * opens what the AEAD alone made, refusing it once anything changes. */
static void test_aead_interop(void)
{
    static const uint32_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 1000, 65537};
    uint8_t *plain = xmalloc(65537), *out = xmalloc(65537 + 64);
    fill_text(plain, 65537, 29);
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int comp = 0; comp < 2; comp++) {
            uint32_t n = sizes[si];
            struct seal_params p = {comp ? SEAL_COMP_ZSTD : SEAL_COMP_NONE, 1,
                                    SEAL_CIPHER_CHACHA20POLY1305};
            struct seal_id id = {SEAL_KIND_CHUNK, si, 3};
            size_t len;
            uint8_t *obj = seal_new(&p, &id, plain, n, &len);
            struct seal_hdr h;
            CHECK_ERR(seal_peek(obj, len, &h), 0);
            uint8_t tag[SEAL_POLY1305_SIZE];
            memcpy(tag, obj + len - SEAL_POLY1305_SIZE, sizeof tag);
            CHECK(aead_run(false, obj, obj + SEAL_HDR_SIZE, h.stored_len, out, tag));
            if (h.comp == SEAL_COMP_NONE)
                CHECK(n == 0 || memcmp(out, plain, n) == 0);
            tag[0] ^= 1;
            CHECK(!aead_run(false, obj, obj + SEAL_HDR_SIZE, h.stored_len, out, tag));

            /* The other way: the same header, a fresh nonce, the AEAD alone. */
            if (h.comp == SEAL_COMP_NONE) {
                uint8_t hdr[SEAL_HDR_SIZE];
                memcpy(hdr, obj, sizeof hdr);
                fill_random(hdr + OFF_NONCE, SEAL_NONCE_SIZE);
                size_t clen;
                uint8_t *crafted = craft_aead(hdr, plain, n, &clen);
                CHECK(clen == len);
                uint32_t got = 1;
                CHECK_ERR(seal_open(ctx, &keys, &id, crafted, clen, out, n, &got), 0);
                CHECK(got == n && (n == 0 || memcmp(out, plain, n) == 0));
                crafted[SEAL_HDR_SIZE - 1 - (n % 7)] ^= 0x10; /* the reserved tail */
                CHECK(open_must_fail(&keys, &id, crafted, clen, n) == EPROTO);
                crafted[SEAL_HDR_SIZE - 1 - (n % 7)] ^= 0x10;
                crafted[OFF_NONCE + n % SEAL_NONCE_SIZE] ^= 0x01; /* the nonce is AAD too */
                CHECK_ERR(open_must_fail(&keys, &id, crafted, clen, n), EBADMSG);
                free(crafted);
            }
            free(obj);
        }
    free(plain);
    free(out);
}

/* Authentic to the AEAD (a valid tag over a bad header), refused for its
 * structure: the checks behind the tag. */
static void test_aead_authentic_but_malformed(void)
{
    const struct seal_params p = {SEAL_COMP_NONE, 0, SEAL_CIPHER_CHACHA20POLY1305};
    const struct seal_id id = {SEAL_KIND_CHUNK, 3, 4};
    uint8_t plain[2000], out[4000], hdr[SEAL_HDR_SIZE];
    fill_text(plain, sizeof plain, 31);
    size_t len;
    uint8_t *base = seal_new(&p, &id, plain, 100, &len);
    memcpy(hdr, base, sizeof hdr);
    free(base);

    uint8_t *obj = craft_aead(hdr, plain, 100, &len);
    uint32_t got;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == 100 && memcmp(out, plain, 100) == 0);
    free(obj);

    /* A MAC byte that does not go with the cipher, a cipher byte that does
     * not go with Poly1305, an unknown cipher, the nonce field's tail. */
    struct {
        size_t off;
        uint8_t val;
    } fields[] = {
        {OFF_MAC, SEAL_MAC_HMAC_SHA256}, {OFF_MAC, 0},    {OFF_MAC, 3},
        {OFF_CIPHER, SEAL_CIPHER_AES256CTR}, {OFF_CIPHER, 3}, {OFF_IV_TAIL, 1},
        {OFF_IV + 15, 0x80},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint8_t bad[SEAL_HDR_SIZE];
        memcpy(bad, hdr, sizeof bad);
        bad[fields[i].off] = fields[i].val;
        obj = craft_aead(bad, plain, 100, &len);
        CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
        free(obj);
    }
    /* Poly1305 named beside cipher none: no key stream to key it. */
    uint8_t bad[SEAL_HDR_SIZE];
    memcpy(bad, hdr, sizeof bad);
    bad[OFF_CIPHER] = SEAL_CIPHER_NONE;
    memset(bad + OFF_IV, 0, SEAL_IV_SIZE);
    obj = craft_aead(bad, plain, 100, &len);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
    free(obj);
    /* HMAC's length (32 bytes) after a ChaCha20-Poly1305 payload. */
    obj = craft_aead(hdr, plain, 100, &len);
    uint8_t *longer = xmalloc(len + 16);
    memcpy(longer, obj, len);
    memset(longer + len, 0, 16);
    CHECK_ERR(open_must_fail(&keys, &id, longer, len + 16, sizeof out), EPROTO);
    free(longer);
    free(obj);

    /* A real zstd frame under the AEAD, with a header that tells the truth,
     * then lies about the plain length: the lie shows after decryption, and
     * out keeps nothing of it. */
    uint8_t z[2000];
    size_t zlen = ZSTD_compress(z, sizeof z, plain, sizeof plain, 3);
    CHECK(!ZSTD_isError(zlen) && zlen < 1000);
    static const uint32_t plains[] = {2000, 1999, 2001};
    for (size_t i = 0; i < sizeof plains / sizeof plains[0]; i++) {
        uint8_t zh[SEAL_HDR_SIZE];
        memcpy(zh, hdr, sizeof zh);
        zh[OFF_COMP] = SEAL_COMP_ZSTD;
        put32(zh + OFF_PLAIN, plains[i]);
        obj = craft_aead(zh, z, (uint32_t)zlen, &len);
        if (i == 0) {
            CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
            CHECK(got == 2000 && memcmp(out, plain, 2000) == 0);
        } else {
            CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EPROTO);
        }
        free(obj);
    }
}

/* seal_open()'s order for either cipher: a forged or misplaced object is
 * EBADMSG even when it would not fit (never EMSGSIZE first), and an
 * authentic one too large is EMSGSIZE with out untouched. */
static void test_check_order(enum seal_cipher cipher)
{
    uint8_t plain[1000], out[1000];
    fill_text(plain, sizeof plain, 37);
    const struct seal_params p = {SEAL_COMP_ZSTD, 1, cipher};
    struct seal_id id = {SEAL_KIND_CHUNK, 9, 9};
    size_t len;
    uint8_t *obj = seal_new(&p, &id, plain, sizeof plain, &len);
    uint32_t got;
    memset(out, 0x5a, sizeof out);
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, 10, &got), EMSGSIZE);
    bool untouched = true;
    for (size_t i = 0; i < sizeof out; i++)
        untouched &= out[i] == 0x5a;
    CHECK(untouched);
    struct seal_id other = id;
    other.gen = 10;
    CHECK_ERR(seal_open(ctx, &keys, &other, obj, len, out, 10, &got), EBADMSG);
    obj[SEAL_HDR_SIZE + 3] ^= 1;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, 10, &got), EBADMSG);
    CHECK_ERR(open_must_fail(&keys, &id, obj, len, sizeof out), EBADMSG);
    free(obj);
}

static void test_names(void)
{
    for (unsigned c = 0; c <= SEAL_CIPHER_CHACHA20POLY1305; c++) {
        enum seal_cipher back;
        CHECK(seal_cipher_name(c) != NULL);
        CHECK_ERR(seal_cipher_parse(seal_cipher_name(c), &back), 0);
        CHECK(back == (enum seal_cipher)c);
    }
    CHECK(strcmp(seal_cipher_name(SEAL_CIPHER_CHACHA20POLY1305), "chacha20-poly1305") == 0);
    CHECK(strcmp(seal_cipher_name(SEAL_CIPHER_AES256CTR), "aes-256-ctr") == 0);
    CHECK(seal_cipher_name(3) == NULL && seal_cipher_name(255) == NULL);
    enum seal_cipher c = SEAL_CIPHER_NONE;
    CHECK_ERR(seal_cipher_parse("chacha20", &c), EINVAL);
    CHECK_ERR(seal_cipher_parse("", &c), EINVAL);
    CHECK_ERR(seal_cipher_parse(NULL, &c), EINVAL);
    CHECK(c == SEAL_CIPHER_NONE);
    CHECK(seal_mac_size(SEAL_MAC_HMAC_SHA256) == 32 && seal_mac_size(SEAL_MAC_POLY1305) == 16);
    CHECK(seal_mac_size(0) == 0 && seal_mac_size(3) == 0);
    /* seal_bound leaves room for the larger authenticator. */
    CHECK(seal_bound(0) >= SEAL_HDR_SIZE + SEAL_HMAC_SIZE);
    (void)seal_cpu_has_aes(); /* callable anywhere; its answer is the CPU's */
}

/* ----------------------------------------------------------- arguments */

static void test_bounds_and_arguments(void)
{
    CHECK(seal_bound(0) == SEAL_HDR_SIZE + ZSTD_compressBound(0) + SEAL_MAC_SIZE);
    CHECK(seal_bound(4 * MIB) >= SEAL_HDR_SIZE + 4 * MIB + SEAL_MAC_SIZE);
    CHECK(seal_bound(SEAL_MAX_PLAIN) > SEAL_MAX_PLAIN);
    CHECK(seal_bound(SEAL_MAX_PLAIN + 1) == 0);
    CHECK(seal_bound(UINT32_MAX) == 0);

    uint8_t plain[1000], out[1000];
    fill_text(plain, sizeof plain, 23);
    struct seal_id id = {SEAL_KIND_CHUNK, 1, 1};
    struct seal_params p = {SEAL_COMP_ZSTD, 3, SEAL_CIPHER_AES256CTR};
    size_t cap = seal_bound(sizeof plain), len = 99;
    uint8_t *obj = xmalloc(cap);

    CHECK_ERR(seal_object(ctx, &keys, &p, &id, plain, sizeof plain, obj, cap - 1, &len),
              ENOBUFS);
    CHECK(len == 0);
    CHECK_ERR(seal_object(ctx, &keys, &p, &id, plain, SEAL_MAX_PLAIN + 1, obj, cap, &len),
              EINVAL);
    CHECK_ERR(seal_object(NULL, &keys, &p, &id, plain, sizeof plain, obj, cap, &len), EINVAL);
    CHECK_ERR(seal_object(ctx, &keys, &p, &id, NULL, 1, obj, cap, &len), EINVAL);
    struct seal_id bad_id = {SEAL_KIND_DELTA, 1, 1};
    CHECK_ERR(seal_object(ctx, &keys, &p, &bad_id, plain, sizeof plain, obj, cap, &len), EINVAL);
    bad_id.kind = (enum seal_kind)0;
    CHECK_ERR(seal_object(ctx, &keys, &p, &bad_id, plain, sizeof plain, obj, cap, &len), EINVAL);

    char msg[100];
    struct seal_params bad = p;
    bad.level = ZSTD_maxCLevel() + 1;
    CHECK_ERR(seal_params_check(&bad, msg, sizeof msg), EINVAL);
    CHECK(strstr(msg, "zstd level") != NULL);
    CHECK_ERR(seal_object(ctx, &keys, &bad, &id, plain, sizeof plain, obj, cap, &len), EINVAL);
    bad = p;
    bad.comp = (enum seal_comp)2;
    CHECK_ERR(seal_params_check(&bad, msg, sizeof msg), EINVAL);
    bad = p;
    bad.cipher = (enum seal_cipher)7;
    CHECK_ERR(seal_params_check(&bad, msg, sizeof msg), EINVAL);
    CHECK_ERR(seal_params_check(&p, msg, sizeof msg), 0);
    CHECK(msg[0] == '\0');
    /* The level is ignored without compression. */
    bad = (struct seal_params){SEAL_COMP_NONE, 1000, SEAL_CIPHER_NONE};
    CHECK_ERR(seal_params_check(&bad, NULL, 0), 0);

    /* Extreme valid levels work. */
    int levels[] = {ZSTD_minCLevel(), -1, 0, 1, ZSTD_maxCLevel()};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        p.level = levels[i];
        CHECK_ERR(seal_object(ctx, &keys, &p, &id, plain, sizeof plain, obj, cap, &len), 0);
        uint32_t got;
        CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
        CHECK(got == sizeof plain && memcmp(out, plain, got) == 0);
    }

    /* An authentic object larger than the caller allows: EMSGSIZE, and out
     * untouched. */
    p.level = 3;
    CHECK_ERR(seal_object(ctx, &keys, &p, &id, plain, sizeof plain, obj, cap, &len), 0);
    memset(out, 0x5a, sizeof out);
    uint32_t got = 1;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof plain - 1, &got), EMSGSIZE);
    CHECK(got == 0);
    bool untouched = true;
    for (size_t i = 0; i < sizeof out; i++)
        untouched &= out[i] == 0x5a;
    CHECK(untouched);
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, NULL, 0, &got), EMSGSIZE);
    CHECK_ERR(seal_open(ctx, &keys, &id, NULL, len, out, sizeof out, &got), EINVAL);
    struct seal_hdr h;
    CHECK_ERR(seal_peek(NULL, len, &h), EINVAL);

    /* An empty object needs no output buffer at all. */
    size_t elen;
    uint8_t *empty = seal_new(&p, &id, NULL, 0, &elen);
    CHECK(elen == SEAL_HDR_SIZE + SEAL_MAC_SIZE);
    got = 1;
    CHECK_ERR(seal_open(ctx, &keys, &id, empty, elen, NULL, 0, &got), 0);
    CHECK(got == 0);
    free(empty);

    /* The context still works after all those failures. */
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == sizeof plain && memcmp(out, plain, got) == 0);
    free(obj);
}

/* One context, many objects of mixed sizes and settings, interleaved. */
static void test_context_reuse(void)
{
    uint8_t *plain = xmalloc(MIB), *out = xmalloc(MIB);
    uint8_t *obj = xmalloc(seal_bound(MIB));
    for (unsigned i = 0; i < 64; i++) {
        uint32_t n = (i * 40503u) % MIB;
        if (i % 3 == 0)
            fill_random(plain, n);
        else
            fill_text(plain, n, i);
        static const enum seal_cipher mix[] = {SEAL_CIPHER_AES256CTR, SEAL_CIPHER_NONE,
                                               SEAL_CIPHER_CHACHA20POLY1305};
        struct seal_params p = {i % 2 ? SEAL_COMP_ZSTD : SEAL_COMP_NONE, (int)(i % 5) - 1,
                                mix[(i / 2) % 3]};
        struct seal_id id = {SEAL_KIND_CHUNK, i, i * 3};
        size_t len;
        CHECK_ERR(seal_object(ctx, &keys, &p, &id, plain, n, obj, seal_bound(MIB), &len), 0);
        uint32_t got;
        CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, MIB, &got), 0);
        CHECK(got == n && memcmp(out, plain, n) == 0);
    }
    free(plain);
    free(out);
    free(obj);
}

/* An object sealed (zstd 3, AES) by the first version of this code, with
 * the master key 00..1f and volume a0..af: chunk 0x1a, generation 7, plain
 * text "usbd-objstore golden object\n" eight times. If this fails, existing
 * volumes have become unreadable: the format changed without a version bump. */
static const char golden_hex[] =
    "555342444f424a000100010101010000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf1a000000"
    "000000000700000000000000e00000002c0000009e263b3409172506dedda62e78c0c6a1"
    "0000000000000000396bc8e0bea12254d2cb8842517888de6d8194da1b347188736fcce9"
    "f2ac5a6e130dcb4adbbc1fe09864590a2d33275d502c673e490f3ae7fdf16f5faf8fa70c"
    "b4798f1e250e6d61034950f8";

static int unhex(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void test_golden_object(void)
{
    size_t len = strlen(golden_hex) / 2;
    uint8_t *obj = xmalloc(len);
    for (size_t i = 0; i < len; i++)
        obj[i] = (uint8_t)(unhex(golden_hex[2 * i]) << 4 | unhex(golden_hex[2 * i + 1]));
    char want[8 * 28 + 1] = "";
    for (int i = 0; i < 8; i++)
        strcat(want, "usbd-objstore golden object\n");
    struct seal_id id = {SEAL_KIND_CHUNK, 0x1a, 7};
    char out[sizeof want];
    uint32_t got;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == strlen(want) && memcmp(out, want, got) == 0);
    struct seal_hdr h;
    CHECK_ERR(seal_peek(obj, len, &h), 0);
    CHECK(h.comp == SEAL_COMP_ZSTD && h.cipher == SEAL_CIPHER_AES256CTR);
    free(obj);
}

/* The same object sealed with ChaCha20-Poly1305 by the first version that
 * had it (nonce 27d41a25dfb007cc6065ac09); Python's cryptography package
 * (ChaCha20Poly1305(key).decrypt(nonce, payload + tag, header)) opened it
 * too, with the ChaCha20-Poly1305 key test_keys.c pins. */
static const char golden_chacha_hex[] =
    "555342444f424a000100010102020000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf1a000000"
    "000000000700000000000000e00000002c00000027d41a25dfb007cc6065ac0900000000"
    "0000000000000000b701368bbfef02781007e47e45f4f3fd9dd0af4ac2fe634d694c4dc6"
    "1c0f9206413d0e3fec8de5a9fe450deceda1cec425e5505ce39409a39ee72945";

static void test_golden_chacha_object(void)
{
    size_t len = strlen(golden_chacha_hex) / 2;
    uint8_t *obj = xmalloc(len);
    for (size_t i = 0; i < len; i++)
        obj[i] = (uint8_t)(unhex(golden_chacha_hex[2 * i]) << 4 | unhex(golden_chacha_hex[2 * i + 1]));
    char want[8 * 28 + 1] = "";
    for (int i = 0; i < 8; i++)
        strcat(want, "usbd-objstore golden object\n");
    struct seal_id id = {SEAL_KIND_CHUNK, 0x1a, 7};
    char out[sizeof want];
    uint32_t got;
    CHECK_ERR(seal_open(ctx, &keys, &id, obj, len, out, sizeof out, &got), 0);
    CHECK(got == strlen(want) && memcmp(out, want, got) == 0);
    struct seal_hdr h;
    CHECK_ERR(seal_peek(obj, len, &h), 0);
    CHECK(h.comp == SEAL_COMP_ZSTD && h.cipher == SEAL_CIPHER_CHACHA20POLY1305 &&
          h.mac == SEAL_MAC_POLY1305);
    uint8_t tag[SEAL_TAG_SIZE];
    CHECK_ERR(seal_tag(obj, len, tag), 0);
    CHECK(memcmp(tag, obj + len - 16, 16) == 0);
    free(obj);
}

int main(void)
{
    CHECK_ERR(seal_ctx_new(&ctx), 0);
    CHECK_ERR(seal_keys_derive(master, uuid, &keys), 0);

    test_round_trips();
    for (size_t c = 0; c < NCIPHERS; c++) {
        test_kinds(ciphers[c]);
        test_truncated_and_extended(ciphers[c]);
        test_swapped_replayed_wrong_key(ciphers[c]);
        test_check_order(ciphers[c]);
    }
    test_encryption_hides_and_varies();
    test_flipped_bytes();
    test_authentic_but_malformed();
    test_aead_interop();
    test_aead_authentic_but_malformed();
    test_names();
    test_bounds_and_arguments();
    test_context_reuse();
    test_golden_object();
    test_golden_chacha_object();

    seal_keys_wipe(&keys);
    seal_ctx_free(ctx);
    seal_ctx_free(NULL);
    printf("test_seal: ");
    return CHECK_DONE();
}
