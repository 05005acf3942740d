/* mkdir -p and atomic file replacement (temporary, optional fsync, rename, directory fsync) for
 * every writer of the library: one copy of the error handling and of the clean-up. */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The start of the path only: the whole of it would push the reason out of the message. */
static vd_status too_long(const char *path, vd_err *err) {
    return vd_errorf(err, VD_ERR_INVALID, "%.200s...: path too long (%zu bytes, at most %d)", path,
                     strlen(path), VD_PATH_MAX - 1);
}

/* ---- directories ---------------------------------------------------------------------------- */

static vd_status mkdir_error(const char *path, const char *comp, int e, vd_err *err) {
    if (!strcmp(comp, path))
        return vd_errorf(err, VD_ERR_IO, "%s: cannot create directory: %s", path, strerror(e));
    return vd_errorf(err, VD_ERR_IO, "%s: cannot create directory: %s: %s", path, comp, strerror(e));
}

/* Each prefix ending at a '/' in turn. An error other than EEXIST still accepts a directory that
 * is there (a parent we may not write to, a read-only mount): only what is missing is made. */
vd_status vd_mkdirs(const char *path, vd_err *err) {
    if (!path || !*path) return vd_errorf(err, VD_ERR_INVALID, "empty directory name");
    char buf[VD_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return too_long(path, err);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = 0;
        /* "a//b" and "a/" have empty components: nothing to make there */
        if (p[-1] != '/' && mkdir(buf, 0777) != 0) {
            int e = errno;
            struct stat st;
            if (stat(buf, &st) != 0) return mkdir_error(path, buf, e == EEXIST ? errno : e, err);
            if (!S_ISDIR(st.st_mode)) return mkdir_error(path, buf, ENOTDIR, err);
        }
        if (!c) break;
        *p = c;
    }
    return VD_OK;
}

/* ---- atomic replacement --------------------------------------------------------------------- */

/* Make the rename itself durable; a directory that cannot be synced is not an error (the file's
 * data is already on disk). */
static void sync_parent(const char *path) {
    char dir[VD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* tmp (closed) over path; tmp is gone afterwards either way. */
static vd_status rename_over(const char *tmp, const char *path, bool durable, vd_err *err) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return vd_errorf(err, VD_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(e));
    }
    if (durable) sync_parent(path);
    return VD_OK;
}

static vd_status begin(vd_atomic *a, const char *path, const char *suffix, vd_err *err) {
    static atomic_uint counter; /* two writers of one path in one process get two names */
    a->f = NULL;
    a->tmp[0] = a->path[0] = 0;
    int cap = (int)sizeof a->tmp;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path ||
        (suffix && snprintf(a->tmp, sizeof a->tmp, "%s%s", path, suffix) >= cap)) {
        a->tmp[0] = a->path[0] = 0;
        return too_long(path, err);
    }
    int fd = -1;
    if (suffix) {
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    } else {
        /* a name left by a killed process whose pid came round again is skipped, not reused */
        for (int tries = 0; tries < 100 && fd < 0; tries++) {
            if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
                         atomic_fetch_add(&counter, 1)) >= cap) {
                errno = ENAMETOOLONG;
                break;
            }
            fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd < 0 && errno != EEXIST) break;
        }
    }
    if (fd < 0) {
        int e = errno;
        a->tmp[0] = 0;
        return vd_errorf(err, VD_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                         strerror(e));
    }
    if (!(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = 0;
        return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot open a stream: %s", path, strerror(e));
    }
    return VD_OK;
}

vd_status vd_atomic_begin(vd_atomic *a, const char *path, vd_err *err) {
    return begin(a, path, NULL, err);
}

vd_status vd_atomic_begin_as(vd_atomic *a, const char *path, const char *suffix, vd_err *err) {
    return begin(a, path, suffix, err);
}

vd_status vd_atomic_commit(vd_atomic *a, bool durable, vd_err *err) {
    if (!a->f)
        return vd_errorf(err, VD_ERR_INTERNAL, "%s: commit of a write that was not begun", a->path);
    FILE *f = a->f;
    a->f = NULL;
    int e = 0;
    const char *what = "write failed";
    /* a failed fwrite left its errno; a clean fflush does not reset it */
    if (fflush(f) != 0 || ferror(f)) e = errno ? errno : EIO;
    else if (durable && fsync(fileno(f)) != 0) e = errno, what = "fsync failed";
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO, what = "close failed";
    vd_status st;
    if (e) {
        unlink(a->tmp);
        st = vd_errorf(err, VD_ERR_IO, "%s: %s: %s", a->tmp, what, strerror(e));
    } else {
        st = rename_over(a->tmp, a->path, durable, err);
    }
    a->tmp[0] = 0;
    return st;
}

void vd_atomic_abort(vd_atomic *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) unlink(a->tmp);
    a->tmp[0] = 0;
}

vd_status vd_rename_durable(const char *tmp, const char *path, vd_err *err) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        unlink(tmp);
        return vd_errorf(err, VD_ERR_IO, "%s: fsync failed: %s", tmp, strerror(e));
    }
    close(fd);
    return rename_over(tmp, path, true, err);
}
