/* Checkpoints: bitwise round trip, pruning, config mismatch, truncated and corrupt files,
 * unwritable directories, a full disk, SIGKILL at random moments while saving; with the argument
 * safetensors_py (its own ctest entry), the safetensors package reading our file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/checkpoint.h"
#include "vdvae/io.h"

static char root[] = "/tmp/vd_ckpt_test_XXXXXX";
static vd_hparams hp;
static vd_arch arch;
static int64_t nf; /* floats per buffer */

static const char *tp(const char *name) { return vd_test_path(root, name); }

static float *alloc_buf(void) {
    float *p = calloc((size_t)nf, sizeof *p);
    if (!p) abort();
    return p;
}

/* xorshift64*: bit patterns of every kind, NaN payloads and -0 included. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(float *p) {
    for (int64_t i = 0; i < nf; i++) {
        uint32_t bits = (uint32_t)(rnd() >> 32);
        memcpy(&p[i], &bits, 4);
    }
}

static void fill_value(float *p, float v) {
    for (int64_t i = 0; i < nf; i++) p[i] = v;
}

static bool all_equal(const float *p, float v) {
    for (int64_t i = 0; i < nf; i++)
        if (p[i] != v) return false;
    return true;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static const char *ckpt_name(const char *dir, int64_t step) {
    static char buf[2][600];
    static int at;
    char *b = buf[at++ % 2];
    snprintf(b, 600, "%s/checkpoint-%010" PRId64 ".safetensors", dir, step);
    return b;
}

static vd_status save(const char *dir, const float *const b[4], int64_t step, int keep,
                      vd_err *err) {
    vd_ckpt_state s = {.step = step, .skips = step / 3, .seed = 420, .loader_epoch = 1,
                       .loader_batch = (uint64_t)step};
    return vd_ckpt_save(dir, &hp, &arch, b[0], b[1], b[2], b[3], &s, keep, NULL, 0, err);
}

static int count_warnings;
static void count_warn(void *ctx, const char *msg) {
    (void)ctx;
    count_warnings++;
    fprintf(stderr, "  (expected) %s\n", msg);
}

/* Files in dir whose names contain `part`. */
static int count_files(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void copy_prefix(const char *from, const char *to, off_t len) {
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(in >= 0 && out >= 0);
    char buf[1 << 16];
    for (off_t done = 0; in >= 0 && out >= 0 && done < len;) {
        off_t want = len - done < (off_t)sizeof buf ? len - done : (off_t)sizeof buf;
        ssize_t k = read(in, buf, (size_t)want);
        if (k <= 0) break;
        CHECK(write(out, buf, (size_t)k) == k);
        done += k;
    }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
}

static off_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* ---- the config hash ------------------------------------------------------------------------ */

static void test_hash(void) {
    vd_err err = {0};
    char a[65], b[65];
    CHECK(vd_config_hash(&hp, a, &err) == VD_OK);
    CHECK(strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64);
    vd_hparams *h = malloc(sizeof *h);
    *h = hp;
    h->train.batch_size = 7, h->run.seed = 1, h->optimizer.learning_rate = 1;
    snprintf(h->run.name, sizeof h->run.name, "other");
    h->data.dataset_source = VD_DATA_MNIST;
    CHECK(vd_config_hash(h, b, &err) == VD_OK && !strcmp(a, b));
    h->data.dataset_source = VD_DATA_BINARIZED_MNIST;
    CHECK(vd_config_hash(h, b, &err) == VD_OK && strcmp(a, b));
    *h = hp;
    h->model.down_latent_variates[3] = 9;
    CHECK(vd_config_hash(h, b, &err) == VD_OK && strcmp(a, b));
    *h = hp;
    h->data.channels = 3;
    CHECK(vd_config_hash(h, b, &err) == VD_OK && strcmp(a, b));
    *h = hp;
    h->model.gradient_smoothing_beta = 1.0; /* same shapes, another function */
    CHECK(vd_config_hash(h, b, &err) == VD_OK && strcmp(a, b));
    free(h);
}

/* ---- round trip ----------------------------------------------------------------------------- */

static void test_round_trip(float *const in[4], float *const out[4]) {
    const char *dir = tp("rt/sub"); /* created with its parent */
    vd_err err = {0};
    for (int k = 0; k < 4; k++) fill_random(in[k]);
    vd_ckpt_state s = {.step = 1234, .skips = 5, .seed = 0xfedcba9876543210ull,
                       .loader_epoch = 3, .loader_batch = 77};
    char path[600];
    vd_status r = vd_ckpt_save(dir, &hp, &arch, in[0], in[1], in[2], in[3], &s, 3, path,
                               sizeof path, &err);
    CHECKF(r == VD_OK, "%s", err.msg);
    CHECK(!strcmp(path, ckpt_name(dir, 1234)));
    vd_ckpt_state got;
    memset(&got, 0xab, sizeof got);
    r = vd_ckpt_load(path, &hp, &arch, out[0], out[1], out[2], out[3], &got, &err);
    CHECKF(r == VD_OK, "%s", err.msg);
    for (int k = 0; k < 4; k++)
        CHECKF(!memcmp(in[k], out[k], (size_t)nf * 4), "buffer %d differs after the round trip", k);
    char h[65];
    vd_config_hash(&hp, h, &err);
    CHECK(got.step == 1234 && got.skips == 5 && got.seed == 0xfedcba9876543210ull &&
          got.loader_epoch == 3 && got.loader_batch == 77 && !strcmp(got.config_hash, h));
    /* model and EMA only: for synthesis; and a file without the moments */
    CHECK(vd_ckpt_load(path, &hp, &arch, NULL, out[1], NULL, NULL, NULL, &err) == VD_OK);
    s.step = 1235;
    CHECK(vd_ckpt_save(dir, &hp, &arch, in[0], in[1], NULL, NULL, &s, 3, path, sizeof path,
                       &err) == VD_OK);
    CHECK(vd_ckpt_load(path, &hp, &arch, out[0], out[1], NULL, NULL, NULL, &err) == VD_OK);
    r = vd_ckpt_load(path, &hp, &arch, out[0], out[1], out[2], out[3], NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, "optimizer"), "%s", err.msg);
    bool found = false;
    char latest[600];
    CHECK(vd_ckpt_find_latest(dir, latest, sizeof latest, &found, &err) == VD_OK && found);
    CHECK(!strcmp(latest, path));
    CHECK(vd_ckpt_find_latest(tp("absent"), latest, sizeof latest, &found, &err) == VD_OK &&
          !found);
}

