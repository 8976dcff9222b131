/* kernels.cu — the CUDA kernels of the native engine: block decoders for the
 * GGUF weight types (bit-exact mirrors of src/engine/quant.c's dequantizers),
 * quantized matrix-vector products, dequantize-to-f16 for cuBLAS GEMMs,
 * embedding lookup, RMSNorm, bias + RoPE + KV-cache store, attention over the
 * cache and SwiGLU.
 *
 * UNVERIFIED AT RUN TIME: this file was written and compiled (sm_90 + PTX 7.0)
 * on a machine without a GPU. Kernels are kept simple so that they can be
 * checked by reading them against quant.c / ops.c; tests/conformance/
 * test_model_cuda.c and scripts/gpu-check.sh validate them on a GPU.
 *
 * Decoding unit: 8 consecutive elements ("unit" u of a row = elements
 * 8u..8u+7), which always lie inside one 32-element chunk: a q4_0/q5_0/q8_0
 * block, or a 32-element sub-block of a 256-element K-quant super-block. */
#include "engine/cuda/kernels.h"

#include <cuda_bf16.h>
#include <string.h>

#include "engine/cuda/agx_cuda.h"

/* Every launch goes through this macro so that the same source also runs on
 * the CPU under the CUDA emulator (tests/cuda_emu), which defines it itself.
 * kernel is a plain name (templates: take a pointer first, `auto k = f<T>;`). */
#ifndef AGX_CUDA_LAUNCH
#define AGX_CUDA_LAUNCH(kernel, grid, block, stream, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

namespace agxc {

enum {
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q5_0 = 6, T_Q8_0 = 8,
    T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30
};

bool type_supported(uint32_t type) {
    switch (type) {
    case T_F32: case T_F16: case T_BF16: case T_Q4_0: case T_Q5_0: case T_Q8_0:
    case T_Q4_K: case T_Q5_K: case T_Q6_K: return true;
    default: return false;
    }
}

/* Blocks start at even offsets (every block size is even and device
 * allocations are 256-byte aligned), so 16-bit loads are aligned. */
#define HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define UNROLL _Pragma("unroll")
#else
#define UNROLL
#endif

/* The decoders are __host__ __device__ so that the CPU build of a CUDA
 * configuration can check them bit-exactly against quant.c without a GPU
 * (agx_cuda_dequant_row_host, tests/unit/test_device.c). */
HD float ld_h(const uint8_t *p) {
    return __half2float(__ushort_as_half(*(const unsigned short *)p));
}
HD float bits_float(unsigned u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* 6-bit scale and min j of a q4_K/q5_K block (ggml get_scale_min_k4). */
HD void scale_min_k4(int j, const uint8_t *q, float *d, float *m) {
    if (j < 4) {
        *d = (float)(q[j] & 63);
        *m = (float)(q[j + 4] & 63);
    } else {
        *d = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* v[i] = element 8u+i of the row. */
template <int T> HD void dec8(const uint8_t *row, int u, float v[8]);

template <> HD void dec8<T_F32>(const uint8_t *row, int u, float v[8]) {
    const float4 *p = (const float4 *)(row + (size_t)u * 32);
    const float4 a = p[0], b = p[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
template <> HD void dec8<T_F16>(const uint8_t *row, int u, float v[8]) {
    const __half *p = (const __half *)(row + (size_t)u * 16);
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = __half2float(p[i]);
}
template <> HD void dec8<T_BF16>(const uint8_t *row, int u, float v[8]) {
    const unsigned short *p = (const unsigned short *)(row + (size_t)u * 16);
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = bits_float((unsigned)p[i] << 16);
}
/* q4_0: {f16 d; u8 qs[16]}: x[j] = (qs[j]&15)-8, x[j+16] = (qs[j]>>4)-8, times d. */
template <> HD void dec8<T_Q4_0>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 2) * 18;
    const int p = u & 3;
    const float d = ld_h(b);
    const uint8_t *qs = b + 2 + 8 * (p & 1);
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = (float)((p < 2 ? (qs[i] & 0x0F) : (qs[i] >> 4)) - 8) * d;
}
/* q5_0: {f16 d; u8 qh[4]; u8 qs[16]}: the 5th bit of element j is bit j of qh. */
template <> HD void dec8<T_Q5_0>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 2) * 22;
    const int p = u & 3;
    const float d = ld_h(b);
    const uint32_t qh = (uint32_t)b[2] | ((uint32_t)b[3] << 8) | ((uint32_t)b[4] << 16) | ((uint32_t)b[5] << 24);
    const uint8_t *qs = b + 6 + 8 * (p & 1);
    UNROLL
    for (int i = 0; i < 8; i++) {
        const int j = 8 * p + i;
        const int nib = p < 2 ? (qs[i] & 0x0F) : (qs[i] >> 4);
        v[i] = (float)((nib | (int)(((qh >> j) & 1u) << 4)) - 16) * d;
    }
}
/* q8_0: {f16 d; i8 qs[32]} */
template <> HD void dec8<T_Q8_0>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 2) * 34;
    const float d = ld_h(b);
    const int8_t *qs = (const int8_t *)(b + 2 + 8 * (u & 3));
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = (float)qs[i] * d;
}
/* q4_K: {f16 d, dmin; u8 scales[12]; u8 qs[128]}; sub-block c (0..7) uses
 * qs[32*(c/2) ..] low nibbles (c even) or high nibbles (c odd), scale/min c. */
