/* The settling of a data-parallel job's ranks before a run starts (src/run/job.c): who opens
 * the run directory and that every rank runs the same config. */
#ifndef VD_RUN_JOB_H
#define VD_RUN_JOB_H

#include <stddef.h>

#include "dist/comm.h"
#include "vdvae/config.h"
#include "vdvae/run.h"

/* vd_rundir_lock + vd_rundir_open for the ranks of c: rank 0 takes the lock and opens the run
 * (creating it and saving the config, or resuming with the saved one); after it, every other
 * rank reads the config rank 0 saved when it sees the same directory, or takes `given` for a
 * new run on a host of its own, and writes nothing; then every rank's effective config must
 * equal rank 0's (vd_hparams_agree). Any failure on any rank fails every rank (exit as one). */
vd_status vd_rundir_open_job(vd_comm *c, vd_rundir *rd, const char *base_dir, const vd_hparams *given,
                             const char *const *overrides, int n_overrides, vd_hparams *effective,
                             char *differ, size_t differ_cap, vd_run_lock *lock, vd_err *err);

/* The same config on every rank of c, compared key by key with rank 0's canonical text
 * (vd_hparams_write); VD_ERR_INVALID on every rank naming the keys that differ and where. */
vd_status vd_hparams_agree(vd_comm *c, const vd_hparams *hp, vd_err *err);

#endif
