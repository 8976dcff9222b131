/* test_kernels.c — dot kernels and agx_matmul: scalar kernels against the
 * dequantized float definition, every SIMD kernel (each ISA level this CPU
 * has) against the scalar one, the matrix-tile kernels against vec_dot, and
 * agx_matmul against a naive dequantize + double reference for n_tok 1..17,
 * odd row counts and 1..3 threads.
 *
 * Bounds: integer parts are exact in every kernel; only the float summation
 * order differs, so results must agree within 2e-5 of sum_i |x_i * y_i|
 * (the dequantized terms) — a few float ULPs of the magnitude summed. */
#include "agx_test.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "agx/quant.h"
#include "agx/threadpool.h"
#include "engine/quant_impl.h"

static const uint32_t k_weight_types[] = {AGX_TYPE_F32,  AGX_TYPE_F16,  AGX_TYPE_BF16, AGX_TYPE_Q4_0, AGX_TYPE_Q4_1,
                                          AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0, AGX_TYPE_Q2_K, AGX_TYPE_Q3_K,
                                          AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K};
#define N_WT (sizeof(k_weight_types) / sizeof(k_weight_types[0]))
#define REL_BOUND 2e-5

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float rnd_f(void) { return ((float)(rnd_u32() >> 8) * 0x1p-24f - 0.5f) * 4.0f; }

/* q2_K / q3_K row of random bits with sane block scales: bit patterns a
 * quantizer never makes (every hmask/scale combination, negative q3_K scales) */
static void random_low_bit_k_row(uint32_t t, uint8_t *w, int64_t n) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    for (size_t i = 0; i < agx_type_row_size(t, n); i++) w[i] = (uint8_t)rnd_u32();
    for (int64_t b = 0; b < n / 256; b++) {
        uint8_t *blk = w + (size_t)b * tr->type_size;
        const uint16_t d = agx_fp32_to_fp16(0.01f + 0.001f * (float)(rnd_u32() % 10));
        if (t == AGX_TYPE_Q2_K) {
            memcpy(blk + offsetof(agx_block_q2_K, d), &d, 2);
            memcpy(blk + offsetof(agx_block_q2_K, dmin), &d, 2);
        } else {
            memcpy(blk + offsetof(agx_block_q3_K, d), &d, 2);
        }
    }
}

/* rows of quantized weights, quantized from random floats; for q2_K and q3_K
 * every odd row is random bits instead (random_low_bit_k_row) */
static void *make_weights(uint32_t t, int64_t rows, int64_t n) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    const size_t rs = agx_type_row_size(t, n);
    uint8_t *w = malloc(rs * (size_t)rows);
    float *f = malloc((size_t)n * sizeof(float));
    assert_non_null(tr->from_float_ref);
    for (int64_t r = 0; r < rows; r++) {
        if ((t == AGX_TYPE_Q2_K || t == AGX_TYPE_Q3_K) && (r & 1)) {
            random_low_bit_k_row(t, w + (size_t)r * rs, n);
            continue;
        }
        for (int64_t i = 0; i < n; i++) f[i] = rnd_f() * (1.0f + (float)(r % 3));
        tr->from_float_ref(f, w + (size_t)r * rs, n);
    }
    free(f);
    return w;
}

static double dot_ref(uint32_t wt, const void *x, uint32_t yt, const void *y, int n, double *mag) {
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    agx_type_traits_get(wt)->to_float(x, a, n);
    agx_type_traits_get(yt)->to_float(y, b, n);
    double s = 0, m = 0;
    for (int i = 0; i < n; i++) {
        s += (double)a[i] * b[i];
        m += fabs((double)a[i] * b[i]);
    }
    free(a);
    free(b);
    *mag = m;
    return s;
}

/* q8_1 carries s = d * sum(q) rounded to fp16, so kernels reading it differ
 * from the dequantized definition by that rounding (as in ggml): 2^-11 of the
 * block sums' magnitude, bounded here by 1e-3 of the summed magnitude. */
static double def_bound(uint32_t t) {
    return agx_type_traits_get(t)->vec_dot_type == AGX_TYPE_Q8_1 ? 1e-3 : REL_BOUND;
}

static void check_close_rel(double got, double want, double mag, double rel, const char *what, uint32_t t, int isa,
                            int n) {
    const double tol = rel * mag + 1e-30;
    if (fabs(got - want) > tol) {
        print_error("%s: type %s isa %d n %d: got %.9g want %.9g (|diff| %.3g > %.3g)\n", what, agx_type_name(t), isa,
                    n, got, want, fabs(got - want), tol);
        fail();
    }
}

