/* Per-element math of the optimisation ops (the update of vd_optim_step, the weights' EMA,
 * gradient scaling), shared by cpu_ref and the CUDA kernels (each keeps its own loops and
 * checks). In double, rounded to float only when stored, as the oracle computes. */
#ifndef VD_BACKEND_OPTIM_MATH_H
#define VD_BACKEND_OPTIM_MATH_H

#include <math.h>

#include "backend/ops.h"
#include "core/hd.h"

/* What an update step shares across its elements: computed once per call on the host, so
 * every backend starts from the same pow() of the host's libm. */
typedef struct optim_coefs {
    double bc1, bc2; /* bias corrections 1 - beta^t */
    double r;        /* RAdam's rectification, 0 on its unadapted branch (and for the others) */
} optim_coefs;

/* jnp.maximum: a NaN on either side wins. */
VD_HD static inline double optim_max_nan(double a, double b) {
    return isnan(a) || a > b ? a : b;
}

/* RAdam's rectification r, or 0 where rho < 5 (the unadapted branch). */
static inline double optim_radam_r(double b2, int64_t t) {
    double b2t = pow(b2, (double)t), rho_inf = 2.0 / (1.0 - b2) - 1.0;
    double rho = rho_inf - 2.0 * (double)t * b2t / (1.0 - b2t);
    if (rho < 5.0) return 0;
    return sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho));
}

/* o->kind must be known and o->t >= 1 (the ops check both first). */
static inline optim_coefs optim_coefs_of(const vd_optim_step *o) {
    optim_coefs k;
    k.bc1 = 1.0 - pow(o->beta1, (double)o->t);
    k.bc2 = 1.0 - pow(o->beta2, (double)o->t);
    k.r = o->kind == VD_OPT_RADAM ? optim_radam_r(o->beta2, o->t) : 0;
    return k;
}

/* The update direction u of one element before weight decay; m and v are already new. */
VD_HD static inline double optim_direction(const vd_optim_step *o, const optim_coefs *k, double m,
                                           double v) {
    double m_hat = m / k->bc1;
    switch (o->kind) {
    case VD_OPT_ADAMAX: return m_hat / v;
    case VD_OPT_ADAM: return m_hat / (sqrt(v / k->bc2) + o->eps);
    default: return k->r > 0 ? k->r * m_hat / (sqrt(v / k->bc2) + o->eps) : m_hat;
    }
}

/* One element of the update (ops.h): the moments m, v, then the parameter p, in place. */
VD_HD static inline void optim_elem(const vd_optim_step *o, const optim_coefs *k, float *p, float g,
                                    float *m, float *v) {
    double b1 = o->beta1, b2 = o->beta2;
    double gi = g, mi = b1 * *m + (1.0 - b1) * gi;
    double vi = o->kind == VD_OPT_ADAMAX ? optim_max_nan(b2 * *v, fabs(gi) + o->eps)
                                         : b2 * *v + (1.0 - b2) * gi * gi;
    double u = optim_direction(o, k, mi, vi) + o->weight_decay * *p;
    *m = (float)mi;
    *v = (float)vi;
    *p = (float)(*p - o->lr * u);
}

VD_HD static inline float optim_ema_elem(double decay, float ema, float p) {
    return (float)(decay * ema + (1.0 - decay) * p);
}

VD_HD static inline float optim_scale_elem(float a, float x) {
    return (float)((double)a * x);
}

#endif
