/* The cpu backend's bf16 probe: whether bf16 convolutions are faster than fp32 on this CPU is
 * measured, not guessed from its name (avx512_bf16 is 2x faster on Zen 5, 1.4x slower on some
 * Xeons), by timing the same small convolutions in both precisions through the backend's own
 * conv path, conversions included. vd_backend_precision_note (ops.h) turns it into a note.
 *
 * It runs on a cpu backend of its own (its primitives, workspace and failures are not the
 * caller's) and on one thread: the verdict is about the kernels, a property of each core, and
 * on one thread a run that another process interrupts is simply slower and loses the best-of,
 * while with two threads every interruption stalls the other thread at a barrier too. At 2
 * threads next to another 2-thread training on 2 cores, these ~1 ms runs measured bf16 1.4x
 * slower where whole training steps were 2x faster. */
#ifdef VD_HAVE_ONEDNN

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/cpu.h"
#include "backend/cpu/dnnl_check.h"
#include "core/util.h"

/* Shapes of binarized_mnist_baseline's 16x16 level at batch 4: a 3x3 cell conv and a cell's
 * 1x1 output conv, SiLU before both as in the model's cells. 3 x 109 MFLOP a run: about
 * 1.5 ms in fp32 on one Zen 5 core. */
#define PROBE_N 4
#define PROBE_HW 16
#define PROBE_C 64
#define PROBE_C_OUT1 256
/* Interleaved timed runs per precision (after one untimed run that builds the primitives);
 * the best counts, so a run another process interrupted does not decide. A round that finds
 * bf16 slower is confirmed by up to PROBE_ROUNDS - 1 more (best over all of them): a false
 * warning is the costly mistake, and on a busy machine one round in ~10 had every bf16 run
 * interrupted. */
#define PROBE_RUNS 7
#define PROBE_ROUNDS 3

typedef struct probe_bufs {
    float *x, *y3, *y1, *dx, *w3, *b3, *w1, *b1, *dw3, *db3, *dw1, *db1;
} probe_bufs;

/* Deterministic values in [-1, 1) (a xorshift): no NaN or denormal, so the timing is the
 * kernels', not special cases'. */
static void fill(float *p, size_t n, uint64_t seed) {
    uint64_t s = seed | 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (float)((double)(s >> 11) * 0x1.0p-52 - 1.0);
    }
}

static vd_status bufs_alloc(probe_bufs *b, vd_err *err) {
    size_t px = (size_t)PROBE_N * PROBE_HW * PROBE_HW;
    struct { float **p; size_t n; } all[] = {
        {&b->x, px * PROBE_C}, {&b->y3, px * PROBE_C}, {&b->y1, px * PROBE_C_OUT1},
        {&b->dx, px * PROBE_C}, {&b->w3, (size_t)PROBE_C * PROBE_C * 9}, {&b->b3, PROBE_C},
        {&b->w1, (size_t)PROBE_C_OUT1 * PROBE_C}, {&b->b1, PROBE_C_OUT1},
        {&b->dw3, (size_t)PROBE_C * PROBE_C * 9}, {&b->db3, PROBE_C},
        {&b->dw1, (size_t)PROBE_C_OUT1 * PROBE_C}, {&b->db1, PROBE_C_OUT1},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!(*all[i].p = malloc(all[i].n * sizeof(float))))
            return vd_errorf(err, VD_ERR_NOMEM, "cpu precision probe: out of memory");
        fill(*all[i].p, all[i].n, 0x9E3779B97F4A7C15ull + i);
    }
    return VD_OK;
}

