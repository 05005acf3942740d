/* The Frechet distance between two Gaussians, ||mu1 - mu2||^2 + tr(s1) + tr(s2)
 * - 2 tr(sqrtm(s1 s2)), in double with LAPACK.
 *
 * pytorch-fid forms s1 s2 and takes scipy.linalg.sqrtm of it: a complex Schur form T = Z^H A Z,
 * the upper-triangular root R of T, and Z R Z^H, whose real part it keeps (it fails only when
 * the imaginary diagonal exceeds 1e-3). Its trace is the trace of R, the sum of sqrt(t_ii) over
 * the computed eigenvalues of s1 s2. Those eigenvalues are real and >= 0 in exact arithmetic:
 * with s1 = F1 F1^T and s2 = F2 F2^T, s1 s2 has the eigenvalues of F1^T s2 F1 = C^T C, C = F2^T
 * F1, so tr(sqrtm(s1 s2)) is the sum of the singular values of C. That is what we compute:
 * - It needs no nonsymmetric eigensolver, only a factor of each covariance and an SVD, and it
 *   is stable: the SVD is backward stable on C and never squares it.
 * - Covariances of fewer images than features (500 images, 2048 features: rank 499) are
 *   exactly the case where s1 s2 is singular and sqrtm struggles: its tiny eigenvalues come out
 *   of the Schur form as noise of size eps ||s1|| ||s2||, negative or complex, whose roots give
 *   the imaginary parts pytorch-fid drops, and sqrtm itself may fail (pytorch-fid then adds
 *   1e-6 to both diagonals). Here nothing is complex and nothing fails: that noise adds at most
 *   sqrt(eps ||s1|| ||s2||) per eigenvalue to pytorch-fid's trace, 1e-8 of the scale of the
 *   features each, which is the size of the difference between the two answers.
 * - The factors come from Cholesky with complete pivoting (dpstrf), which stops at the
 *   numerical rank (a remaining pivot below LAPACK's n eps max(diag)): F is n x rank, so the
 *   500-image case costs n^2 rank instead of n^3 (seconds, not the minutes of a 2048 x 2048
 *   Schur form with reference BLAS). What it leaves out is a positive semi-definite remainder of
 *   trace below n^2 eps max(diag), the order of the rounding already in the covariance.
 * The distance of a set to itself is then 2 (tr(s) - tr(F F^T)) = 2 tr(remainder), zero to
 * rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fid/fid_stats.h"
#include "fid/lapack.h"

/* The pivoted Cholesky factor of s (n x n, symmetric positive semi-definite) as a dense
 * column-major n x *rank matrix F with s = F F^T up to the remainder: F = P L. *f is malloc'ed. */
static vd_status psd_factor(const double *s, int n, double **f, int *rank, vd_err *err) {
    size_t nn = (size_t)n * (size_t)n;
    double *a = malloc(nn * sizeof *a), *work = malloc(2 * (size_t)n * sizeof *work), tol = -1;
    int *piv = malloc((size_t)n * sizeof *piv), info = 0;
    *f = NULL;
    if (!a || !work || !piv) {
        free(a), free(work), free(piv);
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory factoring a %d x %d covariance", n, n);
    }
    memcpy(a, s, nn * sizeof *a); /* symmetric: its row-major layout is also column-major */
    dpstrf_("L", &n, a, &n, piv, rank, &tol, work, &info, 1);
    free(work);
    if (info < 0) {
        free(a), free(piv);
        return vd_errorf(err, VD_ERR_INTERNAL, "LAPACK dpstrf: argument %d is bad", -info);
    }
    /* info 1: rank < n, the usual case for fewer images than features. L's column j is
     * a[j + j n ..], below the diagonal; row i of L is row piv[i] - 1 of F. Reuse a as F. */
    int r = *rank;
    double *col = malloc((size_t)n * sizeof *col);
    if (!col) {
        free(a), free(piv);
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory factoring a %d x %d covariance", n, n);
    }
    for (int j = 0; j < r; j++) {
        double *aj = a + (size_t)j * (size_t)n;
        for (int i = 0; i < n; i++) col[i] = 0;
        for (int i = j; i < n; i++) col[piv[i] - 1] = aj[i];
        memcpy(aj, col, (size_t)n * sizeof *col);
    }
    free(col), free(piv);
    *f = a;
    return VD_OK;
}

/* The sum of the singular values of the r2 x r1 matrix C = F2^T F1. */
static vd_status nuclear_norm(const double *f1, int r1, const double *f2, int r2, int n,
                              double *out, vd_err *err) {
    *out = 0;
    if (r1 == 0 || r2 == 0) return VD_OK;
    int k = r1 < r2 ? r1 : r2, info = 0, lwork = -1, one = 1;
    double *c = malloc((size_t)r1 * (size_t)r2 * sizeof *c), *s = malloc((size_t)k * sizeof *s);
    int *iwork = malloc(8 * (size_t)k * sizeof *iwork);
    double alpha = 1, beta = 0, query = 0, *work = NULL;
    vd_status st = VD_OK;
    if (!c || !s || !iwork) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) {
        dgemm_("T", "N", &r2, &r1, &n, &alpha, f2, &n, f1, &n, &beta, c, &r2, 1, 1);
        dgesdd_("N", &r2, &r1, c, &r2, s, NULL, &one, NULL, &one, &query, &lwork, iwork, &info, 1);
        lwork = (int)query + 1;
        if (!(work = malloc((size_t)lwork * sizeof *work))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    if (!st) dgesdd_("N", &r2, &r1, c, &r2, s, NULL, &one, NULL, &one, work, &lwork, iwork, &info, 1);
    if (!st && info)
        st = vd_errorf(err, VD_ERR_INTERNAL, "LAPACK dgesdd: %s %d", info < 0 ? "bad argument" :
                       "no convergence, superdiagonals left", info < 0 ? -info : info);
    for (int i = 0; !st && i < k; i++) *out += s[i];
    free(c), free(s), free(iwork), free(work);
    return st;
}

/* tr(sqrtm(s1 s2)) for symmetric positive semi-definite s1, s2 (n x n). */
static vd_status trace_sqrt_product(const double *s1, const double *s2, int n, double *out,
                                    vd_err *err) {
    double *f1 = NULL, *f2 = NULL;
    int r1 = 0, r2 = 0;
    vd_status st = psd_factor(s1, n, &f1, &r1, err);
    if (!st) st = psd_factor(s2, n, &f2, &r2, err);
    if (!st) st = nuclear_norm(f1, r1, f2, r2, n, out, err);
    free(f1), free(f2);
    return st;
}

vd_status vd_fid_distance(const vd_fid_stats *a, const vd_fid_stats *b, double *fid, vd_err *err) {
    *fid = NAN;
    if (a->dims != b->dims)
        return vd_errorf(err, VD_ERR_INVALID, "FID of statistics of %d and of %d features: the "
                         "dimensions must agree", a->dims, b->dims);
    int n = a->dims;
    double diff = 0, tr1 = 0, tr2 = 0, tr_sqrt = 0;
    for (int i = 0; i < n; i++) {
        double d = a->mu[i] - b->mu[i];
        diff += d * d;
        tr1 += a->sigma[(size_t)i * n + i];
        tr2 += b->sigma[(size_t)i * n + i];
    }
    vd_status st = trace_sqrt_product(a->sigma, b->sigma, n, &tr_sqrt, err);
    if (st) return vd_err_prefix(err, "Frechet distance");
    *fid = diff + tr1 + tr2 - 2 * tr_sqrt;
    return VD_OK;
}
