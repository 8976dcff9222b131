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
    T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
    T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_BF16 = 30
};

/* The weight types of the device path, by the activation format of their
 * 8-bit kernels (what the CPU engine's vec_dot_type quantizes: q8_1 has
 * q8_0's bits plus a sum, so q4_1/q5_1 read q8_0 activations). Every switch
 * over types below is generated from these lists: a type is one line here
 * plus its decoders (dec8, qunit). X(T, ...) is called with the extra
 * arguments of the list macro. */
#define AGX_CUDA_FLOAT_TYPES(X, ...) X(T_F32, __VA_ARGS__) X(T_F16, __VA_ARGS__) X(T_BF16, __VA_ARGS__)
#define AGX_CUDA_Q8_0_TYPES(X, ...)                                                                    \
    X(T_Q4_0, __VA_ARGS__) X(T_Q4_1, __VA_ARGS__) X(T_Q5_0, __VA_ARGS__) X(T_Q5_1, __VA_ARGS__)        \
    X(T_Q8_0, __VA_ARGS__)
#define AGX_CUDA_Q8_K_TYPES(X, ...)                                                                    \
    X(T_Q2_K, __VA_ARGS__) X(T_Q3_K, __VA_ARGS__) X(T_Q4_K, __VA_ARGS__) X(T_Q5_K, __VA_ARGS__)        \
    X(T_Q6_K, __VA_ARGS__)
#define AGX_CUDA_QUANT_TYPES(X, ...) AGX_CUDA_Q8_0_TYPES(X, __VA_ARGS__) AGX_CUDA_Q8_K_TYPES(X, __VA_ARGS__)
#define AGX_CUDA_TYPES(X, ...) AGX_CUDA_FLOAT_TYPES(X, __VA_ARGS__) AGX_CUDA_QUANT_TYPES(X, __VA_ARGS__)

#define AGX_CASE_RETURN(T, value) case T: return value;
/* switch (type) { case T: F<T> ARGS; break; ... } over a type list; other
 * types return cudaErrorInvalidValue from the enclosing function */
#define AGX_CASE_CALL(T, F, ARGS) case T: F<T> ARGS; break;
#define AGX_TYPE_DISPATCH(LIST, type, F, ARGS)      \
    switch (type) {                                 \
    LIST(AGX_CASE_CALL, F, ARGS)                    \
    default: return cudaErrorInvalidValue;          \
    }

bool type_supported(uint32_t type) {
    switch (type) {
    AGX_CUDA_TYPES(AGX_CASE_RETURN, true)
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
/* The 4- or 5-bit quants of unit p (elements 8p..8p+7) of a 32-element
 * q4_0/q4_1/q5_0/q5_1 block: element j is the low nibble of qs[j], element
 * j+16 the high one; qh (q5_*; NULL for q4_*) holds bit 4 of element j at bit j. */
HD void legacy_quants(const uint8_t *qs, const uint8_t *qh, int p, int q[8]) {
    const uint32_t h =
        qh ? (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24) : 0u;
    qs += 8 * (p & 1);
    UNROLL
    for (int i = 0; i < 8; i++) q[i] = (p < 2 ? (qs[i] & 0x0F) : (qs[i] >> 4)) | (int)(((h >> (8 * p + i)) & 1u) << 4);
}
/* Layout of the 32-element q4_0/q4_1/q5_0/q5_1 blocks, shared by their
 * decoders and qunits: bytes per block, where qs and qh start (qh 0: no 5th
 * bits), the offset of the symmetric types (x = (q - off) * d) and whether an
 * f16 min m follows d (x = q * d + m). q4_0 {d; qs[16]}, q4_1 {d, m; qs[16]},
 * q5_0 {d; qh[4]; qs[16]}, q5_1 {d, m; qh[4]; qs[16]}. */
template <int BYTES, int QS, int QH, int OFF, bool MIN> struct LegacyLayout {
    static constexpr int bytes = BYTES, qs = QS, qh = QH, off = OFF;
    static constexpr bool min = MIN;
};
template <int T> struct Legacy;
/*                                      bytes qs qh off min */
template <> struct Legacy<T_Q4_0> : LegacyLayout<18, 2, 0, 8, false> {};
template <> struct Legacy<T_Q4_1> : LegacyLayout<20, 4, 0, 0, true> {};
template <> struct Legacy<T_Q5_0> : LegacyLayout<22, 6, 2, 16, false> {};
template <> struct Legacy<T_Q5_1> : LegacyLayout<24, 8, 4, 0, true> {};
template <int T> HD void dec8_legacy(const uint8_t *row, int u, float v[8]) {
    using L = Legacy<T>;
    const uint8_t *b = row + (size_t)(u >> 2) * L::bytes;
    const float d = ld_h(b);
    int q[8];
    legacy_quants(b + L::qs, L::qh != 0 ? b + L::qh : nullptr, u & 3, q);
    if (L::min) {
        const float m = ld_h(b + 2);
        UNROLL
        for (int i = 0; i < 8; i++) v[i] = (float)q[i] * d + m;
    } else {
        UNROLL
        for (int i = 0; i < 8; i++) v[i] = (float)(q[i] - L::off) * d;
    }
}
template <> HD void dec8<T_Q4_0>(const uint8_t *row, int u, float v[8]) { dec8_legacy<T_Q4_0>(row, u, v); }
template <> HD void dec8<T_Q4_1>(const uint8_t *row, int u, float v[8]) { dec8_legacy<T_Q4_1>(row, u, v); }
template <> HD void dec8<T_Q5_0>(const uint8_t *row, int u, float v[8]) { dec8_legacy<T_Q5_0>(row, u, v); }
template <> HD void dec8<T_Q5_1>(const uint8_t *row, int u, float v[8]) { dec8_legacy<T_Q5_1>(row, u, v); }
/* q8_0: {f16 d; i8 qs[32]} */
template <> HD void dec8<T_Q8_0>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 2) * 34;
    const float d = ld_h(b);
    const int8_t *qs = (const int8_t *)(b + 2 + 8 * (u & 3));
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = (float)qs[i] * d;
}
/* Where unit c8 (0..31) of a q2_K/q3_K super-block lies: the 256 elements are
 * two halves of 128, each 4 bit planes over 32 bytes (element 128h + 32p + l
 * is bits 2p..2p+1 of byte 32h + l); one 16-element scale per 2 units. */
