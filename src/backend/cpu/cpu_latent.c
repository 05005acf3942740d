/* cpu Gaussian latents: statistics from the projection, reparameterised sampling, the variate
 * mask and the KL divergence, parallel over pixels. Latent tensors are small (V channels), so
 * these ops are compute-bound, and scalar libm calls made them a tenth of a CIFAR-10 step:
 * the statistics' softplus and its slope are float math that vectorises (cpu_softplus.h, a
 * few ulp from cpu_ref's double), and the KL is cpu_ref's double math with a log that
 * vectorises (cpu_math.h, within 1 ulp). Sampling is cpu_ref's double math as it was, so
 * samples come out the same bits on both backends; the KL sum is reduced in fixed chunks
 * (cpu.h), the same at any thread count. */
#include <math.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_softplus.h"
#include "backend/latent_math.h"
#include "vdvae/rng.h"

#define KL_CHUNK 256    /* pixels per chunk of the KL sum */
#define NOISE_GROUP 64  /* Philox draws made at a time, a block per four */
#define STATS_GROUP 64  /* variates whose softplus is held at a time in the backward */
#define KL_GROUP 64     /* variates whose KL terms are held at a time */

static bool base_known(vd_backend *be, const char *op, vd_dist_base base) {
    if (base == VD_BASE_STD || base == VD_BASE_LOGSTD) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: unknown distribution base %d", op, (int)base);
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

/* One pixel's statistics, std base: raw mean rm and scale rs (V each) into mean m and std p,
 * shifted by a residual prior (pm, pp) when pm is not NULL. */
CPU_SIMD_CLONES static void stats_std_fwd_row(cpu_softplus sp, const float *rm, const float *rs,
                                              const float *pm, const float *pp, float *m,
                                              float *p, int v) {
    if (pm) {
        for (int c = 0; c < v; c++) {
            m[c] = rm[c] + pm[c];
            p[c] = cpu_softplus_value(sp, rs[c]) * pp[c];
        }
    } else {
        for (int c = 0; c < v; c++) {
            m[c] = rm[c];
            p[c] = cpu_softplus_value(sp, rs[c]);
        }
    }
}

/* Logstd base: the raw values themselves, plus the prior's; a float sum is the double sum
 * rounded, so these are cpu_ref's bits. */
static void stats_logstd_fwd_row(const float *rm, const float *rs, const float *pm,
                                 const float *pp, float *m, float *p, int v) {
    for (int c = 0; c < v; c++) {
        m[c] = rm[c];
        p[c] = rs[c];
    }
    if (pm)
        for (int c = 0; c < v; c++) {
            m[c] += pm[c];
            p[c] += pp[c];
        }
}

/* Any other beta (not finite and positive) in double per element, as cpu_ref does. */
static void stats_double_fwd_row(vd_dist_base base, float beta, const float *rm, const float *rs,
                                 const float *pm, const float *pp, float *m, float *p, int v) {
    for (int c = 0; c < v; c++) {
        double mc, pc;
        latent_stats_elem(base, beta, rm[c], rs[c], pm != NULL, pm ? pm[c] : 0, pm ? pp[c] : 0,
                          &mc, &pc);
        m[c] = (float)mc;
        p[c] = (float)pc;
    }
}

void vd_cpu_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                             const vd_tensor *prior_mean, const vd_tensor *prior_p,
                             const vd_tensor *mean, const vd_tensor *p) {
    if (!base_known(be, "latent_stats_fwd", base) ||
        !stats_shapes(be, "latent_stats_fwd", raw, prior_mean, prior_p, mean, p))
        return;
    int v = mean->c;
    cpu_softplus sp;
    bool fast = cpu_softplus_init(&sp, beta);
    CPU_PARALLEL_FOR(vd_tensor_numel(raw))
    for (int64_t q = 0; q < cpu_pixels(mean); q++) {
        const float *r = cpu_px(raw, q);
        const float *pm = prior_mean ? cpu_px(prior_mean, q) : NULL;
        const float *pp = prior_mean ? cpu_px(prior_p, q) : NULL;
        float *m = cpu_px(mean, q), *s = cpu_px(p, q);
        if (base == VD_BASE_LOGSTD)
            stats_logstd_fwd_row(r, r + v, pm, pp, m, s, v);
        else if (fast)
            stats_std_fwd_row(sp, r, r + v, pm, pp, m, s, v);
        else
            stats_double_fwd_row(base, beta, r, r + v, pm, pp, m, s, v);
    }
}

/* The gradients of one pixel, std base: draw's mean half takes gm as it is, its scale half
 * gp pp softplus'(rs) (pp = 1 without a prior); the prior's, when wanted (dpm not NULL), gm
 * and gp softplus(rs). The slope (and softplus) go through a local array: with seven pointers
 * in one loop GCC would need more alias checks than it makes and leave the loop scalar. */
