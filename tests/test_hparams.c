/* Typed hyper-parameters: reference defaults, the example configs, the canonical round trip
 * of every key, --set, each validation message, atomic saving and diffs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/hparams_table.h"
#include "vd_test.h"
#include "vdvae/config.h"

/* A small valid model: widths change only at strided levels, skips match, N_td = 4. */
static const char *const TINY =
    "[run]\nname = tiny\n"
    "[data]\ntarget_res = 8\n"
    "[model]\n"
    "input_conv_filters = 16\n"
    "up_strides = [1, 2, 2]\n"
    "up_n_blocks_per_res = [0] * 3\n"
    "up_n_blocks = [1] * 3\n"
    "up_n_layers = [1] * 3\n"
    "up_filters = [16, 32, 64]\n"
    "up_mid_filters_ratio = [0.5] * 3\n"
    "up_kernel_size = [3] * 3\n"
    "up_skip_filters = [32, 32, 64]\n"
    "down_strides = [2, 2, 1]\n"
    "down_n_blocks_per_res = [0, 1, 0]\n"
    "down_n_blocks = [1] * 3\n"
    "down_n_layers = [1] * 3\n"
    "down_filters = [64, 32, 32]\n"
    "down_mid_filters_ratio = [0.5] * 3\n"
    "down_kernel_size = [3] * 3\n"
    "down_latent_variates = [8] * 3\n";

static vd_hparams *new_hp(void) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    if (!hp) abort();
    return hp;
}

/* text (named t.cfg) plus overrides into hp. */
static vd_status load(vd_hparams *hp, const char *text, const char *const *sets, int n_sets,
                      vd_err *err) {
    vd_cfg cfg = {0};
    vd_status st = vd_cfg_parse(&cfg, text, strlen(text), "t.cfg", err);
    for (int i = 0; i < n_sets && !st; i++) st = vd_cfg_set(&cfg, sets[i], err);
    if (!st) st = vd_hparams_from_cfg(hp, &cfg, err);
    vd_cfg_free(&cfg);
    return st;
}

/* Loading text with one override (may be NULL) must fail with a message that starts with at
 * and contains frag. */
static void expect_invalid(const char *text, const char *set, const char *at, const char *frag) {
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    vd_status st = load(hp, text, &set, set ? 1 : 0, &err);
    const char *what = set ? set : text;
    CHECKF(st == VD_ERR_INVALID, "%s: status %d, want invalid", what, st);
    CHECKF(!strncmp(err.msg, at, strlen(at)), "%s: '%s' does not start with '%s'", what, err.msg, at);
    CHECKF(strstr(err.msg, frag) != NULL, "%s: '%s' lacks '%s'", what, err.msg, frag);
    /* a failed load leaves the struct alone */
    vd_hparams *zero = new_hp();
    CHECKF(!memcmp(hp, zero, sizeof *hp), "%s: a failed load changed the struct", what);
    free(zero);
    free(hp);
}

static void expect_set_invalid(const char *set, const char *frag) {
    expect_invalid(TINY, set, "--set:1:1: ", frag);
}

/* write -> parse -> from_cfg gives the same bytes, and writing again the same text. */
static void check_round_trip(const vd_hparams *hp, const char *what) {
    char *text = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(vd_hparams_write(hp, f) == VD_OK);
    fclose(f);
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_hparams *back = new_hp();
    vd_status st = vd_cfg_parse(&cfg, text, len, "canonical", &err);
    if (!st) st = vd_hparams_from_cfg(back, &cfg, &err);
    CHECKF(st == VD_OK, "%s: canonical text does not load: %s", what, err.msg);
    CHECKF(cfg.n == (size_t)vd_hp_n_keys, "%s: canonical text has %zu keys, the table %d", what,
           cfg.n, vd_hp_n_keys);
    CHECKF(!memcmp(hp, back, sizeof *hp), "%s: round trip changed the struct", what);
    char names[512] = "";
    CHECKF(vd_hparams_diff(hp, back, names, sizeof names) == 0, "%s: differ in %s", what, names);
    f = open_memstream(&again, &len2);
    vd_hparams_write(back, f);
    fclose(f);
    CHECKF(len == len2 && !memcmp(text, again, len), "%s: second write differs", what);
    vd_cfg_free(&cfg);
    free(back);
    free(text);
    free(again);
}

