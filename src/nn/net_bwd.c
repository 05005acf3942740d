/* The backward pass, blocks in reverse: parameter gradients accumulate into net->grads,
 * activation gradients flow through two ping-pong stream buffers, the skips' gradients
 * gather from every top-down block that reads them. Recomputes each conv's SiLU input
 * instead of storing it, and with checkpointing each block's internals before its backward. */
#include "nn/net.h"

#define LEAKY_SLOPE 0.1f

static vd_tensor T(const vd_net *net, float *p, int res, int c) {
    return vd_tensor_make(p, net->batch, res, res, c);
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

/* din (=|+=) d(cell)/d(input) . dout; dout and din are outside the scratch buffers. A residual
 * cell whose din would be written (not accumulated) adds its branch's gradient onto dout in
 * place instead, saving the pass that would add dout to din; returns where the result is. */
static float *cell_bwd(vd_net *net, const vd_cell *cell, const vd_net_cell *nc, float *dout, float *din, bool acc) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    int r = cell->res;
    bool in_place = cell->residual && !acc;
    float *g = dout, *result = in_place ? dout : din;
    for (int k = cell->n_convs - 1; k >= 0; k--) {
        const vd_conv *c = &a->convs[cell->first_conv + k];
        vd_tensor x = T(net, nc->pre[k], r, c->c_in);
        vd_tensor dy = T(net, g, r, c->c_out), ds = T(net, net->scratch[1], r, c->c_in);
        conv_bwd(net, cell->first_conv + k, VD_CONV_PRE_SILU, &x, &dy, &ds, false);
        float *target = k == 0 ? result : net->scratch[2 + (k & 1)];
        vd_tensor dx = T(net, target, r, c->c_in);
        be->i->act_bwd(be, VD_ACT_SILU, 0.f, &x, &ds, &dx, k == 0 ? acc || in_place : false);
        g = target;
    }
    if (cell->residual && !in_place) {
        vd_tensor d_out = T(net, dout, r, cell->c_out), d_in = T(net, din, r, cell->c_in);
        be->i->axpy(be, 1.f, &d_out, &d_in);
    }
    return result;
}

/* The residual_block cells in reverse; *g moves between the two stream buffers. */
static void cells_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float **g) {
    for (int k = b->n_cells - 1; k >= 0; k--) {
        float *other = *g == net->dstream[0] ? net->dstream[1] : net->dstream[0];
        *g = cell_bwd(net, &net->arch->cells[b->first_cell + k], &nb->cells[k], *g, other, false);
    }
}

static float *other_stream(vd_net *net, const float *g) {
    return g == net->dstream[0] ? net->dstream[1] : net->dstream[0];
}

/* Gradients of the KL term and of the posterior sample into the latent statistics, then
 * through the projections to the posterior and prior nets' outputs. */
static void latent_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise, float kl_scale) {
    vd_backend *be = net->be;
    int r = b->res_out, c = b->c_out, v = b->n_variates, base = net->dist_base;
    float beta = net->dist_beta;
    vd_tensor pm = T(net, nb->prior_mean, r, v), pp = T(net, nb->prior_p, r, v);
    vd_tensor qm = T(net, nb->post_mean, r, v), qp = T(net, nb->post_p, r, v);
    vd_tensor dpm = T(net, net->dprior_mean, r, v), dpp = T(net, net->dprior_p, r, v);
    vd_tensor dqm = T(net, net->dpost_mean, r, v), dqp = T(net, net->dpost_p, r, v);
    vd_tensor dz = T(net, net->dz, r, v);
    be->i->fill(be, &dpm, 0.f);
    be->i->fill(be, &dpp, 0.f);
    be->i->fill(be, &dqm, 0.f);
    be->i->fill(be, &dqp, 0.f);
    be->i->kl_bwd(be, base, beta, kl_scale, &qm, &qp, &pm, &pp, &dqm, &dqp, &dpm, &dpp);
    be->i->latent_sample_bwd(be, base, beta, 1.f, &qp, &noise[nb->latent], &dz, &dqm, &dqp);
    vd_tensor qraw = T(net, nb->post_raw, r, 2 * v), praw = T(net, nb->prior_raw, r, 2 * v);
    vd_tensor dqraw = T(net, net->draw_q, r, 2 * v), dpraw = T(net, net->draw_p, r, 2 * v);
    bool res = net->residual_dist;
    be->i->latent_stats_bwd(be, base, beta, &qraw, res ? &pm : NULL, res ? &pp : NULL, &dqm, &dqp, &dqraw,
                            res ? &dpm : NULL, res ? &dpp : NULL);
    be->i->latent_stats_bwd(be, base, beta, &praw, NULL, NULL, &dpm, &dpp, &dpraw, NULL, NULL);
    vd_tensor q = T(net, nb->post_cell.out, r, c), dq = T(net, net->dq, r, c);
    conv_bwd(net, b->posterior_proj, VD_CONV_PRE_NONE, &q, &dqraw, &dq, false);
    vd_tensor pr = T(net, nb->prior_cell.out, r, 2 * c), dpr = T(net, net->dpr, r, 2 * c);
    vd_tensor p_in = vd_tensor_channels(pr, c, c), dp_in = vd_tensor_channels(dpr, c, c);
    conv_bwd(net, b->prior_proj, VD_CONV_PRE_NONE, &p_in, &dpraw, &dp_in, false);
}

