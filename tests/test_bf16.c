/* bf16 precision (ops.h set_precision): the rounding itself, the fast backend's convolutions
 * against the cpu_ref oracle, the precision plumbing, and a whole training step.
 * - Rounding: backend/bf16.h on edge cases with known bits (ties to even, carries into the
 *   exponent, overflow to inf, NaN made quiet, denormals to signed zero); with the argument
 *   native (its own ctest entry, skipped on a CPU without AVX-512 BF16, whatever
 *   VD_REQUIRE_ALL says), the instruction against the scalar rounding on every bit pattern of
 *   a 1M random sweep, in both output forms, with tails and guards.
 * - Convolutions at the model's shapes (1x1 dense and on channel views, 3x3 pad 1, 2x2 stride 2,
 *   4x4 stride 4, the odd top/left pad), all three directions, bias and acc, each called twice:
 *   cpu bf16 vs cpu_ref bf16 within TOL_SAME (both multiply the same rounded numbers; only the
 *   order of the float sums differs), and vs cpu_ref fp32 off by a bf16-sized amount (between
 *   BF16_MIN and BF16_MAX), which proves bf16 is really on. Both cpu routes run: oneDNN's bf16
 *   kernels and the fp32-kernels-on-rounded-copies fallback. Switching back to fp32 on the same
 *   backend must give fp32 results (the primitive cache keys on the precision).
 * - A tiny model's forward (loss) and backward (every parameter gradient) in bf16 on cpu vs
 *   cpu_ref; see e2e_case for the tolerance.
 * Skips (77) when the build has no oneDNN (fails with VD_REQUIRE_ALL=1). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/bf16.h"
#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vd_test.h"
#include "vd_test_buf.h"
#include "vdvae/rng.h"

#define TOL_SAME 1e-4    /* cpu bf16 vs cpu_ref bf16, relative to the output's max |.| */
#define TOL_FP32 1e-5    /* cpu fp32 vs cpu_ref fp32 after switching back */
#define BF16_MIN 3e-4    /* bf16 vs fp32: at least this far apart (fp32 sums agree to ~1e-6) */
#define BF16_MAX 1e-2    /* ... and at most this (a few bf16 ulps, 2^-8 = 3.9e-3, of a sum) */

static float f32_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- the rounding ---- */

typedef struct bits_case {
    uint32_t in;
    uint16_t out;
    const char *what;
} bits_case;

static const bits_case bits_cases[] = {
    {0x3f800000u, 0x3f80, "1"},
    {0xbf800000u, 0xbf80, "-1"},
    {0x3f808000u, 0x3f80, "tie, even below"},
    {0x3f818000u, 0x3f82, "tie, even above"},
    {0xbf808000u, 0xbf80, "negative tie, even below"},
    {0xbf818000u, 0xbf82, "negative tie, even above"},
    {0x3f807fffu, 0x3f80, "just under a tie"},
    {0x3f808001u, 0x3f81, "just over a tie"},
    {0x3fffffffu, 0x4000, "carry into the exponent"},
    {0x40490fdbu, 0x4049, "pi"},
    {0x7f7f7fffu, 0x7f7f, "largest that stays finite"},
    {0x7f7f8000u, 0x7f80, "tie at the top rounds to inf"},
    {0x7f7fffffu, 0x7f80, "FLT_MAX rounds to inf"},
    {0xff7fffffu, 0xff80, "-FLT_MAX rounds to -inf"},
    {0x7f800000u, 0x7f80, "inf"},
    {0xff800000u, 0xff80, "-inf"},
    {0x7fc00000u, 0x7fc0, "quiet NaN"},
    {0xffc00000u, 0xffc0, "negative quiet NaN"},
    {0x7f800001u, 0x7fc0, "signalling NaN, low payload: quiet, not inf"},
    {0xff812345u, 0xffc1, "negative NaN with payload"},
    {0x7fbfffffu, 0x7fff, "NaN that rounding would carry"},
    {0x00000000u, 0x0000, "+0"},
    {0x80000000u, 0x8000, "-0"},
    {0x00000001u, 0x0000, "smallest denormal"},
    {0x807fffffu, 0x8000, "largest negative denormal"},
    {0x00400000u, 0x0000, "denormal that would round to a bf16 denormal"},
    {0x00800000u, 0x0080, "smallest normal"},
    {0x00ffffffu, 0x0100, "normal rounding up an exponent"},
    {0x00808000u, 0x0080, "tie at the smallest normal"},
};
enum { NBITS = sizeof bits_cases / sizeof *bits_cases };

