/* cpu convolutions through oneDNN 3.x. Each distinct call (direction, shape, pads, channel
 * strides of the activations, bias, accumulate, a fused LeakyReLU of the forward's output:
 * conv_fwd_act) gets its primitive built once and kept in a
 * hash table; a later call only points the cached memory objects at its buffers, so the
 * steady state allocates nothing. Scratchpads, reordered weights and dense copies live in
 * one workspace that grows on a cache miss only.
 *
 * Two routes, because oneDNN's fast convolutions accept only dense NHWC (a channel view,
 * ld > c, falls back to its reference loops, ~1000x slower):
 * - 1x1, stride 1, no padding (most of this model's convs): a matmul over pixels. Matmul
 *   takes any leading dimension, so views need no copies, reads our OIHW weights as they
 *   are, and its sum post-op gives dx += and dw += for free.
 * - everything else: a convolution primitive on dense NHWC with weights in the layout it
 *   picks (format any) and a cached reorder from/to our OIHW; a view is first copied to a
 *   dense buffer (rare: the model feeds views mostly to 1x1 convs). dw is reordered back
 *   with a sum post-op (dw +=); dx += and db += go through the workspace.
 *
 * bf16 precision (vd_cpu_conv_set_precision): the inputs of a call (x, dy, w) are converted
 * to bf16 into the workspace on every call (cpu_bf16.c), and oneDNN's bf16 kernels write
 * float32 outputs. The converted copies are dense, so the conversion is also the packing of
 * views. Weights are converted per call, never cached: the optimizer changes them in place
 * between steps and they are small next to the activations. db is the channel sum of the
 * float32 dy (the contract in ops.h), taken while dy is converted. 1x1 backward-weights over
 * many pixels leaves the matmul route in bf16: the matmul reads dY^T and X through copies of
 * its own (~350 GFLOP/s at cifar10's 32x32 shapes) where the convolution's jit_bf16_1x1 kernel
 * reaches ~600-800; over few pixels the matmul stays faster. Where oneDNN has only a
 * reference kernel for a bf16 call (a CPU without AVX-512), or its bf16 kernel is the slower
 * one (bf16_kernel_slower), the call runs the fp32 kernel on float copies of the bf16-rounded
 * inputs instead: the same rounded inputs and float32 sums, never ~1000x slower.
 *
 * Weights stay OIHW in bf16 too, though oneDNN reorders them into its bf16 forward layout
 * (OhwI64o2i: input-channel pairs interleaved) 3-4x slower than into the fp32 one (256x256x3x3
 * on 2 Zen 4 cores: 0.32 vs 0.08 ms; binarized_mnist_baseline b32: ~25 ms of a 1 s step).
 * Converting to HWIO instead (a transposing conversion; the reorder from HWIO is 3-4x faster)
 * was measured and dropped: the transpose costs about what it saves, no step got faster
 * (mnist within +-1%, cifar10's forward convs 1-10% slower). */
#ifdef VD_HAVE_ONEDNN

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/dnnl_check.h"

#define WS_ALIGN 64
#define CACHE_MIN_SLOTS 64
/* From this many pixels (N H W) on, bf16 1x1 backward weights is faster as a convolution than
 * as a matmul (measured on the model's shapes: 1.1-1.4x at 2048 and 8192 pixels, a tie at 512;
 * at 8-128 pixels the matmul is 1.3-12x faster). */
#define BF16_BWD_W_CONV_PIXELS 1024

enum { DIR_FWD, DIR_BWD_DATA, DIR_BWD_WEIGHTS, NDIRS };
enum { ROLE_X, ROLE_W, ROLE_B, ROLE_Y, NROLES }; /* x|dx, w|dw, b|db, y|dy */
/* The precision of a call: fp32; bf16 on oneDNN's bf16 kernels (rounded floats on fp32 kernels
 * where oneDNN has only a reference one); bf16 always as rounded floats (for tests). */
enum { PREC_FP32, PREC_BF16, PREC_BF16_ROUNDED };

/* oneDNN argument of each role: [gemm][direction][role]; 0 where the call has none. */
static const int role_args[2][NDIRS][NROLES] = {
    {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
     {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_DIFF_DST},
     {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS, DNNL_ARG_DIFF_DST}},
    /* matmul: fwd Y = X W^T + b; bwd-data dX = dY W; bwd-weights dW = dY^T X */
    {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
     {DNNL_ARG_DST, DNNL_ARG_WEIGHTS, 0, DNNL_ARG_SRC},
     {DNNL_ARG_WEIGHTS, DNNL_ARG_DST, 0, DNNL_ARG_SRC}},
};

/* Compared with memcmp: always built from a zeroed struct. */
typedef struct conv_key {
    int64_t ld_x, ld_y; /* channel strides of x (or dx) and y (or dy) */
    int32_t dir, n, h, w, c_in, c_out, kh, kw, stride, pad[4], bias, acc, pre_act;
    int32_t prec;   /* PREC_* */
    int32_t relu;   /* forward: LeakyReLU of slope relu_alpha on y (conv_fwd_act) */
    float relu_alpha;
} conv_key;

typedef struct conv_entry {
    conv_key key;
    int ho, wo;
    bool gemm;           /* the matmul route */
    bool pack_x, pack_y; /* x (or dx) / y (or dy) go through a dense workspace copy */
    bool round[NROLES];  /* bf16: the inputs (x, w, dy of the direction) are converted */
    bool rounded;        /* ... to bf16-rounded floats for fp32 kernels, not to bf16 */
    bool prim_bias;      /* the primitive itself takes b (forward) or writes db */
    dnnl_data_type_t dt[NROLES]; /* what the primitive reads or writes per role */
    dnnl_primitive_t prim;
    dnnl_memory_t role[NROLES]; /* handles set per call; NULL where unused */
    dnnl_memory_t scratch;      /* the primitive's scratchpad, NULL when it needs none */
    dnnl_exec_arg_t args[NROLES + 1];
    int nargs;
    dnnl_primitive_t reorder; /* our OIHW weights <-> the primitive's layout, or NULL */
    dnnl_memory_t user_w, reorder_scratch;
    size_t w_bytes, reorder_scratch_bytes; /* the reordered weights, the reorder's scratchpad */
    size_t off_w, off_wc, off_b, off_x, off_y, ws_bytes; /* workspace layout of this call;
                                                           off_wc: the converted weights */
    char impl[64]; /* oneDNN's implementation name, for vd_cpu_conv_last_kernel */
} conv_entry;

