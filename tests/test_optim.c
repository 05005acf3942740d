/* Optimisation for training: the Adamax update against values worked out by hand, Adam and
 * RAdam against a double-precision restatement of optax's formulas, decoupled weight decay
 * only on the flagged tensors of a real architecture, the learning-rate schedules at their
 * key steps, gradient clipping and skipping (NaN included) and the EMA, on both CPU backends
 * (skipped without oneDNN's). With the argument torch (its own ctest entry), a few Adamax steps
 * are compared with a torch update written here. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/ops.h"
#include "vd_test.h"
#include "vdvae/model.h"
#include "vdvae/optim.h"

static vd_backend *ref, *fast; /* fast is NULL when the build has no oneDNN */

static bool close_rel(double got, double want, double tol) {
    return fabs(got - want) <= tol * fmax(fabs(want), 1e-30);
}

static void check_vec(const char *what, const float *got, const double *want, int n, double tol) {
    for (int i = 0; i < n; i++)
        CHECKF(close_rel(got[i], want[i], tol), "%s[%d]: %.9g, expected %.9g", what, i, got[i],
               want[i]);
}

static vd_hparams base_hparams(void) {
    vd_hparams hp;
    vd_hparams_defaults(&hp);
    return hp;
}

static void expect_backend_ok(vd_backend *be, const char *what) {
    vd_err err = {0};
    CHECKF(vd_backend_check(be, &err) == VD_OK, "%s on %s: %s", what, be->i->name, err.msg);
}

/* ---- Adamax by hand: lr 0.01, b1 0.9, b2 0.999, eps 1e-8; two steps, decay 0 and 0.1 ----
 * Step 1: m = 0.1 g, bc1 = 0.1, so m_hat = g; v = |g| + eps; u = g / (|g| + eps) ~ sign(g).
 *   p = 0.5 - 0.01 = 0.49, -1 + 0.01 = -0.99, 2 (g = 0: m = 0, v = eps, u = 0).
 *   With decay 0.1: u += 0.1 p: 0.5 - 0.01 (1 + 0.05) = 0.4895, -1 + 0.01 (1 + 0.1) = -0.989,
 *   2 - 0.01 (0.2) = 1.998.
 * Step 2, g = (-0.3, 0.05, 0.4): m = 0.9 m + 0.1 g = (-0.021, -0.013, 0.04); bc1 = 0.19;
 *   v = max(0.999 v, |g| + eps) = (0.30000001, 0.999 * 0.20000001 = 0.19980001, 0.40000001);
 *   u = (m / 0.19) / v = (-0.368421040, -0.342447632, 0.526315776);
 *   p = 0.49 + 0.0036842104 = 0.4936842104, -0.99 + 0.0034244763 = -0.9865755237,
 *   2 - 0.0052631578 = 1.9947368422.
 *   With decay: u += 0.1 (0.4895, -0.989, 1.998): p = 0.4895 - 0.01 (-0.36842104 + 0.04895)
 *   = 0.4926947104, -0.989 - 0.01 (-0.34244763 - 0.0989) = -0.9845865237,
 *   1.998 - 0.01 (0.52631578 + 0.1998) = 1.9907388422.
 * The table below carries eps's effect on the 9th-10th digit (u = 0.1 / 0.10000001, ...). */
static void adamax_by_hand(vd_backend *be, double wd) {
    static const float g1[3] = {0.1f, -0.2f, 0.0f}, g2[3] = {-0.3f, 0.05f, 0.4f};
    static const double p1[2][3] = {{0.490000001, -0.9900000005, 2.0},
                                    {0.489500001, -0.9890000005, 1.998}};
    static const double p2[2][3] = {{0.4936842114, -0.9865755236, 1.9947368421},
                                    {0.4926947114, -0.9845865236, 1.9907388421}};
    static const double m2[3] = {-0.021, -0.013, 0.04};
    static const double v2[3] = {0.30000001, 0.19980001, 0.40000001};
    float p[3] = {0.5f, -1.0f, 2.0f}, m[3] = {0}, v[3] = {0};
    int k = wd > 0;
    vd_optim_step o = {VD_OPT_ADAMAX, 0.01, 0.9, 0.999, 1e-8, wd, 1};
    be->i->optim_update(be, &o, p, g1, m, v, 3);
    check_vec("adamax step 1 p", p, p1[k], 3, 2e-7);
    o.t = 2;
    be->i->optim_update(be, &o, p, g2, m, v, 3);
    check_vec("adamax step 2 p", p, p2[k], 3, 2e-7);
    check_vec("adamax step 2 m", m, m2, 3, 2e-7);
    check_vec("adamax step 2 v", v, v2, 3, 2e-7);
    expect_backend_ok(be, "adamax by hand");
}

