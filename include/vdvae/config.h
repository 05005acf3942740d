/* The .cfg reader and the typed hyper-parameters. A .cfg file is INI sections whose values
 * are Python literal expressions (docs/model.md section 1); vd_cfg holds the evaluated values
 * with their source positions, vd_hparams the typed, validated result. */
#ifndef VDVAE_CONFIG_H
#define VDVAE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vdvae/enums.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- evaluated values ---------------------------------------------------------------- */

typedef enum vd_value_kind {
    VD_VAL_NONE = 0,
    VD_VAL_BOOL,
    VD_VAL_INT,
    VD_VAL_FLOAT,
    VD_VAL_STR,   /* quoted string or bare word */
    VD_VAL_LIST,
    VD_VAL_TUPLE,
} vd_value_kind;

typedef struct vd_value {
    vd_value_kind kind;
    bool b;
    int64_t i;
    double f;
    char *s;                 /* VD_VAL_STR: owned, NUL-terminated */
    struct vd_value *items;  /* VD_VAL_LIST / VD_VAL_TUPLE: owned array of n values */
    size_t n;
} vd_value;

void vd_value_free(vd_value *v);
/* Python repr-like text of v ("[1, 2]", "('linear', 0.7, 0.9)", "'std'", "True", "8.0"). */
void vd_value_print(FILE *f, const vd_value *v);
const char *vd_value_kind_str(vd_value_kind k);

/* ---- a parsed file ---------------------------------------------------------------------- */

typedef struct vd_cfg_entry {
    char *section;   /* without brackets */
    char *key;
    vd_value value;
    char *file;      /* where the value came from: a path or "--set" */
    int line, col;   /* 1-based position of the key */
} vd_cfg_entry;

typedef struct vd_cfg {
    vd_cfg_entry *entries; /* in file order; a key set again by a later file or --set replaces
                            * the entry (a key twice in one file is an error) */
    size_t n, cap;
} vd_cfg;

/* Parse text (not necessarily NUL-terminated) named `filename` in messages and add its
 * entries to cfg (start from vd_cfg cfg = {0}). On failure cfg is unchanged and err says
 * "file:line:col: what". Limits: nesting depth 64, any list at most VD_CFG_MAX_ITEMS items
 * (so a huge repetition count is an error, not an allocation), 64 MiB of values per parse. */
#define VD_CFG_MAX_ITEMS 65536
vd_status vd_cfg_parse(vd_cfg *cfg, const char *text, size_t len, const char *filename,
                       vd_err *err);
vd_status vd_cfg_parse_file(vd_cfg *cfg, const char *path, vd_err *err);
/* "section.key=value" with the same expression syntax; adds or replaces that entry. Messages
 * name "--set" as the file, with columns counted in the assignment. */
vd_status vd_cfg_set(vd_cfg *cfg, const char *assignment, vd_err *err);
const vd_cfg_entry *vd_cfg_find(const vd_cfg *cfg, const char *section, const char *key);
void vd_cfg_free(vd_cfg *cfg);

/* ---- typed hyper-parameters ------------------------------------------------------------ */

#define VD_MAX_LEVELS 256     /* longest up_/down_ list */
#define VD_MAX_TEMPS 64       /* most temperature_settings entries */
#define VD_NAME_MAX 256

typedef enum vd_dataset {
    VD_DATA_BINARIZED_MNIST, VD_DATA_MNIST, VD_DATA_FASHION_MNIST, VD_DATA_CIFAR10,
    VD_DATA_IMAGENET, VD_DATA_CELEBA, VD_DATA_CELEBAHQ, VD_DATA_FFHQ, VD_DATA_CUSTOM,
} vd_dataset;

