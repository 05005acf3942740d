/* Architecture builder: parameter counts of the reference configs, a tiny config counted by
 * hand, state_dict names and order, init and weight-decay flags, layout, FLOPs, bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_test.h"
#include "vdvae/model.h"

static int find(const vd_arch *a, const char *name) {
    int i = vd_arch_find_param(a, name);
    CHECKF(i >= 0, "no parameter %s", name);
    return i < 0 ? 0 : i;
}

static int64_t sum_numel(const vd_arch *a) {
    int64_t n = 0;
    for (int i = 0; i < a->n_params; i++) n += a->params[i].numel;
    return n;
}

static void check_layout(const vd_arch *a) {
    int64_t at = 0;
    for (int i = 0; i < a->n_params; i++) {
        CHECKF(a->params[i].offset == at, "%s at %lld, expected %lld", a->params[i].name,
               (long long)a->params[i].offset, (long long)at);
        at += a->params[i].numel;
    }
    CHECK(at == a->total_floats);
    int64_t per_block = 0;
    for (int i = 0; i < a->n_blocks; i++) per_block += a->blocks[i].n_params;
    CHECK(per_block == a->total_floats);
}

/* Two levels each way at 4x4, counted by hand in the comments. */
static vd_hparams *tiny_hparams(void) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    hp->data.dataset_source = VD_DATA_MNIST;
    hp->data.target_res = 4;
    hp->data.channels = 1;
    hp->train.batch_size = 5;
    vd_hp_model *m = &hp->model;
    m->stable_init = m->initialize_prior_weights_as_zero = m->use_1x1_conv = true;
    m->input_conv_filters = 4;
    m->input_kernel_size[0] = m->input_kernel_size[1] = 3;
    m->output_kernel_size[0] = m->output_kernel_size[1] = 1;
    m->num_output_mixtures = 2;
    m->n_up = m->n_down = 2;
    int up[][2] = {{2, 1}, {1, 0}, {1, 1}, {1, 0}, {6, 6}, {3, 1}, {4, 6}};
    int *upd[] = {m->up_strides, m->up_n_blocks_per_res, m->up_n_blocks, m->up_n_layers,
                  m->up_filters, m->up_kernel_size, m->up_skip_filters};
    int down[][2] = {{1, 2}, {1, 0}, {1, 1}, {0, 1}, {6, 4}, {1, 3}, {2, 3}};
    int *downd[] = {m->down_strides, m->down_n_blocks_per_res, m->down_n_blocks, m->down_n_layers,
                    m->down_filters, m->down_kernel_size, m->down_latent_variates};
    for (int k = 0; k < 7; k++)
        for (int i = 0; i < 2; i++) upd[k][i] = up[k][i], downd[k][i] = down[k][i];
    m->up_mid_filters_ratio[0] = m->up_mid_filters_ratio[1] = 0.5;
    m->down_mid_filters_ratio[0] = m->down_mid_filters_ratio[1] = 0.5;
    return hp;
}

