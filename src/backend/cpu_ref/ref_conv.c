/* cpu_ref 2-D convolution: direct loops over OIHW weights with explicit pads and stride,
 * summed in double. Forward, the data gradient (a gather, so each dx is one double sum)
 * and the weight/bias gradients (accumulated, as parameter gradients always are). In bf16
 * precision every factor of a product (x, w, dy) is rounded to bf16 first and nothing else
 * changes: this is the definition the fast backend's bf16 convolutions are tested against. */
#include <stdlib.h>

#include "backend/bf16.h"
#include "backend/cpu_ref/ref.h"

/* A factor of a product as the precision sees it. */
static inline double factor(bool bf16, float v) {
    return bf16 ? vd_bf16_round(v) : v;
}

static inline float w_at(const vd_conv_desc *cv, const float *w, int o, int i, int a, int b) {
    return w[(((int64_t)o * cv->c_in + i) * cv->kh + a) * cv->kw + b];
}

static int out_size(int in, int k, int s, int pad_lo, int pad_hi) {
    int span = in + pad_lo + pad_hi - k;
    return span < 0 ? 0 : span / s + 1;
}

/* x is the convolution's input (or its gradient), y its output (or gradient). */
static bool conv_shapes(vd_backend *be, const char *op, const vd_conv_desc *cv, const vd_tensor *x,
                        const vd_tensor *y) {
    if (!vd_ref_valid(be, op, "input", x) || !vd_ref_valid(be, op, "output", y)) return false;
    if (cv->stride < 1 || cv->kh < 1 || cv->kw < 1 || cv->pad_top < 0 || cv->pad_left < 0 ||
        cv->pad_bottom < 0 || cv->pad_right < 0) {
        vd_backend_fail(be, VD_ERR_INVALID, "%s: bad geometry k %dx%d stride %d pads %d,%d,%d,%d",
                        op, cv->kh, cv->kw, cv->stride, cv->pad_top, cv->pad_left, cv->pad_bottom,
                        cv->pad_right);
        return false;
    }
    int ho = out_size(x->h, cv->kh, cv->stride, cv->pad_top, cv->pad_bottom);
    int wo = out_size(x->w, cv->kw, cv->stride, cv->pad_left, cv->pad_right);
    if (x->c == cv->c_in && y->c == cv->c_out && y->n == x->n && y->h == ho && y->w == wo)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID,
                    "%s: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] do not fit a %d->%d conv "
                    "k %dx%d stride %d (output should be %dx%d)",
                    op, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c, cv->c_in, cv->c_out, cv->kh,
                    cv->kw, cv->stride, ho, wo);
    return false;
}

static double conv_point(const vd_conv_desc *cv, bool bf16, const vd_tensor *x, const float *w,
                         int n, int oh, int ow, int o) {
    double sum = 0;
    for (int a = 0; a < cv->kh; a++) {
        int ih = oh * cv->stride - cv->pad_top + a;
        if (ih < 0 || ih >= x->h) continue;
        for (int b = 0; b < cv->kw; b++) {
            int iw = ow * cv->stride - cv->pad_left + b;
            if (iw < 0 || iw >= x->w) continue;
            const float *px = ref_at(x, n, ih, iw);
            for (int i = 0; i < cv->c_in; i++)
                sum += factor(bf16, px[i]) * factor(bf16, w_at(cv, w, o, i, a, b));
        }
    }
    return sum;
}

/* A conv that reads silu(x): the oracle applies act_fwd into a temporary first, which is
 * exactly what the fused op promises to compute. Returns false (with a recorded failure)
 * when the temporary cannot be had; *tmp is then NULL. */
static bool pre_activate(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, vd_tensor *xa, float **tmp) {
    *tmp = NULL;
    *xa = *x;
    if (cv->pre_act == VD_CONV_PRE_NONE) return true;
    if (cv->pre_act != VD_CONV_PRE_SILU) {
        vd_backend_fail(be, VD_ERR_INVALID, "conv: unknown pre-activation %d", (int)cv->pre_act);
        return false;
    }
    if (!(*tmp = malloc((size_t)vd_tensor_numel(x) * sizeof(float)))) {
        vd_backend_fail(be, VD_ERR_NOMEM, "conv: no memory for silu(x)");
        return false;
    }
    *xa = vd_tensor_make(*tmp, x->n, x->h, x->w, x->c);
    vd_ref_act_fwd(be, VD_ACT_SILU, 0.f, x, xa);
    return true;
}

static void conv_fwd_plain(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                           const float *b, const vd_tensor *y);
static void conv_bwd_weights_plain(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                                   const vd_tensor *dy, float *dw, float *db);

void vd_ref_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                     const float *b, const vd_tensor *y) {
    if (!conv_shapes(be, "conv_fwd", cv, x, y)) return;
    vd_tensor xa;
    float *tmp;
    if (pre_activate(be, cv, x, &xa, &tmp)) conv_fwd_plain(be, cv, &xa, w, b, y);
    free(tmp);
}

