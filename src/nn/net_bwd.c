/* The backward pass, blocks in reverse: parameter gradients accumulate into net->grads,
 * activation gradients flow through two ping-pong stream buffers, the skips' gradients
 * gather from every top-down block that reads them. Recomputes each conv's SiLU input
 * instead of storing it, and with checkpointing each block's internals before its backward. */
#include "nn/net.h"

#define LEAKY_SLOPE 0.1f

/* The gradient of x, held in buffer d: x's shape, dense (gradient buffers are shared
 * between blocks and sized for the largest tensor they hold). */
static vd_tensor grad_of(const vd_tensor *x, float *d) {
    return vd_tensor_make(d, x->n, x->h, x->w, x->c);
}

static const float *W(const vd_net *net, int param) {
    return net->params + net->arch->params[param].offset;
}

static float *G(const vd_net *net, int param) {
    return net->grads + net->arch->params[param].offset;
}

/* dw += x^T dy (x read through pre_act), db += sum dy, and dx (=|+=) conv_T(dy) when dx is
 * given: one backend call, so a backend can share work between the two directions. */
static void conv_bwd(vd_net *net, int ci, int pre_act, const vd_tensor *x, const vd_tensor *dy,
                     const vd_tensor *dx, bool acc) {
    const vd_conv *c = &net->arch->convs[ci];
    vd_conv_desc d = vd_net_conv_desc(c);
    d.pre_act = pre_act;
    vd_backend_conv_bwd(net->be, &d, x, dy, W(net, c->weight), G(net, c->weight), G(net, c->bias), dx, acc);
}

/* din (=|+=) d(cell)/d(input) . dout, for the gradients of the cell's output and input held
 * in buffers dout and din (not the cell's own temporaries). A residual cell whose din would
 * be written (not accumulated) adds its branch's gradient onto dout in place instead, saving
 * the pass that would add dout to din; returns the buffer that holds the result. */
static float *cell_bwd(vd_net *net, const vd_cell *cell, const vd_net_cell *nc, float *dout, float *din, bool acc) {
    vd_backend *be = net->be;
    bool in_place = cell->residual && !acc;
    float *result = in_place ? dout : din;
    vd_tensor dy = grad_of(&nc->out, dout);
    for (int k = cell->n_convs - 1; k >= 0; k--) {
        const vd_tensor *x = &nc->pre[k];
        vd_tensor dsilu = grad_of(x, net->d.silu), dx = grad_of(x, k == 0 ? result : net->d.cell_pre[k & 1]);
        conv_bwd(net, cell->first_conv + k, VD_CONV_PRE_SILU, x, &dy, &dsilu, false);
        be->i->act_bwd(be, VD_ACT_SILU, 0.f, x, &dsilu, &dx, k == 0 && (acc || in_place));
        dy = dx;
    }
    if (cell->residual && !in_place) {
        vd_tensor d_out = grad_of(&nc->out, dout), d_in = grad_of(&nc->pre[0], din);
        be->i->axpy(be, 1.f, &d_out, &d_in);
    }
    return result;
}

/* The stream gradient buffer that g is not. */
static float *other_stream(vd_net *net, const float *g) {
    return g == net->d.stream[0] ? net->d.stream[1] : net->d.stream[0];
}

/* The residual_block cells in reverse; *g moves between the two stream buffers. */
static void cells_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float **g) {
    for (int k = b->n_cells - 1; k >= 0; k--)
        *g = cell_bwd(net, &net->arch->cells[b->first_cell + k], &nb->cells[k], *g, other_stream(net, *g), false);
}

/* Gradients of the KL term and of the posterior sample into the latent statistics, then
 * through the projections to the posterior and prior nets' outputs. */
