/* vdvae fid's drivers: 8-bit images, from a dataset or from a run's sampler, go through the FID
 * Inception network in batches; pool3 features feed the running statistics and the logits the
 * Inception Score. The network has a float32 backend of its own whatever precision the run
 * trained in, so that a run's FID does not depend on its training precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "fid/inception.h"
#include "run/session.h"
#include "synth/fid.h"
#include "vdvae/image.h"
#include "vdvae/io.h"
#include "vdvae/rng.h"

/* One pass of images through the network. */
typedef struct fid_pass {
    const vd_fid_opts *o;
    vd_backend *be;
    vd_inception *net;
    int batch, h, w, c;
    float *host;     /* [batch, h, w, c] in [-1, 1] */
    float *dev;      /* the same on the backend */
    float *pool3;    /* [batch, 2048] */
    float *logits;   /* [total, 1008]: the Inception Score needs every row's */
    vd_fid_accum *acc;
    int64_t done, total;
    double t0;
    bool tty;
} fid_pass;

static vd_status pass_alloc(fid_pass *p, vd_err *err) {
    size_t img = (size_t)p->h * (size_t)p->w * (size_t)p->c, b = (size_t)p->batch;
    p->host = malloc(b * img * sizeof(float));
    p->pool3 = malloc(b * VD_FID_DIMS * sizeof(float));
    p->logits = malloc((size_t)p->total * VD_FID_CLASSES * sizeof(float));
    p->dev = p->be->i->alloc(p->be, b * img * sizeof(float));
    if (!p->host || !p->pool3 || !p->logits || !p->dev)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for %lld images of %d x %d x %d",
                         (long long)p->total, p->h, p->w, p->c);
    return vd_fid_accum_open(&p->acc, VD_FID_DIMS, err);
}

static void pass_close(fid_pass *p) {
    if (p->net) vd_inception_close(p->net);
    if (p->dev) p->be->i->dealloc(p->be, p->dev);
    free(p->host), free(p->pool3), free(p->logits);
    vd_fid_accum_close(p->acc);
    *p = (fid_pass){0};
}

/* The network on `be` (kept, not owned) for `total` images of h x w x c. */
static vd_status pass_open(fid_pass *p, vd_backend *be, const vd_fid_opts *o, int h, int w, int c,
                           int64_t total, vd_err *err) {
    *p = (fid_pass){.o = o, .be = be, .h = h, .w = w, .c = c, .total = total,
                    .batch = (int)(total < o->batch ? total : o->batch),
                    .tty = isatty(STDERR_FILENO)};
    if (total < 2)
        return vd_errorf(err, VD_ERR_INVALID, "FID statistics need at least 2 images, got %lld",
                         (long long)total);
    vd_status st = vd_inception_open(&p->net, be, o->weights, p->batch, h, w, c, err);
    if (!st) st = pass_alloc(p, err);
    p->t0 = vd_now_seconds();
    return st;
}

/* A bar that redraws in place on a terminal, else a line every tenth of the way; n: the
 * images just done. */
static void progress(const fid_pass *p, int n) {
    if (p->o->quiet) return;
    double el = vd_now_seconds() - p->t0, rate = el > 0 ? (double)p->done / el : 0;
    const char *label = p->o->label ? p->o->label : "fid";
    if (p->tty) {
        int w = 30, fill = (int)(w * p->done / p->total);
        fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld images, %.1f images/s", label, fill,
                "##############################", w - fill, "", (long long)p->done,
                (long long)p->total, rate);
        if (p->done == p->total) fputc('\n', stderr);
    } else {
        int64_t tenth = p->total / 10 > 0 ? p->total / 10 : 1;
        if (p->done == p->total || (p->done - n) / tenth != p->done / tenth)
            fprintf(stderr, "%s: %lld/%lld images, %.1f images/s\n", label, (long long)p->done,
                    (long long)p->total, rate);
    }
    fflush(stderr);
}

/* n <= batch images of 8-bit pixels: to [0, 1] and then [-1, 1] in float32 as pytorch-fid
 * does (ToTensor, then 2x - 1), through the network, into the statistics. */
static vd_status pass_feed(fid_pass *p, const uint8_t *pixels, int n, vd_err *err) {
    size_t count = (size_t)n * (size_t)p->h * (size_t)p->w * (size_t)p->c;
    for (size_t i = 0; i < count; i++) p->host[i] = 2.0f * ((float)pixels[i] / 255.0f) - 1.0f;
    p->be->i->upload(p->be, p->dev, p->host, count * sizeof(float));
    float *logits = p->logits + (size_t)p->done * VD_FID_CLASSES;
    vd_status st = vd_inception_run(p->net, p->dev, n, p->pool3, logits, err);
    if (!st) st = vd_fid_accum_add(p->acc, p->pool3, n, err);
    if (st) return st;
    p->done += n;
    progress(p, n);
    return VD_OK;
}

static vd_status pass_finish(fid_pass *p, vd_fid_result *r, vd_err *err) {
    vd_status st = vd_fid_accum_finish(p->acc, &r->stats, err);
    r->images = p->done;
    r->seconds = vd_now_seconds() - p->t0;
    r->is_mean = r->is_std = NAN;
    if (!st && p->done >= VD_FID_IS_SPLITS)
        st = vd_inception_score(p->logits, p->done, VD_FID_CLASSES, VD_FID_IS_SPLITS, &r->is_mean,
                                &r->is_std, err);
    int64_t shape[2] = {p->done, VD_FID_CLASSES};
    if (!st && p->o->dump_logits)
        st = vd_npy_write(p->o->dump_logits, VD_DTYPE_F32, 2, shape, p->logits, err);
    return st;
}

