/* ollama.c — the Ollama backend over HTTP (not the `ollama` CLI): POST /api/chat
 * non-streaming with the Echo/Delta prompt, `format` = the plan JSON schema
 * (structured outputs) and sampling options from the AGX_CANDLE_* settings;
 * health = GET /api/version, then the model in GET /api/tags. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agx/planner.h"
#include "agx/util.h"
#include "backends/http.h"
#include "backends/remote.h"

#define OLLAMA_DEFAULT_MODEL "phi3:mini"
#define OLLAMA_DEFAULT_HOST "http://127.0.0.1:11434"
#define OLLAMA_DEFAULT_TIMEOUT 300

typedef struct ollama_backend {
    agx_backend base;
    char *host; /* scheme://host:port[/prefix], no trailing slash */
    char *model;
    agx_model_role role;
    agx_remote_sampling sampling;
    bool schema_rejected; /* an Ollama older than 0.5 refused a schema: send "json" */
    char *shown;          /* host without credentials, for messages */
    agx_http_options http;
} ollama_backend;

/* OLLAMA_HOST may be "host", "host:port" or a URL; like Ollama's own client, a
 * bare host gets http:// and port 11434. */
static char *normalize_host(const char *h) {
    while (*h == ' ')
        h++;
    char *s;
    if (strstr(h, "://")) {
        s = agx_strdup(h);
    } else {
        size_t alen = strcspn(h, "/");
        bool has_port;
        if (h[0] == '[') { /* [v6] or [v6]:port */
            const char *rb = memchr(h, ']', alen);
            has_port = rb && rb + 1 < h + alen && rb[1] == ':';
        } else {
            has_port = memchr(h, ':', alen) != NULL;
        }
        s = has_port ? agx_sprintf("http://%s", h)
                     : agx_sprintf("http://%.*s:11434%s", (int)alen, h, h + alen);
    }
    if (!s) return NULL;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '/' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

static const char *ollama_type(const agx_backend *b) {
    (void)b;
    return "ollama";
}

static const char *ollama_model(const agx_backend *b) { return ((const ollama_backend *)b)->model; }

static void ollama_destroy(agx_backend *b) {
    ollama_backend *o = (ollama_backend *)b;
    if (!o) return;
    free(o->host);
    free(o->shown);
    free(o->model);
    free(o);
}

static agx_status model_missing(const ollama_backend *o, agx_status code, agx_error *err) {
    return agx_error_set(err, code, "Model '%s' not found. Run 'ollama pull %s' to download it.",
                         o->model, o->model);
}

/* Adds advice to transport failures that only make sense for Ollama. */
static agx_status decorate(const ollama_backend *o, agx_status st, const agx_http_response *r,
                           agx_error *err) {
    (void)o;
    if (r->failure == AGX_HTTP_FAIL_REFUSED)
        agx_remote_error_append(err, ". Start it with 'ollama serve', or set AGX_OLLAMA_HOST to "
                                     "where it runs.");
    else if (r->failure == AGX_HTTP_FAIL_DNS || r->failure == AGX_HTTP_FAIL_TLS)
        agx_remote_error_append(err, ". Check AGX_OLLAMA_HOST (or OLLAMA_HOST).");
    return st;
}

/* "name" or "name:latest" equals the tag listed by /api/tags. */
static bool same_model(const char *want, const char *have) {
    if (!have) return false;
    if (strcmp(want, have) == 0) return true;
    size_t n = strlen(want);
    return !strchr(want, ':') && strncmp(want, have, n) == 0 && strcmp(have + n, ":latest") == 0;
}

static agx_status ollama_health(agx_backend *b, agx_error *err) {
    ollama_backend *o = (ollama_backend *)b;
    char *url = agx_sprintf("%s/api/version", o->host);
    if (!url) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_http_request req = {.method = "GET", .url = url, .what = "ollama /api/version"};
    agx_http_response r;
    agx_status st = agx_http_send(&o->http, &req, &r, err);
    free(url);
    json_t *j = NULL;
    if (st != AGX_OK) {
        decorate(o, st, &r, err);
        agx_http_response_free(&r);
        return st;
    }
    st = agx_remote_parse_reply("ollama /api/version", r.body, r.body_len, &j, err);
    agx_http_response_free(&r);
    if (st != AGX_OK) return st;
    bool is_ollama = json_is_string(json_object_get(j, "version"));
    if (is_ollama)
        agx_log(AGX_LOG_INFO, "ollama %s at %s", json_string_value(json_object_get(j, "version")),
                o->shown);
    json_decref(j);
    if (!is_ollama)
        return agx_error_set(err, AGX_ERR_HEALTH_CHECK,
                             "%s answered /api/version without a version; is it an Ollama "
                             "server? (check AGX_OLLAMA_HOST)",
                             o->shown);

    url = agx_sprintf("%s/api/tags", o->host);
    if (!url) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    req.url = url;
    req.what = "ollama /api/tags";
    st = agx_http_send(&o->http, &req, &r, err);
    free(url);
    if (st != AGX_OK) {
        decorate(o, st, &r, err);
        agx_http_response_free(&r);
        return st;
    }
    st = agx_remote_parse_reply("ollama /api/tags", r.body, r.body_len, &j, err);
    agx_http_response_free(&r);
    if (st != AGX_OK) return st;
    json_t *models = json_object_get(j, "models");
    bool found = false;
    size_t i;
    json_t *m;
    json_array_foreach(models, i, m) {
        found = found || same_model(o->model, json_string_value(json_object_get(m, "name"))) ||
                same_model(o->model, json_string_value(json_object_get(m, "model")));
    }
    bool listed = json_is_array(models);
    json_decref(j);
    if (!listed)
        return agx_error_set(err, AGX_ERR_HEALTH_CHECK,
                             "%s/api/tags has no \"models\" list; is it an Ollama server?",
                             o->shown);
    return found ? AGX_OK : model_missing(o, AGX_ERR_HEALTH_CHECK, err);
}

/* The /api/chat body: model, messages, stream false, format = schema, options. */
static char *chat_body(const ollama_backend *o, const agx_prompt *p, const char *schema,
                       agx_error *err) {
    json_t *format = o->schema_rejected ? json_string("json") : json_loads(schema, 0, NULL);
    json_t *msgs = json_array();
    for (size_t i = 0; msgs && i < p->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", p->messages[i].role, "content",
                                              p->messages[i].content));
    json_t *opts = json_pack("{s:f, s:f}", "temperature", o->sampling.temperature, "top_p",
                             o->sampling.top_p);
    if (opts && o->sampling.max_tokens > 0)
        json_object_set_new(opts, "num_predict", json_integer(o->sampling.max_tokens));
    if (opts && o->sampling.seed_set) json_object_set_new(opts, "seed", json_integer(o->sampling.seed));
    json_t *root = (format && msgs && opts)
                       ? json_pack("{s:s, s:O, s:b, s:O, s:O}", "model", o->model, "messages", msgs,
                                   "stream", 0, "format", format, "options", opts)
                       : NULL;
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    json_decref(format);
    json_decref(msgs);
    json_decref(opts);
    if (!s) agx_error_set(err, AGX_ERR_NOMEM, "ollama: could not build the /api/chat request");
    return s;
}

