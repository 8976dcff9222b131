/* agx_gen_model.c — synthetic GGUF generator: writes a llama / qwen2 /
 * Mistral-Nemo-shaped model with seeded random weights (N(0, std) per role, as
 * the reference models), a consistent byte-level BPE vocabulary (or the
 * tokenizer of another GGUF) at any supported tensor type, including llama.cpp's
 * Q3_K_M / Q4_K_M / Q5_K_M mixing rules. Weights are generated and quantized in row
 * chunks on several threads and streamed to a temp file renamed into place. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agx/agx.h"
#include "agx/arch.h"
#include "agx/gguf.h"
#include "agx/quant.h"

/* ------------------------------------------------------------------ config */

typedef enum { MIX_NONE, MIX_Q4_K_M, MIX_Q5_K_M, MIX_Q3_K_M } mix_kind;

typedef struct cfg {
    const char *name;
    agx_arch arch;
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, ctx;
    bool explicit_head_dim;   /* write attention.key_length/value_length */
    bool tied, qkv_bias;
    float rope_base, rms_eps;
    uint32_t base_type;
    mix_kind mix;
    int ftype;                /* general.file_type, -1 = omit */
    bool pure;                /* no output/attn_v/ffn_down overrides */
    bool rope_llama3;         /* write rope_freqs.weight (Llama 3.1 rope scaling) */
    float rope_linear;        /* > 0: rope.scaling.type linear with this factor */
    uint64_t seed;
    const char *vocab_from;
    const char *out;
    int threads;
    bool quiet;
} cfg;

typedef struct preset {
    const char *name;
    agx_arch arch;
    uint32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, ctx;
    bool tied;
    float rope_base, rms_eps;
} preset;

/* head_dim 0 = n_embd / n_head (no explicit key_length) */
static const preset presets[] = {
    {"qwen2.5-1.5b", AGX_ARCH_QWEN2, 1536, 28, 12, 2, 0, 8960, 151936, 32768, true, 1e6f, 1e-6f},
    {"qwen2.5-0.5b", AGX_ARCH_QWEN2, 896, 24, 14, 2, 0, 4864, 151936, 32768, true, 1e6f, 1e-6f},
    {"mistral-nemo-12b", AGX_ARCH_LLAMA, 5120, 40, 32, 8, 128, 14336, 131072, 1024000, false, 1e6f, 1e-5f},
    {"tiny-llama", AGX_ARCH_LLAMA, 256, 2, 8, 4, 0, 512, 768, 2048, false, 5e5f, 1e-5f},
    {"tiny-qwen2", AGX_ARCH_QWEN2, 256, 2, 4, 2, 0, 512, 768, 2048, true, 1e6f, 1e-6f},
    {"tiny-nemo", AGX_ARCH_LLAMA, 512, 2, 8, 2, 32, 512, 768, 4096, false, 1e6f, 1e-5f},
};

static const struct {
    const char *name;
    uint32_t type;
    mix_kind mix;
    int ftype;   /* llama.cpp llama_ftype, -1 when no exact equivalent */
} type_names[] = {
    {"f32", AGX_TYPE_F32, MIX_NONE, 0},       {"f16", AGX_TYPE_F16, MIX_NONE, 1},
    {"bf16", AGX_TYPE_BF16, MIX_NONE, 32},    {"q4_0", AGX_TYPE_Q4_0, MIX_NONE, 2},
    {"q4_1", AGX_TYPE_Q4_1, MIX_NONE, 3},     {"q5_0", AGX_TYPE_Q5_0, MIX_NONE, 8},
    {"q5_1", AGX_TYPE_Q5_1, MIX_NONE, 9},     {"q8_0", AGX_TYPE_Q8_0, MIX_NONE, 7},
    {"q4_K", AGX_TYPE_Q4_K, MIX_NONE, -1},    {"q5_K", AGX_TYPE_Q5_K, MIX_NONE, -1},
    {"q6_K", AGX_TYPE_Q6_K, MIX_NONE, 18},    {"q4_K_M", AGX_TYPE_Q4_K, MIX_Q4_K_M, 15},
    {"q5_K_M", AGX_TYPE_Q5_K, MIX_Q5_K_M, 17},
    {"q2_K", AGX_TYPE_Q2_K, MIX_NONE, -1},    {"q3_K", AGX_TYPE_Q3_K, MIX_NONE, -1},
    {"q3_K_M", AGX_TYPE_Q3_K, MIX_Q3_K_M, 12},
};

/* ------------------------------------------------------------------ random */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fills n N(mean, std) values; the stream depends only on (seed, tensor, row)
 * so the weights are the same for every thread count and every output type. */
