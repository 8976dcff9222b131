/* config.c — the Planner entry point: reads every AGX_* variable into an
 * agx_planner_config (with the seed's defaults) and builds the configured
 * backend for a role. Backend names and constructors live in one table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agx/planner.h"
#include "agx/util.h"

typedef agx_status (*backend_ctor)(const agx_planner_config *cfg, agx_model_role role,
                                   agx_backend **out, agx_error *err);

static agx_status rules_ctor(const agx_planner_config *cfg, agx_model_role role,
                             agx_backend **out, agx_error *err) {
    (void)role; /* the rules planner plays both roles the same way */
    return agx_backend_rules_create(cfg, out, err);
}

/* Accepted AGX_BACKEND spellings; the first entry of a kind is its canonical name. */
static const struct {
    const char *name;
    agx_backend_kind kind;
    backend_ctor create;
} backend_table[] = {
    {"native", AGX_BACKEND_NATIVE, agx_backend_native_create},
    {"candle", AGX_BACKEND_NATIVE, agx_backend_native_create}, /* the seed's name */
    {"ollama", AGX_BACKEND_OLLAMA, agx_backend_ollama_create},
    {"openai", AGX_BACKEND_OPENAI, agx_backend_openai_create},
    {"rules", AGX_BACKEND_RULES, rules_ctor},
};
#define N_BACKENDS (sizeof backend_table / sizeof backend_table[0])

static const char *const device_names[] = {"auto", "cpu", "cuda", "metal"};
static const char *const role_names[] = {"echo", "delta"};

const char *agx_backend_kind_name(agx_backend_kind kind) {
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (backend_table[i].kind == kind) return backend_table[i].name;
    return "unknown";
}

static char *trimmed_dup(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n')) n--;
    return agx_strndup(s, n);
}

static agx_status parse_backend(agx_planner_config *cfg, agx_error *err) {
    const char *v = agx_env("AGX_BACKEND");
    if (!v) {
        cfg->backend_explicit = false;
        bool have_model = cfg->echo_model || cfg->delta_model || cfg->model_path;
        cfg->backend = have_model ? AGX_BACKEND_NATIVE : AGX_BACKEND_RULES;
        return AGX_OK;
    }
    char *name = trimmed_dup(v);
    if (!name) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < N_BACKENDS; i++) {
        if (strcasecmp(name, backend_table[i].name) == 0) {
            cfg->backend = backend_table[i].kind;
            cfg->backend_explicit = true;
            free(name);
            return AGX_OK;
        }
    }
    free(name);
    return agx_error_set(err, AGX_ERR_CONFIG,
                         "AGX_BACKEND='%s' is not a known backend; valid values: native, candle "
                         "(alias of native), ollama, openai, rules (or unset it to pick native "
                         "when a model is configured, else rules)",
                         v);
}

/* Picks the index of v in names (case-insensitive) or fails naming the variable. */
static agx_status parse_choice(const char *var, const char *const *names, size_t n,
                               size_t def, size_t *out, agx_error *err) {
    const char *v = agx_env(var);
    *out = def;
    if (!v) return AGX_OK;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(v, names[i]) == 0) {
            *out = i;
            return AGX_OK;
        }
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (size_t i = 0; i < n; i++) agx_strbuf_printf(&sb, "%s%s", i ? ", " : "", names[i]);
    agx_error_set(err, AGX_ERR_CONFIG, "%s='%s' is not valid; use one of: %s", var, v,
                  sb.data ? sb.data : "");
    agx_strbuf_free(&sb);
    return AGX_ERR_CONFIG;
}

/* Numeric variables with their defaults and allowed ranges, read by one loop. */
typedef struct {
    const char *var;
    size_t offset; /* into agx_planner_config */
    bool is_double;
    double def, min, max;
    const char *hint;
} numeric_var;

#define OFF(field) offsetof(agx_planner_config, field)
static const numeric_var numeric_vars[] = {
    {"AGX_CANDLE_TEMPERATURE", OFF(temperature), true, 0.7, 0.0, 100.0, "0 or more, e.g. 0.7"},
    {"AGX_CANDLE_TOP_P", OFF(top_p), true, 0.9, 0.0, 1.0, "between 0 and 1, e.g. 0.9"},
    {"AGX_CANDLE_MAX_TOKENS", OFF(max_tokens), false, 2048, 1, 1 << 20, "a positive count, e.g. 2048"},
    {"AGX_CANDLE_CONTEXT_SIZE", OFF(context_size), false, 2048, 16, 1 << 24,
     "a token count of at least 16, e.g. 2048"},
    {"AGX_THREADS", OFF(threads), false, 0, 0, 4096, "0 (all cores) or a thread count"},
    {"AGX_OLLAMA_TIMEOUT_SECS", OFF(ollama_timeout_secs), false, 300, 1, 86400,
     "seconds between 1 and 86400"},
    {"AGX_OPENAI_TIMEOUT_SECS", OFF(openai_timeout_secs), false, 300, 1, 86400,
     "seconds between 1 and 86400"},
};

