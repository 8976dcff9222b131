/* test_remote_backends.c — the Ollama and OpenAI-compatible backends against a
 * mock server (libmicrohttpd on 127.0.0.1, ephemeral port) that speaks both
 * APIs as the real servers do. The mock validates every request like the real
 * server would (model present, stream false, schema in the right field, JSON
 * content type, well-formed messages, strict-schema rules) and records a
 * violation that fails the test; it can be told to misbehave: HTTP errors,
 * 429/503 with Retry-After, sleeping past the timeout, cut-off and non-JSON
 * bodies, oversized replies, replies that are not plans. Also: refused
 * connections (a closed port), DNS failure (a .invalid name) and TLS failure
 * (https:// to this plain-HTTP server). Nothing leaves 127.0.0.1. */
#include "agx_test.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agx/agx.h"
#include "backends/http.h"

#ifdef AGX_HAVE_MHD
#include <curl/curl.h>
#include <microhttpd.h>

/* ------------------------------------------------------------------------ */
/* mock server                                                              */
/* ------------------------------------------------------------------------ */

#define MAX_TIMES 16

typedef struct mock {
    struct MHD_Daemon *daemon;
    unsigned short port;
    char base[64];
    pthread_mutex_t mu;
    _Atomic int stopping;

    /* behaviour (set by the test before a request) */
    const char *models[4];     /* served models */
    const char *content;       /* assistant content of chat replies */
    const char *finish_reason; /* openai finish_reason / ollama done_reason */
    int fail_status;           /* answer chat (and health) with this status ... */
    int fail_times;            /* ... this many times (then normally) */
    const char *fail_body;
    const char *retry_after; /* Retry-After header on failures */
    int sleep_ms;            /* sleep before answering */
    int truncate;            /* announce more bytes than sent */
    const char *raw_body;    /* 200 with this exact body (non-JSON, cut JSON...) */
    size_t huge_bytes;       /* 200 with a body this large */
    int huge_chunked;        /* ... without Content-Length */
    int reject_schema;       /* openai: 400 on response_format json_schema */
    const char *require_key; /* openai: bearer token required */
    const char *refusal;     /* openai: content null, this refusal */

    /* records */
    int requests;
    int chat_requests;
    int64_t times_ms[MAX_TIMES];
    char violations[4096];
    json_t *last_chat; /* last chat request body */
    char last_path[128];
} mock;

typedef struct conn_buf {
    char *data;
    size_t len;
    int too_big;
} conn_buf;

static void violation(mock *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(mock *m, const char *fmt, ...) {
    pthread_mutex_lock(&m->mu);
    size_t used = strlen(m->violations);
    va_list ap;
    va_start(ap, fmt);
    if (used + 2 < sizeof m->violations) {
        vsnprintf(m->violations + used, sizeof m->violations - used - 1, fmt, ap);
        strcat(m->violations, "\n");
    }
    va_end(ap);
    pthread_mutex_unlock(&m->mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *body, const char *retry_after) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j) {
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    enum MHD_Result ret = reply(c, status, "application/json; charset=utf-8", s, NULL);
    free(s);
    return ret;
}

static size_t discard(char *p, size_t sz, size_t n, void *u) {
    (void)p;
    (void)u;
    return sz * n;
}

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    const char *s = cls;
    size_t n = strlen(s);
    if (pos >= n) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t k = n - (size_t)pos < max ? n - (size_t)pos : max;
    memcpy(buf, s + pos, k);
    return (ssize_t)k;
}

static ssize_t huge_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    mock *m = cls;
    if (pos >= m->huge_bytes) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t k = m->huge_bytes - (size_t)pos < max ? m->huge_bytes - (size_t)pos : max;
    memset(buf, ' ', k);
    if (pos == 0) buf[0] = '{';
    return (ssize_t)k;
}

static bool served(mock *m, const char *model) {
    for (int i = 0; i < 4 && m->models[i]; i++)
        if (strcmp(m->models[i], model) == 0) return true;
    return false;
}

static void check_messages(mock *m, json_t *msgs, const char *api) {
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        violation(m, "%s: messages missing or empty", api);
        return;
    }
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")))
            violation(m, "%s: messages[%zu].role invalid", api, i);
        if (!json_is_string(json_object_get(msg, "content")))
            violation(m, "%s: messages[%zu].content not a string", api, i);
        if (json_object_size(msg) != 2) violation(m, "%s: messages[%zu] has extra keys", api, i);
    }
}

/* The plan schema as agx must send it: object with tasks -> items -> command enum. */
static void check_plan_schema(mock *m, json_t *s, const char *api) {
    json_t *items =
        json_object_get(json_object_get(json_object_get(s, "properties"), "tasks"), "items");
    json_t *en =
        json_object_get(json_object_get(json_object_get(items, "properties"), "command"), "enum");
    if (!json_is_object(s) ||
        strcmp(json_string_value(json_object_get(s, "type")) ?: "", "object") ||
        !json_is_array(en) || json_array_size(en) == 0)
        violation(m, "%s: the schema is not the plan schema", api);
}

static void check_keys(mock *m, json_t *obj, const char *const *allowed, const char *api) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || strcmp(allowed[i], key) == 0;
        if (!ok) violation(m, "%s: unexpected field '%s' (schema in the wrong field?)", api, key);
    }
}

/* OpenAI strict structured outputs: every object lists all properties as
 * required and forbids additional ones. */
static void check_strict(mock *m, json_t *node) {
    if (!json_is_object(node)) return;
    json_t *props = json_object_get(node, "properties");
    if (json_is_object(props)) {
        if (!json_is_false(json_object_get(node, "additionalProperties")))
            violation(m, "openai: strict schema object without additionalProperties false");
        json_t *req = json_object_get(node, "required");
        const char *key;
        json_t *v;
        json_object_foreach(props, key, v) {
            bool listed = false;
            size_t i;
            json_t *r;
            json_array_foreach(req, i, r) listed =
                listed || (json_is_string(r) && !strcmp(json_string_value(r), key));
            if (!listed) violation(m, "openai: strict schema: '%s' not in required", key);
            check_strict(m, v);
        }
    }
    check_strict(m, json_object_get(node, "items"));
}

static const char *const OLLAMA_KEYS[] = {"model",   "messages",   "stream", "format",
                                          "options", "keep_alive", NULL};
static const char *const OLLAMA_OPTS[] = {"temperature", "top_p", "num_predict", "seed", NULL};
static const char *const OPENAI_KEYS[] = {"model",  "messages",        "temperature",
                                          "top_p",  "max_tokens",      "seed",
                                          "stream", "response_format", NULL};

