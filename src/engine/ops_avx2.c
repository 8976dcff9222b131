/* ops_avx2.c — AVX2/FMA/F16C versions of the ops.c vector kernels (f32 dot,
 * axpy, f16<->f32 rows). Only called when the CPU has these features. */
#include <immintrin.h>
#include <math.h>

#include "engine/ops_internal.h"

void agx_ops_f16_to_f32_avx2(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

void agx_ops_f32_to_f16_avx2(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

/* exp(x) for 8 floats: the range-reduced polynomial llama.cpp uses for its
 * vectorized silu (ggml_v_expf, ~1.5 ulp), so SwiGLU matches it lane for lane. */
static inline __m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1))));
    const __m256i c = _mm256_castps_si256(
        _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(126), _CMP_GT_OQ));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    if (!_mm256_movemask_ps(_mm256_castsi256_ps(c))) return _mm256_fmadd_ps(j, k, k);
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256i d = _mm256_castps_si256(
        _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), n), _mm256_set1_ps(192), _CMP_GT_OQ));
    return _mm256_or_ps(
        _mm256_and_ps(_mm256_castsi256_ps(d), _mm256_mul_ps(s1, s1)),
        _mm256_andnot_ps(_mm256_castsi256_ps(d),
                         _mm256_or_ps(_mm256_and_ps(_mm256_castsi256_ps(c), _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                                      _mm256_andnot_ps(_mm256_castsi256_ps(c), _mm256_fmadd_ps(k, j, k)))));
}

void agx_ops_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i);
        const __m256 silu = _mm256_div_ps(x, _mm256_add_ps(one, v_expf(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + __builtin_expf(-gate[i])) * up[i];
}

static inline float hsum8(__m256 s) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* scores[s] = scale * <q, k[s]> for s < n; four keys per pass share the q loads. */
void agx_ops_qk_avx2(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores) {
    const int hd8 = hd & ~7;
    int s = 0;
    for (; s + 4 <= n; s += 4) {
        const float *k0 = k + s * ks, *k1 = k0 + ks, *k2 = k1 + ks, *k3 = k2 + ks;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (int i = 0; i < hd8; i += 8) {
            const __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
        }
        /* transpose-reduce the four accumulators into one vector of 4 sums */
        const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
        const __m256 h = _mm256_hadd_ps(h01, h23);
        __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        float tail[4] = {0, 0, 0, 0};
        for (int i = hd8; i < hd; i++) {
            tail[0] += q[i] * k0[i], tail[1] += q[i] * k1[i], tail[2] += q[i] * k2[i], tail[3] += q[i] * k3[i];
        }
        r = _mm_mul_ps(_mm_add_ps(r, _mm_loadu_ps(tail)), _mm_set1_ps(scale));
        _mm_storeu_ps(scores + s, r);
    }
    for (; s < n; s++) {
        const float *kr = k + s * ks;
        __m256 a = _mm256_setzero_ps();
        for (int i = 0; i < hd8; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kr + i), a);
        float r = hsum8(a);
        for (int i = hd8; i < hd; i++) r += q[i] * kr[i];
        scores[s] = r * scale;
    }
}

/* out[i] += sum_s p[s] * v[s][i]: 64 output columns stay in registers while
 * streaming over the rows. */
void agx_ops_pv_avx2(const float *p, const float *v, int64_t vs, int n, int hd, float *out) {
    int c = 0;
    for (; c + 64 <= hd; c += 64) {
        __m256 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm256_loadu_ps(out + c + 8 * j);
        for (int s = 0; s < n; s++) {
            const __m256 w = _mm256_broadcast_ss(p + s);
            const float *vr = v + s * vs + c;
            for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vr + 8 * j), a[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + c + 8 * j, a[j]);
    }
    for (; c + 8 <= hd; c += 8) {
        __m256 a = _mm256_loadu_ps(out + c);
        for (int s = 0; s < n; s++) a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + s), _mm256_loadu_ps(v + s * vs + c), a);
        _mm256_storeu_ps(out + c, a);
    }
    for (; c < hd; c++) {
        float a = out[c];
        for (int s = 0; s < n; s++) a += p[s] * v[s * vs + c];
        out[c] = a;
    }
}

/* softmax in place as ggml_vec_soft_max_f32: exp through v_expf, the row taken
 * in groups of 16 (a partial last group padded with exp(-inf) = 0, as
 * llama.cpp's rows are padded), each group summed in float in the order of
 * _mm512_reduce_add_ps and accumulated in double; then one float scale. */
void agx_ops_softmax_avx2(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    const __m256 vmax = _mm256_set1_ps(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        float buf[16];
        const int64_t m = n - i < 16 ? n - i : 16;
        for (int l = 0; l < 16; l++) buf[l] = l < m ? x[i + l] : -INFINITY;
        const __m256 lo = v_expf(_mm256_sub_ps(_mm256_loadu_ps(buf), vmax));
        const __m256 hi = v_expf(_mm256_sub_ps(_mm256_loadu_ps(buf + 8), vmax));
        _mm256_storeu_ps(buf, lo);
        _mm256_storeu_ps(buf + 8, hi);
        for (int l = 0; l < m; l++) x[i + l] = buf[l];
        const __m256 t3 = _mm256_add_ps(hi, lo);
        const __m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
        const __m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
        sum += (double)(_mm_cvtss_f32(t8) + _mm_cvtss_f32(_mm_shuffle_ps(t8, t8, 1)));
    }
    const float inv = (float)(1.0 / sum);
    const __m256 vinv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; i++) x[i] *= inv;
}
