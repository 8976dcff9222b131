/* gguf_writer.c — the GGUF v3 (or v2) writer: metadata is encoded into a
 * buffer as it is added; tensors are either copied in (agx_gguf_writer_write)
 * or declared and streamed to a temp file in order (the generator's ~GB files),
 * which is renamed into place atomically at the end. */
#include "agx/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agx/quant.h"
#include "agx/util.h"

typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[AGX_GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset;
    void *data;   /* owned copy, NULL for streamed tensors */
} wtensor;

struct agx_gguf_writer {
    uint32_t version;
    uint32_t alignment;
    agx_strbuf kv;      /* encoded metadata entries */
    uint64_t n_kv;
    char **keys;        /* for duplicate detection */
    bool has_alignment_key;
    wtensor *t;
    size_t n_t, cap_t;
    /* streaming state */
    FILE *f;
    char *tmp_path;
    char *final_path;
    size_t next;        /* next tensor to stream */
    uint64_t written;   /* bytes of the current tensor written so far */
};

agx_gguf_writer *agx_gguf_writer_new(void) {
    agx_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->version = 3;
    w->alignment = 32;
    agx_strbuf_init(&w->kv);
    return w;
}

void agx_gguf_writer_stream_abort(agx_gguf_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    w->tmp_path = w->final_path = NULL;
}

void agx_gguf_writer_free(agx_gguf_writer *w) {
    if (!w) return;
    agx_gguf_writer_stream_abort(w);
    agx_strbuf_free(&w->kv);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    free(w);
}

void agx_gguf_writer_set_version(agx_gguf_writer *w, uint32_t version) { w->version = version; }
void agx_gguf_writer_set_alignment(agx_gguf_writer *w, uint32_t alignment) { w->alignment = alignment; }

static bool put_u32(agx_strbuf *sb, uint32_t v) { return agx_strbuf_append(sb, &v, 4); }
static bool put_u64(agx_strbuf *sb, uint64_t v) { return agx_strbuf_append(sb, &v, 8); }
static bool put_str(agx_strbuf *sb, const char *s, size_t n) {
    return put_u64(sb, n) && agx_strbuf_append(sb, s, n);
}

/* Starts a KV: checks the key, records it, encodes key + type. */
static agx_status begin_kv(agx_gguf_writer *w, const char *key, agx_gguf_vtype type, agx_error *err) {
    if (!key || !*key) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: empty metadata key");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: duplicate metadata key '%s'", key);
    char **nk = realloc(w->keys, (w->n_kv + 1) * sizeof *nk);
    if (!nk) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    w->keys = nk;
    if (!(w->keys[w->n_kv] = strdup(key))) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    w->n_kv++;
    if (strcmp(key, "general.alignment") == 0) w->has_alignment_key = true;
    if (!put_str(&w->kv, key, strlen(key)) || !put_u32(&w->kv, (uint32_t)type))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    return AGX_OK;
}

static const uint8_t fixed_size[AGX_GGUF_VTYPE_COUNT] = {
    [AGX_GGUF_UINT8] = 1, [AGX_GGUF_INT8] = 1, [AGX_GGUF_UINT16] = 2, [AGX_GGUF_INT16] = 2,
    [AGX_GGUF_UINT32] = 4, [AGX_GGUF_INT32] = 4, [AGX_GGUF_FLOAT32] = 4, [AGX_GGUF_BOOL] = 1,
    [AGX_GGUF_UINT64] = 8, [AGX_GGUF_INT64] = 8, [AGX_GGUF_FLOAT64] = 8,
};

agx_status agx_gguf_writer_add_scalar(agx_gguf_writer *w, const char *key, agx_gguf_vtype type,
                                      const void *value, agx_error *err) {
    if ((unsigned)type >= AGX_GGUF_VTYPE_COUNT || !fixed_size[type])
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: '%s': type %d is not a scalar", key, (int)type);
    agx_status s = begin_kv(w, key, type, err);
    if (s) return s;
    if (!agx_strbuf_append(&w->kv, value, fixed_size[type])) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    return AGX_OK;
}

