/* Optimisation for training (docs/model.md section 5): the optimizer over the architecture's flat
 * parameter buffer, the EMA of the weights, the global gradient norm with clipping and the
 * skip rule, and the learning-rate schedules. Buffers are backend (device) memory laid out
 * by vd_arch; the host only ever sees the one float of the gradient norm. */
#ifndef VDVAE_OPTIM_H
#define VDVAE_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/model.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vd_backend vd_backend;

/* Step counting, as the reference's JAX trainer (optax) counts:
 * - `updates` = optimizer updates applied so far; a skipped step applies none, so it
 *   advances neither the optimizer nor the schedule.
 * - The update about to be applied uses lr = vd_lr_schedule(hp, updates) (0-based: optax's
 *   schedule reads its count before incrementing it, so the first update uses step 0) and
 *   t = updates + 1 (1-based: the bias corrections' exponent). */

/* Configurations the reference rejects or that would give a NaN or infinite learning rate:
 * cosine with warmup_steps > decay_start (the reference asserts this), noam with
 * warmup_steps == 0, and cosine with learning_rate == 0 (min_lr / lr0). VD_ERR_INVALID
 * names the optimizer.* key. */
vd_status vd_optim_check(const vd_hparams *hp, vd_err *err);

/* optimizer.learning_rate_scheme at 0-based step `step` (see above), in double:
 * - 'cosine':   step < decay_start: lr0 min(1, step / warmup); else, with
 *               s = min(step - decay_start, decay_steps) and a = min_lr / lr0,
 *               lr0 ((1 - a) 0.5 (1 + cos(pi s / decay_steps)) + a).
 * - 'constant': lr0 min(1, step / warmup).
 * - 'noam':     lr0 sqrt(warmup) min(1 / sqrt(step), step warmup^-1.5); 0 at step 0.
 * - 'exponential': clip(lr0 rate^((step - decay_start) / decay_steps), min_lr, lr0), the
 *               upper bound winning if min_lr > lr0 (jnp.clip); no warmup. The reference
 *               writes `rate ^ (step - decay_start / decay_steps)`, an XOR with the wrong
 *               precedence; we use the power docs/model.md section 5.1 states.
 * warmup = optimizer.warmup_steps; warmup 0 means none (the reference would divide 0 by 0). */
double vd_lr_schedule(const vd_hparams *hp, int64_t step);

/* One update of every parameter: params, m and v (Adamax: the infinity-norm moment) change in
 * place; grads is read. Decoupled weight decay hp->loss.l2_weight applies where
 * hp->loss.use_weight_decay and the tensor's vd_param.weight_decay are both set. Issues one
 * optim_update op per maximal run of consecutive tensors with the same decay, so each call
 * covers a long contiguous span. t >= 1 and lr are as described above. Failures are recorded
 * on the backend (vd_backend_check). */
void vd_optim_apply(vd_backend *be, const vd_arch *a, const vd_hparams *hp, float *params,
                    const float *grads, float *m, float *v, int64_t t, double lr);

/* ema = decay ema + (1 - decay) p over n floats (train.ema_decay), after every applied update. */
void vd_ema_apply(vd_backend *be, double decay, const float *params, float *ema, int64_t n);

/* Global L2 norm of n gradient floats: the backend's sum_squares into *dsum (one float of
 * backend memory the caller owns, so the step allocates nothing), one float downloaded, the
 * square root taken in double. */
vd_status vd_grad_norm(vd_backend *be, const float *grads, int64_t n, float *dsum, double *norm,
                       vd_err *err);

typedef struct vd_grad_check {
    double norm;      /* before clipping: what the skip rule tests and the logs report */
    double clip_coef; /* the gradients were multiplied by this; 1 when left alone */
    bool skip;        /* do not apply this update (count it as skipped) */
} vd_grad_check;

/* The clip and skip rules for a pre-clip norm, without touching any buffer:
 * - clip_gradient_norm: coef = clip / (norm + 1e-6) where that is < 1, as
 *   torch.nn.utils.clip_grad_norm_ does (a NaN norm leaves the gradients alone).
 * - gradient_skip: skip when the norm is NaN or >= gradient_skip_threshold; the pre-clip
 *   norm decides, as in both reference trainers. */
vd_grad_check vd_grad_judge(const vd_hparams *hp, double norm);

/* vd_grad_norm, vd_grad_judge, then the gradients scaled by clip_coef unless the step is
 * skipped (skipped gradients are never used; the caller counts the skip). */
vd_status vd_grad_norm_clip_skip(vd_backend *be, const vd_hparams *hp, float *grads, int64_t n,
                                 float *dsum, vd_grad_check *out, vd_err *err);

#ifdef __cplusplus
}
#endif
#endif
