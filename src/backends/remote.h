/* remote.h — what the HTTP model backends (ollama, openai) share beyond the
 * transport: config fallbacks, turning a reply's text into a validated plan,
 * JSON reply helpers and error decoration. Internal to src/backends. */
#ifndef AGX_BACKENDS_REMOTE_H
#define AGX_BACKENDS_REMOTE_H

#include <jansson.h>
#include <stddef.h>

#include "agx/backend.h"
#include "agx/error.h"
#include "agx/planner.h"
#include "backends/http.h"

/* The first of: value, the environment variables (NULL-terminated list), def.
 * Returns a malloc'ed copy (NULL only on OOM). */
char *agx_remote_setting(const char *value, const char *const *env_names, const char *def);

/* Model reply text -> plan: drops "input_from_task": null (strict OpenAI schemas
 * make optional keys nullable), then agx_plan_parse_lenient, agx_plan_normalize
 * and agx_plan_validate against ctx (registry, max_tasks). Unparseable text is
 * AGX_ERR_PARSE; a plan breaking the rules (unknown tools...) is
 * AGX_ERR_VALIDATION with every reason. `who` prefixes messages. */
agx_status agx_remote_plan_from_content(const char *who, const char *content, size_t len,
                                        const agx_plan_context *ctx, agx_plan *out,
                                        agx_error *err);

/* Parses a reply body as a JSON object; AGX_ERR_JSON with position and an
 * excerpt otherwise. */
agx_status agx_remote_parse_reply(const char *who, const char *body, size_t len, json_t **out,
                                  agx_error *err);

/* Appends text to err->message (bounded). */
void agx_remote_error_append(agx_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The AGX_CANDLE_* sampling settings a remote request carries. */
typedef struct agx_remote_sampling {
    double temperature, top_p;
    long max_tokens, seed;
    bool seed_set;
} agx_remote_sampling;

/* What both HTTP backends set up alike: sampling settings from cfg (the seed's
 * defaults when cfg is NULL) and the HTTP options, whose timeout is cfg_timeout
 * when > 0, else the timeout_env variable, else def_timeout. Errors are prefixed
 * with `who`. */
agx_status agx_remote_common_init(const char *who, const agx_planner_config *cfg, long cfg_timeout,
                                  const char *timeout_env, long def_timeout,
                                  agx_remote_sampling *sampling, agx_http_options *http,
                                  agx_error *err);

/* Integer member or -1. */
long long agx_remote_json_count(json_t *obj, const char *key);

#endif