static void test_rounding_edges(void) {
    for (int i = 0; i < NBITS; i++) {
        const bits_case *c = &bits_cases[i];
        uint16_t got = vd_bf16_from_f32(f32_of(c->in));
        CHECKF(got == c->out, "bf16(%08x) %s: got %04x want %04x", (unsigned)c->in, c->what, got,
               c->out);
    }
    CHECK(vd_bf16_round(1.5f) == 1.5f);
    CHECK(isnan(vd_bf16_round(NAN)) && isinf(vd_bf16_round(INFINITY)));
    CHECK(vd_bf16_round(1.0f + 0x1.0p-9f) == 1.0f && vd_bf16_round(1.0f + 0x1.8p-8f) == 1.0f + 0x1.0p-7f);
}

/* The conversion kernels: native (when the CPU has it) vs scalar, bits for bits, in both
 * output forms; n is odd so every tail length path runs. */
static void compare_paths(const float *src, int64_t n, bool to_float) {
    size_t elem = to_float ? sizeof(float) : sizeof(uint16_t);
    unsigned char *a = malloc((size_t)(n + 64) * elem), *b = malloc((size_t)(n + 64) * elem);
    memset(a, 0xAB, (size_t)(n + 64) * elem);
    memset(b, 0xAB, (size_t)(n + 64) * elem);
    vd_cpu_bf16_run(src, a, n, to_float, false);
    vd_cpu_bf16_run(src, b, n, to_float, true);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(a + i * elem, b + i * elem, elem)) bad++, first = first < 0 ? i : first;
    uint32_t in = 0;
    if (first >= 0) memcpy(&in, src + first, sizeof in);
    CHECKF(bad == 0, "native vs scalar (%s): %lld of %lld differ, first input %08x",
           to_float ? "floats" : "bf16", (long long)bad, (long long)n, (unsigned)in);
    bool guard = true;
    for (size_t i = (size_t)n * elem; i < (size_t)(n + 64) * elem; i++)
        guard = guard && b[i] == 0xAB;
    CHECKF(guard, "native conversion wrote past %lld elements", (long long)n);
    free(a), free(b);
}

static void test_native_matches_scalar(void) {
    enum { SWEEP = 1 << 20 };
    int64_t n = SWEEP + NBITS + 7;
    float *src = malloc((size_t)n * sizeof *src);
    for (int i = 0; i < NBITS; i++)
        src[i] = f32_of(bits_cases[i].in);
    for (int64_t i = NBITS; i < n; i++) /* every exponent, NaNs and denormals included */
        src[i] = f32_of((uint32_t)vd_buf_next_u64());
    compare_paths(src, n, false);
    compare_paths(src, n, true);
    for (int64_t len = 1; len <= 40; len++) /* each tail length */
        compare_paths(src + 3, len, len % 2);
    uint16_t h[NBITS];
    vd_cpu_bf16_run(src, h, NBITS, false, true);
    for (int i = 0; i < NBITS; i++)
        CHECKF(h[i] == bits_cases[i].out, "instruction on %08x (%s): %04x, want %04x",
               (unsigned)bits_cases[i].in, bits_cases[i].what, h[i], bits_cases[i].out);
    free(src);
}

