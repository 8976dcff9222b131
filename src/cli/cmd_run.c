/* cmd_run.c — 'agx logits', 'agx generate', 'agx bench': the native engine from
 * the command line (teacher-forced logits for conformance checks, greedy or
 * sampled generation, llama-bench-style throughput). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <immintrin.h>

#include "agx/device.h"
#include "agx/gguf.h"
#include "agx/model.h"
#include "agx/quant.h"
#include "agx/sampler.h"
#include "agx/tokenizer.h"
#include "agx/util.h"
#include "cli.h"
#include "agx/native.h"

/* ---- argument helpers ---- */
static bool parse_int(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}
static bool parse_float(const char *s, float *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = (float)v;
    return true;
}
/* "1,2,3" -> malloc'ed ids */
static bool parse_tokens(const char *s, int32_t **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (!s || !*s) return false;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return false;
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            free(ids);
            return false;
        }
        ids[n++] = (int32_t)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    *out = ids;
    *n_out = n;
    return true;
}

#define NEED_ARG(flag)                                                     \
    do {                                                                   \
        if (i + 1 >= argc) return agx_cli_usage("%s needs a value", flag); \
    } while (0)

/* ======================================================================== */
/* agx logits                                                                */
/* ======================================================================== */
int agx_cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *tokens_arg = NULL, *out_path = NULL;
    long threads = 0;
    agx_kv_type kv = AGX_KV_F32;   /* conformance tool: the most precise cache */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_ARG(a); model_path = argv[++i]; }
        else if (!strcmp(a, "--tokens")) { NEED_ARG(a); tokens_arg = argv[++i]; }
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) { NEED_ARG(a); out_path = argv[++i]; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 1, 1024, &threads)) return agx_cli_usage("-t needs a thread count 1..1024");
        } else if (!strcmp(a, "--kv")) {
            NEED_ARG(a);
            const char *v = argv[++i];
            if (!strcmp(v, "f16")) kv = AGX_KV_F16;
            else if (!strcmp(v, "f32")) kv = AGX_KV_F32;
            else return agx_cli_usage("--kv is f16 or f32");
        } else return agx_cli_usage("logits: unknown argument '%s'", a);
    }
    if (!model_path || !tokens_arg || !out_path)
        return agx_cli_usage("logits needs -m MODEL --tokens 1,2,3 --out FILE");
    int32_t *toks;
    int n_tok;
    if (!parse_tokens(tokens_arg, &toks, &n_tok))
        return agx_cli_usage("--tokens takes comma-separated non-negative token ids, e.g. 1,2,3");

    agx_error err = {0};
    agx_model *m = NULL;
    agx_context *ctx = NULL;
    float *logits = NULL;
    int rc = AGX_EXIT_OK;
    if (agx_model_load(model_path, &m, &err) != AGX_OK) goto fail;
    const agx_model_config *cfg = agx_model_get_config(m);
    if (cfg->n_ctx_train > 0 && n_tok > cfg->n_ctx_train) {
        agx_error_set(&err, AGX_ERR_INFERENCE, "%d tokens exceed the model's context length %d", n_tok,
                      cfg->n_ctx_train);
        goto fail;
    }
    /* one batch: the context and the micro-batch hold every token */
    agx_context_params cp = agx_context_default_params();
    cp.n_ctx = n_tok;
    cp.n_ubatch = n_tok;
    cp.n_threads = (int)threads;
    cp.kv_type = kv;
    if (agx_context_create(m, &cp, &ctx, &err) != AGX_OK) goto fail;
    const size_t n_floats = (size_t)n_tok * (size_t)cfg->n_vocab;
    logits = malloc(n_floats * sizeof(float));
    if (!logits) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory for %d x %d logits", n_tok, cfg->n_vocab);
        goto fail;
    }
    if (agx_context_eval(ctx, toks, n_tok, true, logits, &err) != AGX_OK) goto fail;
    /* little-endian float32 rows (this engine only builds for LE hosts: x86-64) */
    if (agx_file_write_atomic(out_path, logits, n_floats * sizeof(float), &err) != AGX_OK) goto fail;
    goto done;
fail:
    rc = agx_cli_fail(&err);
done:
    free(logits);
    free(toks);
    agx_context_free(ctx);
    agx_model_free(m);
    return rc;
}