static void test_defaults(void) {
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    vd_hparams_defaults(hp);
    CHECKF(vd_hparams_validate(hp, &err) == VD_OK, "defaults invalid: %s", err.msg);
    CHECK(!strcmp(hp->run.name, "cifar10_baseline"));
    CHECK(hp->run.seed == 420 && hp->run.num_gpus == 2 && hp->run.num_cpus == 256);
    CHECK(hp->run.precision == VD_PREC_FP32 && !hp->run.checkpoint_activations);
    CHECK(hp->data.dataset_source == VD_DATA_CIFAR10 && hp->data.num_bits == 8);
    CHECK(hp->model.n_up == 33 && hp->model.n_down == 33);
    CHECK(hp->model.up_strides[11] == 2 && hp->model.up_strides[29] == 4);
    CHECK(hp->model.down_strides[3] == 4 && hp->model.down_n_blocks_per_res[15] == 4);
    CHECK(hp->model.up_kernel_size[29] == 3 && hp->model.up_kernel_size[30] == 1);
    CHECK(hp->model.up_strides[33] == 0); /* past the end stays zero */
    CHECK(hp->model.input_kernel_size[0] == 1 && hp->model.input_kernel_size[1] == 1);
    CHECK(hp->model.gradient_smoothing_beta == 0.6931472);
    CHECK(hp->loss.min_mol_logscale == -250.0 && hp->loss.variation_schedule == VD_BETA_LINEAR);
    CHECK(hp->optimizer.type == VD_OPT_ADAMAX && hp->optimizer.warmup_steps == 100.0);
    CHECK(hp->optimizer.epsilon == 1e-8 && hp->optimizer.decay_steps == 750000);
    CHECK(hp->init.batch_size == 1 && hp->train.batch_size == 32 && hp->val.batch_size == 64);
    CHECK(hp->synthesis.batch_size == 32 && hp->train.ema_decay == 0.9999);
    CHECK(vd_hparams_n_td(hp) == 47 && vd_hparams_latent_res(hp) == 1);
    CHECK(hp->synthesis.n_temperature_settings == 9);
    const vd_temp_setting *t = hp->synthesis.temperature_settings;
    CHECK(t[0].kind == VD_TEMP_CONST && t[0].t == 0.8 && t[3].kind == VD_TEMP_CONST && t[3].t == 1.0);
    CHECK(t[4].kind == VD_TEMP_LINEAR && t[4].first == 0.7 && t[4].last == 0.9);
    CHECK(t[8].kind == VD_TEMP_LINEAR && t[8].first == 0.8 && t[8].last == 0.9);
    check_round_trip(hp, "defaults");
    free(hp);
}

/* Every key once: poke a different value into its field, then the diff names exactly that
 * key and the canonical text carries it back (without validation, so any value goes). */
/* The first of the candidates within k's range (reading checks ranges). */
static double in_range(const vd_hp_key *k, const double *cand, int n) {
    for (int i = 0; i < n; i++)
        if (vd_hp_check_range(k, cand[i], "", -1, NULL, NULL) == VD_OK) return cand[i];
    CHECKF(0, "no candidate value in range for %s.%s", k->section, k->key);
    return cand[0];
}

static void poke(vd_hparams *hp, const vd_hp_key *k) {
    void *f = vd_hp_field(hp, k);
    double x = k->type == VD_HP_INT ? *(int *)f : k->type == VD_HP_FLOAT ? *(double *)f : 0;
    double ints[] = {x + 1, x - 1, 1}, floats[] = {x * 1.5 + 0.125, x * 0.5, x + 0.5};
    switch (k->type) {
    case VD_HP_BOOL: *(bool *)f = !*(bool *)f; break;
    case VD_HP_INT: *(int *)f = (int)in_range(k, ints, 3); break;
    case VD_HP_I64: *(int64_t *)f += 1; break;
    case VD_HP_FLOAT: *(double *)f = in_range(k, floats, 3); break;
    case VD_HP_STR:
        memset(f, 0, VD_NAME_MAX);
        snprintf(f, VD_NAME_MAX, "x_%s 'q' \\ #", k->key);
        break;
    case VD_HP_ENUM:
        for (const vd_hp_name *n = k->names; n->name; n++)
            if (n->value != *(int *)f) {
                *(int *)f = n->value;
                break;
            }
        break;
    case VD_HP_INT_LIST: ((int *)f)[0] += 1; break;
    case VD_HP_FLOAT_LIST: ((double *)f)[0] += 0.5; break;
    case VD_HP_PAIR: ((int *)f)[1] += 2; break;
    case VD_HP_TEMPS: hp->synthesis.temperature_settings[0].t += 0.5; break;
    }
}

