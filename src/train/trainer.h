/* The trainer's state, shared by its files: the model on a backend, the optimizer's and
 * EMA's flat buffers, the data, the logs and the counters that a checkpoint carries. */
#ifndef VD_TRAIN_TRAINER_H
#define VD_TRAIN_TRAINER_H

#include <stdio.h>

#include "run/session.h"
#include "vdvae/data.h"
#include "vdvae/tblog.h"
#include "vdvae/train.h"

typedef struct vd_trainer {
    const vd_hparams *hp;
    const vd_rundir *rd;
    const vd_train_opts *opts;
    vd_session ses;              /* the model at train.batch_size, its batch buffers */
    float *ema, *m, *u;          /* device, arch.total_floats each */
    float *flat_host;            /* host staging of one flat buffer (checkpoints, histograms) */
    float *dsum;                 /* device: one float for the gradient norm */
    vd_images train_images, val_images;
    vd_loader *train_loader, *val_loader;
    vd_tb *tb_train, *tb_val;
    vd_metrics *metrics;
    int64_t step;                /* global step: updates attempted (applied + skipped) */
    int64_t skips;
    int64_t skip_streak;         /* skipped updates in a row up to this step (not checkpointed) */
    double grad_norm, lr;
    bool skipped;
    bool tty;
    double t_start, t_last_log;
    int64_t step_at_start;
    int64_t last_printed;        /* step of the last plain progress line */
} vd_trainer;

/* One training step at global step t = tr->step + 1; advances tr->step. */
vd_status vd_trainer_step(vd_trainer *tr, vd_err *err);
/* Evaluation on n_samples_for_validation validation images with the current (non-EMA)
 * weights, logged, and prior samples of the EMA weights. */
vd_status vd_trainer_eval(vd_trainer *tr, vd_err *err);
/* Checkpoint of the current state into the run's checkpoints directory. */
vd_status vd_trainer_save(vd_trainer *tr, vd_err *err);

/* Logging: a live line on a TTY, else a plain line every log interval; the logs. */
void vd_trainer_progress(vd_trainer *tr, bool force_line);
vd_status vd_trainer_log_train(vd_trainer *tr, vd_err *err);

/* Forward, loss and backward of the batch in the net's input at global step t (the gradients
 * are zeroed first); the trainer's step and the benchmark's. */
vd_status vd_train_compute(vd_session *s, int64_t t, vd_err *err);

#endif
