/* Evaluation during training, as the reference: the validation images (the same ones every
 * time) through the current, EMA-free model (src/run/evaluate.c), logged with each latent
 * group's KL, inputs beside their reconstructions; and prior samples from the EMA weights as
 * a picture of progress. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"
#include "vdvae/image.h"

static vd_status log_eval(vd_trainer *tr, const vd_eval_sums *s, vd_err *err) {
    const vd_arch *a = &tr->ses.arch;
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

/* n images as a grid into TensorBoard, and into a PNG when png_path is set. */
static vd_status grid_image(vd_trainer *tr, const char *tag, const float *x, int n, int res,
                            const char *png_path, vd_err *err) {
    uint8_t *grid = NULL;
    int gh, gw, c = tr->ses.arch.image_ch;
    vd_status st = vd_session_grid(&tr->ses, x, n, res, n < 8 ? n : 8, &grid, &gh, &gw, err);
    if (!st) st = vd_tb_image(tr->tb_val, tag, tr->step, grid, gh, gw, c, err);
    if (!st && png_path) st = vd_png_write(png_path, grid, gh, gw, c, err);
    free(grid);
    return st;
}

/* Inputs beside their reconstructions, from the last batch, and their value histograms. */
static vd_status log_reconstructions(vd_trainer *tr, vd_err *err) {
    vd_session *s = &tr->ses;
    if (s->net.dataset_binarized) return VD_OK;
    int k = s->net.batch < 8 ? s->net.batch : 8, res = s->arch.image_res;
    size_t img = (size_t)res * res * s->arch.image_ch;
    float *pair = malloc(2 * k * img * sizeof *pair);
    if (!pair) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    memcpy(pair, s->batch, k * img * sizeof *pair);
    vd_session_reconstructions(s, k, pair + k * img);
    vd_status st = vd_backend_check(s->be, err);
    if (!st) st = grid_image(tr, "Images/inputs_then_reconstructions", pair, 2 * k, res, NULL, err);
    if (!st) st = vd_tb_histogram(tr->tb_val, "Distributions/target", tr->step, pair, k * img, err);
    if (!st) st = vd_tb_histogram(tr->tb_val, "Distributions/output", tr->step, pair + k * img, k * img, err);
    free(pair);
    return st;
}

/* Prior samples from the EMA weights into the logs and logs-<name>/samples-<step>.png. */
static vd_status log_samples(vd_trainer *tr, vd_err *err) {
    vd_session *s = &tr->ses;
    int n = s->net.batch < 16 ? s->net.batch : 16;
    char path[VD_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples-%08lld.png", tr->rd->logs_dir, (long long)tr->step);
    vd_status st = vd_session_prior_samples(s, tr->ema, tr->step, n, s->host, err);
    if (!st) st = grid_image(tr, "Samples/prior", s->host, n, s->out_res, path, err);
    return st;
}

vd_status vd_trainer_eval(vd_trainer *tr, vd_err *err) {
    vd_session *s = &tr->ses;
    /* batches of the global batch size, each rank its rows of them (sums over the ranks) */
    int64_t n = tr->hp->val.n_samples_for_validation / tr->global_batch;
    vd_eval_sums e;
    vd_status st = vd_session_evaluate(s, tr->val_loader, n < 1 ? 1 : n, tr->step, &e, err);
    if (!st && !tr->writer) { /* rank 0 shows and writes what all computed */
        free(e.kl_blocks);
        return VD_OK;
    }
    if (!st) {
        if (!tr->opts->quiet) vd_eval_print(s, "validation", tr->step, false, &e);
        st = log_eval(tr, &e, err);
    }
    free(e.kl_blocks);
    if (!st) st = log_reconstructions(tr, err);
    if (!st) st = log_samples(tr, err);
    if (!st) st = vd_tb_flush(tr->tb_val, err);
    return st;
}
