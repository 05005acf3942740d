/* vd_synth_batches: an inference mode's batches shared by the ranks of a job in rounds of N
 * batches (one each), every round's records gathered and consumed on rank 0 in batch order
 * (vd_dist_rounds with the mode's functions). */
#include "dist/rounds.h"
#include "synth/synth_internal.h"

typedef struct mode_fns {
    vd_synth *s;
    vd_synth_compute_fn compute;
    vd_synth_consume_fn consume;
    void *ctx;
} mode_fns;

static vd_status compute(void *ctx, int64_t j, void *rec, vd_err *err) {
    mode_fns *m = ctx;
    return m->compute(m->s, j, rec, m->ctx, err);
}

static vd_status consume(void *ctx, int64_t j, const void *rec, vd_err *err) {
    mode_fns *m = ctx;
    return m->consume(m->s, j, rec, m->ctx, err);
}

vd_status vd_synth_batches(vd_synth *s, int64_t n, size_t rec_bytes, vd_synth_compute_fn compute_fn,
                           vd_synth_consume_fn consume_fn, void *ctx, vd_err *err) {
    mode_fns m = {s, compute_fn, consume_fn, ctx};
    return vd_dist_rounds(s->comm, n, rec_bytes, compute, consume, &m, err);
}
