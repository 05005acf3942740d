/* cpu reductions: the sum of squares behind the global gradient norm and the per-channel sums
 * behind a convolution's bias gradient (in bf16 fused with the conversion of dy, same bits).
 * Both cut the work into chunks fixed by the problem size, sum each chunk in double and add
 * the chunk sums in order, so a gradient norm is the same bits at any thread count (a resumed
 * run must match an uninterrupted one). */
#include "backend/cpu/cpu.h"

#define SQ_CHUNK 65536 /* floats per chunk of sum_squares */
#define SQ_LANES 8     /* independent accumulators: a fixed pattern the compiler vectorises */
#define CS_CHUNK 256   /* pixels per chunk of the channel sums */

/* Element i goes to lane i % SQ_LANES; the lanes are added in order at the end. */
CPU_SIMD_CLONES static double sum_squares_run(const float *x, int64_t n) {
    double lane[SQ_LANES] = {0};
    int64_t i = 0;
    for (; i + SQ_LANES <= n; i += SQ_LANES)
        for (int l = 0; l < SQ_LANES; l++)
            lane[l] += (double)x[i + l] * x[i + l];
    for (int l = 0; i < n; i++, l++)
        lane[l] += (double)x[i] * x[i];
    double sum = 0;
    for (int l = 0; l < SQ_LANES; l++)
        sum += lane[l];
    return sum;
}

void vd_cpu_sum_squares(vd_backend *be, const float *x, size_t n, float *out) {
    CPU_REQUIRE(be, out && (x || n == 0), "cpu sum_squares: %s is missing", out ? "x" : "out");
    int64_t chunks = cpu_chunks((int64_t)n, SQ_CHUNK);
    double *part = vd_cpu_partials(be, chunks ? (size_t)chunks : 1);
    if (!part) return;
    CPU_PARALLEL_FOR((int64_t)n)
    for (int64_t k = 0; k < chunks; k++) {
        int64_t first = k * SQ_CHUNK, len = (int64_t)n - first;
        part[k] = sum_squares_run(x + first, len < SQ_CHUNK ? len : SQ_CHUNK);
    }
    double sum = 0;
    for (int64_t k = 0; k < chunks; k++)
        sum += part[k];
    *out = (float)sum;
}

/* acc[o] = sum of dy[q, o] over pixels [first, end), pixel by pixel. */
CPU_SIMD_CLONES static void channel_sums_run(const vd_tensor *dy, int64_t first, int64_t end,
                                             double *acc) {
    for (int o = 0; o < dy->c; o++)
        acc[o] = 0;
    for (int64_t q = first; q < end; q++) {
        const float *g = cpu_px(dy, q);
        for (int o = 0; o < dy->c; o++)
            acc[o] += g[o];
    }
}

/* The pixels [first, end) of dy converted to bf16 (or rounded floats) into the dense dst. */
static void convert_pixels(const vd_tensor *dy, int64_t first, int64_t end, void *dst,
                           bool to_float, bool native) {
    size_t elem = to_float ? sizeof(float) : sizeof(uint16_t);
    char *out = (char *)dst + (size_t)(first * dy->c) * elem;
    if (cpu_dense(dy)) {
        vd_cpu_bf16_run(cpu_px(dy, first), out, (end - first) * dy->c, to_float, native);
        return;
    }
    for (int64_t q = first; q < end; q++, out += (size_t)dy->c * elem)
        vd_cpu_bf16_run(cpu_px(dy, q), out, dy->c, to_float, native);
}

/* db += the channel sums of dy; with dst, each chunk of dy is also converted while it is in
 * cache (a bf16 convolution's backward weights reads dy for both). */
static void channel_sums(vd_backend *be, const vd_tensor *dy, float *db, void *dst, bool to_float) {
    int64_t pixels = cpu_pixels(dy), chunks = cpu_chunks(pixels, CS_CHUNK);
    int c = dy->c;
    bool native = dst && vd_cpu_bf16_native();
    double *part = vd_cpu_partials(be, (size_t)(chunks * c));
    if (!part) return;
    CPU_PARALLEL_FOR(vd_tensor_numel(dy))
    for (int64_t k = 0; k < chunks; k++) {
        int64_t end = (k + 1) * CS_CHUNK < pixels ? (k + 1) * CS_CHUNK : pixels;
        if (dst) convert_pixels(dy, k * CS_CHUNK, end, dst, to_float, native);
        channel_sums_run(dy, k * CS_CHUNK, end, part + k * c);
    }
    for (int o = 0; o < c; o++) {
        double sum = 0;
        for (int64_t k = 0; k < chunks; k++)
            sum += part[k * c + o];
        db[o] += (float)sum;
    }
}

void vd_cpu_channel_sums_add(vd_backend *be, const vd_tensor *dy, float *db) {
    channel_sums(be, dy, db, NULL, false);
}

void vd_cpu_bf16_pack_sums(vd_backend *be, const vd_tensor *dy, void *dst, bool to_float,
                           float *db) {
    channel_sums(be, dy, db, dst, to_float);
}
