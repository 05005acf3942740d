/* The bucketed gradient all-reduce: reported ranges merged into runs, a run summed once it is
 * big enough, the rest at the end; and a check that the reports covered the buffer once. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "dist/grad_buckets.h"

#define MIB_FLOATS (1024 * 1024 / 4)

/* Insert [off, off + len) into a sorted list, merging with the runs it touches; the index of
 * the run that holds it, or -1 when it overlaps one (reported twice), -2 out of memory. */
static int insert_run(vd_grad_run **v, int *n, int *cap, int64_t off, int64_t len) {
    int i = 0;
    while (i < *n && (*v)[i].off + (*v)[i].len < off) i++;
    if (i < *n && (*v)[i].off < off + len && off < (*v)[i].off + (*v)[i].len) return -1;
    if (i + 1 < *n && (*v)[i + 1].off < off + len) return -1;
    bool left = i < *n && (*v)[i].off + (*v)[i].len == off;
    int r = left ? i + 1 : i; /* the run that may start where ours ends */
    bool right = r < *n && (*v)[r].off == off + len;
    if (left && right) {
        (*v)[i].len += len + (*v)[r].len;
        memmove(*v + r, *v + r + 1, (size_t)(*n - r - 1) * sizeof **v);
        (*n)--;
        return i;
    }
    if (left) {
        (*v)[i].len += len;
        return i;
    }
    if (right) {
        (*v)[r].off = off, (*v)[r].len += len;
        return r;
    }
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        vd_grad_run *p = realloc(*v, (size_t)c * sizeof *p);
        if (!p) return -2;
        *v = p, *cap = c;
    }
    memmove(*v + i + 1, *v + i, (size_t)(*n - i) * sizeof **v);
    (*v)[i] = (vd_grad_run){off, len};
    (*n)++;
    return i;
}

vd_status vd_grad_buckets_init(vd_grad_buckets *b, vd_comm *comm, float *base, int64_t n,
                               int64_t bucket, vd_err *err) {
    (void)err;
    memset(b, 0, sizeof *b);
    b->comm = comm, b->base = base, b->n = n;
    if (bucket <= 0) {
        bucket = n / 8;
        if (bucket < MIB_FLOATS) bucket = MIB_FLOATS;
        if (bucket > 25 * MIB_FLOATS) bucket = 25 * MIB_FLOATS;
    }
    b->bucket = bucket;
    return VD_OK;
}

void vd_grad_buckets_free(vd_grad_buckets *b) {
    free(b->runs);
    free(b->seen);
    memset(b, 0, sizeof *b);
}

void vd_grad_buckets_begin(vd_grad_buckets *b) {
    b->n_runs = 0, b->n_seen = 0, b->reported = 0, b->started = 0, b->waited = 0, b->st = VD_OK;
}

static void start(vd_grad_buckets *b, int i) {
    vd_grad_run r = b->runs[i];
    memmove(b->runs + i, b->runs + i + 1, (size_t)(b->n_runs - i - 1) * sizeof *b->runs);
    b->n_runs--;
    b->started++;
    vd_status st = b->comm->i->start_sum_f32(b->comm, b->base + r.off, (size_t)r.len, "the gradient all-reduce",
                                             &b->err);
    if (st && !b->st) b->st = st;
}

void vd_grad_buckets_ready(void *ctx, int64_t off, int64_t len) {
    vd_grad_buckets *b = ctx;
    if (b->st || len <= 0) return;
    if (off < 0 || off + len > b->n) {
        b->st = vd_errorf(&b->err, VD_ERR_INTERNAL, "gradient range [%lld, %lld) outside the buffer of %lld floats",
                          (long long)off, (long long)(off + len), (long long)b->n);
        return;
    }
    int s = insert_run(&b->seen, &b->n_seen, &b->cap_seen, off, len);
    int i = s < 0 ? s : insert_run(&b->runs, &b->n_runs, &b->cap_runs, off, len);
    if (i == -2 || s == -2) {
        b->st = vd_errorf(&b->err, VD_ERR_NOMEM, "out of memory");
        return;
    }
    if (i == -1 || s == -1) {
        b->st = vd_errorf(&b->err, VD_ERR_INTERNAL, "gradient range [%lld, %lld) reported twice in one step",
                          (long long)off, (long long)(off + len));
        return;
    }
    b->reported += len;
    if (b->runs[i].len >= b->bucket) start(b, i);
    vd_status st = b->comm->i->progress(b->comm, &b->err);
    if (st && !b->st) b->st = st;
}

vd_status vd_grad_buckets_finish(vd_grad_buckets *b, vd_err *err) {
    while (!b->st && b->n_runs > 0) start(b, 0);
    vd_status st = b->st;
    if (st) {
        if (err) *err = b->err;
        return st;
    }
    double t0 = vd_now_seconds();
    st = b->comm->i->wait_all(b->comm, err);
    b->waited = vd_now_seconds() - t0;
    if (st) return st;
    if (b->n_seen != 1 || b->seen[0].off != 0 || b->seen[0].len != b->n)
        return vd_errorf(err, VD_ERR_INTERNAL,
                         "the backward pass reported %lld of %lld gradient floats as final (in %d runs): "
                         "a parameter was missed",
                         (long long)b->reported, (long long)b->n, b->n_seen);
    return VD_OK;
}
