/* test_arch.c — the architecture table and agx_hparams_load: detection,
 * aliases, explicit head_dim, tied output, biases, rope scaling, vocab size
 * sources, and shape validation errors that name the tensor. */
#include "agx_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/arch.h"
#include "agx/gguf.h"
#include "agx/quant.h"

typedef struct spec {
    const char *arch;          /* general.architecture; NULL = omit */
    const char *prefix;        /* key prefix (default: arch) */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    uint32_t key_length;       /* 0 = omit */
    bool tied, bias;
    bool write_tokens;         /* tokenizer.ggml.tokens of n_vocab */
    bool write_vocab_size;
    const char *skip_tensor;   /* leave this tensor out */
    const char *bad_tensor;    /* give this tensor a wrong second dim */
    const char *scaling_type;  /* rope.scaling.type */
    float scaling_factor;
    bool rope_freqs;
} spec;

static spec base_spec(void) {
    spec s = {.arch = "llama", .n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 96,
              .n_vocab = 40, .write_tokens = true};
    return s;
}

static void add_tensor(agx_gguf_writer *w, const spec *s, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1) {
    if (s->skip_tensor && strcmp(s->skip_tensor, name) == 0) return;
    if (s->bad_tensor && strcmp(s->bad_tensor, name) == 0) {
        if (n_dims == 1) ne0 += 32;
        else ne1 += 1;
    }
    int64_t ne[2] = {ne0, ne1};
    size_t nbytes = (size_t)(ne0 * (n_dims > 1 ? ne1 : 1)) * 4;
    float *d = calloc(nbytes / 4, 4);
    agx_error err;
    assert_int_equal(agx_gguf_writer_add_tensor(w, name, AGX_TYPE_F32, n_dims, ne, d, nbytes, &err), AGX_OK);
    free(d);
}

/* Builds the file described by s in dir and opens it. */
static agx_gguf *build(const char *dir, const spec *s) {
    agx_error err;
    agx_gguf_writer *w = agx_gguf_writer_new();
    const char *p = s->prefix ? s->prefix : s->arch;
    char k[128];
#define KEY(x) (snprintf(k, sizeof k, "%s.%s", p, x), k)
    if (s->arch) assert_int_equal(agx_gguf_writer_add_str(w, "general.architecture", s->arch, &err), AGX_OK);
    agx_gguf_writer_add_u32(w, KEY("block_count"), s->n_layer, &err);
    agx_gguf_writer_add_u32(w, KEY("embedding_length"), s->n_embd, &err);
    agx_gguf_writer_add_u32(w, KEY("attention.head_count"), s->n_head, &err);
    agx_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), s->n_head_kv, &err);
    agx_gguf_writer_add_u32(w, KEY("feed_forward_length"), s->n_ff, &err);
    agx_gguf_writer_add_u32(w, KEY("context_length"), 4096, &err);
    agx_gguf_writer_add_f32(w, KEY("rope.freq_base"), 1e6f, &err);
    agx_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-6f, &err);
    if (s->key_length) agx_gguf_writer_add_u32(w, KEY("attention.key_length"), s->key_length, &err);
    if (s->write_vocab_size) agx_gguf_writer_add_u32(w, KEY("vocab_size"), s->n_vocab, &err);
    if (s->scaling_type) agx_gguf_writer_add_str(w, KEY("rope.scaling.type"), s->scaling_type, &err);
    if (s->scaling_factor > 0) {
        agx_gguf_writer_add_f32(w, KEY("rope.scaling.factor"), s->scaling_factor, &err);
        agx_gguf_writer_add_u32(w, KEY("rope.scaling.original_context_length"), 8192, &err);
    }
