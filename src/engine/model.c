/* model.c — loads a Llama/Mistral/Qwen2 GGUF into an agx_model (hyper-parameters
 * plus tensor views into the mmap'ed file, nothing copied) and runs the
 * transformer forward pass for an agx_context (KV cache + scratch + threads).
 * Read agx_context_eval -> forward_chunk top to bottom for the math.
 * A context on a GPU (AGX_DEVICE, decided once in agx_context_create) keeps
 * only its bookkeeping here and delegates eval and the KV state to the device
 * forward pass's hook table (engine/model_device.h). */
#include "agx/model.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/arch.h"
#include "agx/gguf.h"
#include "agx/quant.h"
#include "agx/util.h"
#include "engine/model_device.h"
#include "engine/threadpool_impl.h"

/* A weight matrix: a view into the file, or its x16 copy for the CPU's
 * tiles (model_prepare_cpu). */
typedef struct wmat {
    const void *data;
    uint32_t type;
    uint32_t layout;          /* AGX_WLAYOUT_* */
    int64_t n_cols, n_rows;   /* ne[0], ne[1] */
} wmat;

static agx_matmul_dst mat_dst(const wmat *w, float *y) {
    return (agx_matmul_dst){w->type, w->data, w->n_rows, y, w->layout};
}

typedef struct layer {
    const float *attn_norm, *ffn_norm;
    const float *bq, *bk, *bv;   /* NULL when absent */
    wmat wq, wk, wv, wo, w_gate, w_up, w_down;
} layer;

struct agx_model {
    agx_gguf *gguf;
    agx_hparams hp;
    agx_model_config cfg;
    char desc[256];
    wmat tok_embd, output;
    const float *output_norm;
    const float *rope_freqs;   /* n_rot/2 or NULL */
    layer *layers;
    float *owned_f32;          /* 1-D tensors stored in a non-f32 type, converted once */
    size_t owned_used, owned_cap;
    int32_t eog[8];
    int n_eog;
    agx_dev_weights_cache *dev_weights;   /* uploaded on a GPU context's demand, shared by the contexts there */
    /* The first CPU context repacks what the CPU's tiles read faster in
     * another layout (model_prepare_cpu); a GPU-only process never pays for it. */
    pthread_mutex_t cpu_lock;
    bool cpu_prepared;
    void *repacked;            /* the x16 copies, one allocation */
};

/* ------------------------------------------------------------------------ */
/* loading                                                                   */
/* ------------------------------------------------------------------------ */

static agx_status find_tensor(const agx_gguf *g, const char *path, const char *name, bool required,
                              const agx_gguf_tensor **out, agx_error *err) {
    *out = agx_gguf_find_tensor(g, name);
    if (!*out && required)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: tensor '%s' is missing (is this a complete model file?)",
                             path, name);
    return AGX_OK;
}

/* A matrix [n_rows][n_cols] whose type has a dot kernel. */
static agx_status load_mat(agx_model *m, const char *path, const char *name, int64_t n_cols,
                           int64_t n_rows, bool required, wmat *w, agx_error *err) {
    const agx_gguf_tensor *t;
    memset(w, 0, sizeof *w);
    agx_status st = find_tensor(m->gguf, path, name, required, &t, err);
    if (st != AGX_OK || !t) return st;
    if (t->ne[0] != n_cols || t->ne[1] != n_rows || t->ne[2] != 1 || t->ne[3] != 1)
        return agx_error_set(err, AGX_ERR_LOAD,
                             "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld] "
                             "from the model's hyper-parameters",
                             path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                             (long long)t->ne[3], (long long)n_cols, (long long)n_rows);
    const agx_type_traits *tt = agx_type_traits_get(t->type);
    if (!tt || !tt->vec_dot || !tt->to_float)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: tensor '%s' has type %s (id %u), which this build cannot compute with",
                             path, name, agx_type_name(t->type), t->type);
    const size_t row = agx_type_row_size(t->type, n_cols);
    if (row == 0 || t->nbytes < row * (uint64_t)n_rows)
        return agx_error_set(err, AGX_ERR_LOAD,
                             "%s: tensor '%s' (%s) holds %llu bytes, too few for %lld rows of %lld elements",
                             path, name, tt->name, (unsigned long long)t->nbytes, (long long)n_rows,
                             (long long)n_cols);
    w->data = t->data;
    w->type = t->type;
    w->n_cols = n_cols;
    w->n_rows = n_rows;
    return AGX_OK;
}

/* A 1-D float vector of n elements (converted to f32 if stored otherwise). */
static agx_status load_vec(agx_model *m, const char *path, const char *name, int64_t n, bool required,
                           const float **out, agx_error *err) {
    const agx_gguf_tensor *t;
    *out = NULL;
    agx_status st = find_tensor(m->gguf, path, name, required, &t, err);
    if (st != AGX_OK || !t) return st;
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: tensor '%s' has %lld x %lld elements, expected a vector of %lld",
                             path, name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    const agx_type_traits *tt = agx_type_traits_get(t->type);
    const size_t bytes = agx_type_row_size(t->type, n);
    if (!tt || !tt->to_float || bytes == 0 || t->nbytes < bytes)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: tensor '%s' has unusable type %s for a vector of %lld",
                             path, name, agx_type_name(t->type), (long long)n);
    if (t->type == AGX_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = t->data;
        return AGX_OK;
    }
    if (m->owned_used + (size_t)n > m->owned_cap)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: too many non-f32 vectors", path);
    float *dst = m->owned_f32 + m->owned_used;
    tt->to_float(t->data, dst, n);
    m->owned_used += (size_t)n;
    *out = dst;
    return AGX_OK;
}

