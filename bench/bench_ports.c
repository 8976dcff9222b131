/* bench_ports.c — what the CPU's vector pipes can do: cycles per 512-bit op
 * for the instructions the AVX-512 kernels are built from, alone and in
 * pairs. Two ops that share a pipe take as long together as the same number
 * of one of them; ops on separate pipes overlap. The kernel design in
 * docs/kernels.md (vpdpbusd tiles, the 8-lane fold, aligned activation
 * blocks) came from these figures; run it on a new CPU before tuning there.
 *
 * Cycles come from a dependent scalar add chain timed the same way (one add
 * per cycle), so they hold under turbo as long as the clock does not change
 * between the two loops. Eight independent chains per op hide latencies of
 * up to eight cycles.
 *
 * usage: bench_ports [-n MILLION_ITERATIONS]   (exit 0; 1 without AVX-512 VNNI; 2 usage) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/quant_impl.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* GHz as the rate of a dependent add chain */
static double clock_ghz(long n) {
    unsigned long x = 1;
    const double t = now();
    for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return 4.0 * (double)n / (now() - t) / 1e9;
}

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define OP_dpbusd(a) _mm512_dpbusd_epi32(a, x, y)
#define OP_dpwssd(a) _mm512_dpwssd_epi32(a, x, y)
#define OP_maddubs(a) _mm512_maddubs_epi16(a, x)
#define OP_maddwd(a) _mm512_madd_epi16(a, x)
#define OP_fma(a) _mm512_castps_si512(_mm512_fmadd_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(x), _mm512_castsi512_ps(y)))
#define OP_cvt(a) _mm512_castps_si512(_mm512_cvtepi32_ps(a))
#define OP_pack(a) _mm512_packs_epi32(a, x)
#define OP_pshufb(a) _mm512_shuffle_epi8(a, x)
#define OP_shuf64(a) _mm512_shuffle_i64x2(a, x, 0x88)
#define OP_extract(a) _mm512_castsi256_si512(_mm512_extracti64x4_epi64(a, 1))
#define OP_add(a) _mm512_add_epi32(a, x)

/* four chains of A and four of B; distinct starting values so the compiler
 * cannot merge the chains; x and y pass through an empty asm every
 * iteration so nothing is hoisted */
#define DEF_PAIR(A, B)                                                                                            \
    TARGET static double pair_##A##_##B(long n, int *sink) {                                                                \
        __m512i a0 = _mm512_set1_epi32(1), a1 = _mm512_set1_epi32(2), a2 = _mm512_set1_epi32(3),                 \
                a3 = _mm512_set1_epi32(4), a4 = _mm512_set1_epi32(5), a5 = _mm512_set1_epi32(6),                 \
                a6 = _mm512_set1_epi32(7), a7 = _mm512_set1_epi32(8), x = _mm512_set1_epi32(3),                  \
                y = _mm512_set1_epi32(5);                                                                        \
        const double t = now();                                                                                  \
        for (long i = 0; i < n; i++) {                                                                           \
            a0 = OP_##A(a0), a1 = OP_##A(a1), a2 = OP_##A(a2), a3 = OP_##A(a3);                                  \
            a4 = OP_##B(a4), a5 = OP_##B(a5), a6 = OP_##B(a6), a7 = OP_##B(a7);                                  \
            __asm__ volatile("" : "+v"(x), "+v"(y));                                                             \
        }                                                                                                        \
        const double s = now() - t;                                                                              \
        const __m512i r = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)), \
                                           _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))); \
        *sink += _mm512_reduce_add_epi32(r); /* the chains are used */                                          \
        return s;                                                                                                \
    }
#define PAIRS(X)                                                                                                  \
    X(dpbusd, dpbusd) X(dpwssd, dpwssd) X(maddubs, maddubs) X(maddwd, maddwd) X(fma, fma) X(cvt, cvt)            \
    X(pack, pack) X(pshufb, pshufb) X(shuf64, shuf64) X(extract, extract) X(add, add)                            \
    X(dpbusd, maddwd) X(dpbusd, fma) X(dpbusd, cvt) X(dpbusd, pack) X(dpbusd, pshufb) X(dpbusd, shuf64)          \
    X(dpbusd, extract) X(dpbusd, add) X(pack, cvt) X(pack, fma) X(cvt, fma) X(pack, shuf64)
PAIRS(DEF_PAIR)

int main(int argc, char **argv) {
    long n = 100000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc && atol(argv[i + 1]) > 0) n = atol(argv[++i]) * 1000000;
        else {
            fprintf(stderr, "usage: %s [-n MILLION_ITERATIONS]\n", argv[0]);
            return 2;
        }
    }
    const agx_cpu_features *f = agx_cpu_features_get();
    if (!f->avx512f || !f->avx512bw || !f->avx512vnni) {
        fprintf(stderr, "bench_ports: this CPU has no AVX-512 VNNI; nothing to measure\n");
        return 1;
    }
    const double ghz = clock_ghz(n);
    printf("# bench_ports: clock %.2f GHz (dependent add chain); cycles per 512-bit op, 8 independent chains\n", ghz);
    printf("%-10s %-10s %8s\n", "op A x4", "op B x4", "cyc/op");
    int sink = 0;
#define RUN_PAIR(A, B) printf("%-10s %-10s %8.2f\n", #A, #B, pair_##A##_##B(n, &sink) * ghz * 1e9 / (8.0 * (double)n));
    PAIRS(RUN_PAIR)
    printf("# checksum %d (keeps the chains from being optimized away)\n", sink);
    return 0;
}
