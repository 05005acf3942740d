/* The session under training, evaluation, benchmarks and synthesis: a backend chosen by name
 * (the one place backends are created), the architecture and the network built for a batch,
 * the loss, the buffers every loop over batches needs, and weights loaded from a checkpoint.
 * Evaluation over a split and prior samples are here too, since training and inference both
 * report them. */
#ifndef VD_RUN_SESSION_H
#define VD_RUN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/ops.h"
#include "dist/comm.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vdvae/checkpoint.h"
#include "vdvae/data.h"
#include "vdvae/run.h"

/* A backend by name ("cpu", "cpu_ref"; NULL: vd_backend_default()), wrapped by the op profiler when profile
 * is set, computing its convolutions in precision p. An unknown name is VD_ERR_INVALID naming
 * the backends this build has. */
vd_status vd_backend_open(const char *name, int threads, vd_precision p, bool profile,
                          vd_backend **out, vd_err *err);

typedef struct vd_session_opts {
    const char *backend;   /* NULL: vd_backend_default() */
    int threads;           /* <= 0: the OpenMP default */
    bool profile;          /* time every op (vdvae bench --profile) */
    int batch;             /* the net's batch size */
    bool keep_internals;   /* no activation checkpointing: inference reads block internals */
    bool quiet;            /* no notes on stdout */
} vd_session_opts;

typedef struct vd_session {
    const vd_hparams *hp;
    vd_arch arch;
    vd_backend *be;
    vd_net net;
    vd_loss loss;
    int out_res;           /* side of output images (28 for binarized MNIST) */
    int64_t img_floats;    /* B * R * R * C: one input batch */
    int64_t out_floats;    /* B * out_res^2 * C: one batch of output images */
    float *batch;          /* host [B, R, R, C] */
    float *host;           /* host [2, B, max(R, out_res)^2, C]: images downloaded in pairs */
    float *samples;        /* device [B, max(R, out_res)^2, C]: sampled outputs */
    float *sums;           /* host [1 + n_td]: the forward's NLL and KL sums */
    vd_noise *noise;       /* [n_td] */
    /* Data parallel over rows (src/run/session_rows.c; NULL comm or one rank: not sharded):
     * the net holds this rank's rows of each global batch, drawn with the noise those rows
     * have in one process's batch. */
    vd_comm *comm;
    float **row_noise;     /* device [n_td]: the rows' latent noise, given to the ops */
    float *row_out_noise;  /* device: the rows' uniforms of the output sampler */
    float *row_host;       /* host staging of one of those */
} vd_session;

vd_status vd_session_open(vd_session *s, const vd_hparams *hp, const vd_session_opts *o, vd_err *err);
void vd_session_close(vd_session *s);

/* The checkpoint to read: `explicit_path` when given, else the newest complete one of the
 * run (VD_ERR_INVALID "no checkpoint in ...: train the run first" when there is none). */
vd_status vd_session_checkpoint(const vd_rundir *rd, const char *explicit_path, char *path,
                                size_t cap, vd_err *err);

/* The EMA (or, with plain, the trained) weights of checkpoint `path` into the net's
 * parameters; *state (may be NULL) receives its counters. */
vd_status vd_session_load_weights(vd_session *s, const char *path, bool plain, vd_ckpt_state *state,
                                  vd_err *err);

/* Upload the host batch s->batch as the net's input. */
void vd_session_upload_batch(vd_session *s);

/* noise[i] for latent group i (n_td of them): Philox under run.seed at stream (at, site + i),
 * so a draw depends on where it is used, never on threads or on what ran before. */
void vd_session_noise(const vd_session *s, vd_noise *noise, uint32_t at, uint32_t site);

/* ---- data parallel over rows (src/run/session_rows.c) ------------------------------------
 * With a comm of N > 1 ranks, every global batch of B images is split by rows as the loader
 * shards it (rank r, local row j = global row j * N + r: torch's DistributedSampler order),
 * each rank's net running B / N of them. A random draw of the model is indexed by the element's
 * place in the batch, so the rows draw the noise of their global rows: given to the ops,
 * filled from the same Philox streams; the loss sums are summed over the ranks. Then N ranks
 * compute what one process computes on the whole batch, up to the order of float sums. */

