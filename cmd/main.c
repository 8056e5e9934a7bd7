/* main.c - usbd-objstore: flags, device, server, kernel attach, gadget,
 * signals.
 *
 * Start: open the device -> listen -> (stale gadget removed) -> attach
 * /dev/nbdX -> create the gadget and bind the UDC -> ready.
 * Stop (first SIGINT/SIGTERM): unbind the UDC and wait for the host side to
 * let go -> flush /dev/nbdX (NBD FLUSH) -> commit to the store -> detach
 * /dev/nbdX -> stop the server -> close the device -> exit.
 *
 * Signals are blocked in every thread and taken by one thread with
 * sigwait(). The stop sequence runs in a thread of its own, so that a second
 * signal can still be answered while it waits for the store and a third can
 * give up waiting. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends/objstore.h"
#include "cache/cache.h"
#include "core/usbd.h"
#include "crypto/seal.h"
#include "flags.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct daemon {
    struct config cfg;
    struct usbd_dev dev;
    struct usbd_server *srv;
    struct usbd_kernel *kernel;
    struct usbd_gadget *gadget;
    uint16_t usb_vendor_id, usb_product_id;
    enum seal_cipher cipher; /* -cipher, parsed by check_config() */
    struct objstore *store; /* -kind=local */
    struct cache *cache;
    enum usbd_log_level level;
    bool key_in_argv;                /* -key's value is in the process's command line */
    bool have_key;                   /* key holds -key, read by read_given_key() */
    uint8_t key[SEAL_KEY_SIZE];
    sigset_t sigs;
    unsigned stop_signals; /* SIGINT/SIGTERM received (signal thread only) */
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void log_line(void *opaque, enum usbd_log_level level, const char *line)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld usbd-objstore %s: %s\n", tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], line);
}

static void logf_(struct daemon *d, enum usbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(struct daemon *d, enum usbd_log_level level, const char *fmt, ...)
{
    if (level > d->level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(NULL, level, line);
}

static int parse_level(const char *s, enum usbd_log_level *out)
{
    for (int i = 0; i <= USBD_LOG_DEBUG; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum usbd_log_level)i;
            return 0;
        }
    return EINVAL;
}

static int parse_usb_id(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 16);
    if (errno || end == s || *end || v == 0 || v > 0xffff)
        return EINVAL;
    *out = (uint16_t)v;
    return 0;
}

