/* arch.c — the architecture table (names, aliases, tensor roles, rope style)
 * and agx_hparams_load: GGUF metadata -> hyper-parameters, validated against
 * the shape of every tensor the architecture uses. */
#include "agx/arch.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agx/quant.h"

#define R AGX_TENSOR_REQUIRED
#define O AGX_TENSOR_OPTIONAL

static const agx_arch_info arch_table[AGX_ARCH_COUNT] = {
    [AGX_ARCH_LLAMA] = {
        .arch = AGX_ARCH_LLAMA, .name = "llama", .rope_style = AGX_ROPE_NORMAL,
        .need = {
            [AGX_TENSOR_TOKEN_EMBD] = R, [AGX_TENSOR_OUTPUT_NORM] = R, [AGX_TENSOR_OUTPUT] = O,
            [AGX_TENSOR_ROPE_FREQS] = O, [AGX_TENSOR_ATTN_NORM] = R, [AGX_TENSOR_ATTN_Q] = R,
            [AGX_TENSOR_ATTN_K] = R, [AGX_TENSOR_ATTN_V] = R, [AGX_TENSOR_ATTN_OUT] = R,
            [AGX_TENSOR_ATTN_Q_BIAS] = O, [AGX_TENSOR_ATTN_K_BIAS] = O, [AGX_TENSOR_ATTN_V_BIAS] = O,
            [AGX_TENSOR_FFN_NORM] = R, [AGX_TENSOR_FFN_GATE] = R, [AGX_TENSOR_FFN_UP] = R,
            [AGX_TENSOR_FFN_DOWN] = R,
        },
    },
    [AGX_ARCH_QWEN2] = {
        .arch = AGX_ARCH_QWEN2, .name = "qwen2", .rope_style = AGX_ROPE_NEOX,
        .need = {
            [AGX_TENSOR_TOKEN_EMBD] = R, [AGX_TENSOR_OUTPUT_NORM] = R, [AGX_TENSOR_OUTPUT] = O,
            [AGX_TENSOR_ROPE_FREQS] = AGX_TENSOR_ABSENT, [AGX_TENSOR_ATTN_NORM] = R,
            [AGX_TENSOR_ATTN_Q] = R, [AGX_TENSOR_ATTN_K] = R, [AGX_TENSOR_ATTN_V] = R,
            [AGX_TENSOR_ATTN_OUT] = R, [AGX_TENSOR_ATTN_Q_BIAS] = R, [AGX_TENSOR_ATTN_K_BIAS] = R,
            [AGX_TENSOR_ATTN_V_BIAS] = R, [AGX_TENSOR_FFN_NORM] = R, [AGX_TENSOR_FFN_GATE] = R,
            [AGX_TENSOR_FFN_UP] = R, [AGX_TENSOR_FFN_DOWN] = R,
        },
    },
};
#undef R
#undef O

/* general.architecture values that use an existing layout. Their metadata keys
 * keep their own prefix ("mistral.attention.head_count"). */
static const struct {
    const char *name;
    agx_arch arch;
} arch_aliases[] = {
    {"llama", AGX_ARCH_LLAMA},
    {"mistral", AGX_ARCH_LLAMA},
    {"qwen2", AGX_ARCH_QWEN2},
};

