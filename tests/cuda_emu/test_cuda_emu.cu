/* test_cuda_emu.cu — the CUDA emulator's own checks (built with -DAGX_CUDA_EMU=ON
 * only): the emulator must run correct kernels correctly AND reject the bugs a
 * GPU would punish (divergent barriers, shuffles with exited lanes, host
 * pointers handed to device copies or cuBLAS, launches that replay stale
 * arguments from a graph, a page-locked staging buffer rewritten before the
 * copy that reads it ran, races that only another thread or block order
 * shows), or its passing runs would prove nothing. */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

/* CUDA's alignment of the vector types, so that UBSan reports a load through a
 * misaligned one (a fault on a GPU) in the suite's emulator build */
static_assert(alignof(int4) == 16 && alignof(uint4) == 16 && alignof(float4) == 16, "16-byte vectors");
static_assert(alignof(uint2) == 8 && alignof(__half2) == 4 && alignof(__half) == 2, "small vectors");

static int g_failures = 0;
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failures++;                                                      \
        }                                                                      \
    } while (0)

__global__ void k_block_sum(const float *x, float *out, int n) {
    __shared__ float part[32];
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[(size_t)blockIdx.x * n + i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (unsigned w = 0; w < blockDim.x / 32; w++) t += part[w];
        out[blockIdx.x] = t;
    }
}
__global__ void k_xor_lanes(int *out, int mask) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, mask);
}
__global__ void k_add_value(int *dst, const int *from_device, int value) { *dst += *from_device + value; }
/* out[i] = in[i] + 1 over n ints, one block */
__global__ void k_plus_one(const int *in, int *out, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = in[i] + 1;
}
__global__ void k_divergent_sync(int *out) {
    if (threadIdx.x < 16) __syncthreads(); /* a bug: half the block never arrives */
    out[threadIdx.x] = 1;
}
__global__ void k_shuffle_after_exit(int *out) {
    if (threadIdx.x & 1) return; /* a bug: odd lanes left, the full-mask shuffle waits for them */
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 2);
}

/* Two races a GPU may or may not expose: a shared-memory read with no
 * __syncthreads after the other thread's write, and a block reading what
 * another block of the same launch writes. Both are right in launch order. */
__global__ void k_read_left_neighbour(int *out, int base) {
    __shared__ int s[64];
    s[threadIdx.x] = base + (int)threadIdx.x;
    /* a bug: __syncthreads() missing here */
    out[threadIdx.x] = s[threadIdx.x ? threadIdx.x - 1 : 0];
}
__global__ void k_chain_blocks(int *buf) {
    if (threadIdx.x == 0) buf[blockIdx.x + 1] = buf[blockIdx.x] + 1;
}

