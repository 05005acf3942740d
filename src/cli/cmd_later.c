/* Subcommands whose modules are not built yet: they document their future options in
 * --help and answer every other call with a clear message and exit code 2. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"

static int wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int vd_cmd_synth(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: vdvae synth CFG [--mode reconstruction|generation|div_stats|encoding|decoding]\n"
               "                      [--checkpoint PATH] [--ema|--no-ema] [--set section.key=value]...\n\n"
               "Inference on a trained run. Status: not built yet (every call exits 2).\n");
        return 0;
    }
    return vd_cli_not_built("synth", "inference");
}
