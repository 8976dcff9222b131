/* tokenizer.c — the tokenizer core: vocabulary tables (string map, merge-rank
 * map, added-token trie), encoding (added-token split -> normalize ->
 * pre-tokenize -> BPE / SentencePiece merges), decoding and the streaming
 * decoder, and the model-file entry point that picks GGUF or tokenizer.json.
 *
 * Algorithms follow the HF tokenizers library (the reference data):
 *  - byte-level BPE: each pre-token's bytes map to single-byte symbols, the
 *    pair of lowest merge rank (leftmost on ties) is merged until none is left;
 *    ignore_merges emits a pre-token that is itself in the vocabulary whole.
 *  - SentencePiece BPE from tokenizer.json: same merge loop over UTF-8
 *    characters, characters missing from the vocabulary fall back to <0xNN>.
 *  - SentencePiece from GGUF (no merge list): llama.cpp's loop, merging the
 *    adjacent pair whose concatenation has the highest score. */
#include "tokenizer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- hashing */

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n && c < (1u << 30)) c <<= 1;
    return c;
}

/* ---------------------------------------------------------------- tables */

agx_tokenizer *agx_tok_alloc(int32_t n_vocab) {
    if (n_vocab <= 0 || n_vocab > (1 << 24)) return NULL;
    agx_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n_vocab;
    t->text_off = calloc((size_t)n_vocab, sizeof *t->text_off);
    t->text_len = calloc((size_t)n_vocab, sizeof *t->text_len);
    t->type = calloc((size_t)n_vocab, 1);
    t->special = calloc((size_t)n_vocab, 1);
    t->skip = calloc((size_t)n_vocab, 1);
    t->bos = t->eos = t->eot = t->pad = t->unk = -1;
    t->cache_min_len = 4096;
    if (!t->text_off || !t->text_len || !t->type || !t->special || !t->skip) {
        agx_tokenizer_free(t);
        return NULL;
    }
    return t;
}

/* Appends n bytes + NUL to a growing arena; offsets stay valid across realloc. */
static bool arena_put(char **data, size_t *len, size_t *cap, const void *s, size_t n, uint32_t *off) {
    if (*len + n + 1 > UINT32_MAX) return false;
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1 << 16;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*data, c);
        if (!p) return false;
        *data = p;
        *cap = c;
    }
    *off = (uint32_t)*len;
    if (n) memcpy(*data + *len, s, n);
    (*data)[*len + n] = '\0';
    *len += n + 1;
    return true;
}

bool agx_tok_set_token(agx_tokenizer *t, int32_t id, const char *s, size_t len, int type) {
    if (id < 0 || id >= t->n_vocab || len > UINT32_MAX / 2) return false;
    if (!arena_put(&t->text, &t->text_used, &t->text_cap, s, len, &t->text_off[id])) return false;
    t->text_len[id] = (uint32_t)len;
    t->type[id] = (uint8_t)type;
    return true;
}

/* string -> id over the spelling arena */
static bool strmap_build(agx_tokenizer *t) {
    uint32_t cap = pow2_at_least((size_t)t->n_vocab * 2);
    t->vocab.slots = calloc(cap, sizeof *t->vocab.slots);
    if (!t->vocab.slots) return false;
    t->vocab.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + t->text_off[id];
        size_t n = t->text_len[id];
        uint32_t h = (uint32_t)hash_bytes(s, n) & t->vocab.mask;
        for (;;) {
            uint32_t v = t->vocab.slots[h];
            if (v == 0) {
                t->vocab.slots[h] = (uint32_t)id + 1;
                break;
            }
            uint32_t o = v - 1;
            if (t->text_len[o] == n && memcmp(t->text + t->text_off[o], s, n) == 0) break; /* first id wins */
            h = (h + 1) & t->vocab.mask;
        }
    }
    return true;
}

int32_t agx_tokenizer_find(const agx_tokenizer *t, const char *s, size_t n) {
    if (!t || !t->vocab.slots) return -1;
    uint32_t h = (uint32_t)hash_bytes(s, n) & t->vocab.mask;
    for (;;) {
        uint32_t v = t->vocab.slots[h];
        if (v == 0) return -1;
        uint32_t o = v - 1;
        if (t->text_len[o] == n && memcmp(t->text + t->text_off[o], s, n) == 0) return (int32_t)o;
        h = (h + 1) & t->vocab.mask;
    }
}

static void pairmap_free(agx_tok_pairmap *m);

bool agx_tok_pairmap_init(agx_tok_pairmap *m, size_t n) {
    pairmap_free(m);
    uint32_t cap = pow2_at_least(n * 2 + 1);
    m->keys = calloc(cap, sizeof *m->keys);
    m->rank = malloc(cap * sizeof *m->rank);
    m->merged = malloc(cap * sizeof *m->merged);
    m->mask = cap - 1;
    return m->keys && m->rank && m->merged;
}

