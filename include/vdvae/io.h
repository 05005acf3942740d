/* safetensors files (checkpoints, reference cases): a little-endian u64 header length, a JSON
 * header naming each tensor's dtype, shape and byte range, then the raw data. Reading maps the
 * file and validates all of it; writing is atomic (temp file, fsync, rename). */
#ifndef VDVAE_IO_H
#define VDVAE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of the safetensors format that we read; all are little-endian. */
typedef enum vd_dtype {
    VD_DTYPE_F64, VD_DTYPE_F32, VD_DTYPE_F16, VD_DTYPE_BF16,
    VD_DTYPE_I64, VD_DTYPE_I32, VD_DTYPE_I16, VD_DTYPE_I8,
    VD_DTYPE_U64, VD_DTYPE_U32, VD_DTYPE_U16, VD_DTYPE_U8, VD_DTYPE_BOOL,
} vd_dtype;

size_t vd_dtype_size(vd_dtype t);
/* The format's name: "F32", "BF16", ... */
const char *vd_dtype_str(vd_dtype t);

#define VD_ST_MAX_DIMS 8
/* Largest header we accept, as the reference Rust reader does. */
#define VD_ST_MAX_HEADER 100000000u

typedef struct vd_st_tensor {
    const char *name;
    vd_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[VD_ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data;                /* into the mapping: valid until vd_st_close; aligned only
                                        as far as the file is (ours: to the element size) */
    uint64_t file_offset;            /* where data starts in the file, for messages */
} vd_st_tensor;

typedef struct vd_st vd_st;

/* Map and validate path: header length against the file size, JSON, dtypes, shapes, byte
 * ranges inside the data and covering it without overlaps or holes, string metadata. Errors
 * are VD_ERR_INVALID (VD_ERR_UNSUPPORTED for a dtype of the format we do not read) and name the
 * file and byte offset. */
vd_status vd_st_open(const char *path, vd_st **out, vd_err *err);
void vd_st_close(vd_st *st);

int vd_st_count(const vd_st *st);
/* Tensors in name order (i in [0, count)). */
const vd_st_tensor *vd_st_at(const vd_st *st, int i);
/* NULL when absent. */
const vd_st_tensor *vd_st_find(const vd_st *st, const char *name);
/* A __metadata__ value, NULL when absent. */
const char *vd_st_meta(const vd_st *st, const char *key);

/* Copy tensor `name` into dst as float32, converting any float or integer dtype. ndim/shape
 * are what the caller expects (shape may be NULL to accept any shape of `numel` elements);
 * a mismatch or an absent name is VD_ERR_INVALID naming the file and tensor. */
vd_status vd_st_read_f32(const vd_st *st, const char *name, int ndim, const int64_t *shape,
                         int64_t numel, float *dst, vd_err *err);

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct vd_st_writer vd_st_writer;

vd_status vd_st_writer_init(vd_st_writer **out, vd_err *err);
/* Queue one tensor. data is not copied: it must stay valid until vd_st_writer_finish. */
vd_status vd_st_writer_add(vd_st_writer *w, const char *name, vd_dtype dtype, int ndim,
                           const int64_t *shape, const void *data, vd_err *err);
/* Queue one __metadata__ entry (both strings are copied). */
vd_status vd_st_writer_meta(vd_st_writer *w, const char *key, const char *value, vd_err *err);
/* Write everything to path atomically: a temporary file in the same directory, fsync'ed, then
 * renamed over path. Tensors are laid out by decreasing element size, then name, after a header
 * padded with spaces to a multiple of 8 bytes, so each tensor is aligned to its element size. */
vd_status vd_st_writer_finish(vd_st_writer *w, const char *path, vd_err *err);
void vd_st_writer_free(vd_st_writer *w);

#ifdef __cplusplus
}
#endif
#endif
