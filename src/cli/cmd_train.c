/* vdvae train: opens (or resumes) the run directory of a config and trains it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "run/job.h"
#include "vdvae/config.h"
#include "vdvae/run.h"
#include "vdvae/train.h"

static void train_help(void) {
    printf("usage: vdvae train CFG [--set section.key=value]... [--dir DIR] [--steps N] [--time S]\n"
           "                      [--threads T] [--backend cpu|cpu_ref|cuda] [--log-every N] [--quiet]\n\n"
           "Train the model CFG describes. The run is named by [run] name: the first run saves\n"
           "the effective config as DIR/logs-<name>/hparams-<name>.cfg; later runs of that name\n"
           "use the saved file (listing the keys where CFG differs) and resume from the newest\n"
           "complete checkpoint in DIR/checkpoints-<name>/. Logs: TensorBoard event files in\n"
           "logs-<name>/train and logs-<name>/val, logs-<name>/metrics.jsonl, sample grids.\n"
           "Ctrl-C (SIGINT) or SIGTERM: the step finishes, a checkpoint is written, exit 0.\n"
           "One writer per run: a second 'vdvae train' of a run in training exits 2 naming the\n"
           "first's pid (lock: logs-<name>/.lock); eval and synth may read it meanwhile.\n"
           "train.skip_stop_after skipped updates in a row stop the run (exit 1, no checkpoint).\n\n"
           "  --set section.key=value  override one key (same syntax as the .cfg; repeatable)\n"
           "  --dir DIR                where logs-<name>/ and checkpoints-<name>/ live (default .)\n"
           "  --steps N                stop after N steps of this invocation (then checkpoint)\n"
           "  --time S                 stop after S seconds of training (then checkpoint)\n"
           "  --threads T              OpenMP threads (default: all cores)\n"
           "  --backend K              cpu, cpu_ref or cuda (a GPU); default cuda where built\n"
           "                           and a GPU is present, else cpu. This build has: %s\n"
           "  --log-every N            progress line interval when not on a terminal (default 50)\n"
           "  --quiet                  no progress output\n"
           "  -h, --help               this help\n", vd_backend_names());
}

static void report_run(const vd_rundir *rd, const char *differ) {
    if (!rd->resumed) {
        printf("new run: saved config to %s\n", rd->hparams_path);
        return;
    }
    printf("existing run: using its saved config %s\n", rd->hparams_path);
    if (differ[0])
        printf("note: the given config differs from the saved one in: %s\n"
               "      (the saved values are used; edit the saved file or 'vdvae reset' the run)\n",
               differ);
}

static int parse_num(const char *s, const char *what, double lo, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end || !(v >= lo) || v > 1e15)
        return vd_cli_usage_error("train", "%s must be a number >= %g, got '%s'", what, lo, s);
    *out = v;
    return 0;
}

static int run_train(const char *cfg, const char *dir, const vd_cli_sets *sets, const vd_train_opts *o) {
    vd_err err = {0};
    vd_hparams *given = malloc(sizeof *given), *eff = malloc(sizeof *eff);
    char *differ = malloc(8192);
    vd_rundir rd;
    vd_run_lock lock = VD_RUN_LOCK_NONE;
    vd_comm *job = NULL;
    int rc = 0;
    /* The lock (rank 0's, in a data-parallel job) comes before vd_rundir_open, which may save
     * --set overrides into the run's config, and is held until training ends: a second writer
     * changes nothing. */
    if (!given || !eff || !differ) {
        vd_errorf(&err, VD_ERR_NOMEM, "out of memory");
        rc = vd_cli_fail("train", &err);
    } else if (vd_comm_world(&job, &err) || vd_hparams_load(given, cfg, sets->items, sets->n, &err) ||
               vd_rundir_open_job(job, &rd, dir, given, sets->items, sets->n, eff, differ, 8192, &lock, &err)) {
        rc = vd_cli_fail("train", &err);
    } else {
        bool early = false;
        if (!o->quiet && job->rank == 0) report_run(&rd, differ);
        if (vd_train_run(eff, &rd, o, &early, &err)) rc = vd_cli_fail("train", &err);
    }
    vd_rundir_unlock(&lock);
    free(given), free(eff), free(differ);
    return rc;
}

int vd_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"set", required_argument, 0, 's'}, {"dir", required_argument, 0, 'd'},
        {"steps", required_argument, 0, 'n'}, {"time", required_argument, 0, 'T'},
        {"threads", required_argument, 0, 't'}, {"backend", required_argument, 0, 'k'},
        {"log-every", required_argument, 0, 'l'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    vd_cli_sets sets = {0};
    vd_train_opts o = {.log_every = 50}; /* backend NULL: vd_backend_default() */
    const char *dir = ".";
    double v = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (c == 's' && vd_cli_add_set(&sets, "train", optarg)) return 2;
        else if (c == 'd') dir = optarg;
        else if (c == 'n') { if (parse_num(optarg, "--steps", 1, &v)) return 2; o.max_steps = (int64_t)v; }
        else if (c == 'T') { if (parse_num(optarg, "--time", 0, &v)) return 2; o.max_seconds = v; }
        else if (c == 't') { if (parse_num(optarg, "--threads", 0, &v)) return 2; o.threads = (int)v; }
        else if (c == 'l') { if (parse_num(optarg, "--log-every", 1, &v)) return 2; o.log_every = (int64_t)v; }
        else if (c == 'k') o.backend = optarg;
        else if (c == 'q') o.quiet = true;
        else if (c == 'h') return train_help(), 0;
        else if (c == '?') return vd_cli_usage_error("train", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("train", "expected one CFG file");
    return run_train(argv[optind], dir, &sets, &o);
}
