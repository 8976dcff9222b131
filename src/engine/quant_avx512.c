/* quant_avx512.c — AVX-512 (F/BW/VL/VNNI) dot and matrix-tile kernels and the
 * fast activation quantizers; quant.c installs them when the CPU has them. */
#include <immintrin.h>
#include <limits.h>
#include <math.h>

#include "engine/quant_impl.h"
#include "engine/quant_ktile.h"

static inline float hmax512(__m512 v) { return _mm512_reduce_max_ps(v); }

/* Same bits as quant.c's act_q8_0 (llama.cpp's x86 run-time q8_0 quantizer:
 * id = 127/amax, products rounded half to even). */
void agx_quantize_row_q8_0_avx512(const float *x, void *vy, int64_t n) {
    agx_block_q8_0 *y = vy;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, x += AGX_QK8_0) {
        const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
        const float amax = hmax512(_mm512_max_ps(_mm512_and_ps(a, absmask), _mm512_and_ps(b, absmask)));
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        const __m512 vid = _mm512_set1_ps(id);
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(a, vid))));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(b, vid))));
    }
}

/* Same bits as the reference q8_K quantizer: nearest_int of the exact
 * product (fused into the magic-number add, as in llama.cpp's native build). */
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
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.f);
        const __m512i lim = _mm512_set1_epi32(127), mant = _mm512_set1_epi32(0x007fffff), off = _mm512_set1_epi32(0x00400000);
        for (int j = 0; j < AGX_QK_K; j += 16) {
            const __m512 v = _mm512_fmadd_ps(vs, _mm512_loadu_ps(x + j), magic);
            __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(v), mant), off);
            q = _mm512_min_epi32(q, lim);
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(q));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1 / iscale;
    }
}


#define AGX_INLINE static inline __attribute__((always_inline))

AGX_INLINE float fp16(agx_half h) { return _cvtsh_ss(h); }

AGX_INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ------------------------------------------------------------ float types */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + 16))), a1);
    }
    for (; i + 16 <= n; i += 16)
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                             _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))), a0);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + i)), a1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AGX_INLINE __m512 bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(bf16x16(x + i), bf16x16(y + i), a0);
        a1 = _mm512_fmadd_ps(bf16x16(x + i + 16), bf16x16(y + i + 16), a1);
    }
    float tail = 0;
    for (; i < n; i++) tail += agx_bf16_to_fp32(x[i]) * agx_bf16_to_fp32(y[i]);
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail;
}

/* ------------------------------------------------- 32-element block types */

/* 32 weights of a q4_0/q4_1 block as bytes 0..15 in element order. */
AGX_INLINE __m256i nib32(const uint8_t *qs) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

AGX_INLINE __m256i nib32_q5(const uint8_t *qs, const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    return _mm256_or_si256(nib32(qs), _mm256_maskz_mov_epi8(h, _mm256_set1_epi8(0x10)));
}

static void dot1_q8_0(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q8_0 *x = vx, *y = vy;
    const int nb = n / 32;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        _Pragma("GCC unroll 4") for (int k = 0; k < 2; k++) {
            const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i + k].qs);
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i + k].qs);
            const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qx), _mm256_sign_epi8(qy, qx));
            const __m256 d = _mm256_set1_ps(fp16(x[i + k].d) * fp16(y[i + k].d));
            if (k == 0) a0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a0);
            else a1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a1);
        }
    }
    for (; i < nb; i++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(qx), _mm256_sign_epi8(qy, qx));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(p), a0);
    }
    *s = hsum256(_mm256_add_ps(a0, a1));
}

/* sum (q - bias) * y = sum q*y - bias * sum y, both with dpbusd */
#define DEF_DOT_Q4Q5_0(NAME, BLK, LOADW, BIAS)                                                           \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                  \
        const BLK *x = vx;                                                                               \
        const agx_block_q8_0 *y = vy;                                                                    \
        const int nb = n / 32;                                                                           \
        const __m256i vb = _mm256_set1_epi8(BIAS);                                                       \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                       \
        for (int i = 0; i < nb; i++) {                                                                   \
            const __m256i qx = LOADW;                                                                    \
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);                             \
            const __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), qx, qy),      \
                                               _mm256_dpbusd_epi32(_mm256_setzero_si256(), vb, qy));     \
            const __m256 d = _mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d));                                \
            if (i & 1) a1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a1);                               \
            else a0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a0);                                     \
        }                                                                                                \
        *s = hsum256(_mm256_add_ps(a0, a1));                                                             \
    }
DEF_DOT_Q4Q5_0(dot1_q4_0, agx_block_q4_0, nib32(x[i].qs), 8)
DEF_DOT_Q4Q5_0(dot1_q5_0, agx_block_q5_0, nib32_q5(x[i].qs, x[i].qh), 16)

/* sum (q*d + m) * y = d*dy * sum q*y + m * s  (s = dy * sum y, from q8_1) */
#define DEF_DOT_Q4Q5_1(NAME, BLK, LOADW)                                                                 \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                  \
        const BLK *x = vx;                                                                               \
        const agx_block_q8_1 *y = vy;                                                                    \
        const int nb = n / 32;                                                                           \
        __m256 a0 = _mm256_setzero_ps();                                                                 \
        float summ = 0;                                                                                  \
        for (int i = 0; i < nb; i++) {                                                                   \
            const __m256i qx = LOADW;                                                                    \
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);                             \
            const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), qx, qy);                       \
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(p), a0); \
            summ += fp16(x[i].m) * fp16(y[i].s);                                                         \
        }                                                                                                \
        *s = hsum256(a0) + summ;                                                                         \
    }
DEF_DOT_Q4Q5_1(dot_q4_1, agx_block_q4_1, nib32(x[i].qs))
DEF_DOT_Q4Q5_1(dot_q5_1, agx_block_q5_1, nib32_q5(x[i].qs, x[i].qh))

/* ------------------------------------------------------------- K-quants */

/* The 8 scales and 8 mins of a q4_K/q5_K block as bytes sc0..7, m0..7. */
/* (reads 16 bytes: the 4 after the scales are the block's next field) */
AGX_INLINE __m128i k4_scales_mins(const uint8_t *q) {
    /* u = 3 words of packed 6-bit values; out = sc0..7, m0..7 (ggml's kmask
     * shuffle, in SIMD registers):
     *   [u0 & k1, (u2 & k2) | (u0 >> 6 & k3) << 4, u1 & k1, (u2 >> 4 & k2) | (u1 >> 6 & k3) << 4] */
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
    a = _mm_and_si128(_mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0)),
                      _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i c = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                    _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(a, c);
}

/* vpshufb controls on the 16 bytes above broadcast to every 128-bit lane:
 * int16 lanes 0..15 = scale 2k and 16..31 = scale 2k+1 (one per 32 weights);
 * mins: int16 lane j = min j/2 (one per pair of q8_K bsums). */
#define Z 0x80
static const uint8_t k_ctl_k4[4][64] __attribute__((aligned(64))) = {
#define ROW(a, b) {a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, a, Z, \
                   b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z, b, Z}
    ROW(0, 1), ROW(2, 3), ROW(4, 5), ROW(6, 7)
};
#undef ROW
static const uint8_t k_ctl_mins[32] __attribute__((aligned(32))) = {8,  Z, 8,  Z, 9,  Z, 9,  Z, 10, Z, 10,
                                                                     Z,  11, Z, 11, Z, 12, Z, 12, Z, 13, Z,
                                                                     13, Z, 14, Z, 14, Z, 15, Z, 15, Z};
#undef Z

/* vpermw index vector for q6_K: scale 4k+g to int16 lanes 8g..8g+7 (one per 16). */
static const int16_t k_idx_k6[4][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13,
     14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};
/* One weight block decoded for the VNNI inner loop: w[k] holds weights
 * 64k..64k+63 as unsigned bytes in q8_K order, s[k] the int16 scale of each
 * madd pair, mdup the per-16 multipliers of q8_K's bsums (the mins term), d
 * and dmin the block's float scales (dmin = 0 for q6_K, whose -32 offset is
 * folded into the integer sum). */
typedef struct kdec {
    __m512i w[4], s[4];
    __m256i mdup;
    float d, dmin;
} kdec;

/* 128 bytes of nibbles -> 4 x 64 weights in nibble order: each 32-byte chunk
 * holds 32 weights in its low nibbles and the next 32 in its high nibbles, so
 * a 64-byte load gives chunks 0 and 2 (low), then 1 and 3 (high) */
