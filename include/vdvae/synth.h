/* Inference on a trained run: evaluation (vdvae eval) and synthesis (vdvae synth:
 * reconstruction, generation, div_stats, encoding, decoding). */
#ifndef VDVAE_SYNTH_H
#define VDVAE_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/model.h"
#include "vdvae/run.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- evaluation of a trained run (vdvae eval, src/synth/eval.c) -------------------------- */

typedef enum vd_split_kind { VD_EVAL_VAL = 1, VD_EVAL_TEST = 2 } vd_split_kind;

typedef struct vd_eval_opts {
    const char *backend;           /* a name of vd_backend_names(); NULL: "cpu" */
    int threads;                   /* <= 0: the OpenMP default */
    vd_split_kind split;
    bool no_ema;                   /* the plain weights instead of the EMA weights */
    const char *samples_png;       /* where a grid of prior samples goes (NULL: none) */
    bool quiet;                    /* no summary on stdout */
    bool drop_last;                /* whole batches only, as the reference's loader (drop_last=True);
                                      false: every image, the last batch partial */
} vd_eval_opts;

typedef struct vd_eval_result {
    double nelbo, recon, kl, ssim; /* bits/dim (nats per image for binarized MNIST); SSIM */
    int images;                    /* images evaluated: the whole split unless drop_last */
    int64_t step;                  /* of the checkpoint evaluated */
} vd_eval_result;

/* NELBO of the newest checkpoint of run rd (hp: its saved config) on a whole split, with the
 * model built for train.batch_size, plus a grid of prior samples (the first
 * temperature_settings entry) written to o->samples_png. Averages are over images (a
 * partial last batch weighs its images, src/run/session.h vd_eval_sums). */
vd_status vd_eval_run(const vd_hparams *hp, const vd_rundir *rd, const vd_eval_opts *o,
                      vd_eval_result *out, vd_err *err);

/* ---- inference modes (src/synth/synth*.c) -------------------------------------------------
 * vdvae synth: docs/model.md section 6 on a trained run, with hp the run's saved config. The net
 * is built for synthesis.batch_size. Every random draw comes from Philox under run.seed, so a
 * run gives the same files at any thread count. Files, under out_dir:
 * - generation: setup-<k>-image-<i>.png for temperature setting k (i counts from 0 in each
 *   setting, as the reference), and setup-<k>-grid.png (at most 256 images).
 * - reconstruction: image-<i>.png (MoL samples), target-<i>.png when
 *   save_target_in_reconstruction, grid.png (the first batch's targets above their
 *   reconstructions) and summary.json (NELBO, its parts and SSIM, and how many images: every
 *   test image, or whole batches only with o->drop_last).
 * - div_stats: div_stats.npy, float32 [n_td, V_max]: row i holds the average KL of each
 *   variate of latent group i (top-down order) in bits, averaged over H, W and images of the
 *   first round(N * div_stats_subset_ratio) training images (the reference's subset; whole
 *   batches only); entries past a group's V are NaN. numpy.load reads it without pickle.
 * With mask_reconstruction, reconstruction reads div_stats.npy (div_stats_path, default
 * logs-<name>/synthesis-div_stats/div_stats.npy) and keeps the variates whose statistic is
 * above numpy.quantile(finite stats, 1 - variate_masks_quantile); the others take samples
 * of the prior. */

typedef struct vd_synth_opts {
    const char *checkpoint;     /* NULL: the run's newest complete checkpoint */
    bool no_ema;                /* the plain weights instead of the EMA weights */
    const char *out_dir;        /* NULL: logs-<name>/synthesis-<mode> */
    const char *div_stats_path; /* NULL: the default above */
    const char *backend;        /* a name of vd_backend_names(); NULL: "cpu" */
    int threads;                /* <= 0: the OpenMP default */
    bool quiet;                 /* no progress or summary on the terminal */
    const char *input;          /* decoding: the encodings file (NULL: the encoding mode's
                                   logs-<name>/synthesis-encoding/encodings.npz) */
    int64_t limit;              /* encoding: only the first limit training images (<= 0: all) */
    const char *dump_logits;    /* encoding, decoding: also write the output layer of every
                                   image as float32 .npy [N, R, R, out_ch] (tests) */
    bool drop_last;             /* reconstruction: whole batches only, as the reference's loader
                                   (drop_last=True); false: every test image */
} vd_synth_opts;

typedef struct vd_synth_result {
    int64_t step;               /* of the checkpoint used */
    int images;                 /* images generated or reconstructed, or used by div_stats */
    double nelbo, recon, kl, ssim; /* reconstruction: bits/dim (nats per image for binarized
                                      MNIST) and SSIM, averaged over images */
    char out_dir[VD_PATH_MAX];
} vd_synth_result;

/* - encoding: encodings.npz (docs/encodings.md) of the training set (or its first o->limit
 *   images): posterior (mean, std) of the variates the div_stats mask keeps.
 * - decoding: reads such a file (o->input) and writes <name>.png per image and grid.png. */

/* Run hp->synthesis.synthesis_mode on run rd. */
vd_status vd_synth_run(const vd_hparams *hp, const vd_rundir *rd, const vd_synth_opts *o,
                       vd_synth_result *r, vd_err *err);

/* ---- end of inference modes --------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
