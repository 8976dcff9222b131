/* test_context_device.c — the device wiring of agx_context (issue 9): AGX_DEVICE
 * and agx_context_params.device through agx_context_create in this build on
 * this machine (CPU-only, CUDA without a GPU, or with one), the accessors, the
 * delegation to a device hook table (a fake "GPU" whose state is a CPU context,
 * so every build checks that eval, n_past bookkeeping, truncate, KV export/
 * import, errors and free reach the hook exactly as model_device.h promises),
 * the sharing of the model's device weights between contexts (threads too),
 * the native backend's device check and report, and the CLI's device lines
 * (health, model info, bench). Needs the reference models (AGX_REF_DIR). */
#include "agx_test.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agx/device.h"
#include "agx/model.h"
#include "agx/native.h"
#include "agx/planner.h"
#include "agx/util.h"
#include "engine/model_device.h"

#define MODEL_NAME "models/qwen2-tiny-Q4_K_M.gguf"

static char *model_path;
static agx_model *model;

static int group_setup(void **state) {
    (void)state;
    model_path = agx_test_ref_path(MODEL_NAME);
    if (model_path) {
        agx_error err;
        if (agx_model_load(model_path, &model, &err) != AGX_OK) {
            fprintf(stderr, "%s\n", err.message);
            model = NULL;
        }
    }
    unsetenv("AGX_DEVICE");
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    agx_model_free(model);
    free(model_path);
    return 0;
}

#define NEED_MODEL()                                                              \
    do {                                                                          \
        if (!model) AGX_TEST_SKIP("reference model %s (set AGX_REF_DIR)", MODEL_NAME); \
    } while (0)

/* What this build on this machine does with a usable GPU. */
typedef enum { BUILD_CPU_ONLY, BUILD_CUDA_NO_GPU, BUILD_CUDA_GPU } build_kind;
static build_kind this_build(void) {
    if (!agx_device_compiled(AGX_DEVICE_CUDA)) return BUILD_CPU_ONLY;
    agx_device_info info;
    agx_error err;
    return agx_device_probe(AGX_DEVICE_CUDA, &info, &err) == AGX_OK ? BUILD_CUDA_GPU : BUILD_CUDA_NO_GPU;
}

static agx_context_params small_params(const char *device) {
    agx_context_params cp = agx_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    cp.n_ubatch = 16;
    cp.device = device;
    return cp;
}

static size_t kv_formula(int n_ctx, agx_kv_type kv) {
    const agx_model_config *c = agx_model_get_config(model);
    return 2 * (size_t)c->n_layer * (size_t)n_ctx * (size_t)c->n_head_kv * (size_t)c->head_dim *
           (kv == AGX_KV_F32 ? 4 : 2);
}

static void check_cpu_context(const agx_context *c) {
    const agx_device_info *d = agx_context_device(c);
    assert_non_null(d);
    assert_int_equal(d->kind, AGX_DEVICE_CPU);
    assert_true(strncmp(d->name, "cpu (", 5) == 0);
    assert_int_equal(agx_context_device_bytes(c), 0);
    assert_int_equal(agx_context_kv_bytes(c), kv_formula(agx_context_n_ctx(c), AGX_KV_F16));
    char line[256];
    assert_string_equal(agx_device_describe(d, line, sizeof line), d->name);
}

/* ---- AGX_DEVICE / params.device through agx_context_create ---- */

static void test_create_cpu(void **state) {
    (void)state;
    NEED_MODEL();
    agx_error err = {0};
    agx_context *c = NULL;
    setenv("AGX_DEVICE", "cpu", 1);
    agx_context_params cp = small_params(NULL);
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
    check_cpu_context(c);
    assert_string_equal(agx_context_device(c)->note, "");   /* asked for, nothing to explain */
    assert_int_equal(agx_context_n_threads(c), 1);
    agx_context_free(c);
    /* params.device wins over the environment, both ways */
    setenv("AGX_DEVICE", "bogus", 1);
    cp.device = "CPU";
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
    check_cpu_context(c);
    agx_context_free(c);
    setenv("AGX_DEVICE", "cpu", 1);
    cp.device = "gpu";
    c = (agx_context *)&err;   /* must be reset to NULL on failure */
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(err.message, "gpu"));
    assert_non_null(strstr(err.message, "auto, cpu, cuda, metal"));
    unsetenv("AGX_DEVICE");
}

static void test_create_bogus(void **state) {
    (void)state;
    NEED_MODEL();
    agx_error err = {0};
    agx_context *c = NULL;
    setenv("AGX_DEVICE", "tpu", 1);
    agx_context_params cp = small_params(NULL);
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(err.message, "AGX_DEVICE=tpu"));
    assert_non_null(strstr(err.message, "auto, cpu, cuda, metal"));
    unsetenv("AGX_DEVICE");
}

static void test_create_auto(void **state) {
    (void)state;
    NEED_MODEL();
    const build_kind bk = this_build();
    for (int k = 0; k < 2; k++) {
        if (k) setenv("AGX_DEVICE", "AUTO", 1);
        else unsetenv("AGX_DEVICE");
        agx_error err = {0};
        agx_context *c = NULL;
        agx_context_params cp = small_params(NULL);
        assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
        const agx_device_info *d = agx_context_device(c);
        if (bk == BUILD_CPU_ONLY) {
            check_cpu_context(c);
            assert_string_equal(d->note, "");   /* silently the CPU */
        } else if (bk == BUILD_CUDA_NO_GPU) {
            check_cpu_context(c);
            assert_non_null(strstr(d->note, "CUDA not usable ("));
            assert_non_null(strstr(d->note, "running on the CPU"));
        } else if (d->kind == AGX_DEVICE_CUDA) {
            printf("  auto -> %s, %zu device bytes\n", d->name, agx_context_device_bytes(c));
            assert_true(agx_context_device_bytes(c) >= agx_context_kv_bytes(c));
        } else {   /* a GPU the CUDA path cannot run this model on */
            assert_non_null(strstr(d->note, "cuda not used ("));
        }
        agx_context_free(c);
    }
    unsetenv("AGX_DEVICE");
}