AGX_INLINE void nibbles_k4_nib(const uint8_t *qs, __m512i w[4]) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        const __m512i z = _mm512_loadu_si512(qs + 64 * h);
        w[2 * h] = _mm512_and_si512(z, m4);
        w[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
    }
}

/* nibble order -> q8_K order (two cross-lane shuffles per 64-byte load) */
AGX_INLINE void k4_nib_to_q8K(__m512i w[4]) {
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        const __m512i lo = w[2 * h], hi = w[2 * h + 1];
        w[2 * h] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
        w[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2));
    }
}

/* q5_K's weights in nibble order: the nibbles plus the fifth bit, bit j of
 * qh[l] belonging to weight 32j + l (w[k] holds sub-blocks sb[k] by 256-bit
 * halves) */
AGX_INLINE void q5_K_nib(const agx_block_q5_K *x, __m512i w[4]) {
    static const int sb[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    nibbles_k4_nib(x->qs, w);
    const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->qh));
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
        const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << sb[k][0])), _mm256_set1_epi8((char)(1 << sb[k][1])), 1);
        w[k] = _mm512_mask_add_epi8(w[k], _mm512_test_epi8_mask(hb, bits), w[k], _mm512_set1_epi8(0x10));
    }
}

AGX_INLINE void k4_scales(const uint8_t *q, kdec *o, const uint8_t ctl[4][64]) {
    const __m512i b = _mm512_broadcast_i32x4(k4_scales_mins(q));
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) o->s[k] = _mm512_shuffle_epi8(b, _mm512_load_si512(ctl[k]));
    o->mdup = _mm256_shuffle_epi8(_mm512_castsi512_si256(b), _mm256_load_si256((const __m256i *)k_ctl_mins));
}

AGX_INLINE void dec_q4_K(const agx_block_q4_K *x, kdec *o) {
    k4_scales(x->scales, o, k_ctl_k4);
    nibbles_k4_nib(x->qs, o->w);
    k4_nib_to_q8K(o->w);
    o->d = fp16(x->d);
    o->dmin = fp16(x->dmin);
}

AGX_INLINE void dec_q5_K(const agx_block_q5_K *x, kdec *o) {
    k4_scales(x->scales, o, k_ctl_k4);
    q5_K_nib(x, o->w);
    k4_nib_to_q8K(o->w);
    o->d = fp16(x->d);
    o->dmin = fp16(x->dmin);
}

AGX_INLINE void dec_q6_K(const agx_block_q6_K *x, kdec *o) {
    const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    _Pragma("GCC unroll 4") for (int h = 0; h < 2; h++) {
        const __m512i ql = _mm512_loadu_si512(x->ql + 64 * h);
        /* qh in both halves (a broadcast load, no shuffle), the upper one >> 2 */
        const __m512i qh2 = _mm512_srlv_epi16(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h))),
                                              _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1));
        o->w[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi16(qh2, 4), m30));
        o->w[2 * h + 1] =
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(qh2, m30));
    }
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) o->s[k] = _mm512_permutexvar_epi16(_mm512_load_si512(k_idx_k6[k]), sc16);
    /* -32 offset: sum_g sc_g * 32 * bsum_g, subtracted in the integer domain */
    o->mdup = _mm256_slli_epi16(_mm512_castsi512_si256(sc16), 5);
    o->d = fp16(x->d);
    o->dmin = 0;
}

/* q2_K: 2-bit planes, 4-bit scale and min per 16 weights */
static const int16_t k_srl_q2[2][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6}};

/* weights 64k'..64k'+63 (k' = 2n + k) are planes 2k, 2k+1 of the 32 bytes of half n */
AGX_INLINE void planes_2bit(const uint8_t *qs, __m512i w[4]) {
    _Pragma("GCC unroll 2") for (int n = 0; n < 2; n++) {
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * n)));
        _Pragma("GCC unroll 2") for (int k = 0; k < 2; k++) w[2 * n + k] =
            _mm512_and_si512(_mm512_srlv_epi16(q, _mm512_load_si512(k_srl_q2[k])), _mm512_set1_epi8(3));
    }
}

AGX_INLINE void dec_q2_K(const agx_block_q2_K *x, kdec *o) {
    const __m128i sc = _mm_loadu_si128((const __m128i *)x->scales);
    const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(sc, _mm_set1_epi8(0x0F))));
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) o->s[k] = _mm512_permutexvar_epi16(_mm512_load_si512(k_idx_k6[k]), sc16);
    o->mdup = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F)));
    planes_2bit(x->qs, o->w);
    o->d = fp16(x->d);
    o->dmin = fp16(x->dmin);
}

/* q3_K: 2-bit planes plus a high bit from hmask (u = q + 4*h in 0..7, value u - 4),
 * 16 signed 6-bit scales; the -4 goes through the bsums like q6_K's -32 */
AGX_INLINE void dec_q3_K(const agx_block_q3_K *x, kdec *o) {
    uint32_t a0, a1, a2;
    memcpy(&a0, x->scales, 4);
    memcpy(&a1, x->scales + 4, 4);
    memcpy(&a2, x->scales + 8, 4);
    const uint32_t m1 = 0x03030303, m2 = 0x0f0f0f0f;
    const __m128i sc8 = _mm_sub_epi8(
        _mm_set_epi32((int)(((a1 >> 4) & m2) | (((a2 >> 6) & m1) << 4)), (int)(((a0 >> 4) & m2) | (((a2 >> 4) & m1) << 4)),
                      (int)((a1 & m2) | (((a2 >> 2) & m1) << 4)), (int)((a0 & m2) | ((a2 & m1) << 4))),
        _mm_set1_epi8(32));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) o->s[k] =
        _mm512_permutexvar_epi16(_mm512_load_si512(k_idx_k6[k]), _mm512_castsi256_si512(sc16));
    o->mdup = _mm256_slli_epi16(sc16, 2);
    planes_2bit(x->qs, o->w);
    const __m512i hm = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->hmask));
    _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
        /* zmm k: planes 2(k%2), 2(k%2)+1 of half k/2 -> hmask bits 4(k/2) + 2(k%2) + {0,1} */
        const int b = 2 * k;
        const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << b)), _mm256_set1_epi8((char)(1 << (b + 1))), 1);
        o->w[k] = _mm512_mask_add_epi8(o->w[k], _mm512_test_epi8_mask(hm, bits), o->w[k], _mm512_set1_epi8(4));
    }
    o->d = fp16(x->d);
    o->dmin = 0;
}

/* sum_k sum scale*(w*a) of a decoded block and 256 activation quants */
AGX_INLINE __m512i kblock_isum(const kdec *b, const int8_t *qs) {
    /* two independent dpwssd chains, joined at the end */
    __m512i i0 = _mm512_setzero_si512(), i1 = _mm512_setzero_si512();
    i0 = _mm512_dpwssd_epi32(i0, _mm512_maddubs_epi16(b->w[0], _mm512_loadu_si512(qs + 0)), b->s[0]);
    i1 = _mm512_dpwssd_epi32(i1, _mm512_maddubs_epi16(b->w[1], _mm512_loadu_si512(qs + 64)), b->s[1]);
    i0 = _mm512_dpwssd_epi32(i0, _mm512_maddubs_epi16(b->w[2], _mm512_loadu_si512(qs + 128)), b->s[2]);
    i1 = _mm512_dpwssd_epi32(i1, _mm512_maddubs_epi16(b->w[3], _mm512_loadu_si512(qs + 192)), b->s[3]);
    return _mm512_add_epi32(i0, i1);
}

/* One (weight block, q8_K block) product accumulated into acc (vec_dot):
 * d*dy * kblock_isum - dmin*dy * sum mins*bsums. */
AGX_INLINE __m512 kblock_dot(const kdec *b, const agx_block_q8_K *y, __m512 acc, int is_q6) {
    __m512i iacc = kblock_isum(b, y->qs);
    const __m256i mi = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), b->mdup);
    const __m512 vdy = _mm512_set1_ps(y->d);
    if (is_q6) {
        iacc = _mm512_sub_epi32(iacc, _mm512_zextsi256_si512(mi));
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc), _mm512_mul_ps(_mm512_set1_ps(b->d), vdy), acc);
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc), _mm512_mul_ps(_mm512_set1_ps(b->d), vdy), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(mi)), _mm512_mul_ps(_mm512_set1_ps(b->dmin), vdy),
                            acc);
}

