/* The optimizer over the architecture's flat buffers and the gradient-norm rules around it
 * (docs/model.md section 5). The arithmetic lives in the backends' optim_update, ema_update,
 * scale and sum_squares ops; this file decides which spans, which coefficients and whether. */
#include <assert.h>
#include <math.h>

#include "backend/ops.h"
#include "vdvae/optim.h"

void vd_optim_apply(vd_backend *be, const vd_arch *a, const vd_hparams *hp, float *params,
                    const float *grads, float *m, float *v, int64_t t, double lr) {
    assert(t >= 1);
    const vd_hp_optimizer *O = &hp->optimizer;
    vd_optim_step step = {.kind = O->type, .lr = lr, .beta1 = O->beta1, .beta2 = O->beta2,
                          .eps = O->epsilon, .t = t};
    bool decay_on = hp->loss.use_weight_decay;
    /* The table is laid out in order, so a run of same-flag tensors is one span. */
    for (int i = 0; i < a->n_params;) {
        bool decay = decay_on && a->params[i].weight_decay;
        int64_t first = a->params[i].offset, end = first + a->params[i].numel;
        int j = i + 1;
        for (; j < a->n_params && (decay_on && a->params[j].weight_decay) == decay &&
               a->params[j].offset == end;
             j++)
            end += a->params[j].numel;
        step.weight_decay = decay ? hp->loss.l2_weight : 0.0;
        be->i->optim_update(be, &step, params + first, grads + first, m + first, v + first,
                            (size_t)(end - first));
        i = j;
    }
}

void vd_ema_apply(vd_backend *be, double decay, const float *params, float *ema, int64_t n) {
    assert(n >= 0);
    be->i->ema_update(be, decay, params, ema, (size_t)n);
}

vd_status vd_grad_norm(vd_backend *be, const float *grads, int64_t n, float *dsum, double *norm,
                       vd_err *err) {
    assert(n >= 0 && dsum && norm);
    float sum = NAN;
    be->i->sum_squares(be, grads, (size_t)n, dsum);
    be->i->download(be, &sum, dsum, sizeof sum);
    vd_status st = vd_backend_check(be, err);
    *norm = st == VD_OK ? sqrt((double)sum) : NAN;
    return st;
}

vd_grad_check vd_grad_judge(const vd_hparams *hp, double norm) {
    const vd_hp_optimizer *O = &hp->optimizer;
    vd_grad_check c = {.norm = norm, .clip_coef = 1.0, .skip = false};
    if (O->clip_gradient_norm) {
        double coef = O->gradient_clip_norm_value / (norm + 1e-6);
        if (coef < 1.0) c.clip_coef = coef; /* false for a NaN norm */
    }
    if (O->gradient_skip) c.skip = isnan(norm) || norm >= O->gradient_skip_threshold;
    return c;
}

vd_status vd_grad_norm_clip_skip(vd_backend *be, const vd_hparams *hp, float *grads, int64_t n,
                                 float *dsum, vd_grad_check *out, vd_err *err) {
    double norm;
    vd_status st = vd_grad_norm(be, grads, n, dsum, &norm, err);
    if (st != VD_OK) return st;
    *out = vd_grad_judge(hp, norm);
    if (!out->skip && out->clip_coef < 1.0)
        be->i->scale(be, (float)out->clip_coef, grads, (size_t)n);
    return vd_backend_check(be, err);
}

vd_status vd_optim_check(const vd_hparams *hp, vd_err *err) {
    const vd_hp_optimizer *O = &hp->optimizer;
    if (O->learning_rate_scheme == VD_LR_COSINE && O->warmup_steps > (double)O->decay_start)
        return vd_errorf(err, VD_ERR_INVALID,
                         "optimizer.warmup_steps: %g exceeds optimizer.decay_start %lld, which "
                         "the cosine schedule does not allow",
                         O->warmup_steps, (long long)O->decay_start);
    if (O->learning_rate_scheme == VD_LR_COSINE && O->learning_rate <= 0)
        return vd_errorf(err, VD_ERR_INVALID,
                         "optimizer.learning_rate: the cosine schedule needs a positive rate "
                         "(it decays towards min_learning_rate / learning_rate)");
    if (O->learning_rate_scheme == VD_LR_NOAM && O->warmup_steps <= 0)
        return vd_errorf(err, VD_ERR_INVALID,
                         "optimizer.warmup_steps: the noam schedule needs warmup_steps > 0");
    return VD_OK;
}
