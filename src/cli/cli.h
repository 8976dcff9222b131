/* cli.h — the agx command's subcommands. Each lives in its own cmd_*.c file and
 * returns a process exit code (AGX_EXIT_*). */
#ifndef AGX_CLI_H
#define AGX_CLI_H

#include "agx/agx.h"

int agx_cmd_plan(int argc, char **argv);       /* cmd_plan.c: plan new|add|preview|validate|parse */
int agx_cmd_tools(int argc, char **argv);      /* cmd_tools.c */
int agx_cmd_health(int argc, char **argv);     /* cmd_health.c */
int agx_cmd_model(int argc, char **argv);      /* cmd_model.c: model info */
int agx_cmd_tokenize(int argc, char **argv);   /* cmd_tokenize.c */
int agx_cmd_detokenize(int argc, char **argv); /* cmd_tokenize.c */
int agx_cmd_template(int argc, char **argv);   /* cmd_tokenize.c */
int agx_cmd_logits(int argc, char **argv);     /* cmd_run.c */
int agx_cmd_generate(int argc, char **argv);   /* cmd_run.c */
int agx_cmd_bench(int argc, char **argv);      /* cmd_run.c */
int agx_cmd_repl(int argc, char **argv);       /* cmd_repl.c */

/* Prints "agx: <kind> error: <message>" to stderr and returns the exit code for err. */
int agx_cli_fail(const agx_error *err);
/* Prints a usage error to stderr and returns AGX_EXIT_USAGE. */
int agx_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For subcommands a later issue delivers. */
int agx_cli_not_built(const char *what);

#endif
