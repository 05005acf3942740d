/* vdvae info: what a config builds without building it — blocks, parameter count, FLOPs
 * and the memory a training step needs at a batch size. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "dist/comm.h"
#include "vdvae/config.h"
#include "vdvae/model.h"

static void info_help(void) {
    printf("usage: vdvae info CFG [--batch B] [--set section.key=value]... [--params]\n\n"
           "Print the architecture a config builds: one row per block (kind, resolution,\n"
           "channels, parameters, forward GFLOP and kept activations per image), the totals,\n"
           "and the memory of a training step (parameters, gradients, two optimizer moments,\n"
           "EMA, activations) at batch size B.\n\n"
           "  -b, --batch B    batch size for the memory plan (default: train.batch_size)\n"
           "  -s, --set S.K=V  override a config value (repeatable)\n"
           "  -p, --params     also list every parameter tensor (reference state_dict names)\n"
           "  -h, --help       this help\n");
}

static const char *dataset_str(vd_dataset d) {
    switch (d) {
    case VD_DATA_BINARIZED_MNIST: return "binarized_mnist";
    case VD_DATA_MNIST: return "mnist";
    case VD_DATA_FASHION_MNIST: return "fashion_mnist";
    case VD_DATA_CIFAR10: return "cifar-10";
    case VD_DATA_IMAGENET: return "imagenet";
    case VD_DATA_CELEBA: return "celebA";
    case VD_DATA_CELEBAHQ: return "celebAHQ";
    case VD_DATA_FFHQ: return "ffhq";
    case VD_DATA_CUSTOM: return "custom";
    }
    return "?";
}

static const char *human(double v, char *buf, size_t n, const char *const *units, double step) {
    int u = 0;
    while (v >= step && units[u + 1]) v /= step, u++;
    snprintf(buf, n, u ? "%.1f%s" : "%.0f%s", v, units[u]);
    return buf;
}

static const char *human_count(double v, char *buf, size_t n) {
    static const char *const units[] = {"", "K", "M", "G", "T", NULL};
    return human(v, buf, n, units, 1000.0);
}

static const char *human_bytes(double v, char *buf, size_t n) {
    static const char *const units[] = {" B", " KiB", " MiB", " GiB", " TiB", NULL};
    return human(v, buf, n, units, 1024.0);
}

static void print_blocks(const vd_arch *a) {
    printf("%5s  %-11s %5s  %-11s %-11s %10s %10s %10s\n", "block", "kind", "level", "resolution",
           "channels", "params", "fwd_GFLOP", "act_MiB");
    for (int i = 0; i < a->n_blocks; i++) {
        const vd_block *b = &a->blocks[i];
        char res[32], ch[32], lvl[16];
        snprintf(res, sizeof res, "%d->%d", b->res_in, b->res_out);
        snprintf(ch, sizeof ch, "%d->%d", b->c_in, b->c_out);
        snprintf(lvl, sizeof lvl, b->level < 0 ? "-" : "%d", b->level);
        printf("%5d  %-11s %5s  %-11s %-11s %10lld %10.4f %10.2f\n", i, vd_block_kind_str(b->kind),
               lvl, res, ch, (long long)b->n_params, b->fwd_flops / 1e9, b->act_bytes / 1048576.0);
    }
}

static void print_params(const vd_arch *a) {
    printf("\n%5s  %-72s %-22s %12s %12s %-18s %10s %8s %3s %5s\n", "index", "name", "shape",
           "numel", "offset", "init", "bound", "scale", "wd", "block");
    for (int i = 0; i < a->n_params; i++) {
        const vd_param *p = &a->params[i];
        char shape[64] = "(";
        for (int d = 0; d < p->ndim; d++) {
            size_t len = strlen(shape);
            snprintf(shape + len, sizeof shape - len, "%lld%s", (long long)p->shape[d],
                     d + 1 < p->ndim ? ", " : ")");
        }
        printf("%5d  %-72s %-22s %12lld %12lld %-18s %10.6f %8.5f %3s %5d\n", i, p->name, shape,
               (long long)p->numel, (long long)p->offset, vd_init_kind_str(p->init), p->init_bound,
               p->init_scale, p->weight_decay ? "yes" : "no", p->block);
    }
}

static void print_totals(const vd_arch *a, int batch) {
    char h1[32], h2[32], h3[32], h4[32], h5[32];
    vd_arch_memory m;
    vd_arch_memory_plan(a, batch, &m);
    printf("\nparameters: %lld (%s) in %d tensors\n", (long long)a->total_floats,
           human_count((double)a->total_floats, h1, sizeof h1), a->n_params);
    printf("forward: %.3f GFLOP/image; training: %.3f GFLOP/image (forward + backward data + "
           "backward weights = 3x forward)\n", a->fwd_flops / 1e9, 3 * a->fwd_flops / 1e9);
    printf("memory at batch %d (float32):\n", batch);
    printf("  parameters %s, gradients %s, optimizer moments %s, EMA %s: %s\n",
           human_bytes(m.params, h1, sizeof h1), human_bytes(m.grads, h2, sizeof h2),
           human_bytes(m.moments, h3, sizeof h3), human_bytes(m.ema, h4, sizeof h4),
           human_bytes(m.state, h5, sizeof h5));
    printf("  activations (estimate) %s (%s per image)\n", human_bytes(m.activations, h1, sizeof h1),
           human_bytes(a->act_bytes, h2, sizeof h2));
    printf("  total %s\n", human_bytes(m.total, h1, sizeof h1));
}

static const char *gpu_sums_without_nccl(void) {
#ifdef VD_HAVE_CUDA
    return "no NCCL: GPU ranks sum through host memory";
#else
    return "no CUDA";
#endif
}

/* How this config trains over several processes and hosts (README "Several processes and
 * hosts"), and which numbers of ranks split its batch. */