static void test_every_key(void) {
    vd_hparams *base = new_hp(), *hp = new_hp(), *back = new_hp();
    vd_hparams_defaults(base);
    const vd_cfg_entry **loc = calloc((size_t)vd_hp_n_keys, sizeof *loc);
    int *lens = calloc((size_t)vd_hp_n_keys, sizeof *lens);
    for (int i = 0; i < vd_hp_n_keys; i++) {
        const vd_hp_key *k = &vd_hp_keys[i];
        memcpy(hp, base, sizeof *hp);
        poke(hp, k);
        char names[256] = "", want[128];
        snprintf(want, sizeof want, "%s.%s", k->section, k->key);
        CHECKF(vd_hparams_diff(base, hp, names, sizeof names) == 1 && !strcmp(names, want),
               "poking %s: diff says '%s'", want, names);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        vd_hparams_write(hp, f);
        fclose(f);
        CHECKF(strstr(text, k->key) != NULL, "%s missing from the canonical text", want);
        vd_cfg cfg = {0};
        vd_err err = {0};
        vd_hparams_defaults(back);
        vd_status st = vd_cfg_parse(&cfg, text, len, "canonical", &err);
        if (!st) st = vd_hp_apply(back, &cfg, loc, lens, &err);
        CHECKF(st == VD_OK, "%s: %s", want, err.msg);
        CHECKF(!memcmp(hp, back, sizeof *hp), "%s does not survive write and read", want);
        CHECKF(loc[i] != NULL && loc[i]->value.kind != VD_VAL_NONE, "%s was not read", want);
        vd_cfg_free(&cfg);
        free(text);
    }
    free(loc);
    free(lens);
    free(base);
    free(hp);
    free(back);
}

static void test_egs(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/egs/reference", src ? src : ".");
    DIR *d = opendir(dir);
    /* the reference configs ship with the repository: their absence is a failure */
    CHECKF(d != NULL, "%s: cannot open", dir);
    if (!d) return;
    vd_hparams *hp = new_hp(), *def = new_hp();
    vd_hparams_defaults(def);
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".cfg")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        vd_err err = {0};
        memset(hp, 0, sizeof *hp);
        vd_status st = vd_hparams_load(hp, path, NULL, 0, &err);
        CHECKF(st == VD_OK, "%s: %s", de->d_name, err.msg);
        if (st) continue;
        count++;
        check_round_trip(hp, de->d_name);
        const char *name = de->d_name;
        if (!strcmp(name, "cifar10_baseline.cfg")) {
            /* the reference's own hparams.cfg is this file: the defaults must equal it */
            char diff[512] = "";
            CHECKF(!memcmp(hp, def, sizeof *hp), "defaults differ from cifar10_baseline.cfg");
            CHECKF(vd_hparams_diff(hp, def, diff, sizeof diff) == 0, "differ: %s", diff);
            CHECK(hp->model.up_strides[11] == 2 && hp->model.n_up == 33 && hp->val.batch_size == 64);
            CHECK(hp->synthesis.temperature_settings[5].kind == VD_TEMP_LINEAR);
            CHECK(hp->synthesis.temperature_settings[5].first == 0.9);
        } else if (!strcmp(name, "binarized_mnist_baseline.cfg")) {
            CHECK(hp->data.dataset_source == VD_DATA_BINARIZED_MNIST && hp->data.channels == 1);
            CHECK(hp->model.n_up == 23 && hp->model.up_strides[0] == 2 && hp->model.up_strides[2] == 2);
            CHECK(hp->train.batch_size == 32 && hp->val.batch_size == 128);
            CHECK(hp->synthesis.batch_size == 256 && hp->optimizer.min_learning_rate == 1e-4);
            CHECK(hp->optimizer.gradient_clip_norm_value == 20.0 && hp->run.num_gpus == 1);
            CHECK(vd_hparams_n_td(hp) == 23 && vd_hparams_latent_res(hp) == 1);
        } else if (!strcmp(name, "celebAHQ256_5bits_baseline.cfg")) {
            CHECK(hp->data.num_bits == 5 && hp->data.target_res == 256);
            CHECK(hp->data.dataset_source == VD_DATA_CELEBAHQ && hp->model.n_up == 59);
            CHECK(hp->val.batch_size == 64 && vd_hparams_n_td(hp) == 66);
        } else if (!strcmp(name, "ffhq1024_baseline.cfg")) {
            CHECK(hp->data.target_res == 1024 && hp->model.input_conv_filters == 8);
            CHECK(hp->model.gradient_smoothing_beta == 0.4 && hp->optimizer.clip_gradient_norm);
        } else if (!strcmp(name, "ffhq256_5bits_C1.cfg")) {
            CHECK(hp->model.output_distribution_base == VD_BASE_LOGSTD);
            CHECK(!strcmp(hp->run.name, "ffhq256_5bits_incfilters"));
        } else if (!strcmp(name, "imagenet32_baseline.cfg")) {
            CHECK(hp->data.dataset_source == VD_DATA_IMAGENET && hp->val.batch_size == 128);
            CHECK(!strcmp(hp->data.train_data_path, "../datasets/imagenet_32/train_data/"));
        }
    }
    closedir(d);
    CHECKF(count == 20, "%d example configs loaded, want 20", count);
    free(hp);
    free(def);
}

