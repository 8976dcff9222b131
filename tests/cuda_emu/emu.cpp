/* emu.cpp — the agx CUDA emulator's runtime (see include/cuda_runtime.h and
 * README.md): fibers for CUDA threads with __syncthreads / warp-shuffle
 * barriers and deadlock detection, device-memory bookkeeping with the checks
 * the CUDA runtime makes (and a few it cannot: copies whose direction does not
 * match the pointers), page-locked host memory, in-order streams whose
 * host-to-device copies from page-locked memory are deferred until something
 * waits for them (as a GPU's DMA runs after the call returns), events, graph
 * capture and replay, and the cuBLAS GEMMs. One emulated device;
 * "AGX_CUDA_EMU_DEVICES=0" hides it. */
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#error "the agx CUDA emulator switches fibers with x86-64 code"
#endif

/* Saves the callee-saved registers on the current stack, stores its stack
 * pointer in *save and resumes the fiber whose stack pointer is to. */
extern "C" void agx_emu_switch(void **save, void *to);
asm(".text\n"
    ".globl agx_emu_switch\n"
    ".hidden agx_emu_switch\n"
    ".type agx_emu_switch,@function\n"
    "agx_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size agx_emu_switch,.-agx_emu_switch\n");

namespace agx_emu {
namespace {

enum { MAX_THREADS = 1024, STACK_BYTES = 128 * 1024 };

struct Barrier {
    int expected = 0, arrived = 0;
    uint64_t gen = 0;
};

/* The order threads (between two barriers) and blocks run in: a GPU gives no
 * order, so code that is right only in one (a shared-memory read without the
 * __syncthreads that orders it after another thread's write, a block reading
 * what another block of the launch writes) passes in the default order and
 * fails in another. AGX_CUDA_EMU_ORDER=forward (default) | reverse | random
 * (a new permutation per scheduling round and grid, from AGX_CUDA_EMU_SEED). */
enum class RunOrder { forward, reverse, random };

struct Fiber {
    void *sp = nullptr;
    uint3 tid = {0, 0, 0};
    int lane = 0, warp = 0;
    bool done = false;
    Barrier *wait = nullptr;   /* barrier this fiber waits at */
    uint64_t wait_gen = 0;
    const char *wait_what = "";
};

struct Warp {
    Barrier bar;
    uint64_t slot[32];
};

/* State of the launch being run (one host thread runs kernels at a time: the
 * emulated device is serialised by g_device_mutex). */
struct Launch {
    const char *kernel = "", *caller = "";
    std::function<void()> *body = nullptr;
    dim3 grid, block;
    uint3 block_idx = {0, 0, 0};
    int n_threads = 0;
    Fiber fibers[MAX_THREADS];
    Warp warps[MAX_THREADS / 32];
    Barrier block_bar;
    Fiber *cur = nullptr;
    void *sched_sp = nullptr;
    uint8_t *stacks = nullptr;
    bool failed = false;
    RunOrder order = RunOrder::forward;
    uint64_t rng = 0;
    int thread_order[MAX_THREADS];
};

std::recursive_mutex g_device_mutex;
Launch *g_launch = nullptr;          /* the launch running now (under g_device_mutex) */
thread_local cudaError_t t_last_error = cudaSuccess;
cudaError_t g_sticky = cudaSuccess;  /* a kernel fault poisons the emulated context, as on a GPU */

/* device memory: base -> size */
std::map<uintptr_t, size_t> g_allocs;
size_t g_alloc_bytes = 0;
/* Device memory: 16 GiB, or AGX_CUDA_EMU_MEM_MB (tests of out-of-memory paths). */
size_t emu_mem_total() {
    const char *e = getenv("AGX_CUDA_EMU_MEM_MB");
    const long long mb = e ? atoll(e) : 0;
    return mb > 0 ? (size_t)mb << 20 : (size_t)16 << 30;
}

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) t_last_error = e;
    return e;
}

void yield_to_scheduler() { agx_emu_switch(&g_launch->cur->sp, g_launch->sched_sp); }

void wait_at(Barrier &b, const char *what) {
    Fiber *f = g_launch->cur;
    if (++b.arrived == b.expected) {
        b.arrived = 0;
        b.gen++;
        return;
    }
    f->wait = &b;
    f->wait_gen = b.gen;
    f->wait_what = what;
    while (b.gen == f->wait_gen) yield_to_scheduler();
    f->wait = nullptr;
}

