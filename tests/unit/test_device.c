/* test_device.c — device selection (AGX_DEVICE) in every situation through
 * injected backend tables (CPU-only build, CUDA build without GPU/driver, CUDA
 * build with a GPU), the real selection of this build on this machine, the
 * model view handed to device forward passes, and — in CUDA builds — the GPU
 * block decoders run on the host, bit-exact against quant.c. */
#include "agx_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/device.h"
#include "agx/gguf.h"
#include "agx/quant.h"
#include "engine/model_device.h"
#ifdef AGX_HAVE_CUDA
#include "engine/cuda/agx_cuda.h"
#endif

/* ---- fake backends ---- */
static agx_status fake_cpu(agx_device_info *info, agx_error *err) {
    (void)err;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "cpu (fake)");
    return AGX_OK;
}
static agx_status fake_no_gpu(agx_device_info *info, agx_error *err) {
    (void)info;
    return agx_error_set(err, AGX_ERR_UNAVAILABLE, "no CUDA-capable device is detected");
}
static agx_status fake_gpu(agx_device_info *info, agx_error *err) {
    (void)err;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "Fake H100");
    info->mem_total = 80ull << 30;
    info->mem_free = 79ull << 30;
    info->cc_major = 9;
    return AGX_OK;
}
static agx_status must_not_probe(agx_device_info *info, agx_error *err) {
    (void)info;
    fail_msg("a GPU was probed although AGX_DEVICE=cpu");
    return agx_error_set(err, AGX_ERR_ENGINE, "unreachable");
}

static agx_device_backends table(bool cuda_compiled, agx_device_probe_fn cuda) {
    agx_device_backends b = {.compiled = {true, cuda_compiled, false}, .probe = {fake_cpu, cuda, fake_no_gpu}};
    return b;
}

