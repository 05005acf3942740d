/* cpu Bernoulli output distribution (binarized MNIST): the negative log-likelihood over the
 * centre crop (reduced in fixed chunks, cpu.h), its gradient and sampling, parallel over
 * image rows. Per-element math in double, so samples match cpu_ref's bit for bit. */
#include <math.h>

#include "backend/cpu/cpu.h"
#include "vdvae/rng.h"

static double sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* -log p(x | logits) = softplus(l) - x l, in the form that never overflows. */
static double bern_nll(double l, double x) {
    return fmax(l, 0) - l * x + log1p(exp(-fabs(l)));
}

static bool bern_args(vd_backend *be, const char *op, int crop, const vd_tensor *logits,
                      const vd_tensor *x) {
    if (!vd_cpu_valid(be, op, "logits", logits) || !vd_cpu_valid(be, op, "x", x) ||
        !vd_cpu_same_shape(be, op, logits, x))
        return false;
    if (crop >= 0 && 2 * crop < logits->h && 2 * crop < logits->w) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: crop %d leaves nothing of %dx%d", op, crop,
                    logits->h, logits->w);
    return false;
}

/* Rows (n, h) of the crop are the chunks of the sum: fixed by the shape, not the threads. */
void vd_cpu_bernoulli_fwd(vd_backend *be, int crop, const vd_tensor *logits, const vd_tensor *x,
                          float *nll) {
    if (!bern_args(be, "bernoulli_fwd", crop, logits, x)) return;
    CPU_REQUIRE(be, nll, "cpu bernoulli_fwd: nll is missing");
    int rows_per_image = x->h - 2 * crop;
    int64_t rows = (int64_t)x->n * rows_per_image;
    double *part = vd_cpu_partials(be, (size_t)rows);
    if (!part) return;
    CPU_PARALLEL_FOR(vd_tensor_numel(x) * 4)
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / rows_per_image, h = crop + r % rows_per_image;
        double sum = 0;
        for (int w = crop; w < x->w - crop; w++) {
            int64_t q = (n * x->h + h) * x->w + w;
            const float *l = cpu_px(logits, q), *t = cpu_px(x, q);
            for (int c = 0; c < x->c; c++)
                sum += bern_nll(l[c], t[c]);
        }
        part[r] = sum;
    }
    double total = 0;
    for (int64_t r = 0; r < rows; r++)
        total += part[r];
    *nll = (float)total;
}

void vd_cpu_bernoulli_bwd(vd_backend *be, int crop, float scale, const vd_tensor *logits,
                          const vd_tensor *x, const vd_tensor *dlogits) {
    if (!bern_args(be, "bernoulli_bwd", crop, logits, x) ||
        !vd_cpu_valid(be, "bernoulli_bwd", "dlogits", dlogits) ||
        !vd_cpu_same_shape(be, "bernoulli_bwd", logits, dlogits))
        return;
    CPU_PARALLEL_FOR(vd_tensor_numel(x) * 4)
    for (int64_t q = 0; q < cpu_pixels(x); q++) {
        int h = (int)(q / x->w % x->h), w = (int)(q % x->w);
        bool inside = h >= crop && h < x->h - crop && w >= crop && w < x->w - crop;
        const float *l = cpu_px(logits, q), *t = cpu_px(x, q);
        float *d = cpu_px(dlogits, q);
        for (int c = 0; c < x->c; c++)
            d[c] = inside ? (float)(scale * (sigmoid(l[c]) - t[c])) : 0.0f;
    }
}

/* out may be smaller than logits: it then samples the centred crop (32x32 logits, 28x28
 * images). Uniform i is the flat NHWC index of out; 1 where u < sigmoid(logit). */
void vd_cpu_bernoulli_sample(vd_backend *be, const vd_tensor *logits, const vd_noise *noise,
                             const vd_tensor *out) {
    if (!vd_cpu_valid(be, "bernoulli_sample", "logits", logits) ||
        !vd_cpu_valid(be, "bernoulli_sample", "out", out))
        return;
    int dh = logits->h - out->h, dw = logits->w - out->w;
    CPU_REQUIRE(be, noise, "cpu bernoulli_sample: noise is missing");
    CPU_REQUIRE(be,
                out->n == logits->n && out->c == logits->c && dh >= 0 && dw >= 0 && dh % 2 == 0 &&
                    dw % 2 == 0,
                "cpu bernoulli_sample: out [%d,%d,%d,%d] is not a centred crop of logits "
                "[%d,%d,%d,%d]",
                out->n, out->h, out->w, out->c, logits->n, logits->h, logits->w, logits->c);
    CPU_PARALLEL_FOR(vd_tensor_numel(out) * 4)
    for (int64_t q = 0; q < cpu_pixels(out); q++) {
        int64_t n = q / ((int64_t)out->h * out->w);
        int h = (int)(q / out->w % out->h), w = (int)(q % out->w);
        const float *l = cpu_px(logits, (n * logits->h + h + dh / 2) * logits->w + w + dw / 2);
        float *o = cpu_px(out, q);
        for (int c = 0; c < out->c; c++) {
            int64_t i = q * out->c + c;
            float u = noise->given ? noise->given[i]
                                   : vd_rng_uniform(noise->seed, noise->stream, (uint64_t)i);
            o[c] = u < sigmoid(l[c]) ? 1.0f : 0.0f;
        }
    }
}
