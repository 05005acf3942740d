/* The state that the inference modes share (src/synth/): the session (the model on a backend
 * with the checkpoint's weights, batch buffers), and helpers for files and progress. */
#ifndef VD_SYNTH_INTERNAL_H
#define VD_SYNTH_INTERNAL_H

#include <stdbool.h>

#include "run/session.h"
#include "vdvae/synth.h"

typedef struct vd_synth {
    const vd_hparams *hp;
    const vd_rundir *rd;
    const vd_synth_opts *o;
    vd_session ses;        /* the model built for synthesis.batch_size, its batch buffers */
    vd_noise *prior_noise; /* [n_td] */
    float *temps;          /* [n_td] */
    uint8_t *u8;           /* [B, out_res, out_res, C] */
    char out_dir[VD_PATH_MAX];
    int64_t step;
    bool tty;
    double t_start;
    vd_comm *comm;         /* the job: under mpirun the ranks share the batches */
    bool writer;           /* rank 0 (or the only process): files, progress, summaries */
} vd_synth;

/* A mode's batches 0..n-1 over the ranks, whole batches each (src/synth/synth_batches.c):
 * compute(j) runs on the rank that owns batch j (j mod N) and leaves what the batch gives in a
 * record of rec_bytes; consume(j, rec) then runs on rank 0 for every batch in order, as one
 * process runs compute and consume in turn, so the files and sums are those of one process.
 * A failure on any rank stops every rank with it. */
typedef vd_status (*vd_synth_compute_fn)(vd_synth *s, int64_t j, void *rec, void *ctx, vd_err *err);
typedef vd_status (*vd_synth_consume_fn)(vd_synth *s, int64_t j, const void *rec, void *ctx, vd_err *err);
vd_status vd_synth_batches(vd_synth *s, int64_t n, size_t rec_bytes, vd_synth_compute_fn compute,
                           vd_synth_consume_fn consume, void *ctx, vd_err *err);

vd_status vd_synth_generation(vd_synth *s, vd_synth_result *r, vd_err *err);
vd_status vd_synth_reconstruction(vd_synth *s, vd_synth_result *r, vd_err *err);
vd_status vd_synth_div_stats(vd_synth *s, vd_synth_result *r, vd_err *err);
vd_status vd_synth_encoding(vd_synth *s, vd_synth_result *r, vd_err *err);
vd_status vd_synth_decoding(vd_synth *s, vd_synth_result *r, vd_err *err);

/* The encodings file of the run: encoding writes it, decoding reads it unless o->input. */
void vd_synth_encodings_path(const vd_synth *s, char *buf, size_t cap);

/* Device masks [n_td][V] (0/1) from div_stats.npy and variate_masks_quantile; free with
 * vd_synth_masks_free. *kept counts the variates kept. */
vd_status vd_synth_load_masks(vd_synth *s, float ***masks, int *kept, vd_err *err);
void vd_synth_masks_free(vd_synth *s, float **masks);

/* Progress over batches: a live bar on stderr when it is a terminal, else a line every
 * tenth of the way; nothing when quiet. */
void vd_synth_progress(vd_synth *s, const char *what, int64_t done, int64_t total);

/* Images of float [-1, 1] ({0, 1} for binarized MNIST) host pixels to PNG files:
 * one image, and a grid of n. */
vd_status vd_synth_write_png(vd_synth *s, const char *path, const float *x, int res, vd_err *err);
vd_status vd_synth_write_grid(vd_synth *s, const char *path, const float *x, int n, int res, vd_err *err);

#endif
