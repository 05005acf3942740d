/* Typed storing of .cfg values into vd_hparams fields (an int is a fine float, a float only a
 * whole int), and unknown sections or keys with the closest known name suggested. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"
#include "config/hparams_table.h"

static vd_status type_error(const vd_hp_key *k, int item, const char *expects, const vd_value *v,
                            const vd_cfg_entry *at, vd_err *err) {
    char where[VD_ERR_MSG_MAX / 2], idx[24] = "", got[128];
    if (item >= 0) snprintf(idx, sizeof idx, "[%d]", item);
    return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s%s expects %s, got %s",
                     vd_hp_where(at, where, sizeof where), k->section, k->key, idx, expects,
                     vd_value_brief(v, got, sizeof got));
}

static bool to_i64(const vd_value *v, int64_t *out) {
    if (v->kind == VD_VAL_INT) {
        *out = v->i;
        return true;
    }
    /* a whole float (num_bits = 8.) is an int; 2^63 itself does not fit */
    if (v->kind == VD_VAL_FLOAT && v->f == floor(v->f) && v->f >= -0x1p63 && v->f < 0x1p63) {
        *out = (int64_t)v->f;
        return true;
    }
    return false;
}

static bool to_double(const vd_value *v, double *out) {
    if (v->kind != VD_VAL_INT && v->kind != VD_VAL_FLOAT) return false;
    *out = v->kind == VD_VAL_INT ? (double)v->i : v->f;
    return true;
}

static void range_text(const vd_hp_key *k, char *buf, size_t cap) {
    double lo = k->lo, hi = k->hi;
    if (k->type == VD_HP_INT || k->type == VD_HP_INT_LIST || k->type == VD_HP_PAIR) {
        if (lo < INT_MIN) lo = INT_MIN;
        if (hi > INT_MAX) hi = INT_MAX;
    }
    if (k->rule)
        snprintf(buf, cap, "%s", k->rule);
    else if (isinf(hi))
        snprintf(buf, cap, "%s %.10g", k->lo_open ? ">" : ">=", lo);
    else if (!k->lo_open && !k->hi_open)
        snprintf(buf, cap, "between %.10g and %.10g", lo, hi);
    else
        snprintf(buf, cap, "in %c%.10g, %.10g%c", k->lo_open ? '(' : '[', lo, hi,
                 k->hi_open ? ')' : ']');
}

vd_status vd_hp_check_range(const vd_hp_key *k, double x, const char *shown, int item,
                            const vd_cfg_entry *at, vd_err *err) {
    bool is_int = k->type == VD_HP_INT || k->type == VD_HP_INT_LIST || k->type == VD_HP_PAIR;
    bool ok = !isnan(x) && (k->lo_open ? x > k->lo : x >= k->lo) &&
              (k->hi_open ? x < k->hi : x <= k->hi) && (!is_int || (x >= INT_MIN && x <= INT_MAX)) &&
              (!k->ok || k->ok(x));
    if (ok) return VD_OK;
    char where[VD_ERR_MSG_MAX / 2], idx[24] = "", range[96];
    if (item >= 0) snprintf(idx, sizeof idx, "[%d]", item);
    range_text(k, range, sizeof range);
    return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s%s must be %s, got %s",
                     vd_hp_where(at, where, sizeof where), k->section, k->key, idx, range, shown);
}

/* One number of key k (an item of a list when item >= 0), as an int64 or a double. */
static vd_status number(const vd_hp_key *k, const vd_value *v, int item, bool want_int,
                        int64_t *i, double *f, const vd_cfg_entry *at, vd_err *err) {
    if (v->kind == VD_VAL_BOOL) /* Python would take True as 1; a config never means that */
        return type_error(k, item, want_int ? "an int" : "a number", v, at, err);
    if (want_int ? !to_i64(v, i) : !to_double(v, f))
        return type_error(k, item, want_int ? "an int" : "a number", v, at, err);
    char shown[40];
    if (want_int) {
        snprintf(shown, sizeof shown, "%lld", (long long)*i);
        return vd_hp_check_range(k, (double)*i, shown, item, at, err);
    }
    vd_float_repr(*f, shown);
    return vd_hp_check_range(k, *f, shown, item, at, err);
}

