/* libFuzzer target: packed datasets (vd_pack_open maps a file, so each input goes through a
 * temporary file). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vdvae/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/vd_fuzz_pack_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        vd_images im;
        vd_err err;
        if (vd_pack_open(path, &im, &err) == VD_OK) {
            volatile uint8_t sink = 0; /* touch every pixel and name the header promises */
            for (size_t i = 0; i < (size_t)im.n * im.h * im.w * im.c; i++) sink ^= im.pixels[i];
            for (int64_t i = 0; im.names && i < im.n; i++) sink ^= (uint8_t)im.names[i][0];
            (void)sink;
            vd_images_free(&im);
        }
    }
    close(fd);
    unlink(path);
    return 0;
}
