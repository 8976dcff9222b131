/* test_quant.c — tensor types: traits table, fp16/bf16 conversion (subnormals,
 * inf, nan, rounding), dequantization of every type against hand-built blocks
 * with hand-computed values, and quantize -> dequantize error bounds. */
#include "agx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agx/quant.h"
#include "engine/quant_impl.h"

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_traits_table(void **state) {
    (void)state;
    struct {
        uint32_t t;
        const char *name;
        int64_t bs;
        size_t ts;
    } want[] = {{AGX_TYPE_F32, "f32", 1, 4},           {AGX_TYPE_F16, "f16", 1, 2},
                {AGX_TYPE_BF16, "bf16", 1, 2},         {AGX_TYPE_Q4_0, "q4_0", 32, 18},
                {AGX_TYPE_Q4_1, "q4_1", 32, 20},       {AGX_TYPE_Q5_0, "q5_0", 32, 22},
                {AGX_TYPE_Q5_1, "q5_1", 32, 24},       {AGX_TYPE_Q8_0, "q8_0", 32, 34},
                {AGX_TYPE_Q8_1, "q8_1", 32, 36},       {AGX_TYPE_Q2_K, "q2_K", 256, 84},
                {AGX_TYPE_Q3_K, "q3_K", 256, 110},     {AGX_TYPE_Q4_K, "q4_K", 256, 144},
                {AGX_TYPE_Q5_K, "q5_K", 256, 176},     {AGX_TYPE_Q6_K, "q6_K", 256, 210},
                {AGX_TYPE_Q8_K, "q8_K", 256, 292}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const agx_type_traits *tr = agx_type_traits_get(want[i].t);
        assert_non_null(tr);
        assert_string_equal(tr->name, want[i].name);
        assert_string_equal(agx_type_name(want[i].t), want[i].name);
        assert_int_equal(tr->block_size, want[i].bs);
        assert_int_equal(tr->type_size, want[i].ts);
        assert_non_null(tr->to_float);
        assert_int_equal(agx_type_row_size(want[i].t, want[i].bs * 7), want[i].ts * 7);
        if (want[i].bs > 1) assert_int_equal(agx_type_row_size(want[i].t, want[i].bs + 1), 0);
    }
    /* every weight type has a dot kernel and its activation format a quantizer */
    const uint32_t weights[] = {AGX_TYPE_F32,  AGX_TYPE_F16,  AGX_TYPE_BF16, AGX_TYPE_Q4_0, AGX_TYPE_Q4_1,
                                AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0, AGX_TYPE_Q2_K, AGX_TYPE_Q3_K,
                                AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof(weights) / sizeof(weights[0]); i++) {
        const agx_type_traits *tr = agx_type_traits_get(weights[i]);
        assert_non_null(tr->vec_dot);
        assert_non_null(tr->vec_dot_scalar);
        const agx_type_traits *vt = agx_type_traits_get(tr->vec_dot_type);
        assert_non_null(vt);
        assert_non_null(vt->from_float);
        assert_int_equal(tr->block_size % vt->block_size, 0);
    }
    assert_null(agx_type_traits_get(4)); /* removed q4_2 */
    assert_null(agx_type_traits_get(999));
    assert_string_equal(agx_type_name(5), "unknown");
    assert_string_equal(agx_type_name(12345), "unknown");
    assert_int_equal(agx_type_row_size(999, 32), 0);
    assert_int_equal(agx_type_row_size(AGX_TYPE_Q4_K, -256), 0);
    assert_int_equal(agx_type_row_size(AGX_TYPE_F32, INT64_MAX), 0); /* would overflow */
}

