/* cpu discretised mixture of logistics: the per-pixel math of backend/dmol_math.h, parallel
 * over pixels; the nll is reduced in fixed chunks (cpu.h) so it does not depend on threads. */
#include <math.h>

#include "backend/cpu/cpu.h"
#include "backend/dmol_math.h"

#define DMOL_CHUNK 64 /* pixels per chunk of the nll sum */

static bool dmol_args(vd_backend *be, const char *op, const vd_dmol *d, const vd_tensor *logits,
                      const vd_tensor *x) {
    return dmol_mixture_ok(be, "cpu ", op, d) && vd_cpu_valid(be, op, "logits", logits) &&
           vd_cpu_valid(be, op, "x", x) && dmol_fits(be, "cpu ", op, d, logits, x);
}

void vd_cpu_dmol_fwd(vd_backend *be, const vd_dmol *d, const vd_tensor *logits, const vd_tensor *x,
                     float *nll) {
    if (!dmol_args(be, "dmol_fwd", d, logits, x)) return;
    CPU_REQUIRE(be, nll, "cpu dmol_fwd: nll is missing");
    dmol_ctx k = dmol_context(d);
    int64_t pixels = cpu_pixels(x), chunks = cpu_chunks(pixels, DMOL_CHUNK);
    double *part = vd_cpu_partials(be, (size_t)chunks);
    if (!part) return;
    CPU_PARALLEL_FOR(vd_tensor_numel(logits) * 8)
    for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t end = (ch + 1) * DMOL_CHUNK < pixels ? (ch + 1) * DMOL_CHUNK : pixels;
        double sum = 0;
        for (int64_t p = ch * DMOL_CHUNK; p < end; p++)
            sum += dmol_pixel(&k, cpu_px(logits, p), cpu_px(x, p), 0, NULL);
        part[ch] = sum;
    }
    double total = 0;
    for (int64_t ch = 0; ch < chunks; ch++)
        total += part[ch];
    *nll = (float)total;
}

void vd_cpu_dmol_bwd(vd_backend *be, const vd_dmol *d, float scale, const vd_tensor *logits,
                     const vd_tensor *x, const vd_tensor *dlogits) {
    if (!dmol_args(be, "dmol_bwd", d, logits, x) ||
        !vd_cpu_valid(be, "dmol_bwd", "dlogits", dlogits) ||
        !vd_cpu_same_shape(be, "dmol_bwd", logits, dlogits))
        return;
    dmol_ctx k = dmol_context(d);
    CPU_PARALLEL_FOR(vd_tensor_numel(logits) * 8)
    for (int64_t p = 0; p < cpu_pixels(x); p++)
        dmol_pixel(&k, cpu_px(logits, p), cpu_px(x, p), scale, cpu_px(dlogits, p));
}

void vd_cpu_dmol_sample(vd_backend *be, const vd_dmol *d, float temperature,
                        const vd_tensor *logits, const vd_noise *noise, const vd_tensor *out) {
    if (!dmol_args(be, "dmol_sample", d, logits, out)) return;
    CPU_REQUIRE(be, noise, "cpu dmol_sample: noise is missing");
    CPU_REQUIRE(be, temperature > 0, "cpu dmol_sample: temperature %g is not positive",
                (double)temperature);
    dmol_ctx k = dmol_context(d);
    int64_t pixels = cpu_pixels(out);
    CPU_PARALLEL_FOR(vd_tensor_numel(logits) * 8)
    for (int64_t p = 0; p < pixels; p++)
        dmol_sample_pixel(&k, cpu_px(logits, p), temperature, noise, p, pixels, cpu_px(out, p));
}
