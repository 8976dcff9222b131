/* model_device.c — builds the device-neutral model view (agx_dev_model) from a
 * GGUF, mirroring the CPU loader's checks, hands out the device forward hook
 * table (agx_device_forward_get) and keeps each model's device weights (one
 * upload per model and device, shared by its contexts). Pure C: compiled in
 * every build, so the view is tested on machines without a GPU. */
#include "engine/model_device.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/quant.h"
#include "agx/util.h"
#ifdef AGX_HAVE_CUDA
#include "engine/cuda/agx_cuda.h"
#endif

static agx_status view_mat(const agx_gguf *g, agx_tensor_role role, int layer, int64_t n_cols, int64_t n_rows,
                           bool required, agx_dev_mat *w, agx_error *err) {
    memset(w, 0, sizeof *w);
    char name[96];
    agx_tensor_name(role, layer, name, sizeof name);
    const agx_gguf_tensor *t = agx_gguf_find_tensor(g, name);
    if (!t) {
        if (!required) return AGX_OK;
        return agx_error_set(err, AGX_ERR_LOAD, "tensor '%s' is missing (is this a complete model file?)", name);
    }
    if (t->ne[0] != n_cols || t->ne[1] != n_rows || t->ne[2] != 1 || t->ne[3] != 1)
        return agx_error_set(err, AGX_ERR_LOAD, "tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name,
                             (long long)t->ne[0], (long long)t->ne[1], (long long)n_cols, (long long)n_rows);
    const size_t row = agx_type_row_size(t->type, n_cols);
    if (row == 0 || t->nbytes < row * (uint64_t)n_rows)
        return agx_error_set(err, AGX_ERR_LOAD, "tensor '%s' (%s) holds %llu bytes, too few for %lld rows", name,
                             agx_type_name(t->type), (unsigned long long)t->nbytes, (long long)n_rows);
    w->data = t->data;
    w->type = t->type;
    w->n_cols = n_cols;
    w->n_rows = n_rows;
    w->row_bytes = row;
    return AGX_OK;
}

/* A 1-D tensor as f32: always copied into dm->owned (no alignment assumptions). */
static agx_status view_vec(const agx_gguf *g, agx_dev_model *dm, size_t *used, size_t cap, agx_tensor_role role,
                           int layer, int64_t n, bool required, const float **out, agx_error *err) {
    *out = NULL;
    char name[96];
    agx_tensor_name(role, layer, name, sizeof name);
    const agx_gguf_tensor *t = agx_gguf_find_tensor(g, name);
    if (!t) {
        if (!required) return AGX_OK;
        return agx_error_set(err, AGX_ERR_LOAD, "tensor '%s' is missing", name);
    }
    const agx_type_traits *tt = agx_type_traits_get(t->type);
    const size_t bytes = agx_type_row_size(t->type, n);
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1 || !tt || !tt->to_float || !bytes ||
        t->nbytes < bytes)
        return agx_error_set(err, AGX_ERR_LOAD, "tensor '%s' is not a usable vector of %lld elements", name,
                             (long long)n);
    if (*used + (size_t)n > cap) return agx_error_set(err, AGX_ERR_LOAD, "too many vector tensors");
    float *dst = dm->owned + *used;
    tt->to_float(t->data, dst, n);
    *used += (size_t)n;
    *out = dst;
    return AGX_OK;
}

