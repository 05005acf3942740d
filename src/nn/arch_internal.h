/* Shared between the architecture builder's files: the per-level shapes the checker
 * derives from hparams and the builder consumes, and the block planner. */
#ifndef VD_NN_ARCH_INTERNAL_H
#define VD_NN_ARCH_INTERNAL_H

#include "vdvae/model.h"

/* Bounds that keep every shape product inside int64 and every table a sane size. */
#define VD_ARCH_MAX_CH (1 << 16)
#define VD_ARCH_MAX_RES (1 << 16)
#define VD_ARCH_MAX_KERNEL 64
#define VD_ARCH_MAX_REPEAT 4096      /* n_blocks_per_res, n_blocks, n_layers */
#define VD_ARCH_MAX_TENSORS 400000

typedef struct vd_arch_levels {
    int in_up[VD_MAX_LEVELS];        /* channels into bottom-up level i */
    int up_res[VD_MAX_LEVELS];       /* resolution of level i before its pool (= its skip's) */
    int in_down[VD_MAX_LEVELS];      /* channels into the first top-down block of level i */
    int down_res_in[VD_MAX_LEVELS], down_res_out[VD_MAX_LEVELS];
    int latent_res, n_td, out_ch;
    int64_t n_blocks, n_cells, n_convs, n_params; /* exact table sizes */
} vd_arch_levels;

/* Validate what the architecture depends on and derive the level shapes. */
vd_status vd_arch_check(const vd_hparams *hp, vd_arch_levels *lv, vd_err *err);
/* Fill each block's n_params, fwd_flops, act_bytes and the arch totals. */
void vd_arch_plan_blocks(vd_arch *a);

#endif
