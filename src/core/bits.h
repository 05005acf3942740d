/* Bit patterns of floats and doubles (and back) without aliasing undefined behaviour, for the
 * branch-free math in the generator and the cpu backend. */
#ifndef VD_CORE_BITS_H
#define VD_CORE_BITS_H

#include <stdint.h>
#include <string.h>

#include "core/hd.h"

VD_HD static inline uint32_t vd_f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
VD_HD static inline float vd_u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
VD_HD static inline uint64_t vd_d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
VD_HD static inline double vd_u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

#endif
