/* Private to src/config and its tests: the one key table that defaults, loading, messages,
 * canonical writing, diffs and suggestions all walk (a new key: one row plus its field). */
#ifndef VD_CONFIG_HPARAMS_TABLE_H
#define VD_CONFIG_HPARAMS_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "vdvae/config.h"

typedef enum vd_hp_type {
    VD_HP_BOOL,
    VD_HP_INT,        /* int field */
    VD_HP_I64,        /* int64_t field */
    VD_HP_FLOAT,      /* double field; an int value is fine */
    VD_HP_STR,        /* char[VD_NAME_MAX] */
    VD_HP_ENUM,       /* an enum field, spelled as a string */
    VD_HP_INT_LIST,   /* int[VD_MAX_LEVELS], length shared by its group */
    VD_HP_FLOAT_LIST, /* double[VD_MAX_LEVELS], likewise */
    VD_HP_PAIR,       /* int[2]: (h, w) or one int for both */
    VD_HP_TEMPS,      /* synthesis.temperature_settings */
} vd_hp_type;

/* Lists of one group must have one length: n_up or n_down. */
typedef enum vd_hp_group { VD_HP_SCALAR, VD_HP_UP, VD_HP_DOWN } vd_hp_group;

typedef struct vd_hp_name {
    const char *name;
    int value;
} vd_hp_name;

typedef struct vd_hp_key {
    const char *section, *key;
    vd_hp_type type;
    size_t offset;              /* of the field in vd_hparams */
    const char *def;            /* the reference default, as .cfg text */
    double lo, hi;              /* numbers (every item of a list) lie in [lo, hi] */
    bool lo_open, hi_open;      /* ... or (lo, hi], [lo, hi) */
    const vd_hp_name *names;    /* ENUM: spellings, NULL-terminated; the first per value is written */
    vd_hp_group group;
    const char *rule;           /* when set, also required: "1 or 3" (checked by `ok`) */
    bool (*ok)(double x);
} vd_hp_key;

extern const vd_hp_key vd_hp_keys[];
extern const int vd_hp_n_keys;
extern const char *const vd_hp_sections[]; /* in canonical order, NULL-terminated */

const vd_hp_key *vd_hp_find(const char *section, const char *key);
int vd_hp_index(const char *section, const char *key); /* -1 when unknown */
void *vd_hp_field(vd_hparams *hp, const vd_hp_key *k);
const void *vd_hp_cfield(const vd_hparams *hp, const vd_hp_key *k);
/* The shared length of a list key's group (n_up or n_down). */
int vd_hp_list_len(const vd_hparams *hp, const vd_hp_key *k);
const char *vd_hp_enum_name(const vd_hp_key *k, int value);
size_t vd_hp_edit_distance(const char *a, const char *b);

/* "file:line:col: " for an entry, "" for NULL (defaults and programmatic structs). */
const char *vd_hp_where(const vd_cfg_entry *e, char *buf, size_t cap);
/* Store v in k's field after checking its type and range; *n gets a list's length. */
vd_status vd_hp_store(vd_hparams *hp, const vd_hp_key *k, const vd_value *v, int *n,
                      const vd_cfg_entry *at, vd_err *err);
/* Typed values of a cfg into hp without the cross-key checks; loc[i] gets the entry that
 * set key i (NULL for defaults), lens[i] its list length. Unknown sections and keys fail. */
vd_status vd_hp_apply(vd_hparams *hp, const vd_cfg *cfg, const vd_cfg_entry **loc, int *lens,
                      vd_err *err);
/* Ranges of every key and the rules between keys; loc may be NULL. */
vd_status vd_hp_check(const vd_hparams *hp, const vd_cfg_entry *const *loc, vd_err *err);
/* Range check of one number of key k (item >= 0 names a list item in the message). */
vd_status vd_hp_check_range(const vd_hp_key *k, double x, const char *shown, int item,
                            const vd_cfg_entry *at, vd_err *err);
bool vd_hp_equal(const vd_hparams *a, const vd_hparams *b, const vd_hp_key *k);
void vd_hp_write_value(FILE *f, const vd_hparams *hp, const vd_hp_key *k);

#endif
