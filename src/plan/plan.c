/* plan.c — the plan data model (init/free/copy/add/append/renumber), the
 * canonical JSON serializer (stable key order, compact and pretty) and the
 * strict reader of that canonical form (the persisted plan buffer). */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/util.h"
#include "plan/plan_internal.h"

/* ---------------------------------------------------------------- UTF-8 -- */

size_t agx_plan_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

bool agx_plan_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        if (!l) return false;
        i += l;
    }
    return true;
}

char *agx_plan_sb_take(agx_strbuf *sb) {
    if (!sb->data) return agx_strdup("");
    return agx_strbuf_take(sb);
}

agx_status agx_plan_sanitize_error(agx_error *err) {
    if (!err) return AGX_OK;
    char out[AGX_ERROR_MSG_MAX];
    const unsigned char *p = (const unsigned char *)err->message;
    size_t n = strnlen(err->message, sizeof err->message), o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        bool plain = l > 1 || (l == 1 && p[i] >= 0x20 && p[i] != 0x7f);
        size_t need = plain ? l : 4;
        if (o + need >= sizeof out) break;
        if (plain) {
            memcpy(out + o, p + i, l);
            i += l;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o] = '\\', out[o + 1] = 'x', out[o + 2] = hex[p[i] >> 4], out[o + 3] = hex[p[i] & 15];
            i++;
        }
        o += need;
    }
    out[o] = '\0';
    memcpy(err->message, out, o + 1);
    return err->code;
}

/* ------------------------------------------------------------ lifetimes -- */

void agx_plan_init(agx_plan *plan) { memset(plan, 0, sizeof *plan); }

static void task_free(agx_task *t) {
    free(t->command);
    for (size_t i = 0; i < t->n_args; i++) free(t->args[i]);
    free(t->args);
    memset(t, 0, sizeof *t);
}

void agx_plan_free(agx_plan *plan) {
    if (!plan) return;
    free(plan->plan_id);
    free(plan->plan_description);
    for (size_t i = 0; i < plan->n_tasks; i++) task_free(&plan->tasks[i]);
    free(plan->tasks);
    agx_plan_init(plan);
}

static bool plan_reserve(agx_plan *plan, size_t extra) {
    if (plan->n_tasks + extra <= plan->cap_tasks) return true;
    size_t cap = plan->cap_tasks ? plan->cap_tasks : 4;
    while (cap < plan->n_tasks + extra) {
        if (cap > SIZE_MAX / 2 / sizeof(agx_task)) return false;
        cap *= 2;
    }
    agx_task *t = realloc(plan->tasks, cap * sizeof *t);
    if (!t) return false;
    plan->tasks = t;
    plan->cap_tasks = cap;
    return true;
}

void agx_plan_free_words(char **words, size_t n) {
    if (!words) return;
    for (size_t i = 0; i < n; i++) free(words[i]);
    free(words);
}

agx_status agx_plan_push_task_owned(agx_plan *plan, char *command, char **args, size_t n_args,
                                    int timeout_secs, int input_from_task, agx_error *err) {
    if (!plan_reserve(plan, 1)) {
        free(command);
        agx_plan_free_words(args, n_args);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory adding a plan task");
    }
    agx_task *t = &plan->tasks[plan->n_tasks++];
    t->task_number = (int)plan->n_tasks;
    t->command = command;
    t->args = args;
    t->n_args = n_args;
    t->timeout_secs = timeout_secs;
    t->input_from_task = input_from_task;
    return AGX_OK;
}

static char **copy_args(const char *const *args, size_t n) {
    char **out = calloc(n ? n : 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = agx_strdup(args[i] ? args[i] : "");
        if (!out[i]) {
            agx_plan_free_words(out, i);
            return NULL;
        }
    }
    return out;
}

agx_status agx_plan_add_task(agx_plan *plan, const char *command, const char *const *args,
                             size_t n_args, int input_from_task, agx_error *err) {
    if (!command)
        return agx_error_set(err, AGX_ERR_VALIDATION, "task %zu: command is missing",
                             plan->n_tasks + 1);
    char *cmd = agx_strdup(command);
    char **a = copy_args(args, n_args);
    if (!cmd || !a) {
        free(cmd);
        agx_plan_free_words(a, n_args);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory adding a plan task");
    }
    return agx_plan_push_task_owned(plan, cmd, a, n_args, AGX_DEFAULT_TIMEOUT_SECS,
                                    input_from_task, err);
}

