/* grammar_internal.h — the compiled schema graph and the runtime frame stack
 * shared by grammar.c (compile + byte automaton) and grammar_mask.c (token trie
 * + mask). Not a public contract. */
#ifndef AGX_GRAMMAR_INTERNAL_H
#define AGX_GRAMMAR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agx/grammar.h"

enum gr_kind { GR_OBJECT, GR_ARRAY, GR_STRING, GR_INTEGER, GR_NUMBER, GR_LITERAL };

/* Integer range as magnitudes per sign (has_* false: that sign is impossible). */
typedef struct gr_irange {
    bool has_pos, has_neg;
    uint64_t pos_lo, pos_hi, neg_lo, neg_hi;
} gr_irange;

enum { GR_REL_NONE, GR_REL_EQ_ITEM, GR_REL_BELOW_ITEM };

typedef struct gr_prop {
    char *key;          /* canonical quoted key, e.g. "\"tasks\"" */
    uint32_t key_len;
    uint32_t child;     /* node index of the value */
    bool required;
} gr_prop;

typedef struct gr_lit {
    char *s;            /* canonical compact JSON of one enum/const value */
    uint32_t len;
} gr_lit;

typedef struct gr_node {
    uint8_t kind;
    /* string: code-point counts; array: item counts (UINT32_MAX = unbounded) */
    uint32_t min_n, max_n;
    uint32_t item;                  /* array item node */
    /* integer: static bounds, as magnitudes per sign, and an optional relation to
     * the 1-based number of the innermost enclosing array item */
    int64_t imin, imax;
    gr_irange ir;
    uint8_t rel;                    /* GR_REL_* */
    bool ctx;                       /* shortest form depends on that item number */
    /* object */
    gr_prop *props;
    uint32_t n_props;
    uint32_t *lim;                  /* lim[i]: last candidate index for a key typed at i */
    uint8_t *req_after;             /* req_after[i]: some property >= i is required */
    bool dyn_opt;                   /* an optional property is an item-number integer */
    /* literal set, sorted by bytes, deduplicated */
    gr_lit *lits;
    uint32_t n_lits;
    size_t minlen;                  /* shortest serialization (saturating) */
} gr_node;

struct agx_grammar {
    gr_node *nodes;
    uint32_t n_nodes;
    uint32_t root;
};

/* One open value. Meaning of the fields depends on the node kind (grammar.c). */
typedef struct gr_frame {
    uint32_t node;
    uint8_t phase;
    uint8_t aux;
    uint16_t pad;
    uint32_t n;
    uint32_t pad2;
    uint64_t v;
} gr_frame;

typedef struct gr_core {
    uint32_t depth;     /* open frames; 0 with done = complete */
    uint32_t done;
    gr_frame f[AGX_GRAMMAR_MAX_DEPTH + 1];
} gr_core;

struct agx_grammar_state {
    const agx_grammar *g;
    gr_core core;
    gr_core *scratch;   /* mask DFS stack, one core per trie depth */
    uint32_t *iter;     /* mask DFS child cursors (2 per trie depth) */
    size_t scratch_cap;
};

/* Copies only the live part of a core (the header and the open frames). */
static inline void gr_core_copy(gr_core *dst, const gr_core *src) {
    memcpy(dst, src, offsetof(gr_core, f) + (size_t)src->depth * sizeof(gr_frame));
}

/* Advances core by one byte; false when b is not a valid continuation (core is
 * then garbage: callers step a copy). */
bool gr_step(const agx_grammar *g, gr_core *s, uint8_t b);
bool gr_is_complete(const agx_grammar *g, const gr_core *s);

/* Conservative pre-check: false only when gr_step(g, copy of s, b) would fail. */
bool gr_may_accept(const agx_grammar *g, const gr_core *s, uint8_t b);

/* String-body fast path: when the innermost open value is a free string in its
 * plain body (no escape or UTF-8 sequence pending), returns true and the number
 * of further code points the string may take (capped at 0xFFFE). */
bool gr_in_string_body(const agx_grammar *g, const gr_core *s, uint32_t *remaining_chars);

/* Inside a free string, right after a token that ended inside a UTF-8 character
 * (GR_PEND_UTF8: *need continuation bytes, the first in [*lo, *hi]) or right
 * after a backslash (GR_PEND_ESC); *remaining = further code points allowed,
 * capped at 0xFFFD. GR_PEND_NONE otherwise. */
enum { GR_PEND_NONE, GR_PEND_UTF8, GR_PEND_ESC };
int gr_string_pending(const agx_grammar *g, const gr_core *s, uint32_t *need, uint8_t *lo,
                      uint8_t *hi, uint32_t *remaining);

/* Token class for the fast path: bytes that can sit inside a string body with
 * nothing pending before them (no quote, backslash or control byte; valid UTF-8,
 * possibly ending inside a character). *chars = code points started. */
bool gr_plain_chars(const uint8_t *p, size_t n, uint32_t *chars);

/* The mask without the string fast path (full trie walk); tests compare both. */
agx_status gr_mask_slow(agx_grammar_state *s, const agx_grammar_vocab *v, uint8_t *allowed,
                        size_t *n_allowed, agx_error *err);

#endif