static void test_fp16(void **state) {
    (void)state;
    assert_true(agx_fp16_to_fp32(0x3C00) == 1.0f);
    assert_true(agx_fp16_to_fp32(0xC000) == -2.0f);
    assert_true(agx_fp16_to_fp32(0x7BFF) == 65504.0f);
    assert_true(agx_fp16_to_fp32(0x0001) == 0x1p-24f);   /* smallest subnormal */
    assert_true(agx_fp16_to_fp32(0x03FF) == 1023 * 0x1p-24f);
    assert_true(agx_fp16_to_fp32(0x0400) == 0x1p-14f);   /* smallest normal */
    assert_true(agx_fp16_to_fp32(0x8000) == 0.0f && signbit(agx_fp16_to_fp32(0x8000)));
    assert_true(isinf(agx_fp16_to_fp32(0x7C00)) && agx_fp16_to_fp32(0x7C00) > 0);
    assert_true(isinf(agx_fp16_to_fp32(0xFC00)) && agx_fp16_to_fp32(0xFC00) < 0);
    assert_true(isnan(agx_fp16_to_fp32(0x7E00)));
    assert_true(isnan(agx_fp16_to_fp32(0x7C01)));

    assert_int_equal(agx_fp32_to_fp16(1.0f), 0x3C00);
    assert_int_equal(agx_fp32_to_fp16(-2.0f), 0xC000);
    assert_int_equal(agx_fp32_to_fp16(65504.0f), 0x7BFF);
    assert_int_equal(agx_fp32_to_fp16(65519.0f), 0x7BFF); /* below the halfway point */
    assert_int_equal(agx_fp32_to_fp16(65520.0f), 0x7C00); /* tie rounds to even = inf */
    assert_int_equal(agx_fp32_to_fp16(1e10f), 0x7C00);
    assert_int_equal(agx_fp32_to_fp16(-INFINITY), 0xFC00);
    assert_int_equal(agx_fp32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(agx_fp32_to_fp16(0x1p-25f), 0x0000);        /* tie to even -> 0 */
    assert_int_equal(agx_fp32_to_fp16(0x1.8p-24f), 0x0002);      /* 1.5 ulp tie -> 2 */
    assert_int_equal(agx_fp32_to_fp16(0x1.000002p-25f), 0x0001); /* just above the tie */
    assert_int_equal(agx_fp32_to_fp16(-0x1p-30f), 0x8000);
    assert_int_equal(agx_fp32_to_fp16(0x1.ff8p-15f), 0x03FF);    /* largest subnormal */
    assert_int_equal(agx_fp32_to_fp16(0x1.ffcp-15f), 0x0400);    /* tie rounds up into the normals */
    assert_int_equal(agx_fp32_to_fp16(0x1.ffbp-15f), 0x03FF);
    /* 1 + 2^-11 is a tie between 1 and 1+2^-10: even mantissa wins */
    assert_int_equal(agx_fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);
    assert_int_equal(agx_fp32_to_fp16(1.0f + 0x1p-10f + 0x1p-11f), 0x3C02);
    assert_int_equal(agx_fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    const uint16_t hn = agx_fp32_to_fp16(NAN);
    assert_true((hn & 0x7C00) == 0x7C00 && (hn & 0x3FF) != 0);
    /* every finite half round-trips exactly */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;
        assert_int_equal(agx_fp32_to_fp16(agx_fp16_to_fp32((uint16_t)h)), h);
    }
    /* round-to-nearest: result is never farther than the neighbour */
    for (uint32_t i = 0; i < 200000; i++) {
        const float f = u2f(0x33000000u + i * 0x5555u);
        if (f > 65504.0f) break;
        const uint16_t h = agx_fp32_to_fp16(f);
        const double e = fabs((double)agx_fp16_to_fp32(h) - f);
        assert_true(e <= fabs((double)agx_fp16_to_fp32((uint16_t)(h + 1)) - f));
        if (h & 0x7FFF) assert_true(e <= fabs((double)agx_fp16_to_fp32((uint16_t)(h - 1)) - f));
    }
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(agx_fp32_to_bf16(1.0f), 0x3F80);
    assert_true(agx_bf16_to_fp32(0x3F80) == 1.0f);
    assert_true(agx_bf16_to_fp32(0xC040) == -3.0f);
    assert_int_equal(agx_fp32_to_bf16(u2f(0x3F808000u)), 0x3F80); /* tie -> even */
    assert_int_equal(agx_fp32_to_bf16(u2f(0x3F818000u)), 0x3F82); /* tie -> even (up) */
    assert_int_equal(agx_fp32_to_bf16(u2f(0x3F808001u)), 0x3F81);
    assert_int_equal(agx_fp32_to_bf16(INFINITY), 0x7F80);
    assert_int_equal(agx_fp32_to_bf16(u2f(0x7F7FFFFFu)), 0x7F80); /* FLT_MAX rounds to inf */
    assert_int_equal(agx_fp32_to_bf16(u2f(0x00010000u)), 0x0001); /* subnormal kept */
    assert_true(isnan(agx_bf16_to_fp32(agx_fp32_to_bf16(NAN))));
    assert_true(isnan(agx_bf16_to_fp32(agx_fp32_to_bf16(u2f(0x7F800001u))))); /* payload in low bits stays nan */
    assert_int_equal(f2u(agx_bf16_to_fp32(0x8001)), 0x80010000u);
}

/* --- hand-built blocks ------------------------------------------------- */

static void deq(uint32_t t, const void *blk, float *out, int64_t n) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    assert_non_null(tr);
    tr->to_float(blk, out, n);
}

