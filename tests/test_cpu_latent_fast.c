/* The fast cpu backend's float latent math: cpu_softplus.h's softplus_beta and slope, and
 * cpu_math.h's exp, log1p and double log under them, swept against double references with
 * explicit ulp bounds (edge values, torch's beta x > 20 threshold to the last float, the
 * subnormals, NaN and infinities); then the latent statistics and KL ops of `cpu` against
 * `cpu_ref` on large tensors whose raw scales span [-30, 30] plus those edge values, by
 * test_backend_ops's measure and bound, per element in ulp, and at 1 and 2 threads. The
 * sweeps run the functions through CPU_SIMD_CLONES loops, as the ops do, so they measure the
 * code this machine runs (FMA contraction included). Skips (77) without oneDNN (fails with
 * VD_REQUIRE_ALL=1). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_softplus.h"
#include "backend/latent_math.h"
#include "vd_test.h"

#define TOL_ELEM 1e-5   /* test_backend_ops's bound for elementwise ops */
#define ULP_SOFTPLUS 3.0
#define ULP_SLOPE 3.0
#define ULP_EXP 1.5
#define ULP_LOG1P 1.5
#define ULP_LOG 1.0     /* cpu_log_normal, in double ulp */
#define ULP_OP 4.0      /* p and draw per element: the softplus bound and up to two roundings */
#define LN2 0.6931471805599453

static const float betas[] = {(float)LN2, 1.0f, 0.25f, 3.0f};
#define NBETA ((int)(sizeof betas / sizeof *betas))

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urange(double lo, double hi) {
    return lo + (hi - lo) * ((double)(next_u64() >> 11) * 0x1.0p-53);
}

/* |got - want| in ulps of the float nearest want (2^-149 at the subnormals); NaN must meet
 * NaN and an infinity itself. */
static double ulp_err(float got, double want) {
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got) ? 0 : INFINITY;
    float w = (float)want;
    if (isinf(w) || isinf(got)) return got == w ? 0 : INFINITY;
    int e;
    frexpf(fabsf(w), &e);
    double ulp = w == 0 || e - 24 < -149 ? 0x1p-149 : ldexp(1.0, e - 24);
    return fabs((double)got - want) / ulp;
}

/* ---- the functions alone, through vectorised loops like the ops' ---- */

CPU_SIMD_CLONES static void softplus_run(cpu_softplus sp, const float *x, float *v, float *s,
                                         int n) {
    for (int i = 0; i < n; i++)
        cpu_softplus_eval(sp, x[i], &v[i], &s[i]);
}
CPU_SIMD_CLONES static void exp_run(const float *a, const float *lo, float *e, int n) {
    for (int i = 0; i < n; i++)
        e[i] = cpu_exp_neg_pair(a[i], lo[i]);
}
CPU_SIMD_CLONES static void log1p_run(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = cpu_log1p_unit(x[i]);
}
CPU_SIMD_CLONES static void log_run(const double *x, double *y, int n) {
    for (int i = 0; i < n; i++)
        y[i] = cpu_log_normal(x[i]);
}

typedef struct sweep {
    float *x;
    int n, cap;
} sweep;

static void push(sweep *s, float x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1 << 16;
        s->x = realloc(s->x, (size_t)s->cap * sizeof(float));
    }
    s->x[s->n++] = x;
}
static void push_bits(sweep *s, uint32_t u) {
    push(s, vd_u2f(u));
}
/* count floats from x up, or down when count < 0 */
static void push_run(sweep *s, float x, int count) {
    for (int i = 0; i < abs(count); i++, x = nextafterf(x, count < 0 ? -INFINITY : INFINITY))
        push(s, x);
}

/* The inputs for one beta: every 4099th bit pattern of both signs (all binades, the
 * subnormals, the infinities and NaNs), dense runs at the threshold, at 0, where e^-beta|x|
 * turns subnormal and where it reaches 0, and random values in the range the model sees. */
