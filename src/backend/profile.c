/* The profiling backend: wraps another backend's table and charges each op's wall time (and
 * a conv's FLOPs) to an op family, so `vdvae bench --profile` shows where a step goes
 * without the model knowing. Ops of the CPU backends are synchronous, so wall time is theirs. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/util.h"

/* Families with a fixed slot; conv families (direction x kernel x stride) are added after
 * them as the model first uses each shape. */
enum {
    F_ALLOC, F_TRANSFER, F_FILL_COPY, F_ADD, F_UPSAMPLE, F_BROADCAST,
    F_ACT, /* 3 activations x fwd/bwd */
    F_LSTATS_FWD = F_ACT + 6, F_LSTATS_BWD, F_LSAMPLE_FWD, F_LSAMPLE_BWD, F_LMASK,
    F_KL_FWD, F_KL_BWD, F_DMOL_FWD, F_DMOL_BWD, F_DMOL_SAMPLE,
    F_BERN_FWD, F_BERN_BWD, F_BERN_SAMPLE, F_NORM, F_OPTIM, F_EMA, F_SCALE,
    F_POOL, F_RESIZE,
    F_FIXED
};

static const char *const fixed_names[F_FIXED] = {
    [F_ALLOC] = "alloc/free", [F_TRANSFER] = "upload/download", [F_FILL_COPY] = "fill/copy",
    [F_ADD] = "add/axpy", [F_UPSAMPLE] = "upsample fwd+bwd", [F_BROADCAST] = "broadcast fwd+bwd",
    [F_ACT + 0] = "SiLU fwd", [F_ACT + 1] = "SiLU bwd",
    [F_ACT + 2] = "LeakyReLU fwd", [F_ACT + 3] = "LeakyReLU bwd",
    [F_ACT + 4] = "softplus fwd", [F_ACT + 5] = "softplus bwd",
    [F_LSTATS_FWD] = "latent stats fwd", [F_LSTATS_BWD] = "latent stats bwd",
    [F_LSAMPLE_FWD] = "latent sample fwd", [F_LSAMPLE_BWD] = "latent sample bwd",
    [F_LMASK] = "latent mask", [F_KL_FWD] = "KL fwd", [F_KL_BWD] = "KL bwd",
    [F_DMOL_FWD] = "DMoL fwd", [F_DMOL_BWD] = "DMoL bwd", [F_DMOL_SAMPLE] = "DMoL sample",
    [F_BERN_FWD] = "Bernoulli fwd", [F_BERN_BWD] = "Bernoulli bwd",
    [F_BERN_SAMPLE] = "Bernoulli sample", [F_NORM] = "grad norm (sum of squares)",
    [F_OPTIM] = "optimizer update", [F_EMA] = "EMA update", [F_SCALE] = "scale (clipping)",
    [F_POOL] = "pool fwd", [F_RESIZE] = "resize bilinear",
};

#define MAX_FAMILIES (F_FIXED + 48)
#define NAME_MAX_LEN 40

typedef struct family {
    char name[NAME_MAX_LEN];
    int key;   /* conv families: direction, kernel and stride packed; -1 for fixed ones */
    int64_t calls;
    double seconds, flops;
} family;

#define MAX_SCOPES 64

typedef struct scope {
    char name[NAME_MAX_LEN];
    int64_t entries[VD_PHASES];
    double seconds[VD_PHASES], flops[VD_PHASES];
} scope;

typedef struct vd_profile {
    vd_backend base;
    vd_backend *inner;
    int n;
    family fam[MAX_FAMILIES];
    int n_scopes, cur_scope, cur_phase; /* cur_scope -1: ops outside any scope */
    scope scopes[MAX_SCOPES];
} vd_profile;

static const vd_backend_i profile_table;

static vd_profile *prof(vd_backend *be) {
    assert(be->i == &profile_table);
    return (vd_profile *)be;
}

