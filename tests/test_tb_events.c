/* Event files and metrics.jsonl read back by an independent C decoder (metrics.jsonl also by
 * python3's json); corruption, unwritable directories and a full disk are reported. With the
 * argument tensorboard (its own ctest entry), TensorBoard itself reads the event file too. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/crc32c.h"
#include "vd_test.h"
#include "vdvae/tblog.h"

/* ---- an independent reader ---------------------------------------------------------------- */

/* Bit by bit, unlike the library's table. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint32_t masked(const uint8_t *p, size_t n) {
    uint32_t c = crc32c_bitwise(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint64_t rd_varint(rd *r) {
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) break;
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return v;
    }
    r->bad = true;
    return 0;
}

static uint64_t rd_fixed(rd *r, int n) {
    uint64_t v = 0;
    if (r->end - r->p < n) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static double rd_double(rd *r) {
    uint64_t b = rd_fixed(r, 8);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static rd rd_sub(rd *r) {
    uint64_t n = rd_varint(r);
    rd s = {r->p, r->p, r->bad};
    if (r->bad || n > (uint64_t)(r->end - r->p)) {
        r->bad = s.bad = true;
        return s;
    }
    s.end = r->p + n;
    r->p += n;
    return s;
}

static void rd_skip(rd *r, int wire) {
    if (wire == 0) rd_varint(r);
    else if (wire == 1) rd_fixed(r, 8);
    else if (wire == 5) rd_fixed(r, 4);
    else if (wire == 2) rd_sub(r);
    else r->bad = true;
}

enum { EV_NONE, EV_SCALAR, EV_IMAGE, EV_HISTO };

typedef struct event {
    double wall_time;
    int64_t step;
    char version[32];
    int kind;
    char tag[64];
    float value;
    int64_t ih, iw, ics;
    const uint8_t *png;
    size_t png_len;
    double hmin, hmax, hnum, hsum, hsumsq;
    int nlim, ncount;
    double limits[64], counts[64];
} event;

static void copy_str(char *dst, size_t cap, rd s) {
    size_t n = (size_t)(s.end - s.p) < cap - 1 ? (size_t)(s.end - s.p) : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

static void packed_doubles(rd s, double *out, int *n) {
    while (s.p < s.end && !s.bad && *n < 64) out[(*n)++] = rd_double(&s);
}

static void decode_image(rd r, event *e) {
    while (r.p < r.end && !r.bad) {
        uint64_t key = rd_varint(&r);
        int f = (int)(key >> 3), wire = (int)(key & 7);
        if (f == 1 && wire == 0) e->ih = (int64_t)rd_varint(&r);
        else if (f == 2 && wire == 0) e->iw = (int64_t)rd_varint(&r);
        else if (f == 3 && wire == 0) e->ics = (int64_t)rd_varint(&r);
        else if (f == 4 && wire == 2) {
            rd s = rd_sub(&r);
            e->png = s.p, e->png_len = (size_t)(s.end - s.p);
        } else rd_skip(&r, wire);
    }
}

static void decode_histo(rd r, event *e) {
    double *scalars[] = {NULL, &e->hmin, &e->hmax, &e->hnum, &e->hsum, &e->hsumsq};
    while (r.p < r.end && !r.bad) {
        uint64_t key = rd_varint(&r);
        int f = (int)(key >> 3), wire = (int)(key & 7);
        if (f >= 1 && f <= 5 && wire == 1) *scalars[f] = rd_double(&r);
        else if (f == 6 && wire == 2) packed_doubles(rd_sub(&r), e->limits, &e->nlim);
        else if (f == 7 && wire == 2) packed_doubles(rd_sub(&r), e->counts, &e->ncount);
        else rd_skip(&r, wire);
    }
}

static void decode_value(rd r, event *e) {
    while (r.p < r.end && !r.bad) {
        uint64_t key = rd_varint(&r);
        int f = (int)(key >> 3), wire = (int)(key & 7);
        if (f == 1 && wire == 2) copy_str(e->tag, sizeof e->tag, rd_sub(&r));
        else if (f == 2 && wire == 5) {
            uint32_t b = (uint32_t)rd_fixed(&r, 4);
            memcpy(&e->value, &b, 4);
            e->kind = EV_SCALAR;
        } else if (f == 4 && wire == 2) e->kind = EV_IMAGE, decode_image(rd_sub(&r), e);
        else if (f == 5 && wire == 2) e->kind = EV_HISTO, decode_histo(rd_sub(&r), e);
        else rd_skip(&r, wire);
    }
}

static bool decode_event(const uint8_t *p, size_t n, event *e) {
    memset(e, 0, sizeof *e);
    rd r = {p, p + n, false};
    int values = 0;
    while (r.p < r.end && !r.bad) {
        uint64_t key = rd_varint(&r);
        int f = (int)(key >> 3), wire = (int)(key & 7);
        if (f == 1 && wire == 1) e->wall_time = rd_double(&r);
        else if (f == 2 && wire == 0) e->step = (int64_t)rd_varint(&r);
        else if (f == 3 && wire == 2) copy_str(e->version, sizeof e->version, rd_sub(&r));
        else if (f == 5 && wire == 2) {
            rd s = rd_sub(&r); /* Summary: one Value (field 1) per event here */
            while (s.p < s.end && !s.bad) {
                uint64_t k = rd_varint(&s);
                if (k == (1 << 3 | 2)) decode_value(rd_sub(&s), e), values++;
                else rd_skip(&s, (int)(k & 7));
            }
            r.bad |= s.bad;
        } else rd_skip(&r, wire);
    }
    return !r.bad && values <= 1;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* All records of an event file; false with a reason naming the offset on any damage. */