static void print_parallel(const vd_hparams *hp) {
    int b = hp->train.batch_size;
    char ns[160] = "";
    for (int n = 1, at = 0; n <= b && n <= 64 && at < (int)sizeof ns - 8; n++)
        if (b % n == 0) at += snprintf(ns + at, sizeof ns - (size_t)at, "%s%d", at ? ", " : "", n);
    printf("\ndata parallel (this build %s, %s):\n", vd_comm_have_mpi() ? "has MPI" : "has no MPI: configure with -DVD_MPI=ON",
           vd_comm_have_nccl() ? "NCCL for GPUs" : gpu_sums_without_nccl());
    printf("  one host:      mpirun -np N --bind-to socket vdvae train CFG --threads T   (N processes of T\n"
           "                 threads: one per CPU socket; with --backend cuda one per GPU, rank k on GPU k)\n"
           "  several hosts: mpirun -np N --hostfile HOSTS --bind-to socket vdvae train CFG --dir DIR\n"
           "                 (HOSTS: one line \"hostname slots=K\" per host; DIR shared by the hosts, or\n"
           "                 the same copy on each)\n"
           "  vdvae eval and vdvae synth run the same way; rank 0 writes logs, images and checkpoints;\n"
           "  SIGUSR1 to mpirun stops every rank after its step with a checkpoint\n");
    printf("  each rank takes train.batch_size / N of every batch of %d: N in {%s}\n", b, ns);
    printf("  run.num_gpus = %d is not read: the number of processes is mpirun's -np N (the reference\n"
           "  divided the batch by it); the same seed gives the same training for any N\n", hp->run.num_gpus);
}

/* A config that cannot be read or built is bad input to info: exit 2, path in the message. */
static int load_fail(const char *cfg, vd_err *err) {
    if (!strstr(err->msg, cfg)) vd_err_prefix(err, "%s", cfg);
    fprintf(stderr, "vdvae info: %s\n", err->msg);
    return err->code == VD_ERR_IO ? 2 : vd_status_exit_code(err->code);
}

static int run_info(const char *cfg, int batch, const vd_cli_sets *sets, bool params) {
    vd_err err = {0};
    vd_hparams *hp = calloc(1, sizeof *hp);
    if (!hp) return fprintf(stderr, "vdvae info: out of memory\n"), 1;
    vd_arch a;
    int rc = 0;
    if (vd_hparams_load(hp, cfg, sets->items, sets->n, &err) || vd_arch_build(&a, hp, &err)) {
        rc = load_fail(cfg, &err);
        free(hp);
        return rc;
    }
    if (batch <= 0) batch = a.default_batch > 0 ? a.default_batch : 1;
    printf("%s: dataset %s, %dx%dx%d images, N_td %d, latent %dx%d, %d blocks\n", cfg,
           dataset_str(hp->data.dataset_source), a.image_res, a.image_res, a.image_ch, a.n_td,
           a.latent_res, a.latent_res, a.n_blocks);
    print_blocks(&a);
    if (params) print_params(&a);
    print_totals(&a, batch);
    print_parallel(hp);
    vd_arch_free(&a);
    free(hp);
    return rc;
}

static int parse_batch(const char *s, int *batch) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > (1 << 24))
        return vd_cli_usage_error("info", "--batch %s: expected an integer in [1, %d]", s, 1 << 24);
    *batch = (int)v;
    return 0;
}

int vd_cmd_info(int argc, char **argv) {
    static const struct option opts[] = {
        {"batch", required_argument, 0, 'b'}, {"set", required_argument, 0, 's'},
        {"params", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    vd_cli_sets sets = {0};
    int batch = 0, c;
    bool params = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:s:ph", opts, NULL)) != -1) {
        if (c == 'b' && parse_batch(optarg, &batch)) return 2;
        else if (c == 's' && vd_cli_add_set(&sets, "info", optarg)) return 2;
        else if (c == 'p') params = true;
        else if (c == 'h') return info_help(), 0;
        else if (c == '?') return vd_cli_usage_error("info", "bad option");
    }
    if (argc - optind != 1) return vd_cli_usage_error("info", "expected one CFG file");
    return run_info(argv[optind], batch, &sets, params);
}
