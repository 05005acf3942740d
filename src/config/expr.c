/* The Python-literal expression subset of .cfg values, with Python's precedence and semantics;
 * every allocation is charged to a budget so hostile input fails instead of exhausting memory. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

static vd_status expr(vd_parser *p, vd_value *out);
static vd_status unary(vd_parser *p, vd_value *out);

void vd_parser_init(vd_parser *p, const char *text, size_t len, const char *file, vd_err *err) {
    memset(p, 0, sizeof *p);
    p->s = text;
    p->len = len;
    p->line = 1;
    p->file = file;
    p->err = err;
    p->budget = VD_CFG_MAX_BYTES;
}

vd_pos vd_parser_here(const vd_parser *p) {
    return (vd_pos){p->line, (int)(p->pos - p->line_start) + 1};
}

vd_status vd_parser_fail(vd_parser *p, vd_pos at, const char *fmt, ...) {
    char msg[VD_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vd_errorf(p->err, VD_ERR_INVALID, "%s:%d:%d: %s", p->file, at.line, at.col, msg);
}

static int peek(const vd_parser *p, size_t ahead) {
    return p->pos + ahead < p->len ? (unsigned char)p->s[p->pos + ahead] : -1;
}

const char *vd_parser_what(const vd_parser *p, char buf[24]) {
    int c = peek(p, 0);
    if (c < 0) return "end of file";
    if (c == '\n' || c == '\r') return "end of line";
    if (c == '#') return "a comment";
    if (isprint(c))
        snprintf(buf, 24, "'%c'", c);
    else
        snprintf(buf, 24, "byte 0x%02x", (unsigned)c);
    return buf;
}

static void advance(vd_parser *p) {
    if (p->s[p->pos] == '\n') {
        p->line++;
        p->line_start = p->pos + 1;
    }
    p->pos++;
}

/* Spaces; inside brackets also newlines and comments, as in Python. */
static void skip(vd_parser *p) {
    for (;;) {
        int c = peek(p, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || (c == '\n' && p->nest > 0)) {
            advance(p);
        } else if (c == '#' && p->nest > 0) {
            while (peek(p, 0) >= 0 && peek(p, 0) != '\n') advance(p);
        } else {
            return;
        }
    }
}

static bool is_ident_start(int c) { return c == '_' || (c >= 0 && c < 128 && isalpha(c)); }
static bool is_ident(int c) { return c == '_' || (c >= 0 && c < 128 && isalnum(c)); }

/* Does the line holding p->pos start like "key =" or "[section]"? Then a bracket left open
 * on an earlier line swallowed it, and that is the error worth reporting. */
static bool line_starts_entry(const vd_parser *p) {
    size_t i = p->line_start;
    while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t')) i++;
    if (i >= p->len) return false;
    if (p->s[i] == '[') {
        size_t j = i + 1;
        while (j < p->len && is_ident((unsigned char)p->s[j])) j++;
        return j > i + 1 && j < p->len && p->s[j] == ']';
    }
    if (!is_ident_start((unsigned char)p->s[i])) return false;
    while (i < p->len && is_ident((unsigned char)p->s[i])) i++;
    while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t')) i++;
    return i < p->len && p->s[i] == '=' && (i + 1 >= p->len || p->s[i + 1] != '=');
}

static const char *bracket_name(char kind) { return kind == '[' ? "list" : "parenthesis"; }

/* The token at p->pos cannot continue the expression: say so, or name the bracket that was
 * never closed when the text ran out or reached the next entry. */
static vd_status unexpected(vd_parser *p, const char *expected) {
    bool later = p->nest > 0 && p->line > p->open_pos[0].line;
    if (p->nest > 0 && (peek(p, 0) < 0 || (later && line_starts_entry(p)))) {
        char k = p->open_kind[0];
        return vd_parser_fail(p, p->open_pos[0], "unterminated %s: '%c' is never closed",
                              bracket_name(k), k == '[' ? '[' : '(');
    }
    char buf[24];
    return vd_parser_fail(p, vd_parser_here(p), "expected %s, got %s", expected,
                          vd_parser_what(p, buf));
}