#define DEF_K_DOT(T, BLK, DEC, IS_Q6)                                          \
    static void dot_##T(int n, float *s, const void *vx, const void *vy) {     \
        const BLK *x = vx;                                                     \
        const agx_block_q8_K *y = vy;                                          \
        __m512 acc = _mm512_setzero_ps();                                      \
        for (int i = 0; i < n / AGX_QK_K; i++) {                               \
            kdec b;                                                            \
            DEC(&x[i], &b);                                                    \
            acc = kblock_dot(&b, &y[i], acc, IS_Q6);                           \
        }                                                                      \
        *s = _mm512_reduce_add_ps(acc);                                        \
    }
DEF_K_DOT(q4_K, agx_block_q4_K, dec_q4_K, 0)
DEF_K_DOT(q5_K, agx_block_q5_K, dec_q5_K, 0)
DEF_K_DOT(q6_K, agx_block_q6_K, dec_q6_K, 1)
DEF_K_DOT(q2_K, agx_block_q2_K, dec_q2_K, 0)
DEF_K_DOT(q3_K, agx_block_q3_K, dec_q3_K, 1)

/* ---- K-quant matrix tiles: their own activation format (agx_act_k) ----
 * For q4_K and q5_K the 16-byte chunks of each 128-weight half go in the
 * order 0 4 2 6 1 5 3 7 (dec_k4_tile's), with the float per-32 sums; q6_K,
 * q2_K and q3_K keep q8_K's order and bsums. */
static const uint8_t k_act_order_q4[32] = {0,  1,  8,  9,  4,  5,  12, 13, 2,  3,  10, 11, 6,  7,  14, 15,
                                           16, 17, 24, 25, 20, 21, 28, 29, 18, 19, 26, 27, 22, 23, 30, 31};

/* q6_K: in 128-bit lane L of register 2h+u, 8-byte chunk u of sub-blocks
 * 8h+L and 8h+4+L (dec_q6_K_tile's) */
static const uint8_t k_act_order_q6[32] = {0,  8,  2,  10, 4,  12, 6,  14, 1,  9,  3,  11, 5,  13, 7,  15,
                                           16, 24, 18, 26, 20, 28, 22, 30, 17, 25, 19, 27, 21, 29, 23, 31};

#define QUANT_ACT_K(name, order, with_dsum)                                                                    \
    static void name(const float *x, void *y, int64_t n) {                                                     \
        agx_act_k_quantize(agx_quantize_row_q8_K_avx512, x, y, n, order, with_dsum);                           \
    }
QUANT_ACT_K(quant_act_k, NULL, false)
QUANT_ACT_K(quant_act_k_q4, k_act_order_q4, true)
QUANT_ACT_K(quant_act_k_q6, k_act_order_q6, false)
#undef QUANT_ACT_K

/* The tiles fold each (block, token) integer sum to 8 lanes before the float
 * part (one extract + add buys half-width conversion and FMAs) and keep one
 * 8-wide accumulator per token. */
AGX_INLINE __m256i fold8(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

/* q6_K, q2_K, q3_K: kblock_dot against act_k (q6_K's 4-sums packed to int16
 * after vpdpbusd measured no faster: its decode is the heavier part) */
AGX_INLINE __m256 kdot_act(const kdec *b, const agx_act_k *y, __m256 acc, int is_q6) {
    const __m256i i8 = fold8(kblock_isum(b, y->qs));
    const __m256i mi = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), b->mdup);
    const __m256 vdy = _mm256_set1_ps(y->d);
    if (is_q6) return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(i8, mi)), _mm256_mul_ps(_mm256_set1_ps(b->d), vdy), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8), _mm256_mul_ps(_mm256_set1_ps(b->d), vdy), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_mul_ps(_mm256_set1_ps(b->dmin), vdy), acc);
}
AGX_INLINE __m256 kdot_act_mins(const kdec *b, const agx_act_k *y, __m256 acc) { return kdot_act(b, y, acc, 0); }
AGX_INLINE __m256 kdot_act_offs(const kdec *b, const agx_act_k *y, __m256 acc) { return kdot_act(b, y, acc, 1); }

/* q4_K: a 4-sum of 4-bit x 8-bit weights fits int16, and so does an 8-sum.
 * The decode puts the first and second 16 weights of sub-blocks 4h, 4h+2,
 * 4h+1, 4h+3 (one per 128-bit lane) into w[2h] and w[2h+1], so two chained
 * vpdpbusd give 8-sums of one sub-block per int32 lane; one pack to int16
 * and one vpmaddwd with the scales finish the block: 5 multiply-port ops per
 * (block, token) where maddubs + dpwssd took 8 (Zen 4 runs the VNNI ops and
 * the FMAs on the same two pipes). */
typedef struct {
    __m512i w[4], s;
    __m256 mf; /* dmin * the 8 mins */
    __m256 d;
} kdec_q4;

#define Z 0x80
#define Q4(a) a, Z, a, Z, a, Z, a, Z
/* int16 lanes of pack(v0, v1), per 128-bit lane L: 4 of v0's (sub-block
 * 0 2 1 3 for L = 0..3), then 4 of v1's (4 6 5 7) */
static const uint8_t k_ctl_q4_tile[64] __attribute__((aligned(64))) = {Q4(0), Q4(4), Q4(2), Q4(6), Q4(1), Q4(5), Q4(3), Q4(7)};
#undef Q4
#undef Z

/* w: the four 64-byte vectors of nibbles_k4_nib (sub-blocks (0, 2), (1, 3),
 * (4, 6), (5, 7) by 256-bit halves) */
AGX_INLINE void dec_k4_tile(const uint8_t *scales, __m512i w[4], agx_half d, agx_half dmin, kdec_q4 *o) {
    const __m128i sm = k4_scales_mins(scales);
    o->s = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(sm), _mm512_load_si512(k_ctl_q4_tile));
    o->mf = _mm256_mul_ps(_mm256_set1_ps(fp16(dmin)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))));
    o->w[0] = _mm512_shuffle_i64x2(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0));
    o->w[1] = _mm512_shuffle_i64x2(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1));
    o->w[2] = _mm512_shuffle_i64x2(w[2], w[3], _MM_SHUFFLE(2, 0, 2, 0));
    o->w[3] = _mm512_shuffle_i64x2(w[2], w[3], _MM_SHUFFLE(3, 1, 3, 1));
    o->d = _mm256_set1_ps(fp16(d));
}

AGX_INLINE void dec_q4_K_tile(const agx_block_q4_K *x, kdec_q4 *o) {
    __m512i w[4];
    nibbles_k4_nib(x->qs, w);
    dec_k4_tile(x->scales, w, x->d, x->dmin, o);
}

/* q5_K: the same with the fifth bit (an 8-sum of 5-bit x 8-bit fits int16 too) */
AGX_INLINE void dec_q5_K_tile(const agx_block_q5_K *x, kdec_q4 *o) {
    __m512i w[4];
    q5_K_nib(x, w);
    dec_k4_tile(x->scales, w, x->d, x->dmin, o);
}

AGX_INLINE __m256 kdot_q4_tile(const kdec_q4 *b, const agx_act_k *y, __m256 acc) {
    const __m512i z = _mm512_setzero_si512();
    const __m512i v0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, b->w[0], _mm512_loadu_si512(y->qs + 0)), b->w[1],
                                           _mm512_loadu_si512(y->qs + 64));
    const __m512i v1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, b->w[2], _mm512_loadu_si512(y->qs + 128)), b->w[3],
                                           _mm512_loadu_si512(y->qs + 192));
    const __m256i i8 = fold8(_mm512_madd_epi16(_mm512_packs_epi32(v0, v1), b->s));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8), _mm256_mul_ps(b->d, _mm256_set1_ps(y->d)), acc);
    return _mm256_fnmadd_ps(b->mf, _mm256_loadu_ps(y->dsum), acc);
}

/* q6_K tile: pairs of maddubs results summed in int16 (a 4-sum of 6-bit x
 * 8-bit fits: 4 * 63 * 128 = 32256) before one vpdpwssd, 6 multiply ops per
 * (block, token) where kblock_isum takes 8. Register 2h+u holds, in 128-bit
 * lane L, chunk u (8 weights) of sub-blocks 8h+L and 8h+4+L: unpacks of the
 * low- and high-nibble planes of half h; k_idx_q6_tile has their scales. */
typedef struct {
    __m512i w[4], s[2];
    __m256i mdup;
    __m256 d;
} kdec_q6;

static const int16_t k_idx_q6_tile[2][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
    {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13, 10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15}};

