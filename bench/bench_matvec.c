/* bench_matvec.c — kernel micro-benchmark: effective GB/s of agx_matmul
 * matrix-vector products (one token) at Qwen2.5-1.5B shapes next to a plain
 * memory-streaming loop over the same number of bytes (the bandwidth limit),
 * and GFLOP/s of the matrix-matrix path for a 512-token prompt.
 *
 * Shapes are written ne0 x ne1 as in ggml/GGUF: ne0 = row length (columns,
 * the dot-product length), ne1 = number of rows (outputs):
 *   1536 x 8960    ffn_up / ffn_gate (8960 rows of 1536)
 *   8960 x 1536    ffn_down          (1536 rows of 8960)
 *   1536 x 151936  output / tied embeddings (151936 rows of 1536)
 * Weights are replicated until a pass touches >= 256 MiB so they stream from
 * DRAM, as in a real forward pass, instead of sitting in the 32 MiB L3.
 *
 * A first section runs each ISA's dot kernel on an L2-resident matrix and
 * reports GB/s of weights per CPU-second of the thread (the compute ceiling,
 * insensitive to other processes sharing the cores).
 *
 * --shapes takes its own list, e.g. the Qwen2.5-0.5B ones, whose 896-wide rows
 * are q5_0/q8_0 in Q4_K_M files: --shapes 896x4864,4864x896,896x151936 --types q5_0,q8_0
 *
 * usage: bench_matvec [-t THREADS_LIST] [-r REPS] [--types q4_K,q6_K,...] [--shapes NE0xNE1,...]
 *                     [--no-pp] [--no-mv] [--no-hot] [--x16]
 *
 * --x16: the matrix-vector and matrix-matrix sections run on weights repacked
 * 16 rows at a time (agx_matmul_x16_repack) where this CPU reads that layout
 * (q4_0/q5_0/q8_0 with AVX-512 VNNI), as a forward pass does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agx/quant.h"
#include "agx/threadpool.h"
#include "engine/quant_impl.h"

#define MIN_PASS_BYTES (256ull << 20)

/* agx_matmul on rows, or on the x16 copy when x16 (the layout of w) */
static void matmul_as(agx_threadpool *tp, uint32_t t, const void *w, int64_t ne1, int64_t ne0, const float *x,
                      int64_t n_tok, float *y, int x16) {
    const agx_matmul_dst d = {t, w, ne1, y, x16 ? AGX_WLAYOUT_X16 : AGX_WLAYOUT_ROWS};
    agx_matmul_many(tp, 1, &d, ne0, x, n_tok);
}

/* w repacked in place when use_x16 and the CPU reads x16 for t; returns whether it was */
static int maybe_x16(int use_x16, uint32_t t, uint8_t *w, int64_t ne1, int64_t ne0) {
    const size_t b = use_x16 ? agx_matmul_x16_size(t, ne1, ne0) : 0;
    uint8_t *tmp = b ? malloc(b) : NULL;
    if (!tmp) return 0;
    agx_matmul_x16_repack(t, w, ne1, ne0, tmp);
    memcpy(w, tmp, b);
    free(tmp);
    return 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 0x1234567887654321ull;
static float rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-53 - 0.5);
}

/* streaming: every thread sums its slice of the buffer with 64-byte loads */
typedef struct stream_job {
    const uint64_t *buf;
    size_t n_words;
    volatile uint64_t sink[64];
} stream_job;

static void stream_fn(int ith, int nth, void *arg) {
    stream_job *j = arg;
    const size_t per = (j->n_words / (size_t)nth) & ~(size_t)7;
    const size_t b = per * (size_t)ith, e = ith == nth - 1 ? j->n_words : b + per;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    const uint64_t *p = j->buf;
    size_t i = b;
    for (; i + 8 <= e; i += 8) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
        s4 += p[i + 4];
        s5 += p[i + 5];
        s6 += p[i + 6];
        s7 += p[i + 7];
    }
    for (; i < e; i++) s0 += p[i];
    j->sink[ith % 64] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