static sweep softplus_inputs(const cpu_softplus *sp) {
    sweep s = {0};
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099)
        push_bits(&s, (uint32_t)u);
    const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x80000001u,
                                0x007FFFFFu, 0x807FFFFFu, 0x00800000u, 0x80800000u,
                                0x7F7FFFFFu, 0xFF7FFFFFu, 0x7F800000u, 0xFF800000u,
                                0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        push_bits(&s, special[i]);
    float from = vd_u2f((uint32_t)sp->linear_from);
    push_run(&s, from, 2000);
    push_run(&s, nextafterf(from, 0), -2000);
    push_run(&s, 0.0f, 2000);
    push_run(&s, -0.0f, -2000);
    push_run(&s, -87.0f / sp->beta, 2000);
    push_run(&s, -87.0f / sp->beta, -2000);
    push_run(&s, -103.97f / sp->beta, 2000);
    push_run(&s, -103.97f / sp->beta, -2000);
    for (int i = 0; i < 200000; i++)
        push(&s, (float)urange(-40.0 / sp->beta, 30.0 / sp->beta));
    return s;
}

static void test_softplus(void) {
    for (int b = 0; b < NBETA; b++) {
        cpu_softplus sp;
        CHECK(cpu_softplus_init(&sp, betas[b]));
        float from = vd_u2f((uint32_t)sp.linear_from);
        CHECKF((double)betas[b] * from > 20.0 &&
                   !((double)betas[b] * nextafterf(from, 0) > 20.0),
               "beta %g: threshold %a is not the least float with beta x > 20", betas[b], from);
        sweep s = softplus_inputs(&sp);
        float *v = malloc((size_t)s.n * sizeof(float)), *sl = malloc((size_t)s.n * sizeof(float));
        softplus_run(sp, s.x, v, sl, s.n);
        double worst_v = 0, worst_s = 0;
        float at_v = 0, at_s = 0;
        int64_t linear_bad = 0;
        for (int i = 0; i < s.n; i++) {
            float x = s.x[i];
            double ev = ulp_err(v[i], latent_softplus(x, betas[b]));
            double es = ulp_err(sl[i], latent_softplus_grad(x, betas[b]));
            if (ev > worst_v) worst_v = ev, at_v = x;
            if (es > worst_s) worst_s = es, at_s = x;
            if ((double)betas[b] * x > 20.0)
                linear_bad += memcmp(&v[i], &x, sizeof x) != 0 || sl[i] != 1.0f;
        }
        fprintf(stderr, "beta %.7g: %d inputs, softplus %.3f ulp (at %a), slope %.3f ulp (at %a)\n",
                betas[b], s.n, worst_v, at_v, worst_s, at_s);
        CHECKF(worst_v <= ULP_SOFTPLUS, "beta %g: softplus %.3f ulp at x = %a", betas[b], worst_v,
               at_v);
        CHECKF(worst_s <= ULP_SLOPE, "beta %g: slope %.3f ulp at x = %a", betas[b], worst_s, at_s);
        CHECKF(linear_bad == 0, "beta %g: %lld values past the threshold are not x and 1",
               betas[b], (long long)linear_bad);
        free(v), free(sl), free(s.x);
    }
    cpu_softplus sp;
    CHECK(!cpu_softplus_init(&sp, 0.0f) && !cpu_softplus_init(&sp, -1.0f) &&
          !cpu_softplus_init(&sp, INFINITY) && !cpu_softplus_init(&sp, NAN));
}

