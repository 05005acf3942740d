/* cpu elementwise ops: fill, copy, activations, add/axpy, nearest upsampling and the batch
 * broadcast, as OpenMP loops over contiguous runs. Float math throughout: each output is one
 * rounding of a short expression, which matches cpu_ref's double-then-round to ~1 ulp. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/cpu_math.h"

/* Long enough to amortise the call, short enough to spread a 32x32x96 tensor over threads. */
#define CPU_RUN_BLOCK 4096

void vd_cpu_runs(const vd_tensor *const t[4], int nt, cpu_run_fn fn, const void *ctx) {
    bool dense = true;
    for (int i = 0; i < nt; i++)
        dense = dense && cpu_dense(t[i]);
    int64_t total = vd_tensor_numel(t[0]);
    if (dense) {
        int64_t blocks = cpu_chunks(total, CPU_RUN_BLOCK);
        CPU_PARALLEL_FOR(total)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t first = b * CPU_RUN_BLOCK, n = total - first;
            float *p[4] = {0};
            for (int i = 0; i < nt; i++)
                p[i] = t[i]->data + first;
            fn(ctx, p, n < CPU_RUN_BLOCK ? n : CPU_RUN_BLOCK, first);
        }
        return;
    }
    int64_t pixels = cpu_pixels(t[0]);
    int c = t[0]->c;
    CPU_PARALLEL_FOR(total)
    for (int64_t q = 0; q < pixels; q++) {
        float *p[4] = {0};
        for (int i = 0; i < nt; i++)
            p[i] = cpu_px(t[i], q);
        fn(ctx, p, c, q * c);
    }
}

static void fill_run(const void *ctx, float *const p[4], int64_t n, int64_t first) {
    (void)first;
    float v = *(const float *)ctx;
    for (int64_t i = 0; i < n; i++)
        p[0][i] = v;
}

void vd_cpu_fill(vd_backend *be, const vd_tensor *t, float v) {
    if (!vd_cpu_valid(be, "fill", "t", t)) return;
    vd_cpu_runs((const vd_tensor *[4]){t}, 1, fill_run, &v);
}

static void copy_run(const void *ctx, float *const p[4], int64_t n, int64_t first) {
    (void)ctx, (void)first;
    memmove(p[1], p[0], (size_t)n * sizeof(float));
}

void vd_cpu_copy(vd_backend *be, const vd_tensor *src, const vd_tensor *dst) {
    if (!vd_cpu_valid(be, "copy", "src", src) || !vd_cpu_valid(be, "copy", "dst", dst) ||
        !vd_cpu_same_shape(be, "copy", src, dst))
        return;
    vd_cpu_runs((const vd_tensor *[4]){src, dst}, 2, copy_run, NULL);
}

/* ---- activations ---- */

typedef struct act_ctx {
    vd_act act;
    float param;
    bool acc;
} act_ctx;

CPU_SIMD_CLONES static void silu_fwd_run(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * cpu_sigmoidf(x[i]);
}

void vd_cpu_silu_run(const float *x, float *y, int64_t n) {
    silu_fwd_run(x, y, n);
}

/* d/dx x s(x) = s (1 + x (1 - s)); written (=) or accumulated (+=) */
CPU_SIMD_CLONES static void silu_bwd_run(const float *x, const float *dy, float *dx, int64_t n,
                                         bool acc) {
    if (acc) {
        for (int64_t i = 0; i < n; i++) {
            float s, t;
            cpu_sigmoid_pair(x[i], &s, &t);
            dx[i] += dy[i] * (s * (1.0f + x[i] * t));
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float s, t;
            cpu_sigmoid_pair(x[i], &s, &t);
            dx[i] = dy[i] * (s * (1.0f + x[i] * t));
        }
    }
}

/* torch.nn.Softplus: linear where beta x > 20. Rare (latent scales), so libm is fine. */
static float softplus_value(float x, float beta) {
    return beta * x > 20.0f ? x : log1pf(expf(beta * x)) / beta;
}
static float softplus_slope(float x, float beta) {
    return beta * x > 20.0f ? 1.0f : 1.0f / (1.0f + expf(-beta * x));
}

static void act_fwd_run(const void *vctx, float *const p[4], int64_t n, int64_t first) {
    const act_ctx *ctx = vctx;
    const float *x = p[0];
    float *y = p[1], a = ctx->param;
    (void)first;
    switch (ctx->act) {
    case VD_ACT_SILU:
        silu_fwd_run(x, y, n);
        break;
    case VD_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : a * x[i];
        break;
    case VD_ACT_SOFTPLUS:
        for (int64_t i = 0; i < n; i++)
            y[i] = softplus_value(x[i], a);
        break;
    }
}

