/* libFuzzer target for the .cfg reader: parse, type and validate, and for every input that
 * loads, check that the canonical text reads back to the identical struct. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdvae/config.h"

static vd_hparams *hp, *back;

/* Canonical text of hp must load again and give the same bytes. */
static void check_round_trip(void) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return;
    if (vd_hparams_write(hp, f) != VD_OK) __builtin_trap();
    fclose(f);
    vd_cfg cfg = {0};
    vd_err err = {0};
    memset(back, 0, sizeof *back);
    if (vd_cfg_parse(&cfg, text, len, "canonical", &err) != VD_OK) __builtin_trap();
    if (vd_hparams_from_cfg(back, &cfg, &err) != VD_OK) __builtin_trap();
    if (memcmp(hp, back, sizeof *hp) != 0) __builtin_trap();
    if (vd_hparams_diff(hp, back, NULL, 0) != 0) __builtin_trap();
    vd_cfg_free(&cfg);
    free(text);
}

/* The first line also goes through vd_cfg_set, as a --set assignment would. */
static void try_set(vd_cfg *cfg, const uint8_t *data, size_t size) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    char *line = malloc(n + 1);
    if (!line) return;
    memcpy(line, data, n);
    line[n] = '\0';
    vd_err err = {0};
    vd_status st = vd_cfg_set(cfg, line, &err);
    if (st != VD_OK && st != VD_ERR_INVALID && st != VD_ERR_NOMEM) __builtin_trap();
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!hp && !(hp = calloc(1, sizeof *hp))) return 0;
    if (!back && !(back = calloc(1, sizeof *back))) return 0;
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_status st = vd_cfg_parse(&cfg, (const char *)data, size, "fuzz.cfg", &err);
    if (st != VD_OK) {
        /* every failure is a message naming the file */
        if (st == VD_ERR_INVALID && strncmp(err.msg, "fuzz.cfg:", 9) != 0) __builtin_trap();
        return 0;
    }
    FILE *sink = fopen("/dev/null", "w");
    for (size_t i = 0; sink && i < cfg.n; i++) vd_value_print(sink, &cfg.entries[i].value);
    if (sink) fclose(sink);
    try_set(&cfg, data, size);
    memset(hp, 0, sizeof *hp);
    if (vd_hparams_from_cfg(hp, &cfg, &err) == VD_OK) check_round_trip();
    vd_cfg_free(&cfg);
    return 0;
}
