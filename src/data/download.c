/* Dataset downloads: libcurl fetches each file to a .part file, OpenSSL's EVP checks its
 * digest, and only a verified file is renamed into place; libarchive unpacks CIFAR-10. */
#include "data/download.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "vdvae/data.h"

#define PATH_MAX_LEN 4096

/* ---- the tables ------------------------------------------------------------------------
 * SHA-256 sums as published in TensorFlow Datasets' url_checksums (mnist.txt,
 * fashion_mnist.txt, cifar10.txt), which match the MD5s torchvision lists. MNIST's files are
 * the same bytes on the ossci-datasets mirror and on the cvdf mirror TFDS names.
 * Fashion-MNIST has a second accepted sum per file: Debian's dataset-fashion-mnist package
 * (0.0~git20200523.55506a9-1, /usr/share/datasets/fashion-mnist/) re-compressed the files,
 * so its .gz bytes differ from the S3 originals while the decompressed IDX data is identical
 * (its MD5s equal upstream's published raw-file MD5s); the second sums are of those files. */

static const vd_download_file mnist_files[] = {
    {"train-images-idx3-ubyte.gz", {"440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"}},
    {"train-labels-idx1-ubyte.gz", {"3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"}},
    {"t10k-images-idx3-ubyte.gz", {"8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"}},
    {"t10k-labels-idx1-ubyte.gz", {"f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}},
};

static const vd_download_file fashion_files[] = {
    {"train-images-idx3-ubyte.gz", {"3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                    "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"}},
    {"train-labels-idx1-ubyte.gz", {"a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                    "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"}},
    {"t10k-images-idx3-ubyte.gz", {"346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                   "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"}},
    {"t10k-labels-idx1-ubyte.gz", {"67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                   "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"}},
};

static const vd_download_file cifar_files[] = {
    {"cifar-10-binary.tar.gz", {"c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"}},
};

static const char *const cifar_members[] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin", "test_batch.bin",   "batches.meta.txt",
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* CIFAR-10's default is the parent folder so that 'datasets/cifar-10-batches-bin/', the
 * path our example config reads, appears after unpacking. */
static const vd_download_dataset datasets[] = {
    {"mnist", "https://ossci-datasets.s3.amazonaws.com/mnist/", "datasets/mnist", mnist_files,
     COUNT(mnist_files), NULL, NULL, 0},
    {"fashion_mnist", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "datasets/fashion_mnist", fashion_files, COUNT(fashion_files), NULL, NULL, 0},
    {"cifar-10", "https://www.cs.toronto.edu/~kriz/", "datasets", cifar_files, COUNT(cifar_files),
     "cifar-10-batches-bin", cifar_members, COUNT(cifar_members)},
};

const vd_download_dataset *vd_download_datasets(int *n) {
    *n = COUNT(datasets);
    return datasets;
}

const vd_download_dataset *vd_download_find(const char *name) {
    for (int i = 0; i < COUNT(datasets); i++)
        if (!strcmp(datasets[i].name, name)) return &datasets[i];
    return NULL;
}

int vd_download_sum_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n != 32 && n != 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* ---- paths ------------------------------------------------------------------------------ */

static vd_status join_path(char *out, const char *dir, const char *name, const char *suffix,
                           vd_err *err) {
    int n = snprintf(out, PATH_MAX_LEN, "%s/%s%s", dir, name, suffix);
    if (n < 0 || n >= PATH_MAX_LEN)
        return vd_errorf(err, VD_ERR_INVALID, "%s/%s: path too long", dir, name);
    return VD_OK;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- digests ---------------------------------------------------------------------------- */

typedef struct digests {
    char sha256[65];
    char md5[33];
} digests;

static void to_hex(const unsigned char *d, unsigned n, char *out) {
    for (unsigned i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", d[i]);
    out[2 * n] = '\0';
}

static vd_status digest_final(EVP_MD_CTX *ctx, char *hex, const char *path, vd_err *err) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_DigestFinal_ex(ctx, d, &n))
        return vd_errorf(err, VD_ERR_INTERNAL, "%s: OpenSSL digest failed", path);
    to_hex(d, n, hex);
    return VD_OK;
}

/* Both digests in one read: the tables hold SHA-256, callers of vd_data_download_files may
 * pass MD5 (the form some dataset pages publish). */
static vd_status hash_file(const char *path, digests *out, vd_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *sha = EVP_MD_CTX_new(), *md5 = EVP_MD_CTX_new();
    vd_status st = VD_OK;
    if (!sha || !md5 || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL) ||
        !EVP_DigestInit_ex(md5, EVP_md5(), NULL))
        st = vd_errorf(err, VD_ERR_INTERNAL, "%s: OpenSSL digest setup failed", path);
    unsigned char buf[1 << 16];
    size_t got;
    while (!st && (got = fread(buf, 1, sizeof buf, f)) > 0)
        if (!EVP_DigestUpdate(sha, buf, got) || !EVP_DigestUpdate(md5, buf, got))
            st = vd_errorf(err, VD_ERR_INTERNAL, "%s: OpenSSL digest failed", path);
    if (!st && ferror(f)) st = vd_errorf(err, VD_ERR_IO, "%s: read error", path);
    if (!st) st = digest_final(sha, out->sha256, path, err);
    if (!st) st = digest_final(md5, out->md5, path, err);
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    fclose(f);
    return st;
}

static bool sums_match(const vd_download_file *file, const digests *d) {
    for (int i = 0; i < VD_DOWNLOAD_MAX_SUMS && file->sums[i]; i++) {
        const char *actual = strlen(file->sums[i]) == 32 ? d->md5 : d->sha256;
        if (!strcasecmp(file->sums[i], actual)) return true;
    }
    return false;
}

static vd_status mismatch_error(const char *path, const char *url, const vd_download_file *file,
                                const digests *d, vd_err *err) {
    char expected[300] = "";
    for (int i = 0; i < VD_DOWNLOAD_MAX_SUMS && file->sums[i]; i++)
        snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s%s",
                 i ? " or " : "", file->sums[i]);
    bool md5 = strlen(file->sums[0]) == 32;
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: checksum mismatch in the copy of %s (deleted): expected %s %s, got %s",
                     path, url,
                     md5 ? "MD5" : "SHA-256", expected, md5 ? d->md5 : d->sha256);
}

/* ---- transfer ----------------------------------------------------------------------------- */

typedef struct progress {
    const char *label;
    double last; /* monotonic seconds of the last line drawn */
    curl_off_t done; /* bytes shown in that line */
    bool drawn;
} progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int on_progress(void *p, curl_off_t total, curl_off_t done, curl_off_t ut, curl_off_t ud) {
    (void)ut, (void)ud;
    progress *pr = p;
    double t = now_s();
    /* curl calls back often and repeatedly with the same numbers: draw ~5 times a second */
    if (done == pr->done || (t - pr->last < 0.2 && done != total)) return 0;
    pr->last = t;
    pr->done = done;
    pr->drawn = true;
    if (total > 0)
        fprintf(stderr, "\r%s: %.1f / %.1f MB", pr->label, (double)done / 1e6, (double)total / 1e6);
    else
        fprintf(stderr, "\r%s: %.1f MB", pr->label, (double)done / 1e6);
    return 0;
}

/* A bad URL is the user's input; anything else that stops a transfer is I/O. */
static vd_status curl_status(CURLcode rc) {
    return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ? VD_ERR_INVALID
                                                                          : VD_ERR_IO;
}

static void setup_curl(CURL *c, const char *url, FILE *out, char *errbuf, progress *pr) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    /* a stalled mirror fails after a minute below 1 byte/s rather than hanging forever */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    /* the largest file (CIFAR-10) is 170 MB: a wrong URL cannot fill the disk */
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 30);
    if (pr) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, pr);
    }
}

/* url -> a->f, flushed so that the file can be hashed; the .part is removed on failure. */
static vd_status fetch_url(const char *url, vd_atomic *a, const char *label, vd_err *err) {
    CURL *c = curl_easy_init();
    if (!c) {
        vd_atomic_abort(a);
        return vd_errorf(err, VD_ERR_INTERNAL, "libcurl: cannot create a transfer");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    progress pr = {label, 0.0, 0, false};
    setup_curl(c, url, a->f, errbuf, isatty(STDERR_FILENO) ? &pr : NULL);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (pr.drawn) fputc('\n', stderr);
    bool write_ok = fflush(a->f) == 0 && !ferror(a->f);
    int e = errno;
    if (rc == CURLE_OK && write_ok) return VD_OK;
    vd_atomic_abort(a);
    if (rc != CURLE_OK)
        return vd_errorf(err, curl_status(rc), "cannot fetch %s: %s", url,
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return vd_errorf(err, VD_ERR_IO, "%s: write failed: %s", a->tmp, strerror(e));
}

static vd_status make_url(char *url, const char *base, const char *name, vd_err *err) {
    size_t n = strlen(base);
    const char *sep = n && base[n - 1] == '/' ? "" : "/";
    int w = snprintf(url, PATH_MAX_LEN, "%s%s%s", base, sep, name);
    if (w < 0 || w >= PATH_MAX_LEN) return vd_errorf(err, VD_ERR_INVALID, "%s: URL too long", base);
    return VD_OK;
}

static bool sums_valid(const vd_download_file *file) {
    if (!vd_download_sum_valid(file->sums[0])) return false;
    for (int i = 1; i < VD_DOWNLOAD_MAX_SUMS; i++)
        if (file->sums[i] && !vd_download_sum_valid(file->sums[i])) return false;
    return true;
}

/* Keep a verified copy; otherwise fetch to .part, verify, then fsync and rename: a file that
 * fails its sum never takes the name. The .part name is fixed so that an interrupted download
 * is overwritten by the next one rather than left beside it. */
static vd_status fetch_one(const char *base, const char *dest, const vd_download_file *file,
                           vd_err *err) {
    char path[PATH_MAX_LEN], url[PATH_MAX_LEN];
    digests d;
    vd_status st;
    if ((st = join_path(path, dest, file->name, "", err)) ||
        (st = make_url(url, base, file->name, err)))
        return st;
    if (file_exists(path)) {
        if ((st = hash_file(path, &d, err))) return st;
        if (sums_match(file, &d)) return VD_OK;
    }
    vd_atomic a;
    if ((st = vd_atomic_begin_as(&a, path, ".part", err)) ||
        (st = fetch_url(url, &a, file->name, err)))
        return st;
    if ((st = hash_file(a.tmp, &d, err))) {
        vd_atomic_abort(&a);
        return st;
    }
    if (!sums_match(file, &d)) {
        vd_atomic_abort(&a);
        return mismatch_error(path, url, file, &d, err);
    }
    return vd_atomic_commit(&a, true, err);
}

vd_status vd_data_download_files(const char *base_url, const char *dest_dir,
                                 const vd_download_file *files, int n, vd_err *err) {
    if (!base_url || !*base_url) return vd_errorf(err, VD_ERR_INVALID, "empty base URL");
    for (int i = 0; i < n; i++)
        if (!files[i].name || !sums_valid(&files[i]))
            return vd_errorf(err, VD_ERR_INVALID, "download entry %d (%s) has an invalid checksum", i,
                             files[i].name ? files[i].name : "no name");
    vd_status st = vd_mkdirs(dest_dir, err);
    if (st) return st;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return vd_errorf(err, VD_ERR_INTERNAL, "libcurl: global initialisation failed");
    for (int i = 0; i < n && !st; i++) st = fetch_one(base_url, dest_dir, &files[i], err);
    curl_global_cleanup();
    return st;
}

/* ---- tar.gz extraction -------------------------------------------------------------------- */

/* Only relative names without '..' components stay inside dest_dir. */
static bool safe_member(const char *name) {
    if (!name || !*name || name[0] == '/') return false;
    for (const char *p = name; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        p += len;
        while (*p == '/') p++;
    }
    return true;
}

static vd_status check_entry(struct archive_entry *e, const char *archive, vd_err *err) {
    const char *name = archive_entry_pathname(e);
    if (!safe_member(name))
        return vd_errorf(err, VD_ERR_INVALID, "%s: entry '%s' has an absolute path or '..'",
                         archive, name ? name : "");
    mode_t type = archive_entry_filetype(e);
    if ((type != AE_IFREG && type != AE_IFDIR) || archive_entry_hardlink(e))
        return vd_errorf(err, VD_ERR_INVALID, "%s: entry '%s' is neither a file nor a directory",
                         archive, name);
    return VD_OK;
}

static vd_status parent_dirs(const char *path, vd_err *err) {
    char dir[PATH_MAX_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return VD_OK;
    *slash = '\0';
    return vd_mkdirs(dir, err);
}

static vd_status copy_data(struct archive *a, FILE *out, const char *archive, const char *part,
                           vd_err *err) {
    const void *buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
        if (fwrite(buf, 1, size, out) != size)
            return vd_errorf(err, VD_ERR_IO, "%s: write failed: %s", part, strerror(errno));
    if (r != ARCHIVE_EOF)
        return vd_errorf(err, VD_ERR_INVALID, "%s: corrupt data: %s", archive, archive_error_string(a));
    return VD_OK;
}

/* One regular member, through a .part file like the downloads; not fsync'ed: the archive is
 * kept and the members can be extracted again. */
static vd_status extract_file(struct archive *a, const char *archive, const char *path,
                              vd_err *err) {
    vd_status st = parent_dirs(path, err);
    vd_atomic out;
    if (st || (st = vd_atomic_begin_as(&out, path, ".part", err))) return st;
    if ((st = copy_data(a, out.f, archive, out.tmp, err))) {
        vd_atomic_abort(&out);
        return st;
    }
    return vd_atomic_commit(&out, false, err);
}

static vd_status extract_entry(struct archive *a, struct archive_entry *e, const char *archive,
                               const char *dest, vd_err *err) {
    char path[PATH_MAX_LEN];
    vd_status st = check_entry(e, archive, err);
    if (!st) st = join_path(path, dest, archive_entry_pathname(e), "", err);
    if (st) return st;
    if (archive_entry_filetype(e) == AE_IFDIR) return vd_mkdirs(path, err);
    return extract_file(a, archive, path, err);
}

vd_status vd_extract_tar_gz(const char *archive, const char *dest_dir, vd_err *err) {
    struct archive *a = archive_read_new();
    if (!a) return vd_errorf(err, VD_ERR_NOMEM, "libarchive: cannot create a reader");
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    vd_status st = VD_OK;
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK)
        /* a readable file libarchive refuses is not a tar.gz */
        st = vd_errorf(err, access(archive, R_OK) == 0 ? VD_ERR_INVALID : VD_ERR_IO,
                       "%s: cannot open: %s", archive, archive_error_string(a));
    struct archive_entry *e;
    int r = ARCHIVE_OK;
    while (!st && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK)
        st = extract_entry(a, e, archive, dest_dir, err);
    if (!st && r != ARCHIVE_EOF)
        st = vd_errorf(err, VD_ERR_INVALID, "%s: not a valid tar.gz: %s", archive,
                       archive_error_string(a));
    archive_read_free(a);
    return st;
}

/* ---- datasets ------------------------------------------------------------------------------ */

static bool members_present(const vd_download_dataset *ds, const char *dest) {
    char path[PATH_MAX_LEN];
    for (int i = 0; i < ds->n_members; i++) {
        int n = snprintf(path, sizeof path, "%s/%s/%s", dest, ds->extract_dir, ds->members[i]);
        if (n < 0 || n >= (int)sizeof path || !file_exists(path)) return false;
    }
    return true;
}

static vd_status unpack(const vd_download_dataset *ds, const char *dest, vd_err *err) {
    char path[PATH_MAX_LEN];
    vd_status st = VD_OK;
    if (members_present(ds, dest)) return VD_OK;
    for (int i = 0; i < ds->n_files && !st; i++)
        if (!(st = join_path(path, dest, ds->files[i].name, "", err)))
            st = vd_extract_tar_gz(path, dest, err);
    if (!st && !members_present(ds, dest))
        st = vd_errorf(err, VD_ERR_INVALID, "%s: the archive lacks some of %s/%s ... %s",
                       dest, ds->extract_dir, ds->members[0], ds->members[ds->n_members - 1]);
    return st;
}

vd_status vd_data_download_set(const vd_download_dataset *ds, const char *dest_dir,
                               const char *base_url, vd_err *err) {
    if (!base_url || !*base_url) base_url = getenv("VD_DATA_BASE_URL");
    if (!base_url || !*base_url) base_url = ds->base_url;
    vd_status st = vd_data_download_files(base_url, dest_dir, ds->files, ds->n_files, err);
    if (!st && ds->extract_dir) st = unpack(ds, dest_dir, err);
    if (st) vd_err_prefix(err, "%s", ds->name);
    return st;
}

vd_status vd_data_download(const char *dataset, const char *dest_dir, const char *base_url,
                           vd_err *err) {
    const vd_download_dataset *ds = dataset ? vd_download_find(dataset) : NULL;
    if (!ds)
        return vd_errorf(err, VD_ERR_INVALID,
                         "unknown dataset '%s' (known: mnist, fashion_mnist, cifar-10)",
                         dataset ? dataset : "");
    return vd_data_download_set(ds, dest_dir, base_url, err);
}
