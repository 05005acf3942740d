/* The typed hyper-parameters: defaults from the key table, loading and validating a cfg,
 * the canonical text (every key, written to read back bit for bit), atomic saving, diffs. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"
#include "config/hparams_table.h"
#include "core/fs.h"

void vd_hparams_defaults(vd_hparams *hp) {
    memset(hp, 0, sizeof *hp); /* padding too, so that structs compare with memcmp */
    for (int i = 0; i < vd_hp_n_keys; i++) {
        const vd_hp_key *k = &vd_hp_keys[i];
        vd_parser p;
        vd_err err = {0};
        vd_value v;
        int n;
        vd_parser_init(&p, k->def, strlen(k->def), "<default>", &err);
        vd_status st = vd_parse_value(&p, &v);
        if (!st) st = vd_hp_store(hp, k, &v, &n, NULL, &err);
        vd_value_free(&v);
        assert(st == VD_OK && "a default in the key table does not load");
        (void)st;
        if (k->group == VD_HP_UP) hp->model.n_up = n;
        if (k->group == VD_HP_DOWN) hp->model.n_down = n;
    }
}

/* Every list of a group has the length of the group's first list. */
static vd_status check_lengths(vd_hparams *hp, const vd_cfg_entry **loc, const int *lens,
                               vd_err *err) {
    for (int g = VD_HP_UP; g <= VD_HP_DOWN; g++) {
        int ref = -1;
        for (int i = 0; i < vd_hp_n_keys; i++) {
            const vd_hp_key *k = &vd_hp_keys[i];
            if ((int)k->group != g) continue;
            if (ref < 0) {
                ref = i;
                continue;
            }
            if (lens[i] == lens[ref]) continue;
            char where[VD_ERR_MSG_MAX / 2];
            return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s has %d items but %s.%s has %d",
                             vd_hp_where(loc[i] ? loc[i] : loc[ref], where, sizeof where),
                             k->section, k->key, lens[i], vd_hp_keys[ref].section,
                             vd_hp_keys[ref].key, lens[ref]);
        }
        if (g == VD_HP_UP) hp->model.n_up = lens[ref];
        else hp->model.n_down = lens[ref];
    }
    return VD_OK;
}

vd_status vd_hparams_from_cfg(vd_hparams *hp, const vd_cfg *cfg, vd_err *err) {
    vd_hparams *tmp = malloc(sizeof *tmp);
    const vd_cfg_entry **loc = calloc((size_t)vd_hp_n_keys, sizeof *loc);
    int *lens = calloc((size_t)vd_hp_n_keys, sizeof *lens);
    vd_status st = VD_OK;
    if (!tmp || !loc || !lens) {
        st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        goto done;
    }
    vd_hparams_defaults(tmp);
    for (int i = 0; i < vd_hp_n_keys; i++)
        lens[i] = vd_hp_keys[i].group == VD_HP_SCALAR ? 1 : vd_hp_list_len(tmp, &vd_hp_keys[i]);
    st = vd_hp_apply(tmp, cfg, loc, lens, err);
    if (!st) st = check_lengths(tmp, loc, lens, err);
    if (!st) st = vd_hp_check(tmp, loc, err);
    if (!st) memcpy(hp, tmp, sizeof *hp);
done:
    free(tmp);
    free(loc);
    free(lens);
    return st;
}

vd_status vd_hparams_validate(const vd_hparams *hp, vd_err *err) { return vd_hp_check(hp, NULL, err); }

vd_status vd_hparams_load(vd_hparams *hp, const char *path, const char *const *overrides,
                          int n_overrides, vd_err *err) {
    vd_cfg cfg = {0};
    vd_status st = vd_cfg_parse_file(&cfg, path, err);
    for (int i = 0; i < n_overrides && !st; i++) st = vd_cfg_set(&cfg, overrides[i], err);
    if (!st) st = vd_hparams_from_cfg(hp, &cfg, err);
    vd_cfg_free(&cfg);
    return st;
}