#undef KEY
    if (s->write_tokens) {
        const char **toks = calloc(s->n_vocab, sizeof *toks);
        for (uint32_t i = 0; i < s->n_vocab; i++) toks[i] = "t";
        agx_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, s->n_vocab, &err);
        free(toks);
    }
    uint32_t hd = s->key_length ? s->key_length : s->n_embd / s->n_head;
    int64_t q = (int64_t)s->n_head * hd, kv = (int64_t)s->n_head_kv * hd;
    add_tensor(w, s, "token_embd.weight", 2, s->n_embd, s->n_vocab);
    if (s->rope_freqs) add_tensor(w, s, "rope_freqs.weight", 1, hd / 2, 1);
    char n[96];
    for (uint32_t l = 0; l < s->n_layer; l++) {
        int L = (int)l;
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_NORM, L, n, sizeof n), 1, s->n_embd, 1);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_Q, L, n, sizeof n), 2, s->n_embd, q);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_K, L, n, sizeof n), 2, s->n_embd, kv);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_V, L, n, sizeof n), 2, s->n_embd, kv);
        if (s->bias) {
            add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_Q_BIAS, L, n, sizeof n), 1, q, 1);
            add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_K_BIAS, L, n, sizeof n), 1, kv, 1);
            add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_V_BIAS, L, n, sizeof n), 1, kv, 1);
        }
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_ATTN_OUT, L, n, sizeof n), 2, q, s->n_embd);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_FFN_NORM, L, n, sizeof n), 1, s->n_embd, 1);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_FFN_GATE, L, n, sizeof n), 2, s->n_embd, s->n_ff);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_FFN_UP, L, n, sizeof n), 2, s->n_embd, s->n_ff);
        add_tensor(w, s, agx_tensor_name(AGX_TENSOR_FFN_DOWN, L, n, sizeof n), 2, s->n_ff, s->n_embd);
    }
    add_tensor(w, s, "output_norm.weight", 1, s->n_embd, 1);
    if (!s->tied) add_tensor(w, s, "output.weight", 2, s->n_embd, s->n_vocab);
    char *path = agx_sprintf("%s/m.gguf", dir);
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_OK);
    agx_gguf_writer_free(w);
    agx_gguf *g;
    if (agx_gguf_open(path, &g, &err) != AGX_OK) print_error("%s\n", err.message);
    assert_non_null(g);
    free(path);
    return g;
}

static agx_status load(const spec *s, agx_hparams *hp, agx_error *err) {
    char *dir = agx_test_tmpdir();
    agx_gguf *g = build(dir, s);
    agx_status st = agx_hparams_load(g, hp, err);
    agx_gguf_close(g);
    agx_test_rmtree(dir);
    free(dir);
    return st;
}

static void expect_error(const spec *s, const char *sub) {
    agx_hparams hp;
    agx_error err;
    agx_error_clear(&err);
    agx_status st = load(s, &hp, &err);
    if (st != AGX_ERR_LOAD || !strstr(err.message, sub)) print_error("got %d '%s', wanted '%s'\n", st, err.message, sub);
    assert_int_equal(st, AGX_ERR_LOAD);
    assert_non_null(strstr(err.message, sub));
}

static void test_table(void **state) {
    (void)state;
    assert_int_equal(agx_arch_by_name("llama")->arch, AGX_ARCH_LLAMA);
    assert_int_equal(agx_arch_by_name("mistral")->arch, AGX_ARCH_LLAMA);
    assert_int_equal(agx_arch_by_name("qwen2")->arch, AGX_ARCH_QWEN2);
    assert_null(agx_arch_by_name("gpt2"));
    assert_null(agx_arch_by_name("qwen3"));
    assert_int_equal(agx_arch_get(AGX_ARCH_QWEN2)->rope_style, AGX_ROPE_NEOX);
    assert_int_equal(agx_arch_get(AGX_ARCH_LLAMA)->rope_style, AGX_ROPE_NORMAL);
    assert_null(agx_arch_get(AGX_ARCH_COUNT));
    assert_int_equal(agx_arch_get(AGX_ARCH_QWEN2)->need[AGX_TENSOR_ATTN_Q_BIAS], AGX_TENSOR_REQUIRED);
    assert_int_equal(agx_arch_get(AGX_ARCH_LLAMA)->need[AGX_TENSOR_ATTN_Q_BIAS], AGX_TENSOR_OPTIONAL);
    char b[96];
    assert_string_equal(agx_tensor_name(AGX_TENSOR_ATTN_Q, 3, b, sizeof b), "blk.3.attn_q.weight");
    assert_string_equal(agx_tensor_name(AGX_TENSOR_ATTN_V_BIAS, 11, b, sizeof b), "blk.11.attn_v.bias");
    assert_string_equal(agx_tensor_name(AGX_TENSOR_ATTN_OUT, 0, b, sizeof b), "blk.0.attn_output.weight");
    assert_string_equal(agx_tensor_name(AGX_TENSOR_FFN_DOWN, 27, b, sizeof b), "blk.27.ffn_down.weight");
    assert_string_equal(agx_tensor_name(AGX_TENSOR_OUTPUT, 5, b, sizeof b), "output.weight");
    assert_string_equal(agx_tensor_name(AGX_TENSOR_TOKEN_EMBD, 0, b, sizeof b), "token_embd.weight");
    assert_false(agx_tensor_role_per_layer(AGX_TENSOR_OUTPUT_NORM));
    assert_true(agx_tensor_role_per_layer(AGX_TENSOR_FFN_NORM));
    assert_null(agx_tensor_role_pattern(AGX_TENSOR_ROLE_COUNT));
    assert_non_null(strstr(agx_arch_supported_list(), "llama"));
    assert_non_null(strstr(agx_arch_supported_list(), "qwen2"));
}

