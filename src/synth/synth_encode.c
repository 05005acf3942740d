/* Encoding: the posterior (mean, std) of the variates that the div_stats mask keeps, for every
 * training image, written as the .npz of docs/encodings.md that decoding reads back. Under
 * mpirun each rank encodes its batches (vd_synth_batches) and rank 0 gathers them into the
 * file, in image order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"
#include "synth/synth_internal.h"
#include "vdvae/checkpoint.h"
#include "vdvae/data.h"
#include "vdvae/io.h"
#include "vdvae/rng.h"

typedef struct enc_group {
    int r, v, vk;       /* latent resolution, variates, variates kept */
    int64_t *kept;      /* [vk] */
    float *out;         /* host [N, r, r, vk, 2], rank 0 only */
    size_t rec_off;     /* bytes into a batch's record of its [B, r, r, vk, 2] */
} enc_group;

/* What one batch gives, the record vd_synth_batches carries from the rank that encoded it to
 * rank 0: its real rows (int64), the images' indices [B] (int64), every group's kept (mean,
 * std) [B, r, r, vk, 2] and with --dump-logits the logits [B, R, R, out_ch]; rows past the
 * real ones are unused. */
typedef struct enc_state {
    enc_group *g;       /* [n_td] */
    int64_t n, nb;      /* images, batches */
    char **names;       /* [n], rank 0 only */
    float *mean, *p;    /* host [B, r, r, V] of the largest group */
    float *logits;      /* host [n, R, R, out_ch] on rank 0 with --dump-logits, else NULL */
    size_t rec_logits, rec_bytes;
    vd_images sub;      /* the images encoded: the first n of the training split */
    vd_loader *ld;
    float **masks;
} enc_state;

void vd_synth_encodings_path(const vd_synth *s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/synthesis-encoding/encodings.npz", s->rd->logs_dir);
}

static void enc_free(vd_synth *s, enc_state *e) {
    for (int g = 0; e->g && g < s->ses.arch.n_td; g++) free(e->g[g].kept), free(e->g[g].out);
    for (int64_t i = 0; e->names && i < e->n; i++) free(e->names[i]);
    free(e->g), free(e->names), free(e->mean), free(e->p), free(e->logits);
    if (e->ld) vd_loader_free(e->ld);
}

static size_t logits_floats(const vd_synth *s) {
    const vd_arch *a = &s->ses.arch;
    return (size_t)a->image_res * a->image_res * a->out_ch;
}

/* The group's kept variate indices, from its device mask. */
static vd_status find_kept(vd_synth *s, enc_group *eg, const float *mask, vd_err *err) {
    float *m = malloc((size_t)eg->v * sizeof *m);
    eg->kept = malloc((size_t)eg->v * sizeof *eg->kept);
    if (!m || !eg->kept) return free(m), vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    s->ses.be->i->download(s->ses.be, m, mask, (size_t)eg->v * sizeof *m);
    for (int k = 0; k < eg->v; k++)
        if (m[k] > 0) eg->kept[eg->vk++] = k;
    free(m);
    return VD_OK;
}

/* The whole-file buffers, which only rank 0 (the writer) fills. */
static vd_status alloc_file(vd_synth *s, enc_state *e, vd_err *err) {
    if (!(e->names = calloc((size_t)e->n, sizeof *e->names))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int g = 0; g < s->ses.arch.n_td; g++) {
        enc_group *eg = &e->g[g];
        size_t bytes = (size_t)e->n * eg->r * eg->r * eg->vk * 2 * sizeof(float);
        if (!(eg->out = malloc(bytes ? bytes : 1)))
            return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the encodings of latent group %d (%zu bytes)", g, bytes);
    }
    if (s->o->dump_logits && !(e->logits = malloc((size_t)e->n * logits_floats(s) * sizeof(float))))
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return VD_OK;
}

/* Host state for n images and the layout of a batch's record; the kept indices come from the
 * device masks. */