agx_status agx_dev_model_from_gguf(const agx_gguf *g, agx_dev_model *dm, agx_error *err) {
    memset(dm, 0, sizeof *dm);
    agx_hparams hp;
    agx_status st = agx_hparams_load(g, &hp, err);
    if (st != AGX_OK) return st;
    if (hp.head_dim_v != hp.head_dim)
        return agx_error_set(err, AGX_ERR_LOAD, "key_length %u != value_length %u is not supported", hp.head_dim,
                             hp.head_dim_v);
    if (hp.rope_scaling == AGX_ROPE_SCALING_YARN)
        return agx_error_set(err, AGX_ERR_LOAD, "YaRN rope scaling is not implemented");
    if (hp.rope_scaling == AGX_ROPE_SCALING_LLAMA3 && !hp.has_rope_freqs &&
        !(hp.rope_low_freq_factor > 0 && hp.rope_high_freq_factor > hp.rope_low_freq_factor))
        return agx_error_set(err, AGX_ERR_LOAD, "llama3 rope scaling without rope_freqs.weight needs "
                             "rope.scaling.low_freq_factor < high_freq_factor");
    if (hp.n_vocab > INT32_MAX || hp.n_embd > (1u << 20) || hp.n_ff > (1u << 22) || hp.n_layer > 4096)
        return agx_error_set(err, AGX_ERR_LOAD, "model dimensions out of range");
    dm->n_vocab = (int)hp.n_vocab;
    dm->n_ctx_train = hp.context_length > INT32_MAX ? INT32_MAX : (int)hp.context_length;
    dm->n_embd = (int)hp.n_embd;
    dm->n_layer = (int)hp.n_layer;
    dm->n_head = (int)hp.n_head;
    dm->n_head_kv = (int)hp.n_head_kv;
    dm->head_dim = (int)hp.head_dim;
    dm->n_ff = (int)hp.n_ff;
    dm->n_rot = (int)hp.n_rot;
    dm->rms_eps = hp.rms_eps;
    dm->rope.style = hp.rope_style;
    dm->rope.n_dims = (int)hp.n_rot;
    dm->rope.freq_base = hp.rope_freq_base;
    dm->rope.freq_scale = hp.rope_scaling == AGX_ROPE_SCALING_LINEAR ? 1.0f / hp.rope_scaling_factor : 1.0f;

    const int64_t E = dm->n_embd, QD = (int64_t)dm->n_head * dm->head_dim, KD = (int64_t)dm->n_head_kv * dm->head_dim;
    const size_t cap = (size_t)E * (2 * (size_t)dm->n_layer + 1) + (size_t)dm->n_layer * (size_t)(QD + 2 * KD) +
                       (size_t)dm->n_rot;
    size_t used = 0;
    dm->owned = malloc(sizeof(float) * cap);
    dm->layers = calloc((size_t)dm->n_layer ? (size_t)dm->n_layer : 1, sizeof *dm->layers);
    if (!dm->owned || !dm->layers) {
        agx_dev_model_free(dm);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the device model view");
    }
#define TRY(x)                       \
    do {                             \
        if ((st = (x)) != AGX_OK) {  \
            agx_dev_model_free(dm);  \
            return st;               \
        }                            \
    } while (0)
    TRY(view_mat(g, AGX_TENSOR_TOKEN_EMBD, 0, E, dm->n_vocab, true, &dm->tok_embd, err));
    TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_OUTPUT_NORM, 0, E, true, &dm->output_norm, err));
    TRY(view_mat(g, AGX_TENSOR_OUTPUT, 0, E, dm->n_vocab, false, &dm->output, err));
    if (!dm->output.data) dm->output = dm->tok_embd;
    const float *ff = NULL;
    TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_ROPE_FREQS, 0, dm->n_rot / 2, false, &ff, err));
    if (!ff && hp.rope_scaling == AGX_ROPE_SCALING_LLAMA3) {
        float *f = dm->owned + used;
        agx_hparams_llama3_freq_factors(&hp, f);
        used += (size_t)dm->n_rot / 2;
        ff = f;
    }
    dm->rope.freq_factors = ff;
    for (int l = 0; l < dm->n_layer; l++) {
        agx_dev_layer *L = &dm->layers[l];
        TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_ATTN_NORM, l, E, true, &L->attn_norm, err));
        TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_FFN_NORM, l, E, true, &L->ffn_norm, err));
        TRY(view_mat(g, AGX_TENSOR_ATTN_Q, l, E, QD, true, &L->wq, err));
        TRY(view_mat(g, AGX_TENSOR_ATTN_K, l, E, KD, true, &L->wk, err));
        TRY(view_mat(g, AGX_TENSOR_ATTN_V, l, E, KD, true, &L->wv, err));
        TRY(view_mat(g, AGX_TENSOR_ATTN_OUT, l, QD, E, true, &L->wo, err));
        TRY(view_mat(g, AGX_TENSOR_FFN_GATE, l, E, dm->n_ff, true, &L->w_gate, err));
        TRY(view_mat(g, AGX_TENSOR_FFN_UP, l, E, dm->n_ff, true, &L->w_up, err));
        TRY(view_mat(g, AGX_TENSOR_FFN_DOWN, l, dm->n_ff, E, true, &L->w_down, err));
        TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_ATTN_Q_BIAS, l, QD, false, &L->bq, err));
        TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_ATTN_K_BIAS, l, KD, false, &L->bk, err));
        TRY(view_vec(g, dm, &used, cap, AGX_TENSOR_ATTN_V_BIAS, l, KD, false, &L->bv, err));
        if ((L->bq != NULL) != (L->bk != NULL) || (L->bq != NULL) != (L->bv != NULL)) {
            agx_dev_model_free(dm);
            return agx_error_set(err, AGX_ERR_LOAD, "layer %d has only some of the q/k/v bias tensors", l);
        }
    }
