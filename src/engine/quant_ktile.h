/* quant_ktile.h — the loop nest of the K-quant matrix tiles, shared by the
 * AVX2 and AVX-512 kernel files. Each of them defines, before using
 * AGX_DEF_K_GEMM(T, BLK, CHUNK), its own
 *   tile_T(nb, x, y, ldy, NT, acc): nb blocks of one weight row x against NT
 *     (compile-time) tokens of agx_act_k rows ldy bytes apart, adding into
 *     one 8-wide float accumulator per token;
 *   gemv_T(nb, w, ldw, nr, y, out): nr rows against one token;
 *   hsum256(__m256): the sum of 8 floats.
 * The blocks go in chunks of CHUNK for up to AGX_K_ROWS rows at a time, so
 * 8 tokens' activations of a chunk (8 x 6 x 320 bytes for AGX_K_CHUNK) are
 * read from L1 by every row: whole rows of ffn_down's 8960 columns (90 KB for
 * 8 tokens) came from L2 for each row, 20 % slower than 1536-column rows on
 * the AVX-512 q4_K tile. Types whose tiles measured no gain from chunks take
 * whole rows (CHUNK = INT_MAX). Not a public header. */
#ifndef AGX_ENGINE_QUANT_KTILE_H
#define AGX_ENGINE_QUANT_KTILE_H
#include <limits.h>

#include "engine/quant_impl.h"

#define AGX_K_CHUNK 6
#define AGX_K_ROWS 16

#define AGX_DEF_K_GEMM(T, BLK, CHUNK)                                                                           \
    /* NT as a constant for tile_T's unrolled loops */                                                         \
    static void tiles_##T(int nb, const BLK *x, const uint8_t *y, size_t ldy, int nt, __m256 *acc) {            \
        switch (nt) {                                                                                           \
        case 8: tile_##T(nb, x, y, ldy, 8, acc); break;                                                         \
        case 7: tile_##T(nb, x, y, ldy, 7, acc); break;                                                         \
        case 6: tile_##T(nb, x, y, ldy, 6, acc); break;                                                         \
        case 5: tile_##T(nb, x, y, ldy, 5, acc); break;                                                         \
        case 4: tile_##T(nb, x, y, ldy, 4, acc); break;                                                         \
        case 3: tile_##T(nb, x, y, ldy, 3, acc); break;                                                         \
        case 2: tile_##T(nb, x, y, ldy, 2, acc); break;                                                         \
        default: tile_##T(nb, x, y, ldy, 1, acc); break;                                                        \
        }                                                                                                       \
    }                                                                                                           \
    static void gemm_##T(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,           \
                         float *out, size_t ldo) {                                                              \
        const int nb = n / AGX_QK_K;                                                                            \
        if (nt == 1) {                                                                                          \
            gemv_##T(nb, w, ldw, nr, y, out);                                                                   \
            return;                                                                                             \
        }                                                                                                       \
        __m256 acc[AGX_K_ROWS][8];                                                                              \
        for (int t0 = 0; t0 < nt; t0 += 8) {                                                                    \
            const int ntt = nt - t0 < 8 ? nt - t0 : 8;                                                          \
            for (int r0 = 0; r0 < nr; r0 += AGX_K_ROWS) {                                                       \
                const int nrr = nr - r0 < AGX_K_ROWS ? nr - r0 : AGX_K_ROWS;                                    \
                for (int r = 0; r < nrr; r++)                                                                   \
                    for (int t = 0; t < 8; t++) acc[r][t] = _mm256_setzero_ps();                                \
                for (int i0 = 0; i0 < nb; i0 += (CHUNK)) {                                                      \
                    const int nbb = nb - i0 < (CHUNK) ? nb - i0 : (CHUNK);                                      \
                    const uint8_t *yt = (const uint8_t *)y + (size_t)t0 * ldy + (size_t)i0 * sizeof(agx_act_k); \
                    for (int r = 0; r < nrr; r++)                                                               \
                        tiles_##T(nbb, (const BLK *)((const uint8_t *)w + (size_t)(r0 + r) * ldw) + i0, yt, ldy, \
                                  ntt, acc[r]);                                                                 \
                }                                                                                               \
                for (int r = 0; r < nrr; r++)                                                                   \
                    for (int t = 0; t < ntt; t++) out[(size_t)(t0 + t) * ldo + r0 + r] = hsum256(acc[r][t]);    \
            }                                                                                                   \
        }                                                                                                       \
    }

#endif