void vd_ref_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                             const vd_tensor *dy, float *dw, float *db) {
    if (!conv_shapes(be, "conv_bwd_weights", cv, x, dy)) return;
    vd_tensor xa;
    float *tmp;
    if (pre_activate(be, cv, x, &xa, &tmp)) conv_bwd_weights_plain(be, cv, &xa, dy, dw, db);
    free(tmp);
}

static void conv_fwd_plain(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                           const float *b, const vd_tensor *y) {
    REF_REQUIRE(be, w, "conv_fwd: weights are missing");
    bool bf16 = vd_ref_bf16(be);
    for (int n = 0; n < y->n; n++)
        for (int oh = 0; oh < y->h; oh++)
            for (int ow = 0; ow < y->w; ow++)
                for (int o = 0; o < y->c; o++) {
                    /* acc_y adds the float result onto y, as a sum post-op does */
                    float v = (float)((b ? b[o] : 0.0) + conv_point(cv, bf16, x, w, n, oh, ow, o));
                    float *d = ref_at(y, n, oh, ow) + o;
                    *d = cv->acc_y ? *d + v : v;
                }
}

/* Output index along one axis that tap k of input position i feeds, or -1. */
static int tap_source(int i, int k, int pad, int stride, int out) {
    int num = i + pad - k;
    if (num < 0 || num % stride) return -1;
    return num / stride < out ? num / stride : -1;
}

static double conv_adjoint_point(const vd_conv_desc *cv, bool bf16, const vd_tensor *dy,
                                 const float *w, int n, int ih, int iw, int i) {
    double sum = 0;
    for (int a = 0; a < cv->kh; a++) {
        int oh = tap_source(ih, a, cv->pad_top, cv->stride, dy->h);
        if (oh < 0) continue;
        for (int b = 0; b < cv->kw; b++) {
            int ow = tap_source(iw, b, cv->pad_left, cv->stride, dy->w);
            if (ow < 0) continue;
            const float *g = ref_at(dy, n, oh, ow);
            for (int o = 0; o < cv->c_out; o++)
                sum += factor(bf16, g[o]) * factor(bf16, w_at(cv, w, o, i, a, b));
        }
    }
    return sum;
}

void vd_ref_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy,
                          const float *w, const vd_tensor *dx, bool acc) {
    if (!conv_shapes(be, "conv_bwd_data", cv, dx, dy)) return;
    REF_REQUIRE(be, w, "conv_bwd_data: weights are missing");
    bool bf16 = vd_ref_bf16(be);
    for (int n = 0; n < dx->n; n++) {
        for (int ih = 0; ih < dx->h; ih++) {
            for (int iw = 0; iw < dx->w; iw++) {
                float *d = ref_at(dx, n, ih, iw);
                for (int i = 0; i < dx->c; i++) {
                    double g = conv_adjoint_point(cv, bf16, dy, w, n, ih, iw, i);
                    d[i] = acc ? (float)(d[i] + g) : (float)g;
                }
            }
        }
    }
}

static double weight_grad(const vd_conv_desc *cv, bool bf16, const vd_tensor *x,
                          const vd_tensor *dy, int o, int i, int a, int b) {
    double sum = 0;
    for (int n = 0; n < dy->n; n++) {
        for (int oh = 0; oh < dy->h; oh++) {
            int ih = oh * cv->stride - cv->pad_top + a;
            if (ih < 0 || ih >= x->h) continue;
            for (int ow = 0; ow < dy->w; ow++) {
                int iw = ow * cv->stride - cv->pad_left + b;
                if (iw >= 0 && iw < x->w)
                    sum += factor(bf16, ref_at(x, n, ih, iw)[i]) *
                           factor(bf16, ref_at(dy, n, oh, ow)[o]);
            }
        }
    }
    return sum;
}

static void conv_bwd_weights_plain(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                                   const vd_tensor *dy, float *dw, float *db) {
    REF_REQUIRE(be, dw, "conv_bwd_weights: dw is missing");
    bool bf16 = vd_ref_bf16(be);
    for (int o = 0; o < cv->c_out; o++)
        for (int i = 0; i < cv->c_in; i++)
            for (int a = 0; a < cv->kh; a++)
                for (int b = 0; b < cv->kw; b++)
                    dw[(((int64_t)o * cv->c_in + i) * cv->kh + a) * cv->kw + b] +=
                        (float)weight_grad(cv, bf16, x, dy, o, i, a, b);
    if (!db) return; /* the float32 dy, unrounded: a bias gradient multiplies nothing */
    for (int o = 0; o < cv->c_out; o++) {
        double sum = 0;
        for (int64_t p = 0; p < ref_pixels(dy); p++)
            sum += ref_px(dy, p)[o];
        db[o] += (float)sum;
    }
}
