/* Whole .npy files on disk (div_stats and other arrays that Python users load with
 * numpy.load, no pickle), on the shared header code of src/io/npy.c. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "core/util.h"
#include "io/npy.h"
#include "vdvae/io.h"

static const char *npy_descr(vd_dtype t) {
    switch (t) {
    case VD_DTYPE_F32: return "<f4";
    case VD_DTYPE_U8: return "|u1";
    case VD_DTYPE_I64: return "<i8";
    default: return NULL;
    }
}

vd_status vd_npy_write(const char *path, vd_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       vd_err *err) {
    const char *descr = npy_descr(dtype);
    if (!descr) return vd_errorf(err, VD_ERR_UNSUPPORTED, "%s: the .npy writer takes F32, U8 or I64, not %s", path, vd_dtype_str(dtype));
    if (ndim < 0 || ndim > VD_NPY_MAX_DIMS) return vd_errorf(err, VD_ERR_INVALID, "%s: %d dimensions (at most %d)", path, ndim, VD_NPY_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return vd_errorf(err, VD_ERR_INVALID, "%s: negative dimension %lld", path, (long long)shape[i]);
        numel *= shape[i];
    }
    char hdr[1024];
    size_t hn = vd_npy_format_header(descr, ndim, shape, hdr, sizeof hdr);
    if (!hn) return vd_errorf(err, VD_ERR_INVALID, "%s: .npy header too long", path);
    vd_atomic a;
    vd_status st = vd_atomic_begin(&a, path, err);
    if (st) return st;
    /* straight to the descriptor: nothing goes through the stream's buffer */
    int e = vd_write_all(fileno(a.f), hdr, hn);
    if (!e) e = vd_write_all(fileno(a.f), data, (size_t)numel * vd_dtype_size(dtype));
    if (e) {
        vd_atomic_abort(&a);
        return vd_errorf(err, VD_ERR_IO, "%s: cannot write .npy: %s", path, strerror(e));
    }
    return vd_atomic_commit(&a, true, err);
}

typedef struct file_reader {
    FILE *f;
    const char *path;
    size_t off;
} file_reader;

static vd_status read_exact(void *ctx, void *dst, size_t n, vd_err *err) {
    file_reader *r = ctx;
    if (fread(dst, 1, n, r->f) != n)
        return vd_errorf(err, VD_ERR_INVALID, "%s: truncated .npy file at offset %zu (%zu bytes expected)", r->path, r->off, n);
    r->off += n;
    return VD_OK;
}

static vd_status read_body(file_reader *r, const vd_npy_header *h, int *ndim, int64_t *shape, float **data, vd_err *err) {
    if (strcmp(h->descr, "<f4") != 0 || h->fortran)
        return vd_errorf(err, VD_ERR_INVALID, "%s: a little-endian float32 array in C order expected, found '%s'%s",
                         r->path, h->descr, h->fortran ? " in Fortran order" : "");
    int64_t numel = 1;
    *ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] > 0 && (uint64_t)numel > (uint64_t)INT64_MAX / 4 / h->shape[i])
            return vd_errorf(err, VD_ERR_INVALID, "%s: .npy shape too large", r->path);
        shape[i] = (int64_t)h->shape[i];
        numel *= shape[i];
    }
    if (!(*data = malloc((size_t)(numel ? numel : 1) * sizeof(float))))
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory for %lld floats", r->path, (long long)numel);
    vd_status st = read_exact(r, *data, (size_t)numel * sizeof(float), err);
    if (st) free(*data), *data = NULL;
    return st;
}

vd_status vd_npy_read_f32(const char *path, int *ndim, int64_t shape[VD_ST_MAX_DIMS], float **data, vd_err *err) {
    *data = NULL;
    file_reader r = {fopen(path, "rb"), path, 0};
    if (!r.f) return vd_errorf(err, errno == ENOENT ? VD_ERR_INVALID : VD_ERR_IO, "%s: %s", path, strerror(errno));
    vd_npy_header h;
    vd_status st = vd_npy_read_header(read_exact, &r, path, "(file)", &h, err);
    if (!st) st = read_body(&r, &h, ndim, shape, data, err);
    fclose(r.f);
    return st;
}