static bool parse_records(const uint8_t *b, size_t n, event *ev, int max, int *count, char *why,
                          size_t whylen) {
    size_t off = 0;
    *count = 0;
    while (off < n) {
        if (n - off < 12) return snprintf(why, whylen, "offset %zu: truncated header", off), false;
        uint64_t len = le(b + off, 8);
        if ((uint32_t)le(b + off + 8, 4) != masked(b + off, 8))
            return snprintf(why, whylen, "offset %zu: length CRC mismatch", off), false;
        if (len > n - off - 12 || n - off - 12 - len < 4)
            return snprintf(why, whylen, "offset %zu: truncated record", off), false;
        const uint8_t *data = b + off + 12;
        if ((uint32_t)le(data + len, 4) != masked(data, len))
            return snprintf(why, whylen, "offset %zu: data CRC mismatch", off + 12), false;
        if (*count >= max || !decode_event(data, len, &ev[*count]))
            return snprintf(why, whylen, "offset %zu: bad event", off + 12), false;
        (*count)++;
        off += 12 + len + 4;
    }
    return true;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz + 1 : 1); /* NUL-terminated for text */
    *n = b ? fread(b, 1, sz > 0 ? (size_t)sz : 0, f) : 0;
    if (b) b[*n] = 0;
    fclose(f);
    return b;
}

/* ---- what the test writes ---------------------------------------------------------------- */

#define H_IMG 5
#define W_IMG 7
#define N_HIST 1000

static uint8_t rgb[H_IMG * W_IMG * 3], grey[3 * 4];
static float hist_x[N_HIST + 2];

static void make_inputs(void) {
    for (int i = 0; i < H_IMG * W_IMG * 3; i++) rgb[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 12; i++) grey[i] = (uint8_t)(255 - i * 20);
    for (int i = 0; i < N_HIST; i++) hist_x[i] = (float)(i / (N_HIST - 1.0) * 2.0 - 1.0);
    hist_x[N_HIST] = NAN;
    hist_x[N_HIST + 1] = INFINITY;
}

static float loss_at(int s) { return 1.5f * (float)s - 2.0f; }

