/* matmul.c — agx_matmul: Y = X · Wᵀ on the thread pool. Activations are
 * quantized once per call into the format the weight type's kernel reads
 * (as llama.cpp does), then the output is cut into work items taken
 * dynamically by the threads: row chunks for one token (matrix-vector, memory
 * bound), row x token tiles for several tokens (matrix-matrix, compute bound,
 * each weight block decoded once per group of tokens by the tile kernel). */
#include <math.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agx/threadpool.h"
#include "agx/util.h"
#include "engine/quant_impl.h"
#include "engine/threadpool_impl.h"

/* Tile shape of the matrix-matrix path: rows x tokens per work item. The
 * weight rows of a tile stay in L1/L2 while the tile kernel walks its tokens. */
#define MM_TILE_ROWS 16
#define MM_TILE_TOKS 64

typedef struct mm_plan {
    const agx_type_traits *tr;
    agx_vec_dot_fn vec_dot;
    agx_gemm_fn gemm;           /* NULL: vec_dot per (row, token) */
    agx_from_float_fn quant;    /* NULL: activations used as given (f32) */
    size_t act_row;             /* bytes per quantized activation row */
} mm_plan;

typedef struct mm_job {
    mm_plan p;
    const uint8_t *w;
    size_t ldw;
    int64_t n_rows, n_cols, n_tok;
    const float *x;
    float *y;
    uint8_t *act;
    int64_t chunk_rows, chunk_toks, n_row_chunks, n_items;
    _Atomic int64_t next;
} mm_job;

static int mm_make_plan(uint32_t wtype, int64_t n_cols, int64_t n_tok, mm_plan *p) {
    memset(p, 0, sizeof(*p));
    p->tr = agx_type_traits_get(wtype);
    /* kernels take the row length as int */
    if (!p->tr || !p->tr->vec_dot || n_cols <= 0 || n_cols > INT32_MAX || !agx_type_row_size(wtype, n_cols))
        return -1;
    const agx_type_traits *vt = agx_type_traits_get(p->tr->vec_dot_type);
    if (!vt || n_cols % vt->block_size) return -1;
    p->vec_dot = p->tr->vec_dot;
    agx_kernel_set ks = agx_quant_gemm_get(wtype);
    if (n_tok == 1 && ks.one_tok_gemm) {
        ks.gemm = ks.one_tok_gemm;
        ks.gemm_quant = ks.one_tok_quant;
        ks.act_row_size = ks.one_tok_act_row_size;
    }
    const size_t act_row = ks.gemm_quant ? ks.act_row_size(n_cols) : 0;
    /* one token: the kernel set says up to which activation row its tile
     * beats vec_dot per row (most tiles at any width; tiles with
     * pre-computed scales and offsets while that row stays in L1) */
    const int one_tok_ok = ks.one_tok_max_act && act_row <= ks.one_tok_max_act;
    if (ks.gemm && (!ks.gemm_quant || act_row) && (n_tok > 1 || one_tok_ok)) {
        p->gemm = ks.gemm;
        if (ks.gemm_quant) {
            p->quant = ks.gemm_quant;
            p->act_row = act_row;
            return 0;
        }
    }
    if (p->tr->vec_dot_type != AGX_TYPE_F32) {
        p->quant = vt->from_float;
        p->act_row = agx_type_row_size(p->tr->vec_dot_type, n_cols);
    } else {
        p->act_row = (size_t)n_cols * sizeof(float);
    }
    return 0;
}

size_t agx_matmul_scratch_size(uint32_t wtype, int64_t n_cols, int64_t n_tok) {
    mm_plan p;
    if (n_tok <= 0 || mm_make_plan(wtype, n_cols, n_tok, &p) || !p.quant) return 0;
    return p.act_row * (size_t)n_tok;
}

static void mm_quantize(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    for (;;) {
        const int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n_tok) break;
        j->p.quant(j->x + t * j->n_cols, j->act + (size_t)t * j->p.act_row, j->n_cols);
    }
}

