/* Downsampled-ImageNet .npz: member data.npy (uint8 [N, C*H*W], CHW) of a stored or deflated
 * zip, read with libzip; the .npy header is parsed by src/io/npy.c. Output is NHWC. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "data/formats.h"
#include "io/npy.h"

#define CHUNK_IMAGES 64

/* ---- the data.npy member -------------------------------------------------------------------- */

typedef struct member {
    vd_npy_zip_member z; /* file: the archive's name for messages; array: "data" */
    uint64_t size;       /* of data.npy */
} member;

/* Bytes per image (product of all but the first dimension), 0 if it exceeds `limit`. */
static uint64_t image_bytes(const vd_npy_header *h, uint64_t limit) {
    uint64_t per = 1;
    for (int i = 1; i < h->ndim; i++) {
        if (h->shape[i] == 0 || h->shape[i] > limit / per) return 0;
        per *= h->shape[i];
    }
    return per;
}

/* dtype uint8, C order, shape (N, ...) with C*res*res bytes per image, as the member holds. */
static vd_status check_header(const member *m, const vd_npy_header *h, int res, int channels,
                              vd_err *err) {
    const char *d = h->descr;
    if (strcmp(d, "|u1") && strcmp(d, "<u1") && strcmp(d, ">u1") && strcmp(d, "u1"))
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy has dtype '%s', expected uint8 ('|u1')",
                         m->z.file, d);
    if (h->fortran)
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy is in Fortran order, expected C order",
                         m->z.file);
    uint64_t want = (uint64_t)channels * res * res, left = m->size - m->z.pos;
    char sh[160];
    vd_npy_shape_str(h, sh, sizeof sh);
    if (h->ndim < 2 || image_bytes(h, want) != want || h->shape[0] == 0)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: data.npy has shape (%s), expected (N, %llu) for %d channels of "
                         "%d x %d, N > 0", m->z.file, sh, (unsigned long long)want, channels, res,
                         res);
    if (m->z.pos > m->size || h->shape[0] > left / want || left != h->shape[0] * want)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: member data.npy: offset %llu: shape (%s) does not match the member, "
                         "which holds %llu bytes after its header", m->z.file,
                         (unsigned long long)m->z.pos, sh, (unsigned long long)left);
    return VD_OK;
}

static void chw_to_hwc(const uint8_t *src, int hw, int c, uint8_t *dst) {
    for (int p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) dst[p * c + ch] = src[(size_t)ch * hw + p];
}

static vd_status read_pixels(member *m, vd_images *out, vd_err *err) {
    size_t per = (size_t)out->h * out->w * out->c;
    uint8_t *chunk = malloc(per * CHUNK_IMAGES);
    if (!chunk) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status s = VD_OK;
    for (int64_t i = 0; i < out->n && s == VD_OK; i += CHUNK_IMAGES) {
        int64_t k = out->n - i < CHUNK_IMAGES ? out->n - i : CHUNK_IMAGES;
        s = vd_npy_zip_read(&m->z, chunk, per * (size_t)k, err);
        for (int64_t j = 0; j < k && s == VD_OK; j++)
            chw_to_hwc(chunk + per * j, out->h * out->w, out->c, vd_image_ptr(out, i + j));
    }
    free(chunk);
    /* reading past the end makes libzip check the member's CRC */
    uint8_t extra;
    zip_int64_t r = s == VD_OK ? zip_fread(m->z.f, &extra, 1) : 0;
    if (r != 0)
        s = vd_errorf(err, VD_ERR_INVALID, "%s: member data.npy: offset %llu: %s", m->z.file,
                      (unsigned long long)m->z.pos,
                      r < 0 ? zip_file_strerror(m->z.f) : "data beyond the stated size");
    return s;
}

/* ---- the archive ---------------------------------------------------------------------------- */

static vd_status no_data(zip_t *za, const char *name, vd_err *err) {
    char list[512] = "";
    size_t used = 0;
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && used < sizeof list - 1; i++) {
        const char *mn = zip_get_name(za, (zip_uint64_t)i, 0);
        int w = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", mn ? mn : "?");
        used += w > 0 ? (size_t)w : 0;
    }
    return vd_errorf(err, VD_ERR_INVALID, "%s: no array 'data' (member data.npy) in the .npz; "
                     "its members (%lld): %s", name, (long long)n, n ? list : "none");
}

static vd_status read_archive(zip_t *za, uint64_t archive_len, const char *name, int res,
                              int channels, vd_images *out, vd_err *err) {
    zip_int64_t idx = zip_name_locate(za, "data.npy", 0);
    if (idx < 0) idx = zip_name_locate(za, "data", 0);
    if (idx < 0) return no_data(za, name, err);
    zip_stat_t st;
    vd_status s = vd_npy_stat_member(za, (zip_uint64_t)idx, archive_len, name, "data.npy",
                                     &st, err);
    if (s != VD_OK) return s;
    member m = {{zip_fopen_index(za, (zip_uint64_t)idx, 0), name, "data", 0}, st.size};
    if (!m.z.f)
        return vd_errorf(err, VD_ERR_INVALID, "%s: cannot open member data.npy: %s", name,
                         zip_strerror(za));
    vd_npy_header h;
    s = vd_npy_read_header(vd_npy_zip_read, &m.z, name, "data.npy", &h, err);
    if (s == VD_OK) s = check_header(&m, &h, res, channels, err);
    if (s == VD_OK) s = vd_images_alloc(out, (int64_t)h.shape[0], res, res, channels, err);
    if (s == VD_OK) s = read_pixels(&m, out, err);
    zip_fclose(m.z.f);
    if (s != VD_OK) vd_images_free(out);
    return s;
}

static vd_status check_args(const char *name, int res, int channels, vd_err *err) {
    if (res <= 0 || res > 65535 || channels <= 0 || channels > 4)
        return vd_errorf(err, VD_ERR_INVALID, "%s: bad image size %d x %d x %d requested", name,
                         res, res, channels);
    return VD_OK;
}

vd_status vd_parse_npz_images(const uint8_t *buf, size_t len, const char *name, int res,
                              int channels, vd_images *out, vd_err *err) {
    memset(out, 0, sizeof *out);
    vd_status s = check_args(name, res, channels, err);
    if (s != VD_OK) return s;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!za) {
        if (src) zip_source_free(src);
        return vd_npy_zip_failed(&ze, name, err);
    }
    zip_error_fini(&ze);
    s = read_archive(za, len, name, res, channels, out, err);
    zip_discard(za);
    return s;
}

vd_status vd_read_npz_images(const char *path, int res, int channels, vd_images *out,
                             vd_err *err) {
    memset(out, 0, sizeof *out);
    vd_status s = check_args(path, res, channels, err);
    if (s != VD_OK) return s;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return vd_errorf(err, VD_ERR_IO, "%s: not a regular file", path);
    zip_error_t ze;
    zip_error_init(&ze);
    int zerr = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!za) {
        zip_error_init_with_code(&ze, zerr);
        return vd_npy_zip_failed(&ze, path, err);
    }
    zip_error_fini(&ze);
    s = read_archive(za, (uint64_t)sb.st_size, path, res, channels, out, err);
    zip_discard(za);
    return s;
}
