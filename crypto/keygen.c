/* keygen.c - generate a master key and save it durably, readable by its
 * owner only.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

__attribute__((format(printf, 3, 4))) static void set_msg(char *msg, size_t msgsize,
                                                          const char *fmt, ...)
{
    if (!msg || msgsize == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msgsize, fmt, ap);
    va_end(ap);
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path, so the new name survives a power cut. */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? strdup(".")
                : slash == path ? strdup("/")
                                : strndup(path, (size_t)(slash - path));
    if (!dir)
        return ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return errno;
    int err = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return err;
}

int key_generate(const char *path, uint8_t key[SEAL_KEY_SIZE], char *msg, size_t msgsize)
{
    set_msg(msg, msgsize, "%s", "");
    if (!key)
        return EINVAL;
    if (!path || !*path) {
        set_msg(msg, msgsize, "key file: empty path");
        seal_wipe(key, SEAL_KEY_SIZE);
        return EINVAL;
    }
    if (RAND_priv_bytes(key, SEAL_KEY_SIZE) != 1) {
        set_msg(msg, msgsize, "key file %s: random generator failed", path);
        return EIO;
    }
    /* O_EXCL: an existing key may protect a volume; never replace it. Mode
     * 0600 at creation, so the key is never readable by others, not even
     * for the moment before a chmod. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == EEXIST)
            set_msg(msg, msgsize, "key file %s already exists; refusing to overwrite it", path);
        else
            set_msg(msg, msgsize, "key file %s: %s", path, strerror(err));
        seal_wipe(key, SEAL_KEY_SIZE);
        return err;
    }

    static const char digits[] = "0123456789abcdef";
    char hex[2 * SEAL_KEY_SIZE + 1];
    for (size_t i = 0; i < SEAL_KEY_SIZE; i++) {
        hex[2 * i] = digits[key[i] >> 4];
        hex[2 * i + 1] = digits[key[i] & 15];
    }
    hex[2 * SEAL_KEY_SIZE] = '\n';
    int err = write_all(fd, hex, sizeof hex);
    seal_wipe(hex, sizeof hex);
    const char *step = "write";
    if (!err && fsync(fd) != 0) {
        err = errno;
        step = "fsync";
    }
    if (close(fd) != 0 && !err) {
        err = errno;
        step = "close";
    }
    if (!err) {
        err = sync_parent(path);
        step = "fsync of its directory";
    }
    if (err) {
        set_msg(msg, msgsize, "key file %s: %s failed: %s", path, step, strerror(err));
        unlink(path);
        seal_wipe(key, SEAL_KEY_SIZE);
        return err;
    }
    return 0;
}
