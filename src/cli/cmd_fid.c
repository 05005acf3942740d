/* vdvae fid: pool3 statistics of a dataset (pytorch-fid's .npz), and the FID and Inception
 * Score of a run's samples against such statistics, or between two statistics files or
 * folders of images. Under mpirun the ranks share the batches of images or samples
 * (src/synth/fid.c); rank 0 alone prints and writes, and every failure is agreed between the
 * ranks so that all exit with it. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/image_source.h"
#include "dist/agree.h"
#include "fid/inception.h"
#include "synth/fid.h"
#include "vdvae/run.h"

#define FID_WEIGHTS_NAME "pt_inception-2015-12-05.safetensors"
#define FID_PTH_NAME "pt_inception-2015-12-05-6726825d.pth"
#define FID_PTH_URL "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" FID_PTH_NAME

static void fid_help(void) {
    printf("usage: vdvae fid RUN_CFG --stats REF.npz [--n N] [--temperature T] [--dir DIR]\n"
           "                [--set section.key=value]... [common options]\n"
           "       vdvae fid A B [common options]\n"
           "       vdvae fid stats SOURCE OUT.npz [--split S] [--set k=v]... [--res R]\n"
           "                [--channels C] [common options]\n\n"
           "FID (Frechet Inception Distance, as pytorch-fid computes it) and Inception Score (10\n"
           "splits, as torch-fidelity computes it) on the pool3 features and logits of the FID\n"
           "Inception network:\n"
           "  RUN_CFG --stats REF.npz  N samples of the run CFG names (EMA weights of its newest\n"
           "                           checkpoint), streamed through the network without writing\n"
           "                           images, against the statistics REF.npz\n"
           "  A B                      between two pytorch-fid statistics files (.npz with mu and\n"
           "                           sigma) or folders of images (at their own size), in any mix\n"
           "  stats SOURCE OUT.npz     the statistics of SOURCE saved as pytorch-fid saves them:\n"
           "                           a folder of PNG/JPEG images (at their own size) or anything\n"
           "                           `vdvae data pack` reads (a .cfg's --split, an IDX file,\n"
           "                           CIFAR-10 batches, an .npz with --res, a .vdpack)\n\n"
           "  --stats REF.npz      the reference statistics of RUN_CFG's samples\n"
           "  --n N                samples (default 50000)\n"
           "  --temperature T      latent temperature of the samples (default 1.0)\n"
           "  --dir DIR            where the run lives (default .)\n"
           "  --set s.key=value    override a key of the run's (or SOURCE's) config (repeatable)\n"
           "  --split S            stats of a .cfg: train, val or test (default train)\n"
           "  --res R, --channels C  stats of an .npz of images: their size (folders: --res\n"
           "                       resizes every image to R x R first)\n"
           "common options:\n"
           "  --weights PATH       the network's weights (default $VD_FID_WEIGHTS, else\n"
           "                       $XDG_DATA_HOME/vdvae/" FID_WEIGHTS_NAME ",\n"
           "                       XDG_DATA_HOME defaulting to ~/.local/share)\n"
           "  --batch B            images through the network at once (default 50)\n"
           "  --backend NAME       cpu, cpu_ref or cuda; this build has: %s\n"
           "  --threads T          CPU threads\n"
           "  -q, --quiet          no progress bar\n"
           "  -h, --help           this help\n\n"
           "The weights are pytorch-fid's " FID_PTH_NAME ", which you\n"
           "download yourself and convert once (nothing is downloaded at run time):\n"
           "  python3 tools/fid_weights.py " FID_PTH_NAME " OUT.safetensors\n\n"
           "Output: 'FID: <value>', 'IS: <mean> std <std>' and 'images/s: <rate>' lines.\n"
           "Exit codes: 0 success; 2 bad input (flags, missing or wrong weights, a file that is\n"
           "not statistics or of other dimensions, an empty folder); 1 other failures.\n",
           vd_backend_names());
}

typedef struct fid_args {
    const char *stats_ref, *weights, *dir;
    char weights_path[VD_PATH_MAX];
    int64_t n;
    double temperature;
    vd_source_opts src;
    vd_fid_opts o;
} fid_args;

/* ---- the weights ------------------------------------------------------------------------------ */

