/* The image sources the commands read (vdvae data pack, vdvae fid stats): a config's split, a
 * folder of PNG/JPEG files, an IDX file, CIFAR-10 batches, a downsampled-ImageNet .npz or a
 * packed file, told apart by their magic bytes. */
#ifndef VD_CLI_IMAGE_SOURCE_H
#define VD_CLI_IMAGE_SOURCE_H

#include <stdbool.h>

#include "cli/cli_util.h"
#include "vdvae/data.h"

typedef enum vd_source_kind {
    VD_SOURCE_CONFIG, VD_SOURCE_FOLDER, VD_SOURCE_IDX, VD_SOURCE_CIFAR, VD_SOURCE_NPZ, VD_SOURCE_PACK
} vd_source_kind;

typedef struct vd_source_opts {
    const char *config; /* --config CFG: the source is this config, whatever its name */
    vd_split split;     /* configs */
    bool split_given;
    int res, channels;  /* folders (0: every image's own size) and .npz (res required) */
    vd_cli_sets sets;   /* configs: --set overrides */
} vd_source_opts;

/* The kind of the n_src sources (all must be of one kind; only CIFAR-10 batches come several
 * at a time). A path that is none of them is VD_ERR_INVALID naming it. */
vd_status vd_source_kind_of(char **src, int n_src, const vd_source_opts *o, vd_source_kind *kind,
                            vd_err *err);
/* Read the sources (of `kind`) into im. */
vd_status vd_source_load(char **src, int n_src, vd_source_kind kind, const vd_source_opts *o,
                         vd_images *im, vd_err *err);
/* "train", "val" or "test" to a split; 0, or a usage error (2) for `cmd`. */
int vd_source_parse_split(const char *cmd, const char *s, vd_split *out);

#endif