static void pairmap_free(agx_tok_pairmap *m) {
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

static inline uint64_t pair_key(int32_t a, int32_t b) {
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

/* Rank of merging (a, b) and the merged id; UINT32_MAX when no such merge. */
static inline uint32_t pair_rank(const agx_tok_pairmap *m, int32_t a, int32_t b, int32_t *merged) {
    uint64_t k = pair_key(a, b);
    uint32_t h = (uint32_t)hash_u64(k) & m->mask;
    for (;;) {
        uint64_t v = m->keys[h];
        if (v == 0) return UINT32_MAX;
        if (v == k) {
            *merged = m->merged[h];
            return m->rank[h];
        }
        h = (h + 1) & m->mask;
    }
}

/* Needs the vocab map. A merge whose parts or result are not in the
 * vocabulary is ignored, as in HF; the first rank of a pair wins. */
bool agx_tok_add_merge(agx_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn,
                       uint32_t rank) {
    int32_t a = agx_tokenizer_find(t, l, ln), b = agx_tokenizer_find(t, r, rn);
    if (a < 0 || b < 0) return true;
    char stackbuf[256];
    char *cat = ln + rn <= sizeof stackbuf ? stackbuf : malloc(ln + rn);
    if (!cat) return false;
    memcpy(cat, l, ln);
    memcpy(cat + ln, r, rn);
    int32_t m = agx_tokenizer_find(t, cat, ln + rn);
    if (cat != stackbuf) free(cat);
    if (m < 0) return true;
    agx_tok_pairmap *pm = &t->merges;
    uint64_t k = pair_key(a, b);
    uint32_t h = (uint32_t)hash_u64(k) & pm->mask;
    while (pm->keys[h] != 0) {
        if (pm->keys[h] == k) return true;
        h = (h + 1) & pm->mask;
    }
    pm->keys[h] = k;
    pm->rank[h] = rank;
    pm->merged[h] = m;
    t->have_merges = true;
    return true;
}

bool agx_tok_looks_special(const char *s, size_t n) {
    return n >= 4 && s[0] == '<' && s[1] == '|' && s[n - 2] == '|' && s[n - 1] == '>';
}

/* ---------------------------------------------------------------- trie */

static uint32_t trie_new_node(agx_tokenizer *t, uint8_t byte) {
    if (t->n_trie == t->cap_trie) {
        uint32_t c = t->cap_trie ? t->cap_trie * 2 : 256;
        agx_tok_trie_node *p = realloc(t->trie, c * sizeof *p);
        if (!p) return 0;
        t->trie = p;
        t->cap_trie = c;
    }
    agx_tok_trie_node *n = &t->trie[t->n_trie];
    n->first_child = n->next_sibling = 0;
    n->token = -1;
    n->byte = byte;
    return t->n_trie++;
}

static bool trie_add(agx_tokenizer *t, const uint8_t *s, size_t n, int32_t id) {
    if (t->n_trie == 0 && trie_new_node(t, 0) != 0) return false;
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t->trie[node].first_child;
        while (c && t->trie[c].byte != s[i]) c = t->trie[c].next_sibling;
        if (!c) {
            c = trie_new_node(t, s[i]);
            if (!c) return false;
            t->trie[c].next_sibling = t->trie[node].first_child;
            t->trie[node].first_child = c;
        }
        node = c;
    }
    if (t->trie[node].token < 0) t->trie[node].token = id;
    t->trie_first[s[0]] = true;
    return true;
}

/* Longest added token at s allowed under parse_special; returns its length. */
static size_t trie_match(const agx_tokenizer *t, const uint8_t *s, size_t n, bool parse_special,
                         int32_t *tok) {
    uint32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t->trie[node].first_child;
        while (c && t->trie[c].byte != s[i]) c = t->trie[c].next_sibling;
        if (!c) break;
        node = c;
        int32_t id = t->trie[node].token;
        if (id >= 0 && (parse_special || !t->special[id])) {
            best = i + 1;
            *tok = id;
        }
    }
    return best;
}

/* ---------------------------------------------------------------- finish */

static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)) return 0;
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)) return 0;
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    }
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, else -1 */
static int byte_token_value(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int h = hexval(s[3]), l = hexval(s[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* The bytes a token stands for when decoded (see agx_tokenizer_token_bytes). */
static bool decode_piece(agx_tokenizer *t, int32_t id, agx_strbuf *sb) {
    const char *s = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    sb->len = 0;
    if (t->model == AGX_TOKM_BPE_BYTE) {
        /* HF ByteLevel decoder: every char through the alphabet, or the raw
         * spelling when one char is outside it (added tokens like "<|im_end|>"
         * are printable ASCII and map to themselves either way). */
        size_t i = 0;
        while (i < n) {
            uint32_t cp;
            size_t k = utf8_next((const uint8_t *)s + i, n - i, &cp);
            int b = k ? agx_pretok_cp_to_byte(cp) : -1;
            if (b < 0) {
                sb->len = 0;
                return agx_strbuf_append(sb, s, n);
            }
            if (!agx_strbuf_putc(sb, (char)b)) return false;
            i += k;
        }
        return agx_strbuf_append(sb, "", 0);
    }
    int bv = byte_token_value(s, n);
    if (bv >= 0 && (t->type[id] == AGX_TOKEN_BYTE || t->type[id] == AGX_TOKEN_NORMAL)) {
        char c = (char)bv;
        return agx_strbuf_append(sb, &c, 1);
    }
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
            if (!agx_strbuf_putc(sb, ' ')) return false;
            i += 3;
        } else {
            if (!agx_strbuf_putc(sb, s[i])) return false;
            i++;
        }
    }
    return agx_strbuf_append(sb, "", 0);
}

static void add_eog(agx_tokenizer *t, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

agx_status agx_tok_finish(agx_tokenizer *t, agx_error *err) {
    if (!t->text) return agx_error_set(err, AGX_ERR_TOKENIZER, "tokenizer has no tokens");
    if (!t->vocab.slots && !strmap_build(t)) goto oom;
    t->dec_off = calloc((size_t)t->n_vocab, sizeof *t->dec_off);
    t->dec_len = calloc((size_t)t->n_vocab, sizeof *t->dec_len);
    if (!t->dec_off || !t->dec_len) goto oom;
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->model == AGX_TOKM_SPM && t->type[id] == AGX_TOKEN_NORMAL &&
            byte_token_value(t->text + t->text_off[id], t->text_len[id]) >= 0)
            t->type[id] = AGX_TOKEN_BYTE;
        if (!decode_piece(t, id, &sb) ||
            !arena_put((char **)&t->dec, &t->dec_used, &t->dec_cap, sb.data, sb.len, &t->dec_off[id])) {
            agx_strbuf_free(&sb);
            goto oom;
        }
        t->dec_len[id] = (uint32_t)sb.len;
    }
    agx_strbuf_free(&sb);

    for (int b = 0; b < 256; b++) {
        uint32_t cp = agx_pretok_byte_to_cp((uint8_t)b);
        if (cp < 0x80) {
            t->bl_utf8[b][0] = (uint8_t)cp;
            t->bl_len[b] = 1;
        } else {
            t->bl_utf8[b][0] = (uint8_t)(0xC0 | (cp >> 6));
            t->bl_utf8[b][1] = (uint8_t)(0x80 | (cp & 0x3F));
            t->bl_len[b] = 2;
        }
        if (t->model == AGX_TOKM_BPE_BYTE) {
            t->byte_tok[b] = agx_tokenizer_find(t, (const char *)t->bl_utf8[b], t->bl_len[b]);
        } else {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_tok[b] = agx_tokenizer_find(t, name, 6);
        }
    }

    /* Added tokens: matched in input text by leftmost-longest. Control and
     * unknown tokens need parse_special; user-defined ones are always matched. */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if (ty != AGX_TOKEN_CONTROL && ty != AGX_TOKEN_USER_DEFINED && ty != AGX_TOKEN_UNKNOWN) continue;
        t->special[id] = ty != AGX_TOKEN_USER_DEFINED;
        t->skip[id] = t->special[id];
        if (t->text_len[id] == 0) continue;
        if (!trie_add(t, (const uint8_t *)t->text + t->text_off[id], t->text_len[id], id)) goto oom;
    }
    if (t->n_trie == 0 && trie_new_node(t, 0) != 0) goto oom;

    if (!t->merges.keys && !agx_tok_pairmap_init(&t->merges, 1)) goto oom;
    return agx_tok_finish_specials(t, err);
