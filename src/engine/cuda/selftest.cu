/* selftest.cu — kernel-by-kernel check of the CUDA kernels against the CPU
 * engine's own ops on synthetic data (matvec and dequantize for every weight
 * type, embedding, RMSNorm, bias+RoPE+cache store in both pairings,
 * attention with GQA, SwiGLU), so that the first GPU run localises a bug to
 * one kernel. Called by tests/conformance/test_model_cuda.c when a GPU is
 * present (agx_cuda_selftest). Written without a GPU: UNVERIFIED until run. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "agx/ops.h"
#include "agx/quant.h"
#include "agx/util.h"
#include "engine/cuda/agx_cuda.h"
#include "engine/cuda/kernels.h"

namespace {

struct Rng {
    uint32_t s;
    float next() {   /* uniform in [-1, 1) */
        s = s * 1664525u + 1013904223u;
        return (float)(s >> 8) / 8388608.0f - 1.0f;
    }
};

/* Device buffers freed at the end of the self-test. */
struct Pool {
    std::vector<void *> p;
    ~Pool() {
        for (void *q : p) cudaFree(q);
    }
    template <typename T> T *up(const std::vector<T> &h) {
        void *d = nullptr;
        if (cudaMalloc(&d, h.size() * sizeof(T) + 16) != cudaSuccess) return nullptr;
        p.push_back(d);
        if (!h.empty() && cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
            return nullptr;
        return (T *)d;
    }
};

template <typename T> bool down(std::vector<T> &h, const T *d) {
    return cudaMemcpy(h.data(), d, h.size() * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess;
}

/* max |a-b| / (scale) over n; scale = max(max|b|, floor) */
double rel_err(const float *a, const float *b, size_t n, double floor_) {
    double mx = floor_, e = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e / mx;
}

struct Report {
    agx_strbuf *sb;
    int failures = 0;
    void check(const char *what, double err, double tol) {
        const bool ok = err <= tol;
        failures += !ok;
        agx_strbuf_printf(sb, "  %-34s rel err %.3g (tol %.0e) %s\n", what, err, tol, ok ? "ok" : "FAILED");
    }
    void fail(const char *what, const char *why) {
        failures++;
        agx_strbuf_printf(sb, "  %-34s FAILED: %s\n", what, why);
    }
};

/* Waits for the launch that returned e, downloads n floats of d and checks them against ref. */
void check_dev(Report &r, const char *what, cudaError_t e, const float *d, const float *ref, size_t n, double tol) {
    std::vector<float> g(n);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess || !down(g, d)) r.fail(what, cudaGetErrorString(e));
    else r.check(what, rel_err(g.data(), ref, n, 1.0), tol);
}

void test_types(Report &r, Rng &rng) {
    static const uint32_t types[] = {AGX_TYPE_F32,  AGX_TYPE_F16,  AGX_TYPE_BF16, AGX_TYPE_Q4_0, AGX_TYPE_Q4_1,
                                     AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0, AGX_TYPE_Q2_K, AGX_TYPE_Q3_K,
                                     AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K};
    const int rows = 67, cols = 512, nt = 3;
    std::vector<float> w((size_t)rows * cols), x((size_t)nt * cols);
    for (float &v : w) v = rng.next();
    for (float &v : x) v = rng.next();
    for (uint32_t type : types) {
        const agx_type_traits *tt = agx_type_traits_get(type);
        char what[96];
        const size_t rb = agx_type_row_size(type, cols);
        if (!tt->from_float_ref) {
            r.fail(tt->name, "the CPU engine has no quantizer for this type");
            continue;
        }
        std::vector<uint8_t> q(rb * rows);
        for (int i = 0; i < rows; i++) tt->from_float_ref(&w[(size_t)i * cols], &q[i * rb], cols);
        std::vector<float> deq((size_t)rows * cols), ref((size_t)nt * rows);
        for (int i = 0; i < rows; i++) tt->to_float(&q[i * rb], &deq[(size_t)i * cols], cols);
        for (int t = 0; t < nt; t++)
            for (int i = 0; i < rows; i++) {
                double s = 0;
                for (int k = 0; k < cols; k++) s += (double)deq[(size_t)i * cols + k] * x[(size_t)t * cols + k];
                ref[(size_t)t * rows + i] = (float)s;
            }
        Pool pool;
        const uint8_t *dq = pool.up(q);
        const float *dx = pool.up(x);
        float *dy = pool.up(std::vector<float>(ref.size()));
        std::vector<__half> hh((size_t)rows * cols);
        __half *dh = pool.up(hh);
        std::vector<int32_t> toks = {5, 0, 66};
        const int32_t *dt = pool.up(toks);
        float *de = pool.up(std::vector<float>((size_t)3 * cols));
        if (!dq || !dx || !dy || !dh || !dt || !de) {
            r.fail(tt->name, "cudaMalloc/cudaMemcpy failed");
            continue;
        }
        /* one token (the decode kernel) and a group of nt tokens (weights decoded once per group) */
        for (int n : {1, nt}) {
            snprintf(what, sizeof what, "matvec %s (%dx%d, %d token%s)", tt->name, rows, cols, n, n > 1 ? "s" : "");
            check_dev(r, what, agxc::matvec(nullptr, type, dq, rb, rows, cols, dx, n, dy, rows), dy, ref.data(),
                      (size_t)n * rows, 1e-4);
        }
        cudaError_t e;
        /* dequantize to f16 == f16(to_float) up to f16 rounding */
        e = agxc::dequant_f16(nullptr, type, dq, rb, rows, cols, dh);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        snprintf(what, sizeof what, "dequant_f16 %s", tt->name);
        if (e != cudaSuccess || !down(hh, (const __half *)dh)) r.fail(what, cudaGetErrorString(e));
        else {
            std::vector<float> hf(hh.size());
            for (size_t i = 0; i < hh.size(); i++) hf[i] = __half2float(hh[i]);
            r.check(what, rel_err(hf.data(), deq.data(), hf.size(), 1e-3), 1e-3);
        }
        /* dequantize to f32 == to_float, bit for bit (the decoders are exact) */
        {
            float *df = pool.up(std::vector<float>(deq.size()));
            std::vector<float> gf(deq.size());
            e = df ? agxc::dequant_f32(nullptr, type, dq, rb, rows, cols, df) : cudaErrorMemoryAllocation;
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            snprintf(what, sizeof what, "dequant_f32 %s", tt->name);
            if (e != cudaSuccess || !down(gf, (const float *)df)) r.fail(what, cudaGetErrorString(e));
            else r.check(what, rel_err(gf.data(), deq.data(), gf.size(), 1e-3), 0);
        }
        /* embedding rows 5, 0, 66 == to_float */
        e = agxc::embed(nullptr, type, dq, rb, cols, dt, 3, de);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        snprintf(what, sizeof what, "embed %s", tt->name);
        std::vector<float> eg((size_t)3 * cols), er((size_t)3 * cols);
        for (int i = 0; i < 3; i++) memcpy(&er[(size_t)i * cols], &deq[(size_t)toks[i] * cols], sizeof(float) * cols);
        if (e != cudaSuccess || !down(eg, (const float *)de)) r.fail(what, cudaGetErrorString(e));
        else r.check(what, rel_err(eg.data(), er.data(), eg.size(), 1e-3), 1e-6);
    }
}

/* 8-bit activations: the quantizer bit for bit against the CPU's from_float
 * (q8_0: act_q8_0, q8_K: quant_q8_K), through the standalone, rmsnorm-fused
 * and swiglu-fused kernels, and the q8 matvec against the CPU's own vec_dot on
 * the CPU-quantized activations. */
struct HostQ8 {
    std::vector<int8_t> qs;
    std::vector<float> d;   /* per 32 elements, as the device layout */
    std::vector<float> s;   /* q8_1's sum term per 32 elements (q8_0 format only) */
};
/* fmt's activations as the CPU quantizes them; with_sum: through act_q8_1 (the
 * same qs and d as act_q8_0, plus s) */
HostQ8 cpu_q8(int fmt, const std::vector<float> &x, int n, int nt, bool with_sum = false) {
    const uint32_t type = fmt == agxc::ACT_Q8_K ? AGX_TYPE_Q8_K : with_sum ? AGX_TYPE_Q8_1 : AGX_TYPE_Q8_0;
    const agx_type_traits *tt = agx_type_traits_get(type);
    const size_t rb = agx_type_row_size(type, n), bb = tt->type_size, bs = (size_t)tt->block_size;
    std::vector<uint8_t> q(rb);
    HostQ8 h;
    h.qs.resize((size_t)nt * n);
    h.d.resize((size_t)nt * (n / 32));
    if (with_sum) h.s.resize(h.d.size());
    for (int t = 0; t < nt; t++) {
        tt->from_float(&x[(size_t)t * n], q.data(), n);
        for (size_t b = 0; b < (size_t)n / bs; b++) {
            const uint8_t *blk = &q[b * bb];
            float d;
            const int8_t *qs;
            if (fmt == agxc::ACT_Q8_0) {
                uint16_t h16;
                memcpy(&h16, blk, 2);
                d = __half2float(__ushort_as_half(h16));
                qs = (const int8_t *)(blk + (with_sum ? 4 : 2));
                if (with_sum) {
                    memcpy(&h16, blk + 2, 2);
                    h.s[(size_t)t * (n / 32) + b] = __half2float(__ushort_as_half(h16));
                }
            } else {
                memcpy(&d, blk, 4);
                qs = (const int8_t *)(blk + 4);
            }
            memcpy(&h.qs[(size_t)t * n + b * bs], qs, bs);
            for (size_t k = 0; k < bs / 32; k++) h.d[(size_t)t * (n / 32) + b * (bs / 32) + k] = d;
        }
    }
    return h;
}
/* number of differing bytes of qs plus differing bits patterns of d (and of s
 * when both have it) */
size_t q8_diff(const HostQ8 &a, const std::vector<int8_t> &qs, const std::vector<float> &d,
               const std::vector<float> *s = nullptr) {
    size_t n = 0;
    for (size_t i = 0; i < qs.size(); i++) n += qs[i] != a.qs[i];
    for (size_t i = 0; i < d.size(); i++) n += memcmp(&d[i], &a.d[i], 4) != 0;
    if (s)
        for (size_t i = 0; i < s->size(); i++) n += memcmp(&(*s)[i], &a.s[i], 4) != 0;
    return n;
}

/* Weights wf (rows x n) quantized to `type` and activations x (nt x n) in its
 * 8-bit format, on the device, with the CPU's vec_dot of every pair as the
 * reference at ref[t*y_ld + row]. ok is false when an upload failed. */
/* the weight types of the 8-bit activation kernels */
const uint32_t k_q8_types[] = {AGX_TYPE_Q4_0, AGX_TYPE_Q4_1, AGX_TYPE_Q5_0, AGX_TYPE_Q5_1, AGX_TYPE_Q8_0,
                               AGX_TYPE_Q2_K, AGX_TYPE_Q3_K, AGX_TYPE_Q4_K, AGX_TYPE_Q5_K, AGX_TYPE_Q6_K};

struct QuantCase {
    size_t rb = 0;
    const uint8_t *dq = nullptr;
    agxc::Q8Act xq;
    std::vector<float> ref;
    bool ok = false;
};
QuantCase quant_case(Pool &pool, uint32_t type, const std::vector<float> &wf, const std::vector<float> &x, int n,
                     int rows, int nt, int y_ld) {
    const agx_type_traits *tt = agx_type_traits_get(type);
    const agx_type_traits *at = agx_type_traits_get(tt->vec_dot_type);
    QuantCase qc;
    qc.rb = agx_type_row_size(type, n);
    if (!tt->from_float_ref) return qc;   /* not ok: reported by the caller */
    const size_t ab = agx_type_row_size(tt->vec_dot_type, n);
    std::vector<uint8_t> q(qc.rb * rows), xa(ab * nt);
    for (int i = 0; i < rows; i++) tt->from_float_ref(&wf[(size_t)i * n], &q[i * qc.rb], n);
    for (int t = 0; t < nt; t++) at->from_float(&x[(size_t)t * n], &xa[t * ab], n);
    qc.ref.assign((size_t)nt * y_ld, 0.0f);
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < rows; i++) tt->vec_dot(n, &qc.ref[(size_t)t * y_ld + i], &q[i * qc.rb], &xa[t * ab]);
    const bool with_sum = agxc::needs_act_sum(type);
    const HostQ8 h = cpu_q8(agxc::act_format(type), x, n, nt, with_sum);
    qc.xq.qs = pool.up(h.qs);
    qc.xq.d = pool.up(h.d);
    if (with_sum) qc.xq.s = pool.up(h.s);
    qc.dq = pool.up(q);
    qc.ok = qc.xq.qs && qc.xq.d && qc.dq && (!with_sum || qc.xq.s);
    return qc;
}

