/* Builds vd_arch from hparams: parameters are appended in the order of the reference's
 * state_dict (so a checkpoint is a renaming), blocks are placed in execution order. */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/arch_internal.h"

typedef struct builder {
    vd_arch *a;
    const vd_hparams *hp;
    const vd_arch_levels *lv;
    double td_scale;      /* sqrt(1 / N_td) */
    double cell_scale;    /* last conv of every residual_block cell */
    int up_start[VD_MAX_LEVELS], down_start[VD_MAX_LEVELS], h0_block;
} builder;

/* Where the odd padding pixel goes: the reference's Conv2d pads ceil(p/2) first, a plain
 * torch Conv2d(padding='same') floor(p/2) first. */
typedef enum pad_side { PAD_EXTRA_FIRST, PAD_EXTRA_LAST } pad_side;

typedef struct conv_spec {
    int c_in, c_out, kh, kw, stride, res_in;
    bool torch_init;      /* PyTorch default init instead of Xavier/zeros */
    double scale;         /* weight init scale */
    bool decay;           /* weight takes decoupled weight decay */
} conv_spec;

/* Through va_list because GCC cannot bound these names; vd_arch_check bounds every index
 * in them, so they always fit. */
static void name_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void name_fmt(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(out, VD_PARAM_NAME_MAX, fmt, ap);
    va_end(ap);
    assert(len > 0 && len < VD_PARAM_NAME_MAX);
    (void)len;
}

static int add_param(builder *b, int block, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add_param(builder *b, int block, int ndim, const int64_t *shape, const char *fmt, ...) {
    vd_arch *a = b->a;
    vd_param *p = &a->params[a->n_params];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    assert(len > 0 && len < (int)sizeof p->name);
    (void)len;
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) p->numel *= p->shape[d] = shape[d];
    p->offset = a->total_floats;
    a->total_floats += p->numel;
    p->init_scale = 1.0;
    p->block = block;
    return a->n_params++;
}

/* A conv's weight "<prefix>.weight" (OIHW) and bias "<prefix>.bias". */
static int add_conv(builder *b, int block, const conv_spec *s, pad_side side, const char *prefix) {
    vd_arch *a = b->a;
    int64_t wshape[4] = {s->c_out, s->c_in, s->kh, s->kw}, bshape[1] = {s->c_out};
    int64_t fan_in = (int64_t)s->c_in * s->kh * s->kw, fan_out = (int64_t)s->c_out * s->kh * s->kw;
    int w = add_param(b, block, 4, wshape, "%s.weight", prefix);
    int bi = add_param(b, block, 1, bshape, "%s.bias", prefix);
    vd_param *pw = &a->params[w], *pb = &a->params[bi];
    pw->fan_in = pb->fan_in = fan_in;
    pw->fan_out = pb->fan_out = fan_out;
    pw->init = s->torch_init ? VD_INIT_TORCH_WEIGHT : VD_INIT_XAVIER_UNIFORM;
    pw->init_bound = s->torch_init ? 1.0 / sqrt((double)fan_in) : sqrt(6.0 / (double)(fan_in + fan_out));
    pw->init_scale = s->scale;
    pw->weight_decay = s->decay;
    pb->init = s->torch_init ? VD_INIT_TORCH_BIAS : VD_INIT_ZEROS;
    pb->init_bound = s->torch_init ? 1.0 / sqrt((double)fan_in) : 0.0;

    vd_conv *c = &a->convs[a->n_convs];
    *c = (vd_conv){.c_in = s->c_in, .c_out = s->c_out, .kh = s->kh, .kw = s->kw,
                   .stride = s->stride, .res_in = s->res_in, .res_out = s->res_in / s->stride,
                   .weight = w, .bias = bi};
    int ph = s->kh > s->stride ? s->kh - s->stride : 0, pw_ = s->kw > s->stride ? s->kw - s->stride : 0;
    c->pad_top = side == PAD_EXTRA_FIRST ? (ph + 1) / 2 : ph / 2;
    c->pad_left = side == PAD_EXTRA_FIRST ? (pw_ + 1) / 2 : pw_ / 2;
    c->pad_bottom = ph - c->pad_top;
    c->pad_right = pw_ - c->pad_left;
    return a->n_convs++;
}

typedef struct cell_spec {
    int n_layers, c_in, kernel, res;
    double ratio, out_ratio, scale;
    bool residual;
} cell_spec;

