/* The reference's splits: MT19937 / RandomState(101) permutations against constants from numpy,
 * then vd_dataset_load on small IDX, CIFAR-10, PNG and packed files written here. Arguments (each
 * its own ctest entry): numpy, the permutation against numpy itself and a folder of .npz files it
 * writes; fashion_mnist, the split of Debian's Fashion-MNIST. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/mt19937.h"
#include "vd_test.h"
#include "vdvae/data.h"

static char dir[200];
static vd_hparams *hp;

/* ---- MT19937 and the permutation ------------------------------------------------------- */

static void test_mt_constants(void) {
    vd_mt19937 r;
    vd_mt19937_seed(&r, 5489); /* the reference generator's first outputs */
    const uint32_t want[4] = {3499211612u, 581869302u, 3890346734u, 3586334585u};
    for (int i = 0; i < 4; i++) CHECK(vd_mt19937_next32(&r) == want[i]);
    /* np.random.RandomState(101).permutation(n), computed once with numpy 2.4 */
    int64_t p10[10], *p = malloc(60000 * sizeof *p);
    vd_np_permutation(101, 10, p10);
    const int64_t w10[10] = {8, 2, 0, 4, 9, 3, 5, 7, 6, 1};
    CHECK(memcmp(p10, w10, sizeof w10) == 0);
    vd_np_permutation(101, 10000, p);
    const int64_t head[8] = {6676, 6421, 9834, 8492, 9982, 8844, 7247, 5862};
    const int64_t tail[4] = {5695, 8006, 1361, 1547};
    CHECK(memcmp(p, head, sizeof head) == 0 && memcmp(p + 9996, tail, sizeof tail) == 0);
    vd_np_permutation(101, 60000, p);
    const int64_t h60[5] = {5995, 17823, 33606, 48301, 47869};
    CHECK(memcmp(p, h60, sizeof h60) == 0);
    free(p);
}

/* The whole of permutation(10000) from numpy. (The reference splits with
 * sklearn.utils.shuffle(x, random_state=101): that is resample(replace=False), which shuffles
 * arange(n) with RandomState(101) in place, as permutation(n) does; sklearn is not installed.) */
static void test_against_numpy(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import numpy as np\n"
             "p = np.random.RandomState(101).permutation(10000)\n"
             "print(\" \".join(map(str, p)))'",
             vd_test_python());
    FILE *f = popen(cmd, "r");
    CHECKF(f != NULL, "%s", cmd);
    if (!f) return;
    int n = 0, ok = 1;
    static int64_t mine[10000];
    vd_np_permutation(101, 10000, mine);
    long long v;
    while (n < 10000 && fscanf(f, "%lld", &v) == 1) ok &= v == mine[n++];
    CHECKF(pclose(f) == 0, "%s failed", cmd);
    CHECKF(n == 10000 && ok, "numpy's permutation differs (%d values read)", n);
}

/* ---- small files ------------------------------------------------------------------------- */

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void put_be32(FILE *f, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    fwrite(b, 1, 4, f);
}

/* Image i of an IDX/CIFAR set: pixel p is (i * 37 + p * 11) mod 256. */
static uint8_t pix(int64_t i, size_t p) { return (uint8_t)(i * 37 + p * 11); }

static void write_idx(const char *name, int n) {
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    put_be32(f, 0x803), put_be32(f, (uint32_t)n), put_be32(f, 28), put_be32(f, 28);
    for (int i = 0; i < n; i++)
        for (size_t p = 0; p < 784; p++) fputc(pix(i, p), f);
    fclose(f);
}

static void write_cifar(const char *name, int first, int n) {
    char path[512];
    path_of(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    for (int i = first; i < first + n; i++) {
        fputc(i % 10, f);
        for (size_t p = 0; p < 3072; p++) fputc(pix(i, p), f); /* R, G, B planes */
    }
    fclose(f);
}

static void set_data(vd_dataset src, const char *path, int res, int channels) {
    memset(hp, 0, sizeof *hp);
    hp->data.dataset_source = src;
    snprintf(hp->data.train_data_path, VD_NAME_MAX, "%s", path);
    snprintf(hp->data.val_data_path, VD_NAME_MAX, "%s", path);
    snprintf(hp->data.synthesis_data_path, VD_NAME_MAX, "%s", path);
    hp->data.target_res = res, hp->data.channels = channels, hp->data.num_bits = 8;
}

static bool padded_equal(const vd_images *im, int64_t k, int64_t orig) {
    const uint8_t *px = vd_image_ptr(im, k);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
            uint8_t want = inside ? pix(orig, (size_t)(y - 2) * 28 + (x - 2)) : 0;
            if (px[y * 32 + x] != want) return false;
        }
    return true;
}

