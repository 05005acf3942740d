/* Convolution rates through oneDNN on this CPU: GFLOP/s of forward, backward-data and
 * backward-weights for the model's main NHWC shapes, fp32 and bf16, to guide the cpu backend. */
#include <stdio.h>

#ifndef VD_HAVE_ONEDNN
int main(void) {
    puts("conv_rates: this build has no oneDNN (run scripts/install-deps.sh, then reconfigure); "
         "nothing to measure.");
    return 0;
}
#else

#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/dnnl_check.h"

enum { DIR_FWD, DIR_BWD_D, DIR_BWD_W, NDIR };
enum { DT_F32, DT_BF16, NDT };
enum { MAX_RUNS = 200 };

static const char *const dir_names[NDIR] = {"fwd", "bwd-d", "bwd-w"};
static const char *const dt_names[NDT] = {"fp32", "bf16"};

typedef struct conv_shape {
    const char *model; /* cifar10 | mnist */
    const char *role;  /* where the model uses it */
    int n, h, w, cin, cout, k, stride;
} conv_shape;

/* cifar10_baseline at batch 8: cells 384 -> 96 (ratio 0.25) -> 384, prior cell out 768,
 * posterior cell 768 -> 96 -> 384, 32 variates. binarized_mnist_baseline at batch 32:
 * ratio-1 cells of 32/64/128/256 filters at 32/16/8/4, prior out 2c, posterior in 2c. */
static const conv_shape shapes[] = {
    {"cifar10", "cell 3x3", 8, 32, 32, 96, 96, 3, 1},
    {"cifar10", "cell 3x3", 8, 16, 16, 96, 96, 3, 1},
    {"cifar10", "cell 3x3", 8, 8, 8, 96, 96, 3, 1},
    {"cifar10", "cell 3x3", 8, 4, 4, 96, 96, 3, 1},
    {"cifar10", "cell in 1x1", 8, 32, 32, 384, 96, 1, 1},
    {"cifar10", "cell out 1x1", 8, 32, 32, 96, 384, 1, 1},
    {"cifar10", "prior out 1x1", 8, 32, 32, 96, 768, 1, 1},
    {"cifar10", "post in 1x1", 8, 32, 32, 768, 96, 1, 1},
    {"cifar10", "skip/unpool 1x1", 8, 32, 32, 384, 384, 1, 1},
    {"cifar10", "latent 1x1", 8, 32, 32, 384, 64, 1, 1},
    {"cifar10", "z_proj 1x1", 8, 32, 32, 32, 384, 1, 1},
    {"cifar10", "pool 2x2/2", 8, 32, 32, 384, 384, 2, 2},
    {"cifar10", "pool 4x4/4", 8, 4, 4, 384, 384, 4, 4},
    {"mnist", "cell 3x3", 32, 32, 32, 32, 32, 3, 1},
    {"mnist", "cell 3x3", 32, 16, 16, 64, 64, 3, 1},
    {"mnist", "cell 3x3", 32, 8, 8, 128, 128, 3, 1},
    {"mnist", "cell 3x3", 32, 4, 4, 256, 256, 3, 1},
    {"mnist", "cell 1x1", 32, 8, 8, 128, 128, 1, 1},
    {"mnist", "prior out 1x1", 32, 8, 8, 128, 256, 1, 1},
    {"mnist", "post in 1x1", 32, 8, 8, 256, 128, 1, 1},
    {"mnist", "pool 2x2/2", 32, 16, 16, 64, 128, 2, 2},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

typedef struct opts {
    int min_runs;            /* timed runs at least, after warm-up */
    double min_time;         /* seconds of timed runs at least, per measurement */
    dnnl_format_tag_t wtag;  /* weights layout given to oneDNN; any lets it choose */
    dnnl_format_tag_t mtag;  /* layout of the f32 master weights reorders start from */
    const char *wtag_name;
    const char *only;        /* model filter, NULL for all */
    int dtypes[NDT];
} opts;

typedef struct result {
    int ok;                 /* 0: oneDNN has no implementation for this case */
    int ref;                /* only oneDNN's reference loops: too slow to time, and to use */
    double ms, gflops;
    double reorder_ms;      /* master f32 weights <-> primitive's weights, 0 when identical */
    char impl[64];
    char wlayout[12];       /* weights layout the primitive uses: a plain tag or "blocked" */
    int same_as_fwd;        /* backward: 1 same weights layout as forward, 0 differs, -1 n/a */
    dnnl_data_type_t out_dt;
} result;

typedef struct bench {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    opts o;
    result res[NSHAPES][NDT][NDIR];
} bench;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int out_size(const conv_shape *s) { return (s->h + s->stride - 1) / s->stride; }

static double shape_flops(const conv_shape *s) {
    double ho = out_size(s);
    return 2.0 * s->n * ho * ho * s->cout * s->cin * s->k * s->k;
}

/* TensorFlow 'same' padding, as the model uses: total k - s (for exact strides), extra right. */
static void same_padding(const conv_shape *s, dnnl_dims_t pl, dnnl_dims_t pr) {
    int total = (out_size(s) - 1) * s->stride + s->k - s->h;
    if (total < 0)
        total = 0;
    pl[0] = pl[1] = total / 2;
    pr[0] = pr[1] = total - total / 2;
}

static dnnl_data_type_t dnnl_dt(int dt) { return dt == DT_BF16 ? dnnl_bf16 : dnnl_f32; }

/* Small uniform values in whatever type the memory holds; bf16 is a float's upper half. */
static vd_status fill_memory(dnnl_memory_t m, const_dnnl_memory_desc_t md, uint32_t seed,
                             vd_err *err) {
    dnnl_data_type_t dt;
    void *p;
    VD_DNNL_CHECK(dnnl_memory_desc_query(md, dnnl_query_data_type, &dt), err);
    VD_DNNL_CHECK(dnnl_memory_get_data_handle(m, &p), err);
    size_t bytes = dnnl_memory_desc_get_size(md);
    size_t n = bytes / (dt == dnnl_bf16 ? 2 : 4);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float v = ((seed >> 8) * (1.0f / 16777216.0f) - 0.5f) * 0.1f;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        if (dt == dnnl_bf16)
            ((uint16_t *)p)[i] = (uint16_t)(bits >> 16);
        else
            ((float *)p)[i] = v;
    }
    return VD_OK;
}

