/* seal.h - usbd-objstore crypto: seal and open one object; load and derive keys.
 *
 * This is the whole public API of the crypto module. Everything that leaves
 * the board (chunks, the superblock, epoch records, checkpoints) is one
 * sealed object:
 *
 *     header (SEAL_HDR_SIZE bytes) | payload (stored_len bytes) | authenticator
 *
 * The payload is the plaintext, zstd-compressed if that made it smaller, then
 * encrypted under a fresh random IV or nonce (unless the cipher is none). The
 * cipher decides the authenticator (the header's MAC algorithm byte says it):
 *   none, AES-256-CTR   HMAC-SHA256 over header and payload (encrypt-then-MAC),
 *                       SEAL_HMAC_SIZE (32) bytes;
 *   ChaCha20-Poly1305   the AEAD of RFC 8439 with the whole header as
 *                       associated data and a random 96-bit nonce; its
 *                       Poly1305 tag, SEAL_POLY1305_SIZE (16) bytes. For
 *                       cores without AES instructions, where it is several
 *                       times faster than AES-256-CTR with HMAC-SHA256.
 * The header names the volume, the object kind, the chunk index and
 * generation, so an object is bound to its place whatever the cipher:
 * seal_open() refuses a flipped bit, an object of another volume or index,
 * and an older generation replayed by the store, before it decrypts or
 * decompresses anything.
 *
 * Header, version 1, all integers little-endian:
 *
 *     off size field
 *       0    8 magic "USBDOBJ\0"
 *       8    2 format version = 1
 *      10    1 kind         (enum seal_kind)
 *      11    1 compression  (enum seal_comp)
 *      12    1 cipher       (enum seal_cipher)
 *      13    1 MAC algorithm (enum seal_mac): HMAC-SHA256 with cipher none
 *              or AES-256-CTR, Poly1305 with ChaCha20-Poly1305 (no other pair)
 *      14    2 reserved, zero
 *      16   16 volume uuid
 *      32    8 chunk index (other kinds: a kind-specific number, e.g. the epoch)
 *      40    8 generation
 *      48    4 plain length  (bytes after opening)
 *      52    4 stored length (bytes of payload in the object)
 *      56   16 IV: AES-256-CTR's initial counter block; ChaCha20-Poly1305's
 *              96-bit nonce in the first 12 bytes, the last 4 zero; all zero
 *              when the cipher is none
 *      72    8 reserved, zero (room for a kind-specific field such as the base
 *              generation of a future delta chunk)
 *      80      payload, then the authenticator: the 32-byte HMAC-SHA256 of
 *              bytes [0, 80 + stored), or the 16-byte Poly1305 tag of the
 *              AEAD over the payload with bytes [0, 80) as associated data
 *
 * The format outlives this code: a reader rejects any version, kind or
 * algorithm it does not know, and non-zero reserved bytes, with EPROTO.
 *
 * Keys: the 32-byte master key never touches data. seal_keys_derive() turns
 * it, with the volume uuid as HKDF-SHA256 salt, into an AES-256-CTR key, an
 * HMAC-SHA256 key, a ChaCha20-Poly1305 key and a key check value (KCV), each
 * under its own info string ("usbd-objstore v1 aes-256-ctr key", "... v1
 * hmac-sha256 key", "... v1 chacha20-poly1305 key", "... v1 key check
 * value"): no key serves two algorithms.
 *
 * Error convention (everywhere in this API): a function returns 0 on success
 * or a positive errno value. The values a caller must tell apart:
 *   EBADMSG  the object is not authentic: MAC mismatch (flipped bits, wrong
 *            key), or it is authentic but not the object the caller asked for
 *            (other volume, kind, index or generation: swapped or replayed).
 *   EPROTO   the object is malformed: truncated, bad magic, unknown version,
 *            kind or algorithm, inconsistent lengths, payload that does not
 *            decompress to its plain length.
 *   EMSGSIZE an authentic object larger than the caller's buffer.
 *   ENOBUFS  the caller's output buffer is smaller than seal_bound().
 *   EINVAL   a bad argument (unknown kind or algorithm to seal with, level
 *            out of range, length above SEAL_MAX_PLAIN, bad key spec).
 *   ENOMEM   out of memory.
 *   EIO      the random generator or a crypto primitive failed.
 * Functions that fail for a reason a user must act on (key loading) also fill
 * a caller-provided message buffer with one line; nothing here logs.
 *
 * Threading: a struct seal_ctx belongs to one thread at a time. A struct
 * seal_keys is read-only after seal_keys_derive() and may be shared by any
 * number of threads. There is no global mutable state.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#ifndef USBD_CRYPTO_SEAL_H
#define USBD_CRYPTO_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEAL_KEY_SIZE  32u /* master, encryption and MAC keys */
#define SEAL_KCV_SIZE  16u /* key check value */
#define SEAL_UUID_SIZE 16u /* volume uuid */
#define SEAL_IV_SIZE   16u
#define SEAL_NONCE_SIZE 12u /* ChaCha20-Poly1305: the first 12 bytes of the IV field */
#define SEAL_HDR_SIZE  80u
#define SEAL_HMAC_SIZE 32u     /* HMAC-SHA256's authenticator */
#define SEAL_POLY1305_SIZE 16u /* ChaCha20-Poly1305's tag */
/* The largest authenticator: what seal_bound() leaves room for. An object
 * ends with seal_mac_size(its MAC algorithm) bytes, not always this many. */