static void gen_row(uint64_t seed, uint32_t tensor, uint64_t row, float mean, float std, float *out, int64_t n) {
    uint64_t s = seed ^ ((uint64_t)tensor * 0xd1342543de82ef95ull) ^ (row * 0x2545f4914f6cdd1dull);
    splitmix64(&s);
    /* Marsaglia's polar method in float: no trig, ~2x faster than Box-Muller,
     * which dominates the generation time of GB-sized files. */
    for (int64_t i = 0; i < n; i += 2) {
        float x, y, q;
        do {
            uint64_t r = splitmix64(&s);
            x = (float)(int32_t)(uint32_t)(r >> 32) * (1.0f / 2147483648.0f);
            y = (float)(int32_t)(uint32_t)r * (1.0f / 2147483648.0f);
            q = x * x + y * y;
        } while (q >= 1.0f || q == 0.0f);
        float f = sqrtf(-2.0f * logf(q) / q);
        out[i] = mean + std * x * f;
        if (i + 1 < n) out[i + 1] = mean + std * y * f;
    }
}

/* -------------------------------------------------------- tensor planning */

typedef struct gtensor {
    char name[96];
    agx_tensor_role role;
    int layer;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[2];
    float mean, std;
} gtensor;

/* llama.cpp's use_more_bits(): first/last eighth and every third layer between. */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static float role_std(const cfg *c, agx_tensor_role r) {
    bool q = c->arch == AGX_ARCH_QWEN2;
    switch (r) {
    case AGX_TENSOR_TOKEN_EMBD: return q ? 0.25f : 0.1f;
    case AGX_TENSOR_OUTPUT: return 0.5f;
    case AGX_TENSOR_ATTN_Q:
    case AGX_TENSOR_ATTN_K: return 0.04f;
    case AGX_TENSOR_ATTN_V: return q ? 0.05f : 0.04f;
    case AGX_TENSOR_ATTN_OUT: return q ? 0.1f : 0.06f;
    case AGX_TENSOR_FFN_GATE:
    case AGX_TENSOR_FFN_UP: return q ? 0.05f : 0.04f;
    case AGX_TENSOR_FFN_DOWN: return q ? 0.1f : 0.06f;
    case AGX_TENSOR_ATTN_Q_BIAS:
    case AGX_TENSOR_ATTN_K_BIAS:
    case AGX_TENSOR_ATTN_V_BIAS: return 0.02f;
    default: return 0.05f;   /* norms: 1 + N(0, 0.05) */
    }
}

/* Which layers a mix rule covers (llama_tensor_get_type's layer tests). */
typedef enum { LAYERS_ALL, LAYERS_MORE_BITS, LAYERS_FIRST_2, LAYERS_FIRST_16TH } layer_set;

static bool in_layers(layer_set s, int i, int n) {
    switch (s) {
    case LAYERS_MORE_BITS: return use_more_bits(i, n);
    case LAYERS_FIRST_2: return i < 2;
    case LAYERS_FIRST_16TH: return i < n / 16;
    default: return true;
    }
}

/* llama.cpp's per-role overrides of the mixes (non-Falcon, no experts, not
 * 70B): the first rule matching (mix, role, layer) sets the type. */
static const struct {
    mix_kind mix;
    agx_tensor_role role;
    layer_set layers;
    uint32_t type;
} mix_rules[] = {
    {MIX_Q4_K_M, AGX_TENSOR_ATTN_V, LAYERS_MORE_BITS, AGX_TYPE_Q6_K},
    {MIX_Q4_K_M, AGX_TENSOR_FFN_DOWN, LAYERS_MORE_BITS, AGX_TYPE_Q6_K},
    {MIX_Q5_K_M, AGX_TENSOR_ATTN_V, LAYERS_MORE_BITS, AGX_TYPE_Q6_K},
    {MIX_Q5_K_M, AGX_TENSOR_FFN_DOWN, LAYERS_MORE_BITS, AGX_TYPE_Q6_K},
    {MIX_Q3_K_M, AGX_TENSOR_ATTN_V, LAYERS_FIRST_2, AGX_TYPE_Q5_K},
    {MIX_Q3_K_M, AGX_TENSOR_ATTN_V, LAYERS_ALL, AGX_TYPE_Q4_K},
    {MIX_Q3_K_M, AGX_TENSOR_FFN_DOWN, LAYERS_FIRST_16TH, AGX_TYPE_Q5_K},
    {MIX_Q3_K_M, AGX_TENSOR_FFN_DOWN, LAYERS_ALL, AGX_TYPE_Q4_K},
    {MIX_Q3_K_M, AGX_TENSOR_ATTN_OUT, LAYERS_ALL, AGX_TYPE_Q4_K},
};

