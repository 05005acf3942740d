/* The FID Inception-v3 network (the TensorFlow 2015-12-05 graph as pytorch-fid ports it) on the
 * backend op table: images in, pool3 features (2048) and the 1008 logits out. Weights come from
 * a safetensors file converted from pytorch-fid's pt_inception-2015-12-05-6726825d.pth by
 * tools/fid_weights.py (tensor names are that state_dict's); batch norms are folded into the
 * convolutions at load. */
#ifndef VD_FID_INCEPTION_H
#define VD_FID_INCEPTION_H

#include <stdint.h>

#include "backend/ops.h"
#include "vdvae/status.h"

#define VD_FID_DIMS 2048   /* pool3 features */
#define VD_FID_CLASSES 1008 /* the 2015 graph's classes (1000 + 8 unused) */

typedef struct vd_inception vd_inception;

/* The network on `be` for up to `batch` images of h x w x c (c 1 or 3: grey is repeated to
 * RGB), weights from `path`. A file that is not such a network's weights is VD_ERR_INVALID
 * naming the file and the first tensor that is missing or has the wrong shape. */
vd_status vd_inception_open(vd_inception **out, vd_backend *be, const char *path, int batch, int h,
                            int w, int c, vd_err *err);
void vd_inception_close(vd_inception *net);

/* n <= batch images, NHWC floats in [-1, 1] in the backend's memory (pytorch-fid's images
 * in [0, 1] after its 2x - 1), resized to 299 x 299 as F.interpolate(bilinear,
 * align_corners=False) does. Writes host arrays: pool3 [n][2048] and, when not NULL,
 * logits [n][1008]: fc.weight x pool3 without fc.bias, the "logits_unbiased" that the 2015
 * graph's Inception Score and torch-fidelity's use. */
vd_status vd_inception_run(vd_inception *net, const float *images, int n, float *pool3,
                           float *logits, vd_err *err);

/* One tensor a weights file must hold: its state_dict name and shape. */
typedef struct vd_inception_tensor {
    char name[64]; /* "Mixed_6b.branch7x7_2.bn.running_var", "fc.weight" */
    int ndim;
    int64_t shape[4];
} vd_inception_tensor;

/* The tensors of a weights file, in the network's order, into out[max]: returns how many
 * there are (472; more than max: only the first max are written). For tests and tools that
 * make such files. */
int vd_inception_tensors(vd_inception_tensor *out, int max);

#endif
