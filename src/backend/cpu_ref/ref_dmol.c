/* cpu_ref discretised mixture of logistics: plain loops over pixels around the per-pixel math
 * of backend/dmol_math.h (the nll, its gradient, sampling), summed in pixel order. */
#include "backend/cpu_ref/ref.h"
#include "backend/dmol_math.h"

static bool dmol_args(vd_backend *be, const char *op, const vd_dmol *d, const vd_tensor *logits,
                      const vd_tensor *x) {
    return dmol_mixture_ok(be, "", op, d) && vd_ref_valid(be, op, "logits", logits) &&
           vd_ref_valid(be, op, "x", x) && dmol_fits(be, "", op, d, logits, x);
}

void vd_ref_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                     float *nll) {
    if (!dmol_args(be, "dmol_fwd", d, logits, x)) return;
    REF_REQUIRE(be, nll, "dmol_fwd: nll is missing");
    dmol_ctx k = dmol_context(d);
    double total = 0;
    for (int64_t p = 0; p < ref_pixels(x); p++)
        total += dmol_pixel(&k, ref_px(logits, p), ref_px(x, p), 0, NULL);
    *nll = (float)total;
}

void vd_ref_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                     const vd_tensor *x, const vd_tensor *dlogits) {
    if (!dmol_args(be, "dmol_bwd", d, logits, x) ||
        !vd_ref_valid(be, "dmol_bwd", "dlogits", dlogits) ||
        !vd_ref_same_shape(be, "dmol_bwd", logits, dlogits))
        return;
    dmol_ctx k = dmol_context(d);
    for (int64_t p = 0; p < ref_pixels(x); p++)
        dmol_pixel(&k, ref_px(logits, p), ref_px(x, p), scale, ref_px(dlogits, p));
}

void vd_ref_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature,
                        const vd_tensor *logits, const vd_noise *noise, const vd_tensor *out) {
    if (!dmol_args(be, "dmol_sample", d, logits, out)) return;
    REF_REQUIRE(be, noise, "dmol_sample: noise is missing");
    REF_REQUIRE(be, temperature > 0, "dmol_sample: temperature %g is not positive",
                (double)temperature);
    dmol_ctx k = dmol_context(d);
    int64_t pixels = ref_pixels(out);
    for (int64_t p = 0; p < pixels; p++)
        dmol_sample_pixel(&k, ref_px(logits, p), temperature, noise, p, pixels, ref_px(out, p));
}