static double run_once(bench *b, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                       vd_status *st, vd_err *err) {
    double t0 = now_s();
    *st = VD_DNNL(dnnl_primitive_execute(prim, b->stream, nargs, args), err);
    if (*st == VD_OK)
        *st = VD_DNNL(dnnl_stream_wait(b->stream), err);
    return now_s() - t0;
}

/* Median milliseconds of the primitive alone: memories are made and filled beforehand, two
 * warm-up runs absorb lazy initialisation, then enough runs to fill o.min_time. */
static vd_status time_runs(bench *b, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                           double *ms, vd_err *err) {
    double t[MAX_RUNS];
    vd_status st = VD_OK;
    run_once(b, prim, nargs, args, &st, err);
    double first = st == VD_OK ? run_once(b, prim, nargs, args, &st, err) : 0;
    if (st != VD_OK)
        return st;
    int runs = (int)(b->o.min_time / (first > 1e-7 ? first : 1e-7));
    runs = runs < b->o.min_runs ? b->o.min_runs : runs > MAX_RUNS ? MAX_RUNS : runs;
    for (int i = 0; i < runs && st == VD_OK; i++)
        t[i] = run_once(b, prim, nargs, args, &st, err);
    if (st != VD_OK)
        return st;
    qsort(t, runs, sizeof t[0], cmp_double);
    *ms = (runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2])) * 1e3;
    return VD_OK;
}

/* Creates the memories the primitive descriptor asks for (its chosen layouts) and times it. */
static vd_status time_pd(bench *b, const_dnnl_primitive_desc_t pd, const int *arg_ids, int nargs,
                         double *ms, vd_err *err) {
    dnnl_exec_arg_t args[8] = {0};
    dnnl_primitive_t prim = NULL;
    vd_status st = VD_DNNL(dnnl_primitive_create(&prim, pd), err);
    int made = 0;
    for (; st == VD_OK && made < nargs; made++) {
        const_dnnl_memory_desc_t md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md,
                                                                   arg_ids[made]);
        args[made].arg = arg_ids[made];
        st = VD_DNNL(dnnl_memory_create(&args[made].memory, md, b->engine, DNNL_MEMORY_ALLOCATE),
                     err);
        if (st == VD_OK)
            st = fill_memory(args[made].memory, md, 12345u + 77u * made, err);
    }
    if (st == VD_OK)
        st = time_runs(b, prim, nargs, args, ms, err);
    for (int i = 0; i < made; i++)
        if (args[i].memory)
            dnnl_memory_destroy(args[i].memory);
    if (prim)
        dnnl_primitive_destroy(prim);
    return st;
}

