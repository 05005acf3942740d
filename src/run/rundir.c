/* Run directories: logs-<name>/hparams-<name>.cfg saved on the first run and used by later
 * runs of the same name, the one-writer lock logs-<name>/.lock, and deletion (vdvae reset). */
#define _GNU_SOURCE
#include "vdvae/run.h"

#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
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

/* ---- the writer lock ---------------------------------------------------------------------- */

/* The pid the holder wrote, or 0 when it cannot be read. The holder writes it just after
 * flock succeeds, so an empty file is retried for a moment; "<pid>\n" is complete. */
static long holder_pid(int fd) {
    for (int i = 0; i < 50; i++) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            char *end;
            long pid = strtol(buf, &end, 10);
            if (pid > 0 && *end == '\n') return pid;
        }
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    }
    return 0;
}

static vd_status lock_busy(const vd_rundir *rd, const char *path, int fd, vd_err *err) {
    long pid = holder_pid(fd);
    const char *leaf = strrchr(rd->logs_dir, '/');
    const char *name = leaf ? leaf + 1 : rd->logs_dir;
    if (!strncmp(name, "logs-", 5)) name += 5;
    char who[48] = "another process";
    if (pid > 0) snprintf(who, sizeof who, "process %ld", pid);
    return vd_errorf(err, VD_ERR_INVALID,
                     "run '%s' is being trained by %s (%s); one writer per run: wait for it, or "
                     "stop it (SIGINT or SIGTERM finish the step and write a checkpoint). eval and "
                     "synth can read the run meanwhile", name, who, path);
}

/* Our pid, written over the old one first and cut to length after, so that a reader never
 * sees an empty file once one pid was there. */
static vd_status write_pid(int fd, const char *path, vd_err *err) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) != 0)
        return vd_errorf(err, VD_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return VD_OK;
}

vd_status vd_rundir_lock(const vd_rundir *rd, vd_run_lock *lock, vd_err *err) {
    char path[VD_PATH_MAX + 8];
    lock->fd = -1;
    snprintf(path, sizeof path, "%s/.lock", rd->logs_dir);
    /* vdvae reset may delete the file between our open and our flock; a lock on a deleted
     * file locks nothing, so lock whatever file the path names afterwards, a few times. */
    for (int tries = 0; tries < 8; tries++) {
        vd_status st = vd_mkdirs(rd->logs_dir, err);
        if (st) return st;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return vd_errorf(err, VD_ERR_IO, "cannot open the run lock %s: %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            st = e == EWOULDBLOCK ? lock_busy(rd, path, fd, err)
                                  : vd_errorf(err, VD_ERR_IO, "cannot lock %s: %s", path, strerror(e));
            close(fd);
            return st;
        }
        struct stat locked, named;
        if (fstat(fd, &locked) == 0 && stat(path, &named) == 0 && locked.st_dev == named.st_dev &&
            locked.st_ino == named.st_ino) {
            if ((st = write_pid(fd, path, err))) {
                close(fd);
                return st;
            }
            lock->fd = fd;
            return VD_OK;
        }
        close(fd);
    }
    return vd_errorf(err, VD_ERR_IO, "cannot lock %s: it keeps being deleted or replaced", path);
}

void vd_rundir_unlock(vd_run_lock *lock) {
    if (lock->fd < 0) return;
    /* The file stays: deleting it would let a process that opened it just before lock a file
     * that no longer names the run. */
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    lock->fd = -1;
}
