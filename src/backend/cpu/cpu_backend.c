/* The cpu backend: its op table, host memory, the thread count, the reduction scratch and
 * the argument checks every family file shares. Convolutions need oneDNN; without it the
 * backend is not offered at all rather than offered slow. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/cpu.h"

#define CPU_ALIGN 64

typedef struct vd_cpu {
    vd_backend base; /* first: the table hands ops a vd_backend * */
    vd_cpu_conv *conv;
    double *partials; /* [partials_cap] reduction scratch */
    size_t partials_cap;
    /* vd_backend_precision_note: measured once per precision setting */
    vd_precision precision;
    bool note_known, has_note;
    char note[320];
} vd_cpu;

bool vd_cpu_valid(vd_backend *be, const char *op, const char *name, const vd_tensor *t) {
    return vd_backend_tensor_ok(be, "cpu ", op, name, t);
}

bool vd_cpu_same_shape(vd_backend *be, const char *op, const vd_tensor *a, const vd_tensor *b) {
    return vd_backend_same_shape(be, "cpu ", op, a, b);
}

double *vd_cpu_partials(vd_backend *be, size_t count) {
    vd_cpu *cpu = (vd_cpu *)be;
    if (count <= cpu->partials_cap) return cpu->partials;
    double *p = realloc(cpu->partials, count * sizeof *p);
    if (!p) {
        vd_backend_fail(be, VD_ERR_NOMEM, "cpu: cannot grow the reduction scratch to %zu doubles",
                        count);
        return NULL;
    }
    cpu->partials = p;
    cpu->partials_cap = count;
    return p;
}

vd_cpu_conv *vd_cpu_conv_of(vd_backend *be) {
    return ((vd_cpu *)be)->conv;
}

#ifdef VD_HAVE_ONEDNN

static void *cpu_alloc(vd_backend *be, size_t bytes) {
    /* aligned_alloc wants a multiple of the alignment; zero bytes still gets a real block
     * so that callers can free what they asked for without special cases. */
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, rounded ? rounded : CPU_ALIGN);
    if (!p) vd_backend_fail(be, VD_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    return p;
}

static void cpu_dealloc(vd_backend *be, void *p) {
    (void)be;
    free(p);
}

static void cpu_transfer(vd_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

static void cpu_destroy(vd_backend *be) {
    vd_cpu *cpu = (vd_cpu *)be;
    vd_cpu_conv_free(cpu->conv);
    free(cpu->partials);
    free(cpu);
}

static vd_status cpu_set_precision(vd_backend *be, vd_precision p, vd_err *err) {
    vd_cpu *cpu = (vd_cpu *)be;
    vd_status st = vd_cpu_conv_set_precision(cpu->conv, p, err);
    if (!st) cpu->precision = p, cpu->note_known = false;
    return st;
}

/* bf16: the verdict of the probe, measured on the first call (a probe that fails says
 * nothing: the run will meet the failure itself, with its own context). */
static const char *cpu_precision_note(vd_backend *be) {
    vd_cpu *cpu = (vd_cpu *)be;
    if (cpu->precision == VD_PREC_FP32) return NULL;
    if (!cpu->note_known) {
        vd_precision_probe probe;
        char kernel[96];
        vd_err err = {0};
        cpu->has_note = !vd_cpu_precision_probe(&probe, kernel, sizeof kernel, &err) &&
                        vd_precision_verdict(&probe, cpu->note, sizeof cpu->note);
        cpu->note_known = true;
    }
    return cpu->has_note ? cpu->note : NULL;
}

static const vd_backend_i cpu_table = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .upload = cpu_transfer,
    .download = cpu_transfer,
    .set_precision = cpu_set_precision,
    .fill = vd_cpu_fill,
    .copy = vd_cpu_copy,
    .conv_fwd = vd_cpu_conv_fwd,
    .conv_bwd_data = vd_cpu_conv_bwd_data,
    .conv_bwd_weights = vd_cpu_conv_bwd_weights,
    .conv_bwd = vd_cpu_conv_bwd,
    .conv_fwd_act = vd_cpu_conv_fwd_act,
    .act_fwd = vd_cpu_act_fwd,
    .act_bwd = vd_cpu_act_bwd,
    .add = vd_cpu_add,
    .axpy = vd_cpu_axpy,
    .upsample_fwd = vd_cpu_upsample_fwd,
    .upsample_bwd = vd_cpu_upsample_bwd,
    .broadcast_fwd = vd_cpu_broadcast_fwd,
    .broadcast_bwd = vd_cpu_broadcast_bwd,
    .latent_stats_fwd = vd_cpu_latent_stats_fwd,
    .latent_stats_bwd = vd_cpu_latent_stats_bwd,
    .latent_sample_fwd = vd_cpu_latent_sample_fwd,
    .latent_sample_bwd = vd_cpu_latent_sample_bwd,
    .latent_mask = vd_cpu_latent_mask,
    .kl_fwd = vd_cpu_kl_fwd,
    .kl_bwd = vd_cpu_kl_bwd,
    .dmol_fwd = vd_cpu_dmol_fwd,
    .dmol_bwd = vd_cpu_dmol_bwd,
    .dmol_sample = vd_cpu_dmol_sample,
    .bernoulli_fwd = vd_cpu_bernoulli_fwd,
    .bernoulli_bwd = vd_cpu_bernoulli_bwd,
    .bernoulli_sample = vd_cpu_bernoulli_sample,
    .sum_squares = vd_cpu_sum_squares,
    .optim_update = vd_cpu_optim_update,
    .ema_update = vd_cpu_ema_update,
    .scale = vd_cpu_scale,
    .pool_fwd = vd_cpu_pool_fwd,
    .resize_bilinear = vd_cpu_resize_bilinear,
    .precision_note = cpu_precision_note,
};

/* threads > 0 sets the OpenMP thread count (process-wide: oneDNN's primitives read it too);
 * 0 keeps OMP_NUM_THREADS or the runtime's default. */
vd_status vd_backend_create_cpu(vd_backend **out, int threads, vd_err *err) {
    if (threads < 0)
        return vd_errorf(err, VD_ERR_INVALID, "backend cpu: thread count %d is negative", threads);
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#endif
    vd_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu) return vd_errorf(err, VD_ERR_NOMEM, "backend cpu: cannot allocate the backend");
    vd_status st = vd_cpu_conv_init(&cpu->conv, err);
    if (st != VD_OK) {
        free(cpu);
        return err ? vd_err_prefix(err, "backend cpu") : st;
    }
    cpu->base.i = &cpu_table;
    cpu->base.status = VD_OK;
    *out = &cpu->base;
    return VD_OK;
}

#else

vd_status vd_backend_create_cpu(vd_backend **out, int threads, vd_err *err) {
    (void)out;
    (void)threads;
    return vd_errorf(err, VD_ERR_UNSUPPORTED,
                     "backend cpu: this build has no oneDNN (run scripts/install-deps.sh and "
                     "reconfigure); the cpu_ref backend works without it, slowly");
}

#endif