template <> HD void dec8<T_Q4_K>(const uint8_t *row, int u, float v[8]) {
    const int c = (u >> 2) & 7, p = u & 3;
    const uint8_t *b = row + (size_t)(u >> 5) * 144;
    const float d = ld_h(b), dmin = ld_h(b + 2);
    float sc, mn;
    scale_min_k4(c, b + 4, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    /* 8 quant bytes in one 8-byte load: blocks are 144 bytes (a multiple of 16) and qs
     * starts at 16 + 32*(c/2) + 8p, so the load is aligned */
    const uint2 w = *(const uint2 *)(b + 16 + 32 * (c >> 1) + 8 * p);
    const int shift = (c & 1) ? 4 : 0;
    UNROLL
    for (int i = 0; i < 8; i++) {
        const uint32_t word = i < 4 ? w.x : w.y;
        v[i] = d1 * (float)((word >> (8 * (i & 3) + shift)) & 0xF) - m1;
    }
}
/* q5_K: {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}; as q4_K plus
 * 16 * bit c of qh[l] (l = element index inside the 32-element sub-block). */
template <> HD void dec8<T_Q5_K>(const uint8_t *row, int u, float v[8]) {
    const int c = (u >> 2) & 7, p = u & 3;
    const uint8_t *b = row + (size_t)(u >> 5) * 176;
    const float d = ld_h(b), dmin = ld_h(b + 2);
    float sc, mn;
    scale_min_k4(c, b + 4, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    /* 176-byte blocks (16 x 11): qh + 8p and qs + 32*(c/2) + 8p are 8-byte aligned */
    const uint2 h = *(const uint2 *)(b + 16 + 8 * p);
    const uint2 w = *(const uint2 *)(b + 48 + 32 * (c >> 1) + 8 * p);
    const int shift = (c & 1) ? 4 : 0;
    UNROLL
    for (int i = 0; i < 8; i++) {
        const uint32_t word = i < 4 ? w.x : w.y, hword = i < 4 ? h.x : h.y;
        const int q = (int)((word >> (8 * (i & 3) + shift)) & 0xF) + (((hword >> (8 * (i & 3) + c)) & 1) ? 16 : 0);
        v[i] = d1 * (float)q - m1;
    }
}
/* q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}; sub-block c: half
 * h = c/4, s = c%4: low bits from ql[64h + 32*(s&1) + l] (high nibble when
 * s >= 2), 2 high bits from qh[32h + l] >> 2s, scale scales[8h + l/16 + 2s]. */
template <> HD void dec8<T_Q6_K>(const uint8_t *row, int u, float v[8]) {
    const int c = (u >> 2) & 7, p = u & 3;
    const int h = c >> 2, s = c & 3;
    const uint8_t *b = row + (size_t)(u >> 5) * 210;
    const float d = ld_h(b + 208);
    const int l0 = 8 * p;
    const uint8_t *ql = b + 64 * h + 32 * (s & 1) + l0;
    const uint8_t *qh = b + 128 + 32 * h + l0;
    const float sc = (float)((const int8_t *)(b + 192))[8 * h + (l0 >> 4) + 2 * s];
    UNROLL
    for (int i = 0; i < 8; i++) {
        const int lo = s >= 2 ? (ql[i] >> 4) : (ql[i] & 0xF);
        const int q = (lo | (((qh[i] >> (2 * s)) & 3) << 4)) - 32;
        v[i] = d * sc * (float)q;
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

enum { MV_WARPS = 4 };

/* One warp per output row; lanes stride over the row's 8-element units. Each
 * launch covers up to NT tokens (blockIdx.y = group of NT): a unit is decoded
 * once and used for every token of the group, so a short batch (a forced span
 * of the grammar) reads the weights once per NT tokens, not once per token. */
template <int T, int NT>
__global__ void __launch_bounds__(MV_WARPS * 32)
k_matvec(const uint8_t *__restrict__ W, size_t row_bytes, int n_rows, int n_units, const float *__restrict__ x,
         int n_tok, float *__restrict__ y, int y_ld) {
    const int lane = threadIdx.x & 31;
    const int r = blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    if (r >= n_rows) return;
    const int t0 = blockIdx.y * NT;
    const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
    const uint8_t *row = W + (size_t)r * row_bytes;
    const size_t x_ld = (size_t)n_units * 8;
    const float *xt = x + (size_t)t0 * x_ld;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int u = lane; u < n_units; u += 32) {
        float v[8];
        dec8<T>(row, u, v);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t < nt) {
                const float *xu = xt + t * x_ld + 8 * u;
                const float4 a = *(const float4 *)xu, b = *(const float4 *)(xu + 4);
                acc[t] += v[0] * a.x + v[1] * a.y + v[2] * a.z + v[3] * a.w + v[4] * b.x + v[5] * b.y + v[6] * b.z +
                          v[7] * b.w;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        if (t < nt) {
            const float s = warp_sum(acc[t]);
            if (lane == 0) y[(size_t)(t0 + t) * (size_t)y_ld + r] = s;
        }
    }
}
/* One thread per 8-element unit of n_rows rows: f16 (for GEMMs) or f32 rows
 * picked by index (embedding: row = tokens[t]). */
template <int T>
__global__ void k_dequant_f16(const uint8_t *__restrict__ W, size_t row_bytes, int n_rows, int n_units,
                              __half *__restrict__ out) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_rows * (size_t)n_units) return;
    const size_t r = i / (size_t)n_units;
    const int u = (int)(i % (size_t)n_units);
    float v[8];
    dec8<T>(W + r * row_bytes, u, v);
    __half2 h[4];
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    *(uint4 *)(out + r * (size_t)n_units * 8 + (size_t)u * 8) = *(const uint4 *)h;
}

template <int T>
__global__ void k_embed(const uint8_t *__restrict__ W, size_t row_bytes, int n_units,
                        const int32_t *__restrict__ tokens,
                        int n_tok, float *__restrict__ x) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_tok * (size_t)n_units) return;
    const int t = (int)(i / (size_t)n_units), u = (int)(i % (size_t)n_units);
    float v[8];
    dec8<T>(W + (size_t)tokens[t] * row_bytes, u, v);
    float *o = x + (size_t)t * n_units * 8 + (size_t)u * 8;
