/* Packed datasets: one file holding a header, uint8 NHWC pixels (4096-aligned so the mapping can
 * be read straight into batches) and the image names; written atomically, opened by mmap.
 *
 * Layout, all integers little-endian:
 *   0  char[8]  "VDPACK1\0"        40 u64  pixel block offset (multiple of 4096)
 *   8  u32      version (1)        48 u64  names block offset (0 when there are no names)
 *  12  u32      header size (72)   56 u64  names block length in bytes
 *  16  u64      n images           64 u32  CRC-32 (zlib) of bytes 0..63
 *  24  u32 h, 28 u32 w, 32 u32 c   68 u32  reserved (0)
 *  36  u32      flags (bit 0: names present)
 * The pixel block is n*h*w*c bytes; the names block is n NUL-terminated strings back to back. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/fs.h"
#include "vdvae/data.h"

#define PACK_MAGIC "VDPACK1"
#define PACK_VERSION 1u
#define PACK_HEADER 72u
#define PACK_CRC_SPAN 64u
#define PACK_ALIGN 4096u
#define PACK_MAX_DIM 65536u
#define PACK_FLAG_NAMES 1u

typedef struct pack_header {
    uint64_t n;
    uint32_t h, w, c, flags;
    uint64_t pix_off, names_off, names_len;
} pack_header;

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint32_t header_crc(const uint8_t *h) {
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, PACK_CRC_SPAN);
}

static void header_encode(const pack_header *ph, uint8_t out[PACK_HEADER]) {
    memset(out, 0, PACK_HEADER);
    memcpy(out, PACK_MAGIC, 8);
    put32(out + 8, PACK_VERSION);
    put32(out + 12, PACK_HEADER);
    put64(out + 16, ph->n);
    put32(out + 24, ph->h), put32(out + 28, ph->w), put32(out + 32, ph->c);
    put32(out + 36, ph->flags);
    put64(out + 40, ph->pix_off), put64(out + 48, ph->names_off), put64(out + 56, ph->names_len);
    put32(out + 64, header_crc(out));
}

/* ---- writing ---------------------------------------------------------------------------- */

static vd_status write_all(int fd, const void *buf, size_t len, const char *path, vd_err *err) {
    const uint8_t *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return vd_errorf(err, VD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += k, len -= (size_t)k;
    }
    return VD_OK;
}

static const char *image_name(const vd_images *im, int64_t i, char *buf, size_t cap) {
    if (im->names && im->names[i]) return im->names[i];
    snprintf(buf, cap, "image_%lld", (long long)i);
    return buf;
}

static uint64_t names_length(const vd_images *im) {
    if (!im->names) return 0;
    uint64_t len = 0;
    char buf[32];
    for (int64_t i = 0; i < im->n; i++) len += strlen(image_name(im, i, buf, sizeof buf)) + 1;
    return len;
}

static vd_status write_body(int fd, const vd_images *im, const pack_header *ph, const char *tmp,
                            vd_err *err) {
    uint8_t head[PACK_HEADER];
    header_encode(ph, head);
    static const uint8_t zeros[PACK_ALIGN];
    vd_status st = write_all(fd, head, sizeof head, tmp, err);
    if (!st) st = write_all(fd, zeros, ph->pix_off - PACK_HEADER, tmp, err);
    if (!st) st = write_all(fd, im->pixels, ph->n * ph->h * ph->w * ph->c, tmp, err);
    char buf[32];
    for (int64_t i = 0; !st && ph->names_len && i < im->n; i++) {
        const char *s = image_name(im, i, buf, sizeof buf);
        st = write_all(fd, s, strlen(s) + 1, tmp, err);
    }
    return st;
}

static vd_status check_images(const vd_images *im, const char *path, vd_err *err) {
    if (im->n < 0 || im->h <= 0 || im->w <= 0 || im->c <= 0 || (uint32_t)im->h > PACK_MAX_DIM ||
        (uint32_t)im->w > PACK_MAX_DIM || im->c > 4 || (im->n > 0 && !im->pixels))
        return vd_errorf(err, VD_ERR_INVALID, "%s: cannot pack %lld images of %dx%dx%d", path,
                         (long long)im->n, im->h, im->w, im->c);
    return VD_OK;
}

vd_status vd_pack_write(const char *path, const vd_images *im, vd_err *err) {
    vd_status st = check_images(im, path, err);
    if (st) return st;
    pack_header ph = {.n = (uint64_t)im->n, .h = (uint32_t)im->h, .w = (uint32_t)im->w,
                      .c = (uint32_t)im->c, .pix_off = PACK_ALIGN};
    ph.names_len = names_length(im);
    if (ph.names_len) {
        ph.flags = PACK_FLAG_NAMES;
        ph.names_off = ph.pix_off + ph.n * ph.h * ph.w * ph.c;
    }
    vd_atomic a;
    if ((st = vd_atomic_begin(&a, path, err))) return st;
    /* straight to the descriptor: nothing goes through the stream's buffer */
    if ((st = write_body(fileno(a.f), im, &ph, a.tmp, err))) {
        vd_atomic_abort(&a);
        return st;
    }
    return vd_atomic_commit(&a, true, err);
}

/* ---- reading ---------------------------------------------------------------------------- */