/* ======================================================================== */
/* agx generate                                                              */
/* ======================================================================== */
int agx_cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *tokens_arg = NULL, *prompt = NULL;
    long n_gen = -1, threads = 0, seed = -1, top_k = -1, last_n = -1;
    bool greedy = false, ignore_eos = false, json = false;
    float temp = NAN, top_p = NAN, min_p = NAN, rep = NAN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_ARG(a); model_path = argv[++i]; }
        else if (!strcmp(a, "--tokens")) { NEED_ARG(a); tokens_arg = argv[++i]; }
        else if (!strcmp(a, "--prompt") || !strcmp(a, "-p")) { NEED_ARG(a); prompt = argv[++i]; }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, INT_MAX, &n_gen)) return agx_cli_usage("-n needs a token count >= 0");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 1, 1024, &threads)) return agx_cli_usage("-t needs a thread count 1..1024");
        } else if (!strcmp(a, "--greedy")) greedy = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--temp") || !strcmp(a, "--temperature")) {
            NEED_ARG(a);
            if (!parse_float(argv[++i], &temp) || temp < 0) return agx_cli_usage("--temp needs a number >= 0");
        } else if (!strcmp(a, "--top-p")) {
            NEED_ARG(a);
            if (!parse_float(argv[++i], &top_p) || !(top_p > 0 && top_p <= 1)) return agx_cli_usage("--top-p needs a number in (0, 1]");
        } else if (!strcmp(a, "--min-p")) {
            NEED_ARG(a);
            if (!parse_float(argv[++i], &min_p) || !(min_p >= 0 && min_p <= 1)) return agx_cli_usage("--min-p needs a number in [0, 1]");
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEED_ARG(a);
            if (!parse_float(argv[++i], &rep) || !(rep > 0)) return agx_cli_usage("--repeat-penalty needs a number > 0");
        } else if (!strcmp(a, "--repeat-last-n")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, 1 << 20, &last_n)) return agx_cli_usage("--repeat-last-n needs a count >= 0");
        } else if (!strcmp(a, "--top-k")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, INT_MAX, &top_k)) return agx_cli_usage("--top-k needs a count >= 0");
        } else if (!strcmp(a, "--seed")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, LONG_MAX, &seed)) return agx_cli_usage("--seed needs a number >= 0");
        } else return agx_cli_usage("generate: unknown argument '%s'", a);
    }
    if (!model_path) return agx_cli_usage("generate needs -m MODEL");
    if (!tokens_arg == !prompt) return agx_cli_usage("generate needs either --tokens 1,2,3 or --prompt TEXT");
    int32_t *toks = NULL;
    int n_tok = 0;
    if (tokens_arg && !parse_tokens(tokens_arg, &toks, &n_tok))
        return agx_cli_usage("--tokens takes comma-separated non-negative token ids, e.g. 1,2,3");

    agx_error err = {0};
    agx_tokenizer *tok = NULL;
    if (prompt) {
        /* the text as given (special tokens such as <|im_start|> are parsed, BOS
         * added when the model asks for it), like llama.cpp's prompt handling */
        size_t n_ids = 0;
        if (agx_tokenizer_load_for_model(model_path, NULL, &tok, &err) != AGX_OK ||
            agx_tokenizer_encode(tok, prompt, strlen(prompt), true, true, &toks, &n_ids, &err) != AGX_OK) {
            agx_tokenizer_free(tok);
            return agx_cli_fail(&err);
        }
        if (n_ids == 0 || n_ids > INT_MAX) {
            free(toks);
            agx_tokenizer_free(tok);
            return agx_cli_usage("--prompt encodes to no tokens");
        }
        n_tok = (int)n_ids;
    }
    agx_model *m = NULL;
    agx_context *ctx = NULL;
    agx_sampler *smp = NULL;
    float *logits = NULL;
    int32_t *out_ids = NULL;
    int n_out = 0, rc = AGX_EXIT_OK;

    agx_sampler_params sp;
    if (agx_sampler_params_from_env(&sp, &err) != AGX_OK) goto fail;
    if (greedy) {
        sp.temperature = 0.0f;
        sp.repeat_penalty = 1.0f;   /* pure argmax unless a penalty is asked for */
    }
    if (!isnan(temp)) sp.temperature = temp;
    if (!isnan(top_p)) sp.top_p = top_p;
    if (!isnan(min_p)) sp.min_p = min_p;
    if (!isnan(rep)) sp.repeat_penalty = rep;
    if (top_k >= 0) sp.top_k = (int)top_k;
    if (last_n >= 0) sp.repeat_last_n = (int)last_n;
    if (seed >= 0) sp.seed = (uint64_t)seed;
    if (n_gen < 0) {
        if (agx_env_long("AGX_CANDLE_MAX_TOKENS", 2048, &n_gen, &err) != AGX_OK) goto fail;
        if (n_gen < 0) n_gen = 0;
    }
    if (agx_sampler_create(&sp, &smp, &err) != AGX_OK) goto fail;
    if (agx_model_load(model_path, &m, &err) != AGX_OK) goto fail;
    const agx_model_config *cfg = agx_model_get_config(m);
    agx_context_params cp = agx_context_default_params();
    cp.n_threads = (int)threads;
    if (agx_context_create(m, &cp, &ctx, &err) != AGX_OK) goto fail;
    logits = malloc(sizeof(float) * (size_t)cfg->n_vocab);
    /* never more than the context can hold (a huge -n fails there, not in malloc) */
    const long cap = n_gen < agx_context_n_ctx(ctx) ? n_gen : agx_context_n_ctx(ctx);
    out_ids = malloc(sizeof(int32_t) * (size_t)(cap > 0 ? cap : 1));
    if (!logits || !out_ids) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n_tok; i++) agx_sampler_accept(smp, toks[i]);
    if (n_gen > 0) {
        if (agx_context_eval(ctx, toks, n_tok, false, logits, &err) != AGX_OK) goto fail;
        for (;;) {
            int32_t id = agx_sampler_sample(smp, logits, cfg->n_vocab, NULL);
            if (id < 0) {
                agx_error_set(&err, AGX_ERR_INFERENCE, "sampling failed: no valid logits");
                goto fail;
            }
            if (!ignore_eos && agx_model_is_eog(m, id)) break;
            agx_sampler_accept(smp, id);
            out_ids[n_out++] = id;
            if (n_out >= n_gen) break;
            if (agx_context_eval(ctx, &id, 1, false, logits, &err) != AGX_OK) goto fail;
        }
    }
    char *text = NULL;
    size_t text_len = 0;
    if (tok && agx_tokenizer_decode(tok, out_ids, (size_t)n_out, true, &text, &text_len, &err) != AGX_OK) goto fail;
    if (json) {
        json_t *o = json_object(), *arr = json_array();
        for (int i = 0; i < n_out; i++) json_array_append_new(arr, json_integer(out_ids[i]));
        json_object_set_new(o, "tokens", arr);
        if (text) json_object_set_new(o, "text", json_stringn(text, text_len));
        char *dump = json_dumps(o, JSON_COMPACT);
        printf("%s\n", dump ? dump : "{}");
        free(dump);
        json_decref(o);
    } else if (text) {
        fwrite(text, 1, text_len, stdout);
        printf("\n");
    } else {
        for (int i = 0; i < n_out; i++) printf("%s%d", i ? "," : "", out_ids[i]);
        printf("\n");
    }
    free(text);
    goto done;
