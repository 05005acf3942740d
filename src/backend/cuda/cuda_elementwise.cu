/* CUDA elementwise ops: fill, copy, activations, add/axpy, nearest upsampling and the batch
 * broadcast, one thread per output element, each computing what cpu_ref's loop body does. */
#include "backend/act_math.h"
#include "backend/cuda/cuda.h"

VD_CU_BEGIN

/* File-local functors: other kernel files share the namespace, and a second struct of the same
 * name there would be a silent ODR clash. */
namespace {

struct fill_f {
    vd_tensor t;
    float v;
    VD_HD void operator()(int64_t i) const {
        vd_cu_el(t, i) = v;
    }
};

struct copy_f {
    vd_tensor src, dst;
    VD_HD void operator()(int64_t i) const {
        vd_cu_el(dst, i) = vd_cu_el(src, i);
    }
};

struct act_fwd_f {
    vd_act act;
    float param;
    vd_tensor x, y;
    VD_HD void operator()(int64_t i) const {
        vd_cu_el(y, i) = (float)act_value(act, param, vd_cu_el(x, i));
    }
};

struct act_bwd_f {
    vd_act act;
    float param;
    vd_tensor x, dy, dx;
    bool acc;
    VD_HD void operator()(int64_t i) const {
        float g = (float)(vd_cu_el(dy, i) * act_slope(act, param, vd_cu_el(x, i)));
        float &d = vd_cu_el(dx, i);
        d = acc ? d + g : g;
    }
};

/* y may alias a or b: each thread reads its element of both before writing it. */
struct add_f {
    vd_tensor a, b, y;
    VD_HD void operator()(int64_t i) const {
        vd_cu_el(y, i) = vd_cu_el(a, i) + vd_cu_el(b, i);
    }
};

struct axpy_f {
    float alpha;
    vd_tensor x, y;
    VD_HD void operator()(int64_t i) const {
        vd_cu_el(y, i) += alpha * vd_cu_el(x, i);
    }
};

/* Pixel (n, h, w) of t, flat over n, h, w. */
VD_HD int64_t pixel_at(const vd_tensor &t, int64_t n, int64_t h, int64_t w) {
    return (n * t.h + h) * t.w + w;
}

/* Element i of y reads x's pixel (n, h / s, w / s). */
struct upsample_fwd_f {
    int s;
    vd_tensor x, y;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % y.c);
        int64_t q = i / y.c, w = q % y.w, nh = q / y.w, h = nh % y.h, n = nh / y.h;
        vd_cu_px(y, q)[c] = vd_cu_px(x, pixel_at(x, n, h / s, w / s))[c];
    }
};

/* Element i of dx sums its s x s block of dy in double, rows then columns, as cpu_ref does. */
struct upsample_bwd_f {
    int s;
    vd_tensor dy, dx;
    bool acc;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % dx.c);
        int64_t q = i / dx.c, w = q % dx.w, nh = q / dx.w, h = nh % dx.h, n = nh / dx.h;
        double sum = 0;
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++)
                sum += vd_cu_px(dy, pixel_at(dy, n, h * s + a, w * s + b))[c];
        float &d = vd_cu_px(dx, q)[c];
        d = acc ? (float)(d + sum) : (float)sum;
    }
};

/* t is one image in the reference's planar (1, C, H, W) layout: element (h, w, c) sits at
 * c * H * W + (h * W + w). */
struct broadcast_fwd_f {
    const float *t;
    vd_tensor y;
    bool acc;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % y.c);
        int64_t q = i / y.c, image = (int64_t)y.h * y.w;
        float v = t[c * image + q % image];
        float &d = vd_cu_px(y, q)[c];
        d = acc ? d + v : v;
    }
};

/* One thread per element of dt, summing over the batch in order (deterministic, no atomics).
 * Threads run along channels so that a warp reads consecutive floats of each dy pixel. */
struct broadcast_bwd_f {
    vd_tensor dy;
    float *dt;
    VD_HD void operator()(int64_t i) const {
        int c = (int)(i % dy.c);
        int64_t q = i / dy.c, image = (int64_t)dy.h * dy.w;
        double sum = 0;
        for (int n = 0; n < dy.n; n++)
            sum += vd_cu_px(dy, n * image + q)[c];
        dt[c * image + q] += (float)sum;
    }
};

