/* quant_impl.h — engine-internal view of the tensor types: ggml's block layouts
 * (bit-exact with GGUF files), inline fp16 helpers, and the per-ISA kernel
 * entry points that quant.c wires into the type-traits table and matmul.c
 * uses for its matrix-matrix tiles. Not a public header. */
#ifndef AGX_ENGINE_QUANT_IMPL_H
#define AGX_ENGINE_QUANT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agx/quant.h"

#define AGX_QK4_0 32
#define AGX_QK4_1 32
#define AGX_QK5_0 32
#define AGX_QK5_1 32
#define AGX_QK8_0 32
#define AGX_QK8_1 32
#define AGX_QK_K 256
#define AGX_K_SCALE_SIZE 12

typedef uint16_t agx_half;

typedef struct { agx_half d; uint8_t qs[AGX_QK4_0 / 2]; } agx_block_q4_0;
typedef struct { agx_half d, m; uint8_t qs[AGX_QK4_1 / 2]; } agx_block_q4_1;
typedef struct { agx_half d; uint8_t qh[4]; uint8_t qs[AGX_QK5_0 / 2]; } agx_block_q5_0;
typedef struct { agx_half d, m; uint8_t qh[4]; uint8_t qs[AGX_QK5_1 / 2]; } agx_block_q5_1;
typedef struct { agx_half d; int8_t qs[AGX_QK8_0]; } agx_block_q8_0;
/* s = d * sum(qs), as in ggml */
typedef struct { agx_half d, s; int8_t qs[AGX_QK8_1]; } agx_block_q8_1;
typedef struct {
    uint8_t scales[AGX_QK_K / 16]; /* low 4 bits scale, high 4 bits min */
    uint8_t qs[AGX_QK_K / 4];
    agx_half d, dmin;
} agx_block_q2_K;
typedef struct {
    uint8_t hmask[AGX_QK_K / 8];
    uint8_t qs[AGX_QK_K / 4];
    uint8_t scales[12]; /* 16 6-bit scales */
    agx_half d;
} agx_block_q3_K;
typedef struct {
    agx_half d, dmin;
    uint8_t scales[AGX_K_SCALE_SIZE]; /* 8 6-bit scales + 8 6-bit mins */
    uint8_t qs[AGX_QK_K / 2];
} agx_block_q4_K;
typedef struct {
    agx_half d, dmin;
    uint8_t scales[AGX_K_SCALE_SIZE];
    uint8_t qh[AGX_QK_K / 8];
    uint8_t qs[AGX_QK_K / 2];
} agx_block_q5_K;
typedef struct {
    uint8_t ql[AGX_QK_K / 2];
    uint8_t qh[AGX_QK_K / 4];
    int8_t scales[AGX_QK_K / 16];
    agx_half d;
} agx_block_q6_K;
/* activation format of the K-quant dot kernels; bsums = sums of 16 qs */
typedef struct {
    float d;
    int8_t qs[AGX_QK_K];
    int16_t bsums[AGX_QK_K / 16];
} agx_block_q8_K;

