/* The trainer's state, shared by its files: the model on a backend, the optimizer's and
 * EMA's flat buffers, the data, the logs and the counters that a checkpoint carries. */
#ifndef VD_TRAIN_TRAINER_H
#define VD_TRAIN_TRAINER_H

#include <stdio.h>

#include "dist/grad_buckets.h"
#include "run/session.h"
#include "vdvae/data.h"
#include "vdvae/tblog.h"
#include "vdvae/train.h"

/* Data-parallel training (docs/model.md section 5.5): the job, the gradient all-reduce and the
 * stop every rank must agree on. */
typedef struct vd_train_dist {
    vd_comm *comm;               /* the gradient sums': the job's, or nccl */
    vd_comm *nccl;               /* NCCL over the job's ranks, ours to destroy, or NULL */
    int nccl_wish;               /* VD_NCCL: 1 NCCL always, 0 never, -1 unset (several ranks on cuda) */
    vd_grad_buckets buckets;     /* net.grads summed in buckets during backward */
    float *staging;              /* host copy of net.grads when the backend's memory is its own
                                    and the comm takes host memory (then no overlap) */
    bool want_stop;              /* in: this rank asks to stop after this step */
    bool stop;                   /* out: some rank asked; every rank stops after this step */
} vd_train_dist;

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
    vd_comm *comm;               /* the job (one process: a single comm) */
    vd_train_dist *dist;         /* NULL for one process (unless VD_NCCL=1) */
    int global_batch;            /* train.batch_size: every rank's rows together */
    bool writer;                 /* rank 0: logs, images, checkpoints and the terminal */
} vd_trainer;

/* The data-parallel part of a run (train_dist.c): open before the ranks agree (no collective
 * inside; NULL dist for one process unless VD_NCCL=1), then nccl after they have (collective:
 * the gradient sums move to NCCL where every rank is on its own GPU), close at the end. */
vd_status vd_train_dist_open(vd_trainer *tr, vd_err *err);
vd_status vd_train_dist_nccl(vd_trainer *tr, vd_err *err);
void vd_train_dist_close(vd_trainer *tr);

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
/* The same for a rank of a data-parallel job (d; NULL: vd_train_compute): the loss sums added
 * over the ranks (with the stop requests) before the loss, the loss of the global batch, and
 * the gradients summed over the ranks in buckets while backward runs; every rank then holds
 * the gradient one process computes on the whole batch. */
vd_status vd_train_compute_dist(vd_session *s, vd_train_dist *d, int64_t t, vd_err *err);

#endif
