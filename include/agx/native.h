/* native.h — the native planner engine: a GGUF model, its tokenizer and a warm
 * inference context, plus the grammar-constrained generation loop that the
 * native backend, the REPL and the benchmarks share.
 *
 * One agx_native_engine is one model kept warm between calls: its KV cache
 * holds the previous call's tokens, and the next call re-evaluates only what
 * follows the longest common token prefix (same system prompt + tools = most of
 * the prompt is reused). An engine is not thread-safe; use one per thread. */
#ifndef AGX_NATIVE_H
#define AGX_NATIVE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/backend.h"
#include "agx/chat.h"
#include "agx/model.h"
#include "agx/planner.h"
#include "agx/sampler.h"
#include "agx/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_native_engine agx_native_engine;

typedef struct agx_native_params {
    int n_ctx;      /* <= 0: 2048 (capped by the model) */
    int n_threads;  /* <= 0: all cores */
    /* Prompt cache directory (NULL = none): the KV state of the last prompt is
     * kept in a file per model there, so a fresh process (a new `agx plan add`)
     * reuses the common prefix (system prompt + tools) like a warm engine.
     * The file is keyed by the model's path, size and mtime and checked on load. */
    const char *prompt_cache_dir;
    /* Separates the cache files of prompts that share no prefix on one model
     * (the native backend passes its role: "echo", "delta"); NULL = none. */
    const char *prompt_cache_tag;
    /* Device of the engine's context: auto|cpu|cuda|metal, NULL = AGX_DEVICE
     * (agx_context_params.device; decided once, when the engine opens). */
    const char *device;
} agx_native_params;

/* Loads the model and tokenizer, builds the grammar's token trie and a context.
 * A missing file is AGX_ERR_LOAD "Model file not found: '<path>'" (the caller
 * adds the how-to-fix advice). */
agx_status agx_native_engine_open(const char *model_path, const agx_native_params *p,
                                  agx_native_engine **out, agx_error *err);
/* A second engine on the model of `of`: it shares the model (on a GPU, the
 * uploaded weights), the tokenizer and the token trie, which stay until the
 * last engine using them is freed (in any order), and has its own context,
 * KV cache and grammar. The two may run on different threads. */
agx_status agx_native_engine_open_sibling(agx_native_engine *of, const agx_native_params *p,
                                          agx_native_engine **out, agx_error *err);
/* True when a and b were opened one as the other's sibling (one model). */
bool agx_native_engine_shares_model(const agx_native_engine *a, const agx_native_engine *b);
void agx_native_engine_free(agx_native_engine *e);
const agx_model *agx_native_engine_model(const agx_native_engine *e);
const agx_tokenizer *agx_native_engine_tokenizer(const agx_native_engine *e);
const char *agx_native_engine_path(const agx_native_engine *e);
int agx_native_engine_threads(const agx_native_engine *e);
int agx_native_engine_n_ctx(const agx_native_engine *e);   /* context positions (after the model's cap) */
/* The engine's inference context (its device: agx_context_device). */
const agx_context *agx_native_engine_context(const agx_native_engine *e);
/* Health probe: tokenizes a test text and runs one forward step (the cache is
 * emptied); a non-finite logit is an error. Times in ms (may be NULL). */
agx_status agx_native_engine_probe(agx_native_engine *e, double *tokenize_ms, double *forward_ms,
                                   agx_error *err);
/* Forgets the cached tokens (the next call evaluates its whole prompt). */
void agx_native_engine_reset_cache(agx_native_engine *e);

