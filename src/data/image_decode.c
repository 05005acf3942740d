/* PNG (libpng) and JPEG (TurboJPEG) to 8-bit RGB as PIL's Image.open(f).convert("RGB") makes
 * it, which the reference's folder datasets use; the format comes from the magic bytes. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "data/formats.h"

static vd_status too_large(const char *name, const char *fmt, long long w, long long h,
                           vd_err *err) {
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: %s of %lld x %lld pixels exceeds the limit of %lld pixels", name, fmt, w,
                     h, (long long)VD_IMAGE_MAX_PIXELS);
}

/* ---- PNG ------------------------------------------------------------------------------------ */

typedef struct png_ctx {
    const uint8_t *buf;
    size_t len, pos;
    char msg[200];
    uint8_t *raw;    /* decoded rows as libpng delivers them */
    png_bytep *rows;
} png_ctx;

static void png_fail(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        snprintf(c->msg, sizeof c->msg, "truncated: file ends at offset %zu, %zu more bytes needed",
                 c->len, n - (c->len - c->pos));
        png_longjmp(png, 1);
    }
    memcpy(out, c->buf + c->pos, n);
    c->pos += n;
}

/* What PIL's convert("RGB") makes of libpng's rows: grey is replicated, alpha dropped without
 * compositing. 16-bit samples become their high byte (PIL reads them with rawmodes
 * "RGB;16B", "RGBA;16B", "LA;16B"), except 16-bit grey without alpha, which PIL opens as
 * a 32-bit integer image ("I;16"/"I") whose RGB conversion clips to 255. */
static void png_to_rgb(const png_ctx *c, int w, int h, int channels, int depth, uint8_t *rgb) {
    int bps = depth / 8, clip = depth == 16 && channels == 1;
    for (int y = 0; y < h; y++) {
        const uint8_t *row = c->rows[y];
        for (int x = 0; x < w; x++, rgb += 3) {
            const uint8_t *px = row + (size_t)x * channels * bps;
            for (int k = 0; k < 3; k++) {
                const uint8_t *s = px + (channels >= 3 ? k : 0) * bps;
                rgb[k] = clip ? (s[0] ? 255 : s[1]) : s[0];
            }
        }
    }
}