/* ResidualCell "<prefix>.convs.{1,3,5,...}": the SiLUs sit at the even indices. */
static int add_cell(builder *b, int block, const cell_spec *s, const char *prefix) {
    vd_arch *a = b->a;
    bool one = b->hp->model.use_1x1_conv;
    int mid = (int)((double)s->c_in * s->ratio), out = (int)((double)s->c_in * s->out_ratio);
    int k1 = one ? 1 : s->kernel, n = s->n_layers + 2;
    vd_cell *cell = &a->cells[a->n_cells];
    *cell = (vd_cell){.first_conv = a->n_convs, .n_convs = n, .c_in = s->c_in, .c_mid = mid,
                      .c_out = out, .res = s->res, .residual = s->residual};
    char name[VD_PARAM_NAME_MAX];
    for (int j = 0; j < n; j++) {
        bool first = j == 0, last = j == n - 1;
        int k = first || last ? k1 : s->kernel;
        conv_spec cs = {.c_in = first ? s->c_in : mid, .c_out = last ? out : mid, .kh = k, .kw = k,
                        .stride = 1, .res_in = s->res, .torch_init = first,
                        .scale = last ? s->scale : 1.0, .decay = true};
        name_fmt(name, "%s.convs.%d", prefix, 2 * j + 1);
        add_conv(b, block, &cs, first ? PAD_EXTRA_LAST : PAD_EXTRA_FIRST, name);
    }
    return a->n_cells++;
}

static void add_residual_block(builder *b, int block, int n, const cell_spec *s, const char *prefix) {
    char name[VD_PARAM_NAME_MAX];
    b->a->blocks[block].first_cell = b->a->n_cells;
    b->a->blocks[block].n_cells = n;
    for (int k = 0; k < n; k++) {
        name_fmt(name, "%s.residual_block.%d", prefix, k);
        add_cell(b, block, s, name);
    }
}

static vd_block *init_block(builder *b, int index, vd_block_kind kind, int level) {
    vd_block *bl = &b->a->blocks[index];
    *bl = (vd_block){.kind = kind, .level = level, .stride = 1, .first_cell = -1, .conv = -1,
                     .resample = -1, .scale_bias = -1, .h0 = -1, .prior_cell = -1,
                     .posterior_cell = -1, .prior_proj = -1, .posterior_proj = -1, .z_proj = -1,
                     .skip = -1, .skip_ch = -1};
    return bl;
}

/* LevelBlockUp: residual_block, then (skip blocks) skip_projection and pool. */
static void add_up_block(builder *b, int level, int index, bool skip, const char *prefix) {
    const vd_hp_model *m = &b->hp->model;
    int c = b->lv->in_up[level], res = b->lv->up_res[level], stride = skip ? m->up_strides[level] : 1;
    vd_block *bl = init_block(b, index, skip ? VD_BLOCK_UP_SKIP : VD_BLOCK_UP, level);
    bl->res_in = res;
    bl->res_out = res / stride;
    bl->c_in = c;
    bl->c_out = stride > 1 ? m->up_filters[level] : c;
    bl->stride = stride;
    cell_spec cs = {.n_layers = m->up_n_layers[level], .c_in = c, .kernel = m->up_kernel_size[level],
                    .res = res, .ratio = m->up_mid_filters_ratio[level], .out_ratio = 1.0,
                    .scale = b->cell_scale, .residual = true};
    add_residual_block(b, index, m->up_n_blocks[level], &cs, prefix);
    if (!skip) return;
    char name[VD_PARAM_NAME_MAX];
    bl->skip = m->n_up - 1 - level;
    bl->skip_ch = m->up_skip_filters[level];
    conv_spec sp = {.c_in = c, .c_out = bl->skip_ch, .kh = 1, .kw = 1, .stride = 1, .res_in = res, .scale = 1};
    name_fmt(name, "%s.skip_projection", prefix);
    bl->conv = add_conv(b, index, &sp, PAD_EXTRA_FIRST, name);
    if (stride == 1) return;
    conv_spec pool = {.c_in = c, .c_out = bl->c_out, .kh = stride, .kw = stride, .stride = stride,
                      .res_in = res, .scale = 1, .decay = true};
    name_fmt(name, "%s.pool.ops.0", prefix);
    bl->resample = add_conv(b, index, &pool, PAD_EXTRA_FIRST, name);
}

static void add_bottom_up(builder *b) {
    const vd_hp_model *m = &b->hp->model;
    char prefix[VD_PARAM_NAME_MAX];
    for (int i = 0; i < m->n_up; i++)
        for (int j = 0; j < m->up_n_blocks_per_res[i]; j++) {
            name_fmt(prefix, "bottom_up.levels_up.%d.%d", i, j);
            add_up_block(b, i, b->up_start[i] + j, false, prefix);
        }
    for (int i = 0; i < m->n_up; i++) {
        name_fmt(prefix, "bottom_up.levels_up_downsample.%d", i);
        add_up_block(b, i, b->up_start[i] + m->up_n_blocks_per_res[i], true, prefix);
    }
    vd_block *bl = init_block(b, 0, VD_BLOCK_INPUT_CONV, -1);
    conv_spec cs = {.c_in = b->hp->data.channels, .c_out = m->input_conv_filters,
                    .kh = m->input_kernel_size[0], .kw = m->input_kernel_size[1], .stride = 1,
                    .res_in = b->hp->data.target_res, .scale = 1};
    bl->res_in = bl->res_out = cs.res_in;
    bl->c_in = cs.c_in;
    bl->c_out = cs.c_out;
    bl->conv = add_conv(b, 0, &cs, PAD_EXTRA_FIRST, "bottom_up.input_conv");
}

