/* Backend conformance: every op of a fast backend against the `cpu_ref` oracle on the
 * same random inputs, from a table of cases (shapes, strides, channel views, bias, acc, both
 * latent bases, residual priors, 1 and 3 colours, 8 and 5 bits, crops; the FID network's
 * pools, bilinear resizes and convolutions with a fused LeakyReLU). Outputs are compared
 * by max relative error |a - b| / max|b|; guard values past every buffer's end and in the
 * ld padding of views must survive. Samplers must agree bit for bit, and reductions must give
 * the same bits at 1 and 2 threads. The backend is the first argument (tests/vd_test_backends.h):
 * cpu (default; skips (77) when the build has no oneDNN, fails with VD_REQUIRE_ALL=1),
 * cuda_emu (the CUDA kernels as host loops, cuDNN's calls as loops around the backend's own
 * packing) or cuda (a GPU: skips without one); both then run the conv cases in bf16 and with
 * TF32 allowed (the emulation multiplies exactly either way). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "vd_test.h"
#include "vd_test_backends.h"
#define VD_BUF_ALLOC vd_test_host_alloc
#define VD_BUF_FREE vd_test_host_free
#include "vd_test_buf.h"
#include "vdvae/rng.h"

#define TOL_CONV 1e-4
#define TOL_ELEM 1e-5
#define TOL_SUM 1e-5
#define LN2 0.6931471805599453

static vd_backend *ref, *fast;
static float *sync_dev; /* 4 bytes of fast's memory: downloading them waits for its ops */

/* The host reads what fast wrote only once fast's queued ops are done (a GPU's stream). */
static void sync_fast(void) {
    float x;
    fast->i->download(fast, &x, sync_dev, sizeof x);
}

/* ---- buffers (vd_test_buf.h) ---- */

static buf vec_new(int len) {
    return buf_new(1, 1, 1, len, 0);
}

static void expect_ok(const char *what) {
    vd_err err = {0};
    CHECKF(vd_backend_check(ref, &err) == VD_OK, "%s: cpu_ref failed: %s", what, err.msg);
    CHECKF(vd_backend_check(fast, &err) == VD_OK, "%s: %s failed: %s", what, vd_test_backend_name(),
           err.msg);
}

static void expect_close(const char *what, const buf *got, const buf *want, double tol) {
    sync_fast();
    double e = max_rel(got, want);
    CHECKF(e <= tol, "%s: max relative error %.3g > %.3g", what, e, tol);
    CHECKF(guards_intact(got), "%s: %s wrote outside its output", what, vd_test_backend_name());
    CHECKF(guards_intact(want), "%s: cpu_ref wrote outside its output", what);
    expect_ok(what);
}

static void expect_same(const char *what, const buf *got, const buf *want) {
    sync_fast();
    int64_t bad = 0;
    for (int64_t i = 0; i < numel(want); i++)
        bad += memcmp(el(got, i), el(want, i), sizeof(float)) != 0;
    CHECKF(bad == 0, "%s: %lld of %lld samples differ", what, (long long)bad,
           (long long)numel(want));
    CHECKF(guards_intact(got) && guards_intact(want), "%s: a backend wrote outside", what);
    expect_ok(what);
}

/* got: fast's output, a float in its memory */
static void expect_sum(const char *what, const float *got_at, float want) {
    sync_fast();
    float got = *got_at;
    double e = fabs((double)got - want) / fmax(fabs((double)want), 1e-30);
    CHECKF(e <= TOL_SUM, "%s: %s %.9g vs cpu_ref %.9g (relative %.3g)", what, vd_test_backend_name(), got,
           want, e);
    expect_ok(what);
}

/* One float of output for fast (its memory), preset to v. */
static buf scalar_new(float v) {
    buf b = buf_new(1, 1, 1, 1, 0);
    b.t.data[0] = v;
    return b;
}

/* ---- convolutions ---- */

static const conv_case conv_cases[] = {
    {"1x1 gemm", 2, 6, 5, 16, 24, 1, 1, 1, 0, 0, 0, 0, 0, 0, true, false},
    {"1x1 gemm views acc", 2, 6, 5, 16, 24, 1, 1, 1, 0, 0, 0, 0, 5, 3, true, true},
    {"1x1 gemm views no bias", 2, 4, 4, 32, 8, 1, 1, 1, 0, 0, 0, 0, 32, 8, false, true},
    {"1x1 padded", 2, 5, 4, 6, 7, 1, 1, 1, 1, 0, 0, 1, 0, 0, true, false},
    {"1x1 stride 2", 2, 6, 6, 6, 7, 1, 1, 2, 0, 0, 0, 0, 2, 0, true, true},
    {"3x3 same", 2, 7, 6, 8, 12, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, false},
    {"3x3 views acc", 2, 7, 6, 8, 12, 3, 3, 1, 1, 1, 1, 1, 4, 2, false, true},
    {"3x3 x view", 1, 9, 9, 5, 5, 3, 3, 1, 1, 1, 1, 1, 3, 0, true, false},
    {"3x3 image in", 2, 8, 8, 3, 16, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, false},
    {"3x3 logits out", 1, 8, 8, 16, 100, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, true},
    {"3x3 32ch", 2, 16, 16, 32, 32, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, false},
    {"2x2 stride 2 pool", 2, 8, 8, 6, 10, 2, 2, 2, 0, 0, 0, 0, 0, 0, true, false},
    {"2x2 stride 2 views", 2, 8, 8, 6, 10, 2, 2, 2, 0, 0, 0, 0, 2, 6, true, true},
    {"4x4 stride 4 pool", 2, 8, 8, 5, 7, 4, 4, 4, 0, 0, 0, 0, 0, 0, true, false},
    {"4x4 stride 1 asym pads", 2, 7, 7, 4, 6, 4, 4, 1, 2, 2, 1, 1, 0, 0, true, true},
    {"2x2 stride 1 top-left pad", 1, 5, 6, 3, 4, 2, 2, 1, 1, 1, 0, 0, 1, 0, false, false},
    {"5x3 uneven pads", 2, 9, 7, 4, 5, 5, 3, 1, 2, 0, 2, 2, 0, 0, true, false},
    {"3x3 stride 2 floor", 2, 9, 9, 4, 4, 3, 3, 2, 0, 0, 0, 0, 0, 0, true, false},
    /* the FID Inception network's: 1x7 / 7x1 factorised kernels, the fully connected layer */
    {"1x7 inception", 2, 9, 9, 8, 6, 1, 7, 1, 0, 3, 0, 3, 0, 2, true, false},
    {"7x1 inception", 2, 9, 9, 8, 6, 7, 1, 1, 3, 0, 3, 0, 3, 0, true, false},
    {"1x1 on 1x1 fully connected", 4, 1, 1, 256, 100, 1, 1, 1, 0, 0, 0, 0, 0, 0, true, false},
};

