/* Data-parallel training-step time: `mpirun -np N dist_step CFG --batch B --threads T` against
 * `dist_step CFG --batch B --threads T'` (one process), on the same global batch B of random
 * images. A step is what the trainer does after the loader: forward, the loss sums' all-reduce,
 * backward with the gradient buckets' all-reduce, the norm, the update and the EMA. Prints the
 * median seconds per step (after one untimed warm-up step) and, for N > 1, how long each step
 * waited for the gradient sums after backward (what the overlap did not hide). Results:
 * bench/RESULTS.md "Data parallel". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "train/trainer.h"
#include "vdvae/optim.h"
#include "vdvae/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct args {
    const char *cfg;
    int batch, threads, steps;
    const char *sets[64];
    int n_sets;
} args;

static int parse(int argc, char **argv, args *a) {
    *a = (args){.threads = 1, .steps = 5};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) a->batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) a->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) a->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && a->n_sets < 64) a->sets[a->n_sets++] = argv[++i];
        else if (argv[i][0] != '-' && !a->cfg) a->cfg = argv[i];
        else return 2;
    }
    return a->cfg && a->steps >= 1 ? 0 : 2;
}

/* This rank's rows of a batch of random images in [-1, 1] ({0, 1} binarized). */
static void random_rows(vd_session *s, uint64_t step) {
    uint64_t rank = s->comm ? (uint64_t)s->comm->rank : 0;
    vd_rng_fill_uniform(17, step, rank * (uint64_t)s->img_floats, (size_t)s->img_floats, s->batch);
    for (int64_t i = 0; i < s->img_floats; i++)
        s->batch[i] = s->net.dataset_binarized ? (float)(s->batch[i] < 0.3f) : 2.f * s->batch[i] - 1.f;
    vd_session_upload_batch(s);
}

static vd_status one_step(vd_session *s, vd_train_dist *d, float *ema, float *m, float *u, float *dsum, int64_t t,
                          vd_err *err) {
    random_rows(s, (uint64_t)t);
    vd_status st = vd_train_compute_dist(s, d, t, err);
    vd_grad_check gc;
    if (!st) st = vd_grad_norm_clip_skip(s->be, s->hp, s->net.grads, s->arch.total_floats, dsum, &gc, err);
    if (!st && !gc.skip) {
        vd_optim_apply(s->be, &s->arch, s->hp, s->net.params, s->net.grads, m, u, t, 1e-4);
        vd_ema_apply(s->be, s->hp->train.ema_decay, s->net.params, ema, s->arch.total_floats);
    }
    return st ? st : vd_backend_check(s->be, err);
}

int main(int argc, char **argv) {
    args a;
    if (parse(argc, argv, &a)) {
        fprintf(stderr, "usage: [mpirun -np N] dist_step CFG [--batch B] [--threads T] [--steps S] [--set k=v]...\n");
        return 2;
    }
    vd_err err = {0};
    vd_comm *c = NULL;
    vd_hparams hp;
    vd_session s = {0};
    vd_train_dist d = {0};
    float *ema = NULL, *m = NULL, *u = NULL, *dsum = NULL;
    vd_status st = vd_comm_world(&c, &err);
    if (!st) st = vd_hparams_load(&hp, a.cfg, a.sets, a.n_sets, &err);
    int world = st ? 1 : c->size, b = a.batch > 0 ? a.batch : hp.train.batch_size;
    if (!st && b % world) st = vd_errorf(&err, VD_ERR_INVALID, "batch %d does not split over %d ranks", b, world);
    vd_session_opts so = {.threads = a.threads, .batch = b / world, .quiet = true};
    if (!st) st = vd_session_open(&s, &hp, &so, &err);
    if (!st) st = vd_session_shard_rows(&s, c, &err);
    if (!st) st = vd_net_init_params(&s.net, 1, &err);
    size_t pbytes = st ? 0 : (size_t)s.arch.total_floats * sizeof(float);
    if (!st) {
        ema = s.be->i->alloc(s.be, pbytes), m = s.be->i->alloc(s.be, pbytes), u = s.be->i->alloc(s.be, pbytes);
        dsum = s.be->i->alloc(s.be, sizeof(float));
        vd_tensor z = {m, 1, 1, 1, (int)s.arch.total_floats, s.arch.total_floats};
        if (!ema || !m || !u || !dsum) st = vd_errorf(&err, VD_ERR_NOMEM, "out of memory");
        else s.be->i->fill(s.be, &z, 0.f), z.data = u, s.be->i->fill(s.be, &z, 0.f);
    }
    d.comm = c;
    if (!st && world > 1) st = vd_grad_buckets_init(&d.buckets, c, s.net.grads, s.arch.total_floats, 0, &err);
    double *times = calloc((size_t)a.steps, sizeof *times), waited = 0;
    if (!st) st = one_step(&s, world > 1 ? &d : NULL, ema, m, u, dsum, 1, &err); /* warm-up: primitives, caches */
    for (int i = 0; i < a.steps && !st; i++) {
        double t0 = vd_now_seconds();
        st = one_step(&s, world > 1 ? &d : NULL, ema, m, u, dsum, 2 + i, &err);
        times[i] = vd_now_seconds() - t0;
        waited += d.buckets.waited;
    }
    if (!st && world > 1) st = c->i->sum_f64(c, times, (size_t)a.steps, "the step times", &err);
    if (!st && c->rank == 0) {
        for (int i = 0; i < a.steps; i++) times[i] /= world; /* the ranks' mean of each step */
        qsort(times, (size_t)a.steps, sizeof *times, cmp_double);
        printf("%s: global batch %d = %d rank%s x %d, %d thread%s each: %.3f s/step (median of %d; %.3f-%.3f)", a.cfg,
               b, world, world > 1 ? "s" : "", b / world, a.threads, a.threads > 1 ? "s" : "", times[a.steps / 2],
               a.steps, times[0], times[a.steps - 1]);
        if (world > 1)
            printf(", waiting for the gradient sums after backward %.3f s/step (%.1f MB summed in %d buckets)",
                   waited / a.steps, pbytes / 1e6, d.buckets.started);
        printf("\n");
    }
    if (st) fprintf(stderr, "dist_step%s: %s\n", vd_comm_world_tag(), err.msg);
    free(times);
    if (world > 1) vd_grad_buckets_free(&d.buckets);
    void *dev[] = {ema, m, u, dsum};
    for (int i = 0; i < 4; i++)
        if (dev[i]) s.be->i->dealloc(s.be, dev[i]);
    vd_session_close(&s);
    return vd_comm_world_end(st ? vd_status_exit_code(st) : 0);
}