/* ---- Adam and RAdam: optax's scale_by_adam / scale_by_radam restated in double ---- */

typedef struct twin {
    double p, m, v;
} twin;

static void twin_step(int kind, const vd_optim_step *o, twin *s, double g) {
    double t = (double)o->t, b1 = o->beta1, b2 = o->beta2;
    s->m = b1 * s->m + (1 - b1) * g;
    s->v = b2 * s->v + (1 - b2) * g * g;
    double m_hat = s->m / (1 - pow(b1, t)), v_hat = s->v / (1 - pow(b2, t));
    double u = m_hat / (sqrt(v_hat) + o->eps);
    if (kind == VD_OPT_RADAM) {
        double rho_inf = 2 / (1 - b2) - 1, b2t = pow(b2, t);
        double rho = rho_inf - 2 * t * b2t / (1 - b2t);
        double r = sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho));
        u = rho >= 5 ? r * u : m_hat;
    }
    s->p -= o->lr * (u + o->weight_decay * s->p);
}

#define TWIN_N 64
#define TWIN_STEPS 12

static double det_uniform(uint64_t *s, double lo, double hi) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(*s >> 11) * 0x1.0p-53;
}

static void adam_vs_twin(vd_backend *be, int kind, double wd) {
    float p[TWIN_N], g[TWIN_N], m[TWIN_N] = {0}, v[TWIN_N] = {0};
    twin s[TWIN_N];
    uint64_t seed = 12345;
    for (int i = 0; i < TWIN_N; i++) {
        p[i] = (float)det_uniform(&seed, -1, 1);
        s[i] = (twin){p[i], 0, 0};
    }
    vd_optim_step o = {kind, 3e-3, 0.9, 0.99, 1e-8, wd, 0};
    double worst = 0;
    for (int t = 1; t <= TWIN_STEPS; t++) {
        o.t = t;
        for (int i = 0; i < TWIN_N; i++)
            g[i] = (float)det_uniform(&seed, -1, 1);
        be->i->optim_update(be, &o, p, g, m, v, TWIN_N);
        for (int i = 0; i < TWIN_N; i++) {
            twin_step(kind, &o, &s[i], g[i]);
            worst = fmax(worst, fabs(p[i] - s[i].p) / fmax(fabs(s[i].p), 1e-3));
        }
    }
    CHECKF(worst < 1e-5, "%s %s wd %g: relative error %.3g against the double formula",
           be->i->name, kind == VD_OPT_ADAM ? "adam" : "radam", wd, worst);
    expect_backend_ok(be, "adam/radam");
}

/* RAdam with b2 = 0.999 has rho < 5 for t <= 5: the step is lr * m_hat, no second moment. */
static void radam_unadapted(vd_backend *be) {
    float p[2] = {1.0f, -1.0f}, g[2] = {0.25f, -4.0f}, m[2] = {0}, v[2] = {0};
    vd_optim_step o = {VD_OPT_RADAM, 0.1, 0.9, 0.999, 1e-8, 0, 1};
    be->i->optim_update(be, &o, p, g, m, v, 2);
    check_vec("radam step 1", p, (const double[]){1.0 - 0.025, -1.0 + 0.4}, 2, 1e-6);
}

/* ---- weight decay only where the architecture flags it ---- */

static const vd_backend_i *inner;
static int spans;
static int64_t covered;

static void counting_update(vd_backend *be, const vd_optim_step *o, float *p, const float *g,
                            float *m, float *v, size_t n) {
    spans++;
    covered += (int64_t)n;
    inner->optim_update(be, o, p, g, m, v, n);
}

