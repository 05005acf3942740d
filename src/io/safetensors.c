/* safetensors reader (mmap + full validation, so later code can trust every byte range) and
 * atomic writer. The JSON header is parsed and printed with cJSON. */
#include "vdvae/io.h"

#include <assert.h>
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

#define META_KEY "__metadata__"
/* JSON numbers are doubles: integers up to 2^53 are exact. */
#define JSON_INT_MAX 9007199254740992.0

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [VD_DTYPE_F64] = {"F64", 8},   [VD_DTYPE_F32] = {"F32", 4}, [VD_DTYPE_F16] = {"F16", 2},
    [VD_DTYPE_BF16] = {"BF16", 2}, [VD_DTYPE_I64] = {"I64", 8}, [VD_DTYPE_I32] = {"I32", 4},
    [VD_DTYPE_I16] = {"I16", 2},   [VD_DTYPE_I8] = {"I8", 1},   [VD_DTYPE_U64] = {"U64", 8},
    [VD_DTYPE_U32] = {"U32", 4},   [VD_DTYPE_U16] = {"U16", 2}, [VD_DTYPE_U8] = {"U8", 1},
    [VD_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

/* Defined by the format, but not read here. */
static const char *const dtypes_unsupported[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                                 "F6_E3M2", "F4", "C64"};

static bool dtype_valid(vd_dtype t) { return (int)t >= 0 && (int)t < N_DTYPES; }

size_t vd_dtype_size(vd_dtype t) { return dtype_valid(t) ? dtypes[t].size : 0; }

const char *vd_dtype_str(vd_dtype t) { return dtype_valid(t) ? dtypes[t].name : "?"; }

/* ---- reading ------------------------------------------------------------------------------ */

struct vd_st {
    char *path;
    const uint8_t *map;
    size_t size;
    uint64_t data_start; /* file offset of the data section: 8 + header length */
    cJSON *root;         /* names and metadata strings point into it */
    vd_st_tensor *t;     /* by name */
    int n;
    const cJSON *meta;   /* the __metadata__ object, or NULL */
};

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const vd_st_tensor *)a)->name, ((const vd_st_tensor *)b)->name);
}

/* By byte range, empty ranges first, for the coverage check. */
static int cmp_range(const void *a, const void *b) {
    const vd_st_tensor *x = *(const vd_st_tensor *const *)a, *y = *(const vd_st_tensor *const *)b;
    uint64_t xa = x->file_offset, ya = y->file_offset;
    if (xa != ya) return xa < ya ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= JSON_INT_MAX) || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static vd_status parse_dtype(const vd_st *st, const char *name, const cJSON *v, vd_dtype *out,
                             vd_err *err) {
    if (!cJSON_IsString(v))
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 8: tensor '%s': \"dtype\" missing or not a string", st->path,
                         name);
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(v->valuestring, dtypes[i].name)) {
            *out = (vd_dtype)i;
            return VD_OK;
        }
    for (size_t i = 0; i < sizeof dtypes_unsupported / sizeof *dtypes_unsupported; i++)
        if (!strcmp(v->valuestring, dtypes_unsupported[i]))
            return vd_errorf(err, VD_ERR_UNSUPPORTED,
                             "%s: offset 8: tensor '%s': dtype %s is not supported", st->path, name,
                             v->valuestring);
    return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: tensor '%s': unknown dtype \"%s\"",
                     st->path, name, v->valuestring);
}

static vd_status parse_shape(const vd_st *st, vd_st_tensor *t, const cJSON *v, vd_err *err) {
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0 || n > VD_ST_MAX_DIMS)
        return vd_errorf(
            err, VD_ERR_INVALID,
            "%s: offset 8: tensor '%s': \"shape\" must be an array of at most %d sizes", st->path,
            t->name, VD_ST_MAX_DIMS);
    t->ndim = n;
    t->numel = 1;
    int i = 0;
    for (const cJSON *d = v->child; d; d = d->next, i++) {
        uint64_t s;
        if (!json_uint(d, &s))
            return vd_errorf(err, VD_ERR_INVALID,
                             "%s: offset 8: tensor '%s': shape[%d] is not a size", st->path,
                             t->name, i);
        if (s && (uint64_t)t->numel > (uint64_t)INT64_MAX / 8 / s)
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: tensor '%s': shape overflows",
                             st->path, t->name);
        t->shape[i] = (int64_t)s;
        t->numel *= (int64_t)s;
    }
    return VD_OK;
}