extern "C" void fiber_entry() {
    Launch *L = g_launch;
    (*L->body)();
    L->cur->done = true;
    agx_emu_switch(&L->cur->sp, L->sched_sp);
    abort(); /* a finished fiber is never resumed */
}

void fiber_init(Launch *L, int i) {
    uintptr_t *sp = (uintptr_t *)(L->stacks + (size_t)(i + 1) * STACK_BYTES);
    *--sp = 0;                            /* fiber_entry's return address (never used) */
    *--sp = (uintptr_t)&fiber_entry;      /* where agx_emu_switch's ret lands */
    for (int r = 0; r < 6; r++) *--sp = 0; /* rbp rbx r12..r15 */
    L->fibers[i].sp = sp;
}

/* (AGX_CUDA_EMU_ORDER, above) */
RunOrder run_order() {
    const char *e = getenv("AGX_CUDA_EMU_ORDER");
    if (e && !strcmp(e, "reverse")) return RunOrder::reverse;
    if (e && !strcmp(e, "random")) return RunOrder::random;
    if (e && *e && strcmp(e, "forward")) {
        fprintf(stderr, "agx CUDA emulator: AGX_CUDA_EMU_ORDER=%s is not forward|reverse|random\n", e);
        abort();
    }
    return RunOrder::forward;
}

/* order[0..n) = a permutation of 0..n-1 in the given order; rng: splitmix64 state. */
void make_order(RunOrder how, int *order, int n, uint64_t *rng) {
    for (int i = 0; i < n; i++) order[i] = how == RunOrder::reverse ? n - 1 - i : i;
    if (how != RunOrder::random) return;
    for (int i = n - 1; i > 0; i--) {
        uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        const int j = (int)(z % (uint64_t)(i + 1));
        const int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Runs every thread of the current block to its end. */
bool run_block(Launch *L) {
    const int n = L->n_threads;
    for (int i = 0; i < n; i++) {
        Fiber &f = L->fibers[i];
        f.done = false;
        f.wait = nullptr;
        f.lane = i & 31;
        f.warp = i >> 5;
        f.tid = {(unsigned)(i % L->block.x), (unsigned)(i / L->block.x % L->block.y),
                 (unsigned)(i / (L->block.x * L->block.y))};
        fiber_init(L, i);
    }
    for (int w = 0; w < (n + 31) / 32; w++) {
        L->warps[w].bar = Barrier();
        L->warps[w].bar.expected = n - 32 * w < 32 ? n - 32 * w : 32;
    }
    L->block_bar = Barrier();
    L->block_bar.expected = n;
    make_order(L->order, L->thread_order, n, &L->rng);
    for (;;) {
        int live = 0;
        bool ran = false;
        for (int k = 0; k < n; k++) {
            Fiber &f = L->fibers[L->thread_order[k]];
            if (f.done) continue;
            live++;
            if (f.wait && f.wait->gen == f.wait_gen) continue;
            L->cur = &f;
            agx_emu_switch(&L->sched_sp, f.sp);
            ran = true;
        }
        if (!live) return true;
        if (L->order == RunOrder::random) make_order(L->order, L->thread_order, n, &L->rng);
        if (!ran) {
            int waiting = 0, finished = 0;
            const char *what = "";
            for (int i = 0; i < n; i++) {
                if (L->fibers[i].done) finished++;
                else waiting++, what = L->fibers[i].wait_what;
            }
            fprintf(stderr,
                    "agx CUDA emulator: kernel %s (launched by %s) deadlocked in block (%u,%u,%u): %d thread(s) "
                    "wait at %s, %d finished without reaching it\n",
                    L->kernel, L->caller, L->block_idx.x, L->block_idx.y, L->block_idx.z, waiting, what, finished);
            return false;
        }
    }
}

uint8_t *thread_stacks() {
    static uint8_t *stacks = nullptr; /* one pool, reused by every launch (under g_device_mutex) */
    if (!stacks) {
        void *p = mmap(nullptr, (size_t)MAX_THREADS * STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return nullptr;
        stacks = (uint8_t *)p;
    }
    return stacks;
}

void run_launch(const char *kernel, const char *caller, dim3 grid, dim3 block, std::function<void()> &body) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (g_sticky != cudaSuccess) {
        set_error(g_sticky);
        return;
    }
    static Launch L; /* big (fibers, warps); one launch at a time under the mutex */
    L.kernel = kernel;
    L.caller = caller;
    L.body = &body;
    L.grid = grid;
    L.block = block;
    L.n_threads = (int)(block.x * block.y * block.z);
    L.stacks = thread_stacks();
    if (!L.stacks) {
        set_error(cudaErrorMemoryAllocation);
        return;
    }
    g_launch = &L;
    L.order = run_order();
    if (L.order == RunOrder::random && L.rng == 0) {
        const char *seed = getenv("AGX_CUDA_EMU_SEED");
        L.rng = seed && *seed ? strtoull(seed, nullptr, 10) : 1;
    }
    /* blocks in the same order as threads; a random grid order needs a list */
    const size_t n_blocks = (size_t)grid.x * grid.y * grid.z;
    std::vector<int> block_order;
    if (L.order == RunOrder::random) {
        block_order.resize(n_blocks);
        make_order(RunOrder::random, block_order.data(), (int)n_blocks, &L.rng);
    }
    for (size_t k = 0; k < n_blocks; k++) {
        const size_t b = L.order == RunOrder::reverse ? n_blocks - 1 - k
                         : L.order == RunOrder::random ? (size_t)block_order[k]
                                                       : k;
        L.block_idx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                       (unsigned)(b / ((size_t)grid.x * grid.y))};
        if (!run_block(&L)) {
            g_sticky = cudaErrorLaunchFailure;
            set_error(g_sticky);
            g_launch = nullptr;
            return;
        }
    }
    g_launch = nullptr;
}

struct Op {
    std::function<void()> fn;
};

} // namespace

