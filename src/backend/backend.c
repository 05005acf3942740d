/* What every backend shares: the sticky first-failure record, the precision setting and
 * destruction. */
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
