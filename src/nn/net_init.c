/* Parameter initialisation (docs/model.md section 3) from the arch table: each tensor draws
 * U(-bound, bound) from Philox keyed by (seed, its table index), then takes its scale, so the
 * same seed gives the same weights on every backend. PyTorch's own draws cannot be matched;
 * its distributions are (see tests/test_net_init.c). */
#include <stdlib.h>

#include "nn/net.h"
#include "vdvae/rng.h"

static void init_param(const vd_param *p, int index, uint64_t seed, float *out) {
    if (p->init == VD_INIT_ZEROS) {
        for (int64_t j = 0; j < p->numel; j++) out[j] = 0.f;
        return;
    }
    uint64_t stream = vd_rng_stream((uint32_t)index, VD_SITE_PARAM_INIT);
    vd_rng_fill_uniform(seed, stream, 0, (size_t)p->numel, out);
    double bound = p->init_bound, scale = p->init_scale;
    for (int64_t j = 0; j < p->numel; j++) out[j] = (float)((2.0 * out[j] - 1.0) * bound * scale);
}

void vd_arch_init_params(const vd_arch *a, uint64_t seed, float *host) {
    for (int i = 0; i < a->n_params; i++) init_param(&a->params[i], i, seed, host + a->params[i].offset);
}

vd_status vd_net_init_params(vd_net *net, uint64_t seed, vd_err *err) {
    const vd_arch *a = net->arch;
    float *host = malloc((size_t)a->total_floats * sizeof *host);
    if (!host) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for %lld parameters", (long long)a->total_floats);
    vd_arch_init_params(a, seed, host);
    net->be->i->upload(net->be, net->params, host, (size_t)a->total_floats * sizeof *host);
    free(host);
    return vd_backend_check(net->be, err);
}
