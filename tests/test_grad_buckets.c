/* The backward pass's report of final gradients (vd_net.grads_final), which the data-parallel
 * all-reduce overlaps with the rest of backward: every float of the flat gradient buffer is
 * reported exactly once per pass, and a reported range never changes afterwards (it was final);
 * with and without activation checkpointing. And the bucket bookkeeping (src/dist/): runs merge
 * in any report order, a run of bucket size starts a sum during the pass, finish() refuses a
 * range reported twice or one never reported. One process, no MPI: the single communicator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/grad_buckets.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vd_test.h"
#include "vdvae/rng.h"

typedef struct recorder {
    int64_t n;
    float *grads;       /* the net's gradient buffer (host memory: cpu_ref) */
    float *at_report;   /* what each float was when reported */
    int *times;         /* how often each float was reported */
    int calls;
    vd_grad_buckets *b; /* forwarded to, when set */
} recorder;

static void on_final(void *ctx, int64_t off, int64_t len) {
    recorder *r = ctx;
    r->calls++;
    for (int64_t i = off; i < off + len && i < r->n; i++) {
        r->times[i]++;
        r->at_report[i] = r->grads[i];
    }
    if (r->b) vd_grad_buckets_ready(r->b, off, len);
}

static void check_config(const char *cfg, bool ckpt) {
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch a;
    vd_err err = {0};
    vd_backend *be = NULL;
    if (vd_hparams_load(hp, cfg, NULL, 0, &err) || vd_arch_build(&a, hp, &err) || vd_backend_create_cpu_ref(&be, &err))
        VD_SETUP_FAIL("%s: %s", cfg, err.msg);
    vd_net net;
    vd_net_opts o;
    vd_net_opts_from_hparams(&o, hp, 2);
    o.checkpoint = ckpt;
    vd_loss loss;
    if (vd_net_create(&net, &a, be, &o, &err) || vd_net_init_params(&net, 3, &err) || vd_loss_init(&loss, a.n_td, &err))
        VD_SETUP_FAIL("%s: %s", cfg, err.msg);
    size_t img = (size_t)2 * a.image_res * a.image_res * a.image_ch;
    float *x = malloc(img * sizeof *x), sums[64];
    vd_rng_fill_uniform(1, 2, 0, img, x);
    for (size_t i = 0; i < img; i++) x[i] = net.dataset_binarized ? (float)(x[i] < 0.5f) : 2 * x[i] - 1;
    be->i->upload(be, net.input.data, x, img * sizeof *x);
    vd_noise noise[64];
    for (int i = 0; i < a.n_td && i < 64; i++) noise[i] = (vd_noise){.seed = 4, .stream = 40 + (uint64_t)i};
    vd_net_forward(&net, noise);
    be->i->download(be, sums, net.sums, (size_t)(1 + a.n_td) * sizeof(float));
    vd_loss_compute(&loss, hp, &a, 2, 1, sums);

    vd_comm *single = NULL;
    vd_grad_buckets b;
    if (vd_comm_single_create(&single, &err) ||
        vd_grad_buckets_init(&b, single, net.grads, a.total_floats, a.total_floats / 16 + 1, &err))
        VD_SETUP_FAIL("%s", err.msg);
    recorder r = {.n = a.total_floats, .grads = net.grads, .b = &b};
    r.at_report = malloc((size_t)r.n * sizeof(float));
    r.times = calloc((size_t)r.n, sizeof(int));
    vd_tensor g = {net.grads, 1, 1, 1, (int)a.total_floats, a.total_floats};
    be->i->fill(be, &g, 0.f);
    vd_grad_buckets_begin(&b);
    net.grads_final = on_final, net.grads_final_ctx = &r;
    vd_net_backward(&net, noise, loss.recon_scale, loss.kl_scale);
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s", err.msg);

    int64_t once = 0, changed = 0, nonzero = 0;
    for (int64_t i = 0; i < r.n; i++) {
        once += r.times[i] == 1;
        changed += memcmp(&r.at_report[i], &net.grads[i], sizeof(float)) != 0;
        nonzero += net.grads[i] != 0.f;
    }
    const char *leaf = strrchr(cfg, '/') + 1;
    fprintf(stderr, "%s%s: %d reports, %lld/%lld floats reported once, %lld changed after their report, %d sums "
                    "started during backward\n",
            leaf, ckpt ? " (checkpointing)" : "", r.calls, (long long)once, (long long)r.n, (long long)changed,
            b.started);
    CHECKF(once == r.n, "%s: %lld of %lld gradient floats reported exactly once", leaf, (long long)once, (long long)r.n);
    CHECKF(changed == 0, "%s: %lld floats changed after they were reported final", leaf, (long long)changed);
    CHECKF(nonzero > r.n / 2, "%s: the gradient is mostly zero (%lld of %lld): nothing was checked", leaf,
           (long long)nonzero, (long long)r.n);
    /* buckets of a sixteenth of the model: sums start while backward runs, not only at the end */
    CHECKF(b.started >= 2, "%s: %d sums started during backward", leaf, b.started);
    CHECKF(vd_grad_buckets_finish(&b, &err) == VD_OK, "%s: %s", leaf, err.msg);

    free(x), free(r.at_report), free(r.times);
    vd_grad_buckets_free(&b);
    single->i->destroy(single);
    vd_loss_free(&loss);
    vd_net_free(&net);
    vd_backend_destroy(be);
    vd_arch_free(&a);
    free(hp);
}

