/* The background batch loader: worker threads gather images, augment them and convert them to
 * float batches in a ring of `prefetch` buffers while the caller trains on the previous ones.
 *
 * Determinism: batches are numbered g = epoch * batches_per_epoch + batch, and the content of
 * batch g is a pure function of (seed, g, rank, world_size, images): the epoch permutation is a
 * Philox Fisher-Yates of (seed, epoch), each flip and binarisation draw is Philox of
 * (seed, epoch, image index[, pixel]). Workers may fill batches in any order; the caller
 * receives them in g order. So thread count and timing never change the data, and seeking to a
 * position reproduces what an uninterrupted run would have delivered from there.
 *
 * Sharding follows torch's DistributedSampler: rank r takes positions r, r + world, r + 2 world,
 * ... of the epoch permutation (strided, disjoint). With drop_last every rank takes
 * floor(n / world) and incomplete batches are dropped; without it the permutation wraps to
 * give every rank ceil(n / world) positions and the last batch may be short. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vdvae/data.h"
#include "vdvae/rng.h"

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    float *data;     /* [batch, h, w, c] */
    int64_t *index;  /* [batch] image indices, -1 past count */
    int count;       /* real rows */
    uint64_t g;      /* global batch number held when READY */
    enum slot_state state;
} slot;

typedef struct perm_cache {
    int64_t *perm;   /* [n] epoch order, valid when has_epoch */
    uint64_t epoch;
    bool has_epoch;
} perm_cache;

typedef struct worker {
    struct vd_loader *ld;
    pthread_t thread;
    float *row;      /* [w * c] uniforms of one image row (binarisation) */
    bool started;
} worker;

struct vd_loader {
    const vd_images *im;
    vd_loader_opts o;
    size_t img_elems;       /* h * w * c */
    int64_t per_rank;       /* positions of one epoch this rank visits */
    int64_t bpe;            /* batches per epoch */
    float lut[256];         /* pixel value -> scaled float after bit reduction */
    int nperm;
    perm_cache *perms;      /* [nperm], epoch e in slot e % nperm */
    slot *slots;            /* [prefetch], batch g in slot g % prefetch */
    worker *workers;        /* [threads] */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready, cv_idle;
    uint64_t consumed;      /* next batch the caller receives */
    uint64_t next_claim;    /* next batch a worker fills */
    int busy;
    bool paused, stop;
};

/* ---- what one batch holds ------------------------------------------------------------- */

/* Workers only read a permutation while its epoch lies in the window of batches
 * [consumed, consumed + prefetch), which spans at most nperm epochs, so a slot is never
 * recomputed under a reader. Called with mu held. */
static const int64_t *epoch_perm(vd_loader *ld, uint64_t epoch) {
    if (!ld->o.shuffle) return NULL;
    perm_cache *pc = &ld->perms[epoch % (uint64_t)ld->nperm];
    if (pc->has_epoch && pc->epoch == epoch) return pc->perm;
    int64_t n = ld->im->n, *p = pc->perm;
    uint64_t stream = vd_rng_stream((uint32_t)epoch, VD_SITE_LOADER_SHUFFLE);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)vd_rng_below(ld->o.seed, stream, (uint64_t)i, (uint64_t)i + 1);
        int64_t t = p[i];
        p[i] = p[j], p[j] = t;
    }
    pc->epoch = epoch, pc->has_epoch = true;
    return p;
}

static int batch_count(const vd_loader *ld, uint64_t batch) {
    int64_t left = ld->per_rank - (int64_t)batch * ld->o.batch_size;
    return left < ld->o.batch_size ? (int)left : ld->o.batch_size;
}

static int64_t image_at(const vd_loader *ld, const int64_t *perm, uint64_t batch, int row) {
    int64_t r = (int64_t)batch * ld->o.batch_size + row;
    int64_t pos = (r * ld->o.world_size + ld->o.rank) % ld->im->n;
    return perm ? perm[pos] : pos;
}

/* One row of pixel values to floats, mirrored when flip (c channels stay in order). */
static void convert_row(const float *lut, const uint8_t *s, float *d, int w, int c, bool flip) {
    if (!flip) {
        for (int k = 0; k < w * c; k++) d[k] = lut[s[k]];
        return;
    }
    for (int x = 0; x < w; x++)
        for (int ch = 0; ch < c; ch++) d[(w - 1 - x) * c + ch] = lut[s[x * c + ch]];
}