agx_status agx_plan_copy(const agx_plan *src, agx_plan *dst, agx_error *err) {
    agx_plan_init(dst);
    dst->plan_id = agx_strdup(src->plan_id);
    dst->plan_description = agx_strdup(src->plan_description);
    if ((src->plan_id && !dst->plan_id) || (src->plan_description && !dst->plan_description))
        goto oom;
    for (size_t i = 0; i < src->n_tasks; i++) {
        const agx_task *t = &src->tasks[i];
        char *cmd = agx_strdup(t->command ? t->command : "");
        char **a = copy_args((const char *const *)t->args, t->n_args);
        if (!cmd || !a) {
            free(cmd);
            agx_plan_free_words(a, t->n_args);
            goto oom;
        }
        if (agx_plan_push_task_owned(dst, cmd, a, t->n_args, t->timeout_secs, t->input_from_task,
                                     err) != AGX_OK)
            goto oom;
        dst->tasks[i].task_number = t->task_number;
    }
    return AGX_OK;
oom:
    agx_plan_free(dst);
    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory copying a plan");
}

agx_status agx_plan_append(agx_plan *plan, const agx_plan *src, agx_error *err) {
    if (src == plan) {
        /* Appending a plan to itself: copy first so the source does not grow under us. */
        agx_plan tmp;
        agx_status st = agx_plan_copy(src, &tmp, err);
        if (st != AGX_OK) return st;
        st = agx_plan_append(plan, &tmp, err);
        agx_plan_free(&tmp);
        return st;
    }
    size_t base = plan->n_tasks;
    if (!plan_reserve(plan, src->n_tasks))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory appending tasks");
    for (size_t i = 0; i < src->n_tasks; i++) {
        const agx_task *t = &src->tasks[i];
        char *cmd = agx_strdup(t->command ? t->command : "");
        char **a = copy_args((const char *const *)t->args, t->n_args);
        if (!cmd || !a) {
            free(cmd);
            agx_plan_free_words(a, t->n_args);
            while (plan->n_tasks > base) task_free(&plan->tasks[--plan->n_tasks]);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory appending tasks");
        }
        /* src's references are relative to src: shift them by the tasks before. */
        int ref = t->input_from_task;
        if (ref > 0 && (size_t)ref <= src->n_tasks && base <= (size_t)(INT_MAX - ref))
            ref += (int)base;
        else if (ref != 0)
            ref = -1; /* named no task of src: keep it invalid for the validator */
        agx_plan_push_task_owned(plan, cmd, a, t->n_args, t->timeout_secs, ref, err);
    }
    return AGX_OK;
}

void agx_plan_renumber(agx_plan *plan) {
    /* References follow the task they named: old number -> new position. A
     * reference to no task (or an ambiguous repeated number) becomes -1 so the
     * validator reports it instead of silently pointing somewhere else. */
    size_t n = plan->n_tasks;
    for (size_t i = 0; i < n; i++) {
        agx_task *t = &plan->tasks[i];
        int ref = t->input_from_task;
        if (ref == 0) continue;
        int found = -1;
        int matches = 0;
        for (size_t j = 0; j < n; j++)
            if (plan->tasks[j].task_number == ref) {
                if (!matches) found = (int)j + 1;
                matches++;
            }
        t->input_from_task = matches == 1 ? found : -1;
    }
    for (size_t i = 0; i < n; i++) plan->tasks[i].task_number = (int)i + 1;
}

