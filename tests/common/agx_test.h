/* agx_test.h — shared helpers for the cmocka test programs: where the reference
 * data and the agx binary are, scratch directories, and a loud skip. */
#ifndef AGX_TEST_H
#define AGX_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>

/* AGX_REF_DIR, else <repo>/../shared/ref. Returns NULL (and prints a loud
 * SKIPPED line naming what) when the folder is missing. Static storage. */
const char *agx_test_ref_dir(void);
/* Path inside the ref dir, or NULL when the ref dir is missing. Caller frees. */
char *agx_test_ref_path(const char *relative);
/* Prints "SKIPPED: <why>" to stderr, loudly, and calls cmocka's skip(). */
#define AGX_TEST_SKIP(...)                          \
    do {                                            \
        agx_test_print_skip(__VA_ARGS__);           \
        skip();                                     \
    } while (0)
void agx_test_print_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The built agx binary (for CLI tests run as subprocesses). */
const char *agx_test_cli_path(void);
/* The built agx_gen_model: $AGX_GEN_MODEL when set (tests run elsewhere than
 * they were built: scripts/gpu-check.sh), else the build directory's. */
const char *agx_test_gen_model_path(void);
/* Writes dir/file with `agx_gen_model --quiet ARGS`; returns its path (caller
 * frees), or NULL after printing the command and its stderr when it failed. */
char *agx_test_gen_model(const char *dir, const char *file, const char *args);
/* A fresh temporary directory (mkdtemp under $TMPDIR). Caller frees the string
 * and may call agx_test_rmtree. */
char *agx_test_tmpdir(void);
void agx_test_rmtree(const char *dir);

/* Runs a shell command line; captures stdout and stderr (malloc'ed, may be NULL
 * args to discard) and returns the exit status (or -1). stdin_data may be NULL
 * (then stdin is /dev/null). */
int agx_test_run(const char *cmdline, const char *stdin_data, char **out, char **errout);

/* One run of the built agx: exit status, stdout, stderr (never NULL). */
typedef struct agx_test_cli_result {
    int rc;
    char *out, *err;
} agx_test_cli_result;
/* Runs "[env ENV] agx ARGS" (ENV and ARGS are shell text, already quoted; env_prefix
 * may be NULL) with optional stdin. */
agx_test_cli_result agx_test_cli(const char *env_prefix, const char *args, const char *stdin_data);
void agx_test_cli_result_free(agx_test_cli_result *r);
/* Occurrences of needle in s. */
size_t agx_test_count(const char *s, const char *needle);

#endif
