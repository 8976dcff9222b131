/* test_ops.c — each engine op against a plain scalar reference written here
 * (RMSNorm, both RoPE styles with base/scale/frequency factors and partial
 * rotation, softmax, SwiGLU, GQA attention incl. the head mapping and the f16
 * cache), then whole tiny models (qwen2 with biases, llama with rope_freqs and
 * an untied output, head_dim != n_embd/n_head) against a scalar forward pass,
 * KV-cache reuse (prefill + decode == one batch), context overflow errors. */
#include "agx_test.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/gguf.h"
#include "agx/model.h"
#include "agx/ops.h"
#include "agx/quant.h"
#include "agx/threadpool.h"
#include "agx/util.h"
#include "engine/ops_internal.h"

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {   /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = frand() * scale;
}
static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* ---- elementwise ops ---- */
static void test_rmsnorm(void **state) {
    (void)state;
    enum { N = 300 };
    float x[N], w[N], out[N];
    double ref[N];
    fill(x, N, 3.0f);
    fill(w, N, 1.0f);
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)x[i] * x[i];
    const double scale = 1.0 / sqrt(ss / N + 1e-6);
    for (int i = 0; i < N; i++) ref[i] = x[i] * scale * w[i];
    agx_rmsnorm(out, x, w, N, 1e-6f);
    assert_true(max_abs_diff(out, ref, N) < 1e-5);
    for (int i = 0; i < N; i++) ref[i] = x[i] * scale;
    agx_rmsnorm(x, x, NULL, N, 1e-6f);   /* in place, no weight */
    assert_true(max_abs_diff(x, ref, N) < 1e-5);
}

static void test_softmax_swiglu(void **state) {
    (void)state;
    enum { N = 77 };
    float x[N], g[N], u[N], out[N];
    double ref[N];
    fill(x, N, 20.0f);
    x[5] = -INFINITY;   /* masked entries get exactly zero */
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < N; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < N; i++) sum += exp(x[i] - mx);
    for (int i = 0; i < N; i++) ref[i] = exp(x[i] - mx) / sum;
    agx_softmax(x, N);
    assert_true(max_abs_diff(x, ref, N) < 1e-6);
    assert_true(x[5] == 0.0f);
    fill(g, N, 8.0f);
    fill(u, N, 2.0f);
    g[0] = -90.0f, g[1] = 90.0f, g[2] = -200.0f, g[3] = 0.0f, g[4] = -87.5f, g[9] = 30.0f;   /* exp range edges */
    for (int i = 0; i < N; i++) ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    agx_swiglu(out, g, u, N);
    for (int i = 0; i < N; i++) assert_true(fabs(out[i] - ref[i]) <= 1e-5 + 1e-6 * fabs(ref[i]));
}

/* ---- RoPE ---- */
static void rope_ref(agx_rope_style style, int n_dims, double base, double scale, const float *ff, int64_t pos,
                     const float *x, double *y, int head_dim) {
    for (int i = 0; i < head_dim; i++) y[i] = x[i];   /* dims past n_dims stay as they are */
    for (int i = 0; i < n_dims / 2; i++) {
        double theta = (double)pos * pow(base, -2.0 * i / n_dims) * scale / (ff ? ff[i] : 1.0);
        int a = style == AGX_ROPE_NEOX ? i : 2 * i, b = style == AGX_ROPE_NEOX ? i + n_dims / 2 : 2 * i + 1;
        y[a] = x[a] * cos(theta) - x[b] * sin(theta);
        y[b] = x[a] * sin(theta) + x[b] * cos(theta);
    }
}

static void test_rope(void **state) {
    (void)state;
    enum { HD = 64, NH = 3 };
    float ff[HD / 2];
    for (int i = 0; i < HD / 2; i++) ff[i] = 1.0f + (float)i * 0.25f;
    const struct { agx_rope_style style; int n_dims; float base, scale; const float *ff; } cfgs[] = {
        {AGX_ROPE_NORMAL, HD, 10000.0f, 1.0f, NULL}, {AGX_ROPE_NEOX, HD, 1000000.0f, 1.0f, NULL},
        {AGX_ROPE_NORMAL, 32, 500000.0f, 0.25f, NULL}, {AGX_ROPE_NEOX, 32, 10000.0f, 1.0f, NULL},
        {AGX_ROPE_NORMAL, HD, 500000.0f, 1.0f, ff},   {AGX_ROPE_NEOX, HD, 10000.0f, 0.5f, ff},
    };
    const int64_t positions[] = {0, 1, 7, 300};
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        for (size_t p = 0; p < 4; p++) {
            float x[NH * HD], orig[NH * HD], cs[HD];
            double ref[HD];
            fill(x, NH * HD, 1.0f);
            memcpy(orig, x, sizeof x);
            agx_rope_params rp = {cfgs[c].style, cfgs[c].n_dims, cfgs[c].base, cfgs[c].scale, cfgs[c].ff};
            agx_rope_cache(&rp, positions[p], cs);
            agx_rope_apply(&rp, cs, x, NH, HD);
            for (int h = 0; h < NH; h++) {
                rope_ref(cfgs[c].style, cfgs[c].n_dims, cfgs[c].base, cfgs[c].scale, cfgs[c].ff, positions[p],
                         orig + h * HD, ref, HD);
                /* float angle recurrence (as llama.cpp) vs double: ~1e-7 relative per step */
                double err = max_abs_diff(x + h * HD, ref, HD);
                if (err > 2e-4 * (1 + positions[p])) fail_msg("rope cfg %zu pos %lld head %d: err %g", c, (long long)positions[p], h, err);
            }
        }
    }
    /* the two styles really differ (pairing bug would pass a symmetric test) */
    float a[HD], b[HD], cs[HD];
    fill(a, HD, 1.0f);
    memcpy(b, a, sizeof a);
    agx_rope_params n = {AGX_ROPE_NORMAL, HD, 10000.0f, 1.0f, NULL}, x = {AGX_ROPE_NEOX, HD, 10000.0f, 1.0f, NULL};
    agx_rope_cache(&n, 5, cs);
    agx_rope_apply(&n, cs, a, 1, HD);
    agx_rope_apply(&x, cs, b, 1, HD);
    assert_true(memcmp(a, b, sizeof a) != 0);
}