static agx_status ollama_generate(agx_backend *b, const char *instruction,
                                  const agx_plan_context *ctx, agx_generated_plan *out,
                                  agx_error *err) {
    ollama_backend *o = (ollama_backend *)b;
    agx_generated_plan_init(out);
    int64_t t0 = agx_time_ms();
    agx_prompt prompt;
    agx_status st = agx_prompt_build(o->role, instruction, ctx, &prompt, err);
    if (st != AGX_OK) return st;
    char *schema = agx_plan_schema_json(ctx->registry, ctx->max_tasks);
    char *url = agx_sprintf("%s/api/chat", o->host);
    agx_http_response r = {0};
    for (;;) {
        bool with_schema = !o->schema_rejected;
        char *body = schema && url ? chat_body(o, &prompt, schema, err) : NULL;
        if (!body) {
            st = agx_error_set(err, AGX_ERR_NOMEM, "ollama: could not build the request");
            break;
        }
        agx_http_request req = {
            .method = "POST", .url = url, .json_body = body, .what = "ollama /api/chat",
            .cancel = ctx->cancel};
        st = agx_http_send(&o->http, &req, &r, err);
        free(body);
        /* Ollama before 0.5 accepts only "format":"json" and answers 400 otherwise. */
        if (st != AGX_OK && with_schema && r.status == 400 && r.body && strstr(r.body, "format")) {
            agx_log(AGX_LOG_WARN,
                    "ollama: %s rejected a JSON-schema format (Ollama < 0.5?); "
                    "using format \"json\" (plans are still validated)",
                    o->shown);
            o->schema_rejected = true;
            agx_http_response_free(&r);
            continue;
        }
        break;
    }
    agx_prompt_free(&prompt);
    free(schema);
    free(url);
    if (st != AGX_OK) {
        /* Ollama answers 404 {"error":"model \"x\" not found, try pulling it first"} */
        if (r.status == 404 && r.body && strstr(r.body, "not found"))
            st = model_missing(o, AGX_ERR_LOAD, err);
        else
            decorate(o, st, &r, err);
        agx_http_response_free(&r);
        return st;
    }
    json_t *j;
    st = agx_remote_parse_reply("ollama /api/chat", r.body, r.body_len, &j, err);
    agx_http_response_free(&r);
    if (st != AGX_OK) return st;

    json_t *msg = json_object_get(j, "message");
    json_t *content = json_object_get(msg, "content");
    if (!json_is_string(content)) {
        json_t *e = json_object_get(j, "error");
        char *says = json_is_string(e)
                         ? agx_http_excerpt(json_string_value(e), json_string_length(e), 300, NULL)
                         : NULL;
        st = says ? agx_error_set(err, AGX_ERR_INFERENCE, "ollama /api/chat: the server says: %s",
                                  says)
                  : agx_error_set(err, AGX_ERR_JSON,
                                  "ollama /api/chat: the reply has no message.content string; is "
                                  "AGX_OLLAMA_HOST an Ollama server?");
        free(says);
        json_decref(j);
        return st;
    }
    const char *reason = json_string_value(json_object_get(j, "done_reason"));
    char *who = agx_sprintf("ollama model '%s'", o->model);
    st = agx_remote_plan_from_content(who ? who : "ollama", json_string_value(content),
                                      json_string_length(content), ctx, &out->plan, err);
    free(who);
    if (st != AGX_OK && reason && strcmp(reason, "length") == 0)
        agx_remote_error_append(err, "; the reply was cut at the token limit (raise "
                                     "AGX_CANDLE_MAX_TOKENS)");
    if (st == AGX_OK) {
        out->meta.model = agx_strdup(o->model);
        out->meta.backend = agx_strdup("ollama");
        out->meta.prompt_tokens = agx_remote_json_count(j, "prompt_eval_count");
        out->meta.tokens = agx_remote_json_count(j, "eval_count");
        out->meta.latency_ms = agx_time_ms() - t0;
        agx_log(AGX_LOG_INFO,
                "ollama: %lld prompt tokens in %lld ms, %lld tokens in %lld ms, total %lld ms "
                "(server), %lld ms (wall)",
                (long long)out->meta.prompt_tokens,
                agx_remote_json_count(j, "prompt_eval_duration") / 1000000,
                (long long)out->meta.tokens, agx_remote_json_count(j, "eval_duration") / 1000000,
                agx_remote_json_count(j, "total_duration") / 1000000,
                (long long)out->meta.latency_ms);
        if (!out->meta.model || !out->meta.backend) {
            agx_generated_plan_free(out);
            st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        }
    }
    json_decref(j);
    return st;
}

