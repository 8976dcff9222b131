/* cmd_tools.c — 'agx tools' (placeholder until its issue lands). */
#include "cli.h"

int agx_cmd_tools(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return agx_cli_not_built("'agx tools'");
}
