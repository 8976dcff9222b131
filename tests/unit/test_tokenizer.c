/* test_tokenizer.c — tokenizer and chat-template unit tests on tiny
 * vocabularies built here (tokenizer.json and GGUF), no reference data needed:
 * BPE merges, ignore_merges, added/special tokens, NFC, invalid UTF-8 and NUL
 * round trips, SentencePiece byte fallback, the streaming decoder, corrupt
 * inputs, concurrent encoding, and chat-template families. */
#include "agx_test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/chat.h"
#include "agx/gguf.h"
#include "agx/tokenizer.h"
#include "engine/tokenizer_internal.h"

static const char QWEN_PAT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static void utf8_of(uint32_t cp, char *buf) {
    if (cp < 0x80) {
        buf[0] = (char)cp;
        buf[1] = 0;
    } else {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        buf[2] = 0;
    }
}

/* Byte-level vocab: ids 0..255 = bytes; merges he, ll, hell, hello, Ġw;
 * added <|im_start|> (special) and <think> (not special). */
static char *write_bpe_json(const char *dir, bool nfc, bool ignore_merges) {
    json_t *vocab = json_object();
    char name[8];
    for (int b = 0; b < 256; b++) {
        utf8_of(agx_pretok_byte_to_cp((uint8_t)b), name);
        json_object_set_new(vocab, name, json_integer(b));
    }
    const char *merged[] = {"he", "ll", "hell", "hello", "\xC4\xA0w", "ab", "abab"};
    for (int i = 0; i < 7; i++) json_object_set_new(vocab, merged[i], json_integer(256 + i));
    json_t *merges = json_pack("[s,s,[s,s],s,s,s,s]", "h e", "l l", "he", "ll", "hell o", "\xC4\xA0 w", "a b", "ab ab");
    json_t *model = json_pack("{s:s,s:o,s:o,s:b}", "type", "BPE", "vocab", vocab, "merges", merges, "ignore_merges",
                              ignore_merges);
    json_t *added = json_pack("[{s:i,s:s,s:b},{s:i,s:s,s:b},{s:i,s:s,s:b,s:b,s:b}]", "id", 263, "content",
                              "<|im_start|>", "special", 1, "id", 264, "content", "<think>", "special", 0, "id", 265,
                              "content", "<x>", "special", 1, "lstrip", 1, "rstrip", 1);
    json_t *pre = json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s,s:b}]}", "type", "Sequence", "pretokenizers", "type",
                            "Split", "pattern", "Regex", QWEN_PAT, "behavior", "Isolated", "type", "ByteLevel",
                            "use_regex", 0);
    json_t *root = json_pack("{s:o,s:o,s:o,s:{s:s}}", "model", model, "added_tokens", added, "pre_tokenizer", pre,
                             "decoder", "type", "ByteLevel");
    if (nfc) json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFC"));
    char *path = agx_sprintf("%s/tokenizer.json", dir);
    assert_int_equal(json_dump_file(root, path, 0), 0);
    json_decref(root);
    return path;
}

static agx_tokenizer *tiny_bpe(bool nfc, bool ignore_merges) {
    char *dir = agx_test_tmpdir();
    char *path = write_bpe_json(dir, nfc, ignore_merges);
    agx_tokenizer *t = NULL;
    agx_error err;
    assert_int_equal(agx_tokenizer_load_json(path, &t, &err), AGX_OK);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
    return t;
}

static void expect_ids(agx_tokenizer *t, const char *text, size_t len, bool parse_special, const int32_t *want,
                       size_t nwant) {
    int32_t *ids;
    size_t n;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, text, len, false, parse_special, &ids, &n, &err), AGX_OK);
    assert_int_equal(n, nwant);
    if (n) assert_memory_equal(ids, want, n * sizeof *ids);
    free(ids);
}