struct vd_cpu_conv {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_entry **slots; /* [cap], open addressing with linear probing */
    size_t cap, count;
    void *ws; /* [ws_bytes] scratchpads, reordered weights, dense and converted copies */
    size_t ws_bytes;
    int prec; /* PREC_* of the calls that follow */
    void *stash; /* [stash_bytes] dy converted once for both backward directions (conv_bwd) */
    size_t stash_bytes;
    const conv_entry *last; /* the entry of the last call (vd_cpu_conv_last_kernel) */
};

/* The tensors and pointers of one call by role. */
typedef struct conv_io {
    const vd_tensor *x, *y;
    float *w, *b;
    const void *y_staged; /* conv_bwd: dy already converted (and db summed) here, or NULL */
    bool relu;            /* forward: y = LeakyReLU(relu_alpha) of the conv (conv_fwd_act) */
    float relu_alpha;
} conv_io;

/* ---- the cache ---- */

static uint64_t key_hash(const conv_key *k) {
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static conv_entry *cache_find(const vd_cpu_conv *cc, const conv_key *k) {
    if (!cc->cap) return NULL;
    for (size_t i = key_hash(k) & (cc->cap - 1);; i = (i + 1) & (cc->cap - 1)) {
        conv_entry *e = cc->slots[i];
        if (!e || memcmp(&e->key, k, sizeof *k) == 0) return e;
    }
}

static void cache_place(conv_entry **slots, size_t cap, conv_entry *e) {
    size_t i = key_hash(&e->key) & (cap - 1);
    while (slots[i])
        i = (i + 1) & (cap - 1);
    slots[i] = e;
}

/* Keeps the table at most half full, so probes stay short and always find a hole. */
static vd_status cache_insert(vd_cpu_conv *cc, conv_entry *e, vd_err *err) {
    if (2 * (cc->count + 1) > cc->cap) {
        size_t cap = cc->cap ? 2 * cc->cap : CACHE_MIN_SLOTS;
        conv_entry **slots = calloc(cap, sizeof *slots);
        if (!slots) return vd_errorf(err, VD_ERR_NOMEM, "conv cache: cannot grow to %zu", cap);
        for (size_t i = 0; i < cc->cap; i++)
            if (cc->slots[i]) cache_place(slots, cap, cc->slots[i]);
        free(cc->slots);
        cc->slots = slots;
        cc->cap = cap;
    }
    cache_place(cc->slots, cc->cap, e);
    cc->count++;
    return VD_OK;
}

/* Grows a scratch buffer (*buf, *cap bytes) to at least `bytes`; contents never outlive a call. */
static vd_status buf_reserve(void **buf, size_t *cap, size_t bytes, const char *what, vd_err *err) {
    if (bytes <= *cap) return VD_OK;
    size_t rounded = (bytes + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    void *p = aligned_alloc(WS_ALIGN, rounded);
    if (!p) return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, bytes);
    free(*buf);
    *buf = p;
    *cap = rounded;
    return VD_OK;
}

static vd_status ws_reserve(vd_cpu_conv *cc, size_t bytes, vd_err *err) {
    return buf_reserve(&cc->ws, &cc->ws_bytes, bytes, "conv workspace", err);
}

static void entry_free(conv_entry *e) {
    if (!e) return;
    for (int r = 0; r < NROLES; r++)
        if (e->role[r]) dnnl_memory_destroy(e->role[r]);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->reorder) dnnl_primitive_destroy(e->reorder);
    if (e->user_w) dnnl_memory_destroy(e->user_w);
    if (e->reorder_scratch) dnnl_memory_destroy(e->reorder_scratch);
    free(e);
}

/* ---- building a primitive ---- */

static vd_status md_strided(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims,
                            const dnnl_dims_t strides, dnnl_data_type_t dt, vd_err *err) {
    VD_DNNL_CHECK(dnnl_memory_desc_create_with_strides(md, nd, dims, dt, strides), err);
    return VD_OK;
}

/* Rows x cols with the given row and column strides (a transposed view when cs > 1). */
static vd_status md_2d(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                       dnnl_data_type_t dt, vd_err *err) {
    dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
    return md_strided(md, 2, dims, strides, dt, err);
}

/* Dense NHWC, given in oneDNN's logical NCHW order. */
static vd_status md_nhwc(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_data_type_t dt,
                         vd_err *err) {
    dnnl_dims_t dims = {n, c, h, w}, strides = {(int64_t)h * w * c, 1, (int64_t)w * c, c};
    return md_strided(md, 4, dims, strides, dt, err);
}

/* w is what the primitive is asked for (format any where it may choose), w_user our layout. */
typedef struct conv_mds {
    dnnl_memory_desc_t x, w, b, y, w_user;
} conv_mds;

static void mds_free(conv_mds *m) {
    dnnl_memory_desc_destroy(m->x); /* NULL is accepted */
    dnnl_memory_desc_destroy(m->w);
    dnnl_memory_desc_destroy(m->w_user);
    dnnl_memory_desc_destroy(m->b);
    dnnl_memory_desc_destroy(m->y);
}

static vd_status md_any(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims,
                        dnnl_data_type_t dt, vd_err *err) {
    VD_DNNL_CHECK(dnnl_memory_desc_create_with_tag(md, nd, dims, dt, dnnl_format_tag_any), err);
    return VD_OK;
}

/* Matmul descriptors by role: P pixels; X [P, I] and Y [P, O] at their lds (dense when they
 * are converted copies); our W is [O, I]. Forward and backward-data weights go in the layout
 * the matmul picks (reading W^T in place costs ~15%); backward-weights writes dW in place,
 * accumulating. */
