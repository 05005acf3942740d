/* The one way oneDNN C API calls are checked: a failing call becomes VD_ERR_INTERNAL with the
 * call's text, function, file:line and oneDNN's status name, and travels up like any vd_status. */
#ifndef VD_BACKEND_CPU_DNNL_CHECK_H
#define VD_BACKEND_CPU_DNNL_CHECK_H

#ifndef VD_HAVE_ONEDNN
#error "dnnl_check.h needs oneDNN: include it only under #ifdef VD_HAVE_ONEDNN"
#endif

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "vdvae/status.h"

/* Maps a dnnl_status_t to a vd_status, filling err on failure. The status arrives already
 * evaluated, so the call runs exactly once whichever macro wraps it. */
static inline vd_status vd_dnnl_status(dnnl_status_t s, vd_err *err, const char *call,
                                       const char *func, const char *file, int line) {
    if (s == dnnl_success)
        return VD_OK;
    return vd_errorf(err, VD_ERR_INTERNAL, "%s:%d: %s: oneDNN call failed with %s: %s", file,
                     line, func, dnnl_status2str(s), call);
}

/* Expression form, for paths that must clean up: if ((st = VD_DNNL(call, err))) goto out; */
#define VD_DNNL(call, err) vd_dnnl_status((call), (err), #call, __func__, __FILE__, __LINE__)

/* Statement form: returns the vd_status from the enclosing function on failure. */
#define VD_DNNL_CHECK(call, err)                                                                   \
    do {                                                                                           \
        vd_status vd_dnnl_st_ = VD_DNNL(call, err);                                                \
        if (vd_dnnl_st_ != VD_OK)                                                                  \
            return vd_dnnl_st_;                                                                    \
    } while (0)

#endif
