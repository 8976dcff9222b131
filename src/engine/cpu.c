/* cpu.c — CPU feature detection, done once (pthread_once) with cpuid/xgetbv,
 * and the ISA level the kernels use: the best the CPU and OS support, lowered
 * by AGX_CPU_ISA=scalar|avx2|avx512 (never raised above what is safe). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define AGX_X86 1
#endif

static agx_cpu_features g_features;
static int g_level, g_hw_level;
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

#ifdef AGX_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

static void cpu_detect(void) {
    memset(&g_features, 0, sizeof(g_features));
#ifdef AGX_X86
    unsigned a, b, c, d;
    int avx512dq = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        const int osxsave = (c >> 27) & 1;
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        const int ymm_ok = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
        const int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask + upper zmm */
        const int avx = ((c >> 28) & 1) && ymm_ok;
        g_features.fma = avx && ((c >> 12) & 1);
        g_features.f16c = avx && ((c >> 29) & 1);
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            g_features.avx2 = avx && ((b >> 5) & 1);
            g_features.avx512f = zmm_ok && ((b >> 16) & 1);
            g_features.avx512bw = zmm_ok && ((b >> 30) & 1);
            avx512dq = zmm_ok && ((b >> 17) & 1);
            g_features.avx512vl = zmm_ok && ((b >> 31) & 1);
            g_features.avx512vnni = zmm_ok && ((c >> 11) & 1);
            g_features.avx512vbmi = zmm_ok && ((c >> 1) & 1);
            __cpuid_count(7, 1, a, b, c, d);
            g_features.avxvnni = avx && ((a >> 4) & 1);
            g_features.avx512bf16 = zmm_ok && ((a >> 5) & 1);
        }
    }
#endif
    int level = 0;
#ifndef AGX_X86
    const int avx512dq = 0;
#endif
    if (g_features.avx2 && g_features.fma && g_features.f16c) level = 1;
    if (level == 1 && g_features.avx512f && g_features.avx512bw && g_features.avx512vl && g_features.avx512vnni &&
        avx512dq)
        level = 2;
    g_hw_level = level;
    const char *env = getenv("AGX_CPU_ISA");
    if (env && *env) {
        int want = level;
        if (!strcmp(env, "scalar")) want = 0;
        else if (!strcmp(env, "avx2")) want = 1;
        else if (!strcmp(env, "avx512")) want = 2;
        if (want < level) level = want; /* only lower: higher would fault */
    }
    g_level = level;
}

const agx_cpu_features *agx_cpu_features_get(void) {
    pthread_once(&g_cpu_once, cpu_detect);
    return &g_features;
}

int agx_cpu_isa_level(void) {
    pthread_once(&g_cpu_once, cpu_detect);
    return g_level;
}

int agx_cpu_hw_level(void) {
    pthread_once(&g_cpu_once, cpu_detect);
    return g_hw_level;
}

const char *agx_cpu_isa_name(void) {
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    return names[agx_cpu_isa_level()];
}
