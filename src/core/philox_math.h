/* Philox4x32-10 and the float math of its normals as inline functions that the CPU
 * (src/core/philox.c, the vdvae/rng.h API) and the CUDA kernels compile from the same source, so
 * both draw the same bits. Only IEEE-rounded float +, -, *, / and sqrt: whoever compiles this
 * must not contract multiply-adds (philox.c builds with -ffp-contract=off, the CUDA backend with
 * --fmad=false). Layout and mappings: vdvae/rng.h. */
#ifndef VD_CORE_PHILOX_MATH_H
#define VD_CORE_PHILOX_MATH_H

#include <math.h>
#include <stdint.h>

#include "core/bits.h"
#include "core/hd.h"
#include "vdvae/rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

VD_HD static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = c[1], c3 = c[3];
    c[0] = hi1 ^ c1 ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k[1];
    c[3] = lo0;
}

VD_HD static inline void vd_philox_hd(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r) {
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0], out[1] = c[1], out[2] = c[2], out[3] = c[3];
}

VD_HD static inline void vd_rng_block_hd(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    vd_philox_hd(ctr, key, out);
}

VD_HD static inline float vd_rng_uniform_hd(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    vd_rng_block_hd(seed, stream, index >> 2, w);
    return (float)(2u * (w[index & 3] >> 9) + 1u) * (1.0f / 16777216.0f);
}

/* ---- normals: Box-Muller on our own float polynomials ----
 * (libm's logf/sinf/cosf differ between CPUs and from CUDA's, and were 90% of a latent
 * sampling op on the CPU). */

/* ln(u) for the generator's uniforms (normal floats in [2^-24, 1)): u = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, by its series
 * to s^11 (next term < 2e-10 relative). Within 2 ulp of the exact value. */
VD_HD static inline float bm_log(float u) {
    uint32_t b = vd_f2u(u);
    uint32_t big = (b & 0x7FFFFFu) > 0x3504F3u; /* mantissa above sqrt(2): halve it */
    int32_t e = (int32_t)(b >> 23) - 127 + (int32_t)big;
    float m = vd_u2f((b & 0x7FFFFFu) | ((127u - big) << 23));
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float p = 2.0f / 11.0f;
    p = p * s2 + 2.0f / 9.0f;
    p = p * s2 + 2.0f / 7.0f;
    p = p * s2 + 2.0f / 5.0f;
    p = p * s2 + 2.0f / 3.0f;
    p = p * s2 + 2.0f;
    return (float)e * 0.693147180559945309f + s * p;
}

/* cos and sin of 2 pi v for v in (0, 1): v = (q + f) / 4 with q the nearest quarter turn
 * (4v is exact) and |f| <= 1/2, x = f pi / 2 in [-pi/4, pi/4], Taylor polynomials to x^11 and
 * x^12 (next terms < 3e-10), then the quarter turns as swaps and signs. */
VD_HD static inline void bm_cos_sin(float v, float *c, float *s) {
    float v4 = 4.0f * v;
    float qf = (v4 + 12582912.0f) - 12582912.0f; /* round to nearest (1.5 * 2^23 trick) */
    uint32_t q = (uint32_t)(int32_t)qf;
    float x = (v4 - qf) * 1.57079632679489662f, x2 = x * x;
    float ps = -1.0f / 39916800.0f;
    ps = ps * x2 + 1.0f / 362880.0f;
    ps = ps * x2 - 1.0f / 5040.0f;
    ps = ps * x2 + 1.0f / 120.0f;
    ps = ps * x2 - 1.0f / 6.0f;
    float sx = x + x * x2 * ps;
    float pc = 1.0f / 479001600.0f;
    pc = pc * x2 - 1.0f / 3628800.0f;
    pc = pc * x2 + 1.0f / 40320.0f;
    pc = pc * x2 - 1.0f / 720.0f;
    pc = pc * x2 + 1.0f / 24.0f;
    pc = pc * x2 - 0.5f;
    float cx = 1.0f + x2 * pc;
    uint32_t swap = 0u - (q & 1u); /* all ones on odd quarter turns */
    float sin_q = vd_u2f((vd_f2u(sx) & ~swap) | (vd_f2u(cx) & swap));
    float cos_q = vd_u2f((vd_f2u(cx) & ~swap) | (vd_f2u(sx) & swap));
    *s = vd_u2f(vd_f2u(sin_q) ^ ((q & 2u) << 30));        /* negative in turns 2, 3 */
    *c = vd_u2f(vd_f2u(cos_q) ^ (((q + 1u) & 2u) << 30)); /* negative in turns 1, 2 */
}

/* The normal of lanes (2j, 2j+1) of a block from its words w[2j], w[2j+1]: r cos, r sin. */
VD_HD static inline void vd_rng_box_muller(uint32_t w_r, uint32_t w_t, float *even, float *odd) {
    float r = sqrtf(-2.0f * bm_log((float)(2u * (w_r >> 9) + 1u) * (1.0f / 16777216.0f))), c, s;
    bm_cos_sin((float)(2u * (w_t >> 9) + 1u) * (1.0f / 16777216.0f), &c, &s);
    *even = r * c;
    *odd = r * s;
}

VD_HD static inline float vd_rng_normal_hd(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    vd_rng_block_hd(seed, stream, index >> 2, w);
    unsigned pair = (unsigned)(index & 2);
    float even, odd;
    vd_rng_box_muller(w[pair], w[pair + 1], &even, &odd);
    return (index & 1) ? odd : even;
}

#endif