oom:
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the tokenizer tables");
}

agx_status agx_tok_finish_specials(agx_tokenizer *t, agx_error *err) {
    t->n_eog = 0;
    static const char *const EOG_NAMES[] = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>",
                                            "<|end_of_text|>", "<|end|>", "<|eom_id|>", "</s>"};
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    for (size_t i = 0; i < sizeof EOG_NAMES / sizeof EOG_NAMES[0]; i++) {
        int32_t id = agx_tokenizer_find(t, EOG_NAMES[i], strlen(EOG_NAMES[i]));
        if (id >= 0 && t->type[id] == AGX_TOKEN_CONTROL) add_eog(t, id);
    }
    free(t->bos_text);
    free(t->eos_text);
    t->bos_text = agx_strdup(t->bos >= 0 && t->bos < t->n_vocab ? t->text + t->text_off[t->bos] : "");
    t->eos_text = agx_strdup(t->eos >= 0 && t->eos < t->n_vocab ? t->text + t->text_off[t->eos] : "");
    if (!t->bos_text || !t->eos_text) goto oom;
    return AGX_OK;
oom:
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the tokenizer tables");
}

void agx_tokenizer_free(agx_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->text_len);
    free(t->dec);
    free(t->dec_off);
    free(t->dec_len);
    free(t->type);
    free(t->special);
    free(t->skip);
    free(t->strip);
    free(t->score);
    free(t->vocab.slots);
    pairmap_free(&t->merges);
    free(t->trie);
    if (t->re) pcre2_code_free(t->re);
    if (t->re_wide) pcre2_code_free(t->re_wide);
    free(t->chat_template);
    free(t->bos_text);
    free(t->eos_text);
    free(t);
}

/* ---------------------------------------------------------------- properties */

const char *agx_tokenizer_source(const agx_tokenizer *t) { return t->source; }
const char *agx_tokenizer_model_name(const agx_tokenizer *t) { return t->model_name; }
const char *agx_tokenizer_pre_name(const agx_tokenizer *t) { return t->pre_name; }
int32_t agx_tokenizer_n_vocab(const agx_tokenizer *t) { return t->n_vocab; }
int32_t agx_tokenizer_bos(const agx_tokenizer *t) { return t->bos; }
int32_t agx_tokenizer_eos(const agx_tokenizer *t) { return t->eos; }
int32_t agx_tokenizer_eot(const agx_tokenizer *t) { return t->eot; }
int32_t agx_tokenizer_pad(const agx_tokenizer *t) { return t->pad; }
int32_t agx_tokenizer_unk(const agx_tokenizer *t) { return t->unk; }
bool agx_tokenizer_add_bos(const agx_tokenizer *t) { return t->add_bos && t->bos >= 0; }
bool agx_tokenizer_add_eos(const agx_tokenizer *t) { return t->add_eos && t->eos >= 0; }
const char *agx_tokenizer_chat_template(const agx_tokenizer *t) { return t->chat_template; }
const char *agx_tokenizer_bos_text(const agx_tokenizer *t) { return t->bos_text ? t->bos_text : ""; }
const char *agx_tokenizer_eos_text(const agx_tokenizer *t) { return t->eos_text ? t->eos_text : ""; }

