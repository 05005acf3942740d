/* SSIM (vd_ssim_image, vd_ssim_batch): exact properties and a hand-computed case in C.
 * Arguments (each its own ctest entry): agreement with tests/reference/ssim_ref.py, numpy from
 * the definition (numpy), and that plus torch's conv2d in float64 and float32 (torch). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/synth.h"

#define MAX_CASES 32
#define MAX_IMAGES 8
#define TOL_REF 1e-5  /* double vs double: measured ~3e-14 */
#define TOL_F32 1e-4  /* vs torch float32, the reference's own precision: measured ~1e-5 */

typedef struct ssim_case {
    const char *name;
    int n, h, w, c;
    float *a, *b;
} ssim_case;

static ssim_case cases[MAX_CASES];
static int n_cases;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform(void) { /* xorshift64*: reproducible test data, no library RNG */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static float clamp255(double v) { return (float)(v < 0 ? 0 : v > 255 ? 255 : v); }

typedef float (*pixel_fn)(int i, int y, int x, int ch, int which);

static ssim_case *add_case(const char *name, int n, int h, int w, int c, pixel_fn f) {
    if (n_cases >= MAX_CASES) abort();
    ssim_case *k = &cases[n_cases++];
    size_t count = (size_t)n * h * w * c;
    *k = (ssim_case){name, n, h, w, c, malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    if (!k->a || !k->b) abort();
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) {
                    size_t at = (((size_t)i * h + y) * w + x) * c + ch;
                    k->a[at] = f(i, y, x, ch, 0);
                    k->b[at] = f(i, y, x, ch, 1);
                }
    return k;
}

/* Image pairs: independent noise, a noisy copy, the model's 8-bit grid, structure, constants. */
static float px_random(int i, int y, int x, int ch, int which) {
    (void)i, (void)y, (void)x, (void)ch, (void)which;
    return (float)(255.0 * uniform());
}
static float px_noisy(int i, int y, int x, int ch, int which) {
    (void)which;
    double base = 128 + 100 * sin(0.3 * x + 0.2 * y + ch + i);
    return clamp255(base + (which ? 40 * (uniform() - 0.5) : 0));
}
static float px_model_grid(int i, int y, int x, int ch, int which) {
    (void)i, (void)y, (void)x, (void)ch, (void)which; /* v in [-1, 1] mapped as the reference */
    double v = floor(uniform() * 256.0) / 127.5 - 1.0;
    return (float)(v * 127.5 + 127.5);
}
static float px_gradient(int i, int y, int x, int ch, int which) {
    return clamp255(4.0 * (x + y) + 30 * ch + 50 * i + (which ? 17 : 0));
}
static float px_checker(int i, int y, int x, int ch, int which) {
    (void)ch;
    int cell = ((x >> (i + 1)) + (y >> (i + 1)) + which) & 1;
    return cell ? 255.0f : (which ? 40.0f : 0.0f);
}
static float px_inverse(int i, int y, int x, int ch, int which) {
    (void)i, (void)y, (void)x, (void)ch;
    static float last;
    if (!which) last = (float)(255.0 * uniform());
    return which ? 255.0f - last : last;
}
static float px_constant(int i, int y, int x, int ch, int which) {
    (void)y, (void)x;
    static const float pairs[4][2] = {{100, 200}, {0, 255}, {0, 0}, {37, 37}};
    return pairs[(i + ch) % 4][which];
}
static float px_stripes(int i, int y, int x, int ch, int which) {
    (void)i, (void)y, (void)ch;
    return (float)((x / 7 + which) % 3 * 100);
}

static void build_cases(void) {
    add_case("random 32x32x3", 3, 32, 32, 3, px_random);
    add_case("random 7x7x1", 2, 7, 7, 1, px_random);
    add_case("noisy copy 32x32x3", 2, 32, 32, 3, px_noisy);
    add_case("noisy copy 7x7x3", 2, 7, 7, 3, px_noisy);
    add_case("8-bit grid 16x16x3", 2, 16, 16, 3, px_model_grid);
    add_case("gradient 32x32x1", 2, 32, 32, 1, px_gradient);
    add_case("gradient 5x9x3", 1, 5, 9, 3, px_gradient);
    add_case("checkerboard 32x32x3", 3, 32, 32, 3, px_checker);
    add_case("inverse 32x32x1", 1, 32, 32, 1, px_inverse);
    add_case("constant 32x32x3", 4, 32, 32, 3, px_constant);
    add_case("constant 7x7x1", 4, 7, 7, 1, px_constant);
    add_case("constant 1x1x3", 4, 1, 1, 3, px_constant);
    add_case("stripes 3x300x1 (column tiles)", 1, 3, 300, 1, px_stripes);
    add_case("noisy copy 12x140x3 (column tiles)", 1, 12, 140, 3, px_noisy);
}

/* Properties that need no oracle. */
static void check_properties(void) {
    for (int k = 0; k < n_cases; k++) {
        ssim_case *s = &cases[k];
        size_t img = (size_t)s->h * s->w * s->c;
        for (int i = 0; i < s->n; i++) {
            const float *a = s->a + i * img, *b = s->b + i * img;
            double ab = vd_ssim_image(a, b, s->h, s->w, s->c);
            double ba = vd_ssim_image(b, a, s->h, s->w, s->c);
            CHECKF(fabs(vd_ssim_image(a, a, s->h, s->w, s->c) - 1.0) < 1e-12, "%s: SSIM(x,x)", s->name);
            CHECKF(fabs(ab - ba) < 1e-14, "%s #%d: %.17g vs %.17g not symmetric", s->name, i, ab, ba);
            CHECKF(ab >= -1.0 && ab <= 1.0 + 1e-12, "%s #%d: %g outside [-1, 1]", s->name, i, ab);
        }
    }
    float x = 10, y = 245; /* anti-correlated structure scores below zero */
    float a[64], b[64];
    for (int i = 0; i < 64; i++) a[i] = (i ^ (i >> 3)) & 1 ? x : y, b[i] = 255 - a[i];
    CHECK(vd_ssim_image(a, b, 8, 8, 1) < 0.0);
}

/* A 1x1 image sees only the window's centre tap, weight S = g0^2 with
 * g0 = 1 / (1 + 2 sum_{k=1..5} exp(-k^2 / 4.5)) = 0.26601172486179434, S = 0.07076223776394697.
 * Then mu = S p, var = S (1 - S) p^2, cov = S (1 - S) p q, and for p = 100, q = 200 with
 * C1 = 6.5025, C2 = 58.5225:
 *   luminance = (2 S^2 p q + C1) / (S^2 (p^2 + q^2) + C1)         = 0.80506292716912334
 *   cs        = (2 S (1-S) p q + C2) / (S (1-S) (p^2 + q^2) + C2) = 0.80349777547595420
 * SSIM = 0.64686627109855074 (evaluated with 30-digit arithmetic, mpmath). */
static void check_hand_case(void) {
    float a[3] = {100, 100, 100}, b[3] = {200, 200, 200};
    double got = vd_ssim_image(a, b, 1, 1, 3);
    CHECKF(fabs(got - 0.64686627109855074) < 1e-14, "1x1 constant: %.17g", got);
    float z[3] = {0, 0, 0}; /* both zero: only the stabilisers remain, C1/C1 * C2/C2 */
    CHECKF(vd_ssim_image(z, z, 1, 1, 3) == 1.0, "zero images");
}

/* vd_ssim_batch is the in-order sum of vd_ssim_image, across the 64-image chunk boundary. */
static void check_batch(void) {
    enum { N = 130, H = 6, W = 5, C = 2 };
    static float a[N * H * W * C], b[N * H * W * C];
    for (int i = 0; i < N * H * W * C; i++) {
        a[i] = (float)(255 * uniform());
        b[i] = clamp255(a[i] + 60 * (uniform() - 0.5));
    }
    double sum = 0;
    for (int i = 0; i < N; i++) sum += vd_ssim_image(a + i * H * W * C, b + i * H * W * C, H, W, C);
    double got = vd_ssim_batch(a, b, N, H, W, C);
    CHECKF(got == sum, "batch %.17g vs in-order sum %.17g", got, sum);
    CHECK(vd_ssim_batch(a, b, 0, H, W, C) == 0.0);
}

static int write_cases(char *path) {
    const char *dir = getenv("VD_BUILD_DIR") ? getenv("VD_BUILD_DIR") : "/tmp";
    snprintf(path, 4096, "%s/test_ssim_XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "wb");
    for (int k = 0; k < n_cases; k++) {
        ssim_case *s = &cases[k];
        int32_t dims[4] = {s->n, s->h, s->w, s->c}; /* little-endian hosts only */
        size_t count = (size_t)s->n * s->h * s->w * s->c;
        fwrite(dims, sizeof dims, 1, f);
        fwrite(s->a, sizeof(float), count, f);
        fwrite(s->b, sizeof(float), count, f);
    }
    return fclose(f);
}

/* Compare every line "METHOD CASE IMAGE VALUE" with our value; returns lines seen. */
static int compare_output(FILE *p, double max_diff[3]) {
    static const char *methods[3] = {"numpy", "torch64", "torch32"};
    char method[16];
    int k, i, lines = 0;
    double want;
    while (fscanf(p, "%15s %d %d %lf", method, &k, &i, &want) == 4) {
        int m = 0;
        while (m < 3 && strcmp(method, methods[m])) m++;
        if (m == 3 || k < 0 || k >= n_cases || i < 0 || i >= cases[k].n) {
            CHECKF(0, "bad line from ssim_ref.py: %s %d %d", method, k, i);
            continue;
        }
        ssim_case *s = &cases[k];
        size_t off = (size_t)i * s->h * s->w * s->c;
        double got = vd_ssim_image(s->a + off, s->b + off, s->h, s->w, s->c), d = fabs(got - want);
        if (d > max_diff[m]) max_diff[m] = d;
        CHECKF(d <= (m == 2 ? TOL_F32 : TOL_REF), "%s, image %d: C %.12f, %s %.12f", s->name, i,
               got, method, want);
        lines++;
    }
    return lines;
}

static void check_against_python(int torch) {
    const char *src = getenv("VD_SOURCE_DIR") ? getenv("VD_SOURCE_DIR") : ".";
    const char *py = vd_test_python();
    char path[4096], cmd[8800];
    CHECK(write_cases(path) == 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/ssim_ref.py' '%s'%s", py, src, path,
             torch ? " --torch" : "");
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    double max_diff[3] = {0, 0, 0};
    int lines = p ? compare_output(p, max_diff) : 0;
    CHECKF(p && pclose(p) == 0, "%s failed", cmd);
    unlink(path);
    int images = 0;
    for (int k = 0; k < n_cases; k++) images += cases[k].n;
    CHECKF(lines == images * (torch ? 3 : 1), "%d result lines for %d images", lines, images);
    fprintf(stderr, "%s: %d images, max |C - numpy| %.3g", py, images, max_diff[0]);
    if (torch)
        fprintf(stderr, ", |C - torch f64| %.3g, |C - torch f32| %.3g\n", max_diff[1], max_diff[2]);
    else
        fputc('\n', stderr);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    int rc = 0;
    if (!mode) rc = 0;
    else if (!strcmp(mode, "numpy")) rc = vd_test_need_python_module("numpy");
    else if (!strcmp(mode, "torch")) rc = vd_test_need_python_modules("numpy torch");
    else return vd_test_bad_mode("test_ssim", mode);
    if (rc) return rc;
    build_cases();
    if (mode) {
        check_against_python(!strcmp(mode, "torch"));
    } else {
        check_properties();
        check_hand_case();
        check_batch();
    }
    rc = vd_test_result("test_ssim");
    for (int k = 0; k < n_cases; k++) free(cases[k].a), free(cases[k].b);
    return rc;
}
