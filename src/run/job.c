/* What the ranks of a data-parallel job settle before any of them starts: the run directory
 * (rank 0 takes the writer's lock and opens it; the others read it) and the config, which must
 * be the same on every rank. With one process these are vd_rundir_lock and vd_rundir_open. */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/agree.h"
#include "run/job.h"

vd_status vd_hparams_agree(vd_comm *c, const vd_hparams *hp, vd_err *err) {
    if (c->size <= 1) return VD_OK;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_hparams_write(hp, f);
    if (fclose(f) != 0 && !st) st = VD_ERR_NOMEM;
    if (st) {
        free(text);
        return vd_errorf(err, st, "cannot write the config to compare it between ranks");
    }
    st = vd_dist_agree_text(c, "the effective config", text, err);
    free(text);
    return st;
}

/* A rank other than 0, once rank 0 has opened the run: the config it saved when this rank sees
 * the same directory, else (a host of its own, a new run) the given one. Never writes. */
static vd_status read_as_follower(vd_rundir *rd, const char *base_dir, const vd_hparams *given,
                                  const char *const *overrides, int n_overrides, vd_hparams *effective,
                                  char *differ, size_t differ_cap, vd_err *err) {
    vd_status st = vd_rundir_paths(rd, base_dir, given->run.name, err);
    if (st) return st;
    if (access(rd->hparams_path, F_OK) != 0) {
        memcpy(effective, given, sizeof *effective);
        return VD_OK;
    }
    st = vd_rundir_read(rd, base_dir, given->run.name, overrides, n_overrides, effective, err);
    if (!st && differ) vd_hparams_diff(given, effective, differ, differ_cap);
    return st;
}

vd_status vd_rundir_open_job(vd_comm *c, vd_rundir *rd, const char *base_dir, const vd_hparams *given,
                             const char *const *overrides, int n_overrides, vd_hparams *effective,
                             char *differ, size_t differ_cap, vd_run_lock *lock, vd_err *err) {
    vd_status st = VD_OK;
    if (differ && differ_cap) differ[0] = 0;
    if (c->rank == 0) {
        /* the lock comes before vd_rundir_open, which may save --set overrides into the run's
         * config, and is held until training ends: one writer per run, the job's rank 0 */
        st = vd_rundir_paths(rd, base_dir, given->run.name, err);
        if (!st) st = vd_rundir_lock(rd, lock, err);
        if (!st) st = vd_rundir_open(rd, base_dir, given, overrides, n_overrides, effective, differ, differ_cap, err);
    }
    if (c->size <= 1) return st;
    /* the others read only after rank 0 has written what a new run saves */
    if ((st = vd_dist_agree_status(c, st, err))) return st;
    if (c->rank != 0)
        st = read_as_follower(rd, base_dir, given, overrides, n_overrides, effective, differ, differ_cap, err);
    if ((st = vd_dist_agree_status(c, st, err))) return st;
    return vd_hparams_agree(c, effective, err);
}