void test_q8(Report &r, Rng &rng) {
    const int n = 512, nt = 3;
    /* activations with the quantizers' corner cases: an all-zero block, a
     * block whose largest |x| occurs twice with both signs (the first wins in
     * q8_K), values that land exactly on .5 after scaling (half-even), plus
     * a q8_K block whose extreme is negative */
    std::vector<float> x((size_t)nt * n);
    for (float &v : x) v = 2 * rng.next();
    for (int i = 0; i < 32; i++) x[64 + i] = 0.0f;
    x[300] = -3.0f, x[301] = 3.0f, x[310] = 3.0f;
    /* amax 15.875 (negative, so also the q8_K max): id = 8 and iscale = 8 exactly, and
     * x = m/8 + 1/16 lands on m + 0.5 */
    x[(size_t)n + 32] = -127.0f / 8;
    for (int i = 33; i < 64; i++) x[(size_t)n + i] = (float)((i % 16) - 8) * 0.125f + 0.0625f;
    x[(size_t)2 * n + 256] = -7.5f;
    Pool pool;
    const float *dx = pool.up(x);
    char what[96];
    for (int fmt : {(int)agxc::ACT_Q8_0, (int)agxc::ACT_Q8_K}) {
        const char *fname = fmt == agxc::ACT_Q8_0 ? "q8_0" : "q8_K";
        /* q8_0 activations also carry q8_1's sums (checked bit for bit too) */
        const bool sums = fmt == agxc::ACT_Q8_0;
        const HostQ8 ref = cpu_q8(fmt, x, n, nt, sums);
        agxc::Q8Out o;
        o.fmt = fmt;
        agxc::Q8Act &qa = fmt == agxc::ACT_Q8_0 ? o.q0 : o.qk;
        qa.qs = pool.up(std::vector<int8_t>(ref.qs.size()));
        qa.d = pool.up(std::vector<float>(ref.d.size()));
        if (sums) qa.s = pool.up(std::vector<float>(ref.d.size()));
        __half *dh = pool.up(std::vector<__half>(x.size()));
        if (!dx || !qa.qs || !qa.d || !dh || (sums && !qa.s)) {
            r.fail(fname, "cudaMalloc/cudaMemcpy failed");
            continue;
        }
        std::vector<int8_t> gq(ref.qs.size());
        std::vector<float> gd(ref.d.size()), gs(ref.s.size());
        /* downloads the quantizer's output (qs, d, s) */
        auto fetch = [&]() {
            return down(gq, (const int8_t *)qa.qs) && down(gd, (const float *)qa.d) &&
                   (!sums || down(gs, (const float *)qa.s));
        };
        cudaError_t e = agxc::quantize_act(nullptr, dx, n, nt, o);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        snprintf(what, sizeof what, "quantize %s%s (bit-exact)", fname, sums ? " + sums" : "");
        if (e != cudaSuccess || !fetch()) r.fail(what, cudaGetErrorString(e));
        else r.check(what, (double)q8_diff(ref, gq, gd, sums ? &gs : nullptr), 0);
        /* quantize -> dequantize as f16 (the prompt GEMM's activations) */
        agxc::Q8Out oh;
        oh.h16 = dh;
        oh.h16_fmt = fmt;
        std::vector<__half> gh(x.size());
        e = agxc::quantize_act(nullptr, dx, n, nt, oh);
        if (e == cudaSuccess) e = cudaDeviceSynchronize();
        snprintf(what, sizeof what, "quantize %s -> f16", fname);
        if (e != cudaSuccess || !down(gh, (const __half *)dh)) r.fail(what, cudaGetErrorString(e));
        else {
            size_t bad = 0;
            for (size_t i = 0; i < gh.size(); i++) {
                const __half want = __float2half_rn((float)ref.qs[i] * ref.d[i / 32]);
                bad += __half_as_ushort(gh[i]) != __half_as_ushort(want);
            }
            r.check(what, (double)bad, 0);
        }
        /* fused into rmsnorm (out = norm(x)) and swiglu (g = silu(g)*u): the
         * quantization of the f32 the kernel wrote equals the CPU's of it */
        std::vector<float> w(n, 1.0f);
        for (float &v : w) v = 1 + 0.1f * rng.next();
        float *dw = pool.up(w), *dx2 = pool.up(x), *dout = pool.up(std::vector<float>(x.size()));
        std::vector<float> u((size_t)nt * n);
        for (float &v : u) v = rng.next();
        float *dg = pool.up(x), *du = pool.up(u);
        if (!dw || !dx2 || !dout || !dg || !du) {
            r.fail(fname, "cudaMalloc failed");
            continue;
        }
        for (int which = 0; which < 2; which++) {
            std::vector<float> gout(x.size());
            e = which == 0 ? agxc::rmsnorm(nullptr, dx2, nullptr, dw, dout, nt, n, 1e-6f, o)
                           : agxc::swiglu_q8(nullptr, dg, du, n, nt, o);
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            snprintf(what, sizeof what, "%s + %s (bit-exact)", which == 0 ? "rmsnorm" : "swiglu", fname);
            if (e != cudaSuccess || !down(gout, which == 0 ? (const float *)dout : (const float *)dg) || !fetch()) {
                r.fail(what, cudaGetErrorString(e));
                continue;
            }
            r.check(what, (double)q8_diff(cpu_q8(fmt, gout, n, nt, sums), gq, gd, sums ? &gs : nullptr), 0);
        }
    }
    /* q8 matvec vs the CPU's vec_dot on CPU-quantized activations */
    const int rows = 67;
    std::vector<float> wf((size_t)rows * n);
    for (float &v : wf) v = rng.next();
    for (uint32_t type : k_q8_types) {
        const agx_type_traits *tt = agx_type_traits_get(type);
        const QuantCase qc = quant_case(pool, type, wf, x, n, rows, nt, rows);
        const size_t rb = qc.rb;
        const uint8_t *dq = qc.dq;
        const agxc::Q8Act xq = qc.xq;
        const std::vector<float> &ref = qc.ref;
        float *dy = pool.up(std::vector<float>(ref.size()));
        if (!qc.ok || !dy) {
            r.fail(tt->name, "cudaMalloc/cudaMemcpy failed");
            continue;
        }
        for (int nn : {1, nt}) {
            snprintf(what, sizeof what, "matvec_q8 %s (%dx%d, %d token%s)", tt->name, rows, n, nn, nn > 1 ? "s" : "");
            check_dev(r, what, agxc::matvec_q8(nullptr, type, dq, rb, rows, n, xq, nn, dy, rows), dy, ref.data(),
                      (size_t)nn * rows, 1e-5);
        }
        /* decode without the unrolled loads: the same bits */
        {
            std::vector<float> g4((size_t)rows);
            cudaError_t e = agxc::matvec_q8(nullptr, type, dq, rb, rows, n, xq, 1, dy, rows, agxc::MV_UNROLL);
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            snprintf(what, sizeof what, "matvec_q8 %s unroll 1 = %d", tt->name, (int)agxc::MV_UNROLL);
            if (e != cudaSuccess || !down(g4, (const float *)dy)) r.fail(what, cudaGetErrorString(e));
            else   /* tolerance 0: the same floats */
                check_dev(r, what, agxc::matvec_q8(nullptr, type, dq, rb, rows, n, xq, 1, dy, rows, 1), dy, g4.data(),
                          g4.size(), 0);
        }
        /* the same rows as three matrices in one launch (q/k/v): rows 0..29, 30..36, 37..66 */
        {
            const int r0[3] = {0, 30, 37}, nr[3] = {30, 7, 30};
            agxc::MatvecSet ms;
            float *ys[3];
            for (int i = 0; i < 3; i++) {
                ys[i] = pool.up(std::vector<float>((size_t)nt * nr[i]));
                ms.W[i] = dq + (size_t)r0[i] * rb, ms.row_bytes[i] = rb, ms.n_rows[i] = nr[i];
                ms.y[i] = ys[i], ms.y_ld[i] = nr[i];
            }
            ms.n = 3;
            cudaError_t e = ys[0] && ys[1] && ys[2] ? agxc::matvec_q8_set(nullptr, type, ms, n, xq, nt)
                                                    : cudaErrorMemoryAllocation;
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            snprintf(what, sizeof what, "matvec_q8 %s, 3 matrices, 1 launch", tt->name);
            std::vector<float> g(ref.size());
            for (int i = 0; i < 3 && e == cudaSuccess; i++) {
                std::vector<float> gi((size_t)nt * nr[i]);
                if (!down(gi, (const float *)ys[i])) e = cudaErrorInvalidValue;
                for (int t = 0; t < nt; t++)
                    for (int k = 0; k < nr[i]; k++) g[(size_t)t * rows + r0[i] + k] = gi[(size_t)t * nr[i] + k];
            }
            if (e != cudaSuccess) r.fail(what, cudaGetErrorString(e));
            else r.check(what, rel_err(g.data(), ref.data(), g.size(), 1.0), 1e-5);
        }
    }
}