static void test_mnist_splits(void) {
    write_idx("train-images-idx3-ubyte", 6);
    write_idx("t10k-images-idx3-ubyte", 10);
    set_data(VD_DATA_MNIST, dir, 32, 1);
    vd_images tr, va, te;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TRAIN, &tr, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &va, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TEST, &te, &err) == VD_OK, "%s", err.msg);
    CHECK(tr.n == 6 && va.n == 5 && te.n == 5 && va.h == 32 && va.w == 32 && va.c == 1);
    for (int64_t i = 0; i < tr.n; i++) CHECKF(padded_equal(&tr, i, i), "train %lld", (long long)i);
    const int64_t perm[10] = {8, 2, 0, 4, 9, 3, 5, 7, 6, 1}; /* RandomState(101), n = 10 */
    for (int k = 0; k < 5 && va.n == 5 && te.n == 5; k++) {
        CHECKF(padded_equal(&va, k, perm[k]), "val %d", k);
        CHECKF(padded_equal(&te, k, perm[5 + k]), "test %d", k);
    }
    vd_images_free(&tr), vd_images_free(&va), vd_images_free(&te);
    hp->data.target_res = 28; /* the config disagrees with the data: the file is named */
    CHECK(vd_dataset_load(hp, VD_SPLIT_TRAIN, &tr, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "train-images-idx3-ubyte") && strstr(err.msg, "target_res"), "%s", err.msg);
}

static void test_binarized_mnist(void) {
    set_data(VD_DATA_BINARIZED_MNIST, dir, 32, 1);
    vd_images va, va2, tr;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &va, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &va2, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TRAIN, &tr, &err) == VD_OK, "%s", err.msg);
    size_t len = 5 * 1024, ones = 0, expect = 0, bad = 0;
    const int64_t perm[5] = {8, 2, 0, 4, 9};
    for (size_t p = 0; va.n == 5 && p < len; p++) {
        uint8_t v = va.pixels[p];
        int64_t k = (int64_t)(p / 1024);
        int y = (int)(p % 1024) / 32, x = (int)(p % 32);
        bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
        uint8_t src = inside ? pix(perm[k], (size_t)(y - 2) * 28 + (x - 2)) : 0;
        bad += (v != 0 && v != 255) || (src == 0 && v) || (src == 255 && !v);
        ones += v == 255, expect += src;
    }
    CHECK(bad == 0);
    double rate = (double)ones / len, want = (double)expect / 255.0 / len;
    CHECKF(rate > want - 0.03 && rate < want + 0.03, "ones %f, expected %f", rate, want);
    CHECK(va.n == 5 && va2.n == 5 && memcmp(va.pixels, va2.pixels, len) == 0);
    CHECK(tr.n == 6 && padded_equal(&tr, 3, 3)); /* train stays 8-bit */
    vd_images_free(&va), vd_images_free(&va2), vd_images_free(&tr);
}

static void test_cifar_splits(void) {
    char names[5][32];
    for (int b = 0; b < 5; b++) {
        snprintf(names[b], sizeof names[b], "data_batch_%d.bin", b + 1);
        write_cifar(names[b], b * 2, 2);
    }
    write_cifar("test_batch.bin", 100, 10);
    set_data(VD_DATA_CIFAR10, dir, 32, 3);
    vd_images tr, te;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TRAIN, &tr, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TEST, &te, &err) == VD_OK, "%s", err.msg);
    CHECK(tr.n == 10 && tr.c == 3 && te.n == 5);
    /* NHWC pixel (y, x, ch) of record i came from plane ch at y * 32 + x */
    if (tr.n == 10) CHECK(vd_image_ptr(&tr, 7)[(5 * 32 + 6) * 3 + 2] == pix(7, 2048 + 5 * 32 + 6));
    if (te.n == 5) CHECK(vd_image_ptr(&te, 0)[1] == pix(100 + 3, 1024)); /* perm[5] = 3 */
    vd_images_free(&tr), vd_images_free(&te);
}

