/* cuda_runtime.h (agx CUDA emulator) — the subset of the CUDA runtime API and
 * the CUDA kernel language that the engine's .cu files (src/engine/cuda) use, so that those files
 * compile as plain C++ and run on the CPU (-DAGX_CUDA_EMU=ON). Kernels run
 * block by block, each CUDA thread a fiber, with real __syncthreads and warp
 * shuffle semantics (a thread that waits at a barrier its peers never reach is
 * reported as a deadlock). Streams run in order; a host-to-device copy from
 * page-locked memory (cudaMallocHost) is deferred until something waits for it
 * (stream/event/device synchronisation, a later op on its stream), as a GPU's
 * DMA would be, so a pinned buffer rewritten too early uploads the new bytes.
 * Graph capture records the launches and replays them. See
 * tests/cuda_emu/README.md. This is a test tool, not a product path: no speed,
 * x86-64 only. */
#ifndef AGX_CUDA_EMU_RUNTIME_H
#define AGX_CUDA_EMU_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>

/* ---- kernel language ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* Blocks run one at a time on one host thread, so a function-local static is
 * exactly one copy per block, as __shared__ is. */
#define __shared__ static

/* The vector types keep CUDA's alignment: a load through a misaligned one faults
 * on a GPU, and UBSan (the suite's emulator build) reports it here. */
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

namespace agx_emu {
const uint3 &thread_idx();
const uint3 &block_idx();
const dim3 &block_dim();
const dim3 &grid_dim();
void syncthreads();
/* Every lane of the calling warp deposits 8 bytes and reads lane src's. */
uint64_t warp_exchange(uint64_t mine, int src_lane);
int lane_id();
template <typename T> T shfl_from(T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = warp_exchange(b, src);
    T out;
    memcpy(&out, &b, sizeof out);
    return out;
}
} // namespace agx_emu

#define threadIdx (agx_emu::thread_idx())
#define blockIdx (agx_emu::block_idx())
#define blockDim (agx_emu::block_dim())
#define gridDim (agx_emu::grid_dim())
#define __syncthreads() agx_emu::syncthreads()

/* Only full-warp masks are emulated (the code under test uses 0xffffffff). */
template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    (void)mask;
    (void)width;
    return agx_emu::shfl_from(v, agx_emu::lane_id() ^ lane_mask);
}
template <typename T> T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    (void)mask;
    (void)width;
    const int src = agx_emu::lane_id() + (int)delta;
    return agx_emu::shfl_from(v, src < 32 ? src : agx_emu::lane_id());
}
template <typename T> T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    (void)mask;
    (void)width;
    return agx_emu::shfl_from(v, src_lane & 31);
}
inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __expf(float x) { return expf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}
/* IEEE round-to-nearest-even arithmetic that the compiler may not contract
 * into an FMA (the volatile store ends the expression), as the intrinsics promise. */
inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline float __fdiv_rn(float a, float b) {
    volatile float r = a / b;
    return r;
}
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
/* round half to even (the default rounding mode), as cvt.rni */
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
/* sum of the four signed byte products of a and b, plus c */
inline int __dp4a(int a, int b, int c) {
    for (int k = 0; k < 32; k += 8) c += (int)(int8_t)(a >> k) * (int)(int8_t)(b >> k);
    return c;
}

/* ---- runtime API ---- */
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureImplicit = 906,
} cudaError_t;

typedef struct agx_emu_stream *cudaStream_t;
typedef struct agx_emu_graph *cudaGraph_t;
typedef struct agx_emu_graph_exec *cudaGraphExec_t;
typedef struct agx_emu_event *cudaEvent_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocWriteCombined 0x04

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int warpSize;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <typename T> cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaFree(void *p);
/* Page-locked host memory: host memory for the copy-direction checks, but a
 * host-to-device cudaMemcpyAsync from it runs later, as a DMA (see above). */
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **p, size_t bytes);
inline cudaError_t cudaMallocHost(void **p, size_t bytes, unsigned flags) { return cudaHostAlloc(p, bytes, flags); }
template <typename T> cudaError_t cudaMallocHost(T **p, size_t bytes, unsigned flags = 0) {
    return cudaHostAlloc((void **)p, bytes, flags);
}
template <typename T> cudaError_t cudaHostAlloc(T **p, size_t bytes, unsigned flags) {
    return cudaHostAlloc((void **)p, bytes, flags);
}
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int v, size_t n);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
inline cudaError_t cudaEventCreate(cudaEvent_t *e, unsigned flags) { return cudaEventCreateWithFlags(e, flags); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

namespace agx_emu {
/* A kernel launch: runs body once per thread of every block (or records it
 * when s is capturing). Sets the launch error like <<<>>> does. */
void launch(const char *kernel, const char *caller, dim3 grid, dim3 block, cudaStream_t s,
            std::function<void()> body);
/* Runs fn on s: now, or at graph replay when s is capturing (cuBLAS calls). */
cudaError_t on_stream(cudaStream_t s, std::function<void()> fn);
/* True when [p, p+n) lies inside one device allocation. */
bool is_device(const void *p, size_t n);
} // namespace agx_emu

/* kernels.cu launches through this macro in both builds (kernel is a plain
 * name; the arguments are evaluated at launch, as with <<<>>>). */
#define AGX_CUDA_LAUNCH(kernel, grid, block, stream, ...)                                        \
    agx_emu::launch(#kernel, __func__, (grid), (block), (stream), [=] { kernel(__VA_ARGS__); })

#endif