/* The tensor type llama.cpp's quantizer would pick (llama_tensor_get_type). */
static uint32_t pick_type(const cfg *c, const gtensor *t) {
    if (t->n_dims == 1) return AGX_TYPE_F32;
    uint32_t ty = c->base_type;
    const agx_type_traits *tr = agx_type_traits_get(ty);
    bool quantized = tr && tr->is_quantized;
    int64_t nx = t->ne[0];
    if (quantized && !c->pure) {
        bool is_output = t->role == AGX_TENSOR_OUTPUT || (t->role == AGX_TENSOR_TOKEN_EMBD && c->tied);
        if (is_output) {
            if (nx % 256 != 0) return AGX_TYPE_Q8_0;
            if (ty != AGX_TYPE_Q8_0) ty = AGX_TYPE_Q6_K;
        } else {
            for (size_t k = 0; k < sizeof mix_rules / sizeof mix_rules[0]; k++)
                if (mix_rules[k].mix == c->mix && mix_rules[k].role == t->role &&
                    in_layers(mix_rules[k].layers, t->layer, (int)c->n_layer)) {
                    ty = mix_rules[k].type;
                    break;
                }
        }
    }
    /* rows that are not a multiple of the k-quant block: llama.cpp's fallbacks */
    if (nx % 256 != 0) {
        if (ty == AGX_TYPE_Q4_K) ty = AGX_TYPE_Q5_0;
        else if (ty == AGX_TYPE_Q5_K) ty = AGX_TYPE_Q5_1;
        else if (ty == AGX_TYPE_Q6_K) ty = AGX_TYPE_Q8_0;
        /* llama.cpp now uses iq4_nl here, which agx does not have; q4_0 was its
         * fallback before iq4_nl existed */
        else if (ty == AGX_TYPE_Q2_K || ty == AGX_TYPE_Q3_K) ty = AGX_TYPE_Q4_0;
    }
    if (agx_type_row_size(ty, nx) == 0) ty = AGX_TYPE_F16;
    return ty;
}

static void add_t(gtensor *ts, size_t *n, const cfg *c, agx_tensor_role role, int layer, uint32_t n_dims, int64_t ne0,
                  int64_t ne1) {
    gtensor *t = &ts[(*n)++];
    memset(t, 0, sizeof *t);
    agx_tensor_name(role, layer, t->name, sizeof t->name);
    t->role = role;
    t->layer = layer;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->std = role_std(c, role);
    bool norm = role == AGX_TENSOR_ATTN_NORM || role == AGX_TENSOR_FFN_NORM || role == AGX_TENSOR_OUTPUT_NORM;
    t->mean = norm ? 1.0f : 0.0f;
    t->type = pick_type(c, t);
}

static size_t plan_tensors(const cfg *c, gtensor *ts) {
    size_t n = 0;
    int64_t E = c->n_embd, q = (int64_t)c->n_head * c->head_dim, kv = (int64_t)c->n_head_kv * c->head_dim;
    add_t(ts, &n, c, AGX_TENSOR_TOKEN_EMBD, 0, 2, E, c->n_vocab);
    if (c->rope_llama3) add_t(ts, &n, c, AGX_TENSOR_ROPE_FREQS, 0, 1, c->head_dim / 2, 1);
    for (uint32_t l = 0; l < c->n_layer; l++) {
        int L = (int)l;
        add_t(ts, &n, c, AGX_TENSOR_ATTN_NORM, L, 1, E, 1);
        add_t(ts, &n, c, AGX_TENSOR_ATTN_Q, L, 2, E, q);
        add_t(ts, &n, c, AGX_TENSOR_ATTN_K, L, 2, E, kv);
        add_t(ts, &n, c, AGX_TENSOR_ATTN_V, L, 2, E, kv);
        if (c->qkv_bias) {
            add_t(ts, &n, c, AGX_TENSOR_ATTN_Q_BIAS, L, 1, q, 1);
            add_t(ts, &n, c, AGX_TENSOR_ATTN_K_BIAS, L, 1, kv, 1);
            add_t(ts, &n, c, AGX_TENSOR_ATTN_V_BIAS, L, 1, kv, 1);
        }
        add_t(ts, &n, c, AGX_TENSOR_ATTN_OUT, L, 2, q, E);
        add_t(ts, &n, c, AGX_TENSOR_FFN_NORM, L, 1, E, 1);
        add_t(ts, &n, c, AGX_TENSOR_FFN_GATE, L, 2, E, c->n_ff);
        add_t(ts, &n, c, AGX_TENSOR_FFN_UP, L, 2, E, c->n_ff);
        add_t(ts, &n, c, AGX_TENSOR_FFN_DOWN, L, 2, c->n_ff, E);
    }
    add_t(ts, &n, c, AGX_TENSOR_OUTPUT_NORM, 0, 1, E, 1);
    if (!c->tied) add_t(ts, &n, c, AGX_TENSOR_OUTPUT, 0, 2, E, c->n_vocab);
    return n;
}

/* ------------------------------------------------------------- vocabulary */

/* GPT-2 byte -> unicode code point (printable bytes map to themselves). */
static void byte_to_unicode(uint32_t cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
    }
}

static int utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

typedef struct vocab {
    char **tok;
    size_t n, cap;
    char **merges;
    size_t n_merges, cap_merges;
    uint32_t *set;   /* open addressing over tok (index + 1) */
    size_t set_cap;
} vocab;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static long vocab_find(const vocab *v, const char *s) {
    size_t h = (size_t)str_hash(s) & (v->set_cap - 1);
    while (v->set[h]) {
        if (strcmp(v->tok[v->set[h] - 1], s) == 0) return (long)(v->set[h] - 1);
        h = (h + 1) & (v->set_cap - 1);
    }
    return -1;
}

