/* reseal.c - for tests: make the object a store could replay under a key
 * that only this volume's key holder can make: the same kind, index and
 * generation as IN, a valid MAC, other content (the first plaintext byte
 * flipped). A reader that trusts the MAC and the identity alone takes it
 * for data; the tag an epoch record keeps of each object tells it apart.
 *
 *   objstore-reseal HEXKEY IN OUT
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/seal.h"

static int die(const char *what, int err)
{
    fprintf(stderr, "objstore-reseal: %s: %s\n", what, strerror(err));
    return 1;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno;
    size_t cap = 1 << 20, n = 0;
    uint8_t *p = malloc(cap);
    for (size_t r; p && (r = fread(p + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            uint8_t *q = realloc(p, cap *= 2);
            if (!q)
                free(p);
            p = q;
        }
    }
    int err = !p ? ENOMEM : ferror(f) ? EIO : 0;
    fclose(f);
    *out = p;
    *len = n;
    return err;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: objstore-reseal HEXKEY IN OUT\n");
        return 2;
    }
    char spec[80], msg[256];
    snprintf(spec, sizeof spec, "key:%s", argv[1]);
    uint8_t master[SEAL_KEY_SIZE];
    int err = key_load(spec, master, NULL, msg, sizeof msg);
    if (err)
        return die(msg, err);
    uint8_t *obj = NULL;
    size_t len = 0;
    if ((err = read_file(argv[2], &obj, &len)))
        return die(argv[2], err);
    struct seal_hdr h;
    struct seal_keys keys;
    struct seal_ctx *ctx;
    if ((err = seal_peek(obj, len, &h)) || (err = seal_keys_derive(master, h.uuid, &keys)) ||
        (err = seal_ctx_new(&ctx)))
        return die("header", err);
    struct seal_id id = {.kind = (enum seal_kind)h.kind, .index = h.index, .gen = h.gen};
    uint8_t *plain = malloc(h.plain_len ? h.plain_len : 1);
    uint32_t n = 0;
    if (!plain || (err = seal_open(ctx, &keys, &id, obj, len, plain, h.plain_len, &n)))
        return die("open", plain ? err : ENOMEM);
    if (n)
        plain[0] ^= 0xff;
    struct seal_params p = {.comp = h.comp, .level = 1, .cipher = h.cipher};
    size_t cap = seal_bound(n), out_len;
    uint8_t *out = malloc(cap);
    if (!out || (err = seal_object(ctx, &keys, &p, &id, plain, n, out, cap, &out_len)))
        return die("seal", out ? err : ENOMEM);
    FILE *f = fopen(argv[3], "wb");
    bool ok = f && fwrite(out, 1, out_len, f) == out_len;
    if (f && fclose(f) != 0)
        ok = false;
    seal_ctx_free(ctx);
    seal_keys_wipe(&keys);
    free(obj);
    free(plain);
    free(out);
    return ok ? 0 : die(argv[3], errno ? errno : EIO);
}
