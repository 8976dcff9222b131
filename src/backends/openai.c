/* openai.c — the OpenAI-compatible backend (vLLM, llama.cpp's server, hosted
 * APIs): POST {base}/v1/chat/completions with response_format json_schema
 * (strict), falling back to json_object once a server rejects schemas; health
 * = the model listed by GET {base}/v1/models. The API key travels only in the
 * Authorization header and is never printed. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agx/planner.h"
#include "agx/util.h"
#include "backends/http.h"
#include "backends/remote.h"

#define OPENAI_DEFAULT_BASE "http://127.0.0.1:8000"
#define OPENAI_DEFAULT_TIMEOUT 300
#define OPENAI_SCHEMA_NAME "agx_plan"

typedef struct openai_backend {
    agx_backend base;
    char *base_url; /* without a trailing "/v1" or "/" */
    char *model;    /* NULL until known: then the server's first listed model */
    char *api_key;  /* NULL when none */
    agx_model_role role;
    agx_remote_sampling sampling;
    bool schema_rejected; /* the server refused json_schema once: use json_object */
    char *shown;          /* base_url without credentials, for messages */
    agx_http_options http;
} openai_backend;

/* Accepts "http://h:p", "http://h:p/", "http://h:p/v1", "http://h:p/v1/". */
static char *normalize_base(const char *u) {
    while (*u == ' ')
        u++;
    char *s = strstr(u, "://") ? agx_strdup(u) : agx_sprintf("http://%s", u);
    if (!s) return NULL;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '/' || s[n - 1] == ' '))
        s[--n] = '\0';
    if (n >= 3 && strcmp(s + n - 3, "/v1") == 0) s[n - 3] = '\0';
    return s;
}

static const char *openai_type(const agx_backend *b) {
    (void)b;
    return "openai";
}

static const char *openai_model(const agx_backend *b) {
    const openai_backend *o = (const openai_backend *)b;
    return o->model ? o->model : "(server default)";
}

static void openai_destroy(agx_backend *b) {
    openai_backend *o = (openai_backend *)b;
    if (!o) return;
    free(o->base_url);
    free(o->shown);
    free(o->model);
    if (o->api_key) {
        explicit_bzero(o->api_key, strlen(o->api_key));
        free(o->api_key);
    }
    free(o);
}

static agx_status decorate(const openai_backend *o, agx_status st, const agx_http_response *r,
                           agx_error *err) {
    if (r->failure == AGX_HTTP_FAIL_REFUSED || r->failure == AGX_HTTP_FAIL_DNS ||
        r->failure == AGX_HTTP_FAIL_TLS)
        agx_remote_error_append(err, ". Check AGX_OPENAI_BASE_URL (now %s).", o->shown);
    else if (st == AGX_ERR_CONFIG && (r->status == 401 || r->status == 403))
        agx_remote_error_append(err, o->api_key ? " (AGX_OPENAI_API_KEY was rejected)"
                                                : " (set AGX_OPENAI_API_KEY)");
    return st;
}

/* GET {base}/v1/models -> the reply's "data" array (ids). */
static agx_status list_models(openai_backend *o, json_t **out, agx_error *err) {
    *out = NULL;
    char *url = agx_sprintf("%s/v1/models", o->base_url);
    if (!url) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_http_request req = {
        .method = "GET", .url = url, .bearer_token = o->api_key, .what = "openai /v1/models"};
    agx_http_response r;
    agx_status st = agx_http_send(&o->http, &req, &r, err);
    free(url);
    if (st != AGX_OK) {
        decorate(o, st, &r, err);
        agx_http_response_free(&r);
        return st;
    }
    st = agx_remote_parse_reply("openai /v1/models", r.body, r.body_len, out, err);
    agx_http_response_free(&r);
    if (st == AGX_OK && !json_is_array(json_object_get(*out, "data"))) {
        json_decref(*out);
        *out = NULL;
        st = agx_error_set(err, AGX_ERR_HEALTH_CHECK,
                           "%s/v1/models has no \"data\" list; is AGX_OPENAI_BASE_URL an "
                           "OpenAI-compatible server?",
                           o->shown);
    }
    return st;
}