static void test_pack_as_path(void) {
    vd_images im;
    vd_err err = {0};
    CHECK(vd_images_alloc(&im, 3, 32, 32, 1, &err) == VD_OK);
    im.pixels[5] = 77;
    char path[224];
    path_of(path, sizeof path, "val_split.pack"); /* found by its magic, not its name */
    CHECK(vd_pack_write(path, &im, &err) == VD_OK);
    vd_images_free(&im);
    set_data(VD_DATA_BINARIZED_MNIST, dir, 32, 1);
    snprintf(hp->data.val_data_path, VD_NAME_MAX, "%s", path);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &im, &err) == VD_OK, "%s", err.msg);
    CHECK(im.n == 3 && im.pixels && im.pixels[5] == 77);
    vd_images_free(&im);
    hp->data.channels = 3;
    CHECK(vd_dataset_load(hp, VD_SPLIT_VAL, &im, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, "channels"), "%s", err.msg);
    snprintf(hp->data.synthesis_data_path, VD_NAME_MAX, "%s/missing", dir);
    CHECK(vd_dataset_load(hp, VD_SPLIT_TEST, &im, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, "synthesis_data_path") && strstr(err.msg, "missing"), "%s", err.msg);
}

/* Downsampled ImageNet: every .npz of the folder in name order, concatenated. The files are
 * written by numpy (the numpy mode). */
static void test_imagenet_npz(void) {
    char sub[224], cmd[1024];
    path_of(sub, sizeof sub, "imagenet");
    mkdir(sub, 0755);
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import numpy as np\n"
             "for name, first, n in ((\"b_2.npz\", 3, 2), (\"a_1.npz\", 0, 3)):\n"
             "    x = (np.arange(first, first + n)[:, None] * 7 + np.arange(3 * 8 * 8)[None]) %% 256\n"
             "    np.savez(\"%s/\" + name, data=x.astype(np.uint8))'", vd_test_python(), sub);
    int rc = system(cmd);
    CHECKF(rc == 0, "%s failed", cmd);
    if (rc != 0) return;
    set_data(VD_DATA_IMAGENET, sub, 8, 3);
    vd_images im;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TRAIN, &im, &err) == VD_OK, "%s", err.msg);
    CHECK(im.n == 5 && im.h == 8 && im.w == 8 && im.c == 3);
    /* NHWC (y, x, ch) of image i is CHW element ch * 64 + y * 8 + x: (i * 7 + that) mod 256 */
    int bad = 0;
    for (int64_t i = 0; im.n == 5 && i < 5; i++)
        for (int e = 0; e < 192; e++) {
            int y = e / 24, x = e / 3 % 8, ch = e % 3;
            bad += vd_image_ptr(&im, i)[e] != (uint8_t)(i * 7 + ch * 64 + y * 8 + x);
        }
    CHECK(bad == 0);
    vd_images_free(&im);
}

/* ---- PNG folders and the celebA 64 crop ---------------------------------------------------- */

static uint32_t crc_update(uint32_t c, const uint8_t *p, size_t n) {
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put_chunk(FILE *f, const char *type, const uint8_t *data, size_t n) {
    put_be32(f, (uint32_t)n);
    fwrite(type, 1, 4, f);
    if (n) fwrite(data, 1, n, f);
    uint32_t c = crc_update(crc_update(0, (const uint8_t *)type, 4), data, n);
    put_be32(f, c);
}

/* An RGB PNG whose zlib stream uses stored blocks: no compressor needed here. */
static void write_png(const char *path, int w, int h, const uint8_t *rgb) {
    size_t raw_len = (size_t)h * (1 + 3 * (size_t)w), nblk = raw_len / 65535 + 1;
    uint8_t *raw = malloc(raw_len), *z = malloc(raw_len + 5 * nblk + 6), *q = z;
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (1 + 3 * w)] = 0;
        memcpy(raw + (size_t)y * (1 + 3 * w) + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    *q++ = 0x78, *q++ = 0x01;
    uint32_t a = 1, b = 0;
    for (size_t off = 0; off < raw_len;) {
        size_t n = raw_len - off > 65535 ? 65535 : raw_len - off;
        *q++ = off + n == raw_len;
        *q++ = (uint8_t)n, *q++ = (uint8_t)(n >> 8), *q++ = (uint8_t)~n, *q++ = (uint8_t)(~n >> 8);
        memcpy(q, raw + off, n);
        for (size_t i = 0; i < n; i++) a = (a + raw[off + i]) % 65521, b = (b + a) % 65521;
        q += n, off += n;
    }
    uint32_t adler = b << 16 | a;
    for (int i = 3; i >= 0; i--) *q++ = (uint8_t)(adler >> (8 * i));
    FILE *f = fopen(path, "wb");
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    uint8_t ihdr[13] = {0, 0, (uint8_t)(w >> 8), (uint8_t)w, 0, 0, (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0};
    put_chunk(f, "IHDR", ihdr, 13);
    put_chunk(f, "IDAT", z, (size_t)(q - z));
    put_chunk(f, "IEND", NULL, 0);
    fclose(f);
    free(raw), free(z);
}

static uint8_t *gradient(int w, int h, int salt) {
    uint8_t *rgb = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = (uint8_t)(x * y + salt);
        }
    return rgb;
}

static void test_celeba64(void) {
    char sub[512], path[600];
    path_of(sub, sizeof sub, "celeba");
    mkdir(sub, 0755);
    uint8_t *raw = gradient(178, 218, 1), *pre = gradient(148, 148, 2);
    snprintf(path, sizeof path, "%s/000002.png", sub); /* aligned CelebA size: cropped first */
    write_png(path, 178, 218, raw);
    snprintf(path, sizeof path, "%s/000001.png", sub); /* already cropped: resized only */
    write_png(path, 148, 148, pre);
    uint8_t *crop = malloc(148 * 148 * 3), want[2][64 * 64 * 3];
    for (int y = 0; y < 148; y++) memcpy(crop + y * 148 * 3, raw + ((y + 40) * 178 + 15) * 3, 148 * 3);
    vd_resize_bilinear(pre, 148, 148, 3, want[0], 64, 64);
    vd_resize_bilinear(crop, 148, 148, 3, want[1], 64, 64);
    set_data(VD_DATA_CELEBA, sub, 64, 3);
    vd_images im;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TRAIN, &im, &err) == VD_OK, "%s", err.msg);
    CHECK(im.n == 2 && im.h == 64 && im.w == 64 && im.c == 3);
    if (im.n == 2) {
        CHECK(memcmp(vd_image_ptr(&im, 0), want[0], sizeof want[0]) == 0);
        CHECK(memcmp(vd_image_ptr(&im, 1), want[1], sizeof want[1]) == 0);
        CHECK(im.names && strcmp(im.names[0], "000001.png") == 0);
    }
    vd_images_free(&im);
    set_data(VD_DATA_CELEBAHQ, sub, 32, 3); /* other folders: the plain reader, no crop */
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &im, &err) == VD_OK, "%s", err.msg);
    CHECK(im.n == 2 && im.h == 32);
    vd_images_free(&im);
    free(raw), free(pre), free(crop);
}

