/* Runs: what training and inference share. A run is named by [run] name and owns
 * logs-<name>/ (its saved hparams-<name>.cfg, logs) and checkpoints-<name>/ under a base
 * directory, as the reference does: the first run saves the config, later runs of that name
 * use the saved one. Also the backends by name and SSIM, the image metric both report. */
#ifndef VDVAE_RUN_H
#define VDVAE_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "vdvae/config.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef VD_PATH_MAX
#define VD_PATH_MAX 4096
#endif

/* ---- run directories (src/run/rundir.c) -------------------------------------------------- */

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

/* An existing run for reading (eval, synth): the paths of the run `name` under base_dir and
 * its saved config with `overrides` applied in *hp (not saved); VD_ERR_INVALID naming the
 * missing file when the run was never trained. */
vd_status vd_rundir_read(vd_rundir *rd, const char *base_dir, const char *name,
                         const char *const *overrides, int n_overrides, vd_hparams *hp, vd_err *err);

/* Delete logs-<name>/ and checkpoints-<name>/ under base_dir; *found says whether either
 * existed. */
vd_status vd_rundir_delete(const char *base_dir, const char *name, bool *found, vd_err *err);

/* ---- the run lock (src/run/rundir.c) -------------------------------------------------------
 * One writer per run: training (and vdvae reset) holds an exclusive flock(2) on
 * logs-<name>/.lock, with its pid written inside so that a second writer can name it. The
 * kernel drops the lock when the process ends, however it ends, so no stale lock survives a
 * crash. Readers (eval, synth) take none. The ranks of one data-parallel job are one writer:
 * one of them takes it. flock locks belong to an open file description, so a second
 * vd_rundir_lock in the same process fails as one in another process does. */

typedef struct vd_run_lock {
    int fd; /* the locked file, -1 when none is held */
} vd_run_lock;

#define VD_RUN_LOCK_NONE ((vd_run_lock){.fd = -1})

/* Take run rd's writer lock (paths from vd_rundir_paths), creating logs-<name>/ when missing;
 * on success the lock file holds our pid. VD_ERR_INVALID naming the holder's pid when another
 * writer holds it; VD_ERR_IO when the file cannot be made. Take it before writing anything of
 * the run, vd_rundir_open's config save included. */
vd_status vd_rundir_lock(const vd_rundir *rd, vd_run_lock *lock, vd_err *err);

/* Release a lock taken by vd_rundir_lock (no-op for VD_RUN_LOCK_NONE); the file stays. */
void vd_rundir_unlock(vd_run_lock *lock);

/* ---- backends by name (src/run/backends.c) ----------------------------------------------- */

/* The backends this build has, ", "-separated ("cpu, cpu_ref"), for help texts and errors. */
const char *vd_backend_names(void);
/* The backend used when none is named: "cpu" where the build has it, else "cpu_ref". */
const char *vd_backend_default(void);

/* ---- SSIM (src/run/ssim.c) ----------------------------------------------------------------
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

#ifdef __cplusplus
}
#endif
#endif
