/* FID and Inception Score arithmetic (src/fid/fid_stats.c, frechet.c) on known answers: the
 * running statistics against a two-pass sum, statistics files, the distance of a set to itself,
 * closed forms (commuting covariances, any 2 x 2 pair, singular ones), an independent Jacobi
 * evaluation of tr(sqrtm(s1 s2)), and the Inception Score of uniform and of confident logits.
 * Modes (their own ctest entries): pytorch_fid compares the distance and the files with
 * pytorch-fid's; torch_fidelity compares the Inception Score with torch-fidelity's. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fid/fid_stats.h"
#include "vd_test.h"
#include "vdvae/io.h"

static char tmpdir[] = "/tmp/vd_fid_stats_XXXXXX";

static const char *tp(const char *name) { return vd_test_path(tmpdir, name); }

/* ---- deterministic random numbers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void) {
    return sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform());
}

/* n rows of d pool3-like features: ReLU of `rank` random directions plus an offset, so that
 * they are positive with means of the order of their spread (what the shift guards against). */
static float *features(int64_t n, int d, int rank, double offset) {
    float *x = malloc((size_t)n * (size_t)d * sizeof *x);
    double *w = malloc((size_t)rank * (size_t)d * sizeof *w), *z = malloc((size_t)rank * sizeof *z);
    if (!x || !w || !z) VD_SETUP_FAIL("out of memory");
    for (int64_t i = 0; i < (int64_t)rank * d; i++) w[i] = normal();
    for (int64_t i = 0; i < n; i++) {
        for (int r = 0; r < rank; r++) z[r] = normal();
        for (int k = 0; k < d; k++) {
            double v = offset;
            for (int r = 0; r < rank; r++) v += z[r] * w[(size_t)r * d + k];
            x[(size_t)i * d + k] = (float)(v > 0 ? v : 0.1 * v);
        }
    }
    free(w), free(z);
    return x;
}

static vd_fid_stats stats_of(const float *x, int64_t n, int d) {
    vd_fid_accum *a;
    vd_fid_stats s = {0};
    vd_err e;
    if (vd_fid_accum_open(&a, d, &e) || vd_fid_accum_add(a, x, n, &e) ||
        vd_fid_accum_finish(a, &s, &e))
        VD_SETUP_FAIL("statistics: %s", e.msg);
    vd_fid_accum_close(a);
    return s;
}

static vd_fid_stats stats_new(int d) {
    vd_fid_stats s = {.dims = d, .n = 2, .mu = calloc((size_t)d, sizeof(double)),
                      .sigma = calloc((size_t)d * d, sizeof(double))};
    if (!s.mu || !s.sigma) VD_SETUP_FAIL("out of memory");
    return s;
}

static double fid_of(const vd_fid_stats *a, const vd_fid_stats *b) {
    double f = NAN;
    vd_err e;
    vd_status st = vd_fid_distance(a, b, &f, &e);
    CHECKF(st == VD_OK, "%s", e.msg);
    return f;
}

static int close_rel(double got, double want, double tol) {
    return fabs(got - want) <= tol * fmax(fabs(want), 1e-300);
}

/* ---- running statistics ------------------------------------------------------------------- */

/* Against the two-pass mean and covariance in long double of the same float rows, added in
 * pieces that do not line up with the accumulator's blocks. */
