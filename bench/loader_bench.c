/* Loader throughput: images/s delivered as float batches from a packed file (mmap) and from a
 * folder of PNGs (decoded once into memory, the decode rate reported separately), for 32x32x3
 * and 256x256x3 images, at a given number of loader threads. Results: bench/LOADER.md.
 *   loader_bench [--threads N] [--seconds S] [--dir TMPDIR] */
#include <getopt.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vdvae/data.h"
#include "vdvae/rng.h"

typedef struct bench_case {
    int res, n_pack, n_png, batch;
} bench_case;

static const bench_case cases[] = {
    {32, 20000, 2000, 64},
    {256, 600, 120, 8},
};

static const char *shape(const bench_case *bc) {
    static char buf[32];
    snprintf(buf, sizeof buf, "%dx%dx3", bc->res, bc->res);
    return buf;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Smooth images with noise, so PNGs compress about as real photos do. */
static void fill_images(vd_images *im) {
    size_t len = (size_t)im->n * im->h * im->w * im->c;
    for (size_t p = 0; p < len; p++) {
        size_t x = p / 3 % (size_t)im->w, y = p / 3 / (size_t)im->w % (size_t)im->h;
        im->pixels[p] = (uint8_t)(x * 3 + y * 2 + (vd_rng_u32(7, 0, p) & 15));
    }
}

static int write_png(const char *path, const uint8_t *rgb, int res) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)res, (png_uint_32)res, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < res; y++) png_write_row(png, rgb + (size_t)y * res * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f);
}

/* Images/s the loader delivers from im during about `seconds`. */
static double loader_rate(const vd_images *im, int batch, int threads, double seconds) {
    vd_loader_opts o = {.batch_size = batch, .seed = 1, .world_size = 1, .shuffle = true,
                        .drop_last = true, .flip = true, .num_bits = 8, .threads = threads,
                        .prefetch = 4};
    vd_loader *ld;
    vd_err err = {0};
    if (vd_loader_create(&ld, im, &o, &err)) {
        fprintf(stderr, "loader: %s\n", err.msg);
        return 0;
    }
    float *x = malloc((size_t)batch * im->h * im->w * im->c * sizeof *x);
    for (int warm = 0; warm < 4; warm++) vd_loader_next(ld, x, NULL, &err);
    long images = 0;
    double t0 = now(), t;
    while ((t = now()) - t0 < seconds) {
        vd_loader_next(ld, x, NULL, &err);
        images += batch;
    }
    vd_loader_free(ld);
    free(x);
    return images / (t - t0);
}

static void bench_pack(const bench_case *bc, const char *dir, int threads, double seconds) {
    vd_images im;
    vd_err err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/bench_%d.vdpack", dir, bc->res);
    if (vd_images_alloc(&im, bc->n_pack, bc->res, bc->res, 3, &err)) return;
    fill_images(&im);
    vd_status st = vd_pack_write(path, &im, &err);
    vd_images_free(&im);
    if (!st) st = vd_pack_open(path, &im, &err);
    if (st) {
        fprintf(stderr, "pack: %s\n", err.msg);
        return;
    }
    double r = loader_rate(&im, bc->batch, threads, seconds);
    printf("| packed (mmap) | %-9s | %6d | %5d | %7d | %12s | %12.0f |\n", shape(bc), bc->n_pack,
           bc->batch, threads, "-", r);
    vd_images_free(&im);
    unlink(path);
}

static void bench_png(const bench_case *bc, const char *dir, int threads, double seconds) {
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/bench_png_%d", dir, bc->res);
    mkdir(sub, 0755);
    vd_images src, im;
    vd_err err = {0};
    if (vd_images_alloc(&src, bc->n_png, bc->res, bc->res, 3, &err)) return;
    fill_images(&src);
    for (int i = 0; i < bc->n_png; i++) {
        snprintf(path, sizeof path, "%s/%06d.png", sub, i);
        if (write_png(path, vd_image_ptr(&src, i), bc->res)) fprintf(stderr, "cannot write %s\n", path);
    }
    vd_images_free(&src);
    double t0 = now();
    vd_status st = vd_read_image_folder(sub, bc->res, &im, &err);
    double decode = bc->n_png / (now() - t0);
    if (st) fprintf(stderr, "folder: %s\n", err.msg);
    else {
        double r = loader_rate(&im, bc->batch, threads, seconds);
        printf("| PNG folder    | %-9s | %6d | %5d | %7d | %12.0f | %12.0f |\n", shape(bc),
               bc->n_png, bc->batch, threads, decode, r);
        vd_images_free(&im);
    }
    for (int i = 0; i < bc->n_png; i++) {
        snprintf(path, sizeof path, "%s/%06d.png", sub, i);
        unlink(path);
    }
    rmdir(sub);
}

int main(int argc, char **argv) {
    int threads = 2;
    double seconds = 3;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    static const struct option longs[] = {{"threads", required_argument, 0, 't'},
                                          {"seconds", required_argument, 0, 's'},
                                          {"dir", required_argument, 0, 'd'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "t:s:d:h", longs, NULL)) != -1;) {
        if (c == 't') threads = atoi(optarg);
        else if (c == 's') seconds = atof(optarg);
        else if (c == 'd') dir = optarg;
        else {
            printf("usage: loader_bench [--threads N] [--seconds S] [--dir TMPDIR]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (threads < 1 || threads > 256 || !(seconds > 0)) {
        fprintf(stderr, "loader_bench: --threads 1..256, --seconds > 0\n");
        return 2;
    }
    printf("| source        | image     | images | batch | threads | decode img/s | loader img/s |\n"
           "|---------------|-----------|--------|-------|---------|--------------|--------------|\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bench_pack(&cases[i], dir, threads, seconds);
        bench_png(&cases[i], dir, threads, seconds);
    }
    return 0;
}
