/* quant_avx2.c — AVX2/FMA/F16C dot kernels and matrix tiles (compiled with
 * -mavx2 -mfma -mf16c); quant.c installs them when the CPU has AVX2 but the
 * AVX-512 set is missing or turned off with AGX_CPU_ISA=avx2. Integer sums
 * use maddubs + madd (as ggml's AVX2 path); the tiles (q4_K/q5_K/q6_K,
 * q4_0/q5_0/q8_0) add maddubs results in int16 where the bounds allow;
 * other types: matmul calls vec_dot per row and token. */
#include <immintrin.h>

#include "engine/quant_impl.h"
#include "engine/quant_ktile.h"

#define AGX_INLINE static inline __attribute__((always_inline))

AGX_INLINE float fp16(agx_half h) { return _cvtsh_ss(h); }

AGX_INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* int16 pair sums -> int32 */
AGX_INLINE __m256i sum_pairs(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    float tail = 0;
    for (; i < n; i++) tail += x[i] * y[i];
    *s = hsum256(_mm256_add_ps(a0, a1)) + tail;
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i))), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8))),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(y + i + 8))), a1);
    }
    float tail = 0;
    for (; i < n; i++) tail += fp16(x[i]) * fp16(y[i]);
    *s = hsum256(_mm256_add_ps(a0, a1)) + tail;
}

/* 32 nibbles of a q4/q5 block in element order */
AGX_INLINE __m256i nib32(const uint8_t *qs) {
    const __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

/* byte j = 0x10 where bit j of the 32-bit qh is set */
AGX_INLINE __m256i bits16_from_qh(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q8_0 *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int i = 0; i < n / 32; i++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
        const __m256i p = sum_pairs(_mm256_maddubs_epi16(_mm256_abs_epi8(qx), _mm256_sign_epi8(qy, qx)));
        const __m256 d = _mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d));
        if (i & 1) a1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a1);
        else a0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a0);
    }
    *s = hsum256(_mm256_add_ps(a0, a1));
}

/* sum (q - bias) * y: maddubs of q and of bias against y, subtracted in int16 */
#define DEF_DOT_X_0(NAME, BLK, LOADW, BIAS)                                                                  \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                      \
        const BLK *x = vx;                                                                                   \
        const agx_block_q8_0 *y = vy;                                                                        \
        const __m256i vb = _mm256_set1_epi8(BIAS);                                                           \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                           \
        for (int i = 0; i < n / 32; i++) {                                                                   \
            const __m256i qx = LOADW;                                                                        \
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);                                 \
            const __m256i p =                                                                                \
                sum_pairs(_mm256_sub_epi16(_mm256_maddubs_epi16(qx, qy), _mm256_maddubs_epi16(vb, qy)));     \
            const __m256 d = _mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d));                                    \
            if (i & 1) a1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a1);                                   \
            else a0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), a0);                                         \
        }                                                                                                    \
        *s = hsum256(_mm256_add_ps(a0, a1));                                                                 \
    }
DEF_DOT_X_0(dot_q4_0, agx_block_q4_0, nib32(x[i].qs), 8)
DEF_DOT_X_0(dot_q5_0, agx_block_q5_0, _mm256_or_si256(nib32(x[i].qs), bits16_from_qh(x[i].qh)), 16)

#define DEF_DOT_X_1(NAME, BLK, LOADW)                                                                        \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                      \
        const BLK *x = vx;                                                                                   \
        const agx_block_q8_1 *y = vy;                                                                        \
        __m256 a0 = _mm256_setzero_ps();                                                                     \
        float summ = 0;                                                                                      \
        for (int i = 0; i < n / 32; i++) {                                                                   \
            const __m256i qx = LOADW;                                                                        \
            const __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);                                 \
            const __m256i p = sum_pairs(_mm256_maddubs_epi16(qx, qy));                                       \
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(fp16(x[i].d) * fp16(y[i].d)), _mm256_cvtepi32_ps(p), a0);    \
            summ += fp16(x[i].m) * fp16(y[i].s);                                                             \
        }                                                                                                    \
        *s = hsum256(a0) + summ;                                                                             \
    }
DEF_DOT_X_1(dot_q4_1, agx_block_q4_1, nib32(x[i].qs))
DEF_DOT_X_1(dot_q5_1, agx_block_q5_1, _mm256_or_si256(nib32(x[i].qs), bits16_from_qh(x[i].qh)))

/* q4_K/q5_K scales and mins as bytes sc0..7, m0..7 (reads 16 bytes; the 4
 * after the 12 scale bytes belong to the same block). */
AGX_INLINE __m128i k4_scales_mins(const uint8_t *q) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    __m128i a = _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0));
    a = _mm_and_si128(_mm_srlv_epi32(a, _mm_set_epi32(4, 0, 0, 0)),
                      _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    const __m128i c = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2),
                                    _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(a, c);
}

/* int16 broadcast of byte j of b (b holds the same 16 bytes in both lanes) */
AGX_INLINE __m256i bcast16(__m256i b, int j) {
    return _mm256_shuffle_epi8(b, _mm256_set1_epi16((short)(0x8000 | j)));
}