/* Per-call statistics. Times are milliseconds from the call's start. */
typedef struct agx_gen_stats {
    int64_t prompt_tokens;     /* tokens of the rendered prompt */
    int64_t reused_tokens;     /* of those, taken from the KV cache of the previous call
                                  (or of the prompt cache file) */
    bool prompt_cache_loaded;  /* this call started from the prompt cache file */
    int64_t generated_tokens;  /* tokens of the answer: sampled + forced */
    int64_t sampled_tokens;    /* chosen by the sampler */
    int64_t forced_tokens;     /* appended without sampling (forced spans, task numbers, closing) */
    int64_t closing_tokens;    /* of the forced, written by the budget's shortest completion */
    int64_t masks;             /* full-vocabulary masks built (the sampler's first pick was refused) */
    int64_t evals;             /* forward calls after the prompt */
    double prefill_ms;         /* until the prompt (after the reused prefix) and the
                                  opening forced span were evaluated */
    double ttft_ms;            /* until the model chose its first token (forced tokens
                                  before it are known without the model) */
    double decode_ms;          /* forward passes after the prefill; each pass takes a
                                  sampled token plus the forced span after it */
    double mask_ms;            /* grammar checks, masks and plan rules */
    double sample_ms;          /* sampler */
    double total_ms;
    double tokens_per_s;       /* generated_tokens (forced included) / (total_ms - ttft_ms) */
    bool closed_by_budget;     /* AGX_CANDLE_MAX_TOKENS or the context ran low */
    int repaired_args;         /* arguments the validator refused and the backend removed */
} agx_gen_stats;

typedef void (*agx_gen_text_fn)(void *user, const char *text, size_t len);

typedef struct agx_gen_options {
    agx_sampler_params sampler;
    int max_tokens;            /* <= 0: 2048. Closing starts early enough to fit */
    /* JSON schema to constrain to; NULL = unconstrained (stops at an end-of-
     * generation token or max_tokens; for benchmarks). */
    const char *schema_json;
    /* Plan rules on top of the schema (plan schema only): task_number is
     * written as 1..n in order, input_from_task names an earlier task. */
    bool plan_rules;
    /* Benchmarks only: text to follow instead of the sampler's choice (the
     * sampler and the grammar checks still run, so the timing is realistic;
     * the grammar still rules: where the guide goes astray it is dropped). */
    const char *guide;
    agx_gen_text_fn on_text;   /* streamed answer bytes (valid UTF-8 pieces), may be NULL */
    void *user;
    /* Polled before every token (NULL = never cancelled): non-zero stops the
     * call with AGX_ERR_INFERENCE "generation cancelled" (the KV cache stays
     * consistent; the next call reuses what it can). */
    volatile sig_atomic_t *cancel;
} agx_gen_options;

/* Defaults: sampler from agx_sampler_default_params with the repetition
 * penalty off (JSON repeats its punctuation), max_tokens 2048, constrained to
 * nothing (set schema_json). */
agx_gen_options agx_gen_default_options(void);

/* Renders msgs through the model's chat template (message contents cannot
 * inject control tokens), evaluates the prompt after the cached prefix, then
 * decodes under the schema's grammar: forced spans go in as one batch without
 * sampling; each sampled token must keep the output a valid prefix; when the
 * token budget or the context runs low the grammar's shortest completion closes
 * the document. *text (malloc'ed, NUL-terminated) is the answer. */
agx_status agx_native_generate(agx_native_engine *e, const agx_chat_msg *msgs, size_t n_msgs,
                               const agx_gen_options *opt, char **text, size_t *text_len,
                               agx_gen_stats *stats, agx_error *err);

/* Builds the Echo/Delta prompt and the registry's plan schema, generates, then
 * parses, normalizes and validates the plan. Validity does not depend on the
 * weights: the grammar fixes the shape, the plan rules the numbering, and
 * arguments the zero-trust validator refuses (find -delete, xargs rm, ...) are
 * removed (counted in stats->repaired_args, logged). out->meta is filled
 * (backend "native"). */
agx_status agx_native_plan(agx_native_engine *e, agx_model_role role, const char *instruction,
                           const agx_plan_context *ctx, const agx_gen_options *opt,
                           agx_generated_plan *out, agx_gen_stats *stats, agx_error *err);

/* ---- the backend's extras (for the CLI, REPL and bench) ---- */

