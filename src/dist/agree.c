/* Agreement between ranks: statuses, digests and texts gathered on every rank and judged the
 * same way everywhere, so that every rank returns the same outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/agree.h"

uint64_t vd_fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    const uint64_t prime = 0x100000001b3ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * prime;
    }
    for (; i < n; i++) h = (h ^ b[i]) * prime;
    return h;
}

/* ---- statuses ------------------------------------------------------------------------------- */

typedef struct status_msg {
    int code;
    char msg[VD_ERR_MSG_MAX - 64];
} status_msg;

vd_status vd_dist_agree_status(vd_comm *c, vd_status st, vd_err *err) {
    if (c->size <= 1) return st;
    status_msg mine = {.code = (int)st};
    if (st && err) snprintf(mine.msg, sizeof mine.msg, "%.900s", err->msg);
    status_msg *all = malloc((size_t)c->size * sizeof *all);
    if (!all) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_err gerr = {0};
    vd_status g = c->i->allgather(c, &mine, all, sizeof mine, "an agreement on the outcome", &gerr);
    if (g) {
        free(all);
        if (err) *err = gerr;
        return g;
    }
    int first = -1;
    for (int r = 0; r < c->size && first < 0; r++)
        if (all[r].code) first = r;
    vd_status out = VD_OK;
    if (first >= 0) {
        c->failed_together = true;
        out = (vd_status)all[first].code;
        if (st) out = st; /* our own error, as it is */
        else vd_errorf(err, out, "rank %d: %s", first, all[first].msg);
    }
    free(all);
    return out;
}

/* ---- digests --------------------------------------------------------------------------------- */

typedef struct digest_msg {
    uint64_t digest;
    char desc[256];
} digest_msg;

vd_status vd_dist_agree_digest(vd_comm *c, const char *what, uint64_t digest, const char *desc,
                               vd_err *err) {
    if (c->size <= 1) return VD_OK;
    digest_msg mine = {.digest = digest};
    snprintf(mine.desc, sizeof mine.desc, "%s", desc ? desc : "");
    digest_msg *all = malloc((size_t)c->size * sizeof *all);
    if (!all) return vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = c->i->allgather(c, &mine, all, sizeof mine, what, err);
    if (!st) {
        char list[VD_ERR_MSG_MAX - 200] = "";
        size_t at = 0;
        int differ = 0;
        for (int r = 1; r < c->size; r++) {
            if (all[r].digest == all[0].digest) continue;
            differ++;
            if (at < sizeof list)
                at += (size_t)snprintf(list + at, sizeof list - at, "; rank %d: %s", r, all[r].desc);
        }
        if (differ) {
            c->failed_together = true;
            st = vd_errorf(err, VD_ERR_INVALID,
                           "%s differs between ranks (%d of %d differ from rank 0): rank 0: %s%s; every "
                           "rank must start from the same one",
                           what, differ, c->size, all[0].desc, list);
        }
    }
    free(all);
    return st;
}

/* ---- texts ------------------------------------------------------------------------------------ */

/* The name of line `line` in its section ("section.key" or the line itself), into out. */
static void line_name(const char *section, const char *line, size_t len, char *out, size_t cap) {
    const char *eq = memchr(line, '=', len);
    if (!section[0] || !eq) {
        snprintf(out, cap, "%.*s", (int)(len < 80 ? len : 80), line);
        return;
    }
    size_t k = (size_t)(eq - line);
    while (k > 0 && line[k - 1] == ' ') k--;
    snprintf(out, cap, "%s.%.*s", section, (int)(k < 60 ? k : 60), line);
}

static const char *value_of(const char *line, size_t len, size_t *vlen) {
    const char *eq = memchr(line, '=', len);
    const char *v = eq ? eq + 1 : line;
    while (v < line + len && *v == ' ') v++;
    *vlen = (size_t)(line + len - v);
    return v;
}

/* The lines where mine differs from ref, "name = mine (rank 0: ref)", into out. */
static int diff_lines(const char *ref, const char *mine, char *out, size_t cap) {
    char section[64] = "";
    int n = 0;
    size_t at = 0;
    out[0] = 0;
    while (*ref || *mine) {
        size_t lr = strcspn(ref, "\n"), lm = strcspn(mine, "\n");
        if (lm >= 2 && mine[0] == '[' && mine[lm - 1] == ']')
            snprintf(section, sizeof section, "%.*s", (int)(lm - 2 < 60 ? lm - 2 : 60), mine + 1);
        if (lr != lm || memcmp(ref, mine, lr)) {
            char name[160];
            size_t vr, vm;
            const char *r = value_of(ref, lr, &vr), *m = value_of(mine, lm, &vm);
            line_name(section, mine, lm, name, sizeof name);
            if (at < cap)
                at += (size_t)snprintf(out + at, cap - at, "%s%s = %.*s (rank 0: %.*s)", n ? ", " : "", name,
                                       (int)(vm < 60 ? vm : 60), m, (int)(vr < 60 ? vr : 60), r);
            n++;
        }
        ref += lr + (ref[lr] == '\n');
        mine += lm + (mine[lm] == '\n');
    }
    return n;
}

typedef struct text_msg {
    int differs;
    char lines[400];
} text_msg;

vd_status vd_dist_agree_text(vd_comm *c, const char *what, const char *text, vd_err *err) {
    if (c->size <= 1) return VD_OK;
    uint64_t len = c->rank == 0 ? strlen(text) : 0;
    vd_status st = c->i->bcast(c, &len, sizeof len, 0, what, err);
    char *ref = st ? NULL : malloc((size_t)len + 1);
    if (!st && !ref) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    if (!st && c->rank == 0) memcpy(ref, text, (size_t)len);
    if (!st) st = c->i->bcast(c, ref, (size_t)len, 0, what, err);
    text_msg mine = {0}, *all = NULL;
    if (!st) {
        ref[len] = 0;
        mine.differs = diff_lines(ref, text, mine.lines, sizeof mine.lines);
        if (!(all = malloc((size_t)c->size * sizeof *all))) st = vd_errorf(err, VD_ERR_NOMEM, "out of memory");
    }
    if (!st) st = c->i->allgather(c, &mine, all, sizeof mine, what, err);
    if (!st) {
        char list[VD_ERR_MSG_MAX - 160] = "";
        size_t at = 0;
        int differ = 0;
        for (int r = 1; r < c->size; r++) {
            if (!all[r].differs) continue;
            if (at < sizeof list)
                at += (size_t)snprintf(list + at, sizeof list - at, "%srank %d: %s", differ ? "; " : "", r,
                                       all[r].lines);
            differ++;
        }
        if (differ) {
            c->failed_together = true;
            st = vd_errorf(err, VD_ERR_INVALID,
                           "%s differs between ranks (%d of %d differ from rank 0): %s; every rank must "
                           "run the same one (the same CFG and --set on every host)",
                           what, differ, c->size, list);
        }
    }
    free(ref);
    free(all);
    return st;
}