static enum MHD_Result ollama_chat(mock *m, struct MHD_Connection *c, json_t *body) {
    const char *api = "ollama /api/chat";
    check_keys(m, body, OLLAMA_KEYS, api);
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model) {
        violation(m, "%s: model missing", api);
        return reply_json(c, 400, json_pack("{s:s}", "error", "model is required"));
    }
    check_messages(m, json_object_get(body, "messages"), api);
    if (!json_is_false(json_object_get(body, "stream")))
        violation(m, "%s: stream is not false (the server would stream NDJSON)", api);
    json_t *fmt = json_object_get(body, "format");
    if (json_is_object(fmt)) {
        check_plan_schema(m, fmt, api);
        if (m->reject_schema) /* like Ollama before 0.5 */
            return reply_json(c, 400,
                              json_pack("{s:s}", "error", "invalid format: expected \"json\""));
    } else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "json") != 0) {
        violation(m, "%s: format is neither a JSON schema nor \"json\"", api);
    }
    json_t *opts = json_object_get(body, "options");
    if (opts) {
        check_keys(m, opts, OLLAMA_OPTS, "ollama options");
        if (!json_is_number(json_object_get(opts, "temperature")) ||
            !json_is_number(json_object_get(opts, "top_p")))
            violation(m, "%s: options.temperature/top_p not numbers", api);
        json_t *np = json_object_get(opts, "num_predict");
        if (np && !json_is_integer(np)) violation(m, "%s: options.num_predict not integer", api);
    }
    if (!served(m, model)) {
        char *e = agx_sprintf("model \"%s\" not found, try pulling it first", model);
        enum MHD_Result r = reply_json(c, 404, json_pack("{s:s}", "error", e));
        free(e);
        return r;
    }
    return reply_json(c, 200,
                      json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
                                "model", model, "created_at", "2026-01-01T00:00:00Z", "message",
                                "role", "assistant", "content", m->content, "done_reason",
                                m->finish_reason ?: "stop", "done", 1, "total_duration",
                                (json_int_t)950000000, "load_duration", (json_int_t)1000000,
                                "prompt_eval_count", (json_int_t)123, "prompt_eval_duration",
                                (json_int_t)400000000, "eval_count", (json_int_t)45,
                                "eval_duration", (json_int_t)500000000));
}

static enum MHD_Result openai_chat(mock *m, struct MHD_Connection *c, json_t *body) {
    const char *api = "openai /v1/chat/completions";
    check_keys(m, body, OPENAI_KEYS, api);
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model) {
        violation(m, "%s: model missing", api);
        return reply_json(c, 400,
                          json_pack("{s:{s:s,s:s}}", "error", "message",
                                    "you must provide a model parameter", "type",
                                    "invalid_request_error"));
    }
    check_messages(m, json_object_get(body, "messages"), api);
    json_t *st = json_object_get(body, "stream");
    if (st && !json_is_false(st)) violation(m, "%s: stream is not false", api);
    json_t *mt = json_object_get(body, "max_tokens");
    if (mt && (!json_is_integer(mt) || json_integer_value(mt) <= 0))
        violation(m, "%s: max_tokens not a positive integer", api);
    json_t *rf = json_object_get(body, "response_format");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type) {
        violation(m, "%s: response_format.type missing", api);
    } else if (strcmp(type, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        const char *name = json_string_value(json_object_get(js, "name"));
        if (!name || !*name ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_-") != strlen(name))
            violation(m, "%s: response_format.json_schema.name missing or invalid", api);
        json_t *schema = json_object_get(js, "schema");
        check_plan_schema(m, schema, api);
        if (json_is_true(json_object_get(js, "strict"))) check_strict(m, schema);
        if (m->reject_schema)
            return reply_json(c, 400,
                              json_pack("{s:{s:s, s:s, s:s}}", "error", "message",
                                        "Unsupported response_format type: json_schema", "type",
                                        "invalid_request_error", "param", "response_format"));
    } else if (strcmp(type, "json_object") != 0) {
        violation(m, "%s: response_format.type '%s' unexpected", api, type);
    } else if (json_object_size(rf) != 1) {
        violation(m, "%s: json_object response_format with extra fields", api);
    }
    if (!served(m, model)) {
        char *e = agx_sprintf("The model `%s` does not exist.", model);
        enum MHD_Result r =
            reply_json(c, 404,
                       json_pack("{s:s, s:s, s:s, s:i}", "object", "error", "message", e, "type",
                                 "NotFoundError", "code", 404));
        free(e);
        return r;
    }
    if (m->refusal)
        return reply_json(c, 200,
                          json_pack("{s:s, s:[{s:i, s:{s:s, s:n, s:s}, s:s}]}", "object",
                                    "chat.completion", "choices", "index", 0, "message", "role",
                                    "assistant", "content", "refusal", m->refusal, "finish_reason",
                                    "stop"));
    return reply_json(
        c, 200,
        json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}", "id",
                  "chatcmpl-1", "object", "chat.completion", "created", 1700000000, "model", model,
                  "choices", "index", 0, "message", "role", "assistant", "content", m->content,
                  "finish_reason", m->finish_reason ?: "stop", "usage", "prompt_tokens", 123,
                  "completion_tokens", 45, "total_tokens", 168));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    (void)version;
    mock *m = cls;
    conn_buf *cb = *con_cls;
    if (!cb) {
        cb = calloc(1, sizeof *cb);
        *con_cls = cb;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cb->len + *upload_size > (1u << 20)) {
            cb->too_big = 1;
        } else {
            cb->data = realloc(cb->data, cb->len + *upload_size + 1);
            memcpy(cb->data + cb->len, upload, *upload_size);
            cb->len += *upload_size;
            cb->data[cb->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }

    bool is_chat = strcmp(url, "/api/chat") == 0 || strcmp(url, "/v1/chat/completions") == 0;
    pthread_mutex_lock(&m->mu);
    if (m->requests < MAX_TIMES) m->times_ms[m->requests] = agx_time_ms();
    m->requests++;
    if (is_chat) m->chat_requests++;
    snprintf(m->last_path, sizeof m->last_path, "%s %s", method, url);
    bool fail = m->fail_times > 0;
    if (fail) m->fail_times--;
    pthread_mutex_unlock(&m->mu);

    for (int slept = 0; slept < m->sleep_ms && !m->stopping; slept += 10)
        usleep(10000);

    if (cb->too_big) violation(m, "%s: request body over 1 MiB", url);
    if (fail)
        return reply(c, (unsigned)m->fail_status, "application/json",
                     m->fail_body ? m->fail_body : "{\"error\":\"failing on purpose\"}",
                     m->retry_after);
    if (m->raw_body) return reply(c, 200, "application/json", m->raw_body, NULL);
    if (m->truncate) {
        static const char partial[] = "{\"model\":\"phi3:mini\",\"message\":{\"role\":";
        struct MHD_Response *r = MHD_create_response_from_callback(
            sizeof partial - 1 + 4096, 256, cut_reader, (void *)partial, NULL);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (m->huge_bytes) {
        struct MHD_Response *r;
        if (m->huge_chunked) {
            r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, huge_reader, m, NULL);
        } else {
            char *big = malloc(m->huge_bytes);
            memset(big, ' ', m->huge_bytes);
            big[0] = '{';
            r = MHD_create_response_from_buffer(m->huge_bytes, big, MHD_RESPMEM_MUST_FREE);
        }
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }

    bool is_openai = strncmp(url, "/v1/", 4) == 0;
    if (is_openai && m->require_key) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char *want = agx_sprintf("Bearer %s", m->require_key);
        bool ok = auth && strcmp(auth, want) == 0;
        free(want);
        if (!ok) {
            /* like OpenAI: the error echoes (part of) the key that was sent */
            char *e = agx_sprintf("Incorrect API key provided: %s. You can find your API key at "
                                  "https://platform.openai.com/account/api-keys.",
                                  auth && strlen(auth) > 7 ? auth + 7 : "(none)");
            enum MHD_Result r = reply_json(c, 401,
                                           json_pack("{s:{s:s, s:s}}", "error", "message", e,
                                                     "type", "invalid_request_error"));
            free(e);
            return r;
        }
    }

    if (strcmp(method, "GET") == 0) {
        if (cb->len) violation(m, "GET %s with a body", url);
        if (strcmp(url, "/api/version") == 0)
            return reply_json(c, 200, json_pack("{s:s}", "version", "0.5.7"));
        if (strcmp(url, "/api/tags") == 0) {
            json_t *list = json_array();
            for (int i = 0; i < 4 && m->models[i]; i++)
                json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "name", m->models[i],
                                                      "model", m->models[i], "size", 1234));
            return reply_json(c, 200, json_pack("{s:o}", "models", list));
        }
        if (strcmp(url, "/v1/models") == 0) {
            json_t *list = json_array();
            for (int i = 0; i < 4 && m->models[i]; i++)
                json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "id", m->models[i],
                                                      "object", "model", "owned_by", "agx-test"));
            return reply_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", list));
        }
    } else if (strcmp(method, "POST") == 0 && is_chat) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (!ct || strncmp(ct, "application/json", 16) != 0)
            violation(m, "%s: Content-Type is '%s', not application/json", url, ct ?: "(none)");
        json_error_t jerr;
        json_t *body = cb->data ? json_loadb(cb->data, cb->len, 0, &jerr) : NULL;
        if (!json_is_object(body)) {
            violation(m, "%s: body is not a JSON object", url);
            json_decref(body);
            return reply_json(c, 400, json_pack("{s:s}", "error", "invalid JSON body"));
        }
        /* a copy: jansson's reference counts do not order a free after another
         * thread's last read (ThreadSanitizer reports the shared object) */
        pthread_mutex_lock(&m->mu);
        json_decref(m->last_chat);
        m->last_chat = json_deep_copy(body);
        pthread_mutex_unlock(&m->mu);
        enum MHD_Result r = is_openai ? openai_chat(m, c, body) : ollama_chat(m, c, body);
        json_decref(body);
        return r;
    }
    return reply(c, 404, "text/plain", "404 page not found", NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    conn_buf *cb = *con_cls;
    if (cb) {
        free(cb->data);
        free(cb);
        *con_cls = NULL;
    }
}

