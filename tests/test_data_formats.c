/* Format readers on small IDX, CIFAR-10, .npz, PNG and JPEG files written here, pixel for pixel;
 * broken files fail naming the file (and offset). Arguments (each its own ctest entry): numpy,
 * files np.savez writes; fashion_mnist, the real files of Debian's dataset-fashion-mnist. */
#define _GNU_SOURCE
#include <ftw.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zip.h>
#include <zlib.h>

#include "data/formats.h"
#include "vd_test.h"
#include "vdvae/data.h"

static char tmpdir[] = "/tmp/vd_formats_XXXXXX";

static const char *tp(const char *name) { return vd_test_path(tmpdir, name); }

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *b;
    vd_err e;
    return vd_data_read_file(path, &b, len, &e) == VD_OK ? b : NULL;
}

/* s is the expected failure; the message holds every fragment given (VD_TEST_VERBOSE=1
 * prints each message, to read them as a user would). */
/* ---- IDX ------------------------------------------------------------------------------------ */

static uint8_t idx_pixel(int i, int y, int x) { return (uint8_t)(i * 50 + y * 7 + x * 3); }

/* n images of 4 x 5 in IDX layout; `magic` and `claimed_n` go into the header as given. */
static size_t make_idx(uint8_t *buf, uint32_t magic, uint32_t claimed_n, int n) {
    uint32_t hdr[4] = {magic, claimed_n, 4, 5};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 4; b++) buf[4 * k + b] = (uint8_t)(hdr[k] >> (24 - 8 * b));
    size_t o = 16;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) buf[o++] = idx_pixel(i, y, x);
    return o;
}

static void write_gz(const char *path, const uint8_t *data, size_t len, const char *mode) {
    gzFile g = gzopen(path, mode);
    CHECK(g && gzwrite(g, data, (unsigned)len) == (int)len);
    if (g) gzclose(g);
}

static void check_idx_images(const vd_images *im, int n) {
    CHECK(im->n == n && im->h == 4 && im->w == 5 && im->c == 1);
    int bad = 0;
    for (int i = 0; i < im->n; i++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) bad += vd_image_ptr(im, i)[y * 5 + x] != idx_pixel(i, y, x);
    CHECKF(bad == 0, "%d IDX pixels differ", bad);
}

static void test_idx_good(void) {
    uint8_t buf[16 + 3 * 20];
    size_t len = make_idx(buf, 0x803, 3, 3);
    write_bytes(tp("raw.idx"), buf, len);
    write_gz(tp("img.idx.gz"), buf, len, "wb");
    /* two gzip members, as `cat a.gz b.gz` makes */
    write_gz(tp("multi.gz"), buf, 30, "wb");
    write_gz(tp("multi.gz"), buf + 30, len - 30, "ab");
    const char *files[] = {"raw.idx", "img.idx.gz", "multi.gz"};
    for (int k = 0; k < 3; k++) {
        vd_images im;
        vd_err e;
        vd_status s = vd_read_idx_images(tp(files[k]), &im, &e);
        CHECKF(s == VD_OK, "%s: %s", files[k], e.msg);
        if (s == VD_OK) check_idx_images(&im, 3);
        vd_images_free(&im);
    }
}

static void idx_fails(const char *name, vd_status code, const char *frag1, const char *frag2) {
    vd_images im;
    vd_err e;
    vd_status s = vd_read_idx_images(tp(name), &im, &e);
    CHECK_FAIL(s, code, e, tp(name), frag1, frag2);
    CHECK(im.pixels == NULL);
}