/* ---- canonical text -------------------------------------------------------------------- */

static void write_float(FILE *f, double x) {
    char buf[40];
    vd_float_repr(x, buf);
    fputs(buf, f);
}

static void write_temp(FILE *f, const vd_temp_setting *t) {
    if (t->kind == VD_TEMP_CONST) {
        write_float(f, t->t);
    } else if (t->kind == VD_TEMP_LINEAR) {
        fputs("('linear', ", f);
        write_float(f, t->first);
        fputs(", ", f);
        write_float(f, t->last);
        fputc(')', f);
    } else {
        fputc('[', f);
        for (int j = 0; j < t->n && j < VD_MAX_LEVELS; j++) {
            if (j) fputs(", ", f);
            write_float(f, t->per_block[j]);
        }
        fputc(']', f);
    }
}

void vd_hp_write_value(FILE *f, const vd_hparams *hp, const vd_hp_key *k) {
    const void *v = vd_hp_cfield(hp, k);
    char buf[4 * VD_NAME_MAX + 8];
    vd_sb sb;
    switch (k->type) {
    case VD_HP_BOOL: fputs(*(const bool *)v ? "True" : "False", f); return;
    case VD_HP_INT: fprintf(f, "%d", *(const int *)v); return;
    case VD_HP_I64: fprintf(f, "%lld", (long long)*(const int64_t *)v); return;
    case VD_HP_FLOAT: write_float(f, *(const double *)v); return;
    case VD_HP_STR:
    case VD_HP_ENUM: {
        /* a struct built in code may hold anything: write what cannot be read as valid */
        char s[VD_NAME_MAX + 1] = "";
        const char *name = k->type == VD_HP_ENUM ? vd_hp_enum_name(k, *(const int *)v) : s;
        if (k->type == VD_HP_STR) memcpy(s, v, VD_NAME_MAX);
        if (!name) {
            fprintf(f, "%d", *(const int *)v);
            return;
        }
        vd_sb_fixed(&sb, buf, sizeof buf);
        vd_str_repr(&sb, name);
        fputs(buf, f);
        return;
    }
    case VD_HP_INT_LIST:
    case VD_HP_FLOAT_LIST:
        fputc('[', f);
        for (int i = 0; i < vd_hp_list_len(hp, k) && i < VD_MAX_LEVELS; i++) {
            if (i) fputs(", ", f);
            if (k->type == VD_HP_INT_LIST) fprintf(f, "%d", ((const int *)v)[i]);
            else write_float(f, ((const double *)v)[i]);
        }
        fputc(']', f);
        return;
    case VD_HP_PAIR: fprintf(f, "(%d, %d)", ((const int *)v)[0], ((const int *)v)[1]); return;
    case VD_HP_TEMPS:
        fputc('[', f);
        for (int i = 0; i < hp->synthesis.n_temperature_settings && i < VD_MAX_TEMPS; i++) {
            if (i) fputs(", ", f);
            write_temp(f, &hp->synthesis.temperature_settings[i]);
        }
        fputc(']', f);
        return;
    }
}

vd_status vd_hparams_write(const vd_hparams *hp, FILE *f) {
    fputs("# vdvae hyper-parameters: every key, in canonical form\n", f);
    const char *section = NULL;
    for (int i = 0; i < vd_hp_n_keys; i++) {
        const vd_hp_key *k = &vd_hp_keys[i];
        if (!section || strcmp(section, k->section)) {
            fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
            section = k->section;
        }
        fprintf(f, "%s = ", k->key);
        vd_hp_write_value(f, hp, k);
        fputc('\n', f);
    }
    return ferror(f) ? VD_ERR_IO : VD_OK;
}

/* A temporary file beside path, fsync'ed and renamed over it: a crash leaves the old file or
 * the new one, never half of one. */
