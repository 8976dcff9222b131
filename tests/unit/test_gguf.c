/* test_gguf.c — GGUF reader/writer: round trip of every metadata type (arrays
 * of strings, arrays of arrays), tensor data and alignment, and the corrupt-file
 * suite where every case must be a clean AGX_ERR_LOAD naming field and offset. */
#include "agx_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"
#include "agx/gguf.h"
#include "agx/quant.h"

/* ---- raw byte builder for hand-made (corrupt) files ---- */
typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void bb_u32(bb *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bb *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static void bb_hdr(bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}
static void bb_kv_u32(bb *b, const char *key, uint32_t v) {
    bb_str(b, key);
    bb_u32(b, AGX_GGUF_UINT32);
    bb_u32(b, v);
}
/* tensor info with ne given explicitly */
static void bb_tensor(bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, off);
}
static void bb_pad(bb *b, size_t align) {
    while (b->n % align) {
        uint8_t z = 0;
        bb_put(b, &z, 1);
    }
}
static void bb_zeros(bb *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint8_t z = 0;
        bb_put(b, &z, 1);
    }
}

/* Opens the image and expects a clean load error whose message contains every
 * given substring. */
static void expect_fail(const bb *b, const char *sub1, const char *sub2) {
    agx_gguf *g = (agx_gguf *)0x1;
    agx_error err;
    agx_error_clear(&err);
    agx_status s = agx_gguf_open_memory(b->p, b->n, &g, &err);
    if (s != AGX_ERR_LOAD || (sub1 && !strstr(err.message, sub1)) || (sub2 && !strstr(err.message, sub2)))
        print_error("status %d message: %s (wanted '%s' and '%s')\n", s, err.message, sub1 ? sub1 : "",
                    sub2 ? sub2 : "");
    assert_int_equal(s, AGX_ERR_LOAD);
    assert_null(g);
    if (sub1) assert_non_null(strstr(err.message, sub1));
    if (sub2) assert_non_null(strstr(err.message, sub2));
}

static agx_gguf *expect_ok(const bb *b) {
    agx_gguf *g = NULL;
    agx_error err;
    agx_error_clear(&err);
    agx_status s = agx_gguf_open_memory(b->p, b->n, &g, &err);
    if (s != AGX_OK) print_error("unexpected failure: %s\n", err.message);
    assert_int_equal(s, AGX_OK);
    return g;
}

/* ---- round trip ---- */

