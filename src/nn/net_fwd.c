/* The forward pass, block by block: bottom-up to the skips, top-down with posterior
 * sampling, the output layer and the loss sums (MODEL.md sections 2 and 4). */
#include <stdio.h>
#include <string.h>

#include "nn/net.h"

#define LEAKY_SLOPE 0.1f

static vd_tensor T(const vd_net *net, float *p, int res, int c) {
    return vd_tensor_make(p, net->batch, res, res, c);
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
    const vd_arch *a = net->arch;
    int n = tail ? cell->n_convs : cell->n_convs - 1;
    for (int k = 0; k < n; k++) {
        const vd_conv *c = &a->convs[cell->first_conv + k];
        vd_tensor x = T(net, nc->pre[k], cell->res, c->c_in);
        float *dst = k + 1 < cell->n_convs ? nc->pre[k + 1] : nc->out;
        vd_tensor y = T(net, dst, cell->res, c->c_out);
        conv_act(net, cell->first_conv + k, VD_CONV_PRE_SILU, &x, &y); /* SiLU fused into the conv */
    }
    if (tail && cell->residual) {
        vd_tensor in = T(net, nc->pre[0], cell->res, cell->c_in), out = T(net, nc->out, cell->res, cell->c_out);
        be->i->add(be, &in, &out, &out);
    }
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
    float *out = b->n_cells ? nb->cells[b->n_cells - 1].out : nb->in;
    vd_tensor x = T(net, out, b->res_in, b->c_in), skip = T(net, nb->skip, b->res_in, b->skip_ch);
    if (!recompute) conv(net, b->conv, &x, &skip);
    if (!pooled) return;
    vd_tensor pre = T(net, nb->pool_pre, b->res_out, b->c_out), y = T(net, nb->stream, b->res_out, b->c_out);
    conv(net, b->resample, &x, &pre);
    if (!recompute) be->i->act_fwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &pre, &y);
}

static void unpool_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb) {
    vd_backend *be = net->be;
    vd_tensor x = T(net, nb->in, b->res_in, b->c_in), pre = T(net, nb->unpool_pre, b->res_in, b->c_out);
    vd_tensor act = T(net, net->scratch[1], b->res_in, b->c_out), y1 = T(net, nb->y1, b->res_out, b->c_out);
    conv(net, b->resample, &x, &pre);
    be->i->act_fwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &pre, &act);
    be->i->upsample_fwd(be, b->stride, &act, &y1);
    be->i->broadcast_fwd(be, W(net, b->scale_bias), &y1, true);
}

void vd_net_fill_cat(vd_net *net, const vd_block *b, const vd_net_block *nb) {
    int r = b->res_out, c = b->c_out;
    vd_tensor y1 = T(net, nb->y1, r, c), cat = T(net, nb->cat, r, c + b->skip_ch);
    vd_tensor cat_y = vd_tensor_channels(cat, 0, c), cat_s = vd_tensor_channels(cat, c, b->skip_ch);
    vd_tensor skip = T(net, nb->skip, r, b->skip_ch);
    net->be->i->copy(net->be, &y1, &cat_y);
    int key[3] = {b->skip, c, r};
    if (!memcmp(key, net->cat_skip, sizeof key)) return;
    net->be->i->copy(net->be, &skip, &cat_s);
    memcpy(net->cat_skip, key, sizeof key);
}

void vd_net_cat_forget(vd_net *net) {
    net->cat_skip[0] = -1;
}

/* Prior and posterior nets, their latent statistics, the posterior sample and the KL. */
/* Variates whose mask is 0 take a prior sample (inference only). */
static void mask_with_prior(vd_net *net, const vd_block *b, const vd_net_block *nb, const float *mask,
                            const vd_noise *prior_noise, float temp) {
    vd_backend *be = net->be;
    int r = b->res_out, v = b->n_variates;
    vd_tensor pm = T(net, nb->prior_mean, r, v), pp = T(net, nb->prior_p, r, v), z = T(net, nb->z, r, v);
    vd_tensor zp = T(net, net->scratch[2], r, v);
    be->i->latent_sample_fwd(be, net->dist_base, net->dist_beta, temp, &pm, &pp, prior_noise, &zp);
    be->i->latent_mask(be, mask, &zp, &z);
}

