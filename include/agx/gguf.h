/* gguf.h — GGUF v2/v3 model files: a bounds-checked, mmap-based reader (every
 * count, length, offset and shape is validated against the file size before
 * use) and a writer for tests, the quantizer and the synthetic-model generator.
 * Strings returned by the reader are views into the mapping (not NUL-terminated). */
#ifndef AGX_GGUF_H
#define AGX_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_gguf_vtype {
    AGX_GGUF_UINT8 = 0, AGX_GGUF_INT8 = 1, AGX_GGUF_UINT16 = 2, AGX_GGUF_INT16 = 3,
    AGX_GGUF_UINT32 = 4, AGX_GGUF_INT32 = 5, AGX_GGUF_FLOAT32 = 6, AGX_GGUF_BOOL = 7,
    AGX_GGUF_STRING = 8, AGX_GGUF_ARRAY = 9, AGX_GGUF_UINT64 = 10, AGX_GGUF_INT64 = 11,
    AGX_GGUF_FLOAT64 = 12, AGX_GGUF_VTYPE_COUNT
} agx_gguf_vtype;

typedef struct agx_gguf_str {
    const char *ptr;   /* view into the mapping, not NUL-terminated */
    uint64_t len;
} agx_gguf_str;

typedef struct agx_gguf_kv {
    agx_gguf_str key;
    agx_gguf_vtype type;
    /* Scalars are decoded; strings are views; arrays keep their element type,
     * count and a pointer to the first element's encoded bytes. */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        agx_gguf_str str;
    } v;
    agx_gguf_vtype arr_type;   /* for AGX_GGUF_ARRAY */
    uint64_t arr_len;
    const uint8_t *arr_data;   /* encoded elements (strings: len-prefixed) */
} agx_gguf_kv;

#define AGX_GGUF_MAX_DIMS 4

typedef struct agx_gguf_tensor {
    agx_gguf_str name;
    uint32_t n_dims;
    int64_t ne[AGX_GGUF_MAX_DIMS];   /* ggml order: ne[0] = row length; unused dims = 1 */
    uint32_t type;                   /* ggml type id (agx_ggml_type) */
    uint64_t offset;                 /* relative to the data section */
    const void *data;                /* into the mapping */
    uint64_t nbytes;
} agx_gguf_tensor;

typedef struct agx_gguf agx_gguf;   /* opaque reader */

agx_status agx_gguf_open(const char *path, agx_gguf **out, agx_error *err);
/* Parses an in-memory image (not copied; must outlive the reader). For fuzzing/tests. */
agx_status agx_gguf_open_memory(const void *data, size_t size, agx_gguf **out, agx_error *err);
void agx_gguf_close(agx_gguf *g);
/* Drops the whole pages inside [p, p+n) of a file mapping from the resident
 * set (the next access reads them from the file again): for data the caller
 * has copied elsewhere. Does nothing for an in-memory image or a range
 * outside the mapping. */
void agx_gguf_release_pages(const agx_gguf *g, const void *p, size_t n);

uint32_t agx_gguf_version(const agx_gguf *g);
uint64_t agx_gguf_file_size(const agx_gguf *g);
uint64_t agx_gguf_alignment(const agx_gguf *g);
uint64_t agx_gguf_data_offset(const agx_gguf *g);
/* The path given to open ("<memory>" for open_memory); for messages. */
const char *agx_gguf_path(const agx_gguf *g);

size_t agx_gguf_n_kv(const agx_gguf *g);
const agx_gguf_kv *agx_gguf_kv_at(const agx_gguf *g, size_t i);
const agx_gguf_kv *agx_gguf_find(const agx_gguf *g, const char *key);

/* Typed getters: return false when the key is missing or has an incompatible
 * type (integers convert between widths when the value fits). */
bool agx_gguf_get_u64(const agx_gguf *g, const char *key, uint64_t *out);
bool agx_gguf_get_u32(const agx_gguf *g, const char *key, uint32_t *out);
bool agx_gguf_get_i64(const agx_gguf *g, const char *key, int64_t *out);
bool agx_gguf_get_f32(const agx_gguf *g, const char *key, float *out);   /* f32/f64/ints */
bool agx_gguf_get_bool(const agx_gguf *g, const char *key, bool *out);
bool agx_gguf_get_str(const agx_gguf *g, const char *key, agx_gguf_str *out);
/* Malloc'ed NUL-terminated copy of a string value, NULL when missing. */
char *agx_gguf_get_strdup(const agx_gguf *g, const char *key);

/* Arrays: element i of an array KV (validated at open, so O(1) for fixed-size
 * elements; string arrays are indexed once at open). */
bool agx_gguf_arr_str(const agx_gguf *g, const agx_gguf_kv *kv, uint64_t i, agx_gguf_str *out);
bool agx_gguf_arr_i64(const agx_gguf_kv *kv, uint64_t i, int64_t *out);
bool agx_gguf_arr_f64(const agx_gguf_kv *kv, uint64_t i, double *out);
/* Element i of an array of arrays, as a KV view (key = parent key, type =
 * AGX_GGUF_ARRAY); use the arr_* getters on it (O(i) walk, validated at open). */
