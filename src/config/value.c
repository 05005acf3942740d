/* Evaluated .cfg values: freeing, deep copies and Python-style printing (used for messages
 * and for the canonical config text, which must read back to the same values). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

void vd_sb_fixed(vd_sb *sb, char *buf, size_t cap) {
    *sb = (vd_sb){.buf = buf, .cap = cap, .fixed = true};
    if (cap) buf[0] = '\0';
}

void vd_sb_grow(vd_sb *sb) { *sb = (vd_sb){0}; }

void vd_sb_free(vd_sb *sb) {
    if (!sb->fixed) free(sb->buf);
    *sb = (vd_sb){0};
}

/* Make room for n more bytes plus the NUL; false when that is impossible. */
static bool sb_reserve(vd_sb *sb, size_t n) {
    if (sb->failed) return false;
    if (sb->len + n < sb->cap) return true;
    if (sb->fixed) {
        sb->failed = true;
        return false;
    }
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap <= sb->len + n) cap *= 2;
    char *b = realloc(sb->buf, cap);
    if (!b) {
        sb->failed = true;
        return false;
    }
    sb->buf = b;
    sb->cap = cap;
    return true;
}

void vd_sb_puts(vd_sb *sb, const char *s) {
    size_t n = strlen(s);
    if (!sb_reserve(sb, n)) {
        /* a fixed buffer keeps what fits, so a truncated message is still useful */
        if (sb->fixed && sb->cap > sb->len + 1) {
            size_t k = sb->cap - sb->len - 1;
            memcpy(sb->buf + sb->len, s, k);
            sb->len += k;
            sb->buf[sb->len] = '\0';
        }
        return;
    }
    memcpy(sb->buf + sb->len, s, n + 1);
    sb->len += n;
}

void vd_sb_putc(vd_sb *sb, char c) {
    char s[2] = {c, '\0'};
    vd_sb_puts(sb, s);
}

void vd_sb_printf(vd_sb *sb, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        vd_sb_puts(sb, small);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        sb->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    vd_sb_puts(sb, big);
    free(big);
}

void vd_float_repr(double f, char buf[40]) {
    /* the shortest of %.15g..%.17g that reads back exactly: "0.1", not "0.10000000000000001" */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, f);
        if (strtod(buf, NULL) == f) break;
    }
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0"); /* 'n': inf and nan stay as they are */
}

void vd_str_repr(vd_sb *sb, const char *s) {
    vd_sb_putc(sb, '\'');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '\'': vd_sb_puts(sb, "\\'"); break;
        case '\\': vd_sb_puts(sb, "\\\\"); break;
        case '\n': vd_sb_puts(sb, "\\n"); break;
        case '\t': vd_sb_puts(sb, "\\t"); break;
        case '\r': vd_sb_puts(sb, "\\r"); break;
        default:
            if (*c < 0x20 || *c == 0x7f)
                vd_sb_printf(sb, "\\x%02x", *c);
            else
                vd_sb_putc(sb, (char)*c);
        }
    }
    vd_sb_putc(sb, '\'');
}

void vd_value_repr(vd_sb *sb, const vd_value *v) {
    char num[40];
    switch (v->kind) {
    case VD_VAL_NONE: vd_sb_puts(sb, "None"); return;
    case VD_VAL_BOOL: vd_sb_puts(sb, v->b ? "True" : "False"); return;
    case VD_VAL_INT: vd_sb_printf(sb, "%lld", (long long)v->i); return;
    case VD_VAL_FLOAT:
        vd_float_repr(v->f, num);
        vd_sb_puts(sb, num);
        return;
    case VD_VAL_STR: vd_str_repr(sb, v->s); return;
    case VD_VAL_LIST:
    case VD_VAL_TUPLE: break;
    }
    bool list = v->kind == VD_VAL_LIST;
    vd_sb_putc(sb, list ? '[' : '(');
    for (size_t i = 0; i < v->n && !(sb->fixed && sb->failed); i++) {
        if (i) vd_sb_puts(sb, ", ");
        vd_value_repr(sb, &v->items[i]);
    }
    if (!list && v->n == 1) vd_sb_putc(sb, ',');
    vd_sb_putc(sb, list ? ']' : ')');
}

const char *vd_value_brief(const vd_value *v, char *buf, size_t cap) {
    vd_sb sb;
    vd_sb_fixed(&sb, buf, cap);
    if (v->kind != VD_VAL_NONE && v->kind != VD_VAL_BOOL) {
        vd_sb_puts(&sb, vd_value_kind_str(v->kind));
        vd_sb_putc(&sb, ' ');
    }
    vd_value_repr(&sb, v);
    if (sb.failed && cap > 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

void vd_value_free(vd_value *v) {
    if (!v) return;
    free(v->s);
    for (size_t i = 0; i < v->n; i++) vd_value_free(&v->items[i]);
    free(v->items);
    *v = (vd_value){0};
}

vd_status vd_value_copy(vd_value *dst, const vd_value *src) {
    *dst = *src;
    dst->s = NULL;
    dst->items = NULL;
    dst->n = 0;
    if (src->s && !(dst->s = strdup(src->s))) return VD_ERR_NOMEM;
    if (src->n) {
        dst->items = calloc(src->n, sizeof *dst->items);
        if (!dst->items) return VD_ERR_NOMEM;
        dst->n = src->n;
        for (size_t i = 0; i < src->n; i++) {
            vd_status st = vd_value_copy(&dst->items[i], &src->items[i]);
            if (st) return st; /* the partial copy is freed by the caller's vd_value_free */
        }
    }
    return VD_OK;
}

void vd_value_print(FILE *f, const vd_value *v) {
    vd_sb sb;
    vd_sb_grow(&sb);
    vd_value_repr(&sb, v);
    if (sb.buf) fputs(sb.buf, f);
    vd_sb_free(&sb);
}

const char *vd_value_kind_str(vd_value_kind k) {
    switch (k) {
    case VD_VAL_NONE: return "None";
    case VD_VAL_BOOL: return "bool";
    case VD_VAL_INT: return "int";
    case VD_VAL_FLOAT: return "float";
    case VD_VAL_STR: return "string";
    case VD_VAL_LIST: return "list";
    case VD_VAL_TUPLE: return "tuple";
    }
    return "unknown";
}
