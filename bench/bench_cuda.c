/* bench_cuda.c — prompt processing (pp) and generation (tg) tokens/s of the CUDA
 * forward pass, next to the CPU engine on the same file in the same run, as
 * `agx bench` measures them (context of p + n tokens, random token ids, median
 * of reps; tg starts from an empty cache). Goes through the device hook table
 * directly (model_device.h), so it works before agx_context is wired to it.
 * Also reports device memory (weights + KV + scratch) and the generation's
 * effective weight bandwidth (weight bytes x tokens/s).
 *
 * usage: bench_cuda -m MODEL [-p 512] [-n 128] [-r 3] [-t THREADS] [--cpu] [--cpu-reps N] [--json]
 *   --cpu: also run the CPU engine (same p/n; reps, or --cpu-reps) for the side-by-side figures.
 * In a build without CUDA or on a machine without a GPU it says so and exits 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/device.h"
#include "agx/gguf.h"
#include "agx/model.h"
#include "agx/util.h"
#include "engine/model_device.h"

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef agx_status (*eval_fn)(void *c, const int32_t *t, int n, int n_past, float *out, agx_error *err);

static agx_status gpu_eval(void *c, const int32_t *t, int n, int n_past, float *out, agx_error *err) {
    return agx_device_forward_get(AGX_DEVICE_CUDA)->eval(c, t, n, n_past, false, out, err);
}
static agx_status cpu_eval(void *c, const int32_t *t, int n, int n_past, float *out, agx_error *err) {
    agx_context_truncate(c, n_past);
    return agx_context_eval(c, t, n, false, out, err);
}

/* pp and tg medians over reps. */
static agx_status measure(eval_fn f, void *c, const int32_t *toks, int p, int n, int reps, float *logits, double *pp,
                          double *tg, agx_error *err) {
    double *a = calloc((size_t)reps, sizeof(double)), *b = calloc((size_t)reps, sizeof(double));
    agx_status st = AGX_OK;
    if (!a || !b) {
        st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = f(c, toks, p > 0 ? (p < 16 ? p : 16) : 1, 0, logits, err)) != AGX_OK) goto out;   /* warm-up */
    for (int r = 0; r < reps; r++) {
        if (p > 0) {
            const int64_t t0 = agx_time_us();
            if ((st = f(c, toks, p, 0, logits, err)) != AGX_OK) goto out;
            a[r] = (double)p * 1e6 / (double)(agx_time_us() - t0 + 1);
        }
        if (n > 0) {
            const int64_t t0 = agx_time_us();
            for (int i = 0; i < n; i++)
                if ((st = f(c, &toks[p + i], 1, i, logits, err)) != AGX_OK) goto out;
            b[r] = (double)n * 1e6 / (double)(agx_time_us() - t0 + 1);
        }
    }
    *pp = p > 0 ? median(a, reps) : 0;
    *tg = n > 0 ? median(b, reps) : 0;