static void test_idx_bad(void) {
    uint8_t buf[16 + 3 * 20], big[16 + 4 * 20];
    size_t len = make_idx(buf, 0x801, 3, 3);
    write_bytes(tp("labels.idx"), buf, len);
    idx_fails("labels.idx", VD_ERR_INVALID, "offset 0", "bad IDX magic 0x00000801");
    len = make_idx(buf, 0x803, 3, 3);
    write_bytes(tp("trunc.idx"), buf, len - 7);
    idx_fails("trunc.idx", VD_ERR_INVALID, "truncated", "offset 69");
    write_bytes(tp("short.idx"), buf, 10);
    idx_fails("short.idx", VD_ERR_INVALID, "truncated IDX header", "offset 10");
    size_t blen = make_idx(big, 0x803, 3, 4);
    write_bytes(tp("trailing.idx"), big, blen);
    idx_fails("trailing.idx", VD_ERR_INVALID, "trailing data", "offset 76");
    write_gz(tp("trailing.gz"), big, blen, "wb");
    idx_fails("trailing.gz", VD_ERR_INVALID, "trailing data", "offset 76");
    /* absurd: 2^32-1 images of 65535 x 65535, from a few bytes */
    uint8_t absurd[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff};
    write_bytes(tp("absurd.idx"), absurd, 16);
    idx_fails("absurd.idx", VD_ERR_INVALID, "offset 4", "4294967295 x 65535 x 65535");
    write_gz(tp("absurd.gz"), absurd, 16, "wb");
    idx_fails("absurd.gz", VD_ERR_INVALID, "offset 4", "cannot come from");
    /* a gzip file cut short, and one with a damaged body */
    write_gz(tp("whole.gz"), buf, len, "wb");
    size_t glen;
    uint8_t *gz = slurp(tp("whole.gz"), &glen);
    CHECK(gz != NULL);
    write_bytes(tp("cut.gz"), gz, glen - 12);
    idx_fails("cut.gz", VD_ERR_INVALID, "truncated", "");
    for (size_t i = 12; i < glen - 8; i++) gz[i] ^= 0x5a;
    write_bytes(tp("damaged.gz"), gz, glen);
    idx_fails("damaged.gz", VD_ERR_INVALID, "offset", "");
    free(gz);
    idx_fails("missing.idx", VD_ERR_IO, "cannot open", "");
    mkdir(tp("a_dir.idx"), 0755);
    idx_fails("a_dir.idx", VD_ERR_IO, "not a regular file", "");
}

/* The real Fashion-MNIST files of the dataset-fashion-mnist package. */
static void test_fashion_mnist(void) {
    static const struct { const char *file; int n; double mean_lo, mean_hi; } sets[] = {
        {"train-images-idx3-ubyte.gz", 60000, 72.0, 74.0},
        {"t10k-images-idx3-ubyte.gz", 10000, 72.0, 74.5},
    };
    const char *dir = VD_TEST_FASHION_MNIST_DIR;
    for (int k = 0; k < 2; k++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, sets[k].file);
        vd_images im;
        vd_err e;
        vd_status s = vd_read_idx_images(path, &im, &e);
        CHECKF(s == VD_OK, "%s", e.msg);
        CHECK(im.n == sets[k].n && im.h == 28 && im.w == 28 && im.c == 1);
        double sum = 0;
        for (size_t i = 0; s == VD_OK && i < (size_t)im.n * 28 * 28; i++) sum += im.pixels[i];
        double mean = s == VD_OK ? sum / ((double)im.n * 784) : 0;
        CHECKF(mean > sets[k].mean_lo && mean < sets[k].mean_hi, "%s: mean pixel %.2f", path, mean);
        vd_images_free(&im);
    }
}

/* ---- CIFAR-10 ------------------------------------------------------------------------------ */

static uint8_t cifar_pixel(int i, int ch, int y, int x) {
    return (uint8_t)(i * 31 + ch * 85 + y * 3 + x * 5);
}

static void write_cifar(const char *path, int first, int n, size_t cut) {
    size_t len = (size_t)n * 3073;
    uint8_t *b = malloc(len);
    for (int i = 0; i < n; i++) {
        uint8_t *r = b + (size_t)i * 3073;
        r[0] = (uint8_t)(i % 10);
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 1024; p++)
                r[1 + ch * 1024 + p] = cifar_pixel(first + i, ch, p / 32, p % 32);
    }
    write_bytes(path, b, len - cut);
    free(b);
}