bool agx_tokenizer_is_eog(const agx_tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

agx_token_type agx_tokenizer_token_type(const agx_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return AGX_TOKEN_UNDEFINED;
    return (agx_token_type)t->type[id];
}

const char *agx_tokenizer_token_text(const agx_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->text_len[id];
    return t->text + t->text_off[id];
}

const uint8_t *agx_tokenizer_token_bytes(const agx_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->dec_len[id];
    return t->dec + t->dec_off[id];
}

/* ---------------------------------------------------------------- encoding */

typedef struct { uint32_t rank, pos; } merge_ent;
typedef struct { float score; uint32_t left, right, size; } spm_ent;

typedef struct {
    const agx_tokenizer *t;
    int32_t *ids;
    size_t n, cap;
    agx_strbuf norm;          /* normalized segment */
    agx_strbuf word;          /* byte-level spelling of a pre-token */
    int32_t *sym;             /* symbol ids */
    int32_t *prev, *next;
    uint32_t *soff, *slen;    /* SPM (GGUF): symbol text ranges */
    size_t scap;
    void *heap;
    size_t hcap;
    pcre2_match_data *md;
    bool oom;
    /* per-call cache of short byte-level pre-tokens -> ids (repeated words) */
    struct cache_ent { uint64_t hash; uint32_t key_off, ids_off; uint16_t key_len, n_ids; } *cache;
    uint32_t cache_mask, cache_used;
    agx_strbuf cache_keys;
    int32_t *cache_ids;
    size_t cache_nids, cache_cap_ids;
} enc_ctx;

#define CACHE_MAX_KEY 48
#define CACHE_MAX_ENTRIES (1u << 16)

static bool cache_init(enc_ctx *c) {
    c->cache = calloc(4096, sizeof *c->cache);
    if (!c->cache) return false;
    c->cache_mask = 4095;
    agx_strbuf_init(&c->cache_keys);
    return true;
}

static struct cache_ent *cache_slot(enc_ctx *c, const char *p, size_t n, uint64_t h) {
    uint32_t i = (uint32_t)h & c->cache_mask;
    for (;;) {
        struct cache_ent *e = &c->cache[i];
        if (e->key_len == 0) return e;
        if (e->hash == h && e->key_len == n && memcmp(c->cache_keys.data + e->key_off, p, n) == 0) return e;
        i = (i + 1) & c->cache_mask;
    }
}

static void cache_grow(enc_ctx *c) {
    uint32_t cap = (c->cache_mask + 1) * 2;
    struct cache_ent *ne = calloc(cap, sizeof *ne);
    if (!ne) return;   /* the cache just stops growing */
    for (uint32_t i = 0; i <= c->cache_mask; i++) {
        struct cache_ent *e = &c->cache[i];
        if (!e->key_len) continue;
        uint32_t j = (uint32_t)e->hash & (cap - 1);
        while (ne[j].key_len) j = (j + 1) & (cap - 1);
        ne[j] = *e;
    }
    free(c->cache);
    c->cache = ne;
    c->cache_mask = cap - 1;
}

static void cache_put(enc_ctx *c, struct cache_ent *e, const char *p, size_t n, uint64_t h, const int32_t *ids,
                      size_t k) {
    if (c->cache_used >= CACHE_MAX_ENTRIES || k > UINT16_MAX) return;
    if (c->cache_nids + k > c->cache_cap_ids) {
        size_t cap = c->cache_cap_ids ? c->cache_cap_ids * 2 : 4096;
        while (cap < c->cache_nids + k) cap *= 2;
        int32_t *q = realloc(c->cache_ids, cap * sizeof *q);
        if (!q) return;
        c->cache_ids = q;
        c->cache_cap_ids = cap;
    }
    size_t key_off = c->cache_keys.len;
    if (!agx_strbuf_append(&c->cache_keys, p, n)) return;
    memcpy(c->cache_ids + c->cache_nids, ids, k * sizeof *ids);
    e->hash = h;
    e->key_off = (uint32_t)key_off;
    e->key_len = (uint16_t)n;
    e->ids_off = (uint32_t)c->cache_nids;
    e->n_ids = (uint16_t)k;
    c->cache_nids += k;
    if (++c->cache_used * 2 > c->cache_mask + 1) cache_grow(c);
}

static bool push_id(enc_ctx *c, int32_t id) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        int32_t *p = realloc(c->ids, nc * sizeof *p);
        if (!p) return !(c->oom = true);
        c->ids = p;
        c->cap = nc;
    }
    c->ids[c->n++] = id;
    return true;
}

static bool reserve_syms(enc_ctx *c, size_t n) {
    if (n <= c->scap) return true;
    size_t nc = c->scap ? c->scap : 64;
    while (nc < n) nc *= 2;
    int32_t *a = realloc(c->sym, nc * sizeof *a);
    if (a) c->sym = a;
    int32_t *b = realloc(c->prev, nc * sizeof *b);
    if (b) c->prev = b;
    int32_t *d = realloc(c->next, nc * sizeof *d);
    if (d) c->next = d;
    uint32_t *e = realloc(c->soff, nc * sizeof *e);
    if (e) c->soff = e;
    uint32_t *f = realloc(c->slen, nc * sizeof *f);
    if (f) c->slen = f;
    if (!a || !b || !d || !e || !f) return !(c->oom = true);
    c->scap = nc;
    return true;
}

static bool reserve_heap(enc_ctx *c, size_t n, size_t elem) {
    if (n <= c->hcap) return true;
    size_t nc = c->hcap ? c->hcap : 64;
    while (nc < n) nc *= 2;
    void *p = realloc(c->heap, nc * elem);
    if (!p) return !(c->oom = true);
    c->heap = p;
    c->hcap = nc;
    return true;
}

