/* input.h — summary of the data piped into agx (stdin when it is not a terminal):
 * size, line count, binary or not, and a short excerpt that is safe to show a model. */
#ifndef AGX_INPUT_H
#define AGX_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_input_summary {
    size_t bytes;       /* total bytes seen */
    size_t lines;       /* newline count (+1 if the last line is unterminated) */
    bool is_binary;     /* NUL bytes or mostly non-text */
    bool truncated;     /* more input than was read (bytes is a lower bound) */
    char *excerpt;      /* first lines, valid UTF-8, control chars escaped, <= ~1 KiB */
} agx_input_summary;

agx_status agx_input_summarize(const char *data, size_t len, agx_input_summary *out,
                               agx_error *err);
/* Reads fd (up to a bound) and summarizes it. */
agx_status agx_input_summarize_fd(int fd, agx_input_summary *out, agx_error *err);
void agx_input_summary_free(agx_input_summary *s);
/* One paragraph for prompts: "Input: 1234 bytes, 56 lines, text. First lines:\n..." */
char *agx_input_summary_describe(const agx_input_summary *s);

#ifdef __cplusplus
}
#endif
#endif
