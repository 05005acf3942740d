/* vdvae synth: the reference's inference modes on a trained run, with the synthesis settings
 * of the run's saved config (overridable with --mode and --set). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/synth.h"

static void synth_help(void) {
    printf("usage: vdvae synth CFG [--mode reconstruction|generation|div_stats|encoding|decoding]\n"
           "                      [--checkpoint PATH] [--ema|--no-ema] [--set section.key=value]...\n"
           "                      [--dir DIR] [--out DIR] [--div-stats NPY] [--threads T]\n"
           "                      [--backend NAME] [--input NPZ] [--limit N] [--drop-last]\n"
           "                      [--quiet]\n\n"
           "Inference on the run CFG names, with the [synthesis] settings of its saved config\n"
           "logs-<name>/hparams-<name>.cfg and its newest complete checkpoint:\n"
           "  generation       temperature_settings x n_generation_batches batches from the prior:\n"
           "                   setup-<k>-image-<i>.png and setup-<k>-grid.png\n"
           "  reconstruction   every test image: NELBO, its parts and SSIM (summary.json, with the\n"
           "                   number of images), image-<i>.png (target-<i>.png with\n"
           "                   save_target_in_reconstruction), grid.png;\n"
           "                   mask_reconstruction replaces low-KL variates by prior samples\n"
           "  div_stats        average KL per variate (bits) over div_stats_subset_ratio of the\n"
           "                   training set: div_stats.npy, float32 [n_td, V], NaN past a group's V\n"
           "  encoding         posterior (mean, std) of the variates the div_stats mask keeps, for\n"
           "                   the training set in order: encodings.npz (docs/encodings.md)\n"
           "  decoding         an encodings file (maybe edited) to images: <name>.png, grid.png\n"
           "Files go to logs-<name>/synthesis-<mode>/ unless --out.\n\n"
           "  --mode M           overrides synthesis.synthesis_mode\n"
           "  --checkpoint PATH  this checkpoint instead of the newest\n"
           "  --ema, --no-ema    EMA (default unless synthesis.load_ema_weights = False) or plain weights\n"
           "  --set s.key=value  override one key of the saved config (repeatable)\n"
           "  --dir DIR          where the run lives (default .)\n"
           "  --out DIR          where the files go\n"
           "  --div-stats NPY    the div_stats for masked reconstruction (default\n"
           "                     logs-<name>/synthesis-div_stats/div_stats.npy)\n"
           "  --input NPZ        decoding: the encodings file (default\n"
           "                     logs-<name>/synthesis-encoding/encodings.npz)\n"
           "  --limit N          encoding: only the first N training images\n"
           "  --drop-last        reconstruction: whole batches of synthesis.batch_size only, as the\n"
           "                     reference's loader (to compare with it)\n"
           "  --threads T        CPU threads\n"
           "  --backend NAME     cpu, cpu_ref or cuda (a GPU; -DVD_CUDA=ON); default cuda\n"
           "                     where built and a GPU is present, else cpu. This build has: %s\n"
           "  -q, --quiet        no progress or summary\n"
           "  -h, --help         this help\n", vd_backend_names());
}

typedef struct synth_args {
    const char *dir, *mode;
    int ema;                  /* 1 --ema, 0 --no-ema, -1 from the config */
    vd_cli_sets sets;
    vd_synth_opts o;
} synth_args;

static bool mode_known(const char *m) {
    const char *known[] = {"reconstruction", "generation", "div_stats", "encoding", "decoding"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(m, known[i])) return true;
    return false;
}

static int run_synth(const char *cfg, synth_args *a) {
    vd_err err = {0};
    vd_hparams *hp = malloc(sizeof *hp);
    vd_rundir rd;
    vd_synth_result r;
    int rc = 0;
    if (!hp) return 1;
    /* the run is the one CFG names after --set, as vdvae train names it */
    if (vd_hparams_load(hp, cfg, a->sets.items, a->sets.n, &err) ||
        vd_rundir_read(&rd, a->dir, hp->run.name, a->sets.items, a->sets.n, hp, &err)) {
        rc = vd_cli_fail("synth", &err);
    } else {
        a->o.no_ema = a->ema == 0 || (a->ema < 0 && !hp->synthesis.load_ema_weights);
        if (vd_synth_run(hp, &rd, &a->o, &r, &err)) rc = vd_cli_fail("synth", &err);
    }
    free(hp);
    return rc;
}

int vd_cmd_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"mode", required_argument, 0, 'm'}, {"checkpoint", required_argument, 0, 'c'},
        {"ema", no_argument, 0, 'e'}, {"no-ema", no_argument, 0, 'E'}, {"set", required_argument, 0, 's'},
        {"dir", required_argument, 0, 'd'}, {"out", required_argument, 0, 'o'},
        {"div-stats", required_argument, 0, 'D'}, {"threads", required_argument, 0, 't'},
        {"backend", required_argument, 0, 'k'}, {"input", required_argument, 0, 'I'},
        {"limit", required_argument, 0, 'L'}, {"dump-logits", required_argument, 0, 'G'}, /* tests: not in help */ {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"drop-last", no_argument, 0, 'B'}, {0, 0, 0, 0}};
    synth_args a = {.dir = ".", .ema = -1};
    static char mode_set[64];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (c == 'm') a.mode = optarg;
        else if (c == 'c') a.o.checkpoint = optarg;
        else if (c == 'e') a.ema = 1;
        else if (c == 'E') a.ema = 0;
        else if (c == 's') { if (vd_cli_add_set(&a.sets, "synth", optarg)) return 2; }
        else if (c == 'd') a.dir = optarg;
        else if (c == 'o') a.o.out_dir = optarg;
        else if (c == 'D') a.o.div_stats_path = optarg;
        else if (c == 't') a.o.threads = atoi(optarg);
        else if (c == 'k') a.o.backend = optarg;
        else if (c == 'I') a.o.input = optarg;
        else if (c == 'G') a.o.dump_logits = optarg;
        else if (c == 'B') a.o.drop_last = true;
        else if (c == 'L') {
            char *end;
            a.o.limit = strtoll(optarg, &end, 10);
            if (end == optarg || *end || a.o.limit < 1) return vd_cli_usage_error("synth", "--limit must be a number >= 1, got '%s'", optarg);
        }
        else if (c == 'q') a.o.quiet = true;
        else if (c == 'h') return synth_help(), 0;
        else return vd_cli_usage_error("synth", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("synth", "expected one CFG file");
    if (a.o.threads < 0) return vd_cli_usage_error("synth", "--threads must be >= 0");
    if (a.mode) {
        if (!mode_known(a.mode))
            return vd_cli_usage_error("synth", "--mode must be reconstruction, generation, div_stats, encoding or decoding, got '%s'", a.mode);
        snprintf(mode_set, sizeof mode_set, "synthesis.synthesis_mode='%s'", a.mode);
        if (vd_cli_add_set(&a.sets, "synth", mode_set)) return 2;
    }
    return run_synth(argv[optind], &a);
}
