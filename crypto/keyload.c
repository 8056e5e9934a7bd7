/* keyload.c - load the master key from a -key spec: key:HEX, file:PATH or
 * env:VAR.
 *
 * Messages name the form, the path or the variable, never any part of the
 * key or of the spec (a mistyped "kye:..." may well be a key).
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
#include <sys/stat.h>
#include <unistd.h>

#define HEX_LEN (2 * SEAL_KEY_SIZE)

/* Longest key file worth reading: hex, "\r\n", and one byte more to tell
 * "too long" from "exactly right". */
#define FILE_MAX (HEX_LEN + 3)

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

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode exactly HEX_LEN hex digits. On EINVAL, *bad is the 1-based
 * position of the first character that is not a hex digit, or 0 if the
 * length is wrong. */
static int parse_hex(const char *s, size_t n, uint8_t key[SEAL_KEY_SIZE], size_t *bad)
{
    *bad = 0;
    if (n != HEX_LEN)
        return EINVAL;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_val((unsigned char)s[i]), lo = hex_val((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            *bad = i + (hi < 0 ? 1 : 2);
            return EINVAL;
        }
        key[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Parse a hex key from a spec or variable; what names it in messages. */
static int parse_hex_msg(const char *s, uint8_t key[SEAL_KEY_SIZE], const char *what, char *msg,
                         size_t msgsize)
{
    size_t n = strlen(s), bad;
    int err = parse_hex(s, n, key, &bad);
    if (err && bad)
        set_msg(msg, msgsize, "%s: character %zu is not a hex digit", what, bad);
    else if (err)
        set_msg(msg, msgsize, "%s: expected %u hex digits (32 bytes), got %zu characters", what,
                HEX_LEN, n);
    return err;
}

static int read_all(int fd, char *buf, size_t cap, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    return 0;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hex_val((unsigned char)s[i]) < 0)
            return false;
    return true;
}

static int load_file(const char *path, uint8_t key[SEAL_KEY_SIZE], unsigned *warnings,
                     char *msg, size_t msgsize)
{
    if (!*path) {
        set_msg(msg, msgsize, "file:PATH: empty path");
        return EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        set_msg(msg, msgsize, "key file %s: %s", path, strerror(err));
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        set_msg(msg, msgsize, "key file %s: %s", path, strerror(err));
        return err;
    }
    char buf[FILE_MAX];
    size_t n = 0;
    int err = read_all(fd, buf, sizeof buf, &n);
    close(fd);
    if (err) {
        set_msg(msg, msgsize, "key file %s: %s", path, strerror(err));
        return err;
    }

    if (n == SEAL_KEY_SIZE && !all_hex(buf, n)) {
        memcpy(key, buf, SEAL_KEY_SIZE);
    } else if (n == SEAL_KEY_SIZE) {
        /* 32 raw random bytes that are all hex digits: odds of 2^-113. This
         * is a 16-byte key in hex, which would be a weak key read wrong. */
        set_msg(msg, msgsize,
                "key file %s: holds 32 hex digits (16 bytes); a key is 64 hex digits", path);
        err = EINVAL;
    } else if (n == sizeof buf) {
        set_msg(msg, msgsize, "key file %s: too long for a key (64 hex digits or 32 raw bytes)",
                path);
        err = EINVAL;
    } else {
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        size_t bad;
        err = parse_hex(buf, n, key, &bad);
        if (err && bad)
            set_msg(msg, msgsize, "key file %s: character %zu is not a hex digit", path, bad);
        else if (err)
            set_msg(msg, msgsize,
                    "key file %s: expected 64 hex digits or 32 raw bytes, found %zu bytes", path,
                    n);
    }
    seal_wipe(buf, sizeof buf);
    if (err)
        return err;
    /* Still loaded: refusing would stop a running service over a chmod, and
     * the key has been exposed already; the operator is told to fix it. */
    if (S_ISREG(st.st_mode) && (st.st_mode & 077)) {
        *warnings |= KEY_WARN_MODE;
        set_msg(msg, msgsize,
                "key file %s is accessible to group or others (mode %04o); run chmod 600 on it",
                path, (unsigned)(st.st_mode & 07777));
    }
    return 0;
}

int key_load(const char *spec, uint8_t key[SEAL_KEY_SIZE], unsigned *warnings, char *msg,
             size_t msgsize)
{
    unsigned warn = 0;
    set_msg(msg, msgsize, "%s", "");
    if (warnings)
        *warnings = 0;
    if (!key)
        return EINVAL;

    int err;
    if (!spec) {
        set_msg(msg, msgsize, "no key given");
        err = EINVAL;
    } else if (strncmp(spec, "key:", 4) == 0) {
        err = parse_hex_msg(spec + 4, key, "key:HEX", msg, msgsize);
    } else if (strncmp(spec, "env:", 4) == 0) {
        const char *var = spec + 4;
        const char *val = *var ? getenv(var) : NULL;
        if (!*var) {
            set_msg(msg, msgsize, "env:VAR: empty variable name");
            err = EINVAL;
        } else if (!val) {
            set_msg(msg, msgsize, "env:%s: environment variable %s is not set", var, var);
            err = ENOENT;
        } else {
            char what[128];
            snprintf(what, sizeof what, "env:%.120s", var);
            err = parse_hex_msg(val, key, what, msg, msgsize);
        }
    } else if (strncmp(spec, "file:", 5) == 0) {
        err = load_file(spec + 5, key, &warn, msg, msgsize);
    } else {
        set_msg(msg, msgsize, "key must be given as key:HEX, file:PATH or env:VAR");
        err = EINVAL;
    }
    if (err) {
        seal_wipe(key, SEAL_KEY_SIZE);
        return err;
    }
    if (warnings)
        *warnings = warn;
    return 0;
}
