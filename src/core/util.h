/* Small system helpers shared across modules: complete writes and a monotonic clock. */
#ifndef VD_CORE_UTIL_H
#define VD_CORE_UTIL_H

#include <stddef.h>

/* write(2) until all n bytes are out, retrying on EINTR; 0 or an errno value. */
int vd_write_all(int fd, const void *p, size_t n);
/* Seconds on the monotonic clock (for durations only). */
double vd_now_seconds(void);

#endif
