/* FID and Inception Score arithmetic, in double: running mean and covariance of pool3
 * features, pytorch-fid's statistics files (.npz with mu [2048] and sigma [2048, 2048],
 * float64), the Frechet distance between two Gaussians as pytorch-fid computes it (the trace of
 * the matrix square root of sigma1 sigma2, whose imaginary noise it drops within its tolerance;
 * here with LAPACK as the singular values of F2^T F1 for sigma = F F^T, which has none:
 * frechet.c says why), and the Inception Score of logits (10 splits, mean and std,
 * torch-fidelity's formula). */
#ifndef VD_FID_FID_STATS_H
#define VD_FID_FID_STATS_H

#include <stdint.h>

#include "vdvae/status.h"

typedef struct vd_fid_stats {
    int dims;
    int64_t n;    /* features seen */
    double *mu;   /* [dims] */
    double *sigma; /* [dims * dims], the unbiased covariance (numpy's np.cov, ddof 1) */
} vd_fid_stats;

/* Streaming accumulation: init, add rows of features (float, [n][dims]), finish. */
typedef struct vd_fid_accum vd_fid_accum;
vd_status vd_fid_accum_open(vd_fid_accum **out, int dims, vd_err *err);
vd_status vd_fid_accum_add(vd_fid_accum *a, const float *features, int64_t n, vd_err *err);
/* The statistics of everything added: at least 2 rows, else VD_ERR_INVALID. */
vd_status vd_fid_accum_finish(vd_fid_accum *a, vd_fid_stats *out, vd_err *err);
void vd_fid_accum_close(vd_fid_accum *a);

vd_status vd_fid_stats_save(const vd_fid_stats *s, const char *path, vd_err *err);
/* A file without mu and sigma of matching dims is VD_ERR_INVALID naming it. */
vd_status vd_fid_stats_load(vd_fid_stats *s, const char *path, vd_err *err);
void vd_fid_stats_free(vd_fid_stats *s);

/* ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2)). Stats of different
 * dims are VD_ERR_INVALID. */
vd_status vd_fid_distance(const vd_fid_stats *a, const vd_fid_stats *b, double *fid, vd_err *err);

/* Inception Score of n rows of `classes` logits in `splits` splits, with torch-fidelity's
 * formula and split boundaries (its isc_features_to_metric, without its shuffle: rows are
 * taken in the order given): mean and std over the splits. */
vd_status vd_inception_score(const float *logits, int64_t n, int classes, int splits, double *mean,
                             double *std, vd_err *err);

#endif
