/* forward.cu — the CUDA forward pass behind the agx_device_forward hook table
 * (model_device.h) and the device probe used by device.c. Weights are uploaded
 * once in their file layout (quantized, not expanded), the KV cache lives on
 * the GPU, every op runs on the GPU, and only the logits rows asked for come
 * back. Decode steps (one token, or a grammar-forced span of up to
 * MMV_MAX_TOKENS) use quantized matrix-vector kernels and are replayed as CUDA
 * graphs, one per step size; longer prompt chunks go through the 8-bit matvec
 * in token groups or cuBLAS GEMMs (AGX_CUDA_GEMM; docs/cuda.md).
 *
 * Verified on the CPU CUDA emulator (tests/cuda_emu), not yet on a GPU: see
 * docs/cuda.md and scripts/gpu-check.sh for the run that is owed. */
#include <algorithm>
#include <cublas_v2.h>
#include <new>
#include <thread>
#include <vector>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(AGX_CUDA_EMU) && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "agx/ops.h"
#include "agx/quant.h"
#include "agx/util.h"
#include "engine/cuda/agx_cuda.h"
#include "engine/cuda/kernels.h"

namespace {

enum {
    MMV_MAX_TOKENS = 8,             /* up to this many tokens: matvec per token, above: GEMM */
    GEMM_Q8 = 0, GEMM_F16 = 1, GEMM_F32 = 2, GEMM_MMA = 3,   /* AGX_CUDA_GEMM */
    LOGIT_ROWS = 64,                /* logits computed per step (bounds the device logits buffer) */
};
/* f16 weight tile for GEMMs: at most this many elements (rows are tiled). */
const size_t WTILE_MAX_ELEMS = (size_t)32 << 20;

struct DevMat {
    const uint8_t *d = nullptr;
    uint32_t type = 0;
    int n_rows = 0, n_cols = 0;
    size_t row_bytes = 0;
};

struct DevLayer {
    float *attn_norm, *ffn_norm, *bq, *bk, *bv;
    DevMat wq, wk, wv, wo, w_gate, w_up, w_down;
};

/* The weights of one model on one device, uploaded once and shared by every
 * context of the model there (model_device.c keeps one per model and device;
 * a context only borrows them). Shapes and rope parameters live here too, so a
 * context is created from the weights alone. */
struct CudaWeights {
    int device = 0;
    int E = 0, QD = 0, KVD = 0, F = 0, V = 0, n_layer = 0, n_head = 0, n_head_kv = 0, hd = 0, n_rot = 0;
    bool neox = false;
    float eps = 0, attn_scale = 0;
    agx_rope_params rope = {};
    float *rope_factors = nullptr;   /* host copy behind rope.freq_factors */
    DevMat tok_embd, output;         /* output == tok_embd when tied */
    float *output_norm = nullptr;
    DevLayer *layers = nullptr;
    size_t max_mat = 0;              /* elements of the largest matrix (GEMM weight tiles) */
    bool any_dense = false;          /* some f32/f16/bf16 matrix: the GEMM tiles are needed */
    bool act_sum = false;            /* some q4_1/q5_1 matrix: q8_0 activations carry their sums */
    uint8_t *arena = nullptr;        /* one device allocation for every tensor */
    size_t bytes = 0;
};

/* AGX_CUDA_PROFILE=1: every launch between two timing events (graphs off), summed
 * per launch name and phase (decode = 1-token chunks, prompt = longer ones) and
 * printed when the context is freed. Says where a step's time goes on machines
 * whose runtime refuses the hardware profilers (ncu, nsys). */
struct ProfLaunch {
    const char *what, *role;
    double bytes;   /* weight bytes the launch reads (0: not a weight launch) */
};
struct ProfSum {
    const char *what, *role;
    int phase;
    double ms, bytes;
    long calls;
};
struct Prof {
    std::vector<cudaEvent_t> ev;                       /* pool: 2 per launch of the current chunk */
    std::vector<ProfLaunch> what;                      /* the launches of the current chunk */
    std::vector<ProfSum> sum;                          /* phase 0: prompt chunks, 1: decode steps */
    double wall_ms[2] = {};
    long tokens[2] = {}, chunks[2] = {};
    bool failed = false;                               /* an event call failed: the figures are incomplete */
};

struct CudaCtx {
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;   /* only when a GEMM path is possible (wtile != NULL) */
    const CudaWeights *w = nullptr;   /* shapes and weights, borrowed: they outlive the context */
    bool kv_f32 = false;
    int n_ctx = 0, n_ubatch = 0;
    /* device memory of this context; every allocation is recorded for freeing and accounting */
    void **allocs = nullptr;
    int n_allocs = 0, cap_allocs = 0;
    size_t bytes = 0;
    uint8_t *kcache = nullptr, *vcache = nullptr;   /* [layer][n_ctx][KVD] */
    size_t kv_layer_bytes = 0;
    float *rope_cs = nullptr;                      /* [n_ctx][n_rot] cos/sin from agx_rope_cache */
    float *x = nullptr, *xb = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr, *hb = nullptr,
          *hb2 = nullptr, *logits = nullptr;
    __half *wtile = nullptr, *xtile = nullptr;
    /* 8-bit activations of the matvec path (AGX_CUDA_MMV=q8, default): q8_0 and
     * q8_K copies of the current input, [MMV_MAX_TOKENS][widest] */
    bool mmv_q8 = true;
    int mmv_unroll = agxc::MV_UNROLL;   /* AGX_CUDA_MMV_UNROLL: units per lane loaded together in decode */
    /* Prompt chunks (> MMV_MAX_TOKENS tokens) with quantized weights,
     * AGX_CUDA_GEMM: q8 (default) = the 8-bit matvec in groups of tokens
     * (integer products exact as the CPU's, weights read once per group);
     * mma = the same products on the tensor cores (int8 mma, 64x32 tiles);
     * f16 = dequantize to f16 + cuBLAS tensor-core GEMM on q8->f16
     * activations; f32 = the same with SGEMM (wtile / xtile hold f32). */
    int gemm_mode = GEMM_Q8;
    agxc::Q8Act a0, ak;
    size_t wtile_elems = 0;
    int32_t *d_tokens = nullptr;
    int *d_pos = nullptr;
    float *att_part = nullptr;   /* split attention's partial states (NULL: AGX_CUDA_ATTN_SPLIT=0) */
    bool use_graph = true;     /* AGX_CUDA_GRAPHS=0: launch every kernel each step */
    bool debug_sync = false;   /* AGX_CUDA_DEBUG=1: synchronize after every launch, name the failing kernel */
    Prof *prof = nullptr;      /* AGX_CUDA_PROFILE=1 */
    const char *role = nullptr;   /* the matrix of the matmul launches (RoleScope): profile rows */
    double launch_bytes = 0;      /* weight bytes the next launch reads (profile's GB/s; reset by it) */
    /* graph[n]: n tokens (1 = decode, 2..MMV_MAX_TOKENS = a forced span of the grammar)
     * plus the logits of the last one, captured on first use */
    cudaGraphExec_t graph[MMV_MAX_TOKENS + 1] = {};
};

#define CU_TRY(call, what)                                                                                \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess)                                                                            \
            return agx_error_set(err, AGX_ERR_ENGINE, "CUDA: %s failed: %s", what, cudaGetErrorString(e_)); \
    } while (0)
