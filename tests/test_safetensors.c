/* safetensors reader and writer: a round trip of every dtype and each kind of corrupt file;
 * with an argument (each its own ctest entry): numpy_py, a file written here read by a numpy
 * parser and by the safetensors package; twin_case, a case written by the PyTorch twin read here. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/io.h"

static char dir[] = "/tmp/vd_st_test_XXXXXX";

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* A file from a header text and n data bytes (0, 1, 2, ...); hlen overrides the length field. */
static void write_raw(const char *path, const char *header, uint64_t hlen, size_t ndata) {
    size_t h = strlen(header), total = 8 + h + ndata;
    uint8_t *buf = malloc(total);
    memcpy(buf, &hlen, 8);
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < ndata; i++)
        buf[8 + h + i] = (uint8_t)i;
    write_bytes(path, buf, total);
    free(buf);
}

/* ---- round trip ----------------------------------------------------------------------------- */

static const float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
static const double f64[1] = {3.141592653589793};
static const uint8_t u8[5] = {0, 1, 127, 128, 255};
static const int64_t i64[2] = {-5, 1LL << 40};
static const uint16_t bf16[3] = {0x3f80, 0xc040, 0x0000}; /* 1, -3, 0 */
static const uint16_t f16[3] = {0x3c00, 0xc500, 0x0001};  /* 1, -5, 2^-24 */

static void write_sample(const char *path) {
    vd_err err = {0};
    vd_st_writer *w = NULL;
    CHECK(vd_st_writer_init(&w, &err) == VD_OK);
    const int64_t s23[] = {2, 3}, s5[] = {5}, s2[] = {2}, s3[] = {3}, s04[] = {0, 4};
    CHECK(vd_st_writer_add(w, "u8", VD_DTYPE_U8, 1, s5, u8, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "model.w", VD_DTYPE_F32, 2, s23, f32, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "scalar", VD_DTYPE_F64, 0, NULL, f64, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "i64", VD_DTYPE_I64, 1, s2, i64, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "bf16", VD_DTYPE_BF16, 1, s3, bf16, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "f16", VD_DTYPE_F16, 1, s3, f16, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "empty", VD_DTYPE_F32, 2, s04, NULL, &err) == VD_OK);
    CHECK(vd_st_writer_meta(w, "step", "41", &err) == VD_OK);
    CHECK(vd_st_writer_meta(w, "step", "42", &err) == VD_OK); /* replaces */
    CHECK(vd_st_writer_meta(w, "note", "quote \" and \\ and \xc3\xa9", &err) == VD_OK);
    CHECKF(vd_st_writer_finish(w, path, &err) == VD_OK, "%s", err.msg);
    vd_st_writer_free(w);
}

static void check_tensor(const vd_st *st, const char *name, vd_dtype t, int ndim, const void *data,
                         size_t nbytes) {
    const vd_st_tensor *x = vd_st_find(st, name);
    CHECKF(x != NULL, "%s", name);
    if (!x) return;
    CHECKF(x->dtype == t && x->ndim == ndim && x->nbytes == nbytes, "%s", name);
    CHECKF(nbytes == 0 || !memcmp(x->data, data, nbytes), "%s data", name);
    CHECKF((uintptr_t)x->data % vd_dtype_size(t) == 0, "%s aligned", name);
}

