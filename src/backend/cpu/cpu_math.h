/* Float transcendentals for the hot activation loops. libm's expf is a call the compiler
 * cannot vectorise (glibc offers vector variants only under -ffast-math), and SiLU over a
 * 384-channel activation would then cost about as much as the convolution beside it; these
 * branch-free versions vectorise and stay within 2 ulp of expf. Branch-free means integer
 * selects: float compares would keep GCC from vectorising under -ftrapping-math. */
#ifndef VD_BACKEND_CPU_CPU_MATH_H
#define VD_BACKEND_CPU_CPU_MATH_H

#include <stdint.h>

#include "core/bits.h"


/* if_set where mask is all ones, if_clear where it is 0: a select without a float compare */
static inline float cpu_select(uint32_t mask, float if_set, float if_clear) {
    return vd_u2f((vd_f2u(if_set) & mask) | (vd_f2u(if_clear) & ~mask));
}

/* e^r for the reduced argument |r| <= ln2 / 2: Cephes' degree-6 polynomial. */
static inline float cpu_exp_reduced(float r) {
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}

/* e^-|x|, saturating at e^-87 for |x| >= 87 (NaN gives a number: callers carry NaN through
 * x itself). Cody-Waite reduction -|x| = n ln2 + r, |r| <= ln2 / 2, Cephes' degree-6
 * polynomial for e^r, and 2^n built in the exponent bits (n is read from the rounding
 * constant's low mantissa bits, so no float-to-int conversion is needed). */
static inline float cpu_exp_neg_abs(float x) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t cap = 0x42AE0000u;       /* 87.0f; magnitudes compare as integers */
    uint32_t m = vd_f2u(x) & 0x7FFFFFFFu;
    float a = -vd_u2f(m < cap ? m : cap);
    float t = a * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = a - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = cpu_exp_reduced(r);
    return p * vd_u2f((vd_f2u(t) - 0x4B400000u + 127u) << 23);
}

/* sigmoid(x) and 1 - sigmoid(x) = sigmoid(-x) from e = e^-|x| and r = 1 / (1 + e): r and e r,
 * swapped by the sign bit, so neither overflows and 1 - s does not cancel for large x. */
static inline void cpu_sigmoid_pair(float x, float *s, float *one_minus_s) {
    float e = cpu_exp_neg_abs(x), r = 1.0f / (1.0f + e), er = e * r;
    uint32_t neg = (uint32_t)((int32_t)vd_f2u(x) >> 31); /* all ones when the sign is set */
    *s = vd_u2f((vd_f2u(r) & ~neg) | (vd_f2u(er) & neg));
    *one_minus_s = vd_u2f((vd_f2u(er) & ~neg) | (vd_f2u(r) & neg));
}

static inline float cpu_sigmoidf(float x) {
    float s, t;
    cpu_sigmoid_pair(x, &s, &t);
    return s;
}

/* e^-(|a_hi| + a_lo) for |a_lo| <= 2^-20 |a_hi|, a_hi finite or infinite: an argument known to
 * more than float precision, as beta x is when carried as a float pair. cpu_exp_neg_abs's
 * reduction and polynomial with a_lo folded into r, so the result keeps its 2 ulp where a
 * rounded argument would cost |a| / 2 ulp; and it goes on down through the subnormals (0 from
 * a_hi >= 104) by building 2^(n + 64) and then scaling by 2^-64, which rounds only once. */
static inline float cpu_exp_neg_pair(float a_hi, float a_lo) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23 */
    const uint32_t cap = 0x42D00000u;       /* 104.0f */
    uint32_t m = vd_f2u(a_hi) & 0x7FFFFFFFu;
    uint32_t keep = (uint32_t)-(int32_t)(m < cap); /* all ones below the cap */
    float a = -vd_u2f((m & keep) | (cap & ~keep));
    float lo = vd_u2f(vd_f2u(a_lo) & keep); /* past the cap a_lo no longer matters */
    float t = a * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = a - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    r = r - lo;
    float p = cpu_exp_reduced(r);
    return p * vd_u2f((vd_f2u(t) - 0x4B400000u + 127u + 64u) << 23) * 0x1p-64f;
}

/* log(1 + x) for x in [0, 1]. u = 1 + x rounds away the low bits of a small x, so the
 * rounding error x - (u - 1) (exact: Fast2Sum, as u - 1 is by Sterbenz) comes back as
 * (x - (u - 1)) / u. log u = k ln2 + log m with m = u or u / 2 in [sqrt(1/2), sqrt(2)) and
 * Cephes' logf polynomial in f = m - 1, m picked by comparing bits (u is positive). */
static inline float cpu_log1p_unit(float x) {
    float u = 1.0f + x;
    float c = (x - (u - 1.0f)) / u;
    uint32_t big = (uint32_t)-(int32_t)(vd_f2u(u) > 0x3FB504F3u); /* u > sqrt(2) */
    float k = vd_u2f(vd_f2u(1.0f) & big);
    float f = vd_u2f((vd_f2u(u) - (0x00800000u & big))) - 1.0f; /* u / 2 when big */
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y = y + k * -2.12194440e-4f - 0.5f * z + c;
    return f + y + k * 0.693359375f;
}


/* x is a positive, normal, finite double: what cpu_log_normal serves. */
static inline int cpu_log_served(double x) {
    return vd_d2u(x) - 0x0010000000000000ull < 0x7FE0000000000000ull;
}

/* log x in double for a served x (anything else gives a number: callers check with
 * cpu_log_served), within 1 ulp: fdlibm's __ieee754_log without its branches. x = 2^k m,
 * m in [sqrt(2)/2, sqrt(2)) picked by adding a carry into the exponent bits, f = m - 1,
 * s = f / (2 + f) and log(1 + f) = 2 atanh s = f - f^2/2 + s (f^2/2 + R(s^2)). k is made a
 * double through the 2^52 bias, as AVX2 has no vector int64-to-double conversion. */
static inline double cpu_log_normal(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    uint64_t hx = vd_d2u(x);
    uint64_t mant = hx & 0x000FFFFFFFFFFFFFull;
    uint64_t up = (mant + 0x00095F6400000000ull) & 0x0010000000000000ull; /* m >= sqrt(2) */
    double f = vd_u2d(mant | (up ^ 0x3FF0000000000000ull)) - 1.0;
    double k = vd_u2d(0x4330000000000000ull | ((hx >> 52) + (up >> 52))) - (0x1p52 + 1023.0);
    double hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (3.999999999940941908e-01 +
                     w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 +
                     w * (2.857142874366239149e-01 +
                          w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    double r = t2 + t1;
    return k * ln2_hi - ((hfsq - (s * (hfsq + r) + k * ln2_lo)) - f);
}

#endif
