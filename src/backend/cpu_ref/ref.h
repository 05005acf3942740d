/* Shared plumbing of the cpu_ref backend (plain loops, the oracle the fast backends are
 * tested against): pixel addressing through ld, shape checks that record a failure, and
 * the op functions each family file exports to the table in ref_backend.c. */
#ifndef VD_BACKEND_CPU_REF_REF_H
#define VD_BACKEND_CPU_REF_REF_H

#include <math.h>

#include "backend/ops.h"

/* Views only slice channels, so pixel p (flat over n, h, w) always starts at p * ld. */
static inline int64_t ref_pixels(const vd_tensor *t) {
    return (int64_t)t->n * t->h * t->w;
}
static inline float *ref_px(const vd_tensor *t, int64_t p) {
    return t->data + p * t->ld;
}
static inline float *ref_at(const vd_tensor *t, int n, int h, int w) {
    return t->data + (((int64_t)n * t->h + h) * t->w + w) * t->ld;
}

/* Ops return nothing, so a bad call is recorded on the backend and the op does no work. */
#define REF_REQUIRE(be, cond, ...)                                                                 \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            vd_backend_fail((be), VD_ERR_INVALID, __VA_ARGS__);                                    \
            return;                                                                                \
        }                                                                                          \
    } while (0)

bool vd_ref_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t);
bool vd_ref_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b);
/* Whether the convolutions round their inputs to bf16 (set_precision). */
bool vd_ref_bf16(const vd_backend *be);

/* The logistic function in double (the Bernoulli ops; the rest of the math is in the shared
 * headers backend/act_math.h, latent_math.h, dmol_math.h, optim_math.h): the oracle pays for accuracy. */
static inline double ref_sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* ref_elementwise.c */
void vd_ref_fill(vd_backend *be, const vd_tensor *t, float v);
void vd_ref_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst);
void vd_ref_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *y);
void vd_ref_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *dy, const vd_tensor *dx, bool acc);
void vd_ref_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y);
void vd_ref_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y);
void vd_ref_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y);
void vd_ref_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx, bool acc);
void vd_ref_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc);
void vd_ref_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt);

/* ref_conv.c */
void vd_ref_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                     const float *b, const vd_tensor *y);
void vd_ref_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy,
                          const float *w, const vd_tensor *dx, bool acc);
void vd_ref_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                             const vd_tensor *dy, float *dw, float *db);

/* ref_latent.c */
void vd_ref_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p);
void vd_ref_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                             const vd_tensor *dprior_mean, const vd_tensor *dprior_p);
void vd_ref_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                              const vd_tensor *z);
void vd_ref_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                              const vd_tensor *dmean, const vd_tensor *dp);
void vd_ref_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior,
                        const vd_tensor *z);
void vd_ref_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   float *sum, float *per_variate);
void vd_ref_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                   const vd_tensor *dprior_mean, const vd_tensor *dprior_p);

/* ref_dmol.c */
void vd_ref_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                     float *nll);
void vd_ref_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                     const vd_tensor *x, const vd_tensor *dlogits);
void vd_ref_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature,
                        const vd_tensor *logits, const vd_noise *noise, const vd_tensor *out);

/* ref_bernoulli.c */
void vd_ref_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                          float *nll);
void vd_ref_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                          const vd_tensor *x, const vd_tensor *dlogits);
void vd_ref_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                             const vd_tensor *out);

/* ref_reduce.c */
void vd_ref_sum_squares(vd_backend *be, const float *x, size_t n, float *out);

/* ref_optim.c */
void vd_ref_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n);
void vd_ref_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n);
void vd_ref_scale(vd_backend *be, float a, float *x, size_t n);

/* ref_pool.c (inference only) */
void vd_ref_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y);
void vd_ref_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y);

#endif
