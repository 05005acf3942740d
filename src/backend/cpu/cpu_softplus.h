/* torch.nn.Softplus(beta) and its slope in float for the latent scales of cpu_latent.c:
 * branch-free, so the per-pixel loops vectorise, and within 3 ulp of latent_math.h's
 * double versions (tests/test_cpu_latent_fast.c sweeps them). torch's threshold stays exact:
 * softplus is x where beta x > 20 in real arithmetic, as the double reference decides it.
 *
 * softplus_beta(x) = max(x, 0) + log1p(e) / beta and its slope sigmoid(beta x) = 1 / (1 + e)
 * or e / (1 + e) by the sign of x, both from one e = e^-beta|x|. beta x is formed in double,
 * where a product of two floats is exact, and handed on as a float pair: rounded to a float,
 * beta x would put |beta x| / 2 ulp of error into e, 10 ulp at the threshold. */
#ifndef VD_BACKEND_CPU_CPU_SOFTPLUS_H
#define VD_BACKEND_CPU_CPU_SOFTPLUS_H

#include <math.h>
#include <stdbool.h>

#include "backend/cpu/cpu_math.h"

/* beta and the bits of the least float x with beta x > 20, from where softplus is linear.
 * That float is positive, so x >= it is a compare of the bits as int32 (a negative x's are
 * negative), which vectorises where a float compare would not (cpu_math.h). */
typedef struct cpu_softplus {
    float beta;
    int32_t linear_from;
} cpu_softplus;

/* false for a beta this path does not serve (it needs a finite beta > 0) */
static inline bool cpu_softplus_init(cpu_softplus *sp, float beta) {
    if (!(beta > 0) || !isfinite(beta)) return false;
    float t = (float)(20.0 / beta); /* within an ulp or two of the threshold */
    while (t > 0 && (double)beta * t > 20.0)
        t = nextafterf(t, 0);
    while (!((double)beta * t > 20.0))
        t = nextafterf(t, INFINITY);
    sp->beta = beta;
    sp->linear_from = (int32_t)vd_f2u(t);
    return true;
}

/* softplus_beta(x) and its slope; NaN gives NaN for both, +-inf what the reference gives. */
static inline void cpu_softplus_eval(cpu_softplus sp, float x, float *value, float *slope) {
    double a = fabs((double)sp.beta * x); /* exact */
    float a_hi = (float)a, a_lo = (float)(a - (double)a_hi);
    float e = cpu_exp_neg_pair(a_hi, a_lo);
    uint32_t ux = vd_f2u(x);
    uint32_t neg = (uint32_t)((int32_t)ux >> 31);
    uint32_t linear = (uint32_t)-(int32_t)((int32_t)ux >= sp.linear_from);
    uint32_t nan = (uint32_t)-(int32_t)((ux & 0x7FFFFFFFu) > 0x7F800000u);
    float v = vd_u2f(ux & ~neg) + cpu_log1p_unit(e) / sp.beta;
    float s = cpu_select(neg, e, 1.0f) / (1.0f + e);
    *value = cpu_select(linear | nan, x, v);
    *slope = cpu_select(nan, x, cpu_select(linear, 1.0f, s));
}

/* One of the two, the other's math left to the compiler to drop. */
static inline float cpu_softplus_value(cpu_softplus sp, float x) {
    float v, s;
    cpu_softplus_eval(sp, x, &v, &s);
    return v;
}
static inline float cpu_softplus_slope(cpu_softplus sp, float x) {
    float v, s;
    cpu_softplus_eval(sp, x, &v, &s);
    return s;
}

#endif