static bool is_seq(const vd_value *v) { return v->kind == VD_VAL_LIST || v->kind == VD_VAL_TUPLE; }

static vd_status store_list(vd_hparams *hp, const vd_hp_key *k, const vd_value *v, int *n,
                            const vd_cfg_entry *at, vd_err *err) {
    bool ints = k->type == VD_HP_INT_LIST;
    if (!is_seq(v)) return type_error(k, -1, ints ? "a list of ints" : "a list of numbers", v, at, err);
    char where[VD_ERR_MSG_MAX / 2];
    if (v->n == 0 || v->n > VD_MAX_LEVELS)
        return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s has %zu items; it needs 1 to %d",
                         vd_hp_where(at, where, sizeof where), k->section, k->key, v->n,
                         VD_MAX_LEVELS);
    int iv[VD_MAX_LEVELS] = {0};
    double fv[VD_MAX_LEVELS] = {0};
    for (size_t j = 0; j < v->n; j++) {
        int64_t i = 0;
        vd_status st = number(k, &v->items[j], (int)j, ints, &i, &fv[j], at, err);
        if (st) return st;
        iv[j] = (int)i;
    }
    if (ints)
        memcpy(vd_hp_field(hp, k), iv, sizeof iv);
    else
        memcpy(vd_hp_field(hp, k), fv, sizeof fv);
    *n = (int)v->n;
    return VD_OK;
}

static vd_status store_pair(vd_hparams *hp, const vd_hp_key *k, const vd_value *v,
                            const vd_cfg_entry *at, vd_err *err) {
    int *pair = vd_hp_field(hp, k);
    int64_t a, b;
    if (v->kind == VD_VAL_INT) {
        vd_status st = number(k, v, -1, true, &a, NULL, at, err);
        if (!st) pair[0] = pair[1] = (int)a;
        return st;
    }
    if (!is_seq(v) || v->n != 2)
        return type_error(k, -1, "a pair (h, w) or one int", v, at, err);
    vd_status st = number(k, &v->items[0], 0, true, &a, NULL, at, err);
    if (!st) st = number(k, &v->items[1], 1, true, &b, NULL, at, err);
    if (st) return st;
    pair[0] = (int)a;
    pair[1] = (int)b;
    return VD_OK;
}

/* One entry of temperature_settings: a number, ('linear', first, last) or a per-block list. */
static vd_status store_temp(const vd_hp_key *k, const vd_value *v, int item, vd_temp_setting *t,
                            const vd_cfg_entry *at, vd_err *err) {
    memset(t, 0, sizeof *t);
    vd_status st;
    if (!is_seq(v)) {
        t->kind = VD_TEMP_CONST;
        return number(k, v, item, false, NULL, &t->t, at, err);
    }
    if (v->n > 0 && v->items[0].kind == VD_VAL_STR) {
        if (v->n != 3 || strcmp(v->items[0].s, "linear"))
            return type_error(k, item, "a number, a list of numbers or ('linear', first, last)",
                              v, at, err);
        t->kind = VD_TEMP_LINEAR;
        st = number(k, &v->items[1], item, false, NULL, &t->first, at, err);
        return st ? st : number(k, &v->items[2], item, false, NULL, &t->last, at, err);
    }
    char where[VD_ERR_MSG_MAX / 2];
    if (v->n == 0 || v->n > VD_MAX_LEVELS)
        return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s[%d] has %zu temperatures; it needs 1 to %d",
                         vd_hp_where(at, where, sizeof where), k->section, k->key, item, v->n,
                         VD_MAX_LEVELS);
    t->kind = VD_TEMP_LIST;
    t->n = (int)v->n;
    for (size_t j = 0; j < v->n; j++)
        if ((st = number(k, &v->items[j], item, false, NULL, &t->per_block[j], at, err))) return st;
    return VD_OK;
}