static vd_status gemm_mds(const conv_entry *e, conv_mds *m, vd_err *err) {
    const conv_key *k = &e->key;
    const dnnl_data_type_t *dt = e->dt;
    int64_t p = (int64_t)k->n * k->h * k->w, ci = k->c_in, co = k->c_out;
    int64_t ld_x = e->pack_x ? ci : k->ld_x, ld_y = e->pack_y ? co : k->ld_y;
    vd_status st = VD_OK;
    switch (k->dir) {
    case DIR_FWD: { /* src X, weights W^T [I, O], dst Y */
        dnnl_dims_t wt = {ci, co};
        st = md_2d(&m->x, p, ci, ld_x, 1, dt[ROLE_X], err);
        if (!st) st = md_2d(&m->w_user, ci, co, 1, ci, dt[ROLE_W], err);
        if (!st) st = md_any(&m->w, 2, wt, dt[ROLE_W], err);
        if (!st && e->prim_bias) st = md_2d(&m->b, 1, co, co, 1, dnnl_f32, err);
        if (!st) st = md_2d(&m->y, p, co, ld_y, 1, dt[ROLE_Y], err);
        return st;
    }
    case DIR_BWD_DATA: { /* src dY, weights W, dst dX */
        dnnl_dims_t w = {co, ci};
        st = md_2d(&m->y, p, co, ld_y, 1, dt[ROLE_Y], err);
        if (!st) st = md_2d(&m->w_user, co, ci, ci, 1, dt[ROLE_W], err);
        if (!st) st = md_any(&m->w, 2, w, dt[ROLE_W], err);
        if (!st) st = md_2d(&m->x, p, ci, ld_x, 1, dt[ROLE_X], err);
        return st;
    }
    default: /* src dY^T [O, P], weights X, dst dW */
        st = md_2d(&m->y, co, p, 1, ld_y, dt[ROLE_Y], err);
        if (!st) st = md_2d(&m->x, p, ci, ld_x, 1, dt[ROLE_X], err);
        if (!st) st = md_2d(&m->w, co, ci, ci, 1, dt[ROLE_W], err);
        return st;
    }
}

/* The matmul's src, weights and dst by direction (see role_args). */
static vd_status gemm_pd(vd_cpu_conv *cc, int dir, const conv_mds *m,
                         const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd,
                         vd_err *err) {
    const_dnnl_memory_desc_t src = dir == DIR_FWD ? m->x : m->y;
    const_dnnl_memory_desc_t wei = dir == DIR_BWD_WEIGHTS ? m->x : m->w;
    const_dnnl_memory_desc_t dst = dir == DIR_FWD ? m->y : dir == DIR_BWD_DATA ? m->x : m->w;
    VD_DNNL_CHECK(dnnl_matmul_primitive_desc_create(pd, cc->engine, src, wei,
                                                    dir == DIR_FWD ? m->b : NULL, dst, attr),
                  err);
    return VD_OK;
}

/* The convolution's descriptors in the given types (x, w, y; the bias is always float32). */
static vd_status conv_mds_typed(const conv_entry *e, const dnnl_data_type_t dt[NROLES], bool bias,
                                conv_mds *m, vd_err *err) {
    const conv_key *k = &e->key;
    dnnl_dims_t wdims = {k->c_out, k->c_in, k->kh, k->kw}, bdims = {k->c_out};
    vd_status st = md_nhwc(&m->x, k->n, k->c_in, k->h, k->w, dt[ROLE_X], err);
    if (!st) st = md_nhwc(&m->y, k->n, k->c_out, e->ho, e->wo, dt[ROLE_Y], err);
    if (!st) st = md_any(&m->w, 4, wdims, dt[ROLE_W], err);
    if (!st)
        st = VD_DNNL(
            dnnl_memory_desc_create_with_tag(&m->w_user, 4, wdims, dt[ROLE_W], dnnl_oihw), err);
    if (!st && bias)
        st = VD_DNNL(dnnl_memory_desc_create_with_tag(&m->b, 1, bdims, dnnl_f32, dnnl_a), err);
    return st;
}

static vd_status conv_mds_make(const conv_entry *e, conv_mds *m, vd_err *err) {
    return conv_mds_typed(e, e->dt, e->prim_bias, m, err);
}

/* The forward descriptor every backward one is created from: the call's own for fp32 kernels;
 * all-bf16 for bf16 ones, since oneDNN has no forward kernel that reads a float32 src with
 * bf16 weights (backward-data) or writes bf16 weights (backward-weights). */
static vd_status conv_fwd_pd(vd_cpu_conv *cc, const conv_entry *e, const conv_mds *m,
                             const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *fwd,
                             vd_err *err) {
    const conv_key *k = &e->key;
    dnnl_dims_t strides = {k->stride, k->stride}, dil = {0, 0};
    dnnl_dims_t pl = {k->pad[0], k->pad[1]}, pr = {k->pad[2], k->pad[3]};
    conv_mds h = {0};
    const conv_mds *use = m;
    vd_status st = VD_OK;
    if (k->dir != DIR_FWD && (e->dt[ROLE_X] == dnnl_bf16 || e->dt[ROLE_Y] == dnnl_bf16)) {
        static const dnnl_data_type_t bf16[NROLES] = {dnnl_bf16, dnnl_bf16, dnnl_f32, dnnl_bf16};
        st = conv_mds_typed(e, bf16, false, &h, err);
        use = &h;
    }
    if (!st)
        st = VD_DNNL(dnnl_convolution_forward_primitive_desc_create(
                         fwd, cc->engine, dnnl_forward_training, dnnl_convolution_direct, use->x,
                         use->w, m->b, use->y, strides, dil, pl, pr, attr),
                     err);
    mds_free(&h);
    return st;
}

