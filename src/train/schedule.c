/* Learning-rate schedules (docs/model.md section 5) with the reference's JAX semantics, indexed
 * by the 0-based count of applied updates (optim.h says why). The beta and gamma schedules
 * of the loss live in nn/loss.c. */
#include <math.h>

#include "vdvae/optim.h"

/* min(1, step / warmup); no warmup at all when warmup is 0. */
static double warmup_factor(double warmup, int64_t step) {
    if (warmup <= 0) return 1.0;
    return fmin(1.0, (double)step / warmup);
}

static double cosine(const vd_hparams *hp, int64_t step) {
    const vd_hp_optimizer *O = &hp->optimizer;
    double lr0 = O->learning_rate;
    if (step < O->decay_start) return lr0 * warmup_factor(O->warmup_steps, step);
    if (lr0 <= 0) return 0; /* vd_optim_check rejects it: min_lr / lr0 */
    double a = O->min_learning_rate / lr0, span = (double)O->decay_steps;
    double s = fmin((double)(step - O->decay_start), span);
    return lr0 * ((1.0 - a) * 0.5 * (1.0 + cos(M_PI * s / span)) + a);
}

static double noam(double lr0, double warmup, int64_t step) {
    if (step <= 0 || warmup <= 0) return 0; /* rsqrt(0) = inf loses to 0 * warmup^-1.5 */
    double t = (double)step;
    return lr0 * sqrt(warmup) * fmin(1.0 / sqrt(t), t * pow(warmup, -1.5));
}

static double exponential(const vd_hparams *hp, int64_t step) {
    const vd_hp_optimizer *O = &hp->optimizer;
    double lr0 = O->learning_rate;
    double lr = lr0 * pow(O->decay_rate, (double)(step - O->decay_start) / (double)O->decay_steps);
    return fmin(fmax(lr, O->min_learning_rate), lr0);
}

double vd_lr_schedule(const vd_hparams *hp, int64_t step) {
    const vd_hp_optimizer *O = &hp->optimizer;
    switch (O->learning_rate_scheme) {
    case VD_LR_COSINE: return cosine(hp, step);
    case VD_LR_CONSTANT: return O->learning_rate * warmup_factor(O->warmup_steps, step);
    case VD_LR_NOAM: return noam(O->learning_rate, O->warmup_steps, step);
    case VD_LR_EXPONENTIAL: return exponential(hp, step);
    }
    return O->learning_rate;
}
