/* tokenizer_json.c — loads an HF tokenizer.json (BPE model): vocabulary, merges
 * (list or "a b" strings), added tokens, normalizer (NFC; Prepend/Replace for
 * SentencePiece style), pre-tokenizer (Split regex, ByteLevel, Metaspace),
 * post-processor (BOS/EOS) and decoder, plus tokenizer_config.json beside it
 * (add_bos_token, bos/eos, chat_template). Unsupported components are a clear
 * error (model types other than BPE) or a logged warning (exotic normalizers). */
#include "tokenizer_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TOKENIZER_JSON (512 << 20)

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jbool(json_t *o, const char *key, bool def) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Visits a component and, for "Sequence", its children (key "normalizers",
 * "pretokenizers", "decoders", "processors"). */
typedef void (*visit_fn)(json_t *node, void *ctx);
static void visit(json_t *node, visit_fn fn, void *ctx) {
    if (!json_is_object(node)) return;
    const char *type = jstr(node, "type");
    if (type && strcmp(type, "Sequence") == 0) {
        static const char *const KEYS[] = {"normalizers", "pretokenizers", "decoders", "processors"};
        for (size_t k = 0; k < 4; k++) {
            json_t *arr = json_object_get(node, KEYS[k]);
            size_t i;
            json_t *child;
            json_array_foreach(arr, i, child) visit(child, fn, ctx);
        }
        return;
    }
    fn(node, ctx);
}

typedef struct {
    agx_tokenizer *t;
    const char *split_pattern;
    bool bytelevel, bytelevel_regex, metaspace, metaspace_first, metaspace_split;
    bool prepend, nfc, strip, metaspace_dec, unsupported;
    char unsupported_name[64];
} comp_ctx;

static void note_unsupported(comp_ctx *c, const char *what, const char *type) {
    if (!c->unsupported) snprintf(c->unsupported_name, sizeof c->unsupported_name, "%s %s", what, type);
    c->unsupported = true;
}

static void visit_normalizer(json_t *n, void *ctx) {
    comp_ctx *c = ctx;
    const char *type = jstr(n, "type");
    if (!type) return;
    if (strcmp(type, "NFC") == 0) c->nfc = true;
    else if (strcmp(type, "Prepend") == 0) c->prepend = true;
    else if (strcmp(type, "Replace") == 0) { /* " " -> "▁": part of the SentencePiece path */ }
    else note_unsupported(c, "normalizer", type);
}

static void visit_pretok(json_t *n, void *ctx) {
    comp_ctx *c = ctx;
    const char *type = jstr(n, "type");
    if (!type) return;
    if (strcmp(type, "Split") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        const char *re = jstr(pat, "Regex");
        if (re && !c->split_pattern) c->split_pattern = re;
        else note_unsupported(c, "pre-tokenizer", "Split (string pattern)");
    } else if (strcmp(type, "ByteLevel") == 0) {
        c->bytelevel = true;
        if (jbool(n, "use_regex", true)) c->bytelevel_regex = true;
    } else if (strcmp(type, "Metaspace") == 0) {
        c->metaspace = true;
        c->metaspace_split = jbool(n, "split", true);
        const char *scheme = jstr(n, "prepend_scheme");
        if (scheme && strcmp(scheme, "first") == 0) c->metaspace_first = true;
        if (scheme && strcmp(scheme, "never") == 0) c->metaspace = false;
        if (!scheme && !jbool(n, "add_prefix_space", true)) c->metaspace = false;
    } else {
        note_unsupported(c, "pre-tokenizer", type);
    }
}

static void visit_decoder(json_t *n, void *ctx) {
    comp_ctx *c = ctx;
    const char *type = jstr(n, "type");
    if (!type) return;
    if (strcmp(type, "Strip") == 0) {
        json_t *start = json_object_get(n, "start");
        if (json_integer_value(start) >= 1) c->strip = true;
    } else if (strcmp(type, "Metaspace") == 0) {
        const char *scheme = jstr(n, "prepend_scheme");
        if (!scheme || strcmp(scheme, "never") != 0) c->metaspace_dec = true;
    } else if (strcmp(type, "ByteLevel") == 0) {
        c->bytelevel = true;
    }
}

