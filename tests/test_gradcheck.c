/* Finite-difference gradient checks of every differentiable cpu_ref op: each backward must
 * match central differences of its forward (directional derivatives along random
 * directions, per element on tiny tensors), honour its acc flag, and leave the padding of
 * ld > c views untouched. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "vd_test.h"

/* ---- test tensors: a logical NHWC tensor inside a buffer whose pixels are ld floats ---- */

#define PAD_SENTINEL 12345.0f

typedef struct tbuf {
    float *mem;
    size_t len;
    vd_tensor t;
} tbuf;

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}
static double urange(double lo, double hi) {
    return lo + (hi - lo) * urand();
}

static int64_t tb_numel(const tbuf *b) {
    return vd_tensor_numel(&b->t);
}
static float *tb_el(const tbuf *b, int64_t i) {
    return b->t.data + (i / b->t.c) * b->t.ld + i % b->t.c;
}
static tbuf tb_new(int n, int h, int w, int c, int pad) {
    tbuf b = {.len = (size_t)n * h * w * (c + pad)};
    b.mem = malloc(b.len * sizeof(float));
    for (size_t i = 0; i < b.len; i++)
        b.mem[i] = PAD_SENTINEL;
    b.t = (vd_tensor){b.mem, n, h, w, c, c + pad};
    for (int64_t i = 0; i < tb_numel(&b); i++)
        *tb_el(&b, i) = 0;
    return b;
}
/* A parameter array (weights, bias, a broadcast image) as a dense tensor. */
static tbuf tb_flat(int len) {
    return tb_new(1, 1, 1, len, 0);
}
static void tb_free(tbuf *b) {
    free(b->mem);
}
static void tb_rand(tbuf *b, double lo, double hi) {
    for (int64_t i = 0; i < tb_numel(b); i++)
        *tb_el(b, i) = (float)urange(lo, hi);
}
static void tb_fill(tbuf *b, float v) {
    for (int64_t i = 0; i < tb_numel(b); i++)
        *tb_el(b, i) = v;
}
static void tb_copy(tbuf *dst, const tbuf *src) {
    for (int64_t i = 0; i < tb_numel(src); i++)
        *tb_el(dst, i) = *tb_el(src, i);
}
static tbuf tb_like(const tbuf *b, int pad) {
    return tb_new(b->t.n, b->t.h, b->t.w, b->t.c, pad);
}
static double tb_dot(const tbuf *a, const tbuf *b) {
    double s = 0;
    for (int64_t i = 0; i < tb_numel(a); i++)
        s += (double)*tb_el(a, i) * *tb_el(b, i);
    return s;
}
static bool tb_pad_intact(const tbuf *b) {
    for (size_t i = 0; i < b->len; i++)
        if ((int64_t)(i % b->t.ld) >= b->t.c && b->mem[i] != PAD_SENTINEL) return false;
    return true;
}
/* g -= q: the gradient an accumulating (+=) op added on top of q. */
static void tb_sub(tbuf *g, const tbuf *q) {
    for (int64_t i = 0; i < tb_numel(g); i++)
        *tb_el(g, i) -= *tb_el(q, i);
}

/* ---- the checks ---- */

typedef double (*loss_fn)(void *ctx);

/* The central difference of the loss along v with step eps. */
static double central_diff(loss_fn loss, void *ctx, tbuf *x, const double *v, double eps) {
    int64_t n = tb_numel(x);
    float *save = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        save[i] = *tb_el(x, i);
    for (int64_t i = 0; i < n; i++)
        *tb_el(x, i) = (float)(save[i] + eps * v[i]);
    double lp = loss(ctx);
    for (int64_t i = 0; i < n; i++)
        *tb_el(x, i) = (float)(save[i] - eps * v[i]);
    double lm = loss(ctx);
    for (int64_t i = 0; i < n; i++)
        *tb_el(x, i) = save[i];
    free(save);
    return (lp - lm) / (2 * eps);
}

