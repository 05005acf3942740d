/* Decoding: an encodings file (docs/encodings.md; maybe edited in numpy) back to images. Kept
 * variates take the stored posterior mean, the others prior samples, as the encoder saw them.
 * Under mpirun every rank reads the file and decodes its batches (vd_synth_batches); rank 0
 * writes every batch's images, in order. */
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"
#include "synth/synth_internal.h"
#include "vdvae/checkpoint.h"
#include "vdvae/io.h"
#include "vdvae/rng.h"

#define GRID_MAX 256

typedef struct dec_group {
    int r, v, vk;
    const int64_t *kept;  /* [vk], inside the archive */
    float *stats;         /* host [N, r, r, vk, 2] */
    float *z, *mask;      /* device [B, r, r, v] and [v] */
} dec_group;

/* What one batch gives, the record vd_synth_batches carries from the rank that decoded it to
 * rank 0: the samples [B, out_res, out_res, C], then with --dump-logits the logits
 * [B, R, R, out_ch]; rows past the batch's images (n - jB of a last batch) are unused. */
typedef struct dec_state {
    vd_npz *f;
    const char *path;
    int64_t n, nb;        /* images, batches */
    const vd_npz_array *names;
    dec_group *g;         /* [n_td] */
    float *zh;            /* host [B, r, r, V] of the largest group */
    float *grid;          /* host [min(n, GRID_MAX), out_res, out_res, C], rank 0 only */
    float *logits;        /* host [n, R, R, out_ch] on rank 0 with --dump-logits */
    size_t rec_logits, rec_bytes;
} dec_state;

static size_t img_floats(const vd_synth *s) { return (size_t)s->ses.out_res * s->ses.out_res * s->ses.arch.image_ch; }
static size_t logits_floats(const vd_synth *s) {
    const vd_arch *a = &s->ses.arch;
    return (size_t)a->image_res * a->image_res * a->out_ch;
}

/* The images of batch j: all B but in a last partial batch. */
static int batch_rows(const vd_synth *s, const dec_state *d, int64_t j) {
    int64_t left = d->n - j * s->ses.net.batch;
    return left < s->ses.net.batch ? (int)left : s->ses.net.batch;
}

static void dec_free(vd_synth *s, dec_state *d) {
    for (int g = 0; d->g && g < s->ses.arch.n_td; g++) {
        free(d->g[g].stats);
        if (d->g[g].z) s->ses.be->i->dealloc(s->ses.be, d->g[g].z);
        if (d->g[g].mask) s->ses.be->i->dealloc(s->ses.be, d->g[g].mask);
    }
    free(d->g), free(d->zh), free(d->grid), free(d->logits);
    if (d->f) vd_npz_close(d->f);
}

/* meta must be a JSON object whose config_hash is this model's. */
static vd_status check_meta(vd_synth *s, dec_state *d, vd_err *err) {
    const vd_npz_array *m;
    char json[4096], hash[65];
    vd_status st = vd_npz_get(d->f, "meta", "U", 0, &m, err);
    if (!st) st = vd_npz_string(m, 0, json, sizeof json, err);
    if (!st) st = vd_config_hash(s->hp, hash, err);
    if (st) return st;
    cJSON *root = cJSON_Parse(json);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(root, "config_hash");
    if (!cJSON_IsString(h)) st = vd_errorf(err, VD_ERR_INVALID, "%s: meta is not a JSON object with a config_hash", d->path);
    else if (strcmp(h->valuestring, hash))
        st = vd_errorf(err, VD_ERR_INVALID, "%s: meta config_hash %.16s... is not this model's %.16s...: the file encodes another "
                       "model", d->path, h->valuestring, hash);
    cJSON_Delete(root);
    return st;
}

/* kept_<g>: increasing variate indices of this group; its device mask. */
static vd_status load_kept(vd_synth *s, dec_state *d, int g, vd_err *err) {
    dec_group *dg = &d->g[g];
    const vd_npz_array *k;
    char name[32];
    snprintf(name, sizeof name, "kept_%d", g);
    vd_status st = vd_npz_get(d->f, name, "i8", 1, &k, err);
    if (st) return st;
    dg->kept = k->data, dg->vk = (int)k->shape[0];
    if (k->shape[0] > dg->v)
        return vd_errorf(err, VD_ERR_INVALID, "%s: %s has %lld indices, latent group %d of this model has %d variates", d->path,
                         name, (long long)k->shape[0], g, dg->v);
    float *m = calloc((size_t)dg->v, sizeof *m);
    if (!m) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int i = 0; i < dg->vk && !st; i++) {
        int64_t c = dg->kept[i];
        if (c < 0 || c >= dg->v || (i > 0 && c <= dg->kept[i - 1]))
            st = vd_errorf(err, VD_ERR_INVALID, "%s: %s[%d] = %lld: indices must increase within 0..%d", d->path, name, i,
                           (long long)c, dg->v - 1);
        else m[c] = 1.f;
    }
    if (!st && !(dg->mask = s->ses.be->i->alloc(s->ses.be, (size_t)dg->v * sizeof(float)))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st) s->ses.be->i->upload(s->ses.be, dg->mask, m, (size_t)dg->v * sizeof(float));
    free(m);
    return st;
}

