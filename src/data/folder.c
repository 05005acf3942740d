/* Image folders (celebA, FFHQ, custom): the non-hidden regular files of a directory in strcmp
 * order (Python's sorted()), decoded to RGB, resized to res x res where the size differs. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/formats.h"

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int names_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return 0;
        l->v = v, l->cap = cap;
    }
    return (l->v[l->n] = strdup(s)) ? (l->n++, 1) : 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) memcpy(p, dir, a), p[a] = '/', memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Directories inside are skipped; anything stat cannot follow (a dangling link) is an error. */
static vd_status keep_entry(const char *dir, const char *name, int *keep, vd_err *err) {
    char *path = join(dir, name);
    if (!path) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    struct stat st;
    vd_status s = VD_OK;
    if (stat(path, &st) != 0)
        s = vd_errorf(err, VD_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    *keep = s == VD_OK && S_ISREG(st.st_mode);
    free(path);
    return s;
}

static vd_status list_files(const char *dir, name_list *l, vd_err *err) {
    DIR *d = opendir(dir);
    if (!d) return vd_errorf(err, VD_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    vd_status s = VD_OK;
    struct dirent *e;
    while (s == VD_OK && (errno = 0, e = readdir(d))) {
        int keep = 0;
        if (e->d_name[0] == '.') continue;
        s = keep_entry(dir, e->d_name, &keep, err);
        if (s == VD_OK && keep && !names_push(l, e->d_name))
            s = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    if (s == VD_OK && errno)
        s = vd_errorf(err, VD_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
    closedir(d);
    if (s == VD_OK && l->n == 0)
        s = vd_errorf(err, VD_ERR_INVALID, "%s: no image files in the folder (hidden files are "
                      "skipped)", dir);
    if (s == VD_OK) qsort(l->v, l->n, sizeof *l->v, cmp_names);
    return s;
}

static vd_status load_one(const char *dir, const char *name, int res, uint8_t *dst, vd_err *err) {
    char *path = join(dir, name);
    if (!path) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    int h, w;
    uint8_t *rgb;
    vd_status s = vd_read_image_rgb(path, &h, &w, &rgb, err);
    if (s == VD_OK && vd_resize_bilinear(rgb, h, w, 3, dst, res, res) != VD_OK)
        s = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory resizing %d x %d to %d x %d", path,
                      w, h, res, res);
    free(rgb);
    free(path);
    return s;
}

/* res 0: each image as it is, and all of the first one's size (as pytorch-fid reads a folder). */
static vd_status load_native(const char *dir, const name_list *l, vd_images *out, vd_err *err) {
    vd_status s = VD_OK;
    for (size_t i = 0; i < l->n && s == VD_OK; i++) {
        char *path = join(dir, l->v[i]);
        if (!path) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
        int h, w;
        uint8_t *rgb = NULL;
        s = vd_read_image_rgb(path, &h, &w, &rgb, err);
        if (s == VD_OK && i == 0) s = vd_images_alloc(out, (int64_t)l->n, h, w, 3, err);
        if (s == VD_OK && (h != out->h || w != out->w))
            s = vd_errorf(err, VD_ERR_INVALID, "%s: %d x %d pixels, but %s/%s is %d x %d: the "
                          "images of a folder read at their own size must all have one size",
                          path, w, h, dir, l->v[0], out->w, out->h);
        if (s == VD_OK) memcpy(vd_image_ptr(out, (int64_t)i), rgb, (size_t)h * (size_t)w * 3);
        free(rgb);
        free(path);
    }
    return s;
}

vd_status vd_read_image_folder(const char *dir, int res, vd_images *out, vd_err *err) {
    memset(out, 0, sizeof *out);
    if (res < 0 || res > 65535)
        return vd_errorf(err, VD_ERR_INVALID, "%s: bad target resolution %d", dir, res);
    name_list l = {0};
    vd_status s = list_files(dir, &l, err);
    if (s == VD_OK && res == 0) s = load_native(dir, &l, out, err);
    else if (s == VD_OK) s = vd_images_alloc(out, (int64_t)l.n, res, res, 3, err);
    for (size_t i = 0; res > 0 && i < l.n && s == VD_OK; i++)
        s = load_one(dir, l.v[i], res, vd_image_ptr(out, (int64_t)i), err);
    if (s != VD_OK) {
        vd_images_free(out);
        names_free(&l);
        return s;
    }
    out->names = l.v; /* the n names, owned by out now */
    return VD_OK;
}
