/* Generation: for every temperature setting, n_generation_batches batches from the prior,
 * each image a PNG and a grid per setting. The noise of setting k, batch j is the Philox
 * stream ((k << 24) | j, site), so images do not depend on threads or on other settings. */
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

static vd_status one_setting(vd_synth *s, int k, float *grid, int64_t *done, int64_t total, vd_err *err) {
    int b = s->ses.net.batch, res = s->ses.out_res, n_grid = 0;
    size_t img = (size_t)res * res * s->ses.arch.image_ch;
    vd_arch_latent_temps(&s->ses.arch, s->hp->model.n_down, &s->hp->synthesis.temperature_settings[k], s->temps);
    vd_status st = VD_OK;
    char path[VD_PATH_MAX + 64];
    for (int j = 0; j < s->hp->synthesis.n_generation_batches && !st; j++) {
        generate_batch(s, k, j);
        s->ses.be->i->download(s->ses.be, s->ses.host, s->ses.samples, b * img * sizeof(float));
        if ((st = vd_backend_check(s->ses.be, err))) break;
        for (int i = 0; i < b && !st; i++) {
            snprintf(path, sizeof path, "%s/setup-%d-image-%04d.png", s->out_dir, k, j * b + i);
            st = vd_synth_write_png(s, path, s->ses.host + i * img, res, err);
            if (n_grid < GRID_MAX) memcpy(grid + n_grid++ * img, s->ses.host + i * img, img * sizeof(float));
        }
        vd_synth_progress(s, "generation", ++*done, total);
    }
    snprintf(path, sizeof path, "%s/setup-%d-grid.png", s->out_dir, k);
    if (!st) st = vd_synth_write_grid(s, path, grid, n_grid, res, err);
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
    int64_t done = 0, total = (int64_t)n_set * n_batches;
    vd_status st = VD_OK;
    for (int k = 0; k < n_set && !st; k++) st = one_setting(s, k, grid, &done, total, err);
    free(grid);
    r->images = (int)(total * s->ses.net.batch);
    if (!st && !s->o->quiet)
        printf("generated %d images for %d temperature settings in %s\n", r->images, n_set, s->out_dir);
    return st;
}
