/* seal-speed.c - bench_seal: how fast one thread seals and opens 4 MiB
 * chunks, and how well they compress, per zstd level. A measurement, not a
 * test.
 *
 *   bench_seal [-mib=N] [-input=FILE] [-chunk=BYTES] [-cipher=NAME] [LEVEL...]
 *
 * Inputs: "compressible" is FILE, or by default the regular files of
 * /usr/bin concatenated (executables: neither text nor noise); "random" is
 * RAND_bytes. Each is N MiB (default 64). For each cipher (aes-256-ctr, with
 * HMAC-SHA256, and chacha20-poly1305; -cipher=NAME for one, repeatable),
 * "none" (cipher and MAC only) and each zstd LEVEL (default 1 and 3) it
 * prints seal and open MB/s (10^6 bytes of plaintext per second of one
 * thread's CPU time) and the ratio plain / stored.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

static void die(const char *what)
{
    fprintf(stderr, "bench_seal: %s\n", what);
    exit(1);
}

/* CPU time of this thread, not wall time: the figure is the cost of sealing
 * per core, and stays honest on a machine busy with other work. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append up to want - *have bytes of path to buf. */
static void append_file(const char *path, uint8_t *buf, size_t want, size_t *have)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while (*have < want) {
        ssize_t r = read(fd, buf + *have, want - *have);
        if (r <= 0)
            break;
        *have += (size_t)r;
    }
    close(fd);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of /usr/bin in name order, so runs are comparable. */
static void fill_usr_bin(uint8_t *buf, size_t want, size_t *have)
{
    DIR *d = opendir("/usr/bin");
    if (!d)
        die("cannot open /usr/bin");
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                die("out of memory");
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && *have < want; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "/usr/bin/%s", names[i]);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            append_file(path, buf, want, have);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

struct run {
    double seal_mbs, open_mbs, ratio;
};

static struct run measure(struct seal_ctx *ctx, const struct seal_keys *keys,
                          const struct seal_params *p, const uint8_t *in, size_t total,
                          uint32_t chunk)
{
    size_t nchunks = total / chunk;
    size_t cap = seal_bound(chunk);
    uint8_t **obj = calloc(nchunks, sizeof *obj);
    size_t *len = calloc(nchunks, sizeof *len);
    uint8_t *out = malloc(chunk);
    if (!obj || !len || !out)
        die("out of memory");
    for (size_t i = 0; i < nchunks; i++)
        if (!(obj[i] = malloc(cap)))
            die("out of memory");

    /* Repeat whole passes until at least a second has gone by, so short
     * inputs still give a stable figure. */
    struct run r = {0};
    size_t stored = 0, bytes = 0;
    double t0 = now(), t;
    do {
        stored = 0;
        for (size_t i = 0; i < nchunks; i++) {
            struct seal_id id = {SEAL_KIND_CHUNK, i, 1};
            if (seal_object(ctx, keys, p, &id, in + i * chunk, chunk, obj[i], cap, &len[i]))
                die("seal_object failed");
            stored += len[i];
        }
        bytes += nchunks * (size_t)chunk;
    } while ((t = now()) - t0 < 1.0);
    r.seal_mbs = (double)bytes / (t - t0) / 1e6;
    r.ratio = (double)(nchunks * (size_t)chunk) / (double)stored;

    bytes = 0;
    t0 = now();
    do {
        for (size_t i = 0; i < nchunks; i++) {
            struct seal_id id = {SEAL_KIND_CHUNK, i, 1};
            uint32_t got;
            if (seal_open(ctx, keys, &id, obj[i], len[i], out, chunk, &got) || got != chunk)
                die("seal_open failed");
        }
        bytes += nchunks * (size_t)chunk;
    } while ((t = now()) - t0 < 1.0);
    r.open_mbs = (double)bytes / (t - t0) / 1e6;
    /* Spot-check that what was measured round-trips. */
    if (memcmp(out, in + (nchunks - 1) * chunk, chunk) != 0)
        die("round trip mismatch");

    for (size_t i = 0; i < nchunks; i++)
        free(obj[i]);
    free(obj);
    free(len);
    free(out);
    return r;
}

