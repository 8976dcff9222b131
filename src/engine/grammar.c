/* grammar.c — owns the JSON-schema compiler (schema → graph of value nodes) and
 * the byte-level automaton over it: a stack of small frames, one per open value,
 * stepped one byte at a time, plus forced spans and shortest completions.
 * The token trie and the vocabulary mask live in grammar_mask.c. */
#include "agx/grammar.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/grammar_internal.h"

/* Shortest document a schema may force: beyond this the schema is refused, which
 * also bounds every completion loop below. */
#define GR_MAX_MINLEN ((size_t)1 << 20)
#define GR_MAX_NODES 65536u
#define GR_MAX_LITS 65536u

/* ---- frame phases (per node kind) ---- */
enum { S_START, S_BODY, S_ESC, S_HEX, S_LBS, S_LU, S_LHEX, S_UTF8 };
enum { O_START, O_OPEN, O_KEY, O_COLON, O_VALUE, O_AFTER, O_COMMA };
enum { A_START, A_OPEN, A_ITEM, A_AFTER, A_COMMA };
enum { I_START, I_SIGN, I_DIG };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

/* Limits that keep every number parseable by jansson (no overflow). */
#define N_MAX_INT_DIGITS 15
#define N_MAX_FRAC_DIGITS 15
#define N_MAX_EXP_DIGITS 2

/* step results */
enum { R_OK, R_REJECT, R_DONE, R_RETRY, R_PUSH };

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t sat_mul(size_t a, size_t b) {
    if (a == 0 || b == 0) return 0;
    return a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static int u64_digits(uint64_t v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

/* ================================================================ integers */

static void gr_irange_from(int64_t lo, int64_t hi, gr_irange *r) {
    memset(r, 0, sizeof *r);
    if (hi >= 0) {
        r->has_pos = true;
        r->pos_lo = lo > 0 ? (uint64_t)lo : 0;
        r->pos_hi = (uint64_t)hi;
    }
    if (lo <= -1) {
        r->has_neg = true;
        r->neg_lo = hi <= -1 ? (uint64_t)(-(hi + 1)) + 1 : 1;
        r->neg_hi = (uint64_t)(-(lo + 1)) + 1;
    }
}

/* The range an integer node admits where the innermost enclosing array item has
 * 1-based number `item` (0: none). *dyn_ok is false when the relation cannot be
 * met there; the static range is then returned (a required value never dead-ends;
 * an optional property in that state is not offered). */
static gr_irange gr_int_range(const gr_node *nd, uint32_t item, bool *dyn_ok) {
    if (dyn_ok) *dyn_ok = true;
    if (nd->rel == GR_REL_NONE) return nd->ir;
    int64_t lo = nd->imin, hi = nd->imax;
    if (nd->rel == GR_REL_EQ_ITEM) {
        if ((int64_t)item > lo) lo = (int64_t)item;
        if ((int64_t)item < hi) hi = (int64_t)item;
    } else if ((int64_t)item - 1 < hi) {
        hi = (int64_t)item - 1;
    }
    if (item == 0 || lo > hi) {
        if (dyn_ok) *dyn_ok = false;
        return nd->ir;
    }
    gr_irange r;
    gr_irange_from(lo, hi, &r);
    return r;
}

/* 1-based number of the innermost array item open among frames [0, below). */
static uint32_t gr_item_number(const agx_grammar *g, const gr_core *s, uint32_t below) {
    for (uint32_t d = below; d-- > 0;)
        if (g->nodes[s->f[d].node].kind == GR_ARRAY) return s->f[d].n + 1;
    return 0;
}

/* Is property j of an object worth offering where the item number is `item`? */
static bool gr_prop_viable(const agx_grammar *g, const gr_node *nd, uint32_t j, uint32_t item) {
    const gr_node *c = &g->nodes[nd->props[j].child];
    if (nd->props[j].required || c->kind != GR_INTEGER || c->rel == GR_REL_NONE) return true;
    bool ok;
    gr_int_range(c, item, &ok);
    return ok;
}

static size_t gr_count_min(const agx_grammar *g, uint32_t node, uint32_t item);

/* ================================================================ compile */

typedef struct gr_cctx {
    agx_grammar *g;
    uint32_t cap;
    agx_error *err;
} gr_cctx;

static const char *const gr_common_kw[] = {"type",    "enum",    "const",    "title",
                                           "description", "$schema", "$id", "default",
                                           "examples", "$comment", NULL};
/* Keywords each type adds, indexed like gr_type_names. */
static const char *const gr_type_names[] = {"object", "array",   "string", "integer",
                                            "number", "boolean", "null",   NULL};
static const char *const *const gr_type_kw[] = {
    (const char *const[]){"properties", "required", "additionalProperties", NULL},
    (const char *const[]){"items", "minItems", "maxItems", NULL},
    (const char *const[]){"minLength", "maxLength", NULL},
    (const char *const[]){"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                          "x-agx-item-number", NULL},
    (const char *const[]){NULL},
    (const char *const[]){NULL},
    (const char *const[]){NULL},
};
enum { T_OBJECT, T_ARRAY, T_STRING, T_INTEGER, T_NUMBER, T_BOOLEAN, T_NULL, T_NONE = -1 };

static bool gr_in_list(const char *const *list, const char *s) {
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return true;
    return false;
}

static agx_status gr_new_node(gr_cctx *cx, uint8_t kind, uint32_t *out) {
    agx_grammar *g = cx->g;
    if (g->n_nodes >= GR_MAX_NODES)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema too large: more than %u sub-schemas", GR_MAX_NODES);
    if (g->n_nodes == cx->cap) {
        uint32_t ncap = cx->cap ? cx->cap * 2 : 16;
        gr_node *n = realloc(g->nodes, (size_t)ncap * sizeof *n);
        if (!n) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory compiling schema");
        g->nodes = n;
        cx->cap = ncap;
    }
    gr_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->max_n = UINT32_MAX;
    *out = g->n_nodes++;
    return AGX_OK;
}

/* Reads a non-negative integer keyword into *out (absent: unchanged). */
static agx_status gr_get_count(gr_cctx *cx, json_t *sch, const char *kw, const char *path,
                               uint32_t *out) {
    json_t *v = json_object_get(sch, kw);
    if (!v) return AGX_OK;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v))
        d = json_real_value(v);
    else
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"%s\" must be a non-negative integer", path, kw);
    if (d < 0 || d >= (double)UINT32_MAX)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"%s\" is out of range (0..%u)", path, kw,
                             UINT32_MAX - 1);
    *out = (uint32_t)d;
    return AGX_OK;
}

