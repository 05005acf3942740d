/* vdvae train: opens (or resumes) the run directory of a config; the training loop itself
 * arrives with the training module. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/config.h"
#include "vdvae/train.h"

static void train_help(void) {
    printf("usage: vdvae train CFG [--set section.key=value]... [--dir DIR]\n\n"
           "Train the model CFG describes. The run is named by [run] name: the first run saves\n"
           "the effective config as DIR/logs-<name>/hparams-<name>.cfg; later runs of that name\n"
           "use the saved file (listing the keys where CFG differs) and resume.\n\n"
           "  --set section.key=value  override one key (same syntax as the .cfg; repeatable)\n"
           "  --dir DIR                where logs-<name>/ and checkpoints-<name>/ live (default .)\n"
           "  -h, --help               this help\n\n"
           "Status: the run directory works; the training loop is not built yet (exit 2).\n");
}

static int report_run(const vd_rundir *rd, const char *differ) {
    if (!rd->resumed) {
        printf("new run: saved config to %s\n", rd->hparams_path);
        return 0;
    }
    printf("existing run: using its saved config %s\n", rd->hparams_path);
    if (differ[0])
        printf("note: the given config differs from the saved one in: %s\n"
               "      (the saved values are used; edit the saved file or 'vdvae reset' the run)\n",
               differ);
    return 0;
}

static int run_train(const char *cfg, const char *dir, const vd_cli_sets *sets) {
    vd_err err = {0};
    vd_hparams *given = malloc(sizeof *given), *eff = malloc(sizeof *eff);
    char *differ = malloc(8192);
    vd_rundir rd;
    int rc = 0;
    if (!given || !eff || !differ) {
        vd_errorf(&err, VD_ERR_NOMEM, "out of memory");
        rc = vd_cli_fail("train", &err);
    } else if (vd_hparams_load(given, cfg, sets->items, sets->n, &err) ||
               vd_rundir_open(&rd, dir, given, sets->items, sets->n, eff, differ, 8192, &err)) {
        rc = vd_cli_fail("train", &err);
    } else {
        report_run(&rd, differ);
        rc = vd_cli_not_built("train", "the training loop");
    }
    free(given), free(eff), free(differ);
    return rc;
}

int vd_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"set", required_argument, 0, 's'}, {"dir", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    vd_cli_sets sets = {0};
    const char *dir = ".";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's' && vd_cli_add_set(&sets, "train", optarg)) return 2;
        else if (c == 'd') dir = optarg;
        else if (c == 'h') return train_help(), 0;
        else if (c == '?') return vd_cli_usage_error("train", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("train", "expected one CFG file");
    return run_train(argv[optind], dir, &sets);
}