static void test_create_cuda(void **state) {
    (void)state;
    NEED_MODEL();
    const build_kind bk = this_build();
    setenv("AGX_DEVICE", "cuda", 1);
    agx_error err = {0};
    agx_context *c = NULL;
    agx_context_params cp = small_params(NULL);
    const agx_status st = agx_context_create(model, &cp, &c, &err);
    printf("  AGX_DEVICE=cuda -> %s\n", st == AGX_OK ? agx_context_device(c)->name : err.message);
    if (bk == BUILD_CPU_ONLY) {
        assert_int_equal(st, AGX_ERR_CONFIG);
        assert_non_null(strstr(err.message, "built without CUDA"));
        assert_non_null(strstr(err.message, "set AGX_DEVICE=cpu"));
    } else if (bk == BUILD_CUDA_NO_GPU) {
        assert_int_equal(st, AGX_ERR_UNAVAILABLE);
        assert_true(strncmp(err.message, "Failed to initialize CUDA: ", 27) == 0);
        assert_non_null(strstr(err.message, "; set AGX_DEVICE=cpu"));
    } else if (st == AGX_OK) {
        assert_int_equal(agx_context_device(c)->kind, AGX_DEVICE_CUDA);
        assert_true(agx_context_device_bytes(c) > 0);
    } else {   /* explicit cuda never falls back */
        assert_non_null(strstr(err.message, "AGX_DEVICE=cpu"));
    }
    if (st != AGX_OK) assert_null(c);
    agx_context_free(c);
    /* metal is never built */
    setenv("AGX_DEVICE", "metal", 1);
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "built without Metal"));
    unsetenv("AGX_DEVICE");
}

/* A CPU context's KV export/import is unchanged by the wiring: the bytes
 * round-trip into a fresh context and the logits continue identically. */
static void test_cpu_kv_roundtrip(void **state) {
    (void)state;
    NEED_MODEL();
    const int nv = agx_model_get_config(model)->n_vocab;
    agx_error err = {0};
    agx_context *a = NULL, *b = NULL;
    agx_context_params cp = small_params("cpu");
    assert_int_equal(agx_context_create(model, &cp, &a, &err), AGX_OK);
    assert_int_equal(agx_context_create(model, &cp, &b, &err), AGX_OK);
    int32_t tok[10];
    for (int i = 0; i < 10; i++) tok[i] = (i * 37 + 5) % nv;
    float *la = malloc(sizeof(float) * (size_t)nv), *lb = malloc(sizeof(float) * (size_t)nv);
    assert_int_equal(agx_context_eval(a, tok, 8, false, la, &err), AGX_OK);
    const size_t n = agx_context_kv_state_bytes(a, 8);
    assert_int_equal(n, kv_formula(8, AGX_KV_F16));
    void *buf = malloc(n);
    assert_int_equal(agx_context_kv_export(a, 8, buf, n, &err), AGX_OK);
    assert_int_equal(agx_context_kv_export(a, 9, buf, n, &err), AGX_ERR_INFERENCE);   /* only 8 cached */
    assert_int_equal(agx_context_kv_import(b, 8, buf, n - 1, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_n_past(b), 0);
    assert_int_equal(agx_context_kv_import(b, 8, buf, n, &err), AGX_OK);
    assert_int_equal(agx_context_n_past(b), 8);
    assert_int_equal(agx_context_eval(a, tok + 8, 2, false, la, &err), AGX_OK);
    assert_int_equal(agx_context_eval(b, tok + 8, 2, false, lb, &err), AGX_OK);
    assert_memory_equal(la, lb, sizeof(float) * (size_t)nv);
    free(buf), free(la), free(lb);
    agx_context_free(a);
    agx_context_free(b);
}

/* ---- a real (or emulated: -DAGX_CUDA_EMU=ON) GPU behind the context API ---- */

static double min_row_cos(const float *a, const float *b, int rows, int n) {
    double worst = 1.0;
    for (int r = 0; r < rows; r++) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < n; i++) {
            const double x = a[(size_t)r * n + i], y = b[(size_t)r * n + i];
            ab += x * y, aa += x * x, bb += y * y;
        }
        const double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
        if (c < worst) worst = c;
    }
    return worst;
}

/* GPU context vs CPU context on the same tokens: logits in the band of the GPU
 * conformance test, and the KV state interchangeable both ways (the export
 * layout is the CPU's). Skips loudly without a usable GPU. */
