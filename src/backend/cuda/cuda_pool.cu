/* CUDA inference-only resampling: max and average pooling and torch's bilinear resize, one
 * thread per output element computing what cpu_ref's loop body does (sums and blends in
 * double, windows and taps from backend/pool_math.h), so the two agree to the bit. */
#include "backend/cuda/cuda.h"
#include "backend/pool_math.h"

VD_CU_BEGIN

namespace {

/* Element i of y (channel fastest, as NHWC) pools its window of x. */
struct pool_f {
    vd_pool_desc p;
    vd_tensor x, y;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % y.c);
        int64_t q = i / y.c, ow = q % y.w, nh = q / y.w, oh = nh % y.h, n = nh / y.h;
        int h0, h1, w0, w1;
        pool_window((int)oh, p.kh, p.stride, p.pad_top, x.h, &h0, &h1);
        pool_window((int)ow, p.kw, p.stride, p.pad_left, x.w, &w0, &w1);
        float m = -INFINITY;
        double sum = 0;
        for (int h = h0; h < h1; h++) {
            for (int w = w0; w < w1; w++) {
                float v = vd_cu_px(x, (n * x.h + h) * x.w + w)[c];
                m = pool_max_step(m, v);
                sum += v;
            }
        }
        vd_cu_px(y, q)[c] = p.kind == VD_POOL_MAX ? m : (float)(sum / ((h1 - h0) * (w1 - w0)));
    }
};

struct resize_f {
    vd_tensor x, y;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % y.c);
        int64_t q = i / y.c, ow = q % y.w, nh = q / y.w, oh = nh % y.h, n = nh / y.h;
        resize_taps th = resize_taps_at(x.h, y.h, (int)oh), tw = resize_taps_at(x.w, y.w, (int)ow);
        int64_t r0 = (n * x.h + th.i0) * x.w, r1 = (n * x.h + th.i1) * x.w;
        float a = vd_cu_px(x, r0 + tw.i0)[c], b = vd_cu_px(x, r0 + tw.i1)[c];
        float d = vd_cu_px(x, r1 + tw.i0)[c], e = vd_cu_px(x, r1 + tw.i1)[c];
        vd_cu_px(y, q)[c] = (float)resize_blend(th, tw, a, b, d, e);
    }
};

bool pool_shapes(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y) {
    return vd_cu_valid(be, "pool_fwd", "x", x) && vd_cu_valid(be, "pool_fwd", "y", y) &&
           pool_fits(be, "pool_fwd", p, x, y);
}

} // namespace

void vd_cu_pool_fwd(vd_backend *be, const vd_pool_desc *p, const vd_tensor *x, const vd_tensor *y) {
    if (vd_cu_failed(be)) return;
    VD_CU_REQUIRE(be, p, "pool_fwd: the pooling is missing");
    if (!pool_shapes(be, p, x, y)) return;
    vd_cu_for(be, "pool_fwd", vd_cu_numel(*y), pool_f{*p, *x, *y});
}

void vd_cu_resize_bilinear(vd_backend *be, const vd_tensor *x, const vd_tensor *y) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "resize_bilinear", "x", x) ||
        !vd_cu_valid(be, "resize_bilinear", "y", y))
        return;
    VD_CU_REQUIRE(be, x->n == y->n && x->c == y->c,
                  "resize_bilinear: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] differ in images or "
                  "channels",
                  x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c);
    vd_cu_for(be, "resize_bilinear", vd_cu_numel(*y), resize_f{*x, *y});
}

VD_CU_END
