/* Float transcendentals for the hot activation loops. libm's expf is a call the compiler
 * cannot vectorise (glibc offers vector variants only under -ffast-math), and SiLU over a
 * 384-channel activation would then cost as much as the convolution next to it; these
 * branch-free versions vectorise and stay within a few ulp of expf. */
#ifndef VD_BACKEND_CPU_CPU_MATH_H
#define VD_BACKEND_CPU_CPU_MATH_H

#include <stdint.h>
#include <string.h>

/* e^x for x in [-87, 88]; inputs outside saturate to e^-87 and e^88 (the callers only feed
 * 1 + e^x denominators, where that is exact to float precision). NaN stays NaN. Cody-Waite
 * reduction x = n ln2 + r with |r| <= ln2 / 2, then Cephes' degree-6 polynomial for e^r and
 * 2^n built in the exponent bits (n is read from the rounding constant's low bits, so no
 * float-to-int conversion is needed). */
static inline float cpu_expf(float x) {
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    int32_t ti;
    memcpy(&ti, &t, sizeof ti);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (ti - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float cpu_sigmoidf(float x) {
    return 1.0f / (1.0f + cpu_expf(-x));
}

#endif
