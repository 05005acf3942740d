/* libFuzzer target: IDX image files (raw and gzip) through the in-memory parser. */
#include <stddef.h>
#include <stdint.h>

#include "data/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vd_images im;
    vd_err err;
    if (vd_parse_idx_images(data, size, "fuzz.idx", &im, &err) == VD_OK) vd_images_free(&im);
    return 0;
}
