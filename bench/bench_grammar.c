/* bench_grammar.c — cost of grammar-constrained decoding on a real vocabulary:
 * builds the token trie from the Qwen2 tokenizer (151936 ids), then generates
 * whole plans against the registry's plan schema choosing randomly among the allowed tokens
 * (forced spans appended without sampling, as the sampler does) and reports the
 * mask time per step by where the step is (start, object/array structure, inside
 * the command enum, inside an argument string), plus forced-span and completion
 * costs.
 *
 *   bench_grammar [--gguf vocab.gguf | --tokenizer tokenizer.json] [--plans N] [--seed S]
 *
 * The vocabulary comes from a vocab GGUF (gpt2 byte-level BPE or llama
 * SentencePiece) through the GGUF reader (default
 * $AGX_REF_DIR/tokenizer/qwen2.vocab.gguf, AGX_REF_DIR defaulting to
 * /work/shared/ref) or from a HF tokenizer.json via jansson; either way the GPT-2
 * byte alphabet is decoded to raw bytes and control tokens are left empty. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agx/gguf.h"
#include "agx/grammar.h"
#include "agx/planner.h"
#include "agx/registry.h"
#include "engine/grammar_internal.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the shared machine preempts */
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct vocab_src {
    char **bytes;
    size_t *lens;
    size_t n;
    int32_t eog[4];
    size_t n_eog;
} vocab_src;

/* GPT-2 byte-level alphabet: code point -> byte (-1: not in the alphabet). */
static void gpt2_u2b(int u2b[512]) {
    for (int i = 0; i < 512; i++) u2b[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        u2b[keep ? b : 256 + extra++] = b;
    }
}

/* Decodes one GPT-2-alphabet token text into raw bytes; NULL when it is not. */
static char *gpt2_decode(const char *s, size_t kl, const int u2b[512], size_t *olen) {
    char *out = malloc(kl + 1);
    size_t o = 0;
    for (size_t i = 0; i < kl;) {
        unsigned c = (unsigned char)s[i], cp;
        if (c < 0x80) cp = c, i += 1;
        else if ((c & 0xE0) == 0xC0 && i + 1 < kl) cp = (c & 0x1F) << 6 | (s[i + 1] & 0x3F), i += 2;
        else cp = 512;
        if (cp >= 512 || u2b[cp] < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)u2b[cp];
    }
    *olen = o;
    return out;
}

static int load_tokenizer_json(const char *path, vocab_src *vs) {
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (!root) {
        fprintf(stderr, "bench_grammar: cannot read %s: %s\n", path, e.text);
        return -1;
    }
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    int u2b[512];
    gpt2_u2b(u2b);
    vs->n = 151936; /* Qwen2.5 embedding rows (ids past the vocab are padding) */
    vs->bytes = calloc(vs->n, sizeof *vs->bytes);
    vs->lens = calloc(vs->n, sizeof *vs->lens);
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= vs->n) continue;
        vs->bytes[id] = gpt2_decode(key, strlen(key), u2b, &vs->lens[id]);
    }
    json_t *added = json_object_get(root, "added_tokens");
    for (size_t i = 0; i < json_array_size(added) && vs->n_eog < 4; i++) {
        const char *c = json_string_value(json_object_get(json_array_get(added, i), "content"));
        if (c && (!strcmp(c, "<|im_end|>") || !strcmp(c, "<|endoftext|>")))
            vs->eog[vs->n_eog++] = (int32_t)json_integer_value(json_object_get(json_array_get(added, i), "id"));
    }
    json_decref(root);
    return 0;
}

/* The vocabulary from a vocab GGUF (tokenizer.ggml.model = gpt2): normal tokens
 * decoded to bytes; control, user-defined and unused tokens left empty (never
 * allowed); EOG = eos + "<|endoftext|>"/"<|im_end|>". */
