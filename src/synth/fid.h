/* vdvae fid's drivers: images (a dataset, a folder) or samples of a trained run streamed
 * through the FID Inception network into pool3 statistics and an Inception Score, with a
 * progress bar; nothing is written but what the caller saves.
 *
 * Under mpirun (vd_comm_world of several ranks) both drivers are collective: every rank calls
 * them with the same arguments, the batches (of images, or of the sampler) are shared in
 * rounds of N (rank r takes batches r, r + N, ...), and each batch's pool3 features and logits
 * are gathered to rank 0, which takes them into the statistics in batch order: rank 0's result
 * and logits file are those of one process bit for bit. Rank 0 alone shows progress and writes
 * dump_logits; the other ranks return VD_OK with no statistics (images 0). A failure on any
 * rank (weights, checkpoint, different images or config on some rank) is every rank's. */
#ifndef VD_SYNTH_FID_H
#define VD_SYNTH_FID_H

#include <stdbool.h>
#include <stdint.h>

#include "fid/fid_stats.h"
#include "vdvae/config.h"
#include "vdvae/data.h"
#include "vdvae/run.h"

#define VD_FID_IS_SPLITS 10 /* torch-fidelity's and the original Inception Score's */

typedef struct vd_fid_opts {
    const char *weights;   /* the network's safetensors (tools/fid_weights.py) */
    const char *backend;   /* NULL: vd_backend_default() */
    int threads;           /* <= 0: the OpenMP default */
    int batch;             /* images through the network at once */
    bool quiet;            /* no progress on stderr */
    const char *label;     /* what the progress bar names */
    const char *dump_logits; /* tests: also write every image's logits there, float32 .npy
                                [images, 1008] (NULL: not) */
} vd_fid_opts;

typedef struct vd_fid_result {
    vd_fid_stats stats;    /* pool3 mean and covariance; free with vd_fid_stats_free */
    double is_mean, is_std; /* Inception Score over VD_FID_IS_SPLITS splits; NaN with fewer images */
    int64_t images;
    double seconds;        /* from the first image in to the statistics out */
    int64_t step;          /* samples: the step of the checkpoint sampled */
    char checkpoint[VD_PATH_MAX]; /* samples: the checkpoint sampled */
} vd_fid_result;

/* The statistics and Inception Score of every image of im. */
vd_status vd_fid_of_images(const vd_images *im, const vd_fid_opts *o, vd_fid_result *r, vd_err *err);

/* The same of n samples of run rd (hp: its saved config) from the EMA weights of its newest
 * checkpoint, drawn in batches of synthesis.batch_size at latent temperature `temperature`
 * (output layer: synthesis.output_temperature), quantised to 8 bits as their PNG files would
 * be. Batch j draws Philox streams (j, VD_SITE_FID_PRIOR + group) and (j, VD_SITE_FID_OUTPUT)
 * under run.seed, so the samples do not depend on threads or on --batch. */
vd_status vd_fid_of_samples(const vd_hparams *hp, const vd_rundir *rd, int64_t n, double temperature,
                            const vd_fid_opts *o, vd_fid_result *r, vd_err *err);

#endif