static void test_gpu_context(void **state) {
    (void)state;
    NEED_MODEL();
    if (this_build() != BUILD_CUDA_GPU) AGX_TEST_SKIP("no usable CUDA device (real or emulated) in this build");
    const int nv = agx_model_get_config(model)->n_vocab;
    agx_error err = {0};
    agx_context *g = NULL, *c = NULL, *g2 = NULL, *c2 = NULL;
    agx_context_params cp = small_params("cuda");
    cp.n_ctx = 32;
    cp.kv_type = AGX_KV_F32;   /* the exported bytes are floats: compared directly below */
    if (agx_context_create(model, &cp, &g, &err) != AGX_OK) fail_msg("GPU context: %s", err.message);
    assert_int_equal(agx_context_device(g)->kind, AGX_DEVICE_CUDA);
    printf("  GPU context on %s: %zu device bytes, KV %zu\n", agx_context_device(g)->name, agx_context_device_bytes(g),
           agx_context_kv_bytes(g));
    assert_true(agx_context_device_bytes(g) > agx_context_kv_bytes(g));
    assert_int_equal(agx_context_kv_bytes(g), kv_formula(32, AGX_KV_F32));
    cp.device = "cpu";
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
    enum { T = 14 };
    int32_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (i * 41 + 7) % nv;
    float *lg = malloc(sizeof(float) * T * (size_t)nv), *lc = malloc(sizeof(float) * T * (size_t)nv);
    assert_int_equal(agx_context_eval(g, tok, 10, true, lg, &err), AGX_OK);
    assert_int_equal(agx_context_eval(c, tok, 10, true, lc, &err), AGX_OK);
    double cos = min_row_cos(lg, lc, 10, nv);
    printf("  prompt of 10: min row cosine GPU vs CPU %.6f\n", cos);
    assert_true(cos >= 0.998);
    assert_int_equal(agx_context_n_past(g), 10);
    /* KV: the same layout (floats close), and each side continues from the other's state */
    const size_t n = agx_context_kv_state_bytes(g, 10);
    float *kg = malloc(n), *kc = malloc(n);
    assert_int_equal(agx_context_kv_export(g, 10, kg, n, &err), AGX_OK);
    assert_int_equal(agx_context_kv_export(c, 10, kc, n, &err), AGX_OK);
    cos = min_row_cos(kg, kc, 1, (int)(n / sizeof(float)));
    printf("  exported KV (%zu bytes): cosine GPU vs CPU %.6f\n", n, cos);
    assert_true(cos >= 0.999);
    /* a second GPU context of the model shares the first one's weights: the
     * device's free memory drops by its own KV cache and scratch only */
    cp.device = "cuda";
    agx_device_info before, after;
    assert_int_equal(agx_device_probe(AGX_DEVICE_CUDA, &before, &err), AGX_OK);
    assert_int_equal(agx_context_create(model, &cp, &g2, &err), AGX_OK);
    assert_int_equal(agx_device_probe(AGX_DEVICE_CUDA, &after, &err), AGX_OK);
    const size_t wbytes = agx_context_device_weight_bytes(g2);
    assert_true(wbytes > 0);
    assert_int_equal(wbytes, agx_context_device_weight_bytes(g));
    assert_int_equal(agx_context_device_bytes(g2), agx_context_device_bytes(g));
    printf("  second GPU context: %zu bytes more on the device, %zu of weights shared\n",
           (size_t)(before.mem_free - after.mem_free), wbytes);
    /* exact on the emulator; a GPU rounds allocations up (and others may share it) */
    if (strstr(after.name, "emulator"))
        assert_int_equal(before.mem_free - after.mem_free, agx_context_device_bytes(g2) - wbytes);
    cp.device = "cpu";
    assert_int_equal(agx_context_create(model, &cp, &c2, &err), AGX_OK);
    assert_int_equal(agx_context_kv_import(g2, 10, kc, n, &err), AGX_OK);   /* CPU state -> GPU */
    assert_int_equal(agx_context_kv_import(c2, 10, kg, n, &err), AGX_OK);   /* GPU state -> CPU */
    float *a = malloc(sizeof(float) * (size_t)nv), *b = malloc(sizeof(float) * (size_t)nv);
    for (int t = 10; t < T; t++) {
        assert_int_equal(agx_context_eval(g, &tok[t], 1, false, lg, &err), AGX_OK);
        assert_int_equal(agx_context_eval(c, &tok[t], 1, false, lc, &err), AGX_OK);
        assert_int_equal(agx_context_eval(g2, &tok[t], 1, false, a, &err), AGX_OK);
        assert_int_equal(agx_context_eval(c2, &tok[t], 1, false, b, &err), AGX_OK);
        assert_true(min_row_cos(lg, lc, 1, nv) >= 0.998);
        assert_true(min_row_cos(a, lg, 1, nv) >= 0.998);   /* GPU from the CPU's cache */
        assert_true(min_row_cos(b, lc, 1, nv) >= 0.998);   /* CPU from the GPU's cache */
    }
    /* truncate + re-eval on the GPU: the same logits as the first time */
    agx_context_truncate(g, 10);
    assert_int_equal(agx_context_eval(g, &tok[10], 1, false, a, &err), AGX_OK);
    agx_context_truncate(c, 10);
    assert_int_equal(agx_context_eval(c, &tok[10], 1, false, b, &err), AGX_OK);
    assert_true(min_row_cos(a, b, 1, nv) >= 0.998);
    assert_int_equal(agx_context_n_past(g), 11);
    /* range errors never reach the device */
    assert_int_equal(agx_context_eval(g, tok, T + 10, false, a, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_n_past(g), 11);
    free(a), free(b), free(kg), free(kc), free(lg), free(lc);
    agx_context_free(g);
    agx_context_free(g2);
    agx_context_free(c);
    agx_context_free(c2);
}

/* ---- delegation to a device hook table (a fake GPU backed by a CPU context) ---- */

typedef struct fake_state {
    agx_context *inner;
    int n_ctx, n_ubatch;
    agx_kv_type kv;
} fake_state;

/* what the hooks saw (test bookkeeping, not product state) */
static struct {
    int weights_creates, weights_destroys, creates, destroys, evals, exports, imports;
    int last_n_past, last_n_tokens;
    bool last_all_logits;
    bool fail_eval, fail_create, fail_weights;
    int view_n_layer, view_n_vocab;
    const void *last_weights;   /* what the last create was given */
    bool bad_weights;           /* a create was given weights of another model */
} seen;

enum { FAKE_WEIGHT_BYTES = 5000000 };

typedef struct fake_weights {
    int n_layer;
} fake_weights;

static agx_status fake_weights_create(const agx_dev_model *dm, const agx_device_info *dev, void **weights,
                                      agx_error *err) {
    (void)dev;
    seen.weights_creates++;
    seen.view_n_layer = dm->n_layer;
    seen.view_n_vocab = dm->n_vocab;
    if (seen.fail_weights) return agx_error_set(err, AGX_ERR_NOMEM, "fake: no room for the weights");
    nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);   /* an upload takes time: others arrive meanwhile */
    fake_weights *w = calloc(1, sizeof *w);
    if (!w) return agx_error_set(err, AGX_ERR_NOMEM, "fake: out of memory");
    w->n_layer = dm->n_layer;
    *weights = w;
    return AGX_OK;
}