static inline bool me_less(merge_ent a, merge_ent b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void me_push(merge_ent *h, size_t *n, merge_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!me_less(e, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static merge_ent me_pop(merge_ent *h, size_t *n) {
    merge_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        size_t m = (l + 1 < *n && me_less(h[l + 1], h[l])) ? l + 1 : l;
        if (!me_less(h[m], last)) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

/* Merges c->sym[0..n) by merge rank and appends the result. */
static void bpe_merge(enc_ctx *c, size_t n) {
    const agx_tok_pairmap *pm = &c->t->merges;
    int32_t *s = c->sym;
    if (n <= 64) {
        /* short words: keep each adjacent pair's rank, scan for the minimum
         * and re-rank only the merged symbol's two pairs */
        uint32_t rk[64];
        int32_t mg[64];
        for (size_t i = 0; i + 1 < n; i++) rk[i] = pair_rank(pm, s[i], s[i + 1], &mg[i]);
        while (n > 1) {
            uint32_t best = UINT32_MAX;
            size_t bi = 0;
            for (size_t i = 0; i + 1 < n; i++)
                if (rk[i] < best) {
                    best = rk[i];
                    bi = i;
                }
            if (best == UINT32_MAX) break;
            s[bi] = mg[bi];
            memmove(s + bi + 1, s + bi + 2, (n - bi - 2) * sizeof *s);
            memmove(rk + bi + 1, rk + bi + 2, (n - bi - 2) * sizeof *rk);
            memmove(mg + bi + 1, mg + bi + 2, (n - bi - 2) * sizeof *mg);
            n--;
            if (bi > 0) rk[bi - 1] = pair_rank(pm, s[bi - 1], s[bi], &mg[bi - 1]);
            if (bi + 1 < n) rk[bi] = pair_rank(pm, s[bi], s[bi + 1], &mg[bi]);
        }
        for (size_t i = 0; i < n; i++)
            if (!push_id(c, s[i])) return;
        return;
    }
    if (!reserve_heap(c, 3 * n + 8, sizeof(merge_ent))) return;
    merge_ent *h = c->heap;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        c->prev[i] = (int32_t)i - 1;
        c->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t m;
        uint32_t r = pair_rank(pm, s[i], s[i + 1], &m);
        if (r != UINT32_MAX) me_push(h, &hn, (merge_ent){r, (uint32_t)i});
    }
    while (hn > 0) {
        merge_ent e = me_pop(h, &hn);
        int32_t i = (int32_t)e.pos;
        if (s[i] < 0) continue;
        int32_t j = c->next[i];
        if (j < 0) continue;
        int32_t m = -1;
        if (pair_rank(pm, s[i], s[j], &m) != e.rank) continue;   /* stale entry */
        s[i] = m;
        s[j] = -1;
        c->next[i] = c->next[j];
        if (c->next[j] >= 0) c->prev[c->next[j]] = i;
        if (hn + 2 > c->hcap) {
            if (!reserve_heap(c, hn + 2, sizeof(merge_ent))) return;
            h = c->heap;
        }
        uint32_t r;
        if (c->prev[i] >= 0 && (r = pair_rank(pm, s[c->prev[i]], s[i], &m)) != UINT32_MAX)
            me_push(h, &hn, (merge_ent){r, (uint32_t)c->prev[i]});
        if (c->next[i] >= 0 && (r = pair_rank(pm, s[i], s[c->next[i]], &m)) != UINT32_MAX)
            me_push(h, &hn, (merge_ent){r, (uint32_t)i});
    }
    for (int32_t i = 0; i >= 0; i = c->next[i])
        if (!push_id(c, s[i])) return;
}

/* One byte-level pre-token. */
static bool bpe_byte_word(void *ctx, const char *p, size_t n) {
    enc_ctx *c = ctx;
    const agx_tokenizer *t = c->t;
    const uint8_t *b = (const uint8_t *)p;
    if (n == 0) return true;
    struct cache_ent *ce = NULL;
    uint64_t h = 0;
    size_t n0 = c->n;
    if (c->cache && n > 1 && n <= CACHE_MAX_KEY) {
        h = hash_bytes(p, n) | 1;
        ce = cache_slot(c, p, n, h);
        if (ce->key_len) {
            for (uint32_t i = 0; i < ce->n_ids; i++)
                if (!push_id(c, c->cache_ids[ce->ids_off + i])) return false;
            return true;
        }
    }
    if (t->ignore_merges || n == 1) {
        c->word.len = 0;
        for (size_t i = 0; i < n; i++)
            if (!agx_strbuf_append(&c->word, t->bl_utf8[b[i]], t->bl_len[b[i]])) return !(c->oom = true);
        int32_t id = agx_tokenizer_find(t, c->word.data, c->word.len);
        if (id >= 0) {
            if (!push_id(c, id)) return false;
            if (ce) cache_put(c, ce, p, n, h, c->ids + n0, c->n - n0);
            return true;
        }
    }
    if (!reserve_syms(c, n)) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_tok[b[i]];
        if (id < 0) id = t->unk;   /* vocabulary without this byte: unk, or dropped */
        if (id >= 0) c->sym[k++] = id;
    }
    bpe_merge(c, k);
    if (ce && !c->oom) cache_put(c, ce, p, n, h, c->ids + n0, c->n - n0);
    return !c->oom;
}

/* SentencePiece with a merge list (tokenizer.json): HF BPE over characters. */
static void spm_merge_word(enc_ctx *c, const char *p, size_t n) {
    const agx_tokenizer *t = c->t;
    const uint8_t *s = (const uint8_t *)p;
    if (!reserve_syms(c, n)) return;
    size_t k = 0;
    bool last_unk = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) len = 1;
        int32_t id = agx_tokenizer_find(t, p + i, len);
        if (id >= 0) {
            c->sym[k++] = id;
            last_unk = false;
        } else {
            bool all = t->byte_fallback;
            for (size_t j = 0; all && j < len; j++) all = t->byte_tok[s[i + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < len; j++) c->sym[k++] = t->byte_tok[s[i + j]];
                last_unk = false;
            } else if (t->unk >= 0 && !last_unk) {   /* fuse_unk */
                c->sym[k++] = t->unk;
                last_unk = true;
            }
        }
        i += len;
    }
    bpe_merge(c, k);
}

