/* The MPI communicator (VD_MPI=ON): MPI_COMM_WORLD duplicated, every collective non-blocking and
 * completed by one wait loop of our own that MPI's blocking calls would not give us: it gives
 * up, with an error naming what it waited for, when a peer process on this host is gone, when a
 * signal arrived and nothing moved for a while (mpirun's SIGTERM to the survivors of a dead
 * rank), or after the timeout. Host memory only. */
#include <mpi.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "dist/comm.h"

/* Who a rank is, to tell whether its process still exists: only a peer in our PID namespace on
 * our kernel (same boot id, same namespace) can be asked with kill(pid, 0). */
typedef struct peer {
    long pid;
    char host[64];
    char boot[48]; /* the kernel's boot id: one machine (its GPUs are shared by its ranks) */
    char node[96]; /* boot id + PID namespace */
} peer;

typedef struct mpi_comm {
    vd_comm base;
    MPI_Comm comm;
    MPI_Request *pending;
    int n_pending, cap_pending;
    peer *peers;
    vd_status broken; /* a wait failed: every later call fails at once instead of waiting */
    vd_err broken_err;
} mpi_comm;

/* How often the wait loop looks for vanished local peers. */
#define PEER_CHECK_SECONDS 1.0

static vd_status mpi_fail(mpi_comm *m, int rc, const char *what, vd_err *err) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    m->broken = vd_errorf(err, VD_ERR_INTERNAL, "MPI failed in %s: %s", what, msg);
    if (err) m->broken_err = *err;
    m->base.broken = true;
    return m->broken;
}