static const struct {
    const char *pattern;
    bool per_layer;
} role_table[AGX_TENSOR_ROLE_COUNT] = {
    [AGX_TENSOR_TOKEN_EMBD] = {"token_embd.weight", false},
    [AGX_TENSOR_OUTPUT_NORM] = {"output_norm.weight", false},
    [AGX_TENSOR_OUTPUT] = {"output.weight", false},
    [AGX_TENSOR_ROPE_FREQS] = {"rope_freqs.weight", false},
    [AGX_TENSOR_ATTN_NORM] = {"blk.%d.attn_norm.weight", true},
    [AGX_TENSOR_ATTN_Q] = {"blk.%d.attn_q.weight", true},
    [AGX_TENSOR_ATTN_K] = {"blk.%d.attn_k.weight", true},
    [AGX_TENSOR_ATTN_V] = {"blk.%d.attn_v.weight", true},
    [AGX_TENSOR_ATTN_OUT] = {"blk.%d.attn_output.weight", true},
    [AGX_TENSOR_ATTN_Q_BIAS] = {"blk.%d.attn_q.bias", true},
    [AGX_TENSOR_ATTN_K_BIAS] = {"blk.%d.attn_k.bias", true},
    [AGX_TENSOR_ATTN_V_BIAS] = {"blk.%d.attn_v.bias", true},
    [AGX_TENSOR_FFN_NORM] = {"blk.%d.ffn_norm.weight", true},
    [AGX_TENSOR_FFN_GATE] = {"blk.%d.ffn_gate.weight", true},
    [AGX_TENSOR_FFN_UP] = {"blk.%d.ffn_up.weight", true},
    [AGX_TENSOR_FFN_DOWN] = {"blk.%d.ffn_down.weight", true},
};

const agx_arch_info *agx_arch_get(agx_arch arch) {
    return (unsigned)arch < AGX_ARCH_COUNT ? &arch_table[arch] : NULL;
}

const agx_arch_info *agx_arch_by_name(const char *name) {
    for (size_t i = 0; i < sizeof arch_aliases / sizeof arch_aliases[0]; i++)
        if (strcmp(arch_aliases[i].name, name) == 0) return &arch_table[arch_aliases[i].arch];
    return NULL;
}

const char *agx_arch_supported_list(void) { return "llama (incl. Mistral, Mistral-Nemo), qwen2"; }

const char *agx_tensor_role_pattern(agx_tensor_role role) {
    return (unsigned)role < AGX_TENSOR_ROLE_COUNT ? role_table[role].pattern : NULL;
}

bool agx_tensor_role_per_layer(agx_tensor_role role) {
    return (unsigned)role < AGX_TENSOR_ROLE_COUNT && role_table[role].per_layer;
}

char *agx_tensor_name(agx_tensor_role role, int layer, char *buf, size_t n) {
    const char *p = agx_tensor_role_pattern(role);
    if (!p) {
        if (n) buf[0] = '\0';
        return buf;
    }
    if (role_table[role].per_layer) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(buf, n, p, layer);
#pragma GCC diagnostic pop
    } else {
        snprintf(buf, n, "%s", p);
    }
    return buf;
}

const agx_gguf_tensor *agx_arch_tensor(const agx_gguf *g, agx_tensor_role role, int layer) {
    char name[96];
    if (!agx_tensor_role_pattern(role)) return NULL;
    return agx_gguf_find_tensor(g, agx_tensor_name(role, layer, name, sizeof name));
}

uint32_t agx_hparams_tensor_shape(const agx_hparams *hp, agx_tensor_role role, int64_t ne[AGX_GGUF_MAX_DIMS]) {
    int64_t q = (int64_t)hp->n_head * hp->head_dim, k = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t v = (int64_t)hp->n_head_kv * hp->head_dim_v, o = (int64_t)hp->n_head * hp->head_dim_v;
    for (int d = 0; d < AGX_GGUF_MAX_DIMS; d++) ne[d] = 1;
    switch (role) {
    case AGX_TENSOR_TOKEN_EMBD:
    case AGX_TENSOR_OUTPUT: ne[0] = hp->n_embd; ne[1] = hp->n_vocab; return 2;
    case AGX_TENSOR_OUTPUT_NORM:
    case AGX_TENSOR_ATTN_NORM:
    case AGX_TENSOR_FFN_NORM: ne[0] = hp->n_embd; return 1;
    case AGX_TENSOR_ROPE_FREQS: ne[0] = hp->n_rot / 2; return 1;
    case AGX_TENSOR_ATTN_Q: ne[0] = hp->n_embd; ne[1] = q; return 2;
    case AGX_TENSOR_ATTN_K: ne[0] = hp->n_embd; ne[1] = k; return 2;
    case AGX_TENSOR_ATTN_V: ne[0] = hp->n_embd; ne[1] = v; return 2;
    case AGX_TENSOR_ATTN_OUT: ne[0] = o; ne[1] = hp->n_embd; return 2;
    case AGX_TENSOR_ATTN_Q_BIAS: ne[0] = q; return 1;
    case AGX_TENSOR_ATTN_K_BIAS: ne[0] = k; return 1;
    case AGX_TENSOR_ATTN_V_BIAS: ne[0] = v; return 1;
    case AGX_TENSOR_FFN_GATE:
    case AGX_TENSOR_FFN_UP: ne[0] = hp->n_embd; ne[1] = hp->n_ff; return 2;
    case AGX_TENSOR_FFN_DOWN: ne[0] = hp->n_ff; ne[1] = hp->n_embd; return 2;
    default: return 0;
    }
}