static void check_close(double got, double want, double mag, const char *what, uint32_t t, int isa, int n) {
    check_close_rel(got, want, mag, REL_BOUND, what, t, isa, n);
}

/* scalar vec_dot == dequantized definition; SIMD vec_dot == scalar */
static void test_vec_dot_all_isas(void **state) {
    (void)state;
    /* block counts that leave every tail: 1, 2, 3, 7, 13 blocks of 32 (the
     * pair/quad kernels), odd float lengths, and the model sizes */
    const int sizes_k[] = {256, 512, 1536, 256 * 35};
    const int sizes_32[] = {32, 64, 96, 224, 416, 1536, 8960};
    const int sizes_f[] = {1, 17, 31, 33, 100, 1536};
    for (size_t k = 0; k < N_WT; k++) {
        const uint32_t t = k_weight_types[k];
        const agx_type_traits *tr = agx_type_traits_get(t), *vt = agx_type_traits_get(tr->vec_dot_type);
        const int *sizes = tr->block_size == 256 ? sizes_k : tr->block_size == 32 ? sizes_32 : sizes_f;
        const size_t n_sizes = tr->block_size == 256 ? 4 : tr->block_size == 32 ? 7 : 6;
        for (size_t si = 0; si < n_sizes; si++) {
            const int n = sizes[si];
            void *w = make_weights(t, 1, n);
            float *xf = malloc((size_t)n * sizeof(float));
            for (int i = 0; i < n; i++) xf[i] = rnd_f();
            if (n > 7) xf[7] = 0;
            void *y = malloc(agx_type_row_size(tr->vec_dot_type, n));
            vt->from_float(xf, y, n);
            double mag;
            const double want = dot_ref(t, w, tr->vec_dot_type, y, n, &mag);
            float s_scalar = NAN;
            tr->vec_dot_scalar(n, &s_scalar, w, y);
            check_close_rel(s_scalar, want, mag, def_bound(t), "scalar vs dequantized", t, 0, n);
            int tested = 0;
            for (int isa = 1; isa <= 2; isa++) {
                const agx_kernel_set ks = agx_quant_kernels_for_isa(t, isa);
                if (!ks.vec_dot) continue;
                float s = NAN;
                ks.vec_dot(n, &s, w, y);
                check_close(s, s_scalar, mag, "simd vs scalar", t, isa, n);
                tested++;
            }
            float s_best = NAN;
            tr->vec_dot(n, &s_best, w, y);
            check_close(s_best, s_scalar, mag, "selected vs scalar", t, agx_cpu_isa_level(), n);
            if (si == 0)
                print_message("vec_dot %-5s: %d SIMD level(s) checked (cpu level %s)\n", agx_type_name(t), tested,
                              agx_cpu_isa_name());
            free(w);
            free(xf);
            free(y);
        }
    }
}

/* A matrix tile with the activation format it reads */
typedef struct {
    agx_gemm_fn gemm;
    agx_from_float_fn quant; /* NULL: the vec_dot_type's */
    size_t (*act_row_size)(int64_t n);
    const char *what;
} tile_variant;

/* the tiles of type t at ISA level isa: the gemm, its one-token tile, and
 * the AVX-512 one-token tile without VBMI where the installed one uses VBMI */
static int tile_variants(uint32_t t, int isa, tile_variant v[3]) {
    int n = 0;
    if (isa > agx_cpu_hw_level()) return 0;
    const agx_kernel_set ks = agx_quant_kernels_for_isa(t, isa);
    if (ks.gemm) v[n++] = (tile_variant){ks.gemm, ks.gemm_quant, ks.act_row_size, "gemm"};
    if (ks.one_tok_gemm) v[n++] = (tile_variant){ks.one_tok_gemm, ks.one_tok_quant, ks.one_tok_act_row_size, "one-token tile"};
    if (isa == 2 && agx_quant_avx512_gemm_novbmi(t))
        v[n++] = (tile_variant){agx_quant_avx512_gemm_novbmi(t), ks.one_tok_quant, ks.one_tok_act_row_size,
                                "one-token tile without VBMI"};
    return n;
}