struct K23Pos {
    int h, p, l0, is;
};
HD K23Pos k23_pos(int c8) {
    K23Pos q;
    q.h = c8 >> 4, q.p = (c8 >> 2) & 3, q.l0 = 8 * (c8 & 3), q.is = c8 >> 1;
    return q;
}
/* q2_K: {u8 scales[16] (scale | min << 4 per 16 elements); u8 qs[64]; f16 d, dmin} */
template <> HD void dec8<T_Q2_K>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 5) * 84;
    const K23Pos k = k23_pos(u & 31);
    const uint8_t sc = b[k.is];
    const float dl = ld_h(b + 80) * (float)(sc & 0xF), ml = ld_h(b + 82) * (float)(sc >> 4);
    const uint8_t *q = b + 16 + 32 * k.h + k.l0;
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = dl * (float)((q[i] >> (2 * k.p)) & 3) - ml;
}
/* The signed 6-bit scale j of a q3_K block (one of agx_unpack_q3k_scales, quant_impl.h). */
HD int q3k_scale(const uint8_t *sc, int j) {
    const int lo = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
    const int hi = (sc[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}
/* q3_K: {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 2 low bits as q2_K,
 * and 4 is subtracted where bit 4h + p of hmask[l] is clear. */
template <> HD void dec8<T_Q3_K>(const uint8_t *row, int u, float v[8]) {
    const uint8_t *b = row + (size_t)(u >> 5) * 110;
    const K23Pos k = k23_pos(u & 31);
    const float dl = ld_h(b + 108) * (float)q3k_scale(b + 96, k.is);
    const uint8_t *q = b + 32 + 32 * k.h + k.l0, *hm = b + k.l0;
    const int hbit = 4 * k.h + k.p;
    UNROLL
    for (int i = 0; i < 8; i++) v[i] = dl * (float)(((q[i] >> (2 * k.p)) & 3) - (((hm[i] >> hbit) & 1) ? 0 : 4));
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

enum { MV_WARPS = 4, ROW_THREADS = 256 };

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
/* ---- 8-bit activations: quantizers and integer matvec ----
 * Mirrors the CPU engine (src/engine/quant.c): activations quantized as
 * act_q8_0 / quant_q8_K do, weights x activations as integer dot products
 * scaled as dot_*_q8_0 / dot_*_q8_K scale them. Every rounding step uses an
 * explicit _rn intrinsic so that nvcc cannot contract or reassociate it. */

int act_format(uint32_t type) {
    switch (type) {
    AGX_CUDA_Q8_0_TYPES(AGX_CASE_RETURN, ACT_Q8_0)
    AGX_CUDA_Q8_K_TYPES(AGX_CASE_RETURN, ACT_Q8_K)
    default: return 0;
    }
}

__device__ __forceinline__ int warp_sum_i(int v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Quantizes elements base .. base+255 of row t (n wide) into o. Called by all
 * ROW_THREADS threads of a block with the same base; v = element
 * base + threadIdx.x, or 0 past n. q8_0: warp w holds the 32-element block
 * (base >> 5) + w; q8_K: the block's 256 threads hold one 256-element block
 * (callers ensure n % 256 == 0 then). */
__device__ void quant_seg(float v, int t, int n, int base, const Q8Out &o) {
    const int i = base + (int)threadIdx.x;
    const bool in = i < n;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const size_t qi = (size_t)t * (size_t)n + (size_t)i, di = (size_t)t * (size_t)(n / 32) + (size_t)(i >> 5);
    const bool deq = o.h16 || o.f32;
    const bool h0 = deq && o.h16_fmt == ACT_Q8_0, hk = deq && o.h16_fmt == ACT_Q8_K;
    if ((o.fmt & ACT_Q8_0) || h0) {
        /* act_q8_0: d = amax/127 stored as f16, id = 127/amax, qs = nearbyint(x*id) */
        const float amax = warp_max(fabsf(v));
        const float d_raw = __fdiv_rn(amax, 127.0f), d = __half2float(__float2half_rn(d_raw));
        const float id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
        const int q = __float2int_rn(__fmul_rn(v, id));
        /* act_q8_1's sum term (q4_1/q5_1): lanes past n hold q = 0 */
        const int qsum = (o.fmt & ACT_Q8_0) && o.q0.s ? warp_sum_i(q) : 0;
        if (in) {
            if (o.fmt & ACT_Q8_0) {
                o.q0.qs[qi] = (int8_t)q;
                if (lane == 0) o.q0.d[di] = d;
                if (lane == 0 && o.q0.s) o.q0.s[di] = __half2float(__float2half_rn(__fmul_rn(d_raw, (float)qsum)));
            }
            if (h0) {
                const float r = __fmul_rn((float)q, d);
                if (o.h16) o.h16[qi] = __float2half_rn(r);
                if (o.f32) o.f32[qi] = r;
            }
        }
    }
    if ((o.fmt & ACT_Q8_K) || hk) {
        /* quant_q8_K: max = the signed value of the FIRST element of largest |x| */
        __shared__ float s_ax[ROW_THREADS / 32], s_mx[ROW_THREADS / 32];
        float ax = fabsf(v), mx = v;
        int idx = (int)threadIdx.x;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            const float oax = __shfl_xor_sync(0xffffffffu, ax, off), omx = __shfl_xor_sync(0xffffffffu, mx, off);
            const int oi = __shfl_xor_sync(0xffffffffu, idx, off);
            if (oax > ax || (oax == ax && oi < idx)) ax = oax, mx = omx, idx = oi;
        }
        if (lane == 0) s_ax[w] = ax, s_mx[w] = mx;
        __syncthreads();
        float amax = s_ax[0], mxv = s_mx[0];
        for (int k = 1; k < ROW_THREADS / 32; k++)   /* warps in element order: ties keep the earlier */
            if (s_ax[k] > amax) amax = s_ax[k], mxv = s_mx[k];
        __syncthreads();   /* the next call rewrites s_ax / s_mx */
        int q = 0;
        float d = 0.0f;
        if (amax != 0.0f) {
            const float iscale = __fdiv_rn(-127.0f, mxv);
            /* agx_nearest_int_fma: the exact product rounded by the 1.5*2^23 addition */
            q = (__float_as_int(__fmaf_rn(iscale, v, 12582912.0f)) & 0x007fffff) - 0x00400000;
            q = q < 127 ? q : 127;
            d = __fdiv_rn(1.0f, iscale);
        }
        if (in) {
            if (o.fmt & ACT_Q8_K) {
                o.qk.qs[qi] = (int8_t)q;
                if (lane == 0) o.qk.d[di] = d;   /* repeated per 32-element sub-block */
            }
            if (hk) {
                const float r = __fmul_rn((float)q, d);
                if (o.h16) o.h16[qi] = __float2half_rn(r);
                if (o.f32) o.f32[qi] = r;
            }
        }
    }
}

/* grid (ceil(n/256), n_tok) */
__global__ void __launch_bounds__(ROW_THREADS)
k_quant(const float *__restrict__ x, int n, Q8Out o) {
    const int t = blockIdx.y, base = blockIdx.x * ROW_THREADS, i = base + (int)threadIdx.x;
    quant_seg(i < n ? x[(size_t)t * n + i] : 0.0f, t, n, base, o);
}

bool q8out_ok(int n, const Q8Out &o) {
    if (n % 32) return false;
    if (((o.fmt & ACT_Q8_K) || ((o.h16 || o.f32) && o.h16_fmt == ACT_Q8_K)) && n % 256) return false;
    if ((o.fmt & ACT_Q8_0) && (!o.q0.qs || !o.q0.d)) return false;
    if ((o.fmt & ACT_Q8_K) && (!o.qk.qs || !o.qk.d)) return false;
    return true;
}

cudaError_t quantize_act(cudaStream_t s, const float *x, int n, int n_tok, const Q8Out &o) {
    if (n_tok <= 0) return cudaSuccess;
    if (n <= 0 || n_tok > 65535 || !q8out_ok(n, o)) return cudaErrorInvalidValue;
    AGX_CUDA_LAUNCH(k_quant, dim3((unsigned)((n + ROW_THREADS - 1) / ROW_THREADS), (unsigned)n_tok), ROW_THREADS, s,
                    x, n, o);
    return cudaGetLastError();
}

/* Two aligned 16-bit loads (blocks of 18/22/34/210 bytes are only 2-aligned). */
__device__ __forceinline__ uint32_t ld32_a2(const uint8_t *p) {
    const unsigned short *h = (const unsigned short *)p;
    return (uint32_t)h[0] | ((uint32_t)h[1] << 16);
}

/* One 8-element unit of a quantized row, as the integer dot wants it:
 * contribution = (dx*dw) * sc*(dot(w, a) - off*sum(a)) - (dx*dm) * mn*sum(a),
 * w0/w1 = the 8 weight quants as bytes (elements 0-3, 4-7), a = activations.
 * q4_1/q5_1 (block_min; mn = 1, dm = m) instead add dm * s once per 32
 * elements, s = the activations' q8_1 sum term (Q8Act::s), as dot_q4_1_q8_1 does. */
struct QUnit {
    uint32_t w0, w1;
    int sc, off, mn;
    float dw, dm;
};
template <int T> constexpr bool has_min_v = T == T_Q2_K || T == T_Q4_K || T == T_Q5_K;
constexpr bool block_min_type(uint32_t type) { return type == T_Q4_1 || type == T_Q5_1; }
template <int T> constexpr bool block_min_v = block_min_type(T);
bool needs_act_sum(uint32_t type) { return block_min_type(type); }

template <int T> __device__ __forceinline__ void qunit(const uint8_t *row, int u, QUnit &q);

/* the 4 low bits of x, one per byte, at bit 4 of each byte */
__device__ __forceinline__ uint32_t spread4(uint32_t x) {
    return ((x & 1u) << 4) | ((x & 2u) << 11) | ((x & 4u) << 18) | ((x & 8u) << 25);
}
/* legacy_quants as qunit's bytes (qs and qh at even offsets: 16-bit loads) */
__device__ __forceinline__ void legacy_qunit(const uint8_t *qs, const uint8_t *qh, int p, QUnit &q) {
    const int sh = p < 2 ? 0 : 4;
    qs += 8 * (p & 1);
    q.w0 = (ld32_a2(qs) >> sh) & 0x0F0F0F0Fu;
    q.w1 = (ld32_a2(qs + 4) >> sh) & 0x0F0F0F0Fu;
    if (qh) {
        const uint32_t hb = (ld32_a2(qh) >> (8 * p)) & 0xFFu;   /* 5th bits of elements 8p .. 8p+7 */
        q.w0 |= spread4(hb & 0xFu);
        q.w1 |= spread4(hb >> 4);
    }
}
/* q4_0/q5_0: off = 8/16; q4_1/q5_1: mn = 1, dm = m (block_min: added once per
 * block with the activations' sum) */
template <int T> __device__ __forceinline__ void qunit_legacy(const uint8_t *row, int u, QUnit &q) {
    using L = Legacy<T>;
    const uint8_t *b = row + (size_t)(u >> 2) * L::bytes;
    legacy_qunit(b + L::qs, L::qh != 0 ? b + L::qh : nullptr, u & 3, q);
    q.sc = 1, q.off = L::off, q.mn = L::min ? 1 : 0, q.dw = ld_h(b), q.dm = L::min ? ld_h(b + 2) : 0.0f;
}
template <> __device__ __forceinline__ void qunit<T_Q4_0>(const uint8_t *row, int u, QUnit &q) {
    qunit_legacy<T_Q4_0>(row, u, q);
}
template <> __device__ __forceinline__ void qunit<T_Q4_1>(const uint8_t *row, int u, QUnit &q) {
    qunit_legacy<T_Q4_1>(row, u, q);
}
template <> __device__ __forceinline__ void qunit<T_Q5_0>(const uint8_t *row, int u, QUnit &q) {
    qunit_legacy<T_Q5_0>(row, u, q);
}
template <> __device__ __forceinline__ void qunit<T_Q5_1>(const uint8_t *row, int u, QUnit &q) {
    qunit_legacy<T_Q5_1>(row, u, q);
}
/* bits 2p, 2p+1 of the 8 bytes at qs (unit k's low bits in q2_K/q3_K), one per byte */
__device__ __forceinline__ void k23_low_bits(const uint8_t *qs, const K23Pos &k, QUnit &q) {
    q.w0 = (ld32_a2(qs) >> (2 * k.p)) & 0x03030303u;
    q.w1 = (ld32_a2(qs + 4) >> (2 * k.p)) & 0x03030303u;
}
template <> __device__ __forceinline__ void qunit<T_Q2_K>(const uint8_t *row, int u, QUnit &q) {
    const uint8_t *b = row + (size_t)(u >> 5) * 84;
    const K23Pos k = k23_pos(u & 31);
    k23_low_bits(b + 16 + 32 * k.h + k.l0, k, q);
    q.sc = b[k.is] & 0xF, q.off = 0, q.mn = b[k.is] >> 4, q.dw = ld_h(b + 80), q.dm = ld_h(b + 82);
}
/* q3_K: w = low 2 bits | hmask bit << 2 (0..7), value w - 4 */
template <> __device__ __forceinline__ void qunit<T_Q3_K>(const uint8_t *row, int u, QUnit &q) {
    const uint8_t *b = row + (size_t)(u >> 5) * 110;
    const K23Pos k = k23_pos(u & 31);
    const uint8_t *hm = b + k.l0;
    const int hbit = 4 * k.h + k.p;
    k23_low_bits(b + 32 + 32 * k.h + k.l0, k, q);
    q.w0 |= ((ld32_a2(hm) >> hbit) & 0x01010101u) << 2;
    q.w1 |= ((ld32_a2(hm + 4) >> hbit) & 0x01010101u) << 2;
    q.sc = q3k_scale(b + 96, k.is), q.off = 4, q.mn = 0, q.dw = ld_h(b + 108), q.dm = 0.0f;
}
template <> __device__ __forceinline__ void qunit<T_Q8_0>(const uint8_t *row, int u, QUnit &q) {
    const uint8_t *b = row + (size_t)(u >> 2) * 34;
    const uint8_t *qs = b + 2 + 8 * (u & 3);
    q.w0 = ld32_a2(qs);
    q.w1 = ld32_a2(qs + 4);
    q.sc = 1, q.off = 0, q.mn = 0, q.dw = ld_h(b), q.dm = 0.0f;
}
template <> __device__ __forceinline__ void qunit<T_Q4_K>(const uint8_t *row, int u, QUnit &q) {
    const int c = (u >> 2) & 7, p = u & 3, sh = (c & 1) ? 4 : 0;
    const uint8_t *b = row + (size_t)(u >> 5) * 144;
    float sc, mn;
    scale_min_k4(c, b + 4, &sc, &mn);
    const uint2 w = *(const uint2 *)(b + 16 + 32 * (c >> 1) + 8 * p);
    q.w0 = (w.x >> sh) & 0x0F0F0F0Fu;
    q.w1 = (w.y >> sh) & 0x0F0F0F0Fu;
    q.sc = (int)sc, q.off = 0, q.mn = (int)mn, q.dw = ld_h(b), q.dm = ld_h(b + 2);
}
template <> __device__ __forceinline__ void qunit<T_Q5_K>(const uint8_t *row, int u, QUnit &q) {
    const int c = (u >> 2) & 7, p = u & 3, sh = (c & 1) ? 4 : 0;
    const uint8_t *b = row + (size_t)(u >> 5) * 176;
    float sc, mn;
    scale_min_k4(c, b + 4, &sc, &mn);
    const uint2 h = *(const uint2 *)(b + 16 + 8 * p);
    const uint2 w = *(const uint2 *)(b + 48 + 32 * (c >> 1) + 8 * p);
    q.w0 = ((w.x >> sh) & 0x0F0F0F0Fu) | (((h.x >> c) & 0x01010101u) << 4);
    q.w1 = ((w.y >> sh) & 0x0F0F0F0Fu) | (((h.y >> c) & 0x01010101u) << 4);
    q.sc = (int)sc, q.off = 0, q.mn = (int)mn, q.dw = ld_h(b), q.dm = ld_h(b + 2);
}
template <> __device__ __forceinline__ void qunit<T_Q6_K>(const uint8_t *row, int u, QUnit &q) {
    const int c = (u >> 2) & 7, p = u & 3, h = c >> 2, s = c & 3, l0 = 8 * p, sh = s >= 2 ? 4 : 0;
    const uint8_t *b = row + (size_t)(u >> 5) * 210;
    const uint8_t *ql = b + 64 * h + 32 * (s & 1) + l0, *qh = b + 128 + 32 * h + l0;
    q.w0 = ((ld32_a2(ql) >> sh) & 0x0F0F0F0Fu) | (((ld32_a2(qh) >> (2 * s)) & 0x03030303u) << 4);
    q.w1 = ((ld32_a2(ql + 4) >> sh) & 0x0F0F0F0Fu) | (((ld32_a2(qh + 4) >> (2 * s)) & 0x03030303u) << 4);
    q.sc = (int)((const int8_t *)(b + 192))[8 * h + (l0 >> 4) + 2 * s];
    q.off = 32, q.mn = 0, q.dw = ld_h(b + 208), q.dm = 0.0f;
}

/* k_matvec with 8-bit activations: per unit two dp4a per token. */
/* Device view of a MatvecSet (flat, so that the matrix is picked by selects
 * rather than a dynamically indexed parameter array). */
struct MV3 {
    const uint8_t *W0, *W1, *W2;
    size_t rb0, rb1, rb2;
    int n0, n1, n2;   /* rows of each (0 when absent) */
    float *y0, *y1, *y2;
    int ld0, ld1, ld2;
};

/* U units per lane and iteration: their weight loads are issued together, so a
 * warp has U blocks in flight instead of one (a decode matvec is a few dependent
 * round trips to memory per row otherwise). The sums run in the same order for
 * every U, so the results are bit-identical. */
template <int T, int NT, int U>
__global__ void __launch_bounds__(MV_WARPS * 32)
k_matvec_q8(MV3 m, int n_units, const int8_t *__restrict__ xq, const float *__restrict__ xd,
            const float *__restrict__ xs, int n_tok) {
    const int lane = threadIdx.x & 31;
    int r = blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    /* which matrix: warp-uniform */
    const int k = r < m.n0 ? 0 : r < m.n0 + m.n1 ? 1 : 2;
    r -= k == 0 ? 0 : k == 1 ? m.n0 : m.n0 + m.n1;
    if (r >= (k == 0 ? m.n0 : k == 1 ? m.n1 : m.n2)) return;
    const uint8_t *W = k == 0 ? m.W0 : k == 1 ? m.W1 : m.W2;
    const size_t row_bytes = k == 0 ? m.rb0 : k == 1 ? m.rb1 : m.rb2;
    float *y = k == 0 ? m.y0 : k == 1 ? m.y1 : m.y2;
    const int y_ld = k == 0 ? m.ld0 : k == 1 ? m.ld1 : m.ld2;
    const int t0 = blockIdx.y * NT;
    const int nt = n_tok - t0 < NT ? n_tok - t0 : NT;
    const uint8_t *row = W + (size_t)r * row_bytes;
    const size_t x_ld = (size_t)n_units * 8, d_ld = (size_t)n_units / 4;
    const int8_t *xt = xq + (size_t)t0 * x_ld;
    const float *dt = xd + (size_t)t0 * d_ld;
    const float *st = block_min_v<T> ? xs + (size_t)t0 * d_ld : nullptr;
    constexpr bool has_min = has_min_v<T>;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int u0 = lane; u0 < n_units; u0 += 32 * U) {
        QUnit qs[U];
#pragma unroll
        for (int j = 0; j < U; j++)
            if (u0 + 32 * j < n_units) qunit<T>(row, u0 + 32 * j, qs[j]);
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = u0 + 32 * j;
            if (u >= n_units) break;
            const QUnit &q = qs[j];
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t < nt) {
                    const uint2 a = *(const uint2 *)(xt + t * x_ld + 8 * (size_t)u);
                    const float dx = dt[t * d_ld + (u >> 2)];
                    const int sa = __dp4a((int)a.x, 0x01010101, __dp4a((int)a.y, 0x01010101, 0));
                    const int dp = __dp4a((int)q.w0, (int)a.x, __dp4a((int)q.w1, (int)a.y, 0));
                    acc[t] += __fmul_rn(dx, q.dw) * (float)(q.sc * (dp - q.off * sa));
                    if (has_min) acc[t] -= __fmul_rn(dx, q.dm) * (float)(q.mn * sa);
                    if (block_min_v<T> && (u & 3) == 0) acc[t] += q.dm * st[t * d_ld + (u >> 2)];
                }
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

/* ---- prompts on the tensor cores: int8 mma (AGX_CUDA_GEMM=mma) ----
 * D[16x8] += A[16x32] * B[32x8], int8 in, int32 out, for one warp, in the
 * register layout of PTX's mma.m16n8k32.row.col.s32.s8.s8.s32 (g = lane/4,
 * c = lane%4): a[0] = A[g][4c..4c+3], a[1] = A[g+8][4c..], a[2] = A[g][16+4c..],
 * a[3] = A[g+8][16+4c..]; b[0] = B[4c..4c+3][g], b[1] = B[16+4c..][g];
 * d[0..1] = D[g][2c, 2c+1], d[2..3] = D[g+8][2c, 2c+1]. sm_80+ runs the
 * instruction; older GPUs (PTX JIT) and the CPU emulator compute the same
 * thing from the same registers with shuffles and dp4a, so the emulator checks
 * every use of the layout and the GPU self-test checks the layout itself. */
__device__ __forceinline__ void mma_s8_16x8x32(int d[4], const int a[4], const int b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(AGX_CUDA_EMU)
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
#pragma unroll
    for (int k = 0; k < 4; k++) {   /* int column k (and k+4) of rows g, g+8 come from lane 4g+k */
        const int a0 = __shfl_sync(0xffffffffu, a[0], 4 * g + k), a1 = __shfl_sync(0xffffffffu, a[1], 4 * g + k);
        const int a2 = __shfl_sync(0xffffffffu, a[2], 4 * g + k), a3 = __shfl_sync(0xffffffffu, a[3], 4 * g + k);
#pragma unroll
        for (int j = 0; j < 2; j++) {   /* column 2c+j of B lives in lanes 4(2c+j)+k */
            const int src = 4 * (2 * c + j) + k;
            const int b0 = __shfl_sync(0xffffffffu, b[0], src), b1 = __shfl_sync(0xffffffffu, b[1], src);
            d[j] = __dp4a(a0, b0, __dp4a(a2, b1, d[j]));
            d[2 + j] = __dp4a(a1, b0, __dp4a(a3, b1, d[2 + j]));
        }
    }
#endif
}

/* Tile of the mma kernel: MQ_ROWS weight rows x MQ_TOK tokens per block of
 * MQ_WARPS warps (16 rows each), the K dimension in steps of 256 (32 units of 8).
 * Shared rows are padded by 4 ints so that the fragment loads of a warp hit 32
 * different banks (row stride 68 ints: bank = 4*row + column). */
enum { MQ_WARPS = 4, MQ_ROWS = 16 * MQ_WARPS, MQ_TOK = 32, MQ_UNITS = 32, MQ_LD = MQ_UNITS * 2 + 4 };

/* y[t*y_ld + r] = W[r] . x[t] for quantized W and 8-bit x (the matvec_q8
 * numerics: integer dot products per 32 elements, per 16 for q6_K's scales,
 * scaled in float). */
template <int T>
__global__ void __launch_bounds__(MQ_WARPS * 32)
k_matmul_mma(const uint8_t *__restrict__ W, size_t row_bytes, int n_rows, int n_units, const int8_t *__restrict__ xq,
             const float *__restrict__ xd, const float *__restrict__ xs_sum, int n_tok, float *__restrict__ y,
             int y_ld) {
    constexpr bool has_min = has_min_v<T>, block_min = block_min_v<T>, min16 = T == T_Q2_K;
    constexpr bool half_scales = T == T_Q2_K || T == T_Q3_K || T == T_Q6_K;
    __shared__ int ws[MQ_ROWS * MQ_LD];               /* weights minus their offset, int8 x4 */
    __shared__ float wsc[MQ_ROWS][MQ_UNITS / 2];      /* scale of each 16 elements (dw*sc) */
    __shared__ float wmn[MQ_ROWS][MQ_UNITS / 2];      /* min of each 16 (dm*mn; q4_1/q5_1: m) */
    __shared__ int xs[MQ_TOK * MQ_LD];                /* activations, int8 x4 */
    __shared__ float xsc[MQ_TOK][MQ_UNITS / 4];       /* activation scale per 32 */
    __shared__ int xsum[MQ_TOK][MQ_UNITS / 2];        /* sum of each 16 activations (min term) */
    __shared__ float xsb[MQ_TOK][MQ_UNITS / 4];       /* q8_1 sum term per 32 (q4_1/q5_1) */
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, c = lane & 3;
    const int r0 = blockIdx.x * MQ_ROWS, t0 = blockIdx.y * MQ_TOK;
    const size_t x_ld = (size_t)n_units * 8, d_ld = (size_t)n_units / 4;
    float acc[MQ_TOK / 8][4];
#pragma unroll
    for (int j = 0; j < MQ_TOK / 8; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) acc[j][i] = 0.0f;
    for (int u0 = 0; u0 < n_units; u0 += MQ_UNITS) {
        /* weights: thread -> unit tid%32 of rows tid/32, +4, ... */
        for (int rr = tid / MQ_UNITS; rr < MQ_ROWS; rr += MQ_WARPS * 32 / MQ_UNITS) {
            const int uu = tid % MQ_UNITS, u = u0 + uu, r = r0 + rr;
            int lo = 0, hi = 0;
            float sc = 0.0f, mn = 0.0f;
            if (r < n_rows && u < n_units) {
                QUnit q;
                qunit<T>(W + (size_t)r * row_bytes, u, q);
                /* bytes minus the offset, per byte without borrows (the quants are
                 * 0..63 there, q - off fits in int8); q8_0's bytes are signed already */
                const uint32_t off4 = 0x01010101u * (uint32_t)q.off;
                lo = q.off ? (int)(((q.w0 | 0x80808080u) - off4) ^ 0x80808080u) : (int)q.w0;
                hi = q.off ? (int)(((q.w1 | 0x80808080u) - off4) ^ 0x80808080u) : (int)q.w1;
                sc = q.dw * (float)q.sc;   /* exact: an f16 times a small integer */
                mn = q.dm * (float)q.mn;
            }
            ws[rr * MQ_LD + 2 * uu] = lo;
            ws[rr * MQ_LD + 2 * uu + 1] = hi;
            if ((uu & 1) == 0) wsc[rr][uu / 2] = sc, wmn[rr][uu / 2] = mn;
        }
        /* activations: 16 bytes (two units) per thread and step */
        for (int i = tid; i < MQ_TOK * MQ_UNITS / 2; i += MQ_WARPS * 32) {
            const int tt = i / (MQ_UNITS / 2), uu = 2 * (i % (MQ_UNITS / 2)), t = t0 + tt, u = u0 + uu;
            int4 v = make_int4(0, 0, 0, 0);
            if (t < n_tok && u < n_units) v = *(const int4 *)(xq + (size_t)t * x_ld + 8 * (size_t)u);
            int *dst = &xs[tt * MQ_LD + 2 * uu];
            dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
        }
        for (int i = tid; i < MQ_TOK * MQ_UNITS / 4; i += MQ_WARPS * 32) {
            const int tt = i / (MQ_UNITS / 4), b = i % (MQ_UNITS / 4), t = t0 + tt, u = u0 + 4 * b;
            const bool in = t < n_tok && u < n_units;
            xsc[tt][b] = in ? xd[(size_t)t * d_ld + (size_t)(u / 4)] : 0.0f;
            if (block_min) xsb[tt][b] = in ? xs_sum[(size_t)t * d_ld + (size_t)(u / 4)] : 0.0f;
        }
        __syncthreads();
        if (has_min)
            for (int i = tid; i < MQ_TOK * MQ_UNITS / 2; i += MQ_WARPS * 32) {
                const int tt = i / (MQ_UNITS / 2), h = i % (MQ_UNITS / 2);
                int s = 0;
#pragma unroll
                for (int k = 0; k < 4; k++) s = __dp4a(xs[tt * MQ_LD + 4 * h + k], 0x01010101, s);
                xsum[tt][h] = s;
            }
        __syncthreads();
        /* the warp's 16 rows times the block's tokens, 32 elements at a time */
        const int ra = warp * 16 + g, rb = ra + 8;
#pragma unroll 2
        for (int b = 0; b < MQ_UNITS / 4; b++) {
            const int a[4] = {ws[ra * MQ_LD + 8 * b + c], ws[rb * MQ_LD + 8 * b + c], ws[ra * MQ_LD + 8 * b + 4 + c],
                              ws[rb * MQ_LD + 8 * b + 4 + c]};
            const float sa_lo = wsc[ra][2 * b], sb_lo = wsc[rb][2 * b];
            const float sa_hi = wsc[ra][2 * b + 1], sb_hi = wsc[rb][2 * b + 1];
#pragma unroll
            for (int j = 0; j < MQ_TOK / 8; j++) {
                const int tok = 8 * j + g;
                const int bf[2] = {xs[tok * MQ_LD + 8 * b + c], xs[tok * MQ_LD + 8 * b + 4 + c]};
                const int c0 = 8 * j + 2 * c;   /* the two token columns this lane holds */
                if (half_scales) {
                    /* two scales per 32: the halves as separate products (a[0..1] hold
                     * elements 0..15, a[2..3] elements 16..31) */
                    int dl[4] = {0, 0, 0, 0}, dh[4] = {0, 0, 0, 0};
                    const int al[4] = {a[0], a[1], 0, 0}, ah[4] = {0, 0, a[2], a[3]};
                    mma_s8_16x8x32(dl, al, bf);
                    mma_s8_16x8x32(dh, ah, bf);
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const float dx = xsc[c0 + (i & 1)][b];
                        const float lo = i < 2 ? sa_lo : sb_lo, hi = i < 2 ? sa_hi : sb_hi;
                        acc[j][i] += dx * (lo * (float)dl[i] + hi * (float)dh[i]);
                    }
                } else {
                    int d[4] = {0, 0, 0, 0};
                    mma_s8_16x8x32(d, a, bf);
#pragma unroll
                    for (int i = 0; i < 4; i++)
                        acc[j][i] += xsc[c0 + (i & 1)][b] * ((i < 2 ? sa_lo : sb_lo) * (float)d[i]);
                }
                if (has_min || block_min)
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const int tcol = c0 + (i & 1), row = i < 2 ? ra : rb;
                        const float m_lo = wmn[row][2 * b];
                        if (block_min) acc[j][i] += m_lo * xsb[tcol][b];
                        else if (min16)
                            acc[j][i] -= xsc[tcol][b] * (m_lo * (float)xsum[tcol][2 * b] +
                                                         wmn[row][2 * b + 1] * (float)xsum[tcol][2 * b + 1]);
                        else acc[j][i] -= xsc[tcol][b] * (m_lo * (float)(xsum[tcol][2 * b] + xsum[tcol][2 * b + 1]));
                    }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < MQ_TOK / 8; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = r0 + warp * 16 + g + (i < 2 ? 0 : 8), t = t0 + 8 * j + 2 * c + (i & 1);
            if (r < n_rows && t < n_tok) y[(size_t)t * (size_t)y_ld + r] = acc[j][i];
        }
}

/* 8 decoded elements to out (16-byte aligned): f16 for the f16 GEMM, f32 for SGEMM. */
__device__ __forceinline__ void store8(__half *out, const float v[8]) {
    __half2 h[4];
#pragma unroll
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
    *(uint4 *)out = *(const uint4 *)h;
}
__device__ __forceinline__ void store8(float *out, const float v[8]) {
    float4 a, b;
    a.x = v[0], a.y = v[1], a.z = v[2], a.w = v[3];
    b.x = v[4], b.y = v[5], b.z = v[6], b.w = v[7];
    ((float4 *)out)[0] = a;
    ((float4 *)out)[1] = b;
}

/* One thread per 8-element unit of n_rows rows, dequantized to O (f16 or f32). */
template <int T, typename O>
__global__ void k_dequant(const uint8_t *__restrict__ W, size_t row_bytes, int n_rows, int n_units,
                          O *__restrict__ out) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_rows * (size_t)n_units) return;
    const size_t r = i / (size_t)n_units;
    const int u = (int)(i % (size_t)n_units);
    float v[8];
    dec8<T>(W + r * row_bytes, u, v);
    store8(out + r * (size_t)n_units * 8 + (size_t)u * 8, v);
}

/* Embedding: row tokens[t] of W as f32 into x[t], one thread per 8-element unit. */
template <int T>
__global__ void k_embed(const uint8_t *__restrict__ W, size_t row_bytes, int n_units,
                        const int32_t *__restrict__ tokens,
                        int n_tok, float *__restrict__ x) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n_tok * (size_t)n_units) return;
    const int t = (int)(i / (size_t)n_units), u = (int)(i % (size_t)n_units);
    float v[8];
    dec8<T>(W + (size_t)tokens[t] * row_bytes, u, v);
    store8(x + (size_t)t * n_units * 8 + (size_t)u * 8, v);
}

