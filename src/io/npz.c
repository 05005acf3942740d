/* .npz archives as numpy writes them (a zip of .npy members), for the encodings files: a writer
 * that stores or deflates through libzip and renames into place, and a reader of any such file. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "core/fs.h"
#include "io/npy.h"
#include "vdvae/io.h"

_Static_assert(VD_NPZ_MAX_DIMS == VD_NPY_MAX_DIMS, "one dimension limit");

/* ---- dtypes --------------------------------------------------------------------------------- */

typedef struct dtype_info {
    const char *name, *descr; /* ours, numpy's little-endian descr */
    size_t size;
} dtype_info;

static const dtype_info DTYPES[] = {
    {"f4", "<f4", 4}, {"f8", "<f8", 8}, {"i4", "<i4", 4}, {"i8", "<i8", 8},
    {"u1", "|u1", 1}, {"b1", "|b1", 1},
};

/* numpy's descr ('<f4', '|u1', '<U12', '=i8') to ours; 0 when we do not read it. */
static int parse_descr(const char *descr, char name[4], size_t *size) {
    char order = descr[0];
    const char *t = strchr("<|=>", order) ? descr + 1 : descr;
    if (t[0] == 'U') {
        char *end;
        errno = 0;
        unsigned long n = strtoul(t + 1, &end, 10);
        if (order == '>' || order == '|' || t[1] < '0' || t[1] > '9' || *end || errno ||
            n > SIZE_MAX / 4)
            return 0;
        return strcpy(name, "U"), *size = 4 * n, 1;
    }
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (!strcmp(t, DTYPES[i].name) && (order != '>' || DTYPES[i].size == 1))
            return strcpy(name, DTYPES[i].name), *size = DTYPES[i].size, 1;
    return 0;
}

/* Elements of a shape, -1 when a dimension is negative or the product overflows `limit`. */
static int64_t count_elements(int ndim, const int64_t *shape, int64_t limit) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) n = 0;
        else if (n > limit / shape[i]) return -1;
        else n *= shape[i];
    }
    return n;
}

/* ---- writing -------------------------------------------------------------------------------- */

struct vd_npz_writer {
    zip_t *za;
    char *path, *tmp;
    int deflate, failed, count;
};

/* A fresh name next to path; libzip itself refuses an existing file (ZIP_EXCL). */
static char *temp_name(const char *path) {
    static atomic_uint counter;
    size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (tmp)
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    return tmp;
}

vd_status vd_npz_writer_open(vd_npz_writer **out, const char *path, vd_err *err) {
    *out = NULL;
    vd_npz_writer *w = calloc(1, sizeof *w);
    if (w) w->path = strdup(path), w->tmp = temp_name(path);
    if (!w || !w->path || !w->tmp) {
        vd_npz_writer_discard(w);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    }
    int zerr = 0;
    w->za = zip_open(w->tmp, ZIP_CREATE | ZIP_EXCL, &zerr);
    if (!w->za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        vd_errorf(err, VD_ERR_IO, "%s: cannot start %s: %s", path, w->tmp, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        vd_npz_writer_discard(w);
        return err ? err->code : VD_ERR_IO;
    }
    *out = w;
    return VD_OK;
}

void vd_npz_writer_deflate(vd_npz_writer *w, int on) { w->deflate = on != 0; }

void vd_npz_writer_discard(vd_npz_writer *w) {
    if (!w) return;
    if (w->za) zip_discard(w->za);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* One UTF-8 sequence at s into *cp; its length, 0 when malformed (overlong, surrogate, > U+10FFFF). */
static int utf8_decode(const unsigned char *s, uint32_t *cp) {
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    int n = s[0] < 0x80 ? 1 : s[0] >> 5 == 6 ? 2 : s[0] >> 4 == 14 ? 3 : s[0] >> 3 == 30 ? 4 : 0;
    if (!n) return 0;
    uint32_t c = n == 1 ? s[0] : s[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if (s[i] >> 6 != 2) return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min[n - 1] || c > 0x10ffff || (c >= 0xd800 && c < 0xe000)) return 0;
    return *cp = c, n;
}

/* Code points of a UTF-8 string into dst (when not NULL); -1 when malformed. */
static int64_t utf8_to_utf32(const char *s, uint32_t *dst) {
    int64_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
        uint32_t cp;
        int k = utf8_decode(p, &cp);
        if (!k) return -1;
        if (dst) dst[n] = cp;
        p += k;
    }
    return n;
}

/* The longest string in code points (at least 1: numpy's np.array(['']) is '<U1'). */
static vd_status unicode_width(const vd_npz_writer *w, const char *name, const char *const *strs,
                               int64_t numel, size_t *width, vd_err *err) {
    *width = 1;
    for (int64_t i = 0; i < numel; i++) {
        int64_t n = strs[i] ? utf8_to_utf32(strs[i], NULL) : -1;
        if (n < 0)
            return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': element %lld is %s", w->path,
                             name, (long long)i, strs[i] ? "not valid UTF-8" : "NULL");
        if ((size_t)n > *width) *width = (size_t)n;
    }
    return VD_OK;
}

