/* cmd_repl.c — 'agx repl' (placeholder until its issue lands). */
#include "cli.h"

int agx_cmd_repl(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return agx_cli_not_built("'agx repl'");
}
