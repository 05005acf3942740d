/* vdvae data: `download` fetches and verifies the reference's public datasets, `pack` turns
 * any source the data readers know into one packed file that training maps directly. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/image_source.h"
#include "data/download.h"
#include "vdvae/data.h"

static void data_help(void) {
    printf("usage: vdvae data <download|pack> [options]\n\n"
           "  download DATASET   fetch mnist, fashion_mnist or cifar-10 and verify its checksums\n"
           "  pack SRC... OUT    write a packed dataset file (.vdpack) from a config, an image\n"
           "                     folder, an IDX file, CIFAR-10 batches or an .npz\n\n"
           "'vdvae data <command> --help' describes a command's options.\n");
}

static void download_help(void) {
    int n;
    const vd_download_dataset *ds = vd_download_datasets(&n);
    printf("usage: vdvae data download DATASET [--dir DIR] [--base-url URL]\n\n"
           "Fetch DATASET and keep each file only after its SHA-256 matches the published sum;\n"
           "files already present and verified are not fetched again. Progress goes to stderr\n"
           "when it is a terminal.\n\n"
           "  --dir DIR        destination folder (default below)\n"
           "  --base-url URL   mirror holding the same file names: http://, https:// or file://\n"
           "                   (default $VD_DATA_BASE_URL, else the canonical address below)\n"
           "  -h, --help       this help\n\ndatasets:\n");
    for (int i = 0; i < n; i++)
        printf("  %-14s %s  (default --dir %s)\n", ds[i].name, ds[i].base_url, ds[i].default_dir);
    printf("cifar-10 is unpacked into DIR/cifar-10-batches-bin/.\n\n"
           "Exit codes: 0 success; 2 something to fix on the user's side: an unknown dataset, a\n"
           "malformed or unsupported URL, a mirror that lacks a file or cannot be reached, a file\n"
           "whose checksum does not match, a folder that cannot be written; 1 internal failures.\n");
}

static int run_download(const char *name, const char *dir, const char *base_url) {
    const vd_download_dataset *ds = vd_download_find(name);
    if (!ds)
        return vd_cli_usage_error("data download",
                                  "unknown dataset '%s' (known: mnist, fashion_mnist, cifar-10)", name);
    if (!dir) dir = ds->default_dir;
    vd_err err = {0};
    if (vd_data_download_set(ds, dir, base_url, &err)) return vd_cli_fail("data download", &err);
    printf("%s: %d file%s verified in %s%s%s\n", ds->name, ds->n_files, ds->n_files > 1 ? "s" : "",
           dir, ds->extract_dir ? ", unpacked into " : "", ds->extract_dir ? ds->extract_dir : "");
    return 0;
}

static int cmd_download(int argc, char **argv) {
    static const struct option opts[] = {{"dir", required_argument, 0, 'd'},
                                         {"base-url", required_argument, 0, 'u'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *base_url = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd') dir = optarg;
        else if (c == 'u') base_url = optarg;
        else if (c == 'h') return download_help(), 0;
        else return vd_cli_usage_error("data download", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("data download", "expected one DATASET");
    if (base_url && !*base_url) return vd_cli_usage_error("data download", "--base-url is empty");
    return run_download(argv[optind], dir, base_url);
}

/* ---- pack ---------------------------------------------------------------------------------- */

static void pack_help(void) {
    printf("usage: vdvae data pack SRC... OUT [--split S] [--res R] [--channels C] [--set k=v]\n"
           "       vdvae data pack --config CFG OUT [--split S] [--set section.key=value ...]\n\n"
           "Read SRC and write its images (uint8, with their names) to the packed file OUT, which\n"
           "a config may name in place of a data path. SRC is one of:\n"
           "  a .cfg file (or --config CFG)  the --split of its dataset exactly as training\n"
           "                                 reads it (padding, validation/test halves)\n"
           "  a folder of PNG/JPEG images    sorted by name, resized to R x R (--res required)\n"
           "  an IDX image file              train-images-idx3-ubyte.gz and the like (.gz or raw)\n"
           "  CIFAR-10 binary batches        data_batch_1.bin ...; several SRC files are joined\n"
           "  a downsampled-ImageNet .npz    array 'data' [N, C*R*R]: --res R, --channels C (3)\n\n"
           "  --config CFG         the config to read (instead of a .cfg SRC)\n"
           "  --split S            train, val or test (configs only; default train)\n"
           "  --set section.key=v  override a config value (repeatable)\n"
           "  --res R, --channels C  image size of folders and .npz files\n"
           "  -h, --help           this help\n\n"
           "Exit codes: 0 success; 2 bad input (flags, a missing or malformed SRC) or an OUT that\n"
           "cannot be written; 1 internal failures.\n");
}