static bool vocab_add(vocab *v, char *s) {   /* takes ownership */
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->tok = realloc(v->tok, v->cap * sizeof *v->tok);
        if (!v->tok) return false;
    }
    size_t h = (size_t)str_hash(s) & (v->set_cap - 1);
    while (v->set[h]) h = (h + 1) & (v->set_cap - 1);
    v->set[h] = (uint32_t)(v->n + 1);
    v->tok[v->n++] = s;
    return true;
}

static bool vocab_merge(vocab *v, long a, long b) {
    char *m = agx_sprintf("%s%s", v->tok[a], v->tok[b]);
    char *r = agx_sprintf("%s %s", v->tok[a], v->tok[b]);
    if (!m || !r) return false;
    if (v->n_merges == v->cap_merges) {
        v->cap_merges = v->cap_merges ? v->cap_merges * 2 : 1024;
        v->merges = realloc(v->merges, v->cap_merges * sizeof *v->merges);
        if (!v->merges) return false;
    }
    v->merges[v->n_merges++] = r;
    return vocab_add(v, m);
}

/* A small built-in text for BPE training, so the first merges look like a real
 * tokenizer's (" the", "ing", "file", ...). */
static const char *const corpus =
    "You are a helpful coding assistant. Answer briefly.\n"
    "List all Rust files in this project and count the lines in each one.\n"
    "find all TODO comments under src and count them per file\n"
    "grep -rn TODO src | cut -d: -f1 | sort | uniq -c | sort -rn\n"
    "find . -name '*.rs' -type f -exec wc -l {} +\n"
    "The quick brown fox jumps over the lazy dog. The dog is sleeping in the sun.\n"
    "Show the largest files in the current directory and sort them by size.\n"
    "for file in $(ls *.txt); do echo \"$file\"; cat \"$file\" | head -n 10; done\n"
    "def main():\n    print(\"hello world\")\n    return 0\n\nif __name__ == \"__main__\":\n    main()\n"
    "int main(int argc, char **argv) { printf(\"%d\\n\", argc); return 0; }\n"
    "The user wants to search the repository for a string and replace it in every file.\n"
    "Count the number of words, lines and characters in the input and print the totals.\n"
    "{\"tool\": \"grep\", \"args\": [\"-rn\", \"pattern\", \"src\"], \"description\": \"search files\"}\n"
    "Please read the configuration file, check the settings and report any errors that you find.\n"
    "the of and to in is that for it as was with be by on not he this are or his from at which\n"
    "function return value string number array object true false null undefined import export\n";

typedef struct word {
    long *sym;
    size_t n;
    int count;
} word;

