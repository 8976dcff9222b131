/* grammar_mask.c — owns the token trie over a vocabulary's byte strings and the
 * per-step mask: a depth-first walk of the trie that steps the grammar automaton
 * one byte per edge and drops a whole subtree on its first rejected byte, plus
 * fast paths inside free strings (a per-token "plain text" class and code-point
 * count, so only tokens holding a quote or backslash need the walk; and tokens
 * grouped by first byte with precomputed suffix classes for the step right
 * after a token that stopped inside an escape or a UTF-8 character). */
#include "agx/grammar.h"

#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"

#define GR_NOT_PLAIN 0xFFFFu
#define GR_SFX_SPECIAL 0xFFFEu /* suffix holds a quote or backslash: step it exactly */
#define GR_SFX_MAX 3
#define GR_MAX_TOKEN_BYTES 65535u

/* Trie in breadth-first order: the children of a node are contiguous
 * ([first_child, first_child + n_child)) and their byte labels sit in a separate
 * byte array, so scanning a node's children touches a few cache lines. */
typedef struct gr_tnode {
    uint32_t first_child;
    uint32_t n_child;
    uint32_t tok_first;   /* tokens whose bytes end here: toks[tok_first..+tok_count) */
    uint32_t tok_count;
} gr_tnode;

typedef struct gr_trie {
    gr_tnode *nodes;
    uint8_t *byte;        /* label of the edge into node i */
    uint32_t n_nodes;
    int32_t *toks;
    uint32_t max_depth;
} gr_trie;

/* preorder node, only while building */
typedef struct gr_pnode {
    uint32_t end;         /* subtree is [i, end) */
    uint32_t tok_first;
    uint32_t tok_count;
    uint8_t byte;
} gr_pnode;

struct agx_grammar_vocab {
    size_t n_vocab;
    char *bytes;           /* all token bytes back to back */
    size_t *off;           /* off[i]..off[i+1] */
    uint16_t *plain_chars; /* code points of a plain token, GR_NOT_PLAIN otherwise */
    uint8_t *plain_mask;   /* plain_chars[i] != GR_NOT_PLAIN */
    uint32_t max_plain;    /* largest plain_chars */
    size_t *plain_le;      /* plain_le[c]: plain tokens of at most c code points */
    uint8_t *is_eog;
    int32_t *eog;
    size_t n_eog;
    /* pending-string fast path: usable tokens grouped by first byte
     * (by_first[first_off[b]..first_off[b+1])) and, in the same order so the
     * scan is sequential, each one's length, second byte, count of leading
     * UTF-8 continuation bytes, and the class of its suffix after the first k
     * bytes (k = 1..3): code points if plain, GR_SFX_SPECIAL, or GR_NOT_PLAIN */
    uint32_t first_off[257];
    int32_t *by_first;
    uint16_t *bf_len;
    uint8_t *bf_b1;
    uint8_t *bf_lead;
    uint16_t *bf_sfx[GR_SFX_MAX];
    gr_trie full;          /* every non-empty, non-EOG token */
    gr_trie special;       /* those holding '"' or '\\' (the string fast path's rest) */
};

/* qsort has no context argument; sort an array of (ptr,len,id) records instead. */
typedef struct gr_tokref {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
} gr_tokref;

static int gr_tokref_cmp(const void *a, const void *b) {
    const gr_tokref *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, m);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void gr_trie_free(gr_trie *t) {
    free(t->nodes);
    free(t->byte);
    free(t->toks);
    memset(t, 0, sizeof *t);
}

/* Builds the trie from sorted token refs: first in preorder (one pass over the
 * sorted list, sharing common prefixes), then relaid breadth-first. */
