/* vd_train_run: set up the model, data and logs of a run, resume it from its newest
 * complete checkpoint, and step until the end, a limit, a signal or a streak of skipped
 * updates; a checkpoint is written at every evaluation interval and at the end. In a
 * data-parallel job (mpirun, docs/model.md section 5.5) every rank runs this with its rows of
 * each batch; rank 0 alone writes logs, images and checkpoints, and the ranks agree on the
 * state they start from, on the weights at every checkpoint and on when to stop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

#include "dist/agree.h"
#include "train/trainer.h"
#include "vdvae/checkpoint.h"
#include "vdvae/optim.h"

static volatile sig_atomic_t stop_requested;

/* SIGINT, SIGTERM: finish the step, checkpoint, stop. SIGUSR1 too: mpirun forwards it to every
 * rank (it turns SIGINT and SIGTERM into SIGTERM then SIGKILL within seconds), so it is how a
 * data-parallel run is stopped gently. The others are also noted for the communicator: a rank
 * waiting for a peer that never comes gives up instead of waiting for the SIGKILL. */
static void on_signal(int sig) {
    stop_requested = 1;
    if (sig != SIGUSR1) vd_comm_note_signal(sig);
}

static vd_status setup_model(vd_trainer *tr, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int world = tr->comm->size, b = hp->train.batch_size;
    if (b % world)
        return vd_errorf(err, VD_ERR_INVALID,
                         "train.batch_size = %d does not split over %d ranks: each rank takes "
                         "batch_size / N images of every batch (choose N dividing it)", b, world);
    tr->global_batch = b;
    vd_session_opts so = {.backend = tr->opts->backend, .threads = tr->opts->threads,
                          .batch = b / world, .quiet = tr->opts->quiet || !tr->writer};
    vd_status st = vd_optim_check(hp, err);
    if (!st) st = vd_session_open(&tr->ses, hp, &so, err);
    if (!st) st = vd_train_dist_open(tr, err);
    if (st) return st;
    vd_backend *be = tr->ses.be;
    size_t pbytes = (size_t)tr->ses.arch.total_floats * sizeof(float);
    tr->ema = be->i->alloc(be, pbytes);
    tr->m = be->i->alloc(be, pbytes);
    tr->u = be->i->alloc(be, pbytes);
    tr->dsum = be->i->alloc(be, sizeof(float));
    tr->flat_host = malloc(pbytes);
    if (!tr->ema || !tr->m || !tr->u || !tr->dsum || !tr->flat_host)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for the optimizer state of %lld parameters",
                         (long long)tr->ses.arch.total_floats);
    return VD_OK;
}

static vd_status setup_data(vd_trainer *tr, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int b = tr->ses.net.batch;
    vd_status st = vd_dataset_load(hp, VD_SPLIT_TRAIN, &tr->train_images, err);
    if (!st) st = vd_dataset_load(hp, VD_SPLIT_VAL, &tr->val_images, err);
    vd_loader_opts to = vd_loader_opts_for(hp, VD_SPLIT_TRAIN, b), vo = vd_loader_opts_for(hp, VD_SPLIT_VAL, b);
    /* each rank its rows of every batch: positions rank, rank + N, ... of the epoch's order */
    to.rank = vo.rank = tr->comm->rank;
    to.world_size = vo.world_size = tr->comm->size;
    if (!st) st = vd_loader_create(&tr->train_loader, &tr->train_images, &to, err);
    if (!st) st = vd_loader_create(&tr->val_loader, &tr->val_images, &vo, err);
    return st;
}

