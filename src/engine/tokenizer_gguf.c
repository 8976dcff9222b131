/* tokenizer_gguf.c — builds a tokenizer from GGUF metadata (tokenizer.ggml.*),
 * and agx_tokenizer_load_for_model, which chooses between GGUF metadata and a
 * tokenizer.json beside the model (AGX_TOKENIZER=json). */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t get_id(const agx_gguf *g, const char *key, int32_t n_vocab) {
    uint64_t v;
    if (!agx_gguf_get_u64(g, key, &v) || v >= (uint64_t)n_vocab) return -1;
    return (int32_t)v;
}

agx_status agx_tokenizer_load_gguf(const agx_gguf *g, agx_tokenizer **out, agx_error *err) {
    *out = NULL;
    const char *path = agx_gguf_path(g);
    agx_gguf_str model;
    if (!agx_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return agx_error_set(err, AGX_ERR_TOKENIZER,
                             "'%s' has no tokenizer.ggml.model; put the model's tokenizer.json beside it "
                             "and set AGX_TOKENIZER=json", path);
    agx_tok_model kind;
    if (agx_gguf_str_eq(model, "gpt2")) kind = AGX_TOKM_BPE_BYTE;
    else if (agx_gguf_str_eq(model, "llama")) kind = AGX_TOKM_SPM;
    else
        return agx_error_set(err, AGX_ERR_TOKENIZER,
                             "'%s': tokenizer.ggml.model '%.*s' is not supported (gpt2 and llama are); "
                             "a tokenizer.json beside the model may work with AGX_TOKENIZER=json",
                             path, (int)(model.len > 40 ? 40 : model.len), model.ptr);
    const agx_gguf_kv *tokens = agx_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != AGX_GGUF_ARRAY || tokens->arr_type != AGX_GGUF_STRING || tokens->arr_len == 0 ||
        tokens->arr_len > (1u << 24))
        return agx_error_set(err, AGX_ERR_TOKENIZER,
                             "'%s': tokenizer.ggml.tokens is missing or not a string array of 1..16M entries", path);
    int32_t n = (int32_t)tokens->arr_len;
    const agx_gguf_kv *types = agx_gguf_find(g, "tokenizer.ggml.token_type");
    const agx_gguf_kv *scores = agx_gguf_find(g, "tokenizer.ggml.scores");
    const agx_gguf_kv *merges = agx_gguf_find(g, "tokenizer.ggml.merges");
    if (types && (types->type != AGX_GGUF_ARRAY || types->arr_len != (uint64_t)n)) types = NULL;
    if (scores && (scores->type != AGX_GGUF_ARRAY || scores->arr_len != (uint64_t)n)) scores = NULL;
    if (merges && (merges->type != AGX_GGUF_ARRAY || merges->arr_type != AGX_GGUF_STRING)) merges = NULL;

    agx_tokenizer *t = agx_tok_alloc(n);
    if (!t) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory loading the tokenizer of '%s'", path);
    agx_status st = AGX_OK;
    t->source = "gguf";
    t->model = kind;
    snprintf(t->model_name, sizeof t->model_name, "%s", kind == AGX_TOKM_SPM ? "llama" : "gpt2");
    for (int32_t i = 0; i < n; i++) {
        agx_gguf_str s;
        int64_t ty = AGX_TOKEN_NORMAL;
        if (!agx_gguf_arr_str(g, tokens, (uint64_t)i, &s) || s.len > (1u << 20)) {
            st = agx_error_set(err, AGX_ERR_TOKENIZER, "'%s': token %ld is unreadable", path, (long)i);
            goto done;
        }
        if (types && (!agx_gguf_arr_i64(types, (uint64_t)i, &ty) || ty < 0 || ty > AGX_TOKEN_BYTE))
            ty = AGX_TOKEN_NORMAL;
        if (!agx_tok_set_token(t, i, s.ptr, (size_t)s.len, (int)ty)) goto oom;
    }
    if (kind == AGX_TOKM_SPM && scores) {
        t->score = malloc((size_t)n * sizeof *t->score);
        if (!t->score) goto oom;
        for (int32_t i = 0; i < n; i++) {
            double v = 0;
            t->score[i] = agx_gguf_arr_f64(scores, (uint64_t)i, &v) ? (float)v : 0.0f;
        }
    }

    agx_gguf_str pre = {0};
    char prebuf[32] = "default";
    if (agx_gguf_get_str(g, "tokenizer.ggml.pre", &pre) && pre.len < sizeof prebuf) {
        memcpy(prebuf, pre.ptr, pre.len);
        prebuf[pre.len] = '\0';
    }
    snprintf(t->pre_name, sizeof t->pre_name, "%s", prebuf);
    bool b;
    if (kind == AGX_TOKM_SPM) {
        t->add_space_prefix = agx_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) ? b : true;
        t->byte_fallback = true;
        t->spm_strip_leading_space = t->add_space_prefix;
        t->add_bos = true;
    }

    if ((st = agx_tok_finish(t, err)) != AGX_OK) goto done;

    if (kind == AGX_TOKM_BPE_BYTE) {
        bool nfc = false, ignore_merges = false;
        const char *pat = agx_pretok_pattern_for(prebuf, &nfc, &ignore_merges);
        if (!pat) {
            agx_log(AGX_LOG_WARN, "'%s': pre-tokenizer '%s' is not known; using the gpt2 pattern (ids may differ)",
                    path, prebuf);
            pat = agx_pretok_pattern_for("gpt2", &nfc, &ignore_merges);
        }
        t->nfc = nfc;
        t->ignore_merges = ignore_merges;
        if ((st = agx_pretok_compile(t, pat, err)) != AGX_OK) goto done;
        if (!merges || merges->arr_len == 0) {
            st = agx_error_set(err, AGX_ERR_TOKENIZER, "'%s': byte-level BPE without tokenizer.ggml.merges", path);
            goto done;
        }
        if (!agx_tok_pairmap_init(&t->merges, (size_t)merges->arr_len)) goto oom;
        for (uint64_t i = 0; i < merges->arr_len && i < UINT32_MAX; i++) {
            agx_gguf_str m;
            if (!agx_gguf_arr_str(g, merges, i, &m) || m.len < 3) continue;
            const char *sp = memchr(m.ptr + 1, ' ', (size_t)m.len - 1);
            if (!sp) continue;
            size_t ln = (size_t)(sp - m.ptr);
            if (!agx_tok_add_merge(t, m.ptr, ln, sp + 1, (size_t)m.len - ln - 1, (uint32_t)i)) goto oom;
        }
    }

    t->bos = get_id(g, "tokenizer.ggml.bos_token_id", n);
    t->eos = get_id(g, "tokenizer.ggml.eos_token_id", n);
    t->eot = get_id(g, "tokenizer.ggml.eot_token_id", n);
    t->pad = get_id(g, "tokenizer.ggml.padding_token_id", n);
    int32_t unk = get_id(g, "tokenizer.ggml.unknown_token_id", n);
    if (unk >= 0) t->unk = unk;
    else if (kind == AGX_TOKM_SPM) t->unk = agx_tokenizer_find(t, "<unk>", 5);
    if (agx_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b)) t->add_bos = b;
    else if (strcmp(prebuf, "llama-bpe") == 0 || strcmp(prebuf, "tekken") == 0) t->add_bos = true;
    if (agx_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b)) t->add_eos = b;
    if (t->eot < 0) {
        static const char *const EOT_NAMES[] = {"<|eot_id|>", "<|im_end|>", "<|end|>"};
        for (size_t i = 0; i < 3 && t->eot < 0; i++) {
            int32_t id = agx_tokenizer_find(t, EOT_NAMES[i], strlen(EOT_NAMES[i]));
            if (id >= 0 && t->type[id] == AGX_TOKEN_CONTROL) t->eot = id;
        }
    }
    t->chat_template = agx_gguf_get_strdup(g, "tokenizer.chat_template");
    st = agx_tok_finish_specials(t, err);
    goto done;
