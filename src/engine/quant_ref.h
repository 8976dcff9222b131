/* quant_ref.h — the block quantizers, written once and compiled twice (as
 * AGX_QREF(name)): portably in quant.c and with FMA instructions in
 * quant_avx2.c. They follow llama.cpp's reference quantizers (ggml-quants.c)
 * including where llama.cpp's native (-march=native, GCC) build fuses a
 * multiply-add: those places call fmaf() explicitly and nothing else may be
 * contracted, so the output is bit-identical to the quantized files llama.cpp
 * makes (tests/conformance/test_quant_ref.c checks this on ../shared/ref).
 * q2_K and q3_K follow llama.cpp's algorithm too but are not byte-checked
 * (see the note above quant_q2_K).
 * Include only from a .c file that defines AGX_QREF. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "engine/quant_impl.h"

/* no multiply-add contraction beyond the explicit fmaf() calls */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#ifndef AGX_QREF_COMMON
#define AGX_QREF_COMMON
#define GROUP_MAX_EPS 1e-15f
/* ggml's nearest_int: round half to even via the 1.5*2^23 trick (|f| < 2^22). */
static inline int agx_nearest_int(float fval) {
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}
/* nearest_int(a * b) as llama.cpp's native build computes it: the product
 * is fused into the magic-number addition (rounds the exact product). */
static inline int agx_nearest_int_fma(float a, float b) {
    float val = fmaf(a, b, 12582912.f);
    int i;
    memcpy(&i, &val, sizeof(int));
    return (i & 0x007fffff) - 0x00400000;
}
#endif

