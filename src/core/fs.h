/* File-system helpers shared by every writer: mkdir -p and atomic replacement of a file
 * (a temporary beside it, renamed over it), so that a crash leaves the old file or the new one. */
#ifndef VD_CORE_FS_H
#define VD_CORE_FS_H

#include <stdbool.h>
#include <stdio.h>

#include "vdvae/status.h"

/* mkdir -p: every missing component; an existing non-directory is an error naming it. */
vd_status vd_mkdirs(const char *path, vd_err *err);

/* Write a file atomically: a temporary beside path, then rename over it. Callers write through
 * f (or fileno(f), before any buffered write). After a failed begin, a commit (either way) or an
 * abort, f is NULL and a vd_atomic_abort does nothing, so one cleanup path serves every exit. */
typedef struct vd_atomic {
    char path[VD_PATH_MAX];
    char tmp[VD_PATH_MAX + 32];
    FILE *f;
} vd_atomic;

/* Opens a->f on a new "<path>.tmp.<pid>.<n>" (O_EXCL: never an existing file, nor through a
 * symlink), with the umask's permissions. */
vd_status vd_atomic_begin(vd_atomic *a, const char *path, vd_err *err);
/* The same on the fixed name "<path><suffix>" (".part"), truncated if it exists: for large files
 * whose leftovers from an interrupted run must be overwritten rather than pile up. */
vd_status vd_atomic_begin_as(vd_atomic *a, const char *path, const char *suffix, vd_err *err);
/* fflush; when durable: fsync the file, rename, fsync the directory; else just rename.
 * On any failure the temporary is removed and err names path and the cause. */
vd_status vd_atomic_commit(vd_atomic *a, bool durable, vd_err *err);
/* Close and unlink the temporary. */
void vd_atomic_abort(vd_atomic *a);

/* For a temporary that another library wrote and closed (libzip): fsync tmp, rename it over
 * path, fsync the directory. On failure tmp is removed and err names both and the cause. */
vd_status vd_rename_durable(const char *tmp, const char *path, vd_err *err);

#endif