_Static_assert(sizeof(agx_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(agx_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(agx_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(agx_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(agx_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(agx_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(agx_block_q2_K) == 84, "q2_K layout");
_Static_assert(sizeof(agx_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(agx_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(agx_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(agx_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(agx_block_q8_K) == 292, "q8_K layout");

/* Exact IEEE half -> float (all cases, incl. subnormals/inf/nan). */
static inline float agx_h2f(agx_half h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    float f;
    if (exp == 0) {
        f = (float)mant * 0x1p-24f; /* zero or subnormal, exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    memcpy(&f, &bits, 4);
    return f;
}

/* 6-bit scale j and min j of a q4_K / q5_K block (ggml get_scale_min_k4). */
static inline void agx_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

/* Unpacks the 8 scales and 8 mins of a q4_K/q5_K block into bytes. */
static inline void agx_unpack_k4_scales(const uint8_t *q, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 8; j++) agx_get_scale_min_k4(j, q, &sc[j], &mn[j]);
}

/* Unpacks the 16 6-bit q3_K scales (biased by 32) into signed bytes: low
 * nibbles in bytes 0..7 (scale j >= 8 in the high nibble of byte j-8), the top
 * two bits of scale j in byte 8 + j%4 at bit 2*(j/4). */
static inline void agx_unpack_q3k_scales(const uint8_t *packed, int8_t out[16]) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    memcpy(aux, packed, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    memcpy(out, aux, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(out[j] - 32);
}

/* Matrix-matrix tile: out[t*ldo + r] = dot(w row r, y token t) for r < nr,
 * t < nt; w rows are ldw bytes apart, y tokens (in the vec_dot_type) ldy bytes
 * apart. n is the row length in elements. */
typedef void (*agx_gemm_fn)(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt,
                            float *out, size_t ldo);

/* The kernels that read weights once per token (matrix-vector) prefetch this
 * many bytes ahead of where they read when rows are short: the 1536-wide
 * projections of a 1.5B model are 864-byte q4_K rows, each ending before the
 * hardware prefetcher has ramped up on it. Rows longer than
 * AGX_PREFETCH_MAX_ROW are left to the hardware: on the 1.5B shape's
 * 5040/7350-byte ffn_down rows software prefetches only took load slots, while
 * Mistral-Nemo's 4200-byte output rows still gain (docs/kernels.md has the
 * runs). 1024 ahead was slower, 2048-4096 equal. Prefetches never fault, so
 * reading past the end is fine. */
#define AGX_PREFETCH_AHEAD 2048
#define AGX_PREFETCH_MAX_ROW 4608

/* prefetch the `bytes` that lie AGX_PREFETCH_AHEAD past p (integer address
 * arithmetic: the target may be past the end of the array) */
/* whether a row of row_bytes gets software prefetches (see above) */
static inline bool agx_prefetch_row(size_t row_bytes) { return row_bytes <= AGX_PREFETCH_MAX_ROW; }

/* prefetch the cache lines of bytes at p (integer address arithmetic: p may
 * lie past the end of the array) */
static inline void agx_prefetch_span(uintptr_t p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const void *)(p + o), 0, 3);
}

static inline void agx_prefetch_ahead(const void *p, size_t bytes) {
    agx_prefetch_span((uintptr_t)p + AGX_PREFETCH_AHEAD, bytes);
}

/* Activation block of the K-quant matrix tiles (AVX2 and AVX-512): one q8_K
 * block (same quants and d) whose quants start a cache line (q8_K's 292-byte
 * blocks made every 64-byte load of the inner loops straddle two lines: +5 %
 * for the AVX-512 q4_K tile) and come in the order the tile decodes the
 * weights (each kernel file has its tables). Tiles of weights with mins
 * (q4_K, q5_K) read the 8 per-32 sums times d as floats, so the mins term of
 * a (block, token) is one 8-wide FMA; the others q8_K's int16 bsums. */
typedef struct {
    int8_t qs[AGX_QK_K];
    union {
        int16_t bsums[16]; /* q8_K's (q6_K, q2_K, q3_K) */
        float dsum[8];     /* q4_K, q5_K: d * (bsums[2j] + bsums[2j+1]) */
    };
    float d;
    uint8_t pad[28];
} agx_act_k;
_Static_assert(sizeof(agx_act_k) == 320, "agx_act_k: five cache lines");

static inline size_t agx_act_k_row_size(int64_t n) {
    return n > 0 && n % AGX_QK_K == 0 ? (size_t)(n / AGX_QK_K) * sizeof(agx_act_k) : 0;
}

/* a from the q8_K block q: 8-byte chunk c of a->qs is chunk order[c] of q->qs
 * (order NULL: q's order); with_dsum: the float per-32 sums, else bsums. */
static inline void agx_act_k_fill(const agx_block_q8_K *q, const uint8_t *order, bool with_dsum, agx_act_k *a) {
    for (int c = 0; c < AGX_QK_K / 8; c++) memcpy(a->qs + 8 * c, q->qs + 8 * (order ? order[c] : c), 8);
    if (with_dsum)
        for (int j = 0; j < 8; j++) a->dsum[j] = q->d * (float)(q->bsums[2 * j] + q->bsums[2 * j + 1]);
    else
        memcpy(a->bsums, q->bsums, sizeof(a->bsums));
    a->d = q->d;
    memset(a->pad, 0, sizeof(a->pad));
}

/* agx_act_k blocks of x with q8_K, a q8_K quantizer (its bits are kept);
 * order and with_dsum as for agx_act_k_fill */
static inline void agx_act_k_quantize(void (*q8_K)(const float *, void *, int64_t), const float *x, agx_act_k *y,
                                      int64_t n, const uint8_t *order, bool with_dsum) {
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        agx_block_q8_K q;
        q8_K(x + i * AGX_QK_K, &q, AGX_QK_K);
        agx_act_k_fill(&q, order, with_dsum, &y[i]);
    }
}

/* Activation block of the row-interleaved tiles of 32-element weight types
 * (AVX2: 8 rows side by side, AVX-512: 16): q8_0's quants, d as float, and
 * the weights' offset (q4_0 8, q5_0 16, 128 where q8_0 weights are read as
 * w + 128) times the sum of the quants. */
typedef struct {
    int8_t qs[32];
    float d;
    int32_t corr;
} agx_act_x8;

static inline size_t agx_act_x8_row_size(int64_t n) {
    return n > 0 && n % 32 == 0 ? (size_t)(n / 32) * sizeof(agx_act_x8) : 0;
}

/* y from x with q8_0, a q8_0 activation quantizer (its bits are kept) */
static inline void agx_act_x8_quantize(void (*q8_0)(const float *, void *, int64_t), const float *x, agx_act_x8 *y,
                                       int64_t n, int bias) {
    agx_block_q8_0 q[8];
    for (int64_t i0 = 0; i0 < n / 32; i0 += 8) {
        const int nblk = n / 32 - i0 < 8 ? (int)(n / 32 - i0) : 8;
        q8_0(x + 32 * i0, q, 32 * nblk);
        for (int k = 0; k < nblk; k++) {
            agx_act_x8 *a = &y[i0 + k];
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += q[k].qs[j];
            memcpy(a->qs, q[k].qs, 32);
            a->d = agx_h2f(q[k].d);
            a->corr = bias * sum;
        }
    }
}

/* the one-token limit of tiles whose activation row must stay in L1 to beat
 * vec_dot (rows up to ~5400 elements in the 3-byte-per-element formats) */
#define AGX_ONE_TOK_L1_ACT 16384

/* Kernels chosen for this CPU (quant.c fills them once with the traits). */
typedef struct agx_kernel_set {
    agx_vec_dot_fn vec_dot;
    agx_gemm_fn gemm; /* NULL: matmul falls back to vec_dot per (row, token) */
    /* Activation format the gemm reads, when it is not the vec_dot_type:
     * its quantizer and bytes per row of n elements (0: n not supported). */
    agx_from_float_fn gemm_quant;
    size_t (*act_row_size)(int64_t n);
    /* One token, where another tile serves it better than gemm (NULL: gemm
     * with its format): that kernel, its activation quantizer and row size. */
    agx_gemm_fn one_tok_gemm;
    agx_from_float_fn one_tok_quant;
    size_t (*one_tok_act_row_size)(int64_t n);
    /* one token: matmul uses the one-token tile (faster than vec_dot per row)
     * while its activation row takes at most this many bytes; 0: never,
     * SIZE_MAX: at any width */
    size_t one_tok_max_act;
    /* the type's reference quantizer built for this ISA (identical bits) */
    agx_from_float_fn from_float_ref;
} agx_kernel_set;

/* The matrix-tile kernel set for wtype after the ISA choice (gemm NULL when none). */
agx_kernel_set agx_quant_gemm_get(uint32_t wtype);
/* Kernel set for an explicit ISA level (0 scalar, 1 avx2, 2 avx512); NULL
 * members when that level has no kernel for the type. Used by tests. */
agx_kernel_set agx_quant_kernels_for_isa(uint32_t wtype, int isa);
/* Level the CPU supports (after AGX_CPU_ISA): 0 scalar, 1 avx2, 2 avx512. */
int agx_cpu_isa_level(void);
/* Level the hardware supports, ignoring AGX_CPU_ISA (tests use every level). */
int agx_cpu_hw_level(void);

/* Per-ISA kernel tables: entries indexed by ggml type id. */
void agx_quant_avx2_kernels(agx_kernel_set table[AGX_TYPE_COUNT]);
void agx_quant_avx512_kernels(agx_kernel_set table[AGX_TYPE_COUNT]);
/* The AVX-512 one-token tiles that do not need VBMI, for types whose
 * installed one uses VBMI (q5_0); NULL otherwise. Lets tests cover both. */
agx_gemm_fn agx_quant_avx512_gemm_novbmi(uint32_t wtype);
/* AVX2's 8-row q4_0 tile (agx_act_x8 activations with the q4_0 offset):
 * the AVX-512 one-token path runs it on short rows, where it measured
 * faster than the 16-row tile (docs/kernels.md). */
void agx_quant_avx2_gemm_q4_0(int n, const void *w, size_t ldw, int nr, const void *y, size_t ldy, int nt, float *out,
                              size_t ldo);
/* The AVX-512 tiles for weights repacked 16 rows at a time (agx_x16_repack):
 * gemm, its activation quantizer and row size; all NULL for other types. */
agx_kernel_set agx_quant_avx512_x16_kernels(uint32_t wtype);
/* Fast activation quantizers (same bits as quant.c's activation quantizers:
 * llama.cpp's x86 run-time ones for q8_0, the reference for q8_K). */
void agx_quantize_row_q8_K_avx512(const float *x, void *y, int64_t n);
void agx_quantize_row_q8_0_avx512(const float *x, void *y, int64_t n);

#endif
