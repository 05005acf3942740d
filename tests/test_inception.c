/* The FID Inception network (src/fid/inception.c). Without an argument, its plumbing, with no
 * Python: the tensors a weights file must hold; wrong files refused, naming the file and the
 * tensor at fault; and, on random weights written here, what its forward must give (finite,
 * non-negative pool3, one image as in a batch, grey images as their RGB repeat, logits as the
 * fc of pool3). "pytorch_fid": against pytorch-fid's own InceptionV3 given the same random
 * weights (tools/fid_weights.py --random, loaded where pytorch-fid would download) and images,
 * pool3 and logits within 1e-4 (max-abs over max-norm) on cpu and, for one image, cpu_ref;
 * "pytorch_fid_cuda_emu" the same on the CUDA kernels as host loops (one image: loops are
 * slow), "pytorch_fid_cuda" on a GPU (skipped without one). The cpu checks need oneDNN: without
 * it they report skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/ops.h"
#include "fid/inception.h"
#include "vd_test.h"
#include "vd_test_backends.h"
#include "vdvae/io.h"

#define TOL 1e-4
#define N_TENSORS 472

/* cpu_ref's whole network takes ~10 s as plain loops, two minutes at -O0 under AddressSanitizer
 * (make asan): there the cpu run covers the same network code, and test_backend_ops the ops. */
#if defined(__SANITIZE_ADDRESS__)
#define CPU_REF_NETWORK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CPU_REF_NETWORK 0
#endif
#endif
#ifndef CPU_REF_NETWORK
#define CPU_REF_NETWORK 1
#endif

static char dir[] = "/tmp/vd_inception_XXXXXX";

static const char *in_dir(const char *name) { return vd_test_path(dir, name); }

static double max_rel(const float *got, const float *want, int64_t n) {
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        diff = isnan(d) ? INFINITY : fmax(diff, d);
        scale = fmax(scale, fabs(want[i]));
    }
    return diff / scale;
}

/* ---- weights files written here ---- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static float urand(double lo, double hi) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)(lo + (hi - lo) * ((double)(rng >> 11) * 0x1.0p-53));
}

static bool ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static int64_t numel_of(const vd_inception_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Values as tools/fid_weights.py --random draws them (He-scaled convs, batch norms away from
 * identity), so the signal keeps its scale through the network. */
static void fill(const vd_inception_tensor *t, float *v) {
    int64_t n = numel_of(t);
    double he = t->ndim == 4 ? sqrt(6.0 / (t->shape[1] * t->shape[2] * t->shape[3])) : 0;
    for (int64_t i = 0; i < n; i++) {
        if (t->ndim == 4) v[i] = urand(-he, he);
        else if (ends_with(t->name, ".bn.weight")) v[i] = urand(0.7, 1.3);
        else if (ends_with(t->name, ".running_var")) v[i] = urand(0.6, 1.6);
        else if (strstr(t->name, ".bn.")) v[i] = urand(-0.2, 0.2);
        else v[i] = urand(-1, 1) / sqrt(2048.0);
    }
}

typedef enum mutation { MUT_NONE, MUT_SHAPE, MUT_NEG_VAR, MUT_NAN } mutation;

/* The first `count` tensors of a weights file into path, `mut` applied to the first layer's. */
static void write_weights(const char *path, int count, mutation mut) {
    vd_inception_tensor t[N_TENSORS];
    float *data[N_TENSORS] = {0};
    vd_st_writer *w = NULL;
    vd_err err = {0};
    CHECK(vd_inception_tensors(t, N_TENSORS) == N_TENSORS);
    CHECKF(vd_st_writer_init(&w, &err) == VD_OK, "%s", err.msg);
    for (int i = 0; i < count && w; i++) {
        if (mut == MUT_SHAPE && i == 0) t[i].shape[2] = t[i].shape[3] = 5;
        data[i] = malloc((size_t)numel_of(&t[i]) * sizeof(float));
        fill(&t[i], data[i]);
        if (mut == MUT_NEG_VAR && ends_with(t[i].name, "running_var")) data[i][3] = -0.5f;
        if (mut == MUT_NAN && i == 2) data[i][1] = NAN;
        CHECKF(vd_st_writer_add(w, t[i].name, VD_DTYPE_F32, t[i].ndim, t[i].shape, data[i], &err) ==
                   VD_OK, "%s", err.msg);
    }
    if (w) CHECKF(vd_st_writer_finish(w, path, &err) == VD_OK, "%s", err.msg);
    vd_st_writer_free(w);
    for (int i = 0; i < count; i++)
        free(data[i]);
}

