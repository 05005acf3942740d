/* Reading a twin case file (tests/reference/make_case.py) into a net: scalars, named tensors
 * uploaded to the backend, and the forward pass on the case's input with its posterior noise.
 * Shared by the tests that compare with PyTorch; include after vd_test.h. */
#ifndef VD_REF_CASE_H
#define VD_REF_CASE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "nn/loss.h"
#include "nn/net.h"
#include "vdvae/io.h"

static inline double ref_scalar(const vd_st *st, const char *name) {
    float v = NAN;
    int64_t shape[1] = {1};
    vd_err err;
    if (vd_st_read_f32(st, name, 1, shape, 1, &v, &err)) fprintf(stderr, "%s\n", err.msg);
    return v;
}

/* The case's tensor `name` in new backend memory (NULL when absent). */
static inline float *ref_upload_named(vd_backend *be, const vd_st *st, const char *name, int64_t *numel) {
    const vd_st_tensor *t = vd_st_find(st, name);
    if (!t) return NULL;
    float *host = malloc((size_t)t->numel * sizeof *host), *dev = be->i->alloc(be, (size_t)t->numel * sizeof *dev);
    vd_err err;
    CHECKF(vd_st_read_f32(st, name, t->ndim, t->shape, t->numel, host, &err) == VD_OK, "%s", err.msg);
    be->i->upload(be, dev, host, (size_t)t->numel * sizeof *host);
    free(host);
    if (numel) *numel = t->numel;
    return dev;
}

/* Forward of the case's `input` with noise eps.<i>, the loss computed at `step`; returns the
 * noise (backend memory: free with ref_free_noise) for a backward pass. */
static inline vd_noise *ref_case_forward(vd_net *net, const vd_hparams *hp, const vd_st *st, int step, vd_loss *loss) {
    vd_backend *be = net->be;
    const vd_arch *a = net->arch;
    vd_err err = {0};
    int64_t n_in = 0;
    float *in = ref_upload_named(be, st, "input", &n_in);
    CHECK(in && n_in == (int64_t)net->batch * a->image_res * a->image_res * a->image_ch);
    if (in) be->i->copy(be, &(vd_tensor){in, 1, 1, 1, (int)n_in, n_in}, &(vd_tensor){net->input.data, 1, 1, 1, (int)n_in, n_in});
    vd_noise *noise = calloc((size_t)a->n_td, sizeof *noise);
    char key[64];
    for (int i = 0; i < a->n_td; i++) {
        snprintf(key, sizeof key, "eps.%d", i);
        noise[i].given = ref_upload_named(be, st, key, NULL);
        CHECKF(noise[i].given, "%s missing", key);
    }
    vd_net_forward(net, noise);
    float *sums = malloc((size_t)(1 + a->n_td) * sizeof *sums);
    be->i->download(be, sums, net->sums, (size_t)(1 + a->n_td) * sizeof *sums);
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s", err.msg);
    vd_loss_compute(loss, hp, a, net->batch, step, sums);
    free(sums);
    if (in) be->i->dealloc(be, in);
    return noise;
}

static inline void ref_free_noise(vd_backend *be, vd_noise *noise, int n) {
    for (int i = 0; i < n; i++)
        if (noise[i].given) be->i->dealloc(be, (void *)noise[i].given);
    free(noise);
}

#endif
