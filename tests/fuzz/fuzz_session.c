/* fuzz_session.c — libFuzzer target for the REPL state reader and the REPL's
 * word splitter: any bytes are either a state that serializes and reads back to
 * the same JSON, or a clean AGX_ERR_JSON; never a crash, hang or leak. */
#include <stdlib.h>
#include <string.h>

#include "agx/session.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size > 65536) return 0;
    agx_error err;
    agx_session s;
    agx_status st = agx_session_from_json(&s, (const char *)data, size, &err);
    if (st == AGX_OK) {
        char *a = agx_session_to_json(&s);
        if (!a) abort();
        agx_session t;
        if (agx_session_from_json(&t, a, strlen(a), &err) != AGX_OK) abort();
        char *b = agx_session_to_json(&t);
        if (!b || strcmp(a, b) != 0) abort();
        free(a);
        free(b);
        agx_session_free(&t);
    } else if (st != AGX_ERR_JSON || s.plan.n_tasks != 0) {
        abort();
    }
    agx_session_free(&s);
    char *line = malloc(size + 1);
    if (!line) return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    char **w = NULL;
    size_t n = 0;
    if (agx_session_split_words(line, &w, &n, &err) == AGX_OK) agx_session_free_words(w, n);
    free(line);
    return 0;
}