static void test_tensor_table(void) {
    vd_inception_tensor t[N_TENSORS + 1];
    int n = vd_inception_tensors(t, N_TENSORS + 1);
    CHECKF(n == N_TENSORS, "%d tensors", n);
    CHECK(!strcmp(t[0].name, "Conv2d_1a_3x3.conv.weight") && t[0].ndim == 4 && t[0].shape[0] == 32 &&
          t[0].shape[1] == 3 && t[0].shape[2] == 3 && t[0].shape[3] == 3);
    CHECK(!strcmp(t[n - 2].name, "fc.weight") && t[n - 2].ndim == 2 && t[n - 2].shape[0] == 1008 &&
          t[n - 2].shape[1] == 2048);
    CHECK(!strcmp(t[n - 1].name, "fc.bias") && t[n - 1].shape[0] == 1008);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += numel_of(&t[i]);
    fprintf(stderr, "weights file: %d tensors, %lld floats\n", n, (long long)total);
}

/* ---- wrong files and calls are refused ---- */

static void expect_refused(vd_backend *be, const char *path, const char *tensor, vd_status want) {
    static int dummy;
    vd_inception *net = (vd_inception *)&dummy; /* not NULL: a refused open must clear it */
    vd_err err = {0};
    vd_status s = vd_inception_open(&net, be, path, 1, 32, 32, 3, &err);
    CHECKF(s == want && strstr(err.msg, path) && (!tensor || strstr(err.msg, tensor)),
           "%s: status %d (want %d), message '%s'", path, s, want, err.msg);
    CHECK(net == NULL);
}

static void test_refusals(void) {
    vd_backend *be = NULL;
    vd_err err = {0};
    CHECKF(vd_backend_create_cpu_ref(&be, &err) == VD_OK, "%s", err.msg);
    if (!be) return;
    expect_refused(be, in_dir("absent.safetensors"), NULL, VD_ERR_IO);
    FILE *f = fopen(in_dir("text.safetensors"), "w");
    if (f) fputs("not a safetensors file at all, just some text\n", f), fclose(f);
    expect_refused(be, in_dir("text.safetensors"), NULL, VD_ERR_INVALID);
    write_weights(in_dir("three.safetensors"), 3, MUT_NONE);
    expect_refused(be, in_dir("three.safetensors"), "Conv2d_1a_3x3.bn.running_mean", VD_ERR_INVALID);
    write_weights(in_dir("shape.safetensors"), 5, MUT_SHAPE);
    expect_refused(be, in_dir("shape.safetensors"), "Conv2d_1a_3x3.conv.weight", VD_ERR_INVALID);
    write_weights(in_dir("negvar.safetensors"), 5, MUT_NEG_VAR);
    expect_refused(be, in_dir("negvar.safetensors"), "Conv2d_1a_3x3.bn.running_var", VD_ERR_INVALID);
    write_weights(in_dir("nan.safetensors"), 5, MUT_NAN);
    expect_refused(be, in_dir("nan.safetensors"), "Conv2d_1a_3x3.bn.bias", VD_ERR_INVALID);
    vd_inception *net = NULL;
    CHECK(vd_inception_open(&net, be, in_dir("w.safetensors"), 1, 32, 32, 2, &err) == VD_ERR_INVALID);
    CHECK(vd_inception_open(&net, be, in_dir("w.safetensors"), 0, 32, 32, 3, &err) == VD_ERR_INVALID);
    CHECK(net == NULL);
    vd_backend_destroy(be);
}

/* ---- forward ---- */

/* pool3 and logits of n host images (side x side x c, values in [-1, 1]) through a network
 * opened on be for `batch`. */