/* ---- loading ---- */

static const char *gpath(const agx_gguf *g) { return agx_gguf_path(g); }

static bool key_u32(const agx_gguf *g, const char *prefix, const char *suffix, uint32_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, suffix);
    return agx_gguf_get_u32(g, key, out);
}

static bool key_f32(const agx_gguf *g, const char *prefix, const char *suffix, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, suffix);
    return agx_gguf_get_f32(g, key, out);
}

static agx_status need_u32(const agx_gguf *g, const char *prefix, const char *suffix, uint32_t *out,
                           agx_error *err) {
    if (key_u32(g, prefix, suffix, out) && *out > 0) return AGX_OK;
    char key[160];
    snprintf(key, sizeof key, "%s.%s", prefix, suffix);
    if (agx_gguf_find(g, key))
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': metadata '%s' must be a positive integer", gpath(g), key);
    return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': required metadata '%s' is missing", gpath(g), key);
}

static agx_status detect_arch(const agx_gguf *g, agx_hparams *hp, agx_error *err) {
    agx_gguf_str s;
    if (agx_gguf_get_str(g, "general.architecture", &s)) {
        if (s.len == 0 || s.len >= AGX_ARCH_NAME_MAX)
            return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': general.architecture has an invalid length %" PRIu64,
                                 gpath(g), s.len);
        memcpy(hp->arch_name, s.ptr, (size_t)s.len);
        hp->arch_name[s.len] = '\0';
        for (size_t i = 0; i < s.len; i++)
            if ((unsigned char)hp->arch_name[i] < 32 || (unsigned char)hp->arch_name[i] > 126) hp->arch_name[i] = '?';
        hp->info = agx_arch_by_name(hp->arch_name);
        if (!hp->info)
            return agx_error_set(err, AGX_ERR_LOAD,
                                 "GGUF '%s': unsupported model architecture '%s' (supported: %s)", gpath(g),
                                 hp->arch_name, agx_arch_supported_list());
    } else if (agx_gguf_find(g, "general.architecture")) {
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': general.architecture is not a string", gpath(g));
    } else if (agx_gguf_find(g, "qwen2.attention.head_count")) {
        /* the seed's fallback for files without general.architecture */
        hp->info = &arch_table[AGX_ARCH_QWEN2];
        snprintf(hp->arch_name, sizeof hp->arch_name, "qwen2");
    } else if (agx_gguf_find(g, "llama.attention.head_count")) {
        hp->info = &arch_table[AGX_ARCH_LLAMA];
        snprintf(hp->arch_name, sizeof hp->arch_name, "llama");
    } else {
        return agx_error_set(err, AGX_ERR_LOAD,
                             "GGUF '%s': no general.architecture and no known <arch>.attention.head_count key "
                             "(supported: %s)", gpath(g), agx_arch_supported_list());
    }
    hp->arch = hp->info->arch;
    hp->rope_style = hp->info->rope_style;
    return AGX_OK;
}