static void write_events(vd_tb *tb) {
    vd_err err = {0};
    for (int s = 0; s < 5; s++) CHECK(vd_tb_scalar(tb, "loss/total", s, loss_at(s), &err) == VD_OK);
    CHECK(vd_tb_scalar(tb, "nan", (int64_t)1 << 40, NAN, &err) == VD_OK);
    CHECK(vd_tb_image(tb, "img", 3, rgb, H_IMG, W_IMG, 3, &err) == VD_OK);
    CHECK(vd_tb_image(tb, "grey", 4, grey, 3, 4, 1, &err) == VD_OK);
    CHECK(vd_tb_histogram(tb, "hist", 5, hist_x, N_HIST + 2, &err) == VD_OK);
    const float same[5] = {2, 2, 2, 2, 2};
    CHECK(vd_tb_histogram(tb, "const", 6, same, 5, &err) == VD_OK);
    CHECK(vd_tb_histogram(tb, "empty", 7, NULL, 0, &err) == VD_OK);
}

/* libpng's simplified reader, apart from our encoder. */
static bool png_equals(const uint8_t *png, size_t len, const uint8_t *pix, int h, int w, int c) {
    png_image im = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_memory(&im, png, len)) return false;
    im.format = c == 1 ? PNG_FORMAT_GRAY : c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    if ((int)im.width != w || (int)im.height != h) return png_image_free(&im), false;
    uint8_t *out = malloc(PNG_IMAGE_SIZE(im));
    bool ok = out && png_image_finish_read(&im, NULL, out, 0, NULL) &&
              memcmp(out, pix, (size_t)h * w * c) == 0;
    free(out);
    return ok;
}

static void check_histo(const event *e) {
    CHECK(e->hnum == N_HIST && e->hmin == -1 && e->hmax == 1);
    CHECK(fabs(e->hsum) < 1e-9);
    CHECKF(e->nlim == VD_TB_HIST_BINS && e->ncount == VD_TB_HIST_BINS, "%d %d", e->nlim, e->ncount);
    double total = 0;
    for (int i = 0; i < e->ncount; i++) total += e->counts[i];
    CHECK(total == N_HIST);
    for (int i = 1; i < e->nlim; i++) CHECK(e->limits[i] > e->limits[i - 1]);
    CHECK(e->nlim > 0 && e->limits[e->nlim - 1] == 1.0);
    /* equal-width bins of evenly spread values hold about N/bins each */
    for (int i = 0; i < e->ncount; i++)
        CHECK(fabs(e->counts[i] - (double)N_HIST / VD_TB_HIST_BINS) <= 1);
}

static void check_events(const event *ev, int n) {
    CHECKF(n == 1 + 5 + 1 + 2 + 3, "%d events", n);
    if (n != 12) return;
    CHECK(!strcmp(ev[0].version, "brain.Event:2") && ev[0].kind == EV_NONE);
    CHECK(ev[0].wall_time > 1.6e9);
    for (int s = 0; s < 5; s++) {
        const event *e = &ev[1 + s];
        CHECK(e->kind == EV_SCALAR && !strcmp(e->tag, "loss/total") && e->step == s);
        CHECK(e->value == loss_at(s) && e->wall_time >= ev[0].wall_time);
    }
    CHECK(ev[6].kind == EV_SCALAR && isnan(ev[6].value) && ev[6].step == (int64_t)1 << 40);
    CHECK(ev[7].kind == EV_IMAGE && !strcmp(ev[7].tag, "img") && ev[7].step == 3);
    CHECK(ev[7].ih == H_IMG && ev[7].iw == W_IMG && ev[7].ics == 3);
    CHECK(png_equals(ev[7].png, ev[7].png_len, rgb, H_IMG, W_IMG, 3));
    CHECK(ev[8].kind == EV_IMAGE && ev[8].ih == 3 && ev[8].iw == 4 && ev[8].ics == 1);
    CHECK(png_equals(ev[8].png, ev[8].png_len, grey, 3, 4, 1));
    CHECK(ev[9].kind == EV_HISTO && !strcmp(ev[9].tag, "hist") && ev[9].step == 5);
    check_histo(&ev[9]);
    CHECK(ev[10].hnum == 5 && ev[10].nlim == 1 && ev[10].counts[0] == 5 && ev[10].limits[0] == 2);
    CHECK(ev[11].hnum == 0 && ev[11].nlim == 1 && ev[11].limits[0] == DBL_MAX);
}