/* Bernoulli(v / 255) of one row with the uniforms u (same layout as s), flip as above. */
static void binarize_row(const float *u, const uint8_t *s, float *d, int w, int c, bool flip) {
    for (int x = 0; x < w; x++)
        for (int ch = 0; ch < c; ch++) {
            int k = x * c + ch, dx = flip ? w - 1 - x : x;
            d[dx * c + ch] = u[k] < (float)s[k] / 255.0f ? 1.0f : 0.0f;
        }
}

static void convert_image(const vd_loader *ld, const worker *wk, uint64_t epoch, int64_t img,
                          float *dst) {
    const vd_images *im = ld->im;
    const int w = im->w, c = im->c, rowlen = w * c;
    const uint8_t *src = vd_image_ptr(im, img);
    bool flip = ld->o.flip && vd_rng_uniform(ld->o.seed, vd_rng_stream((uint32_t)epoch,
                                             VD_SITE_LOADER_FLIP), (uint64_t)img) < 0.5f;
    uint64_t bin_stream = vd_rng_stream((uint32_t)epoch, VD_SITE_LOADER_BINARIZE);
    for (int y = 0; y < im->h; y++) {
        const uint8_t *s = src + (size_t)y * rowlen;
        float *d = dst + (size_t)y * rowlen;
        if (!ld->o.binarize) {
            convert_row(ld->lut, s, d, w, c, flip);
            continue;
        }
        vd_rng_fill_uniform(ld->o.seed, bin_stream, (uint64_t)img * ld->img_elems +
                            (uint64_t)y * rowlen, (size_t)rowlen, wk->row);
        binarize_row(wk->row, s, d, w, c, flip);
    }
}

static void fill_slot(vd_loader *ld, const worker *wk, slot *sl, uint64_t g, const int64_t *perm) {
    uint64_t epoch = g / (uint64_t)ld->bpe, batch = g % (uint64_t)ld->bpe;
    int count = batch_count(ld, batch);
    for (int k = 0; k < ld->o.batch_size; k++) {
        float *dst = sl->data + (size_t)k * ld->img_elems;
        if (k >= count) {
            memset(dst, 0, ld->img_elems * sizeof *dst);
            sl->index[k] = -1;
            continue;
        }
        sl->index[k] = image_at(ld, perm, batch, k);
        convert_image(ld, wk, epoch, sl->index[k], dst);
    }
    sl->count = count;
}

/* ---- threads --------------------------------------------------------------------------- */

static void *worker_main(void *arg) {
    worker *wk = arg;
    vd_loader *ld = wk->ld;
    uint64_t nslot = (uint64_t)ld->o.prefetch;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && (ld->paused || ld->next_claim >= ld->consumed + nslot))
            pthread_cond_wait(&ld->cv_work, &ld->mu);
        if (ld->stop) break;
        uint64_t g = ld->next_claim++;
        slot *sl = &ld->slots[g % nslot];
        sl->state = SLOT_FILLING;
        ld->busy++;
        const int64_t *perm = epoch_perm(ld, g / (uint64_t)ld->bpe);
        pthread_mutex_unlock(&ld->mu);
        fill_slot(ld, wk, sl, g, perm);
        pthread_mutex_lock(&ld->mu);
        sl->g = g, sl->state = SLOT_READY;
        if (--ld->busy == 0) pthread_cond_broadcast(&ld->cv_idle);
        pthread_cond_broadcast(&ld->cv_ready);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

vd_status vd_loader_next_count(vd_loader *ld, float *batch, int64_t *indices, int *count,
                               vd_err *err) {
    (void)err; /* workers cannot fail once created: every buffer exists */
    pthread_mutex_lock(&ld->mu);
    slot *sl = &ld->slots[ld->consumed % (uint64_t)ld->o.prefetch];
    while (!(sl->state == SLOT_READY && sl->g == ld->consumed))
        pthread_cond_wait(&ld->cv_ready, &ld->mu);
    pthread_mutex_unlock(&ld->mu);
    /* The slot stays ours until consumed advances: no worker may claim it before. */
    memcpy(batch, sl->data, (size_t)ld->o.batch_size * ld->img_elems * sizeof *batch);
    if (indices) memcpy(indices, sl->index, (size_t)ld->o.batch_size * sizeof *indices);
    if (count) *count = sl->count;
    pthread_mutex_lock(&ld->mu);
    sl->state = SLOT_FREE;
    ld->consumed++;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    return VD_OK;
}

