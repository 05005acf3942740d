/* Shared plumbing of the CUDA backend: its state, element addressing of NHWC views, the
 * grid-stride launcher and the sum reducer every kernel file uses. Built two ways: by nvcc for
 * the GPU, and with VD_CUDA_EMU by the host C++ compiler into a test library where a launch is
 * a plain loop over the same functors, so the kernels' indexing and math run on the CPU against
 * cpu_ref (tests/cuda_emu) on machines without a GPU. */
#ifndef VD_BACKEND_CUDA_CUDA_H
#define VD_BACKEND_CUDA_CUDA_H

#include <stdint.h>
#include <string.h>

#include "backend/ops.h"
#include "core/hd.h"

#ifndef VD_CUDA_EMU
#include <cuda_runtime.h>
#include <cudnn.h>
#endif

/* Under VD_CUDA_EMU everything of this backend lives in a namespace of its own, so the test
 * library can sit beside a libvdvae that holds the real one. */
#ifdef VD_CUDA_EMU
#define VD_CU_BEGIN namespace vd_cuda_emu {
#define VD_CU_END }
#else
#define VD_CU_BEGIN
#define VD_CU_END
#endif

VD_CU_BEGIN

#define VD_CU_THREADS 256
/* Doubles of the reduction scratch: the most partial sums one op may ask for (KL per variate);
 * also the most rows of a vd_cu_sum_rows launch, whose grid's y dimension stops at 65535. */
#define VD_CU_ACC_CAP 65535

struct vd_cu_conv_cache; /* cuda_conv.cu */

typedef struct vd_cuda {
    vd_backend base;
    vd_precision precision;
    bool tf32;      /* convolutions may use TF32 tensor cores (fp32 precision only) */
    int max_blocks; /* grid size cap of grid-stride launches */
    double *acc;    /* device: VD_CU_ACC_CAP doubles of reduction scratch */
    float *pre;     /* device: SiLU'd / rounded / packed conv operands, grown on first use */
    size_t pre_cap; /* floats */
    void *ws;       /* device: cuDNN workspace, grown on first use */
    size_t ws_cap;
    struct vd_cu_conv_cache *convs;
    size_t bytes_now, bytes_peak; /* of alloc/dealloc and the scratch above */
#ifndef VD_CUDA_EMU
    int device;
    cudaStream_t stream;
    cudnnHandle_t dnn;
#endif
} vd_cuda;

static inline vd_cuda *vd_cu(vd_backend *be) {
    return (vd_cuda *)be;
}

/* Whether an earlier op failed: the emulation's launches do not look at the status (the GPU's
 * do), so every op asks first. */
static inline bool vd_cu_failed(vd_backend *be) {
    return be->status != VD_OK;
}

/* ---- addressing: element i is the flat logical NHWC index (ops.h), memory (i / c) ld + i % c */
VD_HD static inline int64_t vd_cu_off(const vd_tensor &t, int64_t i) {
    return t.ld == t.c ? i : (i / t.c) * t.ld + i % t.c;
}
VD_HD static inline float &vd_cu_el(const vd_tensor &t, int64_t i) {
    return t.data[vd_cu_off(t, i)];
}
VD_HD static inline int64_t vd_cu_numel(const vd_tensor &t) {
    return (int64_t)t.n * t.h * t.w * t.c;
}
VD_HD static inline int64_t vd_cu_pixels(const vd_tensor &t) {
    return (int64_t)t.n * t.h * t.w;
}
/* The first float of pixel p (flat over n, h, w). */
VD_HD static inline float *vd_cu_px(const vd_tensor &t, int64_t p) {
    return t.data + p * t.ld;
}

/* ---- argument checks on the host, recorded like every backend's (ops.h) */
bool vd_cu_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t);
bool vd_cu_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b);
/* Records a failure of the launch that just happened (nothing under VD_CUDA_EMU). */
void vd_cu_launched(vd_backend *be, const char *op);

#define VD_CU_REQUIRE(be, cond, ...)                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            vd_backend_fail((be), VD_ERR_INVALID, __VA_ARGS__);                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ---- launches. A functor f is a struct of plain values and device pointers with
 *   VD_HD void operator()(int64_t i) const
 * (vd_cu_for) or VD_HD double operator()(int64_t i) const (vd_cu_sum). */
#ifdef VD_CUDA_EMU

template <class F> static void vd_cu_for(vd_backend *be, const char *op, int64_t n, const F &f) {
    (void)op;
    if (be->status != VD_OK) return; /* as the GPU's launcher */
    for (int64_t i = 0; i < n; i++) f(i);
}
/* acc[r] += sum over i < n of f(r, i), for each row r < rows. */
template <class F>
static void vd_cu_sum_rows(vd_backend *be, const char *op, int rows, int64_t n, const F &f, double *acc) {
    (void)op;
    if (be->status != VD_OK) return;
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += f(r, i);
        acc[r] += s;
    }
}

#else

template <class F> __global__ void vd_cu_for_kernel(F f, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        f(i);
}

static inline unsigned vd_cu_blocks(vd_backend *be, int64_t n) {
    int64_t b = (n + VD_CU_THREADS - 1) / VD_CU_THREADS;
    return (unsigned)(b < vd_cu(be)->max_blocks ? b : vd_cu(be)->max_blocks);
}