/* Charge n bytes of new values to the parse's budget. */
static vd_status charge(vd_parser *p, vd_pos at, size_t n) {
    if (n > p->budget) {
        p->budget = 0;
        return vd_parser_fail(p, at, "expression too large: its values exceed %zu MiB",
                              VD_CFG_MAX_BYTES >> 20);
    }
    p->budget -= n;
    return VD_OK;
}

static size_t value_bytes(const vd_value *v) {
    size_t n = sizeof *v + (v->s ? strlen(v->s) + 1 : 0);
    for (size_t i = 0; i < v->n; i++) n += value_bytes(&v->items[i]);
    return n;
}

static vd_status nomem(vd_parser *p) {
    return vd_errorf(p->err, VD_ERR_NOMEM, "%s: out of memory while reading the config", p->file);
}

/* ---- atoms --------------------------------------------------------------------------------- */

static vd_status number(vd_parser *p, vd_value *out) {
    vd_pos at = vd_parser_here(p);
    size_t start = p->pos;
    bool is_float = false;
    while (peek(p, 0) >= '0' && peek(p, 0) <= '9') advance(p);
    if (peek(p, 0) == '.') {
        is_float = true;
        advance(p);
        while (peek(p, 0) >= '0' && peek(p, 0) <= '9') advance(p);
    }
    if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
        size_t k = (peek(p, 1) == '+' || peek(p, 1) == '-') ? 2 : 1;
        if (!(peek(p, k) >= '0' && peek(p, k) <= '9'))
            return vd_parser_fail(p, at, "malformed number: exponent without digits");
        is_float = true;
        for (size_t i = 0; i < k; i++) advance(p);
        while (peek(p, 0) >= '0' && peek(p, 0) <= '9') advance(p);
    }
    size_t n = p->pos - start;
    char buf[512];
    if (n >= sizeof buf) return vd_parser_fail(p, at, "number too long (%zu characters)", n);
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    if (is_float) {
        double f = strtod(buf, NULL);
        if (!isfinite(f)) return vd_parser_fail(p, at, "float %s is out of range", buf);
        *out = (vd_value){.kind = VD_VAL_FLOAT, .f = f};
        return VD_OK;
    }
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, buf[i] - '0', &v))
            return vd_parser_fail(p, at, "integer %s is too large (the limit is 2**63 - 1)", buf);
    }
    *out = (vd_value){.kind = VD_VAL_INT, .i = v};
    return VD_OK;
}

/* One escape after a backslash inside a string; like Python, an unknown one keeps its
 * backslash. */
static vd_status escape(vd_parser *p, vd_sb *sb) {
    int e = peek(p, 0);
    if (e < 0 || e == '\n') return VD_OK; /* reported as an unterminated string */
    advance(p);
    switch (e) {
    case 'n': vd_sb_putc(sb, '\n'); return VD_OK;
    case 't': vd_sb_putc(sb, '\t'); return VD_OK;
    case 'r': vd_sb_putc(sb, '\r'); return VD_OK;
    case '\\': case '\'': case '"': vd_sb_putc(sb, (char)e); return VD_OK;
    case 'x': break;
    default:
        vd_sb_putc(sb, '\\');
        vd_sb_putc(sb, (char)e);
        return VD_OK;
    }
    int h1 = peek(p, 0), h2 = peek(p, 1);
    if (h1 < 0 || h2 < 0 || !isxdigit(h1) || !isxdigit(h2))
        return vd_parser_fail(p, vd_parser_here(p), "\\x needs two hex digits");
    char hex[3] = {(char)h1, (char)h2, '\0'};
    long byte = strtol(hex, NULL, 16);
    if (byte == 0) return vd_parser_fail(p, vd_parser_here(p), "NUL character in string");
    advance(p);
    advance(p);
    vd_sb_putc(sb, (char)byte);
    return VD_OK;
}

