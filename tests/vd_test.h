/* Minimal test helpers: CHECK records a failure with file:line and keeps going; a test's
 * main returns vd_test_result(), non-zero when anything failed. VD_SKIP exits with 77. */
#ifndef VD_TEST_H
#define VD_TEST_H

#include <stdio.h>
#include <stdlib.h>

static int vd_test_failures;
static int vd_test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        vd_test_checks++;                                                           \
        if (!(cond)) {                                                              \
            vd_test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        vd_test_checks++;                                                           \
        if (!(cond)) {                                                              \
            vd_test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

#define VD_SKIP(...)                      \
    do {                                  \
        fprintf(stderr, "SKIP: ");        \
        fprintf(stderr, __VA_ARGS__);     \
        fputc('\n', stderr);              \
        exit(77);                         \
    } while (0)

static inline int vd_test_result(const char *name) {
    fprintf(stderr, "%s: %d checks, %d failed\n", name, vd_test_checks, vd_test_failures);
    return vd_test_failures ? 1 : 0;
}

#endif
