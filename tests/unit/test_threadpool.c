/* test_threadpool.c — the persistent pool: every index covered exactly once
 * per run, under many runs, several thread counts, pools used one after the
 * other and side by side, and the caller taking part as worker 0. */
#include "agx_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agx/threadpool.h"
#include "engine/threadpool_impl.h"

typedef struct cover_job {
    int n_items;
    _Atomic int *hits;
    _Atomic int next;
    _Atomic int calls;
    _Atomic int seen_ith_mask;
    _Atomic int nth_seen;
    pthread_t caller;
    _Atomic int caller_was_0;
} cover_job;

static void cover_fn(int ith, int nth, void *arg) {
    cover_job *j = arg;
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_or(&j->seen_ith_mask, 1 << ith);
    atomic_store(&j->nth_seen, nth);
    if (ith == 0 && pthread_equal(pthread_self(), j->caller)) atomic_store(&j->caller_was_0, 1);
    /* static split for half of the items, dynamic for the rest */
    const int half = j->n_items / 2;
    for (int i = ith; i < half; i += nth) atomic_fetch_add(&j->hits[i], 1);
    for (;;) {
        const int i = atomic_fetch_add(&j->next, 1) + half;
        if (i >= j->n_items) break;
        atomic_fetch_add(&j->hits[i], 1);
    }
}

static void run_cover(agx_threadpool *tp, int n_items) {
    cover_job j;
    memset(&j, 0, sizeof(j));
    j.n_items = n_items;
    j.hits = calloc((size_t)n_items, sizeof(*j.hits));
    j.caller = pthread_self();
    agx_threadpool_run(tp, cover_fn, &j);
    const int nth = agx_threadpool_n_threads(tp);
    assert_int_equal(atomic_load(&j.calls), nth);
    assert_int_equal(atomic_load(&j.nth_seen), nth);
    assert_int_equal(atomic_load(&j.seen_ith_mask), (1 << nth) - 1);
    assert_int_equal(atomic_load(&j.caller_was_0), 1);
    for (int i = 0; i < n_items; i++) assert_int_equal(atomic_load(&j.hits[i]), 1);
    free(j.hits);
}

static void test_cover_many_runs(void **state) {
    (void)state;
    for (int nt = 1; nt <= 4; nt++) {
        agx_threadpool *tp = NULL;
        agx_error err = {0};
        assert_int_equal(agx_threadpool_create(nt, &tp, &err), AGX_OK);
        assert_int_equal(agx_threadpool_n_threads(tp), nt);
        for (int r = 0; r < (nt <= 2 ? 1000 : 100); r++) run_cover(tp, 1 + (r * 37) % 300);
        agx_threadpool_free(tp);
    }
}

static void sleepy_fn(int ith, int nth, void *arg) {
    (void)nth;
    _Atomic int *sum = arg;
    atomic_fetch_add(sum, ith + 1);
}

/* Runs spaced out enough that the workers fall asleep on the futex between them. */
static void test_wake_after_sleep(void **state) {
    (void)state;
    agx_threadpool *tp = NULL;
    assert_int_equal(agx_threadpool_create(3, &tp, NULL), AGX_OK);
    for (int r = 0; r < 5; r++) {
        _Atomic int sum = 0;
        agx_threadpool_run(tp, sleepy_fn, &sum);
        assert_int_equal(atomic_load(&sum), 1 + 2 + 3);
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    agx_threadpool_free(tp);
}

static void test_default_and_limits(void **state) {
    (void)state;
    agx_threadpool *tp = NULL;
    agx_error err = {0};
    assert_int_equal(agx_threadpool_create(0, &tp, &err), AGX_OK);
    assert_true(agx_threadpool_n_threads(tp) >= 1);
    run_cover(tp, 100);
    agx_threadpool_free(tp);
    assert_int_not_equal(agx_threadpool_create(100000, &tp, &err), AGX_OK);
    assert_null(tp);
    assert_non_null(strstr(err.message, "threads"));
    agx_threadpool_free(NULL);
    assert_int_equal(agx_threadpool_n_threads(NULL), 1);
    /* a NULL pool runs the job inline */
    _Atomic int sum = 0;
    agx_threadpool_run(NULL, sleepy_fn, &sum);
    assert_int_equal(atomic_load(&sum), 1);
    assert_int_equal(agx_threadpool_reserve(NULL, 1 << 20, &err), AGX_OK);
}

/* Two pools driven from two threads at once: separate contexts do not interfere. */
static void *pool_user(void *arg) {
    agx_threadpool *tp = arg;
    for (int r = 0; r < 500; r++) run_cover(tp, 50 + r % 7);
    return NULL;
}

static void test_pools_side_by_side(void **state) {
    (void)state;
    agx_threadpool *a = NULL, *b = NULL;
    assert_int_equal(agx_threadpool_create(2, &a, NULL), AGX_OK);
    assert_int_equal(agx_threadpool_create(3, &b, NULL), AGX_OK);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, pool_user, a);
    pthread_create(&tb, NULL, pool_user, b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    agx_threadpool_free(a);
    agx_threadpool_free(b);
}

/* Create/free repeatedly (threads must be joined, nothing leaks under ASan). */
static void test_create_free_cycles(void **state) {
    (void)state;
    for (int i = 0; i < 50; i++) {
        agx_threadpool *tp = NULL;
        assert_int_equal(agx_threadpool_create(1 + i % 3, &tp, NULL), AGX_OK);
        if (i % 2) run_cover(tp, 10);
        assert_int_equal(agx_threadpool_reserve(tp, (size_t)(i + 1) * 1000, NULL), AGX_OK);
        agx_threadpool_free(tp);
    }
}

typedef struct dyn_job {
    int n_items;
    _Atomic int next;
    _Atomic int *hits;
    _Atomic int calls;
} dyn_job;

static void dyn_fn(int ith, int nth, void *arg) {
    (void)ith;
    (void)nth;
    dyn_job *j = arg;
    atomic_fetch_add(&j->calls, 1);
    for (;;) {
        const int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n_items) break;
        atomic_fetch_add(&j->hits[i], 1);
    }
}

/* Dynamic jobs (late workers may skip) mixed with ordinary ones: every item
 * done exactly once, the job struct (on the stack) never touched after return. */
static void test_dynamic_runs(void **state) {
    (void)state;
    for (int nt = 1; nt <= 4; nt++) {
        agx_threadpool *tp = NULL;
        assert_int_equal(agx_threadpool_create(nt, &tp, NULL), AGX_OK);
        for (int r = 0; r < (nt <= 2 ? 1500 : 100); r++) {
            dyn_job j;
            memset(&j, 0, sizeof(j));
            j.n_items = 1 + (r * 13) % 97;
            j.hits = calloc((size_t)j.n_items, sizeof(*j.hits));
            agx_threadpool_run_dynamic(tp, dyn_fn, &j);
            assert_true(atomic_load(&j.calls) >= 1 && atomic_load(&j.calls) <= nt);
            for (int i = 0; i < j.n_items; i++) assert_int_equal(atomic_load(&j.hits[i]), 1);
            memset(&j, 0xAB, sizeof(j.n_items)); /* a late worker reading this would misbehave */
            free(j.hits);
            if (r % 7 == 0) run_cover(tp, 20 + r % 50);
        }
        agx_threadpool_free(tp);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cover_many_runs),     cmocka_unit_test(test_wake_after_sleep),
        cmocka_unit_test(test_default_and_limits),  cmocka_unit_test(test_pools_side_by_side),
        cmocka_unit_test(test_create_free_cycles),  cmocka_unit_test(test_dynamic_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