template <class F> static void vd_cu_for(vd_backend *be, const char *op, int64_t n, const F &f) {
    if (n <= 0 || be->status != VD_OK) return;
    vd_cu_for_kernel<<<vd_cu_blocks(be, n), VD_CU_THREADS, 0, vd_cu(be)->stream>>>(f, n);
    vd_cu_launched(be, op);
}

/* One block sums its share of row blockIdx.y in double and adds it to acc[row] atomically: the
 * order of the additions varies, but in double, rounded to float once at the end, the float
 * results agree with cpu_ref's ordered double sums to an ulp or so. */
template <class F> __global__ void vd_cu_sum_kernel(F f, int64_t n, double *acc) {
    __shared__ double part[VD_CU_THREADS];
    int r = blockIdx.y;
    double s = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        s += f(r, i);
    part[threadIdx.x] = s;
    __syncthreads();
    for (int k = VD_CU_THREADS / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomicAdd(acc + r, part[0]);
}

template <class F>
static void vd_cu_sum_rows(vd_backend *be, const char *op, int rows, int64_t n, const F &f, double *acc) {
    if (n <= 0 || rows <= 0 || be->status != VD_OK) return;
    unsigned bx = vd_cu_blocks(be, n);
    if (rows > 1 && bx > 64) bx = 64; /* many rows: fewer blocks per row */
    vd_cu_sum_kernel<<<dim3(bx, (unsigned)rows), VD_CU_THREADS, 0, vd_cu(be)->stream>>>(f, n, acc);
    vd_cu_launched(be, op);
}

#endif

/* A single row: acc[0] += sum f(i), with f(int, int64_t) ignoring the row. */
template <class F> struct vd_cu_row0 {
    F f;
    VD_HD double operator()(int, int64_t i) const { return f(i); }
};
template <class F>
static void vd_cu_sum(vd_backend *be, const char *op, int64_t n, const F &f, double *acc) {
    vd_cu_sum_rows(be, op, 1, n, vd_cu_row0<F>{f}, acc);
}

/* `count` zeroed device doubles of the reduction scratch, NULL (failure recorded) past its cap.
 * Ops run in stream order, so every op may take the scratch from the start. */
double *vd_cu_acc(vd_backend *be, const char *op, int count);
/* out[k] (= or +=) (float)acc[k] for k < count, on the device (the float add of cpu_ref). */
void vd_cu_store(vd_backend *be, const char *op, const double *acc, float *out, int count, bool add);

/* Device scratch of at least `floats` floats for conv operands (grown, never shrunk). */
float *vd_cu_scratch(vd_backend *be, size_t floats);

/* ---- the op families (one file each) */
void vd_cu_fill(vd_backend *be, const vd_tensor *t, float v);
void vd_cu_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst);
void vd_cu_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *y);
void vd_cu_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *dy,
                   const vd_tensor *dx, bool acc);
void vd_cu_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y);
void vd_cu_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y);
void vd_cu_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y);
void vd_cu_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx, bool acc);
void vd_cu_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc);
void vd_cu_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt);

void vd_cu_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                            const vd_tensor *prior_mean, const vd_tensor *prior_p,
                            const vd_tensor *mean, const vd_tensor *p);
void vd_cu_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                            const vd_tensor *prior_mean, const vd_tensor *prior_p,
                            const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                            const vd_tensor *dprior_mean, const vd_tensor *dprior_p);
void vd_cu_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                             const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                             const vd_tensor *z);
void vd_cu_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                             const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                             const vd_tensor *dmean, const vd_tensor *dp);
void vd_cu_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior, const vd_tensor *z);
void vd_cu_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                  const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                  float *sum, float *per_variate);
void vd_cu_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                  const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                  const vd_tensor *dpost_mean, const vd_tensor *dpost_p, const vd_tensor *dprior_mean,
                  const vd_tensor *dprior_p);

void vd_cu_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                    float *nll);
void vd_cu_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                    const vd_tensor *x, const vd_tensor *dlogits);
void vd_cu_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature, const vd_tensor *logits,
                       const vd_noise *noise, const vd_tensor *out);
void vd_cu_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                         float *nll);
void vd_cu_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                         const vd_tensor *x, const vd_tensor *dlogits);
void vd_cu_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                            const vd_tensor *out);

void vd_cu_sum_squares(vd_backend *be, const float *x, size_t n, float *out);
void vd_cu_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g, float *m,
                        float *v, size_t n);
void vd_cu_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n);
void vd_cu_scale(vd_backend *be, float a, float *x, size_t n);

/* cuda_pool.cu (inference only) */
void vd_cu_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y);
void vd_cu_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y);

/* cuda_conv.cu (cuDNN; under VD_CUDA_EMU its three library calls are loops) */
void vd_cu_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                    const float *b, const vd_tensor *y);
void vd_cu_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy, const float *w,
                         const vd_tensor *dx, bool acc);
void vd_cu_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                            const vd_tensor *dy, float *dw, float *db);
void vd_cu_conv_destroy(vd_backend *be);

VD_CU_END

#endif
