/* CUDA Gaussian latents: statistics, reparameterised sampling, the variate mask and the KL, one
 * thread per element around the per-element math cpu_ref uses (backend/latent_math.h). */
#include "backend/cuda/cuda.h"
#include "backend/latent_math.h"
#include "core/philox_math.h"

VD_CU_BEGIN

/* File-local functors: other kernel files share the namespace, and a second struct of the same
 * name there would be a silent ODR clash. */
namespace {

/* Kernels take tensors by value; an absent optional one is an empty view they never read. */
vd_tensor or_none(const vd_tensor *t) {
    return t ? *t : vd_tensor{};
}

bool base_known(vd_backend *be, const char *op, vd_dist_base base) {
    if (base == VD_BASE_STD || base == VD_BASE_LOGSTD) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: unknown distribution base %d", op, (int)base);
    return false;
}

bool stats_shapes(vd_backend *be, const char *op, const vd_tensor *raw, const vd_tensor *prior_mean,
                  const vd_tensor *prior_p, const vd_tensor *mean, const vd_tensor *p) {
    if (!vd_cu_valid(be, op, "raw", raw) || !vd_cu_valid(be, op, "mean", mean) ||
        !vd_cu_valid(be, op, "p", p) || !vd_cu_same_shape(be, op, mean, p))
        return false;
    if (raw->n != mean->n || raw->h != mean->h || raw->w != mean->w || raw->c != 2 * mean->c) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: raw has %d channels for %d variates", op, raw->c, mean->c);
        return false;
    }
    if (!prior_mean && !prior_p) return true;
    if (!prior_mean || !prior_p) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: a residual prior needs both mean and p", op);
        return false;
    }
    return vd_cu_valid(be, op, "prior_mean", prior_mean) && vd_cu_valid(be, op, "prior_p", prior_p) &&
           vd_cu_same_shape(be, op, prior_mean, mean) && vd_cu_same_shape(be, op, prior_p, p);
}

/* Element i of [N,H,W,V] reads raw's mean channel c and scale channel V + c of the same pixel. */
struct stats_fwd_f {
    vd_dist_base base;
    float beta;
    bool prior;
    vd_tensor raw, prior_mean, prior_p, mean, p;
    VD_HD void operator()(int64_t i) const {
        int v = mean.c, c = (int)(i % v);
        int64_t q = i / v;
        double m, sp;
        latent_stats_elem(base, beta, vd_cu_px(raw, q)[c], vd_cu_px(raw, q)[v + c], prior,
                          prior ? vd_cu_px(prior_mean, q)[c] : 0, prior ? vd_cu_px(prior_p, q)[c] : 0, &m, &sp);
        vd_cu_px(mean, q)[c] = (float)m;
        vd_cu_px(p, q)[c] = (float)sp;
    }
};

struct stats_bwd_f {
    vd_dist_base base;
    float beta;
    bool prior, dprior;
    vd_tensor raw, prior_p, dmean, dp, draw, dprior_mean, dprior_p;
    VD_HD void operator()(int64_t i) const {
        int v = dmean.c, c = (int)(i % v);
        int64_t q = i / v;
        double grm, grs, gpm, gpp;
        latent_stats_elem_bwd(base, beta, vd_cu_px(raw, q)[v + c], prior, prior ? vd_cu_px(prior_p, q)[c] : 1.0,
                              vd_cu_px(dmean, q)[c], vd_cu_px(dp, q)[c], &grm, &grs, &gpm, &gpp);
        if (dprior) {
            vd_cu_px(dprior_mean, q)[c] += (float)gpm;
            vd_cu_px(dprior_p, q)[c] += (float)gpp;
        }
        vd_cu_px(draw, q)[c] = (float)grm;
        vd_cu_px(draw, q)[v + c] = (float)grs;
    }
};

bool sample_args(vd_backend *be, const char *op, vd_dist_base base, float temperature, const vd_tensor *p,
                 const vd_noise *noise, const vd_tensor *z) {
    if (!base_known(be, op, base) || !vd_cu_valid(be, op, "p", p) || !vd_cu_valid(be, op, "z", z) ||
        !vd_cu_same_shape(be, op, p, z))
        return false;
    if (noise && temperature >= 0) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: %s", op,
                    noise ? "temperature must not be negative" : "noise is missing");
    return false;
}