#define BLAS_TRY(call, what)                                                                             \
    do {                                                                                                 \
        cublasStatus_t s_ = (call);                                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                 \
            return agx_error_set(err, AGX_ERR_ENGINE, "cuBLAS: %s failed: %s", what,                     \
                                 cublasGetStatusString(s_));                                             \
    } while (0)

/* Records a timing event before (begin) or after a launch named what. Failures
 * only mark the profile incomplete: profiling never fails an eval. */
void prof_mark(CudaCtx *c, const char *what, bool begin) {
    Prof *p = c->prof;
    if (begin) p->what.push_back({what, c->role, c->launch_bytes});
    c->launch_bytes = 0;
    const size_t i = 2 * (p->what.size() - 1) + (begin ? 0 : 1);
    while (p->ev.size() <= i) {
        cudaEvent_t e = nullptr;
        if (cudaEventCreate(&e) != cudaSuccess) {
            cudaGetLastError();
            p->failed = true;
            return;
        }
        p->ev.push_back(e);
    }
    if (cudaEventRecord(p->ev[i], c->stream) != cudaSuccess) {
        cudaGetLastError();
        p->failed = true;
    }
}

/* try_call (a launch or GEMM inside its CU_TRY / BLAS_TRY) between the
 * profile's events; with AGX_CUDA_DEBUG=1 also waits for it, so that an
 * asynchronous fault is reported at the kernel that caused it. */
#define TIMED(c, try_call, what)                                                \
    do {                                                                        \
        if ((c)->prof) prof_mark(c, what, true);                                \
        try_call;                                                               \
        if ((c)->prof) prof_mark(c, what, false);                               \
        if ((c)->debug_sync) CU_TRY(cudaStreamSynchronize((c)->stream), what); \
    } while (0)
#define LAUNCH(c, call, what) TIMED(c, CU_TRY(call, what " launch"), what)
#define GEMM(c, call, what) TIMED(c, BLAS_TRY(call, what), what)

/* After a chunk's synchronisation: its launch times into the sums of its
 * phase (1-token chunks: decode). */
void prof_harvest(Prof *p, double wall_ms, int n_tokens) {
    const int phase = n_tokens == 1;
    for (size_t k = 0; k < p->what.size(); k++) {
        float ms = 0;
        if (2 * k + 1 >= p->ev.size() || cudaEventElapsedTime(&ms, p->ev[2 * k], p->ev[2 * k + 1]) != cudaSuccess) {
            cudaGetLastError();
            p->failed = true;
            continue;
        }
        ProfSum *s = nullptr;
        const char *what = p->what[k].what, *role = p->what[k].role ? p->what[k].role : "";
        for (ProfSum &e : p->sum)
            if (e.phase == phase && !strcmp(e.what, what) && !strcmp(e.role, role)) s = &e;
        if (!s) {
            p->sum.push_back(ProfSum{what, role, phase, 0, 0, 0});
            s = &p->sum.back();
        }
        s->ms += ms;
        s->bytes += p->what[k].bytes;
        s->calls++;
    }
    p->wall_ms[phase] += wall_ms;
    p->tokens[phase] += n_tokens;
    p->chunks[phase]++;
}

/* The table, to stderr (asked for by AGX_CUDA_PROFILE=1, like a profiler's report). */
void prof_report(const Prof *p) {
    static const char *const phase_name[2] = {"prompt", "decode"};
    for (int ph = 0; ph < 2; ph++) {
        if (!p->chunks[ph]) continue;
        std::vector<ProfSum> rows;
        double kern = 0, bytes = 0;
        for (const ProfSum &e : p->sum)
            if (e.phase == ph) rows.push_back(e), kern += e.ms, bytes += e.bytes;
        std::sort(rows.begin(), rows.end(), [](const ProfSum &a, const ProfSum &b) { return a.ms > b.ms; });
        fprintf(stderr,
                "agx CUDA profile, %s: %ld chunks, %ld tokens, %.3f ms wall per token, %.3f ms of launches per "
                "token (%.0f %% of the wall time; graphs off), weights read %.1f MB per chunk = %.4g GB/s of the "
                "wall time%s\n",
                phase_name[ph], p->chunks[ph], p->tokens[ph], p->wall_ms[ph] / (double)p->tokens[ph],
                kern / (double)p->tokens[ph], p->wall_ms[ph] > 0 ? 100.0 * kern / p->wall_ms[ph] : 0.0,
                bytes / 1e6 / (double)p->chunks[ph], p->wall_ms[ph] > 0 ? bytes / (p->wall_ms[ph] * 1e6) : 0.0,
                p->failed ? " (some events failed: incomplete)" : "");
        fprintf(stderr, "  %-52s %8s %10s %9s %6s %12s\n", "launch", "calls", "ms", "us/call", "share",
                "weights GB/s");
        for (const ProfSum &e : rows) {
            char name[128], rate[32] = "";
            snprintf(name, sizeof name, *e.role ? "%s [%s]" : "%s", e.what, e.role);
            /* the weight bytes over the launch time: next to the HBM bandwidth, how far a kernel is from it */
            if (e.bytes > 0 && e.ms > 0) snprintf(rate, sizeof rate, "%12.4g", e.bytes / (e.ms * 1e6));
            fprintf(stderr, "  %-52s %8ld %10.3f %9.2f %5.1f%% %s\n", name, e.calls, e.ms, 1000.0 * e.ms / e.calls,
                    kern > 0 ? 100.0 * e.ms / kern : 0.0, rate);
        }
    }
}

/* cudaMalloc with an error that says what did not fit and what to do. */
agx_status dev_malloc(size_t bytes, void **out, const char *what, agx_error *err) {
    *out = nullptr;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e == cudaSuccess) return AGX_OK;
    *out = nullptr;
    cudaGetLastError();
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    return agx_error_set(err, AGX_ERR_NOMEM,
                         "CUDA: cannot allocate %.1f MB for %s (%s; %.1f MB of %.1f MB free): use a smaller "
                         "model or context (AGX_CANDLE_CONTEXT_SIZE), or AGX_DEVICE=cpu",
                         (double)bytes / 1e6, what, cudaGetErrorString(e), (double)fr / 1e6, (double)tot / 1e6);
}

agx_status dev_alloc(CudaCtx *c, size_t bytes, void **out, const char *what, agx_error *err) {
    *out = nullptr;
    if (c->n_allocs == c->cap_allocs) {
        const int cap = c->cap_allocs ? 2 * c->cap_allocs : 64;
        void **a = (void **)realloc(c->allocs, sizeof(void *) * (size_t)cap);
        if (!a) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");
        c->allocs = a;
        c->cap_allocs = cap;
    }
    agx_status st = dev_malloc(bytes, out, what, err);
    if (st != AGX_OK) return st;
    c->allocs[c->n_allocs++] = *out;
    c->bytes += bytes;
    return AGX_OK;
}

/* ---- weight upload ---- */

/* Host-to-device copies of the weights. From the mmap'ed file a plain
 * cudaMemcpy goes through the driver's own small pageable staging; here the
 * host side copies into one page-locked buffer while the previous one is DMA'd
 * (AGX_CUDA_UPLOAD=pinned, default), or uses cudaMemcpy (=pageable, and the
 * fallback when page-locked memory is refused). The host copy (page faults on
 * the mapping + memcpy) is slower than the DMA with one thread, so a chunk is
 * copied by up to MAX_COPY_THREADS threads. */