AGX_INLINE __m256i mins_dup(__m256i b) {
    return _mm256_shuffle_epi8(b, _mm256_set_epi8((char)0x80, 15, (char)0x80, 15, (char)0x80, 14, (char)0x80, 14,
                                                  (char)0x80, 13, (char)0x80, 13, (char)0x80, 12, (char)0x80, 12,
                                                  (char)0x80, 11, (char)0x80, 11, (char)0x80, 10, (char)0x80, 10,
                                                  (char)0x80, 9, (char)0x80, 9, (char)0x80, 8, (char)0x80, 8));
}

#define DEF_DOT_K4(NAME, BLK, IS_Q5)                                                                         \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                      \
        const BLK *x = vx;                                                                                   \
        const agx_block_q8_K *y = vy;                                                                        \
        const __m256i m4 = _mm256_set1_epi8(0x0F);                                                           \
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();                                        \
        const bool pf = agx_prefetch_row(n / AGX_QK_K * sizeof(BLK));                                        \
        for (int i = 0; i < n / AGX_QK_K; i++) {                                                             \
            if (pf) agx_prefetch_ahead(&x[i], sizeof(BLK));                                                  \
            const __m256i sb = _mm256_broadcastsi128_si256(k4_scales_mins(x[i].scales));                     \
            const __m256i mi = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), mins_dup(sb)); \
            accm = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].dmin)), _mm256_cvtepi32_ps(mi), accm);  \
            __m256i qh = IS_Q5 ? _mm256_loadu_si256((const __m256i *)((const agx_block_q5_K *)(const void *)&x[i])->qh) \
                               : _mm256_setzero_si256();                                                     \
            __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();                                \
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {                                                                    \
                const __m256i c = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * k));                   \
                __m256i lo = _mm256_and_si256(c, m4), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);    \
                if (IS_Q5) {                                                                                 \
                    const __m256i one = _mm256_set1_epi8(1);                                                 \
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));               \
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4)); \
                    qh = _mm256_srli_epi16(qh, 2);                                                           \
                }                                                                                            \
                const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * k))); \
                const __m256i phi =                                                                          \
                    _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * k + 32)));  \
                i0 = _mm256_add_epi32(i0, _mm256_madd_epi16(plo, bcast16(sb, 2 * k)));                       \
                i1 = _mm256_add_epi32(i1, _mm256_madd_epi16(phi, bcast16(sb, 2 * k + 1)));                   \
            }                                                                                                \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1)), \
                                  acc);                                                                      \
        }                                                                                                    \
        *s = hsum256(acc) - hsum256(accm);                                                                   \
    }
DEF_DOT_K4(dot_q4_K, agx_block_q4_K, 0)
DEF_DOT_K4(dot_q5_K, agx_block_q5_K, 1)

static void dot_q6_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q6_K *x = vx;
    const agx_block_q8_K *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    __m256 acc = _mm256_setzero_ps();
    const bool pf = agx_prefetch_row(n / AGX_QK_K * sizeof(*x));
    for (int i = 0; i < n / AGX_QK_K; i++) {
        if (pf) agx_prefetch_ahead(&x[i], sizeof(x[i]));
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        /* -32 offset via bsums: 32 * sum_g sc_g * bsum_g */
        __m256i iacc = _mm256_sub_epi32(
            _mm256_setzero_si256(),
            _mm256_slli_epi32(_mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), _mm256_cvtepi8_epi16(sc8)),
                              5));
        _Pragma("GCC unroll 4") for (int h = 0; h < 2; h++) {
            const __m256i qla = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i qlb = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            __m256i w[4];
            w[0] = _mm256_or_si256(_mm256_and_si256(qla, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            w[1] = _mm256_or_si256(_mm256_and_si256(qlb, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            w[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qla, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            w[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlb, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
            _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
                const int g = 8 * h + 2 * m; /* scale groups g, g+1 cover these 32 weights */
                const __m256i sc = _mm256_cvtepi8_epi16(
                    _mm_shuffle_epi8(sc8, _mm_set_epi8((char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1),
                                                       (char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1),
                                                       (char)g, (char)g, (char)g, (char)g, (char)g, (char)g, (char)g,
                                                       (char)g)));
                const __m256i p =
                    _mm256_maddubs_epi16(w[m], _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * m)));
                iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(p, sc));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(iacc), acc);
    }
    *s = hsum256(acc);
}

/* q2_K / q3_K: 2-bit planes (q3_K adds 4 where the hmask bit is set and
 * subtracts 4 * sum(scale * bsum) afterwards); one scale per 16 weights. */
AGX_INLINE __m256i scale_pair16(__m128i sc8, int g) {
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
        sc8, _mm_set_epi8((char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1), (char)(g + 1),
                          (char)(g + 1), (char)(g + 1), (char)g, (char)g, (char)g, (char)g, (char)g, (char)g, (char)g,
                          (char)g)));
}

