/* test_model_info.c — `agx model info --json` on every reference model against
 * manifest.json (config, tensor-type counts, bytes from NAME.tensors.json, file
 * size), and on files made by agx_gen_model (shapes, llama.cpp's Q4_K_M and
 * Q3_K_M type rules incl. the q5_0/q8_0 fallbacks, q2_K/q3_K weights and
 * logits, determinism, a consistent BPE vocab). */
#include "agx_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/arch.h"
#include "agx/gguf.h"
#include "agx/model_info.h"
#include "agx/quant.h"
#include "ref_logits.h"


static json_t *model_info_json(const char *path) {
    char *cmd = agx_sprintf("'%s' model info '%s' --json", agx_test_cli_path(), path);
    char *out = NULL, *errout = NULL;
    int rc = agx_test_run(cmd, NULL, &out, &errout);
    if (rc != 0) print_error("%s -> %d: %s\n", cmd, rc, errout ? errout : "");
    assert_int_equal(rc, 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j) print_error("bad JSON from %s: %s\n", cmd, je.text);
    assert_non_null(j);
    free(cmd);
    free(out);
    free(errout);
    return j;
}

static json_int_t ji(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v)) print_error("key '%s' is not an integer\n", k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_reference_models(void **state) {
    (void)state;
    char *mpath = agx_test_ref_path("models/manifest.json");
    if (!mpath) AGX_TEST_SKIP("reference dir missing: cannot check agx model info against manifest.json");
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je);
    assert_non_null(m);
    json_t *cases = json_object_get(m, "cases");
    assert_true(json_array_size(cases) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *cfg = json_object_get(c, "config");
        char *rel = agx_sprintf("models/%s.gguf", name);
        char *path = agx_test_ref_path(rel);
        json_t *j = model_info_json(path);
        assert_string_equal(json_string_value(json_object_get(j, "architecture")),
                            json_string_value(json_object_get(cfg, "arch")));
        const char *keys[] = {"n_embd", "n_layer", "n_head", "n_head_kv", "head_dim", "n_ff", "context_length"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            if (ji(j, keys[k]) != json_integer_value(json_object_get(cfg, keys[k])))
                print_error("%s: %s differs\n", name, keys[k]);
            assert_int_equal(ji(j, keys[k]), json_integer_value(json_object_get(cfg, keys[k])));
        }
        assert_int_equal(ji(j, "n_vocab"), json_integer_value(json_object_get(c, "n_vocab")));
        /* which tokenizer the engine would use: GGUF metadata unless AGX_TOKENIZER=json */
        assert_string_equal(json_string_value(json_object_get(j, "tokenizer_source")), "gguf");
        assert_true(fabs(json_real_value(json_object_get(j, "rope_freq_base")) -
                         json_number_value(json_object_get(cfg, "rope_freq_base"))) < 1e-3);
        assert_true(fabs(json_real_value(json_object_get(j, "rms_eps")) -
                         json_number_value(json_object_get(cfg, "rms_eps"))) < 1e-9);
        assert_int_equal(json_is_true(json_object_get(j, "tied_embeddings")),
                         json_is_true(json_object_get(cfg, "tied_embeddings")));
        assert_int_equal(json_is_true(json_object_get(j, "qkv_bias")), json_is_true(json_object_get(cfg, "qkv_bias")));
        assert_string_equal(json_string_value(json_object_get(j, "tokenizer_model")), "gpt2");
        assert_true(json_is_true(json_object_get(j, "has_chat_template")));
        assert_int_equal(ji(j, "file_size"), json_integer_value(json_object_get(c, "model_bytes")));
        assert_int_equal(ji(j, "bos_token_id"), json_integer_value(json_object_get(cfg, "bos")));
        assert_int_equal(ji(j, "eos_token_id"), json_integer_value(json_object_get(cfg, "eos")));
        /* tensor types: counts from the manifest, bytes recomputed from NAME.tensors.json */
        json_t *tt = json_object_get(j, "tensor_types");
        json_t *want = json_object_get(c, "tensor_type_counts");
        assert_int_equal(json_object_size(tt), json_object_size(want));
        const char *tn;
        json_t *cnt;
        json_object_foreach(want, tn, cnt) {
            json_t *e = json_object_get(tt, tn);
            if (!e) print_error("%s: type %s missing from tensor_types\n", name, tn);
            assert_non_null(e);
            assert_int_equal(ji(e, "count"), json_integer_value(cnt));
        }
        char *trel = agx_sprintf("models/%s.tensors.json", name);
        char *tpath = agx_test_ref_path(trel);
        json_t *tl = json_load_file(tpath, 0, &je);
        assert_non_null(tl);
        json_t *list = json_is_array(tl) ? tl : json_object_get(tl, "tensors");
        assert_true(json_is_array(list));
        json_t *bytes = json_object();
        size_t ti;
        json_t *t;
        json_int_t n_params = 0;
        json_array_foreach(list, ti, t) {
            const char *ty = json_string_value(json_object_get(t, "type"));
            json_t *ne = json_object_get(t, "ne");
            uint32_t id = AGX_TYPE_COUNT;
            for (uint32_t k = 0; k < AGX_TYPE_COUNT; k++)
                if (strcmp(agx_type_name(k), ty) == 0) id = k;
            assert_true(id < AGX_TYPE_COUNT);
            json_int_t rows = 1, elems = 1;
            for (size_t d = 0; d < json_array_size(ne); d++) {
                json_int_t v = json_integer_value(json_array_get(ne, d));
                if (d) rows *= v;
                elems *= v;
            }
            n_params += elems;
            json_int_t b = (json_int_t)agx_type_row_size(id, json_integer_value(json_array_get(ne, 0))) * rows;
            json_t *prev = json_object_get(bytes, ty);
            json_object_set_new(bytes, ty, json_integer(b + (prev ? json_integer_value(prev) : 0)));
        }
        assert_int_equal(ji(j, "n_tensors"), (json_int_t)json_array_size(list));
        assert_int_equal(ji(j, "n_params"), n_params);
        json_object_foreach(bytes, tn, cnt) assert_int_equal(ji(json_object_get(tt, tn), "bytes"), json_integer_value(cnt));
        json_decref(bytes);
        json_decref(tl);
        free(trel);
        free(tpath);
        json_decref(j);
        free(rel);
        free(path);
    }
    json_decref(m);
    free(mpath);
}

