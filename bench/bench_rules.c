/* bench_rules.c — how long the rules planner takes: backend creation (compiling
 * its phrase tables) and one plan per instruction, as medians over repetitions.
 *   build/bench_rules [REPS]        (default 200) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

static const char *const instructions[] = {
    "find all TODO comments under src and count them per file",
    "show the first 20 lines",
    "show the 10 most frequent client IPs",
    "count lines in all .c files under src",
    "replace foo with bar in notes.txt",
    "sort data.txt by the second column numerically",
    "extract email addresses from contacts.txt",
    "make me a sandwich",
};

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median(int64_t *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    return v[n / 2];
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 200;
    if (reps < 1 || reps > 1000000) reps = 200;
    int64_t *t = malloc((size_t)reps * sizeof *t);
    agx_error err;
    agx_registry reg;
    if (!t || agx_registry_builtin(&reg, &err) != AGX_OK) return 1;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = agx_time_us();
        agx_backend *b;
        if (agx_backend_rules_create(NULL, &b, &err) != AGX_OK) return 1;
        t[r] = agx_time_us() - t0;
        agx_backend_destroy(b);
    }
    printf("backend create (compile phrase tables): median %lld us over %d reps\n",
           (long long)median(t, reps), reps);
    agx_backend *b;
    if (agx_backend_rules_create(NULL, &b, &err) != AGX_OK) return 1;
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    for (size_t i = 0; i < sizeof instructions / sizeof instructions[0]; i++) {
        size_t n_tasks = 0;
        for (int r = 0; r < reps; r++) {
            agx_generated_plan gp;
            int64_t t0 = agx_time_us();
            agx_status s = agx_backend_generate_plan(b, instructions[i], &ctx, &gp, &err);
            t[r] = agx_time_us() - t0;
            if (s == AGX_OK) {
                n_tasks = gp.plan.n_tasks;
                agx_generated_plan_free(&gp);
            }
        }
        printf("plan: median %6lld us  %zu tasks  '%s'\n", (long long)median(t, reps), n_tasks,
               instructions[i]);
    }
    agx_backend_destroy(b);
    agx_registry_free(&reg);
    free(t);
    return 0;
}
