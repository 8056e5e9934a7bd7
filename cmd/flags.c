/* flags.c - one table drives the command line, the config file and --help.
 *
 * Flags are written as in the seed project, -kind=mem -size=1GiB; --kind=mem
 * and "-kind mem" work too. The config file takes the same names as keys. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flags.h"

enum flag_type { F_STRING, F_SIZE, F_COUNT, F_DURATION, F_BOOL, F_LIST };

struct flag {
    const char *name;
    enum flag_type type;
    size_t offset; /* into struct config */
    const char *metavar;
    const char *def; /* default, parsed like a user's value; NULL: none */
    const char *help;
};

#define OFF(field) offsetof(struct config, field)

static const struct flag flags[] = {
    {"kind", F_STRING, OFF(kind), "local|s3|mem|file", "local",
     "what backs the disk: local (chunks sealed into an object store in a directory, "
     "see -store), s3 (the same in an S3 bucket: AWS, Ceph RGW, MinIO; see -s3-*), "
     "mem (RAM, lost at exit), file (a file or block device, see -file)"},
    {"size", F_SIZE, OFF(size), "SIZE", NULL,
     "disk size, e.g. 20GiB, 512MiB (a multiple of 4096; -kind=file: defaults to the file's size)"},
    {"file", F_STRING, OFF(file), "PATH", NULL, "-kind=file: the file or block device (created with -size if missing)"},
    {"listen", F_LIST, OFF(listen), "unix:PATH|tcp:HOST:PORT", NULL,
     "where NBD clients connect; repeatable; 'none' for no socket. tcp: the host defaults to "
     "127.0.0.1, one that is not loopback needs -listen-insecure. unix: the socket is made 0660 "
     "whatever the umask, in a directory that must exist (default "
     "unix:/run/usbd-objstore/NAME.sock, that directory made 0750 if missing; $USBD_RUN_DIR "
     "replaces it)"},
    {"listen-insecure", F_BOOL, OFF(listen_insecure), NULL, NULL,
     "allow -listen=tcp: on an address other machines can reach (anything but 127.0.0.0/8 and "
     "::1, e.g. 0.0.0.0): NBD has no encryption or authentication, so whoever can connect can "
     "read and write the disk"},
    {"name", F_STRING, OFF(name), "NAME", "usbd", "export name (the empty name is answered too)"},
    {"description", F_STRING, OFF(description), "TEXT", NULL, "export description shown to clients"},
    {"readonly", F_BOOL, OFF(readonly), NULL, NULL,
     "refuse writes (clients see a read-only disk); an object-store volume is served as of its "
     "last committed epoch, without the lease, while another board may write it"},
    {"nbd-device", F_STRING, OFF(nbd_device), "auto|none|/dev/nbdN", "auto",
     "attach to a kernel nbd device; auto takes the first free one if the nbd driver exists"},
    {"nbd-connections", F_COUNT, OFF(nbd_connections), "N", "1", "connections the kernel device uses (1-16)"},
    {"threads", F_COUNT, OFF(threads), "N", "16", "worker threads per connection (requests in flight)"},
    {"max-clients", F_COUNT, OFF(max_clients), "N", "16", "simultaneous client connections"},
    {"max-inflight", F_SIZE, OFF(inflight), "SIZE", "64MiB",
     "request payload bytes in flight per connection (bounds memory)"},
    {"handshake-timeout", F_DURATION, OFF(handshake_timeout_ms), "DURATION", "30s",
     "a client must finish option negotiation within this time of connecting (one deadline for "
     "the whole negotiation, however slowly it sends or reads)"},
    {"send-timeout", F_DURATION, OFF(send_timeout_ms), "DURATION", "30s",
     "a client whose replies make no progress for this long (it stopped reading them) is "
     "disconnected; not the kernel's /dev/nbdX connections"},
    {"store", F_STRING, OFF(store), "DIR", "/var/lib/usbd-objstore/store",
     "-kind=local: the object store, a directory (another machine can open the volume from it)"},
    {"store-dir", F_STRING, OFF(store_dir), "DIR", "/var/lib/usbd-objstore/cache",
     "local state: the cache and its index, in DIR/NAME (an empty one is rebuilt from the store)"},
    {"objsize", F_SIZE, OFF(objsize), "SIZE", NULL,
     "chunk size, a power of two from 64KiB to 64MiB, fixed when the volume is created "
     "(default 4MiB)"},
    {"key", F_STRING, OFF(key), "key:HEX|file:PATH|env:VAR", NULL,
     "the volume's 256-bit master key; without it, STORE-DIR/NAME.key (generated with mode "
     "0600 when the volume is created: keep a copy elsewhere); key:HEX on the command line is "
     "visible to every local user (ps), so prefer file:PATH (mode 0600) or env:VAR (removed "
     "from the environment once read)"},
    {"flush-every", F_DURATION, OFF(flush_every_ms), "DURATION", "10s",
     "how often changes are sealed and committed to the store as one epoch (also on SIGHUP)"},
    {"flush-workers", F_COUNT, OFF(flush_workers), "N", "4", "parallel uploads"},
    {"cache-size", F_SIZE, OFF(cache_size), "SIZE", NULL,
     "local disk for cached chunks (default: the device size)"},
    {"dirty-max", F_SIZE, OFF(dirty_max), "SIZE", NULL,
     "changes waiting for the next epoch before writers wait; the epoch being uploaded may hold "
     "as much again (default and maximum: half of -cache-size)"},
    {"compress", F_STRING, OFF(compress), "zstd|none", "zstd", "compression of chunks"},
    {"zstd-level", F_COUNT, OFF(zstd_level), "N", "1", "zstd level (1: fastest; see BENCHMARKS.md)"},
    {"cipher", F_STRING, OFF(cipher), "aes-256-ctr|chacha20-poly1305|none", "aes-256-ctr",
     "encryption of new objects (every object is authenticated either way); "
     "chacha20-poly1305 is faster on CPUs without AES instructions (Raspberry Pi)"},
    {"sync", F_STRING, OFF(sync), "local|remote", "local",
     "what NBD FLUSH waits for: the local disk, or also the store (slower)"},
    {"lease", F_DURATION, OFF(lease_ms), "DURATION", "60s",
     "the writer's lease in the store lives this long (renewed every third of it): while it is "
     "live another board's start is refused, and a board that stops renewing (powered off) "
     "frees the volume this long after (3s to 1h)"},
    {"takeover", F_BOOL, OFF(takeover), NULL, NULL,
     "write the volume although another board's lease is live (you say that board is gone): "
     "its token is superseded, so it can commit nothing more and its clients get errors"},
    {"accept-rollback", F_BOOL, OFF(accept_rollback), NULL, NULL,
     "open a store older than this machine has seen (restored from a backup on purpose); "
     "without it such a store is refused"},
    {"store-faults", F_STRING, OFF(store_faults), "SPEC", NULL,
     "for tests: inject store faults, e.g. put-error=0.5,latency=20ms (see backends/objstore.h)"},
    {"s3-endpoint", F_STRING, OFF(s3_endpoint), "URL", NULL,
     "-kind=s3: the S3 endpoint, e.g. http://127.0.0.1:7480 (default $AWS_ENDPOINT_URL, "
     "else https://s3.REGION.amazonaws.com)"},
    {"s3-region", F_STRING, OFF(s3_region), "REGION", NULL,
     "signing region (default $AWS_REGION, else us-east-1)"},
    {"s3-bucket", F_STRING, OFF(s3_bucket), "BUCKET", NULL, "-kind=s3: the bucket (required)"},
    {"s3-prefix", F_STRING, OFF(s3_prefix), "PREFIX", NULL,
     "key prefix inside the bucket: volumes live in PREFIX/NAME/"},
    {"s3-path-style", F_BOOL, OFF(s3_path_style), NULL, NULL,
     "http://host/bucket/key addressing (needed for RGW and MinIO by name; implied for IPs)"},
    {"s3-create-bucket", F_BOOL, OFF(s3_create_bucket), NULL, NULL, "create the bucket if missing"},
    {"s3-ca-file", F_STRING, OFF(s3_ca_file), "FILE", NULL, "PEM certificates to trust for TLS"},
    {"s3-insecure", F_BOOL, OFF(s3_insecure), NULL, NULL,
     "do not verify the TLS certificate (tests only; verification is on by default)"},
    {"s3-credentials", F_STRING, OFF(s3_credentials), "FILE", NULL,
     "AWS shared credentials file (default: $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY / "
     "$AWS_SESSION_TOKEN, else ~/.aws/credentials); secrets never go on the command line"},
    {"s3-profile", F_STRING, OFF(s3_profile), "PROFILE", NULL,
     "profile in the credentials file (default $AWS_PROFILE, else default)"},
    {"s3-connections", F_COUNT, OFF(s3_connections), "N", "8", "parallel S3 connections"},
    {"gadget", F_BOOL, OFF(gadget), NULL, NULL,
     "also be a USB drive: a mass-storage gadget (configfs) on the /dev/nbdX, bound to the UDC; "
     "unplugged first at stop, then the data is flushed and committed"},
    {"gadget-udc", F_STRING, OFF(gadget_udc), "NAME", NULL,
     "the USB device controller (default: the first in /sys/class/udc)"},
    {"gadget-vendor", F_STRING, OFF(gadget_vendor), "TEXT", "usbd",
     "manufacturer string the host shows (its first 8 characters: the SCSI vendor)"},
    {"gadget-product", F_STRING, OFF(gadget_product), "TEXT", "usbd-objstore",
     "product string the host shows (its first 16 characters: the SCSI model)"},
    {"gadget-serial", F_STRING, OFF(gadget_serial), "SERIAL", NULL,
     "USB serial number, 12-126 letters and digits (default: from the volume's uuid, so the same "
     "across restarts and boards)"},
    {"gadget-vendor-id", F_STRING, OFF(gadget_vendor_id), "0xVVVV", "0x1d6b", "USB idVendor"},
    {"gadget-product-id", F_STRING, OFF(gadget_product_id), "0xPPPP", "0x0104", "USB idProduct"},
    {"gadget-removable", F_BOOL, OFF(gadget_removable), NULL, "true",
     "removable medium (=false: a fixed disk)"},
    {"gadget-readonly", F_BOOL, OFF(gadget_readonly), NULL, NULL,
     "the host sees a read-only drive (NBD clients may still write; -readonly covers both)"},
    {"gadget-cdrom", F_BOOL, OFF(gadget_cdrom), NULL, NULL, "appear as a CD-ROM (read-only)"},
    {"gadget-nofua", F_BOOL, OFF(gadget_nofua), NULL, NULL,
     "ignore the host's FUA bit (faster, but a write the host thinks durable may not be yet)"},
    {"gadget-configfs", F_STRING, OFF(gadget_configfs), "DIR", "/sys/kernel/config",
     "where configfs is mounted"},
    {"gadget-sysfs", F_STRING, OFF(gadget_sysfs), "DIR", "/sys", "where sysfs is mounted"},
    {"log-level", F_STRING, OFF(log_level), "error|warn|info|debug", "info", "how much to log (to stderr)"},
    {"config", F_STRING, OFF(config_file), "FILE|none", NULL,
     "read flags from FILE (key = value lines, same names); the command line wins (default: "
     CONFIG_DIR "/NAME.conf if it exists, NAME as given by -name; $USBD_CONFIG_DIR replaces "
     CONFIG_DIR "; none: no file)"},
    {"help", F_BOOL, OFF(help), NULL, NULL, "show this help and exit"},
    {"version", F_BOOL, OFF(version), NULL, NULL, "show the version and exit"},
};
#define NFLAGS (sizeof flags / sizeof *flags)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return EINVAL;
}

