/* Checkpoints as safetensors files: writing (atomic, via the safetensors writer), pruning to the
 * last N, finding the newest intact one after a crash, and loading with every check first. */
#include "vdvae/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "vdvae/io.h"


#define CKPT_PREFIX "checkpoint-"
#define CKPT_SUFFIX ".safetensors"
#define N_KINDS 4
/* model, ema, opt.m, opt.u: one flat buffer each, tensors named <prefix><param name>. */
static const char *const kind_prefix[N_KINDS] = {"model.", "ema.", "opt.m.", "opt.u."};

/* ---- config hash -------------------------------------------------------------------------- */

static bool is_binarized(const vd_hparams *hp) {
    return hp->data.dataset_source == VD_DATA_BINARIZED_MNIST;
}

/* Keep a line "key = value" of the canonical text when it fixes the parameters. */
static bool hashed_key(const char *section, const char *line) {
    if (!strcmp(section, "model")) return true;
    return !strcmp(section, "data") &&
           (!strncmp(line, "channels = ", 11) || !strncmp(line, "target_res = ", 13));
}

/* The whole canonical config text (malloc'ed), as vd_hparams_write renders it. */
static char *config_text(const vd_hparams *hp) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    vd_status s = vd_hparams_write(hp, f);
    if (fclose(f) != 0 || s) {
        free(text);
        return NULL;
    }
    return text;
}

/* "section.key = value" lines of the hashed keys, in canonical order, then the binarized flag.
 * Built from the canonical text so that a value is spelled one way only. */
static char *hash_text(const vd_hparams *hp) {
    char *all = config_text(hp), *out = NULL, section[64] = "";
    size_t len = 0;
    FILE *f = all ? open_memstream(&out, &len) : NULL;
    if (!f) {
        free(all);
        return NULL;
    }
    char *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '[')
            snprintf(section, sizeof section, "%.*s", (int)strcspn(line + 1, "]"), line + 1);
        else if (line[0] != '#' && strstr(line, " = ") && hashed_key(section, line))
            fprintf(f, "%s.%s\n", section, line);
    }
    fprintf(f, "data.binarized = %s\n", is_binarized(hp) ? "True" : "False");
    free(all);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void hex(const unsigned char *d, unsigned n, char *out) {
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

vd_status vd_config_hash(const vd_hparams *hp, char out[65], vd_err *err) {
    char *text = hash_text(hp);
    if (!text) return vd_errorf(err, VD_ERR_NOMEM, "config hash: out of memory");
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = EVP_Digest(text, strlen(text), d, &n, EVP_sha256(), NULL);
    free(text);
    if (!ok || n != 32) return vd_errorf(err, VD_ERR_INTERNAL, "config hash: SHA-256 failed");
    hex(d, n, out);
    return VD_OK;
}

/* ---- data checksum ------------------------------------------------------------------------ */

/* One tensor's bytes; the checksum runs over them in name (strcmp) order, the reader's order. */
typedef struct ck_tensor {
    char name[VD_PARAM_NAME_MAX + 8];
    const vd_param *p;
    const float *data;
} ck_tensor;

static int cmp_ck_name(const void *a, const void *b) {
    return strcmp(((const ck_tensor *)a)->name, ((const ck_tensor *)b)->name);
}

typedef struct chunk {
    const void *data;
    size_t nbytes;
} chunk;

/* SHA-256 of the chunks in order: it catches bytes that changed after a complete write
 * (a bad disk, a copy gone wrong), which the safetensors structure alone cannot. */
static vd_status digest_chunks(const chunk *c, int n, char out[65], vd_err *err) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    for (int i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, c[i].data, c[i].nbytes);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, d, &len) && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return vd_errorf(err, VD_ERR_INTERNAL, "checkpoint checksum: SHA-256 failed");
    hex(d, len, out);
    return VD_OK;
}

/* ---- file names --------------------------------------------------------------------------- */