static void test_round_trip(void) {
    char path[512];
    path_in(path, sizeof path, "ok.safetensors");
    write_sample(path);
    write_sample(path); /* replacing an existing file */
    vd_err err = {0};
    vd_st *st = NULL;
    CHECKF(vd_st_open(path, &st, &err) == VD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(vd_st_count(st) == 7);
    check_tensor(st, "model.w", VD_DTYPE_F32, 2, f32, sizeof f32);
    check_tensor(st, "scalar", VD_DTYPE_F64, 0, f64, sizeof f64);
    check_tensor(st, "u8", VD_DTYPE_U8, 1, u8, sizeof u8);
    check_tensor(st, "i64", VD_DTYPE_I64, 1, i64, sizeof i64);
    check_tensor(st, "bf16", VD_DTYPE_BF16, 1, bf16, sizeof bf16);
    check_tensor(st, "empty", VD_DTYPE_F32, 2, NULL, 0);
    const vd_st_tensor *w = vd_st_find(st, "model.w");
    CHECK(w && w->shape[0] == 2 && w->shape[1] == 3 && w->numel == 6);
    CHECK(vd_st_find(st, "missing") == NULL);
    CHECK(vd_st_at(st, 0) && !strcmp(vd_st_at(st, 0)->name, "bf16")); /* name order */
    CHECK(vd_st_meta(st, "step") && !strcmp(vd_st_meta(st, "step"), "42"));
    CHECK(vd_st_meta(st, "note") &&
          !strcmp(vd_st_meta(st, "note"), "quote \" and \\ and \xc3\xa9"));
    CHECK(vd_st_meta(st, "absent") == NULL);

    float out[6];
    const int64_t s23[] = {2, 3}, s32[] = {3, 2};
    CHECK(vd_st_read_f32(st, "model.w", 2, s23, 6, out, &err) == VD_OK &&
          !memcmp(out, f32, sizeof f32));
    CHECK(vd_st_read_f32(st, "model.w", 2, s32, 6, out, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "model.w") && strstr(err.msg, "[2, 3]"), "%s", err.msg);
    CHECK(vd_st_read_f32(st, "nope", 0, NULL, 1, out, &err) == VD_ERR_INVALID);
    CHECK(vd_st_read_f32(st, "bf16", 0, NULL, 3, out, &err) == VD_OK && out[0] == 1 &&
          out[1] == -3 && out[2] == 0);
    CHECK(vd_st_read_f32(st, "f16", 0, NULL, 3, out, &err) == VD_OK && out[0] == 1 &&
          out[1] == -5 && out[2] == ldexpf(1, -24));
    CHECK(vd_st_read_f32(st, "i64", 0, NULL, 2, out, &err) == VD_OK && out[0] == -5 &&
          out[1] == 0x1p40f);
    CHECK(vd_st_read_f32(st, "u8", 0, NULL, 5, out, &err) == VD_OK && out[4] == 255);
    CHECK(vd_st_read_f32(st, "scalar", 0, NULL, 1, out, &err) == VD_OK && out[0] == (float)f64[0]);
    vd_st_close(st);

    FILE *f = fopen(path, "rb");
    uint64_t hlen = 0;
    CHECK(f && fread(&hlen, 8, 1, f) == 1 && hlen % 8 == 0);
    if (f) fclose(f);
}

static void test_writer_errors(void) {
    vd_err err = {0};
    vd_st_writer *w = NULL;
    CHECK(vd_st_writer_init(&w, &err) == VD_OK);
    const int64_t s1[] = {1}, bad[] = {-1};
    float x = 1;
    CHECK(vd_st_writer_add(w, "__metadata__", VD_DTYPE_F32, 1, s1, &x, &err) == VD_ERR_INVALID);
    CHECK(vd_st_writer_add(w, "", VD_DTYPE_F32, 1, s1, &x, &err) == VD_ERR_INVALID);
    CHECK(vd_st_writer_add(w, "a", VD_DTYPE_F32, 1, bad, &x, &err) == VD_ERR_INVALID);
    CHECK(vd_st_writer_add(w, "a", VD_DTYPE_F32, 9, s1, &x, &err) == VD_ERR_INVALID);
    CHECK(vd_st_writer_add(w, "a", VD_DTYPE_F32, 1, s1, &x, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "a", VD_DTYPE_U8, 1, s1, &x, &err) == VD_OK);
    char path[512];
    path_in(path, sizeof path, "dup.safetensors");
    CHECK(vd_st_writer_finish(w, path, &err) == VD_ERR_INVALID && strstr(err.msg, "'a'"));
    CHECK(access(path, F_OK) != 0);
    vd_st_writer_free(w);

    CHECK(vd_st_writer_init(&w, &err) == VD_OK);
    CHECK(vd_st_writer_add(w, "a", VD_DTYPE_F32, 1, s1, &x, &err) == VD_OK);
    CHECK(vd_st_writer_finish(w, "/nonexistent-dir/x.safetensors", &err) == VD_ERR_IO);
    vd_st_writer_free(w);
}

/* ---- corrupt files --------------------------------------------------------------------------- */

typedef struct bad_case {
    const char *what, *header;
    int64_t hlen_delta; /* added to the true header length */
    size_t ndata;
    vd_status want;
    const char *msg; /* expected in the message, next to the file name and "offset" */
} bad_case;

static const bad_case bad_cases[] = {
    {"header length beyond the file", "{}", 1, 0, VD_ERR_INVALID, "beyond the end"},
    {"bad JSON", "{\"a\": {\"dtype\": \"F32\",", 0, 0, VD_ERR_INVALID, "bad JSON"},
    {"not an object", "[1, 2]  ", 0, 0, VD_ERR_INVALID, "offset 8"},
    {"garbage after JSON", "{} x", 0, 0, VD_ERR_INVALID, "after the JSON"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4,
     VD_ERR_INVALID, "unknown dtype"},
    {"unsupported dtype", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 0,
     4, VD_ERR_UNSUPPORTED, "not supported"},
    {"offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0,
     4, VD_ERR_INVALID, "beyond"},
    {"overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     0, 8, VD_ERR_INVALID, "overlaps"},
    {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8,
     VD_ERR_INVALID, "no tensor"},
    {"trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 9,
     VD_ERR_INVALID, "trailing"},
    {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8,
     VD_ERR_INVALID, "need 12 bytes"},
    {"reversed offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4,
     VD_ERR_INVALID, "begin <= end"},
    {"fractional shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 0, 1,
     VD_ERR_INVALID, "shape[0]"},
    {"metadata not strings", "{\"__metadata__\":{\"step\":3}}", 0, 0, VD_ERR_INVALID, "step"},
    {"duplicate name",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
     0, 2, VD_ERR_INVALID, "twice"},
};

static void expect_bad(const char *path, vd_status want, const char *what, const char *msg) {
    vd_err err = {0};
    vd_st *st = NULL;
    vd_status s = vd_st_open(path, &st, &err);
    CHECKF(s == want && st == NULL, "%s: got %s (%s)", what, vd_status_str(s), err.msg);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, "offset") && strstr(err.msg, msg),
           "%s: message '%s' lacks the file, offset or '%s'", what, err.msg, msg);
    vd_st_close(st);
}

