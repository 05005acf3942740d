/* cpu_ref elementwise ops: fill, copy, activations, add/axpy, nearest upsampling and the
 * batch broadcast, each forward next to its adjoint. Every tensor is addressed through ld. */
#include "backend/cpu_ref/ref.h"
#include "backend/act_math.h"

void vd_ref_fill(vd_backend *be, const vd_tensor *t, float v) {
    if (!vd_ref_valid(be, "fill", "t", t)) return;
    for (int64_t p = 0; p < ref_pixels(t); p++)
        for (int c = 0; c < t->c; c++)
            ref_px(t, p)[c] = v;
}

void vd_ref_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst) {
    if (!vd_ref_valid(be, "copy", "src", src) || !vd_ref_valid(be, "copy", "dst", dst) ||
        !vd_ref_same_shape(be, "copy", src, dst))
        return;
    for (int64_t p = 0; p < ref_pixels(src); p++)
        for (int c = 0; c < src->c; c++)
            ref_px(dst, p)[c] = ref_px(src, p)[c];
}

static bool act_known(vd_backend *be, vd_act act) {
    if (act_is_known(act)) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "act: unknown activation %d", (int)act);
    return false;
}

void vd_ref_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *y) {
    if (!act_known(be, act) || !vd_ref_valid(be, "act_fwd", "x", x) ||
        !vd_ref_valid(be, "act_fwd", "y", y) || !vd_ref_same_shape(be, "act_fwd", x, y))
        return;
    for (int64_t p = 0; p < ref_pixels(x); p++)
        for (int c = 0; c < x->c; c++)
            ref_px(y, p)[c] = (float)act_value(act, param, ref_px(x, p)[c]);
}

void vd_ref_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *dy, const vd_tensor *dx, bool acc) {
    if (!act_known(be, act) || !vd_ref_valid(be, "act_bwd", "x", x) ||
        !vd_ref_valid(be, "act_bwd", "dy", dy) || !vd_ref_valid(be, "act_bwd", "dx", dx) ||
        !vd_ref_same_shape(be, "act_bwd", x, dy) || !vd_ref_same_shape(be, "act_bwd", x, dx))
        return;
    for (int64_t p = 0; p < ref_pixels(x); p++) {
        for (int c = 0; c < x->c; c++) {
            float g = (float)(ref_px(dy, p)[c] * act_slope(act, param, ref_px(x, p)[c]));
            float *d = &ref_px(dx, p)[c];
            *d = acc ? *d + g : g;
        }
    }
}

void vd_ref_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y) {
    if (!vd_ref_valid(be, "add", "a", a) || !vd_ref_valid(be, "add", "b", b) ||
        !vd_ref_valid(be, "add", "y", y) || !vd_ref_same_shape(be, "add", a, b) ||
        !vd_ref_same_shape(be, "add", a, y))
        return;
    for (int64_t p = 0; p < ref_pixels(a); p++)
        for (int c = 0; c < a->c; c++)
            ref_px(y, p)[c] = ref_px(a, p)[c] + ref_px(b, p)[c];
}

void vd_ref_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_ref_valid(be, "axpy", "x", x) || !vd_ref_valid(be, "axpy", "y", y) ||
        !vd_ref_same_shape(be, "axpy", x, y))
        return;
    for (int64_t p = 0; p < ref_pixels(x); p++)
        for (int c = 0; c < x->c; c++)
            ref_px(y, p)[c] += alpha * ref_px(x, p)[c];
}

static bool upsample_shapes(vd_backend *be, const char *op, int s, const vd_tensor *small,
                            const vd_tensor *big) {
    if (s >= 1 && big->n == small->n && big->h == small->h * s && big->w == small->w * s &&
        big->c == small->c)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s: [%d,%d,%d,%d] is not [%d,%d,%d,%d] upsampled by %d",
                    op, big->n, big->h, big->w, big->c, small->n, small->h, small->w, small->c, s);
    return false;
}

void vd_ref_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_ref_valid(be, "upsample_fwd", "x", x) || !vd_ref_valid(be, "upsample_fwd", "y", y) ||
        !upsample_shapes(be, "upsample_fwd", s, x, y))
        return;
    for (int n = 0; n < y->n; n++)
        for (int h = 0; h < y->h; h++)
            for (int w = 0; w < y->w; w++)
                for (int c = 0; c < y->c; c++)
                    ref_at(y, n, h, w)[c] = ref_at(x, n, h / s, w / s)[c];
}

void vd_ref_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx,
                         bool acc) {
    if (!vd_ref_valid(be, "upsample_bwd", "dy", dy) ||
        !vd_ref_valid(be, "upsample_bwd", "dx", dx) ||
        !upsample_shapes(be, "upsample_bwd", s, dx, dy))
        return;
    for (int n = 0; n < dx->n; n++) {
        for (int h = 0; h < dx->h; h++) {
            for (int w = 0; w < dx->w; w++) {
                for (int c = 0; c < dx->c; c++) {
                    double sum = 0;
                    for (int i = 0; i < s; i++)
                        for (int j = 0; j < s; j++)
                            sum += ref_at(dy, n, h * s + i, w * s + j)[c];
                    float *d = &ref_at(dx, n, h, w)[c];
                    *d = acc ? (float)(*d + sum) : (float)sum;
                }
            }
        }
    }
}

/* t is one image in the reference's planar (1, C, H, W) layout (trainable h0, the unpool
 * bias), so checkpoints copy straight in; element (h, w, c) sits at (c * H + h) * W + w. */
static int64_t planar(const vd_tensor *y, int64_t q, int c) {
    return (int64_t)c * y->h * y->w + q;
}

void vd_ref_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc) {
    if (!vd_ref_valid(be, "broadcast_fwd", "y", y)) return;
    REF_REQUIRE(be, t, "broadcast_fwd: the broadcast image is missing");
    int64_t image = (int64_t)y->h * y->w;
    for (int64_t p = 0; p < ref_pixels(y); p++) {
        for (int c = 0; c < y->c; c++) {
            float v = t[planar(y, p % image, c)];
            ref_px(y, p)[c] = acc ? ref_px(y, p)[c] + v : v;
        }
    }
}

void vd_ref_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt) {
    if (!vd_ref_valid(be, "broadcast_bwd", "dy", dy)) return;
    REF_REQUIRE(be, dt, "broadcast_bwd: the gradient image is missing");
    int64_t image = (int64_t)dy->h * dy->w;
    for (int64_t q = 0; q < image; q++) {
        for (int c = 0; c < dy->c; c++) {
            double sum = 0;
            for (int n = 0; n < dy->n; n++)
                sum += ref_px(dy, n * image + q)[c];
            dt[planar(dy, q, c)] += (float)sum;
        }
    }
}