/* ---- keep_last ------------------------------------------------------------------------------- */

static void test_prune(float *const b[4]) {
    const char *dir = tp("prune");
    vd_err err = {0};
    mkdir(dir, 0777);
    char other[600], short_name[600];
    snprintf(other, sizeof other, "%s/notes.txt", dir);
    snprintf(short_name, sizeof short_name, "%s/checkpoint-12.safetensors", dir);
    FILE *f = fopen(other, "w");
    if (f) fclose(f);
    f = fopen(short_name, "w");
    if (f) fclose(f);
    for (int64_t step = 1; step <= 6; step++)
        CHECKF(save(dir, (const float *const *)b, step * 10, 3, &err) == VD_OK, "%s", err.msg);
    for (int64_t step = 1; step <= 6; step++)
        CHECKF(file_exists(ckpt_name(dir, step * 10)) == (step >= 4), "step %" PRId64, step * 10);
    CHECK(file_exists(other) && file_exists(short_name));
    /* an older step than those kept: written, and kept although not among the newest three */
    CHECK(save(dir, (const float *const *)b, 5, 3, &err) == VD_OK);
    CHECK(file_exists(ckpt_name(dir, 5)) && file_exists(ckpt_name(dir, 60)) &&
          file_exists(ckpt_name(dir, 40)));
    CHECK(save(dir, (const float *const *)b, 70, 1, &err) == VD_OK);
    CHECK(count_files(dir, "checkpoint-000") == 1 && file_exists(ckpt_name(dir, 70)));
    CHECK(save(dir, (const float *const *)b, 80, 0, &err) == VD_OK); /* 0: keep all */
    CHECK(count_files(dir, "checkpoint-000") == 2);
}

/* ---- another config -------------------------------------------------------------------------- */