static int32_t find_token_text(const agx_gguf *g, const char *text) {
    const agx_gguf_kv *kv = agx_gguf_find(g, "tokenizer.ggml.tokens");
    if (!kv || kv->type != AGX_GGUF_ARRAY || kv->arr_type != AGX_GGUF_STRING) return -1;
    const size_t len = strlen(text);
    /* special tokens live at the end of the vocab: search backwards */
    for (uint64_t i = kv->arr_len; i-- > 0;) {
        agx_gguf_str s;
        if (agx_gguf_arr_str(g, kv, i, &s) && s.len == len && memcmp(s.ptr, text, len) == 0)
            return (int32_t)i;
    }
    return -1;
}

static void add_eog(agx_model *m, int64_t id) {
    if (id < 0 || id >= m->cfg.n_vocab) return;
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == id) return;
    if (m->n_eog < (int)(sizeof m->eog / sizeof m->eog[0])) m->eog[m->n_eog++] = (int32_t)id;
}

static int32_t get_token_id(const agx_gguf *g, const char *key) {
    uint32_t v;
    return agx_gguf_get_u32(g, key, &v) && v < INT32_MAX ? (int32_t)v : -1;
}

static agx_status load_hparams(agx_model *m, const char *path, agx_error *err) {
    const agx_gguf *g = m->gguf;
    agx_hparams *hp = &m->hp;
    agx_status st = agx_hparams_load(g, hp, err);
    if (st != AGX_OK) return st;
    agx_model_config *c = &m->cfg;
    if (hp->head_dim_v != hp->head_dim)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: key_length %u != value_length %u is not supported",
                             path, hp->head_dim, hp->head_dim_v);
    if (hp->rope_scaling == AGX_ROPE_SCALING_YARN)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: YaRN rope scaling is not implemented (supported: none, "
                             "linear, llama3)", path);
    if (hp->rope_scaling == AGX_ROPE_SCALING_LLAMA3 && !hp->has_rope_freqs &&
        !(hp->rope_low_freq_factor > 0 && hp->rope_high_freq_factor > hp->rope_low_freq_factor))
        return agx_error_set(err, AGX_ERR_LOAD, "%s: llama3 rope scaling without rope_freqs.weight needs "
                             "rope.scaling.low_freq_factor < high_freq_factor", path);
    c->arch = hp->arch_name;
    c->rope_style = hp->rope_style;
    c->n_embd = (int)hp->n_embd;
    c->n_layer = (int)hp->n_layer;
    c->n_head = (int)hp->n_head;
    c->n_head_kv = (int)hp->n_head_kv;
    c->head_dim = (int)hp->head_dim;
    c->n_ff = (int)hp->n_ff;
    c->n_rot = (int)hp->n_rot;
    c->n_ctx_train = hp->context_length > INT32_MAX ? INT32_MAX : (int)hp->context_length;
    c->rms_eps = hp->rms_eps;
    c->rope_freq_base = hp->rope_freq_base;
    c->rope_freq_scale = hp->rope_scaling == AGX_ROPE_SCALING_LINEAR ? 1.0f / hp->rope_scaling_factor : 1.0f;
    c->qkv_bias = hp->has_qkv_bias;
    c->tied_output = hp->tied_output;
    const agx_gguf_tensor *te = agx_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->ne[1] != (int64_t)hp->n_vocab || hp->n_vocab > INT32_MAX)
        return agx_error_set(err, AGX_ERR_LOAD, "%s: token_embd.weight does not have n_vocab = %u rows", path,
                             hp->n_vocab);
    c->n_vocab = (int)hp->n_vocab;
    c->bos_id = get_token_id(g, "tokenizer.ggml.bos_token_id");
    c->eos_id = get_token_id(g, "tokenizer.ggml.eos_token_id");
    c->eot_id = get_token_id(g, "tokenizer.ggml.eot_token_id");
    /* end of generation: eos, eot, eom, plus the chat-turn terminators llama.cpp
     * also treats as EOG when the vocab has them */
    add_eog(m, c->eos_id);
    add_eog(m, c->eot_id);
    add_eog(m, get_token_id(g, "tokenizer.ggml.eom_token_id"));
    static const char *const eog_texts[] = {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|im_end|>",
                                            "<|endoftext|>", "<|end|>"};
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) add_eog(m, find_token_text(g, eog_texts[i]));
    c->file_bytes = agx_gguf_file_size(g);
    for (size_t i = 0; i < agx_gguf_n_tensors(g); i++) c->weight_bytes += agx_gguf_tensor_at(g, i)->nbytes;
    return AGX_OK;
}

