/* CUDA optimisation ops over flat buffers: the sum of squares behind the gradient norm, the
 * optimizer update, the weights' EMA and gradient scaling, one thread per element around the
 * double math cpu_ref uses (backend/optim_math.h). */
#include "backend/cuda/cuda.h"
#include "backend/optim_math.h"

VD_CU_BEGIN

/* File-local functors: other kernel files share the namespace, and a second struct of the same
 * name there would be a silent ODR clash. */
namespace {

struct square_f {
    const float *x;
    VD_HD double operator()(int64_t i) const {
        return (double)x[i] * x[i];
    }
};

/* The step and its coefficients travel by value: o points to host memory. */
struct update_f {
    vd_optim_step o;
    optim_coefs k;
    float *p, *m, *v;
    const float *g;
    VD_HD void operator()(int64_t i) const {
        optim_elem(&o, &k, &p[i], g[i], &m[i], &v[i]);
    }
};

struct ema_f {
    double decay;
    const float *p;
    float *ema;
    VD_HD void operator()(int64_t i) const {
        ema[i] = optim_ema_elem(decay, ema[i], p[i]);
    }
};

struct scale_f {
    float a;
    float *x;
    VD_HD void operator()(int64_t i) const {
        x[i] = optim_scale_elem(a, x[i]);
    }
};

} // namespace

/* Summed in double, so the float result is cpu_ref's ordered sum to an ulp or so whatever the
 * order the blocks add in. */
void vd_cu_sum_squares(vd_backend *be, const float *x, size_t n, float *out) {
    if (vd_cu_failed(be)) return;
    VD_CU_REQUIRE(be, out && (x || n == 0), "sum_squares: %s is missing", out ? "x" : "out");
    double *acc = vd_cu_acc(be, "sum_squares", 1);
    if (!acc) return;
    vd_cu_sum(be, "sum_squares", (int64_t)n, square_f{x}, acc);
    vd_cu_store(be, "sum_squares", acc, out, 1, false);
}

void vd_cu_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g, float *m,
                        float *v, size_t n) {
    if (vd_cu_failed(be)) return;
    VD_CU_REQUIRE(be, o && (n == 0 || (p && g && m && v)), "optim_update: a buffer is missing");
    VD_CU_REQUIRE(be, o->kind == VD_OPT_ADAMAX || o->kind == VD_OPT_ADAM || o->kind == VD_OPT_RADAM,
                  "optim_update: unknown optimizer kind %d", (int)o->kind);
    VD_CU_REQUIRE(be, o->t >= 1, "optim_update: step count %lld is not 1-based", (long long)o->t);
    vd_cu_for(be, "optim_update", (int64_t)n, update_f{*o, optim_coefs_of(o), p, m, v, g});
}

void vd_cu_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n) {
    if (vd_cu_failed(be)) return;
    VD_CU_REQUIRE(be, n == 0 || (p && ema), "ema_update: a buffer is missing");
    vd_cu_for(be, "ema_update", (int64_t)n, ema_f{decay, p, ema});
}

void vd_cu_scale(vd_backend *be, float a, float *x, size_t n) {
    if (vd_cu_failed(be)) return;
    VD_CU_REQUIRE(be, n == 0 || x, "scale: x is missing");
    vd_cu_for(be, "scale", (int64_t)n, scale_f{a, x});
}

VD_CU_END