/* Every single-byte change and every truncation must fail the CRC or framing checks. */
static void check_corruption(const uint8_t *file, size_t n) {
    static event ev[16];
    uint8_t *copy = malloc(n);
    char why[128];
    int count, missed = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(copy, file, n);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (parse_records(copy, n, ev, 16, &count, why, sizeof why)) missed++;
    }
    CHECKF(missed == 0, "%d of %zu flipped bits not detected", missed, n);
    for (size_t cut = 1; cut < 40 && cut < n; cut++)
        CHECK(!parse_records(file, n - cut, ev, 16, &count, why, sizeof why));
    free(copy);
}

/* ---- TensorBoard itself -------------------------------------------------------------------- */

static bool with_tensorboard; /* the tensorboard mode */

static void check_with_tensorboard(const char *path) {
    const char *src = getenv("VD_SOURCE_DIR");
    if (!src) src = ".";
    char cmd[10000];
    snprintf(cmd, sizeof cmd, "'%s' %s/tests/reference/read_events.py '%s' 2>&1", vd_test_python(),
             src, path);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    char line[512], tag[64];
    int scalars = 0, images = 0, histos = 0, version = 0;
    while (fgets(line, sizeof line, p)) {
        long long step;
        double v, num, mn, mx, sum, bsum;
        int w, h, nb;
        size_t bytes;
        if (!strcmp(line, "file_version 2.0\n")) version++;
        else if (sscanf(line, "scalar %63s %lld %lf", tag, &step, &v) == 3) {
            scalars++;
            if (!strcmp(tag, "loss/total")) CHECK(v == loss_at((int)step));
            else CHECK(!strcmp(tag, "nan") && isnan(v) && step == (long long)1 << 40);
        } else if (sscanf(line, "image %63s %lld %d %d %zu", tag, &step, &w, &h, &bytes) == 5) {
            images++;
            CHECK(!strcmp(tag, "img") ? w == W_IMG && h == H_IMG && step == 3
                                      : w == 4 && h == 3 && step == 4);
        } else if (sscanf(line, "histo %63s %lld %lf %lf %lf %lf %d %lf", tag, &step, &num, &mn,
                          &mx, &sum, &nb, &bsum) == 8) {
            histos++;
            if (!strcmp(tag, "hist"))
                CHECK(num == N_HIST && mn == -1 && mx == 1 && nb == VD_TB_HIST_BINS &&
                      bsum == N_HIST);
        } else {
            CHECKF(0, "unexpected reader output: %s", line);
        }
    }
    CHECK(pclose(p) == 0);
    CHECKF(version == 1 && scalars == 6 && images == 2 && histos == 3,
           "TensorBoard read %d version, %d scalars, %d images, %d histograms", version, scalars,
           images, histos);
}

/* ---- error paths --------------------------------------------------------------------------- */

static void check_bad_dirs(const char *tmp) {
    char file[4096], dir[4200];
    snprintf(file, sizeof file, "%s/plain", tmp);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    vd_tb *tb = NULL;
    vd_err err = {0};
    snprintf(dir, sizeof dir, "%s/sub/deeper", file);
    CHECK(vd_tb_open(&tb, dir, &err) == VD_ERR_IO && tb == NULL);
    CHECKF(strstr(err.msg, dir) != NULL, "%s", err.msg);
    CHECK(vd_tb_open(&tb, file, &err) == VD_ERR_IO && tb == NULL);
    CHECKF(strstr(err.msg, file) != NULL, "%s", err.msg);
    if (geteuid() != 0) { /* root writes anywhere */
        snprintf(dir, sizeof dir, "%s/readonly", tmp);
        mkdir(dir, 0500);
        CHECK(vd_tb_open(&tb, dir, &err) == VD_ERR_IO && strstr(err.msg, dir));
    }
}