static agx_status gr_trie_build(gr_trie *t, const gr_tokref *refs, size_t n, agx_error *err) {
    size_t cap_nodes = 1;
    for (size_t i = 0; i < n; i++) cap_nodes += refs[i].len;
    gr_pnode *pre = malloc(cap_nodes * sizeof *pre);
    uint32_t *path = malloc((GR_MAX_TOKEN_BYTES + 1) * sizeof *path);
    t->toks = malloc((n ? n : 1) * sizeof *t->toks);
    if (!pre || !path || !t->toks) goto nomem;
    uint32_t nn = 0;
    pre[nn] = (gr_pnode){0, 0, 0, 0};
    path[0] = nn++;
    uint32_t cur = 0; /* depth of the current path */
    for (size_t i = 0; i < n; i++) {
        uint32_t lcp = 0;
        if (i > 0) {
            uint32_t m = refs[i - 1].len < refs[i].len ? refs[i - 1].len : refs[i].len;
            while (lcp < m && refs[i - 1].p[lcp] == refs[i].p[lcp]) lcp++;
        }
        while (cur > lcp) pre[path[cur--]].end = nn;
        for (uint32_t k = lcp; k < refs[i].len; k++) {
            pre[nn] = (gr_pnode){0, 0, 0, refs[i].p[k]};
            path[++cur] = nn++;
        }
        gr_pnode *leaf = &pre[path[refs[i].len]];
        if (leaf->tok_count == 0) leaf->tok_first = (uint32_t)i;
        leaf->tok_count++;
        t->toks[i] = refs[i].id;
        if (refs[i].len > t->max_depth) t->max_depth = refs[i].len;
    }
    while (cur > 0) pre[path[cur--]].end = nn;
    pre[0].end = nn;
    free(path);
    path = NULL;
    /* breadth-first relayout; queue[k] = preorder index of BFS node k */
    uint32_t *queue = malloc((size_t)nn * sizeof *queue);
    t->nodes = malloc((size_t)nn * sizeof *t->nodes);
    t->byte = malloc(nn);
    if (!queue || !t->nodes || !t->byte) {
        free(queue);
        goto nomem;
    }
    uint32_t head = 0, tail = 0;
    queue[tail++] = 0;
    while (head < tail) {
        uint32_t p = queue[head];
        gr_tnode *nd = &t->nodes[head];
        t->byte[head] = pre[p].byte;
        nd->tok_first = pre[p].tok_first;
        nd->tok_count = pre[p].tok_count;
        nd->first_child = tail;
        uint32_t c = 0;
        for (uint32_t q = p + 1; q < pre[p].end; q = pre[q].end) {
            queue[tail++] = q;
            c++;
        }
        nd->n_child = c;
        head++;
    }
    t->n_nodes = nn;
    free(queue);
    free(pre);
    return AGX_OK;
nomem:
    free(pre);
    free(path);
    gr_trie_free(t);
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
}

void agx_grammar_vocab_free(agx_grammar_vocab *v) {
    if (!v) return;
    free(v->bytes);
    free(v->off);
    free(v->plain_chars);
    free(v->plain_mask);
    free(v->plain_le);
    free(v->by_first);
    free(v->bf_len);
    free(v->bf_b1);
    free(v->bf_lead);
    for (int k = 0; k < GR_SFX_MAX; k++) free(v->bf_sfx[k]);
    free(v->is_eog);
    free(v->eog);
    gr_trie_free(&v->full);
    gr_trie_free(&v->special);
    free(v);
}

size_t agx_grammar_vocab_size(const agx_grammar_vocab *v) { return v->n_vocab; }

bool agx_grammar_vocab_is_eog(const agx_grammar_vocab *v, int32_t token) {
    return token >= 0 && (size_t)token < v->n_vocab && v->is_eog[token];
}