static void read_line(const char *path, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

static void self_peer(peer *p) {
    memset(p, 0, sizeof *p);
    p->pid = (long)getpid();
    if (gethostname(p->host, sizeof p->host - 1) != 0) snprintf(p->host, sizeof p->host, "?");
    char ns[40] = "";
    read_line("/proc/sys/kernel/random/boot_id", p->boot, sizeof p->boot);
    if (!p->boot[0]) snprintf(p->boot, sizeof p->boot, "host %.40s", p->host); /* no /proc: by name */
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = 0;
    snprintf(p->node, sizeof p->node, "%s %s", p->boot, ns);
}

/* This rank's place among the ranks on its machine, and how many there are. */
static void set_local(mpi_comm *m) {
    const peer *me = &m->peers[m->base.rank];
    int below = 0, same = 0;
    for (int r = 0; r < m->base.size; r++) {
        if (strcmp(m->peers[r].boot, me->boot)) continue;
        same++;
        if (r < m->base.rank) below++;
    }
    m->base.local_rank = below, m->base.local_size = same;
}

/* Whether process pid of our namespace is gone (never existed, or a zombie not yet reaped). */
static bool process_gone(long pid) {
    if (kill((pid_t)pid, 0) != 0) return errno == ESRCH;
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    read_line(path, stat, sizeof stat);
    const char *close = strrchr(stat, ')');
    return close && close[1] == ' ' && close[2] == 'Z';
}

/* The first rank on this node whose process is gone, or -1. */
static int gone_peer(const mpi_comm *m) {
    if (!m->peers) return -1;
    const peer *me = &m->peers[m->base.rank];
    for (int r = 0; r < m->base.size; r++) {
        if (r == m->base.rank || !me->node[0] || strcmp(m->peers[r].node, me->node)) continue;
        if (process_gone(m->peers[r].pid)) return r;
    }
    return -1;
}

/* The error of a rank gone while this one waits in `what` (m->broken), or VD_OK. */
static vd_status gone_error(mpi_comm *m, const char *what, vd_err *err) {
    int r = gone_peer(m);
    if (r < 0) return VD_OK;
    return m->broken = vd_errorf(err, VD_ERR_INTERNAL,
                                 "rank %d (pid %ld on %s) has ended while rank %d waited for it in %s; "
                                 "stopping (the run resumes from its newest checkpoint)",
                                 r, m->peers[r].pid, m->peers[r].host, m->base.rank, what);
}

static vd_status mpi_check_peers(vd_comm *c, const char *what, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    if (m->broken) {
        if (err) *err = m->broken_err;
        return m->broken;
    }
    if (!gone_error(m, what, err)) return VD_OK;
    if (err) m->broken_err = *err;
    m->base.broken = true;
    return m->broken;
}

static vd_status wait_reqs(mpi_comm *m, MPI_Request *reqs, int n, const char *what, vd_err *err) {
    if (m->broken) {
        if (err) *err = m->broken_err;
        return m->broken;
    }
    double t0 = vd_now_seconds(), next_check = t0 + PEER_CHECK_SECONDS, sig_at = 0, timeout = vd_comm_timeout();
    int me = m->base.rank, size = m->base.size;
    for (long spins = 0;; spins++) {
        int done = 0, rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(m, rc, what, err);
        if (done) return VD_OK;
        double t = vd_now_seconds();
        int sig = vd_comm_signal_noted();
        if (sig && sig_at == 0) sig_at = t, next_check = t; /* look at once */
        if (t >= next_check) {
            next_check = t + PEER_CHECK_SECONDS;
            if (gone_error(m, what, err)) break;
        }
        if (sig_at > 0 && t - sig_at > VD_COMM_SIGNAL_GRACE_SECONDS) {
            m->broken = vd_errorf(err, VD_ERR_INTERNAL,
                                  "%s arrived while rank %d waited for the other %d in %s, and they did not "
                                  "answer within %.0f s: a rank has ended or hangs (the launcher names it); "
                                  "stopping", vd_comm_signal_name(sig), me, size - 1, what, VD_COMM_SIGNAL_GRACE_SECONDS);
            break;
        }
        if (t - t0 > timeout) {
            m->broken = vd_errorf(err, VD_ERR_INTERNAL,
                                  "rank %d had no answer from the other %d in %s for %.0f s (VD_DIST_TIMEOUT): "
                                  "a rank hangs or its host is unreachable; stopping",
                                  me, size - 1, what, timeout);
            break;
        }
        /* Spin briefly for the latency of small collectives, then yield the core: another rank
         * (or our own OpenMP threads) may need it to get here. */
        if (spins > 2000) nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
    }
    if (err) m->broken_err = *err;
    m->base.broken = true;
    return m->broken;
}

static vd_status check_count(size_t n, const char *what, vd_err *err) {
    if (n <= (size_t)INT_MAX) return VD_OK;
    return vd_errorf(err, VD_ERR_UNSUPPORTED, "%s of %zu elements exceeds MPI's int count", what, n);
}

static vd_status mpi_sum_f64(vd_comm *c, double *x, size_t n, const char *what, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    MPI_Request r;
    vd_status st = check_count(n, what, err);
    if (st) return st;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, m->comm, &r);
    return rc != MPI_SUCCESS ? mpi_fail(m, rc, what, err) : wait_reqs(m, &r, 1, what, err);
}

static vd_status push_pending(mpi_comm *m, MPI_Request r, vd_err *err) {
    if (m->n_pending == m->cap_pending) {
        int cap = m->cap_pending ? 2 * m->cap_pending : 64;
        MPI_Request *p = realloc(m->pending, (size_t)cap * sizeof *p);
        if (!p) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        m->pending = p, m->cap_pending = cap;
    }
    m->pending[m->n_pending++] = r;
    return VD_OK;
}

static vd_status mpi_start_sum_f32(vd_comm *c, float *x, size_t n, const char *what, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    if (m->broken) {
        if (err) *err = m->broken_err;
        return m->broken;
    }
    /* MPI counts are int: a longer buffer goes as several sums */
    for (size_t at = 0; at < n;) {
        size_t k = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, x + at, (int)k, MPI_FLOAT, MPI_SUM, m->comm, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(m, rc, what, err);
        vd_status st = push_pending(m, r, err);
        if (st) return st;
        at += k;
    }
    return VD_OK;
}