static int load_gguf(const char *path, vocab_src *vs) {
    agx_gguf *g;
    agx_error err;
    if (agx_gguf_open(path, &g, &err)) {
        fprintf(stderr, "bench_grammar: %s\n", err.message);
        return -1;
    }
    const agx_gguf_kv *toks = agx_gguf_find(g, "tokenizer.ggml.tokens");
    const agx_gguf_kv *types = agx_gguf_find(g, "tokenizer.ggml.token_type");
    agx_gguf_str model;
    bool spm = false;
    if (!toks || toks->type != AGX_GGUF_ARRAY || !agx_gguf_get_str(g, "tokenizer.ggml.model", &model) ||
        !(agx_gguf_str_eq(model, "gpt2") || (spm = agx_gguf_str_eq(model, "llama")))) {
        fprintf(stderr, "bench_grammar: %s is not a gpt2 or llama (SentencePiece) vocab GGUF\n", path);
        agx_gguf_close(g);
        return -1;
    }
    uint32_t eos_id = UINT32_MAX;
    agx_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos_id);
    int u2b[512];
    gpt2_u2b(u2b);
    vs->n = (size_t)toks->arr_len;
    vs->bytes = calloc(vs->n, sizeof *vs->bytes);
    vs->lens = calloc(vs->n, sizeof *vs->lens);
    for (size_t i = 0; i < vs->n; i++) {
        agx_gguf_str s;
        int64_t type = 1;
        if (types) agx_gguf_arr_i64(types, i, &type);
        if (!agx_gguf_arr_str(g, toks, i, &s)) continue;
        if (i == eos_id || agx_gguf_str_eq(s, "<|endoftext|>") || agx_gguf_str_eq(s, "<|im_end|>") ||
            agx_gguf_str_eq(s, "<|eot_id|>")) {
            if (vs->n_eog < 4) vs->eog[vs->n_eog++] = (int32_t)i;
            continue;
        }
        if (spm && type == 6 && s.len == 6) { /* <0xNN> byte token */
            vs->bytes[i] = malloc(1);
            vs->bytes[i][0] = (char)strtol(s.ptr + 3, NULL, 16);
            vs->lens[i] = 1;
            continue;
        }
        if (type != 1) continue; /* control / user-defined / unused */
        if (spm) { /* "\xe2\x96\x81" (U+2581) stands for a space */
            char *o = malloc(s.len + 1);
            size_t n = 0;
            for (uint64_t k = 0; k < s.len; k++) {
                if (k + 2 < s.len && memcmp(s.ptr + k, "\xe2\x96\x81", 3) == 0) {
                    o[n++] = ' ';
                    k += 2;
                } else {
                    o[n++] = s.ptr[k];
                }
            }
            vs->bytes[i] = o;
            vs->lens[i] = n;
            continue;
        }
        vs->bytes[i] = gpt2_decode(s.ptr, (size_t)s.len, u2b, &vs->lens[i]);
    }
    agx_gguf_close(g);
    return 0;
}

/* The registry's plan schema with the native backend's extension keywords
 * (task_number = item number, input_from_task = an earlier item). */
