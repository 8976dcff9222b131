/* ops.h — the non-matmul transformer operations of the native engine: RMSNorm,
 * rotary embeddings (normal and NeoX pairing, frequency base, linear scaling,
 * per-dimension frequency factors), softmax, SwiGLU and grouped-query attention
 * over a KV cache. Numerics follow llama.cpp's CPU ops (double-accumulated
 * RMSNorm, the same RoPE angle recurrence, ggml's exp polynomial and softmax
 * grouping, its single-query attention summation order for decode steps) so
 * that logits agree closely. */
#ifndef AGX_OPS_H
#define AGX_OPS_H

#include <stdint.h>

#include "agx/arch.h"   /* agx_rope_style: AGX_ROPE_NORMAL (llama pairs), AGX_ROPE_NEOX (halves) */
#include "agx/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * (w ? w[i] : 1). out may alias x. */
void agx_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);

/* softmax in place over n values (max-subtracted; 16-value groups summed in
 * float, the groups in double, as ggml). -inf entries become exactly 0. */
void agx_softmax(float *x, int64_t n);

/* out[i] = silu(gate[i]) * up[i]; out may alias gate or up. */
void agx_swiglu(float *out, const float *gate, const float *up, int64_t n);

/* y[i] += x[i] */
void agx_add_inplace(float *y, const float *x, int64_t n);

/* ---- rotary position embeddings ---- */
typedef struct agx_rope_params {
    agx_rope_style style;
    int n_dims;                  /* rotated dimensions per head (<= head_dim, even) */
    float freq_base;             /* theta_i = pos * base^(-2i/n_dims) */
    float freq_scale;            /* linear scaling: theta *= freq_scale (1 = none) */
    const float *freq_factors;   /* n_dims/2 divisors (llama3 rope_freqs) or NULL */
} agx_rope_params;

/* Fills cs[2*i] = cos(theta_i), cs[2*i+1] = sin(theta_i) for i < n_dims/2. */
void agx_rope_cache(const agx_rope_params *p, int64_t pos, float *cs);
/* Rotates n_heads consecutive heads of head_dim floats using a cache from agx_rope_cache. */
void agx_rope_apply(const agx_rope_params *p, const float *cs, float *x, int n_heads, int head_dim);

/* ---- attention ---- */
typedef enum agx_kv_type { AGX_KV_F16 = 0, AGX_KV_F32 = 1 } agx_kv_type;

typedef struct agx_attn_params {
    int n_head, n_head_kv, head_dim;
    agx_kv_type kv_type;
    const void *k, *v;       /* one layer's cache: [pos][n_head_kv][head_dim] of kv_type */
    float scale;             /* usually 1/sqrt(head_dim) */
    float *scratch;          /* optional: n_threads blocks of scratch_per_thread floats */
    size_t scratch_per_thread;   /* (NULL/too small: allocated per call) */
} agx_attn_params;

/* Floats of scratch one thread needs for attention over n_ctx positions. */
size_t agx_attention_scratch_floats(const agx_attn_params *p, int64_t n_ctx);

/* Causal GQA attention for n_tok queries at positions pos0 .. pos0+n_tok-1
 * (the cache must already hold keys/values up to pos0+n_tok-1).
 * q, out: [n_tok][n_head*head_dim]. Query head h reads kv head h / (n_head/n_head_kv).
 * Work is split over (kv head, block of tokens) on tp (tp may be NULL: single thread);
 * a single query (n_tok == 1) is summed in llama.cpp's decode order. The result
 * does not depend on the number of threads. */
void agx_attention(agx_threadpool *tp, const agx_attn_params *p, const float *q, int n_tok,
                   int64_t pos0, float *out);

/* Stores n floats into a cache row of type t. */
void agx_kv_store(agx_kv_type t, void *dst, const float *src, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