static const struct flag *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = false;
    else
        return EINVAL;
    return 0;
}

/* Store one value. `where` names the source for messages ("flag", "file:12"). */
static int set_flag(struct config *cfg, const struct flag *f, const char *v, const char *where,
                    char *err, size_t errlen)
{
    void *p = (char *)cfg + f->offset;
    uint64_t n;
    switch (f->type) {
    case F_STRING:
        *(const char **)p = v;
        return 0;
    case F_LIST:
        if (cfg->nlisten == CONFIG_MAX_LISTEN)
            return fail(err, errlen, "%s: at most %d -%s values", where, CONFIG_MAX_LISTEN, f->name);
        cfg->listen[cfg->nlisten++] = v;
        return 0;
    case F_BOOL:
        if (parse_bool(v, (bool *)p))
            return fail(err, errlen, "%s: -%s=%s: expected true or false", where, f->name, v);
        return 0;
    case F_SIZE:
        if (parse_size(v, &n))
            return fail(err, errlen, "%s: -%s=%s: not a size (examples: 4096, 512MiB, 20GiB)", where,
                        f->name, v);
        *(uint64_t *)p = n;
        return 0;
    case F_COUNT: {
        char *end;
        errno = 0;
        unsigned long long c = strtoull(v, &end, 10);
        if (!*v || *end || errno || v[0] == '-')
            return fail(err, errlen, "%s: -%s=%s: not a whole number", where, f->name, v);
        *(uint64_t *)p = c;
        return 0;
    }
    case F_DURATION:
        if (parse_duration(v, &n))
            return fail(err, errlen, "%s: -%s=%s: not a duration (examples: 500ms, 10s, 5m)", where,
                        f->name, v);
        *(uint64_t *)p = n;
        return 0;
    }
    return EINVAL;
}

