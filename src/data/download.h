/* Internals of `vdvae data download` that tests drive directly: the checksum tables, a
 * fetch of any file list with its own expected sums, and the safe tar.gz extraction. */
#ifndef VD_DATA_DOWNLOAD_H
#define VD_DATA_DOWNLOAD_H

#include "vdvae/status.h"

#define VD_DOWNLOAD_MAX_SUMS 2

/* One remote file; any one of its sums accepts it. A sum is lowercase hex: 64 digits for
 * SHA-256, 32 for MD5. Unused slots are NULL. */
typedef struct vd_download_file {
    const char *name; /* under base_url and under dest_dir */
    const char *sums[VD_DOWNLOAD_MAX_SUMS];
} vd_download_file;

typedef struct vd_download_dataset {
    const char *name;        /* "mnist", "fashion_mnist", "cifar-10" */
    const char *base_url;    /* canonical address, ending in '/' */
    const char *default_dir; /* where `vdvae data download` puts it without --dir */
    const vd_download_file *files;
    int n_files;
    /* When set, every file is a .tar.gz unpacked into dest_dir, which must then hold
     * extract_dir/members[i] for each member. */
    const char *extract_dir;
    const char *const *members;
    int n_members;
} vd_download_dataset;

/* The built-in datasets; *n receives their count. */
const vd_download_dataset *vd_download_datasets(int *n);
const vd_download_dataset *vd_download_find(const char *name);

/* Fetch files[0..n) from base_url into dest_dir (created if missing). A file already in
 * place whose sum matches is kept; otherwise it is fetched to <name>.part, verified, and
 * renamed. Unknown protocols and malformed URLs are VD_ERR_INVALID, a checksum mismatch is
 * VD_ERR_INVALID (the .part is deleted), network and file-system failures VD_ERR_IO. */
vd_status vd_data_download_files(const char *base_url, const char *dest_dir,
                                 const vd_download_file *files, int n, vd_err *err);

/* vd_data_download for any table (base_url NULL: $VD_DATA_BASE_URL, else ds->base_url). */
vd_status vd_data_download_set(const vd_download_dataset *ds, const char *dest_dir,
                               const char *base_url, vd_err *err);

/* Unpack the regular files and directories of a .tar.gz under dest_dir. Entries with an
 * absolute path, a '..' component, or of any other type (links, devices) are rejected with
 * VD_ERR_INVALID before anything of theirs is written. */
vd_status vd_extract_tar_gz(const char *archive, const char *dest_dir, vd_err *err);

/* True when s is 32 or 64 lowercase hex digits. */
int vd_download_sum_valid(const char *s);

#endif
