/* Encoding: the posterior (mean, std) of the variates that the div_stats mask keeps, for every
 * training image, written as the .npz of docs/encodings.md that decoding reads back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_internal.h"
#include "vdvae/checkpoint.h"
#include "vdvae/data.h"
#include "vdvae/io.h"
#include "vdvae/rng.h"

typedef struct enc_group {
    int r, v, vk;       /* latent resolution, variates, variates kept */
    int64_t *kept;      /* [vk] */
    float *out;         /* host [N, r, r, vk, 2] */
} enc_group;

typedef struct enc_state {
    enc_group *g;       /* [n_td] */
    int64_t n;          /* images */
    char **names;       /* [n] */
    float *mean, *p;    /* host [B, r, r, V] of the largest group */
    float *logits;      /* host [n, R, R, out_ch] with --dump-logits, else NULL */
} enc_state;

void vd_synth_encodings_path(const vd_synth *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/synthesis-encoding/encodings.npz", s->rd->logs_dir);
}

static void enc_free(vd_synth *s, enc_state *e) {
    for (int g = 0; e->g && g < s->ses.arch.n_td; g++) free(e->g[g].kept), free(e->g[g].out);
    for (int64_t i = 0; e->names && i < e->n; i++) free(e->names[i]);
    free(e->g), free(e->names), free(e->mean), free(e->p), free(e->logits);
}

/* Host state for n images; the kept indices come from the device masks. */
static vd_status enc_alloc(vd_synth *s, enc_state *e, float **masks, int64_t n, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    int64_t most = 0;
    e->n = n;
    e->g = calloc((size_t)a->n_td, sizeof *e->g);
    e->names = calloc((size_t)n, sizeof *e->names);
    if (!e->g || !e->names) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int g = 0; g < a->n_td; g++) {
        const vd_block *b = &a->blocks[s->ses.net.latent_block[g]];
        enc_group *eg = &e->g[g];
        float *m = malloc((size_t)b->n_variates * sizeof *m);
        eg->r = b->res_out, eg->v = b->n_variates;
        eg->kept = malloc((size_t)eg->v * sizeof *eg->kept);
        if (!m || !eg->kept) return free(m), vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        s->ses.be->i->download(s->ses.be, m, masks[g], (size_t)eg->v * sizeof *m);
        for (int k = 0; k < eg->v; k++)
            if (m[k] > 0) eg->kept[eg->vk++] = k;
        free(m);
        size_t bytes = (size_t)n * eg->r * eg->r * eg->vk * 2 * sizeof(float);
        if (!(eg->out = malloc(bytes ? bytes : 1)))
            return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the encodings of latent group %d (%zu bytes)", g, bytes);
        int64_t f = (int64_t)s->ses.net.batch * eg->r * eg->r * eg->v;
        if (f > most) most = f;
    }
    e->mean = malloc((size_t)most * sizeof(float));
    e->p = malloc((size_t)most * sizeof(float));
    if (s->o->dump_logits)
        e->logits = malloc((size_t)n * a->image_res * a->image_res * a->out_ch * sizeof(float));
    if (!e->mean || !e->p || (s->o->dump_logits && !e->logits)) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return VD_OK;
}

/* The kept variates of rows [0, count) of the batch into images first.., with the std
 * itself (exp(beta logstd) in the logstd base) so the file does not depend on the base. */
static void gather(const vd_synth *s, const enc_state *e, enc_group *eg, int64_t first, int count) {
    bool logstd = s->ses.net.dist_base == VD_BASE_LOGSTD;
    int64_t rows = (int64_t)count * eg->r * eg->r;
    float *out = eg->out + first * eg->r * eg->r * eg->vk * 2;
    for (int64_t i = 0; i < rows; i++) {
        const float *m = e->mean + i * eg->v, *p = e->p + i * eg->v;
        for (int k = 0; k < eg->vk; k++, out += 2) {
            int64_t c = eg->kept[k];
            out[0] = m[c];
            out[1] = logstd ? expf(s->ses.net.dist_beta * p[c]) : p[c];
        }
    }
}

