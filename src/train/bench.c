/* The training-step benchmark behind `vdvae bench`: a model of the config at batch B on a
 * CPU backend, random images in [-1, 1], N timed forward+backward steps after one warm-up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/util.h"

#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vdvae/rng.h"
#include "vdvae/train.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static vd_status make_inner(const char *name, int threads, vd_backend **be, vd_err *err) {
    if (!strcmp(name, "cpu")) return vd_backend_create_cpu(be, threads, err);
    if (!strcmp(name, "cpu_ref")) return vd_backend_create_cpu_ref(be, err);
    return vd_errorf(err, VD_ERR_INVALID, "unknown backend '%s' (cpu, cpu_ref)", name);
}

/* The backend, wrapped by the profiler when asked, computing in the config's precision. */
static vd_status make_backend(const vd_bench_opts *o, vd_precision prec, vd_backend **be,
                              vd_err *err) {
    vd_backend *in;
    vd_status st = make_inner(o->backend, o->threads, &in, err);
    if (st) return st;
    if (!o->profile) {
        *be = in;
    } else if ((st = vd_backend_create_profile(be, in, err))) {
        vd_backend_destroy(in);
        return st;
    }
    if ((st = vd_backend_set_precision(*be, prec, err))) vd_backend_destroy(*be);
    return st;
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

static void upload_images(vd_net *net, uint64_t seed) {
    const vd_arch *a = net->arch;
    size_t n = (size_t)net->batch * a->image_res * a->image_res * a->image_ch;
    float *x = malloc(n * sizeof *x);
    if (!x) return;
    vd_rng_fill_uniform(seed, 0, 0, n, x);
    bool binary = net->dataset_binarized;
    for (size_t i = 0; i < n; i++) x[i] = binary ? (float)(x[i] < 0.3f) : 2.f * x[i] - 1.f;
    net->be->i->upload(net->be, net->input, x, n * sizeof *x);
    free(x);
}

/* One training step's compute: forward, the loss on the host, backward. */
static vd_status step(vd_net *net, const vd_hparams *hp, vd_loss *loss, vd_noise *noise, float *sums,
                      int64_t t, vd_err *err) {
    const vd_arch *a = net->arch;
    vd_backend *be = net->be;
    for (int i = 0; i < a->n_td; i++)
        noise[i] = (vd_noise){.seed = (uint64_t)hp->run.seed, .stream = vd_rng_stream((uint32_t)t, VD_SITE_POSTERIOR + i)};
    vd_net_forward(net, noise);
    be->i->download(be, sums, net->sums, (size_t)(1 + a->n_td) * sizeof *sums);
    vd_loss_compute(loss, hp, a, net->batch, t, sums);
    be->i->fill(be, &(vd_tensor){net->grads, 1, 1, 1, (int)a->total_floats, a->total_floats}, 0.f);
    vd_net_backward(net, noise, loss->recon_scale, loss->kl_scale);
    return vd_backend_check(be, err);
}

static vd_status run(vd_net *net, const vd_hparams *hp, const vd_bench_opts *o, vd_bench_result *r, vd_err *err) {
    const vd_arch *a = net->arch;
    vd_loss loss;
    vd_status st = vd_loss_init(&loss, a->n_td, err);
    vd_noise *noise = calloc((size_t)a->n_td, sizeof *noise);
    float *sums = calloc((size_t)a->n_td + 1, sizeof *sums);
    double *times = calloc((size_t)o->steps, sizeof *times);
    if (!st && (!noise || !sums || !times)) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) st = vd_net_init_params(net, (uint64_t)hp->run.seed, err);
    if (!st) upload_images(net, (uint64_t)hp->run.seed);
    for (int s = -1; s < o->steps && !st; s++) {
        double t0 = vd_now_seconds();
        st = step(net, hp, &loss, noise, sums, s + 1, err);
        if (s >= 0) times[s] = vd_now_seconds() - t0;
        else if (o->profile) vd_backend_profile_reset(net->be);
    }
    if (!st) {
        for (int s = 0; s < o->steps; s++) r->mean_step_seconds += times[s] / o->steps;
        if (o->profile) read_profile(net->be, o->steps, r);
        qsort(times, (size_t)o->steps, sizeof *times, cmp_double);
        r->step_seconds = times[o->steps / 2];
        r->images_per_second = net->batch / r->step_seconds;
        r->gflops = 3.0 * a->fwd_flops * net->batch / r->step_seconds / 1e9;
        r->loss = loss.total;
        r->arena_bytes = (double)net->arena_floats * sizeof(float);
    }
    vd_loss_free(&loss);
    free(noise), free(sums), free(times);
    return st;
}

vd_status vd_bench_run(const vd_hparams *hp, const vd_bench_opts *o, vd_bench_result *r, vd_err *err) {
    memset(r, 0, sizeof *r);
    if (o->batch < 1 || o->steps < 1) return vd_errorf(err, VD_ERR_INVALID, "--batch and --steps must be >= 1");
    vd_arch arch;
    vd_backend *be = NULL;
    vd_net net;
    vd_status st = vd_arch_build(&arch, hp, err);
    if (st) return st;
    if (!(st = make_backend(o, hp->run.precision, &be, err))) {
        vd_net_opts no;
        vd_net_opts_from_hparams(&no, hp, o->batch);
        if (!(st = vd_net_create(&net, &arch, be, &no, err))) {
            st = run(&net, hp, o, r, err);
            vd_net_free(&net);
        }
        vd_backend_destroy(be);
    }
    r->fwd_gflop_per_image = arch.fwd_flops / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_bytes = (double)ru.ru_maxrss * 1024.0;
    vd_arch_free(&arch);
    return st;
}