#pragma unroll
    for (int k = 0; k < 8; k++) o[k] = v[k];
}

/* Runtime type -> template instance. */
#define AGX_TYPE_DISPATCH(type, F, ...)                                \
    switch (type) {                                                    \
    case T_F32: F<T_F32> __VA_ARGS__; break;                           \
    case T_F16: F<T_F16> __VA_ARGS__; break;                           \
    case T_BF16: F<T_BF16> __VA_ARGS__; break;                         \
    case T_Q4_0: F<T_Q4_0> __VA_ARGS__; break;                         \
    case T_Q5_0: F<T_Q5_0> __VA_ARGS__; break;                         \
    case T_Q8_0: F<T_Q8_0> __VA_ARGS__; break;                         \
    case T_Q4_K: F<T_Q4_K> __VA_ARGS__; break;                         \
    case T_Q5_K: F<T_Q5_K> __VA_ARGS__; break;                         \
    case T_Q6_K: F<T_Q6_K> __VA_ARGS__; break;                         \
    default: return cudaErrorInvalidValue;                             \
    }

/* k_matvec for one token (decode) and for groups of MV_GROUP tokens. */
enum { MV_GROUP = 8 };
template <int T>
void launch_matvec(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, const float *x,
                   int n_tok, float *y, int y_ld) {
    const unsigned gx = (unsigned)((n_rows + MV_WARPS - 1) / MV_WARPS);
    if (n_tok == 1) {
        auto kernel = k_matvec<T, 1>;
        AGX_CUDA_LAUNCH(kernel, dim3(gx, 1), MV_WARPS * 32, s, W, row_bytes, n_rows, n_units, x, 1, y, y_ld);
    } else {
        auto kernel = k_matvec<T, MV_GROUP>;
        AGX_CUDA_LAUNCH(kernel, dim3(gx, (unsigned)((n_tok + MV_GROUP - 1) / MV_GROUP)), MV_WARPS * 32, s, W,
                        row_bytes, n_rows, n_units, x, n_tok, y, y_ld);
    }
}
template <int T>
void launch_dequant_f16(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, __half *out) {
    const size_t n = (size_t)n_rows * (size_t)n_units;
    auto kernel = k_dequant_f16<T>;
    AGX_CUDA_LAUNCH(kernel, (unsigned)((n + 255) / 256), 256, s, W, row_bytes, n_rows, n_units, out);
}
template <int T>
void launch_embed(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_units, const int32_t *tokens, int n_tok,
                  float *x) {
    const size_t n = (size_t)n_tok * (size_t)n_units;
    auto kernel = k_embed<T>;
    AGX_CUDA_LAUNCH(kernel, (unsigned)((n + 255) / 256), 256, s, W, row_bytes, n_units, tokens, n_tok, x);
}

