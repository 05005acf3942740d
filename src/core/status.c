/* vd_err helpers: formatting and prefixing error messages, status names and exit codes. */
#include "vdvae/status.h"

#include <stdio.h>
#include <string.h>

vd_status vd_errorf(vd_err *err, vd_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

vd_status vd_err_prefix(vd_err *err, const char *fmt, ...) {
    if (!err) return VD_ERR_INTERNAL;
    char old[VD_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* The old message follows the new context, cut if the two do not fit. */
    if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
        size_t room = sizeof err->msg - (size_t)n - 2;
        err->msg[n] = ':';
        err->msg[n + 1] = ' ';
        size_t len = strnlen(old, room);
        memcpy(err->msg + n + 2, old, len);
        err->msg[n + 2 + len] = 0;
    }
    return err->code;
}

const char *vd_status_str(vd_status s) {
    switch (s) {
    case VD_OK: return "ok";
    case VD_ERR_INVALID: return "invalid input";
    case VD_ERR_IO: return "i/o error";
    case VD_ERR_NOMEM: return "out of memory";
    case VD_ERR_UNSUPPORTED: return "unsupported";
    case VD_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

/* Bad input, an unreadable or unwritable file (a path the user gave, a full disk) and an
 * unsupported request are the user's to fix: 2. Out of memory and internal failures: 1. */
int vd_status_exit_code(vd_status s) {
    if (s == VD_OK) return 0;
    return s == VD_ERR_INVALID || s == VD_ERR_IO || s == VD_ERR_UNSUPPORTED ? 2 : 1;
}
