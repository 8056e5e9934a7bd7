/* test_gadget.c - the configfs steps of usbd_gadget_create/remove, in order,
 * against plain directories standing in for configfs and sysfs: exactly
 * what is written where, stale gadgets, a UDC taken by someone else, and a
 * failure half-way that must leave nothing behind. (The real configfs and
 * the host side are tested in the VM: tests/e2e/guest/usb-gadget-test.sh.) */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/modprobe.h"
#include "core/usbd.h"
#include "tests/unit/check.h"

static char trace[200][512];
static size_t ntrace;

static void record(void *opaque, enum usbd_log_level level, const char *line)
{
    (void)opaque;
    if (!strncmp(line, "configfs: ", 10) && ntrace < 200)
        snprintf(trace[ntrace++], sizeof trace[0], "%s", line + 10);
    else if (level <= USBD_LOG_WARN)
        fprintf(stderr, "  log: %s\n", line);
}

static char root[256], cfs[300], sys[300];

static atomic_long parked_tid;
static atomic_int park_release;
static void *park_thread(void *arg)
{
    (void)arg;
    atomic_store(&parked_tid, (long)gettid());
    while (!atomic_load(&park_release))
        usleep(1000);
    return NULL;
}

static void put(const char *path, const char *value)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(value, f);
    CHECK(fclose(f) == 0);
}

/* The content of the gadget's attribute REL ("" if missing: NULL). */
static char *get(const char *rel)
{
    static char buf[512];
    char p[1024];
    snprintf(p, sizeof p, "%s/usb_gadget/usbd-vol/%s", cfs, rel);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static bool exists(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", cfs, rel);
    return access(p, F_OK) == 0;
}

static void mkdirs(const char *path)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    CHECK(system(cmd) == 0);
}

static struct usbd_gadget_config base(void)
{
    return (struct usbd_gadget_config){
        .name = "usbd-vol",
        .backing = "/dev/nbd3",
        .serial = "0123456789ABCDEF0123456789ABCDEF",
        .removable = true,
        .configfs_root = cfs,
        .sysfs_root = sys,
        .no_modprobe = true,
        .release_timeout_ms = 100,
        .log = record,
        .log_level = USBD_LOG_DEBUG,
    };
}

static const char *const expect_create[] = {
    "mkdir usb_gadget/usbd-vol",
    "write usb_gadget/usbd-vol/idVendor 0x1d6b",
    "write usb_gadget/usbd-vol/idProduct 0x0104",
    "write usb_gadget/usbd-vol/bcdDevice 0x0100",
    "write usb_gadget/usbd-vol/bcdUSB 0x0200",
    "mkdir usb_gadget/usbd-vol/strings/0x409",
    "write usb_gadget/usbd-vol/strings/0x409/serialnumber 0123456789ABCDEF0123456789ABCDEF",
    "write usb_gadget/usbd-vol/strings/0x409/manufacturer usbd",
    "write usb_gadget/usbd-vol/strings/0x409/product usbd-objstore",
    "mkdir usb_gadget/usbd-vol/configs/c.1",
    "mkdir usb_gadget/usbd-vol/configs/c.1/strings/0x409",
    "write usb_gadget/usbd-vol/configs/c.1/strings/0x409/configuration Mass Storage",
    "write usb_gadget/usbd-vol/configs/c.1/MaxPower 250",
    "mkdir usb_gadget/usbd-vol/functions/mass_storage.usb0",
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/stall 1",
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/removable 1",
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/cdrom 0",
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/ro 0",
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/nofua 0",
    ("write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/inquiry_string "
     "usbd    usbd-objstore   0100"),
    "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/file /dev/nbd3",
    "link usb_gadget/usbd-vol/configs/c.1/mass_storage.usb0 usb_gadget/usbd-vol/functions/mass_storage.usb0",
    "write usb_gadget/usbd-vol/UDC a_udc.0",
};

static const char *const expect_remove[] = {
    "write usb_gadget/usbd-vol/UDC ",
    "unlink usb_gadget/usbd-vol/configs/c.1/mass_storage.usb0",
    "rmdir usb_gadget/usbd-vol/configs/c.1/strings/0x409",
    "rmdir usb_gadget/usbd-vol/configs/c.1",
    "rmdir usb_gadget/usbd-vol/functions/mass_storage.usb0",
    "rmdir usb_gadget/usbd-vol/strings/0x409",
    "rmdir usb_gadget/usbd-vol",
};

static void check_trace(const char *const *expect, size_t n)
{
    for (size_t i = 0; i < n && i < ntrace; i++)
        if (strcmp(trace[i], expect[i]))
            fprintf(stderr, "step %zu:\n  got    '%s'\n  expect '%s'\n", i, trace[i], expect[i]);
    if (ntrace != n)
        fprintf(stderr, "%zu steps, expected %zu\n", ntrace, n);
    CHECK(ntrace == n);
    for (size_t i = 0; i < n; i++)
        CHECK(!strcmp(trace[i], expect[i]));
    ntrace = 0;
}