static double bench_stream(agx_threadpool *tp, const void *buf, size_t bytes, int reps) {
    stream_job j = {.buf = buf, .n_words = bytes / 8};
    double t[64];
    agx_threadpool_run(tp, stream_fn, &j); /* warm */
    for (int r = 0; r < reps; r++) {
        const double t0 = now_s();
        agx_threadpool_run(tp, stream_fn, &j);
        t[r] = now_s() - t0;
    }
    return (double)bytes / median(t, reps) / 1e9;
}

/* n_rows x n_cols of type t, built from a few quantized random rows repeated */
static uint8_t *make_matrix(uint32_t t, int64_t n_rows, int64_t n_cols, size_t *row_bytes) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    const size_t rs = agx_type_row_size(t, n_cols);
    uint8_t *m = aligned_alloc(64, (rs * (size_t)n_rows + 63) / 64 * 64);
    if (!m) return NULL;
    float *f = malloc((size_t)n_cols * sizeof(float));
    const int distinct = 16;
    for (int r = 0; r < distinct && r < n_rows; r++) {
        for (int64_t i = 0; i < n_cols; i++) f[i] = rnd();
        tr->from_float_ref(f, m + rs * (size_t)r, n_cols);
    }
    for (int64_t r = distinct; r < n_rows; r++) memcpy(m + rs * (size_t)r, m + rs * (size_t)(r % distinct), rs);
    free(f);
    *row_bytes = rs;
    return m;
}

static void parse_list(const char *s, char out[][16], int *n, int max) {
    *n = 0;
    while (*s && *n < max) {
        size_t l = strcspn(s, ",");
        snprintf(out[*n], 16, "%.*s", (int)l, s);
        (*n)++;
        s += l;
        if (*s == ',') s++;
    }
}

static uint32_t type_by_name(const char *name) {
    for (uint32_t t = 0; t < AGX_TYPE_COUNT; t++)
        if (!strcmp(agx_type_name(t), name)) return t;
    return UINT32_MAX;
}

