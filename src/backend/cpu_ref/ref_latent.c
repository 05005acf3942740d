/* cpu_ref Gaussian latents: statistics from the projection (std or logstd base, optional
 * residual prior), reparameterised sampling, the variate mask and the KL divergence, each
 * forward beside its backward. Noise element i is the flat NHWC index of z (see ops.h). */
#include "backend/cpu_ref/ref.h"
#include "backend/latent_math.h"
#include "vdvae/rng.h"

static bool base_known(vd_backend *be, const char *op, vd_dist_base base) {
    if (base == VD_BASE_STD || base == VD_BASE_LOGSTD) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: unknown distribution base %d", op, (int)base);
    return false;
}

static bool stats_shapes(vd_backend *be, const char *op, const vd_tensor *raw,
                         const vd_tensor *prior_mean, const vd_tensor *prior_p,
                         const vd_tensor *mean, const vd_tensor *p) {
    if (!vd_ref_valid(be, op, "raw", raw) || !vd_ref_valid(be, op, "mean", mean) ||
        !vd_ref_valid(be, op, "p", p) || !vd_ref_same_shape(be, op, mean, p))
        return false;
    if (raw->n != mean->n || raw->h != mean->h || raw->w != mean->w || raw->c != 2 * mean->c) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: raw has %d channels for %d variates", op, raw->c,
                        mean->c);
        return false;
    }
    if (!prior_mean && !prior_p) return true;
    if (!prior_mean || !prior_p) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: a residual prior needs both mean and p", op);
        return false;
    }
    return vd_ref_valid(be, op, "prior_mean", prior_mean) &&
           vd_ref_valid(be, op, "prior_p", prior_p) &&
           vd_ref_same_shape(be, op, prior_mean, mean) && vd_ref_same_shape(be, op, prior_p, p);
}

void vd_ref_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p) {
    if (!base_known(be, "latent_stats_fwd", base) ||
        !stats_shapes(be, "latent_stats_fwd", raw, prior_mean, prior_p, mean, p))
        return;
    int v = mean->c;
    for (int64_t q = 0; q < ref_pixels(mean); q++) {
        for (int c = 0; c < v; c++) {
            double m, sp;
            latent_stats_elem(base, beta, ref_px(raw, q)[c], ref_px(raw, q)[v + c], prior_mean != NULL,
                              prior_mean ? ref_px(prior_mean, q)[c] : 0, prior_mean ? ref_px(prior_p, q)[c] : 0, &m, &sp);
            ref_px(mean, q)[c] = (float)m;
            ref_px(p, q)[c] = (float)sp;
        }
    }
}

void vd_ref_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                             const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    const char *op = "latent_stats_bwd";
    if (!base_known(be, op, base) || !stats_shapes(be, op, raw, prior_mean, prior_p, dmean, dp) ||
        !vd_ref_valid(be, op, "draw", draw) || !vd_ref_same_shape(be, op, raw, draw))
        return;
    bool dprior = prior_mean && dprior_mean && dprior_p;
    if (dprior && (!vd_ref_same_shape(be, op, dprior_mean, dmean) ||
                   !vd_ref_same_shape(be, op, dprior_p, dp)))
        return;
    int v = dmean->c;
    for (int64_t q = 0; q < ref_pixels(dmean); q++) {
        for (int c = 0; c < v; c++) {
            double grm, grs, gpm, gpp;
            latent_stats_elem_bwd(base, beta, ref_px(raw, q)[v + c], prior_mean != NULL,
                                  prior_mean ? ref_px(prior_p, q)[c] : 1.0, ref_px(dmean, q)[c], ref_px(dp, q)[c],
                                  &grm, &grs, &gpm, &gpp);
            if (dprior) {
                ref_px(dprior_mean, q)[c] += (float)gpm;
                ref_px(dprior_p, q)[c] += (float)gpp;
            }
            ref_px(draw, q)[c] = (float)grm;
            ref_px(draw, q)[v + c] = (float)grs;
        }
    }
}

static bool sample_args(vd_backend *be, const char *op, vd_dist_base base, float temperature,
                        const vd_tensor *p, const vd_noise *noise, const vd_tensor *z) {
    if (!base_known(be, op, base) || !vd_ref_valid(be, op, "p", p) ||
        !vd_ref_valid(be, op, "z", z) || !vd_ref_same_shape(be, op, p, z))
        return false;
    if (noise && temperature >= 0) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: %s", op,
                    noise ? "temperature must not be negative" : "noise is missing");
    return false;
}

/* eps for element i: the given value or Philox normal i of (seed, stream). */
static double eps_at(const vd_noise *noise, int64_t i) {
    return noise->given ? noise->given[i] : vd_rng_normal(noise->seed, noise->stream, (uint64_t)i);
}

