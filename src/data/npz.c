/* Downsampled-ImageNet .npz: member data.npy (uint8 [N, C*H*W], CHW) of a stored or deflated
 * zip, read with libzip; the .npy header dict is parsed here, strictly. Output is NHWC. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#include "data/formats.h"

#define NPY_MAX_DIMS 8
#define NPY_MAX_HEADER 65536
#define DEFLATE_MAX_RATIO 1032
#define CHUNK_IMAGES 64

typedef struct npy_header {
    char descr[16];
    int fortran, have_descr, have_fortran, have_shape;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
} npy_header;

typedef struct cursor {
    const char *start, *p, *end;
    const char *name; /* file name for messages */
    size_t base;      /* offset in the member of the dict's first byte */
} cursor;

static vd_status bad(cursor *c, vd_err *err, const char *what) {
    return vd_errorf(err, VD_ERR_INVALID, "%s: member data.npy: offset %zu: bad .npy header: %s",
                     c->name, c->base + (size_t)(c->p - c->start), what);
}

static void skip_ws(cursor *c) {
    while (c->p < c->end && isspace((unsigned char)*c->p)) c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) return c->p++, 1;
    return 0;
}

static int word(cursor *c, const char *w) {
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) return c->p += n, 1;
    return 0;
}

static vd_status string(cursor *c, char *dst, size_t cap, vd_err *err) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, err, "expected a string");
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap) return bad(c, err, "string too long");
        dst[n++] = *c->p++;
    }
    if (c->p >= c->end) return bad(c, err, "unterminated string");
    c->p++, dst[n] = 0;
    return VD_OK;
}

static vd_status shape(cursor *c, npy_header *h, vd_err *err) {
    if (!eat(c, '(')) return bad(c, err, "'shape' is not a tuple");
    h->ndim = 0;
    while (!eat(c, ')')) {
        skip_ws(c);
        if (h->ndim == NPY_MAX_DIMS) return bad(c, err, "too many dimensions");
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return bad(c, err, "'shape' holds a non-integer");
        uint64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (UINT64_MAX - 9) / 10) return bad(c, err, "dimension too large");
            v = v * 10 + (uint64_t)(*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* written by Python 2 */
        h->shape[h->ndim++] = v;
        if (!eat(c, ',') && !(skip_ws(c), c->p < c->end && *c->p == ')'))
            return bad(c, err, "expected ',' or ')' in 'shape'");
    }
    h->have_shape = 1;
    return VD_OK;
}

static vd_status entry(cursor *c, npy_header *h, vd_err *err) {
    char key[32];
    vd_status s = string(c, key, sizeof key, err);
    if (s != VD_OK) return s;
    if (!eat(c, ':')) return bad(c, err, "expected ':'");
    if (strcmp(key, "descr") == 0 && !h->have_descr) {
        h->have_descr = 1;
        return string(c, h->descr, sizeof h->descr, err);
    }
    if (strcmp(key, "fortran_order") == 0 && !h->have_fortran) {
        h->have_fortran = 1;
        if (word(c, "True")) return h->fortran = 1, VD_OK;
        if (word(c, "False")) return h->fortran = 0, VD_OK;
        return bad(c, err, "'fortran_order' is not True or False");
    }
    if (strcmp(key, "shape") == 0 && !h->have_shape) return shape(c, h, err);
    return bad(c, err, "unknown or repeated key (expected 'descr', 'fortran_order', 'shape')");
}

static vd_status parse_dict(cursor *c, npy_header *h, vd_err *err) {
    memset(h, 0, sizeof *h);
    if (!eat(c, '{')) return bad(c, err, "expected '{'");
    while (!eat(c, '}')) {
        vd_status s = entry(c, h, err);
        if (s != VD_OK) return s;
        if (!eat(c, ',') && !(skip_ws(c), c->p < c->end && *c->p == '}'))
            return bad(c, err, "expected ',' or '}'");
    }
    if (!h->have_descr || !h->have_fortran || !h->have_shape)
        return bad(c, err, "missing 'descr', 'fortran_order' or 'shape'");
    return VD_OK;
}

