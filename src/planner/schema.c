/* schema.c — the plan JSON schema built from the tool registry. Every model
 * backend uses it: Ollama's `format`, OpenAI's `response_format`, and the native
 * grammar, which compiles it into a byte automaton. So it stays inside a small
 * subset: type object/array/string/integer, properties (in output order),
 * required, additionalProperties false, enum, minItems/maxItems, maxLength,
 * minimum/maximum. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agx/planner.h"

#define SCHEMA_MAX_ARGS 16
#define SCHEMA_MAX_ARG_LEN 256
#define SCHEMA_DEFAULT_MAX_TASKS 20

static json_t *int_range(size_t lo, size_t hi) {
    return json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)lo, "maximum",
                     (json_int_t)hi);
}

char *agx_plan_schema_json(const agx_registry *registry, size_t max_tasks) {
    if (!registry || registry->count == 0) return NULL; /* an empty enum matches nothing */
    if (max_tasks == 0) max_tasks = SCHEMA_DEFAULT_MAX_TASKS;

    json_t *ids = json_array();
    for (size_t i = 0; ids && i < registry->count; i++) {
        const char *id = registry->tools[i].id;
        if (!id || !*id) continue;
        bool dup = false; /* a user file may repeat a built-in id; enum items stay unique */
        for (size_t j = 0; j < i && !dup; j++)
            dup = registry->tools[j].id && strcmp(registry->tools[j].id, id) == 0;
        if (!dup && json_array_append_new(ids, json_string(id)) != 0) {
            json_decref(ids);
            return NULL;
        }
    }
    if (!ids || json_array_size(ids) == 0) {
        json_decref(ids);
        return NULL;
    }

    /* Properties are listed in the order a plan is written, so constrained
     * decoders emit task_number, command, args, input_from_task. */
    json_t *task = json_pack(
        "{s:s, s:{s:o, s:{s:s, s:o}, s:{s:s, s:I, s:{s:s, s:I}}, s:o}, s:[s,s,s], s:b}",
        "type", "object",
        "properties",
            "task_number", int_range(1, max_tasks),
            "command", "type", "string", "enum", ids,
            "args", "type", "array", "maxItems", (json_int_t)SCHEMA_MAX_ARGS,
                "items", "type", "string", "maxLength", (json_int_t)SCHEMA_MAX_ARG_LEN,
            "input_from_task", int_range(1, max_tasks),
        "required", "task_number", "command", "args",
        "additionalProperties", 0);
    if (!task) return NULL;
    json_t *root = json_pack("{s:s, s:{s:{s:s, s:I, s:I, s:o}}, s:[s], s:b}",
                             "type", "object",
                             "properties", "tasks", "type", "array",
                                 "minItems", (json_int_t)1, "maxItems", (json_int_t)max_tasks,
                                 "items", task,
                             "required", "tasks",
                             "additionalProperties", 0);
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}
