/* quant_ktile.h — the loop nests of the matrix tiles and a transpose, shared
 * by the AVX2 and AVX-512 kernel files (not a public header).
 *
 * K-quants: each kernel file defines, before using
 * AGX_DEF_K_GEMM(T, BLK, CHUNK), its own
 *   tile_T(nb, x, y, ldy, NT, acc): nb blocks of one weight row x against NT
 *     (compile-time) tokens of agx_act_k rows ldy bytes apart, adding into
 *     one 8-wide float accumulator per token;
 *   hsum256(__m256): the sum of 8 floats.
 * One token runs tile_T block by block, rows one after another, each block's
 * bytes prefetched ahead when the row is short (agx_prefetch_row).
 * The blocks go in chunks of CHUNK for up to AGX_K_ROWS rows at a time, so
 * 8 tokens' activations of a chunk (8 x 6 x 320 bytes for AGX_K_CHUNK) are
 * read from L1 by every row: whole rows of ffn_down's 8960 columns (90 KB for
 * 8 tokens) came from L2 for each row, 20 % slower than 1536-column rows on
 * the AVX-512 q4_K tile. Types whose tiles measured no gain from chunks take
 * whole rows (CHUNK = INT_MAX). */
#ifndef AGX_ENGINE_QUANT_KTILE_H
#define AGX_ENGINE_QUANT_KTILE_H
#include <immintrin.h>
#include <limits.h>
#include <string.h>

#include "engine/quant_impl.h"

/* 8x8 dword transpose of 8 registers: r[g] lane k = old r[k] lane g (the
 * row-interleaved q8_0 tiles) */
static inline __attribute__((always_inline)) void agx_transpose8x8_epi32(__m256i r[8]) {
    __m256i a[8], c[8];
    _Pragma("GCC unroll 4") for (int k = 0; k < 8; k += 2) {
        a[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
        a[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
    }
    _Pragma("GCC unroll 2") for (int k = 0; k < 8; k += 4) {
        c[k] = _mm256_unpacklo_epi64(a[k], a[k + 2]);
        c[k + 1] = _mm256_unpackhi_epi64(a[k], a[k + 2]);
        c[k + 2] = _mm256_unpacklo_epi64(a[k + 1], a[k + 3]);
        c[k + 3] = _mm256_unpackhi_epi64(a[k + 1], a[k + 3]);
    }
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        r[g] = _mm256_permute2x128_si256(c[g], c[g + 4], 0x20);
        r[g + 4] = _mm256_permute2x128_si256(c[g], c[g + 4], 0x31);
    }
}

#define AGX_K_CHUNK 6
#define AGX_K_ROWS 16

#define AGX_DEF_K_GEMM(T, BLK, CHUNK)                                                                           \
    static void gemv_##T(int nb, const uint8_t *w, size_t ldw, int nr, const agx_act_k *y, float *out) {        \
        const bool pf = agx_prefetch_row(ldw);                                                                  \
        for (int r = 0; r < nr; r++) {                                                                          \
            const BLK *x = (const BLK *)(w + (size_t)r * ldw);                                                  \
            __m256 acc = _mm256_setzero_ps();                                                                   \
            for (int i = 0; i < nb; i++) {                                                                      \
                if (pf) agx_prefetch_ahead(x + i, sizeof(BLK));                                                 \
                tile_##T(1, x + i, (const uint8_t *)(y + i), 0, 1, &acc);                                       \
            }                                                                                                   \
            out[r] = hsum256(acc);                                                                              \
        }                                                                                                       \
    }                                                                                                           \
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

/* rows[g * per + k] = row r0 + per*g + k of w for the groups of this work
 * item (the last group repeats row nr-1 where rows run out) */
static inline void agx_xrows_pick(const void *w, size_t ldw, int nr, int r0, int ng, int per, const uint8_t **rows) {
    for (int g = 0; g < ng; g++)
        for (int k = 0; k < per; k++) {
            const int r = r0 + per * g + k < nr ? r0 + per * g + k : nr - 1;
            rows[g * per + k] = (const uint8_t *)w + (size_t)r * ldw;
        }
}
/* the first nk of the ROWS sums in v as row r of out for token t (ldo apart) */
static inline void agx_xrows_put(float *out, size_t ldo, int t, int r, const float *v, int nk) {
    memcpy(out + (size_t)t * ldo + r, v, (size_t)nk * sizeof(float));
}

/* 32-element block types, rows side by side (ROWS per vector: 8 for AVX2,
 * 16 for AVX-512): each kernel file defines
 *   tileR_T(nb, rows, y, ldy, NT, acc, pf): blocks 0..nb-1 of the ROWS rows
 *     rows[] against NT (compile-time, <= TOKS) tokens of agx_act_x8 rows,
 *     adding into acc[t] (VEC, one lane per row); pf: for one token, the
 *     address of the next ROWS rows' bytes to prefetch in step (0: none; an
 *     integer, as it may lie past the weights).
 * Work items of AGX_K_ROWS rows are split into groups of ROWS (the last
 * group repeats its last row); the blocks go in chunks of AGX_X8_CHUNK so a
 * chunk of TOKS tokens' activations stays in L1 while every group reads it.
 * For one token, ROWS short rows read side by side are not followed by the
 * hardware prefetcher (a 1536-wide q4_0 matvec ran 60 % slower), so the tile
 * prefetches the next group while rows are short (agx_prefetch_row). */