#define DEF_DOT_K2(NAME, BLK, IS_Q3)                                                                         \
    static void NAME(int n, float *s, const void *vx, const void *vy) {                                      \
        const BLK *x = vx;                                                                                   \
        const agx_block_q8_K *y = vy;                                                                        \
        const __m256i m3 = _mm256_set1_epi8(3);                                                              \
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();                                        \
        for (int i = 0; i < n / AGX_QK_K; i++) {                                                             \
            __m128i sc8;                                                                                     \
            __m256i iacc = _mm256_setzero_si256(), hm = _mm256_setzero_si256();                              \
            const __m256i bs = _mm256_loadu_si256((const __m256i *)y[i].bsums);                             \
            if (IS_Q3) {                                                                                     \
                const agx_block_q3_K *b3 = (const agx_block_q3_K *)(const void *)&x[i];                      \
                uint32_t a0, a1, a2;                                                                         \
                memcpy(&a0, b3->scales, 4);                                                                  \
                memcpy(&a1, b3->scales + 4, 4);                                                              \
                memcpy(&a2, b3->scales + 8, 4);                                                              \
                const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;                                             \
                sc8 = _mm_sub_epi8(_mm_set_epi32((int)(((a1 >> 4) & k2) | (((a2 >> 6) & k1) << 4)),          \
                                                 (int)(((a0 >> 4) & k2) | (((a2 >> 4) & k1) << 4)),          \
                                                 (int)((a1 & k2) | (((a2 >> 2) & k1) << 4)),                 \
                                                 (int)((a0 & k2) | ((a2 & k1) << 4))),                       \
                                   _mm_set1_epi8(32));                                                       \
                iacc = _mm256_sub_epi32(iacc, _mm256_slli_epi32(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8)), 2)); \
                hm = _mm256_loadu_si256((const __m256i *)b3->hmask);                                         \
            } else {                                                                                         \
                const agx_block_q2_K *b2 = (const agx_block_q2_K *)(const void *)&x[i];                      \
                const __m128i raw = _mm_loadu_si128((const __m128i *)b2->scales);                            \
                sc8 = _mm_and_si128(raw, _mm_set1_epi8(0x0F));                                               \
                const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F))); \
                accm = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(b2->dmin)), _mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mins)), accm); \
            }                                                                                                \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                            \
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));                   \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {                                        \
                    __m256i w = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);                           \
                    if (IS_Q3) {                                                                             \
                        const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * h + j)));                      \
                        w = _mm256_add_epi8(w, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), \
                                                                _mm256_set1_epi8(4)));                       \
                    }                                                                                        \
                    const __m256i p = _mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i *)(y[i].qs + 128 * h + 32 * j))); \
                    iacc = _mm256_add_epi32(iacc, _mm256_madd_epi16(p, scale_pair16(sc8, 8 * h + 2 * j)));   \
                }                                                                                            \
            }                                                                                                \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * fp16(x[i].d)), _mm256_cvtepi32_ps(iacc), acc);     \
        }                                                                                                    \
        *s = hsum256(acc) - hsum256(accm);                                                                   \
    }
DEF_DOT_K2(dot_q2_K, agx_block_q2_K, 0)
DEF_DOT_K2(dot_q3_K, agx_block_q3_K, 1)

AGX_INLINE __m256 bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(bf16x8(x + i), bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(bf16x8(x + i + 8), bf16x8(y + i + 8), a1);
    }
    float tail = 0;
    for (; i < n; i++) tail += agx_bf16_to_fp32(x[i]) * agx_bf16_to_fp32(y[i]);
    *s = hsum256(_mm256_add_ps(a0, a1)) + tail;
}

/* the block quantizers with hardware FMA (bit-identical to the portable build) */
#define AGX_QREF(name) name##_fma
#include "engine/quant_ref.h"
#undef AGX_QREF

/* ------------------------------------------------ K-quant matrix tiles
 * AVX2 has no vpdpbusd: maddubs gives int16 sums of 2 products and the madd
 * that applies the scales was the other half of the multiply-pipe work (one
 * per maddubs). Sums of 8 products still fit int16 for q4_K and q5_K
 * (8 * 31 * 128 = 31744) and sums of 4 for q6_K (4 * 63 * 128 = 32256), so
 * the tiles add 4 (q4_K, q5_K) or 2 (q6_K) maddubs results with 16-bit adds
 * before one madd: 10 or 12 multiply ops per (block, token) where there were
 * 17. That needs every int16 lane of the summed registers to hold the same
 * sub-block: the decode interleaves 8-byte chunks of 4 sub-blocks (unpacks,
 * blends, once per block for up to 8 tokens) and the activations come in the
 * same order (k_act_order_*). The decoded weights of a half (q4_K, q5_K) or a
 * quarter (q6_K) block stay in registers while the tokens loop inside; the
 * per-token sums go through memory only once per block. */

/* q4_K, q5_K: register r of half h holds 8 weights of each of sub-blocks
 * 4h..4h+3 (bytes 0-7, 8-15, 16-23, 24-31): chunks (0 0 2 2), (2 2 0 0),
 * (1 1 3 3), (3 3 1 1) of them for r = 0..3. */
static const uint8_t k_act_order_q4[32] = {0,  4,  10, 14, 2,  6,  8,  12, 1,  5,  11, 15, 3,  7,  9,  13,
                                           16, 20, 26, 30, 18, 22, 24, 28, 17, 21, 27, 31, 19, 23, 25, 29};
/* q6_K: quarter k (sub-blocks 4k..4k+3 of 16 weights) as two registers with
 * the first / second 8 weights of sub-blocks 4k, 4k+2, 4k+1, 4k+3 */
static const uint8_t k_act_order_q6[32] = {0,  4,  2,  6,  1,  5,  3,  7,  8,  12, 10, 14, 9,  13, 11, 15,
                                           16, 20, 18, 22, 17, 21, 19, 23, 24, 28, 26, 30, 25, 29, 27, 31};

