/* The hyper-parameter table: every key's section, type, field, reference default (the
 * reference implementation's own hparams.cfg) and allowed range, in canonical order. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/hparams_table.h"

_Static_assert(sizeof(vd_dataset) == sizeof(int) && sizeof(vd_dist_base) == sizeof(int) &&
                   sizeof(vd_beta_sched) == sizeof(int) && sizeof(vd_opt_type) == sizeof(int) &&
                   sizeof(vd_lr_sched) == sizeof(int) && sizeof(vd_synth_mode) == sizeof(int) &&
                   sizeof(vd_precision) == sizeof(int),
               "enum fields are stored through int pointers");

static const vd_hp_name datasets[] = {
    {"binarized_mnist", VD_DATA_BINARIZED_MNIST}, {"mnist", VD_DATA_MNIST},
    {"fashion_mnist", VD_DATA_FASHION_MNIST}, {"cifar-10", VD_DATA_CIFAR10},
    {"imagenet", VD_DATA_IMAGENET}, {"celebA", VD_DATA_CELEBA}, {"celebAHQ", VD_DATA_CELEBAHQ},
    {"ffhq", VD_DATA_FFHQ}, {"custom", VD_DATA_CUSTOM}, {NULL, 0}};
static const vd_hp_name bases[] = {{"std", VD_BASE_STD}, {"logstd", VD_BASE_LOGSTD}, {NULL, 0}};
static const vd_hp_name beta_scheds[] = {
    {"None", VD_BETA_NONE}, {"Linear", VD_BETA_LINEAR}, {"Logistic", VD_BETA_LOGISTIC}, {NULL, 0}};
static const vd_hp_name optimizers[] = {{"Adamax", VD_OPT_ADAMAX}, {"Adam", VD_OPT_ADAM},
                                        {"Radam", VD_OPT_RADAM}, {"RAdam", VD_OPT_RADAM},
                                        {NULL, 0}};
static const vd_hp_name lr_scheds[] = {{"cosine", VD_LR_COSINE}, {"constant", VD_LR_CONSTANT},
                                       {"noam", VD_LR_NOAM}, {"exponential", VD_LR_EXPONENTIAL},
                                       {NULL, 0}};
static const vd_hp_name synth_modes[] = {
    {"reconstruction", VD_SYNTH_RECONSTRUCTION}, {"generation", VD_SYNTH_GENERATION},
    {"div_stats", VD_SYNTH_DIV_STATS}, {"encoding", VD_SYNTH_ENCODING},
    {"decoding", VD_SYNTH_DECODING}, {NULL, 0}};
static const vd_hp_name precisions[] = {{"fp32", VD_PREC_FP32}, {"bf16", VD_PREC_BF16}, {NULL, 0}};

static bool one_or_three(double x) { return x == 1 || x == 3; }

#define OFF(field) offsetof(vd_hparams, field)
#define INF INFINITY
/* Rows by type: section, key, field, default, then the range where there is one. */
#define B(s, k, f, d) {s, k, VD_HP_BOOL, OFF(f), d, 0, 0, false, false, NULL, VD_HP_SCALAR, NULL, NULL}
#define I(...) I_(__VA_ARGS__) /* expands FILTERS etc. before counting arguments */
#define I_(s, k, f, d, lo, hi) {s, k, VD_HP_INT, OFF(f), d, lo, hi, false, false, NULL, VD_HP_SCALAR, NULL, NULL}
#define L(s, k, f, d, lo) {s, k, VD_HP_I64, OFF(f), d, lo, INF, false, false, NULL, VD_HP_SCALAR, NULL, NULL}
#define F(s, k, f, d, lo, hi, lo_open, hi_open) \
    {s, k, VD_HP_FLOAT, OFF(f), d, lo, hi, lo_open, hi_open, NULL, VD_HP_SCALAR, NULL, NULL}
