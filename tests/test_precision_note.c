/* vd_backend_precision_note: the verdict on given times (no timing luck: the note's text, the
 * threshold, bad inputs), then the cpu backend's probe as it runs here (it measures, leaves the
 * caller's backend, mode, failure and thread count as they were, and the note is cached). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "vd_test.h"
#include "vd_test_buf.h"

static bool verdict(double fp32, double bf16, const char *kernel, const char *isa, char *note, size_t cap) {
    vd_precision_probe p = {fp32, bf16, kernel, isa};
    return vd_precision_verdict(&p, note, cap);
}

static void test_verdict(void) {
    char note[320];
    CHECK(verdict(1.0, 1.4, "brgconv:avx512_core_bf16", "no AMX", note, sizeof note));
    CHECKF(!strcmp(note, "bf16 convolutions measured 1.40x slower than fp32 on this CPU (oneDNN "
                         "brgconv:avx512_core_bf16, no AMX); consider run.precision='fp32'"),
           "%s", note);
    /* the user's Xeon: 1.96 s against 1.33 s per step */
    CHECK(verdict(1.33, 1.96, "brgconv:avx512_core_bf16", "no AMX", note, sizeof note));
    CHECKF(strstr(note, " 1.47x slower ") != NULL, "%s", note);

    /* faster, equal, or slower within the noise margin: nothing to say, note untouched */
    strcpy(note, "untouched");
    CHECK(!verdict(1.0, 0.52, "k", "i", note, sizeof note));
    CHECK(!verdict(1.0, 1.0, "k", "i", note, sizeof note));
    CHECK(!verdict(1.0, VD_BF16_SLOWER_RATIO, "k", "i", note, sizeof note));
    CHECK(!verdict(2e-3, 2e-3 * VD_BF16_SLOWER_RATIO * 0.999, "k", "i", note, sizeof note));
    CHECK(!strcmp(note, "untouched"));
    CHECK(verdict(2e-3, 2e-3 * VD_BF16_SLOWER_RATIO * 1.001, "k", "i", note, sizeof note));

    /* nothing measured */
    strcpy(note, "untouched");
    CHECK(!verdict(0, 1.0, "k", "i", note, sizeof note));
    CHECK(!verdict(1.0, 0, "k", "i", note, sizeof note));
    CHECK(!verdict(-1.0, -2.0, "k", "i", note, sizeof note));
    CHECK(!verdict(NAN, 2.0, "k", "i", note, sizeof note));
    CHECK(!verdict(1.0, NAN, "k", "i", note, sizeof note));
    CHECK(!verdict(1.0, INFINITY, "k", "i", note, sizeof note));
    CHECK(!verdict(INFINITY, INFINITY, "k", "i", note, sizeof note));
    CHECK(!strcmp(note, "untouched"));

    /* what the parenthesis says with parts missing */
    CHECK(verdict(1.0, 2.0, NULL, NULL, note, sizeof note));
    CHECKF(!strcmp(note, "bf16 convolutions measured 2.00x slower than fp32 on this CPU; consider "
                         "run.precision='fp32'"), "%s", note);
    CHECK(verdict(1.0, 2.0, "", "", note, sizeof note));
    CHECKF(strstr(note, "CPU; consider") != NULL, "%s", note);
    CHECK(verdict(1.0, 2.0, "gemm:jit", NULL, note, sizeof note));
    CHECKF(strstr(note, "CPU (oneDNN gemm:jit); consider") != NULL, "%s", note);
    CHECK(verdict(1.0, 2.0, NULL, "no AVX-512 BF16", note, sizeof note));
    CHECKF(strstr(note, "CPU (no AVX-512 BF16); consider") != NULL, "%s", note);

    /* a short buffer gets a truncated, terminated note */
    char small[16];
    memset(small, 'x', sizeof small);
    CHECK(verdict(1.0, 2.0, "k", "i", small, sizeof small));
    CHECK(strlen(small) == sizeof small - 1 && !strncmp(small, "bf16 convolutio", 15));
}

/* Backends that do not measure say nothing, in either precision. */
static void test_no_probe(void) {
    vd_backend *ref = NULL;
    vd_err err = {0};
    CHECK(vd_backend_create_cpu_ref(&ref, &err) == VD_OK);
    if (!ref) return;
    CHECK(vd_backend_precision_note(ref) == NULL);
    CHECK(vd_backend_set_precision(ref, VD_PREC_BF16, &err) == VD_OK);
    CHECK(vd_backend_precision_note(ref) == NULL);
    vd_backend_destroy(ref);
    CHECK(vd_backend_precision_note(NULL) == NULL);
}

#ifdef VD_HAVE_ONEDNN
/* A small bf16 conv, to see that the probe changes nothing the caller computes. */
static void conv_once(vd_backend *be, const buf *x, const buf *w, const buf *b, buf *y) {
    vd_conv_desc cv = {.c_in = 8, .c_out = 8, .kh = 3, .kw = 3, .stride = 1, .pad_top = 1,
                       .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .pre_act = VD_CONV_PRE_SILU};
    be->i->conv_fwd(be, &cv, &x->t, w->mem, b->mem, &y->t);
}