static inline bool se_less(spm_ent a, spm_ent b) {   /* "a has lower priority than b" */
    return a.score < b.score || (a.score == b.score && a.left > b.left);
}

static void se_push(spm_ent *h, size_t *n, spm_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!se_less(h[p], e)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static spm_ent se_pop(spm_ent *h, size_t *n) {
    spm_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        size_t m = (l + 1 < *n && se_less(h[l], h[l + 1])) ? l + 1 : l;
        if (!se_less(last, h[m])) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

static void spm_try_bigram(enc_ctx *c, const char *p, int32_t l, int32_t r, spm_ent **h, size_t *hn) {
    if (l < 0 || r < 0) return;
    uint32_t size = c->slen[l] + c->slen[r];
    int32_t id = agx_tokenizer_find(c->t, p + c->soff[l], size);
    if (id < 0) return;
    if (*hn + 1 > c->hcap) {
        if (!reserve_heap(c, *hn + 1, sizeof(spm_ent))) return;
        *h = c->heap;
    }
    se_push(*h, hn, (spm_ent){c->t->score ? c->t->score[id] : 0.0f, (uint32_t)l, (uint32_t)r, size});
}

/* SentencePiece from GGUF scores: llama.cpp's llm_tokenizer_spm. */
static void spm_score_word(enc_ctx *c, const char *p, size_t n) {
    const agx_tokenizer *t = c->t;
    const uint8_t *s = (const uint8_t *)p;
    if (!reserve_syms(c, n) || !reserve_heap(c, n + 8, sizeof(spm_ent))) return;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) len = 1;
        c->soff[k] = (uint32_t)i;
        c->slen[k] = (uint32_t)len;
        c->prev[k] = (int32_t)k - 1;
        c->next[k] = (int32_t)k + 1;
        k++;
        i += len;
    }
    if (k == 0) return;
    c->next[k - 1] = -1;
    spm_ent *h = c->heap;
    size_t hn = 0;
    for (size_t i = 1; i < k; i++) spm_try_bigram(c, p, (int32_t)i - 1, (int32_t)i, &h, &hn);
    while (hn > 0 && !c->oom) {
        spm_ent e = se_pop(h, &hn);
        uint32_t l = e.left, r = e.right;
        if (c->slen[l] == 0 || c->slen[r] == 0 || c->slen[l] + c->slen[r] != e.size) continue;
        c->slen[l] += c->slen[r];
        c->slen[r] = 0;
        c->next[l] = c->next[r];
        if (c->next[r] >= 0) c->prev[c->next[r]] = (int32_t)l;
        spm_try_bigram(c, p, c->prev[l], (int32_t)l, &h, &hn);
        spm_try_bigram(c, p, (int32_t)l, c->next[l], &h, &hn);
    }
    for (int32_t i = 0; i >= 0 && !c->oom; i = c->next[i]) {
        int32_t id = agx_tokenizer_find(t, p + c->soff[i], c->slen[i]);
        if (id >= 0) {
            push_id(c, id);
            continue;
        }
        /* only single characters can be missing: their bytes, or unk */
        for (uint32_t j = 0; j < c->slen[i]; j++) {
            int32_t b = t->byte_tok[s[c->soff[i] + j]];
            if (b < 0) b = t->unk;
            if (b >= 0) push_id(c, b);
        }
    }
}

static agx_status encode_segment(enc_ctx *c, const char *s, size_t len, bool at_start, agx_error *err) {
    const agx_tokenizer *t = c->t;
    if (len == 0) return AGX_OK;
    if (t->model == AGX_TOKM_BPE_BYTE) {
        if (t->nfc) {
            bool ascii = true;
            for (size_t i = 0; i < len && ascii; i++) ascii = (uint8_t)s[i] < 0x80;
            if (!ascii) {
                c->norm.len = 0;
                if (!agx_pretok_nfc(s, len, &c->norm)) goto oom;
                s = c->norm.data;
                len = c->norm.len;
            }
        }
        agx_status st = agx_pretok_split(t, c->md, s, len, bpe_byte_word, c, err);
        if (c->oom) goto oom;
        return st;
    }
    /* SentencePiece: "▁" prefix, spaces -> "▁", the segment is one word
     * (Metaspace: no prefix when it already starts with one; split: a word
     * starts at each "▁") */
    c->norm.len = 0;
    bool prefix = t->add_space_prefix && (at_start || !t->spm_prefix_first_only);
    if (prefix && t->spm_metaspace && (s[0] == ' ' || (len >= 3 && memcmp(s, "\xE2\x96\x81", 3) == 0))) prefix = false;
    if (prefix && !agx_strbuf_append(&c->norm, "\xE2\x96\x81", 3)) goto oom;
    for (size_t i = 0; i < len; i++) {
        bool ok = s[i] == ' ' ? agx_strbuf_append(&c->norm, "\xE2\x96\x81", 3) : agx_strbuf_putc(&c->norm, s[i]);
        if (!ok) goto oom;
    }
    if (c->norm.len > UINT32_MAX / 2)
        return agx_error_set(err, AGX_ERR_TOKENIZER, "text segment too long to tokenize (%zu bytes)", len);
    if (t->spm_split) {
        const char *w = c->norm.data, *e = c->norm.data + c->norm.len;
        while (w < e && !c->oom) {
            const char *q = w + 1;
            while (q + 3 <= e && memcmp(q, "\xE2\x96\x81", 3) != 0) q++;
            if (q + 3 > e) q = e;
            if (t->have_merges) spm_merge_word(c, w, (size_t)(q - w));
            else spm_score_word(c, w, (size_t)(q - w));
            w = q;
        }
    } else if (t->have_merges) {
        spm_merge_word(c, c->norm.data, c->norm.len);
    } else {
        spm_score_word(c, c->norm.data, c->norm.len);
    }
    if (c->oom) goto oom;
    return AGX_OK;
oom:
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while tokenizing %zu bytes", len);
}