static vd_status store_temps(vd_hparams *hp, const vd_hp_key *k, const vd_value *v,
                             const vd_cfg_entry *at, vd_err *err) {
    bool linear = v->kind == VD_VAL_TUPLE && v->n > 0 && v->items[0].kind == VD_VAL_STR;
    const vd_value *items = v;
    size_t n = 1;
    if (v->kind == VD_VAL_LIST || (v->kind == VD_VAL_TUPLE && !linear)) {
        items = v->items;
        n = v->n;
    }
    char where[VD_ERR_MSG_MAX / 2];
    if (n == 0 || n > VD_MAX_TEMPS)
        return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s has %zu settings; it needs 1 to %d",
                         vd_hp_where(at, where, sizeof where), k->section, k->key, n, VD_MAX_TEMPS);
    vd_temp_setting *ts = calloc(VD_MAX_TEMPS, sizeof *ts);
    if (!ts) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = VD_OK;
    for (size_t j = 0; j < n && !st; j++)
        st = store_temp(k, &items[j], items == v ? -1 : (int)j, &ts[j], at, err);
    if (!st) {
        memcpy(hp->synthesis.temperature_settings, ts, VD_MAX_TEMPS * sizeof *ts);
        hp->synthesis.n_temperature_settings = (int)n;
    }
    free(ts);
    return st;
}

static vd_status store_enum(vd_hparams *hp, const vd_hp_key *k, const vd_value *v,
                            const vd_cfg_entry *at, vd_err *err) {
    /* variation_schedule = None means the schedule named 'None' */
    const char *s = v->kind == VD_VAL_STR ? v->s : v->kind == VD_VAL_NONE ? "None" : NULL;
    for (const vd_hp_name *n = k->names; s && n->name; n++) {
        if (!strcmp(n->name, s)) {
            *(int *)vd_hp_field(hp, k) = n->value;
            return VD_OK;
        }
    }
    char where[VD_ERR_MSG_MAX / 2], got[128], names[256] = "";
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const vd_hp_name *n = k->names; n->name; n++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s'%s'", len ? ", " : "", n->name);
        size_t d = s ? vd_hp_edit_distance(s, n->name) : (size_t)-1;
        if (d < best_d) best_d = d, best = n->name;
    }
    char hint[96] = "";
    if (best && best_d <= 3) snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
    return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s must be one of %s, got %s%s",
                     vd_hp_where(at, where, sizeof where), k->section, k->key, names,
                     vd_value_brief(v, got, sizeof got), hint);
}

static vd_status store_str(vd_hparams *hp, const vd_hp_key *k, const vd_value *v,
                           const vd_cfg_entry *at, vd_err *err) {
    if (v->kind != VD_VAL_STR) return type_error(k, -1, "a string", v, at, err);
    size_t n = strlen(v->s);
    if (n >= VD_NAME_MAX) {
        char where[VD_ERR_MSG_MAX / 2];
        return vd_errorf(err, VD_ERR_INVALID, "%s%s.%s is too long (%zu bytes; at most %d)",
                         vd_hp_where(at, where, sizeof where), k->section, k->key, n,
                         VD_NAME_MAX - 1);
    }
    char *dst = vd_hp_field(hp, k);
    memset(dst, 0, VD_NAME_MAX);
    memcpy(dst, v->s, n);
    return VD_OK;
}