static const char *GOOD_PLAN =
    "{\"tasks\":[{\"task_number\":1,\"command\":\"grep\",\"args\":[\"-rn\",\"TODO\",\"src\"]},"
    "{\"task_number\":2,\"command\":\"wc\",\"args\":[\"-l\"],\"input_from_task\":1}]}";

static mock *mock_start(void) {
    mock *m = calloc(1, sizeof *m);
    assert_non_null(m);
    pthread_mutex_init(&m->mu, NULL);
    m->models[0] = "phi3:mini";
    m->models[1] = "qwen2.5:0.5b";
    m->content = GOOD_PLAN;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    m->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                         NULL, handle, m, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED,
                         completed, m, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    assert_non_null(m->daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    m->port = info->port;
    assert_true(m->port > 0);
    snprintf(m->base, sizeof m->base, "http://127.0.0.1:%u", m->port);
    return m;
}

static void mock_stop(mock *m) {
    m->stopping = 1;
    MHD_stop_daemon(m->daemon);
    json_decref(m->last_chat);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Fails the test when agx sent anything the real server would reject. */
#define assert_no_violations(m)                                                                    \
    do {                                                                                           \
        if ((m)->violations[0]) fail_msg("request validation:\n%s", (m)->violations);              \
    } while (0)

/* ------------------------------------------------------------------------ */
/* fixtures                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct fixture {
    mock *m;
    agx_registry reg;
    agx_planner_config cfg;
    agx_plan_context ctx;
} fixture;

static const char *const TOOL_IDS[][2] = {
    {"grep", "print lines that match a pattern"},
    {"wc", "count lines, words and bytes"},
    {"sort", "sort lines of text"},
    {"uniq", "report or omit repeated lines"},
    {"head", "output the first part of files"},
};

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->m = mock_start();
    size_t n = sizeof TOOL_IDS / sizeof *TOOL_IDS;
    f->reg.tools = calloc(n, sizeof *f->reg.tools);
    f->reg.count = f->reg.cap = n;
    for (size_t i = 0; i < n; i++) {
        f->reg.tools[i].id = strdup(TOOL_IDS[i][0]);
        f->reg.tools[i].command = strdup(TOOL_IDS[i][0]);
        f->reg.tools[i].description = strdup(TOOL_IDS[i][1]);
        f->reg.tools[i].ok_exit_codes = calloc(1, sizeof(int));
        f->reg.tools[i].n_ok_exit_codes = 1;
    }
    agx_plan_context_init(&f->ctx, &f->reg);
    f->cfg.backend = AGX_BACKEND_OLLAMA;
    f->cfg.temperature = 0.2;
    f->cfg.top_p = 0.9;
    f->cfg.max_tokens = 512;
    f->cfg.seed = 42;
    f->cfg.seed_set = true;
    f->cfg.ollama_host = strdup(f->m->base);
    f->cfg.ollama_model = strdup("phi3:mini");
    f->cfg.ollama_timeout_secs = 5;
    f->cfg.openai_base_url = agx_sprintf("%s/v1/", f->m->base);
    f->cfg.openai_model = strdup("qwen2.5:0.5b");
    f->cfg.openai_timeout_secs = 5;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    mock_stop(f->m);
    for (size_t i = 0; i < f->reg.count; i++) {
        free(f->reg.tools[i].id);
        free(f->reg.tools[i].command);
        free(f->reg.tools[i].description);
        free(f->reg.tools[i].ok_exit_codes);
    }
    free(f->reg.tools);
    free(f->cfg.ollama_host);
    free(f->cfg.ollama_model);
    free(f->cfg.openai_base_url);
    free(f->cfg.openai_model);
    free(f->cfg.openai_api_key);
    free(f);
    return 0;
}

static void set_str(char **slot, const char *v) {
    free(*slot);
    *slot = v ? strdup(v) : NULL;
}

static agx_backend *make(fixture *f, agx_backend_kind kind) {
    agx_backend *b = NULL;
    agx_error err = {0};
    agx_status st = kind == AGX_BACKEND_OLLAMA
                        ? agx_backend_ollama_create(&f->cfg, AGX_ROLE_ECHO, &b, &err)
                        : agx_backend_openai_create(&f->cfg, AGX_ROLE_ECHO, &b, &err);
    if (st != AGX_OK) fail_msg("create: %s", err.message);
    return b;
}

/* Plans with the backend; returns the status, err filled. */
static agx_status plan_with(fixture *f, agx_backend_kind kind, agx_generated_plan *gp,
                            agx_error *err) {
    agx_backend *b = make(f, kind);
    agx_error_clear(err);
    agx_status st =
        agx_backend_generate_plan(b, "count the TODO lines under src", &f->ctx, gp, err);
    agx_backend_destroy(b);
    return st;
}

static void expect_failure(fixture *f, agx_backend_kind kind, agx_status want, int exit_code,
                           const char *needle) {
    agx_generated_plan gp;
    agx_error err;
    agx_status st = plan_with(f, kind, &gp, &err);
    if (st != want)
        fail_msg("expected %s, got %s: %s", agx_status_name(want), agx_status_name(st),
                 err.message);
    assert_int_equal(agx_status_exit_code(st), exit_code);
    if (getenv("AGX_TEST_VERBOSE"))
        fprintf(stderr, "  [%s] %s\n", agx_status_name(st), err.message);
    if (needle && !strstr(err.message, needle))
        fail_msg("message lacks '%s': %s", needle, err.message);
    assert_int_equal(gp.plan.n_tasks, 0);
    agx_generated_plan_free(&gp);
}

/* ------------------------------------------------------------------------ */
/* happy paths                                                              */
/* ------------------------------------------------------------------------ */

static void check_good_plan(const agx_generated_plan *gp) {
    assert_int_equal(gp->plan.n_tasks, 2);
    assert_string_equal(gp->plan.tasks[0].command, "grep");
    assert_int_equal(gp->plan.tasks[0].n_args, 3);
    assert_string_equal(gp->plan.tasks[0].args[1], "TODO");
    assert_string_equal(gp->plan.tasks[1].command, "wc");
    assert_int_equal(gp->plan.tasks[1].input_from_task, 1);
    assert_int_equal(gp->meta.prompt_tokens, 123);
    assert_int_equal(gp->meta.tokens, 45);
    assert_true(gp->meta.latency_ms >= 0);
}

static void test_ollama_plan(void **state) {
    fixture *f = *state;
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OLLAMA, &gp, &err), AGX_OK);
    assert_no_violations(f->m);
    check_good_plan(&gp);
    assert_string_equal(gp.meta.backend, "ollama");
    assert_string_equal(gp.meta.model, "phi3:mini");
    agx_generated_plan_free(&gp);
    /* the request carried our settings */
    json_t *body = f->m->last_chat;
    assert_string_equal(json_string_value(json_object_get(body, "model")), "phi3:mini");
    json_t *opts = json_object_get(body, "options");
    assert_true(json_real_value(json_object_get(opts, "temperature")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(opts, "num_predict")), 512);
    assert_int_equal(json_integer_value(json_object_get(opts, "seed")), 42);
    json_t *msgs = json_object_get(body, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    const char *user = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
    assert_non_null(strstr(user, "count the TODO lines under src"));
    json_t *en = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(body, "format"), "properties"),
                                "tasks"),
                "items"),
            "properties"),
        "command");
    assert_int_equal(json_array_size(json_object_get(en, "enum")), f->reg.count);
}