static void test_parse(void **state) {
    (void)state;
    agx_device_request r;
    agx_error err = {0};
    assert_int_equal(agx_device_parse(NULL, &r, &err), AGX_OK);
    assert_int_equal(r, AGX_DEVICE_REQ_AUTO);
    assert_int_equal(agx_device_parse("", &r, &err), AGX_OK);
    assert_int_equal(r, AGX_DEVICE_REQ_AUTO);
    assert_int_equal(agx_device_parse("CUDA", &r, &err), AGX_OK);
    assert_int_equal(r, AGX_DEVICE_REQ_CUDA);
    assert_int_equal(agx_device_parse("cpu", &r, &err), AGX_OK);
    assert_int_equal(r, AGX_DEVICE_REQ_CPU);
    assert_int_equal(agx_device_parse("metal", &r, &err), AGX_OK);
    assert_int_equal(r, AGX_DEVICE_REQ_METAL);
    assert_int_equal(agx_device_parse("gpu", &r, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_DEVICE=gpu"));
    assert_non_null(strstr(err.message, "auto, cpu, cuda, metal"));
    assert_string_equal(agx_device_kind_name(AGX_DEVICE_CUDA), "cuda");
    assert_string_equal(agx_device_kind_name((agx_device_kind)99), "?");
}

/* A build without CUDA: auto quietly uses the CPU; asking for cuda says it was not compiled in. */
static void test_cpu_only_build(void **state) {
    (void)state;
    const agx_device_backends b = table(false, must_not_probe);
    agx_device_info info;
    agx_error err = {0};
    assert_int_equal(agx_device_select_from(&b, "auto", &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
    assert_string_equal(info.note, "");
    assert_int_equal(agx_device_select_from(&b, "cuda", &info, &err), AGX_ERR_CONFIG);   /* not built: exit 3 */
    assert_non_null(strstr(err.message, "built without CUDA"));
    assert_non_null(strstr(err.message, "-DAGX_CUDA=ON"));
    assert_non_null(strstr(err.message, "set AGX_DEVICE=cpu"));
    assert_int_equal(agx_device_select_from(&b, "metal", &info, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "built without Metal"));
}

/* A CUDA build on a machine without a GPU or driver. */
static void test_cuda_build_without_gpu(void **state) {
    (void)state;
    const agx_device_backends b = table(true, fake_no_gpu);
    agx_device_info info;
    agx_error err = {0};
    assert_int_equal(agx_device_select_from(&b, "auto", &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
    assert_string_equal(info.name, "cpu (fake)");
    assert_non_null(strstr(info.note, "CUDA not usable (no CUDA-capable device is detected)"));
    assert_non_null(strstr(info.note, "running on the CPU"));
    assert_int_equal(agx_device_select_from(&b, "cuda", &info, &err), AGX_ERR_UNAVAILABLE);
    assert_string_equal(err.message,
                        "Failed to initialize CUDA: no CUDA-capable device is detected; set AGX_DEVICE=cpu");
    const agx_device_backends nocheck = table(true, must_not_probe);
    assert_int_equal(agx_device_select_from(&nocheck, "cpu", &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
    assert_int_equal(agx_device_select_from(&b, "bogus", &info, &err), AGX_ERR_CONFIG);
}

static void test_cuda_build_with_gpu(void **state) {
    (void)state;
    const agx_device_backends b = table(true, fake_gpu);
    agx_device_info info;
    agx_error err = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(agx_device_select_from(&b, i ? "cuda" : NULL, &info, &err), AGX_OK);
        assert_int_equal(info.kind, AGX_DEVICE_CUDA);
        assert_string_equal(info.name, "Fake H100");
        assert_string_equal(info.note, "");
    }
    char line[256];
    agx_device_describe(&info, line, sizeof line);
    assert_string_equal(line, "cuda:0 Fake H100, cc 9.0, 80.0 GiB (79.0 free)");
    assert_int_equal(agx_device_select_from(&b, "cpu", &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
}

/* The real table of this build on this machine. */
static void test_this_build(void **state) {
    (void)state;
    agx_device_info info, gpu;
    agx_error err = {0}, perr = {0};
    assert_int_equal(agx_device_select("cpu", &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
    assert_non_null(strstr(info.name, "cpu ("));
    const bool have_cuda = agx_device_probe(AGX_DEVICE_CUDA, &gpu, &perr) == AGX_OK;
    assert_int_equal(agx_device_compiled(AGX_DEVICE_CUDA), agx_device_forward_get(AGX_DEVICE_CUDA) != NULL);
    assert_null(agx_device_forward_get(AGX_DEVICE_CPU));
    const agx_status st = agx_device_select("cuda", &info, &err);
    assert_int_equal(agx_device_select("auto", &gpu, &perr), AGX_OK);
    if (!agx_device_compiled(AGX_DEVICE_CUDA)) {
        printf("  CPU-only build: AGX_DEVICE=cuda -> %s\n", err.message);
        assert_int_equal(st, AGX_ERR_CONFIG);
        assert_non_null(strstr(err.message, "built without CUDA"));
        assert_int_equal(gpu.kind, AGX_DEVICE_CPU);
        assert_string_equal(gpu.note, "");
    } else if (!have_cuda) {
        printf("  CUDA build, no usable GPU: AGX_DEVICE=cuda -> %s\n  auto -> cpu, note: %s\n", err.message,
               gpu.note);
        assert_int_equal(st, AGX_ERR_UNAVAILABLE);
        assert_true(strncmp(err.message, "Failed to initialize CUDA: ", 27) == 0);
        assert_non_null(strstr(err.message, "; set AGX_DEVICE=cpu"));
        assert_int_equal(gpu.kind, AGX_DEVICE_CPU);
        assert_non_null(strstr(gpu.note, "CUDA not usable ("));
    } else {
        char line[256];
        printf("  CUDA build with a GPU: %s\n", agx_device_describe(&info, line, sizeof line));
        assert_int_equal(st, AGX_OK);
        assert_int_equal(info.kind, AGX_DEVICE_CUDA);
        assert_int_equal(gpu.kind, AGX_DEVICE_CUDA);
        assert_true(info.mem_total > 0 && info.cc_major >= 7);
    }
}

/* The model view from a reference GGUF: shapes, tying, biases, rope style. */
static void test_model_view(void **state) {
    (void)state;
    char *path = agx_test_ref_path("models/qwen2-tiny-Q4_K_M.gguf");
    if (!path) AGX_TEST_SKIP("reference model qwen2-tiny-Q4_K_M.gguf (set AGX_REF_DIR)");
    agx_gguf *g = NULL;
    agx_error err = {0};
    assert_int_equal(agx_gguf_open(path, &g, &err), AGX_OK);
    agx_dev_model dm;
    if (agx_dev_model_from_gguf(g, &dm, &err) != AGX_OK) fail_msg("%s", err.message);
    assert_true(dm.n_layer > 0 && dm.n_embd > 0 && dm.n_vocab > 0);
    assert_int_equal(dm.rope.style, AGX_ROPE_NEOX);
    assert_ptr_equal(dm.output.data, dm.tok_embd.data);   /* qwen2 tiny: tied */
    for (int l = 0; l < dm.n_layer; l++) {
        const agx_dev_layer *L = &dm.layers[l];
        assert_non_null(L->bq);
        assert_int_equal(L->wq.n_cols, dm.n_embd);
        assert_int_equal(L->wq.n_rows, dm.n_head * dm.head_dim);
        assert_int_equal(L->wk.n_rows, dm.n_head_kv * dm.head_dim);
        assert_int_equal(L->w_down.n_cols, dm.n_ff);
        assert_int_equal(L->w_down.n_rows, dm.n_embd);
        assert_int_equal(L->wq.row_bytes, agx_type_row_size(L->wq.type, L->wq.n_cols));
        assert_true(fabsf(L->attn_norm[0]) > 0.0f);
    }
    agx_dev_model_free(&dm);
    agx_gguf_close(g);
    free(path);
}

/* GPU decoders (host instantiation) == quant.c dequantizers, bit for bit. */
static void test_cuda_decoders_match_cpu(void **state) {
    (void)state;
#ifndef AGX_HAVE_CUDA
    AGX_TEST_SKIP("GPU block decoders: this is a CPU-only build (-DAGX_CUDA=ON builds check them)");
#else
    static const uint32_t types[] = {AGX_TYPE_F32,  AGX_TYPE_F16,  AGX_TYPE_BF16, AGX_TYPE_Q4_0, AGX_TYPE_Q4_1,
                                     AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0, AGX_TYPE_Q2_K, AGX_TYPE_Q3_K,
                                     AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K};
    enum { N = 1024 };
    float *x = malloc(sizeof(float) * N), *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    uint8_t *q = malloc(N * 4);
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (1.0f + (float)(i % 7));
    }
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const agx_type_traits *tt = agx_type_traits_get(types[k]);
        assert_non_null(tt);
        assert_non_null(tt->from_float_ref);
        tt->from_float_ref(x, q, N);
        /* also random bytes, so that every bit pattern of scales/highs occurs (f32/bf16/f16 excluded: NaNs) */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                if (!tt->is_quantized) break;
                const size_t bytes = agx_type_row_size(types[k], N);
                for (size_t i = 0; i < bytes; i++) {
                    seed = seed * 1664525u + 1013904223u;
                    q[i] = (uint8_t)(seed >> 24);
                }
                /* keep the f16 scales finite: clear the exponent's top bit of every half */
                const size_t bs = tt->type_size;
                for (size_t blk = 0; blk < bytes / bs; blk++) {
                    uint8_t *p = q + blk * bs;
                    switch (types[k]) {
                    case AGX_TYPE_Q6_K: p[209] &= 0x3F; break;
                    case AGX_TYPE_Q3_K: p[109] &= 0x3F; break;
                    case AGX_TYPE_Q2_K: p[81] &= 0x3F, p[83] &= 0x3F; break;
                    case AGX_TYPE_Q4_1: case AGX_TYPE_Q5_1:   /* d, m */
                    case AGX_TYPE_Q4_K: case AGX_TYPE_Q5_K: p[1] &= 0x3F, p[3] &= 0x3F; break;   /* d, dmin */
                    default: p[1] &= 0x3F;
                    }
                }
            }
            tt->to_float(q, a, N);
            assert_true(agx_cuda_dequant_row_host(types[k], q, N, b));
            for (int i = 0; i < N; i++)
                if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
                    fail_msg("%s (%s input): element %d: CPU %.9g, GPU decoder %.9g", tt->name,
                             pass ? "random" : "quantized", i, a[i], b[i]);
        }
        printf("  GPU decoder %-5s == quant.c bit for bit\n", tt->name);
    }
    assert_false(agx_cuda_dequant_row_host(AGX_TYPE_Q8_1, q, N, b));   /* an activation format: no device decoder */
    free(x);
    free(a);
    free(b);
    free(q);
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_cpu_only_build),
        cmocka_unit_test(test_cuda_build_without_gpu),
        cmocka_unit_test(test_cuda_build_with_gpu),
        cmocka_unit_test(test_this_build),
        cmocka_unit_test(test_model_view),
        cmocka_unit_test(test_cuda_decoders_match_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
