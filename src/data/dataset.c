/* The reference's datasets and splits (docs/model.md section 7): which files make each split of each
 * dataset_source, the MNIST padding, the fixed test-set shuffle that splits validation from
 * test, the one-off binarisation of binarized-MNIST val/test and the celebA 64 crop.
 *
 * Splits read: train <- data.train_data_path, val <- data.val_data_path, test <-
 * data.synthesis_data_path. A path that is a packed file is that split, already processed. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/mt19937.h"
#include "vdvae/data.h"
#include "vdvae/rng.h"

/* The reference splits MNIST's and CIFAR-10's test sets with sklearn.utils.shuffle(x,
 * random_state=101): first half validation, second half test. */
#define VD_SPLIT_SHUFFLE_SEED 101u
/* Philox key of the one-off binarisation of binarized-MNIST val/test: pixel p of image i of the
 * t10k file (padded to 32x32, p = row * 32 + col) is 1 when vd_rng_uniform(key,
 * vd_rng_stream(0, VD_SITE_DATA_BINARIZE), i * 1024 + p) < v / 255, stored as 255. The
 * reference draws these from torch's unseeded generator; any fixed draw is as good, and this
 * one makes every run see the same validation and test sets. */
#define VD_DATA_BINARIZE_SEED 101u
#define MNIST_PAD 2

static const char *split_key(vd_split split) {
    return split == VD_SPLIT_TRAIN ? "data.train_data_path"
           : split == VD_SPLIT_VAL ? "data.val_data_path"
                                   : "data.synthesis_data_path";
}

static const char *split_path(const vd_hparams *hp, vd_split split) {
    return split == VD_SPLIT_TRAIN ? hp->data.train_data_path
           : split == VD_SPLIT_VAL ? hp->data.val_data_path
                                   : hp->data.synthesis_data_path;
}

static vd_status check_shape(const vd_hparams *hp, const vd_images *im, const char *what,
                             vd_err *err) {
    int res = hp->data.target_res, ch = hp->data.channels;
    if (im->h == res && im->w == res && im->c == ch) return VD_OK;
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: images are %dx%dx%d but the config says target_res = %d, channels = %d",
                     what, im->h, im->w, im->c, res, ch);
}

/* dir/name, or dir/name.gz when only that exists. */
static vd_status find_file(const char *dir, const char *name, bool try_gz, char *out, size_t cap,
                           vd_err *err) {
    const char *sep = dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/";
    snprintf(out, cap, "%s%s%s", dir, sep, name);
    if (access(out, R_OK) == 0) return VD_OK;
    if (try_gz) {
        snprintf(out, cap, "%s%s%s.gz", dir, sep, name);
        if (access(out, R_OK) == 0) return VD_OK;
    }
    return vd_errorf(err, VD_ERR_IO, "%s%s%s%s: not found (fetch it with 'vdvae data')", dir, sep,
                     name, try_gz ? "[.gz]" : "");
}

/* ---- MNIST family and CIFAR-10 ------------------------------------------------------------ */

static vd_status pad_images(vd_images *im, int pad, vd_err *err) {
    vd_images big;
    vd_status st = vd_images_alloc(&big, im->n, im->h + 2 * pad, im->w + 2 * pad, im->c, err);
    if (st) return st;
    size_t row = (size_t)im->w * im->c;
    for (int64_t i = 0; i < im->n; i++)
        for (int y = 0; y < im->h; y++)
            memcpy(vd_image_ptr(&big, i) + ((size_t)(y + pad) * big.w + pad) * im->c,
                   vd_image_ptr(im, i) + y * row, row);
    vd_images_free(im);
    *im = big;
    return VD_OK;
}

/* out = images perm[first .. first + n) of src, in that order. */
static vd_status take_rows(const vd_images *src, const int64_t *perm, int64_t first, int64_t n,
                           vd_images *out, vd_err *err) {
    vd_status st = vd_images_alloc(out, n, src->h, src->w, src->c, err);
    if (st) return st;
    size_t len = (size_t)src->h * src->w * src->c;
    for (int64_t k = 0; k < n; k++)
        memcpy(vd_image_ptr(out, k), vd_image_ptr(src, perm[first + k]), len);
    return VD_OK;
}

static void binarize_once(vd_images *im, const int64_t *orig_index) {
    size_t len = (size_t)im->h * im->w * im->c;
    uint64_t stream = vd_rng_stream(0, VD_SITE_DATA_BINARIZE);
    for (int64_t k = 0; k < im->n; k++) {
        uint8_t *px = vd_image_ptr(im, k);
        for (size_t p = 0; p < len; p++) {
            float u = vd_rng_uniform(VD_DATA_BINARIZE_SEED, stream, (uint64_t)orig_index[k] * len + p);
            px[p] = u < (float)px[p] / 255.0f ? 255 : 0;
        }
    }
}