static void add_unpool(builder *b, vd_block *bl, int index, const char *prefix) {
    int64_t shape[4] = {1, bl->c_out, bl->res_out, bl->res_out};
    int p = add_param(b, index, 4, shape, "%s.unpool.scale_bias", prefix);
    b->a->params[p].fan_in = (int64_t)bl->c_out * bl->res_out * bl->res_out;
    b->a->params[p].fan_out = (int64_t)bl->res_out * bl->res_out;
    bl->scale_bias = p;
    conv_spec cs = {.c_in = bl->c_in, .c_out = bl->c_out, .kh = 1, .kw = 1, .stride = 1,
                    .res_in = bl->res_in, .scale = 1, .decay = true};
    char name[VD_PARAM_NAME_MAX];
    name_fmt(name, "%s.unpool.ops.0", prefix);
    bl->resample = add_conv(b, index, &cs, PAD_EXTRA_FIRST, name);
}

static int add_projection(builder *b, int index, int c_in, int c_out, int res, double scale,
                          const char *prefix, const char *what) {
    conv_spec cs = {.c_in = c_in, .c_out = c_out, .kh = 1, .kw = 1, .stride = 1, .res_in = res, .scale = scale};
    char name[VD_PARAM_NAME_MAX];
    name_fmt(name, "%s.%s", prefix, what);
    return add_conv(b, index, &cs, PAD_EXTRA_FIRST, name);
}

/* LevelBlockDown: unpool, residual_block, posterior_net, prior_net, prior_layer,
 * posterior_layer, z_projection (its registration order). */
static void add_down_block(builder *b, int level, int index, bool first, const char *prefix) {
    const vd_hp_model *m = &b->hp->model;
    const vd_arch_levels *lv = b->lv;
    int c = m->down_filters[level], stride = first ? m->down_strides[level] : 1;
    int res = lv->down_res_out[level], skip_ch = m->up_skip_filters[m->n_up - 1 - level];
    int v = m->down_latent_variates[level], nl = m->down_n_layers[level], k = m->down_kernel_size[level];
    double ratio = m->down_mid_filters_ratio[level];
    vd_block *bl = init_block(b, index, VD_BLOCK_DOWN, level);
    bl->res_in = res / stride;
    bl->res_out = res;
    bl->c_in = first ? lv->in_down[level] : c;
    bl->c_out = c;
    bl->stride = stride;
    bl->n_variates = v;
    bl->skip = level;
    bl->skip_ch = skip_ch;
    if (stride > 1) add_unpool(b, bl, index, prefix);
    cell_spec cs = {.n_layers = nl, .c_in = c, .kernel = k, .res = res, .ratio = ratio,
                    .out_ratio = 1.0, .scale = b->cell_scale, .residual = true};
    add_residual_block(b, index, m->down_n_blocks[level], &cs, prefix);
    char name[VD_PARAM_NAME_MAX];
    cell_spec post = {.n_layers = nl, .c_in = c + skip_ch, .kernel = k, .res = res,
                      .ratio = ratio * 0.5, .out_ratio = 0.5, .scale = 1.0};
    name_fmt(name, "%s.posterior_net.0", prefix);
    bl->posterior_cell = add_cell(b, index, &post, name);
    cell_spec prior = {.n_layers = nl, .c_in = c, .kernel = k, .res = res, .ratio = ratio,
                       .out_ratio = 2.0,
                       .scale = b->hp->model.initialize_prior_weights_as_zero ? 0.0 : 1.0};
    name_fmt(name, "%s.prior_net.0", prefix);
    bl->prior_cell = add_cell(b, index, &prior, name);
    bl->prior_proj = add_projection(b, index, c, 2 * v, res, 1.0, prefix, "prior_layer.projection");
    bl->posterior_proj = add_projection(b, index, c, 2 * v, res, 1.0, prefix, "posterior_layer.projection");
    bl->z_proj = add_projection(b, index, v, c, res, b->td_scale, prefix, "z_projection");
}

static void add_h0(builder *b) {
    const vd_hp_model *m = &b->hp->model;
    int r = b->lv->latent_res, c = m->down_filters[0];
    vd_block *bl = init_block(b, b->h0_block, VD_BLOCK_H0, -1);
    bl->res_in = bl->res_out = r;
    bl->c_in = bl->c_out = c;
    int64_t shape[4] = {1, c, r, r};
    int p = add_param(b, b->h0_block, 4, shape, "top_down.trainable_h");
    vd_param *h = &b->a->params[p];
    h->fan_in = (int64_t)c * r * r;
    h->fan_out = (int64_t)r * r;
    h->init = VD_INIT_H0_UNIFORM;
    h->init_bound = sqrt(3.0 / (double)h->fan_in);
    bl->h0 = p;
}

