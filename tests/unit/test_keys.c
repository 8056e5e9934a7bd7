/* test_keys.c - crypto/: key derivation, key specs (key:, file:, env:) and
 * key generation.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define HEX_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static const uint8_t master[SEAL_KEY_SIZE] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};
static const uint8_t uuid[SEAL_UUID_SIZE] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
                                             0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf};
static char dir[] = "/tmp/test_keys.XXXXXX";

static void unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        CHECK(sscanf(s + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* --------------------------------------------------------------- derive */

/* Pinned outputs: computed independently (openssl kdf HKDF and a Python
 * HKDF from RFC 5869) for master 00..1f and uuid a0..af. A change here
 * means every existing volume's keys changed. */
static void test_derive_known_answer(void)
{
    struct seal_keys k;
    CHECK_ERR(seal_keys_derive(master, uuid, &k), 0);
    uint8_t want[SEAL_KEY_SIZE];
    unhex("37a1eb367b57009def8e754e2e56f9cb674845b339350005476214677164a5e6", want, 32);
    CHECK(memcmp(k.enc, want, 32) == 0);
    unhex("8afd393d005f318f1fe2afc715fa67819faa0a0289f5d1c8fa179a09328d365f", want, 32);
    CHECK(memcmp(k.mac, want, 32) == 0);
    unhex("9b4735f664fb380a8f4c4dc823036744e42c27f2ab25511e94c3d373ce902d71", want, 32);
    CHECK(memcmp(k.chacha, want, 32) == 0);
    unhex("e25d43f8c8a69999e10f46f601ce8e30", want, 16);
    CHECK(memcmp(k.kcv, want, 16) == 0);
    CHECK(memcmp(k.uuid, uuid, sizeof uuid) == 0);
    CHECK(seal_kcv_equal(&k, want));
    want[15] ^= 1;
    CHECK(!seal_kcv_equal(&k, want));
    seal_keys_wipe(&k);
    CHECK(all_zero((const uint8_t *)&k, sizeof k));
}

static void test_derive_separation(void)
{
    struct seal_keys a, b, c;
    CHECK_ERR(seal_keys_derive(master, uuid, &a), 0);
    CHECK_ERR(seal_keys_derive(master, uuid, &b), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0); /* deterministic */
    /* Encryption and MAC keys are never the same key, nor the master. */
    CHECK(memcmp(a.enc, a.mac, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.enc, master, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.mac, master, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.kcv, a.enc, SEAL_KCV_SIZE) != 0);
    CHECK(memcmp(a.kcv, a.mac, SEAL_KCV_SIZE) != 0);
    /* ChaCha20-Poly1305 has a key of its own, not AES's. */
    CHECK(memcmp(a.chacha, a.enc, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.chacha, a.mac, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.chacha, master, SEAL_KEY_SIZE) != 0);

    /* Another volume: unrelated keys and KCV. */
    uint8_t uuid2[SEAL_UUID_SIZE];
    memcpy(uuid2, uuid, sizeof uuid2);
    uuid2[0] ^= 1;
    CHECK_ERR(seal_keys_derive(master, uuid2, &c), 0);
    CHECK(memcmp(a.enc, c.enc, SEAL_KEY_SIZE) != 0);
    CHECK(memcmp(a.mac, c.mac, SEAL_KEY_SIZE) != 0);
    CHECK(!seal_kcv_equal(&a, c.kcv));
    /* Another master key: another KCV, which is how a wrong key shows. */
    uint8_t master2[SEAL_KEY_SIZE];
    memcpy(master2, master, sizeof master2);
    master2[31] ^= 0x80;
    CHECK_ERR(seal_keys_derive(master2, uuid, &c), 0);
    CHECK(!seal_kcv_equal(&a, c.kcv));

    CHECK_ERR(seal_keys_derive(NULL, uuid, &c), EINVAL);
    CHECK(all_zero((const uint8_t *)&c, sizeof c));
    CHECK_ERR(seal_keys_derive(master, NULL, &c), EINVAL);
    CHECK_ERR(seal_keys_derive(master, uuid, NULL), EINVAL);
}

/* -------------------------------------------------------------- key specs */

static void expect_master(const char *spec)
{
    uint8_t key[SEAL_KEY_SIZE];
    unsigned warn = 99;
    char msg[256];
    CHECK_ERR(key_load(spec, key, &warn, msg, sizeof msg), 0);
    CHECK(memcmp(key, master, sizeof key) == 0);
    CHECK(warn == 0);
    CHECK(msg[0] == '\0');
}

/* Fails with want, leaves key zeroed, and says something that does not
 * contain the spec's secret part. Returns the message. */
