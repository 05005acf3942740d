/* A stand-in for the CUDA runtime's C API, only what src/dist/comm_nccl.c calls, so that the
 * communicator's logic compiles and runs on a machine without a GPU (tests/test_comm_nccl.c
 * implements it: a log of the calls and a GPU that finishes, hangs or fails on request). */
#ifndef VD_FAKE_CUDA_RUNTIME_API_H
#define VD_FAKE_CUDA_RUNTIME_API_H

/* other names than the real libraries', which a CUDA build also links */
#define cudaSetDevice vd_fake_cudaSetDevice
#define cudaStreamCreateWithFlags vd_fake_cudaStreamCreateWithFlags
#define cudaStreamDestroy vd_fake_cudaStreamDestroy
#define cudaStreamSynchronize vd_fake_cudaStreamSynchronize
#define cudaStreamWaitEvent vd_fake_cudaStreamWaitEvent
#define cudaEventCreateWithFlags vd_fake_cudaEventCreateWithFlags
#define cudaEventDestroy vd_fake_cudaEventDestroy
#define cudaEventRecord vd_fake_cudaEventRecord
#define cudaEventQuery vd_fake_cudaEventQuery
#define cudaGetLastError vd_fake_cudaGetLastError
#define cudaGetErrorString vd_fake_cudaGetErrorString

typedef enum cudaError { cudaSuccess = 0, cudaErrorNotReady = 600, cudaErrorLaunchFailure = 719 } cudaError_t;
typedef struct fake_stream *cudaStream_t;
typedef struct fake_event *cudaEvent_t;

#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02

cudaError_t cudaSetDevice(int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);

#endif
