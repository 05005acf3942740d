/* cpu_ref Bernoulli output distribution (binarized MNIST): the negative log-likelihood of
 * the logits over the centre crop, its gradient, and sampling. */
#include "backend/cpu_ref/ref.h"
#include "vdvae/rng.h"

static bool bern_args(vd_backend *be, const char *op, int crop, const vd_tensor *logits,
                      const vd_tensor *x) {
    if (!vd_ref_valid(be, op, "logits", logits) || !vd_ref_valid(be, op, "x", x) ||
        !vd_ref_same_shape(be, op, logits, x))
        return false;
    if (crop >= 0 && 2 * crop < logits->h && 2 * crop < logits->w) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: crop %d leaves nothing of %dx%d", op, crop, logits->h,
                    logits->w);
    return false;
}

static bool in_crop(const vd_tensor *t, int crop, int h, int w) {
    return h >= crop && h < t->h - crop && w >= crop && w < t->w - crop;
}

/* -log p(x | logits) = softplus(l) - x l, in the form that never overflows. */
static double bern_nll(double l, double x) {
    return fmax(l, 0) - l * x + log1p(exp(-fabs(l)));
}

void vd_ref_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                          float *nll) {
    if (!bern_args(be, "bernoulli_fwd", crop, logits, x)) return;
    REF_REQUIRE(be, nll, "bernoulli_fwd: nll is missing");
    double total = 0;
    for (int n = 0; n < x->n; n++)
        for (int h = crop; h < x->h - crop; h++)
            for (int w = crop; w < x->w - crop; w++)
                for (int c = 0; c < x->c; c++)
                    total += bern_nll(ref_at(logits, n, h, w)[c], ref_at(x, n, h, w)[c]);
    *nll = (float)total;
}

void vd_ref_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                          const vd_tensor *x, const vd_tensor *dlogits) {
    if (!bern_args(be, "bernoulli_bwd", crop, logits, x) ||
        !vd_ref_valid(be, "bernoulli_bwd", "dlogits", dlogits) ||
        !vd_ref_same_shape(be, "bernoulli_bwd", logits, dlogits))
        return;
    for (int n = 0; n < x->n; n++) {
        for (int h = 0; h < x->h; h++) {
            for (int w = 0; w < x->w; w++) {
                bool inside = in_crop(x, crop, h, w);
                for (int c = 0; c < x->c; c++) {
                    double l = ref_at(logits, n, h, w)[c], t = ref_at(x, n, h, w)[c];
                    ref_at(dlogits, n, h, w)[c] =
                        inside ? (float)(scale * (ref_sigmoid(l) - t)) : 0.0f;
                }
            }
        }
    }
}

/* out may be smaller than logits: it then samples the centred crop (32x32 logits, 28x28
 * images). Uniform i is the flat NHWC index of out; 1 where u < sigmoid(logit). */
void vd_ref_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                             const vd_tensor *out) {
    if (!vd_ref_valid(be, "bernoulli_sample", "logits", logits) ||
        !vd_ref_valid(be, "bernoulli_sample", "out", out))
        return;
    int dh = logits->h - out->h, dw = logits->w - out->w;
    REF_REQUIRE(be, noise, "bernoulli_sample: noise is missing");
    REF_REQUIRE(be,
                out->n == logits->n && out->c == logits->c && dh >= 0 && dw >= 0 && dh % 2 == 0 &&
                    dw % 2 == 0,
                "bernoulli_sample: out [%d,%d,%d,%d] is not a centred crop of logits [%d,%d,%d,%d]",
                out->n, out->h, out->w, out->c, logits->n, logits->h, logits->w, logits->c);
    int64_t i = 0;
    for (int n = 0; n < out->n; n++) {
        for (int h = 0; h < out->h; h++) {
            for (int w = 0; w < out->w; w++) {
                for (int c = 0; c < out->c; c++, i++) {
                    float u = noise->given
                                  ? noise->given[i]
                                  : vd_rng_uniform(noise->seed, noise->stream, (uint64_t)i);
                    double prob = ref_sigmoid(ref_at(logits, n, h + dh / 2, w + dw / 2)[c]);
                    ref_at(out, n, h, w)[c] = u < prob ? 1.0f : 0.0f;
                }
            }
        }
    }
}