/* xf's toks tokens in v's activation format (y itself when it reads the vec_dot_type) */
static uint8_t *tile_activations(const tile_variant *v, const float *xf, int n, int toks, uint8_t *y, size_t ldy,
                                 size_t *lda) {
    *lda = ldy;
    if (!v->quant) return y;
    *lda = v->act_row_size(n);
    assert_true(*lda > 0);
    uint8_t *a = malloc(*lda * toks);
    for (int j = 0; j < toks; j++) v->quant(xf + j * n, a + *lda * j, n);
    return a;
}

/* out (nt tokens x nr rows, ldo apart) == the scalar vec_dot of each (row, token) */
static void check_gemm_out(const tile_variant *v, uint32_t t, int isa, int n, const uint8_t *w, size_t ldw,
                           const uint8_t *y, size_t ldy, const float *out, size_t ldo, int nr, int nt) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    for (int j = 0; j < nt; j++)
        for (int r = 0; r < nr; r++) {
            float s;
            tr->vec_dot_scalar(n, &s, w + ldw * r, y + ldy * j);
            double mag;
            dot_ref(t, w + ldw * r, tr->vec_dot_type, y + ldy * j, n, &mag);
            check_close(out[j * ldo + r], s, mag, v->what, t, isa, n);
        }
}

/* matrix tiles (every ISA that has one) == scalar vec_dot per (row, token);
 * 21 rows: a full 16-row group of the AVX-512 row tiles and a partial one;
 * then one call with more tokens than a tile keeps per pass over its decoded
 * weights (the AVX2 32-element-block tiles: 64) */
static void test_gemm_tiles(void **state) {
    (void)state;
    enum { rows = 21, toks = 11, long_toks = 137 };
    for (size_t kk = 0; kk < 2 * N_WT; kk++) {
        const uint32_t t = k_weight_types[kk % N_WT];
        /* second pass: an odd number of 32-blocks (pair kernels end half-full),
         * more than one chunk of the decode-once tiles (AGX_XPRE_CHUNK) */
        const int n = kk < N_WT ? 512 : agx_type_traits_get(t)->block_size == 256 ? 768 : 1056;
        const agx_type_traits *tr = agx_type_traits_get(t), *vt = agx_type_traits_get(tr->vec_dot_type);
        const size_t ldw = agx_type_row_size(t, n), ldy = agx_type_row_size(tr->vec_dot_type, n);
        uint8_t *w = make_weights(t, rows, n);
        float *xf = malloc((size_t)n * long_toks * sizeof(float));
        for (int i = 0; i < n * long_toks; i++) xf[i] = rnd_f();
        uint8_t *y = malloc(ldy * long_toks);
        for (int j = 0; j < long_toks; j++) vt->from_float(xf + j * n, y + ldy * j, n);
        float *out = malloc(sizeof(float) * rows * long_toks);
        for (int isa = 1; isa <= 2; isa++) {
            tile_variant v[3];
            const int nv = tile_variants(t, isa, v);
            for (int k = 0; k < nv; k++) {
                size_t lda;
                uint8_t *a = tile_activations(&v[k], xf, n, long_toks, y, ldy, &lda);
                for (int i = 0; i < rows * long_toks; i++) out[i] = NAN;
                /* all sub-shapes up to the full tile, output with a row stride */
                for (int nr = 1; nr <= rows; nr += 4)
                    for (int nt = 1; nt <= toks; nt += 3) {
                        v[k].gemm(n, w, ldw, nr, a, lda, nt, out, rows);
                        check_gemm_out(&v[k], t, isa, n, w, ldw, y, ldy, out, rows, nr, nt);
                    }
                v[k].gemm(n, w, ldw, rows, a, lda, long_toks, out, rows);
                check_gemm_out(&v[k], t, isa, n, w, ldw, y, ldy, out, rows, rows, long_toks);
                print_message("%-27s %-5s isa %d n %d checked\n", v[k].what, agx_type_name(t), isa, n);
                if (a != y) free(a);
            }
        }
        free(out);
        free(w);
        free(xf);
        free(y);
    }
}

/* The integer parts of the SIMD kernels keep some sums in int16 lanes
 * (maddubs pairs; the AVX2 K-quant tiles add up to 4 of them, the AVX-512
 * ones pack vpdpbusd 8-sums): rows of the largest quants every type can hold
 * against activations of full magnitude and one sign must still agree with
 * the scalar kernel. Random weights never come near those limits. */
typedef struct {
    uint32_t type;
    uint8_t fill; /* every quant byte */
    int half_at[2]; /* fp16 fields in a block (-1: none) */
} limit_case;

