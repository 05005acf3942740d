/* The NCCL communicator (VD_CUDA=ON with NCCL): the gradient sums of a cuda backend's memory
 * over NCCL, on a stream of their own that events order after the kernels which made each
 * buffer and before the kernels that read the sums; everything host-side goes to the
 * communicator it was made from. Its wait polls instead of blocking in the driver, so that a
 * rank that is gone or hangs ends the job with an error, not a hang (as comm_mpi.c's does). */
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "dist/agree.h"
#include "dist/comm.h"

typedef struct nccl_comm {
    vd_comm base;
    vd_comm *host;         /* bootstrap and host-side collectives; not ours to destroy */
    ncclComm_t nc;         /* NULL once aborted */
    int device;
    cudaStream_t compute;  /* the backend's: where the buffers are made and read */
    cudaStream_t sums;     /* ours: NCCL's kernels, overlapping the backend's */
    cudaEvent_t ready, done;
    int pending;           /* sums queued since the last wait_all */
    vd_status broken;      /* a wait failed: every later call fails at once */
    vd_err broken_err;
} nccl_comm;

static vd_status broken(nccl_comm *m, vd_err *err) {
    if (err) *err = m->broken_err;
    return m->broken;
}

/* After a failure nothing may wait on NCCL's kernels again: abort them (they hold the GPU)
 * and remember the error for every later call. */
static vd_status fail(nccl_comm *m, vd_status st, vd_err *err) {
    if (m->nc) ncclCommAbort(m->nc);
    m->nc = NULL;
    m->broken = st;
    if (err) m->broken_err = *err;
    m->base.broken = true;
    return st;
}

static vd_status nccl_failed(nccl_comm *m, ncclResult_t r, const char *what, vd_err *err) {
    const char *last = ncclGetLastError(m->nc);
    vd_status st = vd_errorf(err, VD_ERR_INTERNAL, "NCCL failed in %s on rank %d (GPU %d): %s%s%s", what,
                             m->base.rank, m->device, ncclGetErrorString(r), last && *last ? ": " : "",
                             last ? last : "");
    return fail(m, st, err);
}

static vd_status cuda_failed(nccl_comm *m, cudaError_t e, const char *what, vd_err *err) {
    (void)cudaGetLastError();
    vd_status st = vd_errorf(err, VD_ERR_INTERNAL, "CUDA failed in %s on rank %d (GPU %d): %s", what,
                             m->base.rank, m->device, cudaGetErrorString(e));
    return fail(m, st, err);
}

static vd_status nccl_sum_f64(vd_comm *c, double *x, size_t n, const char *what, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    return m->host->i->sum_f64(m->host, x, n, what, err);
}

static vd_status nccl_start_sum_f32(vd_comm *c, float *x, size_t n, const char *what, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    if (m->broken) return broken(m, err);
    cudaError_t e = cudaEventRecord(m->ready, m->compute);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(m->sums, m->ready, 0);
    if (e != cudaSuccess) return cuda_failed(m, e, what, err);
    ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat, ncclSum, m->nc, m->sums);
    if (r != ncclSuccess) return nccl_failed(m, r, what, err);
    m->pending++;
    return VD_OK;
}

/* The GPU moves NCCL's sums along by itself. */
static vd_status nccl_progress(vd_comm *c, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    return m->broken ? broken(m, err) : VD_OK;
}

static vd_status nccl_check_peers(vd_comm *c, const char *what, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    return m->broken ? broken(m, err) : m->host->i->check_peers(m->host, what, err);
}

