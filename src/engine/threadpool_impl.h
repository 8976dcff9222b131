/* threadpool_impl.h — engine-internal pool services: the pool-owned scratch
 * buffer that matmul reuses across calls. Not a public header. */
#ifndef AGX_ENGINE_THREADPOOL_IMPL_H
#define AGX_ENGINE_THREADPOOL_IMPL_H

#include <stddef.h>

#include "agx/threadpool.h"

/* 64-byte aligned scratch of at least size bytes, owned by the pool and reused
 * (grown, never shrunk); NULL when tp is NULL or memory runs out. Only valid
 * until the next call; one user at a time (the pool runs one job at a time). */
void *agx_threadpool_scratch(agx_threadpool *tp, size_t size);

/* Like agx_threadpool_run for jobs whose fn takes all its work from a shared
 * counter (so any subset of threads finishes the job): returns as soon as the
 * caller ran out of work and the workers that joined have left; a worker that
 * was not scheduled in time (cores shared with other processes) skips the job
 * instead of being waited for. */
void agx_threadpool_run_dynamic(agx_threadpool *tp, void (*fn)(int ith, int nth, void *arg), void *arg);

#endif