static size_t fake_weights_bytes(const void *weights) {
    assert_non_null(weights);
    return FAKE_WEIGHT_BYTES;
}

static void fake_weights_destroy(void *weights) {
    seen.weights_destroys++;
    free(weights);
}

static agx_status fake_create(const void *weights, int n_ctx, int n_ubatch, agx_kv_type kv_type, void **state,
                              agx_error *err) {
    __atomic_fetch_add(&seen.creates, 1, __ATOMIC_SEQ_CST);   /* also called from several threads */
    __atomic_store_n(&seen.last_weights, weights, __ATOMIC_SEQ_CST);
    /* checked by the tests on their own thread (a cmocka assert must not fire on another one) */
    if (((const fake_weights *)weights)->n_layer != agx_model_get_config(model)->n_layer)
        __atomic_store_n(&seen.bad_weights, true, __ATOMIC_SEQ_CST);
    if (seen.fail_create) return agx_error_set(err, AGX_ERR_UNAVAILABLE, "fake: out of device memory");
    fake_state *f = calloc(1, sizeof *f);
    if (!f) return agx_error_set(err, AGX_ERR_NOMEM, "fake: out of memory");
    agx_context_params cp = agx_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_ubatch = n_ubatch;
    cp.kv_type = kv_type;
    cp.n_threads = 1;
    cp.device = "cpu";
    agx_status st = agx_context_create(model, &cp, &f->inner, err);
    if (st != AGX_OK) {
        free(f);
        return st;
    }
    f->n_ctx = n_ctx, f->n_ubatch = n_ubatch, f->kv = kv_type;
    *state = f;
    return AGX_OK;
}

static agx_status fake_eval(void *state, const int32_t *tokens, int n_tokens, int n_past, bool all_logits,
                            float *out, agx_error *err) {
    fake_state *f = state;
    seen.evals++;
    seen.last_n_past = n_past;
    seen.last_n_tokens = n_tokens;
    seen.last_all_logits = all_logits;
    if (seen.fail_eval) return agx_error_set(err, AGX_ERR_ENGINE, "fake: kernel failed");
    /* the caller range-checked: positions fit, and n_past is never ahead of the cache */
    assert_true(n_past >= 0 && n_past + n_tokens <= f->n_ctx);
    assert_true(n_past <= agx_context_n_past(f->inner));
    agx_context_truncate(f->inner, n_past);
    return agx_context_eval(f->inner, tokens, n_tokens, all_logits, out, err);
}

static size_t fake_mem_used(const void *state) {
    const fake_state *f = state;
    return 1000000 + agx_context_kv_bytes(f->inner);
}

static agx_status fake_export(const void *state, int n, void *buf, size_t len, agx_error *err) {
    const fake_state *f = state;
    seen.exports++;
    return agx_context_kv_export(f->inner, n, buf, len, err);
}

static agx_status fake_import(void *state, int n, const void *buf, size_t len, agx_error *err) {
    fake_state *f = state;
    seen.imports++;
    return agx_context_kv_import(f->inner, n, buf, len, err);
}

static void fake_destroy(void *state) {
    fake_state *f = state;
    __atomic_fetch_add(&seen.destroys, 1, __ATOMIC_SEQ_CST);
    agx_context_free(f->inner);
    free(f);
}

static const agx_device_forward fake_forward = {
    "fake",    fake_weights_create, fake_weights_bytes, fake_weights_destroy, fake_create,
    fake_eval, fake_mem_used,       fake_export,        fake_import,          fake_destroy};

static agx_device_info fake_gpu(void) {
    agx_device_info d;
    memset(&d, 0, sizeof d);
    d.kind = AGX_DEVICE_CUDA;
    snprintf(d.name, sizeof d.name, "Fake GPU");
    d.mem_total = 16ull << 30;
    d.mem_free = 15ull << 30;
    d.cc_major = 9;
    return d;
}

