/* metrics.jsonl: one JSON object per line, appended with one write(2) each, so that lines
 * from a crashed or resumed run stay whole and scripts can read the log while it grows. */
#include "vdvae/tblog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

struct vd_metrics {
    char *path;
    int fd;
};

vd_status vd_metrics_open(vd_metrics **out, const char *path, vd_err *err) {
    *out = NULL;
    vd_metrics *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", path);
    }
    m->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (m->fd < 0) {
        vd_status st = vd_errorf(err, VD_ERR_IO, "%s: cannot open metrics log: %s", path,
                                 strerror(errno));
        free(m->path);
        free(m);
        return st;
    }
    *out = m;
    return VD_OK;
}

void vd_metrics_close(vd_metrics *m) {
    if (!m) return;
    close(m->fd);
    free(m->path);
    free(m);
}

static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* The shortest %.*g that reads back as v; JSON has no NaN or Infinity, so those are null. */
static void put_number(FILE *f, double v) {
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    char s[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    fputs(s, f);
}

static vd_status check_name(const vd_metrics *m, const char *name, vd_err *err) {
    static const char *const reserved[] = {"step", "split", "time"};
    if (!*name) return vd_errorf(err, VD_ERR_INVALID, "%s: empty metric name", m->path);
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (!strcmp(name, reserved[i]))
            return vd_errorf(err, VD_ERR_INVALID, "%s: metric name '%s' is reserved", m->path,
                             name);
    return VD_OK;
}

static void put_line(FILE *f, int64_t step, const char *split, const char *const *names,
                     const double *values, int n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(f, "{\"step\": %lld, \"split\": ", (long long)step);
    put_string(f, split);
    fprintf(f, ", \"time\": %lld.%03ld", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    for (int i = 0; i < n; i++) {
        fputs(", ", f);
        put_string(f, names[i]);
        fputs(": ", f);
        put_number(f, values[i]);
    }
    fputs("}\n", f);
}

vd_status vd_metrics_write(vd_metrics *m, int64_t step, const char *split,
                           const char *const *names, const double *values, int n,
                           vd_err *err) {
    assert(split && (n == 0 || (names && values)));
    for (int i = 0; i < n; i++) {
        vd_status st = check_name(m, names[i], err);
        if (st) return st;
    }
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f) return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", m->path);
    put_line(f, step, split, names, values, n);
    if (fclose(f) != 0) {
        free(line);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory", m->path);
    }
    int e = vd_write_all(m->fd, line, len);
    free(line);
    if (e) return vd_errorf(err, VD_ERR_IO, "%s: writing metrics failed: %s", m->path, strerror(e));
    return VD_OK;
}