/* ---- Debian's Fashion-MNIST ---------------------------------------------------------------- */

static void test_fashion_mnist(void) {
    const char *fm = VD_TEST_FASHION_MNIST_DIR;
    char t10k[256];
    snprintf(t10k, sizeof t10k, "%s/t10k-images-idx3-ubyte.gz", fm);
    set_data(VD_DATA_FASHION_MNIST, fm, 32, 1);
    vd_images va, te, raw;
    vd_err err = {0};
    CHECKF(vd_dataset_load(hp, VD_SPLIT_VAL, &va, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_dataset_load(hp, VD_SPLIT_TEST, &te, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_read_idx_images(t10k, &raw, &err) == VD_OK, "%s", err.msg);
    CHECK(va.n == 5000 && te.n == 5000 && raw.n == 10000);
    if (va.n == 5000 && te.n == 5000 && raw.n == 10000) {
        int64_t *perm = malloc(10000 * sizeof *perm);
        vd_np_permutation(101, 10000, perm);
        int bad = 0;
        for (int k = 0; k < 5000; k += 499)
            for (int y = 0; y < 28; y++) {
                bad += memcmp(vd_image_ptr(&va, k) + (y + 2) * 32 + 2, vd_image_ptr(&raw, perm[k]) + y * 28, 28) != 0;
                bad += memcmp(vd_image_ptr(&te, k) + (y + 2) * 32 + 2, vd_image_ptr(&raw, perm[5000 + k]) + y * 28, 28) != 0;
            }
        CHECK(bad == 0);
        free(perm);
    }
    vd_images_free(&va), vd_images_free(&te), vd_images_free(&raw);
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[768];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(p);
        else unlink(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    int rc = 0;
    if (!mode) rc = 0;
    else if (!strcmp(mode, "numpy")) rc = vd_test_need_python_module("numpy");
    else if (!strcmp(mode, "fashion_mnist")) rc = vd_test_need_fashion_mnist();
    else return vd_test_bad_mode("test_dataset_splits", mode);
    if (rc) return rc;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vd_splits_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    hp = malloc(sizeof *hp);
    if (!mkdtemp(dir) || !hp) VD_SETUP_FAIL("cannot create a temporary directory");
    if (!mode) {
        test_mt_constants();
        test_mnist_splits();
        test_binarized_mnist();
        test_cifar_splits();
        test_pack_as_path();
        test_celeba64();
    } else if (!strcmp(mode, "numpy")) {
        test_against_numpy();
        test_imagenet_npz();
    } else {
        test_fashion_mnist();
    }
    remove_tree(dir);
    free(hp);
    return vd_test_result("test_dataset_splits");
}