AGX_INLINE void dec_q6_K_tile(const agx_block_q6_K *x, kdec_q6 *o) {
    kdec planes;
    dec_q6_K(x, &planes);
    const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        o->w[2 * h] = _mm512_unpacklo_epi64(planes.w[2 * h], planes.w[2 * h + 1]);
        o->w[2 * h + 1] = _mm512_unpackhi_epi64(planes.w[2 * h], planes.w[2 * h + 1]);
        o->s[h] = _mm512_permutexvar_epi16(_mm512_load_si512(k_idx_q6_tile[h]), sc16);
    }
    o->mdup = planes.mdup;
    o->d = _mm256_set1_ps(planes.d);
}

AGX_INLINE __m256 kdot_q6_tile(const kdec_q6 *b, const agx_act_k *y, __m256 acc) {
    __m512i i = _mm512_setzero_si512();
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(b->w[2 * h], _mm512_loadu_si512(y->qs + 128 * h)),
                                           _mm512_maddubs_epi16(b->w[2 * h + 1], _mm512_loadu_si512(y->qs + 128 * h + 64)));
        i = _mm512_dpwssd_epi32(i, p, b->s[h]);
    }
    const __m256i mi = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y->bsums), b->mdup);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(fold8(i), mi)), _mm256_mul_ps(b->d, _mm256_set1_ps(y->d)), acc);
}

/* tile_T: one weight row against up to 8 tokens at a time, each block
 * decoded once for all of them, one 8-wide accumulator per token in acc[].
 * The loop nests around it (also for one token): quant_ktile.h. */
#define DEF_K_GEMM(T, BLK, DEC_T, DEC, DOT, CHUNK)                                                            \
    AGX_INLINE void tile_##T(int nb, const BLK *x, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) { \
        __m256 a[8];                                                                                         \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a[t] = acc[t];                                  \
        for (int i = 0; i < nb; i++) {                                                                       \
            DEC_T b;                                                                                         \
            DEC(&x[i], &b);                                                                                  \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a[t] =                                      \
                DOT(&b, (const agx_act_k *)(y + (size_t)t * ldy) + i, a[t]);                                 \
        }                                                                                                    \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = a[t];                                  \
    }                                                                                                        \
    AGX_DEF_K_GEMM(T, BLK, CHUNK)
DEF_K_GEMM(q4_K, agx_block_q4_K, kdec_q4, dec_q4_K_tile, kdot_q4_tile, AGX_K_CHUNK)
DEF_K_GEMM(q6_K, agx_block_q6_K, kdec_q6, dec_q6_K_tile, kdot_q6_tile, INT_MAX)
DEF_K_GEMM(q5_K, agx_block_q5_K, kdec_q4, dec_q5_K_tile, kdot_q4_tile, AGX_K_CHUNK)
DEF_K_GEMM(q2_K, agx_block_q2_K, kdec, dec_q2_K, kdot_act_mins, INT_MAX)
DEF_K_GEMM(q3_K, agx_block_q3_K, kdec, dec_q3_K, kdot_act_offs, INT_MAX)

/* ------------------------------- matrix tiles for 32-element block types */

/* Activation format of these tiles: pairs of q8_0 blocks (same bits as the
 * q8_0 quantizer) with what the inner loop wants ready-made: the scales
 * broadcast to the 8 dpbusd lanes of each block, and the -bias*sum(y)
 * correction of q4_0/q5_0 placed in the first lane of each block. */
typedef struct act_x2 {
    int8_t qs[64];
    int32_t corr[16];
    float d[16];
} act_x2;
_Static_assert(sizeof(act_x2) == 192, "act_x2 layout");

static size_t act_x2_row_size(int64_t n) {
    if (n <= 0 || n % 32) return 0;
    return (size_t)((n / 32 + 1) / 2) * sizeof(act_x2);
}

AGX_INLINE void quant_act_x2(const float *x, void *vy, int64_t n, int bias) {
    act_x2 *y = vy;
    const int64_t nb = n / 32;
    agx_block_q8_0 q[2];
    for (int64_t p = 0; p < (nb + 1) / 2; p++) {
        memset(&y[p], 0, sizeof(y[p]));
        const int nblk = (2 * p + 1 < nb) ? 2 : 1;
        agx_quantize_row_q8_0_avx512(x + 64 * p, q, 32 * nblk);
        for (int k = 0; k < nblk; k++) {
            memcpy(y[p].qs + 32 * k, q[k].qs, 32);
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += q[k].qs[j];
            y[p].corr[8 * k] = -bias * sum;
            const float d = fp16(q[k].d);
            for (int j = 0; j < 8; j++) y[p].d[8 * k + j] = d;
        }
    }
}
static void quant_act_x2_q8(const float *x, void *y, int64_t n) { quant_act_x2(x, y, n, 0); }
static void quant_act_x2_q5(const float *x, void *y, int64_t n) { quant_act_x2(x, y, n, 16); }

/* A pair of weight blocks: w = 64 weights (unsigned for q4_0/q5_0, |w| for
 * q8_0 with the signs in neg), d = their scales broadcast per block. */
typedef struct x2dec {
    __m512i w;
    __mmask64 neg;
    __m512 d;
} x2dec;

AGX_INLINE __m512 dup_d(float a, float b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

AGX_INLINE __m512i pair_nibbles(const uint8_t *qa, const uint8_t *qb) {
    const __m128i va = _mm_loadu_si128((const __m128i *)qa);
    const __m128i vb = qb ? _mm_loadu_si128((const __m128i *)qb) : _mm_setzero_si128();
    const __m256i v = _mm256_set_m128i(vb, va);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m4)),
                                         _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)); /* a.lo a.hi b.lo b.hi */
}

AGX_INLINE void dec2_q4_0(const agx_block_q4_0 *x, int both, x2dec *o) {
    o->w = pair_nibbles(x[0].qs, both ? x[1].qs : NULL);
    o->neg = 0;
    o->d = dup_d(fp16(x[0].d), both ? fp16(x[1].d) : 0.0f);
}

AGX_INLINE void dec2_q5_0(const agx_block_q5_0 *x, int both, x2dec *o) {
    uint32_t ha, hb = 0;
    memcpy(&ha, x[0].qh, 4);
    if (both) memcpy(&hb, x[1].qh, 4);
    const __m512i w = pair_nibbles(x[0].qs, both ? x[1].qs : NULL);
    o->w = _mm512_or_si512(w, _mm512_maskz_mov_epi8(((__mmask64)hb << 32) | ha, _mm512_set1_epi8(0x10)));
    o->neg = 0;
    o->d = dup_d(fp16(x[0].d), both ? fp16(x[1].d) : 0.0f);
}

AGX_INLINE void dec2_q8_0(const agx_block_q8_0 *x, int both, x2dec *o) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)x[0].qs);
    const __m256i b = both ? _mm256_loadu_si256((const __m256i *)x[1].qs) : _mm256_setzero_si256();
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    o->neg = _mm512_movepi8_mask(w);
    o->w = _mm512_abs_epi8(w);
    o->d = dup_d(fp16(x[0].d), both ? fp16(x[1].d) : 0.0f);
}

AGX_INLINE __m512 x2_dot(const x2dec *b, const act_x2 *a, __m512 acc, int is_q8) {
    __m512i y = _mm512_loadu_si512(a->qs);
    __m512i i;
    if (is_q8) {
        y = _mm512_mask_sub_epi8(y, b->neg, _mm512_setzero_si512(), y);
        i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), b->w, y);
    } else {
        i = _mm512_dpbusd_epi32(_mm512_loadu_si512(a->corr), b->w, y);
    }
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(b->d, _mm512_loadu_ps(a->d)), acc);
}

