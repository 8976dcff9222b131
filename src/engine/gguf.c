/* gguf.c — the GGUF v2/v3 reader: maps the file read-only and parses header,
 * metadata and tensor infos with every count, length, offset and shape checked
 * against the file size before it is used. Nothing is allocated in proportion
 * to an unchecked count: tables grow as entries are actually parsed, and string
 * arrays are indexed once at open so element access is O(1). */
#include "agx/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agx/quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING 8          /* arrays of arrays deeper than this are refused */
#define GGUF_MAX_NAME 1024          /* tensor names longer than this are refused */

struct agx_gguf {
    const uint8_t *base;
    uint64_t size;
    bool mapped;            /* munmap on close */
    char *path;             /* for messages */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    agx_gguf_kv *kvs;
    size_t n_kv;
    uint64_t **str_index;   /* per KV: offsets of string array elements (else NULL) */
    agx_gguf_tensor *tensors;
    size_t n_tensors;
    uint32_t *kv_hash;      /* open addressing, index+1, 0 = empty */
    size_t kv_hash_cap;
    uint32_t *t_hash;
    size_t t_hash_cap;
};

/* Fixed encoded size of scalar value types; 0 for string/array. */
static const uint8_t vtype_size[AGX_GGUF_VTYPE_COUNT] = {
    [AGX_GGUF_UINT8] = 1, [AGX_GGUF_INT8] = 1, [AGX_GGUF_UINT16] = 2, [AGX_GGUF_INT16] = 2,
    [AGX_GGUF_UINT32] = 4, [AGX_GGUF_INT32] = 4, [AGX_GGUF_FLOAT32] = 4, [AGX_GGUF_BOOL] = 1,
    [AGX_GGUF_STRING] = 0, [AGX_GGUF_ARRAY] = 0, [AGX_GGUF_UINT64] = 8, [AGX_GGUF_INT64] = 8,
    [AGX_GGUF_FLOAT64] = 8,
};

typedef struct cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *path;
    agx_error *err;
} cursor;

