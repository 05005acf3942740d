/* The op interface: every computation the model does on a tensor goes through this table,
 * so that cpu_ref (plain loops, the oracle), cpu (oneDNN + OpenMP) and, later, cuda compute
 * the same network from the same model code. Ops take shapes and pointers, never hparams.
 *
 * Contract
 * - Tensors are float32 NHWC; a vd_tensor may be a channel slice of a wider tensor (ld > c),
 *   which is how concat and split are views instead of copies.
 * - Memory comes from the backend (alloc/upload/download); ops never allocate per call
 *   except for caches a backend builds once (oneDNN primitives).
 * - Gradients of parameters accumulate (+=). Gradients of activations are written (=) or
 *   accumulated (+=) as the op's `acc` flag says.
 * - Ops return nothing: a backend records its first failure, and vd_backend_check() reports
 *   it (like a CUDA stream), so the model reads as a plain sequence of calls. */
#ifndef VD_BACKEND_OPS_H
#define VD_BACKEND_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/enums.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vd_tensor {
    float *data;
    int n, h, w, c;
    int64_t ld; /* elements between consecutive pixels (>= c) */
} vd_tensor;

static inline vd_tensor vd_tensor_make(float *data, int n, int h, int w, int c) {
    vd_tensor t = {data, n, h, w, c, c};
    return t;
}
/* Channels [c0, c0 + c) of t, as a view. */
static inline vd_tensor vd_tensor_channels(vd_tensor t, int c0, int c) {
    vd_tensor v = {t.data + c0, t.n, t.h, t.w, c, t.ld};
    return v;
}
static inline int64_t vd_tensor_numel(const vd_tensor *t) {
    return (int64_t)t->n * t->h * t->w * t->c;
}

/* What a convolution applies to x before it (see vd_conv_desc.pre_act). */
typedef enum vd_conv_pre_act { VD_CONV_PRE_NONE = 0, VD_CONV_PRE_SILU = 1 } vd_conv_pre_act;

/* A 2-D convolution with explicit padding: the reference's 'same' helper pads k - s in
 * total and, when that is odd, puts the extra pixel on the top/left (it hands F.pad
 * (ceil, floor)), unlike TensorFlow; the model computes pads, ops only obey them. Weights are
 * OIHW (the reference's layout, so checkpoints are plain copies), bias [O]. */
typedef struct vd_conv_desc {
    int c_in, c_out, kh, kw, stride;
    int pad_top, pad_left, pad_bottom, pad_right;
    /* VD_CONV_PRE_SILU: conv_fwd and conv_bwd_weights read silu(x) where they are handed x
     * (the SiLU the model puts before most convs), so a backend can fuse it into the pass that
     * packs or converts x instead of writing silu(x) out first; the numbers are those of
     * act_fwd(SiLU) followed by the plain conv. conv_bwd_data ignores it: its dx is the
     * gradient at the conv's input, silu(x) (SiLU's backward is the caller's). */
    vd_conv_pre_act pre_act;
    /* conv_fwd only: true adds onto y (y += conv(x) + b), so a sum that follows the conv (the
     * top-down block's y1 + kl_residual + z_proj(z)) needs no pass of its own; false: y = ... */
    bool acc_y;
} vd_conv_desc;

typedef enum vd_act {
    VD_ACT_SILU,       /* x * sigmoid(x) */
    VD_ACT_LEAKY_RELU, /* x > 0 ? x : alpha x; param = alpha */
    VD_ACT_SOFTPLUS,   /* log(1 + exp(beta x)) / beta, linear above beta x > 20; param = beta */
} vd_act;

typedef struct vd_backend vd_backend;

/* The part of a training step an op belongs to (vd_backend_i.scope, the profiler). */
typedef enum vd_phase { VD_PHASE_FWD, VD_PHASE_RECOMPUTE, VD_PHASE_BWD, VD_PHASES } vd_phase;

/* Where random numbers come from: a given tensor (tests inject the reference's noise), or
 * counter-based Philox draws keyed by (seed, stream) and indexed by element, so the same
 * draw comes out on any backend and thread count and can be re-derived in backward.
 * Element i is the flat logical NHWC index n*H*W*C + h*W*C + w*C + c of the op's output,
 * never its memory offset (views have ld > c); `given` is dense in that order. Philox
 * normals are vd_rng_normal(seed, stream, i), uniforms vd_rng_uniform(seed, stream, i). */
