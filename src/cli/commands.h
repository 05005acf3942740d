/* The vdvae subcommands: each takes (argc, argv) with argv[0] the command name and returns
 * the process exit code (0 ok, 2 bad input or not built yet, 1 other failures). */
#ifndef VD_CLI_COMMANDS_H
#define VD_CLI_COMMANDS_H

int vd_cmd_train(int argc, char **argv);
int vd_cmd_eval(int argc, char **argv);
int vd_cmd_synth(int argc, char **argv);
int vd_cmd_info(int argc, char **argv);
int vd_cmd_bench(int argc, char **argv);
int vd_cmd_reset(int argc, char **argv);
int vd_cmd_data(int argc, char **argv);
int vd_cmd_fid(int argc, char **argv);

#endif
