/* Training (vdvae train) of a run (vdvae/run.h) and the training-step benchmark (vdvae
 * bench). */
#ifndef VDVAE_TRAIN_H
#define VDVAE_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "vdvae/config.h"
#include "vdvae/run.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- training (vdvae train) -------------------------------------------------------------- */

typedef struct vd_train_opts {
    const char *backend;   /* a name of vd_backend_names(); NULL: "cpu" */
    int threads;           /* <= 0: the OpenMP default */
    int64_t max_steps;     /* stop after this many steps in this invocation (0: no limit) */
    double max_seconds;    /* stop after this much training time (0: no limit) */
    int64_t log_every;     /* plain progress line interval when stdout is not a terminal */
    bool quiet;            /* no progress output */
} vd_train_opts;

/* Train the run rd (opened by vd_rundir_open) until train.total_train_steps, a limit of
 * opts, or SIGINT/SIGTERM; resumes from the newest complete checkpoint of the run. Ends with
 * a checkpoint of the last step, unless train.skip_warning_after updates in a row were just
 * skipped; train.skip_stop_after in a row end it with VD_ERR_INTERNAL and no checkpoint.
 * *stopped_early says a limit or signal ended it. The caller holds the run's lock
 * (vd_rundir_lock). */
vd_status vd_train_run(const vd_hparams *hp, const vd_rundir *rd, const vd_train_opts *opts,
                       bool *stopped_early, vd_err *err);

/* ---- the training-step benchmark (vdvae bench) ---------------------------------------- */

typedef struct vd_bench_opts {
    int batch, steps, threads; /* threads <= 0: the OpenMP default */
    const char *backend;       /* a name of vd_backend_names(); NULL: "cpu" */
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
    double step_seconds;       /* median forward + loss + backward time, to the step's end on
                                * the device for an asynchronous backend */
    double images_per_second;
    double gflops;             /* training FLOPs (3x forward) per second */
    double fwd_gflop_per_image;
    double peak_rss_bytes;     /* of the whole process */
    double device_peak_bytes;  /* most backend device memory held at once (cuda: its own
                                * allocations, scratch and workspaces); 0: not tracked (CPU) */
    double arena_bytes;        /* the activation arena at this batch */
    double loss;               /* the last step's loss, a sanity figure */
    double mean_step_seconds;  /* the profile's reference: its times are means too */
    char precision_note[256];  /* set when this CPU computes run.precision slower than fp32 */
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
