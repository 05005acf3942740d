/* One training step (MODEL.md section 5): the next batch, forward and loss, backward, the
 * global gradient norm with optional clipping, the skip rule, the optimizer update and the
 * EMA. Every random draw is a function of (seed, step), so a resumed run repeats exactly. */
#include <math.h>

#include "train/trainer.h"
#include "vdvae/optim.h"
#include "vdvae/rng.h"

void vd_trainer_noise(vd_trainer *tr, int64_t t) {
    for (int i = 0; i < tr->arch.n_td; i++)
        tr->noise[i] = (vd_noise){.seed = (uint64_t)tr->hp->run.seed,
                                  .stream = vd_rng_stream((uint32_t)t, VD_SITE_POSTERIOR + (uint32_t)i)};
}

static vd_status next_batch(vd_trainer *tr, vd_err *err) {
    vd_status st = vd_loader_next(tr->train_loader, tr->batch, NULL, err);
    if (st) return st;
    const vd_arch *a = &tr->arch;
    size_t n = (size_t)tr->net.batch * a->image_res * a->image_res * a->image_ch;
    tr->be->i->upload(tr->be, tr->net.input, tr->batch, n * sizeof(float));
    return VD_OK;
}

static vd_tensor flat(float *p, int64_t n) {
    return (vd_tensor){p, 1, 1, 1, (int)n, n};
}

/* Forward, loss and backward of the batch in net->input at step t. */
vd_status vd_trainer_compute(vd_trainer *tr, int64_t t, vd_err *err) {
    vd_backend *be = tr->be;
    const vd_arch *a = &tr->arch;
    vd_trainer_noise(tr, t);
    vd_net_forward(&tr->net, tr->noise);
    be->i->download(be, tr->sums, tr->net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    vd_loss_compute(&tr->loss, tr->hp, a, tr->net.batch, t, tr->sums);
    vd_tensor g = flat(tr->net.grads, a->total_floats);
    be->i->fill(be, &g, 0.f);
    vd_net_backward(&tr->net, tr->noise, tr->loss.recon_scale, tr->loss.kl_scale);
    return vd_backend_check(be, err);
}

vd_status vd_trainer_step(vd_trainer *tr, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int64_t t = tr->step + 1, updates = tr->step - tr->skips; /* updates applied so far */
    vd_status st = next_batch(tr, err);
    if (!st) st = vd_trainer_compute(tr, t, err);
    if (st) return st;
    vd_grad_check gc;
    st = vd_grad_norm_clip_skip(tr->be, hp, tr->net.grads, tr->arch.total_floats, tr->dsum, &gc, err);
    if (st) return st;
    tr->grad_norm = gc.norm;
    tr->skipped = gc.skip;
    tr->lr = vd_lr_schedule(hp, updates);
    if (gc.skip) {
        tr->skips++;
    } else {
        vd_optim_apply(tr->be, &tr->arch, hp, tr->net.params, tr->net.grads, tr->m, tr->u, updates + 1, tr->lr);
        vd_ema_apply(tr->be, hp->train.ema_decay, tr->net.params, tr->ema, tr->arch.total_floats);
    }
    tr->step = t;
    return vd_backend_check(tr->be, err);
}