/* With no AGX_OPENAI_MODEL, a single-model server (llama.cpp, vLLM) is asked which. */
static agx_status ensure_model(openai_backend *o, agx_error *err) {
    if (o->model) return AGX_OK;
    json_t *j;
    agx_status st = list_models(o, &j, err);
    if (st != AGX_OK) return st;
    json_t *first = json_array_get(json_object_get(j, "data"), 0);
    const char *id = json_string_value(json_object_get(first, "id"));
    if (id) o->model = agx_strdup(id);
    json_decref(j);
    if (!id)
        return agx_error_set(err, AGX_ERR_HEALTH_CHECK, "%s serves no models; set AGX_OPENAI_MODEL",
                             o->shown);
    agx_log(AGX_LOG_INFO, "openai: AGX_OPENAI_MODEL unset, using the server's model '%s'",
            o->model);
    return o->model ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
}

static agx_status openai_health(agx_backend *b, agx_error *err) {
    openai_backend *o = (openai_backend *)b;
    json_t *j;
    agx_status st = list_models(o, &j, err);
    if (st != AGX_OK) return st;
    json_t *data = json_object_get(j, "data"), *m;
    size_t i;
    bool found = false;
    agx_strbuf ids;
    agx_strbuf_init(&ids);
    json_array_foreach(data, i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));
        if (!id) continue;
        if (!o->model && !found) {
            o->model = agx_strdup(id);
            found = true;
        }
        found = found || (o->model && strcmp(id, o->model) == 0);
        char *shown = i < 8 ? agx_http_excerpt(id, strlen(id), 80, NULL) : NULL;
        if (shown) agx_strbuf_printf(&ids, "%s'%s'", ids.len ? ", " : "", shown);
        free(shown);
    }
    if (!found)
        st = agx_error_set(err, AGX_ERR_HEALTH_CHECK,
                           o->model ? "Model '%s' is not served by %s (it lists: %s); set "
                                      "AGX_OPENAI_MODEL to one of those"
                                    : "%s%s serves no models (%s); load one or set "
                                      "AGX_OPENAI_MODEL",
                           o->model ? o->model : "", o->shown, ids.len ? ids.data : "none");
    agx_strbuf_free(&ids);
    json_decref(j);
    return st;
}

/* Strict structured outputs (OpenAI) want every property required and
 * additionalProperties false; optional properties become nullable instead. */
static void make_strict(json_t *node) {
    if (!json_is_object(node)) return;
    json_t *props = json_object_get(node, "properties");
    if (json_is_object(props)) {
        json_t *req = json_object_get(node, "required");
        if (!json_is_array(req)) {
            req = json_array();
            json_object_set_new(node, "required", req);
        }
        const char *key;
        json_t *val;
        json_object_foreach(props, key, val) {
            bool listed = false;
            size_t i;
            json_t *r;
            json_array_foreach(req, i, r) listed =
                listed || (json_is_string(r) && strcmp(json_string_value(r), key) == 0);
            if (!listed) {
                json_t *t = json_object_get(val, "type");
                if (json_is_string(t))
                    json_object_set_new(val, "type", json_pack("[O, s]", t, "null"));
                json_array_append_new(req, json_string(key));
            }
            make_strict(val);
        }
    }
    make_strict(json_object_get(node, "items"));
}