out:
    free(a);
    free(b);
    return st;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int p = 512, n = 128, reps = 3, threads = 0, cpu_reps = 0;
    bool cpu = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) p = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cpu")) cpu = true;
        else if (!strcmp(argv[i], "--cpu-reps") && i + 1 < argc) cpu = true, cpu_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = true;
        else {
            fprintf(stderr, "usage: bench_cuda -m MODEL [-p 512] [-n 128] [-r 3] [-t THREADS] [--cpu] [--cpu-reps N] "
                            "[--json]\n");
            return 1;
        }
    }
    if (!path || p < 0 || n < 0 || p + n <= 0 || reps < 1 || p > (1 << 20) || n > (1 << 20) || reps > 1000 ||
        cpu_reps < 0 || cpu_reps > 1000) {
        fprintf(stderr, "bench_cuda: needs -m MODEL, p, n >= 0 (not both 0), reps >= 1\n");
        return 1;
    }
    agx_error err = {0};
    agx_device_info dev;
    if (agx_device_select("cuda", &dev, &err) != AGX_OK) {
        fprintf(stderr, "bench_cuda: %s\n", err.message);
        return 2;
    }
    const agx_device_forward *fw = agx_device_forward_get(AGX_DEVICE_CUDA);
    agx_gguf *g = NULL;
    agx_dev_model dm;
    void *gweights = NULL, *gctx = NULL;
    agx_model *m = NULL;
    agx_context *cctx = NULL;
    float *logits = NULL;
    int32_t *toks = NULL;
    int rc = 0;
    double gpp = 0, gtg = 0, cpp = 0, ctg = 0;
    memset(&dm, 0, sizeof dm);
    if (agx_gguf_open(path, &g, &err) != AGX_OK || agx_dev_model_from_gguf(g, &dm, &err) != AGX_OK) goto fail;
    if (dm.n_ctx_train > 0 && p + n > dm.n_ctx_train) {
        agx_error_set(&err, AGX_ERR_USAGE, "p + n = %d exceeds the model's context %d", p + n, dm.n_ctx_train);
        goto fail;
    }
    uint64_t weight_bytes = 0;
    for (size_t i = 0; i < agx_gguf_n_tensors(g); i++) weight_bytes += agx_gguf_tensor_at(g, i)->nbytes;
    const int64_t t_up = agx_time_us();
    if (fw->weights_create(&dm, &dev, &gweights, &err) != AGX_OK) goto fail;
    const double upload_s = (double)(agx_time_us() - t_up) / 1e6;
    if (fw->create(gweights, p + n, 512, AGX_KV_F16, &gctx, &err) != AGX_OK) goto fail;
    logits = malloc(sizeof(float) * (size_t)dm.n_vocab);
    toks = malloc(sizeof(int32_t) * (size_t)(p + n + 1));
    if (!logits || !toks) {
        agx_error_set(&err, AGX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint64_t r = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < p + n + 1; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        toks[i] = (int32_t)(r % (uint64_t)dm.n_vocab);
    }
    if (measure(gpu_eval, gctx, toks, p, n, reps, logits, &gpp, &gtg, &err) != AGX_OK) goto fail;
    const size_t dev_bytes = fw->weights_bytes(gweights) + fw->mem_used(gctx);
    fw->destroy(gctx);
    gctx = NULL;
    fw->weights_destroy(gweights);
    gweights = NULL;
    if (cpu) {
        agx_context_params cp = agx_context_default_params();
        cp.device = "cpu";   /* the CPU engine, whatever AGX_DEVICE says */
        cp.n_ctx = p + n;
        cp.n_threads = threads;
        if (agx_model_load(path, &m, &err) != AGX_OK || agx_context_create(m, &cp, &cctx, &err) != AGX_OK) goto fail;
        if (measure(cpu_eval, cctx, toks, p, n, cpu_reps ? cpu_reps : reps, logits, &cpp, &ctg, &err) != AGX_OK)
            goto fail;
    }
    char line[256];
    agx_device_describe(&dev, line, sizeof line);
    /* the GPU paths this run took (forward.cu reads the same variables) */
    const char *mmv = agx_env("AGX_CUDA_MMV") ? agx_env("AGX_CUDA_MMV") : "q8";
    const char *gemm = !strcmp(mmv, "f32") ? "f16" : agx_env("AGX_CUDA_GEMM") ? agx_env("AGX_CUDA_GEMM") : "q8";
    const char *upload = agx_env("AGX_CUDA_UPLOAD") ? agx_env("AGX_CUDA_UPLOAD") : "pinned";
    const double upload_gbps = upload_s > 0 ? (double)weight_bytes / upload_s / 1e9 : 0.0;
    if (json) {
        printf("{\"model\": \"%s\", \"device\": \"%s\", \"p\": %d, \"n\": %d, \"reps\": %d, \"weight_bytes\": %llu, "
               "\"gpu\": {\"pp_tokens_per_s\": %.2f, \"tg_tokens_per_s\": %.2f, \"device_bytes\": %zu, "
               "\"upload_s\": %.3f, \"upload_gbps\": %.2f, \"upload\": \"%s\", \"tg_weight_gbps\": %.1f, "
               "\"mmv\": \"%s\", \"gemm\": \"%s\"}",
               path, line, p, n, reps, (unsigned long long)weight_bytes, gpp, gtg, dev_bytes, upload_s, upload_gbps,
               upload, gtg * (double)weight_bytes / 1e9, mmv, gemm);
        if (cpu)
            printf(", \"cpu\": {\"pp_tokens_per_s\": %.2f, \"tg_tokens_per_s\": %.2f, \"threads\": %d}", cpp, ctg,
                   agx_context_n_threads(cctx));
        printf("}\n");
    } else {
        printf("model: %s (%.1f MB of weights)\ndevice: %s\n", path, (double)weight_bytes / 1e6, line);
        printf("GPU: %.1f MB on the device, upload %.2f s (%.2f GB/s, %s: AGX_CUDA_UPLOAD); matvec activations %s "
               "(AGX_CUDA_MMV), prompt path %s (AGX_CUDA_GEMM)\n",
               (double)dev_bytes / 1e6, upload_s, upload_gbps, upload, mmv, gemm);
        printf("%-8s %14s %14s %8s\n", "test", "gpu t/s", "cpu t/s", "ratio");
        if (p > 0) printf("pp%-6d %14.2f %14.2f %8.1f\n", p, gpp, cpp, cpp > 0 ? gpp / cpp : 0.0);
        if (n > 0) printf("tg%-6d %14.2f %14.2f %8.1f\n", n, gtg, ctg, ctg > 0 ? gtg / ctg : 0.0);
        printf("tg reads %.1f GB/s of weights on the GPU\n", gtg * (double)weight_bytes / 1e9);
    }
    goto done;
fail:
    fprintf(stderr, "bench_cuda: %s\n", err.message);
    rc = 1;
done:
    if (gctx) fw->destroy(gctx);
    if (gweights) fw->weights_destroy(gweights);
    agx_context_free(cctx);
    agx_model_free(m);
    agx_dev_model_free(&dm);
    agx_gguf_close(g);
    free(logits);
    free(toks);
    return rc;
}