/* The reference's JAX rule (get_l2_mask_from_params) restated on our tensor names. */
static bool decays_by_name(const char *name) {
    static const char *const exempt[] = {"bias", "input_conv", "output_conv", "trainable_h",
                                         "projection"};
    for (size_t i = 0; i < sizeof exempt / sizeof *exempt; i++)
        if (strstr(name, exempt[i])) return false;
    return true;
}

static int expected_spans(const vd_arch *a, bool decay_on) {
    int runs = a->n_params > 0;
    for (int i = 1; i < a->n_params; i++)
        runs += decay_on && a->params[i].weight_decay != a->params[i - 1].weight_decay;
    return runs;
}

/* With g = 0 an Adamax step moves a parameter only through decay: p (1 - lr l2). */
static void decay_on_arch(const vd_arch *a, vd_hparams *hp, bool decay_on) {
    hp->loss.use_weight_decay = decay_on;
    int64_t n = a->total_floats;
    float *p = malloc(n * sizeof *p), *p0 = malloc(n * sizeof *p0), *g = calloc(n, sizeof *g);
    float *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    for (int64_t i = 0; i < n; i++)
        p[i] = p0[i] = (float)(1 + i % 7) * 0.125f;
    vd_backend_i tab = *ref->i;
    inner = ref->i;
    tab.optim_update = counting_update;
    ref->i = &tab;
    spans = 0;
    covered = 0;
    vd_optim_apply(ref, a, hp, p, g, m, v, 1, 0.5);
    ref->i = inner;
    expect_backend_ok(ref, "vd_optim_apply");
    CHECKF(spans == expected_spans(a, decay_on), "decay %d: %d optim_update calls, expected %d",
           decay_on, spans, expected_spans(a, decay_on));
    CHECKF(covered == n, "decay %d: calls covered %lld of %lld floats", decay_on,
           (long long)covered, (long long)n);
    int wrong = 0, decayed = 0;
    double f = 1 - 0.5 * hp->loss.l2_weight;
    for (int k = 0; k < a->n_params; k++) {
        const vd_param *pr = &a->params[k];
        bool want = decay_on && decays_by_name(pr->name);
        decayed += want;
        CHECKF(pr->weight_decay == decays_by_name(pr->name), "%s: weight_decay flag %d",
               pr->name, pr->weight_decay);
        for (int64_t i = pr->offset; i < pr->offset + pr->numel; i++) {
            bool ok = want ? close_rel(p[i], p0[i] * f, 1e-6) : p[i] == p0[i];
            if (!ok && wrong++ < 3)
                CHECKF(ok, "%s[%lld]: %.9g from %.9g (decay expected: %d)", pr->name,
                       (long long)(i - pr->offset), p[i], p0[i], want);
        }
    }
    CHECKF(wrong == 0, "decay %d: %d parameters moved wrongly", decay_on, wrong);
    CHECKF(!decay_on || decayed > 0, "no tensor decays at all");
    free(p), free(p0), free(g), free(m), free(v);
}

static void test_weight_decay_mask(void) {
    const char *src = getenv("VD_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/egs/fashion_mnist.cfg", src ? src : ".");
    vd_hparams hp;
    vd_arch a = {0};
    vd_err err = {0};
    vd_status st = vd_hparams_load(&hp, path, NULL, 0, &err);
    CHECKF(st == VD_OK, "loading %s: %s", path, err.msg);
    if (st != VD_OK) return;
    CHECKF(vd_optim_check(&hp, &err) == VD_OK, "%s: %s", path, err.msg);
    st = vd_arch_build(&a, &hp, &err);
    CHECKF(st == VD_OK, "building %s: %s", path, err.msg);
    if (st != VD_OK) return;
    hp.loss.l2_weight = 0.1;
    decay_on_arch(&a, &hp, true);
    decay_on_arch(&a, &hp, false);
    vd_arch_free(&a);
}

/* ---- learning-rate schedules ---- */

typedef struct lr_point {
    int64_t step;
    double lr;
} lr_point;