/* ---- generated files ---- */

/* dir/file made by agx_gen_model ARGS (the test fails when it cannot be) */
static char *gen(const char *dir, const char *file, const char *args) {
    char *path = agx_test_gen_model(dir, file, args);
    assert_non_null(path);
    return path;
}

static void expect_types(json_t *j, const char *const *names, const json_int_t *counts, size_t n) {
    json_t *tt = json_object_get(j, "tensor_types");
    if (json_object_size(tt) != n) {
        char *s = json_dumps(tt, 0);
        print_error("tensor_types: %s\n", s);
        free(s);
    }
    assert_int_equal(json_object_size(tt), n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object_get(tt, names[i]);
        if (!e) print_error("missing type %s\n", names[i]);
        assert_non_null(e);
        if (ji(e, "count") != counts[i]) print_error("%s: %lld tensors, want %lld\n", names[i], (long long)ji(e, "count"), (long long)counts[i]);
        assert_int_equal(ji(e, "count"), counts[i]);
    }
}

static void test_generated_presets(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    /* qwen2, tied, biases, Q4_K_M: layer 1 of 2 uses more bits; tied embedding q6_K */
    char *p = gen(dir, "q.gguf", "--preset tiny-qwen2 --type q4_K_M");
    json_t *j = model_info_json(p);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "qwen2");
    assert_int_equal(ji(j, "n_embd"), 256);
    assert_int_equal(ji(j, "n_layer"), 2);
    assert_int_equal(ji(j, "head_dim"), 64);
    assert_int_equal(ji(j, "n_vocab"), 768);
    assert_true(json_is_true(json_object_get(j, "tied_embeddings")));
    assert_true(json_is_true(json_object_get(j, "qkv_bias")));
    assert_string_equal(json_string_value(json_object_get(j, "file_type")), "Q4_K_M");
    expect_types(j, (const char *const[]){"f32", "q4_K", "q6_K"}, (const json_int_t[]){11, 12, 3}, 3);
    json_decref(j);
    free(p);
    /* Mistral-Nemo style: head_dim 32 != 512/8, untied output.weight in q6_K */
    p = gen(dir, "n.gguf", "--preset tiny-nemo --type q4_K_M");
    j = model_info_json(p);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "llama");
    assert_int_equal(ji(j, "head_dim"), 32);
    assert_int_equal(ji(j, "n_head"), 8);
    assert_int_equal(ji(j, "n_head_kv"), 2);
    assert_false(json_is_true(json_object_get(j, "tied_embeddings")));
    expect_types(j, (const char *const[]){"f32", "q4_K", "q6_K"}, (const json_int_t[]){5, 13, 3}, 3);
    json_decref(j);
    free(p);
    /* uniform f16 llama */
    p = gen(dir, "l.gguf", "--preset tiny-llama --type f16");
    j = model_info_json(p);
    assert_int_equal(ji(j, "head_dim"), 32);
    expect_types(j, (const char *const[]){"f32", "f16"}, (const json_int_t[]){5, 16}, 2);
    json_decref(j);
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