static void test_dequant_hand_blocks(void **state) {
    (void)state;
    float y[256];
    { /* q4_0: (q - 8) * d, low nibbles -> first half */
        agx_block_q4_0 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00; /* 1.0 */
        b.qs[0] = 0x9F;
        deq(AGX_TYPE_Q4_0, &b, y, 32);
        assert_true(y[0] == 7.0f && y[16] == 1.0f && y[1] == -8.0f && y[31] == -8.0f);
    }
    { /* q4_1: q * d + m */
        agx_block_q4_1 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x4000;  /* 2 */
        b.m = 0xBC00;  /* -1 */
        b.qs[1] = 0x21;
        deq(AGX_TYPE_Q4_1, &b, y, 32);
        assert_true(y[1] == 1.0f && y[17] == 3.0f && y[0] == -1.0f);
    }
    { /* q5_0: bit j of qh is the 5th bit of element j, bit j+16 of element j+16 */
        agx_block_q5_0 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        const uint32_t qh = 1u | (1u << 16) | (1u << 31);
        memcpy(b.qh, &qh, 4);
        b.qs[1] = 0x3F;
        b.qs[15] = 0x20;
        deq(AGX_TYPE_Q5_0, &b, y, 32);
        assert_true(y[0] == 0.0f && y[16] == 0.0f && y[1] == -1.0f && y[17] == -13.0f);
        assert_true(y[31] == (float)((2 | 16) - 16) && y[15] == -16.0f && y[2] == -16.0f);
    }
    { /* q5_1 */
        agx_block_q5_1 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3800; /* 0.5 */
        b.m = 0x3C00; /* 1 */
        const uint32_t qh = 1u << 20;
        memcpy(b.qh, &qh, 4);
        b.qs[4] = 0x13;
        deq(AGX_TYPE_Q5_1, &b, y, 32);
        assert_true(y[4] == 2.5f && y[20] == 0.5f * 17 + 1 && y[0] == 1.0f);
    }
    { /* q8_0 */
        agx_block_q8_0 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3800;
        b.qs[5] = -7;
        b.qs[31] = 127;
        deq(AGX_TYPE_Q8_0, &b, y, 32);
        assert_true(y[5] == -3.5f && y[31] == 63.5f && y[0] == 0.0f);
    }
    { /* q8_1 (activations): q * d; s is carried for the dot kernels only */
        agx_block_q8_1 b;
        memset(&b, 0, sizeof(b));
        b.d = 0x4000; /* 2 */
        b.s = 0x5000;
        b.qs[3] = -5;
        deq(AGX_TYPE_Q8_1, &b, y, 32);
        assert_true(y[3] == -10.0f && y[0] == 0.0f);
    }
    { /* q8_K (activations): float d, 256 int8, bsums ignored by dequantization */
        agx_block_q8_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0.25f;
        b.qs[255] = 100;
        b.qs[16] = -3;
        b.bsums[0] = 1234;
        deq(AGX_TYPE_Q8_K, &b, y, 256);
        assert_true(y[255] == 25.0f && y[16] == -0.75f && y[0] == 0.0f);
    }
    { /* q2_K: 4-bit scale | 4-bit min per 16; 4 2-bit planes per 32 bytes */
        agx_block_q2_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        b.dmin = 0x3C00;
        b.scales[0] = 0x23; /* scale 3, min 2 */
        b.scales[2] = 0x01;
        b.scales[8] = 0x15; /* second 128 half, first 16 */
        b.qs[0] = 0xE4;     /* planes: 0, 1, 2, 3 */
        b.qs[32] = 0x03;
        deq(AGX_TYPE_Q2_K, &b, y, 256);
        assert_true(y[0] == -2.0f && y[1] == -2.0f && y[32] == 1.0f);
        assert_true(y[128] == 5.0f * 3 - 1.0f && y[16] == 0.0f);
    }
    { /* q3_K: 6-bit scales biased by 32, hmask bit clear subtracts 4 */
        agx_block_q3_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        b.hmask[0] = 0x01;
        b.qs[0] = 0x03;
        b.scales[0] = 0x21; /* scale 0 low 4 bits = 1, scale 8 low 4 bits = 2 */
        b.scales[8] = 0x03; /* high 2 bits of scale 0 = 3 -> scale 0 = 1 | 48 = 49 */
        deq(AGX_TYPE_Q3_K, &b, y, 256);
        assert_true(y[0] == 17.0f * 3);   /* (49 - 32) * 3 */
        assert_true(y[1] == 17.0f * -4);  /* q 0, hmask clear */
        assert_true(y[16] == -32.0f * -4); /* scale 1 = 0 - 32 */
    }
    { /* q4_K: 8 sub-blocks of 32, 6-bit scale/min, nibble planes per 64 */
        agx_block_q4_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        b.dmin = 0x3800; /* 0.5 */
        b.scales[0] = 3 | (1 << 6); /* sc0 = 3; high bits of sc4 = 1 */
        b.scales[4] = 2;            /* m0 = 2 */
        b.scales[8] = 0x21;         /* sc4 low = 1, m4 low = 2 */
        b.qs[0] = 0x54;
        b.qs[64] = 0x02;
        deq(AGX_TYPE_Q4_K, &b, y, 256);
        assert_true(y[0] == 11.0f);         /* 3*4 - 2*0.5 */
        assert_true(y[32] == 0.0f);         /* sc1 = m1 = 0 */
        assert_true(y[128] == 17.0f * 2 - 1.0f);
        assert_true(y[129] == -1.0f);
    }
    { /* q5_K: as q4_K plus the 5th bit from qh (bit 2j for sub-block 2j) */
        agx_block_q5_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        b.dmin = 0x3C00;
        b.scales[0] = 2;
        b.scales[4] = 1;
        b.scales[1] = 1; /* sc1 */
        b.qs[0] = 0x03;
        b.qh[0] = 0x03; /* sub-block 0 and 1, element 0 */
        deq(AGX_TYPE_Q5_K, &b, y, 256);
        assert_true(y[0] == 2.0f * 19 - 1);
        assert_true(y[32] == 16.0f);
        assert_true(y[1] == -1.0f);
    }
    { /* q6_K: low 4 bits in ql, 2 high bits in qh, minus 32, int8 scale per 16 */
        agx_block_q6_K b;
        memset(&b, 0, sizeof(b));
        b.d = 0x3C00;
        b.scales[0] = 2;
        b.scales[2] = -1;
        b.scales[4] = 3;
        b.ql[0] = 0x21;
        b.qh[0] = 0x06;
        deq(AGX_TYPE_Q6_K, &b, y, 256);
        assert_true(y[0] == 2.0f);    /* (1 | 2<<4) - 32 = 1 */
        assert_true(y[32] == 16.0f);  /* (0 | 1<<4) - 32 = -16, scale -1 */
        assert_true(y[64] == -90.0f); /* 2 - 32 = -30, scale 3 */
        assert_true(y[96] == 0.0f);   /* scale 6 = 0 */
        assert_true(y[1] == -64.0f);  /* -32 * 2 */
    }
    { /* f16 / bf16 rows */
        const uint16_t h[3] = {0x3C00, 0xC000, 0x0001};
        deq(AGX_TYPE_F16, h, y, 3);
        assert_true(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0x1p-24f);
        const uint16_t b[2] = {0x3F80, 0xC040};
        deq(AGX_TYPE_BF16, b, y, 2);
        assert_true(y[0] == 1.0f && y[1] == -3.0f);
    }
}