static vd_status mpi_progress(vd_comm *c, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    if (m->n_pending == 0) return VD_OK;
    int done = 0, rc = MPI_Testall(m->n_pending, m->pending, &done, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_fail(m, rc, "a gradient all-reduce", err);
    if (done) m->n_pending = 0;
    return VD_OK;
}

static vd_status mpi_wait_all(vd_comm *c, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    if (m->n_pending == 0) return VD_OK;
    vd_status st = wait_reqs(m, m->pending, m->n_pending, "the gradient all-reduce", err);
    if (!st) m->n_pending = 0;
    return st;
}

static vd_status mpi_bcast(vd_comm *c, void *buf, size_t n, int root, const char *what, vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    for (size_t at = 0; at < n;) {
        size_t k = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + at, (int)k, MPI_BYTE, root, m->comm, &r);
        vd_status st = rc != MPI_SUCCESS ? mpi_fail(m, rc, what, err) : wait_reqs(m, &r, 1, what, err);
        if (st) return st;
        at += k;
    }
    return VD_OK;
}

static vd_status mpi_allgather(vd_comm *c, const void *mine, void *out, size_t n, const char *what,
                               vd_err *err) {
    mpi_comm *m = (mpi_comm *)c;
    MPI_Request r;
    vd_status st = check_count(n, what, err);
    if (st) return st;
    int rc = MPI_Iallgather(mine, (int)n, MPI_BYTE, out, (int)n, MPI_BYTE, m->comm, &r);
    return rc != MPI_SUCCESS ? mpi_fail(m, rc, what, err) : wait_reqs(m, &r, 1, what, err);
}

static void mpi_abort(vd_comm *c, int code) {
    MPI_Abort(((mpi_comm *)c)->comm, code);
    _exit(code); /* MPI_Abort does not return; in case it does */
}

static void mpi_destroy(vd_comm *c) {
    mpi_comm *m = (mpi_comm *)c;
    MPI_Comm_free(&m->comm);
    MPI_Finalize();
    free(m->pending);
    free(m->peers);
    free(m);
}

static const vd_comm_i mpi_i = {
    .name = "mpi", .sum_f64 = mpi_sum_f64, .start_sum_f32 = mpi_start_sum_f32, .progress = mpi_progress,
    .wait_all = mpi_wait_all, .check_peers = mpi_check_peers, .bcast = mpi_bcast, .allgather = mpi_allgather, .abort = mpi_abort,
    .destroy = mpi_destroy,
};

vd_status vd_comm_mpi_create(vd_comm **out, vd_err *err) {
    int provided = 0, rank = 0, size = 1;
    /* Only this thread calls MPI; the loader's and OpenMP's threads never do. */
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return vd_errorf(err, VD_ERR_INTERNAL, "MPI_Init failed");
    mpi_comm *m = calloc(1, sizeof *m);
    if (!m) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (MPI_Comm_dup(MPI_COMM_WORLD, &m->comm) != MPI_SUCCESS) {
        free(m);
        return vd_errorf(err, VD_ERR_INTERNAL, "MPI_Comm_dup failed");
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &rank);
    MPI_Comm_size(m->comm, &size);
    m->base = (vd_comm){.i = &mpi_i, .rank = rank, .size = size};
    peer me;
    self_peer(&me);
    peer *all = calloc((size_t)size, sizeof *all);
    vd_status st = all ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) st = mpi_allgather(&m->base, &me, all, sizeof me, "the start (who runs where)", err);
    if (st) {
        free(all);
        MPI_Abort(m->comm, vd_status_exit_code(st));
    }
    m->peers = all;
    set_local(m);
    *out = &m->base;
    return VD_OK;
}
