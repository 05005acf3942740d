/* The CUDA backend's table and its memory: device allocations (tracked for the peak that
 * `vdvae bench` reports), transfers on the backend's stream, the reduction scratch, and the
 * host-side argument checks the kernel files share. Under VD_CUDA_EMU the same code runs on
 * host memory (tests/cuda_emu). */
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_test.h"

VD_CU_BEGIN

/* Live allocations and their sizes: a handful per run (flat buffers, the arena), so a list. */
typedef struct cu_block {
    void *p;
    size_t bytes;
} cu_block;

typedef struct cu_state {
    vd_cuda cu;
    cu_block *blocks;
    int n_blocks, cap_blocks;
} cu_state;

static cu_state *state(vd_backend *be) {
    return (cu_state *)be;
}

static void count_bytes(vd_backend *be, ptrdiff_t delta) {
    vd_cuda *cu = vd_cu(be);
    cu->bytes_now = (size_t)((ptrdiff_t)cu->bytes_now + delta);
    if (cu->bytes_now > cu->bytes_peak) cu->bytes_peak = cu->bytes_now;
}

#ifdef VD_CUDA_EMU
static void *raw_alloc(vd_backend *, size_t bytes) {
    return malloc(bytes ? bytes : 1);
}
static void raw_free(vd_backend *, void *p) {
    free(p);
}
void vd_cu_launched(vd_backend *, const char *) {}
#else
static bool cu_ok(vd_backend *be, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    vd_backend_fail(be, VD_ERR_INTERNAL, "cuda: %s: %s", what, cudaGetErrorString(e));
    return false;
}
static void *raw_alloc(vd_backend *be, size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* an out-of-memory is the caller's to report, not sticky */
        (void)be;
        return NULL;
    }
    return p;
}
static void raw_free(vd_backend *be, void *p) {
    cu_ok(be, cudaFree(p), "cudaFree");
}
void vd_cu_launched(vd_backend *be, const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        vd_backend_fail(be, VD_ERR_INTERNAL, "%s: kernel launch failed: %s", op, cudaGetErrorString(e));
}
#endif

static void *cu_alloc(vd_backend *be, size_t bytes) {
    cu_state *s = state(be);
    if (s->n_blocks == s->cap_blocks) {
        int cap = s->cap_blocks ? 2 * s->cap_blocks : 64;
        cu_block *b = (cu_block *)realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b) return NULL;
        s->blocks = b, s->cap_blocks = cap;
    }
    void *p = raw_alloc(be, bytes);
    if (!p) return NULL;
    s->blocks[s->n_blocks++] = cu_block{p, bytes};
    count_bytes(be, (ptrdiff_t)bytes);
    return p;
}

static void cu_dealloc(vd_backend *be, void *p) {
    if (!p) return;
    cu_state *s = state(be);
    for (int i = 0; i < s->n_blocks; i++) {
        if (s->blocks[i].p != p) continue;
        count_bytes(be, -(ptrdiff_t)s->blocks[i].bytes);
        s->blocks[i] = s->blocks[--s->n_blocks];
        raw_free(be, p);
        return;
    }
    vd_backend_fail(be, VD_ERR_INVALID, "dealloc: %p was not allocated by this backend", p);
}

/* Transfers are synchronous for the host: the source may be reused, the result read, on return.
 * `to_device` picks the direction (the emulation copies either way). */
static void transfer(vd_backend *be, void *dst, const void *src, size_t bytes, bool to_device) {
    if (!bytes) return;
#ifdef VD_CUDA_EMU
    (void)be, (void)to_device;
    memcpy(dst, src, bytes);
#else
    const char *what = to_device ? "upload" : "download";
    cudaMemcpyKind kind = to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    vd_cuda *cu = vd_cu(be);
    if (cu_ok(be, cudaMemcpyAsync(dst, src, bytes, kind, cu->stream), what))
        cu_ok(be, cudaStreamSynchronize(cu->stream), what);
#endif
}

static void cu_upload(vd_backend *be, void *dst, const void *src, size_t bytes) {
    transfer(be, dst, src, bytes, true);
}

static void cu_download(vd_backend *be, void *dst, const void *src, size_t bytes) {
    transfer(be, dst, src, bytes, false);
}

double *vd_cu_acc(vd_backend *be, const char *op, int count) {
    vd_cuda *cu = vd_cu(be);
    if (count > VD_CU_ACC_CAP) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: %d partial sums exceed the backend's %d", op, count,
                        VD_CU_ACC_CAP);
        return NULL;
    }
#ifdef VD_CUDA_EMU
    memset(cu->acc, 0, (size_t)count * sizeof(double));