/* The parallel packer: a view (ld > c) into dense bf16 equals the scalar rounding per element. */
static void test_pack_view(void) {
    int n = 3, h = 17, w = 19, c = 45, ld = 64;
    int64_t pixels = (int64_t)n * h * w;
    float *mem = malloc((size_t)(pixels * ld) * sizeof *mem);
    for (int64_t i = 0; i < pixels * ld; i++)
        mem[i] = (float)urange(-3, 3);
    vd_tensor t = {mem, n, h, w, c, ld}; /* channels [0, c) of each pixel */
    uint16_t *b = malloc((size_t)(pixels * c + 8) * sizeof *b);
    float *f = malloc((size_t)(pixels * c + 8) * sizeof *f);
    b[pixels * c] = 0x1234, f[pixels * c] = SENTINEL;
    vd_cpu_bf16_pack(&t, b, false);
    vd_cpu_bf16_pack(&t, f, true);
    int64_t bad = 0;
    for (int64_t p = 0; p < pixels; p++)
        for (int j = 0; j < c; j++) {
            uint16_t want = vd_bf16_from_f32(mem[p * ld + j]);
            bad += b[p * c + j] != want || f[p * c + j] != vd_bf16_to_f32(want);
        }
    CHECKF(bad == 0, "packing a view: %lld elements differ", (long long)bad);
    CHECK(b[pixels * c] == 0x1234 && f[pixels * c] == SENTINEL);
    free(mem), free(b), free(f);
}

/* ---- convolutions ---- */

/* The model's convolutions, small: cell 1x1 in/out, 1x1 on views of a concat (over few pixels
 * and over >= 1024, where cpu's bf16 backward weights changes route), the cell's 3x3,
 * the image-in and logits-out 3x3, pooling 2x2/2 and 4x4/4, and the 'same' pad of an even
 * kernel that puts the odd pixel top/left. */
static const conv_case conv_cases[] = {
    {"1x1 dense", 2, 8, 8, 48, 12, 1, 1, 1, 0, 0, 0, 0, 0, 0, true, false},
    {"1x1 dense acc", 2, 8, 8, 12, 48, 1, 1, 1, 0, 0, 0, 0, 0, 0, true, true},
    {"1x1 views", 2, 6, 5, 16, 24, 1, 1, 1, 0, 0, 0, 0, 5, 3, true, true},
    {"1x1 views no bias", 2, 4, 4, 32, 8, 1, 1, 1, 0, 0, 0, 0, 32, 8, false, false},
    {"1x1 many pixels", 2, 24, 24, 16, 24, 1, 1, 1, 0, 0, 0, 0, 0, 0, true, false},
    {"1x1 many pixels views", 2, 24, 24, 24, 16, 1, 1, 1, 0, 0, 0, 0, 8, 5, true, true},
    {"3x3 pad 1", 2, 8, 7, 16, 16, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, false},
    {"3x3 pad 1 views acc", 2, 7, 6, 8, 12, 3, 3, 1, 1, 1, 1, 1, 4, 2, false, true},
    {"3x3 image in", 2, 8, 8, 3, 16, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, false},
    {"3x3 logits out", 1, 8, 8, 16, 100, 3, 3, 1, 1, 1, 1, 1, 0, 0, true, true},
    {"2x2 stride 2", 2, 8, 8, 16, 24, 2, 2, 2, 0, 0, 0, 0, 0, 0, true, false},
    {"2x2 stride 2 views acc", 2, 8, 8, 6, 10, 2, 2, 2, 0, 0, 0, 0, 2, 6, true, true},
    {"4x4 stride 4", 2, 8, 8, 16, 16, 4, 4, 4, 0, 0, 0, 0, 0, 0, true, false},
    {"2x2 top-left pad", 2, 5, 6, 8, 4, 2, 2, 1, 1, 1, 0, 0, 1, 0, false, false},
    {"4x4 top-left pads", 2, 7, 7, 4, 6, 4, 4, 1, 2, 2, 1, 1, 0, 0, true, true},
};

static vd_backend *ref_bf16, *ref_fp32, *fast;