static int gr_lit_cmp(const void *a, const void *b) {
    const gr_lit *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static bool gr_value_has_type(json_t *v, int t) {
    switch (t) {
    case T_OBJECT: return json_is_object(v);
    case T_ARRAY: return json_is_array(v);
    case T_STRING: return json_is_string(v);
    case T_INTEGER: return json_is_integer(v);
    case T_NUMBER: return json_is_number(v);
    case T_BOOLEAN: return json_is_boolean(v);
    case T_NULL: return json_is_null(v);
    default: return true;
    }
}

/* enum / const / boolean / null: a sorted set of canonical serializations. */
static agx_status gr_compile_literal(gr_cctx *cx, json_t **vals, size_t n, int type,
                                     const char *path, uint32_t *out) {
    if (n == 0)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"enum\" is empty, no value can match", path);
    if (n > GR_MAX_LITS)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"enum\" has more than %u values", path, GR_MAX_LITS);
    uint32_t idx;
    agx_status st = gr_new_node(cx, GR_LITERAL, &idx);
    if (st) return st;
    gr_lit *lits = calloc(n, sizeof *lits);
    if (!lits) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory compiling schema");
    cx->g->nodes[idx].lits = lits;
    for (size_t i = 0; i < n; i++) {
        if (!gr_value_has_type(vals[i], type))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: enum value #%zu does not have type \"%s\"", path,
                                 i, gr_type_names[type]);
        char *s = json_dumps(vals[i], JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory compiling schema");
        size_t len = strlen(s);
        lits[cx->g->nodes[idx].n_lits].s = s;
        lits[cx->g->nodes[idx].n_lits].len = (uint32_t)len;
        cx->g->nodes[idx].n_lits++;
        if (len == 0 || len > (1u << 20))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: enum value #%zu is too long", path, i);
    }
    gr_node *nd = &cx->g->nodes[idx];
    qsort(nd->lits, nd->n_lits, sizeof *nd->lits, gr_lit_cmp);
    uint32_t w = 0;
    for (uint32_t r = 0; r < nd->n_lits; r++) {
        if (w > 0 && gr_lit_cmp(&nd->lits[w - 1], &nd->lits[r]) == 0) {
            free(nd->lits[r].s);
            continue;
        }
        nd->lits[w++] = nd->lits[r];
    }
    nd->n_lits = w;
    nd->minlen = SIZE_MAX;
    for (uint32_t i = 0; i < w; i++)
        if (nd->lits[i].len < nd->minlen) nd->minlen = nd->lits[i].len;
    *out = idx;
    return AGX_OK;
}

/* Integer bound keyword as an int64 (reals rounded inward, clamped). */
static agx_status gr_get_bound(gr_cctx *cx, json_t *sch, const char *kw, const char *path,
                               bool is_min, bool exclusive, int64_t *io) {
    json_t *v = json_object_get(sch, kw);
    if (!v) return AGX_OK;
    if (!json_is_number(v))
        return agx_error_set(cx->err, AGX_ERR_CONFIG, "schema at %s: \"%s\" must be a number",
                             path, kw);
    int64_t b;
    if (json_is_integer(v)) {
        b = (int64_t)json_integer_value(v);
        if (exclusive && (is_min ? b == INT64_MAX : b == INT64_MIN))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: no integer satisfies \"%s\"", path, kw);
        if (exclusive) b += is_min ? 1 : -1;
    } else {
        double d = json_real_value(v);
        double r = is_min ? (exclusive ? floor(d) + 1 : ceil(d))
                          : (exclusive ? ceil(d) - 1 : floor(d));
        if (r <= -9.2e18) b = INT64_MIN;
        else if (r >= 9.2e18) b = INT64_MAX;
        else b = (int64_t)r;
    }
    if (is_min ? b > *io : b < *io) *io = b;
    return AGX_OK;
}

static agx_status gr_compile_node(gr_cctx *cx, json_t *sch, char *path, size_t plen, int depth,
                                  uint32_t *out);

/* Appends "/seg" to the JSON-pointer-ish path used in messages (512 bytes,
 * truncated quietly when very deep). */
static void gr_path_push(char *path, size_t plen, const char *seg, size_t *nlen) {
    int w = snprintf(path + plen, plen < 511 ? 512 - plen : 1, "/%s", seg);
    size_t add = w < 0 ? 0 : (size_t)w;
    *nlen = plen + add < 511 ? plen + add : 511;
}

static agx_status gr_compile_object(gr_cctx *cx, json_t *sch, char *path, size_t plen,
                                    int depth, uint32_t *out) {
    char where[512];
    snprintf(where, sizeof where, "%s", plen ? path : "/");
    json_t *props = json_object_get(sch, "properties");
    json_t *req = json_object_get(sch, "required");
    json_t *addl = json_object_get(sch, "additionalProperties");
    if (props && !json_is_object(props))
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"properties\" must be an object", where);
    if (req && !json_is_array(req))
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"required\" must be an array of names", where);
    if (addl && !json_is_boolean(addl) && !json_is_object(addl))
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: \"additionalProperties\" must be a boolean or schema",
                             where);
    size_t n = props ? json_object_size(props) : 0;
    if (n > 65535)
        return agx_error_set(cx->err, AGX_ERR_CONFIG, "schema at %s: too many properties", where);
    uint32_t idx;
    agx_status st = gr_new_node(cx, GR_OBJECT, &idx);
    if (st) return st;
    gr_prop *pr = calloc(n ? n : 1, sizeof *pr);
    uint32_t *lim = calloc(n ? n : 1, sizeof *lim);
    uint8_t *ra = calloc(n + 1, 1);
    gr_node *nd = &cx->g->nodes[idx];
    nd->props = pr;
    nd->lim = lim;
    nd->req_after = ra;
    if (!pr || !lim || !ra) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory");
    /* jansson iterates objects in insertion order: the order the schema lists. */
    const char *key;
    json_t *sub;
    size_t i = 0;
    json_object_foreach(props, key, sub) {
        json_t *ks = json_string(key);
        char *q = ks ? json_dumps(ks, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!q) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory");
        cx->g->nodes[idx].props[i].key = q;
        cx->g->nodes[idx].props[i].key_len = (uint32_t)strlen(q);
        cx->g->nodes[idx].n_props = (uint32_t)(i + 1);
        size_t nlen;
        char saved[512];
        memcpy(saved, path, 512);
        gr_path_push(path, plen, "properties", &nlen);
        gr_path_push(path, nlen, key, &nlen);
        uint32_t child;
        st = gr_compile_node(cx, sub, path, nlen, depth + 1, &child);
        memcpy(path, saved, 512);
        if (st) return st;
        cx->g->nodes[idx].props[i].child = child;
        i++;
    }
    nd = &cx->g->nodes[idx];
    for (size_t r = 0; req && r < json_array_size(req); r++) {
        json_t *name = json_array_get(req, r);
        if (!json_is_string(name))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: \"required\" must list property names", where);
        char *q = json_dumps(name, JSON_COMPACT | JSON_ENCODE_ANY); /* compare quoted forms */
        if (!q) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory");
        size_t j = 0;
        while (j < n && strcmp(nd->props[j].key, q) != 0) j++;
        free(q);
        if (j == n)
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: required property \"%s\" is not in \"properties\"",
                                 where, json_string_value(name));
        nd->props[j].required = true;
    }
    size_t minlen = 2, nreq = 0;
    ra[n] = 0;
    for (size_t j = n; j-- > 0;) ra[j] = (uint8_t)(ra[j + 1] || nd->props[j].required);
    for (size_t j = 0; j < n; j++) {
        size_t k = j;
        while (k < n && !nd->props[k].required) k++;
        lim[j] = (uint32_t)(k < n ? k : n - 1);
        if (nd->props[j].required) {
            minlen = sat_add(minlen, nreq ? 1 : 0);
            minlen = sat_add(minlen, nd->props[j].key_len + 1);
            minlen = sat_add(minlen, cx->g->nodes[nd->props[j].child].minlen);
            nreq++;
        }
    }
    nd->minlen = minlen;
    for (size_t j = 0; j < n; j++) {
        const gr_node *c = &cx->g->nodes[nd->props[j].child];
        if (nd->props[j].required && c->ctx) nd->ctx = true;
        if (!nd->props[j].required && c->kind == GR_INTEGER && c->rel != GR_REL_NONE)
            nd->dyn_opt = true;
    }
    *out = idx;
    return AGX_OK;
}

