/* The forward pass, block by block: bottom-up to the skips, top-down with posterior
 * sampling, the output layer and the loss sums (docs/model.md sections 2 and 4). */
#include <stdio.h>
#include <string.h>

#include "nn/net.h"

#define LEAKY_SLOPE 0.1f

/* A caller's buffer viewed at the shape of the net's tensor t. */
static vd_tensor shaped_as(const vd_tensor *t, float *data) {
    return vd_tensor_make(data, t->n, t->h, t->w, t->c);
}

static const float *W(const vd_net *net, int param) {
    return net->params + net->arch->params[param].offset;
}

vd_conv_desc vd_net_conv_desc(const vd_conv *c) {
    return (vd_conv_desc){.c_in = c->c_in, .c_out = c->c_out, .kh = c->kh, .kw = c->kw,
                          .stride = c->stride, .pad_top = c->pad_top, .pad_left = c->pad_left,
                          .pad_bottom = c->pad_bottom, .pad_right = c->pad_right};
}

static void conv_act(vd_net *net, int ci, int pre_act, const vd_tensor *x, const vd_tensor *y) {
    const vd_conv *c = &net->arch->convs[ci];
    vd_conv_desc d = vd_net_conv_desc(c);
    d.pre_act = pre_act;
    net->be->i->conv_fwd(net->be, &d, x, W(net, c->weight), W(net, c->bias), y);
}

static void conv(vd_net *net, int ci, const vd_tensor *x, const vd_tensor *y) {
    conv_act(net, ci, VD_CONV_PRE_NONE, x, y);
}

/* x -> [SiLU -> conv] x n, + x when residual. pre[k] keeps each conv's input before SiLU.
 * Without the tail (recomputation whose output is kept), stops at the last conv's input. */
static void cell_run(vd_net *net, const vd_cell *cell, const vd_net_cell *nc, bool tail) {
    vd_backend *be = net->be;
    int n = tail ? cell->n_convs : cell->n_convs - 1;
    for (int k = 0; k < n; k++) {
        const vd_tensor *y = k + 1 < cell->n_convs ? &nc->pre[k + 1] : &nc->out;
        conv_act(net, cell->first_conv + k, VD_CONV_PRE_SILU, &nc->pre[k], y); /* SiLU fused into the conv */
    }
    if (tail && cell->residual) be->i->add(be, &nc->pre[0], &nc->out, &nc->out);
}

static void cell_fwd(vd_net *net, const vd_cell *cell, const vd_net_cell *nc) {
    cell_run(net, cell, nc, true);
}

/* tail: whether the last cell's last conv runs (not when recomputing a kept output). */
static void cells_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, bool tail) {
    for (int k = 0; k < b->n_cells; k++)
        cell_run(net, &net->arch->cells[b->first_cell + k], &nb->cells[k], tail || k + 1 < b->n_cells);
}

/* Recomputation keeps the skip and the pooled stream, but backward needs the last cell's
 * output when it is not the stream (pooled), and the pool's pre-activation. */
static void up_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, bool recompute) {
    vd_backend *be = net->be;
    bool pooled = b->kind == VD_BLOCK_UP_SKIP && b->resample >= 0;
    cells_fwd(net, b, nb, !recompute || pooled);
    if (b->kind != VD_BLOCK_UP_SKIP) return;
    const vd_tensor *x = b->n_cells ? &nb->cells[b->n_cells - 1].out : &nb->in;
    if (!recompute) conv(net, b->conv, x, &nb->skip);
    if (!pooled) return;
    conv(net, b->resample, x, &nb->pool_pre);
    if (!recompute) be->i->act_fwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &nb->pool_pre, &nb->stream);
}

static void unpool_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb) {
    vd_backend *be = net->be;
    conv(net, b->resample, &nb->in, &nb->unpool_pre);
    be->i->act_fwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &nb->unpool_pre, &nb->unpool_act);
    be->i->upsample_fwd(be, b->stride, &nb->unpool_act, &nb->y1);
    be->i->broadcast_fwd(be, W(net, b->scale_bias), &nb->y1, true);
}