static void check_schedule(const char *what, const vd_hparams *hp, const lr_point *pts, int n) {
    for (int i = 0; i < n; i++) {
        double got = vd_lr_schedule(hp, pts[i].step);
        CHECKF(close_rel(got, pts[i].lr, 1e-12) || (pts[i].lr == 0 && got == 0),
               "%s at step %lld: %.12g, expected %.12g", what, (long long)pts[i].step, got,
               pts[i].lr);
    }
}

static void test_schedules(void) {
    vd_hparams hp = base_hparams();
    vd_hp_optimizer *O = &hp.optimizer;
    O->learning_rate = 1e-3;
    O->min_learning_rate = 2e-4;
    O->warmup_steps = 100;
    O->decay_start = 1000;
    O->decay_steps = 2000;
    O->learning_rate_scheme = VD_LR_COSINE;
    /* warmup to step 100; flat to decay_start; half way (step 2000) cos = 0.5:
     * 1e-3 (0.8 * 0.5 + 0.2) = 6e-4; the end (3000) and beyond: min_lr. */
    static const lr_point cosine[] = {{0, 0},        {50, 5e-4},    {100, 1e-3},   {999, 1e-3},
                                      {1000, 1e-3},  {2000, 6e-4},  {3000, 2e-4},  {100000, 2e-4}};
    check_schedule("cosine", &hp, cosine, 8);
    O->learning_rate_scheme = VD_LR_CONSTANT;
    O->warmup_steps = 50;
    static const lr_point constant[] = {{0, 0}, {25, 5e-4}, {50, 1e-3}, {1000000, 1e-3}};
    check_schedule("constant", &hp, constant, 4);
    O->warmup_steps = 0;
    check_schedule("constant without warmup", &hp, (const lr_point[]){{0, 1e-3}, {7, 1e-3}}, 2);
    /* noam, warmup 400: lr0 * 20 * min(step^-0.5, step / 8000) */
    O->learning_rate_scheme = VD_LR_NOAM;
    O->warmup_steps = 400;
    static const lr_point noam[] = {{0, 0}, {100, 2.5e-4}, {400, 1e-3}, {1600, 5e-4}};
    check_schedule("noam", &hp, noam, 4);
    /* exponential, rate 0.5 every 500 steps from 1000, floored at 1e-4, capped at lr0 */
    O->learning_rate_scheme = VD_LR_EXPONENTIAL;
    O->decay_rate = 0.5;
    O->decay_start = 1000;
    O->decay_steps = 500;
    O->min_learning_rate = 1e-4;
    static const lr_point expo[] = {{0, 1e-3},    {1000, 1e-3}, {1500, 5e-4},
                                    {2000, 2.5e-4}, {3000, 1e-4}, {100000, 1e-4}};
    check_schedule("exponential", &hp, expo, 6);
}

static void test_optim_check(void) {
    vd_hparams hp = base_hparams();
    vd_err err = {0};
    CHECKF(vd_optim_check(&hp, &err) == VD_OK, "defaults: %s", err.msg);
    hp.optimizer.warmup_steps = (double)hp.optimizer.decay_start + 1;
    CHECK(vd_optim_check(&hp, &err) == VD_ERR_INVALID && strstr(err.msg, "optimizer.warmup_steps"));
    hp = base_hparams();
    hp.optimizer.learning_rate_scheme = VD_LR_NOAM;
    hp.optimizer.warmup_steps = 0;
    CHECK(vd_optim_check(&hp, &err) == VD_ERR_INVALID && strstr(err.msg, "noam"));
}

/* ---- gradient norm, clipping, skipping ---- */

