/* Helpers shared by the subcommands: error reporting and the --set list. */
#ifndef VD_CLI_UTIL_H
#define VD_CLI_UTIL_H

#include <stdbool.h>

#include "vdvae/status.h"

#define VD_CLI_MAX_SETS 256

typedef struct vd_cli_sets {
    const char *items[VD_CLI_MAX_SETS]; /* "section.key=value", pointing into argv */
    int n;
} vd_cli_sets;

/* Record one --set; returns 0, or prints an error and returns 2. */
int vd_cli_add_set(vd_cli_sets *sets, const char *cmd, const char *arg);
/* Print "vdvae CMD: message" and return the exit code for err->code. */
int vd_cli_fail(const char *cmd, const vd_err *err);
/* Whether this process writes a command's files and summaries: the only one, or rank 0 of a
 * data-parallel job (mpirun). */
bool vd_cli_writer(void);
/* Print "vdvae CMD: <fmt>" plus a hint to use --help; returns 2. */
int vd_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