static vd_status encode_batch(vd_synth *s, vd_loader *ld, float **masks, const vd_images *im, enc_state *e,
                              int64_t j, int64_t *done, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    int64_t idx[s->ses.net.batch];
    int count = 0;
    vd_status st = vd_loader_next_count(ld, s->ses.batch, idx, &count, err);
    if (st) return st;
    if (count > e->n - *done) count = (int)(e->n - *done);
    vd_session_upload_batch(&s->ses);
    /* the streams decoding uses for the variates the mask drops: an unedited file decodes to
     * exactly this pass */
    vd_session_noise(&s->ses, s->ses.noise, (uint32_t)j, VD_SITE_SYNTH_POSTERIOR);
    vd_session_noise(&s->ses, s->prior_noise, (uint32_t)j, VD_SITE_SYNTH_MASKED);
    vd_net_latents lat = {.posterior_temperature = 0.f, .masks = (const float *const *)masks, .prior_noise = s->prior_noise};
    vd_net_forward_ex(&s->ses.net, s->ses.noise, &lat);
    for (int g = 0; g < a->n_td; g++) {
        const vd_net_block *nb = &s->ses.net.blocks[s->ses.net.latent_block[g]];
        enc_group *eg = &e->g[g];
        size_t bytes = (size_t)s->ses.net.batch * eg->r * eg->r * eg->v * sizeof(float);
        s->ses.be->i->download(s->ses.be, e->mean, nb->post_mean.data, bytes);
        s->ses.be->i->download(s->ses.be, e->p, nb->post_p.data, bytes);
        gather(s, e, eg, *done, count);
    }
    if (e->logits) {
        size_t img = (size_t)a->image_res * a->image_res * a->out_ch;
        s->ses.be->i->download(s->ses.be, e->logits + *done * img, s->ses.net.logits.data, (size_t)count * img * sizeof(float));
    }
    if ((st = vd_backend_check(s->ses.be, err))) return st;
    char name[32];
    for (int i = 0; i < count; i++) {
        int64_t k = idx[i];
        if (!im->names) snprintf(name, sizeof name, "image_%lld", (long long)k);
        if (!(e->names[*done + i] = strdup(im->names ? im->names[k] : name))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    *done += count;
    return VD_OK;
}

static vd_status add_meta(vd_synth *s, vd_npz_writer *w, vd_err *err) {
    char hash[65], json[512];
    vd_status st = vd_config_hash(s->hp, hash, err);
    if (st) return st;
    snprintf(json, sizeof json,
             "{\"config_hash\": \"%s\", \"step\": %lld, \"variate_masks_quantile\": %.17g, \"distribution_base\": \"%s\"}",
             hash, (long long)s->step, s->hp->synthesis.variate_masks_quantile,
             s->ses.net.dist_base == VD_BASE_LOGSTD ? "logstd" : "std");
    const char *strs[1] = {json};
    return vd_npz_add(w, "meta", "<U", 0, NULL, strs, err);
}

static vd_status write_file(vd_synth *s, const enc_state *e, const char *path, vd_err *err) {
    vd_npz_writer *w = NULL;
    vd_status st = vd_npz_writer_open(&w, path, err);
    char name[32];
    for (int g = 0; g < s->ses.arch.n_td && !st; g++) {
        const enc_group *eg = &e->g[g];
        int64_t shape[5] = {e->n, eg->r, eg->r, eg->vk, 2}, kshape[1] = {eg->vk};
        snprintf(name, sizeof name, "block_%d", g);
        st = vd_npz_add(w, name, "<f4", 5, shape, eg->out, err);
        snprintf(name, sizeof name, "kept_%d", g);
        if (!st) st = vd_npz_add(w, name, "<i8", 1, kshape, eg->kept, err);
    }
    int64_t nshape[1] = {e->n};
    if (!st) st = vd_npz_add(w, "names", "<U", 1, nshape, e->names, err);
    if (!st) st = add_meta(s, w, err);
    if (st) {
        if (w) vd_npz_writer_discard(w);
        return st;
    }
    return vd_npz_writer_close(w, err);
}

static vd_status dump_logits(vd_synth *s, const float *logits, int64_t n, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    int64_t shape[4] = {n, a->image_res, a->image_res, a->out_ch};
    return vd_npy_write(s->o->dump_logits, VD_DTYPE_F32, 4, shape, logits, err);
}

static vd_status run_encoding(vd_synth *s, float **masks, vd_images *im, enc_state *e, vd_err *err) {
    vd_images sub = *im;
    if (s->o->limit > 0 && s->o->limit < sub.n) sub.n = s->o->limit;
    if (sub.n < 1) return vd_errorf(err, VD_ERR_INVALID, "no training images to encode");
    vd_loader_opts lo = vd_loader_opts_for(s->hp, VD_SPLIT_TRAIN, s->ses.net.batch);
    /* every image once, in order: the last batch is padded and its padding dropped */
    lo.shuffle = false, lo.flip = false, lo.drop_last = false;
    vd_loader *ld = NULL;
    vd_status st = enc_alloc(s, e, masks, sub.n, err);
    if (!st) st = vd_loader_create(&ld, &sub, &lo, err);
    int64_t nb = (sub.n + s->ses.net.batch - 1) / s->ses.net.batch, done = 0;
    for (int64_t j = 0; j < nb && !st; j++) {
        st = encode_batch(s, ld, masks, &sub, e, j, &done, err);
        vd_synth_progress(s, "encoding", j + 1, nb);
    }
    if (ld) vd_loader_free(ld);
    return st;
}

vd_status vd_synth_encoding(vd_synth *s, vd_synth_result *r, vd_err *err) {
    float **masks = NULL;
    int kept = 0;
    vd_images im = {0};
    enc_state e = {0};
    char path[VD_PATH_MAX + 64];
    if (s->o->out_dir) snprintf(path, sizeof path, "%s/encodings.npz", s->out_dir);
    else vd_synth_encodings_path(s, path, sizeof path);
    vd_status st = vd_synth_load_masks(s, &masks, &kept, err);
    if (!st) st = vd_dataset_load(s->hp, VD_SPLIT_TRAIN, &im, err);
    if (!st) st = run_encoding(s, masks, &im, &e, err);
    if (!st) st = write_file(s, &e, path, err);
    if (!st && s->o->dump_logits) st = dump_logits(s, e.logits, e.n, err);
    r->images = (int)e.n;
    if (!st && !s->o->quiet)
        printf("wrote %s: %d kept variates of %lld training images\n", path, kept, (long long)e.n);
    enc_free(s, &e);
    vd_images_free(&im);
    vd_synth_masks_free(s, masks);
    return st;
}