static vd_status forward(vd_backend *be, const char *weights, int batch, int side, int c,
                         const float *host, int n, float *pool3, float *logits, vd_err *err) {
    vd_inception *net = NULL;
    vd_status s = vd_inception_open(&net, be, weights, batch, side, side, c, err);
    if (s != VD_OK) return s;
    size_t bytes = (size_t)n * side * side * c * sizeof(float);
    float *images = be->i->alloc(be, bytes);
    if (images) {
        be->i->upload(be, images, host, bytes);
        s = vd_inception_run(net, images, n, pool3, logits, err);
        be->i->dealloc(be, images);
    } else {
        s = vd_errorf(err, VD_ERR_NOMEM, "no memory for the images");
    }
    vd_inception_close(net);
    return s;
}

static float *random_images(int n, int side, int c) {
    size_t k = (size_t)n * side * side * c;
    float *x = malloc(k * sizeof *x);
    for (size_t i = 0; i < k; i++)
        x[i] = urand(-1, 1);
    return x;
}

/* logits = fc.weight pool3 (no fc.bias: the IS's unbiased logits), from the file, in double. */
static void check_fc(const char *weights, const float *pool3, const float *logits, int n) {
    vd_st *st = NULL;
    vd_err err = {0};
    CHECKF(vd_st_open(weights, &st, &err) == VD_OK, "%s", err.msg);
    if (!st) return;
    const float *w = vd_st_find(st, "fc.weight")->data;
    float *want = malloc((size_t)n * VD_FID_CLASSES * sizeof *want);
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < VD_FID_CLASSES; o++) {
            double sum = 0;
            for (int k = 0; k < VD_FID_DIMS; k++)
                sum += (double)w[(int64_t)o * VD_FID_DIMS + k] * pool3[(int64_t)i * VD_FID_DIMS + k];
            want[(int64_t)i * VD_FID_CLASSES + o] = (float)sum;
        }
    }
    double e = max_rel(logits, want, (int64_t)n * VD_FID_CLASSES);
    CHECKF(e <= 1e-5, "logits against fc(pool3): relative error %.3g", e);
    free(want);
    vd_st_close(st);
}

static void test_forward(vd_backend *be) {
    const char *w = in_dir("w.safetensors");
    vd_err err = {0};
    float *x = random_images(3, 32, 3), pool3[3 * VD_FID_DIMS], logits[3 * VD_FID_CLASSES];
    CHECKF(forward(be, w, 3, 32, 3, x, 3, pool3, logits, &err) == VD_OK, "%s", err.msg);
    bool ok = true;
    for (int i = 0; i < 3 * VD_FID_DIMS; i++)
        ok = ok && isfinite(pool3[i]) && pool3[i] >= 0; /* averages of ReLU outputs */
    CHECKF(ok, "pool3 has negative or non-finite features");
    check_fc(w, pool3, logits, 3);

    float one[VD_FID_DIMS]; /* image 0 alone in a network for 2 */
    CHECKF(forward(be, w, 2, 32, 3, x, 1, one, NULL, &err) == VD_OK, "%s", err.msg);
    double e = max_rel(one, pool3, VD_FID_DIMS);
    CHECKF(e <= 1e-5, "one image alone against in a batch: relative error %.3g", e);

    /* grey images against the same images as RGB with the channel repeated */
    float *grey = random_images(2, 28, 1), *rgb = malloc(2 * 28 * 28 * 3 * sizeof *rgb);
    for (int i = 0; i < 2 * 28 * 28 * 3; i++)
        rgb[i] = grey[i / 3];
    float pg[2 * VD_FID_DIMS], pc[2 * VD_FID_DIMS];
    CHECKF(forward(be, w, 2, 28, 1, grey, 2, pg, NULL, &err) == VD_OK, "%s", err.msg);
    CHECKF(forward(be, w, 2, 28, 3, rgb, 2, pc, NULL, &err) == VD_OK, "%s", err.msg);
    e = max_rel(pg, pc, 2 * VD_FID_DIMS);
    CHECKF(e <= 1e-5, "grey against RGB repeated: relative error %.3g", e);
    fprintf(stderr, "forward: one image vs batch %.2g, grey vs RGB %.2g\n", max_rel(one, pool3, VD_FID_DIMS), e);

    vd_inception *net = NULL;
    CHECKF(vd_inception_open(&net, be, w, 2, 32, 32, 3, &err) == VD_OK, "%s", err.msg);
    CHECK(vd_inception_run(net, x, 3, pool3, NULL, &err) == VD_ERR_INVALID); /* more than batch */
    CHECK(vd_inception_run(net, x, 0, pool3, NULL, &err) == VD_ERR_INVALID);
    vd_inception_close(net);
    free(x), free(grey), free(rgb);
}