/* torch's derivatives: leaky_relu passes alpha at x == 0, softplus is 1 past its threshold. */
static void act_bwd_run(const void *vctx, float *const p[4], int64_t n, int64_t first) {
    const act_ctx *ctx = vctx;
    const float *x = p[0], *dy = p[1];
    float *dx = p[2], a = ctx->param;
    (void)first;
    if (ctx->act == VD_ACT_SILU) {
        silu_bwd_run(x, dy, dx, n, ctx->acc);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float slope = ctx->act == VD_ACT_LEAKY_RELU ? (x[i] > 0 ? 1.0f : a)
                                                    : softplus_slope(x[i], a);
        float g = dy[i] * slope;
        dx[i] = ctx->acc ? dx[i] + g : g;
    }
}

static bool act_known(vd_backend *be, vd_act act) {
    if (act == VD_ACT_SILU || act == VD_ACT_LEAKY_RELU || act == VD_ACT_SOFTPLUS) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "cpu act: unknown activation %d", (int)act);
    return false;
}

void vd_cpu_act_fwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *y) {
    if (!act_known(be, act) || !vd_cpu_valid(be, "act_fwd", "x", x) ||
        !vd_cpu_valid(be, "act_fwd", "y", y) || !vd_cpu_same_shape(be, "act_fwd", x, y))
        return;
    act_ctx ctx = {act, param, false};
    vd_cpu_runs((const vd_tensor *[4]){x, y}, 2, act_fwd_run, &ctx);
}

void vd_cpu_act_bwd(vd_backend *be, vd_act act, float param, const vd_tensor *x,
                    const vd_tensor *dy, const vd_tensor *dx, bool acc) {
    if (!act_known(be, act) || !vd_cpu_valid(be, "act_bwd", "x", x) ||
        !vd_cpu_valid(be, "act_bwd", "dy", dy) || !vd_cpu_valid(be, "act_bwd", "dx", dx) ||
        !vd_cpu_same_shape(be, "act_bwd", x, dy) || !vd_cpu_same_shape(be, "act_bwd", x, dx))
        return;
    act_ctx ctx = {act, param, acc};
    vd_cpu_runs((const vd_tensor *[4]){x, dy, dx}, 3, act_bwd_run, &ctx);
}

/* ---- add, axpy ---- */

static void add_run(const void *ctx, float *const p[4], int64_t n, int64_t first) {
    (void)ctx, (void)first;
    for (int64_t i = 0; i < n; i++)
        p[2][i] = p[0][i] + p[1][i];
}

void vd_cpu_add(vd_backend *be, const vd_tensor *a, const vd_tensor *b, const vd_tensor *y) {
    if (!vd_cpu_valid(be, "add", "a", a) || !vd_cpu_valid(be, "add", "b", b) ||
        !vd_cpu_valid(be, "add", "y", y) || !vd_cpu_same_shape(be, "add", a, b) ||
        !vd_cpu_same_shape(be, "add", a, y))
        return;
    vd_cpu_runs((const vd_tensor *[4]){a, b, y}, 3, add_run, NULL);
}

static void axpy_run(const void *ctx, float *const p[4], int64_t n, int64_t first) {
    float alpha = *(const float *)ctx;
    (void)first;
    for (int64_t i = 0; i < n; i++)
        p[1][i] += alpha * p[0][i];
}

void vd_cpu_axpy(vd_backend *be, float alpha, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_cpu_valid(be, "axpy", "x", x) || !vd_cpu_valid(be, "axpy", "y", y) ||
        !vd_cpu_same_shape(be, "axpy", x, y))
        return;
    vd_cpu_runs((const vd_tensor *[4]){x, y}, 2, axpy_run, &alpha);
}

/* ---- nearest upsampling ---- */

static bool upsample_shapes(vd_backend *be, const char *op, int s, const vd_tensor *small,
                            const vd_tensor *big) {
    if (s >= 1 && big->n == small->n && big->h == small->h * s && big->w == small->w * s &&
        big->c == small->c)
        return true;
    vd_backend_fail(be, VD_ERR_INVALID,
                    "cpu %s: [%d,%d,%d,%d] is not [%d,%d,%d,%d] upsampled by %d", op, big->n,
                    big->h, big->w, big->c, small->n, small->h, small->w, small->c, s);
    return false;
}