static void test_kernels_int16_limits(void **state) {
    (void)state;
    static const limit_case cases[] = {
        {AGX_TYPE_Q4_0, 0xFF, {0, -1}},   {AGX_TYPE_Q5_0, 0xFF, {0, -1}},   {AGX_TYPE_Q8_0, 0x80, {0, -1}},
        {AGX_TYPE_Q8_0, 0x7F, {0, -1}},   {AGX_TYPE_Q2_K, 0xFF, {80, 82}},  {AGX_TYPE_Q3_K, 0xFF, {108, -1}},
        {AGX_TYPE_Q4_K, 0xFF, {0, 2}},    {AGX_TYPE_Q5_K, 0xFF, {0, 2}},    {AGX_TYPE_Q6_K, 0xFF, {208, -1}},
        {AGX_TYPE_Q6_K, 0x7F, {208, -1}},
    };
    const int n = 1536, rows = 3, toks = 9;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const uint32_t t = cases[c].type;
        const agx_type_traits *tr = agx_type_traits_get(t), *vt = agx_type_traits_get(tr->vec_dot_type);
        const size_t ldw = agx_type_row_size(t, n), ldy = agx_type_row_size(tr->vec_dot_type, n);
        uint8_t *w = malloc(ldw * rows);
        memset(w, cases[c].fill, ldw * rows);
        const uint16_t d = agx_fp32_to_fp16(0.01f);
        for (size_t b = 0; b < ldw * rows / tr->type_size; b++)
            for (int k = 0; k < 2; k++)
                if (cases[c].half_at[k] >= 0) memcpy(w + b * tr->type_size + cases[c].half_at[k], &d, 2);
        /* tokens: all -1 (quants -127), all +1 but one (+127), alternating signs, x * sign pattern of 4 */
        float *xf = malloc((size_t)n * toks * sizeof(float));
        for (int j = 0; j < toks; j++)
            for (int i = 0; i < n; i++) {
                float v = j % 4 == 0 ? -1.0f : j % 4 == 1 ? 1.0f : j % 4 == 2 ? (i & 1 ? 1.0f : -1.0f) : (i & 4 ? 1.0f : -1.0f);
                if (j % 4 == 1 && i == n - 1) v = -1.001f;
                xf[j * n + i] = v;
            }
        uint8_t *y = malloc(ldy * toks);
        for (int j = 0; j < toks; j++) vt->from_float(xf + j * n, y + ldy * j, n);
        float want[3 * 9];
        double mag[3 * 9];
        for (int j = 0; j < toks; j++)
            for (int r = 0; r < rows; r++) {
                tr->vec_dot_scalar(n, &want[j * rows + r], w + ldw * r, y + ldy * j);
                const double ref = dot_ref(t, w + ldw * r, tr->vec_dot_type, y + ldy * j, n, &mag[j * rows + r]);
                check_close(want[j * rows + r], ref, mag[j * rows + r], "limits: scalar vs dequantized", t, 0, n);
            }
        int checked = 0;
        for (int isa = 1; isa <= 2; isa++) {
            if (isa > agx_cpu_hw_level()) continue;
            const agx_vec_dot_fn dot = agx_quant_kernels_for_isa(t, isa).vec_dot;
            if (dot)
                for (int j = 0; j < toks; j++)
                    for (int r = 0; r < rows; r++) {
                        float s;
                        dot(n, &s, w + ldw * r, y + ldy * j);
                        check_close(s, want[j * rows + r], mag[j * rows + r], "limits: vec_dot vs scalar", t, isa, n);
                        checked++;
                    }
            tile_variant v[3];
            const int nv = tile_variants(t, isa, v);
            for (int k = 0; k < nv; k++) {
                size_t lda;
                uint8_t *a = tile_activations(&v[k], xf, n, toks, y, ldy, &lda);
                for (int nt = 1; nt <= toks; nt += toks - 1) {
                    float out[3 * 9];
                    v[k].gemm(n, w, ldw, rows, a, lda, nt, out, rows);
                    for (int j = 0; j < nt; j++)
                        for (int r = 0; r < rows; r++) {
                            check_close(out[j * rows + r], want[j * rows + r], mag[j * rows + r], v[k].what, t, isa, n);
                            checked++;
                        }
                }
                if (a != y) free(a);
            }
        }
        print_message("limits %-5s fill 0x%02x: %d results checked\n", agx_type_name(t), cases[c].fill, checked);
        free(w);
        free(xf);
        free(y);
    }
}