void config_defaults(struct config *cfg)
{
    *cfg = (struct config){0};
    char err[256];
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].def)
            set_flag(cfg, &flags[i], flags[i].def, "default", err, sizeof err);
}

struct config_str {
    struct config_str *next;
    char s[];
};

/* A copy of a config-file string that lives as long as cfg. */
static char *keep(struct config *cfg, const char *s)
{
    size_t n = strlen(s);
    struct config_str *c = malloc(sizeof *c + n + 1);
    if (!c)
        return NULL;
    memcpy(c->s, s, n + 1);
    c->next = cfg->owned;
    cfg->owned = c;
    return c->s;
}

void config_free(struct config *cfg)
{
    while (cfg->owned) {
        struct config_str *next = cfg->owned->next;
        free(cfg->owned);
        cfg->owned = next;
    }
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

/* Does a "key =" value hold the key itself rather than say where it is? A
 * mistyped form counts: it may well be the key. */
static bool is_secret_key_value(const char *v)
{
    return strncmp(v, "file:", 5) != 0 && strncmp(v, "env:", 4) != 0;
}

int config_parse_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "re");
    if (!fp) {
        int e = errno;
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(e));
        return e;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(e));
        fclose(fp);
        return e;
    }
    char line[4096];
    int lineno = 0, rc = 0, secret_line = 0;
    while (!rc && fgets(line, sizeof line, fp)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char where[300];
        snprintf(where, sizeof where, "%.256s:%d", path, lineno);
        if (!eq) {
            rc = fail(err, errlen, "%s: expected 'key = value'", where);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = 0;
            val++;
        }
        const struct flag *f = find_flag(key, strlen(key));
        if (!f || !strcmp(key, "config") || !strcmp(key, "help") || !strcmp(key, "version")) {
            rc = fail(err, errlen, "%s: unknown key '%s' (keys are the flag names, see --help)",
                      where, key);
            break;
        }
        char *v = keep(cfg, val);
        rc = v ? set_flag(cfg, f, v, where, err, errlen) : ENOMEM;
        if (!rc && f->offset == OFF(key) && !secret_line && is_secret_key_value(v))
            secret_line = lineno;
    }
    fclose(fp);
    if (!rc && secret_line && (st.st_mode & 044)) {
        char msg[4400];
        snprintf(msg, sizeof msg, "config file %s holds the volume's key (line %d) and is readable "
                 "by group or others (mode %04o): run chmod 600 %s", path, secret_line,
                 (unsigned)(st.st_mode & 07777), path);
        if (!(cfg->config_warning = keep(cfg, msg)))
            rc = ENOMEM;
    }
    return rc;
}

