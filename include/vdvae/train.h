/* Training runs. A run is named by [run] name and owns logs-<name>/ (its saved
 * hparams-<name>.cfg, logs) and checkpoints-<name>/ under a base directory, as the reference
 * does: the first run saves the config, later runs of that name use the saved one. */
#ifndef VDVAE_TRAIN_H
#define VDVAE_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "vdvae/config.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VD_PATH_MAX 4096

typedef struct vd_rundir {
    char logs_dir[VD_PATH_MAX];        /* <base>/logs-<name> */
    char checkpoints_dir[VD_PATH_MAX]; /* <base>/checkpoints-<name> */
    char hparams_path[VD_PATH_MAX];    /* <base>/logs-<name>/hparams-<name>.cfg */
    bool resumed;                      /* the saved config existed and was used */
} vd_rundir;

/* A run name must be usable as one path component. */
vd_status vd_run_name_check(const char *name, vd_err *err);

/* Fill the paths of run `name` under base_dir ("." when NULL). */
vd_status vd_rundir_paths(vd_rundir *rd, const char *base_dir, const char *name, vd_err *err);

/* Open the run that `given` names. A new run: create logs-<name>/ and save `given` there.
 * An existing run: *effective is the saved config with `overrides` ("section.key=value")
 * applied (and saved back when they change it); `differ` receives the keys where `given`
 * differs from it (", "-separated, empty when none). */
vd_status vd_rundir_open(vd_rundir *rd, const char *base_dir, const vd_hparams *given,
                         const char *const *overrides, int n_overrides, vd_hparams *effective,
                         char *differ, size_t differ_cap, vd_err *err);

/* Delete logs-<name>/ and checkpoints-<name>/ under base_dir; *found says whether either
 * existed. */
vd_status vd_rundir_delete(const char *base_dir, const char *name, bool *found, vd_err *err);

typedef enum vd_split_kind { VD_EVAL_VAL = 1, VD_EVAL_TEST = 2 } vd_split_kind;

/* ---- training (vdvae train) -------------------------------------------------------------- */

typedef struct vd_train_opts {
    const char *backend;   /* "cpu" (default) or "cpu_ref" */
    int threads;           /* <= 0: the OpenMP default */
    int64_t max_steps;     /* stop after this many steps in this invocation (0: no limit) */
    double max_seconds;    /* stop after this much training time (0: no limit) */
    int64_t log_every;     /* plain progress line interval when stdout is not a terminal */
    bool quiet;            /* no progress output */
} vd_train_opts;

/* Train the run rd (opened by vd_rundir_open) until train.total_train_steps, a limit of
 * opts, or SIGINT/SIGTERM; resumes from the newest complete checkpoint of the run. Always
 * ends with a checkpoint of the last step. *stopped_early says a limit or signal ended it. */
vd_status vd_train_run(const vd_hparams *hp, const vd_rundir *rd, const vd_train_opts *opts,
                       bool *stopped_early, vd_err *err);

/* ---- evaluation of a trained run (vdvae eval) -------------------------------------------- */

typedef struct vd_eval_result {
    double nelbo, recon, kl, ssim; /* bits/dim (nats per image for binarized MNIST); SSIM */
    int images;
    int64_t step;                  /* of the checkpoint evaluated */
} vd_eval_result;

/* NELBO of the newest checkpoint of run rd on a whole split (EMA weights unless no_ema),
 * plus a grid of prior samples (temperature 1) written to png_path when not NULL. */
vd_status vd_train_evaluate(const vd_hparams *hp, const vd_rundir *rd, const vd_train_opts *opts,
                            vd_split_kind split, bool no_ema, const char *png_path,
                            vd_eval_result *out, vd_err *err);

/* ---- the training-step benchmark (vdvae bench) ---------------------------------------- */

typedef struct vd_bench_opts {
    int batch, steps, threads; /* threads <= 0: the OpenMP default */
    const char *backend;       /* "cpu" or "cpu_ref" */
    bool profile;              /* time every op family (vd_bench_result.families) */
} vd_bench_opts;

#define VD_BENCH_FAMILIES_MAX 64

/* One op family's share of a timed step (averaged over the timed steps). */
typedef struct vd_bench_family {
    char name[40];             /* "conv fwd 3x3", "conv bwd-weights 2x2 s2", "SiLU bwd", ... */
    double calls, seconds;     /* per step */
    double flops;              /* per step; 0 for families that are not convs */
    bool is_conv;
} vd_bench_family;

#define VD_BENCH_SCOPES_MAX 64

/* One block group's share ("down 32x32": the blocks of a kind at a resolution), per step:
 * fwd, recompute (activation checkpointing) and bwd time and conv FLOPs. */
typedef struct vd_bench_scope {
    char name[40];
    double blocks;             /* blocks in the group (entries of the fwd phase per step) */
    double seconds[3], flops[3]; /* [fwd, recompute, bwd] per step */
} vd_bench_scope;

typedef struct vd_bench_result {
    double step_seconds;       /* median forward + loss + backward time */
    double images_per_second;
    double gflops;             /* training FLOPs (3x forward) per second */
    double fwd_gflop_per_image;
    double peak_rss_bytes;     /* of the whole process */
    double arena_bytes;        /* the activation arena at this batch */
    double loss;               /* the last step's loss, a sanity figure */
    double mean_step_seconds;  /* the profile's reference: its times are means too */
    int n_families;            /* with opts.profile: families, slowest first */
    vd_bench_family families[VD_BENCH_FAMILIES_MAX];
    int n_scopes;              /* with opts.profile: block groups, in network order */
    vd_bench_scope scopes[VD_BENCH_SCOPES_MAX];
} vd_bench_result;

vd_status vd_bench_run(const vd_hparams *hp, const vd_bench_opts *o, vd_bench_result *r, vd_err *err);

#ifdef __cplusplus
}
#endif
#endif