/* agx_matmul == naive double reference on dequantized weights and activations */
static void test_matmul_reference(void **state) {
    (void)state;
    const int n = 768; /* multiple of 256 */
    const int rows = 37; /* odd: chunks and tiles end in partial ones */
    for (int nth = 1; nth <= 3; nth++) {
        agx_threadpool *tp = NULL;
        assert_int_equal(agx_threadpool_create(nth, &tp, NULL), AGX_OK);
        for (size_t k = 0; k < N_WT; k++) {
            const uint32_t t = k_weight_types[k];
            const agx_type_traits *tr = agx_type_traits_get(t), *vt = agx_type_traits_get(tr->vec_dot_type);
            const size_t ldw = agx_type_row_size(t, n), ldy = agx_type_row_size(tr->vec_dot_type, n);
            uint8_t *w = make_weights(t, rows, n);
            float *wf = malloc((size_t)rows * n * sizeof(float));
            for (int r = 0; r < rows; r++) tr->to_float(w + ldw * r, wf + (size_t)r * n, n);
            const int max_tok = 17;
            float *x = malloc((size_t)n * max_tok * sizeof(float)), *xq = malloc((size_t)n * sizeof(float));
            float *out = malloc((size_t)rows * max_tok * sizeof(float));
            uint8_t *yq = malloc(ldy);
            for (int i = 0; i < n * max_tok; i++) x[i] = rnd_f();
            for (int nt = 1; nt <= max_tok; nt += (nth == 2 ? 1 : 4)) {
                for (int i = 0; i < rows * nt; i++) out[i] = NAN;
                agx_matmul(tp, t, w, rows, n, x, nt, out);
                for (int j = 0; j < nt; j++) {
                    vt->from_float(x + j * n, yq, n);
                    vt->to_float(yq, xq, n);
                    for (int r = 0; r < rows; r++) {
                        double s = 0, m = 0, sf = 0, nf = 0;
                        for (int i = 0; i < n; i++) {
                            s += (double)wf[(size_t)r * n + i] * xq[i];
                            m += fabs((double)wf[(size_t)r * n + i] * xq[i]);
                            sf += (double)wf[(size_t)r * n + i] * x[j * n + i];
                            nf += (double)wf[(size_t)r * n + i] * wf[(size_t)r * n + i];
                        }
                        check_close_rel(out[j * rows + r], s, m, def_bound(t), "matmul vs reference", t, nth, nt);
                        /* and close to the unquantized product (activation rounding only) */
                        assert_true(fabs(out[j * rows + r] - sf) <= 0.02 * sqrt(nf * n) + 1e-6);
                    }
                }
            }
            free(w);
            free(wf);
            free(x);
            free(xq);
            free(out);
            free(yq);
        }
        agx_threadpool_free(tp);
    }
}

/* long rows (ffn_down-like): the one-token path switches from the tiles to
 * vec_dot for q4_0/q5_0/q8_0 when the tile's activation row outgrows L1 */
static void test_matmul_long_rows(void **state) {
    (void)state;
    const int n = 8960, rows = 5;
    agx_threadpool *tp = NULL;
    assert_int_equal(agx_threadpool_create(2, &tp, NULL), AGX_OK);
    for (size_t k = 0; k < N_WT; k++) {
        const uint32_t t = k_weight_types[k];
        const agx_type_traits *tr = agx_type_traits_get(t), *vt = agx_type_traits_get(tr->vec_dot_type);
        const size_t ldw = agx_type_row_size(t, n);
        uint8_t *w = make_weights(t, rows, n);
        float *x = malloc((size_t)n * 2 * sizeof(float)), *out = malloc((size_t)rows * 2 * sizeof(float));
        float *wf = malloc((size_t)n * sizeof(float)), *xq = malloc((size_t)n * sizeof(float));
        uint8_t *yq = malloc(agx_type_row_size(tr->vec_dot_type, n));
        for (int i = 0; i < 2 * n; i++) x[i] = rnd_f();
        for (int nt = 1; nt <= 2; nt++) {
            agx_matmul(tp, t, w, rows, n, x, nt, out);
            for (int j = 0; j < nt; j++) {
                vt->from_float(x + j * n, yq, n);
                vt->to_float(yq, xq, n);
                for (int r = 0; r < rows; r++) {
                    tr->to_float(w + ldw * r, wf, n);
                    double s = 0, m = 0;
                    for (int i = 0; i < n; i++) {
                        s += (double)wf[i] * xq[i];
                        m += fabs((double)wf[i] * xq[i]);
                    }
                    check_close_rel(out[j * rows + r], s, m, def_bound(t), "matmul long rows", t, nt, n);
                }
            }
        }
        free(w);
        free(x);
        free(out);
        free(wf);
        free(xq);
        free(yq);
    }
    agx_threadpool_free(tp);
}

