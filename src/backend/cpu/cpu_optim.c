/* cpu optimisation ops: the optimizer update, the EMA of the weights and gradient scaling
 * over flat buffers, as OpenMP loops of float math. The per-step coefficients (1 - beta,
 * bias corrections, RAdam's r) are computed once in double and rounded, so each element is
 * a few roundings away from cpu_ref's double result and no element depends on another. */
#include <math.h>

#include "backend/cpu/cpu.h"

/* Elements per parallel task: the update streams seven floats per element, so this keeps
 * each task's working set within L2 while leaving enough tasks to spread. */
#define OPT_BLOCK 8192

typedef struct optim_coefs {
    float b1, one_minus_b1, b2, one_minus_b2, eps;
    float inv_bc1, inv_bc2; /* 1 / (1 - beta^t) */
    float r;                /* Adam: 1; RAdam: the rectification, 0 on the unadapted branch */
    float lr, wd;
} optim_coefs;

static optim_coefs coefs_of(const vd_optim_step *o) {
    double t = (double)o->t, b2t = pow(o->beta2, t);
    double r = 1.0;
    if (o->kind == VD_OPT_RADAM) {
        double rho_inf = 2.0 / (1.0 - o->beta2) - 1.0;
        double rho = rho_inf - 2.0 * t * b2t / (1.0 - b2t);
        double q = (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho);
        r = rho < 5.0 ? 0.0 : sqrt(q);
    }
    return (optim_coefs){
        .b1 = (float)o->beta1, .one_minus_b1 = (float)(1.0 - o->beta1),
        .b2 = (float)o->beta2, .one_minus_b2 = (float)(1.0 - o->beta2), .eps = (float)o->eps,
        .inv_bc1 = (float)(1.0 / (1.0 - pow(o->beta1, t))), .inv_bc2 = (float)(1.0 / (1.0 - b2t)),
        .r = (float)r, .lr = (float)o->lr, .wd = (float)o->weight_decay,
    };
}

/* v = max(b2 v, |g| + eps), a NaN on either side kept (jnp.maximum). */
CPU_SIMD_CLONES static void adamax_run(const optim_coefs *k, float *restrict p,
                                       const float *restrict g, float *restrict m,
                                       float *restrict v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float mi = k->b1 * m[i] + k->one_minus_b1 * g[i];
        float a = k->b2 * v[i], b = fabsf(g[i]) + k->eps;
        float vi = (a > b || a != a) ? a : b;
        float u = mi * k->inv_bc1 / vi + k->wd * p[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= k->lr * u;
    }
}

/* Adam, and RAdam with r > 0 (rectified) or r == 0 (plain bias-corrected momentum). */
CPU_SIMD_CLONES static void adam_run(const optim_coefs *k, float *restrict p,
                                     const float *restrict g, float *restrict m,
                                     float *restrict v, int64_t n) {
    bool adaptive = k->r > 0;
    for (int64_t i = 0; i < n; i++) {
        float mi = k->b1 * m[i] + k->one_minus_b1 * g[i];
        float vi = k->b2 * v[i] + k->one_minus_b2 * (g[i] * g[i]);
        float m_hat = mi * k->inv_bc1;
        float dir = adaptive ? k->r * m_hat / (sqrtf(vi * k->inv_bc2) + k->eps) : m_hat;
        m[i] = mi;
        v[i] = vi;
        p[i] -= k->lr * (dir + k->wd * p[i]);
    }
}

void vd_cpu_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                         float *m, float *v, size_t n) {
    CPU_REQUIRE(be, o && (n == 0 || (p && g && m && v)), "cpu optim_update: a buffer is missing");
    CPU_REQUIRE(be, o->kind == VD_OPT_ADAMAX || o->kind == VD_OPT_ADAM || o->kind == VD_OPT_RADAM,
                "cpu optim_update: unknown optimizer kind %d", (int)o->kind);
    CPU_REQUIRE(be, o->t >= 1, "cpu optim_update: step count %lld is not 1-based",
                (long long)o->t);
    optim_coefs k = coefs_of(o);
    int64_t total = (int64_t)n, blocks = cpu_chunks(total, OPT_BLOCK);
    bool adamax = o->kind == VD_OPT_ADAMAX;
    CPU_PARALLEL_FOR(total)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t first = b * OPT_BLOCK, len = total - first < OPT_BLOCK ? total - first : OPT_BLOCK;
        if (adamax)
            adamax_run(&k, p + first, g + first, m + first, v + first, len);
        else
            adam_run(&k, p + first, g + first, m + first, v + first, len);
    }
}

CPU_SIMD_CLONES static void ema_run(float d, float a, const float *restrict p,
                                    float *restrict ema, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        ema[i] = d * ema[i] + a * p[i];
}

void vd_cpu_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n) {
    CPU_REQUIRE(be, n == 0 || (p && ema), "cpu ema_update: a buffer is missing");
    float d = (float)decay, a = (float)(1.0 - decay);
    int64_t total = (int64_t)n, blocks = cpu_chunks(total, OPT_BLOCK);
    CPU_PARALLEL_FOR(total)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t first = b * OPT_BLOCK, len = total - first < OPT_BLOCK ? total - first : OPT_BLOCK;
        ema_run(d, a, p + first, ema + first, len);
    }
}

CPU_SIMD_CLONES static void scale_run(float a, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

void vd_cpu_scale(vd_backend *be, float a, float *x, size_t n) {
    CPU_REQUIRE(be, n == 0 || x, "cpu scale: x is missing");
    int64_t total = (int64_t)n, blocks = cpu_chunks(total, OPT_BLOCK);
    CPU_PARALLEL_FOR(total)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t first = b * OPT_BLOCK, len = total - first < OPT_BLOCK ? total - first : OPT_BLOCK;
        scale_run(a, x + first, len);
    }
}