/* k_matvec for one token (decode) and for groups of MV_GROUP tokens. */
enum { MV_GROUP = 8 };
static_assert(MV_UNROLL == 4, "kernels.h promises unroll 1 or 4");
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
void launch_matvec_q8(cudaStream_t s, const MV3 &m, int n_units, const Q8Act &x, int n_tok, int unroll) {
    const int rows = m.n0 + m.n1 + m.n2;
    const unsigned gx = (unsigned)((rows + MV_WARPS - 1) / MV_WARPS);
    if (n_tok == 1) {   /* decode: the latency-bound case the unrolled loads are for */
        auto kernel = unroll == MV_UNROLL ? k_matvec_q8<T, 1, MV_UNROLL> : k_matvec_q8<T, 1, 1>;
        AGX_CUDA_LAUNCH(kernel, dim3(gx, 1), MV_WARPS * 32, s, m, n_units, x.qs, x.d, x.s, 1);
    } else {   /* token groups: 8 tokens of work per load already */
        auto kernel = k_matvec_q8<T, MV_GROUP, 1>;
        AGX_CUDA_LAUNCH(kernel, dim3(gx, (unsigned)((n_tok + MV_GROUP - 1) / MV_GROUP)), MV_WARPS * 32, s, m,
                        n_units, x.qs, x.d, x.s, n_tok);
    }
}
/* O = __half or float (AGX_TYPE_DISPATCH instantiates on the type only) */
template <int T, typename O>
void launch_dequant(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, O *out) {
    const size_t n = (size_t)n_rows * (size_t)n_units;
    auto kernel = k_dequant<T, O>;
    AGX_CUDA_LAUNCH(kernel, (unsigned)((n + 255) / 256), 256, s, W, row_bytes, n_rows, n_units, out);
}
template <int T>
void launch_dequant_f16(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, __half *out) {
    launch_dequant<T>(s, W, row_bytes, n_rows, n_units, out);
}
template <int T>
void launch_dequant_f32(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, float *out) {
    launch_dequant<T>(s, W, row_bytes, n_rows, n_units, out);
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
    AGX_TYPE_DISPATCH(AGX_CUDA_TYPES, type, launch_matvec,
                      (s, (const uint8_t *)W, row_bytes, n_rows, n_cols / 8, x, n_tok, y, y_ld))
    return cudaGetLastError();
}

