/* generate.c — the native planner engine (model + tokenizer + warm context with
 * KV prefix reuse) and its grammar-constrained generation loop: chat-template
 * prompt, one-batch prefill, then per step forced span (one batch, no
 * sampling) or sample-under-mask, plan rules (task numbers, input links), and
 * the grammar's shortest completion when the budget runs low. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agx/grammar.h"
#include "agx/native.h"
#include "agx/util.h"

#define DEFAULT_MAX_TOKENS 2048
#define DEFAULT_CTX 2048
#define FORCED_CAP 4096
/* Closing starts when the budget left is below the shortest completion plus
 * this much: one more sampled token can lengthen the completion (it may open
 * a new task) by about this many bytes. */
#define CLOSE_SLACK 48
/* prompt tokens per forward call when the caller can cancel */
#define PREFILL_CHUNK 128

/* What engines on one model file share (a REPL's Echo and Delta roles when
 * both use the same file): the model (and with it, on a GPU, the weights'
 * upload), the tokenizer and the grammar's token trie. All read-only once
 * built; the last engine to go frees them. */
typedef struct engine_model {
    atomic_int refs;
    char *path;
    agx_model *model;
    agx_tokenizer *tok;
    agx_grammar_vocab *gvocab;
    int n_vocab;          /* logits per row (model) */
    int32_t byte_token[256];   /* a token decoding to exactly this byte, -1 if none */
    int32_t *comma_tokens;     /* tokens whose bytes hold ',' (plan rules only look at these) */
    size_t n_comma;
    int32_t *digit_tokens;     /* tokens whose bytes hold a digit */
    size_t n_digit;
} engine_model;

struct agx_native_engine {
    engine_model *m;
    agx_context *ctx;
    int32_t *cache;            /* tokens in the KV cache, in order */
    size_t n_cache, cap_cache;
    float *logits;
    uint8_t *mask;
    /* last compiled schema (the registry rarely changes between calls) */
    char *schema;
    agx_grammar *grammar;
    /* prompt cache file (NULL = off), its key, and whether it was tried */
    char *pc_path;
    uint64_t pc_key;
    bool pc_tried;
};

/* ------------------------------------------------------- prompt cache -- */

/* File: "AGXKV001", key (u64), n tokens (u64), kv bytes (u64), int32 tokens[n],
 * then the KV state of positions [0, n) as agx_context_kv_export writes it. */
#define PC_MAGIC "AGXKV001"
#define PC_HEADER 32

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void pc_setup(agx_native_engine *e, const char *dir, const char *tag) {
    struct stat sb;
    char *real = realpath(e->m->path, NULL);
    if (!dir || !*dir || !real || stat(real, &sb) != 0) {
        free(real);
        return;
    }
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, real, strlen(real));
    int64_t meta[3] = {(int64_t)sb.st_size, (int64_t)sb.st_mtime,
                       (int64_t)agx_context_kv_state_bytes(e->ctx, 1)};
    h = fnv1a(h, meta, sizeof meta);
    /* one file per tag: Echo's and Delta's prompts differ from their first lines,
     * so sharing a file would have each overwrite the other's reusable prefix */
    const bool tagged = tag && *tag;
    if (tagged) h = fnv1a(h, tag, strlen(tag));
    e->pc_key = h;
    e->pc_path = agx_sprintf("%s/prompt-%s%s%016llx.kv", dir, tagged ? tag : "", tagged ? "-" : "",
                             (unsigned long long)h);
    free(real);
}

/* On a fresh engine: loads the cached prompt's KV state when it shares a
 * useful prefix with this prompt. Any problem with the file just means no reuse. */
static bool pc_load(agx_native_engine *e, const int32_t *prompt, size_t n_prompt) {
    if (!e->pc_path || e->pc_tried || e->n_cache > 0) return false;
    e->pc_tried = true;
    char *data = NULL;
    size_t len = 0;
    agx_error err;
    if (agx_file_read_all(e->pc_path, (size_t)1 << 33, &data, &len, &err) != AGX_OK) return false;
    bool ok = false;
    uint64_t key, n, kvb;
    if (len >= PC_HEADER && memcmp(data, PC_MAGIC, 8) == 0) {
        memcpy(&key, data + 8, 8);
        memcpy(&n, data + 16, 8);
        memcpy(&kvb, data + 24, 8);
        ok = key == e->pc_key && n > 0 && n <= (uint64_t)agx_context_n_ctx(e->ctx) &&
             kvb == agx_context_kv_state_bytes(e->ctx, (int)n) &&
             len == PC_HEADER + n * sizeof(int32_t) + kvb;
    }
    size_t common = 0;
    if (ok) {
        const char *toks = data + PC_HEADER;
        for (; common < n && common < n_prompt; common++) {
            int32_t t;
            memcpy(&t, toks + common * sizeof t, sizeof t);
            if (t != prompt[common]) break;
        }
        ok = common >= 8;
    }
    if (ok && common > e->cap_cache) {
        int32_t *c = realloc(e->cache, common * sizeof *c);
        if (c) e->cache = c, e->cap_cache = common;
        ok = c != NULL;
    }
    if (ok)
        ok = agx_context_kv_import(e->ctx, (int)n, data + PC_HEADER + n * sizeof(int32_t), kvb,
                                   &err) == AGX_OK;
    if (ok) {
        agx_context_truncate(e->ctx, (int)common);
        memcpy(e->cache, data + PC_HEADER, common * sizeof(int32_t));
        e->n_cache = common;
    }
    free(data);
    return ok;
}