static void test_reduction_and_shuffles() {
    const int rows = 3, n = 1000;
    std::vector<float> x((size_t)rows * n);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)(i % 7) - 3.0f;
    float *dx, *dout;
    CHECK(cudaMalloc(&dx, x.size() * sizeof(float)) == cudaSuccess);
    CHECK(cudaMalloc(&dout, rows * sizeof(float)) == cudaSuccess);
    CHECK(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_block_sum, rows, 128, nullptr, dx, dout, n);
    CHECK(cudaGetLastError() == cudaSuccess);
    float got[rows];
    CHECK(cudaMemcpy(got, dout, sizeof got, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (int r = 0; r < rows; r++) {
        float want = 0;
        for (int i = 0; i < n; i++) want += x[(size_t)r * n + i];
        CHECK(got[r] == want);
    }
    int *dl, lanes[64];
    CHECK(cudaMalloc(&dl, sizeof lanes) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_xor_lanes, 1, 64, nullptr, dl, 5);
    CHECK(cudaMemcpy(lanes, dl, sizeof lanes, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (int i = 0; i < 64; i++) CHECK(lanes[i] == ((i & 32) | ((i & 31) ^ 5)));
    cudaFree(dx), cudaFree(dout), cudaFree(dl);
}

/* A graph replays the argument values of capture time and reads device memory at replay time. */
static void test_graph_capture() {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    int *acc, *dev_val;
    CHECK(cudaMalloc(&acc, sizeof(int)) == cudaSuccess && cudaMalloc(&dev_val, sizeof(int)) == cudaSuccess);
    int zero = 0, v = 10;
    CHECK(cudaMemcpy(acc, &zero, sizeof zero, cudaMemcpyHostToDevice) == cudaSuccess);
    CHECK(cudaMemcpy(dev_val, &v, sizeof v, cudaMemcpyHostToDevice) == cudaSuccess);
    int host_value = 1;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_add_value, 1, 1, s, acc, dev_val, host_value);
    cudaGraph_t g;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
    int now = -1;
    CHECK(cudaMemcpy(&now, acc, sizeof now, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(now == 0); /* capturing does not run */
    cudaGraphExec_t ge;
    CHECK(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
    cudaGraphDestroy(g);
    host_value = 1000; /* not seen by the graph */
    v = 20;
    CHECK(cudaMemcpyAsync(dev_val, &v, sizeof v, cudaMemcpyHostToDevice, s) == cudaSuccess); /* seen */
    CHECK(cudaGraphLaunch(ge, s) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(cudaMemcpy(&now, acc, sizeof now, cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(now == 21);
    /* synchronising inside a capture is refused and spoils the capture */
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
    cudaGraphExecDestroy(ge);
    cudaFree(acc), cudaFree(dev_val);
    cudaStreamDestroy(s);
}

static void test_memory_checks() {
    float host[4] = {0}, *d;
    CHECK(cudaMalloc(&d, sizeof host) == cudaSuccess);
    CHECK(cudaMemcpy(host, d, sizeof host, cudaMemcpyHostToDevice) == cudaErrorInvalidValue); /* swapped */
    CHECK(cudaMemcpy(d, host, sizeof host + 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue); /* overrun */
    CHECK(cudaFree(host) == cudaErrorInvalidValue);
    cudaGetLastError();
    AGX_CUDA_LAUNCH(k_xor_lanes, 1, 2048, nullptr, (int *)d, 1); /* > 1024 threads */
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaGetLastError() == cudaSuccess); /* not sticky */
    cudaFree(d);
}

static bool all_equal(const int *v, size_t n, int want) {
    for (size_t i = 0; i < n; i++)
        if (v[i] != want) return false;
    return true;
}
static bool device_holds(const int *d, size_t n, int want) {
    std::vector<int> h(n, -1);
    if (cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost) != cudaSuccess) return false;
    return all_equal(h.data(), n, want);
}

/* Page-locked memory is host memory with its own allocator and its own free. */
static void test_pinned_alloc() {
    int *pin = nullptr, *d = nullptr, host[8] = {0};
    void *raw = nullptr;
    CHECK(cudaMallocHost(&pin, 8 * sizeof(int)) == cudaSuccess && pin);                  /* the T** overload */
    CHECK(cudaHostAlloc(&raw, 100, cudaHostAllocDefault) == cudaSuccess && raw);
    CHECK(((uintptr_t)pin & 255) == 0);
    CHECK(cudaMalloc(&d, 8 * sizeof(int)) == cudaSuccess);
    for (int i = 0; i < 8; i++) pin[i] = i;
    /* pinned counts as host for the direction checks, and its range is checked */
    CHECK(cudaMemcpy(d, pin, 8 * sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess);
    CHECK(cudaMemcpy(pin, d, 8 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
    CHECK(cudaMemcpy(host, pin, sizeof host, cudaMemcpyHostToHost) == cudaSuccess && host[7] == 7);
    CHECK(cudaMemcpy(pin, d, 8 * sizeof(int), cudaMemcpyHostToDevice) == cudaErrorInvalidValue); /* swapped */
    CHECK(cudaMemcpy(d, pin, 8 * sizeof(int), cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(host, pin + 4, sizeof host, cudaMemcpyHostToHost) == cudaErrorInvalidValue); /* overrun */
    /* each allocator's memory goes back only through its own free */
    CHECK(cudaFreeHost(host) == cudaErrorInvalidValue);
    CHECK(cudaFreeHost(d) == cudaErrorInvalidValue);
    CHECK(cudaFree(pin) == cudaErrorInvalidValue);
    CHECK(cudaFreeHost(pin + 1) == cudaErrorInvalidValue);
    void *mapped = &mapped;
    CHECK(cudaHostAlloc(&mapped, 16, 0x2 /* cudaHostAllocMapped: not emulated */) == cudaErrorInvalidValue && !mapped);
    cudaGetLastError();
    CHECK(cudaFreeHost(pin) == cudaSuccess);
    CHECK(cudaFreeHost(pin) == cudaErrorInvalidValue); /* twice */
    cudaGetLastError();
    CHECK(cudaFreeHost(nullptr) == cudaSuccess);
    CHECK(cudaFree(d) == cudaSuccess);
    void *raw2 = nullptr;
    CHECK(cudaMallocHost(&raw2, 0) == cudaSuccess && raw2 && cudaFreeHost(raw2) == cudaSuccess);
    CHECK(cudaMallocHost(&raw2, 16, cudaHostAllocPortable) == cudaSuccess && cudaFreeHost(raw2) == cudaSuccess);
    CHECK(cudaFreeHost(raw) == cudaSuccess);
}

static void test_events() {
    cudaEvent_t e, t;
    CHECK(cudaEventCreate(&e) == cudaSuccess);
    CHECK(cudaEventCreateWithFlags(&t, cudaEventDisableTiming) == cudaSuccess);
    CHECK(cudaEventQuery(e) == cudaSuccess); /* never recorded: complete */
    CHECK(cudaEventSynchronize(e) == cudaSuccess);
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    int *pin, *d;
    CHECK(cudaMallocHost(&pin, 64 * sizeof(int)) == cudaSuccess && cudaMalloc(&d, 64 * sizeof(int)) == cudaSuccess);
    CHECK(cudaMemset(d, 0, 64 * sizeof(int)) == cudaSuccess);
    for (int i = 0; i < 64; i++) pin[i] = 7;
    CHECK(cudaEventRecord(t, s) == cudaSuccess); /* before the copy */
    CHECK(cudaMemcpyAsync(d, pin, 64 * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaEventRecord(e, s) == cudaSuccess);
    CHECK(cudaEventQuery(t) == cudaSuccess);   /* recorded before the copy: done */
    /* elapsed time: only between complete timing events */
    cudaEvent_t t0;
    float ms = -1;
    CHECK(cudaEventCreate(&t0) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, t0, e) == cudaErrorInvalidResourceHandle);   /* t0 never recorded */
    cudaGetLastError();
    CHECK(cudaEventRecord(t0, s) == cudaSuccess);   /* after the pending copy, too */
    CHECK(cudaEventElapsedTime(&ms, e, t0) == cudaErrorNotReady && cudaGetLastError() == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, t, e) == cudaErrorInvalidResourceHandle);   /* t: cudaEventDisableTiming */
    cudaGetLastError();
    CHECK(cudaEventSynchronize(e) == cudaSuccess);
    CHECK(cudaEventQuery(e) == cudaSuccess);
    CHECK(cudaEventElapsedTime(&ms, e, t0) == cudaSuccess && ms >= 0 && ms < 1000);
    CHECK(cudaEventDestroy(t0) == cudaSuccess);
    for (int i = 0; i < 64; i++) pin[i] = 8; /* after the event: the copy has read the 7s */
    CHECK(device_holds(d, 64, 7));
    /* a query of pending work reports "not ready" (without a sticky error), then the copy completes */
    CHECK(cudaMemcpyAsync(d, pin, 64 * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaEventRecord(e, s) == cudaSuccess);
    CHECK(cudaEventQuery(e) == cudaErrorNotReady);
    CHECK(cudaGetLastError() == cudaSuccess);
    int spins = 0;
    while (cudaEventQuery(e) == cudaErrorNotReady && spins < 100) spins++;
    CHECK(cudaEventQuery(e) == cudaSuccess);
    for (int i = 0; i < 64; i++) pin[i] = 9;
    CHECK(device_holds(d, 64, 8));
    /* invalid handles, and events on a capturing stream (not emulated: refused, capture spoiled) */
    CHECK(cudaEventRecord(nullptr, s) == cudaErrorInvalidResourceHandle);
    cudaEvent_t bad;
    CHECK(cudaEventCreateWithFlags(&bad, 0x40) == cudaErrorInvalidValue && !bad);
    cudaGetLastError();
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaEventRecord(e, s) == cudaErrorStreamCaptureUnsupported);
    cudaGraph_t g;
    CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
    /* an event whose stream is destroyed: the stream's work completes, the event stays usable */
    CHECK(cudaMemcpyAsync(d, pin, 64 * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaEventRecord(e, s) == cudaSuccess);
    CHECK(cudaStreamDestroy(s) == cudaSuccess);
    for (int i = 0; i < 64; i++) pin[i] = 10;
    CHECK(cudaEventQuery(e) == cudaSuccess);
    CHECK(device_holds(d, 64, 9));
    CHECK(cudaEventDestroy(e) == cudaSuccess && cudaEventDestroy(t) == cudaSuccess);
    CHECK(cudaEventDestroy(e) == cudaErrorInvalidResourceHandle);
    cudaGetLastError();
    cudaFreeHost(pin), cudaFree(d);
}

enum { CHUNK = 1000, N_CHUNKS = 4 };

/* The weight-upload pattern: two page-locked staging buffers, each reused only
 * after the event recorded behind its last copy has completed. */
static void upload_double_buffered(cudaStream_t s, int *const dst[N_CHUNKS], bool wait_for_events) {
    int *pin[2];
    cudaEvent_t done[2];
    for (int b = 0; b < 2; b++) {
        CHECK(cudaMallocHost(&pin[b], CHUNK * sizeof(int)) == cudaSuccess);
        CHECK(cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming) == cudaSuccess);
    }
    for (int c = 0; c < N_CHUNKS; c++) {
        const int b = c & 1;
        if (wait_for_events) CHECK(cudaEventSynchronize(done[b]) == cudaSuccess);
        for (int i = 0; i < CHUNK; i++) pin[b][i] = 100 + c; /* "memcpy(pinned[b], src, n)" */
        CHECK(cudaMemcpyAsync(dst[c], pin[b], CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
        CHECK(cudaEventRecord(done[b], s) == cudaSuccess);
    }
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    for (int b = 0; b < 2; b++) CHECK(cudaEventDestroy(done[b]) == cudaSuccess && cudaFreeHost(pin[b]) == cudaSuccess);
}

/* A copy from page-locked memory reads its source when the GPU gets to it, not
 * at the call: the emulator must reproduce the staging-buffer race. */
static void test_pinned_copies_are_async() {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    int *dst[N_CHUNKS];
    for (int c = 0; c < N_CHUNKS; c++) CHECK(cudaMalloc(&dst[c], CHUNK * sizeof(int)) == cudaSuccess);

    /* (a) double-buffered with the event waits: every chunk lands intact */
    upload_double_buffered(s, dst, true);
    for (int c = 0; c < N_CHUNKS; c++) CHECK(device_holds(dst[c], CHUNK, 100 + c));
    /* ... without them, chunk c's buffer is refilled with chunk c+2 before its copy ran */
    upload_double_buffered(s, dst, false);
    for (int c = 0; c < N_CHUNKS; c++) CHECK(device_holds(dst[c], CHUNK, 100 + (c < 2 ? c + 2 : c)));

    /* (b) one staging buffer reused for two copies before a sync: the first
     * destination gets the second chunk's bytes (the bug the emulator must show) */
    int *pin;
    CHECK(cudaMallocHost(&pin, CHUNK * sizeof(int)) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 1;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 2;
    CHECK(cudaMemcpyAsync(dst[1], pin, CHUNK * sizeof(int), cudaMemcpyDefault, s) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(device_holds(dst[0], CHUNK, 2));
    CHECK(device_holds(dst[1], CHUNK, 2));
    /* the same with the stream synchronised in between is right */
    for (int i = 0; i < CHUNK; i++) pin[i] = 3;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 4;
    CHECK(cudaMemcpyAsync(dst[1], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(device_holds(dst[0], CHUNK, 3) && device_holds(dst[1], CHUNK, 4));

    /* (c) a kernel on the stream runs after the queued copy, and sees its data */
    for (int i = 0; i < CHUNK; i++) pin[i] = 5;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_plus_one, 1, 256, s, dst[0], dst[1], CHUNK);
    CHECK(cudaGetLastError() == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 6; /* after the launch: the copy had to run before it */
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(device_holds(dst[1], CHUNK, 6));
    /* as do a later memset and a device-to-device copy on that stream, in order */
    CHECK(cudaMemcpyAsync(dst[2], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    CHECK(cudaMemcpyAsync(dst[3], dst[2], CHUNK * sizeof(int), cudaMemcpyDeviceToDevice, s) == cudaSuccess);
    CHECK(cudaMemsetAsync(dst[2], 0, CHUNK * sizeof(int), s) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 7;
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(device_holds(dst[3], CHUNK, 6) && device_holds(dst[2], CHUNK, 0));

    /* another stream is not ordered after the copy unless it waits for its event */
    cudaStream_t s2;
    cudaEvent_t e;
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking) == cudaSuccess && cudaEventCreate(&e) == cudaSuccess);
    CHECK(cudaMemset(dst[1], 0, CHUNK * sizeof(int)) == cudaSuccess);
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess); /* 7s */
    AGX_CUDA_LAUNCH(k_plus_one, 1, 256, s2, dst[0], dst[1], CHUNK); /* a race: reads the 5s of (c) */
    CHECK(cudaEventRecord(e, s) == cudaSuccess);
    CHECK(cudaStreamWaitEvent(s2, e, 0) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_plus_one, 1, 256, s2, dst[0], dst[2], CHUNK); /* ordered: reads the 7s */
    CHECK(cudaStreamSynchronize(s2) == cudaSuccess);
    CHECK(device_holds(dst[1], CHUNK, 6));
    CHECK(device_holds(dst[2], CHUNK, 8));

    /* cudaFreeHost completes the copies that read the buffer, before freeing it */
    for (int i = 0; i < CHUNK; i++) pin[i] = 11;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s2) == cudaSuccess);
    CHECK(cudaFreeHost(pin) == cudaSuccess);
    CHECK(device_holds(dst[0], CHUNK, 11));

    /* the legacy stream: a queued copy on stream 0 is complete for a later synchronous copy */
    CHECK(cudaMallocHost(&pin, CHUNK * sizeof(int)) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 12;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 13; /* too early: uploads the 13s */
    CHECK(device_holds(dst[0], CHUNK, 13));
    /* ... and a blocking stream's queued copy is complete for a later op on the legacy stream */
    cudaStream_t sb;
    CHECK(cudaStreamCreate(&sb) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 20;
    CHECK(cudaMemcpyAsync(dst[0], pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, sb) == cudaSuccess);
    AGX_CUDA_LAUNCH(k_plus_one, 1, 256, nullptr, dst[0], dst[1], CHUNK);
    for (int i = 0; i < CHUNK; i++) pin[i] = 30;
    CHECK(cudaStreamSynchronize(nullptr) == cudaSuccess);
    CHECK(device_holds(dst[1], CHUNK, 21));
    /* cudaFree synchronises: a copy queued into the freed buffer ran before (ASan would see it otherwise) */
    int *tmp;
    CHECK(cudaMalloc(&tmp, CHUNK * sizeof(int)) == cudaSuccess);
    CHECK(cudaMemcpyAsync(tmp, pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, sb) == cudaSuccess);
    CHECK(cudaFree(tmp) == cudaSuccess);
    CHECK(cudaStreamDestroy(sb) == cudaSuccess);

    cudaEventDestroy(e);
    cudaStreamDestroy(s2);
    cudaStreamDestroy(s);
    cudaFreeHost(pin);
    for (int c = 0; c < N_CHUNKS; c++) cudaFree(dst[c]);
}

/* A pageable source is staged during the call: rewriting it afterwards is safe. */
static void test_pageable_copies_are_immediate() {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
    std::vector<int> host(CHUNK, 21);
    int *d;
    CHECK(cudaMalloc(&d, CHUNK * sizeof(int)) == cudaSuccess);
    CHECK(cudaMemcpyAsync(d, host.data(), CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    for (int &v : host) v = 22;
    CHECK(cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(device_holds(d, CHUNK, 21));
    /* a copy captured in a graph still reads its (pinned) source at replay */
    int *pin;
    CHECK(cudaMallocHost(&pin, CHUNK * sizeof(int)) == cudaSuccess);
    for (int i = 0; i < CHUNK; i++) pin[i] = 23;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaMemcpyAsync(d, pin, CHUNK * sizeof(int), cudaMemcpyHostToDevice, s) == cudaSuccess);
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
    CHECK(device_holds(d, CHUNK, 21)); /* capturing does not copy */
    for (int i = 0; i < CHUNK; i++) pin[i] = 24;
    CHECK(cudaGraphLaunch(ge, s) == cudaSuccess && cudaStreamSynchronize(s) == cudaSuccess);
    CHECK(device_holds(d, CHUNK, 24));
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    cudaFreeHost(pin), cudaFree(d);
    cudaStreamDestroy(s);
}

/* C = A^T B in cuBLAS's column-major terms, as forward.cu calls it. */
static void test_gemm() {
    const int m = 5, n = 3, k = 40;
    std::vector<__half> A((size_t)m * k), B((size_t)n * k);
    for (size_t i = 0; i < A.size(); i++) A[i] = __half((float)(i % 5) * 0.25f);
    for (size_t i = 0; i < B.size(); i++) B[i] = __half((float)(i % 3) - 1.0f);
    __half *dA, *dB;
    float *dC;
    CHECK(cudaMalloc(&dA, A.size() * 2) == cudaSuccess && cudaMalloc(&dB, B.size() * 2) == cudaSuccess);
    CHECK(cudaMalloc(&dC, sizeof(float) * m * n) == cudaSuccess);
    cudaMemcpy(dA, A.data(), A.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dB, B.data(), B.size() * 2, cudaMemcpyHostToDevice);
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const float one = 1, zero = 0;
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_16F, k, dB, CUDA_R_16F, k, &zero, dC,
                       CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    float C[m * n];
    cudaMemcpy(C, dC, sizeof C, cudaMemcpyDeviceToHost);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float want = 0;
            for (int l = 0; l < k; l++) want += (float)A[(size_t)i * k + l] * (float)B[(size_t)j * k + l];
            CHECK(C[i + j * m] == want);
        }
    /* lda smaller than the rows of A as stored, and a host operand, are refused */
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_16F, k - 1, dB, CUDA_R_16F, k, &zero,
                       dC, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A.data(), CUDA_R_16F, k, dB, CUDA_R_16F, k, &zero,
                       dC, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_EXECUTION_FAILED);
    /* m rows of C at ldc = m, but n columns overrun a buffer one column short */
    float *dshort;
    CHECK(cudaMalloc(&dshort, sizeof(float) * m * (n - 1)) == cudaSuccess);
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, dA, CUDA_R_16F, k, dB, CUDA_R_16F, k, &zero,
                       dshort, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_EXECUTION_FAILED);
    cublasDestroy(h);
    cudaFree(dA), cudaFree(dB), cudaFree(dC), cudaFree(dshort);
}

/* Launch order hides both races; AGX_CUDA_EMU_ORDER=reverse|random exposes them. */
static void test_run_orders() {
    int *d;
    CHECK(cudaMalloc(&d, 65 * sizeof(int)) == cudaSuccess);
    static const char *const orders[] = {"forward", "reverse", "random"};
    for (int o = 0; o < 3; o++) {
        setenv("AGX_CUDA_EMU_ORDER", orders[o], 1);
        int out[64], wrong_threads = 0, wrong_blocks = 0;
        AGX_CUDA_LAUNCH(k_read_left_neighbour, 1, 64, nullptr, d, 1000 * (o + 1));
        CHECK(cudaMemcpy(out, d, sizeof out, cudaMemcpyDeviceToHost) == cudaSuccess);
        for (int i = 1; i < 64; i++) wrong_threads += out[i] != 1000 * (o + 1) + i - 1;
        int chain[65] = {0};
        CHECK(cudaMemcpy(d, chain, sizeof chain, cudaMemcpyHostToDevice) == cudaSuccess);
        AGX_CUDA_LAUNCH(k_chain_blocks, 64, 32, nullptr, d);
        CHECK(cudaMemcpy(chain, d, sizeof chain, cudaMemcpyDeviceToHost) == cudaSuccess);
        for (int i = 1; i <= 64; i++) wrong_blocks += chain[i] != i;
        if (o == 0) {
            CHECK(wrong_threads == 0 && wrong_blocks == 0);
        } else {
            CHECK(wrong_threads > 0);
            CHECK(wrong_blocks > 0);
        }
        printf("  order %s: missing __syncthreads -> %d wrong thread(s), block chain -> %d wrong block(s)\n",
               orders[o], wrong_threads, wrong_blocks);
    }
    unsetenv("AGX_CUDA_EMU_ORDER");
    CHECK(cudaGetLastError() == cudaSuccess);
    cudaFree(d);
}

/* A kernel bug that hangs or corrupts a GPU is a launch failure here (in a
 * child process: the failure is sticky, like a GPU context after a fault). */
static void expect_launch_failure(void (*kernel)(int *), const char *what) {
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid == 0) {
        int *d;
        if (cudaMalloc(&d, 64 * sizeof(int)) != cudaSuccess) _exit(2);
        AGX_CUDA_LAUNCH(kernel, 1, 64, nullptr, d);
        const bool failed = cudaGetLastError() == cudaErrorLaunchFailure;
        const bool sticky = cudaDeviceSynchronize() == cudaErrorLaunchFailure;
        _exit(failed && sticky ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        fprintf(stderr, "%s was not reported as a launch failure\n", what);
        g_failures++;
    } else {
        printf("  %s: reported as a deadlock (as expected)\n", what);
    }
}

int main() {
    test_reduction_and_shuffles();
    test_graph_capture();
    test_memory_checks();
    test_gemm();
    test_pinned_alloc();
    test_events();
    test_pinned_copies_are_async();
    test_pageable_copies_are_immediate();
    test_run_orders();
    expect_launch_failure(k_divergent_sync, "__syncthreads in divergent code");
    expect_launch_failure(k_shuffle_after_exit, "full-mask shuffle after lanes exited");
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "ok", g_failures);
    return g_failures ? 1 : 0;
}
