/* Reconstruction: the whole test split through encoder and decoder, as vdvae eval does (every
 * image, or whole batches only with drop_last), with NELBO, its parts and SSIM of MoL samples
 * against the inputs, every sample (and target) as a PNG and a summary JSON; optionally with
 * the variates that div_stats ranks low replaced by prior samples. Under mpirun each rank
 * reconstructs its batches and rank 0 writes every batch's files and sums, in order. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fs.h"
#include "dist/agree.h"
#include "synth/synth_internal.h"
#include "vdvae/data.h"
#include "vdvae/rng.h"

/* Sums as vd_eval_sums (src/run/session.h): a batch of k images weighs k/B, so the averages
 * (sum / batches) are over images. */
typedef struct recon_sums {
    vd_eval_sums e;            /* weighted as evaluation weighs them (no per-group KL) */
    int kept;                  /* variates kept by the mask, -1 when unmasked */
} recon_sums;

static void recon_noise(vd_synth *s, int64_t j, bool masked) {
    vd_session_noise(&s->ses, s->ses.noise, (uint32_t)j, VD_SITE_SYNTH_POSTERIOR);
    if (masked) vd_session_noise(&s->ses, s->prior_noise, (uint32_t)j, VD_SITE_SYNTH_MASKED);
}

/* The 28x28 centre of a padded binarized-MNIST input, to match its outputs. */
static const float *target_image(vd_synth *s, const float *x, float *buf) {
    const vd_arch *a = &s->ses.arch;
    if (s->ses.out_res == a->image_res) return x;
    int off = (a->image_res - s->ses.out_res) / 2;
    for (int y = 0; y < s->ses.out_res; y++)
        memcpy(buf + y * s->ses.out_res, x + (size_t)(y + off) * a->image_res + off, s->ses.out_res * sizeof(float));
    return buf;
}

/* Summed over the net.batch images of the batch. */
static double batch_ssim(vd_synth *s) {
    if (s->ses.net.dataset_binarized) return 0.0; /* the reference reports 0 there */
    const vd_arch *a = &s->ses.arch;
    int64_t n = (int64_t)s->ses.net.batch * a->image_res * a->image_res * a->image_ch;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double v = 0;
    if (x && y) {
        for (int64_t i = 0; i < n; i++) x[i] = s->ses.batch[i] * 127.5f + 127.5f, y[i] = s->ses.host[i] * 127.5f + 127.5f;
        v = vd_ssim_batch(x, y, s->ses.net.batch, a->image_res, a->image_res, a->image_ch);
    } else {
        v = NAN;
    }
    free(x), free(y);
    return v;
}

static vd_status write_images(vd_synth *s, int64_t first, int count, vd_err *err) {
    int res = s->ses.out_res, c = s->ses.arch.image_ch;
    size_t img = (size_t)res * res * c, in_img = (size_t)s->ses.arch.image_res * s->ses.arch.image_res * c;
    float crop[28 * 28];
    char path[VD_PATH_MAX + 64];
    vd_status st = VD_OK;
    for (int i = 0; i < count && !st; i++) {
        snprintf(path, sizeof path, "%s/image-%04lld.png", s->out_dir, (long long)(first + i));
        st = vd_synth_write_png(s, path, s->ses.host + i * img, res, err);
        if (st || !s->hp->synthesis.save_target_in_reconstruction) continue;
        snprintf(path, sizeof path, "%s/target-%04lld.png", s->out_dir, (long long)(first + i));
        st = vd_synth_write_png(s, path, target_image(s, s->ses.batch + i * in_img, crop), res, err);
    }
    return st;
}

/* The first batch's targets above their reconstructions. */
static vd_status write_grid(vd_synth *s, int b, vd_err *err) {
    int res = s->ses.out_res, c = s->ses.arch.image_ch;
    size_t img = (size_t)res * res * c, in_img = (size_t)s->ses.arch.image_res * s->ses.arch.image_res * c;
    float *pair = malloc(2 * b * img * sizeof *pair), crop[28 * 28];
    if (!pair) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int i = 0; i < b; i++) memcpy(pair + i * img, target_image(s, s->ses.batch + i * in_img, crop), img * sizeof *pair);
    memcpy(pair + b * img, s->ses.host, b * img * sizeof *pair);
    char path[VD_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/grid.png", s->out_dir);
    vd_status st = vd_synth_write_grid(s, path, pair, 2 * b, res, err);
    free(pair);
    return st;
}

