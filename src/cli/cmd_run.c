/* cmd_run.c — 'agx logits', 'agx generate', 'agx bench' (placeholder until issue 4 lands). */
#include "cli.h"

int agx_cmd_logits(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx logits'"); }
int agx_cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx generate'"); }
int agx_cmd_bench(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx bench'"); }