/* Saves the prompt's KV state (best effort: a failure is only logged). */
static void pc_save(agx_native_engine *e, const int32_t *prompt, size_t n_prompt) {
    if (!e->pc_path || n_prompt == 0 || (size_t)agx_context_n_past(e->ctx) < n_prompt) return;
    size_t kvb = agx_context_kv_state_bytes(e->ctx, (int)n_prompt);
    size_t len = PC_HEADER + n_prompt * sizeof(int32_t) + kvb;
    char *buf = malloc(len);
    if (!buf) return;
    uint64_t n = n_prompt, kv64 = kvb;
    memcpy(buf, PC_MAGIC, 8);
    memcpy(buf + 8, &e->pc_key, 8);
    memcpy(buf + 16, &n, 8);
    memcpy(buf + 24, &kv64, 8);
    memcpy(buf + PC_HEADER, prompt, n_prompt * sizeof(int32_t));
    agx_error err;
    if (agx_context_kv_export(e->ctx, (int)n_prompt, buf + PC_HEADER + n_prompt * sizeof(int32_t),
                              kvb, &err) != AGX_OK ||
        agx_file_write_atomic(e->pc_path, buf, len, &err) != AGX_OK)
        agx_log(AGX_LOG_DEBUG, "native: prompt cache not saved: %s", err.message);
    free(buf);
}

/* ------------------------------------------------------------ engine -- */

static agx_status build_vocab(engine_model *m, agx_error *err) {
    int32_t nv = agx_tokenizer_n_vocab(m->tok);
    if (nv <= 0) return agx_error_set(err, AGX_ERR_TOKENIZER, "%s: the tokenizer has no tokens", m->path);
    size_t n = (size_t)m->n_vocab; /* the model may have more rows than the tokenizer: those stay empty */
    const char **bytes = calloc(n, sizeof *bytes);
    size_t *lens = calloc(n, sizeof *lens);
    int32_t *eog = malloc(64 * sizeof *eog);
    m->comma_tokens = malloc(n * sizeof(int32_t));
    m->digit_tokens = malloc(n * sizeof(int32_t));
    if (!bytes || !lens || !eog || !m->comma_tokens || !m->digit_tokens) {
        free(bytes);
        free(lens);
        free(eog);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
    }
    size_t n_eog = 0;
    for (int i = 0; i < 256; i++) m->byte_token[i] = -1;
    for (size_t i = 0; i < n && (int32_t)i < nv; i++) {
        int32_t id = (int32_t)i;
        if (agx_tokenizer_is_eog(m->tok, id) || agx_model_is_eog(m->model, id)) {
            if (n_eog < 64) eog[n_eog++] = id;
            continue;
        }
        agx_token_type ty = agx_tokenizer_token_type(m->tok, id);
        /* control / unknown / unused tokens never appear in a plan */
        if (ty == AGX_TOKEN_CONTROL || ty == AGX_TOKEN_UNKNOWN || ty == AGX_TOKEN_UNUSED) continue;
        size_t len = 0;
        const uint8_t *b = agx_tokenizer_token_bytes(m->tok, id, &len);
        if (!b || len == 0) continue;
        bytes[i] = (const char *)b;
        lens[i] = len;
        if (len == 1 && (m->byte_token[b[0]] < 0 || ty == AGX_TOKEN_NORMAL)) {
            /* prefer a normal token over a <0xNN> byte-fallback one */
            if (m->byte_token[b[0]] < 0 ||
                agx_tokenizer_token_type(m->tok, m->byte_token[b[0]]) != AGX_TOKEN_NORMAL)
                m->byte_token[b[0]] = id;
        }
        if (memchr(b, ',', len)) m->comma_tokens[m->n_comma++] = id;
        for (size_t k = 0; k < len; k++)
            if (b[k] >= '0' && b[k] <= '9') {
                m->digit_tokens[m->n_digit++] = id;
                break;
            }
    }
    agx_status st = agx_grammar_vocab_new((const char *const *)bytes, lens, n, eog, n_eog,
                                          &m->gvocab, err);
    free(bytes);
    free(lens);
    free(eog);
    if (st != AGX_OK) agx_error_prefix(err, "%s: building the grammar's token trie", m->path);
    return st;
}

/* The context is created on its own thread while this one loads the tokenizer
 * and builds the token trie: on a GPU its creation is the driver's start-up
 * plus the weight upload, which then cost no wall time of their own (every
 * `agx plan add` is a new process). */
typedef struct context_job {
    const agx_model *model;
    agx_context_params cp;
    agx_context *ctx;
    agx_status st;
    agx_error err;
} context_job;

static void *context_job_run(void *arg) {
    context_job *j = arg;
    j->st = agx_context_create(j->model, &j->cp, &j->ctx, &j->err);
    return NULL;
}

static void engine_model_release(engine_model *m) {
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
    agx_grammar_vocab_free(m->gvocab);
    agx_tokenizer_free(m->tok);
    agx_model_free(m->model);
    free(m->comma_tokens);
    free(m->digit_tokens);
    free(m->path);
    free(m);
}