/* The tensor-core prompt kernel (AGX_CUDA_GEMM=mma) against the CPU's vec_dot:
 * 67 rows and 37 tokens (a full and a partial tile each way), 512 columns (two
 * K steps) and, for the 32-element block types, 288 (a partial K step). On a
 * GPU of cc >= 8.0 this also checks the mma register layout. */
void test_mma(Report &r, Rng &rng) {
    const int rows = 67, nt = 37;
    char what[128];
    Pool pool;
    for (uint32_t type : k_q8_types) {
        const agx_type_traits *tt = agx_type_traits_get(type);
        const agx_type_traits *at = agx_type_traits_get(tt->vec_dot_type);
        for (int n : {512, 288}) {
            if (n % tt->block_size || n % at->block_size) continue;   /* K-quants: 256-element blocks */
            std::vector<float> wf((size_t)rows * n), x((size_t)nt * n);
            for (float &v : wf) v = rng.next();
            for (float &v : x) v = 2 * rng.next();
            const int y_ld = rows + 5;   /* a y row stride wider than the rows, as q/k/v slices use */
            const QuantCase qc = quant_case(pool, type, wf, x, n, rows, nt, y_ld);
            float *dy = pool.up(std::vector<float>(qc.ref.size(), 0.0f));
            snprintf(what, sizeof what, "matmul_mma %s (%dx%d, %d tokens)", tt->name, rows, n, nt);
            if (!qc.ok || !dy) {
                r.fail(what, "cudaMalloc/cudaMemcpy failed");
                continue;
            }
            check_dev(r, what, agxc::matmul_mma(nullptr, type, qc.dq, qc.rb, rows, n, qc.xq, nt, dy, y_ld), dy,
                      qc.ref.data(), qc.ref.size(), 1e-5);
        }
    }
}