static vd_status make_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dim_t *dims,
                         dnnl_data_type_t dt, dnnl_format_tag_t tag, vd_err *err) {
    VD_DNNL_CHECK(dnnl_memory_desc_create_with_tag(md, ndims, dims, dt, tag), err);
    return VD_OK;
}

static vd_status weights_md(const conv_shape *s, dnnl_data_type_t dt, dnnl_format_tag_t tag,
                            dnnl_memory_desc_t *md, vd_err *err) {
    dnnl_dims_t dims = {s->cout, s->cin, s->k, s->k};
    return make_md(md, 4, dims, dt, tag, err);
}

/* The descriptors of one direction: activations NHWC, weights in o.wtag, biases f32. `in` is
 * the type of inputs (src, weights, diff_dst), `out` the type the primitive writes. */
typedef struct conv_mds {
    dnnl_memory_desc_t src, wei, bias, dst;
} conv_mds;

static void mds_destroy(conv_mds *m) {
    dnnl_memory_desc_destroy(m->src);
    dnnl_memory_desc_destroy(m->wei);
    dnnl_memory_desc_destroy(m->bias);
    dnnl_memory_desc_destroy(m->dst);
}

static vd_status mds_create(const bench *b, const conv_shape *s, int dir, dnnl_data_type_t in,
                            dnnl_data_type_t out, conv_mds *m, vd_err *err) {
    int ho = out_size(s);
    dnnl_dims_t src = {s->n, s->cin, s->h, s->w}, dst = {s->n, s->cout, ho, ho}, bias = {s->cout};
    memset(m, 0, sizeof *m);
    vd_status st = make_md(&m->src, 4, src, dir == DIR_BWD_D ? out : in, dnnl_nhwc, err);
    if (st == VD_OK)
        st = weights_md(s, dir == DIR_BWD_W ? out : in, b->o.wtag, &m->wei, err);
    if (st == VD_OK)
        st = make_md(&m->bias, 1, bias, dnnl_f32, dnnl_a, err);
    if (st == VD_OK)
        st = make_md(&m->dst, 4, dst, dir == DIR_FWD ? out : in, dnnl_nhwc, err);
    if (st != VD_OK)
        mds_destroy(m);
    return st;
}

/* Returns oneDNN's own status so that the caller can tell "no implementation" from failure. */
static dnnl_status_t pd_create(const bench *b, const conv_shape *s, int dir, const conv_mds *m,
                               const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd) {
    dnnl_dims_t strides = {s->stride, s->stride}, dil = {0, 0}, pl, pr;
    same_padding(s, pl, pr);
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    switch (dir) {
    case DIR_FWD:
        return dnnl_convolution_forward_primitive_desc_create(pd, b->engine, dnnl_forward_training,
                                                              alg, m->src, m->wei, m->bias, m->dst,
                                                              strides, dil, pl, pr, NULL);
    case DIR_BWD_D:
        return dnnl_convolution_backward_data_primitive_desc_create(
            pd, b->engine, alg, m->src, m->wei, m->dst, strides, dil, pl, pr, hint, NULL);
    default:
        return dnnl_convolution_backward_weights_primitive_desc_create(
            pd, b->engine, alg, m->src, m->wei, m->bias, m->dst, strides, dil, pl, pr, hint, NULL);
    }
}

/* A descriptor for one direction, trying an f32 output first (bf16 inputs, f32 results) and
 * then the input type; *pd stays NULL when oneDNN implements neither. */
static vd_status pd_for(const bench *b, const conv_shape *s, int dir, dnnl_data_type_t in,
                        const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd,
                        dnnl_data_type_t *out_dt, vd_err *err) {
    const dnnl_data_type_t outs[2] = {dnnl_f32, in};
    *pd = NULL;
    for (int i = 0; i < (in == dnnl_f32 ? 1 : 2) && !*pd; i++) {
        conv_mds m;
        vd_status st = mds_create(b, s, dir, in, outs[i], &m, err);
        if (st != VD_OK)
            return st;
        dnnl_status_t ds = pd_create(b, s, dir, &m, hint, pd);
        mds_destroy(&m);
        if (ds == dnnl_unimplemented) {
            *pd = NULL;
            continue;
        }
        VD_DNNL_CHECK(ds, err);
        *out_dt = outs[i];
    }
    return VD_OK;
}

