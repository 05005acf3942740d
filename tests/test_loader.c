/* The batch loader: the same batches at any thread count and prefetch depth, seek equal to an
 * uninterrupted run, disjoint covering shards, and exact values for bit reduction, flips and
 * binarisation (recomputed here from the documented Philox draws). */
#include <math.h>
#include <string.h>

#include "vd_test.h"
#include "vdvae/data.h"
#include "vdvae/rng.h"

#define N_IMG 103
#define H 6
#define W 5
#define C 3
#define P (H * W * C)

static vd_images im;

static vd_loader_opts base_opts(void) {
    return (vd_loader_opts){.batch_size = 8, .seed = 1234, .rank = 0, .world_size = 1,
                            .shuffle = true, .drop_last = true, .flip = true, .num_bits = 8,
                            .threads = 1, .prefetch = 2};
}

static vd_loader *make(const vd_loader_opts *o) {
    vd_loader *ld = NULL;
    vd_err err = {0};
    CHECKF(vd_loader_create(&ld, &im, o, &err) == VD_OK, "%s", err.msg);
    return ld;
}

/* n batches' floats and indices in a row. */
static void take(vd_loader *ld, int n, int bs, float *x, int64_t *idx) {
    vd_err err = {0};
    for (int b = 0; b < n; b++)
        CHECK(vd_loader_next(ld, x + (size_t)b * bs * P, idx + (size_t)b * bs, &err) == VD_OK);
}

static void test_thread_independence(void) {
    vd_loader_opts o = base_opts();
    o.num_bits = 5;
    int nb = 12 * 3 + 2; /* three epochs and a bit */
    size_t nf = (size_t)nb * o.batch_size * P;
    float *ref = malloc(nf * sizeof *ref), *got = malloc(nf * sizeof *got);
    int64_t ri[38 * 8], gi[38 * 8];
    vd_loader *ld = make(&o);
    CHECK(vd_loader_batches_per_epoch(ld) == N_IMG / 8);
    take(ld, nb, o.batch_size, ref, ri);
    vd_loader_free(ld);
    const int cfg[][2] = {{2, 1}, {3, 5}, {3, 2}, {1, 7}};
    for (int c = 0; c < 4; c++) {
        o.threads = cfg[c][0], o.prefetch = cfg[c][1];
        ld = make(&o);
        take(ld, nb, o.batch_size, got, gi);
        vd_loader_free(ld);
        CHECKF(memcmp(ref, got, nf * sizeof *ref) == 0 && memcmp(ri, gi, sizeof ri) == 0,
               "threads %d prefetch %d differ", o.threads, o.prefetch);
    }
    /* epochs are permutations, and not the same one */
    int seen[3][N_IMG] = {{0}}, same = 0;
    for (int e = 0; e < 3; e++)
        for (int k = 0; k < 96; k++) seen[e][ri[e * 96 + k]]++;
    for (int e = 0; e < 3; e++)
        for (int i = 0; i < N_IMG; i++) CHECK(seen[e][i] <= 1);
    for (int k = 0; k < 96; k++) same += ri[k] == ri[96 + k];
    CHECK(same < 20);
    free(ref), free(got);
}

static void test_seek(void) {
    vd_loader_opts o = base_opts();
    o.threads = 3, o.prefetch = 4;
    int nb = 40;
    size_t nf = (size_t)nb * o.batch_size * P;
    float *ref = malloc(nf * sizeof *ref), *got = malloc(nf * sizeof *got);
    int64_t ri[40 * 8], gi[40 * 8];
    vd_loader *ld = make(&o);
    take(ld, nb, o.batch_size, ref, ri);
    vd_loader_pos pos = vd_loader_position(ld);
    CHECK(pos.epoch == 40 / 12 && pos.batch == 40 % 12);
    vd_loader_free(ld);
    /* a "resumed" run: a fresh loader that read ahead elsewhere, then seeks */
    const int starts[] = {0, 5, 12, 25, 39};
    vd_err err = {0};
    for (int s = 0; s < 5; s++) {
        ld = make(&o);
        take(ld, 3, o.batch_size, got, gi);
        int j = starts[s];
        vd_loader_pos at = {.epoch = (uint64_t)j / 12, .batch = (uint64_t)j % 12};
        CHECK(vd_loader_seek(ld, at, &err) == VD_OK);
        pos = vd_loader_position(ld);
        CHECK(pos.epoch == at.epoch && pos.batch == at.batch);
        take(ld, nb - j, o.batch_size, got, gi);
        vd_loader_free(ld);
        CHECKF(memcmp(ref + (size_t)j * o.batch_size * P, got, (size_t)(nb - j) * o.batch_size * P *
                      sizeof *got) == 0, "resumed at batch %d differs", j);
        CHECK(memcmp(ri + j * o.batch_size, gi, (size_t)(nb - j) * o.batch_size * sizeof *gi) == 0);
    }
    ld = make(&o);
    CHECK(vd_loader_seek(ld, (vd_loader_pos){.epoch = 1, .batch = 12}, &err) == VD_ERR_INVALID);
    vd_loader_free(ld);
    free(ref), free(got);
}