void test_rows(Report &r, Rng &rng) {
    const int n = 3, E = 896;
    std::vector<float> x((size_t)n * E), add((size_t)n * E), w(E);
    for (float &v : x) v = 3 * rng.next();
    for (float &v : add) v = rng.next();
    for (float &v : w) v = 1 + 0.1f * rng.next();
    std::vector<float> ref((size_t)n * E), xs(x);
    for (size_t i = 0; i < xs.size(); i++) xs[i] += add[i];
    for (int t = 0; t < n; t++) agx_rmsnorm(&ref[(size_t)t * E], &xs[(size_t)t * E], w.data(), E, 1e-6f);
    Pool pool;
    float *dx = pool.up(x), *da = pool.up(add), *dw = pool.up(w), *dout = pool.up(std::vector<float>(ref.size()));
    std::vector<float> got(ref.size()), gx(x.size());
    cudaError_t e =
        dx && da && dw && dout ? agxc::rmsnorm(nullptr, dx, da, dw, dout, n, E, 1e-6f) : cudaErrorMemoryAllocation;
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess || !down(got, (const float *)dout) || !down(gx, (const float *)dx))
        r.fail("rmsnorm (+residual)", cudaGetErrorString(e));
    else {
        r.check("rmsnorm (+residual)", rel_err(got.data(), ref.data(), got.size(), 1.0), 1e-5);
        r.check("rmsnorm residual x += add", rel_err(gx.data(), xs.data(), gx.size(), 1.0), 1e-6);
    }
    /* swiglu */
    std::vector<float> g((size_t)n * E), u((size_t)n * E), sref((size_t)n * E);
    for (float &v : g) v = 4 * rng.next();
    for (float &v : u) v = rng.next();
    agx_swiglu(sref.data(), g.data(), u.data(), (int64_t)g.size());
    float *dg = pool.up(g), *du = pool.up(u);
    e = dg && du ? agxc::swiglu(nullptr, dg, du, g.size()) : cudaErrorMemoryAllocation;
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess || !down(g, (const float *)dg)) r.fail("swiglu", cudaGetErrorString(e));
    else r.check("swiglu", rel_err(g.data(), sref.data(), g.size(), 1.0), 1e-5);
}

