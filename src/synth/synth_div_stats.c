/* div_stats: the average KL of every variate over a subset of the training set (the
 * statistic that ranks variates for masked reconstruction and encoding), written as one
 * float32 .npy; and the masks that keep the top variate_masks_quantile of it. Under mpirun
 * each rank sums its batches (every N-th) and the sums meet in one all-reduce: the numbers of
 * one process up to the order of the float sums. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_internal.h"
#include "vdvae/data.h"
#include "vdvae/io.h"
#include "vdvae/rng.h"

static int max_variates(const vd_synth *s) {
    int v = 0;
    for (int g = 0; g < s->ses.arch.n_td; g++) {
        int n = s->ses.arch.blocks[s->ses.net.latent_block[g]].n_variates;
        if (n > v) v = n;
    }
    return v;
}

static void stats_path(const vd_synth *s, char *buf, size_t cap) {
    if (s->o->div_stats_path) snprintf(buf, cap, "%s", s->o->div_stats_path);
    else snprintf(buf, cap, "%s/synthesis-div_stats/div_stats.npy", s->rd->logs_dir);
}

/* KL sums per variate over this rank's batches of nb (every N-th) into device kl[g] [V]. */
static vd_status accumulate(vd_synth *s, vd_loader *ld, int64_t nb, float **kl, vd_err *err) {
    vd_net_latents lat = {.posterior_temperature = 1.f, .kl_per_variate = kl};
    vd_status st = VD_OK;
    int N = s->comm->size;
    for (int64_t j = s->comm->rank; j < nb && !st; j += N) {
        if (N > 1 && (st = vd_loader_seek(ld, (vd_loader_pos){0, (uint64_t)j}, err))) break;
        if ((st = vd_loader_next(ld, s->ses.batch, NULL, err))) break;
        vd_session_upload_batch(&s->ses);
        vd_session_noise(&s->ses, s->ses.noise, (uint32_t)j, VD_SITE_SYNTH_POSTERIOR);
        vd_net_forward_ex(&s->ses.net, s->ses.noise, &lat);
        st = vd_backend_check(s->ses.be, err);
        vd_synth_progress(s, "div_stats", j + 1, nb);
    }
    return st;
}

/* Sums (over the ranks) to bits per variate per position per image, rows padded with NaN to
 * vmax. */
static vd_status collect(vd_synth *s, float **kl, int64_t images, int vmax, float *out, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    double *sum = malloc((size_t)a->n_td * vmax * sizeof *sum);
    if (!sum) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int g = 0; g < a->n_td; g++) {
        const vd_block *b = &a->blocks[s->ses.net.latent_block[g]];
        float *row = out + (size_t)g * vmax;
        s->ses.be->i->download(s->ses.be, row, kl[g], (size_t)b->n_variates * sizeof(float));
        for (int v = 0; v < vmax; v++) sum[(size_t)g * vmax + v] = v < b->n_variates ? row[v] : 0;
    }
    vd_status st = vd_backend_check(s->ses.be, err);
    if (!st) st = s->comm->i->sum_f64(s->comm, sum, (size_t)a->n_td * vmax, "the div_stats sums", err);
    for (int g = 0; g < a->n_td && !st; g++) {
        const vd_block *b = &a->blocks[s->ses.net.latent_block[g]];
        float *row = out + (size_t)g * vmax;
        double scale = 1.0 / ((double)b->res_out * b->res_out * (double)images * M_LN2);
        for (int v = 0; v < vmax; v++) row[v] = v < b->n_variates ? (float)(sum[(size_t)g * vmax + v] * scale) : NAN;
    }
    free(sum);
    return st;
}