static vd_status conv_pd(vd_cpu_conv *cc, const conv_entry *e, const conv_mds *m,
                         const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd,
                         vd_err *err) {
    const conv_key *k = &e->key;
    dnnl_dims_t strides = {k->stride, k->stride}, dil = {0, 0};
    dnnl_dims_t pl = {k->pad[0], k->pad[1]}, pr = {k->pad[2], k->pad[3]};
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    dnnl_primitive_desc_t fwd = NULL;
    vd_status st = conv_fwd_pd(cc, e, m, k->dir == DIR_FWD ? attr : NULL, &fwd, err);
    if (st || k->dir == DIR_FWD) {
        *pd = fwd;
        return st;
    }
    if (k->dir == DIR_BWD_DATA)
        st = VD_DNNL(dnnl_convolution_backward_data_primitive_desc_create(
                         pd, cc->engine, alg, m->x, m->w, m->y, strides, dil, pl, pr, fwd, attr),
                     err);
    else
        st = VD_DNNL(dnnl_convolution_backward_weights_primitive_desc_create(
                         pd, cc->engine, alg, m->x, m->w, m->b, m->y, strides, dil, pl, pr, fwd,
                         attr),
                     err);
    dnnl_primitive_desc_destroy(fwd);
    return st;
}

/* User scratchpads (the workspace) and, where oneDNN should accumulate, a sum post-op; then,
 * where it should apply the forward's LeakyReLU (relu), an eltwise post-op: after the sum, as
 * conv_fwd_act's act follows conv_fwd's +=. */
static vd_status attr_make(dnnl_primitive_attr_t *attr, bool sum, bool relu, float alpha,
                           vd_err *err) {
    dnnl_post_ops_t po = NULL;
    VD_DNNL_CHECK(dnnl_primitive_attr_create(attr), err);
    vd_status st =
        VD_DNNL(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user), err);
    if (!st && (sum || relu)) st = VD_DNNL(dnnl_post_ops_create(&po), err);
    if (!st && sum) st = VD_DNNL(dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef), err);
    if (!st && relu) st = VD_DNNL(dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, alpha, 0.f), err);
    if (!st && (sum || relu)) st = VD_DNNL(dnnl_primitive_attr_set_post_ops(*attr, po), err);
    if (po) dnnl_post_ops_destroy(po);
    return st;
}

static vd_status memory_for(vd_cpu_conv *cc, const_dnnl_primitive_desc_t pd, dnnl_query_t what,
                            int index, dnnl_memory_t *mem, vd_err *err) {
    const_dnnl_memory_desc_t md = dnnl_primitive_desc_query_md(pd, what, index);
    VD_DNNL_CHECK(dnnl_memory_create(mem, md, cc->engine, DNNL_MEMORY_NONE), err);
    return VD_OK;
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd) {
    return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
}

