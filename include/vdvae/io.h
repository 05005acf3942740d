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

/* ---- .npy files (src/io/npy_file.c) --------------------------------------------------------
 * NumPy's format 1.0, C order, little-endian, loadable with numpy.load without pickle. */

/* Write an array of F32, U8 or I64 elements and any shape (ndim 0 .. VD_ST_MAX_DIMS)
 * atomically: a temporary file beside path, fsync'ed, renamed over it. */
vd_status vd_npy_write(const char *path, vd_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       vd_err *err);
/* Read a little-endian float32 C-order array (format 1.0 to 3.0): *data is malloc'ed, the caller
 * frees it. A missing file or any other dtype, order or truncation is VD_ERR_INVALID naming
 * the file. */
vd_status vd_npy_read_f32(const char *path, int *ndim, int64_t shape[VD_ST_MAX_DIMS], float **data,
                          vd_err *err);


/* ---- .npz (numpy archives: the encodings files) ----------------------------------------- */
/* An .npz is a zip of .npy members, one per array, named "<name>.npy"; numpy's np.load opens
 * ours and we open np.savez/np.savez_compressed output. dtypes are numpy's, little-endian:
 * "f4" (float32), "f8" (float64: FID statistics), "i8" (int64), "u1" (uint8), and "U"
 * (fixed-width unicode, '<U{n}', UTF-32LE in the file, UTF-8 C strings in the API); reading
 * also takes "i4" and "b1". */

#define VD_NPZ_MAX_DIMS 8

typedef struct vd_npz_writer vd_npz_writer;

/* Start an archive that vd_npz_writer_close writes to path (nothing touches path before). */
vd_status vd_npz_writer_open(vd_npz_writer **out, const char *path, vd_err *err);
/* Deflate (as np.savez_compressed) the members added from now on; the default stores them
 * (as np.savez): latents are float noise that deflate barely shrinks. */
void vd_npz_writer_deflate(vd_npz_writer *w, int on);
/* Add array `name` (member name.npy) of dtype "f4", "f8", "i8", "u1" or "<U" (also "<f4",
 * "<f8", "<i8", "|u1"), C order, ndim in [0, 8] (0: a scalar of one element). data is copied; for "<U" it
 * is an array of numel UTF-8 C strings (const char *const *), written as '<U{longest}'. A
 * failed add leaves the writer unable to close successfully (close then writes nothing). */
vd_status vd_npz_add(vd_npz_writer *w, const char *name, const char *dtype, int ndim,
                     const int64_t *shape, const void *data, vd_err *err);
/* Write atomically: the zip goes to a temporary file next to path, is fsync'ed, and renamed
 * over path. Always frees w. */
vd_status vd_npz_writer_close(vd_npz_writer *w, vd_err *err);
/* Abandon w without writing anything. */
void vd_npz_writer_discard(vd_npz_writer *w);

typedef struct vd_npz_array {
    const char *name;                /* without ".npy" */
    const char *file;                /* the archive's path, for messages */
    char dtype[4];                   /* "f4", "f8", "i4", "i8", "u1", "b1" or "U" */
    size_t itemsize;                 /* bytes per element; for "U", 4 * characters */
    int ndim;                        /* 0 for a scalar */
    int64_t shape[VD_NPZ_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const void *data;                /* C order, malloc-aligned; valid until vd_npz_close */
} vd_npz_array;

typedef struct vd_npz vd_npz;

/* Open path and list its members; arrays are read (and checked) on first vd_npz_find. */
vd_status vd_npz_open(vd_npz **out, const char *path, vd_err *err);
void vd_npz_close(vd_npz *r);
int vd_npz_count(const vd_npz *r);
/* Array names (member names without ".npy") in archive order, i in [0, count). */
const char *vd_npz_name(const vd_npz *r, int i);
/* Read array `name`: header (magic, version 1.0-3.0, 'descr', 'fortran_order' False,
 * 'shape'), sizes and CRC. Absent, unreadable or unsupported arrays are VD_ERR_INVALID naming
 * the file and member. */
vd_status vd_npz_find(vd_npz *r, const char *name, const vd_npz_array **out, vd_err *err);
/* vd_npz_find, then require dtype ("f4", "i8", "u1", "U", ...) and ndim (-1: any). */
vd_status vd_npz_get(vd_npz *r, const char *name, const char *dtype, int ndim,
                     const vd_npz_array **out, vd_err *err);
/* Array `name` as float32 into dst (numel floats) from any of f4, f8, i4, i8, u1, b1, so a
 * file edited in numpy that became float64 still reads; ndim/shape as the caller expects
 * (shape NULL: any shape of `numel` elements). */
vd_status vd_npz_read_f32(vd_npz *r, const char *name, int ndim, const int64_t *shape,
                          int64_t numel, float *dst, vd_err *err);
/* Element i of a "U" array as UTF-8 into buf (NUL-terminated; numpy's trailing NULs dropped). */
vd_status vd_npz_string(const vd_npz_array *a, int64_t i, char *buf, size_t cap, vd_err *err);
/* ---- end of .npz ------------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif
#endif
