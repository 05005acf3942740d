/* vdvae bench: time forward+backward training steps of a config on a backend (CPU or GPU). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/train.h"

static void bench_help(void) {
    printf("usage: vdvae bench CFG [--batch B] [--steps N] [--threads T] [--backend cpu|cpu_ref|cuda]\n"
           "                      [--profile] [--set section.key=value]...\n\n"
           "Time N training steps (forward, loss, backward; one untimed warm-up step first) of\n"
           "the model CFG describes, on random images. Prints the median seconds per step (on a\n"
           "GPU, to the end of the step's work there), images/s, achieved GFLOP/s (3x the\n"
           "forward FLOPs of `vdvae info`), peak RSS and, on a GPU, the peak device memory the\n"
           "backend held (parameters, gradients, activations, scratch, cuDNN workspace).\n"
           "Convolutions run in the config's [run] precision: --set run.precision=bf16 for\n"
           "bf16 inputs and weights with float32 sums.\n\n"
           "  -b, --batch B     batch size (default: train.batch_size)\n"
           "  -n, --steps N     timed steps (default 3)\n"
           "  -t, --threads T   OpenMP threads (default: all cores)\n"
           "      --backend K   cpu (oneDNN + OpenMP), cpu_ref (plain loops) or cuda (a GPU;\n"
           "                    configure with -DVD_CUDA=ON); default cuda where built and a GPU\n"
           "                    is present, else cpu. This build has: %s\n"
           "      --profile     also print, per op family (conv direction x kernel x stride,\n"
           "                    activations, latents, KL, DMoL, ...), calls, ms and %% of a\n"
           "                    step and the convs' GFLOP/s, slowest first; then per block\n"
           "                    group (kind x resolution) forward, recompute and backward ms\n"
           "  -s, --set S.K=V   override a config value (repeatable)\n"
           "  -h, --help        this help\n", vd_backend_names());
}

/* Where the step goes, per op family: wall time of the synchronous CPU ops. Columns are
 * counted from the right by tests/cli_bench.sh; names may contain spaces. */
static void print_profile(const vd_bench_result *r) {
    double total = 0;
    for (int i = 0; i < r->n_families; i++) total += r->families[i].seconds;
    printf("profile       per step, mean of the timed steps: step %.2f ms, ops %.2f ms\n",
           r->mean_step_seconds * 1e3, total * 1e3);
    printf("  %-32s %9s %10s %7s %8s\n", "family", "calls", "ms", "%", "GFLOP/s");
    for (int i = 0; i < r->n_families; i++) {
        const vd_bench_family *f = &r->families[i];
        printf("  %-32s %9.0f %10.3f %7.2f ", f->name, f->calls, f->seconds * 1e3,
               100.0 * f->seconds / r->mean_step_seconds);
        if (f->is_conv && f->seconds > 0) printf("%8.1f\n", f->flops / f->seconds / 1e9);
        else printf("%8s\n", "-");
    }
}

/* The same step by block group (the blocks of one kind at one resolution, network order):
 * forward, recomputation (activation checkpointing) and backward ms, and the group's conv
 * GFLOP/s over all three. */
static void print_scopes(const vd_bench_result *r) {
    if (!r->n_scopes) return;
    printf("blocks        per step, by block group: ms forward / recompute / backward\n");
    printf("  %-24s %6s %10s %10s %10s %7s %8s\n", "group", "blocks", "fwd ms", "recomp ms", "bwd ms", "%", "GFLOP/s");
    for (int i = 0; i < r->n_scopes; i++) {
        const vd_bench_scope *s = &r->scopes[i];
        double t = s->seconds[0] + s->seconds[1] + s->seconds[2], f = s->flops[0] + s->flops[1] + s->flops[2];
        printf("  %-24s %6.0f %10.3f %10.3f %10.3f %7.2f ", s->name, s->blocks, s->seconds[0] * 1e3,
               s->seconds[1] * 1e3, s->seconds[2] * 1e3, 100.0 * t / r->mean_step_seconds);
        if (f > 0 && t > 0) printf("%8.1f\n", f / t / 1e9);
        else printf("%8s\n", "-");
    }
}

static int parse_int(const char *s, const char *what, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > 1 << 20) return vd_cli_usage_error("bench", "%s must be an integer >= %d, got '%s'", what, lo, s);
    *out = (int)v;
    return 0;
}

static int run_bench(const char *cfg, const vd_cli_sets *sets, vd_bench_opts *o) {
    vd_err err = {0};
    vd_hparams *hp = malloc(sizeof *hp);
    vd_bench_result r;
    int rc = 0;
    if (!hp) return 1;
    if (vd_hparams_load(hp, cfg, sets->items, sets->n, &err)) {
        rc = vd_cli_fail("bench", &err);
    } else {
        if (o->batch <= 0) o->batch = hp->train.batch_size;
        if (vd_bench_run(hp, o, &r, &err)) {
            rc = vd_cli_fail("bench", &err);
        } else {
            printf("%s: backend %s, precision %s, batch %d, %d steps, threads %d\n", cfg, o->backend,
                   hp->run.precision == VD_PREC_BF16 ? "bf16" : "fp32", o->batch, o->steps, o->threads);
            printf("step          %.4f s (median)\n", r.step_seconds); /* 0.1 ms: GPU steps are short */
            printf("images/s      %.2f\n", r.images_per_second);
            printf("GFLOP/s       %.1f (training FLOPs: 3 x %.3f GFLOP forward per image)\n", r.gflops, r.fwd_gflop_per_image);
            printf("peak RSS      %.1f MB (activation arena %.1f MB)\n", r.peak_rss_bytes / 1e6, r.arena_bytes / 1e6);
            if (r.device_peak_bytes > 0) /* scripts/gpu-check.sh reads this line */
                printf("peak device memory %.1f MiB\n", r.device_peak_bytes / 1048576.0);
            printf("loss          %.5f\n", r.loss);
            if (r.precision_note[0]) printf("note          %s\n", r.precision_note); /* bf16 slower here */
            if (o->profile) print_profile(&r), print_scopes(&r);
        }
    }
    free(hp);
    return rc;
}

int vd_cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, {"steps", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"backend", required_argument, 0, 'k'},
        {"set", required_argument, 0, 's'}, {"profile", no_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    vd_bench_opts o = {.batch = 0, .steps = 3, .threads = 0, .backend = vd_backend_default()};
    vd_cli_sets sets = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:n:t:s:h", opts, NULL)) != -1) {
        if (c == 'b' && parse_int(optarg, "--batch", 1, &o.batch)) return 2;
        if (c == 'n' && parse_int(optarg, "--steps", 1, &o.steps)) return 2;
        if (c == 't' && parse_int(optarg, "--threads", 0, &o.threads)) return 2;
        if (c == 'k') o.backend = optarg;
        if (c == 'p') o.profile = true;
        if (c == 's' && vd_cli_add_set(&sets, "bench", optarg)) return 2;
        if (c == 'h') return bench_help(), 0;
        if (c == '?') return vd_cli_usage_error("bench", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("bench", "expected one CFG file");
    return run_bench(argv[optind], &sets, &o);
}