/* eps of element i: the given value or Philox normal i, the bits cpu_ref draws. */
VD_HD double eps_at(const vd_noise &noise, int64_t i) {
    return noise.given ? noise.given[i] : vd_rng_normal_hd(noise.seed, noise.stream, (uint64_t)i);
}

struct sample_fwd_f {
    vd_dist_base base;
    float beta, temperature;
    vd_noise noise;
    vd_tensor mean, p, z;
    VD_HD void operator()(int64_t i) const {
        double std = std_of(base, beta, vd_cu_el(p, i)) * temperature;
        vd_cu_el(z, i) = (float)(eps_at(noise, i) * std + vd_cu_el(mean, i));
    }
};

struct sample_bwd_f {
    vd_dist_base base;
    float beta, temperature;
    vd_noise noise;
    vd_tensor p, dz, dmean, dp; /* dmean, dp: data NULL when not wanted */
    VD_HD void operator()(int64_t i) const {
        double g = vd_cu_el(dz, i);
        if (dmean.data) vd_cu_el(dmean, i) += (float)g;
        if (dp.data)
            vd_cu_el(dp, i) += (float)(g * temperature * eps_at(noise, i) * dstd_dp(base, beta, vd_cu_el(p, i)));
    }
};

struct mask_f {
    const float *mask;
    vd_tensor z_prior, z;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % z.c);
        vd_cu_el(z, i) = mask[c] * vd_cu_el(z, i) + (1 - mask[c]) * vd_cu_el(z_prior, i);
    }
};

bool kl_shapes(vd_backend *be, const char *op, vd_dist_base base, const vd_tensor *const t[4]) {
    static const char *names[4] = {"post_mean", "post_p", "prior_mean", "prior_p"};
    if (!base_known(be, op, base)) return false;
    for (int i = 0; i < 4; i++)
        if (!vd_cu_valid(be, op, names[i], t[i]) || !vd_cu_same_shape(be, op, t[0], t[i])) return false;
    return true;
}

/* The four KL operands, read at pixel q, channel c. */
struct kl_in {
    vd_dist_base base;
    float beta;
    vd_tensor pm, pp, qm, qp;
    VD_HD kl_point at(int64_t q, int c) const {
        return kl_at(base, beta, vd_cu_px(pm, q)[c], vd_cu_px(pp, q)[c], vd_cu_px(qm, q)[c], vd_cu_px(qp, q)[c]);
    }
};

/* Row r of the reduction is variate r, so its partial sums give per_variate directly. */
struct kl_row_f {
    kl_in in;
    VD_HD double operator()(int r, int64_t q) const {
        return in.at(q, r).kl;
    }
};

/* One thread: the total in channel order, as cpu_ref adds its per-channel parts. */
struct kl_total_f {
    const double *acc;
    int v;
    float *sum;
    VD_HD void operator()(int64_t) const {
        double total = 0;
        for (int c = 0; c < v; c++) total += acc[c];
        *sum = (float)total;
    }
};

struct kl_bwd_f {
    kl_in in;
    float scale;
    vd_tensor dpm, dpp, dqm, dqp; /* data NULL: gradient not wanted */
    VD_HD static void acc(const vd_tensor &g, int64_t q, int c, double v) {
        if (g.data) vd_cu_px(g, q)[c] += (float)v;
    }
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % in.pm.c);
        int64_t q = i / in.pm.c;
        kl_point k = in.at(q, c);
        acc(dpm, q, c, scale * k.d_post_mean);
        acc(dpp, q, c, scale * k.d_post_p);
        acc(dqm, q, c, scale * k.d_prior_mean);
        acc(dqp, q, c, scale * k.d_prior_p);
    }
};

} // namespace

void vd_cu_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                            const vd_tensor *prior_mean, const vd_tensor *prior_p, const vd_tensor *mean,
                            const vd_tensor *p) {
    const char *op = "latent_stats_fwd";
    if (vd_cu_failed(be) || !base_known(be, op, base) || !stats_shapes(be, op, raw, prior_mean, prior_p, mean, p))
        return;
    stats_fwd_f f{base, beta, prior_mean != NULL, *raw, or_none(prior_mean), or_none(prior_p), *mean, *p};
    vd_cu_for(be, op, vd_cu_numel(*mean), f);
}