static void test_delegation(void **state) {
    (void)state;
    NEED_MODEL();
    const agx_model_config *cfg = agx_model_get_config(model);
    const int nv = cfg->n_vocab;
    memset(&seen, 0, sizeof seen);
    agx_error err = {0};
    const agx_device_info gpu = fake_gpu();
    agx_context *dev = NULL, *cpu = NULL;
    agx_context_params cp = small_params("bogus");   /* ignored by _create_on */
    cp.n_ctx = 24;
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, &gpu, &dev, &err), AGX_OK);
    cp.device = "cpu";
    assert_int_equal(agx_context_create(model, &cp, &cpu, &err), AGX_OK);
    /* weights from the model view, then the context on them */
    assert_int_equal(seen.weights_creates, 1);
    assert_int_equal(seen.creates, 1);
    assert_int_equal(seen.view_n_layer, cfg->n_layer);
    assert_int_equal(seen.view_n_vocab, nv);
    const void *weights = seen.last_weights;
    assert_false(seen.bad_weights);
    /* accessors */
    const agx_device_info *d = agx_context_device(dev);
    assert_int_equal(d->kind, AGX_DEVICE_CUDA);
    assert_string_equal(d->name, "Fake GPU");
    char line[256];
    assert_string_equal(agx_device_describe(d, line, sizeof line), "cuda:0 Fake GPU, cc 9.0, 16.0 GiB (15.0 free)");
    assert_int_equal(agx_context_device_bytes(dev), FAKE_WEIGHT_BYTES + 1000000 + kv_formula(24, AGX_KV_F16));
    assert_int_equal(agx_context_device_weight_bytes(dev), FAKE_WEIGHT_BYTES);
    assert_int_equal(agx_context_device_weight_bytes(cpu), 0);
    assert_int_equal(agx_context_kv_bytes(dev), agx_context_kv_bytes(cpu));   /* the same cache, on the device */
    assert_int_equal(agx_context_n_ctx(dev), 24);
    assert_int_equal(agx_context_n_threads(dev), 1);
    assert_int_equal(agx_context_kv_state_bytes(dev, 5), agx_context_kv_state_bytes(cpu, 5));

    enum { T = 20 };
    int32_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (i * 53 + 11) % nv;
    float *ld = malloc(sizeof(float) * T * (size_t)nv), *lc = malloc(sizeof(float) * T * (size_t)nv);
    /* prompt with all logits, then steps: the hook gets the positions, the context counts */
    assert_int_equal(agx_context_eval(dev, tok, 12, true, ld, &err), AGX_OK);
    assert_int_equal(agx_context_eval(cpu, tok, 12, true, lc, &err), AGX_OK);
    assert_int_equal(seen.last_n_past, 0);
    assert_int_equal(seen.last_n_tokens, 12);   /* one call: the device chunks itself */
    assert_true(seen.last_all_logits);
    assert_memory_equal(ld, lc, sizeof(float) * 12 * (size_t)nv);
    assert_int_equal(agx_context_n_past(dev), 12);
    for (int t = 12; t < 15; t++) {
        assert_int_equal(agx_context_eval(dev, &tok[t], 1, false, ld, &err), AGX_OK);
        assert_int_equal(agx_context_eval(cpu, &tok[t], 1, false, lc, &err), AGX_OK);
        assert_int_equal(seen.last_n_past, t);
        assert_false(seen.last_all_logits);
        assert_memory_equal(ld, lc, sizeof(float) * (size_t)nv);
    }
    assert_int_equal(agx_context_n_past(dev), 15);
    const int evals = seen.evals;
    /* range errors stay in the context: the hook is not called, n_past unchanged */
    assert_int_equal(agx_context_eval(dev, tok, 10, false, ld, &err), AGX_ERR_INFERENCE);
    assert_non_null(strstr(err.message, "context full"));
    int32_t bad = nv;
    assert_int_equal(agx_context_eval(dev, &bad, 1, false, ld, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_eval(dev, tok, 0, false, ld, &err), AGX_ERR_INFERENCE);
    assert_int_equal(seen.evals, evals);
    assert_int_equal(agx_context_n_past(dev), 15);
    /* a failing device eval: its error, n_past unchanged */
    seen.fail_eval = true;
    assert_int_equal(agx_context_eval(dev, tok, 2, false, ld, &err), AGX_ERR_ENGINE);
    assert_string_equal(err.message, "fake: kernel failed");
    assert_int_equal(agx_context_n_past(dev), 15);
    seen.fail_eval = false;
    /* truncate: the next eval starts at the lowered position */
    agx_context_truncate(dev, 6);
    agx_context_truncate(cpu, 6);
    assert_int_equal(agx_context_eval(dev, tok + 6, 4, true, ld, &err), AGX_OK);
    assert_int_equal(agx_context_eval(cpu, tok + 6, 4, true, lc, &err), AGX_OK);
    assert_int_equal(seen.last_n_past, 6);
    assert_memory_equal(ld, lc, sizeof(float) * 4 * (size_t)nv);
    assert_int_equal(agx_context_n_past(dev), 10);

    /* KV export: range-checked here, bytes from the hook, equal to the CPU's */
    const size_t n = agx_context_kv_state_bytes(dev, 10);
    char *bd = malloc(n), *bc = malloc(n);
    const int exports = seen.exports;
    assert_int_equal(agx_context_kv_export(dev, 11, bd, n, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_kv_export(dev, 10, bd, n - 1, &err), AGX_ERR_INFERENCE);
    assert_int_equal(seen.exports, exports);
    assert_int_equal(agx_context_kv_export(dev, 10, bd, n, &err), AGX_OK);
    assert_int_equal(seen.exports, exports + 1);
    assert_int_equal(agx_context_kv_export(cpu, 10, bc, n, &err), AGX_OK);
    assert_memory_equal(bd, bc, n);
    /* import into a fresh device context: n_past set, generation continues identically */
    agx_context *dev2 = NULL;
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, &gpu, &dev2, &err), AGX_OK);
    /* a second context of the model shares its weights: no second upload */
    assert_int_equal(seen.weights_creates, 1);
    assert_int_equal(seen.creates, 2);
    assert_ptr_equal(seen.last_weights, weights);
    assert_int_equal(agx_context_device_weight_bytes(dev2), FAKE_WEIGHT_BYTES);
    assert_int_equal(agx_context_kv_import(dev2, 10, bc, n + 1, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_kv_import(dev2, 25, bc, n, &err), AGX_ERR_INFERENCE);
    assert_int_equal(seen.imports, 0);
    assert_int_equal(agx_context_n_past(dev2), 0);
    assert_int_equal(agx_context_kv_import(dev2, 10, bc, n, &err), AGX_OK);
    assert_int_equal(seen.imports, 1);
    assert_int_equal(agx_context_n_past(dev2), 10);
    assert_int_equal(agx_context_eval(dev2, tok + 10, 3, false, ld, &err), AGX_OK);
    assert_int_equal(seen.last_n_past, 10);
    assert_int_equal(agx_context_eval(cpu, tok + 10, 3, false, lc, &err), AGX_OK);
    assert_memory_equal(ld, lc, sizeof(float) * (size_t)nv);

    /* free: destroy once per device context; the weights go with the last one */
    assert_int_equal(seen.destroys, 0);
    agx_context_free(dev);
    assert_int_equal(seen.weights_destroys, 0);
    agx_context_free(dev2);
    assert_int_equal(seen.destroys, 2);
    assert_int_equal(seen.weights_destroys, 1);
    agx_context_free(cpu);
    /* a failing create: its error, no context, nothing to destroy, and the
     * weights uploaded for it are freed again (nothing stays on the device) */
    seen.fail_create = true;
    dev = NULL;
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, &gpu, &dev, &err), AGX_ERR_UNAVAILABLE);
    assert_null(dev);
    assert_string_equal(err.message, "fake: out of device memory");
    assert_int_equal(seen.destroys, 2);
    assert_int_equal(seen.weights_creates, 2);
    assert_int_equal(seen.weights_destroys, 2);
    seen.fail_create = false;
    /* failing weights: their error, no context created */
    seen.fail_weights = true;
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, &gpu, &dev, &err), AGX_ERR_NOMEM);
    assert_null(dev);
    assert_string_equal(err.message, "fake: no room for the weights");
    assert_int_equal(seen.creates, 3);   /* the failing create above was the third */
    assert_int_equal(seen.weights_destroys, 2);
    seen.fail_weights = false;
    /* after all that, a new context uploads afresh */
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, &gpu, &dev, &err), AGX_OK);
    assert_int_equal(seen.weights_creates, 4);
    agx_context_free(dev);
    assert_int_equal(seen.weights_destroys, 3);
    /* NULL forward: a CPU context */
    assert_int_equal(agx_context_create_on(model, &cp, NULL, NULL, &dev, &err), AGX_OK);
    check_cpu_context(dev);
    agx_context_free(dev);
    assert_int_equal(agx_context_create_on(model, &cp, &fake_forward, NULL, &dev, &err), AGX_ERR_CONFIG);
    free(bd), free(bc), free(ld), free(lc);
}