#define SEAL_MAC_SIZE  SEAL_HMAC_SIZE
#define SEAL_VERSION   1u

/* Largest plain length seal_object() accepts (1 GiB): keeps every length of
 * the format, compression bound included, inside 32 bits. */
#define SEAL_MAX_PLAIN (1u << 30)

/* What an object is. The values are on the wire: never renumber. */
enum seal_kind {
    SEAL_KIND_CHUNK = 1,      /* a full chunk; index = chunk index */
    SEAL_KIND_SUPERBLOCK = 2, /* the volume's superblock */
    SEAL_KIND_EPOCH = 3,      /* an epoch commit record; index = epoch */
    SEAL_KIND_CHECKPOINT = 4, /* a chunk map at an epoch; index = epoch */
    SEAL_KIND_DELTA = 5,      /* reserved for a delta chunk: rejected by this version */
    SEAL_KIND_LEASE = 6,      /* who may write the volume (index 0), or a reader's
                               * pin on an epoch (index 1) */
    SEAL_KIND_MARK = 7,       /* a machine's rollback high-water mark: a local
                               * file beside the key, never in the store */
};

/* True for the kinds this version seals and opens (not the reserved 5). */
bool seal_kind_known(unsigned kind);

enum seal_comp { SEAL_COMP_NONE = 0, SEAL_COMP_ZSTD = 1 };
/* The values are on the wire: never renumber. A cipher implies its MAC
 * algorithm (seal_object() picks it). */
enum seal_cipher {
    SEAL_CIPHER_NONE = 0,
    SEAL_CIPHER_AES256CTR = 1,
    SEAL_CIPHER_CHACHA20POLY1305 = 2,
};
enum seal_mac { SEAL_MAC_HMAC_SHA256 = 1, SEAL_MAC_POLY1305 = 2 };

/* The size of the authenticator that ends an object with MAC algorithm mac
 * (SEAL_HMAC_SIZE, SEAL_POLY1305_SIZE), 0 for an algorithm this version does
 * not know. */
size_t seal_mac_size(unsigned mac);

/* The cipher's name as the -cipher flag spells it ("none", "aes-256-ctr",
 * "chacha20-poly1305"), or NULL for a value this version does not know. */
const char *seal_cipher_name(unsigned cipher);

/* The cipher named name (as above) into *out. Errors: EINVAL. */
int seal_cipher_parse(const char *name, enum seal_cipher *out);

/* False when this CPU is known to lack AES instructions, so AES-256-CTR runs
 * in software (slower than ChaCha20-Poly1305 there, BENCHMARKS.md): x86
 * without AES-NI (cpuid), arm64 without the ARMv8 AES extension
 * (AT_HWCAP), 32-bit ARM without it (AT_HWCAP2: every ARMv7 core). True
 * otherwise, architectures this code does not know included. Cheap; no
 * state. */
bool seal_cpu_has_aes(void);

/* ------------------------------------------------------------------ keys */

/* The keys of one volume, derived from the master key. Plain data: copy it,
 * share it read-only between threads, wipe it with seal_keys_wipe(). */
struct seal_keys {
    uint8_t enc[SEAL_KEY_SIZE];   /* AES-256-CTR key */
    uint8_t mac[SEAL_KEY_SIZE];   /* HMAC-SHA256 key */
    uint8_t chacha[SEAL_KEY_SIZE]; /* ChaCha20-Poly1305 key */
    uint8_t kcv[SEAL_KCV_SIZE];   /* key check value: safe to store in the clear */
    uint8_t uuid[SEAL_UUID_SIZE]; /* the volume these keys belong to */
};

/* Derive the keys of volume uuid from master with HKDF-SHA256 (salt = uuid,
 * a distinct info string for each of enc, mac, chacha and kcv). Deterministic: the
 * same master and uuid always give the same keys; a different uuid gives
 * unrelated keys, so one master key can serve several volumes.
 * The KCV reveals nothing about the other keys; store it in the superblock and
 * compare it with seal_kcv_equal() on start-up to report a wrong key before
 * any write.
 * Errors: EINVAL (NULL argument), EIO (OpenSSL failure), ENOMEM. On failure
 * *out is zeroed. */
