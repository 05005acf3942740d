/* PNGs decode to the pixels written and appear atomically; grids put each image where
 * make_grid would; the float-to-pixel conversion rounds as documented. */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vd_test.h"
#include "vdvae/data.h"
#include "vdvae/image.h"

static void fill(uint8_t *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++)
        seed = seed * 1664525u + 1013904223u, p[i] = (uint8_t)(seed >> 24);
}

/* Decoded with libpng's simplified reader in the image's own format; NULL on failure. */
static uint8_t *png_decode(const uint8_t *png, size_t len, int c, int *h, int *w) {
    png_image im = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_memory(&im, png, len)) return NULL;
    im.format = c == 1 ? PNG_FORMAT_GRAY : c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    uint8_t *out = malloc(PNG_IMAGE_SIZE(im));
    if (!out || !png_image_finish_read(&im, NULL, out, 0, NULL)) {
        free(out);
        png_image_free(&im);
        return NULL;
    }
    *h = (int)im.height, *w = (int)im.width;
    return out;
}

static void check_encode(int h, int w, int c) {
    size_t n = (size_t)h * w * c;
    uint8_t *pix = malloc(n), *png = NULL;
    fill(pix, n, (uint32_t)(h * 131 + w * 7 + c));
    size_t len = 0;
    vd_err err = {0};
    CHECKF(vd_png_encode(pix, h, w, c, &png, &len, &err) == VD_OK, "%s", err.msg);
    CHECK(png && len > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));
    int dh = 0, dw = 0;
    uint8_t *back = png ? png_decode(png, len, c, &dh, &dw) : NULL;
    CHECKF(back && dh == h && dw == w && !memcmp(back, pix, n), "%dx%dx%d round trip", h, w, c);
    free(back), free(png), free(pix);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Files: read back by the project's decoder (grey comes back as RGB), replaced whole, and no
 * temporary file left behind, also when the write fails. */
static void check_files(const char *tmp) {
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/x.png", tmp);
    uint8_t rgb[6 * 9 * 3], grey[6 * 9];
    fill(rgb, sizeof rgb, 1), fill(grey, sizeof grey, 2);
    vd_err err = {0};
    CHECK(vd_png_write(path, rgb, 6, 9, 3, &err) == VD_OK);
    CHECK(vd_png_write(path, grey, 6, 9, 1, &err) == VD_OK); /* replaces the RGB one */
    int h = 0, w = 0;
    uint8_t *back = NULL;
    CHECKF(vd_read_image_rgb(path, &h, &w, &back, &err) == VD_OK, "%s", err.msg);
    CHECK(back && h == 6 && w == 9);
    for (int i = 0; back && i < 6 * 9; i++)
        CHECK(back[3 * i] == grey[i] && back[3 * i + 1] == grey[i] && back[3 * i + 2] == grey[i]);
    free(back);
    CHECK(count_entries(tmp) == 1);

    snprintf(bad, sizeof bad, "%s/missing/y.png", tmp);
    CHECK(vd_png_write(bad, rgb, 6, 9, 3, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, bad) != NULL, "%s", err.msg);
    snprintf(bad, sizeof bad, "%s/x.png/y.png", tmp); /* under a regular file */
    CHECK(vd_png_write(bad, rgb, 6, 9, 3, &err) == VD_ERR_IO && strstr(err.msg, bad));
    CHECK(vd_png_write(path, rgb, 6, 9, 2, &err) == VD_ERR_INVALID && strstr(err.msg, path));
    CHECK(count_entries(tmp) == 1);
}

static void check_invalid(void) {
    uint8_t px[16] = {0}, *buf = (uint8_t *)1;
    size_t len = 1;
    vd_err err = {0};
    CHECK(vd_png_encode(px, 2, 2, 2, &buf, &len, &err) == VD_ERR_INVALID && !buf && !len);
    CHECK(vd_png_encode(px, 0, 2, 1, &buf, &len, &err) == VD_ERR_INVALID);
    CHECK(vd_png_encode(px, 2, -1, 1, &buf, &len, &err) == VD_ERR_INVALID);
    CHECK(vd_png_encode(px, 1, VD_IMAGE_MAX_SIDE + 1, 1, &buf, &len, &err) == VD_ERR_INVALID);
    CHECK(strstr(err.msg, "size") != NULL);
}

/* Image i's pixel (y, x, ch) is 1 + i * 40 + y * 8 + x * 2 + ch: distinct and never 0 (pad). */
static uint8_t cell(int i, int y, int x, int ch) {
    return (uint8_t)(1 + i * 40 + y * 8 + x * 2 + ch);
}