static void latent_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise, float kl_scale) {
    vd_backend *be = net->be;
    const vd_net_grads *d = &net->d;
    vd_dist_base base = net->dist_base;
    float beta = net->dist_beta;
    bool res = net->residual_dist;
    vd_tensor dpm = grad_of(&nb->prior_mean, d->prior_mean), dpp = grad_of(&nb->prior_p, d->prior_p);
    vd_tensor dqm = grad_of(&nb->post_mean, d->post_mean), dqp = grad_of(&nb->post_p, d->post_p);
    vd_tensor dz = grad_of(&nb->z, d->z);
    be->i->fill(be, &dpm, 0.f);
    be->i->fill(be, &dpp, 0.f);
    be->i->fill(be, &dqm, 0.f);
    be->i->fill(be, &dqp, 0.f);
    be->i->kl_bwd(be, base, beta, kl_scale, &nb->post_mean, &nb->post_p, &nb->prior_mean, &nb->prior_p, &dqm, &dqp,
                  &dpm, &dpp);
    be->i->latent_sample_bwd(be, base, beta, 1.f, &nb->post_p, &noise[nb->latent], &dz, &dqm, &dqp);
    vd_tensor dqraw = grad_of(&nb->post_raw, d->post_raw), dpraw = grad_of(&nb->prior_raw, d->prior_raw);
    be->i->latent_stats_bwd(be, base, beta, &nb->post_raw, res ? &nb->prior_mean : NULL, res ? &nb->prior_p : NULL,
                            &dqm, &dqp, &dqraw, res ? &dpm : NULL, res ? &dpp : NULL);
    be->i->latent_stats_bwd(be, base, beta, &nb->prior_raw, NULL, NULL, &dpm, &dpp, &dpraw, NULL, NULL);
    vd_tensor dq = grad_of(&nb->post_cell.out, d->post_out);
    conv_bwd(net, b->posterior_proj, VD_CONV_PRE_NONE, &nb->post_cell.out, &dqraw, &dq, false);
    vd_tensor dp_in = vd_tensor_channels(grad_of(&nb->prior_cell.out, d->prior_out), b->c_out, b->c_out);
    conv_bwd(net, b->prior_proj, VD_CONV_PRE_NONE, &nb->p_in, &dpraw, &dp_in, false);
}

/* dy1 (in g) gathers the stream, the posterior's concat half and the prior net's input. */
static void nets_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    const vd_net_grads *d = &net->d;
    int c = b->c_out;
    /* the posterior net's input, not kept from the forward pass; a recomputation just
     * filled it, and nothing in this block's backward writes it before here */
    if (!net->checkpoint) vd_net_fill_cat(net, b, nb);
    cell_bwd(net, &a->cells[b->posterior_cell], &nb->post_cell, d->post_out, d->cat, false);
    vd_tensor dcat = grad_of(&nb->cat, d->cat), dy1 = grad_of(&nb->y1, g);
    vd_tensor dcat_y = vd_tensor_channels(dcat, 0, c), dcat_s = vd_tensor_channels(dcat, c, b->skip_ch);
    be->i->axpy(be, 1.f, &dcat_y, &dy1);
    be->i->axpy(be, 1.f, &dcat_s, &d->skips[b->skip]);
    cell_bwd(net, &a->cells[b->prior_cell], &nb->prior_cell, d->prior_out, g, true);
}

static float *unpool_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    float *out = other_stream(net, g);
    vd_tensor dy1 = grad_of(&nb->y1, g), dact = grad_of(&nb->unpool_act, net->d.unpool_act);
    vd_tensor dpre = grad_of(&nb->unpool_pre, net->d.unpool_pre), dx = grad_of(&nb->in, out);
    be->i->broadcast_bwd(be, &dy1, G(net, b->scale_bias));
    be->i->upsample_bwd(be, b->stride, &dy1, &dact, false);
    be->i->act_bwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &nb->unpool_pre, &dact, &dpre, false);
    conv_bwd(net, b->resample, VD_CONV_PRE_NONE, &nb->in, &dpre, &dx, false);
    return out;
}

static float *down_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                       float kl_scale, float *g) {
    vd_backend *be = net->be;
    cells_bwd(net, b, nb, &g);
    /* g is now dy2: it reaches z_proj, the kl_residual half of the prior net and y1. */
    vd_tensor dy2 = grad_of(&nb->y2, g), dz = grad_of(&nb->z, net->d.z);
    vd_tensor dkl_res = vd_tensor_channels(grad_of(&nb->prior_cell.out, net->d.prior_out), 0, b->c_out);
    conv_bwd(net, b->z_proj, VD_CONV_PRE_NONE, &nb->z, &dy2, &dz, false);
    be->i->copy(be, &dy2, &dkl_res);
    latent_bwd(net, b, nb, noise, kl_scale);
    nets_bwd(net, b, nb, g);
    return b->resample >= 0 ? unpool_bwd(net, b, nb, g) : g;
}

