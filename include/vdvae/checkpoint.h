/* Training checkpoints: one safetensors file per save (model, EMA and optimizer moments under
 * the reference state_dict names, counters and config hash in its metadata), kept to the last N. */
#ifndef VDVAE_CHECKPOINT_H
#define VDVAE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdvae/config.h"
#include "vdvae/model.h"
#include "vdvae/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value of the "format" metadata entry; a file without it is not one of ours. */
#define VD_CKPT_FORMAT "vdvae-checkpoint-1"

/* The counters a checkpoint carries besides the tensors. */
typedef struct vd_ckpt_state {
    int64_t step;                  /* global step of the last applied update */
    int64_t skips;                 /* updates skipped so far (NaN or too large a gradient norm) */
    uint64_t seed;                 /* run seed */
    uint64_t loader_epoch, loader_batch; /* vd_loader_pos of the training loader */
    char config_hash[65];          /* written: vd_config_hash of hp; read: the file's */
} vd_ckpt_state;

/* SHA-256 (lower-case hex) of the canonical text of the keys that fix the parameters' shapes
 * and meaning: every [model] key, data.channels, data.target_res and whether the data are
 * binarized MNIST. Two configs with one hash can share checkpoints. */
vd_status vd_config_hash(const vd_hparams *hp, char out[65], vd_err *err);

/* Write dir/checkpoint-<step, 10 digits>.safetensors atomically (temporary file, fsync,
 * rename), creating dir when missing. params, ema, m, u are host buffers of a->total_floats
 * floats; m and u may be NULL (no optimizer state is written). s->config_hash is ignored: the
 * hash of hp is written. After the write, checkpoints beyond the newest keep_last (by step;
 * keep_last <= 0 keeps all) are deleted, never the one just written, and temporary files left
 * by writers that died are removed. path_out (may be NULL) receives the path. */
vd_status vd_ckpt_save(const char *dir, const vd_hparams *hp, const vd_arch *a,
                       const float *params, const float *ema, const float *m, const float *u,
                       const vd_ckpt_state *s, int keep_last, char *path_out, size_t cap,
                       vd_err *err);

/* Called with one line for every checkpoint file that vd_ckpt_find_latest passes over. */
typedef void (*vd_ckpt_warn_fn)(void *ctx, const char *msg);

/* The newest checkpoint in dir that opens and validates (whole safetensors structure, our
 * format, a step matching its name); newer files that do not are skipped with a warning on
 * stderr. *found is false (and VD_OK) when there is none or dir does not exist. */
vd_status vd_ckpt_find_latest(const char *dir, char *path, size_t cap, bool *found, vd_err *err);
/* The same, with the warnings passed to warn (NULL: dropped). */
vd_status vd_ckpt_find_latest_cb(const char *dir, char *path, size_t cap, bool *found,
                                 vd_ckpt_warn_fn warn, void *ctx, vd_err *err);

/* Read a checkpoint written for hp/a: its config hash must be hp's (else VD_ERR_INVALID
 * naming the keys that differ), every requested tensor present as float32 with the exact
 * shape. Any of params, ema, m, u may be NULL (not read); m and u also need the optimizer the
 * file names to be hp's. A truncated or corrupt file is VD_ERR_INVALID naming the file and
 * the offset. s (may be NULL) receives the counters and the file's config hash. */
vd_status vd_ckpt_load(const char *path, const vd_hparams *hp, const vd_arch *a, float *params,
                       float *ema, float *m, float *u, vd_ckpt_state *s, vd_err *err);

#ifdef __cplusplus
}
#endif
#endif
