/* session.c — the REPL's persisted state: plan, instructions and settings in
 * ~/.agx/repl-state.json, every change validated, applied and saved atomically;
 * corrupt state files moved aside. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/session.h"
#include "agx/util.h"

#define STATE_VERSION 1

char *agx_session_default_path(void) {
    char *home = agx_home_dir();
    char *p = home ? agx_sprintf("%s/repl-state.json", home) : NULL;
    free(home);
    return p;
}

static void free_instructions(agx_session *s) {
    for (size_t i = 0; i < s->n_instructions; i++) free(s->instructions[i]);
    free(s->instructions);
    s->instructions = NULL;
    s->n_instructions = 0;
}

agx_status agx_session_init(agx_session *s, const char *path, agx_error *err) {
    memset(s, 0, sizeof *s);
    agx_plan_init(&s->plan);
    s->editor = AGX_EDITOR_EMACS;
    s->stream = true;
    if (path && !(s->path = agx_strdup(path)))
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    return AGX_OK;
}

void agx_session_free(agx_session *s) {
    if (!s) return;
    agx_plan_free(&s->plan);
    free_instructions(s);
    free(s->path);
    s->path = NULL;
}

static bool remember(agx_session *s, const char *instruction) {
    if (s->n_instructions == AGX_SESSION_MAX_INSTRUCTIONS) {
        free(s->instructions[0]);
        memmove(s->instructions, s->instructions + 1,
                (s->n_instructions - 1) * sizeof *s->instructions);
        s->n_instructions--;
    }
    char **p = realloc(s->instructions, (s->n_instructions + 1) * sizeof *p);
    if (!p) return false;
    s->instructions = p;
    if (!(p[s->n_instructions] = agx_strdup(instruction))) return false;
    s->n_instructions++;
    return true;
}

/* ------------------------------------------------------------ JSON -- */

