/* backend.h — the model backend interface (the seed's ModelBackend trait in C):
 * a struct whose first member points at a table of functions. Implementations:
 * native (in-process GGUF engine), ollama, openai, rules. */
#ifndef AGX_BACKEND_H
#define AGX_BACKEND_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "agx/error.h"
#include "agx/input.h"
#include "agx/plan.h"
#include "agx/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Everything a backend may use to plan. All pointers are borrowed. */
typedef struct agx_plan_context {
    const agx_registry *registry;
    const agx_input_summary *input;   /* NULL when nothing was piped in */
    const agx_plan *existing;         /* current buffer (Delta refinement), may be NULL */
    size_t max_tasks;                 /* default 20 */
    /* Cancellation (NULL = none): a flag, typically set by a SIGINT handler,
     * that long-running backends poll between tokens/requests; when it becomes
     * non-zero they stop and return AGX_ERR_INFERENCE "generation cancelled". */
    volatile sig_atomic_t *cancel;
} agx_plan_context;

void agx_plan_context_init(agx_plan_context *ctx, const agx_registry *registry);

typedef struct agx_plan_metadata {
    char *model;             /* model used (file name, server model id, "rules") */
    char *backend;           /* "native", "ollama", "openai", "rules" */
    int64_t prompt_tokens;   /* -1 = unknown */
    int64_t tokens;          /* generated tokens, -1 = unknown */
    int64_t latency_ms;
} agx_plan_metadata;

typedef struct agx_generated_plan {
    agx_plan plan;
    agx_plan_metadata meta;
} agx_generated_plan;

void agx_generated_plan_init(agx_generated_plan *gp);
void agx_generated_plan_free(agx_generated_plan *gp);

typedef struct agx_backend agx_backend;

typedef struct agx_backend_ops {
    agx_status (*generate_plan)(agx_backend *backend, const char *instruction,
                                const agx_plan_context *ctx, agx_generated_plan *out,
                                agx_error *err);
    const char *(*backend_type)(const agx_backend *backend); /* "native", "ollama", ... */
    const char *(*model_name)(const agx_backend *backend);
    agx_status (*health_check)(agx_backend *backend, agx_error *err);
    void (*destroy)(agx_backend *backend);
} agx_backend_ops;

struct agx_backend {
    const agx_backend_ops *ops;
};

/* Convenience wrappers (NULL-safe destroy). */
agx_status agx_backend_generate_plan(agx_backend *b, const char *instruction,
                                     const agx_plan_context *ctx, agx_generated_plan *out,
                                     agx_error *err);
const char *agx_backend_type(const agx_backend *b);
const char *agx_backend_model_name(const agx_backend *b);
agx_status agx_backend_health_check(agx_backend *b, agx_error *err);
void agx_backend_destroy(agx_backend *b);

/* Metadata JSON for a generated plan:
 * {"model":..,"backend":..,"prompt_tokens":..,"tokens":..,"latency_ms":..} */
char *agx_plan_metadata_to_json(const agx_plan_metadata *meta);

#ifdef __cplusplus
}
#endif
#endif