static void test_cifar(void) {
    write_cifar(tp("data_batch_1.bin"), 0, 2, 0);
    write_cifar(tp("data_batch_2.bin"), 2, 3, 0);
    const char *paths[] = {tp("data_batch_1.bin"), tp("data_batch_2.bin")};
    vd_images im;
    vd_err e;
    vd_status s = vd_read_cifar10_bins(paths, 2, &im, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    CHECK(im.n == 5 && im.h == 32 && im.w == 32 && im.c == 3);
    int bad = 0;
    for (int i = 0; s == VD_OK && i < 5; i++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int ch = 0; ch < 3; ch++)
                    bad += vd_image_ptr(&im, i)[(y * 32 + x) * 3 + ch] != cifar_pixel(i, ch, y, x);
    CHECKF(bad == 0, "%d CIFAR pixels differ", bad);
    vd_images_free(&im);

    write_cifar(tp("cut.bin"), 0, 2, 1);
    const char *bad_paths[] = {tp("data_batch_1.bin"), tp("cut.bin")};
    s = vd_read_cifar10_bins(bad_paths, 2, &im, &e);
    CHECK_FAIL(s, VD_ERR_INVALID, e, tp("cut.bin"), "6145 bytes", "3073");
    CHECK(im.pixels == NULL);
    const char *missing[] = {tp("nope.bin")};
    s = vd_read_cifar10_bins(missing, 1, &im, &e);
    CHECK_FAIL(s, VD_ERR_IO, e, tp("nope.bin"), "cannot open");
    const char *dir[] = {tmpdir};
    s = vd_read_cifar10_bins(dir, 1, &im, &e);
    CHECK_FAIL(s, VD_ERR_IO, e, tmpdir, "not a regular file");
}

/* ---- npz ------------------------------------------------------------------------------------ */

static uint8_t npz_pixel(int i, int ch, int y, int x) {
    return (uint8_t)(i * 40 + ch * 90 + y * 11 + x);
}

/* A .npy of n images of c x r x r in CHW order with the given header dict. */
static uint8_t *make_npy(const char *dict, int n, int c, int r, size_t *len) {
    size_t hl = strlen(dict), pad = (64 - (10 + hl + 1) % 64) % 64, hlen = hl + pad + 1;
    size_t data = (size_t)n * c * r * r;
    uint8_t *b = malloc(10 + hlen + data);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hlen & 0xff), b[9] = (uint8_t)(hlen >> 8);
    memcpy(b + 10, dict, hl);
    memset(b + 10 + hl, ' ', pad);
    b[10 + hl + pad] = '\n';
    uint8_t *p = b + 10 + hlen;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < r; y++)
                for (int x = 0; x < r; x++) *p++ = npz_pixel(i, ch, y, x);
    *len = 10 + hlen + data;
    return b;
}

static void write_zip(const char *path, const char *member, const uint8_t *data, size_t len,
                      int method) {
    int ze = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    CHECK(za != NULL);
    if (!za) return;
    zip_source_t *src = zip_source_buffer(za, data, len, 0);
    zip_int64_t idx = src ? zip_file_add(za, member, src, ZIP_FL_OVERWRITE) : -1;
    CHECK(idx >= 0);
    CHECK(zip_set_file_compression(za, (zip_uint64_t)idx, method, 0) == 0);
    CHECK(zip_close(za) == 0);
}

static void check_npz_images(const vd_images *im, int n, int c, int r) {
    CHECK(im->n == n && im->h == r && im->w == r && im->c == c);
    int bad = 0;
    for (int i = 0; i < im->n; i++)
        for (int y = 0; y < r; y++)
            for (int x = 0; x < r; x++)
                for (int ch = 0; ch < c; ch++)
                    bad += vd_image_ptr(im, i)[(y * r + x) * c + ch] != npz_pixel(i, ch, y, x);
    CHECKF(bad == 0, "%d npz pixels differ", bad);
}