static void test_grad_rules(void) {
    vd_hparams hp = base_hparams();
    vd_hp_optimizer *O = &hp.optimizer;
    O->clip_gradient_norm = true;
    O->gradient_clip_norm_value = 300;
    O->gradient_skip = true;
    O->gradient_skip_threshold = 800;
    vd_grad_check c = vd_grad_judge(&hp, 100);
    CHECK(c.clip_coef == 1.0 && !c.skip && c.norm == 100);
    c = vd_grad_judge(&hp, 600);
    CHECK(close_rel(c.clip_coef, 300 / (600 + 1e-6), 1e-15) && !c.skip);
    CHECK(!vd_grad_judge(&hp, 799.99).skip && vd_grad_judge(&hp, 800).skip);
    CHECK(vd_grad_judge(&hp, INFINITY).skip);
    c = vd_grad_judge(&hp, NAN);
    CHECK(c.skip && c.clip_coef == 1.0 && isnan(c.norm));
    O->gradient_skip = false;
    CHECK(!vd_grad_judge(&hp, NAN).skip && !vd_grad_judge(&hp, 1e30).skip);
    O->clip_gradient_norm = false;
    CHECK(vd_grad_judge(&hp, 1e30).clip_coef == 1.0);

    /* on a backend: (3, 4) has norm 5; clip to 1 gives (0.6, 0.8) up to the 1e-6 */
    O->clip_gradient_norm = true;
    O->gradient_clip_norm_value = 1;
    O->gradient_skip = true;
    O->gradient_skip_threshold = 10;
    float g[2] = {3, 4}, dsum = 0;
    vd_err err = {0};
    CHECK(vd_grad_norm_clip_skip(ref, &hp, g, 2, &dsum, &c, &err) == VD_OK);
    CHECK(close_rel(c.norm, 5, 1e-7) && !c.skip);
    check_vec("clipped", g, (const double[]){0.6, 0.8}, 2, 1e-6);
    O->gradient_skip_threshold = 4;
    float h[2] = {3, 4};
    CHECK(vd_grad_norm_clip_skip(ref, &hp, h, 2, &dsum, &c, &err) == VD_OK);
    CHECK(c.skip && close_rel(c.norm, 5, 1e-7) && h[0] == 3 && h[1] == 4);
    float bad[3] = {1, NAN, 2};
    CHECK(vd_grad_norm_clip_skip(ref, &hp, bad, 3, &dsum, &c, &err) == VD_OK);
    CHECK(c.skip && isnan(c.norm));

    /* the global norm of a long buffer, against a double sum */
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x);
    double sq = 0, norm = 0;
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        x[i] = (float)det_uniform(&seed, -1, 1);
        sq += (double)x[i] * x[i];
    }
    vd_backend *bes[2] = {ref, fast};
    for (int b = 0; b < 2 && bes[b]; b++) {
        CHECK(vd_grad_norm(bes[b], x, N, &dsum, &norm, &err) == VD_OK);
        CHECKF(close_rel(norm, sqrt(sq), 1e-6), "%s norm %.9g vs %.9g", bes[b]->i->name, norm,
               sqrt(sq));
    }
    free(x);
}

/* ---- EMA: decay 0.9 by hand, and 1 - decay rounded from the double (0.9999 -> 1e-4) ---- */

static void test_ema(vd_backend *be) {
    float p[2] = {1, 2}, e[2] = {0, 0};
    vd_ema_apply(be, 0.9, p, e, 2);
    vd_ema_apply(be, 0.9, p, e, 2);
    check_vec("ema 0.9", e, (const double[]){0.19, 0.38}, 2, 1e-6);
    float one = 1, e1 = 0;
    vd_ema_apply(be, 0.9999, &one, &e1, 1);
    CHECKF(close_rel(e1, 1e-4, 1e-6), "%s ema 0.9999: %.9g", be->i->name, e1);
    expect_backend_ok(be, "ema");
}

/* ---- the torch update the reference's PyTorch trainer runs, written here ---- */

static const char *torch_snippet =
    "import sys\n"
    "import torch\n"
    "d = [float(x) for x in sys.stdin.read().split()]\n"
    "n, steps, lr, b1, b2, eps = int(d[0]), int(d[1]), d[2], d[3], d[4], d[5]\n"
    "p = torch.tensor(d[6:6 + n], dtype=torch.float32)\n"
    "gs = torch.tensor(d[6 + n:], dtype=torch.float32).view(steps, n)\n"
    "m = torch.zeros(n); u = torch.zeros(n)\n"
    "for t in range(1, steps + 1):\n"
    "    g = gs[t - 1].clone()\n"
    "    m.mul_(b1).add_(g, alpha=1 - b1)\n"
    "    torch.max(u.mul_(b2), g.abs_().add_(eps), out=u)\n"
    "    p.addcdiv_(m, u, value=-lr / (1 - b1 ** t))\n"
    "print(' '.join('%.9g' % x for x in p.tolist()))\n";

