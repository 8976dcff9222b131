/* ops_internal.h — the small vector kernels behind ops.c (f32 dot, axpy, f16
 * row conversion), with a portable version in ops.c, AVX2/F16C versions in ops_avx2.c
 * and AVX-512 ones in ops_avx512.c, chosen at run time. Private to src/engine. */
#ifndef AGX_OPS_INTERNAL_H
#define AGX_OPS_INTERNAL_H

#include <stdint.h>

typedef struct agx_ops_kernels {
    /* scores[s] = scale * <q, k + s*ks> for s < n (head dim hd) */
    void (*qk)(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores);
    /* out[i] += sum_s p[s] * v[s*vs + i] for i < hd (accumulates) */
    void (*pv)(const float *p, const float *v, int64_t vs, int n, int hd, float *out);
    void (*softmax)(float *x, int64_t n);
    /* single-query versions in llama.cpp's decode summation order (see
     * ops_avx512.c); n_kv = the padded row length that decides the order,
     * acc = 64 * hd floats of scratch; out is overwritten */
    void (*qk_dec)(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores);
    void (*pv_dec)(const float *p, const float *v, int64_t vs, int n, int n_kv, int hd, float *out, float *acc);
    void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
} agx_ops_kernels;

const agx_ops_kernels *agx_ops_kernels_get(void);
/* A specific table ("scalar" | "avx2" | "avx512"), NULL when this CPU lacks it (tests). */
const agx_ops_kernels *agx_ops_kernels_for(const char *isa);

/* AVX2+F16C versions (ops_avx2.c). */
void agx_ops_qk_avx2(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores);
void agx_ops_pv_avx2(const float *p, const float *v, int64_t vs, int n, int hd, float *out);
void agx_ops_softmax_avx2(float *x, int64_t n);
/* AVX-512F versions (ops_avx512.c). */
void agx_ops_qk_avx512(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores);
void agx_ops_pv_avx512(const float *p, const float *v, int64_t vs, int n, int hd, float *out);
void agx_ops_f16_to_f32_avx512(const uint16_t *src, float *dst, int n);
void agx_ops_qk_dec_avx512(const float *q, const float *k, int64_t ks, int n, int hd, float scale, float *scores);
void agx_ops_pv_dec_avx512(const float *p, const float *v, int64_t vs, int n, int n_kv, int hd, float *out,
                           float *acc);
void agx_ops_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, float eps);
void agx_ops_f16_to_f32_avx2(const uint16_t *src, float *dst, int n);
void agx_ops_f32_to_f16_avx2(const float *src, uint16_t *dst, int n);
void agx_ops_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n);

#endif