cudaError_t matvec_q8_set(cudaStream_t s, uint32_t type, const MatvecSet &ms, int n_cols, const Q8Act &x,
                          int n_tok, int unroll) {
    if (ms.n < 1 || ms.n > MV_MATS || n_tok <= 0 || n_cols % 32 || n_tok > 65535 || !x.qs || !x.d ||
        (needs_act_sum(type) && !x.s) || (unroll != 1 && unroll != MV_UNROLL))
        return cudaErrorInvalidValue;
    long long rows = 0;
    for (int i = 0; i < ms.n; i++) {
        if (ms.n_rows[i] <= 0 || !ms.W[i] || !ms.y[i]) return cudaErrorInvalidValue;
        rows += ms.n_rows[i];
    }
    if (rows > INT32_MAX - MV_WARPS) return cudaErrorInvalidValue;
    MV3 m;
    m.W0 = (const uint8_t *)ms.W[0], m.rb0 = ms.row_bytes[0], m.n0 = ms.n_rows[0], m.y0 = ms.y[0], m.ld0 = ms.y_ld[0];
    m.W1 = nullptr, m.rb1 = 0, m.n1 = 0, m.y1 = nullptr, m.ld1 = 0;
    m.W2 = nullptr, m.rb2 = 0, m.n2 = 0, m.y2 = nullptr, m.ld2 = 0;
    if (ms.n > 1)
        m.W1 = (const uint8_t *)ms.W[1], m.rb1 = ms.row_bytes[1], m.n1 = ms.n_rows[1], m.y1 = ms.y[1],
        m.ld1 = ms.y_ld[1];
    if (ms.n > 2)
        m.W2 = (const uint8_t *)ms.W[2], m.rb2 = ms.row_bytes[2], m.n2 = ms.n_rows[2], m.y2 = ms.y[2],
        m.ld2 = ms.y_ld[2];
    const int nu = n_cols / 8;
    AGX_TYPE_DISPATCH(AGX_CUDA_QUANT_TYPES, type, launch_matvec_q8, (s, m, nu, x, n_tok, unroll))
    return cudaGetLastError();
}

