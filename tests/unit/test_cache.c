/* test_cache.c - the object-store device against a real local store, through
 * its public header: one writer per volume, fencing, and local I/O errors
 * that make the volume read-only until a restart. */
#include "cache/cache.h"

#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char base[512];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void quiet_log(void *opaque, enum usbd_log_level level, const char *line)
{
    if (getenv("TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, line);
}

static void quiet_store_log(void *opaque, int level, const char *line)
{
    quiet_log(opaque, (enum usbd_log_level)level, line);
}

static struct objstore *open_store(const char *name)
{
    char root[600];
    snprintf(root, sizeof root, "%s/%s", base, name);
    mkdir(root, 0755);
    struct objstore_local_config lc = {.root = root, .log = quiet_store_log};
    struct objstore *s = NULL;
    CHECK(objstore_local_open(&lc, &s) == 0);
    return s;
}

/* The sync hook: fails (EIO) from the fail_from-th call on. */
static atomic_int syncs, fail_from;
static int failing_sync(int fd)
{
    int n = atomic_fetch_add(&syncs, 1) + 1;
    if (fail_from && n >= fail_from) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static struct cache_config config(const char *state)
{
    static char dirs[4][600];
    static int next;
    char *d = dirs[next++ % 4];
    snprintf(d, 600, "%s/%s", base, state);
    struct cache_config cfg = {
        .state_dir = d,
        .volume = "vol",
        .size = 4 << 20,
        .chunk_size = 64 << 10,
        .flush_every_ms = 3600000, /* epochs only when asked */
        .seal = {.comp = SEAL_COMP_ZSTD, .level = 1, .cipher = SEAL_CIPHER_AES256CTR},
        .log = quiet_log,
        .log_level = USBD_LOG_DEBUG,
        .lease_ms = 60000,
    };
    memset(cfg.master_key, 0x5a, sizeof cfg.master_key);
    return cfg;
}

static int dev_write(struct usbd_dev *d, uint8_t fill, uint64_t off)
{
    uint8_t buf[4096];
    memset(buf, fill, sizeof buf);
    return d->ops->write(d->priv, buf, sizeof buf, off, 0);
}

static uint8_t dev_read_byte(struct usbd_dev *d, uint64_t off)
{
    uint8_t buf[4096];
    CHECK(d->ops->read(d->priv, buf, sizeof buf, off) == 0);
    return buf[0];
}

static size_t count_keys(struct objstore *s, const char *prefix)
{
    struct objstore_list l = OBJSTORE_LIST_INIT;
    CHECK(objstore_list(s, prefix, NULL, 0, &l) == 0);
    size_t n = l.count;
    objstore_list_free(&l);
    return n;
}

/* A failed fdatasync of the slot file: the volume turns read-only for good
 * (a later sync that passes proves nothing), nothing more is uploaded, and
 * a restart goes on from the last state the disk confirmed. */
static void test_sync_failure(void)
{
    struct objstore *s = open_store("store-sync");
    struct cache_config cfg = config("state-sync");
    cfg.sync_fd = failing_sync;
    struct cache *c;
    CHECK(cache_open(&cfg, s, &c) == 0);
    struct usbd_dev d;
    cache_device(c, &d);
    CHECK(dev_write(&d, 'a', 0) == 0);
    CHECK(cache_commit(c) == 0); /* 'a' is in the store */
    size_t chunks = count_keys(s, "vol/chunks/");
    CHECK(chunks == 1);
    CHECK(dev_write(&d, 'b', 0) == 0);
    CHECK(!cache_read_only_now(c));
    atomic_store(&fail_from, atomic_load(&syncs) + 1);
    CHECK(d.ops->flush(d.priv) == EIO);       /* the sync fails: FLUSH says so */
    CHECK(cache_read_only_now(c));
    atomic_store(&fail_from, 0);              /* the disk "recovers" */
    CHECK(d.ops->flush(d.priv) != 0);         /* ... and is still not trusted */
    CHECK(dev_write(&d, 'c', 0) == EROFS);
    CHECK(dev_write(&d, 'c', 1 << 20) == EROFS);
    CHECK(dev_read_byte(&d, 0) == 'b');       /* reads still work */
    cache_flush_soon(c);
    usleep(200000);
    CHECK(cache_commit(c) != 0);               /* nothing it cannot vouch for goes up */
    CHECK(count_keys(s, "vol/chunks/") == chunks);
    CHECK(cache_close(c) != 0);
    objstore_close(s);

    /* A restart (no fault) opens and serves what the disk confirmed. */
    s = open_store("store-sync");
    cfg.sync_fd = NULL;
    CHECK(cache_open(&cfg, s, &c) == 0);
    cache_device(c, &d);
    CHECK(dev_read_byte(&d, 0) == 'a');
    CHECK(dev_write(&d, 'd', 0) == 0);
    CHECK(cache_close(c) == 0);
    objstore_close(s);
}

/* Two writers: the second is refused while the first holds the lease; with
 * takeover it writes, and the first is fenced at its next commit. */
static void test_two_writers(void)
{
    struct objstore *sa = open_store("store-two"), *sb = open_store("store-two");
    struct cache_config ca = config("state-a"), cb = config("state-b");
    struct cache *a, *b;
    CHECK(cache_open(&ca, sa, &a) == 0);
    struct usbd_dev da, db;
    cache_device(a, &da);
    CHECK(dev_write(&da, 'a', 0) == 0);
    CHECK(cache_commit(a) == 0);
    CHECK(cache_open(&cb, sb, &b) == EBUSY);
    struct stat st;
    CHECK(stat(cb.state_dir, &st) != 0); /* nothing written to the second cache */
    cb.takeover = true;
    CHECK(cache_open(&cb, sb, &b) == 0);
    cache_device(b, &db);
    CHECK(dev_read_byte(&db, 0) == 'a');
    CHECK(dev_write(&db, 'b', 0) == 0);
    CHECK(cache_commit(b) == 0);
    /* The first writer's next epoch collides: fenced, its change kept. */
    CHECK(dev_write(&da, 'x', 0) == 0);
    CHECK(cache_commit(a) != 0);
    CHECK(cache_read_only_now(a));
    CHECK(dev_write(&da, 'y', 0) == EROFS);
    CHECK(dev_read_byte(&da, 0) == 'x');
    CHECK(cache_close(a) != 0);
    CHECK(cache_close(b) == 0);
    objstore_close(sa);
    objstore_close(sb);

    /* Read-only: no lease needed, the committed epoch served. */
    sb = open_store("store-two");
    struct cache_config cr = config("state-r");
    cr.read_only = true;
    CHECK(cache_open(&cr, sb, &b) == 0);
    cache_device(b, &db);
    CHECK(dev_read_byte(&db, 0) == 'b');
    CHECK(dev_write(&db, 'z', 0) == EROFS);
    CHECK(cache_close(b) == 0);
    objstore_close(sb);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/test_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(base) != NULL);
    test_sync_failure();
    test_two_writers();
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return CHECK_DONE();
}