/* --- round trips -------------------------------------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static double rnd_uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}
static float rnd_normal(void) {
    const double u = rnd_uniform() + 1e-12, v = rnd_uniform();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

/* relative RMS error of quantize -> dequantize */
static double round_trip_rel_rmse(uint32_t t, const float *x, int64_t n) {
    const agx_type_traits *tr = agx_type_traits_get(t);
    assert_non_null(tr->from_float_ref);
    void *q = malloc(agx_type_row_size(t, n));
    float *y = malloc((size_t)n * sizeof(float));
    tr->from_float_ref(x, q, n);
    tr->to_float(q, y, n);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        sx += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    return sqrt(se / sx);
}

static void test_round_trip_bounds(void **state) {
    (void)state;
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = rnd_normal() * (1.0f + (float)(i / 256 % 5)); /* varying block scale */
    /* Bounds: a few % above what these algorithms reach on gaussian data
     * (llama.cpp's own figures are similar: q4_0 ~0.1, q4_K ~0.07, q6_K ~0.02;
     * measured here: q3_K 0.151, q2_K 0.295). */
    struct {
        uint32_t t;
        double bound;
    } cases[] = {{AGX_TYPE_F32, 0.0},     {AGX_TYPE_F16, 5e-4},    {AGX_TYPE_BF16, 4e-3},
                 {AGX_TYPE_Q8_0, 0.009},  {AGX_TYPE_Q8_1, 0.009},  {AGX_TYPE_Q8_K, 0.008},
                 {AGX_TYPE_Q4_0, 0.095},  {AGX_TYPE_Q4_1, 0.088},  {AGX_TYPE_Q5_0, 0.048},
                 {AGX_TYPE_Q5_1, 0.043},  {AGX_TYPE_Q4_K, 0.080},  {AGX_TYPE_Q5_K, 0.040},
                 {AGX_TYPE_Q6_K, 0.020},  {AGX_TYPE_Q3_K, 0.170},  {AGX_TYPE_Q2_K, 0.330}};
    double err[16];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[i] = round_trip_rel_rmse(cases[i].t, x, N);
        print_message("round trip %-5s rel rmse %.5f (bound %.3f)\n", agx_type_name(cases[i].t), err[i],
                      cases[i].bound);
        assert_true(err[i] <= cases[i].bound);
    }
    /* more bits -> less error, within each family */
    assert_true(err[10] < err[6]);  /* q4_K < q4_0 */
    assert_true(err[11] < err[10]); /* q5_K < q4_K */
    assert_true(err[12] < err[11]); /* q6_K < q5_K */
    assert_true(err[8] < err[6]);   /* q5_0 < q4_0 */
    assert_true(err[13] < err[14]); /* q3_K < q2_K */
    assert_true(err[10] < err[13]); /* q4_K < q3_K */

    /* all-zero and constant blocks stay exact; huge values stay finite */
    memset(x, 0, N * sizeof(float));
    const uint32_t qt[] = {AGX_TYPE_Q4_0, AGX_TYPE_Q4_1, AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0,
                           AGX_TYPE_Q8_K, AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K, AGX_TYPE_Q2_K,
                           AGX_TYPE_Q3_K};
    float *y = malloc(N * sizeof(float));
    void *q = malloc(agx_type_row_size(AGX_TYPE_F32, N));
    for (size_t k = 0; k < sizeof(qt) / sizeof(qt[0]); k++) {
        const agx_type_traits *tr = agx_type_traits_get(qt[k]);
        for (int i = 0; i < 256; i++) x[i] = 0.0f;
        tr->from_float_ref(x, q, 256);
        tr->to_float(q, y, 256);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
        for (int i = 0; i < 256; i++) x[i] = (i & 1) ? 3e4f : -2e4f;
        tr->from_float_ref(x, q, 256);
        tr->to_float(q, y, 256);
        for (int i = 0; i < 256; i++) {
            assert_true(isfinite(y[i]));
            assert_true(fabsf(y[i] - x[i]) <= 0.15f * 3e4f);
        }
    }
    free(q);
    free(y);
    free(x);
}

