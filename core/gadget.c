/* gadget.c - a USB mass-storage gadget through configfs (libcomposite).
 *
 * Life of a gadget (G = CONFIGFS/usb_gadget/NAME):
 *   create:  modules -> stale G removed -> UDC chosen and free -> mkdir G,
 *            ids, strings, config c.1, function mass_storage.usb0 with its
 *            LUN attributes and lun.0/file last (ro and cdrom cannot change
 *            once a file is open) -> link into c.1 -> write G/UDC (the host
 *            sees the drive from here on)
 *   remove:  G/UDC = "" (the host sees an unplug) -> wait for the UDC to
 *            report "not attached" -> unlink, rmdir in the reverse order of
 *            creation; removing the function closes the backing device.
 * Any failure during create runs the same teardown, so nothing is left.
 *
 * The configfs and sysfs roots can be any directory. A plain directory (not
 * configfs) stands in for configfs in tests: there the directories configfs
 * would create by itself (strings/, configs/, functions/, lun.0/) are made
 * when first needed, attributes are ordinary files, and rmdir removes what a
 * directory holds. Every step is logged at debug level as one line
 * ("configfs: write usb_gadget/NAME/idVendor 0x1d6b"), which is also what
 * tests compare.
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "modprobe.h"
#include "usbd.h"

#define CONFIGFS_MAGIC 0x62656570
#define DEFAULT_CONFIGFS "/sys/kernel/config"
#define DEFAULT_SYSFS "/sys"
#define FUNC "mass_storage.usb0"
#define CONFIG "c.1"
#define LANG "0x409" /* US English, the language hosts ask for */

struct usbd_gadget {
    struct usbd_gadget_config cfg; /* strings below are owned copies */
    char configfs[PATH_MAX];
    char sysfs[PATH_MAX];
    char rel[PATH_MAX]; /* "usb_gadget/NAME", relative to configfs */
    char udc[NAME_MAX + 1];
    char name[65];
    bool plain;          /* configfs stand-in: a plain directory */
    const char *fail_step; /* tests: the step whose trace starts so fails */
    int fail_err;
};

/* snprintf for paths and lines. Inputs are bounded (roots up to 1024
 * bytes, names up to 64, entries up to NAME_MAX), so everything fits in
 * PATH_MAX; a wrapper, not snprintf, because GCC cannot see those bounds. */
static void fmt(char *out, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *out, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(out, n, f, ap);
    va_end(ap);
}