/* Contexts of one model created from several threads at once: one upload,
 * shared by all of them, freed with the last. */
enum { N_THREADS = 4 };
typedef struct ctx_thread_arg {
    const agx_device_info *gpu;
    agx_context *ctx;
    agx_status st;
} ctx_thread_arg;

static void *create_ctx_thread(void *p) {
    ctx_thread_arg *a = p;
    agx_context_params cp = small_params("cpu");
    cp.n_ctx = 16;
    agx_error err = {0};
    a->st = agx_context_create_on(model, &cp, &fake_forward, a->gpu, &a->ctx, &err);
    return NULL;
}

static void test_shared_weights_threads(void **state) {
    (void)state;
    NEED_MODEL();
    memset(&seen, 0, sizeof seen);
    const agx_device_info gpu = fake_gpu();
    pthread_t th[N_THREADS];
    ctx_thread_arg args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = (ctx_thread_arg){.gpu = &gpu};
        assert_int_equal(pthread_create(&th[i], NULL, create_ctx_thread, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(args[i].st, AGX_OK);
        assert_int_equal(agx_context_device_weight_bytes(args[i].ctx), FAKE_WEIGHT_BYTES);
    }
    assert_int_equal(seen.weights_creates, 1);
    assert_int_equal(seen.creates, N_THREADS);
    assert_false(seen.bad_weights);
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(seen.weights_destroys, 0);
        agx_context_free(args[i].ctx);
    }
    assert_int_equal(seen.destroys, N_THREADS);
    assert_int_equal(seen.weights_destroys, 1);
}

/* ---- the native backend ---- */

static void set_backend_env(void) {
    setenv("AGX_BACKEND", "native", 1);
    setenv("AGX_ECHO_MODEL", model_path, 1);
    setenv("AGX_PROMPT_CACHE", "off", 1);
    setenv("AGX_THREADS", "1", 1);
    setenv("AGX_CANDLE_CONTEXT_SIZE", "512", 1);
    unsetenv("AGX_MODEL_PATH");
    unsetenv("AGX_DELTA_MODEL");
}

/* create + health check + describe with cfg.device = device (the config
 * normally comes from AGX_DEVICE; set here directly). */