CPU_SIMD_CLONES static void stats_std_bwd_row(cpu_softplus sp, const float *rs, const float *pp,
                                              const float *gm, const float *gp, float *drm,
                                              float *drs, float *dpm, float *dpp, int v) {
    for (int c = 0; c < v; c++)
        drm[c] = gm[c];
    if (dpm)
        for (int c = 0; c < v; c++)
            dpm[c] += gm[c];
    for (int c0 = 0; c0 < v; c0 += STATS_GROUP) {
        int cn = v - c0 < STATS_GROUP ? v - c0 : STATS_GROUP;
        float slope[STATS_GROUP], value[STATS_GROUP];
        if (dpp) {
            for (int k = 0; k < cn; k++)
                cpu_softplus_eval(sp, rs[c0 + k], &value[k], &slope[k]);
            for (int k = 0; k < cn; k++)
                dpp[c0 + k] += gp[c0 + k] * value[k];
        } else {
            for (int k = 0; k < cn; k++)
                slope[k] = cpu_softplus_slope(sp, rs[c0 + k]);
        }
        if (pp)
            for (int k = 0; k < cn; k++)
                drs[c0 + k] = gp[c0 + k] * pp[c0 + k] * slope[k];
        else
            for (int k = 0; k < cn; k++)
                drs[c0 + k] = gp[c0 + k] * slope[k];
    }
}

/* Logstd base: every gradient passes through unchanged. */
static void stats_logstd_bwd_row(const float *gm, const float *gp, float *drm, float *drs,
                                 float *dpm, float *dpp, int v) {
    for (int c = 0; c < v; c++) {
        drm[c] = gm[c];
        drs[c] = gp[c];
    }
    if (dpm)
        for (int c = 0; c < v; c++) {
            dpm[c] += gm[c];
            dpp[c] += gp[c];
        }
}

static void stats_double_bwd_row(vd_dist_base base, float beta, const float *rs, const float *pp,
                                 const float *gm, const float *gp, float *drm, float *drs,
                                 float *dpm, float *dpp, int v) {
    for (int c = 0; c < v; c++) {
        double grm, grs, gpm, gpp;
        latent_stats_elem_bwd(base, beta, rs[c], pp != NULL, pp ? pp[c] : 1.0, gm[c], gp[c],
                              &grm, &grs, &gpm, &gpp);
        if (dpm) {
            dpm[c] += (float)gpm;
            dpp[c] += (float)gpp;
        }
        drm[c] = (float)grm;
        drs[c] = (float)grs;
    }
}

void vd_cpu_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
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
    cpu_softplus sp;
    bool fast = cpu_softplus_init(&sp, beta);
    CPU_PARALLEL_FOR(vd_tensor_numel(raw))
    for (int64_t q = 0; q < cpu_pixels(dmean); q++) {
        const float *rs = cpu_px(raw, q) + v, *pp = prior_mean ? cpu_px(prior_p, q) : NULL;
        const float *gm = cpu_px(dmean, q), *gp = cpu_px(dp, q);
        float *dr = cpu_px(draw, q);
        float *dpm = dprior ? cpu_px(dprior_mean, q) : NULL;
        float *dpp = dprior ? cpu_px(dprior_p, q) : NULL;
        if (base == VD_BASE_LOGSTD)
            stats_logstd_bwd_row(gm, gp, dr, dr + v, dpm, dpp, v);
        else if (fast)
            stats_std_bwd_row(sp, rs, pp, gm, gp, dr, dr + v, dpm, dpp, v);
        else
            stats_double_bwd_row(base, beta, rs, pp, gm, gp, dr, dr + v, dpm, dpp, v);
    }
}

