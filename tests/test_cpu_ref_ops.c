/* Forward values of the cpu_ref ops against hand-computed cases: convolutions as explicit
 * sums, adjoint identities, activation thresholds, latent statistics, KL, DMoL and
 * Bernoulli likelihoods from their formulas, and determinism of the Philox samplers. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "vd_test.h"
#include "vdvae/rng.h"

static vd_backend *be;

#define NEAR(a, b, tol) (fabs((double)(a) - (double)(b)) <= (tol) * (1 + fabs((double)(b))))
#define LN2 0.6931471805599453

/* ---- small tensors: logical NHWC inside pixels of ld floats, padding set to a sentinel ---- */

#define PAD_SENTINEL -777.0f

typedef struct tbuf {
    float *mem;
    size_t len;
    vd_tensor t;
} tbuf;

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static double urange(double lo, double hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * ((double)(rng_state >> 11) * 0x1.0p-53);
}

static tbuf tb_new(int n, int h, int w, int c, int pad) {
    tbuf b = {.len = (size_t)n * h * w * (c + pad)};
    b.mem = malloc(b.len * sizeof(float));
    for (size_t i = 0; i < b.len; i++)
        b.mem[i] = PAD_SENTINEL;
    b.t = (vd_tensor){b.mem, n, h, w, c, c + pad};
    return b;
}
static float *el(const tbuf *b, int64_t i) {
    return b->t.data + (i / b->t.c) * b->t.ld + i % b->t.c;
}
static float *at(const tbuf *b, int n, int h, int w, int c) {
    return b->t.data + (((int64_t)n * b->t.h + h) * b->t.w + w) * b->t.ld + c;
}
static int64_t numel(const tbuf *b) {
    return vd_tensor_numel(&b->t);
}
static void tb_rand(tbuf *b, double lo, double hi) {
    for (int64_t i = 0; i < numel(b); i++)
        *el(b, i) = (float)urange(lo, hi);
}
static void tb_set(tbuf *b, const float *v) {
    for (int64_t i = 0; i < numel(b); i++)
        *el(b, i) = v[i];
}
static double dot(const tbuf *a, const tbuf *b) {
    double s = 0;
    for (int64_t i = 0; i < numel(a); i++)
        s += (double)*el(a, i) * *el(b, i);
    return s;
}
static bool pad_intact(const tbuf *b) {
    for (size_t i = 0; i < b->len; i++)
        if ((int64_t)(i % b->t.ld) >= b->t.c && b->mem[i] != PAD_SENTINEL) return false;
    return true;
}
static void tb_free(tbuf *b) {
    free(b->mem);
    b->mem = NULL;
}

static void expect_ok(const char *what) {
    vd_err err = {0};
    vd_status s = vd_backend_check(be, &err);
    CHECKF(s == VD_OK, "%s: %s", what, err.msg);
}

static double sigmoid(double x) {
    return 1 / (1 + exp(-x));
}
static double softplus(double x, double beta) {
    return beta * x > 20 ? x : log1p(exp(beta * x)) / beta;
}

/* ---- convolution ---- */

static void test_conv_1x1_is_matmul(void) {
    vd_conv_desc cv = {3, 4, 1, 1, 1, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0};
    tbuf x = tb_new(2, 2, 3, 3, 2), y = tb_new(2, 2, 3, 4, 1);
    float w[12], b[4];
    tb_rand(&x, -1, 1);
    for (int i = 0; i < 12; i++)
        w[i] = (float)urange(-1, 1);
    for (int i = 0; i < 4; i++)
        b[i] = (float)urange(-1, 1);
    be->i->conv_fwd(be, &cv, &x.t, w, b, &y.t);
    int bad = 0;
    for (int64_t p = 0; p < 12; p++) {
        for (int o = 0; o < 4; o++) {
            double want = b[o];
            for (int i = 0; i < 3; i++)
                want += (double)*el(&x, p * 3 + i) * w[o * 3 + i];
            bad += !NEAR(*el(&y, p * 4 + o), want, 1e-6);
        }
    }
    CHECKF(bad == 0, "1x1 conv differs from the matmul in %d outputs", bad);
    CHECK(pad_intact(&y));
    expect_ok("conv 1x1");
    tb_free(&x);
    tb_free(&y);
}