/* A new engine on m (whose reference it takes over): no context yet. */
static agx_native_engine *engine_new(engine_model *m, agx_error *err) {
    agx_native_engine *e = calloc(1, sizeof *e);
    if (!e) {
        engine_model_release(m);
        agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    e->m = m;
    return e;
}

static agx_context_params engine_context_params(const agx_native_params *p) {
    agx_context_params cp = agx_context_default_params();
    cp.n_ctx = p && p->n_ctx > 0 ? p->n_ctx : DEFAULT_CTX;
    cp.n_threads = p && p->n_threads > 0 ? p->n_threads : 0;
    cp.device = p ? p->device : NULL;
    return cp;
}

/* The engine's own part once its context exists (st: how that went); frees
 * the engine on failure. */
static agx_status engine_finish(agx_native_engine *e, const agx_native_params *p, agx_status st,
                                agx_native_engine **out, agx_error *err) {
    if (st == AGX_OK && p) pc_setup(e, p->prompt_cache_dir, p->prompt_cache_tag);
    if (st == AGX_OK) {
        e->logits = malloc((size_t)e->m->n_vocab * sizeof *e->logits);
        e->mask = malloc((size_t)e->m->n_vocab);
        if (!e->logits || !e->mask) st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    if (st != AGX_OK) {
        agx_native_engine_free(e);
        return st;
    }
    *out = e;
    return AGX_OK;
}

agx_status agx_native_engine_open(const char *model_path, const agx_native_params *p,
                                  agx_native_engine **out, agx_error *err) {
    *out = NULL;
    if (!model_path || !*model_path)
        return agx_error_set(err, AGX_ERR_CONFIG, "no model file given");
    engine_model *m = calloc(1, sizeof *m);
    if (!m) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    agx_native_engine *e = engine_new(m, err);
    if (!e) return AGX_ERR_NOMEM;
    m->path = agx_strdup(model_path);
    agx_status st = m->path ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    if (st == AGX_OK) st = agx_model_load(model_path, &m->model, err);
    context_job job = {.model = m->model, .st = AGX_OK};
    pthread_t job_thread;
    bool job_started = false;
    if (st == AGX_OK) {
        job.cp = engine_context_params(p);
        job_started = pthread_create(&job_thread, NULL, context_job_run, &job) == 0;
    }
    if (st == AGX_OK) st = agx_tokenizer_load_for_model(model_path, NULL, &m->tok, err);
    if (st == AGX_OK) {
        m->n_vocab = agx_model_get_config(m->model)->n_vocab;
        if (m->n_vocab < agx_tokenizer_n_vocab(m->tok))
            st = agx_error_set(err, AGX_ERR_LOAD,
                               "%s: the tokenizer has %d tokens but the model only %d logits; the "
                               "file is inconsistent",
                               model_path, agx_tokenizer_n_vocab(m->tok), m->n_vocab);
    }
    if (st == AGX_OK) st = build_vocab(m, err);
    if (job_started) pthread_join(job_thread, NULL);
    else if (st == AGX_OK) context_job_run(&job);   /* no thread: the same work, in turn */
    e->ctx = job.ctx;   /* freed with the engine even when the tokenizer failed */
    if (st == AGX_OK && job.st != AGX_OK) {
        st = job.st;
        if (err) *err = job.err;
    }
    return engine_finish(e, p, st, out, err);
}

agx_status agx_native_engine_open_sibling(agx_native_engine *of, const agx_native_params *p,
                                          agx_native_engine **out, agx_error *err) {
    *out = NULL;
    atomic_fetch_add(&of->m->refs, 1);
    agx_native_engine *e = engine_new(of->m, err);
    if (!e) return AGX_ERR_NOMEM;
    agx_context_params cp = engine_context_params(p);
    agx_status st = agx_context_create(e->m->model, &cp, &e->ctx, err);
    return engine_finish(e, p, st, out, err);
}

bool agx_native_engine_shares_model(const agx_native_engine *a, const agx_native_engine *b) {
    return a && b && a->m == b->m;
}

void agx_native_engine_free(agx_native_engine *e) {
    if (!e) return;
    agx_context_free(e->ctx);   /* before the model it runs */
    agx_grammar_free(e->grammar);
    free(e->schema);
    free(e->cache);
    free(e->logits);
    free(e->mask);
    free(e->pc_path);
    engine_model_release(e->m);
    free(e);
}

const agx_model *agx_native_engine_model(const agx_native_engine *e) { return e->m->model; }
const agx_tokenizer *agx_native_engine_tokenizer(const agx_native_engine *e) { return e->m->tok; }
const char *agx_native_engine_path(const agx_native_engine *e) { return e->m->path; }
int agx_native_engine_threads(const agx_native_engine *e) { return agx_context_n_threads(e->ctx); }
int agx_native_engine_n_ctx(const agx_native_engine *e) { return agx_context_n_ctx(e->ctx); }
const agx_context *agx_native_engine_context(const agx_native_engine *e) { return e->ctx; }

void agx_native_engine_reset_cache(agx_native_engine *e) {
    agx_context_truncate(e->ctx, 0);
    e->n_cache = 0;
}

agx_status agx_native_engine_probe(agx_native_engine *e, double *tokenize_ms, double *forward_ms,
                                   agx_error *err) {
    int64_t t0 = agx_time_us();
    int32_t *ids = NULL;
    size_t n = 0;
    agx_status st = agx_tokenizer_encode(e->m->tok, "health check", 12, true, false, &ids, &n, err);
    if (st != AGX_OK) return st;
    if (tokenize_ms) *tokenize_ms = (double)(agx_time_us() - t0) / 1000.0;
    if (n == 0) {
        free(ids);
        return agx_error_set(err, AGX_ERR_TOKENIZER, "the tokenizer produced no tokens for a test text");
    }
    agx_native_engine_reset_cache(e);
    int64_t t1 = agx_time_us();
    st = agx_context_eval(e->ctx, ids, 1, false, e->logits, err);
    if (forward_ms) *forward_ms = (double)(agx_time_us() - t1) / 1000.0;
    agx_native_engine_reset_cache(e);
    free(ids);
    if (st == AGX_OK) {
        for (int i = 0; i < e->m->n_vocab; i++)
            if (!isfinite(e->logits[i]))
                return agx_error_set(err, AGX_ERR_INFERENCE,
                                     "the forward step produced a non-finite logit (%d); the "
                                     "model file may be corrupt",
                                     i);
    }
    return st;
}

agx_gen_options agx_gen_default_options(void) {
    agx_gen_options o;
    memset(&o, 0, sizeof o);
    o.sampler = agx_sampler_default_params();
    o.sampler.repeat_penalty = 1.0f;
    o.max_tokens = DEFAULT_MAX_TOKENS;
    return o;
}

/* Evaluates tokens after the cache, remembering them. */
static agx_status eval_tokens(agx_native_engine *e, const int32_t *t, size_t n, agx_error *err) {
    if (n == 0) return AGX_OK;
    if (e->n_cache + n > e->cap_cache) {
        size_t cap = e->cap_cache ? e->cap_cache : 256;
        while (cap < e->n_cache + n) cap *= 2;
        int32_t *p = realloc(e->cache, cap * sizeof *p);
        if (!p) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        e->cache = p;
        e->cap_cache = cap;
    }
    agx_status st = agx_context_eval(e->ctx, t, (int)n, false, e->logits, err);
    if (st != AGX_OK) return st; /* the context left its cache unchanged, so do we */
    memcpy(e->cache + e->n_cache, t, n * sizeof *t);
    e->n_cache += n;
    return AGX_OK;
}

/* eval_tokens for a caller that can cancel (the REPL): long batches (the
 * prompt) go in chunks with the flag checked between them; without a flag
 * one batch as before. What was evaluated stays in the cache. */
static agx_status eval_cancellable(agx_native_engine *e, const int32_t *t, size_t n,
                                   volatile sig_atomic_t *cancel, agx_error *err) {
    if (!cancel) return eval_tokens(e, t, n, err);
    for (size_t at = 0; at < n;) {
        if (*cancel) return agx_error_set(err, AGX_ERR_INFERENCE, "generation cancelled");
        size_t k = n - at < PREFILL_CHUNK ? n - at : PREFILL_CHUNK;
        agx_status st = eval_tokens(e, t + at, k, err);
        if (st != AGX_OK) return st;
        at += k;
    }
    return AGX_OK;
}

static agx_status get_grammar(agx_native_engine *e, const char *schema, agx_error *err) {
    if (e->grammar && e->schema && strcmp(e->schema, schema) == 0) return AGX_OK;
    agx_grammar_free(e->grammar);
    e->grammar = NULL;
    free(e->schema);
    e->schema = NULL;
    agx_status st = agx_grammar_compile(schema, strlen(schema), &e->grammar, err);
    if (st != AGX_OK) return st;
    e->schema = agx_strdup(schema);
    if (!e->schema) {
        agx_grammar_free(e->grammar);
        e->grammar = NULL;
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    return AGX_OK;
}

/* Tokens for bytes the grammar (or the plan rules) fixed: the tokenizer's own
 * encoding when it spells exactly these bytes (SentencePiece may add a space),
 * else one token per byte. */
static agx_status tokenize_forced(const agx_native_engine *e, const char *s, size_t n,
                                  int32_t **ids, size_t *n_ids, agx_error *err) {
    *ids = NULL;
    *n_ids = 0;
    int32_t *t = NULL;
    size_t nt = 0;
    agx_status st = agx_tokenizer_encode(e->m->tok, s, n, false, false, &t, &nt, err);
    if (st != AGX_OK) return st;
    size_t off = 0;
    bool same = true;
    for (size_t i = 0; i < nt && same; i++) {
        size_t len = 0;
        const uint8_t *b = agx_tokenizer_token_bytes(e->m->tok, t[i], &len);
        if (!b || off + len > n || memcmp(b, s + off, len) != 0 || t[i] >= e->m->n_vocab) same = false;
        off += len;
    }
    if (same && off == n) {
        *ids = t;
        *n_ids = nt;
        return AGX_OK;
    }
    free(t);
    t = malloc((n ? n : 1) * sizeof *t);
    if (!t) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t id = e->m->byte_token[(unsigned char)s[i]];
        if (id < 0) {
            free(t);
            return agx_error_set(err, AGX_ERR_TOKENIZER,
                                 "the vocabulary has no token for byte 0x%02x, which the plan "
                                 "grammar needs",
                                 (unsigned char)s[i]);
        }
        t[i] = id;
    }
    *ids = t;
    *n_ids = n;
    return AGX_OK;
}

/* ---------------------------------------------------------- plan rules -- */

/* A tiny tracker over the canonical plan JSON the grammar emits:
 * {"tasks":[{"task_number":N,"command":"..","args":[..],"input_from_task":M}]}
 * It knows which task is being written and which number is being read, so
 * task_number can be written as the task's position and input_from_task kept
 * to an earlier task (the schema alone allows any 1..max_tasks). */
enum { KEY_NONE, KEY_TASK_NUMBER, KEY_INPUT, KEY_OTHER };

typedef struct plan_track {
    bool in_str, esc, in_key, expect_key, in_value, args_done;
    int depth, task, key, ndigits;
    long num;
    char keybuf[20];
    int keylen;
} plan_track;

/* Feeds one byte; false when the byte breaks a plan rule. */
static bool track_byte(plan_track *t, unsigned char c) {
    if (t->in_str) {
        if (t->esc) {
            t->esc = false;
        } else if (c == '\\') {
            t->esc = true;
        } else if (c == '"') {
            t->in_str = false;
            if (t->in_key) {
                t->in_key = false;
                t->keybuf[t->keylen < (int)sizeof t->keybuf ? t->keylen : 0] = '\0';
                t->key = !strcmp(t->keybuf, "task_number")       ? KEY_TASK_NUMBER
                         : !strcmp(t->keybuf, "input_from_task") ? KEY_INPUT
                                                                 : KEY_OTHER;
            }
        } else if (t->in_key && t->keylen < (int)sizeof t->keybuf - 1) {
            t->keybuf[t->keylen++] = (char)c;
        } else if (t->in_key) {
            t->keylen = (int)sizeof t->keybuf; /* too long: no key we know */
        }
        return true;
    }
    bool ok = true;
    switch (c) {
    case '"':
        t->in_str = true;
        t->in_key = t->depth == 3 && t->expect_key;
        t->keylen = 0;
        break;
    case ':':
        if (t->depth == 3) {
            t->expect_key = false;
            t->in_value = true;
            t->num = 0;
            t->ndigits = 0;
        }
        break;
    case ',':
    case '}':
        if (t->depth == 3) {
            if (t->in_value && t->key == KEY_TASK_NUMBER && t->num != t->task) ok = false;
            if (t->in_value && t->key == KEY_INPUT && (t->num < 1 || t->num >= t->task)) ok = false;
            /* after args only input_from_task can follow, and task 1 has no earlier task */
            if (c == ',' && t->args_done && t->task <= 1) ok = false;
            t->in_value = false;
            t->expect_key = c == ',';
        }
        if (c == '}') t->depth--;
        break;
    case '{':
        t->depth++;
        if (t->depth == 3) {
            t->task++;
            t->args_done = false;
            t->expect_key = true;
            t->in_value = false;
            t->key = KEY_NONE;
        }
        break;
    case '[':
        t->depth++;
        break;
    case ']':
        if (t->depth == 4) t->args_done = true;
        t->depth--;
        break;
    default:
        if (c >= '0' && c <= '9' && t->depth == 3 && t->in_value) {
            if (t->num < 100000) t->num = t->num * 10 + (c - '0');
            t->ndigits++;
            if (t->key == KEY_TASK_NUMBER && t->num > t->task) ok = false;
            if (t->key == KEY_INPUT && t->num >= t->task) ok = false;
        }
        break;
    }
    return ok;
}

static bool track_bytes(plan_track *t, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!track_byte(t, b[i])) return false;
    return true;
}

/* Would this token keep the plan rules? (works on a copy of the tracker) */
static bool track_token_ok(const agx_native_engine *e, const plan_track *t, int32_t tok) {
    size_t len = 0;
    const uint8_t *b = agx_tokenizer_token_bytes(e->m->tok, tok, &len);
    if (!b) return true;
    plan_track c = *t;
    return track_bytes(&c, b, len);
}

/* Where a token could break a rule: within task 1 (a ',' after its args) and
 * inside an input_from_task value. Elsewhere every grammar-allowed token is fine. */
static bool track_sensitive(const plan_track *t) {
    return t->depth >= 3 && (t->task <= 1 || (t->in_value && t->key == KEY_INPUT));
}

static bool track_at_task_number(const plan_track *t) {
    return !t->in_str && t->depth == 3 && t->in_value && t->key == KEY_TASK_NUMBER &&
           t->ndigits == 0;
}

/* -------------------------------------------------------- generation -- */

typedef struct gen_run {
    agx_native_engine *e;
    const agx_gen_options *o;
    agx_grammar_state *st;
    plan_track track;
    agx_strbuf out;
    agx_gen_stats *stats;
    int64_t t0_us;
    size_t streamed;     /* bytes of out already passed to on_text */
} gen_run;

/* Passes the new part of the answer to on_text, whole UTF-8 characters only
 * (a character split across tokens waits for its last byte); at_end: all. */
static void stream_out(gen_run *r, bool at_end) {
    if (!r->o->on_text || r->out.len <= r->streamed) return;
    size_t end = r->out.len;
    if (!at_end) {
        const unsigned char *d = (const unsigned char *)r->out.data;
        for (size_t back = 1; back <= 3 && back <= end - r->streamed; back++) {
            unsigned char c = d[end - back];
            if ((c & 0xc0) == 0x80) continue; /* continuation byte: look further back */
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (need > back) end -= back; /* incomplete: hold it back */
            break;
        }
    }
    if (end > r->streamed) r->o->on_text(r->o->user, r->out.data + r->streamed, end - r->streamed);
    r->streamed = end;
}

static double ms_since(int64_t t0_us) { return (double)(agx_time_us() - t0_us) / 1000.0; }

/* Accepts bytes the grammar fixed into grammar, tracker and output. */
static bool take_bytes(gen_run *r, const char *b, size_t n) {
    if (r->st && !agx_grammar_accept(r->st, b, n)) return false;
    if (r->o->plan_rules) track_bytes(&r->track, (const uint8_t *)b, n);
    if (!agx_strbuf_append(&r->out, b, n)) return false;
    stream_out(r, false);
    return true;
}

/* Collects the bytes fixed from here: the grammar's forced span, the task
 * number the plan rules write, and again. Accepts them as it goes. */
static size_t collect_forced(gen_run *r, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        if (agx_grammar_is_complete(r->st) || n >= cap) break;
        size_t k = agx_grammar_forced(r->st, buf + n, cap - n);
        if (k > 0) {
            if (!take_bytes(r, buf + n, k)) break;
            n += k;
            continue;
        }
        if (r->o->plan_rules && track_at_task_number(&r->track)) {
            char num[24];
            int m = snprintf(num, sizeof num, "%d,", r->track.task);
            if (m > 0 && n + (size_t)m <= cap && take_bytes(r, num, (size_t)m)) {
                memcpy(buf + n, num, (size_t)m);
                n += (size_t)m;
                continue;
            }
        }
        break;
    }
    return n;
}

