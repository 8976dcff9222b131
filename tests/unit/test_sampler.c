/* test_sampler.c — the sampler: greedy ties, the allowed-token mask, repetition
 * penalty, top-k / top-p / min-p truncation, seeded reproducibility, the drawn
 * distribution, env parsing. */
#include "agx_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agx/sampler.h"

static agx_sampler *make(float temp, int top_k, float top_p, float min_p, float rep, uint64_t seed) {
    agx_sampler_params p = agx_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = rep;
    p.seed = seed;
    agx_sampler *s = NULL;
    agx_error err;
    assert_int_equal(agx_sampler_create(&p, &s, &err), AGX_OK);
    return s;
}

static void test_defaults(void **state) {
    (void)state;
    agx_sampler_params p = agx_sampler_default_params();
    assert_true(fabsf(p.temperature - 0.7f) < 1e-6f);
    assert_true(fabsf(p.top_p - 0.9f) < 1e-6f);
    assert_true(fabsf(p.repeat_penalty - 1.1f) < 1e-6f);
}

static void test_greedy_ties_lowest(void **state) {
    (void)state;
    agx_sampler *s = make(0, 0, 1, 0, 1, 1);
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, 2.0f};
    assert_int_equal(agx_sampler_sample(s, l, 6, NULL), 1);
    l[1] = 1.0f;
    assert_int_equal(agx_sampler_sample(s, l, 6, NULL), 3);
    assert_int_equal(agx_sampler_sample(s, l, 0, NULL), -1);
    agx_sampler_free(s);
}

static void test_mask(void **state) {
    (void)state;
    agx_sampler *s = make(0, 0, 1, 0, 1, 1);
    float l[5] = {1, 5, 3, 4, 2};
    uint8_t allow[5] = {1, 0, 1, 0, 1};
    assert_int_equal(agx_sampler_sample(s, l, 5, allow), 2);
    memset(allow, 0, sizeof allow);
    assert_int_equal(agx_sampler_sample(s, l, 5, allow), -1);
    agx_sampler_free(s);
    /* sampled mode never returns a masked token (top-p path too) */
    s = make(1.5f, 0, 0.95f, 0, 1, 7);
    uint8_t allow2[5] = {0, 1, 0, 0, 1};
    for (int i = 0; i < 500; i++) {
        int32_t id = agx_sampler_sample(s, l, 5, allow2);
        assert_true(id == 1 || id == 4);
    }
    agx_sampler_free(s);
}

static void test_repeat_penalty(void **state) {
    (void)state;
    agx_sampler *s = make(0, 0, 1, 0, 2.0f, 1);
    float l[4] = {3.0f, 2.0f, -1.0f, -0.6f};
    assert_int_equal(agx_sampler_sample(s, l, 4, NULL), 0);
    agx_sampler_accept(s, 0);   /* 3.0 -> 1.5 < 2.0 */
    assert_int_equal(agx_sampler_sample(s, l, 4, NULL), 1);
    agx_sampler_accept(s, 1);   /* 2.0 -> 1.0 < 1.5 */
    agx_sampler_accept(s, 1);   /* repeated in history: still penalized once */
    assert_int_equal(agx_sampler_sample(s, l, 4, NULL), 0);
    agx_sampler_free(s);
    /* negative logits are multiplied: -0.6 -> -1.2 < -1.0 */
    s = make(0, 0, 1, 0, 2.0f, 1);
    float n[2] = {-1.0f, -0.6f};
    assert_int_equal(agx_sampler_sample(s, n, 2, NULL), 1);
    agx_sampler_accept(s, 1);
    assert_int_equal(agx_sampler_sample(s, n, 2, NULL), 0);
    agx_sampler_reset(s);   /* history forgotten */
    assert_int_equal(agx_sampler_sample(s, n, 2, NULL), 1);
    agx_sampler_free(s);
}