struct Uploader {
    enum { N_BUF = 2, MAX_COPY_THREADS = 4 };
    static const size_t CHUNK = (size_t)32 << 20;
    static const size_t MIN_SLICE = (size_t)2 << 20;   /* smaller copies are not worth a thread */
    cudaStream_t stream = nullptr;
    uint8_t *buf[N_BUF] = {};
    cudaEvent_t done[N_BUF] = {};   /* done[b]: the copy that last read buf[b] finished */
    int next = 0;
    int copy_threads = 1;
    bool pinned = false;
};

/* memcpy split over up to u->copy_threads threads (this one included); a thread
 * that cannot be started leaves its slice to this one. */
void parallel_copy(const Uploader *u, uint8_t *dst, const uint8_t *src, size_t n) {
    int t = u->copy_threads;
    while (t > 1 && n / (size_t)t < Uploader::MIN_SLICE) t--;
    const size_t slice = n / (size_t)t;
    std::thread helpers[Uploader::MAX_COPY_THREADS];
    for (int i = 1; i < t; i++) {
        const size_t off = slice * (size_t)i, len = i == t - 1 ? n - off : slice;
        try {
            helpers[i] = std::thread([=] { memcpy(dst + off, src + off, len); });
        } catch (...) {
            memcpy(dst + off, src + off, len);
        }
    }
    memcpy(dst, src, slice);
    for (int i = 1; i < t; i++)
        if (helpers[i].joinable()) helpers[i].join();
}

agx_status uploader_open(Uploader *u, agx_error *err) {
    const char *mode = agx_env("AGX_CUDA_UPLOAD");
    if (mode && strcmp(mode, "pinned") && strcmp(mode, "pageable"))
        return agx_error_set(err, AGX_ERR_CONFIG,
                             "AGX_CUDA_UPLOAD=%s: use pinned (default: staged through page-locked buffers) or "
                             "pageable (plain cudaMemcpy)", mode);
    if (mode && !strcmp(mode, "pageable")) return AGX_OK;
    CU_TRY(cudaStreamCreateWithFlags(&u->stream, cudaStreamNonBlocking), "creating the upload stream");
    for (int b = 0; b < Uploader::N_BUF; b++) {
        CU_TRY(cudaEventCreateWithFlags(&u->done[b], cudaEventDisableTiming), "creating an upload event");
        if (cudaMallocHost((void **)&u->buf[b], Uploader::CHUNK) != cudaSuccess) {
            cudaGetLastError();   /* page-locked memory is limited (containers, ulimit): pageable copies work too */
            u->buf[b] = nullptr;
            agx_log(AGX_LOG_INFO, "cuda: no page-locked staging memory (%zu MB): uploading with cudaMemcpy",
                    (size_t)(Uploader::N_BUF * Uploader::CHUNK >> 20));
            return AGX_OK;
        }
    }
    u->pinned = true;
    const unsigned hw = std::thread::hardware_concurrency();
    u->copy_threads = hw < 2 ? 1 : hw > Uploader::MAX_COPY_THREADS ? Uploader::MAX_COPY_THREADS : (int)hw;
    return AGX_OK;
}

agx_status uploader_copy(Uploader *u, void *dst, const void *src, size_t n, agx_error *err) {
    if (!u->pinned) {
        CU_TRY(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "uploading weights");
        return AGX_OK;
    }
    for (size_t off = 0; off < n; off += Uploader::CHUNK) {
        const size_t len = n - off < Uploader::CHUNK ? n - off : Uploader::CHUNK;
        const int b = u->next;
        u->next = (b + 1) % Uploader::N_BUF;
        /* the buffer is rewritten only once the DMA reading it has finished */
        CU_TRY(cudaEventSynchronize(u->done[b]), "uploading weights");
        parallel_copy(u, u->buf[b], (const uint8_t *)src + off, len);
        CU_TRY(cudaMemcpyAsync((uint8_t *)dst + off, u->buf[b], len, cudaMemcpyHostToDevice, u->stream),
               "uploading weights");
        CU_TRY(cudaEventRecord(u->done[b], u->stream), "uploading weights");
    }
    return AGX_OK;
}

/* Waits for the last copies (finish) and frees the staging. */
agx_status uploader_close(Uploader *u, bool finish, agx_error *err) {
    cudaError_t e = u->stream ? cudaStreamSynchronize(u->stream) : cudaSuccess;
    for (int b = 0; b < Uploader::N_BUF; b++) {
        if (u->buf[b]) cudaFreeHost(u->buf[b]);
        if (u->done[b]) cudaEventDestroy(u->done[b]);
    }
    if (u->stream) cudaStreamDestroy(u->stream);
    *u = Uploader();
    if (finish) CU_TRY(e, "finishing the weight upload");
    return AGX_OK;
}

const size_t ARENA_ALIGN = 256;   /* cudaMalloc's alignment, kept for every tensor in the arena */

/* On a GPU a kernel reading past a weight tensor's end silently reads the next
 * one (the same allocation: compute-sanitizer cannot tell either). The CUDA
 * emulator under ASan (the suite's build) leaves a poisoned gap after every
 * tensor, so such a read is reported at its line. */
#if defined(AGX_CUDA_EMU) && defined(__SANITIZE_ADDRESS__)
const size_t ARENA_REDZONE = ARENA_ALIGN;
void arena_guard(uint8_t *tensor_end, size_t gap) { ASAN_POISON_MEMORY_REGION(tensor_end, gap); }
#else
const size_t ARENA_REDZONE = 0;
void arena_guard(uint8_t *, size_t) {}
#endif

size_t arena_size(size_t bytes) {
    return bytes ? (bytes + ARENA_REDZONE + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN : 0;
}

agx_status check_mat(const agx_dev_mat *m, agx_error *err) {
    if (!agxc::type_supported(m->type))
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "the CUDA path has no kernel for weight type %s (supported: f32, f16, bf16, q4_0, "
                             "q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K); set AGX_DEVICE=cpu",
                             agx_type_name(m->type));
    if (m->n_cols % 32 || m->n_rows > INT32_MAX || m->n_cols > INT32_MAX)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "the CUDA path needs rows of a multiple of 32 elements (got %lld); set AGX_DEVICE=cpu",
                             (long long)m->n_cols);
    return AGX_OK;
}

size_t mat_bytes(const agx_dev_mat *m) { return m->row_bytes * (size_t)m->n_rows; }
size_t vec_bytes(const float *v, int n) { return v ? sizeof(float) * (size_t)n : 0; }

/* Every tensor of the model in upload order: matrices and their device slot,
 * then vectors. Used twice: to size the arena, then to fill it. */
template <typename MatFn, typename VecFn>
agx_status each_tensor(const agx_dev_model *dm, CudaWeights *w, MatFn mat, VecFn vec) {
    agx_status st;
    if ((st = mat(&dm->tok_embd, &w->tok_embd)) != AGX_OK) return st;
    if (dm->output.data != dm->tok_embd.data && (st = mat(&dm->output, &w->output)) != AGX_OK) return st;
    if ((st = vec(dm->output_norm, w->E, &w->output_norm)) != AGX_OK) return st;
    for (int l = 0; l < w->n_layer; l++) {
        const agx_dev_layer *S = &dm->layers[l];
        DevLayer *L = &w->layers[l];
        const agx_dev_mat *src[7] = {&S->wq, &S->wk, &S->wv, &S->wo, &S->w_gate, &S->w_up, &S->w_down};
        DevMat *dst[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++)
            if ((st = mat(src[i], dst[i])) != AGX_OK) return st;
        const float *vs[5] = {S->attn_norm, S->ffn_norm, S->bq, S->bk, S->bv};
        float **vd[5] = {&L->attn_norm, &L->ffn_norm, &L->bq, &L->bk, &L->bv};
        const int vn[5] = {w->E, w->E, w->QD, w->KVD, w->KVD};
        for (int i = 0; i < 5; i++)
            if ((st = vec(vs[i], vn[i], vd[i])) != AGX_OK) return st;
    }
    return AGX_OK;
}

