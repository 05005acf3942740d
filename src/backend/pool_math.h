/* Per-output math of the inference-only resampling ops (pooling windows, bilinear resize
 * taps), shared by cpu_ref, cpu and the CUDA kernels so that every backend clips the same
 * windows and takes the same taps and weights as torch; each keeps its own loops and checks. */
#ifndef VD_BACKEND_POOL_MATH_H
#define VD_BACKEND_POOL_MATH_H

#include <math.h>

#include "backend/ops.h"
#include "core/hd.h"

/* The output size of a window of k moved by s over in + lo + hi (as a convolution's). */
VD_HD static inline int pool_out_size(int in, int k, int s, int lo, int hi) {
    int span = in + lo + hi - k;
    return span < 0 ? 0 : span / s + 1;
}

/* The window of output o along one axis, clipped to the input: [*first, *end). */
VD_HD static inline void pool_window(int o, int k, int s, int lo, int in, int *first, int *end) {
    int a = o * s - lo, b = a + k;
    *first = a < 0 ? 0 : a;
    *end = b > in ? in : b;
}

/* The geometry is one a pool can have: positive kernel and stride, each pad below its kernel
 * side (so no window is all padding and averages never divide by zero), a known kind. */
VD_HD static inline bool pool_desc_ok(const vd_pool_desc *p) {
    return (p->kind == VD_POOL_MAX || p->kind == VD_POOL_AVG) && p->kh >= 1 && p->kw >= 1 &&
           p->stride >= 1 && p->pad_top >= 0 && p->pad_bottom >= 0 && p->pad_left >= 0 &&
           p->pad_right >= 0 && p->pad_top < p->kh && p->pad_bottom < p->kh &&
           p->pad_left < p->kw && p->pad_right < p->kw;
}

/* The max of a window keeps a NaN once seen, as torch's max_pool2d does. */
VD_HD static inline float pool_max_step(float m, float v) {
    return (v > m || v != v) ? v : m;
}

/* The two taps and weights of output o along an axis of `in` pixels resized to `out`, as
 * torch's CPU upsample_bilinear2d computes them (ops.h resize_bilinear; measured against
 * torch 1.13.1, to the last bit of each weight): a float scale, the source coordinate from it
 * in double and never rounded to float (rounding it moves a weight by up to 3e-5 at 300 -> 17),
 * the weights rounded to float. */
typedef struct resize_taps {
    int i0, i1;
    float l0, l1;
} resize_taps;

VD_HD static inline resize_taps resize_taps_at(int in, int out, int o) {
    resize_taps t;
    if (in == out) {
        t.i0 = t.i1 = o;
        t.l0 = 1.0f, t.l1 = 0.0f;
        return t;
    }
    float scale = (float)in / (float)out;
    double s = scale * (o + 0.5) - 0.5;
    if (s < 0) s = 0;
    t.i0 = (int)s; /* floor: s >= 0 */
    t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
    double l1 = s - t.i0;
    t.l1 = (float)(l1 < 0 ? 0 : l1 > 1 ? 1 : l1);
    t.l0 = 1.0f - t.l1;
    return t;
}

/* The blend of the four taps in double (the oracle's; the CUDA kernel's too, so that it
 * matches cpu_ref to the bit), rounded to float once by the caller. */
VD_HD static inline double resize_blend(resize_taps th, resize_taps tw, float x00, float x01,
                                        float x10, float x11) {
    return (double)th.l0 * ((double)tw.l0 * x00 + (double)tw.l1 * x01) +
           (double)th.l1 * ((double)tw.l0 * x10 + (double)tw.l1 * x11);
}

/* The checks every backend makes once x and y are valid tensors: a known pooling and y of the
 * pooled size; false with the failure recorded, naming `op` (the backend's words for it). */
static inline bool pool_fits(vd_backend *be, const char *op, const vd_pool_desc *p, const vd_tensor *x,
                             const vd_tensor *y) {
    if (!pool_desc_ok(p)) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: bad pooling kind %d k %dx%d stride %d pads %d,%d,%d,%d", op,
                        (int)p->kind, p->kh, p->kw, p->stride, p->pad_top, p->pad_left, p->pad_bottom,
                        p->pad_right);
        return false;
    }
    int ho = pool_out_size(x->h, p->kh, p->stride, p->pad_top, p->pad_bottom);
    int wo = pool_out_size(x->w, p->kw, p->stride, p->pad_left, p->pad_right);
    if (y->n == x->n && y->c == x->c && y->h == ho && y->w == wo) return true;
    vd_backend_fail(be, VD_ERR_INVALID,
                    "%s: output [%d,%d,%d,%d] does not fit input [%d,%d,%d,%d] pooled k %dx%d stride %d "
                    "(should be %dx%d)",
                    op, y->n, y->h, y->w, y->c, x->n, x->h, x->w, x->c, p->kh, p->kw, p->stride, ho, wo);
    return false;
}

#endif
