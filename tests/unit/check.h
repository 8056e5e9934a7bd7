/* check.h - the smallest test harness: CHECK prints where it failed and exits. */
#ifndef USBD_TEST_CHECK_H
#define USBD_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_count;
#define CHECK(cond)                                                                 \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)
#define CHECK_DONE() (printf("%d checks passed\n", check_count), 0)
#endif
