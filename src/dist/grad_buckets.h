/* Gradient all-reduce in buckets, overlapped with the backward pass (as PyTorch DDP's reducer):
 * the backward pass reports each range of the flat gradient buffer once it is final; ranges
 * that touch are merged, and a run of at least `bucket` floats is summed over the ranks at once
 * (non-blocking) while backward goes on with the blocks below. finish() starts what is left and
 * waits for all of it. The order of the sums is the order of the reports, the same on every
 * rank because every rank runs the same backward. Knows floats, not parameters. */
#ifndef VD_DIST_GRAD_BUCKETS_H
#define VD_DIST_GRAD_BUCKETS_H

#include <stdint.h>

#include "dist/comm.h"

typedef struct vd_grad_run {
    int64_t off, len;
} vd_grad_run;

typedef struct vd_grad_buckets {
    vd_comm *comm;
    float *base;          /* the flat buffer: host memory, or device memory for a comm that takes it */
    int64_t n;            /* floats in it */
    int64_t bucket;       /* start a sum once a run reaches this many floats */
    vd_grad_run *runs;    /* reported, not yet started; sorted by offset, merged when they touch */
    int n_runs, cap_runs;
    vd_grad_run *seen;    /* every range reported this step, merged: [0, n) at the end */
    int n_seen, cap_seen;
    int64_t reported;     /* floats reported this step (each must be reported once) */
    int started;          /* sums started this step */
    double waited;        /* seconds finish() waited for the sums this step: what backward did
                             not hide */
    vd_status st;         /* the first failure during reports (a callback returns nothing) */
    vd_err err;
} vd_grad_buckets;

/* bucket <= 0: a size chosen from n (about eight buckets, 1 to 25 MiB; DDP's cap is 25 MiB). */
vd_status vd_grad_buckets_init(vd_grad_buckets *b, vd_comm *comm, float *base, int64_t n,
                               int64_t bucket, vd_err *err);
void vd_grad_buckets_free(vd_grad_buckets *b);
/* A new step: nothing reported. */
void vd_grad_buckets_begin(vd_grad_buckets *b);
/* Floats [off, off + len) of base are final (the backward pass's callback; ctx is b). */
void vd_grad_buckets_ready(void *ctx, int64_t off, int64_t len);
/* Start what is left, wait for every sum; VD_ERR_INTERNAL when the reports did not cover the
 * buffer exactly once (a bug in the reporting pass). */
vd_status vd_grad_buckets_finish(vd_grad_buckets *b, vd_err *err);

#endif