static void test_tiny_and_sets(void) {
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    CHECKF(load(hp, TINY, NULL, 0, &err) == VD_OK, "%s", err.msg);
    CHECK(vd_hparams_n_td(hp) == 4 && vd_hparams_latent_res(hp) == 2 && hp->model.n_up == 3);
    CHECK(hp->model.up_strides[3] == 0 && hp->model.down_filters[2] == 32);
    check_round_trip(hp, "tiny");

    const char *sets[] = {
        "run.seed=7",
        "model.up_n_layers=[3]*3",
        "data.dataset_source=mnist",
        "data.channels=1",
        "run.name = my run  ",
        "optimizer.type=RAdam",
        "data.num_bits=5.",
        "optimizer.warmup_steps=10",
        "loss.variation_schedule=None",
        "model.input_kernel_size=3",
        "synthesis.temperature_settings=[[0.5, 0.6, 0.7], 0.9, ('linear', 0.1, 0.2)]",
    };
    int n = (int)(sizeof sets / sizeof sets[0]);
    CHECKF(load(hp, TINY, sets, n, &err) == VD_OK, "%s", err.msg);
    CHECK(hp->run.seed == 7 && hp->model.up_n_layers[2] == 3 && hp->model.down_n_layers[0] == 1);
    CHECK(hp->data.dataset_source == VD_DATA_MNIST && hp->data.channels == 1);
    CHECK(!strcmp(hp->run.name, "my run") && hp->optimizer.type == VD_OPT_RADAM);
    CHECK(hp->data.num_bits == 5 && hp->optimizer.warmup_steps == 10.0);
    CHECK(hp->loss.variation_schedule == VD_BETA_NONE);
    CHECK(hp->model.input_kernel_size[0] == 3 && hp->model.input_kernel_size[1] == 3);
    const vd_temp_setting *t = hp->synthesis.temperature_settings;
    CHECK(hp->synthesis.n_temperature_settings == 3);
    CHECK(t[0].kind == VD_TEMP_LIST && t[0].n == 3 && t[0].per_block[2] == 0.7);
    CHECK(t[1].kind == VD_TEMP_CONST && t[1].t == 0.9);
    CHECK(t[2].kind == VD_TEMP_LINEAR && t[2].first == 0.1 && t[2].last == 0.2);
    check_round_trip(hp, "tiny with overrides");

    /* single settings without a list */
    const char *one[] = {"synthesis.temperature_settings=('linear', 0.5, 1.0)"};
    CHECKF(load(hp, TINY, one, 1, &err) == VD_OK, "%s", err.msg);
    CHECK(hp->synthesis.n_temperature_settings == 1 && t[0].kind == VD_TEMP_LINEAR && t[0].last == 1.0);
    one[0] = "synthesis.temperature_settings=0.7";
    CHECKF(load(hp, TINY, one, 1, &err) == VD_OK, "%s", err.msg);
    CHECK(hp->synthesis.n_temperature_settings == 1 && t[0].kind == VD_TEMP_CONST && t[0].t == 0.7);
    /* an override replaces the file's value; the last override wins */
    const char *twice[] = {"run.seed=2", "run.seed=3"};
    CHECKF(load(hp, "[run]\nseed = 1\n", twice, 2, &err) == VD_OK, "%s", err.msg);
    CHECK(hp->run.seed == 3);
    free(hp);
}

