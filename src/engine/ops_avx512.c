/* ops_avx512.c — AVX-512 versions of the attention inner loops (q.k over a
 * tile of keys, accumulation of p*v, f16 rows): 16 lanes, and a 128-wide head
 * fits in 8 registers; RMSNorm. Only called when the CPU has AVX-512F. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "engine/ops_internal.h"

void agx_ops_qk_avx512(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores) {
    const int hd16 = hd & ~15;
    const __mmask16 tail = (__mmask16)((1u << (hd - hd16)) - 1);
    int s = 0;
    for (; s + 4 <= n; s += 4) {
        const float *k0 = k + s * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        int i = 0;
        for (; i < hd16; i += 16) {
            const __m512 qv = _mm512_loadu_ps(q + i);
            a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + i), a0);
            a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k1 + i), a1);
            a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k2 + i), a2);
            a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k3 + i), a3);
        }
        if (tail) {
            const __m512 qv = _mm512_maskz_loadu_ps(tail, q + i);
            a0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(tail, k0 + i), a0);
            a1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(tail, k1 + i), a1);
            a2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(tail, k2 + i), a2);
            a3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(tail, k3 + i), a3);
        }
        scores[s] = _mm512_reduce_add_ps(a0) * scale;
        scores[s + 1] = _mm512_reduce_add_ps(a1) * scale;
        scores[s + 2] = _mm512_reduce_add_ps(a2) * scale;
        scores[s + 3] = _mm512_reduce_add_ps(a3) * scale;
    }
    for (; s < n; s++) {
        const float *kr = k + s * ks;
        __m512 a = _mm512_setzero_ps();
        int i = 0;
        for (; i < hd16; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(kr + i), a);
        if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + i), _mm512_maskz_loadu_ps(tail, kr + i), a);
        scores[s] = _mm512_reduce_add_ps(a) * scale;
    }
}

void agx_ops_pv_avx512(const float *p, const float *v, int64_t vs, int n, int hd, float *out) {
    int c = 0;
    for (; c + 128 <= hd; c += 128) {
        __m512 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm512_loadu_ps(out + c + 16 * j);
        for (int s = 0; s < n; s++) {
            const __m512 w = _mm512_set1_ps(p[s]);
            const float *vr = v + s * vs + c;
            for (int j = 0; j < 8; j++) a[j] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + 16 * j), a[j]);
        }
        for (int j = 0; j < 8; j++) _mm512_storeu_ps(out + c + 16 * j, a[j]);
    }
    for (; c + 64 <= hd; c += 64) {   /* e.g. head_dim 64: four independent chains */
        __m512 a0 = _mm512_loadu_ps(out + c), a1 = _mm512_loadu_ps(out + c + 16);
        __m512 a2 = _mm512_loadu_ps(out + c + 32), a3 = _mm512_loadu_ps(out + c + 48);
        for (int s = 0; s < n; s++) {
            const __m512 w = _mm512_set1_ps(p[s]);
            const float *vr = v + s * vs + c;
            a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr), a0);
            a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + 16), a1);
            a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + 32), a2);
            a3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + 48), a3);
        }
        _mm512_storeu_ps(out + c, a0);
        _mm512_storeu_ps(out + c + 16, a1);
        _mm512_storeu_ps(out + c + 32, a2);
        _mm512_storeu_ps(out + c + 48, a3);
    }
    for (; c < hd; c += 16) {
        const __mmask16 m = hd - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - c)) - 1);
        __m512 a = _mm512_maskz_loadu_ps(m, out + c);
        for (int s = 0; s < n; s++)
            a = _mm512_fmadd_ps(_mm512_set1_ps(p[s]), _mm512_maskz_loadu_ps(m, v + s * vs + c), a);
        _mm512_mask_storeu_ps(out + c, m, a);
    }
}

void agx_ops_f16_to_f32_avx512(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

/* RMSNorm: squares formed in float and summed in double (as llama.cpp's
 * ggml_float sum), then (x * scale) * w in float, lane for lane. */
void agx_ops_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 sq = _mm512_mul_ps(v, v);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(sq)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq), 1))));
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    const __m512 vs = _mm512_set1_ps(scale);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
        if (w) y = _mm512_mul_ps(y, _mm512_loadu_ps(w + i));
        _mm512_storeu_ps(out + i, y);
    }
    for (; i < n; i++) out[i] = w ? (x[i] * scale) * w[i] : x[i] * scale;
}

/* ---- decode-step attention in llama.cpp's summation order ----
 * For a single query llama.cpp (F32 cache, no flash attention) computes K.q and
 * V^T.p with ggml_vec_dot_f32: 4 accumulators of 16 lanes over steps of 64
 * elements, combined (0+2, 1+3, then the two) and _mm512_reduce_add_ps, then
 * the elements past the last full step added one by one in double. Matching
 * that order makes single-token logits agree with llama.cpp bit for bit when
 * the matmuls do (quantized models flip activation roundings otherwise). */
