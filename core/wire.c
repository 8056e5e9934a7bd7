/* wire.c - whole reads and writes on a stream socket.
 *
 * With a deadline, the whole transfer must be over by then, however the
 * peer spreads its bytes: a timeout per system call (SO_RCVTIMEO) would let
 * a client that sends one byte per timeout hold the connection for ever. So
 * each step waits in poll() for what is left of the time, then moves what is
 * there without blocking. Without a deadline, the socket's own blocking
 * behaviour (and its SO_SNDTIMEO, if set) applies. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

/* Wait until fd is ready for events or the deadline passes (ETIMEDOUT). */
static int wait_ready(int fd, short events, const struct timespec *deadline)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
                       (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
        if (r > 0)
            return 0; /* ready, or an error/hang-up that the next call reports */
        if (r < 0 && errno != EINTR)
            return errno;
    }
}

int wire_read(int fd, void *buf, size_t n, size_t *got, const struct timespec *deadline)
{
    size_t done = 0;
    int err = 0;
    while (done < n) {
        if (deadline && (err = wait_ready(fd, POLLIN, deadline)) != 0)
            break;
        ssize_t r = recv(fd, (char *)buf + done, n - done, deadline ? MSG_DONTWAIT : MSG_WAITALL);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EINTR || (deadline && (errno == EAGAIN || errno == EWOULDBLOCK))))
            continue;
        err = r == 0 ? ECONNRESET : errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
        break;
    }
    if (got)
        *got = done;
    return err;
}

int wire_writev(int fd, struct iovec *iov, int iovcnt, const struct timespec *deadline)
{
    /* MSG_NOSIGNAL: a client that went away is an error, not SIGPIPE. */
    const int flags = MSG_NOSIGNAL | (deadline ? MSG_DONTWAIT : 0);
    while (iovcnt > 0) {
        if (deadline) {
            int err = wait_ready(fd, POLLOUT, deadline);
            if (err)
                return err;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t w = sendmsg(fd, &m, flags);
        if (w < 0) {
            if (errno == EINTR || (deadline && (errno == EAGAIN || errno == EWOULDBLOCK)))
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
        }
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

int wire_write(int fd, const void *buf, size_t n, const struct timespec *deadline)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    return wire_writev(fd, &iov, 1, deadline);
}
