/* vdvae eval: the NELBO of a trained run's newest checkpoint on its test (or validation)
 * split, a JSON summary, and a grid of prior samples. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/synth.h"

static void eval_help(void) {
    printf("usage: vdvae eval CFG [--split test|val] [--no-ema] [--dir DIR] [--samples PNG]\n"
           "                     [--json PATH] [--set section.key=value]... [--threads T]\n"
           "                     [--backend NAME] [--drop-last] [--quiet]\n\n"
           "Evaluate the run CFG names (its saved config logs-<name>/hparams-<name>.cfg and its\n"
           "newest complete checkpoint) on the whole test split: NELBO (bits/dim; nats per image\n"
           "for binarized MNIST), its reconstruction and KL parts, SSIM, averaged over every\n"
           "image (the last batch may be partial). Writes a JSON summary with the number of\n"
           "images (default logs-<name>/eval-<split>.json) and a grid of prior samples at\n"
           "temperature 1 (default logs-<name>/samples-<split>.png).\n\n"
           "  --split S       test (default) or val\n"
           "  --no-ema        the plain weights instead of the EMA weights\n"
           "  --dir DIR       where the run lives (default .)\n"
           "  --samples PNG   where the sample grid goes\n"
           "  --json PATH     where the summary goes\n"
           "  --set S.K=V     a key of CFG (run.name picks the run, as in vdvae train) and of\n"
           "                  the run's saved config for this evaluation\n"
           "  --threads T     OpenMP threads (default: all)\n"
           "  --backend NAME  cpu, cpu_ref or cuda (a GPU; -DVD_CUDA=ON); default cuda where\n"
           "                  built and a GPU is present, else cpu. This build has: %s\n"
           "  --drop-last     whole batches of train.batch_size only, leaving out the last\n"
           "                  partial one, as the reference's loader (to compare with it)\n"
           "  -q, --quiet     no summary on stdout\n"
           "  -h, --help      this help\n", vd_backend_names());
}

static int write_json(const char *path, const char *split, const char *cfg, const vd_eval_opts *o,
                      const vd_eval_result *r) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vdvae eval: cannot write %s\n", path);
        return 2;
    }
    fprintf(f, "{\"config\": \"%s\", \"split\": \"%s\", \"weights\": \"%s\", \"step\": %lld, \"images\": %d, "
               "\"drop_last\": %s, \"nelbo\": %.8g, \"reconstruction\": %.8g, \"kl\": %.8g, \"ssim\": %.8g}\n",
            cfg, split, o->no_ema ? "plain" : "ema", (long long)r->step, r->images, o->drop_last ? "true" : "false",
            r->nelbo, r->recon, r->kl, r->ssim);
    return fclose(f) == 0 ? 0 : 2;
}

typedef struct eval_args {
    const char *split, *dir, *samples, *json;
    vd_cli_sets sets;
    vd_eval_opts o;
} eval_args;

static int run_eval(const char *cfg, eval_args *a) {
    vd_err err = {0};
    vd_hparams *hp = malloc(sizeof *hp);
    vd_rundir rd;
    vd_eval_result r;
    int rc = 0;
    char samples[VD_PATH_MAX + 64], json[VD_PATH_MAX + 64];
    if (!hp) return 1;
    /* the run is the one CFG names after --set, as vdvae train names it */
    if (vd_hparams_load(hp, cfg, a->sets.items, a->sets.n, &err) ||
        vd_rundir_read(&rd, a->dir, hp->run.name, a->sets.items, a->sets.n, hp, &err)) {
        rc = vd_cli_fail("eval", &err);
    } else {
        snprintf(samples, sizeof samples, "%s/samples-%s.png", rd.logs_dir, a->split);
        snprintf(json, sizeof json, "%s/eval-%s.json", rd.logs_dir, a->split);
        a->o.split = !strcmp(a->split, "test") ? VD_EVAL_TEST : VD_EVAL_VAL;
        a->o.samples_png = a->samples ? a->samples : samples;
        const char *js = a->json ? a->json : json;
        if (vd_eval_run(hp, &rd, &a->o, &r, &err)) rc = vd_cli_fail("eval", &err);
        else if (vd_cli_writer() && !(rc = write_json(js, a->split, rd.hparams_path, &a->o, &r)) && !a->o.quiet)
            printf("wrote %s and %s\n", js, a->o.samples_png);
    }
    free(hp);
    return rc;
}

int vd_cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"split", required_argument, 0, 'S'}, {"no-ema", no_argument, 0, 'E'}, {"dir", required_argument, 0, 'd'},
        {"samples", required_argument, 0, 'p'}, {"json", required_argument, 0, 'j'},
        {"threads", required_argument, 0, 't'}, {"backend", required_argument, 0, 'k'},
        {"set", required_argument, 0, 's'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"drop-last", no_argument, 0, 'L'}, {0, 0, 0, 0}};
    eval_args a = {.split = "test", .dir = "."};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (c == 'S') a.split = optarg;
        else if (c == 'E') a.o.no_ema = true;
        else if (c == 'd') a.dir = optarg;
        else if (c == 'p') a.samples = optarg;
        else if (c == 'j') a.json = optarg;
        else if (c == 's') { if (vd_cli_add_set(&a.sets, "eval", optarg)) return 2; }
        else if (c == 't') {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end || v < 0 || v > 4096)
                return vd_cli_usage_error("eval", "--threads must be an integer >= 0, got '%s'", optarg);
            a.o.threads = (int)v;
        }
        else if (c == 'k') a.o.backend = optarg;
        else if (c == 'L') a.o.drop_last = true;
        else if (c == 'q') a.o.quiet = true;
        else if (c == 'h') return eval_help(), 0;
        else return vd_cli_usage_error("eval", "bad option");
    }
    if (strcmp(a.split, "test") && strcmp(a.split, "val"))
        return vd_cli_usage_error("eval", "--split must be test or val, got '%s'", a.split);
    if (argc - optind != 1) return vd_cli_usage_error("eval", "expected one CFG file");
    return run_eval(argv[optind], &a);
}
