/* The training-step benchmark behind `vdvae bench`: a model of the config at batch B on any
 * backend, random images in [-1, 1], N timed forward+backward steps after one warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/util.h"

#include "train/trainer.h"
#include "vdvae/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_family(const void *a, const void *b) {
    double x = ((const vd_bench_family *)a)->seconds, y = ((const vd_bench_family *)b)->seconds;
    return (x < y) - (x > y);
}

/* The profile of the timed steps as per-step figures, slowest family first. */
static void read_profile(vd_backend *be, int steps, vd_bench_result *r) {
    vd_profile_family f[VD_BENCH_FAMILIES_MAX];
    r->n_families = vd_backend_profile_read(be, f, VD_BENCH_FAMILIES_MAX);
    for (int i = 0; i < r->n_families; i++) {
        vd_bench_family *o = &r->families[i];
        snprintf(o->name, sizeof o->name, "%s", f[i].name);
        o->calls = (double)f[i].calls / steps;
        o->seconds = f[i].seconds / steps;
        o->flops = f[i].flops / steps;
        o->is_conv = f[i].is_conv;
    }
    qsort(r->families, (size_t)r->n_families, sizeof *r->families, cmp_family);
    vd_profile_scope sc[VD_BENCH_SCOPES_MAX];
    r->n_scopes = vd_backend_profile_scopes(be, sc, VD_BENCH_SCOPES_MAX);
    for (int i = 0; i < r->n_scopes; i++) {
        vd_bench_scope *o = &r->scopes[i];
        snprintf(o->name, sizeof o->name, "%s", sc[i].name);
        o->blocks = (double)sc[i].entries[VD_PHASE_FWD] / steps;
        for (int ph = 0; ph < VD_PHASES; ph++) {
            o->seconds[ph] = sc[i].seconds[ph] / steps;
            o->flops[ph] = sc[i].flops[ph] / steps;
        }
    }
}

/* Random images in [-1, 1] ({0, 1} for binarized MNIST) as the net's input. */
static void random_batch(vd_session *s, uint64_t seed) {
    vd_rng_fill_uniform(seed, 0, 0, (uint64_t)s->img_floats, s->batch);
    bool binary = s->net.dataset_binarized;
    for (int64_t i = 0; i < s->img_floats; i++) s->batch[i] = binary ? (float)(s->batch[i] < 0.3f) : 2.f * s->batch[i] - 1.f;
    vd_session_upload_batch(s);
}

static vd_status run(vd_session *s, const vd_bench_opts *o, vd_bench_result *r, vd_err *err) {
    const vd_hparams *hp = s->hp;
    double *times = calloc((size_t)o->steps, sizeof *times);
    vd_status st = times ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) st = vd_net_init_params(&s->net, (uint64_t)hp->run.seed, err);
    if (!st) random_batch(s, (uint64_t)hp->run.seed);
    for (int i = -1; i < o->steps && !st; i++) {
        double t0 = vd_now_seconds();
        st = vd_train_compute(s, i + 1, err);
        /* On an asynchronous backend (cuda) the backward may still be queued when the call
         * returns: reading one gradient back waits for it, so a step is timed to its end on the
         * device rather than charged to the next one (free on the CPU backends). */
        float probe;
        if (!st) s->be->i->download(s->be, &probe, s->net.grads, sizeof probe);
        if (!st) st = vd_backend_check(s->be, err);
        if (i >= 0) times[i] = vd_now_seconds() - t0;
        else if (o->profile) vd_backend_profile_reset(s->be);
    }
    if (!st) {
        for (int i = 0; i < o->steps; i++) r->mean_step_seconds += times[i] / o->steps;
        if (o->profile) read_profile(s->be, o->steps, r);
        qsort(times, (size_t)o->steps, sizeof *times, cmp_double);
        r->step_seconds = times[o->steps / 2];
        r->images_per_second = s->net.batch / r->step_seconds;
        r->gflops = 3.0 * s->arch.fwd_flops * s->net.batch / r->step_seconds / 1e9;
        r->loss = s->loss.total;
        r->arena_bytes = (double)s->net.arena_floats * sizeof(float);
        r->fwd_gflop_per_image = s->arch.fwd_flops / 1e9;
    }
    free(times);
    return st;
}

vd_status vd_bench_run(const vd_hparams *hp, const vd_bench_opts *o, vd_bench_result *r, vd_err *err) {
    memset(r, 0, sizeof *r);
    if (o->batch < 1 || o->steps < 1) return vd_errorf(err, VD_ERR_INVALID, "--batch and --steps must be >= 1");
    vd_session s;
    vd_session_opts so = {.backend = o->backend, .threads = o->threads, .profile = o->profile, .batch = o->batch,
                          .quiet = true};
    vd_status st = vd_session_open(&s, hp, &so, err);
    if (!st) {
        const char *note = vd_backend_precision_note(s.be);
        if (note) snprintf(r->precision_note, sizeof r->precision_note, "%s", note);
        st = run(&s, o, r, err);
        size_t now, peak; /* before closing: the session's buffers are the backend's to free */
        if (vd_backend_memory(s.be, &now, &peak)) r->device_peak_bytes = (double)peak;
    }
    vd_session_close(&s);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_bytes = (double)ru.ru_maxrss * 1024.0;
    return st;
}