static void glog(const struct usbd_gadget *g, enum usbd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void glog(const struct usbd_gadget *g, enum usbd_log_level level, const char *fmt, ...)
{
    if (level > g->cfg.log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g->cfg.log)
        g->cfg.log(g->cfg.log_opaque, level, line);
    else
        usbd_log_stderr(NULL, level, line);
}

/* ------------------------------------------------------------ configfs steps */

/* Log the step; in tests, fail the chosen one. */
static int step(const struct usbd_gadget *g, const char *what, const char *rel, const char *arg)
{
    char line[PATH_MAX + 300];
    fmt(line, sizeof line, "%s %s%s%s", what, rel, arg ? " " : "", arg ? arg : "");
    glog(g, USBD_LOG_DEBUG, "configfs: %s", line);
    if (g->fail_step && strncmp(line, g->fail_step, strlen(g->fail_step)) == 0)
        return g->fail_err;
    return 0;
}

static void abs_path(const struct usbd_gadget *g, const char *rel, char *out, size_t n)
{
    fmt(out, n, "%s/%s", g->configfs, rel);
}

/* The stand-in makes the directories configfs makes by itself. */
static int plain_parents(const struct usbd_gadget *g, const char *path)
{
    if (!g->plain)
        return 0;
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s", path);
    for (char *s = strchr(p + strlen(g->configfs) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return errno;
        *s = '/';
    }
    return 0;
}

static int cfs_mkdir(const struct usbd_gadget *g, const char *rel)
{
    char p[PATH_MAX];
    abs_path(g, rel, p, sizeof p);
    int err = step(g, "mkdir", rel, NULL);
    if (!err)
        err = plain_parents(g, p);
    if (!err && mkdir(p, 0755) != 0)
        err = errno;
    return err;
}

static int write_file(const char *path, const char *value, bool create)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
    if (fd < 0)
        return errno;
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%s\n", value);
    int err = 0;
    if (len < 0 || (size_t)len >= sizeof buf)
        err = EINVAL;
    else if (write(fd, buf, (size_t)len) != len)
        err = errno ? errno : EIO;
    if (close(fd) != 0 && !err)
        err = errno;
    return err;
}

static int cfs_write(const struct usbd_gadget *g, const char *rel, const char *value)
{
    char p[PATH_MAX];
    abs_path(g, rel, p, sizeof p);
    int err = step(g, "write", rel, value);
    if (!err)
        err = plain_parents(g, p);
    return err ? err : write_file(p, value, g->plain);
}

static int cfs_writef(const struct usbd_gadget *g, const char *rel, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static int cfs_writef(const struct usbd_gadget *g, const char *rel, const char *f, ...)
{
    char v[256];
    va_list ap;
    va_start(ap, f);
    vsnprintf(v, sizeof v, f, ap);
    va_end(ap);
    return cfs_write(g, rel, v);
}

static int cfs_symlink(const struct usbd_gadget *g, const char *target_rel, const char *rel)
{
    char t[PATH_MAX], p[PATH_MAX];
    abs_path(g, target_rel, t, sizeof t);
    abs_path(g, rel, p, sizeof p);
    int err = step(g, "link", rel, target_rel);
    return err ? err : symlink(t, p) == 0 ? 0 : errno;
}

static int cfs_unlink(const struct usbd_gadget *g, const char *rel)
{
    char p[PATH_MAX];
    abs_path(g, rel, p, sizeof p);
    int err = step(g, "unlink", rel, NULL);
    return err ? err : unlink(p) == 0 || errno == ENOENT ? 0 : errno;
}

/* rm -r for the stand-in: what configfs drops with its directory. */
static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno;
    int err = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        fmt(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        int r = S_ISDIR(st.st_mode) ? remove_tree(p) : unlink(p) == 0 ? 0 : errno;
        if (r && !err)
            err = r;
    }
    closedir(d);
    if (rmdir(path) != 0 && !err)
        err = errno;
    return err;
}

static int cfs_rmdir(const struct usbd_gadget *g, const char *rel)
{
    char p[PATH_MAX];
    abs_path(g, rel, p, sizeof p);
    int err = step(g, "rmdir", rel, NULL);
    if (err)
        return err;
    if (g->plain)
        return remove_tree(p);
    return rmdir(p) == 0 || errno == ENOENT ? 0 : errno;
}

/* Read a small attribute, trailing newline dropped; "" if unreadable. */
static void read_attr(const char *path, char *out, size_t n)
{
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = read(fd, out, n - 1);
    close(fd);
    out[r > 0 ? r : 0] = 0;
    out[strcspn(out, "\n")] = 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ------------------------------------------------------------ teardown */

/* Entries of a directory of G (relative), or none. Calls fn for each. */
static int each_entry(const struct usbd_gadget *g, const char *rel,
                      int (*fn)(const struct usbd_gadget *, const char *rel, unsigned char type))
{
    char p[PATH_MAX];
    abs_path(g, rel, p, sizeof p);
    DIR *d = opendir(p);
    if (!d)
        return errno == ENOENT ? 0 : errno;
    /* Collect first: removing entries while reading the directory would
     * skip some on configfs. */
    char names[64][NAME_MAX + 1];
    unsigned char types[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (e->d_name[0] == '.')
            continue;
        fmt(names[n], sizeof names[n], "%s", e->d_name);
        types[n++] = e->d_type;
    }
    closedir(d);
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        char r[PATH_MAX];
        fmt(r, sizeof r, "%s/%s", rel, names[i]);
        int e2 = fn(g, r, types[i]);
        if (e2 && !err)
            err = e2;
    }
    return err;
}

static int drop_link(const struct usbd_gadget *g, const char *rel, unsigned char type)
{
    return type == DT_LNK ? cfs_unlink(g, rel) : 0;
}

static int drop_dir(const struct usbd_gadget *g, const char *rel, unsigned char type)
{
    return type == DT_DIR ? cfs_rmdir(g, rel) : 0;
}

static int drop_config(const struct usbd_gadget *g, const char *rel, unsigned char type)
{
    if (type != DT_DIR)
        return 0;
    char s[PATH_MAX];
    int err = each_entry(g, rel, drop_link);
    fmt(s, sizeof s, "%s/strings", rel);
    int e2 = each_entry(g, s, drop_dir);
    int e3 = cfs_rmdir(g, rel);
    return err ? err : e2 ? e2 : e3;
}

/* After the unbind: until the UDC reports "not attached", at most ms.
 * Returns the milliseconds waited, and the last state read in state. The
 * unbind itself is synchronous (the function has left its configuration and
 * the pull-up is off when the write returns); the state is what a real UDC
 * such as dwc2 reports once the host has seen the disconnect. dummy_udc
 * never updates it. */
static unsigned wait_released(const struct usbd_gadget *g, const char *udc, unsigned ms,
                              char *state, size_t n)
{
    char p[PATH_MAX];
    fmt(p, sizeof p, "%s/class/udc/%s/state", g->sysfs, udc);
    for (unsigned waited = 0;; waited += 20) {
        read_attr(p, state, n);
        if (!state[0] || !strcmp(state, "not attached") || waited >= ms)
            return waited;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
    }
}

/* Unbind (if bound) and remove everything of G, whatever made it: the
 * reverse of creation, per the kernel's gadget_configfs documentation. */
static int teardown(const struct usbd_gadget *g)
{
    char p[PATH_MAX], r[PATH_MAX], udc[NAME_MAX + 1];
    abs_path(g, g->rel, p, sizeof p);
    if (!is_dir(p))
        return 0;
    fmt(r, sizeof r, "%s/UDC", g->rel);
    abs_path(g, r, p, sizeof p);
    read_attr(p, udc, sizeof udc);
    int err = 0;
    if (udc[0]) {
        err = cfs_write(g, r, "");
        unsigned ms = g->cfg.release_timeout_ms ? g->cfg.release_timeout_ms : 2000;
        char state[64];
        unsigned waited = err ? 0 : wait_released(g, udc, ms, state, sizeof state);
        if (!err)
            glog(g, USBD_LOG_INFO, "gadget %s: unbound from %s (UDC state '%s' after %u ms)",
                 g->cfg.name, udc, state[0] ? state : "unknown", waited);
    }
    int e;
    fmt(r, sizeof r, "%s/configs", g->rel);
    if ((e = each_entry(g, r, drop_config)) && !err)
        err = e;
    fmt(r, sizeof r, "%s/os_desc", g->rel);
    if ((e = each_entry(g, r, drop_link)) && !err)
        err = e;
    fmt(r, sizeof r, "%s/functions", g->rel);
    if ((e = each_entry(g, r, drop_dir)) && !err)
        err = e;
    fmt(r, sizeof r, "%s/strings", g->rel);
    if ((e = each_entry(g, r, drop_dir)) && !err)
        err = e;
    if ((e = cfs_rmdir(g, g->rel)) && !err)
        err = e;
    return err;
}

/* ------------------------------------------------------------ set-up */

static int init_gadget(struct usbd_gadget *g, const struct usbd_gadget_config *cfg)
{
    memset(g, 0, sizeof *g);
    g->cfg = *cfg;
    const char *cfs = cfg->configfs_root ? cfg->configfs_root : DEFAULT_CONFIGFS;
    const char *sfs = cfg->sysfs_root ? cfg->sysfs_root : DEFAULT_SYSFS;
    if (strlen(cfs) > 1024 || strlen(sfs) > 1024) {
        glog(g, USBD_LOG_ERROR, "gadget: configfs and sysfs roots: at most 1024 characters");
        return EINVAL;
    }
    fmt(g->configfs, sizeof g->configfs, "%s", cfs);
    fmt(g->sysfs, sizeof g->sysfs, "%s", sfs);
    if (!cfg->name || !cfg->name[0] || strchr(cfg->name, '/') || strlen(cfg->name) > 64) {
        glog(g, USBD_LOG_ERROR, "gadget: the name must be 1 to 64 characters without '/'");
        return EINVAL;
    }
    fmt(g->name, sizeof g->name, "%s", cfg->name);
    g->cfg.name = g->name;
    fmt(g->rel, sizeof g->rel, "usb_gadget/%s", cfg->name);
    struct statfs sf;
    g->plain = !(statfs(g->configfs, &sf) == 0 && sf.f_type == CONFIGFS_MAGIC);
    return 0;
}

/* Is the gadget's backing /dev/nbdN attached by a live process other than
 * us? Then G belongs to a running daemon, not to a crashed one. */
static pid_t backing_owner(const struct usbd_gadget *g)
{
    char p[PATH_MAX], file[PATH_MAX], pidbuf[32];
    fmt(p, sizeof p, "%s/%s/functions/" FUNC "/lun.0/file", g->configfs, g->rel);
    read_attr(p, file, sizeof file);
    if (strncmp(file, "/dev/nbd", 8) != 0)
        return 0;
    fmt(p, sizeof p, "%s/block/%s/pid", g->sysfs, file + 5);
    read_attr(p, pidbuf, sizeof pidbuf);
    long pid = strtol(pidbuf, NULL, 10);
    if (pid <= 0 || pid == getpid())
        return 0;
    /* The pid file names a thread: one of ours (the device we just
     * attached) is not another owner. */
    char status[64], line[128];
    fmt(status, sizeof status, "/proc/%ld/status", pid);
    FILE *st = fopen(status, "re");
    long tgid = 0;
    while (st && fgets(line, sizeof line, st))
        if (sscanf(line, "Tgid: %ld", &tgid) == 1)
            break;
    if (st)
        fclose(st);
    if (tgid == getpid())
        return 0;
    /* The pid file names the thread that runs the device: kill() accepts a
     * thread id and answers for its process. */
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return (pid_t)pid;
    return 0;
}

static int remove_stale(struct usbd_gadget *g)
{
    char p[PATH_MAX];
    abs_path(g, g->rel, p, sizeof p);
    if (!is_dir(p))
        return 0;
    pid_t owner = backing_owner(g);
    if (owner) {
        glog(g, USBD_LOG_ERROR, "gadget %s already exists and its device is attached by "
             "process %ld: is another usbd-objstore serving this volume? (stop it first)",
             g->cfg.name, (long)owner);
        return EBUSY;
    }
    glog(g, USBD_LOG_WARN, "gadget %s was left behind by a run that did not stop cleanly: "
         "removing it", g->cfg.name);
    int err = teardown(g);
    if (err)
        glog(g, USBD_LOG_ERROR, "cannot remove the stale gadget %s: %s (remove it by hand: "
             "echo '' > %s/UDC, then rmdir its directories)", p, strerror(err), p);
    return err;
}

int usbd_gadget_remove_stale(const struct usbd_gadget_config *cfg)
{
    struct usbd_gadget g;
    int err = init_gadget(&g, cfg);
    return err ? err : remove_stale(&g);
}

/* configfs mounted with usb_gadget in it, loading modules if allowed. */
static int ensure_support(struct usbd_gadget *g)
{
    char p[PATH_MAX];
    abs_path(g, "usb_gadget", p, sizeof p);
    int status = -1;
    if (!is_dir(p) && !g->cfg.no_modprobe) {
        usbd_modprobe("libcomposite", &status); /* pulls in configfs */
        struct statfs sf;
        /* systemd mounts configfs at boot; a minimal init may not. */
        if (!is_dir(p) && !strcmp(g->configfs, DEFAULT_CONFIGFS) &&
            statfs(g->configfs, &sf) == 0 && sf.f_type != CONFIGFS_MAGIC &&
            mount("configfs", g->configfs, "configfs", 0, NULL) == 0) {
            g->plain = false;
            glog(g, USBD_LOG_INFO, "gadget: mounted configfs on %s", g->configfs);
        }
    }
    if (!is_dir(p)) {
        char tried[64] = "not tried";
        if (status != -1 || !g->cfg.no_modprobe)
            fmt(tried, sizeof tried, "exit status %d", status);
        glog(g, USBD_LOG_ERROR, "no USB gadget support: %s is missing (modprobe libcomposite: "
             "%s; the kernel needs CONFIG_USB_CONFIGFS and configfs mounted on %s)", p, tried,
             g->configfs);
        return ENODEV;
    }
    if (!g->cfg.no_modprobe) /* else the kernel asks for it itself at mkdir */
        usbd_modprobe("usb_f_mass_storage", &status);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The UDC to bind: the one asked for, or the first (sorted) there is. */
static int choose_udc(struct usbd_gadget *g)
{
    char dir[PATH_MAX], list[512] = "";
    fmt(dir, sizeof dir, "%s/class/udc", g->sysfs);
    char *names[32];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 32)
        if (e->d_name[0] != '.' && (names[n] = strdup(e->d_name)) != NULL)
            n++;
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    int err = 0;
    if (g->cfg.udc) {
        size_t i = 0;
        while (i < n && strcmp(names[i], g->cfg.udc))
            i++;
        if (i == n) {
            for (size_t j = 0; j < n; j++)
                fmt(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", names[j]);
            glog(g, USBD_LOG_ERROR, "UDC %s not found in %s (there: %s)", g->cfg.udc, dir,
                 n ? list : "none");
            err = ENODEV;
        }
        fmt(g->udc, sizeof g->udc, "%s", g->cfg.udc);
    } else if (n == 0) {
        glog(g, USBD_LOG_ERROR, "no USB device controller in %s: the board's USB port must be "
             "in device (peripheral/OTG) mode with its driver loaded (e.g. dwc2: dtoverlay=dwc2 "
             "on a Raspberry Pi); in a VM, modprobe dummy_hcd", dir);
        err = ENODEV;
    } else {
        fmt(g->udc, sizeof g->udc, "%s", names[0]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return err;
}

/* Another gadget bound to our UDC makes the bind fail with a bare EBUSY:
 * find it first, to say which. */
static int udc_taken_by(const struct usbd_gadget *g, char *who, size_t n)
{
    char dir[PATH_MAX];
    abs_path(g, "usb_gadget", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, g->cfg.name))
            continue;
        char p[PATH_MAX], udc[NAME_MAX + 1];
        fmt(p, sizeof p, "%s/%s/UDC", dir, e->d_name);
        read_attr(p, udc, sizeof udc);
        if (!strcmp(udc, g->udc)) {
            fmt(who, n, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/* USB string descriptors hold at most 126 UTF-16 units; keep to printable
 * ASCII so every host shows them as given. */
static bool good_string(const char *s, size_t min)
{
    size_t n = strlen(s);
    if (n < min || n > 126)
        return false;
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

static bool good_serial(const char *s)
{
    /* The Bulk-Only Transport spec asks for at least 12 hex digits; hosts
     * accept letters and digits. */
    if (!good_string(s, 12))
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
            return false;
    return true;
}

static int check_strings(const struct usbd_gadget *g, const char *manufacturer, const char *product)
{
    const struct usbd_gadget_config *c = &g->cfg;
    if (!c->backing || c->backing[0] != '/') {
        glog(g, USBD_LOG_ERROR, "gadget: the backing device must be an absolute path");
        return EINVAL;
    }
    if (!c->serial || !good_serial(c->serial)) {
        glog(g, USBD_LOG_ERROR, "gadget serial '%s': 12 to 126 letters and digits",
             c->serial ? c->serial : "");
        return EINVAL;
    }
    if (!good_string(manufacturer, 1) || !good_string(product, 1)) {
        glog(g, USBD_LOG_ERROR, "gadget vendor/product strings: 1 to 126 printable ASCII characters");
        return EINVAL;
    }
    if (c->udc && (!c->udc[0] || strchr(c->udc, '/'))) {
        glog(g, USBD_LOG_ERROR, "gadget UDC '%s': a name from /sys/class/udc", c->udc);
        return EINVAL;
    }
    return 0;
}

/* Every configfs step of creation, in order. */
static int build(struct usbd_gadget *g, const char *manufacturer, const char *product)
{
    const struct usbd_gadget_config *c = &g->cfg;
    char r[PATH_MAX], t[PATH_MAX];
    const char *G = g->rel;
    int err = cfs_mkdir(g, G);
#define W(attr, ...)                                                                               \
    do {                                                                                           \
        if (!err) {                                                                                \
            fmt(r, sizeof r, "%s/%s", G, attr);                                               \
            err = cfs_writef(g, r, __VA_ARGS__);                                                   \
        }                                                                                          \
    } while (0)
#define MKDIR(sub)                                                                                 \
    do {                                                                                           \
        if (!err) {                                                                                \
            fmt(r, sizeof r, "%s/%s", G, sub);                                                \
            err = cfs_mkdir(g, r);                                                                 \
        }                                                                                          \
    } while (0)
    W("idVendor", "0x%04x", c->vendor_id ? c->vendor_id : 0x1d6b);
    W("idProduct", "0x%04x", c->product_id ? c->product_id : 0x0104);
    W("bcdDevice", "0x0100");
    W("bcdUSB", "0x0200");
    MKDIR("strings/" LANG);
    W("strings/" LANG "/serialnumber", "%s", c->serial);
    W("strings/" LANG "/manufacturer", "%s", manufacturer);
    W("strings/" LANG "/product", "%s", product);
    MKDIR("configs/" CONFIG);
    MKDIR("configs/" CONFIG "/strings/" LANG);
    W("configs/" CONFIG "/strings/" LANG "/configuration", "Mass Storage");
    W("configs/" CONFIG "/MaxPower", "250");
    MKDIR("functions/" FUNC);
    W("functions/" FUNC "/stall", "1");
    W("functions/" FUNC "/lun.0/removable", "%d", c->removable);
    W("functions/" FUNC "/lun.0/cdrom", "%d", c->cdrom);
    W("functions/" FUNC "/lun.0/ro", "%d", c->read_only || c->cdrom);
    W("functions/" FUNC "/lun.0/nofua", "%d", c->nofua);
    /* SCSI INQUIRY: vendor (8), product (16), revision (4); what hosts show
     * as the drive's vendor and model. */
    W("functions/" FUNC "/lun.0/inquiry_string", "%-8.8s%-16.16s%-4.4s", manufacturer, product, "0100");
    W("functions/" FUNC "/lun.0/file", "%s", c->backing);
    if (!err) {
        fmt(t, sizeof t, "%s/functions/" FUNC, G);
        fmt(r, sizeof r, "%s/configs/" CONFIG "/" FUNC, G);
        err = cfs_symlink(g, t, r);
    }
    W("UDC", "%s", g->udc);
#undef W
#undef MKDIR
    if (err)
        glog(g, USBD_LOG_ERROR, "gadget %s: %s/%s: %s", c->name, g->configfs, r, strerror(err));
    return err;
}

int gadget_create_failing(const struct usbd_gadget_config *cfg, const char *fail_step,
                          int fail_err, struct usbd_gadget **out)
{
    struct usbd_gadget *g = malloc(sizeof *g);
    if (!g)
        return ENOMEM;
    int err = init_gadget(g, cfg);
    g->fail_step = fail_step;
    g->fail_err = fail_err;
    const char *manufacturer = cfg->manufacturer ? cfg->manufacturer : "usbd";
    const char *product = cfg->product ? cfg->product : "usbd-objstore";
    if (!err)
        err = check_strings(g, manufacturer, product);
    if (!err)
        err = ensure_support(g);
    if (!err)
        err = remove_stale(g);
    if (!err)
        err = choose_udc(g);
    char who[PATH_MAX];
    if (!err && udc_taken_by(g, who, sizeof who)) {
        glog(g, USBD_LOG_ERROR, "UDC %s is used by the gadget %s: unbind it (echo '' > %s/UDC) "
             "or choose another UDC", g->udc, who, who);
        err = EBUSY;
    }
    if (!err) {
        err = build(g, manufacturer, product);
        if (err) {
            g->fail_step = NULL; /* the teardown must not fail where creation did */
            teardown(g);
            if (err == ENOENT && !g->plain)
                glog(g, USBD_LOG_ERROR, "gadget: is usb_f_mass_storage available? (the kernel "
                     "needs CONFIG_USB_CONFIGFS_MASS_STORAGE)");
        }
    }
    if (err) {
        free(g);
        return err;
    }
    g->cfg.manufacturer = g->cfg.product = g->cfg.serial = g->cfg.backing = NULL;
    g->cfg.udc = g->cfg.configfs_root = g->cfg.sysfs_root = NULL; /* not owned */
    glog(g, USBD_LOG_INFO, "gadget %s bound to %s: the host sees a USB drive \"%s %s\" "
         "(serial %s) backed by %s", cfg->name, g->udc, manufacturer, product, cfg->serial,
         cfg->backing);
    *out = g;
    return 0;
}

int usbd_gadget_create(const struct usbd_gadget_config *cfg, struct usbd_gadget **out)
{
    return gadget_create_failing(cfg, NULL, 0, out);
}

const char *usbd_gadget_udc(const struct usbd_gadget *g)
{
    return g->udc;
}

int usbd_gadget_remove(struct usbd_gadget *g)
{
    if (!g)
        return 0;
    int err = teardown(g);
    if (err)
        glog(g, USBD_LOG_ERROR, "gadget %s: removal incomplete: %s", g->cfg.name, strerror(err));
    else
        glog(g, USBD_LOG_INFO, "gadget %s removed", g->cfg.name);
    free(g);
    return err;
}
