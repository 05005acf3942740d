/* Shared plumbing of the fast cpu backend (oneDNN convolutions, OpenMP kernels): argument
 * checks, the parallel-loop and deterministic-reduction helpers, and the op functions each
 * family file exports to the table in cpu_backend.c. */
#ifndef VD_BACKEND_CPU_CPU_H
#define VD_BACKEND_CPU_CPU_H

#include "backend/ops.h"

/* Below this much work a parallel region costs more than it saves. */
#define CPU_MIN_PARALLEL 16384

/* OpenMP pragmas are macro-expanded, so the threshold may be named inside one. */
#define CPU_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
#define CPU_PARALLEL_FOR(work)                                                                     \
    CPU_PRAGMA(omp parallel for schedule(static) if ((work) >= CPU_MIN_PARALLEL))
#else
#define CPU_PARALLEL_FOR(work)
#endif

/* The hot float loops are compiled for AVX-512 and AVX2 as well as the baseline and picked at
 * load time (GCC function multiversioning), so one binary runs anywhere and fast here. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
#define CPU_SIMD_CLONES                                                                            \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_SIMD_CLONES
#endif

/* Views only slice channels, so pixel p (flat over n, h, w) always starts at p * ld. */
static inline int64_t cpu_pixels(const vd_tensor *t) {
    return (int64_t)t->n * t->h * t->w;
}
static inline float *cpu_px(const vd_tensor *t, int64_t p) {
    return t->data + p * t->ld;
}
static inline bool cpu_dense(const vd_tensor *t) {
    return t->ld == t->c;
}

/* Ops return nothing, so a bad call is recorded on the backend and the op does no work. */
#define CPU_REQUIRE(be, cond, ...)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            vd_backend_fail((be), VD_ERR_INVALID, __VA_ARGS__);                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

bool vd_cpu_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t);
bool vd_cpu_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b);

/* Scratch for reduction partials, owned by the backend and grown on demand (so the steady
 * state allocates nothing); NULL (and a recorded failure) when it cannot grow. */
double *vd_cpu_partials(vd_backend *be, size_t count);

/* Deterministic sums: work is cut into chunks of a fixed size that depends only on the
 * problem, each chunk is summed in double, and the chunk sums are added in chunk order, so
 * the result is the same bits at any thread count. */
static inline int64_t cpu_chunks(int64_t items, int64_t chunk) {
    return (items + chunk - 1) / chunk;
}

/* Runs fn over up to four same-shaped tensors in runs of contiguous elements: long blocks
 * when every tensor is dense, one pixel's channels otherwise. `first` is the logical NHWC
 * index of the run's first element. */
typedef void (*cpu_run_fn)(const void *ctx, float *const p[4], int64_t n, int64_t first);
void vd_cpu_runs(const vd_tensor *const t[4], int nt, cpu_run_fn fn, const void *ctx);

/* cpu_elementwise.c */
void vd_cpu_fill(vd_backend *be, const vd_tensor *t, float v);
void vd_cpu_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst);
void vd_cpu_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *y);
void vd_cpu_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *dy, const vd_tensor *dx, bool acc);
void vd_cpu_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y);
void vd_cpu_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y);
void vd_cpu_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y);
void vd_cpu_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx, bool acc);
void vd_cpu_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc);
void vd_cpu_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt);

/* cpu_conv.c (oneDNN) */
typedef struct vd_cpu_conv vd_cpu_conv;
vd_status vd_cpu_conv_init(vd_cpu_conv **out, vd_err *err);
void vd_cpu_conv_free(vd_cpu_conv *cc);
vd_cpu_conv *vd_cpu_conv_of(vd_backend *be);
/* The precision of the convolutions that follow (ops.h set_precision); fp32 at start. */
vd_status vd_cpu_conv_set_precision(vd_cpu_conv *cc, vd_precision p, vd_err *err);
/* Tests: in bf16, run every new call as fp32 kernels on bf16-rounded float copies, the path
 * taken where oneDNN has no fast bf16 kernel (ignored in fp32). */
void vd_cpu_conv_force_rounded(vd_cpu_conv *cc, bool on);
/* What computed the last call: oneDNN's implementation name ("brgconv:avx512_core_bf16"), with
 * " on bf16-rounded floats" where bf16 ran as fp32 kernels on rounded copies. */
void vd_cpu_conv_last_kernel(const vd_cpu_conv *cc, char *buf, size_t cap);