static void mm_compute(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    const int n = (int)j->n_cols;
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (item >= j->n_items) break;
        const int64_t r0 = (item % j->n_row_chunks) * j->chunk_rows;
        const int64_t t0 = (item / j->n_row_chunks) * j->chunk_toks;
        const int64_t nr = j->n_rows - r0 < j->chunk_rows ? j->n_rows - r0 : j->chunk_rows;
        const int64_t nt = j->n_tok - t0 < j->chunk_toks ? j->n_tok - t0 : j->chunk_toks;
        const uint8_t *w = j->w + (size_t)r0 * j->ldw;
        const uint8_t *a = j->act + (size_t)t0 * j->p.act_row;
        float *y = j->y + t0 * j->n_rows + r0;
        if (j->p.gemm) {
            j->p.gemm(n, w, j->ldw, (int)nr, a, j->p.act_row, (int)nt, y, (size_t)j->n_rows);
        } else {
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = 0; r < nr; r++)
                    j->p.vec_dot(n, &y[t * j->n_rows + r], w + (size_t)r * j->ldw, a + (size_t)t * j->p.act_row);
        }
    }
}

void agx_matmul(agx_threadpool *tp, uint32_t wtype, const void *w, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y) {
    if (n_rows <= 0 || n_tok <= 0) return;
    mm_job *j = &(mm_job){0};
    if (mm_make_plan(wtype, n_cols, n_tok, &j->p)) {
        agx_log(AGX_LOG_ERROR, "matmul: type %s cannot multiply rows of %lld columns", agx_type_name(wtype),
                (long long)n_cols);
        for (int64_t i = 0; i < n_rows * n_tok; i++) y[i] = NAN;
        return;
    }
    j->w = w;
    j->ldw = agx_type_row_size(wtype, n_cols);
    j->n_rows = n_rows;
    j->n_cols = n_cols;
    j->n_tok = n_tok;
    j->x = x;
    j->y = y;
    const int nth = agx_threadpool_n_threads(tp);
    void *owned = NULL;
    if (j->p.quant) {
        const size_t need = j->p.act_row * (size_t)n_tok;
        j->act = tp ? agx_threadpool_scratch(tp, need) : NULL;
        if (!j->act && !tp && posix_memalign(&owned, 64, need) == 0) j->act = owned;
        if (!j->act) {
            agx_log(AGX_LOG_ERROR, "matmul: out of memory for %zu bytes of activations", need);
            for (int64_t i = 0; i < n_rows * n_tok; i++) y[i] = NAN;
            return;
        }
        atomic_init(&j->next, 0);
        if (n_tok < 4 || nth == 1) mm_quantize(0, 1, j);
        else agx_threadpool_run_dynamic(tp, mm_quantize, j);
    } else {
        j->act = (uint8_t *)(uintptr_t)x; /* f32 weights read f32 activations as they are */
    }
    if (n_tok == 1 || !j->p.gemm) {
        /* matrix-vector: enough chunks per thread for dynamic balance (the
         * cores are shared), big enough that the atomic counter costs nothing */
        int64_t cr = n_rows / ((int64_t)nth * 8);
        cr = cr < 8 ? 8 : cr > 256 ? 256 : cr;
        j->chunk_rows = cr;
        j->chunk_toks = n_tok < 8 ? n_tok : 8;
    } else {
        j->chunk_rows = MM_TILE_ROWS;
        j->chunk_toks = MM_TILE_TOKS;
    }
    j->n_row_chunks = (n_rows + j->chunk_rows - 1) / j->chunk_rows;
    j->n_items = j->n_row_chunks * ((n_tok + j->chunk_toks - 1) / j->chunk_toks);
    atomic_store(&j->next, 0);
    if (nth == 1 || j->n_items == 1) mm_compute(0, 1, j);
    else agx_threadpool_run_dynamic(tp, mm_compute, j);
    free(owned);
}
