/* xor_device.c - a third block device built on libusbd, as a user writes one.
 *
 * A RAM disk that stores every byte XORed with a key byte (a toy "encrypted"
 * disk): clients read and write plain data, memory holds the scrambled form.
 * Build: cc xor_device.c -lusbd -lpthread; run: ./a.out unix:/tmp/xor.sock
 * then e.g. nbdcopy or qemu-img against nbd+unix:///?socket=/tmp/xor.sock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbd.h>

#define SIZE (64u << 20)
#define KEY 0x5a

static int xor_read(void *priv, void *buf, uint32_t len, uint64_t off)
{
    const unsigned char *disk = priv;
    unsigned char *out = buf;
    for (uint32_t i = 0; i < len; i++)
        out[i] = disk[off + i] ^ KEY;
    return 0;
}

static int xor_write(void *priv, const void *buf, uint32_t len, uint64_t off, unsigned flags)
{
    unsigned char *disk = priv;
    const unsigned char *in = buf;
    for (uint32_t i = 0; i < len; i++)
        disk[off + i] = in[i] ^ KEY;
    (void)flags; /* RAM: FUA needs nothing more */
    return 0;
}

static const struct usbd_dev_ops xor_ops = {.read = xor_read, .write = xor_write};

int main(int argc, char **argv)
{
    const char *listen = argc > 1 ? argv[1] : "unix:/tmp/xor.sock";
    unsigned char *disk = malloc(SIZE);
    if (!disk)
        return 1;
    memset(disk, KEY, SIZE); /* reads as zeros */
    struct usbd_dev dev = {.ops = &xor_ops, .priv = disk, .size = SIZE, .description = "xor demo"};
    int err = usbd_serve(&dev, listen); /* until SIGINT or SIGTERM */
    free(disk);
    if (err)
        fprintf(stderr, "xor_device: %s\n", strerror(err));
    return err ? 1 : 0;
}
