/* Op-level rates of the cpu backend: GFLOP/s of conv_fwd, conv_bwd_data and conv_bwd_weights
 * as the model calls them (reorders, copies and gradient adds included), and GB/s of the hot
 * elementwise ops, at the cifar10_baseline main shapes. Compare with conv_rates (primitives
 * alone); results are recorded in bench/CPU_OPS.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/ops.h"

enum { MAX_RUNS = 500 };

typedef struct opts {
    int threads, min_runs;
    double min_time;
    vd_precision precision; /* of the convolutions */
} opts;

typedef struct conv_shape {
    const char *role;
    int n, h, w, c_in, c_out, k, stride;
    int x_ld; /* 0: dense; else x and dx are channel views of a tensor this wide */
} conv_shape;

/* cifar10_baseline at batch 8: the cell's 3x3 and 1x1 in/out convs at 32x32, the pool, and
 * the latent projection reading its input as a view (the second half of the prior's output) */
static const conv_shape shapes[] = {
    {"cell 3x3", 8, 32, 32, 96, 96, 3, 1, 0},
    {"cell in 1x1", 8, 32, 32, 384, 96, 1, 1, 0},
    {"cell out 1x1", 8, 32, 32, 96, 384, 1, 1, 0},
    {"pool 2x2/2", 8, 32, 32, 384, 384, 2, 2, 0},
    {"latent 1x1 view", 8, 32, 32, 384, 64, 1, 1, 768},
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef void (*op_fn)(vd_backend *be, const void *ctx);

typedef struct timing {
    double median_ms, min_ms;
} timing;

/* Two warm-up calls (the first builds the primitive), then runs until min_time. */
static timing time_op(vd_backend *be, const opts *o, op_fn fn, const void *ctx) {
    static double t[MAX_RUNS];
    fn(be, ctx);
    fn(be, ctx);
    int runs = 0;
    double start = now_s();
    while (runs < MAX_RUNS && (runs < o->min_runs || now_s() - start < o->min_time)) {
        double t0 = now_s();
        fn(be, ctx);
        t[runs++] = now_s() - t0;
    }
    qsort(t, runs, sizeof t[0], cmp_double);
    return (timing){t[runs / 2] * 1e3, t[0] * 1e3};
}

static float *rand_buffer(vd_backend *be, size_t n, unsigned seed) {
    float *p = be->i->alloc(be, n * sizeof(float));
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = ((seed >> 8) * (1.0f / 16777216.0f) - 0.5f) * 0.2f;
    }
    return p;
}

typedef struct conv_ctx {
    vd_conv_desc cv;
    vd_tensor x, y, dx, dy;
    float *w, *b, *dw, *db;
} conv_ctx;

static void run_fwd(vd_backend *be, const void *v) {
    const conv_ctx *c = v;
    be->i->conv_fwd(be, &c->cv, &c->x, c->w, c->b, &c->y);
}
static void run_bwd_data(vd_backend *be, const void *v) {
    const conv_ctx *c = v;
    be->i->conv_bwd_data(be, &c->cv, &c->dy, c->w, &c->dx, false);
}
static void run_bwd_data_acc(vd_backend *be, const void *v) {
    const conv_ctx *c = v;
    be->i->conv_bwd_data(be, &c->cv, &c->dy, c->w, &c->dx, true);
}
static void run_bwd_weights(vd_backend *be, const void *v) {
    const conv_ctx *c = v;
    be->i->conv_bwd_weights(be, &c->cv, &c->x, &c->dy, c->dw, c->db);
}

static void print_rate(const char *label, double flops, timing t) {
    printf("  %-16s %8.3f ms %7.1f GFLOP/s   (best %8.3f ms %7.1f GFLOP/s)\n", label, t.median_ms,
           flops / (t.median_ms * 1e6), t.min_ms, flops / (t.min_ms * 1e6));
}

static int bench_conv(vd_backend *be, const opts *o, const conv_shape *s) {
    int pad = s->k - s->stride, ho = s->h / s->stride, wo = s->w / s->stride;
    conv_ctx c = {.cv = {s->c_in, s->c_out, s->k, s->k, s->stride, pad / 2 + pad % 2,
                         pad / 2 + pad % 2, pad / 2, pad / 2}};
    int ldx = s->x_ld ? s->x_ld : s->c_in;
    size_t nx = (size_t)s->n * s->h * s->w * ldx, ny = (size_t)s->n * ho * wo * s->c_out;
    size_t nw = (size_t)s->c_out * s->c_in * s->k * s->k;
    float *bufs[8] = {rand_buffer(be, nx, 1), rand_buffer(be, ny, 2), rand_buffer(be, nx, 3),
                      rand_buffer(be, ny, 4), rand_buffer(be, nw, 5), rand_buffer(be, s->c_out, 6),
                      rand_buffer(be, nw, 7), rand_buffer(be, s->c_out, 8)};
    c.x = vd_tensor_make(bufs[0], s->n, s->h, s->w, s->c_in);
    c.x.ld = ldx;
    c.y = vd_tensor_make(bufs[1], s->n, ho, wo, s->c_out);
    c.dx = vd_tensor_make(bufs[2], s->n, s->h, s->w, s->c_in);
    c.dx.ld = ldx;
    c.dy = vd_tensor_make(bufs[3], s->n, ho, wo, s->c_out);
    c.w = bufs[4], c.b = bufs[5], c.dw = bufs[6], c.db = bufs[7];
    double flops = 2.0 * s->n * ho * wo * s->c_out * s->c_in * s->k * s->k;
    printf("%s %dx%d %d->%d @%dx%d batch %d, x ld %d (%.1f MFLOP)\n", s->role, s->k, s->k,
           s->c_in, s->c_out, s->h, s->w, s->n, ldx, flops * 1e-6);
    print_rate("conv_fwd", flops, time_op(be, o, run_fwd, &c));
    print_rate("conv_bwd_data", flops, time_op(be, o, run_bwd_data, &c));
    print_rate("  (acc)", flops, time_op(be, o, run_bwd_data_acc, &c));
    print_rate("conv_bwd_weights", flops, time_op(be, o, run_bwd_weights, &c));
    for (int i = 0; i < 8; i++)
        be->i->dealloc(be, bufs[i]);
    return 0;
}