#define DEF_X2_GEMM(T, BLK, DEC, IS_Q8)                                                                    \
    AGX_INLINE void tile_##T(int nb, const BLK *x, const uint8_t *y, size_t ldy, const int NT, float *out,   \
                             size_t ldo) {                                                                 \
        __m512 acc[8];                                                                                     \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();                 \
        for (int p = 0; p < (nb + 1) / 2; p++) {                                                           \
            x2dec b;                                                                                       \
            DEC(&x[2 * p], 2 * p + 1 < nb, &b);                                                            \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =                                 \
                x2_dot(&b, (const act_x2 *)(y + (size_t)t * ldy) + p, acc[t], IS_Q8);                      \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[(size_t)t * ldo] = _mm512_reduce_add_ps(acc[t]); \
    }                                                                                                      \
    static void gemm_##T(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,       \
                         float *out, size_t ldo) {                                                         \
        const int nb = n / 32;                                                                             \
        for (int t0 = 0; t0 < nt; t0 += 8) {                                                               \
            const uint8_t *yt = (const uint8_t *)y + (size_t)t0 * ldy;                                     \
            for (int r = 0; r < nr; r++) {                                                                 \
                const BLK *x = (const BLK *)((const uint8_t *)w + (size_t)r * ldw);                        \
                float *o = out + (size_t)t0 * ldo + r;                                                     \
                switch (nt - t0 < 8 ? nt - t0 : 8) {                                                       \
                case 8: tile_##T(nb, x, yt, ldy, 8, o, ldo); break;                                        \
                case 7: tile_##T(nb, x, yt, ldy, 7, o, ldo); break;                                        \
                case 6: tile_##T(nb, x, yt, ldy, 6, o, ldo); break;                                        \
                case 5: tile_##T(nb, x, yt, ldy, 5, o, ldo); break;                                        \
                case 4: tile_##T(nb, x, yt, ldy, 4, o, ldo); break;                                        \
                case 3: tile_##T(nb, x, yt, ldy, 3, o, ldo); break;                                        \
                case 2: tile_##T(nb, x, yt, ldy, 2, o, ldo); break;                                        \
                default: tile_##T(nb, x, yt, ldy, 1, o, ldo); break;                                       \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

DEF_X2_GEMM(q5_0, agx_block_q5_0, dec2_q5_0, 0)
DEF_X2_GEMM(q8_0, agx_block_q8_0, dec2_q8_0, 1)

/* --------- 32-block decoding with VBMI byte permutes (4 blocks per step) */

/* Four q4_0/q5_0 blocks are loaded as 128 bytes (the tail masked, nothing
 * read past the fourth block) and taken apart with vpermt2b/vpermt2w: each
 * pair's 16 nibble bytes duplicated and shifted by 0/4 per 8 words, the fp16
 * scales and the q5_0 high-bit words gathered in one permute. */
#define VBMI_FN static inline __attribute__((always_inline, target("avx512vbmi")))

typedef struct x4dec {
    __m512i w[2];
    __m512 d[2];
} x4dec;

/* byte index vectors: [a..a+15, a..a+15, b..b+15, b..b+15] */
#define QIDX(a, b)                                                                                           \
    {a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, a + 12, a + 13, a + 14, a + 15,  \
     a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11, a + 12, a + 13, a + 14, a + 15,  \
     b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13, b + 14, b + 15,  \
     b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13, b + 14, b + 15}
static const uint8_t k_qidx_q5_0[2][64] __attribute__((aligned(64))) = {QIDX(6, 28), QIDX(50, 72)};
#undef QIDX
/* word index vectors: q5_0 high-bit words of the 4 blocks in words 0..7, the
 * fp16 scales in words 8..11 */
static const uint16_t k_widx_q5_0[32] __attribute__((aligned(64))) = {1, 2, 12, 13, 23, 24, 34, 35, 0, 11, 22, 33};
static const uint16_t k_nib_shift[32] __attribute__((aligned(64))) = {0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4,
                                                                      0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4};

VBMI_FN void dec4_x0(const uint8_t *p, int bytes, const uint8_t qidx[2][64], const uint16_t *widx, int is_q5,
                     x4dec *o) {
    const __m512i x0 = _mm512_loadu_si512(p);
    /* bytes 64.. of the quad (8 for q4_0, 24 for q5_0) with plain loads:
     * a masked zmm load here is several times slower when streaming from DRAM */
    __m512i x1;
    if (bytes == 72) {
        x1 = _mm512_zextsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 64)));
    } else {
        x1 = _mm512_zextsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 64))),
                                                            _mm_loadl_epi64((const __m128i *)(p + 80)), 1));
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), sh = _mm512_load_si512(k_nib_shift);
    _Pragma("GCC unroll 2") for (int k = 0; k < 2; k++) o->w[k] =
        _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutex2var_epi8(x0, _mm512_load_si512(qidx[k]), x1), sh), m4);
    const __m512i wv = _mm512_permutex2var_epi16(x0, _mm512_load_si512(widx), x1);
    if (is_q5) {
        const __m128i h = _mm512_castsi512_si128(wv);
        const __m512i b16 = _mm512_set1_epi8(0x10);
        o->w[0] = _mm512_mask_add_epi8(o->w[0], _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(h)), o->w[0], b16);
        o->w[1] = _mm512_mask_add_epi8(o->w[1], _cvtu64_mask64((uint64_t)_mm_extract_epi64(h, 1)), o->w[1], b16);
    }
    const __m512 df = _mm512_cvtph_ps(_mm512_castsi512_si256(wv)); /* floats 8..11 = the scales */
    o->d[0] = _mm512_permutexvar_ps(_mm512_set_epi32(9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8), df);
    o->d[1] = _mm512_permutexvar_ps(_mm512_set_epi32(11, 11, 11, 11, 11, 11, 11, 11, 10, 10, 10, 10, 10, 10, 10, 10), df);
}

#define DEF_X4_GEMM(T, BLK, BYTES, QIDX, WIDX, IS_Q5, DEC2)                                                \
    VBMI_FN void tile4_##T(int nb, const BLK *x, const uint8_t *y, size_t ldy, const int NT, float *out,    \
                           size_t ldo) {                                                                   \
        __m512 acc[8];                                                                                     \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();                 \
        int p = 0;                                                                                         \
        for (; 2 * p + 4 <= nb; p += 2) {                                                                  \
            x4dec b;                                                                                       \
            dec4_x0((const uint8_t *)&x[2 * p], BYTES, QIDX, WIDX, IS_Q5, &b);                             \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                         \
                const act_x2 *a = (const act_x2 *)(y + (size_t)t * ldy) + p;                               \
                const __m512i i0 = _mm512_dpbusd_epi32(_mm512_loadu_si512(a[0].corr), b.w[0], _mm512_loadu_si512(a[0].qs)); \
                const __m512i i1 = _mm512_dpbusd_epi32(_mm512_loadu_si512(a[1].corr), b.w[1], _mm512_loadu_si512(a[1].qs)); \
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(b.d[0], _mm512_loadu_ps(a[0].d)), acc[t]); \
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_mul_ps(b.d[1], _mm512_loadu_ps(a[1].d)), acc[t]); \
            }                                                                                              \
        }                                                                                                  \
        for (; p < (nb + 1) / 2; p++) {                                                                    \
            x2dec b;                                                                                       \
            DEC2(&x[2 * p], 2 * p + 1 < nb, &b);                                                           \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =                                 \
                x2_dot(&b, (const act_x2 *)(y + (size_t)t * ldy) + p, acc[t], 0);                          \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) out[(size_t)t * ldo] = _mm512_reduce_add_ps(acc[t]); \
    }                                                                                                      \
    __attribute__((target("avx512vbmi"))) static void gemm4_##T(int n, const void *w, size_t ldw, int nr,  \
                                                               const void *y, size_t ldy, int nt, float *out, \
                                                               size_t ldo) {                               \
        const int nb = n / 32;                                                                             \
        for (int t0 = 0; t0 < nt; t0 += 8) {                                                               \
            const uint8_t *yt = (const uint8_t *)y + (size_t)t0 * ldy;                                     \
            for (int r = 0; r < nr; r++) {                                                                 \
                const BLK *x = (const BLK *)((const uint8_t *)w + (size_t)r * ldw);                        \
                float *o = out + (size_t)t0 * ldo + r;                                                     \
                switch (nt - t0 < 8 ? nt - t0 : 8) {                                                       \
                case 8: tile4_##T(nb, x, yt, ldy, 8, o, ldo); break;                                       \
                case 7: tile4_##T(nb, x, yt, ldy, 7, o, ldo); break;                                       \
                case 6: tile4_##T(nb, x, yt, ldy, 6, o, ldo); break;                                       \
                case 5: tile4_##T(nb, x, yt, ldy, 5, o, ldo); break;                                       \
                case 4: tile4_##T(nb, x, yt, ldy, 4, o, ldo); break;                                       \
                case 3: tile4_##T(nb, x, yt, ldy, 3, o, ldo); break;                                       \
                case 2: tile4_##T(nb, x, yt, ldy, 2, o, ldo); break;                                       \
                default: tile4_##T(nb, x, yt, ldy, 1, o, ldo); break;                                      \
                }                                                                                          \
            }                                                                                              \
        }                                                                                                  \
    }

DEF_X4_GEMM(q5_0, agx_block_q5_0, 88, k_qidx_q5_0, k_widx_q5_0, 1, dec2_q5_0)

/* matrix-vector kernels for q4_0/q5_0/q8_0: two blocks per zmm, the four
 * fp16 scales of a pair converted in one instruction */
AGX_INLINE __m512 pair_scales(agx_half xa, agx_half xb, agx_half ya, agx_half yb) {
    const __m128 f = _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, (short)yb, (short)ya, (short)xb, (short)xa));
    const __m128 p = _mm_mul_ps(f, _mm_movehl_ps(f, f)); /* xa*ya, xb*yb */
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(p));
}