static void test_key_errors(void) {
    expect_invalid("[modle]\nup_strides = [1]\n", NULL, "t.cfg:2:1: ",
                   "unknown section [modle] (key 'up_strides'); did you mean 'model'?");
    expect_invalid("[model]\nup_stride = [1]\n", NULL, "t.cfg:2:1: ",
                   "unknown key 'up_stride' in [model]; did you mean 'up_strides'?");
    expect_invalid("[run]\nSeed = 1\n", NULL, "t.cfg:2:1: ", "did you mean 'seed'?");
    expect_invalid("[model]\nbatch_size = 3\n", NULL, "t.cfg:2:1: ",
                   "unknown key 'batch_size' in [model]; did you mean 'init.batch_size'?");
    expect_invalid("[run]\nzzzzzzzzzzzzzzz = 1\n", NULL, "t.cfg:2:1: ", "unknown key 'zzzzzzzzzzzzzzz' in [run]");
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    CHECK(load(hp, "[run]\nzzzzzzzzzzzzzzz = 1\n", NULL, 0, &err) == VD_ERR_INVALID);
    CHECKF(!strstr(err.msg, "did you mean"), "no suggestion expected: %s", err.msg);
    CHECK(load(hp, "[xyzzyxyzzy]\na = 1\n", NULL, 0, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "unknown section [xyzzyxyzzy]") && !strstr(err.msg, "did you mean"), "%s", err.msg);
    free(hp);
    expect_set_invalid("run.sed=1", "unknown key 'sed' in [run]; did you mean 'seed'?");
}

static void test_type_errors(void) {
    expect_invalid("[run]\nseed = abc\n", NULL, "t.cfg:2:1: ", "run.seed expects an int, got string 'abc'");
    expect_invalid("[run]\n\n  seed = 'abc'\n", NULL, "t.cfg:3:3: ", "run.seed expects an int, got string 'abc'");
    expect_invalid("[data]\ntarget_res = 32.5\n", NULL, "t.cfg:2:1: ", "data.target_res expects an int, got float 32.5");
    expect_invalid("[data]\nnum_bits = 8.5\n", NULL, "t.cfg:2:1: ", "data.num_bits expects an int, got float 8.5");
    expect_invalid("[run]\nseed = True\n", NULL, "t.cfg:2:1: ", "run.seed expects an int, got True");
    expect_invalid("[data]\nrandom_horizontal_flip = 1\n", NULL, "t.cfg:2:1: ",
                   "data.random_horizontal_flip expects a bool (True or False), got int 1");
    expect_invalid("[optimizer]\nlearning_rate = '1e-3'\n", NULL, "t.cfg:2:1: ",
                   "optimizer.learning_rate expects a number, got string '1e-3'");
    expect_invalid("[run]\nname = 5\n", NULL, "t.cfg:2:1: ", "run.name expects a string, got int 5");
    expect_invalid("[model]\nup_strides = 1\n", NULL, "t.cfg:2:1: ", "model.up_strides expects a list of ints, got int 1");
    expect_invalid("[model]\nup_strides = [1, 'a']\n", NULL, "t.cfg:2:1: ",
                   "model.up_strides[1] expects an int, got string 'a'");
    expect_invalid("[model]\nup_mid_filters_ratio = [0.5, None]\n", NULL, "t.cfg:2:1: ",
                   "model.up_mid_filters_ratio[1] expects a number, got None");
    expect_invalid("[model]\ninput_kernel_size = (1, 2, 3)\n", NULL, "t.cfg:2:1: ",
                   "model.input_kernel_size expects a pair (h, w) or one int, got tuple (1, 2, 3)");
    expect_invalid("[synthesis]\ntemperature_settings = [('cubic', 1, 2)]\n", NULL, "t.cfg:2:1: ",
                   "synthesis.temperature_settings[0] expects a number, a list of numbers or ('linear', first, last)");
    expect_invalid("[synthesis]\ntemperature_settings = [0.5, ('linear', 1)]\n", NULL, "t.cfg:2:1: ",
                   "synthesis.temperature_settings[1] expects");
    expect_invalid("[synthesis]\ntemperature_settings = 'hot'\n", NULL, "t.cfg:2:1: ",
                   "synthesis.temperature_settings expects a number");
    expect_set_invalid("run.seed=abc", "run.seed expects an int, got string 'abc'");
    expect_set_invalid("model.input_conv_filters=2**40", "model.input_conv_filters must be between 1 and 65536, got 1099511627776");
    expect_invalid(TINY, "run.seed=2**63", "--set:1:11: ", "integer overflow");
}

