/* quant.c — the tensor type-traits table (as in ggml): fp16/bf16 conversion,
 * scalar dequantization of every supported type, reference quantizers
 * (llama.cpp's algorithms, so files and activations quantize to the same
 * bits), and the scalar dot kernels every SIMD kernel is tested against. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant_impl.h"

#define GROUP_MAX_EPS 1e-15f

/* ---------------------------------------------------------------- fp16/bf16 */

float agx_fp16_to_fp32(uint16_t h) { return agx_h2f(h); }

uint16_t agx_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* quiet nan */
    if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);                         /* >= 65536: inf */
    uint32_t e = ax >> 23;
    if (e < 113) { /* half subnormal (or zero) */
        if (e < 102) return (uint16_t)sign;
        uint32_t m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = ((e - 112) << 10) | ((ax & 0x7fffffu) >> 13), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* carry may give inf: correct */
    return (uint16_t)(sign | h);
}

float agx_bf16_to_fp32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t agx_fp32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* force quiet */
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1))) >> 16);
}

/* ggml's nearest_int: round half to even via the 1.5*2^23 trick (|f| < 2^22). */
static inline int nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}

/* ------------------------------------------------------------- dequantize */

static void deq_f32(const void *src, float *y, int64_t n) { memcpy(y, src, (size_t)n * sizeof(float)); }

static void deq_f16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = agx_h2f(x[i]);
}

static void deq_bf16(const void *src, float *y, int64_t n) {
    const uint16_t *x = src;
    for (int64_t i = 0; i < n; i++) y[i] = agx_bf16_to_fp32(x[i]);
}