static void test_llama_basic(void **state) {
    (void)state;
    spec s = base_spec();
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.arch, AGX_ARCH_LLAMA);
    assert_string_equal(hp.arch_name, "llama");
    assert_int_equal(hp.n_layer, 2);
    assert_int_equal(hp.n_embd, 64);
    assert_int_equal(hp.head_dim, 16);
    assert_int_equal(hp.head_dim_v, 16);
    assert_int_equal(hp.n_rot, 16);
    assert_int_equal(hp.n_vocab, 40);
    assert_int_equal(hp.context_length, 4096);
    assert_true(hp.rope_freq_base == 1e6f);
    assert_true(hp.rms_eps == 1e-6f);
    assert_false(hp.tied_output);
    assert_false(hp.has_qkv_bias);
    assert_int_equal(hp.rope_style, AGX_ROPE_NORMAL);
    assert_int_equal(hp.rope_scaling, AGX_ROPE_SCALING_NONE);
    int64_t ne[4];
    assert_int_equal(agx_hparams_tensor_shape(&hp, AGX_TENSOR_ATTN_K, ne), 2);
    assert_int_equal(ne[0], 64);
    assert_int_equal(ne[1], 32);
}

static void test_qwen2_tied_bias(void **state) {
    (void)state;
    spec s = base_spec();
    s.arch = "qwen2";
    s.tied = true;
    s.bias = true;
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.arch, AGX_ARCH_QWEN2);
    assert_true(hp.tied_output);
    assert_true(hp.has_qkv_bias);
    assert_int_equal(hp.rope_style, AGX_ROPE_NEOX);
    /* qwen2 without biases is an error naming the tensor */
    s.skip_tensor = "blk.1.attn_k.bias";
    expect_error(&s, "'blk.1.attn_k.bias' is missing");
    /* llama with a partial set of biases too */
    s = base_spec();
    s.bias = true;
    s.skip_tensor = "blk.0.attn_v.bias";
    expect_error(&s, "layer 0 has 2 of the 3");
}

static void test_nemo_head_dim(void **state) {
    (void)state;
    spec s = base_spec();
    s.key_length = 32;   /* != 64/4 = 16 */
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.head_dim, 32);
    assert_int_equal(hp.n_rot, 32);
    int64_t ne[4];
    agx_hparams_tensor_shape(&hp, AGX_TENSOR_ATTN_Q, ne);
    assert_int_equal(ne[1], 128);
    agx_hparams_tensor_shape(&hp, AGX_TENSOR_ATTN_OUT, ne);
    assert_int_equal(ne[0], 128);
    assert_int_equal(ne[1], 64);
}