static agx_status backend_with(const char *device, char **text, agx_device_info *info, agx_error *err) {
    *text = NULL;
    agx_planner_config cfg;
    unsetenv("AGX_DEVICE");
    agx_status st = agx_planner_config_from_env(&cfg, err);
    assert_int_equal(st, AGX_OK);
    free(cfg.device);
    cfg.device = agx_strdup(device);
    agx_backend *b = NULL;
    st = agx_backend_native_create(&cfg, AGX_ROLE_ECHO, &b, err);
    agx_planner_config_free(&cfg);
    if (st != AGX_OK) {
        assert_null(b);
        return st;
    }
    st = agx_backend_health_check(b, err);
    if (st == AGX_OK) st = agx_backend_native_describe(b, text, err);
    if (st == AGX_OK) {
        agx_native_engine *e = agx_backend_native_engine(b, err);
        assert_non_null(e);
        *info = *agx_context_device(agx_native_engine_context(e));
    }
    agx_backend_destroy(b);
    return st;
}

static void test_native_backend(void **state) {
    (void)state;
    NEED_MODEL();
    set_backend_env();
    const build_kind bk = this_build();
    agx_error err = {0};
    char *text = NULL;
    agx_device_info info;
    assert_int_equal(backend_with("cpu", &text, &info, &err), AGX_OK);
    assert_int_equal(info.kind, AGX_DEVICE_CPU);
    char want[300];
    snprintf(want, sizeof want, "device:       %s\n", info.name);
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "device memory:"));
    assert_null(strstr(text, "device note:"));
    free(text);

    const agx_status st = backend_with("auto", &text, &info, &err);
    assert_int_equal(st, AGX_OK);
    if (bk == BUILD_CUDA_NO_GPU) {
        assert_int_equal(info.kind, AGX_DEVICE_CPU);
        assert_non_null(strstr(text, "device note:  CUDA not usable ("));
    } else if (info.kind == AGX_DEVICE_CUDA) {
        assert_non_null(strstr(text, "device:       cuda:0 "));
        assert_non_null(strstr(text, "device memory: "));
    } else if (bk == BUILD_CPU_ONLY) {
        assert_null(strstr(text, "device note:"));
    }
    free(text);

    const agx_status sc = backend_with("cuda", &text, &info, &err);
    if (bk == BUILD_CPU_ONLY) {
        assert_int_equal(sc, AGX_ERR_CONFIG);   /* at once, before any model is loaded */
        assert_non_null(strstr(err.message, "built without CUDA"));
    } else if (bk == BUILD_CUDA_NO_GPU) {
        assert_int_equal(sc, AGX_ERR_UNAVAILABLE);   /* when the engine loads */
        assert_non_null(strstr(err.message, "Failed to initialize CUDA: "));
    }
    if (sc != AGX_OK) assert_non_null(strstr(err.message, "set AGX_DEVICE=cpu"));
    free(text);

    assert_int_equal(backend_with("bogus", &text, &info, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "auto, cpu, cuda, metal"));
    /* and through the environment, as the CLI reads it */
    setenv("AGX_DEVICE", "bogus", 1);
    agx_planner_config cfg;
    assert_int_equal(agx_planner_config_from_env(&cfg, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "auto, cpu, cuda, metal"));
    unsetenv("AGX_DEVICE");
}

/* ---- the CLI ---- */

typedef agx_test_cli_result run_result;

static run_result cli(const char *env, const char *args) { return agx_test_cli(env, args, NULL); }

/* The "device" object of a --json report. */
static void check_device_json(json_t *d, const char *kind) {
    assert_true(json_is_object(d));
    assert_string_equal(json_string_value(json_object_get(d, "kind")), kind);
    assert_non_null(json_string_value(json_object_get(d, "name")));
    assert_non_null(json_string_value(json_object_get(d, "describe")));
    assert_true(json_is_integer(json_object_get(d, "mem_total")));
    assert_true(json_is_integer(json_object_get(d, "mem_free")));
    assert_non_null(json_object_get(d, "cc"));
    assert_non_null(json_object_get(d, "note"));
    if (!strcmp(kind, "cpu")) {
        assert_true(json_is_null(json_object_get(d, "cc")));
        assert_int_equal(json_integer_value(json_object_get(d, "mem_total")), 0);
    }
}

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fail_msg("not JSON (%s): %s", je.text, text);
    return j;
}

