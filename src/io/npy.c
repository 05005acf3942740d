/* .npy header reading and writing, shared by every .npz reader and writer: numpy's format
 * (magic, version, a Python-dict literal), parsed strictly so a bad file fails at its offset. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"

#define DEFLATE_MAX_RATIO 1032 /* deflate's best case: a longer stated size is a lie */

typedef struct cursor {
    const char *start, *p, *end;
    const char *file, *member; /* for messages */
    size_t base;               /* offset in the member of the dict's first byte */
} cursor;

static vd_status bad(cursor *c, vd_err *err, const char *what) {
    return vd_errorf(err, VD_ERR_INVALID, "%s: member %s: offset %zu: bad .npy header: %s",
                     c->file, c->member, c->base + (size_t)(c->p - c->start), what);
}

static void skip_ws(cursor *c) {
    while (c->p < c->end && isspace((unsigned char)*c->p)) c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) return c->p++, 1;
    return 0;
}

static int at(cursor *c, char ch) {
    skip_ws(c);
    return c->p < c->end && *c->p == ch;
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

static vd_status dimension(cursor *c, uint64_t *v, vd_err *err) {
    skip_ws(c);
    if (c->p >= c->end || !isdigit((unsigned char)*c->p))
        return bad(c, err, "'shape' holds a non-integer");
    *v = 0;
    while (c->p < c->end && isdigit((unsigned char)*c->p)) {
        if (*v > (UINT64_MAX - 9) / 10) return bad(c, err, "dimension too large");
        *v = *v * 10 + (uint64_t)(*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') c->p++; /* written by Python 2 */
    return VD_OK;
}

static vd_status shape(cursor *c, vd_npy_header *h, vd_err *err) {
    if (!eat(c, '(')) return bad(c, err, "'shape' is not a tuple");
    h->ndim = 0;
    while (!eat(c, ')')) {
        if (h->ndim == VD_NPY_MAX_DIMS) return bad(c, err, "too many dimensions");
        vd_status s = dimension(c, &h->shape[h->ndim++], err);
        if (s != VD_OK) return s;
        if (!eat(c, ',') && !at(c, ')')) return bad(c, err, "expected ',' or ')' in 'shape'");
    }
    return VD_OK;
}

typedef struct seen {
    int descr, fortran, shape;
} seen;

static vd_status entry(cursor *c, vd_npy_header *h, seen *k, vd_err *err) {
    char key[32];
    vd_status s = string(c, key, sizeof key, err);
    if (s != VD_OK) return s;
    if (!eat(c, ':')) return bad(c, err, "expected ':'");
    if (strcmp(key, "descr") == 0 && !k->descr) {
        k->descr = 1;
        return string(c, h->descr, sizeof h->descr, err);
    }
    if (strcmp(key, "fortran_order") == 0 && !k->fortran) {
        k->fortran = 1;
        if (word(c, "True")) return h->fortran = 1, VD_OK;
        if (word(c, "False")) return h->fortran = 0, VD_OK;
        return bad(c, err, "'fortran_order' is not True or False");
    }
    if (strcmp(key, "shape") == 0 && !k->shape) return k->shape = 1, shape(c, h, err);
    return bad(c, err, "unknown or repeated key (expected 'descr', 'fortran_order', 'shape')");
}

static vd_status parse_dict(cursor *c, vd_npy_header *h, vd_err *err) {
    seen k = {0, 0, 0};
    if (!eat(c, '{')) return bad(c, err, "expected '{'");
    while (!eat(c, '}')) {
        vd_status s = entry(c, h, &k, err);
        if (s != VD_OK) return s;
        if (!eat(c, ',') && !at(c, '}')) return bad(c, err, "expected ',' or '}'");
    }
    if (!k.descr || !k.fortran || !k.shape)
        return bad(c, err, "missing 'descr', 'fortran_order' or 'shape'");
    return VD_OK;
}

vd_status vd_npy_read_header(vd_npy_read_fn rd, void *ctx, const char *file, const char *member,
                             vd_npy_header *h, vd_err *err) {
    memset(h, 0, sizeof *h);
    uint8_t pre[12];
    vd_status s = rd(ctx, pre, 8, err);
    if (s != VD_OK) return s;
    if (memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 || pre[6] > 3)
        return vd_errorf(err, VD_ERR_INVALID, "%s: member %s: offset 0: not a .npy array (magic "
                         "\\x93NUMPY version 1-3 expected)", file, member);
    size_t lenbytes = pre[6] == 1 ? 2 : 4, hlen = 0;
    s = rd(ctx, pre + 8, lenbytes, err);
    if (s != VD_OK) return s;
    for (size_t i = 0; i < lenbytes; i++) hlen |= (size_t)pre[8 + i] << (8 * i);
    if (hlen > VD_NPY_MAX_HEADER)
        return vd_errorf(err, VD_ERR_INVALID, "%s: member %s: offset 8: header length %zu "
                         "exceeds %d bytes", file, member, hlen, VD_NPY_MAX_HEADER);
    char *text = malloc(hlen + 1);
    if (!text) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    cursor c = {text, text, text + hlen, file, member, 8 + lenbytes};
    s = rd(ctx, text, hlen, err);
    if (s == VD_OK) s = parse_dict(&c, h, err);
    free(text);
    h->data_offset = 8 + lenbytes + hlen;
    return s;
}

static size_t dict_text(const char *descr, int ndim, const int64_t *shape, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "%s), }", ndim == 1 ? "," : "");
    return n;
}

size_t vd_npy_format_header(const char *descr, int ndim, const int64_t *shape, char *buf,
                            size_t cap) {
    char dict[512]; /* at most 8 dimensions: always a version 1.0 (u16 length) header */
    size_t dl = dict_text(descr, ndim, shape, dict, sizeof dict);
    if (dl >= sizeof dict) return 0;
    size_t total = (10 + dl + 1 + 63) / 64 * 64, hlen = total - 10;
    if (total > cap) return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hlen & 0xff), buf[9] = (char)(hlen >> 8);
    memcpy(buf + 10, dict, dl);
    memset(buf + 10 + dl, ' ', hlen - dl - 1);
    buf[total - 1] = '\n';
    return total;
}

void vd_npy_shape_str(const vd_npy_header *h, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < h->ndim && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "",
                         (unsigned long long)h->shape[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (h->ndim == 1 && used + 2 < cap) strcat(buf, ",");
}

vd_status vd_npy_stat_member(zip_t *za, zip_uint64_t idx, uint64_t archive_len, const char *file,
                             const char *member, zip_stat_t *st, vd_err *err) {
    zip_stat_init(st);
    if (zip_stat_index(za, idx, 0, st) != 0)
        return vd_errorf(err, VD_ERR_INVALID, "%s: %s: %s", file, member, zip_strerror(za));
    uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st->valid & need) != need)
        return vd_errorf(err, VD_ERR_INVALID, "%s: %s: sizes missing in the zip directory", file,
                         member);
    uint64_t ratio = st->comp_method == ZIP_CM_STORE ? 1 : DEFLATE_MAX_RATIO;
    if (st->comp_size > archive_len || st->size / ratio > st->comp_size + 1024)
        return vd_errorf(err, VD_ERR_INVALID, "%s: %s: stated size %llu bytes (%llu "
                         "compressed) is impossible in a %llu-byte archive", file, member,
                         (unsigned long long)st->size, (unsigned long long)st->comp_size,
                         (unsigned long long)archive_len);
    return VD_OK;
}