/* Every position of rank r's epoch, concatenated over the epoch's batches. */
static int shard_indices(int rank, int world, int bs, bool drop_last, int64_t *out) {
    vd_loader_opts o = base_opts();
    o.rank = rank, o.world_size = world, o.batch_size = bs, o.drop_last = drop_last;
    o.threads = 2;
    vd_loader *ld = make(&o);
    if (!ld) return 0;
    float *x = malloc((size_t)bs * P * sizeof *x);
    int64_t *idx = malloc((size_t)bs * sizeof *idx);
    int n = 0, count;
    vd_err err = {0};
    for (int64_t b = 0; b < vd_loader_batches_per_epoch(ld); b++) {
        CHECK(vd_loader_next_count(ld, x, idx, &count, &err) == VD_OK);
        for (int k = 0; k < bs; k++) {
            CHECK((k < count) == (idx[k] >= 0));
            if (k < count) out[n++] = idx[k];
        }
    }
    vd_loader_free(ld);
    free(x), free(idx);
    return n;
}

static void test_shards(void) {
    int64_t got[4][N_IMG];
    int n[4], hits[N_IMG] = {0};
    for (int r = 0; r < 4; r++) { /* drop_last: floor(103 / 4) = 25 each, batches of 5 */
        n[r] = shard_indices(r, 4, 5, true, got[r]);
        CHECK(n[r] == 25);
        for (int k = 0; k < n[r]; k++) hits[got[r][k]]++;
    }
    int covered = 0, twice = 0;
    for (int i = 0; i < N_IMG; i++) covered += hits[i] == 1, twice += hits[i] > 1;
    CHECK(covered == 100 && twice == 0);
    memset(hits, 0, sizeof hits); /* no drop_last: 26 each, the wrap repeats one image */
    int total = 0;
    for (int r = 0; r < 4; r++) {
        n[r] = shard_indices(r, 4, 7, false, got[r]);
        CHECK(n[r] == 26);
        for (int k = 0; k < n[r]; k++) hits[got[r][k]]++, total++;
    }
    covered = 0;
    for (int i = 0; i < N_IMG; i++) covered += hits[i] >= 1;
    CHECK(covered == N_IMG && total == 104);
}

static float scaled(int v, int bits) {
    int q = (v >> (8 - bits)) << (8 - bits);
    return (float)(((double)q - 127.5) / 127.5);
}

static void test_values(void) {
    vd_loader_opts o = base_opts();
    o.num_bits = 5, o.batch_size = N_IMG / 2, o.prefetch = 1;
    vd_loader *ld = make(&o);
    size_t nf = (size_t)o.batch_size * P;
    float *x = malloc(3 * nf * sizeof *x);
    int64_t idx[3 * (N_IMG / 2)];
    take(ld, 3, o.batch_size, x, idx);
    vd_loader_free(ld);
    int bad = 0, flips = 0;
    for (int b = 0; b < 3; b++)
        for (int k = 0; k < o.batch_size; k++) {
            int64_t i = idx[b * o.batch_size + k];
            uint64_t epoch = (uint64_t)b / 2; /* two batches per epoch */
            bool flip = vd_rng_uniform(o.seed, vd_rng_stream((uint32_t)epoch, VD_SITE_LOADER_FLIP),
                                       (uint64_t)i) < 0.5f;
            flips += flip;
            const float *d = x + (size_t)(b * o.batch_size + k) * P;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    for (int c = 0; c < C; c++) {
                        int sx = flip ? W - 1 - xx : xx;
                        int v = vd_image_ptr(&im, i)[(y * W + sx) * C + c];
                        bad += d[(y * W + xx) * C + c] != scaled(v, 5);
                    }
        }
    CHECK(bad == 0);
    CHECKF(flips > 3 * o.batch_size / 4 && flips < 3 * o.batch_size * 3 / 4, "%d flips", flips);
    CHECK(scaled(255, 8) == 1.0f && scaled(0, 8) == -1.0f && scaled(255, 5) == (float)(120.5 / 127.5));
    free(x);
}