/* The step of a name "checkpoint-<digits>.safetensors" (at least 10 digits), else -1. */
static int64_t name_step(const char *name) {
    size_t np = strlen(CKPT_PREFIX), ns = strlen(CKPT_SUFFIX), len = strlen(name);
    if (len < np + 10 + ns || strncmp(name, CKPT_PREFIX, np) ||
        strcmp(name + len - ns, CKPT_SUFFIX))
        return -1;
    size_t nd = len - np - ns;
    if (nd > 18 || strspn(name + np, "0123456789") != nd) return -1;
    return strtoll(name + np, NULL, 10);
}

/* The pid of a temporary file the safetensors writer left for one of our names, else -1. */
static long temp_pid(const char *name) {
    const char *tmp = strstr(name, CKPT_SUFFIX ".tmp.");
    if (!tmp) return -1;
    char base[NAME_MAX + 1];
    snprintf(base, sizeof base, "%.*s", (int)(tmp - name + strlen(CKPT_SUFFIX)), name);
    if (name_step(base) < 0) return -1;
    char *end;
    long pid = strtol(tmp + strlen(CKPT_SUFFIX ".tmp."), &end, 10);
    return pid > 0 && *end == '.' ? pid : -1;
}

typedef struct ck_file {
    int64_t step;
    char *name;
} ck_file;

static int cmp_step_desc(const void *a, const void *b) {
    int64_t x = ((const ck_file *)a)->step, y = ((const ck_file *)b)->step;
    return x > y ? -1 : x < y;
}

static void free_list(ck_file *f, int n) {
    for (int i = 0; i < n; i++)
        free(f[i].name);
    free(f);
}

/* Our checkpoint files in dir, newest step first; *n = -1 with errno set when dir cannot be
 * read. Temporary files never match. */
static ck_file *list_checkpoints(const char *dir, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        *n = -1;
        return NULL;
    }
    ck_file *f = NULL;
    int cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int64_t step = name_step(e->d_name);
        if (step < 0) continue;
        if (*n == cap) {
            ck_file *g = realloc(f, sizeof *f * (size_t)(cap = cap ? 2 * cap : 16));
            if (!g) break;
            f = g;
        }
        if (!(f[*n].name = strdup(e->d_name))) break;
        f[(*n)++].step = step;
    }
    closedir(d);
    if (f) qsort(f, (size_t)*n, sizeof *f, cmp_step_desc);
    return f;
}

/* ---- saving ------------------------------------------------------------------------------- */

static const char *opt_name(vd_opt_type t) {
    switch (t) {
    case VD_OPT_ADAMAX: return "Adamax";
    case VD_OPT_ADAM: return "Adam";
    case VD_OPT_RADAM: return "RAdam";
    }
    return "?";
}

/* The tensors to write, sorted by name; NULL when out of memory. */
static ck_tensor *gather(const vd_arch *a, const float *const buf[N_KINDS], int *n) {
    ck_tensor *t = calloc((size_t)a->n_params * N_KINDS + 1, sizeof *t);
    *n = 0;
    if (!t) return NULL;
    for (int k = 0; k < N_KINDS; k++)
        for (int i = 0; buf[k] && i < a->n_params; i++) {
            ck_tensor *c = &t[(*n)++];
            snprintf(c->name, sizeof c->name, "%s%s", kind_prefix[k], a->params[i].name);
            c->p = &a->params[i];
            c->data = buf[k] + a->params[i].offset;
        }
    qsort(t, (size_t)*n, sizeof *t, cmp_ck_name);
    return t;
}

static vd_status add_meta(vd_st_writer *w, const vd_hparams *hp, const vd_ckpt_state *s,
                          const char *hash, const char *sum, vd_err *err) {
    char step[24], skips[24], seed[24], ep[24], ba[24];
    snprintf(step, sizeof step, "%" PRId64, s->step);
    snprintf(skips, sizeof skips, "%" PRId64, s->skips);
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    snprintf(ep, sizeof ep, "%" PRIu64, s->loader_epoch);
    snprintf(ba, sizeof ba, "%" PRIu64, s->loader_batch);
    char *cfg = config_text(hp);
    if (!cfg) return vd_errorf(err, VD_ERR_NOMEM, "checkpoint: out of memory");
    const char *kv[][2] = {
        {"format", VD_CKPT_FORMAT}, {"step", step},          {"skips", skips},
        {"seed", seed},             {"loader_epoch", ep},    {"loader_batch", ba},
        {"optimizer", opt_name(hp->optimizer.type)},          {"config_hash", hash},
        {"data_sha256", sum},       {"config", cfg},         {"vdvae_version", VD_VERSION},
    };
    vd_status st = VD_OK;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0] && !st; i++)
        st = vd_st_writer_meta(w, kv[i][0], kv[i][1], err);
    free(cfg);
    return st;
}