static void check_grid_case(int n, int h, int w, int c, int cols, int pad, int want_cols) {
    uint8_t *im = malloc((size_t)n * h * w * c), *g = NULL;
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    im[(((size_t)i * h + y) * w + x) * c + ch] = cell(i, y, x, ch);
    int gh = 0, gw = 0, rows = (n + want_cols - 1) / want_cols;
    vd_err err = {0};
    CHECKF(vd_image_grid(im, n, h, w, c, cols, pad, &g, &gh, &gw, &err) == VD_OK, "%s", err.msg);
    CHECKF(gh == rows * (h + pad) + pad && gw == want_cols * (w + pad) + pad, "%dx%d", gh, gw);
    int wrong = 0;
    for (int gy = 0; g && gy < gh; gy++)
        for (int gx = 0; gx < gw; gx++) {
            int r = (gy - pad) / (h + pad), y = (gy - pad) % (h + pad);
            int q = (gx - pad) / (w + pad), x = (gx - pad) % (w + pad);
            int i = r * want_cols + q;
            bool inside = gy >= pad && gx >= pad && y < h && x < w && i < n;
            for (int ch = 0; ch < c; ch++)
                wrong += g[((size_t)gy * gw + gx) * c + ch] != (inside ? cell(i, y, x, ch) : 0);
        }
    CHECKF(g && wrong == 0, "grid n=%d cols=%d pad=%d: %d wrong", n, cols, pad, wrong);
    free(g), free(im);
}

static void check_grid(void) {
    check_grid_case(5, 2, 3, 1, 3, 1, 3);  /* two rows, the last one short */
    check_grid_case(5, 2, 3, 3, 0, 2, 3);  /* cols <= 0: ceil(sqrt(5)) */
    check_grid_case(2, 3, 2, 1, 8, 1, 2);  /* more columns than images */
    check_grid_case(4, 2, 2, 4, 2, 0, 2);  /* no padding */
    check_grid_case(1, 1, 1, 1, 1, 3, 1);
    uint8_t px[4] = {0}, *g = NULL;
    int gh, gw;
    vd_err err = {0};
    CHECK(vd_image_grid(px, 0, 1, 1, 1, 1, 0, &g, &gh, &gw, &err) == VD_ERR_INVALID && !g);
    CHECK(vd_image_grid(px, 1, 1, 1, 1, 1, -1, &g, &gh, &gw, &err) == VD_ERR_INVALID);
    CHECK(vd_image_grid(px, 1, 1, 1, 2, 1, 0, &g, &gh, &gw, &err) == VD_ERR_INVALID);
    int big = VD_IMAGE_MAX_SIDE; /* four such rows are too tall */
    CHECK(vd_image_grid(px, 4, big, 1, 1, 1, 0, &g, &gh, &gw, &err) == VD_ERR_INVALID);
}

static void check_to_u8(void) {
    const float x[] = {-1, 1, 0, -2, 2, NAN, INFINITY, -INFINITY, -0.5f, 0.999f};
    const uint8_t want[] = {0, 255, 128, 0, 255, 0, 255, 0, 64, 255};
    uint8_t out[10];
    vd_images_to_u8(x, 10, false, out);
    for (int i = 0; i < 10; i++)
        CHECKF(out[i] == want[i], "x=%g: %d, not %d", x[i], out[i], want[i]);
    /* every pixel value survives the trip through the model's [-1, 1] range */
    float in[256];
    uint8_t px[256];
    for (int v = 0; v < 256; v++) in[v] = ((float)v - 127.5f) / 127.5f;
    vd_images_to_u8(in, 256, false, px);
    for (int v = 0; v < 256; v++) CHECKF(px[v] == v, "%d -> %d", v, px[v]);
    const float u[] = {0, 1, 0.5f, -0.2f, 1.5f, NAN};
    const uint8_t uwant[] = {0, 255, 128, 0, 255, 0};
    vd_images_to_u8(u, 6, true, out);
    for (int i = 0; i < 6; i++) CHECKF(out[i] == uwant[i], "unit x=%g: %d", u[i], out[i]);
}

int main(void) {
    char tmp[] = "/tmp/vd_png_XXXXXX";
    if (!mkdtemp(tmp)) VD_SETUP_FAIL("cannot create a temporary directory");
    int shapes[][3] = {{1, 1, 1}, {1, 1, 3}, {5, 17, 1}, {17, 5, 3}, {32, 32, 3}, {9, 4, 4}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_encode(shapes[i][0], shapes[i][1], shapes[i][2]);
    check_invalid();
    check_files(tmp);
    check_grid();
    check_to_u8();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return vd_test_result("test_png_write");
}