void agx_ops_qk_dec_avx512(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores) {
    const int np = hd & ~63;
    for (int s = 0; s < n; s++) {
        const float *kr = k + s * ks;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int i = 0; i < np; i += 64) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(kr + i), _mm512_loadu_ps(q + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(kr + i + 16), _mm512_loadu_ps(q + i + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(kr + i + 32), _mm512_loadu_ps(q + i + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(kr + i + 48), _mm512_loadu_ps(q + i + 48), a3);
        }
        a0 = _mm512_add_ps(a0, a2);
        a1 = _mm512_add_ps(a1, a3);
        a0 = _mm512_add_ps(a0, a1);
        double sum = (double)_mm512_reduce_add_ps(a0);
        for (int i = np; i < hd; i++) sum += (double)(kr[i] * q[i]);
        scores[s] = (float)sum * scale;
    }
}

/* out[i] = sum over s < n of v[s][i] * p[s], lanes over s as ggml_vec_dot_f32
 * over the n_kv (padded) positions of V^T row i; acc: 64 * hd floats of
 * scratch. The padding positions (p = 0, v = 0 in llama.cpp) add nothing, but
 * n_kv decides which positions go to the lanes and which to the double tail. */
void agx_ops_pv_dec_avx512(const float *p, const float *v, int64_t vs, int n, int n_kv, int hd, float *out,
                           float *acc) {
    const int np_kv = n_kv & ~63, np = np_kv < n ? np_kv : n;
    const int hd16 = hd & ~15;
    const __mmask16 tm = (__mmask16)((1u << (hd - hd16)) - 1);
    /* acc[lane][i]: lane = position within its 64-block (4 accumulators x 16
     * lanes); the first block stores the products (= fma onto +0), lanes it
     * does not reach (padding only) start at 0 */
    if (np_kv > 0 && n < 64) memset(acc + (size_t)n * (size_t)hd, 0, sizeof(float) * (size_t)(64 - n) * (size_t)hd);
    for (int s = 0; s < np; s++) {
        float *a = acc + (size_t)(s & 63) * (size_t)hd;
        const __m512 w = _mm512_set1_ps(p[s]);
        const float *vr = v + s * vs;
        int i = 0;
        if (s < 64) {
            for (; i < hd16; i += 16) _mm512_storeu_ps(a + i, _mm512_mul_ps(_mm512_loadu_ps(vr + i), w));
            if (tm) _mm512_mask_storeu_ps(a + i, tm, _mm512_mul_ps(_mm512_maskz_loadu_ps(tm, vr + i), w));
            continue;
        }
        for (; i < hd16; i += 16) _mm512_storeu_ps(a + i, _mm512_fmadd_ps(_mm512_loadu_ps(vr + i), w, _mm512_loadu_ps(a + i)));
        if (tm) _mm512_mask_storeu_ps(a + i, tm, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, vr + i), w, _mm512_maskz_loadu_ps(tm, a + i)));
    }
    /* reduce each output's 64 lanes in ggml's order, 16 outputs per vector */
    int i = 0;
    for (; i + 16 <= hd; i += 16) {
        __m512 r = _mm512_setzero_ps();
        if (np > 0) {
            __m512 S[16];
            for (int l = 0; l < 16; l++) {
                const float *c = acc + i;
                const __m512 x02 = _mm512_add_ps(_mm512_loadu_ps(c + (size_t)l * hd), _mm512_loadu_ps(c + (size_t)(32 + l) * hd));
                const __m512 x13 = _mm512_add_ps(_mm512_loadu_ps(c + (size_t)(16 + l) * hd), _mm512_loadu_ps(c + (size_t)(48 + l) * hd));
                S[l] = _mm512_add_ps(x02, x13);
            }
            /* _mm512_reduce_add_ps tree: halves of 8, then 4, then (0+2)+(1+3) */
            for (int l = 0; l < 8; l++) S[l] = _mm512_add_ps(S[l + 8], S[l]);
            for (int l = 0; l < 4; l++) S[l] = _mm512_add_ps(S[l + 4], S[l]);
            r = _mm512_add_ps(_mm512_add_ps(S[0], S[2]), _mm512_add_ps(S[1], S[3]));
        }
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(r));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1)));
        for (int s = np_kv; s < n; s++) {   /* the rest one by one in double */
            const __m512 prod = _mm512_mul_ps(_mm512_loadu_ps(v + s * vs + i), _mm512_set1_ps(p[s]));
            lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(prod)));
            hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(prod), 1))));
        }
        _mm256_storeu_ps(out + i, _mm512_cvtpd_ps(lo));
        _mm256_storeu_ps(out + i + 8, _mm512_cvtpd_ps(hi));
    }
    for (; i < hd; i++) {
        float s16[16] = {0};
        for (int l = 0; l < 16 && np > 0; l++) {
            const float *c = acc + i;
            const float x02 = c[(size_t)l * hd] + c[(size_t)(32 + l) * hd];
            const float x13 = c[(size_t)(16 + l) * hd] + c[(size_t)(48 + l) * hd];
            s16[l] = x02 + x13;
        }
        double sum = (double)_mm512_reduce_add_ps(_mm512_loadu_ps(s16));
        for (int s = np_kv; s < n; s++) sum += (double)(v[s * vs + i] * p[s]);
        out[i] = (float)sum;
    }
}
