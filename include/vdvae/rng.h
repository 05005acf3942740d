/* Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11 / Random123): every draw is
 * a pure function of (seed, stream, index), so results do not depend on threads, devices or order.
 *
 * Layout. key = (seed low 32 bits, seed high 32 bits). counter = (block low, block high,
 * stream low, stream high), where block = index / 4 and the draw is lane index % 4 of the
 * block's four output words. The model and loader build a stream from (step, site) with
 * vd_rng_stream: stream low = step (or epoch), stream high = site, a constant naming the place
 * in the code that draws, so two sites never share numbers.
 *
 * Uniforms are in the open interval (0, 1): u = (2 * (w >> 9) + 1) / 2^24 for a 32-bit word w,
 * 2^23 equally spaced values from 2^-24 to 1 - 2^-24, each exact in float (never 0, never 1).
 *
 * Normals (Box-Muller): normal index i uses block i / 4; lanes 0, 1 come from the words
 * (w0, w1) and lanes 2, 3 from (w2, w3): with u1, u2 the uniforms of the pair,
 * r = sqrt(-2 ln u1), theta = 2 pi u2, the even lane is r cos(theta), the odd lane r sin(theta).
 * Computed in float with our own polynomials for ln, cos and sin (src/core/philox.c: only
 * IEEE-rounded +, -, *, / and sqrt, no fused multiply-adds), so the bits are the same on every
 * CPU and vector width, and a GPU port can reproduce them exactly; within a few ulp of the exact
 * Box-Muller values. */
#ifndef VDVAE_RNG_H
#define VDVAE_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw generator: Random123's philox4x32 with 10 rounds. */
void vd_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Sites: the high half of a stream. Add new ones at the end; never renumber. */
enum {
    VD_SITE_LOADER_SHUFFLE = 1, /* per-epoch permutation of the training set */
    VD_SITE_LOADER_FLIP = 2,    /* random horizontal flip, one draw per image */
    VD_SITE_LOADER_BINARIZE = 3, /* Bernoulli re-binarisation, one draw per pixel */
    VD_SITE_DATA_BINARIZE = 4,  /* one-off binarisation of binarized-MNIST val/test */
    VD_SITE_MODEL_FIRST = 256,  /* sites >= this belong to the model (latent noise, ...) */
    VD_SITE_PARAM_INIT = 256,   /* initial weights; the "step" is the parameter's index */
    VD_SITE_POSTERIOR = 1 << 16, /* + latent group: posterior samples of training steps */
    VD_SITE_PRIOR = 2 << 16,    /* + latent group: prior samples of generation */
    VD_SITE_OUTPUT = 3 << 16,   /* output-layer sampling (MoL, Bernoulli) */
    VD_SITE_EVAL = 4 << 16,     /* + latent group: posterior samples of evaluation batches */
    VD_SITE_EVAL_OUTPUT = 5 << 16, /* output sampling of evaluation batches */
    VD_SITE_SYNTH_PRIOR = 6 << 16,  /* + latent group: prior samples of vdvae synth generation */
    VD_SITE_SYNTH_OUTPUT = 7 << 16, /* output sampling of vdvae synth */
    VD_SITE_SYNTH_POSTERIOR = 8 << 16, /* + latent group: posterior samples of vdvae synth */
    VD_SITE_SYNTH_MASKED = 9 << 16, /* + latent group: prior samples replacing masked variates */
    VD_SITE_FID_PRIOR = 10 << 16,   /* + latent group: prior samples of vdvae fid */
    VD_SITE_FID_OUTPUT = 11 << 16,  /* output sampling of vdvae fid */
};

static inline uint64_t vd_rng_stream(uint32_t step, uint32_t site) {
    return ((uint64_t)site << 32) | step;
}

/* The four words of block `block` of (seed, stream). */
void vd_rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]);
/* The 32-bit word, uniform float in (0, 1) and standard normal number `index`. */
uint32_t vd_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
float vd_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
float vd_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);
/* A 64-bit word (words 2k and 2k+1 of the stream as low, high) and a uniform integer in
 * [0, bound) from it (multiply-high: bias below bound / 2^64), index k. */
uint64_t vd_rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
uint64_t vd_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t bound);

/* out[k] = draw number first + k for k < n: the same values as the single-draw functions,
 * a block at a time. */
void vd_rng_fill_uniform(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out);
void vd_rng_fill_normal(uint64_t seed, uint64_t stream, uint64_t first, size_t n, float *out);

/* The uniform of one word (the mapping above). */
static inline float vd_rng_u32_to_uniform(uint32_t w) {
    return (float)(2u * (w >> 9) + 1u) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif
#endif
