/* The fused convolution ops, each against its unfused definition, on each backend and in each
 * precision:
 * - a SiLU before the conv (vd_conv_desc.pre_act): conv_fwd and conv_bwd_weights with
 *   VD_CONV_PRE_SILU on x give the same bits as act_fwd(SiLU) into a buffer followed by the
 *   plain conv (what ops.h promises); the fast backend agrees with cpu_ref; conv_bwd_data
 *   ignores the flag; an unknown pre-activation is a recorded error;
 * - both backward directions in one call (vd_backend_conv_bwd, which shares dy's bf16
 *   conversion on the cpu backend): the same bits as conv_bwd_weights then conv_bwd_data,
 *   with and without bias, with dx written or accumulated, and weights only (dx NULL).
 * - conv_fwd adding onto y (vd_conv_desc.acc_y): y_old + conv(x) + b, on dense and channel-view
 *   outputs, within rounding of the plain conv plus an add (cpu_ref: exactly that).
 * Shapes: dense and channel-view inputs, 1x1 (matmul route), 3x3, and a 2x2 stride 2 conv.
 * Without oneDNN (no cpu backend) the cpu_ref checks run and the test reports skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "vd_test_cpu.h"
#include "vdvae/rng.h"

typedef struct pcase {
    int n, h, w, c_in, c_out, k, stride, ld_x;
} pcase;

static const pcase cases[] = {
    {2, 8, 8, 24, 40, 1, 1, 24},  /* 1x1, dense */
    {2, 8, 8, 24, 40, 1, 1, 56},  /* 1x1 reading a channel view */
    {2, 8, 8, 16, 16, 3, 1, 16},  /* 3x3 pad 1 */
    {1, 6, 6, 12, 20, 3, 1, 30},  /* 3x3 on a view */
    {2, 8, 8, 12, 16, 2, 2, 12},  /* 2x2 stride 2 */
};

static float *rand_floats(int64_t n, uint64_t stream, float scale) {
    float *x = malloc((size_t)n * sizeof *x);
    vd_rng_fill_uniform(3, stream, 0, (size_t)n, x);
    for (int64_t i = 0; i < n; i++) x[i] = scale * (2.f * x[i] - 1.f);
    return x;
}

static vd_conv_desc desc_of(const pcase *c, int pre) {
    int pad = c->stride == 1 ? (c->k - 1) / 2 : 0;
    return (vd_conv_desc){.c_in = c->c_in, .c_out = c->c_out, .kh = c->k, .kw = c->k, .stride = c->stride,
                          .pad_top = pad, .pad_left = pad, .pad_bottom = pad, .pad_right = pad, .pre_act = pre};
}

typedef struct outs {
    float *y, *dw, *db, *dx;
    int64_t ny, nw, nx;
} outs;

/* fused: pre_act on x; else act_fwd into a dense buffer and plain convs. */
static outs run(vd_backend *be, const pcase *c, bool fused, const float *xv, const float *w, const float *b,
                const float *dyv) {
    int ho = c->h / c->stride, wo = c->w / c->stride;
    outs o = {.ny = (int64_t)c->n * ho * wo * c->c_out, .nw = (int64_t)c->c_out * c->c_in * c->k * c->k,
              .nx = (int64_t)c->n * c->h * c->w * c->c_in};
    o.y = calloc((size_t)o.ny, sizeof(float));
    o.dw = calloc((size_t)o.nw, sizeof(float));
    o.db = calloc((size_t)c->c_out, sizeof(float));
    o.dx = calloc((size_t)o.nx, sizeof(float));
    float *s = malloc((size_t)o.nx * sizeof(float));
    vd_tensor x = {(float *)xv, c->n, c->h, c->w, c->c_in, c->ld_x};
    vd_tensor sd = vd_tensor_make(s, c->n, c->h, c->w, c->c_in);
    vd_tensor y = vd_tensor_make(o.y, c->n, ho, wo, c->c_out), dy = vd_tensor_make((float *)dyv, c->n, ho, wo, c->c_out);
    vd_tensor dx = vd_tensor_make(o.dx, c->n, c->h, c->w, c->c_in);
    vd_conv_desc d = desc_of(c, fused ? VD_CONV_PRE_SILU : VD_CONV_PRE_NONE);
    const vd_tensor *in = &x;
    if (!fused) {
        be->i->act_fwd(be, VD_ACT_SILU, 0.f, &x, &sd);
        in = &sd;
    }
    be->i->conv_fwd(be, &d, in, w, b, &y);
    be->i->conv_bwd_weights(be, &d, in, &dy, o.dw, o.db);
    be->i->conv_bwd_data(be, &d, &dy, w, &dx, false);
    free(s);
    vd_err err = {0};
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", be->i->name, err.msg);
    return o;
}

