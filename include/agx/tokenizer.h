/* tokenizer.h — text <-> token ids, exact to the HF tokenizers library.
 *
 * Two vocabulary models: byte-level BPE ("gpt2": Qwen2, Llama 3, Mistral-Nemo
 * tekken, GPT-2) and SentencePiece-style BPE with byte fallback ("llama":
 * Llama 2 / Mistral v0.1-v0.3). A tokenizer is loaded from GGUF metadata
 * (tokenizer.ggml.*) or from an HF tokenizer.json. It is immutable after
 * loading: encode/decode may run from several threads at once on one
 * tokenizer (each call allocates its own scratch state). */
#ifndef AGX_TOKENIZER_H
#define AGX_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"
#include "agx/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_tokenizer agx_tokenizer;

/* GGUF token types (tokenizer.ggml.token_type). */
typedef enum agx_token_type {
    AGX_TOKEN_UNDEFINED = 0,
    AGX_TOKEN_NORMAL = 1,
    AGX_TOKEN_UNKNOWN = 2,
    AGX_TOKEN_CONTROL = 3,
    AGX_TOKEN_USER_DEFINED = 4,
    AGX_TOKEN_UNUSED = 5,
    AGX_TOKEN_BYTE = 6
} agx_token_type;

/* ---- loading ---- */

/* From GGUF metadata (tokenizer.ggml.model gpt2 | llama; pre qwen2, llama-bpe,
 * tekken, gpt2/default; others fall back to the gpt2 pattern with a warning). */
agx_status agx_tokenizer_load_gguf(const agx_gguf *gguf, agx_tokenizer **out, agx_error *err);
/* From an HF tokenizer.json; tokenizer_config.json in the same directory, when
 * present, supplies add_bos_token / bos / eos and the chat template. */
agx_status agx_tokenizer_load_json(const char *tokenizer_json_path, agx_tokenizer **out,
                                   agx_error *err);
/* For a model file: GGUF metadata (gguf may be NULL: the file is opened) unless
 * AGX_TOKENIZER=json, which uses tokenizer.json in the model's directory (then
 * the GGUF, when given, still supplies the chat template if the json side has none). */
agx_status agx_tokenizer_load_for_model(const char *model_path, const agx_gguf *gguf,
                                        agx_tokenizer **out, agx_error *err);
void agx_tokenizer_free(agx_tokenizer *t);
/* Which source agx_tokenizer_load_for_model picks: true when AGX_TOKENIZER=json. */
bool agx_tokenizer_uses_json(void);
/* "<model's directory>/tokenizer.json" (malloc'ed; NULL on OOM). */
char *agx_tokenizer_json_path_for_model(const char *model_path);

/* ---- properties ---- */
const char *agx_tokenizer_source(const agx_tokenizer *t);    /* "gguf" | "tokenizer.json" */
const char *agx_tokenizer_model_name(const agx_tokenizer *t);/* "gpt2" | "llama" */
const char *agx_tokenizer_pre_name(const agx_tokenizer *t);  /* "qwen2", "llama-bpe", ... */
int32_t agx_tokenizer_n_vocab(const agx_tokenizer *t);
int32_t agx_tokenizer_bos(const agx_tokenizer *t);   /* -1 when none */
int32_t agx_tokenizer_eos(const agx_tokenizer *t);
int32_t agx_tokenizer_eot(const agx_tokenizer *t);
int32_t agx_tokenizer_pad(const agx_tokenizer *t);
int32_t agx_tokenizer_unk(const agx_tokenizer *t);
bool agx_tokenizer_add_bos(const agx_tokenizer *t);
bool agx_tokenizer_add_eos(const agx_tokenizer *t);
/* End of generation: eos, eot, and the usual end tokens present in the vocab
 * (<|im_end|>, <|endoftext|>, <|eot_id|>, <|end_of_text|>, </s>, <|end|>). */