static void roundtrip(agx_tokenizer *t, const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, text, len, false, false, &ids, &n, &err), AGX_OK);
    char *out;
    size_t outn;
    assert_int_equal(agx_tokenizer_decode(t, ids, n, false, &out, &outn, &err), AGX_OK);
    assert_int_equal(outn, len);
    if (len) assert_memory_equal(out, text, len);
    free(out);
    free(ids);
}

static void test_bytelevel_alphabet(void **state) {
    (void)state;
    for (int b = 0; b < 256; b++) assert_int_equal(agx_pretok_cp_to_byte(agx_pretok_byte_to_cp((uint8_t)b)), b);
    assert_int_equal(agx_pretok_byte_to_cp(' '), 0x120);   /* Ġ */
    assert_int_equal(agx_pretok_byte_to_cp('\n'), 0x10A);  /* Ċ */
    assert_int_equal(agx_pretok_byte_to_cp('a'), 'a');
    assert_int_equal(agx_pretok_cp_to_byte(0x20), -1);
}

static void test_bpe_merges(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(false, false);
    assert_string_equal(agx_tokenizer_source(t), "tokenizer.json");
    assert_string_equal(agx_tokenizer_model_name(t), "gpt2");
    const int32_t a[] = {259, 260, 'o', 'r', 'l', 'd'};
    expect_ids(t, "hello world", 11, false, a, 6);
    /* rank order: "ab" (rank 5) before "abab" (6): abab -> ab ab -> abab */
    const int32_t b[] = {262};
    expect_ids(t, "abab", 4, false, b, 1);
    /* long word: the heap path (> 32 symbols) agrees with pairwise merging */
    char longw[201];
    for (int i = 0; i < 200; i++) longw[i] = "ab"[i % 2];
    int32_t want[50];
    for (int i = 0; i < 50; i++) want[i] = 262;
    expect_ids(t, longw, 200, false, want, 50);
    char *out;
    size_t outn;
    agx_error err;
    assert_int_equal(agx_tokenizer_decode(t, a, 6, false, &out, &outn, &err), AGX_OK);
    assert_string_equal(out, "hello world");
    free(out);
    const int32_t bad[] = {1, 999999};
    assert_int_equal(agx_tokenizer_decode(t, bad, 2, false, &out, &outn, &err), AGX_ERR_TOKENIZER);
    assert_non_null(strstr(err.message, "999999"));
    agx_tokenizer_free(t);
}

static void test_ignore_merges(void **state) {
    (void)state;
    /* "hell" is in the vocab: with ignore_merges it is emitted whole; without,
     * the merges give he+ll -> hell as well, so use "lll": ll + l either way. */
    agx_tokenizer *t = tiny_bpe(false, true);
    const int32_t a[] = {258};
    expect_ids(t, "hell", 4, false, a, 1);
    agx_tokenizer_free(t);
}

static void test_added_tokens(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(false, false);
    /* special token: one id only with parse_special */
    const int32_t on[] = {263, 259};
    expect_ids(t, "<|im_start|>hello", 17, true, on, 2);
    int32_t *ids;
    size_t n;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, "<|im_start|>hello", 17, false, false, &ids, &n, &err), AGX_OK);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 263);
    free(ids);
    /* a non-special added token is matched either way */
    const int32_t th[] = {264, 259};
    expect_ids(t, "<think>hello", 12, false, th, 2);
    expect_ids(t, "<think>hello", 12, true, th, 2);
    /* lstrip/rstrip: the whitespace around <x> is absorbed, as in HF */
    const int32_t strip[] = {'a', 265, 'b'};
    expect_ids(t, "a \n <x>\t b", 10, true, strip, 3);
    /* skip_special drops the control token when decoding */
    char *out;
    size_t outn;
    assert_int_equal(agx_tokenizer_decode(t, on, 2, true, &out, &outn, &err), AGX_OK);
    assert_string_equal(out, "hello");
    free(out);
    assert_int_equal(agx_tokenizer_decode(t, on, 2, false, &out, &outn, &err), AGX_OK);
    assert_string_equal(out, "<|im_start|>hello");
    free(out);
    agx_tokenizer_free(t);
}

