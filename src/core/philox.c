/* Philox4x32-10 and the uniform / normal draws built on it (layout and mappings documented in
 * vdvae/rng.h). Stateless: safe to call from any number of threads. */
#include "vdvae/rng.h"

#include <math.h>

#include "core/philox_math.h"

void vd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    vd_philox_hd(ctr, key, out);
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

/* Blocks made at a time: long enough for the loops to vectorise, short enough for the stack. */
#define NORMAL_BLOCKS 16

/* The four normals of each of n (<= NORMAL_BLOCKS) consecutive blocks from `block`. */
static void normal_blocks(uint64_t seed, uint64_t stream, uint64_t block, int n, float *z) {
    uint32_t w[4 * NORMAL_BLOCKS];
    for (int i = 0; i < n; i++) vd_rng_block(seed, stream, block + (uint64_t)i, w + 4 * i);
    for (int i = 0; i < 2 * n; i++)
        vd_rng_box_muller(w[2 * i], w[2 * i + 1], &z[2 * i], &z[2 * i + 1]);
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