static vd_status open_backend(const vd_fid_opts *o, vd_backend **be, vd_err *err) {
    return vd_backend_open(o->backend, o->threads, VD_PREC_FP32, false, be, err);
}

/* ---- images ------------------------------------------------------------------------------- */

static vd_status images_pass(fid_pass *p, const vd_images *im, vd_fid_result *r, vd_err *err) {
    vd_status st = VD_OK;
    for (int64_t i = 0; i < im->n && !st; i += p->batch) {
        int n = (int)(im->n - i < p->batch ? im->n - i : p->batch);
        st = pass_feed(p, vd_image_ptr(im, i), n, err);
    }
    return st ? st : pass_finish(p, r, err);
}

vd_status vd_fid_of_images(const vd_images *im, const vd_fid_opts *o, vd_fid_result *r, vd_err *err) {
    memset(r, 0, sizeof *r);
    vd_backend *be = NULL;
    fid_pass p = {0};
    vd_status st = open_backend(o, &be, err);
    if (!st) st = pass_open(&p, be, o, im->h, im->w, im->c, im->n, err);
    if (!st) st = images_pass(&p, im, r, err);
    pass_close(&p);
    if (be) vd_backend_destroy(be);
    if (st) vd_fid_stats_free(&r->stats);
    return st;
}

/* ---- samples of a run ------------------------------------------------------------------------ */

typedef struct fid_sampler {
    vd_session ses;
    float *temps;  /* [n_td] */
    uint8_t *u8;   /* [B, out_res, out_res, C] */
    bool open;
} fid_sampler;

static vd_status sampler_open(fid_sampler *s, const vd_hparams *hp, const vd_rundir *rd,
                              double temperature, const vd_fid_opts *o, vd_fid_result *r, vd_err *err) {
    vd_session_opts so = {.backend = o->backend, .threads = o->threads,
                          .batch = hp->synthesis.batch_size, .quiet = o->quiet};
    vd_status st = vd_session_open(&s->ses, hp, &so, err);
    s->open = true;
    vd_ckpt_state cs;
    if (!st) st = vd_session_checkpoint(rd, NULL, r->checkpoint, sizeof r->checkpoint, err);
    if (!st) st = vd_session_load_weights(&s->ses, r->checkpoint, false, &cs, err);
    if (st) return st;
    r->step = cs.step;
    s->temps = malloc((size_t)s->ses.arch.n_td * sizeof *s->temps);
    s->u8 = malloc((size_t)s->ses.out_floats);
    if (!s->temps || !s->u8) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_temp_setting t = {.kind = VD_TEMP_CONST, .t = temperature};
    vd_arch_latent_temps(&s->ses.arch, hp->model.n_down, &t, s->temps);
    return VD_OK;
}

static void sampler_close(fid_sampler *s) {
    free(s->temps), free(s->u8);
    if (s->open) vd_session_close(&s->ses);
}

/* Batch j of the sampler into s->u8, as 8-bit pixels. */
static vd_status sample_batch(fid_sampler *s, uint32_t j, vd_err *err) {
    vd_session *ses = &s->ses;
    vd_session_noise(ses, ses->noise, j, VD_SITE_FID_PRIOR);
    vd_net_generate(&ses->net, s->temps, ses->noise);
    vd_noise out = {.seed = (uint64_t)ses->hp->run.seed, .stream = vd_rng_stream(j, VD_SITE_FID_OUTPUT)};
    vd_net_sample_output(&ses->net, (float)ses->hp->synthesis.output_temperature, &out, ses->samples);
    ses->be->i->download(ses->be, ses->host, ses->samples, (size_t)ses->out_floats * sizeof(float));
    vd_status st = vd_backend_check(ses->be, err);
    if (!st) vd_images_to_u8(ses->host, ses->out_floats, ses->net.dataset_binarized, s->u8);
    return st;
}

static vd_status samples_pass(fid_pass *p, fid_sampler *s, vd_fid_result *r, vd_err *err) {
    int b = s->ses.net.batch;
    size_t img = (size_t)p->h * (size_t)p->w * (size_t)p->c;
    vd_status st = VD_OK;
    for (uint32_t j = 0; p->done < p->total && !st; j++) {
        if ((st = sample_batch(s, j, err))) break;
        int64_t left = p->total - p->done;
        int have = (int)(left < b ? left : b);
        for (int i = 0; i < have && !st; i += p->batch)
            st = pass_feed(p, s->u8 + (size_t)i * img, have - i < p->batch ? have - i : p->batch, err);
    }
    return st ? st : pass_finish(p, r, err);
}

vd_status vd_fid_of_samples(const vd_hparams *hp, const vd_rundir *rd, int64_t n, double temperature,
                            const vd_fid_opts *o, vd_fid_result *r, vd_err *err) {
    memset(r, 0, sizeof *r);
    if (n / hp->synthesis.batch_size >= UINT32_MAX)
        return vd_errorf(err, VD_ERR_INVALID, "%lld samples: too many batches", (long long)n);
    vd_backend *be = NULL;
    fid_pass p = {0};
    fid_sampler s = {0};
    vd_status st = open_backend(o, &be, err);
    if (!st) st = sampler_open(&s, hp, rd, temperature, o, r, err);
    int res = s.ses.out_res, c = s.ses.arch.image_ch;
    if (!st) st = pass_open(&p, be, o, res, res, c, n, err);
    if (!st) st = samples_pass(&p, &s, r, err);
    pass_close(&p);
    sampler_close(&s);
    if (be) vd_backend_destroy(be);
    if (st) vd_fid_stats_free(&r->stats);
    return st;
}
