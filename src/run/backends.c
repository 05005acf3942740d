/* The backend registry: the one table that maps a name to a backend constructor, so a new
 * backend (cuda) is added here and nowhere else. */
#include <stdio.h>
#include <string.h>

#include "dist/comm.h"
#include "run/session.h"

typedef vd_status (*backend_ctor)(vd_backend **out, int threads, vd_err *err);

#ifdef VD_HAVE_ONEDNN
static vd_status make_cpu(vd_backend **out, int threads, vd_err *err) {
    return vd_backend_create_cpu(out, threads, err);
}
#endif

#ifdef VD_HAVE_CUDA
/* One GPU per rank of a machine: the k-th rank there takes GPU k (modulo the GPUs it sees, so
 * CUDA_VISIBLE_DEVICES set per rank works too). */
static vd_status make_cuda(vd_backend **out, int threads, vd_err *err) {
    (void)threads; /* the GPU's own; host threads only feed it */
    const vd_comm *w = vd_comm_world_peek();
    int n = vd_cuda_device_count(), local = w ? w->local_rank : 0;
    return vd_backend_create_cuda(out, n > 0 ? local % n : 0, err);
}
#endif

static vd_status make_cpu_ref(vd_backend **out, int threads, vd_err *err) {
    (void)threads; /* plain loops on one thread: the oracle */
    return vd_backend_create_cpu_ref(out, err);
}

/* The default is cuda where this build has it and a GPU is present, else the first entry with a
 * constructor. A backend this build lacks stays in the table without a constructor, so asking
 * for it says why instead of "unknown". */
static const struct {
    const char *name;
    backend_ctor create;
    const char *absent; /* why this build has no such backend */
} registry[] = {
#ifdef VD_HAVE_ONEDNN
    {"cpu", make_cpu, NULL},
#else
    {"cpu", NULL, "this build has no oneDNN (run scripts/install-deps.sh, then configure again)"},
#endif
    {"cpu_ref", make_cpu_ref, NULL},
#ifdef VD_HAVE_CUDA
    {"cuda", make_cuda, NULL},
#else
    {"cuda", NULL, "this build has no CUDA (configure with -DVD_CUDA=ON, README \"GPUs\")"},
#endif
};

#define N_BACKENDS (sizeof registry / sizeof registry[0])

const char *vd_backend_names(void) {
    static char names[128];
    if (names[0]) return names;
    size_t at = 0;
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (registry[i].create)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "", registry[i].name);
    return names;
}

const char *vd_backend_default(void) {
    if (vd_cuda_available()) return "cuda";
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (registry[i].create) return registry[i].name;
    return "none";
}

static vd_status create(const char *name, int threads, vd_backend **out, vd_err *err) {
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcmp(name, registry[i].name)) continue;
        if (registry[i].create) return registry[i].create(out, threads, err);
        return vd_errorf(err, VD_ERR_INVALID, "backend '%s' is not in this build: %s; this build has: %s",
                         name, registry[i].absent, vd_backend_names());
    }
    return vd_errorf(err, VD_ERR_INVALID, "unknown backend '%s' (this build has: %s)", name,
                     vd_backend_names());
}

vd_status vd_backend_open(const char *name, int threads, vd_precision p, bool profile,
                          vd_backend **out, vd_err *err) {
    vd_backend *be;
    vd_status st = create(name ? name : vd_backend_default(), threads, &be, err);
    if (st) return st;
    if (profile) {
        vd_backend *inner = be;
        if ((st = vd_backend_create_profile(&be, inner, err))) {
            vd_backend_destroy(inner);
            return st;
        }
    }
    if ((st = vd_backend_set_precision(be, p, err))) {
        vd_backend_destroy(be);
        return st;
    }
    *out = be;
    return VD_OK;
}
