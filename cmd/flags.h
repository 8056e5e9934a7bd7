/* flags.h - the daemon's flags, config file and units (private to cmd/). */
#ifndef USBD_CMD_FLAGS_H
#define USBD_CMD_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_LISTEN 8
/* Where NAME.conf is looked for when no -config is given. */
#define CONFIG_DIR "/etc/usbd-objstore"

/* Everything the daemon is told, from flags and the config file. */
struct config {
    const char *kind;
    uint64_t size;
    const char *file;
    const char *listen[CONFIG_MAX_LISTEN];
    size_t nlisten;
    const char *name;
    const char *description;
    bool readonly;
    const char *nbd_device;
    uint64_t nbd_connections;
    uint64_t threads;
    uint64_t max_clients;
    uint64_t inflight;
    uint64_t handshake_timeout_ms;
    uint64_t send_timeout_ms;
    bool listen_insecure;
    const char *log_level;
    const char *config_file;
    /* -kind=local */
    const char *store;
    const char *store_dir;
    uint64_t objsize;
    const char *key;
    uint64_t flush_every_ms;
    uint64_t flush_workers;
    uint64_t cache_size;
    uint64_t dirty_max;
    const char *compress;
    uint64_t zstd_level;
    const char *cipher;
    const char *sync;
    const char *store_faults;
    uint64_t lease_ms;
    bool takeover;
    bool accept_rollback;
    /* -kind=s3 */
    const char *s3_endpoint;
    const char *s3_region;
    const char *s3_bucket;
    const char *s3_prefix;
    bool s3_path_style;
    bool s3_create_bucket;
    const char *s3_ca_file;
    bool s3_insecure;
    const char *s3_credentials;
    const char *s3_profile;
    uint64_t s3_connections;
    /* -gadget */
    bool gadget;
    const char *gadget_udc;
    const char *gadget_vendor;
    const char *gadget_product;
    const char *gadget_serial;
    const char *gadget_vendor_id;
    const char *gadget_product_id;
    bool gadget_removable;
    bool gadget_readonly;
    bool gadget_cdrom;
    bool gadget_nofua;
    const char *gadget_configfs;
    const char *gadget_sysfs;
    bool help;
    bool version;
    struct config_str *owned; /* strings read from a config file */
    /* Set by config_parse_file: a one-line warning for the log when the file
     * holds the master key itself and group or others may read it. */
    const char *config_warning;
};

/* Parse "20GiB", "512MiB", "4096", "1G" (binary), "1GB" (decimal) into bytes.
 * 0 or EINVAL/ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* Parse "10s", "500ms", "2m", "1h", "1.5s", "30" (seconds) into milliseconds. */
int parse_duration(const char *s, uint64_t *out_ms);
/* "1073741824" -> "1 GiB", "1536" -> "1.5 KiB" (for logs). */
void format_size(uint64_t bytes, char *buf, size_t len);

struct config_str;

/* Fill cfg with defaults. */
void config_defaults(struct config *cfg);
/* Apply command-line arguments (argv[0] skipped). A -config=FILE among them
 * is read first, so the command line overrides the file. 0, or EINVAL with
 * the reason written to err (one line, ready for the user). Strings in cfg
 * point into argv or into memory owned until exit. */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);
/* Apply a config file: "key = value" lines with the flag names as keys,
 * '#' comments. 0, errno of open, or EINVAL with the reason in err. Sets
 * cfg->config_warning if the file is readable by group or others (mode &
 * 044) and has a "key =" line that is not file:PATH or env:VAR: the key
 * itself (no other key of the file can hold a secret: credentials come from
 * the environment or from -s3-credentials, a path). */
int config_parse_file(struct config *cfg, const char *path, char *err, size_t errlen);
/* Free what config_parse_file allocated. */
void config_free(struct config *cfg);
/* The --help text, generated from the same table as the parser. */
void config_print_help(FILE *out);

#endif