bool agx_tokenizer_is_eog(const agx_tokenizer *t, int32_t id);
agx_token_type agx_tokenizer_token_type(const agx_tokenizer *t, int32_t id);
/* Vocabulary spelling of a token (e.g. "Ġthe", "▁the"); NULL for a bad id. */
const char *agx_tokenizer_token_text(const agx_tokenizer *t, int32_t id, size_t *len);
/* The bytes this token contributes when decoded on its own (byte-level mapped
 * back, "▁" -> " ", <0xNN> -> the byte; no leading-space strip). For grammar masks. */
const uint8_t *agx_tokenizer_token_bytes(const agx_tokenizer *t, int32_t id, size_t *len);
/* Id of an exact vocabulary spelling, -1 when absent. */
int32_t agx_tokenizer_find(const agx_tokenizer *t, const char *text, size_t len);
/* tokenizer.chat_template (or tokenizer_config.json's), NULL when none. */
const char *agx_tokenizer_chat_template(const agx_tokenizer *t);
/* Literal text of bos/eos for chat templates ("" when none). */
const char *agx_tokenizer_bos_text(const agx_tokenizer *t);
const char *agx_tokenizer_eos_text(const agx_tokenizer *t);

/* ---- encoding ---- */
/* Encodes len bytes (may contain NULs and invalid UTF-8). add_special: BOS/EOS
 * as the model's metadata says. parse_special: match control tokens written
 * literally in the text (on for templates; off for user text, so a user cannot
 * inject <|im_start|>; non-special added tokens such as qwen's <think> are
 * matched either way, as in HF and llama.cpp). *ids is malloc'ed (caller frees;
 * may be NULL when *n_ids is 0). */
agx_status agx_tokenizer_encode(const agx_tokenizer *t, const char *text, size_t len,
                                bool add_special, bool parse_special, int32_t **ids,
                                size_t *n_ids, agx_error *err);

/* Like agx_tokenizer_encode, but control tokens are not matched where they
 * start inside one of the n_spans byte ranges [spans[2i], spans[2i+1])
 * (sorted, non-overlapping): for prompts whose message contents are untrusted. */
agx_status agx_tokenizer_encode_spans(const agx_tokenizer *t, const char *text, size_t len,
                                      bool add_special, bool parse_special, const size_t *spans,
                                      size_t n_spans, int32_t **ids, size_t *n_ids, agx_error *err);

/* ---- decoding ---- */
/* Exact bytes of the ids (HF decode, skip_special=false keeps control tokens as
 * their text). *out is malloc'ed and NUL-terminated; *out_len excludes the NUL. */
agx_status agx_tokenizer_decode(const agx_tokenizer *t, const int32_t *ids, size_t n,
                                bool skip_special, char **out, size_t *out_len, agx_error *err);

/* Streaming decoder for generation: push ids one at a time; only complete
 * UTF-8 is emitted, an incomplete trailing sequence is held back until the
 * next token completes it. Bytes that can never form valid UTF-8 are emitted
 * as U+FFFD so the stream is always valid UTF-8. */
typedef struct agx_tokenizer_stream {
    const agx_tokenizer *tok;
    uint8_t pending[4];
    size_t n_pending;
    bool started;        /* SPM: the first piece's leading space is stripped */
    bool skip_special;
} agx_tokenizer_stream;

void agx_tokenizer_stream_init(agx_tokenizer_stream *s, const agx_tokenizer *t, bool skip_special);
/* Appends the newly complete text to *out (malloc'ed growable buffer managed
 * by the caller via out/out_len/out_cap; pass zeros to start). */
agx_status agx_tokenizer_stream_push(agx_tokenizer_stream *s, int32_t id, char **out, size_t *out_len,
                                 size_t *out_cap, agx_error *err);
/* End of stream: any held-back bytes become U+FFFD. */
agx_status agx_tokenizer_stream_flush(agx_tokenizer_stream *s, char **out, size_t *out_len,
                                  size_t *out_cap, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