static int conv_out(int in, int k, int s, int lo, int hi) {
    return (in + lo + hi - k) / s + 1;
}

/* Each direction runs twice on both backends: the second call hits cpu's primitive cache
 * and, where gradients accumulate, adds onto the first. */
static void conv_case_run(const conv_case *c, double tol) {
    vd_conv_desc cv = {c->c_in, c->c_out, c->kh, c->kw, c->stride, c->pt, c->pl, c->pb, c->pr, VD_CONV_PRE_NONE, 0};
    int ho = conv_out(c->h, c->kh, c->stride, c->pt, c->pb);
    int wo = conv_out(c->w, c->kw, c->stride, c->pl, c->pr);
    int nw = c->c_out * c->c_in * c->kh * c->kw;
    buf x = buf_rand_new(c->n, c->h, c->w, c->c_in, c->pad_x, -1, 1);
    buf dy = buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -1, 1);
    buf w = vec_new(nw), b = vec_new(c->c_out);
    buf_rand(&w, -0.5, 0.5);
    buf_rand(&b, -1, 1);
    const float *bias = c->bias ? b.t.data : NULL;
    char what[128];

    buf y0 = buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -9, 9), y1 = buf_clone(&y0);
    for (int rep = 0; rep < 2; rep++) {
        ref->i->conv_fwd(ref, &cv, &x.t, w.t.data, bias, &y0.t);
        fast->i->conv_fwd(fast, &cv, &x.t, w.t.data, bias, &y1.t);
    }
    snprintf(what, sizeof what, "conv %s fwd", c->name);
    expect_close(what, &y1, &y0, tol);

    /* conv_fwd_act (LeakyReLU: the FID network's conv + ReLU) against conv_fwd then act_fwd,
     * accumulating where the case does; then the plain forward again (a cached fused primitive
     * must not answer it) */
    vd_conv_desc cva = cv;
    cva.acc_y = c->acc;
    buf a0 = buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -9, 9), a1 = buf_clone(&a0);
    ref->i->conv_fwd(ref, &cva, &x.t, w.t.data, bias, &a0.t);
    ref->i->act_fwd(ref, VD_ACT_LEAKY_RELU, 0.1f, &a0.t, &a0.t);
    vd_backend_conv_fwd_act(fast, &cva, VD_ACT_LEAKY_RELU, 0.1f, &x.t, w.t.data, bias, &a1.t);
    snprintf(what, sizeof what, "conv %s fwd+leaky_relu%s", c->name, c->acc ? " acc" : "");
    expect_close(what, &a1, &a0, tol);
    fast->i->conv_fwd(fast, &cv, &x.t, w.t.data, bias, &y1.t);
    ref->i->conv_fwd(ref, &cv, &x.t, w.t.data, bias, &y0.t);
    snprintf(what, sizeof what, "conv %s fwd after fwd+act", c->name);
    expect_close(what, &y1, &y0, tol);
    buf_free(&a0), buf_free(&a1);

    buf dx0 = buf_rand_new(c->n, c->h, c->w, c->c_in, c->pad_x, -1, 1), dx1 = buf_clone(&dx0);
    for (int rep = 0; rep < 2; rep++) {
        ref->i->conv_bwd_data(ref, &cv, &dy.t, w.t.data, &dx0.t, c->acc);
        fast->i->conv_bwd_data(fast, &cv, &dy.t, w.t.data, &dx1.t, c->acc);
    }
    snprintf(what, sizeof what, "conv %s bwd_data%s", c->name, c->acc ? " acc" : "");
    expect_close(what, &dx1, &dx0, tol);

    buf dw0 = buf_rand_new(1, 1, 1, nw, 0, -1, 1), dw1 = buf_clone(&dw0);
    buf db0 = buf_rand_new(1, 1, 1, c->c_out, 0, -1, 1), db1 = buf_clone(&db0);
    for (int rep = 0; rep < 2; rep++) {
        ref->i->conv_bwd_weights(ref, &cv, &x.t, &dy.t, dw0.t.data, c->bias ? db0.t.data : NULL);
        fast->i->conv_bwd_weights(fast, &cv, &x.t, &dy.t, dw1.t.data, c->bias ? db1.t.data : NULL);
    }
    snprintf(what, sizeof what, "conv %s bwd_weights dw", c->name);
    expect_close(what, &dw1, &dw0, tol);
    snprintf(what, sizeof what, "conv %s bwd_weights db", c->name);
    expect_close(what, &db1, &db0, tol);

    buf *all[] = {&x, &dy, &w, &b, &y0, &y1, &dx0, &dx1, &dw0, &dw1, &db0, &db1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
}

static void conv_cases_run(const char *mode, double tol) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++)
        conv_case_run(&conv_cases[i], tol);
    fprintf(stderr, "convolutions %s: %zu cases\n", mode, sizeof conv_cases / sizeof *conv_cases);
}

/* TF32 keeps 10 of float's 23 mantissa bits: about 1e-3 relative per product. */
#define TOL_TF32 1e-2

static void test_convs(void) {
    conv_cases_run("fp32", TOL_CONV);
    if (vd_test_kind_now == VD_TEST_CPU) return; /* cpu's bf16: test_bf16 */
    vd_err err = {0};
    CHECK(vd_backend_set_precision(ref, VD_PREC_BF16, &err) == VD_OK);
    CHECK(vd_backend_set_precision(fast, VD_PREC_BF16, &err) == VD_OK);
    conv_cases_run("bf16 (both rounded)", TOL_CONV);
    CHECK(vd_backend_set_precision(ref, VD_PREC_FP32, &err) == VD_OK);
    CHECK(vd_backend_set_precision(fast, VD_PREC_FP32, &err) == VD_OK);
    vd_backend_allow_tf32(fast, true);
    conv_cases_run("tf32 against exact fp32", TOL_TF32);
    vd_backend_allow_tf32(fast, false);
}

/* ---- elementwise ---- */

typedef struct shape_case {
    int n, h, w, c, pad;
} shape_case;

/* small, ragged, views, and big enough for the parallel paths (dense and strided) */
static const shape_case shapes[] = {
    {2, 5, 7, 3, 0}, {2, 4, 4, 13, 3}, {1, 1, 1, 1, 0}, {2, 32, 32, 96, 0}, {3, 8, 8, 96, 32},
};
enum { NSHAPES = sizeof shapes / sizeof *shapes };

static buf shape_buf(const shape_case *s, int pad, double lo, double hi) {
    return buf_rand_new(s->n, s->h, s->w, s->c, pad, lo, hi);
}

typedef struct act_case {
    vd_act act;
    float param;
    const char *name;
} act_case;