/* Writes the grammar's shortest completion (plan rules fixing the task
 * numbers on the way); returns how many tokens it spells. */
static agx_status close_document(gen_run *r, agx_error *err) {
    char buf[FORCED_CAP];
    agx_strbuf closing;
    agx_strbuf_init(&closing);
    agx_status st = AGX_OK;
    for (int guard = 0; guard < 1000 && !agx_grammar_is_complete(r->st); guard++) {
        size_t n = collect_forced(r, buf, sizeof buf);
        if (n && !agx_strbuf_append(&closing, buf, n)) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
            break;
        }
        if (agx_grammar_is_complete(r->st)) break;
        size_t full = agx_grammar_shortest_completion(r->st, buf, sizeof buf);
        size_t len = full < sizeof buf ? full : sizeof buf;
        /* feed byte by byte so the plan rules can write the next task number */
        size_t i = 0;
        for (; i < len; i++) {
            if (!take_bytes(r, buf + i, 1)) break;
            if (!agx_strbuf_append(&closing, buf + i, 1)) break;
            if (r->o->plan_rules && track_at_task_number(&r->track)) {
                i++;
                break;
            }
        }
        if (i == 0) {
            st = agx_error_set(err, AGX_ERR_ENGINE,
                               "internal: the grammar's shortest completion was refused");
            break;
        }
    }
    if (st == AGX_OK && !agx_grammar_is_complete(r->st))
        st = agx_error_set(err, AGX_ERR_ENGINE, "internal: could not close the document");
    if (st == AGX_OK && closing.len) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        st = tokenize_forced(r->e, closing.data, closing.len, &ids, &n_ids, err);
        free(ids);
        r->stats->closing_tokens += (int64_t)n_ids;
        r->stats->forced_tokens += (int64_t)n_ids;
        r->stats->generated_tokens += (int64_t)n_ids;
    }
    r->stats->closed_by_budget = true;
    agx_strbuf_free(&closing);
    return st;
}

