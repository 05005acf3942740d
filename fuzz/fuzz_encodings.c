/* libFuzzer target: .npz files of encodings (vd_npz_open + reading every member), through a
 * temporary file as the reader takes a path. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vdvae/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[] = "/tmp/vd_fuzz_npz_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        vd_npz *r = NULL;
        vd_err err;
        if (vd_npz_open(&r, path, &err) == VD_OK) {
            for (int i = 0; i < vd_npz_count(r); i++) {
                const vd_npz_array *a = NULL;
                (void)vd_npz_find(r, vd_npz_name(r, i), &a, &err);
            }
            vd_npz_close(r);
        }
    }
    close(fd);
    unlink(path);
    return 0;
}