agx_status agx_gguf_writer_add_u32(agx_gguf_writer *w, const char *key, uint32_t v, agx_error *err) {
    if (strcmp(key, "general.alignment") == 0) w->alignment = v;
    return agx_gguf_writer_add_scalar(w, key, AGX_GGUF_UINT32, &v, err);
}
agx_status agx_gguf_writer_add_i32(agx_gguf_writer *w, const char *key, int32_t v, agx_error *err) {
    return agx_gguf_writer_add_scalar(w, key, AGX_GGUF_INT32, &v, err);
}
agx_status agx_gguf_writer_add_u64(agx_gguf_writer *w, const char *key, uint64_t v, agx_error *err) {
    return agx_gguf_writer_add_scalar(w, key, AGX_GGUF_UINT64, &v, err);
}
agx_status agx_gguf_writer_add_f32(agx_gguf_writer *w, const char *key, float v, agx_error *err) {
    return agx_gguf_writer_add_scalar(w, key, AGX_GGUF_FLOAT32, &v, err);
}
agx_status agx_gguf_writer_add_bool(agx_gguf_writer *w, const char *key, bool v, agx_error *err) {
    uint8_t b = v ? 1 : 0;
    return agx_gguf_writer_add_scalar(w, key, AGX_GGUF_BOOL, &b, err);
}

agx_status agx_gguf_writer_add_str(agx_gguf_writer *w, const char *key, const char *v, agx_error *err) {
    agx_status s = begin_kv(w, key, AGX_GGUF_STRING, err);
    if (s) return s;
    if (!put_str(&w->kv, v, strlen(v))) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    return AGX_OK;
}

agx_status agx_gguf_writer_add_str_array(agx_gguf_writer *w, const char *key, const char *const *v,
                                         size_t n, agx_error *err) {
    agx_status s = begin_kv(w, key, AGX_GGUF_ARRAY, err);
    if (s) return s;
    bool ok = put_u32(&w->kv, AGX_GGUF_STRING) && put_u64(&w->kv, n);
    for (size_t i = 0; ok && i < n; i++) ok = put_str(&w->kv, v[i], strlen(v[i]));
    return ok ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
}

agx_status agx_gguf_writer_add_array(agx_gguf_writer *w, const char *key, agx_gguf_vtype et,
                                     const void *v, size_t n, agx_error *err) {
    if ((unsigned)et >= AGX_GGUF_VTYPE_COUNT || !fixed_size[et])
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: '%s': element type %d is not fixed-size", key, (int)et);
    agx_status s = begin_kv(w, key, AGX_GGUF_ARRAY, err);
    if (s) return s;
    bool ok = put_u32(&w->kv, (uint32_t)et) && put_u64(&w->kv, n) &&
              (n == 0 || agx_strbuf_append(&w->kv, v, n * fixed_size[et]));
    return ok ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
}

agx_status agx_gguf_writer_add_i32_array(agx_gguf_writer *w, const char *key, const int32_t *v,
                                         size_t n, agx_error *err) {
    return agx_gguf_writer_add_array(w, key, AGX_GGUF_INT32, v, n, err);
}
agx_status agx_gguf_writer_add_f32_array(agx_gguf_writer *w, const char *key, const float *v,
                                         size_t n, agx_error *err) {
    return agx_gguf_writer_add_array(w, key, AGX_GGUF_FLOAT32, v, n, err);
}

agx_status agx_gguf_writer_add_i32_array_array(agx_gguf_writer *w, const char *key,
                                               const int32_t *const *rows, const size_t *lens,
                                               size_t n, agx_error *err) {
    agx_status s = begin_kv(w, key, AGX_GGUF_ARRAY, err);
    if (s) return s;
    bool ok = put_u32(&w->kv, AGX_GGUF_ARRAY) && put_u64(&w->kv, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = put_u32(&w->kv, AGX_GGUF_INT32) && put_u64(&w->kv, lens[i]) &&
             (lens[i] == 0 || agx_strbuf_append(&w->kv, rows[i], lens[i] * 4));
    return ok ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
}

/* Raw encoded size of a validated value (the reader checked it at open). */
static uint64_t enc_size(agx_gguf_vtype t, const uint8_t *p) {
    uint64_t n;
    if (fixed_size[t]) return fixed_size[t];
    memcpy(&n, p, 8);
    if (t == AGX_GGUF_STRING) return 8 + n;
    uint32_t et;
    memcpy(&et, p, 4);
    memcpy(&n, p + 4, 8);
    uint64_t sz = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (fixed_size[et]) {
            sz += n * fixed_size[et];
            break;
        }
        sz += enc_size((agx_gguf_vtype)et, p + sz);
    }
    return sz;
}