static agx_status fail(const cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static agx_status fail(const cursor *c, const char *fmt, ...) {
    char msg[AGX_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return agx_error_set(c->err, AGX_ERR_LOAD, "GGUF '%s': %s", c->path, msg);
}

static agx_status need(cursor *c, uint64_t n, const char *field) {
    if (c->pos > c->size || n > c->size - c->pos)
        return fail(c,
                    "%s at offset %" PRIu64 " needs %" PRIu64 " bytes but only %" PRIu64
                    " remain (file size %" PRIu64 "; truncated or corrupt file)",
                    field, c->pos, n, c->pos > c->size ? 0 : c->size - c->pos, c->size);
    return AGX_OK;
}

static uint64_t le_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;   /* GGUF is little-endian; agx targets little-endian hosts */
}
static uint32_t le_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static agx_status rd_u32(cursor *c, const char *field, uint32_t *v) {
    agx_status s = need(c, 4, field);
    if (s) return s;
    *v = le_u32(c->base + c->pos);
    c->pos += 4;
    return AGX_OK;
}

static agx_status rd_u64(cursor *c, const char *field, uint64_t *v) {
    agx_status s = need(c, 8, field);
    if (s) return s;
    *v = le_u64(c->base + c->pos);
    c->pos += 8;
    return AGX_OK;
}

static agx_status rd_str(cursor *c, const char *field, agx_gguf_str *out) {
    uint64_t at = c->pos, len;
    agx_status s = rd_u64(c, field, &len);
    if (s) return s;
    if (len > c->size - c->pos)
        return fail(c,
                    "%s at offset %" PRIu64 " has length %" PRIu64
                    " which extends past the end of the file (size %" PRIu64 ")",
                    field, at, len, c->size);
    out->ptr = (const char *)(c->base + c->pos);
    out->len = len;
    c->pos += len;
    return AGX_OK;
}

/* Printable, bounded rendering of a view for messages. */
static const char *show(agx_gguf_str s, char *buf, size_t n) {
    size_t k = 0;
    for (uint64_t i = 0; i < s.len && k + 4 < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[k++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    if (s.len > 0 && k + 4 >= n) {
        buf[k++] = '.';
        buf[k++] = '.';
        buf[k++] = '.';
    }
    buf[k] = '\0';
    return buf;
}

static uint64_t hash_bytes(const char *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

bool agx_gguf_str_eq(agx_gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

static bool str_eq2(agx_gguf_str a, agx_gguf_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---- hash sets for keys and tensor names (built once, used for duplicate
 * detection at open and O(1) lookups afterwards) ---- */
static bool hash_build(uint32_t **tab, size_t *cap, size_t n, agx_gguf_str (*name_of)(const agx_gguf *, size_t),
                       const agx_gguf *g, size_t *dup_a, size_t *dup_b) {
    size_t c = 16;
    while (c < n * 2) c <<= 1;
    uint32_t *t = calloc(c, sizeof *t);
    if (!t) return false;
    *tab = t;
    *cap = c;
    *dup_a = *dup_b = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        agx_gguf_str s = name_of(g, i);
        size_t h = (size_t)hash_bytes(s.ptr, s.len) & (c - 1);
        while (t[h]) {
            if (str_eq2(name_of(g, t[h] - 1), s)) {
                *dup_a = t[h] - 1;
                *dup_b = i;
                return true;
            }
            h = (h + 1) & (c - 1);
        }
        t[h] = (uint32_t)(i + 1);
    }
    return true;
}

static agx_gguf_str kv_name(const agx_gguf *g, size_t i) { return g->kvs[i].key; }
static agx_gguf_str t_name(const agx_gguf *g, size_t i) { return g->tensors[i].name; }

static long hash_find(const uint32_t *t, size_t cap, const char *name,
                      agx_gguf_str (*name_of)(const agx_gguf *, size_t), const agx_gguf *g) {
    if (!t) return -1;
    size_t n = strlen(name);
    size_t h = (size_t)hash_bytes(name, n) & (cap - 1);
    while (t[h]) {
        agx_gguf_str s = name_of(g, t[h] - 1);
        if (s.len == n && memcmp(s.ptr, name, n) == 0) return (long)(t[h] - 1);
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

/* ---- metadata values ---- */

/* Skips (validating) one encoded array body of count elements of type et.
 * Builds the string index when idx != NULL and et is STRING. */
static agx_status skip_array(cursor *c, const char *field, uint32_t et, uint64_t count, int depth,
                             uint64_t **idx) {
    if (et >= AGX_GGUF_VTYPE_COUNT)
        return fail(c, "%s at offset %" PRIu64 " has unknown array element type %" PRIu32, field,
                    c->pos, et);
    if (vtype_size[et]) {
        uint64_t sz = vtype_size[et];
        if (count > (c->size - c->pos) / sz)
            return fail(c,
                        "%s at offset %" PRIu64 ": array of %" PRIu64 " %u-byte elements extends "
                        "past the end of the file (size %" PRIu64 ")",
                        field, c->pos, count, (unsigned)sz, c->size);
        c->pos += count * sz;
        return AGX_OK;
    }
    if (et == AGX_GGUF_STRING) {
        if (count > (c->size - c->pos) / 8)
            return fail(c,
                        "%s at offset %" PRIu64 ": array of %" PRIu64
                        " strings cannot fit in the rest of the file (size %" PRIu64 ")",
                        field, c->pos, count, c->size);
        uint64_t start = c->pos;
        for (uint64_t i = 0; i < count; i++) {
            agx_gguf_str s;
            agx_status st = rd_str(c, field, &s);
            if (st) return st;
        }
        /* Index only after the whole array validated, so the allocation is
         * bounded by real entries, not by a claimed count. */
        if (idx && count) {
            uint64_t *ix = malloc(count * sizeof *ix);
            if (!ix) return agx_error_set(c->err, AGX_ERR_NOMEM, "out of memory indexing %s", field);
            uint64_t p = start;
            for (uint64_t i = 0; i < count; i++) {
                ix[i] = p;
                p += 8 + le_u64(c->base + p);
            }
            *idx = ix;
        }
        return AGX_OK;
    }
    /* nested arrays */
    if (depth >= GGUF_MAX_NESTING)
        return fail(c, "%s at offset %" PRIu64 ": arrays nested deeper than %d levels", field,
                    c->pos, GGUF_MAX_NESTING);
    if (count > (c->size - c->pos) / 12)
        return fail(c,
                    "%s at offset %" PRIu64 ": array of %" PRIu64
                    " arrays cannot fit in the rest of the file (size %" PRIu64 ")",
                    field, c->pos, count, c->size);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t sub;
        uint64_t n;
        agx_status st = rd_u32(c, field, &sub);
        if (!st) st = rd_u64(c, field, &n);
        if (!st) st = skip_array(c, field, sub, n, depth + 1, NULL);
        if (st) return st;
    }
    return AGX_OK;
}

static agx_status read_value(cursor *c, const char *field, agx_gguf_kv *kv, uint64_t **idx) {
    const uint8_t *p;
    agx_status s;
    uint32_t t = kv->type;
    if (t >= AGX_GGUF_VTYPE_COUNT)
        return fail(c, "%s at offset %" PRIu64 " has unknown value type %" PRIu32
                       " (valid: 0..12)", field, c->pos - 4, t);
    if (vtype_size[t]) {
        if ((s = need(c, vtype_size[t], field))) return s;
        p = c->base + c->pos;
        c->pos += vtype_size[t];
        switch (t) {
        case AGX_GGUF_UINT8: kv->v.u64 = p[0]; break;
        case AGX_GGUF_INT8: kv->v.i64 = (int8_t)p[0]; break;
        case AGX_GGUF_BOOL:
            if (p[0] > 1)
                return fail(c, "%s at offset %" PRIu64 " is a bool with value %u (must be 0 or 1)",
                            field, c->pos - 1, p[0]);
            kv->v.b = p[0] != 0;
            break;
        case AGX_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); kv->v.u64 = v; break; }
        case AGX_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); kv->v.i64 = v; break; }
        case AGX_GGUF_UINT32: kv->v.u64 = le_u32(p); break;
        case AGX_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); kv->v.i64 = v; break; }
        case AGX_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); kv->v.f64 = v; break; }
        case AGX_GGUF_UINT64: kv->v.u64 = le_u64(p); break;
        case AGX_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); kv->v.i64 = v; break; }
        case AGX_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); kv->v.f64 = v; break; }
        default: break;
        }
        return AGX_OK;
    }
    if (t == AGX_GGUF_STRING) return rd_str(c, field, &kv->v.str);
    /* array */
    uint32_t et;
    uint64_t n;
    if ((s = rd_u32(c, field, &et))) return s;
    if ((s = rd_u64(c, field, &n))) return s;
    kv->arr_type = et;
    kv->arr_len = n;
    kv->arr_data = c->base + c->pos;
    return skip_array(c, field, et, n, 1, idx);
}