static agx_status read_rope_scaling(const agx_gguf *g, agx_hparams *hp, agx_error *err) {
    const char *p = hp->arch_name;
    char key[160];
    hp->rope_scaling = AGX_ROPE_SCALING_NONE;
    hp->rope_scaling_factor = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", p);
    agx_gguf_str st;
    bool has_type = agx_gguf_get_str(g, key, &st);
    float f;
    if (key_f32(g, p, "rope.scaling.factor", &f) || key_f32(g, p, "rope.scale_linear", &f)) {
        if (!(f > 0.0f) || f > 1e6f)
            return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': rope scaling factor %g is invalid", gpath(g), (double)f);
        hp->rope_scaling_factor = f;
    }
    key_u32(g, p, "rope.scaling.original_context_length", &hp->rope_orig_ctx);
    bool lo = key_f32(g, p, "rope.scaling.low_freq_factor", &hp->rope_low_freq_factor);
    bool hi = key_f32(g, p, "rope.scaling.high_freq_factor", &hp->rope_high_freq_factor);
    hp->has_rope_freqs = agx_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    if (has_type) {
        if (agx_gguf_str_eq(st, "none")) hp->rope_scaling = AGX_ROPE_SCALING_NONE;
        else if (agx_gguf_str_eq(st, "linear")) hp->rope_scaling = AGX_ROPE_SCALING_LINEAR;
        else if (agx_gguf_str_eq(st, "yarn")) hp->rope_scaling = AGX_ROPE_SCALING_YARN;
        else if (agx_gguf_str_eq(st, "llama3")) hp->rope_scaling = AGX_ROPE_SCALING_LLAMA3;
        else {
            char buf[40];
            snprintf(buf, sizeof buf, "%.*s", (int)(st.len > 32 ? 32 : st.len), st.ptr);
            return agx_error_set(err, AGX_ERR_LOAD,
                                 "GGUF '%s': unsupported %s '%s' (supported: none, linear, yarn, llama3)",
                                 gpath(g), key, buf);
        }
    } else if (hp->rope_scaling_factor != 1.0f) {
        hp->rope_scaling = AGX_ROPE_SCALING_LINEAR;
    }
    if (hp->has_rope_freqs || (lo && hi)) hp->rope_scaling = AGX_ROPE_SCALING_LLAMA3;
    return AGX_OK;
}

static agx_status check_tensor(const agx_gguf *g, const agx_hparams *hp, agx_tensor_role role, int layer,
                               const agx_gguf_tensor **out, agx_error *err) {
    char name[96];
    agx_tensor_name(role, layer, name, sizeof name);
    const agx_gguf_tensor *t = agx_gguf_find_tensor(g, name);
    *out = t;
    agx_tensor_need need = hp->info->need[role];
    if (!t) {
        if (need == AGX_TENSOR_REQUIRED)
            return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': required tensor '%s' is missing (architecture %s)",
                                 gpath(g), name, hp->info->name);
        return AGX_OK;
    }
    int64_t ne[AGX_GGUF_MAX_DIMS];
    uint32_t nd = agx_hparams_tensor_shape(hp, role, ne);
    bool ok = true;
    for (int d = 0; d < AGX_GGUF_MAX_DIMS; d++) ok = ok && t->ne[d] == ne[d];
    if (!ok) {
        char want[96], got[96];
        int k = 0, m = 0;
        for (uint32_t d = 0; d < nd; d++) k += snprintf(want + k, sizeof want - (size_t)k, "%s%" PRId64, d ? ", " : "", ne[d]);
        for (uint32_t d = 0; d < t->n_dims; d++) m += snprintf(got + m, sizeof got - (size_t)m, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        return agx_error_set(err, AGX_ERR_LOAD,
                             "GGUF '%s': tensor '%s' has shape [%s] but the metadata implies [%s] "
                             "(n_embd %u, n_head %u, n_head_kv %u, head_dim %u, n_ff %u, n_vocab %u)",
                             gpath(g), name, got, want, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim,
                             hp->n_ff, hp->n_vocab);
    }
    return AGX_OK;
}