/* ---- attention ---- */
static void attention_ref(int n_head, int n_kv, int hd, const float *q, const float *k, const float *v, int n_tok,
                          int pos0, double *out, bool interleaved_map) {
    const int group = n_head / n_kv;
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < n_head; h++) {
            /* llama.cpp: consecutive query heads share a kv head (h / group) */
            const int g = interleaved_map ? h % n_kv : h / group, n_pos = pos0 + t + 1;
            double *s = malloc(sizeof(double) * (size_t)n_pos), mx = -INFINITY, sum = 0;
            for (int p = 0; p < n_pos; p++) {
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[(t * n_head + h) * hd + i] * k[(p * n_kv + g) * hd + i];
                s[p] = d / sqrt((double)hd);
                mx = s[p] > mx ? s[p] : mx;
            }
            for (int p = 0; p < n_pos; p++) sum += (s[p] = exp(s[p] - mx));
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int p = 0; p < n_pos; p++) o += s[p] / sum * v[(p * n_kv + g) * hd + i];
                out[(t * n_head + h) * hd + i] = o;
            }
            free(s);
        }
}

static void attention_case(agx_threadpool *tp, int NH, int NKV, int HD, int NT, int POS0, bool use_scratch) {
    const int CTX = POS0 + NT;
    const size_t nq = (size_t)NT * NH * HD, nk = (size_t)CTX * NKV * HD;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *out = malloc(nq * 4);
    uint16_t *k16 = malloc(nk * 2), *v16 = malloc(nk * 2);
    double *ref = malloc(nq * 8);
    fill(q, nq, 2.0f);
    fill(k, nk, 2.0f);
    fill(v, nk, 1.0f);
    for (int kvt = 0; kvt < 2; kvt++) {
        const agx_kv_type type = kvt ? AGX_KV_F16 : AGX_KV_F32;
        if (type == AGX_KV_F16) {   /* the reference sees the f16-rounded cache */
            for (int r = 0; r < CTX; r++) {
                agx_kv_store(type, k16 + (size_t)r * NKV * HD, k + (size_t)r * NKV * HD, NKV * HD);
                agx_kv_store(type, v16 + (size_t)r * NKV * HD, v + (size_t)r * NKV * HD, NKV * HD);
            }
            for (size_t i = 0; i < nk; i++) {
                assert_true(fabsf(agx_fp16_to_fp32(k16[i]) - k[i]) < 2e-3f);
                k[i] = agx_fp16_to_fp32(k16[i]);
                v[i] = agx_fp16_to_fp32(v16[i]);
            }
        }
        attention_ref(NH, NKV, HD, q, k, v, NT, POS0, ref, false);
        agx_attn_params p = {NH, NKV, HD, type, type == AGX_KV_F16 ? (void *)k16 : (void *)k,
                             type == AGX_KV_F16 ? (void *)v16 : (void *)v, 1.0f / sqrtf((float)HD), NULL, 0};
        float *scratch = NULL;
        if (use_scratch) {
            p.scratch_per_thread = agx_attention_scratch_floats(&p, CTX);
            scratch = p.scratch = malloc(sizeof(float) * p.scratch_per_thread * 2);
        }
        for (int threaded = 0; threaded < 2; threaded++) {
            memset(out, 0xff, nq * 4);
            agx_attention(threaded ? tp : NULL, &p, q, NT, POS0, out);
            double e = max_abs_diff(out, ref, nq);
            if (e > 1e-5) fail_msg("attention %d/%d hd %d nt %d kv %d threaded %d: err %g", NH, NKV, HD, NT, kvt, threaded, e);
        }
        free(scratch);
    }
    /* the test can tell the mapping apart: h % n_kv gives different outputs */
    if (NKV > 1 && NH / NKV > 1) {
        attention_ref(NH, NKV, HD, q, k, v, NT, POS0, ref, true);
        assert_true(max_abs_diff(out, ref, nq) > 1e-2);
    }
    free(q), free(k), free(v), free(out), free(k16), free(v16), free(ref);
}

static void test_attention_gqa(void **state) {
    (void)state;
    agx_threadpool *tp = NULL;
    agx_error err;
    assert_int_equal(agx_threadpool_create(2, &tp, &err), AGX_OK);
    attention_case(tp, 6, 2, 20, 5, 4, false);    /* GQA, head_dim with a SIMD tail */
    attention_case(tp, 4, 1, 128, 41, 3, true);   /* MQA, several token blocks, caller scratch */
    attention_case(tp, 3, 3, 72, 1, 70, true);    /* MHA decode step over a long cache */
    attention_case(tp, 14, 2, 64, 35, 9, true);   /* qwen2.5-0.5b-like: group 7, head_dim 64 */
    agx_threadpool_free(tp);
}