static vd_status png_decode_rows(png_structp png, png_infop info, png_ctx *c, const char *name,
                                 int *h, int *w, uint8_t **rgb, vd_err *err) {
    png_read_info(png, info);
    png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    if ((uint64_t)pw * ph > (uint64_t)VD_IMAGE_MAX_PIXELS)
        return too_large(name, "PNG", pw, ph, err);
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((type & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((depth != 8 && depth != 16) || channels < 1 || channels > 4 ||
        rowbytes < (size_t)pw * channels * (depth / 8))
        return vd_errorf(err, VD_ERR_INVALID, "%s: unsupported PNG layout (%d channels of %d bits)",
                         name, channels, depth);
    c->raw = malloc(rowbytes * ph);
    c->rows = malloc(sizeof *c->rows * ph);
    *rgb = malloc((size_t)pw * ph * 3);
    if (!c->raw || !c->rows || !*rgb)
        return vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory for a %u x %u PNG", name, pw, ph);
    for (png_uint_32 y = 0; y < ph; y++) c->rows[y] = c->raw + rowbytes * y;
    /* PIL stops at the image data and tolerates a missing IEND: so no png_read_end */
    png_read_image(png, c->rows);
    png_to_rgb(c, (int)pw, (int)ph, channels, depth, *rgb);
    *h = (int)ph, *w = (int)pw;
    return VD_OK;
}

/* setjmp lives here, apart from the locals of png_decode, so that nothing this function
 * owns changes between setjmp and libpng's longjmp: all state is behind c. */
static vd_status png_run(png_structp png, png_infop info, png_ctx *c, const char *name, int *h,
                         int *w, uint8_t **rgb, vd_err *err) {
    if (setjmp(png_jmpbuf(png)))
        return vd_errorf(err, VD_ERR_INVALID, "%s: corrupt PNG: %s", name, c->msg);
    png_set_read_fn(png, c, png_read_mem);
    return png_decode_rows(png, info, c, name, h, w, rgb, err);
}

static vd_status png_decode(const uint8_t *buf, size_t len, const char *name, int *h, int *w,
                            uint8_t **rgb, vd_err *err) {
    png_ctx c = {.buf = buf, .len = len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_fail, png_warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot start libpng", name);
    }
    vd_status s = png_run(png, info, &c, name, h, w, rgb, err);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.raw);
    free(c.rows);
    if (s != VD_OK) free(*rgb), *rgb = NULL;
    return s;
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

/* libjpeg reports a file cut short as a warning and fills the rest with grey; PIL raises
 * "image file is truncated" there, so that warning is an error. Other warnings (extraneous
 * bytes, a damaged segment) PIL ignores, and so do we. */
static int jpeg_fatal(tjhandle tj) {
    return tjGetErrorCode(tj) != TJERR_WARNING ||
           strstr(tjGetErrorStr2(tj), "Premature end") != NULL;
}

static vd_status jpeg_decode(const uint8_t *buf, size_t len, const char *name, int *h, int *w,
                             uint8_t **rgb, vd_err *err) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return vd_errorf(err, VD_ERR_NOMEM, "%s: cannot start TurboJPEG", name);
    int jw = 0, jh = 0, sub = 0, cs = 0; /* a frame-less stream leaves them unset */
    vd_status s = VD_OK;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &jw, &jh, &sub, &cs) != 0)
        s = vd_errorf(err, VD_ERR_INVALID, "%s: corrupt JPEG: %s", name, tjGetErrorStr2(tj));
    else if (jw < 1 || jh < 1) /* TurboJPEG accepts a stream of tables without a frame */
        s = vd_errorf(err, VD_ERR_INVALID, "%s: corrupt JPEG: no image frame in the stream", name);
    else if ((uint64_t)jw * jh > (uint64_t)VD_IMAGE_MAX_PIXELS)
        s = too_large(name, "JPEG", jw, jh, err);
    else if (cs == TJCS_CMYK || cs == TJCS_YCCK)
        s = vd_errorf(err, VD_ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported", name);
    else if (!(*rgb = malloc((size_t)jw * jh * 3)))
        s = vd_errorf(err, VD_ERR_NOMEM, "%s: out of memory for a %d x %d JPEG", name, jw, jh);
    /* default flags: accurate integer DCT and smooth upsampling, as PIL decodes */
    else if (tjDecompress2(tj, buf, (unsigned long)len, *rgb, jw, 0, jh, TJPF_RGB,
                           TJFLAG_LIMITSCANS) != 0 && jpeg_fatal(tj))
        s = vd_errorf(err, VD_ERR_INVALID, "%s: corrupt JPEG: %s", name, tjGetErrorStr2(tj));
    tjDestroy(tj);
    if (s != VD_OK) {
        free(*rgb);
        *rgb = NULL;
        return s;
    }
    *h = jh, *w = jw;
    return VD_OK;
}

/* ---- entry points --------------------------------------------------------------------------- */

vd_status vd_decode_image_rgb(const uint8_t *buf, size_t len, const char *name, int *h, int *w,
                              uint8_t **rgb, vd_err *err) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *rgb = NULL, *h = *w = 0;
    if (len >= 8 && memcmp(buf, png_magic, 8) == 0)
        return png_decode(buf, len, name, h, w, rgb, err);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return jpeg_decode(buf, len, name, h, w, rgb, err);
    uint8_t head[4] = {0};
    if (len) memcpy(head, buf, len < 4 ? len : 4);
    return vd_errorf(err, VD_ERR_INVALID,
                     "%s: offset 0: not a PNG or JPEG file (starts with %02x %02x %02x %02x, "
                     "%zu bytes)", name, head[0], head[1], head[2], head[3], len);
}

vd_status vd_read_image_rgb(const char *path, int *h, int *w, uint8_t **rgb, vd_err *err) {
    uint8_t *buf;
    size_t len;
    *rgb = NULL, *h = *w = 0;
    vd_status s = vd_data_read_file(path, &buf, &len, err);
    if (s != VD_OK) return s;
    s = vd_decode_image_rgb(buf, len, path, h, w, rgb, err);
    free(buf);
    return s;
}
