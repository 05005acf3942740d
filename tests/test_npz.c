/* The .npz writer and reader: every dtype round trips; bad files fail naming file and member.
 * With the argument numpy (its own ctest entry): numpy loads what we write, we load what
 * np.savez/np.savez_compressed write, and examples/read_encodings.py runs on an encodings file. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "io/npy.h"
#include "vd_test.h"
#include "vdvae/io.h"

static char tmpdir[] = "/tmp/vd_npz_XXXXXX";
static const char *python;

static const char *tp(const char *name) { return vd_test_path(tmpdir, name); }

/* ---- an encodings-shaped file: 2 blocks, 3 images ------------------------------------------ */

enum { N = 3 };
static const int64_t B0[5] = {N, 1, 1, 2, 2}, B1[5] = {N, 2, 2, 3, 2};
static const char *const NAMES[N] = {"img_000.png", "chat\xc3\xa9-\xe2\x82\xac.png", "z"};
static const char *META = "{\"config_hash\": \"abc\", \"step\": 7}";

static float val(int block, int64_t i) { return (float)block * 100.0f + (float)i * 0.25f - 3.0f; }

static void fill(float *x, int64_t n, int block) {
    for (int64_t i = 0; i < n; i++) x[i] = val(block, i);
}

static vd_status write_encodings(const char *path, int deflate, vd_err *e) {
    float b0[N * 4], b1[N * 4 * 6];
    fill(b0, N * 4, 0), fill(b1, N * 24, 1);
    int64_t k0[2] = {0, 5}, k1[3] = {1, 2, 7}, n2 = 2, n3 = 3, nn = N;
    const char *meta[1] = {META};
    vd_npz_writer *w;
    vd_status s = vd_npz_writer_open(&w, path, e);
    if (s) return s;
    vd_npz_writer_deflate(w, deflate);
    if (!s) s = vd_npz_add(w, "block_0", "f4", 5, B0, b0, e);
    if (!s) s = vd_npz_add(w, "kept_0", "i8", 1, &n2, k0, e);
    if (!s) s = vd_npz_add(w, "block_1", "f4", 5, B1, b1, e);
    if (!s) s = vd_npz_add(w, "kept_1", "i8", 1, &n3, k1, e);
    if (!s) s = vd_npz_add(w, "names", "<U", 1, &nn, NAMES, e);
    if (!s) s = vd_npz_add(w, "meta", "<U", 0, NULL, meta, e);
    if (s) {
        vd_npz_writer_discard(w);
        return s;
    }
    return vd_npz_writer_close(w, e);
}