/* dy1 (in g) gathers the stream, the posterior's concat half and the prior net's input. */
static void nets_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    int r = b->res_out, c = b->c_out;
    /* the posterior net's input, not kept from the forward pass; a recomputation just
     * filled it, and nothing in this block's backward writes it before here */
    if (!net->checkpoint) vd_net_fill_cat(net, b, nb);
    cell_bwd(net, &a->cells[b->posterior_cell], &nb->post_cell, net->dq, net->dcat, false);
    vd_tensor dcat = T(net, net->dcat, r, c + b->skip_ch), dy1 = T(net, g, r, c);
    vd_tensor dcat_y = vd_tensor_channels(dcat, 0, c), dcat_s = vd_tensor_channels(dcat, c, b->skip_ch);
    vd_tensor dskip = T(net, net->dskips[b->skip], r, b->skip_ch);
    be->i->axpy(be, 1.f, &dcat_y, &dy1);
    be->i->axpy(be, 1.f, &dcat_s, &dskip);
    cell_bwd(net, &a->cells[b->prior_cell], &nb->prior_cell, net->dpr, g, true);
}

static float *unpool_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    vd_tensor dy1 = T(net, g, b->res_out, b->c_out);
    vd_tensor dact = T(net, net->scratch[0], b->res_in, b->c_out), dpre = T(net, net->scratch[1], b->res_in, b->c_out);
    vd_tensor pre = T(net, nb->unpool_pre, b->res_in, b->c_out), x = T(net, nb->in, b->res_in, b->c_in);
    float *out = other_stream(net, g);
    vd_tensor dx = T(net, out, b->res_in, b->c_in);
    be->i->broadcast_bwd(be, &dy1, G(net, b->scale_bias));
    be->i->upsample_bwd(be, b->stride, &dy1, &dact, false);
    be->i->act_bwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &pre, &dact, &dpre, false);
    conv_bwd(net, b->resample, VD_CONV_PRE_NONE, &x, &dpre, &dx, false);
    return out;
}

static float *down_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, const vd_noise *noise,
                       float kl_scale, float *g) {
    vd_backend *be = net->be;
    int r = b->res_out, c = b->c_out;
    cells_bwd(net, b, nb, &g);
    /* g is now dy2: it reaches z_proj, the kl_residual half of the prior net and y1. */
    vd_tensor dy2 = T(net, g, r, c), z = T(net, nb->z, r, b->n_variates), dz = T(net, net->dz, r, b->n_variates);
    vd_tensor dkl_res = vd_tensor_channels(T(net, net->dpr, r, 2 * c), 0, c);
    conv_bwd(net, b->z_proj, VD_CONV_PRE_NONE, &z, &dy2, &dz, false);
    be->i->copy(be, &dy2, &dkl_res);
    latent_bwd(net, b, nb, noise, kl_scale);
    nets_bwd(net, b, nb, g);
    return b->resample >= 0 ? unpool_bwd(net, b, nb, g) : g;
}

