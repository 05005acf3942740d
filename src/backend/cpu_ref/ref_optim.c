/* cpu_ref optimisation ops: the optimizer update, the EMA of the weights and gradient
 * scaling, as plain loops around the double math of backend/optim_math.h (rounded to float
 * only when stored), the oracle for the fast backends. Formulas are the contract in ops.h. */
#include "backend/cpu_ref/ref.h"
#include "backend/optim_math.h"

void vd_ref_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n) {
    REF_REQUIRE(be, o && (n == 0 || (p && g && m && v)), "optim_update: a buffer is missing");
    REF_REQUIRE(be, o->kind == VD_OPT_ADAMAX || o->kind == VD_OPT_ADAM || o->kind == VD_OPT_RADAM,
                "optim_update: unknown optimizer kind %d", (int)o->kind);
    REF_REQUIRE(be, o->t >= 1, "optim_update: step count %lld is not 1-based", (long long)o->t);
    optim_coefs k = optim_coefs_of(o);
    for (size_t i = 0; i < n; i++)
        optim_elem(o, &k, &p[i], g[i], &m[i], &v[i]);
}

void vd_ref_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n) {
    REF_REQUIRE(be, n == 0 || (p && ema), "ema_update: a buffer is missing");
    for (size_t i = 0; i < n; i++)
        ema[i] = optim_ema_elem(decay, ema[i], p[i]);
}

void vd_ref_scale(vd_backend *be, float a, float *x, size_t n) {
    REF_REQUIRE(be, n == 0 || x, "scale: x is missing");
    for (size_t i = 0; i < n; i++)
        x[i] = optim_scale_elem(a, x[i]);
}
