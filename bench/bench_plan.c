/* bench_plan.c — end-to-end native planning: model load, a 7-task `plan add`
 * cold (empty KV cache) and warm (same system prompt cached), time to first
 * token, tokens/s, forced share, and the grammar's per-token cost against
 * unconstrained decoding (agx_native_bench_grammar).
 *
 *   bench_plan MODEL.gguf [--threads N] [--runs N] [--tokens N]
 *
 * With random-weight models the plan is written by following a fixed 7-task
 * plan as the guide (the sampler and every grammar check still run), so the
 * timing is that of a model that writes that plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/device.h"
#include "agx/model.h"
#include "agx/native.h"
#include "agx/util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n ? v[n / 2] : 0;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 2, runs = 3, tokens = 32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: bench_plan MODEL.gguf [--threads N] [--runs N] [--tokens N]\n");
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: bench_plan MODEL.gguf [--threads N] [--runs N] [--tokens N]\n");
        return 2;
    }
    if (runs < 1) runs = 1;
    if (runs > 20) runs = 20;
    agx_error err;
    agx_registry reg;
    if (agx_registry_builtin(&reg, &err) != AGX_OK) {
        fprintf(stderr, "bench_plan: %s\n", err.message);
        return 1;
    }
    agx_native_params p = {.n_ctx = 4096, .n_threads = threads};
    agx_native_engine *e = NULL;
    int64_t t0 = agx_time_us();
    if (agx_native_engine_open(path, &p, &e, &err) != AGX_OK) {
        fprintf(stderr, "bench_plan: %s\n", err.message);
        agx_registry_free(&reg);
        return 1;
    }
    double load_ms = (double)(agx_time_us() - t0) / 1000.0;
    printf("model: %s\n  %s, %d threads, load (mmap + tokenizer + token trie + context) %.0f ms\n",
           path, agx_model_desc(agx_native_engine_model(e)), agx_native_engine_threads(e), load_ms);
    {
        const agx_context *c = agx_native_engine_context(e);
        char line[256];
        printf("  device: %s", agx_device_describe(agx_context_device(c), line, sizeof line));
        if (agx_context_device_bytes(c)) printf(", %.1f MB used by the context", (double)agx_context_device_bytes(c) / 1e6);
        printf("\n");
    }

    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    double cold[20], warm[20], ttft_cold[20], ttft_warm[20], tps[20];
    agx_gen_stats st;
    int rc = 0;
    for (int r = 0; r < runs && rc == 0; r++) {
        for (int k = 0; k < 2 && rc == 0; k++) {
            if (k == 0) agx_native_engine_reset_cache(e);
            agx_gen_options o = agx_gen_default_options();
            o.sampler.seed = (uint64_t)(r + 1);
            o.guide = agx_native_sample_plan;
            agx_generated_plan gp;
            const char *instr = k == 0 ? "find all TODO comments in the C files under src and show "
                                         "the 10 files with the most"
                                       : "find all TODO comments in the C files under src and show "
                                         "the 10 files with the fewest";
            if (agx_native_plan(e, AGX_ROLE_ECHO, instr, &ctx, &o, &gp, &st, &err) != AGX_OK) {
                fprintf(stderr, "bench_plan: %s\n", err.message);
                rc = 1;
                break;
            }
            if (gp.plan.n_tasks != 7) {
                fprintf(stderr, "bench_plan: the plan has %zu tasks, expected 7\n", gp.plan.n_tasks);
                rc = 1;
            }
            agx_generated_plan_free(&gp);
            (k == 0 ? cold : warm)[r] = st.total_ms;
            (k == 0 ? ttft_cold : ttft_warm)[r] = st.ttft_ms;
            if (k == 1) tps[r] = st.tokens_per_s;
            printf("  run %d %s: prompt %lld tokens (%lld reused), prefill %.0f ms, ttft %.0f ms, "
                   "%lld tokens (%lld sampled, %lld forced) in %.0f ms after it = %.1f tok/s, "
                   "mask %.2f ms, total %.0f ms\n",
                   r + 1, k == 0 ? "cold" : "warm", (long long)st.prompt_tokens,
                   (long long)st.reused_tokens, st.prefill_ms, st.ttft_ms,
                   (long long)st.generated_tokens, (long long)st.sampled_tokens,
                   (long long)st.forced_tokens, st.total_ms - st.ttft_ms, st.tokens_per_s,
                   st.mask_ms, st.total_ms);
        }
    }
    if (rc == 0) {
        printf("plan add, 7 tasks, %d runs (medians):\n", runs);
        printf("  cold (empty cache): %.0f ms, time to first token %.0f ms; + load %.0f ms = %.0f ms "
               "for a fresh `agx plan add`\n",
               median(cold, runs), median(ttft_cold, runs), load_ms, median(cold, runs) + load_ms);
        printf("  warm (prompt prefix cached): %.0f ms, time to first token %.0f ms, %.1f tok/s\n",
               median(warm, runs), median(ttft_warm, runs), median(tps, runs));
        /* a fresh process with the prompt cache: the previous call left the file */
        char dir[] = "/tmp/agx-bench-pcache-XXXXXX";
        if (mkdtemp(dir)) {
            double fresh_total = 0, fresh_load = 0, fresh_ttft = 0;
            for (int k = 0; k < 2 && rc == 0; k++) {
                agx_native_params pc = p;
                pc.prompt_cache_dir = dir;
                agx_native_engine *f = NULL;
                int64_t tl = agx_time_us();
                if (agx_native_engine_open(path, &pc, &f, &err) != AGX_OK) {
                    fprintf(stderr, "bench_plan: %s\n", err.message);
                    rc = 1;
                    break;
                }
                double lms = (double)(agx_time_us() - tl) / 1000.0;
                agx_gen_options o = agx_gen_default_options();
                o.sampler.seed = 1;
                o.guide = agx_native_sample_plan;
                agx_generated_plan gp;
                const char *instr = k == 0 ? "count the TODO comments per C file under src"
                                           : "list the 10 C files under src with the most TODOs";
                if (agx_native_plan(f, AGX_ROLE_ECHO, instr, &ctx, &o, &gp, &st, &err) != AGX_OK) {
                    fprintf(stderr, "bench_plan: %s\n", err.message);
                    rc = 1;
                } else {
                    agx_generated_plan_free(&gp);
                }
                fresh_total = st.total_ms;
                fresh_load = lms;
                fresh_ttft = st.ttft_ms;
                agx_native_engine_free(f);
            }
            char cmd[128];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "bench_plan: could not remove %s\n", dir);
            if (rc == 0)
                printf("  fresh process with the prompt cache file (%lld of %lld prompt tokens "
                       "reused): load %.0f ms + plan %.0f ms (first token %.0f ms) = %.0f ms\n",
                       (long long)st.reused_tokens, (long long)st.prompt_tokens, fresh_load,
                       fresh_total, fresh_ttft, fresh_load + fresh_total);
        }
        agx_native_bench b;
        if (rc == 0 && agx_native_bench_grammar(e, tokens, &b, &err) != AGX_OK) {
            fprintf(stderr, "bench_plan: %s\n", err.message);
            rc = 1;
        } else if (rc == 0) {
            printf("grammar (vocab %lld):\n", (long long)b.n_vocab);
            printf("  unconstrained decode: %.2f ms/token (%d tokens)\n",
                   b.unconstrained_ms_per_token, b.n_tokens);
            printf("  constrained plan: %.2f ms/token over %lld tokens, %.0f%% forced\n",
                   b.constrained_ms_per_token, (long long)b.plan_tokens, b.forced_share * 100);
            printf("  grammar work per sampled token: %.3f ms = %.2f%% of an unconstrained token\n",
                   b.mask_ms_per_token, b.mask_share * 100);
            printf("  one full-vocabulary mask (inside a string): %.3f ms = %.2f%% of a token "
                   "(worst case: every pick refused)\n",
                   b.full_mask_ms, b.full_mask_share * 100);
        }
    }
    agx_native_engine_free(e);
    agx_registry_free(&reg);
    return rc;
}