static void test_length_errors(void) {
    expect_invalid("[model]\nup_n_blocks = [1] * 32\n", NULL, "t.cfg:2:1: ",
                   "model.up_n_blocks has 32 items but model.up_strides has 33");
    expect_invalid("[model]\ndown_latent_variates = [1] * 34\n", NULL, "t.cfg:2:1: ",
                   "model.down_latent_variates has 34 items but model.down_strides has 33");
    expect_set_invalid("model.up_n_layers=[3]*2", "model.up_n_layers has 2 items but model.up_strides has 3");
    expect_set_invalid("model.up_strides=[1]*300", "model.up_strides has 300 items; it needs 1 to 256");
    expect_set_invalid("model.up_strides=[]", "model.up_strides has 0 items; it needs 1 to 256");
    /* all down lists 4 long: each group agrees, but the two groups do not */
    const char *down4[] = {"model.down_strides=[2, 2, 1, 1]", "model.down_n_blocks_per_res=[0]*4",
                           "model.down_n_blocks=[1]*4", "model.down_n_layers=[1]*4",
                           "model.down_filters=[64, 32, 32, 32]", "model.down_mid_filters_ratio=[0.5]*4",
                           "model.down_kernel_size=[3]*4", "model.down_latent_variates=[8]*4"};
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    CHECK(load(hp, TINY, down4, 8, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "--set:1:1: model.down_strides has 4 items but model.up_strides has 3"),
           "%s", err.msg);
    free(hp);
}

static void test_model_rules(void) {
    expect_set_invalid("model.down_strides=[2, 1, 2]",
                       "model.down_strides must be model.up_strides reversed: down_strides[1] = 1 but up_strides[1] = 2");
    expect_set_invalid("model.down_strides=[2, 2, 2]",
                       "prod(model.up_strides) = 4 but prod(model.down_strides) = 8");
    expect_set_invalid("data.target_res=6",
                       "prod(model.down_strides) = 4 does not divide data.target_res = 6");
    /* without an override, the later of the two lines */
    expect_invalid("[model]\nup_strides = [1] * 33\n", NULL, "t.cfg:2:1: ",
                   "prod(model.up_strides) = 1 but prod(model.down_strides) = 32");
    expect_set_invalid("model.up_filters=[24, 32, 64]",
                       "model.up_filters[0] = 24 but 16 channels come in and model.up_strides[0] is 1");
    expect_set_invalid("model.down_filters=[64, 32, 48]",
                       "model.down_filters[2] = 48 but 32 channels come in and model.down_strides[2] is 1");
    expect_set_invalid("model.up_skip_filters=[32, 32, 48]",
                       "model.up_skip_filters[2] = 48 but the top-down level that takes it has model.down_filters[0] = 64");
    expect_set_invalid("model.up_mid_filters_ratio=[0.01, 0.5, 0.5]",
                       "model.up_mid_filters_ratio[0] leaves no channels in the bottleneck of 16 channels");
    expect_set_invalid("data.dataset_source='binarized_mnist'",
                       "data.channels = 3 but dataset binarized_mnist has 1");
    const char *zero[] = {"loss.vae_beta_anneal_start=0", "loss.vae_beta_anneal_steps=0"};
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    CHECK(load(hp, TINY, zero, 2, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "--set:1:1: the Linear beta schedule divides by"), "%s", err.msg);
    free(hp);
    expect_set_invalid("synthesis.temperature_settings=[[0.5] * 10]",
                       "synthesis.temperature_settings[0] has 10 temperatures but the model has 3 top-down levels");
    expect_invalid("[synthesis]\ntemperature_settings = [0.5, [1.0] * 47]\n", NULL, "t.cfg:2:1: ",
                   "synthesis.temperature_settings[1] has 47 temperatures but the model has 33");
    expect_set_invalid("synthesis.temperature_settings=[]", "synthesis.temperature_settings has 0 settings");
    expect_set_invalid("synthesis.temperature_settings=[0.5] * 65", "synthesis.temperature_settings has 65 settings");
    expect_set_invalid("synthesis.temperature_settings=[0.5, -0.5]",
                       "synthesis.temperature_settings[1] must be >= 0, got -0.5");
}

