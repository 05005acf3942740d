/* vd_images ownership (malloc'ed or inside a read-only mapping) and the whole-file read
 * that every format reader starts from. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/formats.h"

/* Pack files map pixels and name strings; anything outside the mapping was malloc'ed. */
static int in_map(const vd_images *im, const void *p) {
    const char *m = im->map, *q = p;
    return m && q >= m && q < m + im->map_len;
}

void vd_images_free(vd_images *im) {
    if (!im) return;
    if (im->names && !in_map(im, im->names)) {
        for (int64_t i = 0; i < im->n; i++)
            if (!in_map(im, im->names[i])) free(im->names[i]);
        free(im->names);
    }
    if (!in_map(im, im->pixels)) free(im->pixels);
    if (im->map) munmap(im->map, im->map_len);
    memset(im, 0, sizeof *im);
}

vd_status vd_images_alloc(vd_images *im, int64_t n, int h, int w, int c, vd_err *err) {
    memset(im, 0, sizeof *im);
    if (n < 0 || h <= 0 || w <= 0 || c <= 0)
        return vd_errorf(err, VD_ERR_INVALID, "bad image set shape %lld x %d x %d x %d",
                         (long long)n, h, w, c);
    size_t per = (size_t)h * (size_t)w * (size_t)c;
    if ((uint64_t)h * (uint64_t)w > (uint64_t)VD_IMAGE_MAX_PIXELS ||
        (n > 0 && (uint64_t)n > SIZE_MAX / per))
        return vd_errorf(err, VD_ERR_NOMEM, "image set %lld x %d x %d x %d is too large",
                         (long long)n, h, w, c);
    im->pixels = calloc(n ? (size_t)n * per : 1, 1);
    if (!im->pixels)
        return vd_errorf(err, VD_ERR_NOMEM, "out of memory for %lld images of %d x %d x %d",
                         (long long)n, h, w, c);
    im->n = n, im->h = h, im->w = w, im->c = c;
    return VD_OK;
}

static vd_status read_fd(int fd, const char *path, size_t len, uint8_t *buf, vd_err *err) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return vd_errorf(err, VD_ERR_IO, "%s: read failed at offset %zu: %s", path, got,
                             strerror(errno));
        if (r == 0)
            return vd_errorf(err, VD_ERR_IO, "%s: file shrank while reading: %zu of %zu bytes",
                             path, got, len);
        got += (size_t)r;
    }
    return VD_OK;
}

vd_status vd_data_read_file(const char *path, uint8_t **buf, size_t *len, vd_err *err) {
    *buf = NULL, *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    vd_status s = VD_OK;
    if (fstat(fd, &st) != 0)
        s = vd_errorf(err, VD_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = vd_errorf(err, VD_ERR_IO, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size >= SIZE_MAX / 2)
        s = vd_errorf(err, VD_ERR_NOMEM, "%s: file too large (%lld bytes)", path,
                      (long long)st.st_size);
    uint8_t *b = NULL;
    if (s == VD_OK && !(b = malloc((size_t)st.st_size + 1)))
        s = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory for %lld bytes", path,
                      (long long)st.st_size);
    if (s == VD_OK) s = read_fd(fd, path, (size_t)st.st_size, b, err);
    close(fd);
    if (s != VD_OK) {
        free(b);
        return s;
    }
    *buf = b, *len = (size_t)st.st_size;
    return VD_OK;
}