#else
    cu_ok(be, cudaMemsetAsync(cu->acc, 0, (size_t)count * sizeof(double), cu->stream), op);
#endif
    return cu->acc;
}

/* Rounded to float first, then added in float: cpu_ref's `out += (float)sum`. */
struct store_f {
    const double *acc;
    float *out;
    bool add;
    VD_HD void operator()(int64_t k) const {
        out[k] = add ? out[k] + (float)acc[k] : (float)acc[k];
    }
};

void vd_cu_store(vd_backend *be, const char *op, const double *acc, float *out, int count, bool add) {
    vd_cu_for(be, op, count, store_f{acc, out, add});
}

float *vd_cu_scratch(vd_backend *be, size_t floats) {
    vd_cuda *cu = vd_cu(be);
    if (floats <= cu->pre_cap) return cu->pre;
    if (cu->pre) {
#ifndef VD_CUDA_EMU
        cu_ok(be, cudaStreamSynchronize(cu->stream), "scratch"); /* queued kernels may read it */
#endif
        count_bytes(be, -(ptrdiff_t)(cu->pre_cap * sizeof(float)));
        raw_free(be, cu->pre);
    }
    cu->pre = (float *)raw_alloc(be, floats * sizeof(float));
    cu->pre_cap = cu->pre ? floats : 0;
    if (!cu->pre) vd_backend_fail(be, VD_ERR_NOMEM, "cuda: no device memory for %zu scratch floats", floats);
    else count_bytes(be, (ptrdiff_t)(floats * sizeof(float)));
    return cu->pre;
}

bool vd_cu_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t) {
    return vd_backend_tensor_ok(be, "", op, name, t); /* cpu_ref's words on every backend */
}

bool vd_cu_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b) {
    return vd_backend_same_shape(be, "", op, a, b);
}

static vd_status cu_set_precision(vd_backend *be, vd_precision p, vd_err *err) {
    if (p != VD_PREC_FP32 && p != VD_PREC_BF16)
        return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend cuda: unknown precision %d", (int)p);
    vd_cu(be)->precision = p;
    return VD_OK;
}

static void cu_allow_tf32(vd_backend *be, bool on) {
    vd_cu(be)->tf32 = on;
}

static void cu_memory(vd_backend *be, size_t *now, size_t *peak) {
    *now = vd_cu(be)->bytes_now;
    *peak = vd_cu(be)->bytes_peak;
}

static void cu_destroy(vd_backend *be) {
    cu_state *s = state(be);
    vd_cuda *cu = &s->cu;
#ifndef VD_CUDA_EMU
    cudaStreamSynchronize(cu->stream);
#endif
    vd_cu_conv_destroy(be);
    for (int i = 0; i < s->n_blocks; i++) raw_free(be, s->blocks[i].p); /* what the owner left */
    if (cu->pre) raw_free(be, cu->pre);
    if (cu->acc) raw_free(be, cu->acc);
#ifndef VD_CUDA_EMU
    if (cu->dnn) cudnnDestroy(cu->dnn);
    if (cu->stream) cudaStreamDestroy(cu->stream);
#endif
    free(s->blocks);
    free(s);
}

static const vd_backend_i cuda_table = {
    .name = "cuda",
    .destroy = cu_destroy,
    .alloc = cu_alloc,
    .dealloc = cu_dealloc,
    .upload = cu_upload,
    .download = cu_download,
    .fill = vd_cu_fill,
    .copy = vd_cu_copy,
    .set_precision = cu_set_precision,
    .conv_fwd = vd_cu_conv_fwd,
    .conv_bwd_data = vd_cu_conv_bwd_data,
    .conv_bwd_weights = vd_cu_conv_bwd_weights,
    .conv_bwd = NULL,
    .conv_fwd_act = NULL, /* conv_fwd, then act_fwd (vd_backend_conv_fwd_act) */
    .act_fwd = vd_cu_act_fwd,
    .act_bwd = vd_cu_act_bwd,
    .add = vd_cu_add,
    .axpy = vd_cu_axpy,
    .upsample_fwd = vd_cu_upsample_fwd,
    .upsample_bwd = vd_cu_upsample_bwd,
    .broadcast_fwd = vd_cu_broadcast_fwd,
    .broadcast_bwd = vd_cu_broadcast_bwd,
    .latent_stats_fwd = vd_cu_latent_stats_fwd,
    .latent_stats_bwd = vd_cu_latent_stats_bwd,
    .latent_sample_fwd = vd_cu_latent_sample_fwd,
    .latent_sample_bwd = vd_cu_latent_sample_bwd,
    .latent_mask = vd_cu_latent_mask,
    .kl_fwd = vd_cu_kl_fwd,
    .kl_bwd = vd_cu_kl_bwd,
    .dmol_fwd = vd_cu_dmol_fwd,
    .dmol_bwd = vd_cu_dmol_bwd,
    .dmol_sample = vd_cu_dmol_sample,
    .bernoulli_fwd = vd_cu_bernoulli_fwd,
    .bernoulli_bwd = vd_cu_bernoulli_bwd,
    .bernoulli_sample = vd_cu_bernoulli_sample,
    .sum_squares = vd_cu_sum_squares,
    .optim_update = vd_cu_optim_update,
    .ema_update = vd_cu_ema_update,
    .scale = vd_cu_scale,
    .pool_fwd = vd_cu_pool_fwd,
    .resize_bilinear = vd_cu_resize_bilinear,
    .scope = NULL,
    .precision_note = NULL,
    .allow_tf32 = cu_allow_tf32,
    .memory = cu_memory,
};

