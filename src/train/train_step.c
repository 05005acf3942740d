/* One training step (docs/model.md section 5): the next batch, forward and loss, backward, the
 * global gradient norm with optional clipping, the skip rule, the optimizer update and the
 * EMA. Every random draw is a function of (seed, step), so a resumed run repeats exactly. In a
 * data-parallel job (section 5.5) each rank runs its rows of the batch and the sums meet in
 * all-reduces: the loss sums before the loss, the gradients during backward. */
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
    return vd_train_compute_dist(s, NULL, t, err);
}

/* The forward's sums of every rank's rows, and whether any rank asks to stop, in one small
 * all-reduce: the loss (and the gamma weights, from each group's KL) is that of the global batch
 * on every rank. */
static vd_status sum_sums(vd_session *s, vd_train_dist *d, vd_err *err) {
    int n = 1 + s->arch.n_td;
    double v[n + 1]; /* a few hundred bytes on the stack: no allocation in the step */
    for (int i = 0; i < n; i++) v[i] = s->sums[i];
    v[n] = d->want_stop;
    vd_status st = d->comm->i->sum_f64(d->comm, v, (size_t)n + 1, "the loss sums", err);
    for (int i = 0; i < n && !st; i++) s->sums[i] = (float)v[i];
    d->stop = !st && v[n] > 0;
    return st;
}

/* Without overlap: the gradients through host memory, summed at once. */
static vd_status sum_staged(vd_session *s, vd_train_dist *d, vd_err *err) {
    size_t n = (size_t)s->arch.total_floats;
    s->be->i->download(s->be, d->staging, s->net.grads, n * sizeof(float));
    vd_status st = d->comm->i->start_sum_f32(d->comm, d->staging, n, "the gradient all-reduce", err);
    if (!st) st = d->comm->i->wait_all(d->comm, err);
    if (!st) s->be->i->upload(s->be, s->net.grads, d->staging, n * sizeof(float));
    return st ? st : vd_backend_check(s->be, err);
}

vd_status vd_train_compute_dist(vd_session *s, vd_train_dist *d, int64_t t, vd_err *err) {
    vd_backend *be = s->be;
    const vd_arch *a = &s->arch;
    /* group i: (seed, t, site + i), at the places this rank's rows have in the global batch */
    vd_session_noise_rows(s, s->noise, (uint32_t)t, VD_SITE_POSTERIOR);
    vd_net_forward(&s->net, s->noise);
    be->i->download(be, s->sums, s->net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    vd_status st = VD_OK;
    int batch = s->net.batch;
    if (d) {
        if (!(st = vd_backend_check(be, err))) st = sum_sums(s, d, err);
        if (st) return st;
        batch *= d->comm->size;
    }
    vd_loss_compute(&s->loss, s->hp, a, batch, t, s->sums);
    vd_tensor g = flat(s->net.grads, a->total_floats);
    be->i->fill(be, &g, 0.f);
    if (d && !d->staging) {
        vd_grad_buckets_begin(&d->buckets);
        s->net.grads_final = vd_grad_buckets_ready, s->net.grads_final_ctx = &d->buckets;
    }
    vd_net_backward(&s->net, s->noise, s->loss.recon_scale, s->loss.kl_scale);
    s->net.grads_final = NULL, s->net.grads_final_ctx = NULL;
    st = vd_backend_check(be, err);
    if (!st && d) st = d->staging ? sum_staged(s, d, err) : vd_grad_buckets_finish(&d->buckets, err);
    return st;
}

vd_status vd_trainer_step(vd_trainer *tr, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int64_t t = tr->step + 1, updates = tr->step - tr->skips; /* updates applied so far */
    vd_status st = next_batch(tr, err);
    if (!st) st = vd_train_compute_dist(&tr->ses, tr->dist, t, err);
    if (st) return st;
    /* data parallel: the gradients are already summed over the ranks, bit for bit the same on
     * each, so the norm, the clip and skip decisions, the update and the EMA are too */
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