static void train_bpe(vocab *v, const uint32_t cp[256], size_t max_tokens) {
    /* pre-split: optional leading space + letters | digits | other runs | newlines */
    word *words = NULL;
    size_t n_words = 0;
    const char *p = corpus;
    while (*p) {
        const char *s = p;
        if (*p == ' ') p++;
        if (*p >= 'a' && *p <= 'z') while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
        else if ((*p >= 'A' && *p <= 'Z')) while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
        else if (*p >= '0' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
        else if (*p == '\n') while (*p == '\n') p++;
        else if (*p) p++;
        size_t len = (size_t)(p - s);
        if (!len) continue;
        /* merge identical words */
        size_t w;
        for (w = 0; w < n_words; w++) {
            if (words[w].n != len) continue;
            size_t k;
            for (k = 0; k < len && words[w].sym[k] == (long)(uint8_t)s[k]; k++) {}
            if (k == len) break;
        }
        if (w < n_words) {
            words[w].count++;
            continue;
        }
        words = realloc(words, (n_words + 1) * sizeof *words);
        words[n_words].sym = malloc(len * sizeof(long));
        for (size_t k = 0; k < len; k++) words[n_words].sym[k] = (uint8_t)s[k];
        words[n_words].n = len;
        words[n_words].count = 1;
        n_words++;
    }
    (void)cp;
    while (v->n < max_tokens) {
        /* most frequent adjacent pair (ties: first seen) */
        long best_a = -1, best_b = -1;
        int best = 1;
        for (size_t w = 0; w < n_words; w++)
            for (size_t k = 0; k + 1 < words[w].n; k++) {
                long a = words[w].sym[k], b = words[w].sym[k + 1];
                if (a == best_a && b == best_b) continue;
                int cnt = 0;
                for (size_t w2 = 0; w2 < n_words; w2++)
                    for (size_t k2 = 0; k2 + 1 < words[w2].n; k2++)
                        if (words[w2].sym[k2] == a && words[w2].sym[k2 + 1] == b) cnt += words[w2].count;
                if (cnt > best) {
                    best = cnt;
                    best_a = a;
                    best_b = b;
                }
            }
        if (best_a < 0) break;
        char *m = agx_sprintf("%s%s", v->tok[best_a], v->tok[best_b]);
        long id = vocab_find(v, m);
        free(m);
        if (id < 0) {
            vocab_merge(v, best_a, best_b);
            id = (long)v->n - 1;
        }
        for (size_t w = 0; w < n_words; w++) {
            size_t o = 0;
            for (size_t k = 0; k < words[w].n; k++) {
                if (k + 1 < words[w].n && words[w].sym[k] == best_a && words[w].sym[k + 1] == best_b) {
                    words[w].sym[o++] = id;
                    k++;
                } else {
                    words[w].sym[o++] = words[w].sym[k];
                }
            }
            words[w].n = o;
        }
    }
    for (size_t w = 0; w < n_words; w++) free(words[w].sym);
    free(words);
}

static const char *const chatml_template =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

static agx_status add_synthetic_vocab(agx_gguf_writer *w, const cfg *c, agx_error *err) {
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    size_t n_regular = c->n_vocab - 3;
    vocab v = {0};
    v.set_cap = 1024;
    while (v.set_cap < (size_t)c->n_vocab * 2) v.set_cap <<= 1;
    v.set = calloc(v.set_cap, sizeof *v.set);
    uint32_t cp[256];
    byte_to_unicode(cp);
    for (int b = 0; b < 256; b++) {
        char buf[4] = {0};
        utf8_put(buf, cp[b]);
        vocab_add(&v, agx_strdup(buf));
    }
    train_bpe(&v, cp, n_regular < 1024 ? n_regular : 1024);
    /* Fill the rest deterministically: token i + a letter/space byte, skipping
     * strings that already exist; each new token is one merge of two tokens. */
    static const char fill_bytes[] = "etaoinshrdlucmfwypvbgkjqxz";
    for (size_t i = 256; v.n < n_regular && i < v.n; i++)
        for (const char *fb = fill_bytes; *fb && v.n < n_regular; fb++) {
            long b = (long)(uint8_t)*fb;
            char *m = agx_sprintf("%s%s", v.tok[i], v.tok[b]);
            bool exists = vocab_find(&v, m) >= 0;
            free(m);
            if (!exists) vocab_merge(&v, (long)i, b);
        }
    for (int s = 0; s < 3; s++) vocab_add(&v, agx_strdup(specials[s]));
    int32_t *types = malloc(v.n * sizeof *types);
    for (size_t i = 0; i < v.n; i++) types[i] = i < n_regular ? 1 : 3;   /* NORMAL / CONTROL */
    agx_status s = AGX_OK;
    if (v.n != c->n_vocab) s = agx_error_set(err, AGX_ERR_ENGINE, "vocabulary generation produced %zu tokens, wanted %u", v.n, c->n_vocab);
    if (!s) s = agx_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (!s) s = agx_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen2", err);
    if (!s) s = agx_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v.tok, v.n, err);
    if (!s) s = agx_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", types, v.n, err);
    if (!s) s = agx_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)v.merges, v.n_merges, err);
    if (!s) s = agx_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n_regular, err);
    if (!s) s = agx_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n_regular + 2, err);
    if (!s) s = agx_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)n_regular + 2, err);
    if (!s) s = agx_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)n_regular, err);
    if (!s) s = agx_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", false, err);
    if (!s) s = agx_gguf_writer_add_str(w, "tokenizer.chat_template", chatml_template, err);
    for (size_t i = 0; i < v.n; i++) free(v.tok[i]);
    for (size_t i = 0; i < v.n_merges; i++) free(v.merges[i]);
    free(v.tok);
    free(v.merges);
    free(v.set);
    free(types);
    return s;
}

/* ---------------------------------------------------------------- weights */

/* Llama 3.1 rope frequency factors exactly as llama.cpp's converter computes
 * them (factor 8, low_freq_factor 1, high_freq_factor 4, original context 8192). */
