/* cpu Gaussian latents: statistics from the projection, reparameterised sampling, the variate
 * mask and the KL divergence, parallel over pixels. Latent tensors are small (V channels), so
 * the math is in double like cpu_ref's: samples come out the same bits on both backends and
 * the KL sum is reduced in fixed chunks (cpu.h), the same at any thread count. */
#include <math.h>

#include "backend/cpu/cpu.h"
#include "backend/latent_math.h"
#include "vdvae/rng.h"

#define KL_CHUNK 256    /* pixels per chunk of the KL sum */
#define NOISE_GROUP 64  /* Philox draws made at a time, a block per four */

static bool base_known(vd_backend *be, const char *op, int base) {
    if (base == VD_BASE_STD || base == VD_BASE_LOGSTD) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: unknown distribution base %d", op, base);
    return false;
}

static bool stats_shapes(vd_backend *be, const char *op, const vd_tensor *raw,
                         const vd_tensor *prior_mean, const vd_tensor *prior_p,
                         const vd_tensor *mean, const vd_tensor *p) {
    if (!vd_cpu_valid(be, op, "raw", raw) || !vd_cpu_valid(be, op, "mean", mean) ||
        !vd_cpu_valid(be, op, "p", p) || !vd_cpu_same_shape(be, op, mean, p))
        return false;
    if (raw->n != mean->n || raw->h != mean->h || raw->w != mean->w || raw->c != 2 * mean->c) {
        vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: raw has %d channels for %d variates", op,
                        raw->c, mean->c);
        return false;
    }
    if (!prior_mean && !prior_p) return true;
    if (!prior_mean || !prior_p) {
        vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: a residual prior needs both mean and p", op);
        return false;
    }
    return vd_cpu_valid(be, op, "prior_mean", prior_mean) &&
           vd_cpu_valid(be, op, "prior_p", prior_p) &&
           vd_cpu_same_shape(be, op, prior_mean, mean) && vd_cpu_same_shape(be, op, prior_p, p);
}

void vd_cpu_latent_stats_fwd(vd_backend *be, int base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p) {
    if (!base_known(be, "latent_stats_fwd", base) ||
        !stats_shapes(be, "latent_stats_fwd", raw, prior_mean, prior_p, mean, p))
        return;
    int v = mean->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(raw))
    for (int64_t q = 0; q < cpu_pixels(mean); q++) {
        const float *r = cpu_px(raw, q);
        for (int c = 0; c < v; c++) {
            double m, sp;
            latent_stats_elem(base, beta, r[c], r[v + c], prior_mean != NULL,
                              prior_mean ? cpu_px(prior_mean, q)[c] : 0, prior_mean ? cpu_px(prior_p, q)[c] : 0, &m, &sp);
            cpu_px(mean, q)[c] = (float)m;
            cpu_px(p, q)[c] = (float)sp;
        }
    }
}

void vd_cpu_latent_stats_bwd(vd_backend *be, int base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                             const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    const char *op = "latent_stats_bwd";
    if (!base_known(be, op, base) || !stats_shapes(be, op, raw, prior_mean, prior_p, dmean, dp) ||
        !vd_cpu_valid(be, op, "draw", draw) || !vd_cpu_same_shape(be, op, raw, draw))
        return;
    bool dprior = prior_mean && dprior_mean && dprior_p;
    if (dprior && (!vd_cpu_same_shape(be, op, dprior_mean, dmean) ||
                   !vd_cpu_same_shape(be, op, dprior_p, dp)))
        return;
    int v = dmean->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(raw))
    for (int64_t q = 0; q < cpu_pixels(dmean); q++) {
        for (int c = 0; c < v; c++) {
            double grm, grs, gpm, gpp;
            latent_stats_elem_bwd(base, beta, cpu_px(raw, q)[v + c], prior_mean != NULL,
                                  prior_mean ? cpu_px(prior_p, q)[c] : 1.0, cpu_px(dmean, q)[c], cpu_px(dp, q)[c],
                                  &grm, &grs, &gpm, &gpp);
            if (dprior) {
                cpu_px(dprior_mean, q)[c] += (float)gpm;
                cpu_px(dprior_p, q)[c] += (float)gpp;
            }
            cpu_px(draw, q)[c] = (float)grm;
            cpu_px(draw, q)[v + c] = (float)grs;
        }
    }
}

