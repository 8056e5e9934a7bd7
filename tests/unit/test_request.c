/* test_request.c - nbd_validate_request, case by case. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"

static const struct nbd_limits base = {
    .size = 1 << 20,
    .min_block = 1,
    .max_block = 32 << 20,
    .tflags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
              NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_SEND_CACHE,
    .structured = true,
    .base_allocation = true,
};

static uint32_t v(uint16_t type, uint16_t flags, uint64_t off, uint32_t len, const struct nbd_limits *lim)
{
    struct nbd_request r = {.type = type, .flags = flags, .offset = off, .length = len};
    const char *why = NULL;
    uint32_t e = nbd_validate_request(&r, lim, &why);
    CHECK(e == 0 || (why && why[0]));
    return e;
}

int main(void)
{
    struct nbd_limits l = base;
    /* in range */
    CHECK(v(NBD_CMD_READ, 0, 0, 4096, &l) == 0);
    CHECK(v(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, (1 << 20) - 1, 1, &l) == 0);
    CHECK(v(NBD_CMD_TRIM, 0, 0, 1 << 20, &l) == 0);
    CHECK(v(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO | NBD_CMD_FLAG_FUA, 0, 512, &l) == 0);
    CHECK(v(NBD_CMD_CACHE, 0, 0, 512, &l) == 0);
    CHECK(v(NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 1 << 20, &l) == 0);
    CHECK(v(NBD_CMD_FLUSH, 0, 0, 0, &l) == 0);
    CHECK(v(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 1, &l) == 0);
    /* out of range: EINVAL for reads, ENOSPC for writes */
    CHECK(v(NBD_CMD_READ, 0, 1 << 20, 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_WRITE, 0, (1 << 20) - 1, 2, &l) == NBD_ENOSPC);
    CHECK(v(NBD_CMD_TRIM, 0, UINT64_MAX, 1, &l) == NBD_ENOSPC);
    CHECK(v(NBD_CMD_WRITE_ZEROES, 0, UINT64_MAX - 10, 4096, &l) == NBD_ENOSPC); /* no wrap-around */
    CHECK(v(NBD_CMD_BLOCK_STATUS, 0, 1 << 20, 1, &l) == NBD_EINVAL);
    /* length 0 */
    CHECK(v(NBD_CMD_READ, 0, 0, 0, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_WRITE, 0, 0, 0, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_TRIM, 0, 0, 0, &l) == NBD_EINVAL);
    /* FLUSH must be offset 0 length 0 */
    CHECK(v(NBD_CMD_FLUSH, 0, 0, 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_FLUSH, 0, 1, 0, &l) == NBD_EINVAL);
    /* over the maximum */
    CHECK(v(NBD_CMD_READ, 0, 0, (32 << 20) + 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, (32 << 20) + 1, &l) == NBD_EOVERFLOW);
    CHECK(v(NBD_CMD_WRITE, 0, 0, UINT32_MAX, &l) == NBD_EINVAL);
    /* flags that do not belong */
    CHECK(v(NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_FLUSH, NBD_CMD_FLAG_FUA, 0, 0, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_FUA, 0, 1, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_WRITE, 1u << 15, 0, 1, &l) == NBD_EINVAL);
    /* unknown commands */
    CHECK(v(NBD_CMD_COUNT, 0, 0, 1, &l) == NBD_EINVAL);
    CHECK(v(0xffff, 0, 0, 1, &l) == NBD_EINVAL);
    /* what was not negotiated */
    l.structured = false;
    CHECK(v(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 1, &l) == NBD_EINVAL);
    l = base;
    l.base_allocation = false;
    CHECK(v(NBD_CMD_BLOCK_STATUS, 0, 0, 1, &l) == NBD_EINVAL);
    l = base;
    l.tflags &= (uint16_t)~NBD_FLAG_SEND_TRIM;
    CHECK(v(NBD_CMD_TRIM, 0, 0, 1, &l) == NBD_EINVAL);
    l.tflags &= (uint16_t)~NBD_FLAG_SEND_FUA;
    CHECK(v(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 0, 1, &l) == NBD_EINVAL);
    /* read-only */
    l = base;
    l.tflags |= NBD_FLAG_READ_ONLY;
    CHECK(v(NBD_CMD_WRITE, 0, 0, 1, &l) == NBD_EPERM);
    CHECK(v(NBD_CMD_TRIM, 0, 0, 1, &l) == NBD_EPERM);
    CHECK(v(NBD_CMD_WRITE_ZEROES, 0, 0, 1, &l) == NBD_EPERM);
    CHECK(v(NBD_CMD_READ, 0, 0, 1, &l) == 0);
    /* alignment */
    l = base;
    l.min_block = 512;
    CHECK(v(NBD_CMD_READ, 0, 512, 512, &l) == 0);
    CHECK(v(NBD_CMD_READ, 0, 1, 512, &l) == NBD_EINVAL);
    CHECK(v(NBD_CMD_WRITE, 0, 0, 100, &l) == NBD_EINVAL);
    /* errno mapping */
    CHECK(nbd_errno_to_wire(EIO) == NBD_EIO);
    CHECK(nbd_errno_to_wire(ENOSPC) == NBD_ENOSPC);
    CHECK(nbd_errno_to_wire(ETIMEDOUT) == NBD_EIO);
    CHECK(nbd_errno_to_wire(EROFS) == NBD_EPERM);
    CHECK(nbd_errno_to_wire(ENOTSUP) == NBD_ENOTSUP);
    return CHECK_DONE();
}