/* Is the token acceptable: grammar and plan rules. */
static bool token_ok(gen_run *r, int32_t t) {
    if (!agx_grammar_token_allowed(r->st, r->e->m->gvocab, t)) return false;
    return !r->o->plan_rules || track_token_ok(r->e, &r->track, t);
}

/* Full mask: grammar, then plan rules over the few tokens they can concern. */
static agx_status build_mask(gen_run *r, size_t *n_allowed, agx_error *err) {
    agx_native_engine *e = r->e;
    agx_status st = agx_grammar_mask(r->st, e->m->gvocab, e->mask, n_allowed, err);
    if (st != AGX_OK) return st;
    /* rows the tokenizer does not know stay refused (the trie has them empty) */
    if (r->o->plan_rules && track_sensitive(&r->track)) {
        for (size_t i = 0; i < e->m->n_comma; i++) {
            int32_t t = e->m->comma_tokens[i];
            if (e->mask[t] && !track_token_ok(e, &r->track, t)) {
                e->mask[t] = 0;
                (*n_allowed)--;
            }
        }
        if (r->track.in_value && r->track.key == KEY_INPUT)
            for (size_t i = 0; i < e->m->n_digit; i++) {
                int32_t t = e->m->digit_tokens[i];
                if (e->mask[t] && !track_token_ok(e, &r->track, t)) {
                    e->mask[t] = 0;
                    (*n_allowed)--;
                }
            }
    }
    return AGX_OK;
}