static void test_other_config(float *const b[4]) {
    const char *dir = tp("cfg");
    vd_err err = {0};
    CHECK(save(dir, (const float *const *)b, 10, 3, &err) == VD_OK);
    char cfg[600];
    const char *src = getenv("VD_SOURCE_DIR");
    snprintf(cfg, sizeof cfg, "%s/egs/fashion_mnist.cfg", src);
    const char *ov[] = {"model.num_output_mixtures=10", "train.batch_size=8"};
    vd_hparams *h = malloc(sizeof *h);
    vd_arch a2 = {0};
    CHECK(vd_hparams_load(h, cfg, ov, 2, &err) == VD_OK && vd_arch_build(&a2, h, &err) == VD_OK);
    float *p = calloc((size_t)a2.total_floats, 4), *e = calloc((size_t)a2.total_floats, 4);
    vd_status r = vd_ckpt_load(ckpt_name(dir, 10), h, &a2, p, e, NULL, NULL, NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, "different model config") &&
               strstr(err.msg, "model.num_output_mixtures differs") &&
               !strstr(err.msg, "batch_size") && strstr(err.msg, ckpt_name(dir, 10)),
           "%s", err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    vd_arch_free(&a2);
    /* keys that leave the parameters alone load fine */
    const char *ov2[] = {"train.batch_size=8", "optimizer.learning_rate=1e-4", "run.name=x"};
    CHECK(vd_hparams_load(h, cfg, ov2, 3, &err) == VD_OK);
    CHECK(vd_ckpt_load(ckpt_name(dir, 10), h, &arch, b[0], b[1], NULL, NULL, NULL, &err) == VD_OK);
    /* moments of another optimizer are refused, the weights still load */
    h->optimizer.type = VD_OPT_ADAM;
    r = vd_ckpt_load(ckpt_name(dir, 10), h, &arch, b[0], b[1], b[2], b[3], NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, "Adamax") && strstr(err.msg, "asks for Adam "),
           "%s", err.msg);
    CHECK(vd_ckpt_load(ckpt_name(dir, 10), h, &arch, b[0], b[1], NULL, NULL, NULL, &err) == VD_OK);
    free(p);
    free(e);
    free(h);
}

/* ---- truncated and corrupt files ------------------------------------------------------------- */

static void check_bad_file(const char *path, float *const b[4], const char *what) {
    vd_err err = {0};
    vd_status r = vd_ckpt_load(path, &hp, &arch, b[0], b[1], b[2], b[3], NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, path) && strstr(err.msg, "offset"),
           "%s: status %d: %s", what, r, err.msg);
}

static void test_truncated(float *const in[4], float *const out[4]) {
    const char *dir = tp("trunc");
    vd_err err = {0};
    for (int k = 0; k < 4; k++) fill_value(in[k], 10.0f + (float)k);
    CHECK(save(dir, (const float *const *)in, 10, 3, &err) == VD_OK);
    for (int k = 0; k < 4; k++) fill_value(in[k], 20.0f + (float)k);
    CHECK(save(dir, (const float *const *)in, 20, 3, &err) == VD_OK);
    const char *good = ckpt_name(dir, 20);
    off_t size = file_size(good);
    uint64_t hlen = 0;
    FILE *f = fopen(good, "rb");
    CHECK(f && fread(&hlen, 8, 1, f) == 1);
    if (f) fclose(f);
    off_t h = (off_t)(8 + hlen); /* where the data start */
    off_t cuts[] = {0, 3, 8, 9, 200, h - 1, h, h + 5, size / 2, size - 4, size - 1};
    char cut[600];
    snprintf(cut, sizeof cut, "%s/cut.safetensors", root);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        copy_prefix(good, cut, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %lld", (long long)cuts[i]);
        check_bad_file(cut, out, what);
    }
    /* the newest one cut short: the previous one is chosen, with a warning */
    copy_prefix(good, cut, size - 100);
    CHECK(rename(cut, good) == 0);
    char latest[600];
    bool found = false;
    count_warnings = 0;
    CHECK(vd_ckpt_find_latest_cb(dir, latest, sizeof latest, &found, count_warn, NULL, &err) ==
              VD_OK && found && !strcmp(latest, ckpt_name(dir, 10)));
    CHECK(count_warnings == 1);
    CHECK(vd_ckpt_load(latest, &hp, &arch, out[0], out[1], out[2], out[3], NULL, &err) == VD_OK);
    CHECK(all_equal(out[0], 10.0f) && all_equal(out[3], 13.0f));
    /* one flipped byte in the data (same size, valid structure): the checksum catches it */
    CHECK(save(dir, (const float *const *)in, 30, 3, &err) == VD_OK);
    int fd = open(ckpt_name(dir, 30), O_RDWR);
    unsigned char c = 0;
    off_t at = file_size(ckpt_name(dir, 30)) - 1000;
    CHECK(fd >= 0 && pread(fd, &c, 1, at) == 1);
    c ^= 0x10;
    CHECK(fd >= 0 && pwrite(fd, &c, 1, at) == 1);
    if (fd >= 0) close(fd);
    check_bad_file(ckpt_name(dir, 30), out, "flipped byte");
    count_warnings = 0;
    CHECK(vd_ckpt_find_latest_cb(dir, latest, sizeof latest, &found, count_warn, NULL, &err) ==
              VD_OK && found && !strcmp(latest, ckpt_name(dir, 10)));
    CHECK(count_warnings == 2);
    /* a file that is not ours at all */
    f = fopen(ckpt_name(dir, 40), "w");
    if (f) fputs("hello", f), fclose(f);
    check_bad_file(ckpt_name(dir, 40), out, "not safetensors");
}