static void check_block(vd_npz *r, const char *name, const int64_t *shape, int block, float edit) {
    const vd_npz_array *a;
    vd_err e;
    vd_status s = vd_npz_get(r, name, "f4", 5, &a, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    if (s) return;
    for (int i = 0; i < 5; i++) CHECK(a->shape[i] == shape[i]);
    int bad = 0;
    for (int64_t i = 0; i < a->numel; i++) {
        float want = val(block, i) + (block == 1 && i == 0 ? edit : 0.0f);
        bad += ((const float *)a->data)[i] != want;
    }
    CHECKF(bad == 0, "%s: %d values differ", name, bad);
}

/* What write_encodings wrote; `edit` is what read_encodings.py added to block_1[0,0,0,0,0]. */
static void check_encodings(const char *path, float edit) {
    vd_npz *r;
    vd_err e;
    vd_status s = vd_npz_open(&r, path, &e);
    CHECKF(s == VD_OK, "%s", e.msg);
    if (s) return;
    CHECK(vd_npz_count(r) == 6);
    check_block(r, "block_0", B0, 0, edit);
    check_block(r, "block_1", B1, 1, edit);
    const vd_npz_array *a;
    s = vd_npz_get(r, "kept_1", "i8", 1, &a, &e);
    CHECKF(s == VD_OK && a->numel == 3 && ((const int64_t *)a->data)[2] == 7, "%s", e.msg);
    s = vd_npz_get(r, "names", "U", 1, &a, &e);
    CHECKF(s == VD_OK && a->numel == N, "%s", e.msg);
    char buf[64];
    for (int i = 0; s == VD_OK && i < N; i++) {
        CHECKF(vd_npz_string(a, i, buf, sizeof buf, &e) == VD_OK, "%s", e.msg);
        CHECKF(!strcmp(buf, NAMES[i]), "name %d: '%s'", i, buf);
    }
    s = vd_npz_get(r, "meta", "U", 0, &a, &e);
    CHECKF(s == VD_OK && a->numel == 1, "%s", e.msg);
    if (s == VD_OK) {
        CHECK(vd_npz_string(a, 0, buf, sizeof buf, &e) == VD_OK && !strcmp(buf, META));
        CHECK_FAIL(vd_npz_string(a, 0, buf, 8, &e), VD_ERR_INVALID, e, "'meta'", "longer than");
    }
    vd_npz_close(r);
}

/* ---- round trip of every dtype, stored and deflated ---------------------------------------- */

static void test_round_trip(void) {
    for (int deflate = 0; deflate < 2; deflate++) {
        const char *p = tp(deflate ? "enc_deflated.npz" : "enc_stored.npz");
        vd_err e;
        vd_status s = write_encodings(p, deflate, &e);
        CHECKF(s == VD_OK, "%s", e.msg);
        check_encodings(p, 0.0f);
    }
    uint8_t u[5] = {0, 1, 127, 200, 255};
    int64_t n5 = 5, empty[2] = {0, 4};
    vd_npz_writer *w;
    vd_err e;
    CHECK(vd_npz_writer_open(&w, tp("u1.npz"), &e) == VD_OK);
    CHECK(vd_npz_add(w, "bytes", "|u1", 1, &n5, u, &e) == VD_OK);
    CHECK(vd_npz_add(w, "none", "<f4", 2, empty, NULL, &e) == VD_OK);
    CHECK(vd_npz_writer_close(w, &e) == VD_OK);
    vd_npz *r;
    const vd_npz_array *a;
    CHECK(vd_npz_open(&r, tp("u1.npz"), &e) == VD_OK);
    CHECK(vd_npz_get(r, "bytes", "u1", 1, &a, &e) == VD_OK && !memcmp(a->data, u, 5));
    CHECK(vd_npz_get(r, "none", "f4", 2, &a, &e) == VD_OK && a->numel == 0 && a->shape[1] == 4);
    float f[5];
    CHECK(vd_npz_read_f32(r, "bytes", 1, &n5, 5, f, &e) == VD_OK && f[4] == 255.0f);
    vd_npz_close(r);
}

/* ---- writer misuse --------------------------------------------------------------------------- */

static void test_writer_errors(void) {
    vd_npz_writer *w;
    vd_err e;
    int64_t n2 = 2, neg = -1;
    float x[2] = {1, 2};
    const char *bad_utf8[1] = {"\xc3("};
    CHECK(vd_npz_writer_open(&w, tp("bad.npz"), &e) == VD_OK);
    CHECK(vd_npz_add(w, "x", "f4", 1, &n2, x, &e) == VD_OK);
    CHECK_FAIL(vd_npz_add(w, "x", "f4", 1, &n2, x, &e), VD_ERR_INVALID, e, "'x'", "twice");
    CHECK_FAIL(vd_npz_add(w, "y", "i4", 1, &n2, x, &e), VD_ERR_INVALID, e, "dtype 'i4'");
    CHECK_FAIL(vd_npz_add(w, "y", "f4", 1, &neg, x, &e), VD_ERR_INVALID, e, "bad shape");
    CHECK_FAIL(vd_npz_add(w, "a/b", "f4", 1, &n2, x, &e), VD_ERR_INVALID, e, "bad array name");
    CHECK_FAIL(vd_npz_add(w, "s", "<U", 1, (int64_t[]){1}, bad_utf8, &e), VD_ERR_INVALID, e,
               "element 0 is not valid UTF-8");
    CHECK_FAIL(vd_npz_writer_close(w, &e), VD_ERR_INVALID, e, tp("bad.npz"), "not written");
    struct stat sb;
    CHECK(stat(tp("bad.npz"), &sb) != 0);
    CHECK(vd_npz_writer_open(&w, tp("none.npz"), &e) == VD_OK);
    CHECK_FAIL(vd_npz_writer_close(w, &e), VD_ERR_INVALID, e, "no arrays");
    CHECK(vd_npz_writer_open(&w, tp("nodir/x.npz"), &e) == VD_OK);
    CHECK(vd_npz_add(w, "x", "f4", 1, &n2, x, &e) == VD_OK);
    CHECK_FAIL(vd_npz_writer_close(w, &e), VD_ERR_IO, e, tp("nodir/x.npz"));
}

/* ---- bad files --------------------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
}

static void zip_one(const char *path, const char *member, const char *bytes, size_t len) {
    int ze = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    zip_source_t *src = za ? zip_source_buffer(za, bytes, len, 0) : NULL;
    CHECK(src && zip_file_add(za, member, src, 0) >= 0);
    CHECK(za && zip_close(za) == 0);
}

static vd_status open_find(const char *path, const char *name, vd_err *e) {
    vd_npz *r;
    const vd_npz_array *a;
    vd_status s = vd_npz_open(&r, path, e);
    if (s == VD_OK) s = vd_npz_find(r, name, &a, e);
    vd_npz_close(r);
    return s;
}

static void test_bad_files(void) {
    vd_err e;
    const char *p = tp("enc_stored.npz");
    vd_npz *r;
    const vd_npz_array *a;
    CHECK(vd_npz_open(&r, p, &e) == VD_OK);
    CHECK_FAIL(vd_npz_find(r, "block_9", &a, &e), VD_ERR_INVALID, e, p, "'block_9'",
               "'block_0'");
    CHECK_FAIL(vd_npz_get(r, "kept_0", "f4", 1, &a, &e), VD_ERR_INVALID, e, p, "'kept_0'",
               "dtype 'i8', expected 'f4'");
    CHECK_FAIL(vd_npz_get(r, "kept_0", "i8", 2, &a, &e), VD_ERR_INVALID, e, "2");
    float f[4];
    CHECK_FAIL(vd_npz_read_f32(r, "block_0", 1, (int64_t[]){4}, 4, f, &e), VD_ERR_INVALID, e,
               "'block_0'", "shape (3, 1, 1, 2, 2)");
    vd_npz_close(r);
    /* truncated: the zip directory is gone, or a member is cut short under a good directory */
    FILE *fp = fopen(p, "rb");
    static char buf[1 << 16];
    size_t len = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp) fclose(fp);
    write_bytes(tp("cut.npz"), buf, len / 2);
    CHECK_FAIL(vd_npz_open(&r, tp("cut.npz"), &e), VD_ERR_INVALID, e, tp("cut.npz"));
    char npy[256];
    int64_t four = 4;
    size_t hl = vd_npy_format_header("<f4", 1, &four, npy, sizeof npy);
    zip_one(tp("short.npz"), "x.npy", npy, hl + 8); /* 'shape': (4,) of f4: 16 bytes wanted */
    CHECK_FAIL(open_find(tp("short.npz"), "x", &e), VD_ERR_INVALID, e, tp("short.npz"),
               "member x.npy", "holds 8 bytes");
    zip_one(tp("magic.npz"), "x.npy", "NUMPY\x01\x00 nothing", 16);
    CHECK_FAIL(open_find(tp("magic.npz"), "x", &e), VD_ERR_INVALID, e, "member x.npy",
               "not a .npy array");
    hl = vd_npy_format_header("|O", 0, NULL, npy, sizeof npy);
    zip_one(tp("object.npz"), "x.npy", npy, hl + 8);
    CHECK_FAIL(open_find(tp("object.npz"), "x", &e), VD_ERR_INVALID, e, "'x'", "dtype '|O'");
    CHECK_FAIL(vd_npz_open(&r, tp("absent.npz"), &e), VD_ERR_IO, e, tp("absent.npz"));
}

