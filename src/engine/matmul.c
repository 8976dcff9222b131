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

/* One matrix of a job: the matrix-matrix path has one; a one-token job may
 * have several that read the same activations (agx_matmul_many). */
typedef struct mm_mat {
    mm_plan p;
    const uint8_t *w;
    size_t ldw;
    int64_t n_rows;
    int64_t first;              /* first row of this matrix in the job's row space */
    float *y;
    uint8_t *act;               /* its quantized activations (or the floats) */
} mm_mat;

typedef struct mm_job {
    mm_mat m[AGX_MATMUL_MAX_MANY];
    int n_mats;
    int64_t n_rows;             /* all matrices' rows (one token) */
    int64_t n_cols, n_tok;
    const float *x;
    int64_t chunk_rows, chunk_toks, n_row_chunks, n_items;
    int nth;                    /* threads sharing the job (guided row chunks) */
    _Atomic int64_t next;       /* next work item; for one token, the next row */
} mm_job;

/* The kernels that read the x16 layout on this CPU (gemm NULL: none). */
static agx_kernel_set mm_x16_kernels(uint32_t wtype) {
    agx_kernel_set none = {0};
    return agx_cpu_isa_level() >= 2 ? agx_quant_avx512_x16_kernels(wtype) : none;
}

static int mm_make_plan(uint32_t wtype, uint32_t layout, int64_t n_cols, int64_t n_tok, mm_plan *p) {
    memset(p, 0, sizeof(*p));
    if (layout == AGX_WLAYOUT_X16) {
        const agx_kernel_set ks = mm_x16_kernels(wtype);
        p->tr = agx_type_traits_get(wtype);
        if (!ks.gemm || n_cols <= 0 || n_cols > INT32_MAX || !ks.act_row_size(n_cols)) return -1;
        p->vec_dot = p->tr->vec_dot;
        p->gemm = ks.gemm;
        p->quant = ks.gemm_quant;
        p->act_row = ks.act_row_size(n_cols);
        return 0;
    }
    if (layout != AGX_WLAYOUT_ROWS) return -1;
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

static size_t mm_scratch(const agx_matmul_dst *d, int64_t n_cols, int64_t n_tok) {
    mm_plan p;
    if (n_tok <= 0 || mm_make_plan(d->wtype, d->layout, n_cols, n_tok, &p) || !p.quant) return 0;
    return p.act_row * (size_t)n_tok;
}

size_t agx_matmul_scratch_size(uint32_t wtype, int64_t n_cols, int64_t n_tok) {
    const agx_matmul_dst d = {wtype, NULL, 0, NULL, AGX_WLAYOUT_ROWS};
    return mm_scratch(&d, n_cols, n_tok);
}

/* ---- the x16 layout: 16 rows at a time as the 16-row tiles read them ---- */

size_t agx_matmul_x16_size(uint32_t wtype, int64_t n_rows, int64_t n_cols) {
    if (!mm_x16_kernels(wtype).gemm || n_rows <= 0 || n_rows % 16 || n_cols <= 0 || n_cols % 32 ||
        n_cols > INT32_MAX)
        return 0;
    const size_t ldw = agx_type_row_size(wtype, n_cols);
    /* short q4_0 rows: one token runs faster on the rows (AVX2's 8-row tile
     * with prefetches: 325 against 586 us for 1536x8960 on one core), which
     * outweighs the prompts' gain */
    if (wtype == AGX_TYPE_Q4_0 && agx_prefetch_row(ldw)) return 0;
    return ldw && (size_t)n_rows <= SIZE_MAX / ldw ? ldw * (size_t)n_rows : 0;
}

/* Per group of 16 rows, for its nb blocks in turn: the quants (4 vectors of
 * 64 bytes, dword r of vector g = quant bytes 4g..4g+3 of row r), then for
 * q5_0 the fifth bits (8 64-bit masks: nibble r of mask g = the fifth bits
 * of the 4 weights byte lanes 4r..4r+3 of vector g hold after the nibble
 * split, weights 4g..4g+3, i.e. qh bits 4g..4g+3 of row r), then the 16 fp16
 * scales. The copy is exactly as large as the rows, so a group starts at
 * row r0 * ldw. */
void agx_matmul_x16_repack(uint32_t wtype, const void *w, int64_t n_rows, int64_t n_cols, void *dst) {
    const size_t ldw = agx_type_row_size(wtype, n_cols);
    const int64_t nb = n_cols / 32;
    const int is_q5 = wtype == AGX_TYPE_Q5_0;
    const size_t bsize = is_q5 ? sizeof(agx_block_q5_0) : sizeof(agx_block_q4_0);
    const size_t qs_off = is_q5 ? offsetof(agx_block_q5_0, qs) : offsetof(agx_block_q4_0, qs);
    for (int64_t r0 = 0; r0 < n_rows; r0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r0 * ldw;
        uint8_t *q = (uint8_t *)dst + (size_t)r0 * ldw;
        uint8_t *qh = q + (size_t)nb * 256;
        uint8_t *sc = qh + (is_q5 ? (size_t)nb * 64 : 0);
        for (int64_t i = 0; i < nb; i++) {
            uint64_t m[8] = {0};
            for (int r = 0; r < 16; r++) {
                const uint8_t *b = src + (size_t)r * ldw + (size_t)i * bsize;
                for (int g = 0; g < 4; g++) memcpy(q + (size_t)i * 256 + 64 * g + 4 * r, b + qs_off + 4 * g, 4);
                memcpy(sc + (size_t)i * 32 + 2 * (size_t)r, b, 2); /* every block starts with its fp16 scale */
                if (!is_q5) continue;
                uint32_t h;
                memcpy(&h, b + offsetof(agx_block_q5_0, qh), 4);
                for (int g = 0; g < 8; g++) m[g] |= (uint64_t)((h >> (4 * g)) & 0xF) << (4 * r);
            }
            if (is_q5) memcpy(qh + (size_t)i * 64, m, 64);
        }
    }
}

static void mm_quantize(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    const mm_mat *m = &j->m[0];
    for (;;) {
        const int64_t t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (t >= j->n_tok) break;
        m->p.quant(j->x + t * j->n_cols, m->act + (size_t)t * m->p.act_row, j->n_cols);
    }
}

/* One token: rows are taken in guided chunks, a share of what is left
 * (rounded to whole row groups of the tiles), so the first chunks are long
 * contiguous streams and the last ones short: a thread that finishes early
 * waits at most one short chunk for the other, where equal chunks of 1/16
 * left it idle for half a chunk on average. Every new chunk restarts the
 * hardware prefetcher's stream: chunks of 1/(s·threads) of what is left
 * measured faster the smaller s (1.5B Q4_K_M generation, s = 1, 2, 3, 6:
 * each step ~1.5 %). With s = 1 a thread's first chunk is what a static split
 * would give it (as llama.cpp splits), and the dynamic tail still absorbs a
 * late or slow thread. A chunk ends at its matrix's last row. */
#define MM_GUIDED_GRAIN 16 /* rows: the widest one-token tile */
#define MM_GUIDED_SHARE 1  /* a chunk is 1/(MM_GUIDED_SHARE·threads) of the rows left */

static int64_t mm_take_rows(mm_job *j, int64_t *r0) {
    int64_t cur = atomic_load_explicit(&j->next, memory_order_relaxed);
    for (;;) {
        const int64_t left = j->n_rows - cur;
        if (left <= 0) return 0;
        int64_t n = left / (MM_GUIDED_SHARE * (int64_t)j->nth);
        n = (n + MM_GUIDED_GRAIN - 1) / MM_GUIDED_GRAIN * MM_GUIDED_GRAIN;
        if (n < MM_GUIDED_GRAIN) n = MM_GUIDED_GRAIN;
        if (n > left) n = left;
        for (int i = 0; i < j->n_mats; i++) {
            const int64_t end = j->m[i].first + j->m[i].n_rows;
            if (cur < end) {
                if (cur + n > end) n = end - cur;
                break;
            }
        }
        if (atomic_compare_exchange_weak_explicit(&j->next, &cur, cur + n, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *r0 = cur;
            return n;
        }
    }
}

static void mm_compute_vec(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    const int n = (int)j->n_cols;
    int64_t row, nr;
    while ((nr = mm_take_rows(j, &row)) > 0) {
        int i = 0;
        while (row >= j->m[i].first + j->m[i].n_rows) i++;
        const mm_mat *m = &j->m[i];
        const int64_t r0 = row - m->first;
        const uint8_t *w = m->w + (size_t)r0 * m->ldw;
        if (m->p.gemm) {
            m->p.gemm(n, w, m->ldw, (int)nr, m->act, m->p.act_row, 1, m->y + r0, (size_t)m->n_rows);
        } else {
            for (int64_t r = 0; r < nr; r++) m->p.vec_dot(n, &m->y[r0 + r], w + (size_t)r * m->ldw, m->act);
        }
    }
}

static void mm_compute(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    const mm_mat *m = &j->m[0];
    const int n = (int)j->n_cols;
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (item >= j->n_items) break;
        const int64_t r0 = (item % j->n_row_chunks) * j->chunk_rows;
        const int64_t t0 = (item / j->n_row_chunks) * j->chunk_toks;
        const int64_t nr = m->n_rows - r0 < j->chunk_rows ? m->n_rows - r0 : j->chunk_rows;
        const int64_t nt = j->n_tok - t0 < j->chunk_toks ? j->n_tok - t0 : j->chunk_toks;
        const uint8_t *w = m->w + (size_t)r0 * m->ldw;
        const uint8_t *a = m->act + (size_t)t0 * m->p.act_row;
        float *y = m->y + t0 * m->n_rows + r0;
        if (m->p.gemm) {
            m->p.gemm(n, w, m->ldw, (int)nr, a, m->p.act_row, (int)nt, y, (size_t)m->n_rows);
        } else {
            for (int64_t t = 0; t < nt; t++)
                for (int64_t r = 0; r < nr; r++)
                    m->p.vec_dot(n, &y[t * m->n_rows + r], w + (size_t)r * m->ldw, a + (size_t)t * m->p.act_row);
        }
    }
}

/* Plans d as the job's next matrix (its rows after those already there);
 * -1 when its kernels cannot take it (an x16 matrix needs whole groups). */
static int mm_add_mat(mm_job *j, const agx_matmul_dst *d, int64_t n_cols, int64_t n_tok) {
    mm_mat *m = &j->m[j->n_mats];
    if (d->n_rows <= 0 || mm_make_plan(d->wtype, d->layout, n_cols, n_tok, &m->p) ||
        (d->layout == AGX_WLAYOUT_X16 && d->n_rows % 16))
        return -1;
    m->w = d->w;
    m->ldw = agx_type_row_size(d->wtype, n_cols);
    m->n_rows = d->n_rows;
    m->first = j->n_rows;
    m->y = d->y;
    j->n_rows += d->n_rows;
    j->n_mats++;
    return 0;
}

/* need bytes of activation scratch: the pool's, or owned (*owned, to free)
 * without a pool; NULL and an error logged when there is no memory */
static uint8_t *mm_act_alloc(agx_threadpool *tp, size_t need, void **owned) {
    uint8_t *act = tp ? agx_threadpool_scratch(tp, need) : NULL;
    if (!act && !tp && posix_memalign(owned, 64, need) == 0) act = *owned;
    if (!act) agx_log(AGX_LOG_ERROR, "matmul: out of memory for %zu bytes of activations", need);
    return act;
}

static void mm_fill_nan(float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = NAN;
}

/* Activation rows of one token for every matrix of a one-token job, each
 * format once (matrices whose kernels read the same format share it), at
 * 64-byte aligned offsets; returns the bytes needed (0: none) and, with
 * base, points each matrix at its row. */
static size_t mm_vec_act_layout(mm_job *j, uint8_t *base) {
    size_t off = 0;
    for (int i = 0; i < j->n_mats; i++) {
        mm_mat *m = &j->m[i];
        if (!m->p.quant) {
            m->act = (uint8_t *)(uintptr_t)j->x; /* f32 weights read f32 activations as they are */
            continue;
        }
        int k = 0;
        while (k < i && (j->m[k].p.quant != m->p.quant || j->m[k].p.act_row != m->p.act_row)) k++;
        if (k < i) {
            m->act = j->m[k].act;
            continue;
        }
        m->act = base ? base + off : NULL;
        off += (m->p.act_row + 63) / 64 * 64;
    }
    return off;
}

/* One token times n_mats matrices (1..AGX_MATMUL_MAX_MANY, already planned)
 * in one pool job. */
static void mm_run_vec(agx_threadpool *tp, mm_job *j) {
    const size_t need = mm_vec_act_layout(j, NULL);
    void *owned = NULL;
    uint8_t *act = need ? mm_act_alloc(tp, need, &owned) : NULL;
    if (need && !act) {
        for (int i = 0; i < j->n_mats; i++) mm_fill_nan(j->m[i].y, j->m[i].n_rows);
        return;
    }
    mm_vec_act_layout(j, act);
    for (int i = 0; i < j->n_mats; i++) {
        const mm_mat *m = &j->m[i];
        int k = 0;
        while (k < i && j->m[k].act != m->act) k++; /* a row shared with an earlier matrix is done */
        if (m->p.quant && k == i) m->p.quant(j->x, m->act, j->n_cols);
    }
    j->nth = agx_threadpool_n_threads(tp);
    atomic_store(&j->next, 0);
    if (j->nth == 1) mm_compute_vec(0, 1, j);
    else agx_threadpool_run_dynamic(tp, mm_compute_vec, j);
    free(owned);
}

static void mm_single(agx_threadpool *tp, const agx_matmul_dst *d, int64_t n_cols, const float *x, int64_t n_tok) {
    const int64_t n_rows = d->n_rows;
    float *y = d->y;
    if (n_rows <= 0 || n_tok <= 0) return;
    mm_job *j = &(mm_job){0};
    mm_mat *m = &j->m[0];
    if (mm_add_mat(j, d, n_cols, n_tok)) {
        agx_log(AGX_LOG_ERROR, "matmul: type %s%s cannot multiply %lld rows of %lld columns", agx_type_name(d->wtype),
                d->layout == AGX_WLAYOUT_X16 ? " (x16 layout)" : "", (long long)n_rows, (long long)n_cols);
        mm_fill_nan(y, n_rows * n_tok);
        return;
    }
    j->n_cols = n_cols;
    j->n_tok = n_tok;
    j->x = x;
    if (n_tok == 1) {
        mm_run_vec(tp, j);
        return;
    }
    const int nth = agx_threadpool_n_threads(tp);
    void *owned = NULL;
    if (m->p.quant) {
        m->act = mm_act_alloc(tp, m->p.act_row * (size_t)n_tok, &owned);
        if (!m->act) {
            mm_fill_nan(y, n_rows * n_tok);
            return;
        }
        atomic_init(&j->next, 0);
        if (n_tok < 4 || nth == 1) mm_quantize(0, 1, j);
        else agx_threadpool_run_dynamic(tp, mm_quantize, j);
    } else {
        m->act = (uint8_t *)(uintptr_t)x; /* f32 weights read f32 activations as they are */
    }
    if (!m->p.gemm) {
        /* no tile: enough chunks per thread for dynamic balance (the cores are
         * shared), big enough that the atomic counter costs nothing */
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

void agx_matmul(agx_threadpool *tp, uint32_t wtype, const void *w, int64_t n_rows, int64_t n_cols,
                const float *x, int64_t n_tok, float *y) {
    const agx_matmul_dst d = {wtype, w, n_rows, y, AGX_WLAYOUT_ROWS};
    mm_single(tp, &d, n_cols, x, n_tok);
}

size_t agx_matmul_many_scratch_size(int n_mats, const agx_matmul_dst *mats, int64_t n_cols, int64_t n_tok) {
    size_t most = 0, vec = 0;
    for (int i = 0; i < n_mats; i++) {
        const size_t one = mm_scratch(&mats[i], n_cols, n_tok);
        if (one > most) most = one;
        vec += (mm_scratch(&mats[i], n_cols, 1) + 63) / 64 * 64;
    }
    return vec > most ? vec : most;
}

void agx_matmul_many(agx_threadpool *tp, int n_mats, const agx_matmul_dst *mats, int64_t n_cols, const float *x,
                     int64_t n_tok) {
    mm_job *j = &(mm_job){0};
    int ok = n_tok == 1 && n_mats >= 1 && n_mats <= AGX_MATMUL_MAX_MANY;
    for (int i = 0; ok && i < n_mats; i++) ok = !mm_add_mat(j, &mats[i], n_cols, 1);
    if (!ok) {
        /* several tokens (compute bound: one job per matrix costs nothing
         * there), or something agx_matmul reports on its own */
        for (int i = 0; i < n_mats; i++) mm_single(tp, &mats[i], n_cols, x, n_tok);
        return;
    }
    j->n_cols = n_cols;
    j->n_tok = 1;
    j->x = x;
    mm_run_vec(tp, j);
}