template <int T>
void launch_matmul_mma(cudaStream_t s, const uint8_t *W, size_t row_bytes, int n_rows, int n_units, const Q8Act &x,
                       int n_tok, float *y, int y_ld) {
    auto kernel = k_matmul_mma<T>;
    const dim3 grid((unsigned)((n_rows + MQ_ROWS - 1) / MQ_ROWS), (unsigned)((n_tok + MQ_TOK - 1) / MQ_TOK));
    AGX_CUDA_LAUNCH(kernel, grid, MQ_WARPS * 32, s, W, row_bytes, n_rows, n_units, x.qs, x.d, x.s, n_tok, y, y_ld);
}

cudaError_t matmul_mma(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                       const Q8Act &x, int n_tok, float *y, int y_ld) {
    if (n_rows <= 0 || n_tok <= 0 || n_cols % 32 || n_tok > 65535 || !x.qs || !x.d || !W || !y ||
        (needs_act_sum(type) && !x.s))
        return cudaErrorInvalidValue;
    const uint8_t *w = (const uint8_t *)W;
    const int nu = n_cols / 8;
    AGX_TYPE_DISPATCH(AGX_CUDA_QUANT_TYPES, type, launch_matmul_mma, (s, w, row_bytes, n_rows, nu, x, n_tok, y, y_ld))
    return cudaGetLastError();
}

