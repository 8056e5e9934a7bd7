/* dev.c - helpers common to every device. */
#include <string.h>

#include "usbd.h"

void usbd_dev_close(struct usbd_dev *dev)
{
    if (dev && dev->ops && dev->ops->close)
        dev->ops->close(dev->priv);
    if (dev)
        memset(dev, 0, sizeof *dev);
}
