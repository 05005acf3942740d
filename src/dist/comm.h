/* The communicator of a data-parallel job: the few collectives that training and inference
 * need between processes (ranks), behind one small interface, so that the trainer does not
 * know whether it talks to nobody, to MPI or to NCCL. It knows buffers and counts, never a
 * model. Implementations:
 *   single  one process (comm.c): every collective is the identity, nothing is sent;
 *   mpi     OpenMPI/MPICH over host memory (comm_mpi.c, built with -DVD_MPI=ON);
 *   nccl    GPU memory (comm_nccl.c, builds with VD_CUDA=ON and NCCL): the gradient sums of
 *           a cuda backend over NCCL, the host-side collectives (sum_f64, bcast, allgather)
 *           through the communicator it was made from (MPI, or the single process), which also
 *           carries NCCL's id from rank 0 to the others. No transport of our own: MPI's or
 *           NCCL's.
 * Every call is collective: all ranks make the same calls in the same order (the model's
 * backward reports its buckets in a fixed order, so they do).
 *
 * Failures are values: a collective that cannot complete ends with VD_ERR_INTERNAL naming
 * the operation and, where it can be known, the rank that is gone: a peer process on this
 * host that no longer exists, a signal that arrived while waiting (mpirun sends SIGTERM to
 * the survivors when a rank dies), or no answer within the timeout (VD_DIST_TIMEOUT seconds,
 * default 300) for a rank that hangs or a host that became unreachable. */
#ifndef VD_DIST_COMM_H
#define VD_DIST_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/status.h"

typedef struct vd_comm vd_comm;

typedef struct vd_comm_i {
    const char *name; /* "single", "mpi" */
    /* x[0..n) = the sum over ranks of every rank's x, in place, on every rank (blocking). */
    vd_status (*sum_f64)(vd_comm *c, double *x, size_t n, const char *what, vd_err *err);
    /* Start summing x[0..n) over ranks in place; it completes in wait_all, and the buffer must
     * not be touched until then. Host memory unless device_buffers. Several may be pending. */
    vd_status (*start_sum_f32)(vd_comm *c, float *x, size_t n, const char *what, vd_err *err);
    /* Let pending sums advance without waiting (MPI moves non-blocking collectives along only
     * inside MPI calls: the backward pass calls this between blocks to overlap them). */
    vd_status (*progress)(vd_comm *c, vd_err *err);
    /* Complete every pending sum. */
    vd_status (*wait_all)(vd_comm *c, vd_err *err);
    /* An error naming a rank that has ended (seen from this host) while this one waits in
     * `what`, else VD_OK: for a wait that another library does (NCCL's) to end like MPI's.
     * Local, not collective. */
    vd_status (*check_peers)(vd_comm *c, const char *what, vd_err *err);
    /* n bytes of rank root into buf on every rank. */
    vd_status (*bcast)(vd_comm *c, void *buf, size_t n, int root, const char *what, vd_err *err);
    /* Every rank's n bytes `mine` into out[rank * n .. (rank + 1) * n) on every rank. */
    vd_status (*allgather)(vd_comm *c, const void *mine, void *out, size_t n, const char *what,
                           vd_err *err);
    /* End the whole job now with exit status code (a failure this rank alone knows of, so the
     * others would wait for it forever). Does not return. */
    void (*abort)(vd_comm *c, int code);
    /* Leave the job normally (MPI_Finalize) and free c. */
    void (*destroy)(vd_comm *c);
} vd_comm_i;

struct vd_comm {
    const vd_comm_i *i;
    int rank, size;
    int local_rank, local_size; /* among the ranks on this machine (one kernel): picks the GPU */
    bool device_buffers; /* start_sum_f32 takes backend (device) memory: NCCL; else host */
    bool failed_together; /* every rank returned the same error (vd_dist_agree_status): the
                             job may end normally instead of being aborted */
    bool broken;          /* a collective could not complete (a rank ended, hangs, a signal):
                             the job is coming down, this rank leaves without a word to it */
};

/* The job this process belongs to, made on the first call and kept until vd_comm_world_end:
 * MPI when a launcher started us (mpirun: OMPI_COMM_WORLD_SIZE; PMI_SIZE, PMIX_RANK for
 * others) and the build has VD_MPI, else the single process. Launched as several ranks by a
 * build without MPI is VD_ERR_UNSUPPORTED (the ranks would each train alone). */
vd_status vd_comm_world(vd_comm **out, vd_err *err);
/* The world when it has been made, else NULL; never makes it. */
vd_comm *vd_comm_world_peek(void);
/* Whether this build can run over MPI. */
bool vd_comm_have_mpi(void);
/* The end of the process with exit status rc: leave the job normally when rc is 0 or every
 * rank failed together; when the job is broken (a rank ended: the launcher is bringing the job
 * down) just return rc, and a rank that the others would wait for forever exits without a
 * word to it; else abort it so no other rank waits for this one. Returns rc (or does not
 * return). */
int vd_comm_world_end(int rc);
/* " (rank r of n)" for messages when the world has several ranks, else "". */
const char *vd_comm_world_tag(void);

/* A signal arrived (async-signal-safe; the trainer's handler calls it): a collective waiting
 * on a rank that never comes then ends instead of waiting for the launcher's SIGKILL. */
void vd_comm_note_signal(int sig);
/* The signal noted, or 0. */
int vd_comm_signal_noted(void);
/* Seconds a collective may wait before it gives up: VD_DIST_TIMEOUT (default 300). */
double vd_comm_timeout(void);
/* A collective still waiting this long after a signal gives up: the launcher sends SIGTERM to
 * the survivors of a rank that died, and those would otherwise wait for its SIGKILL. */
#define VD_COMM_SIGNAL_GRACE_SECONDS 5.0
/* "SIGTERM", "SIGINT", ... for messages. */
const char *vd_comm_signal_name(int sig);

/* The single-process communicator (size 1). */
vd_status vd_comm_single_create(vd_comm **out, vd_err *err);
#ifdef VD_HAVE_MPI
/* MPI_COMM_WORLD (MPI initialised on the first call). */
vd_status vd_comm_mpi_create(vd_comm **out, vd_err *err);
#endif

/* Whether this build has the NCCL communicator. */
bool vd_comm_have_nccl(void);
/* NCCL over the ranks of `host` (collective: every rank of host calls it), for buffers of the
 * GPU `device` and summed on `stream` (a cudaStream_t: the backend's, so a sum is queued behind
 * the kernels that made its buffer, without a host wait); the sums run on a stream of their
 * own, overlapping the kernels queued after them. The host collectives go to `host`, which
 * must outlive the result; destroying the result leaves host alone. VD_ERR_UNSUPPORTED in a
 * build without NCCL. */
vd_status vd_comm_nccl_create(vd_comm *host, int device, void *stream, vd_comm **out, vd_err *err);

#endif