static void deq_q4_0(const void *src, float *y, int64_t n) {
    const agx_block_q4_0 *x = src;
    for (int64_t i = 0; i < n / AGX_QK4_0; i++, y += AGX_QK4_0) {
        const float d = agx_h2f(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const void *src, float *y, int64_t n) {
    const agx_block_q4_1 *x = src;
    for (int64_t i = 0; i < n / AGX_QK4_1; i++, y += AGX_QK4_1) {
        const float d = agx_h2f(x[i].d), m = agx_h2f(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(x[i].qs[j] & 0x0F) * d + m;
            y[j + 16] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void deq_q5_0(const void *src, float *y, int64_t n) {
    const agx_block_q5_0 *x = src;
    for (int64_t i = 0; i < n / AGX_QK5_0; i++, y += AGX_QK5_0) {
        const float d = agx_h2f(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < 16; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[j] = (float)(((x[i].qs[j] & 0x0F) | xh0) - 16) * d;
            y[j + 16] = (float)(((x[i].qs[j] >> 4) | xh1) - 16) * d;
        }
    }
}

static void deq_q5_1(const void *src, float *y, int64_t n) {
    const agx_block_q5_1 *x = src;
    for (int64_t i = 0; i < n / AGX_QK5_1; i++, y += AGX_QK5_1) {
        const float d = agx_h2f(x[i].d), m = agx_h2f(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < 16; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            y[j] = (float)((x[i].qs[j] & 0x0F) | xh0) * d + m;
            y[j + 16] = (float)((x[i].qs[j] >> 4) | xh1) * d + m;
        }
    }
}

static void deq_q8_0(const void *src, float *y, int64_t n) {
    const agx_block_q8_0 *x = src;
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, y += AGX_QK8_0) {
        const float d = agx_h2f(x[i].d);
        for (int j = 0; j < AGX_QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static void deq_q8_1(const void *src, float *y, int64_t n) {
    const agx_block_q8_1 *x = src;
    for (int64_t i = 0; i < n / AGX_QK8_1; i++, y += AGX_QK8_1) {
        const float d = agx_h2f(x[i].d);
        for (int j = 0; j < AGX_QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static void deq_q2_K(const void *src, float *y, int64_t n) {
    const agx_block_q2_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const float d = agx_h2f(x[i].d), min = agx_h2f(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int k = 0; k < AGX_QK_K; k += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                uint8_t sc = x[i].scales[is++];
                float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l] >> shift) & 3) - ml;
                sc = x[i].scales[is++];
                dl = d * (float)(sc & 0xF);
                ml = min * (float)(sc >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16] >> shift) & 3) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

/* Unpacks the 16 6-bit q3_K scales (biased by 32) into signed bytes. */
static void q3k_scales(const uint8_t *packed, int8_t out[16]) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    memcpy(aux, packed, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    memcpy(out, aux, 16);
    for (int j = 0; j < 16; j++) out[j] = (int8_t)(out[j] - 32);
}

static void deq_q3_K(const void *src, float *y, int64_t n) {
    const agx_block_q3_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const float d_all = agx_h2f(x[i].d);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int8_t scales[16];
        q3k_scales(x[i].scales, scales);
        uint8_t m = 1;
        int is = 0;
        for (int k = 0; k < AGX_QK_K; k += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                float dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d_all * (float)scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)(((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

static void deq_q4_K(const void *src, float *y, int64_t n) {
    const agx_block_q4_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const float d = agx_h2f(x[i].d), min = agx_h2f(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < AGX_QK_K; j += 64) {
            agx_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            agx_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

static void deq_q5_K(const void *src, float *y, int64_t n) {
    const agx_block_q5_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const float d = agx_h2f(x[i].d), min = agx_h2f(x[i].dmin);
        int is = 0;
        uint8_t sc, m, u1 = 1, u2 = 2;
        for (int j = 0; j < AGX_QK_K; j += 64) {
            agx_get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            agx_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

static void deq_q6_K(const void *src, float *y, int64_t n) {
    const agx_block_q6_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const float d = agx_h2f(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int k = 0; k < AGX_QK_K; k += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * (float)q1;
                y[l + 32] = d * sc[is + 2] * (float)q2;
                y[l + 64] = d * sc[is + 4] * (float)q3;
                y[l + 96] = d * sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void deq_q8_K(const void *src, float *y, int64_t n) {
    const agx_block_q8_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++)
        for (int j = 0; j < AGX_QK_K; j++) *y++ = x[i].d * (float)x[i].qs[j];
}

/* ------------------------------------------------------- reference quantize */

static void quant_f32(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

static void quant_f16(const float *x, void *y, int64_t n) {
    uint16_t *o = y;
    for (int64_t i = 0; i < n; i++) o[i] = agx_fp32_to_fp16(x[i]);
}

static void quant_bf16(const float *x, void *y, int64_t n) {
    uint16_t *o = y;
    for (int64_t i = 0; i < n; i++) o[i] = agx_fp32_to_bf16(x[i]);
}

static void quant_q4_0(const float *x, void *vy, int64_t n) {
    agx_block_q4_0 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK4_0; i++, x += AGX_QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < AGX_QK4_0; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)(x[j] * id + 8.5f), b = (int8_t)(x[j + 16] * id + 8.5f);
            const uint8_t xi0 = (uint8_t)(a < 15 ? a : 15), xi1 = (uint8_t)(b < 15 ? b : 15);
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void quant_q4_1(const float *x, void *vy, int64_t n) {
    agx_block_q4_1 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK4_1; i++, x += AGX_QK4_1) {
        float min = x[0], max = x[0];
        for (int j = 1; j < AGX_QK4_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        y[i].m = agx_fp32_to_fp16(min);
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)((x[j] - min) * id + 0.5f), b = (int8_t)((x[j + 16] - min) * id + 0.5f);
            const uint8_t xi0 = (uint8_t)(a < 15 ? a : 15), xi1 = (uint8_t)(b < 15 ? b : 15);
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void quant_q5_0(const float *x, void *vy, int64_t n) {
    agx_block_q5_0 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK5_0; i++, x += AGX_QK5_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < AGX_QK5_0; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const int8_t a = (int8_t)(x[j] * id + 16.5f), b = (int8_t)(x[j + 16] * id + 16.5f);
            const uint8_t xi0 = (uint8_t)(a < 31 ? a : 31), xi1 = (uint8_t)(b < 31 ? b : 31);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((uint32_t)(xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((uint32_t)(xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quant_q5_1(const float *x, void *vy, int64_t n) {
    agx_block_q5_1 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK5_1; i++, x += AGX_QK5_1) {
        float min = x[0], max = x[0];
        for (int j = 1; j < AGX_QK5_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        y[i].m = agx_fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const uint8_t xi0 = (uint8_t)(int8_t)((x[j] - min) * id + 0.5f);
            const uint8_t xi1 = (uint8_t)(int8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((uint32_t)(xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((uint32_t)(xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quant_q8_0(const float *x, void *vy, int64_t n) {
    agx_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, x += AGX_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < AGX_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        for (int j = 0; j < AGX_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quant_q8_1(const float *x, void *vy, int64_t n) {
    agx_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK8_1; i++, x += AGX_QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < AGX_QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < AGX_QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = agx_fp32_to_fp16((float)sum * d);
    }
}

static void quant_q8_K(const float *x, void *vy, int64_t n) {
    agx_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < AGX_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, AGX_QK_K);
            memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < AGX_QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < AGX_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

/* llama.cpp make_qkx2_quants: affine (scale, min) fit of n values into
 * [0, nmax] with a weighted search over candidate scales. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        const float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * diff * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* llama.cpp make_qx_quants (rmse_type 1, no importance weights): symmetric
 * fit into [-nmax, nmax-1], L stored biased by nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -(float)nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Shared by q4_K and q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
static void quant_k4_common(const float *x, int nmax, float rmin, int nstep, agx_half *pd, agx_half *pdmin,
                            uint8_t scales_out[12], uint8_t L[AGX_QK_K]) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
        ls = ls > 63 ? 63 : ls;
        lm = lm > 63 ? 63 : lm;
        if (j < 4) {
            scales_out[j] = (uint8_t)ls;
            scales_out[j + 4] = (uint8_t)lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *pd = agx_fp32_to_fp16(max_scale / 63.f);
    *pdmin = agx_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        agx_get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = agx_h2f(*pd) * sc;
        if (!d) continue;
        const float dm = agx_h2f(*pdmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

static void quant_q4_K(const float *x, void *vy, int64_t n) {
    agx_block_q4_K *y = vy;
    uint8_t L[AGX_QK_K];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        quant_k4_common(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < AGX_QK_K; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

static void quant_q5_K(const float *x, void *vy, int64_t n) {
    agx_block_q5_K *y = vy;
    uint8_t L[AGX_QK_K];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        quant_k4_common(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, AGX_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int k = 0; k < AGX_QK_K; k += 64) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[k + j], l2 = L[k + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
            ql += 32;
        }
    }
}

static void quant_q6_K(const float *x, void *vy, int64_t n) {
    agx_block_q6_K *y = vy;
    int8_t L[AGX_QK_K];
    float scales[AGX_QK_K / 16];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = agx_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < 16; ib++) {
            const int v = nearest_int(iscale * scales[ib]);
            y[i].scales[ib] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            const float d = agx_h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int(x[16 * j + ii] / d);
                l = l < -32 ? -32 : l > 31 ? 31 : l;
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < AGX_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

/* ------------------------------------------------------- scalar dot kernels */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * (double)y[i];
    *s = (float)sum;
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)agx_h2f(x[i]) * (double)agx_h2f(y[i]);
    *s = (float)sum;
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)agx_bf16_to_fp32(x[i]) * (double)agx_bf16_to_fp32(y[i]);
    *s = (float)sum;
}

static void dot_q4_0_q8_0(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q4_0 *x = vx;
    const agx_block_q8_0 *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += ((x[i].qs[j] & 0x0F) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        sumf += (float)sumi * (agx_h2f(x[i].d) * agx_h2f(y[i].d));
    }
    *s = sumf;
}

static void dot_q4_1_q8_1(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q4_1 *x = vx;
    const agx_block_q8_1 *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK8_1; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) sumi += (x[i].qs[j] & 0x0F) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        sumf += (agx_h2f(x[i].d) * agx_h2f(y[i].d)) * (float)sumi + agx_h2f(x[i].m) * agx_h2f(y[i].s);
    }
    *s = sumf;
}

static void dot_q5_0_q8_0(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q5_0 *x = vx;
    const agx_block_q8_0 *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK8_0; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            sumi += (((x[i].qs[j] & 0x0F) | xh0) - 16) * y[i].qs[j] + (((x[i].qs[j] >> 4) | xh1) - 16) * y[i].qs[j + 16];
        }
        sumf += (float)sumi * (agx_h2f(x[i].d) * agx_h2f(y[i].d));
    }
    *s = sumf;
}

static void dot_q5_1_q8_1(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q5_1 *x = vx;
    const agx_block_q8_1 *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK8_1; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int xh0 = (int)(((qh >> j) << 4) & 0x10), xh1 = (int)((qh >> (j + 12)) & 0x10);
            sumi += ((x[i].qs[j] & 0x0F) | xh0) * y[i].qs[j] + ((x[i].qs[j] >> 4) | xh1) * y[i].qs[j + 16];
        }
        sumf += (agx_h2f(x[i].d) * agx_h2f(y[i].d)) * (float)sumi + agx_h2f(x[i].m) * agx_h2f(y[i].s);
    }
    *s = sumf;
}

static void dot_q8_0_q8_0(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q8_0 *x = vx, *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < AGX_QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += (float)sumi * (agx_h2f(x[i].d) * agx_h2f(y[i].d));
    }
    *s = sumf;
}

static void dot_q2_K_q8_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q2_K *x = vx;
    const agx_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK_K; i++) {
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        const float dall = y[i].d * agx_h2f(x[i].d), dmin = y[i].d * agx_h2f(x[i].dmin);
        const uint8_t *q2 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        for (int k = 0; k < AGX_QK_K / 128; k++) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                int d = x[i].scales[is++] & 0xF, isuml = 0;
                for (int l = 0; l < 16; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                d = x[i].scales[is++] & 0xF;
                isuml = 0;
                for (int l = 16; l < 32; l++) isuml += q8[l] * ((q2[l] >> shift) & 3);
                isum += d * isuml;
                shift += 2;
                q8 += 32;
            }
            q2 += 32;
        }
        sumf += dall * (float)isum - dmin * (float)summs;
    }
    *s = sumf;
}

static void dot_q3_K_q8_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q3_K *x = vx;
    const agx_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK_K; i++) {
        int8_t scales[16];
        q3k_scales(x[i].scales, scales);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        const int8_t *q8 = y[i].qs;
        uint8_t m = 1;
        int isum = 0, is = 0;
        for (int k = 0; k < AGX_QK_K; k += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int h = 0; h < 2; h++) {
                    int acc = 0;
                    for (int l = 16 * h; l < 16 * h + 16; l++)
                        acc += q8[l] * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                    isum += scales[is++] * acc;
                }
                shift += 2;
                m = (uint8_t)(m << 1);
                q8 += 32;
            }
            q += 32;
        }
        sumf += agx_h2f(x[i].d) * y[i].d * (float)isum;
    }
    *s = sumf;
}

static void dot_q4_K_q8_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q4_K *x = vx;
    const agx_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK_K; i++) {
        uint8_t sc[8], mn[8];
        agx_unpack_k4_scales(x[i].scales, sc, mn);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < 4; j++) {
            int a = 0, b = 0;
            for (int l = 0; l < 32; l++) {
                a += (q4[l] & 0xF) * q8[l];
                b += (q4[l] >> 4) * q8[l + 32];
            }
            sumi += sc[2 * j] * a + sc[2 * j + 1] * b;
            q4 += 32;
            q8 += 64;
        }
        for (int j = 0; j < 8; j++) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        sumf += y[i].d * agx_h2f(x[i].d) * (float)sumi - y[i].d * agx_h2f(x[i].dmin) * (float)summ;
    }
    *s = sumf;
}

static void dot_q5_K_q8_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q5_K *x = vx;
    const agx_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK_K; i++) {
        uint8_t sc[8], mn[8];
        agx_unpack_k4_scales(x[i].scales, sc, mn);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < 4; j++) {
            const uint8_t u1 = (uint8_t)(1 << (2 * j)), u2 = (uint8_t)(2 << (2 * j));
            int a = 0, b = 0;
            for (int l = 0; l < 32; l++) {
                a += ((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) * q8[l];
                b += ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * q8[l + 32];
            }
            sumi += sc[2 * j] * a + sc[2 * j + 1] * b;
            ql += 32;
            q8 += 64;
        }
        for (int j = 0; j < 8; j++) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        sumf += y[i].d * agx_h2f(x[i].d) * (float)sumi - y[i].d * agx_h2f(x[i].dmin) * (float)summ;
    }
    *s = sumf;
}

static void dot_q6_K_q8_K(int n, float *s, const void *vx, const void *vy) {
    const agx_block_q6_K *x = vx;
    const agx_block_q8_K *y = vy;
    float sumf = 0;
    for (int i = 0; i < n / AGX_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs, *sc = x[i].scales;
        int sumi = 0;
        for (int k = 0; k < AGX_QK_K; k += 128) {
            int acc[8] = {0};
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                acc[is + 0] += q1 * q8[l + 0];
                acc[is + 2] += q2 * q8[l + 32];
                acc[is + 4] += q3 * q8[l + 64];
                acc[is + 6] += q4 * q8[l + 96];
            }
            for (int j = 0; j < 8; j++) sumi += sc[j] * acc[j];
            ql += 64;
            qh += 32;
            q8 += 128;
            sc += 8;
        }
        sumf += agx_h2f(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sumf;
}

/* --------------------------------------------------------------- the table */

static const agx_type_traits k_base[AGX_TYPE_COUNT] = {
    [AGX_TYPE_F32] = {"f32", 1, 4, false, deq_f32, quant_f32, quant_f32, AGX_TYPE_F32, dot_f32, dot_f32},
    [AGX_TYPE_F16] = {"f16", 1, 2, false, deq_f16, quant_f16, quant_f16, AGX_TYPE_F16, dot_f16, dot_f16},
    [AGX_TYPE_BF16] = {"bf16", 1, 2, false, deq_bf16, quant_bf16, quant_bf16, AGX_TYPE_BF16, dot_bf16, dot_bf16},
    [AGX_TYPE_Q4_0] = {"q4_0", 32, sizeof(agx_block_q4_0), true, deq_q4_0, quant_q4_0, quant_q4_0, AGX_TYPE_Q8_0,
                       dot_q4_0_q8_0, dot_q4_0_q8_0},
    [AGX_TYPE_Q4_1] = {"q4_1", 32, sizeof(agx_block_q4_1), true, deq_q4_1, quant_q4_1, quant_q4_1, AGX_TYPE_Q8_1,
                       dot_q4_1_q8_1, dot_q4_1_q8_1},
    [AGX_TYPE_Q5_0] = {"q5_0", 32, sizeof(agx_block_q5_0), true, deq_q5_0, quant_q5_0, quant_q5_0, AGX_TYPE_Q8_0,
                       dot_q5_0_q8_0, dot_q5_0_q8_0},
    [AGX_TYPE_Q5_1] = {"q5_1", 32, sizeof(agx_block_q5_1), true, deq_q5_1, quant_q5_1, quant_q5_1, AGX_TYPE_Q8_1,
                       dot_q5_1_q8_1, dot_q5_1_q8_1},
    [AGX_TYPE_Q8_0] = {"q8_0", 32, sizeof(agx_block_q8_0), true, deq_q8_0, quant_q8_0, quant_q8_0, AGX_TYPE_Q8_0,
                       dot_q8_0_q8_0, dot_q8_0_q8_0},
    /* activation-only formats: no dot kernel of their own */
    [AGX_TYPE_Q8_1] = {"q8_1", 32, sizeof(agx_block_q8_1), true, deq_q8_1, quant_q8_1, quant_q8_1, AGX_TYPE_Q8_1,
                       NULL, NULL},
    [AGX_TYPE_Q2_K] = {"q2_K", 256, sizeof(agx_block_q2_K), true, deq_q2_K, NULL, NULL, AGX_TYPE_Q8_K,
                       dot_q2_K_q8_K, dot_q2_K_q8_K},
    [AGX_TYPE_Q3_K] = {"q3_K", 256, sizeof(agx_block_q3_K), true, deq_q3_K, NULL, NULL, AGX_TYPE_Q8_K,
                       dot_q3_K_q8_K, dot_q3_K_q8_K},
    [AGX_TYPE_Q4_K] = {"q4_K", 256, sizeof(agx_block_q4_K), true, deq_q4_K, quant_q4_K, quant_q4_K, AGX_TYPE_Q8_K,
                       dot_q4_K_q8_K, dot_q4_K_q8_K},
    [AGX_TYPE_Q5_K] = {"q5_K", 256, sizeof(agx_block_q5_K), true, deq_q5_K, quant_q5_K, quant_q5_K, AGX_TYPE_Q8_K,
                       dot_q5_K_q8_K, dot_q5_K_q8_K},
    [AGX_TYPE_Q6_K] = {"q6_K", 256, sizeof(agx_block_q6_K), true, deq_q6_K, quant_q6_K, quant_q6_K, AGX_TYPE_Q8_K,
                       dot_q6_K_q8_K, dot_q6_K_q8_K},
    [AGX_TYPE_Q8_K] = {"q8_K", 256, sizeof(agx_block_q8_K), true, deq_q8_K, quant_q8_K, quant_q8_K, AGX_TYPE_Q8_K,
                       NULL, NULL},
};

/* Filled once from k_base plus the kernels the CPU supports; read-only after. */
static agx_type_traits g_traits[AGX_TYPE_COUNT];
static agx_kernel_set g_isa_kernels[3][AGX_TYPE_COUNT];
static pthread_once_t g_traits_once = PTHREAD_ONCE_INIT;

static void traits_init(void) {
    memcpy(g_traits, k_base, sizeof(g_traits));
    for (int t = 0; t < AGX_TYPE_COUNT; t++) g_isa_kernels[0][t].vec_dot = k_base[t].vec_dot_scalar;
    const agx_cpu_features *f = agx_cpu_features_get();
    if (f->avx2 && f->fma && f->f16c) agx_quant_avx2_kernels(g_isa_kernels[1]);
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni) agx_quant_avx512_kernels(g_isa_kernels[2]);
    const int level = agx_cpu_isa_level();
    for (int t = 0; t < AGX_TYPE_COUNT; t++) {
        for (int l = level; l > 0; l--)
            if (g_isa_kernels[l][t].vec_dot) {
                g_traits[t].vec_dot = g_isa_kernels[l][t].vec_dot;
                break;
            }
    }
    if (level >= 2) {
        g_traits[AGX_TYPE_Q8_K].from_float = agx_quantize_row_q8_K_avx512;
        g_traits[AGX_TYPE_Q8_0].from_float = agx_quantize_row_q8_0_avx512;
    }
}

const agx_type_traits *agx_type_traits_get(uint32_t type) {
    if (type >= AGX_TYPE_COUNT || !k_base[type].name) return NULL;
    pthread_once(&g_traits_once, traits_init);
    return &g_traits[type];
}

const char *agx_type_name(uint32_t type) {
    if (type >= AGX_TYPE_COUNT || !k_base[type].name) return "unknown";
    return k_base[type].name;
}

size_t agx_type_row_size(uint32_t type, int64_t n) {
    if (type >= AGX_TYPE_COUNT || !k_base[type].name || n < 0) return 0;
    const int64_t bs = k_base[type].block_size;
    if (n % bs) return 0;
    const uint64_t blocks = (uint64_t)(n / bs);
    if (blocks > SIZE_MAX / k_base[type].type_size) return 0;
    return (size_t)blocks * k_base[type].type_size;
}

agx_gemm_fn agx_quant_gemm_get(uint32_t wtype) {
    if (wtype >= AGX_TYPE_COUNT || !k_base[wtype].name) return NULL;
    pthread_once(&g_traits_once, traits_init);
    for (int l = agx_cpu_isa_level(); l > 0; l--)
        if (g_isa_kernels[l][wtype].gemm) return g_isa_kernels[l][wtype].gemm;
    return NULL;
}

agx_kernel_set agx_quant_kernels_for_isa(uint32_t wtype, int isa) {
    agx_kernel_set none = {NULL, NULL};
    if (wtype >= AGX_TYPE_COUNT || !k_base[wtype].name || isa < 0 || isa > 2) return none;
    pthread_once(&g_traits_once, traits_init);
    return g_isa_kernels[isa][wtype];
}