static void test_accum_two_pass(void) {
    enum { N = 1000, D = 8 };
    float *x = features(N, D, 3, 1000.0);
    vd_fid_accum *a;
    vd_fid_stats s = {0}, whole;
    vd_err e;
    CHECK(vd_fid_accum_open(&a, D, &e) == VD_OK);
    int64_t pieces[] = {1, 300, 255, 444};
    for (int64_t p = 0, at = 0; p < 4; at += pieces[p++])
        CHECK(vd_fid_accum_add(a, x + at * D, pieces[p], &e) == VD_OK);
    CHECK(vd_fid_accum_finish(a, &s, &e) == VD_OK && s.n == N && s.dims == D);
    vd_fid_accum_close(a);
    whole = stats_of(x, N, D);
    long double mu[D] = {0}, worst_mu = 0, worst_cov = 0, scale = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < D; k++) mu[k] += x[i * D + k];
    for (int k = 0; k < D; k++) mu[k] /= N;
    for (int j = 0; j < D; j++)
        for (int k = 0; k < D; k++) {
            long double c = 0;
            for (int i = 0; i < N; i++) c += (x[i * D + j] - mu[j]) * (x[i * D + k] - mu[k]);
            c /= N - 1;
            scale = fmaxl(scale, fabsl(c));
            worst_cov = fmaxl(worst_cov, fabsl(s.sigma[j * D + k] - c));
            CHECK(s.sigma[j * D + k] == s.sigma[k * D + j] && s.sigma[j * D + k] == whole.sigma[j * D + k]);
        }
    for (int k = 0; k < D; k++) worst_mu = fmaxl(worst_mu, fabsl(s.mu[k] - mu[k]) / fabsl(mu[k]));
    CHECKF(worst_mu < 1e-14L, "mean off by %Lg (relative)", worst_mu);
    CHECKF(worst_cov < 1e-12L * scale, "covariance off by %Lg of %Lg", worst_cov, scale);
    vd_fid_stats_free(&s), vd_fid_stats_free(&whole);
    free(x);
}

static void test_accum_errors(void) {
    vd_fid_accum *a;
    vd_fid_stats s;
    vd_err e;
    float row[3] = {1, 2, 3}, bad[3] = {1, NAN, 3};
    CHECK_FAIL(vd_fid_accum_open(&a, 0, &e), VD_ERR_INVALID, e, "0 features");
    CHECK(vd_fid_accum_open(&a, 3, &e) == VD_OK);
    CHECK(vd_fid_accum_add(a, row, 1, &e) == VD_OK);
    CHECK_FAIL(vd_fid_accum_finish(a, &s, &e), VD_ERR_INVALID, e, "at least 2", "got 1");
    CHECK_FAIL(vd_fid_accum_add(a, bad, 1, &e), VD_ERR_INVALID, e, "feature 1 of row 1", "finite");
    vd_fid_accum_close(a);
}

/* ---- statistics files --------------------------------------------------------------------- */

static void write_npz(const char *path, const char *mu_dtype, int mu_ndim, const int64_t *mu_shape,
                      const void *mu, const char *sigma_dtype, const int64_t *sigma_shape,
                      const void *sigma) {
    vd_npz_writer *w;
    vd_err e;
    if (vd_npz_writer_open(&w, path, &e) || vd_npz_add(w, "mu", mu_dtype, mu_ndim, mu_shape, mu, &e) ||
        (sigma && vd_npz_add(w, "sigma", sigma_dtype, 2, sigma_shape, sigma, &e)) ||
        vd_npz_writer_close(w, &e))
        VD_SETUP_FAIL("%s: %s", path, e.msg);
}

