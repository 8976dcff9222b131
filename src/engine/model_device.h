/* model_device.h — the seam between the model (agx_model / agx_context, CPU
 * forward pass in model.c) and a device forward pass (CUDA today): a
 * device-neutral view of a loaded model (shapes, host pointers to the weights in
 * their file layout, f32 copies of the 1-D tensors) and a hook table that a
 * context calls instead of the CPU path when agx_device_select chose a GPU.
 *
 * A device forward implements exactly agx_context_eval's contract for one
 * context: tokens at positions n_past.., logits for all rows or the last one. */
#ifndef AGX_MODEL_DEVICE_H
#define AGX_MODEL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/arch.h"
#include "agx/device.h"
#include "agx/error.h"
#include "agx/gguf.h"
#include "agx/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A weight matrix [n_rows][n_cols] in its GGUF layout (host memory, mmap'ed). */
typedef struct agx_dev_mat {
    const void *data;
    uint32_t type;            /* agx_ggml_type */
    int64_t n_cols, n_rows;   /* ne[0] (row length), ne[1] */
    size_t row_bytes;
} agx_dev_mat;

typedef struct agx_dev_layer {
    const float *attn_norm, *ffn_norm;   /* [n_embd] f32 */
    const float *bq, *bk, *bv;           /* NULL when absent */
    agx_dev_mat wq, wk, wv, wo, w_gate, w_up, w_down;
} agx_dev_layer;

typedef struct agx_dev_model {
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    float rms_eps;
    agx_rope_params rope;      /* style, n_dims, base, linear scale, freq factors (or NULL) */
    agx_dev_mat tok_embd, output;   /* output == tok_embd when tied */
    const float *output_norm;
    agx_dev_layer *layers;     /* n_layer */
    float *owned;              /* f32 copies of non-f32 vectors + rope factors (freed with the view) */
} agx_dev_model;

/* Builds the view from an open GGUF (the same validation as the CPU loader:
 * agx_hparams_load, then every tensor's shape and type). Weights stay pointers
 * into g, which must outlive the view. */
agx_status agx_dev_model_from_gguf(const agx_gguf *g, agx_dev_model *out, agx_error *err);
void agx_dev_model_free(agx_dev_model *dm);

/* Hook table of a device forward pass. Weights are uploaded once per model and
 * device and shared by every context of that model there (the model keeps them
 * in its agx_dev_weights_cache); a context's state borrows them. */
typedef struct agx_device_forward {
    const char *name;   /* "cuda" */
    /* Uploads the weights of dm (quantized, as in the file) to dev. The
     * result holds every shape the contexts need; dm may be freed after. */
    agx_status (*weights_create)(const agx_dev_model *dm, const agx_device_info *dev, void **weights,
                                 agx_error *err);
    size_t (*weights_bytes)(const void *weights);   /* device bytes of the weights */
    void (*weights_destroy)(void *weights);         /* after every context using them */
    /* A context on the weights: the KV cache for n_ctx positions (kv_type as
     * the CPU context's) and scratch for n_ubatch tokens. */
    agx_status (*create)(const void *weights, int n_ctx, int n_ubatch, agx_kv_type kv_type, void **state,
                         agx_error *err);
    /* agx_context_eval for tokens at positions n_past..n_past+n_tokens-1 (the
     * caller has range-checked tokens and positions). */
    agx_status (*eval)(void *state, const int32_t *tokens, int n_tokens, int n_past, bool all_logits,
                       float *out, agx_error *err);
    size_t (*mem_used)(const void *state);   /* device bytes of this context alone (KV cache, scratch) */
    /* Prompt caches (agx_context_kv_export/import): the first n cached positions
     * in the CPU context's layout, [layer][k, v][n][n_head_kv*head_dim] of the KV
     * type's elements; export needs len >= that many bytes, import exactly that.
     * The context keeps n_past itself (import: n_past = n). */
    agx_status (*kv_export)(const void *state, int n, void *buf, size_t len, agx_error *err);
    agx_status (*kv_import)(void *state, int n, const void *buf, size_t len, agx_error *err);
    void (*destroy)(void *state);
} agx_device_forward;

/* The forward pass for a device kind; NULL for the CPU (model.c's own path)
 * and for kinds not compiled into this build. */
const agx_device_forward *agx_device_forward_get(agx_device_kind k);

/* The device weights of one model: at most one upload per (forward pass,
 * device index), shared by the contexts that use it and freed when the last of
 * them releases it. Thread-safe (contexts may be created from several threads;
 * a second context waits for the first one's upload and reuses it). */
typedef struct agx_dev_weights_cache agx_dev_weights_cache;
agx_status agx_dev_weights_cache_create(agx_dev_weights_cache **out, agx_error *err);
/* Frees the cache and any weights still held (contexts must be gone by then). */
void agx_dev_weights_cache_free(agx_dev_weights_cache *wc);
/* The weights of g on dev for f: the cached upload, or a new one (the model
 * view is built from g for it). Each successful acquire needs one release. */
agx_status agx_dev_weights_acquire(agx_dev_weights_cache *wc, const agx_device_forward *f, const agx_gguf *g,
                                   const agx_device_info *dev, void **weights, agx_error *err);
void agx_dev_weights_release(agx_dev_weights_cache *wc, const agx_device_forward *f, void *weights);

/* The device side of a context: acquires the weights from wc and creates the
 * state on them; on failure releases what it acquired. */
agx_status agx_device_context_open(agx_dev_weights_cache *wc, const agx_device_forward *f, const agx_gguf *g,
                                   const agx_device_info *dev, int n_ctx, int n_ubatch, agx_kv_type kv_type,
                                   void **weights, void **state, agx_error *err);

/* What agx_context_create calls (docs/cuda.md, "Hooking into the model"):
 * decides the device for `request` (auto|cpu|cuda|metal; NULL = the AGX_DEVICE
 * environment value) with agx_device_select and, for a GPU, opens the device
 * side with agx_device_context_open. On AGX_OK with *fwd == NULL the context
 * runs on the CPU (info says why when auto fell back). An explicit cuda that
 * cannot be honoured is an error. At most one warning line is logged per call
 * (auto falling back to the CPU). */
agx_status agx_device_context_create_for(const char *request, agx_dev_weights_cache *wc, const agx_gguf *g,
                                         int n_ctx, int n_ubatch, agx_kv_type kv_type,
                                         const agx_device_forward **fwd, void **weights, void **state,
                                         agx_device_info *info, agx_error *err);

/* agx_context_create with the forward pass f on device dev instead of the one
 * AGX_DEVICE selects (p->device is ignored): for tests of the context's
 * delegation (a hook table that wraps another implementation) and for
 * emulated devices. f == NULL creates a CPU context. Defined in model.c. */
struct agx_model;
struct agx_context;
struct agx_context_params;
agx_status agx_context_create_on(const struct agx_model *m, const struct agx_context_params *p,
                                 const agx_device_forward *f, const agx_device_info *dev,
                                 struct agx_context **out, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
