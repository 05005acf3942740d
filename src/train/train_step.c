/* One training step (docs/model.md section 5): the next batch, forward and loss, backward, the
 * global gradient norm with optional clipping, the skip rule, the optimizer update and the
 * EMA. Every random draw is a function of (seed, step), so a resumed run repeats exactly. */
#include <math.h>

#include "train/trainer.h"
#include "vdvae/optim.h"
#include "vdvae/rng.h"

static vd_status next_batch(vd_trainer *tr, vd_err *err) {
    vd_status st = vd_loader_next(tr->train_loader, tr->ses.batch, NULL, err);
    if (!st) vd_session_upload_batch(&tr->ses);
    return st;
}

static vd_tensor flat(float *p, int64_t n) {
    return (vd_tensor){p, 1, 1, 1, (int)n, n};
}

vd_status vd_train_compute(vd_session *s, int64_t t, vd_err *err) {
    vd_backend *be = s->be;
    const vd_arch *a = &s->arch;
    vd_session_noise(s, s->noise, (uint32_t)t, VD_SITE_POSTERIOR); /* group i: (seed, t, site + i) */
    vd_net_forward(&s->net, s->noise);
    be->i->download(be, s->sums, s->net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    vd_loss_compute(&s->loss, s->hp, a, s->net.batch, t, s->sums);
    vd_tensor g = flat(s->net.grads, a->total_floats);
    be->i->fill(be, &g, 0.f);
    vd_net_backward(&s->net, s->noise, s->loss.recon_scale, s->loss.kl_scale);
    return vd_backend_check(be, err);
}

vd_status vd_trainer_step(vd_trainer *tr, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int64_t t = tr->step + 1, updates = tr->step - tr->skips; /* updates applied so far */
    vd_status st = next_batch(tr, err);
    if (!st) st = vd_train_compute(&tr->ses, t, err);
    if (st) return st;
    vd_grad_check gc;
    st = vd_grad_norm_clip_skip(tr->ses.be, hp, tr->ses.net.grads, tr->ses.arch.total_floats, tr->dsum, &gc, err);
    if (st) return st;
    tr->grad_norm = gc.norm;
    tr->skipped = gc.skip;
    tr->lr = vd_lr_schedule(hp, updates);
    if (gc.skip) {
        tr->skips++;
        tr->skip_streak++;
    } else {
        tr->skip_streak = 0;
        vd_optim_apply(tr->ses.be, &tr->ses.arch, hp, tr->ses.net.params, tr->ses.net.grads, tr->m, tr->u, updates + 1, tr->lr);
        vd_ema_apply(tr->ses.be, hp->train.ema_decay, tr->ses.net.params, tr->ema, tr->ses.arch.total_floats);
    }
    tr->step = t;
    return vd_backend_check(tr->ses.be, err);
}