static void expect_ok(const char *what) {
    vd_err err = {0};
    vd_backend *bes[] = {ref_bf16, ref_fp32, fast};
    for (int i = 0; i < 3; i++)
        CHECKF(vd_backend_check(bes[i], &err) == VD_OK, "%s: %s failed: %s", what,
               bes[i]->i->name, err.msg);
}

/* got (cpu bf16) vs want (cpu_ref bf16) and plain (cpu_ref fp32). */
static void expect_bf16(const char *what, const buf *got, const buf *want, const buf *plain,
                        double *worst_same, double *least_gap) {
    double same = max_rel(got, want), gap = max_rel(got, plain);
    CHECKF(same <= TOL_SAME, "%s: cpu bf16 vs cpu_ref bf16: %.3g > %.3g", what, same, TOL_SAME);
    CHECKF(gap >= BF16_MIN && gap <= BF16_MAX,
           "%s: cpu bf16 vs cpu_ref fp32: %.3g, not a bf16 amount [%.1g, %.1g]", what, gap,
           BF16_MIN, BF16_MAX);
    CHECKF(guards_intact(got) && guards_intact(want) && guards_intact(plain),
           "%s: a backend wrote outside its output", what);
    *worst_same = fmax(*worst_same, same);
    *least_gap = fmin(*least_gap, gap);
    expect_ok(what);
}

static int conv_out(int in, int k, int s, int lo, int hi) {
    return (in + lo + hi - k) / s + 1;
}

typedef struct conv_io {
    buf x, dy, w, b;
} conv_io;

/* The three directions of case c on the three backends, each called twice (the second call
 * hits the primitive cache and, where gradients accumulate, adds onto the first). */
static void conv_case_run(const conv_case *c, const conv_io *io, const char *route,
                          double *worst_same, double *least_gap) {
    vd_conv_desc cv = {c->c_in, c->c_out, c->kh, c->kw, c->stride, c->pt, c->pl, c->pb, c->pr, VD_CONV_PRE_NONE, 0};
    int ho = conv_out(c->h, c->kh, c->stride, c->pt, c->pb);
    int wo = conv_out(c->w, c->kw, c->stride, c->pl, c->pr);
    int nw = c->c_out * c->c_in * c->kh * c->kw;
    const float *w = io->w.t.data, *bias = c->bias ? io->b.t.data : NULL;
    vd_backend *bes[3] = {fast, ref_bf16, ref_fp32};
    char what[160];

    buf y[3], dx[3], dw[3], db[3];
    y[0] = buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -9, 9);
    dx[0] = buf_rand_new(c->n, c->h, c->w, c->c_in, c->pad_x, -1, 1);
    dw[0] = buf_rand_new(1, 1, 1, nw, 0, -1, 1);
    db[0] = buf_rand_new(1, 1, 1, c->c_out, 0, -1, 1);
    for (int k = 1; k < 3; k++)
        y[k] = buf_clone(&y[0]), dx[k] = buf_clone(&dx[0]), dw[k] = buf_clone(&dw[0]),
        db[k] = buf_clone(&db[0]);
    for (int k = 0; k < 3; k++)
        for (int rep = 0; rep < 2; rep++) {
            vd_backend *be = bes[k];
            be->i->conv_fwd(be, &cv, &io->x.t, w, bias, &y[k].t);
            be->i->conv_bwd_data(be, &cv, &io->dy.t, w, &dx[k].t, c->acc);
            be->i->conv_bwd_weights(be, &cv, &io->x.t, &io->dy.t, dw[k].t.data,
                                    c->bias ? db[k].t.data : NULL);
        }
    snprintf(what, sizeof what, "conv %s fwd [%s]", c->name, route);
    expect_bf16(what, &y[0], &y[1], &y[2], worst_same, least_gap);
    snprintf(what, sizeof what, "conv %s bwd_data%s [%s]", c->name, c->acc ? " acc" : "", route);
    expect_bf16(what, &dx[0], &dx[1], &dx[2], worst_same, least_gap);
    snprintf(what, sizeof what, "conv %s bwd_weights dw [%s]", c->name, route);
    expect_bf16(what, &dw[0], &dw[1], &dw[2], worst_same, least_gap);
    /* db sums the float32 dy in every precision: bf16 must not change it */
    snprintf(what, sizeof what, "conv %s bwd_weights db [%s]", c->name, route);
    double e_db = fmax(max_rel(&db[0], &db[1]), max_rel(&db[0], &db[2]));
    CHECKF(e_db <= TOL_FP32, "%s: %.3g > %.3g", what, e_db, TOL_FP32);
    for (int k = 0; k < 3; k++)
        free(y[k].mem), free(dx[k].mem), free(dw[k].mem), free(db[k].mem);
}