/* bias + rope + cache store, then attention over the cache, vs ops.c. */
void test_attention(Report &r, Rng &rng, agx_rope_style style) {
    const int nh = 4, nkv = 2, hd = 64, n_rot = 64, n_ctx = 16, pos0 = 7, nt = 5;
    const int qd = nh * hd, kvd = nkv * hd;
    const agx_rope_params rp = {style, n_rot, 10000.0f, 1.0f, nullptr};
    std::vector<float> cs((size_t)n_ctx * n_rot);
    for (int p = 0; p < n_ctx; p++) agx_rope_cache(&rp, p, &cs[(size_t)p * n_rot]);
    /* cache rows 0..pos0-1 random (earlier tokens), then nt new tokens through k_qkv */
    std::vector<float> kc((size_t)n_ctx * kvd, 0.0f), vc((size_t)n_ctx * kvd, 0.0f);
    for (int i = 0; i < pos0 * kvd; i++) kc[i] = rng.next(), vc[i] = rng.next();
    std::vector<float> q((size_t)nt * qd), k((size_t)nt * kvd), v((size_t)nt * kvd), bq(qd), bk(kvd), bv(kvd);
    for (float &x : q) x = rng.next();
    for (float &x : k) x = rng.next();
    for (float &x : v) x = rng.next();
    for (float &x : bq) x = 0.1f * rng.next();
    for (float &x : bk) x = 0.1f * rng.next();
    for (float &x : bv) x = 0.1f * rng.next();
    /* CPU reference */
    std::vector<float> rq(q), rk(k), rv(v), rkc(kc), rvc(vc), ratt((size_t)nt * qd);
    for (int t = 0; t < nt; t++) {
        for (int i = 0; i < qd; i++) rq[(size_t)t * qd + i] += bq[i];
        for (int i = 0; i < kvd; i++) rk[(size_t)t * kvd + i] += bk[i], rv[(size_t)t * kvd + i] += bv[i];
        agx_rope_apply(&rp, &cs[(size_t)(pos0 + t) * n_rot], &rq[(size_t)t * qd], nh, hd);
        agx_rope_apply(&rp, &cs[(size_t)(pos0 + t) * n_rot], &rk[(size_t)t * kvd], nkv, hd);
        memcpy(&rkc[(size_t)(pos0 + t) * kvd], &rk[(size_t)t * kvd], sizeof(float) * kvd);
        memcpy(&rvc[(size_t)(pos0 + t) * kvd], &rv[(size_t)t * kvd], sizeof(float) * kvd);
    }
    agx_attn_params ap = {};
    ap.n_head = nh, ap.n_head_kv = nkv, ap.head_dim = hd, ap.kv_type = AGX_KV_F32;
    ap.k = rkc.data(), ap.v = rvc.data(), ap.scale = 1.0f / sqrtf((float)hd);
    agx_attention(nullptr, &ap, rq.data(), nt, pos0, ratt.data());
    /* GPU */
    Pool pool;
    std::vector<int> pos = {pos0};
    float *dq = pool.up(q), *dk = pool.up(k), *dv = pool.up(v), *dbq = pool.up(bq), *dbk = pool.up(bk),
          *dbv = pool.up(bv), *dcs = pool.up(cs), *dkc = pool.up(kc), *dvc = pool.up(vc),
          *datt = pool.up(std::vector<float>(ratt.size()));
    int *dpos = pool.up(pos);
    /* split attention (flash-decoding): nt*nh = 20 blocks -> 13 splits of the <= 12 positions,
     * so some splits are empty */
    const int n_split = agxc::attention_splits(nh, nt);
    float *dpart = pool.up(std::vector<float>(agxc::attention_scratch_floats(nh, hd, nt) + 1));
    const char *name = style == AGX_ROPE_NEOX ? "neox" : "normal";
    char what[96];
    if (!dq || !dk || !dv || !dbq || !dbk || !dbv || !dcs || !dkc || !dvc || !datt || !dpos || !dpart) {
        r.fail("attention", "cudaMalloc/cudaMemcpy failed");
        return;
    }
    cudaError_t e = agxc::qkv_rope_store(nullptr, dq, dk, dv, dbq, dbk, dbv, dcs, dpos, nt, nh, nkv, hd, n_rot,
                                         style == AGX_ROPE_NEOX, dkc, dvc, true);
    if (e == cudaSuccess)
        e = agxc::attention(nullptr, dq, dkc, dvc, true, datt, dpos, nt, nh, nkv, hd, ap.scale, nullptr);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    std::vector<float> gq(q.size()), gkc(kc.size()), gatt(ratt.size()), gsplit(ratt.size());
    if (e == cudaSuccess && !down(gatt, (const float *)datt)) e = cudaErrorInvalidValue;
    if (e == cudaSuccess)
        e = agxc::attention(nullptr, dq, dkc, dvc, true, datt, dpos, nt, nh, nkv, hd, ap.scale, dpart);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    snprintf(what, sizeof what, "bias+rope %s: q", name);
    if (e != cudaSuccess || !down(gq, (const float *)dq) || !down(gkc, (const float *)dkc) ||
        !down(gsplit, (const float *)datt)) {
        r.fail(what, cudaGetErrorString(e));
        return;
    }
    r.check(what, rel_err(gq.data(), rq.data(), gq.size(), 1.0), 1e-6);
    snprintf(what, sizeof what, "bias+rope %s: k cache", name);
    r.check(what, rel_err(gkc.data(), rkc.data(), gkc.size(), 1.0), 1e-6);
    snprintf(what, sizeof what, "attention %s (gqa %d/%d, %d tok)", name, nh, nkv, nt);
    r.check(what, rel_err(gatt.data(), ratt.data(), gatt.size(), 1.0), 1e-5);
    snprintf(what, sizeof what, "attention %s, %d splits", name, n_split);
    if (n_split < 2) r.fail(what, "the shape no longer splits: pick one that does");
    else r.check(what, rel_err(gsplit.data(), ratt.data(), gsplit.size(), 1.0), 1e-5);
    /* f16 cache: store + attention against the CPU's f16 cache (split, as in decode) */
    std::vector<uint16_t> hk((size_t)n_ctx * kvd), hv((size_t)n_ctx * kvd);
    agx_kv_store(AGX_KV_F16, hk.data(), kc.data(), (int64_t)kc.size());   /* old rows; new rows from the kernel */
    agx_kv_store(AGX_KV_F16, hv.data(), vc.data(), (int64_t)vc.size());
    std::vector<uint16_t> rhk(hk.size()), rhv(hv.size());
    agx_kv_store(AGX_KV_F16, rhk.data(), rkc.data(), (int64_t)rkc.size());
    agx_kv_store(AGX_KV_F16, rhv.data(), rvc.data(), (int64_t)rvc.size());
    ap.kv_type = AGX_KV_F16, ap.k = rhk.data(), ap.v = rhv.data();
    agx_attention(nullptr, &ap, rq.data(), nt, pos0, ratt.data());
    uint16_t *dhk = pool.up(hk), *dhv = pool.up(hv);
    float *dq2 = pool.up(q), *dk2 = pool.up(k), *dv2 = pool.up(v);
    if (!dhk || !dhv || !dq2 || !dk2 || !dv2) {
        r.fail("attention f16", "cudaMalloc failed");
        return;
    }
    e = agxc::qkv_rope_store(nullptr, dq2, dk2, dv2, dbq, dbk, dbv, dcs, dpos, nt, nh, nkv, hd, n_rot,
                             style == AGX_ROPE_NEOX, dhk, dhv, false);
    if (e == cudaSuccess)
        e = agxc::attention(nullptr, dq2, dhk, dhv, false, datt, dpos, nt, nh, nkv, hd, ap.scale, dpart);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    std::vector<uint16_t> ghk(hk.size());
    snprintf(what, sizeof what, "f16 cache store %s", name);
    if (e != cudaSuccess || !down(ghk, (const uint16_t *)dhk) || !down(gatt, (const float *)datt)) {
        r.fail(what, cudaGetErrorString(e));
        return;
    }
    int diff = 0;
    for (size_t i = 0; i < ghk.size(); i++) diff += ghk[i] != rhk[i];
    r.check(what, (double)diff / (double)ghk.size(), 0.01);   /* fraction of halves not bit-equal */
    snprintf(what, sizeof what, "attention f16 KV %s", name);
    r.check(what, rel_err(gatt.data(), ratt.data(), gatt.size(), 1.0), 1e-3);
}

} // namespace

extern "C" agx_status agx_cuda_selftest(char **report, agx_error *err) {
    *report = nullptr;
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    Report r;
    r.sb = &sb;
    Rng rng = {42};
    if (cudaSetDevice(0) != cudaSuccess) {
        agx_strbuf_free(&sb);
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "CUDA self-test: no device");
    }
    test_types(r, rng);
    test_rows(r, rng);
    test_q8(r, rng);
    test_mma(r, rng);
    test_attention(r, rng, AGX_ROPE_NORMAL);
    test_attention(r, rng, AGX_ROPE_NEOX);
    const int failures = r.failures;
    *report = agx_strbuf_take(&sb);
    if (failures)
        return agx_error_set(err, AGX_ERR_ENGINE, "CUDA self-test: %d check(s) failed (see the report)", failures);
    return AGX_OK;
}