#define Y_PAIR(i)                                                                                      \
    _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[i].qs)),             \
                       _mm256_loadu_si256((const __m256i *)y[(i) + 1].qs), 1)

#define DEF_DOT_PAIR(NAME, BLK, DEC, BIAS, IS_Q8, TAIL)                                                      \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                      \
        const BLK *x = vx;                                                                                   \
        const agx_block_q8_0 *y = vy;                                                                        \
        const int nb = n / 32;                                                                               \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                           \
        const __m512i idx01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);              \
        const __m512i idx23 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);              \
        int i = 0;                                                                                           \
        /* four blocks per step: their 8 fp16 scales converted in one instruction */                        \
        for (; i + 4 <= nb; i += 4) {                                                                        \
            x2dec b0, b1;                                                                                    \
            DEC(&x[i], 1, &b0);                                                                              \
            DEC(&x[i + 2], 1, &b1);                                                                          \
            __m512i y0 = Y_PAIR(i), y1 = Y_PAIR(i + 2);                                                      \
            __m512i p0, p1;                                                                                  \
            if (IS_Q8) {                                                                                     \
                y0 = _mm512_mask_sub_epi8(y0, b0.neg, _mm512_setzero_si512(), y0);                           \
                y1 = _mm512_mask_sub_epi8(y1, b1.neg, _mm512_setzero_si512(), y1);                           \
                p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), b0.w, y0);                                  \
                p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), b1.w, y1);                                  \
            } else {                                                                                         \
                const __m512i vb = _mm512_set1_epi8(BIAS);                                                   \
                p0 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), b0.w, y0),                 \
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, y0));                  \
                p1 = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), b1.w, y1),                 \
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, y1));                  \
            }                                                                                                \
            const __m256 f = _mm256_cvtph_ps(_mm_set_epi16(                                                  \
                (short)y[i + 3].d, (short)y[i + 2].d, (short)y[i + 1].d, (short)y[i].d, (short)x[i + 3].d,   \
                (short)x[i + 2].d, (short)x[i + 1].d, (short)x[i].d));                                       \
            const __m512 prod = _mm512_castps128_ps512(                                                      \
                _mm_mul_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1)));                         \
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(idx01, prod), a0);            \
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(idx23, prod), a1);            \
        }                                                                                                    \
        for (; i + 2 <= nb; i += 2) {                                                                        \
            x2dec b;                                                                                         \
            DEC(&x[i], 1, &b);                                                                               \
            __m512i yv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[i].qs)), \
                                            _mm256_loadu_si256((const __m256i *)y[i + 1].qs), 1);            \
            __m512i p;                                                                                       \
            if (IS_Q8) {                                                                                     \
                yv = _mm512_mask_sub_epi8(yv, b.neg, _mm512_setzero_si512(), yv);                            \
                p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), b.w, yv);                                    \
            } else {                                                                                         \
                p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), b.w, yv),                   \
                                     _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(BIAS), yv)); \
            }                                                                                                \
            const __m512 d = pair_scales(x[i].d, x[i + 1].d, y[i].d, y[i + 1].d);                            \
            if (i & 2) a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, a1);                                   \
            else a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, a0);                                         \
        }                                                                                                    \
        float tail = 0;                                                                                      \
        if (i < nb) TAIL(32, &tail, x + i, y + i);                                                           \
        *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) + tail;                                             \
    }
DEF_DOT_PAIR(dot_q4_0, agx_block_q4_0, dec2_q4_0, 8, 0, dot1_q4_0)
DEF_DOT_PAIR(dot_q5_0, agx_block_q5_0, dec2_q5_0, 16, 0, dot1_q5_0)
DEF_DOT_PAIR(dot_q8_0, agx_block_q8_0, dec2_q8_0, 0, 1, dot1_q8_0)

/* ------------------------- 32-element blocks: 16 rows side by side (VNNI)
 * quant_avx2.c's 8-row layout at 512 bits: dword lane r of w[g] holds
 * weights 4g..4g+3 of row r (a transpose per block, shared by up to 8
 * tokens), a token's activations 4g..4g+3 are broadcast to every lane, and
 * vpdpbusd adds each lane's 4 products straight into int32 (no int16
 * limits): 8 vpdpbusd per (block, token) for 16 rows, one conversion and FMA.
 * q8_0 weights are read as w + 128 (unsigned: AVX-512 has no vpsignb) with
 * 128 * sum(y) in the activations' correction. */
static void quant_act_x16_q4(const float *x, void *y, int64_t n) { agx_act_x8_quantize(agx_quantize_row_q8_0_avx512, x, y, n, 8); }
static void quant_act_x16_q5(const float *x, void *y, int64_t n) { agx_act_x8_quantize(agx_quantize_row_q8_0_avx512, x, y, n, 16); }
static void quant_act_x16_q8(const float *x, void *y, int64_t n) { agx_act_x8_quantize(agx_quantize_row_q8_0_avx512, x, y, n, 128); }

/* the 16 quant bytes of 16 rows' blocks: zmm r of t holds rows r, r+4, r+8,
 * r+12 by 128-bit lanes, so the in-lane 4x4 dword transpose leaves dword
 * lane 4L+k = row 4L+k */
AGX_INLINE void nibbles16(const uint8_t *const qs[16], __m512i w[8]) {
    __m512i t[4];
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {
        __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)qs[r]));
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)qs[r + 4]), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)qs[r + 8]), 2);
        t[r] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)qs[r + 12]), 3);
    }
    const __m512i a = _mm512_unpacklo_epi32(t[0], t[1]), b = _mm512_unpackhi_epi32(t[0], t[1]);
    const __m512i c = _mm512_unpacklo_epi32(t[2], t[3]), e = _mm512_unpackhi_epi32(t[2], t[3]);
    const __m512i u[4] = {_mm512_unpacklo_epi64(a, c), _mm512_unpackhi_epi64(a, c), _mm512_unpacklo_epi64(b, e),
                          _mm512_unpackhi_epi64(b, e)};
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        w[g] = _mm512_and_si512(u[g], m4);
        w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(u[g], 4), m4);
    }
}

AGX_INLINE __m512 scales16(const agx_half *const d[16]) {
    return _mm512_cvtph_ps(_mm256_setr_epi16((short)*d[0], (short)*d[1], (short)*d[2], (short)*d[3], (short)*d[4],
                                             (short)*d[5], (short)*d[6], (short)*d[7], (short)*d[8], (short)*d[9],
                                             (short)*d[10], (short)*d[11], (short)*d[12], (short)*d[13],
                                             (short)*d[14], (short)*d[15]));
}

/* block i of 16 rows of q4_0 or q5_0 (block size bsize, quants at qs_off,
 * the scale first): their nibbles as w[g], d = the scales */
AGX_INLINE void dec16_x0(const uint8_t *const rows[16], int i, size_t bsize, size_t qs_off, __m512i w[8], __m512 *d) {
    const uint8_t *qs[16];
    const agx_half *dp[16];
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k++) {
        const uint8_t *b = rows[k] + (size_t)i * bsize;
        qs[k] = b + qs_off;
        dp[k] = (const agx_half *)(const void *)b;
    }
    nibbles16(qs, w);
    *d = scales16(dp);
}

AGX_INLINE void dec16_q4_0(const uint8_t *const rows[16], int i, __m512i w[8], __m512 *d) {
    dec16_x0(rows, i, sizeof(agx_block_q4_0), offsetof(agx_block_q4_0, qs), w, d);
}

/* q5_0: bit 4(g%2)+k of qh byte g/2 is the fifth bit of byte k of w[g]'s dwords */
static const uint8_t k_q5_qh_byte16[4][64] __attribute__((aligned(64))) = {
#define CTL(c) c, c, c, c, c + 4, c + 4, c + 4, c + 4, c + 8, c + 8, c + 8, c + 8, c + 12, c + 12, c + 12, c + 12
    {CTL(0), CTL(0), CTL(0), CTL(0)}, {CTL(1), CTL(1), CTL(1), CTL(1)}, {CTL(2), CTL(2), CTL(2), CTL(2)},
    {CTL(3), CTL(3), CTL(3), CTL(3)}};
#undef CTL