/* The decode-step kernels reproduce llama.cpp's summation order: the AVX-512
 * versions must equal the portable emulation bit for bit (and both the math). */
static void test_decode_order_kernels(void **state) {
    (void)state;
    const agx_ops_kernels *ref = agx_ops_kernels_for("scalar"), *simd = agx_ops_kernels_for("avx512");
    if (!simd) AGX_TEST_SKIP("no AVX-512 on this CPU: decode-order kernels not compared");
    const int hds[] = {32, 64, 96, 128, 72}, ns[] = {1, 31, 40, 64, 70, 100, 129, 200};
    for (size_t a = 0; a < sizeof hds / sizeof hds[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int hd = hds[a], n = ns[b], n_kv = (n + 31) / 32 * 32;
            const int64_t ks = hd + 8;   /* rows strided as in the cache */
            float *q = malloc(4 * (size_t)hd), *k = malloc(4 * (size_t)(n * ks)), *v = malloc(4 * (size_t)(n * ks));
            float *s1 = malloc(4 * (size_t)n_kv), *s2 = malloc(4 * (size_t)n_kv), *acc = malloc(4 * 64 * (size_t)hd);
            for (int i = 0; i < 64 * hd; i++) acc[i] = NAN;   /* stale scratch must not leak in */
            float *o1 = malloc(4 * (size_t)hd), *o2 = malloc(4 * (size_t)hd);
            fill(q, (size_t)hd, 1.0f), fill(k, (size_t)(n * ks), 1.0f), fill(v, (size_t)(n * ks), 1.0f);
            ref->qk_dec(q, k, ks, n, hd, 0.125f, s1);
            simd->qk_dec(q, k, ks, n, hd, 0.125f, s2);
            assert_memory_equal(s1, s2, 4 * (size_t)n);
            for (int s = 0; s < n; s++) {   /* and it is the dot product */
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[i] * k[s * ks + i];
                assert_true(fabs(d * 0.125 - s1[s]) < 1e-5);
            }
            agx_softmax(s1, n);
            for (int s = n; s < n_kv; s++) s1[s] = 0.0f;
            ref->pv_dec(s1, v, ks, n, n_kv, hd, o1, acc);
            simd->pv_dec(s1, v, ks, n, n_kv, hd, o2, acc);
            assert_memory_equal(o1, o2, 4 * (size_t)hd);
            for (int i = 0; i < hd; i++) {
                double d = 0;
                for (int s = 0; s < n; s++) d += (double)s1[s] * v[s * ks + i];
                assert_true(fabs(d - o1[i]) < 1e-5);
            }
            free(q), free(k), free(v), free(s1), free(s2), free(acc), free(o1), free(o2);
        }
}

/* ---- whole tiny models vs a scalar forward pass ---- */
typedef struct tiny {
    bool qwen;   /* qwen2: NeoX rope, q/k/v biases, tied output; else llama: normal rope, rope_freqs, untied */
    int E, L, H, KV, HD, F, V;
    float eps, base;
    bool llama3_keys;   /* write rope.scaling.* llama3 keys instead of the rope_freqs tensor */
    uint32_t mat_type;  /* the layers' matrices in this type (0: f32); tiny_quantize_mats */
    float *embd, *out, *onorm, *ropef;
    float *an[4], *fn[4], *wq[4], *wk[4], *wv[4], *wo[4], *bq[4], *bk[4], *bv[4], *wg[4], *wu[4], *wd[4];
} tiny;

static float *mk(size_t n, float scale, bool norm) {
    float *x = malloc(sizeof(float) * n);
    fill(x, n, scale);
    if (norm)
        for (size_t i = 0; i < n; i++) x[i] += 1.0f;
    return x;
}

static void tiny_init(tiny *m, bool qwen) {
    memset(m, 0, sizeof *m);
    m->qwen = qwen;
    m->E = 64, m->L = 2, m->H = 4, m->KV = qwen ? 2 : 1, m->HD = 24, m->F = 96, m->V = 50;   /* HD != E/H */
    m->eps = 1e-6f, m->base = qwen ? 1000000.0f : 10000.0f;
    const int QD = m->H * m->HD, KD = m->KV * m->HD;
    m->embd = mk((size_t)m->E * m->V, 1.0f, false);
    m->onorm = mk((size_t)m->E, 0.1f, true);
    if (!qwen) {
        m->out = mk((size_t)m->E * m->V, 0.5f, false);
        m->ropef = mk((size_t)m->HD / 2, 0.5f, true);
        for (int i = 0; i < m->HD / 2; i++) m->ropef[i] = 1.0f + fabsf(m->ropef[i] - 1.0f) * 4;
    }
    for (int l = 0; l < m->L; l++) {
        m->an[l] = mk((size_t)m->E, 0.1f, true);
        m->fn[l] = mk((size_t)m->E, 0.1f, true);
        m->wq[l] = mk((size_t)m->E * QD, 0.3f, false);
        m->wk[l] = mk((size_t)m->E * KD, 0.3f, false);
        m->wv[l] = mk((size_t)m->E * KD, 0.3f, false);
        m->wo[l] = mk((size_t)QD * m->E, 0.2f, false);
        m->wg[l] = mk((size_t)m->E * m->F, 0.2f, false);
        m->wu[l] = mk((size_t)m->E * m->F, 0.2f, false);
        m->wd[l] = mk((size_t)m->F * m->E, 0.2f, false);
        if (qwen) {
            m->bq[l] = mk((size_t)QD, 0.5f, false);
            m->bk[l] = mk((size_t)KD, 0.5f, false);
            m->bv[l] = mk((size_t)KD, 0.5f, false);
        }
    }
}

static void tiny_free(tiny *m) {
    free(m->embd), free(m->out), free(m->onorm), free(m->ropef);
    for (int l = 0; l < m->L; l++) {
        free(m->an[l]), free(m->fn[l]), free(m->wq[l]), free(m->wk[l]), free(m->wv[l]), free(m->wo[l]);
        free(m->bq[l]), free(m->bk[l]), free(m->bv[l]), free(m->wg[l]), free(m->wu[l]), free(m->wd[l]);
    }
}

static void add_typed(agx_gguf_writer *w, const char *name, uint32_t type, const float *d, int64_t ne0, int64_t ne1) {
    agx_error err;
    int64_t ne[2] = {ne0, ne1};
    const agx_type_traits *tr = agx_type_traits_get(type);
    const size_t rs = agx_type_row_size(type, ne0);
    uint8_t *q = malloc(rs * (size_t)ne1);
    if (type == AGX_TYPE_F32) memcpy(q, d, rs * (size_t)ne1);
    else
        for (int64_t r = 0; r < ne1; r++) tr->from_float_ref(d + r * ne0, q + rs * (size_t)r, ne0);
    assert_int_equal(agx_gguf_writer_add_tensor(w, name, type, ne1 > 1 ? 2 : 1, ne, q, rs * (size_t)ne1, &err),
                     AGX_OK);
    free(q);
}
static void add_t(agx_gguf_writer *w, const char *name, const float *d, int64_t ne0, int64_t ne1) {
    add_typed(w, name, AGX_TYPE_F32, d, ne0, ne1);
}

/* The layers' matrices rounded through mat_type, so that the scalar
 * reference computes with exactly the weights tiny_write stores. */
static void tiny_quantize_mats(tiny *m, uint32_t type) {
    const agx_type_traits *tr = agx_type_traits_get(type);
    const int QD = m->H * m->HD, KD = m->KV * m->HD;
    m->mat_type = type;
    for (int l = 0; l < m->L; l++) {
        float *mats[] = {m->wq[l], m->wk[l], m->wv[l], m->wo[l], m->wg[l], m->wu[l], m->wd[l]};
        const int cols[] = {m->E, m->E, m->E, QD, m->E, m->E, m->F};
        const int rows[] = {QD, KD, KD, m->E, m->F, m->F, m->E};
        for (int i = 0; i < 7; i++) {
            const size_t rs = agx_type_row_size(type, cols[i]);
            uint8_t *q = malloc(rs);
            for (int r = 0; r < rows[i]; r++) {
                tr->from_float_ref(mats[i] + (size_t)r * cols[i], q, cols[i]);
                tr->to_float(q, mats[i] + (size_t)r * cols[i], cols[i]);
            }
            free(q);
        }
    }
}

static char *tiny_write(const tiny *m, const char *dir) {
    agx_error err;
    agx_gguf_writer *w = agx_gguf_writer_new();
    const char *a = m->qwen ? "qwen2" : "llama";
    char k[96];
    agx_gguf_writer_add_str(w, "general.architecture", a, &err);
#define U32(key, v) (snprintf(k, sizeof k, "%s.%s", a, key), agx_gguf_writer_add_u32(w, k, (uint32_t)(v), &err))
#define F32(key, v) (snprintf(k, sizeof k, "%s.%s", a, key), agx_gguf_writer_add_f32(w, k, (v), &err))
    U32("block_count", m->L);
    U32("embedding_length", m->E);
    U32("feed_forward_length", m->F);
    U32("attention.head_count", m->H);
    U32("attention.head_count_kv", m->KV);
    U32("attention.key_length", m->HD);
    U32("attention.value_length", m->HD);
    U32("context_length", 64);
    F32("rope.freq_base", m->base);
    F32("attention.layer_norm_rms_epsilon", m->eps);
    agx_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 7, &err);
    const int QD = m->H * m->HD, KD = m->KV * m->HD;
    add_t(w, "token_embd.weight", m->embd, m->E, m->V);
    add_t(w, "output_norm.weight", m->onorm, m->E, 1);
    if (m->out) add_t(w, "output.weight", m->out, m->E, m->V);
    if (m->ropef && !m->llama3_keys) add_t(w, "rope_freqs.weight", m->ropef, m->HD / 2, 1);
    if (m->llama3_keys) {
        agx_gguf_writer_add_str(w, "llama.rope.scaling.type", "llama3", &err);
        F32("rope.scaling.factor", 8.0f);
        F32("rope.scaling.low_freq_factor", 1.0f);
        F32("rope.scaling.high_freq_factor", 4.0f);
        U32("rope.scaling.original_context_length", 64);
    }
    for (int l = 0; l < m->L; l++) {
        char n[64];
#define T(s, d, a0, a1) (snprintf(n, sizeof n, "blk.%d.%s", l, s), add_t(w, n, d, a0, a1))
#define M(s, d, a0, a1) (snprintf(n, sizeof n, "blk.%d.%s", l, s), add_typed(w, n, mt, d, a0, a1))
        const uint32_t mt = m->mat_type ? m->mat_type : AGX_TYPE_F32;
        T("attn_norm.weight", m->an[l], m->E, 1);
        T("ffn_norm.weight", m->fn[l], m->E, 1);
        M("attn_q.weight", m->wq[l], m->E, QD);
        M("attn_k.weight", m->wk[l], m->E, KD);
        M("attn_v.weight", m->wv[l], m->E, KD);
        M("attn_output.weight", m->wo[l], QD, m->E);
        M("ffn_gate.weight", m->wg[l], m->E, m->F);
        M("ffn_up.weight", m->wu[l], m->E, m->F);
        M("ffn_down.weight", m->wd[l], m->F, m->E);
#undef M
        if (m->bq[l]) {
            T("attn_q.bias", m->bq[l], QD, 1);
            T("attn_k.bias", m->bk[l], KD, 1);
            T("attn_v.bias", m->bv[l], KD, 1);
        }
#undef T
    }
    char *path = agx_sprintf("%s/%s.gguf", dir, a);
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_OK);
    agx_gguf_writer_free(w);
    return path;
}