static agx_status load_tensors(agx_model *m, const char *path, agx_error *err) {
    agx_model_config *c = &m->cfg;
    const int64_t E = c->n_embd, QD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim;
    agx_status st;
    /* room for every 1-D tensor in case the file stores them as f16 */
    m->owned_cap = (size_t)(E * (2 * (size_t)c->n_layer + 1) + (size_t)c->n_layer * (size_t)(QD + 2 * KD) + c->n_rot);
    /* (n_rot covers rope_freqs stored as f16 or computed from llama3 keys) */
    m->owned_f32 = malloc(sizeof(float) * m->owned_cap);
    m->layers = calloc((size_t)c->n_layer, sizeof(layer));
    if (!m->owned_f32 || !m->layers) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory loading %s", path);

    if ((st = load_mat(m, path, "token_embd.weight", E, c->n_vocab, true, &m->tok_embd, err))) return st;
    if ((st = load_vec(m, path, "output_norm.weight", E, true, &m->output_norm, err))) return st;
    if ((st = load_mat(m, path, "output.weight", E, c->n_vocab, false, &m->output, err))) return st;
    c->tied_output = m->output.data == NULL;
    if (c->tied_output) m->output = m->tok_embd;
    if ((st = load_vec(m, path, "rope_freqs.weight", c->n_rot / 2, false, &m->rope_freqs, err))) return st;
    if (!m->rope_freqs && m->hp.rope_scaling == AGX_ROPE_SCALING_LLAMA3) {
        float *ff = m->owned_f32 + m->owned_used;
        agx_hparams_llama3_freq_factors(&m->hp, ff);
        m->owned_used += (size_t)c->n_rot / 2;
        m->rope_freqs = ff;
    }
    c->has_rope_freqs = m->rope_freqs != NULL;
    for (int l = 0; l < c->n_layer; l++) {
        layer *L = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        if ((st = load_vec(m, path, NAME("attn_norm.weight"), E, true, &L->attn_norm, err))) return st;
        if ((st = load_vec(m, path, NAME("ffn_norm.weight"), E, true, &L->ffn_norm, err))) return st;
        if ((st = load_mat(m, path, NAME("attn_q.weight"), E, QD, true, &L->wq, err))) return st;
        if ((st = load_mat(m, path, NAME("attn_k.weight"), E, KD, true, &L->wk, err))) return st;
        if ((st = load_mat(m, path, NAME("attn_v.weight"), E, KD, true, &L->wv, err))) return st;
        if ((st = load_mat(m, path, NAME("attn_output.weight"), QD, E, true, &L->wo, err))) return st;
        if ((st = load_mat(m, path, NAME("ffn_gate.weight"), E, c->n_ff, true, &L->w_gate, err))) return st;
        if ((st = load_mat(m, path, NAME("ffn_up.weight"), E, c->n_ff, true, &L->w_up, err))) return st;
        if ((st = load_mat(m, path, NAME("ffn_down.weight"), c->n_ff, E, true, &L->w_down, err))) return st;
        /* biases are optional for every architecture (qwen2 has q/k/v biases) */
        if ((st = load_vec(m, path, NAME("attn_q.bias"), QD, false, &L->bq, err))) return st;
        if ((st = load_vec(m, path, NAME("attn_k.bias"), KD, false, &L->bk, err))) return st;
        if ((st = load_vec(m, path, NAME("attn_v.bias"), KD, false, &L->bv, err))) return st;
#undef NAME
    }
    return AGX_OK;
}

static const char *ftype_summary(const agx_model *m, char *buf, size_t n) {
    /* the most common matrix type by bytes, e.g. "q4_K" (+"-mix" when several) */
    uint64_t bytes[AGX_TYPE_COUNT] = {0};
    for (size_t i = 0; i < agx_gguf_n_tensors(m->gguf); i++) {
        const agx_gguf_tensor *t = agx_gguf_tensor_at(m->gguf, i);
        if (t->type < AGX_TYPE_COUNT && t->n_dims >= 2) bytes[t->type] += t->nbytes;
    }
    int best = 0, kinds = 0;
    for (int i = 0; i < AGX_TYPE_COUNT; i++) {
        if (bytes[i]) kinds++;
        if (bytes[i] > bytes[best]) best = i;
    }
    snprintf(buf, n, "%s%s", agx_type_name((uint32_t)best), kinds > 1 ? "-mix" : "");
    return buf;
}

static void model_describe(agx_model *m) {
    const agx_model_config *c = &m->cfg;
    char ft[32];
    snprintf(m->desc, sizeof m->desc, "%s %dL %dd %dh/%dkv hd%d ff%d vocab %d, %s, %.1f MB mmap'ed (%.1f MB repacked)",
             c->arch, c->n_layer, c->n_embd, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab,
             ftype_summary(m, ft, sizeof ft), (double)c->file_bytes / 1e6, (double)c->repacked_bytes / 1e6);
}

/* Before the first CPU context: the matrices the CPU's tiles read faster 16
 * rows at a time (q5_0, and q4_0 with long rows, on AVX-512 VNNI: no transpose per block,
 * docs/kernels.md) are copied into that layout, and the file's pages of the
 * originals are dropped from the resident set (so memory stays about the
 * file's size). The token embeddings stay (rows are looked up one at a
 * time), and so does an output matrix tied to them. Without the memory for
 * the copies the model runs on the rows, as before. Contexts created later
 * find it done; the lock orders every CPU context after it. */