/* One memory object per role the primitive takes, then its scratchpad. */
static vd_status entry_memories(vd_cpu_conv *cc, conv_entry *e, const_dnnl_primitive_desc_t pd,
                                vd_err *err) {
    for (int r = 0; r < NROLES; r++) {
        int arg = role_args[e->gemm][e->key.dir][r];
        if (!arg || (r == ROLE_B && !e->prim_bias)) continue;
        vd_status st = memory_for(cc, pd, dnnl_query_exec_arg_md, arg, &e->role[r], err);
        if (st) return st;
        e->args[e->nargs++] = (dnnl_exec_arg_t){arg, e->role[r]};
    }
    if (scratch_size(pd) == 0) return VD_OK;
    vd_status st = memory_for(cc, pd, dnnl_query_scratchpad_md, 0, &e->scratch, err);
    if (!st) e->args[e->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    return st;
}

/* Our weights to the layout the primitive picked, or (convolution backward weights) its
 * gradient back onto our dw with a sum post-op. None when the layouts already agree, and
 * none for the matmul's backward weights, which accumulates into dw itself. */
static vd_status entry_reorder(vd_cpu_conv *cc, conv_entry *e, const_dnnl_primitive_desc_t pd,
                               const_dnnl_memory_desc_t user_md, vd_err *err) {
    bool bwd_w = e->key.dir == DIR_BWD_WEIGHTS;
    if (!user_md) return VD_OK;
    const_dnnl_memory_desc_t prim_md = dnnl_primitive_desc_query_md(
        pd, bwd_w ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    if (!bwd_w && dnnl_memory_desc_equal(user_md, prim_md)) return VD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    vd_status st = attr_make(&attr, bwd_w, false, 0.f, err);
    if (!st)
        st = VD_DNNL(dnnl_reorder_primitive_desc_create(&rpd, bwd_w ? prim_md : user_md,
                                                        cc->engine, bwd_w ? user_md : prim_md,
                                                        cc->engine, attr),
                     err);
    if (!st) st = VD_DNNL(dnnl_primitive_create(&e->reorder, rpd), err);
    if (!st)
        st = VD_DNNL(dnnl_memory_create(&e->user_w, user_md, cc->engine, DNNL_MEMORY_NONE), err);
    if (!st && (e->reorder_scratch_bytes = scratch_size(rpd)))
        st = memory_for(cc, rpd, dnnl_query_scratchpad_md, 0, &e->reorder_scratch, err);
    if (!st) e->w_bytes = dnnl_memory_desc_get_size(prim_md);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static size_t ws_align(size_t x) {
    return (x + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

static size_t dt_size(dnnl_data_type_t dt) {
    return dt == dnnl_bf16 ? sizeof(uint16_t) : sizeof(float);
}

static size_t weights_count(const conv_key *k) {
    return (size_t)k->c_out * k->c_in * k->kh * k->kw;
}

/* Scratchpads at 0 (the reorder and the primitive run one after the other), then the
 * primitive's weights, the converted weights, the bias gradient and the dense copies (in the
 * primitive's type: bf16 when converted for bf16 kernels). */
static void entry_layout(conv_entry *e, const_dnnl_primitive_desc_t pd) {
    const conv_key *k = &e->key;
    size_t scratch = scratch_size(pd);
    if (e->reorder_scratch_bytes > scratch) scratch = e->reorder_scratch_bytes;
    bool bias_buf = !e->gemm && k->dir == DIR_BWD_WEIGHTS && e->prim_bias;
    size_t x_bytes = (size_t)k->n * k->h * k->w * k->c_in * dt_size(e->dt[ROLE_X]);
    size_t y_bytes = (size_t)k->n * e->ho * e->wo * k->c_out * dt_size(e->dt[ROLE_Y]);
    size_t wc_bytes = e->round[ROLE_W] ? weights_count(k) * dt_size(e->dt[ROLE_W]) : 0;
    e->off_w = ws_align(scratch);
    e->off_wc = ws_align(e->off_w + e->w_bytes);
    e->off_b = ws_align(e->off_wc + wc_bytes);
    e->off_x = ws_align(e->off_b + (bias_buf ? (size_t)k->c_out * sizeof(float) : 0));
    e->off_y = ws_align(e->off_x + (e->pack_x ? x_bytes : 0));
    e->ws_bytes = e->off_y + (e->pack_y ? y_bytes : 0);
}

/* What a call converts and in which types its primitive computes (see the top of the file). */
static void entry_plan(conv_entry *e, bool rounded) {
    const conv_key *k = &e->key;
    bool bf16 = k->prec != PREC_FP32;
    e->rounded = bf16 && rounded;
    e->round[ROLE_X] = bf16 && k->dir != DIR_BWD_DATA;
    e->round[ROLE_W] = bf16 && k->dir != DIR_BWD_WEIGHTS;
    e->round[ROLE_B] = false;
    e->round[ROLE_Y] = bf16 && k->dir != DIR_FWD;
    for (int r = 0; r < NROLES; r++)
        e->dt[r] = e->round[r] && !e->rounded ? dnnl_bf16 : dnnl_f32;
    e->prim_bias = k->bias && (k->dir == DIR_FWD || (k->dir == DIR_BWD_WEIGHTS && !e->gemm && !bf16));
    e->pack_x = e->round[ROLE_X] || k->pre_act ||
                (!e->gemm && (k->ld_x != k->c_in || (k->dir == DIR_BWD_DATA && k->acc)));
    e->pack_y = e->round[ROLE_Y] || (!e->gemm && k->ld_y != k->c_out);
}

/* oneDNN's reference kernels ("ref:any", "gemm:ref", ...) are correct but ~1000x slower. */
static bool pd_is_reference(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
        return false;
    return impl && strstr(impl, "ref");
}

/* The forward's LeakyReLU is the primitive's post-op, except after a sum that finish() does
 * (a packed y that accumulates): then finish() applies it after its add. */
static bool relu_fused(const conv_entry *e) {
    return e->key.relu && !(e->key.acc && e->pack_y);
}

static vd_status entry_pd(vd_cpu_conv *cc, conv_entry *e, conv_mds *m, dnnl_primitive_desc_t *pd,
                          vd_err *err) {
    const conv_key *k = &e->key;
    dnnl_primitive_attr_t attr = NULL;
    bool sum = (e->gemm && (k->dir == DIR_BWD_WEIGHTS || (k->dir == DIR_BWD_DATA && k->acc))) ||
               (k->dir == DIR_FWD && k->acc && !e->pack_y); /* a packed y adds in finish() */
    vd_status st = attr_make(&attr, sum, relu_fused(e), k->relu_alpha, err);
    if (!st) st = e->gemm ? gemm_mds(e, m, err) : conv_mds_make(e, m, err);
    if (!st && e->gemm) st = gemm_pd(cc, k->dir, m, attr, pd, err);
    if (!st && !e->gemm) st = conv_pd(cc, e, m, attr, pd, err);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* oneDNN's bf16 backward-weights convolution is slower than its fp32 one when each output
 * image is small: 3x3 at 4x4 outputs takes 2.5 ms in bf16 against 1.5 ms on rounded floats
 * (binarized_mnist, 256 channels, batch 32; cifar10's 96 channels, batch 8: 0.18 vs 0.07 ms).
 * Such calls take the rounded route: the same rounded inputs, the faster kernel. */
static bool bf16_kernel_slower(const conv_entry *e) {
    return e->key.dir == DIR_BWD_WEIGHTS && !e->gemm && e->ho * e->wo <= 16;
}

static vd_status entry_build(vd_cpu_conv *cc, conv_entry *e, vd_err *err) {
    conv_mds m = {0};
    dnnl_primitive_desc_t pd = NULL;
    entry_plan(e, e->key.prec == PREC_BF16_ROUNDED || bf16_kernel_slower(e));
    vd_status st = entry_pd(cc, e, &m, &pd, err);
    if (e->key.prec == PREC_BF16 && !e->rounded && (st || pd_is_reference(pd))) { /* none fast */
        dnnl_primitive_desc_destroy(pd);
        mds_free(&m);
        memset(&m, 0, sizeof m);
        pd = NULL;
        entry_plan(e, true);
        st = entry_pd(cc, e, &m, &pd, err);
    }
    if (!st) st = VD_DNNL(dnnl_primitive_create(&e->prim, pd), err);
    const char *impl = NULL;
    if (!st && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(e->impl, sizeof e->impl, "%s", impl);
    if (!st) st = entry_memories(cc, e, pd, err);
    if (!st) st = entry_reorder(cc, e, pd, m.w_user, err);
    if (!st) entry_layout(e, pd);
    if (!st) st = ws_reserve(cc, e->ws_bytes, err);
    dnnl_primitive_desc_destroy(pd);
    mds_free(&m);
    return st;
}

static int out_size(int in, int k, int s, int pad_lo, int pad_hi) {
    int span = in + pad_lo + pad_hi - k;
    return span < 0 ? 0 : span / s + 1;
}

static conv_key key_make(int dir, const vd_conv_desc *cv, const conv_io *io, bool bias, bool acc,
                         int prec) {
    conv_key k;
    memset(&k, 0, sizeof k);
    k.ld_x = io->x->ld;
    k.ld_y = io->y->ld;
    k.dir = dir;
    k.n = io->x->n, k.h = io->x->h, k.w = io->x->w;
    k.c_in = cv->c_in, k.c_out = cv->c_out, k.kh = cv->kh, k.kw = cv->kw, k.stride = cv->stride;
    k.pad[0] = cv->pad_top, k.pad[1] = cv->pad_left;
    k.pad[2] = cv->pad_bottom, k.pad[3] = cv->pad_right;
    k.bias = bias, k.acc = acc;
    k.pre_act = dir == DIR_BWD_DATA ? VD_CONV_PRE_NONE : cv->pre_act; /* see ops.h */
    k.prec = prec;
    k.relu = dir == DIR_FWD && io->relu;
    k.relu_alpha = k.relu ? io->relu_alpha : 0.f;
    return k;
}

static vd_status entry_get(vd_cpu_conv *cc, const conv_key *k, conv_entry **out, vd_err *err) {
    if ((*out = cache_find(cc, k))) return VD_OK;
    conv_entry *e = calloc(1, sizeof *e);
    if (!e) return vd_errorf(err, VD_ERR_NOMEM, "conv cache: cannot allocate an entry");
    memcpy(&e->key, k, sizeof *k); /* padding bytes too: keys compare with memcmp */
    e->ho = out_size(k->h, k->kh, k->stride, k->pad[0], k->pad[2]);
    e->wo = out_size(k->w, k->kw, k->stride, k->pad[1], k->pad[3]);
    int64_t pixels = (int64_t)k->n * k->h * k->w;
    bool bf16_bwd_w = k->prec != PREC_FP32 && k->dir == DIR_BWD_WEIGHTS &&
                      pixels >= BF16_BWD_W_CONV_PIXELS; /* see the top */
    e->gemm = k->kh == 1 && k->kw == 1 && k->stride == 1 && !k->pad[0] && !k->pad[1] &&
              !k->pad[2] && !k->pad[3] && !bf16_bwd_w;
    vd_status st = entry_build(cc, e, err);
    if (!st) st = cache_insert(cc, e, err);
    if (st) {
        entry_free(e);
        return st;
    }
    *out = e;
    return VD_OK;
}

/* ---- running a call ---- */

static vd_status set_handle(dnnl_memory_t m, const void *p, vd_err *err) {
    VD_DNNL_CHECK(dnnl_memory_set_data_handle(m, (void *)p), err);
    return VD_OK;
}

static vd_status execute(vd_cpu_conv *cc, dnnl_primitive_t prim, int nargs,
                         const dnnl_exec_arg_t *args, vd_err *err) {
    VD_DNNL_CHECK(dnnl_primitive_execute(prim, cc->stream, nargs, args), err);
    VD_DNNL_CHECK(dnnl_stream_wait(cc->stream), err);
    return VD_OK;
}

static vd_status run_reorder(vd_cpu_conv *cc, conv_entry *e, dnnl_memory_t from, dnnl_memory_t to,
                             vd_err *err) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    int n = 2;
    if (e->reorder_scratch) {
        VD_DNNL_CHECK(dnnl_memory_set_data_handle(e->reorder_scratch, cc->ws), err);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->reorder_scratch};
    }
    return execute(cc, e->reorder, n, args, err);
}

static vd_tensor dense_in(void *ws, size_t off, const vd_tensor *like) {
    return vd_tensor_make((float *)((char *)ws + off), like->n, like->h, like->w, like->c);
}

/* The inputs of the call as the primitive reads them: float copies of views, or converted
 * copies in bf16 precision; returns the weights to read (the caller's or converted ones). */
static const void *stage_inputs(vd_backend *be, vd_cpu_conv *cc, const conv_entry *e,
                                const conv_io *io) {
    int dir = e->key.dir;
    char *ws = cc->ws;
    vd_tensor xd = dense_in(ws, e->off_x, io->x), yd = dense_in(ws, e->off_y, io->y);
    bool silu = e->key.pre_act == VD_CONV_PRE_SILU;
    if (e->round[ROLE_X] && silu)
        vd_cpu_bf16_pack_silu(io->x, ws + e->off_x, e->rounded);
    else if (e->round[ROLE_X])
        vd_cpu_bf16_pack(io->x, ws + e->off_x, e->rounded);
    else if (silu)
        vd_cpu_act_fwd(be, VD_ACT_SILU, 0.f, io->x, &xd);
    else if (e->pack_x && dir != DIR_BWD_DATA)
        vd_cpu_copy(be, io->x, &xd);
    if (io->y_staged)
        ; /* conv_bwd converted dy for both directions */
    else if (e->round[ROLE_Y] && dir == DIR_BWD_WEIGHTS && io->b) /* db while dy is in cache */
        vd_cpu_bf16_pack_sums(be, io->y, ws + e->off_y, e->rounded, io->b);
    else if (e->round[ROLE_Y])
        vd_cpu_bf16_pack(io->y, ws + e->off_y, e->rounded);
    else if (e->pack_y && dir != DIR_FWD)
        vd_cpu_copy(be, io->y, &yd);
    if (!e->round[ROLE_W]) return io->w;
    vd_cpu_bf16_flat(io->w, ws + e->off_wc, (int64_t)weights_count(&e->key), e->rounded);
    return ws + e->off_wc;
}

/* Points every role at its buffer: the caller's, or a dense, converted or reordered copy. */
static vd_status bind(vd_backend *be, vd_cpu_conv *cc, conv_entry *e, const conv_io *io,
                      vd_err *err) {
    int dir = e->key.dir;
    char *ws = cc->ws;
    const void *w = stage_inputs(be, cc, e, io);
    vd_status st = set_handle(e->role[ROLE_X], e->pack_x ? ws + e->off_x : (char *)io->x->data, err);
    const void *y = io->y_staged ? io->y_staged : e->pack_y ? ws + e->off_y : (char *)io->y->data;
    if (!st) st = set_handle(e->role[ROLE_Y], y, err);
    if (!st) st = set_handle(e->role[ROLE_W], e->reorder ? ws + e->off_w : w, err);
    if (!st && e->role[ROLE_B])
        st = set_handle(e->role[ROLE_B], dir == DIR_BWD_WEIGHTS ? ws + e->off_b : (char *)io->b,
                        err);
    if (!st && e->scratch) st = set_handle(e->scratch, ws, err);
    if (!st && e->reorder && dir != DIR_BWD_WEIGHTS) {
        st = set_handle(e->user_w, w, err);
        if (!st) st = run_reorder(cc, e, e->user_w, e->role[ROLE_W], err);
    }
    return st;
}

/* What follows the primitive: gradients added onto the caller's, dense copies written back. */
static vd_status finish(vd_backend *be, vd_cpu_conv *cc, conv_entry *e, const conv_io *io,
                        vd_err *err) {
    int dir = e->key.dir;
    char *ws = cc->ws;
    vd_status st = VD_OK;
    if (dir == DIR_BWD_WEIGHTS && e->reorder) {
        st = set_handle(e->user_w, io->w, err);
        if (!st) st = run_reorder(cc, e, e->role[ROLE_W], e->user_w, err);
    }
    if (dir == DIR_BWD_WEIGHTS && io->b && !e->prim_bias && !e->round[ROLE_Y])
        vd_cpu_channel_sums_add(be, io->y, io->b); /* (bf16 summed it with the conversion) */
    if (dir == DIR_BWD_WEIGHTS && io->b && e->prim_bias) {
        const float *db = (const float *)(ws + e->off_b);
        for (int o = 0; o < e->key.c_out; o++)
            io->b[o] += db[o];
    }
    vd_tensor xd = dense_in(ws, e->off_x, io->x), yd = dense_in(ws, e->off_y, io->y);
    if (dir == DIR_FWD && e->pack_y) {
        if (e->key.acc)
            vd_cpu_add(be, &yd, io->y, io->y);
        else
            vd_cpu_copy(be, &yd, io->y);
    }
    if (dir == DIR_FWD && e->key.relu && !relu_fused(e))
        vd_cpu_act_fwd(be, VD_ACT_LEAKY_RELU, e->key.relu_alpha, io->y, io->y);
    if (dir == DIR_BWD_DATA && e->pack_x) {
        if (e->key.acc)
            vd_cpu_add(be, &xd, io->x, io->x);
        else
            vd_cpu_copy(be, &xd, io->x);
    }
    return st;
}

static const char *const dir_names[NDIRS] = {"conv_fwd", "conv_bwd_data", "conv_bwd_weights"};

static void conv_fail(vd_backend *be, vd_status st, int dir, const vd_conv_desc *cv, const vd_err *err) {
    vd_backend_fail(be, st, "cpu %s (%d->%d k %dx%d stride %d): %s", dir_names[dir], cv->c_in, cv->c_out,
                    cv->kh, cv->kw, cv->stride, err->msg);
}

static vd_status conv_run(vd_backend *be, vd_cpu_conv *cc, conv_entry *e, const conv_io *io, vd_err *err) {
    cc->last = e;
    vd_status st = bind(be, cc, e, io, err);
    if (!st) st = execute(cc, e->prim, e->nargs, e->args, err);
    if (!st) st = finish(be, cc, e, io, err);
    return st;
}

static void conv_call(vd_backend *be, int dir, const vd_conv_desc *cv, const conv_io *io,
                      bool acc) {
    vd_cpu_conv *cc = vd_cpu_conv_of(be);
    vd_err err = {0};
    conv_key k = key_make(dir, cv, io, io->b != NULL, acc, cc->prec);
    conv_entry *e = NULL;
    vd_status st = entry_get(cc, &k, &e, &err);
    if (!st) st = conv_run(be, cc, e, io, &err);
    if (st) conv_fail(be, st, dir, cv, &err);
}

/* ---- the ops ---- */

/* x is the convolution's input (or its gradient), y its output (or gradient). */
static bool conv_shapes(vd_backend *be, const char *op, const vd_conv_desc *cv, const vd_tensor *x,
                        const vd_tensor *y) {
    if (!vd_cpu_valid(be, op, "input", x) || !vd_cpu_valid(be, op, "output", y)) return false;
    if (cv->pre_act != VD_CONV_PRE_NONE && cv->pre_act != VD_CONV_PRE_SILU) {
        vd_backend_fail(be, VD_ERR_INVALID, "cpu %s: unknown pre-activation %d", op, (int)cv->pre_act);
        return false;
    }
    if (cv->stride < 1 || cv->kh < 1 || cv->kw < 1 || cv->pad_top < 0 || cv->pad_left < 0 ||
        cv->pad_bottom < 0 || cv->pad_right < 0) {
        vd_backend_fail(be, VD_ERR_INVALID,
                        "cpu %s: bad geometry k %dx%d stride %d pads %d,%d,%d,%d", op, cv->kh,
                        cv->kw, cv->stride, cv->pad_top, cv->pad_left, cv->pad_bottom,
                        cv->pad_right);
        return false;
    }
    int ho = out_size(x->h, cv->kh, cv->stride, cv->pad_top, cv->pad_bottom);
    int wo = out_size(x->w, cv->kw, cv->stride, cv->pad_left, cv->pad_right);
    if (x->c == cv->c_in && y->c == cv->c_out && y->n == x->n && y->h == ho && y->w == wo)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID,
                    "cpu %s: input [%d,%d,%d,%d] and output [%d,%d,%d,%d] do not fit a %d->%d "
                    "conv k %dx%d stride %d (output should be %dx%d)",
                    op, x->n, x->h, x->w, x->c, y->n, y->h, y->w, y->c, cv->c_in, cv->c_out,
                    cv->kh, cv->kw, cv->stride, ho, wo);
    return false;
}

void vd_cpu_conv_fwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const float *w,
                     const float *b, const vd_tensor *y) {
    if (!conv_shapes(be, "conv_fwd", cv, x, y)) return;
    CPU_REQUIRE(be, w, "cpu conv_fwd: weights are missing");
    conv_io io = {x, y, (float *)w, (float *)b, NULL, false, 0.f};
    conv_call(be, DIR_FWD, cv, &io, cv->acc_y != 0);
}

/* LeakyReLU (torch's ReLU at slope 0) is oneDNN's eltwise post-op, applied as the primitive
 * writes y; any other activation is the two calls. */
void vd_cpu_conv_fwd_act(vd_backend *be, const vd_conv_desc *cv, vd_act act, float param,
                         const vd_tensor *x, const float *w, const float *b, const vd_tensor *y) {
    if (act != VD_ACT_LEAKY_RELU) {
        vd_cpu_conv_fwd(be, cv, x, w, b, y);
        vd_cpu_act_fwd(be, act, param, y, y);
        return;
    }
    if (!conv_shapes(be, "conv_fwd", cv, x, y)) return;
    CPU_REQUIRE(be, w, "cpu conv_fwd: weights are missing");
    conv_io io = {x, y, (float *)w, (float *)b, NULL, true, param};
    conv_call(be, DIR_FWD, cv, &io, cv->acc_y != 0);
}

void vd_cpu_conv_bwd_data(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *dy,
                          const float *w, const vd_tensor *dx, bool acc) {
    if (!conv_shapes(be, "conv_bwd_data", cv, dx, dy)) return;
    CPU_REQUIRE(be, w, "cpu conv_bwd_data: weights are missing");
    conv_io io = {dx, dy, (float *)w, NULL, NULL, false, 0.f};
    conv_call(be, DIR_BWD_DATA, cv, &io, acc);
}

void vd_cpu_conv_bwd_weights(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x,
                             const vd_tensor *dy, float *dw, float *db) {
    if (!conv_shapes(be, "conv_bwd_weights", cv, x, dy)) return;
    CPU_REQUIRE(be, dw, "cpu conv_bwd_weights: dw is missing");
    conv_io io = {x, dy, dw, db, NULL, false, 0.f};
    conv_call(be, DIR_BWD_WEIGHTS, cv, &io, false);
}

/* Both backward directions of one conv. In bf16 both read dy converted the same way, so it is
 * converted once, into the stash (summing db on the way), and both primitives read it there;
 * otherwise (fp32, or the two routes want dy in different forms) the two plain calls. */
void vd_cpu_conv_bwd(vd_backend *be, const vd_conv_desc *cv, const vd_tensor *x, const vd_tensor *dy,
                     const float *w, float *dw, float *db, const vd_tensor *dx, bool acc) {
    vd_cpu_conv *cc = vd_cpu_conv_of(be);
    if (!conv_shapes(be, "conv_bwd_weights", cv, x, dy) || (dx && !conv_shapes(be, "conv_bwd_data", cv, dx, dy)))
        return;
    CPU_REQUIRE(be, dw && (!dx || w), "cpu conv_bwd: dw or w is missing");
    conv_io iw = {x, dy, dw, db, NULL, false, 0.f}, id = {dx, dy, (float *)w, NULL, NULL, false, 0.f};
    vd_err err = {0};
    conv_entry *ew = NULL, *ed = NULL;
    conv_key kw = key_make(DIR_BWD_WEIGHTS, cv, &iw, db != NULL, false, cc->prec);
    vd_status st = entry_get(cc, &kw, &ew, &err);
    if (!st && dx) {
        conv_key kd = key_make(DIR_BWD_DATA, cv, &id, false, acc, cc->prec);
        st = entry_get(cc, &kd, &ed, &err);
    }
    if (st) return conv_fail(be, st, ed ? DIR_BWD_DATA : DIR_BWD_WEIGHTS, cv, &err);
    bool share = ed && ew->round[ROLE_Y] && ed->round[ROLE_Y] && ew->rounded == ed->rounded;
    if (share) {
        size_t bytes = (size_t)vd_tensor_numel(dy) * (ew->rounded ? sizeof(float) : sizeof(uint16_t));
        if ((st = buf_reserve(&cc->stash, &cc->stash_bytes, bytes, "conv_bwd dy stash", &err)))
            return conv_fail(be, st, DIR_BWD_WEIGHTS, cv, &err);
        if (db) vd_cpu_bf16_pack_sums(be, dy, cc->stash, ew->rounded, db);
        else vd_cpu_bf16_pack(dy, cc->stash, ew->rounded);
        iw.y_staged = id.y_staged = cc->stash;
    }
    st = conv_run(be, cc, ew, &iw, &err);
    if (st) return conv_fail(be, st, DIR_BWD_WEIGHTS, cv, &err);
    if (ed && (st = conv_run(be, cc, ed, &id, &err))) conv_fail(be, st, DIR_BWD_DATA, cv, &err);
}

/* ---- lifetime ---- */

vd_status vd_cpu_conv_init(vd_cpu_conv **out, vd_err *err) {
    vd_cpu_conv *cc = calloc(1, sizeof *cc);
    if (!cc) return vd_errorf(err, VD_ERR_NOMEM, "cannot allocate the convolution cache");
    vd_status st = VD_DNNL(dnnl_engine_create(&cc->engine, dnnl_cpu, 0), err);
    if (!st)
        st = VD_DNNL(dnnl_stream_create(&cc->stream, cc->engine, dnnl_stream_default_flags), err);
    if (st) {
        vd_cpu_conv_free(cc);
        return st;
    }
    *out = cc;
    return VD_OK;
}

vd_status vd_cpu_conv_set_precision(vd_cpu_conv *cc, vd_precision p, vd_err *err) {
    if (p != VD_PREC_FP32 && p != VD_PREC_BF16)
        return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend cpu: unknown precision %d", (int)p);
    cc->prec = p == VD_PREC_FP32 ? PREC_FP32 : PREC_BF16;
    return VD_OK;
}

void vd_cpu_conv_force_rounded(vd_cpu_conv *cc, bool on) {
    if (cc->prec != PREC_FP32) cc->prec = on ? PREC_BF16_ROUNDED : PREC_BF16;
}

int vd_cpu_conv_mode(const vd_cpu_conv *cc) {
    return cc->prec;
}

void vd_cpu_conv_restore_mode(vd_cpu_conv *cc, int mode) {
    cc->prec = mode;
}

void vd_cpu_conv_last_kernel(const vd_cpu_conv *cc, char *buf, size_t cap) {
    const conv_entry *e = cc->last;
    if (!e || !e->impl[0])
        snprintf(buf, cap, "unknown kernel");
    else
        snprintf(buf, cap, "%s%s", e->impl, e->rounded ? " on bf16-rounded floats" : "");
}

void vd_cpu_conv_free(vd_cpu_conv *cc) {
    if (!cc) return;
    for (size_t i = 0; i < cc->cap; i++)
        entry_free(cc->slots[i]);
    free(cc->slots);
    free(cc->ws);
    free(cc->stash);
    if (cc->stream) dnnl_stream_destroy(cc->stream);
    if (cc->engine) dnnl_engine_destroy(cc->engine);
    free(cc);
}

#endif
