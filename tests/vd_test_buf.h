/* Test buffers for backend ops: a logical NHWC tensor inside pixels of ld floats, with the
 * padding channels and a tail of guard floats set to SENTINEL so that a write outside the
 * tensor shows; a xorshift generator for their contents. Shared by the conformance tests. */
#ifndef VD_TEST_BUF_H
#define VD_TEST_BUF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"

/* Where buffers come from: a test that hands them to a GPU defines these first (managed memory). */
#ifndef VD_BUF_ALLOC
#define VD_BUF_ALLOC malloc
#define VD_BUF_FREE free
#endif

#define SENTINEL -777.0f
#define TAIL 16 /* guard floats past the last pixel */

static uint64_t vd_buf_rng = 0x9E3779B97F4A7C15ull; /* a test may reseed it */

static inline uint64_t vd_buf_next_u64(void) {
    vd_buf_rng ^= vd_buf_rng << 13;
    vd_buf_rng ^= vd_buf_rng >> 7;
    vd_buf_rng ^= vd_buf_rng << 17;
    return vd_buf_rng;
}

static inline double urange(double lo, double hi) {
    return lo + (hi - lo) * ((double)(vd_buf_next_u64() >> 11) * 0x1.0p-53);
}

typedef struct buf {
    float *mem;
    size_t len;
    vd_tensor t;
} buf;

static inline buf buf_new(int n, int h, int w, int c, int pad) {
    buf b = {.len = (size_t)n * h * w * (c + pad) + TAIL};
    b.mem = (float *)VD_BUF_ALLOC(b.len * sizeof(float));
    for (size_t i = 0; i < b.len; i++)
        b.mem[i] = SENTINEL;
    b.t = (vd_tensor){b.mem, n, h, w, c, c + pad};
    return b;
}
static inline int64_t numel(const buf *b) {
    return vd_tensor_numel(&b->t);
}
static inline float *el(const buf *b, int64_t i) {
    return b->t.data + (i / b->t.c) * b->t.ld + i % b->t.c;
}
static inline void buf_rand(buf *b, double lo, double hi) {
    for (int64_t i = 0; i < numel(b); i++)
        *el(b, i) = (float)urange(lo, hi);
}
static inline buf buf_rand_new(int n, int h, int w, int c, int pad, double lo, double hi) {
    buf b = buf_new(n, h, w, c, pad);
    buf_rand(&b, lo, hi);
    return b;
}
static inline buf buf_clone(const buf *b) {
    buf c = *b;
    c.mem = (float *)VD_BUF_ALLOC(b->len * sizeof(float));
    memcpy(c.mem, b->mem, b->len * sizeof(float));
    c.t.data = c.mem;
    return c;
}
static inline void buf_free(buf *b) {
    VD_BUF_FREE(b->mem);
    b->mem = NULL;
}
static inline bool guards_intact(const buf *b) {
    size_t body = b->len - TAIL;
    for (size_t i = 0; i < b->len; i++) {
        bool logical = i < body && (int64_t)(i % b->t.ld) < b->t.c;
        if (!logical && b->mem[i] != SENTINEL) return false;
    }
    return true;
}
/* max |got - want| / max |want| over the logical elements (a NaN where the other has none
 * counts as infinitely far) */
static inline double max_rel(const buf *got, const buf *want) {
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < numel(want); i++) {
        double a = *el(got, i), b = *el(want, i);
        diff = fmax(diff, isnan(a) != isnan(b) ? INFINITY : isnan(a) ? 0 : fabs(a - b));
        scale = fmax(scale, fabs(b));
    }
    return diff / scale;
}

/* A convolution case of the conformance tests: shape, pads (top, left, bottom, right). */
typedef struct conv_case {
    const char *name;
    int n, h, w, c_in, c_out, kh, kw, stride, pt, pl, pb, pr;
    int pad_x, pad_y; /* extra channels of ld: channel views of x/dx and y/dy */
    bool bias, acc;
} conv_case;

#endif