/* Checks that need no resources; the message is for the user. */
static int check_config(struct daemon *d, char *err, size_t n)
{
    struct config *c = &d->cfg;
    enum usbd_log_level *level = &d->level;
    if (parse_usb_id(c->gadget_vendor_id, &d->usb_vendor_id))
        return snprintf(err, n, "-gadget-vendor-id=%s: expected a hex id such as 0x1d6b",
                        c->gadget_vendor_id), EINVAL;
    if (parse_usb_id(c->gadget_product_id, &d->usb_product_id))
        return snprintf(err, n, "-gadget-product-id=%s: expected a hex id such as 0x0104",
                        c->gadget_product_id), EINVAL;
    if (parse_level(c->log_level, level))
        return snprintf(err, n, "-log-level=%s: expected error, warn, info or debug", c->log_level), EINVAL;
    if (strcmp(c->kind, "mem") && strcmp(c->kind, "file") && strcmp(c->kind, "local") &&
        strcmp(c->kind, "s3"))
        return snprintf(err, n, "-kind=%s: unknown kind (expected local, s3, mem or file)", c->kind), EINVAL;
    if (!strcmp(c->kind, "s3") && !c->s3_bucket)
        return snprintf(err, n, "-kind=s3 needs -s3-bucket=BUCKET (and -s3-endpoint for RGW or MinIO)"), EINVAL;
    if (c->s3_connections < 1 || c->s3_connections > 64)
        return snprintf(err, n, "-s3-connections=%llu: expected 1 to 64",
                        (unsigned long long)c->s3_connections), EINVAL;
    if (strcmp(c->compress, "zstd") && strcmp(c->compress, "none"))
        return snprintf(err, n, "-compress=%s: expected zstd or none", c->compress), EINVAL;
    if (seal_cipher_parse(c->cipher, &d->cipher))
        return snprintf(err, n, "-cipher=%s: expected aes-256-ctr, chacha20-poly1305 or none",
                        c->cipher), EINVAL;
    if (strcmp(c->sync, "local") && strcmp(c->sync, "remote"))
        return snprintf(err, n, "-sync=%s: expected local or remote", c->sync), EINVAL;
    if (c->zstd_level < 1 || c->zstd_level > 19)
        return snprintf(err, n, "-zstd-level=%llu: expected 1 to 19", (unsigned long long)c->zstd_level), EINVAL;
    if (c->flush_workers < 1 || c->flush_workers > 64)
        return snprintf(err, n, "-flush-workers=%llu: expected 1 to 64",
                        (unsigned long long)c->flush_workers), EINVAL;
    if (c->lease_ms < 3000 || c->lease_ms > 3600000)
        return snprintf(err, n, "-lease: from 3s to 1h"), EINVAL;
    if (c->takeover && c->readonly)
        return snprintf(err, n, "-takeover is for writing: -readonly never takes the volume"), EINVAL;
    if (c->flush_every_ms < 100)
        return snprintf(err, n, "-flush-every: at least 100ms"), EINVAL;
    if (c->objsize && (c->objsize < (64u << 10) || c->objsize > (64u << 20) || (c->objsize & (c->objsize - 1))))
        return snprintf(err, n, "-objsize=%llu: a power of two from 64KiB to 64MiB",
                        (unsigned long long)c->objsize), EINVAL;
    if (!strcmp(c->kind, "mem") && c->size == 0)
        return snprintf(err, n, "-kind=mem needs a -size above 0 (e.g. -size=1GiB)"), EINVAL;
    if (!strcmp(c->kind, "file") && !c->file)
        return snprintf(err, n, "-kind=file needs -file=PATH"), EINVAL;
    if (c->size % 4096)
        return snprintf(err, n, "-size=%llu: must be a multiple of 4096 bytes (the block size)",
                        (unsigned long long)c->size), EINVAL;
    if (c->threads < 1 || c->threads > 1024)
        return snprintf(err, n, "-threads=%llu: expected 1 to 1024", (unsigned long long)c->threads), EINVAL;
    if (c->max_clients < 1 || c->max_clients > 4096)
        return snprintf(err, n, "-max-clients=%llu: expected 1 to 4096",
                        (unsigned long long)c->max_clients), EINVAL;
    if (c->nbd_connections < 1 || c->nbd_connections > 16)
        return snprintf(err, n, "-nbd-connections=%llu: expected 1 to 16",
                        (unsigned long long)c->nbd_connections), EINVAL;
    if (c->inflight > UINT32_MAX)
        return snprintf(err, n, "-max-inflight: at most 4GiB"), EINVAL;
    if (c->handshake_timeout_ms < 1000)
        return snprintf(err, n, "-handshake-timeout: at least 1s"), EINVAL;
    if (c->send_timeout_ms < 1000)
        return snprintf(err, n, "-send-timeout: at least 1s"), EINVAL;
    if (!c->name[0] || strlen(c->name) > 255 || strchr(c->name, '/'))
        return snprintf(err, n, "-name=%s: 1 to 255 characters, no '/'", c->name), EINVAL;
    if (c->gadget && strlen(c->name) > 59) /* the gadget is usbd-NAME, at most 64 */
        return snprintf(err, n, "-name=%s: at most 59 characters with -gadget", c->name), EINVAL;
    if (c->gadget && !strcmp(c->nbd_device, "none"))
        return snprintf(err, n, "-gadget needs the kernel's nbd device: -nbd-device=auto or "
                        "/dev/nbdN, not none"), EINVAL;
    if (strcmp(c->nbd_device, "auto") && strcmp(c->nbd_device, "none") &&
        strncmp(c->nbd_device, "/dev/nbd", 8))
        return snprintf(err, n, "-nbd-device=%s: expected auto, none or /dev/nbdN", c->nbd_device), EINVAL;
    return 0;
}

/* The stores' log sink; opaque is the daemon, for -log-level. */
static void store_log(void *opaque, int level, const char *line)
{
    const struct daemon *d = opaque;
    enum usbd_log_level l = level < 0 ? USBD_LOG_ERROR : level > 3 ? USBD_LOG_DEBUG
                                                                   : (enum usbd_log_level)level;
    if (l <= d->level)
        log_line(NULL, l, line);
}

