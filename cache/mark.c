/* mark.c - this machine's rollback high-water mark for one volume.
 *
 * <state_dir>/<volume>.hwm, beside the generated key and outside the
 * volume's state directory, so that emptying the cache keeps it: the
 * highest epoch and fencing token this machine has seen committed, and the
 * owner id of its last run that wrote the volume. Sealed (kind mark) with
 * the volume's keys, so only a holder of the key can lower it. A store
 * whose newest epoch is below the mark lost or rolled back records (or a
 * listing is stale): cache.c refuses it unless -accept-rollback.
 *
 * Payload: "USBDHWM1", epoch, token (le64), owner (16 bytes). Written to a
 * temporary, synced, renamed over, directory synced: a cut leaves the old
 * mark or the new one. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define MARK_MAGIC "USBDHWM1"
#define MARK_PAYLOAD 40

static void mark_path(const struct cache *c, char *buf, size_t n, const char *suffix)
{
    snprintf(buf, n, "%s/%s.hwm%s", c->cfg.state_dir, c->cfg.volume, suffix);
}

void mark_load(struct cache *c)
{
    char path[4200];
    mark_path(c, path, sizeof path, "");
    memset(&c->mark, 0, sizeof c->mark);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            cache_log(c, USBD_LOG_WARN, "cannot read %s: %s (no rollback check this time)", path,
                      strerror(errno));
        return;
    }
    uint8_t obj[512], p[MARK_PAYLOAD];
    ssize_t n = read(fd, obj, sizeof obj);
    close(fd);
    uint32_t got = 0;
    struct seal_ctx *sc = NULL;
    struct seal_id id = {.kind = SEAL_KIND_MARK};
    int err = n <= 0 ? EPROTO : seal_ctx_new(&sc);
    if (!err)
        err = seal_open(sc, &c->keys, &id, obj, (size_t)n, p, sizeof p, &got);
    seal_ctx_free(sc);
    if (!err && (got != MARK_PAYLOAD || memcmp(p, MARK_MAGIC, 8) != 0))
        err = EPROTO;
    if (err) {
        /* A mark we cannot vouch for is no mark: refusing to start over it
         * would need a person at the board. */
        cache_log(c, USBD_LOG_WARN, "%s is damaged or belongs to another volume of that name "
                  "(%s): ignored, and written anew", path, strerror(err));
        return;
    }
    c->mark.valid = true;
    c->mark.epoch = le64_get(p + 8);
    c->mark.token = le64_get(p + 16);
    memcpy(c->mark.owner, p + 24, 16);
}

int mark_save(struct cache *c)
{
    uint8_t p[MARK_PAYLOAD];
    memcpy(p, MARK_MAGIC, 8);
    le64_put(p + 8, c->mark.epoch);
    le64_put(p + 16, c->mark.token);
    memcpy(p + 24, c->mark.owner, 16);
    struct seal_id id = {.kind = SEAL_KIND_MARK};
    struct seal_params plain = {.comp = SEAL_COMP_NONE, .cipher = SEAL_CIPHER_NONE};
    void *obj;
    size_t len;
    int err = volume_seal(c, &plain, &id, p, sizeof p, &obj, &len);
    if (err)
        return err;
    char path[4200], tmp[4210];
    mark_path(c, path, sizeof path, "");
    mark_path(c, tmp, sizeof tmp, ".tmp");
    const char *what = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
    } else {
        what = "write";
        if (write(fd, obj, len) != (ssize_t)len)
            err = errno ? errno : EIO;
        if (!err && fsync(fd) != 0)
            what = "fsync", err = errno;
        if (close(fd) != 0 && !err)
            what = "close", err = errno;
        if (!err && rename(tmp, path) != 0)
            what = "rename", err = errno;
    }
    free(obj);
    if (!err) {
        int dfd = open(c->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0)
                what = "fsync directory", err = errno;
            close(dfd);
        }
    }
    if (err) {
        unlink(tmp);
        cache_log(c, USBD_LOG_ERROR, "cannot save the rollback mark %s: %s: %s", path, what,
                  strerror(err));
    }
    return err;
}