vd_status vd_hp_store(vd_hparams *hp, const vd_hp_key *k, const vd_value *v, int *n,
                      const vd_cfg_entry *at, vd_err *err) {
    int64_t i = 0;
    double f = 0;
    vd_status st;
    *n = 1;
    switch (k->type) {
    case VD_HP_BOOL:
        if (v->kind != VD_VAL_BOOL) return type_error(k, -1, "a bool (True or False)", v, at, err);
        *(bool *)vd_hp_field(hp, k) = v->b;
        return VD_OK;
    case VD_HP_INT:
    case VD_HP_I64:
        if ((st = number(k, v, -1, true, &i, NULL, at, err))) return st;
        if (k->type == VD_HP_INT)
            *(int *)vd_hp_field(hp, k) = (int)i;
        else
            *(int64_t *)vd_hp_field(hp, k) = i;
        return VD_OK;
    case VD_HP_FLOAT:
        if ((st = number(k, v, -1, false, NULL, &f, at, err))) return st;
        *(double *)vd_hp_field(hp, k) = f;
        return VD_OK;
    case VD_HP_STR: return store_str(hp, k, v, at, err);
    case VD_HP_ENUM: return store_enum(hp, k, v, at, err);
    case VD_HP_INT_LIST:
    case VD_HP_FLOAT_LIST: return store_list(hp, k, v, n, at, err);
    case VD_HP_PAIR: return store_pair(hp, k, v, at, err);
    case VD_HP_TEMPS: return store_temps(hp, k, v, at, err);
    }
    return vd_errorf(err, VD_ERR_INTERNAL, "unknown key type %d", (int)k->type);
}

/* ---- unknown names ----------------------------------------------------------------------- */

static vd_status unknown_section(const vd_cfg_entry *e, vd_err *err) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const char *const *s = vd_hp_sections; *s; s++) {
        size_t d = vd_hp_edit_distance(e->section, *s);
        if (d < best_d) best_d = d, best = *s;
    }
    char where[VD_ERR_MSG_MAX / 2], hint[96] = "";
    if (best && best_d <= 3) snprintf(hint, sizeof hint, "; did you mean '%s'?", best);
    return vd_errorf(err, VD_ERR_INVALID, "%sunknown section [%.64s] (key '%.64s')%s",
                     vd_hp_where(e, where, sizeof where), e->section, e->key, hint);
}

/* The closest key by edit distance: one of the same section wins a tie, one of another
 * section is named with its section ("did you mean 'train.batch_size'?"). */
static vd_status unknown_key(const vd_cfg_entry *e, vd_err *err) {
    const vd_hp_key *best = NULL;
    size_t best_d = (size_t)-1;
    for (int i = 0; i < vd_hp_n_keys; i++) {
        const vd_hp_key *k = &vd_hp_keys[i];
        size_t d = vd_hp_edit_distance(e->key, k->key);
        bool same = !strcmp(k->section, e->section);
        if (d < best_d || (d == best_d && same && best && strcmp(best->section, e->section)))
            best_d = d, best = k;
    }
    char where[VD_ERR_MSG_MAX / 2], hint[128] = "";
    size_t limit = strlen(e->key) / 3 + 2;
    if (best && best_d <= limit) {
        if (!strcmp(best->section, e->section))
            snprintf(hint, sizeof hint, "; did you mean '%s'?", best->key);
        else
            snprintf(hint, sizeof hint, "; did you mean '%s.%s'?", best->section, best->key);
    }
    return vd_errorf(err, VD_ERR_INVALID, "%sunknown key '%.64s' in [%s]%s",
                     vd_hp_where(e, where, sizeof where), e->key, e->section, hint);
}

vd_status vd_hp_apply(vd_hparams *hp, const vd_cfg *cfg, const vd_cfg_entry **loc, int *lens,
                      vd_err *err) {
    for (size_t j = 0; j < cfg->n; j++) {
        const vd_cfg_entry *e = &cfg->entries[j];
        int i = vd_hp_index(e->section, e->key);
        if (i < 0) {
            bool known = false;
            for (const char *const *s = vd_hp_sections; *s; s++) known |= !strcmp(*s, e->section);
            return known ? unknown_key(e, err) : unknown_section(e, err);
        }
        vd_status st = vd_hp_store(hp, &vd_hp_keys[i], &e->value, &lens[i], e, err);
        if (st) return st;
        loc[i] = e;
    }
    return VD_OK;
}