void vd_cu_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                            const vd_tensor *prior_mean, const vd_tensor *prior_p, const vd_tensor *dmean,
                            const vd_tensor *dp, const vd_tensor *draw, const vd_tensor *dprior_mean,
                            const vd_tensor *dprior_p) {
    const char *op = "latent_stats_bwd";
    if (vd_cu_failed(be) || !base_known(be, op, base) || !stats_shapes(be, op, raw, prior_mean, prior_p, dmean, dp) ||
        !vd_cu_valid(be, op, "draw", draw) || !vd_cu_same_shape(be, op, raw, draw))
        return;
    bool dprior = prior_mean && dprior_mean && dprior_p;
    if (dprior && (!vd_cu_same_shape(be, op, dprior_mean, dmean) || !vd_cu_same_shape(be, op, dprior_p, dp)))
        return;
    stats_bwd_f f{base, beta, prior_mean != NULL, dprior, *raw, or_none(prior_p), *dmean, *dp, *draw,
                  dprior ? *dprior_mean : vd_tensor{}, dprior ? *dprior_p : vd_tensor{}};
    vd_cu_for(be, op, vd_cu_numel(*dmean), f);
}

void vd_cu_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                             const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise, const vd_tensor *z) {
    const char *op = "latent_sample_fwd";
    if (vd_cu_failed(be) || !sample_args(be, op, base, temperature, p, noise, z) || !vd_cu_valid(be, op, "mean", mean) ||
        !vd_cu_same_shape(be, op, mean, z))
        return;
    vd_cu_for(be, op, vd_cu_numel(*z), sample_fwd_f{base, beta, temperature, *noise, *mean, *p, *z});
}

void vd_cu_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                             const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                             const vd_tensor *dmean, const vd_tensor *dp) {
    const char *op = "latent_sample_bwd";
    if (vd_cu_failed(be) || !sample_args(be, op, base, temperature, p, noise, dz)) return;
    if ((dmean && (!vd_cu_valid(be, op, "dmean", dmean) || !vd_cu_same_shape(be, op, dmean, dz))) ||
        (dp && (!vd_cu_valid(be, op, "dp", dp) || !vd_cu_same_shape(be, op, dp, dz))))
        return;
    sample_bwd_f f{base, beta, temperature, *noise, *p, *dz, or_none(dmean), or_none(dp)};
    vd_cu_for(be, op, vd_cu_numel(*dz), f);
}

void vd_cu_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior, const vd_tensor *z) {
    const char *op = "latent_mask";
    if (vd_cu_failed(be) || !vd_cu_valid(be, op, "z_prior", z_prior) || !vd_cu_valid(be, op, "z", z) ||
        !vd_cu_same_shape(be, op, z_prior, z))
        return;
    VD_CU_REQUIRE(be, mask, "latent_mask: the mask is missing");
    vd_cu_for(be, op, vd_cu_numel(*z), mask_f{mask, *z_prior, *z});
}

void vd_cu_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                  const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p, float *sum,
                  float *per_variate) {
    const char *op = "kl_fwd";
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    if (vd_cu_failed(be) || !kl_shapes(be, op, base, t)) return;
    VD_CU_REQUIRE(be, sum, "kl_fwd: sum is missing");
    int v = post_mean->c;
    double *acc = vd_cu_acc(be, op, v);
    if (!acc) return;
    kl_in in{base, beta, *post_mean, *post_p, *prior_mean, *prior_p};
    vd_cu_sum_rows(be, op, v, vd_cu_pixels(*post_mean), kl_row_f{in}, acc);
    if (per_variate) vd_cu_store(be, op, acc, per_variate, v, true);
    vd_cu_for(be, op, 1, kl_total_f{acc, v, sum});
}

void vd_cu_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                  const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                  const vd_tensor *dpost_mean, const vd_tensor *dpost_p, const vd_tensor *dprior_mean,
                  const vd_tensor *dprior_p) {
    const char *op = "kl_bwd";
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    const vd_tensor *d[4] = {dpost_mean, dpost_p, dprior_mean, dprior_p};
    if (vd_cu_failed(be) || !kl_shapes(be, op, base, t)) return;
    for (int i = 0; i < 4; i++)
        if (d[i] && (!vd_cu_valid(be, op, "gradient", d[i]) || !vd_cu_same_shape(be, op, t[0], d[i]))) return;
    kl_bwd_f f{{base, beta, *post_mean, *post_p, *prior_mean, *prior_p},
               scale,
               or_none(dpost_mean),
               or_none(dpost_p),
               or_none(dprior_mean),
               or_none(dprior_p)};
    vd_cu_for(be, op, vd_cu_numel(*post_mean), f);
}

VD_CU_END
