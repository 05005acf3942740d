/* Memory plan of the network: one arena holding every activation the backward pass needs,
 * laid out once for the batch size, plus the gradient and scratch temporaries. The same
 * walk runs twice: first to measure (base NULL), then to hand out pointers. */
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"

typedef struct arena {
    float *base;
    int64_t used, peak; /* floats */
} arena;

/* Where a block's tensors go. Without activation checkpointing both point at one arena and
 * everything is kept. With it, only what crosses block boundaries (the stream, the skips,
 * input and logits) is kept; a block's internals go to a work region that every block
 * reuses, refilled by recomputing the block's forward in the backward pass. */
typedef struct plan {
    arena *keep, *work;
    bool checkpoint;
} plan;

/* 16-float (64-byte) alignment keeps every tensor on its own cache lines. */
static float *take(arena *ar, int64_t n) {
    float *p = ar->base ? ar->base + ar->used : NULL;
    ar->used += (n + 15) & ~(int64_t)15;
    if (ar->used > ar->peak) ar->peak = ar->used;
    return p;
}

static float *keep(plan *pl, int64_t n) {
    return take(pl->keep, n);
}

static float *work(plan *pl, int64_t n) {
    return take(pl->work, n);
}

static int64_t img(const vd_net *net, int res, int c) {
    return (int64_t)net->batch * res * res * c;
}

static void plan_cell(vd_net *net, plan *pl, const vd_cell *cell, vd_net_cell *nc, float *in, bool out_kept) {
    const vd_arch *a = net->arch;
    nc->pre[0] = in;
    for (int k = 1; k < cell->n_convs; k++)
        nc->pre[k] = work(pl, img(net, cell->res, a->convs[cell->first_conv + k].c_in));
    int64_t n = img(net, cell->res, cell->c_out);
    nc->out = out_kept ? keep(pl, n) : work(pl, n);
}

/* Cells of a residual_block chained from `in`; returns the last output, kept when
 * last_kept says it leaves the block. */
static float *plan_cells(vd_net *net, plan *pl, const vd_block *b, vd_net_block *nb, float *in, bool last_kept) {
    for (int k = 0; k < b->n_cells; k++) {
        plan_cell(net, pl, &net->arch->cells[b->first_cell + k], &nb->cells[k], in, last_kept && k + 1 == b->n_cells);
        in = nb->cells[k].out;
    }
    return in;
}

static float *plan_up(vd_net *net, plan *pl, const vd_block *b, vd_net_block *nb, float *in) {
    const vd_arch *a = net->arch;
    bool pooled = b->kind == VD_BLOCK_UP_SKIP && b->resample >= 0;
    float *x = plan_cells(net, pl, b, nb, in, !pooled);
    if (b->kind != VD_BLOCK_UP_SKIP) return nb->stream = x;
    nb->skip = net->skips[b->skip] = keep(pl, img(net, b->res_in, b->skip_ch));
    if (!pooled) return nb->stream = x;
    nb->pool_pre = work(pl, img(net, b->res_out, a->convs[b->resample].c_out));
    return nb->stream = keep(pl, img(net, b->res_out, b->c_out));
}

static float *plan_down(vd_net *net, plan *pl, const vd_block *b, vd_net_block *nb, float *in) {
    const vd_arch *a = net->arch;
    int r = b->res_out, c = b->c_out, v = b->n_variates;
    nb->y1 = in;
    nb->skip = net->skips[b->skip];
    if (b->resample >= 0) {
        nb->unpool_pre = work(pl, img(net, b->res_in, c));
        nb->y1 = work(pl, img(net, r, c));
    }
    plan_cell(net, pl, &a->cells[b->prior_cell], &nb->prior_cell, nb->y1, false);
    nb->cat = net->cat; /* rebuilt from y1 and the skip whenever it is read */
    plan_cell(net, pl, &a->cells[b->posterior_cell], &nb->post_cell, nb->cat, false);
    nb->prior_raw = work(pl, img(net, r, 2 * v));
    nb->post_raw = work(pl, img(net, r, 2 * v));
    nb->prior_mean = work(pl, img(net, r, v));
    nb->prior_p = work(pl, img(net, r, v));
    nb->post_mean = work(pl, img(net, r, v));
    nb->post_p = work(pl, img(net, r, v));
    nb->z = work(pl, img(net, r, v));
    nb->y2 = b->n_cells ? work(pl, img(net, r, c)) : keep(pl, img(net, r, c));
    return nb->stream = plan_cells(net, pl, b, nb, nb->y2, true);
}

static int64_t largest_cat(const vd_arch *a);

