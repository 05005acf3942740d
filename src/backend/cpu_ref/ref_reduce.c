/* cpu_ref reductions: the sum of squares behind the global gradient norm, summed in double
 * so the oracle's norm does not depend on the order of a parallel reduction. */
#include "backend/cpu_ref/ref.h"

void vd_ref_sum_squares(vd_backend *be, const float *x, size_t n, float *out) {
    REF_REQUIRE(be, out && (x || n == 0), "sum_squares: %s is missing", out ? "x" : "out");
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    *out = (float)sum;
}