typedef enum vd_beta_sched { VD_BETA_NONE, VD_BETA_LINEAR, VD_BETA_LOGISTIC } vd_beta_sched;
typedef enum vd_lr_sched { VD_LR_COSINE, VD_LR_CONSTANT, VD_LR_NOAM, VD_LR_EXPONENTIAL } vd_lr_sched;
typedef enum vd_synth_mode {
    VD_SYNTH_RECONSTRUCTION, VD_SYNTH_GENERATION, VD_SYNTH_DIV_STATS, VD_SYNTH_ENCODING,
    VD_SYNTH_DECODING,
} vd_synth_mode;

/* One entry of temperature_settings: a float for every block, a list with one per level
 * (len(down_strides), shared by the level's blocks), or ('linear', first, last). */
typedef enum vd_temp_kind { VD_TEMP_CONST, VD_TEMP_LIST, VD_TEMP_LINEAR } vd_temp_kind;
typedef struct vd_temp_setting {
    vd_temp_kind kind;
    double t;                     /* CONST */
    double first, last;           /* LINEAR */
    int n;                        /* LIST: n values in per_block, one per level (== len(down_strides)) */
    double per_block[VD_MAX_LEVELS];
} vd_temp_setting;

typedef struct vd_hparams {
    struct vd_hp_run {
        char name[VD_NAME_MAX];
        int64_t seed;
        int num_gpus, num_cpus, max_allowed_checkpoints;
        vd_precision precision;       /* ours: 'fp32' | 'bf16' */
        bool checkpoint_activations;  /* ours: recompute block activations in backward */
        bool allow_tf32;              /* ours: cuda's fp32 convolutions may use TF32 math */
    } run;
    struct vd_hp_data {
        vd_dataset dataset_source;
        char train_data_path[VD_NAME_MAX], val_data_path[VD_NAME_MAX],
            synthesis_data_path[VD_NAME_MAX];
        int target_res, channels;
        int num_bits;                 /* written 8. in the configs; must be whole, 1..8 */
        bool random_horizontal_flip;
    } data;
    struct vd_hp_model {
        bool stable_init, initialize_prior_weights_as_zero, use_1x1_conv;
        vd_dist_base distribution_base, output_distribution_base;
        double gradient_smoothing_beta, output_gradient_smoothing_beta;
        int input_conv_filters;
        int input_kernel_size[2];
        int n_up;                     /* length of every up_* list */
        int up_strides[VD_MAX_LEVELS], up_n_blocks_per_res[VD_MAX_LEVELS],
            up_n_blocks[VD_MAX_LEVELS], up_n_layers[VD_MAX_LEVELS], up_filters[VD_MAX_LEVELS],
            up_kernel_size[VD_MAX_LEVELS], up_skip_filters[VD_MAX_LEVELS];
        double up_mid_filters_ratio[VD_MAX_LEVELS];
        bool use_residual_distribution;
        int n_down;                   /* length of every down_* list */
        int down_strides[VD_MAX_LEVELS], down_n_blocks_per_res[VD_MAX_LEVELS],
            down_n_blocks[VD_MAX_LEVELS], down_n_layers[VD_MAX_LEVELS],
            down_filters[VD_MAX_LEVELS], down_kernel_size[VD_MAX_LEVELS],
            down_latent_variates[VD_MAX_LEVELS];
        double down_mid_filters_ratio[VD_MAX_LEVELS];
        int output_kernel_size[2];
        int num_output_mixtures;
    } model;
    struct vd_hp_loss {
        double min_mol_logscale;
        vd_beta_sched variation_schedule;
        int64_t vae_beta_anneal_start, vae_beta_anneal_steps;
        double vae_beta_min;
        int64_t vae_beta_activation_steps;
        double vae_beta_growth_rate;
        bool use_gamma_schedule;
        int64_t gamma_max_steps;
        bool scaled_gamma, use_weight_decay;
        double l2_weight;
    } loss;
    struct vd_hp_metrics {
        double latent_active_threshold;
    } metrics;
    struct vd_hp_optimizer {
        vd_opt_type type;
        vd_lr_sched learning_rate_scheme;
        double learning_rate, warmup_steps;
        int64_t decay_steps, decay_start;
        double min_learning_rate, decay_rate, beta1, beta2, epsilon;
        bool clip_gradient_norm;
        double gradient_clip_norm_value;
        bool gradient_skip;
        double gradient_skip_threshold;
    } optimizer;
    struct vd_hp_init {
        int batch_size;
    } init;
    struct vd_hp_train {
        int64_t total_train_steps;
        int batch_size;
        double ema_decay;
        bool resume_from_ema;
        int64_t logging_interval_in_steps, checkpoint_and_eval_interval_in_steps;
        int64_t skip_warning_after; /* ours: warn once after this many skipped updates in a row (0: never) */
        int64_t skip_stop_after;    /* ours: stop (exit 1) after this many in a row (0: never) */
    } train;
    struct vd_hp_val {
        int64_t n_samples_for_validation;
        int batch_size;
    } val;
    struct vd_hp_synthesis {
        vd_synth_mode synthesis_mode;
        bool load_ema_weights;
        double variate_masks_quantile;
        bool save_target_in_reconstruction, mask_reconstruction;
        double div_stats_subset_ratio;
        int n_generation_batches;
        int n_temperature_settings;
        vd_temp_setting temperature_settings[VD_MAX_TEMPS];
        double output_temperature;
        int batch_size;
    } synthesis;
} vd_hparams;