void weights_destroy(void *weights) {
    CudaWeights *w = (CudaWeights *)weights;
    if (!w) return;
    cudaSetDevice(w->device);
    cudaFree(w->arena);
    free(w->layers);
    free(w->rope_factors);
    delete w;
}

size_t weights_bytes(const void *weights) { return weights ? ((const CudaWeights *)weights)->bytes : 0; }

agx_status weights_create_inner(CudaWeights *w, const agx_dev_model *dm, agx_error *err) {
    w->E = dm->n_embd;
    w->QD = dm->n_head * dm->head_dim;
    w->KVD = dm->n_head_kv * dm->head_dim;
    w->F = dm->n_ff;
    w->V = dm->n_vocab;
    w->n_layer = dm->n_layer;
    w->n_head = dm->n_head;
    w->n_head_kv = dm->n_head_kv;
    w->hd = dm->head_dim;
    w->n_rot = dm->n_rot;
    w->neox = dm->rope.style == AGX_ROPE_NEOX;
    w->eps = dm->rms_eps;
    w->attn_scale = 1.0f / sqrtf((float)dm->head_dim);
    if (w->hd > 256 || w->n_head_kv <= 0 || w->n_head % w->n_head_kv || w->n_rot <= 0 || w->n_rot > w->hd ||
        w->n_rot % 2)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "the CUDA path supports head_dim <= 256 with n_head a multiple of n_head_kv "
                             "(model: head_dim %d, %d/%d heads); set AGX_DEVICE=cpu",
                             w->hd, w->n_head, w->n_head_kv);
    w->rope = dm->rope;
    if (dm->rope.freq_factors) {
        const size_t n = (size_t)w->n_rot / 2;
        w->rope_factors = (float *)malloc(sizeof(float) * (n ? n : 1));
        if (!w->rope_factors) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");
        memcpy(w->rope_factors, dm->rope.freq_factors, sizeof(float) * n);
        w->rope.freq_factors = w->rope_factors;
    }
    w->layers = (DevLayer *)calloc((size_t)w->n_layer ? (size_t)w->n_layer : 1, sizeof(DevLayer));
    if (!w->layers) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");

    /* pass 1: check every matrix and size the arena */
    size_t total = 0;
    w->max_mat = (size_t)w->V * (size_t)w->E;
    agx_status st = each_tensor(
        dm, w,
        [&](const agx_dev_mat *m, DevMat *) -> agx_status {
            agx_status s = check_mat(m, err);
            if (s != AGX_OK) return s;
            total += arena_size(mat_bytes(m));
            const size_t el = (size_t)m->n_rows * (size_t)m->n_cols;
            if (el > w->max_mat) w->max_mat = el;
            if (!agxc::act_format(m->type)) w->any_dense = true;
            if (agxc::needs_act_sum(m->type)) w->act_sum = true;
            return AGX_OK;
        },
        [&](const float *v, int n, float **) -> agx_status {
            total += arena_size(vec_bytes(v, n));
            return AGX_OK;
        });
    if (st != AGX_OK) return st;
    if ((st = dev_malloc(total, (void **)&w->arena, "the weights", err)) != AGX_OK) return st;
    w->bytes = total;

    /* pass 2: upload, each tensor at the next aligned offset */
    Uploader up;
    if ((st = uploader_open(&up, err)) != AGX_OK) {
        uploader_close(&up, false, err);
        return st;
    }
    size_t off = 0;
    /* the next tensor's place in the arena, n bytes of it copied from src */
    auto place = [&](const void *src, size_t n, uint8_t **at) -> agx_status {
        agx_status s = uploader_copy(&up, w->arena + off, src, n, err);
        if (s != AGX_OK) return s;
        *at = w->arena + off;
        arena_guard(*at + n, arena_size(n) - n);
        off += arena_size(n);
        return AGX_OK;
    };
    st = each_tensor(
        dm, w,
        [&](const agx_dev_mat *m, DevMat *out) -> agx_status {
            uint8_t *at;
            agx_status s = place(m->data, mat_bytes(m), &at);
            if (s != AGX_OK) return s;
            out->d = at;
            out->type = m->type;
            out->n_rows = (int)m->n_rows;
            out->n_cols = (int)m->n_cols;
            out->row_bytes = m->row_bytes;
            return AGX_OK;
        },
        [&](const float *v, int n, float **out) -> agx_status {
            *out = nullptr;
            if (!v) return AGX_OK;
            uint8_t *at;
            agx_status s = place(v, vec_bytes(v, n), &at);
            if (s != AGX_OK) return s;
            *out = (float *)at;
            return AGX_OK;
        });
    const agx_status cst = uploader_close(&up, st == AGX_OK, err);
    if (st != AGX_OK) return st;
    if (cst != AGX_OK) return cst;
    if (dm->output.data == dm->tok_embd.data) w->output = w->tok_embd;   /* tied: one upload */
    if (!agxc::act_format(w->output.type)) w->any_dense = true;
    return AGX_OK;
}

agx_status weights_create(const agx_dev_model *dm, const agx_device_info *dev, void **weights, agx_error *err) {
    *weights = nullptr;
    CudaWeights *w = new (std::nothrow) CudaWeights();
    if (!w) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");
    w->device = dev ? dev->index : 0;
    agx_status st;
    if (cudaSetDevice(w->device) != cudaSuccess) {
        cudaGetLastError();
        st = agx_error_set(err, AGX_ERR_ENGINE, "CUDA: selecting device %d failed", w->device);
    } else {
        st = weights_create_inner(w, dm, err);
    }
    if (st != AGX_OK) {
        weights_destroy(w);
        return st;
    }
    *weights = w;
    return AGX_OK;
}

/* ---- contexts ---- */

void ctx_destroy(void *state) {
    CudaCtx *c = (CudaCtx *)state;
    if (!c) return;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->prof) {
        prof_report(c->prof);
        for (cudaEvent_t e : c->prof->ev) cudaEventDestroy(e);
        delete c->prof;
    }
    for (cudaGraphExec_t g : c->graph)
        if (g) cudaGraphExecDestroy(g);
    for (int i = 0; i < c->n_allocs; i++) cudaFree(c->allocs[i]);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c->allocs);
    delete c;
}

/* Prompt chunks of quantized matrices take 8-bit activations (q8 and mma modes). */
bool q8_prompts(const CudaCtx *c) { return c->gemm_mode == GEMM_Q8 || c->gemm_mode == GEMM_MMA; }