static void llama3_rope_factors(const cfg *c, float *out, int64_t n) {
    const double factor = 8.0, lo = 1.0, hi = 4.0, old_ctx = 8192.0;
    const double lo_wavelen = old_ctx / lo, hi_wavelen = old_ctx / hi;
    const double pi = 3.14159265358979323846;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow((double)c->rope_base, (double)(2 * i) / (double)c->head_dim);
        double wavelen = 2.0 * pi / freq;
        if (wavelen < hi_wavelen) out[i] = 1.0f;
        else if (wavelen > lo_wavelen) out[i] = (float)factor;
        else {
            double smooth = (old_ctx / wavelen - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}

typedef struct job {
    const cfg *c;
    const gtensor *t;
    uint32_t tensor_id;
    int64_t row0, n_rows;
    uint8_t *out;
    size_t row_size;
    int ith, nth;
} job;

static void *job_run(void *arg) {
    job *j = arg;
    const agx_type_traits *tr = agx_type_traits_get(j->t->type);
    int64_t n = j->t->ne[0];
    float *row = malloc((size_t)n * sizeof *row);
    if (!row) return (void *)1;
    for (int64_t r = j->ith; r < j->n_rows; r += j->nth) {
        if (j->t->role == AGX_TENSOR_ROPE_FREQS) llama3_rope_factors(j->c, row, n);
        else gen_row(j->c->seed, j->tensor_id, (uint64_t)(j->row0 + r), j->t->mean, j->t->std, row, n);
        tr->from_float_ref(row, j->out + (size_t)r * j->row_size, n);
    }
    free(row);
    return NULL;
}

static agx_status write_weights(agx_gguf_writer *w, const cfg *c, const gtensor *ts, size_t n_t, agx_error *err) {
    int nth = c->threads > 0 ? c->threads : 1;
    size_t buf_cap = 0;
    uint8_t *buf = NULL;
    for (size_t i = 0; i < n_t; i++) {
        const gtensor *t = &ts[i];
        size_t rs = agx_type_row_size(t->type, t->ne[0]);
        int64_t rows = t->ne[1];
        /* ~16 MB of f32 input per chunk keeps memory flat for GB-sized files */
        int64_t chunk = (int64_t)((16u << 20) / ((size_t)t->ne[0] * 4));
        if (chunk < 1) chunk = 1;
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
            size_t need = (size_t)nr * rs;
            if (need > buf_cap) {
                free(buf);
                buf_cap = need;
                buf = malloc(buf_cap);
                if (!buf) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
            }
            pthread_t tid[64];
            job jobs[64];
            int k = nth > 64 ? 64 : nth;
            if (nr < k) k = (int)nr;
            for (int ti = 0; ti < k; ti++) {
                jobs[ti] = (job){c, t, (uint32_t)i, r0, nr, buf, rs, ti, k};
                if (ti > 0 && pthread_create(&tid[ti], NULL, job_run, &jobs[ti]) != 0) k = ti;
            }
            void *r = job_run(&jobs[0]);
            bool failed = r != NULL;
            for (int ti = 1; ti < k; ti++) {
                pthread_join(tid[ti], &r);
                failed |= r != NULL;
            }
            if (failed) {
                free(buf);
                return agx_error_set(err, AGX_ERR_NOMEM, "out of memory generating '%s'", t->name);
            }
            agx_status s = agx_gguf_writer_stream_data(w, buf, need, err);
            if (s) {
                free(buf);
                return s;
            }
        }
        if (!c->quiet && n_t > 40 && (i % 20 == 19 || i + 1 == n_t))
            fprintf(stderr, "agx_gen_model: %zu/%zu tensors\n", i + 1, n_t);
    }
    free(buf);
    return AGX_OK;
}

/* ------------------------------------------------------------------- main */

static agx_status generate(cfg *c, agx_error *err) {
    agx_gguf *vsrc = NULL;
    agx_status s;
    if (c->vocab_from) {
        if ((s = agx_gguf_open(c->vocab_from, &vsrc, err))) return s;
        const agx_gguf_kv *toks = agx_gguf_find(vsrc, "tokenizer.ggml.tokens");
        if (!toks || toks->type != AGX_GGUF_ARRAY || toks->arr_len == 0 || toks->arr_len > UINT32_MAX) {
            agx_gguf_close(vsrc);
            return agx_error_set(err, AGX_ERR_LOAD, "'%s' has no tokenizer.ggml.tokens array", c->vocab_from);
        }
        c->n_vocab = (uint32_t)toks->arr_len;
    }
    if (c->n_vocab < 259 + 16) {
        agx_gguf_close(vsrc);
        return agx_error_set(err, AGX_ERR_USAGE, "--n-vocab must be at least 275 (256 bytes + merges + 3 specials)");
    }
    size_t max_t = 4 + (size_t)c->n_layer * 12;
    gtensor *ts = calloc(max_t, sizeof *ts);
    size_t n_t = plan_tensors(c, ts);
    for (size_t i = 0; i < n_t; i++)
        if (!agx_type_traits_get(ts[i].type)->from_float_ref) {
            s = agx_error_set(err, AGX_ERR_USAGE, "type %s has no quantizer in this build", agx_type_name(ts[i].type));
            free(ts);
            agx_gguf_close(vsrc);
            return s;
        }

    agx_gguf_writer *w = agx_gguf_writer_new();
    const char *an = agx_arch_get(c->arch)->name;
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", an, suffix), k)
    s = agx_gguf_writer_add_str(w, "general.architecture", an, err);
    if (!s) s = agx_gguf_writer_add_str(w, "general.name", c->name, err);
    if (!s && c->ftype >= 0) s = agx_gguf_writer_add_u32(w, "general.file_type", (uint32_t)c->ftype, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("context_length"), c->ctx, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("embedding_length"), c->n_embd, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("block_count"), c->n_layer, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("feed_forward_length"), c->n_ff, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("attention.head_count"), c->n_head, err);
    if (!s) s = agx_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), c->n_head_kv, err);
    if (!s && c->explicit_head_dim) s = agx_gguf_writer_add_u32(w, KEY("attention.key_length"), c->head_dim, err);
    if (!s && c->explicit_head_dim) s = agx_gguf_writer_add_u32(w, KEY("attention.value_length"), c->head_dim, err);
    if (!s && c->arch == AGX_ARCH_LLAMA) s = agx_gguf_writer_add_u32(w, KEY("rope.dimension_count"), c->head_dim, err);
    if (!s) s = agx_gguf_writer_add_f32(w, KEY("rope.freq_base"), c->rope_base, err);
    if (!s) s = agx_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps, err);
    if (!s && c->rope_linear > 0) s = agx_gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear", err);
    if (!s && c->rope_linear > 0) s = agx_gguf_writer_add_f32(w, KEY("rope.scaling.factor"), c->rope_linear, err);
    if (!s && c->arch == AGX_ARCH_LLAMA) s = agx_gguf_writer_add_u32(w, KEY("vocab_size"), c->n_vocab, err);
