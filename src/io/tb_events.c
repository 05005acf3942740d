/* TensorBoard event files: Event protobufs framed as TFRecords, buffered until a flush. Field
 * numbers follow TensorBoard's event.proto and summary.proto. */
#include "vdvae/tblog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/util.h"

#include "io/crc32c.h"
#include "vdvae/image.h"

struct vd_tb {
    char *path;
    int fd;
    uint8_t *buf; /* framed records not yet written */
    size_t len, cap;
};

/* ---- protobuf encoding -------------------------------------------------------------------- */

/* By hand: we write a few varint, fixed and length-delimited fields of five messages, less code
 * than generating and linking a protobuf runtime (protobuf-c) for them. */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* A growing byte buffer; a failed allocation sets oom and later appends do nothing, so that
 * encoders check once at the end. */
typedef struct pb {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} pb;

static void pb_raw(pb *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void pb_varint(pb *b, uint64_t v) {
    uint8_t tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(b, tmp, k);
}

static void pb_key(pb *b, int field, int wire) {
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

/* int32/int64 fields: negative values as their 64-bit two's complement, as protobuf does. */
static void pb_int(pb *b, int field, int64_t v) {
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_le(pb *b, uint64_t bits, int nbytes) {
    uint8_t tmp[8];
    for (int i = 0; i < nbytes; i++) tmp[i] = (uint8_t)(bits >> (8 * i));
    pb_raw(b, tmp, (size_t)nbytes);
}

static void pb_double(pb *b, int field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    pb_key(b, field, WIRE_FIXED64);
    pb_le(b, bits, 8);
}

static void pb_float(pb *b, int field, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    pb_key(b, field, WIRE_FIXED32);
    pb_le(b, bits, 4);
}

static void pb_bytes(pb *b, int field, const void *p, size_t n) {
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, n);
    pb_raw(b, p, n);
}

static void pb_packed_doubles(pb *b, int field, const double *v, size_t n) {
    pb_key(b, field, WIRE_LEN);
    pb_varint(b, 8 * n);
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], 8);
        pb_le(b, bits, 8);
    }
}

/* ---- files -------------------------------------------------------------------------------- */

static double wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Create a new event file in dir; its path in *path (malloc'ed), the descriptor returned. */
static int create_event_file(const char *dir, char **path, vd_err *err) {
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = 0;
    size_t cap = strlen(dir) + strlen(host) + 64;
    char *p = malloc(cap);
    if (!p) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", dir), -1;
    long long now = (long long)time(NULL);
    for (int i = 0; i < 1000; i++) {
        int k = snprintf(p, cap, "%s/events.out.tfevents.%lld.%s", dir, now, host);
        if (i) snprintf(p + k, cap - (size_t)k, ".%d", i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *path = p;
            return fd;
        }
        if (errno != EEXIST) break;
    }
    vd_errorf(err, VD_ERR_IO, "%s: cannot create an event file (%s): %s", dir, p,
              strerror(errno));
    free(p);
    return -1;
}

vd_status vd_tb_flush(vd_tb *tb, vd_err *err) {
    int e = vd_write_all(tb->fd, tb->buf, tb->len);
    size_t lost = tb->len;
    tb->len = 0;
    if (e)
        return vd_errorf(err, VD_ERR_IO, "%s: writing events failed: %s (%zu bytes lost)",
                         tb->path, strerror(e), lost);
    return VD_OK;
}

/* Append one TFRecord: u64 length, masked CRC of the length, data, masked CRC of the data. */
static vd_status append_record(vd_tb *tb, const pb *data, vd_err *err) {
    pb rec = {.p = tb->buf, .n = tb->len, .cap = tb->cap};
    uint8_t head[12];
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)data->n >> (8 * i));
    uint32_t hcrc = vd_crc32c_masked(head, 8), dcrc = vd_crc32c_masked(data->p, data->n);
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(hcrc >> (8 * i));
    pb_raw(&rec, head, 12);
    pb_raw(&rec, data->p, data->n);
    pb_le(&rec, dcrc, 4);
    tb->buf = rec.p;
    tb->cap = rec.cap;
    if (rec.oom)
        return vd_errorf(err, VD_ERR_NOMEM, "%s: no memory to buffer an event", tb->path);
    tb->len = rec.n;
    return tb->len >= VD_TB_FLUSH_BYTES ? vd_tb_flush(tb, err) : VD_OK;
}

/* Event {1: wall_time, 2: step, 5: Summary {1: value}} around one encoded Summary.Value. */
static vd_status append_value(vd_tb *tb, int64_t step, pb *value, vd_err *err) {
    pb summary = {0}, ev = {0};
    pb_bytes(&summary, 1, value->p, value->n);
    pb_double(&ev, 1, wall_time());
    pb_int(&ev, 2, step);
    pb_bytes(&ev, 5, summary.p, summary.n);
    vd_status st = value->oom || summary.oom || ev.oom
                       ? vd_errorf(err, VD_ERR_NOMEM, "%s: no memory to encode an event", tb->path)
                       : append_record(tb, &ev, err);
    free(summary.p);
    free(ev.p);
    free(value->p);
    return st;
}

