/* handshake.c - fixed-newstyle option negotiation, up to the transmission phase.
 *
 * Every option is read whole (bounded by NBD_MAX_OPTION_LEN) and parsed from
 * memory, so a malformed option can only ever produce NBD_REP_ERR_INVALID or a
 * disconnect, never a read past what the client sent. Unknown options get
 * NBD_REP_ERR_UNSUP and negotiation goes on, as the spec requires. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

/* Returned (internally) when the client ended negotiation on purpose. */
#define HS_ABORTED ECANCELED

static int send_reply(struct conn *c, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
    uint8_t hdr[20];
    be64_store(hdr, NBD_REP_MAGIC);
    be32_store(hdr + 8, opt);
    be32_store(hdr + 12, type);
    be32_store(hdr + 16, len);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, len}};
    return wire_writev(c->fd, iov, len ? 2 : 1, &c->deadline);
}

/* An error reply carries a message for the client's user, and the same
 * message goes to our log. */
static int send_error(struct conn *c, uint32_t opt, uint32_t type, const char *msg)
{
    srv_log(c->srv, USBD_LOG_INFO, "%s: option %u refused: %s", c->label, opt, msg);
    return send_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static int send_info_export(struct conn *c, uint32_t opt)
{
    uint8_t b[12];
    be16_store(b, NBD_INFO_EXPORT);
    be64_store(b + 2, c->srv->dev->size);
    be16_store(b + 10, c->tflags);
    return send_reply(c, opt, NBD_REP_INFO, b, sizeof b);
}

static int send_info_string(struct conn *c, uint32_t opt, uint16_t type, const char *s)
{
    size_t n = strlen(s);
    if (n > NBD_MAX_STRING)
        n = NBD_MAX_STRING;
    uint8_t b[2 + NBD_MAX_STRING];
    be16_store(b, type);
    memcpy(b + 2, s, n);
    return send_reply(c, opt, NBD_REP_INFO, b, (uint32_t)(2 + n));
}

static int send_info_block_size(struct conn *c, uint32_t opt)
{
    const struct usbd_server *s = c->srv;
    uint8_t b[14];
    be16_store(b, NBD_INFO_BLOCK_SIZE);
    be32_store(b + 2, s->min_block);
    be32_store(b + 6, s->pref_block);
    be32_store(b + 10, s->max_block);
    return send_reply(c, opt, NBD_REP_INFO, b, sizeof b);
}

/* NBD_OPT_INFO and NBD_OPT_GO: name, list of info requests. */
static int opt_info_go(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len, bool *go)
{
    if (len < 6)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
    uint32_t namelen = be32_load(d);
    if (namelen > len - 6)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "export name length out of bounds");
    uint16_t nreq = be16_load(d + 4 + namelen);
    if ((uint64_t)4 + namelen + 2 + 2u * nreq != len)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "information request list malformed");
    const char *name = (const char *)d + 4;
    if (!server_export_matches(c->srv, name, namelen)) {
        char msg[128];
        snprintf(msg, sizeof msg, "no export named '%.*s' (this server has '%s')",
                 (int)(namelen > 64 ? 64 : namelen), name, c->srv->export_name);
        return send_error(c, opt, NBD_REP_ERR_UNKNOWN, msg);
    }
    bool want_name = false, want_desc = false;
    for (uint16_t i = 0; i < nreq; i++) {
        uint16_t t = be16_load(d + 4 + namelen + 2 + 2u * i);
        want_name |= t == NBD_INFO_NAME;
        want_desc |= t == NBD_INFO_DESCRIPTION;
    }
    c->tflags = server_tflags(c->srv, c->structured);
    int err = send_info_export(c, opt);
    if (!err && want_name)
        err = send_info_string(c, opt, NBD_INFO_NAME, c->srv->export_name);
    if (!err && want_desc && c->srv->description[0])
        err = send_info_string(c, opt, NBD_INFO_DESCRIPTION, c->srv->description);
    /* Always sent: the spec lets a server give block sizes unasked, and the
     * preferred size is how a client learns to write whole chunks. */
    if (!err)
        err = send_info_block_size(c, opt);
    if (!err)
        err = send_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (!err && opt == NBD_OPT_GO)
        *go = true;
    return err;
}