static void test_conv_hand(void) {
    /* 3x3 image 1..9, 2x2 kernel of ones, one pixel of padding on top and left only */
    static const float img[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const float want_pad[9] = {1, 3, 5, 5, 12, 16, 11, 24, 28};
    float ones[4] = {1, 1, 1, 1}, bias = 0.5f;
    tbuf x = tb_new(1, 3, 3, 1, 1), y = tb_new(1, 3, 3, 1, 0);
    tb_set(&x, img);
    be->i->conv_fwd(be, &(vd_conv_desc){1, 1, 2, 2, 1, 1, 1, 0, 0, VD_CONV_PRE_NONE, 0}, &x.t, ones, &bias, &y.t);
    for (int i = 0; i < 9; i++)
        CHECKF(*el(&y, i) == want_pad[i] + 0.5f, "padded conv [%d] = %g", i, *el(&y, i));
    tb_free(&x);
    tb_free(&y);

    /* 4x4 image 1..16, 2x2 ones, stride 2, no padding: sums of the four quadrants */
    float img16[16];
    for (int i = 0; i < 16; i++)
        img16[i] = (float)(i + 1);
    static const float want_s2[4] = {14, 22, 46, 54};
    x = tb_new(1, 4, 4, 1, 0);
    y = tb_new(1, 2, 2, 1, 3);
    tb_set(&x, img16);
    be->i->conv_fwd(be, &(vd_conv_desc){1, 1, 2, 2, 2, 0, 0, 0, 0, VD_CONV_PRE_NONE, 0}, &x.t, ones, NULL, &y.t);
    for (int i = 0; i < 4; i++)
        CHECKF(*el(&y, i) == want_s2[i], "stride-2 conv [%d] = %g", i, *el(&y, i));
    CHECK(pad_intact(&y));
    expect_ok("conv by hand");
    tb_free(&x);
    tb_free(&y);
}

/* <conv(x), r> = <x, conv_T(r)> = <w, dw(x, r)> with zero bias; db = sum of r. */
static void test_conv_adjoint(void) {
    vd_conv_desc cv = {3, 2, 3, 3, 2, 1, 0, 0, 1, VD_CONV_PRE_NONE, 0};
    tbuf x = tb_new(2, 5, 6, 3, 1), y = tb_new(2, 2, 3, 2, 2), r = tb_new(2, 2, 3, 2, 0);
    tbuf dx = tb_new(2, 5, 6, 3, 0);
    float w[54], dw[54] = {0}, zero[2] = {0, 0}, db[2] = {0, 0};
    tb_rand(&x, -1, 1);
    tb_rand(&r, -1, 1);
    for (int i = 0; i < 54; i++)
        w[i] = (float)urange(-1, 1);
    be->i->conv_fwd(be, &cv, &x.t, w, zero, &y.t);
    be->i->conv_bwd_data(be, &cv, &r.t, w, &dx.t, false);
    be->i->conv_bwd_weights(be, &cv, &x.t, &r.t, dw, db);
    double wdw = 0, sum_r[2] = {0, 0};
    for (int i = 0; i < 54; i++)
        wdw += (double)w[i] * dw[i];
    for (int64_t i = 0; i < numel(&r); i++)
        sum_r[i % 2] += *el(&r, i);
    CHECKF(NEAR(dot(&y, &r), dot(&x, &dx), 1e-5), "<conv x, r> %g vs <x, conv_T r> %g", dot(&y, &r),
           dot(&x, &dx));
    CHECKF(NEAR(dot(&y, &r), wdw, 1e-5), "<conv x, r> %g vs <w, dw> %g", dot(&y, &r), wdw);
    CHECK(NEAR(db[0], sum_r[0], 1e-6) && NEAR(db[1], sum_r[1], 1e-6));
    expect_ok("conv adjoint");
    tb_free(&x);
    tb_free(&y);
    tb_free(&r);
    tb_free(&dx);
}

/* ---- elementwise ---- */

static float act1(vd_act act, float param, float v) {
    tbuf x = tb_new(1, 1, 1, 1, 1), y = tb_new(1, 1, 1, 1, 2);
    *el(&x, 0) = v;
    be->i->act_fwd(be, act, param, &x.t, &y.t);
    float out = *el(&y, 0);
    CHECK(pad_intact(&y));
    tb_free(&x);
    tb_free(&y);
    return out;
}

static void test_activations(void) {
    CHECK(NEAR(act1(VD_ACT_SILU, 0, 1.0f), 1 / (1 + exp(-1.0)), 1e-6));
    CHECK(NEAR(act1(VD_ACT_SILU, 0, -2.0f), -2 / (1 + exp(2.0)), 1e-6));
    CHECK(act1(VD_ACT_LEAKY_RELU, 0.1f, -2.0f) == -0.2f);
    CHECK(act1(VD_ACT_LEAKY_RELU, 0.1f, 3.0f) == 3.0f);
    /* torch.nn.Softplus: linear where beta x > 20, log1p(exp(beta x)) / beta below */
    CHECK(act1(VD_ACT_SOFTPLUS, 1.0f, 25.0f) == 25.0f);
    CHECK(act1(VD_ACT_SOFTPLUS, 2.0f, 10.5f) == 10.5f);
    CHECK(NEAR(act1(VD_ACT_SOFTPLUS, 1.0f, 19.0f), log1p(exp(19.0)), 1e-7));
    CHECK(NEAR(act1(VD_ACT_SOFTPLUS, 2.0f, 9.9f), log1p(exp(19.8)) / 2, 1e-7));
    CHECK(NEAR(act1(VD_ACT_SOFTPLUS, (float)LN2, -3.0f), log1p(exp(-3 * LN2)) / LN2, 1e-6));
    CHECK(NEAR(act1(VD_ACT_SOFTPLUS, (float)LN2, 0.0f), 1.0, 1e-6));
    expect_ok("activations");
}

static void test_fill_copy_add_axpy(void) {
    tbuf a = tb_new(2, 2, 2, 3, 1), b = tb_new(2, 2, 2, 3, 0), c = tb_new(2, 2, 2, 3, 4);
    be->i->fill(be, &a.t, 2.5f);
    tb_rand(&b, -1, 1);
    be->i->copy(be, &b.t, &c.t);
    bool ok = true;
    for (int64_t i = 0; i < numel(&a); i++)
        ok = ok && *el(&a, i) == 2.5f && *el(&c, i) == *el(&b, i);
    CHECKF(ok, "fill / copy");
    be->i->add(be, &a.t, &b.t, &a.t); /* y aliases a */
    be->i->axpy(be, -2.0f, &b.t, &c.t);
    for (int64_t i = 0; i < numel(&a); i++)
        ok = ok && *el(&a, i) == 2.5f + *el(&b, i) && *el(&c, i) == -*el(&b, i);
    CHECKF(ok, "add / axpy");
    CHECK(pad_intact(&a) && pad_intact(&c));
    expect_ok("fill copy add axpy");
    tb_free(&a);
    tb_free(&b);
    tb_free(&c);
}

static void test_upsample_and_broadcast(void) {
    tbuf x = tb_new(2, 2, 3, 2, 1), y = tb_new(2, 4, 6, 2, 2), r = tb_new(2, 4, 6, 2, 0);
    tbuf dx = tb_new(2, 2, 3, 2, 3);
    tb_rand(&x, -1, 1);
    tb_rand(&r, -1, 1);
    be->i->upsample_fwd(be, 2, &x.t, &y.t);
    CHECK(*at(&y, 1, 3, 5, 1) == *at(&x, 1, 1, 2, 1) && *at(&y, 0, 2, 1, 0) == *at(&x, 0, 1, 0, 0));
    be->i->upsample_bwd(be, 2, &r.t, &dx.t, false);
    CHECKF(NEAR(dot(&y, &r), dot(&x, &dx), 1e-6), "upsample adjoint %g vs %g", dot(&y, &r),
           dot(&x, &dx));
    CHECK(pad_intact(&y) && pad_intact(&dx));

    float t[12], dt[12] = {0};
    for (int i = 0; i < 12; i++)
        t[i] = (float)urange(-1, 1);
    tbuf by = tb_new(3, 2, 3, 2, 1), br = tb_new(3, 2, 3, 2, 0);
    tb_rand(&br, -1, 1);
    be->i->broadcast_fwd(be, t, &by.t, false);
    be->i->broadcast_bwd(be, &br.t, dt);
    double tdt = 0;
    for (int i = 0; i < 12; i++)
        tdt += (double)t[i] * dt[i];
    /* t is planar (C, H, W): (h, w, c) is t[(c * 2 + h) * 3 + w] */
    CHECK(*at(&by, 2, 1, 2, 1) == t[11] && *at(&by, 1, 0, 1, 0) == t[1] &&
          *at(&by, 0, 1, 0, 0) == t[3] && *at(&by, 0, 0, 0, 1) == t[6]);
    CHECKF(NEAR(dot(&by, &br), tdt, 1e-6), "broadcast adjoint %g vs %g", dot(&by, &br), tdt);
    be->i->broadcast_fwd(be, t, &by.t, true);
    CHECK(*at(&by, 2, 1, 2, 1) == 2 * t[11]);
    expect_ok("upsample broadcast");
    tbuf *all[] = {&x, &y, &r, &dx, &by, &br};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

/* ---- latents ---- */

static void test_latent_stats(void) {
    float beta = (float)LN2;
    tbuf raw = tb_new(1, 1, 2, 4, 1), pm = tb_new(1, 1, 2, 2, 0), pp = tb_new(1, 1, 2, 2, 2);
    tbuf mean = tb_new(1, 1, 2, 2, 1), p = tb_new(1, 1, 2, 2, 3);
    tb_set(&raw, (float[]){0.5f, -1, 2, -3, 1, 1.5f, -0.5f, 30});
    tb_set(&pm, (float[]){1, 2, 3, 4});
    tb_set(&pp, (float[]){2, 0.5f, 1.5f, 3});
    be->i->latent_stats_fwd(be, VD_BASE_STD, beta, &raw.t, &pm.t, &pp.t, &mean.t, &p.t);
    CHECK(*el(&mean, 0) == 1.5f && *el(&mean, 1) == 1 && *el(&mean, 2) == 4 &&
          *el(&mean, 3) == 5.5f);
    CHECK(NEAR(*el(&p, 0), softplus(2, LN2) * 2, 1e-6));
    CHECK(NEAR(*el(&p, 1), softplus(-3, LN2) * 0.5, 1e-6));
    CHECK(NEAR(*el(&p, 3), 30 * 3, 1e-6)); /* beta x = 20.8 > 20: linear */
    be->i->latent_stats_fwd(be, VD_BASE_LOGSTD, beta, &raw.t, &pm.t, &pp.t, &mean.t, &p.t);
    CHECK(*el(&p, 0) == 4 && *el(&p, 1) == -2.5f && *el(&p, 2) == 1 && *el(&p, 3) == 33);
    be->i->latent_stats_fwd(be, VD_BASE_LOGSTD, beta, &raw.t, NULL, NULL, &mean.t, &p.t);
    CHECK(*el(&mean, 1) == -1 && *el(&p, 1) == -3);
    CHECK(pad_intact(&mean) && pad_intact(&p));
    expect_ok("latent_stats");
    tbuf *all[] = {&raw, &pm, &pp, &mean, &p};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

static void test_latent_sample(void) {
    float beta = (float)LN2, temp = 0.8f;
    tbuf mean = tb_new(2, 2, 3, 3, 1), p = tb_new(2, 2, 3, 3, 0), z = tb_new(2, 2, 3, 3, 2);
    tbuf z2 = tb_new(2, 2, 3, 3, 0), dz = tb_new(2, 2, 3, 3, 0), dp = tb_new(2, 2, 3, 3, 1);
    tb_rand(&mean, -1, 1);
    tb_rand(&p, -1, 1);
    tb_rand(&dz, -1, 1);
    float eps[36];
    for (int i = 0; i < 36; i++)
        eps[i] = (float)urange(-2, 2);
    vd_noise given = {eps, 0, 0}, philox = {NULL, 1234, vd_rng_stream(5, VD_SITE_MODEL_FIRST)};
    be->i->latent_sample_fwd(be, VD_BASE_LOGSTD, beta, temp, &mean.t, &p.t, &given, &z.t);
    bool ok = true;
    for (int i = 0; i < 36; i++)
        ok = ok && NEAR(*el(&z, i), *el(&mean, i) + temp * exp(LN2 * *el(&p, i)) * eps[i], 1e-6);
    CHECKF(ok, "latent_sample with given noise");

    /* Philox: eps_i = normal i of (seed, stream), i the logical NHWC index, not the offset */
    be->i->latent_sample_fwd(be, VD_BASE_STD, beta, temp, &mean.t, &p.t, &philox, &z.t);
    be->i->latent_sample_fwd(be, VD_BASE_STD, beta, temp, &mean.t, &p.t, &philox, &z2.t);
    for (int i = 0; i < 36; i++) {
        double e = vd_rng_normal(philox.seed, philox.stream, (uint64_t)i);
        ok = ok && *el(&z, i) == *el(&z2, i) &&
             NEAR(*el(&z, i), *el(&mean, i) + temp * *el(&p, i) * e, 1e-6);
    }
    CHECKF(ok, "latent_sample with Philox noise");
    philox.stream++;
    be->i->latent_sample_fwd(be, VD_BASE_STD, beta, temp, &mean.t, &p.t, &philox, &z2.t);
    CHECK(*el(&z, 7) != *el(&z2, 7));
    philox.stream--;
    /* backward re-derives the same eps: dp += dz T eps (std base) */
    for (int64_t i = 0; i < numel(&dp); i++)
        *el(&dp, i) = 0;
    be->i->latent_sample_bwd(be, VD_BASE_STD, beta, temp, &p.t, &philox, &dz.t, NULL, &dp.t);
    for (int i = 0; i < 36; i++) {
        double e = vd_rng_normal(philox.seed, philox.stream, (uint64_t)i);
        ok = ok && NEAR(*el(&dp, i), *el(&dz, i) * temp * e, 1e-6);
    }
    CHECKF(ok, "latent_sample_bwd re-derives the Philox eps");

    float mask[3] = {1, 0, 1};
    be->i->copy(be, &z.t, &z2.t);
    be->i->latent_mask(be, mask, &mean.t, &z.t);
    for (int i = 0; i < 36; i++)
        ok = ok && *el(&z, i) == (i % 3 == 1 ? *el(&mean, i) : *el(&z2, i));
    CHECKF(ok, "latent_mask");
    CHECK(pad_intact(&z) && pad_intact(&dp));
    expect_ok("latent_sample");
    tbuf *all[] = {&mean, &p, &z, &z2, &dz, &dp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

static void test_kl(void) {
    tbuf m = tb_new(2, 2, 2, 3, 1), s = tb_new(2, 2, 2, 3, 0), lg = tb_new(2, 2, 2, 3, 2);
    tb_rand(&m, -1, 1);
    tb_rand(&s, 0.3, 2);
    tb_rand(&lg, -1, 1);
    float sum = NAN, per[3] = {0, 0, 0};
    be->i->kl_fwd(be, VD_BASE_STD, 1, &m.t, &s.t, &m.t, &s.t, &sum, per);
    CHECKF(fabsf(sum) < 1e-6f && per[0] == 0 && per[2] == 0, "KL(p || p) std = %g", sum);
    be->i->kl_fwd(be, VD_BASE_LOGSTD, (float)LN2, &m.t, &lg.t, &m.t, &lg.t, &sum, NULL);
    CHECKF(fabsf(sum) < 1e-6f, "KL(p || p) logstd = %g", sum);

    /* N(1, 2^2) against N(0, 1): 0.5 (1 + 4) - 0.5 - log 2 per element */
    const double want = 2 - log(2.0);
    tbuf pm = tb_new(1, 1, 2, 2, 0), ps = tb_new(1, 1, 2, 2, 1), qm = tb_new(1, 1, 2, 2, 0),
         qs = tb_new(1, 1, 2, 2, 3);
    tb_set(&pm, (float[]){1, 1, 1, 1});
    tb_set(&ps, (float[]){2, 2, 2, 2});
    tb_set(&qm, (float[]){0, 0, 0, 0});
    tb_set(&qs, (float[]){1, 1, 1, 1});
    be->i->kl_fwd(be, VD_BASE_STD, (float)LN2, &pm.t, &ps.t, &qm.t, &qs.t, &sum, per);
    CHECKF(NEAR(sum, 4 * want, 1e-6), "KL std = %g, want %g", sum, 4 * want);
    CHECK(NEAR(per[0], 2 * want, 1e-6) && NEAR(per[1], 2 * want, 1e-6));
    /* logstd with beta = ln 2: logstd 1 is std 2, logstd 0 is std 1 */
    tb_set(&ps, (float[]){1, 1, 1, 1});
    tb_set(&qs, (float[]){0, 0, 0, 0});
    be->i->kl_fwd(be, VD_BASE_LOGSTD, (float)LN2, &pm.t, &ps.t, &qm.t, &qs.t, &sum, NULL);
    CHECKF(NEAR(sum, 4 * want, 1e-6), "KL logstd = %g, want %g", sum, 4 * want);
    expect_ok("kl");
    tbuf *all[] = {&m, &s, &lg, &pm, &ps, &qm, &qs};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_free(all[i]);
}

/* ---- DMoL ---- */

static double dmol_nll(const vd_dmol *d, const float *logits, const float *x, int nch) {
    tbuf l = tb_new(1, 1, 1, nch, 2), t = tb_new(1, 1, 1, d->channels, 1);
    tb_set(&l, logits);
    tb_set(&t, x);
    float nll = NAN;
    be->i->dmol_fwd(be, d, &l.t, &t.t, &nll);
    tb_free(&l);
    tb_free(&t);
    return nll;
}

/* log p of one colour under one logistic (mean mu, scale s), straight from docs/model.md section 4.5. */
static double logistic_logp(double x, double mu, double s, double k, double lo, double hi) {
    double plus = (x - mu + 1 / k) / s, minus = (x - mu - 1 / k) / s, mid = (x - mu) / s;
    if (x == lo) return log(sigmoid(plus));
    if (x == hi) return log(1 - sigmoid(minus));
    double delta = sigmoid(plus) - sigmoid(minus);
    if (delta > 1e-5) return log(delta);
    return mid - log(s) - 2 * log1p(exp(mid)) - log(k / 2);
}

static void test_dmol_single(void) {
    vd_dmol d = {1, 1, 8, VD_BASE_STD, (float)LN2, -7.0f};
    double s = softplus(-1.5, LN2);
    /* channels: logit, mean, raw scale, (unused) coefficient */
    float l[4] = {0.3f, 0.1f, -1.5f, 5.0f};
    float xs[4] = {0.2f, -1.0f, 1.0f, 0.9f};
    for (int i = 0; i < 3; i++) {
        double want = -logistic_logp(xs[i], 0.1, s, 255, -1, 1);
        CHECKF(NEAR(dmol_nll(&d, l, &xs[i], 4), want, 1e-6), "dmol single x=%g: %g vs %g", xs[i],
               dmol_nll(&d, l, &xs[i], 4), want);
    }
    float far[4] = {0, -0.9f, -4.0f, 0}; /* x = 0.9 far in the tail: the pdf-mid branch */
    double sf = softplus(-4, LN2), mid = (0.9f - -0.9f) / sf;
    double want_mid = -(mid - log(sf) - 2 * log1p(exp(mid)) - log(127.5));
    CHECKF(sigmoid(mid + 1 / (255 * sf)) - sigmoid(mid - 1 / (255 * sf)) <= 1e-5, "not mid");
    CHECKF(NEAR(dmol_nll(&d, far, &xs[3], 4), want_mid, 1e-6), "dmol mid branch %g vs %g",
           dmol_nll(&d, far, &xs[3], 4), want_mid);

    /* 5 bits: the highest value is (248 - 127.5) / 127.5, K = 31 */
    d.num_bits = 5;
    float hi = (float)((248 - 127.5) / 127.5), mid5 = (float)((128 - 127.5) / 127.5);
    CHECK(NEAR(dmol_nll(&d, l, &hi, 4), -log(1 - sigmoid((hi - 0.1f - 1 / 31.0) / s)), 1e-6));
    CHECK(NEAR(dmol_nll(&d, l, &mid5, 4), -logistic_logp(mid5, 0.1f, s, 31, -1, hi), 1e-6));
    /* logstd base: scale = exp(beta max(raw, min)); min_logscale = -1 clamps raw -1.5 */
    d = (vd_dmol){1, 1, 8, VD_BASE_LOGSTD, 2.0f, -1.0f};
    CHECK(
        NEAR(dmol_nll(&d, l, &xs[0], 4), -logistic_logp(0.2f, 0.1f, exp(-2.0), 255, -1, 1), 1e-6));
    expect_ok("dmol single");
}

/* Three colours, two mixtures: autoregressive means and the mixture log-sum-exp. */
static void test_dmol_rgb(void) {
    vd_dmol d = {2, 3, 8, VD_BASE_STD, 1.0f, -7.0f};
    float l[20];
    for (int i = 0; i < 20; i++)
        l[i] = (float)urange(-1, 1);
    float x[3] = {(float)((100 - 127.5) / 127.5), -1.0f, (float)((180 - 127.5) / 127.5)};
    double lp[2];
    for (int m = 0; m < 2; m++) {
        double mu[3], s[3], c[3];
        for (int ch = 0; ch < 3; ch++) {
            mu[ch] = l[2 + ch * 6 + m];
            s[ch] = fmax(softplus(l[2 + ch * 6 + 2 + m], 1), exp(-7.0));
            c[ch] = tanh(l[2 + ch * 6 + 4 + m]);
        }
        mu[1] += c[0] * x[0];
        mu[2] += c[1] * x[0] + c[2] * x[1];
        double lse = log(exp(l[0]) + exp(l[1]));
        lp[m] = l[m] - lse;
        for (int ch = 0; ch < 3; ch++)
            lp[m] += logistic_logp(x[ch], mu[ch], s[ch], 255, -1, 1);
    }
    double want = -log(exp(lp[0]) + exp(lp[1]));
    double got = dmol_nll(&d, l, x, 20);
    CHECKF(NEAR(got, want, 1e-6), "dmol rgb nll %g vs %g", got, want);
    expect_ok("dmol rgb");
}

static void test_dmol_sample(void) {
    vd_dmol d = {2, 3, 8, VD_BASE_STD, 1.0f, -7.0f};
    int n = 2, h = 3, w = 4, nch = 20, pixels = n * h * w;
    tbuf l = tb_new(n, h, w, nch, 1), out = tb_new(n, h, w, 3, 2), out2 = tb_new(n, h, w, 3, 0);
    tb_rand(&l, -1, 1);
    for (int64_t p = 0; p < pixels; p++) /* extreme means: samples must clamp */
        for (int m = 0; m < 2; m++)
            l.t.data[p * l.t.ld + 2 + (p % 3) * 6 + m] = p % 2 ? 5.0f : -5.0f;
    vd_noise philox = {NULL, 99, vd_rng_stream(0, VD_SITE_MODEL_FIRST + 1)};
    be->i->dmol_sample(be, &d, 1.0f, &l.t, &philox, &out.t);
    be->i->dmol_sample(be, &d, 1.0f, &l.t, &philox, &out2.t);
    bool same = true, inside = true, lo_hit = false, hi_hit = false;
    for (int64_t i = 0; i < numel(&out); i++) {
        float v = *el(&out, i);
        same = same && v == *el(&out2, i);
        inside = inside && v >= -1.0f && v <= 1.0f;
        lo_hit = lo_hit || v == -1.0f;
        hi_hit = hi_hit || v == 1.0f;
    }
    CHECKF(same, "dmol_sample is not deterministic for a fixed seed and stream");
    CHECKF(inside && lo_hit && hi_hit, "dmol samples outside [-1, 1] or never clamped");
    CHECK(pad_intact(&out));

    /* given uniforms: first n*h*w*M gumbel draws, then n*h*w*C logistic draws */
    float *u = malloc((size_t)pixels * 5 * sizeof(float));
    for (int i = 0; i < pixels * 5; i++)
        u[i] = (float)urange(0.01, 0.99);
    u[0] = 0.999f; /* pixel 0 picks mixture 0 decisively */
    u[1] = 0.001f;
    vd_noise given = {u, 0, 0};
    float t = 0.7f;
    be->i->dmol_sample(be, &d, t, &l.t, &given, &out.t);
    const float *l0 = l.t.data;
    double xs[3];
    for (int ch = 0; ch < 3; ch++) {
        double uu = 1e-5f + (1.0f - 2e-5f) * u[pixels * 2 + ch];
        double s = fmax(softplus(l0[2 + ch * 6 + 2], 1), exp(-7.0));
        double v = l0[2 + ch * 6] + s * t * (log(uu) - log(1 - uu));
        if (ch == 1) v += tanh(l0[2 + 4]) * xs[0];
        if (ch == 2) v += tanh(l0[2 + 6 + 4]) * xs[0] + tanh(l0[2 + 12 + 4]) * xs[1];
        xs[ch] = fmin(fmax(v, -1), 1);
        CHECKF(NEAR(*el(&out, ch), xs[ch], 1e-5), "dmol sample colour %d: %g vs %g", ch,
               *el(&out, ch), xs[ch]);
    }
    /* bits = 5 clamps to its own highest value */
    d.num_bits = 5;
    be->i->dmol_sample(be, &d, 1.0f, &l.t, &philox, &out.t);
    float hi = (float)((248 - 127.5) / 127.5);
    hi_hit = false;
    for (int64_t i = 0; i < numel(&out); i++) {
        CHECK(*el(&out, i) <= hi && *el(&out, i) >= -1.0f);
        hi_hit = hi_hit || *el(&out, i) == hi;
    }
    CHECK(hi_hit);
    expect_ok("dmol sample");
    free(u);
    tb_free(&l);
    tb_free(&out);
    tb_free(&out2);
}

/* Gumbel-max on logits / T: at T = 0.05 logits (0, 1) become (0, 20), beyond the widest
 * Gumbel gap uniforms in (1e-5, 1 - 1e-5) can make, so mixture 1 always wins. */
static void test_dmol_temperature(void) {
    vd_dmol d = {2, 1, 8, VD_BASE_STD, 1.0f, -7.0f};
    tbuf l = tb_new(4, 4, 4, 8, 0), out = tb_new(4, 4, 4, 1, 1);
    for (int64_t p = 0; p < 64; p++) {
        float *v = l.t.data + p * 8; /* logits, means, raw scales, coefficients */
        float px[8] = {0, 1, -0.5f, 0.5f, -30, -30, 0, 0};
        memcpy(v, px, sizeof px);
    }
    vd_noise philox = {NULL, 5, 6};
    be->i->dmol_sample(be, &d, 0.05f, &l.t, &philox, &out.t);
    bool all_second = true;
    for (int64_t i = 0; i < 64; i++)
        all_second = all_second && fabsf(*el(&out, i) - 0.5f) < 0.05f;
    CHECKF(all_second, "dmol_sample at T = 0.05 did not always pick the larger logit");
    expect_ok("dmol temperature");
    tb_free(&l);
    tb_free(&out);
}

/* ---- Bernoulli, sum of squares ---- */

static void test_bernoulli(void) {
    tbuf l = tb_new(1, 4, 4, 1, 1), x = tb_new(1, 4, 4, 1, 0);
    for (int64_t i = 0; i < 16; i++) {
        *el(&l, i) = 1000.0f; /* outside the crop: must not count */
        *el(&x, i) = 0.0f;
    }
    float inner[4] = {0.5f, -1.0f, 2.0f, -3.0f}, tgt[4] = {1, 0, 0, 1};
    double want = 0;
    for (int i = 0; i < 4; i++) {
        *at(&l, 0, 1 + i / 2, 1 + i % 2, 0) = inner[i];
        *at(&x, 0, 1 + i / 2, 1 + i % 2, 0) = tgt[i];
        want += log1p(exp(inner[i])) - tgt[i] * inner[i];
    }
    float nll = NAN;
    be->i->bernoulli_fwd(be, 1, &l.t, &x.t, &nll);
    CHECKF(NEAR(nll, want, 1e-6), "bernoulli nll %g vs %g", nll, want);

    tbuf out = tb_new(1, 2, 2, 1, 1);
    for (int i = 0; i < 4; i++)
        *at(&l, 0, 1 + i / 2, 1 + i % 2, 0) = i % 2 ? -50.0f : 50.0f;
    vd_noise philox = {NULL, 7, 3};
    be->i->bernoulli_sample(be, &l.t, &philox, &out.t);
    CHECK(*el(&out, 0) == 1 && *el(&out, 1) == 0 && *el(&out, 2) == 1 && *el(&out, 3) == 0);
    float u[4] = {0.1f, 0.9f, 0.6f, 0.4f};
    *at(&l, 0, 1, 1, 0) = 0.0f; /* p = 0.5 */
    *at(&l, 0, 1, 2, 0) = 0.0f;
    *at(&l, 0, 2, 1, 0) = 0.0f;
    *at(&l, 0, 2, 2, 0) = 0.0f;
    be->i->bernoulli_sample(be, &l.t, &(vd_noise){u, 0, 0}, &out.t);
    CHECK(*el(&out, 0) == 1 && *el(&out, 1) == 0 && *el(&out, 2) == 0 && *el(&out, 3) == 1);
    CHECK(pad_intact(&out));
    expect_ok("bernoulli");
    tb_free(&l);
    tb_free(&x);
    tb_free(&out);
}

static void test_sum_squares(void) {
    float v[3] = {1, 2, 3}, out = NAN;
    be->i->sum_squares(be, v, 3, &out);
    CHECK(out == 14.0f);
    be->i->sum_squares(be, v, 0, &out);
    CHECK(out == 0.0f);
    expect_ok("sum_squares");
}

/* A bad call records VD_ERR_INVALID naming the op; the first failure sticks. */
static void test_errors(void) {
    vd_backend *b2;
    vd_err err = {0};
    CHECK(vd_backend_create_cpu_ref(&b2, &err) == VD_OK);
    tbuf a = tb_new(1, 2, 2, 3, 0), c = tb_new(1, 2, 2, 4, 0);
    b2->i->add(b2, &a.t, &c.t, &a.t);
    b2->i->conv_fwd(b2, &(vd_conv_desc){3, 3, 3, 3, 1, 1, 1, 1, 1, VD_CONV_PRE_NONE, 0}, &a.t, a.t.data, NULL, &c.t);
    CHECK(vd_backend_check(b2, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "add") != NULL, "message: %s", err.msg);
    vd_backend_destroy(b2);
    tb_free(&a);
    tb_free(&c);
}

int main(void) {
    vd_err err = {0};
    if (vd_backend_create_cpu_ref(&be, &err) != VD_OK) {
        fprintf(stderr, "cpu_ref: %s\n", err.msg);
        return 1;
    }
    CHECK(strcmp(be->i->name, "cpu_ref") == 0);
    test_conv_1x1_is_matmul();
    test_conv_hand();
    test_conv_adjoint();
    test_activations();
    test_fill_copy_add_axpy();
    test_upsample_and_broadcast();
    test_latent_stats();
    test_latent_sample();
    test_kl();
    test_dmol_single();
    test_dmol_rgb();
    test_dmol_sample();
    test_dmol_temperature();
    test_bernoulli();
    test_sum_squares();
    test_errors();
    vd_backend_destroy(be);
    return vd_test_result("test_cpu_ref_ops");
}
