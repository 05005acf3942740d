/* The loss from the summed terms the forward pass leaves (docs/model.md section 4): units, the
 * gamma (KL balancing) and beta schedules, the reported NELBO, and the scales the backward
 * pass applies to each term. Host arithmetic in double on a few scalars per step. */
#ifndef VD_NN_LOSS_H
#define VD_NN_LOSS_H

#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/model.h"

typedef struct vd_loss {
    double recon;       /* nats/dim: output NLL / (B * D) */
    double *kl;         /* [n_td] nats/dim per latent group */
    double *kl_avg;     /* [n_td] nats per latent element (the gamma schedule's input) */
    double *alpha;      /* [n_td] gamma weights (1 outside the schedule) */
    double kl_total;    /* sum of kl */
    double kl_weighted; /* sum alpha_i kl_i */
    double beta;
    double total;       /* recon + beta * kl_weighted: what is minimised */
    double nelbo;       /* bits/dim; nats per image for binarized MNIST */
    double recon_report, kl_report; /* the two parts of nelbo in its units */
    float recon_scale;  /* d total / d (summed output NLL) */
    float *kl_scale;    /* [n_td] d total / d (summed KL of group i) */
    int n_td;
} vd_loss;

vd_status vd_loss_init(vd_loss *l, int n_td, vd_err *err);
void vd_loss_free(vd_loss *l);

/* D of docs/model.md section 4: target_res^2 * channels (binarized MNIST: 28 * 28). */
double vd_loss_dims(const vd_hparams *hp);
double vd_beta_schedule(const vd_hparams *hp, int64_t step);

/* sums: [0] summed output NLL, [1 + i] summed KL of group i, for a batch of B. */
void vd_loss_compute(vd_loss *l, const vd_hparams *hp, const vd_arch *a, int batch, int64_t step,
                     const float *sums);

#endif
