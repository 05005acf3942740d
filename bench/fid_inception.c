/* Throughput of the FID Inception network's forward (src/fid/inception.c) on a backend: images
 * per second at a batch size, best of a few timed batches after a warm-up, and with --profile
 * where the time goes by op family. bench/fid_torch.py times pytorch-fid's InceptionV3 on the
 * same images and weights; bench/run_fid.sh runs both (bench/FID.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "fid/inception.h"
#include "run/session.h"

typedef struct opts {
    const char *weights, *backend;
    int threads, batch, size, channels, iters;
    bool profile;
} opts;

static int usage(void) {
    fprintf(stderr, "usage: fid_inception WEIGHTS.safetensors [--backend cpu|cpu_ref|cuda] "
                    "[--threads N] [--batch B] [--size S] [--channels 1|3] [--iters K] "
                    "[--profile]\n");
    return 2;
}

static bool parse(int argc, char **argv, opts *o) {
    static const struct option longs[] = {
        {"backend", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'n'},   {"size", required_argument, 0, 's'},
        {"channels", required_argument, 0, 'c'}, {"iters", required_argument, 0, 'i'},
        {"profile", no_argument, 0, 'p'},       {0, 0, 0, 0}};
    *o = (opts){.backend = "cpu", .threads = 2, .batch = 16, .size = 32, .channels = 3, .iters = 3};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'b': o->backend = optarg; break;
        case 't': o->threads = atoi(optarg); break;
        case 'n': o->batch = atoi(optarg); break;
        case 's': o->size = atoi(optarg); break;
        case 'c': o->channels = atoi(optarg); break;
        case 'i': o->iters = atoi(optarg); break;
        case 'p': o->profile = true; break;
        default: return false;
        }
    }
    if (optind != argc - 1) return false;
    o->weights = argv[optind];
    return o->batch > 0 && o->size > 0 && o->iters > 0;
}

/* Images in [-1, 1] from a fixed xorshift stream, uploaded once. */
static float *make_images(vd_backend *be, const opts *o) {
    size_t n = (size_t)o->batch * o->size * o->size * o->channels;
    float *host = malloc(n * sizeof *host), *dev = be->i->alloc(be, n * sizeof *host);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; host && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        host[i] = (float)((x >> 11) * 0x1.0p-53 * 2 - 1);
    }
    if (host && dev) be->i->upload(be, dev, host, n * sizeof *host);
    free(host);
    return dev;
}

static void print_profile(vd_backend *be, double seconds) {
    vd_profile_family f[64];
    int n = vd_backend_profile_read(be, f, 64);
    printf("%-28s %8s %9s %7s %9s\n", "op family", "calls", "seconds", "share", "GFLOP/s");
    for (int i = 0; i < n; i++)
        printf("%-28s %8lld %9.3f %6.1f%% %9.1f\n", f[i].name, (long long)f[i].calls, f[i].seconds,
               100 * f[i].seconds / seconds, f[i].is_conv ? f[i].flops / f[i].seconds / 1e9 : 0.0);
}

static int run(const opts *o, vd_backend *be) {
    vd_err err = {0};
    vd_inception *net = NULL;
    double t0 = vd_now_seconds();
    if (vd_inception_open(&net, be, o->weights, o->batch, o->size, o->size, o->channels, &err)) {
        fprintf(stderr, "fid_inception: %s\n", err.msg);
        return 2;
    }
    printf("opened in %.2f s\n", vd_now_seconds() - t0);
    float *images = make_images(be, o);
    float *pool3 = malloc((size_t)o->batch * VD_FID_DIMS * sizeof *pool3);
    int rc = images && pool3 ? 0 : 1;
    double best = 1e30, total = 0;
    for (int it = -1; it < o->iters && !rc; it++) { /* -1: warm-up (oneDNN builds primitives) */
        if (it == 0 && o->profile) vd_backend_profile_reset(be);
        t0 = vd_now_seconds();
        if (vd_inception_run(net, images, o->batch, pool3, NULL, &err)) {
            fprintf(stderr, "fid_inception: %s\n", err.msg);
            rc = 1;
        }
        double dt = vd_now_seconds() - t0;
        if (it < 0) continue;
        total += dt;
        best = dt < best ? dt : best;
        printf("batch %d: %.3f s (%.2f images/s)\n", it, dt, o->batch / dt);
    }
    if (!rc) {
        printf("best: %.2f images/s (batch %d of %dx%dx%d, backend %s, %d threads)\n",
               o->batch / best, o->batch, o->size, o->size, o->channels, o->backend, o->threads);
        if (o->profile) print_profile(be, total);
    }
    free(pool3);
    if (images) be->i->dealloc(be, images);
    vd_inception_close(net);
    return rc;
}

int main(int argc, char **argv) {
    opts o;
    if (!parse(argc, argv, &o)) return usage();
    vd_backend *be = NULL;
    vd_err err = {0};
    if (vd_backend_open(o.backend, o.threads, VD_PREC_FP32, o.profile, &be, &err)) {
        fprintf(stderr, "fid_inception: %s\n", err.msg);
        return 2;
    }
    int rc = run(&o, be);
    vd_backend_destroy(be);
    return rc;
}
