/* fuzz_tokenizer.c — libFuzzer target for the tokenizer and chat templates.
 * The first byte picks what the rest of the input is:
 *   0: text for the byte-level tokenizer (no NFC): decode(encode(x)) == x
 *   1: text for the SentencePiece tokenizer and the NFC byte-level one (no crash,
 *      decodes; the stream decoder's output is valid UTF-8)
 *   2: token ids (u32 LE) for decode and the streaming decoder
 *   3: a GGUF image whose tokenizer metadata is loaded
 *   4: chat messages (NUL-separated role/content pairs) rendered in every family
 *   5: a tokenizer.json (written to a private temp dir) loaded and used
 * Uses the reference vocabularies (AGX_REF_DIR, default ../shared/ref) when
 * present, else tiny generated ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/chat.h"
#include "agx/gguf.h"
#include "agx/tokenizer.h"
#include "agx/util.h"

static agx_tokenizer *tok_bl, *tok_nfc, *tok_spm;
static char json_dir[] = "/tmp/agx_fuzz_json_XXXXXX";
static char *json_path;

static agx_tokenizer *load(const char *name) {
    const char *ref = agx_env("AGX_REF_DIR");
    char *p = agx_sprintf("%s/tokenizer/%s.vocab.gguf", ref ? ref : "../shared/ref", name);
    agx_tokenizer *t = NULL;
    agx_error err;
    if (agx_file_exists(p)) agx_tokenizer_load_for_model(p, NULL, &t, &err);
    free(p);
    return t;
}

/* A minimal byte-level vocabulary when the reference data is absent. */
static agx_tokenizer *tiny(const char *model) {
    char path[] = "/tmp/agx_fuzz_tok_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
    agx_gguf_writer *w = agx_gguf_writer_new();
    agx_error err;
    static char names[300][8];
    const char *toks[300];
    int32_t types[300];
    int n = 0;
    if (strcmp(model, "gpt2") == 0) {
        for (int b = 0; b < 256; b++, n++) {
            unsigned cp = b;
            if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) {
                unsigned k = 0;
                for (int i = 0; i < b; i++)
                    if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE))) k++;
                cp = 256 + k;
            }
            if (cp < 0x80) { names[n][0] = (char)cp; names[n][1] = 0; }
            else { names[n][0] = (char)(0xC0 | (cp >> 6)); names[n][1] = (char)(0x80 | (cp & 0x3F)); names[n][2] = 0; }
            toks[n] = names[n];
            types[n] = 1;
        }
        toks[n] = "ab"; types[n++] = 1;
        toks[n] = "<|im_start|>"; types[n++] = 3;
        const char *merges[] = {"a b"};
        agx_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, 1, &err);
        agx_gguf_writer_add_str(w, "tokenizer.ggml.pre", "llama-bpe", &err);
    } else {
        toks[n] = "<unk>"; types[n++] = 2;
        toks[n] = "<s>"; types[n++] = 3;
        toks[n] = "</s>"; types[n++] = 3;
        for (int b = 0; b < 256; b++, n++) {
            snprintf(names[n], sizeof names[n], "<0x%02X>", b);
            toks[n] = names[n];
            types[n] = 6;
        }
        toks[n] = "\xe2\x96\x81"; types[n++] = 1;
        toks[n] = "a"; types[n++] = 1;
        toks[n] = "\xe2\x96\x81" "a"; types[n++] = 1;
        float scores[300] = {0};
        scores[n - 1] = -1;
        agx_gguf_writer_add_f32_array(w, "tokenizer.ggml.scores", scores, (size_t)n, &err);
    }
    agx_gguf_writer_add_str(w, "tokenizer.ggml.model", model, &err);
    agx_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", toks, (size_t)n, &err);
    agx_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, (size_t)n, &err);
    if (agx_gguf_writer_write(w, path, &err) != AGX_OK) abort();
    agx_gguf_writer_free(w);
    agx_tokenizer *t = NULL;
    if (agx_tokenizer_load_for_model(path, NULL, &t, &err) != AGX_OK) abort();
    unlink(path);
    return t;
}

static void cleanup(void) {
    if (json_path) unlink(json_path);
    rmdir(json_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tok_bl = load("llama3");
    tok_nfc = load("qwen2");
    tok_spm = load("llama2");
    if (!tok_bl) tok_bl = tiny("gpt2");
    if (!tok_nfc) tok_nfc = tiny("gpt2");
    if (!tok_spm) tok_spm = tiny("llama");
    if (!mkdtemp(json_dir)) abort();
    json_path = agx_sprintf("%s/tokenizer.json", json_dir);
    atexit(cleanup);
    return 0;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] >= 0x90))
            return false;
        i += k;
    }
    return true;
}