/* --weights, else $VD_FID_WEIGHTS, else the default place; missing: where to get them. */
static vd_status find_weights(const char *given, char *path, size_t cap, vd_err *err) {
    const char *env = getenv("VD_FID_WEIGHTS"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (given) n = snprintf(path, cap, "%s", given);
    else if (env && *env) n = snprintf(path, cap, "%s", env);
    else if (xdg && *xdg) n = snprintf(path, cap, "%s/vdvae/%s", xdg, FID_WEIGHTS_NAME);
    else n = snprintf(path, cap, "%s/.local/share/vdvae/%s", home ? home : ".", FID_WEIGHTS_NAME);
    if (n < 0 || (size_t)n >= cap) return vd_errorf(err, VD_ERR_INVALID, "weights path too long");
    if (access(path, R_OK) == 0) return VD_OK;
    return vd_errorf(err, VD_ERR_INVALID,
                     "no FID Inception weights at %s (%s). Download pytorch-fid's %s yourself "
                     "(%s), convert it with `python3 tools/fid_weights.py %s %s`, or point "
                     "--weights or $VD_FID_WEIGHTS at the converted file",
                     path, given ? "--weights" : env && *env ? "$VD_FID_WEIGHTS" : "the default place",
                     FID_PTH_NAME, FID_PTH_URL, FID_PTH_NAME, path);
}

/* The weights, found once a form needs the network (two statistics files do not). */
static vd_status need_weights(fid_args *a, vd_err *err) {
    if (a->o.weights) return VD_OK;
    vd_status st = find_weights(a->weights, a->weights_path, sizeof a->weights_path, err);
    if (!st) a->o.weights = a->weights_path;
    return st;
}

/* ---- the ranks -------------------------------------------------------------------------------- */

/* Every rank's status of a step that may fail on some ranks only (a file one host lacks): under
 * mpirun all go on, or all stop with the same error (exit as one, no abort). */
static vd_status agree(vd_status st, vd_err *err) {
    vd_comm *c = vd_comm_world_peek();
    return c && c->size > 1 ? vd_dist_agree_status(c, st, err) : st;
}

/* ---- output ----------------------------------------------------------------------------------- */

static void print_images(const char *what, const vd_fid_result *r) {
    if (isnan(r->is_mean))
        printf("IS: n/a (%s: %lld images, fewer than %d splits)\n", what, (long long)r->images,
               VD_FID_IS_SPLITS);
    else
        printf("IS: %.9g std %.9g (%s: %lld images, %d splits)\n", r->is_mean, r->is_std, what,
               (long long)r->images, VD_FID_IS_SPLITS);
    printf("images/s: %.2f (%s: %lld images in %.1f s)\n",
           r->seconds > 0 ? (double)r->images / r->seconds : 0.0, what, (long long)r->images,
           r->seconds);
}

/* A statistics file against the network's features (2048): another size names the file. */
static vd_status check_dims(const char *path, const vd_fid_stats *s, vd_err *err) {
    if (s->dims == VD_FID_DIMS) return VD_OK;
    return vd_errorf(err, VD_ERR_INVALID, "%s: statistics of %d features, but the network's pool3 "
                     "has %d (pytorch-fid --dims 2048)", path, s->dims, VD_FID_DIMS);
}

/* The writer's FID line; every rank learns whether it could be computed. */
static vd_status report_fid(const vd_fid_stats *a, const vd_fid_stats *b, vd_err *err) {
    double fid;
    vd_status st = VD_OK;
    if (vd_cli_writer() && !(st = vd_fid_distance(a, b, &fid, err))) printf("FID: %.9g\n", fid);
    return agree(st, err);
}

/* ---- vdvae fid stats SOURCE OUT.npz ------------------------------------------------------------ */

static vd_status stats_of_source(char *src, fid_args *a, vd_fid_result *r, vd_err *err) {
    vd_source_kind kind;
    vd_images im = {0};
    vd_status st = need_weights(a, err);
    if (!st) st = vd_source_kind_of(&src, 1, &a->src, &kind, err);
    if (!st && kind != VD_SOURCE_CONFIG && (a->src.split_given || a->src.sets.n))
        st = vd_errorf(err, VD_ERR_INVALID, "--split and --set apply to a config SOURCE only");
    if (!st && kind == VD_SOURCE_NPZ && a->src.res <= 0)
        st = vd_errorf(err, VD_ERR_INVALID, "%s: an .npz of images needs --res R", src);
    if (!st && kind != VD_SOURCE_NPZ && kind != VD_SOURCE_FOLDER && (a->src.res || a->src.channels))
        st = vd_errorf(err, VD_ERR_INVALID, "--res and --channels apply to folders and .npz only");
    if (!st) st = vd_source_load(&src, 1, kind, &a->src, &im, err);
    st = agree(st, err);
    if (!st) st = vd_fid_of_images(&im, &a->o, r, err);
    vd_images_free(&im);
    return st;
}

static int run_stats(char *src, const char *out, fid_args *a) {
    vd_err err = {0};
    vd_fid_result r;
    if (stats_of_source(src, a, &r, &err)) return vd_cli_fail("fid stats", &err);
    bool writer = vd_cli_writer();
    int rc = 0;
    if (agree(writer ? vd_fid_stats_save(&r.stats, out, &err) : VD_OK, &err))
        rc = vd_cli_fail("fid stats", &err);
    else if (writer)
        printf("%s: statistics of %lld images (%d features)\n", out, (long long)r.images, r.stats.dims);
    if (!rc && writer) print_images(src, &r);
    vd_fid_stats_free(&r.stats);
    return rc;
}

/* ---- vdvae fid A B ------------------------------------------------------------------------------ */

static vd_status is_folder(const char *path, bool *dir, vd_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return vd_errorf(err, VD_ERR_INVALID, "%s: no such file or folder", path);
    *dir = S_ISDIR(sb.st_mode);
    return VD_OK;
}

/* The statistics of a folder of images through the network. */
static vd_status folder_stats(const char *path, fid_args *a, vd_fid_stats *s, vd_err *err) {
    vd_images im = {0};
    vd_fid_result r;
    vd_status st = need_weights(a, err);
    if (!st) st = vd_read_image_folder(path, a->src.res, &im, err);
    st = agree(st, err);
    if (!st) st = vd_fid_of_images(&im, &a->o, &r, err);
    vd_images_free(&im);
    if (st) return st;
    if (vd_cli_writer()) print_images(path, &r);
    *s = r.stats;
    return VD_OK;
}

/* Statistics files first, so that a wrong one fails before a folder goes through the network;
 * one against a folder must be of the network's features (so two of other features can only
 * differ when neither is a folder). Every rank reads the files; the folders' images are shared. */
static vd_status pair_stats(const char *path[2], fid_args *a, vd_fid_stats s[2], vd_err *err) {
    bool dir[2];
    vd_status st = is_folder(path[0], &dir[0], err);
    if (!st) st = is_folder(path[1], &dir[1], err);
    for (int i = 0; i < 2 && !st; i++)
        if (!dir[i]) st = vd_fid_stats_load(&s[i], path[i], err);
    for (int i = 0; i < 2 && !st; i++)
        if (!dir[i] && (dir[0] || dir[1])) st = check_dims(path[i], &s[i], err);
    if (!st && !dir[0] && !dir[1] && s[0].dims != s[1].dims)
        st = vd_errorf(err, VD_ERR_INVALID, "%s has %d features and %s %d: the statistics must be "
                       "of one network layer", path[0], s[0].dims, path[1], s[1].dims);
    st = agree(st, err);
    for (int i = 0; i < 2 && !st; i++)
        if (dir[i]) st = folder_stats(path[i], a, &s[i], err);
    return st;
}

static int run_pair(const char *pa, const char *pb, fid_args *a) {
    vd_err err = {0};
    vd_fid_stats s[2] = {{0}, {0}};
    const char *path[2] = {pa, pb};
    vd_status st = pair_stats(path, a, s, &err);
    if (!st) st = report_fid(&s[0], &s[1], &err);
    int rc = st ? vd_cli_fail("fid", &err) : 0;
    vd_fid_stats_free(&s[0]), vd_fid_stats_free(&s[1]);
    return rc;
}

/* ---- vdvae fid RUN_CFG --stats REF.npz ---------------------------------------------------------- */

static vd_status samples_stats(const char *cfg, fid_args *a, vd_fid_result *r, vd_err *err) {
    vd_hparams *hp = malloc(sizeof *hp);
    if (!hp) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_rundir rd;
    /* the run is the one CFG names after --set, as vdvae train names it */
    vd_status st = vd_hparams_load(hp, cfg, a->src.sets.items, a->src.sets.n, err);
    if (!st) st = vd_rundir_read(&rd, a->dir, hp->run.name, a->src.sets.items, a->src.sets.n, hp, err);
    st = agree(st, err);
    if (!st) st = vd_fid_of_samples(hp, &rd, a->n, a->temperature, &a->o, r, err);
    free(hp);
    return st;
}

static int run_samples(const char *cfg, fid_args *a) {
    vd_err err = {0};
    vd_fid_stats ref = {0};
    vd_fid_result r = {0};
    bool writer = vd_cli_writer();
    /* the reference first (rank 0's, which alone needs it): a wrong file fails before the
     * samples are drawn */
    vd_status st = writer ? vd_fid_stats_load(&ref, a->stats_ref, &err) : VD_OK;
    if (!st && writer) st = check_dims(a->stats_ref, &ref, &err);
    if (!st) st = need_weights(a, &err);
    st = agree(st, &err);
    if (!st) st = samples_stats(cfg, a, &r, &err);
    int rc = st ? vd_cli_fail("fid", &err) : 0;
    if (!rc) {
        if (writer)
            printf("samples: %lld at temperature %g, EMA weights of %s (step %lld)\n", (long long)r.images,
                   a->temperature, r.checkpoint, (long long)r.step);
        if (report_fid(&r.stats, &ref, &err)) rc = vd_cli_fail("fid", &err);
        if (writer) print_images("samples", &r);
    }
    vd_fid_stats_free(&ref), vd_fid_stats_free(&r.stats);
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------------ */

static int parse_long(const char *s, const char *flag, long long lo, long long hi, long long *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return vd_cli_usage_error("fid", "%s must be an integer in [%lld, %lld], not '%s'", flag, lo, hi, s);
    *out = v;
    return 0;
}

static int parse_temperature(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0) || !isfinite(v))
        return vd_cli_usage_error("fid", "--temperature must be a number >= 0, not '%s'", s);
    *out = v;
    return 0;
}

