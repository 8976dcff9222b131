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

static void deq_q3_K(const void *src, float *y, int64_t n) {
    const agx_block_q3_K *x = src;
    for (int64_t i = 0; i < n / AGX_QK_K; i++) {
        const float d_all = agx_h2f(x[i].d);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        int8_t scales[16];
        agx_unpack_q3k_scales(x[i].scales, scales);
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

/* Block quantizers (q4_0 .. q6_K, q2_K/q3_K, q8_K), portable build: fmaf() is libm's
 * correctly rounded one, so the bits equal the FMA build in quant_avx2.c. */
#define AGX_QREF(name) name##_portable
#include "engine/quant_ref.h"
#undef AGX_QREF

/* Activation quantizers: what llama.cpp's x86 build does at run time
 * (quantize_row_q8_0/q8_1 in ggml-cpu's x86 quants.c), which differs from
 * the file reference above: id = 127/amax instead of 1/d, and products
 * rounded half to even instead of roundf. Matching it keeps our logits next
 * to llama.cpp's. */
static void act_q8_0(const float *x, void *vy, int64_t n) {
    agx_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, x += AGX_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < AGX_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        for (int j = 0; j < AGX_QK8_0; j++) y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
    }
}

static void act_q8_1(const float *x, void *vy, int64_t n) {
    agx_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK8_1; i++, x += AGX_QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < AGX_QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < AGX_QK8_1; j++) {
            y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = agx_fp32_to_fp16(d * (float)sum);
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
        agx_unpack_q3k_scales(x[i].scales, scales);
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
    [AGX_TYPE_Q4_0] = {"q4_0", 32, sizeof(agx_block_q4_0), true, deq_q4_0, quant_q4_0_portable, quant_q4_0_portable, AGX_TYPE_Q8_0,
                       dot_q4_0_q8_0, dot_q4_0_q8_0},
    [AGX_TYPE_Q4_1] = {"q4_1", 32, sizeof(agx_block_q4_1), true, deq_q4_1, quant_q4_1_portable, quant_q4_1_portable, AGX_TYPE_Q8_1,
                       dot_q4_1_q8_1, dot_q4_1_q8_1},
    [AGX_TYPE_Q5_0] = {"q5_0", 32, sizeof(agx_block_q5_0), true, deq_q5_0, quant_q5_0_portable, quant_q5_0_portable, AGX_TYPE_Q8_0,
                       dot_q5_0_q8_0, dot_q5_0_q8_0},
    [AGX_TYPE_Q5_1] = {"q5_1", 32, sizeof(agx_block_q5_1), true, deq_q5_1, quant_q5_1_portable, quant_q5_1_portable, AGX_TYPE_Q8_1,
                       dot_q5_1_q8_1, dot_q5_1_q8_1},
    [AGX_TYPE_Q8_0] = {"q8_0", 32, sizeof(agx_block_q8_0), true, deq_q8_0, quant_q8_0_portable, act_q8_0, AGX_TYPE_Q8_0,
                       dot_q8_0_q8_0, dot_q8_0_q8_0},
    /* activation-only formats: no dot kernel of their own */
    [AGX_TYPE_Q8_1] = {"q8_1", 32, sizeof(agx_block_q8_1), true, deq_q8_1, quant_q8_1_portable, act_q8_1, AGX_TYPE_Q8_1,
                       NULL, NULL},
    [AGX_TYPE_Q2_K] = {"q2_K", 256, sizeof(agx_block_q2_K), true, deq_q2_K, quant_q2_K_portable, quant_q2_K_portable, AGX_TYPE_Q8_K,
                       dot_q2_K_q8_K, dot_q2_K_q8_K},
    [AGX_TYPE_Q3_K] = {"q3_K", 256, sizeof(agx_block_q3_K), true, deq_q3_K, quant_q3_K_portable, quant_q3_K_portable, AGX_TYPE_Q8_K,
                       dot_q3_K_q8_K, dot_q3_K_q8_K},
    [AGX_TYPE_Q4_K] = {"q4_K", 256, sizeof(agx_block_q4_K), true, deq_q4_K, quant_q4_K_portable, quant_q4_K_portable, AGX_TYPE_Q8_K,
                       dot_q4_K_q8_K, dot_q4_K_q8_K},
    [AGX_TYPE_Q5_K] = {"q5_K", 256, sizeof(agx_block_q5_K), true, deq_q5_K, quant_q5_K_portable, quant_q5_K_portable, AGX_TYPE_Q8_K,
                       dot_q5_K_q8_K, dot_q5_K_q8_K},
    [AGX_TYPE_Q6_K] = {"q6_K", 256, sizeof(agx_block_q6_K), true, deq_q6_K, quant_q6_K_portable, quant_q6_K_portable, AGX_TYPE_Q8_K,
                       dot_q6_K_q8_K, dot_q6_K_q8_K},
    [AGX_TYPE_Q8_K] = {"q8_K", 256, sizeof(agx_block_q8_K), true, deq_q8_K, quant_q8_K_portable, quant_q8_K_portable, AGX_TYPE_Q8_K,
                       NULL, NULL},
};

/* Filled once from k_base plus the kernels the CPU supports; read-only after. */
static agx_type_traits g_traits[AGX_TYPE_COUNT];
static agx_kernel_set g_isa_kernels[3][AGX_TYPE_COUNT];
static pthread_once_t g_traits_once = PTHREAD_ONCE_INIT;

static void traits_init(void) {
    memcpy(g_traits, k_base, sizeof(g_traits));
    for (int t = 0; t < AGX_TYPE_COUNT; t++) {
        g_isa_kernels[0][t].vec_dot = k_base[t].vec_dot_scalar;
        g_isa_kernels[0][t].from_float_ref = k_base[t].from_float_ref; /* the portable build */
    }
    const int hw = agx_cpu_hw_level();
    if (hw >= 1) agx_quant_avx2_kernels(g_isa_kernels[1]);
    if (hw >= 2) agx_quant_avx512_kernels(g_isa_kernels[2]);
    const int level = agx_cpu_isa_level();
    for (int t = 0; t < AGX_TYPE_COUNT; t++) {
        for (int l = level; l > 0; l--)
            if (g_isa_kernels[l][t].vec_dot) {
                g_traits[t].vec_dot = g_isa_kernels[l][t].vec_dot;
                break;
            }
    }
    /* reference quantizers: the FMA build when the CPU has FMA (same bits) */
    for (int t = 0; t < AGX_TYPE_COUNT; t++)
        if (level >= 1 && g_isa_kernels[1][t].from_float_ref) {
            g_traits[t].from_float_ref = g_isa_kernels[1][t].from_float_ref;
            if (k_base[t].from_float == k_base[t].from_float_ref) g_traits[t].from_float = g_traits[t].from_float_ref;
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

agx_kernel_set agx_quant_gemm_get(uint32_t wtype) {
    agx_kernel_set none = {0};
    if (wtype >= AGX_TYPE_COUNT || !k_base[wtype].name) return none;
    pthread_once(&g_traits_once, traits_init);
    for (int l = agx_cpu_isa_level(); l > 0; l--)
        if (g_isa_kernels[l][wtype].gemm) return g_isa_kernels[l][wtype];
    return none;
}

agx_kernel_set agx_quant_kernels_for_isa(uint32_t wtype, int isa) {
    agx_kernel_set none = {0};
    if (wtype >= AGX_TYPE_COUNT || !k_base[wtype].name || isa < 0 || isa > 2) return none;
    pthread_once(&g_traits_once, traits_init);
    return g_isa_kernels[isa][wtype];
}