/* agx_matmul_many == one agx_matmul per matrix, bit for bit: rows routed to
 * the right matrix and output across matrix boundaries (chunks never cross
 * one), activation formats shared or kept apart, 1..3 threads and no pool;
 * several tokens and a matrix it cannot multiply fall back per matrix. */
static void test_matmul_many(void **state) {
    (void)state;
    const int n = 768;
    static const uint32_t combos[][4] = {
        {AGX_TYPE_Q4_K, AGX_TYPE_Q4_K, AGX_TYPE_Q6_K, 0},    {AGX_TYPE_Q8_0, AGX_TYPE_Q5_0, AGX_TYPE_F32, AGX_TYPE_F16},
        {AGX_TYPE_Q4_0, AGX_TYPE_BF16, 0, 0},                {AGX_TYPE_Q2_K, AGX_TYPE_Q3_K, AGX_TYPE_Q5_K, AGX_TYPE_Q4_1},
        {AGX_TYPE_Q6_K, 777, AGX_TYPE_Q4_K, 0},
    };
    static const int64_t rows[4] = {300, 37, 5, 129};
    float *x = malloc((size_t)n * 3 * sizeof(float));
    for (int i = 0; i < 3 * n; i++) x[i] = rnd_f();
    for (size_t c = 0; c < sizeof combos / sizeof combos[0]; c++) {
        int nm = 0;
        while (nm < 4 && combos[c][nm]) nm++;
        void *w[4];
        float *want[4], *got[4];
        agx_matmul_dst d[4];
        for (int i = 0; i < nm; i++) {
            const uint32_t t = combos[c][i];
            w[i] = agx_type_traits_get(t) ? make_weights(t, rows[i], n) : calloc(1, 4096);
            want[i] = malloc((size_t)rows[i] * 3 * sizeof(float));
            got[i] = malloc((size_t)rows[i] * 3 * sizeof(float));
            d[i] = (agx_matmul_dst){t, w[i], rows[i], got[i], AGX_WLAYOUT_ROWS};
        }
        for (int nth = 0; nth <= 3; nth++) {
            agx_threadpool *tp = NULL;
            if (nth) assert_int_equal(agx_threadpool_create(nth, &tp, NULL), AGX_OK);
            for (int nt = 1; nt <= 3; nt += 2) {
                for (int i = 0; i < nm; i++) {
                    agx_matmul(tp, combos[c][i], w[i], rows[i], n, x, nt, want[i]);
                    for (int64_t k = 0; k < rows[i] * nt; k++) got[i][k] = -12345.0f;
                }
                agx_matmul_many(tp, nm, d, n, x, nt);
                for (int i = 0; i < nm; i++) {
                    const int bad = !agx_type_traits_get(combos[c][i]);
                    for (int64_t k = 0; k < rows[i] * nt; k++) {
                        if (bad) assert_true(isnan(got[i][k]));
                        else assert_memory_equal(&got[i][k], &want[i][k], sizeof(float));
                    }
                }
            }
            agx_threadpool_free(tp);
        }
        size_t one_tok = 0;
        for (int i = 0; i < nm; i++) one_tok += agx_matmul_scratch_size(combos[c][i], n, 1);
        assert_true(agx_matmul_many_scratch_size(nm, d, n, 1) >= one_tok);
        for (int i = 0; i < nm; i++) {
            free(w[i]);
            free(want[i]);
            free(got[i]);
        }
    }
    free(x);
}

/* Weights repacked 16 rows at a time (agx_matmul_x16_repack) give, bit for
 * bit, what the 16-row tiles give on the rows (same integer sums, same float
 * order), for one token and prompts, an even and an odd block count, with
 * q, k, v-like matrices of both layouts in one job; a layout the CPU cannot
 * read is refused with NaN. */
