/* Per-element math of the activations (SiLU, LeakyReLU, Softplus) and their derivatives,
 * shared by cpu_ref and the CUDA kernels (each keeps its own loops and checks). In double,
 * rounded to float only by the caller, as the oracle computes. */
#ifndef VD_BACKEND_ACT_MATH_H
#define VD_BACKEND_ACT_MATH_H

#include <math.h>

#include "backend/ops.h"
#include "core/hd.h"

/* The logistic function in the form that never overflows exp. */
VD_HD static inline double act_sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
/* torch.nn.Softplus(beta): linear where beta x > 20, and its slope (1 past the threshold). */
VD_HD static inline double act_softplus(double x, double beta) {
    return beta * x > 20.0 ? x : log1p(exp(beta * x)) / beta;
}
VD_HD static inline double act_softplus_grad(double x, double beta) {
    return beta * x > 20.0 ? 1.0 : act_sigmoid(beta * x);
}

VD_HD static inline bool act_is_known(vd_act act) {
    return act == VD_ACT_SILU || act == VD_ACT_LEAKY_RELU || act == VD_ACT_SOFTPLUS;
}

/* f(x); param is LeakyReLU's alpha or Softplus's beta. */
VD_HD static inline double act_value(vd_act act, double param, double x) {
    switch (act) {
    case VD_ACT_SILU:
        return x * act_sigmoid(x);
    case VD_ACT_LEAKY_RELU:
        return x > 0 ? x : param * x;
    case VD_ACT_SOFTPLUS:
        return act_softplus(x, param);
    }
    return 0;
}

/* f'(x) as torch defines it: leaky_relu passes alpha at x == 0, softplus is 1 past its
 * threshold. */
VD_HD static inline double act_slope(vd_act act, double param, double x) {
    switch (act) {
    case VD_ACT_SILU: {
        double s = act_sigmoid(x);
        return s * (1 + x * (1 - s));
    }
    case VD_ACT_LEAKY_RELU:
        return x > 0 ? 1 : param;
    case VD_ACT_SOFTPLUS:
        return act_softplus_grad(x, param);
    }
    return 0;
}

#endif
