/* MT19937 with numpy's legacy seeding and bounded draws; see mt19937.h. Hand-written because
 * the point is bit-exact agreement with numpy's RandomState, which no C library promises. */
#include "data/mt19937.h"

#include <assert.h>

#define MT_N 624
#define MT_M 397

void vd_mt19937_seed(vd_mt19937 *r, uint32_t seed) {
    r->mt[0] = seed;
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
}

static void mt_generate(vd_mt19937 *r) {
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % MT_N] & 0x7fffffffu);
        uint32_t v = r->mt[(i + MT_M) % MT_N] ^ (y >> 1);
        r->mt[i] = (y & 1u) ? v ^ 0x9908b0dfu : v;
    }
    r->mti = 0;
}

uint32_t vd_mt19937_next32(vd_mt19937 *r) {
    if (r->mti >= MT_N) mt_generate(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t vd_mt19937_interval(vd_mt19937 *r, uint32_t max) {
    if (max == 0) return 0;
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    while ((v = vd_mt19937_next32(r) & mask) > max) {
    }
    return v;
}

/* Fisher-Yates from the end, as numpy's legacy shuffle of a 1-D array. */
void vd_np_permutation(uint32_t seed, int64_t n, int64_t *idx) {
    assert(n >= 0 && n <= (int64_t)UINT32_MAX);
    vd_mt19937 r;
    vd_mt19937_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = vd_mt19937_interval(&r, (uint32_t)i);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