vd_status vd_loader_next(vd_loader *ld, float *batch, int64_t *indices, vd_err *err) {
    return vd_loader_next_count(ld, batch, indices, NULL, err);
}

vd_loader_pos vd_loader_position(const vd_loader *ld) {
    vd_loader *m = (vd_loader *)ld; /* the mutex is the only thing touched */
    pthread_mutex_lock(&m->mu);
    uint64_t g = m->consumed;
    pthread_mutex_unlock(&m->mu);
    return (vd_loader_pos){.epoch = g / (uint64_t)ld->bpe, .batch = g % (uint64_t)ld->bpe};
}

vd_status vd_loader_seek(vd_loader *ld, vd_loader_pos pos, vd_err *err) {
    if (pos.batch >= (uint64_t)ld->bpe || pos.epoch > UINT32_MAX)
        return vd_errorf(err, VD_ERR_INVALID,
                         "loader seek: position (epoch %llu, batch %llu) is outside an epoch of "
                         "%lld batches", (unsigned long long)pos.epoch,
                         (unsigned long long)pos.batch, (long long)ld->bpe);
    pthread_mutex_lock(&ld->mu);
    ld->paused = true;
    while (ld->busy > 0) pthread_cond_wait(&ld->cv_idle, &ld->mu);
    for (int s = 0; s < ld->o.prefetch; s++) ld->slots[s].state = SLOT_FREE;
    ld->consumed = ld->next_claim = pos.epoch * (uint64_t)ld->bpe + pos.batch;
    ld->paused = false;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    return VD_OK;
}

int64_t vd_loader_batches_per_epoch(const vd_loader *ld) { return ld->bpe; }

/* ---- life cycle ------------------------------------------------------------------------- */

/* The reference's CIFAR-10 synthesis loader runs its training transform, flips included; we
 * flip only training batches, so test reconstructions match the stored images. */
vd_loader_opts vd_loader_opts_for(const vd_hparams *hp, vd_split split, int batch_size) {
    vd_dataset ds = hp->data.dataset_source;
    bool mnist = ds == VD_DATA_BINARIZED_MNIST || ds == VD_DATA_MNIST || ds == VD_DATA_FASHION_MNIST;
    return (vd_loader_opts){
        .batch_size = batch_size, .seed = (uint64_t)hp->run.seed, .rank = 0, .world_size = 1,
        .shuffle = true, .drop_last = true,
        .flip = split == VD_SPLIT_TRAIN && hp->data.random_horizontal_flip && !mnist,
        .binarize = ds == VD_DATA_BINARIZED_MNIST, .num_bits = hp->data.num_bits,
        .threads = 2, .prefetch = 3};
}

