/* Memory plan of the network: one arena holding every activation the backward pass needs,
 * laid out once for the batch size, plus the gradient and scratch temporaries. Every
 * buffer is handed out as a tensor with its shape, so the passes never rebuild views. The
 * same walk runs twice: first to measure (base NULL), then to hand out tensors; and again
 * whenever the batch a pass runs on changes (vd_net_set_batch): the layout stays that of
 * the full batch, only the tensors' n changes. */
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
    int batch; /* images the arena holds per tensor (max_batch): the layout */
    int n;     /* images the tensors hold now (<= batch): their shape */
} plan;

/* 16-float (64-byte) alignment keeps every tensor on its own cache lines. */
static float *take(arena *ar, int64_t n) {
    float *p = ar->base ? ar->base + ar->used : NULL;
    ar->used += (n + 15) & ~(int64_t)15;
    if (ar->used > ar->peak) ar->peak = ar->used;
    return p;
}

/* A [B, res, res, c] tensor at p. */
static vd_tensor image(float *p, int batch, int res, int c) {
    return vd_tensor_make(p, batch, res, res, c);
}

/* Room for `batch` images, shaped as the first n of them. */
static vd_tensor tensor(arena *ar, int batch, int n, int res, int c) {
    return image(take(ar, (int64_t)batch * res * res * c), n, res, c);
}

static vd_tensor keep(plan *pl, int res, int c) {
    return tensor(pl->keep, pl->batch, pl->n, res, c);
}

static vd_tensor work(plan *pl, int res, int c) {
    return tensor(pl->work, pl->batch, pl->n, res, c);
}

static void plan_cell(const vd_arch *a, plan *pl, const vd_cell *cell, vd_net_cell *nc, vd_tensor in,
                      bool out_kept) {
    nc->pre[0] = in;
    for (int k = 1; k < cell->n_convs; k++) nc->pre[k] = work(pl, cell->res, a->convs[cell->first_conv + k].c_in);
    nc->out = out_kept ? keep(pl, cell->res, cell->c_out) : work(pl, cell->res, cell->c_out);
}

/* Cells of a residual_block chained from `in`; returns the last output, kept when
 * last_kept says it leaves the block. */
static vd_tensor plan_cells(const vd_arch *a, plan *pl, const vd_block *b, vd_net_block *nb, vd_tensor in,
                            bool last_kept) {
    for (int k = 0; k < b->n_cells; k++) {
        plan_cell(a, pl, &a->cells[b->first_cell + k], &nb->cells[k], in, last_kept && k + 1 == b->n_cells);
        in = nb->cells[k].out;
    }
    return in;
}

static void plan_up(vd_net *net, plan *pl, const vd_block *b, vd_net_block *nb) {
    const vd_arch *a = net->arch;
    bool pooled = b->kind == VD_BLOCK_UP_SKIP && b->resample >= 0;
    nb->stream = plan_cells(a, pl, b, nb, nb->in, !pooled);
    if (b->kind != VD_BLOCK_UP_SKIP) return;
    nb->skip = net->skips[b->skip] = keep(pl, b->res_in, b->skip_ch);
    if (!pooled) return;
    nb->pool_pre = work(pl, b->res_out, a->convs[b->resample].c_out);
    nb->stream = keep(pl, b->res_out, b->c_out);
}

static void plan_down(vd_net *net, plan *pl, const vd_block *b, vd_net_block *nb) {
    const vd_arch *a = net->arch;
    int r = b->res_out, c = b->c_out, v = b->n_variates;
    nb->y1 = nb->in;
    nb->skip = net->skips[b->skip];
    if (b->resample >= 0) {
        nb->unpool_pre = work(pl, b->res_in, c);
        nb->y1 = work(pl, r, c);
    }
    plan_cell(a, pl, &a->cells[b->prior_cell], &nb->prior_cell, nb->y1, false);
    nb->kl_residual = vd_tensor_channels(nb->prior_cell.out, 0, c);
    nb->p_in = vd_tensor_channels(nb->prior_cell.out, c, c);
    nb->cat = image(net->cat, net->batch, r, c + b->skip_ch); /* rebuilt from y1 and the skip whenever read */
    plan_cell(a, pl, &a->cells[b->posterior_cell], &nb->post_cell, nb->cat, false);
    nb->prior_raw = work(pl, r, 2 * v);
    nb->post_raw = work(pl, r, 2 * v);
    nb->prior_mean = work(pl, r, v);
    nb->prior_p = work(pl, r, v);
    nb->post_mean = work(pl, r, v);
    nb->post_p = work(pl, r, v);
    nb->z = work(pl, r, v);
    nb->y2 = b->n_cells ? work(pl, r, c) : keep(pl, r, c);
    nb->stream = plan_cells(a, pl, b, nb, nb->y2, true);
}

static int64_t largest_cat(const vd_arch *a);