/* Names the weights layout a primitive chose: one of the plain tags, or "blocked". */
static void layout_name(const conv_shape *s, const_dnnl_memory_desc_t md, char *name, size_t cap) {
    static const dnnl_format_tag_t tags[] = {dnnl_oihw, dnnl_ohwi, dnnl_hwio, dnnl_ihwo};
    static const char *const names[] = {"oihw", "ohwi", "hwio", "ihwo"};
    dnnl_data_type_t dt;
    snprintf(name, cap, "blocked");
    if (dnnl_memory_desc_query(md, dnnl_query_data_type, &dt) != dnnl_success)
        return;
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        dnnl_memory_desc_t plain;
        if (weights_md(s, dt, tags[i], &plain, NULL) != VD_OK)
            continue;
        int same = dnnl_memory_desc_equal(plain, md);
        dnnl_memory_desc_destroy(plain);
        if (same) {
            snprintf(name, cap, "%s", names[i]);
            return;
        }
    }
}

/* What keeping f32 master weights in o.mtag costs this primitive: a reorder (and bf16
 * conversion) into its weights before fwd/bwd-d, out of its diff-weights after bwd-w. */
static vd_status reorder_cost(bench *b, const conv_shape *s, int dir,
                              const_dnnl_memory_desc_t md, double *ms, vd_err *err) {
    dnnl_memory_desc_t master;
    dnnl_primitive_desc_t pd = NULL;
    *ms = 0;
    vd_status st = weights_md(s, dnnl_f32, b->o.mtag, &master, err);
    if (st != VD_OK)
        return st;
    if (dnnl_memory_desc_equal(master, md)) {
        dnnl_memory_desc_destroy(master);
        return VD_OK;
    }
    const_dnnl_memory_desc_t from = dir == DIR_BWD_W ? md : master;
    const_dnnl_memory_desc_t to = dir == DIR_BWD_W ? master : md;
    st = VD_DNNL(dnnl_reorder_primitive_desc_create(&pd, from, b->engine, to, b->engine, NULL), err);
    static const int args[] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    if (st == VD_OK)
        st = time_pd(b, pd, args, 2, ms, err);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    dnnl_memory_desc_destroy(master);
    return st;
}