/* ---- against pytorch-fid ---- */

static const char *const sets[] = {"8:32:3", "2:28:1", "1:299:3"};
enum { NSETS = sizeof sets / sizeof *sets };

static bool run_python(const char *src) {
    char cmd[16384];
    const char *py = vd_test_python();
    snprintf(cmd, sizeof cmd,
             "'%s' %s/tools/fid_weights.py --random 7 %s >/dev/null && "
             "'%s' %s/tools/fid_weights.py %s %s >/dev/null && "
             "'%s' %s/tests/reference/fid_inception_case.py %s %s --set %s --set %s --set %s",
             py, src, in_dir("w.pth"), py, src, in_dir("w.pth"), in_dir("w.safetensors"), py, src,
             in_dir("w.pth"), in_dir("case.safetensors"), sets[0], sets[1], sets[2]);
    int rc = system(cmd);
    CHECKF(rc == 0, "%s failed", cmd);
    return rc == 0;
}

/* tools/fid_weights.py refuses what is not pytorch-fid's state_dict: exit 2, `words` said. */
static void expect_tool_refusal(const char *py, const char *src, const char *args, const char *words) {
    char cmd[16384], log[4096];
    snprintf(log, sizeof log, "%s", in_dir("tool.log"));
    snprintf(cmd, sizeof cmd, "%s %s/tools/fid_weights.py %s 2>%s", py, src, args, log);
    int rc = system(cmd);
    char msg[2048] = "";
    FILE *f = fopen(log, "r");
    if (f) msg[fread(msg, 1, sizeof msg - 1, f)] = 0, fclose(f);
    CHECKF(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 2 && strstr(msg, words),
           "%s: status %d, stderr '%s' (want exit 2 saying '%s')", cmd, rc, msg, words);
}

static void test_tool_refusals(const char *src) {
    char py[1024], args[8192];
    snprintf(py, sizeof py, "'%s'", vd_test_python());
    snprintf(args, sizeof args, "%s %s", in_dir("case.safetensors"), in_dir("out.safetensors"));
    expect_tool_refusal(py, src, args, "not a PyTorch state_dict");
    snprintf(args, sizeof args, "%s %s", in_dir("other.pth"), in_dir("out.safetensors"));
    char make[8192];
    snprintf(make, sizeof make, "%s -c \"import torch; torch.save({'fc.weight': torch.zeros(1000, 2048)}, "
             "'%s')\"", py, in_dir("other.pth"));
    CHECKF(system(make) == 0, "%s failed", make);
    expect_tool_refusal(py, src, args, "'Conv2d_1a_3x3.conv.weight' is missing");
    /* python without its site packages: no torch, no numpy */
    snprintf(py, sizeof py, "'%s' -S", vd_test_python());
    snprintf(args, sizeof args, "--random 1 %s", in_dir("x.pth"));
    expect_tool_refusal(py, src, args, "torch");
}