/* q2_K / q3_K on values their grid holds: every sub-block spans its whole
 * level range at a power-of-two scale, so the fit is exact and the only
 * error is the fp16 rounding of d/dmin (q2_K) or none at all (q3_K). A
 * wrong scale packing or bit plane shows up as an error of a whole step. */
static void test_low_bit_k_grid(void **state) {
    (void)state;
    enum { N = 512 };
    float x[N], y[N];
    uint8_t q[2 * 110];
    const agx_type_traits *t3 = agx_type_traits_get(AGX_TYPE_Q3_K), *t2 = agx_type_traits_get(AGX_TYPE_Q2_K);
    assert_non_null(t3->from_float_ref);
    assert_non_null(t2->from_float_ref);
    /* q3_K: levels -4..3 (every residue mod 8 in each 16: 7 is odd) at scale
     * 2^-(j%3) per sub-block j; the 6-bit scales are then -32, -16, -8 */
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7 + i / 16) % 8 - 4) * ldexpf(1.0f, -(i / 16 % 3));
    t3->from_float_ref(x, q, N);
    t3->to_float(q, y, N);
    for (int i = 0; i < N; i++) assert_true(y[i] == x[i]);
    /* q2_K: levels 0..3 minus a min of 0 or 1 step; steps 1, 1/3, 1/5 so
     * that scales and mins are k/15 of the largest (their 4-bit grid) */
    for (int i = 0; i < N; i++) {
        const float step = 1.0f / (float)(1 + 2 * (i / 16 % 3));
        x[i] = (float)((i * 3 + i / 16) % 4 - (i / 32 % 2)) * step;
    }
    t2->from_float_ref(x, q, N);
    t2->to_float(q, y, N);
    for (int i = 0; i < N; i++) assert_true(fabsf(y[i] - x[i]) <= 3e-3f);
}