/* '...' or "..." on one line. */
static vd_status string(vd_parser *p, vd_value *out) {
    vd_pos at = vd_parser_here(p);
    char q = p->s[p->pos];
    advance(p);
    vd_sb sb;
    vd_sb_grow(&sb);
    vd_sb_puts(&sb, "");
    vd_status st = VD_OK;
    for (;;) {
        int c = peek(p, 0);
        if (c < 0 || c == '\n') {
            st = vd_parser_fail(p, at, "unterminated string: %c is never closed", q);
            break;
        }
        advance(p);
        if (c == q) break;
        if (c == '\\')
            st = escape(p, &sb);
        else
            vd_sb_putc(&sb, (char)c);
        if (st) break;
    }
    if (!st && sb.failed) st = nomem(p);
    if (!st) st = charge(p, at, sizeof *out + sb.len + 1);
    if (st) {
        vd_sb_free(&sb);
        return st;
    }
    *out = (vd_value){.kind = VD_VAL_STR, .s = sb.buf};
    return VD_OK;
}

static void open_bracket(vd_parser *p, vd_pos at, char kind) {
    p->open_pos[p->nest] = at;
    p->open_kind[p->nest] = kind;
    p->nest++;
}

/* Comma-separated expressions up to `close`; a trailing comma is allowed. */
static vd_status sequence(vd_parser *p, char close, vd_value *seq, bool *saw_comma) {
    *saw_comma = false;
    for (;;) {
        skip(p);
        if (peek(p, 0) == close) break;
        vd_value item;
        vd_status st = expr(p, &item);
        if (st) return st;
        if (seq->n >= VD_CFG_MAX_ITEMS) {
            vd_value_free(&item);
            return vd_parser_fail(p, vd_parser_here(p), "list has more than %d items",
                                  VD_CFG_MAX_ITEMS);
        }
        vd_value *grown = realloc(seq->items, (seq->n + 1) * sizeof *grown);
        if (!grown) {
            vd_value_free(&item);
            return nomem(p);
        }
        seq->items = grown;
        seq->items[seq->n++] = item;
        skip(p);
        if (peek(p, 0) == ',') {
            *saw_comma = true;
            advance(p);
            continue;
        }
        if (peek(p, 0) == close) break;
        return unexpected(p, close == ']' ? "',' or ']'" : "',' or ')'");
    }
    p->nest--;
    advance(p); /* the closing bracket */
    return VD_OK;
}

/* [a, b, ...], or (a, b, ...) / (a,) / () for tuples, or (a) for grouping. */
static vd_status bracketed(vd_parser *p, vd_value *out) {
    vd_pos at = vd_parser_here(p);
    char open = p->s[p->pos];
    advance(p);
    open_bracket(p, at, open);
    vd_status st = charge(p, at, sizeof *out);
    if (st) return st;
    vd_value seq = {.kind = open == '[' ? VD_VAL_LIST : VD_VAL_TUPLE};
    bool comma;
    st = sequence(p, open == '[' ? ']' : ')', &seq, &comma);
    if (st) {
        vd_value_free(&seq);
        return st;
    }
    if (open == '(' && seq.n == 1 && !comma) { /* parentheses only group */
        *out = seq.items[0];
        free(seq.items);
        return VD_OK;
    }
    *out = seq;
    return VD_OK;
}

static bool is_number(const vd_value *v) { return v->kind == VD_VAL_INT || v->kind == VD_VAL_FLOAT; }

static double as_double(const vd_value *v) { return v->kind == VD_VAL_INT ? (double)v->i : v->f; }

/* a < b for numbers, exact for two ints. */
static bool num_less(const vd_value *a, const vd_value *b) {
    if (a->kind == VD_VAL_INT && b->kind == VD_VAL_INT) return a->i < b->i;
    long double x = a->kind == VD_VAL_INT ? (long double)a->i : a->f;
    long double y = b->kind == VD_VAL_INT ? (long double)b->i : b->f;
    return x < y;
}