static const act_case acts[] = {
    {VD_ACT_SILU, 0, "silu"},
    {VD_ACT_LEAKY_RELU, 0.1f, "leaky_relu"},
    {VD_ACT_SOFTPLUS, (float)LN2, "softplus ln2"},
    {VD_ACT_SOFTPLUS, 2.0f, "softplus 2"},
};

static void act_case_run(const act_case *a, const shape_case *s) {
    char what[96];
    buf x = shape_buf(s, s->pad, -30, 30), dy = shape_buf(s, 0, -1, 1);
    *el(&x, 0) = 0; /* the kinks, thresholds and saturation */
    if (numel(&x) > 2) *el(&x, 1) = a->param > 0 ? 20 / a->param : 88, *el(&x, 2) = -88;
    if (numel(&x) > 3) *el(&x, 3) = NAN; /* must come out NaN: the step skip relies on it */
    buf y0 = shape_buf(s, s->pad + 1, 0, 1), y1 = buf_clone(&y0);
    ref->i->act_fwd(ref, a->act, a->param, &x.t, &y0.t);
    fast->i->act_fwd(fast, a->act, a->param, &x.t, &y1.t);
    snprintf(what, sizeof what, "act %s fwd c %d ld %lld", a->name, s->c, (long long)y0.t.ld);
    expect_close(what, &y1, &y0, TOL_ELEM);
    for (int acc = 0; acc < 2; acc++) {
        buf dx0 = shape_buf(s, 2, -1, 1), dx1 = buf_clone(&dx0);
        ref->i->act_bwd(ref, a->act, a->param, &x.t, &dy.t, &dx0.t, acc);
        fast->i->act_bwd(fast, a->act, a->param, &x.t, &dy.t, &dx1.t, acc);
        snprintf(what, sizeof what, "act %s bwd acc %d c %d", a->name, acc, s->c);
        expect_close(what, &dx1, &dx0, TOL_ELEM);
        buf_free(&dx0);
        buf_free(&dx1);
    }
    buf_free(&x), buf_free(&dy), buf_free(&y0), buf_free(&y1);
}

static void test_activations(void) {
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
        for (int s = 0; s < NSHAPES; s++)
            act_case_run(&acts[a], &shapes[s]);
}

