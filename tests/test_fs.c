/* core/fs: mkdir -p (nested, idempotent, a regular file in the way named) and atomic writes
 * (content in place and no temporary after a commit, the old file untouched after an abort or
 * a failure, errors naming the path and the cause). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fs.h"
#include "vd_test.h"

static char dir[256];

static const char *tp(const char *name) { return vd_test_path(dir, name); }

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

static bool has_text(const char *path, const char *text) {
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return !strcmp(buf, text);
}

/* Entries of dir whose name holds pat ("tmp", ".part"). */
static int count_with(const char *pat) {
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, pat) != NULL;
    if (d) closedir(d);
    return n;
}

static void test_mkdirs(void) {
    vd_err err = {0};
    const char *deep = tp("a/b/c/d");
    CHECKF(vd_mkdirs(deep, &err) == VD_OK, "%s", err.msg);
    CHECK(is_dir(tp("a")) && is_dir(tp("a/b")) && is_dir(tp("a/b/c")) && is_dir(deep));
    CHECKF(vd_mkdirs(deep, &err) == VD_OK, "again: %s", err.msg); /* idempotent */
    CHECKF(vd_mkdirs(tp("a//b/e/"), &err) == VD_OK, "%s", err.msg); /* empty components */
    CHECK(is_dir(tp("a/b/e")));
    CHECKF(vd_mkdirs("/", &err) == VD_OK, "%s", err.msg);
    CHECK(vd_mkdirs("", &err) == VD_ERR_INVALID);

    /* a regular file in the way: the error names it, nothing is made below it */
    const char *file = tp("a/plain");
    put(file, "x");
    const char *below = tp("a/plain/sub/deeper");
    CHECK(vd_mkdirs(below, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, below) && strstr(err.msg, file) && strstr(err.msg, strerror(ENOTDIR)),
           "%s", err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    CHECK(vd_mkdirs(file, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, file) && strstr(err.msg, strerror(ENOTDIR)), "%s", err.msg);
    CHECK(has_text(file, "x"));

    char longp[VD_PATH_MAX + 16];
    memset(longp, 'x', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    CHECKF(vd_mkdirs(longp, &err) == VD_ERR_INVALID && strstr(err.msg, "too long"), "%s", err.msg);
    vd_atomic a;
    CHECK(vd_atomic_begin(&a, longp, &err) == VD_ERR_INVALID && strstr(err.msg, "too long"));
    CHECK(a.f == NULL);
}

static void test_commit(void) {
    vd_err err = {0};
    const char *path = tp("out.txt");
    put(path, "old");
    vd_atomic a;
    CHECKF(vd_atomic_begin(&a, path, &err) == VD_OK, "%s", err.msg);
    CHECK(a.f && strstr(a.tmp, ".tmp.") && !strcmp(a.path, path) && exists(a.tmp));
    CHECK(has_text(path, "old")); /* nothing visible before the commit */
    fputs("new content", a.f);
    CHECKF(vd_atomic_commit(&a, true, &err) == VD_OK, "%s", err.msg);
    CHECK(has_text(path, "new content") && count_with(".tmp.") == 0 && a.f == NULL);
    vd_atomic_abort(&a); /* a no-op after a commit: the new file stays */
    CHECK(has_text(path, "new content"));

    /* not durable: the same result, without fsync; through the descriptor as some writers do */
    CHECKF(vd_atomic_begin(&a, path, &err) == VD_OK, "%s", err.msg);
    CHECK(write(fileno(a.f), "by fd", 5) == 5);
    CHECKF(vd_atomic_commit(&a, false, &err) == VD_OK, "%s", err.msg);
    CHECK(has_text(path, "by fd") && count_with(".tmp.") == 0);

    /* two writers of one path at once get two temporaries */
    vd_atomic b;
    CHECK(vd_atomic_begin(&a, path, &err) == VD_OK && vd_atomic_begin(&b, path, &err) == VD_OK);
    CHECK(strcmp(a.tmp, b.tmp) != 0 && count_with(".tmp.") == 2);
    vd_atomic_abort(&a);
    vd_atomic_abort(&b);
    CHECK(count_with(".tmp.") == 0);
    unlink(path);
}

static void test_abort(void) {
    vd_err err = {0};
    const char *path = tp("keep.txt");
    put(path, "old");
    vd_atomic a;
    CHECKF(vd_atomic_begin(&a, path, &err) == VD_OK, "%s", err.msg);
    fputs("half of a new", a.f);
    fflush(a.f);
    vd_atomic_abort(&a);
    CHECK(has_text(path, "old") && count_with(".tmp.") == 0 && a.f == NULL);
    vd_atomic_abort(&a); /* twice is harmless */
    unlink(path);
}

static void test_failures(void) {
    vd_err err = {0};
    vd_atomic a;
    /* begin in a missing directory */
    const char *missing = tp("no/such/dir/x.bin");
    CHECK(vd_atomic_begin(&a, missing, &err) == VD_ERR_IO && a.f == NULL);
    CHECKF(strstr(err.msg, missing) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    vd_atomic_abort(&a); /* a no-op after a failed begin */
    CHECK(vd_atomic_commit(&a, true, &err) == VD_ERR_INTERNAL);

    /* the name taken by a directory: the rename fails, the temporary goes */
    const char *taken = tp("taken");
    CHECK(mkdir(taken, 0777) == 0);
    CHECKF(vd_atomic_begin(&a, taken, &err) == VD_OK, "%s", err.msg);
    fputs("x", a.f);
    CHECK(vd_atomic_commit(&a, true, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, taken) && strstr(err.msg, "rename"), "%s", err.msg);
    fprintf(stderr, "  (expected) %s\n", err.msg);
    CHECK(is_dir(taken) && count_with(".tmp.") == 0);
    rmdir(taken);

    /* a full disk, as a file size limit: the buffered write fails at the commit */
    const char *big = tp("big.bin");
    put(big, "old");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        setrlimit(RLIMIT_FSIZE, &rl);
        static char block[256 << 10];
        bool ok = vd_atomic_begin(&a, big, &err) == VD_OK;
        if (ok) fwrite(block, 1, sizeof block, a.f);
        ok = ok && vd_atomic_commit(&a, true, &err) == VD_ERR_IO && strstr(err.msg, big) &&
             strstr(err.msg, "write failed") && strstr(err.msg, strerror(EFBIG));
        fprintf(stderr, "  (expected, child) %s\n", err.msg);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    CHECK(has_text(big, "old") && count_with(".tmp.") == 0);
    unlink(big);
}

/* A fixed temporary name (downloads' .part): a stale one is overwritten, then renamed. */
static void test_begin_as(void) {
    vd_err err = {0};
    const char *path = tp("data.gz"), *part = tp("data.gz.part");
    put(part, "a stale and longer partial download");
    vd_atomic a;
    CHECKF(vd_atomic_begin_as(&a, path, ".part", &err) == VD_OK, "%s", err.msg);
    CHECK(!strcmp(a.tmp, part));
    fputs("fresh", a.f);
    CHECKF(vd_atomic_commit(&a, false, &err) == VD_OK, "%s", err.msg);
    CHECK(has_text(path, "fresh") && !exists(part));
    put(part, "y");
    CHECK(vd_atomic_begin_as(&a, path, ".part", &err) == VD_OK);
    vd_atomic_abort(&a);
    CHECK(!exists(part) && has_text(path, "fresh"));
    unlink(path);
}

/* A temporary another library wrote (libzip): fsync'ed and renamed, or removed on failure. */
static void test_rename_durable(void) {
    vd_err err = {0};
    const char *tmp = tp("z.npz.tmp.1"), *path = tp("z.npz");
    put(tmp, "zip");
    CHECKF(vd_rename_durable(tmp, path, &err) == VD_OK, "%s", err.msg);
    CHECK(has_text(path, "zip") && !exists(tmp));
    CHECK(vd_rename_durable(tmp, path, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, tmp) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    const char *taken = tp("taken.npz");
    CHECK(mkdir(taken, 0777) == 0);
    put(tmp, "zip");
    CHECK(vd_rename_durable(tmp, taken, &err) == VD_ERR_IO && strstr(err.msg, "rename"));
    CHECK(!exists(tmp) && is_dir(taken));
    rmdir(taken);
    unlink(path);
}

static void cleanup(void) {
    const char *files[] = {"a/plain", "a/b/c/d", "a/b/c", "a/b/e", "a/b", "a"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (remove(tp(files[i])) != 0) fprintf(stderr, "left %s\n", tp(files[i]));
    CHECKF(rmdir(dir) == 0, "%s not empty", dir);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vd_fs_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) VD_SETUP_FAIL("cannot create a temporary directory");
    test_mkdirs();
    test_commit();
    test_abort();
    test_failures();
    test_begin_as();
    test_rename_durable();
    cleanup();
    return vd_test_result("test_fs");
}