/* max(a, b, ...) / min(...), or of one list; like Python the first extreme item wins. */
static vd_status call(vd_parser *p, const char *name, vd_pos at, vd_value *out) {
    skip(p);
    open_bracket(p, vd_parser_here(p), 'c');
    advance(p); /* '(' */
    vd_value args = {.kind = VD_VAL_TUPLE};
    bool comma;
    vd_status st = sequence(p, ')', &args, &comma);
    if (st) {
        vd_value_free(&args);
        return st;
    }
    const vd_value *items = args.items;
    size_t n = args.n;
    if (n == 1 && (items[0].kind == VD_VAL_LIST || items[0].kind == VD_VAL_TUPLE)) {
        n = items[0].n;
        items = items[0].items;
        if (n == 0) st = vd_parser_fail(p, at, "%s() of an empty sequence", name);
    } else if (n < 2) {
        st = vd_parser_fail(p, at, "%s() needs two or more arguments or one list", name);
    }
    size_t best = 0;
    bool want_max = name[1] == 'a';
    for (size_t i = 0; !st && i < n; i++) {
        if (!is_number(&items[i])) {
            char buf[64];
            st = vd_parser_fail(p, at, "%s() takes numbers, got %s", name,
                                vd_value_brief(&items[i], buf, sizeof buf));
        } else if (want_max ? num_less(&items[best], &items[i]) : num_less(&items[i], &items[best])) {
            best = i;
        }
    }
    if (!st) *out = items[best]; /* numbers own no memory */
    vd_value_free(&args);
    return st;
}

static vd_status name(vd_parser *p, vd_value *out) {
    vd_pos at = vd_parser_here(p);
    size_t start = p->pos;
    while (is_ident(peek(p, 0))) advance(p);
    size_t n = p->pos - start;
    const char *w = p->s + start;
    vd_status st = charge(p, at, sizeof *out);
    if (st) return st;
    if (n == 4 && !memcmp(w, "True", 4)) {
        *out = (vd_value){.kind = VD_VAL_BOOL, .b = true};
    } else if (n == 5 && !memcmp(w, "False", 5)) {
        *out = (vd_value){.kind = VD_VAL_BOOL, .b = false};
    } else if (n == 4 && !memcmp(w, "None", 4)) {
        *out = (vd_value){.kind = VD_VAL_NONE};
    } else if (n == 3 && (!memcmp(w, "max", 3) || !memcmp(w, "min", 3))) {
        skip(p);
        if (peek(p, 0) != '(') return unexpected(p, "'(' after max/min");
        return call(p, w[1] == 'a' ? "max" : "min", at, out);
    } else {
        p->pos = start; /* report at the name itself */
        if (p->nest > 0 && p->line > p->open_pos[0].line && line_starts_entry(p))
            return unexpected(p, "a value");
        return vd_parser_fail(p, at, "unknown name '%.*s' (quote strings inside expressions)",
                              (int)(n > 64 ? 64 : n), w);
    }
    return VD_OK;
}

static vd_status atom(vd_parser *p, vd_value *out) {
    skip(p);
    int c = peek(p, 0);
    if ((c >= '0' && c <= '9') || (c == '.' && peek(p, 1) >= '0' && peek(p, 1) <= '9')) {
        vd_status st = charge(p, vd_parser_here(p), sizeof *out);
        return st ? st : number(p, out);
    }
    if (c == '\'' || c == '"') return string(p, out);
    if (c == '[' || c == '(') return bracketed(p, out);
    if (is_ident_start(c)) return name(p, out);
    return unexpected(p, "a value");
}

/* ---- operators ---------------------------------------------------------------------------- */

static vd_status bad_operands(vd_parser *p, vd_pos at, const char *op, const vd_value *a,
                              const vd_value *b) {
    return vd_parser_fail(p, at, "unsupported operand types for %s: %s and %s", op,
                          vd_value_kind_str(a->kind), vd_value_kind_str(b->kind));
}

static vd_status float_result(vd_parser *p, vd_pos at, double f, vd_value *out) {
    if (!isfinite(f)) return vd_parser_fail(p, at, "float overflow");
    *out = (vd_value){.kind = VD_VAL_FLOAT, .f = f};
    return VD_OK;
}

static vd_status int_overflow(vd_parser *p, vd_pos at) {
    return vd_parser_fail(p, at, "integer overflow (values must fit in 64 bits)");
}

