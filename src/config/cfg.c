/* The .cfg reader: INI sections, comments and `key = expression` lines into a vd_cfg of
 * evaluated values that remember where they came from; also --set assignments. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

static void entry_free(vd_cfg_entry *e) {
    free(e->section);
    free(e->key);
    free(e->file);
    vd_value_free(&e->value);
}

void vd_cfg_free(vd_cfg *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < cfg->n; i++) entry_free(&cfg->entries[i]);
    free(cfg->entries);
    *cfg = (vd_cfg){0};
}

static vd_cfg_entry *find(const vd_cfg *cfg, const char *section, const char *key) {
    for (size_t i = cfg->n; i-- > 0;)
        if (!strcmp(cfg->entries[i].section, section) && !strcmp(cfg->entries[i].key, key))
            return &cfg->entries[i];
    return NULL;
}

const vd_cfg_entry *vd_cfg_find(const vd_cfg *cfg, const char *section, const char *key) {
    return find(cfg, section, key);
}

/* Append e (taking ownership), or replace the entry with the same section and key. */
static vd_status put(vd_cfg *cfg, vd_cfg_entry *e) {
    vd_cfg_entry *old = find(cfg, e->section, e->key);
    if (old) {
        entry_free(old);
        *old = *e;
        return VD_OK;
    }
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 64;
        vd_cfg_entry *grown = realloc(cfg->entries, cap * sizeof *grown);
        if (!grown) return VD_ERR_NOMEM;
        cfg->entries = grown;
        cfg->cap = cap;
    }
    cfg->entries[cfg->n++] = *e;
    return VD_OK;
}

/* Build an entry for value v (consumed, also on failure). */
static vd_status make_entry(vd_cfg_entry *e, const char *section, const char *key, size_t key_len,
                            vd_value *v, const char *file, vd_pos at) {
    *e = (vd_cfg_entry){.value = *v, .line = at.line, .col = at.col};
    *v = (vd_value){0};
    e->section = strdup(section);
    e->key = strndup(key, key_len);
    e->file = strdup(file);
    if (e->section && e->key && e->file) return VD_OK;
    entry_free(e);
    *e = (vd_cfg_entry){0};
    return VD_ERR_NOMEM;
}