static bool sample_args(vd_backend *be, const char *op, int base, float temperature,
                        const vd_tensor *p, const vd_noise *noise, const vd_tensor *z) {
    if (!base_known(be, op, base) || !vd_cpu_valid(be, op, "p", p) ||
        !vd_cpu_valid(be, op, "z", z) || !vd_cpu_same_shape(be, op, p, z))
        return false;
    if (noise && temperature >= 0) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: %s", op,
                    noise ? "temperature must not be negative" : "noise is missing");
    return false;
}

/* eps for elements [first, first + n) (n <= NOISE_GROUP): the given values or Philox
 * normals of (seed, stream), drawn a block at a time. */
static void eps_group(const vd_noise *noise, int64_t first, int n, float *eps) {
    if (noise->given) {
        for (int i = 0; i < n; i++)
            eps[i] = noise->given[first + i];
    } else {
        vd_rng_fill_normal(noise->seed, noise->stream, (uint64_t)first, (size_t)n, eps);
    }
}

void vd_cpu_latent_sample_fwd(vd_backend *be, int base, float beta, float temperature,
                              const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                              const vd_tensor *z) {
    const char *op = "latent_sample_fwd";
    if (!sample_args(be, op, base, temperature, p, noise, z) ||
        !vd_cpu_valid(be, op, "mean", mean) || !vd_cpu_same_shape(be, op, mean, z))
        return;
    int v = z->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(z))
    for (int64_t q = 0; q < cpu_pixels(z); q++) {
        const float *m = cpu_px(mean, q), *s = cpu_px(p, q);
        float *out = cpu_px(z, q), eps[NOISE_GROUP];
        for (int c0 = 0; c0 < v; c0 += NOISE_GROUP) {
            int cn = v - c0 < NOISE_GROUP ? v - c0 : NOISE_GROUP;
            eps_group(noise, q * v + c0, cn, eps);
            for (int k = 0; k < cn; k++) {
                double std = std_of(base, beta, s[c0 + k]) * temperature;
                out[c0 + k] = (float)(eps[k] * std + m[c0 + k]);
            }
        }
    }
}

void vd_cpu_latent_sample_bwd(vd_backend *be, int base, float beta, float temperature,
                              const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                              const vd_tensor *dmean, const vd_tensor *dp) {
    const char *op = "latent_sample_bwd";
    if (!sample_args(be, op, base, temperature, p, noise, dz)) return;
    if ((dmean &&
         (!vd_cpu_valid(be, op, "dmean", dmean) || !vd_cpu_same_shape(be, op, dmean, dz))) ||
        (dp && (!vd_cpu_valid(be, op, "dp", dp) || !vd_cpu_same_shape(be, op, dp, dz))))
        return;
    int v = dz->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(dz))
    for (int64_t q = 0; q < cpu_pixels(dz); q++) {
        const float *g = cpu_px(dz, q);
        if (dmean)
            for (int c = 0; c < v; c++)
                cpu_px(dmean, q)[c] += g[c];
        if (!dp) continue;
        const float *s = cpu_px(p, q);
        float eps[NOISE_GROUP];
        for (int c0 = 0; c0 < v; c0 += NOISE_GROUP) {
            int cn = v - c0 < NOISE_GROUP ? v - c0 : NOISE_GROUP;
            eps_group(noise, q * v + c0, cn, eps);
            for (int k = 0; k < cn; k++)
                cpu_px(dp, q)[c0 + k] += (float)((double)g[c0 + k] * temperature * eps[k] *
                                                 dstd_dp(base, beta, s[c0 + k]));
        }
    }
}

void vd_cpu_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior,
                        const vd_tensor *z) {
    if (!vd_cpu_valid(be, "latent_mask", "z_prior", z_prior) ||
        !vd_cpu_valid(be, "latent_mask", "z", z) ||
        !vd_cpu_same_shape(be, "latent_mask", z_prior, z))
        return;
    CPU_REQUIRE(be, mask, "cpu latent_mask: the mask is missing");
    CPU_PARALLEL_FOR(vd_tensor_numel(z))
    for (int64_t q = 0; q < cpu_pixels(z); q++) {
        float *out = cpu_px(z, q);
        const float *zp = cpu_px(z_prior, q);
        for (int c = 0; c < z->c; c++)
            out[c] = mask[c] * out[c] + (1 - mask[c]) * zp[c];
    }
}

