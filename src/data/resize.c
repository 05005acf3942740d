/* Pillow's bilinear ImagingResample, bit for bit: the reference resizes folder images with
 * PIL's Image.resize(size, BILINEAR), and the model should see the same pixels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vdvae/data.h"

#define PRECISION_BITS (32 - 8 - 2)
#define FILTER_SUPPORT 1.0
#define MAX_SIDE (1 << 28) /* keeps the kernel size 2 * ceil(in / out) + 1 within int */

/* Per output index: first input index, count, and ksize fixed-point weights. */
typedef struct coeffs {
    int ksize;
    int *bounds;   /* [out][2]: xmin, count */
    int32_t *k;    /* [out][ksize] */
} coeffs;

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's precompute_coeffs and normalize_coeffs_8bpc; the expressions keep Pillow's order
 * of operations so the double weights, and so the rounded ones, are the same. */
static void fill_coeffs(coeffs *c, int in_size, int out_size, double *w) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = FILTER_SUPPORT * filterscale, inv = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) ww += w[x] = triangle((x + xmin - center + 0.5) * inv);
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin, c->bounds[2 * xx + 1] = xmax;
    }
}

static int make_coeffs(coeffs *c, int in_size, int out_size) {
    double scale = (double)in_size / out_size;
    c->ksize = (int)ceil(FILTER_SUPPORT * (scale < 1.0 ? 1.0 : scale)) * 2 + 1;
    c->bounds = malloc(sizeof *c->bounds * 2 * (size_t)out_size);
    c->k = malloc(sizeof *c->k * (size_t)c->ksize * (size_t)out_size);
    double *w = malloc(sizeof *w * (size_t)c->ksize);
    if (c->bounds && c->k && w) fill_coeffs(c, in_size, out_size, w);
    free(w);
    return c->bounds && c->k && w;
}

static void free_coeffs(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static uint8_t clip8(int64_t ss) {
    if (ss < 0) return 0;
    ss >>= PRECISION_BITS;
    return ss > 255 ? 255 : (uint8_t)ss;
}

/* rows x (in_w -> out_w), c interleaved channels */
static void pass_h(const uint8_t *src, int rows, int in_w, int c, const coeffs *k, uint8_t *dst,
                   int out_w) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *line = src + (size_t)y * in_w * c;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = k->bounds[2 * xx], n = k->bounds[2 * xx + 1];
            const int32_t *kk = k->k + (size_t)xx * k->ksize;
            for (int ch = 0; ch < c; ch++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++)
                    ss += (int64_t)line[(size_t)(x + xmin) * c + ch] * kk[x];
                *dst++ = clip8(ss);
            }
        }
    }
}

/* (in_h -> out_h) x width, c interleaved channels */
static void pass_v(const uint8_t *src, int width, int c, const coeffs *k, uint8_t *dst,
                   int out_h) {
    size_t stride = (size_t)width * c;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = k->bounds[2 * yy], n = k->bounds[2 * yy + 1];
        const int32_t *kk = k->k + (size_t)yy * k->ksize;
        for (size_t i = 0; i < stride; i++) {
            int64_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) ss += (int64_t)src[(size_t)(y + ymin) * stride + i] * kk[y];
            *dst++ = clip8(ss);
        }
    }
}

/* Horizontal pass first, then vertical, each skipped when its size does not change: Pillow
 * 7.1.1, which the reference pins, always orders them so. (Pillow 13 runs the vertical pass
 * first when the height shrinks by more than twice the width's reduction: +-1 on some pixels.) */
vd_status vd_resize_bilinear(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh,
                             int dw) {
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || c <= 0 || sh > MAX_SIDE || sw > MAX_SIDE ||
        dh > MAX_SIDE || dw > MAX_SIDE)
        return VD_ERR_INVALID;
    if (sh == dh && sw == dw) {
        memcpy(dst, src, (size_t)sh * sw * c);
        return VD_OK;
    }
    coeffs kh = {0}, kv = {0};
    uint8_t *tmp = NULL;
    int ok = 1;
    if (sw != dw)
        ok = make_coeffs(&kh, sw, dw) && (sh == dh || (tmp = malloc((size_t)sh * dw * c)));
    if (ok && sh != dh) ok = make_coeffs(&kv, sh, dh);
    if (ok && sw != dw) pass_h(src, sh, sw, c, &kh, sh == dh ? dst : tmp, dw);
    if (ok && sh != dh) pass_v(sw != dw ? tmp : src, dw, c, &kv, dst, dh);
    free(tmp);
    free_coeffs(&kh);
    free_coeffs(&kv);
    return ok ? VD_OK : VD_ERR_NOMEM;
}