/* Rust char::is_whitespace (Unicode White_Space) at s[i], its length or 0. */
static size_t ws_len(const uint8_t *s, size_t i, size_t len) {
    uint32_t cp;
    size_t k = utf8_next(s + i, len - i, &cp);
    if (!k) return 0;
    bool ws = (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
              (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
              cp == 0x3000;
    return ws ? k : 0;
}

static size_t ws_fwd(const uint8_t *s, size_t i, size_t len) {
    size_t k;
    while (i < len && (k = ws_len(s, i, len)) > 0) i += k;
    return i;
}

/* Start of the whitespace run ending at i (not before lo). */
static size_t ws_back(const uint8_t *s, size_t lo, size_t i) {
    while (i > lo) {
        size_t j = i - 1;
        while (j > lo && i - j < 4 && (s[j] & 0xC0) == 0x80) j--;
        if (ws_len(s, j, i) != i - j) break;
        i = j;
    }
    return i;
}

agx_status agx_tokenizer_encode(const agx_tokenizer *t, const char *text, size_t len,
                                bool add_special, bool parse_special, int32_t **ids,
                                size_t *n_ids, agx_error *err) {
    return agx_tokenizer_encode_spans(t, text, len, add_special, parse_special, NULL, 0, ids, n_ids, err);
}

agx_status agx_tokenizer_encode_spans(const agx_tokenizer *t, const char *text, size_t len,
                                      bool add_special, bool parse_special, const size_t *spans,
                                      size_t n_spans, int32_t **ids, size_t *n_ids, agx_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return agx_error_set(err, AGX_ERR_TOKENIZER, "encode: NULL text");
    enc_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    agx_strbuf_init(&c.norm);
    agx_strbuf_init(&c.word);
    agx_status st = AGX_OK;
    if (t->re) {
        c.md = pcre2_match_data_create(8, NULL);
        if (!c.md) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory while tokenizing");
            goto done;
        }
    }
    /* repeated words are worth caching only in longer texts */
    if (t->model == AGX_TOKM_BPE_BYTE && len >= t->cache_min_len && !cache_init(&c)) goto oom;
    if (add_special && t->add_bos && t->bos >= 0 && !push_id(&c, t->bos)) goto oom;
    const uint8_t *s = (const uint8_t *)text;
    size_t seg = 0, i = 0, sp = 0;
    while (i < len) {
        int32_t tok;
        size_t m;
        while (sp < n_spans && spans[2 * sp + 1] <= i) sp++;
        bool special_here = parse_special && !(sp < n_spans && spans[2 * sp] <= i);
        if (t->trie_first[s[i]] && (m = trie_match(t, s + i, len - i, special_here, &tok)) > 0) {
            size_t end = i;
            if (t->strip && (t->strip[tok] & 1)) end = ws_back(s, seg, i);   /* lstrip */
            if ((st = encode_segment(&c, text + seg, end - seg, seg == 0, err)) != AGX_OK) goto done;
            if (!push_id(&c, tok)) goto oom;
            i += m;
            if (t->strip && (t->strip[tok] & 2)) i = ws_fwd(s, i, len);       /* rstrip */
            seg = i;
            continue;
        }
        i++;
    }
    if ((st = encode_segment(&c, text + seg, len - seg, seg == 0, err)) != AGX_OK) goto done;
    if (add_special && t->add_eos && t->eos >= 0 && !push_id(&c, t->eos)) goto oom;
    *ids = c.ids;
    *n_ids = c.n;
    c.ids = NULL;
    goto done;
oom:
    st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory while tokenizing %zu bytes", len);
done:
    free(c.ids);
    agx_strbuf_free(&c.norm);
    agx_strbuf_free(&c.word);
    free(c.sym);
    free(c.prev);
    free(c.next);
    free(c.soff);
    free(c.slen);
    free(c.heap);
    free(c.cache);
    free(c.cache_ids);
    agx_strbuf_free(&c.cache_keys);
    if (c.md) pcre2_match_data_free(c.md);
    return st;
}

/* ---------------------------------------------------------------- decoding */

agx_status agx_tokenizer_decode(const agx_tokenizer *t, const int32_t *ids, size_t n,
                                bool skip_special, char **out, size_t *out_len, agx_error *err) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    *out = NULL;
    if (out_len) *out_len = 0;
    bool first_done = false;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            agx_strbuf_free(&sb);
            return agx_error_set(err, AGX_ERR_TOKENIZER,
                                 "token id %ld at position %zu is outside the vocabulary (0..%ld)",
                                 (long)id, i, (long)t->n_vocab - 1);
        }
        if (skip_special && t->skip[id]) continue;
        if (t->spm_metaspace_decoder && !first_done && t->type[id] != AGX_TOKEN_BYTE) {
            /* HF Metaspace decoder: every "▁" of the first token is dropped */
            for (uint32_t k = 0; k < t->dec_len[id]; k++)
                if (t->dec[t->dec_off[id] + k] != ' ' && !agx_strbuf_putc(&sb, (char)t->dec[t->dec_off[id] + k])) goto oom;
        } else if (!agx_strbuf_append(&sb, t->dec + t->dec_off[id], t->dec_len[id])) {
            goto oom;
        }
        first_done = true;
    }
    if (!agx_strbuf_append(&sb, "", 0)) goto oom;
    /* SentencePiece decoder: Strip(" ", 1, 0) after fusing */
    if (t->spm_strip_leading_space && sb.len > 0 && sb.data[0] == ' ') {
        memmove(sb.data, sb.data + 1, sb.len);
        sb.len--;
    }
    if (out_len) *out_len = sb.len;
    *out = agx_strbuf_take(&sb);
    return AGX_OK;