/* Compares the numeric derivative along v (Richardson-extrapolated from steps eps and
 * eps / 2, so the step can stay large enough for float losses to resolve it) with
 * <g, v>. The tolerance is relative to sum |g_i v_i|, which random signs cannot cancel. */
static void check_along(const char *name, long long index, loss_fn loss, void *ctx, tbuf *x,
                        const tbuf *g, const double *v, double eps, double tol, double atol) {
    double d1 = central_diff(loss, ctx, x, v, eps), d2 = central_diff(loss, ctx, x, v, eps / 2);
    double num = (4 * d2 - d1) / 3, ana = 0, mag = 0;
    for (int64_t i = 0; i < tb_numel(x); i++) {
        ana += *tb_el(g, i) * v[i];
        mag += fabs(*tb_el(g, i) * v[i]);
    }
    bool ok = fabs(num - ana) <= tol * fmax(mag, fabs(num)) + atol;
    CHECKF(ok, "%s[%lld]: numeric %.7g analytic %.7g", name, index, num, ana);
}

/* Directional derivatives along three random directions (index -1 in messages). */
static void check_dir(const char *name, loss_fn loss, void *ctx, tbuf *x, const tbuf *g, double eps,
                      double tol) {
    int64_t n = tb_numel(x);
    double *v = malloc(n * sizeof(double));
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; i < n; i++)
            v[i] = urange(-1, 1);
        check_along(name, -1, loss, ctx, x, g, v, eps, tol, 1e-4);
    }
    free(v);
}

/* One derivative per element: for tiny tensors, where a direction could hide an error. */
static void check_each(const char *name, loss_fn loss, void *ctx, tbuf *x, const tbuf *g,
                       double eps, double tol, double atol) {
    int64_t n = tb_numel(x);
    double *v = calloc(n, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        v[i] = 1;
        check_along(name, (long long)i, loss, ctx, x, g, v, eps, tol, atol);
        v[i] = 0;
    }
    free(v);
}

/* A backward with an acc flag: '=' must overwrite (dx starts as NaN), '+=' must add to what
 * was there; g receives the plain gradient. */
typedef void (*bwd_fn)(void *ctx, const vd_tensor *dx, bool acc);

static void grad_with_acc(const char *name, bwd_fn bwd, void *ctx, tbuf *g) {
    tb_fill(g, NAN);
    bwd(ctx, &g->t, false);
    tbuf base = tb_like(g, 2), sum = tb_like(g, 2);
    tb_rand(&base, -1, 1);
    tb_copy(&sum, &base);
    bwd(ctx, &sum.t, true);
    int bad = 0;
    for (int64_t i = 0; i < tb_numel(g); i++) {
        double want = (double)*tb_el(&base, i) + *tb_el(g, i);
        if (!(fabs(*tb_el(&sum, i) - want) <= 1e-5 * (1 + fabs(want)))) bad++;
    }
    CHECKF(bad == 0, "%s: acc=true differs from base + gradient in %d elements", name, bad);
    CHECKF(tb_pad_intact(g) && tb_pad_intact(&sum), "%s: wrote into view padding", name);
    tb_free(&base);
    tb_free(&sum);
}

static vd_backend *be;

static void expect_ok(const char *what) {
    vd_err err = {0};
    vd_status s = vd_backend_check(be, &err);
    CHECKF(s == VD_OK, "%s: backend failed: %s", what, err.msg);
    if (s != VD_OK) exit(vd_test_result("test_gradcheck"));
}

/* ---- convolution ---- */

typedef struct conv_ctx {
    vd_conv_desc cv;
    tbuf x, w, b, y, r;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    be->i->conv_fwd(be, &c->cv, &c->x.t, c->w.t.data, c->b.t.data, &c->y.t);
    return tb_dot(&c->y, &c->r);
}
static void conv_bwd_x(void *p, const vd_tensor *dx, bool acc) {
    conv_ctx *c = p;
    be->i->conv_bwd_data(be, &c->cv, &c->r.t, c->w.t.data, dx, acc);
}

