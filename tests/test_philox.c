/* Philox4x32-10: Random123's known-answer vectors, the documented counter layout, the moments of
 * the uniform and normal draws, and that the draws do not depend on how work is split. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/philox_math.h"
#include "vd_test.h"
#include "vdvae/rng.h"

static void test_kat(void) {
    static const uint32_t cases[3][10] = {
        /* ctr[4], key[2], expected[4] from Random123's kat_vectors (philox4x32 10 rounds) */
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        vd_philox4x32(cases[i], cases[i] + 4, out);
        for (int k = 0; k < 4; k++)
            CHECKF(out[k] == cases[i][6 + k], "case %d word %d: %08x != %08x", i, k, out[k],
                   cases[i][6 + k]);
    }
}

static void test_layout(void) {
    uint64_t seed = 0x0123456789abcdefull, stream = vd_rng_stream(77, 5), block = 0x1122334455ull;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 77, 5};
    uint32_t key[2] = {0x89abcdef, 0x01234567}, want[4], got[4];
    vd_philox4x32(ctr, key, want);
    vd_rng_block(seed, stream, block, got);
    CHECK(memcmp(want, got, sizeof want) == 0);
    for (int lane = 0; lane < 4; lane++) {
        CHECK(vd_rng_u32(seed, stream, block * 4 + lane) == want[lane]);
        CHECK(vd_rng_uniform(seed, stream, block * 4 + lane) == vd_rng_u32_to_uniform(want[lane]));
    }
    CHECK(vd_rng_u64(seed, stream, block * 2 + 1) == ((uint64_t)want[3] << 32 | want[2]));
    CHECK(vd_rng_u32_to_uniform(0) == 1.0f / 16777216.0f);
    CHECK(vd_rng_u32_to_uniform(0xffffffffu) == 1.0f - 1.0f / 16777216.0f);
    CHECK(vd_rng_u32_to_uniform(0xffffffffu) < 1.0f);
}

#define N_MOMENTS 1000000

static void test_uniform_moments(void) {
    static float u[N_MOMENTS];
    vd_rng_fill_uniform(42, vd_rng_stream(0, 9), 0, N_MOMENTS, u);
    double s = 0, s2 = 0;
    int outside = 0;
    for (int i = 0; i < N_MOMENTS; i++) {
        outside += !(u[i] > 0.0f && u[i] < 1.0f);
        s += u[i], s2 += (double)u[i] * u[i];
    }
    double mean = s / N_MOMENTS, var = s2 / N_MOMENTS - mean * mean;
    CHECK(outside == 0);
    CHECKF(fabs(mean - 0.5) < 0.002, "uniform mean %f", mean);
    CHECKF(fabs(var - 1.0 / 12) < 0.001, "uniform variance %f", var);
}

static void test_normal_moments(void) {
    static float z[N_MOMENTS];
    vd_rng_fill_normal(7, vd_rng_stream(3, 300), 0, N_MOMENTS, z);
    double s = 0, s2 = 0, s4 = 0;
    int bad = 0;
    for (int i = 0; i < N_MOMENTS; i++) {
        bad += !isfinite(z[i]);
        s += z[i], s2 += (double)z[i] * z[i], s4 += (double)z[i] * z[i] * z[i] * z[i];
    }
    double mean = s / N_MOMENTS, var = s2 / N_MOMENTS - mean * mean, kurt = s4 / N_MOMENTS;
    CHECK(bad == 0);
    CHECKF(fabs(mean) < 0.005, "normal mean %f", mean);
    CHECKF(fabs(var - 1) < 0.01, "normal variance %f", var);
    CHECKF(fabs(kurt - 3) < 0.05, "normal fourth moment %f", kurt);
    /* the even/odd lanes of a pair (cos, sin) are uncorrelated */
    double c = 0;
    for (int i = 0; i < N_MOMENTS; i += 2) c += (double)z[i] * z[i + 1];
    CHECKF(fabs(c / (N_MOMENTS / 2)) < 0.01, "pair correlation %f", c / (N_MOMENTS / 2));
}

static void test_fill_matches_single(void) {
    float u[37], z[37];
    vd_rng_fill_uniform(5, 6, 3, 37, u);
    vd_rng_fill_normal(5, 6, 3, 37, z);
    for (int k = 0; k < 37; k++) {
        CHECK(u[k] == vd_rng_uniform(5, 6, 3 + (uint64_t)k));
        CHECK(z[k] == vd_rng_normal(5, 6, 3 + (uint64_t)k));
    }
}

/* The Box-Muller normals against the same formula in double precision with libm, on 2M draws
 * and on the extreme words (smallest and largest uniforms, every quarter turn of the angle):
 * within 1e-6 of r (the radius; |z| <= r <= 5.77). Also a long fill: chunked generation
 * gives the same bits as one draw at a time at every offset. */