static char *chat_body(const openai_backend *o, const agx_prompt *p, const char *schema,
                       bool with_schema) {
    json_t *msgs = json_array();
    for (size_t i = 0; msgs && i < p->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", p->messages[i].role, "content",
                                              p->messages[i].content));
    json_t *fmt;
    if (with_schema) {
        json_t *s = json_loads(schema, 0, NULL);
        make_strict(s);
        fmt = s ? json_pack("{s:s, s:{s:s, s:b, s:o}}", "type", "json_schema", "json_schema",
                            "name", OPENAI_SCHEMA_NAME, "strict", 1, "schema", s)
                : NULL;
    } else {
        fmt = json_pack("{s:s}", "type", "json_object");
    }
    json_t *root = (msgs && fmt) ? json_pack("{s:s, s:O, s:f, s:f, s:b, s:O}", "model", o->model,
                                             "messages", msgs, "temperature", o->sampling.temperature,
                                             "top_p", o->sampling.top_p, "stream", 0, "response_format", fmt)
                                 : NULL;
    if (root && o->sampling.max_tokens > 0)
        json_object_set_new(root, "max_tokens", json_integer(o->sampling.max_tokens));
    if (root && o->sampling.seed_set) json_object_set_new(root, "seed", json_integer(o->sampling.seed));
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    json_decref(msgs);
    json_decref(fmt);
    return s;
}

static bool mentions_schema(const char *body) {
    if (!body) return false;
    static const char *const words[] = {"response_format", "json_schema", "schema"};
    for (size_t w = 0; w < sizeof words / sizeof *words; w++)
        if (strcasestr(body, words[w])) return true;
    return false;
}

static agx_status post_chat(openai_backend *o, const agx_prompt *p, const char *schema,
                            volatile sig_atomic_t *cancel, json_t **out, agx_error *err) {
    *out = NULL;
    char *url = agx_sprintf("%s/v1/chat/completions", o->base_url);
    if (!url) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_status st;
    agx_http_response r = {0};
    for (;;) {
        bool with_schema = !o->schema_rejected;
        char *body = chat_body(o, p, schema, with_schema);
        if (!body) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "openai: could not build the request");
            break;
        }
        agx_http_request req = {.method = "POST",
                                .url = url,
                                .json_body = body,
                                .bearer_token = o->api_key,
                                .what = "openai /v1/chat/completions",
                                .cancel = cancel};
        st = agx_http_send(&o->http, &req, &r, err);
        free(body);
        if (st != AGX_OK && with_schema && r.status == 400 && mentions_schema(r.body)) {
            agx_log(AGX_LOG_WARN,
                    "openai: %s rejected response_format json_schema; using json_object "
                    "(plans are still validated)",
                    o->shown);
            o->schema_rejected = true;
            agx_http_response_free(&r);
            continue;
        }
        break;
    }
    free(url);
    if (st == AGX_OK)
        st = agx_remote_parse_reply("openai /v1/chat/completions", r.body, r.body_len, out, err);
    else
        decorate(o, st, &r, err);
    agx_http_response_free(&r);
    return st;
}