static void test_binarize(void) {
    vd_loader_opts o = base_opts();
    o.binarize = true, o.flip = false, o.batch_size = 10, o.num_bits = 0;
    vd_loader *ld = make(&o);
    float *x = malloc((size_t)20 * 10 * P * sizeof *x);
    int64_t idx[200];
    take(ld, 20, 10, x, idx); /* crosses an epoch boundary (10 batches per epoch) */
    vd_loader_free(ld);
    int bad = 0;
    for (int b = 0; b < 20; b++)
        for (int k = 0; k < 10; k++) {
            int64_t i = idx[b * 10 + k];
            uint64_t stream = vd_rng_stream((uint32_t)(b / 10), VD_SITE_LOADER_BINARIZE);
            for (int p = 0; p < P; p++) {
                float u = vd_rng_uniform(o.seed, stream, (uint64_t)i * P + (uint64_t)p);
                float want = u < (float)vd_image_ptr(&im, i)[p] / 255.0f ? 1.0f : 0.0f;
                bad += x[(size_t)(b * 10 + k) * P + (size_t)p] != want;
            }
        }
    CHECK(bad == 0);
    free(x);
}

static void test_errors(void) {
    vd_loader *ld = NULL;
    vd_err err = {0};
    vd_loader_opts o = base_opts();
    o.batch_size = 30, o.world_size = 4; /* 25 per rank: no full batch */
    CHECK(vd_loader_create(&ld, &im, &o, &err) == VD_ERR_INVALID && !ld);
    CHECK(strstr(err.msg, "no batch") != NULL);
    o = base_opts(), o.rank = 2, o.world_size = 2;
    CHECK(vd_loader_create(&ld, &im, &o, &err) == VD_ERR_INVALID);
    o = base_opts(), o.num_bits = 9;
    CHECK(vd_loader_create(&ld, &im, &o, &err) == VD_ERR_INVALID);
    o = base_opts(), o.threads = 0;
    CHECK(vd_loader_create(&ld, &im, &o, &err) == VD_ERR_INVALID);
    vd_loader_free(NULL);
}

static void test_opts_for(void) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    hp->run.seed = 42, hp->data.num_bits = 5, hp->data.random_horizontal_flip = true;
    hp->data.dataset_source = VD_DATA_CIFAR10;
    vd_loader_opts o = vd_loader_opts_for(hp, VD_SPLIT_TRAIN, 16);
    CHECK(o.batch_size == 16 && o.seed == 42 && o.flip && !o.binarize && o.num_bits == 5);
    CHECK(o.shuffle && o.drop_last && o.world_size == 1 && o.threads >= 1 && o.prefetch >= 1);
    CHECK(!vd_loader_opts_for(hp, VD_SPLIT_VAL, 16).flip);
    hp->data.dataset_source = VD_DATA_BINARIZED_MNIST;
    o = vd_loader_opts_for(hp, VD_SPLIT_TRAIN, 16);
    CHECK(!o.flip && o.binarize);
    free(hp);
}

/* Many seeks while workers run flat out: for the sanitizers (and -fsanitize=thread). */
static void test_stress(void) {
    vd_loader_opts o = base_opts();
    o.threads = 3, o.prefetch = 3, o.batch_size = 4;
    vd_loader *ld = make(&o);
    float x[4 * P];
    int64_t idx[4];
    vd_err err = {0};
    for (int r = 0; r < 200; r++) {
        for (int k = 0; k < r % 5; k++) CHECK(vd_loader_next(ld, x, idx, &err) == VD_OK);
        vd_loader_pos at = {.epoch = (uint64_t)(r % 7), .batch = (uint64_t)(r % 25)};
        CHECK(vd_loader_seek(ld, at, &err) == VD_OK);
    }
    vd_loader_free(ld);
}

int main(void) {
    vd_err err = {0};
    if (vd_images_alloc(&im, N_IMG, H, W, C, &err) != VD_OK) return 1;
    for (size_t p = 0; p < (size_t)N_IMG * P; p++) im.pixels[p] = (uint8_t)(p * 7 + p / 11);
    test_thread_independence();
    test_seek();
    test_shards();
    test_values();
    test_binarize();
    test_errors();
    test_opts_for();
    test_stress();
    vd_images_free(&im);
    return vd_test_result("test_loader");
}