static void free_outs(outs *o) {
    free(o->y), free(o->dw), free(o->db), free(o->dx);
}

static bool same(const float *a, const float *b, int64_t n) {
    return !memcmp(a, b, (size_t)n * sizeof(float));
}

static double rel(const float *a, const float *b, int64_t n) {
    double m = 0, d = 0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(b[i]) > m) m = fabs(b[i]);
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    }
    return m > 0 ? d / m : d;
}

static void run_case(vd_backend *ref, vd_backend *fast, const pcase *c, const char *prec) {
    int ho = c->h / c->stride, wo = c->w / c->stride;
    float *x = rand_floats((int64_t)c->n * c->h * c->w * c->ld_x, 1, 4.f);
    float *w = rand_floats((int64_t)c->c_out * c->c_in * c->k * c->k, 2, 0.3f);
    float *b = rand_floats(c->c_out, 3, 0.5f);
    float *dy = rand_floats((int64_t)c->n * ho * wo * c->c_out, 4, 1.f);
    outs r0 = run(ref, c, false, x, w, b, dy), r1 = run(ref, c, true, x, w, b, dy);
    CHECKF(same(r0.y, r1.y, r0.ny) && same(r0.dw, r1.dw, r0.nw) && same(r0.db, r1.db, c->c_out),
           "cpu_ref %s case %dx%d %d->%d ld %d: fused SiLU differs from act_fwd + conv", prec, c->k, c->k, c->c_in,
           c->c_out, c->ld_x);
    CHECKF(same(r0.dx, r1.dx, r0.nx), "cpu_ref %s: bwd-data depends on pre_act", prec);
    if (fast) {
        outs f0 = run(fast, c, false, x, w, b, dy), f1 = run(fast, c, true, x, w, b, dy);
        CHECKF(same(f0.y, f1.y, f0.ny) && same(f0.dw, f1.dw, f0.nw) && same(f0.db, f1.db, c->c_out),
               "cpu %s case %dx%d %d->%d ld %d: fused SiLU differs from act_fwd + conv (y %g dw %g)", prec, c->k, c->k,
               c->c_in, c->c_out, c->ld_x, rel(f1.y, f0.y, f0.ny), rel(f1.dw, f0.dw, f0.nw));
        CHECKF(same(f0.dx, f1.dx, f0.nx), "cpu %s: bwd-data depends on pre_act", prec);
        double ey = rel(f1.y, r1.y, r1.ny), ew = rel(f1.dw, r1.dw, r1.nw);
        CHECKF(ey < 1e-4 && ew < 1e-4, "cpu vs cpu_ref %s fused: y %g dw %g", prec, ey, ew);
        free_outs(&f0), free_outs(&f1);
    }
    free_outs(&r0), free_outs(&r1);
    free(x), free(w), free(b), free(dy);
}