static vd_backend *inner(vd_backend *be) { return ((vd_profile *)be)->inner; }

/* Charge time since t0 to family f and carry the inner backend's first failure over, so
 * vd_backend_check on the wrapper sees it. */
static void charge(vd_backend *be, int f, double t0, double flops) {
    double dt = vd_now_seconds() - t0;
    vd_profile *p = (vd_profile *)be;
    if (f >= 0 && f < p->n) {
        p->fam[f].calls++;
        p->fam[f].seconds += dt;
        p->fam[f].flops += flops;
    }
    if (p->cur_scope >= 0) {
        p->scopes[p->cur_scope].seconds[p->cur_phase] += dt;
        p->scopes[p->cur_scope].flops[p->cur_phase] += flops;
    }
    if (p->inner->status != VD_OK && be->status == VD_OK) {
        be->status = p->inner->status;
        be->err = p->inner->err;
    }
}

static const char *const conv_dirs[5] = {"conv fwd", "conv bwd-data", "conv bwd-weights", "conv bwd-both",
                                         "conv fwd+act"};

/* The slot of a conv family, made on first use; -1 (uncounted) if the table is full. */
static int conv_family(vd_backend *be, int dir, const vd_conv_desc *cv) {
    vd_profile *p = (vd_profile *)be;
    int key = ((dir * 64 + cv->kh) * 64 + cv->kw) * 64 + cv->stride;
    for (int f = F_FIXED; f < p->n; f++)
        if (p->fam[f].key == key) return f;
    if (p->n == MAX_FAMILIES) return -1;
    family *nf = &p->fam[p->n];
    memset(nf, 0, sizeof *nf);
    nf->key = key;
    int len = snprintf(nf->name, sizeof nf->name, "%s %dx%d", conv_dirs[dir], cv->kh, cv->kw);
    if (cv->stride > 1) snprintf(nf->name + len, sizeof nf->name - (size_t)len, " s%d", cv->stride);
    return p->n++;
}

/* 2 N Ho Wo Cout Cin kh kw, the same for all three directions; o is the conv's output. */
static double conv_flops(const vd_conv_desc *cv, const vd_tensor *o) {
    return 2.0 * o->n * o->h * o->w * (double)cv->c_out * cv->c_in * cv->kh * cv->kw;
}

/* ---- memory */

static void *p_alloc(vd_backend *be, size_t bytes) {
    double t0 = vd_now_seconds();
    void *r = inner(be)->i->alloc(inner(be), bytes);
    charge(be, F_ALLOC, t0, 0);
    return r;
}

static void p_dealloc(vd_backend *be, void *ptr) {
    double t0 = vd_now_seconds();
    inner(be)->i->dealloc(inner(be), ptr);
    charge(be, F_ALLOC, t0, 0);
}

static void p_upload(vd_backend *be, void *dst, const void *src, size_t bytes) {
    double t0 = vd_now_seconds();
    inner(be)->i->upload(inner(be), dst, src, bytes);
    charge(be, F_TRANSFER, t0, 0);
}

static void p_download(vd_backend *be, void *dst, const void *src, size_t bytes) {
    double t0 = vd_now_seconds();
    inner(be)->i->download(inner(be), dst, src, bytes);
    charge(be, F_TRANSFER, t0, 0);
}

static void p_fill(vd_backend *be, const vd_tensor *t, float v) {
    double t0 = vd_now_seconds();
    inner(be)->i->fill(inner(be), t, v);
    charge(be, F_FILL_COPY, t0, 0);
}

static void p_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst) {
    double t0 = vd_now_seconds();
    inner(be)->i->copy(inner(be), src, dst);
    charge(be, F_FILL_COPY, t0, 0);
}

/* ---- convolution */

static void p_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                       const float *b, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->conv_fwd(inner(be), cv, x, w, b, y);
    charge(be, conv_family(be, 0, cv), t0, conv_flops(cv, y));
}

