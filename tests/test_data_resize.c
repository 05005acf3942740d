/* vd_resize_bilinear: within 1 of a plain double-precision version of the filter; with the
 * argument pillow (its own ctest entry), bit-exact against Pillow itself
 * (tests/reference/make_pil_resize_cases.py). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/data.h"

/* Output index i of an axis in -> out: weights of inputs [lo, hi) from the triangle filter
 * stretched by the shrink factor, centred at (i + 0.5) * in / out. */
static void axis_weights(int in, int out, int i, int *lo, int *hi, double *w) {
    double scale = (double)in / out, fs = scale < 1 ? 1 : scale, centre = (i + 0.5) * scale;
    *lo = (int)floor(centre - fs + 0.5), *hi = (int)floor(centre + fs + 0.5);
    if (*lo < 0) *lo = 0;
    if (*hi > in) *hi = in;
    double sum = 0;
    for (int x = *lo; x < *hi; x++) {
        double d = fabs((x + 0.5 - centre) / fs);
        sum += w[x - *lo] = d < 1 ? 1 - d : 0;
    }
    for (int x = *lo; x < *hi; x++) w[x - *lo] /= sum;
}

/* Double precision throughout, rounding each pass to 8 bits as the fixed-point code does. */
static void resize_double(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh, int dw) {
    double *w = malloc(sizeof *w * (size_t)(sh + sw + 2));
    uint8_t *tmp = malloc((size_t)sh * dw * c);
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++) {
            int lo, hi;
            axis_weights(sw, dw, x, &lo, &hi, w);
            for (int ch = 0; ch < c; ch++) {
                double s = 0;
                for (int k = lo; k < hi; k++) s += w[k - lo] * src[((size_t)y * sw + k) * c + ch];
                tmp[((size_t)y * dw + x) * c + ch] = (uint8_t)fmin(255, fmax(0, floor(s + 0.5)));
            }
        }
    if (sw == dw) memcpy(tmp, src, (size_t)sh * sw * c);
    for (int y = 0; y < dh; y++) {
        int lo, hi;
        axis_weights(sh, dh, y, &lo, &hi, w);
        for (int x = 0; x < dw * c; x++) {
            double s = 0;
            for (int k = lo; k < hi; k++) s += w[k - lo] * tmp[(size_t)k * dw * c + x];
            dst[(size_t)y * dw * c + x] = (uint8_t)fmin(255, fmax(0, floor(s + 0.5)));
        }
    }
    if (sh == dh) memcpy(dst, tmp, (size_t)dh * dw * c);
    free(w);
    free(tmp);
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void test_against_double(void) {
    static const int sizes[][5] = {
        {32, 32, 3, 16, 16}, {32, 32, 3, 64, 64}, {37, 23, 3, 11, 17}, {20, 30, 3, 20, 13},
        {15, 9, 3, 40, 9},   {218, 178, 3, 64, 64}, {100, 100, 1, 33, 33}, {7, 5, 1, 19, 23},
        {1, 9, 3, 3, 2},     {9, 1, 1, 2, 5},     {64, 64, 3, 1, 1},     {5, 64, 3, 64, 5},
    };
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int sh = sizes[t][0], sw = sizes[t][1], c = sizes[t][2], dh = sizes[t][3], dw = sizes[t][4];
        size_t ns = (size_t)sh * sw * c, nd = (size_t)dh * dw * c;
        uint8_t *src = malloc(ns), *a = malloc(nd), *b = malloc(nd);
        for (size_t i = 0; i < ns; i++) src[i] = (uint8_t)(t == 0 ? 255 * (i % 2) : rnd());
        CHECK(vd_resize_bilinear(src, sh, sw, c, a, dh, dw) == VD_OK);
        resize_double(src, sh, sw, c, b, dh, dw);
        int worst = 0;
        for (size_t i = 0; i < nd; i++) worst = abs(a[i] - b[i]) > worst ? abs(a[i] - b[i]) : worst;
        CHECKF(worst <= 1, "%dx%d -> %dx%d (c=%d): off by %d from the double version", sh, sw, dh,
               dw, c, worst);
        free(src), free(a), free(b);
    }
}