/* Rows of 128 (not a multiple of 256) fall back like real Qwen2.5-0.5B files. */
static void test_generated_fallback_types(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *p = gen(dir, "f.gguf",
                  "--arch qwen2 --n-embd 128 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 512 --n-vocab 300 --tied "
                  "--type q4_K_M");
    json_t *j = model_info_json(p);
    expect_types(j, (const char *const[]){"f32", "q5_0", "q8_0", "q4_K", "q6_K"}, (const json_int_t[]){11, 11, 2, 1, 1},
                 5);
    json_decref(j);
    free(p);
    /* Q3_K_M: q3_K -> q4_0 (llama.cpp's pre-iq4_nl fallback), attn_v q5_K -> q5_1,
     * attn_output q4_K -> q5_0; ffn_down (rows of 512) stays q4_K */
    p = gen(dir, "f3.gguf",
            "--arch qwen2 --n-embd 128 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 512 --n-vocab 300 --tied "
            "--type q3_K_M");
    j = model_info_json(p);
    expect_types(j, (const char *const[]){"f32", "q4_0", "q5_0", "q5_1", "q8_0", "q4_K"},
                 (const json_int_t[]){11, 8, 2, 2, 1, 2}, 6);
    json_decref(j);
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

/* relative RMS error of tensor `name` in quantized file gq against f32 file gf */
static double tensor_rel_rmse(agx_gguf *gq, agx_gguf *gf, const char *name, uint32_t want_type) {
    const agx_gguf_tensor *tq = agx_gguf_find_tensor(gq, name), *tf = agx_gguf_find_tensor(gf, name);
    assert_non_null(tq);
    assert_non_null(tf);
    if (tq->type != want_type) print_error("%s: type %s, want %s\n", name, agx_type_name(tq->type), agx_type_name(want_type));
    assert_int_equal(tq->type, want_type);
    const size_t n = (size_t)(tf->ne[0] * tf->ne[1]);
    float *dq = malloc(n * sizeof *dq);
    agx_type_traits_get(tq->type)->to_float(tq->data, dq, (int64_t)n);
    const float *w = tf->data;
    double se = 0, sx = 0;
    for (size_t i = 0; i < n; i++) {
        se += ((double)dq[i] - w[i]) * ((double)dq[i] - w[i]);
        sx += (double)w[i] * w[i];
    }
    free(dq);
    return sqrt(se / sx);
}

/* `agx logits` of a 3-token prompt: the raw float rows of the last run */
static float *logits_of(const char *model, const char *dir, size_t *n) {
    char *out = agx_sprintf("%s/logits.bin", dir);
    char *args = agx_sprintf("logits -m '%s' --tokens 1,2,3 --out '%s' -t 1", model, out);
    agx_test_cli_result r = agx_test_cli(NULL, args, NULL);
    if (r.rc != 0) print_error("agx %s -> %d: %s\n", args, r.rc, r.err);
    assert_int_equal(r.rc, 0);
    char *data;
    size_t nb;
    agx_error err;
    assert_int_equal(agx_file_read_all(out, 0, &data, &nb, &err), AGX_OK);
    assert_true(nb > 0 && nb % sizeof(float) == 0);
    *n = nb / sizeof(float);
    agx_test_cli_result_free(&r);
    free(args);
    free(out);
    return (float *)data;
}

/* q2_K / q3_K / Q3_K_M files: llama.cpp's Q3_K_M types per role (attn_v q5_K
 * in the first two layers, ffn_down q5_K in the first 16th else q4_K,
 * attn_output q4_K, output q6_K); the weights are the f32 file's up to the
 * quantizers' error, and the q3_K_M model runs to logits near the f32 one's. */
static void test_generated_low_bit_k(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *m = gen(dir, "m.gguf", "--preset tiny-llama --type q3_K_M --seed 5");
    char *k2 = gen(dir, "k2.gguf", "--preset tiny-llama --type q2_K --seed 5");
    char *f = gen(dir, "f.gguf", "--preset tiny-llama --type f32 --seed 5");
    json_t *j = model_info_json(m);
    assert_string_equal(json_string_value(json_object_get(j, "file_type")), "Q3_K_M");
    expect_types(j, (const char *const[]){"f32", "q3_K", "q4_K", "q5_K", "q6_K"}, (const json_int_t[]){5, 9, 4, 2, 1},
                 5);
    json_decref(j);
    j = model_info_json(k2);
    expect_types(j, (const char *const[]){"f32", "q2_K", "q6_K"}, (const json_int_t[]){5, 15, 1}, 3);
    json_decref(j);
    agx_gguf *gm, *g2, *gf;
    agx_error err;
    assert_int_equal(agx_gguf_open(m, &gm, &err), AGX_OK);
    assert_int_equal(agx_gguf_open(k2, &g2, &err), AGX_OK);
    assert_int_equal(agx_gguf_open(f, &gf, &err), AGX_OK);
    const double e3 = tensor_rel_rmse(gm, gf, "blk.0.attn_q.weight", AGX_TYPE_Q3_K);
    const double e2 = tensor_rel_rmse(g2, gf, "blk.0.attn_q.weight", AGX_TYPE_Q2_K);
    print_message("q3_K rel rmse %.4f, q2_K %.4f\n", e3, e2);
    assert_true(e3 < 0.17 && e2 < 0.33 && e3 < e2);
    assert_true(tensor_rel_rmse(gm, gf, "blk.1.attn_v.weight", AGX_TYPE_Q5_K) < 0.05);
    assert_true(tensor_rel_rmse(gm, gf, "blk.1.ffn_down.weight", AGX_TYPE_Q4_K) < 0.09);
    assert_true(tensor_rel_rmse(gm, gf, "blk.0.attn_output.weight", AGX_TYPE_Q4_K) < 0.09);
    assert_true(tensor_rel_rmse(gm, gf, "output.weight", AGX_TYPE_Q6_K) < 0.025);
    agx_gguf_close(gm);
    agx_gguf_close(g2);
    agx_gguf_close(gf);
    size_t nq, nf;
    float *lq = logits_of(m, dir, &nq), *lf = logits_of(f, dir, &nf);
    assert_int_equal(nq, nf);
    for (size_t i = 0; i < nq; i++) assert_true(isfinite(lq[i]));
    const double cos = ref_compare(lq, lf, 1, (int)nq).cos;
    print_message("q3_K_M vs f32 logits cosine %.4f\n", cos);
    assert_true(cos > 0.9); /* measured 0.95 */
    free(lq);
    free(lf);
    free(m);
    free(k2);
    free(f);
    agx_test_rmtree(dir);
    free(dir);
}

static bool files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    agx_error err;
    assert_int_equal(agx_file_read_all(a, 0, &x, &nx, &err), AGX_OK);
    assert_int_equal(agx_file_read_all(b, 0, &y, &ny, &err), AGX_OK);
    bool eq = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return eq;
}