#define S(s, k, f, d) {s, k, VD_HP_STR, OFF(f), d, 0, 0, false, false, NULL, VD_HP_SCALAR, NULL, NULL}
#define E(s, k, f, d, names) {s, k, VD_HP_ENUM, OFF(f), d, 0, 0, false, false, names, VD_HP_SCALAR, NULL, NULL}
#define IL(...) IL_(__VA_ARGS__)
#define IL_(s, k, f, d, lo, hi, g) {s, k, VD_HP_INT_LIST, OFF(f), d, lo, hi, false, false, NULL, g, NULL, NULL}
#define FL(s, k, f, d, g) {s, k, VD_HP_FLOAT_LIST, OFF(f), d, 0, 1024, true, false, NULL, g, NULL, NULL}
#define P(s, k, f, d) {s, k, VD_HP_PAIR, OFF(f), d, 1, 255, false, false, NULL, VD_HP_SCALAR, NULL, NULL}

#define FILTERS 1, 65536
#define KERNEL 1, 255
#define BLOCKS 0, 1024
#define BATCH 1, 1 << 20

const vd_hp_key vd_hp_keys[] = {
    S("run", "name", run.name, "cifar10_baseline"),
    L("run", "seed", run.seed, "420", -INF),
    I("run", "num_gpus", run.num_gpus, "2", 0, 65536),
    I("run", "num_cpus", run.num_cpus, "256", 0, 1 << 20),
    I("run", "max_allowed_checkpoints", run.max_allowed_checkpoints, "5", 0, INT_MAX),
    E("run", "precision", run.precision, "'fp32'", precisions),
    B("run", "checkpoint_activations", run.checkpoint_activations, "False"),
    B("run", "allow_tf32", run.allow_tf32, "True"),

    E("data", "dataset_source", data.dataset_source, "'cifar-10'", datasets),
    S("data", "train_data_path", data.train_data_path, "'../datasets/imagenet_32/train_data/'"),
    S("data", "val_data_path", data.val_data_path, "'../datasets/imagenet_32/val_data/'"),
    S("data", "synthesis_data_path", data.synthesis_data_path, "'../datasets/imagenet_32/val_data/'"),
    I("data", "target_res", data.target_res, "32", 1, 65536),
    {"data", "channels", VD_HP_INT, OFF(data.channels), "3", 1, 3, false, false, NULL,
     VD_HP_SCALAR, "1 or 3", one_or_three},
    I("data", "num_bits", data.num_bits, "8.", 1, 8),
    B("data", "random_horizontal_flip", data.random_horizontal_flip, "True"),

    B("model", "stable_init", model.stable_init, "True"),
    B("model", "initialize_prior_weights_as_zero", model.initialize_prior_weights_as_zero, "False"),
    B("model", "use_1x1_conv", model.use_1x1_conv, "True"),
    E("model", "distribution_base", model.distribution_base, "'std'", bases),
    E("model", "output_distribution_base", model.output_distribution_base, "'std'", bases),
    F("model", "gradient_smoothing_beta", model.gradient_smoothing_beta, "0.6931472", 0, INF, true, false),
    F("model", "output_gradient_smoothing_beta", model.output_gradient_smoothing_beta, "0.6931472", 0, INF, true, false),
    I("model", "input_conv_filters", model.input_conv_filters, "384", FILTERS),
    P("model", "input_kernel_size", model.input_kernel_size, "(1, 1)"),
    IL("model", "up_strides", model.up_strides,
       "[1] * 11 + [2] + [1] * 6 + [2] + [1] * 6 + [2] + [1] * 3 + [4] + [1] * 3", 1, 65536, VD_HP_UP),
    IL("model", "up_n_blocks_per_res", model.up_n_blocks_per_res, "[0] * 33", BLOCKS, VD_HP_UP),
    IL("model", "up_n_blocks", model.up_n_blocks, "[1] * 33", BLOCKS, VD_HP_UP),
    IL("model", "up_n_layers", model.up_n_layers, "[2] * 33", BLOCKS, VD_HP_UP),
    IL("model", "up_filters", model.up_filters, "[384] * 33", FILTERS, VD_HP_UP),
    FL("model", "up_mid_filters_ratio", model.up_mid_filters_ratio, "[0.25] * 33", VD_HP_UP),
    IL("model", "up_kernel_size", model.up_kernel_size, "[3] * 30 + [1] * 3", KERNEL, VD_HP_UP),
    IL("model", "up_skip_filters", model.up_skip_filters, "[384] * 33", FILTERS, VD_HP_UP),
    B("model", "use_residual_distribution", model.use_residual_distribution, "False"),
    IL("model", "down_strides", model.down_strides,
       "[1] * 3 + [4] + [1] * 3 + [2] + [1] * 6 + [2] + [1] * 6 + [2] + [1] * 11", 1, 65536, VD_HP_DOWN),
    IL("model", "down_n_blocks_per_res", model.down_n_blocks_per_res,
       "[0] * 3 + [0] + [0] * 3 + [0] + [0] * 6 + [0] + [4] + [0] * 5 + [0] + [10] + [0] * 10",
       BLOCKS, VD_HP_DOWN),
    IL("model", "down_n_blocks", model.down_n_blocks, "[1] * 33", BLOCKS, VD_HP_DOWN),
    IL("model", "down_n_layers", model.down_n_layers, "[2] * 33", BLOCKS, VD_HP_DOWN),
    IL("model", "down_filters", model.down_filters, "[384] * 33", FILTERS, VD_HP_DOWN),
    FL("model", "down_mid_filters_ratio", model.down_mid_filters_ratio, "[0.25] * 33", VD_HP_DOWN),
    IL("model", "down_kernel_size", model.down_kernel_size, "[1] * 3 + [3] * 30", KERNEL, VD_HP_DOWN),
    IL("model", "down_latent_variates", model.down_latent_variates, "[32] * 33", FILTERS, VD_HP_DOWN),
    P("model", "output_kernel_size", model.output_kernel_size, "(1, 1)"),
    I("model", "num_output_mixtures", model.num_output_mixtures, "10", 1, 1024),

    F("loss", "min_mol_logscale", loss.min_mol_logscale, "-250.", -INF, INF, false, false),
    E("loss", "variation_schedule", loss.variation_schedule, "'Linear'", beta_scheds),
    L("loss", "vae_beta_anneal_start", loss.vae_beta_anneal_start, "21", 0),
    L("loss", "vae_beta_anneal_steps", loss.vae_beta_anneal_steps, "5000", 0),
    F("loss", "vae_beta_min", loss.vae_beta_min, "1e-4", 0, 1, false, false),
    L("loss", "vae_beta_activation_steps", loss.vae_beta_activation_steps, "10000", 0),
    F("loss", "vae_beta_growth_rate", loss.vae_beta_growth_rate, "1e-5", -INF, INF, false, false),
    B("loss", "use_gamma_schedule", loss.use_gamma_schedule, "True"),
    L("loss", "gamma_max_steps", loss.gamma_max_steps, "10000", 0),
    B("loss", "scaled_gamma", loss.scaled_gamma, "True"),
    B("loss", "use_weight_decay", loss.use_weight_decay, "True"),
    F("loss", "l2_weight", loss.l2_weight, "1e-2", 0, INF, false, false),

    F("metrics", "latent_active_threshold", metrics.latent_active_threshold, "1e-4", 0, INF, false, false),

    E("optimizer", "type", optimizer.type, "'Adamax'", optimizers),
    E("optimizer", "learning_rate_scheme", optimizer.learning_rate_scheme, "'cosine'", lr_scheds),
    F("optimizer", "learning_rate", optimizer.learning_rate, "1e-3", 0, INF, false, false),
    F("optimizer", "warmup_steps", optimizer.warmup_steps, "100.", 0, INF, false, false),
    L("optimizer", "decay_steps", optimizer.decay_steps, "750000", 1),
    L("optimizer", "decay_start", optimizer.decay_start, "50000", 0),
    F("optimizer", "min_learning_rate", optimizer.min_learning_rate, "2e-4", 0, INF, false, false),
    F("optimizer", "decay_rate", optimizer.decay_rate, "0.5", 0, INF, true, false),
    F("optimizer", "beta1", optimizer.beta1, "0.9", 0, 1, false, true),
    F("optimizer", "beta2", optimizer.beta2, "0.999", 0, 1, false, true),
    F("optimizer", "epsilon", optimizer.epsilon, "1e-8", 0, INF, false, false),
    B("optimizer", "clip_gradient_norm", optimizer.clip_gradient_norm, "False"),
    F("optimizer", "gradient_clip_norm_value", optimizer.gradient_clip_norm_value, "300.", 0, INF, true, false),
    B("optimizer", "gradient_skip", optimizer.gradient_skip, "True"),
    F("optimizer", "gradient_skip_threshold", optimizer.gradient_skip_threshold, "800.", 0, INF, true, false),

    I("init", "batch_size", init.batch_size, "1", BATCH),

    L("train", "total_train_steps", train.total_train_steps, "800000", 0),
    I("train", "batch_size", train.batch_size, "32", BATCH),
    F("train", "ema_decay", train.ema_decay, "0.9999", 0, 1, false, false),
    B("train", "resume_from_ema", train.resume_from_ema, "False"),
    L("train", "logging_interval_in_steps", train.logging_interval_in_steps, "1", 1),
    L("train", "checkpoint_and_eval_interval_in_steps", train.checkpoint_and_eval_interval_in_steps, "10000", 1),
    /* ours: a run whose every update is skipped (openai/vdvae#25) warns, then stops */
    L("train", "skip_warning_after", train.skip_warning_after, "20", 0),
    L("train", "skip_stop_after", train.skip_stop_after, "500", 0),

    L("val", "n_samples_for_validation", val.n_samples_for_validation, "5000", 0),
    I("val", "batch_size", val.batch_size, "32 * 2", BATCH),

    E("synthesis", "synthesis_mode", synthesis.synthesis_mode, "'reconstruction'", synth_modes),
    B("synthesis", "load_ema_weights", synthesis.load_ema_weights, "True"),
    F("synthesis", "variate_masks_quantile", synthesis.variate_masks_quantile, "0.03", 0, 1, false, false),
    B("synthesis", "save_target_in_reconstruction", synthesis.save_target_in_reconstruction, "False"),
    B("synthesis", "mask_reconstruction", synthesis.mask_reconstruction, "False"),
    F("synthesis", "div_stats_subset_ratio", synthesis.div_stats_subset_ratio, "0.2", 0, 1, true, false),
    I("synthesis", "n_generation_batches", synthesis.n_generation_batches, "1", 0, 1 << 20),
    {"synthesis", "temperature_settings", VD_HP_TEMPS, OFF(synthesis.temperature_settings),
     "[0.8, 0.85, 0.9, 1., ('linear', 0.7, 0.9), ('linear', 0.9, 0.7), ('linear', 0.8, 1.), "
     "('linear', 1., 0.8), ('linear', 0.8, 0.9)]",
     0, INF, false, false, NULL, VD_HP_SCALAR, NULL, NULL},
    F("synthesis", "output_temperature", synthesis.output_temperature, "1.", 0, INF, false, false),
    I("synthesis", "batch_size", synthesis.batch_size, "32", BATCH),
};
const int vd_hp_n_keys = (int)(sizeof vd_hp_keys / sizeof vd_hp_keys[0]);