static vd_status parse_offsets(const vd_st *st, vd_st_tensor *t, const cJSON *v, vd_err *err) {
    uint64_t b, e, data_size = st->size - st->data_start;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !json_uint(v->child, &b) ||
        !json_uint(v->child->next, &e) || b > e)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 8: tensor '%s': \"data_offsets\" must be [begin, end] with "
                         "begin <= end",
                         st->path, t->name);
    if (e > data_size)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %llu: tensor '%s': data_offsets [%llu, %llu] end beyond the "
                         "%llu-byte data section (file truncated?)",
                         st->path, (unsigned long long)(st->data_start + b), t->name,
                         (unsigned long long)b, (unsigned long long)e,
                         (unsigned long long)data_size);
    t->nbytes = (size_t)(e - b);
    t->file_offset = st->data_start + b;
    t->data = st->map + t->file_offset;
    if ((uint64_t)t->numel * vd_dtype_size(t->dtype) != e - b)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %llu: tensor '%s': %lld %s elements need %llu bytes, "
                         "data_offsets give %llu",
                         st->path, (unsigned long long)t->file_offset, t->name, (long long)t->numel,
                         vd_dtype_str(t->dtype),
                         (unsigned long long)t->numel * vd_dtype_size(t->dtype),
                         (unsigned long long)(e - b));
    return VD_OK;
}

static vd_status parse_tensor(const vd_st *st, const cJSON *item, vd_st_tensor *t, vd_err *err) {
    t->name = item->string;
    if (!cJSON_IsObject(item))
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: tensor '%s': entry is not an object",
                         st->path, t->name);
    vd_status s =
        parse_dtype(st, t->name, cJSON_GetObjectItemCaseSensitive(item, "dtype"), &t->dtype, err);
    if (!s) s = parse_shape(st, t, cJSON_GetObjectItemCaseSensitive(item, "shape"), err);
    if (!s) s = parse_offsets(st, t, cJSON_GetObjectItemCaseSensitive(item, "data_offsets"), err);
    return s;
}

static vd_status check_meta(const vd_st *st, const cJSON *meta, vd_err *err) {
    if (!cJSON_IsObject(meta))
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: \"%s\" is not an object", st->path,
                         META_KEY);
    for (const cJSON *m = meta->child; m; m = m->next)
        if (!cJSON_IsString(m))
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: %s entry '%s' is not a string",
                             st->path, META_KEY, m->string);
    return VD_OK;
}

/* The byte ranges, in order, must tile the data section exactly: no overlap, no hole. */
static vd_status check_coverage(vd_st *st, vd_err *err) {
    const vd_st_tensor **by = malloc(sizeof *by * (size_t)(st->n ? st->n : 1));
    if (!by) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", st->path);
    for (int i = 0; i < st->n; i++)
        by[i] = &st->t[i];
    qsort(by, (size_t)st->n, sizeof *by, cmp_range);
    uint64_t at = st->data_start;
    vd_status s = VD_OK;
    for (int i = 0; i < st->n && !s; i++) {
        if (by[i]->file_offset < at)
            s = vd_errorf(err, VD_ERR_INVALID,
                          "%s: offset %llu: tensor '%s' overlaps tensor '%s' (which ends at %llu)",
                          st->path, (unsigned long long)by[i]->file_offset, by[i]->name,
                          by[i - 1]->name, (unsigned long long)at);
        else if (by[i]->file_offset > at)
            s = vd_errorf(err, VD_ERR_INVALID, "%s: offset %llu: %llu bytes belong to no tensor",
                          st->path, (unsigned long long)at,
                          (unsigned long long)(by[i]->file_offset - at));
        at = by[i]->file_offset + by[i]->nbytes;
    }
    if (!s && at != st->size)
        s = vd_errorf(err, VD_ERR_INVALID,
                      "%s: offset %llu: %llu trailing bytes belong to no tensor", st->path,
                      (unsigned long long)at, (unsigned long long)(st->size - at));
    free(by);
    return s;
}