/* Same seed -> same bytes for any thread count; weights follow N(mean, std);
 * the q8_0 file holds the F32 file's weights (same seed) up to rounding. */
static void test_generated_weights(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *a = gen(dir, "a.gguf", "--preset tiny-llama --type q8_0 --seed 7 --threads 1");
    char *b = gen(dir, "b.gguf", "--preset tiny-llama --type q8_0 --seed 7 --threads 3");
    char *c = gen(dir, "c.gguf", "--preset tiny-llama --type q8_0 --seed 8 --threads 2");
    char *f = gen(dir, "f.gguf", "--preset tiny-llama --type f32 --seed 7");
    assert_true(files_equal(a, b));
    assert_false(files_equal(a, c));
    agx_gguf *gq, *gf;
    agx_error err;
    assert_int_equal(agx_gguf_open(a, &gq, &err), AGX_OK);
    assert_int_equal(agx_gguf_open(f, &gf, &err), AGX_OK);
    /* statistics of the f32 weights */
    const agx_gguf_tensor *t = agx_gguf_find_tensor(gf, "blk.0.attn_q.weight");
    const float *w = t->data;
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
    }
    double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sd - 0.04) < 0.002);
    t = agx_gguf_find_tensor(gf, "blk.1.ffn_norm.weight");
    w = t->data;
    s = 0;
    for (int64_t i = 0; i < t->ne[0]; i++) s += w[i];
    assert_true(fabs(s / (double)t->ne[0] - 1.0) < 0.02);
    /* q8_0 dequantized ~ f32 */
    const agx_gguf_tensor *tq = agx_gguf_find_tensor(gq, "blk.1.ffn_up.weight");
    const agx_gguf_tensor *tf = agx_gguf_find_tensor(gf, "blk.1.ffn_up.weight");
    assert_int_equal(tq->type, AGX_TYPE_Q8_0);
    n = (size_t)(tf->ne[0] * tf->ne[1]);
    float *dq = malloc(n * sizeof *dq);
    agx_type_traits_get(AGX_TYPE_Q8_0)->to_float(tq->data, dq, (int64_t)n);
    double maxd = 0;
    for (size_t i = 0; i < n; i++) maxd = fmax(maxd, fabs(dq[i] - ((const float *)tf->data)[i]));
    assert_true(maxd < 0.01);   /* |w| <~ 0.25, q8_0 step ~ max/127 */
    free(dq);
    agx_gguf_close(gq);
    agx_gguf_close(gf);
    free(a);
    free(b);
    free(c);
    free(f);
    agx_test_rmtree(dir);
    free(dir);
}