static agx_status gr_compile_node(gr_cctx *cx, json_t *sch, char *path, size_t plen, int depth,
                                  uint32_t *out) {
    const char *where = plen ? path : "/";
    if (!json_is_object(sch))
        return agx_error_set(cx->err, AGX_ERR_CONFIG, "schema at %s must be a JSON object",
                             where);
    if (depth >= AGX_GRAMMAR_MAX_DEPTH)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s nests deeper than %d levels", where,
                             AGX_GRAMMAR_MAX_DEPTH);
    json_t *type = json_object_get(sch, "type");
    json_t *en = json_object_get(sch, "enum");
    json_t *cn = json_object_get(sch, "const");
    int t = T_NONE;
    if (type) {
        if (!json_is_string(type))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: \"type\" must be one type name (lists of types "
                                 "are not supported)", where);
        for (int k = 0; gr_type_names[k]; k++)
            if (strcmp(gr_type_names[k], json_string_value(type)) == 0) t = k;
        if (t == T_NONE)
            return agx_error_set(cx->err, AGX_ERR_CONFIG, "schema at %s: unknown type \"%s\"",
                                 where, json_string_value(type));
    }
    const char *key;
    json_t *val;
    json_object_foreach(sch, key, val) {
        (void)val;
        if (gr_in_list(gr_common_kw, key)) continue;
        if (t != T_NONE && gr_in_list(gr_type_kw[t], key)) continue;
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "unsupported schema keyword \"%s\" at %s%s%s (the grammar supports "
                             "type, enum, const, properties, required, additionalProperties, "
                             "items, minItems, maxItems, minLength, maxLength, minimum, maximum)",
                             key, where, t != T_NONE ? " for type " : "",
                             t != T_NONE ? gr_type_names[t] : "");
    }
    if (en && cn)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s: use either \"enum\" or \"const\", not both", where);
    if (en) {
        if (!json_is_array(en))
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: \"enum\" must be an array", where);
        size_t n = json_array_size(en);
        json_t **vals = malloc((n ? n : 1) * sizeof *vals);
        if (!vals) return agx_error_set(cx->err, AGX_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) vals[i] = json_array_get(en, i);
        agx_status st = gr_compile_literal(cx, vals, n, t, where, out);
        free(vals);
        return st;
    }
    if (cn) return gr_compile_literal(cx, &cn, 1, t, where, out);
    if (t == T_NONE)
        return agx_error_set(cx->err, AGX_ERR_CONFIG,
                             "schema at %s has no \"type\", \"enum\" or \"const\"", where);
    agx_status st;
    uint32_t idx;
    switch (t) {
    case T_OBJECT: return gr_compile_object(cx, sch, path, plen, depth, out);
    case T_BOOLEAN: {
        json_t *v[2] = {json_true(), json_false()};
        return gr_compile_literal(cx, v, 2, t, where, out);
    }
    case T_NULL: {
        json_t *v = json_null();
        return gr_compile_literal(cx, &v, 1, t, where, out);
    }
    case T_STRING: {
        uint32_t mn = 0, mx = UINT32_MAX;
        if ((st = gr_get_count(cx, sch, "minLength", where, &mn))) return st;
        if ((st = gr_get_count(cx, sch, "maxLength", where, &mx))) return st;
        if (mn > mx)
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: minLength %u > maxLength %u", where, mn, mx);
        if ((st = gr_new_node(cx, GR_STRING, &idx))) return st;
        cx->g->nodes[idx].min_n = mn;
        cx->g->nodes[idx].max_n = mx;
        cx->g->nodes[idx].minlen = sat_add(2, mn);
        *out = idx;
        return AGX_OK;
    }
    case T_ARRAY: {
        uint32_t mn = 0, mx = UINT32_MAX;
        if ((st = gr_get_count(cx, sch, "minItems", where, &mn))) return st;
        if ((st = gr_get_count(cx, sch, "maxItems", where, &mx))) return st;
        if (mn > mx)
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: minItems %u > maxItems %u", where, mn, mx);
        json_t *items = json_object_get(sch, "items");
        if (!items)
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: an array needs an \"items\" schema", where);
        if ((st = gr_new_node(cx, GR_ARRAY, &idx))) return st;
        size_t nlen;
        char saved[512];
        memcpy(saved, path, 512);
        gr_path_push(path, plen, "items", &nlen);
        uint32_t child;
        st = gr_compile_node(cx, items, path, nlen, depth + 1, &child);
        memcpy(path, saved, 512);
        if (st) return st;
        gr_node *nd = &cx->g->nodes[idx];
        nd->min_n = mn;
        nd->max_n = mx;
        nd->item = child;
        size_t each = cx->g->nodes[child].minlen;
        nd->minlen = mn ? sat_add(2, sat_add(sat_mul(mn, each), mn - 1)) : 2;
        if (cx->g->nodes[child].ctx) { /* items' shortest forms depend on their numbers */
            size_t sum = mn ? 1 + (size_t)mn : 2;
            for (uint32_t c = 0; c < mn && sum <= GR_MAX_MINLEN; c++)
                sum = sat_add(sum, gr_count_min(cx->g, child, c + 1));
            nd->minlen = sum > GR_MAX_MINLEN ? SIZE_MAX : sum;
        }
        *out = idx;
        return AGX_OK;
    }
    case T_INTEGER: {
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        if ((st = gr_get_bound(cx, sch, "minimum", where, true, false, &lo))) return st;
        if ((st = gr_get_bound(cx, sch, "exclusiveMinimum", where, true, true, &lo))) return st;
        if ((st = gr_get_bound(cx, sch, "maximum", where, false, false, &hi))) return st;
        if ((st = gr_get_bound(cx, sch, "exclusiveMaximum", where, false, true, &hi))) return st;
        if (lo > hi)
            return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                 "schema at %s: no integer satisfies minimum %lld / maximum %lld",
                                 where, (long long)lo, (long long)hi);
        uint8_t rel = GR_REL_NONE;
        json_t *xr = json_object_get(sch, "x-agx-item-number");
        if (xr) {
            const char *r = json_string_value(xr);
            if (r && strcmp(r, "equal") == 0) rel = GR_REL_EQ_ITEM;
            else if (r && strcmp(r, "below") == 0) rel = GR_REL_BELOW_ITEM;
            else
                return agx_error_set(cx->err, AGX_ERR_CONFIG,
                                     "schema at %s: \"x-agx-item-number\" must be \"equal\" or "
                                     "\"below\"", where);
        }
        if ((st = gr_new_node(cx, GR_INTEGER, &idx))) return st;
        gr_node *nd = &cx->g->nodes[idx];
        nd->imin = lo;
        nd->imax = hi;
        gr_irange_from(lo, hi, &nd->ir);
        nd->rel = rel;
        nd->ctx = rel != GR_REL_NONE;
        nd->minlen = nd->ir.has_pos ? (size_t)u64_digits(nd->ir.pos_lo)
                                    : 1 + (size_t)u64_digits(nd->ir.neg_lo);
        *out = idx;
        return AGX_OK;
    }
    case T_NUMBER:
        if ((st = gr_new_node(cx, GR_NUMBER, &idx))) return st;
        cx->g->nodes[idx].minlen = 1;
        *out = idx;
        return AGX_OK;
    default: break;
    }
    return agx_error_set(cx->err, AGX_ERR_CONFIG, "schema at %s: unsupported type", where);
}

