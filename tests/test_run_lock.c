/* The run lock (vd_rundir_lock): one writer per run, a second one refused with the holder's pid,
 * whether it is another open in this process or another process; released by unlock and exit. */
#include <sys/stat.h>
#include <sys/wait.h>

#include "vd_test.h"
#include "vdvae/run.h"

static char dir[] = "/tmp/vd_run_lock_XXXXXX";

/* The pid in the lock file, or -1. */
static long file_pid(const vd_rundir *rd) {
    char path[VD_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/.lock", rd->logs_dir);
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f && fscanf(f, "%ld", &pid) != 1) pid = -1;
    if (f) fclose(f);
    return pid;
}

/* In a child: try the lock; exit 0 when refused with the expected pid named, 1 when taken,
 * 2 otherwise. keep: exit without unlocking (the kernel must drop it). */
static int child_try(const vd_rundir *rd, long expect_pid, bool keep) {
    pid_t c = fork();
    if (c == 0) {
        vd_run_lock l = VD_RUN_LOCK_NONE;
        vd_err err = {0};
        vd_status st = vd_rundir_lock(rd, &l, &err);
        if (!st && keep) _exit(1);
        if (!st) vd_rundir_unlock(&l), _exit(1);
        char want[48];
        snprintf(want, sizeof want, "process %ld ", expect_pid);
        _exit(st == VD_ERR_INVALID && strstr(err.msg, want) ? 0 : 2);
    }
    int ws = 0;
    if (c < 0 || waitpid(c, &ws, 0) != c || !WIFEXITED(ws)) return -1;
    return WEXITSTATUS(ws);
}

int main(void) {
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot create a temporary directory");
    vd_rundir rd;
    vd_err err = {0};
    CHECK(vd_rundir_paths(&rd, dir, "r", &err) == VD_OK);

    /* A new run: the lock creates logs-r/ and holds our pid. */
    vd_run_lock a = VD_RUN_LOCK_NONE, b = VD_RUN_LOCK_NONE;
    CHECKF(vd_rundir_lock(&rd, &a, &err) == VD_OK, "%s", err.msg);
    CHECK(a.fd >= 0);
    struct stat sb;
    CHECK(stat(rd.logs_dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(file_pid(&rd) == (long)getpid());

    /* A second open of the file in this process is a second writer (flock locks belong to
     * the open file description): refused, naming the holder and the file. */
    vd_status st = vd_rundir_lock(&rd, &b, &err);
    CHECK(st == VD_ERR_INVALID);
    CHECK(b.fd == -1);
    char want[64];
    snprintf(want, sizeof want, "run 'r' is being trained by process %ld ", (long)getpid());
    CHECKF(strstr(err.msg, want) != NULL, "message: %s", err.msg);
    CHECKF(strstr(err.msg, "logs-r/.lock") != NULL, "message: %s", err.msg);
    CHECK(vd_status_exit_code(st) == 2);

    /* Another process is refused as well, and sees our pid. */
    CHECK(child_try(&rd, (long)getpid(), false) == 0);

    /* vd_rundir_open of a new run works under the lock (it was taken first, and made the
     * directory the config goes into). */
    vd_hparams *hp = malloc(sizeof *hp), *eff = malloc(sizeof *eff);
    vd_hparams_defaults(hp);
    snprintf(hp->run.name, sizeof hp->run.name, "r");
    vd_rundir opened;
    CHECKF(vd_rundir_open(&opened, dir, hp, NULL, 0, eff, NULL, 0, &err) == VD_OK, "%s", err.msg);
    CHECK(!opened.resumed);
    free(hp), free(eff);

    /* Released: the next writer takes it and writes its own pid. */
    vd_rundir_unlock(&a);
    CHECK(a.fd == -1);
    vd_rundir_unlock(&a); /* a no-op */
    CHECK(child_try(&rd, 0, false) == 1);
    CHECKF(vd_rundir_lock(&rd, &b, &err) == VD_OK, "%s", err.msg);
    vd_rundir_unlock(&b);

    /* A writer that exits without unlocking (a crash) leaves no lock behind. */
    CHECK(child_try(&rd, 0, true) == 1);
    CHECKF(vd_rundir_lock(&rd, &b, &err) == VD_OK, "%s", err.msg);
    CHECK(file_pid(&rd) == (long)getpid());
    vd_rundir_unlock(&b);

    /* A directory that cannot be made is a file error, not a busy run. */
    vd_rundir bad;
    char file[sizeof dir + 16];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    CHECK(vd_rundir_paths(&bad, file, "r", &err) == VD_OK);
    CHECK(vd_rundir_lock(&bad, &b, &err) == VD_ERR_IO);
    CHECK(b.fd == -1);

    bool found = false;
    CHECK(vd_rundir_delete(dir, "r", &found, &err) == VD_OK && found);
    remove(file);
    rmdir(dir);
    return vd_test_result("test_run_lock");
}
