/* CUDA output distributions: the discretised mixture of logistics (one thread per pixel around
 * cpu_ref's per-pixel math, backend/dmol_math.h) and the Bernoulli of binarized MNIST. */

/* dmol_pixel keeps 8 arrays of DMOL_MAX_MIX doubles per thread in local memory: 32 mixtures
 * (the reference configs use 10) keep that at 2 KiB instead of the CPU's 16 KiB. */
#define DMOL_MAX_MIX 32

#include "backend/cuda/cuda.h"
#include "backend/dmol_math.h"
#include "core/philox_math.h"

VD_CU_BEGIN

/* File-local functors: other kernel files share the namespace (see cuda_latent.cu). */
namespace {

bool dmol_args(vd_backend *be, const char *op, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x) {
    if (d && d->n_mix > DMOL_MAX_MIX) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: %d mixtures exceed the cuda backend's cap of %d", op, d->n_mix,
                        DMOL_MAX_MIX);
        return false;
    }
    return dmol_mixture_ok(be, "", op, d) && vd_cu_valid(be, op, "logits", logits) &&
           vd_cu_valid(be, op, "x", x) && dmol_fits(be, "", op, d, logits, x);
}

struct dmol_nll_f {
    dmol_ctx k;
    vd_tensor logits, x;
    VD_HD double operator()(int64_t p) const {
        return dmol_pixel(&k, vd_cu_px(logits, p), vd_cu_px(x, p), 0, NULL);
    }
};

struct dmol_grad_f {
    dmol_ctx k;
    float scale;
    vd_tensor logits, x, dlogits;
    VD_HD void operator()(int64_t p) const {
        dmol_pixel(&k, vd_cu_px(logits, p), vd_cu_px(x, p), scale, vd_cu_px(dlogits, p));
    }
};

struct dmol_sample_f {
    dmol_ctx k;
    float temperature;
    vd_noise noise;
    int64_t pixels;
    vd_tensor logits, out;
    VD_HD void operator()(int64_t p) const {
        dmol_sample_pixel(&k, vd_cu_px(logits, p), temperature, &noise, p, pixels, vd_cu_px(out, p));
    }
};

bool bern_args(vd_backend *be, const char *op, int crop, const vd_tensor *logits, const vd_tensor *x) {
    if (!vd_cu_valid(be, op, "logits", logits) || !vd_cu_valid(be, op, "x", x) ||
        !vd_cu_same_shape(be, op, logits, x))
        return false;
    if (crop >= 0 && 2 * crop < logits->h && 2 * crop < logits->w) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: crop %d leaves nothing of %dx%d", op, crop, logits->h, logits->w);
    return false;
}

/* -log p(x | logits) = softplus(l) - x l, in the form that never overflows (ref_bernoulli.c's). */
VD_HD double bern_nll(double l, double x) {
    return fmax(l, 0.0) - l * x + log1p(exp(-fabs(l)));
}

/* Element i of the crop [crop, H - crop) x [crop, W - crop), in NHWC order as cpu_ref sums it. */
struct bern_nll_f {
    int crop;
    vd_tensor logits, x;
    VD_HD double operator()(int64_t i) const {
        int c = (int)(i % x.c);
        int64_t r = i / x.c;
        int cw = x.w - 2 * crop, ch = x.h - 2 * crop;
        int w = crop + (int)(r % cw);
        r /= cw;
        int h = crop + (int)(r % ch);
        int64_t pixel = (r / ch * x.h + h) * x.w + w;
        return bern_nll(vd_cu_px(logits, pixel)[c], vd_cu_px(x, pixel)[c]);
    }
};

struct bern_grad_f {
    int crop;
    float scale;
    vd_tensor logits, x, dlogits;
    VD_HD void operator()(int64_t i) const {
        int64_t pixel = i / x.c;
        int w = (int)(pixel % x.w), h = (int)(pixel / x.w % x.h);
        bool inside = h >= crop && h < x.h - crop && w >= crop && w < x.w - crop;
        double l = vd_cu_el(logits, i), t = vd_cu_el(x, i);
        vd_cu_el(dlogits, i) = inside ? (float)(scale * (sigmoid(l) - t)) : 0.0f;
    }
};

