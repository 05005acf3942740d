/* Running mean and covariance of pool3 features in double, pytorch-fid's statistics files, and
 * the Inception Score of logits. (The Frechet distance is in frechet.c.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fid/fid_stats.h"
#include "fid/lapack.h"
#include "vdvae/io.h"

/* Rows are gathered into blocks so that the scatter matrix is updated by one BLAS rank-k call
 * (dsyrk) per block instead of a rank-1 update per row. */
#define ACCUM_BLOCK 256
/* BLAS indexes a dims x dims matrix with 32-bit integers. */
#define DIMS_MAX 46340

/* The shifted-data algorithm: every row x is taken as x - k with k the first row, so that
 * sum (x - k)(x - k)^T - n m m^T (m the mean of x - k) cancels no more digits than the spread of
 * the features needs; pool3 features are averages of ReLUs, all positive with means of the
 * order of their spread, where the textbook sum x x^T - n mean mean^T would lose digits. */
struct vd_fid_accum {
    int dims;
    int64_t n;       /* rows added */
    double *shift;   /* [dims] the first row */
    double *sum;     /* [dims] sum of x - shift */
    double *scatter; /* [dims * dims] upper triangle (column-major) of sum (x - shift)(x - shift)^T */
    double *block;   /* [ACCUM_BLOCK * dims] shifted rows not yet in scatter */
    int pending;
};

vd_status vd_fid_accum_open(vd_fid_accum **out, int dims, vd_err *err) {
    *out = NULL;
    if (dims < 1 || dims > DIMS_MAX)
        return vd_errorf(err, VD_ERR_INVALID, "FID statistics of %d features: expected 1 to %d",
                         dims, DIMS_MAX);
    vd_fid_accum *a = calloc(1, sizeof *a);
    size_t d = (size_t)dims;
    if (a) {
        a->dims = dims;
        a->shift = calloc(d, sizeof(double));
        a->sum = calloc(d, sizeof(double));
        a->scatter = calloc(d * d, sizeof(double));
        a->block = malloc(ACCUM_BLOCK * d * sizeof(double));
    }
    if (!a || !a->shift || !a->sum || !a->scatter || !a->block) {
        vd_fid_accum_close(a);
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the covariance of %d features", dims);
    }
    *out = a;
    return VD_OK;
}

void vd_fid_accum_close(vd_fid_accum *a) {
    if (!a) return;
    free(a->shift), free(a->sum), free(a->scatter), free(a->block);
    free(a);
}

static void flush(vd_fid_accum *a) {
    if (!a->pending) return;
    const double one = 1.0;
    /* block is column-major dims x pending: scatter += block block^T */
    dsyrk_("U", "N", &a->dims, &a->pending, &one, a->block, &a->dims, &one, a->scatter, &a->dims,
           1, 1);
    a->pending = 0;
}

static vd_status add_row(vd_fid_accum *a, const float *x, vd_err *err) {
    int d = a->dims;
    for (int k = 0; k < d; k++)
        if (!isfinite(x[k]))
            return vd_errorf(err, VD_ERR_INVALID, "feature %d of row %lld is %g: not a finite "
                             "number", k, (long long)a->n, (double)x[k]);
    if (a->n == 0)
        for (int k = 0; k < d; k++) a->shift[k] = x[k];
    double *row = a->block + (size_t)a->pending * (size_t)d;
    for (int k = 0; k < d; k++) {
        row[k] = (double)x[k] - a->shift[k];
        a->sum[k] += row[k];
    }
    a->n++;
    if (++a->pending == ACCUM_BLOCK) flush(a);
    return VD_OK;
}

vd_status vd_fid_accum_add(vd_fid_accum *a, const float *features, int64_t n, vd_err *err) {
    for (int64_t i = 0; i < n; i++) {
        vd_status st = add_row(a, features + (size_t)i * (size_t)a->dims, err);
        if (st) return st;
    }
    return VD_OK;
}