typedef vd_source_opts pack_opts;

/* Options that would be silently ignored for this kind of source are refused instead. */
static vd_status check_opts(vd_source_kind kind, int n_src, const pack_opts *o, vd_err *err) {
    bool cfg = kind == VD_SOURCE_CONFIG, sized = kind == VD_SOURCE_FOLDER || kind == VD_SOURCE_NPZ;
    if (n_src > 1 && kind != VD_SOURCE_CIFAR)
        return vd_errorf(err, VD_ERR_INVALID, "only CIFAR-10 batches can be joined; give one SRC");
    if (!cfg && (o->split_given || o->sets.n))
        return vd_errorf(err, VD_ERR_INVALID, "--split and --set apply to a config SRC only");
    if (!sized && (o->res || o->channels))
        return vd_errorf(err, VD_ERR_INVALID, "--res and --channels apply to folders and .npz only");
    if (sized && o->res <= 0) return vd_errorf(err, VD_ERR_INVALID, "this SRC needs --res R");
    return VD_OK;
}

static vd_status load_source(char **src, int n_src, const pack_opts *o, vd_images *im, vd_err *err) {
    vd_source_kind kind = VD_SOURCE_CONFIG;
    vd_status st = vd_source_kind_of(src, n_src, o, &kind, err);
    if (st || (st = check_opts(kind, n_src, o, err))) return st;
    return vd_source_load(src, n_src, kind, o, im, err);
}

static int run_pack(char **src, int n_src, const char *out, const pack_opts *o) {
    vd_images im = {0};
    vd_err err = {0};
    char *cfg_src[1] = {(char *)o->config};
    if (o->config) src = cfg_src, n_src = 1;
    if (load_source(src, n_src, o, &im, &err)) return vd_cli_fail("data pack", &err);
    vd_status st = vd_pack_write(out, &im, &err);
    if (!st)
        printf("%s: %lld images of %dx%dx%d\n", out, (long long)im.n, im.h, im.w, im.c);
    vd_images_free(&im);
    return st ? vd_cli_fail("data pack", &err) : 0;
}

static int parse_int(const char *s, const char *flag, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return vd_cli_usage_error("data pack", "%s must be an integer in [%d, %d], not '%s'", flag,
                                  lo, hi, s);
    *out = (int)v;
    return 0;
}

static int pack_option(int c, pack_opts *o) {
    switch (c) {
    case 'c': o->config = optarg; return 0;
    case 's': o->split_given = true; return vd_source_parse_split("data pack", optarg, &o->split);
    case 'r': return parse_int(optarg, "--res", 1, 65536, &o->res);
    case 'C': return parse_int(optarg, "--channels", 1, 4, &o->channels);
    case 'S': return vd_cli_add_set(&o->sets, "data pack", optarg);
    default: return vd_cli_usage_error("data pack", "bad option");
    }
}

static int cmd_pack(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"split", required_argument, 0, 's'},
        {"res", required_argument, 0, 'r'},    {"channels", required_argument, 0, 'C'},
        {"set", required_argument, 0, 'S'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    pack_opts o = {.split = VD_SPLIT_TRAIN};
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') return pack_help(), 0;
        if ((rc = pack_option(c, &o))) return rc;
    }
    int n_pos = argc - optind, n_src = n_pos - 1;
    if (o.config ? n_pos != 1 : n_pos < 2)
        return vd_cli_usage_error("data pack", o.config ? "expected OUT after --config CFG"
                                                        : "expected SRC... OUT");
    return run_pack(argv + optind, n_src, argv[argc - 1], &o);
}

int vd_cmd_data(int argc, char **argv) {
    if (argc < 2) return vd_cli_usage_error("data", "expected 'download' or 'pack'");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) return data_help(), 0;
    if (!strcmp(sub, "download")) return cmd_download(argc - 1, argv + 1);
    if (!strcmp(sub, "pack")) return cmd_pack(argc - 1, argv + 1);
    return vd_cli_usage_error("data", "unknown data command '%s'", sub);
}