static int fid_option(int c, fid_args *a) {
    long long v = 0;
    int rc = 0;
    switch (c) {
    case 'S': a->stats_ref = optarg; return 0;
    case 'n': rc = parse_long(optarg, "--n", 2, INT64_MAX / 2, &v), a->n = v; return rc;
    case 'T': return parse_temperature(optarg, &a->temperature);
    case 'd': a->dir = optarg; return 0;
    case 's': return vd_cli_add_set(&a->src.sets, "fid", optarg);
    case 'p': a->src.split_given = true; return vd_source_parse_split("fid", optarg, &a->src.split);
    case 'r': rc = parse_long(optarg, "--res", 1, 65535, &v), a->src.res = (int)v; return rc;
    case 'C': rc = parse_long(optarg, "--channels", 1, 4, &v), a->src.channels = (int)v; return rc;
    case 'w': a->weights = optarg; return 0;
    case 'b': rc = parse_long(optarg, "--batch", 1, 4096, &v), a->o.batch = (int)v; return rc;
    case 'k': a->o.backend = optarg; return 0;
    case 't': rc = parse_long(optarg, "--threads", 0, 4096, &v), a->o.threads = (int)v; return rc;
    case 'q': a->o.quiet = true; return 0;
    case 'G': a->o.dump_logits = optarg; return 0;
    default: return vd_cli_usage_error("fid", "bad option");
    }
}