/* Shard the session's rows over comm (kept, not owned); nothing to do for one rank. */
vd_status vd_session_shard_rows(vd_session *s, vd_comm *comm, vd_err *err);
/* Ranks sharing each batch: 1 when not sharded. */
int vd_session_world(const vd_session *s);
/* vd_session_noise for the rows this rank holds of a global batch (its plain draws when not
 * sharded). */
void vd_session_noise_rows(vd_session *s, vd_noise *noise, uint32_t at, uint32_t site);
/* The output sampler's noise at stream (at, site) for this rank's rows (vd_net_sample_output). */
void vd_session_output_noise_rows(vd_session *s, uint32_t at, uint32_t site, vd_noise *out);
/* A digest of n device buffers of arch.total_floats floats (the weights a rank holds), through
 * s->host-sized staging of its own. */
vd_status vd_session_digest(vd_session *s, const float *const *bufs, int n, uint64_t *digest, vd_err *err);

/* ---- evaluation over a split (src/run/evaluate.c) ---------------------------------------- */

/* Averages are sum / batches (ssim: / images). A batch of k images adds k/B times its
 * per-image means and k/B to batches, so the averages are over images, and over a split of
 * whole batches the same numbers as the plain mean of the per-batch means. */
typedef struct vd_eval_sums {
    double recon, kl, nelbo, ssim; /* sums over batches, weighted as above (ssim: over images) */
    double *kl_blocks;             /* [n_td] per latent group, summed over batches likewise */
    double batches;                /* images / B: a partial batch counts its share */
    int images;
} vd_eval_sums;

/* Add the batch of `count` images whose loss s->loss holds (kl_blocks too when not NULL), as
 * above; the SSIM sum is the caller's. */
void vd_eval_sums_add(vd_eval_sums *e, const vd_session *s, int count);

/* The first n_batches of loader (rewound first) through the net with the weights it holds,
 * at loss step `step`: NELBO, its parts, each group's KL and SSIM of MoL samples at
 * temperature 1 against the inputs. A partial last batch (a loader without drop_last) runs
 * on its real images only (vd_net_set_batch); the net is back at its full batch afterwards.
 * Noise: (seed, batch index, eval sites), the same every time, and for an image the same
 * whatever the size of its batch. s->batch keeps the last batch's images (and zeros past
 * them). Sharded by rows (vd_session_shard_rows; whole batches, the loader sharded alike):
 * each rank runs its rows with their noise and the sums are added over the ranks, on every
 * rank. Free sums->kl_blocks with free(). */
vd_status vd_session_evaluate(vd_session *s, vd_loader *loader, int64_t n_batches, int64_t step,
                              vd_eval_sums *sums, vd_err *err);

/* The same over the ranks of comm by whole batches (vdvae eval): rank r runs batches r, r + N,
 * ... of the loader (rank 0's world, not sharded) with the session's full batch, and every rank
 * adds up every batch in order: the very sums one process gets, on every rank. */
vd_status vd_session_evaluate_split(vd_session *s, vd_comm *comm, vd_loader *loader,
                                    int64_t n_batches, int64_t step, vd_eval_sums *sums, vd_err *err);

/* MoL samples of the last evaluated batch at temperature 1 (its first n images, n at most
 * the images it had, into host out [n, R, R, C]), drawn as the evaluation draws its first
 * batch's. */
void vd_session_reconstructions(vd_session *s, int n, float *out);

/* n prior samples (n <= batch) with the weights at `params` (device; NULL: the net's):
 * temperature_settings[0] per latent group, output_temperature for the output layer, noise
 * from (seed, step); into host out [n, out_res, out_res, C]. */
vd_status vd_session_prior_samples(vd_session *s, const float *params, int64_t step, int n,
                                   float *out, vd_err *err);

/* A grid of n host images [-1, 1] ({0, 1} binarized) in `cols` columns (0: vd_image_grid's
 * choice) as 8-bit pixels in *grid [gh, gw, C]; free with free(). */
vd_status vd_session_grid(const vd_session *s, const float *x, int n, int res, int cols, uint8_t **grid,
                          int *gh, int *gw, vd_err *err);

/* The summary table of an evaluation on stdout. */
void vd_eval_print(const vd_session *s, const char *split, int64_t step, bool ema, const vd_eval_sums *e);

#endif
