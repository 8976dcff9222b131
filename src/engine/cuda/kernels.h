/* kernels.h — launchers of the CUDA kernels in kernels.cu (C++ only, internal to
 * src/engine/cuda). Each returns the launch status (cudaGetLastError).
 * Layouts: weights as in the GGUF file (row-major [n_rows][row_bytes], blocks
 * exactly as src/engine/quant.c decodes them); activations f32 row-major
 * [token][dim]; KV cache per layer [n_ctx][n_head_kv*head_dim] in f16 or f32.
 * UNVERIFIED AT RUN TIME: written and compiled without a GPU (see docs/cuda.md). */
#ifndef AGX_CUDA_KERNELS_H
#define AGX_CUDA_KERNELS_H

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

namespace agxc {

/* Weight types with device decoders: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0,
 * q2_K, q3_K, q4_K, q5_K, q6_K. Rows must hold a multiple of 32 elements. */
bool type_supported(uint32_t type);

/* y[t*y_ld + r] = dot(W[r], x[t*n_cols ..]) for r < n_rows, t < n_tok (a warp per row). */
cudaError_t matvec(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                   const float *x, int n_tok, float *y, int y_ld);
/* ---- 8-bit activations (the CPU engine's numerics, see docs/cuda.md) ----
 * Q8_0 = act_q8_0 of src/engine/quant.c (32-element blocks, d = f16(amax/127));
 * Q8_K = quant_q8_K of src/engine/quant_ref.h (256-element blocks, d f32). Device
 * layout (not the CPU block structs): qs int8 [n_tok][n], d f32 [n_tok][n/32];
 * a q8_K scale is repeated for each of its eight 32-element sub-blocks so that
 * every matvec reads d[unit/4]. Bit-identical to the CPU quantizers. */
enum { ACT_Q8_0 = 1, ACT_Q8_K = 2 };
/* s (q8_0 only, optional): per 32 elements act_q8_1's sum term f16(d * sum(qs))
 * with d before its f16 rounding, as a float; the q4_1/q5_1 kernels need it. */
struct Q8Act {
    int8_t *qs = nullptr;
    float *d = nullptr;
    float *s = nullptr;
};
/* Where a quantizing kernel writes a row: the formats in fmt (ACT_* bits) into
 * q0 / qk, and when h16 / f32 != nullptr also dequantize(quantize(x)) as f16 /
 * f32 through format h16_fmt (the prompt GEMM's activations). */
struct Q8Out {
    int fmt = 0;
    Q8Act q0, qk;
    __half *h16 = nullptr;
    float *f32 = nullptr;
    int h16_fmt = 0;
};
/* ACT_Q8_0 for q4_0/q4_1/q5_0/q5_1/q8_0, ACT_Q8_K for q2_K..q6_K, 0 otherwise (f32 path). */
int act_format(uint32_t type);
/* q4_1/q5_1: their 8-bit kernels also read Q8Act::s */
bool needs_act_sum(uint32_t type);
/* Quantize n_tok rows of n f32 (n % 32 == 0; n % 256 == 0 for ACT_Q8_K). */
cudaError_t quantize_act(cudaStream_t s, const float *x, int n, int n_tok, const Q8Out &o);
/* As matvec, with W quantized (act_format(type) != 0) and x given in that format.
 * unroll (1 or MV_UNROLL, AGX_CUDA_MMV_UNROLL): units per lane whose loads a
 * one-token matvec issues together; the results are the same bits either way. */
enum { MV_UNROLL = 4 };
cudaError_t matvec_q8(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                      const Q8Act &x, int n_tok, float *y, int y_ld, int unroll = MV_UNROLL);
/* Up to MV_MATS matrices of one type reading the same input in ONE launch
 * (q/k/v, gate/up): matrix i writes y[i][t*y_ld[i] + r]. */
enum { MV_MATS = 3 };
struct MatvecSet {
    int n = 0;
    const void *W[MV_MATS] = {};
    size_t row_bytes[MV_MATS] = {};
    int n_rows[MV_MATS] = {};
    float *y[MV_MATS] = {};
    int y_ld[MV_MATS] = {};
};
cudaError_t matvec_q8_set(cudaStream_t s, uint32_t type, const MatvecSet &m, int n_cols, const Q8Act &x, int n_tok,
                          int unroll = MV_UNROLL);
/* As matvec_q8 for prompts: the same integer products per 32 elements (16 for
 * the scales of q2_K, q3_K, q6_K) on the tensor cores (int8 mma, sm_80+; a shuffle + dp4a
 * fallback computes the same elsewhere), tiles of 64 rows x 32 tokens. */
cudaError_t matmul_mma(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                       const Q8Act &x, int n_tok, float *y, int y_ld);

/* out[r*n_cols + c] = W[r][c] as f16, for n_rows rows starting at W. */
cudaError_t dequant_f16(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        __half *out);
/* The same as f32 (the exact-product SGEMM path for quantized weights). */
cudaError_t dequant_f32(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        float *out);
cudaError_t f32_to_f16(cudaStream_t s, const float *x, __half *y, size_t n);
/* x[t] = row tokens[t] of W (n_cols wide), as f32. */
cudaError_t embed(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_cols, const int32_t *tokens,
                  int n_tok, float *x);
/* Per row t < n_tok: if add: x[t] += add[t]; out[t] = x[t] / rms(x[t]) * w;
 * and out quantized as q (q.fmt, fused: no extra launch). */
cudaError_t rmsnorm(cudaStream_t s, float *x, const float *add, const float *w, float *out, int n_tok, int n,
                    float eps, const Q8Out &q = Q8Out());
cudaError_t add_inplace(cudaStream_t s, float *y, const float *x, size_t n);
/* q,k,v += biases (when bq != NULL); RoPE on q and k with the cos/sin table
 * rope_cs[pos][n_rot] at pos = *pos0 + t; k and v stored into the cache rows. */
cudaError_t qkv_rope_store(cudaStream_t s, float *q, float *k, float *v, const float *bq, const float *bk,
                           const float *bv, const float *rope_cs, const int *pos0, int n_tok, int n_head,
                           int n_head_kv, int head_dim, int n_rot, bool neox, void *kcache, void *vcache,
                           bool kv_f32);
/* Causal GQA attention for n_tok queries at positions *pos0 + t over cache rows 0..pos.
 * With split_scratch (attention_scratch_floats(n_head, head_dim, max n_tok) floats),
 * few (head, token) pairs split the positions over several blocks (flash-decoding:
 * attention_splits of them) plus a combine launch; NULL: one block per pair. */
cudaError_t attention(cudaStream_t s, const float *q, const void *kcache, const void *vcache, bool kv_f32,
                      float *out, const int *pos0, int n_tok, int n_head, int n_head_kv, int head_dim, float scale,
                      float *split_scratch);
int attention_splits(int n_head, int n_tok);
/* floats of split scratch for steps of up to max_tok tokens (0: never split) */
size_t attention_scratch_floats(int n_head, int head_dim, int max_tok);
/* g[i] = silu(g[i]) * u[i] */
cudaError_t swiglu(cudaStream_t s, float *g, const float *u, size_t n);
/* The same for n_tok rows of n, each row also quantized as q (fused). */
cudaError_t swiglu_q8(cudaStream_t s, float *g, const float *u, int n, int n_tok, const Q8Out &q);

} // namespace agxc
#endif