/* The state every build shares once the device (if any) is set up. */
static vd_status finish_create(cu_state *s, vd_backend **out, vd_err *err) {
    vd_backend *be = &s->cu.base;
    s->cu.acc = (double *)raw_alloc(be, VD_CU_ACC_CAP * sizeof(double));
    if (!s->cu.acc) {
        cu_destroy(be);
        return vd_errorf(err, VD_ERR_NOMEM, "cuda: no device memory for the reduction scratch");
    }
    count_bytes(be, VD_CU_ACC_CAP * sizeof(double));
    *out = be;
    return VD_OK;
}

static cu_state *new_state(void) {
    cu_state *s = (cu_state *)calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cu.base.i = &cuda_table;
    s->cu.precision = VD_PREC_FP32;
    s->cu.tf32 = true; /* the reference's setting; run.allow_tf32 = False turns it off */
    s->cu.max_blocks = 1024;
    return s;
}

VD_CU_END

#ifdef VD_CUDA_EMU
/* The emulation: host memory, loops for launches, cuDNN's three calls as loops (cuda_conv.cu). */
extern "C" vd_status vd_backend_create_cuda_emu(vd_backend **out, vd_err *err) {
    using namespace vd_cuda_emu;
    cu_state *s = new_state();
    if (!s) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return finish_create(s, out, err);
}
#else
static vd_status no_gpu(vd_err *err, const char *what, cudaError_t e) {
    (void)cudaGetLastError();
    /* no driver reads as "driver version is insufficient": say what it usually means */
    const char *why = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                          ? "no NVIDIA GPU with a CUDA 13 driver is visible; "
                          : "";
    return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend 'cuda': no usable GPU (%s%s: %s)", why, what,
                     cudaGetErrorString(e));
}

extern "C" bool vd_cuda_available(void) {
    static int known = -1; /* asking the driver costs a context's worth of time: once */
    if (known < 0) {
        int n = 0;
        known = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
        (void)cudaGetLastError();
    }
    return known == 1;
}

extern "C" int vd_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

extern "C" bool vd_backend_cuda_stream(vd_backend *be, int *device, void **stream) {
    if (!be || be->i != &cuda_table) return false;
    *device = vd_cu(be)->device;
    *stream = (void *)vd_cu(be)->stream;
    return true;
}

extern "C" void *vd_cuda_managed_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMallocManaged(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

extern "C" void vd_cuda_managed_free(void *p) {
    cudaFree(p);
}

extern "C" vd_status vd_backend_create_cuda(vd_backend **out, int device, vd_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return no_gpu(err, "cudaGetDeviceCount", e);
    if (n == 0) return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend 'cuda': this machine has no CUDA GPU");
    if (device < 0 || device >= n)
        return vd_errorf(err, VD_ERR_INVALID, "backend 'cuda': GPU %d does not exist (%d visible)", device, n);
    if ((e = cudaSetDevice(device)) != cudaSuccess) return no_gpu(err, "cudaSetDevice", e);
    cu_state *s = new_state();
    if (!s) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    s->cu.device = device;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    s->cu.max_blocks = sms > 0 ? 8 * sms : 1024;
    if ((e = cudaStreamCreateWithFlags(&s->cu.stream, cudaStreamNonBlocking)) != cudaSuccess) {
        free(s);
        return no_gpu(err, "cudaStreamCreate", e);
    }
    cudnnStatus_t ds = cudnnCreate(&s->cu.dnn);
    if (ds == CUDNN_STATUS_SUCCESS) ds = cudnnSetStream(s->cu.dnn, s->cu.stream);
    if (ds != CUDNN_STATUS_SUCCESS) {
        vd_backend *be = &s->cu.base;
        cu_destroy(be);
        return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend 'cuda': cuDNN: %s", cudnnGetErrorString(ds));
    }
    return finish_create(s, out, err);
}
#endif
