/* log.c - one line per event, through the server's configured sink. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static const char *level_name[] = {"error", "warn", "info", "debug"};

void usbd_log_stderr(void *opaque, enum usbd_log_level level, const char *line)
{
    (void)opaque;
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "usbd: %s: %s\n", level_name[level <= USBD_LOG_DEBUG ? level : 3], line);
}

static void vlog(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt,
                 va_list ap) __attribute__((format(printf, 3, 0)));
static void vlog(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt,
                 va_list ap)
{
    if (level > srv->cfg.log_level)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    srv->cfg.log(srv->cfg.log_opaque, level, line);
}

void srv_log(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(srv, level, fmt, ap);
    va_end(ap);
}

void usbd_server_log(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(srv, level, fmt, ap);
    va_end(ap);
}