static agx_status openai_generate(agx_backend *b, const char *instruction,
                                  const agx_plan_context *ctx, agx_generated_plan *out,
                                  agx_error *err) {
    openai_backend *o = (openai_backend *)b;
    agx_generated_plan_init(out);
    int64_t t0 = agx_time_ms();
    agx_status st = ensure_model(o, err);
    if (st != AGX_OK) return st;
    agx_prompt prompt;
    if ((st = agx_prompt_build(o->role, instruction, ctx, &prompt, err)) != AGX_OK) return st;
    char *schema = agx_plan_schema_json(ctx->registry, ctx->max_tasks);
    json_t *j = NULL;
    st = schema ? post_chat(o, &prompt, schema, ctx->cancel, &j, err)
                : agx_error_set(err, AGX_ERR_NOMEM, "openai: could not build the plan schema");
    agx_prompt_free(&prompt);
    free(schema);
    if (st != AGX_OK) return st;

    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_object_get(msg, "content");
    json_t *jr = json_object_get(msg, "refusal"), *jf = json_object_get(choice, "finish_reason");
    char *refusal = json_is_string(jr)
                        ? agx_http_excerpt(json_string_value(jr), json_string_length(jr), 300, NULL)
                        : NULL;
    char *reason = json_is_string(jf)
                       ? agx_http_excerpt(json_string_value(jf), json_string_length(jf), 40, NULL)
                       : NULL;
    if (!json_is_string(content)) {
        st = refusal ? agx_error_set(err, AGX_ERR_INFERENCE, "openai model '%s' refused: %.300s",
                                     o->model, refusal)
             : json_is_object(choice)
                 ? agx_error_set(err, AGX_ERR_PARSE,
                                 "openai model '%s' returned no content (finish_reason %s)",
                                 o->model, reason ? reason : "unknown")
                 : agx_error_set(err, AGX_ERR_JSON,
                                 "openai /v1/chat/completions: the reply has no "
                                 "choices[0].message; is AGX_OPENAI_BASE_URL an "
                                 "OpenAI-compatible server?");
        free(refusal);
        free(reason);
        json_decref(j);
        return st;
    }
    char *who = agx_sprintf("openai model '%s'", o->model);
    st = agx_remote_plan_from_content(who ? who : "openai", json_string_value(content),
                                      json_string_length(content), ctx, &out->plan, err);
    free(who);
    if (st != AGX_OK && reason && strcmp(reason, "length") == 0)
        agx_remote_error_append(err, "; the reply was cut at the token limit (raise "
                                     "AGX_CANDLE_MAX_TOKENS)");
    if (st == AGX_OK) {
        json_t *usage = json_object_get(j, "usage");
        out->meta.model = agx_strdup(o->model);
        out->meta.backend = agx_strdup("openai");
        out->meta.prompt_tokens = agx_remote_json_count(usage, "prompt_tokens");
        out->meta.tokens = agx_remote_json_count(usage, "completion_tokens");
        out->meta.latency_ms = agx_time_ms() - t0;
        if (!out->meta.model || !out->meta.backend) {
            agx_generated_plan_free(out);
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        }
    }
    free(refusal);
    free(reason);
    json_decref(j);
    return st;
}

static const agx_backend_ops OPENAI_OPS = {
    .generate_plan = openai_generate,
    .backend_type = openai_type,
    .model_name = openai_model,
    .health_check = openai_health,
    .destroy = openai_destroy,
};

agx_status agx_backend_openai_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err) {
    *out = NULL;
    openai_backend *o = calloc(1, sizeof *o);
    if (!o) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    o->base.ops = &OPENAI_OPS;
    o->role = role;
    static const char *const base_env[] = {"AGX_OPENAI_BASE_URL", NULL};
    static const char *const model_env[] = {"AGX_OPENAI_MODEL", NULL};
    static const char *const key_env[] = {"AGX_OPENAI_API_KEY", NULL};
    char *base =
        agx_remote_setting(cfg ? cfg->openai_base_url : NULL, base_env, OPENAI_DEFAULT_BASE);
    o->base_url = base ? normalize_base(base) : NULL;
    free(base);
    o->model = agx_remote_setting(cfg ? cfg->openai_model : NULL, model_env, NULL);
    o->api_key = agx_remote_setting(cfg ? cfg->openai_api_key : NULL, key_env, NULL);
    o->shown = o->base_url ? agx_http_redact_url(o->base_url) : NULL;
    if (!o->base_url || !o->shown) {
        openai_destroy(&o->base);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    for (const char *k = o->api_key; k && *k; k++)
        if (!isprint((unsigned char)*k) || *k == ' ') {
            openai_destroy(&o->base);
            return agx_error_set(err, AGX_ERR_CONFIG,
                                 "AGX_OPENAI_API_KEY contains spaces or control characters "
                                 "(it is not shown here); set it to the bare key");
        }
    agx_status st = agx_remote_common_init("openai", cfg, cfg ? cfg->openai_timeout_secs : 0, "AGX_OPENAI_TIMEOUT_SECS",
                                           OPENAI_DEFAULT_TIMEOUT, &o->sampling, &o->http, err);
    if (st != AGX_OK) {
        openai_destroy(&o->base);
        return st;
    }
    *out = &o->base;
    return AGX_OK;
}
