/* test_quant_ref.c — our reference quantizers against llama.cpp's bits: the
 * reference models in ../shared/ref/models were made from their F32 file by
 * llama_model_quantize (no imatrix), so quantizing the F32 tensors with our
 * from_float_ref must give the same bytes for every q4_0/q8_0/q4_K/q5_K/q6_K
 * (and f16) tensor — llama.cpp's native build fuses some multiply-adds and
 * src/engine/quant_ref.h calls fmaf() in exactly those places. Also checks our dequantization of those files against
 * the F32 originals. The GGUF walk here is a minimal one for these trusted
 * files only (the product's reader lives in src/engine/gguf.c). */
#include "agx_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/quant.h"

typedef struct tinfo {
    char name[96];
    uint32_t type;
    int64_t ne[4];
    uint64_t offset;
} tinfo;

typedef struct gfile {
    uint8_t *data;
    size_t size;
    size_t data_start;
    int n;
    tinfo t[256];
} gfile;

static int rd(const gfile *g, size_t *pos, void *out, size_t n) {
    if (*pos + n > g->size) return -1;
    memcpy(out, g->data + *pos, n);
    *pos += n;
    return 0;
}

static int skip_value(const gfile *g, size_t *pos, uint32_t vt, uint32_t *align_out, const char *key) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (vt == 8) {
        uint64_t len;
        if (rd(g, pos, &len, 8) || len > g->size) return -1;
        *pos += len;
        return 0;
    }
    if (vt == 9) {
        uint32_t et;
        uint64_t cnt;
        if (rd(g, pos, &et, 4) || rd(g, pos, &cnt, 8) || cnt > g->size) return -1;
        for (uint64_t i = 0; i < cnt; i++)
            if (skip_value(g, pos, et, NULL, "")) return -1;
        return 0;
    }
    if (vt > 12) return -1;
    if (align_out && !strcmp(key, "general.alignment") && vt == 4) {
        uint32_t a;
        if (rd(g, pos, &a, 4)) return -1;
        *align_out = a;
        return 0;
    }
    *pos += sz[vt];
    return 0;
}

static int gload(const char *path, gfile *g) {
    memset(g, 0, sizeof(*g));
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    g->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->data = malloc(g->size);
    if (fread(g->data, 1, g->size, f) != g->size) {
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t pos = 0;
    char magic[4];
    uint32_t ver, align = 32;
    uint64_t nt, nkv;
    if (rd(g, &pos, magic, 4) || memcmp(magic, "GGUF", 4) || rd(g, &pos, &ver, 4) || rd(g, &pos, &nt, 8) ||
        rd(g, &pos, &nkv, 8) || nt > 256)
        return -1;
    for (uint64_t i = 0; i < nkv; i++) {
        uint64_t kl;
        char key[128] = {0};
        uint32_t vt;
        if (rd(g, &pos, &kl, 8) || kl >= sizeof(key) || rd(g, &pos, key, kl) || rd(g, &pos, &vt, 4)) return -1;
        if (skip_value(g, &pos, vt, &align, key)) return -1;
    }
    g->n = (int)nt;
    for (int i = 0; i < g->n; i++) {
        uint64_t nl;
        uint32_t nd;
        tinfo *t = &g->t[i];
        if (rd(g, &pos, &nl, 8) || nl >= sizeof(t->name) || rd(g, &pos, t->name, nl) || rd(g, &pos, &nd, 4) || nd > 4)
            return -1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++)
            if (rd(g, &pos, &t->ne[d], 8)) return -1;
        if (rd(g, &pos, &t->type, 4) || rd(g, &pos, &t->offset, 8)) return -1;
    }
    g->data_start = (pos + align - 1) / align * align;
    return 0;
}

static const tinfo *gfind(const gfile *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->t[i].name, name)) return &g->t[i];
    return NULL;
}