/* ---- the data.npy member -------------------------------------------------------------------- */

typedef struct member {
    zip_file_t *f;
    const char *name; /* archive name for messages */
    uint64_t size, pos;
} member;

static vd_status mread(member *m, void *dst, size_t n, vd_err *err) {
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(m->f, (char *)dst + got, n - got);
        if (r < 0)
            return vd_errorf(err, VD_ERR_INVALID, "%s: member data.npy: offset %llu: %s", m->name,
                             (unsigned long long)(m->pos + got), zip_file_strerror(m->f));
        if (r == 0)
            return vd_errorf(err, VD_ERR_INVALID,
                             "%s: member data.npy: offset %llu: truncated: %zu more bytes expected",
                             m->name, (unsigned long long)(m->pos + got), n - got);
        got += (size_t)r;
    }
    m->pos += n;
    return VD_OK;
}

static vd_status read_header(member *m, npy_header *h, vd_err *err) {
    uint8_t pre[12];
    vd_status s = mread(m, pre, 8, err);
    if (s != VD_OK) return s;
    if (memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 || pre[6] > 3)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: member data.npy: offset 0: not a .npy array (magic \\x93NUMPY "
                         "version 1-3 expected)", m->name);
    size_t lenbytes = pre[6] == 1 ? 2 : 4, hlen = 0;
    s = mread(m, pre + 8, lenbytes, err);
    if (s != VD_OK) return s;
    for (size_t i = 0; i < lenbytes; i++) hlen |= (size_t)pre[8 + i] << (8 * i);
    if (hlen > NPY_MAX_HEADER)
        return vd_errorf(err, VD_ERR_INVALID, "%s: member data.npy: offset 8: header length %zu "
                         "exceeds %d bytes", m->name, hlen, NPY_MAX_HEADER);
    char *text = malloc(hlen + 1);
    if (!text) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    cursor c = {text, text, text + hlen, m->name, (size_t)m->pos};
    s = mread(m, text, hlen, err);
    if (s == VD_OK) s = parse_dict(&c, h, err);
    free(text);
    return s;
}

static void shape_str(const npy_header *h, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < h->ndim && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "",
                         (unsigned long long)h->shape[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (h->ndim == 1 && used + 2 < cap) strcat(buf, ",");
}

/* Bytes per image (product of all but the first dimension), 0 if it exceeds `limit`. */
static uint64_t image_bytes(const npy_header *h, uint64_t limit) {
    uint64_t per = 1;
    for (int i = 1; i < h->ndim; i++) {
        if (h->shape[i] == 0 || h->shape[i] > limit / per) return 0;
        per *= h->shape[i];
    }
    return per;
}

/* dtype uint8, C order, shape (N, ...) with C*res*res bytes per image, as the member holds. */
static vd_status check_header(const member *m, const npy_header *h, int res, int channels,
                              vd_err *err) {
    const char *d = h->descr;
    if (strcmp(d, "|u1") && strcmp(d, "<u1") && strcmp(d, ">u1") && strcmp(d, "u1"))
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy has dtype '%s', expected uint8 ('|u1')",
                         m->name, d);
    if (h->fortran)
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy is in Fortran order, expected C order",
                         m->name);
    uint64_t want = (uint64_t)channels * res * res, left = m->size - m->pos;
    char sh[160];
    shape_str(h, sh, sizeof sh);
    if (h->ndim < 2 || image_bytes(h, want) != want || h->shape[0] == 0)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: data.npy has shape (%s), expected (N, %llu) for %d channels of "
                         "%d x %d, N > 0", m->name, sh, (unsigned long long)want, channels, res,
                         res);
    if (m->pos > m->size || h->shape[0] > left / want || left != h->shape[0] * want)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: member data.npy: offset %llu: shape (%s) does not match the member, "
                         "which holds %llu bytes after its header", m->name,
                         (unsigned long long)m->pos, sh, (unsigned long long)left);
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
        s = mread(m, chunk, per * (size_t)k, err);
        for (int64_t j = 0; j < k && s == VD_OK; j++)
            chw_to_hwc(chunk + per * j, out->h * out->w, out->c, vd_image_ptr(out, i + j));
    }
    free(chunk);
    /* reading past the end makes libzip check the member's CRC */
    uint8_t extra;
    zip_int64_t r = s == VD_OK ? zip_fread(m->f, &extra, 1) : 0;
    if (r != 0)
        s = vd_errorf(err, VD_ERR_INVALID, "%s: member data.npy: offset %llu: %s", m->name,
                      (unsigned long long)m->pos,
                      r < 0 ? zip_file_strerror(m->f) : "data beyond the stated size");
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