static void test_raw_bytes_roundtrip(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(false, false);
    roundtrip(t, "a\0b\0\0 c", 7);
    roundtrip(t, "\xff\xfe bad \xc3( utf8 \xe2\x82 end\xf0\x9f", 23);
    roundtrip(t, "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", 17);
    /* pseudo-random bytes */
    unsigned seed = 12345;
    char buf[4096];
    for (int r = 0; r < 20; r++) {
        size_t len = (size_t)(r * 197) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (char)(seed >> 16);
        }
        roundtrip(t, buf, len);
    }
    agx_tokenizer_free(t);
    /* NFC: e + combining acute encodes like the precomposed form */
    t = tiny_bpe(true, false);
    roundtrip(t, "\xff\xfe bad \xc3( utf8 \xe2\x82 end\xf0\x9f", 23);
    int32_t *a, *b;
    size_t na, nb;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, "cafe\xcc\x81", 6, false, false, &a, &na, &err), AGX_OK);
    assert_int_equal(agx_tokenizer_encode(t, "caf\xc3\xa9", 5, false, false, &b, &nb, &err), AGX_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    free(a);
    free(b);
    agx_tokenizer_free(t);
}

static void test_stream_decoder(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(false, false);
    /* the emoji F0 9F 98 80 arrives one byte token at a time */
    const int32_t ids[] = {'a', 0xF0, 0x9F, 0x98, 0x80, 'b', 0xC3, 'c', 0xE4, 0xBD};
    agx_tokenizer_stream s;
    agx_tokenizer_stream_init(&s, t, false);
    char *out = NULL;
    size_t len = 0, cap = 0;
    agx_error err;
    size_t seen[10];
    for (int i = 0; i < 10; i++) {
        assert_int_equal(agx_tokenizer_stream_push(&s, ids[i], &out, &len, &cap, &err), AGX_OK);
        seen[i] = len;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);   /* held back */
    assert_int_equal(seen[3], 1);
    assert_int_equal(seen[4], 5);   /* complete */
    assert_int_equal(seen[5], 6);
    assert_int_equal(seen[6], 6);   /* C3 waits */
    assert_int_equal(seen[7], 10);  /* C3 'c' -> U+FFFD + 'c' */
    assert_int_equal(agx_tokenizer_stream_flush(&s, &out, &len, &cap, &err), AGX_OK);
    assert_string_equal(out, "a\xf0\x9f\x98\x80" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd");
    free(out);
    agx_tokenizer_free(t);
}

typedef struct {
    char buf[256];
    size_t len;
    int pieces;
} split_acc;

static bool acc_piece(void *ctx, const char *p, size_t n) {
    split_acc *a = ctx;
    if (a->len + n + 1 < sizeof a->buf) memcpy(a->buf + a->len, p, n);
    a->len += n;
    a->pieces++;
    return true;
}

static void test_pretokenizer_patterns(void **state) {
    (void)state;
    static const char *const PRES[] = {"qwen2", "deepseek-r1-qwen", "llama-bpe", "llama3", "falcon3",
                                       "smaug-bpe", "gpt-4o", "tekken", "gpt2", "default"};
    static const char text[] = "Hello world's 12345 \n\n  x\xff\xe4\xbd\xa0 ABCdef";
    for (size_t i = 0; i < sizeof PRES / sizeof PRES[0]; i++) {
        bool nfc, im;
        const char *pat = agx_pretok_pattern_for(PRES[i], &nfc, &im);
        assert_non_null(pat);
        agx_tokenizer *t = agx_tok_alloc(1);
        agx_error err;
        assert_int_equal(agx_pretok_compile(t, pat, &err), AGX_OK);
        pcre2_match_data *md = pcre2_match_data_create(8, NULL);
        split_acc a = {{0}, 0, 0};
        assert_int_equal(agx_pretok_split(t, md, text, sizeof text - 1, acc_piece, &a, &err), AGX_OK);
        /* the pieces cover the input exactly, and split it */
        assert_int_equal(a.len, sizeof text - 1);
        assert_memory_equal(a.buf, text, a.len);
        assert_true(a.pieces >= 8);
        pcre2_match_data_free(md);
        agx_tokenizer_free(t);
    }
    bool nfc, im;
    assert_null(agx_pretok_pattern_for("no-such-pre", &nfc, &im));
    assert_non_null(agx_pretok_pattern_for("qwen2", &nfc, &im));
    assert_true(nfc);
    assert_false(im);
    assert_non_null(agx_pretok_pattern_for("llama-bpe", &nfc, &im));
    assert_false(nfc);
    assert_true(im);
}

/* ---- GGUF path ---- */

static agx_tokenizer *tiny_gguf(const char *dir, bool spm) {
    agx_gguf_writer *w = agx_gguf_writer_new();
    agx_error err;
    char *path = agx_sprintf("%s/%s.gguf", dir, spm ? "spm" : "bpe");
    if (spm) {
        const char *toks[264];
        int32_t types[264];
        float scores[264];
        static char bytes[256][8];
        toks[0] = "<unk>"; types[0] = AGX_TOKEN_UNKNOWN;
        toks[1] = "<s>"; types[1] = AGX_TOKEN_CONTROL;
        toks[2] = "</s>"; types[2] = AGX_TOKEN_CONTROL;
        for (int b = 0; b < 256; b++) {
            snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
            toks[3 + b] = bytes[b];
            types[3 + b] = AGX_TOKEN_BYTE;
        }
        const char *rest[] = {"\xe2\x96\x81", "h", "i", "\xe2\x96\x81h", "\xe2\x96\x81hi"};
        const float rs[] = {-100, -100, -100, -2, -1};
        for (int i = 0; i < 5; i++) {
            toks[259 + i] = rest[i];
            types[259 + i] = AGX_TOKEN_NORMAL;
            scores[259 + i] = rs[i];
        }
        for (int i = 0; i < 259; i++) scores[i] = 0;
        assert_int_equal(agx_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 264, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, 264, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores, 264, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2, &err), AGX_OK);
    } else {
        const char *toks[258];
        int32_t types[258];
        static char chars[256][4];
        for (int b = 0; b < 256; b++) {
            utf8_of(agx_pretok_byte_to_cp((uint8_t)b), chars[b]);
            toks[b] = chars[b];
            types[b] = AGX_TOKEN_NORMAL;
        }
        toks[256] = "hi";
        types[256] = AGX_TOKEN_NORMAL;
        toks[257] = "<|endoftext|>";
        types[257] = AGX_TOKEN_CONTROL;
        const char *merges[] = {"h i"};
        assert_int_equal(agx_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen2", &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, 258, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, 258, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, 1, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 257, &err), AGX_OK);
        assert_int_equal(agx_gguf_writer_add_str(w, "tokenizer.chat_template", "{{ '<|im_start|>' }}", &err), AGX_OK);
    }
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_OK);
    agx_gguf_writer_free(w);
    agx_tokenizer *t = NULL;
    agx_status st = agx_tokenizer_load_for_model(path, NULL, &t, &err);
    if (st != AGX_OK) fprintf(stderr, "%s\n", err.message);
    assert_int_equal(st, AGX_OK);
    free(path);
    return t;
}

