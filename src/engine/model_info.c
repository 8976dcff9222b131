/* model_info.c — `agx model info`: summarises a GGUF file (hyper-parameters,
 * parameter count, bytes per tensor type, tokenizer, chat template) as text or
 * JSON. The file is only mapped; nothing is dequantized. */
#include "agx/model_info.h"
#include "agx/tokenizer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/gguf.h"
#include "agx/util.h"

/* llama.cpp's llama_ftype values (general.file_type) -> names. */
static const char *const ftype_names[] = {
    [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1",
    [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",
    [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K", [32] = "BF16",
};

void agx_model_info_free(agx_model_info *mi) {
    if (!mi) return;
    free(mi->path);
    free(mi->name);
    free(mi->file_type);
    free(mi->tokenizer_model);
    free(mi->tokenizer_source);
    free(mi->tokenizer_pre);
    free(mi->device_error);
    free(mi);
}

void agx_model_info_set_device(agx_model_info *mi, const agx_device_info *dev, const char *error) {
    free(mi->device_error);
    mi->device_error = NULL;
    memset(&mi->device, 0, sizeof mi->device);
    mi->has_device = dev || error;
    if (dev) mi->device = *dev;
    if (!dev && error) mi->device_error = agx_strdup(error);
}

agx_status agx_model_info_load(const char *path, agx_model_info **out, agx_error *err) {
    *out = NULL;
    agx_gguf *g;
    agx_status s = agx_gguf_open(path, &g, err);
    if (s) return s;
    agx_model_info *mi = calloc(1, sizeof *mi);
    if (!mi) {
        agx_gguf_close(g);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    if ((s = agx_hparams_load(g, &mi->hp, err))) {
        agx_gguf_close(g);
        free(mi);
        return s;
    }
    mi->path = agx_strdup(path);
    mi->gguf_version = agx_gguf_version(g);
    mi->file_size = agx_gguf_file_size(g);
    mi->alignment = agx_gguf_alignment(g);
    mi->data_offset = agx_gguf_data_offset(g);
    mi->n_kv = agx_gguf_n_kv(g);
    mi->n_tensors = agx_gguf_n_tensors(g);
    for (size_t i = 0; i < agx_gguf_n_tensors(g); i++) {
        const agx_gguf_tensor *t = agx_gguf_tensor_at(g, i);
        uint64_t n = 1;
        for (int d = 0; d < AGX_GGUF_MAX_DIMS; d++) n *= (uint64_t)t->ne[d];
        mi->n_params += n;
        mi->tensor_bytes += t->nbytes;
        if (t->type < AGX_TYPE_COUNT) {   /* the reader only accepts known types */
            mi->types[t->type].count++;
            mi->types[t->type].bytes += t->nbytes;
        }
    }
    mi->name = agx_gguf_get_strdup(g, "general.name");
    uint32_t ft;
    if (agx_gguf_get_u32(g, "general.file_type", &ft) && ft < sizeof ftype_names / sizeof ftype_names[0] &&
        ftype_names[ft])
        mi->file_type = agx_strdup(ftype_names[ft]);
    mi->tokenizer_model = agx_gguf_get_strdup(g, "tokenizer.ggml.model");
    mi->tokenizer_pre = agx_gguf_get_strdup(g, "tokenizer.ggml.pre");
    /* the same choice the engine makes when it loads the tokenizer */
    mi->tokenizer_source = agx_tokenizer_uses_json() ? agx_tokenizer_json_path_for_model(path) : agx_strdup("gguf");
    agx_gguf_str tmpl;
    mi->has_chat_template = agx_gguf_get_str(g, "tokenizer.chat_template", &tmpl) && tmpl.len > 0;
    uint32_t id;
    mi->bos_id = agx_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id) ? (int64_t)id : -1;
    mi->eos_id = agx_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id) ? (int64_t)id : -1;
    agx_gguf_close(g);
    if (!mi->path) {
        agx_model_info_free(mi);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    *out = mi;
    return AGX_OK;
}

static const char *rope_scaling_name(agx_rope_scaling s) {
    static const char *const names[] = {"none", "linear", "yarn", "llama3"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}

/* A float as the shortest decimal that round-trips through float (1e-05, not 9.99999975e-06). */
static json_t *json_f32(float f) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)f);
    for (int prec = 6; prec <= 9; prec++) {
        char b2[32];
        snprintf(b2, sizeof b2, "%.*g", prec, (double)f);
        if (strtof(b2, NULL) == f) {
            memcpy(buf, b2, sizeof b2);
            break;
        }
    }
    return json_real(strtod(buf, NULL));
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

char *agx_model_info_json(const agx_model_info *mi) {
    const agx_hparams *hp = &mi->hp;
    json_t *o = json_object();
    json_object_set_new(o, "architecture", json_string(hp->info->name));
    json_object_set_new(o, "architecture_gguf", json_string(hp->arch_name));
    json_object_set_new(o, "name", str_or_null(mi->name));
    json_object_set_new(o, "file_type", str_or_null(mi->file_type));
    json_object_set_new(o, "n_layer", json_integer(hp->n_layer));
    json_object_set_new(o, "n_embd", json_integer(hp->n_embd));
    json_object_set_new(o, "n_head", json_integer(hp->n_head));
    json_object_set_new(o, "n_head_kv", json_integer(hp->n_head_kv));
    json_object_set_new(o, "head_dim", json_integer(hp->head_dim));
    json_object_set_new(o, "head_dim_v", json_integer(hp->head_dim_v));
    json_object_set_new(o, "n_ff", json_integer(hp->n_ff));
    json_object_set_new(o, "n_vocab", json_integer(hp->n_vocab));
    json_object_set_new(o, "context_length", json_integer(hp->context_length));
    json_object_set_new(o, "rope_freq_base", json_f32(hp->rope_freq_base));
    json_object_set_new(o, "rope_dim", json_integer(hp->n_rot));
    json_object_set_new(o, "rope_style", json_string(hp->rope_style == AGX_ROPE_NEOX ? "neox" : "normal"));
    json_t *rs = json_object();
    json_object_set_new(rs, "type", json_string(rope_scaling_name(hp->rope_scaling)));
    json_object_set_new(rs, "factor", json_f32(hp->rope_scaling_factor));
    json_object_set_new(rs, "original_context_length", json_integer(hp->rope_orig_ctx));
    json_object_set_new(rs, "rope_freqs_tensor", json_boolean(hp->has_rope_freqs));
    json_object_set_new(o, "rope_scaling", rs);
    json_object_set_new(o, "rms_eps", json_f32(hp->rms_eps));
    json_object_set_new(o, "tied_embeddings", json_boolean(hp->tied_output));
    json_object_set_new(o, "qkv_bias", json_boolean(hp->has_qkv_bias));
    json_object_set_new(o, "tokenizer_model", str_or_null(mi->tokenizer_model));
    json_object_set_new(o, "tokenizer_source", str_or_null(mi->tokenizer_source));
    json_object_set_new(o, "tokenizer_pre", str_or_null(mi->tokenizer_pre));
    json_object_set_new(o, "bos_token_id", mi->bos_id >= 0 ? json_integer(mi->bos_id) : json_null());
    json_object_set_new(o, "eos_token_id", mi->eos_id >= 0 ? json_integer(mi->eos_id) : json_null());
    json_object_set_new(o, "has_chat_template", json_boolean(mi->has_chat_template));
    json_object_set_new(o, "n_params", json_integer((json_int_t)mi->n_params));
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)mi->n_tensors));
    json_t *tt = json_object();
    for (uint32_t t = 0; t < AGX_TYPE_COUNT; t++) {
        if (!mi->types[t].count) continue;
        json_t *e = json_object();
        json_object_set_new(e, "count", json_integer((json_int_t)mi->types[t].count));
        json_object_set_new(e, "bytes", json_integer((json_int_t)mi->types[t].bytes));
        json_object_set_new(tt, agx_type_name(t), e);
    }
    json_object_set_new(o, "tensor_types", tt);
    json_object_set_new(o, "tensor_bytes", json_integer((json_int_t)mi->tensor_bytes));
    json_object_set_new(o, "file_size", json_integer((json_int_t)mi->file_size));
    json_object_set_new(o, "gguf_version", json_integer(mi->gguf_version));
    json_object_set_new(o, "alignment", json_integer((json_int_t)mi->alignment));
    json_object_set_new(o, "data_offset", json_integer((json_int_t)mi->data_offset));
    json_object_set_new(o, "n_kv", json_integer((json_int_t)mi->n_kv));
    json_object_set_new(o, "mmap", json_string("weights are mmap'ed read-only, not copied; resident memory is "
                                               "about the file size plus KV cache and scratch"));
    if (mi->has_device) {
        /* the device AGX_DEVICE selects on this machine (no context is created here,
         * so no device memory is used: agx health / agx bench report that) */
        json_t *d = mi->device_error ? json_pack("{s:n, s:s}", "kind", "error", mi->device_error)
                                     : agx_device_info_json(&mi->device);
        json_object_set_new(o, "device", d ? d : json_null());
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

static void human_bytes(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, n, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024) snprintf(buf, n, "%.1f KiB", (double)b / 1024);
    else snprintf(buf, n, "%" PRIu64 " B", b);
}