bool agx_gguf_arr_sub(const agx_gguf_kv *kv, uint64_t i, agx_gguf_kv *out);

size_t agx_gguf_n_tensors(const agx_gguf *g);
const agx_gguf_tensor *agx_gguf_tensor_at(const agx_gguf *g, size_t i);
const agx_gguf_tensor *agx_gguf_find_tensor(const agx_gguf *g, const char *name);

/* Compare a view with a C string. */
bool agx_gguf_str_eq(agx_gguf_str s, const char *cstr);

/* ---- writer ---- */
typedef struct agx_gguf_writer agx_gguf_writer;

agx_gguf_writer *agx_gguf_writer_new(void);
void agx_gguf_writer_free(agx_gguf_writer *w);
void agx_gguf_writer_set_version(agx_gguf_writer *w, uint32_t version);  /* default 3 */
void agx_gguf_writer_set_alignment(agx_gguf_writer *w, uint32_t alignment); /* default 32; writes general.alignment when != 32 */
agx_status agx_gguf_writer_add_u32(agx_gguf_writer *w, const char *key, uint32_t v, agx_error *err);
agx_status agx_gguf_writer_add_i32(agx_gguf_writer *w, const char *key, int32_t v, agx_error *err);
agx_status agx_gguf_writer_add_u64(agx_gguf_writer *w, const char *key, uint64_t v, agx_error *err);
agx_status agx_gguf_writer_add_f32(agx_gguf_writer *w, const char *key, float v, agx_error *err);
agx_status agx_gguf_writer_add_bool(agx_gguf_writer *w, const char *key, bool v, agx_error *err);
agx_status agx_gguf_writer_add_str(agx_gguf_writer *w, const char *key, const char *v, agx_error *err);
agx_status agx_gguf_writer_add_str_array(agx_gguf_writer *w, const char *key, const char *const *v,
                                         size_t n, agx_error *err);
agx_status agx_gguf_writer_add_i32_array(agx_gguf_writer *w, const char *key, const int32_t *v,
                                         size_t n, agx_error *err);
agx_status agx_gguf_writer_add_f32_array(agx_gguf_writer *w, const char *key, const float *v,
                                         size_t n, agx_error *err);
/* Adds a tensor; data (nbytes = agx_type_row_size(type, ne[0]) * rows) is copied. */
agx_status agx_gguf_writer_add_tensor(agx_gguf_writer *w, const char *name, uint32_t type,
                                      uint32_t n_dims, const int64_t *ne, const void *data,
                                      size_t nbytes, agx_error *err);
/* Other scalar types (u8/i8/u16/i16/i64/f64), for tests and tools. */
agx_status agx_gguf_writer_add_scalar(agx_gguf_writer *w, const char *key, agx_gguf_vtype type,
                                      const void *value, agx_error *err);
/* An array of n fixed-size elements of type et (not string/array), raw little-endian. */
agx_status agx_gguf_writer_add_array(agx_gguf_writer *w, const char *key, agx_gguf_vtype et,
                                     const void *v, size_t n, agx_error *err);
/* An array of n arrays of int32 (row i has lens[i] elements). */
agx_status agx_gguf_writer_add_i32_array_array(agx_gguf_writer *w, const char *key,
                                               const int32_t *const *rows, const size_t *lens,
                                               size_t n, agx_error *err);
/* Copies every metadata entry of an existing file whose key starts with prefix
 * ("" = all, except general.alignment). */
agx_status agx_gguf_writer_copy_kvs(agx_gguf_writer *w, const agx_gguf *src, const char *prefix,
                                    agx_error *err);
/* Writes the file atomically. */
agx_status agx_gguf_writer_write(agx_gguf_writer *w, const char *path, agx_error *err);

/* Streaming: declare tensors without data, then write the header and stream
 * each tensor's data in declaration order; commit renames the temp file into
 * place (atomic), abort removes it. Keeps memory bounded for ~GB files. */
agx_status agx_gguf_writer_add_tensor_info(agx_gguf_writer *w, const char *name, uint32_t type,
                                           uint32_t n_dims, const int64_t *ne, agx_error *err);
agx_status agx_gguf_writer_stream_begin(agx_gguf_writer *w, const char *path, agx_error *err);
/* Data of the next declared tensor (nbytes must match its declared size). */
agx_status agx_gguf_writer_stream_tensor(agx_gguf_writer *w, const void *data, size_t nbytes,
                                         agx_error *err);
/* Any number of bytes continuing the declared tensors in order (chunked writes). */
agx_status agx_gguf_writer_stream_data(agx_gguf_writer *w, const void *data, size_t nbytes, agx_error *err);
agx_status agx_gguf_writer_stream_commit(agx_gguf_writer *w, agx_error *err);
void agx_gguf_writer_stream_abort(agx_gguf_writer *w);

#ifdef __cplusplus
}
#endif
#endif
