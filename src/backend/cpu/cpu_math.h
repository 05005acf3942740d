/* Float transcendentals for the hot activation loops. libm's expf is a call the compiler
 * cannot vectorise (glibc offers vector variants only under -ffast-math), and SiLU over a
 * 384-channel activation would then cost about as much as the convolution beside it; these
 * branch-free versions vectorise and stay within 2 ulp of expf. Branch-free means integer
 * selects: float compares would keep GCC from vectorising under -ftrapping-math. */
#ifndef VD_BACKEND_CPU_CPU_MATH_H
#define VD_BACKEND_CPU_CPU_MATH_H

#include <stdint.h>
#include <string.h>

static inline uint32_t cpu_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float cpu_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* e^-|x|, saturating at e^-87 for |x| >= 87 (NaN gives a number: callers carry NaN through
 * x itself). Cody-Waite reduction -|x| = n ln2 + r, |r| <= ln2 / 2, Cephes' degree-6
 * polynomial for e^r, and 2^n built in the exponent bits (n is read from the rounding
 * constant's low mantissa bits, so no float-to-int conversion is needed). */
static inline float cpu_exp_neg_abs(float x) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t cap = 0x42AE0000u;       /* 87.0f; magnitudes compare as integers */
    uint32_t m = cpu_f2u(x) & 0x7FFFFFFFu;
    float a = -cpu_u2f(m < cap ? m : cap);
    float t = a * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = a - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * cpu_u2f((cpu_f2u(t) - 0x4B400000u + 127u) << 23);
}

/* sigmoid(x) and 1 - sigmoid(x) = sigmoid(-x) from e = e^-|x| and r = 1 / (1 + e): r and e r,
 * swapped by the sign bit, so neither overflows and 1 - s does not cancel for large x. */
static inline void cpu_sigmoid_pair(float x, float *s, float *one_minus_s) {
    float e = cpu_exp_neg_abs(x), r = 1.0f / (1.0f + e), er = e * r;
    uint32_t neg = (uint32_t)((int32_t)cpu_f2u(x) >> 31); /* all ones when the sign is set */
    *s = cpu_u2f((cpu_f2u(r) & ~neg) | (cpu_f2u(er) & neg));
    *one_minus_s = cpu_u2f((cpu_f2u(er) & ~neg) | (cpu_f2u(r) & neg));
}

static inline float cpu_sigmoidf(float x) {
    float s, t;
    cpu_sigmoid_pair(x, &s, &t);
    return s;
}

#endif