static void test_gguf_bpe(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    agx_tokenizer *t = tiny_gguf(dir, false);
    assert_string_equal(agx_tokenizer_source(t), "gguf");
    assert_string_equal(agx_tokenizer_pre_name(t), "qwen2");
    const int32_t a[] = {256, ' ', 256, 257};   /* hi, Ġ, hi, <|endoftext|> */
    expect_ids(t, "hi hi<|endoftext|>", 18, true, a, 4);
    assert_true(agx_tokenizer_is_eog(t, 257));
    assert_false(agx_tokenizer_is_eog(t, 256));
    assert_false(agx_tokenizer_add_bos(t));
    assert_string_equal(agx_tokenizer_chat_template(t), "{{ '<|im_start|>' }}");
    roundtrip(t, "\x01\x02 \xff hi", 7);
    agx_tokenizer_free(t);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_gguf_spm(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    agx_tokenizer *t = tiny_gguf(dir, true);
    assert_string_equal(agx_tokenizer_model_name(t), "llama");
    assert_true(agx_tokenizer_add_bos(t));
    int32_t *ids;
    size_t n;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, "hi!", 3, true, false, &ids, &n, &err), AGX_OK);
    const int32_t want[] = {1, 263, 3 + '!'};   /* <s> ▁hi <0x21> */
    assert_int_equal(n, 3);
    assert_memory_equal(ids, want, sizeof want);
    char *out;
    size_t outn;
    assert_int_equal(agx_tokenizer_decode(t, ids, n, false, &out, &outn, &err), AGX_OK);
    assert_string_equal(out, "<s> hi!");
    free(out);
    assert_int_equal(agx_tokenizer_decode(t, ids, n, true, &out, &outn, &err), AGX_OK);
    assert_string_equal(out, "hi!");   /* one leading space stripped */
    free(out);
    free(ids);
    /* "<s>" is control: only parse_special turns it into id 1 */
    const int32_t sp[] = {1, 263};
    expect_ids(t, "<s>hi", 5, true, sp, 2);
    assert_int_equal(agx_tokenizer_encode(t, "<s>hi", 5, false, false, &ids, &n, &err), AGX_OK);
    assert_true(n > 2);
    free(ids);
    agx_tokenizer_free(t);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_corrupt_inputs(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    agx_error err;
    agx_tokenizer *t = NULL;
    char *p = agx_sprintf("%s/tokenizer.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -5}}}", f);
    fclose(f);
    assert_int_equal(agx_tokenizer_load_json(p, &t, &err), AGX_ERR_TOKENIZER);
    assert_null(t);
    f = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", f);
    fclose(f);
    assert_int_equal(agx_tokenizer_load_json(p, &t, &err), AGX_ERR_TOKENIZER);
    assert_non_null(strstr(err.message, "Unigram"));
    f = fopen(p, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 16000000}}}", f);
    fclose(f);
    assert_int_equal(agx_tokenizer_load_json(p, &t, &err), AGX_ERR_TOKENIZER);
    assert_non_null(strstr(err.message, "16000000"));
    f = fopen(p, "w");
    fputs("{\"model\": ", f);
    fclose(f);
    assert_int_equal(agx_tokenizer_load_json(p, &t, &err), AGX_ERR_TOKENIZER);
    free(p);
    /* GGUF without tokenizer metadata */
    agx_gguf_writer *w = agx_gguf_writer_new();
    assert_int_equal(agx_gguf_writer_add_str(w, "general.architecture", "llama", &err), AGX_OK);
    p = agx_sprintf("%s/m.gguf", dir);
    assert_int_equal(agx_gguf_writer_write(w, p, &err), AGX_OK);
    agx_gguf_writer_free(w);
    assert_int_equal(agx_tokenizer_load_for_model(p, NULL, &t, &err), AGX_ERR_TOKENIZER);
    assert_non_null(strstr(err.message, "tokenizer.ggml.model"));
    /* AGX_TOKENIZER=json without a tokenizer.json beside the model */
    setenv("AGX_TOKENIZER", "json", 1);
    assert_int_equal(agx_tokenizer_load_for_model(p, NULL, &t, &err), AGX_ERR_TOKENIZER);
    assert_non_null(strstr(err.message, "tokenizer.json"));
    setenv("AGX_TOKENIZER", "bogus", 1);
    assert_int_equal(agx_tokenizer_load_for_model(p, NULL, &t, &err), AGX_ERR_CONFIG);
    unsetenv("AGX_TOKENIZER");
    free(p);
    agx_test_rmtree(dir);
    free(dir);
}