static void add_top_down(builder *b) {
    const vd_hp_model *m = &b->hp->model;
    char prefix[VD_PARAM_NAME_MAX];
    add_h0(b);
    /* The reference registers levels_down before levels_down_upsample (one tuple
     * assignment), so its state_dict lists the plain blocks first. */
    for (int i = 0; i < m->n_down; i++)
        for (int j = 0; j < m->down_n_blocks_per_res[i]; j++) {
            name_fmt(prefix, "top_down.levels_down.%d.%d", i, j);
            add_down_block(b, i, b->down_start[i] + 1 + j, false, prefix);
        }
    for (int i = 0; i < m->n_down; i++) {
        name_fmt(prefix, "top_down.levels_down_upsample.%d", i);
        add_down_block(b, i, b->down_start[i], true, prefix);
    }
    int last = b->a->n_blocks - 1;
    vd_block *bl = init_block(b, last, VD_BLOCK_OUTPUT_CONV, -1);
    conv_spec cs = {.c_in = m->down_filters[m->n_down - 1], .c_out = b->lv->out_ch,
                    .kh = m->output_kernel_size[0], .kw = m->output_kernel_size[1], .stride = 1,
                    .res_in = b->hp->data.target_res, .scale = 1};
    bl->res_in = bl->res_out = cs.res_in;
    bl->c_in = cs.c_in;
    bl->c_out = cs.c_out;
    bl->conv = add_conv(b, last, &cs, PAD_EXTRA_FIRST, "top_down.output_conv");
}

/* Execution order: input conv, bottom-up levels (plain blocks, then the skip block), h0,
 * top-down levels (the strided block, then the plain ones), output conv. */
static void place_blocks(builder *b) {
    const vd_hp_model *m = &b->hp->model;
    int at = 1;
    for (int i = 0; i < m->n_up; i++) {
        b->up_start[i] = at;
        at += m->up_n_blocks_per_res[i] + 1;
    }
    b->h0_block = at++;
    for (int i = 0; i < m->n_down; i++) {
        b->down_start[i] = at;
        at += m->down_n_blocks_per_res[i] + 1;
    }
    assert(at + 1 == b->a->n_blocks);
}

static vd_status alloc_tables(vd_arch *a, const vd_arch_levels *lv, vd_err *err) {
    a->params = calloc((size_t)lv->n_params, sizeof *a->params);
    a->convs = calloc((size_t)lv->n_convs, sizeof *a->convs);
    a->cells = calloc(lv->n_cells ? (size_t)lv->n_cells : 1, sizeof *a->cells);
    a->blocks = calloc((size_t)lv->n_blocks, sizeof *a->blocks);
    if (!a->params || !a->convs || !a->cells || !a->blocks) {
        vd_arch_free(a);
        return vd_errorf(err, VD_ERR_NOMEM, "model: no memory for a table of %lld tensors",
                         (long long)lv->n_params);
    }
    a->n_blocks = (int)lv->n_blocks;
    return VD_OK;
}

vd_status vd_arch_build(vd_arch *a, const vd_hparams *hp, vd_err *err) {
    memset(a, 0, sizeof *a);
    vd_arch_levels lv;
    vd_status s = vd_arch_check(hp, &lv, err);
    if (s || (s = alloc_tables(a, &lv, err))) return s;
    a->n_td = lv.n_td;
    a->n_skips = hp->model.n_up;
    a->latent_res = lv.latent_res;
    a->image_res = hp->data.target_res;
    a->image_ch = hp->data.channels;
    a->out_ch = lv.out_ch;
    a->default_batch = hp->train.batch_size;
    builder b = {.a = a, .hp = hp, .lv = &lv, .td_scale = sqrt(1.0 / (double)lv.n_td)};
    b.cell_scale = hp->model.stable_init ? b.td_scale : 1.0;
    place_blocks(&b);
    add_bottom_up(&b);
    add_top_down(&b);
    assert(a->n_params == lv.n_params && a->n_convs == lv.n_convs && a->n_cells == lv.n_cells);
    vd_arch_plan_blocks(a);
    return VD_OK;
}

void vd_arch_free(vd_arch *a) {
    if (!a) return;
    free(a->params);
    free(a->convs);
    free(a->cells);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

int vd_arch_find_param(const vd_arch *a, const char *name) {
    for (int i = 0; i < a->n_params; i++)
        if (!strcmp(a->params[i].name, name)) return i;
    return -1;
}