static void test_range_errors(void) {
    expect_set_invalid("data.num_bits=9", "data.num_bits must be between 1 and 8, got 9");
    expect_set_invalid("data.num_bits=0", "data.num_bits must be between 1 and 8, got 0");
    expect_set_invalid("data.channels=2", "data.channels must be 1 or 3, got 2");
    expect_set_invalid("data.channels=4", "data.channels must be 1 or 3, got 4");
    expect_set_invalid("model.up_filters=[0, 32, 64]", "model.up_filters[0] must be between 1 and 65536, got 0");
    expect_set_invalid("model.up_kernel_size=[3, 0, 3]", "model.up_kernel_size[1] must be between 1 and 255, got 0");
    expect_set_invalid("model.up_strides=[0, 2, 2]", "model.up_strides[0] must be between 1 and 65536, got 0");
    expect_set_invalid("model.input_kernel_size=(0, 1)", "model.input_kernel_size[0] must be between 1 and 255, got 0");
    expect_set_invalid("model.down_mid_filters_ratio=[0.5, 0, 0.5]",
                       "model.down_mid_filters_ratio[1] must be in (0, 1024], got 0.0");
    expect_set_invalid("model.gradient_smoothing_beta=-1", "model.gradient_smoothing_beta must be > 0, got -1.0");
    expect_set_invalid("train.batch_size=0", "train.batch_size must be between 1 and 1048576, got 0");
    expect_set_invalid("val.batch_size=-2", "val.batch_size must be between 1 and 1048576, got -2");
    expect_set_invalid("run.num_gpus=-1", "run.num_gpus must be between 0 and 65536, got -1");
    expect_set_invalid("optimizer.beta1=1.0", "optimizer.beta1 must be in [0, 1), got 1.0");
    expect_set_invalid("optimizer.decay_steps=0", "optimizer.decay_steps must be >= 1, got 0");
    expect_set_invalid("synthesis.div_stats_subset_ratio=0", "synthesis.div_stats_subset_ratio must be in (0, 1], got 0.0");
    expect_set_invalid("data.dataset_source='cifar10'",
                       "data.dataset_source must be one of 'binarized_mnist', 'mnist', 'fashion_mnist', "
                       "'cifar-10', 'imagenet', 'celebA', 'celebAHQ', 'ffhq', 'custom', got string "
                       "'cifar10'; did you mean 'cifar-10'?");
    expect_set_invalid("model.distribution_base='stdd'",
                       "model.distribution_base must be one of 'std', 'logstd', got string 'stdd'");
    expect_set_invalid("loss.variation_schedule='linear'", "did you mean 'Linear'?");
    expect_set_invalid("optimizer.type='SGD'", "optimizer.type must be one of 'Adamax', 'Adam', 'Radam', 'RAdam'");
    expect_set_invalid("optimizer.learning_rate_scheme='linear'",
                       "optimizer.learning_rate_scheme must be one of 'cosine', 'constant', 'noam', 'exponential'");
    expect_set_invalid("synthesis.synthesis_mode='train'",
                       "synthesis.synthesis_mode must be one of 'reconstruction', 'generation', 'div_stats', 'encoding', 'decoding'");
    expect_set_invalid("run.precision='fp16'", "run.precision must be one of 'fp32', 'bf16', got string 'fp16'");
    expect_set_invalid("run.precision=32", "got int 32");
    expect_set_invalid("run.name=''", "run.name must not be empty");
    expect_set_invalid("run.name='a/b'", "run.name must not contain '/'");
    char longname[400] = "run.name=";
    memset(longname + 9, 'n', 300);
    expect_set_invalid(longname, "run.name is too long (300 bytes; at most 255)");
}