static void test_ollama_health(void **state) {
    fixture *f = *state;
    agx_error err;
    agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
    assert_string_equal(agx_backend_type(b), "ollama");
    assert_string_equal(agx_backend_model_name(b), "phi3:mini");
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    /* "qwen2.5" without a tag matches "qwen2.5:latest" */
    f->m->models[2] = "qwen2.5:latest";
    set_str(&f->cfg.ollama_model, "qwen2.5");
    b = make(f, AGX_BACKEND_OLLAMA);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    /* an absent model: the seed's message, health-check kind */
    set_str(&f->cfg.ollama_model, "llama3:8b");
    b = make(f, AGX_BACKEND_OLLAMA);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_ERR_HEALTH_CHECK);
    assert_string_equal(err.message,
                        "Model 'llama3:8b' not found. Run 'ollama pull llama3:8b' to download it.");
    /* and the same message when planning (the server answers 404) */
    agx_generated_plan gp;
    assert_int_equal(agx_backend_generate_plan(b, "x y", &f->ctx, &gp, &err), AGX_ERR_LOAD);
    assert_string_equal(err.message,
                        "Model 'llama3:8b' not found. Run 'ollama pull llama3:8b' to download it.");
    agx_generated_plan_free(&gp);
    agx_backend_destroy(b);
    assert_no_violations(f->m);
}

static void test_ollama_host_forms(void **state) {
    fixture *f = *state;
    /* bare host:port (OLLAMA_HOST style) and a trailing slash both work */
    char *bare = agx_sprintf("127.0.0.1:%u", f->m->port);
    const char *forms[] = {bare, f->m->base, NULL};
    char *slash = agx_sprintf("%s/", f->m->base);
    forms[2] = slash;
    for (int i = 0; i < 3; i++) {
        set_str(&f->cfg.ollama_host, forms[i]);
        agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
        agx_error err;
        if (agx_backend_health_check(b, &err) != AGX_OK) fail_msg("%s: %s", forms[i], err.message);
        agx_backend_destroy(b);
    }
    /* unset in the config: AGX_OLLAMA_HOST, then OLLAMA_HOST */
    set_str(&f->cfg.ollama_host, NULL);
    unsetenv("AGX_OLLAMA_HOST");
    setenv("OLLAMA_HOST", bare, 1);
    agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
    agx_error err;
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    unsetenv("OLLAMA_HOST");
    free(bare);
    free(slash);
    assert_no_violations(f->m);
}

static void test_openai_plan(void **state) {
    fixture *f = *state;
    set_str(&f->cfg.openai_api_key, "sk-test-SECRET-0123456789");
    f->m->require_key = "sk-test-SECRET-0123456789";
    /* a strict-schema reply may carry input_from_task: null */
    f->m->content =
        "{\"tasks\":[{\"task_number\":1,\"command\":\"grep\",\"args\":[\"-rn\",\"TODO\",\"src\"],"
        "\"input_from_task\":null},{\"task_number\":2,\"command\":\"wc\",\"args\":[\"-l\"],"
        "\"input_from_task\":1}]}";
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_OK);
    assert_no_violations(f->m);
    check_good_plan(&gp);
    assert_string_equal(gp.meta.backend, "openai");
    assert_string_equal(gp.meta.model, "qwen2.5:0.5b");
    agx_generated_plan_free(&gp);
    json_t *rf = json_object_get(f->m->last_chat, "response_format");
    assert_string_equal(json_string_value(json_object_get(rf, "type")), "json_schema");
    assert_true(json_is_true(json_object_get(json_object_get(rf, "json_schema"), "strict")));
    assert_int_equal(json_integer_value(json_object_get(f->m->last_chat, "seed")), 42);
    assert_int_equal(json_integer_value(json_object_get(f->m->last_chat, "max_tokens")), 512);
    assert_string_equal(f->m->last_path, "POST /v1/chat/completions");

    agx_backend *b = make(f, AGX_BACKEND_OPENAI);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    /* base URL without /v1 works the same */
    set_str(&f->cfg.openai_base_url, f->m->base);
    b = make(f, AGX_BACKEND_OPENAI);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    /* a model the server does not list */
    set_str(&f->cfg.openai_model, "gpt-nope");
    b = make(f, AGX_BACKEND_OPENAI);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_ERR_HEALTH_CHECK);
    assert_non_null(strstr(err.message, "gpt-nope"));
    assert_non_null(strstr(err.message, "qwen2.5:0.5b"));
    agx_backend_destroy(b);
    /* no model configured: the server's first model is used */
    set_str(&f->cfg.openai_model, NULL);
    unsetenv("AGX_OPENAI_MODEL");
    b = make(f, AGX_BACKEND_OPENAI);
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    assert_string_equal(gp.meta.model, "phi3:mini");
    agx_generated_plan_free(&gp);
    agx_backend_destroy(b);
    assert_no_violations(f->m);
}

static void test_openai_schema_fallback(void **state) {
    fixture *f = *state;
    f->m->reject_schema = 1;
    agx_backend *b = make(f, AGX_BACKEND_OPENAI);
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    check_good_plan(&gp);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->chat_requests, 2); /* schema refused, then json_object */
    json_t *rf = json_object_get(f->m->last_chat, "response_format");
    assert_string_equal(json_string_value(json_object_get(rf, "type")), "json_object");
    /* the backend remembers: the next plan goes straight to json_object */
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->chat_requests, 3);
    agx_backend_destroy(b);
    assert_no_violations(f->m);
}