agx_status agx_gguf_writer_copy_kvs(agx_gguf_writer *w, const agx_gguf *src, const char *prefix,
                                    agx_error *err) {
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < agx_gguf_n_kv(src); i++) {
        const agx_gguf_kv *kv = agx_gguf_kv_at(src, i);
        if (kv->key.len < pl || memcmp(kv->key.ptr, prefix, pl) != 0) continue;
        if (agx_gguf_str_eq(kv->key, "general.alignment")) continue;
        char *key = agx_strndup(kv->key.ptr, (size_t)kv->key.len);
        if (!key) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        agx_status s = begin_kv(w, key, kv->type, err);
        free(key);
        if (s) return s;
        /* The value's encoded bytes follow the type field in the source file. */
        const uint8_t *vp;
        if (kv->type == AGX_GGUF_STRING) vp = (const uint8_t *)kv->v.str.ptr - 8;
        else if (kv->type == AGX_GGUF_ARRAY) vp = kv->arr_data - 12;
        else vp = (const uint8_t *)kv->key.ptr + kv->key.len + 4;
        if (!agx_strbuf_append(&w->kv, vp, (size_t)enc_size(kv->type, vp)))
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    return AGX_OK;
}

static agx_status add_info(agx_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, agx_error *err) {
    if (w->f) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' added after streaming began", name);
    if (!name || !*name) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: empty tensor name");
    if (n_dims < 1 || n_dims > AGX_GGUF_MAX_DIMS)
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' has n_dims %u", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: duplicate tensor '%s'", name);
    const agx_type_traits *tr = agx_type_traits_get(type);
    if (!tr) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' has unknown type %u", name, type);
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' dim %u is %" PRId64, name, d, ne[d]);
        if (d) rows *= (uint64_t)ne[d];
    }
    size_t rs = agx_type_row_size(type, ne[0]);
    if (!rs)
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s': row length %" PRId64
                             " is not a multiple of the %s block size", name, ne[0], tr->name);
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        w->t = nt;
        w->cap_t = nc;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < AGX_GGUF_MAX_DIMS; d++) t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->nbytes = rs * rows;
    w->n_t++;
    return AGX_OK;
}

agx_status agx_gguf_writer_add_tensor_info(agx_gguf_writer *w, const char *name, uint32_t type,
                                           uint32_t n_dims, const int64_t *ne, agx_error *err) {
    return add_info(w, name, type, n_dims, ne, err);
}

agx_status agx_gguf_writer_add_tensor(agx_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      size_t nbytes, agx_error *err) {
    agx_status s = add_info(w, name, type, n_dims, ne, err);
    if (s) return s;
    wtensor *t = &w->t[w->n_t - 1];
    if (nbytes != t->nbytes) {
        free(t->name);
        w->n_t--;
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' has %zu bytes of data, expected %" PRIu64,
                             name, nbytes, w->t[w->n_t].nbytes);
    }
    if (!(t->data = malloc(nbytes ? nbytes : 1))) {
        free(t->name);
        w->n_t--;
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory copying tensor '%s'", name);
    }
    memcpy(t->data, data, nbytes);
    return AGX_OK;
}

static agx_status write_bytes(agx_gguf_writer *w, const void *p, size_t n, agx_error *err) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return agx_error_set(err, AGX_ERR_IO, "writing '%s': %s", w->final_path, strerror(errno));
    return AGX_OK;
}

static agx_status write_pad(agx_gguf_writer *w, uint64_t pos, agx_error *err) {
    static const uint8_t zeros[4096];
    uint64_t pad = (w->alignment - pos % w->alignment) % w->alignment;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        agx_status s = write_bytes(w, zeros, k, err);
        if (s) return s;
        pad -= k;
    }
    return AGX_OK;
}

