/* gguf_types_tmp.c — TEMPORARY weak stand-in for the layout part of quant.h
 * (names, block sizes, bytes per block) so the GGUF reader builds before the
 * quant branch lands. Every symbol is weak: quant.c's strong definitions win
 * when both are linked. Delete this file once w/quant is merged. */
#include <string.h>

#include "agx/quant.h"

static const agx_type_traits tmp_traits[AGX_TYPE_COUNT] = {
    [AGX_TYPE_F32] = {.name = "f32", .block_size = 1, .type_size = 4},
    [AGX_TYPE_F16] = {.name = "f16", .block_size = 1, .type_size = 2},
    [AGX_TYPE_BF16] = {.name = "bf16", .block_size = 1, .type_size = 2},
    [AGX_TYPE_Q4_0] = {.name = "q4_0", .block_size = 32, .type_size = 18, .is_quantized = true},
    [AGX_TYPE_Q4_1] = {.name = "q4_1", .block_size = 32, .type_size = 20, .is_quantized = true},
    [AGX_TYPE_Q5_0] = {.name = "q5_0", .block_size = 32, .type_size = 22, .is_quantized = true},
    [AGX_TYPE_Q5_1] = {.name = "q5_1", .block_size = 32, .type_size = 24, .is_quantized = true},
    [AGX_TYPE_Q8_0] = {.name = "q8_0", .block_size = 32, .type_size = 34, .is_quantized = true},
    [AGX_TYPE_Q8_1] = {.name = "q8_1", .block_size = 32, .type_size = 36, .is_quantized = true},
    [AGX_TYPE_Q2_K] = {.name = "q2_K", .block_size = 256, .type_size = 84, .is_quantized = true},
    [AGX_TYPE_Q3_K] = {.name = "q3_K", .block_size = 256, .type_size = 110, .is_quantized = true},
    [AGX_TYPE_Q4_K] = {.name = "q4_K", .block_size = 256, .type_size = 144, .is_quantized = true},
    [AGX_TYPE_Q5_K] = {.name = "q5_K", .block_size = 256, .type_size = 176, .is_quantized = true},
    [AGX_TYPE_Q6_K] = {.name = "q6_K", .block_size = 256, .type_size = 210, .is_quantized = true},
    [AGX_TYPE_Q8_K] = {.name = "q8_K", .block_size = 256, .type_size = 292, .is_quantized = true},
};

__attribute__((weak)) const agx_type_traits *agx_type_traits_get(uint32_t type) {
    return type < AGX_TYPE_COUNT && tmp_traits[type].name ? &tmp_traits[type] : NULL;
}

__attribute__((weak)) const char *agx_type_name(uint32_t type) {
    const agx_type_traits *t = agx_type_traits_get(type);
    return t ? t->name : "unknown";
}

__attribute__((weak)) size_t agx_type_row_size(uint32_t type, int64_t n) {
    const agx_type_traits *t = agx_type_traits_get(type);
    if (!t || n < 0 || n % t->block_size) return 0;
    return (size_t)(n / t->block_size) * t->type_size;
}