char *agx_model_info_text(const agx_model_info *mi) {
    const agx_hparams *hp = &mi->hp;
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    char hb[32];
    human_bytes(hb, sizeof hb, mi->file_size);
    agx_strbuf_printf(&sb, "file:            %s (%s, GGUF v%u, alignment %" PRIu64 ")\n", mi->path, hb,
                      mi->gguf_version, mi->alignment);
    if (mi->name) agx_strbuf_printf(&sb, "name:            %s\n", mi->name);
    agx_strbuf_printf(&sb, "architecture:    %s", hp->info->name);
    if (strcmp(hp->arch_name, hp->info->name) != 0) agx_strbuf_printf(&sb, " (as '%s')", hp->arch_name);
    agx_strbuf_printf(&sb, "%s\n", mi->file_type ? "" : "");
    if (mi->file_type) agx_strbuf_printf(&sb, "file type:       %s\n", mi->file_type);
    double p = (double)mi->n_params;
    agx_strbuf_printf(&sb, "parameters:      %" PRIu64 " (%.2f %s)\n", mi->n_params, p >= 1e9 ? p / 1e9 : p / 1e6,
                      p >= 1e9 ? "B" : "M");
    agx_strbuf_printf(&sb, "context length:  %u\n", hp->context_length);
    agx_strbuf_printf(&sb, "embedding:       %u, layers %u, ffn %u\n", hp->n_embd, hp->n_layer, hp->n_ff);
    agx_strbuf_printf(&sb, "attention:       %u heads, %u kv heads, head dim %u%s\n", hp->n_head, hp->n_head_kv,
                      hp->head_dim, hp->has_qkv_bias ? ", q/k/v biases" : "");
    agx_strbuf_printf(&sb, "rope:            %s, %u dims, freq base %g, scaling %s", 
                      hp->rope_style == AGX_ROPE_NEOX ? "neox" : "normal", hp->n_rot, (double)hp->rope_freq_base,
                      rope_scaling_name(hp->rope_scaling));
    if (hp->rope_scaling != AGX_ROPE_SCALING_NONE)
        agx_strbuf_printf(&sb, " (factor %g, original context %u%s)", (double)hp->rope_scaling_factor,
                          hp->rope_orig_ctx, hp->has_rope_freqs ? ", rope_freqs tensor" : "");
    agx_strbuf_printf(&sb, "\nrms eps:         %g\n", (double)hp->rms_eps);
    agx_strbuf_printf(&sb, "output:          %s\n", hp->tied_output ? "tied to token_embd" : "output.weight");
    agx_strbuf_printf(&sb, "vocab:           %u tokens, tokenizer %s%s%s%s\n", hp->n_vocab,
                      mi->tokenizer_model ? mi->tokenizer_model : "(none)", mi->tokenizer_pre ? " (pre " : "",
                      mi->tokenizer_pre ? mi->tokenizer_pre : "", mi->tokenizer_pre ? ")" : "");
    agx_strbuf_printf(&sb, "tokenizer from:  %s\n",
                      mi->tokenizer_source && strcmp(mi->tokenizer_source, "gguf") != 0 ? mi->tokenizer_source
                                                                                         : "GGUF metadata");
    agx_strbuf_printf(&sb, "chat template:   %s\n", mi->has_chat_template ? "present" : "absent");
    agx_strbuf_printf(&sb, "tensors:         %" PRIu64 "\n", mi->n_tensors);
    for (uint32_t t = 0; t < AGX_TYPE_COUNT; t++) {
        if (!mi->types[t].count) continue;
        human_bytes(hb, sizeof hb, mi->types[t].bytes);
        agx_strbuf_printf(&sb, "  %-6s %5" PRIu64 " tensors, %s\n", agx_type_name(t), mi->types[t].count, hb);
    }
    if (mi->has_device) {
        char line[256];
        if (mi->device_error)
            agx_strbuf_printf(&sb, "device:          none: %s\n", mi->device_error);
        else
            agx_strbuf_printf(&sb, "device:          %s\n", agx_device_describe(&mi->device, line, sizeof line));
        if (!mi->device_error && mi->device.note[0])
            agx_strbuf_printf(&sb, "device note:     %s\n", mi->device.note);
    }
    agx_strbuf_printf(&sb, "memory:          weights mmap'ed (not copied); resident ~ file size + KV cache\n");
    return agx_strbuf_take(&sb);
}
