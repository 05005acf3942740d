/* vd_eval_run (vdvae eval): a trained run's newest checkpoint on a whole split, evaluated as
 * during training (src/run/evaluate.c) but over every image (the last batch partial) or, with
 * drop_last, every whole batch; and a grid of prior samples. Under mpirun the ranks share the
 * batches (vd_session_evaluate_split) and get the very sums of one process; rank 0 writes. */
#include <stdio.h>
#include <stdlib.h>

#include "dist/agree.h"
#include "run/job.h"
#include "run/session.h"
#include "vdvae/image.h"
#include "vdvae/synth.h"

static vd_status open_split(const vd_session *s, vd_split split, bool drop_last, vd_images *im,
                            vd_loader **ld, vd_err *err) {
    vd_loader_opts o = vd_loader_opts_for(s->hp, split, s->net.batch);
    o.shuffle = false;
    o.drop_last = drop_last; /* the published test NLL is over every image */
    vd_status st = vd_dataset_load(s->hp, split, im, err);
    if (!st) st = vd_loader_create(ld, im, &o, err);
    return st;
}

static vd_status write_samples(vd_session *s, int64_t step, const char *png, vd_err *err) {
    int n = s->net.batch < 16 ? s->net.batch : 16, gh, gw;
    uint8_t *grid = NULL;
    vd_status st = vd_session_prior_samples(s, NULL, step, n, s->host, err);
    if (!st) st = vd_session_grid(s, s->host, n, s->out_res, n < 8 ? n : 8, &grid, &gh, &gw, err);
    if (!st) st = vd_png_write(png, grid, gh, gw, s->arch.image_ch, err);
    free(grid);
    return st;
}

/* The ranks evaluate the same weights, or none does. */
static vd_status agree_weights(vd_session *s, vd_comm *c, const char *path, int64_t step, vd_err *err) {
    uint64_t digest = 0;
    const float *w = s->net.params;
    vd_status st = vd_session_digest(s, &w, 1, &digest, err);
    char desc[256];
    snprintf(desc, sizeof desc, "%.200s (step %lld), digest %016llx", path, (long long)step, (unsigned long long)digest);
    return st ? st : vd_dist_agree_digest(c, "the checkpoint evaluated", digest, desc, err);
}

static vd_status evaluate(vd_session *s, vd_comm *c, const vd_rundir *rd, const vd_eval_opts *o, vd_loader *ld,
                          vd_eval_result *out, vd_err *err) {
    char path[VD_PATH_MAX + 64];
    vd_ckpt_state cs;
    vd_eval_sums e = {0};
    bool talk = !o->quiet && c->rank == 0;
    vd_status st = vd_session_checkpoint(rd, NULL, path, sizeof path, err);
    if (!st) st = vd_session_load_weights(s, path, o->no_ema, &cs, err);
    if (c->size > 1) {
        st = vd_dist_agree_status(c, st, err);
        if (!st) st = agree_weights(s, c, path, cs.step, err);
    }
    if (!st && talk)
        printf("evaluating %s (step %lld, %s weights)%s\n", path, (long long)cs.step, o->no_ema ? "plain" : "EMA",
               c->size > 1 ? " on several ranks" : "");
    int64_t n = st ? 0 : vd_loader_batches_per_epoch(ld);
    if (!st) st = c->size > 1 ? vd_session_evaluate_split(s, c, ld, n, cs.step, &e, err)
                              : vd_session_evaluate(s, ld, n, cs.step, &e, err);
    if (!st) {
        if (talk) vd_eval_print(s, o->split == VD_EVAL_TEST ? "test" : "validation", cs.step, !o->no_ema, &e);
        *out = (vd_eval_result){.nelbo = e.nelbo / e.batches, .recon = e.recon / e.batches, .kl = e.kl / e.batches,
                                .ssim = e.ssim / e.images, .images = e.images, .step = cs.step};
    }
    free(e.kl_blocks);
    if (!st && o->samples_png && c->rank == 0) st = write_samples(s, cs.step, o->samples_png, err);
    return st;
}

vd_status vd_eval_run(const vd_hparams *hp, const vd_rundir *rd, const vd_eval_opts *o,
                      vd_eval_result *out, vd_err *err) {
    vd_session s = {0};
    vd_images im = {0};
    vd_loader *ld = NULL;
    vd_comm *c = NULL;
    vd_status st = vd_comm_world(&c, err);
    if (st) return st;
    vd_session_opts so = {.backend = o->backend, .threads = o->threads, .batch = hp->train.batch_size,
                          .quiet = o->quiet || c->rank != 0};
    st = vd_hparams_agree(c, hp, err);
    if (!st) st = vd_session_open(&s, hp, &so, err);
    if (!st) st = open_split(&s, o->split == VD_EVAL_TEST ? VD_SPLIT_TEST : VD_SPLIT_VAL, o->drop_last, &im, &ld, err);
    if (c->size > 1) st = vd_dist_agree_status(c, st, err); /* all set up, or none goes on */
    if (!st) st = evaluate(&s, c, rd, o, ld, out, err);
    if (ld) vd_loader_free(ld);
    vd_images_free(&im);
    vd_session_close(&s);
    return st;
}
