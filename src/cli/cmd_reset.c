/* vdvae reset: delete a run (logs-<name>/ and checkpoints-<name>/) after a confirmation. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/run.h"
#include "vdvae/train.h"

static void reset_help(void) {
    printf("usage: vdvae reset NAME [--yes] [--dir DIR]\n\n"
           "Delete the run NAME: DIR/logs-NAME/ (saved config, logs) and DIR/checkpoints-NAME/.\n"
           "Asks for confirmation on the terminal unless --yes is given. A run that a\n"
           "'vdvae train' is training (it holds logs-NAME/.lock) is not deleted: exit 2.\n\n"
           "  -y, --yes    do not ask\n"
           "  --dir DIR    where the run lives (default .)\n"
           "  -h, --help   this help\n");
}

static bool confirm(const vd_rundir *rd) {
    printf("delete %s and %s? [y/N] ", rd->logs_dir, rd->checkpoints_dir);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return false;
    return line[0] == 'y' || line[0] == 'Y';
}

static int do_reset(const char *name, const char *dir, bool yes) {
    vd_err err = {0};
    vd_rundir rd;
    vd_run_lock lock = VD_RUN_LOCK_NONE;
    struct stat sb;
    bool found;
    if (vd_rundir_paths(&rd, dir, name, &err)) return vd_cli_fail("reset", &err);
    /* A run in training is not deleted under its writer: take its lock (when it has a logs
     * directory, where the lock lives; creating one only to delete it would report a run). */
    if (stat(rd.logs_dir, &sb) == 0 && vd_rundir_lock(&rd, &lock, &err)) return vd_cli_fail("reset", &err);
    if (!yes && !confirm(&rd)) {
        vd_rundir_unlock(&lock);
        fprintf(stderr, "vdvae reset: not confirmed; nothing deleted (use --yes to skip the question)\n");
        return 1;
    }
    vd_status st = vd_rundir_delete(dir, name, &found, &err);
    vd_rundir_unlock(&lock);
    if (st) return vd_cli_fail("reset", &err);
    if (!found) {
        fprintf(stderr, "vdvae reset: no run named '%s' in %s\n", name, dir);
        return 2;
    }
    printf("deleted run '%s'\n", name);
    return 0;
}

int vd_cmd_reset(int argc, char **argv) {
    static const struct option opts[] = {
        {"yes", no_argument, 0, 'y'}, {"dir", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = ".";
    bool yes = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "yh", opts, NULL)) != -1) {
        if (c == 'y') yes = true;
        else if (c == 'd') dir = optarg;
        else if (c == 'h') return reset_help(), 0;
        else return vd_cli_usage_error("reset", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("reset", "expected one run NAME");
    return do_reset(argv[optind], dir, yes);
}