#define N(a) (sizeof a / sizeof a[0])

static void test_create_remove(void)
{
    struct usbd_gadget_config c = base();
    struct usbd_gadget *g = NULL;
    CHECK(usbd_gadget_create(&c, &g) == 0);
    check_trace(expect_create, N(expect_create));
    /* The first UDC in sorted order, whatever readdir returns. */
    CHECK(!strcmp(usbd_gadget_udc(g), "a_udc.0"));
    CHECK(!strcmp(get("UDC"), "a_udc.0\n"));
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/file"), "/dev/nbd3\n"));
    CHECK(!strcmp(get("strings/0x409/serialnumber"), "0123456789ABCDEF0123456789ABCDEF\n"));
    char link[1024], target[1024];
    snprintf(link, sizeof link, "%s/usb_gadget/usbd-vol/configs/c.1/mass_storage.usb0", cfs);
    ssize_t n = readlink(link, target, sizeof target - 1);
    CHECK(n > 0);
    target[n] = 0;
    CHECK(strstr(target, "/usb_gadget/usbd-vol/functions/mass_storage.usb0") != NULL);

    CHECK(usbd_gadget_remove(g) == 0);
    check_trace(expect_remove, N(expect_remove));
    CHECK(!exists("usb_gadget/usbd-vol"));
    CHECK(exists("usb_gadget"));
}

static void test_options(void)
{
    struct usbd_gadget_config c = base();
    c.manufacturer = "Acme Storage Co";
    c.product = "Cloud Drive For The Living Room";
    c.udc = "b_udc.0";
    c.vendor_id = 0x1234;
    c.product_id = 0xabcd;
    c.removable = false;
    c.cdrom = true;
    c.nofua = true;
    struct usbd_gadget *g = NULL;
    CHECK(usbd_gadget_create(&c, &g) == 0);
    ntrace = 0;
    CHECK(!strcmp(get("idVendor"), "0x1234\n"));
    CHECK(!strcmp(get("idProduct"), "0xabcd\n"));
    CHECK(!strcmp(get("UDC"), "b_udc.0\n"));
    CHECK(!strcmp(get("strings/0x409/product"), "Cloud Drive For The Living Room\n"));
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/removable"), "0\n"));
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/cdrom"), "1\n"));
    /* A CD-ROM is read-only. */
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/ro"), "1\n"));
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/nofua"), "1\n"));
    /* SCSI fields are cut to 8 and 16 characters. */
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/inquiry_string"),
                  "Acme StoCloud Drive For 0100\n"));
    CHECK(usbd_gadget_remove(g) == 0);
    ntrace = 0;
    CHECK(!exists("usb_gadget/usbd-vol"));
}

static void test_bad_input(void)
{
    struct usbd_gadget *g = NULL;
    struct usbd_gadget_config c = base();
    c.serial = "short";
    CHECK(usbd_gadget_create(&c, &g) == EINVAL);
    c = base();
    c.serial = "has space 0123456";
    CHECK(usbd_gadget_create(&c, &g) == EINVAL);
    c = base();
    c.product = "";
    CHECK(usbd_gadget_create(&c, &g) == EINVAL);
    c = base();
    c.name = "a/b";
    CHECK(usbd_gadget_create(&c, &g) == EINVAL);
    c = base();
    c.udc = "nope.0";
    CHECK(usbd_gadget_create(&c, &g) == ENODEV);
    CHECK(ntrace == 0); /* nothing was touched */
    CHECK(!exists("usb_gadget/usbd-vol"));
}

/* A gadget left by a killed daemon is replaced, not duplicated; one whose
 * device a live process still serves is refused. */
