/* The whole network against the PyTorch twin (tests/reference/): for each small config the
 * twin writes weights, an input batch, the posterior noise, the loss terms and every
 * parameter gradient; we load them, run forward and backward on each CPU backend, and
 * require 1e-4 relative agreement (per tensor, max-norm). Needs python3 with torch and numpy,
 * and oneDNN for the cpu backend (without it: cpu_ref checked, then reported skipped). With an
 * argument, that backend alone (tests/vd_test_backends.h): cuda_emu or cuda (exact fp32; skipped
 * without a GPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vd_test.h"
#include "vd_test_backends.h"
#include "vd_ref_case.h"
#include "vdvae/io.h"

#define TOL 1e-4

typedef struct ref_case {
    const char *cfg, *extra; /* config file under tests/reference/configs, make_case.py flags */
} ref_case;

static const ref_case cases[] = {
    {"tiny_rgb.cfg", ""},
    {"tiny_rgb.cfg", "--sharp --step 200"},
    {"tiny_grey_logstd.cfg", ""},
    {"tiny_binarized.cfg", "--step 50"},
};

static double max_rel(const float *a, const float *b, int64_t n, double *scale_out) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > diff || isnan(d)) diff = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    if (scale_out) *scale_out = scale;
    return scale > 0 ? diff / scale : diff;
}

static void check_close(const char *what, double got, double want, double tol) {
    double rel = fabs(got - want) / (fabs(want) > 1e-6 ? fabs(want) : 1e-6);
    CHECKF(rel <= tol, "%s: got %.8g want %.8g (rel %.2e)", what, got, want, rel);
}

/* Upload every model.<name> tensor into the flat parameter buffer. */
static void load_params(vd_net *net, const vd_st *st, float *host) {
    const vd_arch *a = net->arch;
    vd_err err;
    char key[160];
    for (int i = 0; i < a->n_params; i++) {
        const vd_param *p = &a->params[i];
        snprintf(key, sizeof key, "model.%s", p->name);
        vd_status s = vd_st_read_f32(st, key, p->ndim, p->shape, p->numel, host + p->offset, &err);
        CHECKF(s == VD_OK, "%s", err.msg);
    }
    net->be->i->upload(net->be, net->params, host, (size_t)a->total_floats * sizeof(float));
}

static void compare_grads(vd_net *net, const vd_st *st, float *host, const char *label) {
    const vd_arch *a = net->arch;
    net->be->i->download(net->be, host, net->grads, (size_t)a->total_floats * sizeof(float));
    char key[160];
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < a->n_params; i++) {
        const vd_param *p = &a->params[i];
        snprintf(key, sizeof key, "grad.%s", p->name);
        float *want = malloc((size_t)p->numel * sizeof *want);
        vd_err err;
        if (vd_st_read_f32(st, key, p->ndim, p->shape, p->numel, want, &err)) {
            CHECKF(0, "%s", err.msg);
            free(want);
            continue;
        }
        double scale, rel = max_rel(host + p->offset, want, p->numel, &scale);
        if (scale == 0) rel = rel > 1e-7 ? 1 : 0; /* exact zeros stay zero */
        CHECKF(rel <= TOL, "%s: %s relative error %.2e (max |grad| %.3g)", label, p->name, rel, scale);
        if (rel > worst) worst = rel, worst_name = p->name;
        free(want);
    }
    fprintf(stderr, "%s: %d gradients, worst relative error %.2e (%s)\n", label, a->n_params, worst, worst_name);
}

/* Prior sampling and output sampling with the twin's noise: logits to 1e-4; sampled pixels
 * to 1e-3, except where a near tie (Gumbel argmax, u < p) may flip: at most 1 in 1000. */
