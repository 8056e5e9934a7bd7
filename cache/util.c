/* util.c - logging and object names for the cache. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

void cache_log(const struct cache *c, enum usbd_log_level level, const char *fmt, ...)
{
    if (level > c->cfg.log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.log_opaque, level, line);
}

/* Fixed-width hex: keys sort in numeric order, as listings and checkpoints
 * rely on. */
void key_chunk(const struct cache *c, uint64_t index, uint64_t gen, char *buf, size_t len)
{
    snprintf(buf, len, "%s/chunks/%016llx-%016llx", c->cfg.volume, (unsigned long long)index,
             (unsigned long long)gen);
}

void key_epoch(const struct cache *c, uint64_t epoch, char *buf, size_t len)
{
    snprintf(buf, len, "%s/epochs/%016llx", c->cfg.volume, (unsigned long long)epoch);
}

void key_checkpoint(const struct cache *c, uint64_t epoch, char *buf, size_t len)
{
    snprintf(buf, len, "%s/checkpoints/%016llx", c->cfg.volume, (unsigned long long)epoch);
}

void key_superblock(const struct cache *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/superblock", c->cfg.volume);
}
