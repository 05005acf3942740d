/* How a data-parallel run sums its gradients (docs/model.md section 5.5): in buckets during
 * backward where the communicator can read the backend's memory (the cpu backends over MPI, a
 * cuda backend over NCCL), else through a host copy after backward (a cuda backend over MPI). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"

/* The memory of the cpu backends is the process's: MPI reads the gradients where they are. */
static bool host_memory(const vd_backend *be) {
    return !strcmp(be->i->name, "cpu") || !strcmp(be->i->name, "cpu_ref");
}

/* VD_NCCL: "1" the NCCL path always (one process too: how a machine with one GPU runs it),
 * "0" never, unset when the job has several ranks on cuda. */
static vd_status nccl_wish(int *wish, vd_err *err) {
    const char *v = getenv("VD_NCCL");
    *wish = -1; /* unset */
    if (!v || !*v) return VD_OK;
    if (strcmp(v, "0") && strcmp(v, "1"))
        return vd_errorf(err, VD_ERR_INVALID, "VD_NCCL='%s': expected 1 (sum gradients over NCCL) or 0 (over MPI)", v);
    *wish = v[0] == '1';
    return VD_OK;
}

vd_status vd_train_dist_open(vd_trainer *tr, vd_err *err) {
    vd_session *s = &tr->ses;
    int wish;
    vd_status st = vd_session_shard_rows(s, tr->comm, err);
    if (!st) st = nccl_wish(&wish, err);
    if (st || (tr->comm->size <= 1 && wish != 1)) return st;
    vd_train_dist *d = tr->dist = calloc(1, sizeof *tr->dist);
    if (!d) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    d->comm = tr->comm;
    d->nccl_wish = wish;
    if (!host_memory(s->be)) { /* until NCCL takes over (vd_train_dist_nccl) */
        d->staging = malloc((size_t)s->arch.total_floats * sizeof(float));
        if (!d->staging) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the gradient all-reduce");
        return VD_OK;
    }
    return vd_grad_buckets_init(&d->buckets, tr->comm, s->net.grads, s->arch.total_floats, 0, err);
}

/* Why this rank cannot sum over NCCL ("" when it can). */
static void nccl_obstacle(const vd_trainer *tr, int *device, void **stream, char *why, size_t cap) {
    int gpus = vd_cuda_device_count();
    why[0] = 0;
    if (!vd_backend_cuda_stream(tr->ses.be, device, stream))
        snprintf(why, cap, "the backend is %s, not cuda", tr->ses.be->i->name);
    else if (!vd_comm_have_nccl())
        snprintf(why, cap, "this vdvae was built without NCCL");
    else if (tr->comm->local_size > gpus)
        snprintf(why, cap, "%d ranks share the %d GPU%s of a machine (NCCL needs one GPU per rank)",
                 tr->comm->local_size, gpus, gpus == 1 ? "" : "s");
}

/* Every rank on NCCL or none: the ranks count who can (collective). */
vd_status vd_train_dist_nccl(vd_trainer *tr, vd_err *err) {
    vd_train_dist *d = tr->dist;
    if (!d || d->nccl_wish == 0) return VD_OK;
    int wish = d->nccl_wish, device = 0;
    void *stream = NULL;
    char why[160];
    nccl_obstacle(tr, &device, &stream, why, sizeof why);
    double able = why[0] ? 0 : 1;
    vd_status st = tr->comm->i->sum_f64(tr->comm, &able, 1, "whether every rank can use NCCL", err);
    if (st) return st;
    if (able < tr->comm->size) {
        if (wish == 1)
            return vd_errorf(err, VD_ERR_UNSUPPORTED, "VD_NCCL=1, but %s", why[0] ? why : "another rank cannot use NCCL");
        if (tr->writer && !tr->opts->quiet && d->staging)
            printf("gradients summed through host memory over MPI: %s\n", why[0] ? why : "a rank cannot use NCCL");
        return VD_OK;
    }
    if ((st = vd_comm_nccl_create(tr->comm, device, stream, &d->nccl, err))) return st;
    free(d->staging);
    d->staging = NULL;
    d->comm = d->nccl;
    if (tr->writer && !tr->opts->quiet)
        printf("gradients summed over NCCL: %d rank%s, one GPU each\n", tr->comm->size, tr->comm->size == 1 ? "" : "s");
    return vd_grad_buckets_init(&d->buckets, d->nccl, tr->ses.net.grads, tr->ses.arch.total_floats, 0, err);
}

void vd_train_dist_close(vd_trainer *tr) {
    vd_train_dist *d = tr->dist;
    if (!d) return;
    vd_grad_buckets_free(&d->buckets);
    free(d->staging);
    if (d->nccl) d->nccl->i->destroy(d->nccl);
    free(d);
    tr->dist = NULL;
}