/* Python's float floor division, including its rounding fix-ups. */
static double float_floordiv(double x, double y) {
    double mod = fmod(x, y), div = (x - mod) / y;
    if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1.0;
    if (div == 0) return copysign(0.0, x / y);
    double fl = floor(div);
    return div - fl > 0.5 ? fl + 1.0 : fl;
}

static vd_status int_pow(vd_parser *p, vd_pos at, int64_t base, int64_t e, vd_value *out) {
    int64_t r = 1;
    while (e > 0) {
        if ((e & 1) && __builtin_mul_overflow(r, base, &r)) return int_overflow(p, at);
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) return int_overflow(p, at);
    }
    *out = (vd_value){.kind = VD_VAL_INT, .i = r};
    return VD_OK;
}

static vd_status arith(vd_parser *p, vd_pos at, const char *op, const vd_value *a,
                       const vd_value *b, vd_value *out) {
    if (!is_number(a) || !is_number(b)) return bad_operands(p, at, op, a, b);
    bool ints = a->kind == VD_VAL_INT && b->kind == VD_VAL_INT;
    double x = as_double(a), y = as_double(b);
    int64_t r;
    if ((!strcmp(op, "/") || !strcmp(op, "//")) && y == 0)
        return vd_parser_fail(p, at, "division by zero");
    switch (op[0] + (op[1] ? 256 : 0)) {
    case '+':
        if (!ints) return float_result(p, at, x + y, out);
        if (__builtin_add_overflow(a->i, b->i, &r)) return int_overflow(p, at);
        break;
    case '-':
        if (!ints) return float_result(p, at, x - y, out);
        if (__builtin_sub_overflow(a->i, b->i, &r)) return int_overflow(p, at);
        break;
    case '*':
        if (!ints) return float_result(p, at, x * y, out);
        if (__builtin_mul_overflow(a->i, b->i, &r)) return int_overflow(p, at);
        break;
    case '/': return float_result(p, at, x / y, out);
    case '/' + 256:
        if (!ints) return float_result(p, at, float_floordiv(x, y), out);
        if (a->i == INT64_MIN && b->i == -1) return int_overflow(p, at);
        r = a->i / b->i;
        if (a->i % b->i != 0 && ((a->i < 0) != (b->i < 0))) r--;
        break;
    default: /* "**" */
        if (ints && b->i >= 0) return int_pow(p, at, a->i, b->i, out);
        if (x == 0 && y < 0) return vd_parser_fail(p, at, "division by zero (0 to a negative power)");
        if (x < 0 && y != floor(y))
            return vd_parser_fail(p, at, "negative number to a fractional power");
        return float_result(p, at, pow(x, y), out);
    }
    *out = (vd_value){.kind = VD_VAL_INT, .i = r};
    return VD_OK;
}

/* seq * count: checked against the item limit before anything is allocated. */
static vd_status repeat(vd_parser *p, vd_pos at, const vd_value *seq, int64_t count,
                        vd_value *out) {
    *out = (vd_value){.kind = seq->kind};
    if (count <= 0 || seq->n == 0) return VD_OK;
    if ((uint64_t)count > VD_CFG_MAX_ITEMS / seq->n)
        return vd_parser_fail(p, at, "repetition makes a list of %zu items %lld times: more than "
                              "the limit of %d items", seq->n, (long long)count, VD_CFG_MAX_ITEMS);
    size_t n = seq->n * (size_t)count;
    vd_status st = charge(p, at, value_bytes(seq) * (size_t)count);
    if (st) return st;
    out->items = calloc(n, sizeof *out->items);
    if (!out->items) return nomem(p);
    out->n = n;
    for (size_t i = 0; i < n; i++)
        if (vd_value_copy(&out->items[i], &seq->items[i % seq->n])) return nomem(p);
    return VD_OK;
}

