/* Private to src/config: the expression parser shared by the .cfg reader, --set and the
 * defaults table, a string builder, and the Python-style printing of values. */
#ifndef VD_CONFIG_CFG_INTERNAL_H
#define VD_CONFIG_CFG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "vdvae/config.h"

/* Deepest bracket/operator nesting an expression may have; keeps recursion bounded. */
#define VD_CFG_MAX_DEPTH 64
/* Bytes of values one parse may create in total (temporaries included), so that repeated
 * repetition of nested lists cannot exhaust memory. Real configs use a few kilobytes. */
#define VD_CFG_MAX_BYTES ((size_t)64 << 20)

/* ---- string builder: growable, or fixed-size and silently truncating ------------------ */

typedef struct vd_sb {
    char *buf;
    size_t len, cap;
    bool fixed;   /* never reallocates; output beyond cap is dropped */
    bool failed;  /* an allocation failed or fixed output was truncated */
} vd_sb;

void vd_sb_fixed(vd_sb *sb, char *buf, size_t cap);
void vd_sb_grow(vd_sb *sb);
void vd_sb_putc(vd_sb *sb, char c);
void vd_sb_puts(vd_sb *sb, const char *s);
void vd_sb_printf(vd_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vd_sb_free(vd_sb *sb);

/* Shortest text that reads back as the same double, always float-looking ("8.0", "1e-08"). */
void vd_float_repr(double f, char buf[40]);
void vd_str_repr(vd_sb *sb, const char *s);
void vd_value_repr(vd_sb *sb, const vd_value *v);
/* "string 'abc'", "float 1.5", "list [1, 2, ...]": for messages, truncated to fit cap. */
const char *vd_value_brief(const vd_value *v, char *buf, size_t cap);
vd_status vd_value_copy(vd_value *dst, const vd_value *src);

/* ---- expression parser ------------------------------------------------------------------ */

typedef struct vd_pos {
    int line, col;
} vd_pos;

typedef struct vd_parser {
    const char *s;
    size_t len, pos;
    int line;            /* 1-based line of s[pos] */
    size_t line_start;   /* offset of that line's first byte */
    const char *file;
    vd_err *err;
    int depth;
    int nest;            /* open brackets: newlines and comments are whitespace inside */
    vd_pos open_pos[VD_CFG_MAX_DEPTH + 1];
    char open_kind[VD_CFG_MAX_DEPTH + 1];
    size_t budget;       /* bytes of values this parse may still create */
} vd_parser;

void vd_parser_init(vd_parser *p, const char *text, size_t len, const char *file, vd_err *err);
vd_pos vd_parser_here(const vd_parser *p);
vd_status vd_parser_fail(vd_parser *p, vd_pos at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Text describing the byte at p->pos for messages: "'x'", "end of line", "end of file". */
const char *vd_parser_what(const vd_parser *p, char buf[24]);
/* One value at p->pos up to the end of its (logical) line: an expression or a bare word,
 * then only spaces or a comment. Leaves p->pos at the newline or the end of the text. */
vd_status vd_parse_value(vd_parser *p, vd_value *out);

#endif