/* The val (first half) or test (second half) of the reference's fixed shuffle of `all`. */
static vd_status split_test_set(vd_images *all, vd_split split, bool binarize, vd_images *out,
                                vd_err *err) {
    int64_t n = all->n, half = n / 2;
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    if (!perm) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a permutation of %lld", (long long)n);
    vd_np_permutation(VD_SPLIT_SHUFFLE_SEED, n, perm);
    int64_t first = split == VD_SPLIT_VAL ? 0 : half;
    vd_status st = take_rows(all, perm, first, split == VD_SPLIT_VAL ? half : n - half, out, err);
    if (!st && binarize) binarize_once(out, perm + first);
    free(perm);
    return st;
}

static vd_status load_mnist(const vd_hparams *hp, vd_split split, const char *dir, vd_images *out,
                            vd_err *err) {
    char path[4096];
    const char *name = split == VD_SPLIT_TRAIN ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
    vd_status st = find_file(dir, name, true, path, sizeof path, err);
    vd_images all = {0};
    if (!st) st = vd_read_idx_images(path, &all, err);
    if (!st) st = pad_images(&all, MNIST_PAD, err);
    if (!st) st = check_shape(hp, &all, path, err);
    if (st || split == VD_SPLIT_TRAIN) {
        if (st) vd_images_free(&all);
        else *out = all;
        return st;
    }
    bool binarize = hp->data.dataset_source == VD_DATA_BINARIZED_MNIST;
    st = split_test_set(&all, split, binarize, out, err);
    vd_images_free(&all);
    return st;
}

static vd_status load_cifar10(const vd_hparams *hp, vd_split split, const char *dir,
                              vd_images *out, vd_err *err) {
    char paths[5][4096];
    const char *names[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                            "data_batch_4.bin", "data_batch_5.bin"};
    int n = split == VD_SPLIT_TRAIN ? 5 : 1;
    if (split != VD_SPLIT_TRAIN) names[0] = "test_batch.bin";
    const char *ptrs[5];
    for (int i = 0; i < n; i++) {
        vd_status st = find_file(dir, names[i], false, paths[i], sizeof paths[i], err);
        if (st) return st;
        ptrs[i] = paths[i];
    }
    vd_images all = {0};
    vd_status st = vd_read_cifar10_bins(ptrs, n, &all, err);
    if (!st) st = check_shape(hp, &all, dir, err);
    if (st || split == VD_SPLIT_TRAIN) {
        if (st) vd_images_free(&all);
        else *out = all;
        return st;
    }
    st = split_test_set(&all, split, false, out, err);
    vd_images_free(&all);
    return st;
}

/* ---- directories of files ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_ext(const char *name, const char *const *exts) {
    const char *dot = strrchr(name, '.');
    for (; dot && *exts; exts++)
        if (strcasecmp(dot + 1, *exts) == 0) return true;
    return false;
}

static void free_list(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* File names in dir with one of exts, sorted bytewise (Python's sorted(os.listdir())). */
static vd_status list_dir(const char *dir, const char *const *exts, char ***out, size_t *n_out,
                          vd_err *err) {
    DIR *d = opendir(dir);
    if (!d) return vd_errorf(err, VD_ERR_IO, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    vd_status st = VD_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !has_ext(e->d_name, exts)) continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!grown) st = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory listing", dir);
            else names = grown;
        }
        if (!st && !(names[n++] = strdup(e->d_name)))
            st = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory listing", dir);
    }
    closedir(d);
    if (!st && n == 0) st = vd_errorf(err, VD_ERR_INVALID, "%s: no input files found", dir);
    if (st) {
        free_list(names, n);
        return st;
    }
    qsort(names, n, sizeof *names, cmp_str);
    *out = names, *n_out = n;
    return VD_OK;
}

/* Appends src to dst (same image shape), growing dst by realloc (mremap for big blocks, so the
 * peak stays near the final size). */
static vd_status append_images(vd_images *dst, const vd_images *src, const char *path, vd_err *err) {
    if (dst->n && (dst->h != src->h || dst->w != src->w || dst->c != src->c))
        return vd_errorf(err, VD_ERR_INVALID, "%s: images are %dx%dx%d, earlier files %dx%dx%d",
                         path, src->h, src->w, src->c, dst->h, dst->w, dst->c);
    size_t img = (size_t)src->h * src->w * src->c;
    uint8_t *grown = realloc(dst->pixels, (size_t)(dst->n + src->n) * img + 1);
    if (!grown) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    memcpy(grown + (size_t)dst->n * img, src->pixels, (size_t)src->n * img);
    dst->pixels = grown, dst->n += src->n;
    dst->h = src->h, dst->w = src->w, dst->c = src->c;
    return VD_OK;
}

/* Every .npz of dir in sorted order, concatenated (downsampled ImageNet). */
static vd_status load_npz_dir(const vd_hparams *hp, const char *dir, vd_images *out, vd_err *err) {
    static const char *const exts[] = {"npz", NULL};
    char **names;
    size_t n;
    vd_status st = list_dir(dir, exts, &names, &n, err);
    if (st) return st;
    vd_images all = {0};
    for (size_t i = 0; !st && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        vd_images part = {0};
        st = vd_read_npz_images(path, hp->data.target_res, hp->data.channels, &part, err);
        if (!st) st = check_shape(hp, &part, path, err);
        if (!st) st = append_images(&all, &part, path, err);
        vd_images_free(&part);
    }
    free_list(names, n);
    if (st) vd_images_free(&all);
    else *out = all;
    return st;
}

