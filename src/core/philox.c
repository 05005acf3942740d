/* Philox4x32-10 and the uniform / normal draws built on it (layout and mappings documented in
 * vdvae/rng.h). Stateless: safe to call from any number of threads. */
#include "vdvae/rng.h"

#include <math.h>

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

/* Two normals from the word pair (a, b): r cos(theta) and r sin(theta). */
static inline void box_muller(uint32_t a, uint32_t b, float *even, float *odd) {
    float r = sqrtf(-2.0f * logf(vd_rng_u32_to_uniform(a)));
    float theta = 6.28318530717958647692f * vd_rng_u32_to_uniform(b);
    *even = r * cosf(theta);
    *odd = r * sinf(theta);
}

static void normal_block(uint64_t seed, uint64_t stream, uint64_t block, float z[4]) {
    uint32_t w[4];
    vd_rng_block(seed, stream, block, w);
    box_muller(w[0], w[1], &z[0], &z[1]);
    box_muller(w[2], w[3], &z[2], &z[3]);
}

float vd_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    float z[4];
    normal_block(seed, stream, index >> 2, z);
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
    size_t k = 0;
    while (k < n) {
        uint64_t idx = first + k;
        float z[4];
        normal_block(seed, stream, idx >> 2, z);
        for (unsigned lane = (unsigned)(idx & 3); lane < 4 && k < n; lane++) out[k++] = z[lane];
    }
}