void vd_cpu_upsample_fwd(vd_backend *be, int s, const vd_tensor *x, const vd_tensor *y) {
    if (!vd_cpu_valid(be, "upsample_fwd", "x", x) || !vd_cpu_valid(be, "upsample_fwd", "y", y) ||
        !upsample_shapes(be, "upsample_fwd", s, x, y))
        return;
    int64_t rows = (int64_t)y->n * y->h; /* output rows (n, h) */
    size_t bytes = (size_t)y->c * sizeof(float);
    CPU_PARALLEL_FOR(vd_tensor_numel(y))
    for (int64_t r = 0; r < rows; r++) {
        int64_t n = r / y->h, h = r % y->h;
        const float *src = cpu_px(x, (n * x->h + h / s) * x->w);
        float *dst = cpu_px(y, r * y->w);
        for (int w = 0; w < y->w; w++)
            memcpy(dst + w * y->ld, src + (w / s) * x->ld, bytes);
    }
}

/* dx[n,h,w] (=|+=) the sum of the s x s block of dy it was copied to. */
void vd_cpu_upsample_bwd(vd_backend *be, int s, const vd_tensor *dy, const vd_tensor *dx,
                         bool acc) {
    if (!vd_cpu_valid(be, "upsample_bwd", "dy", dy) ||
        !vd_cpu_valid(be, "upsample_bwd", "dx", dx) ||
        !upsample_shapes(be, "upsample_bwd", s, dx, dy))
        return;
    int64_t pixels = cpu_pixels(dx);
    int c = dx->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(dy))
    for (int64_t q = 0; q < pixels; q++) {
        int64_t n = q / ((int64_t)dx->h * dx->w), h = q / dx->w % dx->h, w = q % dx->w;
        float *d = cpu_px(dx, q);
        if (!acc)
            for (int k = 0; k < c; k++)
                d[k] = 0;
        for (int i = 0; i < s; i++) {
            const float *g = cpu_px(dy, ((n * dy->h + h * s + i) * dy->w + w * s));
            for (int j = 0; j < s; j++)
                for (int k = 0; k < c; k++)
                    d[k] += g[j * dy->ld + k];
        }
    }
}

/* ---- batch broadcast of a planar (1, C, H, W) image ---- */

void vd_cpu_broadcast_fwd(vd_backend *be, const float *t, const vd_tensor *y, bool acc) {
    if (!vd_cpu_valid(be, "broadcast_fwd", "y", y)) return;
    CPU_REQUIRE(be, t, "cpu broadcast_fwd: the broadcast image is missing");
    int64_t image = (int64_t)y->h * y->w, pixels = cpu_pixels(y);
    int c = y->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(y))
    for (int64_t p = 0; p < pixels; p++) {
        const float *src = t + p % image;
        float *d = cpu_px(y, p);
        if (acc)
            for (int k = 0; k < c; k++)
                d[k] += src[k * image];
        else
            for (int k = 0; k < c; k++)
                d[k] = src[k * image];
    }
}

/* dt[c, h, w] += sum over n, in double and in batch order, so it is deterministic; channels
 * go in groups so that each pass over the batch reads whole runs of a pixel. */
#define BCAST_GROUP 64

void vd_cpu_broadcast_bwd(vd_backend *be, const vd_tensor *dy, float *dt) {
    if (!vd_cpu_valid(be, "broadcast_bwd", "dy", dy)) return;
    CPU_REQUIRE(be, dt, "cpu broadcast_bwd: the gradient image is missing");
    int64_t image = (int64_t)dy->h * dy->w;
    int c = dy->c;
    CPU_PARALLEL_FOR(vd_tensor_numel(dy))
    for (int64_t q = 0; q < image; q++) {
        for (int k0 = 0; k0 < c; k0 += BCAST_GROUP) {
            int kn = c - k0 < BCAST_GROUP ? c - k0 : BCAST_GROUP;
            double sum[BCAST_GROUP] = {0};
            for (int n = 0; n < dy->n; n++) {
                const float *g = cpu_px(dy, n * image + q) + k0;
                for (int k = 0; k < kn; k++)
                    sum[k] += g[k];
            }
            for (int k = 0; k < kn; k++)
                dt[(k0 + k) * image + q] += (float)sum[k];
        }
    }
}