static void latent_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                       const vd_net_latents *lat, bool recompute) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    int r = b->res_out, c = b->c_out, v = b->n_variates;
    vd_net_fill_cat(net, b, nb);
    cell_fwd(net, &a->cells[b->prior_cell], &nb->prior_cell);
    cell_fwd(net, &a->cells[b->posterior_cell], &nb->post_cell);
    vd_tensor pr = T(net, nb->prior_cell.out, r, 2 * c), q = T(net, nb->post_cell.out, r, c);
    vd_tensor p_in = vd_tensor_channels(pr, c, c);
    vd_tensor praw = T(net, nb->prior_raw, r, 2 * v), qraw = T(net, nb->post_raw, r, 2 * v);
    conv(net, b->prior_proj, &p_in, &praw);
    conv(net, b->posterior_proj, &q, &qraw);
    vd_tensor pm = T(net, nb->prior_mean, r, v), pp = T(net, nb->prior_p, r, v);
    vd_tensor qm = T(net, nb->post_mean, r, v), qp = T(net, nb->post_p, r, v), z = T(net, nb->z, r, v);
    be->i->latent_stats_fwd(be, net->dist_base, net->dist_beta, &praw, NULL, NULL, &pm, &pp);
    be->i->latent_stats_fwd(be, net->dist_base, net->dist_beta, &qraw, net->residual_dist ? &pm : NULL,
                            net->residual_dist ? &pp : NULL, &qm, &qp);
    int g = nb->latent;
    float temp = lat ? lat->posterior_temperature : 1.f;
    be->i->latent_sample_fwd(be, net->dist_base, net->dist_beta, temp, &qm, &qp, &noise[g], &z);
    if (lat && lat->masks && lat->masks[g]) mask_with_prior(net, b, nb, lat->masks[g], &lat->prior_noise[g], 1.f);
    if (recompute) return; /* the KL sums were taken in the forward pass */
    float *per_variate = lat && lat->kl_per_variate ? lat->kl_per_variate[g] : NULL;
    be->i->kl_fwd(be, net->dist_base, net->dist_beta, &qm, &qp, &pm, &pp, net->sums + 1 + g, per_variate);
}

/* y2 = y1 + kl_residual + z_proj(z): the conv adds onto the sum of the other two. */
static void y2_sum(vd_net *net, const vd_block *b, const vd_tensor *y1, const vd_tensor *kl_res, const vd_tensor *z,
                   const vd_tensor *y2) {
    const vd_conv *c = &net->arch->convs[b->z_proj];
    vd_conv_desc d = vd_net_conv_desc(c);
    d.acc_y = 1;
    net->be->i->add(net->be, y1, kl_res, y2);
    net->be->i->conv_fwd(net->be, &d, z, W(net, c->weight), W(net, c->bias), y2);
}

/* Recomputation skips y2 when it is the kept stream (no cells) and the last cell's tail. */
static void down_fwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                     const vd_net_latents *lat, bool recompute) {
    int r = b->res_out, c = b->c_out;
    if (b->resample >= 0) unpool_fwd(net, b, nb);
    latent_fwd(net, b, nb, noise, lat, recompute);
    if (recompute && !b->n_cells) return;
    vd_tensor y1 = T(net, nb->y1, r, c), y2 = T(net, nb->y2, r, c);
    vd_tensor kl_res = vd_tensor_channels(T(net, nb->prior_cell.out, r, 2 * c), 0, c);
    vd_tensor z = T(net, nb->z, r, b->n_variates);
    y2_sum(net, b, &y1, &kl_res, &z, &y2);
    cells_fwd(net, b, nb, !recompute);
}

static void output_loss(vd_net *net) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_tensor logits = T(net, net->logits, a->image_res, a->out_ch), x = T(net, net->input, a->image_res, a->image_ch);
    if (net->dataset_binarized) be->i->bernoulli_fwd(be, 2, &logits, &x, net->sums);
    else be->i->dmol_fwd(be, &net->dmol, &logits, &x, net->sums);
}

