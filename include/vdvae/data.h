/* Datasets (docs/model.md section 7): readers for every reference format, image folders, packed
 * files, the reference's splits and preprocessing, and the background batch loader. Images
 * are uint8 NHWC in memory (or memory-mapped); batches leave as float NHWC in [-1, 1]. */
#ifndef VDVAE_DATA_H
#define VDVAE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A set of n images of h x w x c uint8 pixels, NHWC, image i at pixels + i*h*w*c. */
typedef struct vd_images {
    int64_t n;
    int h, w, c;
    uint8_t *pixels;
    char **names;       /* n NUL-terminated names, or NULL (then "image_<i>") */
    /* ownership: pixels/names malloc'ed, or both inside a read-only mapping */
    void *map;
    size_t map_len;
} vd_images;

void vd_images_free(vd_images *im);
/* Allocate n zeroed images of h x w x c (no names). */
vd_status vd_images_alloc(vd_images *im, int64_t n, int h, int w, int c, vd_err *err);
static inline uint8_t *vd_image_ptr(const vd_images *im, int64_t i) {
    return im->pixels + (size_t)i * (size_t)im->h * (size_t)im->w * (size_t)im->c;
}

/* ---- file formats (errors name the file and, where it applies, the byte offset) ---------- */

/* IDX image file (magic 0x00000803, N x rows x cols uint8), gzip-compressed or raw. */
vd_status vd_read_idx_images(const char *path, vd_images *out, vd_err *err);
/* CIFAR-10 binary batches: records of 1 label byte + 3072 bytes (R, G, B planes of 32x32). */
vd_status vd_read_cifar10_bins(const char *const *paths, int n_paths, vd_images *out, vd_err *err);
/* Downsampled-ImageNet .npz (stored or deflated): array `data` uint8 [N, C*H*W] in CHW order. */
vd_status vd_read_npz_images(const char *path, int res, int channels, vd_images *out, vd_err *err);
/* One PNG or JPEG file decoded to 8-bit RGB (grey and alpha converted as PIL's convert("RGB")). */
vd_status vd_read_image_rgb(const char *path, int *h, int *w, uint8_t **rgb, vd_err *err);
/* Resize like PIL's Image.resize(size, BILINEAR): a triangle filter widened by the scale
 * factor when shrinking (antialiased), fixed-point rounding as Pillow does; bit-exact with
 * Pillow. VD_ERR_INVALID for a side < 1 or > 2^28, VD_ERR_NOMEM if its scratch buffers cannot
 * be allocated, else VD_OK. */
vd_status vd_resize_bilinear(const uint8_t *src, int sh, int sw, int c, uint8_t *dst, int dh,
                             int dw);
/* Every PNG/JPEG in dir, sorted by file name, RGB, resized to res x res when different; res 0:
 * at their own size, which must be the same for all (VD_ERR_INVALID naming the odd one). */
vd_status vd_read_image_folder(const char *dir, int res, vd_images *out, vd_err *err);

/* Packed dataset: one file (header, uint8 NHWC images, names) that vd_pack_open maps. */
vd_status vd_pack_write(const char *path, const vd_images *im, vd_err *err);
vd_status vd_pack_open(const char *path, vd_images *out, vd_err *err);
/* True when path names a packed file: it ends in ".vdpack" or starts with the pack magic. */
bool vd_pack_probe(const char *path);

/* ---- the reference's datasets and splits --------------------------------------------------- */

typedef enum vd_split { VD_SPLIT_TRAIN, VD_SPLIT_VAL, VD_SPLIT_TEST } vd_split;

/* The images of one split of hp's dataset_source as the reference builds them (MNIST padded
 * to 32x32; the test set of MNIST/CIFAR split in halves after the reference's fixed shuffle;
 * binarized MNIST val/test binarised once; folders and npz per data path). A path to a packed
 * file (.vdpack) in place of a data path is read directly. */
vd_status vd_dataset_load(const vd_hparams *hp, vd_split split, vd_images *out, vd_err *err);

/* ---- the loader ------------------------------------------------------------------------------ */

typedef struct vd_loader_opts {
    int batch_size;        /* per process */
    uint64_t seed;         /* run seed: the epoch order and augmentations derive from it */
    int rank, world_size;  /* sharding: each rank sees a disjoint 1/world of every epoch */
    bool shuffle;          /* a new permutation each epoch */
    bool drop_last;        /* drop the incomplete last batch of an epoch */
    bool flip;             /* random horizontal flip */
    bool binarize;         /* Bernoulli(v / 255) at every draw, values {0, 1} instead of
                              [-1, 1] (binarized MNIST; exact for its 0/255 val/test images) */
    int num_bits;          /* bit-depth reduction before scaling to [-1, 1] (not with binarize) */
    int threads;           /* background workers (>= 1) */
    int prefetch;          /* batches prepared ahead */
} vd_loader_opts;

/* The reference's settings for a split of hp's dataset: seed = run.seed; every split shuffled
 * with drop_last (as its DistributedSampler); flips (data.random_horizontal_flip) only for
 * training and never for the MNIST family; binarize for binarized_mnist; num_bits from data;
 * rank 0 of 1; 2 threads and 3 batches ahead (its DataLoader's workers and prefetch_factor). */
vd_loader_opts vd_loader_opts_for(const vd_hparams *hp, vd_split split, int batch_size);

/* Where a loader stands: resuming at it continues the same order. */
typedef struct vd_loader_pos {
    uint64_t epoch;
    uint64_t batch; /* batches already delivered in this epoch */
} vd_loader_pos;

/* The loader borrows the images: they must outlive it. */
typedef struct vd_loader vd_loader;

vd_status vd_loader_create(vd_loader **out, const vd_images *im, const vd_loader_opts *opts,
                           vd_err *err);
/* Next batch as float NHWC [batch_size, h, w, c] in [-1, 1] (names optional, may be NULL). */
vd_status vd_loader_next(vd_loader *ld, float *batch, int64_t *indices, vd_err *err);
/* The same, with *count = the real rows: batch_size except for the last batch of an epoch
 * without drop_last, whose missing rows are zeros with index -1. */
vd_status vd_loader_next_count(vd_loader *ld, float *batch, int64_t *indices, int *count,
                               vd_err *err);
vd_loader_pos vd_loader_position(const vd_loader *ld);
vd_status vd_loader_seek(vd_loader *ld, vd_loader_pos pos, vd_err *err);
int64_t vd_loader_batches_per_epoch(const vd_loader *ld);
void vd_loader_free(vd_loader *ld);

/* ---- download ---------------------------------------------------------------------------------- */

/* Fetch mnist | fashion_mnist | cifar-10 into dest_dir from base_url (NULL: the canonical
 * address), verifying the known SHA-256 of every file before it is moved into place. */
vd_status vd_data_download(const char *dataset, const char *dest_dir, const char *base_url,
                           vd_err *err);

#ifdef __cplusplus
}
#endif
#endif