static void quant_act_k_q4(const float *x, void *y, int64_t n) { agx_act_k_quantize(quant_q8_K_fma, x, y, n, k_act_order_q4, true); }
static void quant_act_k_q6(const float *x, void *y, int64_t n) { agx_act_k_quantize(quant_q8_K_fma, x, y, n, k_act_order_q6, false); }

/* int16 lanes of the scales for half h: sc[4h] x4, sc[4h+1] x4, ... (bytes of
 * k4_scales_mins, broadcast to both 128-bit lanes) */
#define Z 0x80
#define S4(j) j, Z, j, Z, j, Z, j, Z
static const uint8_t k_ctl_q4_scales[2][32] __attribute__((aligned(32))) = {{S4(0), S4(1), S4(2), S4(3)},
                                                                            {S4(4), S4(5), S4(6), S4(7)}};
#undef S4
#undef Z

/* the four weight registers of half h (qh: q5_K's fifth bits, or NULL) */
AGX_INLINE void k4_tile_half(const uint8_t *qs, const uint8_t *qh, int h, __m256i w[4]) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i a = _mm256_loadu_si256((const __m256i *)(qs + 64 * h));
    const __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 64 * h + 32));
    __m256i s[4] = {_mm256_and_si256(a, m4), _mm256_and_si256(_mm256_srli_epi16(a, 4), m4), _mm256_and_si256(b, m4),
                    _mm256_and_si256(_mm256_srli_epi16(b, 4), m4)};
    if (qh) {
        const __m256i hb = _mm256_loadu_si256((const __m256i *)qh), one = _mm256_set1_epi8(1);
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) s[j] =
            _mm256_or_si256(s[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4 * h + j), one), 4));
    }
    const __m256i t0 = _mm256_unpacklo_epi64(s[0], s[1]), t1 = _mm256_unpackhi_epi64(s[0], s[1]);
    const __m256i t2 = _mm256_unpacklo_epi64(s[2], s[3]), t3 = _mm256_unpackhi_epi64(s[2], s[3]);
    w[0] = _mm256_blend_epi32(t0, t2, 0xF0);
    w[1] = _mm256_permute2x128_si256(t0, t2, 0x21);
    w[2] = _mm256_blend_epi32(t1, t3, 0xF0);
    w[3] = _mm256_permute2x128_si256(t1, t3, 0x21);
}

/* Σ over 4 registers of maddubs, in int16 (up to 8 products per lane) */
AGX_INLINE __m256i maddubs4(const __m256i w[4], const int8_t *q) {
    const __m256i p0 = _mm256_maddubs_epi16(w[0], _mm256_loadu_si256((const __m256i *)q));
    const __m256i p1 = _mm256_maddubs_epi16(w[1], _mm256_loadu_si256((const __m256i *)(q + 32)));
    const __m256i p2 = _mm256_maddubs_epi16(w[2], _mm256_loadu_si256((const __m256i *)(q + 64)));
    const __m256i p3 = _mm256_maddubs_epi16(w[3], _mm256_loadu_si256((const __m256i *)(q + 96)));
    return _mm256_add_epi16(_mm256_add_epi16(p0, p1), _mm256_add_epi16(p2, p3));
}

#define ACT(t, i) ((const agx_act_k *)(y + (size_t)(t) * ldy) + (i))

/* q4_K (QH 0) and q5_K: isum[t] = Σ sc * Σ w*y of block i for each token,
 * then acc[t] += d*dy * isum - Σ dmin*m * dsum */
#define DEF_K4_TILE(T, BLK, QH)                                                                              \
    AGX_INLINE void tile_##T(int nb, const BLK *x, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) { \
        for (int i = 0; i < nb; i++) {                                                                       \
            const __m128i sm = k4_scales_mins(x[i].scales);                                                  \
            const __m256i smb = _mm256_broadcastsi128_si256(sm);                                             \
            __m256i isum[8];                                                                                 \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                            \
                __m256i w[4];                                                                                \
                k4_tile_half(x[i].qs, QH, h, w);                                                             \
                const __m256i sc = _mm256_shuffle_epi8(smb, _mm256_load_si256((const __m256i *)k_ctl_q4_scales[h])); \
                _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                       \
                    const __m256i v = _mm256_madd_epi16(maddubs4(w, ACT(t, i)->qs + 128 * h), sc);           \
                    isum[t] = h ? _mm256_add_epi32(isum[t], v) : v;                                          \
                }                                                                                            \
            }                                                                                                \
            const __m256 d = _mm256_set1_ps(fp16(x[i].d));                                                   \
            const __m256 mf = _mm256_mul_ps(_mm256_set1_ps(fp16(x[i].dmin)),                                 \
                                            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)))); \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                           \
                const agx_act_k *a = ACT(t, i);                                                              \
                const __m256 s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(a->d)), acc[t]); \
                acc[t] = _mm256_fnmadd_ps(mf, _mm256_loadu_ps(a->dsum), s);                                  \
            }                                                                                                \
        }                                                                                                    \
    }
DEF_K4_TILE(q4_K, agx_block_q4_K, NULL)
DEF_K4_TILE(q5_K, agx_block_q5_K, x[i].qh)

/* q6_K quarter k: two registers (first / second 8 weights of sub-blocks
 * 4k, 4k+2, 4k+1, 4k+3) and their int16 scales */