static void test_cpu(vd_backend *cpu) {
    vd_err err = {0};
    CHECK(vd_backend_precision_note(cpu) == NULL); /* fp32: nothing to measure */

    /* the probe itself: it measures, on a backend and a thread count of its own */
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#endif
    vd_precision_probe p;
    char kernel[96];
    vd_status st = vd_cpu_precision_probe(&p, kernel, sizeof kernel, &err);
    CHECKF(st == VD_OK, "%s", err.msg);
#ifdef _OPENMP
    CHECK(omp_get_max_threads() == threads);
#endif
    CHECK(p.fp32_seconds > 0 && isfinite(p.fp32_seconds) && p.fp32_seconds < 10);
    CHECK(p.bf16_seconds > 0 && isfinite(p.bf16_seconds) && p.bf16_seconds < 10);
    CHECK(p.kernel == kernel && kernel[0] && p.isa && p.isa[0]);
    fprintf(stderr, "probe on this CPU: fp32 %.3f ms, bf16 %.3f ms (bf16/fp32 %.2f), bf16 3x3 forward "
                    "by %s, %s\n", p.fp32_seconds * 1e3, p.bf16_seconds * 1e3,
            p.bf16_seconds / p.fp32_seconds, p.kernel, p.isa);

    /* the note: measured once per precision setting, the text stays put; the caller's convs
     * (here on forced rounding, a mode the probe must not reset) give the same bits before
     * and after */
    CHECK(vd_backend_set_precision(cpu, VD_PREC_BF16, &err) == VD_OK);
    vd_cpu_conv_force_rounded(vd_cpu_conv_of(cpu), true);
    buf x = buf_rand_new(2, 5, 5, 8, 0, -2, 2), w = buf_rand_new(8, 3, 3, 8, 0, -0.5, 0.5);
    buf b = buf_rand_new(1, 1, 1, 8, 0, -1, 1), y0 = buf_new(2, 5, 5, 8, 0), y1 = buf_new(2, 5, 5, 8, 0);
    conv_once(cpu, &x, &w, &b, &y0);
    const char *note = vd_backend_precision_note(cpu);
    fprintf(stderr, "note: %s\n", note ? note : "(none: bf16 is not slower here)");
    CHECK(!note || (!strncmp(note, "bf16 convolutions measured ", 27) &&
                    strstr(note, "consider run.precision='fp32'")));
    const char *again = vd_backend_precision_note(cpu);
    CHECK(again == note);
    conv_once(cpu, &x, &w, &b, &y1);
    CHECK(!memcmp(y0.mem, y1.mem, y0.len * sizeof(float)));
    vd_cpu_conv_force_rounded(vd_cpu_conv_of(cpu), false);
    conv_once(cpu, &x, &w, &b, &y1); /* bf16 kernels: other sums, so other bits, somewhere */
    CHECK(vd_backend_check(cpu, &err) == VD_OK);
    CHECK(vd_backend_set_precision(cpu, VD_PREC_FP32, &err) == VD_OK);
    CHECK(vd_backend_precision_note(cpu) == NULL);

    /* a backend that has failed keeps its failure, whatever the note says */
    CHECK(vd_backend_set_precision(cpu, VD_PREC_BF16, &err) == VD_OK);
    vd_conv_desc bad = {.c_in = 3, .c_out = 8, .kh = 3, .kw = 3, .stride = 1};
    cpu->i->conv_fwd(cpu, &bad, &x.t, w.mem, b.mem, &y0.t);
    CHECK(vd_backend_check(cpu, &err) == VD_ERR_INVALID);
    char msg[sizeof err.msg];
    snprintf(msg, sizeof msg, "%s", err.msg);
    (void)vd_backend_precision_note(cpu);
    CHECK(vd_backend_check(cpu, &err) == VD_ERR_INVALID && !strcmp(err.msg, msg));
    buf *all[] = {&x, &w, &b, &y0, &y1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* The profiling wrapper passes the inner backend's note through. */
static void test_profile(void) {
    vd_backend *cpu = NULL, *prof = NULL;
    vd_err err = {0};
    CHECK(vd_backend_create_cpu(&cpu, 2, &err) == VD_OK);
    CHECK(cpu && vd_backend_create_profile(&prof, cpu, &err) == VD_OK);
    if (!prof) return vd_backend_destroy(cpu);
    CHECK(vd_backend_set_precision(prof, VD_PREC_BF16, &err) == VD_OK);
    const char *note = vd_backend_precision_note(prof);
    CHECK(note == vd_backend_precision_note(cpu));
    vd_profile_family f[8];
    CHECK(vd_backend_profile_read(prof, f, 8) == 0); /* the probe's convs are not charged */
    vd_backend_destroy(prof);
}
#endif

int main(void) {
    test_verdict();
    test_no_probe();
    vd_backend *cpu = NULL;
    vd_err err = {0};
    vd_status st = vd_backend_create_cpu(&cpu, 2, &err);
    if (st == VD_ERR_UNSUPPORTED) /* the verdict's checks ran; the probe needs oneDNN */
        return vd_test_failures ? vd_test_result("test_precision_note") : vd_test_skip(VD_TEST_ONEDNN);
    CHECKF(st == VD_OK, "creating cpu: %s", err.msg);
#ifdef VD_HAVE_ONEDNN
    if (cpu) test_cpu(cpu);
    test_profile();
#endif
    vd_backend_destroy(cpu);
    return vd_test_result("test_precision_note");
}