static vd_status concat(vd_parser *p, vd_pos at, vd_value *a, vd_value *b, vd_value *out) {
    if (a->kind == VD_VAL_STR) {
        size_t la = strlen(a->s), lb = strlen(b->s);
        vd_status st = charge(p, at, la + lb + 1);
        if (st) return st;
        char *s = malloc(la + lb + 1);
        if (!s) return nomem(p);
        memcpy(s, a->s, la);
        memcpy(s + la, b->s, lb + 1);
        *out = (vd_value){.kind = VD_VAL_STR, .s = s};
        return VD_OK;
    }
    if (a->n + b->n > VD_CFG_MAX_ITEMS)
        return vd_parser_fail(p, at, "concatenation makes a list of %zu items: more than the "
                              "limit of %d items", a->n + b->n, VD_CFG_MAX_ITEMS);
    *out = (vd_value){.kind = a->kind, .n = a->n + b->n};
    if (out->n && !(out->items = calloc(out->n, sizeof *out->items))) return nomem(p);
    /* the items move: a and b are left empty and freed by the caller */
    if (a->n) memcpy(out->items, a->items, a->n * sizeof *a->items);
    if (b->n) memcpy(out->items + a->n, b->items, b->n * sizeof *b->items);
    a->n = b->n = 0;
    return VD_OK;
}

static bool is_seq(const vd_value *v) { return v->kind == VD_VAL_LIST || v->kind == VD_VAL_TUPLE; }

/* out = a op b; a and b are consumed. On failure out owns nothing. */
static vd_status binop(vd_parser *p, vd_pos at, const char *op, vd_value *a, vd_value *b,
                       vd_value *out) {
    vd_status st;
    *out = (vd_value){0};
    if (op[0] == '+' && (is_seq(a) || a->kind == VD_VAL_STR)) {
        st = a->kind == b->kind ? concat(p, at, a, b, out) : bad_operands(p, at, op, a, b);
    } else if (!strcmp(op, "*") && is_seq(a) && b->kind == VD_VAL_INT) {
        st = repeat(p, at, a, b->i, out);
    } else if (!strcmp(op, "*") && a->kind == VD_VAL_INT && is_seq(b)) {
        st = repeat(p, at, b, a->i, out);
    } else {
        st = arith(p, at, op, a, b, out);
    }
    vd_value_free(a);
    vd_value_free(b);
    if (st) vd_value_free(out);
    return st;
}

/* The operator at p->pos among `ops` (longest match first), or NULL. */
static const char *match_op(vd_parser *p, const char *const *ops) {
    for (; *ops; ops++) {
        size_t n = strlen(*ops);
        if (p->pos + n <= p->len && !memcmp(p->s + p->pos, *ops, n)) {
            /* '*' is not the start of '**', '/' not of '//' */
            if (n == 1 && (ops[0][0] == '*' || ops[0][0] == '/') && peek(p, 1) == ops[0][0])
                continue;
            return *ops;
        }
    }
    return NULL;
}

static vd_status enter(vd_parser *p) {
    if (++p->depth > VD_CFG_MAX_DEPTH)
        return vd_parser_fail(p, vd_parser_here(p), "expression nested too deeply (more than %d "
                              "levels)", VD_CFG_MAX_DEPTH);
    return VD_OK;
}

/* atom ['**' unary]: right-associative and tighter than a unary minus on its left. */
static vd_status power(vd_parser *p, vd_value *out) {
    vd_status st = atom(p, out);
    if (st) return st;
    skip(p);
    if (!(peek(p, 0) == '*' && peek(p, 1) == '*')) return VD_OK;
    vd_pos at = vd_parser_here(p);
    advance(p);
    advance(p);
    vd_value rhs, lhs = *out;
    *out = (vd_value){0};
    if ((st = unary(p, &rhs))) {
        vd_value_free(&lhs);
        return st;
    }
    return binop(p, at, "**", &lhs, &rhs, out);
}