#undef KEY
    if (!s) s = vsrc ? agx_gguf_writer_copy_kvs(w, vsrc, "tokenizer.", err) : add_synthetic_vocab(w, c, err);
    agx_gguf_close(vsrc);
    for (size_t i = 0; !s && i < n_t; i++)
        s = agx_gguf_writer_add_tensor_info(w, ts[i].name, ts[i].type, ts[i].n_dims, ts[i].ne, err);
    if (!s) s = agx_gguf_writer_stream_begin(w, c->out, err);
    if (!s) s = write_weights(w, c, ts, n_t, err);
    if (!s) s = agx_gguf_writer_stream_commit(w, err);
    agx_gguf_writer_free(w);   /* aborts (removes the temp file) on failure */
    free(ts);
    return s;
}

static void usage(FILE *f) {
    fprintf(f,
            "Usage: agx_gen_model -o OUT.gguf [--preset NAME] [options]\n"
            "Presets: qwen2.5-1.5b, qwen2.5-0.5b, mistral-nemo-12b, tiny-llama, tiny-qwen2, tiny-nemo\n"
            "Options (override the preset):\n"
            "  --arch llama|qwen2     --n-embd N   --n-layer N   --n-head N   --n-head-kv N\n"
            "  --head-dim N (explicit attention.key_length, Mistral-Nemo style)   --n-ff N\n"
            "  --n-vocab N   --ctx N   --rope-base F   --rms-eps F   --tied | --untied\n"
            "  --qkv-bias | --no-qkv-bias (default: on for qwen2)\n"
            "  --type f32|f16|bf16|q4_0|q4_1|q5_0|q5_1|q8_0|q2_K|q3_K|q4_K|q5_K|q6_K|q3_K_M|q4_K_M|q5_K_M\n"
            "         (default f32)\n"
            "  --pure (no llama.cpp output/attn_v/ffn_down type overrides)\n"
            "  --rope-llama3 (rope_freqs.weight with Llama 3.1 factors; llama only)\n"
            "  --rope-linear F (rope.scaling.type linear, factor F)\n"
            "  --seed N (default 1)   --vocab-from FILE.gguf (copy tokenizer.* keys)\n"
            "  --threads N (default: all cores)   --name NAME   --quiet\n");
}

int main(int argc, char **argv) {
    cfg c = {0};
    const preset *p = &presets[3];   /* tiny-llama */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) {
            p = NULL;
            for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++)
                if (strcmp(presets[k].name, argv[i + 1]) == 0) p = &presets[k];
            if (!p) {
                fprintf(stderr, "agx_gen_model: unknown preset '%s'\n", argv[i + 1]);
                usage(stderr);
                return 2;
            }
        }
    c.name = p->name;
    c.arch = p->arch;
    c.n_embd = p->n_embd;
    c.n_layer = p->n_layer;
    c.n_head = p->n_head;
    c.n_head_kv = p->n_head_kv;
    c.head_dim = p->head_dim;
    c.n_ff = p->n_ff;
    c.n_vocab = p->n_vocab;
    c.ctx = p->ctx;
    c.tied = p->tied;
    c.rope_base = p->rope_base;
    c.rms_eps = p->rms_eps;
    c.base_type = AGX_TYPE_F32;
    c.ftype = 0;
    c.seed = 1;
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    c.threads = nproc > 0 ? (int)nproc : 1;
    int bias = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARGU(flag, field)                                         \
    if (strcmp(a, flag) == 0) {                                   \
        if (!v) goto missing;                                     \
        char *e;                                                  \
        unsigned long x = strtoul(v, &e, 10);                     \
        if (*e || x == 0 || x > UINT32_MAX) goto bad;             \
        field = (uint32_t)x;                                      \
        i++;                                                      \
        continue;                                                 \
    }
        ARGU("--n-embd", c.n_embd)
        ARGU("--n-layer", c.n_layer)
        ARGU("--n-head", c.n_head)
        ARGU("--n-head-kv", c.n_head_kv)
        ARGU("--n-ff", c.n_ff)
        ARGU("--n-vocab", c.n_vocab)
        ARGU("--ctx", c.ctx)