static vd_status parse_entries(vd_st *st, vd_err *err) {
    int n = 0;
    for (const cJSON *c = st->root->child; c; c = c->next)
        n += strcmp(c->string, META_KEY) != 0;
    st->t = calloc((size_t)(n ? n : 1), sizeof *st->t);
    if (!st->t) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", st->path);
    for (const cJSON *c = st->root->child; c; c = c->next) {
        vd_status s;
        if (!strcmp(c->string, META_KEY)) {
            if (st->meta)
                return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: duplicate \"%s\"", st->path,
                                 META_KEY);
            st->meta = c;
            s = check_meta(st, c, err);
        } else {
            s = parse_tensor(st, c, &st->t[st->n++], err);
        }
        if (s) return s;
    }
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_name);
    for (int i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name))
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: tensor '%s' appears twice",
                             st->path, st->t[i].name);
    return check_coverage(st, err);
}

static vd_status parse_header(vd_st *st, vd_err *err) {
    if (st->size < 8)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 0: truncated: %zu bytes, the header length alone needs 8",
                         st->path, st->size);
    uint64_t len;
    memcpy(&len, st->map, 8);
    if (len > st->size - 8)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 0: header length %llu reaches beyond the end of the file "
                         "(%zu bytes): truncated or not a safetensors file",
                         st->path, (unsigned long long)len, st->size);
    if (len > VD_ST_MAX_HEADER || len < 2 || st->map[8] != '{')
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 8: not a safetensors header (length %llu, must be a JSON "
                         "object of at most %u bytes)",
                         st->path, (unsigned long long)len, VD_ST_MAX_HEADER);
    st->data_start = 8 + len;
    const char *h = (const char *)st->map + 8, *end = NULL;
    st->root = cJSON_ParseWithLengthOpts(h, (size_t)len, &end, 0);
    if (!st->root)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset %llu: bad JSON in the header", st->path,
                         (unsigned long long)(8 + (end ? end - h : 0)));
    for (; end < h + len; end++) /* the format pads the header with spaces */
        if (!strchr(" \t\r\n", *end) || !*end)
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset %llu: bytes after the JSON header",
                             st->path, (unsigned long long)(8 + (end - h)));
    if (!cJSON_IsObject(st->root))
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: header is not a JSON object",
                         st->path);
    return parse_entries(st, err);
}

