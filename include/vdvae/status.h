/* Errors as values: every fallible call returns a vd_status and fills a vd_err with a
 * human message that names the file, line/offset or key at fault. Only the CLI exits. */
#ifndef VDVAE_STATUS_H
#define VDVAE_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vd_status {
    VD_OK = 0,
    VD_ERR_INVALID,     /* bad user input: config, flags, data or checkpoint files (exit 2) */
    VD_ERR_IO,          /* a file could not be opened, read or written */
    VD_ERR_NOMEM,       /* an allocation failed or a request would exhaust memory */
    VD_ERR_UNSUPPORTED, /* valid request this build or backend cannot do (yet) */
    VD_ERR_INTERNAL,    /* a library we call failed unexpectedly (oneDNN, CUDA, ...) */
} vd_status;

#define VD_ERR_MSG_MAX 1024

/* The longest file path we build or accept, with its NUL (Linux's PATH_MAX). */
#ifndef VD_PATH_MAX
#define VD_PATH_MAX 4096
#endif

/* The context of the last failure; callers own it, usually on the stack. */
typedef struct vd_err {
    vd_status code;
    char msg[VD_ERR_MSG_MAX];
} vd_err;

/* Fill *err (if not NULL) with code and a printf-style message; returns code. */
vd_status vd_errorf(vd_err *err, vd_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message with more context ("while reading X: ..."); returns err->code. */
vd_status vd_err_prefix(vd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *vd_status_str(vd_status s);
/* The CLI's exit code for a status: 2 for bad input and file errors, 1 otherwise, 0 for VD_OK. */
int vd_status_exit_code(vd_status s);

#ifdef __cplusplus
}
#endif
#endif
