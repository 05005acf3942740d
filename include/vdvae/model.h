/* The architecture of a model as data: the parameter table in the reference state_dict's
 * order and names, the convolutions, residual cells and blocks that use it, FLOPs and a memory plan. */
#ifndef VDVAE_MODEL_H
#define VDVAE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VD_PARAM_NAME_MAX 128

/* How a tensor is initialised; every random kind is U(-init_bound, +init_bound), then the
 * tensor is multiplied by init_scale. */
typedef enum vd_init_kind {
    VD_INIT_ZEROS,
    VD_INIT_XAVIER_UNIFORM, /* bound sqrt(6 / (fan_in + fan_out)): our convs */
    VD_INIT_TORCH_WEIGHT,   /* PyTorch Conv2d default: kaiming-uniform a=sqrt(5), 1/sqrt(fan_in) */
    VD_INIT_TORCH_BIAS,     /* PyTorch Conv2d default bias: 1/sqrt(fan_in) of its weight */
    VD_INIT_H0_UNIFORM,     /* trainable_h: kaiming-uniform, linear gain, sqrt(3 / (C*r*r)) */
} vd_init_kind;

typedef struct vd_param {
    char name[VD_PARAM_NAME_MAX]; /* reference state_dict name, e.g. "top_down.output_conv.bias" */
    int ndim;                     /* 1 (bias) or 4 (OIHW weight, or (1, C, H, W)) */
    int64_t shape[4];
    int64_t numel;
    int64_t offset;               /* floats into the flat params/grads/moments/EMA buffers */
    vd_init_kind init;
    double init_bound, init_scale;
    int64_t fan_in, fan_out;      /* a bias carries its weight's fans */
    bool weight_decay;            /* decoupled weight decay applies (docs/model.md section 5) */
    int block;                    /* index into vd_arch.blocks */
} vd_param;

/* A conv with TF-style 'same' padding: total pad k - stride per axis; pad_top/pad_left
 * say where the odd pixel goes (the reference puts it first for its own Conv2d and last
 * for the first conv of a ResidualCell, a plain torch Conv2d). */
typedef struct vd_conv {
    int c_in, c_out, kh, kw, stride;
    int res_in, res_out;          /* square spatial size of input and output */
    int pad_top, pad_left, pad_bottom, pad_right;
    int weight, bias;             /* indices into vd_arch.params */
} vd_conv;

/* ResidualCell: n_convs = n_layers + 2 convs, each preceded by SiLU; output is
 * input + result when residual. */
typedef struct vd_cell {
    int first_conv, n_convs;      /* range in vd_arch.convs */
    int c_in, c_mid, c_out, res;
    bool residual;
} vd_cell;

typedef enum vd_block_kind {
    VD_BLOCK_INPUT_CONV,
    VD_BLOCK_UP,          /* bottom-up, stride 1, no skip */
    VD_BLOCK_UP_SKIP,     /* bottom-up, emits a skip, pools when stride > 1 */
    VD_BLOCK_H0,          /* trainable_h, tiled over the batch */
    VD_BLOCK_DOWN,        /* top-down, unpools when stride > 1 */
    VD_BLOCK_OUTPUT_CONV,
} vd_block_kind;

/* One block in execution order. Indices are -1 where a block has no such part. */
typedef struct vd_block {
    vd_block_kind kind;
    int level;                    /* i of the up_* / down_* lists; -1 for the others */
    int res_in, res_out, c_in, c_out, stride;
    int first_cell, n_cells;      /* residual_block, in vd_arch.cells */
    int conv;                     /* input/output conv, skip projection (UP_SKIP) */
    int resample;                 /* pool (UP_SKIP) or unpool (DOWN) conv */
    int scale_bias;               /* param index of the unpool bias (DOWN, stride > 1) */
    int h0;                       /* param index of trainable_h (H0) */
    int prior_cell, posterior_cell, prior_proj, posterior_proj, z_proj; /* DOWN */
    int n_variates;               /* DOWN: latent variates V */
    int skip;                     /* UP_SKIP: its skip number counted from the deepest;
                                     DOWN: the skip it reads (same numbering) */
    int skip_ch;                  /* channels of that skip */
    int64_t n_params;
    double fwd_flops;             /* per image: 2 * MACs of its convs */
    double act_bytes;             /* per image: activations a training step keeps */
} vd_block;

typedef struct vd_arch {
    vd_param *params;  int n_params;   /* state_dict order */
    vd_conv *convs;    int n_convs;
    vd_cell *cells;    int n_cells;
    vd_block *blocks;  int n_blocks;   /* execution order */
    int64_t total_floats;              /* size of each flat buffer */
    int n_td, n_skips, latent_res, image_res, image_ch, out_ch;
    int default_batch;                 /* train.batch_size */
    double fwd_flops;                  /* per image */
    double act_bytes;                  /* per image */
} vd_arch;

/* Memory of a training step at batch size `batch`, in bytes. */
typedef struct vd_arch_memory {
    double params, grads, moments, ema; /* moments: two buffers */
    double state;                       /* sum of the four */
    double activations;                 /* act_bytes * batch */
    double total;
} vd_arch_memory;

/* Build the architecture of hp; VD_ERR_INVALID names the offending model.* key. */
vd_status vd_arch_build(vd_arch *a, const vd_hparams *hp, vd_err *err);
void vd_arch_free(vd_arch *a);
/* Index of the parameter called name, or -1. */
int vd_arch_find_param(const vd_arch *a, const char *name);
void vd_arch_memory_plan(const vd_arch *a, int batch, vd_arch_memory *m);
/* Forward FLOPs of one conv per image: 2 * res_out^2 * c_out * c_in * kh * kw. */
double vd_conv_flops(const vd_conv *c);

/* The per-latent-group temperatures (top-down order, a->n_td of them) of one
 * temperature_settings entry: a level's value is shared by its blocks; ('linear', a, b) gives
 * level i the value a + (b - a) i / n_levels, n_levels = len(down_strides). */
void vd_arch_latent_temps(const vd_arch *a, int n_levels, const vd_temp_setting *t, float *temps);

const char *vd_block_kind_str(vd_block_kind k);
const char *vd_init_kind_str(vd_init_kind k);

#ifdef __cplusplus
}
#endif
#endif