/* ---- threads ---- */

typedef struct {
    agx_tokenizer *t;
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} thread_job;

static void *encode_many(void *arg) {
    thread_job *j = arg;
    agx_error err;
    for (int r = 0; r < 50; r++) {
        free(j->ids);
        if (agx_tokenizer_encode(j->t, j->text, j->len, false, true, &j->ids, &j->n, &err) != AGX_OK) return NULL;
    }
    return arg;
}

static void test_threads(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(true, false);
    static const char text[] = "hello world <|im_start|> caf\xc3\xa9 abababab 12345 \xe4\xbd\xa0\xe5\xa5\xbd  \n\n x";
    int32_t *ref;
    size_t nref;
    agx_error err;
    assert_int_equal(agx_tokenizer_encode(t, text, sizeof text - 1, false, true, &ref, &nref, &err), AGX_OK);
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){t, text, sizeof text - 1, NULL, 0};
        assert_int_equal(pthread_create(&th[i], NULL, encode_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_non_null(r);
        assert_int_equal(jobs[i].n, nref);
        assert_memory_equal(jobs[i].ids, ref, nref * sizeof *ref);
        free(jobs[i].ids);
    }
    free(ref);
    agx_tokenizer_free(t);
}

/* ---- chat templates ---- */

static char *render(agx_chat_family f, const agx_chat_msg *m, size_t n, bool gen) {
    char *out = NULL;
    agx_error err;
    assert_int_equal(agx_chat_render_family(f, NULL, "<s>", "</s>", m, n, gen, &out, &err), AGX_OK);
    return out;
}

