/* fuzz_plan_parse.c — libFuzzer target for the lenient plan parser: whatever
 * a model replies, parsing never crashes, and an accepted plan validates,
 * normalizes and round-trips through the canonical JSON unchanged (through
 * both the strict reader and the lenient parser). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    agx_plan plan;
    agx_error err;
    if (agx_plan_parse_lenient((const char *)data, size, &plan, &err) != AGX_OK) {
        if (plan.n_tasks != 0 || err.message[0] == '\0') abort(); /* failures say why */
        return 0;
    }
    if (plan.n_tasks == 0) abort(); /* an accepted plan has tasks */
    for (size_t i = 0; i < plan.n_tasks; i++)
        if (plan.tasks[i].task_number != (int)i + 1) abort(); /* renumbered 1..n */
    agx_registry reg;
    if (agx_registry_builtin(&reg, &err) != AGX_OK) abort();
    agx_plan_problems problems;
    agx_status st = agx_plan_validate(&plan, &reg, NULL, &problems, &err);
    if ((st == AGX_OK) != (problems.count == 0)) abort();
    agx_plan_problems_free(&problems);
    if (agx_plan_normalize(&plan, &err) != AGX_OK) abort();
    /* Commands are split into words by the lenient parser, so only valid plans
     * (registry ids are single words) must read back through it unchanged. */
    bool valid = agx_plan_validate(&plan, &reg, NULL, NULL, &err) == AGX_OK;
    for (int pretty = 0; pretty <= 1; pretty++) {
        char *json = agx_plan_to_json(&plan, pretty);
        if (!json) abort();
        agx_plan back;
        if (agx_plan_from_json(json, strlen(json), &back, &err) != AGX_OK) abort();
        char *again = agx_plan_to_json(&back, pretty);
        if (!again || strcmp(json, again) != 0) abort();
        free(again);
        agx_plan_free(&back);
        /* the lenient parser reads valid canonical output back exactly, too */
        if (valid && agx_plan_parse_lenient(json, strlen(json), &back, &err) != AGX_OK) abort();
        if (!valid) {
            free(json);
            continue;
        }
        again = agx_plan_to_json(&back, pretty);
        if (!again || strcmp(json, again) != 0) abort();
        free(again);
        agx_plan_free(&back);
        free(json);
    }
    agx_registry_free(&reg);
    agx_plan_free(&plan);
    return 0;
}
