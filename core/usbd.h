/* usbd.h - libusbd: write a user-space block device in C and serve it over NBD.
 *
 * This is the whole public API of libusbd. A block device is a struct usbd_dev:
 * a size, block-size hints and a table of operations (struct usbd_dev_ops).
 * Implement the operations, then either call usbd_serve() or build a server
 * with usbd_server_create() / usbd_server_listen() / usbd_server_run().
 * Any NBD client can then use the device: qemu, nbd-client, nbdcopy, nbdfuse,
 * fio's nbd engine, and the Linux kernel through usbd_kernel_attach().
 *
 * Error convention (everywhere in this API): a function returns 0 on success
 * or a positive errno value (EIO, EINVAL, ENOSPC, ...) on failure. Functions
 * that can fail for a reason a user must act on also log one line saying why.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#ifndef USBD_H
#define USBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- logging */

enum usbd_log_level { USBD_LOG_ERROR = 0, USBD_LOG_WARN, USBD_LOG_INFO, USBD_LOG_DEBUG };

/* Receives one complete log line (no trailing newline). May be called from
 * any thread, concurrently. NULL in a config means: write to stderr. */
typedef void (*usbd_log_fn)(void *opaque, enum usbd_log_level level, const char *line);

/* The default sink: "usbd: <level>: <line>" to stderr. */
void usbd_log_stderr(void *opaque, enum usbd_log_level level, const char *line);

struct usbd_server;