const uint3 &thread_idx() { return g_launch->cur->tid; }
const uint3 &block_idx() { return g_launch->block_idx; }
const dim3 &block_dim() { return g_launch->block; }
const dim3 &grid_dim() { return g_launch->grid; }
int lane_id() { return g_launch->cur->lane; }
void syncthreads() { wait_at(g_launch->block_bar, "__syncthreads()"); }
uint64_t warp_exchange(uint64_t mine, int src) {
    Fiber *f = g_launch->cur;
    Warp &w = g_launch->warps[f->warp];
    w.slot[f->lane] = mine;
    wait_at(w.bar, "a warp shuffle");
    const int lanes = w.bar.expected;
    const uint64_t v = src >= 0 && src < lanes ? w.slot[src] : mine;
    wait_at(w.bar, "a warp shuffle");   /* nobody overwrites a slot before every lane has read */
    return v;
}

bool is_device(const void *p, size_t n) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    const uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return false;
    --it;
    return a >= it->first && a - it->first <= it->second && n <= it->second - (a - it->first);
}

} // namespace agx_emu

/* ---- streams, events and graphs ---- */
struct agx_emu_stream {
    bool capturing = false, invalidated = false;
    bool non_blocking = false;   /* cudaStreamNonBlocking: no implicit sync with the legacy stream */
    std::vector<std::function<void()>> captured;
    /* Copies from page-locked memory issued but not yet performed (the DMA has
     * not reached them), each with its sequence number; run in order. */
    std::deque<std::pair<uint64_t, std::function<void()>>> pending;
    uint64_t issued = 0, done = 0;   /* sequence of the last queued op, of the last one performed */
};
/* An event is complete when its stream has performed every op queued before
 * the record (seq); never recorded (stream nullptr) counts as complete. */
struct agx_emu_event {
    agx_emu_stream *stream = nullptr;
    uint64_t seq = 0;
    bool timing = true;    /* not cudaEventDisableTiming */
    double t_ms = -1;      /* host time at which it completed (-1: not yet, or never recorded) */
};
struct agx_emu_graph {
    std::vector<std::function<void()>> ops;
};
struct agx_emu_graph_exec {
    std::vector<std::function<void()>> ops;
};