cudaError_t matvec_q8(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                      const Q8Act &x, int n_tok, float *y, int y_ld, int unroll) {
    MatvecSet m;
    m.n = 1, m.W[0] = W, m.row_bytes[0] = row_bytes, m.n_rows[0] = n_rows, m.y[0] = y, m.y_ld[0] = y_ld;
    return matvec_q8_set(s, type, m, n_cols, x, n_tok, unroll);
}

cudaError_t dequant_f16(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        __half *out) {
    if (n_rows <= 0 || n_cols % 32) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(AGX_CUDA_TYPES, type, launch_dequant_f16,
                      (s, (const uint8_t *)W, row_bytes, n_rows, n_cols / 8, out))
    return cudaGetLastError();
}

cudaError_t dequant_f32(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        float *out) {
    if (n_rows <= 0 || n_cols % 32) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(AGX_CUDA_TYPES, type, launch_dequant_f32,
                      (s, (const uint8_t *)W, row_bytes, n_rows, n_cols / 8, out))
    return cudaGetLastError();
}

cudaError_t embed(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_cols, const int32_t *tokens,
                  int n_tok, float *x) {
    if (n_tok <= 0 || n_cols % 32) return cudaErrorInvalidValue;
    AGX_TYPE_DISPATCH(AGX_CUDA_TYPES, type, launch_embed,
                      (s, (const uint8_t *)W, row_bytes, n_cols / 8, tokens, n_tok, x))
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
k_rmsnorm(float *x, const float *add, const float *__restrict__ w, float *out, int n, float eps, Q8Out q) {
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
    if (!q.fmt) {
        for (int i = threadIdx.x; i < n; i += ROW_THREADS) o[i] = (xr[i] * scale) * w[i];
        return;
    }
    /* fused quantization: every thread runs every 256-element step (barriers inside) */
    for (int base = 0; base < n; base += ROW_THREADS) {
        const int i = base + (int)threadIdx.x;
        float v = 0.0f;
        if (i < n) o[i] = v = (xr[i] * scale) * w[i];
        quant_seg(v, (int)blockIdx.x, n, base, q);
    }
}

cudaError_t rmsnorm(cudaStream_t s, float *x, const float *add, const float *w, float *out, int n_tok, int n,
                    float eps, const Q8Out &q) {
    if (n_tok <= 0) return cudaSuccess;
    if (q.h16 || q.f32 || (q.fmt && !q8out_ok(n, q))) return cudaErrorInvalidValue;
    AGX_CUDA_LAUNCH(k_rmsnorm, (unsigned)n_tok, ROW_THREADS, s, x, add, w, out, n, eps, q);
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

/* grid (ceil(n/256), n_tok): SwiGLU of 256 elements, then their quantization */
__global__ void __launch_bounds__(ROW_THREADS)
k_swiglu_q8(float *__restrict__ g, const float *__restrict__ u, int n, Q8Out q) {
    const int t = blockIdx.y, base = blockIdx.x * ROW_THREADS, i = base + (int)threadIdx.x;
    float r = 0.0f;
    if (i < n) {
        const size_t k = (size_t)t * n + i;
        const float v = g[k];
        g[k] = r = (v / (1.0f + expf(-v))) * u[k];
    }
    quant_seg(r, t, n, base, q);
}

cudaError_t swiglu_q8(cudaStream_t s, float *g, const float *u, int n, int n_tok, const Q8Out &q) {
    if (n_tok <= 0) return cudaSuccess;
    if (n <= 0 || n_tok > 65535 || q.h16 || q.f32 || !q8out_ok(n, q)) return cudaErrorInvalidValue;
    AGX_CUDA_LAUNCH(k_swiglu_q8, dim3((unsigned)((n + ROW_THREADS - 1) / ROW_THREADS), (unsigned)n_tok), ROW_THREADS,
                    s, g, u, n, q);
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
enum { ATT_WARPS = 8, ATT_MAX_HD = 256, ATT_TARGET_BLOCKS = 256, ATT_MAX_SPLIT = 32 };

__device__ __forceinline__ float kv_ld(const float *p) { return *p; }
__device__ __forceinline__ float kv_ld(const __half *p) { return __half2float(*p); }

/* Few (head, token) pairs (decode: n_head blocks) would leave most of the GPU
 * idle while each block walks the whole cache: split the positions over
 * several blocks (flash-decoding) until there are ~ATT_TARGET_BLOCKS. Depends
 * on the shapes only, so a captured graph stays valid at every position. */
int attention_splits(int n_head, int n_tok) {
    const long long blocks = (long long)n_head * (long long)n_tok;
    if (blocks <= 0 || blocks >= ATT_TARGET_BLOCKS) return 1;
    const long long s = (ATT_TARGET_BLOCKS + blocks - 1) / blocks;
    return s > ATT_MAX_SPLIT ? ATT_MAX_SPLIT : (int)s;
}

/* One block per (query head, token, split). The block's positions (all of
 * 0..pos, or its split's share) are walked by its warps, w, w+8, ... with an
 * online softmax each (running max m, sum l, weighted V in acc; lane owns dims
 * lane + 32*i); the 8 warp states are merged at the end. With one split the
 * block writes the output; with several it writes its (max, sum, unnormalised
 * V sum) to part, merged by k_attn_combine. */
template <typename KV>
__global__ void __launch_bounds__(ATT_WARPS * 32)
k_attention(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc, float *__restrict__ out,
            float *__restrict__ part, const int *__restrict__ pos0, int n_head, int n_head_kv, int hd, float scale) {
    const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z, n_split = gridDim.z;
    const int pos = *pos0 + t;
    const int chunk = (pos + 1 + n_split - 1) / n_split;
    const int p_begin = split * chunk, p_end = p_begin + chunk < pos + 1 ? p_begin + chunk : pos + 1;
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
    for (int p = p_begin + w; p < p_end; p += ATT_WARPS) {
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
    /* part rows: ((t * n_head + h) * n_split + split) * (hd + 2) = {M, L, o[hd]} */
    float *pr = n_split > 1 ? part + (((size_t)t * n_head + h) * n_split + split) * (size_t)(hd + 2) : nullptr;
    if (pr && threadIdx.x == 0) pr[0] = M, pr[1] = L;
    for (int d = threadIdx.x; d < hd; d += ATT_WARPS * 32) {
        float o = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++)
            if (sm[i] != -INFINITY) o += sacc[i][d] * expf(sm[i] - M);
        if (pr) pr[2 + d] = o;
        else out[(size_t)t * qd + (size_t)h * hd + d] = o / L;
    }
}

/* Merges the n_split partial states of one (head, token); a split with no
 * positions has M = -inf and contributes nothing. */
__global__ void __launch_bounds__(ATT_MAX_HD)
k_attn_combine(const float *__restrict__ part, float *__restrict__ out, int n_head, int hd, int n_split) {
    const int h = blockIdx.x, t = blockIdx.y;
    const float *pr = part + ((size_t)t * n_head + h) * n_split * (size_t)(hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, pr[(size_t)s * (hd + 2)]);
    float L = 0.0f;
    for (int s = 0; s < n_split; s++) {
        const float *r = pr + (size_t)s * (hd + 2);
        if (r[0] != -INFINITY) L += r[1] * expf(r[0] - M);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < n_split; s++) {
            const float *r = pr + (size_t)s * (hd + 2);
            if (r[0] != -INFINITY) o += r[2 + d] * expf(r[0] - M);
        }
        out[(size_t)t * n_head * hd + (size_t)h * hd + d] = o / L;
    }
}

cudaError_t attention(cudaStream_t s, const float *q, const void *kcache, const void *vcache, bool kv_f32,
                      float *out, const int *pos0, int n_tok, int n_head, int n_head_kv, int head_dim, float scale,
                      float *split_scratch) {
    if (n_tok <= 0) return cudaSuccess;
    if (head_dim > ATT_MAX_HD || n_head_kv <= 0 || n_head % n_head_kv || n_tok > 65535) return cudaErrorInvalidValue;
    const int n_split = split_scratch ? attention_splits(n_head, n_tok) : 1;
    const dim3 grid((unsigned)n_head, (unsigned)n_tok, (unsigned)n_split);
    if (kv_f32) {
        auto kernel = k_attention<float>;
        AGX_CUDA_LAUNCH(kernel, grid, ATT_WARPS * 32, s, q, (const float *)kcache, (const float *)vcache, out,
                        split_scratch, pos0, n_head, n_head_kv, head_dim, scale);
    } else {
        auto kernel = k_attention<__half>;
        AGX_CUDA_LAUNCH(kernel, grid, ATT_WARPS * 32, s, q, (const __half *)kcache, (const __half *)vcache, out,
                        split_scratch, pos0, n_head, n_head_kv, head_dim, scale);
    }
    if (n_split > 1) {
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) return e;
        AGX_CUDA_LAUNCH(k_attn_combine, dim3((unsigned)n_head, (unsigned)n_tok), ATT_MAX_HD, s, split_scratch, out,
                        n_head, head_dim, n_split);
    }
    return cudaGetLastError();
}

size_t attention_scratch_floats(int n_head, int head_dim, int max_tok) {
    size_t most = 0;
    for (int t = 1; t <= max_tok && (long long)n_head * t < ATT_TARGET_BLOCKS; t++) {
        const int n_split = attention_splits(n_head, t);
        const size_t need = (size_t)n_head * (size_t)t * (size_t)n_split * (size_t)(head_dim + 2);
        if (n_split > 1 && need > most) most = need;
    }
    return most;
}

template <int T> void dequant_host_t(const uint8_t *row, int64_t n, float *out) {
    for (int64_t u = 0; u < n / 8; u++) dec8<T>(row, (int)u, out + 8 * u);
}

} // namespace agxc

extern "C" bool agx_cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out) {
    using namespace agxc;
    if (n % 32 || n / 8 > INT32_MAX) return false;
    const uint8_t *r = (const uint8_t *)row;
#define AGX_CASE_HOST(T, _) case T: dequant_host_t<T>(r, n, out); return true;
    switch (type) {
    AGX_CUDA_TYPES(AGX_CASE_HOST, _)
    default: return false;
    }
#undef AGX_CASE_HOST
}