static void test_files(void) {
    float *x = features(40, 16, 4, 0.5);
    vd_fid_stats s = stats_of(x, 40, 16), back;
    vd_err e;
    CHECK(vd_fid_stats_save(&s, tp("s.npz"), &e) == VD_OK);
    CHECK(vd_fid_stats_load(&back, tp("s.npz"), &e) == VD_OK && back.dims == 16);
    CHECK(back.mu && !memcmp(back.mu, s.mu, 16 * sizeof(double)));
    CHECK(back.sigma && !memcmp(back.sigma, s.sigma, 256 * sizeof(double)));
    vd_fid_stats_free(&back);
    /* float32 statistics are read too */
    float mu32[2] = {1, 2}, sig32[4] = {2, 1, 1, 2};
    int64_t d2[2] = {2, 2}, d3[2] = {3, 3};
    write_npz(tp("f4.npz"), "f4", 1, d2, mu32, "f4", d2, sig32);
    CHECK(vd_fid_stats_load(&back, tp("f4.npz"), &e) == VD_OK && back.dims == 2 && back.sigma[1] == 1.0);
    vd_fid_stats_free(&back);
    write_npz(tp("nosigma.npz"), "f8", 1, d2, s.mu, NULL, NULL, NULL);
    CHECK_FAIL(vd_fid_stats_load(&back, tp("nosigma.npz"), &e), VD_ERR_INVALID, e, tp("nosigma.npz"), "'sigma'");
    write_npz(tp("shape.npz"), "f8", 1, d2, s.mu, "f8", d3, s.sigma);
    CHECK_FAIL(vd_fid_stats_load(&back, tp("shape.npz"), &e), VD_ERR_INVALID, e, tp("shape.npz"), "not [2, 2]");
    int64_t ints[4] = {1, 2, 3, 4};
    write_npz(tp("ints.npz"), "i8", 1, d2, ints, "f8", d2, s.sigma);
    CHECK_FAIL(vd_fid_stats_load(&back, tp("ints.npz"), &e), VD_ERR_INVALID, e, tp("ints.npz"), "'i8'");
    write_npz(tp("matrix.npz"), "f8", 2, d2, s.sigma, "f8", d2, s.sigma);
    CHECK_FAIL(vd_fid_stats_load(&back, tp("matrix.npz"), &e), VD_ERR_INVALID, e, "'mu' has 2 dimensions");
    float nan_sig[4] = {1, NAN, NAN, 1};
    write_npz(tp("nan.npz"), "f4", 1, d2, mu32, "f4", d2, nan_sig);
    CHECK_FAIL(vd_fid_stats_load(&back, tp("nan.npz"), &e), VD_ERR_INVALID, e, "element 1", "finite");
    vd_status st = vd_fid_stats_load(&back, tp("absent.npz"), &e);
    CHECKF(st != VD_OK && strstr(e.msg, tp("absent.npz")), "%s", e.msg);
    vd_fid_stats_free(&s);
    free(x);
}

/* ---- the distance ------------------------------------------------------------------------------ */

/* A set against itself: 0, with fewer rows than features (the 500-image case's rank
 * deficiency, at pool3's 2048) and with more. */
static void test_self(void) {
    struct { int n, d, rank; } cases[] = {{300, 2048, 64}, {500, 64, 64}};
    for (int c = 0; c < 2; c++) {
        float *x = features(cases[c].n, cases[c].d, cases[c].rank, 0.3);
        vd_fid_stats s = stats_of(x, cases[c].n, cases[c].d);
        double f = fid_of(&s, &s), tr = 0;
        for (int k = 0; k < s.dims; k++) tr += s.sigma[(size_t)k * s.dims + k];
        CHECKF(fabs(f) < 1e-6, "FID of %d rows of %d features with themselves: %g (trace %g)",
               cases[c].n, cases[c].d, f, tr);
        vd_fid_stats_free(&s);
        free(x);
    }
}

/* A Householder reflection I - 2 v v^T / |v|^2 of a random v: a rotation the closed form
 * does not see. */
static void householder(int d, double *q) {
    double v[64], vv = 0;
    for (int i = 0; i < d; i++) v[i] = normal(), vv += v[i] * v[i];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) q[i * d + j] = (i == j) - 2 * v[i] * v[j] / vv;
}

/* sigma = Q diag(sd^2) Q^T */
static void rotated(int d, const double *q, const double *sd, double *sigma) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double c = 0;
            for (int k = 0; k < d; k++) c += q[i * d + k] * sd[k] * sd[k] * q[j * d + k];
            sigma[i * d + j] = c;
        }
}

/* Covariances with the same eigenvectors: tr sqrtm(s1 s2) = sum sd1 sd2, so FID =
 * |mu1 - mu2|^2 + sum (sd1 - sd2)^2; some variances zero (singular). */