typedef struct vd_noise {
    const float *given; /* NULL: draw from (seed, stream); else one value per element
                           (Gaussians for latents; uniforms in (0,1) for samplers, laid out
                           as the sampler documents) */
    uint64_t seed, stream;
} vd_noise;

/* Discretised mixture of logistics: logits have M + C * 3M channels: M mixture logits,
 * then per colour c: M means, M raw scales, M raw coefficients (tanh). */
typedef struct vd_dmol {
    int n_mix, channels, num_bits;
    vd_dist_base base;   /* VD_BASE_STD: scale = max(softplus_beta(raw), exp(min_logscale));
                            VD_BASE_LOGSTD: scale = exp(beta max(raw, min_logscale)), and the
                            pdf-at-centre branch subtracts max(raw, min_logscale) (not
                            log(scale)), as the reference does */
    float beta, min_logscale;
} vd_dmol;

/* One optimizer update (optax semantics, as the reference's JAX trainer chains them:
 * scale_by_<kind>, then add_decayed_weights, then scale by -lr). Per element, with m and v
 * the first and second (Adamax: infinity-norm) moments, t >= 1 and bc_k = 1 - beta_k^t:
 *   m = b1 m + (1 - b1) g
 *   Adamax: v = max(b2 v, |g| + eps)               u = (m / bc1) / v
 *   Adam:   v = b2 v + (1 - b2) g^2                u = (m / bc1) / (sqrt(v / bc2) + eps)
 *   RAdam:  v as Adam; rho_inf = 2 / (1 - b2) - 1, rho = rho_inf - 2 t b2^t / bc2;
 *           rho >= 5: u = r (m / bc1) / (sqrt(v / bc2) + eps),
 *                     r = sqrt((rho - 4)(rho - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho));
 *           else      u = m / bc1
 *   u += weight_decay * p;  p -= lr * u
 * eps is added outside the square root (optax's eps_root is 0) and, for Adamax, to |g|
 * before the max, so v never reaches 0. NaN in g or v propagates (the max keeps a NaN, as
 * jnp.maximum does). Scalars are double so that every backend rounds the per-step
 * coefficients (1 - b1, bias corrections, r) once from exact values, as optax does from
 * Python floats. weight_decay is 0 for tensors without decoupled weight decay. */
typedef struct vd_optim_step {
    vd_opt_type kind;    /* VD_OPT_ADAMAX, VD_OPT_ADAM, VD_OPT_RADAM */
    double lr, beta1, beta2, eps, weight_decay;
    int64_t t;           /* 1-based count of this update (skipped steps do not count) */
} vd_optim_step;

/* Pooling over kh x kw windows moved by `stride`, with explicit pads as convolutions have
 * (output (in + pads - k) / stride + 1); a pool over the whole image (kh = h, kw = w) is the
 * global average pool. Inference only, as the FID Inception network needs it. */
typedef enum vd_pool_kind {
    VD_POOL_MAX, /* the largest of the window's pixels inside x (pads never win); NaN wins */
    VD_POOL_AVG, /* the mean of the window's pixels inside x: pads are not counted (torch's
                    count_include_pad=False, TensorFlow's SAME pooling) */
} vd_pool_kind;

typedef struct vd_pool_desc {
    vd_pool_kind kind;
    int kh, kw, stride;
    int pad_top, pad_left, pad_bottom, pad_right; /* each below its kernel side: no window is
                                                     all padding */
} vd_pool_desc;