static void memory_case_run(const shape_case *s) {
    buf a = shape_buf(s, s->pad, -1, 1), b = shape_buf(s, 0, -1, 1);
    buf f0 = shape_buf(s, s->pad, 0, 1), f1 = buf_clone(&f0);
    ref->i->fill(ref, &f0.t, 0.25f);
    fast->i->fill(fast, &f1.t, 0.25f);
    expect_close("fill", &f1, &f0, 0);
    buf c0 = shape_buf(s, 1, 0, 1), c1 = buf_clone(&c0);
    ref->i->copy(ref, &a.t, &c0.t);
    fast->i->copy(fast, &a.t, &c1.t);
    expect_close("copy", &c1, &c0, 0);
    ref->i->add(ref, &a.t, &b.t, &c0.t);
    fast->i->add(fast, &a.t, &b.t, &c1.t);
    expect_close("add", &c1, &c0, 0);
    ref->i->add(ref, &c0.t, &b.t, &c0.t); /* y aliases a */
    fast->i->add(fast, &c1.t, &b.t, &c1.t);
    expect_close("add in place", &c1, &c0, 0);
    ref->i->axpy(ref, -0.75f, &a.t, &c0.t);
    fast->i->axpy(fast, -0.75f, &a.t, &c1.t);
    expect_close("axpy", &c1, &c0, TOL_ELEM);
    buf *all[] = {&a, &b, &f0, &f1, &c0, &c1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
}

static void test_memory_ops(void) {
    for (int s = 0; s < NSHAPES; s++)
        memory_case_run(&shapes[s]);
}

static void upsample_case_run(int n, int h, int w, int c, int factor, int pad) {
    buf x = buf_rand_new(n, h, w, c, pad, -1, 1);
    buf dy = buf_rand_new(n, h * factor, w * factor, c, pad + 1, -1, 1);
    buf y0 = buf_rand_new(n, h * factor, w * factor, c, 2, -1, 1), y1 = buf_clone(&y0);
    ref->i->upsample_fwd(ref, factor, &x.t, &y0.t);
    fast->i->upsample_fwd(fast, factor, &x.t, &y1.t);
    expect_close("upsample_fwd", &y1, &y0, 0);
    for (int acc = 0; acc < 2; acc++) {
        buf dx0 = buf_rand_new(n, h, w, c, pad, -1, 1), dx1 = buf_clone(&dx0);
        ref->i->upsample_bwd(ref, factor, &dy.t, &dx0.t, acc);
        fast->i->upsample_bwd(fast, factor, &dy.t, &dx1.t, acc);
        expect_close(acc ? "upsample_bwd acc" : "upsample_bwd", &dx1, &dx0, TOL_ELEM);
        buf_free(&dx0);
        buf_free(&dx1);
    }
    buf_free(&x), buf_free(&dy), buf_free(&y0), buf_free(&y1);
}

static void broadcast_case_run(int n, int h, int w, int c, int pad) {
    buf t = vec_new(c * h * w), dy = buf_rand_new(n, h, w, c, pad, -1, 1);
    buf_rand(&t, -1, 1);
    for (int acc = 0; acc < 2; acc++) {
        buf y0 = buf_rand_new(n, h, w, c, pad, -1, 1), y1 = buf_clone(&y0);
        ref->i->broadcast_fwd(ref, t.t.data, &y0.t, acc);
        fast->i->broadcast_fwd(fast, t.t.data, &y1.t, acc);
        expect_close(acc ? "broadcast_fwd acc" : "broadcast_fwd", &y1, &y0, 0);
        buf_free(&y0);
        buf_free(&y1);
    }
    buf dt0 = buf_rand_new(1, 1, 1, c * h * w, 0, -1, 1), dt1 = buf_clone(&dt0);
    ref->i->broadcast_bwd(ref, &dy.t, dt0.t.data);
    fast->i->broadcast_bwd(fast, &dy.t, dt1.t.data);
    expect_close("broadcast_bwd", &dt1, &dt0, TOL_ELEM);
    buf_free(&t), buf_free(&dy), buf_free(&dt0), buf_free(&dt1);
}

static void test_resampling(void) {
    upsample_case_run(2, 3, 4, 5, 2, 0);
    upsample_case_run(2, 2, 2, 7, 4, 3);
    upsample_case_run(8, 16, 16, 96, 2, 0);
    upsample_case_run(8, 4, 4, 96, 4, 32);
    broadcast_case_run(3, 2, 3, 2, 1);
    broadcast_case_run(8, 16, 16, 96, 0);
    broadcast_case_run(4, 8, 8, 70, 5);
}

/* ---- inference-only resampling: pooling and the bilinear resize (the FID network's) ---- */

typedef struct pool_case {
    const char *name;
    int n, h, w, c;
    vd_pool_desc p;
    int pad_x, pad_y; /* extra ld channels: views */
} pool_case;

static const pool_case pool_cases[] = {
    {"max 3x3 s2 (stem)", 2, 15, 15, 5, {VD_POOL_MAX, 3, 3, 2, 0, 0, 0, 0}, 0, 0},
    {"max 3x3 s1 pad 1 (Mixed_7c)", 2, 8, 8, 13, {VD_POOL_MAX, 3, 3, 1, 1, 1, 1, 1}, 3, 2},
    {"avg 3x3 s1 pad 1, pads not counted", 2, 9, 7, 6, {VD_POOL_AVG, 3, 3, 1, 1, 1, 1, 1}, 0, 4},
    {"avg global 8x8", 3, 8, 8, 70, {VD_POOL_AVG, 8, 8, 1, 0, 0, 0, 0}, 2, 0},
    {"avg 2x3 s2 uneven pads", 2, 10, 9, 4, {VD_POOL_AVG, 2, 3, 2, 1, 2, 0, 1}, 1, 1},
    {"max 2x3 s2 uneven pads", 2, 10, 9, 4, {VD_POOL_MAX, 2, 3, 2, 0, 1, 1, 2}, 0, 1},
    {"max 3x3 s2 parallel", 4, 35, 35, 96, {VD_POOL_MAX, 3, 3, 2, 0, 0, 0, 0}, 32, 0},
    {"avg 3x3 s1 pad 1 parallel", 4, 17, 17, 96, {VD_POOL_AVG, 3, 3, 1, 1, 1, 1, 1}, 0, 32},
};

static void pool_case_run(const pool_case *c) {
    const vd_pool_desc *p = &c->p;
    int ho = conv_out(c->h, p->kh, p->stride, p->pad_top, p->pad_bottom);
    int wo = conv_out(c->w, p->kw, p->stride, p->pad_left, p->pad_right);
    buf x = buf_rand_new(c->n, c->h, c->w, c->c, c->pad_x, -3, 3);
    if (p->kind == VD_POOL_MAX) *el(&x, 7) = NAN; /* a NaN wins its windows, as in torch */
    buf y0 = buf_rand_new(c->n, ho, wo, c->c, c->pad_y, -9, 9), y1 = buf_clone(&y0);
    ref->i->pool_fwd(ref, p, &x.t, &y0.t);
    fast->i->pool_fwd(fast, p, &x.t, &y1.t);
    char what[128];
    snprintf(what, sizeof what, "pool_fwd %s", c->name);
    expect_close(what, &y1, &y0, p->kind == VD_POOL_MAX ? 0 : TOL_ELEM);
    buf_free(&x), buf_free(&y0), buf_free(&y1);
}

typedef struct resize_case {
    const char *name;
    int n, h, w, c, ho, wo, pad_x, pad_y;
} resize_case;

static const resize_case resize_cases[] = {
    {"32 to 299 (FID input)", 2, 32, 32, 3, 299, 299, 0, 0},
    {"28 to 299 grey", 1, 28, 28, 1, 299, 299, 0, 0},
    {"up and down mixed", 2, 5, 7, 6, 11, 4, 2, 3},
    {"same size copies", 2, 9, 6, 5, 9, 6, 1, 0},
    {"one pixel", 2, 1, 1, 3, 3, 2, 0, 0},
    {"300 to 17", 1, 300, 300, 2, 17, 17, 0, 1},
    {"views, parallel", 3, 20, 24, 40, 37, 45, 8, 4},
};

static void resize_case_run(const resize_case *c) {
    buf x = buf_rand_new(c->n, c->h, c->w, c->c, c->pad_x, -1, 1);
    buf y0 = buf_rand_new(c->n, c->ho, c->wo, c->c, c->pad_y, -9, 9), y1 = buf_clone(&y0);
    ref->i->resize_bilinear(ref, &x.t, &y0.t);
    fast->i->resize_bilinear(fast, &x.t, &y1.t);
    char what[128];
    snprintf(what, sizeof what, "resize_bilinear %s", c->name);
    expect_close(what, &y1, &y0, TOL_ELEM);
    buf_free(&x), buf_free(&y0), buf_free(&y1);
}

static void test_inference_resampling(void) {
    for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++)
        pool_case_run(&pool_cases[i]);
    for (size_t i = 0; i < sizeof resize_cases / sizeof *resize_cases; i++)
        resize_case_run(&resize_cases[i]);
}

/* ---- latents ---- */

typedef struct latent_case {
    int base;
    float beta;
    bool residual;
    int v, pad; /* variates; extra ld channels of the views */
} latent_case;

static const latent_case latent_cases[] = {
    {VD_BASE_STD, (float)LN2, false, 5, 0},  {VD_BASE_STD, (float)LN2, true, 5, 3},
    {VD_BASE_STD, 1.0f, true, 32, 32},       {VD_BASE_LOGSTD, (float)LN2, false, 5, 0},
    {VD_BASE_LOGSTD, (float)LN2, true, 7, 7}, {VD_BASE_LOGSTD, 1.0f, true, 96, 0},
};

#define LN 2
#define LH 8
#define LW 8

/* p values as a base holds them: std > 0 (std), logstd anywhere (logstd). */
static buf p_new(int base, int v, int pad) {
    return buf_rand_new(LN, LH, LW, v, pad, base == VD_BASE_STD ? 0.05 : -2,
                        base == VD_BASE_STD ? 2 : 1);
}