/* y[r] = sum_c W[r][c] x[c] with W stored ggml-style as n_rows rows of n_cols */
static void mv(const float *W, const double *x, int n_cols, int n_rows, double *y) {
    for (int r = 0; r < n_rows; r++) {
        double s = 0;
        for (int c = 0; c < n_cols; c++) s += (double)W[(size_t)r * n_cols + c] * x[c];
        y[r] = s;
    }
}
static void rms(const double *x, const float *w, int n, double eps, double *y) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = x[i] * s * w[i];
}

/* Scalar forward over the whole sequence: logits[T][V]. */
static void tiny_reference(const tiny *m, const int32_t *tok, int T, double *logits) {
    const int E = m->E, QD = m->H * m->HD, KD = m->KV * m->HD, HD = m->HD, group = m->H / m->KV;
    double *x = calloc((size_t)T * E, sizeof(double)), *xb = malloc(sizeof(double) * E);
    double *q = malloc(sizeof(double) * (size_t)T * QD), *k = malloc(sizeof(double) * (size_t)T * KD);
    double *v = malloc(sizeof(double) * (size_t)T * KD), *att = malloc(sizeof(double) * QD);
    double *o = malloc(sizeof(double) * E), *g = malloc(sizeof(double) * m->F), *u = malloc(sizeof(double) * m->F);
    double *s = malloc(sizeof(double) * T);
    const agx_rope_style st = m->qwen ? AGX_ROPE_NEOX : AGX_ROPE_NORMAL;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < E; i++) x[t * E + i] = m->embd[(size_t)tok[t] * E + i];
    for (int l = 0; l < m->L; l++) {
        for (int t = 0; t < T; t++) {
            rms(x + t * E, m->an[l], E, m->eps, xb);
            mv(m->wq[l], xb, E, QD, q + t * QD);
            mv(m->wk[l], xb, E, KD, k + t * KD);
            mv(m->wv[l], xb, E, KD, v + t * KD);
            for (int i = 0; i < QD && m->bq[l]; i++) q[t * QD + i] += m->bq[l][i];
            for (int i = 0; i < KD && m->bk[l]; i++) k[t * KD + i] += m->bk[l][i], v[t * KD + i] += m->bv[l][i];
            float tmp[256];
            double r[256];
            for (int h = 0; h < m->H + m->KV; h++) {
                double *vec = h < m->H ? q + t * QD + h * HD : k + t * KD + (h - m->H) * HD;
                for (int i = 0; i < HD; i++) tmp[i] = (float)vec[i];
                rope_ref(st, HD, m->base, 1.0, m->ropef, t, tmp, r, HD);
                for (int i = 0; i < HD; i++) vec[i] = r[i];
            }
        }
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < m->H; h++) {
                const int kvh = h / group;
                double mx = -INFINITY, sum = 0;
                for (int p = 0; p <= t; p++) {
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += q[t * QD + h * HD + i] * k[p * KD + kvh * HD + i];
                    s[p] = d / sqrt((double)HD);
                    mx = s[p] > mx ? s[p] : mx;
                }
                for (int p = 0; p <= t; p++) sum += (s[p] = exp(s[p] - mx));
                for (int i = 0; i < HD; i++) {
                    double a = 0;
                    for (int p = 0; p <= t; p++) a += s[p] / sum * v[p * KD + kvh * HD + i];
                    att[h * HD + i] = a;
                }
            }
            mv(m->wo[l], att, QD, E, o);
            for (int i = 0; i < E; i++) x[t * E + i] += o[i];
            rms(x + t * E, m->fn[l], E, m->eps, xb);
            mv(m->wg[l], xb, E, m->F, g);
            mv(m->wu[l], xb, E, m->F, u);
            for (int i = 0; i < m->F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            mv(m->wd[l], g, m->F, E, o);
            for (int i = 0; i < E; i++) x[t * E + i] += o[i];
        }
    }
    for (int t = 0; t < T; t++) {
        rms(x + t * E, m->onorm, E, m->eps, xb);
        mv(m->out ? m->out : m->embd, xb, E, m->V, logits + (size_t)t * m->V);
    }
    free(x), free(xb), free(q), free(k), free(v), free(att), free(o), free(g), free(u), free(s);
}

