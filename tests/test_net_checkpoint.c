/* Activation checkpointing (run.checkpoint_activations): a step with it gives the same bits
 * as without (losses, logits, every gradient) on each CPU backend, since the recomputed
 * block internals come from the same ops on the same inputs; and it keeps at least 2x less
 * activation memory on the reference configs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"
#include "vdvae/rng.h"
#include "vd_test_cpu.h"

typedef struct result {
    float *grads, *logits, sums[64];
    int64_t n_grads, n_logits;
} result;

static void upload_input(vd_net *net) {
    const vd_arch *a = net->arch;
    size_t n = (size_t)net->batch * a->image_res * a->image_res * a->image_ch;
    float *x = malloc(n * sizeof *x);
    vd_rng_fill_uniform(77, 0, 0, n, x);
    for (size_t i = 0; i < n; i++) x[i] = net->dataset_binarized ? (float)(x[i] < 0.4f) : 2.f * x[i] - 1.f;
    net->be->i->upload(net->be, net->input.data, x, n * sizeof *x);
    free(x);
}

/* One forward and backward at batch 2; false when the model cannot be made. */
static bool run_step(const vd_hparams *hp, const vd_arch *a, vd_backend *be, bool ckpt, result *r) {
    vd_err err = {0};
    vd_net net;
    vd_net_opts o;
    vd_net_opts_from_hparams(&o, hp, 2);
    o.checkpoint = ckpt;
    if (vd_net_create(&net, a, be, &o, &err) || vd_net_init_params(&net, 5, &err)) {
        CHECKF(0, "%s", err.msg);
        return false;
    }
    upload_input(&net);
    vd_noise noise[64];
    float kl_scale[64];
    for (int i = 0; i < a->n_td; i++) {
        noise[i] = (vd_noise){.seed = 9, .stream = 100 + (uint64_t)i};
        kl_scale[i] = 0.5f + 0.1f * (float)i;
    }
    vd_tensor g = {net.grads, 1, 1, 1, (int)a->total_floats, a->total_floats};
    be->i->fill(be, &g, 0.f);
    vd_net_forward(&net, noise);
    vd_net_backward(&net, noise, 0.75f, kl_scale);
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s", err.msg);
    r->n_grads = a->total_floats;
    r->n_logits = (int64_t)net.batch * a->image_res * a->image_res * a->out_ch;
    r->grads = malloc((size_t)r->n_grads * sizeof(float));
    r->logits = malloc((size_t)r->n_logits * sizeof(float));
    be->i->download(be, r->grads, net.grads, (size_t)r->n_grads * sizeof(float));
    be->i->download(be, r->logits, net.logits.data, (size_t)r->n_logits * sizeof(float));
    be->i->download(be, r->sums, net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    vd_net_free(&net);
    return true;
}

static void free_result(result *r) {
    free(r->grads);
    free(r->logits);
}

static bool load(const char *cfg, vd_hparams *hp, vd_arch *a) {
    vd_err err = {0};
    if (vd_hparams_load(hp, cfg, NULL, 0, &err) || vd_arch_build(a, hp, &err)) {
        CHECKF(0, "%s: %s", cfg, err.msg);
        return false;
    }
    return true;
}

static void check_same(const char *cfg, vd_backend *be) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch a;
    if (!load(cfg, hp, &a)) return free(hp);
    CHECK(a.n_td < 63);
    result full = {0}, ck = {0};
    if (run_step(hp, &a, be, false, &full) && run_step(hp, &a, be, true, &ck)) {
        CHECKF(!memcmp(full.sums, ck.sums, (size_t)(1 + a.n_td) * sizeof(float)), "%s %s: loss sums differ (nll %.9g vs %.9g)",
               be->i->name, cfg, full.sums[0], ck.sums[0]);
        CHECKF(!memcmp(full.logits, ck.logits, (size_t)full.n_logits * sizeof(float)), "%s %s: logits differ", be->i->name, cfg);
        int64_t differ = 0, first = -1;
        for (int64_t i = 0; i < full.n_grads; i++)
            if (memcmp(&full.grads[i], &ck.grads[i], sizeof(float)) && differ++ == 0) first = i;
        CHECKF(differ == 0, "%s %s: %lld of %lld gradients differ, first at %lld (%.9g vs %.9g)", be->i->name, cfg,
               (long long)differ, (long long)full.n_grads, (long long)first, first >= 0 ? full.grads[first] : 0.,
               first >= 0 ? ck.grads[first] : 0.);
        double norm = 0;
        for (int64_t i = 0; i < full.n_grads; i++) norm += (double)full.grads[i] * full.grads[i];
        CHECKF(norm > 0 && isfinite(norm), "%s %s: gradient norm^2 %g", be->i->name, cfg, norm);
        fprintf(stderr, "%-8s %-60s nll %.6g, %lld gradients identical\n", be->i->name, cfg, full.sums[0],
                (long long)full.n_grads);
    }
    free_result(&full);
    free_result(&ck);
    vd_arch_free(&a);
    free(hp);
}

/* Planned activation floats at batch 1, with and without checkpointing (nothing runs; the
 * arena's pages are never touched). */
static void check_memory(const char *cfg, vd_backend *be) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch a;
    if (!load(cfg, hp, &a)) return free(hp);
    int64_t floats[2] = {0, 0};
    for (int ck = 0; ck < 2; ck++) {
        vd_err err = {0};
        vd_net net;
        vd_net_opts o;
        vd_net_opts_from_hparams(&o, hp, 1);
        o.checkpoint = ck;
        if (vd_net_create(&net, &a, be, &o, &err)) {
            CHECKF(0, "%s", err.msg);
            break;
        }
        floats[ck] = net.arena_floats;
        vd_net_free(&net);
    }
    CHECKF(floats[1] > 0 && 2 * floats[1] <= floats[0], "%s: %lld floats checkpointed vs %lld kept: not 2x less", cfg,
           (long long)floats[1], (long long)floats[0]);
    fprintf(stderr, "%-60s activations per image: %.1f MB kept, %.1f MB checkpointed (%.2fx less)\n", cfg,
            (double)floats[0] * 4 / 1e6, (double)floats[1] * 4 / 1e6, (double)floats[0] / (double)floats[1]);
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
        if (ref) check_same(path, ref);
        if (cpu) check_same(path, cpu);
    }
    snprintf(path, sizeof path, "%s/egs/fashion_mnist.cfg", src);
    if (cpu) check_same(path, cpu);
    const char *big[] = {"cifar10_baseline.cfg", "binarized_mnist_baseline.cfg", "imagenet32_baseline.cfg"};
    for (int i = 0; i < 3 && ref; i++) {
        snprintf(path, sizeof path, "%s/egs/reference/%s", src, big[i]);
        check_memory(path, ref);
    }
    vd_backend_destroy(ref);
    vd_backend_destroy(cpu);
    return vd_test_result_cpu("test_net_checkpoint", cpu_st);
}