bool act_known(vd_backend *be, vd_act act) {
    if (act_is_known(act)) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "act: unknown activation %d", (int)act);
    return false;
}

bool upsample_shapes(vd_backend *be, const char *op, int s, const vd_tensor *small, const vd_tensor *big) {
    if (s >= 1 && big->n == small->n && big->h == small->h * s && big->w == small->w * s &&
        big->c == small->c)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: [%d,%d,%d,%d] is not [%d,%d,%d,%d] upsampled by %d", op,
                    big->n, big->h, big->w, big->c, small->n, small->h, small->w, small->c, s);
    return false;
}

} // namespace

void vd_cu_fill(vd_backend *be, const vd_tensor *t, float v) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "fill", "t", t)) return;
    vd_cu_for(be, "fill", vd_cu_numel(*t), fill_f{*t, v});
}

void vd_cu_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "copy", "src", src) || !vd_cu_valid(be, "copy", "dst", dst) ||
        !vd_cu_same_shape(be, "copy", src, dst))
        return;
    vd_cu_for(be, "copy", vd_cu_numel(*src), copy_f{*src, *dst});
}

void vd_cu_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *y) {
    if (vd_cu_failed(be) || !act_known(be, act) || !vd_cu_valid(be, "act_fwd", "x", x) ||
        !vd_cu_valid(be, "act_fwd", "y", y) || !vd_cu_same_shape(be, "act_fwd", x, y))
        return;
    vd_cu_for(be, "act_fwd", vd_cu_numel(*x), act_fwd_f{act, param, *x, *y});
}

void vd_cu_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x, const vd_tensor *dy,
                   const vd_tensor *dx, bool acc) {
    if (vd_cu_failed(be) || !act_known(be, act) || !vd_cu_valid(be, "act_bwd", "x", x) ||
        !vd_cu_valid(be, "act_bwd", "dy", dy) || !vd_cu_valid(be, "act_bwd", "dx", dx) ||
        !vd_cu_same_shape(be, "act_bwd", x, dy) || !vd_cu_same_shape(be, "act_bwd", x, dx))
        return;
    vd_cu_for(be, "act_bwd", vd_cu_numel(*x), act_bwd_f{act, param, *x, *dy, *dx, acc});
}

void vd_cu_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "add", "a", a) || !vd_cu_valid(be, "add", "b", b) ||
        !vd_cu_valid(be, "add", "y", y) || !vd_cu_same_shape(be, "add", a, b) ||
        !vd_cu_same_shape(be, "add", a, y))
        return;
    vd_cu_for(be, "add", vd_cu_numel(*a), add_f{*a, *b, *y});
}

void vd_cu_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "axpy", "x", x) || !vd_cu_valid(be, "axpy", "y", y) ||
        !vd_cu_same_shape(be, "axpy", x, y))
        return;
    vd_cu_for(be, "axpy", vd_cu_numel(*x), axpy_f{alpha, *x, *y});
}

void vd_cu_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "upsample_fwd", "x", x) || !vd_cu_valid(be, "upsample_fwd", "y", y) ||
        !upsample_shapes(be, "upsample_fwd", s, x, y))
        return;
    vd_cu_for(be, "upsample_fwd", vd_cu_numel(*y), upsample_fwd_f{s, *x, *y});
}

void vd_cu_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx, bool acc) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "upsample_bwd", "dy", dy) ||
        !vd_cu_valid(be, "upsample_bwd", "dx", dx) || !upsample_shapes(be, "upsample_bwd", s, dx, dy))
        return;
    vd_cu_for(be, "upsample_bwd", vd_cu_numel(*dx), upsample_bwd_f{s, *dy, *dx, acc});
}

void vd_cu_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "broadcast_fwd", "y", y)) return;
    VD_CU_REQUIRE(be, t, "broadcast_fwd: the broadcast image is missing");
    vd_cu_for(be, "broadcast_fwd", vd_cu_numel(*y), broadcast_fwd_f{t, *y, acc});
}

void vd_cu_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt) {
    if (vd_cu_failed(be) || !vd_cu_valid(be, "broadcast_bwd", "dy", dy)) return;
    VD_CU_REQUIRE(be, dt, "broadcast_bwd: the gradient image is missing");
    vd_cu_for(be, "broadcast_bwd", (int64_t)dy->h * dy->w * dy->c, broadcast_bwd_f{*dy, dt});
}

VD_CU_END