static vd_status stats_alloc(vd_fid_stats *s, int dims, vd_err *err) {
    memset(s, 0, sizeof *s);
    s->dims = dims;
    s->mu = malloc((size_t)dims * sizeof(double));
    s->sigma = malloc((size_t)dims * (size_t)dims * sizeof(double));
    if (s->mu && s->sigma) return VD_OK;
    vd_fid_stats_free(s);
    return vd_errorf(err, VD_ERR_NOMEM, "out of memory for FID statistics of %d features", dims);
}

vd_status vd_fid_accum_finish(vd_fid_accum *a, vd_fid_stats *out, vd_err *err) {
    memset(out, 0, sizeof *out);
    if (a->n < 2)
        return vd_errorf(err, VD_ERR_INVALID, "FID statistics need at least 2 images, got %lld",
                         (long long)a->n);
    vd_status st = stats_alloc(out, a->dims, err);
    if (st) return st;
    flush(a);
    size_t d = (size_t)a->dims;
    double n = (double)a->n;
    out->n = a->n;
    for (size_t k = 0; k < d; k++) out->mu[k] = a->shift[k] + a->sum[k] / n;
    /* np.cov's unbiased estimate; scatter's upper triangle (i <= j) is at i + j * d */
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i <= j; i++) {
            double c = (a->scatter[i + j * d] - a->sum[i] * a->sum[j] / n) / (n - 1);
            out->sigma[i * d + j] = out->sigma[j * d + i] = c;
        }
    return VD_OK;
}

void vd_fid_stats_free(vd_fid_stats *s) {
    if (!s) return;
    free(s->mu), free(s->sigma);
    memset(s, 0, sizeof *s);
}

/* ---- pytorch-fid's files: np.savez_compressed(path, mu=mu, sigma=sigma) ------------------- */

vd_status vd_fid_stats_save(const vd_fid_stats *s, const char *path, vd_err *err) {
    vd_npz_writer *w;
    vd_status st = vd_npz_writer_open(&w, path, err);
    if (st) return st;
    vd_npz_writer_deflate(w, 1);
    int64_t shape[2] = {s->dims, s->dims};
    st = vd_npz_add(w, "mu", "f8", 1, shape, s->mu, err);
    if (!st) st = vd_npz_add(w, "sigma", "f8", 2, shape, s->sigma, err);
    if (st) {
        vd_npz_writer_discard(w);
        return st;
    }
    return vd_npz_writer_close(w, err);
}

/* Array `name` as doubles into dst (numel of them): float64 as pytorch-fid writes, float32 as
 * some published statistics are. */
static vd_status read_doubles(const vd_npz_array *a, double *dst, vd_err *err) {
    int f8 = !strcmp(a->dtype, "f8");
    if (!f8 && strcmp(a->dtype, "f4"))
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' has dtype '%s': not FID statistics "
                         "(expected float64 or float32)", a->file, a->name, a->dtype);
    for (int64_t i = 0; i < a->numel; i++) {
        dst[i] = f8 ? ((const double *)a->data)[i] : ((const float *)a->data)[i];
        if (!isfinite(dst[i]))
            return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': element %lld is %g, not a "
                             "finite number", a->file, a->name, (long long)i, dst[i]);
    }
    return VD_OK;
}

/* mu [d] and sigma [d, d] with the same d. */
static vd_status check_shapes(const char *path, const vd_npz_array *mu, const vd_npz_array *sigma,
                              vd_err *err) {
    if (mu->ndim != 1 || mu->shape[0] < 1 || mu->shape[0] > DIMS_MAX)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array 'mu' has %d dimensions%s: not FID "
                         "statistics (expected mu [dims], 1 <= dims <= %d)", path, mu->ndim,
                         mu->ndim == 1 ? " of a bad size" : "", DIMS_MAX);
    int64_t d = mu->shape[0];
    if (sigma->ndim != 2 || sigma->shape[0] != d || sigma->shape[1] != d)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array 'sigma' is not [%lld, %lld] as mu [%lld] "
                         "needs: not FID statistics", path, (long long)d, (long long)d, (long long)d);
    return VD_OK;
}