static float *up_bwd(vd_net *net, const vd_block *b, const vd_net_block *nb, float *g) {
    vd_backend *be = net->be;
    if (b->kind == VD_BLOCK_UP_SKIP) {
        float *x_ptr = b->n_cells ? nb->cells[b->n_cells - 1].out : nb->in;
        vd_tensor x = T(net, x_ptr, b->res_in, b->c_in), dskip = T(net, net->dskips[b->skip], b->res_in, b->skip_ch);
        float *dx_ptr = g;
        if (b->resample >= 0) {
            vd_tensor dy = T(net, g, b->res_out, b->c_out), pre = T(net, nb->pool_pre, b->res_out, b->c_out);
            vd_tensor dpre = T(net, net->scratch[0], b->res_out, b->c_out);
            dx_ptr = other_stream(net, g);
            vd_tensor dx = T(net, dx_ptr, b->res_in, b->c_in);
            be->i->act_bwd(be, VD_ACT_LEAKY_RELU, LEAKY_SLOPE, &pre, &dy, &dpre, false);
            conv_bwd(net, b->resample, VD_CONV_PRE_NONE, &x, &dpre, &dx, false);
        }
        vd_tensor dx = T(net, dx_ptr, b->res_in, b->c_in);
        conv_bwd(net, b->conv, VD_CONV_PRE_NONE, &x, &dskip, &dx, true);
        g = dx_ptr;
    }
    cells_bwd(net, b, nb, &g);
    return g;
}

static void output_bwd(vd_net *net, float recon_scale, float *dlogits_buf) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_tensor logits = T(net, net->logits, a->image_res, a->out_ch), x = T(net, net->input, a->image_res, a->image_ch);
    vd_tensor dlogits = T(net, dlogits_buf, a->image_res, a->out_ch);
    if (net->dataset_binarized) be->i->bernoulli_bwd(be, 2, recon_scale, &logits, &x, &dlogits);
    else be->i->dmol_bwd(be, &net->dmol, recon_scale, &logits, &x, &dlogits);
}

static void zero_skip_grads(vd_net *net) {
    const vd_arch *a = net->arch;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind != VD_BLOCK_UP_SKIP) continue;
        vd_tensor d = T(net, net->dskips[b->skip], b->res_in, b->skip_ch);
        net->be->i->fill(net->be, &d, 0.f);
    }
}

void vd_net_backward(vd_net *net, const vd_noise *noise, float recon_scale, const float *kl_scale) {
    const vd_arch *a = net->arch;
    vd_backend *be = net->be;
    zero_skip_grads(net);
    vd_net_cat_forget(net); /* the caller may have run other passes since the forward */
    float *g = net->dstream[0];
    for (int i = a->n_blocks - 1; i >= 0; i--) {
        const vd_block *b = &a->blocks[i];
        const vd_net_block *nb = &net->blocks[i];
        vd_tensor in = T(net, nb->in, b->res_in, b->c_in);
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
            vd_tensor dy = T(net, g, b->res_out, b->c_out);
            float *dx = other_stream(net, g);
            vd_tensor dxt = T(net, dx, b->res_in, b->c_in);
            conv_bwd(net, b->conv, VD_CONV_PRE_NONE, &in, &dy, &dxt, false);
            g = dx;
            break;
        }
        case VD_BLOCK_DOWN: g = down_bwd(net, b, nb, noise, kl_scale[nb->latent], g); break;
        case VD_BLOCK_H0: {
            vd_tensor dy = T(net, g, b->res_out, b->c_out);
            be->i->broadcast_bwd(be, &dy, G(net, b->h0));
            /* The bottom-up stream's last output feeds nothing: its gradient is zero. */
            const vd_block *last_up = &a->blocks[i - 1];
            vd_tensor d0 = T(net, g, last_up->res_out, last_up->c_out);
            be->i->fill(be, &d0, 0.f);
            break;
        }
        case VD_BLOCK_UP: case VD_BLOCK_UP_SKIP: g = up_bwd(net, b, nb, g); break;
        case VD_BLOCK_INPUT_CONV: {
            vd_tensor dy = T(net, g, b->res_out, b->c_out);
            conv_bwd(net, b->conv, VD_CONV_PRE_NONE, &in, &dy, NULL, false);
            break;
        }
        }
    }
    vd_backend_scope(be, "", -1);
}
