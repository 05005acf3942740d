/* The network as a sequence of op calls (docs/model.md sections 2 and 4): forward with posterior
 * sampling, the loss terms, and backward, block by block, over the architecture table.
 * Parameters and gradients are flat buffers in the arch's layout; every activation the
 * backward pass needs lives in one arena planned for the batch size at creation, so a
 * training step allocates nothing. */
#ifndef VD_NN_NET_H
#define VD_NN_NET_H

#include "backend/ops.h"
#include "vdvae/config.h"
#include "vdvae/model.h"

/* What one residual cell keeps for backward: the input of each conv before its SiLU.
 * Shapes are per batch B at the cell's resolution. */
typedef struct vd_net_cell {
    vd_tensor *pre;  /* [n_convs]: conv k's input [res, c_in of conv k]; pre[0] is the cell
                        input (owned by whoever made it) */
    vd_tensor out;   /* [res, c_out] */
} vd_net_cell;

/* What one block keeps, planned once with its shape; unused fields stay empty. Shapes in
 * comments are per batch B, at the block's output resolution r unless said otherwise. */
typedef struct vd_net_block {
    vd_tensor in;          /* [res_in, c_in] the stream entering the block (the previous
                              block's stream; input_conv: the net's input) */
    vd_tensor pool_pre;    /* UP_SKIP with stride: pool conv output before LeakyReLU [r, c_out] */
    vd_tensor stream;      /* output of the block's stream [r, c_out] (UP: after pool if any) */
    vd_tensor skip;        /* UP_SKIP: its skip projection [res_in, skip_ch];
                              DOWN: the skip it reads [r, skip_ch] */
    vd_tensor unpool_pre;  /* DOWN with stride: unpool conv output before LeakyReLU [res_in, c] */
    vd_tensor unpool_act;  /* DOWN with stride: after the LeakyReLU [res_in, c]; a temporary
                              (a scratch buffer that other blocks and the backward share) */
    vd_tensor y1;          /* DOWN: after unpool (or = in) [r, c] */
    vd_tensor cat;         /* DOWN: concat(y1, skip) [r, c + skip_ch] in the net's one concat
                              buffer, refilled before each read (vd_net_fill_cat) */
    vd_tensor kl_residual, p_in; /* DOWN: the prior net's output split: [r, c] views of
                                    prior_cell.out's channels [0, c) and [c, 2c) */
    vd_tensor prior_raw, post_raw;  /* DOWN: the latent projections [r, 2V] */
    vd_tensor prior_mean, prior_p, post_mean, post_p, z; /* DOWN: [r, V] */
    vd_tensor z_prior;     /* DOWN, masked inference: the prior sample masked variates take
                              [r, V]; a temporary like unpool_act */
    vd_tensor y2;          /* DOWN: y1 + kl_residual + z_proj(z) [r, c] */
    vd_net_cell *cells;    /* residual_block cells */
    vd_net_cell prior_cell, post_cell; /* DOWN: prior net [r, c] -> [r, 2c];
                                          posterior net [r, c + skip_ch] -> [r, c] */
    int latent;            /* DOWN: index of its latent group (0 .. n_td-1) */
} vd_net_block;

/* The backward pass's gradient buffers, named for the tensors whose gradients they hold
 * (the gradient of nb->z lives in d.z); each is sized for the largest of those tensors over
 * all blocks, and the backward views it at the shape of the one it holds now. Buffers whose
 * roles never live at once share memory (net_plan.c). */
typedef struct vd_net_grads {
    float *stream[2];       /* the stream's gradient, ping-pong between blocks and cells */
    float *silu;            /* a cell conv's input gradient after its SiLU [res, c_in] */
    float *cell_pre[2];     /* a cell's inner conv inputs (pre[k], k >= 1), alternating */
    float *pool_pre;        /* UP_SKIP with stride */
    float *unpool_act, *unpool_pre;            /* DOWN with stride */
    float *prior_out, *post_out, *cat;         /* prior_cell.out, post_cell.out, cat */
    float *prior_raw, *post_raw;
    float *prior_mean, *prior_p, *post_mean, *post_p, *z;
    vd_tensor *skips;       /* [n_skips] each skip's gradient, gathered over its readers */
} vd_net_grads;

typedef struct vd_net {
    const vd_arch *arch;
    vd_backend *be;
    int batch;                   /* the images a pass runs on now: every tensor's n */
    int max_batch;               /* the batch the arena is planned for (vd_net_set_batch) */
    bool dataset_binarized;      /* Bernoulli output instead of DMoL */
    vd_dmol dmol;
    vd_dist_base dist_base;      /* of the latents */
    float dist_beta;
    bool residual_dist;          /* posterior relative to the prior (docs/model.md section 2.5, step 4) */
    float *params, *grads;       /* [arch->total_floats] each */
    float *arena;                /* saved activations, then the work region */
    int64_t arena_floats;
    bool checkpoint;             /* activation checkpointing: blocks keep only their outputs */
    int64_t work_floats;         /* checkpointing: the region every block's internals share */
    vd_net_grads d;              /* gradient temporaries of the backward pass */
    vd_tensor *skips;            /* [n_skips] the skips [B, res, res, skip_ch] */
    float *cat;                  /* one concat(y1, skip) buffer for every block: filled again
                                    before each read instead of kept per block (nb->cat) */
    int cat_skip[3];             /* skip index, channel offset and resolution whose skip half
                                    net->cat holds now ({-1} after the skips may have changed):
                                    consecutive blocks reading one skip copy it once */
    vd_tensor input;             /* [B, R, R, C] */
    vd_tensor logits;            /* [B, R, R, out_ch] */
    float *sums;                 /* device: [0] output nll sum, [1 + i] KL sum of latent i */
    vd_net_block *blocks;        /* one per arch block */
    int *latent_block;           /* [n_td]: block index of each latent group */
    /* Optional (NULL: not called): vd_net_backward calls it once a block's backward is done,
     * for each contiguous range of that block's parameter gradients (floats into grads), which
     * nothing later in the pass touches: a data-parallel trainer starts summing them over its
     * ranks while the blocks below are still in backward. Every float is reported once a pass. */
    void (*grads_final)(void *ctx, int64_t offset, int64_t n);
    void *grads_final_ctx;
} vd_net;