static vd_status enc_alloc(vd_synth *s, enc_state *e, int64_t n, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    int B = s->ses.net.batch;
    int64_t most = 0;
    e->n = n, e->nb = (n + B - 1) / B;
    if (!(e->g = calloc((size_t)a->n_td, sizeof *e->g))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    size_t at = (1 + (size_t)B) * sizeof(int64_t);
    for (int g = 0; g < a->n_td; g++) {
        const vd_block *b = &a->blocks[s->ses.net.latent_block[g]];
        enc_group *eg = &e->g[g];
        eg->r = b->res_out, eg->v = b->n_variates;
        vd_status st = find_kept(s, eg, e->masks[g], err);
        if (st) return st;
        eg->rec_off = at;
        at += (size_t)B * eg->r * eg->r * eg->vk * 2 * sizeof(float);
        int64_t f = (int64_t)B * eg->r * eg->r * eg->v;
        if (f > most) most = f;
    }
    e->rec_logits = at;
    if (s->o->dump_logits) at += (size_t)B * logits_floats(s) * sizeof(float);
    e->rec_bytes = (at + 7) / 8 * 8; /* the indices of every gathered record stay aligned */
    e->mean = malloc((size_t)most * sizeof(float));
    e->p = malloc((size_t)most * sizeof(float));
    if (!e->mean || !e->p) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return s->writer ? alloc_file(s, e, err) : VD_OK;
}

/* The kept variates of rows [0, count) of the batch into out [count, r, r, vk, 2], with the
 * std itself (exp(beta logstd) in the logstd base) so the file does not depend on the base. */
static void gather(const vd_synth *s, const enc_state *e, const enc_group *eg, float *out, int count) {
    bool logstd = s->ses.net.dist_base == VD_BASE_LOGSTD;
    int64_t rows = (int64_t)count * eg->r * eg->r;
    for (int64_t i = 0; i < rows; i++) {
        const float *m = e->mean + i * eg->v, *p = e->p + i * eg->v;
        for (int k = 0; k < eg->vk; k++, out += 2) {
            int64_t c = eg->kept[k];
            out[0] = m[c];
            out[1] = logstd ? expf(s->ses.net.dist_beta * p[c]) : p[c];
        }
    }
}

/* The encoder's pass over the uploaded batch j. */
static void encode_pass(vd_synth *s, enc_state *e, int64_t j) {
    vd_session_upload_batch(&s->ses);
    /* the streams decoding uses for the variates the mask drops: an unedited file decodes to
     * exactly this pass */
    vd_session_noise(&s->ses, s->ses.noise, (uint32_t)j, VD_SITE_SYNTH_POSTERIOR);
    vd_session_noise(&s->ses, s->prior_noise, (uint32_t)j, VD_SITE_SYNTH_MASKED);
    vd_net_latents lat = {.posterior_temperature = 0.f, .masks = (const float *const *)e->masks, .prior_noise = s->prior_noise};
    vd_net_forward_ex(&s->ses.net, s->ses.noise, &lat);
}

static vd_status enc_compute(vd_synth *s, int64_t j, void *rec, void *ctx, vd_err *err) {
    enc_state *e = ctx;
    char *out = rec;
    int64_t *idx = (int64_t *)(out + sizeof(int64_t)), first = j * s->ses.net.batch;
    int count = 0;
    /* batch j of the images; one process reads them in turn, a rank every N-th */
    vd_status st = s->comm->size > 1 ? vd_loader_seek(e->ld, (vd_loader_pos){0, (uint64_t)j}, err) : VD_OK;
    if (!st) st = vd_loader_next_count(e->ld, s->ses.batch, idx, &count, err);
    if (st) return st;
    if (count > e->n - first) count = (int)(e->n - first);
    encode_pass(s, e, j);
    for (int g = 0; g < s->ses.arch.n_td; g++) {
        const vd_net_block *nb = &s->ses.net.blocks[s->ses.net.latent_block[g]];
        const enc_group *eg = &e->g[g];
        size_t bytes = (size_t)s->ses.net.batch * eg->r * eg->r * eg->v * sizeof(float);
        s->ses.be->i->download(s->ses.be, e->mean, nb->post_mean.data, bytes);
        s->ses.be->i->download(s->ses.be, e->p, nb->post_p.data, bytes);
        gather(s, e, eg, (float *)(out + eg->rec_off), count);
    }
    size_t logits_bytes = (size_t)count * logits_floats(s) * sizeof(float);
    if (s->o->dump_logits) s->ses.be->i->download(s->ses.be, out + e->rec_logits, s->ses.net.logits.data, logits_bytes);
    int64_t rows = count;
    memcpy(out, &rows, sizeof rows);
    return vd_backend_check(s->ses.be, err);
}

/* Names of images first..first+count, from their indices in the training split. */
static vd_status name_rows(enc_state *e, const int64_t *idx, int64_t first, int64_t count, vd_err *err) {
    char name[32];
    for (int64_t i = 0; i < count; i++) {
        int64_t k = idx[i];
        if (!e->sub.names) snprintf(name, sizeof name, "image_%lld", (long long)k);
        if (!(e->names[first + i] = strdup(e->sub.names ? e->sub.names[k] : name))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    return VD_OK;
}

/* On rank 0, batch j's record into the whole-file buffers at its images. */
static vd_status enc_consume(vd_synth *s, int64_t j, const void *rec, void *ctx, vd_err *err) {
    enc_state *e = ctx;
    const char *in = rec;
    int64_t count, first = j * s->ses.net.batch;
    memcpy(&count, in, sizeof count);
    for (int g = 0; g < s->ses.arch.n_td; g++) {
        enc_group *eg = &e->g[g];
        size_t row = (size_t)eg->r * eg->r * eg->vk * 2;
        memcpy(eg->out + (size_t)first * row, in + eg->rec_off, (size_t)count * row * sizeof(float));
    }
    size_t limg = logits_floats(s);
    if (e->logits) memcpy(e->logits + (size_t)first * limg, in + e->rec_logits, (size_t)count * limg * sizeof(float));
    vd_status st = name_rows(e, (const int64_t *)(in + sizeof(int64_t)), first, count, err);
    vd_synth_progress(s, "encoding", j + 1, e->nb);
    return st;
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

/* The first --limit training images, the buffers for them and their loader. */
static vd_status enc_prepare(vd_synth *s, const vd_images *im, enc_state *e, vd_err *err) {
    e->sub = *im;
    if (s->o->limit > 0 && s->o->limit < e->sub.n) e->sub.n = s->o->limit;
    if (e->sub.n < 1) return vd_errorf(err, VD_ERR_INVALID, "no training images to encode");
    vd_loader_opts lo = vd_loader_opts_for(s->hp, VD_SPLIT_TRAIN, s->ses.net.batch);
    /* every image once, in order: the last batch is padded and its padding dropped */
    lo.shuffle = false, lo.flip = false, lo.drop_last = false;
    vd_status st = enc_alloc(s, e, e->sub.n, err);
    if (!st) st = vd_loader_create(&e->ld, &e->sub, &lo, err);
    return st;
}

/* Rank 0's files; every rank learns how the writing went. */
static vd_status write_outputs(vd_synth *s, const enc_state *e, const char *path, vd_status st, vd_err *err) {
    if (!st && s->writer) st = write_file(s, e, path, err);
    if (!st && s->writer && s->o->dump_logits) st = dump_logits(s, e->logits, e->n, err);
    return vd_dist_agree_status(s->comm, st, err);
}

vd_status vd_synth_encoding(vd_synth *s, vd_synth_result *r, vd_err *err) {
    int kept = 0;
    vd_images im = {0};
    enc_state e = {0};
    char path[VD_PATH_MAX + 64];
    if (s->o->out_dir) snprintf(path, sizeof path, "%s/encodings.npz", s->out_dir);
    else vd_synth_encodings_path(s, path, sizeof path);
    vd_status st = vd_synth_load_masks(s, &e.masks, &kept, err);
    if (!st) st = vd_dataset_load(s->hp, VD_SPLIT_TRAIN, &im, err);
    if (!st) st = enc_prepare(s, &im, &e, err);
    st = vd_dist_agree_status(s->comm, st, err); /* all ranks go on to the batches, or none */
    if (!st) st = vd_synth_batches(s, e.nb, e.rec_bytes, enc_compute, enc_consume, &e, err);
    st = write_outputs(s, &e, path, st, err);
    r->images = (int)e.n;
    if (!st && !s->o->quiet && s->writer)
        printf("wrote %s: %d kept variates of %lld training images\n", path, kept, (long long)e.n);
    enc_free(s, &e);
    vd_images_free(&im);
    vd_synth_masks_free(s, e.masks);
    return st;
}