static const char *expect_fail(const char *spec, int want)
{
    static char msg[512];
    uint8_t key[SEAL_KEY_SIZE];
    memset(key, 0x77, sizeof key);
    unsigned warn = 99;
    CHECK_ERR(key_load(spec, key, &warn, msg, sizeof msg), want);
    CHECK(all_zero(key, sizeof key));
    CHECK(warn == 0);
    CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
    /* Not even an 8-digit piece of a key. */
    CHECK(strstr(msg, "00010203") == NULL && strstr(msg, "0A0B0C0D") == NULL);
    return msg;
}

static void test_spec_key(void)
{
    expect_master("key:" HEX_KEY);
    expect_master("key:000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    expect_master("key:000102030405060708090a0B0c0D0e0F101112131415161718191a1B1c1D1e1F");

    const char *m = expect_fail("key:" HEX_KEY "0", EINVAL);
    CHECK(strstr(m, "65") != NULL && strstr(m, "64 hex digits") != NULL);
    m = expect_fail("key:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", EINVAL);
    CHECK(strstr(m, "63") != NULL);
    expect_fail("key:", EINVAL);
    m = expect_fail("key:000102030405060708090a0b0c0d0e0f10111213141516171819Xa1b1c1d1e1f",
                    EINVAL);
    CHECK(strstr(m, "character 53") != NULL);
    expect_fail("key:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1 ", EINVAL);
    expect_fail("key: 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", EINVAL);
    m = expect_fail("kye:" HEX_KEY, EINVAL);
    CHECK(strstr(m, "key:HEX, file:PATH or env:VAR") != NULL);
    expect_fail(HEX_KEY, EINVAL);
    expect_fail("", EINVAL);
    expect_fail(NULL, EINVAL);

    /* NULL message buffer and NULL warnings are fine; a tiny buffer is
     * truncated and terminated. */
    uint8_t key[SEAL_KEY_SIZE];
    CHECK_ERR(key_load("key:" HEX_KEY, key, NULL, NULL, 0), 0);
    CHECK_ERR(key_load("key:zz", key, NULL, NULL, 0), EINVAL);
    char tiny[6];
    memset(tiny, 'x', sizeof tiny);
    CHECK_ERR(key_load("key:zz", key, NULL, tiny, sizeof tiny), EINVAL);
    CHECK(strlen(tiny) == sizeof tiny - 1);
}

static void test_spec_env(void)
{
    CHECK(setenv("USBD_TEST_KEY", HEX_KEY, 1) == 0);
    expect_master("env:USBD_TEST_KEY");
    CHECK(setenv("USBD_TEST_KEY", HEX_KEY "\n", 1) == 0);
    const char *m = expect_fail("env:USBD_TEST_KEY", EINVAL);
    CHECK(strstr(m, "env:USBD_TEST_KEY") != NULL);
    CHECK(setenv("USBD_TEST_KEY", "", 1) == 0);
    expect_fail("env:USBD_TEST_KEY", EINVAL);
    CHECK(unsetenv("USBD_TEST_KEY") == 0);
    m = expect_fail("env:USBD_TEST_KEY", ENOENT);
    CHECK(strstr(m, "USBD_TEST_KEY") != NULL && strstr(m, "not set") != NULL);
    expect_fail("env:", EINVAL);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, n) == (ssize_t)n);
    CHECK(fchmod(fd, mode) == 0);
    CHECK(close(fd) == 0);
}