/* data_scripts/preprocess_celeba64.py of the reference crops the 178x218 aligned CelebA images
 * to the box (left 15, top 40, right 163, bottom 188): 148x148 around the face, before the
 * loader resizes them to 64x64 (PIL bilinear). Images of any other size are taken as already
 * cropped (the output of that script) and only resized. */
#define CELEBA_W 178
#define CELEBA_H 218
#define CELEBA_X0 15
#define CELEBA_Y0 40
#define CELEBA_SIDE 148

static vd_status celeba_image(const char *path, int res, uint8_t *dst, vd_err *err) {
    int h, w;
    uint8_t *rgb = NULL;
    vd_status st = vd_read_image_rgb(path, &h, &w, &rgb, err);
    if (st) return st;
    const uint8_t *src = rgb;
    if (w == CELEBA_W && h == CELEBA_H) {
        src = rgb + ((size_t)CELEBA_Y0 * w + CELEBA_X0) * 3;
        for (int y = 0; y < CELEBA_SIDE; y++) /* compact the crop in place, row by row */
            memmove(rgb + (size_t)y * CELEBA_SIDE * 3, src + (size_t)y * w * 3, CELEBA_SIDE * 3);
        src = rgb, h = w = CELEBA_SIDE;
    }
    if (h == res && w == res) memcpy(dst, src, (size_t)res * res * 3);
    else st = vd_resize_bilinear(src, h, w, 3, dst, res, res);
    free(rgb);
    if (st) vd_errorf(err, st, "%s: cannot resize a %dx%d image to %dx%d", path, w, h, res, res);
    return st;
}

static vd_status load_celeba64(const char *dir, int res, vd_images *out, vd_err *err) {
    static const char *const exts[] = {"png", "jpg", "jpeg", NULL};
    char **names;
    size_t n;
    vd_status st = list_dir(dir, exts, &names, &n, err);
    if (st) return st;
    if (!st) st = vd_images_alloc(out, (int64_t)n, res, res, 3, err);
    for (size_t i = 0; !st && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        st = celeba_image(path, res, vd_image_ptr(out, (int64_t)i), err);
    }
    if (st) {
        vd_images_free(out);
        free_list(names, n);
        return st;
    }
    out->names = names; /* n strdup'ed names in a malloc'ed array, as vd_images owns them */
    return VD_OK;
}

static vd_status load_folder(const vd_hparams *hp, const char *dir, vd_images *out, vd_err *err) {
    vd_status st;
    if (hp->data.dataset_source == VD_DATA_CELEBA && hp->data.target_res == 64)
        st = load_celeba64(dir, 64, out, err);
    else
        st = vd_read_image_folder(dir, hp->data.target_res, out, err);
    if (!st && (st = check_shape(hp, out, dir, err))) vd_images_free(out);
    return st;
}

/* ---- entry ----------------------------------------------------------------------------------- */

static vd_status load_pack(const vd_hparams *hp, const char *path, vd_images *out, vd_err *err) {
    vd_status st = vd_pack_open(path, out, err);
    if (!st && (st = check_shape(hp, out, path, err))) vd_images_free(out);
    return st;
}

vd_status vd_dataset_load(const vd_hparams *hp, vd_split split, vd_images *out, vd_err *err) {
    memset(out, 0, sizeof *out);
    const char *path = split_path(hp, split);
    struct stat sb;
    if (!path[0] || stat(path, &sb) != 0)
        return vd_errorf(err, VD_ERR_IO, "%s = '%s': no such file or directory", split_key(split),
                         path);
    if (S_ISREG(sb.st_mode) && vd_pack_probe(path)) return load_pack(hp, path, out, err);
    if (!S_ISDIR(sb.st_mode))
        return vd_errorf(err, VD_ERR_INVALID, "%s = '%s': neither a directory nor a packed file",
                         split_key(split), path);
    switch (hp->data.dataset_source) {
    case VD_DATA_BINARIZED_MNIST:
    case VD_DATA_MNIST:
    case VD_DATA_FASHION_MNIST: return load_mnist(hp, split, path, out, err);
    case VD_DATA_CIFAR10: return load_cifar10(hp, split, path, out, err);
    case VD_DATA_IMAGENET: return load_npz_dir(hp, path, out, err);
    case VD_DATA_CELEBA:
    case VD_DATA_CELEBAHQ:
    case VD_DATA_FFHQ:
    case VD_DATA_CUSTOM: return load_folder(hp, path, out, err);
    }
    return vd_errorf(err, VD_ERR_INVALID, "data.dataset_source: unknown dataset %d",
                     (int)hp->data.dataset_source);
}
