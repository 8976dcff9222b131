/* cmd_health.c — 'agx health' (placeholder until its issue lands). */
#include "cli.h"

int agx_cmd_health(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return agx_cli_not_built("'agx health'");
}
