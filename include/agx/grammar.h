/* grammar.h — grammar-constrained decoding: a JSON schema compiled into a
 * byte-level automaton (agx_grammar, immutable, shareable between threads), a
 * small copyable runtime state per generation (agx_grammar_state), and a token
 * trie over a model's vocabulary (agx_grammar_vocab, built once per model,
 * read-only) that turns the state into a mask of allowed tokens.
 *
 * Output form: canonical compact JSON — no whitespace anywhere, object
 * properties in the order the schema lists them (optional ones may be skipped),
 * enum/const values exactly as jansson writes them compactly. Free strings admit
 * valid JSON string content without control characters other than tab, newline
 * and return (escapes \" \\ \/ \n \r \t \uXXXX with valid surrogate pairs; raw
 * bytes must be valid UTF-8). Every accepted prefix can be completed. Schema
 * subset and the x-agx-item-number extension: docs/grammar.md.
 *
 * Typical use by a sampler, per step:
 *   stop when agx_grammar_is_complete(st); when the token budget is down to
 *   agx_grammar_min_bytes_to_complete, append agx_grammar_shortest_completion;
 *   n = agx_grammar_forced_tokens(st, vocab, ids, cap, NULL); // append without sampling
 *   agx_grammar_mask(st, vocab, allowed, ...); // logits[t] = -inf where !allowed[t]
 *   sample t; agx_grammar_accept_token(st, vocab, t); */
#ifndef AGX_GRAMMAR_H
#define AGX_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_grammar agx_grammar;
typedef struct agx_grammar_state agx_grammar_state;
typedef struct agx_grammar_vocab agx_grammar_vocab;

/* Deepest value nesting a schema may have (objects/arrays inside each other). */
#define AGX_GRAMMAR_MAX_DEPTH 32

/* Compiles a JSON schema (the subset in docs/grammar.md: object, array, string,
 * integer, number, boolean, null, enum, const). Unsupported keywords or
 * unsatisfiable constraints are AGX_ERR_CONFIG naming the keyword and the
 * schema path (e.g. "/properties/tasks/items"); malformed JSON is AGX_ERR_JSON. */
agx_status agx_grammar_compile(const char *schema_json, size_t len, agx_grammar **out,
                               agx_error *err);
void agx_grammar_free(agx_grammar *g);

/* A fresh state at the start of the document. The grammar must outlive it.
 * NULL only when out of memory. */
agx_grammar_state *agx_grammar_state_new(const agx_grammar *g);
agx_grammar_state *agx_grammar_state_copy(const agx_grammar_state *s);
void agx_grammar_state_reset(agx_grammar_state *s);
void agx_grammar_state_free(agx_grammar_state *s);

/* Feeds bytes. Returns false and leaves the state unchanged when the bytes are
 * not a valid continuation (the whole run is rejected, not a prefix of it). */
bool agx_grammar_accept(agx_grammar_state *s, const void *bytes, size_t len);
/* The bytes so far form a complete document (generation may stop; the EOG
 * tokens are allowed). For objects/arrays/strings nothing can follow; for a
 * top-level number more digits might still be allowed. */
bool agx_grammar_is_complete(const agx_grammar_state *s);
/* Bytes uniquely determined from here (the grammar admits exactly one next byte,
 * repeatedly, and the document is not complete). Writes at most cap bytes and
 * returns how many; the state is not advanced (call agx_grammar_accept). */
size_t agx_grammar_forced(const agx_grammar_state *s, char *buf, size_t cap);
/* Length of the shortest byte string that completes the document from here
 * (0 when complete). */
size_t agx_grammar_min_bytes_to_complete(const agx_grammar_state *s);
/* Writes min(cap, length) bytes of that shortest completion and returns its full
 * length; feeding it to agx_grammar_accept always succeeds and completes. */
size_t agx_grammar_shortest_completion(const agx_grammar_state *s, char *buf, size_t cap);

/* Builds the token trie. token_bytes[i] / token_lens[i] are the raw bytes token
 * i decodes to (for byte-level BPE: after undoing the byte-to-unicode map).
 * Pass NULL or length 0 for special/control tokens (<|im_start|>, ...): they are
 * never allowed. eog_ids are the end-of-generation tokens, allowed only when the
 * document is complete. The input arrays are copied. */
agx_status agx_grammar_vocab_new(const char *const *token_bytes, const size_t *token_lens,
                                 size_t n_vocab, const int32_t *eog_ids, size_t n_eog,
                                 agx_grammar_vocab **out, agx_error *err);
void agx_grammar_vocab_free(agx_grammar_vocab *v);
size_t agx_grammar_vocab_size(const agx_grammar_vocab *v);
bool agx_grammar_vocab_is_eog(const agx_grammar_vocab *v, int32_t token);

/* allowed[0..n_vocab) = 1 for every token whose bytes keep the output a valid
 * prefix (EOG tokens only when complete), else 0. *n_allowed (may be NULL)
 * receives the count. Reuses scratch memory kept in the state (allocated on the
 * first call), so a state must not be masked from two threads at once. */
agx_status agx_grammar_mask(agx_grammar_state *s, const agx_grammar_vocab *v, uint8_t *allowed,
                            size_t *n_allowed, agx_error *err);
/* Would this token be allowed here? (the mask's answer for one token, without
 * building the mask or changing the state: a sampler can try its unconstrained
 * choice first and build the mask only when that token is refused). */
bool agx_grammar_token_allowed(const agx_grammar_state *s, const agx_grammar_vocab *v,
                               int32_t token);
/* The forced span from here as vocabulary tokens, longest match first (so the
 * sampler can append them without running the tokenizer; each is allowed in
 * turn). Writes up to cap ids and returns how many; *n_bytes (may be NULL)
 * receives the bytes they cover. The state is not advanced. */
size_t agx_grammar_forced_tokens(const agx_grammar_state *s, const agx_grammar_vocab *v,
                                 int32_t *ids, size_t cap, size_t *n_bytes);
/* Advances by one token's bytes. EOG tokens are accepted (and change nothing)
 * only when the document is complete. False (state unchanged) when not allowed. */
bool agx_grammar_accept_token(agx_grammar_state *s, const agx_grammar_vocab *v, int32_t token);

#ifdef __cplusplus
}
#endif
#endif
