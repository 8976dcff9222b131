/* quant.h — tensor element types and the type-traits table (as in ggml): per
 * type the block size, bytes per block, dequantize-row, reference quantize-row,
 * the activation format its dot kernel consumes and the dot kernel itself.
 * SIMD variants (AVX2, AVX-512) are chosen once at run time from CPU features. */
#ifndef AGX_QUANT_H
#define AGX_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ggml type ids as stored in GGUF files. */
typedef enum agx_ggml_type {
    AGX_TYPE_F32 = 0,
    AGX_TYPE_F16 = 1,
    AGX_TYPE_Q4_0 = 2,
    AGX_TYPE_Q4_1 = 3,
    AGX_TYPE_Q5_0 = 6,
    AGX_TYPE_Q5_1 = 7,
    AGX_TYPE_Q8_0 = 8,
    AGX_TYPE_Q8_1 = 9,
    AGX_TYPE_Q2_K = 10,
    AGX_TYPE_Q3_K = 11,
    AGX_TYPE_Q4_K = 12,
    AGX_TYPE_Q5_K = 13,
    AGX_TYPE_Q6_K = 14,
    AGX_TYPE_Q8_K = 15,
    AGX_TYPE_BF16 = 30,
    AGX_TYPE_COUNT = 40
} agx_ggml_type;

typedef void (*agx_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*agx_from_float_fn)(const float *src, void *dst, int64_t n);
/* sum_i x[i]*y[i] over n elements; x in the weight type, y in vec_dot_type. */
typedef void (*agx_vec_dot_fn)(int n, float *s, const void *x, const void *y);

typedef struct agx_type_traits {
    const char *name;            /* ggml name: "f32", "q4_K", ... */
    int64_t block_size;          /* elements per block */
    size_t type_size;            /* bytes per block */
    bool is_quantized;
    agx_to_float_fn to_float;         /* NULL when unsupported */
    agx_from_float_fn from_float_ref; /* reference quantizer, NULL when unsupported */
    agx_from_float_fn from_float;     /* fast quantizer for activations (may equal _ref) */
    agx_ggml_type vec_dot_type;       /* activation format the dot kernel consumes */
    agx_vec_dot_fn vec_dot;           /* best kernel for this CPU (scalar/AVX2/AVX-512) */
    agx_vec_dot_fn vec_dot_scalar;    /* reference kernel (tests compare against it) */
} agx_type_traits;

/* NULL for ids that are unknown or not supported by this build. */
const agx_type_traits *agx_type_traits_get(uint32_t type);
const char *agx_type_name(uint32_t type);          /* "unknown" when unknown */
/* Bytes for n elements (n must be a multiple of the block size), 0 when invalid. */
size_t agx_type_row_size(uint32_t type, int64_t n);

/* fp16 / bf16 scalar conversions (exact, round-to-nearest-even). */
float agx_fp16_to_fp32(uint16_t h);
uint16_t agx_fp32_to_fp16(float f);
float agx_bf16_to_fp32(uint16_t h);
uint16_t agx_fp32_to_bf16(float f);

/* CPU features detected once (the only global state besides constant tables). */
typedef struct agx_cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avx512bf16, avxvnni;
    bool avx512vbmi; /* byte permutes across the register (used for 32-block decoding) */
} agx_cpu_features;
const agx_cpu_features *agx_cpu_features_get(void);
/* "avx512" | "avx2" | "scalar"; AGX_CPU_ISA=scalar|avx2|avx512 can force a lower level. */
const char *agx_cpu_isa_name(void);

#ifdef __cplusplus
}
#endif
#endif
