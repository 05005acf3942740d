/* Per-pixel math of the discretised mixture of logistics, shared by the CPU backends (each
 * keeps its own loops and argument checks): the reference's four-way selection for the
 * negative log-likelihood, its analytic gradient through that selection, and Gumbel-max /
 * logistic sampling. In double: the bin mass sigmoid(plus) - sigmoid(minus) cancels badly in
 * float. The selection compares float targets with the float pixel bounds, as the reference
 * compares float32 tensors with Python floats. */
#ifndef VD_BACKEND_DMOL_MATH_H
#define VD_BACKEND_DMOL_MATH_H

#include <math.h>
#include <stdbool.h>

#include "backend/ops.h"
#include "core/hd.h"
#include "core/philox_math.h"

/* A backend may lower the cap before including this file (the CUDA kernels keep per-pixel
 * arrays of this size in registers and local memory). */
#ifndef DMOL_MAX_MIX
#define DMOL_MAX_MIX 256
#endif

/* The mixtures both backends accept. */
VD_HD static inline bool dmol_supported(const vd_dmol *d) {
    return d && d->n_mix >= 1 && d->n_mix <= DMOL_MAX_MIX && (d->channels == 1 || d->channels == 3) &&
           d->num_bits >= 1 && d->num_bits <= 8 && (d->base == VD_BASE_STD || d->base == VD_BASE_LOGSTD);
}

typedef struct dmol_ctx {
    int m, c; /* mixtures, colours */
    vd_dist_base base;
    double beta, min_logscale, min_scale;
    double k;     /* number of bins - 1: 2^bits - 1 */
    float lo, hi; /* pixel values of 0 and of 255 after quantisation to `bits` */
} dmol_ctx;