void agx_grammar_free(agx_grammar *g) {
    if (!g) return;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        gr_node *nd = &g->nodes[i];
        for (uint32_t j = 0; j < nd->n_props; j++) free(nd->props[j].key);
        free(nd->props);
        free(nd->lim);
        free(nd->req_after);
        for (uint32_t j = 0; j < nd->n_lits; j++) free(nd->lits[j].s);
        free(nd->lits);
    }
    free(g->nodes);
    free(g);
}

agx_status agx_grammar_compile(const char *schema_json, size_t len, agx_grammar **out,
                               agx_error *err) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(schema_json ? schema_json : "", schema_json ? len : 0,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return agx_error_set(err, AGX_ERR_JSON,
                             "grammar schema is not valid JSON: %s (line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
    agx_grammar *g = calloc(1, sizeof *g);
    if (!g) {
        json_decref(root);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory compiling schema");
    }
    gr_cctx cx = {g, 0, err};
    char path[512] = "";
    agx_status st = gr_compile_node(&cx, root, path, 0, 0, &g->root);
    json_decref(root);
    if (st == AGX_OK && (g->nodes[g->root].ctx ? gr_count_min(g, g->root, 0)
                                               : g->nodes[g->root].minlen) > GR_MAX_MINLEN)
        st = agx_error_set(err, AGX_ERR_CONFIG,
                           "schema's shortest document is longer than %zu bytes; lower its "
                           "minItems/minLength", GR_MAX_MINLEN);
    if (st) {
        agx_grammar_free(g);
        return st;
    }
    *out = g;
    return AGX_OK;
}

/* ================================================================ automaton */

static void gr_push(gr_core *s, const agx_grammar *g, uint32_t node) {
    gr_frame *f = &s->f[s->depth++];
    memset(f, 0, sizeof *f);
    f->node = node;
    if (g->nodes[node].kind == GR_LITERAL) f->v = (uint64_t)g->nodes[node].n_lits << 32;
}

/* The innermost value ended: pop it and move its parent past the value. */
static void gr_pop(const agx_grammar *g, gr_core *s) {
    s->depth--;
    if (s->depth == 0) {
        s->done = 1;
        return;
    }
    gr_frame *p = &s->f[s->depth - 1];
    if (g->nodes[p->node].kind == GR_OBJECT) {
        p->phase = O_AFTER;
    } else {
        p->n++;
        p->phase = A_AFTER;
    }
}

static const uint8_t gr_utf8_lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
static const uint8_t gr_utf8_hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};

static int gr_hexval(uint8_t b) {
    if (b >= '0' && b <= '9') return b - '0';
    if (b >= 'a' && b <= 'f') return b - 'a' + 10;
    if (b >= 'A' && b <= 'F') return b - 'A' + 10;
    return -1;
}

/* String frame: n = code points so far (counted when a character starts),
 * aux = hex digit index or pending UTF-8 (need | restriction << 2), v = \u value. */
static int gr_step_string(gr_frame *f, const gr_node *nd, uint8_t b) {
    switch (f->phase) {
    case S_START:
        if (b != '"') return R_REJECT;
        f->phase = S_BODY;
        return R_OK;
    case S_BODY:
        if (b == '"') return f->n >= nd->min_n ? R_DONE : R_REJECT;
        if (b < 0x20 || b == 0x7F || f->n >= nd->max_n) return R_REJECT;
        if (b == '\\') {
            f->n++;
            f->phase = S_ESC;
            return R_OK;
        }
        if (b < 0x80) {
            f->n++;
            return R_OK;
        }
        {
            uint8_t need, r;
            if (b >= 0xC2 && b <= 0xDF) need = 1, r = 0;
            else if (b == 0xE0) need = 2, r = 1;
            else if (b == 0xED) need = 2, r = 2;
            else if (b >= 0xE1 && b <= 0xEF) need = 2, r = 0;
            else if (b == 0xF0) need = 3, r = 3;
            else if (b >= 0xF1 && b <= 0xF3) need = 3, r = 0;
            else if (b == 0xF4) need = 3, r = 4;
            else return R_REJECT;
            f->n++;
            f->phase = S_UTF8;
            f->aux = (uint8_t)(need | r << 2);
            return R_OK;
        }
    case S_UTF8: {
        uint8_t r = f->aux >> 2, need = f->aux & 3;
        if (b < gr_utf8_lo[r] || b > gr_utf8_hi[r]) return R_REJECT;
        need--;
        f->aux = need;
        if (need == 0) f->phase = S_BODY;
        return R_OK;
    }
    case S_ESC:
        switch (b) {
        case '"': case '\\': case '/': case 'n': case 'r': case 't': /* no \b \f: controls */
            f->phase = S_BODY;
            return R_OK;
        case 'u':
            f->phase = S_HEX;
            f->aux = 0;
            f->v = 0;
            return R_OK;
        default: return R_REJECT;
        }
    case S_HEX: {
        int h = gr_hexval(b);
        if (h < 0) return R_REJECT;
        f->v = f->v * 16 + (uint64_t)h;
        f->aux++;
        if (f->aux == 2 && f->v >= 0xDC && f->v <= 0xDF) return R_REJECT; /* lone low surrogate */
        if (f->aux == 3 && f->v == 0x001) return R_REJECT; /* \u0010..\u001f: controls */
        if (f->aux == 4) {
            /* controls other than tab/newline/return (and \u0000, which jansson
             * refuses) are not text a plan can carry */
            if ((f->v < 0x20 && f->v != 0x09 && f->v != 0x0A && f->v != 0x0D) || f->v == 0x7F)
                return R_REJECT;
            f->phase = (f->v >= 0xD800 && f->v <= 0xDBFF) ? S_LBS : S_BODY;
        }
        return R_OK;
    }
    case S_LBS:
        if (b != '\\') return R_REJECT;
        f->phase = S_LU;
        return R_OK;
    case S_LU:
        if (b != 'u') return R_REJECT;
        f->phase = S_LHEX;
        f->aux = 0;
        return R_OK;
    case S_LHEX: {
        int h = gr_hexval(b);
        if (h < 0 || (f->aux == 0 && h != 0xD) || (f->aux == 1 && h < 0xC)) return R_REJECT;
        if (++f->aux == 4) f->phase = S_BODY;
        return R_OK;
    }
    }
    return R_REJECT;
}