/* Why waiting on the sums must stop now (VD_OK: wait on). */
static vd_status give_up(nccl_comm *m, double t0, double *sig_at, double *next_peer_check, vd_err *err) {
    const char *what = "the gradient all-reduce (NCCL)";
    double t = vd_now_seconds();
    if (t >= *next_peer_check) { /* a look at the peers' processes costs a few system calls */
        *next_peer_check = t + 1.0;
        vd_status st = m->host->i->check_peers(m->host, what, err);
        if (st) return fail(m, st, err);
    }
    ncclResult_t async = ncclSuccess;
    if (ncclCommGetAsyncError(m->nc, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
        return nccl_failed(m, async, what, err);
    int sig = vd_comm_signal_noted();
    if (sig && *sig_at == 0) *sig_at = t;
    if (*sig_at > 0 && t - *sig_at > VD_COMM_SIGNAL_GRACE_SECONDS)
        return fail(m, vd_errorf(err, VD_ERR_INTERNAL,
                                 "%s arrived while rank %d waited for the other %d in %s, and they did not "
                                 "answer within %.0f s: a rank has ended or hangs (the launcher names it); "
                                 "stopping", vd_comm_signal_name(sig), m->base.rank, m->base.size - 1, what,
                                 VD_COMM_SIGNAL_GRACE_SECONDS), err);
    if (t - t0 > vd_comm_timeout())
        return fail(m, vd_errorf(err, VD_ERR_INTERNAL,
                                 "rank %d had no answer from the other %d in %s for %.0f s (VD_DIST_TIMEOUT): "
                                 "a rank hangs or its host is unreachable; stopping",
                                 m->base.rank, m->base.size - 1, what, vd_comm_timeout()), err);
    return VD_OK;
}

/* Every queued sum done; the backend's later kernels ordered after them. */
static vd_status nccl_wait_all(vd_comm *c, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    if (m->broken) return broken(m, err);
    if (m->pending == 0) return VD_OK;
    cudaError_t e = cudaEventRecord(m->done, m->sums);
    if (e != cudaSuccess) return cuda_failed(m, e, "the gradient all-reduce", err);
    double t0 = vd_now_seconds(), sig_at = 0, next_peer_check = t0 + 1.0;
    for (long spins = 0; (e = cudaEventQuery(m->done)) == cudaErrorNotReady; spins++) {
        if (spins % 64 == 0) {
            vd_status st = give_up(m, t0, &sig_at, &next_peer_check, err);
            if (st) return st;
        }
        /* spin for the latency of a short sum, then let the host's other threads have the core */
        if (spins > 2000) nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
    }
    if (e == cudaSuccess) e = cudaStreamWaitEvent(m->compute, m->done, 0);
    if (e != cudaSuccess) return cuda_failed(m, e, "the gradient all-reduce", err);
    m->pending = 0;
    return VD_OK;
}

static vd_status nccl_bcast(vd_comm *c, void *buf, size_t n, int root, const char *what, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    return m->host->i->bcast(m->host, buf, n, root, what, err);
}

static vd_status nccl_allgather(vd_comm *c, const void *mine, void *out, size_t n, const char *what, vd_err *err) {
    nccl_comm *m = (nccl_comm *)c;
    return m->host->i->allgather(m->host, mine, out, n, what, err);
}

static void nccl_abort(vd_comm *c, int code) {
    nccl_comm *m = (nccl_comm *)c;
    if (m->nc) ncclCommAbort(m->nc);
    m->nc = NULL;
    m->host->i->abort(m->host, code);
}

static void nccl_destroy(vd_comm *c) {
    nccl_comm *m = (nccl_comm *)c;
    if (m->nc && !m->broken && m->sums) cudaStreamSynchronize(m->sums);
    if (m->nc) ncclCommDestroy(m->nc);
    if (m->ready) cudaEventDestroy(m->ready);
    if (m->done) cudaEventDestroy(m->done);
    if (m->sums) cudaStreamDestroy(m->sums);
    free(m);
}

static const vd_comm_i nccl_i = {
    .name = "nccl", .sum_f64 = nccl_sum_f64, .start_sum_f32 = nccl_start_sum_f32, .progress = nccl_progress,
    .wait_all = nccl_wait_all, .check_peers = nccl_check_peers, .bcast = nccl_bcast, .allgather = nccl_allgather, .abort = nccl_abort,
    .destroy = nccl_destroy,
};

bool vd_comm_have_nccl(void) { return true; }

/* This rank's stream and events on its GPU (local: no other rank involved). */
static vd_status make_local(nccl_comm *m, vd_err *err) {
    cudaError_t e = cudaSetDevice(m->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&m->sums, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&m->ready, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&m->done, cudaEventDisableTiming);
    if (e == cudaSuccess) return VD_OK;
    (void)cudaGetLastError();
    return vd_errorf(err, VD_ERR_INTERNAL, "CUDA failed setting up NCCL on GPU %d: %s", m->device,
                     cudaGetErrorString(e));
}

/* Rank 0's id on every rank. Each step that may fail on some ranks only is agreed on first, so
 * no rank waits in a collective for one that has given up. */
static vd_status share_id(nccl_comm *m, ncclUniqueId *id, vd_err *err) {
    vd_status st = VD_OK;
    memset(id, 0, sizeof *id);
    if (m->host->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(id);
        if (r != ncclSuccess)
            st = vd_errorf(err, VD_ERR_INTERNAL, "NCCL failed to make its id on rank 0: %s", ncclGetErrorString(r));
    }
    st = vd_dist_agree_status(m->host, st, err);
    if (!st) st = m->host->i->bcast(m->host, id, sizeof *id, 0, "NCCL's id", err);
    return st;
}

vd_status vd_comm_nccl_create(vd_comm *host, int device, void *stream, vd_comm **out, vd_err *err) {
    nccl_comm *m = calloc(1, sizeof *m);
    vd_status st = m ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) {
        m->base = (vd_comm){.i = &nccl_i, .rank = host->rank, .size = host->size,
                            .local_rank = host->local_rank, .local_size = host->local_size,
                            .device_buffers = true};
        m->host = host, m->device = device, m->compute = (cudaStream_t)stream;
        st = make_local(m, err);
    }
    st = vd_dist_agree_status(host, st, err);
    ncclUniqueId id;
    if (!st) st = share_id(m, &id, err);
    if (!st) {
        ncclResult_t r = ncclCommInitRank(&m->nc, host->size, id, host->rank);
        if (r != ncclSuccess) {
            m->nc = NULL;
            st = vd_errorf(err, VD_ERR_INTERNAL, "NCCL could not join rank %d of %d (GPU %d): %s", host->rank,
                           host->size, device, ncclGetErrorString(r));
        }
        st = vd_dist_agree_status(host, st, err);
    }
    if (st) {
        if (m) nccl_destroy(&m->base);
        return st;
    }
    *out = &m->base;
    return VD_OK;
}