static void model_prepare_cpu(agx_model *m) {
    pthread_mutex_lock(&m->cpu_lock);
    if (m->cpu_prepared) {
        pthread_mutex_unlock(&m->cpu_lock);
        return;
    }
    m->cpu_prepared = true;
    const size_t per_layer = 7;
    const size_t n_mats = (size_t)m->cfg.n_layer * per_layer + 1;
    wmat **mats = calloc(n_mats, sizeof *mats);
    size_t total = 0, n = 0;
    for (int l = 0; mats && l < m->cfg.n_layer; l++) {
        layer *L = &m->layers[l];
        wmat *lm[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < per_layer; i++) mats[n++] = lm[i];
    }
    if (mats && m->output.data != m->tok_embd.data) mats[n++] = &m->output;
    for (size_t i = 0; i < n; i++) {
        const size_t b = agx_matmul_x16_size(mats[i]->type, mats[i]->n_rows, mats[i]->n_cols);
        if (!b) mats[i] = NULL;
        else total += (b + 63) / 64 * 64;
    }
    if (total && posix_memalign(&m->repacked, 64, total) != 0) {
        m->repacked = NULL;
        agx_log(AGX_LOG_WARN, "model: no memory for %.1f MB of repacked weights; the CPU runs on the file's rows",
                (double)total / 1e6);
        total = 0;
    }
    size_t off = 0;
    for (size_t i = 0; total && i < n; i++) {
        wmat *w = mats[i];
        if (!w) continue;
        const size_t b = agx_matmul_x16_size(w->type, w->n_rows, w->n_cols);
        uint8_t *dst = (uint8_t *)m->repacked + off;
        agx_matmul_x16_repack(w->type, w->data, w->n_rows, w->n_cols, dst);
        agx_gguf_release_pages(m->gguf, w->data, b);
        w->data = dst;
        w->layout = AGX_WLAYOUT_X16;
        off += (b + 63) / 64 * 64;
    }
    free(mats);
    m->cfg.repacked_bytes = off;
    model_describe(m);
    pthread_mutex_unlock(&m->cpu_lock);
}

agx_status agx_model_load(const char *path, agx_model **out, agx_error *err) {
    *out = NULL;
    agx_model *m = calloc(1, sizeof *m);
    if (!m) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory loading %s", path);
    pthread_mutex_init(&m->cpu_lock, NULL);
    agx_status st = agx_gguf_open(path, &m->gguf, err);
    if (st == AGX_OK) st = agx_dev_weights_cache_create(&m->dev_weights, err);
    if (st == AGX_OK) st = load_hparams(m, path, err);
    if (st == AGX_OK) st = load_tensors(m, path, err);
    if (st != AGX_OK) {
        agx_model_free(m);
        return st;
    }
    model_describe(m);
    *out = m;
    return AGX_OK;
}

void agx_model_free(agx_model *m) {
    if (!m) return;
    agx_dev_weights_cache_free(m->dev_weights);
    agx_gguf_close(m->gguf);
    free(m->repacked);
    pthread_mutex_destroy(&m->cpu_lock);
    free(m->layers);
    free(m->owned_f32);
    free(m);
}

const agx_model_config *agx_model_get_config(const agx_model *m) { return &m->cfg; }
const char *agx_model_desc(const agx_model *m) { return m->desc; }
const agx_gguf *agx_model_gguf(const agx_model *m) { return m->gguf; }