static void test_ollama_format_fallback(void **state) {
    fixture *f = *state;
    f->m->reject_schema = 1;
    agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    check_good_plan(&gp);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->chat_requests, 2);
    assert_string_equal(json_string_value(json_object_get(f->m->last_chat, "format")), "json");
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->chat_requests, 3); /* remembered */
    agx_backend_destroy(b);
    assert_no_violations(f->m);
}

static void test_defaults_from_env(void **state) {
    fixture *f = *state;
    /* no model in the config and none in the environment: phi3:mini */
    set_str(&f->cfg.ollama_model, NULL);
    agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
    assert_string_equal(agx_backend_model_name(b), "phi3:mini");
    agx_backend_destroy(b);
    setenv("AGX_OLLAMA_MODEL", "qwen2.5:0.5b", 1);
    b = make(f, AGX_BACKEND_OLLAMA);
    assert_string_equal(agx_backend_model_name(b), "qwen2.5:0.5b");
    agx_error err;
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    unsetenv("AGX_OLLAMA_MODEL");
    /* the OpenAI settings likewise */
    set_str(&f->cfg.openai_base_url, NULL);
    set_str(&f->cfg.openai_model, NULL);
    f->cfg.openai_timeout_secs = 0;
    setenv("AGX_OPENAI_BASE_URL", f->m->base, 1);
    setenv("AGX_OPENAI_MODEL", "phi3:mini", 1);
    setenv("AGX_OPENAI_TIMEOUT_SECS", "soon", 1);
    assert_int_equal(agx_backend_openai_create(&f->cfg, AGX_ROLE_DELTA, &b, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_OPENAI_TIMEOUT_SECS"));
    setenv("AGX_OPENAI_TIMEOUT_SECS", "3", 1);
    assert_int_equal(agx_backend_openai_create(&f->cfg, AGX_ROLE_DELTA, &b, &err), AGX_OK);
    assert_string_equal(agx_backend_model_name(b), "phi3:mini");
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    agx_backend_destroy(b);
    unsetenv("AGX_OPENAI_BASE_URL");
    unsetenv("AGX_OPENAI_MODEL");
    unsetenv("AGX_OPENAI_TIMEOUT_SECS");
    assert_no_violations(f->m);
}

/* The mock's own validation must catch what a real server would reject, or the
 * backend tests above prove nothing. Bad requests sent with libcurl directly. */
static void raw_post(mock *m, const char *path, const char *ctype, const char *body) {
    CURL *c = curl_easy_init();
    char *url = agx_sprintf("%s%s", m->base, path);
    struct curl_slist *h = NULL;
    char *ct = agx_sprintf("Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(url);
    free(ct);
}

static void expect_violation(mock *m, const char *needle) {
    if (!strstr(m->violations, needle))
        fail_msg("mock did not flag '%s'; it recorded:\n%s", needle, m->violations);
    m->violations[0] = '\0';
}

static void test_mock_rejects_bad_requests(void **state) {
    fixture *f = *state;
    mock *m = f->m;
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char *b;
    b = agx_sprintf("{%s,\"stream\":false,\"format\":\"json\"}", msgs);
    raw_post(m, "/api/chat", "application/json", b);
    expect_violation(m, "model missing");
    free(b);
    b = agx_sprintf("{\"model\":\"phi3:mini\",%s,\"stream\":false,\"format\":\"json\"}", msgs);
    raw_post(m, "/api/chat", "text/plain", b);
    expect_violation(m, "Content-Type");
    free(b);
    b = agx_sprintf("{\"model\":\"phi3:mini\",%s,\"format\":\"json\"}", msgs);
    raw_post(m, "/api/chat", "application/json", b);
    expect_violation(m, "stream is not false");
    free(b);
    b = agx_sprintf("{\"model\":\"phi3:mini\",%s,\"stream\":false,\"response_format\":{}}", msgs);
    raw_post(m, "/api/chat", "application/json", b);
    expect_violation(m, "unexpected field 'response_format'");
    free(b);
    raw_post(m, "/api/chat", "application/json",
             "{\"model\":\"phi3:mini\",\"messages\":[{\"role\":\"boss\",\"content\":1}],"
             "\"stream\":false,\"format\":\"json\"}");
    expect_violation(m, "messages[0].role invalid");
    b = agx_sprintf("{\"model\":\"phi3:mini\",%s,\"format\":{\"type\":\"object\"}}", msgs);
    raw_post(m, "/v1/chat/completions", "application/json", b);
    expect_violation(m, "unexpected field 'format'");
    free(b);
    b = agx_sprintf("{\"model\":\"phi3:mini\",%s,\"response_format\":{\"type\":\"json_schema\","
                    "\"json_schema\":{\"name\":\"bad name!\",\"strict\":true,\"schema\":"
                    "{\"type\":\"object\",\"properties\":{\"tasks\":{\"type\":\"array\"}}}}}}",
                    msgs);
    raw_post(m, "/v1/chat/completions", "application/json", b);
    expect_violation(m, "json_schema.name");
    free(b);
    assert_string_equal(m->violations, "");
}

static void test_delta_role_sends_draft(void **state) {
    fixture *f = *state;
    agx_backend *b = NULL;
    agx_error err;
    assert_int_equal(agx_backend_openai_create(&f->cfg, AGX_ROLE_DELTA, &b, &err), AGX_OK);
    agx_plan draft;
    agx_plan_init(&draft);
    const char *args[] = {"TODO"};
    assert_int_equal(agx_plan_add_task(&draft, "grep", args, 1, 0, &err), AGX_OK);
    f->ctx.existing = &draft;
    agx_generated_plan gp;
    assert_int_equal(agx_backend_generate_plan(b, "count TODOs", &f->ctx, &gp, &err), AGX_OK);
    agx_generated_plan_free(&gp);
    f->ctx.existing = NULL;
    json_t *msgs = json_object_get(f->m->last_chat, "messages");
    const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
    const char *user = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
    assert_non_null(strstr(sys, "plan reviewer"));
    assert_non_null(strstr(user, "Draft plan to check"));
    assert_non_null(strstr(user, "\"command\":\"grep\",\"args\":[\"TODO\"]"));
    agx_plan_free(&draft);
    agx_backend_destroy(b);
    assert_no_violations(f->m);
}

/* Backends share no state: several threads, each with its own backend. */
typedef struct worker {
    fixture *f;
    agx_backend_kind kind;
    int ok;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    agx_backend *b = NULL;
    agx_error err;
    agx_status st = w->kind == AGX_BACKEND_OLLAMA
                        ? agx_backend_ollama_create(&w->f->cfg, AGX_ROLE_ECHO, &b, &err)
                        : agx_backend_openai_create(&w->f->cfg, AGX_ROLE_ECHO, &b, &err);
    for (int i = 0; st == AGX_OK && i < 10; i++) {
        agx_generated_plan gp;
        st = agx_backend_generate_plan(b, "count TODOs", &w->f->ctx, &gp, &err);
        if (st == AGX_OK && gp.plan.n_tasks == 2) w->ok++;
        agx_generated_plan_free(&gp);
    }
    agx_backend_destroy(b);
    return NULL;
}

static void test_threads(void **state) {
    fixture *f = *state;
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){f, i % 2 ? AGX_BACKEND_OPENAI : AGX_BACKEND_OLLAMA, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].ok, 10);
    }
    assert_int_equal(f->m->chat_requests, 40);
    assert_no_violations(f->m);
}