/* A copy of src with one weight's shape transposed (same bytes, so the checksum still holds),
 * or with an empty foreign tensor added. */
static void rewrite(const char *src, const char *dst, const char *transpose, bool add_junk) {
    static const char *const keys[] = {"format", "step", "skips", "seed", "loader_epoch",
                                       "loader_batch", "optimizer", "config_hash", "data_sha256",
                                       "config", "vdvae_version"};
    vd_err err = {0};
    vd_st *st = NULL;
    vd_st_writer *w = NULL;
    CHECK(vd_st_open(src, &st, &err) == VD_OK && vd_st_writer_init(&w, &err) == VD_OK);
    if (!st || !w) return;
    for (int i = 0; i < vd_st_count(st); i++) {
        const vd_st_tensor *t = vd_st_at(st, i);
        int64_t shape[VD_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (!strcmp(t->name, transpose)) shape[0] = t->shape[1], shape[1] = t->shape[0];
        CHECK(vd_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data, &err) == VD_OK);
    }
    const int64_t zero[1] = {0};
    if (add_junk) CHECK(vd_st_writer_add(w, "junk", VD_DTYPE_F32, 1, zero, NULL, &err) == VD_OK);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECK(vd_st_writer_meta(w, keys[i], vd_st_meta(st, keys[i]), &err) == VD_OK);
    CHECKF(vd_st_writer_finish(w, dst, &err) == VD_OK, "%s", err.msg);
    vd_st_writer_free(w);
    vd_st_close(st);
}

static void test_crafted(float *const b[4]) {
    const char *dir = tp("craft"), *bad = tp("craft/bad.safetensors");
    vd_err err = {0};
    CHECK(save(dir, (const float *const *)b, 10, 3, &err) == VD_OK);
    const vd_param *w = NULL;
    for (int i = 0; i < arch.n_params && !w; i++)
        if (arch.params[i].ndim == 4 && arch.params[i].shape[0] != arch.params[i].shape[1])
            w = &arch.params[i];
    CHECK(w != NULL);
    if (!w) return;
    char name[VD_PARAM_NAME_MAX + 8];
    snprintf(name, sizeof name, "ema.%s", w->name);
    rewrite(ckpt_name(dir, 10), bad, name, false);
    vd_status r = vd_ckpt_load(bad, &hp, &arch, b[0], b[1], b[2], b[3], NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, name) && strstr(err.msg, "expected F32 [") &&
               strstr(err.msg, "offset"),
           "%s", err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    rewrite(ckpt_name(dir, 10), bad, "", true);
    r = vd_ckpt_load(bad, &hp, &arch, b[0], b[1], b[2], b[3], NULL, &err);
    CHECKF(r == VD_ERR_INVALID && strstr(err.msg, "'junk' is not ours"), "%s", err.msg);
    rewrite(ckpt_name(dir, 10), bad, "", false); /* unchanged: loads */
    r = vd_ckpt_load(bad, &hp, &arch, b[0], b[1], b[2], b[3], NULL, &err);
    CHECKF(r == VD_OK, "%s", err.msg);
}

