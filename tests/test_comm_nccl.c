/* The NCCL communicator's logic (src/dist/comm_nccl.c) without a GPU: compiled here against
 * stand-ins for the CUDA runtime and NCCL (tests/fake_nccl/) that log every call and play a GPU
 * which completes its work, never completes it (a peer that hangs) or reports an asynchronous
 * error. Checks the order that makes a sum safe (an event recorded on the backend's stream, our
 * stream waiting on it, then NCCL's sum there; the backend's stream waiting on the sums' event),
 * that the gradient buckets run over it, and that a wait ends with an error naming why (the
 * timeout, NCCL's error, a signal), aborting NCCL once and failing every later call. What this
 * cannot show (NCCL's own sums between GPUs) is tests/cli_train_nccl.sh's and
 * tests/mpi_train_nccl.sh's, on GPUs. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"
#include "dist/grad_buckets.h"
#include "vd_test.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

/* ---- the stand-ins ---------------------------------------------------------------------------- */

struct fake_stream { char name[16]; };
struct fake_event { struct fake_stream *at; };
struct fake_nccl_comm { int nranks, rank; };

static char calls[8192];       /* "name(args) " per call, in order */
static int device_set = -1, aborts, destroys, live_streams, live_events;
static int init_nranks = -1, init_rank = -1;
static int gpu_hangs;          /* events never complete */
static ncclResult_t async_error = ncclSuccess, init_result = ncclSuccess;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    size_t at = strlen(calls);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(calls + at, sizeof calls - at, fmt, ap);
    va_end(ap);
}

static const char *sname(cudaStream_t s) { return s ? s->name : "null"; }

cudaError_t cudaSetDevice(int device) { device_set = device; return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    (void)flags;
    *s = calloc(1, sizeof **s);
    snprintf((*s)->name, sizeof (*s)->name, "sums");
    live_streams++;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) { logf_("streamDestroy(%s) ", sname(s)); free(s); live_streams--; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { logf_("streamSync(%s) ", sname(s)); return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    logf_("wait(%s<-%s) ", sname(s), sname(e->at));
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    (void)flags;
    *e = calloc(1, sizeof **e);
    live_events++;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); live_events--; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { e->at = s; logf_("record(%s) ", sname(s)); return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t e) { (void)e; return gpu_hangs ? cudaErrorNotReady : cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "some CUDA error"; }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) { memset(id, 7, sizeof *id); logf_("getUniqueId "); return ncclSuccess; }
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    init_nranks = nranks, init_rank = rank;
    logf_("init(%d,%d,id%d) ", nranks, rank, id.internal[0]);
    if (init_result != ncclSuccess) return init_result;
    *comm = calloc(1, sizeof **comm);
    (*comm)->nranks = nranks, (*comm)->rank = rank;
    return ncclSuccess;
}
/* The other rank holds ones: the sum adds one to every float. */
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    logf_("allreduce(%zu,%s,%s) ", count, send == recv ? "in place" : "copy", sname(stream));
    if (!comm || type != ncclFloat || op != ncclSum) return ncclInvalidArgument;
    for (size_t i = 0; i < count; i++) ((float *)recv)[i] += 1.f;
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async) { (void)comm; *async = async_error; return ncclSuccess; }
ncclResult_t ncclCommAbort(ncclComm_t comm) { logf_("abort "); aborts++; free(comm); return ncclSuccess; }
ncclResult_t ncclCommDestroy(ncclComm_t comm) { logf_("destroy "); destroys++; free(comm); return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) { return r == ncclRemoteError ? "remote process exited or there was a network error" : "some NCCL error"; }
const char *ncclGetLastError(ncclComm_t comm) { (void)comm; return ""; }

/* ---- the checks --------------------------------------------------------------------------------- */

static struct fake_stream compute = {"compute"};

static vd_comm *make(vd_comm *host) {
    vd_comm *c = NULL;
    vd_err err = {0};
    calls[0] = 0, aborts = destroys = 0, gpu_hangs = 0, async_error = ncclSuccess;
    if (vd_comm_nccl_create(host, 3, &compute, &c, &err)) VD_SETUP_FAIL("vd_comm_nccl_create: %s", err.msg);
    return c;
}

static void check_create(vd_comm *host) {
    vd_comm *c = make(host);
    CHECKF(!strcmp(calls, "getUniqueId init(1,0,id7) "), "calls: %s", calls);
    CHECK(device_set == 3 && init_nranks == 1 && init_rank == 0);
    CHECK(c->device_buffers && c->rank == 0 && c->size == 1 && !strcmp(c->i->name, "nccl"));
    calls[0] = 0;
    c->i->destroy(c);
    CHECKF(!strcmp(calls, "streamSync(sums) destroy streamDestroy(sums) "), "calls: %s", calls);
    CHECK(live_streams == 0 && live_events == 0 && aborts == 0 && destroys == 1);

    vd_err err = {0};
    init_result = ncclInvalidUsage;
    c = NULL;
    vd_status st = vd_comm_nccl_create(host, 3, &compute, &c, &err);
    CHECKF(st == VD_ERR_INTERNAL && strstr(err.msg, "NCCL could not join rank 0 of 1 (GPU 3)"), "%s", err.msg);
    CHECK(c == NULL && live_streams == 0 && live_events == 0);
    init_result = ncclSuccess;
}