static void latent_stats_case(const latent_case *l) {
    buf raw = buf_rand_new(LN, LH, LW, 2 * l->v, l->pad, -25, 25);
    buf pm = buf_rand_new(LN, LH, LW, l->v, l->pad, -1, 1), pp = p_new(l->base, l->v, l->pad);
    const vd_tensor *prm = l->residual ? &pm.t : NULL, *prp = l->residual ? &pp.t : NULL;
    buf m0 = buf_rand_new(LN, LH, LW, l->v, l->pad, 0, 1), m1 = buf_clone(&m0);
    buf p0 = buf_rand_new(LN, LH, LW, l->v, 1, 0, 1), p1 = buf_clone(&p0);
    ref->i->latent_stats_fwd(ref, l->base, l->beta, &raw.t, prm, prp, &m0.t, &p0.t);
    fast->i->latent_stats_fwd(fast, l->base, l->beta, &raw.t, prm, prp, &m1.t, &p1.t);
    expect_close("latent_stats_fwd mean", &m1, &m0, TOL_ELEM);
    expect_close("latent_stats_fwd p", &p1, &p0, TOL_ELEM);

    buf dm = buf_rand_new(LN, LH, LW, l->v, 0, -1, 1);
    buf dp = buf_rand_new(LN, LH, LW, l->v, 2, -1, 1);
    buf dr0 = buf_rand_new(LN, LH, LW, 2 * l->v, l->pad, 0, 1), dr1 = buf_clone(&dr0);
    buf dpm0 = buf_rand_new(LN, LH, LW, l->v, 1, 0, 1), dpm1 = buf_clone(&dpm0);
    buf dpp0 = buf_rand_new(LN, LH, LW, l->v, 0, 0, 1), dpp1 = buf_clone(&dpp0);
    ref->i->latent_stats_bwd(ref, l->base, l->beta, &raw.t, prm, prp, &dm.t, &dp.t, &dr0.t,
                             l->residual ? &dpm0.t : NULL, l->residual ? &dpp0.t : NULL);
    fast->i->latent_stats_bwd(fast, l->base, l->beta, &raw.t, prm, prp, &dm.t, &dp.t, &dr1.t,
                              l->residual ? &dpm1.t : NULL, l->residual ? &dpp1.t : NULL);
    expect_close("latent_stats_bwd draw", &dr1, &dr0, TOL_ELEM);
    expect_close("latent_stats_bwd dprior_mean", &dpm1, &dpm0, TOL_ELEM);
    expect_close("latent_stats_bwd dprior_p", &dpp1, &dpp0, TOL_ELEM);
    buf *all[] = {&raw, &pm, &pp,  &m0,  &m1,   &p0,   &p1,  &dm,
                  &dp,  &dr0, &dr1, &dpm0, &dpm1, &dpp0, &dpp1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
}

/* With given noise and with Philox draws; samples must agree exactly. */
static void latent_sample_case(const latent_case *l, float temp, bool given) {
    buf mean = buf_rand_new(LN, LH, LW, l->v, l->pad, -1, 1), p = p_new(l->base, l->v, l->pad);
    buf eps = buf_rand_new(LN, LH, LW, l->v, 0, -3, 3);
    vd_noise noise = {given ? eps.t.data : NULL, 1234, vd_rng_stream(7, 300)};
    buf z0 = buf_rand_new(LN, LH, LW, l->v, l->pad + 1, 0, 1), z1 = buf_clone(&z0);
    ref->i->latent_sample_fwd(ref, l->base, l->beta, temp, &mean.t, &p.t, &noise, &z0.t);
    fast->i->latent_sample_fwd(fast, l->base, l->beta, temp, &mean.t, &p.t, &noise, &z1.t);
    expect_same(given ? "latent_sample_fwd given" : "latent_sample_fwd philox", &z1, &z0);

    buf dz = buf_rand_new(LN, LH, LW, l->v, 0, -1, 1);
    buf dm0 = buf_rand_new(LN, LH, LW, l->v, 2, -1, 1), dm1 = buf_clone(&dm0);
    buf dp0 = buf_rand_new(LN, LH, LW, l->v, l->pad, -1, 1), dp1 = buf_clone(&dp0);
    for (int which = 0; which < 3; which++) { /* both, dmean only, dp only */
        const vd_tensor *m0 = which != 2 ? &dm0.t : NULL, *m1 = which != 2 ? &dm1.t : NULL;
        const vd_tensor *q0 = which != 1 ? &dp0.t : NULL, *q1 = which != 1 ? &dp1.t : NULL;
        ref->i->latent_sample_bwd(ref, l->base, l->beta, temp, &p.t, &noise, &dz.t, m0, q0);
        fast->i->latent_sample_bwd(fast, l->base, l->beta, temp, &p.t, &noise, &dz.t, m1, q1);
    }
    expect_close("latent_sample_bwd dmean", &dm1, &dm0, TOL_ELEM);
    expect_close("latent_sample_bwd dp", &dp1, &dp0, TOL_ELEM);
    buf *all[] = {&mean, &p, &eps, &z0, &z1, &dz, &dm0, &dm1, &dp0, &dp1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
}

static void latent_mask_case(const latent_case *l) {
    buf zp = buf_rand_new(LN, LH, LW, l->v, l->pad, -1, 1), mask = vec_new(l->v);
    for (int c = 0; c < l->v; c++)
        mask.t.data[c] = (float)(c % 3 == 0);
    buf z0 = buf_rand_new(LN, LH, LW, l->v, 1, -1, 1), z1 = buf_clone(&z0);
    ref->i->latent_mask(ref, mask.t.data, &zp.t, &z0.t);
    fast->i->latent_mask(fast, mask.t.data, &zp.t, &z1.t);
    expect_close("latent_mask", &z1, &z0, 0);
    buf_free(&zp), buf_free(&mask), buf_free(&z0), buf_free(&z1);
}

static void kl_case(const latent_case *l) {
    buf qm = buf_rand_new(LN, LH, LW, l->v, l->pad, -1, 1), qp = p_new(l->base, l->v, l->pad);
    buf pm = buf_rand_new(LN, LH, LW, l->v, 0, -1, 1), pp = p_new(l->base, l->v, 1);
    float s0 = -1;
    buf s1 = scalar_new(-2);
    buf pv0 = buf_rand_new(1, 1, 1, l->v, 0, 0, 1), pv1 = buf_clone(&pv0);
    ref->i->kl_fwd(ref, l->base, l->beta, &qm.t, &qp.t, &pm.t, &pp.t, &s0, pv0.t.data);
    fast->i->kl_fwd(fast, l->base, l->beta, &qm.t, &qp.t, &pm.t, &pp.t, s1.t.data, pv1.t.data);
    expect_sum("kl_fwd sum", s1.t.data, s0);
    expect_close("kl_fwd per_variate", &pv1, &pv0, TOL_SUM);
    fast->i->kl_fwd(fast, l->base, l->beta, &qm.t, &qp.t, &pm.t, &pp.t, s1.t.data, NULL);
    expect_sum("kl_fwd sum without per_variate", s1.t.data, s0);
    buf_free(&s1);

    buf d0[4], d1[4];
    for (int i = 0; i < 4; i++) {
        d0[i] = buf_rand_new(LN, LH, LW, l->v, i, -1, 1);
        d1[i] = buf_clone(&d0[i]);
    }
    for (int skip = -1; skip < 4; skip++) { /* all gradients, then each one left out */
        const vd_tensor *g0[4], *g1[4];
        for (int i = 0; i < 4; i++)
            g0[i] = i == skip ? NULL : &d0[i].t, g1[i] = i == skip ? NULL : &d1[i].t;
        ref->i->kl_bwd(ref, l->base, l->beta, 0.37f, &qm.t, &qp.t, &pm.t, &pp.t, g0[0], g0[1],
                       g0[2], g0[3]);
        fast->i->kl_bwd(fast, l->base, l->beta, 0.37f, &qm.t, &qp.t, &pm.t, &pp.t, g1[0], g1[1],
                        g1[2], g1[3]);
    }
    for (int i = 0; i < 4; i++) {
        expect_close("kl_bwd", &d1[i], &d0[i], TOL_ELEM);
        buf_free(&d0[i]);
        buf_free(&d1[i]);
    }
    buf *all[] = {&qm, &qp, &pm, &pp, &pv0, &pv1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
}

static void test_latents(void) {
    for (size_t i = 0; i < sizeof latent_cases / sizeof *latent_cases; i++) {
        const latent_case *l = &latent_cases[i];
        latent_stats_case(l);
        latent_sample_case(l, 1.0f, true);
        latent_sample_case(l, 0.7f, false);
        latent_mask_case(l);
        kl_case(l);
    }
}

/* ---- output distributions ---- */

typedef struct dmol_case {
    int n_mix, channels, num_bits, base, pad;
} dmol_case;

static const dmol_case dmol_cases[] = {
    {10, 3, 8, VD_BASE_STD, 0}, {10, 3, 5, VD_BASE_STD, 3}, {3, 1, 8, VD_BASE_STD, 0},
    {3, 1, 5, VD_BASE_LOGSTD, 2}, {4, 3, 8, VD_BASE_LOGSTD, 0},
};

#define DN 2
#define DH 9
#define DW 8

/* Targets as the data pipeline makes them, so the edge bins (-1 and the highest value) occur. */
static buf dmol_targets(const dmol_case *d) {
    buf x = buf_new(DN, DH, DW, d->channels, 0);
    double step = ldexp(1.0, 8 - d->num_bits);
    for (int64_t i = 0; i < numel(&x); i++) {
        int v = i % 11 == 0 ? 0 : i % 13 == 0 ? 255 : (int)urange(0, 256);
        *el(&x, i) = (float)((floor(v / step) * step - 127.5) / 127.5);
    }
    return x;
}

static void dmol_case_run(const dmol_case *dc) {
    vd_dmol d = {dc->n_mix, dc->channels, dc->num_bits, dc->base, (float)LN2, -7.0f};
    int ch = dc->n_mix * (3 * dc->channels + 1);
    buf l = buf_rand_new(DN, DH, DW, ch, dc->pad, -3, 3), x = dmol_targets(dc);
    float n0 = -1;
    buf n1 = scalar_new(-2);
    ref->i->dmol_fwd(ref, &d, &l.t, &x.t, &n0);
    fast->i->dmol_fwd(fast, &d, &l.t, &x.t, n1.t.data);
    expect_sum("dmol_fwd", n1.t.data, n0);
    buf_free(&n1);
    buf g0 = buf_rand_new(DN, DH, DW, ch, 1, -1, 1), g1 = buf_clone(&g0);
    ref->i->dmol_bwd(ref, &d, 0.01f, &l.t, &x.t, &g0.t);
    fast->i->dmol_bwd(fast, &d, 0.01f, &l.t, &x.t, &g1.t);
    expect_close("dmol_bwd", &g1, &g0, TOL_ELEM);
    for (int given = 0; given < 2; given++) {
        int64_t pixels = (int64_t)DN * DH * DW;
        buf u = buf_rand_new(1, 1, 1, (int)(pixels * (dc->n_mix + dc->channels)), 0, 1e-7, 1);
        vd_noise noise = {given ? u.t.data : NULL, 99, vd_rng_stream(3, 301)};
        buf s0 = buf_rand_new(DN, DH, DW, dc->channels, 2, 0, 1), s1 = buf_clone(&s0);
        ref->i->dmol_sample(ref, &d, given ? 1.0f : 0.8f, &l.t, &noise, &s0.t);
        fast->i->dmol_sample(fast, &d, given ? 1.0f : 0.8f, &l.t, &noise, &s1.t);
        expect_same("dmol_sample", &s1, &s0);
        buf_free(&u), buf_free(&s0), buf_free(&s1);
    }
    buf_free(&l), buf_free(&x), buf_free(&g0), buf_free(&g1);
}

static void bernoulli_case_run(int crop, int pad) {
    buf l = buf_rand_new(3, 32, 32, 1, pad, -6, 6), x = buf_new(3, 32, 32, 1, 0);
    for (int64_t i = 0; i < numel(&x); i++)
        *el(&x, i) = urange(0, 1) < 0.3 ? 1.0f : 0.0f;
    float n0 = -1;
    buf n1 = scalar_new(-2);
    ref->i->bernoulli_fwd(ref, crop, &l.t, &x.t, &n0);
    fast->i->bernoulli_fwd(fast, crop, &l.t, &x.t, n1.t.data);
    expect_sum("bernoulli_fwd", n1.t.data, n0);
    buf_free(&n1);
    buf g0 = buf_rand_new(3, 32, 32, 1, pad + 1, -1, 1), g1 = buf_clone(&g0);
    ref->i->bernoulli_bwd(ref, crop, 0.5f, &l.t, &x.t, &g0.t);
    fast->i->bernoulli_bwd(fast, crop, 0.5f, &l.t, &x.t, &g1.t);
    expect_close("bernoulli_bwd", &g1, &g0, TOL_ELEM);
    for (int given = 0; given < 2; given++) {
        int side = 32 - 2 * crop;
        buf u = buf_rand_new(3, side, side, 1, 0, 1e-7, 1);
        vd_noise noise = {given ? u.t.data : NULL, 5, vd_rng_stream(11, 302)};
        buf s0 = buf_rand_new(3, side, side, 1, 1, 0, 1), s1 = buf_clone(&s0);
        ref->i->bernoulli_sample(ref, &l.t, &noise, &s0.t);
        fast->i->bernoulli_sample(fast, &l.t, &noise, &s1.t);
        expect_same("bernoulli_sample", &s1, &s0);
        buf_free(&u), buf_free(&s0), buf_free(&s1);
    }
    buf_free(&l), buf_free(&x), buf_free(&g0), buf_free(&g1);
}

static void test_outputs(void) {
    for (size_t i = 0; i < sizeof dmol_cases / sizeof *dmol_cases; i++)
        dmol_case_run(&dmol_cases[i]);
    bernoulli_case_run(0, 0);
    bernoulli_case_run(2, 2);
}

static void test_sum_squares(void) {
    static const int sizes[] = {0, 1, 1000, 200003};
    buf x = buf_rand_new(1, 1, 1, 200003, 0, -2, 2);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        float s0 = -1;
        buf s1 = scalar_new(-2);
        ref->i->sum_squares(ref, x.t.data, (size_t)sizes[i], &s0);
        fast->i->sum_squares(fast, x.t.data, (size_t)sizes[i], s1.t.data);
        expect_sum("sum_squares", s1.t.data, s0);
        buf_free(&s1);
    }
    buf_free(&x);
}

/* ---- determinism across thread counts ---- */

typedef struct sums {
    float sq, kl, dmol, bern;
    float db[48];
} sums;

static sums reductions_at(int threads) {
    vd_backend *be = NULL;
    vd_err err = {0};
    sums s = {0};
    CHECKF(vd_backend_create_cpu(&be, threads, &err) == VD_OK, "%s", err.msg);
    if (!be) return s;
    uint64_t keep = vd_buf_rng;
    vd_buf_rng = 42; /* the same inputs at each thread count */
    buf x = buf_rand_new(1, 1, 1, 300001, 0, -2, 2);
    buf m = buf_rand_new(4, 16, 16, 32, 0, -1, 1), p = buf_rand_new(4, 16, 16, 32, 0, 0.1, 2);
    buf qm = buf_rand_new(4, 16, 16, 32, 0, -1, 1), qp = buf_rand_new(4, 16, 16, 32, 0, 0.1, 2);
    buf l = buf_rand_new(4, 16, 16, 100, 0, -3, 3), t = buf_rand_new(4, 16, 16, 3, 0, -1, 1);
    buf dy = buf_rand_new(8, 16, 16, 48, 0, -1, 1), xi = buf_rand_new(8, 16, 16, 16, 0, -1, 1);
    float dw[48 * 16] = {0};
    vd_dmol d = {10, 3, 8, VD_BASE_STD, (float)LN2, -7.0f};
    be->i->sum_squares(be, x.t.data, 300001, &s.sq);
    be->i->kl_fwd(be, VD_BASE_STD, (float)LN2, &m.t, &p.t, &qm.t, &qp.t, &s.kl, NULL);
    be->i->dmol_fwd(be, &d, &l.t, &t.t, &s.dmol);
    be->i->bernoulli_fwd(be, 2, &m.t, &p.t, &s.bern);
    be->i->conv_bwd_weights(be, &(vd_conv_desc){16, 48, 1, 1, 1, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0}, &xi.t, &dy.t, dw,
                            s.db);
    CHECKF(vd_backend_check(be, &err) == VD_OK, "reductions at %d threads: %s", threads, err.msg);
    buf *all[] = {&x, &m, &p, &qm, &qp, &l, &t, &dy, &xi};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        buf_free(all[i]);
    vd_backend_destroy(be);
    vd_buf_rng = keep;
    return s;
}

static void test_thread_independence(void) {
    sums one = reductions_at(1), two = reductions_at(2);
    CHECKF(memcmp(&one, &two, sizeof one) == 0,
           "reductions differ between 1 and 2 threads: sq %.9g/%.9g kl %.9g/%.9g dmol %.9g/%.9g "
           "bern %.9g/%.9g",
           one.sq, two.sq, one.kl, two.kl, one.dmol, two.dmol, one.bern, two.bern);
}

/* ---- bad calls fail as values, naming the op ---- */

static void expect_invalid(vd_backend *be, const char *op) {
    vd_err err = {0};
    vd_status st = vd_backend_check(be, &err);
    CHECKF(st == VD_ERR_INVALID && strstr(err.msg, op), "%s: status %d, message '%s'", op, st,
           err.msg);
}

static vd_backend *fresh(void) {
    vd_backend *be = NULL;
    vd_err err = {0};
    CHECKF(vd_test_open_backend(&be, 0, &err) == VD_OK, "%s", err.msg);
    return be;
}

static void test_errors(void) {
    buf a = buf_rand_new(1, 4, 4, 3, 0, -1, 1), b = buf_rand_new(1, 4, 4, 4, 0, -1, 1);
    float w[64] = {0};
    vd_backend *be = fresh();
    be->i->conv_fwd(be, &(vd_conv_desc){3, 4, 3, 3, 1, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0}, &a.t, w, NULL, &b.t);
    expect_invalid(be, "conv_fwd"); /* no padding: the output should be 2x2 */
    vd_backend_destroy(be);
    be = fresh();
    be->i->act_fwd(be, VD_ACT_SILU, 0, &a.t, &b.t);
    expect_invalid(be, "act_fwd");
    vd_backend_destroy(be);
    be = fresh();
    vd_dmol d = {1, 2, 8, VD_BASE_STD, 1, -7};
    float nll;
    be->i->dmol_fwd(be, &d, &b.t, &a.t, &nll);
    expect_invalid(be, "dmol_fwd");
    vd_backend_destroy(be);
    be = fresh(); /* a pad as wide as the kernel: a window of padding alone */
    be->i->pool_fwd(be, &(vd_pool_desc){VD_POOL_AVG, 2, 2, 1, 2, 0, 0, 0}, &a.t, &b.t);
    expect_invalid(be, "pool_fwd");
    vd_backend_destroy(be);
    be = fresh();
    be->i->resize_bilinear(be, &a.t, &b.t); /* 3 channels into 4 */
    expect_invalid(be, "resize_bilinear");
    vd_backend_destroy(be);
    vd_err err = {0};
    if (vd_test_kind_now == VD_TEST_CPU) CHECK(vd_backend_create_cpu(&be, -1, &err) == VD_ERR_INVALID);
    buf_free(&a);
    buf_free(&b);
}

/* ---- optimisation: the optimizer update, EMA and scaling over flat buffers ---- */

#define TOL_OPTIM 1e-5

typedef struct optim_bufs {
    buf p, g, m, v;
} optim_bufs;

/* Moments as a run in progress would have them: v > 0 (Adamax divides by it). */
static optim_bufs optim_bufs_new(int n) {
    optim_bufs b = {buf_rand_new(1, 1, 1, n, 0, -1, 1), buf_rand_new(1, 1, 1, n, 0, -2, 2),
                    buf_rand_new(1, 1, 1, n, 0, -0.2, 0.2), buf_rand_new(1, 1, 1, n, 0, 1e-3, 1)};
    *el(&b.g, 0) = 0; /* |g| + eps alone decides the Adamax max */
    return b;
}
static optim_bufs optim_bufs_clone(const optim_bufs *b) {
    return (optim_bufs){buf_clone(&b->p), buf_clone(&b->g), buf_clone(&b->m), buf_clone(&b->v)};
}
static void optim_bufs_free(optim_bufs *b) {
    buf_free(&b->p), buf_free(&b->g), buf_free(&b->m), buf_free(&b->v);
}
static void optim_run(vd_backend *be, const vd_optim_step *o, optim_bufs *b, size_t n) {
    be->i->optim_update(be, o, b->p.t.data, b->g.t.data, b->m.t.data, b->v.t.data, n);
}

static void optim_case_run(int kind, int64_t t, double wd, int n, bool nan_grad) {
    static const char *names[] = {"adamax", "adam", "radam"};
    char what[96];
    snprintf(what, sizeof what, "optim_update %s t=%lld wd=%g n=%d%s", names[kind], (long long)t,
             wd, n, nan_grad ? " nan" : "");
    optim_bufs want = optim_bufs_new(n > 0 ? n : 1);
    if (nan_grad && n > 3) *el(&want.g, 3) = NAN;
    optim_bufs got = optim_bufs_clone(&want);
    vd_optim_step o = {kind, 2e-3, 0.9, 0.999, 1e-8, wd, t};
    optim_run(ref, &o, &want, (size_t)n);
    optim_run(fast, &o, &got, (size_t)n);
    expect_close(what, &got.p, &want.p, TOL_OPTIM);
    expect_close(what, &got.m, &want.m, TOL_OPTIM);
    expect_close(what, &got.v, &want.v, TOL_OPTIM);
    CHECKF(memcmp(got.g.mem, want.g.mem, want.g.len * sizeof(float)) == 0, "%s: g changed", what);
    if (nan_grad && n > 3) CHECKF(isnan(*el(&got.p, 3)), "%s: a NaN gradient vanished", what);
    optim_bufs_free(&want), optim_bufs_free(&got);
}

static void test_optim(void) {
    static const int sizes[] = {0, 1, 1000, 100003};
    static const int64_t steps[] = {1, 2, 5, 6, 7, 1000};
    for (int kind = VD_OPT_ADAMAX; kind <= VD_OPT_RADAM; kind++)
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++)
            for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
                optim_case_run(kind, steps[s], s % 2 ? 1e-2 : 0, sizes[i], false);
    optim_case_run(VD_OPT_ADAMAX, 3, 1e-2, 1000, true);
    optim_case_run(VD_OPT_ADAM, 3, 0, 1000, true);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int n = sizes[i] > 0 ? sizes[i] : 1;
        buf p = buf_rand_new(1, 1, 1, n, 0, -1, 1), e0 = buf_rand_new(1, 1, 1, n, 0, -1, 1);
        buf e1 = buf_clone(&e0), x0 = buf_clone(&p), x1 = buf_clone(&p);
        ref->i->ema_update(ref, 0.9999, p.t.data, e0.t.data, (size_t)sizes[i]);
        fast->i->ema_update(fast, 0.9999, p.t.data, e1.t.data, (size_t)sizes[i]);
        expect_close("ema_update", &e1, &e0, TOL_ELEM);
        ref->i->scale(ref, 0.37f, x0.t.data, (size_t)sizes[i]);
        fast->i->scale(fast, 0.37f, x1.t.data, (size_t)sizes[i]);
        expect_same("scale", &x1, &x0);
        buf_free(&p), buf_free(&e0), buf_free(&e1), buf_free(&x0), buf_free(&x1);
    }
}

