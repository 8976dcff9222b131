/* plan_internal.h — helpers shared by the plan module's files (plan.c,
 * plan_parse.c, plan_validate.c, registry.c, input.c); not a public contract. */
#ifndef AGX_PLAN_INTERNAL_H
#define AGX_PLAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "agx/plan.h"
#include "agx/util.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..n) does not
 * start with one (overlongs, surrogates and > U+10FFFF are invalid). */
size_t agx_plan_utf8_seq_len(const unsigned char *s, size_t n);
bool agx_plan_utf8_valid(const char *s, size_t n);

/* agx_strbuf_take that always returns a NUL-terminated string, also for a
 * buffer nothing was appended to (core's take leaves that one unterminated). */
char *agx_plan_sb_take(agx_strbuf *sb);

/* Escapes control characters, DEL and invalid UTF-8 in err->message (which
 * may quote model output or file content) so that printing it cannot send
 * terminal escapes; returns err->code. */
agx_status agx_plan_sanitize_error(agx_error *err);

/* Appends a task taking ownership of command and args (and the args array),
 * freeing them on failure. */
agx_status agx_plan_push_task_owned(agx_plan *plan, char *command, char **args, size_t n_args,
                                    int timeout_secs, int input_from_task, agx_error *err);
/* Inserts a copy of (command, no args) at index idx (0-based) and renumbers:
 * references to tasks at or after idx shift by one. The new task reads
 * input_from_task. */
agx_status agx_plan_insert_task(agx_plan *plan, size_t idx, const char *command,
                                int input_from_task, agx_error *err);

/* Splits a command line into words with simple shell quoting rules ('..', "..",
 * backslash). Shell operators (| ; & < > ` $( ) are refused with a reason,
 * because each plan step is exactly one tool. */
agx_status agx_plan_split_words(const char *s, char ***words, size_t *n_words, agx_error *err);
void agx_plan_free_words(char **words, size_t n);

/* Optimal-string-alignment edit distance, bounded: returns limit+1 as soon as
 * the distance is known to exceed limit. */
size_t agx_plan_edit_distance(const char *a, const char *b, size_t limit);

#endif