/* e^-(a + lo) for a over [0, 110] at every 509th float and lo up to 2^-21 a, vs exp in double */
static void test_exp(void) {
    int n = 0, cap = 0x42DC0000 / 509 + 2;
    float *a = malloc((size_t)cap * sizeof(float)), *lo = malloc((size_t)cap * sizeof(float));
    float *e = malloc((size_t)cap * sizeof(float));
    for (uint32_t u = 0; u <= 0x42DC0000u; u += 509, n++) {
        a[n] = vd_u2f(u);
        lo[n] = n % 3 ? (float)(a[n] * urange(-0x1p-21, 0x1p-21)) : 0.0f;
    }
    exp_run(a, lo, e, n);
    double worst = 0;
    float at = 0;
    for (int i = 0; i < n; i++) {
        double err = ulp_err(e[i], exp(-((double)a[i] + lo[i])));
        if (err > worst) worst = err, at = a[i];
    }
    fprintf(stderr, "exp_neg_pair: %d inputs, %.3f ulp (at %a)\n", n, worst, at);
    CHECKF(worst <= ULP_EXP, "exp_neg_pair %.3f ulp at %a", worst, at);
    float big[3] = {INFINITY, FLT_MAX, 200.0f}, zero[3] = {0, 0, 0}, out[3];
    exp_run(big, zero, out, 3);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 0);
    free(a), free(lo), free(e);
}

/* log1p over [0, 1] at every 331st float, vs log1p in double */
static void test_log1p(void) {
    int n = 0, cap = 0x3F800000 / 331 + 2;
    float *x = malloc((size_t)cap * sizeof(float)), *y = malloc((size_t)cap * sizeof(float));
    for (uint32_t u = 0; u <= 0x3F800000u; u += 331)
        x[n++] = vd_u2f(u);
    x[n++] = 1.0f;
    log1p_run(x, y, n);
    double worst = 0;
    float at = 0;
    for (int i = 0; i < n; i++) {
        double err = ulp_err(y[i], log1p((double)x[i]));
        if (err > worst) worst = err, at = x[i];
    }
    fprintf(stderr, "log1p_unit: %d inputs, %.3f ulp (at %a)\n", n, worst, at);
    CHECKF(worst <= ULP_LOG1P, "log1p_unit %.3f ulp at %a", worst, at);
    free(x), free(y);
}

/* cpu_log_normal vs logl on random bit patterns, near 1 and on (0, 4); what it does not
 * serve, cpu_log_served says. */
static void test_log(void) {
    enum { N = 3000000 };
    double *x = malloc(N * sizeof(double)), *y = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++) {
        uint64_t u = next_u64();
        x[i] = i % 3 == 0   ? vd_u2d(u >> 1)
               : i % 3 == 1 ? 1.0 + urange(-1e-3, 1e-3) * (i % 11)
                            : urange(0, 4);
        if (!cpu_log_served(x[i])) x[i] = 1.0;
    }
    log_run(x, y, N);
    double worst = 0, at = 0;
    for (int i = 0; i < N; i++) {
        long double want = logl(x[i]);
        double ulp = want == 0 ? 0x1p-1074 : fabs(nextafter((double)want, INFINITY) - (double)want);
        double err = (double)(fabsl((long double)y[i] - want) / ulp);
        if (err > worst) worst = err, at = x[i];
    }
    fprintf(stderr, "log_normal: %d inputs, %.3f ulp (at %a)\n", N, worst, at);
    CHECKF(worst <= ULP_LOG, "log_normal %.3f ulp at %a", worst, at);
    CHECK(!cpu_log_served(0.0) && !cpu_log_served(-1.0) && !cpu_log_served(0x1p-1030) &&
          !cpu_log_served(INFINITY) && !cpu_log_served(NAN) && cpu_log_served(DBL_MIN) &&
          cpu_log_served(DBL_MAX));
    free(x), free(y);
}

/* ---- the ops, cpu against cpu_ref ---- */

typedef struct buf {
    float *mem;
    vd_tensor t;
} buf;