namespace agx_emu {
namespace {
/* All under g_device_mutex. */
agx_emu_stream g_legacy;                 /* stream 0, the legacy default stream */
std::set<agx_emu_stream *> g_streams;    /* created and not destroyed */
std::set<agx_emu_event *> g_events;
std::map<uintptr_t, size_t> g_pinned;    /* page-locked host memory: base -> size */

agx_emu_stream *stream_of(cudaStream_t s) { return s ? s : &g_legacy; }

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
bool event_complete(const agx_emu_event *e) { return !e->stream || e->stream->done >= e->seq; }
/* The events of s that its performed ops completed get their time (cudaEventElapsedTime). */
void stamp_events(agx_emu_stream *s) {
    for (agx_emu_event *e : g_events)
        if (e->stream == s && e->t_ms < 0 && event_complete(e)) e->t_ms = now_ms();
}

/* Performs s's queued ops with sequence <= upto, in order. */
void flush(agx_emu_stream *s, uint64_t upto = UINT64_MAX) {
    bool any = false;
    while (!s->pending.empty() && s->pending.front().first <= upto) {
        auto op = std::move(s->pending.front());
        s->pending.pop_front();
        op.second();
        s->done = op.first;
        any = true;
    }
    if (any) stamp_events(s);
}
void flush_all() {
    flush(&g_legacy);
    for (agx_emu_stream *o : g_streams) flush(o);
}
/* The legacy stream's implicit synchronisation: an op on it waits for the work
 * of every blocking stream, an op on a blocking stream for the legacy stream's. */
void implicit_sync(agx_emu_stream *s) {
    if (s == &g_legacy) {
        for (agx_emu_stream *o : g_streams)
            if (!o->non_blocking) flush(o);
    } else if (!s->non_blocking) {
        flush(&g_legacy);
    }
}
/* Before an op that runs at once on s: whatever precedes it on the GPU has run. */
void before_op(agx_emu_stream *s) {
    implicit_sync(s);
    flush(s);
}
/* 1: [p, p+n) lies inside one page-locked allocation; -1: it starts in one and
 * runs past its end; 0: p is not page-locked. */
int pinned_range(const void *p, size_t n) {
    const uintptr_t a = (uintptr_t)p;
    auto it = g_pinned.upper_bound(a);
    if (it == g_pinned.begin()) return 0;
    --it;
    if (a - it->first >= (it->second ? it->second : 1)) return 0;
    return n <= it->second - (a - it->first) ? 1 : -1;
}
bool valid_event(cudaEvent_t e) { return e && g_events.count(e); }
} // namespace

void launch(const char *kernel, const char *caller, dim3 grid, dim3 block, cudaStream_t s,
            std::function<void()> body) {
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (!threads || threads > MAX_THREADS || block.z > 64 || !grid.x || !grid.y || !grid.z || grid.y > 65535 ||
        grid.z > 65535 || grid.x > 0x7fffffffu) {
        fprintf(stderr,
                "agx CUDA emulator: kernel %s (launched by %s): invalid launch configuration grid (%u,%u,%u) block "
                "(%u,%u,%u)\n",
                kernel, caller, grid.x, grid.y, grid.z, block.x, block.y, block.z);
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (s && s->capturing) {
        s->captured.push_back(
            [kernel, caller, grid, block, body]() mutable { run_launch(kernel, caller, grid, block, body); });
        return;
    }
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    before_op(stream_of(s));
    run_launch(kernel, caller, grid, block, body);
}
cudaError_t on_stream(cudaStream_t s, std::function<void()> fn) {
    if (s && s->capturing) s->captured.push_back(fn);
    else {
        std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
        before_op(stream_of(s));
        fn();
    }
    return cudaSuccess;
}
} // namespace agx_emu

using namespace agx_emu;

static bool emu_visible() {
    const char *e = getenv("AGX_CUDA_EMU_DEVICES");
    return !(e && !strcmp(e, "0"));
}

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 0;
    if (!emu_visible()) return set_error(cudaErrorNoDevice);
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device) {
    if (!emu_visible() || device != 0) return set_error(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "agx CUDA emulator (CPU)");
    p->totalGlobalMem = emu_mem_total();
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 1;
    p->warpSize = 32;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
    if (!emu_visible() || device != 0) return set_error(cudaErrorInvalidDevice);
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    *tot = emu_mem_total();
    *fr = *tot > g_alloc_bytes ? *tot - g_alloc_bytes : 0;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    flush_all();
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    const cudaError_t e = t_last_error;
    t_last_error = g_sticky;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last_error; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    }
    return "unknown error";
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    *p = nullptr;
    if (g_sticky) return set_error(g_sticky);
    if (g_alloc_bytes > emu_mem_total() || bytes > emu_mem_total() - g_alloc_bytes)
        return set_error(cudaErrorMemoryAllocation);
    /* cudaMalloc's 256-byte alignment, heap-backed and exactly `bytes` long, so that an
     * ASan build (-DAGX_SANITIZE=ON) reports any kernel access past the end */
    void *q = nullptr;
    if (posix_memalign(&q, 256, bytes ? bytes : 1)) return set_error(cudaErrorMemoryAllocation);
    g_allocs[(uintptr_t)q] = bytes;
    g_alloc_bytes += bytes;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!p) return cudaSuccess;
    flush_all();   /* cudaFree synchronises the device: no queued copy may land in freed memory */
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end()) {
        fprintf(stderr, "agx CUDA emulator: cudaFree(%p) of memory cudaMalloc did not return%s\n", p,
                g_pinned.count((uintptr_t)p) ? " (page-locked memory: cudaFreeHost)" : "");
        return set_error(cudaErrorInvalidValue);
    }
    g_alloc_bytes -= it->second;
    g_allocs.erase(it);
    free(p);
    return cudaSuccess;
}

