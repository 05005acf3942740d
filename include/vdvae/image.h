/* Images out: model outputs to pixels, batches tiled into one grid, and PNG encoding (to
 * memory for TensorBoard, to files atomically). Pixels are uint8 HWC, c = 1, 3 or 4. */
#ifndef VDVAE_IMAGE_H
#define VDVAE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest side we encode or tile: keeps h * w * c far from overflow and within PNG limits. */
#define VD_IMAGE_MAX_SIDE (1 << 20)

/* h x w x c pixels as an 8-bit PNG (grey, RGB or RGBA) in a malloc'ed buffer (*buf, *len),
 * the caller frees it. VD_ERR_INVALID for c not 1/3/4 or a side < 1 or > VD_IMAGE_MAX_SIDE. */
vd_status vd_png_encode(const uint8_t *pix, int h, int w, int c, uint8_t **buf, size_t *len,
                        vd_err *err);
/* The same PNG written to path atomically: a temporary file beside it, fsync'ed, renamed over
 * path. VD_ERR_IO naming the file on failure (nothing is left behind). */
vd_status vd_png_write(const char *path, const uint8_t *pix, int h, int w, int c, vd_err *err);

/* Tile n images (h x w x c each, one after another) into a grid of `cols` columns (cols <= 0:
 * ceil(sqrt(n)); more than n: n) and ceil(n / cols) rows, with `pad` black pixels around and
 * between them, like torchvision's make_grid: *gh = rows * (h + pad) + pad, *gw likewise.
 * Cells past n stay black. *out is malloc'ed (gh x gw x c), the caller frees it. */
vd_status vd_image_grid(const uint8_t *images, int n, int h, int w, int c, int cols, int pad,
                        uint8_t **out, int *gh, int *gw, vd_err *err);

/* count model outputs to pixels: round((x + 1) * 127.5) for values in [-1, 1], or round(x * 255)
 * with unit_range (binarized data: values in [0, 1]); halves away from zero, clamped to
 * [0, 255], NaN becomes 0. */
void vd_images_to_u8(const float *x, int64_t count, bool unit_range, uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