/* The synthetic BPE vocabulary is consistent: unique tokens, 256 byte tokens
 * first, every merge "a b" has a, b and ab in the vocabulary, ChatML specials
 * at the end marked CONTROL, eos/bos pointing at them. */
static void test_generated_vocab(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *p = gen(dir, "v.gguf", "--preset tiny-qwen2 --type q8_0");
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
    const agx_gguf_kv *toks = agx_gguf_find(g, "tokenizer.ggml.tokens");
    const agx_gguf_kv *types = agx_gguf_find(g, "tokenizer.ggml.token_type");
    const agx_gguf_kv *merges = agx_gguf_find(g, "tokenizer.ggml.merges");
    assert_non_null(toks);
    assert_non_null(types);
    assert_non_null(merges);
    uint64_t n = toks->arr_len;
    assert_int_equal(n, 768);
    assert_int_equal(types->arr_len, n);
    char **s = calloc(n, sizeof *s);
    for (uint64_t i = 0; i < n; i++) {
        agx_gguf_str v;
        assert_true(agx_gguf_arr_str(g, toks, i, &v));
        s[i] = agx_strndup(v.ptr, (size_t)v.len);
        for (uint64_t k = 0; k < i; k++) assert_string_not_equal(s[k], s[i]);
    }
    assert_string_equal(s[32], "Ġ");    /* GPT-2 byte-to-unicode: space */
    assert_string_equal(s[10], "Ċ");    /* newline */
    assert_string_equal(s[65], "A");
    assert_string_equal(s[n - 3], "<|endoftext|>");
    assert_string_equal(s[n - 2], "<|im_start|>");
    assert_string_equal(s[n - 1], "<|im_end|>");
    int64_t ty;
    assert_true(agx_gguf_arr_i64(types, n - 1, &ty) && ty == 3);
    assert_true(agx_gguf_arr_i64(types, 100, &ty) && ty == 1);
    assert_int_equal(merges->arr_len, n - 3 - 256);
    for (uint64_t m = 0; m < merges->arr_len; m++) {
        agx_gguf_str v;
        assert_true(agx_gguf_arr_str(g, merges, m, &v));
        char *line = agx_strndup(v.ptr, (size_t)v.len);
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        char *joined = agx_sprintf("%s%s", line, sp + 1);
        bool fa = false, fb = false, fj = false;
        for (uint64_t i = 0; i < n - 3; i++) {
            fa |= strcmp(s[i], line) == 0;
            fb |= strcmp(s[i], sp + 1) == 0;
            fj |= strcmp(s[i], joined) == 0 && i == 256 + m;   /* merge m creates token 256+m */
        }
        assert_true(fa && fb && fj);
        free(joined);
        free(line);
    }
    uint32_t id;
    assert_true(agx_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id) && id == n - 1);
    assert_true(agx_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id) && id == n - 3);
    agx_gguf_str tmpl;
    assert_true(agx_gguf_get_str(g, "tokenizer.chat_template", &tmpl));
    for (uint64_t i = 0; i < n; i++) free(s[i]);
    free(s);
    agx_gguf_close(g);
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

