/* Internal to src/data: in-memory entry points of the file-format readers (the file
 * readers and the fuzz targets share them) and the helpers they have in common. */
#ifndef VDVAE_DATA_FORMATS_H
#define VDVAE_DATA_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "vdvae/data.h"

/* Decoded images larger than this are refused before any allocation: PIL's own
 * decompression-bomb error threshold (2 * Image.MAX_IMAGE_PIXELS); fuzz builds lower it. */
#ifndef VD_IMAGE_MAX_PIXELS
#define VD_IMAGE_MAX_PIXELS 178956970LL
#endif

/* Whole regular file into a malloc'ed buffer (a directory or device is VD_ERR_IO). */
vd_status vd_data_read_file(const char *path, uint8_t **buf, size_t *len, vd_err *err);

/* `name` is the file name used in messages. */
vd_status vd_parse_idx_images(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                              vd_err *err);
vd_status vd_parse_cifar10(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                           vd_err *err);
vd_status vd_parse_npz_images(const uint8_t *buf, size_t len, const char *name, int res,
                              int channels, vd_images *out, vd_err *err);
/* PNG or JPEG (by magic bytes) to 8-bit RGB, h * w * 3 bytes in *rgb (malloc'ed). */
vd_status vd_decode_image_rgb(const uint8_t *buf, size_t len, const char *name, int *h, int *w,
                              uint8_t **rgb, vd_err *err);

#endif
