/* Per-element math of the Gaussian latents, shared by the CPU backends (each keeps its own
 * loops and checks): the std a statistics tensor holds in either base, and one element of
 * KL(posterior || prior) with its partial derivatives. In double, as both backends compute. */
#ifndef VD_BACKEND_LATENT_MATH_H
#define VD_BACKEND_LATENT_MATH_H

#include <math.h>

#include "backend/ops.h"
#include "core/hd.h"

/* The std a stats tensor p holds: itself (std base) or exp(beta logstd). */
VD_HD static inline double std_of(vd_dist_base base, double beta, double p) {
    return base == VD_BASE_STD ? p : exp(beta * p);
}
VD_HD static inline double dstd_dp(vd_dist_base base, double beta, double p) {
    return base == VD_BASE_STD ? 1.0 : beta * exp(beta * p);
}

/* One element of KL(post || prior) and its partial derivatives, with the reference's
 * term1 = (mu_p - mu_q) / s_q, term2 = s_p / s_q. */
typedef struct kl_point {
    double kl, d_post_mean, d_post_p, d_prior_mean, d_prior_p;
} kl_point;

VD_HD static inline kl_point kl_at(vd_dist_base base, double beta, double pm, double pp, double qm, double qp) {
    double inv_q = base == VD_BASE_STD ? 1 / qp : exp(-beta * qp);
    double t1 = (pm - qm) * inv_q, t2 = std_of(base, beta, pp) * inv_q;
    kl_point k; /* every field set below (a partial initializer warns in C++) */
    k.kl = 0.5 * (t1 * t1 + t2 * t2) - 0.5 - log(t2);
    k.d_post_mean = t1 * inv_q;
    k.d_prior_mean = -t1 * inv_q;
    if (base == VD_BASE_STD) {
        k.d_post_p = t2 * inv_q - 1 / pp;
        k.d_prior_p = (1 - t1 * t1 - t2 * t2) * inv_q;
    } else {
        k.d_post_p = beta * (t2 * t2 - 1);
        k.d_prior_p = -beta * (t1 * t1 + t2 * t2 - 1);
    }
    return k;
}

/* torch.nn.Softplus(beta) for the scales: linear where beta x > 20, and its slope. */
VD_HD static inline double latent_softplus(double x, double beta) {
    return beta * x > 20.0 ? x : log1p(exp(beta * x)) / beta;
}
VD_HD static inline double latent_softplus_grad(double x, double beta) {
    double e = beta * x;
    return e > 20.0 ? 1.0 : (e >= 0 ? 1.0 / (1.0 + exp(-e)) : exp(e) / (1.0 + exp(e)));
}

/* One variate's statistics from its raw mean and scale: std = softplus_beta(raw) or
 * logstd = raw, shifted by a residual prior (pm, pp) when `prior`. */
VD_HD static inline void latent_stats_elem(vd_dist_base base, double beta, double m_raw, double s_raw, bool prior,
                                     double pm, double pp, double *m, double *p) {
    double s = base == VD_BASE_STD ? latent_softplus(s_raw, beta) : s_raw;
    if (prior) {
        m_raw += pm;
        s = base == VD_BASE_STD ? s * pp : s + pp;
    }
    *m = m_raw;
    *p = s;
}

/* Its backward from (gm, gp) = d/d(mean, p): gradients of the raw mean and scale, and of the
 * residual prior's mean and p (meaningful when `prior`). */
VD_HD static inline void latent_stats_elem_bwd(vd_dist_base base, double beta, double s_raw, bool prior, double pp,
                                         double gm, double gp, double *g_raw_m, double *g_raw_s,
                                         double *g_prior_m, double *g_prior_p) {
    *g_raw_m = gm;
    *g_prior_m = gm;
    if (base == VD_BASE_STD) {
        *g_raw_s = gp * (prior ? pp : 1.0) * latent_softplus_grad(s_raw, beta);
        *g_prior_p = gp * latent_softplus(s_raw, beta);
    } else {
        *g_raw_s = gp;
        *g_prior_p = gp;
    }
}

#endif