static buf buf_new(int n, int h, int w, int c, int pad) {
    size_t len = (size_t)n * h * w * (c + pad);
    buf b = {malloc(len * sizeof(float)), {0}};
    for (size_t i = 0; i < len; i++)
        b.mem[i] = -777.0f;
    b.t = (vd_tensor){b.mem, n, h, w, c, c + pad};
    return b;
}
static float *el(const buf *b, int64_t i) {
    return b->t.data + (i / b->t.c) * b->t.ld + i % b->t.c;
}
static int64_t numel(const buf *b) {
    return vd_tensor_numel(&b->t);
}
static buf buf_rand(int n, int h, int w, int c, int pad, double lo, double hi) {
    buf b = buf_new(n, h, w, c, pad);
    for (int64_t i = 0; i < numel(&b); i++)
        *el(&b, i) = (float)urange(lo, hi);
    return b;
}
static buf buf_clone(const buf *b) {
    size_t len = (size_t)cpu_pixels(&b->t) * b->t.ld;
    buf c = {malloc(len * sizeof(float)), b->t};
    memcpy(c.mem, b->mem, len * sizeof(float));
    c.t.data = c.mem;
    return c;
}

/* test_backend_ops's measure: max |a - b| / max |b|, NaN only against NaN */
static double max_rel(const buf *got, const buf *want) {
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < numel(want); i++) {
        double a = *el(got, i), b = *el(want, i);
        diff = fmax(diff, isnan(a) != isnan(b) ? INFINITY : isnan(a) || a == b ? 0 : fabs(a - b));
        scale = fmax(scale, isinf(b) ? 0 : fabs(b));
    }
    return diff / scale;
}
static double max_ulp(const buf *got, const buf *want) {
    double worst = 0;
    for (int64_t i = 0; i < numel(want); i++)
        worst = fmax(worst, ulp_err(*el(got, i), *el(want, i)));
    return worst;
}
static bool same_bits(const buf *a, const buf *b) {
    for (int64_t i = 0; i < numel(a); i++)
        if (memcmp(el(a, i), el(b, i), sizeof(float))) return false;
    return true;
}

static vd_backend *ref, *fast, *fast1;

static void expect_close(const char *what, const buf *got, const buf *want, double ulps) {
    double rel = max_rel(got, want);
    CHECKF(rel <= TOL_ELEM, "%s: max relative error %.3g > %.3g", what, rel, TOL_ELEM);
    if (ulps > 0) {
        double u = max_ulp(got, want);
        fprintf(stderr, "%s: relative %.3g, %.3f ulp\n", what, rel, u);
        CHECKF(u <= ulps, "%s: %.3f ulp > %.1f", what, u, ulps);
    }
    vd_err err = {0};
    CHECKF(vd_backend_check(ref, &err) == VD_OK, "%s: cpu_ref: %s", what, err.msg);
    CHECKF(vd_backend_check(fast, &err) == VD_OK, "%s: cpu: %s", what, err.msg);
    CHECKF(vd_backend_check(fast1, &err) == VD_OK, "%s: cpu, 1 thread: %s", what, err.msg);
}

#define N 8
#define H 32
#define W 32

/* raw scales uniform in [-30, 30], with every 97th element an edge value */
static buf raw_new(int v, int pad) {
    static const float edges[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-30f, -1e-30f,
                                  0x1p-140f, 40.0f, -40.0f, 150.0f, -150.0f, 28.8539f,
                                  28.853901f, 20.0f, 1e30f, -1e30f};
    buf b = buf_rand(N, H, W, 2 * v, pad, -30, 30);
    for (int64_t i = 0; i < numel(&b); i += 97)
        *el(&b, i) = edges[(i / 97) % (sizeof edges / sizeof *edges)];
    return b;
}

typedef struct stats_case {
    int base;
    float beta;
    bool residual;
    int v, pad;
} stats_case;