static void test_commuting(void) {
    enum { D = 32 };
    double q[D * D], sd1[D], sd2[D], want = 0;
    vd_fid_stats a = stats_new(D), b = stats_new(D);
    householder(D, q);
    for (int k = 0; k < D; k++) {
        sd1[k] = k % 5 == 0 ? 0 : 0.5 + 3 * uniform();
        sd2[k] = k % 7 == 0 ? 0 : 0.5 + 3 * uniform();
        a.mu[k] = normal(), b.mu[k] = normal();
        want += (a.mu[k] - b.mu[k]) * (a.mu[k] - b.mu[k]) + (sd1[k] - sd2[k]) * (sd1[k] - sd2[k]);
    }
    rotated(D, q, sd1, a.sigma), rotated(D, q, sd2, b.sigma);
    double got = fid_of(&a, &b);
    CHECKF(close_rel(got, want, 1e-9), "commuting covariances: FID %.15g, closed form %.15g", got, want);
    vd_fid_stats_free(&a), vd_fid_stats_free(&b);
}

/* Feature sets whose statistics are exact in float: rows mu +- a_k e_k (dyadic), so mean mu and
 * covariance diag(2 a_k^2 / (n - 1)); through the accumulator, against the closed form. */
static void test_known_sets(void) {
    enum { D = 6, N = 2 * D };
    float xa[N * D], xb[N * D];
    double want = 0;
    for (int r = 0; r < N; r++)
        for (int k = 0; k < D; k++) {
            int on = r / 2 == k, sign = r % 2 ? -1 : 1;
            xa[r * D + k] = (float)(k + 0.5 + on * sign * 0.25 * (k + 1));
            xb[r * D + k] = (float)(2 * k - 1 + on * sign * 0.5 * (D - k));
        }
    for (int k = 0; k < D; k++) {
        double dm = (k + 0.5) - (2 * k - 1), s1 = 0.25 * (k + 1) * sqrt(2.0 / (N - 1)),
               s2 = 0.5 * (D - k) * sqrt(2.0 / (N - 1));
        want += dm * dm + (s1 - s2) * (s1 - s2);
    }
    vd_fid_stats a = stats_of(xa, N, D), b = stats_of(xb, N, D);
    double got = fid_of(&a, &b);
    CHECKF(close_rel(got, want, 1e-12), "known sets: FID %.15g, closed form %.15g", got, want);
    vd_fid_stats_free(&a), vd_fid_stats_free(&b);
}

/* Any 2 x 2 pair: the eigenvalues l1, l2 of s1 s2 give (sqrt l1 + sqrt l2)^2 = tr(s1 s2) +
 * 2 sqrt(det s1 det s2); the pairs do not commute, and the last is singular (rank 1 each). */
static void test_two_by_two(void) {
    double pairs[][6] = {{2, 0.7, 1, 1, -0.3, 3}, {5, 2, 1, 0.2, 0.1, 4}, {1, 1, 1, 1, 0, 0}};
    for (int p = 0; p < 3; p++) {
        const double *v = pairs[p];
        vd_fid_stats a = stats_new(2), b = stats_new(2);
        double s1[4] = {v[0], v[1], v[1], v[2]}, s2[4] = {v[3], v[4], v[4], v[5]};
        memcpy(a.sigma, s1, sizeof s1), memcpy(b.sigma, s2, sizeof s2);
        a.mu[0] = 1, b.mu[1] = -2;
        double tr12 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
        double det = (s1[0] * s1[3] - s1[1] * s1[2]) * (s2[0] * s2[3] - s2[1] * s2[2]);
        double want = 5 + s1[0] + s1[3] + s2[0] + s2[3] - 2 * sqrt(tr12 + 2 * sqrt(fmax(det, 0)));
        double got = fid_of(&a, &b);
        CHECKF(close_rel(got, want, 1e-12), "2 x 2 pair %d: FID %.15g, closed form %.15g", p, got, want);
        vd_fid_stats_free(&a), vd_fid_stats_free(&b);
    }
}

/* Cyclic Jacobi rotations: the symmetric d x d matrix a becomes diagonal (its eigenvalues); v
 * (NULL: not kept), starting as the identity, collects the rotations: a = v diag v^T. */