/* ------------------------------------------------------------------------ */
/* transport failures                                                       */
/* ------------------------------------------------------------------------ */

static unsigned short closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static void test_connection_refused(void **state) {
    fixture *f = *state;
    char *url = agx_sprintf("http://127.0.0.1:%u", closed_port());
    set_str(&f->cfg.ollama_host, url);
    set_str(&f->cfg.openai_base_url, url);
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "connection refused");
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "ollama serve");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "AGX_OPENAI_BASE_URL");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "connection refused");
    agx_backend *b = make(f, AGX_BACKEND_OLLAMA);
    agx_error err;
    assert_int_equal(agx_backend_health_check(b, &err), AGX_ERR_UNAVAILABLE);
    assert_non_null(strstr(err.message, url));
    agx_backend_destroy(b);
    free(url);
}

static void test_dns_failure(void **state) {
    fixture *f = *state;
    set_str(&f->cfg.ollama_host, "http://agx-test-host.invalid:11434");
    set_str(&f->cfg.openai_base_url, "http://agx-test-host.invalid:8000/v1");
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "DNS lookup failed");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "agx-test-host.invalid");
}

static void test_tls_failure(void **state) {
    fixture *f = *state;
    char *url = agx_sprintf("https://127.0.0.1:%u", f->m->port);
    set_str(&f->cfg.ollama_host, url);
    set_str(&f->cfg.openai_base_url, url);
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "TLS");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "http://");
    free(url);
}

static void test_timeout(void **state) {
    fixture *f = *state;
    f->m->sleep_ms = 4000;
    f->cfg.ollama_timeout_secs = 1;
    f->cfg.openai_timeout_secs = 1;
    int64_t t0 = agx_time_ms();
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "AGX_OLLAMA_TIMEOUT_SECS");
    int64_t t1 = agx_time_ms();
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "timed out");
    int64_t t2 = agx_time_ms();
    assert_true(t1 - t0 >= 900 && t1 - t0 < 2500);
    assert_true(t2 - t1 >= 900 && t2 - t1 < 2500);
}

/* ------------------------------------------------------------------------ */
/* HTTP status handling and retries                                         */
/* ------------------------------------------------------------------------ */

static void test_http_errors_with_excerpt(void **state) {
    fixture *f = *state;
    setenv("AGX_HTTP_RETRIES", "0", 1);
    f->m->fail_times = 100;
    f->m->fail_status = 500;
    f->m->fail_body = "{\"error\":\"CUDA error: out of memory\\nwhile loading layer 7\"}";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "HTTP 500");
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "CUDA error: out of memory while loading layer 7");
    /* invalid UTF-8 in the body never reaches the message */
    f->m->fail_body = "\xff\xfe internal \xc3 error";
    agx_generated_plan gp0;
    agx_error err0;
    assert_int_equal(plan_with(f, AGX_BACKEND_OLLAMA, &gp0, &err0), AGX_ERR_UNAVAILABLE);
    json_t *js = json_string(err0.message);
    assert_non_null(js); /* jansson accepts only valid UTF-8 */
    json_decref(js);
    assert_non_null(strstr(err0.message, "internal ? error"));
    agx_generated_plan_free(&gp0);
    /* a long non-JSON body is cut to a short excerpt */
    char *long_body = malloc(20001);
    for (int i = 0; i < 20000; i++)
        long_body[i] = (char)('a' + i % 26);
    long_body[20000] = '\0';
    f->m->fail_status = 400;
    f->m->fail_body = long_body;
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_ERR_INFERENCE);
    assert_non_null(strstr(err.message, "HTTP 400"));
    assert_non_null(strstr(err.message, "abcdefghij"));
    assert_non_null(strstr(err.message, "..."));
    assert_true(strlen(err.message) < 600);
    agx_generated_plan_free(&gp);
    free(long_body);
    f->m->fail_body = NULL;
    /* 4xx other than auth: inference kind, exit 5 */
    f->m->fail_status = 422;
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_INFERENCE, AGX_EXIT_BACKEND, "HTTP 422");
    unsetenv("AGX_HTTP_RETRIES");
}

static void test_api_key_never_echoed(void **state) {
    fixture *f = *state;
    const char *key = "sk-live-DoNotLeakThis-9f8e7d6c";
    f->m->require_key = "sk-the-right-one-1234567890";
    set_str(&f->cfg.openai_api_key, key);
    agx_generated_plan gp;
    agx_error err;
    /* the server's 401 echoes the wrong key back; our message must not */
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_ERR_CONFIG);
    assert_int_equal(agx_status_exit_code(AGX_ERR_CONFIG), AGX_EXIT_CONFIG);
    assert_non_null(strstr(err.message, "HTTP 401"));
    assert_non_null(strstr(err.message, "AGX_OPENAI_API_KEY"));
    assert_null(strstr(err.message, key));
    assert_null(strstr(err.message, "DoNotLeakThis"));
    agx_generated_plan_free(&gp);
    agx_backend *b = make(f, AGX_BACKEND_OPENAI);
    assert_int_equal(agx_backend_health_check(b, &err), AGX_ERR_CONFIG);
    assert_null(strstr(err.message, "DoNotLeakThis"));
    agx_backend_destroy(b);
    /* nor in transport errors, nor URL credentials */
    char *url = agx_sprintf("http://user:hunter2@127.0.0.1:%u/v1", closed_port());
    set_str(&f->cfg.openai_base_url, url);
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_ERR_UNAVAILABLE);
    assert_null(strstr(err.message, "DoNotLeakThis"));
    assert_null(strstr(err.message, "hunter2"));
    agx_generated_plan_free(&gp);
    free(url);
}

static void test_retry_after_honoured(void **state) {
    fixture *f = *state;
    setenv("AGX_HTTP_BACKOFF_MS", "10", 1);
    f->m->fail_times = 1;
    f->m->fail_status = 429;
    f->m->retry_after = "1";
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OLLAMA, &gp, &err), AGX_OK);
    check_good_plan(&gp);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->chat_requests, 2);
    int64_t gap = f->m->times_ms[1] - f->m->times_ms[0];
    if (gap < 950 || gap > 3000)
        fail_msg("Retry-After: 1 not honoured: waited %lld ms", (long long)gap);
    unsetenv("AGX_HTTP_BACKOFF_MS");
    assert_no_violations(f->m);
}

static void test_backoff_bounded_and_exhausted(void **state) {
    fixture *f = *state;
    setenv("AGX_HTTP_BACKOFF_MS", "20", 1);
    setenv("AGX_HTTP_MAX_DELAY_MS", "50", 1);
    setenv("AGX_HTTP_RETRIES", "3", 1);
    /* 503 twice without Retry-After: exponential backoff 20, 40 ms, then success */
    f->m->fail_times = 2;
    f->m->fail_status = 503;
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_OK);
    agx_generated_plan_free(&gp);
    assert_int_equal(f->m->requests, 3);
    int64_t g1 = f->m->times_ms[1] - f->m->times_ms[0], g2 = f->m->times_ms[2] - f->m->times_ms[1];
    assert_true(g1 >= 15 && g1 < 500);
    assert_true(g2 >= 35 && g2 < 500);
    /* a huge Retry-After is capped by AGX_HTTP_MAX_DELAY_MS; retries run out */
    f->m->requests = 0;
    f->m->fail_times = 100;
    f->m->fail_status = 429;
    f->m->retry_after = "3600";
    int64_t t0 = agx_time_ms();
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND,
                   "retries exhausted");
    assert_true(agx_time_ms() - t0 < 2000);
    assert_int_equal(f->m->requests, 4); /* 1 + 3 retries */
    /* a Retry-After beyond the timeout: no retry, fail within the timeout */
    unsetenv("AGX_HTTP_MAX_DELAY_MS");
    f->m->requests = 0;
    f->m->retry_after = "2";
    f->cfg.ollama_timeout_secs = 1;
    t0 = agx_time_ms();
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_UNAVAILABLE, AGX_EXIT_BACKEND, "HTTP 429");
    assert_true(agx_time_ms() - t0 < 1000);
    assert_int_equal(f->m->requests, 1);
    unsetenv("AGX_HTTP_BACKOFF_MS");
    unsetenv("AGX_HTTP_MAX_DELAY_MS");
    unsetenv("AGX_HTTP_RETRIES");
}