static void test_matmul_x16(void **state) {
    (void)state;
    if (!agx_matmul_x16_size(AGX_TYPE_Q5_0, 16, 32)) {
        fprintf(stderr, "SKIP test_matmul_x16: this CPU (or AGX_CPU_ISA) has no AVX-512 VNNI x16 tiles\n");
        float y[16];
        const agx_matmul_dst d = {AGX_TYPE_Q5_0, y, 16, y, AGX_WLAYOUT_X16};
        agx_matmul_many(NULL, 1, &d, 32, y, 1);
        assert_true(isnan(y[0]));
        return;
    }
    static const uint32_t types[] = {AGX_TYPE_Q4_0, AGX_TYPE_Q5_0};
    static const int cols[] = {8960, 8992}; /* 280 and 281 blocks (q4_0: long rows only) */
    const int rows = 48, max_tok = 17;
    assert_int_equal(agx_matmul_x16_size(AGX_TYPE_Q5_0, 40, 768), 0); /* not whole groups */
    assert_int_equal(agx_matmul_x16_size(AGX_TYPE_Q4_K, 48, 768), 0);
    assert_int_equal(agx_matmul_x16_size(AGX_TYPE_Q8_0, 48, 768), 0);
    assert_int_equal(agx_matmul_x16_size(AGX_TYPE_Q4_0, 48, 1536), 0); /* short q4_0 rows stay */
    agx_threadpool *tp = NULL;
    assert_int_equal(agx_threadpool_create(2, &tp, NULL), AGX_OK);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        for (size_t c = 0; c < 2; c++) {
            const uint32_t t = types[k];
            const int n = cols[c];
            const size_t bytes = agx_matmul_x16_size(t, rows, n);
            assert_int_equal(bytes, agx_type_row_size(t, n) * rows);
            uint8_t *w = make_weights(t, rows, n), *wx = NULL;
            assert_int_equal(posix_memalign((void **)&wx, 64, bytes), 0);
            agx_matmul_x16_repack(t, w, rows, n, wx);
            const agx_kernel_set ks = agx_quant_kernels_for_isa(t, 2);
            const size_t ldy = ks.act_row_size(n);
            float *x = malloc(sizeof(float) * (size_t)n * max_tok);
            float *want = malloc(sizeof(float) * rows * max_tok), *got = malloc(sizeof(float) * rows * max_tok);
            float *other = malloc(sizeof(float) * 16 * max_tok), *other_want = malloc(sizeof(float) * 16 * max_tok);
            uint8_t *yq = malloc(ldy * max_tok);
            for (int i = 0; i < n * max_tok; i++) x[i] = rnd_f();
            for (int nt = 1; nt <= max_tok; nt += nt < 3 ? 1 : 7) {
                for (int j = 0; j < nt; j++) ks.gemm_quant(x + (size_t)j * n, yq + (size_t)j * ldy, n);
                ks.gemm(n, w, agx_type_row_size(t, n), rows, yq, ldy, nt, want, rows);
                agx_matmul(tp, t, w, 16, n, x, nt, other_want);
                const agx_matmul_dst d[2] = {{t, wx, rows, got, AGX_WLAYOUT_X16}, {t, w, 16, other, AGX_WLAYOUT_ROWS}};
                agx_matmul_many(tp, 2, d, n, x, nt);
                assert_memory_equal(got, want, sizeof(float) * rows * nt);
                assert_memory_equal(other, other_want, sizeof(float) * 16 * nt);
            }
            /* part of a group: refused, not misread */
            const agx_matmul_dst bad = {t, wx, 40, got, AGX_WLAYOUT_X16};
            agx_matmul_many(tp, 1, &bad, n, x, 1);
            assert_true(isnan(got[0]) && isnan(got[39]));
            free(w);
            free(wx);
            free(x);
            free(want);
            free(got);
            free(other);
            free(other_want);
            free(yq);
        }
    agx_threadpool_free(tp);
}

static void test_matmul_bad_shapes(void **state) {
    (void)state;
    float x[100] = {0}, y[4];
    uint8_t w[1024] = {0};
    agx_matmul(NULL, AGX_TYPE_Q4_K, w, 2, 100, x, 2, y); /* 100 is not a multiple of 256 */
    for (int i = 0; i < 4; i++) assert_true(isnan(y[i]));
    agx_matmul(NULL, 777, w, 2, 32, x, 2, y);
    for (int i = 0; i < 4; i++) assert_true(isnan(y[i]));
    agx_matmul(NULL, AGX_TYPE_Q8_0, w, 2, 32, x, 2, y); /* zero weights, zero input */
    for (int i = 0; i < 4; i++) assert_true(y[i] == 0.0f);
    assert_true(agx_matmul_scratch_size(AGX_TYPE_Q4_K, 1536, 512) >= 512 * agx_type_row_size(AGX_TYPE_Q8_K, 1536));
    assert_int_equal(agx_matmul_scratch_size(AGX_TYPE_Q4_K, 100, 1), 0);
}