/* The same calls back in fp32 on the same cpu backend: fp32 results again. */
static void conv_case_fp32(const conv_case *c, const conv_io *io) {
    vd_conv_desc cv = {c->c_in, c->c_out, c->kh, c->kw, c->stride, c->pt, c->pl, c->pb, c->pr, VD_CONV_PRE_NONE, 0};
    int ho = conv_out(c->h, c->kh, c->stride, c->pt, c->pb);
    int wo = conv_out(c->w, c->kw, c->stride, c->pl, c->pr);
    const float *bias = c->bias ? io->b.t.data : NULL;
    buf y0 = buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -9, 9), y1 = buf_clone(&y0);
    buf dx0 = buf_rand_new(c->n, c->h, c->w, c->c_in, c->pad_x, -1, 1), dx1 = buf_clone(&dx0);
    fast->i->conv_fwd(fast, &cv, &io->x.t, io->w.t.data, bias, &y0.t);
    ref_fp32->i->conv_fwd(ref_fp32, &cv, &io->x.t, io->w.t.data, bias, &y1.t);
    fast->i->conv_bwd_data(fast, &cv, &io->dy.t, io->w.t.data, &dx0.t, c->acc);
    ref_fp32->i->conv_bwd_data(ref_fp32, &cv, &io->dy.t, io->w.t.data, &dx1.t, c->acc);
    double e = fmax(max_rel(&y0, &y1), max_rel(&dx0, &dx1));
    CHECKF(e <= TOL_FP32, "conv %s: cpu back in fp32 vs cpu_ref fp32: %.3g > %.3g", c->name, e,
           TOL_FP32);
    expect_ok(c->name);
    free(y0.mem), free(y1.mem), free(dx0.mem), free(dx1.mem);
}

static void test_convs(void) {
    vd_err err = {0};
    const char *routes[2] = {"bf16 kernels", "fp32 kernels on rounded copies"};
    for (int r = 0; r < 2; r++) {
        double worst_same = 0, least_gap = INFINITY;
        for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
            const conv_case *c = &conv_cases[i];
            int ho = conv_out(c->h, c->kh, c->stride, c->pt, c->pb);
            int wo = conv_out(c->w, c->kw, c->stride, c->pl, c->pr);
            conv_io io = {buf_rand_new(c->n, c->h, c->w, c->c_in, c->pad_x, -1, 1),
                          buf_rand_new(c->n, ho, wo, c->c_out, c->pad_y, -1, 1),
                          buf_rand_new(1, 1, 1, c->c_out * c->c_in * c->kh * c->kw, 0, -0.5, 0.5),
                          buf_rand_new(1, 1, 1, c->c_out, 0, -1, 1)};
            CHECK(vd_backend_set_precision(fast, VD_PREC_BF16, &err) == VD_OK);
#ifdef VD_HAVE_ONEDNN /* fast is the cpu backend, which only a oneDNN build has */
            vd_cpu_conv_force_rounded(vd_cpu_conv_of(fast), r == 1);
#endif
            conv_case_run(c, &io, routes[r], &worst_same, &least_gap);
            CHECK(vd_backend_set_precision(fast, VD_PREC_FP32, &err) == VD_OK);
            conv_case_fp32(c, &io);
            free(io.x.mem), free(io.dy.mem), free(io.w.mem), free(io.b.mem);
        }
        fprintf(stderr, "convs [%s]: cpu bf16 vs cpu_ref bf16 worst %.2e; vs fp32 least %.2e\n",
                routes[r], worst_same, least_gap);
    }
}