/* Can some digit string starting with the digits of v (v > 0) land in [lo, hi]? */
static bool gr_int_feasible(uint64_t v, uint64_t lo, uint64_t hi) {
    if (v == 0) return lo == 0;
    if (v >= lo && v <= hi) return true;
    uint64_t p = 1;
    for (int k = 1; k <= 19; k++) {
        if (p > UINT64_MAX / 10) break;
        p *= 10;
        if (v > UINT64_MAX / p) break;
        uint64_t a = v * p;
        if (a > hi) break;
        uint64_t b = a > UINT64_MAX - (p - 1) ? UINT64_MAX : a + (p - 1);
        if (b >= lo) return true;
    }
    return false;
}

/* Integer frame: aux = negative, n = digits, v = magnitude. */
static bool gr_int_can_end(const gr_frame *f, const gr_irange *r) {
    if (f->phase != I_DIG) return false;
    uint64_t lo = f->aux ? r->neg_lo : r->pos_lo, hi = f->aux ? r->neg_hi : r->pos_hi;
    return f->v >= lo && f->v <= hi;
}

static int gr_step_integer(const agx_grammar *g, const gr_core *s, gr_frame *f,
                           const gr_node *nd, uint8_t b) {
    gr_irange r = gr_int_range(nd, nd->rel ? gr_item_number(g, s, s->depth - 1) : 0, NULL);
    if (f->phase == I_START && b == '-') {
        if (!r.has_neg) return R_REJECT;
        f->aux = 1;
        f->phase = I_SIGN;
        return R_OK;
    }
    int end = gr_int_can_end(f, &r) ? R_RETRY : R_REJECT;
    if (b < '0' || b > '9') return end;
    if (f->phase == I_START && !r.has_pos) return R_REJECT;
    uint64_t lo = f->aux ? r.neg_lo : r.pos_lo, hi = f->aux ? r.neg_hi : r.pos_hi;
    unsigned d = (unsigned)(b - '0');
    uint64_t nv;
    if (f->phase == I_DIG) {
        if (f->v == 0 || f->v > (UINT64_MAX - 9) / 10) return end; /* no leading zeros */
        nv = f->v * 10 + d;
    } else {
        if (f->aux && d == 0) return R_REJECT; /* no "-0" */
        nv = d;
    }
    if (!gr_int_feasible(nv, lo, hi)) return end;
    f->v = nv;
    f->n++;
    f->phase = I_DIG;
    return R_OK;
}

static bool gr_num_can_end(const gr_frame *f) {
    return f->phase == N_ZERO || f->phase == N_INT || f->phase == N_FRAC || f->phase == N_EXP;
}

static int gr_step_number(gr_frame *f, uint8_t b) {
    bool dig = b >= '0' && b <= '9';
    switch (f->phase) {
    case N_START:
        if (b == '-') { f->phase = N_MINUS; return R_OK; }
        /* fall through */
    case N_MINUS:
        if (b == '0') { f->phase = N_ZERO; return R_OK; }
        if (dig) { f->phase = N_INT; f->n = 1; return R_OK; }
        return R_REJECT;
    case N_ZERO:
    case N_INT:
        if (dig && f->phase == N_INT && f->n < N_MAX_INT_DIGITS) { f->n++; return R_OK; }
        if (b == '.') { f->phase = N_DOT; return R_OK; }
        if (b == 'e' || b == 'E') { f->phase = N_E; return R_OK; }
        return R_RETRY;
    case N_DOT:
        if (!dig) return R_REJECT;
        f->phase = N_FRAC;
        f->n = 1;
        return R_OK;
    case N_FRAC:
        if (dig && f->n < N_MAX_FRAC_DIGITS) { f->n++; return R_OK; }
        if (b == 'e' || b == 'E') { f->phase = N_E; return R_OK; }
        return R_RETRY;
    case N_E:
        if (b == '+' || b == '-') { f->phase = N_ESIGN; return R_OK; }
        /* fall through */
    case N_ESIGN:
        if (!dig) return R_REJECT;
        f->phase = N_EXP;
        f->n = 1;
        return R_OK;
    case N_EXP:
        if (dig && f->n < N_MAX_EXP_DIGITS) { f->n++; return R_OK; }
        return R_RETRY;
    }
    return R_REJECT;
}

/* Literal frame: n = bytes matched, v = candidate range lo | hi << 32. */
static int gr_step_literal(gr_frame *f, const gr_node *nd, uint8_t b) {
    uint32_t lo = (uint32_t)f->v, hi = (uint32_t)(f->v >> 32), pos = f->n;
    bool can_end = pos > 0 && nd->lits[lo].len == pos;
    uint32_t a = lo + (can_end ? 1 : 0), z = hi;
    /* first entry with byte >= b, then first with byte > b (all longer than pos) */
    uint32_t l = a, r = z;
    while (l < r) {
        uint32_t m = l + (r - l) / 2;
        if ((uint8_t)nd->lits[m].s[pos] < b) l = m + 1; else r = m;
    }
    uint32_t first = l;
    r = z;
    while (l < r) {
        uint32_t m = l + (r - l) / 2;
        if ((uint8_t)nd->lits[m].s[pos] <= b) l = m + 1; else r = m;
    }
    if (first == l) return can_end ? R_RETRY : R_REJECT;
    pos++;
    f->n = pos;
    f->v = (uint64_t)first | (uint64_t)l << 32;
    if (l - first == 1 && nd->lits[first].len == pos) return R_DONE;
    return R_OK;
}

/* Some property in [i, lim[i]] can be written here? */
static bool gr_any_viable(const agx_grammar *g, const gr_node *nd, uint32_t i, uint32_t item) {
    if (i >= nd->n_props) return false;
    if (!nd->dyn_opt) return true;
    for (uint32_t j = i; j <= nd->lim[i]; j++)
        if (gr_prop_viable(g, nd, j, item)) return true;
    return false;
}

/* Object key bytes: candidates are the properties from i up to the next required
 * one (optional ones may be skipped), minus those that cannot be met here. */
static int gr_key_step(const agx_grammar *g, const gr_core *s, gr_frame *f, const gr_node *nd,
                       uint8_t b) {
    uint32_t i = f->n, pos = (uint32_t)f->v, cand = (uint32_t)(f->v >> 32);
    uint32_t lim = nd->lim[i];
    uint32_t item = nd->dyn_opt ? gr_item_number(g, s, s->depth - 1) : 0;
    const gr_prop *pc = &nd->props[cand];
    for (uint32_t j = cand; j <= lim; j++) {
        const gr_prop *p = &nd->props[j];
        if (p->key_len > pos && (uint8_t)p->key[pos] == b &&
            (j == cand || memcmp(p->key, pc->key, pos) == 0) &&
            (!nd->dyn_opt || gr_prop_viable(g, nd, j, item))) {
            pos++;
            if (pos == p->key_len) {
                f->phase = O_COLON;
                f->n = j + 1;
                f->v = j;
            } else {
                f->v = (uint64_t)pos | (uint64_t)j << 32;
            }
            return R_OK;
        }
    }
    return R_REJECT;
}