static void npz_case(const char *name, const char *dict, int method, const char *member,
                     vd_status want, const char *frag) {
    size_t len;
    uint8_t *npy = make_npy(dict, 3, 3, 4, &len);
    write_zip(tp(name), member, npy, len, method);
    vd_images im;
    vd_err e;
    vd_status s = vd_read_npz_images(tp(name), 4, 3, &im, &e);
    if (want == VD_OK) {
        CHECKF(s == VD_OK, "%s: %s", name, e.msg);
        if (s == VD_OK) check_npz_images(&im, 3, 3, 4);
    } else {
        CHECK_FAIL(s, want, e, tp(name), frag);
    }
    vd_images_free(&im);
    /* the in-memory entry point sees the same bytes the same way */
    size_t zlen;
    uint8_t *zb = slurp(tp(name), &zlen);
    s = vd_parse_npz_images(zb, zlen, name, 4, 3, &im, &e);
    CHECKF(s == want, "%s in memory: %s", name, e.msg);
    vd_images_free(&im);
    free(zb);
    free(npy);
}

static void test_npz(void) {
    const char *good = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 48), }";
    npz_case("stored.npz", good, ZIP_CM_STORE, "data.npy", VD_OK, "");
    npz_case("deflated.npz", good, ZIP_CM_DEFLATE, "data.npy", VD_OK, "");
    npz_case("nchw.npz", "{'descr': '<u1', 'fortran_order': False, 'shape': (3, 3, 4, 4)}",
             ZIP_CM_DEFLATE, "data.npy", VD_OK, "");
    npz_case("nodata.npz", good, ZIP_CM_STORE, "images.npy", VD_ERR_INVALID, "'images.npy'");
    npz_case("dtype.npz", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 48), }",
             ZIP_CM_STORE, "data.npy", VD_ERR_INVALID, "dtype '<f4'");
    npz_case("fortran.npz", "{'descr': '|u1', 'fortran_order': True, 'shape': (3, 48), }",
             ZIP_CM_STORE, "data.npy", VD_ERR_INVALID, "Fortran");
    npz_case("shape.npz", "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 36), }",
             ZIP_CM_STORE, "data.npy", VD_ERR_INVALID, "shape (4, 36)");
    npz_case("count.npz", "{'descr': '|u1', 'fortran_order': False, 'shape': (9, 48), }",
             ZIP_CM_DEFLATE, "data.npy", VD_ERR_INVALID, "holds 144 bytes");
    npz_case("dict.npz", "{'descr': '|u1', 'fortran_order': False, 'shape': [3, 48], }",
             ZIP_CM_STORE, "data.npy", VD_ERR_INVALID, "bad .npy header");
    vd_images im;
    vd_err e;
    static const char garbage[] = "PK\x03\x04 this is not a zip";
    write_bytes(tp("garbage.npz"), garbage, sizeof garbage - 1);
    vd_status s = vd_read_npz_images(tp("garbage.npz"), 4, 3, &im, &e);
    CHECK_FAIL(s, VD_ERR_INVALID, e, tp("garbage.npz"), "cannot read as .npz");
    size_t zlen;
    uint8_t *zb = slurp(tp("deflated.npz"), &zlen);
    write_bytes(tp("cut.npz"), zb, zlen / 2);
    s = vd_read_npz_images(tp("cut.npz"), 4, 3, &im, &e);
    CHECK_FAIL(s, VD_ERR_INVALID, e, tp("cut.npz"));
    free(zb);
}