/* ---- the precision setting ---- */

static void fake_destroy(vd_backend *be) {
    free(be);
}

static const vd_backend_i fake_table = {.name = "fake", .destroy = fake_destroy};

static void test_set_precision(void) {
    vd_err err = {0};
    vd_backend *fake = calloc(1, sizeof *fake), *prof = NULL;
    fake->i = &fake_table;
    CHECK(vd_backend_set_precision(fake, VD_PREC_FP32, &err) == VD_OK);
    vd_status st = vd_backend_set_precision(fake, VD_PREC_BF16, &err);
    CHECKF(st == VD_ERR_UNSUPPORTED && strstr(err.msg, "fake") && strstr(err.msg, "bf16"),
           "a backend without set_precision: status %d, '%s'", st, err.msg);
    /* the profiler forwards to what it wraps, and names it when it refuses */
    CHECK(vd_backend_create_profile(&prof, fake, &err) == VD_OK);
    memset(&err, 0, sizeof err);
    st = vd_backend_set_precision(prof, VD_PREC_BF16, &err);
    CHECKF(st == VD_ERR_UNSUPPORTED && strstr(err.msg, "fake"), "profile over fake: %d, '%s'", st,
           err.msg);
    vd_backend_destroy(prof);

    /* profile over cpu_ref in bf16 computes what cpu_ref in bf16 computes, bit for bit */
    vd_backend *inner = NULL;
    CHECK(vd_backend_create_cpu_ref(&inner, &err) == VD_OK);
    CHECK(vd_backend_create_profile(&prof, inner, &err) == VD_OK);
    CHECK(vd_backend_set_precision(prof, VD_PREC_BF16, &err) == VD_OK);
    vd_conv_desc cv = {24, 8, 1, 1, 1, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0};
    buf x = buf_rand_new(1, 4, 4, 24, 0, -1, 1), w = buf_rand_new(1, 1, 1, 24 * 8, 0, -1, 1);
    buf y0 = buf_new(1, 4, 4, 8, 0), y1 = buf_new(1, 4, 4, 8, 0), y2 = buf_new(1, 4, 4, 8, 0);
    prof->i->conv_fwd(prof, &cv, &x.t, w.t.data, NULL, &y0.t);
    ref_bf16->i->conv_fwd(ref_bf16, &cv, &x.t, w.t.data, NULL, &y1.t);
    ref_fp32->i->conv_fwd(ref_fp32, &cv, &x.t, w.t.data, NULL, &y2.t);
    CHECK(memcmp(y0.mem, y1.mem, y0.len * sizeof(float)) == 0);
    CHECK(max_rel(&y0, &y2) >= BF16_MIN);
    CHECK(vd_backend_check(prof, &err) == VD_OK);
    vd_backend_destroy(prof);
    free(x.mem), free(w.mem), free(y0.mem), free(y1.mem), free(y2.mem);
}

/* ---- a whole training step ---- */

typedef struct step_out {
    double loss;
    float *grads; /* [total_floats] */
} step_out;

static void upload_images(vd_net *net, uint64_t seed) {
    const vd_arch *a = net->arch;
    size_t n = (size_t)net->batch * a->image_res * a->image_res * a->image_ch;
    float *x = malloc(n * sizeof *x);
    vd_rng_fill_uniform(seed, 0, 0, n, x);
    for (size_t i = 0; i < n; i++)
        x[i] = net->dataset_binarized ? (float)(x[i] < 0.3f) : 2.f * x[i] - 1.f;
    net->be->i->upload(net->be, net->input.data, x, n * sizeof *x);
    free(x);
}