static vd_status unary(vd_parser *p, vd_value *out) {
    vd_status st = enter(p);
    if (st) return st;
    skip(p);
    int c = peek(p, 0);
    if (c != '-' && c != '+') {
        st = power(p, out);
        p->depth--;
        return st;
    }
    vd_pos at = vd_parser_here(p);
    advance(p);
    vd_value v;
    if ((st = unary(p, &v))) return st;
    p->depth--;
    if (!is_number(&v)) {
        st = vd_parser_fail(p, at, "bad operand type for unary %c: %s", c, vd_value_kind_str(v.kind));
        vd_value_free(&v);
        return st;
    }
    *out = v;
    if (c == '+') return VD_OK;
    if (v.kind == VD_VAL_FLOAT) {
        out->f = -v.f;
    } else if (v.i == INT64_MIN) {
        return int_overflow(p, at);
    } else {
        out->i = -v.i;
    }
    return VD_OK;
}

/* A left-associative chain of one precedence level. */
static vd_status chain(vd_parser *p, vd_value *out, const char *const *ops,
                       vd_status (*operand)(vd_parser *, vd_value *)) {
    vd_status st = operand(p, out);
    for (;;) {
        if (st) return st;
        skip(p);
        const char *op = match_op(p, ops);
        if (!op) return VD_OK;
        vd_pos at = vd_parser_here(p);
        p->pos += strlen(op);
        vd_value rhs, lhs = *out;
        *out = (vd_value){0};
        if ((st = operand(p, &rhs))) {
            vd_value_free(&lhs);
            return st;
        }
        st = binop(p, at, op, &lhs, &rhs, out);
    }
}

static vd_status term(vd_parser *p, vd_value *out) {
    static const char *const ops[] = {"//", "*", "/", NULL};
    return chain(p, out, ops, unary);
}

static vd_status expr(vd_parser *p, vd_value *out) {
    static const char *const ops[] = {"+", "-", NULL};
    vd_status st = enter(p);
    if (st) return st;
    st = chain(p, out, ops, term);
    p->depth--;
    return st;
}

/* ---- a whole value ------------------------------------------------------------------------ */

static bool at_line_end(const vd_parser *p) {
    int c = peek(p, 0);
    return c < 0 || c == '\n' || c == '#';
}

/* An unquoted word (name = cifar10_baseline): the rest of the line, comment and trailing
 * spaces removed, is a string. True/False/None and max(/min( start expressions instead. */
static bool starts_bare_word(const vd_parser *p) {
    if (!is_ident_start(peek(p, 0))) return false;
    size_t i = p->pos;
    while (i < p->len && is_ident((unsigned char)p->s[i])) i++;
    size_t n = i - p->pos;
    const char *w = p->s + p->pos;
    if ((n == 4 && !memcmp(w, "True", 4)) || (n == 5 && !memcmp(w, "False", 5)) ||
        (n == 4 && !memcmp(w, "None", 4)))
        return false;
    if (n == 3 && (!memcmp(w, "max", 3) || !memcmp(w, "min", 3))) {
        while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t')) i++;
        return !(i < p->len && p->s[i] == '(');
    }
    return true;
}

static vd_status bare_word(vd_parser *p, vd_value *out) {
    size_t start = p->pos, end;
    while (!at_line_end(p)) advance(p);
    end = p->pos;
    while (end > start && isspace((unsigned char)p->s[end - 1])) end--;
    vd_status st = charge(p, vd_parser_here(p), sizeof *out + end - start + 1);
    if (st) return st;
    char *s = strndup(p->s + start, end - start);
    if (!s) return nomem(p);
    *out = (vd_value){.kind = VD_VAL_STR, .s = s};
    return VD_OK;
}

vd_status vd_parse_value(vd_parser *p, vd_value *out) {
    *out = (vd_value){0};
    p->depth = p->nest = 0;
    skip(p);
    if (at_line_end(p)) return vd_parser_fail(p, vd_parser_here(p), "empty value");
    if (starts_bare_word(p)) return bare_word(p, out);
    vd_status st = expr(p, out);
    if (st) {
        *out = (vd_value){0}; /* failed parses free what they built */
        return st;
    }
    skip(p);
    if (!at_line_end(p)) {
        char buf[24];
        vd_pos at = vd_parser_here(p);
        const char *what = vd_parser_what(p, buf);
        vd_value_free(out);
        return vd_parser_fail(p, at, "unexpected %s after the value (quote strings: 'like this')",
                              what);
    }
    return VD_OK;
}