static vd_status write_file(const char *path, const vd_hparams *hp, const vd_arch *a,
                            const float *const buf[N_KINDS], const vd_ckpt_state *s, vd_err *err) {
    int n = 0;
    ck_tensor *t = gather(a, buf, &n);
    chunk *c = calloc((size_t)n + 1, sizeof *c);
    vd_st_writer *w = NULL;
    vd_status st = t && c ? vd_st_writer_init(&w, err)
                          : vd_errorf(err, VD_ERR_NOMEM, "checkpoint: out of memory");
    for (int i = 0; i < n && !st; i++) {
        c[i] = (chunk){t[i].data, (size_t)t[i].p->numel * sizeof(float)};
        st = vd_st_writer_add(w, t[i].name, VD_DTYPE_F32, t[i].p->ndim, t[i].p->shape, t[i].data,
                              err);
    }
    char hash[65], sum[65];
    if (!st) st = vd_config_hash(hp, hash, err);
    if (!st) st = digest_chunks(c, n, sum, err);
    if (!st) st = add_meta(w, hp, s, hash, sum, err);
    if (!st) st = vd_st_writer_finish(w, path, err);
    vd_st_writer_free(w);
    free(c);
    free(t);
    return st;
}

/* Temporary files of writers that no longer run (killed mid-write) only take space. */
static void remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[PATH_MAX];
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temp_pid(e->d_name);
        if (pid < 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) unlink(p);
    }
    closedir(d);
}

/* Keep the newest keep_last checkpoints and the one just written; failures to delete only
 * leave a file behind, so they are not errors. */
static void prune(const char *dir, int keep_last, int64_t written) {
    int n;
    ck_file *f = list_checkpoints(dir, &n);
    char p[PATH_MAX];
    for (int i = keep_last; keep_last > 0 && i < n; i++)
        if (f[i].step != written && snprintf(p, sizeof p, "%s/%s", dir, f[i].name) < (int)sizeof p)
            unlink(p);
    free_list(f, n > 0 ? n : 0);
    remove_stale_temps(dir);
}

vd_status vd_ckpt_save(const char *dir, const vd_hparams *hp, const vd_arch *a,
                       const float *params, const float *ema, const float *m, const float *u,
                       const vd_ckpt_state *s, int keep_last, char *path_out, size_t cap,
                       vd_err *err) {
    if (!params || !ema || !m != !u)
        return vd_errorf(err, VD_ERR_INVALID,
                         "checkpoint: params and ema are required, m and u go together");
    if (s->step < 0)
        return vd_errorf(err, VD_ERR_INVALID, "checkpoint: negative step %" PRId64, s->step);
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/" CKPT_PREFIX "%010" PRId64 CKPT_SUFFIX, dir, s->step) >=
        (int)sizeof path)
        return vd_errorf(err, VD_ERR_INVALID, "checkpoint directory %s: path too long", dir);
    vd_status st = vd_mkdirs(dir, err);
    const float *const buf[N_KINDS] = {params, ema, m, u};
    if (!st) st = write_file(path, hp, a, buf, s, err);
    if (st) {
        if (err) vd_err_prefix(err, "cannot save checkpoint at step %" PRId64, s->step);
        return st;
    }
    prune(dir, keep_last, s->step);
    if (path_out && cap) snprintf(path_out, cap, "%s", path);
    return VD_OK;
}

/* ---- validating --------------------------------------------------------------------------- */