int seal_keys_derive(const uint8_t master[SEAL_KEY_SIZE], const uint8_t uuid[SEAL_UUID_SIZE],
                     struct seal_keys *out);

/* True if kcv equals keys->kcv. Constant time. */
bool seal_kcv_equal(const struct seal_keys *keys, const uint8_t kcv[SEAL_KCV_SIZE]);

/* Overwrite n bytes at p with zeros in a way the compiler cannot drop. For
 * master keys and struct seal_keys that are no longer needed. */
void seal_wipe(void *p, size_t n);

/* Wipe a struct seal_keys. */
void seal_keys_wipe(struct seal_keys *keys);

/* Warnings key_load() may report alongside success. */
#define KEY_WARN_MODE (1u << 0) /* key file is accessible to group or others */

/* Load a 32-byte master key from spec, the value of the -key flag:
 *   "key:HEX"    64 hex digits (either case) in the spec itself;
 *   "file:PATH"  a file holding 64 hex digits with an optional trailing
 *                newline ("\n" or "\r\n"), or exactly 32 raw bytes;
 *   "env:VAR"    64 hex digits in the environment variable VAR.
 * Returns 0 with the key in key[]. *warnings (may be NULL) is set to a mask
 * of KEY_WARN_*; if it is non-zero, msg holds a one-line warning the caller
 * should log (a key file readable by group or others is loaded all the same).
 * Errors, with a one-line reason in msg naming the spec's form, path or
 * variable, never the key: EINVAL (unknown form, bad hex digit, wrong
 * length), ENOENT (missing file or unset variable), other errno of open or
 * read. On failure key[] is zeroed.
 * msg may be NULL or msgsize 0; otherwise it is always NUL-terminated, and
 * set to "" when there is nothing to say. */
int key_load(const char *spec, uint8_t key[SEAL_KEY_SIZE], unsigned *warnings, char *msg,
             size_t msgsize);

/* Generate a random master key into key[] and save it at path as 64 lowercase
 * hex digits and a newline: created with O_CREAT|O_EXCL and mode 0600 (never
 * more, whatever the umask), written, fsync'ed, and the directory fsync'ed,
 * so a volume is never created with a key that a power cut could lose.
 * Errors, with a one-line reason in msg: EEXIST (path exists: an existing key
 * is never overwritten), EIO (random generator), errno of open, write or
 * fsync (a partly written file is removed). On failure key[] is zeroed. */
int key_generate(const char *path, uint8_t key[SEAL_KEY_SIZE], char *msg, size_t msgsize);

/* -------------------------------------------------------------- objects */

/* How to seal. */
struct seal_params {
    enum seal_comp comp;     /* SEAL_COMP_ZSTD: compress, kept only if smaller */
    int level;               /* zstd level, any level zstd accepts (negative:
                              * faster; 0: zstd's default) */
    enum seal_cipher cipher; /* SEAL_CIPHER_NONE: payload in the clear, still MAC'd
                              * (HMAC-SHA256) */
};

/* Check p before using it, e.g. when parsing flags. Errors: EINVAL with a
 * one-line reason in msg (may be NULL). */
int seal_params_check(const struct seal_params *p, char *msg, size_t msgsize);

/* Where a sealed object belongs. seal_object() writes it into the header;
 * seal_open() requires the header to match it exactly. */
struct seal_id {
    enum seal_kind kind;
    uint64_t index; /* chunk index; for other kinds a kind-specific number */
    uint64_t gen;   /* generation */
};

/* A per-thread context: the zstd and OpenSSL contexts and a scratch buffer,
 * kept between calls so that sealing and opening many chunks does not
 * reallocate. Its memory grows to about the compression state of the level
 * used plus the largest stored length opened with compression and cipher. */
struct seal_ctx;

/* Errors: ENOMEM, EIO (OpenSSL lacks AES-256-CTR or HMAC). An OpenSSL
 * without ChaCha20 or Poly1305 (a FIPS-only provider) still gives a context:
 * sealing and opening ChaCha20-Poly1305 objects with it then fail with EIO. */
int seal_ctx_new(struct seal_ctx **out);

/* Free ctx and everything it holds. NULL is a no-op. */
void seal_ctx_free(struct seal_ctx *ctx);

/* The output buffer size seal_object() needs for plain_len bytes, whatever
 * the cipher: header, ZSTD_compressBound(plain_len) and the largest
 * authenticator (SEAL_MAC_SIZE). Also the largest object of plain_len bytes
 * seal_open() accepts. Returns 0 if plain_len exceeds SEAL_MAX_PLAIN. */
size_t seal_bound(uint32_t plain_len);

