/* cpu inference-only resampling: max and average pooling and torch's bilinear resize, as
 * OpenMP loops over output rows with the channels innermost (contiguous in NHWC), in float.
 * Windows and taps come from backend/pool_math.h, so they are cpu_ref's exactly. */
#include <math.h>

#include "backend/cpu/cpu.h"
#include "backend/pool_math.h"

static bool pool_shapes(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x,
                        const vd_tensor *y) {
    return vd_cpu_valid(be, "pool_fwd", "x", x) && vd_cpu_valid(be, "pool_fwd", "y", y) &&
           pool_fits(be, "cpu pool_fwd", p, x, y);
}

/* One output pixel d[c] from the window rows [h0, h1) x columns [w0, w1) of image n. */
CPU_SIMD_CLONES static void pool_pixel(const vd_pool_desc *p, const vd_tensor *x, int64_t n, int h0,
                                       int h1, int w0, int w1, float *restrict d) {
    int c = x->c;
    bool max = p->kind == VD_POOL_MAX;
    for (int k = 0; k < c; k++)
        d[k] = max ? -INFINITY : 0.0f;
    for (int h = h0; h < h1; h++) {
        for (int w = w0; w < w1; w++) {
            const float *restrict s = cpu_px(x, (n * x->h + h) * x->w + w);
            if (max)
                for (int k = 0; k < c; k++)
                    d[k] = pool_max_step(d[k], s[k]);
            else
                for (int k = 0; k < c; k++)
                    d[k] += s[k];
        }
    }
    if (!max) {
        float count = (float)((h1 - h0) * (w1 - w0));
        for (int k = 0; k < c; k++)
            d[k] /= count;
    }
}

void vd_cpu_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y) {
    CPU_REQUIRE(be, p, "cpu pool_fwd: the pooling is missing");
    if (!pool_shapes(be, p, x, y)) return;
    int64_t rows = (int64_t)y->n * y->h;
    CPU_PARALLEL_FOR(vd_tensor_numel(y) * p->kh * p->kw)
    for (int64_t r = 0; r < rows; r++) {
        int h0, h1;
        pool_window((int)(r % y->h), p->kh, p->stride, p->pad_top, x->h, &h0, &h1);
        for (int ow = 0; ow < y->w; ow++) {
            int w0, w1;
            pool_window(ow, p->kw, p->stride, p->pad_left, x->w, &w0, &w1);
            pool_pixel(p, x, r / y->h, h0, h1, w0, w1, cpu_px(y, r * y->w + ow));
        }
    }
}

/* One output row: the taps of each column, the four pixels blended in float. */
CPU_SIMD_CLONES static void resize_row(const vd_tensor *x, const vd_tensor *y, int64_t n,
                                       resize_taps th, float *restrict d0) {
    int c = y->c;
    const float *r0 = cpu_px(x, (n * x->h + th.i0) * x->w), *r1 = cpu_px(x, (n * x->h + th.i1) * x->w);
    for (int ow = 0; ow < y->w; ow++) {
        resize_taps tw = resize_taps_at(x->w, y->w, ow);
        const float *restrict a = r0 + tw.i0 * x->ld, *restrict b = r0 + tw.i1 * x->ld;
        const float *restrict e = r1 + tw.i0 * x->ld, *restrict f = r1 + tw.i1 * x->ld;
        float *restrict d = d0 + ow * y->ld;
        for (int k = 0; k < c; k++)
            d[k] = th.l0 * (tw.l0 * a[k] + tw.l1 * b[k]) + th.l1 * (tw.l0 * e[k] + tw.l1 * f[k]);
    }
}

void vd_cpu_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_cpu_valid(be, "resize_bilinear", "x", x) ||
        !vd_cpu_valid(be, "resize_bilinear", "y", y))
        return;
    CPU_REQUIRE(be, x->n == y->n && x->c == y->c,
                "cpu resize_bilinear: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] differ in "
                "images or channels",
                x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
    int64_t rows = (int64_t)y->n * y->h;
    CPU_PARALLEL_FOR(vd_tensor_numel(y))
    for (int64_t r = 0; r < rows; r++)
        resize_row(x, y, r / y->h, resize_taps_at(x->h, y->h, (int)(r % y->h)),
                   cpu_px(y, r * y->w));
}