/* A tiny model (m, initialized by the caller) written and loaded, with the
 * scalar forward pass's logits for TINY_T tokens and room for two runs' */
enum { TINY_T = 13 };
typedef struct tiny_run {
    tiny m;
    char *dir, *path;
    agx_model *model;
    int32_t tok[TINY_T];
    double *ref;
    float *one, *step;
} tiny_run;

static void tiny_run_open(tiny_run *r) {
    r->dir = agx_test_tmpdir();
    r->path = tiny_write(&r->m, r->dir);
    agx_error err;
    r->model = NULL;
    if (agx_model_load(r->path, &r->model, &err) != AGX_OK) fail_msg("%s", err.message);
    for (int i = 0; i < TINY_T; i++) r->tok[i] = (i * 17 + 3) % r->m.V;
    r->ref = malloc(sizeof(double) * TINY_T * (size_t)r->m.V);
    tiny_reference(&r->m, r->tok, TINY_T, r->ref);
    r->one = malloc(sizeof(float) * TINY_T * (size_t)r->m.V);
    r->step = malloc(sizeof(float) * TINY_T * (size_t)r->m.V);
}

static void tiny_run_close(tiny_run *r) {
    free(r->ref), free(r->one), free(r->step);
    agx_model_free(r->model);
    agx_test_rmtree(r->dir);
    free(r->dir), free(r->path);
    tiny_free(&r->m);
}

