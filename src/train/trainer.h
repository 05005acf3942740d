/* The trainer's state, shared by its files: the model on a backend, the optimizer's and
 * EMA's flat buffers, the data, the logs and the counters that a checkpoint carries. */
#ifndef VD_TRAIN_TRAINER_H
#define VD_TRAIN_TRAINER_H

#include <stdio.h>

#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vdvae/data.h"
#include "vdvae/tblog.h"
#include "vdvae/train.h"

typedef struct vd_trainer {
    const vd_hparams *hp;
    const vd_rundir *rd;
    const vd_train_opts *opts;
    vd_arch arch;
    vd_backend *be;
    vd_net net;
    vd_loss loss;
    float *ema, *m, *u;          /* device, arch.total_floats each */
    float *host;                 /* host staging of one flat buffer (checkpoints, images) */
    float *batch;                /* host [B, R, R, C] */
    float *sums;                 /* host [1 + n_td] */
    float *samples;              /* device [B, R, R, C]: sampled outputs */
    float *dsum;                 /* device: one float for the gradient norm */
    vd_noise *noise;             /* [n_td] */
    vd_images train_images, val_images;
    vd_loader *train_loader, *val_loader;
    vd_tb *tb_train, *tb_val;
    vd_metrics *metrics;
    int64_t step;                /* global step: updates attempted (applied + skipped) */
    int64_t skips;
    double grad_norm, lr;
    bool skipped;
    bool tty;
    double t_start, t_last_log;
    int64_t step_at_start;
    int64_t last_printed;        /* step of the last plain progress line */
    /* evaluation: the whole split (vdvae eval) or n_samples_for_validation (training) */
    bool eval_all, eval_ema;
    const char *eval_split;
    const char *samples_png;     /* where prior samples go (NULL: logs-<name>/samples-<step>.png) */
    vd_eval_result eval;
} vd_trainer;

/* One training step at global step t = tr->step + 1; advances tr->step. */
vd_status vd_trainer_step(vd_trainer *tr, vd_err *err);
/* Evaluation on the validation split with the current (non-EMA) weights, logged. */
vd_status vd_trainer_eval(vd_trainer *tr, vd_err *err);
/* Checkpoint of the current state into the run's checkpoints directory. */
vd_status vd_trainer_save(vd_trainer *tr, vd_err *err);

/* Logging: a live line on a TTY, else a plain line every log interval; the logs. */
void vd_trainer_progress(vd_trainer *tr, bool force_line);
vd_status vd_trainer_log_train(vd_trainer *tr, vd_err *err);

/* Forward, loss and backward of the batch in net->input at global step t. */
vd_status vd_trainer_compute(vd_trainer *tr, int64_t t, vd_err *err);

/* Noise streams of step t: latent group i draws from (seed, t, posterior site + i). */
void vd_trainer_noise(vd_trainer *tr, int64_t t);

#endif
