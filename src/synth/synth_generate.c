/* Generation: for every temperature setting, n_generation_batches batches from the prior,
 * each image a PNG and a grid per setting. The noise of setting k, batch j is the Philox
 * stream ((k << 24) | j, site), so images do not depend on threads or on other settings, nor
 * on which rank of a job draws them (rank 0 writes them all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_internal.h"
#include "vdvae/rng.h"

#define GRID_MAX 256

static void generate_batch(vd_synth *s, int k, int j) {
    uint64_t seed = (uint64_t)s->hp->run.seed;
    uint32_t at = ((uint32_t)k << 24) | (uint32_t)j;
    vd_session_noise(&s->ses, s->ses.noise, at, VD_SITE_SYNTH_PRIOR);
    vd_net_generate(&s->ses.net, s->temps, s->ses.noise);
    vd_noise out = {.seed = seed, .stream = vd_rng_stream(at, VD_SITE_SYNTH_OUTPUT)};
    vd_net_sample_output(&s->ses.net, (float)s->hp->synthesis.output_temperature, &out, s->ses.samples);
}

/* Setting k's grid gathers its first GRID_MAX images while its batches are written. */
typedef struct gen_ctx {
    float *grid;
    int n_grid;
    int64_t total;
} gen_ctx;

/* Batch idx = k * n_generation_batches + j: setting k, batch j; its images into rec. */
static vd_status gen_compute(vd_synth *s, int64_t idx, void *rec, void *ctx, vd_err *err) {
    (void)ctx;
    int nb = s->hp->synthesis.n_generation_batches, k = (int)(idx / nb), j = (int)(idx % nb);
    size_t img = (size_t)s->ses.out_res * s->ses.out_res * s->ses.arch.image_ch;
    vd_arch_latent_temps(&s->ses.arch, s->hp->model.n_down, &s->hp->synthesis.temperature_settings[k], s->temps);
    generate_batch(s, k, j);
    s->ses.be->i->download(s->ses.be, rec, s->ses.samples, (size_t)s->ses.net.batch * img * sizeof(float));
    return vd_backend_check(s->ses.be, err);
}

static vd_status gen_consume(vd_synth *s, int64_t idx, const void *rec, void *ctx, vd_err *err) {
    gen_ctx *g = ctx;
    int nb = s->hp->synthesis.n_generation_batches, k = (int)(idx / nb), j = (int)(idx % nb);
    int b = s->ses.net.batch, res = s->ses.out_res;
    size_t img = (size_t)res * res * s->ses.arch.image_ch;
    const float *x = rec;
    vd_status st = VD_OK;
    char path[VD_PATH_MAX + 64];
    for (int i = 0; i < b && !st; i++) {
        snprintf(path, sizeof path, "%s/setup-%d-image-%04d.png", s->out_dir, k, j * b + i);
        st = vd_synth_write_png(s, path, x + i * img, res, err);
        if (g->n_grid < GRID_MAX) memcpy(g->grid + g->n_grid++ * img, x + i * img, img * sizeof(float));
    }
    vd_synth_progress(s, "generation", idx + 1, g->total);
    if (st || j != nb - 1) return st;
    snprintf(path, sizeof path, "%s/setup-%d-grid.png", s->out_dir, k);
    st = vd_synth_write_grid(s, path, g->grid, g->n_grid, res, err);
    g->n_grid = 0; /* the next setting's grid */
    return st;
}

vd_status vd_synth_generation(vd_synth *s, vd_synth_result *r, vd_err *err) {
    const vd_hparams *hp = s->hp;
    int n_set = hp->synthesis.n_temperature_settings, n_batches = hp->synthesis.n_generation_batches;
    if (n_batches >= 1 << 24)
        return vd_errorf(err, VD_ERR_INVALID, "synthesis.n_generation_batches = %d: at most %d", n_batches, (1 << 24) - 1);
    size_t img = (size_t)s->ses.out_res * s->ses.out_res * s->ses.arch.image_ch;
    float *grid = malloc(GRID_MAX * img * sizeof *grid);
    if (!grid) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int64_t total = (int64_t)n_set * n_batches;
    gen_ctx ctx = {.grid = grid, .total = total};
    vd_status st = vd_synth_batches(s, total, (size_t)s->ses.net.batch * img * sizeof(float), gen_compute, gen_consume,
                                    &ctx, err);
    free(grid);
    r->images = (int)(total * s->ses.net.batch);
    if (!st && !s->o->quiet && s->writer)
        printf("generated %d images for %d temperature settings in %s\n", r->images, n_set, s->out_dir);
    return st;
}
