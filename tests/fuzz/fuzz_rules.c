/* fuzz_rules.c — libFuzzer target for the rules planner: any instruction (and
 * any piped-input excerpt) gets a plan that passes the validator or a clean
 * decline; never a crash, hang or leak, and never a plan the planner's own
 * validity check has to catch. Input: instruction \0 excerpt. */
#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size > 8192) return 0;
    char *buf = malloc(size + 2);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *instruction = buf;
    const char *excerpt = buf + strlen(buf) + 1; /* after the first NUL, or "" */
    agx_error err;
    agx_backend *b = NULL;
    agx_registry reg;
    if (agx_backend_rules_create(NULL, &b, &err) != AGX_OK) abort();
    if (agx_registry_builtin(&reg, &err) != AGX_OK) abort();
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    agx_input_summary in;
    memset(&in, 0, sizeof in);
    size_t ex_len = strlen(excerpt); /* the byte after buf[size] is NUL too */
    if (ex_len && agx_input_summarize(excerpt, ex_len, &in, &err) == AGX_OK) ctx.input = &in;
    agx_generated_plan gp;
    if (agx_backend_generate_plan(b, instruction, &ctx, &gp, &err) == AGX_OK) {
        agx_plan_limits limits = agx_plan_limits_default();
        if (gp.plan.n_tasks == 0) abort();
        if (agx_plan_validate(&gp.plan, &reg, &limits, NULL, &err) != AGX_OK) abort();
        agx_generated_plan_free(&gp);
    } else if (strncmp(err.message, "the rules planner could not build", 33) == 0) {
        abort(); /* the planner's own validity check caught a bug: make it a finding */
    }
    agx_input_summary_free(&in);
    agx_registry_free(&reg);
    agx_backend_destroy(b);
    free(buf);
    return 0;
}