static void stats_case_run(const stats_case *k) {
    int v = k->v;
    bool std = k->base == VD_BASE_STD;
    buf raw = raw_new(v, k->pad);
    buf pm = buf_rand(N, H, W, v, k->pad, -1, 1);
    buf pp = buf_rand(N, H, W, v, 0, std ? 0.05 : -2, std ? 2 : 1);
    const vd_tensor *prm = k->residual ? &pm.t : NULL, *prp = k->residual ? &pp.t : NULL;
    buf m0 = buf_new(N, H, W, v, 1), m1 = buf_clone(&m0), m2 = buf_clone(&m0);
    buf p0 = buf_new(N, H, W, v, k->pad), p1 = buf_clone(&p0), p2 = buf_clone(&p0);
    ref->i->latent_stats_fwd(ref, k->base, k->beta, &raw.t, prm, prp, &m0.t, &p0.t);
    fast->i->latent_stats_fwd(fast, k->base, k->beta, &raw.t, prm, prp, &m1.t, &p1.t);
    fast1->i->latent_stats_fwd(fast1, k->base, k->beta, &raw.t, prm, prp, &m2.t, &p2.t);
    expect_close("stats_fwd mean", &m1, &m0, 0.5);
    expect_close("stats_fwd p", &p1, &p0, ULP_OP);
    CHECKF(same_bits(&m1, &m2) && same_bits(&p1, &p2), "stats_fwd differs at 1 and 2 threads");

    buf dm = buf_rand(N, H, W, v, 0, -1, 1), dp = buf_rand(N, H, W, v, 3, -1, 1);
    buf dr0 = buf_new(N, H, W, 2 * v, k->pad), dr1 = buf_clone(&dr0), dr2 = buf_clone(&dr0);
    buf dpm0 = buf_rand(N, H, W, v, 0, -1, 1), dpm1 = buf_clone(&dpm0), dpm2 = buf_clone(&dpm0);
    buf dpp0 = buf_rand(N, H, W, v, 2, -1, 1), dpp1 = buf_clone(&dpp0), dpp2 = buf_clone(&dpp0);
    const vd_tensor *g0[2] = {k->residual ? &dpm0.t : NULL, k->residual ? &dpp0.t : NULL};
    const vd_tensor *g1[2] = {k->residual ? &dpm1.t : NULL, k->residual ? &dpp1.t : NULL};
    const vd_tensor *g2[2] = {k->residual ? &dpm2.t : NULL, k->residual ? &dpp2.t : NULL};
    ref->i->latent_stats_bwd(ref, k->base, k->beta, &raw.t, prm, prp, &dm.t, &dp.t, &dr0.t,
                             g0[0], g0[1]);
    fast->i->latent_stats_bwd(fast, k->base, k->beta, &raw.t, prm, prp, &dm.t, &dp.t, &dr1.t,
                              g1[0], g1[1]);
    fast1->i->latent_stats_bwd(fast1, k->base, k->beta, &raw.t, prm, prp, &dm.t, &dp.t, &dr2.t,
                               g2[0], g2[1]);
    expect_close("stats_bwd draw", &dr1, &dr0, ULP_OP);
    expect_close("stats_bwd dprior_mean", &dpm1, &dpm0, 0);
    expect_close("stats_bwd dprior_p", &dpp1, &dpp0, 0);
    CHECKF(same_bits(&dr1, &dr2) && same_bits(&dpm1, &dpm2) && same_bits(&dpp1, &dpp2),
           "stats_bwd differs at 1 and 2 threads");
    buf *all[] = {&raw, &pm,  &pp, &m0,  &m1,  &m2,   &p0,   &p1,   &p2,   &dm,   &dp,
                  &dr0, &dr1, &dr2, &dpm0, &dpm1, &dpm2, &dpp0, &dpp1, &dpp2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]->mem);
}

/* KL on large tensors, then a std of 0 in one pixel: its ratio takes the libm path and both
 * backends give inf for the sum and that element's gradients alike. */