static bool sample_args(vd_backend *be, const char *op, vd_dist_base base, float temperature,
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

void vd_cpu_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
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

void vd_cpu_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
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

static bool kl_shapes(vd_backend *be, const char *op, vd_dist_base base, const vd_tensor *const t[4]) {
    static const char *names[4] = {"post_mean", "post_p", "prior_mean", "prior_p"};
    if (!base_known(be, op, base)) return false;
    for (int i = 0; i < 4; i++)
        if (!vd_cpu_valid(be, op, names[i], t[i]) || !vd_cpu_same_shape(be, op, t[0], t[i]))
            return false;
    return true;
}

/* KL of n <= KL_GROUP variates of one pixel in the std base, into kl[]: kl_at's double math
 * with the log that vectorises. False when a ratio t2 is not a positive normal double (a zero,
 * infinite or NaN std), for which the caller takes kl_at's libm log instead. */
CPU_SIMD_CLONES static bool kl_std_group(const float *pm, const float *pp, const float *qm,
                                         const float *qp, double *kl, int n) {
    int served = 1;
    for (int c = 0; c < n; c++) {
        double inv_q = 1 / (double)qp[c];
        double t1 = ((double)pm[c] - qm[c]) * inv_q, t2 = pp[c] * inv_q;
        kl[c] = 0.5 * (t1 * t1 + t2 * t2) - 0.5 - cpu_log_normal(t2);
        served &= cpu_log_served(t2);
    }
    return served;
}

/* One pixel's KL added into the per-variate sums part[V]. */
static void kl_add_pixel(vd_dist_base base, double beta, const float *pm, const float *pp,
                         const float *qm, const float *qp, double *part, int v) {
    for (int c0 = 0; c0 < v; c0 += KL_GROUP) {
        int cn = v - c0 < KL_GROUP ? v - c0 : KL_GROUP;
        double kl[KL_GROUP];
        if (base == VD_BASE_STD && kl_std_group(pm + c0, pp + c0, qm + c0, qp + c0, kl, cn)) {
            for (int k = 0; k < cn; k++)
                part[c0 + k] += kl[k];
        } else {
            for (int k = c0; k < c0 + cn; k++)
                part[k] += kl_at(base, beta, pm[k], pp[k], qm[k], qp[k]).kl;
        }
    }
}

/* Chunk k's per-variate sums into part[k * V ...]. */
static void kl_chunk(vd_dist_base base, double beta, const vd_tensor *const t[4], int64_t k, double *part) {
    int v = t[0]->c;
    int64_t end = (k + 1) * KL_CHUNK < cpu_pixels(t[0]) ? (k + 1) * KL_CHUNK : cpu_pixels(t[0]);
    for (int c = 0; c < v; c++)
        part[c] = 0;
    for (int64_t q = k * KL_CHUNK; q < end; q++)
        kl_add_pixel(base, beta, cpu_px(t[0], q), cpu_px(t[1], q), cpu_px(t[2], q),
                     cpu_px(t[3], q), part, v);
}

void vd_cpu_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
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

/* scale times the KL's gradients for n <= KL_GROUP variates of one pixel in the std base
 * (kl_at's double math, which has no log to take here), rounded to float as acc_grad does:
 * g[0..3] for post mean, post p, prior mean, prior p. */
CPU_SIMD_CLONES static void kl_std_grad_group(double scale, const float *pm, const float *pp,
                                              const float *qm, const float *qp,
                                              float g[4][KL_GROUP], int n) {
    for (int c = 0; c < n; c++) {
        double inv_q = 1 / (double)qp[c];
        double t1 = ((double)pm[c] - qm[c]) * inv_q, t2 = pp[c] * inv_q;
        g[0][c] = (float)(scale * (t1 * inv_q));
        g[1][c] = (float)(scale * (t2 * inv_q - 1 / (double)pp[c]));
        g[2][c] = (float)(scale * (-t1 * inv_q));
        g[3][c] = (float)(scale * ((1 - t1 * t1 - t2 * t2) * inv_q));
    }
}

static void kl_grad_group(vd_dist_base base, double beta, double scale, const float *pm, const float *pp,
                          const float *qm, const float *qp, float g[4][KL_GROUP], int n) {
    if (base == VD_BASE_STD) {
        kl_std_grad_group(scale, pm, pp, qm, qp, g, n);
        return;
    }
    for (int c = 0; c < n; c++) {
        kl_point k = kl_at(base, beta, pm[c], pp[c], qm[c], qp[c]);
        g[0][c] = (float)(scale * k.d_post_mean);
        g[1][c] = (float)(scale * k.d_post_p);
        g[2][c] = (float)(scale * k.d_prior_mean);
        g[3][c] = (float)(scale * k.d_prior_p);
    }
}

void vd_cpu_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
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
    int v = post_mean->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(post_mean))
    for (int64_t q = 0; q < cpu_pixels(post_mean); q++) {
        for (int c0 = 0; c0 < v; c0 += KL_GROUP) {
            int cn = v - c0 < KL_GROUP ? v - c0 : KL_GROUP;
            float g[4][KL_GROUP];
            kl_grad_group(base, beta, scale, cpu_px(t[0], q) + c0, cpu_px(t[1], q) + c0,
                          cpu_px(t[2], q) + c0, cpu_px(t[3], q) + c0, g, cn);
            for (int i = 0; i < 4; i++) {
                if (!d[i]) continue;
                float *dst = cpu_px(d[i], q) + c0;
                for (int k = 0; k < cn; k++)
                    dst[k] += g[i][k];
            }
        }
    }
}
