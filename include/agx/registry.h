/* registry.h — the tool registry: which commands a plan may use, what they do,
 * which phrases suggest them and which exit codes mean success. Built-in Unix
 * tools plus a user file (AGX_TOOLS_FILE, default ~/.agx/tools.json). */
#ifndef AGX_REGISTRY_H
#define AGX_REGISTRY_H

#include <stddef.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_tool {
    char *id;            /* what plans name in "command" */
    char *command;       /* executable to run */
    char *description;
    char **patterns;     /* phrases that suggest the tool ("count lines", "first N lines") */
    size_t n_patterns;
    int *ok_exit_codes;  /* e.g. grep: {0, 1} */
    size_t n_ok_exit_codes;
} agx_tool;

typedef struct agx_registry {
    agx_tool *tools;
    size_t count;
    size_t cap;
} agx_registry;

/* The built-in registry (ls, find, cat, head, tail, wc, sort, uniq, grep, cut, tr,
 * sed, awk, jq, xargs, ...). */
agx_status agx_registry_builtin(agx_registry *out, agx_error *err);
/* Built-in + the user file: AGX_TOOLS_FILE if set (must exist), else ~/.agx/tools.json
 * if present. Tools in the file add to or override built-ins by id. A malformed
 * file is AGX_ERR_JSON naming the path, line and column. */
agx_status agx_registry_load_default(agx_registry *out, agx_error *err);
/* Merges tools from a JSON file ({"tools":[{...}]} or a bare array). */
agx_status agx_registry_merge_file(agx_registry *reg, const char *path, agx_error *err);
void agx_registry_free(agx_registry *reg);

const agx_tool *agx_registry_find(const agx_registry *reg, const char *id);
/* Closest tool id by edit distance (for "did you mean"), NULL if nothing is close. */
const char *agx_registry_closest(const agx_registry *reg, const char *id);
/* {"tools":[{"id","command","description","patterns","ok_exit_codes"}...]} */
char *agx_registry_to_json(const agx_registry *reg, int pretty);

#ifdef __cplusplus
}
#endif
#endif