AGX_INLINE void dec16_q5_0(const uint8_t *const rows[16], int i, __m512i w[8], __m512 *d) {
    dec16_x0(rows, i, sizeof(agx_block_q5_0), offsetof(agx_block_q5_0, qs), w, d);
    int32_t h[16];
    _Pragma("GCC unroll 16") for (int k = 0; k < 16; k++) memcpy(&h[k], ((const agx_block_q5_0 *)rows[k] + i)->qh, 4);
    const __m512i qh = _mm512_loadu_si512(h);
    const __m512i b16 = _mm512_set1_epi8(0x10);
    _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {
        const __m512i m = _mm512_set1_epi32((int)(0x08040201u << (4 * (g & 1))));
        const __mmask64 k = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, _mm512_load_si512(k_q5_qh_byte16[g >> 1])), m);
        w[g] = _mm512_mask_add_epi8(w[g], k, w[g], b16); /* bit 4 is clear: add = or */
    }
}

/* q8_0: rows 0-7 and 8-15 transposed as 8x8 dwords in 256-bit halves */
AGX_INLINE void dec16_q8_0(const uint8_t *const rows[16], int i, __m512i w[8], __m512 *d) {
    const agx_half *dp[16];
    __m256i lo[8], hi[8];
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        const agx_block_q8_0 *b0 = (const agx_block_q8_0 *)rows[k] + i, *b1 = (const agx_block_q8_0 *)rows[k + 8] + i;
        dp[k] = &b0->d;
        dp[k + 8] = &b1->d;
        lo[k] = _mm256_loadu_si256((const __m256i *)b0->qs);
        hi[k] = _mm256_loadu_si256((const __m256i *)b1->qs);
    }
    agx_transpose8x8_epi32(lo);
    agx_transpose8x8_epi32(hi);
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) w[g] =
        _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo[g]), hi[g], 1), bias);
    *d = scales16(dp);
}

/* One block of 16 rows (w, their scales d) against one token's block a,
 * added into acc. For a single token the 8 vpdpbusd go in 4 chains of 2
 * rather than one of 8 (integer sums: the same result), as nothing else
 * hides their latency then. */
AGX_INLINE __m512 dot16_tok(const __m512i w[8], __m512 d, const agx_act_x8 *a, __m512 acc, int split) {
    __m512i c[4] = {_mm512_set1_epi32(-a->corr), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {
        int32_t q;
        memcpy(&q, a->qs + 4 * g, 4);
        const int k = split ? g & 3 : 0;
        c[k] = _mm512_dpbusd_epi32(c[k], w[g], _mm512_set1_epi32(q));
    }
    const __m512i s = split ? _mm512_add_epi32(_mm512_add_epi32(c[0], c[1]), _mm512_add_epi32(c[2], c[3])) : c[0];
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, _mm512_set1_ps(a->d)), acc);
}

#define DEF_TILE16(T)                                                                                        \
    AGX_INLINE void tileR_##T(int nb, const uint8_t *const rows[16], const uint8_t *y, size_t ldy, const int NT, \
                              __m512 *acc, uintptr_t pf) {                                                   \
        for (int i = 0; i < nb; i++) {                                                                       \
            __m512i w[8];                                                                                    \
            __m512 d;                                                                                        \
            if (pf) agx_prefetch_span((uintptr_t)pf + (size_t)i * 16 * sizeof(agx_block_##T), 16 * sizeof(agx_block_##T)); \
            dec16_##T(rows, i, w, &d);                                                                       \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =                                    \
                dot16_tok(w, d, (const agx_act_x8 *)(y + (size_t)t * ldy) + i, acc[t], NT == 1);              \
        }                                                                                                    \
    }
DEF_TILE16(q4_0)
DEF_TILE16(q5_0)
DEF_TILE16(q8_0)
AGX_DEF_XROWS_GEMM(x16_q4_0, q4_0, 16, 8, __m512, _mm512_setzero_ps, _mm512_storeu_ps)
AGX_DEF_XROWS_GEMM(x16_q5_0, q5_0, 16, 8, __m512, _mm512_setzero_ps, _mm512_storeu_ps)
AGX_DEF_XROWS_GEMM(x16_q8_0, q8_0, 16, 8, __m512, _mm512_setzero_ps, _mm512_storeu_ps)

/* More than 8 tokens (AGX_DEF_XROWS_PRE_GEMM): each block decoded once per
 * 64 tokens rather than per 8 (q8_0's two 8x8 transposes and 16 scales were
 * the bigger part of its work). Matrices in the x16 layout need none of it. */
typedef struct x16_pre_block {
    __m512i w[8];
    __m512 d;
} x16_pre_block;
AGX_INLINE void pre_dec_q4_0(const uint8_t *const rows[16], int i, x16_pre_block *b) { dec16_q4_0(rows, i, b->w, &b->d); }
AGX_INLINE void pre_dec_q5_0(const uint8_t *const rows[16], int i, x16_pre_block *b) { dec16_q5_0(rows, i, b->w, &b->d); }
AGX_INLINE void pre_dec_q8_0(const uint8_t *const rows[16], int i, x16_pre_block *b) { dec16_q8_0(rows, i, b->w, &b->d); }
AGX_INLINE void tile_pre_x16(int nb, const x16_pre_block *wb, const uint8_t *y, size_t ldy, const int NT, __m512 *acc) {
    __m512 a[8];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a[t] = acc[t];
    for (int i = 0; i < nb; i++) {
        __m512i w[8];
        _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) w[g] = _mm512_load_si512(&wb[i].w[g]);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a[t] =
            dot16_tok(w, wb[i].d, (const agx_act_x8 *)(y + (size_t)t * ldy) + i, a[t], NT == 1);
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] = a[t];
}
#define DEF_X16_PRE_GEMM(T) \
    AGX_DEF_XROWS_PRE_GEMM(x16_##T, 16, 8, __m512, _mm512_setzero_ps, _mm512_storeu_ps, x16_pre_block, pre_dec_##T, tile_pre_x16)
DEF_X16_PRE_GEMM(q4_0)
DEF_X16_PRE_GEMM(q5_0)
DEF_X16_PRE_GEMM(q8_0)

/* ------------- 32-element block types repacked 16 rows at a time (x16) */

/* A group of 16 rows in the x16 layout (quant.c, agx_x16_repack) holds, per
 * block i: the quants as the 16-row tiles above use them after their
 * transpose (dword lane r of 64-byte vector g = bytes 4g..4g+3 of row r),
 * for q5_0 the fifth bits as one 64-bit byte mask per weight vector, and the
 * 16 fp16 scales: a block is 4 aligned loads, no shuffles, and the group is
 * two or three sequential streams. q8_0 is not repacked: its x16 tile ran
 * one token at 55-65 % of the pair tiles' speed (docs/kernels.md). */
AGX_INLINE void decx16(const uint8_t *grp, int nb, int i, int is_q5, __m512i w[8], __m512 *d) {
    const uint8_t *q = grp + (size_t)i * 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        const __m512i u = _mm512_loadu_si512(q + 64 * g);
        w[g] = _mm512_and_si512(u, m4);
        w[g + 4] = _mm512_and_si512(_mm512_srli_epi16(u, 4), m4);
    }
    const uint8_t *tail = grp + (size_t)nb * 256;
    if (is_q5) {
        const uint8_t *h = tail + (size_t)i * 64;
        const __m512i b16 = _mm512_set1_epi8(0x10);
        _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {
            uint64_t m;
            memcpy(&m, h + 8 * g, 8);
            w[g] = _mm512_mask_add_epi8(w[g], _cvtu64_mask64(m), w[g], b16); /* bit 4 is clear: add = or */
        }
        tail += (size_t)nb * 64;
    }
    *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(tail + (size_t)i * 32)));
}

/* One token: the hardware prefetcher alone left the tile waiting on DRAM
 * (q5_0 1536x8960 on one core: 14 GB/s, against 48 in cache), so each block
 * prefetches its streams 4 KiB of quants ahead (2 KiB: 15, 8 KiB: 21), into
 * the next group at a group's end, to L2 rather than L1 (T1: 24 GB/s; T0
 * 14, as prefetches into L1 fill its few miss buffers). Integer addresses:
 * the target may lie past the matrix. */
AGX_INLINE void prefetchx16(const uint8_t *grp, int nb, int i, int is_q5) {
    enum { AHEAD_BLOCKS = 4096 / 256 };
    const size_t tail_bytes = is_q5 ? 64 + 32 : 32; /* per block after the quants */
    uintptr_t g = (uintptr_t)grp;
    int k = i + AHEAD_BLOCKS;
    if (k >= nb) {
        g += (size_t)nb * (256 + tail_bytes);
        k -= nb;
    }
    for (int o = 0; o < 256; o += 64) __builtin_prefetch((const void *)(g + (size_t)k * 256 + (size_t)o), 0, 2);
    const uintptr_t tail = g + (size_t)nb * 256;
    if (is_q5) __builtin_prefetch((const void *)(tail + (size_t)k * 64), 0, 2);
    __builtin_prefetch((const void *)(tail + (is_q5 ? (size_t)nb * 64 : 0) + (size_t)k * 32), 0, 2);
}