/* Forward, the loss and backward of one step at `step` (so KL terms are weighted in) from the
 * same initial weights, images and posterior noise on any backend. */
static step_out train_step(vd_backend *be, const vd_hparams *hp, const vd_arch *a, int batch,
                           int64_t step) {
    step_out out = {0, calloc((size_t)a->total_floats, sizeof(float))};
    vd_err err = {0};
    vd_net net;
    vd_net_opts o;
    vd_loss loss;
    vd_net_opts_from_hparams(&o, hp, batch);
    CHECKF(vd_net_create(&net, a, be, &o, &err) == VD_OK, "%s", err.msg);
    CHECK(vd_loss_init(&loss, a->n_td, &err) == VD_OK);
    CHECKF(vd_net_init_params(&net, 7, &err) == VD_OK, "%s", err.msg);
    upload_images(&net, 11);
    vd_noise *noise = calloc((size_t)a->n_td, sizeof *noise);
    float *sums = calloc((size_t)a->n_td + 1, sizeof *sums);
    for (int i = 0; i < a->n_td; i++)
        noise[i] = (vd_noise){.seed = 5, .stream = vd_rng_stream((uint32_t)step, VD_SITE_POSTERIOR + i)};
    vd_net_forward(&net, noise);
    be->i->download(be, sums, net.sums, (size_t)(1 + a->n_td) * sizeof *sums);
    vd_loss_compute(&loss, hp, a, batch, step, sums);
    be->i->fill(be, &(vd_tensor){net.grads, 1, 1, 1, (int)a->total_floats, a->total_floats}, 0.f);
    vd_net_backward(&net, noise, loss.recon_scale, loss.kl_scale);
    be->i->download(be, out.grads, net.grads, (size_t)a->total_floats * sizeof(float));
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", be->i->name, err.msg);
    out.loss = loss.total;
    free(noise), free(sums);
    vd_loss_free(&loss);
    vd_net_free(&net);
    return out;
}

/* Worst per-parameter-tensor max-norm relative difference of two gradient sets. */
static double grads_rel(const vd_arch *a, const float *got, const float *want, const char **name) {
    double worst = 0;
    for (int i = 0; i < a->n_params; i++) {
        const vd_param *p = &a->params[i];
        double diff = 0, scale = 0;
        for (int64_t j = 0; j < p->numel; j++) {
            diff = fmax(diff, fabs((double)got[p->offset + j] - want[p->offset + j]));
            scale = fmax(scale, fabs((double)want[p->offset + j]));
        }
        double rel = scale > 0 ? diff / scale : diff;
        if (isnan(got[p->offset]) || rel > worst) worst = isnan(rel) ? INFINITY : rel, *name = p->name;
    }
    return worst;
}

/* Tolerance of the whole step. Each bf16 convolution rounds its inputs; where cpu and cpu_ref
 * reach an input by float sums in different orders (~1e-7 relative apart), the rare input
 * that sits on the edge between two bf16 values rounds the other way, a 2^-8 relative change
 * of that one element, and the difference travels on through the network. Measured on the
 * tiny configs: losses equal to 8 digits, gradients at most 5e-5 of their tensor's max,
 * against bf16 vs fp32 gaps of 1e-5..5e-5 (loss) and 2e-2..1.4e-1 (gradients). So: loss within
 * 1e-5, every gradient within 1e-3 of its tensor's max (20x the measured worst), and the
 * worst gradient difference at most a quarter of the worst bf16-vs-fp32 one, so agreement
 * means bf16 on both sides, not fp32 on both. */
#define E2E_LOSS 1e-5
#define E2E_GRAD 1e-3

