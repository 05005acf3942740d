/* vd_net_set_batch: a net built for batch B and set to n < B computes, on the first n images,
 * the same bits as a net built for n (loss sums, logits, output samples), on each CPU
 * backend; back at B it computes what it did before; n outside 1..B is refused. This is what
 * lets evaluation count a partial last batch without the padding rows in its sums. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"
#include "vdvae/rng.h"
#include "vd_test_cpu.h"

#define FULL 4 /* the batch the big net is built for */
#define PART 3 /* the partial batch */

typedef struct pass {
    float sums[64];
    float *logits, *samples;
} pass;

/* n input images drawn from (seed, stream): rows differ, so a stale row would show. */
static void upload_input(vd_net *net, int n, uint64_t stream) {
    const vd_arch *a = net->arch;
    size_t count = (size_t)n * a->image_res * a->image_res * a->image_ch;
    float *x = malloc(count * sizeof *x);
    vd_rng_fill_uniform(77, stream, 0, count, x);
    for (size_t i = 0; i < count; i++) x[i] = net->dataset_binarized ? (float)(x[i] < 0.4f) : 2.f * x[i] - 1.f;
    net->be->i->upload(net->be, net->input.data, x, count * sizeof *x);
    free(x);
}

/* Forward on the net's current batch and the output samples; what the first n images give. */
static void forward(vd_net *net, int n, pass *p) {
    const vd_arch *a = net->arch;
    vd_backend *be = net->be;
    vd_noise noise[64];
    for (int i = 0; i < a->n_td; i++) noise[i] = (vd_noise){.seed = 9, .stream = 100 + (uint64_t)i};
    vd_net_forward(net, noise);
    size_t logits = (size_t)n * a->image_res * a->image_res * a->out_ch;
    /* binarized: n 28x28 images, and the rest stays 0 on both sides of a comparison */
    size_t samples = (size_t)n * a->image_res * a->image_res * a->image_ch;
    float *dev = be->i->alloc(be, (size_t)FULL * a->image_res * a->image_res * a->image_ch * sizeof(float));
    vd_noise out = {.seed = 9, .stream = 7};
    vd_net_sample_output(net, 1.f, &out, dev);
    p->logits = calloc(logits, sizeof(float));
    p->samples = calloc(samples, sizeof(float));
    be->i->download(be, p->sums, net->sums, (size_t)(1 + a->n_td) * sizeof(float));
    be->i->download(be, p->logits, net->logits.data, logits * sizeof(float));
    if (net->dataset_binarized) samples = (size_t)n * 28 * 28;
    be->i->download(be, p->samples, dev, samples * sizeof(float));
    be->i->dealloc(be, dev);
}

static void free_pass(pass *p) {
    free(p->logits);
    free(p->samples);
}

static bool make(vd_net *net, const vd_hparams *hp, const vd_arch *a, vd_backend *be, int batch, bool ckpt) {
    vd_err err = {0};
    vd_net_opts o;
    vd_net_opts_from_hparams(&o, hp, batch);
    o.checkpoint = ckpt;
    if (vd_net_create(net, a, be, &o, &err) || vd_net_init_params(net, 5, &err)) {
        CHECKF(0, "%s", err.msg);
        return false;
    }
    return true;
}

static bool same(const char *what, const char *name, const vd_arch *a, int n, const pass *x, const pass *y) {
    size_t logits = (size_t)n * a->image_res * a->image_res * a->out_ch;
    size_t samples = (size_t)n * a->image_res * a->image_res * a->image_ch;
    bool s = !memcmp(x->sums, y->sums, (size_t)(1 + a->n_td) * sizeof(float));
    bool l = !memcmp(x->logits, y->logits, logits * sizeof(float));
    bool o = !memcmp(x->samples, y->samples, samples * sizeof(float));
    CHECKF(s, "%s %s: loss sums differ (nll %.9g vs %.9g, kl0 %.9g vs %.9g)", name, what, x->sums[0], y->sums[0],
           x->sums[1], y->sums[1]);
    CHECKF(l, "%s %s: logits differ", name, what);
    CHECKF(o, "%s %s: output samples differ", name, what);
    return s && l && o;
}