/* The update is elementwise, so 1 and 2 threads must give the same bits. */
static void optim_at(int threads, optim_bufs *b) {
    vd_backend *be = NULL;
    vd_err err = {0};
    CHECKF(vd_backend_create_cpu(&be, threads, &err) == VD_OK, "%s", err.msg);
    if (!be) return;
    for (int kind = VD_OPT_ADAMAX; kind <= VD_OPT_RADAM; kind++) {
        vd_optim_step o = {kind, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 7};
        optim_run(be, &o, b, (size_t)numel(&b->p));
    }
    be->i->ema_update(be, 0.999, b->g.t.data, b->m.t.data, (size_t)numel(&b->p));
    CHECKF(vd_backend_check(be, &err) == VD_OK, "optim at %d threads: %s", threads, err.msg);
    vd_backend_destroy(be);
}

static void test_optim_threads(void) {
    optim_bufs one = optim_bufs_new(300001), two = optim_bufs_clone(&one);
    optim_at(1, &one);
    optim_at(2, &two);
    bool same = memcmp(one.p.mem, two.p.mem, one.p.len * sizeof(float)) == 0 &&
                memcmp(one.m.mem, two.m.mem, one.m.len * sizeof(float)) == 0 &&
                memcmp(one.v.mem, two.v.mem, one.v.len * sizeof(float)) == 0;
    CHECKF(same, "optim_update/ema_update differ between 1 and 2 threads");
    optim_bufs_free(&one), optim_bufs_free(&two);
}

