/* Run directories: logs-<name>/hparams-<name>.cfg saved on the first run and used by later
 * runs of the same name, and deletion of a run (vdvae reset). */
#define _GNU_SOURCE
#include "vdvae/run.h"

#include "core/fs.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

vd_status vd_run_name_check(const char *name, vd_err *err) {
    if (!name[0]) return vd_errorf(err, VD_ERR_INVALID, "run.name is empty");
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return vd_errorf(err, VD_ERR_INVALID, "run.name '%s' is not a usable name", name);
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\' || (unsigned char)*p < 32)
            return vd_errorf(err, VD_ERR_INVALID,
                             "run.name '%s' must not contain '/' or control characters: it names "
                             "the directories logs-<name> and checkpoints-<name>", name);
    return VD_OK;
}

static vd_status join(char *out, const char *base, const char *fmt, const char *name, vd_err *err) {
    char leaf[VD_PATH_MAX];
    int n = snprintf(leaf, sizeof leaf, fmt, name, name);
    if (n < 0 || (size_t)n >= sizeof leaf) return vd_errorf(err, VD_ERR_INVALID, "run name too long");
    n = snprintf(out, VD_PATH_MAX, "%s/%s", base, leaf);
    if (n < 0 || n >= VD_PATH_MAX) return vd_errorf(err, VD_ERR_INVALID, "path too long: %s/%s", base, leaf);
    return VD_OK;
}

vd_status vd_rundir_paths(vd_rundir *rd, const char *base_dir, const char *name, vd_err *err) {
    const char *base = base_dir ? base_dir : ".";
    vd_status st = vd_run_name_check(name, err);
    if (st) return st;
    memset(rd, 0, sizeof *rd);
    if ((st = join(rd->logs_dir, base, "logs-%s", name, err))) return st;
    if ((st = join(rd->checkpoints_dir, base, "checkpoints-%s", name, err))) return st;
    return join(rd->hparams_path, base, "logs-%s/hparams-%s.cfg", name, err);
}

static vd_status open_existing(vd_rundir *rd, const vd_hparams *given, const char *const *overrides,
                               int n_overrides, vd_hparams *effective, char *differ, size_t cap,
                               vd_err *err) {
    vd_hparams *saved = malloc(sizeof *saved);
    if (!saved) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_hparams_load(saved, rd->hparams_path, NULL, 0, err);
    if (!st) st = vd_hparams_load(effective, rd->hparams_path, overrides, n_overrides, err);
    if (!st && differ) vd_hparams_diff(given, effective, differ, cap);
    /* Overrides that change the saved config are kept, so synth and later resumes see them. */
    if (!st && vd_hparams_diff(saved, effective, NULL, 0) > 0)
        st = vd_hparams_save(effective, rd->hparams_path, err);
    free(saved);
    if (st) vd_err_prefix(err, "run '%s' (saved config %s)", given->run.name, rd->hparams_path);
    return st;
}

vd_status vd_rundir_open(vd_rundir *rd, const char *base_dir, const vd_hparams *given,
                         const char *const *overrides, int n_overrides, vd_hparams *effective,
                         char *differ, size_t differ_cap, vd_err *err) {
    vd_status st = vd_rundir_paths(rd, base_dir, given->run.name, err);
    if (st) return st;
    if (differ && differ_cap) differ[0] = 0;
    if (access(rd->hparams_path, F_OK) == 0) {
        rd->resumed = true;
        return open_existing(rd, given, overrides, n_overrides, effective, differ, differ_cap, err);
    }
    if ((st = vd_mkdirs(rd->logs_dir, err))) return st;
    memcpy(effective, given, sizeof *effective);
    return vd_hparams_save(given, rd->hparams_path, err);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static vd_status remove_tree(const char *path, bool *found, vd_err *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return VD_OK;
    *found = true;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return vd_errorf(err, VD_ERR_IO, "cannot delete %s: %s", path, strerror(errno));
    return VD_OK;
}

vd_status vd_rundir_delete(const char *base_dir, const char *name, bool *found, vd_err *err) {
    vd_rundir rd;
    vd_status st = vd_rundir_paths(&rd, base_dir, name, err);
    *found = false;
    if (st) return st;
    if ((st = remove_tree(rd.logs_dir, found, err))) return st;
    return remove_tree(rd.checkpoints_dir, found, err);
}

vd_status vd_rundir_read(vd_rundir *rd, const char *base_dir, const char *name,
                         const char *const *overrides, int n_overrides, vd_hparams *hp, vd_err *err) {
    vd_status st = vd_rundir_paths(rd, base_dir, name, err);
    if (st) return st;
    if (access(rd->hparams_path, R_OK) != 0)
        return vd_errorf(err, VD_ERR_INVALID, "no run '%s' in %s (no %s): train it first", name,
                         base_dir ? base_dir : ".", rd->hparams_path);
    rd->resumed = true;
    return vd_hparams_load(hp, rd->hparams_path, overrides, n_overrides, err);
}
