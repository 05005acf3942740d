/* bfloat16 rounding as both CPU backends and their tests define it: round to nearest, ties to
 * even, exactly what the AVX-512 instruction VCVTNEPS2BF16 does, so the scalar oracle, the
 * portable fallback and the hardware path give the same bits for every float:
 * - zero and denormal inputs become a zero of the same sign (the instruction treats denormal
 *   inputs as zero and consults no MXCSR);
 * - NaN keeps its sign and top mantissa bits and is made quiet (bit 6 of the bf16 set);
 * - infinities stay infinite; finite values that round past the largest bf16 become inf.
 * A bf16 is the top half of a float, so a rounded value is also exactly a float. */
#ifndef VD_BACKEND_BF16_H
#define VD_BACKEND_BF16_H

#include <stdint.h>
#include <string.h>

#include "core/hd.h"

VD_HD static inline uint16_t vd_bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* zero, denormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* ties go to the even bf16; carries reach the exponent */
    return (uint16_t)(u >> 16);
}

VD_HD static inline float vd_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f rounded to the nearest bf16, held in a float. */
VD_HD static inline float vd_bf16_round(float f) {
    return vd_bf16_to_f32(vd_bf16_from_f32(f));
}

#endif