/* Which form the positional arguments and --stats make, and the options it takes. */
static int dispatch(int argc, char **argv, fid_args *a) {
    int n_pos = argc - optind;
    char **pos = argv + optind;
    bool stats = n_pos >= 1 && !strcmp(pos[0], "stats");
    bool run = !stats && a->stats_ref;
    if (stats ? n_pos != 3 : run ? n_pos != 1 : n_pos != 2)
        return vd_cli_usage_error("fid", stats ? "stats takes SOURCE OUT.npz"
                                        : run ? "expected one RUN_CFG with --stats"
                                              : "expected RUN_CFG --stats REF.npz, A B, or stats SOURCE OUT.npz");
    if (!run && (a->n || a->temperature >= 0 || a->dir))
        return vd_cli_usage_error("fid", "--n, --temperature and --dir apply to RUN_CFG --stats only");
    if (!stats && (a->src.split_given || a->src.channels || (a->src.res && run)))
        return vd_cli_usage_error("fid", "--split and --channels apply to fid stats only");
    if (!stats && !run && a->o.dump_logits)
        return vd_cli_usage_error("fid", "--dump-logits applies to one set of images");
    if (!stats && !run && a->src.sets.n)
        return vd_cli_usage_error("fid", "--set applies to RUN_CFG or a stats SOURCE config");
    a->o.label = "fid";
    /* the job (MPI under mpirun) before any file is read or backend opened: rank 0 writes */
    vd_comm *comm = NULL;
    vd_err err = {0};
    if (vd_comm_world(&comm, &err)) return vd_cli_fail("fid", &err);
    if (stats) return run_stats(pos[1], pos[2], a);
    if (run) {
        if (!a->n) a->n = 50000;
        if (a->temperature < 0) a->temperature = 1.0;
        if (!a->dir) a->dir = ".";
        return run_samples(pos[0], a);
    }
    return run_pair(pos[0], pos[1], a);
}

int vd_cmd_fid(int argc, char **argv) {
    static const struct option opts[] = {
        {"stats", required_argument, 0, 'S'},   {"n", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 'T'}, {"dir", required_argument, 0, 'd'},
        {"set", required_argument, 0, 's'},     {"split", required_argument, 0, 'p'},
        {"res", required_argument, 0, 'r'},     {"channels", required_argument, 0, 'C'},
        {"weights", required_argument, 0, 'w'}, {"batch", required_argument, 0, 'b'},
        {"backend", required_argument, 0, 'k'}, {"threads", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {"dump-logits", required_argument, 0, 'G'}, /* tests: not in help */
        {0, 0, 0, 0}};
    fid_args a = {.temperature = -1, .src = {.split = VD_SPLIT_TRAIN}, .o = {.batch = 50}};
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        if (c == 'h') return fid_help(), 0;
        if ((rc = fid_option(c, &a))) return rc;
    }
    return dispatch(argc, argv, &a);
}