static void p_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy, const float *w,
                            const vd_tensor *dx, bool acc) {
    double t0 = vd_now_seconds();
    inner(be)->i->conv_bwd_data(inner(be), cv, dy, w, dx, acc);
    charge(be, conv_family(be, 1, cv), t0, conv_flops(cv, dy));
}

static void p_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                               const vd_tensor *dy, float *dw, float *db) {
    double t0 = vd_now_seconds();
    inner(be)->i->conv_bwd_weights(inner(be), cv, x, dy, dw, db);
    charge(be, conv_family(be, 2, cv), t0, conv_flops(cv, dy));
}

/* Both backward directions in one call (the inner backend shares work between them): one
 * family, "conv bwd-both", with both directions' FLOPs. */
static void p_conv_bwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const vd_tensor *dy,
                       const float *w, float *dw, float *db, const vd_tensor *dx, bool acc) {
    double t0 = vd_now_seconds();
    vd_backend_conv_bwd(inner(be), cv, x, dy, w, dw, db, dx, acc);
    int dir = dx ? 3 : 2;
    charge(be, conv_family(be, dir, cv), t0, (dx ? 2 : 1) * conv_flops(cv, dy));
}

/* A conv and the activation of its output in one call: a family of its own, "conv fwd+act",
 * whatever the inner backend fuses. */
static void p_conv_fwd_act(vd_backend *be, const vd_conv_desc *cv, vd_act act, float param,
                           const vd_tensor *x, const float *w, const float *b, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    vd_backend_conv_fwd_act(inner(be), cv, act, param, x, w, b, y);
    charge(be, conv_family(be, 4, cv), t0, conv_flops(cv, y));
}

/* ---- activations and elementwise */

static int act_family(vd_act act, int bwd) {
    int a = act == VD_ACT_SILU ? 0 : act == VD_ACT_LEAKY_RELU ? 1 : 2;
    return F_ACT + 2 * a + bwd;
}

static void p_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->act_fwd(inner(be), act, param, x, y);
    charge(be, act_family(act, 0), t0, 0);
}

static void p_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *dy,
                      const vd_tensor *dx, bool acc) {
    double t0 = vd_now_seconds();
    inner(be)->i->act_bwd(inner(be), act, param, x, dy, dx, acc);
    charge(be, act_family(act, 1), t0, 0);
}

static void p_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->add(inner(be), a, b, y);
    charge(be, F_ADD, t0, 0);
}

static void p_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->axpy(inner(be), alpha, x, y);
    charge(be, F_ADD, t0, 0);
}

static void p_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->upsample_fwd(inner(be), s, x, y);
    charge(be, F_UPSAMPLE, t0, 0);
}

static void p_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx, bool acc) {
    double t0 = vd_now_seconds();
    inner(be)->i->upsample_bwd(inner(be), s, dy, dx, acc);
    charge(be, F_UPSAMPLE, t0, 0);
}

static void p_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc) {
    double t0 = vd_now_seconds();
    inner(be)->i->broadcast_fwd(inner(be), t, y, acc);
    charge(be, F_BROADCAST, t0, 0);
}

static void p_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt) {
    double t0 = vd_now_seconds();
    inner(be)->i->broadcast_bwd(inner(be), dy, dt);
    charge(be, F_BROADCAST, t0, 0);
}

/* ---- latents and KL */

static void p_latent_stats_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                               const vd_tensor *prior_mean, const vd_tensor *prior_p,
                               const vd_tensor *mean, const vd_tensor *p) {
    double t0 = vd_now_seconds();
    inner(be)->i->latent_stats_fwd(inner(be), base, beta, raw, prior_mean, prior_p, mean, p);
    charge(be, F_LSTATS_FWD, t0, 0);
}