/* ---- numpy ------------------------------------------------------------------------------------ */

static int run_python(const char *script, const char *arg1, const char *arg2) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' -c \"%s\" '%s' '%s'", python, script, arg1, arg2);
    return system(cmd);
}

/* numpy opens ours without pickle and sees the shapes, values, names and meta we wrote. */
static void test_numpy_reads_ours(void) {
    static const char script[] =
        "import numpy as np, sys, json\n"
        "for p in sys.argv[1:]:\n"
        "    d = np.load(p, allow_pickle=False)\n"
        "    assert sorted(d.files) == ['block_0', 'block_1', 'kept_0', 'kept_1', 'meta', "
        "'names'], d.files\n"
        "    b = d['block_1']\n"
        "    assert b.dtype == np.float32 and b.shape == (3, 2, 2, 3, 2), (b.dtype, b.shape)\n"
        "    assert (b.ravel() == 100 + np.arange(b.size) * 0.25 - 3).all()\n"
        "    assert d['kept_0'].dtype == np.int64 and list(d['kept_0']) == [0, 5]\n"
        "    assert d['names'].dtype == np.dtype('<U11'), d['names'].dtype\n"
        "    assert list(d['names']) == ['img_000.png', 'chat\\u00e9-\\u20ac.png', 'z']\n"
        "    assert d['meta'].shape == () and json.loads(str(d['meta']))['step'] == 7\n";
    CHECK(run_python(script, tp("enc_stored.npz"), tp("enc_deflated.npz")) == 0);
}

