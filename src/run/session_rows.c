/* A session sharded by rows over data-parallel ranks (session.h): the noise of the rows this
 * rank holds, taken from the places those rows have in one process's batch, and digests of the
 * weights ranks compare. */
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"
#include "run/session.h"
#include "vdvae/rng.h"

int vd_session_world(const vd_session *s) { return s->comm ? s->comm->size : 1; }

static int64_t latent_row_floats(const vd_session *s, int i) {
    const vd_block *b = &s->arch.blocks[s->net.latent_block[i]];
    return (int64_t)b->res_out * b->res_out * b->n_variates;
}

/* What the output sampler draws per image (vd_net_sample_output): MoL, M Gumbel and C logistic
 * uniforms per pixel; Bernoulli, one per pixel of the output crop. */
static void output_row_floats(const vd_session *s, int64_t *first, int64_t *second) {
    int64_t px = (int64_t)s->arch.image_res * s->arch.image_res;
    if (s->net.dataset_binarized) *first = (int64_t)s->out_res * s->out_res, *second = 0;
    else *first = px * s->net.dmol.n_mix, *second = px * s->arch.image_ch;
}

vd_status vd_session_shard_rows(vd_session *s, vd_comm *comm, vd_err *err) {
    s->comm = comm;
    if (vd_session_world(s) <= 1) return VD_OK;
    vd_backend *be = s->be;
    int b = s->net.max_batch, n_td = s->arch.n_td;
    int64_t most = 0, g1, g2;
    output_row_floats(s, &g1, &g2);
    s->row_noise = calloc((size_t)n_td, sizeof *s->row_noise);
    if (!s->row_noise) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_td; i++) {
        int64_t n = b * latent_row_floats(s, i);
        if (n > most) most = n;
        if (!(s->row_noise[i] = be->i->alloc(be, (size_t)n * sizeof(float))))
            return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the noise of %d rows", b);
    }
    int64_t out = b * (g1 + g2);
    if (out > most) most = out;
    s->row_out_noise = be->i->alloc(be, (size_t)out * sizeof(float));
    s->row_host = malloc((size_t)most * sizeof(float));
    if (!s->row_out_noise || !s->row_host) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the noise of %d rows", b);
    return VD_OK;
}

/* Rows of the net's current batch, per_row draws each from (seed, stream) at global element
 * base + (j * N + r) * per_row, into host dst; normals or uniforms. */
static void fill_rows(const vd_session *s, uint64_t stream, int64_t base, int64_t per_row, bool normal, float *dst) {
    uint64_t seed = (uint64_t)s->hp->run.seed;
    int N = s->comm->size, r = s->comm->rank;
    for (int j = 0; j < s->net.batch; j++) {
        uint64_t first = (uint64_t)(base + ((int64_t)j * N + r) * per_row);
        if (normal) vd_rng_fill_normal(seed, stream, first, (size_t)per_row, dst + (int64_t)j * per_row);
        else vd_rng_fill_uniform(seed, stream, first, (size_t)per_row, dst + (int64_t)j * per_row);
    }
}

void vd_session_noise_rows(vd_session *s, vd_noise *noise, uint32_t at, uint32_t site) {
    vd_session_noise(s, noise, at, site);
    if (vd_session_world(s) <= 1) return;
    vd_backend *be = s->be;
    for (int i = 0; i < s->arch.n_td; i++) {
        int64_t per_row = latent_row_floats(s, i);
        fill_rows(s, noise[i].stream, 0, per_row, true, s->row_host);
        be->i->upload(be, s->row_noise[i], s->row_host, (size_t)(s->net.batch * per_row) * sizeof(float));
        noise[i].given = s->row_noise[i];
    }
}

void vd_session_output_noise_rows(vd_session *s, uint32_t at, uint32_t site, vd_noise *out) {
    *out = (vd_noise){.seed = (uint64_t)s->hp->run.seed, .stream = vd_rng_stream(at, site)};
    if (vd_session_world(s) <= 1) return;
    int64_t g1, g2, n = s->net.batch, global = n * s->comm->size; /* whole batches: every rank n rows */
    output_row_floats(s, &g1, &g2);
    /* MoL: all Gumbel draws of the batch first, then the logistic ones (backend/ops.h) */
    fill_rows(s, out->stream, 0, g1, false, s->row_host);
    if (g2) fill_rows(s, out->stream, global * g1, g2, false, s->row_host + n * g1);
    s->be->i->upload(s->be, s->row_out_noise, s->row_host, (size_t)(n * (g1 + g2)) * sizeof(float));
    out->given = s->row_out_noise;
}

vd_status vd_session_digest(vd_session *s, const float *const *bufs, int n, uint64_t *digest, vd_err *err) {
    size_t bytes = (size_t)s->arch.total_floats * sizeof(float);
    float *host = malloc(bytes);
    if (!host) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a digest of the weights");
    uint64_t h = VD_FNV64_INIT;
    for (int i = 0; i < n; i++) {
        s->be->i->download(s->be, host, bufs[i], bytes);
        h = vd_fnv64(h, host, bytes);
    }
    free(host);
    *digest = h;
    return vd_backend_check(s->be, err);
}