agx_status agx_plan_insert_task(agx_plan *plan, size_t idx, const char *command,
                                int input_from_task, agx_error *err) {
    if (idx > plan->n_tasks) idx = plan->n_tasks;
    if (!plan_reserve(plan, 1)) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    char *cmd = agx_strdup(command);
    char **a = calloc(1, sizeof *a);
    if (!cmd || !a) {
        free(cmd);
        free(a);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    /* Positions >= idx move up by one; so do references to them (1-based). */
    for (size_t i = 0; i < plan->n_tasks; i++) {
        agx_task *t = &plan->tasks[i];
        if (t->input_from_task > (int)idx) t->input_from_task++;
    }
    memmove(&plan->tasks[idx + 1], &plan->tasks[idx], (plan->n_tasks - idx) * sizeof(agx_task));
    agx_task *t = &plan->tasks[idx];
    t->command = cmd;
    t->args = a;
    t->n_args = 0;
    t->timeout_secs = AGX_DEFAULT_TIMEOUT_SECS;
    t->input_from_task = input_from_task;
    plan->n_tasks++;
    for (size_t i = 0; i < plan->n_tasks; i++) plan->tasks[i].task_number = (int)i + 1;
    return AGX_OK;
}

/* ------------------------------------------------------------ serialize -- */

/* A JSON string from bytes that may not be valid UTF-8: invalid bytes become
 * U+FFFD so the serializer never fails on content (only on OOM). */
static json_t *json_str_safe(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s);
    if (agx_plan_utf8_valid(s, n)) return json_stringn(s, n);
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        if (l) {
            agx_strbuf_append(&sb, p + i, l);
            i += l;
        } else {
            agx_strbuf_append(&sb, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    json_t *j = sb.data ? json_stringn(sb.data, sb.len) : NULL;
    agx_strbuf_free(&sb);
    return j;
}

static int set_new(json_t *obj, const char *key, json_t *val) {
    if (!val) return -1;
    return json_object_set_new(obj, key, val);
}

char *agx_plan_to_json(const agx_plan *plan, int flags) {
    json_t *root = json_object();
    if (!root) return NULL;
    if (plan->plan_id && set_new(root, "plan_id", json_str_safe(plan->plan_id))) goto fail;
    if (plan->plan_description &&
        set_new(root, "plan_description", json_str_safe(plan->plan_description)))
        goto fail;
    json_t *tasks = json_array();
    if (set_new(root, "tasks", tasks)) goto fail; /* root owns tasks from here on */
    for (size_t i = 0; i < plan->n_tasks; i++) {
        const agx_task *t = &plan->tasks[i];
        json_t *jt = json_object();
        if (!jt || json_array_append_new(tasks, jt)) goto fail;
        json_t *args = json_array();
        if (set_new(jt, "task_number", json_integer(t->task_number)) ||
            set_new(jt, "command", json_str_safe(t->command)) || set_new(jt, "args", args))
            goto fail;
        for (size_t a = 0; a < t->n_args; a++)
            if (json_array_append_new(args, json_str_safe(t->args[a]))) goto fail;
        if (set_new(jt, "timeout_secs", json_integer(t->timeout_secs))) goto fail;
        if (t->input_from_task != 0 &&
            set_new(jt, "input_from_task", json_integer(t->input_from_task)))
            goto fail;
    }
    size_t dflags = JSON_PRESERVE_ORDER | ((flags & AGX_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT);
    char *out = json_dumps(root, dflags);
    json_decref(root);
    return out;
fail:
    json_decref(root);
    return NULL;
}

/* --------------------------------------------------------- strict read -- */

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static agx_status strict_int(const json_t *v, const char *what, size_t task, int *out,
                             agx_error *err) {
    if (!json_is_integer(v))
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu].%s must be an integer, not %s",
                             task, what, json_type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < INT_MIN || x > INT_MAX)
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu].%s is out of range (%lld)",
                             task, what, (long long)x);
    *out = (int)x;
    return AGX_OK;
}