/* Element i of out reads the logit (dh/2, dw/2) pixels further in: out is a centred crop. */
struct bern_sample_f {
    int dh, dw;
    vd_noise noise;
    vd_tensor logits, out;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % out.c);
        int64_t r = i / out.c;
        int w = (int)(r % out.w), h = (int)(r / out.w % out.h);
        int64_t n = r / out.w / out.h;
        float u = noise.given ? noise.given[i] : vd_rng_uniform_hd(noise.seed, noise.stream, (uint64_t)i);
        int64_t src = (n * logits.h + h + dh / 2) * logits.w + w + dw / 2;
        double prob = sigmoid(vd_cu_px(logits, src)[c]);
        vd_cu_el(out, i) = u < prob ? 1.0f : 0.0f;
    }
};

} // namespace

void vd_cu_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x, float *nll) {
    const char *op = "dmol_fwd";
    if (vd_cu_failed(be) || !dmol_args(be, op, d, logits, x)) return;
    VD_CU_REQUIRE(be, nll, "dmol_fwd: nll is missing");
    double *acc = vd_cu_acc(be, op, 1);
    if (!acc) return;
    vd_cu_sum(be, op, vd_cu_pixels(*x), dmol_nll_f{dmol_context(d), *logits, *x}, acc);
    vd_cu_store(be, op, acc, nll, 1, false);
}

void vd_cu_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits, const vd_tensor *x,
                    const vd_tensor *dlogits) {
    const char *op = "dmol_bwd";
    if (vd_cu_failed(be) || !dmol_args(be, op, d, logits, x) || !vd_cu_valid(be, op, "dlogits", dlogits) ||
        !vd_cu_same_shape(be, op, logits, dlogits))
        return;
    vd_cu_for(be, op, vd_cu_pixels(*x), dmol_grad_f{dmol_context(d), scale, *logits, *x, *dlogits});
}

void vd_cu_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature, const vd_tensor *logits,
                       const vd_noise *noise, const vd_tensor *out) {
    const char *op = "dmol_sample";
    if (vd_cu_failed(be) || !dmol_args(be, op, d, logits, out)) return;
    VD_CU_REQUIRE(be, noise, "dmol_sample: noise is missing");
    VD_CU_REQUIRE(be, temperature > 0, "dmol_sample: temperature %g is not positive", (double)temperature);
    int64_t pixels = vd_cu_pixels(*out);
    vd_cu_for(be, op, pixels, dmol_sample_f{dmol_context(d), temperature, *noise, pixels, *logits, *out});
}

void vd_cu_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x, float *nll) {
    const char *op = "bernoulli_fwd";
    if (vd_cu_failed(be) || !bern_args(be, op, crop, logits, x)) return;
    VD_CU_REQUIRE(be, nll, "bernoulli_fwd: nll is missing");
    double *acc = vd_cu_acc(be, op, 1);
    if (!acc) return;
    int64_t count = (int64_t)x->n * (x->h - 2 * crop) * (x->w - 2 * crop) * x->c;
    vd_cu_sum(be, op, count, bern_nll_f{crop, *logits, *x}, acc);
    vd_cu_store(be, op, acc, nll, 1, false);
}

void vd_cu_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits, const vd_tensor *x,
                         const vd_tensor *dlogits) {
    const char *op = "bernoulli_bwd";
    if (vd_cu_failed(be) || !bern_args(be, op, crop, logits, x) || !vd_cu_valid(be, op, "dlogits", dlogits) ||
        !vd_cu_same_shape(be, op, logits, dlogits))
        return;
    vd_cu_for(be, op, vd_cu_numel(*x), bern_grad_f{crop, scale, *logits, *x, *dlogits});
}

void vd_cu_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise, const vd_tensor *out) {
    const char *op = "bernoulli_sample";
    if (vd_cu_failed(be) || !vd_cu_valid(be, op, "logits", logits) || !vd_cu_valid(be, op, "out", out)) return;
    int dh = logits->h - out->h, dw = logits->w - out->w;
    VD_CU_REQUIRE(be, noise, "bernoulli_sample: noise is missing");
    VD_CU_REQUIRE(be, out->n == logits->n && out->c == logits->c && dh >= 0 && dw >= 0 && dh % 2 == 0 && dw % 2 == 0,
                  "bernoulli_sample: out [%d,%d,%d,%d] is not a centred crop of logits [%d,%d,%d,%d]", out->n,
                  out->h, out->w, out->c, logits->n, logits->h, logits->w, logits->c);
    vd_cu_for(be, op, vd_cu_numel(*out), bern_sample_f{dh, dw, *noise, *logits, *out});
}

VD_CU_END