static void test_corrupt(void) {
    char path[512];
    path_in(path, sizeof path, "bad.safetensors");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        write_raw(path, c->header, strlen(c->header) + (uint64_t)c->hlen_delta, c->ndata);
        expect_bad(path, c->want, c->what, c->msg);
    }
    write_bytes(path, "\x10\0\0", 3);
    expect_bad(path, VD_ERR_INVALID, "3-byte file", "truncated");
    write_bytes(path, "", 0);
    expect_bad(path, VD_ERR_INVALID, "empty file", "truncated");
    write_raw(path, "{}", (uint64_t)1 << 62, 0);
    expect_bad(path, VD_ERR_INVALID, "huge header length", "beyond the end");

    /* a good file cut short: its last tensor now ends beyond the data */
    char good[512];
    path_in(good, sizeof good, "ok.safetensors");
    FILE *f = fopen(good, "rb");
    uint8_t buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 16 && n < sizeof buf);
    write_bytes(path, buf, n - 3);
    expect_bad(path, VD_ERR_INVALID, "truncated data", "beyond");

    vd_err err = {0};
    vd_st *st = NULL;
    CHECK(vd_st_open(dir, &st, &err) == VD_ERR_INVALID); /* a directory */
    path_in(path, sizeof path, "absent.safetensors");
    CHECK(vd_st_open(path, &st, &err) == VD_ERR_IO && strstr(err.msg, path));
}

/* ---- an independent reader ----------------------------------------------------------------- */