AGX_INLINE void q6_tile_quarter(const agx_block_q6_K *x, int k, __m256i w[2], __m256i *sc) {
    const int h = k >> 1, odd = k & 1;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h));
    const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(x->ql + 64 * h + 32));
    const __m256i qh = _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * h)), 4 * odd);
    /* weights 128h + 64odd + 0..31 (lo nibbles, qh bits 0-1) and +32..63 (bits 2-3) */
    const __m256i a = _mm256_or_si256(_mm256_and_si256(odd ? _mm256_srli_epi16(ql0, 4) : ql0, m4),
                                      _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
    const __m256i b = _mm256_or_si256(_mm256_and_si256(odd ? _mm256_srli_epi16(ql1, 4) : ql1, m4),
                                      _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
    w[0] = _mm256_unpacklo_epi64(a, b);
    w[1] = _mm256_unpackhi_epi64(a, b);
    const int g = 4 * k;
    *sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
        _mm_loadu_si128((const __m128i *)x->scales),
        _mm_set_epi8((char)(g + 3), (char)(g + 3), (char)(g + 3), (char)(g + 3), (char)(g + 1), (char)(g + 1),
                     (char)(g + 1), (char)(g + 1), (char)(g + 2), (char)(g + 2), (char)(g + 2), (char)(g + 2), (char)g,
                     (char)g, (char)g, (char)g)));
}

/* q6_K: isum[t] = Σ sc * Σ q*y - 32 Σ sc * bsum (the -32 offset), then
 * acc[t] += d*dy * isum */
AGX_INLINE void tile_q6_K(int nb, const agx_block_q6_K *x, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) {
    for (int i = 0; i < nb; i++) {
        const __m256i offs = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x[i].scales)), 5);
        __m256i isum[8];
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) isum[t] =
            _mm256_sub_epi32(_mm256_setzero_si256(),
                             _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ACT(t, i)->bsums), offs));
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            __m256i w[2], sc;
            q6_tile_quarter(&x[i], k, w, &sc);
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
                const int8_t *q = ACT(t, i)->qs + 64 * k;
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], _mm256_loadu_si256((const __m256i *)q)),
                                                   _mm256_maddubs_epi16(w[1], _mm256_loadu_si256((const __m256i *)(q + 32))));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, sc));
            }
        }
        const __m256 d = _mm256_set1_ps(fp16(x[i].d));
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) acc[t] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, _mm256_set1_ps(ACT(t, i)->d)), acc[t]);
    }
}
#undef ACT

/* chunks measured faster for q4_K only (8960-column rows, 8 tokens: q4_K 161
 * against 150 GFLOP/cpu-s with whole rows, q5_K 143 against 150, q6_K 107
 * against 140) */
AGX_DEF_K_GEMM(q4_K, agx_block_q4_K, AGX_K_CHUNK)
AGX_DEF_K_GEMM(q5_K, agx_block_q5_K, INT_MAX)
AGX_DEF_K_GEMM(q6_K, agx_block_q6_K, INT_MAX)

/* ------------------------------------- 32-element blocks: 8-row tiles
 * AVX2 has no cheap sum across a register, so these tiles put 8 weight rows
 * side by side: dword lane r of w[g] holds weights 4g..4g+3 of row r (a
 * transpose once per block for up to 4 tokens) and a token's activations
 * 4g..4g+3 are broadcast to every lane. The maddubs results then need no
 * horizontal sums (lane r is row r) and one conversion and FMA serve 8 rows.
 * q4_0's 16-product sums fit int16 (16 * 15 * 128 = 30720): the 8 maddubs of
 * a block add up before one madd. The -8 of q4_0 comes pre-multiplied with
 * the activations' sum (agx_act_x8.corr). */
/* the q8_0 activation quantizer's bits (llama.cpp's run-time one) */
static void quant_act_x8(const float *x, void *y, int64_t n, int bias) {
    agx_act_x8_quantize(agx_type_traits_get(AGX_TYPE_Q8_0)->from_float, x, y, n, bias);
}
static void quant_act_x8_q4(const float *x, void *y, int64_t n) { quant_act_x8(x, y, n, 8); }
static void quant_act_x8_q5(const float *x, void *y, int64_t n) { quant_act_x8(x, y, n, 16); }
static void quant_act_x8_q8(const float *x, void *y, int64_t n) { quant_act_x8(x, y, n, 0); }

AGX_INLINE __m256i bcast4(const int8_t *q) {
    int32_t v;
    memcpy(&v, q, 4);
    return _mm256_set1_epi32(v);
}

/* 4x4 transpose of dwords within each 128-bit lane */
AGX_INLINE void transpose4_epi32(__m256i r[4]) {
    const __m256i a = _mm256_unpacklo_epi32(r[0], r[1]), b = _mm256_unpackhi_epi32(r[0], r[1]);
    const __m256i c = _mm256_unpacklo_epi32(r[2], r[3]), e = _mm256_unpackhi_epi32(r[2], r[3]);
    r[0] = _mm256_unpacklo_epi64(a, c);
    r[1] = _mm256_unpackhi_epi64(a, c);
    r[2] = _mm256_unpacklo_epi64(b, e);
    r[3] = _mm256_unpackhi_epi64(b, e);
}

/* the 16 quant bytes of 8 rows' blocks as w[g] (see above): low nibbles
 * give weights 0-15, high nibbles 16-31 */
