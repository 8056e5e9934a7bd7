/* dev_mem.c - the RAM device (-kind=mem).
 *
 * The disk is one anonymous private mapping: pages cost memory only once
 * written, and MADV_DONTNEED gives them back (they then read as zeros), which
 * is how TRIM and WRITE_ZEROES free memory. An allocation bitmap at PAGE_RUN
 * granularity answers BLOCK_STATUS so that nbdcopy and qemu-img skip holes.
 *
 * Locking: reads and writes share a rwlock as readers; TRIM and
 * WRITE_ZEROES take it as writer, so a concurrent write can never land
 * between "zeroed" and "marked as a hole" and leave a hole that reads back
 * non-zero. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "usbd.h"

#define PAGE_RUN (64u * 1024) /* allocation tracking granularity */

struct mem_dev {
    uint8_t *base;
    uint64_t size;
    pthread_rwlock_t lock;
    atomic_uchar *alloc; /* one byte per PAGE_RUN: 1 = may hold data */
    uint64_t nruns;
};

static int mem_read(void *priv, void *buf, uint32_t len, uint64_t off)
{
    struct mem_dev *m = priv;
    pthread_rwlock_rdlock(&m->lock);
    memcpy(buf, m->base + off, len);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void mark_runs(struct mem_dev *m, uint64_t off, uint64_t len, unsigned char v)
{
    for (uint64_t r = off / PAGE_RUN; r <= (off + len - 1) / PAGE_RUN; r++)
        atomic_store_explicit(&m->alloc[r], v, memory_order_relaxed);
}

static int mem_write(void *priv, const void *buf, uint32_t len, uint64_t off, unsigned flags)
{
    struct mem_dev *m = priv;
    pthread_rwlock_rdlock(&m->lock);
    mark_runs(m, off, len, 1);
    memcpy(m->base + off, buf, len);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

/* Zero a range: whole runs go back to the kernel and become holes, the
 * partial runs at either end are cleared in place. */
static void zero_range(struct mem_dev *m, uint64_t off, uint64_t len, bool keep_allocated)
{
    uint64_t end = off + len;
    uint64_t a = (off + PAGE_RUN - 1) / PAGE_RUN * PAGE_RUN, b = end / PAGE_RUN * PAGE_RUN;
    if (keep_allocated || a >= b) {
        memset(m->base + off, 0, len);
        return;
    }
    memset(m->base + off, 0, a - off);
    memset(m->base + b, 0, end - b);
    /* On a private anonymous mapping DONTNEED cannot fail for a valid range
     * and the pages read back as zeros. */
    (void)madvise(m->base + a, b - a, MADV_DONTNEED);
    for (uint64_t r = a / PAGE_RUN; r < b / PAGE_RUN; r++)
        atomic_store_explicit(&m->alloc[r], 0, memory_order_relaxed);
}

static int mem_trim(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    struct mem_dev *m = priv;
    pthread_rwlock_wrlock(&m->lock);
    zero_range(m, off, len, false);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_write_zeroes(void *priv, uint32_t len, uint64_t off, unsigned flags)
{
    struct mem_dev *m = priv;
    pthread_rwlock_wrlock(&m->lock);
    zero_range(m, off, len, flags & USBD_NO_HOLE);
    if (flags & USBD_NO_HOLE)
        mark_runs(m, off, len, 1);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_block_status(void *priv, uint32_t len, uint64_t off, struct usbd_extent *ext,
                            size_t *n)
{
    struct mem_dev *m = priv;
    size_t max = *n, k = 0;
    uint64_t pos = off, end = off + len;
    while (pos < end && k < max) {
        unsigned char a = atomic_load_explicit(&m->alloc[pos / PAGE_RUN], memory_order_relaxed);
        uint64_t run_end = pos;
        /* extend over runs with the same state */
        while (run_end < end &&
               atomic_load_explicit(&m->alloc[run_end / PAGE_RUN], memory_order_relaxed) == a)
            run_end = (run_end / PAGE_RUN + 1) * PAGE_RUN;
        if (run_end > end)
            run_end = end;
        ext[k++] = (struct usbd_extent){
            .length = run_end - pos,
            .flags = a ? 0 : USBD_EXTENT_HOLE | USBD_EXTENT_ZERO,
        };
        pos = run_end;
    }
    *n = k;
    return 0;
}

static void mem_close(void *priv)
{
    struct mem_dev *m = priv;
    munmap(m->base, m->size);
    pthread_rwlock_destroy(&m->lock);
    free(m->alloc);
    free(m);
}

static const struct usbd_dev_ops mem_ops = {
    .read = mem_read,
    .write = mem_write,
    .trim = mem_trim,
    .write_zeroes = mem_write_zeroes,
    .block_status = mem_block_status,
    .close = mem_close,
};

int usbd_mem_open(uint64_t size, struct usbd_dev *dev)
{
    if (size == 0 || size % 4096)
        return EINVAL;
    struct mem_dev *m = calloc(1, sizeof *m);
    if (!m)
        return ENOMEM;
    m->size = size;
    m->nruns = (size + PAGE_RUN - 1) / PAGE_RUN;
    m->alloc = calloc(m->nruns, 1);
    /* NORESERVE: a 1 TiB RAM disk that is mostly empty is fine. */
    m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (!m->alloc || m->base == MAP_FAILED) {
        if (m->base != MAP_FAILED && m->base)
            munmap(m->base, size);
        free(m->alloc);
        free(m);
        return ENOMEM;
    }
    pthread_rwlock_init(&m->lock, NULL);
    *dev = (struct usbd_dev){
        .ops = &mem_ops,
        .priv = m,
        .size = size,
        .min_block = 1,
        .pref_block = 4096,
        .description = "RAM disk",
    };
    return 0;
}