static const char *py_check =
    "import json, struct, sys\n"
    "import numpy as np\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "(n,) = struct.unpack('<Q', data[:8])\n"
    "assert n % 8 == 0, n\n"
    "h = json.loads(data[8:8 + n])\n"
    "assert h['__metadata__']['step'] == '42', h['__metadata__']\n"
    "def get(name, dt):\n"
    "    e = h[name]; a, b = e['data_offsets']\n"
    "    return np.frombuffer(data[8 + n + a:8 + n + b], dtype=dt).reshape(e['shape'])\n"
    "w = get('model.w', '<f4')\n"
    "assert w.shape == (2, 3) and w[0, 2] == 3.25 and w[1, 2] == np.float32(1e-30), w\n"
    "assert get('scalar', '<f8').shape == () and abs(float(get('scalar', '<f8')) - "
    "3.141592653589793) < 1e-15\n"
    "assert list(get('i64', '<i8')) == [-5, 1 << 40]\n"
    "assert get('empty', '<f4').shape == (0, 4)\n"
    "from safetensors import safe_open\n"
    "with safe_open(sys.argv[1], framework='numpy') as f:  # numpy has no bfloat16: skip it\n"
    "    assert f.metadata()['step'] == '42' and len(list(f.keys())) == 7\n"
    "    assert np.array_equal(f.get_tensor('model.w'), w)\n"
    "    assert list(f.get_tensor('u8')) == [0, 1, 127, 128, 255]\n"
    "    assert f.get_tensor('f16')[1] == -5 and f.get_tensor('empty').shape == (0, 4)\n"
    "print('python: numpy parser and safetensors package ok')\n";

static void test_python(void) {
    const char *py = vd_test_python();
    char cmd[2048];
    char script[512], data[512];
    path_in(script, sizeof script, "check.py");
    path_in(data, sizeof data, "ok.safetensors");
    write_bytes(script, py_check, strlen(py_check));
    snprintf(cmd, sizeof cmd, "'%s' %s %s", py, script, data);
    CHECKF(system(cmd) == 0, "%s", cmd);
}

/* A case written by the PyTorch twin (tests/reference/make_case.py) reads here: every
 * parameter has its gradient, and the file says what it is. */
static void test_twin_case(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    char out[512], cmd[2048];
    path_in(out, sizeof out, "case.safetensors");
    snprintf(cmd, sizeof cmd,
             "'%s' %s/tests/reference/make_case.py "
             "%s/tests/reference/configs/tiny_rgb.cfg %s --batch 1",
             vd_test_python(), src, src, out);
    CHECKF(system(cmd) == 0, "%s", cmd);
    vd_err err = {0};
    vd_st *st = NULL;
    CHECKF(vd_st_open(out, &st, &err) == VD_OK, "%s", err.msg);
    if (!st) return;
    CHECK(vd_st_meta(st, "format") && !strcmp(vd_st_meta(st, "format"), "vdvae-twin-case-1"));
    int params = 0;
    for (int i = 0; i < vd_st_count(st); i++) {
        const vd_st_tensor *t = vd_st_at(st, i);
        if (strncmp(t->name, "model.", 6)) continue;
        char g[300];
        snprintf(g, sizeof g, "grad.%s", t->name + 6);
        const vd_st_tensor *d = vd_st_find(st, g);
        CHECKF(d && d->dtype == VD_DTYPE_F32 && d->numel == t->numel, "%s", g);
        params++;
    }
    const char *n = vd_st_meta(st, "n_params");
    CHECKF(n && params == atoi(n), "%d parameters, metadata says %s", params, n ? n : "nothing");
    double loss = 0;
    const vd_st_tensor *l = vd_st_find(st, "loss.total");
    CHECK(l && l->dtype == VD_DTYPE_F64 && l->numel == 1);
    if (l) memcpy(&loss, l->data, sizeof loss);
    CHECKF(isfinite(loss) && loss > 0, "loss.total %g", loss);
    vd_st_close(st);
}

static void remove_dir(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    int left = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        left += strstr(e->d_name, ".tmp.") != NULL; /* a temporary file the writer left */
        path_in(path, sizeof path, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    CHECKF(left == 0, "%d temporary files left behind", left);
    rmdir(dir);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    int rc = 0;
    if (!mode) rc = 0;
    else if (!strcmp(mode, "numpy_py")) rc = vd_test_need_python_modules("numpy safetensors");
    else if (!strcmp(mode, "twin_case")) rc = vd_test_need_python_modules("torch numpy");
    else return vd_test_bad_mode("test_safetensors", mode);
    if (rc) return rc;
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot create a temporary directory");
    if (!mode) {
        test_round_trip();
        test_writer_errors();
        test_corrupt();
    } else if (!strcmp(mode, "numpy_py")) {
        test_round_trip(); /* writes the file the parsers read */
        test_python();
    } else {
        test_twin_case();
    }
    remove_dir();
    return vd_test_result("test_safetensors");
}
