/* Data parallel = one process (run by tests/mpi_train.sh under mpirun -np 2): from the same
 * seed and weights, 2 ranks with B/2 rows each compute the training step one process computes
 * on the whole batch B: the same loss (total, NELBO, every latent group's KL, hence the gamma
 * weights) and gradients within 1e-5 relative, the same gradient on both ranks bit for bit, and
 * the same bits whatever the bucket size of the all-reduce. Rank 0 runs the one-process step
 * itself. Images are drawn, not read: the check needs no dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"
#include "run/session.h"
#include "train/trainer.h"
#include "vd_test.h"
#include "vdvae/rng.h"

#define BATCH 8
#define TOL 1e-5

typedef struct step_out {
    double total, nelbo, kl[64];
    float *grads;
} step_out;

/* n drawn 8-bit images: rows differ, so a row taken from the wrong place would show. */
static vd_status draw_images(vd_images *im, const vd_hparams *hp, int n, vd_err *err) {
    int r = hp->data.target_res, c = hp->data.channels;
    vd_status st = vd_images_alloc(im, n, r, r, c, err);
    for (int64_t i = 0; !st && i < (int64_t)n * r * r * c; i++)
        im->pixels[i] = (uint8_t)(vd_rng_u32(5, 6, (uint64_t)i) >> 24);
    return st;
}

/* One training step at t = 1 from the initial weights: on a net of `rows` rows sharded over
 * comm (NULL: one process, all rows), with buckets of `bucket` floats (0: the default). */
static vd_status one_step(const vd_hparams *hp, const vd_images *im, vd_comm *comm, int bucket, step_out *o,
                          vd_err *err) {
    int world = comm ? comm->size : 1;
    vd_session s;
    vd_session_opts so = {.threads = 1, .batch = BATCH / world, .quiet = true};
    vd_loader *ld = NULL;
    vd_train_dist d = {.comm = comm};
    vd_status st = vd_session_open(&s, hp, &so, err);
    vd_loader_opts lo = vd_loader_opts_for(hp, VD_SPLIT_TRAIN, BATCH / world);
    lo.rank = comm ? comm->rank : 0, lo.world_size = world;
    if (!st) st = vd_session_shard_rows(&s, comm, err);
    if (!st) st = vd_loader_create(&ld, im, &lo, err);
    if (!st) st = vd_net_init_params(&s.net, (uint64_t)hp->run.seed, err);
    if (!st && comm) st = vd_grad_buckets_init(&d.buckets, comm, s.net.grads, s.arch.total_floats, bucket, err);
    if (!st) st = vd_loader_next(ld, s.batch, NULL, err);
    if (!st) {
        vd_session_upload_batch(&s);
        st = vd_train_compute_dist(&s, comm ? &d : NULL, 1, err);
    }
    if (!st) {
        o->total = s.loss.total, o->nelbo = s.loss.nelbo;
        for (int i = 0; i < s.arch.n_td && i < 64; i++) o->kl[i] = s.loss.kl[i];
        o->grads = malloc((size_t)s.arch.total_floats * sizeof(float));
        s.be->i->download(s.be, o->grads, s.net.grads, (size_t)s.arch.total_floats * sizeof(float));
    }
    if (comm) vd_grad_buckets_free(&d.buckets);
    if (ld) vd_loader_free(ld);
    vd_session_close(&s);
    return st;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* ||a - b|| / ||b|| over the whole buffer, and the worst tensor's. */
static double rel_l2(const float *a, const float *b, int64_t n) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return sqrt(d / fmax(r, 1e-300));
}