static int gr_step_object(const agx_grammar *g, gr_core *s, gr_frame *f, const gr_node *nd,
                          uint8_t b) {
    switch (f->phase) {
    case O_START:
        if (b != '{') return R_REJECT;
        f->phase = O_OPEN;
        return R_OK;
    case O_OPEN:
        if (b == '}') return nd->req_after[0] ? R_REJECT : R_DONE;
        /* fall through */
    case O_COMMA:
        if (b != '"' || f->n >= nd->n_props) return R_REJECT;
        f->phase = O_KEY;
        f->v = (uint64_t)f->n << 32;
        /* fall through */
    case O_KEY:
        return gr_key_step(g, s, f, nd, b);
    case O_COLON:
        if (b != ':') return R_REJECT;
        f->phase = O_VALUE;
        gr_push(s, g, nd->props[f->v].child);
        return R_OK;
    case O_AFTER:
        if (b == ',' &&
            gr_any_viable(g, nd, f->n, nd->dyn_opt ? gr_item_number(g, s, s->depth - 1) : 0)) {
            f->phase = O_COMMA;
            return R_OK;
        }
        if (b == '}' && !nd->req_after[f->n]) return R_DONE;
        return R_REJECT;
    }
    return R_REJECT;
}

static int gr_step_array(const agx_grammar *g, gr_core *s, gr_frame *f, const gr_node *nd,
                         uint8_t b) {
    switch (f->phase) {
    case A_START:
        if (b != '[') return R_REJECT;
        f->phase = A_OPEN;
        return R_OK;
    case A_OPEN:
        if (b == ']') return nd->min_n == 0 ? R_DONE : R_REJECT;
        if (nd->max_n == 0) return R_REJECT;
        f->phase = A_ITEM;
        gr_push(s, g, nd->item);
        return R_PUSH;
    case A_AFTER:
        if (b == ',' && f->n < nd->max_n) {
            f->phase = A_COMMA;
            return R_OK;
        }
        if (b == ']' && f->n >= nd->min_n) return R_DONE;
        return R_REJECT;
    case A_COMMA:
        f->phase = A_ITEM;
        gr_push(s, g, nd->item);
        return R_PUSH;
    }
    return R_REJECT;
}

bool gr_step(const agx_grammar *g, gr_core *s, uint8_t b) {
    for (;;) {
        if (s->depth == 0) return false;
        gr_frame *f = &s->f[s->depth - 1];
        const gr_node *nd = &g->nodes[f->node];
        int r;
        switch (nd->kind) {
        case GR_STRING: r = gr_step_string(f, nd, b); break;
        case GR_OBJECT: r = gr_step_object(g, s, f, nd, b); break;
        case GR_ARRAY: r = gr_step_array(g, s, f, nd, b); break;
        case GR_INTEGER: r = gr_step_integer(g, s, f, nd, b); break;
        case GR_NUMBER: r = gr_step_number(f, b); break;
        default: r = gr_step_literal(f, nd, b); break;
        }
        switch (r) {
        case R_OK: return true;
        case R_DONE: gr_pop(g, s); return true;
        case R_RETRY: gr_pop(g, s); continue;
        case R_PUSH: continue;
        default: return false;
        }
    }
}

static bool gr_frame_can_end(const agx_grammar *g, const gr_frame *f) {
    const gr_node *nd = &g->nodes[f->node];
    switch (nd->kind) {
    case GR_INTEGER: {
        gr_irange r = gr_int_range(nd, 0, NULL); /* only asked for the top-level value */
        return gr_int_can_end(f, &r);
    }
    case GR_NUMBER: return gr_num_can_end(f);
    case GR_LITERAL: return f->n > 0 && nd->lits[(uint32_t)f->v].len == f->n;
    default: return false;
    }
}

bool gr_is_complete(const agx_grammar *g, const gr_core *s) {
    if (s->depth == 0) return s->done != 0;
    return s->depth == 1 && gr_frame_can_end(g, &s->f[0]);
}

/* Cheap, conservative pre-check used by the trie walk before it copies a state:
 * false only when gr_step would surely reject b (looks at the innermost frame
 * without changing it). */
bool gr_may_accept(const agx_grammar *g, const gr_core *s, uint8_t b) {
    if (s->depth == 0) return false;
    const gr_frame *f = &s->f[s->depth - 1];
    const gr_node *nd = &g->nodes[f->node];
    switch (nd->kind) {
    case GR_LITERAL: {
        uint32_t lo = (uint32_t)f->v, hi = (uint32_t)(f->v >> 32), pos = f->n;
        if (pos > 0 && nd->lits[lo].len == pos) return true; /* the parent may take b */
        while (lo < hi) {
            uint32_t m = lo + (hi - lo) / 2;
            uint8_t c = (uint8_t)nd->lits[m].s[pos];
            if (c == b) return true;
            if (c < b) lo = m + 1; else hi = m;
        }
        return false;
    }
    case GR_STRING:
        if (f->phase == S_START) return b == '"';
        if (f->phase == S_BODY)
            return b >= 0x20 && b != 0x7F && (b < 0x80 || (b >= 0xC2 && b <= 0xF4));
        if (f->phase == S_UTF8)
            return b >= gr_utf8_lo[f->aux >> 2] && b <= gr_utf8_hi[f->aux >> 2];
        return true;
    case GR_OBJECT:
        switch (f->phase) {
        case O_START: return b == '{';
        case O_OPEN: return b == '"' || b == '}';
        case O_COMMA: return b == '"';
        case O_COLON: return b == ':';
        case O_AFTER: return b == ',' || b == '}';
        default: return true;
        }
    case GR_ARRAY:
        if (f->phase == A_START) return b == '[';
        if (f->phase == A_AFTER) return b == ',' || b == ']';
        return true;
    case GR_INTEGER:
        if (f->phase == I_START) return b == '-' || (b >= '0' && b <= '9');
        if (f->phase == I_SIGN) return b >= '1' && b <= '9';
        return true;
    default: return true;
    }
}

int gr_string_pending(const agx_grammar *g, const gr_core *s, uint32_t *need, uint8_t *lo,
                      uint8_t *hi, uint32_t *remaining) {
    if (s->depth == 0) return GR_PEND_NONE;
    const gr_frame *f = &s->f[s->depth - 1];
    const gr_node *nd = &g->nodes[f->node];
    if (nd->kind != GR_STRING) return GR_PEND_NONE;
    uint32_t rem = nd->max_n - f->n;
    *remaining = rem > 0xFFFD ? 0xFFFD : rem;
    if (f->phase == S_ESC) return GR_PEND_ESC;
    if (f->phase != S_UTF8) return GR_PEND_NONE;
    *need = f->aux & 3;
    *lo = gr_utf8_lo[f->aux >> 2];
    *hi = gr_utf8_hi[f->aux >> 2];
    return GR_PEND_UTF8;
}

bool gr_in_string_body(const agx_grammar *g, const gr_core *s, uint32_t *remaining) {
    if (s->depth == 0) return false;
    const gr_frame *f = &s->f[s->depth - 1];
    const gr_node *nd = &g->nodes[f->node];
    if (nd->kind != GR_STRING || f->phase != S_BODY) return false;
    uint32_t rem = nd->max_n - f->n;
    *remaining = rem > 0xFFFE ? 0xFFFE : rem;
    return true;
}

