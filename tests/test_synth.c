/* .npy files written and read back, bad .npy files named in errors, and the per-level
 * temperatures of temperature_settings; with the argument numpy (its own ctest entry), numpy
 * reads the .npy files we write. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/io.h"
#include "vdvae/synth.h"

static char dir[] = "/tmp/vd_test_synth_XXXXXX";
static int with_numpy; /* the numpy mode */

static void test_npy_round_trip(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float x[2 * 3] = {0.5f, -1.f, 2.f, NAN, 1e-30f, 3.f};
    int64_t shape[2] = {2, 3}, got_shape[VD_ST_MAX_DIMS];
    vd_err err = {0};
    CHECK(vd_npy_write(path, VD_DTYPE_F32, 2, shape, x, &err) == VD_OK);
    int ndim = 0;
    float *y = NULL;
    CHECKF(vd_npy_read_f32(path, &ndim, got_shape, &y, &err) == VD_OK, "%s", err.msg);
    CHECK(ndim == 2 && got_shape[0] == 2 && got_shape[1] == 3);
    CHECK(y && memcmp(x, y, sizeof x) == 0);
    free(y);
    FILE *f = fopen(path, "rb");
    long len = 0;
    if (f) fseek(f, 0, SEEK_END), len = ftell(f), fclose(f);
    CHECKF(len > (long)sizeof x && (len - (long)sizeof x) % 64 == 0, "file of %ld bytes: data not 64-aligned", len);
    if (with_numpy) {
        const char *py = vd_test_python();
        char cmd[512];
        snprintf(cmd, sizeof cmd, "'%s' -c \"import numpy as np; a = np.load('%s', allow_pickle=False); "
                                  "assert a.shape == (2, 3) and a.dtype == np.float32 and a[0, 2] == 2\"", py, path);
        CHECK(system(cmd) == 0);
        uint8_t u[4] = {1, 2, 3, 255};
        int64_t i64[2] = {-5, 1LL << 40}, s1[1] = {4}, s2[3] = {1, 2, 1};
        snprintf(path, sizeof path, "%s/u.npy", dir);
        CHECK(vd_npy_write(path, VD_DTYPE_U8, 1, s1, u, &err) == VD_OK);
        snprintf(cmd, sizeof cmd, "'%s' -c \"import numpy as np; a = np.load('%s'); assert a.dtype == np.uint8 and list(a) == [1, 2, 3, 255]\"", py, path);
        CHECK(system(cmd) == 0);
        snprintf(path, sizeof path, "%s/i.npy", dir);
        CHECK(vd_npy_write(path, VD_DTYPE_I64, 3, s2, i64, &err) == VD_OK);
        snprintf(cmd, sizeof cmd, "'%s' -c \"import numpy as np; a = np.load('%s'); assert a.shape == (1, 2, 1) and a[0, 1, 0] == 1 << 40\"", py, path);
        CHECK(system(cmd) == 0);
    }
}

static void test_npy_errors(void) {
    char path[256];
    vd_err err = {0};
    int ndim;
    int64_t shape[VD_ST_MAX_DIMS];
    float *y = NULL;
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    CHECK(vd_npy_read_f32(path, &ndim, shape, &y, &err) == VD_ERR_INVALID && strstr(err.msg, path));
    snprintf(path, sizeof path, "%s/u8.npy", dir);
    uint8_t u[2] = {1, 2};
    int64_t s1[1] = {2};
    CHECK(vd_npy_write(path, VD_DTYPE_U8, 1, s1, u, &err) == VD_OK);
    CHECK(vd_npy_read_f32(path, &ndim, shape, &y, &err) == VD_ERR_INVALID && strstr(err.msg, "float32"));
    float x[4] = {1, 2, 3, 4};
    int64_t s2[1] = {4};
    snprintf(path, sizeof path, "%s/short.npy", dir);
    CHECK(vd_npy_write(path, VD_DTYPE_F32, 1, s2, x, &err) == VD_OK);
    FILE *f = fopen(path, "rb");
    long len = 0;
    if (f) fseek(f, 0, SEEK_END), len = ftell(f), fclose(f);
    CHECK(truncate(path, len - 4) == 0); /* the last float cut in half */
    CHECK(vd_npy_read_f32(path, &ndim, shape, &y, &err) == VD_ERR_INVALID && strstr(err.msg, "truncated"));
    CHECK(y == NULL);
    snprintf(path, sizeof path, "%s/f64.npy", dir);
    CHECK(vd_npy_write(path, VD_DTYPE_F64, 1, s2, x, &err) == VD_ERR_UNSUPPORTED);
}

/* Two levels of two DOWN blocks each (levels 0, 0, 1, 1). */
static void test_latent_temps(void) {
    vd_block blocks[5] = {{.kind = VD_BLOCK_H0, .level = -1}, {.kind = VD_BLOCK_DOWN, .level = 0},
                          {.kind = VD_BLOCK_DOWN, .level = 0}, {.kind = VD_BLOCK_DOWN, .level = 1},
                          {.kind = VD_BLOCK_DOWN, .level = 1}};
    vd_arch a = {.blocks = blocks, .n_blocks = 5, .n_td = 4};
    float t[4];
    vd_temp_setting c = {.kind = VD_TEMP_CONST, .t = 0.7};
    vd_arch_latent_temps(&a, 2, &c, t);
    CHECK(t[0] == 0.7f && t[3] == 0.7f);
    vd_temp_setting l = {.kind = VD_TEMP_LIST, .n = 2, .per_block = {0.3, 0.9}};
    vd_arch_latent_temps(&a, 2, &l, t);
    CHECK(t[0] == 0.3f && t[1] == 0.3f && t[2] == 0.9f && t[3] == 0.9f);
    vd_temp_setting lin = {.kind = VD_TEMP_LINEAR, .first = 0.5, .last = 1.0};
    vd_arch_latent_temps(&a, 2, &lin, t);
    CHECK(t[0] == 0.5f && t[1] == 0.5f && t[2] == 0.75f && t[3] == 0.75f); /* a + (b - a) i / n */
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "numpy")) return vd_test_bad_mode("test_synth", mode);
    int rc = mode ? vd_test_need_python_module("numpy") : 0;
    if (rc) return rc;
    with_numpy = mode != NULL;
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot create a temporary directory");
    test_npy_round_trip(); /* with numpy: also numpy reads the files */
    if (!mode) {
        test_npy_errors();
        test_latent_temps();
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return vd_test_result("test_synth");
}