static void kl_case_run(int base, float beta, bool zero_std) {
    bool std = base == VD_BASE_STD;
    buf qm = buf_rand(N, H, W, 32, 0, -2, 2), qp = buf_rand(N, H, W, 32, 5, std ? 0.05 : -2, 2);
    buf pm = buf_rand(N, H, W, 32, 3, -2, 2), pp = buf_rand(N, H, W, 32, 0, std ? 0.05 : -2, 2);
    if (zero_std) *el(&qp, 12345) = 0.0f;
    float s0 = 0, s1 = 0;
    buf pv0 = buf_rand(1, 1, 1, 32, 0, 0, 1), pv1 = buf_clone(&pv0);
    ref->i->kl_fwd(ref, base, beta, &qm.t, &qp.t, &pm.t, &pp.t, &s0, pv0.t.data);
    fast->i->kl_fwd(fast, base, beta, &qm.t, &qp.t, &pm.t, &pp.t, &s1, pv1.t.data);
    double rel = fabs((double)s1 - s0) / fabs((double)s0);
    CHECKF(zero_std ? s0 == s1 : rel <= 1e-6, "kl_fwd sum: cpu %.9g, cpu_ref %.9g", s1, s0);
    CHECKF(zero_std || max_rel(&pv1, &pv0) <= 1e-6, "kl_fwd per_variate: %.3g",
           max_rel(&pv1, &pv0));
    buf d0[4], d1[4];
    for (int i = 0; i < 4; i++) {
        d0[i] = buf_rand(N, H, W, 32, i, -1, 1);
        d1[i] = buf_clone(&d0[i]);
    }
    ref->i->kl_bwd(ref, base, beta, 0.37f, &qm.t, &qp.t, &pm.t, &pp.t, &d0[0].t, &d0[1].t,
                   &d0[2].t, &d0[3].t);
    fast->i->kl_bwd(fast, base, beta, 0.37f, &qm.t, &qp.t, &pm.t, &pp.t, &d1[0].t, &d1[1].t,
                    &d1[2].t, &d1[3].t);
    for (int i = 0; i < 4; i++) {
        expect_close("kl_bwd", &d1[i], &d0[i], 0);
        free(d0[i].mem), free(d1[i].mem);
    }
    buf *all[] = {&qm, &qp, &pm, &pp, &pv0, &pv1};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]->mem);
}

static void test_ops(void) {
    static const stats_case cases[] = {
        {VD_BASE_STD, (float)LN2, false, 32, 0}, {VD_BASE_STD, (float)LN2, true, 32, 32},
        {VD_BASE_STD, 1.0f, true, 20, 3},        {VD_BASE_STD, 0.0f, true, 5, 0},
        {VD_BASE_LOGSTD, (float)LN2, true, 32, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        stats_case_run(&cases[i]);
    kl_case_run(VD_BASE_STD, (float)LN2, false);
    kl_case_run(VD_BASE_STD, (float)LN2, true);
    kl_case_run(VD_BASE_LOGSTD, (float)LN2, false);
}

int main(void) {
    test_softplus();
    test_exp();
    test_log1p();
    test_log();
    vd_err err = {0};
    vd_status st = vd_backend_create_cpu(&fast, 2, &err);
    if (st == VD_ERR_UNSUPPORTED) /* the scalar checks above ran; the cpu backend's cannot */
        return vd_test_failures ? vd_test_result("test_cpu_latent_fast") : vd_test_skip(VD_TEST_ONEDNN);
    CHECKF(st == VD_OK, "creating cpu: %s", err.msg);
    CHECKF(vd_backend_create_cpu(&fast1, 1, &err) == VD_OK, "creating cpu: %s", err.msg);
    CHECKF(vd_backend_create_cpu_ref(&ref, &err) == VD_OK, "creating cpu_ref: %s", err.msg);
    if (st == VD_OK && fast1 && ref) test_ops();
    if (fast) vd_backend_destroy(fast);
    if (fast1) vd_backend_destroy(fast1);
    if (ref) vd_backend_destroy(ref);
    return vd_test_result("test_cpu_latent_fast");
}
