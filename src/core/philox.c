/* Philox4x32-10 and the uniform / normal draws built on it (layout and mappings documented in
 * vdvae/rng.h). Stateless: safe to call from any number of threads. */
#include "vdvae/rng.h"

#include <math.h>

#include "core/bits.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
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

void vd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
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

void vd_rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    vd_philox4x32(ctr, key, out);
}

uint32_t vd_rng_u32(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    vd_rng_block(seed, stream, index >> 2, w);
    return w[index & 3];
}

float vd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    return vd_rng_u32_to_uniform(vd_rng_u32(seed, stream, index));
}

uint64_t vd_rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    vd_rng_block(seed, stream, index >> 1, w);
    int lane = (int)(index & 1) * 2;
    return (uint64_t)w[lane] | (uint64_t)w[lane + 1] << 32;
}

uint64_t vd_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t bound) {
    unsigned __int128 m = (unsigned __int128)vd_rng_u64(seed, stream, index) * bound;
    return (uint64_t)(m >> 64);
}

/* ---- normals: Box-Muller on our own float polynomials ----
 * Only IEEE-rounded float +, -, *, / and sqrt (this file builds with -ffp-contract=off, so no
 * fused multiply-adds), so every CPU, vector width and a GPU port compute the same bits, and
 * the loops vectorise (libm's logf/sinf/cosf were 90% of a latent sampling op). */

/* ln(u) for the generator's uniforms (normal floats in [2^-24, 1)): u = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, by its series
 * to s^11 (next term < 2e-10 relative). Within 2 ulp of the exact value. */
static inline float bm_log(float u) {
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
static inline void bm_cos_sin(float v, float *c, float *s) {
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

/* Blocks made at a time: long enough for the loops to vectorise, short enough for the stack. */
#define NORMAL_BLOCKS 16

/* The four normals of each of n (<= NORMAL_BLOCKS) consecutive blocks from `block`. */
static void normal_blocks(uint64_t seed, uint64_t stream, uint64_t block, int n, float *z) {
    uint32_t w[4 * NORMAL_BLOCKS];
    for (int i = 0; i < n; i++) vd_rng_block(seed, stream, block + (uint64_t)i, w + 4 * i);
    for (int i = 0; i < 2 * n; i++) {
        float r = sqrtf(-2.0f * bm_log(vd_rng_u32_to_uniform(w[2 * i]))), c, s;
        bm_cos_sin(vd_rng_u32_to_uniform(w[2 * i + 1]), &c, &s);
        z[2 * i] = r * c;
        z[2 * i + 1] = r * s;
    }
}

float vd_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    float z[4];
    normal_blocks(seed, stream, index >> 2, 1, z);
    return z[index & 3];
}

void vd_rng_fill_uniform(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out) {
    size_t k = 0;
    while (k < n) {
        uint64_t idx = first + k;
        uint32_t w[4];
        vd_rng_block(seed, stream, idx >> 2, w);
        for (unsigned lane = (unsigned)(idx & 3); lane < 4 && k < n; lane++)
            out[k++] = vd_rng_u32_to_uniform(w[lane]);
    }
}

void vd_rng_fill_normal(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out) {
    float z[4 * NORMAL_BLOCKS];
    size_t k = 0;
    while (k < n) {
        uint64_t idx = first + k, block = idx >> 2;
        uint64_t last = (first + n - 1) >> 2; /* the last block touched */
        int nb = last - block + 1 < NORMAL_BLOCKS ? (int)(last - block + 1) : NORMAL_BLOCKS;
        normal_blocks(seed, stream, block, nb, z);
        for (unsigned j = (unsigned)(idx & 3); j < 4u * (unsigned)nb && k < n; j++) out[k++] = z[j];
    }
}
