/* Image sources for vdvae data pack and vdvae fid stats: which reader a path needs, by its
 * magic bytes first and by its name only where a format has none (configs, CIFAR batches). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/image_source.h"

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

static vd_status sniff(const char *path, vd_source_kind *kind, vd_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return vd_errorf(err, VD_ERR_INVALID, "%s: no such file or folder", path);
    if (S_ISDIR(st.st_mode)) return *kind = VD_SOURCE_FOLDER, VD_OK;
    if (ends_with(path, ".cfg")) return *kind = VD_SOURCE_CONFIG, VD_OK;
    if (vd_pack_probe(path)) return *kind = VD_SOURCE_PACK, VD_OK;
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return vd_errorf(err, VD_ERR_INVALID, "%s: cannot open", path);
    size_t got = fread(m, 1, sizeof m, f);
    fclose(f);
    if (got >= 2 && m[0] == 0x1f && m[1] == 0x8b) *kind = VD_SOURCE_IDX;
    else if (got == 4 && m[0] == 0 && m[1] == 0 && m[2] == 8 && m[3] == 3) *kind = VD_SOURCE_IDX;
    else if (got == 4 && !memcmp(m, "PK\3\4", 4)) *kind = VD_SOURCE_NPZ;
    else if (st.st_size > 0 && st.st_size % 3073 == 0) *kind = VD_SOURCE_CIFAR;
    else
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: unknown format (expected a .cfg, an image folder, an IDX file, "
                         "CIFAR-10 .bin batches, an .npz or a .vdpack)", path);
    return VD_OK;
}

vd_status vd_source_kind_of(char **src, int n_src, const vd_source_opts *o, vd_source_kind *kind,
                            vd_err *err) {
    vd_source_kind k = VD_SOURCE_CONFIG;
    vd_status st;
    *kind = VD_SOURCE_CONFIG;
    if (o->config) return VD_OK;
    for (int i = 0; i < n_src; i++) {
        if ((st = sniff(src[i], &k, err))) return st;
        if (i > 0 && k != *kind)
            return vd_errorf(err, VD_ERR_INVALID, "%s: not of the same kind as %s", src[i], src[0]);
        *kind = k;
    }
    return VD_OK;
}

static vd_status load_config(const char *path, const vd_source_opts *o, vd_images *im, vd_err *err) {
    vd_hparams *hp = malloc(sizeof *hp);
    if (!hp) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_hparams_load(hp, path, o->sets.items, o->sets.n, err);
    if (!st) st = vd_dataset_load(hp, o->split, im, err);
    free(hp);
    return st;
}

vd_status vd_source_load(char **src, int n_src, vd_source_kind kind, const vd_source_opts *o,
                         vd_images *im, vd_err *err) {
    switch (kind) {
    case VD_SOURCE_CONFIG: return load_config(o->config ? o->config : src[0], o, im, err);
    case VD_SOURCE_FOLDER: return vd_read_image_folder(src[0], o->res, im, err);
    case VD_SOURCE_IDX: return vd_read_idx_images(src[0], im, err);
    case VD_SOURCE_CIFAR: return vd_read_cifar10_bins((const char *const *)src, n_src, im, err);
    case VD_SOURCE_NPZ: return vd_read_npz_images(src[0], o->res, o->channels ? o->channels : 3, im, err);
    case VD_SOURCE_PACK: return vd_pack_open(src[0], im, err);
    }
    return vd_errorf(err, VD_ERR_INTERNAL, "unhandled source kind");
}

int vd_source_parse_split(const char *cmd, const char *s, vd_split *out) {
    if (!strcmp(s, "train")) *out = VD_SPLIT_TRAIN;
    else if (!strcmp(s, "val")) *out = VD_SPLIT_VAL;
    else if (!strcmp(s, "test")) *out = VD_SPLIT_TEST;
    else return vd_cli_usage_error(cmd, "--split must be train, val or test, not '%s'", s);
    return 0;
}
