/* Evaluation during training, as the reference: the validation images (the same ones every
 * time) through the current, EMA-free model; NELBO, its reconstruction and KL parts, the KL
 * of each latent group and SSIM of MoL samples against the inputs. Prior samples from the
 * EMA weights go to the logs as a picture of progress. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"
#include "vdvae/image.h"
#include "vdvae/rng.h"
#include "vdvae/synth.h"

typedef struct eval_sums {
    double recon, kl, nelbo, ssim, *kl_blocks;
    int batches, images;
} eval_sums;

static void eval_noise(vd_trainer *tr, int64_t batch_index) {
    for (int i = 0; i < tr->arch.n_td; i++)
        tr->noise[i] = (vd_noise){.seed = (uint64_t)tr->hp->run.seed,
                                  .stream = vd_rng_stream((uint32_t)batch_index, VD_SITE_EVAL + (uint32_t)i)};
}

/* SSIM of the batch's MoL samples against its inputs, both mapped to 0..255. */
static double batch_ssim(vd_trainer *tr, int64_t batch_index) {
    const vd_arch *a = &tr->arch;
    if (tr->net.dataset_binarized) return 0.0; /* the reference reports 0 there */
    int64_t n = (int64_t)tr->net.batch * a->image_res * a->image_res * a->image_ch;
    vd_noise out = {.seed = (uint64_t)tr->hp->run.seed, .stream = vd_rng_stream((uint32_t)batch_index, VD_SITE_EVAL_OUTPUT)};
    vd_net_sample_output(&tr->net, 1.f, &out, tr->samples);
    float *x = tr->host, *y = tr->host + n;
    tr->be->i->download(tr->be, y, tr->samples, (size_t)n * sizeof *y);
    memcpy(x, tr->batch, (size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 127.5f + 127.5f, y[i] = y[i] * 127.5f + 127.5f;
    return vd_ssim_batch(x, y, tr->net.batch, a->image_res, a->image_res, a->image_ch);
}

static vd_status eval_batch(vd_trainer *tr, int64_t b, eval_sums *s, vd_err *err) {
    const vd_arch *a = &tr->arch;
    vd_status st = vd_loader_next(tr->val_loader, tr->batch, NULL, err);
    if (st) return st;
    size_t n = (size_t)tr->net.batch * a->image_res * a->image_res * a->image_ch;
    tr->be->i->upload(tr->be, tr->net.input, tr->batch, n * sizeof(float));
    eval_noise(tr, b);
    vd_net_forward(&tr->net, tr->noise);
    tr->be->i->download(tr->be, tr->sums, tr->net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    if ((st = vd_backend_check(tr->be, err))) return st;
    vd_loss_compute(&tr->loss, tr->hp, a, tr->net.batch, tr->step, tr->sums);
    s->recon += tr->loss.recon_report;
    s->kl += tr->loss.kl_report;
    s->nelbo += tr->loss.nelbo;
    for (int i = 0; i < a->n_td; i++) s->kl_blocks[i] += tr->loss.kl[i];
    s->ssim += batch_ssim(tr, b);
    s->batches++;
    s->images += tr->net.batch;
    return vd_backend_check(tr->be, err);
}

static void print_table(const vd_trainer *tr, const eval_sums *s) {
    if (tr->opts->quiet) return;
    const char *unit = tr->net.dataset_binarized ? "nats/image" : "bits/dim";
    printf("\n  %s at step %lld (%d images, %s weights)\n", tr->eval_split ? tr->eval_split : "validation",
           (long long)tr->step, s->images, tr->eval_ema ? "EMA" : "EMA-free");
    printf("  %-16s %12.5f %s\n", "NELBO", s->nelbo / s->batches, unit);
    printf("  %-16s %12.5f %s\n", "reconstruction", s->recon / s->batches, unit);
    printf("  %-16s %12.5f %s\n", "KL", s->kl / s->batches, unit);
    printf("  %-16s %12.5f\n", "SSIM", s->ssim / s->images);
    fflush(stdout);
}

static vd_status log_eval(vd_trainer *tr, const eval_sums *s, vd_err *err) {
    const vd_arch *a = &tr->arch;
    int n = 4 + a->n_td;
    const char **names = calloc((size_t)n, sizeof *names);
    double *vals = calloc((size_t)n, sizeof *vals);
    char (*tags)[32] = calloc((size_t)n, sizeof *tags);
    vd_status st = VD_OK;
    if (!names || !vals || !tags) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) {
        const char *fixed[4] = {"nelbo", "reconstruction_loss", "kl_div", "ssim"};
        double fv[4] = {s->nelbo / s->batches, s->recon / s->batches, s->kl / s->batches, s->ssim / s->images};
        for (int i = 0; i < 4; i++) names[i] = fixed[i], vals[i] = fv[i];
        for (int i = 0; i < a->n_td; i++) {
            snprintf(tags[i], sizeof tags[i], "latent_kl_%d", i);
            names[4 + i] = tags[i];
            vals[4 + i] = s->kl_blocks[i] / s->batches;
        }
        char tag[64];
        for (int i = 0; i < n && !st; i++) {
            snprintf(tag, sizeof tag, "Losses/%s", names[i]);
            st = vd_tb_scalar(tr->tb_val, tag, tr->step, vals[i], err);
        }
        if (!st) st = vd_metrics_write(tr->metrics, tr->step, "val", names, vals, n, err);
    }
    free(names), free(vals), free(tags);
    return st;
}

/* Up to 8 images as a grid, from float [-1, 1] (or {0,1}) host pixels. */
static vd_status grid_image(vd_trainer *tr, vd_tb *tb, const char *tag, const float *x, int n, int res, int c,
                            const char *png_path, vd_err *err) {
    uint8_t *u8 = malloc((size_t)n * res * res * c), *grid = NULL;
    int gh, gw;
    if (!u8) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_images_to_u8(x, (int64_t)n * res * res * c, tr->net.dataset_binarized, u8);
    vd_status st = vd_image_grid(u8, n, res, res, c, n < 8 ? n : 8, 2, &grid, &gh, &gw, err);
    if (!st && tb) st = vd_tb_image(tb, tag, tr->step, grid, gh, gw, c, err);
    if (!st && png_path) st = vd_png_write(png_path, grid, gh, gw, c, err);
    free(u8), free(grid);
    return st;
}

/* Prior samples from the EMA weights with the config's first temperature setting and its
 * output temperature, into the logs and a PNG. */
static vd_status log_samples(vd_trainer *tr, vd_err *err) {
    const vd_arch *a = &tr->arch;
    int n = tr->net.batch < 16 ? tr->net.batch : 16;
    int res = tr->net.dataset_binarized ? 28 : a->image_res, c = a->image_ch;
    float *temps = malloc((size_t)a->n_td * sizeof *temps);
    if (!temps) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_synth_latent_temps(a, tr->hp->model.n_down, &tr->hp->synthesis.temperature_settings[0], temps);
    for (int i = 0; i < a->n_td; i++)
        tr->noise[i] = (vd_noise){.seed = (uint64_t)tr->hp->run.seed, .stream = vd_rng_stream((uint32_t)tr->step, VD_SITE_PRIOR + (uint32_t)i)};
    float *params = tr->net.params;
    tr->net.params = tr->ema; /* the net reads its weights through this pointer */
    vd_net_generate(&tr->net, temps, tr->noise);
    vd_noise out = {.seed = (uint64_t)tr->hp->run.seed, .stream = vd_rng_stream((uint32_t)tr->step, VD_SITE_OUTPUT)};
    vd_net_sample_output(&tr->net, (float)tr->hp->synthesis.output_temperature, &out, tr->samples);
    tr->net.params = params;
    tr->be->i->download(tr->be, tr->host, tr->samples, (size_t)n * res * res * c * sizeof(float));
    free(temps);
    vd_status st = vd_backend_check(tr->be, err);
    char path[VD_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples-%08lld.png", tr->rd->logs_dir, (long long)tr->step);
    const char *png = tr->samples_png ? tr->samples_png : path;
    if (!st) st = grid_image(tr, tr->tb_val, "Samples/prior", tr->host, n, res, c, png, err);
    return st;
}

vd_status vd_trainer_eval(vd_trainer *tr, vd_err *err) {
    const vd_arch *a = &tr->arch;
    eval_sums s = {.kl_blocks = calloc((size_t)a->n_td, sizeof(double))};
    if (!s.kl_blocks) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int64_t per_epoch = vd_loader_batches_per_epoch(tr->val_loader);
    int64_t n = tr->eval_all ? per_epoch : tr->hp->val.n_samples_for_validation / tr->net.batch;
    if (n < 1) n = 1;
    if (n > per_epoch) n = per_epoch;
    vd_status st = vd_loader_seek(tr->val_loader, (vd_loader_pos){0, 0}, err);
    for (int64_t b = 0; b < n && !st; b++) st = eval_batch(tr, b, &s, err);
    if (!st) {
        print_table(tr, &s);
        tr->eval = (vd_eval_result){.nelbo = s.nelbo / s.batches, .recon = s.recon / s.batches,
                                    .kl = s.kl / s.batches, .ssim = s.ssim / s.images, .images = s.images};
        if (tr->metrics) st = log_eval(tr, &s, err);
    }
    if (!st) { /* inputs beside their reconstructions, from the last batch */
        int k = tr->net.batch < 8 ? tr->net.batch : 8, res = a->image_res, c = a->image_ch;
        size_t img = (size_t)res * res * c;
        float *pair = malloc(2 * k * img * sizeof *pair);
        if (!pair) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        else if (!tr->net.dataset_binarized) {
            memcpy(pair, tr->batch, k * img * sizeof *pair);
            vd_noise out = {.seed = (uint64_t)tr->hp->run.seed, .stream = vd_rng_stream(0, VD_SITE_EVAL_OUTPUT)};
            vd_net_sample_output(&tr->net, 1.f, &out, tr->samples);
            tr->be->i->download(tr->be, pair + k * img, tr->samples, k * img * sizeof *pair);
            st = grid_image(tr, tr->tb_val, "Images/inputs_then_reconstructions", pair, 2 * k, res, c, NULL, err);
            if (!st && tr->tb_val) st = vd_tb_histogram(tr->tb_val, "Distributions/target", tr->step, pair, k * img, err);
            if (!st && tr->tb_val)
                st = vd_tb_histogram(tr->tb_val, "Distributions/output", tr->step, pair + k * img, k * img, err);
        }
        free(pair);
    }
    if (!st) st = log_samples(tr, err);
    if (!st && tr->tb_val) st = vd_tb_flush(tr->tb_val, err);
    free(s.kl_blocks);
    return st;
}
