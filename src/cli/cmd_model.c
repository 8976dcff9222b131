/* cmd_model.c — 'agx model' (placeholder until its issue lands). */
#include "cli.h"

int agx_cmd_model(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return agx_cli_not_built("'agx model'");
}
