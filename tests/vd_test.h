/* Minimal test helpers: CHECK records a failure with file:line and keeps going; a test's
 * main returns vd_test_result(), non-zero when anything failed. VD_SETUP_FAIL fails a test
 * that cannot set itself up; skips (77) are for missing tools only.
 * Optional tools (README "Optional tools"): vd_test_need_* / vd_test_skip report a missing
 * one as skipped (77), or as a failure under VD_REQUIRE_ALL=1; tests/lib.sh is the shell twin. */
#ifndef VD_TEST_H
#define VD_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int vd_test_failures;
static int vd_test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        vd_test_checks++;                                                           \
        if (!(cond)) {                                                              \
            vd_test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        vd_test_checks++;                                                           \
        if (!(cond)) {                                                              \
            vd_test_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

/* A status of `code` whose error message holds every fragment given after e. */
#define CHECK_FAIL(s, code, e, ...)                                                           \
    do {                                                                                      \
        const char *frags_[] = {__VA_ARGS__};                                                 \
        CHECKF((s) == (code), "status %d, expected %d (%s)", (int)(s), (int)(code), (e).msg); \
        if (getenv("VD_TEST_VERBOSE")) fprintf(stderr, "expected error: %s\n", (e).msg);    \
        for (size_t f_ = 0; f_ < sizeof frags_ / sizeof frags_[0]; f_++)                      \
            CHECKF(strstr((e).msg, frags_[f_]) != NULL, "'%s' not in: %s", frags_[f_],       \
                   (e).msg);                                                                  \
    } while (0)

/* dir/name, in one of a few rotating buffers: a caller uses each path at once (at most eight
 * in one call). */
static inline const char *vd_test_path(const char *dir, const char *name) {
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* The test cannot set itself up (no temporary directory, not run through ctest): that is a
 * failure of the environment, reported as a failure, never as a skip that CI would accept. */
#define VD_SETUP_FAIL(...)                        \
    do {                                          \
        fprintf(stderr, "FAIL: cannot run: ");    \
        fprintf(stderr, __VA_ARGS__);             \
        fputc('\n', stderr);                      \
        exit(1);                                  \
    } while (0)

/* ---- optional tools ----------------------------------------------------------------------
 * A check that needs a tool the project installs but the build does not (a Python module, the
 * Fashion-MNIST package, oneDNN) is its own ctest entry, and it asks for the tool before it
 * runs: a missing tool makes main return vd_test_skip(what), 77 (ctest: skipped), or 1 (failed)
 * under VD_REQUIRE_ALL=1, which CI sets after scripts/install-deps.sh has installed everything.
 * Once the tool is there, whatever goes wrong (a reference script that crashes) is a failure.
 * Hardware a machine may lack (a GPU) skips even under VD_REQUIRE_ALL: vd_test_skip_hardware,
 * for tests that carry the ctest label "gpu". */

#define VD_TEST_HOW " scripts/install-deps.sh installs it"
#define VD_TEST_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define VD_TEST_FASHION_MNIST                                                                \
    "Fashion-MNIST in " VD_TEST_FASHION_MNIST_DIR " (Debian: dataset-fashion-mnist;" VD_TEST_HOW ")"
#define VD_TEST_ONEDNN                                                                       \
    "oneDNN 3, the cpu backend (the build found none;" VD_TEST_HOW " into third_party/onednn, " \
    "then reconfigure)"

static inline int vd_test_require_all(void) {
    const char *v = getenv("VD_REQUIRE_ALL");
    return v && v[0] && strcmp(v, "0") != 0;
}

/* `what` is missing: 77 (skipped), or 1 with VD_REQUIRE_ALL=1. */
static inline int vd_test_skip(const char *what) {
    if (vd_test_require_all()) {
        fprintf(stderr, "VD_REQUIRE_ALL=1: missing %s\n", what);
        return 1;
    }
    fprintf(stderr, "SKIP: missing %s\n", what);
    return 77;
}

/* Hardware this machine lacks: always 77. */
static inline int vd_test_skip_hardware(const char *what) {
    fprintf(stderr, "SKIP: no %s on this machine (hardware: skipped even with VD_REQUIRE_ALL=1)\n",
            what);
    return 77;
}

/* The python3 the tests run: $VD_PYTHON, else python3 on PATH (ctest puts the project venv,
 * Debian's python3 plus tensorboard and safetensors, first). */
static inline const char *vd_test_python(void) {
    const char *py = getenv("VD_PYTHON");
    return py && py[0] ? py : "python3";
}

/* 0 when vd_test_python() imports `module`; else vd_test_skip naming it and where it comes from. */
static inline int vd_test_need_python_module(const char *module) {
    static const char *const where[][2] = {
        {"torch", "Debian: python3-torch"},   {"numpy", "Debian: python3-numpy"},
        {"PIL", "Debian: python3-pil"},       {"tensorboard", "PyPI: tensorboard, in third_party/venv"},
        {"safetensors", "PyPI: safetensors, in third_party/venv"},
        {"torchvision", "Debian: python3-torchvision"},
        {"pytorch_fid", "PyPI: pytorch-fid, in third_party/venv"},
        {"torch_fidelity", "PyPI: torch-fidelity, in third_party/venv"},
        {"scipy", "Debian: python3-scipy"},
    };
    const char *py = vd_test_python(), *how = "";
    char cmd[512], what[512];
    snprintf(cmd, sizeof cmd, "'%s' -c '' >/dev/null 2>&1", py);
    if (system(cmd) != 0) {
        snprintf(what, sizeof what, "%s (Debian: python3;" VD_TEST_HOW ")", py);
        return vd_test_skip(what);
    }
    snprintf(cmd, sizeof cmd, "'%s' -c 'import %s' >/dev/null 2>&1", py, module);
    if (system(cmd) == 0) return 0;
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (!strcmp(where[i][0], module)) how = where[i][1];
    snprintf(what, sizeof what, "python module %s for %s (%s;" VD_TEST_HOW ")", module, py, how);
    return vd_test_skip(what);
}

/* The same for every module of a space-separated list: the first missing one is named. */
static inline int vd_test_need_python_modules(const char *modules) {
    char list[256], *save = NULL;
    snprintf(list, sizeof list, "%s", modules);
    for (char *m = strtok_r(list, " ", &save); m; m = strtok_r(NULL, " ", &save)) {
        int rc = vd_test_need_python_module(m);
        if (rc) return rc;
    }
    return 0;
}

/* 0 when `path` is readable; else vd_test_skip(what). */
static inline int vd_test_need_file(const char *path, const char *what) {
    return access(path, R_OK) == 0 ? 0 : vd_test_skip(what);
}

/* 0 when Debian's dataset-fashion-mnist is installed. */
static inline int vd_test_need_fashion_mnist(void) {
    int rc = vd_test_need_file(VD_TEST_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz",
                               VD_TEST_FASHION_MNIST);
    return rc ? rc
              : vd_test_need_file(VD_TEST_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz",
                                  VD_TEST_FASHION_MNIST);
}

/* A test that runs one optional check per argument: 1 and a message for any other argument. */
static inline int vd_test_bad_mode(const char *test, const char *mode) {
    fprintf(stderr, "%s: unknown mode '%s' (see tests/CMakeLists.txt)\n", test, mode);
    return 1;
}

static inline int vd_test_result(const char *name) {
    fprintf(stderr, "%s: %d checks, %d failed\n", name, vd_test_checks, vd_test_failures);
    return vd_test_failures ? 1 : 0;
}

#endif
