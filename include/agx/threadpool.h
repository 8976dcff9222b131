/* threadpool.h — a persistent pool of worker threads (created once, reused for
 * every operation) and the matrix kernels that run on it. */
#ifndef AGX_THREADPOOL_H
#define AGX_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_threadpool agx_threadpool;

/* n_threads <= 0 means the number of available cores. */
agx_status agx_threadpool_create(int n_threads, agx_threadpool **out, agx_error *err);
void agx_threadpool_free(agx_threadpool *tp);
int agx_threadpool_n_threads(const agx_threadpool *tp);
/* Runs fn(ith, nth, arg) on every thread (the caller participates as ith 0) and waits. */
void agx_threadpool_run(agx_threadpool *tp, void (*fn)(int ith, int nth, void *arg), void *arg);
/* Grows the pool-owned scratch memory agx_matmul uses (quantized activations:
 * about n_tok * n_cols * 1.15 bytes for quantized weights, 4x that for f32)
 * ahead of time, so that a later agx_matmul never has to allocate; an error
 * when the memory is not available. tp may be NULL (then it does nothing). */
agx_status agx_threadpool_reserve(agx_threadpool *tp, size_t bytes, agx_error *err);
/* Scratch agx_matmul needs for these arguments (what to reserve). */
size_t agx_matmul_scratch_size(uint32_t wtype, int64_t n_cols, int64_t n_tok);

/* Y[t][r] = sum_c W[r][c] * X[t][c] for t < n_tok, r < n_rows.
 * tp may be NULL (single-threaded). One agx_matmul at a time per pool.
 * W: n_rows rows of n_cols elements of wtype (row stride agx_type_row_size(wtype, n_cols)).
 * X: n_tok x n_cols float32, row-major; Y: n_tok x n_rows float32, row-major.
 * Activations are quantized once per call to the integers llama.cpp would use
 * (the weight type's vec_dot_type; q4_0/q5_0/q8_0 tiles keep the same q8_0
 * values in a wider layout), rows are split across threads; n_tok > 1 uses a
 * cache-blocked matrix-matrix path (docs/kernels.md). Scratch is the pool's (grown as needed, freed with the
 * pool; see agx_threadpool_reserve). An unsupported wtype, an n_cols that is
 * not a multiple of the block size, or no memory for scratch fills Y with NaN. */
void agx_matmul(agx_threadpool *tp, uint32_t wtype, const void *w, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y);

/* How a matrix's weights are laid out. */
enum {
    AGX_WLAYOUT_ROWS = 0, /* as in GGUF: row after row */
    AGX_WLAYOUT_X16 = 1   /* agx_matmul_x16_repack: 16 rows at a time as the 16-row tiles read them */
};

/* One matrix of agx_matmul_many: Y (n_tok x n_rows) = X · Wᵀ as in agx_matmul. */
typedef struct agx_matmul_dst {
    uint32_t wtype;
    const void *w;
    int64_t n_rows;
    float *y;
    uint32_t layout; /* AGX_WLAYOUT_* (0: rows) */
} agx_matmul_dst;

/* Bytes of the x16 copy of n_rows x n_cols weights of wtype (the same as the
 * rows), or 0 when n_rows is not a multiple of 16 or this CPU's kernels do
 * not run that layout faster: with AVX-512 VNNI q5_0 matrices and q4_0 ones
 * of long rows (> 4608 bytes). The x16 tiles need no transpose per block:
 * prompts run much faster, one token at least as fast (docs/kernels.md). */
size_t agx_matmul_x16_size(uint32_t wtype, int64_t n_rows, int64_t n_cols);
/* dst (agx_matmul_x16_size bytes; 64-byte aligned for speed) = w repacked. */
void agx_matmul_x16_repack(uint32_t wtype, const void *w, int64_t n_rows, int64_t n_cols, void *dst);

#define AGX_MATMUL_MAX_MANY 4

/* The same X (n_tok x n_cols) times several matrices of n_cols columns
 * (attention's q, k and v; the feed-forward's gate and up): the same results
 * as one agx_matmul per matrix. For one token and up to AGX_MATMUL_MAX_MANY
 * matrices it is one pool job over all their rows, the activations quantized
 * once per format: generation is memory bound, and every job ends with one
 * thread finishing alone and then a barrier. */
void agx_matmul_many(agx_threadpool *tp, int n_mats, const agx_matmul_dst *mats, int64_t n_cols, const float *x,
                     int64_t n_tok);
/* Scratch agx_matmul_many needs (what to reserve). */
size_t agx_matmul_many_scratch_size(int n_mats, const agx_matmul_dst *mats, int64_t n_cols, int64_t n_tok);

#ifdef __cplusplus
}
#endif
#endif