/* ---- unwritable places ----------------------------------------------------------------------- */

static void test_unwritable(float *const in[4], float *const out[4]) {
    const char *dir = tp("unw");
    vd_err err = {0};
    for (int k = 0; k < 4; k++) fill_value(in[k], 1.0f + (float)k);
    CHECK(save(dir, (const float *const *)in, 10, 3, &err) == VD_OK);
    for (int k = 0; k < 4; k++) fill_value(in[k], 2.0f);
    /* below a regular file */
    char below[600];
    snprintf(below, sizeof below, "%s/checkpoint-0000000010.safetensors/sub", dir);
    vd_status r = save(below, (const float *const *)in, 20, 3, &err);
    CHECKF(r == VD_ERR_IO && strstr(err.msg, below) && strstr(err.msg, "Not a directory"), "%s",
           err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    /* the target name taken by a directory: the rename fails, the temporary file goes */
    CHECK(mkdir(ckpt_name(dir, 20), 0777) == 0);
    r = save(dir, (const float *const *)in, 20, 3, &err);
    CHECKF(r == VD_ERR_IO && strstr(err.msg, "step 20") && strstr(err.msg, "rename"), "%s",
           err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    CHECK(count_files(dir, ".tmp.") == 0);
    /* a read-only directory (root writes anyway) */
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0555) == 0);
        r = save(dir, (const float *const *)in, 30, 3, &err);
        CHECKF(r == VD_ERR_IO && strstr(err.msg, "temporary"), "%s", err.msg);
        CHECK(chmod(dir, 0755) == 0);
    }
    char latest[600];
    bool found = false;
    CHECK(vd_ckpt_find_latest_cb(dir, latest, sizeof latest, &found, NULL, NULL, &err) == VD_OK &&
          found && !strcmp(latest, ckpt_name(dir, 10)));
    CHECK(vd_ckpt_load(latest, &hp, &arch, out[0], out[1], out[2], out[3], NULL, &err) == VD_OK);
    CHECK(all_equal(out[0], 1.0f) && all_equal(out[3], 4.0f));
    rmdir(ckpt_name(dir, 20));
}

/* A full disk, as a file size limit: writes fail with EFBIG instead of ENOSPC. */
static void test_full_disk(float *const in[4], float *const out[4]) {
    const char *dir = tp("full");
    vd_err err = {0};
    for (int k = 0; k < 4; k++) fill_value(in[k], 5.0f + (float)k);
    CHECK(save(dir, (const float *const *)in, 10, 3, &err) == VD_OK);
    for (int k = 0; k < 4; k++) fill_value(in[k], -1.0f);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {256 << 10, 256 << 10};
        setrlimit(RLIMIT_FSIZE, &rl);
        vd_status r = save(dir, (const float *const *)in, 20, 3, &err);
        bool ok = r == VD_ERR_IO && strstr(err.msg, "write failed") &&
                  strstr(err.msg, "File too large") && strstr(err.msg, "step 20");
        fprintf(stderr, "  (expected, child) %s\n", err.msg);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    CHECK(!file_exists(ckpt_name(dir, 20)) && count_files(dir, ".tmp.") == 0);
    char latest[600];
    bool found = false;
    CHECK(vd_ckpt_find_latest_cb(dir, latest, sizeof latest, &found, NULL, NULL, &err) == VD_OK &&
          found && !strcmp(latest, ckpt_name(dir, 10)));
    CHECK(vd_ckpt_load(latest, &hp, &arch, out[0], out[1], out[2], out[3], NULL, &err) == VD_OK);
    CHECK(all_equal(out[0], 5.0f) && all_equal(out[3], 8.0f));
}

/* ---- SIGKILL while saving -------------------------------------------------------------------- */

/* Every tensor of kind k at step t holds t * 4 + k: a file mixing two saves shows. */
static float stamp(int64_t step, int k) { return (float)(step * 4 + k); }