static void p_latent_stats_bwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *raw,
                               const vd_tensor *prior_mean, const vd_tensor *prior_p,
                               const vd_tensor *dmean, const vd_tensor *dp, const vd_tensor *draw,
                               const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    double t0 = vd_now_seconds();
    inner(be)->i->latent_stats_bwd(inner(be), base, beta, raw, prior_mean, prior_p, dmean, dp, draw,
                                   dprior_mean, dprior_p);
    charge(be, F_LSTATS_BWD, t0, 0);
}

static void p_latent_sample_fwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                                const vd_tensor *mean, const vd_tensor *p, const vd_noise *noise,
                                const vd_tensor *z) {
    double t0 = vd_now_seconds();
    inner(be)->i->latent_sample_fwd(inner(be), base, beta, temperature, mean, p, noise, z);
    charge(be, F_LSAMPLE_FWD, t0, 0);
}

static void p_latent_sample_bwd(vd_backend *be, vd_dist_base base, float beta, float temperature,
                                const vd_tensor *p, const vd_noise *noise, const vd_tensor *dz,
                                const vd_tensor *dmean, const vd_tensor *dp) {
    double t0 = vd_now_seconds();
    inner(be)->i->latent_sample_bwd(inner(be), base, beta, temperature, p, noise, dz, dmean, dp);
    charge(be, F_LSAMPLE_BWD, t0, 0);
}

static void p_latent_mask(vd_backend *be, const float *mask, const vd_tensor *z_prior, const vd_tensor *z) {
    double t0 = vd_now_seconds();
    inner(be)->i->latent_mask(inner(be), mask, z_prior, z);
    charge(be, F_LMASK, t0, 0);
}

static void p_kl_fwd(vd_backend *be, vd_dist_base base, float beta, const vd_tensor *post_mean,
                     const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                     float *sum, float *per_variate) {
    double t0 = vd_now_seconds();
    inner(be)->i->kl_fwd(inner(be), base, beta, post_mean, post_p, prior_mean, prior_p, sum, per_variate);
    charge(be, F_KL_FWD, t0, 0);
}

static void p_kl_bwd(vd_backend *be, vd_dist_base base, float beta, float scale, const vd_tensor *post_mean,
                     const vd_tensor *post_p, const vd_tensor *prior_mean, const vd_tensor *prior_p,
                     const vd_tensor *dpost_mean, const vd_tensor *dpost_p,
                     const vd_tensor *dprior_mean, const vd_tensor *dprior_p) {
    double t0 = vd_now_seconds();
    inner(be)->i->kl_bwd(inner(be), base, beta, scale, post_mean, post_p, prior_mean, prior_p,
                         dpost_mean, dpost_p, dprior_mean, dprior_p);
    charge(be, F_KL_BWD, t0, 0);
}

/* ---- output distributions */

static void p_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                       float *nll) {
    double t0 = vd_now_seconds();
    inner(be)->i->dmol_fwd(inner(be), d, logits, x, nll);
    charge(be, F_DMOL_FWD, t0, 0);
}

static void p_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                       const vd_tensor *x, const vd_tensor *dlogits) {
    double t0 = vd_now_seconds();
    inner(be)->i->dmol_bwd(inner(be), d, scale, logits, x, dlogits);
    charge(be, F_DMOL_BWD, t0, 0);
}

static void p_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature, const vd_tensor *logits,
                          const vd_noise *noise, const vd_tensor *out) {
    double t0 = vd_now_seconds();
    inner(be)->i->dmol_sample(inner(be), d, temperature, logits, noise, out);
    charge(be, F_DMOL_SAMPLE, t0, 0);
}

static void p_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                            float *nll) {
    double t0 = vd_now_seconds();
    inner(be)->i->bernoulli_fwd(inner(be), crop, logits, x, nll);
    charge(be, F_BERN_FWD, t0, 0);
}

static void p_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                            const vd_tensor *x, const vd_tensor *dlogits) {
    double t0 = vd_now_seconds();
    inner(be)->i->bernoulli_bwd(inner(be), crop, scale, logits, x, dlogits);
    charge(be, F_BERN_BWD, t0, 0);
}

