/* IDX image files (MNIST, Fashion-MNIST): big-endian header, magic 0x00000803, then N x rows x
 * cols uint8 pixels; raw or gzip (detected by its magic, decompressed with zlib). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/formats.h"

#define IDX_MAGIC 0x00000803u
#define IDX_HEADER 16
/* Deflate cannot expand data by more than about 1032:1; a header claiming more pixels
 * than the compressed size allows is refused before allocating. */
#define DEFLATE_MAX_RATIO 1032
#define ZCHUNK ((size_t)1 << 30)

typedef struct idx_shape {
    uint32_t n, rows, cols;
    uint64_t bytes; /* pixel bytes after the header */
} idx_shape;

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static vd_status idx_header(const uint8_t *h, const char *name, idx_shape *sh, vd_err *err) {
    uint32_t magic = be32(h);
    sh->n = be32(h + 4), sh->rows = be32(h + 8), sh->cols = be32(h + 12);
    if (magic != IDX_MAGIC)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 0: bad IDX magic 0x%08x (expected 0x%08x: uint8 images "
                         "with 3 dimensions)%s", name, magic, IDX_MAGIC,
                         magic == 0x801 ? "; this looks like a label file" : "");
    if (sh->n == 0 || sh->rows == 0 || sh->cols == 0 || sh->rows > 65535 || sh->cols > 65535)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 4: bad IDX dimensions %u x %u x %u",
                         name, sh->n, sh->rows, sh->cols);
    sh->bytes = (uint64_t)sh->rows * sh->cols * sh->n; /* < 2^64: 2^32 * 2^32 */
    return VD_OK;
}

static vd_status idx_alloc(const idx_shape *sh, const char *name, vd_images *out, vd_err *err) {
    if (vd_images_alloc(out, sh->n, (int)sh->rows, (int)sh->cols, 1, err) != VD_OK)
        return vd_err_prefix(err, "%s", name);
    return VD_OK;
}

static vd_status parse_raw(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                           vd_err *err) {
    if (len < IDX_HEADER)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %zu: truncated IDX header: expected %d bytes, file has %zu",
                         name, len, IDX_HEADER, len);
    idx_shape sh = {0};
    vd_status s = idx_header(buf, name, &sh, err);
    if (s != VD_OK) return s;
    size_t have = len - IDX_HEADER;
    if (sh.bytes / 2 > have)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 4: IDX dimensions %u x %u x %u (%llu bytes) cannot fit in "
                         "a file of %zu bytes", name, sh.n, sh.rows, sh.cols,
                         (unsigned long long)sh.bytes, len);
    if (have != sh.bytes)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %zu: %s: header says %u x %u x %u = %llu pixel bytes after "
                         "the %d-byte header, file has %zu", name,
                         have < sh.bytes ? len : IDX_HEADER + (size_t)sh.bytes,
                         have < sh.bytes ? "truncated" : "trailing data", sh.n, sh.rows, sh.cols,
                         (unsigned long long)sh.bytes, IDX_HEADER, have);
    s = idx_alloc(&sh, name, out, err);
    if (s == VD_OK) memcpy(out->pixels, buf + IDX_HEADER, have);
    return s;
}

/* Inflate until `want` bytes are out or the input ends; returns zlib's last code.
 * Concatenated gzip members continue into the next member, as gzip(1) reads them. */
static int inflate_to(z_stream *z, uint8_t *dst, size_t want, size_t *got) {
    *got = 0;
    for (;;) {
        size_t step = want - *got < ZCHUNK ? want - *got : ZCHUNK;
        z->next_out = dst + *got, z->avail_out = (uInt)step;
        int r = inflate(z, Z_NO_FLUSH);
        *got += step - z->avail_out;
        if (r == Z_STREAM_END && z->avail_in >= 2 && z->next_in[0] == 0x1f &&
            z->next_in[1] == 0x8b) {
            inflateReset(z);
            r = Z_OK;
        }
        if (r != Z_OK || *got == want || (z->avail_in == 0 && z->avail_out != 0)) return r;
    }
}