/* Every reference quantizer's FMA build (quant_avx2.c) gives the portable
 * build's bytes: both compile quant_ref.h, where only fmaf() may fuse. */
static void test_quantizer_builds_agree(void **state) {
    (void)state;
    enum { N = 256 * 16 };
    float *x = malloc(N * sizeof(float));
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    for (int i = 0; i < N; i++) x[i] = rnd_normal() * ldexpf(1.0f, i / 256 % 7 - 3);
    for (int i = 0; i < 16; i++) x[256 + i] = 0;                        /* a zero sub-block */
    for (int i = 512; i < 768; i++) x[i] = (float)(i % 9) - 4.0f;       /* ties */
    for (int i = 768; i < 1024; i++) x[i] = (i % 5) ? 0.0f : rnd_normal(); /* sparse */
    for (int i = 1024; i < 1280; i++) x[i] = 1e-20f * rnd_normal();      /* below GROUP_MAX_EPS */
    int compared = 0;
    for (uint32_t t = 0; t < AGX_TYPE_COUNT; t++) {
        const agx_kernel_set portable = agx_quant_kernels_for_isa(t, 0), fma = agx_quant_kernels_for_isa(t, 1);
        if (!portable.from_float_ref || !fma.from_float_ref || agx_cpu_hw_level() < 1) continue;
        const size_t rs = agx_type_row_size(t, N);
        memset(a, 0xAA, rs);
        memset(b, 0x55, rs);
        portable.from_float_ref(x, a, N);
        fma.from_float_ref(x, b, N);
        if (memcmp(a, b, rs) != 0) {
            print_error("type %s: FMA build differs from the portable build\n", agx_type_name(t));
            fail();
        }
        compared++;
    }
    print_message("portable == FMA bytes for %d quantizer(s)\n", compared);
    if (agx_cpu_hw_level() >= 1) assert_true(compared >= 12);
    free(a);
    free(b);
    free(x);
}