static void plan_blocks(vd_net *net, plan *pl) {
    const vd_arch *a = net->arch;
    net->input = keep(pl, img(net, a->image_res, a->image_ch));
    net->cat = keep(pl, largest_cat(a) * net->batch);
    float *x = NULL;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        vd_net_block *nb = &net->blocks[i];
        if (pl->checkpoint) pl->work->used = 0; /* each block refills the work region */
        nb->in = x;
        switch (b->kind) {
        case VD_BLOCK_INPUT_CONV:
            nb->in = net->input;
            x = nb->stream = keep(pl, img(net, b->res_out, b->c_out));
            break;
        case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: x = plan_up(net, pl, b, nb, x); break;
        case VD_BLOCK_H0: x = nb->stream = keep(pl, img(net, b->res_out, b->c_out)); break;
        case VD_BLOCK_DOWN: x = plan_down(net, pl, b, nb, x); break;
        case VD_BLOCK_OUTPUT_CONV: x = net->logits = nb->stream = keep(pl, img(net, b->res_out, b->c_out)); break;
        }
    }
}

/* The largest per-image activation of any conv input or output, in floats. */
static int64_t largest_activation(const vd_arch *a) {
    int64_t m = (int64_t)a->image_res * a->image_res * (a->image_ch > a->out_ch ? a->image_ch : a->out_ch);
    for (int i = 0; i < a->n_convs; i++) {
        const vd_conv *c = &a->convs[i];
        int64_t in = (int64_t)c->res_in * c->res_in * c->c_in, out = (int64_t)c->res_out * c->res_out * c->c_out;
        if (in > m) m = in;
        if (out > m) m = out;
    }
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        int64_t cat = b->kind == VD_BLOCK_DOWN ? (int64_t)b->res_out * b->res_out * (b->c_out + b->skip_ch) : 0;
        if (cat > m) m = cat;
    }
    return m;
}

/* Per-image sizes of the top-down blocks' gradient temporaries, each its own maximum. */
typedef struct latent_sizes {
    int64_t pr, cat, q, raw, v;
} latent_sizes;

static latent_sizes largest_latent_tensors(const vd_arch *a) {
    latent_sizes m = {0};
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind != VD_BLOCK_DOWN) continue;
        int64_t px = (int64_t)b->res_out * b->res_out;
        int64_t pr = px * 2 * b->c_out, cat = px * (b->c_out + b->skip_ch), q = px * b->c_out;
        int64_t raw = px * 2 * b->n_variates, v = px * b->n_variates;
        if (pr > m.pr) m.pr = pr;
        if (cat > m.cat) m.cat = cat;
        if (q > m.q) m.q = q;
        if (raw > m.raw) m.raw = raw;
        if (v > m.v) m.v = v;
    }
    return m;
}

static int64_t largest_cat(const vd_arch *a) {
    return largest_latent_tensors(a).cat;
}

static void plan_temporaries(vd_net *net, arena *ar) {
    const vd_arch *a = net->arch;
    int64_t s = largest_activation(a) * net->batch, B = net->batch;
    latent_sizes l = largest_latent_tensors(a);
    net->scratch_floats = s;
    for (int i = 0; i < 4; i++) net->scratch[i] = take(ar, s);
    for (int i = 0; i < 2; i++) net->dstream[i] = take(ar, s);
    net->dpr = take(ar, l.pr * B);
    net->dcat = take(ar, l.cat * B);
    net->dq = take(ar, l.q * B);
    net->draw_p = take(ar, l.raw * B);
    net->draw_q = take(ar, l.raw * B);
    net->dprior_mean = take(ar, l.v * B);
    net->dprior_p = take(ar, l.v * B);
    net->dpost_mean = take(ar, l.v * B);
    net->dpost_p = take(ar, l.v * B);
    net->dz = take(ar, l.v * B);
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind == VD_BLOCK_UP_SKIP) net->dskips[b->skip] = take(ar, img(net, b->res_in, b->skip_ch));
    }
    net->sums = take(ar, 1 + a->n_td);
}