cudaError_t matvec(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                   const float *x, int n_tok, float *y, int y_ld) {
    if (n_rows <= 0 || n_tok <= 0 || n_cols % 32 || n_tok > 65535) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(type, launch_matvec, (s, (const uint8_t *)W, row_bytes, n_rows, n_cols / 8, x, n_tok, y, y_ld))
    return cudaGetLastError();
}

cudaError_t dequant_f16(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        __half *out) {
    if (n_rows <= 0 || n_cols % 32) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(type, launch_dequant_f16, (s, (const uint8_t *)W, row_bytes, n_rows, n_cols / 8, out))
    return cudaGetLastError();
}

cudaError_t embed(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_cols, const int32_t *tokens,
                  int n_tok, float *x) {
    if (n_tok <= 0 || n_cols % 32) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(type, launch_embed, (s, (const uint8_t *)W, row_bytes, n_cols / 8, tokens, n_tok, x))
    return cudaGetLastError();
}

__global__ void k_f32_to_f16(const float *__restrict__ x, __half *__restrict__ y, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2half_rn(x[i]);
}

cudaError_t f32_to_f16(cudaStream_t s, const float *x, __half *y, size_t n) {
    if (!n) return cudaSuccess;
    AGX_CUDA_LAUNCH(k_f32_to_f16, (unsigned)((n + 255) / 256), 256, s, x, y, n);
    return cudaGetLastError();
}

