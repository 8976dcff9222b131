/* threadpool.c — a persistent worker pool: threads are created once, wait for
 * work by spinning briefly and then sleeping on a futex, and the calling
 * thread takes part as worker 0. The pool also owns the scratch memory that
 * matmul needs (quantized activations), so no operation allocates per call. */
#include <errno.h>
#include <sched.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agx/threadpool.h"
#include "engine/threadpool_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before sleeping: long enough to bridge the gap between two
 * back-to-back operations of a forward pass, short enough not to burn a core
 * for long when idle. */
#define AGX_SPIN_ITERS 20000

#define AGX_MAX_THREADS 256

struct agx_threadpool {
    int n;
    int spin; /* spin iterations before sleeping/yielding: short when oversubscribed */
    pthread_t *threads;
    /* job */
    void (*fn)(int, int, void *);
    void *arg;
    _Atomic uint32_t gen;      /* futex word: bumped once per job */
    _Atomic int remaining;     /* workers (other than the caller) still running the job */
    _Atomic uint32_t done_gen; /* futex word: last job all workers finished */
    _Atomic int sleepers;      /* workers blocked in futex wait on gen */
    _Atomic int caller_sleeping;
    _Atomic int stop;
    /* dynamic jobs (agx_threadpool_run_dynamic): workers that arrive after the
     * caller closed the job skip it instead of being waited for */
    int dynamic;
    _Atomic uint32_t closed_gen;
    _Atomic int active;
    /* scratch owned by the pool */
    void *scratch;
    size_t scratch_cap;
};

typedef struct worker_arg {
    agx_threadpool *tp;
    int ith;
} worker_arg;

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr, int n) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    agx_threadpool *tp = wa->tp;
    const int ith = wa->ith;
    free(wa);
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < tp->spin; i++) {
            cpu_relax();
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        while (g == seen) {
            atomic_fetch_add(&tp->sleepers, 1);
            futex_wait(&tp->gen, seen); /* returns at once if gen already moved */
            atomic_fetch_sub(&tp->sleepers, 1);
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        seen = g;
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) break;
        /* Enter, then check that job g is still the open one before reading
         * its fields: the caller writes a job only while no worker is inside
         * (active == 0), and a dynamic job the caller has already closed is
         * skipped (this worker came too late to be useful). */
        atomic_fetch_add(&tp->active, 1);
        if (atomic_load(&tp->gen) != g || atomic_load(&tp->closed_gen) == g) {
            atomic_fetch_sub(&tp->active, 1);
            continue;
        }
        const int dynamic = tp->dynamic;
        tp->fn(ith, tp->n, tp->arg);
        if (!dynamic && atomic_fetch_sub_explicit(&tp->remaining, 1, memory_order_acq_rel) == 1) {
            atomic_store(&tp->done_gen, g); /* seq_cst: ordered before the load below */
            if (atomic_load(&tp->caller_sleeping)) futex_wake(&tp->done_gen, 1);
        }
        atomic_fetch_sub(&tp->active, 1);
    }
    return NULL;
}

agx_status agx_threadpool_create(int n_threads, agx_threadpool **out, agx_error *err) {
    *out = NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) n = CPU_COUNT(&set);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > AGX_MAX_THREADS)
        return agx_error_set(err, AGX_ERR_CONFIG, "thread pool: %d threads requested, at most %d supported",
                             n_threads, AGX_MAX_THREADS);
    agx_threadpool *tp = calloc(1, sizeof(*tp));
    if (!tp) return agx_error_set(err, AGX_ERR_NOMEM, "thread pool: out of memory");
    tp->n = n_threads;
    {
        /* more threads than cores: a spinning thread only steals the core the
         * one it waits for needs, so hand the core back almost at once */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) ncpu = CPU_COUNT(&set);
        tp->spin = (ncpu > 0 && n_threads > ncpu) ? 64 : AGX_SPIN_ITERS;
    }
    atomic_init(&tp->gen, 0);
    atomic_init(&tp->done_gen, 0);
    atomic_init(&tp->remaining, 0);
    atomic_init(&tp->sleepers, 0);
    atomic_init(&tp->caller_sleeping, 0);
    atomic_init(&tp->stop, 0);
    atomic_init(&tp->closed_gen, 0);
    atomic_init(&tp->active, 0);
    if (n_threads > 1) {
        tp->threads = calloc((size_t)n_threads, sizeof(pthread_t));
        if (!tp->threads) {
            free(tp);
            return agx_error_set(err, AGX_ERR_NOMEM, "thread pool: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof(*wa));
            int rc = wa ? 0 : ENOMEM;
            if (wa) {
                wa->tp = tp;
                wa->ith = i;
                rc = pthread_create(&tp->threads[i], NULL, worker_main, wa);
                if (rc) free(wa);
            }
            if (rc) {
                tp->n = i; /* stop the ones already started */
                agx_threadpool_free(tp);
                return agx_error_set(err, AGX_ERR_ENGINE, "thread pool: cannot start thread %d of %d: %s", i,
                                     n_threads, strerror(rc));
            }
        }
    }
    *out = tp;
    return AGX_OK;
}

