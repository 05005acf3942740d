/* vd_dist_rounds: pieces of work over the ranks in rounds, results taken on rank 0 in order. */
#include <stdlib.h>

#include "dist/agree.h"
#include "dist/rounds.h"

vd_status vd_dist_rounds(vd_comm *c, int64_t n, size_t rec_bytes, vd_dist_compute_fn compute,
                         vd_dist_take_fn take, void *ctx, vd_err *err) {
    int N = c ? c->size : 1, me = c ? c->rank : 0;
    /* zeroed: a partial last piece leaves no stray bytes to send */
    char *mine = calloc(1, rec_bytes ? rec_bytes : 1), *all = N > 1 ? malloc((size_t)N * rec_bytes) : mine;
    vd_status st = mine && all ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory for a round's results");
    if (N > 1) st = vd_dist_agree_status(c, st, err);
    for (int64_t first = 0; first < n && !st; first += N) {
        int64_t j = first + me;
        if (j < n) st = compute(ctx, j, mine, err);
        if (N > 1) {
            st = vd_dist_agree_status(c, st, err);
            if (!st) st = c->i->allgather(c, mine, all, rec_bytes, "the gathering of a round of batches", err);
        }
        for (int r = 0; r < N && first + r < n && !st && me == 0; r++)
            st = take(ctx, first + r, all + (size_t)r * rec_bytes, err);
        if (N > 1) st = vd_dist_agree_status(c, st, err); /* rank 0's outcome: every rank learns */
    }
    if (all != mine) free(all);
    free(mine);
    return st;
}