static vd_status meta_u64(const vd_st *st, const char *path, const char *key, uint64_t *out,
                          vd_err *err) {
    const char *v = vd_st_meta(st, key);
    char *end = NULL;
    errno = 0;
    if (v && *v >= '0' && *v <= '9') *out = strtoull(v, &end, 10);
    if (!v || !end || *end || errno)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: metadata '%s' %s%s%s", path, key,
                         v ? "is not a count: \"" : "is missing", v ? v : "", v ? "\"" : "");
    return VD_OK;
}

static vd_status meta_i64(const vd_st *st, const char *path, const char *key, int64_t *out,
                          vd_err *err) {
    uint64_t x = 0;
    vd_status s = meta_u64(st, path, key, &x, err);
    if (!s && x > INT64_MAX)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: metadata '%s' is too large", path,
                         key);
    *out = (int64_t)x;
    return s;
}

/* The checksum over every tensor, in the reader's name order. */
static vd_status check_sum(const vd_st *st, const char *path, vd_err *err) {
    const char *want = vd_st_meta(st, "data_sha256");
    if (!want)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: metadata 'data_sha256' is missing",
                         path);
    int n = vd_st_count(st);
    chunk *c = calloc((size_t)n + 1, sizeof *c);
    if (!c) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    uint64_t start = UINT64_MAX;
    for (int i = 0; i < n; i++) {
        c[i] = (chunk){vd_st_at(st, i)->data, vd_st_at(st, i)->nbytes};
        if (vd_st_at(st, i)->file_offset < start) start = vd_st_at(st, i)->file_offset;
    }
    char have[65];
    vd_status s = digest_chunks(c, n, have, err);
    free(c);
    if (!s && strcmp(have, want))
        s = vd_errorf(err, VD_ERR_INVALID,
                      "%s: offset %llu: the tensor data from here on do not match the checksum "
                      "written with them (the file changed after it was written)",
                      path, n ? (unsigned long long)start : 8ULL);
    return s;
}

/* Ours, whole, and holding the step its name (if any) says. expect_step < 0: any. */
static vd_status check_file(const vd_st *st, const char *path, int64_t expect_step,
                            vd_ckpt_state *s, vd_err *err) {
    const char *fmt = vd_st_meta(st, "format");
    if (!fmt || strcmp(fmt, VD_CKPT_FORMAT))
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 8: not a vdvae checkpoint (metadata format is %s%s%s, "
                         "expected \"" VD_CKPT_FORMAT "\")",
                         path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "");
    vd_status r = meta_i64(st, path, "step", &s->step, err);
    if (!r) r = meta_i64(st, path, "skips", &s->skips, err);
    if (!r) r = meta_u64(st, path, "seed", &s->seed, err);
    if (!r) r = meta_u64(st, path, "loader_epoch", &s->loader_epoch, err);
    if (!r) r = meta_u64(st, path, "loader_batch", &s->loader_batch, err);
    if (r) return r;
    if (expect_step >= 0 && s->step != expect_step)
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset 8: metadata step %" PRId64 " differs from the step %" PRId64
                         " of its name",
                         path, s->step, expect_step);
    const char *hash = vd_st_meta(st, "config_hash");
    if (!hash || strlen(hash) != 64)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: metadata 'config_hash' is %s", path,
                         hash ? "not a SHA-256" : "missing");
    memcpy(s->config_hash, hash, 65);
    return check_sum(st, path, err);
}

/* ---- finding the newest --------------------------------------------------------------------- */

static void warn_stderr(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "vdvae: warning: %s\n", msg);
}

vd_status vd_ckpt_find_latest(const char *dir, char *path, size_t cap, bool *found, vd_err *err) {
    return vd_ckpt_find_latest_cb(dir, path, cap, found, warn_stderr, NULL, err);
}

/* Whether dir/name opens and validates; the reason goes to warn when not. */
static bool usable(const char *p, int64_t step, vd_ckpt_warn_fn warn, void *ctx) {
    vd_err e = {0};
    vd_st *st = NULL;
    vd_ckpt_state s;
    vd_status r = vd_st_open(p, &st, &e);
    if (!r) r = check_file(st, p, step, &s, &e);
    vd_st_close(st);
    if (r && warn) {
        char msg[VD_ERR_MSG_MAX + 32]; /* e.msg names the file */
        snprintf(msg, sizeof msg, "skipping checkpoint: %s", e.msg);
        warn(ctx, msg);
    }
    return !r;
}