/* --vocab-from copies a real tokenizer (151936 Qwen2 tokens). */
static void test_generated_vocab_from(void **state) {
    (void)state;
    char *vocab = agx_test_ref_path("tokenizer/qwen2.vocab.gguf");
    if (!vocab) AGX_TEST_SKIP("reference dir missing: no tokenizer GGUF for --vocab-from");
    char *dir = agx_test_tmpdir();
    char *args = agx_sprintf("--arch qwen2 --n-embd 64 --n-layer 1 --n-head 2 --n-head-kv 1 --n-ff 64 --tied "
                             "--type q8_0 --vocab-from '%s'", vocab);
    char *p = gen(dir, "r.gguf", args);
    json_t *j = model_info_json(p);
    assert_int_equal(ji(j, "n_vocab"), 151936);
    assert_string_equal(json_string_value(json_object_get(j, "tokenizer_pre")), "qwen2");
    assert_int_equal(ji(j, "eos_token_id"), 151645);
    json_decref(j);
    agx_gguf *g, *v;
    agx_error err;
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
    assert_int_equal(agx_gguf_open(vocab, &v, &err), AGX_OK);
    agx_gguf_str a, b;
    const agx_gguf_kv *ka = agx_gguf_find(g, "tokenizer.ggml.merges"), *kb = agx_gguf_find(v, "tokenizer.ggml.merges");
    assert_int_equal(ka->arr_len, kb->arr_len);
    assert_true(agx_gguf_arr_str(g, ka, ka->arr_len - 1, &a) && agx_gguf_arr_str(v, kb, kb->arr_len - 1, &b));
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.ptr, b.ptr, a.len);
    agx_gguf_close(g);
    agx_gguf_close(v);
    free(args);
    free(p);
    free(vocab);
    agx_test_rmtree(dir);
    free(dir);
}

