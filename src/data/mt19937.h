/* MT19937 as numpy's legacy RandomState uses it, to reproduce the reference's fixed split
 * shuffles (sklearn.utils.shuffle(x, random_state=101)) index for index. */
#ifndef VD_DATA_MT19937_H
#define VD_DATA_MT19937_H

#include <stdint.h>

typedef struct vd_mt19937 {
    uint32_t mt[624];
    int mti;
} vd_mt19937;

/* RandomState(seed) for an integer seed: init_genrand (Matsumoto-Nishimura 2002). */
void vd_mt19937_seed(vd_mt19937 *r, uint32_t seed);
uint32_t vd_mt19937_next32(vd_mt19937 *r);
/* numpy's random_interval(max) for max < 2^32: masked rejection on 32-bit draws. */
uint32_t vd_mt19937_interval(vd_mt19937 *r, uint32_t max);
/* idx = np.random.RandomState(seed).permutation(n), which equals what
 * sklearn.utils.shuffle(x, random_state=seed) uses to reorder x: x_new[k] = x[idx[k]]. */
void vd_np_permutation(uint32_t seed, int64_t n, int64_t *idx);

#endif