VD_HD static inline double sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
/* Unthresholded log(1 + e^x), stable for any x (F.softplus inside the loss). */
VD_HD static inline double log1pexp(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
/* torch.nn.Softplus(beta) for the scales: linear where beta x > 20. */
VD_HD static inline double softplus_beta(double x, double beta) {
    return beta * x > 20.0 ? x : log1p(exp(beta * x)) / beta;
}
VD_HD static inline double softplus_beta_grad(double x, double beta) {
    return beta * x > 20.0 ? 1.0 : sigmoid(beta * x);
}

VD_HD static inline dmol_ctx dmol_context(const vd_dmol *d) {
    double step = ldexp(1.0, 8 - d->num_bits);
    return (dmol_ctx){
        .m = d->n_mix,
        .c = d->channels,
        .base = d->base,
        .beta = d->beta,
        .min_logscale = d->min_logscale,
        .min_scale = exp((double)d->min_logscale), /* C++ would take expf for a float */
        .k = ldexp(1.0, d->num_bits) - 1,
        .lo = -1.0f,
        .hi = (float)((floor(255.0 / step) * step - 127.5) / 127.5),
    };
}

/* Channel of parameter `kind` (0 mean, 1 raw scale, 2 raw coefficient) of colour c, mix m. */
VD_HD static inline int dmol_ch(const dmol_ctx *k, int kind, int c, int m) {
    return k->m + c * 3 * k->m + kind * k->m + m;
}

/* tanh of raw coefficient j of mixture m, in double: C promotes the float, but C++ (nvcc, the
 * CUDA emulation) would call the float overload. */
VD_HD static inline double dmol_coeff(const dmol_ctx *k, const float *l, int j, int m) {
    return tanh((double)l[dmol_ch(k, 2, j, m)]);
}


/* Gradient share of a max(a, b) input that won: torch splits ties evenly. */
VD_HD static inline double max_share(double mine, double other) {
    return mine > other ? 1.0 : mine == other ? 0.5 : 0.0;
}

/* 1 / scale and the reference's log_scales from a raw scale channel (see vd_dmol). */
typedef struct dmol_scale {
    double inv, log_s;
} dmol_scale;

VD_HD static inline dmol_scale dmol_scale_of(const dmol_ctx *k, double r) {
    if (k->base == VD_BASE_STD) {
        double s = fmax(softplus_beta(r, k->beta), k->min_scale);
        return (dmol_scale){1 / s, log(s)};
    }
    double ls = fmax(r, k->min_logscale);
    return (dmol_scale){exp(-k->beta * ls), ls};
}

/* dL/dr from dL/d(1/scale) and dL/d(log_scales). */
VD_HD static inline double dmol_scale_grad(const dmol_ctx *k, double r, double g_inv, double g_log) {
    if (k->base == VD_BASE_STD) {
        double sp = softplus_beta(r, k->beta), s = fmax(sp, k->min_scale);
        double g_s = -g_inv / (s * s) + g_log / s;
        return g_s * max_share(sp, k->min_scale) * softplus_beta_grad(r, k->beta);
    }
    double ls = fmax(r, k->min_logscale);
    double g_ls = g_log - k->beta * exp(-k->beta * ls) * g_inv;
    return g_ls * max_share(r, k->min_logscale);
}

/* log p of one colour under one logistic, with dlogp/dmean and dlogp/draw; only the selected
 * branch carries gradient, as torch.where routes it. */
VD_HD static inline double dmol_logp(const dmol_ctx *k, float x, double mean, double r, double *g_mean,
                        double *g_raw) {
    dmol_scale sc = dmol_scale_of(k, r);
    double cen = x - mean, half = 1 / k->k;
    double plus = sc.inv * (cen + half), minus = sc.inv * (cen - half), mid = sc.inv * cen;
    double gp = 0, gm = 0, gmid = 0, g_log = 0, logp;
    if (x == k->lo) {
        logp = plus - log1pexp(plus);
        gp = 1 - sigmoid(plus);
    } else if (x == k->hi) {
        logp = -log1pexp(minus);
        gm = -sigmoid(minus);
    } else {
        double sp = sigmoid(plus), sm = sigmoid(minus), delta = sp - sm;
        if (delta > 1e-5) {
            logp = log(fmax(delta, 1e-12));
            gp = sp * (1 - sp) / delta;
            gm = -sm * (1 - sm) / delta;
        } else {
            logp = mid - sc.log_s - 2 * log1pexp(mid) - log(k->k / 2);
            gmid = 1 - 2 * sigmoid(mid);
            g_log = -1;
        }
    }
    *g_mean = -sc.inv * (gp + gm + gmid);
    double g_inv = (cen + half) * gp + (cen - half) * gm + cen * gmid;
    *g_raw = dmol_scale_grad(k, r, g_inv, g_log);
    return logp;
}

/* Colour c's mean under mixture m: m_c plus the tanh coefficients times earlier colours. */
VD_HD static inline double dmol_mean(const dmol_ctx *k, const float *l, const float *x, int c, int m) {
    double mu = l[dmol_ch(k, 0, c, m)];
    if (c == 1) mu += dmol_coeff(k, l, 0, m) * x[0];
    if (c == 2) mu += dmol_coeff(k, l, 1, m) * x[0] + dmol_coeff(k, l, 2, m) * x[1];
    return mu;
}

VD_HD static inline double logsumexp(const double *v, int n) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, v[i]);
    if (mx == -INFINITY) return mx;
    for (int i = 0; i < n; i++)
        s += exp(v[i] - mx);
    return mx + log(s);
}

VD_HD static inline void dmol_coeff_grad(const dmol_ctx *k, const float *l, int j, int m, double g_times_x,
                            float *dl) {
    double t = dmol_coeff(k, l, j, m);
    dl[dmol_ch(k, 2, j, m)] = (float)(g_times_x * (1 - t * t));
}

/* Scatter g = dL/dmean of colour c, mixture m to its mean and the coefficients it uses:
 * colour 1 uses coefficient 0 (times x0), colour 2 coefficients 1 (x0) and 2 (x1). */
VD_HD static inline void dmol_mean_grad(const dmol_ctx *k, const float *l, const float *x, int c, int m,
                           double g, float *dl) {
    dl[dmol_ch(k, 0, c, m)] = (float)g;
    if (c == 1) dmol_coeff_grad(k, l, 0, m, g * x[0], dl);
    if (c == 2) {
        dmol_coeff_grad(k, l, 1, m, g * x[0], dl);
        dmol_coeff_grad(k, l, 2, m, g * x[1], dl);
    }
}