static _Noreturn void writer_loop(const char *dir, int64_t step, float *const b[4]) {
    vd_err err = {0};
    for (;; step++) {
        for (int k = 0; k < 4; k++) fill_value(b[k], stamp(step, k));
        if (save(dir, (const float *const *)b, step, 3, &err)) {
            fprintf(stderr, "writer: %s\n", err.msg);
            _exit(1);
        }
    }
}

/* The newest checkpoint after a kill: it loads, is internally consistent, is no temp file. */
static int64_t check_after_kill(const char *dir, float *const out[4], int64_t prev) {
    vd_err err = {0};
    char latest[600];
    bool found = false;
    count_warnings = 0;
    vd_status r =
        vd_ckpt_find_latest_cb(dir, latest, sizeof latest, &found, count_warn, NULL, &err);
    CHECKF(r == VD_OK && found, "%s", err.msg);
    if (r || !found) return prev;
    CHECK(count_warnings == 0 && !strstr(latest, ".tmp"));
    vd_ckpt_state s;
    r = vd_ckpt_load(latest, &hp, &arch, out[0], out[1], out[2], out[3], &s, &err);
    CHECKF(r == VD_OK, "%s", err.msg);
    CHECK(!strcmp(latest, ckpt_name(dir, s.step)) && s.step >= prev &&
          s.loader_batch == (uint64_t)s.step);
    for (int k = 0; k < 4; k++)
        CHECKF(all_equal(out[k], stamp(s.step, k)), "%s: buffer %d not all %g", latest, k,
               stamp(s.step, k));
    return s.step;
}

/* Kill a writer that saves in a loop: even kills wait for a temporary file of its own to exist
 * and kill at once (a kill inside a write, which the newest complete checkpoint must survive),
 * odd ones after a random 0-50 ms (a seed from the clock, printed, so a failure can be
 * replayed with VD_KILL_SEED). Kills whose temporary is still there afterwards landed
 * mid-write: some must have, or the test proved nothing. */
static int writer_temps(const char *dir, pid_t writer) {
    char part[32];
    snprintf(part, sizeof part, ".tmp.%ld.", (long)writer); /* core/fs.c's temporary names */
    return count_files(dir, part);
}

static bool wait_for_temp(const char *dir, pid_t writer) {
    for (int w = 0; w < 200000; w++) {
        if (writer_temps(dir, writer) > 0) return true;
        if (waitpid(writer, NULL, WNOHANG) == writer) return false;
    }
    return false;
}

