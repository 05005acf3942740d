/* vd_session: the model of a run on a backend, built once for a batch size, with the buffers
 * every loop over batches shares and the weights of a checkpoint. */
#include <stdio.h>
#include <stdlib.h>

#include "run/session.h"
#include "vdvae/rng.h"

static vd_status alloc_buffers(vd_session *s, vd_err *err) {
    const vd_arch *a = &s->arch;
    int b = s->net.batch, side = a->image_res > s->out_res ? a->image_res : s->out_res;
    int64_t most = (int64_t)b * side * side * a->image_ch;
    s->img_floats = (int64_t)b * a->image_res * a->image_res * a->image_ch;
    s->out_floats = (int64_t)b * s->out_res * s->out_res * a->image_ch;
    s->batch = malloc((size_t)s->img_floats * sizeof(float));
    s->host = malloc((size_t)(2 * most) * sizeof(float));
    s->samples = s->be->i->alloc(s->be, (size_t)most * sizeof(float));
    s->sums = malloc((size_t)(1 + a->n_td) * sizeof(float));
    s->noise = calloc((size_t)a->n_td, sizeof *s->noise);
    if (!s->batch || !s->host || !s->samples || !s->sums || !s->noise)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for a batch of %d", b);
    return VD_OK;
}

vd_status vd_session_open(vd_session *s, const vd_hparams *hp, const vd_session_opts *o, vd_err *err) {
    *s = (vd_session){.hp = hp};
    vd_status st = vd_arch_build(&s->arch, hp, err);
    if (!st) st = vd_backend_open(o->backend, o->threads, hp->run.precision, o->profile, &s->be, err);
    if (st) return st;
    vd_backend_allow_tf32(s->be, hp->run.allow_tf32); /* the reference trains with TF32 on */
    const char *note = vd_backend_precision_note(s->be);
    if (note && !o->quiet) printf("note: %s\n", note);
    vd_net_opts no;
    vd_net_opts_from_hparams(&no, hp, o->batch);
    if (o->keep_internals) no.checkpoint = false;
    if ((st = vd_net_create(&s->net, &s->arch, s->be, &no, err))) return st;
    if ((st = vd_loss_init(&s->loss, s->arch.n_td, err))) return st;
    s->out_res = s->net.dataset_binarized ? 28 : s->arch.image_res;
    return alloc_buffers(s, err);
}

void vd_session_close(vd_session *s) {
    if (s->be && s->samples) s->be->i->dealloc(s->be, s->samples);
    for (int i = 0; s->be && s->row_noise && i < s->arch.n_td; i++)
        if (s->row_noise[i]) s->be->i->dealloc(s->be, s->row_noise[i]);
    if (s->be && s->row_out_noise) s->be->i->dealloc(s->be, s->row_out_noise);
    free(s->row_noise), free(s->row_host);
    free(s->batch), free(s->host), free(s->sums), free(s->noise);
    vd_loss_free(&s->loss);
    if (s->net.arch) vd_net_free(&s->net);
    if (s->be) vd_backend_destroy(s->be);
    vd_arch_free(&s->arch);
    *s = (vd_session){0};
}

vd_status vd_session_checkpoint(const vd_rundir *rd, const char *explicit_path, char *path,
                                size_t cap, vd_err *err) {
    if (explicit_path) {
        if ((size_t)snprintf(path, cap, "%s", explicit_path) >= cap)
            return vd_errorf(err, VD_ERR_INVALID, "checkpoint path too long: %s", explicit_path);
        return VD_OK;
    }
    bool found = false;
    vd_status st = vd_ckpt_find_latest(rd->checkpoints_dir, path, cap, &found, err);
    if (!st && !found)
        st = vd_errorf(err, VD_ERR_INVALID, "no checkpoint in %s: train the run first", rd->checkpoints_dir);
    return st;
}

vd_status vd_session_load_weights(vd_session *s, const char *path, bool plain, vd_ckpt_state *state,
                                  vd_err *err) {
    size_t pbytes = (size_t)s->arch.total_floats * sizeof(float);
    float *w = malloc(pbytes);
    vd_ckpt_state cs;
    if (!w) return vd_errorf(err, VD_ERR_NOMEM, "out of memory reading %s", path);
    vd_status st = vd_ckpt_load(path, s->hp, &s->arch, plain ? w : NULL, plain ? NULL : w, NULL, NULL, &cs, err);
    if (!st) s->be->i->upload(s->be, s->net.params, w, pbytes);
    if (!st && state) *state = cs;
    free(w);
    return st ? st : vd_backend_check(s->be, err);
}

void vd_session_noise(const vd_session *s, vd_noise *noise, uint32_t at, uint32_t site) {
    for (int i = 0; i < s->arch.n_td; i++)
        noise[i] = (vd_noise){.seed = (uint64_t)s->hp->run.seed, .stream = vd_rng_stream(at, site + (uint32_t)i)};
}

void vd_session_upload_batch(vd_session *s) {
    s->be->i->upload(s->be, s->net.input.data, s->batch, (size_t)s->img_floats * sizeof(float));
}