static double ref_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    uint32_t w[4];
    vd_rng_block(seed, stream, i >> 2, w);
    int pair = (int)(i & 3) / 2 * 2;
    double r = sqrt(-2.0 * log((double)vd_rng_u32_to_uniform(w[pair])));
    double th = 6.283185307179586477 * (double)vd_rng_u32_to_uniform(w[pair + 1]);
    return (i & 1) ? r * sin(th) : r * cos(th);
}

static void test_normal_accuracy(void) {
    enum { N = 1 << 21 };
    static float z[N];
    vd_rng_fill_normal(3, 4, 1, N, z);
    double worst = 0;
    for (uint64_t i = 0; i < N; i++) {
        double want = ref_normal(3, 4, i + 1), e = fabs(z[i] - want);
        uint32_t w[4];
        vd_rng_block(3, 4, (i + 1) >> 2, w);
        double r = sqrt(-2.0 * log((double)vd_rng_u32_to_uniform(w[(int)((i + 1) & 3) / 2 * 2])));
        if (e / r > worst) worst = e / r;
    }
    CHECKF(worst < 1e-6, "normals: worst |z - exact| / r = %g", worst);
    fprintf(stderr, "normals: worst |z - exact| / r over %d draws: %.3g\n", N, worst);
    /* a draw's value does not depend on where a fill starts or how long it is */
    static float a[1000];
    for (uint64_t off = 0; off < 9; off++) {
        vd_rng_fill_normal(8, 9, off, 1000, a);
        int bad = 0;
        for (int k = 0; k < 1000; k++) bad += a[k] != vd_rng_normal(8, 9, off + (uint64_t)k);
        CHECKF(bad == 0, "fill from %llu: %d draws differ from single draws", (unsigned long long)off, bad);
    }
}

static void test_streams_and_bounds(void) {
    /* different seeds, steps and sites give unrelated words */
    int same = 0;
    for (uint64_t i = 0; i < 4096; i++) {
        uint32_t a = vd_rng_u32(1, vd_rng_stream(0, 1), i);
        same += a == vd_rng_u32(2, vd_rng_stream(0, 1), i);
        same += a == vd_rng_u32(1, vd_rng_stream(1, 1), i);
        same += a == vd_rng_u32(1, vd_rng_stream(0, 2), i);
    }
    CHECK(same == 0);
    int hist[10] = {0};
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t v = vd_rng_below(9, 9, i, 10);
        CHECK(v < 10);
        if (v < 10) hist[v]++;
    }
    for (int b = 0; b < 10; b++) CHECKF(abs(hist[b] - 10000) < 500, "bucket %d: %d", b, hist[b]);
}

/* ---- thread independence ------------------------------------------------------------ */

#define N_THREADED 200003
typedef struct span { float *out; size_t first, n; } span;

static void *fill_span(void *arg) {
    span *s = arg;
    vd_rng_fill_normal(11, vd_rng_stream(12, 13), s->first, s->n, s->out + s->first);
    return NULL;
}

static void fill_threaded(float *out, int threads) {
    pthread_t th[8];
    span sp[8];
    for (int t = 0; t < threads; t++) {
        sp[t].out = out;
        sp[t].first = (size_t)N_THREADED * t / threads;
        sp[t].n = (size_t)N_THREADED * (t + 1) / threads - sp[t].first;
        pthread_create(&th[t], NULL, fill_span, &sp[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
}

static void test_thread_independence(void) {
    static float one[N_THREADED], many[N_THREADED];
    fill_threaded(one, 1);
    for (int threads = 2; threads <= 7; threads += 5) {
        fill_threaded(many, threads);
        CHECKF(memcmp(one, many, sizeof one) == 0, "%d threads differ from 1", threads);
    }
    fill_threaded(many, 3);
    CHECK(memcmp(one, many, sizeof one) == 0);
}

/* The inline draws the CUDA kernels compile (core/philox_math.h) are the library's bits. */
static void test_inline_matches(void) {
    int bad = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t seed = 420 + i % 7, stream = vd_rng_stream((uint32_t)(i % 13), 1u << 16);
        float a = vd_rng_normal_hd(seed, stream, i), b = vd_rng_normal(seed, stream, i);
        float c = vd_rng_uniform_hd(seed, stream, i), d = vd_rng_uniform(seed, stream, i);
        bad += memcmp(&a, &b, sizeof a) != 0 || memcmp(&c, &d, sizeof c) != 0;
    }
    CHECKF(bad == 0, "%d of 100000 inline draws differ from vd_rng_normal/uniform", bad);
}

int main(void) {
    test_kat();
    test_inline_matches();
    test_layout();
    test_uniform_moments();
    test_normal_moments();
    test_fill_matches_single();
    test_normal_accuracy();
    test_streams_and_bounds();
    test_thread_independence();
    return vd_test_result("test_philox");
}