typedef struct vd_net_opts {
    int batch;
    bool dataset_binarized;
    vd_dist_base dist_base, output_base;
    float dist_beta, output_beta, min_mol_logscale;
    bool residual_dist;
    int n_mix, channels, num_bits;
    /* Keep only what crosses block boundaries and recompute a block's internals in the
     * backward pass (run.checkpoint_activations). The per-block tensors of vd_net_block
     * then hold the last block run, so inference that reads them (encoding) leaves it off. */
    bool checkpoint;
} vd_net_opts;

void vd_net_opts_from_hparams(vd_net_opts *o, const vd_hparams *hp, int batch);
vd_status vd_net_create(vd_net *net, const vd_arch *arch, vd_backend *be, const vd_net_opts *o,
                        vd_err *err);
void vd_net_free(vd_net *net);

/* Run the following passes on the first n images (1 <= n <= max_batch; max_batch: back to the
 * full batch): every planned tensor keeps its memory and takes n, so a batch of n is a prefix
 * of the full one (NHWC, batch outermost) and the loss sums count those n images only. For a
 * partial last batch of an evaluation, where padding would count in the sums. */
vd_status vd_net_set_batch(vd_net *net, int n, vd_err *err);

/* Forward on net->input (uploaded by the caller into input.data): posterior samples use noise[i] for latent
 * group i. Leaves the output NLL and per-group KL sums in net->sums. */
void vd_net_forward(vd_net *net, const vd_noise *noise);

/* Inference controls of a forward pass, per latent group i (all optional):
 * - posterior_temperature: 1 samples the posterior, 0 takes its mean;
 * - masks[i]: device [V] of 0/1; variates with 0 take a prior sample drawn with
 *   prior_noise[i] instead of the posterior's (masked reconstruction, encoding);
 * - kl_per_variate[i]: device [V], += the KL of each variate summed over batch, H and W
 *   (div_stats). */
typedef struct vd_net_latents {
    float posterior_temperature;
    const float *const *masks;
    const vd_noise *prior_noise;
    float *const *kl_per_variate;
} vd_net_latents;

void vd_net_forward_ex(vd_net *net, const vd_noise *noise, const vd_net_latents *lat);

/* Decoding: the top-down path with latent group i set to z[i] (device [B, r, r, V], e.g.
 * stored posterior means); where masks[i] has a 0, or z[i] is NULL, a prior sample at
 * temps[i] with prior_noise[i]. Leaves the output layer in net->logits. */
void vd_net_decode(vd_net *net, const float *const *z, const float *const *masks, const float *temps,
                   const vd_noise *prior_noise);

/* Forward of arch block i alone from its kept inputs. recompute: refill what its backward
 * reads (checkpointing) and skip work whose results are kept or unused (KL sums, outputs). */
void vd_net_block_fwd(vd_net *net, int i, const vd_noise *noise, const vd_net_latents *lat, bool recompute);

/* Tell a profiling backend that block `block` (-1: the output loss) runs in `phase`. */
void vd_net_scope(vd_net *net, int block, int phase);

/* Backward of recon_scale * nll + sum_i kl_scale[i] * KL_i, accumulating into net->grads. */
void vd_net_backward(vd_net *net, const vd_noise *noise, float recon_scale, const float *kl_scale);

/* Generation: the top-down path from h0 with latent group i drawn from its prior at
 * temperature temps[i] with noise[i]; leaves the output layer in net->logits. */
void vd_net_generate(vd_net *net, const float *temps, const vd_noise *noise);

/* Sample images from net->logits: MoL at `temperature` into out [B, R, R, C] in [-1, 1], or
 * Bernoulli into out [B, 28, 28, 1] for binarized MNIST. */
void vd_net_sample_output(vd_net *net, float temperature, const vd_noise *noise, float *out);

/* Parameters drawn as docs/model.md section 3 prescribes, from Philox under seed: into a host
 * buffer of arch->total_floats, or into the net's parameters. */
void vd_arch_init_params(const vd_arch *a, uint64_t seed, float *host);
vd_status vd_net_init_params(vd_net *net, uint64_t seed, vd_err *err);

/* Fill net->cat with concat(y1, skip) of a top-down block (forward and backward); the skip half
 * only when it holds another skip (vd_net_cat_forget: the skips changed). */
void vd_net_cat_forget(vd_net *net);
void vd_net_fill_cat(vd_net *net, const vd_block *b, const vd_net_block *nb);

/* Conv of an arch conv on views x -> y, with the net's parameters. */
vd_conv_desc vd_net_conv_desc(const vd_conv *c);

#endif
