/* vd_synth_run: the model of a trained run built for synthesis.batch_size with the weights of
 * one checkpoint, then the requested inference mode; plus what the modes share (per-level
 * temperatures, progress, PNG files, directories). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "synth/synth_internal.h"
#include "vdvae/checkpoint.h"
#include "vdvae/image.h"

void vd_synth_latent_temps(const vd_arch *a, int n_levels, const vd_temp_setting *t, float *temps) {
    int g = 0;
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        if (b->kind != VD_BLOCK_DOWN) continue;
        double v = t->kind == VD_TEMP_CONST ? t->t
                 : t->kind == VD_TEMP_LIST ? t->per_block[b->level]
                 : t->first + (t->last - t->first) * b->level / n_levels;
        temps[g++] = (float)v; /* latent groups are the DOWN blocks in execution order */
    }
}

vd_status vd_synth_mkdirs(const char *dir, vd_err *err) {
    char p[VD_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return vd_errorf(err, VD_ERR_INVALID, "path too long: %s", dir);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c) continue;
        char keep = *c;
        *c = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return vd_errorf(err, VD_ERR_IO, "cannot create directory %s: %s", p, strerror(errno));
        if (!(*c = keep)) break;
    }
    return VD_OK;
}

void vd_synth_progress(vd_synth *s, const char *what, int64_t done, int64_t total) {
    if (s->o->quiet || total <= 0) return;
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
    int c = s->arch.image_ch;
    vd_images_to_u8(x, (int64_t)res * res * c, s->net.dataset_binarized, s->u8);
    uint8_t *png = NULL;
    size_t n = 0;
    if (vd_png_encode(s->u8, res, res, c, &png, &n, err)) return vd_err_prefix(err, "%s", path);
    char tmp[VD_PATH_MAX + 96];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(png, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = false;
    int e = ok ? 0 : errno ? errno : EIO;
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    free(png);
    if (ok) return VD_OK;
    unlink(tmp);
    return vd_errorf(err, VD_ERR_IO, "%s: cannot write PNG: %s", path, strerror(e));
}

vd_status vd_synth_write_grid(vd_synth *s, const char *path, const float *x, int n, int res, vd_err *err) {
    int c = s->arch.image_ch;
    uint8_t *u8 = malloc((size_t)n * res * res * c), *grid = NULL;
    int gh, gw;
    if (!u8) return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a grid of %d images", n);
    vd_images_to_u8(x, (int64_t)n * res * res * c, s->net.dataset_binarized, u8);
    vd_status st = vd_image_grid(u8, n, res, res, c, 0, 2, &grid, &gh, &gw, err);
    if (!st) st = vd_png_write(path, grid, gh, gw, c, err);
    free(u8), free(grid);
    return st;
}

static vd_status create_backend(vd_synth *s, vd_err *err) {
    const char *name = s->o->backend ? s->o->backend : "cpu";
    if (!strcmp(name, "cpu")) return vd_backend_create_cpu(&s->be, s->o->threads, err);
    if (!strcmp(name, "cpu_ref")) return vd_backend_create_cpu_ref(&s->be, err);
    return vd_errorf(err, VD_ERR_INVALID, "unknown backend '%s' (cpu, cpu_ref)", name);
}

/* The backend, computing its convolutions in the run's [run] precision. */
static vd_status make_backend(vd_synth *s, vd_err *err) {
    vd_status st = create_backend(s, err);
    if (!st) st = vd_backend_set_precision(s->be, s->hp->run.precision, err);
    return st;
}

static vd_status setup(vd_synth *s, vd_err *err) {
    const vd_hparams *hp = s->hp;
    vd_status st = vd_arch_build(&s->arch, hp, err);
    if (!st) st = make_backend(s, err);
    if (st) return st;
    vd_net_opts no;
    vd_net_opts_from_hparams(&no, hp, hp->synthesis.batch_size);
    no.checkpoint = false; /* encoding and div_stats read block internals after a forward */
    if ((st = vd_net_create(&s->net, &s->arch, s->be, &no, err))) return st;
    if ((st = vd_loss_init(&s->loss, s->arch.n_td, err))) return st;
    const vd_arch *a = &s->arch;
    int b = s->net.batch, n_td = a->n_td;
    s->out_res = s->net.dataset_binarized ? 28 : a->image_res;
    s->img_floats = (int64_t)b * a->image_res * a->image_res * a->image_ch;
    size_t out = (size_t)b * s->out_res * s->out_res * a->image_ch;
    s->batch = malloc((size_t)s->img_floats * sizeof(float));
    s->host = malloc(out * sizeof(float));
    s->u8 = malloc(out);
    s->samples = s->be->i->alloc(s->be, out * sizeof(float));
    s->sums = malloc((size_t)(1 + n_td) * sizeof(float));
    s->noise = calloc((size_t)n_td, sizeof *s->noise);
    s->prior_noise = calloc((size_t)n_td, sizeof *s->prior_noise);
    s->temps = malloc((size_t)n_td * sizeof(float));
    if (!s->batch || !s->host || !s->u8 || !s->samples || !s->sums || !s->noise || !s->prior_noise || !s->temps)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a batch of %d", b);
    return VD_OK;
}

static vd_status load_weights(vd_synth *s, vd_err *err) {
    const vd_arch *a = &s->arch;
    char path[VD_PATH_MAX + 64];
    vd_status st = VD_OK;
    bool found = true;
    if (s->o->checkpoint) snprintf(path, sizeof path, "%s", s->o->checkpoint);
    else st = vd_ckpt_find_latest(s->rd->checkpoints_dir, path, sizeof path, &found, err);
    if (!st && !found)
        st = vd_errorf(err, VD_ERR_INVALID, "no checkpoint in %s: train the run first", s->rd->checkpoints_dir);
    if (st) return st;
    size_t pbytes = (size_t)a->total_floats * sizeof(float);
    float *w = malloc(pbytes);
    vd_ckpt_state cs;
    if (!w) return vd_errorf(err, VD_ERR_NOMEM, "out of memory reading %s", path);
    bool plain = s->o->no_ema;
    st = vd_ckpt_load(path, s->hp, a, plain ? w : NULL, plain ? NULL : w, NULL, NULL, &cs, err);
    if (!st) {
        s->be->i->upload(s->be, s->net.params, w, pbytes);
        s->step = cs.step;
        if (!s->o->quiet) printf("%s weights of %s (step %lld)\n", plain ? "plain" : "EMA", path, (long long)cs.step);
    }
    free(w);
    return st ? st : vd_backend_check(s->be, err);
}

static void teardown(vd_synth *s) {
    if (s->be && s->samples) s->be->i->dealloc(s->be, s->samples);
    free(s->batch), free(s->host), free(s->u8), free(s->sums), free(s->noise), free(s->prior_noise), free(s->temps);
    vd_loss_free(&s->loss);
    if (s->net.arch) vd_net_free(&s->net);
    if (s->be) vd_backend_destroy(s->be);
    vd_arch_free(&s->arch);
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
    int n = o->out_dir ? snprintf(s.out_dir, sizeof s.out_dir, "%s", o->out_dir)
                       : snprintf(s.out_dir, sizeof s.out_dir, "%s/synthesis-%s", rd->logs_dir, mode_name(mode));
    if (n >= (int)sizeof s.out_dir) return vd_errorf(err, VD_ERR_INVALID, "output directory path too long");
    vd_status st = setup(&s, err);
    if (!st) st = load_weights(&s, err);
    if (!st) st = vd_synth_mkdirs(s.out_dir, err);
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