static void test_detection(void **state) {
    (void)state;
    spec s = base_spec();
    s.arch = NULL;
    s.prefix = "qwen2";
    s.bias = true;
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);   /* probe qwen2.attention.head_count */
    assert_int_equal(hp.arch, AGX_ARCH_QWEN2);
    s = base_spec();
    s.arch = NULL;
    s.prefix = "llama";
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.arch, AGX_ARCH_LLAMA);
    s.prefix = "gptx";
    expect_error(&s, "no general.architecture");
    s = base_spec();
    s.arch = "mistral";   /* alias with its own key prefix */
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.arch, AGX_ARCH_LLAMA);
    assert_string_equal(hp.arch_name, "mistral");
    s.arch = "falcon";
    expect_error(&s, "unsupported model architecture 'falcon' (supported: llama");
}

static void test_vocab_sources(void **state) {
    (void)state;
    spec s = base_spec();
    s.write_tokens = false;
    s.write_vocab_size = true;
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.n_vocab, 40);
    s.write_vocab_size = false;   /* from token_embd */
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.n_vocab, 40);
}

static void test_shape_errors(void **state) {
    (void)state;
    spec s = base_spec();
    s.bad_tensor = "blk.1.ffn_down.weight";
    expect_error(&s, "tensor 'blk.1.ffn_down.weight' has shape [96, 65] but the metadata implies [96, 64]");
    s.bad_tensor = "output_norm.weight";
    expect_error(&s, "'output_norm.weight' has shape [96]");
    s.bad_tensor = "token_embd.weight";   /* tokens say 40, embedding has 41 rows */
    expect_error(&s, "'token_embd.weight' has shape [64, 41]");
    s.bad_tensor = NULL;
    s.skip_tensor = "blk.0.ffn_gate.weight";
    expect_error(&s, "required tensor 'blk.0.ffn_gate.weight' is missing");
    s = base_spec();
    s.n_head_kv = 3;
    expect_error(&s, "head_count_kv = 3 must divide head_count = 4");
}

static void test_rope_scaling(void **state) {
    (void)state;
    spec s = base_spec();
    s.scaling_type = "linear";
    s.scaling_factor = 4.0f;
    agx_hparams hp;
    agx_error err;
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.rope_scaling, AGX_ROPE_SCALING_LINEAR);
    assert_true(hp.rope_scaling_factor == 4.0f);
    assert_int_equal(hp.rope_orig_ctx, 8192);
    s.scaling_type = "bogus";
    expect_error(&s, "unsupported llama.rope.scaling.type 'bogus'");
    s = base_spec();
    s.rope_freqs = true;   /* llama3-style factors tensor */
    assert_int_equal(load(&s, &hp, &err), AGX_OK);
    assert_int_equal(hp.rope_scaling, AGX_ROPE_SCALING_LLAMA3);
    assert_true(hp.has_rope_freqs);
}

static void test_reference_models(void **state) {
    (void)state;
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("reference dir missing: no reference models to load");
    char *p = agx_test_ref_path("models/qwen2-tiny-Q4_K_M.gguf");
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
    agx_hparams hp;
    assert_int_equal(agx_hparams_load(g, &hp, &err), AGX_OK);
    assert_int_equal(hp.n_head, 4);
    assert_int_equal(hp.n_vocab, 1027);
    assert_true(hp.tied_output && hp.has_qkv_bias);
    const agx_gguf_tensor *t = agx_arch_tensor(g, AGX_TENSOR_FFN_DOWN, 3);
    assert_non_null(t);
    assert_int_equal(t->type, AGX_TYPE_Q6_K);
    assert_null(agx_arch_tensor(g, AGX_TENSOR_OUTPUT, 0));
    agx_gguf_close(g);
    free(p);
    /* a vocab-only file is not a model */
    p = agx_test_ref_path("tokenizer/llama3.vocab.gguf");
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
    assert_int_equal(agx_hparams_load(g, &hp, &err), AGX_ERR_LOAD);
    assert_non_null(strstr(err.message, "token_embd.weight"));
    agx_gguf_close(g);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_llama_basic),
        cmocka_unit_test(test_qwen2_tied_bias), cmocka_unit_test(test_nemo_head_dim),
        cmocka_unit_test(test_detection),      cmocka_unit_test(test_vocab_sources),
        cmocka_unit_test(test_shape_errors),   cmocka_unit_test(test_rope_scaling),
        cmocka_unit_test(test_reference_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
