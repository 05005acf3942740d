/* vd_synth_batches: an inference mode's batches shared by the ranks of a job in rounds of N
 * batches (one each), every round's records gathered and consumed on rank 0 in batch order. */
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"
#include "synth/synth_internal.h"

vd_status vd_synth_batches(vd_synth *s, int64_t n, size_t rec_bytes, vd_synth_compute_fn compute,
                           vd_synth_consume_fn consume, void *ctx, vd_err *err) {
    vd_comm *c = s->comm;
    int N = c ? c->size : 1, me = c ? c->rank : 0;
    char *mine = malloc(rec_bytes ? rec_bytes : 1), *all = N > 1 ? malloc((size_t)N * rec_bytes) : mine;
    vd_status st = mine && all ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory for a batch's results");
    for (int64_t first = 0; first < n && !st; first += N) {
        int64_t j = first + me;
        if (j < n) st = compute(s, j, mine, ctx, err);
        if (N > 1) {
            st = vd_dist_agree_status(c, st, err);
            if (!st) st = c->i->allgather(c, mine, all, rec_bytes, "the gathering of a round of batches", err);
        }
        for (int r = 0; r < N && first + r < n && !st && s->writer; r++)
            st = consume(s, first + r, all + (size_t)r * rec_bytes, ctx, err);
        if (N > 1) st = vd_dist_agree_status(c, st, err); /* rank 0's files: every rank learns */
    }
    if (all != mine) free(all);
    free(mine);
    return st;
}