static vd_status alloc_tables(vd_net *net, vd_err *err) {
    const vd_arch *a = net->arch;
    net->blocks = calloc((size_t)a->n_blocks, sizeof *net->blocks);
    net->skips = calloc((size_t)a->n_skips + 1, sizeof *net->skips);
    net->dskips = calloc((size_t)a->n_skips + 1, sizeof *net->dskips);
    net->latent_block = calloc((size_t)a->n_td + 1, sizeof *net->latent_block);
    if (!net->blocks || !net->skips || !net->dskips || !net->latent_block) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int latent = 0;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        vd_net_block *nb = &net->blocks[i];
        nb->latent = -1;
        if (b->kind == VD_BLOCK_DOWN) net->latent_block[nb->latent = latent++] = i;
        int n = b->n_cells > 0 ? b->n_cells : 0;
        nb->cells = calloc((size_t)n + 1, sizeof *nb->cells);
        if (!nb->cells) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        for (int k = 0; k < n; k++)
            if (!(nb->cells[k].pre = calloc((size_t)a->cells[b->first_cell + k].n_convs, sizeof(float *))))
                return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        if (b->kind == VD_BLOCK_DOWN) {
            nb->prior_cell.pre = calloc((size_t)a->cells[b->prior_cell].n_convs, sizeof(float *));
            nb->post_cell.pre = calloc((size_t)a->cells[b->posterior_cell].n_convs, sizeof(float *));
            if (!nb->prior_cell.pre || !nb->post_cell.pre) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    return VD_OK;
}

void vd_net_opts_from_hparams(vd_net_opts *o, const vd_hparams *hp, int batch) {
    memset(o, 0, sizeof *o);
    o->batch = batch;
    o->dataset_binarized = hp->data.dataset_source == VD_DATA_BINARIZED_MNIST;
    o->dist_base = hp->model.distribution_base;
    o->output_base = hp->model.output_distribution_base;
    o->dist_beta = (float)hp->model.gradient_smoothing_beta;
    o->output_beta = (float)hp->model.output_gradient_smoothing_beta;
    o->min_mol_logscale = (float)hp->loss.min_mol_logscale;
    o->residual_dist = hp->model.use_residual_distribution;
    o->n_mix = hp->model.num_output_mixtures;
    o->channels = hp->data.channels;
    o->num_bits = hp->data.num_bits;
    o->checkpoint = hp->run.checkpoint_activations;
}

vd_status vd_net_create(vd_net *net, const vd_arch *arch, vd_backend *be, const vd_net_opts *o,
                        vd_err *err) {
    memset(net, 0, sizeof *net);
    net->arch = arch;
    net->be = be;
    net->batch = o->batch;
    net->dataset_binarized = o->dataset_binarized;
    net->dmol = (vd_dmol){.n_mix = o->n_mix, .channels = o->channels, .num_bits = o->num_bits,
                          .base = o->output_base, .beta = o->output_beta,
                          .min_logscale = o->min_mol_logscale};
    net->dist_base = o->dist_base;
    net->dist_beta = o->dist_beta;
    net->residual_dist = o->residual_dist;
    net->checkpoint = o->checkpoint;
    net->cat_skip[0] = -1;
    vd_status st = alloc_tables(net, err);
    if (st) return vd_net_free(net), st;
    arena k = {0}, w = {0};
    plan pl = {.keep = &k, .work = o->checkpoint ? &w : &k, .checkpoint = o->checkpoint};
    plan_blocks(net, &pl);
    plan_temporaries(net, &k);
    int64_t kept = k.used;
    net->work_floats = w.peak;
    net->arena_floats = kept + w.peak;
    size_t pbytes = (size_t)arch->total_floats * sizeof(float);
    net->arena = be->i->alloc(be, (size_t)net->arena_floats * sizeof(float));
    net->params = be->i->alloc(be, pbytes);
    net->grads = be->i->alloc(be, pbytes);
    if (!net->arena || !net->params || !net->grads) {
        double act_mb = (double)net->arena_floats * 4 / 1e6;
        vd_net_free(net);
        return vd_errorf(err, VD_ERR_NOMEM, "model: cannot allocate %.1f MB of activations and %.1f MB of parameters",
                         act_mb, 2.0 * (double)pbytes / 1e6);
    }
    k = (arena){.base = net->arena};
    w = (arena){.base = net->arena + kept};
    plan_blocks(net, &pl);
    plan_temporaries(net, &k);
    return VD_OK;
}

void vd_net_free(vd_net *net) {
    if (net->be) {
        if (net->arena) net->be->i->dealloc(net->be, net->arena);
        if (net->params) net->be->i->dealloc(net->be, net->params);
        if (net->grads) net->be->i->dealloc(net->be, net->grads);
    }
    if (net->blocks && net->arch) {
        for (int i = 0; i < net->arch->n_blocks; i++) {
            vd_net_block *nb = &net->blocks[i];
            if (nb->cells)
                for (int k = 0; k < net->arch->blocks[i].n_cells; k++) free(nb->cells[k].pre);
            free(nb->cells);
            free(nb->prior_cell.pre);
            free(nb->post_cell.pre);
        }
    }
    free(net->blocks);
    free(net->skips);
    free(net->dskips);
    free(net->latent_block);
    memset(net, 0, sizeof *net);
}
