/* bench_tokenize.c — tokenizer throughput: encodes a text file (default
 * ref/tokenizer/bench-mixed-1mb.txt) with a model's tokenizer (default the
 * qwen2 vocab GGUF), specials parsed, no BOS, and prints the median MB/s.
 *   bench_tokenize [--model M.gguf | --json tokenizer.json] [--file F] [--runs N]
 * The HF tokenizers library gives 356,979 tokens on the default input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/tokenizer.h"
#include "agx/util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *ref = agx_env("AGX_REF_DIR");
    if (!ref) ref = "../shared/ref";
    char *model = agx_sprintf("%s/tokenizer/qwen2.vocab.gguf", ref);
    char *file = agx_sprintf("%s/tokenizer/bench-mixed-1mb.txt", ref);
    const char *json = NULL;
    int runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) { free(model); model = agx_strdup(argv[++i]); }
        else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) { free(file); file = agx_strdup(argv[++i]); }
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_tokenize [--model M.gguf | --json tokenizer.json] [--file F] [--runs N]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 100) runs = 5;
    agx_error err;
    agx_tokenizer *t = NULL;
    int64_t t0 = agx_time_us();
    agx_status st = json ? agx_tokenizer_load_json(json, &t, &err) : agx_tokenizer_load_for_model(model, NULL, &t, &err);
    if (st != AGX_OK) {
        fprintf(stderr, "bench_tokenize: %s\n", err.message);
        return 1;
    }
    double load_ms = (double)(agx_time_us() - t0) / 1000.0;
    char *text;
    size_t len;
    if (agx_file_read_all(file, 0, &text, &len, &err) != AGX_OK) {
        fprintf(stderr, "bench_tokenize: %s\n", err.message);
        return 1;
    }
    double *mbs = calloc((size_t)runs, sizeof *mbs);
    size_t ntok = 0;
    for (int r = 0; r < runs; r++) {
        int32_t *ids;
        int64_t a = agx_time_us();
        if (agx_tokenizer_encode(t, text, len, false, true, &ids, &ntok, &err) != AGX_OK) {
            fprintf(stderr, "bench_tokenize: %s\n", err.message);
            return 1;
        }
        int64_t b = agx_time_us();
        free(ids);
        mbs[r] = (double)len / 1e6 / ((double)(b - a) / 1e6);
    }
    qsort(mbs, (size_t)runs, sizeof *mbs, cmp_double);
    printf("tokenizer=%s (%s, pre=%s) load_ms=%.0f input=%s bytes=%zu tokens=%zu runs=%d "
           "median_MBps=%.2f min_MBps=%.2f max_MBps=%.2f\n",
           json ? json : model, agx_tokenizer_source(t), agx_tokenizer_pre_name(t), load_ms, file, len, ntok, runs,
           mbs[runs / 2], mbs[0], mbs[runs - 1]);
    free(mbs);
    free(text);
    free(model);
    free(file);
    agx_tokenizer_free(t);
    return 0;
}