vd_status vd_ckpt_find_latest_cb(const char *dir, char *path, size_t cap, bool *found,
                                 vd_ckpt_warn_fn warn, void *ctx, vd_err *err) {
    *found = false;
    int n;
    ck_file *f = list_checkpoints(dir, &n);
    if (n < 0 && errno == ENOENT) return VD_OK;
    if (n < 0)
        return vd_errorf(err, VD_ERR_IO, "cannot read checkpoint directory %s: %s", dir,
                         strerror(errno));
    char p[PATH_MAX];
    vd_status r = VD_OK;
    for (int i = 0; i < n && !*found && !r; i++) {
        if (snprintf(p, sizeof p, "%s/%s", dir, f[i].name) >= (int)sizeof p) continue;
        if (!usable(p, f[i].step, warn, ctx)) continue;
        if (snprintf(path, cap, "%s", p) >= (int)cap)
            r = vd_errorf(err, VD_ERR_INVALID, "%s: path longer than the %zu bytes given", p, cap);
        else
            *found = true;
    }
    free_list(f, n);
    return r;
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Name what makes the file's config differ from ours: parse its stored config back and diff
 * only the hashed keys (ours with its hashed values put in). */
static int hashed_diff(const vd_st *st, const vd_hparams *hp, char *out, size_t cap) {
    const char *text = vd_st_meta(st, "config");
    vd_hparams *theirs = malloc(sizeof *theirs), *mix = malloc(sizeof *mix);
    vd_cfg cfg = {0};
    vd_err e;
    int n = 0;
    if (text && theirs && mix && !vd_cfg_parse(&cfg, text, strlen(text), "config", &e)) {
        vd_hparams_defaults(theirs);
        if (!vd_hparams_from_cfg(theirs, &cfg, &e)) {
            *mix = *hp;
            mix->model = theirs->model;
            mix->data.channels = theirs->data.channels;
            mix->data.target_res = theirs->data.target_res;
            if (is_binarized(theirs) != is_binarized(hp))
                mix->data.dataset_source = theirs->data.dataset_source;
            n = vd_hparams_diff(hp, mix, out, cap);
        }
    }
    vd_cfg_free(&cfg);
    free(theirs);
    free(mix);
    return n;
}

static vd_status check_config(const vd_st *st, const char *path, const vd_hparams *hp,
                              const char *theirs, vd_err *err) {
    char ours[65];
    vd_status r = vd_config_hash(hp, ours, err);
    if (r || !strcmp(ours, theirs)) return r;
    char keys[512] = "";
    int n = hashed_diff(st, hp, keys, sizeof keys);
    if (n)
        return vd_errorf(err, VD_ERR_INVALID,
                         "checkpoint %s was written by a different model config: %s differ%s "
                         "(its config hash %.12s, ours %.12s)",
                         path, keys, n == 1 ? "s" : "", theirs, ours);
    return vd_errorf(err, VD_ERR_INVALID,
                     "checkpoint %s was written by a different model config (its config hash "
                     "%.12s, ours %.12s; its stored config does not say which key differs)",
                     path, theirs, ours);
}

static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* Tensor kind k of parameter p: present, float32, and of p's shape. */
static vd_status find_tensor(const vd_st *st, const char *path, int k, const vd_param *p,
                             const vd_st_tensor **out, vd_err *err) {
    char name[VD_PARAM_NAME_MAX + 8];
    snprintf(name, sizeof name, "%s%s", kind_prefix[k], p->name);
    const vd_st_tensor *t = vd_st_find(st, name);
    if (!t)
        return vd_errorf(err, VD_ERR_INVALID, "%s: offset 8: no tensor '%s'%s", path, name,
                         k >= 2 ? " (the checkpoint has no optimizer state?)" : "");
    bool same = t->dtype == VD_DTYPE_F32 && t->ndim == p->ndim;
    for (int i = 0; same && i < p->ndim; i++)
        same = t->shape[i] == p->shape[i];
    if (!same) {
        char want[96], have[96];
        shape_text(want, sizeof want, p->ndim, p->shape);
        shape_text(have, sizeof have, t->ndim, t->shape);
        return vd_errorf(err, VD_ERR_INVALID,
                         "%s: offset %llu: tensor '%s' is %s %s, expected F32 %s", path,
                         (unsigned long long)t->file_offset, name, vd_dtype_str(t->dtype), have,
                         want);
    }
    *out = t;
    return VD_OK;
}

/* Exactly our tensors: as many of each kind as parameters (names are checked one by one
 * later), model and ema always, both optimizer moments or neither, nothing else. */
static vd_status check_tensor_set(const vd_st *st, const char *path, const vd_arch *a,
                                  vd_err *err) {
    int count[N_KINDS + 1] = {0}, n = vd_st_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = vd_st_at(st, i)->name;
        int k = 0;
        while (k < N_KINDS && strncmp(name, kind_prefix[k], strlen(kind_prefix[k])))
            k++;
        count[k]++;
        if (k == N_KINDS)
            return vd_errorf(err, VD_ERR_INVALID, "%s: offset %llu: tensor '%s' is not ours", path,
                             (unsigned long long)vd_st_at(st, i)->file_offset,
                             vd_st_at(st, i)->name);
    }
    bool opt = count[2] || count[3];
    for (int k = 0; k < N_KINDS; k++)
        if (count[k] != ((k < 2 || opt) ? a->n_params : 0))
            return vd_errorf(err, VD_ERR_INVALID,
                             "%s: offset 8: %d '%s' tensors, the model has %d parameters", path,
                             count[k], kind_prefix[k], a->n_params);
    return VD_OK;
}