/* True when b is a native backend. */
bool agx_backend_is_native(const agx_backend *b);
/* The engine of a native backend (loaded on first use; NULL with err set when
 * loading fails or b is not native). */
agx_native_engine *agx_backend_native_engine(agx_backend *b, agx_error *err);
/* When b and from are native backends on the same model file (same real
 * path) and from's engine is loaded, opens b's engine now as its sibling
 * (agx_native_engine_open_sibling): one model in memory, one weight upload on
 * a GPU. Otherwise leaves b as it is (its engine loads on first use).
 * *shared (may be NULL) says which happened. */
agx_status agx_backend_native_share_model(agx_backend *b, agx_backend *from, bool *shared,
                                          agx_error *err);
/* Statistics of the backend's last generate_plan (NULL before the first or when not native). */
const agx_gen_stats *agx_backend_native_last_stats(const agx_backend *b);
/* Streams generated text of later generate_plan calls to fn (NULL to stop). */
void agx_backend_native_set_stream(agx_backend *b, agx_gen_text_fn fn, void *user);
/* Health report for `agx health`: loads the model (or confirms it is loaded),
 * tokenizes, runs one forward step, and returns a malloc'ed multi-line text:
 * model, architecture, device (agx_device_describe of the context's device,
 * plus the device memory used on a GPU), threads, timings. */
agx_status agx_backend_native_describe(agx_backend *b, char **text, agx_error *err);

/* Delta refinement of an existing plan: generate_plan on a Delta-role backend
 * with ctx->existing = existing. The caller replaces its buffer only when this
 * returns AGX_OK (the plan has then been validated). */
agx_status agx_native_refine(agx_backend *delta, const char *instruction, const agx_plan *existing,
                             const agx_plan_context *ctx, agx_generated_plan *out, agx_error *err);

/* `agx plan validate --refine` in one call: under the buffer's lock, loads the
 * plan at plan_path, runs agx_native_refine with it (instruction NULL: the
 * plan's description, else a generic "check and fix" request) and saves the
 * refined plan only when that succeeded (validated); on any failure the file
 * is left byte for byte as it was. An empty buffer is AGX_ERR_VALIDATION.
 * result (may be NULL) receives the saved plan. Works with any backend. */
agx_status agx_native_refine_buffer(agx_backend *delta, const char *plan_path,
                                    const char *instruction, const agx_plan_context *ctx,
                                    agx_plan *result, agx_error *err);

/* ---- benchmark (agx bench --grammar, bench/bench_plan) ---- */
typedef struct agx_native_bench {
    int n_tokens;                 /* tokens decoded unconstrained */
    double unconstrained_ms_per_token;  /* forward + sampling, no grammar, 1 token per step */
    double constrained_ms_per_token;    /* whole constrained plan / its tokens (forced spans batched) */
    double mask_ms_per_token;     /* grammar + plan rules per sampled token of the plan */
    double full_mask_ms;          /* one full-vocabulary mask inside a string, median */
    double mask_share;            /* mask_ms_per_token / unconstrained_ms_per_token */
    double full_mask_share;       /* full_mask_ms / unconstrained_ms_per_token (worst case: every pick refused) */
    double forced_share;          /* forced / generated tokens of the plan */
    int64_t plan_tokens;          /* tokens of the 7-task plan */
    double plan_ms, plan_ttft_ms; /* its end-to-end time (prompt mostly reused) and first token */
    int64_t n_vocab;
} agx_native_bench;

/* Decodes n_tokens unconstrained (seed 1), then writes a typical 7-task plan
 * under the grammar with the plan as the guide (the sampler and all grammar
 * checks run as for a model that writes that plan: its own pick first, the
 * full mask only when refused), and times one full mask separately. Both runs
 * share the Echo prompt (the second reuses its KV cache). */
/* The 7-task plan the benchmark follows. */
extern const char agx_native_sample_plan[];

agx_status agx_native_bench_grammar(agx_native_engine *e, int n_tokens, agx_native_bench *out,
                                    agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
