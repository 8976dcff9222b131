/* cmd_plan.c — 'agx plan' (placeholder until its issue lands). */
#include "cli.h"

int agx_cmd_plan(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return agx_cli_not_built("'agx plan'");
}