static void test_cli_health(void **state) {
    (void)state;
    NEED_MODEL();
    const build_kind bk = this_build();
    char *env = agx_sprintf("AGX_BACKEND=native AGX_ECHO_MODEL='%s' AGX_PROMPT_CACHE=off AGX_THREADS=1 "
                            "AGX_CANDLE_CONTEXT_SIZE=512 AGX_DEVICE=cpu", model_path);
    run_result r = cli(env, "health");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "device:       cpu ("));
    assert_string_equal(r.err, "");
    agx_test_cli_result_free(&r);
    r = cli(env, "health --json");
    assert_int_equal(r.rc, 0);
    json_t *j = parse(r.out);
    /* the existing keys, unchanged */
    assert_string_equal(json_string_value(json_object_get(j, "backend")), "native");
    assert_true(json_is_true(json_object_get(j, "healthy")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "details")), "device:       cpu ("));
    check_device_json(json_object_get(j, "device"), "cpu");
    assert_true(json_is_integer(json_object_get(j, "device_mem_used")));
    assert_int_equal(json_integer_value(json_object_get(j, "device_mem_used")), 0);
    json_decref(j);
    agx_test_cli_result_free(&r);
    free(env);

    /* auto: exactly one warning line (CUDA build without a GPU), none on a CPU-only
     * build (AGX_LOG=warn: ctest runs the tests with AGX_LOG=error) */
    env = agx_sprintf("AGX_BACKEND=native AGX_ECHO_MODEL='%s' AGX_PROMPT_CACHE=off AGX_THREADS=1 "
                      "AGX_CANDLE_CONTEXT_SIZE=512 AGX_DEVICE=auto AGX_LOG=warn", model_path);
    r = cli(env, "health");
    assert_int_equal(r.rc, 0);
    if (bk == BUILD_CUDA_NO_GPU) {
        assert_int_equal(agx_test_count(r.err, "CUDA not usable"), 1);
        assert_non_null(strstr(r.out, "device note:  CUDA not usable"));
    } else if (bk == BUILD_CPU_ONLY) {
        assert_string_equal(r.err, "");
    }
    agx_test_cli_result_free(&r);
    free(env);

    /* an explicit cuda that cannot be honoured: a clear error, the fix named */
    env = agx_sprintf("AGX_BACKEND=native AGX_ECHO_MODEL='%s' AGX_PROMPT_CACHE=off AGX_DEVICE=cuda", model_path);
    r = cli(env, "health");
    if (bk == BUILD_CPU_ONLY) {
        assert_int_equal(r.rc, AGX_EXIT_CONFIG);
        assert_non_null(strstr(r.err, "built without CUDA"));
    } else if (bk == BUILD_CUDA_NO_GPU) {
        assert_int_equal(r.rc, AGX_EXIT_BACKEND);
        assert_non_null(strstr(r.err, "Failed to initialize CUDA: "));
    }
    if (r.rc != 0) assert_non_null(strstr(r.err, "set AGX_DEVICE=cpu"));
    agx_test_cli_result_free(&r);
    free(env);
}

static void test_cli_model_info(void **state) {
    (void)state;
    NEED_MODEL();
    char *args = agx_sprintf("model info '%s'", model_path);
    run_result r = cli("AGX_DEVICE=cpu", args);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "device:          cpu ("));
    assert_non_null(strstr(r.out, "architecture:    qwen2"));   /* the rest is still there */
    agx_test_cli_result_free(&r);
    char *jargs = agx_sprintf("model info '%s' --json", model_path);
    r = cli("AGX_DEVICE=cpu", jargs);
    assert_int_equal(r.rc, 0);
    json_t *j = parse(r.out);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "qwen2");
    assert_true(json_is_integer(json_object_get(j, "n_layer")));
    check_device_json(json_object_get(j, "device"), "cpu");
    assert_null(json_object_get(j, "device_mem_used"));   /* no context here */
    json_decref(j);
    agx_test_cli_result_free(&r);
    /* a device that cannot be selected is reported; the file summary still succeeds */
    r = cli("AGX_DEVICE=bogus", jargs);
    assert_int_equal(r.rc, 0);
    j = parse(r.out);
    json_t *d = json_object_get(j, "device");
    assert_true(json_is_null(json_object_get(d, "kind")));
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "auto, cpu, cuda, metal"));
    json_decref(j);
    agx_test_cli_result_free(&r);
    if (this_build() != BUILD_CUDA_GPU) {
        r = cli("AGX_DEVICE=cuda", args);
        assert_int_equal(r.rc, 0);
        assert_non_null(strstr(r.out, "device:          none: "));
        assert_non_null(strstr(r.out, "set AGX_DEVICE=cpu"));
        agx_test_cli_result_free(&r);
    }
    free(args);
    free(jargs);
}

static void test_cli_bench(void **state) {
    (void)state;
    NEED_MODEL();
    char *args = agx_sprintf("bench -m '%s' -p 8 -n 4 -r 1 -t 1", model_path);
    run_result r = cli("AGX_DEVICE=cpu", args);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\ndevice: cpu ("));
    assert_null(strstr(r.out, "device memory:"));
    agx_test_cli_result_free(&r);
    char *jargs = agx_sprintf("%s --json", args);
    r = cli("AGX_DEVICE=bogus", jargs);   /* the flag wins over the environment... */
    assert_int_equal(r.rc, AGX_EXIT_CONFIG);
    agx_test_cli_result_free(&r);
    char *dargs = agx_sprintf("%s --device cpu", jargs);
    r = cli("AGX_DEVICE=bogus", dargs);   /* ...when given */
    assert_int_equal(r.rc, 0);
    json_t *j = parse(r.out);
    assert_true(json_is_object(json_object_get(j, "pp")));
    assert_true(json_is_integer(json_object_get(j, "kv_cache_bytes")));
    check_device_json(json_object_get(j, "device"), "cpu");
    assert_int_equal(json_integer_value(json_object_get(j, "device_mem_used")), 0);
    json_decref(j);
    agx_test_cli_result_free(&r);
    free(dargs);
    dargs = agx_sprintf("%s --device gpu", args);
    r = cli("", dargs);
    assert_int_equal(r.rc, AGX_EXIT_USAGE);
    assert_non_null(strstr(r.err, "auto, cpu, cuda or metal"));
    agx_test_cli_result_free(&r);
    free(dargs);
    free(args);
    free(jargs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_cpu),       cmocka_unit_test(test_create_bogus),
        cmocka_unit_test(test_create_auto),      cmocka_unit_test(test_create_cuda),
        cmocka_unit_test(test_cpu_kv_roundtrip), cmocka_unit_test(test_gpu_context),
        cmocka_unit_test(test_delegation),       cmocka_unit_test(test_shared_weights_threads),
        cmocka_unit_test(test_native_backend),   cmocka_unit_test(test_cli_health),
        cmocka_unit_test(test_cli_model_info),   cmocka_unit_test(test_cli_bench),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