static void unicode_fill(const char *const *strs, int64_t numel, size_t width, uint8_t *dst) {
    memset(dst, 0, (size_t)numel * width * 4);
    for (int64_t i = 0; i < numel; i++) /* little-endian host: UTF-32LE as numpy stores it */
        utf8_to_utf32(strs[i], (uint32_t *)(dst + (size_t)i * width * 4));
}

static vd_status check_name(const vd_npz_writer *w, const char *name, vd_err *err) {
    size_t n = strlen(name);
    int ok = n > 0 && n < 200 && !strchr(name, '/') && !strchr(name, '\\');
    for (size_t i = 0; ok && i < n; i++) ok = (unsigned char)name[i] >= 0x20;
    if (!ok)
        return vd_errorf(err, VD_ERR_INVALID, "%s: bad array name '%s' (1-199 characters, no "
                         "'/', '\\' or control characters)", w->path, name);
    return VD_OK;
}

/* The member's bytes: .npy header, then the data (copied, or converted to UTF-32). */
static vd_status build_member(vd_npz_writer *w, const char *name, const char *dtype, int ndim,
                              const int64_t *shape, const void *data, uint8_t **buf,
                              size_t *len, vd_err *err) {
    char kind[4], descr[32];
    size_t size = 0;
    const char *t = dtype[0] == '<' || dtype[0] == '|' ? dtype + 1 : dtype;
    int unicode = !strcmp(t, "U");
    int ok = unicode || (parse_descr(dtype, kind, &size) &&
                         (!strcmp(kind, "f4") || !strcmp(kind, "f8") || !strcmp(kind, "i8") ||
                          !strcmp(kind, "u1")));
    if (!ok)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': dtype '%s' (expected 'f4', 'f8', "
                         "'i8', 'u1' or '<U')", w->path, name, dtype);
    int64_t numel = -1;
    if (ndim >= 0 && ndim <= VD_NPZ_MAX_DIMS) numel = count_elements(ndim, shape, INT64_MAX / 1024);
    if (numel < 0)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': bad shape (ndim %d)", w->path, name,
                         ndim);
    if (numel > 0 && !data)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': no data", w->path, name);
    if (unicode) {
        vd_status s = unicode_width(w, name, data, numel, &size, err);
        if (s != VD_OK) return s;
        snprintf(descr, sizeof descr, "<U%zu", size);
        size *= 4;
    } else {
        snprintf(descr, sizeof descr, "%c%s", kind[0] == 'u' ? '|' : '<', kind);
    }
    char hdr[640];
    size_t hl = vd_npy_format_header(descr, ndim, shape, hdr, sizeof hdr);
    assert(hl > 0);
    size_t nbytes = (size_t)numel * size;
    *len = hl + nbytes;
    if (!(*buf = malloc(*len))) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", w->path);
    memcpy(*buf, hdr, hl);
    if (unicode) unicode_fill(data, numel, size / 4, *buf + hl);
    else if (nbytes) memcpy(*buf + hl, data, nbytes);
    return VD_OK;
}