/* Set k of the case on be (its first `limit` images): pool3 and logits against pytorch-fid's. */
static void compare_set(vd_backend *be, const char *label, const vd_st *st, int k, int limit) {
    int n, side, c;
    sscanf(sets[k], "%d:%d:%d", &n, &side, &c);
    n = n < limit ? n : limit;
    char name[32];
    snprintf(name, sizeof name, "images.%d", k);
    const vd_st_tensor *ti = vd_st_find(st, name);
    snprintf(name, sizeof name, "pool3.%d", k);
    const vd_st_tensor *tp = vd_st_find(st, name);
    snprintf(name, sizeof name, "logits.%d", k);
    const vd_st_tensor *tl = vd_st_find(st, name);
    CHECKF(ti && tp && tl, "set %d missing from the case", k);
    if (!ti || !tp || !tl) return;
    int64_t px = (int64_t)n * side * side * c;
    float *x = malloc((size_t)px * sizeof *x), *pool3 = malloc((size_t)n * VD_FID_DIMS * sizeof(float));
    float *logits = malloc((size_t)n * VD_FID_CLASSES * sizeof(float));
    for (int64_t i = 0; i < px; i++)
        x[i] = 2 * ((const float *)ti->data)[i] - 1; /* pytorch-fid's 2x - 1, before the resize */
    vd_err err = {0};
    vd_status s = forward(be, in_dir("w.safetensors"), n, side, c, x, n, pool3, logits, &err);
    CHECKF(s == VD_OK, "%s: %s", label, err.msg);
    if (s == VD_OK) {
        double ep = max_rel(pool3, tp->data, (int64_t)n * VD_FID_DIMS);
        double el = max_rel(logits, tl->data, (int64_t)n * VD_FID_CLASSES);
        CHECKF(ep <= TOL && el <= TOL, "%s set %s: pool3 %.3g, logits %.3g relative", label, sets[k], ep, el);
        fprintf(stderr, "%s, %d images %dx%dx%d: pool3 relative error %.2e, logits %.2e\n", label,
                n, side, side, c, ep, el);
    }
    free(x), free(pool3), free(logits);
}

/* ---- the ops the network adds, against torch's own ---- */

/* A case's NHWC tensor into backend memory. */
static float *upload(vd_backend *be, const vd_st_tensor *t, vd_tensor *out) {
    float *d = be->i->alloc(be, t->nbytes);
    if (d) be->i->upload(be, d, t->data, t->nbytes);
    *out = vd_tensor_make(d, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2], (int)t->shape[3]);
    return d;
}

/* Op case `name` (.x in, .y torch's out) on be: y as the op computes it against torch's; the
 * relative error (0 when the case is absent). */
static double op_case(vd_backend *be, const vd_st *st, const char *name, const vd_pool_desc *p) {
    char key[64];
    snprintf(key, sizeof key, "%s.x", name);
    const vd_st_tensor *tx = vd_st_find(st, key);
    snprintf(key, sizeof key, "%s.y", name);
    const vd_st_tensor *ty = vd_st_find(st, key);
    if (!tx || !ty) return 0;
    double e = 0;
    vd_tensor x, y;
    float *dx = upload(be, tx, &x), *dy = upload(be, ty, &y), *got = malloc(ty->nbytes);
    if (dx && dy && got) {
        be->i->fill(be, &y, -777.0f);
        if (p) be->i->pool_fwd(be, p, &x, &y);
        else be->i->resize_bilinear(be, &x, &y);
        be->i->download(be, got, dy, ty->nbytes);
        vd_err err = {0};
        CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", name, err.msg);
        e = max_rel(got, ty->data, ty->numel);
        double tol = p && p->kind == VD_POOL_MAX ? 0 : 1e-6;
        CHECKF(e <= tol, "%s [%s]: relative error %.3g against torch's", name, be->i->name, e);
    }
    free(got);
    if (dx) be->i->dealloc(be, dx);
    if (dy) be->i->dealloc(be, dy);
    return e;
}

/* Every resize.<k> and pool.<k> of the case (the pools' geometry in its metadata). */
static void test_ops(vd_backend *be, const vd_st *st) {
    char name[32];
    int k = 0;
    double resize = 0, pool = 0;
    for (; snprintf(name, sizeof name, "resize.%d.x", k), vd_st_find(st, name); k++) {
        snprintf(name, sizeof name, "resize.%d", k);
        resize = fmax(resize, op_case(be, st, name, NULL));
    }
    const char *pools = vd_st_meta(st, "pools");
    CHECKF(k > 0 && pools, "the case has no op cases");
    char kind[8];
    int kernel, stride, pad, used;
    for (k = 0; pools && sscanf(pools, " %7[a-z]:%d:%d:%d%n", kind, &kernel, &stride, &pad, &used) == 4;
         k++, pools += used) {
        vd_pool_desc p = {!strcmp(kind, "max") ? VD_POOL_MAX : VD_POOL_AVG, kernel, kernel, stride,
                          pad, pad, pad, pad};
        snprintf(name, sizeof name, "pool.%d", k);
        pool = fmax(pool, op_case(be, st, name, &p));
    }
    fprintf(stderr, "%s: resize_bilinear against torch's F.interpolate: worst relative error "
            "%.2e; pool_fwd against F.max_pool2d / F.avg_pool2d: %.2e\n", be->i->name, resize, pool);
}