AGX_INLINE void nibbles8(const uint8_t *const qs[8], __m256i w[8]) {
    __m256i t[4];
    _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) t[r] = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qs[r])), _mm_loadu_si128((const __m128i *)qs[r + 4]), 1);
    transpose4_epi32(t);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        w[g] = _mm256_and_si256(t[g], m4);
        w[g + 4] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), m4);
    }
}

/* the fp16 scales of 8 blocks (each block starts with it) as floats */
AGX_INLINE __m256 scales8(const agx_half *const d[8]) {
    return _mm256_cvtph_ps(_mm_setr_epi16((short)*d[0], (short)*d[1], (short)*d[2], (short)*d[3], (short)*d[4],
                                          (short)*d[5], (short)*d[6], (short)*d[7]));
}

/* block i of 8 rows of q4_0 or q5_0 (block size bsize, quants at qs_off,
 * the scale first): their nibbles as w[g] (see above), d = the scales */
AGX_INLINE void dec8_x0(const uint8_t *const rows[8], int i, size_t bsize, size_t qs_off, __m256i w[8], __m256 *d) {
    const uint8_t *qs[8];
    const agx_half *dp[8];
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        const uint8_t *b = rows[k] + (size_t)i * bsize;
        qs[k] = b + qs_off;
        dp[k] = (const agx_half *)(const void *)b;
    }
    nibbles8(qs, w);
    *d = scales8(dp);
}

/* the tiles' decoders: w (unsigned weights), ws (q8_0: the signed ones), d */
AGX_INLINE void dec8_q4_0(const uint8_t *const rows[8], int i, __m256i w[8], __m256i ws[8], __m256 *d) {
    (void)ws;
    dec8_x0(rows, i, sizeof(agx_block_q4_0), offsetof(agx_block_q4_0, qs), w, d);
}

/* q5_0: the same and bit j of each row's qh as 16 on weight j. Byte k of
 * w[g]'s dwords is weight 4g+k (g < 4) or 16+4(g-4)+k: bit 4(g%2)+k of qh
 * byte g/2. */
static const uint8_t k_q5_qh_byte[4][32] __attribute__((aligned(32))) = {
#define CTL(c) c, c, c, c, c + 4, c + 4, c + 4, c + 4, c + 8, c + 8, c + 8, c + 8, c + 12, c + 12, c + 12, c + 12
    {CTL(0), CTL(0)}, {CTL(1), CTL(1)}, {CTL(2), CTL(2)}, {CTL(3), CTL(3)}};
#undef CTL
#define MASK(o) 1 << (o), 2 << (o), 4 << (o), 8 << (o)
#define MASK8(o) MASK(o), MASK(o), MASK(o), MASK(o), MASK(o), MASK(o), MASK(o), MASK(o)
static const uint8_t k_q5_qh_mask[2][32] __attribute__((aligned(32))) = {{MASK8(0)}, {MASK8(4)}};
#undef MASK8
#undef MASK

AGX_INLINE void dec8_q5_0(const uint8_t *const rows[8], int i, __m256i w[8], __m256i ws[8], __m256 *d) {
    (void)ws;
    dec8_x0(rows, i, sizeof(agx_block_q5_0), offsetof(agx_block_q5_0, qs), w, d);
    uint32_t h[8];
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) memcpy(&h[k], ((const agx_block_q5_0 *)rows[k] + i)->qh, 4);
    const __m256i qh = _mm256_setr_epi32((int)h[0], (int)h[1], (int)h[2], (int)h[3], (int)h[4], (int)h[5], (int)h[6], (int)h[7]);
    const __m256i b16 = _mm256_set1_epi8(0x10);
    _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) {
        const __m256i m = _mm256_load_si256((const __m256i *)k_q5_qh_mask[g & 1]);
        const __m256i bits = _mm256_and_si256(_mm256_shuffle_epi8(qh, _mm256_load_si256((const __m256i *)k_q5_qh_byte[g >> 1])), m);
        w[g] = _mm256_or_si256(w[g], _mm256_and_si256(_mm256_cmpeq_epi8(bits, m), b16));
    }
}

/* q8_0: signed weights, so maddubs takes |w| and the activations with w's
 * signs (pair sums <= 2 * 128 * 127 fit int16, larger sums do not: one madd
 * per maddubs). |w| stays in registers, w is read from memory by vpsignb. */
AGX_INLINE void dec8_q8_0(const uint8_t *const rows[8], int i, __m256i wabs[8], __m256i wsgn[8], __m256 *d) {
    const agx_half *dp[8];
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        const agx_block_q8_0 *b = (const agx_block_q8_0 *)rows[k] + i;
        dp[k] = &b->d;
        wsgn[k] = _mm256_loadu_si256((const __m256i *)b->qs);
    }
    agx_transpose8x8_epi32(wsgn); /* wsgn[g] lane k = row k's weights 4g..4g+3 */
    _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) wabs[g] = _mm256_abs_epi8(wsgn[g]);
    *d = scales8(dp);
}

/* One block of 8 rows (w; ws: q8_0's signed weights) against one token's
 * block a, added into acc: SUMS maddubs results added in int16 before each
 * madd; SIGNED (q8_0): maddubs(|w|, sign(a, w)) and no offset, else the
 * weights carry one (agx_act_x8.corr; an always-zero subtraction for q8_0
 * measured 8 % slower). Shared by the decoding and the decode-once tiles. */
AGX_INLINE __m256 dot8_tok(const __m256i w[8], const __m256i *ws, __m256 d, const agx_act_x8 *a, __m256 acc,
                           const int SUMS, const int SIGNED) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i s = _mm256_setzero_si256();
