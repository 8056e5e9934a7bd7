/* cpu.c - does this CPU have AES instructions? (seal_cpu_has_aes)
 *
 * This Source Code Form is subject to the terms of the Mozilla Public License,
 * v. 2.0. If a copy of the MPL was not distributed with this file, You can
 * obtain one at https://mozilla.org/MPL/2.0/.
 */
#include "crypto/seal.h"

#if defined(__aarch64__) || defined(__arm__)
#include <sys/auxv.h>
#endif

/* The kernel's bits (arch/arm64/include/uapi/asm/hwcap.h and
 * arch/arm/include/uapi/asm/hwcap.h), for a libc that does not name them. */
#if defined(__aarch64__) && !defined(HWCAP_AES)
#define HWCAP_AES (1ul << 3)
#endif
#if defined(__arm__) && !defined(HWCAP2_AES)
#define HWCAP2_AES (1ul << 0)
#endif

bool seal_cpu_has_aes(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes");
#elif defined(__aarch64__)
    return (getauxval(AT_HWCAP) & HWCAP_AES) != 0;
#elif defined(__arm__)
    /* 32-bit ARM: the ARMv8 crypto extension seen from AArch32 (a Pi 3 or 4
     * running armhf would have it if its SoC did; no ARMv7 core has it). */
    return (getauxval(AT_HWCAP2) & HWCAP2_AES) != 0;
#else
    return true; /* unknown: no hint rather than a wrong one */
#endif
}
