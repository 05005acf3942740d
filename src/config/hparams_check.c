/* Validation of a whole vd_hparams: every key's range (structs built in code get the same
 * checks as files) and the rules between keys that the architecture needs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config/cfg_internal.h"
#include "config/hparams_table.h"

typedef struct check_ctx {
    const vd_cfg_entry *const *loc; /* may be NULL */
    vd_err *err;
} check_ctx;

static const vd_cfg_entry *loc_of(const check_ctx *c, const char *section, const char *key) {
    if (!c->loc) return NULL;
    int i = vd_hp_index(section, key);
    return i < 0 ? NULL : c->loc[i];
}

/* An error about two keys, located at the one the user most likely just changed: an
 * override on the command line, else the later line. */
static vd_status fail(const check_ctx *c, const char *key1, const char *key2, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static vd_status fail(const check_ctx *c, const char *key1, const char *key2, const char *fmt, ...) {
    char sk[2][64], where[VD_ERR_MSG_MAX / 2], msg[VD_ERR_MSG_MAX];
    const vd_cfg_entry *at = NULL;
    const char *keys[2] = {key1, key2};
    for (int j = 0; j < 2; j++) {
        if (!keys[j]) continue;
        const char *dot = strchr(keys[j], '.');
        snprintf(sk[j], sizeof sk[j], "%.*s", (int)(dot - keys[j]), keys[j]);
        const vd_cfg_entry *e = loc_of(c, sk[j], dot + 1);
        if (!e) continue;
        bool e_set = !strcmp(e->file, "--set"), at_set = at && !strcmp(at->file, "--set");
        if (!at || (e_set && !at_set) || (e_set == at_set && e->line > at->line)) at = e;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vd_errorf(c->err, VD_ERR_INVALID, "%s%s", vd_hp_where(at, where, sizeof where), msg);
}

static vd_status check_number(const check_ctx *c, const vd_hp_key *k, double x, int item) {
    const vd_cfg_entry *at = loc_of(c, k->section, k->key);
    char shown[40];
    vd_float_repr(x, shown);
    if (k->type == VD_HP_INT || k->type == VD_HP_I64 || k->type == VD_HP_INT_LIST ||
        k->type == VD_HP_PAIR)
        snprintf(shown, sizeof shown, "%.0f", x);
    if (!isfinite(x)) {
        char where[VD_ERR_MSG_MAX / 2];
        return vd_errorf(c->err, VD_ERR_INVALID, "%s%s.%s must be finite, got %s",
                         vd_hp_where(at, where, sizeof where), k->section, k->key, shown);
    }
    return vd_hp_check_range(k, x, shown, item, at, c->err);
}

static vd_status check_temps(const check_ctx *c, const vd_hparams *hp, const vd_hp_key *k) {
    int n = hp->synthesis.n_temperature_settings;
    if (n < 1 || n > VD_MAX_TEMPS)
        return fail(c, "synthesis.temperature_settings", NULL,
                    "synthesis.temperature_settings has %d settings; it needs 1 to %d", n, VD_MAX_TEMPS);
    vd_status st = VD_OK;
    for (int i = 0; i < n && !st; i++) {
        const vd_temp_setting *t = &hp->synthesis.temperature_settings[i];
        if (t->kind == VD_TEMP_CONST) {
            st = check_number(c, k, t->t, i);
        } else if (t->kind == VD_TEMP_LINEAR) {
            st = check_number(c, k, t->first, i);
            if (!st) st = check_number(c, k, t->last, i);
        } else if (t->kind == VD_TEMP_LIST) {
            if (t->n < 1 || t->n > VD_MAX_LEVELS)
                return fail(c, "synthesis.temperature_settings", NULL,
                            "synthesis.temperature_settings[%d] has %d temperatures; it needs 1 to "
                            "%d", i, t->n, VD_MAX_LEVELS);
            /* One temperature per level, shared by the level's blocks, as the reference. */
            if (t->n != hp->model.n_down)
                return fail(c, "synthesis.temperature_settings", "model.down_strides",
                            "synthesis.temperature_settings[%d] has %d temperatures but the model "
                            "has %d top-down levels (len(down_strides))", i, t->n, hp->model.n_down);
            for (int j = 0; j < t->n && !st; j++) st = check_number(c, k, t->per_block[j], i);
        } else {
            return fail(c, "synthesis.temperature_settings", NULL,
                        "synthesis.temperature_settings[%d] has an invalid kind %d", i, (int)t->kind);
        }
    }
    return st;
}

/* The range (or enum, or string) rule of one key. */
static vd_status check_key(const check_ctx *c, const vd_hparams *hp, const vd_hp_key *k) {
    const void *f = vd_hp_cfield(hp, k);
    char qual[128];
    snprintf(qual, sizeof qual, "%s.%s", k->section, k->key);
    vd_status st = VD_OK;
    switch (k->type) {
    case VD_HP_BOOL: return VD_OK;
    case VD_HP_INT: return check_number(c, k, *(const int *)f, -1);
    case VD_HP_I64: return check_number(c, k, (double)*(const int64_t *)f, -1);
    case VD_HP_FLOAT: return check_number(c, k, *(const double *)f, -1);
    case VD_HP_STR:
        if (!memchr(f, '\0', VD_NAME_MAX))
            return fail(c, qual, NULL, "%s is not NUL-terminated", qual);
        return VD_OK;
    case VD_HP_ENUM:
        if (!vd_hp_enum_name(k, *(const int *)f))
            return fail(c, qual, NULL, "%s has no valid value (%d)", qual, *(const int *)f);
        return VD_OK;
    case VD_HP_INT_LIST:
    case VD_HP_FLOAT_LIST: {
        int n = vd_hp_list_len(hp, k);
        if (n < 1 || n > VD_MAX_LEVELS)
            return fail(c, qual, NULL, "%s has %d items; it needs 1 to %d", qual, n, VD_MAX_LEVELS);
        for (int i = 0; i < n && !st; i++)
            st = check_number(c, k, k->type == VD_HP_INT_LIST ? ((const int *)f)[i]
                                                              : ((const double *)f)[i], i);
        return st;
    }
    case VD_HP_PAIR:
        st = check_number(c, k, ((const int *)f)[0], 0);
        return st ? st : check_number(c, k, ((const int *)f)[1], 1);
    case VD_HP_TEMPS: return check_temps(c, hp, k);
    }
    return VD_OK;
}

/* Product of strides, saturated just above any resolution we accept. */
static int64_t stride_product(const int *s, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        p *= s[i] > 0 ? s[i] : 1;
        if (p > (int64_t)1 << 32) return ((int64_t)1 << 32) + 1;
    }
    return p;
}

static vd_status check_strides(const check_ctx *c, const vd_hparams *hp) {
    const vd_hp_model *m = &hp->model;
    if (m->n_up != m->n_down)
        return fail(c, "model.down_strides", "model.up_strides",
                    "model.down_strides has %d items but model.up_strides has %d (each top-down "
                    "level takes the skip of one bottom-up level)", m->n_down, m->n_up);
    int64_t up = stride_product(m->up_strides, m->n_up);
    int64_t down = stride_product(m->down_strides, m->n_down);
    if (up != down)
        return fail(c, "model.up_strides", "model.down_strides",
                    "prod(model.up_strides) = %lld but prod(model.down_strides) = %lld",
                    (long long)up, (long long)down);
    if (hp->data.target_res % down != 0)
        return fail(c, "model.down_strides", "data.target_res",
                    "prod(model.down_strides) = %lld does not divide data.target_res = %d",
                    (long long)down, hp->data.target_res);
    for (int i = 0; i < m->n_down; i++) {
        int j = m->n_up - 1 - i;
        if (m->down_strides[i] != m->up_strides[j])
            return fail(c, "model.down_strides", "model.up_strides",
                        "model.down_strides must be model.up_strides reversed: down_strides[%d] = "
                        "%d but up_strides[%d] = %d", i, m->down_strides[i], j, m->up_strides[j]);
    }
    return VD_OK;
}

/* Widths: only strided levels change them, skips match the top-down level that takes them,
 * and every bottleneck keeps at least one channel. */
static vd_status check_widths(const check_ctx *c, const vd_hparams *hp) {
    const vd_hp_model *m = &hp->model;
    for (int i = 0; i < m->n_up; i++) {
        int in = i ? m->up_filters[i - 1] : m->input_conv_filters;
        if (m->up_strides[i] == 1 && m->up_filters[i] != in)
            return fail(c, "model.up_filters", "model.up_strides",
                        "model.up_filters[%d] = %d but %d channels come in and model.up_strides[%d] "
                        "is 1 (only a strided level changes the width)", i, m->up_filters[i], in, i);
        if ((long long)(in * m->up_mid_filters_ratio[i]) < 1)
            return fail(c, "model.up_mid_filters_ratio", NULL,
                        "model.up_mid_filters_ratio[%d] leaves no channels in the bottleneck of "
                        "%d channels", i, in);
    }
    for (int i = 0; i < m->n_down; i++) {
        int in = i ? m->down_filters[i - 1] : m->down_filters[0];
        int skip = m->up_skip_filters[m->n_up - 1 - i];
        if (m->down_strides[i] == 1 && m->down_filters[i] != in)
            return fail(c, "model.down_filters", "model.down_strides",
                        "model.down_filters[%d] = %d but %d channels come in and "
                        "model.down_strides[%d] is 1 (only a strided level changes the width)",
                        i, m->down_filters[i], in, i);
        if (skip != m->down_filters[i])
            return fail(c, "model.up_skip_filters", "model.down_filters",
                        "model.up_skip_filters[%d] = %d but the top-down level that takes it has "
                        "model.down_filters[%d] = %d channels", m->n_up - 1 - i, skip, i,
                        m->down_filters[i]);
        if ((long long)(m->down_filters[i] * m->down_mid_filters_ratio[i]) < 1)
            return fail(c, "model.down_mid_filters_ratio", NULL,
                        "model.down_mid_filters_ratio[%d] leaves no channels in the bottleneck of "
                        "%d channels", i, m->down_filters[i]);
    }
    return VD_OK;
}

static vd_status check_misc(const check_ctx *c, const vd_hparams *hp) {
    if (!hp->run.name[0]) return fail(c, "run.name", NULL, "run.name must not be empty");
    if (strchr(hp->run.name, '/'))
        return fail(c, "run.name", NULL, "run.name must not contain '/' (it names directories)");
    vd_dataset d = hp->data.dataset_source;
    bool mnist = d == VD_DATA_BINARIZED_MNIST || d == VD_DATA_MNIST || d == VD_DATA_FASHION_MNIST;
    if ((mnist && hp->data.channels != 1) || (d == VD_DATA_CIFAR10 && hp->data.channels != 3))
        return fail(c, "data.channels", "data.dataset_source",
                    "data.channels = %d but dataset %s has %d", hp->data.channels,
                    vd_hp_enum_name(vd_hp_find("data", "dataset_source"), (int)d), mnist ? 1 : 3);
    const vd_hp_loss *l = &hp->loss;
    if (l->variation_schedule == VD_BETA_LINEAR && l->vae_beta_anneal_start + l->vae_beta_anneal_steps <= 0)
        return fail(c, "loss.vae_beta_anneal_steps", "loss.vae_beta_anneal_start",
                    "the Linear beta schedule divides by loss.vae_beta_anneal_start + "
                    "loss.vae_beta_anneal_steps, which is 0");
    /* A warning that can only come with the stop (or after it) would never be seen. */
    const vd_hp_train *t = &hp->train;
    if (t->skip_warning_after > 0 && t->skip_stop_after > 0 && t->skip_warning_after >= t->skip_stop_after)
        return fail(c, "train.skip_warning_after", "train.skip_stop_after",
                    "train.skip_warning_after (%lld) must be below train.skip_stop_after (%lld), or "
                    "one of them 0 (off)", (long long)t->skip_warning_after, (long long)t->skip_stop_after);
    return VD_OK;
}

vd_status vd_hp_check(const vd_hparams *hp, const vd_cfg_entry *const *loc, vd_err *err) {
    check_ctx c = {loc, err};
    /* temperature lists are checked against N_td, so the model lists come first */
    for (int i = 0; i < vd_hp_n_keys; i++) {
        if (vd_hp_keys[i].type == VD_HP_TEMPS) continue;
        vd_status st = check_key(&c, hp, &vd_hp_keys[i]);
        if (st) return st;
    }
    vd_status st = check_strides(&c, hp);
    if (!st) st = check_widths(&c, hp);
    if (!st) st = check_misc(&c, hp);
    if (!st) st = check_key(&c, hp, vd_hp_find("synthesis", "temperature_settings"));
    return st;
}
