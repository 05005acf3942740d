/* Synthesis (reconstruction, generation, div_stats, encoding) and its image metrics.
 * Sections are owned by different parts of src/synth/; add new ones below, not inside. */
#ifndef VDVAE_SYNTH_H
#define VDVAE_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/model.h"
#include "vdvae/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SSIM (src/synth/ssim.c) ------------------------------------------------------------
 * Structural similarity as the reference's reconstruction mode reports it: an 11x11
 * Gaussian window (sigma 1.5, normalised to sum 1) applied per channel with zero padding
 * of 5, so the map has the image's size and border pixels see a window of weight < 1;
 * k1 = 0.01, k2 = 0.03, max value 255. The map is averaged over pixels, then channels.
 *
 * Images are NHWC float, already on the 0..255 scale: map the model's [-1, 1] values with
 * v * 127.5 + 127.5 first. Computed in double; any h, w >= 1 (also smaller than the
 * window); c >= 1. Allocation-free and thread-safe. The reference reports 0 for
 * binarized_mnist; that choice is the caller's. */

/* SSIM of one h x w x c image pair, in [-1, 1] (1 when a == b). */
double vd_ssim_image(const float *a, const float *b, int h, int w, int c);

/* The SUM over n image pairs of vd_ssim_image: the reference sums per-image SSIM and divides
 * by the global batch size, so callers divide by theirs. Parallel over images (OpenMP),
 * with a result independent of the thread count. */
double vd_ssim_batch(const float *a, const float *b, int n, int h, int w, int c);

/* ---- end of SSIM ------------------------------------------------------------------------ */

/* ---- inference modes (src/synth/synth*.c) -------------------------------------------------
 * vdvae synth: MODEL.md section 6 on a trained run, with hp the run's saved config. The net
 * is built for synthesis.batch_size. Every random draw comes from Philox under run.seed, so a
 * run gives the same files at any thread count. Files, under out_dir:
 * - generation: setup-<k>-image-<i>.png for temperature setting k (i counts from 0 in each
 *   setting, as the reference), and setup-<k>-grid.png (at most 256 images).
 * - reconstruction: image-<i>.png (MoL samples), target-<i>.png when
 *   save_target_in_reconstruction, grid.png (the first batch's targets above their
 *   reconstructions) and summary.json (NELBO, its parts and SSIM).
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
    const char *backend;        /* "cpu" (default) or "cpu_ref" */
    int threads;                /* <= 0: the OpenMP default */
    bool quiet;                 /* no progress or summary on the terminal */
    const char *input;          /* decoding: the encodings file (NULL: the encoding mode's
                                   logs-<name>/synthesis-encoding/encodings.npz) */
    int64_t limit;              /* encoding: only the first limit training images (<= 0: all) */
    const char *dump_logits;    /* encoding, decoding: also write the output layer of every
                                   image as float32 .npy [N, R, R, out_ch] (tests) */
} vd_synth_opts;

typedef struct vd_synth_result {
    int64_t step;               /* of the checkpoint used */
    int images;                 /* images generated or reconstructed, or used by div_stats */
    double nelbo, recon, kl, ssim; /* reconstruction: bits/dim (nats per image for binarized
                                      MNIST), averaged over batches; SSIM over images */
    char out_dir[VD_PATH_MAX];
} vd_synth_result;

/* - encoding: encodings.npz (docs/encodings.md) of the training set (or its first o->limit
 *   images): posterior (mean, std) of the variates the div_stats mask keeps.
 * - decoding: reads such a file (o->input) and writes <name>.png per image and grid.png. */

/* Run hp->synthesis.synthesis_mode on run rd. */
vd_status vd_synth_run(const vd_hparams *hp, const vd_rundir *rd, const vd_synth_opts *o,
                       vd_synth_result *r, vd_err *err);

/* The per-latent-group temperatures (top-down order, a->n_td of them) of one
 * temperature_settings entry: a level's value is shared by its blocks; ('linear', a, b) gives
 * level i the value a + (b - a) i / n_levels, n_levels = len(down_strides). */
void vd_synth_latent_temps(const vd_arch *a, int n_levels, const vd_temp_setting *t, float *temps);

/* ---- end of inference modes --------------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