/* ---- row ops ---- */
enum { ROW_THREADS = 256 };

/* Block sum of a double (the CPU accumulates RMSNorm's sum of squares in double). */
__device__ double block_sum_d(double v) {
    __shared__ double part[ROW_THREADS / 32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) part[w] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < ROW_THREADS / 32; i++) t += part[i];
    return t;
}

__global__ void __launch_bounds__(ROW_THREADS)
k_rmsnorm(float *x, const float *add, const float *__restrict__ w, float *out, int n, float eps) {
    /* add and out may be the same buffer (x += xb; xb = norm(x)): no __restrict__ */
    float *xr = x + (size_t)blockIdx.x * n;
    double ss = 0.0;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) {
        float v = xr[i];
        if (add) {
            v += add[(size_t)blockIdx.x * n + i];
            xr[i] = v;
        }
        ss += (double)(v * v);
    }
    const double sum = block_sum_d(ss);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    float *o = out + (size_t)blockIdx.x * n;
    for (int i = threadIdx.x; i < n; i += ROW_THREADS) o[i] = (xr[i] * scale) * w[i];
}

cudaError_t rmsnorm(cudaStream_t s, float *x, const float *add, const float *w, float *out, int n_tok, int n,
                    float eps) {
    if (n_tok <= 0) return cudaSuccess;
    AGX_CUDA_LAUNCH(k_rmsnorm, (unsigned)n_tok, ROW_THREADS, s, x, add, w, out, n, eps);
    return cudaGetLastError();
}

__global__ void k_add(float *__restrict__ y, const float *__restrict__ x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += x[i];
}

cudaError_t add_inplace(cudaStream_t s, float *y, const float *x, size_t n) {
    if (!n) return cudaSuccess;
    AGX_CUDA_LAUNCH(k_add, (unsigned)((n + 255) / 256), 256, s, y, x, n);
    return cudaGetLastError();
}

__global__ void k_swiglu(float *__restrict__ g, const float *__restrict__ u, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float v = g[i];
        g[i] = (v / (1.0f + expf(-v))) * u[i];
    }
}

cudaError_t swiglu(cudaStream_t s, float *g, const float *u, size_t n) {
    if (!n) return cudaSuccess;
    AGX_CUDA_LAUNCH(k_swiglu, (unsigned)((n + 255) / 256), 256, s, g, u, n);
    return cudaGetLastError();
}

/* One block per token: biases, RoPE (table row = position), cache store. */
template <typename KV>
__global__ void __launch_bounds__(ROW_THREADS)
k_qkv(float *__restrict__ q, float *__restrict__ k, float *__restrict__ v, const float *__restrict__ bq,
      const float *__restrict__ bk, const float *__restrict__ bv, const float *__restrict__ rope_cs,
      const int *__restrict__ pos0, int n_head, int n_head_kv, int hd, int n_rot, bool neox, KV *__restrict__ kc,
      KV *__restrict__ vc) {
    const int t = blockIdx.x;
    const int pos = *pos0 + t;
    const int qd = n_head * hd, kvd = n_head_kv * hd;
    float *qt = q + (size_t)t * qd, *kt = k + (size_t)t * kvd, *vt = v + (size_t)t * kvd;
    if (bq) {
        for (int i = threadIdx.x; i < qd; i += ROW_THREADS) qt[i] += bq[i];
        for (int i = threadIdx.x; i < kvd; i += ROW_THREADS) kt[i] += bk[i], vt[i] += bv[i];
    }
    __syncthreads();
    const int half = n_rot / 2;
    const float *cs = rope_cs + (size_t)pos * n_rot;
    for (int idx = threadIdx.x; idx < (n_head + n_head_kv) * half; idx += ROW_THREADS) {
        const int h = idx / half, i = idx % half;
        float *x = h < n_head ? qt + (size_t)h * hd : kt + (size_t)(h - n_head) * hd;
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i], sn = cs[2 * i + 1];
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * sn;
        x[b] = x0 * sn + x1 * c;
    }
    __syncthreads();
    KV *kr = kc + (size_t)pos * kvd, *vr = vc + (size_t)pos * kvd;
    for (int i = threadIdx.x; i < kvd; i += ROW_THREADS) {
        if constexpr (sizeof(KV) == 2) {
            kr[i] = __float2half_rn(kt[i]);
            vr[i] = __float2half_rn(vt[i]);
        } else {
            kr[i] = kt[i];
            vr[i] = vt[i];
        }
    }
}