static void check_conv(int n, int h, int w, vd_conv_desc cv) {
    char name[128];
    snprintf(name, sizeof name, "conv %dx%d s%d pads %d,%d,%d,%d %dx%d", cv.kh, cv.kw, cv.stride,
             cv.pad_top, cv.pad_left, cv.pad_bottom, cv.pad_right, h, w);
    int ho = (h + cv.pad_top + cv.pad_bottom - cv.kh) / cv.stride + 1;
    int wo = (w + cv.pad_left + cv.pad_right - cv.kw) / cv.stride + 1;
    conv_ctx c = {.cv = cv};
    c.x = tb_new(n, h, w, cv.c_in, 3);
    c.w = tb_flat(cv.c_out * cv.c_in * cv.kh * cv.kw);
    c.b = tb_flat(cv.c_out);
    c.y = tb_new(n, ho, wo, cv.c_out, 2);
    c.r = tb_new(n, ho, wo, cv.c_out, 1);
    tb_rand(&c.x, -1, 1);
    tb_rand(&c.w, -1, 1);
    tb_rand(&c.b, -1, 1);
    tb_rand(&c.r, -1, 1);

    tbuf gx = tb_like(&c.x, 1), gw = tb_like(&c.w, 0), gb = tb_like(&c.b, 0);
    tbuf qw = tb_like(&c.w, 0), qb = tb_like(&c.b, 0), gw2 = tb_like(&c.w, 0);
    grad_with_acc(name, conv_bwd_x, &c, &gx);
    tb_rand(&qw, -1, 1);
    tb_rand(&qb, -1, 1);
    tb_copy(&gw, &qw);
    tb_copy(&gb, &qb);
    tb_copy(&gw2, &qw);
    be->i->conv_bwd_weights(be, &c.cv, &c.x.t, &c.r.t, gw.t.data, gb.t.data);
    be->i->conv_bwd_weights(be, &c.cv, &c.x.t, &c.r.t, gw2.t.data, NULL);
    tb_sub(&gw, &qw);
    tb_sub(&gb, &qb);
    tb_sub(&gw2, &qw);
    expect_ok(name);
    CHECKF(tb_dot(&gw, &gw) == tb_dot(&gw2, &gw2), "%s: dw depends on db being given", name);

    check_dir(name, conv_loss, &c, &c.x, &gx, 1e-2, 1e-3);
    check_dir(name, conv_loss, &c, &c.w, &gw, 1e-2, 1e-3);
    check_dir(name, conv_loss, &c, &c.b, &gb, 1e-2, 1e-3);
    CHECKF(tb_pad_intact(&c.y), "%s: y padding written", name);
    expect_ok(name);
    tbuf *all[] = {&c.x, &c.w, &c.b, &c.y, &c.r, &gx, &gw, &gb, &qw, &qb, &gw2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

static void test_conv(void) {
    /* c_in, c_out, kh, kw, stride, pad top, left, bottom, right */
    check_conv(2, 5, 4, (vd_conv_desc){3, 4, 3, 3, 1, 1, 1, 1, 1, VD_CONV_PRE_NONE, 0});
    check_conv(2, 3, 3, (vd_conv_desc){5, 3, 1, 1, 1, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0});
    check_conv(1, 6, 4, (vd_conv_desc){2, 3, 2, 2, 2, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0});
    check_conv(2, 8, 8, (vd_conv_desc){2, 3, 4, 4, 4, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0});
    check_conv(1, 5, 6, (vd_conv_desc){3, 2, 3, 3, 2, 1, 0, 0, 1, VD_CONV_PRE_NONE, 0});
    check_conv(2, 4, 5, (vd_conv_desc){2, 2, 2, 2, 1, 1, 0, 0, 1, VD_CONV_PRE_NONE, 0});
    check_conv(1, 5, 5, (vd_conv_desc){2, 3, 3, 3, 2, 1, 1, 1, 1, VD_CONV_PRE_NONE, 0});
    check_conv(1, 4, 3, (vd_conv_desc){2, 2, 3, 1, 1, 2, 0, 0, 0, VD_CONV_PRE_NONE, 0});
}

/* ---- activations, upsampling, broadcast ---- */

typedef struct unary_ctx {
    vd_act act;
    float param;
    int s;
    tbuf x, y, r;
} unary_ctx;

static double act_loss(void *p) {
    unary_ctx *u = p;
    be->i->act_fwd(be, u->act, u->param, &u->x.t, &u->y.t);
    return tb_dot(&u->y, &u->r);
}
static void act_bwd(void *p, const vd_tensor *dx, bool acc) {
    unary_ctx *u = p;
    be->i->act_bwd(be, u->act, u->param, &u->x.t, &u->r.t, dx, acc);
}

/* Inputs keep away from 0 (LeakyReLU's kink) so that differences never straddle it. */
static void check_act(const char *name, vd_act act, float param, double lo, double hi) {
    unary_ctx u = {.act = act, .param = param};
    u.x = tb_new(2, 3, 2, 5, 2);
    u.y = tb_like(&u.x, 1);
    u.r = tb_like(&u.x, 3);
    tb_rand(&u.r, -1, 1);
    for (int64_t i = 0; i < tb_numel(&u.x); i++) {
        double v = urange(lo, hi);
        *tb_el(&u.x, i) = (float)(fabs(v) < 0.05 ? v + 0.1 : v);
    }
    tbuf g = tb_like(&u.x, 1);
    grad_with_acc(name, act_bwd, &u, &g);
    check_dir(name, act_loss, &u, &u.x, &g, 1e-2, 1e-3);
    check_each(name, act_loss, &u, &u.x, &g, 1e-2, 1e-3, 1e-5);
    CHECKF(tb_pad_intact(&u.y), "%s: y padding written", name);
    expect_ok(name);
    tb_free(&u.x);
    tb_free(&u.y);
    tb_free(&u.r);
    tb_free(&g);
}

static double up_loss(void *p) {
    unary_ctx *u = p;
    be->i->upsample_fwd(be, u->s, &u->x.t, &u->y.t);
    return tb_dot(&u->y, &u->r);
}
static void up_bwd(void *p, const vd_tensor *dx, bool acc) {
    unary_ctx *u = p;
    be->i->upsample_bwd(be, u->s, &u->r.t, dx, acc);
}

static void check_upsample(int s) {
    unary_ctx u = {.s = s};
    u.x = tb_new(2, 2, 3, 3, 1);
    u.y = tb_new(2, 2 * s, 3 * s, 3, 2);
    u.r = tb_new(2, 2 * s, 3 * s, 3, 0);
    tb_rand(&u.x, -1, 1);
    tb_rand(&u.r, -1, 1);
    tbuf g = tb_like(&u.x, 2);
    grad_with_acc("upsample", up_bwd, &u, &g);
    check_each("upsample", up_loss, &u, &u.x, &g, 1e-2, 1e-3, 1e-5);
    expect_ok("upsample");
    tb_free(&u.x);
    tb_free(&u.y);
    tb_free(&u.r);
    tb_free(&g);
}

typedef struct bcast_ctx {
    tbuf t, y, base, r;
    bool acc;
} bcast_ctx;

static double bcast_loss(void *p) {
    bcast_ctx *b = p;
    tb_copy(&b->y, &b->base);
    be->i->broadcast_fwd(be, b->t.t.data, &b->y.t, b->acc);
    return tb_dot(&b->y, &b->r);
}

static void check_broadcast(bool acc) {
    bcast_ctx b = {.acc = acc};
    b.t = tb_flat(3 * 2 * 4);
    b.y = tb_new(3, 3, 2, 4, 2);
    b.base = tb_like(&b.y, 0);
    b.r = tb_like(&b.y, 1);
    tb_rand(&b.t, -1, 1);
    tb_rand(&b.base, -1, 1);
    tb_rand(&b.r, -1, 1);
    tbuf q = tb_like(&b.t, 0), g = tb_like(&b.t, 0);
    tb_rand(&q, -1, 1);
    tb_copy(&g, &q);
    be->i->broadcast_bwd(be, &b.r.t, g.t.data);
    tb_sub(&g, &q);
    check_each(acc ? "broadcast acc" : "broadcast", bcast_loss, &b, &b.t, &g, 1e-2, 1e-3, 1e-5);
    /* with acc the old contents pass through: d loss / d base = r */
    double with_base = bcast_loss(&b);
    tb_fill(&b.base, 0);
    double without = bcast_loss(&b);
    CHECKF(acc ? with_base != without : with_base == without, "broadcast acc=%d", acc);
    CHECK(tb_pad_intact(&b.y));
    expect_ok("broadcast");
    tbuf *all[] = {&b.t, &b.y, &b.base, &b.r, &q, &g};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

/* ---- Gaussian latents ---- */

typedef struct latent_ctx {
    int base;
    float beta, temp;
    bool residual;
    vd_noise noise;
    tbuf raw, pm, pp, mean, p, rm, rp, z, rz;
} latent_ctx;

static double stats_loss(void *v) {
    latent_ctx *l = v;
    be->i->latent_stats_fwd(be, l->base, l->beta, &l->raw.t, l->residual ? &l->pm.t : NULL,
                            l->residual ? &l->pp.t : NULL, &l->mean.t, &l->p.t);
    return tb_dot(&l->mean, &l->rm) + tb_dot(&l->p, &l->rp);
}

static void latent_alloc(latent_ctx *l, int v) {
    l->raw = tb_new(2, 3, 2, 2 * v, 3);
    l->pm = tb_new(2, 3, 2, v, 1);
    l->pp = tb_new(2, 3, 2, v, 2);
    l->mean = tb_new(2, 3, 2, v, v); /* mean and p as views into one wider tensor */
    l->p = tb_new(2, 3, 2, v, 4);
    l->rm = tb_new(2, 3, 2, v, 0);
    l->rp = tb_new(2, 3, 2, v, 1);
    l->z = tb_new(2, 3, 2, v, 2);
    l->rz = tb_new(2, 3, 2, v, 0);
    tb_rand(&l->raw, -2, 2);
    tb_rand(&l->pm, -1, 1);
    tb_rand(&l->pp, l->base == VD_BASE_STD ? 0.3 : -1, l->base == VD_BASE_STD ? 2 : 1);
    tb_rand(&l->rm, -1, 1);
    tb_rand(&l->rp, -1, 1);
    tb_rand(&l->rz, -1, 1);
}

static void latent_free(latent_ctx *l) {
    tbuf *all[] = {&l->raw, &l->pm, &l->pp, &l->mean, &l->p, &l->rm, &l->rp, &l->z, &l->rz};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

static void check_latent_stats(int base, bool residual) {
    char name[64];
    snprintf(name, sizeof name, "latent_stats %s%s", base == VD_BASE_STD ? "std" : "logstd",
             residual ? " residual" : "");
    latent_ctx l = {.base = base, .beta = 0.6931472f, .residual = residual};
    latent_alloc(&l, 3);
    tbuf draw = tb_like(&l.raw, 1), gpm = tb_like(&l.pm, 1), gpp = tb_like(&l.pp, 0);
    tbuf qpm = tb_like(&l.pm, 0), qpp = tb_like(&l.pp, 0);
    tb_fill(&draw, NAN);
    tb_rand(&qpm, -1, 1);
    tb_rand(&qpp, -1, 1);
    tb_copy(&gpm, &qpm);
    tb_copy(&gpp, &qpp);
    be->i->latent_stats_bwd(be, base, l.beta, &l.raw.t, residual ? &l.pm.t : NULL,
                            residual ? &l.pp.t : NULL, &l.rm.t, &l.rp.t, &draw.t, &gpm.t, &gpp.t);
    tb_sub(&gpm, &qpm);
    tb_sub(&gpp, &qpp);
    expect_ok(name);
    check_each(name, stats_loss, &l, &l.raw, &draw, 1e-2, 1e-3, 1e-5);
    if (residual) {
        check_each(name, stats_loss, &l, &l.pm, &gpm, 1e-2, 1e-3, 1e-5);
        check_each(name, stats_loss, &l, &l.pp, &gpp, 1e-2, 1e-3, 1e-5);
    } else {
        CHECKF(tb_dot(&gpm, &gpm) == 0 && tb_dot(&gpp, &gpp) == 0,
               "%s: prior gradients touched without a residual prior", name);
    }
    CHECKF(tb_pad_intact(&draw) && tb_pad_intact(&l.mean) && tb_pad_intact(&l.p),
           "%s: padding written", name);
    expect_ok(name);
    tbuf *all[] = {&draw, &gpm, &gpp, &qpm, &qpp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
    latent_free(&l);
}

static double sample_loss(void *v) {
    latent_ctx *l = v;
    be->i->latent_sample_fwd(be, l->base, l->beta, l->temp, &l->mean.t, &l->p.t, &l->noise,
                             &l->z.t);
    return tb_dot(&l->z, &l->rz);
}

static void check_latent_sample(int base, bool philox) {
    char name[64];
    snprintf(name, sizeof name, "latent_sample %s %s", base == VD_BASE_STD ? "std" : "logstd",
             philox ? "philox" : "given");
    latent_ctx l = {.base = base, .beta = 0.6931472f, .temp = 0.7f};
    latent_alloc(&l, 3);
    tbuf eps = tb_like(&l.z, 0);
    tb_rand(&eps, -2, 2);
    l.noise = (vd_noise){philox ? NULL : eps.t.data, 42, 7};
    tb_rand(&l.mean, -1, 1);
    tb_rand(&l.p, base == VD_BASE_STD ? 0.3 : -1, base == VD_BASE_STD ? 2 : 1);
    tbuf gm = tb_like(&l.mean, 1), gp = tb_like(&l.p, 2), qm = tb_like(&gm, 0),
         qp = tb_like(&gp, 0);
    tb_rand(&qm, -1, 1);
    tb_rand(&qp, -1, 1);
    tb_copy(&gm, &qm);
    tb_copy(&gp, &qp);
    be->i->latent_sample_bwd(be, base, l.beta, l.temp, &l.p.t, &l.noise, &l.rz.t, &gm.t, &gp.t);
    tb_sub(&gm, &qm);
    tb_sub(&gp, &qp);
    expect_ok(name);
    check_dir(name, sample_loss, &l, &l.mean, &gm, 1e-2, 1e-3);
    check_each(name, sample_loss, &l, &l.p, &gp, 1e-2, 1e-3, 1e-5);
    CHECKF(tb_pad_intact(&gm) && tb_pad_intact(&gp) && tb_pad_intact(&l.z), "%s: padding", name);
    expect_ok(name);
    tbuf *all[] = {&eps, &gm, &gp, &qm, &qp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
    latent_free(&l);
}

typedef struct kl_ctx {
    int base;
    float beta, scale;
    tbuf t[4]; /* post mean, post p, prior mean, prior p */
} kl_ctx;

static double kl_loss(void *v) {
    kl_ctx *k = v;
    float sum = NAN;
    be->i->kl_fwd(be, k->base, k->beta, &k->t[0].t, &k->t[1].t, &k->t[2].t, &k->t[3].t, &sum, NULL);
    return (double)k->scale * sum;
}

static void check_kl(int base) {
    const char *name = base == VD_BASE_STD ? "kl std" : "kl logstd";
    kl_ctx k = {.base = base, .beta = 0.6931472f, .scale = 0.37f};
    tbuf g[4], q[4];
    for (int i = 0; i < 4; i++) {
        k.t[i] = tb_new(1, 2, 2, 3, i);
        bool stdp = base == VD_BASE_STD && (i & 1);
        tb_rand(&k.t[i], stdp ? 0.4 : -1, stdp ? 2 : 1);
        g[i] = tb_like(&k.t[i], 3 - i);
        q[i] = tb_like(&k.t[i], 0);
        tb_rand(&q[i], -1, 1);
        tb_copy(&g[i], &q[i]);
    }
    be->i->kl_bwd(be, base, k.beta, k.scale, &k.t[0].t, &k.t[1].t, &k.t[2].t, &k.t[3].t, &g[0].t,
                  &g[1].t, &g[2].t, &g[3].t);
    expect_ok(name);
    for (int i = 0; i < 4; i++) {
        tb_sub(&g[i], &q[i]);
        check_each(name, kl_loss, &k, &k.t[i], &g[i], 1e-2, 1e-3, 1e-4);
        CHECKF(tb_pad_intact(&g[i]), "%s: padding", name);
    }
    expect_ok(name);
    for (int i = 0; i < 4; i++) {
        tb_free(&k.t[i]);
        tb_free(&g[i]);
        tb_free(&q[i]);
    }
}

/* ---- output distributions ---- */

typedef struct out_ctx {
    vd_dmol d;
    int crop;
    float scale;
    tbuf logits, x;
} out_ctx;

static double dmol_loss(void *v) {
    out_ctx *o = v;
    float nll = NAN;
    be->i->dmol_fwd(be, &o->d, &o->logits.t, &o->x.t, &nll);
    return (double)o->scale * nll;
}

static double pixel_value(int q, int bits) {
    int step = 1 << (8 - bits);
    return ((q / step) * step - 127.5) / 127.5;
}

/* Targets: random bins, with every tenth value at the lowest and every seventh at the
 * highest pixel value; means near the target except every fifth, which sits far out in
 * the tail (the pdf-at-centre branch); every sixth scale clamped at the floor. Scales stay
 * moderate so that float differences resolve the curvature. */
static void dmol_inputs(out_ctx *o) {
    int m = o->d.n_mix, c = o->d.channels;
    bool std = o->d.base == VD_BASE_STD;
    for (int64_t i = 0; i < tb_numel(&o->x); i++) {
        int q = (int)urange(0, 256);
        if (i % 10 == 3) q = 0;
        if (i % 7 == 5) q = 255;
        *tb_el(&o->x, i) = (float)pixel_value(q, o->d.num_bits);
    }
    tb_rand(&o->logits, -1, 1);
    for (int64_t p = 0; p < (int64_t)o->x.t.n * o->x.t.h * o->x.t.w; p++) {
        float *l = o->logits.t.data + p * o->logits.t.ld;
        const float *x = o->x.t.data + p * o->x.t.ld;
        for (int ch = 0; ch < c; ch++) {
            for (int k = 0; k < m; k++) {
                float *mean = &l[m + ch * 3 * m + k], *scale = &l[m + ch * 3 * m + m + k];
                *mean = x[ch] + (float)urange(-0.3, 0.3);
                if ((p + ch + k) % 5 == 1)
                    *mean = x[ch] + (float)(urand() < 0.5 ? urange(12, 14) : -urange(12, 14));
                *scale = std ? (float)urange(-2.5, 0) : (float)urange(-1.5, 0);
                if ((p + 2 * ch + k) % 6 == 2) *scale = std ? -40.0f : -6.0f;
            }
        }
    }
}

static void check_dmol(int channels, int bits, int base, int n_mix, bool per_element) {
    char name[96];
    snprintf(name, sizeof name, "dmol C=%d bits=%d %s M=%d", channels, bits,
             base == VD_BASE_STD ? "std" : "logstd", n_mix);
    out_ctx o = {.d = {n_mix, channels, bits, base, 0.6931472f, -2.0f}, .scale = 0.5f};
    int n = per_element ? 1 : 2, h = per_element ? 1 : 3, w = per_element ? 2 : 4;
    o.logits = tb_new(n, h, w, n_mix * (3 * channels + 1), 2);
    o.x = tb_new(n, h, w, channels, 1);
    dmol_inputs(&o);
    tbuf g = tb_like(&o.logits, 3);
    tb_fill(&g, NAN);
    be->i->dmol_bwd(be, &o.d, o.scale, &o.logits.t, &o.x.t, &g.t);
    expect_ok(name);
    if (per_element)
        check_each(name, dmol_loss, &o, &o.logits, &g, 2e-2, 3e-3, 3e-4);
    else
        check_dir(name, dmol_loss, &o, &o.logits, &g, 1e-2, 3e-3);
    for (int64_t i = 0; i < tb_numel(&g); i++) {
        int ch = (int)(i % g.t.c) - n_mix, kind = ch >= 0 ? (ch / n_mix) % 3 : -1;
        CHECKF(isfinite(*tb_el(&g, i)), "%s: gradient %lld not written", name, (long long)i);
        if (channels == 1 && kind == 2)
            CHECKF(*tb_el(&g, i) == 0, "%s: unused coefficient has a gradient", name);
    }
    CHECKF(tb_pad_intact(&g), "%s: padding", name);
    expect_ok(name);
    tb_free(&o.logits);
    tb_free(&o.x);
    tb_free(&g);
}

static double bern_loss(void *v) {
    out_ctx *o = v;
    float nll = NAN;
    be->i->bernoulli_fwd(be, o->crop, &o->logits.t, &o->x.t, &nll);
    return (double)o->scale * nll;
}

static void check_bernoulli(void) {
    out_ctx o = {.crop = 1, .scale = 0.25f};
    o.logits = tb_new(2, 5, 6, 1, 2);
    o.x = tb_new(2, 5, 6, 1, 0);
    tb_rand(&o.logits, -4, 4);
    for (int64_t i = 0; i < tb_numel(&o.x); i++)
        *tb_el(&o.x, i) = urand() < 0.5 ? 0.0f : 1.0f;
    tbuf g = tb_like(&o.logits, 1);
    tb_fill(&g, NAN);
    be->i->bernoulli_bwd(be, o.crop, o.scale, &o.logits.t, &o.x.t, &g.t);
    expect_ok("bernoulli");
    check_each("bernoulli", bern_loss, &o, &o.logits, &g, 1e-2, 1e-3, 3e-4);
    CHECK(tb_pad_intact(&g));
    tb_free(&o.logits);
    tb_free(&o.x);
    tb_free(&g);
}

int main(void) {
    vd_err err = {0};
    if (vd_backend_create_cpu_ref(&be, &err) != VD_OK) {
        fprintf(stderr, "cpu_ref: %s\n", err.msg);
        return 1;
    }
    test_conv();
    check_act("silu", VD_ACT_SILU, 0, -4, 4);
    check_act("leaky_relu", VD_ACT_LEAKY_RELU, 0.1f, -3, 3);
    check_act("softplus ln2", VD_ACT_SOFTPLUS, 0.6931472f, -5, 5);
    check_act("softplus past threshold", VD_ACT_SOFTPLUS, 2.0f, 9, 12);
    check_upsample(2);
    check_upsample(3);
    check_broadcast(false);
    check_broadcast(true);
    for (int base = VD_BASE_STD; base <= VD_BASE_LOGSTD; base++) {
        check_latent_stats(base, false);
        check_latent_stats(base, true);
        check_latent_sample(base, false);
        check_latent_sample(base, true);
        check_kl(base);
    }
    for (int base = VD_BASE_STD; base <= VD_BASE_LOGSTD; base++) {
        for (int bits = 5; bits <= 8; bits += 3) {
            check_dmol(1, bits, base, 3, false);
            check_dmol(3, bits, base, 3, false);
            check_dmol(1, bits, base, 2, true);
            check_dmol(3, bits, base, 2, true);
        }
    }
    check_bernoulli();
    vd_backend_destroy(be);
    return vd_test_result("test_gradcheck");
}