vd_status vd_synth_div_stats(vd_synth *s, vd_synth_result *r, vd_err *err) {
    const vd_hparams *hp = s->hp;
    const vd_arch *a = &s->ses.arch;
    int n_td = a->n_td, vmax = max_variates(s);
    vd_images im = {0};
    vd_loader *ld = NULL;
    float **kl = calloc((size_t)n_td, sizeof *kl), *stats = malloc((size_t)n_td * vmax * sizeof *stats);
    vd_status st = kl && stats ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int g = 0; g < n_td && !st; g++) {
        int v = a->blocks[s->ses.net.latent_block[g]].n_variates;
        if (!(kl[g] = s->ses.be->i->alloc(s->ses.be, (size_t)v * sizeof(float)))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        else s->ses.be->i->fill(s->ses.be, &(vd_tensor){.data = kl[g], .n = 1, .h = 1, .w = 1, .c = v, .ld = v}, 0.f);
    }
    if (!st) st = vd_dataset_load(hp, VD_SPLIT_TRAIN, &im, err);
    /* the reference's subset: the first round(N * ratio) training images */
    int64_t n = st ? 0 : llround((double)im.n * hp->synthesis.div_stats_subset_ratio), nb = n / s->ses.net.batch;
    if (!st && nb < 1)
        st = vd_errorf(err, VD_ERR_INVALID, "synthesis.div_stats_subset_ratio = %g gives %lld training images, fewer than "
                       "synthesis.batch_size = %d", hp->synthesis.div_stats_subset_ratio, (long long)n, s->ses.net.batch);
    vd_images sub = im;
    sub.n = n;
    vd_loader_opts lo = vd_loader_opts_for(hp, VD_SPLIT_TRAIN, s->ses.net.batch);
    lo.shuffle = false, lo.flip = false, lo.drop_last = true;
    if (!st) st = vd_loader_create(&ld, &sub, &lo, err);
    if (!st) st = accumulate(s, ld, nb, kl, err);
    if (!st) st = collect(s, kl, nb * s->ses.net.batch, vmax, stats, err);
    char path[VD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/div_stats.npy", s->out_dir);
    int64_t shape[2] = {n_td, vmax};
    if (!st && s->writer) st = vd_npy_write(path, VD_DTYPE_F32, 2, shape, stats, err);
    r->images = (int)(nb * s->ses.net.batch);
    if (!st && !s->o->quiet && s->writer)
        printf("wrote %s: average KL per variate (bits) of %d latent groups over %d training images\n", path, n_td, r->images);
    if (ld) vd_loader_free(ld);
    vd_images_free(&im);
    for (int g = 0; kl && g < n_td; g++)
        if (kl[g]) s->ses.be->i->dealloc(s->ses.be, kl[g]);
    free(kl), free(stats);
    return st;
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* numpy.quantile(x, q) with its default linear interpolation, over the finite values. */
static double quantile(const float *x, int64_t n, double q, float *tmp) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(x[i])) tmp[m++] = x[i];
    if (m == 0) return INFINITY;
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_float);
    double pos = q * (double)(m - 1);
    int64_t lo = (int64_t)floor(pos), hi = lo + 1 < m ? lo + 1 : lo;
    return tmp[lo] + (pos - (double)lo) * ((double)tmp[hi] - tmp[lo]);
}

static vd_status read_stats(vd_synth *s, const char *path, int vmax, float **stats, vd_err *err) {
    int ndim;
    int64_t shape[VD_ST_MAX_DIMS];
    vd_status st = vd_npy_read_f32(path, &ndim, shape, stats, err);
    if (st) return vd_err_prefix(err, "mask_reconstruction needs the div_stats of the run (run 'vdvae synth CFG --mode div_stats' first)");
    if (ndim != 2 || shape[0] != s->ses.arch.n_td || shape[1] != vmax) {
        free(*stats), *stats = NULL;
        return vd_errorf(err, VD_ERR_INVALID, "%s: div_stats of shape (%lld, %lld) where this model needs (%d, %d)", path,
                         ndim > 0 ? (long long)shape[0] : 0LL, ndim > 1 ? (long long)shape[1] : 0LL, s->ses.arch.n_td, vmax);
    }
    return VD_OK;
}

vd_status vd_synth_load_masks(vd_synth *s, float ***masks_out, int *kept, vd_err *err) {
    const vd_arch *a = &s->ses.arch;
    int n_td = a->n_td, vmax = max_variates(s);
    char path[VD_PATH_MAX + 64];
    stats_path(s, path, sizeof path);
    float *stats = NULL, *tmp = malloc((size_t)n_td * vmax * sizeof *tmp), *m = malloc((size_t)vmax * sizeof *m);
    float **masks = calloc((size_t)n_td, sizeof *masks);
    vd_status st = tmp && m && masks ? read_stats(s, path, vmax, &stats, err) : vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    double thresh = st ? 0 : quantile(stats, (int64_t)n_td * vmax, 1.0 - s->hp->synthesis.variate_masks_quantile, tmp);
    *kept = 0;
    for (int g = 0; g < n_td && !st; g++) {
        int v = a->blocks[s->ses.net.latent_block[g]].n_variates;
        for (int k = 0; k < v; k++) m[k] = stats[(size_t)g * vmax + k] > thresh ? 1.f : 0.f, *kept += m[k] > 0;
        if (!(masks[g] = s->ses.be->i->alloc(s->ses.be, (size_t)v * sizeof(float)))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        else s->ses.be->i->upload(s->ses.be, masks[g], m, (size_t)v * sizeof(float));
    }
    if (!st && !s->o->quiet && s->writer) printf("masked reconstruction: %d variates kept by %s\n", *kept, path);
    free(stats), free(tmp), free(m);
    if (st) vd_synth_masks_free(s, masks), masks = NULL;
    *masks_out = masks;
    return st;
}

void vd_synth_masks_free(vd_synth *s, float **masks) {
    if (!masks) return;
    for (int g = 0; g < s->ses.arch.n_td; g++)
        if (masks[g]) s->ses.be->i->dealloc(s->ses.be, masks[g]);
    free(masks);
}