bool gr_plain_chars(const uint8_t *p, size_t n, uint32_t *chars) {
    gr_node nd;
    memset(&nd, 0, sizeof nd);
    nd.kind = GR_STRING;
    nd.max_n = UINT32_MAX;
    gr_frame f;
    memset(&f, 0, sizeof f);
    f.phase = S_BODY;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') return false;
        if (gr_step_string(&f, &nd, p[i]) != R_OK) return false;
    }
    *chars = f.n;
    return n > 0;
}

/* ================================================================ completions */

typedef struct gr_sink {
    char *buf;
    size_t cap;
    size_t len;
} gr_sink;

static bool gr_sink_full(const gr_sink *k) { return !k->buf || k->len >= k->cap; }

static void gr_put(gr_sink *k, const void *p, size_t n) {
    if (!gr_sink_full(k)) {
        size_t m = k->cap - k->len < n ? k->cap - k->len : n;
        memcpy(k->buf + k->len, p, m);
    }
    k->len = sat_add(k->len, n);
}

static void gr_putc(gr_sink *k, char c) { gr_put(k, &c, 1); }

static void gr_rep(gr_sink *k, char c, size_t n) {
    while (n > 0 && !gr_sink_full(k)) {
        gr_putc(k, c);
        n--;
    }
    k->len = sat_add(k->len, n);
}

static void gr_put_u64(gr_sink *k, uint64_t v, int skip) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    if (skip < n) gr_put(k, tmp + skip, (size_t)(n - skip));
}

/* Shortest serialization of a fresh value of `node`; item = number of the
 * innermost enclosing array item (for item-number integers). Once the sink only
 * counts, nodes whose shortest form does not depend on item add their minlen. */
static void gr_emit_min(const agx_grammar *g, uint32_t node, uint32_t item, gr_sink *k);

/* The required properties from i on (comma-separated), then '}'. */
static void gr_obj_rest(const agx_grammar *g, const gr_node *nd, uint32_t i, bool first,
                        uint32_t item, gr_sink *k) {
    for (uint32_t j = i; j < nd->n_props; j++) {
        if (!nd->props[j].required) continue;
        if (!first) gr_putc(k, ',');
        first = false;
        gr_put(k, nd->props[j].key, nd->props[j].key_len);
        gr_putc(k, ':');
        gr_emit_min(g, nd->props[j].child, item, k);
    }
    gr_putc(k, '}');
}

/* Items from..min_n-1 (item c has number c + 1), then ']'. */
static void gr_items(const agx_grammar *g, const gr_node *nd, uint32_t from, bool first,
                     gr_sink *k) {
    const gr_node *it = &g->nodes[nd->item];
    for (uint32_t c = from; c < nd->min_n; c++) {
        if (gr_sink_full(k) && !it->ctx) {
            size_t left = nd->min_n - c;
            size_t per = sat_add(it->minlen, 1);
            k->len = sat_add(k->len, sat_mul(left, per) - (first ? 1 : 0));
            break;
        }
        if (!first) gr_putc(k, ',');
        first = false;
        gr_emit_min(g, nd->item, c + 1, k);
    }
    gr_putc(k, ']');
}

static void gr_emit_min(const agx_grammar *g, uint32_t node, uint32_t item, gr_sink *k) {
    const gr_node *nd = &g->nodes[node];
    if (gr_sink_full(k) && !nd->ctx) {
        k->len = sat_add(k->len, nd->minlen);
        return;
    }
    switch (nd->kind) {
    case GR_STRING:
        gr_putc(k, '"');
        gr_rep(k, 'a', nd->min_n);
        gr_putc(k, '"');
        break;
    case GR_INTEGER: {
        gr_irange r = gr_int_range(nd, item, NULL);
        if (r.has_pos) {
            gr_put_u64(k, r.pos_lo, 0);
        } else {
            gr_putc(k, '-');
            gr_put_u64(k, r.neg_lo, 0);
        }
        break;
    }
    case GR_NUMBER: gr_putc(k, '0'); break;
    case GR_LITERAL: {
        uint32_t best = 0;
        for (uint32_t i = 1; i < nd->n_lits; i++)
            if (nd->lits[i].len < nd->lits[best].len) best = i;
        gr_put(k, nd->lits[best].s, nd->lits[best].len);
        break;
    }
    case GR_OBJECT:
        gr_putc(k, '{');
        gr_obj_rest(g, nd, 0, true, item, k);
        break;
    case GR_ARRAY:
        gr_putc(k, '[');
        gr_items(g, nd, 0, true, k);
        break;
    }
}

static size_t gr_count_min(const agx_grammar *g, uint32_t node, uint32_t item) {
    gr_sink k = {NULL, 0, 0};
    gr_emit_min(g, node, item, &k);
    return k.len;
}

static void gr_string_tail(const gr_frame *f, const gr_node *nd, gr_sink *k) {
    switch (f->phase) {
    case S_ESC: gr_putc(k, 'n'); break;
    case S_HEX: {
        uint64_t acc = f->v;
        for (unsigned i = f->aux; i < 4; i++) {
            unsigned d = (i == 3 && acc == 0) ? 9 : 0; /* \u0009 (tab), never a bare control */
            gr_putc(k, "0123456789abcdef"[d]);
            acc = acc * 16 + d;
        }
        if (acc >= 0xD800 && acc <= 0xDBFF) gr_put(k, "\\uDC00", 6);
        break;
    }
    case S_LBS: gr_put(k, "\\uDC00", 6); break;
    case S_LU: gr_put(k, "uDC00", 5); break;
    case S_LHEX: gr_put(k, &"DC00"[f->aux], 4u - f->aux); break;
    case S_UTF8: {
        uint8_t r = f->aux >> 2, need = f->aux & 3;
        gr_putc(k, (char)gr_utf8_lo[r]);
        for (uint8_t i = 1; i < need; i++) gr_putc(k, (char)0x80);
        break;
    }
    default: break;
    }
    gr_rep(k, 'a', f->n < nd->min_n ? nd->min_n - f->n : 0);
    gr_putc(k, '"');
}

static void gr_int_tail(const gr_frame *f, const gr_irange *r, gr_sink *k) {
    if (f->phase == I_SIGN) {
        gr_put_u64(k, r->neg_lo, 0);
        return;
    }
    if (gr_int_can_end(f, r)) return;
    uint64_t lo = f->aux ? r->neg_lo : r->pos_lo, hi = f->aux ? r->neg_hi : r->pos_hi;
    uint64_t p = 1;
    for (int kk = 1; kk <= 19; kk++) {
        p *= 10;
        uint64_t a = f->v * p; /* feasible by invariant, so no overflow before a hit */
        uint64_t c = a > lo ? a : lo;
        if (c <= a + (p - 1) && c <= hi) {
            gr_put_u64(k, c, (int)f->n);
            return;
        }
    }
}

/* The rest of the value open in frame f (at stack index d of s; a frame below
 * the top is passed with its child already taken as finished). */