cudaError_t qkv_rope_store(cudaStream_t s, float *q, float *k, float *v, const float *bq, const float *bk,
                           const float *bv, const float *rope_cs, const int *pos0, int n_tok, int n_head,
                           int n_head_kv, int head_dim, int n_rot, bool neox, void *kcache, void *vcache,
                           bool kv_f32) {
    if (n_tok <= 0) return cudaSuccess;
    if (kv_f32) {
        auto kernel = k_qkv<float>;
        AGX_CUDA_LAUNCH(kernel, (unsigned)n_tok, ROW_THREADS, s, q, k, v, bq, bk, bv, rope_cs, pos0, n_head, n_head_kv,
                        head_dim, n_rot, neox, (float *)kcache, (float *)vcache);
    } else {
        auto kernel = k_qkv<__half>;
        AGX_CUDA_LAUNCH(kernel, (unsigned)n_tok, ROW_THREADS, s, q, k, v, bq, bk, bv, rope_cs, pos0, n_head, n_head_kv,
                        head_dim, n_rot, neox, (__half *)kcache, (__half *)vcache);
    }
    return cudaGetLastError();
}

/* ---- attention ---- */
enum { ATT_WARPS = 8, ATT_MAX_HD = 256 };

__device__ __forceinline__ float kv_ld(const float *p) { return *p; }
__device__ __forceinline__ float kv_ld(const __half *p) { return __half2float(*p); }

/* One block per (query head, token). Each warp walks positions w, w+8, ...
 * with an online softmax (running max m, sum l, weighted V in acc; lane owns
 * dims lane + 32*i); the 8 partial states are merged at the end. */
