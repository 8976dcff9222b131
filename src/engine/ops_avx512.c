/* ops_avx512.c — AVX-512 versions of the attention inner loops (q.k over a
 * tile of keys, accumulation of p*v, f16 rows): 16 lanes, and a 128-wide head
 * fits in 8 registers. Only called when the CPU has AVX-512F. */
#include <immintrin.h>

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
