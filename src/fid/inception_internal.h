/* What the FID Inception network's two halves share: the convolution table that the
 * architecture (inception.c) records once while it plans and then walks in the same order
 * while it runs, and the loader (inception_weights.c) that fills it from the state_dict. */
#ifndef VD_FID_INCEPTION_INTERNAL_H
#define VD_FID_INCEPTION_INTERNAL_H

#include "backend/ops.h"
#include "vdvae/status.h"

#define FID_NAME_MAX 40

/* One BasicConv2d (conv without bias, BatchNorm2d(eps 0.001), ReLU) or the final fc, as the
 * backend runs it: the batch norm folded into w and b. */
typedef struct fid_layer {
    char name[FID_NAME_MAX]; /* the state_dict prefix: "Mixed_6b.branch7x7_2", "fc" */
    vd_conv_desc cv;
    int c_in_file;   /* input channels in the file: 3 where a grey network sums them (cv.c_in 1) */
    bool linear;     /* fc: a plain [c_out, c_in] weight with a bias, no batch norm, no ReLU */
    int64_t w_off, b_off; /* floats into the weights buffer */
} fid_layer;

/* Floats of a layer's folded weights and bias. */
static inline int64_t fid_layer_floats(const fid_layer *l) {
    return (int64_t)l->cv.c_out * l->cv.c_in * l->cv.kh * l->cv.kw + l->cv.c_out;
}

/* Read every layer's tensors from the safetensors file `path`, check their presence, shapes
 * and values, fold the batch norms, and upload the result into *weights (backend memory of
 * the layers' total floats, allocated here; the caller deallocates it). A file that is not
 * such a network's weights is VD_ERR_INVALID naming it and the first tensor at fault. */
vd_status fid_load_weights(vd_backend *be, const char *path, fid_layer *layers, int n_layers,
                           float **weights, vd_err *err);

#endif