/* ---- tensor infos ---- */

static agx_status read_tensor(cursor *c, size_t i, agx_gguf_tensor *t) {
    char field[160], nb[96];
    snprintf(field, sizeof field, "name of tensor %zu", i);
    agx_status s = rd_str(c, field, &t->name);
    if (s) return s;
    if (t->name.len == 0 || t->name.len > GGUF_MAX_NAME)
        return fail(c, "tensor %zu at offset %" PRIu64 " has a name of length %" PRIu64
                       " (must be 1..%d)", i, c->pos - t->name.len - 8, t->name.len, GGUF_MAX_NAME);
    show(t->name, nb, sizeof nb);
    snprintf(field, sizeof field, "n_dims of tensor '%s'", nb);
    if ((s = rd_u32(c, field, &t->n_dims))) return s;
    if (t->n_dims < 1 || t->n_dims > AGX_GGUF_MAX_DIMS)
        return fail(c, "tensor '%s' at offset %" PRIu64 " has n_dims %" PRIu32 " (must be 1..%d)",
                    nb, c->pos - 4, t->n_dims, AGX_GGUF_MAX_DIMS);
    uint64_t n_el = 1;
    for (int d = 0; d < AGX_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        snprintf(field, sizeof field, "dimension %" PRIu32 " of tensor '%s'", d, nb);
        if ((s = rd_u64(c, field, &v))) return s;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return fail(c, "tensor '%s' at offset %" PRIu64 ": dimension %" PRIu32 " is %" PRId64
                           " (must be >= 1)", nb, c->pos - 8, d, (int64_t)v);
        if (n_el > (uint64_t)INT64_MAX / v)
            return fail(c, "tensor '%s' at offset %" PRIu64
                           ": element count overflows (dimension %" PRIu32 " = %" PRIu64 ")",
                        nb, c->pos - 8, d, v);
        n_el *= v;
        t->ne[d] = (int64_t)v;
    }
    snprintf(field, sizeof field, "type of tensor '%s'", nb);
    if ((s = rd_u32(c, field, &t->type))) return s;
    const agx_type_traits *tr = agx_type_traits_get(t->type);
    if (!tr || tr->block_size <= 0 || tr->type_size == 0)
        return fail(c, "tensor '%s' at offset %" PRIu64 " has unknown or unsupported type id %" PRIu32
                       " (%s)", nb, c->pos - 4, t->type, agx_type_name(t->type));
    if (t->ne[0] % tr->block_size != 0)
        return fail(c, "tensor '%s': row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                    nb, t->ne[0], tr->name, tr->block_size);
    uint64_t rows = n_el / (uint64_t)t->ne[0];
    uint64_t row_bytes = (uint64_t)(t->ne[0] / tr->block_size) * tr->type_size;
    if (row_bytes == 0 || rows > UINT64_MAX / row_bytes)
        return fail(c, "tensor '%s': byte size overflows", nb);
    t->nbytes = rows * row_bytes;
    snprintf(field, sizeof field, "data offset of tensor '%s'", nb);
    return rd_u64(c, field, &t->offset);
}

static int cmp_by_offset(const void *a, const void *b, void *ctx) {
    const agx_gguf_tensor *ts = ctx;
    const agx_gguf_tensor *x = &ts[*(const size_t *)a], *y = &ts[*(const size_t *)b];
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static agx_status check_tensor_data(cursor *c, agx_gguf *g) {
    char nb[96], nb2[96];
    uint64_t avail = g->size - g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        agx_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return fail(c, "tensor '%s' data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                        show(t->name, nb, sizeof nb), t->offset, g->alignment);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return fail(c,
                        "tensor '%s' data [offset %" PRIu64 ", %" PRIu64
                        " bytes] extends past end of file (size %" PRIu64 ")",
                        show(t->name, nb, sizeof nb), g->data_offset + t->offset, t->nbytes, g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2) return AGX_OK;
    size_t *ord = malloc(g->n_tensors * sizeof *ord);
    if (!ord) return agx_error_set(c->err, AGX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_tensors; i++) ord[i] = i;
    qsort_r(ord, g->n_tensors, sizeof *ord, cmp_by_offset, g->tensors);
    agx_status s = AGX_OK;
    for (size_t i = 1; i < g->n_tensors; i++) {
        const agx_gguf_tensor *a = &g->tensors[ord[i - 1]], *b = &g->tensors[ord[i]];
        if (a->offset + a->nbytes > b->offset) {
            s = fail(c, "tensor '%s' data [offset %" PRIu64 ", %" PRIu64 " bytes] overlaps tensor '%s' at offset %" PRIu64,
                     show(a->name, nb, sizeof nb), g->data_offset + a->offset, a->nbytes,
                     show(b->name, nb2, sizeof nb2), g->data_offset + b->offset);
            break;
        }
    }
    free(ord);
    return s;
}

static agx_status parse(agx_gguf *g, agx_error *err) {
    cursor cc = {g->base, g->size, 0, g->path, err}, *c = &cc;
    agx_status s;
    if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0) {
        if (g->size >= 4 && memcmp(g->base, "FUGG", 4) == 0)
            return fail(c, "big-endian GGUF files are not supported");
        return fail(c, "not a GGUF file (bad magic at offset 0; expected \"GGUF\")");
    }
    c->pos = 4;
    if ((s = rd_u32(c, "version", &g->version))) return s;
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1) return fail(c, "GGUF version 1 is not supported (offset 4); re-convert the model");
        if ((g->version & 0xffff) == 0)
            return fail(c, "version at offset 4 looks byte-swapped (%" PRIu32 "): big-endian GGUF files are not supported",
                        g->version);
        return fail(c, "unsupported GGUF version %" PRIu32 " at offset 4 (supported: 2, 3)", g->version);
    }
    uint64_t n_tensors, n_kv;
    if ((s = rd_u64(c, "tensor count", &n_tensors))) return s;
    if ((s = rd_u64(c, "metadata count", &n_kv))) return s;
    /* Each KV needs >= 13 bytes (key length + type + 1-byte value), each tensor
     * info >= 32 bytes: reject absurd counts before allocating anything. */
    uint64_t rest = g->size - c->pos;
    if (n_kv > rest / 13 || n_kv > UINT32_MAX - 1)
        return fail(c, "metadata count %" PRIu64 " at offset 16 is impossible for a file of %" PRIu64 " bytes",
                    n_kv, g->size);
    if (n_tensors > rest / 32 || n_tensors > UINT32_MAX - 1)
        return fail(c, "tensor count %" PRIu64 " at offset 8 is impossible for a file of %" PRIu64 " bytes",
                    n_tensors, g->size);

    size_t cap = 0;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (g->n_kv == cap) {
            size_t nc = cap ? cap * 2 : 32;
            agx_gguf_kv *nk = realloc(g->kvs, nc * sizeof *nk);
            uint64_t **ni = realloc(g->str_index, nc * sizeof *ni);
            if (nk) g->kvs = nk;
            if (ni) g->str_index = ni;
            if (!nk || !ni) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading GGUF metadata");
            cap = nc;
        }
        agx_gguf_kv *kv = &g->kvs[g->n_kv];
        memset(kv, 0, sizeof *kv);
        g->str_index[g->n_kv] = NULL;
        char field[160], kb[96];
        uint64_t at = c->pos;
        snprintf(field, sizeof field, "key of metadata entry %" PRIu64, i);
        if ((s = rd_str(c, field, &kv->key))) return s;
        if (kv->key.len == 0) return fail(c, "metadata entry %" PRIu64 " at offset %" PRIu64 " has an empty key", i, at);
        show(kv->key, kb, sizeof kb);
        uint32_t t;
        snprintf(field, sizeof field, "type of metadata '%s'", kb);
        if ((s = rd_u32(c, field, &t))) return s;
        kv->type = (agx_gguf_vtype)t;
        snprintf(field, sizeof field, "value of metadata '%s'", kb);
        g->n_kv++;   /* count it now so close() frees a partial string index */
        if ((s = read_value(c, field, kv, &g->str_index[g->n_kv - 1]))) return s;
        if (agx_gguf_str_eq(kv->key, "general.alignment")) {
            uint64_t a;
            if (kv->type != AGX_GGUF_UINT32 && kv->type != AGX_GGUF_UINT64 && kv->type != AGX_GGUF_INT32 &&
                kv->type != AGX_GGUF_UINT16)
                return fail(c, "general.alignment at offset %" PRIu64 " must be an unsigned integer", at);
            a = kv->type == AGX_GGUF_INT32 ? (uint64_t)kv->v.i64 : kv->v.u64;
            if (kv->type == AGX_GGUF_INT32 && kv->v.i64 <= 0) a = 0;
            if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30))
                return fail(c, "general.alignment at offset %" PRIu64 " is %" PRIu64
                               " (must be a nonzero power of two)", at, a);
            g->alignment = a;
        }
    }
    size_t da, db;
    if (!hash_build(&g->kv_hash, &g->kv_hash_cap, g->n_kv, kv_name, g, &da, &db))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    if (da != SIZE_MAX) {
        char kb[96];
        return fail(c, "duplicate metadata key '%s' (entries %zu and %zu)", show(g->kvs[db].key, kb, sizeof kb), da, db);
    }

    size_t tcap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (g->n_tensors == tcap) {   /* grows with parsed entries, not the claimed count */
            size_t nc = tcap ? tcap * 2 : 64;
            agx_gguf_tensor *nt = realloc(g->tensors, nc * sizeof *nt);
            if (!nt) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading GGUF tensor infos");
            g->tensors = nt;
            tcap = nc;
        }
        memset(&g->tensors[g->n_tensors], 0, sizeof *g->tensors);
        if ((s = read_tensor(c, (size_t)i, &g->tensors[g->n_tensors]))) return s;
        g->n_tensors++;
    }
    if (!hash_build(&g->t_hash, &g->t_hash_cap, g->n_tensors, t_name, g, &da, &db))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    if (da != SIZE_MAX) {
        char nb[96];
        return fail(c, "duplicate tensor name '%s' (tensors %zu and %zu)", show(g->tensors[db].name, nb, sizeof nb), da, db);
    }
    uint64_t off = c->pos;
    uint64_t pad = (g->alignment - off % g->alignment) % g->alignment;
    g->data_offset = off + pad;
    if (g->n_tensors && g->data_offset > g->size)
        return fail(c, "data section at offset %" PRIu64 " starts past the end of the file (size %" PRIu64 ")",
                    g->data_offset, g->size);
    if (g->data_offset > g->size) g->data_offset = g->size;
    return check_tensor_data(c, g);
}

