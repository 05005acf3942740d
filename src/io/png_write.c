/* PNG output with libpng's simplified write API (no setjmp to manage), batch grids and the
 * float-to-pixel conversion of model outputs. */
#include "vdvae/image.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/util.h"

static vd_status check_shape(int h, int w, int c, vd_err *err) {
    if (c != 1 && c != 3 && c != 4)
        return vd_errorf(err, VD_ERR_INVALID, "image: %d channels (1, 3 or 4 expected)", c);
    if (h < 1 || w < 1 || h > VD_IMAGE_MAX_SIDE || w > VD_IMAGE_MAX_SIDE)
        return vd_errorf(err, VD_ERR_INVALID, "image: size %dx%d outside 1..%d", h, w,
                         VD_IMAGE_MAX_SIDE);
    return VD_OK;
}

vd_status vd_png_encode(const uint8_t *pix, int h, int w, int c, uint8_t **buf, size_t *len,
                        vd_err *err) {
    *buf = NULL;
    *len = 0;
    vd_status st = check_shape(h, w, c, err);
    if (st) return st;
    static const png_uint_32 formats[] = {0, PNG_FORMAT_GRAY, 0, PNG_FORMAT_RGB, PNG_FORMAT_RGBA};
    png_image im = {.version = PNG_IMAGE_VERSION, .width = (png_uint_32)w,
                    .height = (png_uint_32)h, .format = formats[c]};
    /* libpng's bound on the stream lets us encode once, into a buffer that cannot overflow. */
    png_alloc_size_t cap = PNG_IMAGE_PNG_SIZE_MAX(im), n = cap;
    uint8_t *out = malloc(cap);
    if (!out) return vd_errorf(err, VD_ERR_NOMEM, "png: %zu bytes for a %dx%dx%d image",
                               (size_t)cap, h, w, c);
    if (!png_image_write_to_memory(&im, out, &n, 0, pix, 0, NULL)) {
        free(out);
        st = vd_errorf(err, VD_ERR_INTERNAL, "png: encoding a %dx%dx%d image: %s", h, w, c,
                       im.message);
        png_image_free(&im);
        return st;
    }
    uint8_t *fit = realloc(out, n);
    *buf = fit ? fit : out;
    *len = n;
    return VD_OK;
}

vd_status vd_png_write(const char *path, const uint8_t *pix, int h, int w, int c, vd_err *err) {
    uint8_t *png;
    size_t n;
    vd_status st = vd_png_encode(pix, h, w, c, &png, &n, err);
    if (st) return vd_err_prefix(err, "%s", path);
    vd_atomic a;
    if ((st = vd_atomic_begin(&a, path, err))) {
        free(png);
        return st;
    }
    /* straight to the descriptor: nothing goes through the stream's buffer */
    int e = vd_write_all(fileno(a.f), png, n);
    free(png);
    if (e) {
        vd_atomic_abort(&a);
        return vd_errorf(err, VD_ERR_IO, "%s: cannot write PNG: %s", path, strerror(e));
    }
    return vd_atomic_commit(&a, true, err);
}

vd_status vd_image_grid(const uint8_t *images, int n, int h, int w, int c, int cols, int pad,
                        uint8_t **out, int *gh, int *gw, vd_err *err) {
    *out = NULL;
    *gh = *gw = 0;
    vd_status st = check_shape(h, w, c, err);
    if (st) return vd_err_prefix(err, "grid");
    if (n < 1 || pad < 0 || pad > VD_IMAGE_MAX_SIDE)
        return vd_errorf(err, VD_ERR_INVALID, "grid: %d images with padding %d", n, pad);
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int64_t H = (int64_t)rows * (h + pad) + pad, W = (int64_t)cols * (w + pad) + pad;
    if (H > VD_IMAGE_MAX_SIDE || W > VD_IMAGE_MAX_SIDE)
        return vd_errorf(err, VD_ERR_INVALID, "grid: %d images of %dx%d make %lldx%lld, over %d",
                         n, h, w, (long long)H, (long long)W, VD_IMAGE_MAX_SIDE);
    uint8_t *g = calloc((size_t)H * (size_t)W, (size_t)c);
    if (!g) return vd_errorf(err, VD_ERR_NOMEM, "grid: %lldx%lld image", (long long)H,
                             (long long)W);
    size_t row = (size_t)w * (size_t)c, img = row * (size_t)h;
    for (int i = 0; i < n; i++) {
        size_t y0 = (size_t)(i / cols) * (size_t)(h + pad) + (size_t)pad;
        size_t x0 = (size_t)(i % cols) * (size_t)(w + pad) + (size_t)pad;
        for (int y = 0; y < h; y++)
            memcpy(g + ((y0 + (size_t)y) * (size_t)W + x0) * (size_t)c,
                   images + img * (size_t)i + row * (size_t)y, row);
    }
    *out = g;
    *gh = (int)H;
    *gw = (int)W;
    return VD_OK;
}

void vd_images_to_u8(const float *x, int64_t count, bool unit_range, uint8_t *out) {
    double scale = unit_range ? 255.0 : 127.5, shift = unit_range ? 0.0 : 1.0;
    for (int64_t i = 0; i < count; i++) {
        double v = round(((double)x[i] + shift) * scale);
        /* written so that NaN fails the first test and lands on 0 */
        out[i] = v >= 0.0 ? (uint8_t)(v <= 255.0 ? v : 255.0) : 0;
    }
}