static char *plan_schema(void) {
    agx_registry reg;
    agx_error err;
    if (agx_registry_builtin(&reg, &err)) return NULL;
    char *base = agx_plan_schema_json(&reg, 20);
    agx_registry_free(&reg);
    json_t *root = base ? json_loads(base, 0, NULL) : NULL;
    free(base);
    json_t *props = json_object_get(
        json_object_get(json_object_get(json_object_get(root, "properties"), "tasks"), "items"),
        "properties");
    if (!props) {
        json_decref(root);
        return NULL;
    }
    json_object_set_new(json_object_get(props, "task_number"), "x-agx-item-number",
                        json_string("equal"));
    json_object_set_new(json_object_get(props, "input_from_task"), "x-agx-item-number",
                        json_string("below"));
    char *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

enum { C_START, C_STRUCT, C_ENUM, C_STRING, C_PENDING, C_N };
static const char *cat_names[C_N] = {"start", "structure (keys, numbers, punctuation)",
                                     "inside command enum", "inside an arg string",
                                     "string, mid-escape/UTF-8"};

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(int argc, char **argv) {
    const char *tok_path = NULL, *gguf_path = NULL;
    int plans = 20;
    uint64_t seed = 12345;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--gguf") && i + 1 < argc) gguf_path = argv[++i];
        else if (!strcmp(argv[i], "--plans") && i + 1 < argc) plans = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_grammar [--gguf vocab.gguf | --tokenizer tokenizer.json] "
                            "[--plans N] [--seed S]\n");
            return 2;
        }
    }
    const char *ref = getenv("AGX_REF_DIR");
    char def[1024];
    vocab_src vs = {0};
    if (!tok_path && !gguf_path) {
        snprintf(def, sizeof def, "%s/tokenizer/qwen2.vocab.gguf", ref ? ref : "/work/shared/ref");
        gguf_path = def;
    }
    if (gguf_path) {
        if (load_gguf(gguf_path, &vs)) return 1;
        printf("vocabulary: %s\n", gguf_path);
    } else {
        if (load_tokenizer_json(tok_path, &vs)) return 1;
        printf("vocabulary: %s\n", tok_path);
    }

    char *schema = plan_schema();
    if (!schema) {
        fprintf(stderr, "bench_grammar: cannot build the plan schema\n");
        return 1;
    }
    agx_registry reg;
    agx_error rerr;
    size_t n_tools = agx_registry_builtin(&reg, &rerr) == AGX_OK ? reg.count : 0;
    if (n_tools) agx_registry_free(&reg);
    printf("plan schema: built-in registry (%zu tools), 20 tasks, 16 args of <= 256 chars\n",
           n_tools);

    agx_error err;
    agx_grammar *g;
    double t0 = 0;
    for (int rep = 0; rep < 2; rep++) { /* the first run pays jansson's one-time setup */
        t0 = now_us();
        if (agx_grammar_compile(schema, strlen(schema), &g, &err)) {
            fprintf(stderr, "compile: %s\n", err.message);
            return 1;
        }
        if (rep == 0) agx_grammar_free(g);
    }
    double t1 = now_us();
    agx_grammar_vocab *v;
    if (agx_grammar_vocab_new((const char *const *)vs.bytes, vs.lens, vs.n, vs.eog, vs.n_eog, &v,
                              &err)) {
        fprintf(stderr, "vocab: %s\n", err.message);
        return 1;
    }
    double t2 = now_us();
    printf("schema compile: %.1f us; vocab trie build (%zu tokens): %.1f ms\n", t1 - t0, vs.n,
           (t2 - t1) / 1e3);

    size_t cap = 200000;
    double *samples[C_N];
    size_t ns[C_N] = {0};
    for (int c = 0; c < C_N; c++) samples[c] = malloc(cap * sizeof(double));
    double forced_us = 0, comp_us = 0, allowed_us = 0;
    size_t allowed_calls = 0;
    size_t forced_calls = 0, forced_bytes = 0, sampled = 0, total_bytes = 0, comp_calls = 0;
    uint8_t *allowed = malloc(vs.n);
    size_t *ids = malloc(vs.n * sizeof *ids);
    uint64_t rng = seed ? seed : 1;
    for (int p = 0; p < plans; p++) {
        agx_grammar_state *st = agx_grammar_state_new(g);
        int budget = 150 + (int)(rnd(&rng) % 300);
        int masks = 0;
        for (int step = 0;; step++) {
            if (agx_grammar_is_complete(st)) break;
            char fb[512];
            double f0 = now_us();
            size_t nf = agx_grammar_forced(st, fb, sizeof fb);
            forced_us += now_us() - f0;
            forced_calls++;
            if (nf) {
                agx_grammar_accept(st, fb, nf);
                forced_bytes += nf;
                total_bytes += nf;
                continue;
            }
            double c0 = now_us();
            size_t mb = agx_grammar_min_bytes_to_complete(st);
            comp_us += now_us() - c0;
            comp_calls++;
            if (step > budget) { /* budget spent: close the plan */
                char cb[8192];
                size_t cl = agx_grammar_shortest_completion(st, cb, sizeof cb);
                if (cl != mb || cl > sizeof cb || !agx_grammar_accept(st, cb, cl)) {
                    fprintf(stderr, "completion failed\n");
                    return 1;
                }
                total_bytes += cl;
                break;
            }
            int cat;
            uint32_t rem;
            const gr_frame *top = st->core.depth ? &st->core.f[st->core.depth - 1] : NULL;
            if (masks++ == 0) cat = C_START;
            else if (gr_in_string_body(g, &st->core, &rem)) cat = C_STRING;
            else if (top && g->nodes[top->node].kind == GR_LITERAL) cat = C_ENUM;
            else if (top && g->nodes[top->node].kind == GR_STRING) cat = C_PENDING;
            else cat = C_STRUCT;
            size_t n_allowed;
            double m0 = now_us();
            agx_grammar_mask(st, v, allowed, &n_allowed, &err);
            double dt = now_us() - m0;
            if (ns[cat] < cap) samples[cat][ns[cat]++] = dt;
            size_t k = 0;
            for (size_t i = 0; i < vs.n; i++)
                if (allowed[i]) ids[k++] = i;
            if (k == 0) {
                fprintf(stderr, "empty mask\n");
                return 1;
            }
            /* mostly uniform; sometimes prefer a token that closes or separates,
             * so that plans have several tasks and arguments */
            size_t pick = ids[rnd(&rng) % k];
            if (rnd(&rng) % 4 == 0) {
                for (int tries = 0; tries < 64; tries++) {
                    size_t c = ids[rnd(&rng) % k];
                    if (vs.bytes[c] && memchr(vs.bytes[c], '"', vs.lens[c])) {
                        pick = c;
                        break;
                    }
                }
            }
            double a0 = now_us();
            bool ok1 = agx_grammar_token_allowed(st, v, (int32_t)pick);
            allowed_us += now_us() - a0;
            allowed_calls++;
            if (!ok1) {
                fprintf(stderr, "token_allowed disagrees with the mask\n");
                return 1;
            }
            if (agx_grammar_vocab_is_eog(v, (int32_t)pick)) break;
            if (!agx_grammar_accept_token(st, v, (int32_t)pick)) {
                fprintf(stderr, "allowed token %zu rejected\n", pick);
                return 1;
            }
            sampled++;
            total_bytes += vs.lens[pick];
        }
        agx_grammar_state_free(st);
    }
    printf("%d plans, %zu sampled tokens, %zu forced bytes of %zu output bytes (%.0f%%)\n", plans,
           sampled, forced_bytes, total_bytes, 100.0 * (double)forced_bytes / (double)total_bytes);
    printf("%-42s %8s %10s %10s %10s %10s\n", "mask time per step", "steps", "median us",
           "mean us", "p99 us", "max us");
    double all_sum = 0;
    size_t all_n = 0;
    for (int c = 0; c < C_N; c++) {
        if (!ns[c]) continue;
        qsort(samples[c], ns[c], sizeof(double), cmp_d);
        double sum = 0;
        for (size_t i = 0; i < ns[c]; i++) sum += samples[c][i];
        all_sum += sum;
        all_n += ns[c];
        printf("%-42s %8zu %10.1f %10.1f %10.1f %10.1f\n", cat_names[c], ns[c],
               samples[c][ns[c] / 2], sum / (double)ns[c],
               samples[c][(size_t)((double)ns[c] * 0.99)], samples[c][ns[c] - 1]);
    }
    printf("%-42s %8zu %10s %10.1f\n", "all mask steps", all_n, "", all_sum / (double)all_n);
    printf("forced-span probe: %.2f us per call (%zu calls); min_bytes_to_complete: %.2f us\n",
           forced_us / (double)forced_calls, forced_calls, comp_us / (double)comp_calls);
    printf("single-token check (agx_grammar_token_allowed): %.2f us per call\n",
           allowed_us / (double)allowed_calls);
    printf("overhead vs a 33 ms/token decode step (30 tok/s): %.2f%% (mean mask + probes)\n",
           100.0 * (all_sum / (double)all_n + forced_us / (double)forced_calls +
                    comp_us / (double)comp_calls) / 33000.0);
    /* share of a typical plan that the grammar forces (no sampling needed) */
    static const char *typical =
        "{\"tasks\":[{\"task_number\":1,\"command\":\"grep\",\"args\":[\"-rn\",\"TODO\","
        "\"src\"]},{\"task_number\":2,\"command\":\"cut\",\"args\":[\"-d:\",\"-f1\"],"
        "\"input_from_task\":1},{\"task_number\":3,\"command\":\"sort\",\"args\":[],"
        "\"input_from_task\":2},{\"task_number\":4,\"command\":\"uniq\",\"args\":[\"-c\"],"
        "\"input_from_task\":3},{\"task_number\":5,\"command\":\"sort\",\"args\":[\"-rn\"],"
        "\"input_from_task\":4}]}";
    agx_grammar_state *ts = agx_grammar_state_new(g);
    size_t tl = strlen(typical), forced_typ = 0;
    for (size_t i = 0; i < tl;) {
        char fb[512];
        size_t nf = agx_grammar_forced(ts, fb, sizeof fb);
        if (nf) {
            if (memcmp(fb, typical + i, nf) != 0 || !agx_grammar_accept(ts, fb, nf)) {
                fprintf(stderr, "typical plan disagrees with forced span at %zu\n", i);
                return 1;
            }
            forced_typ += nf;
            i += nf;
        } else if (!agx_grammar_accept(ts, typical + i++, 1)) {
            fprintf(stderr, "typical plan rejected at byte %zu\n", i - 1);
            return 1;
        }
    }
    printf("typical 5-task plan: %zu of %zu bytes forced (%.0f%%)\n", forced_typ, tl,
           100.0 * (double)forced_typ / (double)tl);
    /* the same plan in tokens: forced spans as agx_grammar_forced_tokens splits
     * them, the rest as a model that picks the longest allowed token matching
     * the text would */
    agx_grammar_state_reset(ts);
    size_t tok_forced = 0, tok_sampled = 0;
    for (size_t i = 0; i < tl;) {
        int32_t ft[512];
        size_t fbytes;
        size_t nt = agx_grammar_forced_tokens(ts, v, ft, 512, &fbytes);
        if (nt) {
            for (size_t q = 0; q < nt; q++) agx_grammar_accept_token(ts, v, ft[q]);
            tok_forced += nt;
            i += fbytes;
            continue;
        }
        size_t na;
        agx_grammar_mask(ts, v, allowed, &na, &err);
        size_t best = SIZE_MAX, bl = 0;
        for (size_t t = 0; t < vs.n; t++)
            if (allowed[t] && vs.lens[t] > bl && vs.lens[t] <= tl - i &&
                memcmp(vs.bytes[t], typical + i, vs.lens[t]) == 0)
                best = t, bl = vs.lens[t];
        if (best == SIZE_MAX || !agx_grammar_accept_token(ts, v, (int32_t)best)) {
            fprintf(stderr, "typical plan: no allowed token at byte %zu\n", i);
            return 1;
        }
        tok_sampled++;
        i += bl;
    }
    printf("typical 5-task plan: %zu of %zu tokens forced (%.0f%%)\n", tok_forced,
           tok_forced + tok_sampled, 100.0 * (double)tok_forced / (double)(tok_forced + tok_sampled));
    agx_grammar_state_free(ts);
    for (int c = 0; c < C_N; c++) free(samples[c]);
    free(allowed);
    free(ids);
    agx_grammar_vocab_free(v);
    agx_grammar_free(g);
    free(schema);
    for (size_t i = 0; i < vs.n; i++) free(vs.bytes[i]);
    free(vs.bytes);
    free(vs.lens);
    return 0;
}