fail:
    if (n_out > 0 && err.code == AGX_ERR_INFERENCE)
        agx_error_prefix(&err, "after %d generated tokens", n_out);
    rc = agx_cli_fail(&err);
done:
    free(logits);
    free(out_ids);
    free(toks);
    agx_tokenizer_free(tok);
    agx_sampler_free(smp);
    agx_context_free(ctx);
    agx_model_free(m);
    return rc;
}

/* ======================================================================== */
/* agx bench                                                                 */
/* ======================================================================== */
typedef struct stats {
    double median, min, max;
} stats;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static stats summarize(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stats s = {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[0], v[n - 1]};
    return s;
}

/* ---- memory streaming over the mapped weights (the tg bandwidth limit) ---- */
typedef struct stream_job {
    const uint8_t *base;
    size_t len;
    uint64_t sink[64];
} stream_job;

/* XOR-folds a slice with 32-byte loads (AVX2 when present: the limit must be
 * the memory, not the loop). */
__attribute__((target("avx2"))) static uint64_t stream_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t r = (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
    for (; i < n; i++) r ^= p[i];
    return r;
}
static uint64_t stream_plain(const uint8_t *p, size_t n) {
    uint64_t a[8] = {0}, w;
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) memcpy(&w, p + i + 8 * k, 8), a[k] ^= w;
    for (; i < n; i++) a[0] ^= p[i];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