static void p_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                               const vd_tensor *out) {
    double t0 = vd_now_seconds();
    inner(be)->i->bernoulli_sample(inner(be), logits, noise, out);
    charge(be, F_BERN_SAMPLE, t0, 0);
}

/* ---- optimisation */

static void p_sum_squares(vd_backend *be, const float *x, size_t n, float *out) {
    double t0 = vd_now_seconds();
    inner(be)->i->sum_squares(inner(be), x, n, out);
    charge(be, F_NORM, t0, 0);
}

static void p_optim_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g, float *m,
                           float *v, size_t n) {
    double t0 = vd_now_seconds();
    inner(be)->i->optim_update(inner(be), o, p, g, m, v, n);
    charge(be, F_OPTIM, t0, 0);
}

static void p_ema_update(vd_backend *be, double decay, const float *p, float *ema, size_t n) {
    double t0 = vd_now_seconds();
    inner(be)->i->ema_update(inner(be), decay, p, ema, n);
    charge(be, F_EMA, t0, 0);
}

static void p_scale(vd_backend *be, float a, float *x, size_t n) {
    double t0 = vd_now_seconds();
    inner(be)->i->scale(inner(be), a, x, n);
    charge(be, F_SCALE, t0, 0);
}

/* ---- inference only */

static void p_pool_fwd(vd_backend *be, const vd_pool_desc *pd, const vd_tensor *x, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->pool_fwd(inner(be), pd, x, y);
    charge(be, F_POOL, t0, 0);
}

static void p_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y) {
    double t0 = vd_now_seconds();
    inner(be)->i->resize_bilinear(inner(be), x, y);
    charge(be, F_RESIZE, t0, 0);
}

/* ---- block groups */

static void p_scope(vd_backend *be, const char *name, vd_phase phase) {
    vd_profile *p = (vd_profile *)be;
    vd_backend_scope(p->inner, name, phase);
    p->cur_scope = -1;
    if ((int)phase < 0 || (int)phase >= VD_PHASES) return; /* callers may pass any int */
    int s = 0;
    while (s < p->n_scopes && strncmp(p->scopes[s].name, name, NAME_MAX_LEN - 1)) s++;
    if (s == p->n_scopes) {
        if (s == MAX_SCOPES) return; /* table full: uncounted */
        memset(&p->scopes[s], 0, sizeof p->scopes[s]);
        snprintf(p->scopes[s].name, sizeof p->scopes[s].name, "%s", name);
        p->n_scopes++;
    }
    p->cur_scope = s;
    p->cur_phase = phase;
    p->scopes[s].entries[phase]++;
}

/* Not an op: the precision is the inner backend's setting. */
static vd_status p_set_precision(vd_backend *be, vd_precision prec, vd_err *err) {
    return vd_backend_set_precision(inner(be), prec, err);
}

/* Not an op either: the inner backend's verdict (its probe's convolutions are not charged). */
static const char *p_precision_note(vd_backend *be) {
    return vd_backend_precision_note(inner(be));
}

/* Settings and readings of the inner backend, not ops. */
static void p_allow_tf32(vd_backend *be, bool on) {
    vd_backend_allow_tf32(inner(be), on);
}
static void p_memory(vd_backend *be, size_t *now, size_t *peak) {
    if (!vd_backend_memory(inner(be), now, peak)) *now = *peak = 0;
}

static void p_destroy(vd_backend *be) {
    vd_backend_destroy(inner(be));
    free(be);
}