/* max |ref| over n logits: the scale of the tolerances */
static double ref_scale(const double *ref, size_t n) {
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    return scale;
}

/* One batch of T tokens (all logits into one) against the scalar reference
 * within rel * (1 + scale), then a prefill of 5 and single steps through the
 * cache (into step) == that batch. Returns the scale. */
static double check_batch_then_steps(agx_context *c, int V, const int32_t *tok, int T, const double *ref, double rel,
                                     const char *what, float *one, float *step) {
    agx_error err;
    assert_int_equal(agx_context_eval(c, tok, T, true, one, &err), AGX_OK);
    assert_int_equal(agx_context_n_past(c), T);
    const double scale = ref_scale(ref, (size_t)T * V), tol = rel * (1 + scale);
    const double e = max_abs_diff(one, ref, (size_t)T * V);
    if (e > tol) fail_msg("%s: batch logits differ from the scalar reference by %g (tol %g)", what, e, tol);
    agx_context_truncate(c, 0);
    assert_int_equal(agx_context_eval(c, tok, 5, true, step, &err), AGX_OK);
    for (int t = 5; t < T; t++)
        assert_int_equal(agx_context_eval(c, &tok[t], 1, false, step + (size_t)t * V, &err), AGX_OK);
    for (int i = 0; i < T * V; i++) assert_true(fabsf(step[i] - one[i]) <= 1e-4f * (1 + (float)scale));
    return scale;
}

static void check_tiny(bool qwen) {
    tiny_run r;
    tiny_init(&r.m, qwen);
    tiny_run_open(&r);
    const int V = r.m.V, T = TINY_T;
    agx_error err;
    const agx_model_config *cfg = agx_model_get_config(r.model);
    assert_int_equal(cfg->head_dim, 24);
    assert_int_equal(cfg->n_vocab, V);
    assert_int_equal(cfg->rope_style, qwen ? AGX_ROPE_NEOX : AGX_ROPE_NORMAL);
    assert_int_equal(cfg->qkv_bias, qwen);
    assert_int_equal(cfg->tied_output, qwen);
    assert_int_equal(cfg->has_rope_freqs, !qwen);
    assert_true(agx_model_is_eog(r.model, 7));
    assert_false(agx_model_is_eog(r.model, 8));

    for (int kv = 0; kv < 2; kv++) {
        agx_context_params cp = agx_context_default_params();
        cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
        cp.n_ctx = 32;
        cp.n_threads = 2;
        cp.kv_type = kv ? AGX_KV_F16 : AGX_KV_F32;
        agx_context *c = NULL;
        assert_int_equal(agx_context_create(r.model, &cp, &c, &err), AGX_OK);
        char what[32];
        snprintf(what, sizeof what, "%s kv=%s", qwen ? "qwen2" : "llama", kv ? "f16" : "f32");
        const double scale = check_batch_then_steps(c, V, r.tok, T, r.ref, kv ? 3e-3 : 2e-4, what, r.one, r.step);
        /* last-only logits equal the last row */
        float last[64];
        agx_context_truncate(c, 0);
        assert_int_equal(agx_context_eval(c, r.tok, T, false, last, &err), AGX_OK);
        for (int i = 0; i < V; i++) assert_true(fabsf(last[i] - r.one[(size_t)(T - 1) * V + i]) <= 1e-5f * (1 + (float)scale));
        agx_context_free(c);
    }
    /* micro-batches smaller than the prompt give the same logits */
    agx_context_params cp = agx_context_default_params();
    cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
    cp.n_ctx = 32;
    cp.n_ubatch = 4;
    cp.kv_type = AGX_KV_F32;
    agx_context *c = NULL;
    assert_int_equal(agx_context_create(r.model, &cp, &c, &err), AGX_OK);
    assert_int_equal(agx_context_eval(c, r.tok, T, true, r.step, &err), AGX_OK);
    assert_true(max_abs_diff(r.step, r.ref, (size_t)T * V) <= 2e-4 * (1 + ref_scale(r.ref, (size_t)T * V)));
    agx_context_free(c);
    tiny_run_close(&r);
}

static void test_model_qwen2_vs_scalar(void **state) {
    (void)state;
    check_tiny(true);
}
static void test_model_llama_vs_scalar(void **state) {
    (void)state;
    check_tiny(false);
}

/* q5_0 matrices (the 0.5B Echo files' main type): with AVX-512 VNNI the first
 * CPU context repacks them (x16 layout) and the logits still match the scalar
 * forward pass on the same (dequantized) weights within the activations'
 * q8_0 rounding; one token at a time through the cache == one batch. */