agx_status ctx_create_inner(CudaCtx *c, const CudaWeights *w, int n_ctx, int n_ubatch, agx_kv_type kv_type,
                            agx_error *err) {
    agx_status st;
    c->device = w->device;
    CU_TRY(cudaSetDevice(c->device), "selecting the device");
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "creating a stream");
    c->w = w;
    c->kv_f32 = kv_type == AGX_KV_F32;
    c->n_ctx = n_ctx;
    c->n_ubatch = n_ubatch;
    const char *g = agx_env("AGX_CUDA_GRAPHS");
    c->use_graph = !(g && !strcmp(g, "0"));
    const char *dbg = agx_env("AGX_CUDA_DEBUG");
    c->debug_sync = dbg && !strcmp(dbg, "1");
    const char *prof = agx_env("AGX_CUDA_PROFILE");
    if (prof && !strcmp(prof, "1") && !(c->prof = new (std::nothrow) Prof()))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");
    /* no synchronisation inside a capture; a graph's launches are not timed one by one */
    if (c->debug_sync || c->prof) c->use_graph = false;
    const char *mmv = agx_env("AGX_CUDA_MMV");
    if (mmv && strcmp(mmv, "q8") && strcmp(mmv, "f32"))
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CUDA_MMV=%s: use q8 (default: 8-bit activations, as the CPU) "
                             "or f32 (f32 activations)", mmv);
    c->mmv_q8 = !(mmv && !strcmp(mmv, "f32"));
    const char *unr = agx_env("AGX_CUDA_MMV_UNROLL");
    if (unr && strcmp(unr, "1") && strcmp(unr, "4"))
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CUDA_MMV_UNROLL=%s: use 4 (default: four units per lane "
                             "loaded together in a decode matvec) or 1", unr);
    c->mmv_unroll = unr && !strcmp(unr, "1") ? 1 : agxc::MV_UNROLL;
    const char *gm = agx_env("AGX_CUDA_GEMM");
    if (gm && strcmp(gm, "q8") && strcmp(gm, "mma") && strcmp(gm, "f16") && strcmp(gm, "f32"))
        return agx_error_set(err, AGX_ERR_CONFIG, "AGX_CUDA_GEMM=%s: use q8 (default: 8-bit matvec in token groups, "
                             "as the CPU), mma (the same 8-bit products on the tensor cores), f16 (cuBLAS "
                             "tensor-core GEMM) or f32 (SGEMM)", gm);
    c->gemm_mode = !gm || !strcmp(gm, "q8") ? GEMM_Q8
                   : !strcmp(gm, "mma")     ? GEMM_MMA
                   : !strcmp(gm, "f16")     ? GEMM_F16
                                            : GEMM_F32;
    if (!c->mmv_q8) c->gemm_mode = GEMM_F16;   /* AGX_CUDA_MMV=f32: the previous path throughout */

    /* KV cache, rope table, activations */
    c->kv_layer_bytes = (size_t)n_ctx * (size_t)w->KVD * (c->kv_f32 ? 4 : 2);
    if ((st = dev_alloc(c, c->kv_layer_bytes * (size_t)w->n_layer, (void **)&c->kcache, "the K cache", err)))
        return st;
    if ((st = dev_alloc(c, c->kv_layer_bytes * (size_t)w->n_layer, (void **)&c->vcache, "the V cache", err)))
        return st;
    {
        const size_t n = (size_t)n_ctx * (size_t)w->n_rot;
        float *cs = (float *)malloc(sizeof(float) * (n ? n : 1));
        if (!cs) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory for the rope table");
        /* the CPU's own angle recurrence, so positions rotate identically */
        for (int p = 0; p < n_ctx; p++) agx_rope_cache(&w->rope, p, cs + (size_t)p * w->n_rot);
        st = dev_alloc(c, sizeof(float) * n, (void **)&c->rope_cs, "the rope table", err);
        if (st == AGX_OK && cudaMemcpy(c->rope_cs, cs, sizeof(float) * n, cudaMemcpyHostToDevice) != cudaSuccess)
            st = agx_error_set(err, AGX_ERR_ENGINE, "CUDA: uploading the rope table failed: %s",
                               cudaGetErrorString(cudaGetLastError()));
        free(cs);
        if (st != AGX_OK) return st;
    }
    const size_t ub = (size_t)n_ubatch;
    const size_t widest = (size_t)(w->E > w->QD ? (w->E > w->F ? w->E : w->F) : (w->QD > w->F ? w->QD : w->F));
    float **bufs[] = {&c->x, &c->xb, &c->q, &c->k, &c->v, &c->att, &c->hb, &c->hb2};
    const size_t dims[] = {(size_t)w->E, (size_t)w->E, (size_t)w->QD, (size_t)w->KVD, (size_t)w->KVD,
                           (size_t)w->QD, (size_t)w->F, (size_t)w->F};
    for (int i = 0; i < 8; i++)
        if ((st = dev_alloc(c, sizeof(float) * ub * dims[i], (void **)bufs[i], "activations", err))) return st;
    const size_t lrows = ub < (size_t)LOGIT_ROWS ? ub : (size_t)LOGIT_ROWS;
    if ((st = dev_alloc(c, sizeof(float) * lrows * (size_t)w->V, (void **)&c->logits, "logits", err))) return st;
    if (n_ubatch > MMV_MAX_TOKENS && (w->any_dense || !q8_prompts(c))) {
        c->wtile_elems = w->max_mat < WTILE_MAX_ELEMS ? w->max_mat : WTILE_MAX_ELEMS;
        if ((size_t)w->E > c->wtile_elems || (size_t)w->F > c->wtile_elems) c->wtile_elems = widest;
        const size_t el = c->gemm_mode == GEMM_F32 ? sizeof(float) : sizeof(__half);
        if ((st = dev_alloc(c, el * c->wtile_elems, (void **)&c->wtile, "a weight tile", err))) return st;
        if ((st = dev_alloc(c, el * ub * widest, (void **)&c->xtile, "an activation tile", err))) return st;
        /* cuBLAS only where its GEMMs run (the tiles above): its handle costs start-up
         * time and memory that the default path on quantized models never uses */
        BLAS_TRY(cublasCreate(&c->blas), "creating a handle");
        BLAS_TRY(cublasSetStream(c->blas, c->stream), "setting the stream");
    }
    if (c->mmv_q8) {
        const size_t rows = q8_prompts(c) || ub < (size_t)MMV_MAX_TOKENS ? ub : (size_t)MMV_MAX_TOKENS;
        const size_t n8 = rows * widest;
        agxc::Q8Act *qa[2] = {&c->a0, &c->ak};
        for (int i = 0; i < 2; i++) {
            if ((st = dev_alloc(c, n8, (void **)&qa[i]->qs, "8-bit activations", err))) return st;
            if ((st = dev_alloc(c, sizeof(float) * (n8 / 32), (void **)&qa[i]->d, "8-bit activations", err)))
                return st;
        }
        if (w->act_sum &&
            (st = dev_alloc(c, sizeof(float) * (n8 / 32), (void **)&c->a0.s, "8-bit activation sums", err)))
            return st;
    }
    const char *split = agx_env("AGX_CUDA_ATTN_SPLIT");
    const size_t part = agxc::attention_scratch_floats(w->n_head, w->hd, (int)ub);
    if (part && !(split && !strcmp(split, "0")) &&
        (st = dev_alloc(c, sizeof(float) * part, (void **)&c->att_part, "attention scratch", err)))
        return st;
    if ((st = dev_alloc(c, sizeof(int32_t) * ub, (void **)&c->d_tokens, "token ids", err))) return st;
    if ((st = dev_alloc(c, sizeof(int), (void **)&c->d_pos, "positions", err))) return st;
    return AGX_OK;
}

