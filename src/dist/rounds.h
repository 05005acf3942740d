/* Work in numbered pieces (batches) shared by the ranks of a job: rank r computes pieces r, r + N,
 * ..., and rank 0 takes every piece's result in order, so what it builds from them is what one
 * process would build, bit for bit. The inference commands (synth, fid) use it. */
#ifndef VD_DIST_ROUNDS_H
#define VD_DIST_ROUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "dist/comm.h"

/* Piece j's result into rec (rec_bytes, zeroed before the first piece). */
typedef vd_status (*vd_dist_compute_fn)(void *ctx, int64_t j, void *rec, vd_err *err);
/* Piece j's result, on rank 0, in order of j. */
typedef vd_status (*vd_dist_take_fn)(void *ctx, int64_t j, const void *rec, vd_err *err);

/* Pieces 0..n-1 in rounds of N (one each, the last round maybe partial): each round's records
 * gathered to every rank (allgather) and taken on rank 0 in order. One process (c NULL or of
 * size 1) computes and takes in turn. A failure on any rank, in a computation or in rank 0's
 * taking, stops every rank with it. */
vd_status vd_dist_rounds(vd_comm *c, int64_t n, size_t rec_bytes, vd_dist_compute_fn compute,
                         vd_dist_take_fn take, void *ctx, vd_err *err);

#endif