static vd_status map_file(vd_st *st, vd_err *err) {
    int fd = open(st->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", st->path, strerror(errno));
    struct stat sb;
    vd_status s = VD_OK;
    if (fstat(fd, &sb) != 0) {
        s = vd_errorf(err, VD_ERR_IO, "%s: cannot stat: %s", st->path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        s = vd_errorf(err, VD_ERR_INVALID, "%s: not a regular file", st->path);
    } else if (sb.st_size > 0) {
        st->size = (size_t)sb.st_size;
        void *p = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            s = vd_errorf(err, VD_ERR_IO, "%s: cannot map %zu bytes: %s", st->path, st->size,
                          strerror(errno));
        else
            st->map = p;
    }
    close(fd);
    return s;
}

vd_status vd_st_open(const char *path, vd_st **out, vd_err *err) {
    *out = NULL;
    vd_st *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    }
    vd_status s = map_file(st, err);
    if (!s) s = parse_header(st, err);
    if (s) {
        vd_st_close(st);
        return s;
    }
    *out = st;
    return VD_OK;
}

void vd_st_close(vd_st *st) {
    if (!st) return;
    if (st->map) munmap((void *)st->map, st->size);
    cJSON_Delete(st->root);
    free(st->t);
    free(st->path);
    free(st);
}

int vd_st_count(const vd_st *st) { return st->n; }

const vd_st_tensor *vd_st_at(const vd_st *st, int i) {
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const vd_st_tensor *vd_st_find(const vd_st *st, const char *name) {
    vd_st_tensor key = {.name = name};
    return bsearch(&key, st->t, (size_t)st->n, sizeof *st->t, cmp_name);
}

const char *vd_st_meta(const vd_st *st, const char *key) {
    const cJSON *v = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- conversion to float32 ---------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13; /* inf, nan */
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else {
        float f = ldexpf((float)man, -24); /* zero and subnormals */
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Element i of src (dtype t, possibly unaligned) as a float. */
static float elem_to_float(const uint8_t *src, vd_dtype t, int64_t i) {
    const uint8_t *p = src + (size_t)i * vd_dtype_size(t);
    union {
        double f64;
        float f32;
        int64_t i64;
        int32_t i32;
        int16_t i16;
        int8_t i8;
        uint64_t u64;
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
    } v;
    memcpy(&v, p, vd_dtype_size(t));
    switch (t) {
    case VD_DTYPE_F64:
        return (float)v.f64;
    case VD_DTYPE_F32:
        return v.f32;
    case VD_DTYPE_F16:
        return half_to_float(v.u16);
    case VD_DTYPE_BF16: {
        uint32_t bits = (uint32_t)v.u16 << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case VD_DTYPE_I64:
        return (float)v.i64;
    case VD_DTYPE_I32:
        return (float)v.i32;
    case VD_DTYPE_I16:
        return (float)v.i16;
    case VD_DTYPE_I8:
        return (float)v.i8;
    case VD_DTYPE_U64:
        return (float)v.u64;
    case VD_DTYPE_U32:
        return (float)v.u32;
    case VD_DTYPE_U16:
        return (float)v.u16;
    case VD_DTYPE_U8:
        return (float)v.u8;
    case VD_DTYPE_BOOL:
        return v.u8 ? 1.0f : 0.0f;
    }
    return NAN;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

vd_status vd_st_read_f32(const vd_st *st, const char *name, int ndim, const int64_t *shape,
                         int64_t numel, float *dst, vd_err *err) {
    if (shape) {
        int64_t n = 1;
        for (int i = 0; i < ndim; i++)
            n *= shape[i];
        assert(n == numel && "vd_st_read_f32: numel must be the product of shape");
    }
    const vd_st_tensor *t = vd_st_find(st, name);
    if (!t) return vd_errorf(err, VD_ERR_INVALID, "%s: no tensor '%s'", st->path, name);
    bool same = t->numel == numel;
    if (same && shape) {
        same = t->ndim == ndim;
        for (int i = 0; same && i < ndim; i++)
            same = t->shape[i] == shape[i];
    }
    if (!same) {
        char want[192], have[192];
        if (shape)
            shape_str(want, sizeof want, ndim, shape);
        else
            snprintf(want, sizeof want, "%lld elements", (long long)numel);
        shape_str(have, sizeof have, t->ndim, t->shape);
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %llu: tensor '%s' has shape %s, expected %s", st->path,
                         (unsigned long long)t->file_offset, name, have, want);
    }
    if (t->dtype == VD_DTYPE_F32) {
        memcpy(dst, t->data, t->nbytes);
        return VD_OK;
    }
    for (int64_t i = 0; i < numel; i++)
        dst[i] = elem_to_float(t->data, t->dtype, i);
    return VD_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct st_entry {
    char *name;
    vd_dtype dtype;
    int ndim;
    int64_t shape[VD_ST_MAX_DIMS];
    const void *data;
    uint64_t nbytes, begin;
} st_entry;

struct vd_st_writer {
    st_entry *e;
    int n, cap;
    char **mkey, **mval;
    int nm, mcap;
};

vd_status vd_st_writer_init(vd_st_writer **out, vd_err *err) {
    *out = calloc(1, sizeof **out);
    return *out ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
}

void vd_st_writer_free(vd_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++)
        free(w->e[i].name);
    for (int i = 0; i < w->nm; i++)
        free(w->mkey[i]), free(w->mval[i]);
    free(w->e);
    free(w->mkey);
    free(w->mval);
    free(w);
}

static bool grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    *p = q, *cap = nc;
    return true;
}

vd_status vd_st_writer_add(vd_st_writer *w, const char *name, vd_dtype dtype, int ndim,
                           const int64_t *shape, const void *data, vd_err *err) {
    if (!name || !*name || !strcmp(name, META_KEY))
        return vd_errorf(err, VD_ERR_INVALID, "safetensors writer: bad tensor name '%s'",
                         name ? name : "(null)");
    if (!dtype_valid(dtype) || ndim < 0 || ndim > VD_ST_MAX_DIMS)
        return vd_errorf(err, VD_ERR_INVALID,
                         "safetensors writer: tensor '%s': bad dtype or ndim %d", name, ndim);
    st_entry e = {.dtype = dtype, .ndim = ndim, .data = data, .nbytes = vd_dtype_size(dtype)};
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 ||
            (shape[i] && e.nbytes > (uint64_t)(JSON_INT_MAX / 2) / (uint64_t)shape[i]))
            return vd_errorf(err, VD_ERR_INVALID,
                             "safetensors writer: tensor '%s': bad shape[%d] = %lld", name, i,
                             (long long)shape[i]);
        e.shape[i] = shape[i];
        e.nbytes *= (uint64_t)shape[i];
    }
    if (!data && e.nbytes)
        return vd_errorf(err, VD_ERR_INVALID, "safetensors writer: tensor '%s' has no data", name);
    if (!grow((void **)&w->e, &w->cap, w->n + 1, sizeof *w->e) || !(e.name = strdup(name)))
        return vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
    w->e[w->n++] = e;
    return VD_OK;
}

vd_status vd_st_writer_meta(vd_st_writer *w, const char *key, const char *value, vd_err *err) {
    for (int i = 0; i < w->nm; i++)
        if (!strcmp(w->mkey[i], key)) {
            char *v = strdup(value);
            if (!v) return vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
            free(w->mval[i]);
            w->mval[i] = v;
            return VD_OK;
        }
    int cap = w->mcap;
    if (!grow((void **)&w->mkey, &cap, w->nm + 1, sizeof *w->mkey) ||
        !grow((void **)&w->mval, &w->mcap, w->nm + 1, sizeof *w->mval))
        return vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k), free(v);
        return vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->mkey[w->nm] = k, w->mval[w->nm++] = v;
    return VD_OK;
}

/* Larger elements first keeps every tensor aligned to its element size. */
static int cmp_layout(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    size_t sx = vd_dtype_size(x->dtype), sy = vd_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static cJSON *tensor_json(const st_entry *e) {
    cJSON *o = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(o, "shape");
    cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
    bool ok = cJSON_AddStringToObject(o, "dtype", vd_dtype_str(e->dtype)) && shape && offs;
    for (int i = 0; ok && i < e->ndim; i++)
        ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[i]));
    ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)e->begin)) &&
         cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(e->begin + e->nbytes)));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The header text, padded with spaces to a multiple of 8; lays the tensors out on the way. */