static void check_bad_input(vd_tb *tb) {
    vd_err err = {0};
    CHECK(vd_tb_scalar(tb, "", 0, 1, &err) == VD_ERR_INVALID);
    CHECK(vd_tb_image(tb, "two", 0, grey, 2, 3, 2, &err) == VD_ERR_INVALID);
    CHECKF(strstr(err.msg, "'two'") && strstr(err.msg, vd_tb_path(tb)), "%s", err.msg);
    CHECK(vd_tb_image(tb, "zero", 0, grey, 0, 3, 1, &err) == VD_ERR_INVALID);
}

/* A file size limit stands in for a full disk: write(2) fails with EFBIG. */
static void check_full_disk(const char *tmp) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/full", tmp);
    vd_tb *tb = NULL;
    vd_err err = {0};
    CHECK(vd_tb_open(&tb, dir, &err) == VD_OK);
    if (!tb) return;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 200;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    uint8_t noise[32 * 32 * 3];
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)((i * 2654435761u) >> 13);
    CHECK(vd_tb_image(tb, "noise", 0, noise, 32, 32, 3, &err) == VD_OK); /* buffered */
    CHECK(vd_tb_flush(tb, &err) == VD_ERR_IO);
    CHECKF(strstr(err.msg, vd_tb_path(tb)) != NULL, "%s", err.msg);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    vd_tb_close(tb);
}

/* Past VD_TB_FLUSH_BYTES, events go out without an explicit flush. */
static void check_auto_flush(const char *tmp) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/big", tmp);
    vd_tb *tb = NULL;
    vd_err err = {0};
    CHECK(vd_tb_open(&tb, dir, &err) == VD_OK);
    if (!tb) return;
    int side = 450; /* noise PNGs of ~600 KB: two pass the threshold */
    uint8_t *noise = malloc((size_t)side * side * 3);
    uint32_t s = 1;
    for (int i = 0; i < side * side * 3; i++)
        s = s * 1664525u + 1013904223u, noise[i] = (uint8_t)(s >> 24);
    struct stat sb;
    CHECK(vd_tb_image(tb, "a", 0, noise, side, side, 3, &err) == VD_OK);
    CHECK(stat(vd_tb_path(tb), &sb) == 0 && sb.st_size < 1000);
    CHECK(vd_tb_image(tb, "b", 1, noise, side, side, 3, &err) == VD_OK);
    CHECK(stat(vd_tb_path(tb), &sb) == 0 && sb.st_size > (off_t)VD_TB_FLUSH_BYTES);
    free(noise);
    vd_tb_close(tb);
}

/* ---- metrics.jsonl --------------------------------------------------------------------------- */

static void check_metrics(const char *tmp) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", tmp);
    vd_metrics *m = NULL;
    vd_err err = {0};
    const char *names[] = {"loss", "kl", "in\"f\n", "tenth", "tiny"};
    const double vals[] = {2.5, NAN, -INFINITY, 0.1, 1e-300};
    for (int pass = 0; pass < 2; pass++) { /* the second open appends */
        CHECK(vd_metrics_open(&m, path, &err) == VD_OK);
        const char *split = pass ? "val" : "train";
        CHECK(vd_metrics_write(m, 100 + pass, split, names, vals, 5, &err) == VD_OK);
        vd_metrics_close(m);
    }
    size_t n;
    char *text = (char *)slurp(path, &n);
    CHECK(text != NULL);
    if (!text) return;
    const char *tail = "\"loss\": 2.5, \"kl\": null, \"in\\\"f\\u000a\": null, \"tenth\": 0.1, "
                       "\"tiny\": 1e-300}\n";
    char *second = memchr(text, '\n', n);
    CHECK(second && !strncmp(text, "{\"step\": 100, \"split\": \"train\", \"time\": 1", 41));
    CHECK(second && !strncmp(second + 1, "{\"step\": 101, \"split\": \"val\", \"time\": ", 37));
    CHECKF(second && second - text > (long)strlen(tail) &&
               !strncmp(second + 1 - strlen(tail), tail, strlen(tail)), "%.*s", (int)n, text);
    CHECK(n > strlen(tail) && !strcmp(text + n - strlen(tail), tail));
    free(text);
    { /* python3 (Debian's, which install-deps.sh installs) is required by the tests */
        char cmd[4400];
        snprintf(cmd, sizeof cmd,
                 "'%s' -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; "
                 "assert len(r)==2 and r[1][\"split\"]==\"val\" and r[0][\"kl\"] is None' '%s'",
                 vd_test_python(), path);
        CHECKF(system(cmd) == 0, "%s", cmd);
    }

    CHECK(vd_metrics_open(&m, path, &err) == VD_OK);
    const char *reserved[] = {"time"}, *empty[] = {""};
    CHECK(vd_metrics_write(m, 1, "train", reserved, vals, 1, &err) == VD_ERR_INVALID);
    CHECK(strstr(err.msg, "time") != NULL);
    CHECK(vd_metrics_write(m, 1, "train", empty, vals, 1, &err) == VD_ERR_INVALID);
    vd_metrics_close(m);

    snprintf(path, sizeof path, "%s/plain/metrics.jsonl", tmp);
    CHECK(vd_metrics_open(&m, path, &err) == VD_ERR_IO && m == NULL && strstr(err.msg, path));
    if (vd_metrics_open(&m, "/dev/full", &err) == VD_OK) {
        CHECK(vd_metrics_write(m, 1, "train", names, vals, 1, &err) == VD_ERR_IO);
        CHECKF(strstr(err.msg, "/dev/full") != NULL, "%s", err.msg);
        vd_metrics_close(m);
    }
}