agx_status agx_grammar_vocab_new(const char *const *token_bytes, const size_t *token_lens,
                                 size_t n_vocab, const int32_t *eog_ids, size_t n_eog,
                                 agx_grammar_vocab **out, agx_error *err) {
    *out = NULL;
    if (n_vocab == 0 || n_vocab > (size_t)INT32_MAX)
        return agx_error_set(err, AGX_ERR_CONFIG, "grammar vocabulary size %zu is out of range",
                             n_vocab);
    agx_grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
    v->n_vocab = n_vocab;
    v->off = malloc((n_vocab + 1) * sizeof *v->off);
    v->plain_chars = malloc(n_vocab * sizeof *v->plain_chars);
    v->is_eog = calloc(n_vocab, 1);
    v->eog = malloc((n_eog ? n_eog : 1) * sizeof *v->eog);
    gr_tokref *refs = malloc(n_vocab * sizeof *refs);
    agx_status st = AGX_OK;
    if (!v->off || !v->plain_chars || !v->is_eog || !v->eog || !refs) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
        goto fail;
    }
    for (size_t i = 0; i < n_eog; i++) {
        if (eog_ids[i] < 0 || (size_t)eog_ids[i] >= n_vocab) {
            st = agx_error_set(err, AGX_ERR_CONFIG,
                               "end-of-generation token id %d is outside the vocabulary (%zu)",
                               (int)eog_ids[i], n_vocab);
            goto fail;
        }
        if (!v->is_eog[eog_ids[i]]) v->eog[v->n_eog++] = eog_ids[i];
        v->is_eog[eog_ids[i]] = 1;
    }
    size_t total = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        size_t len = token_bytes && token_bytes[i] ? token_lens[i] : 0;
        if (len > GR_MAX_TOKEN_BYTES) {
            st = agx_error_set(err, AGX_ERR_CONFIG,
                               "token %zu is %zu bytes long; the grammar handles tokens of up "
                               "to %u bytes", i, len, GR_MAX_TOKEN_BYTES);
            goto fail;
        }
        total += len;
    }
    v->bytes = malloc(total ? total : 1);
    if (!v->bytes) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
        goto fail;
    }
    size_t pos = 0, n_refs = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        size_t len = token_bytes && token_bytes[i] ? token_lens[i] : 0;
        v->off[i] = pos;
        if (len) memcpy(v->bytes + pos, token_bytes[i], len);
        uint32_t chars = 0;
        bool usable = len > 0 && !v->is_eog[i];
        v->plain_chars[i] =
            usable && gr_plain_chars((const uint8_t *)v->bytes + pos, len, &chars) &&
                    chars < GR_NOT_PLAIN
                ? (uint16_t)chars
                : GR_NOT_PLAIN;
        if (usable)
            refs[n_refs++] = (gr_tokref){(const uint8_t *)v->bytes + pos, (uint32_t)len,
                                         (int32_t)i};
        pos += len;
    }
    v->off[n_vocab] = pos;
    v->plain_mask = malloc(n_vocab);
    for (size_t i = 0; v->plain_mask && i < n_vocab; i++) {
        v->plain_mask[i] = v->plain_chars[i] != GR_NOT_PLAIN;
        if (v->plain_mask[i] && v->plain_chars[i] > v->max_plain) v->max_plain = v->plain_chars[i];
    }
    v->plain_le = calloc((size_t)v->max_plain + 1, sizeof *v->plain_le);
    if (!v->plain_mask || !v->plain_le) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
        goto fail;
    }
    for (size_t i = 0; i < n_vocab; i++)
        if (v->plain_mask[i]) v->plain_le[v->plain_chars[i]]++;
    for (uint32_t c = 1; c <= v->max_plain; c++) v->plain_le[c] += v->plain_le[c - 1];
    /* pending-string tables */
    size_t nr = n_refs ? n_refs : 1;
    v->by_first = malloc(nr * sizeof *v->by_first);
    v->bf_len = malloc(nr * sizeof *v->bf_len);
    v->bf_b1 = malloc(nr);
    v->bf_lead = malloc(nr);
    for (int k = 0; k < GR_SFX_MAX; k++) v->bf_sfx[k] = malloc(nr * sizeof *v->bf_sfx[k]);
    if (!v->by_first || !v->bf_len || !v->bf_b1 || !v->bf_lead || !v->bf_sfx[0] || !v->bf_sfx[1] ||
        !v->bf_sfx[2]) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory building the token trie");
        goto fail;
    }
    memset(v->first_off, 0, sizeof v->first_off);
    for (size_t i = 0; i < n_refs; i++) v->first_off[refs[i].p[0] + 1]++;
    for (int b = 0; b < 256; b++) v->first_off[b + 1] += v->first_off[b];
    {
        uint32_t fill[256];
        memcpy(fill, v->first_off, sizeof fill);
        for (size_t i = 0; i < n_refs; i++) {
            uint32_t x = fill[refs[i].p[0]]++;
            const uint8_t *p = refs[i].p;
            size_t len = refs[i].len;
            uint8_t lc = 0;
            while (lc < len && lc < 255 && p[lc] >= 0x80 && p[lc] <= 0xBF) lc++;
            v->by_first[x] = refs[i].id;
            v->bf_len[x] = (uint16_t)len;
            v->bf_b1[x] = len > 1 ? p[1] : 0;
            v->bf_lead[x] = lc;
            for (size_t k = 1; k <= GR_SFX_MAX; k++) {
                uint16_t c = GR_NOT_PLAIN;
                uint32_t chars;
                if (len > k) {
                    if (memchr(p + k, '"', len - k) || memchr(p + k, '\\', len - k))
                        c = GR_SFX_SPECIAL;
                    else if (gr_plain_chars(p + k, len - k, &chars) && chars < GR_SFX_SPECIAL)
                        c = (uint16_t)chars;
                }
                v->bf_sfx[k - 1][x] = c;
            }
        }
    }
    qsort(refs, n_refs, sizeof *refs, gr_tokref_cmp);
    if ((st = gr_trie_build(&v->full, refs, n_refs, err))) goto fail;
    /* the special trie: tokens that hold a quote or a backslash */
    size_t n_spec = 0;
    for (size_t i = 0; i < n_refs; i++)
        if (memchr(refs[i].p, '"', refs[i].len) || memchr(refs[i].p, '\\', refs[i].len))
            refs[n_spec++] = refs[i];
    if ((st = gr_trie_build(&v->special, refs, n_spec, err))) goto fail;
    free(refs);
    *out = v;
    return AGX_OK;
