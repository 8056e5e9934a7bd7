/* fuzz_nbd.c - libFuzzer target for the handshake and the request parser.
 *
 * The input is what a client sends, byte for byte. It is written into one
 * end of a socket pair while the real server code serves the other end in
 * this thread (one worker), and a second thread drains the replies. The
 * first input byte chooses between a full session (handshake first) and a
 * kernel-style connection (transmission phase at once). Every run must end
 * without a crash, a sanitizer report or a leak. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/internal.h"

struct feed {
    int fd;
    const uint8_t *data;
    size_t len;
};

static void *feeder(void *arg)
{
    struct feed *f = arg;
    size_t off = 0;
    while (off < f->len) {
        ssize_t w = send(f->fd, f->data + off, f->len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server hung up: the rest is never read */
        off += (size_t)w;
    }
    shutdown(f->fd, SHUT_WR);
    char sink[65536];
    while (recv(f->fd, sink, sizeof sink, 0) > 0)
        ;
    return NULL;
}

static void quiet(void *opaque, enum usbd_log_level level, const char *line)
{
    (void)opaque, (void)level, (void)line;
}

static struct usbd_server *server(void)
{
    static struct usbd_dev dev;
    static struct usbd_server *srv;
    if (!srv) {
        struct usbd_server_config cfg = {
            .export_name = "fuzz", .threads = 1, .log = quiet, .handshake_timeout_s = 2,
        };
        if (usbd_mem_open(1 << 20, &dev) || usbd_server_create(&dev, &cfg, &srv))
            abort();
    }
    return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    struct feed f = {.fd = sv[1], .data = data + 1, .len = size - 1};
    pthread_t t;
    if (pthread_create(&t, NULL, feeder, &f) != 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    server_serve_fd_inline(server(), sv[0], !(data[0] & 1));
    pthread_join(t, NULL);
    close(sv[1]);
    return 0;
}