/* cpu (with cpu_ref on one image) or the CUDA backend (vd_test_kind_now) against pytorch-fid. */
static int test_pytorch_fid(const char *src, vd_backend *cpu) {
    int rc = vd_test_need_python_modules("torch numpy torchvision pytorch_fid");
    if (rc) return rc;
    vd_backend *be = cpu, *ref = NULL;
    vd_err err = {0};
    if (vd_test_kind_now != VD_TEST_CPU) {
        vd_status s = vd_test_open_backend(&be, 0, &err);
        if (s == VD_ERR_UNSUPPORTED) return vd_test_backend_skip(&err);
        CHECKF(s == VD_OK, "%s", err.msg);
    } else if (CPU_REF_NETWORK) {
        CHECKF(vd_backend_create_cpu_ref(&ref, &err) == VD_OK, "%s", err.msg);
    }
    vd_st *st = NULL;
    if (run_python(src)) CHECKF(vd_st_open(in_dir("case.safetensors"), &st, &err) == VD_OK, "%s", err.msg);
    vd_backend *oracle = NULL; /* the ops on cpu_ref: cheap even under sanitizers */
    CHECKF(vd_backend_create_cpu_ref(&oracle, &err) == VD_OK, "%s", err.msg);
    if (st && oracle) test_ops(oracle, st);
    vd_backend_destroy(oracle);
    if (st && be) test_ops(be, st);
    if (st && ref) compare_set(ref, "cpu_ref", st, 0, 1); /* slow loops: one image */
    if (st && vd_test_kind_now == VD_TEST_CPU) test_tool_refusals(src);
    int limit = vd_test_kind_now == VD_TEST_CUDA_EMU ? 1 : 1 << 30;
    for (int k = 0; k < (limit == 1 ? 1 : NSETS) && st && be; k++)
        compare_set(be, vd_test_backend_name(), st, k, limit);
    vd_st_close(st);
    vd_backend_destroy(ref);
    if (be != cpu) vd_backend_destroy(be);
    return 0;
}

static void cleanup(void) {
    static const char *const files[] = {"w.safetensors", "w.pth", "case.safetensors", "text.safetensors",
                                        "three.safetensors", "shape.safetensors", "negvar.safetensors",
                                        "nan.safetensors", "tool.log", "other.pth", "out.safetensors",
                                        "x.pth"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(in_dir(files[i]));
    rmdir(dir);
}

int main(int argc, char **argv) {
    const char *src = getenv("VD_SOURCE_DIR"), *mode = argc > 1 ? argv[1] : "";
    if (!src) src = ".";
    bool torch = !strncmp(mode, "pytorch_fid", 11);
    if (!strcmp(mode, "pytorch_fid_cuda_emu")) vd_test_kind_now = VD_TEST_CUDA_EMU;
    else if (!strcmp(mode, "pytorch_fid_cuda")) vd_test_kind_now = VD_TEST_CUDA;
    else if (*mode && strcmp(mode, "pytorch_fid")) return vd_test_bad_mode("test_inception", mode);
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot make a temporary directory");
    vd_backend *cpu = NULL;
    vd_err err = {0};
    vd_status cs = vd_backend_create_cpu(&cpu, 2, &err);
    CHECKF(cs == VD_OK || cs == VD_ERR_UNSUPPORTED, "creating cpu: %s", err.msg);
    int rc = 0;
    if (torch) {
        rc = test_pytorch_fid(src, cpu);
    } else {
        test_tensor_table();
        write_weights(in_dir("w.safetensors"), N_TENSORS, MUT_NONE);
        test_refusals();
        if (cpu) test_forward(cpu);
    }
    vd_backend_destroy(cpu);
    cleanup();
    if (rc) return rc;
    rc = vd_test_result(torch ? "test_inception pytorch_fid" : "test_inception");
    if (rc || cpu || vd_test_kind_now != VD_TEST_CPU) return rc;
    return vd_test_skip(VD_TEST_ONEDNN); /* cpu_ref parts passed; cpu unchecked */
}