fail:
    free(refs);
    agx_grammar_vocab_free(v);
    return st;
}

/* Walks the trie depth-first from the state in stack[0], marking every token
 * whose bytes are all accepted; a rejected byte drops the whole subtree. stack
 * has max_depth + 1 cores, it/en max_depth + 1 child cursors. */
static size_t gr_trie_walk(const agx_grammar *g, const gr_trie *t, gr_core *stack, uint32_t *it,
                           uint32_t *en, uint8_t *allowed, bool prefilter) {
    size_t cnt = 0;
    const gr_tnode *nodes = t->nodes;
    const uint8_t *bytes = t->byte;
    uint32_t d = 0;
    it[0] = nodes[0].first_child;
    en[0] = it[0] + nodes[0].n_child;
    for (;;) {
        if (it[d] == en[d]) {
            if (d == 0) break;
            d--;
            continue;
        }
        uint32_t c = it[d]++;
        uint8_t b = bytes[c];
        if (prefilter && !gr_may_accept(g, &stack[d], b)) continue;
        gr_core *next = &stack[d + 1];
        gr_core_copy(next, &stack[d]);
        if (!gr_step(g, next, b)) continue;
        const gr_tnode *nd = &nodes[c];
        for (uint32_t k = 0; k < nd->tok_count; k++) allowed[t->toks[nd->tok_first + k]] = 1;
        cnt += nd->tok_count;
        if (nd->n_child) {
            d++;
            it[d] = nd->first_child;
            en[d] = nd->first_child + nd->n_child;
        }
    }
    return cnt;
}

/* restrict lets the compiler vectorize (uint8_t stores may alias otherwise). */
static void gr_mark_le(uint8_t *restrict out, const uint16_t *restrict chars, size_t n,
                       uint16_t rem) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) /* fixed-count blocks: vectorized at -O2 */
        for (size_t k = 0; k < 32; k++) out[i + k] = chars[i + k] <= rem;
    for (; i < n; i++) out[i] = chars[i] <= rem;
}

