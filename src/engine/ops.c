/* ops.c — RMSNorm, RoPE, softmax, SwiGLU and GQA attention for the forward pass
 * (see ops.h). Hot inner loops (dot, axpy, f16 rows) go through a small kernel
 * table with an AVX2/F16C version picked from CPU features (ops_avx2.c). */
#include "agx/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agx/quant.h"
#include "agx/util.h"
#include "engine/ops_internal.h"
#include "engine/threadpool_impl.h"

/* ---- portable kernels ---- */
static void qk_ref(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores) {
    for (int s = 0; s < n; s++) {
        const float *kr = k + s * ks;
        float acc[8] = {0};
        int i = 0;
        for (; i + 8 <= hd; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += q[i + j] * kr[i + j];
        float r = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < hd; i++) r += q[i] * kr[i];
        scores[s] = r * scale;
    }
}
static void pv_ref(const float *p, const float *v, int64_t vs, int n, int hd, float *out) {
    for (int s = 0; s < n; s++)
        for (int i = 0; i < hd; i++) out[i] += p[s] * v[s * vs + i];
}
/* llama.cpp's single-query order, portable: ggml_vec_dot_f32's 4x16 lanes over
 * steps of 64, the (0+2)+(1+3) combine and GCC's _mm512_reduce_add_ps tree,
 * then the rest in double. x is read with stride xs; x[i] for i >= n_valid is 0. */
static float red16_ref(const float *a) {
    float t3[8], t6[4];
    for (int l = 0; l < 8; l++) t3[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++) t6[l] = t3[l + 4] + t3[l];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}
static float dot_ggml_ref(const float *x, int64_t xs, const float *y, int n, int n_valid) {
    const int np = n & ~63;
    float sum[4][16] = {{0}};
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) {
                const int e = i + j * 16 + l;
                sum[j][l] = fmaf(e < n_valid ? x[(int64_t)e * xs] : 0.0f, y[e], sum[j][l]);
            }
    for (int l = 0; l < 16; l++) sum[0][l] = (sum[0][l] + sum[2][l]) + (sum[1][l] + sum[3][l]);
    double r = red16_ref(sum[0]);
    for (int i = np; i < n; i++) r += (double)((i < n_valid ? x[(int64_t)i * xs] : 0.0f) * y[i]);
    return (float)r;
}
static void qk_dec_ref(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores) {
    for (int s = 0; s < n; s++) scores[s] = dot_ggml_ref(k + s * ks, 1, q, hd, hd) * scale;
}
static void pv_dec_ref(const float *p, const float *v, int64_t vs, int n, int n_kv, int hd, float *out, float *acc) {
    /* p is read up to n_kv (the caller zeroes the padding) */
    (void)acc;
    for (int i = 0; i < hd; i++) out[i] = dot_ggml_ref(v + i, vs, p, n_kv, n);
}
/* AVX2 tables: the fast tiled kernels (not llama.cpp's decode order) */
static void pv_dec_avx2(const float *p, const float *v, int64_t vs, int n, int n_kv, int hd, float *out, float *acc) {
    (void)n_kv, (void)acc;
    memset(out, 0, sizeof(float) * (size_t)hd);
    agx_ops_pv_avx2(p, v, vs, n, hd, out);
}

static void softmax_ref(float *x, int64_t n) {
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = (x[i] == -INFINITY) ? 0.0f : expf(x[i] - max);
        x[i] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
static void f16_to_f32_ref(const uint16_t *src, float *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = agx_fp16_to_fp32(src[i]);
}
static void f32_to_f16_ref(const float *src, uint16_t *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = agx_fp32_to_fp16(src[i]);
}

static void swiglu_ref(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float g = gate[i];
        out[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

static void rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, float eps) {
    /* llama.cpp accumulates the sum of squares in double (ggml_float). */
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w)
        for (int64_t i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
    else
        for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale;
}

static const agx_ops_kernels kernels_ref = {qk_ref,         pv_ref,     softmax_ref, qk_dec_ref, pv_dec_ref,
                                            f16_to_f32_ref, f32_to_f16_ref, swiglu_ref, rmsnorm_ref};
static const agx_ops_kernels kernels_avx2 = {agx_ops_qk_avx2, agx_ops_pv_avx2, agx_ops_softmax_avx2,
                                             agx_ops_qk_avx2, pv_dec_avx2,
                                             agx_ops_f16_to_f32_avx2, agx_ops_f32_to_f16_avx2, agx_ops_swiglu_avx2,
                                             rmsnorm_ref};
static const agx_ops_kernels kernels_avx512 = {agx_ops_qk_avx512, agx_ops_pv_avx512, agx_ops_softmax_avx2,
                                               agx_ops_qk_dec_avx512, agx_ops_pv_dec_avx512,
                                               agx_ops_f16_to_f32_avx512, agx_ops_f32_to_f16_avx2,
                                               agx_ops_swiglu_avx2, agx_ops_rmsnorm_avx512};

/* The table for a level, NULL when this CPU lacks it. Uses the engine's
 * one-time CPU detection (quant.h); the tables themselves are constant. */
const agx_ops_kernels *agx_ops_kernels_for(const char *isa) {
    const agx_cpu_features *f = agx_cpu_features_get();
    const bool avx2 = f->avx2 && f->fma && f->f16c;
    if (strcmp(isa, "scalar") == 0) return &kernels_ref;
    if (strcmp(isa, "avx2") == 0) return avx2 ? &kernels_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0)   /* ops_avx512.c is built with the same flags as the matmul kernels */
        return avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni ? &kernels_avx512 : NULL;
    return NULL;
}

/* The best level agx_cpu_isa_name() allows (AGX_CPU_ISA=scalar|avx2 forces a
 * lower one, as for the matmul kernels). */
const agx_ops_kernels *agx_ops_kernels_get(void) {
    const agx_ops_kernels *k = agx_ops_kernels_for(agx_cpu_isa_name());
    if (!k) k = agx_ops_kernels_for("avx2");
    return k ? k : &kernels_ref;
}

/* ---- elementwise ---- */
void agx_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    agx_ops_kernels_get()->rmsnorm(out, x, w, n, eps);
}

