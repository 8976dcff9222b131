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

/* Weight types with device decoders: f32, f16, bf16, q4_0, q5_0, q8_0, q4_K, q5_K, q6_K.
 * Rows must hold a multiple of 32 elements. */
bool type_supported(uint32_t type);

/* y[t*y_ld + r] = dot(W[r], x[t*n_cols ..]) for r < n_rows, t < n_tok (a warp per row). */
cudaError_t matvec(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                   const float *x, int n_tok, float *y, int y_ld);
/* out[r*n_cols + c] = W[r][c] as f16, for n_rows rows starting at W. */
cudaError_t dequant_f16(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_rows, int n_cols,
                        __half *out);
cudaError_t f32_to_f16(cudaStream_t s, const float *x, __half *y, size_t n);
/* x[t] = row tokens[t] of W (n_cols wide), as f32. */
cudaError_t embed(cudaStream_t s, uint32_t type, const void *W, size_t row_bytes, int n_cols, const int32_t *tokens,
                  int n_tok, float *x);
/* Per row t < n_tok: if add: x[t] += add[t]; out[t] = x[t] / rms(x[t]) * w. */
cudaError_t rmsnorm(cudaStream_t s, float *x, const float *add, const float *w, float *out, int n_tok, int n,
                    float eps);
cudaError_t add_inplace(cudaStream_t s, float *y, const float *x, size_t n);
/* q,k,v += biases (when bq != NULL); RoPE on q and k with the cos/sin table
 * rope_cs[pos][n_rot] at pos = *pos0 + t; k and v stored into the cache rows. */
cudaError_t qkv_rope_store(cudaStream_t s, float *q, float *k, float *v, const float *bq, const float *bk,
                           const float *bv, const float *rope_cs, const int *pos0, int n_tok, int n_head,
                           int n_head_kv, int head_dim, int n_rot, bool neox, void *kcache, void *vcache,
                           bool kv_f32);
/* Causal GQA attention for n_tok queries at positions *pos0 + t over cache rows 0..pos. */
cudaError_t attention(cudaStream_t s, const float *q, const void *kcache, const void *vcache, bool kv_f32,
                      float *out, const int *pos0, int n_tok, int n_head, int n_head_kv, int head_dim, float scale);
/* g[i] = silu(g[i]) * u[i] */
cudaError_t swiglu(cudaStream_t s, float *g, const float *u, size_t n);

} // namespace agxc
#endif
