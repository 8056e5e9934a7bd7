/* modprobe.h - loading kernel modules (private to core/; kernel.c cannot
 * include internal.h, whose protocol names clash with <linux/nbd.h>). */
#ifndef USBD_MODPROBE_H
#define USBD_MODPROBE_H

/* Run modprobe MODULE, output discarded. 0 with its exit status in *status,
 * or the errno of spawning it. */
int usbd_modprobe(const char *module, int *status);

/* gadget.c, for tests: usbd_gadget_create() whose configfs step starting
 * with fail_step ("write usb_gadget/x/UDC") fails with fail_err. */
struct usbd_gadget_config;
struct usbd_gadget;
int gadget_create_failing(const struct usbd_gadget_config *cfg, const char *fail_step,
                          int fail_err, struct usbd_gadget **out);

#endif