static void draw(agx_sampler *s, const float *l, int n, int draws, int *counts) {
    memset(counts, 0, sizeof(int) * (size_t)n);
    for (int i = 0; i < draws; i++) {
        int32_t id = agx_sampler_sample(s, l, n, NULL);
        assert_true(id >= 0 && id < n);
        counts[id]++;
    }
}

static void test_distribution_and_truncation(void **state) {
    (void)state;
    /* probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 */
    const float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int c[4];
    agx_sampler *s = make(1.0f, 0, 1.0f, 0, 1, 123);
    draw(s, l, 4, 20000, c);
    const double want[4] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; i++) assert_true(fabs(c[i] / 20000.0 - want[i]) < 0.015);
    agx_sampler_free(s);

    s = make(1.0f, 0, 0.7f, 0, 1, 5);   /* top-p 0.7 keeps {0, 1} */
    draw(s, l, 4, 8000, c);
    assert_int_equal(c[2] + c[3], 0);
    assert_true(fabs(c[0] / 8000.0 - 0.5 / 0.8) < 0.03);
    agx_sampler_free(s);

    s = make(1.0f, 0, 1.0f, 0.5f, 1, 5);   /* min-p 0.5: p >= 0.25 -> {0, 1} */
    draw(s, l, 4, 4000, c);
    assert_int_equal(c[2] + c[3], 0);
    assert_true(c[1] > 0);
    agx_sampler_free(s);

    s = make(1.0f, 1, 1.0f, 0, 1, 5);   /* top-k 1 == greedy */
    draw(s, l, 4, 500, c);
    assert_int_equal(c[0], 500);
    agx_sampler_free(s);

    s = make(1.0f, 3, 1.0f, 0, 1, 5);   /* top-k 3 drops token 3 */
    draw(s, l, 4, 4000, c);
    assert_int_equal(c[3], 0);
    assert_true(c[2] > 0);
    agx_sampler_free(s);

    /* low temperature sharpens: token 0 dominates */
    s = make(0.1f, 0, 1.0f, 0, 1, 5);
    draw(s, l, 4, 2000, c);
    assert_true(c[0] > 1950 && c[3] == 0);
    agx_sampler_free(s);
}

static void test_large_flat_vocab_top_p(void **state) {
    (void)state;
    /* 151936 equal logits: top-p 0.9 must keep exactly the lowest ~90% ids
     * (ties ordered by id), which needs far more than the first sorted slice. */
    const int n = 151936;
    float *l = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) l[i] = 1.0f;
    agx_sampler *s = make(0.8f, 0, 0.9f, 0, 1, 99);
    int32_t maxid = 0;
    for (int i = 0; i < 50; i++) {
        int32_t id = agx_sampler_sample(s, l, n, NULL);
        assert_true(id >= 0 && id <= (int32_t)(0.9 * n) + 1);
        if (id > maxid) maxid = id;
    }
    assert_true(maxid > 256);   /* really drew from beyond the first slice */
    agx_sampler_free(s);
    free(l);
}