/* Rope scaling metadata: llama3 factors tensor and linear scaling keys. */
static void test_generated_rope_scaling(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *p = gen(dir, "l3.gguf", "--preset tiny-llama --rope-llama3");
    json_t *j = model_info_json(p);
    json_t *rs = json_object_get(j, "rope_scaling");
    assert_string_equal(json_string_value(json_object_get(rs, "type")), "llama3");
    assert_true(json_is_true(json_object_get(rs, "rope_freqs_tensor")));
    json_decref(j);
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_OK);
    const agx_gguf_tensor *t = agx_gguf_find_tensor(g, "rope_freqs.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 16);   /* head_dim 32 / 2 */
    const float *f = t->data;
    int n_mid = 0;
    for (int i = 0; i < 16; i++) {
        /* llama.cpp converter: 1 for short wavelengths, 8 for long, smooth between, non-decreasing */
        double freq = pow(500000.0, -2.0 * i / 32.0), wl = 2 * M_PI / freq;
        if (wl < 2048) assert_true(f[i] == 1.0f);
        else if (wl > 8192) assert_true(f[i] == 8.0f);
        else {
            n_mid++;
            assert_true(f[i] > 1.0f && f[i] < 8.0f);
        }
        if (i) assert_true(f[i] >= f[i - 1]);
    }
    assert_true(f[15] == 8.0f);
    assert_true(n_mid > 0);
    agx_gguf_close(g);
    free(p);
    p = gen(dir, "lin.gguf", "--preset tiny-qwen2 --rope-linear 4");
    j = model_info_json(p);
    rs = json_object_get(j, "rope_scaling");
    assert_string_equal(json_string_value(json_object_get(rs, "type")), "linear");
    assert_true(json_real_value(json_object_get(rs, "factor")) == 4.0);
    json_decref(j);
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_tokenizer_source(void **state) {
    (void)state;
    char *path = agx_test_ref_path("models/qwen2-tiny-F32.gguf");
    if (!path) AGX_TEST_SKIP("reference dir missing: no model to ask about its tokenizer");
    agx_model_info *mi = NULL;
    agx_error err;
    setenv("AGX_TOKENIZER", "json", 1);
    assert_int_equal(agx_model_info_load(path, &mi, &err), AGX_OK);
    unsetenv("AGX_TOKENIZER");
    const char *src = mi->tokenizer_source;
    assert_non_null(src);
    assert_true(strlen(src) > strlen("/tokenizer.json"));
    assert_string_equal(src + strlen(src) - strlen("/tokenizer.json"), "/tokenizer.json");
    char *text = agx_model_info_text(mi);
    assert_non_null(strstr(text, "tokenizer from:  "));
    assert_non_null(strstr(text, "/tokenizer.json"));
    free(text);
    agx_model_info_free(mi);
    free(path);
}

static void test_cli_errors(void **state) {
    (void)state;
    char *cmd = agx_sprintf("'%s' model info /nonexistent/m.gguf --json", agx_test_cli_path());
    char *errout = NULL;
    int rc = agx_test_run(cmd, NULL, NULL, &errout);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(errout, "Model file not found: '/nonexistent/m.gguf'"));
    free(errout);
    free(cmd);
    cmd = agx_sprintf("'%s' model info", agx_test_cli_path());
    rc = agx_test_run(cmd, NULL, NULL, NULL);
    assert_int_equal(rc, 2);
    free(cmd);
    /* a corrupt file: clean error naming the file, no crash */
    char *dir = agx_test_tmpdir();
    char *p = agx_sprintf("%s/bad.gguf", dir);
    agx_error err;
    assert_int_equal(agx_file_write_atomic(p, "GGUF\3\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f", 16, &err), AGX_OK);
    cmd = agx_sprintf("'%s' model info '%s'", agx_test_cli_path(), p);
    rc = agx_test_run(cmd, NULL, NULL, &errout);
    assert_true(rc > 0 && rc < 128);
    assert_non_null(strstr(errout, "bad.gguf"));
    free(errout);
    free(cmd);
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_models),     cmocka_unit_test(test_generated_presets),
        cmocka_unit_test(test_generated_fallback_types), cmocka_unit_test(test_generated_weights),
        cmocka_unit_test(test_generated_vocab),      cmocka_unit_test(test_generated_vocab_from),
        cmocka_unit_test(test_generated_rope_scaling), cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_tokenizer_source),     cmocka_unit_test(test_generated_low_bit_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