bool agx_model_is_eog(const agx_model *m, int32_t token) {
    for (int i = 0; i < m->n_eog; i++)
        if (m->eog[i] == token) return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* contexts                                                                  */
/* ------------------------------------------------------------------------ */

struct agx_context {
    const agx_model *m;
    agx_threadpool *tp;
    int n_ctx, n_past, n_ubatch;
    agx_kv_type kv_type;
    size_t kv_elsize, kv_bytes;
    void *kv;                       /* [layer][k|v][n_ctx][n_head_kv*head_dim] */
    /* scratch, n_ubatch rows each */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *rope_cs;
    float *attn_scratch;            /* per pool thread, for the f16->f32 kv rows and scores */
    size_t attn_scratch_per_thread;
    /* the device this context runs on; dev != NULL: a GPU forward pass owns the
     * weights, KV cache and scratch (dev_state), and the CPU fields above stay
     * unallocated (tp, kv, x, attn_scratch NULL) */
    const agx_device_forward *dev;
    void *dev_weights;   /* the model's weights on that device (released, not freed, with the context) */
    void *dev_state;
    agx_device_info dev_info;
};

agx_context_params agx_context_default_params(void) {
    agx_context_params p = {.n_ctx = 0, .n_threads = 0, .n_ubatch = 512, .kv_type = AGX_KV_F16, .device = NULL};
    return p;
}

int agx_context_n_ctx(const agx_context *c) { return c->n_ctx; }
int agx_context_n_past(const agx_context *c) { return c->n_past; }
int agx_context_n_threads(const agx_context *c) { return c->tp ? agx_threadpool_n_threads(c->tp) : 1; }
size_t agx_context_kv_bytes(const agx_context *c) { return c->kv_bytes; }
const agx_device_info *agx_context_device(const agx_context *c) { return &c->dev_info; }
size_t agx_context_device_weight_bytes(const agx_context *c) {
    return c->dev ? c->dev->weights_bytes(c->dev_weights) : 0;
}
size_t agx_context_device_bytes(const agx_context *c) {
    return c->dev ? agx_context_device_weight_bytes(c) + c->dev->mem_used(c->dev_state) : 0;
}
void agx_context_truncate(agx_context *c, int n_past) {
    if (n_past >= 0 && n_past < c->n_past) c->n_past = n_past;
}

void agx_context_free(agx_context *c) {
    if (!c) return;
    if (c->dev) {
        c->dev->destroy(c->dev_state);
        agx_dev_weights_release(c->m->dev_weights, c->dev, c->dev_weights);
    }
    agx_threadpool_free(c->tp);
    free(c->kv);
    free(c->x);
    free(c->attn_scratch);
    free(c);
}

/* fwd_given: the forward pass to use instead of selecting one (agx_context_create_on). */
static agx_status context_create(const agx_model *m, const agx_context_params *pp, bool fwd_given,
                                 const agx_device_forward *fwd, const agx_device_info *dev, agx_context **out,
                                 agx_error *err) {
    *out = NULL;
    agx_context_params p = pp ? *pp : agx_context_default_params();
    const agx_model_config *cfg = &m->cfg;
    long n_ctx = p.n_ctx;
    agx_status st;
    if (n_ctx <= 0) {
        if ((st = agx_env_long("AGX_CANDLE_CONTEXT_SIZE", 2048, &n_ctx, err)) != AGX_OK) return st;
        if (n_ctx <= 0 || n_ctx > (1L << 24))
            return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CANDLE_CONTEXT_SIZE must be in 1..16777216 (got %ld)", n_ctx);
    }
    if (cfg->n_ctx_train > 0 && n_ctx > cfg->n_ctx_train) n_ctx = cfg->n_ctx_train;
    long n_threads = p.n_threads;
    if (n_threads <= 0) {
        if ((st = agx_env_long("AGX_THREADS", 0, &n_threads, err)) != AGX_OK) return st;
        if (n_threads < 0 || n_threads > 1024)
            return agx_error_set(err, AGX_ERR_CONFIG, "AGX_THREADS must be in 0..1024 (got %ld)", n_threads);
    }
    agx_context *c = calloc(1, sizeof *c);
    if (!c) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory creating a context");
    c->m = m;
    c->n_ctx = (int)n_ctx;
    c->n_ubatch = p.n_ubatch > 0 ? p.n_ubatch : 512;
    if (c->n_ubatch > c->n_ctx) c->n_ubatch = c->n_ctx;
    c->kv_type = p.kv_type;
    c->kv_elsize = p.kv_type == AGX_KV_F32 ? 4 : 2;
    const size_t kvd = (size_t)cfg->n_head_kv * (size_t)cfg->head_dim;
    size_t kvb = 2 * (size_t)cfg->n_layer;
    if (__builtin_mul_overflow(kvb, (size_t)c->n_ctx, &kvb) || __builtin_mul_overflow(kvb, kvd, &kvb) ||
        __builtin_mul_overflow(kvb, c->kv_elsize, &kvb) || kvb > ((size_t)1 << 46)) {
        agx_context_free(c);
        return agx_error_set(err, AGX_ERR_NOMEM,
                             "a %ld-token KV cache for this model would be absurdly large: lower AGX_CANDLE_CONTEXT_SIZE",
                             n_ctx);
    }
    c->kv_bytes = kvb;
    /* the device, decided once per context: a GPU forward pass holds the KV
     * cache and scratch itself, so none of the CPU buffers below are allocated */
    if (fwd_given) {
        if (fwd) {
            c->dev_info = *dev;
            st = agx_device_context_open(m->dev_weights, fwd, m->gguf, dev, c->n_ctx, c->n_ubatch, c->kv_type,
                                         &c->dev_weights, &c->dev_state, err);
            if (st == AGX_OK) c->dev = fwd;
        } else {
            st = agx_device_probe(AGX_DEVICE_CPU, &c->dev_info, err);
        }
    } else {
        st = agx_device_context_create_for(p.device, m->dev_weights, m->gguf, c->n_ctx, c->n_ubatch, c->kv_type,
                                           &c->dev, &c->dev_weights, &c->dev_state, &c->dev_info, err);
    }
    if (st != AGX_OK) {
        c->dev = NULL;
        agx_context_free(c);
        return st;
    }
    if (!c->dev) model_prepare_cpu((agx_model *)m); /* its own lock: the shared model's one mutable part */
    if (c->dev) {
        *out = c;
        return AGX_OK;
    }
    const size_t ub = (size_t)c->n_ubatch, qd = (size_t)cfg->n_head * (size_t)cfg->head_dim;
    const size_t E = (size_t)cfg->n_embd, F = (size_t)cfg->n_ff;
    const size_t scratch = ub * (2 * E + qd + 2 * kvd + qd + 2 * F + (size_t)cfg->n_rot);
    c->kv = malloc(c->kv_bytes ? c->kv_bytes : 1);
    c->x = malloc(scratch * sizeof(float));
    if (!c->kv || !c->x) {
        const size_t kvb = c->kv_bytes;
        agx_context_free(c);
        return agx_error_set(err, AGX_ERR_NOMEM,
                             "out of memory allocating a %d-token KV cache (%zu MB): lower AGX_CANDLE_CONTEXT_SIZE",
                             (int)n_ctx, kvb >> 20);
    }
    c->xb = c->x + ub * E;
    c->q = c->xb + ub * E;
    c->k = c->q + ub * qd;
    c->v = c->k + ub * kvd;
    c->att = c->v + ub * kvd;
    c->hb = c->att + ub * qd;
    c->hb2 = c->hb + ub * F;
    c->rope_cs = c->hb2 + ub * F;
    if ((st = agx_threadpool_create((int)n_threads, &c->tp, err)) != AGX_OK) {
        agx_context_free(c);
        return st;
    }
    /* the matmuls' activation scratch, reserved now so that a forward pass never
     * allocates (and running out of memory is an error here, not NaN logits later) */
    size_t mm_scratch = 0;
    for (int l = 0; l <= cfg->n_layer; l++) {
        /* per layer as the forward pass calls them (q, k, v and gate, up
         * together), then the output matrix */
        size_t need[4] = {0};
        if (l < cfg->n_layer) {
            const layer *L = &m->layers[l];
            const agx_matmul_dst qkv[] = {mat_dst(&L->wq, NULL), mat_dst(&L->wk, NULL), mat_dst(&L->wv, NULL)};
            const agx_matmul_dst gate_up[] = {mat_dst(&L->w_gate, NULL), mat_dst(&L->w_up, NULL)};
            const agx_matmul_dst wo = mat_dst(&L->wo, NULL), down = mat_dst(&L->w_down, NULL);
            need[0] = agx_matmul_many_scratch_size(3, qkv, E, c->n_ubatch);
            need[1] = agx_matmul_many_scratch_size(2, gate_up, E, c->n_ubatch);
            need[2] = agx_matmul_many_scratch_size(1, &wo, L->wo.n_cols, c->n_ubatch);
            need[3] = agx_matmul_many_scratch_size(1, &down, L->w_down.n_cols, c->n_ubatch);
        } else {
            const agx_matmul_dst out = mat_dst(&m->output, NULL);
            need[0] = agx_matmul_many_scratch_size(1, &out, E, c->n_ubatch);
        }
        for (int i = 0; i < 4; i++)
            if (need[i] > mm_scratch) mm_scratch = need[i];
    }
    if (mm_scratch > 0 && (st = agx_threadpool_reserve(c->tp, mm_scratch, err)) != AGX_OK) {
        agx_context_free(c);
        return st;
    }
    const agx_attn_params ap = {.n_head = cfg->n_head, .n_head_kv = cfg->n_head_kv, .head_dim = cfg->head_dim,
                                .kv_type = c->kv_type};
    c->attn_scratch_per_thread = agx_attention_scratch_floats(&ap, c->n_ctx);
    c->attn_scratch = malloc(sizeof(float) * c->attn_scratch_per_thread * (size_t)agx_threadpool_n_threads(c->tp));
    if (!c->attn_scratch) {
        agx_context_free(c);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory for attention scratch (%d-token context)", c->n_ctx);
    }
    *out = c;
    return AGX_OK;
}

agx_status agx_context_create(const agx_model *m, const agx_context_params *p, agx_context **out,
                              agx_error *err) {
    return context_create(m, p, false, NULL, NULL, out, err);
}

agx_status agx_context_create_on(const agx_model *m, const agx_context_params *p, const agx_device_forward *f,
                                 const agx_device_info *dev, agx_context **out, agx_error *err) {
    if (f && !dev) {
        *out = NULL;
        return agx_error_set(err, AGX_ERR_CONFIG, "agx_context_create_on: a forward pass needs its device info");
    }
    return context_create(m, p, true, f, dev, out, err);
}

/* ------------------------------------------------------------------------ */
/* forward pass                                                              */
/* ------------------------------------------------------------------------ */

static void matmul(agx_context *c, const wmat *w, const float *x, int n_tok, float *y) {
    const agx_matmul_dst d = mat_dst(w, y);
    agx_matmul_many(c->tp, 1, &d, w->n_cols, x, n_tok);
}

/* Elementwise SwiGLU split over the thread pool (it is n_ff exps per token);
 * chunks come from a shared counter (dynamic pool job: a worker that is not
 * scheduled in time is not waited for). */
enum { SWIGLU_CHUNK = 4096 };
typedef struct swiglu_job {
    float *h;
    const float *up;
    int64_t n;
    _Atomic int64_t next;
} swiglu_job;
static void swiglu_worker(int ith, int nth, void *arg) {
    (void)ith, (void)nth;
    swiglu_job *j = arg;
    for (;;) {
        const int64_t lo = atomic_fetch_add_explicit(&j->next, SWIGLU_CHUNK, memory_order_relaxed);
        if (lo >= j->n) break;
        const int64_t hi = lo + SWIGLU_CHUNK < j->n ? lo + SWIGLU_CHUNK : j->n;
        agx_swiglu(j->h + lo, j->h + lo, j->up + lo, hi - lo);
    }
}

/* h = silu(h) * up over n values; inline for one token (a few microseconds:
 * a pool round trip would cost more). */
static void swiglu(agx_context *c, float *h, const float *up, int64_t n) {
    swiglu_job sj = {h, up, n, 0};
    if (n <= SWIGLU_CHUNK * 4)
        swiglu_worker(0, 1, &sj);
    else
        agx_threadpool_run_dynamic(c->tp, swiglu_worker, &sj);
}

static void *kv_at(const agx_context *c, int layer, int which, int64_t pos) {
    const agx_model_config *cfg = &c->m->cfg;
    const size_t kvd = (size_t)cfg->n_head_kv * (size_t)cfg->head_dim;
    const size_t plane = (size_t)c->n_ctx * kvd * c->kv_elsize;
    return (char *)c->kv + (2 * (size_t)layer + (size_t)which) * plane + (size_t)pos * kvd * c->kv_elsize;
}

/* Per-token row work between the matmuls, split by tokens over the pool
 * (inline for a single token, where a pool round trip would cost more). */
typedef enum row_op {
    ROW_NORM,       /* xb = rmsnorm(x) * w */
    ROW_ADD_NORM,   /* x += xb (residual); xb = rmsnorm(x) * w */
    ROW_ADD,        /* x += xb (residual) */
    ROW_QKV         /* q,k,v += biases; rope q,k; store k,v into the cache */
} row_op;

typedef struct row_job {
    agx_context *c;
    row_op op;
    const float *w;
    int layer;
    int64_t pos0;
    int n;
    _Atomic int next;   /* next token to take (dynamic pool job) */
} row_job;

static void row_worker(int ith, int nth, void *arg) {
    (void)ith, (void)nth;
    row_job *j = arg;
    agx_context *c = j->c;
    const agx_model *m = c->m;
    const agx_model_config *cfg = &m->cfg;
    const int64_t E = cfg->n_embd, hd = cfg->head_dim, qd = cfg->n_head * hd, kvd = cfg->n_head_kv * hd;
    const layer *L = &m->layers[j->layer];
    const agx_rope_params rp = {cfg->rope_style, cfg->n_rot, cfg->rope_freq_base, cfg->rope_freq_scale, m->rope_freqs};
    for (;;) {
        const int t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n) break;
        float *x = c->x + t * E, *xb = c->xb + t * E;
        switch (j->op) {
        case ROW_ADD_NORM:
            agx_add_inplace(x, xb, E);
            /* fall through */
        case ROW_NORM:
            agx_rmsnorm(xb, x, j->w, E, cfg->rms_eps);
            break;
        case ROW_ADD:
            agx_add_inplace(x, xb, E);
            break;
        case ROW_QKV: {
            float *q = c->q + t * qd, *k = c->k + t * kvd, *v = c->v + t * kvd;
            if (L->bq) {
                agx_add_inplace(q, L->bq, qd);
                agx_add_inplace(k, L->bk, kvd);
                agx_add_inplace(v, L->bv, kvd);
            }
            const float *cs = c->rope_cs + (int64_t)t * cfg->n_rot;
            agx_rope_apply(&rp, cs, q, cfg->n_head, (int)hd);
            agx_rope_apply(&rp, cs, k, cfg->n_head_kv, (int)hd);
            agx_kv_store(c->kv_type, kv_at(c, j->layer, 0, j->pos0 + t), k, kvd);
            agx_kv_store(c->kv_type, kv_at(c, j->layer, 1, j->pos0 + t), v, kvd);
            break;
        }
        }
    }
}

