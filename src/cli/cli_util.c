/* Shared CLI plumbing: consistent error lines and exit codes for every subcommand. */
#include "cli/cli_util.h"
#include "dist/comm.h"

#include <stdarg.h>
#include <stdio.h>

int vd_cli_add_set(vd_cli_sets *sets, const char *cmd, const char *arg) {
    if (sets->n >= VD_CLI_MAX_SETS)
        return vd_cli_usage_error(cmd, "too many --set options (at most %d)", VD_CLI_MAX_SETS);
    sets->items[sets->n++] = arg;
    return 0;
}

int vd_cli_fail(const char *cmd, const vd_err *err) {
    fprintf(stderr, "vdvae %s%s: %s\n", cmd, vd_comm_world_tag(), err->msg); /* names the rank in a job */
    return vd_status_exit_code(err->code);
}

int vd_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vdvae %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'vdvae %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

bool vd_cli_writer(void) {
    vd_comm *c = vd_comm_world_peek();
    return !c || c->rank == 0;
}