vd_status vd_tb_open(vd_tb **out, const char *dir, vd_err *err) {
    *out = NULL;
    vd_status st = vd_mkdirs(dir, err);
    if (st) return st;
    vd_tb *tb = calloc(1, sizeof *tb);
    if (!tb) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", dir);
    tb->fd = create_event_file(dir, &tb->path, err);
    if (tb->fd < 0) {
        free(tb);
        return err ? err->code : VD_ERR_IO;
    }
    pb ev = {0};
    pb_double(&ev, 1, wall_time());
    pb_bytes(&ev, 3, "brain.Event:2", strlen("brain.Event:2"));
    st = ev.oom ? vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", tb->path)
                : append_record(tb, &ev, err);
    free(ev.p);
    if (!st) st = vd_tb_flush(tb, err);
    if (st) {
        vd_tb_close(tb);
        return st;
    }
    *out = tb;
    return VD_OK;
}

const char *vd_tb_path(const vd_tb *tb) { return tb->path; }

void vd_tb_close(vd_tb *tb) {
    if (!tb) return;
    vd_tb_flush(tb, NULL);
    close(tb->fd);
    free(tb->buf);
    free(tb->path);
    free(tb);
}

/* ---- summaries ---------------------------------------------------------------------------- */

static vd_status check_tag(const vd_tb *tb, const char *tag, vd_err *err) {
    assert(tag);
    return *tag ? VD_OK : vd_errorf(err, VD_ERR_INVALID, "%s: empty summary tag", tb->path);
}

vd_status vd_tb_scalar(vd_tb *tb, const char *tag, int64_t step, float value, vd_err *err) {
    vd_status st = check_tag(tb, tag, err);
    if (st) return st;
    pb v = {0};
    pb_bytes(&v, 1, tag, strlen(tag));
    pb_float(&v, 2, value);
    return append_value(tb, step, &v, err);
}

vd_status vd_tb_image(vd_tb *tb, const char *tag, int64_t step, const uint8_t *pix, int h, int w,
                      int c, vd_err *err) {
    vd_status st = check_tag(tb, tag, err);
    if (st) return st;
    uint8_t *png;
    size_t n;
    st = vd_png_encode(pix, h, w, c, &png, &n, err);
    if (st) return vd_err_prefix(err, "%s: image '%s'", tb->path, tag);
    pb img = {0}, v = {0};
    pb_int(&img, 1, h);
    pb_int(&img, 2, w);
    pb_int(&img, 3, c); /* colorspace: 1 grey, 3 RGB, 4 RGBA, the channel count */
    pb_bytes(&img, 4, png, n);
    free(png);
    pb_bytes(&v, 1, tag, strlen(tag));
    pb_bytes(&v, 4, img.p, img.n);
    v.oom |= img.oom;
    free(img.p);
    return append_value(tb, step, &v, err);
}

typedef struct hist {
    double min, max, num, sum, sum_sq;
    double limit[VD_TB_HIST_BINS], count[VD_TB_HIST_BINS];
    int nbins;
} hist;

static void hist_stats(hist *hs, const float *x, size_t n) {
    *hs = (hist){.min = INFINITY, .max = -INFINITY};
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (!isfinite(v)) continue;
        hs->min = v < hs->min ? v : hs->min;
        hs->max = v > hs->max ? v : hs->max;
        hs->num += 1;
        hs->sum += v;
        hs->sum_sq += v * v;
    }
}

/* Equal-width bins over [min, max]; one bin when all values are equal; TensorFlow's single
 * empty bucket at DBL_MAX when there are none. */
static void hist_bins(hist *hs, const float *x, size_t n) {
    if (hs->num == 0) {
        hs->min = hs->max = 0;
        hs->nbins = 1;
        hs->limit[0] = DBL_MAX;
        return;
    }
    hs->nbins = hs->max > hs->min ? VD_TB_HIST_BINS : 1;
    double width = (hs->max - hs->min) / hs->nbins;
    for (int b = 0; b < hs->nbins; b++) hs->limit[b] = hs->min + width * (b + 1);
    hs->limit[hs->nbins - 1] = hs->max;
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (!isfinite(v)) continue;
        int b = hs->nbins > 1 ? (int)((v - hs->min) / width) : 0;
        hs->count[b < hs->nbins ? b : hs->nbins - 1] += 1;
    }
}

vd_status vd_tb_histogram(vd_tb *tb, const char *tag, int64_t step, const float *x, size_t n,
                          vd_err *err) {
    vd_status st = check_tag(tb, tag, err);
    if (st) return st;
    hist hs;
    hist_stats(&hs, x, n);
    hist_bins(&hs, x, n);
    pb h = {0}, v = {0};
    pb_double(&h, 1, hs.min);
    pb_double(&h, 2, hs.max);
    pb_double(&h, 3, hs.num);
    pb_double(&h, 4, hs.sum);
    pb_double(&h, 5, hs.sum_sq);
    pb_packed_doubles(&h, 6, hs.limit, (size_t)hs.nbins);
    pb_packed_doubles(&h, 7, hs.count, (size_t)hs.nbins);
    pb_bytes(&v, 1, tag, strlen(tag));
    pb_bytes(&v, 5, h.p, h.n);
    v.oom |= h.oom;
    free(h.p);
    return append_value(tb, step, &v, err);
}