const char *const vd_hp_sections[] = {"run", "data", "model", "loss", "metrics", "optimizer",
                                      "init", "train", "val", "synthesis", NULL};

int vd_hp_index(const char *section, const char *key) {
    for (int i = 0; i < vd_hp_n_keys; i++)
        if (!strcmp(vd_hp_keys[i].section, section) && !strcmp(vd_hp_keys[i].key, key)) return i;
    return -1;
}

const vd_hp_key *vd_hp_find(const char *section, const char *key) {
    int i = vd_hp_index(section, key);
    return i < 0 ? NULL : &vd_hp_keys[i];
}

void *vd_hp_field(vd_hparams *hp, const vd_hp_key *k) { return (char *)hp + k->offset; }

const void *vd_hp_cfield(const vd_hparams *hp, const vd_hp_key *k) {
    return (const char *)hp + k->offset;
}

int vd_hp_list_len(const vd_hparams *hp, const vd_hp_key *k) {
    return k->group == VD_HP_UP ? hp->model.n_up : hp->model.n_down;
}

const char *vd_hp_enum_name(const vd_hp_key *k, int value) {
    for (const vd_hp_name *n = k->names; n->name; n++)
        if (n->value == value) return n->name;
    return NULL;
}

size_t vd_hp_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1; /* too long to be a typo of a known name */
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *vd_hp_where(const vd_cfg_entry *e, char *buf, size_t cap) {
    if (!e) return "";
    snprintf(buf, cap, "%s:%d:%d: ", e->file, e->line, e->col);
    return buf;
}