/* Split "-name=value" / "--name=value" / "-name". */
static int split_arg(const char *a, const char **name, size_t *nlen, const char **val)
{
    if (a[0] != '-' || a[1] == 0)
        return EINVAL;
    a += a[1] == '-' ? 2 : 1;
    const char *eq = strchr(a, '=');
    *name = a;
    *nlen = eq ? (size_t)(eq - a) : strlen(a);
    *val = eq ? eq + 1 : NULL;
    return 0;
}

/* The value of flag `flag` among the arguments, or NULL. */
static const char *find_arg(int argc, char **argv, const char *flag)
{
    const char *found = NULL;
    for (int i = 1; i < argc; i++) {
        const char *name, *val;
        size_t nl;
        if (split_arg(argv[i], &name, &nl, &val) || nl != strlen(flag) || strncmp(name, flag, nl))
            continue;
        found = val ? val : i + 1 < argc ? argv[i + 1] : "";
    }
    return found;
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    /* The config file first, wherever -config appears; without one,
     * CONFIG_DIR/NAME.conf if it exists (NAME from -name, else the default). */
    const char *file = find_arg(argc, argv, "config");
    if (file && !file[0])
        return fail(err, errlen, "-config needs a file (or none)");
    /* --help and --version must work whatever the file holds. */
    bool info = find_arg(argc, argv, "help") || find_arg(argc, argv, "version") ||
                find_arg(argc, argv, "h");
    if (!file && !info) {
        const char *dir = getenv("USBD_CONFIG_DIR");
        const char *name = find_arg(argc, argv, "name");
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.conf", dir && dir[0] ? dir : CONFIG_DIR,
                 name && name[0] && !strchr(name, '/') ? name : cfg->name);
        if (access(path, F_OK) == 0 && !(file = keep(cfg, path)))
            return ENOMEM;
    }
    if (file && strcmp(file, "none")) {
        int rc = config_parse_file(cfg, file, err, errlen);
        if (rc)
            return rc;
        cfg->config_file = file;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *val;
        size_t nl;
        if (!strcmp(a, "-h")) {
            cfg->help = true;
            continue;
        }
        if (split_arg(a, &name, &nl, &val))
            return fail(err, errlen, "unexpected argument '%s' (flags look like -size=1GiB; see --help)", a);
        const struct flag *f = find_flag(name, nl);
        if (!f)
            return fail(err, errlen, "unknown flag -%.*s (see --help)", (int)nl, name);
        if (!val && f->type == F_BOOL)
            val = "true";
        if (!val) {
            if (i + 1 >= argc)
                return fail(err, errlen, "-%s needs a value (-%s=%s)", f->name, f->name, f->metavar);
            val = argv[++i];
        }
        if (f->offset == OFF(config_file))
            continue; /* read above */
        char where[] = "command line";
        int rc = set_flag(cfg, f, val, where, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    fprintf(out,
            "usbd-objstore - a block device served over NBD (and, with the kernel's nbd driver,\n"
            "as /dev/nbdX)\n\n"
            "Usage: usbd-objstore [flags]\n\n"
            "Examples:\n"
            "  usbd-objstore -size=20GiB -name=tv     (a volume in /var/lib/usbd-objstore)\n"
            "  usbd-objstore -kind=local -store=/srv/store -store-dir=/var/cache/usbd -size=20GiB\n"
            "  usbd-objstore -kind=mem -size=1GiB -listen=unix:/run/usbd.sock\n"
            "  usbd-objstore -kind=file -file=/srv/disk.img -size=20GiB -listen=tcp:127.0.0.1:10809\n"
            "  nbdinfo 'nbd+unix:///?socket=/run/usbd.sock'\n\n"
            "Flags (also --flag=value, -flag value; the same keys work in a -config file):\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        const struct flag *f = &flags[i];
        char left[80];
        if (f->metavar)
            snprintf(left, sizeof left, "-%s=%s", f->name, f->metavar);
        else
            snprintf(left, sizeof left, "-%s", f->name);
        const char *def = f->def;
        fprintf(out, "  %s\n      %s%s%s%s\n", left, f->help, def ? " (default " : "",
                def ? def : "", def ? ")" : "");
    }
    fprintf(out,
            "\nSignals: SIGINT/SIGTERM stop taking requests, finish those in flight, detach the\n"
            "kernel device, flush everything to the store (showing progress) and exit 0; a second\n"
            "SIGINT says what is not in the store yet, a third exits without waiting (the data\n"
            "stays in the local cache and is uploaded at the next start). SIGHUP flushes now.\n"
            "Exit status: 0 after a clean stop, 1 on a runtime error, 2 on bad flags.\n");
}
