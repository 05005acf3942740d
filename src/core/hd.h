/* VD_HD marks the small math functions that the CPU code and the CUDA kernels share
 * (__host__ __device__ under nvcc, nothing elsewhere), so a GPU computes with the same
 * source the CPU tests check. */
#ifndef VD_CORE_HD_H
#define VD_CORE_HD_H

#ifdef __CUDACC__
#define VD_HD __host__ __device__
#else
#define VD_HD
#endif

#endif
