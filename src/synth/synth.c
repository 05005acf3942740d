/* vd_synth_run: the session of a trained run built for synthesis.batch_size with the weights
 * of one checkpoint, then the requested inference mode; plus what the modes share (progress,
 * PNG files). Under mpirun every rank loads the same config and weights (checked), the modes
 * share out their batches (vd_synth_batches) and rank 0 writes the files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/util.h"
#include "dist/agree.h"
#include "run/job.h"
#include "synth/synth_internal.h"
#include "vdvae/checkpoint.h"
#include "vdvae/image.h"

void vd_synth_progress(vd_synth *s, const char *what, int64_t done, int64_t total) {
    if (s->o->quiet || !s->writer || total <= 0) return;
    double el = vd_now_seconds() - s->t_start;
    if (s->tty) {
        int w = 30, fill = (int)(w * done / total);
        fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld batches %.1fs", what, fill, "##############################",
                w - fill, "", (long long)done, (long long)total, el);
        if (done == total) fputc('\n', stderr);
    } else {
        int64_t every = total / 10 > 0 ? total / 10 : 1;
        if (done % every == 0 || done == total)
            fprintf(stderr, "%s: %lld/%lld batches, %.1fs\n", what, (long long)done, (long long)total, el);
    }
    fflush(stderr);
}

/* Per-image files are many and cheap to make again, so they are renamed into place (never
 * half-written) but not fsync'ed: thousands of fsyncs would take longer than the model. */
vd_status vd_synth_write_png(vd_synth *s, const char *path, const float *x, int res, vd_err *err) {
    int c = s->ses.arch.image_ch;
    vd_images_to_u8(x, (int64_t)res * res * c, s->ses.net.dataset_binarized, s->u8);
    uint8_t *png = NULL;
    size_t n = 0;
    vd_atomic af;
    if (vd_png_encode(s->u8, res, res, c, &png, &n, err)) return vd_err_prefix(err, "%s", path);
    vd_status st = vd_atomic_begin(&af, path, err);
    if (!st && fwrite(png, 1, n, af.f) != n) st = vd_errorf(err, VD_ERR_IO, "%s: cannot write PNG", path);
    if (!st) st = vd_atomic_commit(&af, false, err);
    vd_atomic_abort(&af);
    free(png);
    return st;
}

vd_status vd_synth_write_grid(vd_synth *s, const char *path, const float *x, int n, int res, vd_err *err) {
    uint8_t *grid = NULL;
    int gh, gw;
    vd_status st = vd_session_grid(&s->ses, x, n, res, 0, &grid, &gh, &gw, err);
    if (!st) st = vd_png_write(path, grid, gh, gw, s->ses.arch.image_ch, err);
    free(grid);
    return st;
}

static vd_status setup(vd_synth *s, vd_err *err) {
    const vd_hparams *hp = s->hp;
    /* encoding and div_stats read block internals after a forward: no checkpointing */
    vd_session_opts so = {.backend = s->o->backend, .threads = s->o->threads, .batch = hp->synthesis.batch_size,
                          .keep_internals = true, .quiet = s->o->quiet || !s->writer};
    vd_status st = vd_session_open(&s->ses, hp, &so, err);
    if (st) return st;
    int n_td = s->ses.arch.n_td;
    s->u8 = malloc((size_t)s->ses.out_floats);
    s->prior_noise = calloc((size_t)n_td, sizeof *s->prior_noise);
    s->temps = malloc((size_t)n_td * sizeof(float));
    if (!s->u8 || !s->prior_noise || !s->temps)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a batch of %d", s->ses.net.batch);
    return VD_OK;
}

static vd_status load_weights(vd_synth *s, vd_err *err) {
    char path[VD_PATH_MAX + 64];
    vd_ckpt_state cs;
    bool plain = s->o->no_ema;
    vd_status st = vd_session_checkpoint(s->rd, s->o->checkpoint, path, sizeof path, err);
    if (!st) st = vd_session_load_weights(&s->ses, path, plain, &cs, err);
    if (s->comm->size > 1) { /* every rank the same weights, or none goes on */
        uint64_t digest = 0;
        const float *w = s->ses.net.params;
        char desc[256];
        st = vd_dist_agree_status(s->comm, st, err);
        if (!st) st = vd_session_digest(&s->ses, &w, 1, &digest, err);
        snprintf(desc, sizeof desc, "%.200s (step %lld), digest %016llx", path, (long long)cs.step, (unsigned long long)digest);
        if (!st) st = vd_dist_agree_digest(s->comm, "the checkpoint synthesised from", digest, desc, err);
    }
    if (st) return st;
    s->step = cs.step;
    if (!s->o->quiet && s->writer) printf("%s weights of %s (step %lld)\n", plain ? "plain" : "EMA", path, (long long)cs.step);
    return VD_OK;
}

static void teardown(vd_synth *s) {
    free(s->u8), free(s->prior_noise), free(s->temps);
    vd_session_close(&s->ses);
}

static const char *mode_name(vd_synth_mode m) {
    switch (m) {
    case VD_SYNTH_RECONSTRUCTION: return "reconstruction";
    case VD_SYNTH_GENERATION: return "generation";
    case VD_SYNTH_DIV_STATS: return "div_stats";
    case VD_SYNTH_ENCODING: return "encoding";
    case VD_SYNTH_DECODING: return "decoding";
    }
    return "?";
}

vd_status vd_synth_run(const vd_hparams *hp, const vd_rundir *rd, const vd_synth_opts *o, vd_synth_result *r,
                       vd_err *err) {
    vd_synth_mode mode = hp->synthesis.synthesis_mode;
    vd_synth s = {.hp = hp, .rd = rd, .o = o, .tty = isatty(STDERR_FILENO)};
    memset(r, 0, sizeof *r);
    vd_status st = vd_comm_world(&s.comm, err);
    if (st) return st;
    s.writer = s.comm->rank == 0;
    int n = o->out_dir ? snprintf(s.out_dir, sizeof s.out_dir, "%s", o->out_dir)
                       : snprintf(s.out_dir, sizeof s.out_dir, "%s/synthesis-%s", rd->logs_dir, mode_name(mode));
    if (n >= (int)sizeof s.out_dir) return vd_errorf(err, VD_ERR_INVALID, "output directory path too long");
    st = vd_hparams_agree(s.comm, hp, err);
    if (!st) st = setup(&s, err);
    if (s.comm->size > 1) st = vd_dist_agree_status(s.comm, st, err);
    if (!st) st = load_weights(&s, err);
    if (!st && s.writer) st = vd_mkdirs(s.out_dir, err);
    if (s.comm->size > 1) st = vd_dist_agree_status(s.comm, st, err);
    if (!st) {
        s.t_start = vd_now_seconds();
        if (mode == VD_SYNTH_GENERATION) st = vd_synth_generation(&s, r, err);
        else if (mode == VD_SYNTH_RECONSTRUCTION) st = vd_synth_reconstruction(&s, r, err);
        else if (mode == VD_SYNTH_ENCODING) st = vd_synth_encoding(&s, r, err);
        else if (mode == VD_SYNTH_DECODING) st = vd_synth_decoding(&s, r, err);
        else st = vd_synth_div_stats(&s, r, err);
    }
    r->step = s.step;
    snprintf(r->out_dir, sizeof r->out_dir, "%s", s.out_dir);
    teardown(&s);
    return st;
}