#define PROD8(g) _mm256_maddubs_epi16(w[g], SIGNED ? _mm256_sign_epi8(bcast4(a->qs + 4 * (g)), ws[g]) : bcast4(a->qs + 4 * (g)))
    _Pragma("GCC unroll 8") for (int g0 = 0; g0 < 8; g0 += SUMS) {
        __m256i p = PROD8(g0);
        _Pragma("GCC unroll 7") for (int g = g0 + 1; g < g0 + SUMS; g++) p = _mm256_add_epi16(p, PROD8(g));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
    }
#undef PROD8
    if (!SIGNED) s = _mm256_sub_epi32(s, _mm256_set1_epi32(a->corr));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(a->d)), acc);
}

/* acc[t] (8 rows) += blocks 0..nb-1 of the 8 rows against token t < NT
 * (SUMS, SIGNED: dot8_tok); pf (one token): the next 8 rows' bytes,
 * prefetched in step */
#define DEF_TILE8(T, SUMS, SIGNED)                                                                                   \
    AGX_INLINE void tileR_##T(int nb, const uint8_t *const rows[8], const uint8_t *y, size_t ldy, const int NT, \
                              __m256 *acc, uintptr_t pf) {                                                   \
        for (int i = 0; i < nb; i++) {                                                                       \
            __m256i w[8], ws[8];                                                                             \
            __m256 d;                                                                                        \
            if (pf) agx_prefetch_span(pf + (size_t)i * 8 * sizeof(agx_block_##T), 8 * sizeof(agx_block_##T)); \
            dec8_##T(rows, i, w, ws, &d);                                                                    \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] =                                    \
                dot8_tok(w, ws, d, (const agx_act_x8 *)(y + (size_t)t * ldy) + i, acc[t], SUMS, SIGNED);      \
        }                                                                                                    \
    }
/* 16-product sums of 4-bit weights fit int16 (16 * 15 * 128 = 30720), of
 * 5-bit weights 8-product sums (8 * 31 * 128 = 31744), of 8-bit ones pairs */
DEF_TILE8(q4_0, 8, 0)
DEF_TILE8(q5_0, 4, 0)
DEF_TILE8(q8_0, 1, 1)

/* 8-row groups, 2 per 16-row work item; tokens in groups of 4 (AVX2's 16
 * registers: 8 weight vectors and 4 accumulators) */
#define DEF_X8_GEMM(T) AGX_DEF_XROWS_GEMM(T, T, 8, 4, __m256, _mm256_setzero_ps, _mm256_storeu_ps)
DEF_X8_GEMM(q4_0)
DEF_X8_GEMM(q5_0)
DEF_X8_GEMM(q8_0)

/* More than 4 tokens (AGX_DEF_XROWS_PRE_GEMM): the block decode (for q8_0 a
 * transpose with no int16 sums to gain, for q4_0/q5_0 the nibble transpose)
 * was redone for every 4 tokens, and q8_0's 16 weight registers (|w| and w)
 * left the compiler spilling its accumulators: 75 GFLOP/s against q4_0's
 * 140. Decoded once per 64 tokens, q4_0/q5_0's tile loads the 8 vectors and
 * q8_0's walks them one at a time (|w| loaded once for 4 tokens, w a vpsignb
 * memory operand), so nothing spills. */
typedef struct x8_pre_block {
    __m256i w[8], ws[8]; /* as the dec8_T decoders leave them */
    __m256 d;
} x8_pre_block;
AGX_INLINE void pre_dec_q4_0(const uint8_t *const rows[8], int i, x8_pre_block *b) { dec8_q4_0(rows, i, b->w, b->ws, &b->d); }
AGX_INLINE void pre_dec_q5_0(const uint8_t *const rows[8], int i, x8_pre_block *b) { dec8_q5_0(rows, i, b->w, b->ws, &b->d); }
AGX_INLINE void pre_dec_q8_0(const uint8_t *const rows[8], int i, x8_pre_block *b) { dec8_q8_0(rows, i, b->w, b->ws, &b->d); }

/* q4_0/q5_0: the 8 decoded vectors of each block, then dot8_tok per token */
AGX_INLINE void tile_pre_unsigned(int nb, const x8_pre_block *wb, const uint8_t *y, size_t ldy, const int NT,
                                  __m256 *acc, const int SUMS) {
    __m256 a[4];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a[t] = acc[t];
    for (int i = 0; i < nb; i++) {
        __m256i w[8];
        _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) w[g] = _mm256_load_si256(&wb[i].w[g]);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a[t] =
            dot8_tok(w, NULL, wb[i].d, (const agx_act_x8 *)(y + (size_t)t * ldy) + i, a[t], SUMS, 0);
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = a[t];
}
AGX_INLINE void tile_pre_q4_0(int nb, const x8_pre_block *wb, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) {
    tile_pre_unsigned(nb, wb, y, ldy, NT, acc, 8);
}
AGX_INLINE void tile_pre_q5_0(int nb, const x8_pre_block *wb, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) {
    tile_pre_unsigned(nb, wb, y, ldy, NT, acc, 4);
}

/* q8_0: one weight vector at a time for all tokens (unrolling the 8 by 4
 * measured best: 8 -> 105.5, 4 -> 115.6, 2 -> 112.4, 1 -> 113.8 GFLOP/s) */
AGX_INLINE void tile_pre_q8_0(int nb, const x8_pre_block *wb, const uint8_t *y, size_t ldy, const int NT, __m256 *acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a[4];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a[t] = acc[t];
    for (int i = 0; i < nb; i++) {
        const x8_pre_block *b = &wb[i];
        __m256i s[4];
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) s[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int g = 0; g < 8; g++) {
            const __m256i w = _mm256_load_si256(&b->w[g]);
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
                const agx_act_x8 *x = (const agx_act_x8 *)(y + (size_t)t * ldy) + i;
                const __m256i p = _mm256_maddubs_epi16(w, _mm256_sign_epi8(bcast4(x->qs + 4 * g), b->ws[g]));
                s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, ones));
            }
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const agx_act_x8 *x = (const agx_act_x8 *)(y + (size_t)t * ldy) + i;
            a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(b->d, _mm256_set1_ps(x->d)), a[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = a[t];
}

#define DEF_X8_PRE_GEMM(T) \
    AGX_DEF_XROWS_PRE_GEMM(T, 8, 4, __m256, _mm256_setzero_ps, _mm256_storeu_ps, x8_pre_block, pre_dec_##T, tile_pre_##T)
DEF_X8_PRE_GEMM(q4_0)
DEF_X8_PRE_GEMM(q5_0)
DEF_X8_PRE_GEMM(q8_0)

void agx_quant_avx2_gemm_q4_0(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt, float *out,
                              size_t ldo) {
    gemm_q4_0(n, w, ldw, nr, y, ldy, nt, out, ldo);
}

/* a matrix tile with its own activation format; one_tok: also for one token */
static void set_tile(agx_kernel_set *k, agx_gemm_fn gemm, agx_from_float_fn act_quant, size_t (*act_row_size)(int64_t),
                     bool one_tok) {
    k->gemm = gemm;
    k->gemm_quant = act_quant;
    k->act_row_size = act_row_size;
    k->one_tok_max_act = one_tok ? SIZE_MAX : 0;
}

void agx_quant_avx2_kernels(agx_kernel_set t[AGX_TYPE_COUNT]) {
    t[AGX_TYPE_Q4_0].from_float_ref = quant_q4_0_fma;
    t[AGX_TYPE_Q4_1].from_float_ref = quant_q4_1_fma;
    t[AGX_TYPE_Q5_0].from_float_ref = quant_q5_0_fma;
    t[AGX_TYPE_Q5_1].from_float_ref = quant_q5_1_fma;
    t[AGX_TYPE_Q8_0].from_float_ref = quant_q8_0_fma;
    t[AGX_TYPE_Q8_1].from_float_ref = quant_q8_1_fma;
    t[AGX_TYPE_Q8_K].from_float_ref = quant_q8_K_fma;
    t[AGX_TYPE_Q4_K].from_float_ref = quant_q4_K_fma;
    t[AGX_TYPE_Q5_K].from_float_ref = quant_q5_K_fma;
    t[AGX_TYPE_Q6_K].from_float_ref = quant_q6_K_fma;
    t[AGX_TYPE_Q2_K].from_float_ref = quant_q2_K_fma;
    t[AGX_TYPE_Q3_K].from_float_ref = quant_q3_K_fma;
    t[AGX_TYPE_F32].vec_dot = dot_f32;
    t[AGX_TYPE_F16].vec_dot = dot_f16;
    t[AGX_TYPE_BF16].vec_dot = dot_bf16;
    t[AGX_TYPE_Q2_K].vec_dot = dot_q2_K;
    t[AGX_TYPE_Q3_K].vec_dot = dot_q3_K;
    t[AGX_TYPE_Q4_0].vec_dot = dot_q4_0;
    t[AGX_TYPE_Q4_1].vec_dot = dot_q4_1;
    t[AGX_TYPE_Q5_0].vec_dot = dot_q5_0;
    t[AGX_TYPE_Q5_1].vec_dot = dot_q5_1;
    t[AGX_TYPE_Q8_0].vec_dot = dot_q8_0;
    t[AGX_TYPE_Q4_K].vec_dot = dot_q4_K;
    t[AGX_TYPE_Q5_K].vec_dot = dot_q5_K;
    t[AGX_TYPE_Q6_K].vec_dot = dot_q6_K;
    set_tile(&t[AGX_TYPE_Q4_K], gemm_q4_K, quant_act_k_q4, agx_act_k_row_size, true);
    set_tile(&t[AGX_TYPE_Q5_K], gemm_q5_K, quant_act_k_q4, agx_act_k_row_size, true);
    set_tile(&t[AGX_TYPE_Q6_K], gemm_q6_K, quant_act_k_q6, agx_act_k_row_size, true);
    set_tile(&t[AGX_TYPE_Q4_0], gemm_any_q4_0, quant_act_x8_q4, agx_act_x8_row_size, true);
    set_tile(&t[AGX_TYPE_Q5_0], gemm_any_q5_0, quant_act_x8_q5, agx_act_x8_row_size, true);
    /* q8_0's vec_dot has no nibbles to unpack: for one token the transpose
     * does not pay (8960x1536: 600 -> 870 us per matvec) */
    set_tile(&t[AGX_TYPE_Q8_0], gemm_any_q8_0, quant_act_x8_q8, agx_act_x8_row_size, false);
}