static void AGX_QREF(quant_q4_0)(const float *x, void *vy, int64_t n) {
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
            const int8_t a = (int8_t)fmaf(x[j], id, 8.5f), b = (int8_t)fmaf(x[j + 16], id, 8.5f);
            const uint8_t xi0 = (uint8_t)(a < 15 ? a : 15), xi1 = (uint8_t)(b < 15 ? b : 15);
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void AGX_QREF(quant_q4_1)(const float *x, void *vy, int64_t n) {
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
            const int8_t a = (int8_t)fmaf(x[j] - min, id, 0.5f), b = (int8_t)fmaf(x[j + 16] - min, id, 0.5f);
            const uint8_t xi0 = (uint8_t)(a < 15 ? a : 15), xi1 = (uint8_t)(b < 15 ? b : 15);
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

static void AGX_QREF(quant_q5_0)(const float *x, void *vy, int64_t n) {
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
            const int8_t a = (int8_t)fmaf(x[j], id, 16.5f), b = (int8_t)fmaf(x[j + 16], id, 16.5f);
            const uint8_t xi0 = (uint8_t)(a < 31 ? a : 31), xi1 = (uint8_t)(b < 31 ? b : 31);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((uint32_t)(xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((uint32_t)(xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void AGX_QREF(quant_q5_1)(const float *x, void *vy, int64_t n) {
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
            const uint8_t xi0 = (uint8_t)(int8_t)fmaf(x[j] - min, id, 0.5f);
            const uint8_t xi1 = (uint8_t)(int8_t)fmaf(x[j + 16] - min, id, 0.5f);
            y[i].qs[j] = (uint8_t)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((uint32_t)(xi0 & 0x10u) >> 4) << (j + 0);
            qh |= ((uint32_t)(xi1 & 0x10u) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void AGX_QREF(quant_q8_0)(const float *x, void *vy, int64_t n) {
    agx_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / AGX_QK8_0; i++, x += AGX_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < AGX_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        for (int j = 0; j < AGX_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void AGX_QREF(quant_q8_1)(const float *x, void *vy, int64_t n) {
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

static void AGX_QREF(quant_q8_K)(const float *x, void *vy, int64_t n) {
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
            const int v = agx_nearest_int_fma(iscale, x[j]);
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
 * [0, nmax] with a weighted search over candidate scales. use_mad (q2_K):
 * the error is weight * |diff| instead of weight * diff^2. */
static float AGX_QREF(make_qkx2_quants)(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
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
        int l = agx_nearest_int_fma(iscale, x[i] - min);
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        const float diff = fmaf(scale, (float)L[i], min) - x[i];
        best_error = use_mad ? fmaf(weights[i], fabsf(diff), best_error) : fmaf(weights[i] * diff, diff, best_error);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (fmaf(rdelta, (float)is, rmin) + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = agx_nearest_int_fma(iscale, x[i] - min);
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            const float wl = weights[i] * (float)l;
            sum_l += wl;
            sum_l2 = fmaf(wl, (float)l, sum_l2);
            sum_xl = fmaf(wl, x[i], sum_xl);
        }
        const float D = fmaf(sum_w, sum_l2, -(sum_l * sum_l));
        if (D > 0) {
            float this_scale = fmaf(-sum_l, sum_x, sum_w * sum_xl) / D;
            float this_min = fmaf(sum_l2, sum_x, -(sum_l * sum_xl)) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = fmaf(this_scale, (float)Laux[i], this_min) - x[i];
                cur_error = use_mad ? fmaf(weights[i], fabsf(diff), cur_error) : fmaf(weights[i] * diff, diff, cur_error);
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

/* The signed value of the first largest |x| (0 when all |x| < GROUP_MAX_EPS). */
static float AGX_QREF(signed_absmax)(int n, const float *x) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    return amax < GROUP_MAX_EPS ? 0.f : max;
}

/* llama.cpp make_qx_quants (rmse_type 1, no importance weights): symmetric
 * fit into [-nmax, nmax-1], L stored biased by nmax. */
static float AGX_QREF(make_qx_quants)(int n, int nmax, const float *x, int8_t *L) {
    const float max = AGX_QREF(signed_absmax)(n, x);
    if (max == 0.f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -(float)nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = agx_nearest_int_fma(iscale, x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx = fmaf(w * x[i], (float)l, sumlx);
        suml2 = fmaf(w * (float)l, (float)l, suml2);
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -fmaf(0.1f, (float)is, (float)nmax) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = agx_nearest_int_fma(iscale, x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            const float w = x[i] * x[i]; /* (llama.cpp's vectorized search loop: not fused) */
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = agx_nearest_int_fma(iscale, x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Shared by q4_K and q5_K: 8 sub-blocks of 32 with 6-bit scales and mins. */
static void AGX_QREF(quant_k4_common)(const float *x, int nmax, float rmin, int nstep, agx_half *pd, agx_half *pdmin,
                            uint8_t scales_out[12], uint8_t L[AGX_QK_K]) {
    uint8_t Laux[32];
    float weights[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = AGX_QREF(make_qkx2_quants)(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep,
                                                 false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = agx_nearest_int_fma(inv_scale, scales[j]), lm = agx_nearest_int_fma(inv_min, mins[j]);
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
            int l = agx_nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

static void AGX_QREF(quant_q4_K)(const float *x, void *vy, int64_t n) {
    agx_block_q4_K *y = vy;
    uint8_t L[AGX_QK_K];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        AGX_QREF(quant_k4_common)(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < AGX_QK_K; j += 64) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
    }
}

static void AGX_QREF(quant_q5_K)(const float *x, void *vy, int64_t n) {
    agx_block_q5_K *y = vy;
    uint8_t L[AGX_QK_K];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        AGX_QREF(quant_k4_common)(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
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

static void AGX_QREF(quant_q6_K)(const float *x, void *vy, int64_t n) {
    agx_block_q6_K *y = vy;
    int8_t L[AGX_QK_K];
    float scales[AGX_QK_K / 16];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < 16; ib++) {
            const float scale = AGX_QREF(make_qx_quants)(16, 32, x + 16 * ib, L + 16 * ib);
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
            const int v = agx_nearest_int_fma(iscale, scales[ib]);
            y[i].scales[ib] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            const float d = agx_h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = agx_nearest_int(x[16 * j + ii] / d);
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


/* q2_K and q3_K follow the algorithm of llama.cpp's quantize_row_q2_K_ref /
 * quantize_row_q3_K_ref, but unlike the quantizers above they are NOT checked
 * byte for byte against llama.cpp (../shared/ref has no q2_K/q3_K tensors),
 * and where its native build fuses multiply-adds here is a guess: the fmaf()
 * calls below sit where GCC would contract a*b+c. Both builds of this file
 * give identical bytes (fmaf is exact in both; tests/unit/test_quant.c). */

/* Packs 256 2-bit values: element j + l + 32p of each 128-half at bits 2p
 * of qs[j/4 + l] (q2_K's qs and q3_K's low two bits). */
static void AGX_QREF(pack_2bit_planes)(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < AGX_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)((L[j + l] & 3) | ((L[j + l + 32] & 3) << 2) | ((L[j + l + 64] & 3) << 4) |
                                      ((L[j + l + 96] & 3) << 6));
}

static void AGX_QREF(quant_q2_K)(const float *x, void *vy, int64_t n) {
    agx_block_q2_K *y = vy;
    uint8_t L[AGX_QK_K], Laux[16];
    float weights[16], mins[16], scales[16];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        float max_scale = 0, max_min = 0; /* the min is subtracted: scales are >= 0 */
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = AGX_QREF(make_qkx2_quants)(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f,
                                                   15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        /* 4-bit scale and min per sub-block against the block's d and dmin
         * (clamped to the nibble: a negative fit would otherwise spill) */
        const float iscale = max_scale > 0 ? 15.f / max_scale : 0.f, imin = max_min > 0 ? 15.f / max_min : 0.f;
        for (int j = 0; j < 16; j++) {
            int ls = agx_nearest_int_fma(iscale, scales[j]), lm = agx_nearest_int_fma(imin, mins[j]);
            ls = ls < 0 ? 0 : ls > 15 ? 15 : ls;
            lm = lm < 0 ? 0 : lm > 15 ? 15 : lm;
            y[i].scales[j] = (uint8_t)(ls | (lm << 4));
        }
        y[i].d = agx_fp32_to_fp16(max_scale > 0 ? max_scale / 15.f : 0.f);
        y[i].dmin = agx_fp32_to_fp16(max_min > 0 ? max_min / 15.f : 0.f);
        /* re-quantize against the stored (rounded) scales and mins */
        for (int j = 0; j < 16; j++) {
            const float dl = agx_h2f(y[i].d) * (float)(y[i].scales[j] & 0xF);
            if (!dl) continue;
            const float ml = agx_h2f(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                const int l = agx_nearest_int((x[16 * j + ii] + ml) / dl);
                L[16 * j + ii] = (uint8_t)(l < 0 ? 0 : l > 3 ? 3 : l);
            }
        }
        AGX_QREF(pack_2bit_planes)(L, y[i].qs);
    }
}

/* llama.cpp make_q3_quants (do_rmse): symmetric fit of n values into
 * [-nmax, nmax-1] weighted by x^2, refined one value at a time while that
 * raises sumlx^2/suml2; L stored biased by nmax. */
static float AGX_QREF(make_q3_quants)(int n, int nmax, const float *x, int8_t *L) {
    const float max = AGX_QREF(signed_absmax)(n, x);
    if (max == 0.f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = agx_nearest_int_fma(iscale, x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx = fmaf(w * x[i], (float)l, sumlx);
        suml2 = fmaf(w * (float)l, (float)l, suml2);
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i], wx = w * x[i];
            float slx = fmaf(-wx, (float)L[i], sumlx);
            if (!(slx > 0)) continue;
            float sl2 = fmaf(-(w * (float)L[i]), (float)L[i], suml2);
            int new_l = agx_nearest_int(x[i] * sl2 / slx);
            new_l = new_l < -nmax ? -nmax : new_l > nmax - 1 ? nmax - 1 : new_l;
            if (new_l == L[i]) continue;
            slx = fmaf(wx, (float)new_l, slx);
            sl2 = fmaf(w * (float)new_l, (float)new_l, sl2);
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.f;
}

static void AGX_QREF(quant_q3_K)(const float *x, void *vy, int64_t n) {
    agx_block_q3_K *y = vy;
    int8_t L[AGX_QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / AGX_QK_K; i++, x += AGX_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = AGX_QREF(make_q3_quants)(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        /* 16 6-bit scales biased by 32, in the layout agx_unpack_q3k_scales reads */
        memset(y[i].scales, 0, 12);
        if (max_scale != 0) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = agx_nearest_int_fma(iscale, scales[j]);
                l = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = agx_fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = 0;
        }
        /* re-quantize against the stored (rounded) scales */
        int8_t sc[16];
        agx_unpack_q3k_scales(y[i].scales, sc);
        for (int j = 0; j < 16; j++) {
            const float dl = agx_h2f(y[i].d) * (float)sc[j];
            if (!dl) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = agx_nearest_int(x[16 * j + ii] / dl);
                L[16 * j + ii] = (int8_t)((l < -4 ? -4 : l > 3 ? 3 : l) + 4);
            }
        }
        /* bit 2 of element j -> hmask[j % 32] bit j / 32; the low two bits as
         * q2_K's planes */
        uint8_t low[AGX_QK_K];
        memset(y[i].hmask, 0, sizeof(y[i].hmask));
        for (int j = 0; j < AGX_QK_K; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            low[j] = (uint8_t)l;
        }
        AGX_QREF(pack_2bit_planes)(low, y[i].qs);
    }
}


#if !defined(__clang__)
#pragma GCC pop_options
#endif