static float *up_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    if (b->kind == VD_BLOCK_UP_SKIP) {
        /* what the skip projection and the pool read: the last cell's output, or the input */
        const vd_tensor *x = b->n_cells ? &nb->cells[b->n_cells - 1].out : &nb->in;
        float *dx_buf = g;
        if (b->resample >= 0) {
            dx_buf = other_stream(net, g);
            vd_tensor dy = grad_of(&nb->stream, g), dpre = grad_of(&nb->pool_pre, net->d.pool_pre);
            vd_tensor dx = grad_of(x, dx_buf);
            be->i->act_bwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &nb->pool_pre, &dy, &dpre, false);
            conv_bwd(net, b->resample, VD_CONV_PRE_NONE, x, &dpre, &dx, false);
        }
        vd_tensor dx = grad_of(x, dx_buf);
        conv_bwd(net, b->conv, VD_CONV_PRE_NONE, x, &net->d.skips[b->skip], &dx, true);
        g = dx_buf;
    }
    cells_bwd(net, b, nb, &g);
    return g;
}

static void output_bwd(vd_net *net, float recon_scale, float *g) {
    vd_backend *be = net->be;
    vd_tensor dlogits = grad_of(&net->logits, g);
    if (net->dataset_binarized) be->i->bernoulli_bwd(be, 2, recon_scale, &net->logits, &net->input, &dlogits);
    else be->i->dmol_bwd(be, &net->dmol, recon_scale, &net->logits, &net->input, &dlogits);
}

static void zero_skip_grads(vd_net *net) {
    const vd_arch *a = net->arch;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind == VD_BLOCK_UP_SKIP) net->be->i->fill(net->be, &net->d.skips[b->skip], 0.f);
    }
}

/* Block i's parameter gradients are final (each parameter belongs to the one block that uses
 * it): report them in runs of adjacent tensors. A scan of the table per block, a few thousand
 * compares a step, keeps the net free of a second index. */
static void report_final(vd_net *net, int i) {
    const vd_arch *a = net->arch;
    int64_t off = 0, len = 0;
    for (int p = 0; p < a->n_params; p++) {
        const vd_param *q = &a->params[p];
        if (q->block != i) continue;
        if (len && q->offset == off + len) {
            len += q->numel;
            continue;
        }
        if (len) net->grads_final(net->grads_final_ctx, off, len);
        off = q->offset, len = q->numel;
    }
    if (len) net->grads_final(net->grads_final_ctx, off, len);
}

void vd_net_backward(vd_net *net, const vd_noise *noise, float recon_scale, const float *kl_scale) {
    const vd_arch *a = net->arch;
    vd_backend *be = net->be;
    zero_skip_grads(net);
    vd_net_cat_forget(net); /* the caller may have run other passes since the forward */
    float *g = net->d.stream[0];
    for (int i = a->n_blocks - 1; i >= 0; i--) {
        const vd_block *b = &a->blocks[i];
        const vd_net_block *nb = &net->blocks[i];
        if (net->checkpoint) {
            vd_net_scope(net, i, VD_PHASE_RECOMPUTE);
            vd_net_block_fwd(net, i, noise, NULL, true);
        }
        vd_net_scope(net, i, VD_PHASE_BWD);
        switch (b->kind) {
        case VD_BLOCK_OUTPUT_CONV: {
            vd_net_scope(net, -1, VD_PHASE_BWD);
            output_bwd(net, recon_scale, g);
            vd_net_scope(net, i, VD_PHASE_BWD);
            float *dx_buf = other_stream(net, g);
            vd_tensor dy = grad_of(&nb->stream, g), dx = grad_of(&nb->in, dx_buf);
            conv_bwd(net, b->conv, VD_CONV_PRE_NONE, &nb->in, &dy, &dx, false);
            g = dx_buf;
            break;
        }
        case VD_BLOCK_DOWN: g = down_bwd(net, b, nb, noise, kl_scale[nb->latent], g); break;
        case VD_BLOCK_H0: {
            vd_tensor dy = grad_of(&nb->stream, g);
            be->i->broadcast_bwd(be, &dy, G(net, b->h0));
            /* The bottom-up stream's last output feeds nothing: its gradient is zero. */
            vd_tensor d0 = grad_of(&nb->in, g);
            be->i->fill(be, &d0, 0.f);
            break;
        }
        case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: g = up_bwd(net, b, nb, g); break;
        case VD_BLOCK_INPUT_CONV: {
            vd_tensor dy = grad_of(&nb->stream, g);
            conv_bwd(net, b->conv, VD_CONV_PRE_NONE, &nb->in, &dy, NULL, false);
            break;
        }
        }
        if (net->grads_final) report_final(net, i);
    }
    vd_backend_scope(be, "", -1);
}