static void stream_worker(int ith, int nth, void *arg) {
    stream_job *j = arg;
    const size_t per = (j->len + (size_t)nth - 1) / (size_t)nth;
    const size_t lo = per * (size_t)ith, hi = lo + per < j->len ? lo + per : j->len;
    if (lo >= hi) return;
    j->sink[ith % 64] = __builtin_cpu_supports("avx2") ? stream_avx2(j->base + lo, hi - lo)
                                                        : stream_plain(j->base + lo, hi - lo);
}

/* GB/s reading every weight byte once with nth threads (best of 3), or 0. */
static double stream_gbps(const agx_model *m, int nth) {
    const agx_gguf *g = agx_model_gguf(m);
    const uint8_t *lo = NULL, *hi = NULL;
    for (size_t i = 0; i < agx_gguf_n_tensors(g); i++) {
        const agx_gguf_tensor *t = agx_gguf_tensor_at(g, i);
        const uint8_t *b = t->data, *e = b + t->nbytes;
        if (!lo || b < lo) lo = b;
        if (!hi || e > hi) hi = e;
    }
    if (!lo || hi - lo < 64) return 0;
    agx_threadpool *tp = NULL;
    agx_error err;
    if (agx_threadpool_create(nth, &tp, &err) != AGX_OK) return 0;
    stream_job j = {lo, (size_t)(hi - lo), {0}};
    double best = 0;
    for (int r = 0; r < 3; r++) {
        const int64_t t0 = agx_time_us();
        agx_threadpool_run(tp, stream_worker, &j);
        const double gbps = (double)j.len / ((double)(agx_time_us() - t0 + 1) * 1e3);
        if (gbps > best) best = gbps;
    }
    agx_threadpool_free(tp);
    return best;
}

static long peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss * 1024L;   /* Linux reports KiB */
}