static vd_status add_member(vd_npz_writer *w, const char *name, uint8_t *buf, size_t len,
                            vd_err *err) {
    char member[220];
    snprintf(member, sizeof member, "%s.npy", name);
    zip_source_t *src = zip_source_buffer(w->za, buf, len, 1);
    if (!src) {
        free(buf);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: array '%s': %s", w->path, name,
                         zip_strerror(w->za));
    }
    zip_int64_t idx = zip_file_add(w->za, member, src, ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        int exists = zip_error_code_zip(zip_get_error(w->za)) == ZIP_ER_EXISTS;
        zip_source_free(src);
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': %s", w->path, name,
                         exists ? "added twice" : zip_strerror(w->za));
    }
    zip_int32_t method = w->deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE;
    if (zip_set_file_compression(w->za, (zip_uint64_t)idx, method, 0) != 0)
        return vd_errorf(err, VD_ERR_INTERNAL, "%s: array '%s': %s", w->path, name,
                         zip_strerror(w->za));
    w->count++;
    return VD_OK;
}

vd_status vd_npz_add(vd_npz_writer *w, const char *name, const char *dtype, int ndim,
                     const int64_t *shape, const void *data, vd_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    vd_status s = check_name(w, name, err);
    if (s == VD_OK) s = build_member(w, name, dtype, ndim, shape, data, &buf, &len, err);
    if (s == VD_OK) s = add_member(w, name, buf, len, err);
    if (s != VD_OK) w->failed = 1;
    return s;
}

/* libzip writes the archive (to its own temporary, renamed to w->tmp); we fsync and rename. */
static vd_status finish(vd_npz_writer *w, vd_err *err) {
    if (w->failed)
        return vd_errorf(err, VD_ERR_INVALID, "%s: not written: an earlier array failed", w->path);
    if (!w->count) /* libzip would write no file at all */
        return vd_errorf(err, VD_ERR_INVALID, "%s: not written: no arrays", w->path);
    if (zip_close(w->za) != 0)
        return vd_errorf(err, VD_ERR_IO, "%s: cannot write %s: %s", w->path, w->tmp,
                         zip_strerror(w->za));
    w->za = NULL;
    return vd_rename_durable(w->tmp, w->path, err);
}

vd_status vd_npz_writer_close(vd_npz_writer *w, vd_err *err) {
    vd_status s = finish(w, err);
    vd_npz_writer_discard(w);
    return s;
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct entry {
    char *name;          /* without ".npy" */
    zip_uint64_t index;
    int loaded;
    vd_npz_array a;
    void *data;
} entry;

struct vd_npz {
    zip_t *za;
    char *path;
    uint64_t len;
    int n;
    entry *e;
};

typedef vd_npy_zip_member member;

/* dtype, order and shape from the header, checked against the member's size. */
static vd_status describe(const vd_npz *r, const member *m, const vd_npy_header *h,
                          uint64_t size, vd_npz_array *a, vd_err *err) {
    if (!parse_descr(h->descr, a->dtype, &a->itemsize))
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': dtype '%s' is not one we read "
                         "(little-endian f4, f8, i4, i8, u1, b1 or U)", r->path, m->array,
                         h->descr);
    if (h->fortran)
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' is in Fortran order; save it with "
                         "np.ascontiguousarray", r->path, m->array);
    a->ndim = h->ndim;
    for (int i = 0; i < h->ndim; i++)
        a->shape[i] = h->shape[i] > INT64_MAX ? -1 : (int64_t)h->shape[i];
    a->numel = count_elements(a->ndim, a->shape, INT64_MAX / (int64_t)(a->itemsize | 1));
    uint64_t left = size >= m->pos ? size - m->pos : 0;
    char sh[160];
    vd_npy_shape_str(h, sh, sizeof sh);
    if (a->numel < 0 || (uint64_t)a->numel * a->itemsize != left)
        return vd_errorf(err, VD_ERR_INVALID, "%s: member %s.npy: offset %llu: shape (%s) of "
                         "'%s' does not match the member, which holds %llu bytes after its header",
                         r->path, m->array, (unsigned long long)m->pos, sh, h->descr,
                         (unsigned long long)left);
    a->nbytes = (size_t)left;
    return VD_OK;
}

/* Reading one byte past the end makes libzip check the member's CRC. */
static vd_status check_end(const vd_npz *r, member *m, vd_err *err) {
    uint8_t extra;
    zip_int64_t got = zip_fread(m->f, &extra, 1);
    if (got == 0) return VD_OK;
    return vd_errorf(err, VD_ERR_INVALID, "%s: member %s.npy: offset %llu: %s", r->path, m->array,
                     (unsigned long long)m->pos,
                     got < 0 ? zip_file_strerror(m->f) : "data beyond the stated size");
}