enum { TORCH_N = 8, TORCH_STEPS = 5 };

static void test_torch_adamax(vd_backend *be) {
    char in_path[] = "/tmp/vd_optim_in_XXXXXX", py_path[] = "/tmp/vd_optim_py_XXXXXX";
    int fd_in = mkstemp(in_path), fd_py = mkstemp(py_path);
    CHECK(fd_in >= 0 && fd_py >= 0);
    if (fd_in < 0 || fd_py < 0) return;
    FILE *fin = fdopen(fd_in, "w"), *fpy = fdopen(fd_py, "w");
    float p[TORCH_N], g[TORCH_STEPS][TORCH_N], m[TORCH_N] = {0}, v[TORCH_N] = {0};
    uint64_t seed = 99;
    fprintf(fin, "%d %d 0.002 0.9 0.999 1e-8\n", TORCH_N, TORCH_STEPS);
    for (int i = 0; i < TORCH_N; i++)
        fprintf(fin, "%.9g ", p[i] = (float)det_uniform(&seed, -1, 1));
    for (int t = 0; t < TORCH_STEPS; t++)
        for (int i = 0; i < TORCH_N; i++)
            fprintf(fin, "%.9g ", g[t][i] = (float)det_uniform(&seed, -0.5, 0.5));
    fputs(torch_snippet, fpy);
    fclose(fin);
    fclose(fpy);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' %s < %s", vd_test_python(), py_path, in_path);
    FILE *out = popen(cmd, "r");
    double want[TORCH_N];
    int got_n = 0;
    while (out && got_n < TORCH_N && fscanf(out, "%lf", &want[got_n]) == 1)
        got_n++;
    int status = out ? pclose(out) : -1;
    unlink(in_path);
    unlink(py_path);
    CHECKF(status == 0 && got_n == TORCH_N, "the torch snippet failed (status %d, %d values)",
           status, got_n);
    if (got_n != TORCH_N) return;
    for (int t = 1; t <= TORCH_STEPS; t++) {
        vd_optim_step o = {VD_OPT_ADAMAX, 0.002, 0.9, 0.999, 1e-8, 0, t};
        be->i->optim_update(be, &o, p, g[t - 1], m, v, TORCH_N);
    }
    check_vec("adamax vs torch", p, want, TORCH_N, 1e-6);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "torch")) return vd_test_bad_mode("test_optim", mode);
    int rc = mode ? vd_test_need_python_module("torch") : 0;
    if (rc) return rc;
    vd_err err = {0};
    CHECKF(vd_backend_create_cpu_ref(&ref, &err) == VD_OK, "cpu_ref: %s", err.msg);
    if (!ref) return vd_test_result("test_optim");
    vd_status st = vd_backend_create_cpu(&fast, 2, &err);
    CHECKF(st == VD_OK || st == VD_ERR_UNSUPPORTED, "cpu: %s", err.msg);
    if (mode) {
        test_torch_adamax(fast ? fast : ref);
        if (fast) vd_backend_destroy(fast);
        vd_backend_destroy(ref);
        return vd_test_result("test_optim torch");
    }
    vd_backend *bes[2] = {ref, fast};
    for (int b = 0; b < 2 && bes[b]; b++) {
        adamax_by_hand(bes[b], 0);
        adamax_by_hand(bes[b], 0.1);
        for (int wd = 0; wd < 2; wd++) {
            adam_vs_twin(bes[b], VD_OPT_ADAM, wd * 0.05);
            adam_vs_twin(bes[b], VD_OPT_RADAM, wd * 0.05);
        }
        radam_unadapted(bes[b]);
        test_ema(bes[b]);
    }
    test_weight_decay_mask();
    test_schedules();
    test_optim_check();
    test_grad_rules();
    if (fast) vd_backend_destroy(fast);
    vd_backend_destroy(ref);
    rc = vd_test_result("test_optim");
    return rc || fast ? rc : vd_test_skip(VD_TEST_ONEDNN); /* cpu_ref passed; cpu not checked */
}