static agx_status parse_numbers(agx_planner_config *cfg, agx_error *err) {
    for (size_t i = 0; i < sizeof numeric_vars / sizeof numeric_vars[0]; i++) {
        const numeric_var *nv = &numeric_vars[i];
        double value;
        agx_status s;
        if (nv->is_double) {
            s = agx_env_double(nv->var, nv->def, &value, err);
        } else {
            long l;
            s = agx_env_long(nv->var, (long)nv->def, &l, err);
            value = (double)l;
        }
        if (s != AGX_OK) return s;
        if (!(value >= nv->min && value <= nv->max))
            return agx_error_set(err, AGX_ERR_CONFIG, "%s='%s' is out of range; use %s", nv->var,
                                 agx_env(nv->var), nv->hint);
        char *field = (char *)cfg + nv->offset;
        if (nv->is_double)
            memcpy(field, &value, sizeof value);
        else {
            long l = (long)value;
            memcpy(field, &l, sizeof l);
        }
    }
    const char *seed = agx_env("AGX_CANDLE_SEED");
    cfg->seed_set = seed != NULL;
    return agx_env_long("AGX_CANDLE_SEED", 0, &cfg->seed, err);
}

/* Duplicates an optional variable (NULL when unset); false only on OOM. */
static bool dup_env(char **dst, const char *var, const char *fallback) {
    const char *v = agx_env(var);
    if (!v) v = fallback;
    *dst = v ? agx_strdup(v) : NULL;
    return !v || *dst;
}

agx_status agx_planner_config_from_env(agx_planner_config *cfg, agx_error *err) {
    memset(cfg, 0, sizeof *cfg);
    const char *ollama_host = agx_env("OLLAMA_HOST");
    if (!ollama_host) ollama_host = "http://127.0.0.1:11434";
    bool ok = dup_env(&cfg->echo_model, "AGX_ECHO_MODEL", NULL) &&
              dup_env(&cfg->delta_model, "AGX_DELTA_MODEL", NULL) &&
              dup_env(&cfg->model_path, "AGX_MODEL_PATH", NULL) &&
              dup_env(&cfg->device, "AGX_DEVICE", "auto") &&
              dup_env(&cfg->ollama_model, "AGX_OLLAMA_MODEL", "phi3:mini") &&
              dup_env(&cfg->ollama_host, "AGX_OLLAMA_HOST", ollama_host) &&
              dup_env(&cfg->openai_base_url, "AGX_OPENAI_BASE_URL", NULL) &&
              dup_env(&cfg->openai_model, "AGX_OPENAI_MODEL", NULL) &&
              dup_env(&cfg->openai_api_key, "AGX_OPENAI_API_KEY", NULL);
    if (ok) {
        const char *plan_path = agx_env("AGX_PLAN_PATH");
        if (plan_path) {
            cfg->plan_path = agx_strdup(plan_path);
        } else {
            const char *tmp = agx_env("TMPDIR");
            cfg->plan_path = agx_sprintf("%s/agx-plan.json", tmp ? tmp : "/tmp");
        }
        ok = cfg->plan_path != NULL;
    }
    agx_status s = ok ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading the configuration");
    size_t idx = 0;
    if (s == AGX_OK) s = parse_backend(cfg, err);
    if (s == AGX_OK) s = parse_choice("AGX_MODEL_ROLE", role_names, 2, 0, &idx, err);
    if (s == AGX_OK) cfg->role = idx == 0 ? AGX_ROLE_ECHO : AGX_ROLE_DELTA;
    if (s == AGX_OK) s = parse_choice("AGX_DEVICE", device_names, 4, 0, &idx, err);
    if (s == AGX_OK) {
        free(cfg->device); /* store the canonical lower-case spelling */
        cfg->device = agx_strdup(device_names[idx]);
        if (!cfg->device) s = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    if (s == AGX_OK) s = parse_numbers(cfg, err);
    if (s != AGX_OK) agx_planner_config_free(cfg);
    return s;
}

void agx_planner_config_free(agx_planner_config *cfg) {
    if (!cfg) return;
    char **owned[] = {&cfg->echo_model,   &cfg->delta_model,     &cfg->model_path,
                      &cfg->device,       &cfg->ollama_model,    &cfg->ollama_host,
                      &cfg->openai_base_url, &cfg->openai_model, &cfg->openai_api_key,
                      &cfg->plan_path};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        if (*owned[i] && owned[i] == &cfg->openai_api_key)
            memset(*owned[i], 0, strlen(*owned[i])); /* do not leave the key in freed memory */
        free(*owned[i]);
        *owned[i] = NULL;
    }
}

const char *agx_planner_model_for_role(const agx_planner_config *cfg, agx_model_role role) {
    const char *specific = role == AGX_ROLE_DELTA ? cfg->delta_model : cfg->echo_model;
    return specific ? specific : cfg->model_path;
}

agx_status agx_planner_create_backend(const agx_planner_config *cfg, agx_model_role role,
                                      agx_backend **out, agx_error *err) {
    *out = NULL;
    for (size_t i = 0; i < N_BACKENDS; i++)
        if (backend_table[i].kind == cfg->backend)
            return backend_table[i].create(cfg, role, out, err);
    return agx_error_set(err, AGX_ERR_CONFIG, "backend kind %d is not known", (int)cfg->backend);
}