static bool is_key_char(int c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int cur(const vd_parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static void next(vd_parser *p) {
    if (p->s[p->pos] == '\n') {
        p->line++;
        p->line_start = p->pos + 1;
    }
    p->pos++;
}

static void skip_blanks(vd_parser *p) {
    while (cur(p) == ' ' || cur(p) == '\t' || cur(p) == '\r' || cur(p) == '\f') next(p);
}

static void skip_line(vd_parser *p) {
    while (cur(p) >= 0 && cur(p) != '\n') next(p);
}

/* "[name]" then nothing but spaces or a comment. */
static vd_status section_header(vd_parser *p, char **section) {
    vd_pos at = vd_parser_here(p);
    next(p);
    skip_blanks(p);
    size_t start = p->pos;
    while (cur(p) >= 0 && cur(p) != ']' && cur(p) != '\n') next(p);
    if (cur(p) != ']') return vd_parser_fail(p, at, "unterminated section header: ']' is missing");
    size_t end = p->pos;
    while (end > start && (p->s[end - 1] == ' ' || p->s[end - 1] == '\t')) end--;
    if (end == start) return vd_parser_fail(p, at, "empty section name");
    next(p);
    skip_blanks(p);
    if (cur(p) >= 0 && cur(p) != '\n' && cur(p) != '#') {
        char buf[24];
        return vd_parser_fail(p, vd_parser_here(p), "unexpected %s after the section header",
                              vd_parser_what(p, buf));
    }
    char *name = strndup(p->s + start, end - start);
    if (!name) return vd_errorf(p->err, VD_ERR_NOMEM, "%s: out of memory", p->file);
    free(*section);
    *section = name;
    return VD_OK;
}

/* "key = value" at p->pos into cfg; a key already set in this text is an error. */
static vd_status assignment(vd_parser *p, const char *section, vd_cfg *cfg) {
    vd_pos at = vd_parser_here(p);
    const char *key = p->s + p->pos;
    while (is_key_char(cur(p))) next(p);
    size_t key_len = (size_t)(p->s + p->pos - key);
    int shown = key_len > 64 ? 64 : (int)key_len;
    skip_blanks(p);
    if (cur(p) != '=') {
        char buf[24];
        return vd_parser_fail(p, vd_parser_here(p), "expected '=' after key '%.*s', got %s",
                              shown, key, vd_parser_what(p, buf));
    }
    if (!section)
        return vd_parser_fail(p, at, "key '%.*s' is outside any section (add a [section] line "
                              "above it)", shown, key);
    for (size_t i = 0; i < cfg->n; i++) {
        const vd_cfg_entry *e = &cfg->entries[i];
        if (!strcmp(e->section, section) && strlen(e->key) == key_len &&
            !memcmp(e->key, key, key_len))
            return vd_parser_fail(p, at, "duplicate key '%.*s' in [%s] (first set at line %d)",
                                  shown, key, section, e->line);
    }
    next(p); /* '=' */
    vd_value v;
    vd_status st = vd_parse_value(p, &v);
    if (st) return st;
    vd_cfg_entry e = {0};
    if (make_entry(&e, section, key, key_len, &v, p->file, at) || put(cfg, &e)) {
        entry_free(&e);
        return vd_errorf(p->err, VD_ERR_NOMEM, "%s: out of memory", p->file);
    }
    return VD_OK;
}

static vd_status parse_lines(vd_parser *p, vd_cfg *cfg) {
    char *section = NULL;
    vd_status st = VD_OK;
    while (!st) {
        skip_blanks(p);
        int c = cur(p);
        if (c < 0) break;
        if (c == '\n') {
            next(p);
        } else if (c == '#' || c == ';') {
            skip_line(p);
        } else if (c == '[') {
            st = section_header(p, &section);
        } else if (is_key_char(c)) {
            st = assignment(p, section, cfg);
        } else {
            char buf[24];
            st = vd_parser_fail(p, vd_parser_here(p), "expected a key, a [section] or a comment, "
                                "got %s", vd_parser_what(p, buf));
        }
    }
    free(section);
    return st;
}

/* Move every entry of src into dst, replacing entries with the same section and key. */
static vd_status merge(vd_cfg *dst, vd_cfg *src) {
    size_t i = 0;
    vd_status st = VD_OK;
    for (; i < src->n && !st; i++) st = put(dst, &src->entries[i]);
    if (st) i--; /* that entry was not taken */
    for (size_t j = i; j < src->n; j++) entry_free(&src->entries[j]);
    free(src->entries);
    *src = (vd_cfg){0};
    return st;
}

vd_status vd_cfg_parse(vd_cfg *cfg, const char *text, size_t len, const char *filename,
                       vd_err *err) {
    vd_parser p;
    vd_parser_init(&p, text, len, filename, err);
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        for (size_t i = 0; text + i < nul; i++) next(&p);
        return vd_parser_fail(&p, vd_parser_here(&p), "NUL byte in the file (not a text file?)");
    }
    vd_cfg fresh = {0};
    vd_status st = parse_lines(&p, &fresh);
    if (st) {
        vd_cfg_free(&fresh);
        return st;
    }
    if (merge(cfg, &fresh)) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", filename);
    return VD_OK;
}

vd_status vd_cfg_parse_file(vd_cfg *cfg, const char *path, vd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    vd_status st = VD_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *grown = realloc(text, cap);
            if (!grown) {
                st = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            text = grown;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = vd_errorf(err, VD_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!st) st = vd_cfg_parse(cfg, text, len, path, err);
    free(text);
    return st;
}

vd_status vd_cfg_set(vd_cfg *cfg, const char *assignment, vd_err *err) {
    vd_parser p;
    vd_parser_init(&p, assignment, strlen(assignment), "--set", err);
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    if (!eq || !dot)
        return vd_parser_fail(&p, (vd_pos){1, 1}, "expected section.key=value, got '%.200s'",
                              assignment);
    const char *sec = assignment, *key = dot + 1;
    while (*sec == ' ' || *sec == '\t') sec++;
    const char *sec_end = dot, *key_end = eq;
    while (sec_end > sec && (sec_end[-1] == ' ' || sec_end[-1] == '\t')) sec_end--;
    while (*key == ' ' || *key == '\t') key++;
    while (key_end > key && (key_end[-1] == ' ' || key_end[-1] == '\t')) key_end--;
    if (sec_end == sec || key_end == key)
        return vd_parser_fail(&p, (vd_pos){1, 1}, "expected section.key=value, got '%.200s'",
                              assignment);
    for (const char *c = key; c < key_end; c++)
        if (!is_key_char((unsigned char)*c))
            return vd_parser_fail(&p, (vd_pos){1, (int)(c - assignment) + 1},
                                  "invalid character in key '%.*s'", (int)(key_end - key), key);
    p.pos = (size_t)(eq - assignment) + 1;
    vd_value v;
    vd_status st = vd_parse_value(&p, &v);
    if (st) return st;
    if (p.pos < p.len && p.s[p.pos] == '#') /* a comment may follow */
        while (p.pos < p.len && p.s[p.pos] != '\n') p.pos++;
    if (p.pos < p.len) {
        vd_value_free(&v);
        return vd_parser_fail(&p, vd_parser_here(&p), "a --set value must be a single line");
    }
    char *section = strndup(sec, (size_t)(sec_end - sec));
    vd_cfg_entry e = {0};
    vd_pos at = {1, (int)(sec - assignment) + 1};
    if (!section || make_entry(&e, section, key, (size_t)(key_end - key), &v, "--set", at) ||
        put(cfg, &e)) {
        entry_free(&e);
        vd_value_free(&v);
        free(section);
        return vd_errorf(err, VD_ERR_NOMEM, "--set: out of memory");
    }
    free(section);
    return VD_OK;
}