static agx_status finish_open(agx_gguf *g, agx_gguf **out, agx_error *err) {
    agx_status s = parse(g, err);
    if (s) {
        agx_gguf_close(g);
        return s;
    }
    *out = g;
    return AGX_OK;
}

agx_status agx_gguf_open(const char *path, agx_gguf **out, agx_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return agx_error_set(err, AGX_ERR_LOAD, "Model file not found: '%s'", path);
        return agx_error_set(err, AGX_ERR_LOAD, "cannot open model file '%s': %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agx_error_set(err, AGX_ERR_LOAD, "model path '%s' is not a regular file", path);
    }
    agx_gguf *g = calloc(1, sizeof *g);
    char *p = strdup(path);
    if (!g || !p) {
        free(g);
        free(p);
        close(fd);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    g->path = p;
    g->size = (uint64_t)st.st_size;
    if (g->size == 0) {
        close(fd);
        agx_error_set(err, AGX_ERR_LOAD, "GGUF '%s': file is empty (not a GGUF file)", path);
        agx_gguf_close(g);
        return AGX_ERR_LOAD;
    }
    void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        agx_error_set(err, AGX_ERR_LOAD, "cannot map model file '%s': %s", path, strerror(e));
        agx_gguf_close(g);
        return AGX_ERR_LOAD;
    }
    g->base = m;
    g->mapped = true;
    return finish_open(g, out, err);
}