template <typename KV>
__global__ void __launch_bounds__(ATT_WARPS * 32)
k_attention(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *__restrict__ out,
            const int *__restrict__ pos0, int n_head, int n_head_kv, int hd, float scale) {
    const int h = blockIdx.x, t = blockIdx.y;
    const int pos = *pos0 + t;
    const int kvh = h / (n_head / n_head_kv);
    const int kvd = n_head_kv * hd, qd = n_head * hd;
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __shared__ float sq[ATT_MAX_HD];
    __shared__ float sm[ATT_WARPS], sl[ATT_WARPS];
    __shared__ float sacc[ATT_WARPS][ATT_MAX_HD];
    for (int d = threadIdx.x; d < hd; d += ATT_WARPS * 32) sq[d] = q[(size_t)t * qd + (size_t)h * hd + d];
    __syncthreads();
    float m = -INFINITY, l = 0.0f, acc[ATT_MAX_HD / 32];
#pragma unroll
    for (int i = 0; i < ATT_MAX_HD / 32; i++) acc[i] = 0.0f;
    for (int p = w; p <= pos; p += ATT_WARPS) {
        const KV *kr = kc + (size_t)p * kvd + (size_t)kvh * hd;
        float sdot = 0.0f;
#pragma unroll
        for (int i = 0; i < ATT_MAX_HD / 32; i++) {
            const int d = lane + 32 * i;
            if (d < hd) sdot += sq[d] * kv_ld(kr + d);
        }
        const float sc = warp_sum(sdot) * scale;
        const float mn = fmaxf(m, sc);
        const float corr = expf(m - mn), pe = expf(sc - mn);
        l = l * corr + pe;
        const KV *vr = vc + (size_t)p * kvd + (size_t)kvh * hd;
#pragma unroll
        for (int i = 0; i < ATT_MAX_HD / 32; i++) {
            const int d = lane + 32 * i;
            if (d < hd) acc[i] = acc[i] * corr + pe * kv_ld(vr + d);
        }
        m = mn;
    }
    if (lane == 0) sm[w] = m, sl[w] = l;
#pragma unroll
    for (int i = 0; i < ATT_MAX_HD / 32; i++) {
        const int d = lane + 32 * i;
        if (d < hd) sacc[w][d] = acc[i];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int i = 0; i < ATT_WARPS; i++) M = fmaxf(M, sm[i]);
    float L = 0.0f;
    for (int i = 0; i < ATT_WARPS; i++) L += sm[i] == -INFINITY ? 0.0f : sl[i] * expf(sm[i] - M);
    for (int d = threadIdx.x; d < hd; d += ATT_WARPS * 32) {
        float o = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++)
            if (sm[i] != -INFINITY) o += sacc[i][d] * expf(sm[i] - M);
        out[(size_t)t * qd + (size_t)h * hd + d] = o / L;
    }
}

cudaError_t attention(cudaStream_t s, const float *q, const void *kcache, const void *vcache, bool kv_f32,
                      float *out, const int *pos0, int n_tok, int n_head, int n_head_kv, int head_dim, float scale) {
    if (n_tok <= 0) return cudaSuccess;
    if (head_dim > ATT_MAX_HD || n_head_kv <= 0 || n_head % n_head_kv) return cudaErrorInvalidValue;
    const dim3 grid((unsigned)n_head, (unsigned)n_tok);
    if (kv_f32) {
        auto kernel = k_attention<float>;
        AGX_CUDA_LAUNCH(kernel, grid, ATT_WARPS * 32, s, q, (const float *)kcache, (const float *)vcache, out, pos0,
                        n_head, n_head_kv, head_dim, scale);
    } else {
        auto kernel = k_attention<__half>;
        AGX_CUDA_LAUNCH(kernel, grid, ATT_WARPS * 32, s, q, (const __half *)kcache, (const __half *)vcache, out, pos0,
                        n_head, n_head_kv, head_dim, scale);
    }
    return cudaGetLastError();
}

template <int T> void dequant_host_t(const uint8_t *row, int64_t n, float *out) {
    for (int64_t u = 0; u < n / 8; u++) dec8<T>(row, (int)u, out + 8 * u);
}

} // namespace agxc

extern "C" bool agx_cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out) {
    using namespace agxc;
    if (n % 32 || n / 8 > INT32_MAX) return false;
    const uint8_t *r = (const uint8_t *)row;
    switch (type) {
    case T_F32: dequant_host_t<T_F32>(r, n, out); return true;
    case T_F16: dequant_host_t<T_F16>(r, n, out); return true;
    case T_BF16: dequant_host_t<T_BF16>(r, n, out); return true;
    case T_Q4_0: dequant_host_t<T_Q4_0>(r, n, out); return true;
    case T_Q5_0: dequant_host_t<T_Q5_0>(r, n, out); return true;
    case T_Q8_0: dequant_host_t<T_Q8_0>(r, n, out); return true;
    case T_Q4_K: dequant_host_t<T_Q4_K>(r, n, out); return true;
    case T_Q5_K: dequant_host_t<T_Q5_K>(r, n, out); return true;
    case T_Q6_K: dequant_host_t<T_Q6_K>(r, n, out); return true;
    default: return false;
    }
}
