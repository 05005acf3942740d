/* Initialisation statistics: for the largest tensor of every init kind, our draws have the
 * standard deviation of the distribution docs/model.md section 3 names (within 2%); with the argument
 * torch (its own ctest entry), also within 2% of PyTorch's own init of that tensor in the twin. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"
#include "vd_test.h"

static void stats(const float *x, int64_t n, double *mean, double *std) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += x[i], s2 += (double)x[i] * x[i];
    *mean = s / n;
    *std = sqrt(s2 / n - *mean * *mean);
}

static int with_torch; /* the torch mode */

/* std of the twin's PyTorch init of tensor `name`, or -1 when the twin fails. */
static double torch_std(const char *src, const char *cfg, const char *name) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd %s/tests/reference && '%s' -c \"import vdvae_twin as t; "
             "m = t.build_model(t.load_config('%s'), seed=3); print(float(m.state_dict()['%s'].std(unbiased=False)))\"",
             src, vd_test_python(), cfg, name);
    FILE *p = popen(cmd, "r");
    double v = -1;
    if (!p || fscanf(p, "%lf", &v) != 1) v = -1;
    if (p) pclose(p);
    return v;
}

static void check_config(const char *src, const char *cfg) {
    vd_err err = {0};
    vd_hparams *hp = calloc(1, sizeof *hp);
    vd_arch a;
    if (vd_hparams_load(hp, cfg, NULL, 0, &err) || vd_arch_build(&a, hp, &err)) {
        CHECKF(0, "%s", err.msg);
        free(hp);
        return;
    }
    float *w = malloc((size_t)a.total_floats * sizeof *w);
    vd_arch_init_params(&a, 1234, w);
    int largest[8];
    for (int k = 0; k < 8; k++) largest[k] = -1;
    for (int i = 0; i < a.n_params; i++) {
        int k = a.params[i].init;
        if (a.params[i].init_scale == 0) continue;
        if (largest[k] < 0 || a.params[i].numel > a.params[largest[k]].numel) largest[k] = i;
    }
    for (int k = 0; k < 8; k++) {
        if (largest[k] < 0) continue;
        const vd_param *p = &a.params[largest[k]];
        double mean, sd;
        stats(w + p->offset, p->numel, &mean, &sd);
        double want = p->init_bound * p->init_scale / sqrt(3.0);
        if (p->init == VD_INIT_ZEROS) {
            CHECKF(sd == 0 && mean == 0, "%s: zeros init has std %g", p->name, sd);
            continue;
        }
        /* 2% is a statement about a large layer; small tensors only get a loose check */
        double tol = p->numel >= 10000 ? 0.02 : 0.35;
        CHECKF(fabs(sd / want - 1) < tol, "%s (%s, %lld values): std %.5g, U(+-bound) gives %.5g", p->name,
               vd_init_kind_str(p->init), (long long)p->numel, sd, want);
        double lim = p->init_bound * fabs(p->init_scale);
        int64_t outside = 0;
        for (int64_t j = 0; j < p->numel; j++) outside += fabsf(w[p->offset + j]) > lim;
        CHECKF(outside == 0, "%s: %lld values outside +-%g", p->name, (long long)outside, lim);
        CHECKF(fabs(mean) < 0.05 * want + 3 * want / sqrt((double)p->numel), "%s: mean %.3g", p->name, mean);
        double t = with_torch && p->numel >= 10000 ? torch_std(src, cfg, p->name) : -1;
        if (with_torch && p->numel >= 10000) CHECKF(t > 0, "%s: the twin's init failed", p->name);
        if (t > 0)
            CHECKF(fabs(sd / t - 1) < 0.02, "%s: std %.5g, PyTorch's init %.5g", p->name, sd, t);
        fprintf(stderr, "%-70s %-18s n=%-8lld std %.5f (expected %.5f, PyTorch %s%.5f)\n", p->name,
                vd_init_kind_str(p->init), (long long)p->numel, sd, want, t > 0 ? "" : "n/a ", t > 0 ? t : 0);
    }
    free(w);
    vd_arch_free(&a);
    free(hp);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "torch")) return vd_test_bad_mode("test_net_init", mode);
    int rc = mode ? vd_test_need_python_module("torch") : 0;
    if (rc) return rc;
    with_torch = mode != NULL;
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/egs/cifar10_small.cfg", src);
    check_config(src, path);
    snprintf(path, sizeof path, "%s/egs/reference/cifar10_baseline.cfg", src);
    check_config(src, path);
    return vd_test_result("test_net_init");
}
