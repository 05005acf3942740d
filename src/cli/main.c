/* The vdvae command line: dispatches to one subcommand per file in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "dist/comm.h"
#include "vdvae/run.h"

typedef struct vd_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} vd_command;

static const vd_command commands[] = {
    {"train", vd_cmd_train, "train a model from a .cfg (creates or resumes the run logs-<name>/)"},
    {"eval", vd_cmd_eval, "NELBO of a trained run on its test split, and a grid of samples"},
    {"synth", vd_cmd_synth, "inference: reconstruction, generation, div_stats, encoding, decoding"},
    {"info", vd_cmd_info, "blocks, parameter count, FLOPs and memory plan of a .cfg"},
    {"bench", vd_cmd_bench, "time training steps: seconds/step, images/s, GFLOP/s, peak memory"},
    {"reset", vd_cmd_reset, "delete a run's logs-<name>/ and checkpoints-<name>/"},
    {"data", vd_cmd_data, "download public datasets (verified) and pack any source into one file"},
    {"fid", vd_cmd_fid, "FID and Inception Score of a run's samples; pytorch-fid statistics files"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: vdvae <command> [options]\n\n"
               "Efficient-VDVAE in C: train, evaluate, sample and encode images.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'vdvae <command> --help' describes a command's options.\n"
               "Backends (--backend): %s.\n"
               "Exit codes: 0 success, 2 bad input (config, flags, files), 1 any other failure.\n", vd_backend_names());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("vdvae %s\n", VD_VERSION);
        return 0;
    }
    /* a data-parallel job (mpirun) is left, or aborted when this rank failed alone, here */
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return vd_comm_world_end(commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "vdvae: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
