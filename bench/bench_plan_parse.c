/* bench_plan_parse.c — how long the lenient parser takes on a typical model
 * reply, on one that needs repair, and on hostile 1 MiB inputs (the bounds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/util.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median microseconds per parse over reps runs. */
static double median_us(const char *text, size_t len, int reps, agx_status *st) {
    int64_t t[31];
    int runs = 31;
    for (int r = 0; r < runs; r++) {
        int64_t t0 = agx_time_us();
        for (int i = 0; i < reps; i++) {
            agx_plan p;
            agx_error err;
            *st = agx_plan_parse_lenient(text, len, &p, &err);
            agx_plan_free(&p);
        }
        t[r] = agx_time_us() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_i64);
    return (double)t[runs / 2] / reps;
}

int main(void) {
    const char *typical =
        "Here is the plan:\n```json\n{\"tasks\": [\n"
        "  {\"task_number\": 1, \"command\": \"grep\", \"args\": [\"-rn\", \"TODO\", \"src\"]},\n"
        "  {\"task_number\": 2, \"command\": \"cut\", \"args\": [\"-d:\", \"-f1\"], \"input_from_task\": 1},\n"
        "  {\"task_number\": 3, \"command\": \"sort\", \"args\": [], \"input_from_task\": 2},\n"
        "  {\"task_number\": 4, \"command\": \"uniq\", \"args\": [\"-c\"], \"input_from_task\": 3}\n"
        "]}\n```\nThis counts TODO comments per file.";
    const char *broken =
        "```json\n{'plan': [{'cmd': 'grep', 'args': ['-E', '\\d+ \"ms\"'],},\n"
        " {'cmd': 'sort', 'args': ['-n'], 'input_from_step': 1},]}\n```";
    agx_status st = AGX_OK;
    double us = median_us(typical, strlen(typical), 2000, &st);
    printf("typical fenced reply (%zu B): %.2f us/parse (status %s)\n", strlen(typical), us,
           agx_status_name(st));
    us = median_us(broken, strlen(broken), 2000, &st);
    printf("reply needing repair (%zu B): %.2f us/parse (status %s)\n", strlen(broken), us,
           agx_status_name(st));
    size_t n = 1u << 20;
    char *buf = malloc(n);
    /* prefix + a repeated fill, 1 MiB in all: deep nesting, unterminated
     * shallow values, many small non-plan values, broken strings */
    static const char *const shapes[][2] = {
        {"", "["},          {"", "[1,"},        {"", "{\"a\":"},      {"", "[\""},
        {"", "x"},          {"[", "1, "},       {"{\"tasks\": [", "\"ls\", "},
        {"", "[1] "},       {"[\"", "a\" b "}, {"", "{\"command\": \"ls\" "},
    };
    for (size_t f = 0; f < sizeof shapes / sizeof *shapes; f++) {
        size_t pl = strlen(shapes[f][0]), fl = strlen(shapes[f][1]);
        memcpy(buf, shapes[f][0], pl);
        for (size_t i = pl; i < n; i++) buf[i] = shapes[f][1][(i - pl) % fl];
        int64_t t0 = agx_time_us();
        agx_plan p;
        agx_error err;
        st = agx_plan_parse_lenient(buf, n, &p, &err);
        agx_plan_free(&p);
        printf("1 MiB of '%s' + '%s' repeated: %.1f ms (status %s)\n", shapes[f][0], shapes[f][1],
               (double)(agx_time_us() - t0) / 1000.0, agx_status_name(st));
    }
    free(buf);
    return 0;
}