/* ------------------------------------------------------------------------ */
/* bad bodies                                                               */
/* ------------------------------------------------------------------------ */

static void test_truncated_and_non_json(void **state) {
    fixture *f = *state;
    f->m->truncate = 1; /* Content-Length promises more than arrives */
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_IO, AGX_EXIT_IO, "ollama /api/chat");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_IO, AGX_EXIT_IO, NULL);
    f->m->truncate = 0;
    f->m->raw_body = "<html><body>502 Bad Gateway</body></html>";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_JSON, AGX_EXIT_DATA, "not valid JSON");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_JSON, AGX_EXIT_DATA, "502 Bad Gateway");
    f->m->raw_body =
        "{\"model\":\"phi3:mini\",\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"ta";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_JSON, AGX_EXIT_DATA, "not valid JSON");
    f->m->raw_body = "[1,2,3]";
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_JSON, AGX_EXIT_DATA, "not an object");
    f->m->raw_body = "{\"error\":\"llama runner crashed\\u0007\\nexit status 2\"}";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_INFERENCE, AGX_EXIT_BACKEND,
                   "the server says: llama runner crashed exit status 2");
    f->m->raw_body = "{\"unrelated\":true}";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_JSON, AGX_EXIT_DATA, "message.content");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_JSON, AGX_EXIT_DATA, "choices");
}

static void test_oversized_reply(void **state) {
    fixture *f = *state;
    setenv("AGX_HTTP_MAX_RESPONSE_BYTES", "65536", 1);
    f->m->huge_bytes = 300000;
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_IO, AGX_EXIT_IO, "larger than 65536 bytes");
    f->m->huge_chunked = 1; /* no Content-Length: the bound is enforced while reading */
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_IO, AGX_EXIT_IO, "larger than 65536 bytes");
    unsetenv("AGX_HTTP_MAX_RESPONSE_BYTES");
}

static void test_content_not_a_plan(void **state) {
    fixture *f = *state;
    /* prose: through the lenient parser, which finds no plan */
    f->m->content = "I'm sorry, I can't help with that request.";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_PARSE, AGX_EXIT_DATA, "not a plan");
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_PARSE, AGX_EXIT_DATA, "sorry");
    f->m->content = "";
    expect_failure(f, AGX_BACKEND_OLLAMA, AGX_ERR_PARSE, AGX_EXIT_DATA, "empty");
    f->m->refusal = "I can't help with deleting files.";
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_INFERENCE, AGX_EXIT_BACKEND,
                   "refused: I can't help with deleting files.");
    f->m->refusal = NULL;
    /* a plan with an unknown tool: rejected with the reasons */
    f->m->content = "{\"tasks\":[{\"task_number\":1,\"command\":\"rm\",\"args\":[\"-rf\",\"/\"]},"
                    "{\"task_number\":2,\"command\":\"gerp\",\"args\":[\"x\"]}]}";
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_with(f, AGX_BACKEND_OLLAMA, &gp, &err), AGX_ERR_VALIDATION);
    assert_int_equal(agx_status_exit_code(AGX_ERR_VALIDATION), AGX_EXIT_DATA);
    assert_non_null(strstr(err.message, "rm"));
    assert_non_null(strstr(err.message, "gerp"));
    assert_int_equal(gp.plan.n_tasks, 0);
    agx_generated_plan_free(&gp);
    /* a sloppy but valid reply (fenced, with prose) is accepted */
    f->m->content = "Here is the plan:\n```json\n{\"tasks\":[{\"task_number\":1,\"command\":"
                    "\"sort\",\"args\":[]}]}\n```\nDone.";
    assert_int_equal(plan_with(f, AGX_BACKEND_OPENAI, &gp, &err), AGX_OK);
    assert_int_equal(gp.plan.n_tasks, 1);
    assert_string_equal(gp.plan.tasks[0].command, "sort");
    agx_generated_plan_free(&gp);
    /* cut at the token limit: the hint says so */
    f->m->content = "{\"tasks\":[{\"task_number\":1,\"comm";
    f->m->finish_reason = "length";
    expect_failure(f, AGX_BACKEND_OPENAI, AGX_ERR_PARSE, AGX_EXIT_DATA, "AGX_CANDLE_MAX_TOKENS");
    assert_no_violations(f->m);
}

static void test_bad_settings(void **state) {
    fixture *f = *state;
    agx_backend *b = NULL;
    agx_error err;
    setenv("AGX_HTTP_RETRIES", "lots", 1);
    assert_int_equal(agx_backend_ollama_create(&f->cfg, AGX_ROLE_ECHO, &b, &err), AGX_ERR_CONFIG);
    assert_null(b);
    assert_non_null(strstr(err.message, "AGX_HTTP_RETRIES"));
    unsetenv("AGX_HTTP_RETRIES");
    /* a backoff that would overflow the doubling is refused up front */
    setenv("AGX_HTTP_BACKOFF_MS", "9223372036854775807", 1);
    assert_int_equal(agx_backend_openai_create(&f->cfg, AGX_ROLE_ECHO, &b, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "AGX_HTTP_BACKOFF_MS"));
    unsetenv("AGX_HTTP_BACKOFF_MS");
    setenv("AGX_HTTP_MAX_RESPONSE_BYTES", "12", 1);
    assert_int_equal(agx_backend_ollama_create(&f->cfg, AGX_ROLE_ECHO, &b, &err), AGX_ERR_CONFIG);
    unsetenv("AGX_HTTP_MAX_RESPONSE_BYTES");
    set_str(&f->cfg.openai_api_key, "sk-abc def");
    assert_int_equal(agx_backend_openai_create(&f->cfg, AGX_ROLE_ECHO, &b, &err), AGX_ERR_CONFIG);
    assert_null(strstr(err.message, "sk-abc"));
    set_str(&f->cfg.ollama_host, "ftp://127.0.0.1:1");
    assert_int_equal(agx_backend_ollama_create(&f->cfg, AGX_ROLE_ECHO, &b, &err), AGX_OK);
    agx_generated_plan gp;
    assert_int_equal(agx_backend_generate_plan(b, "x y", &f->ctx, &gp, &err), AGX_ERR_CONFIG);
    assert_non_null(strstr(err.message, "http://"));
    agx_generated_plan_free(&gp);
    agx_backend_destroy(b);
}

/* ------------------------------------------------------------------------ */
/* end to end: the agx command against the mock                             */
/* ------------------------------------------------------------------------ */