static agx_status strict_task(const json_t *jt, size_t i, agx_plan *out, agx_error *err) {
    if (!json_is_object(jt))
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu] must be an object, not %s", i,
                             json_type_name(jt));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)jt, key, v) {
        static const char *const known[] = {"task_number", "command", "args", "timeout_secs",
                                            "input_from_task"};
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= strcmp(key, known[k]) == 0;
        if (!ok)
            return agx_error_set(err, AGX_ERR_JSON,
                                 "plan JSON: tasks[%zu] has unknown key '%s' (known: task_number, "
                                 "command, args, timeout_secs, input_from_task)",
                                 i, key);
    }
    int number = 0, timeout = AGX_DEFAULT_TIMEOUT_SECS, from = 0;
    json_t *jn = json_object_get(jt, "task_number");
    if (!jn) return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu] lacks task_number", i);
    if (strict_int(jn, "task_number", i, &number, err)) return err ? err->code : AGX_ERR_JSON;
    json_t *jc = json_object_get(jt, "command");
    if (!jc) return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu] lacks command", i);
    if (!json_is_string(jc))
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu].command must be a string, not %s",
                             i, json_type_name(jc));
    json_t *jto = json_object_get(jt, "timeout_secs");
    if (jto && strict_int(jto, "timeout_secs", i, &timeout, err)) return err ? err->code : AGX_ERR_JSON;
    json_t *jf = json_object_get(jt, "input_from_task");
    if (jf && !json_is_null(jf) && strict_int(jf, "input_from_task", i, &from, err))
        return err ? err->code : AGX_ERR_JSON;
    json_t *ja = json_object_get(jt, "args");
    size_t n_args = 0;
    if (ja && !json_is_null(ja)) {
        if (!json_is_array(ja))
            return agx_error_set(err, AGX_ERR_JSON, "plan JSON: tasks[%zu].args must be an array, not %s",
                                 i, json_type_name(ja));
        n_args = json_array_size(ja);
        for (size_t a = 0; a < n_args; a++)
            if (!json_is_string(json_array_get(ja, a)))
                return agx_error_set(err, AGX_ERR_JSON,
                                     "plan JSON: tasks[%zu].args[%zu] must be a string, not %s", i, a,
                                     json_type_name(json_array_get(ja, a)));
    }
    char *cmd = agx_strdup(json_string_value(jc));
    char **args = calloc(n_args ? n_args : 1, sizeof *args);
    if (!cmd || !args) {
        free(cmd);
        free(args);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading a plan");
    }
    for (size_t a = 0; a < n_args; a++) {
        args[a] = agx_strdup(json_string_value(json_array_get(ja, a)));
        if (!args[a]) {
            free(cmd);
            agx_plan_free_words(args, a);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading a plan");
        }
    }
    agx_status st = agx_plan_push_task_owned(out, cmd, args, n_args, timeout, from, err);
    if (st == AGX_OK) out->tasks[out->n_tasks - 1].task_number = number;
    return st;
}

static agx_status strict_opt_string(const json_t *root, const char *key, char **dst, agx_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return AGX_OK;
    if (!json_is_string(v))
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: %s must be a string, not %s", key,
                             json_type_name(v));
    *dst = agx_strdup(json_string_value(v));
    return *dst ? AGX_OK : agx_error_set(err, AGX_ERR_NOMEM, "out of memory reading a plan");
}

static agx_status from_json(const char *text, size_t len, agx_plan *out, agx_error *err);

agx_status agx_plan_from_json(const char *text, size_t len, agx_plan *out, agx_error *err) {
    agx_status st = from_json(text, len, out, err);
    return st == AGX_OK ? st : (agx_plan_sanitize_error(err), st);
}

static agx_status from_json(const char *text, size_t len, agx_plan *out, agx_error *err) {
    agx_plan_init(out);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return agx_error_set(err, AGX_ERR_JSON, "plan JSON: line %d column %d: %s", jerr.line,
                             jerr.column, jerr.text);
    agx_status st = AGX_OK;
    if (!json_is_object(root)) {
        st = agx_error_set(err, AGX_ERR_JSON, "plan JSON: top level must be an object, not %s",
                           json_type_name(root));
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "plan_id") && strcmp(key, "plan_description") && strcmp(key, "tasks")) {
            st = agx_error_set(err, AGX_ERR_JSON,
                               "plan JSON: unknown top-level key '%s' (known: plan_id, "
                               "plan_description, tasks)",
                               key);
            goto done;
        }
    }
    if ((st = strict_opt_string(root, "plan_id", &out->plan_id, err)) != AGX_OK) goto done;
    if ((st = strict_opt_string(root, "plan_description", &out->plan_description, err)) != AGX_OK)
        goto done;
    json_t *tasks = json_object_get(root, "tasks");
    if (!tasks) {
        st = agx_error_set(err, AGX_ERR_JSON, "plan JSON: missing \"tasks\" array");
        goto done;
    }
    if (!json_is_array(tasks)) {
        st = agx_error_set(err, AGX_ERR_JSON, "plan JSON: \"tasks\" must be an array, not %s",
                           json_type_name(tasks));
        goto done;
    }
    size_t i;
    json_array_foreach(tasks, i, v) {
        if ((st = strict_task(v, i, out, err)) != AGX_OK) goto done;
    }
done:
    json_decref(root);
    if (st != AGX_OK) agx_plan_free(out);
    return st;
}