static char *write_sample(const char *dir, uint32_t version, uint32_t alignment) {
    agx_error err;
    agx_gguf_writer *w = agx_gguf_writer_new();
    assert_non_null(w);
    agx_gguf_writer_set_version(w, version);
    agx_gguf_writer_set_alignment(w, alignment);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -(1ll << 40);
    double f64 = 3.25e100;
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.u8", AGX_GGUF_UINT8, &u8, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.i8", AGX_GGUF_INT8, &i8, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.u16", AGX_GGUF_UINT16, &u16, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.i16", AGX_GGUF_INT16, &i16, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_u32(w, "t.u32", 4000000000u, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_i32(w, "t.i32", -2000000000, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_f32(w, "t.f32", 1.5f, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_bool(w, "t.bool", true, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_str(w, "t.str", "héllo", &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_u64(w, "t.u64", 0xfedcba9876543210ull, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.i64", AGX_GGUF_INT64, &i64, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_scalar(w, "t.f64", AGX_GGUF_FLOAT64, &f64, &err), AGX_OK);
    const char *strs[] = {"a", "", "<|im_start|>", "ĠĠ"};
    assert_int_equal(agx_gguf_writer_add_str_array(w, "t.strs", strs, 4, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_str_array(w, "t.strs0", strs, 0, &err), AGX_OK);
    int32_t iv[] = {1, -2, 3};
    assert_int_equal(agx_gguf_writer_add_i32_array(w, "t.i32s", iv, 3, &err), AGX_OK);
    float fv[] = {0.5f, -1.0f};
    assert_int_equal(agx_gguf_writer_add_f32_array(w, "t.f32s", fv, 2, &err), AGX_OK);
    uint8_t bv[] = {1, 0, 1};
    assert_int_equal(agx_gguf_writer_add_array(w, "t.bools", AGX_GGUF_BOOL, bv, 3, &err), AGX_OK);
    double dv[] = {1e-300, 7};
    assert_int_equal(agx_gguf_writer_add_array(w, "t.f64s", AGX_GGUF_FLOAT64, dv, 2, &err), AGX_OK);
    int32_t r0[] = {5}, r2[] = {7, 8, 9};
    const int32_t *rows[] = {r0, NULL, r2};
    size_t lens[] = {1, 0, 3};
    assert_int_equal(agx_gguf_writer_add_i32_array_array(w, "t.arrs", rows, lens, 3, &err), AGX_OK);
    /* duplicate keys are refused by the writer */
    assert_int_equal(agx_gguf_writer_add_u32(w, "t.u32", 1, &err), AGX_ERR_USAGE);

    float a[8 * 3];
    for (int i = 0; i < 24; i++) a[i] = (float)i - 3.5f;
    int64_t ne_a[] = {8, 3};
    assert_int_equal(agx_gguf_writer_add_tensor(w, "a", AGX_TYPE_F32, 2, ne_a, a, sizeof a, &err), AGX_OK);
    uint8_t q[34 * 2];
    for (size_t i = 0; i < sizeof q; i++) q[i] = (uint8_t)(i * 7);
    int64_t ne_q[] = {64};
    assert_int_equal(agx_gguf_writer_add_tensor(w, "q", AGX_TYPE_Q8_0, 1, ne_q, q, sizeof q, &err), AGX_OK);
    uint16_t h[32 * 2 * 1 * 2];
    for (size_t i = 0; i < 128; i++) h[i] = (uint16_t)i;
    int64_t ne_h[] = {32, 2, 1, 2};
    assert_int_equal(agx_gguf_writer_add_tensor(w, "h4", AGX_TYPE_F16, 4, ne_h, h, sizeof h, &err), AGX_OK);
    /* wrong size, bad row length, duplicate name */
    assert_int_equal(agx_gguf_writer_add_tensor(w, "bad", AGX_TYPE_F32, 2, ne_a, a, 8, &err), AGX_ERR_USAGE);
    int64_t ne_bad[] = {33};
    assert_int_equal(agx_gguf_writer_add_tensor(w, "bad2", AGX_TYPE_Q8_0, 1, ne_bad, q, 34, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_gguf_writer_add_tensor(w, "a", AGX_TYPE_F32, 2, ne_a, a, sizeof a, &err), AGX_ERR_USAGE);

    char *path = agx_sprintf("%s/rt-v%u-a%u.gguf", dir, version, alignment);
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_OK);
    agx_gguf_writer_free(w);
    return path;
}

static void check_sample(const char *path, uint32_t version, uint32_t alignment) {
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open(path, &g, &err), AGX_OK);
    assert_int_equal(agx_gguf_version(g), version);
    assert_int_equal(agx_gguf_alignment(g), alignment);
    assert_int_equal(agx_gguf_data_offset(g) % alignment, 0);
    assert_int_equal(agx_gguf_n_kv(g), 19 + (alignment != 32));
    uint64_t u;
    int64_t i;
    float f;
    bool b;
    agx_gguf_str s;
    assert_true(agx_gguf_get_u64(g, "t.u8", &u) && u == 200);
    assert_true(agx_gguf_get_i64(g, "t.i8", &i) && i == -100);
    assert_false(agx_gguf_get_u64(g, "t.i8", &u)); /* negative does not convert */
    assert_true(agx_gguf_get_u64(g, "t.u16", &u) && u == 60000);
    assert_true(agx_gguf_get_i64(g, "t.i16", &i) && i == -30000);
    uint32_t u32;
    assert_true(agx_gguf_get_u32(g, "t.u32", &u32) && u32 == 4000000000u);
    assert_true(agx_gguf_get_i64(g, "t.i32", &i) && i == -2000000000);
    assert_true(agx_gguf_get_f32(g, "t.f32", &f) && f == 1.5f);
    assert_true(agx_gguf_get_f32(g, "t.u16", &f) && f == 60000.0f);
    assert_true(agx_gguf_get_bool(g, "t.bool", &b) && b);
    assert_false(agx_gguf_get_bool(g, "t.u8", &b));
    assert_true(agx_gguf_get_str(g, "t.str", &s) && agx_gguf_str_eq(s, "héllo"));
    char *dup = agx_gguf_get_strdup(g, "t.str");
    assert_string_equal(dup, "héllo");
    free(dup);
    assert_null(agx_gguf_get_strdup(g, "t.u8"));
    assert_true(agx_gguf_get_u64(g, "t.u64", &u) && u == 0xfedcba9876543210ull);
    assert_false(agx_gguf_get_u32(g, "t.u64", &u32)); /* does not fit */
    assert_false(agx_gguf_get_i64(g, "t.u64", &i));
    assert_true(agx_gguf_get_i64(g, "t.i64", &i) && i == -(1ll << 40));
    const agx_gguf_kv *kv = agx_gguf_find(g, "t.f64");
    assert_non_null(kv);
    assert_int_equal(kv->type, AGX_GGUF_FLOAT64);
    assert_true(kv->v.f64 == 3.25e100);
    assert_null(agx_gguf_find(g, "t.missing"));
    assert_false(agx_gguf_get_u64(g, "t.missing", &u));

    kv = agx_gguf_find(g, "t.strs");
    assert_non_null(kv);
    assert_int_equal(kv->arr_type, AGX_GGUF_STRING);
    assert_int_equal(kv->arr_len, 4);
    const char *want[] = {"a", "", "<|im_start|>", "ĠĠ"};
    for (int k = 3; k >= 0; k--) {
        assert_true(agx_gguf_arr_str(g, kv, (uint64_t)k, &s));
        assert_true(agx_gguf_str_eq(s, want[k]));
    }
    assert_false(agx_gguf_arr_str(g, kv, 4, &s));
    assert_false(agx_gguf_arr_i64(kv, 0, &i));
    kv = agx_gguf_find(g, "t.strs0");
    assert_int_equal(kv->arr_len, 0);
    assert_false(agx_gguf_arr_str(g, kv, 0, &s));
    kv = agx_gguf_find(g, "t.i32s");
    assert_true(agx_gguf_arr_i64(kv, 1, &i) && i == -2);
    double d;
    assert_true(agx_gguf_arr_f64(kv, 2, &d) && d == 3.0);
    assert_false(agx_gguf_arr_i64(kv, 3, &i));
    kv = agx_gguf_find(g, "t.f32s");
    assert_true(agx_gguf_arr_f64(kv, 0, &d) && d == 0.5);
    assert_false(agx_gguf_arr_i64(kv, 0, &i));
    kv = agx_gguf_find(g, "t.bools");
    assert_true(agx_gguf_arr_i64(kv, 1, &i) && i == 0);
    assert_true(agx_gguf_arr_i64(kv, 2, &i) && i == 1);
    kv = agx_gguf_find(g, "t.f64s");
    assert_true(agx_gguf_arr_f64(kv, 0, &d) && d == 1e-300);
    kv = agx_gguf_find(g, "t.arrs");
    assert_int_equal(kv->arr_type, AGX_GGUF_ARRAY);
    assert_int_equal(kv->arr_len, 3);
    agx_gguf_kv sub;
    assert_true(agx_gguf_arr_sub(kv, 2, &sub));
    assert_int_equal(sub.arr_len, 3);
    assert_true(agx_gguf_arr_i64(&sub, 2, &i) && i == 9);
    assert_true(agx_gguf_arr_sub(kv, 1, &sub));
    assert_int_equal(sub.arr_len, 0);
    assert_true(agx_gguf_arr_sub(kv, 0, &sub));
    assert_true(agx_gguf_arr_i64(&sub, 0, &i) && i == 5);
    assert_false(agx_gguf_arr_sub(kv, 3, &sub));

    assert_int_equal(agx_gguf_n_tensors(g), 3);
    const agx_gguf_tensor *t = agx_gguf_find_tensor(g, "a");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 8);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->nbytes, 96);
    const float *af = t->data;
    assert_true(af[0] == -3.5f && af[23] == 19.5f);
    t = agx_gguf_find_tensor(g, "q");
    assert_int_equal(t->type, AGX_TYPE_Q8_0);
    assert_int_equal(t->nbytes, 68);
    assert_int_equal(((const uint8_t *)t->data)[67], (uint8_t)(67 * 7));
    t = agx_gguf_find_tensor(g, "h4");
    assert_int_equal(t->n_dims, 4);
    assert_int_equal(t->ne[3], 2);
    assert_int_equal(t->nbytes, 256);
    for (size_t k = 0; k < agx_gguf_n_tensors(g); k++) {
        t = agx_gguf_tensor_at(g, k);
        assert_int_equal(t->offset % alignment, 0);
        assert_int_equal(((uintptr_t)t->data - (uintptr_t)agx_gguf_tensor_at(g, 0)->data) % alignment, 0);
    }
    assert_null(agx_gguf_find_tensor(g, "nope"));
    agx_gguf_close(g);
}

static void test_round_trip(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    const uint32_t cases[][2] = {{3, 32}, {2, 32}, {3, 64}, {3, 8}};
    for (size_t c = 0; c < 4; c++) {
        char *p = write_sample(dir, cases[c][0], cases[c][1]);
        check_sample(p, cases[c][0], cases[c][1]);
        free(p);
    }
    agx_test_rmtree(dir);
    free(dir);
}

/* copy_kvs re-encodes values byte for byte (used by --vocab-from) */
static void test_copy_kvs(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *src = write_sample(dir, 3, 32);
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open(src, &g, &err), AGX_OK);
    agx_gguf_writer *w = agx_gguf_writer_new();
    assert_int_equal(agx_gguf_writer_copy_kvs(w, g, "t.", &err), AGX_OK);
    char *dst = agx_sprintf("%s/copy.gguf", dir);
    assert_int_equal(agx_gguf_writer_write(w, dst, &err), AGX_OK);
    agx_gguf_writer_free(w);
    agx_gguf *h;
    assert_int_equal(agx_gguf_open(dst, &h, &err), AGX_OK);
    assert_int_equal(agx_gguf_n_kv(h), agx_gguf_n_kv(g));
    for (size_t i = 0; i < agx_gguf_n_kv(g); i++) {
        const agx_gguf_kv *a = agx_gguf_kv_at(g, i), *b = agx_gguf_kv_at(h, i);
        assert_int_equal(a->key.len, b->key.len);
        assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->arr_len, b->arr_len);
    }
    agx_gguf_str s;
    const agx_gguf_kv *kv = agx_gguf_find(h, "t.strs");
    assert_true(agx_gguf_arr_str(h, kv, 2, &s) && agx_gguf_str_eq(s, "<|im_start|>"));
    agx_gguf_kv sub;
    int64_t i;
    assert_true(agx_gguf_arr_sub(agx_gguf_find(h, "t.arrs"), 2, &sub) && agx_gguf_arr_i64(&sub, 1, &i) && i == 8);
    agx_gguf_close(h);
    agx_gguf_close(g);
    free(dst);
    free(src);
    agx_test_rmtree(dir);
    free(dir);
}

static void test_streaming_writer(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/s.gguf", dir);
    agx_error err;
    agx_gguf_writer *w = agx_gguf_writer_new();
    int64_t ne[] = {32, 2};
    assert_int_equal(agx_gguf_writer_add_tensor_info(w, "x", AGX_TYPE_F32, 2, ne, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_add_tensor_info(w, "y", AGX_TYPE_Q8_0, 2, ne, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_stream_begin(w, path, &err), AGX_OK);
    float x[64] = {1};
    assert_int_equal(agx_gguf_writer_stream_tensor(w, x, 100, &err), AGX_ERR_USAGE);
    assert_int_equal(agx_gguf_writer_stream_tensor(w, x, sizeof x, &err), AGX_OK);
    /* not all tensors written: commit fails and leaves no file */
    assert_int_equal(agx_gguf_writer_stream_commit(w, &err), AGX_ERR_USAGE);
    assert_false(agx_file_exists(path));
    agx_gguf_writer_free(w);

    w = agx_gguf_writer_new();
    assert_int_equal(agx_gguf_writer_add_tensor_info(w, "x", AGX_TYPE_F32, 2, ne, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_ERR_USAGE); /* no data */
    assert_int_equal(agx_gguf_writer_stream_begin(w, path, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_stream_tensor(w, x, sizeof x, &err), AGX_OK);
    assert_int_equal(agx_gguf_writer_stream_commit(w, &err), AGX_OK);
    agx_gguf_writer_free(w);
    agx_gguf *g;
    assert_int_equal(agx_gguf_open(path, &g, &err), AGX_OK);
    assert_true(((const float *)agx_gguf_find_tensor(g, "x")->data)[0] == 1.0f);
    agx_gguf_close(g);
    free(path);
    agx_test_rmtree(dir);
    free(dir);
}

/* ---- corrupt files ---- */

static void test_missing_and_empty(void **state) {
    (void)state;
    agx_gguf *g;
    agx_error err;
    assert_int_equal(agx_gguf_open("/nonexistent/x.gguf", &g, &err), AGX_ERR_LOAD);
    assert_string_equal(err.message, "Model file not found: '/nonexistent/x.gguf'");
    assert_int_equal(agx_gguf_open("/tmp", &g, &err), AGX_ERR_LOAD);
    assert_non_null(strstr(err.message, "not a regular file"));
    char *dir = agx_test_tmpdir();
    char *p = agx_sprintf("%s/empty.gguf", dir);
    FILE *f = fopen(p, "wb");
    fclose(f);
    assert_int_equal(agx_gguf_open(p, &g, &err), AGX_ERR_LOAD);
    assert_non_null(strstr(err.message, "empty"));
    free(p);
    agx_test_rmtree(dir);
    free(dir);
    assert_int_equal(agx_gguf_open_memory(NULL, 0, &g, &err), AGX_ERR_LOAD);
}

static void test_bad_magic_and_version(void **state) {
    (void)state;
    bb b = {0};
    bb_put(&b, "GGML", 4);
    bb_u32(&b, 3);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    expect_fail(&b, "bad magic", "offset 0");
    b.n = 0;
    bb_hdr(&b, 1, 0, 0);
    expect_fail(&b, "version 1", "offset 4");
    b.n = 0;
    bb_hdr(&b, 4, 0, 0);
    expect_fail(&b, "unsupported GGUF version 4", "offset 4");
    b.n = 0;
    bb_hdr(&b, 3u << 24, 0, 0);
    expect_fail(&b, "big-endian", "offset 4");
    b.n = 0;
    bb_put(&b, "GG", 2);
    expect_fail(&b, "bad magic", NULL);
    /* minimal valid files, both versions */
    b.n = 0;
    bb_hdr(&b, 2, 0, 0);
    agx_gguf_close(expect_ok(&b));
    free(b.p);
}

/* A small valid file: 2 KVs (one string array) and 2 tensors. */
static void build_valid(bb *b, size_t *end_of_data) {
    b->n = 0;
    bb_hdr(b, 3, 2, 2);
    bb_kv_u32(b, "general.alignment", 32);
    bb_str(b, "tokenizer.ggml.tokens");
    bb_u32(b, AGX_GGUF_ARRAY);
    bb_u32(b, AGX_GGUF_STRING);
    bb_u64(b, 3);
    bb_str(b, "a");
    bb_str(b, "bc");
    bb_str(b, "");
    uint64_t ne0[] = {32, 2};
    bb_tensor(b, "w0", 2, ne0, AGX_TYPE_F32, 0);
    uint64_t ne1[] = {64};
    bb_tensor(b, "w1", 1, ne1, AGX_TYPE_Q8_0, 256);
    bb_pad(b, 32);
    size_t data = b->n;
    bb_zeros(b, 256 + 68);
    *end_of_data = data + 256 + 68;
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    bb b = {0};
    size_t end;
    build_valid(&b, &end);
    agx_gguf *g = expect_ok(&b);
    assert_int_equal(agx_gguf_n_tensors(g), 2);
    assert_int_equal(agx_gguf_find_tensor(g, "w1")->nbytes, 68);
    agx_gguf_close(g);
    size_t full = b.n;
    for (size_t cut = 0; cut < end; cut++) {
        b.n = cut;
        agx_error err;
        agx_error_clear(&err);
        g = NULL;
        agx_status s = agx_gguf_open_memory(b.p, cut, &g, &err);
        if (s != AGX_ERR_LOAD) print_error("cut at %zu accepted\n", cut);
        assert_int_equal(s, AGX_ERR_LOAD);
        assert_null(g);
        /* every message names an offset or the data range */
        assert_true(strstr(err.message, "offset") != NULL || strstr(err.message, "magic") != NULL);
    }
    b.n = full;
    free(b.p);
}

static void test_absurd_counts(void **state) {
    (void)state;
    bb b = {0};
    bb_hdr(&b, 3, 0, 1ull << 60);
    bb_zeros(&b, 64);
    expect_fail(&b, "metadata count 1152921504606846976", "offset 16");
    b.n = 0;
    bb_hdr(&b, 3, UINT64_MAX, 0);
    bb_zeros(&b, 64);
    expect_fail(&b, "tensor count", "offset 8");
    b.n = 0;
    /* plausible-looking count just above what fits */
    bb_hdr(&b, 3, 0, 4);
    bb_zeros(&b, 13 * 3);
    expect_fail(&b, "metadata count 4", NULL);
    free(b.p);
}

static void test_lengths_beyond_file(void **state) {
    (void)state;
    bb b = {0};
    /* key length huge */
    bb_hdr(&b, 3, 0, 1);
    bb_u64(&b, 1ull << 62);
    bb_zeros(&b, 16);
    expect_fail(&b, "key of metadata entry 0", "offset 24");
    /* string value beyond file */
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "general.name");
    bb_u32(&b, AGX_GGUF_STRING);
    bb_u64(&b, 1000);
    bb_zeros(&b, 10);
    expect_fail(&b, "value of metadata 'general.name'", "past the end");
    /* array of u32 beyond file */
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.arr");
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u32(&b, AGX_GGUF_UINT32);
    bb_u64(&b, 1ull << 61);
    bb_zeros(&b, 16);
    expect_fail(&b, "'x.arr'", "extends past the end");
    /* array of strings beyond file */
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u32(&b, AGX_GGUF_STRING);
    bb_u64(&b, 1ull << 40);
    bb_zeros(&b, 16);
    expect_fail(&b, "tokenizer.ggml.tokens", "cannot fit");
    /* one string inside an array too long */
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u32(&b, AGX_GGUF_STRING);
    bb_u64(&b, 2);
    bb_str(&b, "ok");
    bb_u64(&b, 999);
    bb_zeros(&b, 8);
    expect_fail(&b, "tokenizer.ggml.tokens", "length 999");
    /* arrays of arrays beyond file, and nested too deep */
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.aa");
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u64(&b, 1);
    bb_u32(&b, AGX_GGUF_INT32);
    bb_u64(&b, 100);
    expect_fail(&b, "'x.aa'", "past the end");
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.deep");
    bb_u32(&b, AGX_GGUF_ARRAY);
    for (int k = 0; k < 20; k++) {
        bb_u32(&b, AGX_GGUF_ARRAY);
        bb_u64(&b, 1);
    }
    bb_u32(&b, AGX_GGUF_INT32);
    bb_u64(&b, 0);
    expect_fail(&b, "'x.deep'", "nested deeper");
    /* tensor name beyond the file */
    b.n = 0;
    bb_hdr(&b, 3, 1, 0);
    bb_u64(&b, 5000);
    bb_zeros(&b, 40);
    expect_fail(&b, "name of tensor 0", "offset 24");
    free(b.p);
}

static void test_bad_values(void **state) {
    (void)state;
    bb b = {0};
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.t");
    bb_u32(&b, 13);
    bb_zeros(&b, 8);
    expect_fail(&b, "unknown value type 13", "'x.t'");
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.arr");
    bb_u32(&b, AGX_GGUF_ARRAY);
    bb_u32(&b, 99);
    bb_u64(&b, 1);
    bb_zeros(&b, 8);
    expect_fail(&b, "unknown array element type 99", NULL);
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "x.b");
    bb_u32(&b, AGX_GGUF_BOOL);
    uint8_t two = 2;
    bb_put(&b, &two, 1);
    expect_fail(&b, "bool with value 2", "'x.b'");
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "");
    bb_u32(&b, AGX_GGUF_UINT8);
    bb_zeros(&b, 1);
    expect_fail(&b, "empty key", NULL);
    const uint32_t bad_align[] = {0, 3, 48};
    for (int k = 0; k < 3; k++) {
        b.n = 0;
        bb_hdr(&b, 3, 0, 1);
        bb_kv_u32(&b, "general.alignment", bad_align[k]);
        expect_fail(&b, "general.alignment", "power of two");
    }
    b.n = 0;
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment");
    bb_u32(&b, AGX_GGUF_STRING);
    bb_str(&b, "32");
    expect_fail(&b, "general.alignment", "unsigned integer");
    free(b.p);
}

static void test_duplicates(void **state) {
    (void)state;
    bb b = {0};
    bb_hdr(&b, 3, 0, 3);
    bb_kv_u32(&b, "a.x", 1);
    bb_kv_u32(&b, "a.y", 1);
    bb_kv_u32(&b, "a.x", 2);
    expect_fail(&b, "duplicate metadata key 'a.x'", NULL);
    b.n = 0;
    bb_hdr(&b, 3, 2, 0);
    uint64_t ne[] = {32};
    bb_tensor(&b, "w", 1, ne, AGX_TYPE_F32, 0);
    bb_tensor(&b, "w", 1, ne, AGX_TYPE_F32, 128);
    bb_pad(&b, 32);
    bb_zeros(&b, 256);
    expect_fail(&b, "duplicate tensor name 'w'", NULL);
    free(b.p);
}

/* One tensor with the given dims/type/offset followed by `data` bytes. */
static void one_tensor(bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    b->n = 0;
    bb_hdr(b, 3, 1, 0);
    bb_tensor(b, "blk.0.attn_q.weight", n_dims, ne, type, off);
    bb_pad(b, 32);
    bb_zeros(b, data);
}

static void test_bad_tensors(void **state) {
    (void)state;
    bb b = {0};
    uint64_t ne[5] = {32, 4, 1, 1, 1};
    one_tensor(&b, 2, ne, AGX_TYPE_F32, 0, 512);
    agx_gguf_close(expect_ok(&b));
    one_tensor(&b, 5, ne, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "n_dims 5", "'blk.0.attn_q.weight'");
    one_tensor(&b, 0, ne, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "n_dims 0", NULL);
    uint64_t zero[] = {32, 0};
    one_tensor(&b, 2, zero, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "dimension 1 is 0", "offset");
    uint64_t neg[] = {32, (uint64_t)-5};
    one_tensor(&b, 2, neg, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "dimension 1 is -5", NULL);
    uint64_t big[] = {1ull << 32, 1ull << 32};
    one_tensor(&b, 2, big, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "overflows", NULL);
    uint64_t big2[] = {1ull << 40, 1ull << 22};   /* elements fit, bytes (x4) overflow */
    one_tensor(&b, 2, big2, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "overflows", NULL);
    uint64_t big3[] = {1ull << 40, 4};   /* fits in 64 bits, not in the file */
    one_tensor(&b, 2, big3, AGX_TYPE_F32, 0, 512);
    expect_fail(&b, "extends past end of file", "blk.0.attn_q.weight");
    one_tensor(&b, 2, ne, 99, 0, 512);
    expect_fail(&b, "type id 99", "blk.0.attn_q.weight");
    one_tensor(&b, 2, ne, 4, 0, 512); /* removed q4_2 */
    expect_fail(&b, "type id 4", NULL);
    uint64_t odd[] = {33, 4};
    one_tensor(&b, 2, odd, AGX_TYPE_Q8_0, 0, 512);
    expect_fail(&b, "not a multiple of the q8_0 block size 32", NULL);
    one_tensor(&b, 2, ne, AGX_TYPE_F32, 16, 512);
    expect_fail(&b, "offset 16 is not a multiple of the alignment 32", NULL);
    one_tensor(&b, 2, ne, AGX_TYPE_F32, 0, 100);
    expect_fail(&b, "data [offset", "extends past end of file");
    one_tensor(&b, 2, ne, AGX_TYPE_F32, UINT64_MAX - 31, 512);
    expect_fail(&b, "extends past end of file", NULL);
    /* overlap */
    b.n = 0;
    bb_hdr(&b, 3, 2, 0);
    bb_tensor(&b, "a", 2, ne, AGX_TYPE_F32, 0);
    bb_tensor(&b, "b", 2, ne, AGX_TYPE_F32, 256);
    bb_pad(&b, 32);
    bb_zeros(&b, 1024);
    expect_fail(&b, "overlaps tensor 'b'", "'a'");
    /* contiguous is fine */
    b.n = 0;
    bb_hdr(&b, 3, 2, 0);
    bb_tensor(&b, "a", 2, ne, AGX_TYPE_F32, 512);
    bb_tensor(&b, "b", 2, ne, AGX_TYPE_F32, 0);
    bb_pad(&b, 32);
    bb_zeros(&b, 1024);
    agx_gguf_close(expect_ok(&b));
    free(b.p);
}

/* The reference models must open (if present). */
static void test_reference_models_open(void **state) {
    (void)state;
    const char *ref = agx_test_ref_dir();
    if (!ref) AGX_TEST_SKIP("reference dir missing: cannot open the reference GGUF files");
    const char *names[] = {"models/qwen2-tiny-Q4_K_M.gguf", "models/llama-tiny-Q8_0.gguf", "tokenizer/qwen2.vocab.gguf"};
    for (int i = 0; i < 3; i++) {
        char *p = agx_test_ref_path(names[i]);
        agx_gguf *g;
        agx_error err;
        if (agx_gguf_open(p, &g, &err) != AGX_OK) print_error("%s\n", err.message);
        assert_non_null(g);
        assert_int_equal(agx_gguf_version(g), 3);
        const agx_gguf_kv *kv = agx_gguf_find(g, "tokenizer.ggml.tokens");
        assert_non_null(kv);
        agx_gguf_str s;
        assert_true(agx_gguf_arr_str(g, kv, kv->arr_len - 1, &s));
        assert_true(s.len > 0);
        agx_gguf_close(g);
        free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_copy_kvs),
        cmocka_unit_test(test_streaming_writer),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_absurd_counts),
        cmocka_unit_test(test_lengths_beyond_file),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_reference_models_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