int main(int argc, char **argv)
{
    size_t mib = 64;
    uint32_t chunk = 4u << 20;
    const char *input = NULL;
    int levels[32], nlevels = 0;
    enum seal_cipher ciphers[4];
    int nciphers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-')
            a++;
        if (strncmp(a, "-mib=", 5) == 0)
            mib = strtoul(a + 5, NULL, 10);
        else if (strncmp(a, "-input=", 7) == 0)
            input = a + 7;
        else if (strncmp(a, "-chunk=", 7) == 0)
            chunk = (uint32_t)strtoul(a + 7, NULL, 10);
        else if (strncmp(a, "-cipher=", 8) == 0) {
            if (nciphers == 4 || seal_cipher_parse(a + 8, &ciphers[nciphers++]))
                die("-cipher: aes-256-ctr, chacha20-poly1305 or none");
        } else if (strcmp(a, "-help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: bench_seal [-mib=N] [-input=FILE] [-chunk=BYTES] [-cipher=NAME] "
                   "[LEVEL...]\n");
            return 0;
        } else if (nlevels < 32)
            levels[nlevels++] = atoi(a);
    }
    if (nciphers == 0) {
        ciphers[nciphers++] = SEAL_CIPHER_AES256CTR;
        ciphers[nciphers++] = SEAL_CIPHER_CHACHA20POLY1305;
    }
    if (nlevels == 0) {
        levels[nlevels++] = 1;
        levels[nlevels++] = 3;
    }
    if (chunk == 0 || chunk > SEAL_MAX_PLAIN || mib == 0)
        die("bad -chunk or -mib");
    size_t total = mib << 20;
    if (total < chunk)
        total = chunk;
    total -= total % chunk;

    uint8_t *comp = malloc(total), *rnd = malloc(total);
    if (!comp || !rnd)
        die("out of memory");
    size_t have = 0;
    if (input)
        append_file(input, comp, total, &have);
    else
        fill_usr_bin(comp, total, &have);
    if (have < chunk)
        die("compressible input shorter than one chunk");
    total = have - have % chunk;
    for (size_t off = 0; off < total; off += 1u << 20)
        if (RAND_bytes(rnd + off, (int)(total - off < (1u << 20) ? total - off : 1u << 20)) != 1)
            die("RAND_bytes failed");

    uint8_t master[SEAL_KEY_SIZE], uuid[SEAL_UUID_SIZE];
    RAND_bytes(master, sizeof master);
    RAND_bytes(uuid, sizeof uuid);
    struct seal_keys keys;
    struct seal_ctx *ctx;
    if (seal_keys_derive(master, uuid, &keys) || seal_ctx_new(&ctx))
        die("setup failed");

    printf("chunk %u bytes, %zu MiB per input (%s); MB/s = 10^6 plaintext bytes per CPU-second\n",
           chunk, total >> 20, input ? input : "/usr/bin concatenated");
    printf("%-13s %-18s %-12s %12s %12s %8s\n", "input", "cipher", "compression", "seal MB/s",
           "open MB/s", "ratio");
    const char *names[] = {"compressible", "random"};
    const uint8_t *bufs[] = {comp, rnd};
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < nciphers; c++)
            for (int l = -1; l < nlevels; l++) {
                struct seal_params p = {l < 0 ? SEAL_COMP_NONE : SEAL_COMP_ZSTD,
                                        l < 0 ? 0 : levels[l], ciphers[c]};
                char label[32];
                if (l < 0)
                    snprintf(label, sizeof label, "none");
                else
                    snprintf(label, sizeof label, "zstd %d", levels[l]);
                if (seal_params_check(&p, NULL, 0))
                    die("bad level");
                struct run r = measure(ctx, &keys, &p, bufs[b], total, chunk);
                printf("%-13s %-18s %-12s %12.0f %12.0f %8.3f\n", names[b],
                       seal_cipher_name(ciphers[c]), label, r.seal_mbs, r.open_mbs, r.ratio);
                fflush(stdout);
            }
    seal_ctx_free(ctx);
    seal_keys_wipe(&keys);
    free(comp);
    free(rnd);
    return 0;
}