static void check_file(const char *f32_name, const char *q_name, int *n_checked, int64_t *n_bad) {
    char *pf = agx_test_ref_path(f32_name), *pq = agx_test_ref_path(q_name);
    gfile *gf = malloc(sizeof(gfile)), *gq = malloc(sizeof(gfile));
    assert_int_equal(gload(pf, gf), 0);
    assert_int_equal(gload(pq, gq), 0);
    for (int i = 0; i < gq->n; i++) {
        const tinfo *tq = &gq->t[i], *tf = gfind(gf, tq->name);
        assert_non_null(tf);
        assert_int_equal(tf->type, AGX_TYPE_F32);
        if (tq->type == AGX_TYPE_F32) continue;
        const agx_type_traits *tr = agx_type_traits_get(tq->type);
        assert_non_null(tr);
        assert_non_null(tr->from_float_ref);
        const int64_t ne0 = tq->ne[0], rows = tq->ne[1] * tq->ne[2] * tq->ne[3];
        const size_t rs = agx_type_row_size(tq->type, ne0);
        const float *src = (const float *)(gf->data + gf->data_start + tf->offset);
        const uint8_t *want = gq->data + gq->data_start + tq->offset;
        assert_true(gq->data_start + tq->offset + rs * (size_t)rows <= gq->size);
        uint8_t *mine = malloc(rs);
        float *deq = malloc((size_t)ne0 * sizeof(float));
        int64_t bad_rows = 0;
        double se = 0, sx = 0;
        for (int64_t r = 0; r < rows; r++) {
            tr->from_float_ref(src + r * ne0, mine, ne0);
            if (memcmp(mine, want + rs * (size_t)r, rs)) bad_rows++;
            tr->to_float(want + rs * (size_t)r, deq, ne0);
            for (int64_t c = 0; c < ne0; c++) {
                const double d = (double)deq[c] - src[r * ne0 + c];
                se += d * d;
                sx += (double)src[r * ne0 + c] * src[r * ne0 + c];
            }
        }
        if (bad_rows)
            print_error("%s %s (%s, %lld rows): %lld rows differ from llama.cpp\n", q_name, tq->name,
                        agx_type_name(tq->type), (long long)rows, (long long)bad_rows);
        *n_bad += bad_rows;
        /* dequantizing llama.cpp's bytes gives back the F32 weights within the type's error */
        assert_true(sqrt(se / sx) < (tq->type == AGX_TYPE_F16 ? 1e-3 : 0.12));
        (*n_checked)++;
        free(mine);
        free(deq);
    }
    free(gf->data);
    free(gq->data);
    free(gf);
    free(gq);
    free(pf);
    free(pq);
}

static void test_quantizers_match_llama_cpp(void **state) {
    (void)state;
    if (!agx_test_ref_dir()) AGX_TEST_SKIP("reference models (AGX_REF_DIR) not found");
    static const char *const cases[][2] = {
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-Q8_0.gguf"},
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-Q4_0.gguf"},
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-Q4_K_M.gguf"},
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-Q5_K_M.gguf"},
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-Q6_K.gguf"},
        {"models/qwen2-tiny-F32.gguf", "models/qwen2-tiny-F16.gguf"},
        {"models/llama-tiny-F32.gguf", "models/llama-tiny-Q4_K_M.gguf"},
        {"models/llama-tiny-F32.gguf", "models/llama-tiny-Q8_0.gguf"},
    };
    int checked = 0;
    int64_t bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = agx_test_ref_path(cases[i][1]);
        FILE *f = fopen(p, "rb");
        free(p);
        if (!f) {
            print_message("missing %s, skipped\n", cases[i][1]);
            continue;
        }
        fclose(f);
        check_file(cases[i][0], cases[i][1], &checked, &bad);
    }
    print_message("%d quantized tensors checked, %lld rows differ from llama.cpp\n", checked, (long long)bad);
    assert_true(checked > 100);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_quantizers_match_llama_cpp)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