#define AGX_X8_CHUNK 64
#define AGX_DEF_XROWS_GEMM(NAME, T, ROWS, TOKS, VEC, VZERO, VSTORE)                                                   \
    static void tilesR_##NAME(int nb, const uint8_t *const rows[ROWS], const uint8_t *y, size_t ldy, int nt,       \
                           VEC *acc, uintptr_t pf) {                                                       \
        switch (nt) { /* NT beyond TOKS never happens; 1 keeps it in bounds */                                  \
        case 8: tileR_##T(nb, rows, y, ldy, (TOKS) >= 8 ? 8 : 1, acc, 0); break;                             \
        case 7: tileR_##T(nb, rows, y, ldy, (TOKS) >= 7 ? 7 : 1, acc, 0); break;                             \
        case 6: tileR_##T(nb, rows, y, ldy, (TOKS) >= 6 ? 6 : 1, acc, 0); break;                             \
        case 5: tileR_##T(nb, rows, y, ldy, (TOKS) >= 5 ? 5 : 1, acc, 0); break;                             \
        case 4: tileR_##T(nb, rows, y, ldy, 4, acc, 0); break;                                               \
        case 3: tileR_##T(nb, rows, y, ldy, 3, acc, 0); break;                                               \
        case 2: tileR_##T(nb, rows, y, ldy, 2, acc, 0); break;                                               \
        default: tileR_##T(nb, rows, y, ldy, 1, acc, pf); break;                                                \
        }                                                                                                       \
    }                                                                                                           \
    static void gemm_##NAME(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,        \
                            float *out, size_t ldo) {                                                           \
        enum { NG = AGX_K_ROWS / (ROWS) };                                                                      \
        const int nb = n / 32;                                                                                  \
        for (int r0 = 0; r0 < nr; r0 += AGX_K_ROWS) {                                                           \
            const int ng = (nr - r0 + (ROWS)-1) / (ROWS) < NG ? (nr - r0 + (ROWS)-1) / (ROWS) : NG;             \
            const uint8_t *rows[NG][ROWS];                                                                      \
            agx_xrows_pick(w, ldw, nr, r0, NG, (ROWS), &rows[0][0]);                                            \
            for (int t0 = 0; t0 < nt; t0 += (TOKS)) {                                                           \
                const int ntt = nt - t0 < (TOKS) ? nt - t0 : (TOKS);                                            \
                VEC acc[NG][TOKS];                                                                              \
                for (int g = 0; g < NG; g++)                                                                    \
                    for (int t = 0; t < (TOKS); t++) acc[g][t] = VZERO();                                       \
                for (int i0 = 0; i0 < nb; i0 += AGX_X8_CHUNK) {                                                 \
                    const int nbb = nb - i0 < AGX_X8_CHUNK ? nb - i0 : AGX_X8_CHUNK;                            \
                    const uint8_t *yt = (const uint8_t *)y + (size_t)t0 * ldy + (size_t)i0 * sizeof(agx_act_x8); \
                    for (int g = 0; g < ng; g++) {                                                              \
                        const uint8_t *rg[ROWS];                                                                \
                        for (int k = 0; k < (ROWS); k++) rg[k] = rows[g][k] + (size_t)i0 * sizeof(agx_block_##T); \
                        const uintptr_t pf = nt == 1 && agx_prefetch_row(ldw)                                   \
                                                 ? (uintptr_t)rows[g][0] + (ROWS)*ldw +                         \
                                                       (size_t)i0 * (ROWS) * sizeof(agx_block_##T)              \
                                                 : 0;                                                           \
                        tilesR_##NAME(nbb, rg, yt, ldy, ntt, acc[g], pf);                                          \
                    }                                                                                           \
                }                                                                                               \
                for (int g = 0; g < ng; g++) {                                                                  \
                    float v[ROWS];                                                                              \
                    const int nk = nr - r0 - (ROWS)*g < (ROWS) ? nr - r0 - (ROWS)*g : (ROWS);                   \
                    for (int t = 0; t < ntt; t++) {                                                             \
                        VSTORE(v, acc[g][t]);                                                                   \
                        agx_xrows_put(out, ldo, t0 + t, r0 + (ROWS)*g, v, nk);                                  \
                    }                                                                                           \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
    }

/* More than TOKS tokens: the same tiles would redo each block's decode (the
 * transposes) for every TOKS tokens. This gemm decodes AGX_K_ROWS rows x
 * AGX_XPRE_CHUNK blocks once per AGX_XPRE_TOKS tokens into a stack scratch
 * (AVX2 34 KiB, AVX-512 18 KiB: L1/L2), and the kernel file's tile reads it.
 * Chunks of 32 blocks against 16 (alternating, two runs, 1536x8960 x 512
 * tokens, GFLOP/s): AVX2 q4_0 156.8, 157.6 -> 165.6, 165.8, q8_0 112.2,
 * 111.9 -> 114.2, 117.1; AVX-512 within the noise (q8_0 239-270 either
 * way); 64 no better than 32. Each kernel file passes to
 * AGX_DEF_XROWS_PRE_GEMM(NAME, ROWS, TOKS, VEC, VZERO, VSTORE, BLK, DEC, TILE)
 *   BLK: one block of ROWS rows as its tile wants it (decoded vectors, scales);
 *   DEC(rows, i, BLK *): decodes block i of the ROWS rows rows[];
 *   TILE(nb, const BLK *, y, ldy, NT, acc): like tileR_T on decoded blocks.
 * gemm_any_NAME takes gemm_NAME (AGX_DEF_XROWS_GEMM) up to TOKS tokens. */
#define AGX_XPRE_CHUNK 32
#define AGX_XPRE_TOKS 64
#define AGX_DEF_XROWS_PRE_GEMM(NAME, ROWS, TOKS, VEC, VZERO, VSTORE, BLK, DEC, TILE)                                \
    static void gemm_pre_##NAME(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,       \
                                float *out, size_t ldo) {                                                          \
        enum { NG = AGX_K_ROWS / (ROWS) };                                                                         \
        const int nb = n / 32;                                                                                     \
        BLK wb[NG][AGX_XPRE_CHUNK];                                                                                \
        VEC acc[NG][AGX_XPRE_TOKS];                                                                                \
        for (int r0 = 0; r0 < nr; r0 += AGX_K_ROWS) {                                                              \
            const int ng = (nr - r0 + (ROWS)-1) / (ROWS) < NG ? (nr - r0 + (ROWS)-1) / (ROWS) : NG;                \
            const uint8_t *rows[NG][ROWS];                                                                         \
            agx_xrows_pick(w, ldw, nr, r0, NG, (ROWS), &rows[0][0]);                                               \
            for (int T0 = 0; T0 < nt; T0 += AGX_XPRE_TOKS) {                                                       \
                const int ntok = nt - T0 < AGX_XPRE_TOKS ? nt - T0 : AGX_XPRE_TOKS;                                \
                for (int g = 0; g < ng; g++)                                                                       \
                    for (int t = 0; t < ntok; t++) acc[g][t] = VZERO();                                            \
                for (int i0 = 0; i0 < nb; i0 += AGX_XPRE_CHUNK) {                                                  \
                    const int nbb = nb - i0 < AGX_XPRE_CHUNK ? nb - i0 : AGX_XPRE_CHUNK;                           \
                    for (int g = 0; g < ng; g++)                                                                   \
                        for (int i = 0; i < nbb; i++) DEC(rows[g], i0 + i, &wb[g][i]);                             \
                    for (int t0 = 0; t0 < ntok; t0 += (TOKS)) {                                                    \
                        const uint8_t *yt = (const uint8_t *)y + (size_t)(T0 + t0) * ldy + (size_t)i0 * sizeof(agx_act_x8); \
                        for (int g = 0; g < ng; g++) {                                                             \
                            VEC *a = &acc[g][t0];                                                                  \
                            switch (ntok - t0 < (TOKS) ? ntok - t0 : (TOKS)) {                                     \
                            case 8: TILE(nbb, wb[g], yt, ldy, (TOKS) >= 8 ? 8 : 1, a); break;                       \
                            case 7: TILE(nbb, wb[g], yt, ldy, (TOKS) >= 7 ? 7 : 1, a); break;                       \
                            case 6: TILE(nbb, wb[g], yt, ldy, (TOKS) >= 6 ? 6 : 1, a); break;                       \
                            case 5: TILE(nbb, wb[g], yt, ldy, (TOKS) >= 5 ? 5 : 1, a); break;                       \
                            case 4: TILE(nbb, wb[g], yt, ldy, 4, a); break;                                         \
                            case 3: TILE(nbb, wb[g], yt, ldy, 3, a); break;                                         \
                            case 2: TILE(nbb, wb[g], yt, ldy, 2, a); break;                                         \
                            default: TILE(nbb, wb[g], yt, ldy, 1, a); break;                                        \
                            }                                                                                      \
                        }                                                                                          \
                    }                                                                                              \
                }                                                                                                  \
                for (int g = 0; g < ng; g++) {                                                                     \
                    float v[ROWS];                                                                                 \
                    const int nk = nr - r0 - (ROWS)*g < (ROWS) ? nr - r0 - (ROWS)*g : (ROWS);                      \
                    for (int t = 0; t < ntok; t++) {                                                               \
                        VSTORE(v, acc[g][t]);                                                                      \
                        agx_xrows_put(out, ldo, T0 + t, r0 + (ROWS)*g, v, nk);                                     \
                    }                                                                                              \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    static void gemm_any_##NAME(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,       \
                                float *out, size_t ldo) {                                                          \
        if (nt <= (TOKS)) gemm_##NAME(n, w, ldw, nr, y, ldy, nt, out, ldo);                                        \
        else gemm_pre_##NAME(n, w, ldw, nr, y, ldy, nt, out, ldo);                                                 \
    }

#endif