/* vd_backend_conv_bwd against the two separate calls on the same backend: bit for bit. */
static void combined_case(vd_backend *be, const pcase *c, const char *prec, bool bias, bool acc, bool with_dx) {
    int ho = c->h / c->stride, wo = c->w / c->stride;
    int64_t nx = (int64_t)c->n * c->h * c->w * c->c_in, nw = (int64_t)c->c_out * c->c_in * c->k * c->k;
    float *x = rand_floats(nx / c->c_in * c->ld_x, 11, 2.f), *w = rand_floats(nw, 12, 0.3f);
    float *dy = rand_floats((int64_t)c->n * ho * wo * c->c_out, 13, 1.f);
    float *dw[2], *db[2], *dx[2];
    for (int k = 0; k < 2; k++) {
        dw[k] = rand_floats(nw, 14, 0.1f); /* parameter gradients accumulate onto this */
        db[k] = rand_floats(c->c_out, 15, 0.1f);
        dx[k] = rand_floats(nx, 16, 0.5f);
    }
    vd_tensor xt = {x, c->n, c->h, c->w, c->c_in, c->ld_x};
    vd_tensor dyt = vd_tensor_make(dy, c->n, ho, wo, c->c_out);
    vd_conv_desc d = desc_of(c, VD_CONV_PRE_SILU);
    for (int k = 0; k < 2; k++) {
        vd_tensor dxt = vd_tensor_make(dx[k], c->n, c->h, c->w, c->c_in);
        if (k == 0) {
            be->i->conv_bwd_weights(be, &d, &xt, &dyt, dw[k], bias ? db[k] : NULL);
            if (with_dx) be->i->conv_bwd_data(be, &d, &dyt, w, &dxt, acc);
        } else {
            vd_backend_conv_bwd(be, &d, &xt, &dyt, w, dw[k], bias ? db[k] : NULL, with_dx ? &dxt : NULL, acc);
        }
    }
    vd_err err = {0};
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", be->i->name, err.msg);
    CHECKF(same(dw[0], dw[1], nw) && same(db[0], db[1], c->c_out) && same(dx[0], dx[1], nx),
           "%s %s conv_bwd %dx%d %d->%d ld %d bias %d acc %d dx %d: differs from the two calls (dw %g dx %g)",
           be->i->name, prec, c->k, c->k, c->c_in, c->c_out, c->ld_x, bias, acc, with_dx, rel(dw[1], dw[0], nw),
           rel(dx[1], dx[0], nx));
    for (int k = 0; k < 2; k++) free(dw[k]), free(db[k]), free(dx[k]);
    free(x), free(w), free(dy);
}

/* conv_fwd with acc_y on an output of ld_y channels (a view when ld_y > c_out) against the plain
 * conv added to the old values afterwards; guards past c_out stay untouched. */
static void acc_case(vd_backend *be, const pcase *c, const char *prec, int ld_y) {
    int ho = c->h / c->stride, wo = c->w / c->stride;
    int64_t px = (int64_t)c->n * ho * wo, nw = (int64_t)c->c_out * c->c_in * c->k * c->k;
    float *x = rand_floats((int64_t)c->n * c->h * c->w * c->ld_x, 21, 1.f), *w = rand_floats(nw, 22, 0.3f);
    float *b = rand_floats(c->c_out, 23, 0.5f), *y0 = rand_floats(px * ld_y, 24, 2.f);
    float *y1 = malloc((size_t)(px * ld_y) * sizeof(float)), *plain = calloc((size_t)(px * c->c_out), sizeof(float));
    memcpy(y1, y0, (size_t)(px * ld_y) * sizeof(float));
    vd_tensor xt = {x, c->n, c->h, c->w, c->c_in, c->ld_x};
    vd_tensor yt = {y1, c->n, ho, wo, c->c_out, ld_y}, pt = vd_tensor_make(plain, c->n, ho, wo, c->c_out);
    vd_conv_desc d = desc_of(c, VD_CONV_PRE_NONE);
    be->i->conv_fwd(be, &d, &xt, w, b, &pt);
    d.acc_y = 1;
    be->i->conv_fwd(be, &d, &xt, w, b, &yt);
    vd_err err = {0};
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", be->i->name, err.msg);
    double worst = 0;
    int64_t guards = 0;
    for (int64_t p = 0; p < px; p++) {
        for (int o = 0; o < c->c_out; o++) {
            double want = (double)y0[p * ld_y + o] + plain[p * c->c_out + o];
            double e = fabs(y1[p * ld_y + o] - want) / (fabs(want) + 1.0);
            if (e > worst) worst = e;
        }
        for (int o = c->c_out; o < ld_y; o++) guards += y1[p * ld_y + o] != y0[p * ld_y + o];
    }
    CHECKF(worst < 1e-6 && guards == 0, "%s %s acc_y %dx%d %d->%d ld_y %d: worst %g, %lld guards changed", be->i->name,
           prec, c->k, c->k, c->c_in, c->c_out, ld_y, worst, (long long)guards);
    free(x), free(w), free(b), free(y0), free(y1), free(plain);
}