static const int dir_args[NDIR][4] = {
    {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
    {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC, 0},
    {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS},
};
static const int dir_nargs[NDIR] = {4, 3, 4};

/* Whether a backward primitive wants its weights as the forward one does, so that one reorder
 * per step would serve both; unknown (-1) where their types differ (bf16 vs f32 gradients). */
static int same_weights(const_dnnl_memory_desc_t a, const_dnnl_memory_desc_t b) {
    dnnl_data_type_t ta, tb;
    if (dnnl_memory_desc_query(a, dnnl_query_data_type, &ta) != dnnl_success ||
        dnnl_memory_desc_query(b, dnnl_query_data_type, &tb) != dnnl_success || ta != tb)
        return -1;
    return dnnl_memory_desc_equal(a, b);
}

static vd_status measure_dir(bench *b, const conv_shape *s, int dir, dnnl_data_type_t in,
                             const_dnnl_primitive_desc_t hint, result *r, vd_err *err) {
    dnnl_primitive_desc_t pd;
    memset(r, 0, sizeof *r);
    vd_status st = pd_for(b, s, dir, in, hint, &pd, &r->out_dt, err);
    if (st != VD_OK || !pd)
        return st;
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(r->impl, sizeof r->impl, "%s", impl ? impl : "?");
    if (strncmp(r->impl, "ref", 3) == 0) {
        r->ref = 1;
        dnnl_primitive_desc_destroy(pd);
        return VD_OK;
    }
    const_dnnl_memory_desc_t wmd = dnnl_primitive_desc_query_md(
        pd, dir == DIR_BWD_W ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    layout_name(s, wmd, r->wlayout, sizeof r->wlayout);
    r->same_as_fwd = dir == DIR_FWD ? 1
                   : same_weights(wmd, dnnl_primitive_desc_query_md(hint, dnnl_query_weights_md, 0));
    st = time_pd(b, pd, dir_args[dir], dir_nargs[dir], &r->ms, err);
    if (st == VD_OK)
        st = reorder_cost(b, s, dir, wmd, &r->reorder_ms, err);
    dnnl_primitive_desc_destroy(pd);
    r->ok = st == VD_OK;
    r->gflops = r->ok ? shape_flops(s) / (r->ms * 1e6) : 0;
    return st;
}

/* All three directions of one shape and type; backward descriptors get the forward one (with
 * the input type throughout, as in training) as their hint. */
static vd_status measure(bench *b, int si, int dt, vd_err *err) {
    const conv_shape *s = &shapes[si];
    dnnl_data_type_t in = dnnl_dt(dt);
    dnnl_primitive_desc_t hint = NULL;
    conv_mds m;
    vd_status st = mds_create(b, s, DIR_FWD, in, in, &m, err);
    if (st != VD_OK)
        return st;
    dnnl_status_t ds = pd_create(b, s, DIR_FWD, &m, NULL, &hint);
    mds_destroy(&m);
    if (ds == dnnl_unimplemented)
        return VD_OK; /* results stay zeroed: n/a */
    VD_DNNL_CHECK(ds, err);
    for (int dir = 0; dir < NDIR && st == VD_OK; dir++)
        st = measure_dir(b, s, dir, in, hint, &b->res[si][dt][dir], err);
    dnnl_primitive_desc_destroy(hint);
    return st;
}

static void shape_label(const conv_shape *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s b%d %-15s %dx%d %d->%d @%dx%d", s->model, s->n, s->role, s->k, s->k,
             s->cin, s->cout, s->h, s->w);
}

static int shape_selected(const bench *b, const conv_shape *s) {
    return !b->o.only || strcmp(b->o.only, s->model) == 0;
}

static void print_rate(const result *r) {
    if (r->ok)
        printf(" %7.1f", r->gflops);
    else
        printf(" %7s", r->ref ? "ref" : "n/a");
}

static void print_row(const bench *b, int si) {
    char label[96];
    shape_label(&shapes[si], label, sizeof label);
    printf("%-50s %8.1f |", label, shape_flops(&shapes[si]) * 1e-6);
    for (int dt = 0; dt < NDT; dt++) {
        for (int dir = 0; dir < NDIR; dir++) {
            if (b->o.dtypes[dt])
                print_rate(&b->res[si][dt][dir]);
            else
                printf(" %7s", "-");
        }
        printf(" |");
    }
    printf("\n");
    fflush(stdout);
}

static void print_detail(const result *r, int dir) {
    static const char *const same[] = {"?", "differs", "same"};
    if (!r->ok) {
        printf(" | %-5s %-46s", dir_names[dir], r->ref ? r->impl : "n/a");
        return;
    }
    printf(" | %-5s %-46s %7.3f", dir_names[dir], r->impl, r->ms);
    if (dir == DIR_FWD)
        printf(" %-7s", r->wlayout);
    else
        printf(" %-7s", same[r->same_as_fwd + 1]);
    printf(" %6.3f", r->reorder_ms);
}

static void print_details(const bench *b) {
    printf("\nper direction: implementation, median ms, weights layout (fwd) or whether backward "
           "wants the forward's layout, ms to reorder f32 master weights (%s) to or from it\n",
           b->o.mtag == dnnl_oihw ? "oihw" : b->o.mtag == dnnl_hwio ? "hwio" : "ohwi");
    for (int si = 0; si < NSHAPES; si++) {
        if (!shape_selected(b, &shapes[si]))
            continue;
        char label[96];
        shape_label(&shapes[si], label, sizeof label);
        for (int dt = 0; dt < NDT; dt++) {
            if (!b->o.dtypes[dt])
                continue;
            printf("%-50s %s", label, dt_names[dt]);
            for (int dir = 0; dir < NDIR; dir++)
                print_detail(&b->res[si][dt][dir], dir);
            printf("\n");
        }
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: conv_rates [options]\n"
            "  --runs N        timed runs at least per measurement (1..%d, default 5)\n"
            "  --min-time S    seconds of timed runs at least per measurement (default 0.05)\n"
            "  --wtag TAG      weights layout given to oneDNN: any|oihw|ohwi|hwio (default any)\n"
            "  --only MODEL    cifar10 or mnist shapes only\n"
            "  --dtype T       fp32, bf16 or both (default both)\n"
            "Threads: OMP_NUM_THREADS. GFLOP/s = 2*N*Ho*Wo*Cout*Cin*kh*kw / median time.\n",
            MAX_RUNS);
}

static int parse_tag(const char *s, dnnl_format_tag_t *tag) {
    static const char *const names[] = {"any", "oihw", "ohwi", "hwio"};
    static const dnnl_format_tag_t tags[] = {dnnl_format_tag_any, dnnl_oihw, dnnl_ohwi, dnnl_hwio};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *tag = tags[i];
            return 1;
        }
    return 0;
}