static int opt_list(struct conn *c, uint32_t opt, uint32_t len)
{
    if (len != 0)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
    const char *name = c->srv->export_name, *desc = c->srv->description;
    size_t nl = strlen(name), dl = strlen(desc);
    if (dl > NBD_MAX_STRING)
        dl = NBD_MAX_STRING;
    uint8_t b[4 + NBD_MAX_STRING * 2];
    be32_store(b, (uint32_t)nl);
    memcpy(b + 4, name, nl);
    memcpy(b + 4 + nl, desc, dl);
    int err = send_reply(c, opt, NBD_REP_SERVER, b, (uint32_t)(4 + nl + dl));
    return err ? err : send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* Does a LIST_META_CONTEXT query select base:allocation? */
static bool query_selects_base_allocation(const char *q, uint32_t n, bool listing)
{
    static const char full[] = NBD_META_BASE_ALLOCATION;
    if (n == sizeof full - 1 && memcmp(q, full, n) == 0)
        return true;
    /* "base:" lists every context of the namespace, for LIST only. */
    return listing && n == 5 && memcmp(q, "base:", 5) == 0;
}

static int send_meta_context(struct conn *c, uint32_t opt)
{
    static const char name[] = NBD_META_BASE_ALLOCATION;
    uint8_t b[4 + sizeof name];
    be32_store(b, NBD_META_ID_BASE_ALLOCATION);
    memcpy(b + 4, name, sizeof name - 1);
    return send_reply(c, opt, NBD_REP_META_CONTEXT, b, (uint32_t)(4 + sizeof name - 1));
}

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. */
static int opt_meta_context(struct conn *c, uint32_t opt, const uint8_t *d, uint32_t len)
{
    const bool listing = opt == NBD_OPT_LIST_META_CONTEXT;
    if (!listing && !c->structured)
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "negotiate structured replies before NBD_OPT_SET_META_CONTEXT");
    if (len < 8)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "option too short");
    uint32_t namelen = be32_load(d);
    if (namelen > len - 8)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "export name length out of bounds");
    uint32_t nq = be32_load(d + 4 + namelen);
    /* Walk the queries once to check the framing before acting on any. */
    uint32_t pos = 8 + namelen;
    for (uint32_t i = 0; i < nq; i++) {
        if (len - pos < 4 || be32_load(d + pos) > len - pos - 4)
            return send_error(c, opt, NBD_REP_ERR_INVALID, "meta context query malformed");
        pos += 4 + be32_load(d + pos);
    }
    if (pos != len)
        return send_error(c, opt, NBD_REP_ERR_INVALID, "trailing bytes after the queries");
    if (!server_export_matches(c->srv, (const char *)d + 4, namelen))
        return send_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export");

    bool selected = listing && nq == 0; /* an empty list query means "all" */
    pos = 8 + namelen;
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t ql = be32_load(d + pos);
        selected |= query_selects_base_allocation((const char *)d + pos + 4, ql, listing);
        pos += 4 + ql;
    }
    if (!listing)
        c->base_allocation = selected;
    int err = selected ? send_meta_context(c, opt) : 0;
    return err ? err : send_reply(c, opt, NBD_REP_ACK, NULL, 0);
}

/* NBD_OPT_EXPORT_NAME: no error reply exists, an unknown name closes. */
static int opt_export_name(struct conn *c, const uint8_t *d, uint32_t len)
{
    if (!server_export_matches(c->srv, (const char *)d, len)) {
        srv_log(c->srv, USBD_LOG_INFO, "%s: NBD_OPT_EXPORT_NAME '%.*s' unknown, disconnecting",
                c->label, (int)(len > 64 ? 64 : len), (const char *)d);
        return ENOENT;
    }
    c->tflags = server_tflags(c->srv, c->structured);
    uint8_t b[10 + 124] = {0};
    be64_store(b, c->srv->dev->size);
    be16_store(b + 8, c->tflags);
    return wire_write(c->fd, b, c->no_zeroes ? 10 : sizeof b, &c->deadline);
}

/* Why the handshake ended, for its one log line. A timeout is the client's
 * doing whichever way the bytes were going. */
static void log_end(struct conn *c, int err, const char *where)
{
    struct usbd_server *s = c->srv;
    if (err == ETIMEDOUT)
        srv_log(s, USBD_LOG_WARN, "%s: option negotiation not finished within %us%s, "
                "disconnecting (-handshake-timeout)", c->label, s->cfg.handshake_timeout_s, where);
    else
        srv_log(s, USBD_LOG_INFO, "%s: handshake ended%s: %s", c->label, where,
                err == ECONNRESET ? "client closed the connection" : strerror(err));
}