/* Page-locked host memory: page-aligned heap blocks, recorded apart from the
 * device allocations (it is host memory to every check). */
cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    *p = nullptr;
    if (g_sticky) return set_error(g_sticky);
    if (flags & ~(unsigned)(cudaHostAllocPortable | cudaHostAllocWriteCombined)) {
        fprintf(stderr, "agx CUDA emulator: cudaHostAlloc flags 0x%x not emulated (mapped memory)\n", flags);
        return set_error(cudaErrorInvalidValue);
    }
    /* AGX_CUDA_EMU_PINNED_MB=N: at most N MB page-locked at once (0: none), as a
     * container's memlock limit would refuse it (tests of the fallbacks) */
    if (const char *lim = getenv("AGX_CUDA_EMU_PINNED_MB")) {
        size_t held = 0;
        for (const auto &b : g_pinned) held += b.second;
        if (held + bytes > (size_t)atoll(lim) << 20) return set_error(cudaErrorMemoryAllocation);
    }
    void *q = nullptr;
    if (posix_memalign(&q, 4096, bytes ? bytes : 1)) return set_error(cudaErrorMemoryAllocation);
    g_pinned[(uintptr_t)q] = bytes;
    *p = q;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!p) return cudaSuccess;
    flush_all();   /* as cudaFreeHost synchronises: no queued copy reads freed memory */
    auto it = g_pinned.find((uintptr_t)p);
    if (it == g_pinned.end()) {
        fprintf(stderr, "agx CUDA emulator: cudaFreeHost(%p) of memory cudaMallocHost/cudaHostAlloc did not return\n",
                p);
        return set_error(cudaErrorInvalidValue);
    }
    g_pinned.erase(it);
    free(p);
    return cudaSuccess;
}