/* Steps all of a token's bytes on a copy of the state. */
static bool gr_token_fits(const agx_grammar *g, const gr_core *core, const agx_grammar_vocab *v,
                          int32_t t) {
    gr_core tmp;
    gr_core_copy(&tmp, core);
    const uint8_t *p = (const uint8_t *)v->bytes + v->off[t];
    size_t len = v->off[t + 1] - v->off[t];
    for (size_t i = 0; i < len; i++)
        if (!gr_step(g, &tmp, p[i])) return false;
    return len > 0;
}

/* Right after a token that stopped inside a UTF-8 character or after a
 * backslash: only tokens starting with the bytes that finish it qualify; once
 * finished, the rest of the token is judged by its precomputed suffix class. */
static size_t gr_mask_pending(const agx_grammar *g, const gr_core *core,
                              const agx_grammar_vocab *v, int kind, uint32_t need, uint8_t lo,
                              uint8_t hi, uint32_t rem, uint8_t *allowed) {
    size_t cnt = 0;
    memset(allowed, 0, v->n_vocab);
    if (kind == GR_PEND_UTF8) {
        const uint16_t *sfx = v->bf_sfx[need - 1];
        for (unsigned b = lo; b <= hi; b++) {
            for (uint32_t x = v->first_off[b]; x < v->first_off[b + 1]; x++) {
                size_t len = v->bf_len[x];
                if (v->bf_lead[x] < (len < need ? len : need)) continue;
                uint16_t c = len <= need ? 0 : sfx[x];
                if (c <= rem ||
                    (c == GR_SFX_SPECIAL && gr_token_fits(g, core, v, v->by_first[x]))) {
                    allowed[v->by_first[x]] = 1;
                    cnt++;
                }
            }
        }
        return cnt;
    }
    static const char simple[] = "\"\\/nrt"; /* one-byte escapes that end the escape */
    for (const char *e = simple; *e; e++) {
        unsigned b = (uint8_t)*e;
        for (uint32_t x = v->first_off[b]; x < v->first_off[b + 1]; x++) {
            uint16_t c = v->bf_len[x] <= 1 ? 0 : v->bf_sfx[0][x];
            if (c <= rem || (c == GR_SFX_SPECIAL && gr_token_fits(g, core, v, v->by_first[x]))) {
                allowed[v->by_first[x]] = 1;
                cnt++;
            }
        }
    }
    for (uint32_t x = v->first_off['u']; x < v->first_off['u' + 1]; x++) { /* \uXXXX */
        uint8_t b1 = v->bf_b1[x];
        bool hex = (b1 >= '0' && b1 <= '9') || (b1 >= 'a' && b1 <= 'f') || (b1 >= 'A' && b1 <= 'F');
        if (v->bf_len[x] > 1 && !hex) continue;
        if (gr_token_fits(g, core, v, v->by_first[x])) {
            allowed[v->by_first[x]] = 1;
            cnt++;
        }
    }
    return cnt;
}

