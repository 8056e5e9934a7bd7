/* test_flags.c - sizes, durations, flags and the config file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cmd/flags.h"

static uint64_t size_of(const char *s)
{
    uint64_t v = 12345;
    CHECK(parse_size(s, &v) == 0);
    return v;
}

static int parse(struct config *c, char *err, int argc, ...)
{
    char *argv[16] = {"usbd-objstore"};
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i + 1] = va_arg(ap, char *);
    va_end(ap);
    if (c->owned)
        config_free(c);
    config_defaults(c);
    return config_parse_args(c, argc + 1, argv, err, 256);
}

int main(void)
{
    uint64_t v;
    CHECK(size_of("4096") == 4096);
    CHECK(size_of("1GiB") == 1ull << 30);
    CHECK(size_of("20GiB") == 20ull << 30);
    CHECK(size_of("512MiB") == 512ull << 20);
    CHECK(size_of("1G") == 1ull << 30);
    CHECK(size_of("1gb") == 1000000000ull);
    CHECK(size_of("1.5KiB") == 1536);
    CHECK(size_of("64k") == 65536);
    CHECK(parse_size("", &v) == EINVAL);
    CHECK(parse_size("-1", &v) == EINVAL);
    CHECK(parse_size("1.3", &v) == EINVAL);
    CHECK(parse_size("12XB", &v) == EINVAL);
    CHECK(parse_size("GiB", &v) == EINVAL);
    CHECK(parse_size("99999999PiB", &v) == ERANGE);

    CHECK(parse_duration("10s", &v) == 0 && v == 10000);
    CHECK(parse_duration("500ms", &v) == 0 && v == 500);
    CHECK(parse_duration("2m", &v) == 0 && v == 120000);
    CHECK(parse_duration("1.5s", &v) == 0 && v == 1500);
    CHECK(parse_duration("30", &v) == 0 && v == 30000);
    CHECK(parse_duration("1h", &v) == 0 && v == 3600000);
    CHECK(parse_duration("10 parsecs", &v) == EINVAL);

    char buf[32];
    format_size(1ull << 30, buf, sizeof buf);
    CHECK(strcmp(buf, "1 GiB") == 0);
    format_size(1536, buf, sizeof buf);
    CHECK(strcmp(buf, "1.5 KiB") == 0);

    struct config c = {0};
    char err[256];
    CHECK(parse(&c, err, 2, "-kind=mem", "-size=1GiB") == 0);
    CHECK(!strcmp(c.kind, "mem") && c.size == 1ull << 30);
    CHECK(!strcmp(c.name, "usbd") && c.threads == 16 && !strcmp(c.nbd_device, "auto"));
    CHECK(c.handshake_timeout_ms == 30000 && c.inflight == 64u << 20);
    CHECK(parse(&c, err, 3, "--size", "2GiB", "--readonly") == 0 && c.size == 2ull << 30 && c.readonly);
    CHECK(parse(&c, err, 1, "-readonly=false") == 0 && !c.readonly);
    CHECK(parse(&c, err, 2, "-listen=unix:/a", "-listen=tcp:127.0.0.1:1") == 0 && c.nlisten == 2);
    CHECK(parse(&c, err, 1, "-bogus=1") == EINVAL && strstr(err, "unknown flag -bogus"));
    CHECK(parse(&c, err, 1, "-size=lots") == EINVAL && strstr(err, "not a size"));
    CHECK(parse(&c, err, 1, "-size") == EINVAL && strstr(err, "needs a value"));
    CHECK(parse(&c, err, 1, "stray") == EINVAL && strstr(err, "unexpected argument"));
    CHECK(parse(&c, err, 1, "-threads=-3") == EINVAL);
    CHECK(parse(&c, err, 1, "-handshake-timeout=5s") == 0 && c.handshake_timeout_ms == 5000);
    CHECK(parse(&c, err, 1, "--help") == 0 && c.help);

    /* config file: same keys; the command line wins */
    char path[] = "/tmp/usbd-test-flags-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "# a comment\nkind = file\nsize = 8MiB\nname = \"tv\"\n\nlisten = unix:/x\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char arg[64];
    snprintf(arg, sizeof arg, "-config=%s", path);
    CHECK(parse(&c, err, 2, "-size=16MiB", arg) == 0);
    CHECK(!strcmp(c.kind, "file") && c.size == 16ull << 20 && !strcmp(c.name, "tv") && c.nlisten == 1);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "sise = 1\n", 9) == 9);
    close(fd);
    CHECK(parse(&c, err, 1, arg) == EINVAL && strstr(err, ":1: unknown key 'sise'"));
    unlink(path);
    CHECK(parse(&c, err, 1, arg) == ENOENT && strstr(err, "cannot read config file"));

    /* Without -config: CONFIG_DIR/NAME.conf ($USBD_CONFIG_DIR here), NAME
     * from -name; -config=none skips it; --help ignores a broken one. */
    char dir[] = "/tmp/usbd-test-confdir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char tv[128];
    snprintf(tv, sizeof tv, "%s/tv.conf", dir);
    FILE *f = fopen(tv, "w");
    CHECK(f != NULL);
    fputs("kind = mem\nsize = 8MiB\n", f);
    fclose(f);
    setenv("USBD_CONFIG_DIR", dir, 1);
    CHECK(parse(&c, err, 1, "-name=tv") == 0 && !strcmp(c.kind, "mem") && c.size == 8ull << 20);
    CHECK(c.config_file && !strcmp(c.config_file, tv));
    CHECK(parse(&c, err, 2, "-name", "tv") == 0 && !strcmp(c.kind, "mem"));
    CHECK(parse(&c, err, 2, "-name=tv", "-size=16MiB") == 0 && c.size == 16ull << 20);
    CHECK(parse(&c, err, 2, "-name=tv", "-config=none") == 0 && !strcmp(c.kind, "local") &&
          !c.config_file);
    CHECK(parse(&c, err, 1, "-name=other") == 0 && !strcmp(c.kind, "local") && !c.config_file);
    f = fopen(tv, "w");
    CHECK(f != NULL);
    fputs("sise = 1\n", f);
    fclose(f);
    CHECK(parse(&c, err, 1, "-name=tv") == EINVAL && strstr(err, "unknown key 'sise'"));
    CHECK(parse(&c, err, 2, "-name=tv", "--help") == 0 && c.help);
    CHECK(parse(&c, err, 2, "-name=tv", "-config") == EINVAL && strstr(err, "-config needs a file"));
    unlink(tv);

    /* A config file that holds the key itself and that group or others may
     * read gets a warning naming it; file:PATH and env:VAR are no secret. */
    char conf_arg[160];
    snprintf(conf_arg, sizeof conf_arg, "-config=%s", tv);
    struct { const char *text; mode_t mode; bool warn; } secret[] = {
        {"key = key:0011\n", 0644, true},
        {"kind = mem\nkey = key:0011\n", 0640, true},
        {"key = key:0011\n", 0604, true},
        {"key = 0011\n", 0644, true}, /* a mistyped form may be the key */
        {"key = key:0011\n", 0600, false},
        {"key = key:0011\n", 0620, false}, /* writable, not readable: not this warning */
        {"key = file:/etc/usbd-objstore/tv.key\n", 0644, false},
        {"key = env:TV_KEY\n", 0644, false},
        {"kind = mem\ns3-credentials = /etc/usbd-objstore/tv.cred\n", 0644, false},
    };
    for (size_t i = 0; i < sizeof secret / sizeof *secret; i++) {
        f = fopen(tv, "w");
        CHECK(f != NULL);
        fputs(secret[i].text, f);
        fclose(f);
        CHECK(chmod(tv, secret[i].mode) == 0);
        CHECK(parse(&c, err, 1, conf_arg) == 0);
        CHECK(!c.config_warning == !secret[i].warn);
        if (c.config_warning) {
            CHECK(strstr(c.config_warning, tv) && strstr(c.config_warning, "chmod 600"));
            CHECK(strstr(c.config_warning, "line ") && !strstr(c.config_warning, "0011"));
        }
    }
    /* Found by name in the config directory, the same. */
    CHECK(chmod(tv, 0644) == 0 && (f = fopen(tv, "w")) != NULL);
    fputs("key = key:0011\n", f);
    fclose(f);
    CHECK(parse(&c, err, 1, "-name=tv") == 0 && c.config_warning && strstr(c.config_warning, tv));
    unlink(tv);
    rmdir(dir);
    unsetenv("USBD_CONFIG_DIR");
    config_free(&c);
    return CHECK_DONE();
}