/* np.savez and np.savez_compressed output, with a unicode array, reads back here. */
static void test_we_read_numpy(void) {
    static const char script[] =
        "import numpy as np, sys\n"
        "x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5\n"
        "k = np.array([3, -1, 1 << 40], dtype=np.int64)\n"
        "s = np.array(['a', 'caf\\u00e9', '\\U0001F600x'])\n"
        "d = np.arange(4, dtype=np.float64) / 8\n"
        "np.savez(sys.argv[1], x=x, k=k, s=s, d=d, u=np.uint8(9))\n"
        "np.savez_compressed(sys.argv[2], x=x, k=k, s=s, d=d, u=np.uint8(9))\n";
    CHECK(run_python(script, tp("np_stored.npz"), tp("np_deflated.npz")) == 0);
    const char *files[2] = {tp("np_stored.npz"), tp("np_deflated.npz")};
    for (int k = 0; k < 2; k++) {
        vd_npz *r;
        const vd_npz_array *a;
        vd_err e;
        vd_status s = vd_npz_open(&r, files[k], &e);
        CHECKF(s == VD_OK, "%s", e.msg);
        if (s) continue;
        CHECK(vd_npz_count(r) == 5);
        s = vd_npz_get(r, "x", "f4", 3, &a, &e);
        CHECKF(s == VD_OK && a->shape[2] == 4 && ((const float *)a->data)[23] == 18.0f, "%s",
               e.msg);
        s = vd_npz_get(r, "k", "i8", 1, &a, &e);
        CHECKF(s == VD_OK && ((const int64_t *)a->data)[2] == (int64_t)1 << 40, "%s", e.msg);
        s = vd_npz_get(r, "u", "u1", 0, &a, &e);
        CHECKF(s == VD_OK && a->numel == 1 && *(const uint8_t *)a->data == 9, "%s", e.msg);
        float d[4];
        CHECKF(vd_npz_read_f32(r, "d", 1, (int64_t[]){4}, 4, d, &e) == VD_OK && d[3] == 0.375f,
               "%s", e.msg);
        s = vd_npz_get(r, "s", "U", 1, &a, &e);
        CHECKF(s == VD_OK && a->itemsize == 16, "%s", e.msg);
        const char *want[3] = {"a", "caf\xc3\xa9", "\xf0\x9f\x98\x80x"};
        char buf[32];
        for (int i = 0; s == VD_OK && i < 3; i++)
            CHECK(vd_npz_string(a, i, buf, sizeof buf, &e) == VD_OK && !strcmp(buf, want[i]));
        vd_npz_close(r);
    }
}

/* The documented example prints the layout, edits one latent and saves a file we read back. */
static void test_example(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s/examples/read_encodings.py' '%s' '%s' > '%s'", python, src,
             tp("enc_deflated.npz"), tp("edited.npz"), tp("example.txt"));
    CHECK(system(cmd) == 0);
    FILE *f = fopen(tp("example.txt"), "r");
    char out[4096] = "";
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) fclose(f);
    CHECKF(strstr(out, "block_1") && strstr(out, "(3, 2, 2, 3, 2)"), "example printed: %s", out);
    check_encodings(tp("edited.npz"), 1.5f);
}

static int rm_tree(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "numpy")) return vd_test_bad_mode("test_npz", mode);
    int rc = mode ? vd_test_need_python_module("numpy") : 0;
    if (rc) return rc;
    if (!mkdtemp(tmpdir)) VD_SETUP_FAIL("cannot create a temporary directory");
    python = vd_test_python();
    test_round_trip(); /* also writes the files numpy reads */
    if (mode) {
        test_numpy_reads_ours();
        test_we_read_numpy();
        test_example();
    } else {
        test_writer_errors();
        test_bad_files();
    }
    if (!getenv("VD_TEST_KEEP")) rm_tree();
    return vd_test_result("test_npz");
}