/* The direction must match where the pointers live (a GPU would fault or copy garbage). */
static cudaError_t check_copy(void *dst, const void *src, size_t n, cudaMemcpyKind kind, const char *fn) {
    const bool dd = is_device(dst, n), sd = is_device(src, n);
    bool ok = true;
    switch (kind) {
    case cudaMemcpyHostToDevice: ok = dd && !sd; break;
    case cudaMemcpyDeviceToHost: ok = sd && !dd; break;
    case cudaMemcpyDeviceToDevice: ok = sd && dd; break;
    case cudaMemcpyHostToHost: ok = !sd && !dd; break;
    case cudaMemcpyDefault: ok = true; break;
    }
    if (ok) {   /* a range that starts in page-locked memory must end there too */
        std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
        if (pinned_range(dst, n) < 0 || pinned_range(src, n) < 0) {
            fprintf(stderr, "agx CUDA emulator: %s of %zu bytes (dst %p, src %p) overruns a page-locked allocation\n",
                    fn, n, dst, src);
            return set_error(cudaErrorInvalidValue);
        }
    }
    if (!ok) {
        fprintf(stderr,
                "agx CUDA emulator: %s of %zu bytes, kind %d, but dst %p is %s and src %p is %s (or the range "
                "overruns its allocation)\n",
                fn, n, (int)kind, dst, dd ? "device" : "not device", src, sd ? "device" : "not device");
        return set_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    if (g_sticky) return set_error(g_sticky);
    if (cudaError_t e = check_copy(dst, src, n, kind, "cudaMemcpy")) return e;
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    flush_all();   /* a synchronous copy: everything issued before it has run (all streams, to be safe) */
    memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    if (g_sticky) return set_error(g_sticky);
    if (cudaError_t e = check_copy(dst, src, n, kind, "cudaMemcpyAsync")) return e;
    if (!(s && s->capturing) && (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDefault)) {
        std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
        if (pinned_range(src, n) > 0 && is_device(dst, n)) {
            /* The GPU DMAs from page-locked memory after the call returns: src is
             * read when the copy runs, i.e. when something waits for it. (Pageable
             * sources are staged during the call, so those copies run now.) */
            agx_emu_stream *st = stream_of(s);
            implicit_sync(st);
            st->pending.emplace_back(++st->issued, [dst, src, n] { memmove(dst, src, n); });
            return cudaSuccess;
        }
    }
    /* captured copies read src at replay, as a graph's memcpy node does */
    return on_stream(s, [dst, src, n] { memmove(dst, src, n); });
}
cudaError_t cudaMemset(void *p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    if (!is_device(p, n)) return set_error(cudaErrorInvalidValue);
    return on_stream(s, [p, v, n] { memset(p, v, n); });
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    *s = new agx_emu_stream();
    (*s)->non_blocking = (flags & cudaStreamNonBlocking) != 0;
    g_streams.insert(*s);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!s) return cudaSuccess;
    /* the stream's queued work still completes (now); its events stay valid and complete */
    flush(s);
    for (agx_emu_event *e : g_events)
        if (e->stream == s) e->stream = nullptr;
    g_streams.erase(s);
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->capturing) {   /* not permitted while capturing; it also invalidates the capture */
        s->invalidated = true;
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    agx_emu_stream *st = stream_of(s);
    if (st == &g_legacy) implicit_sync(st);   /* conservative: the legacy stream with the blocking streams */
    flush(st);
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}

/* Event operations on a capturing stream (cross-stream fork/join in a graph) are
 * not emulated: refused loudly and the capture invalidated, rather than guessed. */
static cudaError_t refuse_in_capture(cudaStream_t s, const char *fn) {
    fprintf(stderr, "agx CUDA emulator: %s on a capturing stream is not emulated\n", fn);
    s->invalidated = true;
    return set_error(cudaErrorStreamCaptureUnsupported);
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    *e = nullptr;
    if (flags & ~(unsigned)(cudaEventBlockingSync | cudaEventDisableTiming)) return set_error(cudaErrorInvalidValue);
    *e = new agx_emu_event();
    (*e)->timing = !(flags & cudaEventDisableTiming);
    g_events.insert(*e);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!valid_event(e)) return set_error(cudaErrorInvalidResourceHandle);
    g_events.erase(e);
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!valid_event(e)) return set_error(cudaErrorInvalidResourceHandle);
    if (s && s->capturing) return refuse_in_capture(s, "cudaEventRecord");
    agx_emu_stream *st = stream_of(s);
    implicit_sync(st);   /* the record is an op on st: it follows what st implicitly waits for */
    e->stream = st;
    e->seq = st->issued;
    e->t_ms = event_complete(e) ? now_ms() : -1;
    return cudaSuccess;
}
/* As CUDA: both recorded timing events, complete (else not ready, not an error). */
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!ms) return set_error(cudaErrorInvalidValue);
    if (!valid_event(start) || !valid_event(end) || !start->timing || !end->timing ||
        (!start->stream && start->t_ms < 0) || (!end->stream && end->t_ms < 0))
        return set_error(cudaErrorInvalidResourceHandle);
    if (!event_complete(start) || !event_complete(end)) return cudaErrorNotReady;
    *ms = (float)(end->t_ms - start->t_ms);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!valid_event(e)) return set_error(cudaErrorInvalidResourceHandle);
    if (e->stream) flush(e->stream, e->seq);
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}
/* Work still queued before the event: "not ready" (not an error: the last error
 * stays), and the GPU is taken to finish it right after, so a polling loop ends. */