/* mkdir -p of path's parents (the last component is made by its owner). */
static int make_parents(struct daemon *d, const char *path)
{
    char *p = strdup(path);
    if (!p)
        return ENOMEM;
    int err = 0;
    for (char *s = strchr(p + 1, '/'); s && !err; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            err = errno;
            logf_(d, USBD_LOG_ERROR, "cannot create %s: %s", p, strerror(err));
        }
        *s = '/';
    }
    free(p);
    return err;
}

/* -listen=tcp: beyond loopback needs -listen-insecure: this NBD server has
 * neither TLS nor authentication. A spec that is malformed or does not
 * resolve is left to usbd_server_listen(), which says why. */
static int check_listen(const struct config *c, char *err, size_t n)
{
    for (size_t i = 0; i < c->nlisten && !c->listen_insecure; i++) {
        bool remote = false;
        if (usbd_listen_is_remote(c->listen[i], &remote) == 0 && remote)
            return snprintf(err, n, "-listen=%s: other machines could connect, and NBD has no "
                            "encryption or authentication: add -listen-insecure to allow it, or "
                            "listen on 127.0.0.1, [::1] or a unix socket", c->listen[i]), EINVAL;
    }
    return 0;
}

/* Is s (a flag's value) inside one of the strings of argv? Then every local
 * user can read it in /proc/PID/cmdline, as ps does. */
static bool in_argv(const char *s, int argc, char **argv)
{
    for (int i = 0; s && i < argc; i++)
        if ((uintptr_t)s >= (uintptr_t)argv[i] && (uintptr_t)s <= (uintptr_t)argv[i] + strlen(argv[i]))
            return true;
    return false;
}

/* [*start, *end) of the environment block the kernel copied at exec
 * (/proc/self/stat fields 50 and 51, proc(5)). */
static int env_block(uintptr_t *start, uintptr_t *end)
{
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return errno;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'), *save = NULL; /* the name before it may hold spaces */
    int field = 2;
    for (char *t = p ? strtok_r(p + 1, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save)) {
        if (++field == 50)
            *start = (uintptr_t)strtoull(t, NULL, 10);
        if (field == 51) {
            *end = (uintptr_t)strtoull(t, NULL, 10);
            return *start < *end ? 0 : EIO;
        }
    }
    return EIO;
}

/* Remove VAR from the environment once the key is read from it: the
 * programs the daemon starts (modprobe) do not inherit it, and getenv() no
 * longer finds it. unsetenv() only drops the pointer from environ: the
 * string stays in the block the kernel copied at exec, which
 * /proc/PID/environ (readable by the same user and root) and a core dump
 * show. So the value is also wiped there, when it lies in that block (one
 * that setenv() put in libc's heap is left alone: libc may compare it
 * later). What this cannot undo: the copy the parent keeps (a shell, a
 * unit's Environment=) and whoever read it before. Only while no other
 * thread runs: unsetenv() races with getenv() elsewhere (libcurl's resolver
 * threads call it). */
static void forget_env(const char *var)
{
    char *val = getenv(var);
    if (!val)
        return;
    size_t len = strlen(val);
    uintptr_t start = 0, end = 0;
    if (env_block(&start, &end) == 0 && (uintptr_t)val >= start && (uintptr_t)val + len < end)
        seal_wipe(val, len);
    unsetenv(var);
}

/* -key, read at start, before the daemon has any other thread, so that
 * env:VAR can be removed from the environment (forget_env). Only the
 * object-store kinds have a key. */
static int read_given_key(struct daemon *d)
{
    const char *spec = d->cfg.key;
    if (!spec || (strcmp(d->cfg.kind, "local") && strcmp(d->cfg.kind, "s3")))
        return 0;
    char msg[512];
    unsigned warn = 0;
    int err = key_load(spec, d->key, &warn, msg, sizeof msg);
    if (err) {
        logf_(d, USBD_LOG_ERROR, "-key: %s", msg);
        return err;
    }
    if (warn)
        logf_(d, USBD_LOG_WARN, "-key: %s", msg);
    if (strncmp(spec, "env:", 4) == 0)
        forget_env(spec + 4);
    d->have_key = true;
    return 0;
}

