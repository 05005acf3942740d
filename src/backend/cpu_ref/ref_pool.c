/* cpu_ref inference-only resampling: max and average pooling, and the bilinear resize of
 * torch's F.interpolate, as plain loops over output elements (sums in double). */
#include "backend/cpu_ref/ref.h"
#include "backend/pool_math.h"

static bool pool_shapes(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x,
                        const vd_tensor *y) {
    return vd_ref_valid(be, "pool_fwd", "x", x) && vd_ref_valid(be, "pool_fwd", "y", y) &&
           pool_fits(be, "pool_fwd", p, x, y);
}

static float pool_point(const vd_pool_desc *p, const vd_tensor *x, int n, int oh, int ow, int c) {
    int h0, h1, w0, w1;
    pool_window(oh, p->kh, p->stride, p->pad_top, x->h, &h0, &h1);
    pool_window(ow, p->kw, p->stride, p->pad_left, x->w, &w0, &w1);
    if (p->kind == VD_POOL_MAX) {
        float m = -INFINITY;
        for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++)
                m = pool_max_step(m, ref_at(x, n, h, w)[c]);
        return m;
    }
    double sum = 0;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++)
            sum += ref_at(x, n, h, w)[c];
    return (float)(sum / ((h1 - h0) * (w1 - w0)));
}

void vd_ref_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y) {
    REF_REQUIRE(be, p, "pool_fwd: the pooling is missing");
    if (!pool_shapes(be, p, x, y)) return;
    for (int n = 0; n < y->n; n++)
        for (int oh = 0; oh < y->h; oh++)
            for (int ow = 0; ow < y->w; ow++)
                for (int c = 0; c < y->c; c++)
                    ref_at(y, n, oh, ow)[c] = pool_point(p, x, n, oh, ow, c);
}

void vd_ref_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_ref_valid(be, "resize_bilinear", "x", x) ||
        !vd_ref_valid(be, "resize_bilinear", "y", y))
        return;
    REF_REQUIRE(be, x->n == y->n && x->c == y->c,
                "resize_bilinear: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] differ in images "
                "or channels",
                x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
    for (int n = 0; n < y->n; n++) {
        for (int oh = 0; oh < y->h; oh++) {
            resize_taps th = resize_taps_at(x->h, y->h, oh);
            for (int ow = 0; ow < y->w; ow++) {
                resize_taps tw = resize_taps_at(x->w, y->w, ow);
                const float *a = ref_at(x, n, th.i0, tw.i0), *b = ref_at(x, n, th.i0, tw.i1);
                const float *d = ref_at(x, n, th.i1, tw.i0), *e = ref_at(x, n, th.i1, tw.i1);
                for (int c = 0; c < y->c; c++)
                    ref_at(y, n, oh, ow)[c] = (float)resize_blend(th, tw, a[c], b[c], d[c], e[c]);
            }
        }
    }
}