static agx_status gr_mask_impl(agx_grammar_state *s, const agx_grammar_vocab *v, uint8_t *allowed,
                               size_t *n_allowed, bool fast, agx_error *err) {
    size_t need = (size_t)v->full.max_depth + 1;
    if (s->scratch_cap < need) {
        gr_core *sc = realloc(s->scratch, need * sizeof *sc);
        if (sc) s->scratch = sc;
        uint32_t *iter = realloc(s->iter, 2 * need * sizeof *iter);
        if (iter) s->iter = iter;
        if (!sc || !iter)
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory for the grammar mask");
        s->scratch_cap = need;
    }
    uint32_t *it = s->iter, *en = s->iter + need;
    const agx_grammar *g = s->g;
    size_t cnt = 0;
    uint32_t rem;
    gr_core_copy(&s->scratch[0], &s->core);
    if (fast && gr_in_string_body(g, &s->core, &rem)) {
        /* plain tokens fit while the string has room for their code points */
        if (rem >= v->max_plain) {
            memcpy(allowed, v->plain_mask, v->n_vocab);
            cnt = v->plain_le[v->max_plain];
        } else {
            gr_mark_le(allowed, v->plain_chars, v->n_vocab, (uint16_t)rem);
            cnt = v->plain_le[rem];
        }
        cnt += gr_trie_walk(g, &v->special, s->scratch, it, en, allowed, true);
    } else {
        uint32_t pend_need = 0;
        uint8_t lo = 0, hi = 0;
        int pend = fast ? gr_string_pending(g, &s->core, &pend_need, &lo, &hi, &rem) : GR_PEND_NONE;
        if (pend != GR_PEND_NONE) {
            cnt = gr_mask_pending(g, &s->core, v, pend, pend_need, lo, hi, rem, allowed);
        } else {
            memset(allowed, 0, v->n_vocab);
            cnt = gr_trie_walk(g, &v->full, s->scratch, it, en, allowed, fast);
        }
    }
    if (gr_is_complete(g, &s->core)) {
        for (size_t i = 0; i < v->n_eog; i++) {
            if (!allowed[v->eog[i]]) cnt++;
            allowed[v->eog[i]] = 1;
        }
    }
    if (n_allowed) *n_allowed = cnt;
    return AGX_OK;
}

agx_status agx_grammar_mask(agx_grammar_state *s, const agx_grammar_vocab *v, uint8_t *allowed,
                            size_t *n_allowed, agx_error *err) {
    return gr_mask_impl(s, v, allowed, n_allowed, true, err);
}

agx_status gr_mask_slow(agx_grammar_state *s, const agx_grammar_vocab *v, uint8_t *allowed,
                        size_t *n_allowed, agx_error *err) {
    return gr_mask_impl(s, v, allowed, n_allowed, false, err);
}

bool agx_grammar_accept_token(agx_grammar_state *s, const agx_grammar_vocab *v, int32_t token) {
    if (token < 0 || (size_t)token >= v->n_vocab) return false;
    if (v->is_eog[token]) return gr_is_complete(s->g, &s->core);
    size_t len = v->off[token + 1] - v->off[token];
    if (len == 0) return false;
    return agx_grammar_accept(s, v->bytes + v->off[token], len);
}

bool agx_grammar_token_allowed(const agx_grammar_state *s, const agx_grammar_vocab *v,
                               int32_t token) {
    if (token < 0 || (size_t)token >= v->n_vocab) return false;
    if (v->is_eog[token]) return gr_is_complete(s->g, &s->core);
    size_t len = v->off[token + 1] - v->off[token];
    if (len == 0) return false;
    gr_core tmp;
    gr_core_copy(&tmp, &s->core);
    const uint8_t *p = (const uint8_t *)v->bytes + v->off[token];
    for (size_t i = 0; i < len; i++)
        if (!gr_step(s->g, &tmp, p[i])) return false;
    return true;
}

size_t agx_grammar_forced_tokens(const agx_grammar_state *s, const agx_grammar_vocab *v,
                                 int32_t *ids, size_t cap, size_t *n_bytes) {
    char buf[1024];
    size_t nf = agx_grammar_forced(s, buf, sizeof buf), pos = 0, n = 0;
    const gr_trie *t = &v->full;
    while (pos < nf && n < cap) {
        /* follow the forced bytes down the trie; remember the deepest token */
        uint32_t node = 0, best_len = 0;
        int32_t best = -1;
        for (size_t k = pos; k < nf; k++) {
            const gr_tnode *nd = &t->nodes[node];
            uint32_t c = nd->first_child, end = c + nd->n_child;
            while (c < end && t->byte[c] != (uint8_t)buf[k]) c++;
            if (c == end) break;
            node = c;
            if (t->nodes[c].tok_count) {
                best = t->toks[t->nodes[c].tok_first];
                best_len = (uint32_t)(k - pos + 1);
            }
        }
        if (best < 0) break; /* no token spells the next forced byte */
        ids[n++] = best;
        pos += best_len;
    }
    if (n_bytes) *n_bytes = pos;
    return n;
}