static vd_status load_arrays(vd_npz *r, const char *path, vd_fid_stats *s, vd_err *err) {
    const vd_npz_array *mu, *sigma;
    vd_status st = vd_npz_find(r, "mu", &mu, err);
    if (!st) st = vd_npz_find(r, "sigma", &sigma, err);
    if (!st) st = check_shapes(path, mu, sigma, err);
    if (!st) st = stats_alloc(s, (int)mu->shape[0], err);
    if (!st) st = read_doubles(mu, s->mu, err);
    if (!st) st = read_doubles(sigma, s->sigma, err);
    return st;
}

vd_status vd_fid_stats_load(vd_fid_stats *s, const char *path, vd_err *err) {
    memset(s, 0, sizeof *s);
    vd_npz *r;
    vd_status st = vd_npz_open(&r, path, err);
    if (st) return st;
    st = load_arrays(r, path, s, err);
    vd_npz_close(r);
    if (st) vd_fid_stats_free(s);
    return st;
}

/* ---- Inception Score ------------------------------------------------------------------------ */

/* log_softmax of one row of logits in double, as torch computes it: x - max - log sum exp. */
static void log_softmax(const float *x, int c, double *out) {
    double m = x[0], s = 0;
    for (int k = 1; k < c; k++) m = x[k] > m ? x[k] : m;
    for (int k = 0; k < c; k++) s += exp((double)x[k] - m);
    double lse = m + log(s);
    for (int k = 0; k < c; k++) out[k] = (double)x[k] - lse;
}

/* exp(mean over rows of KL(p_row || q)), q the mean of the rows' p: rows [lo, hi). */
static double split_score(const float *logits, int64_t lo, int64_t hi, int c, double *q, double *lp) {
    memset(q, 0, (size_t)c * sizeof *q);
    for (int64_t i = lo; i < hi; i++) {
        log_softmax(logits + (size_t)i * (size_t)c, c, lp);
        for (int k = 0; k < c; k++) q[k] += exp(lp[k]);
    }
    for (int k = 0; k < c; k++) q[k] = log(q[k] / (double)(hi - lo));
    double kl = 0;
    for (int64_t i = lo; i < hi; i++) {
        log_softmax(logits + (size_t)i * (size_t)c, c, lp);
        double row = 0;
        for (int k = 0; k < c; k++) row += exp(lp[k]) * (lp[k] - q[k]);
        kl += row;
    }
    return exp(kl / (double)(hi - lo));
}

vd_status vd_inception_score(const float *logits, int64_t n, int classes, int splits, double *mean,
                             double *std, vd_err *err) {
    if (splits < 1 || classes < 1 || n < splits)
        return vd_errorf(err, VD_ERR_INVALID, "Inception Score of %lld images in %d splits: need "
                         "at least one image per split", (long long)n, splits);
    double *q = malloc(2 * (size_t)classes * sizeof *q), sum = 0, sq = 0;
    if (!q) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    double *scores = malloc((size_t)splits * sizeof *scores);
    if (!scores) return free(q), vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    /* torch-fidelity's boundaries: split i is rows [i N / splits, (i + 1) N / splits) */
    for (int i = 0; i < splits; i++) {
        scores[i] = split_score(logits, i * n / splits, (i + 1) * n / splits, classes, q, q + classes);
        sum += scores[i];
    }
    *mean = sum / splits;
    for (int i = 0; i < splits; i++) sq += (scores[i] - *mean) * (scores[i] - *mean);
    *std = sqrt(sq / splits); /* np.std: the population deviation */
    free(scores), free(q);
    return VD_OK;
}
