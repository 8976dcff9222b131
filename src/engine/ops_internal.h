/* ops_internal.h — the small vector kernels behind ops.c (f32 dot, axpy, f16
 * row conversion), with a portable version in ops.c and an AVX2/F16C version in
 * ops_avx2.c chosen once at run time. Private to src/engine. */
#ifndef AGX_OPS_INTERNAL_H
#define AGX_OPS_INTERNAL_H

#include <stdint.h>

typedef struct agx_ops_kernels {
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*axpy_f32)(float *y, float a, const float *x, int n);   /* y += a*x */
    void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
} agx_ops_kernels;

const agx_ops_kernels *agx_ops_kernels_get(void);

/* AVX2+F16C versions (ops_avx2.c). */
float agx_ops_dot_f32_avx2(const float *a, const float *b, int n);
void agx_ops_axpy_f32_avx2(float *y, float a, const float *x, int n);
void agx_ops_f16_to_f32_avx2(const uint16_t *src, float *dst, int n);
void agx_ops_f32_to_f16_avx2(const float *src, uint16_t *dst, int n);
void agx_ops_swiglu_avx2(float *out, const float *gate, const float *up, int64_t n);

#endif