static void test_spec_file(void)
{
    char path[256], spec[300];
    snprintf(path, sizeof path, "%s/key", dir);
    snprintf(spec, sizeof spec, "file:%s", path);

    write_file(path, HEX_KEY "\n", 65, 0600);
    expect_master(spec);
    write_file(path, HEX_KEY, 64, 0600);
    expect_master(spec);
    write_file(path, HEX_KEY "\r\n", 66, 0400);
    expect_master(spec);
    write_file(path, master, sizeof master, 0600); /* raw bytes */
    expect_master(spec);

    /* Accessible to others: loaded, with a warning naming the file. */
    write_file(path, HEX_KEY "\n", 65, 0644);
    uint8_t key[SEAL_KEY_SIZE];
    unsigned warn = 0;
    char msg[512];
    CHECK_ERR(key_load(spec, key, &warn, msg, sizeof msg), 0);
    CHECK(memcmp(key, master, sizeof key) == 0);
    CHECK(warn == KEY_WARN_MODE);
    CHECK(strstr(msg, path) != NULL && strstr(msg, "0644") != NULL);
    CHECK(strstr(msg, "chmod 600") != NULL);
    write_file(path, master, sizeof master, 0620);
    CHECK_ERR(key_load(spec, key, &warn, msg, sizeof msg), 0);
    CHECK(warn == KEY_WARN_MODE);

    /* Wrong contents. */
    const char *m;
    write_file(path, HEX_KEY "\n\n", 66, 0600);
    expect_fail(spec, EINVAL);
    write_file(path, HEX_KEY "00\n", 67, 0600);
    expect_fail(spec, EINVAL);
    write_file(path, "0123456789abcdef0123456789abcdef", 32, 0600);
    m = expect_fail(spec, EINVAL);
    CHECK(strstr(m, "16 bytes") != NULL);
    write_file(path, "short\n", 6, 0600);
    m = expect_fail(spec, EINVAL);
    CHECK(strstr(m, path) != NULL && strstr(m, "found 5 bytes") != NULL);
    write_file(path, "", 0, 0600);
    expect_fail(spec, EINVAL);
    char big[4096];
    memset(big, 'a', sizeof big);
    write_file(path, big, sizeof big, 0600);
    expect_fail(spec, EINVAL);
    char badhex[] = HEX_KEY "\n";
    badhex[10] = 'g';
    write_file(path, badhex, 65, 0600);
    m = expect_fail(spec, EINVAL);
    CHECK(strstr(m, "character 11") != NULL);

    /* Missing: ENOENT, and the message says which path. */
    unlink(path);
    m = expect_fail(spec, ENOENT);
    CHECK(strstr(m, path) != NULL);
    /* A directory is not a key file. */
    snprintf(spec, sizeof spec, "file:%s", dir);
    m = expect_fail(spec, EISDIR);
    CHECK(strstr(m, dir) != NULL);
    expect_fail("file:", EINVAL);
}

/* ------------------------------------------------------------- generate */

static void test_generate(void)
{
    char path[256], spec[300], msg[512];
    snprintf(path, sizeof path, "%s/generated.key", dir);
    snprintf(spec, sizeof spec, "file:%s", path);

    /* Even with a umask that would allow everything, the file is 0600. */
    mode_t old = umask(0);
    uint8_t key[SEAL_KEY_SIZE], again[SEAL_KEY_SIZE];
    CHECK_ERR(key_generate(path, key, msg, sizeof msg), 0);
    umask(old);
    CHECK(msg[0] == '\0');
    CHECK(!all_zero(key, sizeof key));
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
    CHECK(st.st_size == 65);

    /* It loads back, without a warning. */
    unsigned warn = 99;
    CHECK_ERR(key_load(spec, again, &warn, msg, sizeof msg), 0);
    CHECK(warn == 0 && memcmp(key, again, sizeof key) == 0);

    /* Never overwritten: EEXIST, the file keeps the first key. */
    CHECK_ERR(key_generate(path, again, msg, sizeof msg), EEXIST);
    CHECK(all_zero(again, sizeof again));
    CHECK(strstr(msg, path) != NULL);
    CHECK_ERR(key_load(spec, again, &warn, msg, sizeof msg), 0);
    CHECK(memcmp(key, again, sizeof key) == 0);

    /* Two generated keys differ. */
    char path2[300];
    snprintf(path2, sizeof path2, "%s/second.key", dir);
    CHECK_ERR(key_generate(path2, again, msg, sizeof msg), 0);
    CHECK(memcmp(key, again, sizeof key) != 0);
    unlink(path2);

    /* A symlink at the path is not followed, even a dangling one. */
    char link[300];
    snprintf(link, sizeof link, "%s/link.key", dir);
    CHECK(symlink(path2, link) == 0);
    CHECK_ERR(key_generate(link, again, msg, sizeof msg), EEXIST);
    CHECK(access(path2, F_OK) != 0);
    unlink(link);

    /* A missing directory: ENOENT naming the path. */
    snprintf(path2, sizeof path2, "%s/no/such/dir.key", dir);
    CHECK_ERR(key_generate(path2, again, msg, sizeof msg), ENOENT);
    CHECK(strstr(msg, path2) != NULL);
    CHECK_ERR(key_generate("", again, msg, sizeof msg), EINVAL);

    /* A relative path (its directory is "."). */
    char cwd[256];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(dir) == 0);
    CHECK_ERR(key_generate("relative.key", again, NULL, 0), 0);
    CHECK(stat("relative.key", &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK_ERR(key_load("file:relative.key", key, NULL, NULL, 0), 0);
    CHECK(memcmp(key, again, sizeof key) == 0);
    unlink("relative.key");
    CHECK(chdir(cwd) == 0);
    unlink(path);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    test_derive_known_answer();
    test_derive_separation();
    test_spec_key();
    test_spec_env();
    test_spec_file();
    test_generate();
    CHECK(rmdir(dir) == 0);
    printf("test_keys: ");
    return CHECK_DONE();
}
