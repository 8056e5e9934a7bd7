/* request.c - every request is validated here, and only here, before it
 * reaches a device (the nbdkit way: one place, every failure mapped to an
 * NBD error). */
#include <errno.h>

#include "internal.h"

static const char *const cmd_names[NBD_CMD_COUNT] = {
    "READ", "WRITE", "DISC", "FLUSH", "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS",
};

const char *nbd_cmd_name(uint16_t type)
{
    return type < NBD_CMD_COUNT ? cmd_names[type] : "UNKNOWN";
}

/* Which flags each command accepts, given what was negotiated. */
static uint16_t allowed_flags(uint16_t type, const struct nbd_limits *lim)
{
    uint16_t fua = (lim->tflags & NBD_FLAG_SEND_FUA) ? NBD_CMD_FLAG_FUA : 0;
    switch (type) {
    case NBD_CMD_READ:
        return lim->structured ? NBD_CMD_FLAG_DF : 0;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
        return fua;
    case NBD_CMD_WRITE_ZEROES:
        return fua | NBD_CMD_FLAG_NO_HOLE |
               ((lim->tflags & NBD_FLAG_SEND_FAST_ZERO) ? NBD_CMD_FLAG_FAST_ZERO : 0);
    case NBD_CMD_BLOCK_STATUS:
        return NBD_CMD_FLAG_REQ_ONE;
    default:
        return 0;
    }
}

/* The transmission flag that must have been advertised for each command. */
static uint16_t required_tflag(uint16_t type)
{
    switch (type) {
    case NBD_CMD_FLUSH:
        return NBD_FLAG_SEND_FLUSH;
    case NBD_CMD_TRIM:
        return NBD_FLAG_SEND_TRIM;
    case NBD_CMD_WRITE_ZEROES:
        return NBD_FLAG_SEND_WRITE_ZEROES;
    case NBD_CMD_CACHE:
        return NBD_FLAG_SEND_CACHE;
    default:
        return 0;
    }
}

uint32_t nbd_validate_request(const struct nbd_request *req, const struct nbd_limits *lim,
                              const char **why)
{
    const uint16_t t = req->type;
    const bool writes = t == NBD_CMD_WRITE || t == NBD_CMD_TRIM || t == NBD_CMD_WRITE_ZEROES;

    if (t >= NBD_CMD_COUNT || t == NBD_CMD_DISC) {
        *why = t == NBD_CMD_DISC ? "DISC is handled before validation" : "unknown command";
        return NBD_EINVAL;
    }
    uint16_t req_tflag = required_tflag(t);
    if (req_tflag && !(lim->tflags & req_tflag)) {
        *why = "command not advertised";
        return NBD_EINVAL;
    }
    if (req->flags & ~allowed_flags(t, lim)) {
        *why = "flag not valid for this command";
        return NBD_EINVAL;
    }
    if (t == NBD_CMD_BLOCK_STATUS && !lim->base_allocation) {
        *why = "BLOCK_STATUS without a negotiated meta context";
        return NBD_EINVAL;
    }
    if (t == NBD_CMD_FLUSH) {
        if (req->offset != 0 || req->length != 0) {
            *why = "FLUSH with an offset or length";
            return NBD_EINVAL;
        }
        return 0;
    }
    if (req->length == 0) {
        *why = "length 0";
        return NBD_EINVAL;
    }
    if ((t == NBD_CMD_READ || t == NBD_CMD_WRITE) && req->length > lim->max_block) {
        *why = "length over the advertised maximum block size";
        return t == NBD_CMD_READ && (req->flags & NBD_CMD_FLAG_DF) ? NBD_EOVERFLOW : NBD_EINVAL;
    }
    uint32_t mask = lim->min_block - 1;
    if ((req->offset & mask) || (req->length & mask)) {
        *why = "not aligned to the minimum block size";
        return NBD_EINVAL;
    }
    if (req->offset > lim->size || req->length > lim->size - req->offset) {
        *why = "beyond the end of the device";
        /* The spec asks for ENOSPC on writes past the end, EINVAL otherwise. */
        return writes ? NBD_ENOSPC : NBD_EINVAL;
    }
    if (writes && (lim->tflags & NBD_FLAG_READ_ONLY)) {
        *why = "the export is read-only";
        return NBD_EPERM;
    }
    return 0;
}

uint32_t nbd_errno_to_wire(int err)
{
    switch (err) {
    case 0:
        return 0;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}