static void check_tiny_counts(const vd_arch *a) {
    /* input conv 4*1*3*3+4 = 40; levels_up.0.0 cell 4->2 (10), 2->2 3x3 (38), 2->4 (12) = 60;
     * levels_up_downsample.0: 60 + skip 4->4 (20) + pool 4->6 k2 (102) = 182;
     * levels_up_downsample.1: cell 6->3 (21), 3->6 (24) + skip 6->6 (42) = 87; h0 1*6*2*2 = 24;
     * levels_down_upsample.0 and levels_down.0.0: residual 45, posterior 12->3 (39), 3->6 (24),
     * prior 6->3 (21), 3->12 (48), projections 28 + 28 + z 2->6 (18): 251 each;
     * levels_down_upsample.1: scale_bias 64 + unpool 6->4 (28), residual 60, posterior
     * 8->2 (18), 38, 12, prior 10, 38, 2->8 (24), projections 30 + 30 + 16: 368;
     * output conv 4->8 (40). */
    static const int64_t block_params[] = {40, 60, 182, 87, 24, 251, 251, 368, 40};
    CHECK(a->n_blocks == 9);
    for (int i = 0; i < a->n_blocks && i < 9; i++)
        CHECKF(a->blocks[i].n_params == block_params[i], "block %d: %lld", i,
               (long long)a->blocks[i].n_params);
    CHECKF(sum_numel(a) == 1303, "tiny total %lld", (long long)sum_numel(a));
    CHECKF(a->n_params == 90, "tiny tensors %d", a->n_params);
    CHECK(a->n_convs == 44 && a->n_cells == 12);
    CHECK(a->n_td == 3 && a->latent_res == 2 && a->out_ch == 8 && a->default_batch == 5);
    static const vd_block_kind kinds[] = {VD_BLOCK_INPUT_CONV, VD_BLOCK_UP, VD_BLOCK_UP_SKIP,
                                          VD_BLOCK_UP_SKIP, VD_BLOCK_H0, VD_BLOCK_DOWN,
                                          VD_BLOCK_DOWN, VD_BLOCK_DOWN, VD_BLOCK_OUTPUT_CONV};
    for (int i = 0; i < a->n_blocks && i < 9; i++) CHECKF(a->blocks[i].kind == kinds[i], "block %d kind", i);
    check_layout(a);
}

static void check_tiny_names(const vd_arch *a) {
    CHECK(!strcmp(a->params[0].name, "bottom_up.levels_up.0.0.residual_block.0.convs.1.weight"));
    CHECK(!strcmp(a->params[6].name, "bottom_up.levels_up_downsample.0.residual_block.0.convs.1.weight"));
    CHECK(!strcmp(a->params[a->n_params - 1].name, "top_down.output_conv.bias"));
    int in = find(a, "bottom_up.input_conv.weight"), h0 = find(a, "top_down.trainable_h");
    CHECK(h0 == in + 2);
    int sb = find(a, "top_down.levels_down_upsample.1.unpool.scale_bias");
    CHECK(sb + 1 == find(a, "top_down.levels_down_upsample.1.unpool.ops.0.weight"));
    CHECK(sb + 3 == find(a, "top_down.levels_down_upsample.1.residual_block.0.convs.1.weight"));
    int post = find(a, "top_down.levels_down.0.0.posterior_net.0.convs.1.weight");
    CHECK(post + 4 == find(a, "top_down.levels_down.0.0.prior_net.0.convs.1.weight"));
    const vd_param *p = &a->params[sb];
    CHECK(p->ndim == 4 && p->shape[0] == 1 && p->shape[1] == 4 && p->shape[2] == 4 && p->shape[3] == 4);
    p = &a->params[find(a, "bottom_up.levels_up_downsample.0.pool.ops.0.weight")];
    CHECK(p->shape[0] == 6 && p->shape[1] == 4 && p->shape[2] == 2 && p->shape[3] == 2);
    p = &a->params[find(a, "top_down.levels_down.0.0.z_projection.weight")];
    CHECK(p->shape[0] == 6 && p->shape[1] == 2 && p->shape[2] == 1);
    p = &a->params[find(a, "top_down.levels_down_upsample.0.prior_net.0.convs.3.bias")];
    CHECK(p->ndim == 1 && p->shape[0] == 12);
}

static void check_init(const vd_arch *a, const char *name, vd_init_kind kind, double bound,
                       double scale, bool decay) {
    const vd_param *p = &a->params[find(a, name)];
    CHECKF(p->init == kind, "%s: init %s", name, vd_init_kind_str(p->init));
    CHECKF(fabs(p->init_bound - bound) < 1e-12, "%s: bound %g, expected %g", name, p->init_bound, bound);
    CHECKF(fabs(p->init_scale - scale) < 1e-12, "%s: scale %g, expected %g", name, p->init_scale, scale);
    CHECKF(p->weight_decay == decay, "%s: weight_decay %d", name, p->weight_decay);
}