/* block_<g> [N, r, r, vk, 2] as float32 (any numeric dtype), finite. */
static vd_status load_block(dec_state *d, int g, vd_err *err) {
    dec_group *dg = &d->g[g];
    char name[32];
    snprintf(name, sizeof name, "block_%d", g);
    int64_t shape[5] = {d->n, dg->r, dg->r, dg->vk, 2}, numel = d->n * dg->r * dg->r * dg->vk * 2;
    if (!(dg->stats = malloc((size_t)(numel ? numel : 1) * sizeof(float)))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_npz_read_f32(d->f, name, 5, shape, numel, dg->stats, err);
    if (st)
        return vd_err_prefix(err, "latent group %d of this model needs %s of shape (%lld, %d, %d, %d, 2)", g, name,
                             (long long)d->n, dg->r, dg->r, dg->vk);
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite(dg->stats[i]))
            return vd_errorf(err, VD_ERR_INVALID, "%s: %s holds a non-finite value at flat index %lld", d->path, name, (long long)i);
    return VD_OK;
}

static vd_status dec_open(vd_synth *s, dec_state *d, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    vd_status st = vd_npz_open(&d->f, d->path, err);
    if (!st) st = check_meta(s, d, err);
    if (!st) st = vd_npz_get(d->f, "names", "U", 1, &d->names, err);
    if (st) return st;
    if ((d->n = d->names->shape[0]) < 1) return vd_errorf(err, VD_ERR_INVALID, "%s: no images (names is empty)", d->path);
    if (!(d->g = calloc((size_t)a->n_td, sizeof *d->g))) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int64_t most = 0;
    for (int g = 0; g < a->n_td && !st; g++) {
        const vd_block *b = &a->blocks[s->ses.net.latent_block[g]];
        dec_group *dg = &d->g[g];
        dg->r = b->res_out, dg->v = b->n_variates;
        int64_t f = (int64_t)s->ses.net.batch * dg->r * dg->r * dg->v;
        if (f > most) most = f;
        st = load_kept(s, d, g, err);
        if (!st) st = load_block(d, g, err);
        if (!st && !(dg->z = s->ses.be->i->alloc(s->ses.be, (size_t)f * sizeof(float)))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    if (!st && vd_npz_count(d->f) != 2 * a->n_td + 2)
        st = vd_errorf(err, VD_ERR_INVALID, "%s: %d arrays where this model's encodings have %d (block_<i>, kept_<i> for %d "
                       "latent groups, names, meta)", d->path, vd_npz_count(d->f), 2 * a->n_td + 2, a->n_td);
    if (!st && !(d->zh = malloc((size_t)most * sizeof(float)))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return st;
}

/* The layout of a batch's record, and on rank 0 (which alone writes) the grid and logits of
 * the whole file. */
static vd_status dec_alloc(vd_synth *s, dec_state *d, vd_err *err) {
    size_t B = (size_t)s->ses.net.batch, n_grid = d->n < GRID_MAX ? (size_t)d->n : GRID_MAX;
    d->nb = (d->n + s->ses.net.batch - 1) / s->ses.net.batch;
    d->rec_logits = B * img_floats(s) * sizeof(float);
    d->rec_bytes = d->rec_logits + (s->o->dump_logits ? B * logits_floats(s) * sizeof(float) : 0);
    if (!s->writer) return VD_OK;
    d->grid = malloc(n_grid * img_floats(s) * sizeof(float));
    if (s->o->dump_logits) d->logits = malloc((size_t)d->n * logits_floats(s) * sizeof(float));
    if (!d->grid || (s->o->dump_logits && !d->logits)) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    return VD_OK;
}

/* z of images first..first+count into the device: stored means at kept variates, zeros
 * elsewhere (the mask sends those to the prior) and in the padding of a last batch. */
static void upload_z(vd_synth *s, dec_state *d, int64_t first, int count) {
    for (int g = 0; g < s->ses.arch.n_td; g++) {
        dec_group *dg = &d->g[g];
        int64_t pos = (int64_t)dg->r * dg->r, total = (int64_t)s->ses.net.batch * pos * dg->v;
        memset(d->zh, 0, (size_t)total * sizeof(float));
        const float *in = dg->stats + first * pos * dg->vk * 2;
        for (int64_t i = 0; i < count * pos; i++)
            for (int k = 0; k < dg->vk; k++, in += 2) d->zh[i * dg->v + dg->kept[k]] = in[0];
        s->ses.be->i->upload(s->ses.be, dg->z, d->zh, (size_t)total * sizeof(float));
    }
}

/* A file name from an image name: its base without extension, unsafe characters as '_'. */
static void png_name(const char *name, char *buf, size_t cap) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = 0;
    for (const char *c = base; *c && n + 1 < cap; c++) buf[n++] = isalnum((unsigned char)*c) || strchr("._-", *c) ? *c : '_';
    buf[n] = 0;
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    if (!buf[0] || buf[0] == '.') snprintf(buf, cap, "image");
}

/* Samples x [count, out_res, out_res, C] of images first.. as PNGs named after the images. */
static vd_status write_batch(vd_synth *s, dec_state *d, const float *x, int64_t first, int count, vd_err *err) {
    size_t img = img_floats(s);
    char name[256], file[256], path[VD_PATH_MAX + 300];
    vd_status st = VD_OK;
    for (int i = 0; i < count && !st; i++) {
        if ((st = vd_npz_string(d->names, first + i, name, sizeof name, err))) break;
        png_name(name, file, sizeof file);
        snprintf(path, sizeof path, "%s/%s.png", s->out_dir, file);
        st = vd_synth_write_png(s, path, x + i * img, s->ses.out_res, err);
        if (first + i < GRID_MAX) memcpy(d->grid + (first + i) * img, x + i * img, img * sizeof(float));
    }
    return st;
}

static vd_status dec_compute(vd_synth *s, int64_t j, void *rec, void *ctx, vd_err *err) {
    dec_state *d = ctx;
    const vd_arch *a = &s->ses.arch;
    int64_t first = j * s->ses.net.batch;
    int count = batch_rows(s, d, j);
    uint64_t seed = (uint64_t)s->hp->run.seed;
    float **z = malloc((size_t)a->n_td * sizeof *z), **masks = malloc((size_t)a->n_td * sizeof *masks);
    if (!z || !masks) return free(z), free(masks), vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    /* the encoder's streams and temperature 1 for dropped variates (synth_encode.c) */
    vd_session_noise(&s->ses, s->prior_noise, (uint32_t)j, VD_SITE_SYNTH_MASKED);
    for (int g = 0; g < a->n_td; g++) {
        s->temps[g] = 1.f;
        z[g] = d->g[g].z, masks[g] = d->g[g].mask;
    }
    upload_z(s, d, first, count);
    vd_net_decode(&s->ses.net, (const float *const *)z, (const float *const *)masks, s->temps, s->prior_noise);
    free(z), free(masks);
    vd_noise out = {.seed = seed, .stream = vd_rng_stream((uint32_t)j, VD_SITE_SYNTH_OUTPUT)};
    vd_net_sample_output(&s->ses.net, (float)s->hp->synthesis.output_temperature, &out, s->ses.samples);
    size_t logits_bytes = (size_t)count * logits_floats(s) * sizeof(float);
    s->ses.be->i->download(s->ses.be, rec, s->ses.samples, (size_t)count * img_floats(s) * sizeof(float));
    if (s->o->dump_logits) s->ses.be->i->download(s->ses.be, (char *)rec + d->rec_logits, s->ses.net.logits.data, logits_bytes);
    return vd_backend_check(s->ses.be, err);
}

/* On rank 0, batch j's images as files and its logits into the whole file's. */
static vd_status dec_consume(vd_synth *s, int64_t j, const void *rec, void *ctx, vd_err *err) {
    dec_state *d = ctx;
    int64_t first = j * s->ses.net.batch;
    int count = batch_rows(s, d, j);
    vd_status st = write_batch(s, d, rec, first, count, err);
    size_t limg = logits_floats(s);
    if (!st && d->logits) memcpy(d->logits + (size_t)first * limg, (const char *)rec + d->rec_logits, (size_t)count * limg * sizeof(float));
    vd_synth_progress(s, "decoding", j + 1, d->nb);
    return st;
}

/* Rank 0's grid and logits; every rank learns how the writing went. */
static vd_status write_outputs(vd_synth *s, const dec_state *d, vd_status st, vd_err *err) {
    char grid[VD_PATH_MAX + 16];
    snprintf(grid, sizeof grid, "%s/grid.png", s->out_dir);
    if (!st && s->writer) st = vd_synth_write_grid(s, grid, d->grid, d->n < GRID_MAX ? (int)d->n : GRID_MAX, s->ses.out_res, err);
    if (!st && s->writer && s->o->dump_logits) {
        const vd_arch *a = &s->ses.arch;
        int64_t shape[4] = {d->n, a->image_res, a->image_res, a->out_ch};
        st = vd_npy_write(s->o->dump_logits, VD_DTYPE_F32, 4, shape, d->logits, err);
    }
    return vd_dist_agree_status(s->comm, st, err);
}

vd_status vd_synth_decoding(vd_synth *s, vd_synth_result *r, vd_err *err) {
    char path[VD_PATH_MAX + 64];
    if (s->o->input) snprintf(path, sizeof path, "%s", s->o->input);
    else vd_synth_encodings_path(s, path, sizeof path);
    dec_state d = {.path = path};
    vd_status st = dec_open(s, &d, err);
    if (!st) st = dec_alloc(s, &d, err);
    st = vd_dist_agree_status(s->comm, st, err); /* all ranks go on to the batches, or none */
    if (!st) st = vd_synth_batches(s, d.nb, d.rec_bytes, dec_compute, dec_consume, &d, err);
    st = write_outputs(s, &d, st, err);
    r->images = (int)d.n;
    if (!st && !s->o->quiet && s->writer) printf("decoded %lld images of %s into %s\n", (long long)d.n, path, s->out_dir);
    dec_free(s, &d);
    return st;
}