static void jacobi(double *a, double *v, int d) {
    for (int i = 0; v && i < d * d; i++) v[i] = i / d == i % d;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++) off += a[i * d + j] * a[i * d + j];
        if (off < 1e-30) break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                if (a[p * d + q] == 0) continue;
                double th = (a[q * d + q] - a[p * d + p]) / (2 * a[p * d + q]);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < d; k++) { /* columns p, q of a and v */
                    double kp = a[k * d + p], kq = a[k * d + q];
                    a[k * d + p] = c * kp - s * kq, a[k * d + q] = s * kp + c * kq;
                    if (!v) continue;
                    double vp = v[k * d + p], vq = v[k * d + q];
                    v[k * d + p] = c * vp - s * vq, v[k * d + q] = s * vp + c * vq;
                }
                for (int k = 0; k < d; k++) { /* rows p, q of a */
                    double pk = a[p * d + k], qk = a[q * d + k];
                    a[p * d + k] = c * pk - s * qk, a[q * d + k] = s * pk + c * qk;
                }
            }
    }
}

/* tr(sqrtm(s1 s2)) = sum sqrt(eig(R s2 R)) with R = s1^(1/2) = V sqrt(D) V^T: the symmetric
 * route, by Jacobi, independent of LAPACK and of the factorisation we use. */
static double trace_sqrt_jacobi(const double *s1, const double *s2, int d) {
    double *a = malloc(sizeof(double) * d * d * 4), *v = a + d * d, *r = v + d * d, *m = r + d * d;
    if (!a) VD_SETUP_FAIL("out of memory");
    memcpy(a, s1, sizeof(double) * d * d);
    jacobi(a, v, d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double c = 0;
            for (int k = 0; k < d; k++) c += v[i * d + k] * sqrt(fmax(a[k * d + k], 0)) * v[j * d + k];
            r[i * d + j] = c;
        }
    for (int i = 0; i < d; i++) /* m = r s2 r */
        for (int j = 0; j < d; j++) {
            double c = 0;
            for (int k = 0; k < d; k++)
                for (int l = 0; l < d; l++) c += r[i * d + k] * s2[k * d + l] * r[l * d + j];
            m[i * d + j] = c;
        }
    jacobi(m, NULL, d);
    double tr = 0;
    for (int i = 0; i < d; i++) tr += sqrt(fmax(m[i * d + i], 0));
    free(a);
    return tr;
}

/* Random statistics, one of them of fewer rows than features, against the Jacobi route. */
static void test_against_jacobi(void) {
    enum { D = 48 };
    struct { int n1, n2; double tol; } cases[] = {{200, 300, 1e-10}, {11, 300, 1e-7}, {20, 30, 1e-7}};
    for (int c = 0; c < 3; c++) {
        float *x1 = features(cases[c].n1, D, 40, 0.2), *x2 = features(cases[c].n2, D, 40, 0.4);
        vd_fid_stats a = stats_of(x1, cases[c].n1, D), b = stats_of(x2, cases[c].n2, D);
        double want = 0;
        for (int k = 0; k < D; k++)
            want += (a.mu[k] - b.mu[k]) * (a.mu[k] - b.mu[k]) + a.sigma[k * D + k] + b.sigma[k * D + k];
        want -= 2 * trace_sqrt_jacobi(a.sigma, b.sigma, D);
        double got = fid_of(&a, &b), rev = fid_of(&b, &a);
        CHECKF(close_rel(got, want, cases[c].tol), "%d and %d rows of %d: FID %.15g, Jacobi %.15g",
               cases[c].n1, cases[c].n2, D, got, want);
        CHECKF(close_rel(rev, got, 1e-10), "FID not symmetric: %.15g and %.15g", got, rev);
        vd_fid_stats_free(&a), vd_fid_stats_free(&b);
        free(x1), free(x2);
    }
}

static void test_distance_errors(void) {
    vd_fid_stats a = stats_new(3), b = stats_new(4);
    vd_err e;
    double f;
    CHECK_FAIL(vd_fid_distance(&a, &b, &f, &e), VD_ERR_INVALID, e, "3", "4 features");
    vd_fid_stats_free(&a), vd_fid_stats_free(&b);
}

/* ---- Inception Score ------------------------------------------------------------------------- */