static void gr_frame_tail(const agx_grammar *g, const gr_core *s, uint32_t d, const gr_frame *f,
                          gr_sink *k) {
    const gr_node *nd = &g->nodes[f->node];
    /* Always looked up: a half-typed object's tail may finish an optional
     * property whose value needs it even where nd's own shortest form does not. */
    uint32_t item = gr_item_number(g, s, d);
    if (f->phase == 0 && nd->kind != GR_LITERAL) { /* nothing typed yet */
        gr_emit_min(g, f->node, item, k);
        return;
    }
    switch (nd->kind) {
    case GR_STRING: gr_string_tail(f, nd, k); break;
    case GR_INTEGER: {
        gr_irange r = gr_int_range(nd, item, NULL);
        gr_int_tail(f, &r, k);
        break;
    }
    case GR_NUMBER:
        if (!gr_num_can_end(f)) gr_putc(k, '0');
        break;
    case GR_LITERAL: {
        uint32_t lo = (uint32_t)f->v, hi = (uint32_t)(f->v >> 32), best = lo;
        for (uint32_t i = lo + 1; i < hi; i++)
            if (nd->lits[i].len < nd->lits[best].len) best = i;
        gr_put(k, nd->lits[best].s + f->n, nd->lits[best].len - f->n);
        break;
    }
    case GR_OBJECT:
        switch (f->phase) {
        case O_OPEN: gr_obj_rest(g, nd, 0, true, item, k); break;
        case O_KEY: {
            /* of the keys that match what is typed, the cheapest way to finish */
            uint32_t pos = (uint32_t)f->v, cand = (uint32_t)(f->v >> 32), best = cand;
            size_t bl = SIZE_MAX;
            for (uint32_t j = cand; j <= nd->lim[f->n]; j++) {
                const gr_prop *p = &nd->props[j];
                if (p->key_len <= pos || memcmp(p->key, nd->props[cand].key, pos) != 0 ||
                    !gr_prop_viable(g, nd, j, item))
                    continue;
                gr_sink c = {NULL, 0, 0};
                gr_emit_min(g, p->child, item, &c);
                gr_obj_rest(g, nd, j + 1, false, item, &c);
                size_t l = sat_add(p->key_len - pos, c.len);
                if (l < bl) bl = l, best = j;
            }
            cand = best;
            gr_put(k, nd->props[cand].key + pos, nd->props[cand].key_len - pos);
            gr_putc(k, ':');
            gr_emit_min(g, nd->props[cand].child, item, k);
            gr_obj_rest(g, nd, cand + 1, false, item, k);
            break;
        }
        case O_COLON:
            gr_putc(k, ':');
            gr_emit_min(g, nd->props[f->v].child, item, k);
            gr_obj_rest(g, nd, (uint32_t)f->v + 1, false, item, k);
            break;
        case O_COMMA: {
            /* one more property must follow: the next required one if any,
             * else the cheapest optional one that can be met here */
            uint32_t lim = nd->lim[f->n], best = lim;
            if (!nd->props[lim].required) {
                size_t bl = SIZE_MAX;
                for (uint32_t j = f->n; j <= lim; j++) {
                    if (!gr_prop_viable(g, nd, j, item)) continue;
                    size_t l = sat_add(nd->props[j].key_len,
                                       gr_count_min(g, nd->props[j].child, item));
                    if (l < bl) bl = l, best = j;
                }
            }
            gr_put(k, nd->props[best].key, nd->props[best].key_len);
            gr_putc(k, ':');
            gr_emit_min(g, nd->props[best].child, item, k);
            gr_obj_rest(g, nd, best + 1, false, item, k);
            break;
        }
        default: gr_obj_rest(g, nd, f->n, false, item, k); break; /* O_AFTER */
        }
        break;
    case GR_ARRAY:
        switch (f->phase) {
        case A_OPEN: gr_items(g, nd, 0, true, k); break;
        case A_COMMA:
            gr_emit_min(g, nd->item, f->n + 1, k);
            gr_items(g, nd, f->n + 1, false, k);
            break;
        default: gr_items(g, nd, f->n, false, k); break; /* A_AFTER */
        }
        break;
    }
}

static void gr_complete(const agx_grammar *g, const gr_core *s, gr_sink *k) {
    for (uint32_t d = s->depth; d-- > 0;) {
        gr_frame f = s->f[d];
        if (d + 1 < s->depth) { /* the value above it is taken as finished */
            if (g->nodes[f.node].kind == GR_OBJECT) {
                f.phase = O_AFTER;
            } else {
                f.n++;
                f.phase = A_AFTER;
            }
        }
        gr_frame_tail(g, s, d, &f, k);
    }
}

/* ================================================================ public API */

agx_grammar_state *agx_grammar_state_new(const agx_grammar *g) {
    agx_grammar_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->g = g;
    agx_grammar_state_reset(s);
    return s;
}

void agx_grammar_state_reset(agx_grammar_state *s) {
    s->core.depth = 0;
    s->core.done = 0;
    gr_push(&s->core, s->g, s->g->root);
}

agx_grammar_state *agx_grammar_state_copy(const agx_grammar_state *s) {
    agx_grammar_state *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->g = s->g;
    gr_core_copy(&c->core, &s->core);
    return c;
}

void agx_grammar_state_free(agx_grammar_state *s) {
    if (!s) return;
    free(s->scratch);
    free(s->iter);
    free(s);
}

bool agx_grammar_accept(agx_grammar_state *s, const void *bytes, size_t len) {
    gr_core tmp;
    gr_core_copy(&tmp, &s->core);
    const uint8_t *p = bytes;
    for (size_t i = 0; i < len; i++)
        if (!gr_step(s->g, &tmp, p[i])) return false;
    gr_core_copy(&s->core, &tmp);
    return true;
}

bool agx_grammar_is_complete(const agx_grammar_state *s) { return gr_is_complete(s->g, &s->core); }

size_t agx_grammar_forced(const agx_grammar_state *s, char *buf, size_t cap) {
    gr_core cur, tmp, keep;
    gr_core_copy(&cur, &s->core);
    size_t out = 0;
    while (out < cap && !gr_is_complete(s->g, &cur)) {
        int cnt = 0, only = 0;
        for (int b = 0; b < 256 && cnt < 2; b++) {
            if (!gr_may_accept(s->g, &cur, (uint8_t)b)) continue;
            gr_core_copy(&tmp, &cur);
            if (gr_step(s->g, &tmp, (uint8_t)b)) {
                if (++cnt == 1) {
                    only = b;
                    gr_core_copy(&keep, &tmp);
                }
            }
        }
        if (cnt != 1) break;
        buf[out++] = (char)only;
        gr_core_copy(&cur, &keep);
    }
    return out;
}

size_t agx_grammar_min_bytes_to_complete(const agx_grammar_state *s) {
    if (gr_is_complete(s->g, &s->core)) return 0;
    gr_sink k = {NULL, 0, 0};
    gr_complete(s->g, &s->core, &k);
    return k.len;
}

size_t agx_grammar_shortest_completion(const agx_grammar_state *s, char *buf, size_t cap) {
    if (gr_is_complete(s->g, &s->core)) return 0;
    gr_sink k = {buf, buf ? cap : 0, 0};
    gr_complete(s->g, &s->core, &k);
    return k.len;
}