int agx_cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *device = NULL;
    long n_pp = 512, n_tg = 128, threads = 0, reps = 5;
    bool json = false, grammar = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED_ARG(a); model_path = argv[++i]; }
        else if (!strcmp(a, "--grammar")) grammar = true;
        else if (!strcmp(a, "-p")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, 1 << 20, &n_pp)) return agx_cli_usage("-p needs a token count >= 0");
        } else if (!strcmp(a, "-n")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 0, 1 << 20, &n_tg)) return agx_cli_usage("-n needs a token count >= 0");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 1, 1024, &threads)) return agx_cli_usage("-t needs a thread count 1..1024");
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            NEED_ARG(a);
            if (!parse_int(argv[++i], 1, 1000, &reps)) return agx_cli_usage("-r needs a count 1..1000");
        } else if (!strcmp(a, "--device")) {
            NEED_ARG(a);
            device = argv[++i];
            agx_device_request req;
            agx_error derr;
            if (agx_device_parse(device, &req, &derr) != AGX_OK)
                return agx_cli_usage("--device takes auto, cpu, cuda or metal (like AGX_DEVICE), not '%s'", device);
        } else if (!strcmp(a, "--json")) json = true;
        else return agx_cli_usage("bench: unknown argument '%s'", a);
    }
    if (!model_path) return agx_cli_usage("bench needs -m MODEL");
    if (n_pp + n_tg == 0) return agx_cli_usage("bench: -p and -n are both 0, nothing to measure");

    agx_error err = {0};
    agx_model *m = NULL;
    agx_context *ctx = NULL;
    float *logits = NULL;
    int32_t *toks = NULL;
    double *pp_tps = calloc((size_t)reps, sizeof(double)), *tg_tps = calloc((size_t)reps, sizeof(double));
    int rc = AGX_EXIT_OK;
    if (!pp_tps || !tg_tps) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (agx_model_load(model_path, &m, &err) != AGX_OK) goto fail;
    const agx_model_config *cfg = agx_model_get_config(m);
    /* like llama-bench: a context of exactly p + n tokens, random token ids */
    agx_context_params cp = agx_context_default_params();
    cp.n_ctx = (int)(n_pp + n_tg);
    cp.n_threads = (int)threads;
    cp.device = device;   /* NULL: AGX_DEVICE */
    if (cfg->n_ctx_train > 0 && cp.n_ctx > cfg->n_ctx_train) {
        agx_error_set(&err, AGX_ERR_USAGE, "-p + -n = %d exceeds the model's context length %d", cp.n_ctx,
                      cfg->n_ctx_train);
        goto fail;
    }
    if (agx_context_create(m, &cp, &ctx, &err) != AGX_OK) goto fail;
    logits = malloc(sizeof(float) * (size_t)cfg->n_vocab);
    toks = malloc(sizeof(int32_t) * (size_t)(n_pp + n_tg + 1));
    if (!logits || !toks) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint64_t r = 0x2545F4914F6CDD1Dull;
    for (long i = 0; i < n_pp + n_tg + 1; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        toks[i] = (int32_t)(r % (uint64_t)cfg->n_vocab);
    }
    /* warm-up: touches every weight page once (not timed) */
    if (agx_context_eval(ctx, toks, n_pp > 0 ? (int)(n_pp < 16 ? n_pp : 16) : 1, false, logits, &err) != AGX_OK)
        goto fail;
    for (long rep = 0; rep < reps; rep++) {
        if (n_pp > 0) {
            agx_context_truncate(ctx, 0);
            const int64_t t0 = agx_time_us();
            if (agx_context_eval(ctx, toks, (int)n_pp, false, logits, &err) != AGX_OK) goto fail;
            pp_tps[rep] = (double)n_pp * 1e6 / (double)(agx_time_us() - t0 + 1);
        }
        if (n_tg > 0) {
            agx_context_truncate(ctx, 0);
            const int64_t t0 = agx_time_us();
            for (long i = 0; i < n_tg; i++)
                if (agx_context_eval(ctx, &toks[n_pp + i], 1, false, logits, &err) != AGX_OK) goto fail;
            tg_tps[rep] = (double)n_tg * 1e6 / (double)(agx_time_us() - t0 + 1);
        }
    }
    stats pp = n_pp > 0 ? summarize(pp_tps, (int)reps) : (stats){0, 0, 0};
    stats tg = n_tg > 0 ? summarize(tg_tps, (int)reps) : (stats){0, 0, 0};
    const long rss = peak_rss_bytes();
    const int nth = agx_context_n_threads(ctx);
    const agx_device_info *dev = agx_context_device(ctx);
    const bool on_gpu = dev->kind != AGX_DEVICE_CPU;
    const size_t dev_used = agx_context_device_bytes(ctx);
    char dev_line[256];
    agx_device_describe(dev, dev_line, sizeof dev_line);
    /* the bandwidth limit of generation on the CPU, measured in the same run:
     * every weight byte read once per token (not the GPU's limit: skipped there) */
    const double bw = !on_gpu && n_tg > 0 && cfg->weight_bytes >= (64u << 20) ? stream_gbps(m, nth) : 0;
    const double tg_gbps = tg.median * (double)cfg->weight_bytes / 1e9;
    /* --grammar: constrained vs unconstrained decoding on the native engine
     * (the plan grammar's mask, forced spans, plan rules) over the same file. */
    agx_native_bench gb = {0};
    if (grammar) {
        agx_native_params np = {.n_ctx = 0, .n_threads = nth, .prompt_cache_dir = NULL, .device = device};
        agx_native_engine *engine = NULL;
        if (agx_native_engine_open(model_path, &np, &engine, &err) != AGX_OK) goto fail;
        agx_status gs = agx_native_bench_grammar(engine, 32, &gb, &err);
        agx_native_engine_free(engine);
        if (gs != AGX_OK) goto fail;
    }
    if (json) {
        printf("{\"pp\": {\"n\": %ld, \"tokens_per_s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}}, "
               "\"tg\": {\"n\": %ld, \"tokens_per_s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}}, "
               "\"threads\": %d, \"peak_rss_bytes\": %ld, \"reps\": %ld, \"model\": \"%s\", "
               "\"model_bytes\": %llu, \"repacked_bytes\": %llu, \"kv_cache_bytes\": %zu, \"isa\": \"%s\", "
               "\"stream_gbps\": %.2f, \"tg_weight_gbps\": %.2f",
               n_pp, pp.median, pp.min, pp.max, n_tg, tg.median, tg.min, tg.max, nth, rss, reps,
               agx_model_desc(m), (unsigned long long)cfg->file_bytes, (unsigned long long)cfg->repacked_bytes,
               agx_context_kv_bytes(ctx), agx_cpu_isa_name(), bw, tg_gbps);
        json_t *dj = agx_device_info_json(dev);
        char *ds = dj ? json_dumps(dj, JSON_COMPACT) : NULL;
        printf(", \"device\": %s, \"device_mem_used\": %zu", ds ? ds : "null", dev_used);
        free(ds);
        json_decref(dj);
        if (grammar)
            printf(", \"grammar\": {\"n_vocab\": %lld, \"unconstrained_ms_per_token\": %.3f, "
                   "\"constrained_ms_per_token\": %.3f, \"mask_ms_per_token\": %.4f, \"mask_share\": %.5f, "
                   "\"full_mask_ms\": %.4f, \"full_mask_share\": %.5f, \"forced_share\": %.3f, "
                   "\"plan_tokens\": %lld, \"plan_ms\": %.1f, \"plan_ttft_ms\": %.1f}",
                   (long long)gb.n_vocab, gb.unconstrained_ms_per_token, gb.constrained_ms_per_token,
                   gb.mask_ms_per_token, gb.mask_share, gb.full_mask_ms, gb.full_mask_share, gb.forced_share,
                   (long long)gb.plan_tokens, gb.plan_ms, gb.plan_ttft_ms);
        printf("}\n");
    } else {
        printf("model: %s\nthreads: %d, isa: %s, reps: %ld, KV cache f16 %.1f MB\n", agx_model_desc(m), nth,
               agx_cpu_isa_name(), reps, (double)agx_context_kv_bytes(ctx) / 1e6);
        printf("device: %s\n", dev_line);
        if (dev->note[0]) printf("device note: %s\n", dev->note);
        if (on_gpu)
            printf("device memory: %.1f MB used by the context (%.1f MB of weights; KV cache, scratch)\n",
                   (double)dev_used / 1e6, (double)agx_context_device_weight_bytes(ctx) / 1e6);
        printf("%-8s %12s %12s %12s\n", "test", "median t/s", "min t/s", "max t/s");
        if (n_pp > 0) printf("pp%-6ld %12.2f %12.2f %12.2f\n", n_pp, pp.median, pp.min, pp.max);
        if (n_tg > 0) printf("tg%-6ld %12.2f %12.2f %12.2f\n", n_tg, tg.median, tg.min, tg.max);
        printf("peak RSS: %.1f MB\n", (double)rss / 1e6);
        if (bw > 0)
            printf("memory streaming over the weights (%d threads): %.2f GB/s; tg reads %.2f GB/s of weights "
                   "= %.0f%% of it\n", nth, bw, tg_gbps, 100.0 * tg_gbps / bw);
        if (grammar) {
            printf("grammar (vocab %lld): unconstrained %.2f ms/token; constrained plan %.2f ms/token over %lld "
                   "tokens, %.0f%% forced\n", (long long)gb.n_vocab, gb.unconstrained_ms_per_token,
                   gb.constrained_ms_per_token, (long long)gb.plan_tokens, 100.0 * gb.forced_share);
            printf("  grammar work per sampled token: %.3f ms = %.2f%% of an unconstrained token; one full "
                   "mask %.3f ms = %.2f%%\n", gb.mask_ms_per_token, 100.0 * gb.mask_share, gb.full_mask_ms,
                   100.0 * gb.full_mask_share);
            printf("  7-task plan end to end: %.0f ms (first token %.0f ms, prompt reused)\n", gb.plan_ms,
                   gb.plan_ttft_ms);
        }
    }
    goto done;
fail:
    rc = agx_cli_fail(&err);
done:
    free(pp_tps);
    free(tg_tps);
    free(logits);
    free(toks);
    agx_context_free(ctx);
    agx_model_free(m);
    return rc;
}