static vd_status header_decode(const uint8_t *b, uint64_t file_len, pack_header *ph,
                               const char *path, vd_err *err) {
    if (file_len < 8 || memcmp(b, PACK_MAGIC, 8) != 0)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 0: not a vdvae pack (bad magic)", path);
    if (file_len < PACK_HEADER)
        return vd_errorf(err, VD_ERR_INVALID, "%s: truncated at offset %llu: header needs %u bytes",
                         path, (unsigned long long)file_len, PACK_HEADER);
    if (get32(b + 8) != PACK_VERSION)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: unsupported pack version %u", path,
                         get32(b + 8));
    if (get32(b + 64) != header_crc(b))
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 64: header CRC mismatch (corrupt header)",
                         path);
    *ph = (pack_header){.n = get64(b + 16), .h = get32(b + 24), .w = get32(b + 28),
                        .c = get32(b + 32), .flags = get32(b + 36), .pix_off = get64(b + 40),
                        .names_off = get64(b + 48), .names_len = get64(b + 56)};
    if (get32(b + 12) != PACK_HEADER || ph->h == 0 || ph->w == 0 || ph->c == 0 ||
        ph->h > PACK_MAX_DIM || ph->w > PACK_MAX_DIM || ph->c > 4 || ph->n > (1ull << 40) ||
        ph->pix_off % PACK_ALIGN || ph->pix_off < PACK_HEADER)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 12: inconsistent header fields", path);
    return VD_OK;
}

static vd_status check_extent(const char *path, const char *what, uint64_t off, uint64_t len,
                              uint64_t file_len, vd_err *err) {
    if (off > file_len || len > file_len - off)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: truncated at offset %llu: the %s block ends at offset %llu",
                         path, (unsigned long long)file_len, what,
                         (unsigned long long)(off + len));
    return VD_OK;
}

static vd_status check_layout(const pack_header *ph, uint64_t file_len, const char *path,
                              vd_err *err) {
    uint64_t pix_len;
    if (__builtin_mul_overflow(ph->n, (uint64_t)ph->h * ph->w * ph->c, &pix_len))
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 16: image count too large", path);
    vd_status st = check_extent(path, "pixel", ph->pix_off, pix_len, file_len, err);
    if (st || !(ph->flags & PACK_FLAG_NAMES)) return st;
    if (ph->names_off < ph->pix_off + pix_len || ph->names_len < ph->n)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 48: names block overlaps the pixels",
                         path);
    return check_extent(path, "names", ph->names_off, ph->names_len, file_len, err);
}

/* n pointers to the names, placed in anonymous pages right after the file mapping so the whole
 * vd_images lives in one mapping that one munmap releases. */
static vd_status index_names(vd_images *out, const pack_header *ph, size_t file_span,
                             const char *path, vd_err *err) {
    const char *s = (const char *)out->map + ph->names_off, *end = s + ph->names_len;
    char **names = (char **)((uint8_t *)out->map + file_span);
    for (uint64_t i = 0; i < ph->n; i++) {
        const char *z = memchr(s, '\0', (size_t)(end - s));
        if (!z)
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset %llu: name %llu is not terminated",
                             path, (unsigned long long)(s - (const char *)out->map),
                             (unsigned long long)i);
        names[i] = (char *)s;
        s = z + 1;
    }
    out->names = names;
    return VD_OK;
}

static vd_status map_pack(int fd, const pack_header *ph, uint64_t file_len, vd_images *out,
                          const char *path, vd_err *err) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t file_span = (size_t)((file_len + page - 1) / page * page);
    size_t table = (ph->flags & PACK_FLAG_NAMES) ? (size_t)ph->n * sizeof(char *) : 0;
    size_t total = file_span + (table + page - 1) / page * page;
    void *base = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot map: %s", path, strerror(errno));
    out->map = base, out->map_len = total;
    if (mmap(base, (size_t)file_len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        (table && mprotect((uint8_t *)base + file_span, total - file_span,
                           PROT_READ | PROT_WRITE) != 0))
        return vd_errorf(err, VD_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    out->n = (int64_t)ph->n, out->h = (int)ph->h, out->w = (int)ph->w, out->c = (int)ph->c;
    /* an empty pixel block would point at the mapping's end, which vd_images_free cannot
     * tell from a malloc'ed block */
    out->pixels = ph->n ? (uint8_t *)base + ph->pix_off : NULL;
    if (!table) return VD_OK;
    vd_status st = index_names(out, ph, file_span, path, err);
    if (!st) mprotect((uint8_t *)base + file_span, total - file_span, PROT_READ);
    return st;
}

static vd_status read_header(int fd, uint64_t file_len, pack_header *ph, const char *path,
                             vd_err *err) {
    uint8_t b[PACK_HEADER] = {0};
    size_t want = file_len < PACK_HEADER ? (size_t)file_len : PACK_HEADER;
    if (pread(fd, b, want, 0) != (ssize_t)want)
        return vd_errorf(err, VD_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    vd_status st = header_decode(b, file_len, ph, path, err);
    return st ? st : check_layout(ph, file_len, path, err);
}

vd_status vd_pack_open(const char *path, vd_images *out, vd_err *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    vd_status st = VD_OK;
    if (fstat(fd, &sb) != 0) st = vd_errorf(err, VD_ERR_IO, "%s: stat failed: %s", path, strerror(errno));
    pack_header ph = {0};
    if (!st) st = read_header(fd, (uint64_t)sb.st_size, &ph, path, err);
    if (!st) st = map_pack(fd, &ph, (uint64_t)sb.st_size, out, path, err);
    close(fd);
    if (st && out->map) {
        munmap(out->map, out->map_len);
        memset(out, 0, sizeof *out);
    }
    return st;
}

bool vd_pack_probe(const char *path) {
    size_t len = strlen(path);
    if (len >= 7 && strcmp(path + len - 7, ".vdpack") == 0) return true;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char magic[8];
    struct stat sb;
    bool yes = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && pread(fd, magic, 8, 0) == 8 &&
               memcmp(magic, PACK_MAGIC, 8) == 0;
    close(fd);
    return yes;
}