/* np.savez / np.savez_compressed themselves. */
static void test_npz_numpy(void) {
    const char *py = vd_test_python();
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' -c \"import numpy as np, sys\n"
             "i, c, y, x = np.meshgrid(np.arange(3), np.arange(3), np.arange(4), np.arange(4), "
             "indexing='ij')\n"
             "d = ((i * 40 + c * 90 + y * 11 + x) %% 256).astype(np.uint8).reshape(3, 48)\n"
             "np.savez(sys.argv[1], data=d, other=d[:1])\n"
             "np.savez_compressed(sys.argv[2], data=d)\" '%s' '%s'",
             py, tp("np_stored.npz"), tp("np_deflated.npz"));
    int rc = system(cmd);
    CHECKF(rc == 0, "%s failed", cmd);
    if (rc != 0) return;
    const char *files[] = {"np_stored.npz", "np_deflated.npz"};
    for (int k = 0; k < 2; k++) {
        vd_images im;
        vd_err e;
        vd_status s = vd_read_npz_images(tp(files[k]), 4, 3, &im, &e);
        CHECKF(s == VD_OK, "%s", e.msg);
        if (s == VD_OK) check_npz_images(&im, 3, 3, 4);
        vd_images_free(&im);
    }
}

/* ---- PNG ------------------------------------------------------------------------------------ */

typedef struct png_spec {
    const char *name;
    int w, h, color, depth, interlace;
    const uint8_t *data;   /* rows as PNG stores them (packed, big-endian 16-bit) */
    const uint8_t *expect; /* w * h * 3 RGB */
} png_spec;

static void write_png(const char *path, const png_spec *sp) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK(!"libpng write failed");
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, sp->w, sp->h, sp->depth, sp->color, sp->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (sp->color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[3] = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
        png_byte trans[3] = {255, 0, 128};
        png_set_PLTE(png, info, pal, 3);
        png_set_tRNS(png, info, trans, 3, NULL);
    }
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep rows[16];
    for (int y = 0; y < sp->h; y++) rows[y] = (png_bytep)sp->data + rowbytes * y;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void check_png(const png_spec *sp) {
    write_png(tp(sp->name), sp);
    int h, w;
    uint8_t *rgb;
    vd_err e;
    vd_status s = vd_read_image_rgb(tp(sp->name), &h, &w, &rgb, &e);
    CHECKF(s == VD_OK, "%s: %s", sp->name, e.msg);
    if (s != VD_OK) return;
    CHECK(h == sp->h && w == sp->w);
    int bad = memcmp(rgb, sp->expect, (size_t)sp->w * sp->h * 3);
    CHECKF(bad == 0, "%s: pixels differ from PIL's convert(\"RGB\")", sp->name);
    free(rgb);
}