/* cpu_precision.c: times the same small convolutions (a 3x3 and a 1x1, forward and both
 * backward directions, SiLU pre-activation as the model's cells) in fp32 and in bf16 on a cpu
 * backend of its own, on one thread, best of a few interleaved runs each, and fills the probe:
 * out->kernel points to kernel[cap] (what ran the bf16 3x3 forward), out->isa to a constant.
 * Nothing of the caller's changes (the OpenMP thread count is restored). */
vd_status vd_cpu_precision_probe(vd_precision_probe *out, char *kernel, size_t cap, vd_err *err);
void vd_cpu_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                     const float *b, const vd_tensor *y);
void vd_cpu_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy,
                          const float *w, const vd_tensor *dx, bool acc);
void vd_cpu_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                             const vd_tensor *dy, float *dw, float *db);
void vd_cpu_conv_bwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const vd_tensor *dy,
                     const float *w, float *dw, float *db, const vd_tensor *dx, bool acc);
void vd_cpu_conv_fwd_act(vd_backend *be, const vd_conv_desc *cv, vd_act act, float param,
                         const vd_tensor *x, const float *w, const float *b, const vd_tensor *y);

/* cpu_elementwise.c: y = silu(x) over n floats on the calling thread, the act_fwd kernel */
void vd_cpu_silu_run(const float *x, float *y, int64_t n);

/* cpu_bf16.c: float32 to bfloat16 as backend/bf16.h rounds; dst holds uint16 bf16 or, with
 * to_float, the rounded values as floats (exact). */
bool vd_cpu_bf16_native(void); /* the CPU has AVX-512 BF16 (VCVTNEPS2BF16) */
/* n elements on the calling thread, by the instruction (native) or the scalar rounding */
void vd_cpu_bf16_run(const float *src, void *dst, int64_t n, bool to_float, bool native);
/* n elements across the OpenMP threads */
void vd_cpu_bf16_flat(const float *src, void *dst, int64_t n, bool to_float);
/* t (dense or a channel view) into a dense [pixels][c] copy, across the OpenMP threads */
void vd_cpu_bf16_pack(const vd_tensor *t, void *dst, bool to_float);
/* vd_cpu_bf16_pack of silu(t), computed a block at a time in cache (as vd_cpu_silu_run) so that
 * silu(t) is never written out in float32 */
void vd_cpu_bf16_pack_silu(const vd_tensor *t, void *dst, bool to_float);
/* vd_cpu_bf16_pack of dy and vd_cpu_channel_sums_add(dy, db) in one pass (cpu_reduce.c) */
void vd_cpu_bf16_pack_sums(vd_backend *be, const vd_tensor *dy, void *dst, bool to_float,
                           float *db);

/* cpu_latent.c */
void vd_cpu_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p);
void vd_cpu_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                             const vd_tensor *dprior_mean, const vd_tensor *dprior_p);
void vd_cpu_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                              const vd_tensor *z);
void vd_cpu_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                              const vd_tensor *dmean, const vd_tensor *dp);
void vd_cpu_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior,
                        const vd_tensor *z);
void vd_cpu_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   float *sum, float *per_variate);
void vd_cpu_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                   const vd_tensor *dprior_mean, const vd_tensor *dprior_p);

/* cpu_dmol.c */
void vd_cpu_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                     float *nll);
void vd_cpu_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                     const vd_tensor *x, const vd_tensor *dlogits);
void vd_cpu_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature,
                        const vd_tensor *logits, const vd_noise *noise, const vd_tensor *out);

/* cpu_bernoulli.c */
void vd_cpu_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                          float *nll);
void vd_cpu_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                          const vd_tensor *x, const vd_tensor *dlogits);
void vd_cpu_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                             const vd_tensor *out);

/* cpu_reduce.c */
void vd_cpu_sum_squares(vd_backend *be, const float *x, size_t n, float *out);
/* db[o] += sum over pixels of dy[., o] (the bias gradient of a convolution done as a GEMM) */
void vd_cpu_channel_sums_add(vd_backend *be, const vd_tensor *dy, float *db);

/* cpu_optim.c */
void vd_cpu_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n);
void vd_cpu_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n);
void vd_cpu_scale(vd_backend *be, float a, float *x, size_t n);

/* cpu_pool.c (inference only) */
void vd_cpu_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y);
void vd_cpu_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y);

#endif
