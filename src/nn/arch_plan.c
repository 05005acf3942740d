/* Cost model of an architecture: parameters, forward FLOPs and kept activations per block,
 * and the memory of a training step. Estimates for planning and `vdvae info`, not limits. */
#include <assert.h>

#include "nn/arch_internal.h"

#define F32 4.0

double vd_conv_flops(const vd_conv *c) {
    double out = (double)c->res_out * c->res_out * c->c_out;
    return 2.0 * out * c->c_in * c->kh * c->kw;
}

static double conv_act(const vd_conv *c) {
    return (double)c->c_in * c->res_in * c->res_in + (double)c->c_out * c->res_out * c->res_out;
}

/* Elementwise tensors a block's backward needs beyond its convs' inputs and outputs. */
static double extra_act(const vd_block *b) {
    double px_out = (double)b->res_out * b->res_out, px_in = (double)b->res_in * b->res_in;
    double e = 0;
    if (b->kind == VD_BLOCK_UP_SKIP && b->resample >= 0) e += b->c_out * px_out; /* LeakyReLU out */
    if (b->kind != VD_BLOCK_DOWN) return e;
    if (b->resample >= 0) e += b->c_out * (px_in + px_out); /* LeakyReLU out, upsampled + bias */
    e += 6.0 * b->n_variates * px_out; /* prior and posterior mean/std, eps, z */
    e += 2.0 * b->c_out * px_out;      /* y + kl_residual, + z_proj(z) */
    return e;
}

/* Activations kept per image (float32), as a PyTorch-style training step keeps them:
 * every conv's input (dW needs it) and output (the next SiLU or LeakyReLU backward needs
 * it) except the last conv output of each residual cell (a sum or a split follows, which
 * needs nothing), every cell's input (its first SiLU), plus extra_act. Tensors that two ops
 * share (e.g. a projection's output and the next cell's input) are counted twice, so this
 * errs high; recomputation (run.checkpoint_activations) is not modelled. */
void vd_arch_plan_blocks(vd_arch *a) {
    for (int i = 0; i < a->n_blocks; i++) {
        a->blocks[i].n_params = 0;
        a->blocks[i].fwd_flops = 0;
        a->blocks[i].act_bytes = F32 * extra_act(&a->blocks[i]);
    }
    for (int i = 0; i < a->n_params; i++) a->blocks[a->params[i].block].n_params += a->params[i].numel;
    for (int i = 0; i < a->n_convs; i++) {
        vd_block *b = &a->blocks[a->params[a->convs[i].weight].block];
        b->fwd_flops += vd_conv_flops(&a->convs[i]);
        b->act_bytes += F32 * conv_act(&a->convs[i]);
    }
    for (int i = 0; i < a->n_cells; i++) {
        const vd_cell *c = &a->cells[i];
        vd_block *b = &a->blocks[a->params[a->convs[c->first_conv].weight].block];
        const vd_conv *last = &a->convs[c->first_conv + c->n_convs - 1];
        b->act_bytes += F32 * ((double)c->c_in * c->res * c->res -
                               (double)last->c_out * last->res_out * last->res_out);
    }
    a->fwd_flops = a->act_bytes = 0;
    for (int i = 0; i < a->n_blocks; i++) {
        a->fwd_flops += a->blocks[i].fwd_flops;
        a->act_bytes += a->blocks[i].act_bytes;
    }
}

/* Parameters, gradients, two optimizer moments and EMA share one layout of total_floats. */
void vd_arch_memory_plan(const vd_arch *a, int batch, vd_arch_memory *m) {
    assert(batch >= 0);
    double one = F32 * (double)a->total_floats;
    m->params = m->grads = m->ema = one;
    m->moments = 2 * one;
    m->state = 5 * one;
    m->activations = a->act_bytes * batch;
    m->total = m->state + m->activations;
}

const char *vd_block_kind_str(vd_block_kind k) {
    switch (k) {
    case VD_BLOCK_INPUT_CONV: return "input_conv";
    case VD_BLOCK_UP: return "up";
    case VD_BLOCK_UP_SKIP: return "up_skip";
    case VD_BLOCK_H0: return "trainable_h";
    case VD_BLOCK_DOWN: return "down";
    case VD_BLOCK_OUTPUT_CONV: return "output_conv";
    }
    return "?";
}

const char *vd_init_kind_str(vd_init_kind k) {
    switch (k) {
    case VD_INIT_ZEROS: return "zeros";
    case VD_INIT_XAVIER_UNIFORM: return "xavier_uniform";
    case VD_INIT_TORCH_WEIGHT: return "torch_conv_weight";
    case VD_INIT_TORCH_BIAS: return "torch_conv_bias";
    case VD_INIT_H0_UNIFORM: return "h0_uniform";
    }
    return "?";
}