/* ---- main ----------------------------------------------------------------------------------- */

static void check_crc(void) {
    CHECK(vd_crc32c("123456789", 9) == 0xe3069283u);
    CHECK(crc32c_bitwise((const uint8_t *)"123456789", 9) == 0xe3069283u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof buf; n += 13) {
        CHECK(vd_crc32c(buf, n) == crc32c_bitwise(buf, n));
        CHECK(vd_crc32c_masked(buf, n) == masked(buf, n));
    }
}

static void check_round_trip(const char *tmp) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/logs/run/train", tmp); /* parents are created */
    vd_tb *tb = NULL, *tb2 = NULL;
    vd_err err = {0};
    CHECKF(vd_tb_open(&tb, dir, &err) == VD_OK, "%s", err.msg);
    if (!tb) return;
    CHECK(!strncmp(vd_tb_path(tb), dir, strlen(dir)) &&
          !strncmp(vd_tb_path(tb) + strlen(dir), "/events.out.tfevents.", 21));
    /* a second writer in the same second gets its own file */
    CHECK(vd_tb_open(&tb2, dir, &err) == VD_OK && tb2 && strcmp(vd_tb_path(tb), vd_tb_path(tb2)));
    vd_tb_close(tb2);
    write_events(tb);
    check_bad_input(tb);
    CHECK(vd_tb_flush(tb, &err) == VD_OK);
    char path[4300];
    snprintf(path, sizeof path, "%s", vd_tb_path(tb));
    vd_tb_close(tb);

    size_t n;
    uint8_t *file = slurp(path, &n);
    CHECK(file != NULL);
    if (!file) return;
    static event ev[16];
    int count = 0;
    char why[128] = "";
    CHECKF(parse_records(file, n, ev, 16, &count, why, sizeof why), "%s: %s", path, why);
    check_events(ev, count);
    check_corruption(file, n);
    free(file);
    if (with_tensorboard) check_with_tensorboard(path);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : NULL;
    if (mode && strcmp(mode, "tensorboard")) return vd_test_bad_mode("test_tb_events", mode);
    int rc = mode ? vd_test_need_python_module("tensorboard") : 0;
    if (rc) return rc;
    with_tensorboard = mode != NULL;
    char tmp[] = "/tmp/vd_tb_XXXXXX";
    if (!mkdtemp(tmp)) VD_SETUP_FAIL("cannot create a temporary directory");
    make_inputs();
    if (with_tensorboard) {
        check_round_trip(tmp); /* the C decoder's checks on the file TensorBoard reads */
    } else {
        check_crc();
        check_round_trip(tmp);
        check_bad_dirs(tmp);
        check_full_disk(tmp);
        check_auto_flush(tmp);
        check_metrics(tmp);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return vd_test_result("test_tb_events");
}
