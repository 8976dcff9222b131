/* remote.c — shared pieces of the HTTP model backends: setting fallbacks, the
 * reply-text -> validated-plan pipeline (lenient parse, normalize, zero-trust
 * validate), JSON reply parsing with useful errors, error decoration. */
#include "backends/remote.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/util.h"
#include "backends/http.h"

char *agx_remote_setting(const char *value, const char *const *env_names, const char *def) {
    if (value && *value) return agx_strdup(value);
    for (size_t i = 0; env_names && env_names[i]; i++) {
        const char *v = agx_env(env_names[i]);
        if (v) return agx_strdup(v);
    }
    return def ? agx_strdup(def) : NULL;
}

void agx_remote_error_append(agx_error *err, const char *fmt, ...) {
    if (!err) return;
    size_t used = strnlen(err->message, sizeof err->message);
    if (used + 1 >= sizeof err->message) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message + used, sizeof err->message - used, fmt, ap);
    va_end(ap);
}

long long agx_remote_json_count(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
}

agx_status agx_remote_parse_reply(const char *who, const char *body, size_t len, json_t **out,
                                  agx_error *err) {
    json_error_t jerr;
    *out = NULL;
    json_t *j = body ? json_loadb(body, len, 0, &jerr) : NULL;
    if (j && json_is_object(j)) {
        *out = j;
        return AGX_OK;
    }
    char *ex = agx_http_excerpt(body, body ? len : 0, 96, NULL);
    /* jansson quotes the offending bytes raw: clean them like the excerpt */
    char *why = body ? agx_http_excerpt(jerr.text, strlen(jerr.text), 96, NULL) : NULL;
    if (!j)
        agx_error_set(err, AGX_ERR_JSON,
                      "%s: the server's reply is not valid JSON (%s at byte %d of %zu); it "
                      "starts with: %s",
                      who, why ? why : "no body", body ? jerr.position : 0, len, ex ? ex : "");
    else
        agx_error_set(err, AGX_ERR_JSON, "%s: the server's reply is JSON but not an object: %s",
                      who, ex ? ex : "");
    free(why);
    json_decref(j);
    free(ex);
    return AGX_ERR_JSON;
}

/* Strict OpenAI-style schemas make optional keys required-but-nullable, so a
 * conforming reply may say "input_from_task": null; the plan parser need not
 * know that convention. Returns a rewritten copy, or NULL to use the text as is. */
static char *drop_null_links(const char *content, size_t len) {
    json_t *root = json_loadb(content, len, 0, NULL);
    json_t *tasks = json_is_object(root) ? json_object_get(root, "tasks") : NULL;
    bool changed = false;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) {
        if (json_is_object(t) && json_is_null(json_object_get(t, "input_from_task"))) {
            json_object_del(t, "input_from_task");
            changed = true;
        }
    }
    char *s = changed ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    return s;
}

agx_status agx_remote_plan_from_content(const char *who, const char *content, size_t len,
                                        const agx_plan_context *ctx, agx_plan *out,
                                        agx_error *err) {
    agx_plan_init(out);
    if (!content || len == 0)
        return agx_error_set(err, AGX_ERR_PARSE,
                             "%s: the model replied with empty content (no plan); try again or "
                             "use a larger model",
                             who);
    char *fixed = drop_null_links(content, len);
    agx_status st =
        agx_plan_parse_lenient(fixed ? fixed : content, fixed ? strlen(fixed) : len, out, err);
    free(fixed);
    if (st != AGX_OK) {
        if (st != AGX_ERR_NOMEM && err) err->code = st = AGX_ERR_PARSE;
        char *ex = agx_http_excerpt(content, len, 120, NULL);
        agx_error_prefix(err, "%s: the model's reply is not a plan", who);
        agx_remote_error_append(err, " (reply started: %s)", ex ? ex : "");
        free(ex);
        agx_plan_free(out);
        return st;
    }
    if ((st = agx_plan_normalize(out, err)) != AGX_OK) {
        agx_error_prefix(err, "%s: normalizing the model's plan", who);
        agx_plan_free(out);
        return st;
    }
    agx_plan_limits lim = agx_plan_limits_default();
    if (ctx && ctx->max_tasks) lim.max_tasks = ctx->max_tasks;
    st = agx_plan_validate(out, ctx ? ctx->registry : NULL, &lim, NULL, err);
    if (st != AGX_OK) {
        agx_error_prefix(err, "%s: the model's plan was rejected", who);
        agx_plan_free(out);
        return st;
    }
    return AGX_OK;
}

agx_status agx_remote_common_init(const char *who, const agx_planner_config *cfg, long cfg_timeout,
                                  const char *timeout_env, long def_timeout,
                                  agx_remote_sampling *sampling, agx_http_options *http,
                                  agx_error *err) {
    sampling->temperature = cfg ? cfg->temperature : 0.7;
    sampling->top_p = cfg ? cfg->top_p : 0.9;
    sampling->max_tokens = cfg ? cfg->max_tokens : 2048;
    sampling->seed = cfg ? cfg->seed : 0;
    sampling->seed_set = cfg && cfg->seed_set;
    long timeout = cfg_timeout > 0 ? cfg_timeout : 0;
    agx_status st = AGX_OK;
    if (!timeout) st = agx_env_long(timeout_env, def_timeout, &timeout, err);
    if (st == AGX_OK) st = agx_http_options_from_env(http, timeout, err);
    if (st != AGX_OK) return agx_error_prefix(err, "%s backend", who);
    http->timeout_var = timeout_env;
    return AGX_OK;
}