static vd_status check_opts(const vd_images *im, const vd_loader_opts *o, vd_err *err) {
    if (!im || im->n <= 0 || !im->pixels || im->h <= 0 || im->w <= 0 || im->c <= 0)
        return vd_errorf(err, VD_ERR_INVALID, "loader: the dataset has no images");
    if (o->batch_size < 1 || o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
        return vd_errorf(err, VD_ERR_INVALID, "loader: batch_size %d, rank %d of world_size %d",
                         o->batch_size, o->rank, o->world_size);
    if (!o->binarize && (o->num_bits < 1 || o->num_bits > 8))
        return vd_errorf(err, VD_ERR_INVALID, "loader: num_bits %d is not in 1..8", o->num_bits);
    if (o->threads < 1 || o->threads > 256 || o->prefetch < 1 || o->prefetch > 4096)
        return vd_errorf(err, VD_ERR_INVALID, "loader: threads %d (1..256), prefetch %d (1..4096)",
                         o->threads, o->prefetch);
    return VD_OK;
}

static void layout(vd_loader *ld) {
    const vd_loader_opts *o = &ld->o;
    int64_t n = ld->im->n, w = o->world_size, b = o->batch_size;
    ld->per_rank = o->drop_last ? n / w : (n + w - 1) / w;
    ld->bpe = o->drop_last ? ld->per_rank / b : (ld->per_rank + b - 1) / b;
    ld->nperm = (int)((o->prefetch - 1) / (ld->bpe ? ld->bpe : 1)) + 2;
    if (ld->nperm > o->prefetch + 1) ld->nperm = o->prefetch + 1;
    int shift = 8 - (o->num_bits >= 1 && o->num_bits <= 8 ? o->num_bits : 8);
    for (int v = 0; v < 256; v++) {
        int q = (v >> shift) << shift;
        ld->lut[v] = (float)(((double)q - 127.5) / 127.5); /* in double, as the reference */
    }
}

static vd_status alloc_buffers(vd_loader *ld, vd_err *err) {
    const vd_loader_opts *o = &ld->o;
    ld->slots = calloc((size_t)o->prefetch, sizeof *ld->slots);
    ld->workers = calloc((size_t)o->threads, sizeof *ld->workers);
    ld->perms = calloc((size_t)ld->nperm, sizeof *ld->perms);
    bool ok = ld->slots && ld->workers && ld->perms;
    for (int s = 0; ok && s < o->prefetch; s++) {
        ld->slots[s].data = malloc((size_t)o->batch_size * ld->img_elems * sizeof(float));
        ld->slots[s].index = malloc((size_t)o->batch_size * sizeof(int64_t));
        ok = ld->slots[s].data && ld->slots[s].index;
    }
    for (int p = 0; ok && o->shuffle && p < ld->nperm; p++)
        ok = (ld->perms[p].perm = malloc((size_t)ld->im->n * sizeof(int64_t))) != NULL;
    for (int t = 0; ok && t < o->threads; t++) {
        ld->workers[t].ld = ld;
        ok = (ld->workers[t].row = malloc((size_t)ld->im->w * ld->im->c * sizeof(float))) != NULL;
    }
    return ok ? VD_OK : vd_errorf(err, VD_ERR_NOMEM, "loader: out of memory for %d batches of %d",
                                  o->prefetch, o->batch_size);
}

vd_status vd_loader_create(vd_loader **out, const vd_images *im, const vd_loader_opts *opts,
                           vd_err *err) {
    *out = NULL;
    vd_status st = check_opts(im, opts, err);
    if (st) return st;
    vd_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return vd_errorf(err, VD_ERR_NOMEM, "loader: out of memory");
    ld->im = im, ld->o = *opts;
    ld->img_elems = (size_t)im->h * im->w * im->c;
    layout(ld);
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_work, NULL);
    pthread_cond_init(&ld->cv_ready, NULL);
    pthread_cond_init(&ld->cv_idle, NULL);
    if (ld->bpe < 1)
        st = vd_errorf(err, VD_ERR_INVALID,
                       "loader: %lld images give no batch of %d per rank for world_size %d",
                       (long long)im->n, opts->batch_size, opts->world_size);
    if (!st) st = alloc_buffers(ld, err);
    for (int t = 0; !st && t < opts->threads; t++) {
        if (pthread_create(&ld->workers[t].thread, NULL, worker_main, &ld->workers[t]) != 0)
            st = vd_errorf(err, VD_ERR_INTERNAL, "loader: cannot start worker thread %d", t);
        else
            ld->workers[t].started = true;
    }
    if (st) {
        vd_loader_free(ld);
        return st;
    }
    *out = ld;
    return VD_OK;
}

void vd_loader_free(vd_loader *ld) {
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    for (int t = 0; ld->workers && t < ld->o.threads; t++) {
        if (ld->workers[t].started) pthread_join(ld->workers[t].thread, NULL);
        free(ld->workers[t].row);
    }
    for (int s = 0; ld->slots && s < ld->o.prefetch; s++) {
        free(ld->slots[s].data);
        free(ld->slots[s].index);
    }
    for (int p = 0; ld->perms && p < ld->nperm; p++) free(ld->perms[p].perm);
    free(ld->workers), free(ld->slots), free(ld->perms);
    pthread_cond_destroy(&ld->cv_work);
    pthread_cond_destroy(&ld->cv_ready);
    pthread_cond_destroy(&ld->cv_idle);
    pthread_mutex_destroy(&ld->mu);
    free(ld);
}