void vd_net_forward(vd_net *net, const vd_noise *noise) {
    vd_net_forward_ex(net, noise, NULL);
}

void vd_net_block_fwd(vd_net *net, int i, const vd_noise *noise, const vd_net_latents *lat, bool recompute) {
    vd_backend *be = net->be;
    const vd_block *b = &net->arch->blocks[i];
    const vd_net_block *nb = &net->blocks[i];
    vd_tensor in = T(net, nb->in, b->res_in, b->c_in), out = T(net, nb->stream, b->res_out, b->c_out);
    switch (b->kind) {
    case VD_BLOCK_INPUT_CONV: case VD_BLOCK_OUTPUT_CONV:
        if (!recompute) conv(net, b->conv, &in, &out);
        break;
    case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: up_fwd(net, b, nb, recompute); break;
    case VD_BLOCK_H0:
        if (!recompute) be->i->broadcast_fwd(be, W(net, b->h0), &out, false);
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

/* Generation (MODEL.md section 2, "Sampling from the prior"): the top-down path alone,
 * each latent group drawn from its prior at temperature temps[i]. */
static void down_prior(vd_net *net, const vd_block *b, const vd_net_block *nb, float temp, const vd_noise *noise,
                       const float *z_given, const float *mask) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    int r = b->res_out, c = b->c_out, v = b->n_variates;
    if (b->resample >= 0) unpool_fwd(net, b, nb);
    cell_fwd(net, &a->cells[b->prior_cell], &nb->prior_cell);
    vd_tensor pr = T(net, nb->prior_cell.out, r, 2 * c);
    vd_tensor kl_res = vd_tensor_channels(pr, 0, c), p_in = vd_tensor_channels(pr, c, c);
    vd_tensor praw = T(net, nb->prior_raw, r, 2 * v), pm = T(net, nb->prior_mean, r, v), pp = T(net, nb->prior_p, r, v);
    vd_tensor z = T(net, nb->z, r, v), y1 = T(net, nb->y1, r, c), y2 = T(net, nb->y2, r, c);
    conv(net, b->prior_proj, &p_in, &praw);
    be->i->latent_stats_fwd(be, net->dist_base, net->dist_beta, &praw, NULL, NULL, &pm, &pp);
    if (z_given) {
        vd_tensor zg = T(net, (float *)z_given, r, v);
        be->i->copy(be, &zg, &z);
        if (mask) mask_with_prior(net, b, nb, mask, noise, temp);
    } else {
        be->i->latent_sample_fwd(be, net->dist_base, net->dist_beta, temp, &pm, &pp, noise, &z);
    }
    y2_sum(net, b, &y1, &kl_res, &z, &y2);
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
        vd_tensor in = T(net, nb->in, b->res_in, b->c_in), out = T(net, nb->stream, b->res_out, b->c_out);
        if (b->kind == VD_BLOCK_H0) be->i->broadcast_fwd(be, W(net, b->h0), &out, false);
        else if (b->kind == VD_BLOCK_DOWN)
            down_prior(net, b, nb, temps[nb->latent], &prior_noise[nb->latent], z ? z[nb->latent] : NULL,
                       masks ? masks[nb->latent] : NULL);
        else if (b->kind == VD_BLOCK_OUTPUT_CONV) conv(net, b->conv, &in, &out);
    }
}

void vd_net_sample_output(vd_net *net, float temperature, const vd_noise *noise, float *out) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_tensor logits = T(net, net->logits, a->image_res, a->out_ch);
    if (net->dataset_binarized) {
        /* the 28x28 centre of the padded 32x32 canvas, as the reference */
        int crop = 2, s = a->image_res - 2 * crop;
        vd_tensor y = vd_tensor_make(out, net->batch, s, s, 1);
        be->i->bernoulli_sample(be, &logits, noise, &y);
    } else {
        vd_tensor y = T(net, out, a->image_res, a->image_ch);
        be->i->dmol_sample(be, &net->dmol, temperature, &logits, noise, &y);
    }
}
