/* libFuzzer target: safetensors files (checkpoints, reference cases) through vd_st_open. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vdvae/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/vd_fuzz_st_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        vd_st *st = NULL;
        vd_err err;
        if (vd_st_open(path, &st, &err) == VD_OK) {
            volatile uint8_t sink = 0; /* every tensor's bytes must lie inside the file */
            for (int i = 0; i < vd_st_count(st); i++) {
                const vd_st_tensor *t = vd_st_at(st, i);
                for (size_t j = 0; j < t->nbytes; j++) sink ^= ((const uint8_t *)t->data)[j];
            }
            (void)sink;
            (void)vd_st_meta(st, "format");
            vd_st_close(st);
        }
    }
    close(fd);
    unlink(path);
    return 0;
}
