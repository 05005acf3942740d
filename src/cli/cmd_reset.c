/* vdvae reset: delete a run (logs-<name>/ and checkpoints-<name>/) after a confirmation. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "vdvae/train.h"

static void reset_help(void) {
    printf("usage: vdvae reset NAME [--yes] [--dir DIR]\n\n"
           "Delete the run NAME: DIR/logs-NAME/ (saved config, logs) and DIR/checkpoints-NAME/.\n"
           "Asks for confirmation on the terminal unless --yes is given.\n\n"
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
    bool found;
    if (vd_rundir_paths(&rd, dir, name, &err)) return vd_cli_fail("reset", &err);
    if (!yes && !confirm(&rd)) {
        fprintf(stderr, "vdvae reset: not confirmed; nothing deleted (use --yes to skip the question)\n");
        return 1;
    }
    if (vd_rundir_delete(dir, name, &found, &err)) return vd_cli_fail("reset", &err);
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
