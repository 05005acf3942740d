/* libFuzzer target: JPEG decoding (TurboJPEG behind our error handling), then a resize of the
 * result to a size taken from the input's length, so the resampler sees every decoded shape. */
#include <stdlib.h>

#include "data/formats.h"

static int fuzz_decode_and_resize(const uint8_t *data, size_t size, const char *name) {
    int h, w;
    uint8_t *rgb;
    vd_err err;
    if (vd_decode_image_rgb(data, size, name, &h, &w, &rgb, &err) != VD_OK) return 0;
    /* resizing large decodes would dominate the run time; small ones cover every path */
    int dh = 1 + (int)(size % 23), dw = 1 + (int)(size / 23 % 19);
    uint8_t *out = (size_t)h * w <= 16384 ? malloc((size_t)dh * dw * 3) : NULL;
    if (out) vd_resize_bilinear(rgb, h, w, 3, out, dh, dw);
    free(out);
    free(rgb);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_decode_and_resize(data, size, "fuzz.jpg");
}