void vd_net_fill_cat(vd_net *net, const vd_block *b, const vd_net_block *nb) {
    int c = b->c_out;
    vd_tensor cat_y = vd_tensor_channels(nb->cat, 0, c), cat_s = vd_tensor_channels(nb->cat, c, b->skip_ch);
    net->be->i->copy(net->be, &nb->y1, &cat_y);
    int key[3] = {b->skip, c, b->res_out};
    if (!memcmp(key, net->cat_skip, sizeof key)) return;
    net->be->i->copy(net->be, &nb->skip, &cat_s);
    memcpy(net->cat_skip, key, sizeof key);
}

void vd_net_cat_forget(vd_net *net) {
    net->cat_skip[0] = -1;
}

/* Variates whose mask is 0 take a prior sample (inference only). */
static void mask_with_prior(vd_net *net, const vd_net_block *nb, const float *mask, const vd_noise *prior_noise,
                            float temp) {
    vd_backend *be = net->be;
    be->i->latent_sample_fwd(be, net->dist_base, net->dist_beta, temp, &nb->prior_mean, &nb->prior_p, prior_noise,
                             &nb->z_prior);
    be->i->latent_mask(be, mask, &nb->z_prior, &nb->z);
}

/* Prior and posterior nets, their latent statistics, the posterior sample and the KL. */
static void latent_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                       const vd_net_latents *lat, bool recompute) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_dist_base base = net->dist_base;
    float beta = net->dist_beta;
    bool res = net->residual_dist;
    vd_net_fill_cat(net, b, nb);
    cell_fwd(net, &a->cells[b->prior_cell], &nb->prior_cell);
    cell_fwd(net, &a->cells[b->posterior_cell], &nb->post_cell);
    conv(net, b->prior_proj, &nb->p_in, &nb->prior_raw);
    conv(net, b->posterior_proj, &nb->post_cell.out, &nb->post_raw);
    be->i->latent_stats_fwd(be, base, beta, &nb->prior_raw, NULL, NULL, &nb->prior_mean, &nb->prior_p);
    be->i->latent_stats_fwd(be, base, beta, &nb->post_raw, res ? &nb->prior_mean : NULL, res ? &nb->prior_p : NULL,
                            &nb->post_mean, &nb->post_p);
    int g = nb->latent;
    float temp = lat ? lat->posterior_temperature : 1.f;
    be->i->latent_sample_fwd(be, base, beta, temp, &nb->post_mean, &nb->post_p, &noise[g], &nb->z);
    if (lat && lat->masks && lat->masks[g]) mask_with_prior(net, nb, lat->masks[g], &lat->prior_noise[g], 1.f);
    if (recompute) return; /* the KL sums were taken in the forward pass */
    float *per_variate = lat && lat->kl_per_variate ? lat->kl_per_variate[g] : NULL;
    be->i->kl_fwd(be, base, beta, &nb->post_mean, &nb->post_p, &nb->prior_mean, &nb->prior_p, net->sums + 1 + g,
                  per_variate);
}

/* y2 = y1 + kl_residual + z_proj(z): the conv adds onto the sum of the other two. */
static void y2_sum(vd_net *net, const vd_block *b, const vd_net_block *nb) {
    const vd_conv *c = &net->arch->convs[b->z_proj];
    vd_conv_desc d = vd_net_conv_desc(c);
    d.acc_y = 1;
    net->be->i->add(net->be, &nb->y1, &nb->kl_residual, &nb->y2);
    net->be->i->conv_fwd(net->be, &d, &nb->z, W(net, c->weight), W(net, c->bias), &nb->y2);
}

/* Recomputation skips y2 when it is the kept stream (no cells) and the last cell's tail. */
static void down_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                     const vd_net_latents *lat, bool recompute) {
    if (b->resample >= 0) unpool_fwd(net, b, nb);
    latent_fwd(net, b, nb, noise, lat, recompute);
    if (recompute && !b->n_cells) return;
    y2_sum(net, b, nb);
    cells_fwd(net, b, nb, !recompute);
}

static void output_loss(vd_net *net) {
    vd_backend *be = net->be;
    if (net->dataset_binarized) be->i->bernoulli_fwd(be, 2, &net->logits, &net->input, net->sums);
    else be->i->dmol_fwd(be, &net->dmol, &net->logits, &net->input, net->sums);
}

void vd_net_forward(vd_net *net, const vd_noise *noise) {
    vd_net_forward_ex(net, noise, NULL);
}