/* Ranges in a scrambled order merge into one run; a run starts once it reaches the bucket. */
static void check_bookkeeping(void) {
    vd_err err = {0};
    vd_comm *single = NULL;
    float buf[100];
    vd_grad_buckets b;
    if (vd_comm_single_create(&single, &err) || vd_grad_buckets_init(&b, single, buf, 100, 40, &err))
        VD_SETUP_FAIL("%s", err.msg);
    vd_grad_buckets_begin(&b);
    int64_t order[][2] = {{90, 10}, {0, 10}, {50, 20}, {10, 15}, {70, 20}, {25, 25}};
    int started[6];
    for (int i = 0; i < 6; i++) {
        vd_grad_buckets_ready(&b, order[i][0], order[i][1]);
        started[i] = b.started;
    }
    /* [70,90) joins [90,100) and [50,70) into 50 floats (>= 40): started at the fifth report;
     * [25,50) then joins [0,25) into 50: the sixth */
    CHECKF(started[3] == 0 && started[4] == 1 && started[5] == 2, "sums started after each report: %d %d %d %d %d %d",
           started[0], started[1], started[2], started[3], started[4], started[5]);
    CHECKF(vd_grad_buckets_finish(&b, &err) == VD_OK, "%s", err.msg);

    vd_grad_buckets_begin(&b);
    vd_grad_buckets_ready(&b, 0, 60);
    vd_grad_buckets_ready(&b, 50, 50); /* overlaps: reported twice */
    CHECK(vd_grad_buckets_finish(&b, &err) == VD_ERR_INTERNAL && strstr(err.msg, "reported twice"));

    vd_grad_buckets_begin(&b);
    vd_grad_buckets_ready(&b, 0, 60);
    vd_grad_buckets_ready(&b, 70, 30); /* [60, 70) never reported */
    CHECK(vd_grad_buckets_finish(&b, &err) == VD_ERR_INTERNAL && strstr(err.msg, "90 of 100"));
    vd_grad_buckets_free(&b);
    single->i->destroy(single);
}

int main(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) VD_SETUP_FAIL("VD_SOURCE_DIR is not set (run through ctest)");
    const char *tiny[] = {"tiny_rgb.cfg", "tiny_grey_logstd.cfg", "tiny_binarized.cfg"};
    char path[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/tests/reference/configs/%s", src, tiny[i]);
        check_config(path, false);
    }
    snprintf(path, sizeof path, "%s/tests/reference/configs/%s", src, tiny[0]);
    check_config(path, true);
    check_bookkeeping();
    return vd_test_result("test_grad_buckets");
}
