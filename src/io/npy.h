/* Internal: the .npy header shared by the ImageNet .npz reader (src/data) and the encodings
 * .npz reader/writer (src/io/npz.c): magic, version, the strict header-dict parser, its writer. */
#ifndef VDVAE_IO_NPY_H
#define VDVAE_IO_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <zip.h>

#include "vdvae/status.h"

#define VD_NPY_MAX_DIMS 8
#define VD_NPY_MAX_HEADER 65536

typedef struct vd_npy_header {
    char descr[16];                    /* as written: '<f4', '|u1', '<U12', ... */
    int fortran;
    int ndim;                          /* 0 for a scalar */
    uint64_t shape[VD_NPY_MAX_DIMS];
    uint64_t data_offset;              /* bytes of preamble and dict: where the data starts */
} vd_npy_header;

/* Reads exactly n bytes of the member or fails with a message naming file, member, offset. */
typedef vd_status (*vd_npy_read_fn)(void *ctx, void *dst, size_t n, vd_err *err);

/* Preamble (magic, version 1.0-3.0, header length) and dict; `file` and `member` name the
 * array in messages. Keys 'descr', 'fortran_order', 'shape', each once, nothing else. */
vd_status vd_npy_read_header(vd_npy_read_fn rd, void *ctx, const char *file, const char *member,
                             vd_npy_header *h, vd_err *err);

/* A version 1.0 header for a C-order array, padded with
 * spaces and a newline to a multiple of 64 bytes as numpy pads. Returns its length, 0 when it
 * does not fit in cap. */
size_t vd_npy_format_header(const char *descr, int ndim, const int64_t *shape, char *buf,
                            size_t cap);

/* "3, 48" ("3," for one dimension), for messages. */
void vd_npy_shape_str(const vd_npy_header *h, char *buf, size_t cap);

/* A zip member being read through vd_npy_zip_read: `file` names the archive and `array` the
 * member's array (the member is <array>.npy); pos counts the bytes read so far. */
typedef struct vd_npy_zip_member {
    zip_file_t *f;
    const char *file, *array;
    uint64_t pos;
} vd_npy_zip_member;

/* A vd_npy_read_fn over a vd_npy_zip_member: exactly n bytes, or an error naming the file,
 * member and offset (a read error, or the member ending early). */
vd_status vd_npy_zip_read(void *ctx, void *dst, size_t n, vd_err *err);

/* Sizes of member idx from the zip directory; a stated size impossible for the stored bytes
 * (a decompression bomb, a lie) fails before anything is allocated for it. */
vd_status vd_npy_stat_member(zip_t *za, zip_uint64_t idx, uint64_t archive_len, const char *file,
                             const char *member, zip_stat_t *st, vd_err *err);

/* A failed zip_open as a status (VD_ERR_IO for unreadable files, else VD_ERR_INVALID); finis ze. */
vd_status vd_npy_zip_failed(zip_error_t *ze, const char *file, vd_err *err);

#endif