static const agx_backend_ops OLLAMA_OPS = {
    .generate_plan = ollama_generate,
    .backend_type = ollama_type,
    .model_name = ollama_model,
    .health_check = ollama_health,
    .destroy = ollama_destroy,
};

agx_status agx_backend_ollama_create(const agx_planner_config *cfg, agx_model_role role,
                                     agx_backend **out, agx_error *err) {
    *out = NULL;
    ollama_backend *o = calloc(1, sizeof *o);
    if (!o) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    o->base.ops = &OLLAMA_OPS;
    o->role = role;
    static const char *const host_env[] = {"AGX_OLLAMA_HOST", "OLLAMA_HOST", NULL};
    static const char *const model_env[] = {"AGX_OLLAMA_MODEL", NULL};
    char *host = agx_remote_setting(cfg ? cfg->ollama_host : NULL, host_env, OLLAMA_DEFAULT_HOST);
    o->host = host ? normalize_host(host) : NULL;
    free(host);
    o->model = agx_remote_setting(cfg ? cfg->ollama_model : NULL, model_env, OLLAMA_DEFAULT_MODEL);
    o->shown = o->host ? agx_http_redact_url(o->host) : NULL;
    if (!o->host || !o->shown || !o->model) {
        ollama_destroy(&o->base);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    agx_status st = agx_remote_common_init("ollama", cfg, cfg ? cfg->ollama_timeout_secs : 0, "AGX_OLLAMA_TIMEOUT_SECS",
                                           OLLAMA_DEFAULT_TIMEOUT, &o->sampling, &o->http, err);
    if (st != AGX_OK) {
        ollama_destroy(&o->base);
        return st;
    }
    *out = &o->base;
    return AGX_OK;
}