typedef struct elem_ctx {
    vd_tensor a, b, c;
} elem_ctx;

static void run_silu_fwd(vd_backend *be, const void *v) {
    const elem_ctx *e = v;
    be->i->act_fwd(be, VD_ACT_SILU, 0, &e->a, &e->b);
}
static void run_silu_bwd(vd_backend *be, const void *v) {
    const elem_ctx *e = v;
    be->i->act_bwd(be, VD_ACT_SILU, 0, &e->a, &e->b, &e->c, true);
}
static void run_add(vd_backend *be, const void *v) {
    const elem_ctx *e = v;
    be->i->add(be, &e->a, &e->b, &e->c);
}

/* Memory rate: bytes each op reads and writes once over its median time. */
static void bench_elementwise(vd_backend *be, const opts *o) {
    int n = 8, h = 32, w = 32, c = 384;
    size_t count = (size_t)n * h * w * c;
    float *p[3] = {rand_buffer(be, count, 9), rand_buffer(be, count, 10),
                   rand_buffer(be, count, 11)};
    elem_ctx e = {vd_tensor_make(p[0], n, h, w, c), vd_tensor_make(p[1], n, h, w, c),
                  vd_tensor_make(p[2], n, h, w, c)};
    static const struct {
        const char *name;
        op_fn fn;
        int streams;
    } ops[] = {
        {"silu fwd", run_silu_fwd, 2}, {"silu bwd acc", run_silu_bwd, 4}, {"add", run_add, 3}};
    printf("elementwise on 8x32x32x384 (%.1f M floats)\n", count * 1e-6);
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        timing t = time_op(be, o, ops[i].fn, &e);
        double bytes = (double)count * sizeof(float) * ops[i].streams;
        printf("  %-16s %8.3f ms %7.1f GB/s    (best %8.3f ms)\n", ops[i].name, t.median_ms,
               bytes / (t.median_ms * 1e6), t.min_ms);
    }
    for (int i = 0; i < 3; i++)
        be->i->dealloc(be, p[i]);
}

static int parse_opts(int argc, char **argv, opts *o) {
    static const struct option longs[] = {{"threads", required_argument, 0, 't'},
                                          {"runs", required_argument, 0, 'r'},
                                          {"min-time", required_argument, 0, 's'},
                                          {"precision", required_argument, 0, 'p'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    *o = (opts){2, 10, 0.5, VD_PREC_FP32};
    int ch;
    char *end;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (ch == 't' && ((o->threads = (int)strtol(optarg, &end, 10)) < 1 || *end))
            return fprintf(stderr, "cpu_ops: --threads must be a positive integer\n"), 2;
        if (ch == 'r' &&
            ((o->min_runs = (int)strtol(optarg, &end, 10)) < 1 || o->min_runs > MAX_RUNS || *end))
            return fprintf(stderr, "cpu_ops: --runs must be 1..%d\n", MAX_RUNS), 2;
        if (ch == 's' && (!((o->min_time = strtod(optarg, &end)) >= 0) || *end))
            return fprintf(stderr, "cpu_ops: --min-time must be seconds >= 0\n"), 2;
        if (ch == 'p' && strcmp(optarg, "fp32") && strcmp(optarg, "bf16"))
            return fprintf(stderr, "cpu_ops: --precision must be fp32 or bf16\n"), 2;
        if (ch == 'p') o->precision = strcmp(optarg, "bf16") ? VD_PREC_FP32 : VD_PREC_BF16;
        if (ch == 'h' || ch == '?') {
            fprintf(ch == 'h' ? stdout : stderr,
                    "usage: cpu_ops [--threads N (2)] [--runs N (10)] [--min-time S (0.5)]\n"
                    "               [--precision fp32|bf16 (fp32)]\n"
                    "Times the cpu backend's ops at cifar10_baseline shapes, batch 8; the\n"
                    "convolutions in the given precision.\n");
            return ch == 'h' ? -1 : 2;
        }
    }
    return optind < argc ? (fprintf(stderr, "cpu_ops: unexpected '%s'\n", argv[optind]), 2) : 0;
}

int main(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    vd_backend *be = NULL;
    vd_err err = {0};
    if (vd_backend_create_cpu(&be, o.threads, &err) != VD_OK ||
        vd_backend_set_precision(be, o.precision, &err) != VD_OK) {
        fprintf(stderr, "cpu_ops: %s\n", err.msg);
        if (be) vd_backend_destroy(be);
        return 1;
    }
    printf("cpu backend, %d threads, convolutions in %s; median of >= %d runs and >= %.2f s per "
           "op after warm-up\n\n",
           o.threads, o.precision == VD_PREC_BF16 ? "bf16" : "fp32", o.min_runs, o.min_time);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        bench_conv(be, &o, &shapes[i]);
    bench_elementwise(be, &o);
    rc = vd_backend_check(be, &err) == VD_OK ? 0 : 1;
    if (rc) fprintf(stderr, "cpu_ops: %s\n", err.msg);
    vd_backend_destroy(be);
    return rc;
}