oom:
    st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory loading the tokenizer of '%s'", path);
done:
    if (st != AGX_OK) {
        agx_tokenizer_free(t);
        return st;
    }
    *out = t;
    return AGX_OK;
}

char *agx_tokenizer_json_path_for_model(const char *model_path) {
    const char *slash = model_path ? strrchr(model_path, '/') : NULL;
    return slash ? agx_sprintf("%.*s/tokenizer.json", (int)(slash - model_path), model_path)
                 : agx_strdup("tokenizer.json");
}

bool agx_tokenizer_uses_json(void) {
    const char *mode = agx_env("AGX_TOKENIZER");
    return mode && strcmp(mode, "json") == 0;
}

agx_status agx_tokenizer_load_for_model(const char *model_path, const agx_gguf *gguf,
                                        agx_tokenizer **out, agx_error *err) {
    *out = NULL;
    const char *mode = agx_env("AGX_TOKENIZER");
    if (mode && strcmp(mode, "json") != 0 && strcmp(mode, "gguf") != 0)
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_TOKENIZER='%s' is not valid (use gguf or json)", mode);
    if (mode && strcmp(mode, "json") == 0) {
        char *json = agx_tokenizer_json_path_for_model(model_path);
        if (!json) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        if (!agx_file_exists(json)) {
            agx_status st = agx_error_set(err, AGX_ERR_TOKENIZER,
                                          "AGX_TOKENIZER=json but '%s' does not exist (Tokenizer must be named "
                                          "tokenizer.json in same directory as model)", json);
            free(json);
            return st;
        }
        agx_tokenizer *t = NULL;
        agx_status st = agx_tokenizer_load_json(json, &t, err);
        free(json);
        if (st != AGX_OK) return st;
        if (!t->chat_template && gguf) t->chat_template = agx_gguf_get_strdup(gguf, "tokenizer.chat_template");
        *out = t;
        return AGX_OK;
    }
    if (gguf) return agx_tokenizer_load_gguf(gguf, out, err);
    if (!model_path) return agx_error_set(err, AGX_ERR_TOKENIZER, "no model file given for the tokenizer");
    agx_gguf *g = NULL;
    agx_status st = agx_gguf_open(model_path, &g, err);
    if (st != AGX_OK) return st;
    st = agx_tokenizer_load_gguf(g, out, err);
    agx_gguf_close(g);
    return st;
}