/* nll of one pixel; with dl, also writes dl (=) as scale * dnll/dlogits. */
VD_HD static inline double dmol_pixel(const dmol_ctx *k, const float *l, const float *x, double scale,
                         float *dl) {
    double lp[DMOL_MAX_MIX], mixl[DMOL_MAX_MIX], gmean[3][DMOL_MAX_MIX], graw[3][DMOL_MAX_MIX];
    if (k->m < 1) /* never: dmol_args checked it; tells the compiler the arrays get filled */
        return 0;
    for (int m = 0; m < k->m; m++) {
        mixl[m] = l[m];
        lp[m] = 0;
        for (int c = 0; c < k->c; c++)
            lp[m] += dmol_logp(k, x[c], dmol_mean(k, l, x, c, m), l[dmol_ch(k, 1, c, m)],
                               &gmean[c][m], &graw[c][m]);
    }
    double lse_mix = logsumexp(mixl, k->m);
    for (int m = 0; m < k->m; m++)
        lp[m] += mixl[m] - lse_mix;
    double lse = logsumexp(lp, k->m);
    if (!dl) return -lse;
    for (int ch = 0; ch < k->m * (3 * k->c + 1); ch++)
        dl[ch] = 0; /* coefficients a colour never uses (C = 1, or colour 2's) stay zero */
    for (int m = 0; m < k->m; m++) {
        double w = exp(lp[m] - lse), u = -scale * w;
        dl[m] = (float)(scale * (exp(mixl[m] - lse_mix) - w));
        for (int c = 0; c < k->c; c++) {
            dmol_mean_grad(k, l, x, c, m, u * gmean[c][m], dl);
            dl[dmol_ch(k, 1, c, m)] = (float)(u * graw[c][m]);
        }
    }
    return -lse;
}

/* Uniform draw i mapped from (0, 1) to (1e-5, 1 - 1e-5) in float, as uniform_(1e-5, 1-1e-5)
 * would draw it; the same map applies to given uniforms and Philox ones. */
VD_HD static inline double dmol_uniform(const vd_noise *noise, int64_t i) {
    float u =
        noise->given ? noise->given[i] : vd_rng_uniform_hd(noise->seed, noise->stream, (uint64_t)i);
    return 1e-5f + (1.0f - 2e-5f) * u;
}

VD_HD static inline int dmol_pick(const dmol_ctx *k, const float *l, double t, const vd_noise *noise,
                     int64_t first) {
    int best = 0;
    double best_v = -INFINITY;
    for (int m = 0; m < k->m; m++) {
        double v = l[m] / t - log(-log(dmol_uniform(noise, first + m)));
        if (v > best_v) {
            best_v = v;
            best = m;
        }
    }
    return best;
}

VD_HD static inline void dmol_sample_pixel(const dmol_ctx *k, const float *l, double t, const vd_noise *noise,
                              int64_t p, int64_t pixels, float *out) {
    int m = dmol_pick(k, l, t, noise, p * k->m);
    double xs[3];
    for (int c = 0; c < k->c; c++) {
        double u = dmol_uniform(noise, pixels * k->m + p * k->c + c);
        double s = 1 / dmol_scale_of(k, l[dmol_ch(k, 1, c, m)]).inv;
        double v = l[dmol_ch(k, 0, c, m)] + s * t * (log(u) - log(1 - u));
        if (c == 1) v += dmol_coeff(k, l, 0, m) * xs[0];
        if (c == 2)
            v += dmol_coeff(k, l, 1, m) * xs[0] + dmol_coeff(k, l, 2, m) * xs[1];
        /* double bounds: C++'s mixed float/double fmax is a host-only template under nvcc */
        xs[c] = fmin(fmax(v, (double)k->lo), (double)k->hi);
        out[c] = (float)xs[c];
    }
}

/* The checks every backend makes of a DMoL call, in its words (`who`: "" or "cpu "): a mixture
 * it supports, then, once logits and x are valid tensors (the caller's check, between the two),
 * logits of M (3C + 1) channels over x's pixels. False with the failure recorded. */
static inline bool dmol_mixture_ok(vd_backend *be, const char *who, const char *op, const vd_dmol *d) {
    if (dmol_supported(d)) return true;
    vd_backend_fail(be, VD_ERR_INVALID,
                    "%s%s: unsupported mixture (need 1..%d mixtures, 1 or 3 channels, 1..8 bits, std or "
                    "logstd base)",
                    who, op, DMOL_MAX_MIX);
    return false;
}

static inline bool dmol_fits(vd_backend *be, const char *who, const char *op, const vd_dmol *d,
                             const vd_tensor *logits, const vd_tensor *x) {
    int want = d->n_mix * (3 * d->channels + 1);
    if (logits->c == want && x->c == d->channels && x->n == logits->n && x->h == logits->h && x->w == logits->w)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s%s: logits [%d,%d,%d,%d] (want %d channels) do not fit x [%d,%d,%d,%d]",
                    who, op, logits->n, logits->h, logits->w, logits->c, want, x->n, x->h, x->w, x->c);
    return false;
}

#endif