static void test_validate_struct(void) {
    vd_hparams *hp = new_hp();
    vd_err err = {0};
    vd_hparams_defaults(hp);
    hp->data.num_bits = 9;
    CHECK(vd_hparams_validate(hp, &err) == VD_ERR_INVALID);
    CHECKF(!strcmp(err.msg, "data.num_bits must be between 1 and 8, got 9"), "%s", err.msg);
    vd_hparams_defaults(hp);
    hp->model.n_up = 0;
    CHECK(vd_hparams_validate(hp, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "model.up_strides has 0 items"), "%s", err.msg);
    vd_hparams_defaults(hp);
    hp->optimizer.learning_rate = INFINITY;
    CHECK(vd_hparams_validate(hp, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "optimizer.learning_rate must be finite"), "%s", err.msg);
    vd_hparams_defaults(hp);
    hp->data.dataset_source = (vd_dataset)42;
    CHECK(vd_hparams_validate(hp, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "data.dataset_source has no valid value (42)"), "%s", err.msg);
    vd_hparams_defaults(hp);
    hp->synthesis.temperature_settings[2].kind = VD_TEMP_LIST;
    hp->synthesis.temperature_settings[2].n = 3;
    CHECK(vd_hparams_validate(hp, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "temperature_settings[2] has 3 temperatures but the model has 33"), "%s", err.msg);
    free(hp);
}

static void test_save_and_diff(void) {
    const char *base = getenv("VD_BUILD_DIR");
    char dir[4096], path[4200], missing[4300];
    snprintf(dir, sizeof dir, "%s/vd_hparams_XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        CHECKF(0, "mkdtemp %s failed", dir);
        return;
    }
    snprintf(path, sizeof path, "%s/hparams-x.cfg", dir);
    vd_hparams *hp = new_hp(), *back = new_hp();
    vd_err err = {0};
    CHECK(load(hp, TINY, NULL, 0, &err) == VD_OK);
    CHECKF(vd_hparams_save(hp, path, &err) == VD_OK, "%s", err.msg);
    hp->run.seed = 5; /* saving again replaces the file */
    CHECKF(vd_hparams_save(hp, path, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_hparams_load(back, path, NULL, 0, &err) == VD_OK, "%s", err.msg);
    CHECK(!memcmp(hp, back, sizeof *hp) && back->run.seed == 5);
    int files = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) files += de->d_name[0] != '.';
    if (d) closedir(d);
    CHECKF(files == 1, "%d files after saving, want 1 (temporary files left behind?)", files);
    snprintf(missing, sizeof missing, "%s/no/such/dir/h.cfg", dir);
    CHECK(vd_hparams_save(hp, missing, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, missing) != NULL, "%s", err.msg);
    CHECK(vd_hparams_load(back, missing, NULL, 0, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, missing) != NULL, "%s", err.msg);
    const char *bad_set[] = {"run.seed"};
    CHECK(vd_hparams_load(back, path, bad_set, 1, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "--set:1:1: expected section.key=value"), "%s", err.msg);
    unlink(path);
    rmdir(dir);

    /* diff: names in table order, truncated output, NULL output */
    vd_hparams_defaults(hp);
    vd_hparams_defaults(back);
    back->model.up_strides[5] = 3;
    back->run.seed = 1;
    back->synthesis.batch_size = 7;
    char names[256];
    CHECK(vd_hparams_diff(hp, back, names, sizeof names) == 3);
    CHECKF(!strcmp(names, "run.seed, model.up_strides, synthesis.batch_size"), "%s", names);
    char small[10];
    CHECK(vd_hparams_diff(hp, back, small, sizeof small) == 3);
    CHECK(strlen(small) == 9 && !strncmp(small, "run.seed,", 9));
    CHECK(vd_hparams_diff(hp, back, NULL, 0) == 3);
    back->model.n_down = 32; /* a shorter list differs even where its items agree */
    CHECK(vd_hparams_diff(hp, back, NULL, 0) == 3 + 8);
    CHECK(vd_hparams_diff(hp, hp, names, sizeof names) == 0 && names[0] == '\0');
    free(hp);
    free(back);
}

int main(void) {
    test_defaults();
    test_every_key();
    test_egs();
    test_tiny_and_sets();
    test_key_errors();
    test_type_errors();
    test_length_errors();
    test_model_rules();
    test_range_errors();
    test_validate_struct();
    test_save_and_diff();
    return vd_test_result("test_hparams");
}