agx_status ctx_create(const void *weights, int n_ctx, int n_ubatch, agx_kv_type kv_type, void **state,
                      agx_error *err) {
    *state = nullptr;
    if (!weights) return agx_error_set(err, AGX_ERR_CONFIG, "CUDA context needs the model's device weights");
    if (n_ctx <= 0 || n_ubatch <= 0)
        return agx_error_set(err, AGX_ERR_CONFIG, "CUDA context needs n_ctx > 0 and n_ubatch > 0");
    if (n_ubatch > n_ctx) n_ubatch = n_ctx;
    if (n_ubatch > 65535) n_ubatch = 65535;   /* grid.y limit of the per-token kernels */
    CudaCtx *c = new (std::nothrow) CudaCtx();
    if (!c) return agx_error_set(err, AGX_ERR_NOMEM, "out of host memory");
    agx_status st = ctx_create_inner(c, (const CudaWeights *)weights, n_ctx, n_ubatch, kv_type, err);
    if (st != AGX_OK) {
        ctx_destroy(c);
        return st;
    }
    *state = c;
    return AGX_OK;
}

/* The 8-bit formats the matvec path wants for an input read by these
 * matrices (0: f32 activations): computed once per input, by the kernel that
 * produces it (rmsnorm, swiglu) or one quantize launch (attention output). */
int act_fmt(const CudaCtx *c, int n, const DevMat &a, const DevMat *b = nullptr, const DevMat *d = nullptr) {
    if (!c->mmv_q8 || (n > MMV_MAX_TOKENS && !q8_prompts(c))) return 0;
    return agxc::act_format(a.type) | (b ? agxc::act_format(b->type) : 0) | (d ? agxc::act_format(d->type) : 0);
}
agxc::Q8Out q8_out(const CudaCtx *c, int fmt) {
    agxc::Q8Out o;
    o.fmt = fmt;
    o.q0 = c->a0;
    o.qk = c->ak;
    return o;
}

/* The role of the matmul launches in its scope (rows of the profile). */
struct RoleScope {
    CudaCtx *c;
    const char *prev;
    RoleScope(CudaCtx *ctx, const char *role) : c(ctx), prev(ctx->role) { c->role = role; }
    ~RoleScope() { c->role = prev; }
};

/* y[t][r] = W[r] . x[t] for n tokens (x rows are W.n_cols wide, y rows y_ld).
 * have: the 8-bit formats of x already in c->a0 / c->ak (act_fmt). */
agx_status matmul(CudaCtx *c, const char *role, const DevMat &W, const float *x, int have, int n, float *y, int y_ld,
                  agx_error *err) {
    const RoleScope rs(c, role);
    const int f = agxc::act_format(W.type);
    const double w_bytes = (double)W.row_bytes * W.n_rows;   /* read by each launch over all rows */
    if (f && (have & f) && n > MMV_MAX_TOKENS && c->gemm_mode == GEMM_MMA) {
        c->launch_bytes = w_bytes;
        LAUNCH(c,
               agxc::matmul_mma(c->stream, W.type, W.d, W.row_bytes, W.n_rows, W.n_cols,
                                f == agxc::ACT_Q8_0 ? c->a0 : c->ak, n, y, y_ld),
               "matmul (8-bit, tensor cores)");
        return AGX_OK;
    }
    if (f && (have & f)) {   /* n <= 65535 = the largest ubatch */
        c->launch_bytes = w_bytes;
        LAUNCH(c,
               agxc::matvec_q8(c->stream, W.type, W.d, W.row_bytes, W.n_rows, W.n_cols, f == agxc::ACT_Q8_0 ? c->a0 : c->ak,
                               n, y, y_ld, c->mmv_unroll),
               "matvec (8-bit activations)");
        return AGX_OK;
    }
    if (n <= MMV_MAX_TOKENS || !c->wtile) {
        for (int t0 = 0; t0 < n; t0 += 65535) {
            const int nt = n - t0 < 65535 ? n - t0 : 65535;
            c->launch_bytes = w_bytes;
            LAUNCH(c,
                   agxc::matvec(c->stream, W.type, W.d, W.row_bytes, W.n_rows, W.n_cols, x + (size_t)t0 * W.n_cols, nt,
                                y + (size_t)t0 * y_ld, y_ld),
                   "matvec");
        }
        return AGX_OK;
    }
    const float one = 1.0f, zero = 0.0f;
    if (W.type == 0 /* f32: keep f32 accuracy */) {
        c->launch_bytes = w_bytes;
        GEMM(c,
             cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, W.n_rows, n, W.n_cols, &one, (const float *)W.d, W.n_cols,
                         x, W.n_cols, &zero, y, y_ld),
             "SGEMM");
        return AGX_OK;
    }
    int rows_per_tile = (int)(c->wtile_elems / (size_t)W.n_cols);
    if (rows_per_tile < 1) rows_per_tile = 1;   /* cannot happen: the tile holds the widest row */
    if (c->mmv_q8 && f) {
        /* quantized weights: the activations through the CPU's 8-bit quantization
         * (then dequantized), so prompt logits track the CPU / llama.cpp too */
        agxc::Q8Out o;
        if (c->gemm_mode == GEMM_F32) o.f32 = (float *)c->xtile;
        else o.h16 = c->xtile;
        o.h16_fmt = f;
        LAUNCH(c, agxc::quantize_act(c->stream, x, W.n_cols, n, o), "8-bit activation conversion");
        if (c->gemm_mode == GEMM_F32) {
            for (int r0 = 0; r0 < W.n_rows; r0 += rows_per_tile) {
                const int nr = W.n_rows - r0 < rows_per_tile ? W.n_rows - r0 : rows_per_tile;
                float *A = (float *)c->wtile;
                c->launch_bytes = (double)W.row_bytes * nr;
                LAUNCH(c, agxc::dequant_f32(c->stream, W.type, W.d + (size_t)r0 * W.row_bytes, W.row_bytes, nr,
                                            W.n_cols, A),
                       "dequantize f32");
                GEMM(c,
                     cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, nr, n, W.n_cols, &one, A, W.n_cols,
                                 (const float *)c->xtile, W.n_cols, &zero, y + r0, y_ld),
                     "SGEMM");
            }
            return AGX_OK;
        }
    } else {
        LAUNCH(c, agxc::f32_to_f16(c->stream, x, c->xtile, (size_t)n * (size_t)W.n_cols), "f16 conversion");
    }
    for (int r0 = 0; r0 < W.n_rows; r0 += rows_per_tile) {
        const int nr = W.n_rows - r0 < rows_per_tile ? W.n_rows - r0 : rows_per_tile;
        const void *A = W.d + (size_t)r0 * W.row_bytes;
        if (W.type != 1 /* f16 weights are used in place */) {
            c->launch_bytes = (double)W.row_bytes * nr;
            LAUNCH(c, agxc::dequant_f16(c->stream, W.type, A, W.row_bytes, nr, W.n_cols, c->wtile), "dequantize");
            A = c->wtile;
        }
        c->launch_bytes = W.type == 1 ? (double)W.row_bytes * nr : 0;   /* f16 weights: read by the GEMM */
        GEMM(c,
             cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, nr, n, W.n_cols, &one, A, CUDA_R_16F, W.n_cols, c->xtile,
                          CUDA_R_16F, W.n_cols, &zero, y + r0, CUDA_R_32F, y_ld, CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT),
             "GEMM (f16)");
    }
    return AGX_OK;
}

