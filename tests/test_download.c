/* Downloads against a file:// mirror in a temporary folder: verified fetches, checksum
 * mismatches, kept files, missing remote files, tar.gz unpacking and its path checks. */
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/download.h"
#include "vd_test.h"
#include "vdvae/data.h"

#define HELLO_SHA256 "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define HELLO_MD5 "b1946ac92492d2347c6235b4d2611184"
#define ZERO_SHA256 "0000000000000000000000000000000000000000000000000000000000000000"

static char tmp[512], mirror[600], url[700];

static void write_file(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void remove_file(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static bool exists(const char *dir, const char *name) {
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static bool has_text(const char *dir, const char *name, const char *text) {
    char path[1024], buf[256] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, text);
}

static void sha256_of(const char *path, char hex[65]) {
    unsigned char buf[4096], d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    FILE *f = fopen(path, "rb");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t got;
    while (f && (got = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
    EVP_DigestFinal_ex(ctx, d, &n);
    EVP_MD_CTX_free(ctx);
    if (f) fclose(f);
    for (unsigned i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", d[i]);
}

static void test_tables(void) {
    int n = 0;
    const vd_download_dataset *ds = vd_download_datasets(&n);
    CHECK(n == 3);
    for (int i = 0; i < n; i++) {
        size_t ul = strlen(ds[i].base_url);
        CHECKF(ul > 0 && ds[i].base_url[ul - 1] == '/', "%s", ds[i].base_url);
        CHECK(!strncmp(ds[i].base_url, "https://", 8) || !strncmp(ds[i].base_url, "http://", 7));
        CHECK(ds[i].n_files > 0 && ds[i].default_dir);
        CHECK(vd_download_find(ds[i].name) == &ds[i]);
        for (int j = 0; j < ds[i].n_files; j++) {
            const vd_download_file *f = &ds[i].files[j];
            CHECKF(strlen(f->sums[0]) == 64, "%s: the first sum is SHA-256", f->name);
            for (int k = 0; k < VD_DOWNLOAD_MAX_SUMS && f->sums[k]; k++)
                CHECKF(vd_download_sum_valid(f->sums[k]), "%s: %s", f->name, f->sums[k]);
        }
    }
    CHECK(vd_download_find("mnist")->n_files == 4);
    CHECK(vd_download_find("fashion_mnist")->n_files == 4);
    CHECK(vd_download_find("cifar-10")->n_members == 7);
    CHECK(!vd_download_sum_valid("ABC") && !vd_download_sum_valid(HELLO_MD5 "0"));
    vd_err err = {0};
    CHECK(vd_data_download("nosuch", tmp, NULL, &err) == VD_ERR_INVALID);
    CHECK(strstr(err.msg, "nosuch") != NULL);
}

static void test_fetch(void) {
    char dest[700];
    snprintf(dest, sizeof dest, "%s/dest/sub", tmp);
    write_file(mirror, "a.bin", "hello\n");
    write_file(mirror, "b.bin", "hello\n");
    vd_download_file files[] = {{"a.bin", {HELLO_SHA256}}, {"b.bin", {ZERO_SHA256, HELLO_MD5}}};
    vd_err err = {0};
    vd_status st = vd_data_download_files(url, dest, files, 2, &err);
    CHECKF(st == VD_OK, "%s", err.msg);
    CHECK(has_text(dest, "a.bin", "hello\n") && has_text(dest, "b.bin", "hello\n"));
    CHECK(!exists(dest, "a.bin.part") && !exists(dest, "b.bin.part"));

    /* verified copies are kept: the mirror no longer has them */
    remove_file(mirror, "a.bin");
    remove_file(mirror, "b.bin");
    st = vd_data_download_files(url, dest, files, 2, &err);
    CHECKF(st == VD_OK, "existing files re-fetched: %s", err.msg);

    /* a corrupt local copy is fetched again (base URL without a trailing '/') */
    write_file(dest, "a.bin", "garbage");
    write_file(mirror, "a.bin", "hello\n");
    char bare[700];
    snprintf(bare, sizeof bare, "%.*s", (int)strlen(url) - 1, url);
    st = vd_data_download_files(bare, dest, files, 1, &err);
    CHECKF(st == VD_OK && has_text(dest, "a.bin", "hello\n"), "%s", err.msg);
}

static void test_failures(void) {
    char dest[700];
    snprintf(dest, sizeof dest, "%s/fail", tmp);
    write_file(mirror, "c.bin", "bad\n");
    vd_download_file bad[] = {{"c.bin", {HELLO_SHA256}}};
    vd_err err = {0};
    CHECK(vd_data_download_files(url, dest, bad, 1, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "c.bin") && strstr(err.msg, HELLO_SHA256) && strstr(err.msg, "mismatch"),
           "%s", err.msg);
    CHECK(!exists(dest, "c.bin") && !exists(dest, "c.bin.part"));

    vd_download_file missing[] = {{"missing.bin", {HELLO_SHA256}}};
    CHECK(vd_data_download_files(url, dest, missing, 1, &err) == VD_ERR_IO);
    char want[800];
    snprintf(want, sizeof want, "%smissing.bin", url);
    CHECKF(strstr(err.msg, want) != NULL, "%s", err.msg);
    CHECK(!exists(dest, "missing.bin") && !exists(dest, "missing.bin.part"));

    CHECK(vd_data_download_files("nope://host/", dest, missing, 1, &err) == VD_ERR_INVALID);
    vd_download_file unsummed[] = {{"a.bin", {"xyz"}}};
    CHECK(vd_data_download_files(url, dest, unsummed, 1, &err) == VD_ERR_INVALID);
}

typedef struct member {
    const char *name;
    const char *text; /* NULL: a symbolic link */
} member;

static void write_tar_gz(const char *path, const member *m, int n) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        if (m[i].text) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)strlen(m[i].text));
        } else {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, "/etc/passwd");
        }
        archive_write_header(a, e);
        if (m[i].text) archive_write_data(a, m[i].text, strlen(m[i].text));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static void test_archive(void) {
    static const char *const names[] = {"one.bin", "two.txt"};
    const member good[] = {{"batches/one.bin", "1"}, {"batches/two.txt", "2"}, {"readme", "r"}};
    char path[1024], dest[700], sum[65] = "";
    snprintf(path, sizeof path, "%s/fake.tar.gz", mirror);
    write_tar_gz(path, good, 3);
    sha256_of(path, sum);
    vd_download_file files[] = {{"fake.tar.gz", {sum}}};
    vd_download_dataset ds = {"fake", "https://unused.invalid/", "x", files, 1, "batches", names, 2};
    snprintf(dest, sizeof dest, "%s/unpacked", tmp);
    setenv("VD_DATA_BASE_URL", url, 1); /* base_url NULL: the environment wins over the table */
    vd_err err = {0};
    vd_status st = vd_data_download_set(&ds, dest, NULL, &err);
    CHECKF(st == VD_OK, "%s", err.msg);
    CHECK(has_text(dest, "batches/one.bin", "1") && has_text(dest, "batches/two.txt", "2"));
    CHECK(!exists(dest, "batches/one.bin.part"));

    const member lacking[] = {{"batches/one.bin", "1"}};
    write_tar_gz(path, lacking, 1);
    sha256_of(path, sum);
    snprintf(dest, sizeof dest, "%s/lacking", tmp);
    CHECK(vd_data_download_set(&ds, dest, NULL, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "lacks") != NULL, "%s", err.msg);
}

static void check_rejected(const member *m, const char *what) {
    char path[1024], dest[700];
    snprintf(path, sizeof path, "%s/evil.tar.gz", tmp);
    snprintf(dest, sizeof dest, "%s/evil/inner", tmp);
    write_tar_gz(path, m, 1);
    vd_err err = {0};
    mkdir(dest, 0777);
    CHECKF(vd_extract_tar_gz(path, dest, &err) == VD_ERR_INVALID, "%s", what);
    CHECKF(strstr(err.msg, "evil.tar.gz") != NULL, "%s: %s", what, err.msg);
}

static void test_unsafe_archives(void) {
    char evil[700];
    snprintf(evil, sizeof evil, "%s/evil", tmp);
    mkdir(evil, 0777);
    check_rejected((const member[]){{"../escaped.txt", "x"}}, "..");
    check_rejected((const member[]){{"a/../../escaped.txt", "x"}}, "inner ..");
    char abs[700];
    snprintf(abs, sizeof abs, "%s/evil/absolute.txt", tmp);
    check_rejected((const member[]){{abs, "x"}}, "absolute");
    check_rejected((const member[]){{"link", NULL}}, "symlink");
    CHECK(!exists(evil, "escaped.txt") && !exists(evil, "absolute.txt"));
    CHECK(!exists(tmp, "escaped.txt"));
    vd_err err = {0};
    write_file(tmp, "not.tar.gz", "plain text");
    char path[1024];
    snprintf(path, sizeof path, "%s/not.tar.gz", tmp);
    CHECK(vd_extract_tar_gz(path, evil, &err) == VD_ERR_INVALID);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/vd_download_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) VD_SETUP_FAIL("cannot create a temporary folder");
    snprintf(mirror, sizeof mirror, "%s/mirror", tmp);
    snprintf(url, sizeof url, "file://%s/", mirror);
    mkdir(mirror, 0777);
    unsetenv("VD_DATA_BASE_URL");
    test_tables();
    test_fetch();
    test_failures();
    test_archive();
    test_unsafe_archives();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return vd_test_result("test_download");
}