static vd_status load(vd_npz *r, entry *e, vd_err *err) {
    char member_name[220];
    snprintf(member_name, sizeof member_name, "%s.npy", e->name);
    zip_stat_t st;
    vd_status s = vd_npy_stat_member(r->za, e->index, r->len, r->path, member_name, &st, err);
    if (s != VD_OK) return s;
    member m = {zip_fopen_index(r->za, e->index, 0), r->path, e->name, 0}; /* file, array */
    if (!m.f)
        return vd_errorf(err, VD_ERR_INVALID, "%s: cannot open member %s: %s", r->path,
                         member_name, zip_strerror(r->za));
    vd_npy_header h;
    s = vd_npy_read_header(vd_npy_zip_read, &m, r->path, member_name, &h, err);
    if (s == VD_OK) s = describe(r, &m, &h, st.size, &e->a, err);
    if (s == VD_OK && !(e->data = malloc(e->a.nbytes ? e->a.nbytes : 1)))
        s = vd_errorf(err, VD_ERR_NOMEM, "%s: array '%s': out of memory for %zu bytes", r->path,
                      e->name, e->a.nbytes);
    if (s == VD_OK) s = vd_npy_zip_read(&m, e->data, e->a.nbytes, err);
    if (s == VD_OK) s = check_end(r, &m, err);
    zip_fclose(m.f);
    if (s != VD_OK) {
        free(e->data);
        e->data = NULL;
        return s;
    }
    e->a.name = e->name, e->a.file = r->path, e->a.data = e->data, e->loaded = 1;
    return VD_OK;
}

static vd_status list_members(vd_npz *r, vd_err *err) {
    zip_int64_t n = zip_get_num_entries(r->za, 0);
    if (n < 0 || n > INT32_MAX)
        return vd_errorf(err, VD_ERR_INVALID, "%s: bad zip directory", r->path);
    r->e = calloc((size_t)n + 1, sizeof *r->e);
    if (!r->e) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", r->path);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *mn = zip_get_name(r->za, (zip_uint64_t)i, 0);
        if (!mn) return vd_errorf(err, VD_ERR_INVALID, "%s: member %lld has no name", r->path,
                                  (long long)i);
        size_t l = strlen(mn);
        entry *e = &r->e[r->n++];
        e->index = (zip_uint64_t)i;
        if (!(e->name = strdup(mn))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        if (l > 4 && !strcmp(mn + l - 4, ".npy")) e->name[l - 4] = 0;
    }
    return VD_OK;
}

vd_status vd_npz_open(vd_npz **out, const char *path, vd_err *err) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return vd_errorf(err, VD_ERR_IO, "%s: not a regular file", path);
    vd_npz *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    }
    r->len = (uint64_t)sb.st_size;
    int zerr = 0;
    r->za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    vd_status s = VD_OK;
    if (!r->za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        s = vd_npy_zip_failed(&ze, path, err);
    }
    if (s == VD_OK) s = list_members(r, err);
    if (s != VD_OK) {
        vd_npz_close(r);
        return s;
    }
    *out = r;
    return VD_OK;
}

void vd_npz_close(vd_npz *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->e[i].name);
        free(r->e[i].data);
    }
    free(r->e);
    if (r->za) zip_discard(r->za);
    free(r->path);
    free(r);
}

int vd_npz_count(const vd_npz *r) { return r->n; }

const char *vd_npz_name(const vd_npz *r, int i) {
    assert(i >= 0 && i < r->n);
    return r->e[i].name;
}

static vd_status absent(const vd_npz *r, const char *name, vd_err *err) {
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < r->n && used < sizeof list - 1; i++) {
        int k = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", r->e[i].name);
        used += k > 0 ? (size_t)k : 0;
    }
    return vd_errorf(err, VD_ERR_INVALID, "%s: no array '%s' (member %s.npy); its arrays (%d): %s",
                     r->path, name, name, r->n, r->n ? list : "none");
}