/* llama.cpp's x86 run-time q8_0 quantizer (ggml-cpu quantize_row_q8_0), the
 * model our activation quantizers follow: id = 127/amax, ties to even. */
static void model_act_q8_0(const float *x, agx_block_q8_0 *y, int n) {
    for (int i = 0; i < n / 32; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = agx_fp32_to_fp16(d);
        for (int j = 0; j < 32; j++) {
            const float v = x[j] * id, r = floorf(v), f = v - r;
            int q = (int)r + (f > 0.5f || (f == 0.5f && ((int)r & 1)));
            y[i].qs[j] = (int8_t)q;
        }
    }
}

/* Activation quantizers (what matmul uses) give llama.cpp's run-time bits:
 * q8_0/q8_1 as its x86 code, q8_K as its reference (with the fused rounding). */
static void test_activation_quantizers(void **state) {
    (void)state;
    enum { N = 256 * 8 };
    float x[N];
    for (int i = 0; i < N; i++) x[i] = rnd_normal() * 3;
    for (int i = 256; i < 512; i++) x[i] = 0; /* an all-zero block */
    /* x*id lands exactly on k + 0.5: ties go to even (roundf would go away from 0) */
    for (int i = 512; i < 544; i++) x[i] = (float)(i - 528) * 0.5f + 0.25f;
    x[543] = 63.5f; /* amax: id = 2 exactly */
    agx_block_q8_0 want[N / 32], got[N / 32];
    model_act_q8_0(x, want, N);
    agx_type_traits_get(AGX_TYPE_Q8_0)->from_float(x, got, N);
    assert_memory_equal(got, want, sizeof(want));
    assert_int_equal(got[16].qs[0], -16);  /* -15.5 -> -16 (even) */
    assert_int_equal(got[16].qs[1], -14);  /* -14.5 -> -14 */
    agx_block_q8_1 got1[N / 32];
    agx_type_traits_get(AGX_TYPE_Q8_1)->from_float(x, got1, N);
    for (int i = 0; i < N / 32; i++) {
        assert_memory_equal(got1[i].qs, want[i].qs, 32);
        assert_int_equal(got1[i].d, want[i].d);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += want[i].qs[j];
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * i + j]));
        assert_int_equal(got1[i].s, agx_fp32_to_fp16(amax / 127.f * (float)sum)); /* s = d * sum, d unrounded */
    }
    const agx_type_traits *tk = agx_type_traits_get(AGX_TYPE_Q8_K);
    const size_t sz = agx_type_row_size(AGX_TYPE_Q8_K, N);
    unsigned char *a = malloc(sz), *b = malloc(sz);
    tk->from_float(x, a, N);
    tk->from_float_ref(x, b, N);
    assert_memory_equal(a, b, sz);
    const agx_block_q8_K *kb = (const agx_block_q8_K *)(const void *)a;
    for (int i = 0; i < N / 256; i++)
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) sum += kb[i].qs[16 * g + j];
            assert_int_equal(kb[i].bsums[g], sum);
        }
    assert_true(kb[1].d == 0.0f); /* the all-zero block */
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_table),           cmocka_unit_test(test_fp16),
        cmocka_unit_test(test_bf16),                   cmocka_unit_test(test_dequant_hand_blocks),
        cmocka_unit_test(test_round_trip_bounds),      cmocka_unit_test(test_activation_quantizers),
        cmocka_unit_test(test_low_bit_k_grid),         cmocka_unit_test(test_quantizer_builds_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