static void test_png(void) {
    static const uint8_t grey8[] = {0, 100, 255, 7};
    static const uint8_t grey8_x[] = {0, 0, 0, 100, 100, 100, 255, 255, 255, 7, 7, 7};
    static const uint8_t rgb8[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252};
    static const uint8_t rgba8[] = {1, 2, 3, 0, 4, 5, 6, 9, 7, 8, 9, 128, 250, 251, 252, 255};
    static const uint8_t ga8[] = {9, 0, 99, 50, 199, 100, 255, 255};
    static const uint8_t ga8_x[] = {9, 9, 9, 99, 99, 99, 199, 199, 199, 255, 255, 255};
    static const uint8_t pal[] = {0, 1, 2, 1};
    static const uint8_t pal_x[] = {10, 20, 30, 200, 100, 0, 1, 2, 3, 200, 100, 0};
    /* 16-bit grey: PIL's "I" image clips to 255; 16-bit colour keeps the high byte */
    static const uint8_t grey16[] = {0, 200, 0, 255, 1, 0, 0xff, 0xff};
    static const uint8_t grey16_x[] = {200, 200, 200, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    static const uint8_t rgb16[] = {0x12, 0x34, 0xab, 0xcd, 0x00, 0xff, 1, 0, 2, 0, 3, 0,
                                    0xff, 0xff, 0x80, 0x00, 0x7f, 0xff, 0, 1, 0, 2, 0, 3};
    static const uint8_t rgb16_x[] = {0x12, 0xab, 0x00, 1, 2, 3, 0xff, 0x80, 0x7f, 0, 0, 0};
    static const uint8_t ga16[] = {0x40, 0x01, 0,    0, 0x80, 0xff, 1, 1,
                                   0,    0xff, 2,    2, 0xff, 0,    3, 3};
    static const uint8_t ga16_x[] = {0x40, 0x40, 0x40, 0x80, 0x80, 0x80, 0, 0, 0, 0xff, 0xff, 0xff};
    static const uint8_t bits1[] = {0x40, 0x80}; /* rows: 0 1 0 0 / 1 0 0 0 */
    static const uint8_t bits1_x[] = {0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0};
    static const uint8_t bits2[] = {0x60, 0xc0}; /* rows: 1 2 / 3 0 (2 bits each) */
    static const uint8_t bits2_x[] = {85, 85, 85, 170, 170, 170, 255, 255, 255, 0, 0, 0};
    const png_spec specs[] = {
        {"grey8.png", 2, 2, PNG_COLOR_TYPE_GRAY, 8, 0, grey8, grey8_x},
        {"rgb8.png", 2, 2, PNG_COLOR_TYPE_RGB, 8, 0, rgb8, rgb8},
        {"rgb8_adam7.png", 2, 2, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rgb8, rgb8},
        {"rgba8.png", 2, 2, PNG_COLOR_TYPE_RGBA, 8, 0, rgba8, rgb8},
        {"ga8.png", 2, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, ga8, ga8_x},
        {"palette.png", 2, 2, PNG_COLOR_TYPE_PALETTE, 8, 0, pal, pal_x},
        {"grey16.png", 2, 2, PNG_COLOR_TYPE_GRAY, 16, 0, grey16, grey16_x},
        {"rgb16.png", 2, 2, PNG_COLOR_TYPE_RGB, 16, 0, rgb16, rgb16_x},
        {"ga16.png", 2, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, ga16, ga16_x},
        {"grey1.png", 2, 2, PNG_COLOR_TYPE_GRAY, 1, 0, bits1, bits1_x},
        {"grey2.png", 2, 2, PNG_COLOR_TYPE_GRAY, 2, 0, bits2, bits2_x},
    };
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) check_png(&specs[k]);
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

static uint8_t *encode_jpeg(const uint8_t *px, int w, int h, int pf, int sub, unsigned long *len) {
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    *len = 0;
    CHECK(tjCompress2(tj, px, w, 0, h, pf, &jpg, len, sub, 95, 0) == 0);
    tjDestroy(tj);
    return jpg;
}

static void test_jpeg(void) {
    enum { W = 24, H = 16 };
    static uint8_t px[W * H * 3], own[W * H * 3];
    for (int i = 0; i < W * H; i++) px[3 * i] = 200, px[3 * i + 1] = 100, px[3 * i + 2] = 50;
    unsigned long len;
    uint8_t *jpg = encode_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, &len);
    write_bytes(tp("flat.jpg"), jpg, len);
    tjFree(jpg);
    int h, w;
    uint8_t *rgb;
    vd_err e;
    vd_status s = vd_read_image_rgb(tp("flat.jpg"), &h, &w, &rgb, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    int worst = 0;
    for (int i = 0; s == VD_OK && i < W * H * 3; i++)
        worst = abs(rgb[i] - px[i]) > worst ? abs(rgb[i] - px[i]) : worst;
    CHECKF(s == VD_OK && h == H && w == W && worst <= 2, "flat JPEG off by %d", worst);
    free(rgb);

    /* a textured 4:2:0 image must equal TurboJPEG's own default decode */
    for (int i = 0; i < W * H * 3; i++) px[i] = (uint8_t)(i * 37 % 251);
    jpg = encode_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, &len);
    tjhandle tj = tjInitDecompress();
    CHECK(tjDecompress2(tj, jpg, len, own, W, 0, H, TJPF_RGB, 0) == 0);
    tjDestroy(tj);
    s = vd_decode_image_rgb(jpg, len, "tex.jpg", &h, &w, &rgb, &e);
    CHECKF(s == VD_OK && memcmp(rgb, own, sizeof own) == 0, "textured JPEG: %s", e.msg);
    free(rgb);
    write_bytes(tp("cut.jpg"), jpg, len * 2 / 3);
    write_bytes(tp("named_png.png"), jpg, len); /* a JPEG under a .png name */
    tjFree(jpg);
    s = vd_read_image_rgb(tp("named_png.png"), &h, &w, &rgb, &e);
    CHECKF(s == VD_OK && memcmp(rgb, own, sizeof own) == 0, "format by magic: %s", e.msg);
    free(rgb);

    /* greyscale JPEG: grey replicated into R, G, B */
    static uint8_t grey[W * H];
    memset(grey, 77, sizeof grey);
    jpg = encode_jpeg(grey, W, H, TJPF_GRAY, TJSAMP_GRAY, &len);
    s = vd_decode_image_rgb(jpg, len, "grey.jpg", &h, &w, &rgb, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    int same = 1;
    for (int i = 0; s == VD_OK && i < W * H; i++)
        same &= rgb[3 * i] == rgb[3 * i + 1] && rgb[3 * i] == rgb[3 * i + 2] &&
                abs(rgb[3 * i] - 77) <= 1;
    CHECK(same);
    free(rgb);
    tjFree(jpg);
}

/* ---- broken images -------------------------------------------------------------------------- */

static void image_fails(const char *name, vd_status code, const char *frag) {
    int h, w;
    uint8_t *rgb;
    vd_err e;
    vd_status s = vd_read_image_rgb(tp(name), &h, &w, &rgb, &e);
    CHECK_FAIL(s, code, e, tp(name), frag);
    CHECK(rgb == NULL);
}

static void test_bad_images(void) {
    size_t len;
    uint8_t *png = slurp(tp("rgb8.png"), &len);
    CHECK(png != NULL);
    write_bytes(tp("cut.png"), png, len - 20); /* inside IDAT */
    image_fails("cut.png", VD_ERR_INVALID, "corrupt PNG");
    write_bytes(tp("sig.png"), png, 8);
    image_fails("sig.png", VD_ERR_INVALID, "truncated");
    png[17] ^= 0x01; /* IHDR width: its CRC no longer matches */
    write_bytes(tp("crc.png"), png, len);
    image_fails("crc.png", VD_ERR_INVALID, "corrupt PNG");
    free(png);
    image_fails("cut.jpg", VD_ERR_INVALID, "corrupt JPEG");
    uint8_t junk[300] = {0xff, 0xd8, 0xff};
    for (int i = 3; i < 300; i++) junk[i] = (uint8_t)(i * 89);
    write_bytes(tp("junk.jpg"), junk, sizeof junk);
    image_fails("junk.jpg", VD_ERR_INVALID, "corrupt JPEG");
    /* found by fuzz_png: TurboJPEG reads a frame-less stream as a 0 x 0 image */
    static const uint8_t no_frame[] = {
        0xff, 0xd8, 0xff, 0x01, 0, 0, 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 'C', 'C', 'C', 'C', 'C', 'C',
        'C', 'C', 1, 0, 0, 0, 0, 0, 0, 0, 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C',
        'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C', 0, 0x1a};
    write_bytes(tp("no_frame.jpg"), no_frame, sizeof no_frame);
    image_fails("no_frame.jpg", VD_ERR_INVALID, "no image frame");
    write_bytes(tp("text.png"), "hello, world\n", 13);
    image_fails("text.png", VD_ERR_INVALID, "not a PNG or JPEG");
    write_bytes(tp("empty.png"), "", 0);
    image_fails("empty.png", VD_ERR_INVALID, "not a PNG or JPEG");
    image_fails("missing.png", VD_ERR_IO, "cannot open");
    mkdir(tp("dir.png"), 0755);
    image_fails("dir.png", VD_ERR_IO, "not a regular file");
}

/* ---- folders -------------------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to) {
    size_t len;
    uint8_t *b = slurp(from, &len);
    CHECK(b != NULL);
    if (b) write_bytes(to, b, len);
    free(b);
}

/* What a folder image must become: decoded, then resized to res x res. */
static void expect_folder_image(const char *path, int res, uint8_t *out) {
    int h, w;
    uint8_t *rgb;
    vd_err e;
    CHECK(vd_read_image_rgb(path, &h, &w, &rgb, &e) == VD_OK);
    CHECK(vd_resize_bilinear(rgb, h, w, 3, out, res, res) == VD_OK);
    free(rgb);
}

static void test_folder(void) {
    mkdir(tp("folder"), 0755);
    mkdir(tp("folder/subdir"), 0755);
    copy_file(tp("rgb8.png"), tp("folder/b.png"));
    copy_file(tp("flat.jpg"), tp("folder/a.jpg"));
    copy_file(tp("palette.png"), tp("folder/B.png"));
    write_bytes(tp("folder/.hidden"), "not an image", 12);
    vd_images im;
    vd_err e;
    vd_status s = vd_read_image_folder(tp("folder"), 2, &im, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    const char *order[] = {"B.png", "a.jpg", "b.png"};
    CHECK(s != VD_OK || (im.n == 3 && im.h == 2 && im.w == 2 && im.c == 3 && im.names));
    for (int i = 0; s == VD_OK && i < 3; i++) {
        char path[600];
        uint8_t want[12];
        snprintf(path, sizeof path, "%s/%s", tp("folder"), order[i]);
        expect_folder_image(path, 2, want);
        CHECKF(strcmp(im.names[i], order[i]) == 0, "name %d: %s", i, im.names[i]);
        CHECKF(memcmp(vd_image_ptr(&im, i), want, 12) == 0, "image %s", order[i]);
    }
    vd_images_free(&im);

    mkdir(tp("empty"), 0755);
    write_bytes(tp("empty/.DS_Store"), "x", 1);
    s = vd_read_image_folder(tp("empty"), 8, &im, &e);
    CHECK_FAIL(s, VD_ERR_INVALID, e, tp("empty"), "no image files");
    s = vd_read_image_folder(tp("no_such_dir"), 8, &im, &e);
    CHECK_FAIL(s, VD_ERR_IO, e, tp("no_such_dir"), "cannot open directory");
    copy_file(tp("cut.png"), tp("folder/c_broken.png"));
    s = vd_read_image_folder(tp("folder"), 2, &im, &e);
    CHECK_FAIL(s, VD_ERR_INVALID, e, "folder/c_broken.png", "corrupt PNG");
    CHECK(im.pixels == NULL && im.names == NULL);
    unlink(tp("folder/c_broken.png"));
    CHECK(symlink(tp("folder/gone.png"), tp("folder/dangling.png")) == 0);
    s = vd_read_image_folder(tp("folder"), 2, &im, &e);
    CHECK_FAIL(s, VD_ERR_IO, e, "folder/dangling.png", "cannot open");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    int rc = 0;
    if (!mode) rc = 0;
    else if (!strcmp(mode, "numpy")) rc = vd_test_need_python_module("numpy");
    else if (!strcmp(mode, "fashion_mnist")) rc = vd_test_need_fashion_mnist();
    else return vd_test_bad_mode("test_data_formats", mode);
    if (rc) return rc;
    if (!mkdtemp(tmpdir)) VD_SETUP_FAIL("cannot make a temporary directory");
    if (!mode) {
        test_idx_good();
        test_idx_bad();
        test_cifar();
        test_npz();
        test_png();
        test_jpeg();
        test_bad_images();
        test_folder();
    } else if (!strcmp(mode, "numpy")) {
        test_npz_numpy();
    } else {
        test_fashion_mnist();
    }
    if (getenv("VD_TEST_KEEP"))
        fprintf(stderr, "kept %s\n", tmpdir);
    else
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return vd_test_result("test_data_formats");
}