static int parse_opts(int argc, char **argv, opts *o) {
    static const struct option longs[] = {
        {"runs", required_argument, 0, 'r'}, {"min-time", required_argument, 0, 't'},
        {"wtag", required_argument, 0, 'w'}, {"only", required_argument, 0, 'o'},
        {"dtype", required_argument, 0, 'd'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    *o = (opts){5, 0.05, dnnl_format_tag_any, dnnl_ohwi, "any", NULL, {1, 1}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'r':
            o->min_runs = (int)strtol(optarg, &end, 10);
            if (*end || o->min_runs < 1 || o->min_runs > MAX_RUNS)
                return fprintf(stderr, "conv_rates: --runs must be 1..%d\n", MAX_RUNS), 2;
            break;
        case 't':
            o->min_time = strtod(optarg, &end);
            if (*end || !(o->min_time >= 0 && o->min_time <= 10))
                return fprintf(stderr, "conv_rates: --min-time must be 0..10 seconds\n"), 2;
            break;
        case 'w':
            if (!parse_tag(optarg, &o->wtag))
                return fprintf(stderr, "conv_rates: unknown --wtag '%s'\n", optarg), 2;
            o->wtag_name = optarg;
            if (o->wtag != dnnl_format_tag_any)
                o->mtag = o->wtag;
            break;
        case 'o':
            if (strcmp(optarg, "cifar10") && strcmp(optarg, "mnist"))
                return fprintf(stderr, "conv_rates: --only takes cifar10 or mnist\n"), 2;
            o->only = optarg;
            break;
        case 'd':
            o->dtypes[DT_F32] = !strcmp(optarg, "fp32") || !strcmp(optarg, "both");
            o->dtypes[DT_BF16] = !strcmp(optarg, "bf16") || !strcmp(optarg, "both");
            if (!o->dtypes[DT_F32] && !o->dtypes[DT_BF16])
                return fprintf(stderr, "conv_rates: --dtype takes fp32, bf16 or both\n"), 2;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return fprintf(stderr, "conv_rates: unexpected argument '%s'\n", argv[optind]), 2;
    return 0;
}

static void print_header(const bench *b) {
    const dnnl_version_t *v = dnnl_version();
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("oneDNN %d.%d.%d (%s), cpu runtime %s, ISA %s, %d threads, weights %s\n", v->major,
           v->minor, v->patch, v->hash, dnnl_runtime2str(v->cpu_runtime),
           dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), threads, b->o.wtag_name);
    double load[1] = {0};
    if (getloadavg(load, 1) == 1 && load[0] > 0.5)
        printf("warning: load average %.1f: OpenMP threads that share cores with other work run "
               "several times slower; measure on an idle machine\n", load[0]);
    printf("GFLOP/s, median of timed runs after warm-up; NHWC activations; bf16 = bf16 inputs, "
           "f32 outputs where implemented\n\n");
    printf("%-50s %8s | %-23s | %-23s |\n", "shape", "MFLOP", "   fp32 fwd  bwd-d  bwd-w",
           "   bf16 fwd  bwd-d  bwd-w");
}

static vd_status run_all(bench *b, vd_err *err) {
    VD_DNNL_CHECK(dnnl_engine_create(&b->engine, dnnl_cpu, 0), err);
    VD_DNNL_CHECK(dnnl_stream_create(&b->stream, b->engine, dnnl_stream_default_flags), err);
    print_header(b);
    vd_status st = VD_OK;
    for (int si = 0; si < NSHAPES && st == VD_OK; si++) {
        if (!shape_selected(b, &shapes[si]))
            continue;
        for (int dt = 0; dt < NDT && st == VD_OK; dt++)
            if (b->o.dtypes[dt])
                st = measure(b, si, dt, err);
        if (st == VD_OK)
            print_row(b, si);
    }
    if (st == VD_OK)
        print_details(b);
    return st;
}

int main(int argc, char **argv) {
    static bench b;
    int rc = parse_opts(argc, argv, &b.o);
    if (rc)
        return rc < 0 ? 0 : rc;
    vd_err err = {0};
    double t0 = now_s();
    vd_status st = run_all(&b, &err);
    if (b.stream)
        dnnl_stream_destroy(b.stream);
    if (b.engine)
        dnnl_engine_destroy(b.engine);
    if (st != VD_OK) {
        fprintf(stderr, "conv_rates: %s\n", err.msg);
        return 1;
    }
    printf("\ntotal %.1f s\n", now_s() - t0);
    return 0;
}
#endif
