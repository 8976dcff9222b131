/* arch.h — the model-architecture table (as data, like llama.cpp's llama-arch):
 * per architecture the GGUF key prefix, tensor names by role, which optional
 * tensors exist and the rope style; plus agx_hparams, the hyper-parameters read
 * from GGUF metadata and validated against the shapes of every tensor. */
#ifndef AGX_ARCH_H
#define AGX_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"
#include "agx/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_arch {
    AGX_ARCH_LLAMA = 0,   /* Llama 2/3, Mistral, Mistral-Nemo (explicit head_dim) */
    AGX_ARCH_QWEN2 = 1,   /* Qwen2 / Qwen2.5: q/k/v biases, NeoX rope */
    AGX_ARCH_COUNT
} agx_arch;

typedef enum agx_rope_style {
    AGX_ROPE_NORMAL = 0,  /* rotate adjacent pairs (x[2i], x[2i+1]) — llama */
    AGX_ROPE_NEOX = 1     /* rotate halves (x[i], x[i + n_rot/2]) — qwen2 */
} agx_rope_style;

typedef enum agx_rope_scaling {
    AGX_ROPE_SCALING_NONE = 0,
    AGX_ROPE_SCALING_LINEAR,   /* positions divided by factor */
    AGX_ROPE_SCALING_YARN,     /* recorded, not implemented by the forward pass yet */
    AGX_ROPE_SCALING_LLAMA3    /* per-dimension factors (rope_freqs.weight or low/high freq keys) */
} agx_rope_scaling;

/* Tensor roles. Global roles have no layer; per-layer roles use "blk.%d.". */
typedef enum agx_tensor_role {
    AGX_TENSOR_TOKEN_EMBD = 0,   /* [n_embd, n_vocab] */
    AGX_TENSOR_OUTPUT_NORM,      /* [n_embd] */
    AGX_TENSOR_OUTPUT,           /* [n_embd, n_vocab]; absent = tied to token_embd */
    AGX_TENSOR_ROPE_FREQS,       /* [n_rot/2] llama3 frequency factors; optional */
    AGX_TENSOR_ATTN_NORM,        /* [n_embd] */
    AGX_TENSOR_ATTN_Q,           /* [n_embd, n_head*head_dim] */
    AGX_TENSOR_ATTN_K,           /* [n_embd, n_head_kv*head_dim] */
    AGX_TENSOR_ATTN_V,           /* [n_embd, n_head_kv*head_dim_v] */
    AGX_TENSOR_ATTN_OUT,         /* [n_head*head_dim_v, n_embd] */
    AGX_TENSOR_ATTN_Q_BIAS,      /* [n_head*head_dim] */
    AGX_TENSOR_ATTN_K_BIAS,      /* [n_head_kv*head_dim] */
    AGX_TENSOR_ATTN_V_BIAS,      /* [n_head_kv*head_dim_v] */
    AGX_TENSOR_FFN_NORM,         /* [n_embd] */
    AGX_TENSOR_FFN_GATE,         /* [n_embd, n_ff] */
    AGX_TENSOR_FFN_UP,           /* [n_embd, n_ff] */
    AGX_TENSOR_FFN_DOWN,         /* [n_ff, n_embd] */
    AGX_TENSOR_ROLE_COUNT
} agx_tensor_role;

/* How a role appears in an architecture. */
typedef enum agx_tensor_need {
    AGX_TENSOR_ABSENT = 0,     /* never used by this architecture */
    AGX_TENSOR_REQUIRED,
    AGX_TENSOR_OPTIONAL        /* used when present (e.g. llama biases, untied output) */
} agx_tensor_need;

typedef struct agx_arch_info {
    agx_arch arch;
    const char *name;                               /* canonical GGUF name: "llama", "qwen2" */
    agx_rope_style rope_style;
    agx_tensor_need need[AGX_TENSOR_ROLE_COUNT];
} agx_arch_info;

const agx_arch_info *agx_arch_get(agx_arch arch);
/* By general.architecture value, including aliases ("mistral" -> llama); NULL if unsupported. */
const agx_arch_info *agx_arch_by_name(const char *name);
/* "llama, qwen2" (for messages). */
const char *agx_arch_supported_list(void);

/* "blk.%d.attn_q.weight" etc.; NULL for an out-of-range role. */
const char *agx_tensor_role_pattern(agx_tensor_role role);
bool agx_tensor_role_per_layer(agx_tensor_role role);
/* Writes the tensor name for role/layer into buf; returns buf. */
char *agx_tensor_name(agx_tensor_role role, int layer, char *buf, size_t n);

#define AGX_ARCH_NAME_MAX 64

typedef struct agx_hparams {
    agx_arch arch;
    const agx_arch_info *info;
    char arch_name[AGX_ARCH_NAME_MAX];   /* general.architecture as written = key prefix */
    uint32_t n_layer;
    uint32_t n_embd;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim;        /* <arch>.attention.key_length, else n_embd/n_head */
    uint32_t head_dim_v;      /* <arch>.attention.value_length, else head_dim */
    uint32_t n_ff;
    uint32_t n_vocab;
    uint32_t context_length;
    uint32_t n_rot;           /* <arch>.rope.dimension_count, else head_dim */
    float rope_freq_base;     /* default 10000 */
    agx_rope_style rope_style;
    agx_rope_scaling rope_scaling;
    float rope_scaling_factor;          /* 1 when none */
    uint32_t rope_orig_ctx;             /* rope.scaling.original_context_length, 0 = unset */
    float rope_low_freq_factor;         /* llama3 keys when present, else 0 */
    float rope_high_freq_factor;
    bool has_rope_freqs;                /* rope_freqs.weight tensor present */
    float rms_eps;            /* <arch>.attention.layer_norm_rms_epsilon, default 1e-5 */
    bool tied_output;         /* no output.weight: logits use token_embd */
    bool has_qkv_bias;        /* all three bias tensors present in every layer */
} agx_hparams;

/* Reads the hyper-parameters, detects the architecture (general.architecture,
 * else probing qwen2./llama.attention.head_count) and validates the presence,
 * shape and type of every tensor the architecture needs. Errors are
 * AGX_ERR_LOAD and name the file, tensor or key. */
agx_status agx_hparams_load(const agx_gguf *g, agx_hparams *hp, agx_error *err);
/* llama3 rope scaling given only as keys (no rope_freqs.weight tensor): the
 * n_rot/2 per-dimension frequency divisors the converter would have written. */
void agx_hparams_llama3_freq_factors(const agx_hparams *hp, float *ff);

/* The tensor for role (layer ignored for global roles); NULL when absent. */
const agx_gguf_tensor *agx_arch_tensor(const agx_gguf *g, agx_tensor_role role, int layer);

/* Expected ggml shape (ne[0..n_dims-1]) of role under hp; returns n_dims. */
uint32_t agx_hparams_tensor_shape(const agx_hparams *hp, agx_tensor_role role, int64_t ne[AGX_GGUF_MAX_DIMS]);

#ifdef __cplusplus
}
#endif
#endif