/* A flat image stays flat at every size; the same size is an exact copy. */
static void test_invariants(void) {
    uint8_t src[12 * 7 * 3], dst[30 * 5 * 3];
    for (int v = 0; v < 256; v += 51) {
        memset(src, v, sizeof src);
        CHECK(vd_resize_bilinear(src, 12, 7, 3, dst, 30, 5) == VD_OK);
        int flat = 1;
        for (size_t i = 0; i < sizeof dst; i++) flat &= dst[i] == v;
        CHECKF(flat, "flat %d did not stay flat", v);
    }
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)rnd();
    uint8_t same[sizeof src];
    CHECK(vd_resize_bilinear(src, 12, 7, 3, same, 12, 7) == VD_OK);
    CHECK(memcmp(src, same, sizeof src) == 0);
    /* sizes that make no image are refused, not divided by */
    CHECK(vd_resize_bilinear(src, 12, 7, 3, dst, 0, 5) == VD_ERR_INVALID);
    CHECK(vd_resize_bilinear(src, 0, 7, 3, dst, 30, 5) == VD_ERR_INVALID);
    CHECK(vd_resize_bilinear(src, 12, 7, 3, dst, 30, -1) == VD_ERR_INVALID);
}

static uint32_t le32(const uint8_t *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int compare_cases(const uint8_t *b, size_t len) {
    if (len < 4) return 0;
    uint32_t n = le32(b);
    size_t o = 4;
    int done = 0;
    for (uint32_t t = 0; t < n && o + 20 <= len; t++, done++) {
        int sh = (int)le32(b + o), sw = (int)le32(b + o + 4), c = (int)le32(b + o + 8);
        int dh = (int)le32(b + o + 12), dw = (int)le32(b + o + 16);
        size_t ns = (size_t)sh * sw * c, nd = (size_t)dh * dw * c;
        o += 20;
        if (o + ns + nd > len) break;
        uint8_t *out = malloc(nd);
        CHECK(vd_resize_bilinear(b + o, sh, sw, c, out, dh, dw) == VD_OK);
        size_t diff = 0, first = nd;
        for (size_t i = 0; i < nd; i++)
            if (out[i] != b[o + ns + i]) diff++, first = first < nd ? first : i;
        CHECKF(diff == 0, "Pillow case %u: %dx%d -> %dx%d (c=%d): %zu of %zu bytes differ "
               "(first at %zu: ours %d, Pillow %d)", t, sh, sw, dh, dw, c, diff, nd, first,
               diff ? out[first] : 0, diff ? b[o + ns + first] : 0);
        free(out);
        o += ns + nd;
    }
    return done;
}

static void test_against_pillow(void) {
    const char *srcdir = getenv("VD_SOURCE_DIR"), *py = vd_test_python();
    if (!srcdir) srcdir = ".";
    char out[] = "/tmp/vd_resize_casesXXXXXX", cmd[4096];
    int fd = mkstemp(out);
    if (fd < 0) {
        CHECK(!"mkstemp");
        return;
    }
    close(fd);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/make_pil_resize_cases.py' '%s'", py,
             srcdir, out);
    int rc = system(cmd);
    CHECKF(rc == 0, "`%s` failed (exit %d)", cmd, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    if (rc != 0) {
        unlink(out);
        return;
    }
    FILE *f = fopen(out, "rb");
    static uint8_t buf[1 << 21];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    unlink(out);
    int n = compare_cases(buf, len);
    CHECKF(n >= 10, "only %d Pillow cases read", n);
    fprintf(stderr, "compared %d cases with Pillow\n", n);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "pillow")) return vd_test_bad_mode("test_data_resize", mode);
    if (mode) {
        int rc = vd_test_need_python_module("PIL");
        if (rc) return rc;
        test_against_pillow();
        return vd_test_result("test_data_resize pillow");
    }
    test_invariants();
    test_against_double();
    return vd_test_result("test_data_resize");
}