static void check_config(const char *cfg, vd_backend *be, bool ckpt) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch a;
    vd_err err = {0};
    if (vd_hparams_load(hp, cfg, NULL, 0, &err) || vd_arch_build(&a, hp, &err)) {
        CHECKF(0, "%s: %s", cfg, err.msg);
        return free(hp);
    }
    CHECK(a.n_td < 63);
    char name[128];
    snprintf(name, sizeof name, "%s %s%s", be->i->name, strrchr(cfg, '/') + 1, ckpt ? " (checkpointing)" : "");
    vd_net big, small;
    if (!make(&big, hp, &a, be, FULL, ckpt)) goto out_arch;
    if (!make(&small, hp, &a, be, PART, ckpt)) goto out_big;

    /* the full batch first, so the rows past PART hold other images when the net shrinks */
    pass full = {0}, full_again = {0}, part = {0}, ref = {0};
    upload_input(&big, FULL, 1);
    forward(&big, FULL, &full);
    CHECK(vd_net_set_batch(&big, 0, &err) == VD_ERR_INVALID);
    CHECK(vd_net_set_batch(&big, FULL + 1, &err) == VD_ERR_INVALID && strstr(err.msg, "built for 1 to 4"));
    CHECKF(vd_net_set_batch(&big, PART, &err) == VD_OK, "%s", err.msg);
    CHECK(big.batch == PART && big.max_batch == FULL && big.input.n == PART && big.logits.n == PART);
    upload_input(&big, PART, 2);
    forward(&big, PART, &part);
    upload_input(&small, PART, 2);
    forward(&small, PART, &ref);
    bool ok = same("batch set to 3 vs built for 3", name, &a, PART, &part, &ref);

    /* and back: the full batch gives what it gave before */
    CHECKF(vd_net_set_batch(&big, big.max_batch, &err) == VD_OK, "%s", err.msg);
    CHECK(big.batch == FULL && big.input.n == FULL);
    upload_input(&big, FULL, 1);
    forward(&big, FULL, &full_again);
    ok = same("full batch after set_batch vs before", name, &a, FULL, &full, &full_again) && ok;
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s: %s", name, err.msg);
    CHECKF(isfinite(part.sums[0]) && part.sums[0] != full.sums[0], "%s: nll of 3 images %.9g, of 4 %.9g", name,
           part.sums[0], full.sums[0]);
    if (ok) fprintf(stderr, "%-52s nll of %d images %.7g (%d others: %.7g): identical\n", name, PART, part.sums[0], FULL,
                    full.sums[0]);
    free_pass(&full), free_pass(&full_again), free_pass(&part), free_pass(&ref);
    vd_net_free(&small);
out_big:
    vd_net_free(&big);
out_arch:
    vd_arch_free(&a);
    free(hp);
}

int main(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    const char *tiny[] = {"tiny_rgb.cfg", "tiny_grey_logstd.cfg", "tiny_binarized.cfg"};
    char path[4096];
    vd_err err = {0};
    vd_backend *ref = NULL, *cpu = NULL;
    CHECKF(vd_backend_create_cpu_ref(&ref, &err) == VD_OK, "%s", err.msg);
    vd_status cpu_st = vd_test_open_cpu(&cpu, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tests/reference/configs/%s", src, tiny[i]);
        if (ref) check_config(path, ref, false);
        if (cpu) check_config(path, cpu, false);
    }
    snprintf(path, sizeof path, "%s/tests/reference/configs/%s", src, tiny[0]);
    if (ref) check_config(path, ref, true);
    if (cpu) check_config(path, cpu, true);
    snprintf(path, sizeof path, "%s/egs/fashion_mnist.cfg", src); /* the model vdvae eval runs */
    if (cpu) check_config(path, cpu, false);
    vd_backend_destroy(ref);
    vd_backend_destroy(cpu);
    return vd_test_result_cpu("test_net_batch", cpu_st);
}