vd_status vd_npz_find(vd_npz *r, const char *name, const vd_npz_array **out, vd_err *err) {
    *out = NULL;
    for (int i = 0; i < r->n; i++) {
        entry *e = &r->e[i];
        if (strcmp(e->name, name)) continue;
        vd_status s = e->loaded ? VD_OK : load(r, e, err);
        if (s == VD_OK) *out = &e->a;
        return s;
    }
    return absent(r, name, err);
}

vd_status vd_npz_get(vd_npz *r, const char *name, const char *dtype, int ndim,
                     const vd_npz_array **out, vd_err *err) {
    const vd_npz_array *a;
    vd_status s = vd_npz_find(r, name, &a, err);
    if (s != VD_OK) return *out = NULL, s;
    if (strcmp(a->dtype, dtype))
        return *out = NULL, vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' has dtype '%s', "
                                      "expected '%s'", r->path, name, a->dtype, dtype);
    if (ndim >= 0 && a->ndim != ndim)
        return *out = NULL, vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' has %d dimensions, "
                                      "expected %d", r->path, name, a->ndim, ndim);
    *out = a;
    return VD_OK;
}

static float element_f32(const vd_npz_array *a, int64_t i) {
    const uint8_t *p = (const uint8_t *)a->data + (size_t)i * a->itemsize;
    switch (a->dtype[0] * 256 + a->dtype[1]) {
    case 'f' * 256 + '4': return ((const float *)a->data)[i];
    case 'f' * 256 + '8': return (float)((const double *)a->data)[i];
    case 'i' * 256 + '4': return (float)((const int32_t *)a->data)[i];
    case 'i' * 256 + '8': return (float)((const int64_t *)a->data)[i];
    default: return (float)*p; /* u1, b1 */
    }
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && used < cap; i++) {
        int k = snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
        used += k > 0 ? (size_t)k : 0;
    }
}

vd_status vd_npz_read_f32(vd_npz *r, const char *name, int ndim, const int64_t *shape,
                          int64_t numel, float *dst, vd_err *err) {
    const vd_npz_array *a;
    vd_status s = vd_npz_find(r, name, &a, err);
    if (s != VD_OK) return s;
    if (!strcmp(a->dtype, "U"))
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' holds strings, expected numbers",
                         r->path, name);
    int same = a->numel == numel && (!shape || a->ndim == ndim);
    for (int i = 0; same && shape && i < ndim; i++) same = a->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        shape_text(a->ndim, a->shape, got, sizeof got);
        if (shape) shape_text(ndim, shape, want, sizeof want);
        else snprintf(want, sizeof want, "%lld elements", (long long)numel);
        return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s' has shape (%s), expected (%s)",
                         r->path, name, got, want);
    }
    for (int64_t i = 0; i < numel; i++) dst[i] = element_f32(a, i);
    return VD_OK;
}

static size_t utf8_encode(uint32_t c, char *o) {
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), 2;
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | (c >> 6 & 0x3f));
        return o[2] = (char)(0x80 | (c & 0x3f)), 3;
    }
    o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | (c >> 12 & 0x3f));
    o[2] = (char)(0x80 | (c >> 6 & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

vd_status vd_npz_string(const vd_npz_array *a, int64_t i, char *buf, size_t cap, vd_err *err) {
    assert(strcmp(a->dtype, "U") == 0 && i >= 0 && i < a->numel && cap > 0);
    size_t width = a->itemsize / 4, used = 0;
    const uint8_t *p = (const uint8_t *)a->data + (size_t)i * a->itemsize;
    while (width > 0 && !memcmp(p + 4 * (width - 1), "\0\0\0\0", 4)) width--;
    for (size_t k = 0; k < width; k++) {
        uint32_t c = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 |
                     (uint32_t)p[4 * k + 2] << 16 | (uint32_t)p[4 * k + 3] << 24;
        if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
            return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': element %lld: character %zu "
                             "is not a Unicode scalar (U+%04X)", a->file, a->name, (long long)i, k, c);
        char enc[4];
        size_t n = utf8_encode(c, enc);
        if (used + n >= cap)
            return vd_errorf(err, VD_ERR_INVALID, "%s: array '%s': element %lld is longer than "
                             "%zu bytes", a->file, a->name, (long long)i, cap - 1);
        memcpy(buf + used, enc, n), used += n;
    }
    buf[used] = 0;
    return VD_OK;
}
