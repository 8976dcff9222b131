/* cmd_tokenize.c — 'agx tokenize', 'agx detokenize', 'agx template' (placeholder until issue 5 lands). */
#include "cli.h"

int agx_cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx tokenize'"); }
int agx_cmd_detokenize(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx detokenize'"); }
int agx_cmd_template(int argc, char **argv) { (void)argc; (void)argv; return agx_cli_not_built("'agx template'"); }