#undef TRY
    return AGX_OK;
}

void agx_dev_model_free(agx_dev_model *dm) {
    if (!dm) return;
    free(dm->layers);
    free(dm->owned);
    memset(dm, 0, sizeof *dm);
}

const agx_device_forward *agx_device_forward_get(agx_device_kind k) {
#ifdef AGX_HAVE_CUDA
    if (k == AGX_DEVICE_CUDA) return agx_cuda_forward();
#endif
    (void)k;
    return NULL;
}

/* ---- device weights, one upload per model and device ---- */

typedef struct dev_weights_entry {
    const agx_device_forward *f;
    int device_index;
    void *weights;
    int users;
} dev_weights_entry;

struct agx_dev_weights_cache {
    pthread_mutex_t lock;
    dev_weights_entry *entries;
    int n, cap;
};

agx_status agx_dev_weights_cache_create(agx_dev_weights_cache **out, agx_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&(*out)->lock, NULL);
    return AGX_OK;
}

void agx_dev_weights_cache_free(agx_dev_weights_cache *wc) {
    if (!wc) return;
    for (int i = 0; i < wc->n; i++) wc->entries[i].f->weights_destroy(wc->entries[i].weights);
    pthread_mutex_destroy(&wc->lock);
    free(wc->entries);
    free(wc);
}

agx_status agx_dev_weights_acquire(agx_dev_weights_cache *wc, const agx_device_forward *f, const agx_gguf *g,
                                   const agx_device_info *dev, void **weights, agx_error *err) {
    *weights = NULL;
    pthread_mutex_lock(&wc->lock);
    agx_status st = AGX_OK;
    for (int i = 0; i < wc->n; i++) {
        dev_weights_entry *e = &wc->entries[i];
        if (e->f == f && e->device_index == dev->index) {
            e->users++;
            *weights = e->weights;
            goto done;
        }
    }
    if (wc->n == wc->cap) {
        const int cap = wc->cap ? 2 * wc->cap : 2;
        dev_weights_entry *ne = realloc(wc->entries, sizeof *ne * (size_t)cap);
        if (!ne) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
            goto done;
        }
        wc->entries = ne;
        wc->cap = cap;
    }
    /* the upload happens under the lock: a second context of the model waits
     * for it and shares the result instead of uploading a copy */
    agx_dev_model dm;
    if ((st = agx_dev_model_from_gguf(g, &dm, err)) != AGX_OK) goto done;
    void *w = NULL;
    const int64_t t0 = agx_time_us();
    st = f->weights_create(&dm, dev, &w, err);
    agx_dev_model_free(&dm);   /* the weights now live on the device */
    if (st != AGX_OK) goto done;
    const double ms = (double)(agx_time_us() - t0) / 1000.0, mb = (double)f->weights_bytes(w) / 1e6;
    agx_log(AGX_LOG_INFO, "%s:%d: %.1f MB of weights uploaded in %.0f ms (%.2f GB/s)", f->name, dev->index, mb, ms,
            ms > 0 ? mb / ms : 0.0);
    wc->entries[wc->n++] = (dev_weights_entry){.f = f, .device_index = dev->index, .weights = w, .users = 1};
    *weights = w;