static void test_kill(float *const b[4], float *const out[4]) {
    const char *dir = tp("kill");
    vd_err err = {0};
    for (int k = 0; k < 4; k++) fill_value(b[k], stamp(0, k));
    CHECK(save(dir, (const float *const *)b, 0, 3, &err) == VD_OK);
    const char *env = getenv("VD_KILL_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    fprintf(stderr, "kill test: seed %" PRIu64 " (VD_KILL_SEED to replay)\n", seed);
    int64_t step = 0, first = 0;
    int mid_write = 0, kills = 30;
    for (int i = 0; i < kills; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) writer_loop(dir, step + 1, b);
        if (i % 2 == 0) {
            CHECKF(wait_for_temp(dir, pid), "kill %d: the writer made no temporary file", i);
        } else {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            nanosleep(&(struct timespec){0, (long)((seed >> 33) % 50000) * 1000L}, NULL); /* 0 to 50 ms */
        }
        /* however slow the disk, the last writer gets one save done before it dies */
        for (int w = 0; i == kills - 1 && w < 4000 && !file_exists(ckpt_name(dir, step + 1)); w++)
            nanosleep(&(struct timespec){0, 5000000L}, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
        mid_write += writer_temps(dir, pid) > 0; /* its own: not one an earlier writer left */
        step = check_after_kill(dir, out, step);
    }
    fprintf(stderr, "kill test: %d kills, steps %" PRId64 " -> %" PRId64 ", %d of them inside a write\n", kills,
            first, step, mid_write);
    CHECKF(mid_write >= kills / 4, "only %d of %d kills landed inside a write", mid_write, kills);
    CHECK(step > 0);
    /* the next save removes what killed writers left, and prunes to 3 */
    for (int k = 0; k < 4; k++) fill_value(b[k], stamp(step + 1, k));
    CHECK(save(dir, (const float *const *)b, step + 1, 3, &err) == VD_OK);
    CHECK(count_files(dir, ".tmp.") == 0 && count_files(dir, "checkpoint-") == 3);
}

/* ---- the safetensors package ----------------------------------------------------------------- */

static const char *py_check =
    "import sys\n"
    "import numpy as np\n"
    "from safetensors import safe_open\n"
    "ref = {}\n"
    "for line in open(sys.argv[2]):\n"
    "    name, off, *shape = line.split()\n"
    "    ref[name] = (int(off), tuple(int(s) for s in shape))\n"
    "with safe_open(sys.argv[1], framework='numpy') as f:\n"
    "    meta = f.metadata()\n"
    "    assert meta['format'] == 'vdvae-checkpoint-1' and meta['step'] == '77', meta\n"
    "    assert len(meta['config_hash']) == 64 and '[model]' in meta['config'], meta\n"
    "    keys = list(f.keys())\n"
    "    assert len(keys) == 4 * len(ref), (len(keys), len(ref))\n"
    "    for k, prefix in enumerate(['model.', 'ema.', 'opt.m.', 'opt.u.']):\n"
    "        for name, (off, shape) in ref.items():\n"
    "            t = f.get_tensor(prefix + name)\n"
    "            assert t.dtype == np.float32 and t.shape == shape, (name, t.dtype, t.shape)\n"
    "            want = (off + np.arange(t.size, dtype=np.float64)) * (1 - 2 * (k % 2))"
    " + k * 0.25\n"
    "            assert np.array_equal(t.ravel(), want.astype(np.float32)), name\n"
    "print('python: safetensors package reads the checkpoint:', len(keys), 'tensors')\n";

static void test_python(float *const b[4]) {
    const char *py = vd_test_python();
    CHECKF(nf <= (1 << 22), "%lld floats: the values below stay exact only up to 2^22", (long long)nf);
    if (nf > (1 << 22)) return;
    for (int k = 0; k < 4; k++)
        for (int64_t i = 0; i < nf; i++)
            b[k][i] = (float)i * (float)(1 - 2 * (k % 2)) + (float)k * 0.25f;
    const char *dir = tp("py"), *manifest = tp("py_manifest.txt"), *script = tp("py_check.py");
    vd_err err = {0};
    CHECK(save(dir, (const float *const *)b, 77, 3, &err) == VD_OK);
    FILE *m = fopen(manifest, "w"), *s = fopen(script, "w");
    CHECK(m && s);
    if (!m || !s) return;
    fputs(py_check, s);
    fclose(s);
    for (int i = 0; i < arch.n_params; i++) {
        const vd_param *p = &arch.params[i];
        fprintf(m, "%s %" PRId64, p->name, p->offset);
        for (int d = 0; d < p->ndim; d++) fprintf(m, " %" PRId64, p->shape[d]);
        fputc('\n', m);
    }
    fclose(m);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s %s %s", py, script, ckpt_name(dir, 77), manifest);
    CHECKF(system(cmd) == 0, "%s", cmd);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(int argc, char **argv) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) VD_SETUP_FAIL("VD_SOURCE_DIR is not set (run through ctest)");
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "safetensors_py")) return vd_test_bad_mode("test_checkpoint", mode);
    int rc = mode ? vd_test_need_python_modules("numpy safetensors") : 0;
    if (rc) return rc;
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/egs/fashion_mnist.cfg", src);
    vd_err err = {0};
    if (vd_hparams_load(&hp, cfg, NULL, 0, &err) || vd_arch_build(&arch, &hp, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    nf = arch.total_floats;
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    float *in[4], *out[4];
    for (int k = 0; k < 4; k++) in[k] = alloc_buf(), out[k] = alloc_buf();
    if (mode) {
        test_python(in);
    } else {
        test_hash();
        test_round_trip(in, out);
        test_prune(in);
        test_other_config(in);
        test_truncated(in, out);
        test_crafted(in);
        test_unwritable(in, out);
        test_full_disk(in, out);
        test_kill(in, out);
    }
    for (int k = 0; k < 4; k++) free(in[k]), free(out[k]);
    vd_arch_free(&arch);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return vd_test_result("test_checkpoint");
}