static void test_stale(void)
{
    struct usbd_gadget_config c = base();
    c.backing = "/dev/nbd7";
    struct usbd_gadget *g = NULL;
    CHECK(usbd_gadget_create(&c, &g) == 0);
    /* "kill -9": g is never removed; the daemon's memory goes away. */
    free(g);
    ntrace = 0;

    /* Its nbd7 is attached by a live process (our parent stands in). */
    char p[1024], pid[32];
    snprintf(p, sizeof p, "%s/block/nbd7", sys);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/block/nbd7/pid", sys);
    snprintf(pid, sizeof pid, "%ld\n", (long)getppid());
    put(p, pid);
    c.backing = "/dev/nbd0";
    CHECK(usbd_gadget_create(&c, &g) == EBUSY);
    CHECK(ntrace == 0);
    CHECK(exists("usb_gadget/usbd-vol/UDC")); /* the live one is left alone */

    /* A thread of this very process (the device we attached ourselves) is
     * not another owner: replaced. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, park_thread, NULL) == 0);
    while (!atomic_load(&parked_tid))
        usleep(1000);
    snprintf(pid, sizeof pid, "%ld\n", (long)atomic_load(&parked_tid));
    put(p, pid);
    CHECK(usbd_gadget_create(&c, &g) == 0);
    atomic_store(&park_release, 1);
    pthread_join(th, NULL);
    CHECK(usbd_gadget_remove(g) == 0);
    ntrace = 0;
    c.backing = "/dev/nbd7"; /* the stale one again, its owner gone */
    CHECK(usbd_gadget_create(&c, &g) == 0);
    free(g);
    c.backing = "/dev/nbd0";
    ntrace = 0;

    /* The process is gone (the kernel drops the pid file): replaced. */
    CHECK(unlink(p) == 0);
    CHECK(usbd_gadget_create(&c, &g) == 0);
    /* First the old one goes, exactly as a removal, then creation. */
    CHECK(ntrace == N(expect_remove) + N(expect_create));
    for (size_t i = 0; i < N(expect_remove); i++)
        CHECK(!strcmp(trace[i], expect_remove[i]));
    CHECK(!strcmp(trace[ntrace - 1], "write usb_gadget/usbd-vol/UDC a_udc.0"));
    ntrace = 0;
    CHECK(!strcmp(get("functions/mass_storage.usb0/lun.0/file"), "/dev/nbd0\n"));
    CHECK(usbd_gadget_remove(g) == 0);
    ntrace = 0;

    /* usbd_gadget_remove_stale alone: nothing there is fine. */
    CHECK(usbd_gadget_remove_stale(&c) == 0);
    CHECK(ntrace == 0);
}

static void test_udc_taken(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/usb_gadget/other", cfs);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/usb_gadget/other/UDC", cfs);
    put(p, "a_udc.0\n");
    struct usbd_gadget_config c = base();
    struct usbd_gadget *g = NULL;
    CHECK(usbd_gadget_create(&c, &g) == EBUSY);
    CHECK(ntrace == 0);
    CHECK(!exists("usb_gadget/usbd-vol"));
    /* Another UDC is free. */
    c.udc = "b_udc.0";
    CHECK(usbd_gadget_create(&c, &g) == 0);
    CHECK(usbd_gadget_remove(g) == 0);
    ntrace = 0;
    snprintf(p, sizeof p, "rm -r '%s/usb_gadget/other'", cfs);
    CHECK(system(p) == 0);
}

/* Whatever step fails, the steps before it are undone. */
static void test_fail_halfway(void)
{
    static const char *const at[] = {
        "mkdir usb_gadget/usbd-vol/strings",
        "write usb_gadget/usbd-vol/functions/mass_storage.usb0/lun.0/file",
        "link usb_gadget/usbd-vol/configs",
        "write usb_gadget/usbd-vol/UDC",
    };
    for (size_t i = 0; i < N(at); i++) {
        struct usbd_gadget_config c = base();
        struct usbd_gadget *g = NULL;
        CHECK(gadget_create_failing(&c, at[i], EIO, &g) == EIO);
        CHECK(!exists("usb_gadget/usbd-vol"));
        CHECK(!strncmp(trace[ntrace - 1], "rmdir usb_gadget/usbd-vol", 30));
        ntrace = 0;
    }
}

/* No configfs at all: ENODEV with a reason, nothing created. */
static void test_no_support(void)
{
    struct usbd_gadget_config c = base();
    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty", root);
    mkdirs(empty);
    c.configfs_root = empty;
    struct usbd_gadget *g = NULL;
    CHECK(usbd_gadget_create(&c, &g) == ENODEV);
    /* No UDC: ENODEV. */
    c = base();
    c.sysfs_root = empty;
    CHECK(usbd_gadget_create(&c, &g) == ENODEV);
    CHECK(ntrace == 0);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_gadget.XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    snprintf(cfs, sizeof cfs, "%s/config", root);
    snprintf(sys, sizeof sys, "%s/sys", root);
    char p[1024];
    snprintf(p, sizeof p, "%s/usb_gadget", cfs);
    mkdirs(p);
    /* Two UDCs, made in reverse order: the default is the first by name. */
    const char *udcs[] = {"b_udc.0", "a_udc.0"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/class/udc/%s", sys, udcs[i]);
        mkdirs(p);
        snprintf(p, sizeof p, "%s/class/udc/%s/state", sys, udcs[i]);
        put(p, "not attached\n");
    }
    test_create_remove();
    test_options();
    test_bad_input();
    test_stale();
    test_udc_taken();
    test_fail_halfway();
    test_no_support();
    snprintf(p, sizeof p, "rm -rf '%s'", root);
    CHECK(system(p) == 0);
    return CHECK_DONE();
}
