/* A stand-in for NCCL's API, only what src/dist/comm_nccl.c calls (see cuda_runtime_api.h
 * beside it; tests/test_comm_nccl.c implements it). */
#ifndef VD_FAKE_NCCL_H
#define VD_FAKE_NCCL_H

/* other names than the real libraries', which a CUDA build also links */
#define ncclGetUniqueId vd_fake_ncclGetUniqueId
#define ncclCommInitRank vd_fake_ncclCommInitRank
#define ncclAllReduce vd_fake_ncclAllReduce
#define ncclCommGetAsyncError vd_fake_ncclCommGetAsyncError
#define ncclCommAbort vd_fake_ncclCommAbort
#define ncclCommDestroy vd_fake_ncclCommDestroy
#define ncclGetErrorString vd_fake_ncclGetErrorString
#define ncclGetLastError vd_fake_ncclGetLastError

#include <stddef.h>

#include "cuda_runtime_api.h"

typedef enum {
    ncclSuccess = 0, ncclUnhandledCudaError = 1, ncclSystemError = 2, ncclInternalError = 3,
    ncclInvalidArgument = 4, ncclInvalidUsage = 5, ncclRemoteError = 6, ncclInProgress = 7
} ncclResult_t;
typedef enum { ncclFloat = 7 } ncclDataType_t;
typedef enum { ncclSum = 0 } ncclRedOp_t;
typedef struct fake_nccl_comm *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;

ncclResult_t ncclGetUniqueId(ncclUniqueId *id);
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank);
ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async);
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
const char *ncclGetErrorString(ncclResult_t r);
const char *ncclGetLastError(ncclComm_t comm);

#endif