static void rows(agx_context *c, row_op op, const float *w, int layer, int64_t pos0, int n) {
    row_job j = {c, op, w, layer, pos0, n, 0};
    if (n == 1)
        row_worker(0, 1, &j);
    else
        agx_threadpool_run_dynamic(c->tp, row_worker, &j);
}

/* Runs n tokens at positions pos0.. through every layer, leaving the hidden
 * states (before the final norm) in c->x. */
static void forward_chunk(agx_context *c, const int32_t *tokens, int n, int64_t pos0) {
    const agx_model *m = c->m;
    const agx_model_config *cfg = &m->cfg;
    const int64_t E = cfg->n_embd, hd = cfg->head_dim, F = cfg->n_ff;

    /* token embedding: dequantize one row of token_embd per token */
    const agx_type_traits *et = agx_type_traits_get(m->tok_embd.type);
    const size_t erow = agx_type_row_size(m->tok_embd.type, E);
    for (int t = 0; t < n; t++)
        et->to_float((const char *)m->tok_embd.data + (size_t)tokens[t] * erow, c->x + t * E, E);

    /* rotary angles once per position, shared by every layer */
    const agx_rope_params rp = {cfg->rope_style, cfg->n_rot, cfg->rope_freq_base, cfg->rope_freq_scale,
                                m->rope_freqs};
    for (int t = 0; t < n; t++) agx_rope_cache(&rp, pos0 + t, c->rope_cs + (int64_t)t * cfg->n_rot);

    for (int l = 0; l < cfg->n_layer; l++) {
        const layer *L = &m->layers[l];

        /* attention block: rmsnorm -> q,k,v (+bias) -> rope -> cache -> attention -> out proj */
        rows(c, ROW_NORM, L->attn_norm, l, pos0, n);
        const agx_matmul_dst qkv[] = {mat_dst(&L->wq, c->q), mat_dst(&L->wk, c->k), mat_dst(&L->wv, c->v)};
        agx_matmul_many(c->tp, 3, qkv, E, c->xb, n);
        rows(c, ROW_QKV, NULL, l, pos0, n);
        const agx_attn_params ap = {cfg->n_head, cfg->n_head_kv, cfg->head_dim, c->kv_type,
                                    kv_at(c, l, 0, 0), kv_at(c, l, 1, 0), 1.0f / sqrtf((float)hd),
                                    c->attn_scratch, c->attn_scratch_per_thread};
        agx_attention(c->tp, &ap, c->q, n, pos0, c->att);
        matmul(c, &L->wo, c->att, n, c->xb);

        /* residual, then the feed-forward block: rmsnorm -> SwiGLU -> down -> residual */
        rows(c, ROW_ADD_NORM, L->ffn_norm, l, pos0, n);
        const agx_matmul_dst gate_up[] = {mat_dst(&L->w_gate, c->hb), mat_dst(&L->w_up, c->hb2)};
        agx_matmul_many(c->tp, 2, gate_up, E, c->xb, n);
        swiglu(c, c->hb, c->hb2, n * F);
        matmul(c, &L->w_down, c->hb, n, c->xb);
        rows(c, ROW_ADD, NULL, l, pos0, n);
    }
}

