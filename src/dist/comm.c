/* The process's job (vd_comm_world): MPI under a launcher, else the single process, whose
 * collectives are identities; the signal note and timeout every implementation shares. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"

/* ---- the single process ------------------------------------------------------------------ */

static vd_status single_sum_f64(vd_comm *c, double *x, size_t n, const char *what, vd_err *err) {
    (void)c, (void)x, (void)n, (void)what, (void)err;
    return VD_OK;
}

static vd_status single_start_sum_f32(vd_comm *c, float *x, size_t n, const char *what, vd_err *err) {
    (void)c, (void)x, (void)n, (void)what, (void)err;
    return VD_OK;
}

static vd_status single_progress(vd_comm *c, vd_err *err) {
    (void)c, (void)err;
    return VD_OK;
}

static vd_status single_bcast(vd_comm *c, void *buf, size_t n, int root, const char *what, vd_err *err) {
    (void)c, (void)buf, (void)n, (void)root, (void)what, (void)err;
    return VD_OK;
}

static vd_status single_allgather(vd_comm *c, const void *mine, void *out, size_t n, const char *what,
                                  vd_err *err) {
    (void)c, (void)what, (void)err;
    if (out != mine) memmove(out, mine, n);
    return VD_OK;
}

static void single_abort(vd_comm *c, int code) {
    (void)c;
    exit(code);
}

static void single_destroy(vd_comm *c) { free(c); }

static vd_status single_check_peers(vd_comm *c, const char *what, vd_err *err) {
    (void)c, (void)what, (void)err;
    return VD_OK;
}

static const vd_comm_i single_i = {
    .name = "single", .sum_f64 = single_sum_f64, .start_sum_f32 = single_start_sum_f32,
    .progress = single_progress, .wait_all = single_progress, .check_peers = single_check_peers,
    .bcast = single_bcast,
    .allgather = single_allgather, .abort = single_abort, .destroy = single_destroy,
};

vd_status vd_comm_single_create(vd_comm **out, vd_err *err) {
    vd_comm *c = calloc(1, sizeof *c);
    if (!c) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    *c = (vd_comm){.i = &single_i, .rank = 0, .size = 1, .local_rank = 0, .local_size = 1};
    *out = c;
    return VD_OK;
}

/* ---- signals and the timeout --------------------------------------------------------------- */

static volatile sig_atomic_t noted_signal;

void vd_comm_note_signal(int sig) { noted_signal = sig; }
int vd_comm_signal_noted(void) { return noted_signal; }

const char *vd_comm_signal_name(int sig) {
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}

double vd_comm_timeout(void) {
    const char *v = getenv("VD_DIST_TIMEOUT");
    char *end;
    double t = v ? strtod(v, &end) : 0;
    return v && *v && !*end && t > 0 ? t : 300.0;
}

/* ---- the world ------------------------------------------------------------------------------- */

static vd_comm *world;

bool vd_comm_have_mpi(void) {
#ifdef VD_HAVE_MPI
    return true;
#else
    return false;
#endif
}

/* The number of ranks a launcher says it started (0: not started by one). */
static long launcher_size(const char **var) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            *var = vars[i];
            return strtol(v, NULL, 10);
        }
    }
    /* PMIx launchers that set only the rank still mean "under a launcher" */
    if (getenv("PMIX_RANK")) {
        *var = "PMIX_RANK";
        return -1;
    }
    return 0;
}

vd_status vd_comm_world(vd_comm **out, vd_err *err) {
    if (world) {
        *out = world;
        return VD_OK;
    }
    const char *var = NULL;
    long n = launcher_size(&var);
    vd_status st;
#ifdef VD_HAVE_MPI
    st = n != 0 ? vd_comm_mpi_create(&world, err) : vd_comm_single_create(&world, err);
#else
    if (n > 1 || n < 0)
        return vd_errorf(err, VD_ERR_UNSUPPORTED,
                         "started by an MPI launcher (%s=%s) but this vdvae was built without MPI: "
                         "every rank would train alone. Configure with -DVD_MPI=ON (Debian: "
                         "libopenmpi-dev), or run one process without mpirun",
                         var, getenv(var));
    st = vd_comm_single_create(&world, err);
#endif
    if (!st) *out = world;
    return st;
}

vd_comm *vd_comm_world_peek(void) { return world; }

#ifndef VD_HAVE_NCCL
bool vd_comm_have_nccl(void) { return false; }

vd_status vd_comm_nccl_create(vd_comm *host, int device, void *stream, vd_comm **out, vd_err *err) {
    (void)host, (void)device, (void)stream, (void)out;
    return vd_errorf(err, VD_ERR_UNSUPPORTED, "this vdvae was built without NCCL (it comes with VD_CUDA=ON "
                                              "where the CUDA toolkit has nccl.h and libnccl)");
}
#endif

int vd_comm_world_end(int rc) {
    if (!world) return rc;
    vd_comm *c = world;
    /* MPI_Finalize would wait for ranks that are gone, MPI_Abort would kill the survivors'
     * processes before they report: the launcher ends the job once we have exited */
    if (rc != 0 && c->broken) return rc;
    if (rc != 0 && c->size > 1 && !c->failed_together) {
        fflush(stdout);
        fflush(stderr);
        c->i->abort(c, rc); /* does not return */
    }
    world = NULL;
    c->i->destroy(c);
    return rc;
}

const char *vd_comm_world_tag(void) {
    static char tag[48];
    if (!world || world->size <= 1) return "";
    snprintf(tag, sizeof tag, " (rank %d of %d)", world->rank, world->size);
    return tag;
}
