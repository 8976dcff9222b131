/* cli_planner.h — helpers the plan/tools/health subcommands share: reading the
 * configuration, building the configured backend (with the one-time note when
 * the rules planner is used by default), and printing plans for people. */
#ifndef AGX_CLI_PLANNER_H
#define AGX_CLI_PLANNER_H

#include <stdio.h>

#include "agx/agx.h"

/* Reads AGX_* into cfg. Returns AGX_EXIT_OK, or prints the error and returns its exit code. */
int agx_cli_config(agx_planner_config *cfg);
/* Builds the backend for role (call once per command); prints errors. When the rules backend was picked
 * because nothing is configured, prints how to configure a model. */
int agx_cli_backend(const agx_planner_config *cfg, agx_model_role role, agx_backend **out);
/* Human table of tasks [from, n_tasks) (from is 0-based). */
void agx_cli_print_plan(FILE *out, const agx_plan *plan, size_t from);

#endif