/* The sections by name, for code that works on one of them. */
typedef struct vd_hp_run vd_hp_run;
typedef struct vd_hp_data vd_hp_data;
typedef struct vd_hp_model vd_hp_model;
typedef struct vd_hp_loss vd_hp_loss;
typedef struct vd_hp_metrics vd_hp_metrics;
typedef struct vd_hp_optimizer vd_hp_optimizer;
typedef struct vd_hp_init vd_hp_init;
typedef struct vd_hp_train vd_hp_train;
typedef struct vd_hp_val vd_hp_val;
typedef struct vd_hp_synthesis vd_hp_synthesis;

/* The reference implementation's defaults (its hparams.cfg), used for keys a file omits. */
void vd_hparams_defaults(vd_hparams *hp);
/* Typed, validated hparams from a parsed cfg: unknown sections/keys (with the closest known
 * key suggested), wrong types, list lengths that must match, stride products, ranges. */
/* On failure *hp is unchanged. */
vd_status vd_hparams_from_cfg(vd_hparams *hp, const vd_cfg *cfg, vd_err *err);
/* The checks of vd_hparams_from_cfg for a struct built or changed in code (no positions). */
vd_status vd_hparams_validate(const vd_hparams *hp, vd_err *err);
/* Convenience: parse a file, apply "section.key=value" overrides, validate. */
vd_status vd_hparams_load(vd_hparams *hp, const char *path, const char *const *overrides,
                          int n_overrides, vd_err *err);
/* Canonical text that vd_hparams_from_cfg reads back to an identical struct: every key,
 * sections in order, lists in full. VD_ERR_IO when the stream reports an error. */
vd_status vd_hparams_write(const vd_hparams *hp, FILE *f);
/* vd_hparams_write to path atomically: a temporary file beside it, fsync, rename. */
vd_status vd_hparams_save(const vd_hparams *hp, const char *path, vd_err *err);
/* The keys whose values differ, as "section.key" names joined by ", " into out (truncated to
 * cap bytes, always NUL-terminated when cap > 0; out may be NULL when cap is 0). Returns how
 * many keys differ. */
int vd_hparams_diff(const vd_hparams *a, const vd_hparams *b, char *out, size_t cap);
/* Number of top-down blocks N_td = sum(down_n_blocks_per_res) + len(down_strides). */
int vd_hparams_n_td(const vd_hparams *hp);
/* Latent (deepest) resolution: target_res / prod(down_strides). */
int vd_hparams_latent_res(const vd_hparams *hp);

#ifdef __cplusplus
}
#endif
#endif
