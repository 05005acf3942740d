/* libFuzzer target: CIFAR-10 binary batches through the in-memory parser. */
#include <stddef.h>
#include <stdint.h>

#include "data/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vd_images im;
    vd_err err;
    if (vd_parse_cifar10(data, size, "fuzz.bin", &im, &err) == VD_OK) vd_images_free(&im);
    return 0;
}