static void e2e_case(const char *cfg_name, int batch, int64_t step) {
    const char *src = getenv("VD_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/reference/configs/%s", src ? src : ".", cfg_name);
    vd_err err = {0};
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch arch;
    if (vd_hparams_load(hp, path, NULL, 0, &err) || vd_arch_build(&arch, hp, &err)) {
        CHECKF(0, "%s: %s", cfg_name, err.msg);
        free(hp);
        return;
    }
    CHECK(vd_backend_set_precision(fast, VD_PREC_BF16, &err) == VD_OK);
#ifdef VD_HAVE_ONEDNN
    vd_cpu_conv_force_rounded(vd_cpu_conv_of(fast), false);
#endif
    step_out c = train_step(fast, hp, &arch, batch, step);
    step_out r = train_step(ref_bf16, hp, &arch, batch, step);
    step_out f = train_step(ref_fp32, hp, &arch, batch, step);
    const char *n_same = "", *n_gap = "";
    double same = grads_rel(&arch, c.grads, r.grads, &n_same);
    double gap = grads_rel(&arch, r.grads, f.grads, &n_gap);
    double loss_same = fabs(c.loss - r.loss) / fabs(r.loss), loss_gap = fabs(r.loss - f.loss) / fabs(f.loss);
    fprintf(stderr,
            "%s step %lld: loss cpu bf16 %.7f, cpu_ref bf16 %.7f (rel %.1e), fp32 %.7f (rel %.1e); "
            "gradients cpu vs cpu_ref bf16 worst %.1e (%s), bf16 vs fp32 worst %.1e (%s)\n",
            cfg_name, (long long)step, c.loss, r.loss, loss_same, f.loss, loss_gap, same, n_same,
            gap, n_gap);
    CHECKF(loss_same <= E2E_LOSS, "%s: loss cpu bf16 %.8g vs cpu_ref bf16 %.8g", cfg_name, c.loss,
           r.loss);
    CHECKF(same <= E2E_GRAD, "%s: gradient %s: cpu bf16 vs cpu_ref bf16 %.2e", cfg_name, n_same,
           same);
    CHECKF(same <= 0.25 * gap, "%s: cpu vs cpu_ref bf16 (%.2e) is not well below bf16 vs fp32 (%.2e)",
           cfg_name, same, gap);
    free(c.grads), free(r.grads), free(f.grads);
    vd_arch_free(&arch);
    free(hp);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "native")) return vd_test_bad_mode("test_bf16", mode);
    vd_buf_rng = 0x2545F4914F6CDD1Dull; /* this test's own sequence */
    vd_err err = {0};
    if (mode) {
        if (!vd_cpu_bf16_native()) return vd_test_skip_hardware("AVX-512 BF16 on this CPU");
        test_native_matches_scalar();
        return vd_test_result("test_bf16 native");
    }
    test_rounding_edges();
    test_pack_view();
    vd_status st = vd_backend_create_cpu(&fast, 2, &err);
    if (st == VD_ERR_UNSUPPORTED) /* the scalar checks above ran; the cpu backend's cannot */
        return vd_test_failures ? vd_test_result("test_bf16") : vd_test_skip(VD_TEST_ONEDNN);
    CHECKF(st == VD_OK, "creating cpu: %s", err.msg);
    CHECK(vd_backend_create_cpu_ref(&ref_bf16, &err) == VD_OK);
    CHECK(vd_backend_create_cpu_ref(&ref_fp32, &err) == VD_OK);
    if (!fast || !ref_bf16 || !ref_fp32) return vd_test_result("test_bf16");
    CHECK(vd_backend_set_precision(ref_bf16, VD_PREC_BF16, &err) == VD_OK);
    CHECK(vd_backend_set_precision(ref_fp32, VD_PREC_FP32, &err) == VD_OK);
    CHECK(vd_backend_set_precision(fast, (vd_precision)7, &err) == VD_ERR_UNSUPPORTED);
    test_convs();
    test_set_precision();
    e2e_case("tiny_rgb.cfg", 2, 5);
    e2e_case("tiny_binarized.cfg", 2, 5);
    vd_backend_destroy(fast);
    vd_backend_destroy(ref_bf16);
    vd_backend_destroy(ref_fp32);
    return vd_test_result("test_bf16");
}
