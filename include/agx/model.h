/* model.h — a transformer model loaded from a GGUF file (Llama 2/3, Mistral,
 * Mistral-Nemo, Qwen2) and the per-thread inference context that runs it.
 *
 * The model is read-only after load: weights stay views into the mmap'ed file,
 * so several threads can share one agx_model, each with its own agx_context
 * (KV cache, scratch buffers, thread pool). */
#ifndef AGX_MODEL_H
#define AGX_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/device.h"
#include "agx/error.h"
#include "agx/ops.h"
#include "agx/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_model agx_model;
typedef struct agx_context agx_context;

/* Shape and settings of the loaded model (from GGUF metadata). */
typedef struct agx_model_config {
    const char *arch;          /* general.architecture: "llama" | "qwen2" (and aliases) */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    float rms_eps, rope_freq_base, rope_freq_scale;
    agx_rope_style rope_style;
    int n_rot;                 /* rotated dims per head */
    bool has_rope_freqs;       /* llama3-style per-dimension frequency factors */
    bool qkv_bias, tied_output;
    int32_t bos_id, eos_id, eot_id;   /* -1 when absent */
    uint64_t file_bytes;       /* size of the mmap'ed file */
    uint64_t weight_bytes;     /* bytes of all tensors */
    uint64_t repacked_bytes;   /* weights copied into another layout (0 = none) */
} agx_model_config;

agx_status agx_model_load(const char *path, agx_model **out, agx_error *err);
void agx_model_free(agx_model *m);
const agx_model_config *agx_model_get_config(const agx_model *m);
/* True for the model's end-of-generation tokens (eos, eot, and Llama-3's
 * <|end_of_text|>/<|eot_id|>/<|eom_id|> when present in the vocab). */
bool agx_model_is_eog(const agx_model *m, int32_t token);
/* The underlying GGUF reader (e.g. to load the tokenizer without reopening). */
const struct agx_gguf *agx_model_gguf(const agx_model *m);
/* One-line description, e.g. "qwen2 28L 1536d q4_K_M-mix, 986 MB mmap'ed". Static per model. */
const char *agx_model_desc(const agx_model *m);

/* ---- contexts ---- */
typedef struct agx_context_params {
    int n_ctx;           /* <= 0: AGX_CANDLE_CONTEXT_SIZE, default 2048; capped by the model */
    int n_threads;       /* <= 0: AGX_THREADS, else all cores */
    int n_ubatch;        /* tokens per internal forward chunk; <= 0: 512 */
    agx_kv_type kv_type; /* default AGX_KV_F16 */
    /* Where the forward pass runs: "auto" | "cpu" | "cuda" | "metal" (as
     * AGX_DEVICE, docs/cuda.md); NULL (default) = the AGX_DEVICE environment
     * value, else auto. "cpu" pins a context to the CPU engine (e.g. to compare
     * it with a GPU context in one process). The choice is made once, here. */
    const char *device;
} agx_context_params;

agx_context_params agx_context_default_params(void);
agx_status agx_context_create(const agx_model *m, const agx_context_params *p, agx_context **out,
                              agx_error *err);
void agx_context_free(agx_context *c);
int agx_context_n_ctx(const agx_context *c);
int agx_context_n_past(const agx_context *c);     /* tokens in the KV cache */
int agx_context_n_threads(const agx_context *c);   /* 1 for a GPU context (no CPU thread pool) */
/* Bytes of the KV cache for n_ctx positions, wherever it lives (host memory
 * on the CPU; device memory for a GPU context, which allocates no host cache). */
size_t agx_context_kv_bytes(const agx_context *c);
/* The device this context runs on (decided at creation: agx_device_select,
 * plus the fallback of a model the GPU path cannot run in auto mode; the
 * info's note says why when it is not the one asked for). Never NULL. */
const agx_device_info *agx_context_device(const agx_context *c);
/* Device memory this context uses (weights, KV cache, scratch); 0 on the CPU.
 * The weights are uploaded once per model and device and shared by all the
 * model's contexts there, so they count in each of them. */
size_t agx_context_device_bytes(const agx_context *c);
/* The part of agx_context_device_bytes that is the model's shared weights. */
size_t agx_context_device_weight_bytes(const agx_context *c);
/* Drops cached positions >= n_past (0 = empty cache). */
void agx_context_truncate(agx_context *c, int n_past);
/* KV state of positions [0, n) as bytes, for prompt caches (same model, same
 * kv type): size, copy out (n <= n_past), copy in (sets n_past = n). */
size_t agx_context_kv_state_bytes(const agx_context *c, int n);
agx_status agx_context_kv_export(const agx_context *c, int n, void *buf, size_t cap,
                                 agx_error *err);
agx_status agx_context_kv_import(agx_context *c, int n, const void *buf, size_t len,
                                 agx_error *err);

/* Feeds n_tokens tokens after the cached ones (positions n_past..), batched
 * (matrix-matrix), and writes logits into out:
 *   all_logits: [n_tokens][n_vocab]   else: [n_vocab] for the last token only.
 * Running past n_ctx or an out-of-range token id is an AGX_ERR_INFERENCE error
 * that leaves the cache unchanged. */
agx_status agx_context_eval(agx_context *c, const int32_t *tokens, int n_tokens, bool all_logits,
                            float *out, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