char *agx_session_to_json(const agx_session *s) {
    char *plan_text = agx_plan_to_json(&s->plan, AGX_JSON_COMPACT);
    json_t *plan = plan_text ? json_loads(plan_text, 0, NULL) : NULL;
    free(plan_text);
    json_t *ins = json_array();
    for (size_t i = 0; ins && i < s->n_instructions; i++)
        json_array_append_new(ins, json_string(s->instructions[i]));
    json_t *root = plan && ins ? json_pack("{s:i, s:{s:s, s:b}, s:o, s:o}", "version", STATE_VERSION,
                                           "settings", "editor",
                                           s->editor == AGX_EDITOR_VI ? "vi" : "emacs", "stream",
                                           s->stream, "instructions", ins, "plan", plan)
                               : NULL;
    if (!root) {
        json_decref(plan);
        json_decref(ins);
        return NULL;
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

/* Reads the state; on failure *why says what is wrong (malloc'ed). */
static bool parse_state(const char *text, size_t len, agx_session *s, char **why) {
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) {
        *why = agx_sprintf("not JSON: %s at line %d, column %d", je.text, je.line, je.column);
        return false;
    }
    bool ok = false;
    json_t *version = json_object_get(root, "version");
    json_t *settings = json_object_get(root, "settings");
    json_t *ins = json_object_get(root, "instructions");
    json_t *plan = json_object_get(root, "plan");
    if (!json_is_object(root)) {
        *why = agx_strdup("the top level is not an object");
    } else if (!json_is_integer(version) || json_integer_value(version) != STATE_VERSION) {
        *why = agx_sprintf("\"version\" is not %d", STATE_VERSION);
    } else if (!json_is_object(plan)) {
        *why = agx_strdup("\"plan\" is missing or not an object");
    } else if ((settings && !json_is_object(settings)) || (ins && !json_is_array(ins))) {
        *why = agx_strdup("\"settings\" is not an object or \"instructions\" not an array");
    } else {
        ok = true;
        json_t *ed = json_object_get(settings, "editor");
        json_t *st = json_object_get(settings, "stream");
        if (ed && json_is_string(ed) && !strcmp(json_string_value(ed), "vi"))
            s->editor = AGX_EDITOR_VI;
        else if (ed && !(json_is_string(ed) && !strcmp(json_string_value(ed), "emacs"))) {
            ok = false;
            *why = agx_strdup("\"settings.editor\" is not \"emacs\" or \"vi\"");
        }
        if (ok && st) {
            if (!json_is_boolean(st)) {
                ok = false;
                *why = agx_strdup("\"settings.stream\" is not true or false");
            } else {
                s->stream = json_is_true(st);
            }
        }
        size_t i;
        json_t *v;
        json_array_foreach(ins, i, v) {
            if (!ok) break;
            if (!json_is_string(v)) {
                ok = false;
                *why = agx_sprintf("\"instructions\"[%zu] is not a string", i);
            } else if (!remember(s, json_string_value(v))) {
                ok = false;
                *why = agx_strdup("out of memory");
            }
        }
        if (ok) {
            char *pt = json_dumps(plan, JSON_COMPACT | JSON_PRESERVE_ORDER);
            agx_error perr;
            agx_error_clear(&perr);
            agx_plan p;
            if (!pt || agx_plan_from_json(pt, strlen(pt), &p, &perr) != AGX_OK) {
                ok = false;
                *why = agx_sprintf("\"plan\": %s", pt ? perr.message : "out of memory");
            } else {
                agx_plan_free(&s->plan);
                s->plan = p;
            }
            free(pt);
        }
    }
    json_decref(root);
    return ok;
}

agx_status agx_session_from_json(agx_session *s, const char *text, size_t len, agx_error *err) {
    agx_status st = agx_session_init(s, NULL, err);
    if (st != AGX_OK) return st;
    char *why = NULL;
    if (parse_state(text, len, s, &why)) return AGX_OK;
    st = agx_error_set(err, AGX_ERR_JSON, "not a REPL state: %s", why ? why : "out of memory");
    free(why);
    agx_plan_free(&s->plan);
    agx_plan_init(&s->plan);
    free_instructions(s);
    s->editor = AGX_EDITOR_EMACS;
    s->stream = true;
    return st;
}

agx_status agx_session_load(agx_session *s, const char *path, char **moved_to, char **why,
                            agx_error *err) {
    if (moved_to) *moved_to = NULL;
    if (why) *why = NULL;
    agx_status st = agx_session_init(s, path, err);
    if (st != AGX_OK || !path) return st;
    if (!agx_file_exists(path)) return AGX_OK;
    char *text = NULL;
    size_t len = 0;
    char *reason = NULL;
    st = agx_file_read_all(path, AGX_SESSION_MAX_BYTES, &text, &len, err);
    if (st != AGX_OK) {
        /* too large counts as corrupt; other read errors are real I/O problems */
        if (!strstr(err->message, "is larger than")) {
            agx_error_prefix(err, "reading the REPL state");
            agx_session_free(s);
            return st;
        }
        reason = agx_sprintf("larger than %u bytes", AGX_SESSION_MAX_BYTES);
        agx_error_clear(err);
    } else if (parse_state(text, len, s, &reason)) {
        free(text);
        return AGX_OK;
    }
    free(text);
    /* corrupt: keep it for inspection, start empty */
    agx_plan_free(&s->plan);
    agx_plan_init(&s->plan);
    free_instructions(s);
    s->editor = AGX_EDITOR_EMACS;
    s->stream = true;
    char *dest = agx_file_corrupt_name(path);
    if (!dest) {
        free(reason);
        agx_session_free(s);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    if (rename(path, dest) != 0) {
        st = agx_error_set(err, AGX_ERR_IO,
                           "the REPL state '%s' is corrupt (%s) and could not be moved to '%s': "
                           "%s; move or delete it by hand",
                           path, reason ? reason : "?", dest, strerror(errno));
        free(dest);
        free(reason);
        agx_session_free(s);
        return st;
    }
    if (moved_to)
        *moved_to = dest;
    else
        free(dest);
    if (why)
        *why = reason;
    else
        free(reason);
    return AGX_OK;
}

agx_status agx_session_save(const agx_session *s, agx_error *err) {
    if (!s->path) return AGX_OK;
    char *text = agx_session_to_json(s);
    if (!text) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory serializing the REPL state");
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    bool ok = agx_strbuf_puts(&sb, text) && agx_strbuf_putc(&sb, '\n');
    free(text);
    agx_status st = ok ? agx_file_write_atomic(s->path, sb.data, sb.len, err)
                       : agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    agx_strbuf_free(&sb);
    if (st != AGX_OK) agx_error_prefix(err, "saving the REPL state");
    return st;
}

/* --------------------------------------------------------- changes -- */

static agx_status check(const agx_plan *p, const agx_registry *reg, agx_plan_problems *problems,
                        agx_error *err) {
    agx_plan_limits lim = agx_plan_limits_default();
    return agx_plan_validate(p, reg, &lim, problems, err);
}

/* Takes the candidate plan as the session's plan and saves. */
static agx_status commit(agx_session *s, agx_plan *candidate, agx_error *err) {
    agx_plan_free(&s->plan);
    s->plan = *candidate;
    agx_plan_init(candidate);
    return agx_session_save(s, err);
}

agx_status agx_session_append(agx_session *s, const agx_plan *steps, const char *instruction,
                              const agx_registry *registry, int *first_new,
                              agx_plan_problems *problems, agx_error *err) {
    if (problems) memset(problems, 0, sizeof *problems);
    agx_plan cand;
    agx_status st = agx_plan_copy(&s->plan, &cand, err);
    if (st != AGX_OK) return st;
    int first = (int)cand.n_tasks + 1;
    st = agx_plan_append(&cand, steps, err);
    if (st == AGX_OK) st = check(&cand, registry, problems, err);
    if (st != AGX_OK) {
        agx_plan_free(&cand);
        return st;
    }
    if (instruction && *instruction && !remember(s, instruction)) {
        agx_plan_free(&cand);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    if (first_new) *first_new = first;
    return commit(s, &cand, err);
}

static agx_status check_index(const agx_session *s, size_t n, agx_error *err) {
    if (n >= 1 && n <= s->plan.n_tasks) return AGX_OK;
    if (s->plan.n_tasks == 0) return agx_error_set(err, AGX_ERR_USAGE, "the plan is empty");
    return agx_error_set(err, AGX_ERR_USAGE, "there is no task %zu (the plan has tasks 1..%zu)", n,
                         s->plan.n_tasks);
}

agx_status agx_session_edit(agx_session *s, size_t n, const char *line,
                            const agx_registry *registry, agx_plan_problems *problems,
                            agx_error *err) {
    if (problems) memset(problems, 0, sizeof *problems);
    agx_status st = check_index(s, n, err);
    if (st != AGX_OK) return st;
    char **words = NULL;
    size_t nw = 0;
    st = agx_session_split_words(line, &words, &nw, err);
    if (st != AGX_OK) return st;
    if (nw == 0) {
        agx_session_free_words(words, nw);
        return agx_error_set(err, AGX_ERR_USAGE,
                             "the new step is empty; give a command and its arguments, e.g. "
                             "grep -n TODO");
    }
    agx_plan cand;
    st = agx_plan_copy(&s->plan, &cand, err);
    if (st != AGX_OK) {
        agx_session_free_words(words, nw);
        return st;
    }
    agx_task *t = &cand.tasks[n - 1];
    for (size_t i = 0; i < t->n_args; i++) free(t->args[i]);
    free(t->args);
    free(t->command);
    t->command = words[0];
    t->n_args = nw - 1;
    t->args = NULL;
    if (t->n_args) {
        t->args = malloc(t->n_args * sizeof *t->args);
        if (!t->args) {
            t->n_args = 0;
            for (size_t i = 1; i < nw; i++) free(words[i]);
            free(words);
            agx_plan_free(&cand);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
        }
        memcpy(t->args, words + 1, t->n_args * sizeof *t->args);
    }
    free(words); /* the strings now belong to the task */
    st = check(&cand, registry, problems, err);
    if (st != AGX_OK) {
        agx_plan_free(&cand);
        return st;
    }
    return commit(s, &cand, err);
}

agx_status agx_session_remove(agx_session *s, size_t n, agx_error *err) {
    agx_status st = check_index(s, n, err);
    if (st != AGX_OK) return st;
    agx_plan *p = &s->plan;
    agx_task gone = p->tasks[n - 1];
    memmove(p->tasks + n - 1, p->tasks + n, (p->n_tasks - n) * sizeof *p->tasks);
    p->n_tasks--;
    for (size_t i = n - 1; i < p->n_tasks; i++) {
        agx_task *t = &p->tasks[i];
        if (t->input_from_task == gone.task_number) /* splice the pipe around the gap */
            t->input_from_task = gone.input_from_task;
    }
    free(gone.command);
    for (size_t i = 0; i < gone.n_args; i++) free(gone.args[i]);
    free(gone.args);
    agx_plan_renumber(p); /* references follow old task numbers to new positions */
    return agx_session_save(s, err);
}

agx_status agx_session_clear(agx_session *s, agx_error *err) {
    agx_plan_free(&s->plan);
    agx_plan_init(&s->plan);
    free_instructions(s);
    return agx_session_save(s, err);
}

agx_status agx_session_replace(agx_session *s, const agx_plan *plan, agx_error *err) {
    agx_plan cand;
    agx_status st = agx_plan_copy(plan, &cand, err);
    if (st != AGX_OK) return st;
    return commit(s, &cand, err);
}

agx_status agx_session_set(agx_session *s, const char *key, const char *value, agx_error *err) {
    if (!key || !value) return agx_error_set(err, AGX_ERR_USAGE, "set needs a name and a value");
    if (!strcmp(key, "editor")) {
        if (!strcmp(value, "vi"))
            s->editor = AGX_EDITOR_VI;
        else if (!strcmp(value, "emacs"))
            s->editor = AGX_EDITOR_EMACS;
        else
            return agx_error_set(err, AGX_ERR_USAGE, "editor is emacs or vi, not '%.64s'", value);
    } else if (!strcmp(key, "stream")) {
        if (!strcmp(value, "on"))
            s->stream = true;
        else if (!strcmp(value, "off"))
            s->stream = false;
        else
            return agx_error_set(err, AGX_ERR_USAGE, "stream is on or off, not '%.64s'", value);
    } else {
        return agx_error_set(err, AGX_ERR_USAGE,
                             "unknown setting '%.64s' (settings: editor emacs|vi, stream on|off)",
                             key);
    }
    return agx_session_save(s, err);
}

/* --------------------------------------------------------- helpers -- */

void agx_session_free_words(char **words, size_t n) {
    for (size_t i = 0; i < n; i++) free(words[i]);
    free(words);
}

agx_status agx_session_split_words(const char *line, char ***words, size_t *n_words,
                                   agx_error *err) {
    *words = NULL;
    *n_words = 0;
    char **out = NULL;
    size_t n = 0;
    agx_strbuf w;
    agx_strbuf_init(&w);
    bool in_word = false, ok = true;
    const char *p = line ? line : "";
    agx_status st = AGX_OK;
    for (;;) {
        char c = *p;
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                char **grown = realloc(out, (n + 1) * sizeof *out);
                char *word = grown ? agx_strbuf_take(&w) : NULL;
                if (!grown || !word) {
                    if (grown) out = grown;
                    ok = false;
                    break;
                }
                out = grown;
                out[n++] = word;
                in_word = false;
            }
            if (c == '\0') break;
            p++;
        } else if (c == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                st = agx_error_set(err, AGX_ERR_USAGE, "unterminated ' quote");
                break;
            }
            ok = agx_strbuf_append(&w, p + 1, (size_t)(end - p - 1)) && agx_strbuf_puts(&w, "");
            in_word = true;
            p = end + 1;
        } else if (c == '"') {
            p++;
            in_word = true;
            ok = agx_strbuf_puts(&w, "");
            while (ok && *p && *p != '"') {
                if (*p == '\\' && p[1] && strchr("\"\\$`", p[1])) p++;
                ok = agx_strbuf_putc(&w, *p++);
            }
            if (!*p) {
                st = agx_error_set(err, AGX_ERR_USAGE, "unterminated \" quote");
                break;
            }
            p++;
        } else if (c == '\\' && p[1]) {
            ok = agx_strbuf_putc(&w, p[1]);
            in_word = true;
            p += 2;
        } else {
            ok = agx_strbuf_putc(&w, c);
            in_word = true;
            p++;
        }
        if (!ok) break;
    }
    agx_strbuf_free(&w);
    if (st == AGX_OK && !ok) st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    if (st != AGX_OK) {
        agx_session_free_words(out, n);
        return st;
    }
    *words = out;
    *n_words = n;
    return AGX_OK;
}

char *agx_session_task_line(const agx_session *s, size_t n) {
    if (n < 1 || n > s->plan.n_tasks) return NULL;
    const agx_task *t = &s->plan.tasks[n - 1];
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    agx_strbuf_shell_word(&sb, t->command ? t->command : "", false);
    for (size_t i = 0; i < t->n_args; i++) {
        agx_strbuf_putc(&sb, ' ');
        agx_strbuf_shell_word(&sb, t->args[i] ? t->args[i] : "", false);
    }
    return agx_strbuf_take(&sb);
}

char *agx_session_request(const agx_session *s) {
    if (s->n_instructions == 0) return NULL;
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (size_t i = 0; i < s->n_instructions; i++) {
        if (i) agx_strbuf_puts(&sb, "; then ");
        agx_strbuf_puts(&sb, s->instructions[i]);
    }
    return agx_strbuf_take(&sb);
}
