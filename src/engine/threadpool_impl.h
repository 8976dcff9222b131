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

#endif