static bool kl_shapes(vd_backend *be, const char *op, int base, const vd_tensor *const t[4]) {
    static const char *names[4] = {"post_mean", "post_p", "prior_mean", "prior_p"};
    if (!base_known(be, op, base)) return false;
    for (int i = 0; i < 4; i++)
        if (!vd_cpu_valid(be, op, names[i], t[i]) || !vd_cpu_same_shape(be, op, t[0], t[i]))
            return false;
    return true;
}

/* Chunk k's per-variate sums into part[k * V ...]. */
static void kl_chunk(int base, double beta, const vd_tensor *const t[4], int64_t k, double *part) {
    int v = t[0]->c;
    int64_t end = (k + 1) * KL_CHUNK < cpu_pixels(t[0]) ? (k + 1) * KL_CHUNK : cpu_pixels(t[0]);
    for (int c = 0; c < v; c++)
        part[c] = 0;
    for (int64_t q = k * KL_CHUNK; q < end; q++) {
        const float *pm = cpu_px(t[0], q), *pp = cpu_px(t[1], q);
        const float *qm = cpu_px(t[2], q), *qp = cpu_px(t[3], q);
        for (int c = 0; c < v; c++)
            part[c] += kl_at(base, beta, pm[c], pp[c], qm[c], qp[c]).kl;
    }
}

void vd_cpu_kl_fwd(vd_backend *be, int base, float beta, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   float *sum, float *per_variate) {
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    if (!kl_shapes(be, "kl_fwd", base, t)) return;
    CPU_REQUIRE(be, sum, "cpu kl_fwd: sum is missing");
    int v = post_mean->c;
    int64_t chunks = cpu_chunks(cpu_pixels(post_mean), KL_CHUNK);
    double *part = vd_cpu_partials(be, (size_t)(chunks * v));
    if (!part) return;
    CPU_PARALLEL_FOR(vd_tensor_numel(post_mean))
    for (int64_t k = 0; k < chunks; k++)
        kl_chunk(base, beta, t, k, part + k * v);
    double total = 0;
    for (int c = 0; c < v; c++) {
        double variate = 0;
        for (int64_t k = 0; k < chunks; k++)
            variate += part[k * v + c];
        total += variate;
        if (per_variate) per_variate[c] += (float)variate;
    }
    *sum = (float)total;
}

static void acc_grad(const vd_tensor *g, int64_t q, int c, double v) {
    if (g) cpu_px(g, q)[c] += (float)v;
}

void vd_cpu_kl_bwd(vd_backend *be, int base, float beta, float scale, const vd_tensor *post_mean,
                   const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                   const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                   const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    const vd_tensor *t[4] = {post_mean, post_p, prior_mean, prior_p};
    const vd_tensor *d[4] = {dpost_mean, dpost_p, dprior_mean, dprior_p};
    if (!kl_shapes(be, "kl_bwd", base, t)) return;
    for (int i = 0; i < 4; i++)
        if (d[i] && (!vd_cpu_valid(be, "kl_bwd", "gradient", d[i]) ||
                     !vd_cpu_same_shape(be, "kl_bwd", t[0], d[i])))
            return;
    CPU_PARALLEL_FOR(vd_tensor_numel(post_mean))
    for (int64_t q = 0; q < cpu_pixels(post_mean); q++) {
        for (int c = 0; c < post_mean->c; c++) {
            kl_point k = kl_at(base, beta, cpu_px(post_mean, q)[c], cpu_px(post_p, q)[c],
                               cpu_px(prior_mean, q)[c], cpu_px(prior_p, q)[c]);
            acc_grad(dpost_mean, q, c, scale * k.d_post_mean);
            acc_grad(dpost_p, q, c, scale * k.d_post_p);
            acc_grad(dprior_mean, q, c, scale * k.d_prior_mean);
            acc_grad(dprior_p, q, c, scale * k.d_prior_p);
        }
    }
}
