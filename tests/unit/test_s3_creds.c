/* test_s3_creds.c - where the s3 backend's credentials come from: the
 * config, the environment, the AWS shared credentials file with profiles;
 * and what happens when they are incomplete.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "backends/s3_priv.h"
#include "tests/unit/check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fake environment: name=value pairs. */
static const char *env[16][2];

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < 16 && env[i][0]; i++)
        if (!strcmp(env[i][0], name))
            return env[i][1];
    return NULL;
}

static void env_set(int i, const char *name, const char *value)
{
    env[i][0] = name;
    env[i][1] = value;
    env[i + 1][0] = NULL;
}

static const char file_text[] =
    "# comment\n"
    "; another\n"
    "[default]\n"
    "aws_access_key_id = AKIDDEFAULT\n"
    "aws_secret_access_key=secretdefault \r\n"
    "\n"
    "[ other ]\n"
    "  AWS_ACCESS_KEY_ID\t=  AKIDOTHER\n"
    "aws_secret_access_key = sec/ret+other==\n"
    "aws_session_token = tok\n"
    "region = eu-west-1\n"
    "[profile cfgstyle]\n"
    "aws_access_key_id = AKIDCFG\n"
    "aws_secret_access_key = seccfg\n"
    "aws_security_token = oldtok\n"
    "[halfway]\n"
    "aws_access_key_id = AKIDHALF\n"
    "[defaultish]\n"
    "aws_access_key_id = WRONG\n"
    "aws_secret_access_key = WRONG";

int main(void)
{
    struct s3_creds c;
    char err[256];

    memset(&c, 0, sizeof c);
    CHECK(!s3_creds_parse(file_text, strlen(file_text), "default", &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDDEFAULT") && !strcmp(c.secret_key, "secretdefault"));
    CHECK(c.session_token == NULL);
    s3_creds_free(&c);
    CHECK(!s3_creds_parse(file_text, strlen(file_text), "other", &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDOTHER") && !strcmp(c.secret_key, "sec/ret+other=="));
    CHECK(c.session_token && !strcmp(c.session_token, "tok"));
    s3_creds_free(&c);
    CHECK(!s3_creds_parse(file_text, strlen(file_text), "cfgstyle", &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDCFG") && !strcmp(c.session_token, "oldtok"));
    s3_creds_free(&c);
    CHECK(c.access_key == NULL && c.secret_key == NULL);
    CHECK(s3_creds_parse(file_text, strlen(file_text), "halfway", &c, err, sizeof err) == EINVAL);
    CHECK(strstr(err, "aws_secret_access_key") && !strstr(err, "AKIDHALF"));
    CHECK(s3_creds_parse(file_text, strlen(file_text), "nope", &c, err, sizeof err) == ENOENT);
    CHECK(strstr(err, "[nope]"));
    CHECK(s3_creds_parse("", 0, "default", &c, err, sizeof err) == ENOENT);
    /* The last line without a newline still counts. */
    CHECK(!s3_creds_parse(file_text, strlen(file_text), "defaultish", &c, err, sizeof err));
    CHECK(!strcmp(c.secret_key, "WRONG"));
    s3_creds_free(&c);

    /* Resolution order: config first. */
    struct objstore_s3_config cfg = {.bucket = "b"};
    env_set(0, "AWS_ACCESS_KEY_ID", "AKIDENV");
    env_set(1, "AWS_SECRET_ACCESS_KEY", "secretenv");
    env_set(2, "AWS_SESSION_TOKEN", "tokenv");
    cfg.access_key_id = "AKIDCONF";
    cfg.secret_access_key = "secretconf";
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDCONF") && !c.session_token &&
          !strcmp(c.source, "configuration"));
    s3_creds_free(&c);
    cfg.secret_access_key = NULL;
    CHECK(s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err) == EINVAL);
    cfg.access_key_id = NULL;

    /* Then the environment, with its token. */
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDENV") && !strcmp(c.secret_key, "secretenv") &&
          !strcmp(c.session_token, "tokenv") && !strcmp(c.source, "environment"));
    s3_creds_free(&c);
    env_set(1, "AWS_SECRET_ACCESS_KEY", "");
    CHECK(s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err) == EINVAL);
    CHECK(strstr(err, "AWS_SECRET_ACCESS_KEY is not") && !strstr(err, "AKIDENV"));

    /* Then the file: $HOME/.aws/credentials, profile from AWS_PROFILE. */
    char home[] = "/tmp/test_s3_creds.XXXXXX";
    CHECK(mkdtemp(home));
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/.aws", home);
    snprintf(path, sizeof path, "%s/credentials", dir);
    env_set(0, "HOME", home);
    CHECK(s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err) == ENOENT);
    CHECK(strstr(err, "AWS_ACCESS_KEY_ID") && strstr(err, path));
    CHECK(mkdir(dir, 0700) == 0);
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(file_text, 1, strlen(file_text), f) == strlen(file_text));
    fclose(f);
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDDEFAULT") && strstr(c.source, "[default]"));
    s3_creds_free(&c);
    env_set(1, "AWS_PROFILE", "other");
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDOTHER") && !strcmp(c.session_token, "tok"));
    s3_creds_free(&c);
    cfg.profile = "cfgstyle"; /* the config's profile beats AWS_PROFILE */
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    CHECK(!strcmp(c.access_key, "AKIDCFG"));
    s3_creds_free(&c);
    cfg.profile = "halfway";
    CHECK(s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err) == EINVAL);
    CHECK(strstr(err, path));
    cfg.profile = NULL;
    /* An explicit file that does not exist is its own error. */
    cfg.credentials_file = "/nonexistent/creds";
    CHECK(s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err) == ENOENT);
    CHECK(strstr(err, "/nonexistent/creds"));
    env_set(2, "AWS_SHARED_CREDENTIALS_FILE", path);
    cfg.credentials_file = NULL;
    CHECK(!s3_creds_resolve(&cfg, fake_getenv, &c, err, sizeof err));
    s3_creds_free(&c);

    unlink(path);
    rmdir(dir);
    rmdir(home);
    return CHECK_DONE();
}