agx_status agx_context_eval(agx_context *c, const int32_t *tokens, int n_tokens, bool all_logits,
                            float *out, agx_error *err) {
    const agx_model *m = c->m;
    const agx_model_config *cfg = &m->cfg;
    if (n_tokens <= 0) return agx_error_set(err, AGX_ERR_INFERENCE, "no tokens to evaluate");
    if ((int64_t)c->n_past + n_tokens > c->n_ctx)
        return agx_error_set(err, AGX_ERR_INFERENCE,
                             "context full: %d cached + %d new tokens exceed the context size %d "
                             "(raise AGX_CANDLE_CONTEXT_SIZE; this model allows up to %d)",
                             c->n_past, n_tokens, c->n_ctx, cfg->n_ctx_train);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->n_vocab)
            return agx_error_set(err, AGX_ERR_INFERENCE, "token id %d at index %d is outside the vocab (0..%d)",
                                 tokens[i], i, cfg->n_vocab - 1);
    if (c->dev) {
        /* the device keeps no position of its own: n_past is this context's
         * (truncate just lowers it; later rows are overwritten) */
        const agx_status st = c->dev->eval(c->dev_state, tokens, n_tokens, c->n_past, all_logits, out, err);
        if (st == AGX_OK) c->n_past += n_tokens;
        return st;
    }
    const int64_t E = cfg->n_embd;
    for (int done = 0; done < n_tokens;) {
        const int n = n_tokens - done < c->n_ubatch ? n_tokens - done : c->n_ubatch;
        forward_chunk(c, tokens + done, n, c->n_past);
        c->n_past += n;
        /* final norm and logits only for the rows asked for */
        const int first = all_logits ? 0 : n - 1;
        const bool want = all_logits || done + n == n_tokens;
        if (want) {
            for (int t = first; t < n; t++)
                agx_rmsnorm(c->xb + (t - first) * E, c->x + t * E, m->output_norm, E, cfg->rms_eps);
            float *dst = all_logits ? out + (int64_t)done * cfg->n_vocab : out;
            matmul(c, &m->output, c->xb, n - first, dst);
        }
        done += n;
    }
    return AGX_OK;
}