static void test_optim_refusals(void) {
    /* an unknown optimizer and a 0-based step count are refused, by both backends */
    float x[4] = {0};
    vd_backend *bes[2] = {fresh(), NULL};
    vd_err err = {0};
    CHECK(vd_backend_create_cpu_ref(&bes[1], &err) == VD_OK);
    for (int b = 0; b < 2 && bes[b]; b++) {
        /* 3: no kind, yet inside the enum's range (C++ may not even load 7, UBSan says) */
        bes[b]->i->optim_update(bes[b], &(vd_optim_step){3, 1e-3, 0.9, 0.999, 1e-8, 0, 1}, x, x,
                                x, x, 1);
        expect_invalid(bes[b], "optim_update");
        vd_backend_destroy(bes[b]);
    }
    bes[0] = fresh();
    bes[0]->i->optim_update(bes[0], &(vd_optim_step){VD_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-8, 0, 0},
                            x, x + 1, x + 2, x + 3, 1);
    expect_invalid(bes[0], "optim_update");
    vd_backend_destroy(bes[0]);
}

int main(int argc, char **argv) {
    if (!vd_test_pick_backend(argc, argv)) return 2;
    vd_err err = {0};
    vd_status st = vd_test_open_backend(&fast, 2, &err);
    if (st == VD_ERR_UNSUPPORTED) return vd_test_backend_skip(&err);
    CHECKF(st == VD_OK, "creating %s: %s", vd_test_backend_name(), err.msg);
    CHECKF(vd_backend_create_cpu_ref(&ref, &err) == VD_OK, "creating cpu_ref: %s", err.msg);
    if (st != VD_OK || !ref) return vd_test_result("test_backend_ops");
    sync_dev = fast->i->alloc(fast, sizeof(float));
    CHECK(sync_dev != NULL);
    test_convs();
    test_activations();
    test_memory_ops();
    test_resampling();
    test_inference_resampling();
    test_latents();
    test_outputs();
    test_sum_squares();
    test_optim();
    fast->i->dealloc(fast, sync_dev);
    vd_backend_destroy(fast);
    vd_backend_destroy(ref);
    if (vd_test_kind_now == VD_TEST_CPU) { /* thread counts are the cpu backend's */
        test_thread_independence();
        test_optim_threads();
    }
    test_optim_refusals();
    test_errors();
    return vd_test_result("test_backend_ops");
}