done:
    pthread_mutex_unlock(&wc->lock);
    return st;
}

void agx_dev_weights_release(agx_dev_weights_cache *wc, const agx_device_forward *f, void *weights) {
    if (!wc || !weights) return;
    pthread_mutex_lock(&wc->lock);
    for (int i = 0; i < wc->n; i++) {
        dev_weights_entry *e = &wc->entries[i];
        if (e->weights != weights || e->f != f) continue;
        if (--e->users == 0) {
            f->weights_destroy(e->weights);
            wc->entries[i] = wc->entries[--wc->n];
        }
        break;
    }
    pthread_mutex_unlock(&wc->lock);
}

agx_status agx_device_context_open(agx_dev_weights_cache *wc, const agx_device_forward *f, const agx_gguf *g,
                                   const agx_device_info *dev, int n_ctx, int n_ubatch, agx_kv_type kv_type,
                                   void **weights, void **state, agx_error *err) {
    *state = NULL;
    agx_status st = agx_dev_weights_acquire(wc, f, g, dev, weights, err);
    if (st != AGX_OK) return st;
    const int64_t t0 = agx_time_us();
    st = f->create(*weights, n_ctx, n_ubatch, kv_type, state, err);
    if (st == AGX_OK)
        agx_log(AGX_LOG_INFO, "%s:%d: context of %d positions, %.1f MB of KV cache and scratch, created in %.0f ms",
                f->name, dev->index, n_ctx, (double)f->mem_used(*state) / 1e6, (double)(agx_time_us() - t0) / 1000.0);
    if (st != AGX_OK) {
        *state = NULL;
        agx_dev_weights_release(wc, f, *weights);
        *weights = NULL;
    }
    return st;
}

agx_status agx_device_context_create_for(const char *request, agx_dev_weights_cache *wc, const agx_gguf *g,
                                         int n_ctx, int n_ubatch, agx_kv_type kv_type,
                                         const agx_device_forward **fwd, void **weights, void **state,
                                         agx_device_info *info, agx_error *err) {
    *fwd = NULL;
    *weights = NULL;
    *state = NULL;
    if (!request) request = agx_env("AGX_DEVICE");
    const int64_t t0 = agx_time_us();
    agx_status st = agx_device_select(request, info, err);
    if (st != AGX_OK || info->kind == AGX_DEVICE_CPU) return st;
    /* the first call of a process pays the driver's start-up: part of every `agx plan add` */
    agx_log(AGX_LOG_INFO, "%s:%d selected in %.0f ms", agx_device_kind_name(info->kind), info->index,
            (double)(agx_time_us() - t0) / 1000.0);
    const agx_device_forward *f = agx_device_forward_get(info->kind);
    if (!f)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "no forward pass for device %s in this build; set AGX_DEVICE=cpu",
                             agx_device_kind_name(info->kind));
    st = agx_device_context_open(wc, f, g, info, n_ctx, n_ubatch, kv_type, weights, state, err);
    if (st == AGX_OK) {
        *fwd = f;
        return AGX_OK;
    }
    /* auto: a model the GPU path cannot run (weight type, shape, memory) runs on
     * the CPU. agx_device_select found a usable GPU, so it logged nothing: this
     * is the one warning line of this call. */
    agx_device_request req = AGX_DEVICE_REQ_AUTO;
    agx_error perr = {0};
    if ((st != AGX_ERR_UNAVAILABLE && st != AGX_ERR_NOMEM) || agx_device_parse(request, &req, &perr) != AGX_OK ||
        req != AGX_DEVICE_REQ_AUTO)
        return st;
    char why[AGX_DEVICE_NOTE_MAX];
    snprintf(why, sizeof why, "%s not used (%.300s); running on the CPU", agx_device_kind_name(info->kind),
             err ? err->message : "unsupported model");
    if ((st = agx_device_probe(AGX_DEVICE_CPU, info, err)) != AGX_OK) return st;
    snprintf(info->note, sizeof info->note, "%s", why);
    agx_log(AGX_LOG_WARN, "%s", why);
    if (err) agx_error_clear(err);
    return AGX_OK;
}
