/* Synthesis (reconstruction, generation, div_stats, encoding) and its image metrics.
 * Sections are owned by different parts of src/synth/; add new ones below, not inside. */
#ifndef VDVAE_SYNTH_H
#define VDVAE_SYNTH_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SSIM (src/synth/ssim.c) ------------------------------------------------------------
 * Structural similarity as the reference's reconstruction mode reports it: an 11x11
 * Gaussian window (sigma 1.5, normalised to sum 1) applied per channel with zero padding
 * of 5, so the map has the image's size and border pixels see a window of weight < 1;
 * k1 = 0.01, k2 = 0.03, max value 255. The map is averaged over pixels, then channels.
 *
 * Images are NHWC float, already on the 0..255 scale: map the model's [-1, 1] values with
 * v * 127.5 + 127.5 first. Computed in double; any h, w >= 1 (also smaller than the
 * window); c >= 1. Allocation-free and thread-safe. The reference reports 0 for
 * binarized_mnist; that choice is the caller's. */

/* SSIM of one h x w x c image pair, in [-1, 1] (1 when a == b). */
double vd_ssim_image(const float *a, const float *b, int h, int w, int c);

/* The SUM over n image pairs of vd_ssim_image: the reference sums per-image SSIM and divides
 * by the global batch size, so callers divide by theirs. Parallel over images (OpenMP),
 * with a result independent of the thread count. */
double vd_ssim_batch(const float *a, const float *b, int n, int h, int w, int c);

/* ---- end of SSIM ------------------------------------------------------------------------ */

#ifdef __cplusplus
}
#endif
#endif