vd_status vd_hparams_save(const vd_hparams *hp, const char *path, vd_err *err) {
    vd_atomic a;
    vd_status st = vd_atomic_begin(&a, path, err);
    if (st) return st;
    vd_hparams_write(hp, a.f); /* a failed write sets the stream's error flag: the commit fails */
    return vd_atomic_commit(&a, true, err);
}

/* ---- comparing --------------------------------------------------------------------------- */

static bool temp_equal(const vd_temp_setting *a, const vd_temp_setting *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == VD_TEMP_CONST) return a->t == b->t;
    if (a->kind == VD_TEMP_LINEAR) return a->first == b->first && a->last == b->last;
    if (a->n != b->n) return false;
    for (int j = 0; j < a->n && j < VD_MAX_LEVELS; j++)
        if (a->per_block[j] != b->per_block[j]) return false;
    return true;
}

bool vd_hp_equal(const vd_hparams *a, const vd_hparams *b, const vd_hp_key *k) {
    const void *x = vd_hp_cfield(a, k), *y = vd_hp_cfield(b, k);
    switch (k->type) {
    case VD_HP_BOOL: return *(const bool *)x == *(const bool *)y;
    case VD_HP_INT:
    case VD_HP_ENUM: return *(const int *)x == *(const int *)y;
    case VD_HP_I64: return *(const int64_t *)x == *(const int64_t *)y;
    case VD_HP_FLOAT: return *(const double *)x == *(const double *)y;
    case VD_HP_STR: return !strncmp(x, y, VD_NAME_MAX);
    case VD_HP_PAIR: return !memcmp(x, y, 2 * sizeof(int));
    case VD_HP_INT_LIST:
    case VD_HP_FLOAT_LIST: {
        int n = vd_hp_list_len(a, k);
        if (n != vd_hp_list_len(b, k)) return false;
        for (int i = 0; i < n && i < VD_MAX_LEVELS; i++) {
            bool same = k->type == VD_HP_INT_LIST ? ((const int *)x)[i] == ((const int *)y)[i]
                                                  : ((const double *)x)[i] == ((const double *)y)[i];
            if (!same) return false;
        }
        return true;
    }
    case VD_HP_TEMPS: {
        int n = a->synthesis.n_temperature_settings;
        if (n != b->synthesis.n_temperature_settings) return false;
        for (int i = 0; i < n && i < VD_MAX_TEMPS; i++)
            if (!temp_equal(&a->synthesis.temperature_settings[i], &b->synthesis.temperature_settings[i]))
                return false;
        return true;
    }
    }
    return false;
}

int vd_hparams_diff(const vd_hparams *a, const vd_hparams *b, char *out, size_t cap) {
    vd_sb sb;
    char dummy[1];
    vd_sb_fixed(&sb, out && cap ? out : dummy, out && cap ? cap : 1);
    int count = 0;
    for (int i = 0; i < vd_hp_n_keys; i++) {
        const vd_hp_key *k = &vd_hp_keys[i];
        if (vd_hp_equal(a, b, k)) continue;
        vd_sb_printf(&sb, "%s%s.%s", count ? ", " : "", k->section, k->key);
        count++;
    }
    return count;
}

int vd_hparams_n_td(const vd_hparams *hp) {
    int64_t n = hp->model.n_down;
    for (int i = 0; i < hp->model.n_down && i < VD_MAX_LEVELS; i++) n += hp->model.down_n_blocks_per_res[i];
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int vd_hparams_latent_res(const vd_hparams *hp) {
    int64_t p = 1;
    for (int i = 0; i < hp->model.n_down && i < VD_MAX_LEVELS; i++) {
        p *= hp->model.down_strides[i] > 0 ? hp->model.down_strides[i] : 1;
        if (p > hp->data.target_res) return 0; /* not a valid config */
    }
    return hp->data.target_res % p ? 0 : (int)(hp->data.target_res / p);
}
