/* What every backend shares: the sticky first-failure record, the precision setting and its
 * note (the verdict on a measured probe), and destruction. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "backend/ops.h"

void vd_backend_fail(vd_backend *be, vd_status code, const char *fmt, ...) {
    if (be->status != VD_OK) return;
    va_list ap;
    va_start(ap, fmt);
    be->status = code;
    be->err.code = code;
    vsnprintf(be->err.msg, sizeof be->err.msg, fmt, ap);
    va_end(ap);
}

bool vd_backend_tensor_ok(vd_backend *be, const char *who, const char *op, const char *name,
                          const vd_tensor *t) {
    if (t && t->data && t->n > 0 && t->h > 0 && t->w > 0 && t->c > 0 && t->ld >= t->c) return true;
    if (!t)
        vd_backend_fail(be, VD_ERR_INVALID, "%s%s: tensor %s is missing", who, op, name);
    else
        vd_backend_fail(be, VD_ERR_INVALID, "%s%s: tensor %s [%d,%d,%d,%d] ld %lld is not valid", who, op,
                        name, t->n, t->h, t->w, t->c, (long long)t->ld);
    return false;
}

bool vd_backend_same_shape(vd_backend *be, const char *who, const char *op, const vd_tensor *a,
                           const vd_tensor *b) {
    if (a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c) return true;
    vd_backend_fail(be, VD_ERR_INVALID, "%s%s: shapes [%d,%d,%d,%d] and [%d,%d,%d,%d] differ", who, op,
                    a->n, a->h, a->w, a->c, b->n, b->h, b->w, b->c);
    return false;
}

vd_status vd_backend_check(vd_backend *be, vd_err *err) {
    if (be->status == VD_OK) return VD_OK;
    if (err) *err = be->err;
    return be->status;
}

void vd_backend_destroy(vd_backend *be) {
    if (be) be->i->destroy(be);
}

vd_status vd_backend_set_precision(vd_backend *be, vd_precision p, vd_err *err) {
    if (be->i->set_precision) return be->i->set_precision(be, p, err);
    if (p == VD_PREC_FP32) return VD_OK;
    return vd_errorf(err, VD_ERR_UNSUPPORTED,
                     "backend %s: run.precision '%s' is not supported (this backend computes "
                     "in fp32 only)",
                     be->i->name, p == VD_PREC_BF16 ? "bf16" : "unknown");
}

const char *vd_backend_precision_note(vd_backend *be) {
    return be && be->i->precision_note ? be->i->precision_note(be) : NULL;
}

bool vd_precision_verdict(const vd_precision_probe *p, char *note, size_t cap) {
    double f = p->fp32_seconds, b = p->bf16_seconds;
    if (!(f > 0 && b > 0 && isfinite(f) && isfinite(b))) return false;
    double ratio = b / f;
    if (ratio <= VD_BF16_SLOWER_RATIO) return false;
    /* " (oneDNN <kernel>, <isa>)", either part alone, or nothing */
    char why[160] = "";
    bool k = p->kernel && p->kernel[0], i = p->isa && p->isa[0];
    if (k || i)
        snprintf(why, sizeof why, " (%s%s%s%s)", k ? "oneDNN " : "", k ? p->kernel : "",
                 k && i ? ", " : "", i ? p->isa : "");
    snprintf(note, cap,
             "bf16 convolutions measured %.2fx slower than fp32 on this CPU%s; consider "
             "run.precision='fp32'",
             ratio, why);
    return true;
}

void vd_backend_allow_tf32(vd_backend *be, bool on) {
    if (be->i->allow_tf32) be->i->allow_tf32(be, on);
}

bool vd_backend_memory(vd_backend *be, size_t *now, size_t *peak) {
    if (!be->i->memory) return false;
    be->i->memory(be, now, peak);
    return true;
}

#ifndef VD_HAVE_CUDA
vd_status vd_backend_create_cuda(vd_backend **out, int device, vd_err *err) {
    (void)device;
    *out = NULL;
    return vd_errorf(err, VD_ERR_UNSUPPORTED,
                     "backend 'cuda' is not in this build (configure with -DVD_CUDA=ON)");
}

bool vd_cuda_available(void) {
    return false;
}

int vd_cuda_device_count(void) {
    return 0;
}

bool vd_backend_cuda_stream(vd_backend *be, int *device, void **stream) {
    (void)be, (void)device, (void)stream;
    return false;
}
#endif