void agx_threadpool_free(agx_threadpool *tp) {
    if (!tp) return;
    if (tp->n > 1) {
        atomic_store_explicit(&tp->stop, 1, memory_order_release);
        atomic_fetch_add_explicit(&tp->gen, 1, memory_order_acq_rel);
        futex_wake(&tp->gen, INT_MAX);
        for (int i = 1; i < tp->n; i++) pthread_join(tp->threads[i], NULL);
    }
    free(tp->threads);
    free(tp->scratch);
    free(tp);
}

int agx_threadpool_n_threads(const agx_threadpool *tp) { return tp ? tp->n : 1; }

/* Workers inside a job are running (or finishing) a work item or leaving a
 * job they skipped: spin, then yield the core in case one was preempted. */
static void wait_no_workers_inside(agx_threadpool *tp) {
    for (int i = 0; atomic_load(&tp->active) != 0; i++) {
        if (i < tp->spin) cpu_relax();
        else sched_yield();
    }
}

void agx_threadpool_run(agx_threadpool *tp, void (*fn)(int ith, int nth, void *arg), void *arg) {
    if (!tp || tp->n == 1) {
        fn(0, 1, arg);
        return;
    }
    wait_no_workers_inside(tp);
    tp->fn = fn;
    tp->arg = arg;
    tp->dynamic = 0;
    atomic_store_explicit(&tp->remaining, tp->n - 1, memory_order_relaxed);
    const uint32_t g = atomic_fetch_add(&tp->gen, 1) + 1; /* seq_cst: pairs with the sleepers count */
    if (atomic_load(&tp->sleepers) > 0) futex_wake(&tp->gen, INT_MAX);
    fn(0, tp->n, arg);
    uint32_t d = atomic_load_explicit(&tp->done_gen, memory_order_acquire);
    for (int i = 0; d != g && i < tp->spin; i++) {
        cpu_relax();
        d = atomic_load_explicit(&tp->done_gen, memory_order_acquire);
    }
    while (d != g) {
        atomic_store(&tp->caller_sleeping, 1);
        d = atomic_load(&tp->done_gen);
        if (d != g) futex_wait(&tp->done_gen, d);
        atomic_store(&tp->caller_sleeping, 0);
        d = atomic_load_explicit(&tp->done_gen, memory_order_acquire);
    }
}

void agx_threadpool_run_dynamic(agx_threadpool *tp, void (*fn)(int ith, int nth, void *arg), void *arg) {
    if (!tp || tp->n == 1) {
        fn(0, 1, arg);
        return;
    }
    wait_no_workers_inside(tp);
    tp->fn = fn;
    tp->arg = arg;
    tp->dynamic = 1;
    const uint32_t g = atomic_fetch_add(&tp->gen, 1) + 1;
    if (atomic_load(&tp->sleepers) > 0) futex_wake(&tp->gen, INT_MAX);
    fn(0, tp->n, arg);
    atomic_store(&tp->closed_gen, g); /* seq_cst: pairs with the workers' enter-then-check */
    wait_no_workers_inside(tp);
}

void *agx_threadpool_scratch(agx_threadpool *tp, size_t size) {
    if (!tp) return NULL;
    if (size <= tp->scratch_cap) return tp->scratch;
    size_t cap = tp->scratch_cap ? tp->scratch_cap : 4096;
    while (cap < size) {
        if (cap > SIZE_MAX / 2) return NULL;
        cap *= 2;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, cap)) return NULL;
    free(tp->scratch);
    tp->scratch = p;
    tp->scratch_cap = cap;
    return p;
}

agx_status agx_threadpool_reserve(agx_threadpool *tp, size_t bytes, agx_error *err) {
    if (!tp || agx_threadpool_scratch(tp, bytes)) return AGX_OK;
    return agx_error_set(err, AGX_ERR_NOMEM, "thread pool: cannot reserve %zu bytes of scratch memory", bytes);
}