static void check_generation(vd_net *net, const vd_st *st, const char *label) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    int64_t n_temps = 0;
    float temps_level[VD_MAX_LEVELS], *temps = calloc((size_t)a->n_td, sizeof *temps);
    const vd_st_tensor *tt = vd_st_find(st, "gen.temps");
    vd_err err;
    CHECK(tt && tt->numel <= VD_MAX_LEVELS);
    if (!tt || tt->numel > VD_MAX_LEVELS) return free(temps);
    n_temps = tt->numel;
    CHECK(vd_st_read_f32(st, "gen.temps", 1, tt->shape, n_temps, temps_level, &err) == VD_OK);
    for (int i = 0; i < a->n_blocks; i++)
        if (a->blocks[i].kind == VD_BLOCK_DOWN) temps[net->blocks[i].latent] = temps_level[a->blocks[i].level];
    vd_noise *noise = calloc((size_t)a->n_td, sizeof *noise);
    char key[64];
    for (int i = 0; i < a->n_td; i++) {
        snprintf(key, sizeof key, "gen.eps.%d", i);
        noise[i].given = ref_upload_named(be, st, key, NULL);
        CHECKF(noise[i].given, "%s missing", key);
    }
    vd_net_generate(net, temps, noise);
    int64_t n_logits = (int64_t)net->batch * a->image_res * a->image_res * a->out_ch, n_img = 0;
    float *got = malloc((size_t)n_logits * sizeof *got), *want = malloc((size_t)n_logits * sizeof *want);
    be->i->download(be, got, net->logits.data, (size_t)n_logits * sizeof *got);
    const vd_st_tensor *tl = vd_st_find(st, "gen.logits");
    CHECK(tl && tl->numel == n_logits && vd_st_read_f32(st, "gen.logits", tl->ndim, tl->shape, n_logits, want, &err) == VD_OK);
    double rel = max_rel(got, want, n_logits, NULL);
    CHECKF(rel <= TOL, "%s: generation logits relative error %.2e", label, rel);
    vd_noise out_noise = {.given = ref_upload_named(be, st, "gen.u", NULL)};
    const vd_st_tensor *ti = vd_st_find(st, "gen.images");
    CHECK(ti != NULL && out_noise.given != NULL);
    if (ti && out_noise.given) {
        n_img = ti->numel;
        float *dev = be->i->alloc(be, (size_t)n_img * sizeof *dev);
        vd_net_sample_output(net, 1.f, &out_noise, dev);
        be->i->download(be, got, dev, (size_t)n_img * sizeof *got);
        CHECK(vd_st_read_f32(st, "gen.images", ti->ndim, ti->shape, n_img, want, &err) == VD_OK);
        int64_t off = 0;
        for (int64_t j = 0; j < n_img; j++) off += fabsf(got[j] - want[j]) > 1e-3f;
        CHECKF(off * 1000 <= n_img, "%s: %lld of %lld sampled pixels differ", label, (long long)off, (long long)n_img);
        fprintf(stderr, "%s: generation logits rel error %.2e, %lld/%lld sampled pixels differ\n", label, rel,
                (long long)off, (long long)n_img);
        be->i->dealloc(be, dev);
        be->i->dealloc(be, (void *)out_noise.given);
    }
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s", err.msg);
    for (int i = 0; i < a->n_td; i++) be->i->dealloc(be, (void *)noise[i].given);
    free(noise), free(temps), free(got), free(want);
}