/* ---- KV state export/import (prompt caches; added by the native backend) ---- */

size_t agx_context_kv_state_bytes(const agx_context *c, int n) {
    const agx_model_config *cfg = &c->m->cfg;
    const size_t kvd = (size_t)cfg->n_head_kv * (size_t)cfg->head_dim;
    return n <= 0 ? 0 : 2 * (size_t)cfg->n_layer * (size_t)n * kvd * c->kv_elsize;
}

agx_status agx_context_kv_export(const agx_context *c, int n, void *buf, size_t cap,
                                 agx_error *err) {
    size_t need = agx_context_kv_state_bytes(c, n);
    if (n <= 0 || n > c->n_past || cap < need)
        return agx_error_set(err, AGX_ERR_INFERENCE,
                             "KV export of %d positions: the cache holds %d (buffer %zu of %zu bytes)",
                             n, c->n_past, cap, need);
    if (c->dev) return c->dev->kv_export(c->dev_state, n, buf, cap, err);   /* the same layout */
    size_t row = need / (2 * (size_t)c->m->cfg.n_layer);
    for (int l = 0; l < c->m->cfg.n_layer; l++)
        for (int w = 0; w < 2; w++)
            memcpy((char *)buf + (2 * (size_t)l + (size_t)w) * row, kv_at(c, l, w, 0), row);
    return AGX_OK;
}

agx_status agx_context_kv_import(agx_context *c, int n, const void *buf, size_t len,
                                 agx_error *err) {
    size_t need = agx_context_kv_state_bytes(c, n);
    if (n <= 0 || n > c->n_ctx || len != need)
        return agx_error_set(err, AGX_ERR_INFERENCE,
                             "KV import of %d positions does not fit this context (%d positions, "
                             "%zu bytes given, %zu expected)",
                             n, c->n_ctx, len, need);
    if (c->dev) {
        const agx_status st = c->dev->kv_import(c->dev_state, n, buf, len, err);
        if (st == AGX_OK) c->n_past = n;
        return st;
    }
    size_t row = need / (2 * (size_t)c->m->cfg.n_layer);
    for (int l = 0; l < c->m->cfg.n_layer; l++)
        for (int w = 0; w < 2; w++)
            memcpy(kv_at(c, l, w, 0), (const char *)buf + (2 * (size_t)l + (size_t)w) * row, row);
    c->n_past = n;
    return AGX_OK;
}