agx_status agx_gguf_open_memory(const void *data, size_t size, agx_gguf **out, agx_error *err) {
    *out = NULL;
    agx_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup("<memory>"))) {
        free(g);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    static const uint8_t empty[1];
    g->base = data ? data : empty;
    g->size = data ? size : 0;
    return finish_open(g, out, err);
}

void agx_gguf_release_pages(const agx_gguf *g, const void *p, size_t n) {
    if (!g || !g->mapped || !p || n == 0) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    const uintptr_t base = (uintptr_t)g->base, end = base + (uintptr_t)g->size;
    if (lo >= hi || lo < base || hi > end) return;
    /* a private read-only file mapping: the pages come back from the file */
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void agx_gguf_close(agx_gguf *g) {
    if (!g) return;
    if (g->mapped && g->base) munmap((void *)g->base, (size_t)g->size);
    if (g->str_index)
        for (size_t i = 0; i < g->n_kv; i++) free(g->str_index[i]);
    free(g->str_index);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_hash);
    free(g->t_hash);
    free(g->path);
    free(g);
}

uint32_t agx_gguf_version(const agx_gguf *g) { return g->version; }
uint64_t agx_gguf_file_size(const agx_gguf *g) { return g->size; }
uint64_t agx_gguf_alignment(const agx_gguf *g) { return g->alignment; }
uint64_t agx_gguf_data_offset(const agx_gguf *g) { return g->data_offset; }
const char *agx_gguf_path(const agx_gguf *g) { return g->path; }

