/* SSIM of reconstructed images, computed as the reference's reconstruction mode reports it
 * (see vdvae/run.h); double precision, no allocation, images in parallel. */
#include <assert.h>
#include <math.h>
#include <stddef.h>

#include "vdvae/run.h"

#define SSIM_SIZE 11
#define SSIM_RADIUS (SSIM_SIZE / 2)
#define SSIM_SIGMA 1.5
#define SSIM_C1 ((0.01 * 255.0) * (0.01 * 255.0))
#define SSIM_C2 ((0.03 * 255.0) * (0.03 * 255.0))
/* Output columns per pass: the vertical sums of a tile and its halo stay on the stack. */
#define SSIM_TILE 128
#define SSIM_SPAN (SSIM_TILE + 2 * SSIM_RADIUS)
/* Images per parallel round; their values are summed in order afterwards, so the batch
 * sum does not depend on the thread count. */
#define SSIM_CHUNK 64

/* The four windowed quantities: x, y, x*y and x^2 + y^2. The reference filters the sum
 * x^2 + y^2 as one map, which keeps SSIM(x, x) exactly 1. */
enum { Q_X, Q_Y, Q_XY, Q_SQ, Q_N };

/* The 2-D window is softmax(-(i^2 + j^2) / (2 sigma^2)) over the 11x11 grid, which is
 * exactly the outer product of this normalised 1-D Gaussian with itself, so filtering is
 * separable, zero padding included. */
static void ssim_window(double g[SSIM_SIZE]) {
    double sum = 0.0;
    for (int i = 0; i < SSIM_SIZE; i++) {
        double d = i - SSIM_RADIUS;
        g[i] = exp(-0.5 * d * d / (SSIM_SIGMA * SSIM_SIGMA));
        sum += g[i];
    }
    for (int i = 0; i < SSIM_SIZE; i++) g[i] /= sum;
}

/* Vertical pass at output row y for input columns [j0, j1) of channel ch: rows outside
 * the image are the zero padding and simply skipped. */
static void ssim_vertical(double v[Q_N][SSIM_SPAN], const float *a, const float *b, int h,
                          int w, int c, int ch, int y, int j0, int j1, const double *g) {
    for (int j = j0; j < j1; j++) {
        double s[Q_N] = {0.0, 0.0, 0.0, 0.0};
        for (int k = -SSIM_RADIUS; k <= SSIM_RADIUS; k++) {
            int r = y + k;
            if (r < 0 || r >= h) continue;
            size_t at = ((size_t)r * w + j) * c + ch;
            double x = a[at], z = b[at], gk = g[k + SSIM_RADIUS];
            s[Q_X] += gk * x;
            s[Q_Y] += gk * z;
            s[Q_XY] += gk * (x * z);
            s[Q_SQ] += gk * (x * x + z * z);
        }
        for (int q = 0; q < Q_N; q++) v[q][j - j0] = s[q];
    }
}

/* SSIM at one pixel from its windowed means, in the reference's luminance times
 * contrast-structure form. */
static double ssim_pixel(const double m[Q_N]) {
    double num0 = 2.0 * m[Q_X] * m[Q_Y];
    double den0 = m[Q_X] * m[Q_X] + m[Q_Y] * m[Q_Y];
    double luminance = (num0 + SSIM_C1) / (den0 + SSIM_C1);
    double cs = (2.0 * m[Q_XY] - num0 + SSIM_C2) / (m[Q_SQ] - den0 + SSIM_C2);
    return luminance * cs;
}

/* Sum of the SSIM map of channel ch over output columns [x0, x1) of row y. */
static double ssim_row_tile(const float *a, const float *b, int h, int w, int c, int ch,
                            int y, int x0, int x1, const double *g) {
    double v[Q_N][SSIM_SPAN];
    int j0 = x0 - SSIM_RADIUS > 0 ? x0 - SSIM_RADIUS : 0;
    int j1 = x1 + SSIM_RADIUS < w ? x1 + SSIM_RADIUS : w;
    ssim_vertical(v, a, b, h, w, c, ch, y, j0, j1, g);
    double sum = 0.0;
    for (int x = x0; x < x1; x++) {
        double m[Q_N] = {0.0, 0.0, 0.0, 0.0};
        for (int k = -SSIM_RADIUS; k <= SSIM_RADIUS; k++) {
            int j = x + k;
            if (j < 0 || j >= w) continue;
            for (int q = 0; q < Q_N; q++) m[q] += g[k + SSIM_RADIUS] * v[q][j - j0];
        }
        sum += ssim_pixel(m);
    }
    return sum;
}

double vd_ssim_image(const float *a, const float *b, int h, int w, int c) {
    assert(a && b && h >= 1 && w >= 1 && c >= 1);
    double g[SSIM_SIZE];
    ssim_window(g);
    double total = 0.0;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (int y = 0; y < h; y++)
            for (int x0 = 0; x0 < w; x0 += SSIM_TILE) {
                int x1 = x0 + SSIM_TILE < w ? x0 + SSIM_TILE : w;
                sum += ssim_row_tile(a, b, h, w, c, ch, y, x0, x1, g);
            }
        total += sum / ((double)h * w);
    }
    return total / c;
}

double vd_ssim_batch(const float *a, const float *b, int n, int h, int w, int c) {
    assert(n >= 0 && h >= 1 && w >= 1 && c >= 1);
    size_t stride = (size_t)h * w * c;
    double total = 0.0;
    for (int i0 = 0; i0 < n; i0 += SSIM_CHUNK) {
        int m = n - i0 < SSIM_CHUNK ? n - i0 : SSIM_CHUNK;
        double val[SSIM_CHUNK];
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)m * stride >= 16384)
#endif
        for (int i = 0; i < m; i++) {
            size_t off = (size_t)(i0 + i) * stride;
            val[i] = vd_ssim_image(a + off, b + off, h, w, c);
        }
        for (int i = 0; i < m; i++) total += val[i];
    }
    return total;
}
