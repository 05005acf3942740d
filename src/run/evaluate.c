/* Evaluation as the reference does it, shared by validation during training and vdvae eval:
 * the images of a split in loader order through the model, NELBO, its reconstruction and KL
 * parts, each latent group's KL and SSIM of MoL samples against the inputs; and prior
 * samples, the picture of what a model has learnt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/session.h"
#include "vdvae/image.h"
#include "vdvae/rng.h"

/* MoL samples at temperature 1 of the net's output, drawn with batch b's output stream (for a
 * session sharded by rows, the draws of its rows). */
static void sample_outputs(vd_session *s, int64_t b) {
    vd_noise out;
    vd_session_output_noise_rows(s, (uint32_t)b, VD_SITE_EVAL_OUTPUT, &out);
    vd_net_sample_output(&s->net, 1.f, &out, s->samples);
}

/* SSIM of the batch's MoL samples against its inputs, both mapped to 0..255, summed over
 * its net.batch images. */
static double batch_ssim(vd_session *s, int64_t b) {
    if (s->net.dataset_binarized) return 0.0; /* the reference reports 0 there */
    const vd_arch *a = &s->arch;
    int64_t n = (int64_t)s->net.batch * a->image_res * a->image_res * a->image_ch;
    sample_outputs(s, b);
    float *x = s->host, *y = s->host + n;
    s->be->i->download(s->be, y, s->samples, (size_t)n * sizeof *y);
    memcpy(x, s->batch, (size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 127.5f + 127.5f, y[i] = y[i] * 127.5f + 127.5f;
    return vd_ssim_batch(x, y, s->net.batch, a->image_res, a->image_res, a->image_ch);
}

static vd_status eval_batch(vd_session *s, vd_loader *loader, int64_t b, int64_t step, vd_eval_sums *e,
                            vd_err *err) {
    const vd_arch *a = &s->arch;
    int count = 0;
    vd_status st = vd_loader_next_count(loader, s->batch, NULL, &count, err);
    /* a partial last batch runs on its images alone: padding rows would count in the sums */
    if (!st) st = vd_net_set_batch(&s->net, count, err);
    if (st) return st;
    vd_session_upload_batch(s);
    vd_session_noise_rows(s, s->noise, (uint32_t)b, VD_SITE_EVAL);
    vd_net_forward(&s->net, s->noise);
    s->be->i->download(s->be, s->sums, s->net.sums, (size_t)(1 + a->n_td) * sizeof(float));
    if ((st = vd_backend_check(s->be, err))) return st;
    vd_loss_compute(&s->loss, s->hp, a, count, step, s->sums);
    vd_eval_sums_add(e, s, count);
    e->ssim += batch_ssim(s, b);
    return vd_backend_check(s->be, err);
}

void vd_eval_sums_add(vd_eval_sums *e, const vd_session *s, int count) {
    double w = (double)count / s->net.max_batch; /* 1 for a whole batch: its sums as before */
    e->recon += w * s->loss.recon_report;
    e->kl += w * s->loss.kl_report;
    e->nelbo += w * s->loss.nelbo;
    for (int i = 0; e->kl_blocks && i < s->arch.n_td; i++) e->kl_blocks[i] += w * s->loss.kl[i];
    e->batches += w;
    e->images += count;
}

static vd_status sum_over_ranks(vd_session *s, vd_eval_sums *e, vd_err *err);

vd_status vd_session_evaluate(vd_session *s, vd_loader *loader, int64_t n_batches, int64_t step,
                              vd_eval_sums *sums, vd_err *err) {
    *sums = (vd_eval_sums){.kl_blocks = calloc((size_t)s->arch.n_td, sizeof(double))};
    if (!sums->kl_blocks) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int64_t per_epoch = vd_loader_batches_per_epoch(loader);
    if (n_batches > per_epoch) n_batches = per_epoch;
    vd_status st = vd_loader_seek(loader, (vd_loader_pos){0, 0}, err);
    for (int64_t b = 0; b < n_batches && !st; b++) st = eval_batch(s, loader, b, step, sums, err);
    vd_status back = vd_net_set_batch(&s->net, s->net.max_batch, NULL); /* cannot fail: in range */
    if (!st && vd_session_world(s) > 1) st = sum_over_ranks(s, sums, err);
    return st ? st : back;
}

/* The fields of an evaluation's sums as one vector: [recon, kl, nelbo, ssim, batches, images,
 * kl_blocks...]. */
#define EVAL_FIXED 6

static void sums_to(const vd_eval_sums *e, int n_td, double *v) {
    double fixed[EVAL_FIXED] = {e->recon, e->kl, e->nelbo, e->ssim, e->batches, (double)e->images};
    memcpy(v, fixed, sizeof fixed);
    for (int i = 0; i < n_td; i++) v[EVAL_FIXED + i] = e->kl_blocks[i];
}

/* Adds v to e in the order a single evaluation adds its batches. */
static void sums_add(vd_eval_sums *e, int n_td, const double *v) {
    e->recon += v[0], e->kl += v[1], e->nelbo += v[2], e->ssim += v[3], e->batches += v[4];
    e->images += (int)v[5];
    for (int i = 0; i < n_td; i++) e->kl_blocks[i] += v[EVAL_FIXED + i];
}

/* Rows sharded: each rank added its rows of every batch with weights of its own batch size, so
 * the ratios of the sums over the ranks (nelbo / batches: every image once) are those of one
 * process. */
static vd_status sum_over_ranks(vd_session *s, vd_eval_sums *e, vd_err *err) {
    int n_td = s->arch.n_td;
    double *v = malloc((size_t)(EVAL_FIXED + n_td) * sizeof *v);
    if (!v) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    sums_to(e, n_td, v);
    vd_status st = s->comm->i->sum_f64(s->comm, v, (size_t)(EVAL_FIXED + n_td), "the evaluation sums", err);
    if (!st) {
        double *keep = e->kl_blocks;
        *e = (vd_eval_sums){.kl_blocks = keep};
        memset(keep, 0, (size_t)n_td * sizeof *keep);
        sums_add(e, n_td, v);
    }
    free(v);
    return st;
}

vd_status vd_session_evaluate_split(vd_session *s, vd_comm *comm, vd_loader *loader, int64_t n_batches,
                                    int64_t step, vd_eval_sums *sums, vd_err *err) {
    int n_td = s->arch.n_td, k = EVAL_FIXED + n_td;
    *sums = (vd_eval_sums){.kl_blocks = calloc((size_t)n_td, sizeof(double))};
    int64_t per_epoch = vd_loader_batches_per_epoch(loader);
    if (n_batches > per_epoch) n_batches = per_epoch;
    /* one row of k per batch, zero but for this rank's batches: the sum over ranks is every
     * batch's own numbers, exactly (x + 0 = x) */
    double *rec = calloc((size_t)(n_batches * k), sizeof *rec);
    vd_eval_sums one = {.kl_blocks = calloc((size_t)n_td, sizeof(double))};
    vd_status st = sums->kl_blocks && rec && one.kl_blocks ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int64_t b = comm->rank; b < n_batches && !st; b += comm->size) {
        memset(one.kl_blocks, 0, (size_t)n_td * sizeof(double));
        one = (vd_eval_sums){.kl_blocks = one.kl_blocks};
        st = vd_loader_seek(loader, (vd_loader_pos){0, (uint64_t)b}, err);
        if (!st) st = eval_batch(s, loader, b, step, &one, err);
        if (!st) sums_to(&one, n_td, rec + b * k);
    }
    vd_status back = vd_net_set_batch(&s->net, s->net.max_batch, NULL); /* cannot fail: in range */
    if (!st) st = back;
    if (!st) st = comm->i->sum_f64(comm, rec, (size_t)(n_batches * k), "the evaluation's batches", err);
    for (int64_t b = 0; b < n_batches && !st; b++) sums_add(sums, n_td, rec + b * k);
    free(rec);
    free(one.kl_blocks);
    return st;
}

void vd_session_reconstructions(vd_session *s, int n, float *out) {
    size_t img = (size_t)s->arch.image_res * s->arch.image_res * s->arch.image_ch;
    sample_outputs(s, 0);
    s->be->i->download(s->be, out, s->samples, n * img * sizeof *out);
}

vd_status vd_session_prior_samples(vd_session *s, const float *params, int64_t step, int n,
                                   float *out, vd_err *err) {
    const vd_hparams *hp = s->hp;
    const vd_arch *a = &s->arch;
    float *temps = malloc((size_t)a->n_td * sizeof *temps);
    if (!temps) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_arch_latent_temps(a, hp->model.n_down, &hp->synthesis.temperature_settings[0], temps);
    vd_session_noise(s, s->noise, (uint32_t)step, VD_SITE_PRIOR);
    float *own = s->net.params;
    if (params) s->net.params = (float *)params; /* the net reads its weights through this pointer */
    vd_net_generate(&s->net, temps, s->noise);
    vd_noise o = {.seed = (uint64_t)hp->run.seed, .stream = vd_rng_stream((uint32_t)step, VD_SITE_OUTPUT)};
    vd_net_sample_output(&s->net, (float)hp->synthesis.output_temperature, &o, s->samples);
    s->net.params = own;
    s->be->i->download(s->be, out, s->samples, (size_t)n * s->out_res * s->out_res * a->image_ch * sizeof(float));
    free(temps);
    return vd_backend_check(s->be, err);
}

vd_status vd_session_grid(const vd_session *s, const float *x, int n, int res, int cols, uint8_t **grid,
                          int *gh, int *gw, vd_err *err) {
    int c = s->arch.image_ch;
    uint8_t *u8 = malloc((size_t)n * res * res * c);
    if (!u8) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a grid of %d images", n);
    vd_images_to_u8(x, (int64_t)n * res * res * c, s->net.dataset_binarized, u8);
    vd_status st = vd_image_grid(u8, n, res, res, c, cols, 2, grid, gh, gw, err);
    free(u8);
    return st;
}

void vd_eval_print(const vd_session *s, const char *split, int64_t step, bool ema, const vd_eval_sums *e) {
    const char *unit = s->net.dataset_binarized ? "nats/image" : "bits/dim";
    printf("\n  %s at step %lld (%d images, %s weights)\n", split, (long long)step, e->images, ema ? "EMA" : "EMA-free");
    printf("  %-16s %12.5f %s\n", "NELBO", e->nelbo / e->batches, unit);
    printf("  %-16s %12.5f %s\n", "reconstruction", e->recon / e->batches, unit);
    printf("  %-16s %12.5f %s\n", "KL", e->kl / e->batches, unit);
    printf("  %-16s %12.5f\n", "SSIM", e->ssim / e->images);
    fflush(stdout);
}