vd_status vd_npy_zip_failed(zip_error_t *ze, const char *file, vd_err *err) {
    int code = zip_error_code_zip(ze);
    vd_status s = code == ZIP_ER_OPEN || code == ZIP_ER_READ || code == ZIP_ER_NOENT ||
                          code == ZIP_ER_MEMORY
                      ? VD_ERR_IO
                      : VD_ERR_INVALID;
    s = vd_errorf(err, s, "%s: cannot read as .npz (zip): %s", file, zip_error_strerror(ze));
    zip_error_fini(ze);
    return s;
}

vd_status vd_npy_zip_read(void *ctx, void *dst, size_t n, vd_err *err) {
    vd_npy_zip_member *m = ctx;
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(m->f, (char *)dst + got, n - got);
        if (r < 0)
            return vd_errorf(err, VD_ERR_INVALID, "%s: member %s.npy: offset %llu: %s", m->file,
                             m->array, (unsigned long long)(m->pos + got), zip_file_strerror(m->f));
        if (r == 0)
            return vd_errorf(err, VD_ERR_INVALID, "%s: member %s.npy: offset %llu: truncated: "
                             "%zu more bytes expected", m->file, m->array,
                             (unsigned long long)(m->pos + got), n - got);
        got += (size_t)r;
    }
    m->pos += n;
    return VD_OK;
}