#undef ARGU
        if (strcmp(a, "--head-dim") == 0) {
            if (!v) goto missing;
            c.head_dim = (uint32_t)strtoul(v, NULL, 10);
            if (!c.head_dim) goto bad;
            i++;
        } else if (strcmp(a, "--preset") == 0) {
            i++;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            if (!v) goto missing;
            c.out = v;
            i++;
        } else if (strcmp(a, "--arch") == 0) {
            if (!v) goto missing;
            const agx_arch_info *ai = agx_arch_by_name(v);
            if (!ai) goto bad;
            c.arch = ai->arch;
            i++;
        } else if (strcmp(a, "--type") == 0) {
            if (!v) goto missing;
            size_t k;
            for (k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
                if (strcmp(type_names[k].name, v) == 0) break;
            if (k == sizeof type_names / sizeof type_names[0]) goto bad;
            c.base_type = type_names[k].type;
            c.mix = type_names[k].mix;
            c.ftype = type_names[k].ftype;
            i++;
        } else if (strcmp(a, "--rope-base") == 0 || strcmp(a, "--rms-eps") == 0) {
            if (!v) goto missing;
            char *e;
            float f = strtof(v, &e);
            if (*e || !(f > 0)) goto bad;
            if (a[2] == 'r' && a[3] == 'o') c.rope_base = f;
            else c.rms_eps = f;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            if (!v) goto missing;
            c.seed = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (!v) goto missing;
            c.threads = atoi(v);
            if (c.threads < 1) goto bad;
            i++;
        } else if (strcmp(a, "--vocab-from") == 0) {
            if (!v) goto missing;
            c.vocab_from = v;
            i++;
        } else if (strcmp(a, "--name") == 0) {
            if (!v) goto missing;
            c.name = v;
            i++;
        } else if (strcmp(a, "--tied") == 0) c.tied = true;
        else if (strcmp(a, "--untied") == 0) c.tied = false;
        else if (strcmp(a, "--qkv-bias") == 0) bias = 1;
        else if (strcmp(a, "--no-qkv-bias") == 0) bias = 0;
        else if (strcmp(a, "--pure") == 0) c.pure = true;
        else if (strcmp(a, "--rope-llama3") == 0) c.rope_llama3 = true;
        else if (strcmp(a, "--rope-linear") == 0) {
            if (!v) goto missing;
            char *e;
            c.rope_linear = strtof(v, &e);
            if (*e || !(c.rope_linear > 0)) goto bad;
            i++;
        }
        else if (strcmp(a, "--quiet") == 0) c.quiet = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "agx_gen_model: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "agx_gen_model: '%s' needs a value\n", a);
        return 2;
    bad:
        fprintf(stderr, "agx_gen_model: bad value '%s' for '%s'\n", v, a);
        return 2;
    }
    if (!c.out) {
        usage(stderr);
        return 2;
    }
    c.qkv_bias = bias >= 0 ? bias == 1 : c.arch == AGX_ARCH_QWEN2;
    if (c.head_dim) c.explicit_head_dim = c.head_dim * c.n_head != c.n_embd;
    else if (c.n_embd % c.n_head) {
        fprintf(stderr, "agx_gen_model: n_embd %u is not a multiple of n_head %u (give --head-dim)\n", c.n_embd, c.n_head);
        return 2;
    } else c.head_dim = c.n_embd / c.n_head;
    if (c.n_head % c.n_head_kv) {
        fprintf(stderr, "agx_gen_model: n_head %u is not a multiple of n_head_kv %u\n", c.n_head, c.n_head_kv);
        return 2;
    }
    if (c.rope_llama3 && c.arch != AGX_ARCH_LLAMA) {
        fprintf(stderr, "agx_gen_model: --rope-llama3 needs --arch llama\n");
        return 2;
    }
    if (c.arch == AGX_ARCH_QWEN2 && !c.qkv_bias) {
        fprintf(stderr, "agx_gen_model: qwen2 requires q/k/v biases\n");
        return 2;
    }
    if (c.n_embd % 32 || c.n_ff % 32 || (c.n_head * c.head_dim) % 32 || (c.n_head_kv * c.head_dim) % 32) {
        fprintf(stderr, "agx_gen_model: n_embd, n_ff and the q/kv widths must be multiples of 32\n");
        return 2;
    }
    int64_t t0 = agx_time_ms();
    agx_error err;
    agx_error_clear(&err);
    if (generate(&c, &err) != AGX_OK) {
        fprintf(stderr, "agx_gen_model: %s\n", err.message);
        return 1;
    }
    if (!c.quiet)
        fprintf(stderr, "agx_gen_model: wrote %s (%s, %u layers, vocab %u) in %.1f s with %d threads\n", c.out,
                agx_arch_get(c.arch)->name, c.n_layer, c.n_vocab, (double)(agx_time_ms() - t0) / 1000.0, c.threads);
    return 0;
}