oom:
    agx_strbuf_free(&sb);
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding %zu tokens", n);
}

/* ---------------------------------------------------------------- streaming */

void agx_tokenizer_stream_init(agx_tokenizer_stream *s, const agx_tokenizer *t, bool skip_special) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->skip_special = skip_special;
}

static bool out_append(char **out, size_t *len, size_t *cap, const void *d, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *len + n + 1) c *= 2;
        char *p = realloc(*out, c);
        if (!p) return false;
        *out = p;
        *cap = c;
    }
    if (n) memcpy(*out + *len, d, n);
    *len += n;
    (*out)[*len] = '\0';
    return true;
}

/* Expected length of a sequence starting with lead byte c; 0 if c cannot start one. */
static size_t utf8_seq_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c < 0xE0) return 2;
    if (c >= 0xE0 && c < 0xF0) return 3;
    if (c >= 0xF0 && c < 0xF5) return 4;
    return 0;
}

/* Could bytes p[0..n) (n < full length) still become a valid sequence? */
static bool utf8_viable_prefix(const uint8_t *p, size_t n) {
    uint8_t tmp[4] = {0};
    memcpy(tmp, p, n);
    size_t need = utf8_seq_len(p[0]);
    for (size_t i = n; i < need; i++) tmp[i] = (i == 1 && p[0] == 0xF0) ? 0x90 : (i == 1 && p[0] == 0xE0) ? 0xA0 : 0x80;
    uint32_t cp;
    /* the fill keeps lead-specific second-byte ranges valid; a real second byte is checked */
    return utf8_next(tmp, need, &cp) == need;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

static agx_status stream_bytes(agx_tokenizer_stream *s, const uint8_t *d, size_t n, char **out,
                               size_t *len, size_t *cap, agx_error *err) {
    for (size_t i = 0; i < n; i++) {
        s->pending[s->n_pending++] = d[i];
        for (;;) {
            size_t need = utf8_seq_len(s->pending[0]);
            if (need == 0) {   /* stray byte */
                if (!out_append(out, len, cap, REPLACEMENT, 3)) goto oom;
                memmove(s->pending, s->pending + 1, --s->n_pending);
            } else if (s->n_pending < need) {
                if (utf8_viable_prefix(s->pending, s->n_pending)) break;
                if (!out_append(out, len, cap, REPLACEMENT, 3)) goto oom;
                memmove(s->pending, s->pending + 1, --s->n_pending);
            } else {
                uint32_t cp;
                if (utf8_next(s->pending, need, &cp) == need) {
                    if (!out_append(out, len, cap, s->pending, need)) goto oom;
                    s->n_pending -= need;
                    memmove(s->pending, s->pending + need, s->n_pending);
                } else {
                    if (!out_append(out, len, cap, REPLACEMENT, 3)) goto oom;
                    memmove(s->pending, s->pending + 1, --s->n_pending);
                }
            }
            if (s->n_pending == 0) break;
        }
    }
    return AGX_OK;
oom:
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding");
}

agx_status agx_tokenizer_stream_push(agx_tokenizer_stream *s, int32_t id, char **out, size_t *out_len,
                                 size_t *out_cap, agx_error *err) {
    const agx_tokenizer *t = s->tok;
    if (id < 0 || id >= t->n_vocab)
        return agx_error_set(err, AGX_ERR_TOKENIZER, "token id %ld is outside the vocabulary (0..%ld)",
                             (long)id, (long)t->n_vocab - 1);
    if (s->skip_special && t->skip[id]) return AGX_OK;
    const uint8_t *d = t->dec + t->dec_off[id];
    size_t n = t->dec_len[id];
    if (!s->started && t->spm_metaspace_decoder && t->type[id] != AGX_TOKEN_BYTE) {
        s->started = true;
        for (size_t k = 0; k < n; k++) {
            agx_status st = d[k] == ' ' ? AGX_OK : stream_bytes(s, d + k, 1, out, out_len, out_cap, err);
            if (st != AGX_OK) return st;
        }
        return out_append(out, out_len, out_cap, "", 0) ? AGX_OK
                                                        : agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding");
    }
    if (!s->started && (n > 0 || t->spm_metaspace_decoder)) {
        s->started = true;
        if (t->spm_strip_leading_space && n > 0 && d[0] == ' ') {
            d++;
            n--;
        }
    }
    if (!out_append(out, out_len, out_cap, "", 0))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding");
    return stream_bytes(s, d, n, out, out_len, out_cap, err);
}

agx_status agx_tokenizer_stream_flush(agx_tokenizer_stream *s, char **out, size_t *out_len, size_t *out_cap,
                                  agx_error *err) {
    if (!out_append(out, out_len, out_cap, "", 0))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding");
    for (size_t i = 0; i < s->n_pending; i++)
        if (!out_append(out, out_len, out_cap, REPLACEMENT, 3))
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory while decoding");
    s->n_pending = 0;
    return AGX_OK;
}