static vd_status gz_error(z_stream *z, int r, const char *name, size_t len, vd_err *err) {
    return vd_errorf(err, VD_ERR_INVALID, "%s: offset %zu: corrupt gzip data: %s (zlib %d)",
                     name, len - z->avail_in, z->msg ? z->msg : "inflate failed", r);
}

static int gz_broken(int r) { return r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR; }

/* Read `want` decompressed bytes that must be there (`at`: their decompressed offset). */
static vd_status gz_need(z_stream *z, const char *name, size_t len, uint8_t *dst, size_t want,
                         uint64_t at, vd_err *err) {
    size_t got;
    int r = inflate_to(z, dst, want, &got);
    if (got == want) return VD_OK;
    if (gz_broken(r)) return gz_error(z, r, name, len, err);
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: decompressed offset %llu: truncated: expected %llu decompressed "
                     "bytes, the gzip data (%zu bytes) holds %llu", name,
                     (unsigned long long)(at + got), (unsigned long long)(at + want), len,
                     (unsigned long long)(at + got));
}

/* After the pixels the stream must end (zlib checks the CRC there) with nothing more. */
static vd_status gz_end(z_stream *z, const char *name, size_t len, uint64_t at, vd_err *err) {
    uint8_t extra[64];
    size_t got;
    int r = inflate_to(z, extra, sizeof extra, &got);
    if (got)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: decompressed offset %llu: trailing data after the pixels the "
                         "header announces", name, (unsigned long long)at);
    if (r == Z_STREAM_END) return VD_OK;
    if (gz_broken(r)) return gz_error(z, r, name, len, err);
    return vd_errorf(err, VD_ERR_INVALID, "%s: offset %zu: truncated: gzip stream ends without "
                     "its trailer", name, len);
}

static vd_status parse_gz(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                          vd_err *err) {
    if (len > UINT32_MAX)
        return vd_errorf(err, VD_ERR_UNSUPPORTED, "%s: gzip files over 4 GiB are not supported",
                         name);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot start zlib", name);
    z.next_in = (Bytef *)buf, z.avail_in = (uInt)len;
    uint8_t hdr[IDX_HEADER];
    idx_shape sh = {0};
    vd_status s = gz_need(&z, name, len, hdr, IDX_HEADER, 0, err);
    if (s == VD_OK) s = idx_header(hdr, name, &sh, err);
    if (s == VD_OK && sh.bytes > (uint64_t)len * DEFLATE_MAX_RATIO)
        s = vd_errorf(err, VD_ERR_INVALID,
                      "%s: offset 4: IDX dimensions %u x %u x %u (%llu bytes) cannot come from "
                      "%zu bytes of gzip data", name, sh.n, sh.rows, sh.cols,
                      (unsigned long long)sh.bytes, len);
    if (s == VD_OK) s = idx_alloc(&sh, name, out, err);
    if (s == VD_OK) s = gz_need(&z, name, len, out->pixels, sh.bytes, IDX_HEADER, err);
    if (s == VD_OK) s = gz_end(&z, name, len, IDX_HEADER + sh.bytes, err);
    inflateEnd(&z);
    if (s != VD_OK) vd_images_free(out);
    return s;
}

vd_status vd_parse_idx_images(const uint8_t *buf, size_t len, const char *name, vd_images *out,
                              vd_err *err) {
    memset(out, 0, sizeof *out);
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) return parse_gz(buf, len, name, out, err);
    return parse_raw(buf, len, name, out, err);
}

vd_status vd_read_idx_images(const char *path, vd_images *out, vd_err *err) {
    uint8_t *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    vd_status s = vd_data_read_file(path, &buf, &len, err);
    if (s != VD_OK) return s;
    s = vd_parse_idx_images(buf, len, path, out, err);
    free(buf);
    return s;
}
