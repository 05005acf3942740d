/* The cpu_ref backend: its op table, host memory (aligned malloc, memcpy transfers) and the
 * argument checks every family file shares. Its only state beyond the sticky failure record
 * is the convolutions' precision. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ref/ref.h"

#define REF_ALIGN 64

typedef struct vd_ref {
    vd_backend base; /* first: the table hands ops a vd_backend * */
    vd_precision precision;
} vd_ref;

bool vd_ref_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t) {
    return vd_backend_tensor_ok(be, "", op, name, t);
}

bool vd_ref_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b) {
    return vd_backend_same_shape(be, "", op, a, b);
}

static void *ref_alloc(vd_backend *be, size_t bytes) {
    /* aligned_alloc wants a multiple of the alignment; zero bytes still gets a real block
     * so that callers can free what they asked for without special cases. */
    size_t rounded = (bytes + REF_ALIGN - 1) / REF_ALIGN * REF_ALIGN;
    void *p = aligned_alloc(REF_ALIGN, rounded ? rounded : REF_ALIGN);
    if (!p) vd_backend_fail(be, VD_ERR_NOMEM, "cpu_ref: cannot allocate %zu bytes", bytes);
    return p;
}

static void ref_dealloc(vd_backend *be, void *p) {
    (void)be;
    free(p);
}

static void ref_transfer(vd_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

static void ref_destroy(vd_backend *be) {
    free(be);
}

static vd_status ref_set_precision(vd_backend *be, vd_precision p, vd_err *err) {
    if (p != VD_PREC_FP32 && p != VD_PREC_BF16)
        return vd_errorf(err, VD_ERR_UNSUPPORTED, "backend cpu_ref: unknown precision %d", (int)p);
    ((vd_ref *)be)->precision = p;
    return VD_OK;
}

bool vd_ref_bf16(const vd_backend *be) {
    return ((const vd_ref *)be)->precision == VD_PREC_BF16;
}

static const vd_backend_i ref_table = {
    .name = "cpu_ref",
    .destroy = ref_destroy,
    .alloc = ref_alloc,
    .dealloc = ref_dealloc,
    .upload = ref_transfer,
    .download = ref_transfer,
    .set_precision = ref_set_precision,
    .fill = vd_ref_fill,
    .copy = vd_ref_copy,
    .conv_fwd = vd_ref_conv_fwd,
    .conv_bwd_data = vd_ref_conv_bwd_data,
    .conv_bwd_weights = vd_ref_conv_bwd_weights,
    .act_fwd = vd_ref_act_fwd,
    .act_bwd = vd_ref_act_bwd,
    .add = vd_ref_add,
    .axpy = vd_ref_axpy,
    .upsample_fwd = vd_ref_upsample_fwd,
    .upsample_bwd = vd_ref_upsample_bwd,
    .broadcast_fwd = vd_ref_broadcast_fwd,
    .broadcast_bwd = vd_ref_broadcast_bwd,
    .latent_stats_fwd = vd_ref_latent_stats_fwd,
    .latent_stats_bwd = vd_ref_latent_stats_bwd,
    .latent_sample_fwd = vd_ref_latent_sample_fwd,
    .latent_sample_bwd = vd_ref_latent_sample_bwd,
    .latent_mask = vd_ref_latent_mask,
    .kl_fwd = vd_ref_kl_fwd,
    .kl_bwd = vd_ref_kl_bwd,
    .dmol_fwd = vd_ref_dmol_fwd,
    .dmol_bwd = vd_ref_dmol_bwd,
    .dmol_sample = vd_ref_dmol_sample,
    .bernoulli_fwd = vd_ref_bernoulli_fwd,
    .bernoulli_bwd = vd_ref_bernoulli_bwd,
    .bernoulli_sample = vd_ref_bernoulli_sample,
    .sum_squares = vd_ref_sum_squares,
    .optim_update = vd_ref_optim_update,
    .ema_update = vd_ref_ema_update,
    .scale = vd_ref_scale,
    .pool_fwd = vd_ref_pool_fwd,
    .resize_bilinear = vd_ref_resize_bilinear,
};

vd_status vd_backend_create_cpu_ref(vd_backend **out, vd_err *err) {
    vd_ref *ref = calloc(1, sizeof *ref);
    if (!ref) return vd_errorf(err, VD_ERR_NOMEM, "cpu_ref: cannot allocate the backend");
    ref->base.i = &ref_table;
    ref->base.status = VD_OK;
    ref->precision = VD_PREC_FP32;
    *out = &ref->base;
    return VD_OK;
}