int nbd_handshake(struct conn *c)
{
    struct usbd_server *s = c->srv;
    /* One deadline for the whole negotiation, counted from now (the
     * connection's thread starts as it is accepted): every read and write
     * below is bounded by it, so a client cannot hold a slot longer by
     * sending slowly or by not reading the replies. */
    clock_gettime(CLOCK_MONOTONIC, &c->deadline);
    c->deadline.tv_sec += (time_t)s->cfg.handshake_timeout_s;

    uint8_t greet[18];
    be64_store(greet, NBD_MAGIC);
    be64_store(greet + 8, NBD_IHAVEOPT);
    be16_store(greet + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    int err = wire_write(c->fd, greet, sizeof greet, &c->deadline);
    if (err) {
        log_end(c, err, " sending the greeting");
        return err;
    }

    uint8_t cf[4];
    err = wire_read(c->fd, cf, sizeof cf, NULL, &c->deadline);
    if (err) {
        log_end(c, err, "");
        return err;
    }
    uint32_t cflags = be32_load(cf);
    if (!(cflags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
        (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))) {
        srv_log(s, USBD_LOG_WARN,
                "%s: client flags 0x%x: not fixed newstyle or unknown bits, disconnecting",
                c->label, cflags);
        return EPROTO;
    }
    c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;

    for (;;) {
        uint8_t oh[16];
        err = wire_read(c->fd, oh, sizeof oh, NULL, &c->deadline);
        if (err) {
            log_end(c, err, "");
            return err;
        }
        if (be64_load(oh) != NBD_IHAVEOPT) {
            srv_log(s, USBD_LOG_WARN, "%s: bad option magic 0x%016llx, disconnecting", c->label,
                    (unsigned long long)be64_load(oh));
            return EPROTO;
        }
        uint32_t opt = be32_load(oh + 8), len = be32_load(oh + 12);
        if (len > NBD_MAX_OPTION_LEN) {
            srv_log(s, USBD_LOG_WARN, "%s: option %u with %u bytes of data (limit %u), disconnecting",
                    c->label, opt, len, NBD_MAX_OPTION_LEN);
            return EPROTO;
        }
        uint8_t *d = malloc(len + 1u);
        if (!d)
            return ENOMEM;
        err = wire_read(c->fd, d, len, NULL, &c->deadline);
        if (err) {
            free(d);
            char where[48];
            snprintf(where, sizeof where, " inside option %u", opt);
            log_end(c, err, where);
            return err;
        }
        d[len] = 0;
        bool go = false;
        switch (opt) {
        case NBD_OPT_EXPORT_NAME:
            err = opt_export_name(c, d, len);
            go = err == 0;
            break;
        case NBD_OPT_ABORT:
            /* The client may already be gone; the ACK is a courtesy. */
            (void)send_reply(c, opt, NBD_REP_ACK, NULL, 0);
            err = HS_ABORTED;
            break;
        case NBD_OPT_LIST:
            err = opt_list(c, opt, len);
            break;
        case NBD_OPT_INFO:
        case NBD_OPT_GO:
            err = opt_info_go(c, opt, d, len, &go);
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len != 0) {
                err = send_error(c, opt, NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
            } else {
                c->structured = true;
                err = send_reply(c, opt, NBD_REP_ACK, NULL, 0);
            }
            break;
        case NBD_OPT_LIST_META_CONTEXT:
        case NBD_OPT_SET_META_CONTEXT:
            err = opt_meta_context(c, opt, d, len);
            break;
        case NBD_OPT_STARTTLS:
            err = send_error(c, opt, NBD_REP_ERR_UNSUP, "TLS is not supported by this server");
            break;
        default: {
            char msg[64];
            snprintf(msg, sizeof msg, "option %u is not supported", opt);
            err = send_error(c, opt, NBD_REP_ERR_UNSUP, msg);
        }
        }
        free(d);
        if (err == HS_ABORTED) {
            srv_log(s, USBD_LOG_DEBUG, "%s: client aborted negotiation", c->label);
            return err;
        }
        if (err) {
            if (err != ENOENT) /* unknown EXPORT_NAME: logged already */
                log_end(c, err, " sending a reply");
            return err;
        }
        if (go)
            return 0;
    }
}
