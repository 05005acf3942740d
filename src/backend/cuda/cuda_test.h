/* What the tests need of the CUDA backend beyond ops.h (C, for tests/): memory that both the
 * host and the GPU address, so a conformance case hands the same buffers to cpu_ref and cuda;
 * and the host emulation of the backend's kernels (tests/CMakeLists.txt, vdvae_cuda_emu). */
#ifndef VD_BACKEND_CUDA_CUDA_TEST_H
#define VD_BACKEND_CUDA_CUDA_TEST_H

#include <stddef.h>

#include "backend/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* cudaMallocManaged / cudaFree (VD_CUDA builds only); NULL when it fails. */
void *vd_cuda_managed_alloc(size_t bytes);
void vd_cuda_managed_free(void *p);

/* The CUDA backend's kernels as host loops over host memory, cuDNN's three convolution calls
 * as plain loops (everything around them, packing, pads, transposes, is the GPU's code).
 * Defined by the vdvae_cuda_emu test library. */
vd_status vd_backend_create_cuda_emu(vd_backend **out, vd_err *err);

#ifdef __cplusplus
}
#endif

#endif