static void compare(const char *name, const vd_hparams *hp, vd_comm *c, const vd_images *im) {
    vd_err err = {0};
    step_out dist = {0}, small = {0}, one = {0};
    vd_arch a;
    if (vd_arch_build(&a, hp, &err)) VD_SETUP_FAIL("%s: %s", name, err.msg);
    vd_status st = one_step(hp, im, c, 0, &dist, &err);
    CHECKF(!st, "%s: the 2-rank step: %s", name, err.msg);
    st = one_step(hp, im, c, 4096, &small, &err);
    CHECKF(!st, "%s: the 2-rank step with 4096-float buckets: %s", name, err.msg);
    if (!dist.grads || !small.grads) VD_SETUP_FAIL("%s: no gradients", name);
    size_t bytes = (size_t)a.total_floats * sizeof(float);
    CHECKF(!memcmp(dist.grads, small.grads, bytes), "%s: the bucket size changed the summed gradient", name);
    /* every rank holds the same gradient, bit for bit */
    uint64_t mine = vd_fnv64(VD_FNV64_INIT, dist.grads, bytes), all[2] = {0, 0};
    CHECK(!c->i->allgather(c, &mine, all, sizeof mine, "the test's digests", &err));
    CHECKF(all[0] == all[1], "%s: ranks hold different gradients (%016llx, %016llx)", name,
           (unsigned long long)all[0], (unsigned long long)all[1]);
    if (c->rank == 0) {
        if (one_step(hp, im, NULL, 0, &one, &err)) VD_SETUP_FAIL("%s: the one-process step: %s", name, err.msg);
        double worst_kl = 0, g = rel_l2(dist.grads, one.grads, a.total_floats), worst_t = 0;
        for (int i = 0; i < a.n_td; i++) worst_kl = fmax(worst_kl, rel(dist.kl[i], one.kl[i]));
        for (int p = 0; p < a.n_params; p++)
            worst_t = fmax(worst_t, rel_l2(dist.grads + a.params[p].offset, one.grads + a.params[p].offset, a.params[p].numel));
        printf("%s: 2 ranks x %d vs 1 x %d: loss %.9g vs %.9g (rel %.2e), nelbo rel %.2e, worst KL group rel "
               "%.2e, gradient rel L2 %.2e (worst tensor %.2e)\n",
               name, BATCH / 2, BATCH, dist.total, one.total, rel(dist.total, one.total), rel(dist.nelbo, one.nelbo),
               worst_kl, g, worst_t);
        CHECKF(rel(dist.total, one.total) <= TOL, "%s: loss %.9g vs %.9g", name, dist.total, one.total);
        CHECKF(rel(dist.nelbo, one.nelbo) <= TOL, "%s: nelbo %.9g vs %.9g", name, dist.nelbo, one.nelbo);
        CHECKF(worst_kl <= TOL, "%s: a latent group's KL differs by %.2e", name, worst_kl);
        CHECKF(g <= TOL, "%s: gradients differ by %.2e relative", name, g);
        CHECKF(worst_t <= 10 * TOL, "%s: a tensor's gradient differs by %.2e relative", name, worst_t);
    }
    free(dist.grads), free(small.grads), free(one.grads);
    vd_arch_free(&a);
}

int main(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) VD_SETUP_FAIL("VD_SOURCE_DIR is not set (run through ctest)");
    vd_err err = {0};
    vd_comm *c = NULL;
    if (vd_comm_world(&c, &err)) VD_SETUP_FAIL("%s", err.msg);
    if (c->size != 2) VD_SETUP_FAIL("run under mpirun -np 2 (this job has %d ranks)", c->size);
    static const struct {
        const char *cfg, *name;
    } cases[] = {{"egs/fashion_mnist.cfg", "fashion_mnist (MoL, gamma schedule)"},
                 {"egs/binarized_mnist_small.cfg", "binarized_mnist_small (Bernoulli)"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", src, cases[k].cfg);
        vd_hparams hp;
        vd_images im = {0};
        const char *sets[] = {"train.batch_size=8"};
        if (vd_hparams_load(&hp, path, sets, 1, &err) || draw_images(&im, &hp, 4 * BATCH, &err))
            VD_SETUP_FAIL("%s: %s", path, err.msg);
        compare(cases[k].name, &hp, c, &im);
        vd_images_free(&im);
    }
    char who[32];
    snprintf(who, sizeof who, "mpi_dist_train rank %d", c->rank);
    int rc = vd_test_result(who);
    int all_rc[2] = {0, 0};
    c->i->allgather(c, &rc, all_rc, sizeof rc, "the test's results", &err);
    vd_comm_world_end(0);
    return all_rc[0] || all_rc[1];
}
