/* s3_creds.c - where the S3 backend's credentials come from: the config,
 * the usual AWS environment variables, or the AWS shared credentials file.
 *
 * Secrets are copied once into malloc'd strings owned by the store and
 * wiped at close; every buffer that held a secret on the way (the file's
 * text) is wiped too. No message built here ever contains one.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "s3_priv.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A credentials file is a few hundred bytes; refuse to slurp anything huge. */
#define CREDS_FILE_MAX (1u << 20)

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void s3_creds_free(struct s3_creds *c)
{
    if (!c)
        return;
    free(c->access_key);
    wipe_free(c->secret_key);
    wipe_free(c->session_token);
    c->access_key = c->secret_key = c->session_token = NULL;
    c->source[0] = '\0';
}

static int creds_set(struct s3_creds *out, const char *key, size_t klen, const char *secret,
                     size_t slen, const char *token, size_t tlen)
{
    out->access_key = strndup(key, klen);
    out->secret_key = strndup(secret, slen);
    out->session_token = token && tlen ? strndup(token, tlen) : NULL;
    if (!out->access_key || !out->secret_key || (token && tlen && !out->session_token)) {
        s3_creds_free(out);
        return ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------- the file */

static void trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

static bool span_is(const char *b, const char *e, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(e - b) == n && strncasecmp(b, s, n) == 0;
}

int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *out,
                   char *err, size_t errlen)
{
    const char *key = NULL, *secret = NULL, *token = NULL;
    size_t klen = 0, slen = 0, tlen = 0;
    bool found = false, in = false;
    const char *p = text, *end = text + len;
    size_t plen = strlen(profile);

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *b = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&b, &e);
        if (b == e || *b == '#' || *b == ';')
            continue;
        if (*b == '[') {
            if (e[-1] != ']') {
                in = false;
                continue;
            }
            const char *nb = b + 1, *ne = e - 1;
            trim(&nb, &ne);
            /* ~/.aws/config spells sections "[profile name]". */
            if ((size_t)(ne - nb) > 8 && strncmp(nb, "profile", 7) == 0 &&
                (nb[7] == ' ' || nb[7] == '\t')) {
                nb += 8;
                trim(&nb, &ne);
            }
            in = (size_t)(ne - nb) == plen && memcmp(nb, profile, plen) == 0;
            found |= in;
            continue;
        }
        if (!in)
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (!eq)
            continue;
        const char *nb = b, *ne = eq, *vb = eq + 1, *ve = e;
        trim(&nb, &ne);
        trim(&vb, &ve);
        if (span_is(nb, ne, "aws_access_key_id"))
            key = vb, klen = (size_t)(ve - vb);
        else if (span_is(nb, ne, "aws_secret_access_key"))
            secret = vb, slen = (size_t)(ve - vb);
        else if (span_is(nb, ne, "aws_session_token") || span_is(nb, ne, "aws_security_token"))
            token = vb, tlen = (size_t)(ve - vb);
    }
    if (!found) {
        snprintf(err, errlen, "no profile [%s]", profile);
        return ENOENT;
    }
    if (!key || !klen || !secret || !slen) {
        snprintf(err, errlen, "profile [%s] lacks %s", profile,
                 !key || !klen ? "aws_access_key_id" : "aws_secret_access_key");
        return EINVAL;
    }
    return creds_set(out, key, klen, secret, slen, token, tlen);
}

/* Read a whole (small) file into a malloc'd, NUL-terminated buffer. */
static int read_small_file(const char *path, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int err = fstat(fd, &st) != 0     ? errno
              : !S_ISREG(st.st_mode)  ? EINVAL
              : st.st_size > (off_t)CREDS_FILE_MAX ? EFBIG
                                      : 0;
    if (err) {
        close(fd);
        return err;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

/* ------------------------------------------------------------- resolving */

static const char *nonempty(const char *s)
{
    return s && s[0] ? s : NULL;
}

int s3_creds_resolve(const struct objstore_s3_config *cfg, const char *(*getenv_fn)(const char *),
                     struct s3_creds *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    const char *k = nonempty(cfg->access_key_id), *s = nonempty(cfg->secret_access_key);
    if (k || s) {
        if (!k || !s) {
            snprintf(err, errlen, "the configuration gives %s without %s",
                     k ? "an access key id" : "a secret key",
                     k ? "a secret key" : "an access key id");
            return EINVAL;
        }
        const char *t = nonempty(cfg->session_token);
        snprintf(out->source, sizeof out->source, "configuration");
        return creds_set(out, k, strlen(k), s, strlen(s), t, t ? strlen(t) : 0);
    }

    k = nonempty(getenv_fn("AWS_ACCESS_KEY_ID"));
    s = nonempty(getenv_fn("AWS_SECRET_ACCESS_KEY"));
    if (k || s) {
        if (!k || !s) {
            snprintf(err, errlen, "%s is set but %s is not",
                     k ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                     k ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
            return EINVAL;
        }
        const char *t = nonempty(getenv_fn("AWS_SESSION_TOKEN"));
        snprintf(out->source, sizeof out->source, "environment");
        return creds_set(out, k, strlen(k), s, strlen(s), t, t ? strlen(t) : 0);
    }

    const char *profile = nonempty(cfg->profile);
    if (!profile)
        profile = nonempty(getenv_fn("AWS_PROFILE"));
    if (!profile)
        profile = "default";
    const char *path = nonempty(cfg->credentials_file);
    bool explicit_path = path != NULL;
    if (!path) {
        path = nonempty(getenv_fn("AWS_SHARED_CREDENTIALS_FILE"));
        explicit_path = path != NULL;
    }
    char home_path[256];
    if (!path) {
        const char *home = nonempty(getenv_fn("HOME"));
        if (home && (size_t)snprintf(home_path, sizeof home_path, "%s/.aws/credentials", home) <
                        sizeof home_path)
            path = home_path;
    }
    if (!path) {
        snprintf(err, errlen,
                 "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a "
                 "credentials file");
        return ENOENT;
    }
    char *text = NULL;
    size_t len = 0;
    int e = read_small_file(path, &text, &len);
    if (e) {
        if (e == ENOENT && !explicit_path)
            snprintf(err, errlen,
                     "no credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and "
                     "%s does not exist",
                     path);
        else
            snprintf(err, errlen, "credentials file %s: %s", path, strerror(e));
        return e;
    }
    char why[128];
    e = s3_creds_parse(text, len, profile, out, why, sizeof why);
    explicit_bzero(text, len);
    free(text);
    if (e) {
        snprintf(err, errlen, "credentials file %s: %s", path, why);
        return e;
    }
    snprintf(out->source, sizeof out->source, "%s [%s]", path, profile);
    return 0;
}
