/* cli_planner.c — configuration, backend construction and plan printing shared
 * by 'agx plan', 'agx tools' and 'agx health'. */
#include <string.h>

#include "cli.h"
#include "cli_planner.h"

int agx_cli_config(agx_planner_config *cfg) {
    agx_error err;
    agx_error_clear(&err);
    if (agx_planner_config_from_env(cfg, &err) != AGX_OK) return agx_cli_fail(&err);
    return AGX_EXIT_OK;
}

int agx_cli_backend(const agx_planner_config *cfg, agx_model_role role, agx_backend **out) {
    /* Each subcommand builds its backend once, so this note appears once per invocation. */
    agx_error err;
    agx_error_clear(&err);
    if (cfg->backend == AGX_BACKEND_RULES && !cfg->backend_explicit) {
        fprintf(stderr, "agx: note: using the offline rules planner; set "
                        "AGX_ECHO_MODEL=/path/model.gguf (or AGX_BACKEND=ollama|openai) for "
                        "model-generated plans\n");
    }
    if (agx_planner_create_backend(cfg, role, out, &err) != AGX_OK) return agx_cli_fail(&err);
    return AGX_EXIT_OK;
}

void agx_cli_print_plan(FILE *out, const agx_plan *plan, size_t from) {
    size_t wcmd = 7;
    for (size_t i = from; i < plan->n_tasks; i++) {
        size_t l = plan->tasks[i].command ? strlen(plan->tasks[i].command) : 0;
        if (l > wcmd) wcmd = l < 24 ? l : 24;
    }
    if (plan->plan_description && from == 0) fprintf(out, "plan: %s\n", plan->plan_description);
    fprintf(out, "%-3s  %-*s  %-8s  %-7s  %s\n", "#", (int)wcmd, "command", "input", "timeout",
            "args");
    for (size_t i = from; i < plan->n_tasks; i++) {
        const agx_task *t = &plan->tasks[i];
        char input[24];
        if (t->input_from_task > 0)
            snprintf(input, sizeof input, "task %d", t->input_from_task);
        else
            snprintf(input, sizeof input, "-");
        char timeout[24];
        snprintf(timeout, sizeof timeout, "%ds", t->timeout_secs);
        agx_strbuf args;
        agx_strbuf_init(&args);
        for (size_t j = 0; j < t->n_args; j++) {
            if (j) agx_strbuf_putc(&args, ' ');
            agx_strbuf_shell_word(&args, t->args[j] ? t->args[j] : "", true);
        }
        fprintf(out, "%-3d  %-*s  %-8s  %-7s  %s\n", t->task_number, (int)wcmd,
                t->command ? t->command : "?", input, timeout, args.data ? args.data : "");
        agx_strbuf_free(&args);
    }
}