typedef struct vd_backend_i {
    const char *name;
    void (*destroy)(vd_backend *be);

    /* memory */
    void *(*alloc)(vd_backend *be, size_t bytes);
    void (*dealloc)(vd_backend *be, void *p);
    void (*upload)(vd_backend *be, void *dst, const void *src, size_t bytes);
    void (*download)(vd_backend *be, void *dst, const void *src, size_t bytes);
    void (*fill)(vd_backend *be, const vd_tensor *t, float v);
    void (*copy)(vd_backend *be, const vd_tensor *src, const vd_tensor *dst);

    /* convolution: y = conv(x, w) + b; dx (=|+=) conv_T(dy, w); dw += x * dy; db += sum dy.
     * Precision (set_precision): VD_PREC_FP32 multiplies the floats as they are. VD_PREC_BF16
     * first rounds x, w and dy to bfloat16 (backend/bf16.h: nearest, ties to even, denormals
     * to signed zero, as VCVTNEPS2BF16), then multiplies and sums in float32 or wider; y, dx,
     * dw and db stay float32 with the same = / += rules, and db sums the float32 dy (it
     * multiplies nothing). Tensors in this interface stay float32 either way: converting is
     * the backend's business, and every op other than these three is float32 always. */
    vd_status (*set_precision)(vd_backend *be, vd_precision p, vd_err *err); /* NULL: fp32 only */
    void (*conv_fwd)(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                     const float *b, const vd_tensor *y);
    void (*conv_bwd_data)(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy, const float *w,
                          const vd_tensor *dx, bool acc);
    void (*conv_bwd_weights)(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                             const vd_tensor *dy, float *dw, float *db);
    /* Optional (NULL: the two calls): conv_bwd_weights(x, dy, dw, db), then, when dx is not
     * NULL, conv_bwd_data(dy, w, dx, acc), with the same results; a backend may share work
     * between them (bf16: dy is converted once). Use vd_backend_conv_bwd. */
    void (*conv_bwd)(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const vd_tensor *dy,
                     const float *w, float *dw, float *db, const vd_tensor *dx, bool acc);
    /* Optional (NULL: the two calls): conv_fwd(x, w, b, y), then act_fwd(act, param) on y in
     * place, with the same results; a backend may apply the activation as the convolution
     * writes y, saving a pass over it (inference: the FID network's conv, batch norm, ReLU).
     * Use vd_backend_conv_fwd_act. */
    void (*conv_fwd_act)(vd_backend *be, const vd_conv_desc *cv, vd_act act, float param,
                         const vd_tensor *x, const float *w, const float *b, const vd_tensor *y);

    /* activations: y = f(x); dx (=|+=) dy * f'(x) */
    void (*act_fwd)(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *y);
    void (*act_bwd)(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *dy, const vd_tensor *dx, bool acc);

    /* y = a + b (y may alias a or b); y += alpha * x */
    void (*add)(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y);
    void (*axpy)(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y);

    /* nearest upsampling by s: y[n,h,w] = x[n,h/s,w/s]; adjoint: dx (=|+=) sum of s x s dy */
    void (*upsample_fwd)(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y);
    void (*upsample_bwd)(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx,
                         bool acc);

    /* y[n,h,w,c] (=|+=) t[c,h,w] for every n: t is one image in the reference's planar
     * (1, C, H, W) layout (trainable_h, the unpool bias); adjoint dt += sum_n dy[n] */
    void (*broadcast_fwd)(vd_backend *be, const float *t, const vd_tensor *y, bool acc);
    void (*broadcast_bwd)(vd_backend *be, const vd_tensor *dy, float *dt);

    /* ---- Gaussian latents. base: VD_BASE_STD (p = std = softplus_beta(raw)) or
     * VD_BASE_LOGSTD (p = logstd = raw, std = exp(beta logstd)). raw has 2V channels: mean
     * then scale. With a residual prior (prior_mean != NULL): mean += prior_mean and
     * std *= prior_std (std base) or logstd += prior_logstd. */
    void (*latent_stats_fwd)(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p);
    /* draw (=); dprior_* (+=) when a residual prior is given and they are not NULL */
    void (*latent_stats_bwd)(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                             const vd_tensor *dprior_mean, const vd_tensor *dprior_p);
    /* z = mean + T std eps, eps from noise (when given) or N(0,1) Philox draws at
     * (seed, stream, element index); the same eps is re-derived in the backward pass. */
    void (*latent_sample_fwd)(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                              const vd_tensor *z);
    /* dmean += dz, dp += dz T eps dstd/dp; either may be NULL (not wanted) */
    void (*latent_sample_bwd)(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                              const vd_tensor *dmean, const vd_tensor *dp);
    /* z = m z + (1 - m) z_prior per variate (mask [V] of 0/1), inference only */
    void (*latent_mask)(vd_backend *be, const float *mask, const vd_tensor *z_prior,
                        const vd_tensor *z);
    /* KL(post || prior) per element (docs/model.md section 4); *sum (device float) = its total,
     * per_variate (device [V], optional) += its sum over n, h, w. */
    void (*kl_fwd)(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean,
                   const vd_tensor *prior_p, float *sum, float *per_variate);
    /* gradients of scale * sum(KL), all accumulated (+=); a NULL gradient is skipped */
    void (*kl_bwd)(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                   const vd_tensor *dprior_mean, const vd_tensor *dprior_p);

    /* ---- output distributions. x is the target in [-1, 1]; *nll (device float) = the
     * summed negative log-likelihood over the batch; backward writes dlogits (=) for
     * scale * nll, every channel (unused coefficients get 0). DMoL picks its edge branches by
     * x == -1 and x == the highest pixel value (float compares, as the reference's). */
    void (*dmol_fwd)(vd_backend *be, const vd_dmol *d, const vd_tensor *logits,
                     const vd_tensor *x, float *nll);
    void (*dmol_bwd)(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                     const vd_tensor *x, const vd_tensor *dlogits);
    /* MoL sampling (Gumbel-max mixture on logits / T, logistic sample with scale * T, colour
     * autoregression, clamp to [-1, highest pixel value]); T > 0. Uniforms: first N*H*W*M
     * Gumbel draws, index (pixel * M + m), then N*H*W*C logistic draws, index
     * (N*H*W*M + pixel * C + c), pixel = n*H*W + h*W + w. Each u (given or Philox, in (0,1))
     * is mapped as uniform_(1e-5, 1 - 1e-5) would: u' = 1e-5f + (1.0f - 2e-5f) * u in float. */
    void (*dmol_sample)(vd_backend *be, const vd_dmol *d, float temperature, const vd_tensor *logits,
                        const vd_noise *noise, const vd_tensor *out);
    /* Bernoulli on logits over the crop [crop, H - crop) of both axes (binarized MNIST: 2) */
    void (*bernoulli_fwd)(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                          float *nll);
    void (*bernoulli_bwd)(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                          const vd_tensor *x, const vd_tensor *dlogits);
    /* out = 1 where u < sigmoid(logit) else 0; out is logits' shape or a centred crop of it
     * (28x28 from 32x32), and uniform i is out's element index */
    void (*bernoulli_sample)(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                             const vd_tensor *out);

    /* *out (device float) = sum of squares of n floats (gradient norms) */
    void (*sum_squares)(vd_backend *be, const float *x, size_t n, float *out);

    /* ---- optimisation over flat buffers of n floats (elementwise: any thread count gives
     * the same bits). p, g, m, v (and p, ema) must not overlap. */
    /* the update of vd_optim_step on p with gradient g and moments m, v (all updated) */
    void (*optim_update)(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n);
    /* ema = decay ema + (1 - decay) p, both coefficients rounded from the double decay */
    void (*ema_update)(vd_backend *be, double decay, const float *p, float *ema, size_t n);
    /* x *= a (gradient clipping) */
    void (*scale)(vd_backend *be, float a, float *x, size_t n);

    /* ---- inference only (the FID Inception network, src/fid/): these ops have no backward.
     * Concatenation is channel views of one output, a fully connected layer a 1x1 conv. */
    /* y (=) the vd_pool_desc pooling of x; y may be a channel view of a wider tensor */
    void (*pool_fwd)(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y);
    /* y (=) x resized to y's h x w as torch's F.interpolate(mode='bilinear',
     * align_corners=False) without antialiasing: per axis, scale = (float)in / out (float),
     * source s = max(0, scale (o + 0.5) - 0.5) (double), i0 = floor(s), i1 = min(i0 + 1,
     * in - 1), l1 = (float)(s - i0), l0 = 1 - l1 (float), as torch's CPU kernel (in == out
     * copies), and y = l0h (l0w x[i0h,i0w] + l1w x[i0h,i1w]) + l1h (l0w x[i1h,i0w] +
     * l1w x[i1h,i1w]). */
    void (*resize_bilinear)(vd_backend *be, const vd_tensor *x, const vd_tensor *y);

    /* Optional (NULL: ignored): the ops that follow belong to the block group `name`
     * ("down 32x32") in `phase` until the next call; the profiler charges them
     * there. name is copied. */
    void (*scope)(vd_backend *be, const char *name, vd_phase phase);

    /* Optional (NULL: nothing to say): see vd_backend_precision_note. */
    const char *(*precision_note)(vd_backend *be);

    /* Optional (NULL: always exact fp32): whether fp32 convolutions may use TF32 tensor-core
     * math ([run] allow_tf32; the reference sets torch.backends.cudnn.allow_tf32). */
    void (*allow_tf32)(vd_backend *be, bool on);
    /* Optional (NULL: not tracked): bytes of backend memory held now and at most so far
     * (allocations plus the backend's own scratch and workspaces). */
    void (*memory)(vd_backend *be, size_t *now, size_t *peak);
} vd_backend_i;


