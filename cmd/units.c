/* units.c - human sizes and durations. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flags.h"

struct unit {
    const char *suffix;
    double mult;
};

/* Binary unless the suffix says decimal ("GB"): "1G" means GiB, as in qemu-img. */
static const struct unit size_units[] = {
    {"", 1},          {"b", 1},
    {"k", 0x1p10},    {"kib", 0x1p10},  {"kb", 1e3},
    {"m", 0x1p20},    {"mib", 0x1p20},  {"mb", 1e6},
    {"g", 0x1p30},    {"gib", 0x1p30},  {"gb", 1e9},
    {"t", 0x1p40},    {"tib", 0x1p40},  {"tb", 1e12},
    {"p", 0x1p50},    {"pib", 0x1p50},  {"pb", 1e15},
};

static const struct unit time_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000},
};

static int parse_with_units(const char *s, const struct unit *u, size_t n, double *out)
{
    if (!s || !*s)
        return EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0 || s[0] == '-' || s[0] == '+')
        return EINVAL;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(end, u[i].suffix) == 0) {
            *out = v * u[i].mult;
            return 0;
        }
    }
    return EINVAL;
}

int parse_size(const char *s, uint64_t *out)
{
    double v;
    int err = parse_with_units(s, size_units, sizeof size_units / sizeof *size_units, &v);
    if (err)
        return err;
    if (v >= 0x1p64)
        return ERANGE;
    if (v != floor(v))
        return EINVAL; /* "1.3B" or a fraction that is not a whole byte */
    *out = (uint64_t)v;
    return 0;
}

int parse_duration(const char *s, uint64_t *out_ms)
{
    double v;
    int err = parse_with_units(s, time_units, sizeof time_units / sizeof *time_units, &v);
    if (err)
        return err;
    if (v >= 0x1p63)
        return ERANGE;
    *out_ms = (uint64_t)llround(v);
    return 0;
}

void format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *names[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int i = 0;
    while (v >= 1024 && i < 6) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    else if (v == floor(v))
        snprintf(buf, len, "%.0f %s", v, names[i]);
    else
        snprintf(buf, len, "%.1f %s", v, names[i]);
}
