/* The FID Inception network's weights: pytorch-fid's FIDInceptionV3 state_dict converted to
 * safetensors (tools/fid_weights.py: float32, the .pth's names), read layer by layer with every
 * tensor's presence, shape and values checked, batch norms folded into the convolutions, and
 * uploaded to the backend in one buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fid/inception_internal.h"
#include "vdvae/io.h"

/* torchvision's BasicConv2d: BatchNorm2d(out_channels, eps=0.001). */
#define FID_BN_EPS 1e-3

/* Where a wrong file came from and what would be right, after the reader's own words. */
static vd_status weights_error(vd_err *err, vd_status st) {
    if (!err || st == VD_OK) return st;
    char msg[VD_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return vd_errorf(err, st,
                     "FID Inception weights: %s (expected pytorch-fid's FIDInceptionV3 state_dict "
                     "as safetensors: tools/fid_weights.py converts "
                     "pt_inception-2015-12-05-6726825d.pth)",
                     msg);
}

/* Tensor `prefix``suffix` of the given shape into dst as float32; every value finite. */
static vd_status read_tensor(const vd_st *st, const char *path, const char *prefix,
                             const char *suffix, int ndim, const int64_t *shape, float *dst,
                             vd_err *err) {
    char name[FID_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= shape[i];
    vd_status s = vd_st_read_f32(st, name, ndim, shape, numel, dst, err);
    if (s != VD_OK) return s;
    for (int64_t i = 0; i < numel; i++)
        if (!isfinite(dst[i]))
            return vd_errorf(err, VD_ERR_INVALID, "%s: tensor '%s' element %lld is %g", path, name,
                             (long long)i, dst[i]);
    return VD_OK;
}

/* Floats of a layer's tensors as the file holds them (the scratch one layer needs). */
static int64_t file_floats(const fid_layer *l) {
    return (int64_t)l->cv.c_out * l->c_in_file * l->cv.kh * l->cv.kw + 4 * (int64_t)l->cv.c_out;
}

/* fc: weight [c_out, c_in] and bias [c_out], copied as they are. */
static vd_status load_linear(const vd_st *st, const char *path, const fid_layer *l, float *w,
                             float *b, vd_err *err) {
    int64_t ws[2] = {l->cv.c_out, l->cv.c_in}, bs[1] = {l->cv.c_out};
    vd_status s = read_tensor(st, path, l->name, ".weight", 2, ws, w, err);
    return s != VD_OK ? s : read_tensor(st, path, l->name, ".bias", 1, bs, b, err);
}

/* y = gamma (conv(x) - mean) / sqrt(var + eps) + beta = conv'(x) + b' with every output
 * channel's filter scaled by gamma / sqrt(var + eps): folded in double, rounded once. A grey
 * network's first conv sums its filters over the file's three input channels, which is the
 * conv of the grey channel repeated (to rounding). */
static void fold(const fid_layer *l, const float *wf, const float *gamma, const float *beta,
                 const float *mean, const float *var, float *w, float *b) {
    int co = l->cv.c_out, ci = l->cv.c_in, cf = l->c_in_file, k = l->cv.kh * l->cv.kw;
    for (int o = 0; o < co; o++) {
        double s = gamma[o] / sqrt((double)var[o] + FID_BN_EPS);
        for (int i = 0; i < ci; i++) {
            int f0 = ci == cf ? i : 0, f1 = ci == cf ? i + 1 : cf; /* grey: all of the file's */
            for (int j = 0; j < k; j++) {
                double sum = 0;
                for (int f = f0; f < f1; f++)
                    sum += wf[((int64_t)o * cf + f) * k + j];
                w[((int64_t)o * ci + i) * k + j] = (float)(sum * s);
            }
        }
        b[o] = (float)(beta[o] - mean[o] * s);
    }
}

/* A BasicConv2d: conv.weight [c_out, c_in, kh, kw] and bn.{weight,bias,running_mean,
 * running_var} [c_out], read into scratch and folded into w and b. */
static vd_status load_conv(const vd_st *st, const char *path, const fid_layer *l, float *scratch,
                           float *w, float *b, vd_err *err) {
    int co = l->cv.c_out;
    int64_t ws[4] = {co, l->c_in_file, l->cv.kh, l->cv.kw}, vs[1] = {co};
    float *wf = scratch, *bn = scratch + ws[0] * ws[1] * ws[2] * ws[3];
    static const char *const bn_names[4] = {".bn.weight", ".bn.bias", ".bn.running_mean",
                                            ".bn.running_var"};
    vd_status s = read_tensor(st, path, l->name, ".conv.weight", 4, ws, wf, err);
    for (int i = 0; i < 4 && s == VD_OK; i++)
        s = read_tensor(st, path, l->name, bn_names[i], 1, vs, bn + (int64_t)i * co, err);
    if (s != VD_OK) return s;
    const float *var = bn + 3 * co;
    for (int o = 0; o < co; o++)
        if (var[o] < 0)
            return vd_errorf(err, VD_ERR_INVALID, "%s: tensor '%s.bn.running_var' element %d is "
                             "negative (%g): not a variance", path, l->name, o, var[o]);
    fold(l, wf, bn, bn + co, bn + 2 * co, var, w, b);
    return VD_OK;
}

/* Every layer into host (its folded floats at w_off / b_off). */
static vd_status load_all(const vd_st *st, const char *path, const fid_layer *layers, int n,
                          float *host, vd_err *err) {
    int64_t cap = 0;
    for (int i = 0; i < n; i++)
        cap = file_floats(&layers[i]) > cap ? file_floats(&layers[i]) : cap;
    float *scratch = malloc((size_t)cap * sizeof *scratch);
    if (!scratch) return vd_errorf(err, VD_ERR_NOMEM, "FID Inception weights: no memory to read %s", path);
    vd_status s = VD_OK;
    for (int i = 0; i < n && s == VD_OK; i++) {
        const fid_layer *l = &layers[i];
        s = l->linear ? load_linear(st, path, l, host + l->w_off, host + l->b_off, err)
                      : load_conv(st, path, l, scratch, host + l->w_off, host + l->b_off, err);
    }
    free(scratch);
    return s;
}

vd_status fid_load_weights(vd_backend *be, const char *path, fid_layer *layers, int n_layers,
                           float **weights, vd_err *err) {
    *weights = NULL;
    int64_t total = 0;
    for (int i = 0; i < n_layers; i++) {
        layers[i].w_off = total;
        layers[i].b_off = total + fid_layer_floats(&layers[i]) - layers[i].cv.c_out;
        total += fid_layer_floats(&layers[i]);
    }
    vd_st *st = NULL;
    vd_status s = vd_st_open(path, &st, err);
    if (s != VD_OK) return weights_error(err, s);
    float *host = malloc((size_t)total * sizeof *host);
    if (!host) {
        vd_st_close(st);
        return vd_errorf(err, VD_ERR_NOMEM, "FID Inception weights: no memory for %lld floats",
                         (long long)total);
    }
    s = load_all(st, path, layers, n_layers, host, err);
    vd_st_close(st);
    if (s == VD_OK) {
        *weights = be->i->alloc(be, (size_t)total * sizeof(float));
        if (*weights) be->i->upload(be, *weights, host, (size_t)total * sizeof(float));
        else s = vd_errorf(err, VD_ERR_NOMEM, "FID Inception weights: the backend has no memory "
                           "for %lld floats", (long long)total);
    }
    free(host);
    return s == VD_ERR_NOMEM ? s : weights_error(err, s);
}
