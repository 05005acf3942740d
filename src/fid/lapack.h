/* The few BLAS and LAPACK routines the FID arithmetic calls (Debian's liblapack-dev, or any
 * library installed as its alternative, e.g. OpenBLAS), through their Fortran symbols. */
#ifndef VD_FID_LAPACK_H
#define VD_FID_LAPACK_H

#include <stddef.h>

/* gfortran passes the length of every CHARACTER argument as a hidden size_t after the others;
 * leaving them out works until a LAPACK built with newer gfortran relies on them (LAPACK
 * bug 339, the R and Julia crashes of 2019), so every prototype here declares them. Integers
 * are the LP64 ones (int). Arrays are column-major. */

void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
            const double *a, const int *lda, const double *beta, double *c, const int *ldc,
            size_t uplo_len, size_t trans_len);
void dgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda, const double *b, const int *ldb,
            const double *beta, double *c, const int *ldc, size_t transa_len, size_t transb_len);
/* Cholesky with complete pivoting of a positive semi-definite matrix: P^T A P = L L^T, of the
 * rank it finds (LAPACK >= 3.2). */
void dpstrf_(const char *uplo, const int *n, double *a, const int *lda, int *piv, int *rank,
             const double *tol, double *work, int *info, size_t uplo_len);
/* Singular values (jobz "N") or the SVD by divide and conquer. */
void dgesdd_(const char *jobz, const int *m, const int *n, double *a, const int *lda, double *s,
             double *u, const int *ldu, double *vt, const int *ldvt, double *work,
             const int *lwork, int *iwork, int *info, size_t jobz_len);

#endif