agx_status agx_gguf_writer_stream_begin(agx_gguf_writer *w, const char *path, agx_error *err) {
    if (w->f) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: already streaming");
    if (w->alignment == 0 || (w->alignment & (w->alignment - 1)))
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: alignment %u is not a power of two", w->alignment);
    agx_status s;
    if (w->alignment != 32 && !w->has_alignment_key) {
        uint32_t a = w->alignment;
        if ((s = agx_gguf_writer_add_scalar(w, "general.alignment", AGX_GGUF_UINT32, &a, err))) return s;
    }
    w->final_path = strdup(path);
    w->tmp_path = agx_sprintf("%s.tmp.XXXXXX", path);
    if (!w->final_path || !w->tmp_path) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    int fd = mkstemp(w->tmp_path);
    if (fd < 0) {
        agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", w->tmp_path, strerror(errno));
        free(w->tmp_path);
        w->tmp_path = NULL;
        return AGX_ERR_IO;
    }
    fchmod(fd, 0644);   /* mkstemp creates 0600; model files are ordinary readable files */
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        close(fd);
        agx_gguf_writer_stream_abort(w);
        return agx_error_set(err, AGX_ERR_IO, "cannot open temp file: %s", strerror(errno));
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    agx_strbuf h;
    agx_strbuf_init(&h);
    bool ok = agx_strbuf_append(&h, "GGUF", 4) && put_u32(&h, w->version) && put_u64(&h, w->n_t) &&
              put_u64(&h, w->n_kv) && agx_strbuf_append(&h, w->kv.data ? w->kv.data : "", w->kv.len);
    uint64_t off = 0;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        t->offset = off;
        ok = put_str(&h, t->name, strlen(t->name)) && put_u32(&h, t->n_dims);
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = put_u64(&h, (uint64_t)t->ne[d]);
        ok = ok && put_u32(&h, t->type) && put_u64(&h, t->offset);
        off += t->nbytes;
        off += (w->alignment - off % w->alignment) % w->alignment;
    }
    if (!ok) {
        agx_strbuf_free(&h);
        agx_gguf_writer_stream_abort(w);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    s = write_bytes(w, h.data, h.len, err);
    if (!s) s = write_pad(w, h.len, err);
    agx_strbuf_free(&h);
    if (s) {
        agx_gguf_writer_stream_abort(w);
        return s;
    }
    w->next = 0;
    w->written = 0;
    return AGX_OK;
}

agx_status agx_gguf_writer_stream_data(agx_gguf_writer *w, const void *data, size_t nbytes, agx_error *err) {
    if (!w->f) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: not streaming");
    const uint8_t *p = data;
    while (nbytes) {
        if (w->next >= w->n_t) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: more tensor data than tensors");
        wtensor *t = &w->t[w->next];
        uint64_t left = t->nbytes - w->written;
        size_t k = nbytes < left ? nbytes : (size_t)left;
        agx_status s = write_bytes(w, p, k, err);
        if (s) return s;
        p += k;
        nbytes -= k;
        w->written += k;
        if (w->written == t->nbytes) {
            if ((s = write_pad(w, t->nbytes, err))) return s;
            w->next++;
            w->written = 0;
        }
    }
    return AGX_OK;
}

agx_status agx_gguf_writer_stream_tensor(agx_gguf_writer *w, const void *data, size_t nbytes,
                                         agx_error *err) {
    if (!w->f) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: not streaming");
    if (w->next >= w->n_t) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: more tensor data than tensors");
    wtensor *t = &w->t[w->next];
    if (w->written != 0 || nbytes != t->nbytes)
        return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' got %zu bytes, expected %" PRIu64,
                             t->name, nbytes, t->nbytes);
    return agx_gguf_writer_stream_data(w, data, nbytes, err);
}

agx_status agx_gguf_writer_stream_commit(agx_gguf_writer *w, agx_error *err) {
    if (!w->f) return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: not streaming");
    if (w->next != w->n_t) {
        agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: only %zu of %zu tensors were written", w->next, w->n_t);
        agx_gguf_writer_stream_abort(w);
        return AGX_ERR_USAGE;
    }
    int rc = fflush(w->f);
    if (rc == 0) rc = fsync(fileno(w->f));
    int e = errno;
    if (fclose(w->f) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    w->f = NULL;
    if (rc == 0 && rename(w->tmp_path, w->final_path) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        agx_error_set(err, AGX_ERR_IO, "writing '%s': %s", w->final_path, strerror(e));
        agx_gguf_writer_stream_abort(w);
        return AGX_ERR_IO;
    }
    free(w->tmp_path);
    free(w->final_path);
    w->tmp_path = w->final_path = NULL;
    return AGX_OK;
}

agx_status agx_gguf_writer_write(agx_gguf_writer *w, const char *path, agx_error *err) {
    for (size_t i = 0; i < w->n_t; i++)
        if (!w->t[i].data)
            return agx_error_set(err, AGX_ERR_USAGE, "GGUF writer: tensor '%s' has no data (use the streaming API)",
                                 w->t[i].name);
    agx_status s = agx_gguf_writer_stream_begin(w, path, err);
    for (size_t i = 0; !s && i < w->n_t; i++) s = agx_gguf_writer_stream_tensor(w, w->t[i].data, w->t[i].nbytes, err);
    if (s) {
        agx_gguf_writer_stream_abort(w);
        return s;
    }
    return agx_gguf_writer_stream_commit(w, err);
}