static void bufs_free(probe_bufs *b) {
    float *all[] = {b->x, b->y3, b->y1, b->dx, b->w3, b->b3, b->w1, b->b1, b->dw3, b->db3, b->dw1, b->db1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* One run: each conv forward, then both backward directions, as a training step does. The
 * outputs are written over (y, dx) or accumulated into scratch (dw, db): the values do not
 * matter, only that the kernels run. */
static void run_once(vd_backend *be, probe_bufs *b) {
    vd_conv_desc c3 = {.c_in = PROBE_C, .c_out = PROBE_C, .kh = 3, .kw = 3, .stride = 1,
                       .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                       .pre_act = VD_CONV_PRE_SILU};
    vd_conv_desc c1 = {.c_in = PROBE_C, .c_out = PROBE_C_OUT1, .kh = 1, .kw = 1, .stride = 1,
                       .pre_act = VD_CONV_PRE_SILU};
    vd_tensor x = vd_tensor_make(b->x, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C);
    vd_tensor y3 = vd_tensor_make(b->y3, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C);
    vd_tensor y1 = vd_tensor_make(b->y1, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C_OUT1);
    vd_tensor dx = vd_tensor_make(b->dx, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C);
    vd_cpu_conv_fwd(be, &c3, &x, b->w3, b->b3, &y3);
    vd_cpu_conv_fwd(be, &c1, &x, b->w1, b->b1, &y1);
    vd_cpu_conv_bwd(be, &c1, &x, &y1, b->w1, b->dw1, b->db1, &dx, false);
    vd_cpu_conv_bwd(be, &c3, &x, &y3, b->w3, b->dw3, b->db3, &dx, true);
}

/* The 3x3 forward runs first in run_once, so its kernel is what ran last after it alone. */
static void kernel_of_3x3_fwd(vd_backend *be, probe_bufs *b, char *buf, size_t cap) {
    vd_conv_desc c3 = {.c_in = PROBE_C, .c_out = PROBE_C, .kh = 3, .kw = 3, .stride = 1,
                       .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                       .pre_act = VD_CONV_PRE_SILU};
    vd_tensor x = vd_tensor_make(b->x, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C);
    vd_tensor y3 = vd_tensor_make(b->y3, PROBE_N, PROBE_HW, PROBE_HW, PROBE_C);
    vd_cpu_conv_fwd(be, &c3, &x, b->w3, b->b3, &y3);
    vd_cpu_conv_last_kernel(vd_cpu_conv_of(be), buf, cap);
}

static const char *isa_name(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "AMX";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "no AMX";
    return "no AVX-512 BF16";
}

vd_status vd_cpu_precision_probe(vd_precision_probe *out, char *kernel, size_t cap, vd_err *err) {
    memset(out, 0, sizeof *out);
    vd_backend *be = NULL;
    vd_status st = vd_backend_create_cpu(&be, 0, err);
    if (st) return vd_err_prefix(err, "cpu precision probe");
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    vd_cpu_conv *cc = vd_cpu_conv_of(be);
    probe_bufs b = {0};
    st = bufs_alloc(&b, err);
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < PROBE_ROUNDS && !st && (!round || best[1] > VD_BF16_SLOWER_RATIO * best[0]); round++)
        for (int r = round ? 0 : -1; r < PROBE_RUNS && !st; r++)
            for (int p = 0; p < 2 && !st; p++) {
                st = vd_cpu_conv_set_precision(cc, p ? VD_PREC_BF16 : VD_PREC_FP32, err);
                double t0 = vd_now_seconds();
                if (!st) run_once(be, &b);
                double dt = vd_now_seconds() - t0;
                if (!st) st = vd_backend_check(be, err);
                if (r >= 0 && dt < best[p]) best[p] = dt;
            }
    if (!st) {
        kernel_of_3x3_fwd(be, &b, kernel, cap); /* still in bf16 from the last run */
        out->kernel = kernel;
        out->isa = isa_name();
        st = vd_backend_check(be, err);
    }
    if (!st) out->fp32_seconds = best[0], out->bf16_seconds = best[1];
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    bufs_free(&b);
    vd_backend_destroy(be);
    return st ? vd_err_prefix(err, "cpu precision probe") : VD_OK;
}

#endif
