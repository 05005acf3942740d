/* libFuzzer target: .npz archives (zip + .npy header) through the in-memory parser; images
 * of 4 x 4 x 3, the size the seeds in corpus/fuzz_npz hold. */
#include <stddef.h>
#include <stdint.h>

#include "data/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vd_images im;
    vd_err err;
    if (vd_parse_npz_images(data, size, "fuzz.npz", 4, 3, &im, &err) == VD_OK) vd_images_free(&im);
    return 0;
}
