/* listen.c - "unix:PATH" and "tcp:HOST:PORT" listeners. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

static int add_listener(struct usbd_server *s, int fd, const char *unix_path, const char *label)
{
    struct listener *l = realloc(s->listeners, (s->nlisteners + 1) * sizeof *l);
    if (!l)
        return ENOMEM;
    s->listeners = l;
    l += s->nlisteners;
    l->fd = fd;
    l->unix_path = unix_path ? strdup(unix_path) : NULL;
    l->label = strdup(label);
    if (!l->label || (unix_path && !l->unix_path)) {
        free(l->unix_path);
        free(l->label);
        return ENOMEM;
    }
    s->nlisteners++;
    return 0;
}

/* A socket file left by a server that died is replaced; one that a live
 * server answers on is not. */
static int claim_unix_path(struct usbd_server *s, const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) != 0)
        return errno == ENOENT ? 0 : errno;
    if (!S_ISSOCK(st.st_mode)) {
        srv_log(s, USBD_LOG_ERROR, "%s exists and is not a socket: not replacing it", sa->sun_path);
        return EEXIST;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return errno;
    int r = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
    int cerr = errno;
    close(probe);
    if (r == 0) {
        srv_log(s, USBD_LOG_ERROR, "socket %s is in use by another running server", sa->sun_path);
        return EADDRINUSE;
    }
    if (cerr != ECONNREFUSED) {
        srv_log(s, USBD_LOG_ERROR, "cannot check socket %s: %s", sa->sun_path, strerror(cerr));
        return cerr;
    }
    if (unlink(sa->sun_path) != 0)
        return errno;
    srv_log(s, USBD_LOG_INFO, "replaced stale socket %s", sa->sun_path);
    return 0;
}

static int listen_unix(struct usbd_server *s, const char *path, const char *spec)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path[0] || strlen(path) >= sizeof sa.sun_path) {
        srv_log(s, USBD_LOG_ERROR, "-listen=%s: socket path empty or longer than %zu bytes", spec,
                sizeof sa.sun_path - 1);
        return EINVAL;
    }
    strcpy(sa.sun_path, path);
    int err = claim_unix_path(s, &sa);
    if (err)
        return err;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err = errno;
        if (err == ENOENT) {
            char *slash = strrchr(sa.sun_path, '/');
            if (slash && slash > sa.sun_path)
                *slash = 0;
            srv_log(s, USBD_LOG_ERROR, "-listen=%s: directory %s does not exist (create it, e.g. "
                    "install -d -m 0750 %s)", spec, sa.sun_path, sa.sun_path);
        } else {
            srv_log(s, USBD_LOG_ERROR, "-listen=%s: %s", spec, strerror(err));
        }
        close(fd);
        return err;
    }
    /* bind() made the file 0777 & ~umask. Set 0660 before listen(): until
     * then a connect() is refused, so the mode in between lets nobody in.
     * Not umask() around bind(): the umask is the whole process's, and
     * other threads (the cache's) create files meanwhile. NOFOLLOW: should
     * the path have been swapped for a symlink since bind(), chmod nothing. */
    if (fchmodat(AT_FDCWD, path, 0660, AT_SYMLINK_NOFOLLOW) != 0 || listen(fd, 64) != 0) {
        err = errno;
        srv_log(s, USBD_LOG_ERROR, "-listen=%s: %s", spec, strerror(err));
        close(fd);
        unlink(path);
        return err;
    }
    err = add_listener(s, fd, path, spec);
    if (err) {
        close(fd);
        unlink(path);
    }
    return err;
}

/* "HOST:PORT", "[V6ADDR]:PORT" or "PORT" (host 127.0.0.1), resolved.
 * EINVAL with a reason for the log in why. */
static int resolve_tcp(const char *hostport, struct addrinfo **ai, char *why, size_t whylen)
{
    char host[256] = "127.0.0.1";
    const char *port = hostport;
    const char *colon = strrchr(hostport, ':');
    if (colon) {
        const char *h = hostport;
        size_t hl = (size_t)(colon - hostport);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:port */
            h++;
            hl -= 2;
        }
        if (hl == 0 || hl >= sizeof host) {
            snprintf(why, whylen, "bad host");
            return EINVAL;
        }
        memcpy(host, h, hl);
        host[hl] = 0;
        port = colon + 1;
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (!port[0] || *end || pn < 0 || pn > 65535) {
        snprintf(why, whylen, "bad port '%s' (use tcp:HOST:PORT)", port);
        return EINVAL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    int gai = getaddrinfo(host, port, &hints, ai);
    if (gai != 0) {
        snprintf(why, whylen, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return EINVAL;
    }
    return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24 == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

int usbd_listen_is_remote(const char *spec, bool *remote)
{
    *remote = false;
    if (strncmp(spec, "unix:", 5) == 0)
        return 0;
    if (strncmp(spec, "tcp:", 4) != 0)
        return EINVAL;
    struct addrinfo *ai;
    char why[300];
    int err = resolve_tcp(spec + 4, &ai, why, sizeof why);
    if (err)
        return err;
    /* All of them: a name may resolve to loopback and to a real address. */
    for (const struct addrinfo *a = ai; a; a = a->ai_next)
        if (!is_loopback(a->ai_addr))
            *remote = true;
    freeaddrinfo(ai);
    return 0;
}

static int listen_tcp(struct usbd_server *s, const char *hostport, const char *spec)
{
    struct addrinfo *ai;
    char why[300];
    if (resolve_tcp(hostport, &ai, why, sizeof why) != 0) {
        srv_log(s, USBD_LOG_ERROR, "-listen=%s: %s", spec, why);
        return EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = fd < 0 ? errno : 0;
    if (!err) {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0)
            err = errno;
    }
    freeaddrinfo(ai);
    if (!err)
        err = add_listener(s, fd, NULL, spec);
    if (err) {
        srv_log(s, USBD_LOG_ERROR, "-listen=%s: %s", spec, strerror(err));
        if (fd >= 0)
            close(fd);
    }
    return err;
}

int usbd_server_listen(struct usbd_server *s, const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return listen_unix(s, spec + 5, spec);
    if (strncmp(spec, "tcp:", 4) == 0)
        return listen_tcp(s, spec + 4, spec);
    srv_log(s, USBD_LOG_ERROR, "-listen=%s: expected unix:PATH or tcp:HOST:PORT", spec);
    return EINVAL;
}