static void test_unknown(vd_backend *be) {
    pcase c = cases[0];
    vd_conv_desc d = desc_of(&c, 7);
    float *x = calloc((size_t)c.n * c.h * c.w * c.c_in, sizeof(float)), *y = calloc((size_t)c.n * c.h * c.w * c.c_out, sizeof(float));
    float *w = calloc((size_t)c.c_in * c.c_out, sizeof(float));
    vd_tensor xt = vd_tensor_make(x, c.n, c.h, c.w, c.c_in), yt = vd_tensor_make(y, c.n, c.h, c.w, c.c_out);
    be->i->conv_fwd(be, &d, &xt, w, NULL, &yt);
    vd_err err = {0};
    CHECKF(vd_backend_check(be, &err) == VD_ERR_INVALID && strstr(err.msg, "pre-activation"),
           "%s: unknown pre_act gives '%s'", be->i->name, err.msg);
    free(x), free(y), free(w);
}

int main(void) {
    static const vd_precision precs[2] = {VD_PREC_FP32, VD_PREC_BF16};
    static const char *names[2] = {"fp32", "bf16"};
    vd_err err = {0};
    for (int p = 0; p < 2; p++) {
        vd_backend *ref = NULL, *fast = NULL;
        if (vd_backend_create_cpu_ref(&ref, &err) || vd_backend_set_precision(ref, precs[p], &err)) {
            CHECKF(0, "%s", err.msg);
            return vd_test_result("test_conv_pre_act");
        }
        if (vd_backend_create_cpu(&fast, 0, &err) == VD_OK && vd_backend_set_precision(fast, precs[p], &err)) {
            CHECKF(0, "%s", err.msg);
            vd_backend_destroy(fast);
            fast = NULL;
        }
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            run_case(ref, fast, &cases[i], names[p]);
            for (int v = 0; v < 4; v++) {
                combined_case(ref, &cases[i], names[p], v & 1, v & 2, true);
                if (fast) combined_case(fast, &cases[i], names[p], v & 1, v & 2, true);
            }
            if (fast) combined_case(fast, &cases[i], names[p], true, false, false);
            for (int view = 0; view < 2; view++) {
                int ld_y = cases[i].c_out + 8 * view;
                acc_case(ref, &cases[i], names[p], ld_y);
                if (fast) acc_case(fast, &cases[i], names[p], ld_y);
            }
        }
        vd_backend_destroy(ref);
        vd_backend_destroy(fast);
    }
    vd_backend *ref = NULL, *fast = NULL;
    if (!vd_backend_create_cpu_ref(&ref, &err)) test_unknown(ref), vd_backend_destroy(ref);
    vd_status st = vd_test_open_cpu(&fast, 0);
    if (!st) test_unknown(fast), vd_backend_destroy(fast);
    return vd_test_result_cpu("test_conv_pre_act", st);
}