static void test_model_q5_0_repacked(void **state) {
    (void)state;
    tiny_run r;
    tiny_init(&r.m, true);
    tiny_quantize_mats(&r.m, AGX_TYPE_Q5_0);
    tiny_run_open(&r);
    const tiny *m = &r.m;
    agx_error err;
    assert_int_equal(agx_model_get_config(r.model)->repacked_bytes, 0); /* not before a CPU context */
    agx_context_params cp = agx_context_default_params();
    cp.device = "cpu";
    cp.n_ctx = 32;
    cp.n_threads = 2;
    cp.kv_type = AGX_KV_F32;
    agx_context *c = NULL;
    assert_int_equal(agx_context_create(r.model, &cp, &c, &err), AGX_OK);
    /* every layer matrix has whole groups of 16 rows: all of them, or none on this CPU */
    const uint64_t all = 2ull * (uint64_t)agx_type_row_size(AGX_TYPE_Q5_0, m->E) *
                             (uint64_t)(m->H * m->HD + 2 * m->KV * m->HD + 2 * m->F) +
                         2ull * (uint64_t)(agx_type_row_size(AGX_TYPE_Q5_0, m->H * m->HD) +
                                           agx_type_row_size(AGX_TYPE_Q5_0, m->F)) * (uint64_t)m->E;
    const bool x16 = agx_matmul_x16_size(AGX_TYPE_Q5_0, 16, m->E) > 0;
    if (!x16) agx_test_print_skip("q5_0 model: this CPU has no x16 tiles, so only the rows path is checked");
    assert_int_equal(agx_model_get_config(r.model)->repacked_bytes, x16 ? all : 0);
    /* within the activations' q8_0 rounding */
    check_batch_then_steps(c, m->V, r.tok, TINY_T, r.ref, 2e-2, "q5_0 model", r.one, r.step);
    agx_context_free(c);
    /* a second context finds the model prepared: the same logits */
    assert_int_equal(agx_context_create(r.model, &cp, &c, &err), AGX_OK);
    assert_int_equal(agx_model_get_config(r.model)->repacked_bytes, x16 ? all : 0);
    assert_int_equal(agx_context_eval(c, r.tok, TINY_T, true, r.step, &err), AGX_OK);
    assert_memory_equal(r.step, r.one, sizeof(float) * TINY_T * (size_t)m->V);
    agx_context_free(c);
    tiny_run_close(&r);
}

/* llama3 scaling given only as rope.scaling.* keys == the same factors given as a
 * rope_freqs tensor (computed here with the Meta/HF formula in double). */
static void test_llama3_rope_keys(void **state) {
    (void)state;
    tiny m;
    tiny_init(&m, false);
    const double factor = 8, lo = 1, hi = 4, orig = 64;
    int n_mid = 0, n_scaled = 0;
    for (int i = 0; i < m.HD / 2; i++) {
        const double freq = pow(m.base, -2.0 * i / m.HD), wavelen = 2 * M_PI / freq;
        if (wavelen < orig / hi)
            m.ropef[i] = 1.0f;
        else if (wavelen > orig / lo)
            m.ropef[i] = (float)factor, n_scaled++;
        else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            m.ropef[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
            n_mid++;
        }
    }
    assert_true(n_mid > 0 && n_scaled > 0);   /* all three regimes are exercised */
    char *dir = agx_test_tmpdir();
    char *p_tensor = tiny_write(&m, dir);
    char *p1 = agx_sprintf("%s/with_tensor.gguf", dir);
    assert_int_equal(rename(p_tensor, p1), 0);
    m.llama3_keys = true;
    char *p2 = tiny_write(&m, dir);
    enum { T = 40 };
    int32_t tok[T];
    for (int i = 0; i < T; i++) tok[i] = (i * 7 + 1) % m.V;
    float *out[2];
    for (int f = 0; f < 2; f++) {
        agx_error err;
        agx_model *model = NULL;
        if (agx_model_load(f ? p2 : p1, &model, &err) != AGX_OK) fail_msg("%s", err.message);
        assert_true(agx_model_get_config(model)->has_rope_freqs);
        agx_context_params cp = agx_context_default_params();
        cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
        cp.n_ctx = 64;
        cp.kv_type = AGX_KV_F32;
        agx_context *c = NULL;
        assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
        out[f] = malloc(sizeof(float) * T * (size_t)m.V);
        assert_int_equal(agx_context_eval(c, tok, T, true, out[f], &err), AGX_OK);
        agx_context_free(c);
        agx_model_free(model);
    }
    for (int i = 0; i < T * m.V; i++) assert_true(fabsf(out[0][i] - out[1][i]) <= 1e-4f * (1 + fabsf(out[0][i])));
    free(out[0]), free(out[1]);
    agx_test_rmtree(dir);
    free(dir), free(p_tensor), free(p1), free(p2);
    tiny_free(&m);
}