/* Secrets where others may read them: one line each, at start. */
static void warn_exposed_secrets(struct daemon *d)
{
    if (d->key_in_argv && strncmp(d->cfg.key, "key:", 4) == 0)
        logf_(d, USBD_LOG_WARN, "-key=key:HEX: the key is visible to every local user in the "
              "process list (ps); use -key=file:PATH or env:VAR");
    if (d->cfg.config_warning)
        logf_(d, USBD_LOG_WARN, "%s", d->cfg.config_warning);
}

/* The master key: -key, or the generated key file of the volume, or a new
 * one when the volume does not exist yet. */
static int load_key(struct daemon *d, uint8_t key[SEAL_KEY_SIZE])
{
    if (d->have_key) {
        memcpy(key, d->key, SEAL_KEY_SIZE);
        seal_wipe(d->key, sizeof d->key);
        return 0;
    }
    char msg[512], path[4200], spec[4300];
    unsigned warn = 0;
    const char *given = d->cfg.key;
    snprintf(path, sizeof path, "%s/%s.key", d->cfg.store_dir, d->cfg.name);
    if (!given && access(path, F_OK) == 0) {
        snprintf(spec, sizeof spec, "file:%s", path);
        given = spec;
    }
    if (given) {
        int err = key_load(given, key, &warn, msg, sizeof msg);
        if (err)
            logf_(d, USBD_LOG_ERROR, "-key: %s", msg);
        else if (warn)
            logf_(d, USBD_LOG_WARN, "-key: %s", msg);
        return err;
    }
    /* A key is made only for a volume the store says does not exist: a
     * store that is down or refuses us must not lead to a second key. */
    char sb[1200];
    snprintf(sb, sizeof sb, "%s/superblock", d->cfg.name);
    uint64_t sz;
    int herr = objstore_head(d->store, sb, &sz);
    if (herr == 0) {
        logf_(d, USBD_LOG_ERROR, "volume '%s' exists in the store but %s is missing: give its key "
              "with -key=file:PATH (or key:HEX, env:VAR)", d->cfg.name, path);
        return ENOENT;
    }
    if (herr != ENOENT) {
        logf_(d, USBD_LOG_ERROR, "cannot tell whether volume '%s' exists (the store answered: %s): "
              "no key generated; start again once the store answers", d->cfg.name, strerror(herr));
        return herr;
    }
    if (d->cfg.readonly) {
        logf_(d, USBD_LOG_ERROR, "volume '%s' does not exist in the store (-readonly never creates "
              "one)", d->cfg.name);
        return ENOENT;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/", d->cfg.store_dir);
    int err = make_parents(d, dir);
    if (err)
        return err;
    err = key_generate(path, key, msg, sizeof msg);
    if (err)
        logf_(d, USBD_LOG_ERROR, "cannot save a new key: %s", msg);
    else
        logf_(d, USBD_LOG_WARN, "generated a new key for volume '%s' in %s: keep a copy elsewhere, "
              "without it nobody (you included) can read the volume", d->cfg.name, path);
    return err;
}

/* AES-256-CTR on a core without AES instructions (a Raspberry Pi's
 * Cortex-A53 or A72, any ARMv7 board) runs in software, where
 * ChaCha20-Poly1305 is faster (BENCHMARKS.md): say so once. The cipher
 * applies to the objects this run seals, so the hint is worth it at any
 * start, not only at the volume's creation. */
static void hint_cipher(struct daemon *d)
{
    if (d->cipher == SEAL_CIPHER_AES256CTR && !seal_cpu_has_aes())
        logf_(d, USBD_LOG_INFO, "this CPU has no AES instructions: AES-256-CTR runs in software "
              "here; -cipher=chacha20-poly1305 seals faster on it (new objects only, existing "
              "ones stay readable; see BENCHMARKS.md)");
}

static int open_local(struct daemon *d)
{
    struct config *c = &d->cfg;
    int err;
    if (!strcmp(c->kind, "s3")) {
        const char *region = c->s3_region ? c->s3_region : getenv("AWS_REGION");
        struct objstore_s3_config sc = {
            .endpoint = c->s3_endpoint ? c->s3_endpoint : getenv("AWS_ENDPOINT_URL"),
            .region = region ? region : getenv("AWS_DEFAULT_REGION"),
            .bucket = c->s3_bucket,
            .prefix = c->s3_prefix,
            .path_style = c->s3_path_style,
            .ca_file = c->s3_ca_file,
            .insecure_skip_tls_verify = c->s3_insecure,
            .credentials_file = c->s3_credentials,
            .profile = c->s3_profile,
            .connections = (unsigned)c->s3_connections,
            .create_bucket = c->s3_create_bucket,
            .log = store_log,
            .log_opaque = d,
        };
        char desc[1024];
        if (objstore_s3_config_describe(&sc, desc, sizeof desc) == 0)
            logf_(d, USBD_LOG_INFO, "store: %s", desc);
        err = objstore_s3_open(&sc, &d->store);
    } else {
        struct objstore_local_config lc = {.root = c->store, .create = true, .log = store_log, .log_opaque = d};
        err = make_parents(d, c->store);
        if (!err)
            err = objstore_local_open(&lc, &d->store);
    }
    if (!err && c->store_faults) {
        struct objstore *f;
        err = objstore_fault_open_spec(d->store, c->store_faults, store_log, d, &f);
        if (err)
            objstore_close(d->store);
        d->store = err ? NULL : f;
        if (!err)
            logf_(d, USBD_LOG_WARN, "injecting store faults: %s", c->store_faults);
    }
    if (err)
        return err;
    struct cache_config cc = {
        .state_dir = c->store_dir,
        .volume = c->name,
        .size = c->size,
        .chunk_size = (uint32_t)c->objsize,
        .cache_size = c->cache_size,
        .dirty_max = c->dirty_max,
        .flush_every_ms = c->flush_every_ms,
        .flush_workers = (unsigned)c->flush_workers,
        .seal = {.comp = strcmp(c->compress, "zstd") ? SEAL_COMP_NONE : SEAL_COMP_ZSTD,
                 .level = (int)c->zstd_level,
                 .cipher = d->cipher},
        .sync_remote = !strcmp(c->sync, "remote"),
        .read_only = c->readonly,
        .takeover = c->takeover,
        .accept_rollback = c->accept_rollback,
        .lease_ms = c->lease_ms,
        .log = log_line,
        .log_level = d->level,
    };
    hint_cipher(d);
    err = load_key(d, cc.master_key);
    if (!err)
        err = cache_open(&cc, d->store, &d->cache);
    seal_wipe(cc.master_key, sizeof cc.master_key);
    if (!err) {
        cache_device(d->cache, &d->dev);
        d->dev.read_only = c->readonly;
    }
    return err;
}

static int open_device(struct daemon *d)
{
    struct config *c = &d->cfg;
    int err;
    if (!strcmp(c->kind, "local") || !strcmp(c->kind, "s3"))
        return open_local(d);
    if (!strcmp(c->kind, "mem")) {
        err = usbd_mem_open(c->size, &d->dev);
        if (err)
            logf_(d, USBD_LOG_ERROR, "cannot create a %llu-byte RAM disk: %s",
                  (unsigned long long)c->size, strerror(err));
        d->dev.read_only = c->readonly;
        return err;
    }
    return usbd_file_open(c->file, c->size, c->readonly, log_line, NULL, &d->dev);
}

/* Flush and close the device: for -kind=local, everything into the store. */
static int close_device(struct daemon *d)
{
    int err = 0;
    if (d->cache) {
        err = cache_close(d->cache);
        d->cache = NULL;
        objstore_close(d->store);
        d->store = NULL;
        memset(&d->dev, 0, sizeof d->dev);
        return err;
    }
    if (d->store)
        objstore_close(d->store);
    d->store = NULL;
    err = d->dev.ops && d->dev.ops->flush ? d->dev.ops->flush(d->dev.priv) : 0;
    if (err)
        logf_(d, USBD_LOG_ERROR, "final flush failed: %s", strerror(err));
    usbd_dev_close(&d->dev);
    return err;
}

/* Where clients connect when no -listen is given. */
static int default_listen(struct daemon *d, char *buf, size_t n)
{
    /* $USBD_RUN_DIR: for tests, which cannot own /run/usbd-objstore. */
    const char *dir = getenv("USBD_RUN_DIR");
    if (!dir || !dir[0])
        dir = "/run/usbd-objstore";
    /* Made 0750 whatever the umask (the daemon's group may reach the socket,
     * others may not); one that exists is someone's choice, left as it is. */
    int err = mkdir(dir, 0750) == 0 ? (chmod(dir, 0750) == 0 ? 0 : errno)
              : errno == EEXIST ? 0 : errno;
    if (err) {
        logf_(d, USBD_LOG_ERROR, "cannot create %s for the default socket: %s (give -listen=unix:PATH)",
              dir, strerror(err));
        return err;
    }
    snprintf(buf, n, "unix:%s/%s.sock", dir, d->cfg.name);
    return 0;
}

static int start_listeners(struct daemon *d)
{
    char def[300];
    if (d->cfg.nlisten == 0) {
        int err = default_listen(d, def, sizeof def);
        if (err)
            return err;
        d->cfg.listen[d->cfg.nlisten++] = def;
    }
    for (size_t i = 0; i < d->cfg.nlisten; i++) {
        if (!strcmp(d->cfg.listen[i], "none"))
            continue;
        int err = usbd_server_listen(d->srv, d->cfg.listen[i]);
        if (err)
            return err;
        bool remote = false; /* allowed by -listen-insecure, see check_listen() */
        if (usbd_listen_is_remote(d->cfg.listen[i], &remote) == 0 && remote)
            logf_(d, USBD_LOG_WARN, "listening on %s, which other machines can reach: NBD has no "
                  "encryption or authentication, whoever connects can read and write this disk",
                  d->cfg.listen[i]);
        else
            logf_(d, USBD_LOG_INFO, "listening on %s", d->cfg.listen[i]);
    }
    return 0;
}

/* The stop sequence, in the order the USB host and the store need. */
static void *stop_thread(void *arg)
{
    struct daemon *d = arg;
    if (d->gadget) {
        usbd_gadget_remove(d->gadget); /* logs the outcome */
        d->gadget = NULL;
    }
    if (d->kernel) {
        int err = usbd_kernel_flush(d->kernel);
        if (err)
            logf_(d, USBD_LOG_ERROR, "flushing %s: %s", usbd_kernel_path(d->kernel), strerror(err));
    }
    if (d->kernel && d->cache) {
        /* Commit while /dev/nbdX is still there: whatever sits above it
         * (the gadget gone, maybe a filesystem) keeps working meanwhile. */
        uint64_t left = cache_dirty_bytes(d->cache);
        if (left)
            logf_(d, USBD_LOG_INFO, "committing %.1f MiB to the store before detaching %s",
                  left / 1048576.0, usbd_kernel_path(d->kernel));
        if (cache_commit(d->cache) == 0) /* else cache_close() says what is kept */
            logf_(d, USBD_LOG_INFO, "every write is in the store");
    }
    if (d->kernel) {
        /* The kernel finishes its queue and sends DISC on our sockets, so
         * nothing it acknowledged upward is cut off. It logs the outcome. */
        usbd_kernel_detach(d->kernel);
        d->kernel = NULL;
    }
    usbd_server_stop(d->srv);
    return NULL;
}

static void *signal_thread(void *arg)
{
    struct daemon *d = arg;
    pthread_t stopper;
    bool stopping = false;
    for (;;) {
        int sig;
        if (sigwait(&d->sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP && stopping)
            continue; /* the stop sequence flushes, and frees the kernel device */
        if (sig == SIGHUP) {
            int err = d->kernel ? usbd_kernel_flush(d->kernel) : 0;
            if (!err && d->dev.ops && d->dev.ops->flush)
                err = d->dev.ops->flush(d->dev.priv);
            if (d->cache)
                cache_flush_soon(d->cache);
            logf_(d, err ? USBD_LOG_ERROR : USBD_LOG_INFO, "SIGHUP: flush %s%s",
                  err ? "failed: " : d->cache ? "done; an epoch to the store starts now" : "done",
                  err ? strerror(err) : "");
            continue;
        }
        if (sig == SIGUSR1) { /* sent by run_daemon() once everything is closed */
            if (stopping)
                pthread_join(stopper, NULL);
            return NULL;
        }
        d->stop_signals++;
        if (d->stop_signals == 2) {
            uint64_t left = d->cache ? cache_dirty_bytes(d->cache) : 0;
            logf_(d, USBD_LOG_WARN, "%.1f MiB are not in the store yet and the flush goes on; "
                  "signal again to exit without waiting (that data stays in the local cache and "
                  "is uploaded at the next start)", left / 1048576.0);
            continue;
        }
        if (d->stop_signals >= 3) {
            logf_(d, USBD_LOG_WARN, "exiting without waiting for the store");
            if (d->cache)
                cache_abandon(d->cache);
            continue;
        }
        logf_(d, USBD_LOG_INFO, "%s: stopping: %sfinishing requests in flight", strsignal(sig),
              d->gadget ? "unplugging the USB drive, " : "");
        if (pthread_create(&stopper, NULL, stop_thread, d) == 0) {
            stopping = true;
        } else { /* no thread: the same steps here, without a 3rd-signal exit */
            stop_thread(d);
        }
    }
}

/* The USB serial number: the same for a volume wherever and whenever it is
 * served, so a host keeps its drive letter or mount point. */
static void derive_serial(struct daemon *d, char *out, size_t n)
{
    if (d->cache) {
        uint8_t uuid[SEAL_UUID_SIZE];
        cache_volume_uuid(d->cache, uuid);
        size_t k = 0;
        for (unsigned i = 0; i < SEAL_UUID_SIZE && k + 3 <= n; i++)
            k += (size_t)snprintf(out + k, n - k, "%02X", uuid[i]);
        return;
    }
    /* mem and file have no uuid: FNV-1a of what names the disk. */
    uint64_t h = 0xcbf29ce484222325ull;
    const char *parts[] = {d->cfg.kind, d->cfg.name, d->cfg.file ? d->cfg.file : ""};
    for (size_t i = 0; i < 3; i++)
        for (const char *p = parts[i]; ; p++) {
            h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
            if (!*p)
                break;
        }
    snprintf(out, n, "%016llX", (unsigned long long)h);
}

static void gadget_config(struct daemon *d, struct usbd_gadget_config *gc, char *name,
                          size_t name_len, char *serial, size_t serial_len)
{
    struct config *c = &d->cfg;
    snprintf(name, name_len, "usbd-%s", c->name);
    if (c->gadget_serial)
        snprintf(serial, serial_len, "%s", c->gadget_serial);
    else
        derive_serial(d, serial, serial_len);
    *gc = (struct usbd_gadget_config){
        .name = name,
        .backing = d->kernel ? usbd_kernel_path(d->kernel) : NULL,
        .serial = serial,
        .manufacturer = c->gadget_vendor,
        .product = c->gadget_product,
        .udc = c->gadget_udc,
        .vendor_id = d->usb_vendor_id,
        .product_id = d->usb_product_id,
        .removable = c->gadget_removable,
        .read_only = c->gadget_readonly || c->readonly,
        .cdrom = c->gadget_cdrom,
        .nofua = c->gadget_nofua,
        .configfs_root = c->gadget_configfs,
        .sysfs_root = c->gadget_sysfs,
        .log = log_line,
        .log_level = d->level,
    };
}

/* Before /dev/nbdX: a gadget left by a killed run still holds its old
 * device, which must be let go of first. */
static int remove_stale_gadget(struct daemon *d)
{
    struct usbd_gadget_config gc;
    char name[300], serial[130];
    gadget_config(d, &gc, name, sizeof name, serial, sizeof serial);
    return usbd_gadget_remove_stale(&gc);
}

static int start_gadget(struct daemon *d)
{
    if (!d->kernel) {
        logf_(d, USBD_LOG_ERROR, "-gadget: no /dev/nbdX to put behind the USB drive (the kernel's "
              "nbd driver is missing: modprobe nbd)");
        return ENODEV;
    }
    struct usbd_gadget_config gc;
    char name[300], serial[130];
    gadget_config(d, &gc, name, sizeof name, serial, sizeof serial);
    return usbd_gadget_create(&gc, &d->gadget);
}

static int attach_kernel(struct daemon *d)
{
    if (!strcmp(d->cfg.nbd_device, "none"))
        return 0;
    int err = usbd_kernel_attach(d->srv, d->cfg.nbd_device, (unsigned)d->cfg.nbd_connections,
                                 &d->kernel);
    /* auto without a driver is normal (a build machine, a container): the
     * sockets still serve. An explicit device that fails is fatal. */
    if (err == ENODEV && !strcmp(d->cfg.nbd_device, "auto"))
        return 0;
    return err;
}

/* Open, serve until a signal, stop in order. Returns the exit status. */
static int run_daemon(struct daemon *d)
{
    /* Block the signals before any thread exists, so all inherit the mask. */
    sigemptyset(&d->sigs);
    sigaddset(&d->sigs, SIGINT);
    sigaddset(&d->sigs, SIGTERM);
    sigaddset(&d->sigs, SIGHUP);
    sigaddset(&d->sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (d->cfg.config_file)
        logf_(d, USBD_LOG_INFO, "config: %s", d->cfg.config_file);
    warn_exposed_secrets(d);
    if (read_given_key(d))
        return EXIT_RUNTIME;
    if (open_device(d)) {
        close_device(d);
        return EXIT_RUNTIME;
    }
    struct usbd_server_config sc = {
        .export_name = d->cfg.name,
        .description = d->cfg.description,
        .threads = (unsigned)d->cfg.threads,
        .max_clients = (unsigned)d->cfg.max_clients,
        .inflight_bytes = (uint32_t)d->cfg.inflight,
        .handshake_timeout_s = (unsigned)((d->cfg.handshake_timeout_ms + 999) / 1000),
        .send_timeout_s = (unsigned)((d->cfg.send_timeout_ms + 999) / 1000),
        .log = log_line,
        .log_level = d->level,
    };
    int err = usbd_server_create(&d->dev, &sc, &d->srv);
    if (!err)
        err = start_listeners(d);
    pthread_t sigt;
    bool sig_started = false;
    if (!err) {
        err = pthread_create(&sigt, NULL, signal_thread, d);
        sig_started = err == 0;
    }
    if (!err && d->cfg.gadget)
        err = remove_stale_gadget(d);
    if (!err)
        err = attach_kernel(d);
    if (!err && d->cfg.gadget)
        err = start_gadget(d);
    if (!err) {
        char sz[32];
        format_size(d->dev.size, sz, sizeof sz);
        logf_(d, USBD_LOG_INFO, "ready: export '%s', %s, kind %s%s", d->cfg.name, sz, d->cfg.kind,
              d->dev.read_only ? ", read-only" : "");
        err = usbd_server_run(d->srv);
    } else if (sig_started) {
        usbd_server_stop(d->srv);
    }
    /* Stopped by an error, not a signal: unplug first; the detach flushes
     * /dev/nbdX and close_device() below commits to the store. */
    if (d->gadget)
        usbd_gadget_remove(d->gadget);
    if (d->kernel)
        usbd_kernel_detach(d->kernel);
    int ferr = 0;
    if (d->srv) {
        usbd_server_destroy(d->srv); /* every connection is closed: no more I/O */
        d->srv = NULL;
    }
    ferr = close_device(d);
    if (sig_started) {
        pthread_kill(sigt, SIGUSR1);
        pthread_join(sigt, NULL);
    }
    if (!err && !ferr)
        logf_(d, USBD_LOG_INFO, "stopped cleanly");
    return err || ferr ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    char err_msg[512];
    config_defaults(&d.cfg);
    if (config_parse_args(&d.cfg, argc, argv, err_msg, sizeof err_msg) ||
        (!d.cfg.help && !d.cfg.version && (check_config(&d, err_msg, sizeof err_msg) ||
                                           check_listen(&d.cfg, err_msg, sizeof err_msg)))) {
        fprintf(stderr, "usbd-objstore: %s\n", err_msg);
        config_free(&d.cfg);
        return EXIT_USAGE;
    }
    d.key_in_argv = in_argv(d.cfg.key, argc, argv);
    int rc = 0;
    if (d.cfg.help)
        config_print_help(stdout);
    else if (d.cfg.version)
        printf("usbd-objstore %s\n", USBD_VERSION);
    else
        rc = run_daemon(&d);
    config_free(&d.cfg);
    return rc;
}