int main(int argc, char **argv) {
    char types[16][16], thr[8][16], shp[8][16];
    int n_shp = 0;
    int n_types = 0, n_thr = 0, reps = 5, do_pp = 1, do_mv = 1, do_hot = 1, use_x16 = 0;
    parse_list("q4_K,q6_K,q8_0,q5_0,q4_0", types, &n_types, 16);
    parse_list("1,2", thr, &n_thr, 8);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) parse_list(argv[++i], thr, &n_thr, 8);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) parse_list(argv[++i], types, &n_types, 16);
        else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) parse_list(argv[++i], shp, &n_shp, 8);
        else if (!strcmp(argv[i], "--no-pp")) do_pp = 0;
        else if (!strcmp(argv[i], "--no-mv")) do_mv = 0;
        else if (!strcmp(argv[i], "--no-hot")) do_hot = 0;
        else if (!strcmp(argv[i], "--x16")) use_x16 = 1;
        else {
            fprintf(stderr, "usage: %s [-t 1,2] [-r REPS] [--types q4_K,q6_K,q8_0] [--shapes 1536x8960,...] [--no-pp] [--no-mv] [--no-hot] [--x16]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    printf("# bench_matvec: isa %s, %d reps, medians. shape = ne0 (row length) x ne1 (rows)\n", agx_cpu_isa_name(),
           reps);
    if (do_hot) {
        /* 512 rows x 1536: 0.4-0.8 MiB of weights, stays in L2 */
        const int64_t ne0 = 1536, ne1 = 512;
        printf("\n## in-cache (L2) kernels, 1 thread, GB/s of weights per CPU-second (%lldx%lld): vec_dot per ISA, agx_matmul\n", (long long)ne0,
               (long long)ne1);
        printf("%-6s %10s %10s %10s %10s\n", "type", "scalar", "avx2", "avx512", "matmul");
        float *x = malloc((size_t)ne0 * sizeof(float));
        for (int64_t i = 0; i < ne0; i++) x[i] = rnd();
        for (int k = 0; k < n_types; k++) {
            const uint32_t t = type_by_name(types[k]);
            const agx_type_traits *tr = agx_type_traits_get(t);
            if (!tr || !tr->from_float_ref) continue;
            size_t rs;
            uint8_t *m = make_matrix(t, ne1, ne0, &rs);
            const agx_type_traits *vt = agx_type_traits_get(tr->vec_dot_type);
            void *y = malloc(agx_type_row_size(tr->vec_dot_type, ne0));
            vt->from_float(x, y, ne0);
            printf("%-6s", types[k]);
            for (int isa = 0; isa <= 2; isa++) {
                const agx_kernel_set ks = agx_quant_kernels_for_isa(t, isa);
                if (!ks.vec_dot || isa > agx_cpu_hw_level()) {
                    printf(" %10s", "-");
                    continue;
                }
                double tt[64];
                float out;
                const int iters = isa == 0 ? 2 : 60;
                for (int r = 0; r < reps; r++) {
                    const double t0 = cpu_s();
                    for (int it = 0; it < iters; it++)
                        for (int64_t row = 0; row < ne1; row++) ks.vec_dot((int)ne0, &out, m + rs * (size_t)row, y);
                    tt[r] = (cpu_s() - t0) / iters;
                }
                printf(" %10.1f", (double)(rs * (size_t)ne1) / median(tt, reps) / 1e9);
            }
            { /* agx_matmul, one token, no pool: what the forward pass gets per core */
                double tt[64];
                float *yo = malloc((size_t)ne1 * sizeof(float));
                const int x16 = maybe_x16(use_x16, t, m, ne1, ne0);
                for (int r = 0; r < reps; r++) {
                    const double t0 = cpu_s();
                    for (int it = 0; it < 60; it++) matmul_as(NULL, t, m, ne1, ne0, x, 1, yo, x16);
                    tt[r] = (cpu_s() - t0) / 60;
                }
                printf(" %10.1f", (double)(rs * (size_t)ne1) / median(tt, reps) / 1e9);
                free(yo);
            }
            printf("\n");
            fflush(stdout);
            free(m);
            free(y);
        }
        free(x);
    }
    int64_t shapes[8][2] = {{1536, 8960}, {8960, 1536}, {1536, 151936}}; /* {ne0, ne1} */
    int n_shapes = 3;
    if (n_shp) {
        n_shapes = 0;
        for (int i = 0; i < n_shp; i++) {
            long long a, b;
            if (sscanf(shp[i], "%lldx%lld", &a, &b) != 2 || a <= 0 || b <= 0 || a > (1 << 20) || b > (1 << 22)) {
                fprintf(stderr, "bad shape '%s' (want NE0xNE1)\n", shp[i]);
                return 2;
            }
            shapes[n_shapes][0] = a;
            shapes[n_shapes][1] = b;
            n_shapes++;
        }
    }
    for (int ti = 0; ti < n_thr; ti++) {
        const int nth = atoi(thr[ti]);
        agx_threadpool *tp = NULL;
        agx_error err = {0};
        if (agx_threadpool_create(nth, &tp, &err) != AGX_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        if (do_mv) {
            printf("\n## matrix-vector, %d thread(s)\n", nth);
            printf("%-6s %-13s %9s %10s %10s %8s %9s\n", "type", "shape", "MiB", "us/matvec", "GB/s", "stream",
                   "%stream");
            for (int si = 0; si < n_shapes; si++) {
                for (int k = 0; k < n_types; k++) {
                    const uint32_t t = type_by_name(types[k]);
                    const agx_type_traits *tr = agx_type_traits_get(t);
                    const int64_t ne0 = shapes[si][0], ne1 = shapes[si][1];
                    if (!tr || !tr->from_float_ref || !agx_type_row_size(t, ne0)) {
                        fprintf(stderr, "skipping %s at row length %lld\n", types[k], (long long)ne0);
                        continue;
                    }
                    size_t rs;
                    uint8_t *m = make_matrix(t, ne1, ne0, &rs);
                    if (!m) {
                        fprintf(stderr, "out of memory\n");
                        return 1;
                    }
                    const size_t mbytes = rs * (size_t)ne1;
                    const int x16 = maybe_x16(use_x16, t, m, ne1, ne0);
                    /* copies so that one pass streams from DRAM */
                    int copies = (int)((MIN_PASS_BYTES + mbytes - 1) / mbytes);
                    uint8_t *big = NULL;
                    if (copies > 1) {
                        big = aligned_alloc(64, (mbytes * (size_t)copies + 63) / 64 * 64);
                        for (int c = 0; c < copies; c++) memcpy(big + mbytes * (size_t)c, m, mbytes);
                        free(m);
                    } else {
                        big = m;
                    }
                    float *x = malloc((size_t)ne0 * sizeof(float)), *y = malloc((size_t)ne1 * sizeof(float));
                    for (int64_t i = 0; i < ne0; i++) x[i] = rnd();
                    double tt[64];
                    for (int c = 0; c < copies; c++) matmul_as(tp, t, big + mbytes * (size_t)c, ne1, ne0, x, 1, y, x16);
                    for (int r = 0; r < reps; r++) {
                        const double t0 = now_s();
                        for (int c = 0; c < copies; c++)
                            matmul_as(tp, t, big + mbytes * (size_t)c, ne1, ne0, x, 1, y, x16);
                        tt[r] = (now_s() - t0) / copies;
                    }
                    const double sec = median(tt, reps);
                    const double gbs = (double)mbytes / sec / 1e9;
                    const double sgbs = bench_stream(tp, big, mbytes * (size_t)copies, reps);
                    char shape[32];
                    snprintf(shape, sizeof(shape), "%lldx%lld", (long long)ne0, (long long)ne1);
                    printf("%-6s %-13s %9.1f %10.1f %10.1f %8.1f %8.0f%%\n", types[k], shape, mbytes / 1048576.0,
                           sec * 1e6, gbs, sgbs, 100.0 * gbs / sgbs);
                    fflush(stdout);
                    free(big);
                    free(x);
                    free(y);
                }
            }
        }
        if (do_pp) {
            /* the first shape (default 1536x8960, ffn_up/gate) */
            const int64_t ne0 = shapes[0][0], ne1 = shapes[0][1], n_tok = 512;
            printf("\n## matrix-matrix, %d thread(s): %lldx%lld weights x %lld tokens\n", nth, (long long)ne0,
                   (long long)ne1, (long long)n_tok);
            printf("%-6s %10s %10s %14s\n", "type", "ms", "GFLOP/s", "GFLOP/cpu-s");
            float *x = malloc((size_t)(ne0 * n_tok) * sizeof(float)), *y = malloc((size_t)(ne1 * n_tok) * sizeof(float));
            for (int64_t i = 0; i < ne0 * n_tok; i++) x[i] = rnd();
            for (int k = 0; k < n_types; k++) {
                const uint32_t t = type_by_name(types[k]);
                const agx_type_traits *tr = agx_type_traits_get(t);
                if (!tr || !tr->from_float_ref) continue;
                size_t rs;
                uint8_t *m = make_matrix(t, ne1, ne0, &rs);
                const int x16 = maybe_x16(use_x16, t, m, ne1, ne0);
                matmul_as(tp, t, m, ne1, ne0, x, n_tok, y, x16);
                double tt[64], tc[64];
                const int r_pp = reps < 3 ? reps : 3;
                for (int r = 0; r < r_pp; r++) {
                    struct timespec c0, c1;
                    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
                    const double t0 = now_s();
                    matmul_as(tp, t, m, ne1, ne0, x, n_tok, y, x16);
                    tt[r] = now_s() - t0;
                    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
                    tc[r] = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
                }
                const double sec = median(tt, r_pp), csec = median(tc, r_pp);
                const double gf = 2.0 * ne0 * ne1 * n_tok / 1e9;
                printf("%-6s %10.1f %10.1f %14.1f\n", types[k], sec * 1e3, gf / sec, gf / csec);
                fflush(stdout);
                free(m);
            }
            free(x);
            free(y);
        }
        agx_threadpool_free(tp);
    }
    return 0;
}
