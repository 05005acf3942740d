/* Importing a reference checkpoint is exact: the twin trains two Adamax steps and saves in the
 * reference layout, tools/convert_checkpoint.py converts it, vd_ckpt_load reads it, and our
 * forward on the twin's batch and noise gives PyTorch's losses to 1e-4. Needs python3-torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vd_test.h"
#include "vd_ref_case.h"
#include "vdvae/checkpoint.h"
#include "vdvae/io.h"

#define TOL 1e-4
#define CFG "tests/reference/configs/tiny_rgb.cfg"

static void check_close(const char *what, double got, double want) {
    double rel = fabs(got - want) / (fabs(want) > 1e-6 ? fabs(want) : 1e-6);
    CHECKF(rel <= TOL, "%s: got %.8g want %.8g (rel %.2e)", what, got, want, rel);
    fprintf(stderr, "%s: ours %.8g, PyTorch %.8g (rel %.2e)\n", what, got, want, rel);
}

/* The converted checkpoint through the real loader, every kind of tensor and the counters. */
static float *load_converted(const char *path, const vd_hparams *hp, const vd_arch *a) {
    size_t n = (size_t)a->total_floats;
    float *p = malloc(n * sizeof *p), *ema = malloc(n * sizeof *ema), *m = malloc(n * sizeof *m),
          *u = malloc(n * sizeof *u);
    vd_ckpt_state s;
    vd_err err = {0};
    vd_status r = vd_ckpt_load(path, hp, a, p, ema, m, u, &s, &err);
    CHECKF(r == VD_OK, "%s", err.msg);
    CHECKF(!r && s.step == 2 && s.skips == 0, "step %lld skips %lld", (long long)s.step, (long long)s.skips);
    size_t moved = 0, positive = 0;
    for (size_t i = 0; !r && i < n; i++) moved += p[i] != ema[i], positive += u[i] > 0;
    CHECKF(moved > n / 2, "EMA equals the weights in %zu of %zu", n - moved, n);
    CHECKF(positive == n, "%zu of %zu exp_inf entries are not positive", n - positive, n);
    free(ema), free(m), free(u);
    if (r) free(p);
    return r ? NULL : p;
}

static void forward_and_compare(vd_backend *be, const vd_hparams *hp, const vd_arch *arch, const float *params,
                                const vd_st *st) {
    vd_err err = {0};
    vd_net net;
    vd_loss loss;
    int batch = atoi(vd_st_meta(st, "batch")), step = atoi(vd_st_meta(st, "step"));
    vd_net_opts o;
    vd_net_opts_from_hparams(&o, hp, batch);
    CHECKF(vd_net_create(&net, arch, be, &o, &err) == VD_OK, "%s", err.msg);
    CHECK(vd_loss_init(&loss, arch->n_td, &err) == VD_OK);
    be->i->upload(be, net.params, params, (size_t)arch->total_floats * sizeof(float));
    vd_noise *noise = ref_case_forward(&net, hp, st, step, &loss);
    check_close("loss.recon", loss.recon, ref_scalar(st, "loss.recon"));
    check_close("loss.total", loss.total, ref_scalar(st, "loss.total"));
    check_close("loss.nelbo_bits", loss.nelbo, ref_scalar(st, "loss.nelbo_bits"));
    ref_free_noise(be, noise, arch->n_td);
    vd_loss_free(&loss);
    vd_net_free(&net);
}

static int run(const char *cmd) {
    int rc = system(cmd);
    CHECKF(rc == 0, "%s failed", cmd);
    return rc;
}

int main(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    int rc = vd_test_need_python_modules("torch numpy");
    if (rc) return rc;
    const char *py = vd_test_python();
    char dir[] = "/tmp/vd_convert_XXXXXX";
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot make a temporary directory");
    char cfg[4096], cmd[16384], ref[4200], cse[4200], out[4200];
    snprintf(cfg, sizeof cfg, "%s/" CFG, src);
    snprintf(ref, sizeof ref, "%s/ref.pt", dir);
    snprintf(cse, sizeof cse, "%s/case.safetensors", dir);
    snprintf(out, sizeof out, "%s/converted.safetensors", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s/tests/reference/make_ref_checkpoint.py %s %s --case %s --steps 2", py, src,
             cfg, ref, cse);
    if (!run(cmd)) {
        snprintf(cmd, sizeof cmd, "'%s' %s/tools/convert_checkpoint.py ref2vdvae %s %s --config %s > /dev/null", py,
                 src, ref, out, cfg);
        run(cmd);
    }
    vd_err err = {0};
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch arch;
    vd_st *st = NULL;
    CHECKF(vd_hparams_load(hp, cfg, NULL, 0, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_arch_build(&arch, hp, &err) == VD_OK, "%s", err.msg);
    float *params = load_converted(out, hp, &arch);
    CHECKF(vd_st_open(cse, &st, &err) == VD_OK, "%s", err.msg);
    vd_backend *be = NULL;
    if (params && st && vd_backend_create_cpu_ref(&be, &err) == VD_OK) {
        forward_and_compare(be, hp, &arch, params, st);
        vd_backend_destroy(be);
    }
    vd_st_close(st);
    free(params);
    vd_arch_free(&arch);
    free(hp);
    unlink(ref), unlink(cse), unlink(out), rmdir(dir);
    return vd_test_result("test_convert");
}