static void plan_blocks(vd_net *net, plan *pl) {
    const vd_arch *a = net->arch;
    net->input = keep(pl, a->image_res, a->image_ch);
    net->cat = take(pl->keep, largest_cat(a) * pl->batch);
    vd_tensor x = net->input; /* the stream */
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        vd_net_block *nb = &net->blocks[i];
        if (pl->checkpoint) pl->work->used = 0; /* each block refills the work region */
        nb->in = x;
        switch (b->kind) {
        case VD_BLOCK_INPUT_CONV: case VD_BLOCK_H0: nb->stream = keep(pl, b->res_out, b->c_out); break;
        case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: plan_up(net, pl, b, nb); break;
        case VD_BLOCK_DOWN: plan_down(net, pl, b, nb); break;
        case VD_BLOCK_OUTPUT_CONV: net->logits = nb->stream = keep(pl, b->res_out, b->c_out); break;
        }
        x = nb->stream;
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

/* The forward's temporaries, in scratch buffers the backward's roles also use: the unpool
 * activation (between its LeakyReLU and upsampling) and the prior sample of masked variates. */
static void plan_forward_temporaries(vd_net *net, float *unpool_act, float *z_prior) {
    const vd_arch *a = net->arch;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        vd_net_block *nb = &net->blocks[i];
        if (b->kind != VD_BLOCK_DOWN) continue;
        if (b->resample >= 0) nb->unpool_act = image(unpool_act, net->batch, b->res_in, b->c_out);
        nb->z_prior = image(z_prior, net->batch, b->res_out, b->n_variates);
    }
}

/* The temporaries of one block's forward or backward: four buffers of the largest
 * activation, each shared by roles that never live at once, and the gradient buffers of the
 * top-down blocks and the skips. */
static void plan_temporaries(vd_net *net, arena *ar) {
    const vd_arch *a = net->arch;
    int64_t s = largest_activation(a) * net->max_batch, B = net->max_batch;
    latent_sizes l = largest_latent_tensors(a);
    float *scratch[4];
    for (int i = 0; i < 4; i++) scratch[i] = take(ar, s);
    /* Roles sharing a buffer each live within one unpool, pool, cell or mask sequence of ops
     * that uses no other role of that buffer. */
    vd_net_grads *d = &net->d;
    d->pool_pre = d->unpool_act = scratch[0];
    d->silu = d->unpool_pre = scratch[1];
    d->cell_pre[0] = scratch[2];
    d->cell_pre[1] = scratch[3];
    for (int i = 0; i < 2; i++) d->stream[i] = take(ar, s);
    d->prior_out = take(ar, l.pr * B);
    d->cat = take(ar, l.cat * B);
    d->post_out = take(ar, l.q * B);
    d->prior_raw = take(ar, l.raw * B);
    d->post_raw = take(ar, l.raw * B);
    d->prior_mean = take(ar, l.v * B);
    d->prior_p = take(ar, l.v * B);
    d->post_mean = take(ar, l.v * B);
    d->post_p = take(ar, l.v * B);
    d->z = take(ar, l.v * B);
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind == VD_BLOCK_UP_SKIP) d->skips[b->skip] = tensor(ar, net->max_batch, net->batch, b->res_in, b->skip_ch);
    }
    net->sums = take(ar, 1 + a->n_td);
    plan_forward_temporaries(net, scratch[1], scratch[2]);
}

/* The walk over the arenas k (kept) and w (the work region, with checkpointing): laid out for
 * max_batch images, shaped for net->batch. */
static void plan_walk(vd_net *net, arena *k, arena *w) {
    plan pl = {.keep = k, .work = net->checkpoint ? w : k, .checkpoint = net->checkpoint, .batch = net->max_batch,
               .n = net->batch};
    plan_blocks(net, &pl);
    plan_temporaries(net, k);
}

/* Every tensor of the plan into the allocated arena (the same addresses at any batch). */
static void hand_out(vd_net *net) {
    arena k = {.base = net->arena}, w = {.base = net->arena + (net->arena_floats - net->work_floats)};
    plan_walk(net, &k, &w);
}

static vd_status alloc_tables(vd_net *net, vd_err *err) {
    const vd_arch *a = net->arch;
    net->blocks = calloc((size_t)a->n_blocks, sizeof *net->blocks);
    net->skips = calloc((size_t)a->n_skips + 1, sizeof *net->skips);
    net->d.skips = calloc((size_t)a->n_skips + 1, sizeof *net->d.skips);
    net->latent_block = calloc((size_t)a->n_td + 1, sizeof *net->latent_block);
    if (!net->blocks || !net->skips || !net->d.skips || !net->latent_block)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
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
            if (!(nb->cells[k].pre = calloc((size_t)a->cells[b->first_cell + k].n_convs, sizeof(vd_tensor))))
                return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        if (b->kind == VD_BLOCK_DOWN) {
            nb->prior_cell.pre = calloc((size_t)a->cells[b->prior_cell].n_convs, sizeof(vd_tensor));
            nb->post_cell.pre = calloc((size_t)a->cells[b->posterior_cell].n_convs, sizeof(vd_tensor));
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
    net->batch = net->max_batch = o->batch;
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
    plan_walk(net, &k, &w);
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
    hand_out(net);
    return VD_OK;
}

vd_status vd_net_set_batch(vd_net *net, int n, vd_err *err) {
    if (n < 1 || n > net->max_batch)
        return vd_errorf(err, VD_ERR_INVALID, "model: cannot run a batch of %d images: built for 1 to %d", n,
                         net->max_batch);
    if (n == net->batch) return VD_OK;
    net->batch = n;
    hand_out(net);
    vd_net_cat_forget(net); /* net->cat's skip half was shaped for the previous batch */
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
    free(net->d.skips);
    free(net->latent_block);
    memset(net, 0, sizeof *net);
}