agx_status agx_hparams_load(const agx_gguf *g, agx_hparams *hp, agx_error *err) {
    memset(hp, 0, sizeof *hp);
    agx_status s = detect_arch(g, hp, err);
    if (s) return s;
    const char *p = hp->arch_name;
    if ((s = need_u32(g, p, "block_count", &hp->n_layer, err))) return s;
    if ((s = need_u32(g, p, "embedding_length", &hp->n_embd, err))) return s;
    if ((s = need_u32(g, p, "attention.head_count", &hp->n_head, err))) return s;
    if ((s = need_u32(g, p, "feed_forward_length", &hp->n_ff, err))) return s;
    if (!key_u32(g, p, "attention.head_count_kv", &hp->n_head_kv)) hp->n_head_kv = hp->n_head;
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0)
        return agx_error_set(err, AGX_ERR_LOAD,
                             "GGUF '%s': %s.attention.head_count_kv = %u must divide head_count = %u", gpath(g), p,
                             hp->n_head_kv, hp->n_head);
    if (hp->n_layer > 4096 || hp->n_embd > (1u << 20) || hp->n_head > 4096 || hp->n_ff > (1u << 24))
        return agx_error_set(err, AGX_ERR_LOAD,
                             "GGUF '%s': implausible hyper-parameters (block_count %u, embedding_length %u, "
                             "head_count %u, feed_forward_length %u)", gpath(g), hp->n_layer, hp->n_embd, hp->n_head, hp->n_ff);
    if (key_u32(g, p, "attention.key_length", &hp->head_dim)) {
        if (hp->head_dim == 0 || hp->head_dim > 4096)
            return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': %s.attention.key_length = %u is invalid", gpath(g), p,
                                 hp->head_dim);
    } else {
        if (hp->n_embd % hp->n_head != 0)
            return agx_error_set(err, AGX_ERR_LOAD,
                                 "GGUF '%s': embedding_length %u is not a multiple of head_count %u and no "
                                 "%s.attention.key_length is given", gpath(g), hp->n_embd, hp->n_head, p);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    if (!key_u32(g, p, "attention.value_length", &hp->head_dim_v)) hp->head_dim_v = hp->head_dim;
    if (hp->head_dim_v == 0 || hp->head_dim_v > 4096)
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': %s.attention.value_length = %u is invalid", gpath(g), p,
                             hp->head_dim_v);
    if (!key_u32(g, p, "context_length", &hp->context_length) || hp->context_length == 0)
        hp->context_length = 2048;
    if (!key_u32(g, p, "rope.dimension_count", &hp->n_rot)) hp->n_rot = hp->head_dim;
    if (hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return agx_error_set(err, AGX_ERR_LOAD,
                             "GGUF '%s': %s.rope.dimension_count = %u must be even and at most head_dim %u",
                             gpath(g), p, hp->n_rot, hp->head_dim);
    if (!key_f32(g, p, "rope.freq_base", &hp->rope_freq_base)) hp->rope_freq_base = 10000.0f;
    if (!(hp->rope_freq_base > 0.0f))
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': %s.rope.freq_base must be positive", gpath(g), p);
    if (!key_f32(g, p, "attention.layer_norm_rms_epsilon", &hp->rms_eps)) hp->rms_eps = 1e-5f;
    if (!(hp->rms_eps > 0.0f) || hp->rms_eps > 1.0f)
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': %s.attention.layer_norm_rms_epsilon %g is invalid",
                             gpath(g), p, (double)hp->rms_eps);
    if ((s = read_rope_scaling(g, hp, err))) return s;

    /* n_vocab: tokenizer token list, else <arch>.vocab_size, else token_embd rows. */
    const agx_gguf_kv *toks = agx_gguf_find(g, "tokenizer.ggml.tokens");
    const agx_gguf_tensor *embd = agx_gguf_find_tensor(g, "token_embd.weight");
    if (toks && toks->type == AGX_GGUF_ARRAY && toks->arr_len > 0 && toks->arr_len <= UINT32_MAX)
        hp->n_vocab = (uint32_t)toks->arr_len;
    else if (key_u32(g, p, "vocab_size", &hp->n_vocab) && hp->n_vocab > 0) {
    } else if (embd && embd->n_dims == 2 && embd->ne[1] <= UINT32_MAX)
        hp->n_vocab = (uint32_t)embd->ne[1];
    else
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': cannot determine the vocabulary size "
                             "(no tokenizer.ggml.tokens, %s.vocab_size or token_embd.weight)", gpath(g), p);

    const agx_gguf_tensor *t;
    for (int r = 0; r < AGX_TENSOR_ROLE_COUNT; r++) {
        if (agx_tensor_role_per_layer((agx_tensor_role)r)) continue;
        if ((s = check_tensor(g, hp, (agx_tensor_role)r, 0, &t, err))) return s;
        if (r == AGX_TENSOR_OUTPUT) hp->tied_output = t == NULL;
    }
    int bias_layers = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        int biases = 0;
        for (int r = 0; r < AGX_TENSOR_ROLE_COUNT; r++) {
            if (!agx_tensor_role_per_layer((agx_tensor_role)r)) continue;
            if (hp->info->need[r] == AGX_TENSOR_ABSENT) continue;
            if ((s = check_tensor(g, hp, (agx_tensor_role)r, (int)l, &t, err))) return s;
            if (t && (r == AGX_TENSOR_ATTN_Q_BIAS || r == AGX_TENSOR_ATTN_K_BIAS || r == AGX_TENSOR_ATTN_V_BIAS))
                biases++;
        }
        if (biases != 0 && biases != 3)
            return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': layer %u has %d of the 3 q/k/v bias tensors "
                                 "(all or none expected)", gpath(g), l, biases);
        bias_layers += biases == 3;
    }
    if (bias_layers != 0 && (uint32_t)bias_layers != hp->n_layer)
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': q/k/v biases in %d of %u layers (all or none expected)",
                             gpath(g), bias_layers, hp->n_layer);
    hp->has_qkv_bias = bias_layers > 0;
    /* A layer index beyond block_count means the metadata is wrong. */
    char extra[96];
    if (agx_gguf_find_tensor(g, agx_tensor_name(AGX_TENSOR_ATTN_NORM, (int)hp->n_layer, extra, sizeof extra)))
        return agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': tensor '%s' exists but %s.block_count is %u", gpath(g),
                             extra, p, hp->n_layer);
    return AGX_OK;
}

/* llama3 rope scaling given only as keys (no rope_freqs tensor): the per-dim
 * divisors the converter would have written (HF / Meta reference formula). */
void agx_hparams_llama3_freq_factors(const agx_hparams *hp, float *ff) {
    const float factor = hp->rope_scaling_factor > 0 ? hp->rope_scaling_factor : 1.0f;
    const float orig = hp->rope_orig_ctx ? (float)hp->rope_orig_ctx : 8192.0f;
    const float lo = hp->rope_low_freq_factor, hi = hp->rope_high_freq_factor;
    const float lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
        const float freq = powf(hp->rope_freq_base, -2.0f * (float)i / (float)hp->n_rot);
        const float wavelen = 2.0f * (float)M_PI / freq;
        if (wavelen < hi_wavelen)
            ff[i] = 1.0f;
        else if (wavelen > lo_wavelen)
            ff[i] = factor;
        else {
            const float smooth = (orig / wavelen - lo) / (hi - lo);
            ff[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}