cudaError_t cudaEventQuery(cudaEvent_t e) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!valid_event(e)) return set_error(cudaErrorInvalidResourceHandle);
    if (!event_complete(e)) {
        flush(e->stream, e->seq);
        return cudaErrorNotReady;
    }
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}
/* Later work on s waits for e: performing e's work now keeps that order. */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
    (void)flags;
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    if (!valid_event(e)) return set_error(cudaErrorInvalidResourceHandle);
    if (s && s->capturing) return refuse_in_capture(s, "cudaStreamWaitEvent");
    if (e->stream) flush(e->stream, e->seq);
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    (void)mode;
    if (!s || s->capturing) return set_error(cudaErrorStreamCaptureUnsupported); /* legacy stream cannot capture */
    s->capturing = true;
    s->invalidated = false;
    s->captured.clear();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    *g = nullptr;
    if (!s || !s->capturing) return set_error(cudaErrorInvalidValue);
    s->capturing = false;
    if (s->invalidated) {
        s->captured.clear();
        return set_error(cudaErrorStreamCaptureInvalidated);
    }
    *g = new agx_emu_graph();
    (*g)->ops.swap(s->captured);
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags) {
    (void)flags;
    if (!g) return set_error(cudaErrorInvalidValue);
    *exec = new agx_emu_graph_exec();
    (*exec)->ops = g->ops;   /* a copy: the graph may be destroyed after instantiation */
    return cudaSuccess;
}
static unsigned long g_graph_launches = 0;   /* for tests: did a path replay a graph? */
extern "C" unsigned long agx_cuda_emu_graph_launches(void) {
    std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
    return g_graph_launches;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return set_error(cudaErrorInvalidResourceHandle);
    if (g_sticky) return set_error(g_sticky);
    {
        std::lock_guard<std::recursive_mutex> lock(g_device_mutex);
        g_graph_launches++;
    }
    for (auto &op : exec->ops) on_stream(s, op);
    return g_sticky ? set_error(g_sticky) : cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

/* ---- cuBLAS ---- */
struct agx_emu_blas {
    cudaStream_t stream = nullptr;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new agx_emu_blas();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

namespace {
float ld_elem(const void *p, cudaDataType t, size_t i) {
    return t == CUDA_R_16F ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}
/* Elements an operand of rows x cols (column-major, leading dimension ld) spans. */
size_t span(int rows, int cols, int ld) { return rows && cols ? (size_t)(cols - 1) * ld + rows : 0; }
size_t elem_size(cudaDataType t) { return t == CUDA_R_16F ? 2 : 4; }

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                    const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, float beta,
                    void *C, cudaDataType ct, int ldc, const char *fn) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
    const int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "agx CUDA emulator: %s: invalid sizes m %d n %d k %d lda %d ldb %d ldc %d\n", fn, m, n, k, lda,
                ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!is_device(A, span(arows, acols, lda) * elem_size(at)) ||
        !is_device(B, span(brows, bcols, ldb) * elem_size(bt)) || !is_device(C, span(m, n, ldc) * elem_size(ct))) {
        fprintf(stderr, "agx CUDA emulator: %s: an operand is not (entirely) in device memory (m %d n %d k %d)\n", fn,
                m, n, k);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    on_stream(h->stream, [=] {
        std::vector<float> arow((size_t)k), bcol((size_t)k);
        for (int j = 0; j < n; j++) {
            for (int l = 0; l < k; l++)
                bcol[l] = ld_elem(B, bt, tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb);
            for (int i = 0; i < m; i++) {
                float s = 0.0f;
                if (ta == CUBLAS_OP_N)
                    for (int l = 0; l < k; l++) s += ld_elem(A, at, (size_t)i + (size_t)l * lda) * bcol[l];
                else
                    for (int l = 0; l < k; l++) s += ld_elem(A, at, (size_t)l + (size_t)i * lda) * bcol[l];
                const size_t ci = (size_t)i + (size_t)j * ldc;
                const float old = beta != 0.0f ? ld_elem(C, ct, ci) : 0.0f;
                const float v = alpha * s + beta * old;
                if (ct == CUDA_R_16F) ((__half *)C)[ci] = __half(v);
                else ((float *)C)[ci] = v;
            }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}
} // namespace

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm(h, ta, tb, m, n, k, *alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, *beta, C, CUDA_R_32F, ldc,
                "cublasSgemm");
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_16F) return CUBLAS_STATUS_NOT_SUPPORTED;
    /* with 32F compute, alpha and beta are floats */
    return gemm(h, ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb, *(const float *)beta, C, ct, ldc,
                "cublasGemmEx");
}