static void run_backend(vd_backend *be, const char *cfg_path, const vd_st *st, const char *label) {
    vd_err err = {0};
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch arch;
    vd_net net;
    vd_loss loss;
    CHECKF(vd_hparams_load(hp, cfg_path, NULL, 0, &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_arch_build(&arch, hp, &err) == VD_OK, "%s", err.msg);
    int batch = atoi(vd_st_meta(st, "batch")), step = atoi(vd_st_meta(st, "step"));
    vd_net_opts o;
    vd_net_opts_from_hparams(&o, hp, batch);
    CHECKF(vd_net_create(&net, &arch, be, &o, &err) == VD_OK, "%s", err.msg);
    CHECK(vd_loss_init(&loss, arch.n_td, &err) == VD_OK);
    float *host = malloc((size_t)arch.total_floats * sizeof *host);
    load_params(&net, st, host);
    vd_noise *noise = ref_case_forward(&net, hp, st, step, &loss);
    check_close("loss.total", loss.total, ref_scalar(st, "loss.total"), TOL);
    check_close("loss.recon", loss.recon, ref_scalar(st, "loss.recon"), TOL);
    check_close("loss.beta", loss.beta, ref_scalar(st, "loss.beta"), 1e-6); /* stored as float64, read as float32 */
    check_close("loss.kl", loss.beta * loss.kl_weighted, ref_scalar(st, "loss.kl"), TOL);
    check_close("loss.nelbo_bits", loss.nelbo, ref_scalar(st, "loss.nelbo_bits"), TOL);
    char key[64];
    for (int i = 0; i < arch.n_td; i++) {
        snprintf(key, sizeof key, "kl.%d", i);
        check_close(key, loss.kl[i], ref_scalar(st, key), TOL);
    }
    be->i->fill(be, &(vd_tensor){net.grads, 1, 1, 1, (int)arch.total_floats, arch.total_floats}, 0.f);
    vd_net_backward(&net, noise, loss.recon_scale, loss.kl_scale);
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s", err.msg);
    compare_grads(&net, st, host, label);
    check_generation(&net, st, label);
    fprintf(stderr, "%s: loss %.7f (twin %.7f)\n", label, loss.total, ref_scalar(st, "loss.total"));
    ref_free_noise(be, noise, arch.n_td);
    free(host);
    vd_loss_free(&loss);
    vd_net_free(&net);
    vd_arch_free(&arch);
    free(hp);
}

static int no_cpu; /* the build has no oneDNN */

static void run_case(const char *src, const ref_case *c, const char *dir) {
    char cfg[4096], out[4096], cmd[12288];
    snprintf(cfg, sizeof cfg, "%s/tests/reference/configs/%s", src, c->cfg);
    snprintf(out, sizeof out, "%s/case.safetensors", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s/tests/reference/make_case.py %s %s --batch 2 %s > /dev/null", vd_test_python(),
             src, cfg, out, c->extra);
    CHECKF(system(cmd) == 0, "%s failed", cmd);
    vd_st *st = NULL;
    vd_err err;
    if (vd_st_open(out, &st, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    char label[256];
    vd_backend *be = NULL;
    if (vd_test_kind_now != VD_TEST_CPU) { /* the named backend alone */
        CHECKF(vd_test_open_backend(&be, 0, &err) == VD_OK, "%s", err.msg);
        snprintf(label, sizeof label, "%s %s [%s]", c->cfg, c->extra, vd_test_backend_name());
        if (be) run_backend(be, cfg, st, label), vd_backend_destroy(be);
        vd_st_close(st);
        return;
    }
    CHECKF(vd_backend_create_cpu_ref(&be, &err) == VD_OK, "%s", err.msg);
    snprintf(label, sizeof label, "%s %s [cpu_ref]", c->cfg, c->extra);
    if (be) run_backend(be, cfg, st, label), vd_backend_destroy(be);
    be = NULL;
    vd_status cpu = vd_backend_create_cpu(&be, 0, &err);
    if (cpu == VD_OK) {
        snprintf(label, sizeof label, "%s %s [cpu]", c->cfg, c->extra);
        run_backend(be, cfg, st, label);
        vd_backend_destroy(be);
    } else {
        CHECKF(cpu == VD_ERR_UNSUPPORTED, "creating cpu: %s", err.msg);
        fprintf(stderr, "cpu backend unavailable (%s): checked cpu_ref only\n", err.msg);
        no_cpu = 1;
    }
    vd_st_close(st);
}

int main(int argc, char **argv) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    if (!vd_test_pick_backend(argc, argv)) return 2;
    int rc = vd_test_need_python_modules("torch numpy");
    if (rc) return rc;
    if (vd_test_kind_now != VD_TEST_CPU) { /* skip before the twin's cases when the GPU is missing */
        vd_backend *be = NULL;
        vd_err err = {0};
        vd_status st = vd_test_open_backend(&be, 0, &err);
        if (st == VD_ERR_UNSUPPORTED) return vd_test_backend_skip(&err);
        CHECKF(st == VD_OK, "%s", err.msg);
        vd_backend_destroy(be);
    }
    char dir[] = "/tmp/vd_refmodel_XXXXXX";
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot make a temporary directory");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(src, &cases[i], dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/case.safetensors", dir);
    unlink(path);
    rmdir(dir);
    rc = vd_test_result("test_reference_model");
    if (vd_test_kind_now != VD_TEST_CPU) return rc;
    return rc || !no_cpu ? rc : vd_test_skip(VD_TEST_ONEDNN); /* cpu_ref passed; cpu not checked */
}