static int cmp_desc(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* top-p without a full sort keeps exactly the set a full sort keeps */
static void test_top_p_matches_sorted_reference(void **state) {
    (void)state;
    const int n = 3000;
    float *l = malloc(sizeof(float) * n);
    double *p = malloc(sizeof(double) * n), *sorted = malloc(sizeof(double) * n);
    uint64_t r = 12345;
    for (int i = 0; i < n; i++) {   /* a wide, lumpy distribution */
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 8.0 - 4.0);
        if (i % 97 == 0) l[i] += 1.5f;
    }
    double mx = -1e30, sum = 0;
    for (int i = 0; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    for (int i = 0; i < n; i++) sum += (p[i] = exp(l[i] - mx));
    for (int i = 0; i < n; i++) sorted[i] = (p[i] /= sum);
    qsort(sorted, (size_t)n, sizeof(double), cmp_desc);
    double cum = 0, thr = 0;
    int k = 0;
    while (k < n && cum < 0.6) cum += sorted[k], thr = sorted[k], k++;
    /* the reference keeps the k most probable: every p >= thr */
    agx_sampler *s = make(1.0f, 0, 0.6f, 0, 1, 77);
    int *hits = calloc((size_t)n, sizeof(int));
    for (int d = 0; d < 30000; d++) {
        int32_t id = agx_sampler_sample(s, l, n, NULL);
        assert_true(id >= 0 && id < n);
        if (p[id] < thr * (1 - 1e-6)) fail_msg("token %d (p %g) is outside the top-p set (threshold %g)", id, p[id], thr);
        hits[id]++;
    }
    int distinct = 0;
    for (int i = 0; i < n; i++) distinct += hits[i] > 0;
    if (!(k > 50 && distinct >= k * 9 / 10)) fail_msg("k %d distinct %d", k, distinct);
    agx_sampler_free(s);
    free(hits), free(l), free(p), free(sorted);
}

static void test_seed_reproducible(void **state) {
    (void)state;
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)(i % 7) * 0.3f;
    agx_sampler *a = make(1.0f, 0, 0.95f, 0, 1.1f, 42), *b = make(1.0f, 0, 0.95f, 0, 1.1f, 42);
    agx_sampler *c = make(1.0f, 0, 0.95f, 0, 1.1f, 43);
    int diff = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = agx_sampler_sample(a, l, 50, NULL), y = agx_sampler_sample(b, l, 50, NULL);
        int32_t z = agx_sampler_sample(c, l, 50, NULL);
        assert_int_equal(x, y);
        diff += x != z;
        agx_sampler_accept(a, x);
        agx_sampler_accept(b, y);
        agx_sampler_accept(c, z);
    }
    assert_true(diff > 20);
    assert_int_equal(agx_sampler_seed(a), 42);
    /* reset replays the same sequence */
    agx_sampler_reset(a);
    agx_sampler_reset(b);
    for (int i = 0; i < 50; i++) assert_int_equal(agx_sampler_sample(a, l, 50, NULL), agx_sampler_sample(b, l, 50, NULL));
    agx_sampler_free(a);
    agx_sampler_free(b);
    agx_sampler_free(c);
}

static void test_env_and_invalid(void **state) {
    (void)state;
    agx_error err;
    agx_sampler_params p;
    setenv("AGX_CANDLE_TEMPERATURE", "0.25", 1);
    setenv("AGX_CANDLE_TOP_P", "0.5", 1);
    setenv("AGX_CANDLE_SEED", "77", 1);
    assert_int_equal(agx_sampler_params_from_env(&p, &err), AGX_OK);
    assert_true(fabsf(p.temperature - 0.25f) < 1e-6f && fabsf(p.top_p - 0.5f) < 1e-6f && p.seed == 77);
    setenv("AGX_CANDLE_TEMPERATURE", "hot", 1);
    assert_int_equal(agx_sampler_params_from_env(&p, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_CANDLE_TEMPERATURE"));
    setenv("AGX_CANDLE_TEMPERATURE", "0.7", 1);
    setenv("AGX_CANDLE_TOP_P", "1.5", 1);
    assert_int_equal(agx_sampler_params_from_env(&p, &err), AGX_ERR_CONFIG);
    unsetenv("AGX_CANDLE_TEMPERATURE");
    unsetenv("AGX_CANDLE_TOP_P");
    unsetenv("AGX_CANDLE_SEED");
    p = agx_sampler_default_params();
    p.top_p = 0;
    agx_sampler *s = NULL;
    assert_int_equal(agx_sampler_create(&p, &s, &err), AGX_ERR_CONFIG);
    assert_null(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_greedy_ties_lowest),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_distribution_and_truncation),
        cmocka_unit_test(test_large_flat_vocab_top_p),
        cmocka_unit_test(test_top_p_matches_sorted_reference),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_env_and_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