enum { CLASSES = 1008 };

/* Equal logits: every p is q, the score is exactly 1. Confident rows spread evenly over K
 * classes in every split: p one-hot, q uniform over K, the score K. */
static void test_inception_score(void) {
    enum { N = 1000, K = 20 };
    float *logits = calloc((size_t)N * CLASSES, sizeof *logits);
    double mean, sd;
    vd_err e;
    for (int i = 0; i < N * CLASSES; i++) logits[i] = 3.25f;
    CHECK(vd_inception_score(logits, N, CLASSES, 10, &mean, &sd, &e) == VD_OK);
    CHECKF(fabs(mean - 1) < 1e-12 && sd < 1e-12, "uniform logits: IS %.15g std %g", mean, sd);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < CLASSES; k++) logits[(size_t)i * CLASSES + k] = k == i % K ? 80.0f : 0.0f;
    CHECK(vd_inception_score(logits, N, CLASSES, 10, &mean, &sd, &e) == VD_OK);
    CHECKF(fabs(mean - K) < 1e-9 * K && sd < 1e-9, "one-hot logits over %d classes: IS %.15g std %g", K, mean, sd);
    /* the first half class 0, the second class 1: in 2 splits each split is sure of one class
     * (IS 1), in 1 split the classes are evenly split (IS 2) */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < CLASSES; k++) logits[(size_t)i * CLASSES + k] = k == i / (N / 2) ? 80.0f : 0.0f;
    CHECK(vd_inception_score(logits, N, CLASSES, 2, &mean, &sd, &e) == VD_OK);
    CHECKF(fabs(mean - 1) < 1e-9 && sd < 1e-9, "one class per split: IS %.15g std %g", mean, sd);
    CHECK(vd_inception_score(logits, N, CLASSES, 1, &mean, &sd, &e) == VD_OK);
    CHECKF(fabs(mean - 2) < 1e-9 && sd == 0, "two classes in one split: IS %.15g", mean);
    CHECK_FAIL(vd_inception_score(logits, 9, CLASSES, 10, &mean, &sd, &e), VD_ERR_INVALID, e, "9 images in 10 splits");
    free(logits);
}

/* ---- against pytorch-fid and torch-fidelity (modes) ------------------------------------------ */

static int run_python(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/fid_stats_case.py' %s", vd_test_python(),
             getenv("VD_SOURCE_DIR"), args);
    int rc = system(cmd);
    CHECKF(rc == 0, "%s: exit %d", cmd, rc);
    return rc;
}

static void save_f32(const char *path, const float *x, int64_t n, int d) {
    int64_t shape[2] = {n, d};
    vd_err e;
    if (vd_npy_write(path, VD_DTYPE_F32, 2, shape, x, &e)) VD_SETUP_FAIL("%s", e.msg);
}

/* Our statistics files read by pytorch-fid, its files read by us, and its distance against ours,
 * on 256 features of 200 and 400 rows (the first rank-deficient). */