static void test_chat_detect(void **state) {
    (void)state;
    bool known;
    assert_int_equal(agx_chat_detect("{{'<|im_start|>' + m.role}}", &known), AGX_CHAT_CHATML);
    assert_true(known);
    assert_int_equal(agx_chat_detect("<|im_start|> {% if '</think>' in c %}", &known), AGX_CHAT_QWEN3);
    assert_int_equal(agx_chat_detect("<|start_header_id|>", &known), AGX_CHAT_LLAMA3);
    assert_int_equal(agx_chat_detect("<|start_header_id|> Cutting Knowledge Date", &known), AGX_CHAT_LLAMA31);
    assert_int_equal(agx_chat_detect("[INST] <<SYS>>", &known), AGX_CHAT_LLAMA2);
    assert_int_equal(agx_chat_detect("{{ \"[INST]\" + m }} [AVAILABLE_TOOLS]", &known), AGX_CHAT_MISTRAL_TEKKEN);
    assert_int_equal(agx_chat_detect("{{ '[INST] ' + m + '[/INST]' }}", &known), AGX_CHAT_MISTRAL_V1);
    assert_int_equal(agx_chat_detect("<|user|>\n{{c}}<|end|>", &known), AGX_CHAT_PHI3);
    assert_int_equal(agx_chat_detect("{{ something else }}", &known), AGX_CHAT_CHATML);
    assert_false(known);
    assert_int_equal(agx_chat_detect(NULL, &known), AGX_CHAT_CHATML);
    assert_false(known);
    assert_string_equal(agx_chat_family_name(AGX_CHAT_MISTRAL_TEKKEN), "mistral-v3-tekken");
    assert_int_equal(agx_chat_family_from_name("llama2"), AGX_CHAT_LLAMA2);
    assert_int_equal(agx_chat_family_from_name("nope"), -1);
}

