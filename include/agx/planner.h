/* planner.h — configuration from AGX_* environment variables and the backend
 * factory: which backend plans, with which model, for which role (Echo drafts,
 * Delta validates and refines). */
#ifndef AGX_PLANNER_H
#define AGX_PLANNER_H

#include <stdbool.h>

#include "agx/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_backend_kind {
    AGX_BACKEND_NATIVE,  /* "native" or its alias "candle" */
    AGX_BACKEND_OLLAMA,
    AGX_BACKEND_OPENAI,
    AGX_BACKEND_RULES,
} agx_backend_kind;

typedef enum agx_model_role { AGX_ROLE_ECHO, AGX_ROLE_DELTA } agx_model_role;

typedef struct agx_planner_config {
    agx_backend_kind backend;
    bool backend_explicit;        /* AGX_BACKEND was set */
    char *echo_model;             /* AGX_ECHO_MODEL */
    char *delta_model;            /* AGX_DELTA_MODEL */
    char *model_path;             /* AGX_MODEL_PATH (fallback for both roles) */
    agx_model_role role;          /* AGX_MODEL_ROLE, default echo */
    char *device;                 /* AGX_DEVICE: auto|cpu|cuda|metal, default auto */
    double temperature;           /* AGX_CANDLE_TEMPERATURE 0.7 */
    double top_p;                 /* AGX_CANDLE_TOP_P 0.9 */
    long max_tokens;              /* AGX_CANDLE_MAX_TOKENS 2048 */
    long seed;                    /* AGX_CANDLE_SEED */
    bool seed_set;
    long context_size;            /* AGX_CANDLE_CONTEXT_SIZE, default 2048 */
    long threads;                 /* AGX_THREADS, 0 = all cores */
    char *ollama_model;           /* AGX_OLLAMA_MODEL phi3:mini */
    char *ollama_host;            /* AGX_OLLAMA_HOST / OLLAMA_HOST, http://127.0.0.1:11434 */
    long ollama_timeout_secs;     /* AGX_OLLAMA_TIMEOUT_SECS 300 */
    char *openai_base_url;        /* AGX_OPENAI_BASE_URL */
    char *openai_model;           /* AGX_OPENAI_MODEL */
    char *openai_api_key;         /* AGX_OPENAI_API_KEY (never printed) */
    long openai_timeout_secs;     /* AGX_OPENAI_TIMEOUT_SECS 300 */
    char *plan_path;              /* AGX_PLAN_PATH, default $TMPDIR/agx-plan.json */
} agx_planner_config;

/* Reads every AGX_* variable; malformed values are AGX_ERR_CONFIG naming the
 * variable. An unknown AGX_BACKEND lists the valid ones. */
agx_status agx_planner_config_from_env(agx_planner_config *cfg, agx_error *err);
void agx_planner_config_free(agx_planner_config *cfg);
const char *agx_backend_kind_name(agx_backend_kind kind);
/* The model path for a role: AGX_ECHO_MODEL / AGX_DELTA_MODEL, else AGX_MODEL_PATH, else NULL. */
const char *agx_planner_model_for_role(const agx_planner_config *cfg, agx_model_role role);

/* Builds the configured backend for the role. */
agx_status agx_planner_create_backend(const agx_planner_config *cfg, agx_model_role role,
                                      agx_backend **out, agx_error *err);

/* Backend constructors (src/backends/). Those not built yet return
 * AGX_ERR_CONFIG "... backend is not available in this build ...". */
agx_status agx_backend_rules_create(const agx_planner_config *cfg, agx_backend **out,
                                    agx_error *err);
agx_status agx_backend_native_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err);
agx_status agx_backend_ollama_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err);
agx_status agx_backend_openai_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err);

/* ---- prompts and schema shared by every model backend (src/planner/) ---- */

/* The plan JSON schema built from the registry: an object {"tasks":[...]} whose
 * items are {"task_number": int 1..max_tasks, "command": enum of tool ids,
 * "args": array (<= 16) of strings (<= 256 bytes), "input_from_task"?: int 1..max_tasks},
 * "additionalProperties": false everywhere, "required" listed, properties in the
 * order the output should have. The native grammar compiles exactly this. */
char *agx_plan_schema_json(const agx_registry *registry, size_t max_tasks);

typedef struct agx_chat_message {
    const char *role;     /* "system" | "user" | "assistant" */
    char *content;        /* owned */
} agx_chat_message;

typedef struct agx_prompt {
    agx_chat_message messages[4];
    size_t n_messages;
} agx_prompt;

/* Echo: fast drafting prompt. Delta: validate-and-refine prompt with the existing
 * tasks. The instruction and input excerpt are embedded as quoted data. */
agx_status agx_prompt_build(agx_model_role role, const char *instruction,
                            const agx_plan_context *ctx, agx_prompt *out, agx_error *err);
void agx_prompt_free(agx_prompt *p);

#ifdef __cplusplus
}
#endif
#endif