static vd_status setup_logs(vd_trainer *tr, vd_err *err) {
    if (!tr->writer) return VD_OK;
    char path[VD_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/train", tr->rd->logs_dir);
    vd_status st = vd_tb_open(&tr->tb_train, path, err);
    snprintf(path, sizeof path, "%s/val", tr->rd->logs_dir);
    if (!st) st = vd_tb_open(&tr->tb_val, path, err);
    snprintf(path, sizeof path, "%s/metrics.jsonl", tr->rd->logs_dir);
    if (!st) st = vd_metrics_open(&tr->metrics, path, err);
    return st;
}

/* Fresh weights (docs/model.md section 3), EMA = weights, zero moments; or the newest complete
 * checkpoint of the run. */
static vd_status start_or_resume(vd_trainer *tr, char *what, size_t cap, vd_err *err) {
    const vd_arch *a = &tr->ses.arch;
    vd_backend *be = tr->ses.be;
    size_t pbytes = (size_t)a->total_floats * sizeof(float);
    char path[VD_PATH_MAX + 64];
    bool found = false;
    vd_status st = vd_ckpt_find_latest(tr->rd->checkpoints_dir, path, sizeof path, &found, err);
    if (st) return st;
    if (!found) {
        snprintf(what, cap, "new weights from run.seed = %lld (no checkpoint in %s)", (long long)tr->hp->run.seed,
                 tr->rd->checkpoints_dir);
        if ((st = vd_net_init_params(&tr->ses.net, (uint64_t)tr->hp->run.seed, err))) return st;
        vd_tensor mt = {tr->m, 1, 1, 1, (int)a->total_floats, a->total_floats};
        vd_tensor ut = {tr->u, 1, 1, 1, (int)a->total_floats, a->total_floats};
        be->i->fill(be, &mt, 0.f);
        be->i->fill(be, &ut, 0.f);
        be->i->copy(be, &(vd_tensor){tr->ses.net.params, 1, 1, 1, (int)a->total_floats, a->total_floats},
                    &(vd_tensor){tr->ema, 1, 1, 1, (int)a->total_floats, a->total_floats});
        return vd_backend_check(be, err);
    }
    float *p = malloc(pbytes), *e = malloc(pbytes), *m = malloc(pbytes), *u = malloc(pbytes);
    vd_ckpt_state s;
    if (!p || !e || !m || !u) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory reading %s", path);
    if (!st) st = vd_ckpt_load(path, tr->hp, a, p, e, m, u, &s, err);
    if (!st) {
        be->i->upload(be, tr->ses.net.params, p, pbytes);
        be->i->upload(be, tr->ema, e, pbytes);
        be->i->upload(be, tr->m, m, pbytes);
        be->i->upload(be, tr->u, u, pbytes);
        tr->step = s.step;
        tr->skips = s.skips;
        st = vd_loader_seek(tr->train_loader, (vd_loader_pos){s.loader_epoch, s.loader_batch}, err);
        snprintf(what, cap, "%s (step %lld)", path, (long long)s.step);
        if (!tr->opts->quiet && tr->writer && !st) printf("resuming from %s (step %lld)\n", path, (long long)s.step);
    }
    free(p), free(e), free(m), free(u);
    return st ? st : vd_backend_check(be, err);
}

/* The state every rank of a job must hold alike: the four buffers and the counters. */
static vd_status state_digest(vd_trainer *tr, uint64_t *digest, vd_err *err) {
    const float *bufs[] = {tr->ses.net.params, tr->ema, tr->m, tr->u};
    vd_status st = vd_session_digest(&tr->ses, bufs, 4, digest, err);
    vd_loader_pos pos = vd_loader_position(tr->train_loader);
    int64_t counters[] = {tr->step, tr->skips, (int64_t)pos.epoch, (int64_t)pos.batch};
    *digest = vd_fnv64(*digest, counters, sizeof counters);
    return st;
}

/* The ranks start from the same state, or none starts (each reads the run's checkpoints: a
 * shared directory, or the same copy on every host). */
static vd_status agree_start(vd_trainer *tr, const char *what, vd_err *err) {
    uint64_t digest = 0;
    vd_status st = state_digest(tr, &digest, err);
    char desc[256];
    snprintf(desc, sizeof desc, "%.200s, digest %016llx", what, (unsigned long long)digest);
    if (!st) st = vd_dist_agree_digest(tr->comm, "the state the run starts from", digest, desc, err);
    return st;
}

/* Every rank must hold the same weights at a checkpoint (they apply the same sums): a rank
 * that drifted would go on training another model unnoticed. */
static vd_status agree_weights(vd_trainer *tr, vd_err *err) {
    uint64_t digest = 0;
    vd_status st = state_digest(tr, &digest, err);
    char what[96], desc[64];
    snprintf(what, sizeof what, "the training state at step %lld", (long long)tr->step);
    snprintf(desc, sizeof desc, "digest %016llx", (unsigned long long)digest);
    if (!st) st = vd_dist_agree_digest(tr->comm, what, digest, desc, err);
    return st;
}

vd_status vd_trainer_save(vd_trainer *tr, vd_err *err) {
    if (tr->dist) {
        vd_status st = agree_weights(tr, err);
        if (st || !tr->writer) return st;
    }
    const vd_arch *a = &tr->ses.arch;
    size_t pbytes = (size_t)a->total_floats * sizeof(float);
    float *p = malloc(pbytes), *e = malloc(pbytes), *m = malloc(pbytes), *u = malloc(pbytes);
    vd_status st = VD_OK;
    if (!p || !e || !m || !u) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory writing a checkpoint");
    if (!st) {
        tr->ses.be->i->download(tr->ses.be, p, tr->ses.net.params, pbytes);
        tr->ses.be->i->download(tr->ses.be, e, tr->ema, pbytes);
        tr->ses.be->i->download(tr->ses.be, m, tr->m, pbytes);
        tr->ses.be->i->download(tr->ses.be, u, tr->u, pbytes);
        vd_loader_pos pos = vd_loader_position(tr->train_loader);
        vd_ckpt_state s = {.step = tr->step, .skips = tr->skips, .seed = (uint64_t)tr->hp->run.seed,
                           .loader_epoch = pos.epoch, .loader_batch = pos.batch};
        st = vd_config_hash(tr->hp, s.config_hash, err);
        char path[VD_PATH_MAX + 64];
        if (!st) st = vd_ckpt_save(tr->rd->checkpoints_dir, tr->hp, a, p, e, m, u, &s,
                                   tr->hp->run.max_allowed_checkpoints, path, sizeof path, err);
        if (!st && !tr->opts->quiet) printf("saved %s\n", path);
    }
    free(p), free(e), free(m), free(u);
    return st;
}

static void teardown(vd_trainer *tr) {
    if (tr->train_loader) vd_loader_free(tr->train_loader);
    if (tr->val_loader) vd_loader_free(tr->val_loader);
    vd_images_free(&tr->train_images);
    vd_images_free(&tr->val_images);
    if (tr->tb_train) vd_tb_close(tr->tb_train);
    if (tr->tb_val) vd_tb_close(tr->tb_val);
    if (tr->metrics) vd_metrics_close(tr->metrics);
    vd_backend *be = tr->ses.be;
    void *dev[] = {tr->ema, tr->m, tr->u, tr->dsum};
    for (size_t i = 0; be && i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) be->i->dealloc(be, dev[i]);
    free(tr->flat_host);
    vd_train_dist_close(tr);
    vd_session_close(&tr->ses);
}

/* Histograms of the weights and of the last gradient, as the reference logs them. */
static vd_status log_weights(vd_trainer *tr, vd_err *err) {
    size_t n = (size_t)tr->ses.arch.total_floats;
    tr->ses.be->i->download(tr->ses.be, tr->flat_host, tr->ses.net.params, n * sizeof(float));
    vd_status st = vd_tb_histogram(tr->tb_train, "Weights/all", tr->step, tr->flat_host, n, err);
    tr->ses.be->i->download(tr->ses.be, tr->flat_host, tr->ses.net.grads, n * sizeof(float));
    if (!st) st = vd_tb_histogram(tr->tb_train, "Gradients/all", tr->step, tr->flat_host, n, err);
    return st;
}

/* A signal or the time limit: what this process alone may decide. */
static bool local_stop(const vd_trainer *tr) {
    const vd_train_opts *o = tr->opts;
    return stop_requested || (o->max_seconds > 0 && vd_now_seconds() - tr->t_start >= o->max_seconds);
}

/* In a job the local reasons travel with the next step's loss sums and every rank stops after
 * the step in which any rank asked (clocks and signals differ between ranks); the step count
 * is the same everywhere. */
static bool limit_reached(vd_trainer *tr) {
    const vd_train_opts *o = tr->opts;
    if (o->max_steps > 0 && tr->step - tr->step_at_start >= o->max_steps) return true;
    if (!tr->dist) return local_stop(tr);
    tr->dist->want_stop = local_stop(tr);
    return tr->dist->stop;
}

/* Skipped updates in a row (docs/model.md section 5.4, ours): when every update is skipped the
 * run no longer trains (openai/vdvae#25) and only burns time. From train.skip_warning_after on
 * the weights have not moved since the streak began, so checkpoints are held back: they would
 * only rotate the good ones out. */
static bool checkpoints_held(const vd_trainer *tr) {
    int64_t w = tr->hp->train.skip_warning_after;
    return w > 0 && tr->skip_streak >= w;
}

/* The warning, once per streak, and the stop: an error (exit 1) that writes nothing, so the
 * newest checkpoint stays the last one from before the streak. */
static vd_status check_skip_streak(vd_trainer *tr, vd_err *err) {
    const vd_hp_train *t = &tr->hp->train;
    double thr = tr->hp->optimizer.gradient_skip_threshold;
    vd_status st = VD_OK;
    if (t->skip_warning_after > 0 && tr->skip_streak == t->skip_warning_after && tr->writer) {
        if (tr->tty && !tr->opts->quiet) printf("\n"), fflush(stdout); /* end the live line */
        char stop[128] = "";
        if (t->skip_stop_after > 0)
            snprintf(stop, sizeof stop, "; the run stops at %lld in a row (train.skip_stop_after)",
                     (long long)t->skip_stop_after);
        fprintf(stderr,
                "warning: step %lld: %lld updates in a row skipped (train.skip_warning_after = %lld; "
                "gradient norm %g, optimizer.gradient_skip_threshold = %g); no checkpoint is written "
                "until an update is applied%s\n",
                (long long)tr->step, (long long)tr->skip_streak, (long long)t->skip_warning_after,
                tr->grad_norm, thr, stop);
        const char *names[] = {"skip_streak", "grad_norm", "gradient_skip_threshold"};
        double vals[] = {(double)tr->skip_streak, tr->grad_norm, thr};
        st = vd_metrics_write(tr->metrics, tr->step, "skip_warning", names, vals, 3, err);
        if (!st) st = vd_tb_scalar(tr->tb_train, "Mean_Max_Updates/skip_streak_warning", tr->step,
                                   (float)tr->skip_streak, err);
    }
    if (st || t->skip_stop_after <= 0 || tr->skip_streak < t->skip_stop_after) return st;
    const char *names[] = {"skip_streak", "grad_norm", "gradient_skip_threshold"};
    double vals[] = {(double)tr->skip_streak, tr->grad_norm, thr};
    if (tr->writer) vd_metrics_write(tr->metrics, tr->step, "skip_stop", names, vals, 3, NULL); /* best effort */
    tr->comm->failed_together = true; /* every rank stops here, on the same sums */
    char path[VD_PATH_MAX + 64], newest[VD_PATH_MAX + 160] = "there is no checkpoint of this run";
    bool found = false;
    if (!vd_ckpt_find_latest(tr->rd->checkpoints_dir, path, sizeof path, &found, NULL) && found)
        snprintf(newest, sizeof newest, "the newest checkpoint, %s, is from before the streak", path);
    return vd_errorf(err, VD_ERR_INTERNAL,
                     "stopped at step %lld: %lld updates in a row skipped (train.skip_stop_after = "
                     "%lld; gradient norm %g >= optimizer.gradient_skip_threshold = %g): the run no "
                     "longer trains. Nothing of this state was saved: %s. Resume with a lower "
                     "learning rate or another threshold (--set), or 'vdvae reset' the run",
                     (long long)tr->step, (long long)tr->skip_streak, (long long)t->skip_stop_after,
                     tr->grad_norm, thr, newest);
}

/* A checkpoint, unless a skip streak holds them back (then said once per held checkpoint). */
static vd_status save_unless_held(vd_trainer *tr, vd_err *err) {
    if (!checkpoints_held(tr)) return vd_trainer_save(tr, err);
    if (!tr->opts->quiet && tr->writer)
        printf("not saving step %lld: %lld updates in a row skipped; the newest checkpoint stays the "
               "one from before\n", (long long)tr->step, (long long)tr->skip_streak);
    return VD_OK;
}

static vd_status loop(vd_trainer *tr, bool *stopped_early, vd_err *err) {
    const vd_hparams *hp = tr->hp;
    int64_t every = hp->train.checkpoint_and_eval_interval_in_steps;
    vd_status st = VD_OK;
    *stopped_early = false;
    while (!st && tr->step < hp->train.total_train_steps) {
        if (limit_reached(tr)) {
            *stopped_early = true;
            break;
        }
        st = vd_trainer_step(tr, err);
        if (st) break;
        vd_trainer_progress(tr, false);
        if ((st = check_skip_streak(tr, err))) break;
        if (tr->step % hp->train.logging_interval_in_steps == 0 && tr->writer) st = vd_trainer_log_train(tr, err);
        if (!st && tr->step % every == 0) {
            vd_trainer_progress(tr, true);
            if (tr->writer) st = log_weights(tr, err);
            if (!st) st = vd_trainer_eval(tr, err);
            if (!st) st = save_unless_held(tr, err);
            if (!st && tr->writer) st = vd_tb_flush(tr->tb_train, err);
        }
    }
    if (st) return st;
    if (tr->step % every != 0) st = save_unless_held(tr, err); /* the last step, unless just saved */
    if (!st && tr->writer) st = vd_tb_flush(tr->tb_train, err);
    if (!st && tr->dist && !tr->opts->quiet) {
        /* what each rank holds, for whoever checks that they agree (the checkpoints did) */
        uint64_t digest = 0;
        if (!(st = state_digest(tr, &digest, err)))
            printf("rank %d of %d: step %lld, state digest %016llx\n", tr->comm->rank, tr->comm->size,
                   (long long)tr->step, (unsigned long long)digest);
        fflush(stdout);
    }
    if (!st && !tr->opts->quiet && tr->writer) {
        vd_trainer_progress(tr, true);
        if (*stopped_early) printf("stopped at step %lld; run the same command again to resume\n", (long long)tr->step);
        else printf("finished: %lld steps\n", (long long)tr->step);
    }
    return st;
}

vd_status vd_train_run(const vd_hparams *hp, const vd_rundir *rd, const vd_train_opts *opts,
                       bool *stopped_early, vd_err *err) {
    vd_trainer tr = {.hp = hp, .rd = rd, .opts = opts, .tty = isatty(STDOUT_FILENO)};
    vd_status st = vd_comm_world(&tr.comm, err);
    if (st) return st;
    tr.writer = tr.comm->rank == 0;
    stop_requested = 0;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term, old_usr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGUSR1, &sa, &old_usr1);
    char what[VD_PATH_MAX + 160] = "";
    /* each rank sets up alone (no collective inside), then all learn whether all could */
    st = setup_model(&tr, err);
    if (!st) st = setup_data(&tr, err);
    if (!st) st = setup_logs(&tr, err);
    if (!st) st = start_or_resume(&tr, what, sizeof what, err);
    if (tr.comm->size > 1) {
        st = vd_dist_agree_status(tr.comm, st, err);
        if (!st) st = agree_start(&tr, what, err);
    }
    if (!st) st = vd_train_dist_nccl(&tr, err);
    if (!st) {
        tr.step_at_start = tr.step;
        tr.t_start = tr.t_last_log = vd_now_seconds();
        st = loop(&tr, stopped_early, err);
    }
    teardown(&tr);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    return st;
}