static const vd_backend_i profile_table = {
    .name = "profile",
    .destroy = p_destroy,
    .alloc = p_alloc,
    .dealloc = p_dealloc,
    .upload = p_upload,
    .download = p_download,
    .set_precision = p_set_precision,
    .precision_note = p_precision_note,
    .allow_tf32 = p_allow_tf32,
    .memory = p_memory,
    .fill = p_fill,
    .copy = p_copy,
    .conv_fwd = p_conv_fwd,
    .conv_bwd_data = p_conv_bwd_data,
    .conv_bwd_weights = p_conv_bwd_weights,
    .conv_bwd = p_conv_bwd,
    .conv_fwd_act = p_conv_fwd_act,
    .act_fwd = p_act_fwd,
    .act_bwd = p_act_bwd,
    .add = p_add,
    .axpy = p_axpy,
    .upsample_fwd = p_upsample_fwd,
    .upsample_bwd = p_upsample_bwd,
    .broadcast_fwd = p_broadcast_fwd,
    .broadcast_bwd = p_broadcast_bwd,
    .latent_stats_fwd = p_latent_stats_fwd,
    .latent_stats_bwd = p_latent_stats_bwd,
    .latent_sample_fwd = p_latent_sample_fwd,
    .latent_sample_bwd = p_latent_sample_bwd,
    .latent_mask = p_latent_mask,
    .kl_fwd = p_kl_fwd,
    .kl_bwd = p_kl_bwd,
    .dmol_fwd = p_dmol_fwd,
    .dmol_bwd = p_dmol_bwd,
    .dmol_sample = p_dmol_sample,
    .bernoulli_fwd = p_bernoulli_fwd,
    .bernoulli_bwd = p_bernoulli_bwd,
    .bernoulli_sample = p_bernoulli_sample,
    .sum_squares = p_sum_squares,
    .optim_update = p_optim_update,
    .ema_update = p_ema_update,
    .scale = p_scale,
    .pool_fwd = p_pool_fwd,
    .resize_bilinear = p_resize_bilinear,
    .scope = p_scope,
};

vd_status vd_backend_create_profile(vd_backend **out, vd_backend *in, vd_err *err) {
    if (!in) return vd_errorf(err, VD_ERR_INVALID, "backend profile: no backend to wrap");
    vd_profile *p = calloc(1, sizeof *p);
    if (!p) return vd_errorf(err, VD_ERR_NOMEM, "backend profile: cannot allocate the backend");
    p->base.i = &profile_table;
    p->base.status = VD_OK;
    p->inner = in;
    for (int f = 0; f < F_FIXED; f++) {
        snprintf(p->fam[f].name, sizeof p->fam[f].name, "%s", fixed_names[f]);
        p->fam[f].key = -1;
    }
    p->n = F_FIXED;
    p->cur_scope = -1;
    *out = &p->base;
    return VD_OK;
}

void vd_backend_profile_reset(vd_backend *be) {
    vd_profile *p = prof(be);
    for (int f = 0; f < p->n; f++) p->fam[f].calls = 0, p->fam[f].seconds = p->fam[f].flops = 0;
    p->n_scopes = 0;
    p->cur_scope = -1;
}

int vd_backend_profile_scopes(vd_backend *be, vd_profile_scope *out, int max) {
    vd_profile *p = prof(be);
    int k = 0;
    for (int s = 0; s < p->n_scopes && k < max; s++) {
        const scope *sc = &p->scopes[s];
        vd_profile_scope *o = &out[k++];
        o->name = sc->name;
        for (int ph = 0; ph < VD_PHASES; ph++) {
            o->entries[ph] = sc->entries[ph];
            o->seconds[ph] = sc->seconds[ph];
            o->flops[ph] = sc->flops[ph];
        }
    }
    return k;
}

int vd_backend_profile_read(vd_backend *be, vd_profile_family *out, int max) {
    vd_profile *p = prof(be);
    int k = 0;
    for (int f = 0; f < p->n && k < max; f++) {
        if (!p->fam[f].calls) continue;
        out[k++] = (vd_profile_family){p->fam[f].name, p->fam[f].calls, p->fam[f].seconds, p->fam[f].flops,
                                       p->fam[f].key >= 0};
    }
    return k;
}