static void check_tiny_init(const vd_arch *a) {
    double td = sqrt(1.0 / 3.0);
    const char *up = "bottom_up.levels_up.0.0.residual_block.0";
    char n[160];
    snprintf(n, sizeof n, "%s.convs.1.weight", up);
    check_init(a, n, VD_INIT_TORCH_WEIGHT, 0.5, 1, true);
    snprintf(n, sizeof n, "%s.convs.1.bias", up);
    check_init(a, n, VD_INIT_TORCH_BIAS, 0.5, 1, false);
    snprintf(n, sizeof n, "%s.convs.3.weight", up);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / 36), 1, true);
    snprintf(n, sizeof n, "%s.convs.5.weight", up);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, 1.0, td, true);
    snprintf(n, sizeof n, "%s.convs.5.bias", up);
    check_init(a, n, VD_INIT_ZEROS, 0, 1, false);
    const char *d = "top_down.levels_down_upsample.1";
    snprintf(n, sizeof n, "%s.prior_net.0.convs.5.weight", d);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (2 + 8)), 0, true);
    snprintf(n, sizeof n, "%s.posterior_net.0.convs.5.weight", d);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (2 + 4)), 1, true);
    snprintf(n, sizeof n, "%s.z_projection.weight", d);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (3 + 4)), td, false);
    snprintf(n, sizeof n, "%s.prior_layer.projection.weight", d);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (4 + 6)), 1, false);
    snprintf(n, sizeof n, "%s.unpool.ops.0.weight", d);
    check_init(a, n, VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (6 + 4)), 1, true);
    snprintf(n, sizeof n, "%s.unpool.scale_bias", d);
    check_init(a, n, VD_INIT_ZEROS, 0, 1, false);
    check_init(a, "bottom_up.levels_up_downsample.0.pool.ops.0.weight", VD_INIT_XAVIER_UNIFORM,
               sqrt(6.0 / (16 + 24)), 1, true);
    check_init(a, "bottom_up.levels_up_downsample.0.skip_projection.weight", VD_INIT_XAVIER_UNIFORM,
               sqrt(6.0 / 8), 1, false);
    check_init(a, "top_down.trainable_h", VD_INIT_H0_UNIFORM, sqrt(3.0 / 24), 1, false);
    check_init(a, "bottom_up.input_conv.weight", VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / (9 + 36)), 1, false);
    check_init(a, "top_down.output_conv.weight", VD_INIT_XAVIER_UNIFORM, sqrt(6.0 / 12), 1, false);
}

static void check_tiny_flops(const vd_arch *a) {
    const vd_block *in = &a->blocks[0];
    const vd_conv *c = &a->convs[in->conv];
    CHECK(c->kh == 3 && c->pad_top == 1 && c->pad_bottom == 1 && c->pad_left == 1);
    CHECKF(vd_conv_flops(c) == 2.0 * 16 * 4 * 9, "input conv flops %g", vd_conv_flops(c));
    CHECK(in->fwd_flops == vd_conv_flops(c));
    const vd_conv *pool = &a->convs[a->blocks[2].resample];
    CHECK(pool->stride == 2 && pool->res_in == 4 && pool->res_out == 2 && pool->pad_top == 0);
    CHECK(vd_conv_flops(pool) == 2.0 * 4 * 6 * 4 * 4);
    const vd_block *d = &a->blocks[7];
    CHECK(d->res_in == 2 && d->res_out == 4 && d->c_in == 6 && d->c_out == 4 && d->skip == 1);
    CHECK(d->skip_ch == 4 && d->n_variates == 3 && d->scale_bias >= 0 && d->resample >= 0);
    CHECK(a->convs[d->resample].res_in == 2 && a->convs[d->resample].res_out == 2);
    CHECK(a->cells[d->posterior_cell].c_in == 8 && a->cells[d->posterior_cell].c_mid == 2);
    CHECK(a->cells[d->prior_cell].c_out == 8 && a->blocks[3].skip == 0 && a->blocks[2].skip == 1);
    double sum = 0;
    for (int i = 0; i < a->n_convs; i++) sum += vd_conv_flops(&a->convs[i]);
    CHECK(fabs(sum - a->fwd_flops) <= 1e-9 * sum);
    vd_arch_memory m;
    vd_arch_memory_plan(a, 3, &m);
    CHECK(m.state == 20.0 * 1303 && m.activations == 3 * a->act_bytes && a->act_bytes > 0);
}