/* Log one line through a server's configured sink (printf format). */
void usbd_server_log(const struct usbd_server *srv, enum usbd_log_level level, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------- block device */

/* Flags passed to write, trim and write_zeroes. */
#define USBD_FUA       (1u << 0) /* return only once this write is on stable storage */
#define USBD_NO_HOLE   (1u << 1) /* write_zeroes: the range must stay allocated */
#define USBD_FAST_ZERO (1u << 2) /* write_zeroes: fail with ENOTSUP rather than be slow */

/* One extent of a block-status answer. */
#define USBD_EXTENT_HOLE (1u << 0) /* not allocated */
#define USBD_EXTENT_ZERO (1u << 1) /* reads as zeros */
struct usbd_extent {
    uint64_t length;
    uint32_t flags;
};

/* The operations of a block device.
 *
 * Threading: every operation may be called from many threads at once, for
 * overlapping or disjoint ranges, from one or several client connections. A
 * device that cannot do that serialises internally.
 *
 * Ranges: the server validates every request before it reaches a device:
 * len > 0, off + len <= size, len <= max_block for read and write, offsets
 * and lengths multiples of min_block, the device not read-only for writes.
 * A device never sees an out-of-range request.
 *
 * Durability: flush() returns once every write that completed before flush()
 * was called, on any connection, is on stable storage (this is what lets the
 * server advertise NBD_FLAG_CAN_MULTI_CONN). A write with USBD_FUA returns
 * once that write is on stable storage. A device whose storage is volatile by
 * design (RAM) returns 0 from flush.
 *
 * Errors: return a positive errno value; it is sent to the client mapped to
 * the nearest NBD error (EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW,
 * ENOTSUP, ESHUTDOWN; anything else becomes EIO). The device logs the cause.
 */
struct usbd_dev_ops {
    /* Required. Fill buf with len bytes from off. */
    int (*read)(void *priv, void *buf, uint32_t len, uint64_t off);
    /* Required unless the device is read-only. flags: USBD_FUA. */
    int (*write)(void *priv, const void *buf, uint32_t len, uint64_t off, unsigned flags);
    /* Optional (NULL: nothing to flush; FLUSH succeeds). */
    int (*flush)(void *priv);
    /* Optional (NULL: TRIM is not advertised). Afterwards the range reads as
     * zeros or as its old content. flags: USBD_FUA. */
    int (*trim)(void *priv, uint32_t len, uint64_t off, unsigned flags);
    /* Optional (NULL: the server writes zero buffers; with USBD_FAST_ZERO it
     * answers ENOTSUP). flags: USBD_FUA, USBD_NO_HOLE, USBD_FAST_ZERO. */
    int (*write_zeroes)(void *priv, uint32_t len, uint64_t off, unsigned flags);
    /* Optional (NULL: CACHE succeeds and does nothing). Prefetch the range. */
    int (*cache)(void *priv, uint32_t len, uint64_t off);
    /* Optional (NULL: the whole range is reported as allocated data).
     * Describe the range starting at off in up to *n extents; set *n to the
     * number filled. The extents are consecutive, start at off, and their
     * total length is between 1 and len. */
    int (*block_status)(void *priv, uint32_t len, uint64_t off, struct usbd_extent *ext,
                        size_t *n);
    /* Optional. Release the device; called by usbd_dev_close(). */
    void (*close)(void *priv);
};

struct usbd_dev {
    const struct usbd_dev_ops *ops;
    void *priv;
    uint64_t size;        /* bytes; a multiple of min_block */
    uint32_t min_block;   /* smallest I/O unit, a power of two; 0 means 1 */
    uint32_t pref_block;  /* preferred I/O size, a power of two; 0 means 4096 */
    uint32_t max_block;   /* largest read or write; 0 means 32 MiB */
    bool read_only;
    const char *description; /* shown by OPT_INFO / OPT_LIST; may be NULL */
};

/* Call dev->ops->close (if any). Safe on a zeroed struct. */
void usbd_dev_close(struct usbd_dev *dev);

/* A RAM disk of size bytes: pages are allocated on first write and given
 * back on TRIM or WRITE_ZEROES. Its content is lost when it is closed.
 * Errors: EINVAL (size 0 or not a multiple of 4096), ENOMEM. */
int usbd_mem_open(uint64_t size, struct usbd_dev *dev);

/* A regular file or a block device. If path does not exist it is created
 * with size bytes (size must then be > 0). If it exists and size is 0 the
 * file's own size is used; a different non-zero size is EINVAL with a log
 * line. FLUSH is fdatasync; TRIM punches holes.
 * Errors: errno of open/stat/ftruncate, EINVAL. */
int usbd_file_open(const char *path, uint64_t size, bool read_only, usbd_log_fn log,
                   void *log_opaque, struct usbd_dev *dev);

/* ------------------------------------------------------------- NBD server */

struct usbd_server_config {
    const char *export_name;  /* answered besides the empty name; NULL: "usbd" */
    const char *description;  /* NULL: dev->description */
    unsigned threads;         /* worker threads per connection; 0: 16 */
    unsigned max_clients;     /* simultaneous connections; 0: 16 */
    uint32_t inflight_bytes;  /* request payload bytes in flight per connection;
                               * 0: 64 MiB. Bounds memory per connection. */
    unsigned handshake_timeout_s; /* a client has this long, from its connection,
                                   * to finish option negotiation: one deadline
                                   * for the whole of it, however slowly the
                                   * client sends or reads; 0: 30 */
    unsigned send_timeout_s;  /* a reply that makes no progress for this long
                               * (the client stopped reading) disconnects the
                               * client, with one log line; not applied to
                               * usbd_server_adopt() sockets; 0: 30 */
    usbd_log_fn log;          /* NULL: usbd_log_stderr */
    void *log_opaque;
    enum usbd_log_level log_level; /* lines above this level are dropped */
};

struct usbd_server;

/* Create a server for dev (which must outlive it). Nothing listens yet.
 * Errors: EINVAL (bad device geometry, logged), ENOMEM. */
int usbd_server_create(struct usbd_dev *dev, const struct usbd_server_config *cfg,
                       struct usbd_server **out);

/* Listen on "unix:PATH", "tcp:HOST:PORT", "tcp:PORT" (host 127.0.0.1) or
 * "tcp:[V6ADDR]:PORT". May be called several times. A unix PATH that another
 * live server listens on is EADDRINUSE; a stale socket file is replaced. The
 * socket file is made mode 0660 (its owner and group may connect) whatever
 * the umask; its directory must exist (ENOENT otherwise), and who may reach
 * it is up to that directory's mode. NBD has no authentication: see
 * usbd_listen_is_remote() before listening on TCP beyond loopback.
 * Errors: EINVAL (bad spec), EADDRINUSE, ENOENT, errno of socket/bind/chmod/
 * listen; logged. */
int usbd_server_listen(struct usbd_server *srv, const char *spec);

/* Would a listener on spec (as for usbd_server_listen) accept connections
 * from other machines? 0 with *remote false for "unix:" and for TCP on
 * loopback only: 127.0.0.0/8, ::1, or a name (localhost) every address of
 * which is loopback; *remote true for anything else, 0.0.0.0 and [::]
 * included. EINVAL for a malformed spec or a name that does not resolve
 * (usbd_server_listen would fail too). Not logged. */
int usbd_listen_is_remote(const char *spec, bool *remote);

/* Serve fd as a connection that is already in the transmission phase (no
 * handshake), as the kernel's nbd driver expects. The server owns fd. */
int usbd_server_adopt(struct usbd_server *srv, int fd, const char *label);

/* The NBD transmission flags this server advertises (NBD_FLAG_*) to a
 * client that did not negotiate structured replies (such as the kernel). */
uint16_t usbd_server_transmission_flags(const struct usbd_server *srv);

/* The device the server serves. */
const struct usbd_dev *usbd_server_device(const struct usbd_server *srv);

/* Accept and serve clients until usbd_server_stop(). Then stop reading new
 * requests, let the ones in flight finish and be answered, close every
 * connection, and return 0. */
int usbd_server_run(struct usbd_server *srv);

/* Ask usbd_server_run() to return. Async-signal-safe; any thread. */
void usbd_server_stop(struct usbd_server *srv);

/* Remove unix socket files, free everything. Call after run returned. */
void usbd_server_destroy(struct usbd_server *srv);

/* Everything in one call: serve dev on listen_spec until SIGINT or SIGTERM,
 * then flush the device and return 0 (or an error from any step). */
int usbd_serve(struct usbd_dev *dev, const char *listen_spec);

/* ---------------------------------------------------- the kernel's /dev/nbdX */

struct usbd_kernel;

/* Attach the server's device to a kernel nbd device: "auto" takes the first
 * free /dev/nbdN (loading the nbd module if it can), or a path /dev/nbdN.
 * nconn connections (1 to 16) are opened through socket pairs and served by
 * srv; the kernel is told SEND_FLUSH, SEND_FUA, SEND_TRIM and CAN_MULTI_CONN,
 * so fsync above the device reaches flush(). Call while srv runs (or before).
 * Errors: ENODEV (no nbd driver: logged as one line), EBUSY (device in use),
 * errno of the ioctls. */
int usbd_kernel_attach(struct usbd_server *srv, const char *which, unsigned nconn,
                       struct usbd_kernel **out);

/* The device path attached, e.g. "/dev/nbd0". */
const char *usbd_kernel_path(const struct usbd_kernel *k);

/* Write back the kernel's page cache of the device and have it send FLUSH
 * (what SIGHUP does when a gadget or filesystem writes above /dev/nbdX). */
int usbd_kernel_flush(struct usbd_kernel *k);

/* Disconnect the kernel device (it finishes its queued requests first),
 * wait for it to let go, free k. */
int usbd_kernel_detach(struct usbd_kernel *k);

/* ------------------------------------------------ the USB mass-storage gadget */

/* A USB mass-storage gadget made through configfs (libcomposite), whose
 * LUN 0 is a block device, usually the /dev/nbdX of usbd_kernel_attach():
 * what a TV, PC or phone sees when the board is plugged in.
 *
 * configfs layout made (G = CONFIGFS/usb_gadget/NAME):
 *   G/idVendor idProduct bcdDevice bcdUSB, G/strings/0x409/{manufacturer,
 *   product,serialnumber}, G/configs/c.1/{MaxPower,strings/0x409/configuration},
 *   G/functions/mass_storage.usb0/{stall,lun.0/{removable,cdrom,ro,nofua,
 *   inquiry_string,file}}, the function linked into c.1, and G/UDC last. */
struct usbd_gadget_config {
    const char *name;         /* the configfs directory name; required */
    const char *backing;      /* LUN 0's block device, e.g. "/dev/nbd0"; required */
    const char *serial;       /* iSerialNumber: 12-126 characters [0-9A-Za-z]; required */
    const char *manufacturer; /* NULL: "usbd"; also the SCSI vendor (first 8 chars) */
    const char *product;      /* NULL: "usbd-objstore"; also the SCSI product (16) */
    const char *udc;          /* NULL: the first in SYSFS/class/udc */
    uint16_t vendor_id;       /* 0: 0x1d6b (Linux Foundation) */
    uint16_t product_id;      /* 0: 0x0104 (Multifunction Composite Gadget) */
    bool removable, read_only, cdrom, nofua;
    const char *configfs_root; /* NULL: /sys/kernel/config */
    const char *sysfs_root;    /* NULL: /sys */
    bool no_modprobe;          /* do not try to load configfs/libcomposite/... */
    unsigned release_timeout_ms; /* how long removal waits for the UDC to report the host
                                  * gone ("not attached"); 0: 2 s */
    usbd_log_fn log;           /* NULL: stderr; each configfs step is logged at debug */
    void *log_opaque;
    enum usbd_log_level log_level;
};

struct usbd_gadget;

/* Remove a gadget NAME left behind by a run that did not stop cleanly (it
 * would hold the old /dev/nbdX and the UDC). 0 if there was none or it is
 * gone; EBUSY if its block device is still attached by a live process (a
 * second daemon for the same volume); else the errno of a step. Logged. */
int usbd_gadget_remove_stale(const struct usbd_gadget_config *cfg);

/* Load the modules, remove a stale gadget of the same name, create the
 * gadget and bind it to the UDC: from then on the host sees the drive.
 * On error nothing is left in configfs. Errors (each logged as one line that
 * says what to do): ENODEV (no configfs/libcomposite/mass_storage support,
 * or no UDC), EBUSY (the UDC is used by another gadget, or a stale gadget is
 * in use), EINVAL (bad strings), errno of configfs. */
int usbd_gadget_create(const struct usbd_gadget_config *cfg, struct usbd_gadget **out);

/* The UDC the gadget is bound to, e.g. "dummy_udc.0" or "fe980000.usb". */
const char *usbd_gadget_udc(const struct usbd_gadget *g);

/* Unplug: unbind the UDC (synchronous: when it returns the function has
 * stopped and the pull-up is off, so the host sees an unplug), wait up to
 * release_timeout_ms for the UDC to report the host gone, remove the gadget
 * (which closes the backing device), free g.
 * 0, or the errno of the first step that failed (the rest is still tried). */
int usbd_gadget_remove(struct usbd_gadget *g);

#ifdef __cplusplus
}
#endif
#endif /* USBD_H */