static void stream_check(agx_tokenizer *t, const int32_t *ids, size_t n) {
    agx_tokenizer_stream s;
    agx_tokenizer_stream_init(&s, t, false);
    char *out = NULL;
    size_t len = 0, cap = 0;
    agx_error err;
    for (size_t i = 0; i < n; i++) agx_tokenizer_stream_push(&s, ids[i], &out, &len, &cap, &err);
    agx_tokenizer_stream_flush(&s, &out, &len, &cap, &err);
    if (len && !valid_utf8((const unsigned char *)out, len)) abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0] % 6;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    agx_error err;
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    size_t outn = 0;
    switch (mode) {
    case 0:
        if (agx_tokenizer_encode(tok_bl, text, len, false, data[0] & 8, &ids, &n, &err) != AGX_OK) abort();
        if (agx_tokenizer_decode(tok_bl, ids, n, false, &out, &outn, &err) != AGX_OK) abort();
        if (outn != len || memcmp(out, text, len) != 0) abort();   /* byte-level round trip is exact */
        break;
    case 1:
        if (agx_tokenizer_encode(tok_spm, text, len, true, data[0] & 8, &ids, &n, &err) != AGX_OK) abort();
        if (agx_tokenizer_decode(tok_spm, ids, n, true, &out, &outn, &err) != AGX_OK) abort();
        stream_check(tok_spm, ids, n);
        free(ids);
        free(out);
        out = NULL;
        if (agx_tokenizer_encode(tok_nfc, text, len, false, true, &ids, &n, &err) != AGX_OK) abort();
        stream_check(tok_nfc, ids, n);
        break;
    case 2: {
        n = len / 4;
        ids = malloc((n + 1) * sizeof *ids);
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, text + 4 * i, 4);
            ids[i] = (int32_t)(v % (uint32_t)(agx_tokenizer_n_vocab(tok_bl) + 8));
        }
        agx_tokenizer_decode(tok_bl, ids, n, data[0] & 8, &out, &outn, &err);
        stream_check(tok_bl, ids, n);
        break;
    }
    case 3: {
        agx_gguf *g = NULL;
        if (agx_gguf_open_memory(text, len, &g, &err) == AGX_OK) {
            agx_tokenizer *t = NULL;
            if (agx_tokenizer_load_gguf(g, &t, &err) == AGX_OK) {
                if (agx_tokenizer_encode(t, "hello <s> world", 15, true, true, &ids, &n, &err) != AGX_OK) abort();
                agx_tokenizer_free(t);
            }
            agx_gguf_close(g);
        }
        break;
    }
    case 4: {
        /* role\0content\0role\0content... */
        char *copy = malloc(len + 2);
        memcpy(copy, text, len);
        copy[len] = copy[len + 1] = 0;
        agx_chat_msg msgs[8];
        size_t nm = 0;
        const char *roles[] = {"system", "user", "assistant", "tool"};
        for (size_t i = 0; i < len && nm < 8;) {
            const char *c = copy + i;
            size_t cl = strlen(c);
            msgs[nm].role = roles[(unsigned char)(cl ? c[0] : 0) % 4];
            msgs[nm].content = cl ? c + 1 : c;
            nm++;
            i += cl + 1;
        }
        for (int f = 0; f < AGX_CHAT_FAMILY_COUNT; f++) {
            char *p = NULL;
            if (agx_chat_render_family((agx_chat_family)f, copy, "<s>", "</s>", msgs, nm, data[0] & 8, &p, &err) ==
                AGX_OK)
                free(p);
        }
        free(copy);
        break;
    }
    case 5: {
        FILE *fp = fopen(json_path, "wb");
        if (!fp) abort();
        fwrite(text, 1, len, fp);
        fclose(fp);
        agx_tokenizer *t = NULL;
        if (agx_tokenizer_load_json(json_path, &t, &err) == AGX_OK) {
            if (agx_tokenizer_encode(t, "Hello <s> w\xc3\xb6rld 123", 22, true, true, &ids, &n, &err) != AGX_OK) abort();
            if (agx_tokenizer_decode(t, ids, n, false, &out, &outn, &err) != AGX_OK) abort();
            agx_tokenizer_free(t);
        }
        break;
    }
    }
    free(ids);
    free(out);
    return 0;
}