void vd_net_block_fwd(vd_net *net, int i, const vd_noise *noise, const vd_net_latents *lat, bool recompute) {
    vd_backend *be = net->be;
    const vd_block *b = &net->arch->blocks[i];
    const vd_net_block *nb = &net->blocks[i];
    switch (b->kind) {
    case VD_BLOCK_INPUT_CONV: case VD_BLOCK_OUTPUT_CONV:
        if (!recompute) conv(net, b->conv, &nb->in, &nb->stream);
        break;
    case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: up_fwd(net, b, nb, recompute); break;
    case VD_BLOCK_H0:
        if (!recompute) be->i->broadcast_fwd(be, W(net, b->h0), &nb->stream, false);
        break;
    case VD_BLOCK_DOWN: down_fwd(net, b, nb, noise, lat, recompute); break;
    }
}

void vd_net_scope(vd_net *net, int block, int phase) {
    if (!net->be->i->scope) return;
    char name[40] = "output loss";
    if (block >= 0) {
        const vd_block *b = &net->arch->blocks[block];
        snprintf(name, sizeof name, "%s %dx%d", vd_block_kind_str(b->kind), b->res_out, b->res_out);
    }
    net->be->i->scope(net->be, name, phase);
}

void vd_net_forward_ex(vd_net *net, const vd_noise *noise, const vd_net_latents *lat) {
    vd_net_cat_forget(net); /* the bottom-up pass rewrites the skips */
    for (int i = 0; i < net->arch->n_blocks; i++) {
        vd_net_scope(net, i, VD_PHASE_FWD);
        vd_net_block_fwd(net, i, noise, lat, false);
    }
    vd_net_scope(net, -1, VD_PHASE_FWD);
    output_loss(net);
    vd_backend_scope(net->be, "", -1);
}

/* Generation (docs/model.md section 2, "Sampling from the prior"): the top-down path alone,
 * each latent group drawn from its prior at temperature temps[i]. */
static void down_prior(vd_net *net, const vd_block *b, const vd_net_block *nb, float temp, const vd_noise *noise,
                       const float *z_given, const float *mask) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_dist_base base = net->dist_base;
    float beta = net->dist_beta;
    if (b->resample >= 0) unpool_fwd(net, b, nb);
    cell_fwd(net, &a->cells[b->prior_cell], &nb->prior_cell);
    conv(net, b->prior_proj, &nb->p_in, &nb->prior_raw);
    be->i->latent_stats_fwd(be, base, beta, &nb->prior_raw, NULL, NULL, &nb->prior_mean, &nb->prior_p);
    if (z_given) {
        vd_tensor given = shaped_as(&nb->z, (float *)z_given);
        be->i->copy(be, &given, &nb->z);
        if (mask) mask_with_prior(net, nb, mask, noise, temp);
    } else {
        be->i->latent_sample_fwd(be, base, beta, temp, &nb->prior_mean, &nb->prior_p, noise, &nb->z);
    }
    y2_sum(net, b, nb);
    cells_fwd(net, b, nb, true);
}

void vd_net_generate(vd_net *net, const float *temps, const vd_noise *noise) {
    vd_net_decode(net, NULL, NULL, temps, noise);
}

void vd_net_decode(vd_net *net, const float *const *z, const float *const *masks, const float *temps,
                   const vd_noise *prior_noise) {
    const vd_arch *a = net->arch;
    vd_backend *be = net->be;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        const vd_net_block *nb = &net->blocks[i];
        if (b->kind == VD_BLOCK_H0) be->i->broadcast_fwd(be, W(net, b->h0), &nb->stream, false);
        else if (b->kind == VD_BLOCK_DOWN)
            down_prior(net, b, nb, temps[nb->latent], &prior_noise[nb->latent], z ? z[nb->latent] : NULL,
                       masks ? masks[nb->latent] : NULL);
        else if (b->kind == VD_BLOCK_OUTPUT_CONV) conv(net, b->conv, &nb->in, &nb->stream);
    }
}

void vd_net_sample_output(vd_net *net, float temperature, const vd_noise *noise, float *out) {
    vd_backend *be = net->be;
    if (net->dataset_binarized) {
        /* the 28x28 centre of the padded 32x32 canvas, as the reference */
        int crop = 2, s = net->input.h - 2 * crop;
        vd_tensor y = vd_tensor_make(out, net->batch, s, s, 1);
        be->i->bernoulli_sample(be, &net->logits, noise, &y);
    } else {
        vd_tensor y = shaped_as(&net->input, out);
        be->i->dmol_sample(be, &net->dmol, temperature, &net->logits, noise, &y);
    }
}