void vd_ref_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                              const vd_tensor *z) {
    const char *op = "latent_sample_fwd";
    if (!sample_args(be, op, base, temperature, p, noise, z) ||
        !vd_ref_valid(be, op, "mean", mean) || !vd_ref_same_shape(be, op, mean, z))
        return;
    for (int64_t q = 0; q < ref_pixels(z); q++) {
        for (int c = 0; c < z->c; c++) {
            double std = std_of(base, beta, ref_px(p, q)[c]) * temperature;
            double eps = eps_at(noise, q * z->c + c);
            ref_px(z, q)[c] = (float)(eps * std + ref_px(mean, q)[c]);
        }
    }
}

void vd_ref_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                              const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                              const vd_tensor *dmean, const vd_tensor *dp) {
    const char *op = "latent_sample_bwd";
    if (!sample_args(be, op, base, temperature, p, noise, dz)) return;
    if ((dmean &&
         (!vd_ref_valid(be, op, "dmean", dmean) || !vd_ref_same_shape(be, op, dmean, dz))) ||
        (dp && (!vd_ref_valid(be, op, "dp", dp) || !vd_ref_same_shape(be, op, dp, dz))))
        return;
    for (int64_t q = 0; q < ref_pixels(dz); q++) {
        for (int c = 0; c < dz->c; c++) {
            double g = ref_px(dz, q)[c];
            if (dmean) ref_px(dmean, q)[c] += (float)g;
            if (dp) {
                double eps = eps_at(noise, q * dz->c + c);
                ref_px(dp, q)[c] +=
                    (float)(g * temperature * eps * dstd_dp(base, beta, ref_px(p, q)[c]));
            }
        }
    }
}

void vd_ref_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior,
                        const vd_tensor *z) {
    if (!vd_ref_valid(be, "latent_mask", "z_prior", z_prior) ||
        !vd_ref_valid(be, "latent_mask", "z", z) ||
        !vd_ref_same_shape(be, "latent_mask", z_prior, z))
        return;
    REF_REQUIRE(be, mask, "latent_mask: the mask is missing");
    for (int64_t q = 0; q < ref_pixels(z); q++)
        for (int c = 0; c < z->c; c++)
            ref_px(z, q)[c] = mask[c] * ref_px(z, q)[c] + (1 - mask[c]) * ref_px(z_prior, q)[c];
}

static bool kl_shapes(vd_backend *be, const char *op, vd_dist_base base, const vd_tensor *const t[4]) {
    static const char *names[4] = {"post_mean", "post_p", "prior_mean", "prior_p"};
    if (!base_known(be, op, base)) return false;
    for (int i = 0; i < 4; i++)
        if (!vd_ref_valid(be, op, names[i], t[i]) || !vd_ref_same_shape(be, op, t[0], t[i]))
            return false;
    return true;
}

void vd_ref_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   float *sum, float *per_variate) {
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    if (!kl_shapes(be, "kl_fwd", base, t)) return;
    REF_REQUIRE(be, sum, "kl_fwd: sum is missing");
    int v = post_mean->c;
    double total = 0;
    for (int c = 0; c < v; c++) {
        double part = 0;
        for (int64_t q = 0; q < ref_pixels(post_mean); q++)
            part += kl_at(base, beta, ref_px(post_mean, q)[c], ref_px(post_p, q)[c],
                          ref_px(prior_mean, q)[c], ref_px(prior_p, q)[c])
                        .kl;
        total += part;
        if (per_variate) per_variate[c] += (float)part;
    }
    *sum = (float)total;
}

static void acc_grad(const vd_tensor *g, int64_t q, int c, double v) {
    if (g) ref_px(g, q)[c] += (float)v;
}

void vd_ref_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                   const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    const vd_tensor *d[4] = {dpost_mean, dpost_p, dprior_mean, dprior_p};
    if (!kl_shapes(be, "kl_bwd", base, t)) return;
    for (int i = 0; i < 4; i++)
        if (d[i] && (!vd_ref_valid(be, "kl_bwd", "gradient", d[i]) ||
                     !vd_ref_same_shape(be, "kl_bwd", t[0], d[i])))
            return;
    for (int64_t q = 0; q < ref_pixels(post_mean); q++) {
        for (int c = 0; c < post_mean->c; c++) {
            kl_point k = kl_at(base, beta, ref_px(post_mean, q)[c], ref_px(post_p, q)[c],
                               ref_px(prior_mean, q)[c], ref_px(prior_p, q)[c]);
            acc_grad(dpost_mean, q, c, scale * k.d_post_mean);
            acc_grad(dpost_p, q, c, scale * k.d_post_p);
            acc_grad(dprior_mean, q, c, scale * k.d_prior_mean);
            acc_grad(dprior_p, q, c, scale * k.d_prior_p);
        }
    }
}
