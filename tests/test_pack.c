/* Packed datasets: round trip (with and without names, empty), alignment, probing, and that a
 * truncated or corrupt file is refused with a message naming the file and the offset. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/data.h"

static char dir[256];

static void make_images(vd_images *im, int64_t n, int h, int w, int c, bool names) {
    vd_err err = {0};
    CHECK(vd_images_alloc(im, n, h, w, c, &err) == VD_OK);
    size_t len = (size_t)n * h * w * c;
    for (size_t i = 0; i < len; i++) im->pixels[i] = (uint8_t)(i * 131 + i / 7);
    if (!names) return;
    im->names = calloc((size_t)n, sizeof *im->names);
    for (int64_t i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "img_%05lld.png", (long long)(i * 3));
        im->names[i] = strdup(buf);
    }
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static void test_round_trip(bool names) {
    char path[512];
    path_of(path, sizeof path, names ? "named.vdpack" : "plain.vdpack");
    vd_images im, back;
    make_images(&im, 37, 5, 7, 3, names);
    vd_err err = {0};
    CHECKF(vd_pack_write(path, &im, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_pack_open(path, &back, &err) == VD_OK, "%s", err.msg);
    CHECK(back.n == 37 && back.h == 5 && back.w == 7 && back.c == 3);
    CHECK(back.map && ((uintptr_t)back.pixels % 4096) == 0);
    CHECK(back.pixels && memcmp(back.pixels, im.pixels, 37 * 5 * 7 * 3) == 0);
    CHECK((back.names != NULL) == names);
    for (int64_t i = 0; names && back.names && i < im.n; i++)
        CHECKF(strcmp(back.names[i], im.names[i]) == 0, "name %lld", (long long)i);
    CHECK(vd_pack_probe(path));
    vd_images_free(&back);
    vd_images_free(&im);
}

static void test_empty(void) {
    char path[512];
    path_of(path, sizeof path, "empty.vdpack");
    vd_images im = {.n = 0, .h = 4, .w = 4, .c = 1}, back;
    vd_err err = {0};
    CHECKF(vd_pack_write(path, &im, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_pack_open(path, &back, &err) == VD_OK, "%s", err.msg);
    CHECK(back.n == 0 && back.h == 4 && back.w == 4 && back.c == 1);
    vd_images_free(&back);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void copy_prefix(const char *src, const char *dst, long len) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    for (long i = 0; in && out && i < len; i++) fputc(fgetc(in), out);
    if (in) fclose(in);
    if (out) fclose(out);
}

static void poke(const char *path, long off, int byte) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    fputc(byte, f);
    fclose(f);
}

/* Opening path fails with VD_ERR_INVALID, a message naming the file and containing `want`. */
static void expect_refused(const char *path, const char *want) {
    vd_images im;
    vd_err err = {0};
    vd_status st = vd_pack_open(path, &im, &err);
    CHECKF(st == VD_ERR_INVALID, "%s: status %d", path, st);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, "offset") && strstr(err.msg, want),
           "message '%s' lacks the file, offset or '%s'", err.msg, want);
    CHECK(im.map == NULL && im.pixels == NULL);
}

static void test_truncated(void) {
    char full[512], cut[512];
    path_of(full, sizeof full, "named.vdpack");
    path_of(cut, sizeof cut, "cut.vdpack");
    long len = file_size(full);
    const long cuts[] = {0, 5, 40, 71, 4096, 4096 + 100, len - 30, len - 1};
    const char *want[] = {"magic", "magic", "truncated", "truncated", "pixel", "pixel",
                          "names", "names"};
    for (int i = 0; i < 8; i++) {
        copy_prefix(full, cut, cuts[i]);
        expect_refused(cut, want[i]);
    }
}

static void test_corrupt(void) {
    char full[512], bad[512];
    path_of(full, sizeof full, "named.vdpack");
    path_of(bad, sizeof bad, "bad.bin");
    long len = file_size(full);
    copy_prefix(full, bad, len);
    CHECK(vd_pack_probe(bad)); /* by magic, without the extension */
    poke(bad, 0, 'X');
    expect_refused(bad, "magic");
    CHECK(!vd_pack_probe(bad));
    copy_prefix(full, bad, len);
    poke(bad, 24, 99); /* h: caught by the header CRC */
    expect_refused(bad, "CRC");
    copy_prefix(full, bad, len);
    poke(bad, len - 1, 'x'); /* the last name loses its terminator */
    expect_refused(bad, "terminated");
}

static void test_write_errors(void) {
    vd_images im;
    make_images(&im, 2, 2, 2, 1, false);
    vd_err err = {0};
    char path[512];
    path_of(path, sizeof path, "no/such/dir/x.vdpack");
    CHECK(vd_pack_write(path, &im, &err) == VD_ERR_IO);
    CHECK(strstr(err.msg, "no/such/dir") != NULL);
    im.c = 0;
    path_of(path, sizeof path, "bad.vdpack");
    CHECK(vd_pack_write(path, &im, &err) == VD_ERR_INVALID);
    im.c = 1;
    vd_images_free(&im);
    /* no temporary file is left behind */
    DIR *d = opendir(dir);
    int tmp = 0;
    for (struct dirent *e; d && (e = readdir(d));) tmp += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(tmp == 0);
}

static void cleanup(void) {
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char p[512];
        path_of(p, sizeof p, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vd_pack_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot create a temporary directory");
    test_round_trip(true);
    test_round_trip(false);
    test_empty();
    test_truncated();
    test_corrupt();
    test_write_errors();
    cleanup();
    return vd_test_result("test_pack");
}
