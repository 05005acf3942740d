/* cpu_ref optimisation ops: the optimizer update, the EMA of the weights and gradient
 * scaling, as plain loops in double (rounded to float only when stored), the oracle for the
 * fast backends. Formulas are the contract in ops.h. */
#include "backend/cpu_ref/ref.h"

/* jnp.maximum: a NaN on either side wins. */
static double ref_max_nan(double a, double b) {
    return isnan(a) || a > b ? a : b;
}

/* RAdam's rectification r, or 0 where rho < 5 (the unadapted branch). */
static double ref_radam_r(double b2, int64_t t) {
    double b2t = pow(b2, (double)t), rho_inf = 2.0 / (1.0 - b2) - 1.0;
    double rho = rho_inf - 2.0 * (double)t * b2t / (1.0 - b2t);
    if (rho < 5.0) return 0;
    return sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho));
}

/* The update direction u of one element before weight decay; m and v are already new. */
static double ref_direction(const vd_optim_step *o, double m, double v, double bc1, double bc2,
                            double r) {
    double m_hat = m / bc1;
    switch (o->kind) {
    case VD_OPT_ADAMAX: return m_hat / v;
    case VD_OPT_ADAM: return m_hat / (sqrt(v / bc2) + o->eps);
    default: return r > 0 ? r * m_hat / (sqrt(v / bc2) + o->eps) : m_hat;
    }
}

void vd_ref_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n) {
    REF_REQUIRE(be, o && (n == 0 || (p && g && m && v)), "optim_update: a buffer is missing");
    REF_REQUIRE(be, o->kind == VD_OPT_ADAMAX || o->kind == VD_OPT_ADAM || o->kind == VD_OPT_RADAM,
                "optim_update: unknown optimizer kind %d", (int)o->kind);
    REF_REQUIRE(be, o->t >= 1, "optim_update: step count %lld is not 1-based", (long long)o->t);
    double b1 = o->beta1, b2 = o->beta2;
    double bc1 = 1.0 - pow(b1, (double)o->t), bc2 = 1.0 - pow(b2, (double)o->t);
    double r = o->kind == VD_OPT_RADAM ? ref_radam_r(b2, o->t) : 0;
    for (size_t i = 0; i < n; i++) {
        double gi = g[i], mi = b1 * m[i] + (1.0 - b1) * gi;
        double vi = o->kind == VD_OPT_ADAMAX ? ref_max_nan(b2 * v[i], fabs(gi) + o->eps)
                                             : b2 * v[i] + (1.0 - b2) * gi * gi;
        double u = ref_direction(o, mi, vi, bc1, bc2, r) + o->weight_decay * p[i];
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)(p[i] - o->lr * u);
    }
}

void vd_ref_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n) {
    REF_REQUIRE(be, n == 0 || (p && ema), "ema_update: a buffer is missing");
    for (size_t i = 0; i < n; i++)
        ema[i] = (float)(decay * ema[i] + (1.0 - decay) * p[i]);
}

void vd_ref_scale(vd_backend *be, float a, float *x, size_t n) {
    REF_REQUIRE(be, n == 0 || x, "scale: x is missing");
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((double)a * x[i]);
}
