/* test_cuda_emu.cu — the CUDA emulator's own checks (built with -DAGX_CUDA_EMU=ON
 * only): the emulator must run correct kernels correctly AND reject the bugs a
 * GPU would punish (divergent barriers, shuffles with exited lanes, host
 * pointers handed to device copies or cuBLAS, launches that replay stale
 * arguments from a graph), or its passing runs would prove nothing. */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

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
__global__ void k_divergent_sync(int *out) {
    if (threadIdx.x < 16) __syncthreads(); /* a bug: half the block never arrives */
    out[threadIdx.x] = 1;
}
__global__ void k_shuffle_after_exit(int *out) {
    if (threadIdx.x & 1) return; /* a bug: odd lanes left, the full-mask shuffle waits for them */
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 2);
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
    expect_launch_failure(k_divergent_sync, "__syncthreads in divergent code");
    expect_launch_failure(k_shuffle_after_exit, "full-mask shuffle after lanes exited");
    printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "ok", g_failures);
    return g_failures ? 1 : 0;
}