/* What one batch gives, the record vd_synth_batches carries from the rank that computed it
 * to rank 0: this head, the loss sums [1 + n_td], the inputs [B, R, R, C] and the samples
 * [B, out_res, out_res, C] (count rows of each). */
typedef struct recon_head {
    int count;
    double ssim;
} recon_head;

typedef struct recon_ctx {
    vd_loader *ld;
    float **masks;
    recon_sums *sum;
    int64_t n;
} recon_ctx;

static size_t rec_sums(void) { return sizeof(recon_head); }
static size_t rec_batch(const vd_synth *s) { return rec_sums() + (size_t)(1 + s->ses.arch.n_td) * sizeof(float); }
static size_t rec_out(const vd_synth *s) { return rec_batch(s) + (size_t)s->ses.img_floats * sizeof(float); }
static size_t rec_bytes(const vd_synth *s) { return rec_out(s) + (size_t)s->ses.out_floats * sizeof(float); }

static vd_status recon_compute(vd_synth *s, int64_t j, void *rec, void *ctx, vd_err *err) {
    recon_ctx *c = ctx;
    const vd_arch *a = &s->ses.arch;
    int count = 0;
    /* batch j of the split; one process reads them in turn, a rank every N-th */
    vd_status st = s->comm->size > 1 ? vd_loader_seek(c->ld, (vd_loader_pos){0, (uint64_t)j}, err) : VD_OK;
    if (!st) st = vd_loader_next_count(c->ld, s->ses.batch, NULL, &count, err);
    /* a partial last batch runs on its images alone: padding rows would count in the sums
     * and be written as images; images and noise are those of the same rows of a full batch */
    if (!st) st = vd_net_set_batch(&s->ses.net, count, err);
    if (st) return st;
    vd_session_upload_batch(&s->ses);
    recon_noise(s, j, c->masks != NULL);
    vd_net_latents lat = {.posterior_temperature = 1.f, .masks = (const float *const *)c->masks, .prior_noise = s->prior_noise};
    vd_net_forward_ex(&s->ses.net, s->ses.noise, &lat);
    vd_noise out = {.seed = (uint64_t)s->hp->run.seed, .stream = vd_rng_stream((uint32_t)j, VD_SITE_SYNTH_OUTPUT)};
    vd_net_sample_output(&s->ses.net, (float)s->hp->synthesis.output_temperature, &out, s->ses.samples);
    size_t out_floats = (size_t)s->ses.net.batch * s->ses.out_res * s->ses.out_res * a->image_ch;
    s->ses.be->i->download(s->ses.be, s->ses.sums, s->ses.net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    s->ses.be->i->download(s->ses.be, s->ses.host, s->ses.samples, out_floats * sizeof(float));
    if ((st = vd_backend_check(s->ses.be, err))) return st;
    recon_head h = {.count = count, .ssim = batch_ssim(s)};
    memcpy(rec, &h, sizeof h);
    memcpy((char *)rec + rec_sums(), s->ses.sums, (size_t)(1 + a->n_td) * sizeof(float));
    memcpy((char *)rec + rec_batch(s), s->ses.batch, (size_t)s->ses.img_floats * sizeof(float));
    memcpy((char *)rec + rec_out(s), s->ses.host, (size_t)s->ses.out_floats * sizeof(float));
    return VD_OK;
}

static vd_status recon_consume(vd_synth *s, int64_t j, const void *rec, void *ctx, vd_err *err) {
    recon_ctx *c = ctx;
    recon_sums *sum = c->sum;
    const vd_arch *a = &s->ses.arch;
    recon_head h;
    memcpy(&h, rec, sizeof h);
    memcpy(s->ses.sums, (const char *)rec + rec_sums(), (size_t)(1 + a->n_td) * sizeof(float));
    memcpy(s->ses.batch, (const char *)rec + rec_batch(s), (size_t)s->ses.img_floats * sizeof(float));
    memcpy(s->ses.host, (const char *)rec + rec_out(s), (size_t)s->ses.out_floats * sizeof(float));
    vd_loss_compute(&s->ses.loss, s->hp, a, h.count, s->step, s->ses.sums);
    sum->e.ssim += h.ssim;
    vd_status st = write_images(s, sum->e.images, h.count, err);
    if (!st && j == 0) st = write_grid(s, h.count, err);
    vd_eval_sums_add(&sum->e, &s->ses, h.count);
    vd_synth_progress(s, "reconstruction", j + 1, c->n);
    return st;
}

static vd_status write_summary(vd_synth *s, const recon_sums *sum, const vd_synth_result *r, vd_err *err) {
    char path[VD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/summary.json", s->out_dir);
    vd_atomic af;
    vd_status st = vd_atomic_begin(&af, path, err);
    if (st) return st;
    fprintf(af.f, "{\"mode\": \"reconstruction\", \"config\": \"%s\", \"step\": %lld, \"weights\": \"%s\", "
               "\"images\": %d, \"drop_last\": %s, \"unit\": \"%s\", \"nelbo\": %.8g, \"reconstruction\": %.8g, "
               "\"kl\": %.8g, \"ssim\": %.8g, \"mask_reconstruction\": %s, \"variate_masks_quantile\": %.8g, "
               "\"variates_kept\": %d}\n",
            s->rd->hparams_path, (long long)s->step, s->o->no_ema ? "plain" : "ema", r->images,
            s->o->drop_last ? "true" : "false", s->ses.net.dataset_binarized ? "nats/image" : "bits/dim", r->nelbo,
            r->recon, r->kl, r->ssim,
            sum->kept >= 0 ? "true" : "false", s->hp->synthesis.variate_masks_quantile, sum->kept);
    return vd_atomic_commit(&af, true, err);
}

static void print_summary(const vd_synth *s, const vd_synth_result *r) {
    if (s->o->quiet) return;
    const char *unit = s->ses.net.dataset_binarized ? "nats/image" : "bits/dim";
    printf("\n  test reconstruction at step %lld (%d images%s)\n", (long long)s->step, r->images,
           s->hp->synthesis.mask_reconstruction ? ", masked variates" : "");
    printf("  %-16s %12.5f %s\n  %-16s %12.5f %s\n  %-16s %12.5f %s\n  %-16s %12.5f\n", "NELBO", r->nelbo, unit,
           "reconstruction", r->recon, unit, "KL", r->kl, unit, "SSIM", r->ssim);
    printf("wrote %s/summary.json and %d images\n", s->out_dir, r->images);
}

vd_status vd_synth_reconstruction(vd_synth *s, vd_synth_result *r, vd_err *err) {
    const vd_hparams *hp = s->hp;
    vd_images im = {0};
    vd_loader *ld = NULL;
    float **masks = NULL;
    recon_sums sum = {.kept = -1};
    vd_status st = hp->synthesis.mask_reconstruction ? vd_synth_load_masks(s, &masks, &sum.kept, err) : VD_OK;
    vd_loader_opts lo = vd_loader_opts_for(hp, VD_SPLIT_TEST, s->ses.net.batch);
    lo.shuffle = false; /* the split in order, as vdvae eval */
    lo.drop_last = s->o->drop_last;
    if (!st) st = vd_dataset_load(hp, VD_SPLIT_TEST, &im, err);
    if (!st) st = vd_loader_create(&ld, &im, &lo, err);
    int64_t n = st ? 0 : vd_loader_batches_per_epoch(ld);
    if (!st && n < 1) st = vd_errorf(err, VD_ERR_INVALID, "the test split (%lld images) is smaller than synthesis.batch_size = %d",
                                     (long long)im.n, s->ses.net.batch);
    recon_ctx ctx = {.ld = ld, .masks = masks, .sum = &sum, .n = n};
    if (s->comm) st = vd_dist_agree_status(s->comm, st, err); /* all ranks go on to the batches, or none */
    if (!st) st = vd_synth_batches(s, n, rec_bytes(s), recon_compute, recon_consume, &ctx, err);
    vd_status back = vd_net_set_batch(&s->ses.net, s->ses.net.max_batch, NULL); /* in range: cannot fail */
    if (!st) st = back;
    if (!st) {
        const vd_eval_sums *e = &sum.e;
        r->images = e->images;
        r->nelbo = e->nelbo / e->batches, r->recon = e->recon / e->batches, r->kl = e->kl / e->batches;
        r->ssim = e->ssim / e->images;
        if (s->writer) st = write_summary(s, &sum, r, err);
        if (!st && s->writer) print_summary(s, r);
        if (s->comm) st = vd_dist_agree_status(s->comm, st, err); /* rank 0's file: every rank learns */
    }
    if (ld) vd_loader_free(ld);
    vd_images_free(&im);
    vd_synth_masks_free(s, masks);
    return st;
}