/* y[i] = W[i] . x for cnt <= 3 matrices reading the same input (q/k/v,
 * gate/up): those on the 8-bit path share one launch per weight type (fewer
 * launches in the decode graph), the others go through matmul. */
agx_status matmul_set(CudaCtx *c, const char *role, const DevMat *const *W, int cnt, const float *x, int have, int n,
                      float *const *y, const int *y_ld, agx_error *err) {
    const RoleScope rs(c, role);
    bool done[agxc::MV_MATS] = {};
    for (int i = 0; i < cnt; i++) {
        if (done[i]) continue;
        const int f = agxc::act_format(W[i]->type);
        if (!f || !(have & f) || (n > MMV_MAX_TOKENS && c->gemm_mode == GEMM_MMA)) {
            agx_status st = matmul(c, role, *W[i], x, have, n, y[i], y_ld[i], err);
            if (st != AGX_OK) return st;
            done[i] = true;
            continue;
        }
        agxc::MatvecSet ms;
        c->launch_bytes = 0;
        for (int j = i; j < cnt; j++) {
            if (done[j] || W[j]->type != W[i]->type || W[j]->n_cols != W[i]->n_cols) continue;
            ms.W[ms.n] = W[j]->d, ms.row_bytes[ms.n] = W[j]->row_bytes, ms.n_rows[ms.n] = W[j]->n_rows;
            ms.y[ms.n] = y[j], ms.y_ld[ms.n] = y_ld[j];
            ms.n++;
            done[j] = true;
            c->launch_bytes += (double)W[j]->row_bytes * W[j]->n_rows;
        }
        LAUNCH(c,
               agxc::matvec_q8_set(c->stream, W[i]->type, ms, W[i]->n_cols, f == agxc::ACT_Q8_0 ? c->a0 : c->ak, n,
                                   c->mmv_unroll),
               "matvec (8-bit activations, fused)");
    }
    return AGX_OK;
}

/* Every layer for n tokens at position *d_pos (tokens already in d_tokens),
 * leaving the hidden states in c->x. Launch-only: also recorded into graphs. */
agx_status layers(CudaCtx *c, int n, agx_error *err) {
    const CudaWeights *w = c->w;
    agx_status st;
    LAUNCH(c,
           agxc::embed(c->stream, w->tok_embd.type, w->tok_embd.d, w->tok_embd.row_bytes, w->E, c->d_tokens, n, c->x),
           "embedding");
    for (int l = 0; l < w->n_layer; l++) {
        const DevLayer *L = &w->layers[l];
        uint8_t *kc = c->kcache + (size_t)l * c->kv_layer_bytes, *vc = c->vcache + (size_t)l * c->kv_layer_bytes;
        const int f_qkv = act_fmt(c, n, L->wq, &L->wk, &L->wv), f_o = act_fmt(c, n, L->wo),
                  f_gu = act_fmt(c, n, L->w_gate, &L->w_up), f_d = act_fmt(c, n, L->w_down);
        /* the previous layer's FFN residual (x += xb) is fused into this norm */
        LAUNCH(c,
               agxc::rmsnorm(c->stream, c->x, l ? c->xb : nullptr, L->attn_norm, c->xb, n, w->E, w->eps,
                             q8_out(c, f_qkv)),
               "residual+rmsnorm");
        {
            const DevMat *mats[3] = {&L->wq, &L->wk, &L->wv};
            float *y[3] = {c->q, c->k, c->v};
            const int ld[3] = {w->QD, w->KVD, w->KVD};
            if ((st = matmul_set(c, "q/k/v", mats, 3, c->xb, f_qkv, n, y, ld, err))) return st;
        }
        LAUNCH(c,
               agxc::qkv_rope_store(c->stream, c->q, c->k, c->v, L->bq, L->bk, L->bv, c->rope_cs, c->d_pos, n,
                                    w->n_head, w->n_head_kv, w->hd, w->n_rot, w->neox, kc, vc, c->kv_f32),
               "bias+rope+cache");
        LAUNCH(c,
               agxc::attention(c->stream, c->q, kc, vc, c->kv_f32, c->att, c->d_pos, n, w->n_head, w->n_head_kv, w->hd,
                               w->attn_scale, c->att_part),
               "attention");
        if (f_o) LAUNCH(c, agxc::quantize_act(c->stream, c->att, w->QD, n, q8_out(c, f_o)), "quantize");
        if ((st = matmul(c, "attn output", L->wo, c->att, f_o, n, c->xb, w->E, err))) return st;
        LAUNCH(c, agxc::rmsnorm(c->stream, c->x, c->xb, L->ffn_norm, c->xb, n, w->E, w->eps, q8_out(c, f_gu)),
               "residual+rmsnorm");
        {
            const DevMat *mats[2] = {&L->w_gate, &L->w_up};
            float *y[2] = {c->hb, c->hb2};
            const int ld[2] = {w->F, w->F};
            if ((st = matmul_set(c, "gate/up", mats, 2, c->xb, f_gu, n, y, ld, err))) return st;
        }
        if (f_d)
            LAUNCH(c, agxc::swiglu_q8(c->stream, c->hb, c->hb2, w->F, n, q8_out(c, f_d)), "swiglu");
        else
            LAUNCH(c, agxc::swiglu(c->stream, c->hb, c->hb2, (size_t)n * (size_t)w->F), "swiglu");
        if ((st = matmul(c, "ffn down", L->w_down, c->hb, f_d, n, c->xb, w->E, err))) return st;
    }
    /* the last FFN residual (the logits read row subsets of x) */
    if (w->n_layer > 0)
        LAUNCH(c, agxc::add_inplace(c->stream, c->x, c->xb, (size_t)n * (size_t)w->E), "residual add");
    return AGX_OK;
}

/* Final norm + output projection for rows [r0, r0+nr) of c->x into c->logits. */
agx_status logits_rows(CudaCtx *c, int r0, int nr, agx_error *err) {
    const CudaWeights *w = c->w;
    float *xr = c->x + (size_t)r0 * w->E;
    /* the norm goes to xb rows 0..nr (xb is free once the layers are done) */
    const int f = act_fmt(c, nr, w->output);
    LAUNCH(c, agxc::rmsnorm(c->stream, xr, nullptr, w->output_norm, c->xb, nr, w->E, w->eps, q8_out(c, f)),
           "output rmsnorm");
    return matmul(c, "output", w->output, c->xb, f, nr, c->logits, w->V, err);
}

/* One step of n <= MMV_MAX_TOKENS tokens as a graph: layers + the last row's
 * logits, recorded once per n (token ids and position are read from device
 * memory, so one graph serves every position). */
agx_status step_graph(CudaCtx *c, int n, agx_error *err) {
    cudaGraphExec_t *exec = &c->graph[n];
    if (*exec) {
        CU_TRY(cudaGraphLaunch(*exec, c->stream), "graph launch");
        return AGX_OK;
    }
    cudaGraph_t g = nullptr;
    CU_TRY(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "graph capture");
    agx_status st = layers(c, n, err);
    if (st == AGX_OK) st = logits_rows(c, n - 1, 1, err);
    const cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (st != AGX_OK) {
        if (g) cudaGraphDestroy(g);
        return st;
    }
    CU_TRY(e, "graph capture");
    const cudaError_t ie = cudaGraphInstantiate(exec, g, 0);
    cudaGraphDestroy(g);
    CU_TRY(ie, "graph instantiation");
    CU_TRY(cudaGraphLaunch(*exec, c->stream), "graph launch");
    return AGX_OK;
}