/* The guide's next token: the tokenizer's first token of the rest of the
 * guide when it spells a prefix of it and the grammar takes it; -1 else. */
static int32_t guide_token(gen_run *r, const char *guide) {
    size_t n = strlen(guide), take = n < 64 ? n : 64;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    agx_error err;
    if (agx_tokenizer_encode(r->e->m->tok, guide, take, false, false, &ids, &n_ids, &err) != AGX_OK)
        return -1;
    int32_t t = n_ids ? ids[0] : -1;
    free(ids);
    size_t len = 0;
    const uint8_t *b = t >= 0 ? agx_tokenizer_token_bytes(r->e->m->tok, t, &len) : NULL;
    if (!b || len == 0 || len > n || memcmp(b, guide, len) != 0 || t >= r->e->m->n_vocab) return -1;
    return token_ok(r, t) ? t : -1;
}

/* Moves the guide past bytes the grammar forced (NULL when they differ). */
static const char *skip_guide(const char *guide, const char *forced, size_t n) {
    return strncmp(guide, forced, n) == 0 && strlen(guide) >= n ? guide + n : NULL;
}

agx_status agx_native_generate(agx_native_engine *e, const agx_chat_msg *msgs, size_t n_msgs,
                               const agx_gen_options *opt, char **text, size_t *text_len,
                               agx_gen_stats *stats, agx_error *err) {
    agx_gen_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    *text = NULL;
    if (text_len) *text_len = 0;
    agx_gen_options defaults = agx_gen_default_options();
    const agx_gen_options *o = opt ? opt : &defaults;
    gen_run r;
    memset(&r, 0, sizeof r);
    r.e = e;
    r.o = o;
    r.stats = stats;
    r.t0_us = agx_time_us();
    agx_strbuf_init(&r.out);
    int max_tokens = o->max_tokens > 0 ? o->max_tokens : DEFAULT_MAX_TOKENS;

    agx_status st = AGX_OK;
    if (o->schema_json) {
        st = get_grammar(e, o->schema_json, err);
        if (st == AGX_OK && !(r.st = agx_grammar_state_new(e->grammar)))
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        if (st != AGX_OK) return st;
    }
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    agx_sampler *sampler = NULL;
    st = agx_chat_tokenize(e->m->tok, NULL, msgs, n_msgs, true, NULL, &prompt, &n_prompt, err);
    if (st == AGX_OK && n_prompt == 0)
        st = agx_error_set(err, AGX_ERR_TOKENIZER, "the rendered prompt has no tokens");
    int n_ctx = agx_context_n_ctx(e->ctx);
    size_t min_doc = r.st ? agx_grammar_min_bytes_to_complete(r.st) : 0;
    /* the prompt must leave room for at least the smallest answer */
    if (st == AGX_OK && n_prompt + 8 + (min_doc ? min_doc + CLOSE_SLACK : 0) > (size_t)n_ctx)
        st = agx_error_set(err, AGX_ERR_CONFIG,
                           "the prompt is %zu tokens but the context holds %d; raise "
                           "AGX_CANDLE_CONTEXT_SIZE (e.g. %zu) or shorten the instruction/input",
                           n_prompt, n_ctx, ((n_prompt + 1024) / 512) * 512);
    if (st == AGX_OK) st = agx_sampler_create(&o->sampler, &sampler, err);
    if (st != AGX_OK) goto done;
    stats->prompt_tokens = (int64_t)n_prompt;

    /* KV prefix reuse: keep the cached tokens the new prompt starts with; at
     * least the last prompt token is evaluated again for its logits. */
    stats->prompt_cache_loaded = pc_load(e, prompt, n_prompt);
    size_t keep = 0;
    while (keep < e->n_cache && keep < n_prompt && e->cache[keep] == prompt[keep]) keep++;
    if (keep >= n_prompt) keep = n_prompt - 1;
    agx_context_truncate(e->ctx, (int)keep);
    e->n_cache = (size_t)agx_context_n_past(e->ctx) < keep ? (size_t)agx_context_n_past(e->ctx) : keep;
    keep = e->n_cache;
    stats->reused_tokens = (int64_t)keep;
    /* Tokens known but not yet evaluated: the prompt's tail, then each
     * sampled token together with the forced span that follows it, so every
     * step is one forward call (forced spans ride along in the batch). */
    size_t cap_pend = n_prompt - keep + FORCED_CAP + 1;
    int32_t *pend = malloc(cap_pend * sizeof *pend);
    size_t n_pend = n_prompt - keep;
    if (!pend) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(pend, prompt + keep, n_pend * sizeof *pend);
    bool first_eval = true;
    const char *guide = o->guide;
    char forced[FORCED_CAP];
    for (;;) {
        if (o->cancel && *o->cancel) {
            st = agx_error_set(err, AGX_ERR_INFERENCE, "generation cancelled");
            break;
        }
        if (r.st && agx_grammar_is_complete(r.st)) break;
        /* budget: tokens and context (pending tokens will take context too) */
        int64_t left_tokens = (int64_t)max_tokens - stats->generated_tokens;
        int64_t left_ctx = (int64_t)n_ctx - (int64_t)e->n_cache - (int64_t)n_pend;
        int64_t left = left_tokens < left_ctx ? left_tokens : left_ctx;
        if (!r.st && left <= 0) break;
        if (r.st) {
            int64_t mt = agx_time_us();
            size_t need = agx_grammar_min_bytes_to_complete(r.st);
            stats->mask_ms += ms_since(mt);
            if ((int64_t)need + CLOSE_SLACK >= left || left_ctx <= CLOSE_SLACK) {
                st = close_document(&r, err);
                break;
            }
            /* forced span: appended without sampling, evaluated in the next batch */
            mt = agx_time_us();
            size_t nf = collect_forced(&r, forced, sizeof forced);
            stats->mask_ms += ms_since(mt);
            if (nf > 0) {
                if (guide) guide = skip_guide(guide, forced, nf);
                int32_t *ids = NULL;
                size_t n_ids = 0;
                st = tokenize_forced(e, forced, nf, &ids, &n_ids, err);
                if (st != AGX_OK) break;
                stats->forced_tokens += (int64_t)n_ids;
                stats->generated_tokens += (int64_t)n_ids;
                if (n_pend + n_ids > cap_pend) {
                    int32_t *np = realloc(pend, (n_pend + n_ids) * sizeof *np);
                    if (!np) {
                        free(ids);
                        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
                        break;
                    }
                    pend = np;
                    cap_pend = n_pend + n_ids;
                }
                memcpy(pend + n_pend, ids, n_ids * sizeof *ids);
                n_pend += n_ids;
                free(ids);
                if (agx_grammar_is_complete(r.st)) break; /* nothing more to evaluate */
            }
        }
        if (n_pend > 0) {
            int64_t et = agx_time_us();
            st = eval_cancellable(e, pend, n_pend, o->cancel, err);
            if (first_eval) stats->prefill_ms = ms_since(r.t0_us);
            if (first_eval && st == AGX_OK && keep + 1 < n_prompt) pc_save(e, prompt, n_prompt);
            else stats->decode_ms += ms_since(et), stats->evals++;
            first_eval = false;
            n_pend = 0;
            if (st != AGX_OK) break;
        }
        /* sample: the unconstrained pick first (rejection sampling keeps the
         * distribution of sampling under the mask), the full mask only when
         * the grammar or the plan rules refuse it */
        int64_t t1 = agx_time_us();
        int32_t tok = agx_sampler_sample(sampler, e->logits, e->m->n_vocab, NULL);
        stats->sample_ms += ms_since(t1);
        if (r.st && guide && *guide) {
            int32_t g = guide_token(&r, guide);
            if (g >= 0) {
                size_t gl = 0;
                agx_tokenizer_token_bytes(e->m->tok, g, &gl);
                guide += gl;
                tok = g;
            } else {
                guide = NULL; /* astray: the sampler takes over */
            }
        }
        if (r.st) {
            int64_t mt = agx_time_us();
            bool ok = tok >= 0 && token_ok(&r, tok);
            size_t n_allowed = 0;
            if (!ok) st = build_mask(&r, &n_allowed, err);
            stats->mask_ms += ms_since(mt);
            if (st != AGX_OK) break;
            if (!ok) {
                stats->masks++;
                t1 = agx_time_us();
                tok = n_allowed ? agx_sampler_sample(sampler, e->logits, e->m->n_vocab, e->mask) : -1;
                stats->sample_ms += ms_since(t1);
                if (tok < 0) { /* nothing allowed (cannot happen with a sane grammar): close */
                    st = close_document(&r, err);
                    break;
                }
            }
            mt = agx_time_us();
            size_t len = 0;
            const uint8_t *b = agx_tokenizer_token_bytes(e->m->tok, tok, &len);
            bool acc = agx_grammar_accept_token(r.st, e->m->gvocab, tok);
            stats->mask_ms += ms_since(mt);
            if (!acc) {
                st = agx_error_set(err, AGX_ERR_ENGINE,
                                   "internal: token %d was allowed by the mask but refused", tok);
                break;
            }
            if (o->plan_rules && b) track_bytes(&r.track, b, len);
            if (b && len && !agx_strbuf_append(&r.out, b, len)) {
                st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
                break;
            }
            stream_out(&r, false);
        } else {
            if (tok < 0 || agx_model_is_eog(e->m->model, tok) || agx_tokenizer_is_eog(e->m->tok, tok))
                break;
            size_t len = 0;
            const uint8_t *b = agx_tokenizer_token_bytes(e->m->tok, tok, &len);
            if (b && len && !agx_strbuf_append(&r.out, b, len)) {
                st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
                break;
            }
            stream_out(&r, false);
        }
        agx_sampler_accept(sampler, tok);
        if (stats->sampled_tokens == 0) stats->ttft_ms = ms_since(r.t0_us);
        stats->sampled_tokens++;
        stats->generated_tokens++;
        pend[n_pend++] = tok; /* cap_pend >= FORCED_CAP + 1 after every eval */
    }
    free(pend);
    if (st == AGX_OK && r.st && !agx_grammar_is_complete(r.st))
        st = agx_error_set(err, AGX_ERR_ENGINE, "internal: generation ended before the plan closed");
    if (st == AGX_OK) stream_out(&r, true);

done:
    stats->total_ms = ms_since(r.t0_us);
    if (stats->generated_tokens > 0 && stats->total_ms > stats->ttft_ms)
        stats->tokens_per_s =
            (double)stats->generated_tokens * 1000.0 / (stats->total_ms - stats->ttft_ms);
    agx_sampler_free(sampler);
    agx_grammar_state_free(r.st);
    free(prompt);
    if (st != AGX_OK) {
        agx_strbuf_free(&r.out);
        return st;
    }
    size_t len = r.out.len;
    char *s = agx_strbuf_take(&r.out);
    if (!s) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    *text = s;
    if (text_len) *text_len = len;
    return AGX_OK;
}
