/* Loss terms, schedules and backward scales from the forward pass's sums. */
#include "nn/loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

vd_status vd_loss_init(vd_loss *l, int n_td, vd_err *err) {
    memset(l, 0, sizeof *l);
    l->n_td = n_td;
    l->kl = calloc((size_t)n_td, sizeof *l->kl);
    l->kl_avg = calloc((size_t)n_td, sizeof *l->kl_avg);
    l->alpha = calloc((size_t)n_td, sizeof *l->alpha);
    l->kl_scale = calloc((size_t)n_td, sizeof *l->kl_scale);
    if (!l->kl || !l->kl_avg || !l->alpha || !l->kl_scale) {
        vd_loss_free(l);
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    return VD_OK;
}

void vd_loss_free(vd_loss *l) {
    free(l->kl);
    free(l->kl_avg);
    free(l->alpha);
    free(l->kl_scale);
    memset(l, 0, sizeof *l);
}

double vd_loss_dims(const vd_hparams *hp) {
    if (hp->data.dataset_source == VD_DATA_BINARIZED_MNIST) return 28.0 * 28.0 * hp->data.channels;
    return (double)hp->data.target_res * hp->data.target_res * hp->data.channels;
}

/* The reference divides by (start + steps) in the linear schedule; kept on purpose. */
double vd_beta_schedule(const vd_hparams *hp, int64_t step) {
    const vd_hp_loss *L = &hp->loss;
    switch (L->variation_schedule) {
    case VD_BETA_NONE: return 1.0;
    case VD_BETA_LINEAR: {
        double b = (double)(step - L->vae_beta_anneal_start) / (double)(L->vae_beta_anneal_start + L->vae_beta_anneal_steps);
        return b < L->vae_beta_min ? L->vae_beta_min : b > 1.0 ? 1.0 : b;
    }
    case VD_BETA_LOGISTIC:
        return 1.0 / (1.0 + exp(-L->vae_beta_growth_rate * (double)(step - L->vae_beta_activation_steps)));
    }
    return 1.0;
}

static void gamma_weights(vd_loss *l, const vd_hparams *hp, int64_t step) {
    bool on = hp->loss.use_gamma_schedule && step <= hp->loss.gamma_max_steps;
    double total = 0;
    for (int i = 0; i < l->n_td; i++) total += hp->loss.scaled_gamma ? l->kl_avg[i] : l->kl[i];
    for (int i = 0; i < l->n_td; i++) {
        double a_hat = hp->loss.scaled_gamma ? l->kl_avg[i] : l->kl[i];
        l->alpha[i] = on ? l->n_td * a_hat / total : 1.0;
    }
}

void vd_loss_compute(vd_loss *l, const vd_hparams *hp, const vd_arch *a, int batch, int64_t step,
                     const float *sums) {
    double D = vd_loss_dims(hp), BD = (double)batch * D;
    l->recon = sums[0] / BD;
    l->kl_total = 0;
    for (int i = 0, g = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind != VD_BLOCK_DOWN) continue;
        double elems = (double)batch * b->n_variates * b->res_out * b->res_out;
        l->kl[g] = sums[1 + g] / BD;
        l->kl_avg[g] = sums[1 + g] / elems;
        l->kl_total += l->kl[g++];
    }
    gamma_weights(l, hp, step);
    l->beta = vd_beta_schedule(hp, step);
    l->kl_weighted = 0;
    for (int i = 0; i < l->n_td; i++) {
        l->kl_weighted += l->alpha[i] * l->kl[i];
        l->kl_scale[i] = (float)(l->beta * l->alpha[i] / BD);
    }
    l->total = l->recon + l->beta * l->kl_weighted;
    l->recon_scale = (float)(1.0 / BD);
    bool nats = hp->data.dataset_source == VD_DATA_BINARIZED_MNIST;
    l->recon_report = nats ? l->recon * D : l->recon / M_LN2;
    l->kl_report = nats ? l->kl_total * D : l->kl_total / M_LN2;
    l->nelbo = l->recon_report + l->kl_report;
}