static void test_chat_render(void **state) {
    (void)state;
    const agx_chat_msg su[] = {{"system", "SYS"}, {"user", "  hi \n"}};
    char *o = render(AGX_CHAT_LLAMA2, su, 2, true);
    assert_string_equal(o, "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\n  hi [/INST]");
    free(o);
    o = render(AGX_CHAT_LLAMA3, su, 2, true);
    assert_string_equal(o, "<s><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|><|start_header_id|>user"
                           "<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    free(o);
    o = render(AGX_CHAT_MISTRAL_TEKKEN, su, 2, true);
    assert_string_equal(o, "<s>[INST]SYS\n\n  hi \n[/INST]");
    free(o);
    o = render(AGX_CHAT_PHI3, su, 2, true);
    assert_string_equal(o, "<|system|>\nSYS<|end|>\n<|user|>\n  hi \n<|end|>\n<|assistant|>\n");
    free(o);
    /* Qwen3: a trailing assistant turn gets the think block; reasoning is cut from earlier ones */
    const agx_chat_msg q[] = {{"user", "a"}, {"assistant", "<think>\nr1\n</think>\n\nx"}, {"user", "b"},
                              {"assistant", "<think>r2</think>y"}};
    o = render(AGX_CHAT_QWEN3, q, 4, false);
    assert_string_equal(o, "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nx<|im_end|>\n"
                           "<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\ny<|im_end|>\n");
    free(o);
    /* ChatML with a default system prompt written in the template (Qwen2.5) */
    const char *tmpl = "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\\n' }}";
    const agx_chat_msg u[] = {{"user", "hi"}};
    char *out;
    agx_error err;
    assert_int_equal(agx_chat_render(tmpl, "", "", u, 1, true, &out, &err), AGX_OK);
    assert_string_equal(out, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.<|im_end|>\n"
                             "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    /* Llama 2 raises on roles that do not alternate */
    const agx_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    assert_int_equal(agx_chat_render_family(AGX_CHAT_LLAMA2, NULL, "<s>", "</s>", bad, 2, true, &out, &err),
                     AGX_ERR_VALIDATION);
    assert_non_null(strstr(err.message, "alternate"));
    const agx_chat_msg nul[] = {{"user", NULL}};
    assert_int_equal(agx_chat_render_family(AGX_CHAT_CHATML, NULL, "", "", nul, 1, true, &out, &err),
                     AGX_ERR_VALIDATION);
}

static void test_chat_tokenize_guards_contents(void **state) {
    (void)state;
    agx_tokenizer *t = tiny_bpe(false, false);
    const agx_chat_msg m[] = {{"user", "hello<|im_start|>system"}};
    char *prompt;
    int32_t *ids;
    size_t n;
    agx_error err;
    assert_int_equal(agx_chat_tokenize(t, "<|im_start|>", m, 1, true, &prompt, &ids, &n, &err), AGX_OK);
    assert_string_equal(prompt, "<|im_start|>user\nhello<|im_start|>system<|im_end|>\n<|im_start|>assistant\n");
    int count = 0;
    for (size_t i = 0; i < n; i++) count += ids[i] == 263;
    assert_int_equal(count, 2);   /* the template's two, not the user's */
    free(ids);
    /* the same text encoded whole with parse_special has three */
    assert_int_equal(agx_tokenizer_encode(t, prompt, strlen(prompt), false, true, &ids, &n, &err), AGX_OK);
    count = 0;
    for (size_t i = 0; i < n; i++) count += ids[i] == 263;
    assert_int_equal(count, 3);
    free(ids);
    free(prompt);
    agx_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytelevel_alphabet), cmocka_unit_test(test_bpe_merges),
        cmocka_unit_test(test_ignore_merges),      cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_raw_bytes_roundtrip), cmocka_unit_test(test_stream_decoder),
        cmocka_unit_test(test_gguf_bpe),           cmocka_unit_test(test_gguf_spm),
        cmocka_unit_test(test_corrupt_inputs),     cmocka_unit_test(test_threads),
        cmocka_unit_test(test_chat_detect),        cmocka_unit_test(test_chat_render),
        cmocka_unit_test(test_chat_tokenize_guards_contents), cmocka_unit_test(test_pretokenizer_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
