/* test_listen.c - usbd_listen_is_remote: which -listen specs other machines
 * can reach. Numeric addresses only (and localhost, from /etc/hosts), so the
 * test needs no network. */
#include <errno.h>
#include <stdbool.h>

#include "check.h"
#include "core/usbd.h"

/* 1 remote, 0 loopback or unix, -errno for an error. */
static int remote(const char *spec)
{
    bool r = true;
    int err = usbd_listen_is_remote(spec, &r);
    return err ? -err : r;
}

int main(void)
{
    CHECK(remote("unix:/run/usbd-objstore/usbd.sock") == 0);
    CHECK(remote("tcp:10809") == 0); /* host defaults to 127.0.0.1 */
    CHECK(remote("tcp:127.0.0.1:10809") == 0);
    CHECK(remote("tcp:127.45.6.7:10809") == 0); /* all of 127.0.0.0/8 */
    CHECK(remote("tcp:[::1]:10809") == 0);
    CHECK(remote("tcp:[::ffff:127.0.0.1]:10809") == 0);
    CHECK(remote("tcp:localhost:10809") == 0);

    CHECK(remote("tcp:0.0.0.0:10809") == 1);
    CHECK(remote("tcp:[::]:10809") == 1);
    CHECK(remote("tcp:192.168.1.20:10809") == 1);
    CHECK(remote("tcp:128.0.0.1:10809") == 1);
    CHECK(remote("tcp:[::ffff:10.0.0.1]:10809") == 1);
    CHECK(remote("tcp:[fe80::1]:10809") == 1);

    CHECK(remote("tcp:127.0.0.1:99999") == -EINVAL);
    CHECK(remote("tcp::10809") == -EINVAL);
    CHECK(remote("udp:127.0.0.1:10809") == -EINVAL);
    CHECK(remote("none") == -EINVAL);
    return CHECK_DONE();
}