/* "<s>" or {"content": "<s>"} */
static const char *token_name(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return agx_strdup(".");
    return agx_strndup(path, (size_t)(slash - path));
}

agx_status agx_tokenizer_load_json(const char *path, agx_tokenizer **out, agx_error *err) {
    *out = NULL;
    struct stat stb;
    if (stat(path, &stb) != 0)
        return agx_error_set(err, AGX_ERR_TOKENIZER, "cannot read tokenizer '%s': %s", path, strerror(errno));
    if (stb.st_size > MAX_TOKENIZER_JSON)
        return agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s' is %lld bytes, more than the %d MiB agx accepts",
                             path, (long long)stb.st_size, MAX_TOKENIZER_JSON >> 20);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return agx_error_set(err, AGX_ERR_TOKENIZER, "cannot read tokenizer '%s': %s (line %d)", path,
                             je.text, je.line);
    json_t *cfg = NULL;
    char *dir = dir_of(path);
    char *cfg_path = dir ? agx_sprintf("%s/tokenizer_config.json", dir) : NULL;
    free(dir);
    if (cfg_path && agx_file_exists(cfg_path)) {
        cfg = json_load_file(cfg_path, JSON_DECODE_INT_AS_REAL, &je);
        if (!cfg) agx_log(AGX_LOG_WARN, "ignoring unreadable %s: %s", cfg_path, je.text);
    }
    free(cfg_path);

    agx_tokenizer *t = NULL;
    agx_status st = AGX_OK;
    json_t *model = json_object_get(root, "model");
    const char *mtype = jstr(model, "type");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(model) || (mtype && strcmp(mtype, "BPE") != 0) || !json_is_object(vocab)) {
        st = agx_error_set(err, AGX_ERR_TOKENIZER,
                           "tokenizer '%s': model type '%s' is not supported (only BPE with a vocab object)",
                           path, mtype ? mtype : "?");
        goto done;
    }

    /* vocabulary size: highest id + 1 over vocab and added tokens */
    long long max_id = -1;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            st = agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s': vocab entry '%.40s' has a bad id",
                               path, key);
            goto done;
        }
        if (json_integer_value(val) > max_id) max_id = json_integer_value(val);
    }
    size_t ai;
    json_t *at;
    json_array_foreach(added, ai, at) {
        json_t *idv = json_object_get(at, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 || json_integer_value(idv) >= (1 << 24) ||
            !jstr(at, "content")) {
            st = agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s': added token %zu is malformed", path, ai);
            goto done;
        }
        if (json_integer_value(idv) > max_id) max_id = json_integer_value(idv);
    }
    /* ids must be (nearly) dense: a few entries must not make us allocate 16M tokens */
    size_t n_entries = json_object_size(vocab) + json_array_size(added);
    if (max_id >= 0 && (size_t)max_id > 2 * n_entries + 1024) {
        st = agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s': token ids go up to %lld for only %zu tokens",
                           path, max_id, n_entries);
        goto done;
    }
    if (max_id < 0) {
        st = agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s' has an empty vocabulary", path);
        goto done;
    }
    t = agx_tok_alloc((int32_t)(max_id + 1));
    if (!t) goto oom;
    t->source = "tokenizer.json";
    json_object_foreach(vocab, key, val) {
        if (!agx_tok_set_token(t, (int32_t)json_integer_value(val), key, strlen(key), AGX_TOKEN_NORMAL)) goto oom;
    }
    json_array_foreach(added, ai, at) {
        const char *content = jstr(at, "content");
        size_t n = strlen(content);
        bool special = jbool(at, "special", false) || agx_tok_looks_special(content, n);
        /* the same rule as llama.cpp's converter, so both paths agree */
        if (!agx_tok_set_token(t, (int32_t)json_integer_value(json_object_get(at, "id")), content, n,
                               special ? AGX_TOKEN_CONTROL : AGX_TOKEN_USER_DEFINED)) goto oom;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->text_len[id] == 0 && t->type[id] == AGX_TOKEN_UNDEFINED) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%ld]", (long)id);
            if (!agx_tok_set_token(t, id, pad, strlen(pad), AGX_TOKEN_UNUSED)) goto oom;
        }
    }

    comp_ctx cc;
    memset(&cc, 0, sizeof cc);
    cc.t = t;
    visit(json_object_get(root, "normalizer"), visit_normalizer, &cc);
    visit(json_object_get(root, "pre_tokenizer"), visit_pretok, &cc);
    visit(json_object_get(root, "decoder"), visit_decoder, &cc);
    if (cc.unsupported)
        agx_log(AGX_LOG_WARN, "tokenizer '%s': %s is not supported and is ignored; ids may differ from HF",
                path, cc.unsupported_name);

    bool byte_fallback = jbool(model, "byte_fallback", false);
    if (cc.bytelevel) {
        t->model = AGX_TOKM_BPE_BYTE;
        snprintf(t->model_name, sizeof t->model_name, "gpt2");
    } else {
        t->model = AGX_TOKM_SPM;
        snprintf(t->model_name, sizeof t->model_name, "llama");
        t->add_space_prefix = cc.prepend || cc.metaspace;
        t->spm_prefix_first_only = cc.metaspace && cc.metaspace_first && !cc.prepend;
        t->byte_fallback = byte_fallback;
        t->spm_strip_leading_space = cc.strip;
        t->spm_metaspace = cc.metaspace && !cc.prepend;
        t->spm_metaspace_decoder = cc.metaspace_dec && !cc.strip;
        t->spm_split = cc.metaspace && cc.metaspace_split;
    }
    snprintf(t->pre_name, sizeof t->pre_name, "%s", cc.split_pattern ? "split-regex" : cc.bytelevel ? "gpt2" : "none");
    t->nfc = cc.nfc;
    t->ignore_merges = jbool(model, "ignore_merges", false);
    const char *unk = jstr(model, "unk_token");

    if ((st = agx_tok_finish(t, err)) != AGX_OK) goto done;
    /* HF's skip_special_tokens drops exactly the added tokens flagged special */
    json_array_foreach(added, ai, at) {
        int64_t id = json_integer_value(json_object_get(at, "id"));
        t->skip[id] = jbool(at, "special", false);
        uint8_t strip = (jbool(at, "lstrip", false) ? 1 : 0) | (jbool(at, "rstrip", false) ? 2 : 0);
        if (strip && !t->strip && !(t->strip = calloc((size_t)t->n_vocab, 1))) goto oom;
        if (strip) t->strip[id] = strip;
    }
    if (unk) t->unk = agx_tokenizer_find(t, unk, strlen(unk));

    if (t->model == AGX_TOKM_BPE_BYTE) {
        const char *pat = cc.split_pattern;
        bool nfc_unused, im_unused;
        if (!pat) pat = agx_pretok_pattern_for("gpt2", &nfc_unused, &im_unused);
        if ((st = agx_pretok_compile(t, pat, err)) != AGX_OK) goto done;
    }

    /* merges: ["a", "b"] pairs or "a b" strings, rank = position */
    size_t nm = json_array_size(merges);
    if (!agx_tok_pairmap_init(&t->merges, nm)) goto oom;
    size_t mi;
    json_t *mv;
    json_array_foreach(merges, mi, mv) {
        const char *l, *r;
        size_t ln, rn;
        if (json_is_string(mv)) {
            const char *s = json_string_value(mv);
            size_t n = json_string_length(mv);
            const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
            if (!sp) continue;
            l = s;
            ln = (size_t)(sp - s);
            r = sp + 1;
            rn = n - ln - 1;
        } else if (json_is_array(mv) && json_array_size(mv) == 2 && json_is_string(json_array_get(mv, 0)) &&
                   json_is_string(json_array_get(mv, 1))) {
            l = json_string_value(json_array_get(mv, 0));
            ln = json_string_length(json_array_get(mv, 0));
            r = json_string_value(json_array_get(mv, 1));
            rn = json_string_length(json_array_get(mv, 1));
        } else {
            continue;
        }
        if (!agx_tok_add_merge(t, l, ln, r, rn, (uint32_t)mi)) goto oom;
    }
    if (t->model == AGX_TOKM_BPE_BYTE && !t->have_merges && nm) {
        st = agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer '%s': none of its %zu merges match the vocabulary",
                           path, nm);
        goto done;
    }
    t->have_merges = true;   /* SPM from json always uses the merge loop (rank order) */

    /* BOS/EOS: tokenizer_config.json, then the TemplateProcessing post-processor */
    json_t *pp = json_object_get(root, "post_processor");
    bool pp_bos = false, pp_eos = false;
    int32_t pp_bos_id = -1, pp_eos_id = -1;
    const char *pptype = jstr(pp, "type");
    if (pptype && strcmp(pptype, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(pp, "single");
        size_t n = json_array_size(single);
        json_t *first = json_object_get(json_array_get(single, 0), "SpecialToken");
        json_t *last = n > 1 ? json_object_get(json_array_get(single, n - 1), "SpecialToken") : NULL;
        const char *fn = jstr(first, "id"), *ln2 = jstr(last, "id");
        if (fn) { pp_bos = true; pp_bos_id = agx_tokenizer_find(t, fn, strlen(fn)); }
        if (ln2) { pp_eos = true; pp_eos_id = agx_tokenizer_find(t, ln2, strlen(ln2)); }
    }
    const char *bos = cfg ? token_name(json_object_get(cfg, "bos_token")) : NULL;
    const char *eos = cfg ? token_name(json_object_get(cfg, "eos_token")) : NULL;
    const char *pad = cfg ? token_name(json_object_get(cfg, "pad_token")) : NULL;
    t->bos = bos ? agx_tokenizer_find(t, bos, strlen(bos)) : pp_bos_id;
    t->eos = eos ? agx_tokenizer_find(t, eos, strlen(eos)) : pp_eos_id;
    t->pad = pad ? agx_tokenizer_find(t, pad, strlen(pad)) : -1;
    json_t *abos = cfg ? json_object_get(cfg, "add_bos_token") : NULL;
    json_t *aeos = cfg ? json_object_get(cfg, "add_eos_token") : NULL;
    /* Without an explicit flag or template, a declared bos_token means BOS is
     * added (Meta's fixed Llama 3 post-processor; HF LlamaTokenizer default). */
    t->add_bos = json_is_boolean(abos) ? json_is_true(abos) : (pp_bos || (bos && t->bos >= 0));
    t->add_eos = json_is_boolean(aeos) ? json_is_true(aeos) : pp_eos;
    static const char *const EOT_NAMES[] = {"<|eot_id|>", "<|im_end|>", "<|end|>"};
    for (size_t i = 0; i < 3 && t->eot < 0; i++) t->eot = agx_tokenizer_find(t, EOT_NAMES[i], strlen(EOT_NAMES[i]));

    json_t *tmpl = cfg ? json_object_get(cfg, "chat_template") : NULL;
    if (json_is_array(tmpl)) {   /* [{"name": "default", "template": ...}, ...] */
        size_t i;
        json_t *e, *pick = NULL;
        json_array_foreach(tmpl, i, e) {
            const char *name = jstr(e, "name");
            if (!pick || (name && strcmp(name, "default") == 0)) pick = json_object_get(e, "template");
        }
        tmpl = pick;
    }
    if (json_is_string(tmpl) && !(t->chat_template = agx_strdup(json_string_value(tmpl)))) goto oom;

    /* eog list and bos/eos text depend on the ids set above */
    if ((st = agx_tok_finish_specials(t, err)) != AGX_OK) goto done;
    goto done;
oom:
    st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory loading tokenizer '%s'", path);
done:
    json_decref(root);
    json_decref(cfg);
    if (st != AGX_OK) {
        agx_tokenizer_free(t);
        return st;
    }
    *out = t;
    return AGX_OK;
}
