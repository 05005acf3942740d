/* cpu float32 -> bfloat16 conversion for the bf16 convolutions (backend/bf16.h says how a
 * float rounds). The conversion reads every input of a convolution once more, so it must run
 * at memory speed: AVX-512 BF16's VCVTNE2PS2BF16 where the CPU has it (picked at run time, so
 * one binary runs anywhere), else the scalar rounding, which gives the same bits; spread over
 * the OpenMP threads. Packing a channel view writes a dense copy, so the conversion is also
 * the packing oneDNN's fast kernels want.
 *
 * Two outputs: bf16 (the fast path, oneDNN's bf16 kernels read it) and the same values as
 * floats (bf16 held in float32, exact) for convolutions that oneDNN has no fast bf16 kernel
 * for, which then run in fp32 on rounded inputs: the same numbers, fp32 speed. */
#include "backend/bf16.h"
#include "backend/cpu/cpu.h"

#if defined(__x86_64__) && ((defined(__GNUC__) && __GNUC__ >= 10) || defined(__clang__))
#define CPU_BF16_X86 1
#include <immintrin.h>
#endif

/* Long enough to amortise the call, short enough to spread a 32x32x96 tensor over threads. */
#define BF16_BLOCK 8192

#ifdef CPU_BF16_X86
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* The lanes of m (n < 16 of them: a tail) or all 16. */
static inline __mmask16 tail_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

BF16_TARGET static void to_bf16_native(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)h);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16((void *)(dst + i), m, (__m256i)h);
    }
}

/* bf16 bits widened back to floats: the low half of each 32-bit lane is zero. */
BF16_TARGET static void to_rounded_native(const float *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        __m512i wide = _mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(wide));
    }
}
#endif

bool vd_cpu_bf16_native(void) {
#ifdef CPU_BF16_X86
    return __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

void vd_cpu_bf16_run(const float *src, void *dst, int64_t n, bool to_float, bool native) {
#ifdef CPU_BF16_X86
    if (native) {
        if (to_float)
            to_rounded_native(src, dst, n);
        else
            to_bf16_native(src, dst, n);
        return;
    }
#else
    (void)native;
#endif
    if (to_float) {
        float *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = vd_bf16_round(src[i]);
    } else {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = vd_bf16_from_f32(src[i]);
    }
}

void vd_cpu_bf16_flat(const float *src, void *dst, int64_t n, bool to_float) {
    bool native = vd_cpu_bf16_native();
    size_t elem = to_float ? sizeof(float) : sizeof(uint16_t);
    int64_t blocks = cpu_chunks(n, BF16_BLOCK);
    CPU_PARALLEL_FOR(n)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t first = b * BF16_BLOCK, len = n - first;
        vd_cpu_bf16_run(src + first, (char *)dst + (size_t)first * elem,
                        len < BF16_BLOCK ? len : BF16_BLOCK, to_float, native);
    }
}

void vd_cpu_bf16_pack(const vd_tensor *t, void *dst, bool to_float) {
    if (cpu_dense(t)) {
        vd_cpu_bf16_flat(t->data, dst, vd_tensor_numel(t), to_float);
        return;
    }
    bool native = vd_cpu_bf16_native();
    size_t row = (size_t)t->c * (to_float ? sizeof(float) : sizeof(uint16_t));
    int64_t pixels = cpu_pixels(t);
    CPU_PARALLEL_FOR(vd_tensor_numel(t))
    for (int64_t q = 0; q < pixels; q++)
        vd_cpu_bf16_run(cpu_px(t, q), (char *)dst + (size_t)q * row, t->c, to_float, native);
}

/* Each block goes through a stack buffer: silu in float32 (L1-resident), then rounded. */
static void silu_block(const float *src, void *dst, int64_t n, bool to_float, bool native) {
    float tmp[BF16_BLOCK];
    for (int64_t i = 0; i < n; i += BF16_BLOCK) {
        int64_t len = n - i < BF16_BLOCK ? n - i : BF16_BLOCK;
        vd_cpu_silu_run(src + i, tmp, len);
        vd_cpu_bf16_run(tmp, (char *)dst + (size_t)i * (to_float ? sizeof(float) : sizeof(uint16_t)), len,
                        to_float, native);
    }
}

void vd_cpu_bf16_pack_silu(const vd_tensor *t, void *dst, bool to_float) {
    bool native = vd_cpu_bf16_native();
    size_t elem = to_float ? sizeof(float) : sizeof(uint16_t);
    if (cpu_dense(t)) {
        int64_t n = vd_tensor_numel(t), blocks = cpu_chunks(n, BF16_BLOCK);
        CPU_PARALLEL_FOR(n)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t first = b * BF16_BLOCK, len = n - first;
            silu_block(t->data + first, (char *)dst + (size_t)first * elem, len < BF16_BLOCK ? len : BF16_BLOCK,
                       to_float, native);
        }
        return;
    }
    size_t row = (size_t)t->c * elem;
    int64_t pixels = cpu_pixels(t);
    CPU_PARALLEL_FOR(vd_tensor_numel(t))
    for (int64_t q = 0; q < pixels; q++)
        silu_block(cpu_px(t, q), (char *)dst + (size_t)q * row, t->c, to_float, native);
}