/* Seal plain_len bytes at plain as object id of the volume keys->uuid into
 * out (out_cap bytes, at least seal_bound(plain_len)). On success *out_len is
 * the object size: SEAL_HDR_SIZE + stored length + seal_mac_size() of the
 * cipher's MAC.
 * The payload is stored compressed only if compression makes it smaller; if
 * not (incompressible data, or plain_len 0) the header says compression
 * none. plain_len 0 is allowed and gives an object with an empty payload.
 * With a cipher every call draws a fresh random IV (AES-256-CTR) or 96-bit
 * nonce (ChaCha20-Poly1305), so sealing the same data twice gives different
 * objects.
 * Errors: EINVAL (bad params, kind not known, plain_len above SEAL_MAX_PLAIN,
 * NULL pointer), ENOBUFS (out_cap too small), ENOMEM, EIO. */
int seal_object(struct seal_ctx *ctx, const struct seal_keys *keys, const struct seal_params *p,
                const struct seal_id *id, const void *plain, uint32_t plain_len, void *out,
                size_t out_cap, size_t *out_len);

/* Open the object of obj_len bytes at obj, which must be the object id of
 * the volume keys->uuid, into out (out_cap bytes). On success *plain_len is
 * the number of bytes written to out.
 * Order of checks: structure (as seal_peek), then the MAC in constant time,
 * then the identity (uuid, kind, index, generation), then plain length
 * against out_cap; only then is anything decrypted or decompressed, and the
 * result must be exactly the plain length. ChaCha20-Poly1305 keeps this
 * order: its Poly1305 tag is checked (RFC 8439's one-time key from ChaCha20
 * block 0, then Poly1305 over header, ciphertext and lengths) before
 * ChaCha20 decrypts from block 1, which is the AEAD's decryption split in
 * its two steps. Memory is never allocated from an
 * unauthenticated length, and never beyond out_cap.
 * Errors: EBADMSG (MAC or tag mismatch, or wrong identity), EPROTO (malformed),
 * EMSGSIZE (plain length > out_cap), EINVAL (NULL pointer), ENOMEM, EIO.
 * On failure out holds nothing of the object: it is untouched or zeroed. */
int seal_open(struct seal_ctx *ctx, const struct seal_keys *keys, const struct seal_id *id,
              const void *obj, size_t obj_len, void *out, size_t out_cap, uint32_t *plain_len);

/* The tag of a sealed object: the first SEAL_TAG_SIZE bytes of its
 * authenticator (the MAC that ends the object: HMAC-SHA256's first half, or
 * the whole Poly1305 tag), what a record keeps to name one object among all
 * those the key could have sealed under the same identity. Takes the MAC's
 * size from the header. EPROTO if obj is not a
 * well-formed object (as seal_peek); nothing is authenticated here. */
#define SEAL_TAG_SIZE 16u
int seal_tag(const void *obj, size_t obj_len, uint8_t tag[SEAL_TAG_SIZE]);

/* A parsed header. */
struct seal_hdr {
    uint16_t version;
    uint8_t kind;        /* enum seal_kind */
    uint8_t comp;        /* enum seal_comp */
    uint8_t cipher;      /* enum seal_cipher */
    uint8_t mac;         /* enum seal_mac */
    uint8_t uuid[SEAL_UUID_SIZE];
    uint64_t index;
    uint64_t gen;
    uint32_t plain_len;
    uint32_t stored_len;
    uint8_t iv[SEAL_IV_SIZE];
};

/* Parse and check the structure of a whole object without any key: magic,
 * version, known kind and algorithms, the MAC algorithm the cipher implies,
 * zero reserved bytes, IV zero without a cipher (and its last 4 bytes zero
 * with ChaCha20-Poly1305), stored length consistent with obj_len (header,
 * payload, the MAC algorithm's authenticator) and with the compression
 * (none: stored == plain; zstd: 0 < stored < plain), plain length at most
 * SEAL_MAX_PLAIN. NOTHING IS AUTHENTICATED: use it to learn the volume uuid
 * of a superblock before deriving keys, or for diagnostics; trust only what
 * seal_open() returns.
 * Telling a wrong key from a damaged superblock: seal the superblock with
 * compression and cipher none and put the KCV in its payload (which is then
 * the stored_len bytes at obj + SEAL_HDR_SIZE). If seal_open() says EBADMSG
 * and seal_kcv_equal() says the stored KCV differs, the key is wrong; if the
 * KCV matches, the superblock was damaged or tampered with.
 * Errors: EPROTO (malformed), EINVAL (NULL pointer). */
int seal_peek(const void *obj, size_t obj_len, struct seal_hdr *hdr);

#ifdef __cplusplus
}
#endif
#endif /* USBD_CRYPTO_SEAL_H */
