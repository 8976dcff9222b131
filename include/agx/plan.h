/* plan.h — the plan data model (tasks of tool invocations), its canonical JSON
 * serializer, the lenient parser for model output, the zero-trust validator and
 * upstream's normalization rules. */
#ifndef AGX_PLAN_H
#define AGX_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "agx/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct agx_registry;

#define AGX_DEFAULT_TIMEOUT_SECS 300

typedef struct agx_task {
    int task_number;      /* 1..n after renumbering */
    char *command;        /* registry tool id */
    char **args;          /* n_args owned strings */
    size_t n_args;
    int timeout_secs;     /* default AGX_DEFAULT_TIMEOUT_SECS */
    int input_from_task;  /* 0 = none, else an earlier task_number */
} agx_task;

typedef struct agx_plan {
    char *plan_id;          /* optional (NULL) */
    char *plan_description; /* optional (NULL) */
    agx_task *tasks;
    size_t n_tasks;
    size_t cap_tasks;
} agx_plan;

void agx_plan_init(agx_plan *plan);
void agx_plan_free(agx_plan *plan);   /* frees contents; plan itself may be on the stack */
agx_status agx_plan_copy(const agx_plan *src, agx_plan *dst, agx_error *err);
/* Appends a deep copy of (command, args); task_number = n_tasks+1, timeout default. */
agx_status agx_plan_add_task(agx_plan *plan, const char *command, const char *const *args,
                             size_t n_args, int input_from_task, agx_error *err);
/* Appends every task of src after plan's tasks, shifting src's input_from_task refs. */
agx_status agx_plan_append(agx_plan *plan, const agx_plan *src, agx_error *err);
void agx_plan_renumber(agx_plan *plan);

/* ---- canonical JSON ---- */
enum { AGX_JSON_COMPACT = 0, AGX_JSON_PRETTY = 1 };
/* Stable key order: plan_id, plan_description, tasks[task_number, command, args,
 * timeout_secs, input_from_task]. Optional keys are omitted when unset.
 * Returns a malloc'ed NUL-terminated string or NULL on OOM. */
char *agx_plan_to_json(const agx_plan *plan, int flags);

/* Strict reader of the canonical form (the persisted buffer). */
agx_status agx_plan_from_json(const char *text, size_t len, agx_plan *out, agx_error *err);

/* ---- lenient parser for model output ----
 * Accepts the canonical form; legacy {"plan":[{"cmd":..,"args":..,"input_from_step":..}]};
 * {"plan":["cmd",...]}; bare arrays of steps or of command strings; any of these in a
 * markdown fence or with prose around it (the first complete JSON value wins);
 * unescaped double quotes inside strings repaired when unambiguous. Tasks are
 * renumbered 1..n. On failure the message lists the reasons. */
agx_status agx_plan_parse_lenient(const char *text, size_t len, agx_plan *out, agx_error *err);

/* ---- validation ---- */
typedef struct agx_plan_limits {
    size_t max_tasks;        /* default 20 */
    size_t max_args;         /* per task, default 64 */
    size_t max_arg_len;      /* bytes, default 4096 */
    size_t max_command_len;  /* default 64 */
    int max_timeout_secs;    /* default 86400 */
} agx_plan_limits;

agx_plan_limits agx_plan_limits_default(void);

typedef struct agx_plan_problem {
    int task_number;   /* 0 = plan-level */
    char *message;     /* "task 2: unknown command 'gerp' (did you mean 'grep'?)" */
} agx_plan_problem;

typedef struct agx_plan_problems {
    agx_plan_problem *items;
    size_t count;
} agx_plan_problems;

void agx_plan_problems_free(agx_plan_problems *p);

/* Zero-trust validation against the registry; collects every problem (not only the
 * first). Returns AGX_OK when valid, AGX_ERR_VALIDATION otherwise (err->message
 * then joins the problems with "; "). problems may be NULL. */
agx_status agx_plan_validate(const agx_plan *plan, const struct agx_registry *registry,
                             const agx_plan_limits *limits, agx_plan_problems *problems,
                             agx_error *err);

/* Upstream normalization: a lone `uniq` (not fed by sort) gets a `sort` before it. */
agx_status agx_plan_normalize(agx_plan *plan, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
