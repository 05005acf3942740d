/* CIFAR-10 binary batches: records of 1 label byte then the R, G and B planes of a 32x32
 * image (row-major), turned into NHWC RGB; labels are not used (the model is unconditional). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/formats.h"

#define CIFAR_SIDE 32
#define CIFAR_PLANE (CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + 3 * CIFAR_PLANE)

static vd_status check_size(uint64_t len, const char *name, vd_err *err) {
    if (len == 0 || len % CIFAR_RECORD != 0)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: size %llu bytes is not a positive multiple of the %d-byte CIFAR-10 "
                         "record (1 label + 3 x 32 x 32 pixels)%s", name, (unsigned long long)len,
                         CIFAR_RECORD, len % CIFAR_RECORD ? "; truncated or not a CIFAR-10 file"
                                                          : "");
    return VD_OK;
}

/* n records from src into n NHWC images at dst. */
static void planes_to_nhwc(const uint8_t *src, size_t n, uint8_t *dst) {
    for (size_t i = 0; i < n; i++, src += CIFAR_RECORD, dst += 3 * CIFAR_PLANE) {
        const uint8_t *planes = src + 1;
        for (int p = 0; p < CIFAR_PLANE; p++)
            for (int ch = 0; ch < 3; ch++) dst[3 * p + ch] = planes[ch * CIFAR_PLANE + p];
    }
}

vd_status vd_parse_cifar10(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                           vd_err *err) {
    memset(out, 0, sizeof *out);
    vd_status s = check_size(len, name, err);
    if (s == VD_OK) s = vd_images_alloc(out, len / CIFAR_RECORD, CIFAR_SIDE, CIFAR_SIDE, 3, err);
    if (s == VD_OK) planes_to_nhwc(buf, len / CIFAR_RECORD, out->pixels);
    return s;
}

static vd_status file_size(const char *path, uint64_t *len, vd_err *err) {
    struct stat st;
    if (stat(path, &st) != 0)
        return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return vd_errorf(err, VD_ERR_IO, "%s: not a regular file", path);
    *len = (uint64_t)st.st_size;
    return check_size(*len, path, err);
}

static vd_status read_one(const char *path, uint64_t expect, uint8_t *dst, vd_err *err) {
    uint8_t *buf;
    size_t len;
    vd_status s = vd_data_read_file(path, &buf, &len, err);
    if (s != VD_OK) return s;
    if (len != expect)
        s = vd_errorf(err, VD_ERR_IO, "%s: size changed while reading (%llu then %zu bytes)",
                      path, (unsigned long long)expect, len);
    else
        planes_to_nhwc(buf, len / CIFAR_RECORD, dst);
    free(buf);
    return s;
}

vd_status vd_read_cifar10_bins(const char *const *paths, int n_paths, vd_images *out,
                               vd_err *err) {
    memset(out, 0, sizeof *out);
    if (n_paths <= 0) return vd_errorf(err, VD_ERR_INVALID, "no CIFAR-10 batch files given");
    uint64_t *sizes = calloc((size_t)n_paths, sizeof *sizes), n = 0;
    if (!sizes) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status s = VD_OK;
    for (int i = 0; i < n_paths && s == VD_OK; i++) {
        s = file_size(paths[i], &sizes[i], err);
        n += sizes[i] / CIFAR_RECORD;
    }
    if (s == VD_OK) s = vd_images_alloc(out, (int64_t)n, CIFAR_SIDE, CIFAR_SIDE, 3, err);
    uint8_t *dst = out->pixels;
    for (int i = 0; i < n_paths && s == VD_OK; i++) {
        s = read_one(paths[i], sizes[i], dst, err);
        dst += sizes[i] / CIFAR_RECORD * 3 * CIFAR_PLANE;
    }
    free(sizes);
    if (s != VD_OK) vd_images_free(out);
    return s;
}