size_t agx_gguf_n_kv(const agx_gguf *g) { return g->n_kv; }
const agx_gguf_kv *agx_gguf_kv_at(const agx_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }

const agx_gguf_kv *agx_gguf_find(const agx_gguf *g, const char *key) {
    long i = hash_find(g->kv_hash, g->kv_hash_cap, key, kv_name, g);
    return i < 0 ? NULL : &g->kvs[i];
}

size_t agx_gguf_n_tensors(const agx_gguf *g) { return g->n_tensors; }
const agx_gguf_tensor *agx_gguf_tensor_at(const agx_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}
const agx_gguf_tensor *agx_gguf_find_tensor(const agx_gguf *g, const char *name) {
    long i = hash_find(g->t_hash, g->t_hash_cap, name, t_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- typed getters ---- */

static bool is_unsigned(agx_gguf_vtype t) {
    return t == AGX_GGUF_UINT8 || t == AGX_GGUF_UINT16 || t == AGX_GGUF_UINT32 || t == AGX_GGUF_UINT64;
}
static bool is_signed(agx_gguf_vtype t) {
    return t == AGX_GGUF_INT8 || t == AGX_GGUF_INT16 || t == AGX_GGUF_INT32 || t == AGX_GGUF_INT64;
}

bool agx_gguf_get_u64(const agx_gguf *g, const char *key, uint64_t *out) {
    const agx_gguf_kv *kv = agx_gguf_find(g, key);
    if (!kv) return false;
    if (is_unsigned(kv->type)) {
        *out = kv->v.u64;
        return true;
    }
    if (is_signed(kv->type) && kv->v.i64 >= 0) {
        *out = (uint64_t)kv->v.i64;
        return true;
    }
    return false;
}

bool agx_gguf_get_u32(const agx_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    if (!agx_gguf_get_u64(g, key, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool agx_gguf_get_i64(const agx_gguf *g, const char *key, int64_t *out) {
    const agx_gguf_kv *kv = agx_gguf_find(g, key);
    if (!kv) return false;
    if (is_signed(kv->type)) {
        *out = kv->v.i64;
        return true;
    }
    if (is_unsigned(kv->type) && kv->v.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->v.u64;
        return true;
    }
    return false;
}

bool agx_gguf_get_f32(const agx_gguf *g, const char *key, float *out) {
    const agx_gguf_kv *kv = agx_gguf_find(g, key);
    if (!kv) return false;
    if (kv->type == AGX_GGUF_FLOAT32 || kv->type == AGX_GGUF_FLOAT64) *out = (float)kv->v.f64;
    else if (is_unsigned(kv->type)) *out = (float)kv->v.u64;
    else if (is_signed(kv->type)) *out = (float)kv->v.i64;
    else return false;
    return true;
}

bool agx_gguf_get_bool(const agx_gguf *g, const char *key, bool *out) {
    const agx_gguf_kv *kv = agx_gguf_find(g, key);
    if (!kv || kv->type != AGX_GGUF_BOOL) return false;
    *out = kv->v.b;
    return true;
}

bool agx_gguf_get_str(const agx_gguf *g, const char *key, agx_gguf_str *out) {
    const agx_gguf_kv *kv = agx_gguf_find(g, key);
    if (!kv || kv->type != AGX_GGUF_STRING) return false;
    *out = kv->v.str;
    return true;
}

char *agx_gguf_get_strdup(const agx_gguf *g, const char *key) {
    agx_gguf_str s;
    if (!agx_gguf_get_str(g, key, &s) || s.len >= SIZE_MAX) return NULL;
    char *r = malloc((size_t)s.len + 1);
    if (!r) return NULL;
    if (s.len) memcpy(r, s.ptr, (size_t)s.len);
    r[s.len] = '\0';
    return r;
}

/* ---- arrays ---- */

bool agx_gguf_arr_str(const agx_gguf *g, const agx_gguf_kv *kv, uint64_t i, agx_gguf_str *out) {
    if (!kv || kv->type != AGX_GGUF_ARRAY || kv->arr_type != AGX_GGUF_STRING || i >= kv->arr_len) return false;
    const uint8_t *p = NULL;
    if (g && kv >= g->kvs && kv < g->kvs + g->n_kv && g->str_index[kv - g->kvs]) {
        p = g->base + g->str_index[kv - g->kvs][i];
    } else {
        /* a nested array view: already validated at open, walk it */
        p = kv->arr_data;
        for (uint64_t k = 0; k < i; k++) p += 8 + le_u64(p);
    }
    out->len = le_u64(p);
    out->ptr = (const char *)p + 8;
    return true;
}

static bool arr_fixed(const agx_gguf_kv *kv, uint64_t i, const uint8_t **p) {
    if (!kv || kv->type != AGX_GGUF_ARRAY || i >= kv->arr_len || kv->arr_type >= AGX_GGUF_VTYPE_COUNT ||
        !vtype_size[kv->arr_type])
        return false;
    *p = kv->arr_data + i * vtype_size[kv->arr_type];
    return true;
}

bool agx_gguf_arr_i64(const agx_gguf_kv *kv, uint64_t i, int64_t *out) {
    const uint8_t *p;
    if (!arr_fixed(kv, i, &p)) return false;
    switch (kv->arr_type) {
    case AGX_GGUF_UINT8: case AGX_GGUF_BOOL: *out = p[0]; return true;
    case AGX_GGUF_INT8: *out = (int8_t)p[0]; return true;
    case AGX_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case AGX_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *out = v; return true; }
    case AGX_GGUF_UINT32: *out = le_u32(p); return true;
    case AGX_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *out = v; return true; }
    case AGX_GGUF_UINT64: { uint64_t v = le_u64(p); if (v > (uint64_t)INT64_MAX) return false; *out = (int64_t)v; return true; }
    case AGX_GGUF_INT64: { int64_t v; memcpy(&v, p, 8); *out = v; return true; }
    default: return false;
    }
}

bool agx_gguf_arr_f64(const agx_gguf_kv *kv, uint64_t i, double *out) {
    const uint8_t *p;
    if (!arr_fixed(kv, i, &p)) return false;
    if (kv->arr_type == AGX_GGUF_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    if (kv->arr_type == AGX_GGUF_FLOAT64) {
        memcpy(out, p, 8);
        return true;
    }
    if (kv->arr_type == AGX_GGUF_UINT64) {
        *out = (double)le_u64(p);
        return true;
    }
    int64_t v;
    if (!agx_gguf_arr_i64(kv, i, &v)) return false;
    *out = (double)v;
    return true;
}

/* Encoded size of one array body (validated at open, so no bounds checks). */
static uint64_t body_size(uint32_t et, uint64_t n, const uint8_t *p) {
    if (vtype_size[et]) return n * vtype_size[et];
    const uint8_t *q = p;
    for (uint64_t k = 0; k < n; k++) {
        if (et == AGX_GGUF_STRING) {
            q += 8 + le_u64(q);
        } else {
            uint32_t sub = le_u32(q);
            uint64_t sn = le_u64(q + 4);
            q += 12;
            q += body_size(sub, sn, q);
        }
    }
    return (uint64_t)(q - p);
}

bool agx_gguf_arr_sub(const agx_gguf_kv *kv, uint64_t i, agx_gguf_kv *out) {
    if (!kv || kv->type != AGX_GGUF_ARRAY || kv->arr_type != AGX_GGUF_ARRAY || i >= kv->arr_len) return false;
    const uint8_t *p = kv->arr_data;
    for (uint64_t k = 0; k < i; k++) {
        uint32_t sub = le_u32(p);
        uint64_t n = le_u64(p + 4);
        p += 12 + body_size(sub, n, p + 12);
    }
    memset(out, 0, sizeof *out);
    out->key = kv->key;
    out->type = AGX_GGUF_ARRAY;
    out->arr_type = (agx_gguf_vtype)le_u32(p);
    out->arr_len = le_u64(p + 4);
    out->arr_data = p + 12;
    return true;
}
