/* For tests that check both CPU backends: the cpu backend exists only in oneDNN builds, so its
 * half of a test may not run; then the test reports skipped (or failed under VD_REQUIRE_ALL=1)
 * once everything that did run has passed. */
#ifndef VD_TEST_CPU_H
#define VD_TEST_CPU_H

#include "backend/ops.h"
#include "vd_test.h"

/* The cpu backend: VD_OK, or VD_ERR_UNSUPPORTED (no oneDNN) with *cpu NULL; any other
 * failure is a failed check. */
static inline vd_status vd_test_open_cpu(vd_backend **cpu, int threads) {
    vd_err err = {0};
    *cpu = NULL;
    vd_status st = vd_backend_create_cpu(cpu, threads, &err);
    CHECKF(st == VD_OK || st == VD_ERR_UNSUPPORTED, "creating cpu: %s", err.msg);
    return st;
}

/* The test's exit status: its result, or the oneDNN skip when the cpu half could not run. */
static inline int vd_test_result_cpu(const char *name, vd_status cpu_st) {
    int rc = vd_test_result(name);
    return rc || cpu_st != VD_ERR_UNSUPPORTED ? rc : vd_test_skip(VD_TEST_ONEDNN);
}

#endif
