/* util.c - logging and object names for the cache. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

void key_lease(const struct cache *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s/lease", c->cfg.volume);
}

void key_reader(const struct cache *c, const uint8_t owner[16], char *buf, size_t len)
{
    char hex[33];
    hex_owner(owner, hex);
    snprintf(buf, len, "%s/readers/%s", c->cfg.volume, hex);
}

void hex_owner(const uint8_t owner[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", owner[i]);
}

/* Exactly 16 lowercase hex digits, as key_* write them. */
static bool parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char ch = s[i];
        unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
                   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                                            : 16;
        if (d == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return true;
}

/* The rest of key after "<volume>/<dir>/", or NULL if key is not under it. */
static const char *under(const struct cache *c, const char *dir, const char *key)
{
    size_t vl = strlen(c->cfg.volume), dl = strlen(dir);
    if (strncmp(key, c->cfg.volume, vl) != 0 || key[vl] != '/' ||
        strncmp(key + vl + 1, dir, dl) != 0 || key[vl + 1 + dl] != '/')
        return NULL;
    return key + vl + 1 + dl + 1;
}

bool key_parse_number(const struct cache *c, const char *dir, const char *key, uint64_t *n)
{
    const char *rest = under(c, dir, key);
    return rest && strlen(rest) == 16 && parse_hex16(rest, n);
}

bool key_parse_chunk(const struct cache *c, const char *key, uint64_t *index, uint64_t *gen)
{
    const char *rest = under(c, "chunks", key);
    return rest && strlen(rest) == 33 && rest[16] == '-' && parse_hex16(rest, index) &&
           parse_hex16(rest + 17, gen);
}

double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