agx_status ctx_eval(void *state, const int32_t *tokens, int n_tokens, int n_past, bool all_logits, float *out,
                    agx_error *err) {
    CudaCtx *c = (CudaCtx *)state;
    const CudaWeights *w = c->w;
    if (n_tokens <= 0 || n_past < 0 || (int64_t)n_past + n_tokens > c->n_ctx)
        return agx_error_set(err, AGX_ERR_INFERENCE, "CUDA eval: %d tokens at position %d exceed the context of %d",
                             n_tokens, n_past, c->n_ctx);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= w->V)
            return agx_error_set(err, AGX_ERR_INFERENCE, "token id %d at index %d is outside the vocab (0..%d)",
                                 tokens[i], i, w->V - 1);
    CU_TRY(cudaSetDevice(c->device), "selecting the device");
    agx_status st;
    for (int done = 0; done < n_tokens;) {
        const int n = n_tokens - done < c->n_ubatch ? n_tokens - done : c->n_ubatch;
        const int pos = n_past + done;
        const int64_t t0 = c->prof ? agx_time_us() : 0;
        if (c->prof) c->prof->what.clear();   /* launches of a chunk that failed are not counted */
        CU_TRY(cudaMemcpyAsync(c->d_tokens, tokens + done, sizeof(int32_t) * (size_t)n, cudaMemcpyHostToDevice,
                               c->stream),
               "token upload");
        CU_TRY(cudaMemcpyAsync(c->d_pos, &pos, sizeof(int), cudaMemcpyHostToDevice, c->stream), "position upload");
        const bool last = done + n == n_tokens;
        /* decode (one token; its row is all the logits) and short forced spans whose
         * last logits are wanted: replay a graph instead of ~10 launches per layer */
        if (c->use_graph && n <= MMV_MAX_TOKENS && (n == 1 ? last || all_logits : last && !all_logits)) {
            if ((st = step_graph(c, n, err)) != AGX_OK) return st;
            CU_TRY(cudaMemcpyAsync(all_logits ? out + (size_t)done * w->V : out, c->logits,
                                   sizeof(float) * (size_t)w->V, cudaMemcpyDeviceToHost, c->stream),
                   "logits download");
        } else {
            if ((st = layers(c, n, err)) != AGX_OK) return st;
            if (all_logits || last) {
                const int first = all_logits ? 0 : n - 1;
                for (int r0 = first; r0 < n; r0 += LOGIT_ROWS) {
                    const int nr = n - r0 < LOGIT_ROWS ? n - r0 : LOGIT_ROWS;
                    if ((st = logits_rows(c, r0, nr, err)) != AGX_OK) return st;
                    float *dst = all_logits ? out + ((size_t)done + (size_t)r0) * w->V : out;
                    CU_TRY(cudaMemcpyAsync(dst, c->logits, sizeof(float) * (size_t)nr * w->V, cudaMemcpyDeviceToHost,
                                           c->stream),
                           "logits download");
                }
            }
        }
        /* the position lives in host memory: finish before the next chunk rewrites it */
        CU_TRY(cudaStreamSynchronize(c->stream), "running the forward pass");
        if (c->prof) prof_harvest(c->prof, (double)(agx_time_us() - t0) / 1000.0, n);
        done += n;
    }
    return AGX_OK;
}

size_t ctx_mem_used(const void *state) { return state ? ((const CudaCtx *)state)->bytes : 0; }

/* Copies the first n positions of every layer's K and V between the device
 * cache and buf ([layer][k, v][n][KVD], as the CPU context's export). */
agx_status kv_copy(CudaCtx *c, int n, void *buf, size_t len, bool to_host, agx_error *err) {
    const CudaWeights *w = c->w;
    const size_t row = (size_t)n * (size_t)w->KVD * (c->kv_f32 ? 4 : 2);
    const size_t need = 2 * (size_t)w->n_layer * row;
    if (n <= 0 || n > c->n_ctx || (to_host ? len < need : len != need))
        return agx_error_set(err, AGX_ERR_INFERENCE,
                             "KV %s of %d positions does not fit this CUDA context (%d positions, %zu bytes given, "
                             "%zu expected)",
                             to_host ? "export" : "import", n, c->n_ctx, len, need);
    CU_TRY(cudaSetDevice(c->device), "selecting the device");
    for (int l = 0; l < w->n_layer; l++)
        for (int w = 0; w < 2; w++) {
            uint8_t *dev = (w ? c->vcache : c->kcache) + (size_t)l * c->kv_layer_bytes;
            char *host = (char *)buf + (2 * (size_t)l + (size_t)w) * row;
            void *dst = to_host ? (void *)host : (void *)dev;
            const void *src = to_host ? (const void *)dev : (const void *)host;
            CU_TRY(cudaMemcpyAsync(dst, src, row, to_host ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice, c->stream),
                   "KV cache copy");
        }
    CU_TRY(cudaStreamSynchronize(c->stream), "KV cache copy");
    return AGX_OK;
}
agx_status ctx_kv_export(const void *state, int n, void *buf, size_t len, agx_error *err) {
    return kv_copy((CudaCtx *)state, n, buf, len, true, err);
}
agx_status ctx_kv_import(void *state, int n, const void *buf, size_t len, agx_error *err) {
    return kv_copy((CudaCtx *)state, n, (void *)buf, len, false, err);
}

/* in the order of agx_device_forward's members */
const agx_device_forward k_forward = {"cuda",   weights_create, weights_bytes, weights_destroy, ctx_create,
                                      ctx_eval, ctx_mem_used,  ctx_kv_export, ctx_kv_import,   ctx_destroy};

} // namespace

extern "C" const agx_device_forward *agx_cuda_forward(void) { return &k_forward; }

extern "C" agx_status agx_cuda_probe(agx_device_info *info, agx_error *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "%s", cudaGetErrorString(e));
    }
    if (n <= 0) return agx_error_set(err, AGX_ERR_UNAVAILABLE, "no CUDA-capable device is detected");
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
        cudaGetLastError();
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "cannot query device 0: %s", cudaGetErrorString(e));
    }
#ifndef AGX_CUDA_MIN_CC
#define AGX_CUDA_MIN_CC 70
#endif
    /* the oldest PTX this build carries (CMakeLists.txt: 7.0, or 7.5 with CUDA 13) */
    if (p.major * 10 + p.minor < AGX_CUDA_MIN_CC)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "%s has compute capability %d.%d; this build needs %d.%d or newer", p.name, p.major,
                             p.minor, AGX_CUDA_MIN_CC / 10, AGX_CUDA_MIN_CC % 10);
    info->kind = AGX_DEVICE_CUDA;
    info->index = 0;
    snprintf(info->name, sizeof info->name, "%.*s", (int)sizeof info->name - 1, p.name);
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->mem_total = p.totalGlobalMem;
    size_t fr = 0, tot = 0;
    if (cudaSetDevice(0) == cudaSuccess && cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
        info->mem_free = fr;
        info->mem_total = tot;
    } else {
        cudaGetLastError();
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "cannot create a context on %s", p.name);
    }
    return AGX_OK;
}