static void check_pytorch_fid(void) {
    enum { D = 256, NA = 200, NB = 400 };
    float *xa = features(NA, D, 100, 0.1), *xb = features(NB, D, 300, 0.3);
    vd_fid_stats a = stats_of(xa, NA, D), b = stats_of(xb, NB, D), ra, rb;
    vd_err e;
    save_f32(tp("a.npy"), xa, NA, D), save_f32(tp("b.npy"), xb, NB, D);
    CHECK(vd_fid_stats_save(&a, tp("ours_a.npz"), &e) == VD_OK);
    CHECK(vd_fid_stats_save(&b, tp("ours_b.npz"), &e) == VD_OK);
    char args[2048];
    snprintf(args, sizeof args, "distance '%s' '%s' '%s' '%s' '%s'", tp("a.npy"), tp("b.npy"),
             tp("ours_a.npz"), tp("ours_b.npz"), tmpdir);
    double ref = NAN, theirs_on_ours = NAN, ours = fid_of(&a, &b);
    FILE *f = run_python(args) ? NULL : fopen(tp("result.txt"), "r");
    CHECK(f && fscanf(f, "ref %lf ours %lf", &ref, &theirs_on_ours) == 2);
    if (f) fclose(f);
    CHECKF(close_rel(ours, ref, 1e-6), "FID %.12g, pytorch-fid's %.12g", ours, ref);
    CHECKF(close_rel(theirs_on_ours, ours, 1e-6), "pytorch-fid on our files %.12g, ours %.12g",
           theirs_on_ours, ours);
    CHECK(vd_fid_stats_load(&ra, tp("ref_a.npz"), &e) == VD_OK && vd_fid_stats_load(&rb, tp("ref_b.npz"), &e) == VD_OK);
    double worst = 0, scale = 0;
    for (int i = 0; i < D * D && ra.sigma; i++) {
        worst = fmax(worst, fabs(ra.sigma[i] - a.sigma[i]));
        scale = fmax(scale, fabs(a.sigma[i]));
    }
    CHECKF(worst <= 1e-12 * scale, "np.cov and ours differ by %g of %g", worst, scale);
    if (ra.sigma && rb.sigma) {
        double on_theirs = fid_of(&ra, &rb);
        CHECKF(close_rel(on_theirs, ours, 1e-9), "ours on pytorch-fid's files %.12g, on ours %.12g",
               on_theirs, ours);
    }
    vd_fid_stats_free(&a), vd_fid_stats_free(&b), vd_fid_stats_free(&ra), vd_fid_stats_free(&rb);
    free(xa), free(xb);
}

/* Logits of varied confidence over uneven splits (1003 rows in 10) against torch-fidelity's
 * isc_features_to_metric without its shuffle. */
static void check_torch_fidelity(void) {
    enum { N = 1003 };
    float *logits = malloc((size_t)N * CLASSES * sizeof *logits);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < CLASSES; k++)
            logits[(size_t)i * CLASSES + k] = (float)(normal() * (1 + i % 7) + (k == (i * 37) % 50 ? 6 : 0));
    double mean = NAN, sd = NAN, t_mean = NAN, t_sd = NAN;
    vd_err e;
    CHECK(vd_inception_score(logits, N, CLASSES, 10, &mean, &sd, &e) == VD_OK);
    save_f32(tp("logits.npy"), logits, N, CLASSES);
    char args[1024];
    snprintf(args, sizeof args, "isc '%s' 10 '%s'", tp("logits.npy"), tp("isc.txt"));
    FILE *f = run_python(args) ? NULL : fopen(tp("isc.txt"), "r");
    CHECK(f && fscanf(f, "%lf %lf", &t_mean, &t_sd) == 2);
    if (f) fclose(f);
    CHECKF(close_rel(mean, t_mean, 1e-4) && close_rel(sd, t_sd, 1e-4),
           "IS %.12g std %.12g, torch-fidelity's %.12g std %.12g", mean, sd, t_mean, t_sd);
    fprintf(stderr, "IS %.12g std %.12g, torch-fidelity's %.12g std %.12g\n", mean, sd, t_mean, t_sd);
    free(logits);
}

static void cleanup(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    int rc = 0;
    if (mode && !strcmp(mode, "pytorch_fid")) rc = vd_test_need_python_modules("numpy scipy pytorch_fid");
    else if (mode && !strcmp(mode, "torch_fidelity")) rc = vd_test_need_python_modules("numpy torch torch_fidelity");
    else if (mode) return vd_test_bad_mode("test_fid_stats", mode);
    if (rc) return rc;
    if (!mkdtemp(tmpdir)) VD_SETUP_FAIL("mkdtemp %s", tmpdir);
    if (mode && !strcmp(mode, "pytorch_fid")) check_pytorch_fid();
    else if (mode) check_torch_fidelity();
    else {
        test_accum_two_pass();
        test_accum_errors();
        test_files();
        test_self();
        test_commuting();
        test_known_sets();
        test_two_by_two();
        test_against_jacobi();
        test_distance_errors();
        test_inception_score();
    }
    cleanup();
    return vd_test_result("test_fid_stats");
}