/* The declared size must be possible for the stored bytes: nothing is allocated beyond that. */
static vd_status stat_member(zip_t *za, zip_uint64_t idx, uint64_t archive_len, const char *name,
                             zip_stat_t *st, vd_err *err) {
    zip_stat_init(st);
    if (zip_stat_index(za, idx, 0, st) != 0)
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy: %s", name, zip_strerror(za));
    uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st->valid & need) != need)
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy: sizes missing in the zip directory",
                         name);
    uint64_t ratio = st->comp_method == ZIP_CM_STORE ? 1 : DEFLATE_MAX_RATIO;
    if (st->comp_size > archive_len || st->size / ratio > st->comp_size + 1024)
        return vd_errorf(err, VD_ERR_INVALID, "%s: data.npy: stated size %llu bytes (%llu "
                         "compressed) is impossible in a %llu-byte archive", name,
                         (unsigned long long)st->size, (unsigned long long)st->comp_size,
                         (unsigned long long)archive_len);
    return VD_OK;
}

static vd_status read_archive(zip_t *za, uint64_t archive_len, const char *name, int res,
                              int channels, vd_images *out, vd_err *err) {
    zip_int64_t idx = zip_name_locate(za, "data.npy", 0);
    if (idx < 0) idx = zip_name_locate(za, "data", 0);
    if (idx < 0) return no_data(za, name, err);
    zip_stat_t st;
    vd_status s = stat_member(za, (zip_uint64_t)idx, archive_len, name, &st, err);
    if (s != VD_OK) return s;
    member m = {zip_fopen_index(za, (zip_uint64_t)idx, 0), name, st.size, 0};
    if (!m.f)
        return vd_errorf(err, VD_ERR_INVALID, "%s: cannot open member data.npy: %s", name,
                         zip_strerror(za));
    npy_header h;
    s = read_header(&m, &h, err);
    if (s == VD_OK) s = check_header(&m, &h, res, channels, err);
    if (s == VD_OK) s = vd_images_alloc(out, (int64_t)h.shape[0], res, res, channels, err);
    if (s == VD_OK) s = read_pixels(&m, out, err);
    zip_fclose(m.f);
    if (s != VD_OK) vd_images_free(out);
    return s;
}

static vd_status check_args(const char *name, int res, int channels, vd_err *err) {
    if (res <= 0 || res > 65535 || channels <= 0 || channels > 4)
        return vd_errorf(err, VD_ERR_INVALID, "%s: bad image size %d x %d x %d requested", name,
                         res, res, channels);
    return VD_OK;
}

static vd_status zip_failed(zip_error_t *ze, const char *name, vd_err *err) {
    int code = zip_error_code_zip(ze);
    vd_status s = code == ZIP_ER_OPEN || code == ZIP_ER_READ || code == ZIP_ER_NOENT ||
                          code == ZIP_ER_MEMORY
                      ? VD_ERR_IO
                      : VD_ERR_INVALID;
    s = vd_errorf(err, s, "%s: cannot read as .npz (zip): %s", name, zip_error_strerror(ze));
    zip_error_fini(ze);
    return s;
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
        return zip_failed(&ze, name, err);
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
        return zip_failed(&ze, path, err);
    }
    zip_error_fini(&ze);
    s = read_archive(za, (uint64_t)sb.st_size, path, res, channels, out, err);
    zip_discard(za);
    return s;
}