void agx_softmax(float *x, int64_t n) {
    if (n > 0) agx_ops_kernels_get()->softmax(x, n);
}

void agx_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    agx_ops_kernels_get()->swiglu(out, gate, up, n);
}

void agx_add_inplace(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- RoPE ---- */
void agx_rope_cache(const agx_rope_params *p, int64_t pos, float *cs) {
    /* Same recurrence as ggml_rope_cache_init: theta_i = pos * theta_scale^i in
     * float, divided by the frequency factor, times the linear scale. */
    const float theta_scale = powf(p->freq_base, -2.0f / (float)p->n_dims);
    float theta = (float)pos;
    for (int i = 0; i < p->n_dims / 2; i++) {
        const float ff = p->freq_factors ? p->freq_factors[i] : 1.0f;
        const float t = (theta / ff) * p->freq_scale;
        cs[2 * i] = cosf(t);
        cs[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
}

void agx_rope_apply(const agx_rope_params *p, const float *cs, float *x, int n_heads, int head_dim) {
    const int half = p->n_dims / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1];
            /* normal: adjacent pairs; NeoX: element i with i + n_dims/2 */
            const int a = p->style == AGX_ROPE_NEOX ? i : 2 * i;
            const int b = p->style == AGX_ROPE_NEOX ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

/* ---- KV cache rows ---- */
void agx_kv_store(agx_kv_type t, void *dst, const float *src, int64_t n) {
    if (t == AGX_KV_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        agx_ops_kernels_get()->f32_to_f16(src, dst, (int)n);
}

/* ---- attention ---- */
enum {
    ATTN_TOKEN_BLOCK = 32,   /* queries per work item: kv rows are converted once per block */
    ATTN_KEY_TILE = 64       /* keys per tile: a tile of K or V rows stays in L1 across queries */
};

size_t agx_attention_scratch_floats(const agx_attn_params *p, int64_t n_ctx) {
    /* scores of every (query, head) of a block + (f16 cache) one group's K and V rows as f32 */
    const size_t group = (size_t)(p->n_head / (p->n_head_kv > 0 ? p->n_head_kv : 1));
    return (size_t)ATTN_TOKEN_BLOCK * group * (size_t)n_ctx + 64 * (size_t)p->head_dim +
           (p->kv_type == AGX_KV_F16 ? 2 * (size_t)n_ctx * (size_t)p->head_dim : 0);
}

typedef struct attn_job {
    const agx_attn_params *p;
    const agx_ops_kernels *kern;
    const float *q;
    float *out;
    int n_tok;
    int64_t pos0;
    _Atomic int next;   /* work items are taken from this counter (dynamic pool jobs) */
} attn_job;

/* One work item = (kv head g, block of up to ATTN_TOKEN_BLOCK queries), taken
 * from a shared counter so that any subset of the pool finishes the job: every
 * query head of the group, for every token of the block, over its causal span,
 * walking the keys (then the values) tile by tile so each tile is reused from
 * L1 by all queries of the block. */
static void attn_worker(int ith, int nth, void *arg) {
    const attn_job *j = arg;
    const agx_attn_params *p = j->p;
    const agx_ops_kernels *K = j->kern;
    const int hd = p->head_dim, group = p->n_head / p->n_head_kv;
    const int64_t kv_stride = (int64_t)p->n_head_kv * hd, q_stride = (int64_t)p->n_head * hd;
    const int64_t n_used = j->pos0 + j->n_tok;
    const int n_blocks = (j->n_tok + ATTN_TOKEN_BLOCK - 1) / ATTN_TOKEN_BLOCK;
    const int n_items = p->n_head_kv * n_blocks;
    (void)nth;
    float *scratch = NULL, *owned = NULL, *scores = NULL, *kf = NULL, *vf = NULL, *acc = NULL;

    for (;;) {
        const int it = atomic_fetch_add_explicit((_Atomic int *)&j->next, 1, memory_order_relaxed);
        if (it >= n_items) break;
        if (!scratch) {
            const size_t need = agx_attention_scratch_floats(p, n_used);
            scratch = p->scratch ? p->scratch + (size_t)ith * p->scratch_per_thread : NULL;
            if (!scratch || p->scratch_per_thread < need) {
                scratch = owned = malloc(sizeof(float) * need);
                if (!owned) abort();   /* a few MB at most; nothing sensible to do without it */
            }
            scores = scratch;
            /* scores [block][group][n_used] | acc [64][hd] | (f16 cache) K, V rows as f32 */
            acc = scratch + (size_t)ATTN_TOKEN_BLOCK * (size_t)group * (size_t)n_used;
            kf = acc + 64 * (size_t)hd;
            vf = kf + n_used * hd;
        }
        /* the longest (last) token blocks first, for balance */
        const int g = it % p->n_head_kv, b = n_blocks - 1 - it / p->n_head_kv;
        const int t0 = b * ATTN_TOKEN_BLOCK, t1 = t0 + ATTN_TOKEN_BLOCK < j->n_tok ? t0 + ATTN_TOKEN_BLOCK : j->n_tok;
        const int64_t span = j->pos0 + t1;   /* rows the last query of the block sees */
        const float *kp, *vp;
        int64_t ks;
        if (p->kv_type == AGX_KV_F32) {
            kp = (const float *)p->k + (int64_t)g * hd;
            vp = (const float *)p->v + (int64_t)g * hd;
            ks = kv_stride;
        } else {
            const uint16_t *k16 = (const uint16_t *)p->k + (int64_t)g * hd, *v16 = (const uint16_t *)p->v + (int64_t)g * hd;
            for (int64_t s = 0; s < span; s++) {
                K->f16_to_f32(k16 + s * kv_stride, kf + s * hd, hd);
                K->f16_to_f32(v16 + s * kv_stride, vf + s * hd, hd);
            }
            kp = kf, vp = vf, ks = hd;
        }
        if (j->n_tok == 1) {
            /* a decode step: llama.cpp's single-query summation order, over a
             * row it pads to a multiple of 32 positions */
            const int n_pos = (int)(j->pos0 + 1), n_kv = (n_pos + 31) / 32 * 32;
            for (int h = 0; h < group; h++) {
                const int64_t off = ((int64_t)g * group + h) * hd;
                K->qk_dec(j->q + off, kp, ks, n_pos, hd, p->scale, scores);
                K->softmax(scores, n_pos);
                for (int s = n_pos; s < n_kv; s++) scores[s] = 0.0f;
                K->pv_dec(scores, vp, ks, n_pos, n_kv, hd, j->out + off, acc);
            }
            continue;
        }
#define ROW(t, h) (scores + ((size_t)((t) - t0) * (size_t)group + (size_t)(h)) * (size_t)span)
#define QOFF(t, h) ((int64_t)(t) * q_stride + ((int64_t)g * group + (h)) * hd)
        for (int64_t s0 = 0; s0 < span; s0 += ATTN_KEY_TILE)
            for (int t = t0; t < t1; t++) {
                const int64_t n_pos = j->pos0 + t + 1;   /* causal: positions 0..pos0+t */
                if (s0 >= n_pos) continue;
                const int cnt = (int)(n_pos - s0 < ATTN_KEY_TILE ? n_pos - s0 : ATTN_KEY_TILE);
                for (int h = 0; h < group; h++) K->qk(j->q + QOFF(t, h), kp + s0 * ks, ks, cnt, hd, p->scale, ROW(t, h) + s0);
            }
        for (int t = t0; t < t1; t++)
            for (int h = 0; h < group; h++) {
                K->softmax(ROW(t, h), j->pos0 + t + 1);
                memset(j->out + QOFF(t, h), 0, sizeof(float) * (size_t)hd);
            }
        for (int64_t s0 = 0; s0 < span; s0 += ATTN_KEY_TILE)
            for (int t = t0; t < t1; t++) {
                const int64_t n_pos = j->pos0 + t + 1;
                if (s0 >= n_pos) continue;
                const int cnt = (int)(n_pos - s0 < ATTN_KEY_TILE ? n_pos - s0 : ATTN_KEY_TILE);
                for (int h = 0; h < group; h++) K->pv(ROW(t, h) + s0, vp + s0 * ks, ks, cnt, hd, j->out + QOFF(t, h));
            }
#undef ROW
#undef QOFF
    }
    free(owned);
}

void agx_attention(agx_threadpool *tp, const agx_attn_params *p, const float *q, int n_tok,
                   int64_t pos0, float *out) {
    attn_job j = {p, agx_ops_kernels_get(), q, out, n_tok, pos0, 0};
    if (tp)
        agx_threadpool_run_dynamic(tp, attn_worker, &j);
    else
        attn_worker(0, 1, &j);
}
