/* Per-element math of the Gaussian latents, shared by the CPU backends (each keeps its own
 * loops and checks): the std a statistics tensor holds in either base, and one element of
 * KL(posterior || prior) with its partial derivatives. In double, as both backends compute. */
#ifndef VD_BACKEND_LATENT_MATH_H
#define VD_BACKEND_LATENT_MATH_H

#include <math.h>

#include "backend/ops.h"

/* The std a stats tensor p holds: itself (std base) or exp(beta logstd). */
static inline double std_of(int base, double beta, double p) {
    return base == VD_BASE_STD ? p : exp(beta * p);
}
static inline double dstd_dp(int base, double beta, double p) {
    return base == VD_BASE_STD ? 1.0 : beta * exp(beta * p);
}

/* One element of KL(post || prior) and its partial derivatives, with the reference's
 * term1 = (mu_p - mu_q) / s_q, term2 = s_p / s_q. */
typedef struct kl_point {
    double kl, d_post_mean, d_post_p, d_prior_mean, d_prior_p;
} kl_point;

static inline kl_point kl_at(int base, double beta, double pm, double pp, double qm, double qp) {
    double inv_q = base == VD_BASE_STD ? 1 / qp : exp(-beta * qp);
    double t1 = (pm - qm) * inv_q, t2 = std_of(base, beta, pp) * inv_q;
    kl_point k = {.kl = 0.5 * (t1 * t1 + t2 * t2) - 0.5 - log(t2)};
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

#endif