/* q2_K / q3_K rows from their quantizer dotted with q8_K activations: every
 * vec_dot (scalar, each ISA, the selected one) equals the dequantized dot,
 * and that stays near the float dot of the unquantized row (the quantizer
 * error only); random-bit rows against the dequantized dot too. */
static void test_low_bit_k_quantized_dot(void **state) {
    (void)state;
    const int n = 256 * 6;
    const uint32_t types[] = {AGX_TYPE_Q2_K, AGX_TYPE_Q3_K};
    const double quant_rel[] = {0.35, 0.2}; /* a bit above their round-trip rel. RMSE */
    const agx_type_traits *vt = agx_type_traits_get(AGX_TYPE_Q8_K);
    float *wf = malloc((size_t)n * sizeof(float)), *xf = malloc((size_t)n * sizeof(float));
    uint8_t *w = malloc(agx_type_row_size(AGX_TYPE_Q3_K, n)), *y = malloc(agx_type_row_size(AGX_TYPE_Q8_K, n));
    for (size_t k = 0; k < 2; k++) {
        const uint32_t t = types[k];
        const agx_type_traits *tr = agx_type_traits_get(t);
        assert_int_equal(tr->vec_dot_type, AGX_TYPE_Q8_K);
        for (int trial = 0; trial < 8; trial++) {
            const bool random_bits = trial >= 6;
            for (int i = 0; i < n; i++) {
                wf[i] = rnd_f() * (1.0f + (float)(i / 256)); /* a scale per block */
                xf[i] = wf[i] / (1.0f + (float)(i / 256)) + rnd_f(); /* correlated: a large dot */
            }
            if (random_bits) random_low_bit_k_row(t, w, n);
            else tr->from_float_ref(wf, w, n);
            vt->from_float(xf, y, n);
            double mag;
            const double want = dot_ref(t, w, AGX_TYPE_Q8_K, y, n, &mag);
            float s = NAN;
            tr->vec_dot_scalar(n, &s, w, y);
            check_close(s, want, mag, "quantized row: scalar vs dequantized", t, 0, n);
            for (int isa = 1; isa <= 2; isa++) {
                const agx_kernel_set ks = agx_quant_kernels_for_isa(t, isa);
                if (!ks.vec_dot) continue;
                s = NAN;
                ks.vec_dot(n, &s, w, y);
                check_close(s, want, mag, "quantized row: simd vs dequantized", t, isa, n);
            }
            s = NAN;
            tr->vec_dot(n, &s, w, y);
            check_close(s, want, mag, "quantized row: selected vs dequantized", t, agx_cpu_isa_level(), n);
            if (random_bits) continue;
            /* |w.x - wq.xq| <= (rel RMSE of w + of x) * |w| |x| in expectation;
             * 3x that as the bound (the sum is of n random-signed terms) */
            double exact = 0, nw = 0, nx = 0;
            for (int i = 0; i < n; i++) {
                exact += (double)wf[i] * xf[i];
                nw += (double)wf[i] * wf[i];
                nx += (double)xf[i] * xf[i];
            }
            const double tol = 3 * (quant_rel[k] + 0.01) * sqrt(nw * nx / n);
            assert_true(tol < 0.25 * fabs(exact)); /* a zero or garbage row would fail */
            if (fabs(want - exact) > tol) {
                print_error("%s: quantized dot %.6g vs float dot %.6g (tol %.3g)\n", agx_type_name(t), want, exact, tol);
                fail();
            }
        }
    }
    free(wf);
    free(xf);
    free(w);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vec_dot_all_isas),
        cmocka_unit_test(test_gemm_tiles),
        cmocka_unit_test(test_kernels_int16_limits),
        cmocka_unit_test(test_matmul_reference),
        cmocka_unit_test(test_matmul_long_rows),
        cmocka_unit_test(test_matmul_many),
        cmocka_unit_test(test_matmul_x16),
        cmocka_unit_test(test_matmul_bad_shapes),
        cmocka_unit_test(test_low_bit_k_quantized_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