static void check_sum(vd_comm *host) {
    vd_comm *c = make(host);
    vd_err err = {0};
    float x[6] = {0, 1, 2, 3, 4, 5};
    calls[0] = 0;
    CHECK(c->i->wait_all(c, &err) == VD_OK && calls[0] == 0); /* nothing pending: nothing to do */
    CHECK(c->i->start_sum_f32(c, x + 1, 4, "a sum", &err) == VD_OK);
    CHECK(c->i->wait_all(c, &err) == VD_OK);
    /* the sum after the kernels that made x, on our stream; the backend's later kernels after it */
    CHECKF(!strcmp(calls, "record(compute) wait(sums<-compute) allreduce(4,in place,sums) record(sums) "
                          "wait(compute<-sums) "), "calls: %s", calls);
    CHECK(x[0] == 0 && x[1] == 2 && x[4] == 5 && x[5] == 5);
    calls[0] = 0;
    CHECK(c->i->wait_all(c, &err) == VD_OK && calls[0] == 0); /* all done: nothing more to wait for */
    double d = 2.5;
    CHECK(c->i->sum_f64(c, &d, 1, "host", &err) == VD_OK && d == 2.5); /* the host comm's (single) */
    c->i->destroy(c);
}

/* The buckets over NCCL: every float summed once, some during the reports. */
static void check_buckets(vd_comm *host) {
    vd_comm *c = make(host);
    vd_err err = {0};
    float g[100] = {0};
    vd_grad_buckets b;
    CHECK(vd_grad_buckets_init(&b, c, g, 100, 30, &err) == VD_OK);
    vd_grad_buckets_begin(&b);
    calls[0] = 0;
    vd_grad_buckets_ready(&b, 70, 30); /* a bucket's worth: starts at once */
    CHECK(strstr(calls, "allreduce(30,") != NULL);
    vd_grad_buckets_ready(&b, 0, 20);
    vd_grad_buckets_ready(&b, 20, 50);
    CHECKF(vd_grad_buckets_finish(&b, &err) == VD_OK, "%s", err.msg);
    int once = 0;
    for (int i = 0; i < 100; i++) once += g[i] == 1.f;
    CHECKF(once == 100, "%d of 100 floats summed once; calls: %s", once, calls);
    vd_grad_buckets_free(&b);
    c->i->destroy(c);
}

/* A wait that cannot end: an error naming why, NCCL aborted once, every later call failing. */
static void check_stuck(vd_comm *host, const char *why, const char *expect) {
    vd_comm *c = make(host);
    vd_err err = {0}, err2 = {0};
    float x[4] = {0};
    gpu_hangs = 1;
    if (!strcmp(why, "async")) async_error = ncclRemoteError;
    if (!strcmp(why, "signal")) vd_comm_note_signal(SIGTERM);
    CHECK(c->i->start_sum_f32(c, x, 4, "a sum", &err) == VD_OK);
    vd_status st = c->i->wait_all(c, &err);
    CHECKF(st == VD_ERR_INTERNAL && strstr(err.msg, expect), "%s: %s", why, err.msg);
    CHECKF(aborts == 1 && c->broken, "%s: %d aborts", why, aborts);
    calls[0] = 0;
    CHECK(c->i->start_sum_f32(c, x, 4, "a sum", &err2) == st && !strcmp(err2.msg, err.msg) && calls[0] == 0);
    CHECK(c->i->wait_all(c, &err2) == st && c->i->progress(c, &err2) == st);
    c->i->destroy(c);
    CHECKF(aborts == 1 && destroys == 0 && live_streams == 0 && live_events == 0, "%s: %s", why, calls);
    vd_comm_note_signal(0);
}

int main(void) {
    vd_comm *host = NULL;
    vd_err err = {0};
    if (vd_comm_single_create(&host, &err)) VD_SETUP_FAIL("%s", err.msg);
    CHECK(vd_comm_have_nccl());
    check_create(host);
    check_sum(host);
    check_buckets(host);
    setenv("VD_DIST_TIMEOUT", "1", 1);
    check_stuck(host, "timeout", "rank 0 had no answer from the other 0 in the gradient all-reduce (NCCL) for 1 s");
    check_stuck(host, "async", "NCCL failed in the gradient all-reduce (NCCL) on rank 0 (GPU 3): remote process exited");
    setenv("VD_DIST_TIMEOUT", "60", 1);
    check_stuck(host, "signal", "SIGTERM arrived while rank 0 waited");
    host->i->destroy(host);
    return vd_test_result("test_comm_nccl");
}