#define DEF_TILEX16(T, IS_Q5)                                                                         \
    AGX_INLINE void tileX16_##T(int nb, const uint8_t *grp, const uint8_t *y, size_t ldy, const int NT,      \
                                __m512 *acc) {                                                               \
        for (int i = 0; i < nb; i++) {                                                                       \
            __m512i w[8];                                                                                    \
            __m512 d;                                                                                        \
            if (NT == 1) prefetchx16(grp, nb, i, IS_Q5);                                                     \
            decx16(grp, nb, i, IS_Q5, w, &d);                                                                \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =                                    \
                dot16_tok(w, d, (const agx_act_x8 *)(y + (size_t)t * ldy) + i, acc[t], NT == 1);              \
        }                                                                                                    \
    }                                                                                                        \
    /* nr is a multiple of 16 and w a group's start (matmul cuts at groups) */                              \
    static void gemm_xr16_##T(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,   \
                              float *out, size_t ldo) {                                                      \
        const int nb = n / 32;                                                                               \
        for (int r0 = 0; r0 < nr; r0 += 16) {                                                                \
            const uint8_t *grp = (const uint8_t *)w + (size_t)r0 * ldw;                                      \
            for (int t0 = 0; t0 < nt; t0 += 8) {                                                             \
                const uint8_t *yt = (const uint8_t *)y + (size_t)t0 * ldy;                                   \
                __m512 acc[8];                                                                               \
                const int ntt = nt - t0 < 8 ? nt - t0 : 8;                                                   \
                for (int t = 0; t < 8; t++) acc[t] = _mm512_setzero_ps();                                    \
                switch (ntt) {                                                                               \
                case 8: tileX16_##T(nb, grp, yt, ldy, 8, acc); break;                                        \
                case 7: tileX16_##T(nb, grp, yt, ldy, 7, acc); break;                                        \
                case 6: tileX16_##T(nb, grp, yt, ldy, 6, acc); break;                                        \
                case 5: tileX16_##T(nb, grp, yt, ldy, 5, acc); break;                                        \
                case 4: tileX16_##T(nb, grp, yt, ldy, 4, acc); break;                                        \
                case 3: tileX16_##T(nb, grp, yt, ldy, 3, acc); break;                                        \
                case 2: tileX16_##T(nb, grp, yt, ldy, 2, acc); break;                                        \
                default: tileX16_##T(nb, grp, yt, ldy, 1, acc); break;                                       \
                }                                                                                            \
                for (int t = 0; t < ntt; t++) _mm512_storeu_ps(out + (size_t)(t0 + t) * ldo + r0, acc[t]);   \
            }                                                                                                \
        }                                                                                                    \
    }
DEF_TILEX16(q4_0, 0)
DEF_TILEX16(q5_0, 1)

agx_kernel_set agx_quant_avx512_x16_kernels(uint32_t wtype) {
    static const agx_gemm_fn gemm[AGX_TYPE_COUNT] = {[AGX_TYPE_Q4_0] = gemm_xr16_q4_0, [AGX_TYPE_Q5_0] = gemm_xr16_q5_0};
    static const agx_from_float_fn quant[AGX_TYPE_COUNT] = {[AGX_TYPE_Q4_0] = quant_act_x16_q4,
                                                            [AGX_TYPE_Q5_0] = quant_act_x16_q5};
    agx_kernel_set k = {0};
    if (wtype < AGX_TYPE_COUNT && gemm[wtype]) {
        k.gemm = gemm[wtype];
        k.gemm_quant = quant[wtype];
        k.act_row_size = agx_act_x8_row_size;
    }
    return k;
}

agx_gemm_fn agx_quant_avx512_gemm_novbmi(uint32_t wtype) { return wtype == AGX_TYPE_Q5_0 ? gemm_q5_0 : NULL; }

/* q4_0, one token: 16 short rows read side by side stream from DRAM worse
 * than 8 (1536x8960: 505-551 against 325-328 us per matvec with one thread,
 * the 16-row tile being faster in cache and on long rows: 474 against 555),
 * so short rows go to AVX2's 8-row tile, which reads the same activations */
static void gemv_x16_q4_0(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt, float *out,
                          size_t ldo) {
    if (agx_prefetch_row(ldw)) agx_quant_avx2_gemm_q4_0(n, w, ldw, nr, y, ldy, nt, out, ldo);
    else gemm_x16_q4_0(n, w, ldw, nr, y, ldy, nt, out, ldo);
}

/* the pair tiles serve one token (their activation row in L1) */
static void set_pair_one_tok(agx_kernel_set *k, agx_gemm_fn gemm, agx_from_float_fn act_quant) {
    k->one_tok_gemm = gemm;
    k->one_tok_quant = act_quant;
    k->one_tok_act_row_size = act_x2_row_size;
    k->one_tok_max_act = AGX_ONE_TOK_L1_ACT;
}

void agx_quant_avx512_kernels(agx_kernel_set t[AGX_TYPE_COUNT]) {
    t[AGX_TYPE_F32].vec_dot = dot_f32;
    t[AGX_TYPE_F16].vec_dot = dot_f16;
    t[AGX_TYPE_BF16].vec_dot = dot_bf16;
    t[AGX_TYPE_Q2_K] = (agx_kernel_set){.vec_dot = dot_q2_K, .gemm = gemm_q2_K, .gemm_quant = quant_act_k, .act_row_size = agx_act_k_row_size, .one_tok_max_act = SIZE_MAX};
    t[AGX_TYPE_Q3_K] = (agx_kernel_set){.vec_dot = dot_q3_K, .gemm = gemm_q3_K, .gemm_quant = quant_act_k, .act_row_size = agx_act_k_row_size, .one_tok_max_act = SIZE_MAX};
    /* 32-element blocks: the 16-row tiles for prompts (2-3x the pair tiles),
     * and for one token where they measured faster (q4_0; q5_0 and q8_0
     * keep the pair tiles there: docs/kernels.md) */
    t[AGX_TYPE_Q4_0] = (agx_kernel_set){.vec_dot = dot_q4_0, .gemm = gemm_any_x16_q4_0, .gemm_quant = quant_act_x16_q4, .act_row_size = agx_act_x8_row_size,
                                        .one_tok_gemm = gemv_x16_q4_0, .one_tok_quant = quant_act_x16_q4,
                                        .one_tok_act_row_size = agx_act_x8_row_size, .one_tok_max_act = SIZE_MAX};
    t[AGX_TYPE_Q5_0] = (agx_kernel_set){.vec_dot = dot_q5_0, .gemm = gemm_any_x16_q5_0, .gemm_quant = quant_act_x16_q5, .act_row_size = agx_act_x8_row_size};
    set_pair_one_tok(&t[AGX_TYPE_Q5_0], agx_cpu_features_get()->avx512vbmi ? gemm4_q5_0 : gemm_q5_0, quant_act_x2_q5);
    t[AGX_TYPE_Q8_0] = (agx_kernel_set){.vec_dot = dot_q8_0, .gemm = gemm_any_x16_q8_0, .gemm_quant = quant_act_x16_q8, .act_row_size = agx_act_x8_row_size};
    set_pair_one_tok(&t[AGX_TYPE_Q8_0], gemm_q8_0, quant_act_x2_q8);
    t[AGX_TYPE_Q4_1].vec_dot = dot_q4_1;
    t[AGX_TYPE_Q5_1].vec_dot = dot_q5_1;
    t[AGX_TYPE_Q4_K] = (agx_kernel_set){.vec_dot = dot_q4_K, .gemm = gemm_q4_K, .gemm_quant = quant_act_k_q4, .act_row_size = agx_act_k_row_size, .one_tok_max_act = SIZE_MAX};
    t[AGX_TYPE_Q5_K] = (agx_kernel_set){.vec_dot = dot_q5_K, .gemm = gemm_q5_K, .gemm_quant = quant_act_k_q4, .act_row_size = agx_act_k_row_size, .one_tok_max_act = SIZE_MAX};
    t[AGX_TYPE_Q6_K] = (agx_kernel_set){.vec_dot = dot_q6_K, .gemm = gemm_q6_K, .gemm_quant = quant_act_k_q6, .act_row_size = agx_act_k_row_size, .one_tok_max_act = SIZE_MAX};
}