static vd_status check_optimizer(const vd_st *st, const char *path, const vd_hparams *hp,
                                 vd_err *err) {
    const char *o = vd_st_meta(st, "optimizer");
    if (o && !strcmp(o, opt_name(hp->optimizer.type))) return VD_OK;
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: offset 8: optimizer moments are for %s, the config asks for %s (load "
                     "without them to change optimizer)",
                     path, o ? o : "an unnamed optimizer", opt_name(hp->optimizer.type));
}

/* Everything is checked before the first byte is copied: a failed load changes no buffer. */
static vd_status load_open(const vd_st *st, const char *path, const vd_hparams *hp,
                           const vd_arch *a, float *const buf[N_KINDS], vd_ckpt_state *s,
                           vd_err *err) {
    vd_status r = check_file(st, path, -1, s, err);
    if (!r) r = check_config(st, path, hp, s->config_hash, err);
    if (!r) r = check_tensor_set(st, path, a, err);
    if (!r && (buf[2] || buf[3])) r = check_optimizer(st, path, hp, err);
    const vd_st_tensor **t = calloc((size_t)a->n_params * N_KINDS + 1, sizeof *t);
    if (!r && !t) r = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    for (int k = 0; k < N_KINDS && !r; k++)
        for (int i = 0; buf[k] && i < a->n_params && !r; i++)
            r = find_tensor(st, path, k, &a->params[i], &t[k * a->n_params + i], err);
    for (int k = 0; k < N_KINDS && !r; k++)
        for (int i = 0; buf[k] && i < a->n_params; i++)
            memcpy(buf[k] + a->params[i].offset, t[k * a->n_params + i]->data,
                   t[k * a->n_params + i]->nbytes);
    free(t);
    return r;
}

vd_status vd_ckpt_load(const char *path, const vd_hparams *hp, const vd_arch *a, float *params,
                       float *ema, float *m, float *u, vd_ckpt_state *s, vd_err *err) {
    vd_st *st = NULL;
    vd_status r = vd_st_open(path, &st, err);
    vd_ckpt_state tmp = {0};
    float *const buf[N_KINDS] = {params, ema, m, u};
    if (!r) r = load_open(st, path, hp, a, buf, &tmp, err);
    vd_st_close(st);
    if (!r && s) *s = tmp;
    return r;
}