/* With 3x3-only cells, a 2x2 kernel shows where each conv puts its odd padding pixel. */
static void check_even_kernel(void) {
    vd_hparams *hp = tiny_hparams();
    hp->model.use_1x1_conv = false;
    hp->model.up_kernel_size[0] = 2;
    vd_arch a;
    vd_err err = {0};
    CHECKF(vd_arch_build(&a, hp, &err) == VD_OK, "%s", err.msg);
    const vd_cell *cell = &a.cells[a.blocks[1].first_cell];
    const vd_conv *first = &a.convs[cell->first_conv], *mid = first + 1;
    CHECK(first->kh == 2 && first->pad_top == 0 && first->pad_bottom == 1 && first->pad_right == 1);
    CHECK(mid->kh == 2 && mid->pad_top == 1 && mid->pad_bottom == 0 && mid->pad_left == 1);
    CHECK(a.params[first->weight].shape[2] == 2 && a.params[first->weight].shape[1] == 4);
    vd_arch_free(&a);
    free(hp);
}

static void expect_invalid(vd_hparams *hp, const char *needle) {
    vd_arch a;
    vd_err err = {0};
    vd_status s = vd_arch_build(&a, hp, &err);
    CHECKF(s == VD_ERR_INVALID, "expected VD_ERR_INVALID mentioning %s, got %d", needle, s);
    CHECKF(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    if (s == VD_OK) vd_arch_free(&a);
    free(hp);
}

static void check_bad_input(void) {
    vd_hparams *hp = tiny_hparams();
    hp->model.down_strides[1] = 4;
    expect_invalid(hp, "model.down_strides");
    hp = tiny_hparams();
    hp->model.up_skip_filters[0] = 7;
    expect_invalid(hp, "model.up_skip_filters[0]");
    hp = tiny_hparams();
    hp->model.down_mid_filters_ratio[1] = 0.1;
    expect_invalid(hp, "model.down_mid_filters_ratio[1]");
    hp = tiny_hparams();
    hp->model.up_strides[0] = 3;
    expect_invalid(hp, "model.up_strides[0]");
    hp = tiny_hparams();
    hp->model.up_strides[0] = hp->model.down_strides[1] = 1;
    hp->model.up_strides[1] = hp->model.down_strides[0] = 2;
    expect_invalid(hp, "model.up_filters[0]");
    hp = tiny_hparams();
    hp->model.n_down = 1;
    expect_invalid(hp, "model.down_strides");
    hp = tiny_hparams();
    hp->model.up_n_layers[0] = 1 << 30;
    expect_invalid(hp, "model.up_n_layers[0]");
    hp = tiny_hparams();
    hp->model.up_n_blocks_per_res[0] = 4000;
    hp->model.up_n_layers[0] = 200;
    expect_invalid(hp, "parameter tensors");
}

static void check_tiny(void) {
    vd_hparams *hp = tiny_hparams();
    vd_arch a;
    vd_err err = {0};
    vd_status s = vd_arch_build(&a, hp, &err);
    CHECKF(s == VD_OK, "%s", err.msg);
    if (s == VD_OK) {
        check_tiny_counts(&a);
        check_tiny_names(&a);
        check_tiny_init(&a);
        check_tiny_flops(&a);
        vd_arch_free(&a);
    }
    free(hp);
    check_even_kernel();
    check_bad_input();
}

/* cifar10_baseline against names and shapes read off the reference modules. */
static void check_cifar10(const vd_arch *a) {
    CHECK(!strcmp(a->params[0].name, "bottom_up.levels_up_downsample.0.residual_block.0.convs.1.weight"));
    CHECK(a->params[0].shape[0] == 96 && a->params[0].shape[1] == 384);
    /* 33 skip blocks of 4 + 1 convs, 4 pools: 338 tensors before the input conv */
    CHECK(!strcmp(a->params[338].name, "bottom_up.input_conv.weight"));
    CHECK(!strcmp(a->params[340].name, "top_down.trainable_h"));
    CHECK(a->params[340].shape[1] == 384 && a->params[340].shape[2] == 1);
    /* levels_down comes before levels_down_upsample in the reference state_dict */
    CHECK(!strcmp(a->params[341].name, "top_down.levels_down.15.0.residual_block.0.convs.1.weight"));
    CHECK(!strcmp(a->params[a->n_params - 2].name, "top_down.output_conv.weight"));
    CHECK(a->params[a->n_params - 2].shape[0] == 100);
    CHECK(!strcmp(a->params[a->n_params - 3].name, "top_down.levels_down_upsample.32.z_projection.bias"));
    int sb = find(a, "top_down.levels_down_upsample.3.unpool.scale_bias");
    CHECK(a->params[sb].shape[1] == 384 && a->params[sb].shape[2] == 4 && a->params[sb].shape[3] == 4);
    int w = find(a, "top_down.levels_down.15.3.residual_block.0.convs.3.weight");
    CHECK(a->params[w].shape[2] == 3 && a->params[w].weight_decay);
    CHECK(a->n_td == 47 && a->latent_res == 1 && a->out_ch == 100);
    int post = find(a, "top_down.levels_down_upsample.0.posterior_net.0.convs.1.weight");
    CHECK(a->params[post].shape[0] == 96 && a->params[post].shape[1] == 768);
}

/* The 20 configs of egs/reference/ against param_counts.txt (counted with the reference PyTorch
 * code): a missing table, row or config is a failure, since they ship with the repository. */
#define N_REFERENCE_CONFIGS 20

static void check_reference_counts(const char *src) {
    char path[4096], line[1024], cfg[256];
    char listed[N_REFERENCE_CONFIGS][256];
    snprintf(path, sizeof path, "%s/egs/reference/param_counts.txt", src);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s: cannot open", path);
    if (!f) return;
    int n = 0;
    long long want, want_tensors;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0') continue;
        if (sscanf(line, "%255s %lld %lld", cfg, &want, &want_tensors) != 3) {
            CHECKF(0, "param_counts.txt: unreadable row: %s", line);
            continue;
        }
        if (n < N_REFERENCE_CONFIGS) snprintf(listed[n], sizeof listed[n], "%s", cfg);
        n++;
        snprintf(path, sizeof path, "%s/egs/reference/%s", src, cfg);
        vd_hparams *hp = calloc(1, sizeof *hp);
        vd_err err = {0};
        vd_arch a;
        vd_status s = vd_hparams_load(hp, path, NULL, 0, &err);
        if (!s) s = vd_arch_build(&a, hp, &err);
        CHECKF(s == VD_OK, "%s: %s", cfg, err.msg);
        if (s == VD_OK) {
            CHECKF(sum_numel(&a) == want, "%s: %lld parameters, reference %lld", cfg,
                   (long long)sum_numel(&a), want);
            CHECKF(a.n_params == want_tensors, "%s: %d tensors, reference %lld", cfg, a.n_params, want_tensors);
            check_layout(&a);
            if (!strcmp(cfg, "cifar10_baseline.cfg")) check_cifar10(&a);
            vd_arch_free(&a);
        }
        free(hp);
    }
    fclose(f);
    CHECKF(n == N_REFERENCE_CONFIGS, "%d configs in param_counts.txt, want %d", n, N_REFERENCE_CONFIGS);
    /* rows must be distinct, so 20 rows mean 20 configs */
    for (int i = 0; i < n && i < N_REFERENCE_CONFIGS; i++)
        for (int j = 0; j < i; j++) CHECKF(strcmp(listed[i], listed[j]), "%s listed twice", listed[i]);
}

int main(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    check_tiny();
    check_reference_counts(src);
    return vd_test_result("test_arch");
}