struct vd_backend {
    const vd_backend_i *i;
    vd_status status; /* first failure, sticky */
    vd_err err;
};

static inline void vd_backend_scope(vd_backend *be, const char *name, vd_phase phase) {
    if (be->i->scope) be->i->scope(be, name, phase);
}

static inline void vd_backend_conv_bwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                                       const vd_tensor *dy, const float *w, float *dw, float *db,
                                       const vd_tensor *dx, bool acc) {
    if (be->i->conv_bwd) {
        be->i->conv_bwd(be, cv, x, dy, w, dw, db, dx, acc);
        return;
    }
    be->i->conv_bwd_weights(be, cv, x, dy, dw, db);
    if (dx) be->i->conv_bwd_data(be, cv, dy, w, dx, acc);
}

static inline void vd_backend_conv_fwd_act(vd_backend *be, const vd_conv_desc *cv, vd_act act,
                                           float param, const vd_tensor *x, const float *w,
                                           const float *b, const vd_tensor *y) {
    if (be->i->conv_fwd_act) {
        be->i->conv_fwd_act(be, cv, act, param, x, w, b, y);
        return;
    }
    be->i->conv_fwd(be, cv, x, w, b, y);
    be->i->act_fwd(be, act, param, y, y);
}

/* Record a failure (the first one wins); backends call this from their ops. */
void vd_backend_fail(vd_backend *be, vd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The argument checks every backend makes, in its words (`who`: "" or "cpu "): t is a tensor
 * with data and a positive shape (ld >= c); a and b have the same shape. False with the failure
 * recorded, naming op. */
bool vd_backend_tensor_ok(vd_backend *be, const char *who, const char *op, const char *name,
                          const vd_tensor *t);
bool vd_backend_same_shape(vd_backend *be, const char *who, const char *op, const vd_tensor *a,
                           const vd_tensor *b);
/* VD_OK, or the first recorded failure copied into err. */
vd_status vd_backend_check(vd_backend *be, vd_err *err);

/* The precision of the convolutions that follow (backends start in fp32): VD_OK for
 * VD_PREC_FP32 on any backend; VD_ERR_UNSUPPORTED, naming the backend, for a precision it does
 * not implement (the backend keeps its previous one). */
vd_status vd_backend_set_precision(vd_backend *be, vd_precision p, vd_err *err);

/* A one-line warning for the user when the precision set on be makes its convolutions slower
 * than fp32 on this machine, e.g. "bf16 convolutions measured 1.40x slower than fp32 on this
 * CPU (oneDNN brgconv:avx512_core_bf16, no AMX); consider run.precision='fp32'"; NULL when
 * there is nothing to say: fp32, bf16 no slower, or a backend that does not measure (cpu_ref).
 * The verdict comes from a measurement on this machine, never from the CPU's name (bf16 is 2x
 * faster on a Zen 5 with avx512_bf16 and 1.4x slower on a Xeon with the same flag): the cpu
 * backend's first call after bf16 is set times the same small convolutions in both precisions
 * (vd_cpu_precision_probe: tens of ms, most of it building their primitives once) and keeps
 * the verdict until the precision is set again. Call it once a run's backend is set up, before
 * the first step (the probe's ops are not the model's: no failure, no profile charge, the
 * precision unchanged). The text belongs to the backend: valid until it is destroyed or its
 * precision is set again. */
const char *vd_backend_precision_note(vd_backend *be);

/* See vd_backend_i.allow_tf32 and .memory; no-ops (memory: false) where a backend lacks them. */
void vd_backend_allow_tf32(vd_backend *be, bool on);
bool vd_backend_memory(vd_backend *be, size_t *now, size_t *peak);

/* What a backend measured of its bf16 convolutions against fp32: the same convolutions, the
 * best of a few runs in each precision. */
typedef struct vd_precision_probe {
    double fp32_seconds, bf16_seconds;
    const char *kernel; /* what ran the bf16 3x3 forward ("brgconv:avx512_core_bf16"), or NULL */
    const char *isa;    /* what the CPU offers bf16 ("no AMX"), or NULL */
} vd_precision_probe;

/* bf16 counts as slower when it takes more than this times fp32's time: the probe repeats
 * within a few percent, so a smaller excess is noise, not a verdict. */
#define VD_BF16_SLOWER_RATIO 1.05

/* The verdict on a probe: true, with the note written to note[cap], when bf16_seconds exceeds
 * VD_BF16_SLOWER_RATIO x fp32_seconds; false (note untouched) otherwise, or when either time is
 * not a positive finite number (nothing measured). */
bool vd_precision_verdict(const vd_precision_probe *p, char *note, size_t cap);

vd_status vd_backend_create_cpu_ref(vd_backend **out, vd_err *err);
vd_status vd_backend_create_cpu(vd_backend **out, int threads, vd_err *err);
/* The CUDA backend on GPU `device` (builds with VD_CUDA=ON): VD_ERR_UNSUPPORTED, with the
 * reason, where no GPU can be used. */
vd_status vd_backend_create_cuda(vd_backend **out, int device, vd_err *err);
/* Whether this build has the CUDA backend and this process sees a GPU (asks the driver once). */
bool vd_cuda_available(void);
/* The GPUs this process sees (0 without CUDA or a GPU). */
int vd_cuda_device_count(void);
/* The GPU and the stream (a cudaStream_t) of a cuda backend, for a communicator that queues its
 * sums behind the backend's kernels (dist/comm_nccl.c); false for any other backend. */
bool vd_backend_cuda_stream(vd_backend *be, int *device, void **stream);
void vd_backend_destroy(vd_backend *be);

/* A profiling wrapper around `inner` (which it then owns and destroys): every op runs the
 * inner op and charges its wall time, and a conv its FLOPs 2 N Ho Wo Cout Cin kh kw, to an
 * op family (conv direction x kernel x stride, each activation, latents, KL, DMoL, ...).
 * Meaningful for synchronous backends (the CPU ones). On failure the caller keeps inner. */
typedef struct vd_profile_family {
    const char *name;   /* owned by the profile backend */
    int64_t calls;
    double seconds, flops; /* flops: 0 for families that are not convs */
    bool is_conv;
} vd_profile_family;

vd_status vd_backend_create_profile(vd_backend **out, vd_backend *inner, vd_err *err);
/* The families used since the last reset, in first-use order; returns how many (<= max).
 * be must come from vd_backend_create_profile. */
int vd_backend_profile_read(vd_backend *be, vd_profile_family *out, int max);
void vd_backend_profile_reset(vd_backend *be);

/* One block group's share (see vd_backend_i.scope): ops' wall time and conv FLOPs per phase,
 * and how many times the group was entered in each phase (its blocks, per step). */
typedef struct vd_profile_scope {
    const char *name;   /* owned by the profile backend */
    int64_t entries[VD_PHASES];
    double seconds[VD_PHASES], flops[VD_PHASES];
} vd_profile_scope;

/* The scopes used since the last reset, in first-use order; returns how many (<= max). */
int vd_backend_profile_scopes(vd_backend *be, vd_profile_scope *out, int max);

#ifdef __cplusplus
}
#endif

#endif
