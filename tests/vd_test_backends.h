/* The backends a test can check against cpu_ref, picked by its first argument: cpu (default,
 * oneDNN), cuda_emu (the CUDA backend's kernels as host loops, cuDNN's calls as loops: runs
 * everywhere) and cuda (a GPU, exact fp32: TF32 off). Buffers a test hands to
 * both backends come from vd_test_host_alloc: managed memory under cuda, malloc otherwise. */
#ifndef VD_TEST_BACKENDS_H
#define VD_TEST_BACKENDS_H

#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_test.h"
#include "backend/ops.h"
#include "vd_test.h"

typedef enum vd_test_kind { VD_TEST_CPU, VD_TEST_CUDA_EMU, VD_TEST_CUDA } vd_test_kind;

static vd_test_kind vd_test_kind_now = VD_TEST_CPU;

/* argv[1] names the backend; false (and a message) for anything else. */
static inline bool vd_test_pick_backend(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "cpu";
    if (!strcmp(m, "cpu")) vd_test_kind_now = VD_TEST_CPU;
    else if (!strcmp(m, "cuda_emu")) vd_test_kind_now = VD_TEST_CUDA_EMU;
    else if (!strcmp(m, "cuda")) vd_test_kind_now = VD_TEST_CUDA;
    else {
        fprintf(stderr, "unknown backend '%s' (cpu, cuda_emu or cuda)\n", m);
        return false;
    }
    return true;
}

static inline const char *vd_test_backend_name(void) {
    static const char *names[] = {"cpu", "cuda_emu", "cuda"};
    return names[vd_test_kind_now];
}

static inline void *vd_test_host_alloc(size_t bytes) {
#ifdef VD_HAVE_CUDA
    if (vd_test_kind_now == VD_TEST_CUDA) return vd_cuda_managed_alloc(bytes);
#endif
    return malloc(bytes);
}
static inline void vd_test_host_free(void *p) {
#ifdef VD_HAVE_CUDA
    if (vd_test_kind_now == VD_TEST_CUDA) return vd_cuda_managed_free(p);
#endif
    free(p);
}

/* The picked backend: VD_OK; VD_ERR_UNSUPPORTED when this build or machine lacks it (the
 * caller skips: vd_test_backend_skip); anything else is a failure. */
static inline vd_status vd_test_open_backend(vd_backend **out, int threads, vd_err *err) {
    *out = NULL;
    switch (vd_test_kind_now) {
    case VD_TEST_CUDA_EMU: return vd_backend_create_cuda_emu(out, err);
    case VD_TEST_CUDA: {
        vd_status st = vd_backend_create_cuda(out, 0, err);
        if (!st) vd_backend_allow_tf32(*out, false);
        return st;
    }
    default: return vd_backend_create_cpu(out, threads, err);
    }
}

/* Exit status of a test whose backend is missing: a GPU is hardware (always 77), oneDNN a
 * tool (77, or a failure under VD_REQUIRE_ALL=1). */
static inline int vd_test_backend_skip(const vd_err *err) {
    fprintf(stderr, "%s\n", err->msg);
    if (vd_test_kind_now == VD_TEST_CUDA) return vd_test_skip_hardware("usable CUDA GPU");
    return vd_test_skip(VD_TEST_ONEDNN);
}

#endif