static char *header_text(vd_st_writer *w, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && w->nm) {
        cJSON *m = cJSON_AddObjectToObject(root, META_KEY);
        ok = m != NULL;
        for (int i = 0; ok && i < w->nm; i++)
            ok = cJSON_AddStringToObject(m, w->mkey[i], w->mval[i]);
    }
    uint64_t at = 0;
    for (int i = 0; ok && i < w->n; i++) {
        w->e[i].begin = at;
        at += w->e[i].nbytes;
        cJSON *t = tensor_json(&w->e[i]);
        ok = t && cJSON_AddItemToObject(root, w->e[i].name, t);
        if (t && !ok) cJSON_Delete(t);
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    *len = padded;
    return out;
}

static bool write_all(int fd, const void *buf, uint64_t n) {
    const uint8_t *p = buf;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k, n -= (uint64_t)k;
    }
    return true;
}

static vd_status write_body(vd_st_writer *w, int fd, const char *hdr, size_t hlen, const char *tmp,
                            vd_err *err) {
    uint64_t len = hlen; /* little-endian host */
    bool ok = write_all(fd, &len, 8) && write_all(fd, hdr, hlen);
    for (int i = 0; ok && i < w->n; i++)
        ok = write_all(fd, w->e[i].data, w->e[i].nbytes);
    if (!ok) return vd_errorf(err, VD_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return VD_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static vd_status check_unique(const vd_st_writer *w, vd_err *err) {
    char **names = malloc(sizeof *names * (size_t)(w->n ? w->n : 1));
    if (!names) return vd_errorf(err, VD_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->n; i++)
        names[i] = w->e[i].name;
    qsort(names, (size_t)w->n, sizeof *names, cmp_str);
    vd_status s = VD_OK;
    for (int i = 1; i < w->n && !s; i++)
        if (!strcmp(names[i], names[i - 1]))
            s = vd_errorf(err, VD_ERR_INVALID, "safetensors writer: tensor '%s' added twice",
                          names[i]);
    free(names);
    return s;
}

vd_status vd_st_writer_finish(vd_st_writer *w, const char *path, vd_err *err) {
    qsort(w->e, (size_t)w->n, sizeof *w->e, cmp_layout);
    vd_status s = check_unique(w, err);
    if (s) return s;
    size_t hlen = 0;
    char *hdr = header_text(w, &hlen);
    if (!hdr)
        return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot build the header: out of memory", path);
    vd_atomic a;
    if ((s = vd_atomic_begin(&a, path, err))) {
        free(hdr);
        return s;
    }
    /* straight to the descriptor: nothing goes through the stream's buffer */
    s = write_body(w, fileno(a.f), hdr, hlen, a.tmp, err);
    free(hdr);
    if (s) {
        vd_atomic_abort(&a);
        return s;
    }
    return vd_atomic_commit(&a, true, err);
}