static void test_context_limits(void **state) {
    (void)state;
    tiny m;
    tiny_init(&m, true);
    char *dir = agx_test_tmpdir();
    char *path = tiny_write(&m, dir);
    agx_error err;
    agx_model *model = NULL;
    assert_int_equal(agx_model_load(path, &model, &err), AGX_OK);
    agx_context_params cp = agx_context_default_params();
    cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
    cp.n_ctx = 8;
    agx_context *c = NULL;
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
    assert_int_equal(agx_context_n_ctx(c), 8);
    int32_t tok[6] = {1, 2, 3, 4, 5, 6};
    float *lg = malloc(sizeof(float) * 6 * (size_t)m.V);
    assert_int_equal(agx_context_eval(c, tok, 6, false, lg, &err), AGX_OK);
    assert_int_equal(agx_context_eval(c, tok, 3, false, lg, &err), AGX_ERR_INFERENCE);
    assert_non_null(strstr(err.message, "context"));
    assert_int_equal(agx_context_n_past(c), 6);   /* unchanged */
    int32_t bad = m.V;
    assert_int_equal(agx_context_eval(c, &bad, 1, false, lg, &err), AGX_ERR_INFERENCE);
    assert_int_equal(agx_context_eval(c, tok, 2, false, lg, &err), AGX_OK);   /* exactly full */
    agx_context_free(c);
    /* the env default is capped by the model's context_length (64) */
    setenv("AGX_CANDLE_CONTEXT_SIZE", "100000", 1);
    cp.n_ctx = 0;
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_OK);
    assert_int_equal(agx_context_n_ctx(c), 64);
    agx_context_free(c);
    setenv("AGX_CANDLE_CONTEXT_SIZE", "lots", 1);
    assert_int_equal(agx_context_create(model, &cp, &c, &err), AGX_ERR_CONFIG);
    unsetenv("AGX_CANDLE_CONTEXT_SIZE");
    free(lg);
    agx_model_free(model);
    agx_test_rmtree(dir);
    free(dir), free(path);
    tiny_free(&m);
}

/* One model, several threads, each with its own context: same logits as alone. */
typedef struct ctx_thread {
    const agx_model *m;
    const int32_t *tok;
    int n;
    float *out;
    int rc;
} ctx_thread;

static void *ctx_thread_main(void *arg) {
    ctx_thread *t = arg;
    agx_error err;
    agx_context_params cp = agx_context_default_params();
    cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
    cp.n_ctx = 32;
    cp.n_threads = 2;
    agx_context *c = NULL;
    t->rc = agx_context_create(t->m, &cp, &c, &err);
    if (t->rc != AGX_OK) return NULL;
    /* prefill half, then decode the rest one token at a time */
    t->rc = agx_context_eval(c, t->tok, t->n / 2, false, t->out, &err);
    for (int i = t->n / 2; i < t->n && t->rc == AGX_OK; i++) t->rc = agx_context_eval(c, &t->tok[i], 1, false, t->out, &err);
    agx_context_free(c);
    return NULL;
}

static void test_contexts_in_parallel(void **state) {
    (void)state;
    tiny m;
    tiny_init(&m, true);
    char *dir = agx_test_tmpdir();
    char *path = tiny_write(&m, dir);
    agx_error err;
    agx_model *model = NULL;
    assert_int_equal(agx_model_load(path, &model, &err), AGX_OK);
    enum { NT = 3, T = 20 };
    int32_t tok[NT][T];
    ctx_thread th[NT], alone[NT];
    pthread_t pt[NT];
    for (int k = 0; k < NT; k++) {
        for (int i = 0; i < T; i++) tok[k][i] = (i * (k + 3) + k) % m.V;
        alone[k] = (ctx_thread){model, tok[k], T, malloc(sizeof(float) * (size_t)m.V), -1};
        th[k] = (ctx_thread){model, tok[k], T, malloc(sizeof(float) * (size_t)m.V), -1};
        ctx_thread_main(&alone[k]);
        assert_int_equal(alone[k].rc, AGX_OK);
    }
    for (int k = 0; k < NT; k++) assert_int_equal(pthread_create(&pt[k], NULL, ctx_thread_main, &th[k]), 0);
    for (int k = 0; k < NT; k++) {
        pthread_join(pt[k], NULL);
        assert_int_equal(th[k].rc, AGX_OK);
        assert_memory_equal(th[k].out, alone[k].out, sizeof(float) * (size_t)m.V);
        free(th[k].out), free(alone[k].out);
    }
    agx_model_free(model);
    agx_test_rmtree(dir);
    free(dir), free(path);
    tiny_free(&m);
}

static void test_unsupported_arch(void **state) {
    (void)state;
    char *dir = agx_test_tmpdir();
    char *path = agx_sprintf("%s/x.gguf", dir);
    agx_error err;
    agx_gguf_writer *w = agx_gguf_writer_new();
    agx_gguf_writer_add_str(w, "general.architecture", "gpt2", &err);
    assert_int_equal(agx_gguf_writer_write(w, path, &err), AGX_OK);
    agx_gguf_writer_free(w);
    agx_model *m = NULL;
    assert_int_equal(agx_model_load(path, &m, &err), AGX_ERR_LOAD);
    assert_null(m);
    assert_non_null(strstr(err.message, "gpt2"));
    assert_non_null(strstr(err.message, "qwen2"));
    agx_test_rmtree(dir);
    free(dir), free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_softmax_swiglu),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention_gqa),
        cmocka_unit_test(test_decode_order_kernels),
        cmocka_unit_test(test_model_qwen2_vs_scalar),
        cmocka_unit_test(test_model_llama_vs_scalar),
        cmocka_unit_test(test_model_q5_0_repacked),
        cmocka_unit_test(test_llama3_rope_keys),
        cmocka_unit_test(test_context_limits),
        cmocka_unit_test(test_contexts_in_parallel),
        cmocka_unit_test(test_unsupported_arch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