typedef struct cli_result {
    int rc;
    char *out, *err;
} cli_result;

static cli_result run_agx(const char *args) {
    cli_result r;
    char *cmd = agx_sprintf("'%s' %s", agx_test_cli_path(), args);
    r.rc = agx_test_run(cmd, NULL, &r.out, &r.err);
    free(cmd);
    if (!r.out) r.out = strdup("");
    if (!r.err) r.err = strdup("");
    return r;
}

static void expect_cli(const char *args, int rc, const char *in_out, const char *in_err) {
    cli_result r = run_agx(args);
    if (getenv("AGX_TEST_VERBOSE"))
        fprintf(stderr, "  agx %s -> %d\n%s%s", args, r.rc, r.out, r.err);
    if (r.rc != rc)
        fail_msg("agx %s: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.rc, rc, r.out, r.err);
    if (in_out && !strstr(r.out, in_out))
        fail_msg("agx %s: stdout lacks '%s': %s", args, in_out, r.out);
    if (in_err && !strstr(r.err, in_err))
        fail_msg("agx %s: stderr lacks '%s': %s", args, in_err, r.err);
    free(r.out);
    free(r.err);
}

static void test_cli_end_to_end(void **state) {
    fixture *f = *state;
    char *dir = agx_test_tmpdir();
    char *plan = agx_sprintf("%s/plan.json", dir);
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("AGX_PLAN_PATH", plan, 1);
    setenv("HOME", dir, 1); /* no ~/.agx/tools.json */
    unsetenv("AGX_TOOLS_FILE");
    setenv("AGX_BACKEND", "ollama", 1);
    setenv("AGX_OLLAMA_HOST", f->m->base, 1);
    expect_cli("health", 0, NULL, NULL);
    expect_cli("plan new", 0, NULL, NULL);
    expect_cli("plan add 'count the TODO lines under src'", 0, NULL, NULL);
    expect_cli("plan preview --json", 0, "\"command\": \"grep\"", NULL);
    assert_true(agx_file_exists(plan));
    setenv("AGX_OLLAMA_MODEL", "llama3:8b", 1);
    expect_cli("health", AGX_EXIT_BACKEND, NULL,
               "Model 'llama3:8b' not found. Run 'ollama pull llama3:8b' to download it.");
    unsetenv("AGX_OLLAMA_MODEL");
    f->m->content = "{\"tasks\":[{\"task_number\":1,\"command\":\"rm\",\"args\":[\"-rf\",\"/\"]}]}";
    expect_cli("plan add 'delete everything'", AGX_EXIT_DATA, NULL, "'rm'");
    f->m->content = GOOD_PLAN;

    setenv("AGX_BACKEND", "openai", 1);
    setenv("AGX_OPENAI_BASE_URL", f->m->base, 1);
    setenv("AGX_OPENAI_MODEL", "qwen2.5:0.5b", 1);
    f->m->require_key = "sk-right-key-000000";
    setenv("AGX_OPENAI_API_KEY", "sk-wrong-key-LEAKCHECK", 1);
    cli_result r = run_agx("plan add 'count the TODO lines under src'");
    assert_int_equal(r.rc, AGX_EXIT_CONFIG);
    assert_null(strstr(r.out, "LEAKCHECK"));
    assert_null(strstr(r.err, "LEAKCHECK"));
    assert_non_null(strstr(r.err, "HTTP 401"));
    free(r.out);
    free(r.err);
    setenv("AGX_OPENAI_API_KEY", "sk-right-key-000000", 1);
    expect_cli("health", 0, NULL, NULL);
    expect_cli("plan new", 0, NULL, NULL);
    expect_cli("plan add 'count the TODO lines under src'", 0, NULL, NULL);
    expect_cli("plan preview --json", 0, "\"command\": \"wc\"", NULL);
    char *closed = agx_sprintf("http://127.0.0.1:%u", closed_port());
    setenv("AGX_OPENAI_BASE_URL", closed, 1);
    expect_cli("health", AGX_EXIT_BACKEND, NULL, "connection refused");
    free(closed);
    static const char *const vars[] = {"AGX_BACKEND",         "AGX_OLLAMA_HOST",
                                       "AGX_OPENAI_BASE_URL", "AGX_OPENAI_MODEL",
                                       "AGX_OPENAI_API_KEY",  "AGX_PLAN_PATH"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    if (old_home) setenv("HOME", old_home, 1);
    free(old_home);
    agx_test_rmtree(dir);
    free(dir);
    free(plan);
    assert_no_violations(f->m);
}

#else
static void test_no_mhd(void **state) {
    (void)state;
    AGX_TEST_SKIP("libmicrohttpd not found at build time: the mock-server tests of the "
                  "ollama/openai backends did not run (install libmicrohttpd-dev)");
}
#endif /* AGX_HAVE_MHD */

/* ------------------------------------------------------------------------ */
/* http helpers (no server needed)                                          */
/* ------------------------------------------------------------------------ */

static void test_http_helpers(void **state) {
    (void)state;
    assert_int_equal(agx_http_parse_retry_after("2"), 2000);
    assert_int_equal(agx_http_parse_retry_after(" 0\r\n"), 0);
    assert_int_equal(agx_http_parse_retry_after("soon"), -1);
    assert_int_equal(agx_http_parse_retry_after(NULL), -1);
    assert_int_equal(agx_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0); /* past */
    assert_int_equal(agx_http_parse_retry_after("99999999999999999999"), 86400L * 1000);
    char *x = agx_http_excerpt("bad\xff\xc3 key=sk-123456 \n\n\t end", 28, 200, "sk-123456");
    assert_string_equal(x, "bad?? key=********* end");
    free(x);
    x = agx_http_excerpt("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, 4, NULL);
    assert_string_equal(x, "\xe2\x82\xac\xe2\x82\xac..."); /* never cut inside a character */
    free(x);
    char *r = agx_http_redact_url("https://bob:pw@example.invalid:8443/v1?x=y@z");
    assert_string_equal(r, "https://example.invalid:8443/v1?x=y@z");
    free(r);
    r = agx_http_redact_url("http://127.0.0.1:1/api");
    assert_string_equal(r, "http://127.0.0.1:1/api");
    free(r);
}

int main(void) {
    /* Tests talk to 127.0.0.1 only: no proxy may be consulted. */
    static const char *proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                    "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++)
        unsetenv(proxies[i]);
    static const char *agx_vars[] = {"AGX_OLLAMA_HOST",       "OLLAMA_HOST",
                                     "AGX_OLLAMA_MODEL",      "AGX_OPENAI_BASE_URL",
                                     "AGX_OPENAI_MODEL",      "AGX_OPENAI_API_KEY",
                                     "AGX_HTTP_RETRIES",      "AGX_HTTP_BACKOFF_MS",
                                     "AGX_HTTP_MAX_DELAY_MS", "AGX_HTTP_MAX_RESPONSE_BYTES"};
    for (size_t i = 0; i < sizeof agx_vars / sizeof *agx_vars; i++)
        unsetenv(agx_vars[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_helpers),
#ifdef AGX_HAVE_MHD
        cmocka_unit_test_setup_teardown(test_ollama_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_health, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_host_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_schema_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ollama_format_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_role_sends_draft, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mock_rejects_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors_with_excerpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_key_never_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_bounded_and_exhausted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_non_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_not_a_plan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_end_to_end, setup, teardown),
#else
        cmocka_unit_test(test_no_mhd),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
