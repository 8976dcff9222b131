/* plan_parse.c — the lenient parser for model output. Finds the first complete
 * JSON value that looks like a plan (inside a markdown fence or prose), repairs
 * common breakage (unescaped inner quotes, trailing commas, raw newlines in
 * strings, invalid backslash escapes, single quotes, comments, Python literals),
 * accepts the canonical and the legacy shapes, and renumbers tasks 1..n with
 * their references. It never trusts what it reads: sizes are bounded, args must
 * be strings, and every failure says why. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agx/plan.h"
#include "agx/util.h"
#include "plan/plan_internal.h"

#define PARSE_MAX_BYTES (1u << 20)  /* model output larger than this is refused */
#define PARSE_MAX_CANDIDATES 64     /* '{' / '[' positions tried before giving up */
#define PARSE_MAX_TASKS 1024        /* far above any limit; the validator enforces the real one */
#define PARSE_MAX_ARGS 4096
#define PARSE_MAX_DEPTH 64          /* plans nest 4 deep; deeper is not a plan */
#define PARSE_REPAIR_BUDGET (8u << 20) /* bytes rewritten by repair over all candidates */
#define PARSE_MAX_REASONS 8

/* ------------------------------------------------------- word splitting -- */

static bool push_word(char ***words, size_t *n, size_t *cap, agx_strbuf *w) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        char **p = realloc(*words, c * sizeof *p);
        if (!p) return false;
        *words = p;
        *cap = c;
    }
    char *s = agx_plan_sb_take(w);
    if (!s) return false;
    (*words)[(*n)++] = s;
    return true;
}

agx_status agx_plan_split_words(const char *s, char ***words_out, size_t *n_out, agx_error *err) {
    char **words = NULL;
    size_t n = 0, cap = 0;
    agx_strbuf w;
    agx_strbuf_init(&w);
    bool in_word = false;
    agx_status st = AGX_OK;
    for (size_t i = 0; s[i];) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_word && !push_word(&words, &n, &cap, &w)) goto oom;
            in_word = false;
            i++;
        } else if (c == '\'') {
            const char *end = strchr(s + i + 1, '\'');
            if (!end) {
                st = agx_error_set(err, AGX_ERR_PARSE, "unterminated single quote in '%.80s'", s);
                goto fail;
            }
            if (!agx_strbuf_append(&w, s + i + 1, (size_t)(end - (s + i + 1)))) goto oom;
            in_word = true;
            i = (size_t)(end - s) + 1;
        } else if (c == '"') {
            i++;
            for (;;) {
                if (!s[i]) {
                    st = agx_error_set(err, AGX_ERR_PARSE, "unterminated double quote in '%.80s'", s);
                    goto fail;
                }
                if (s[i] == '"') break;
                if (s[i] == '\\' && s[i + 1] && strchr("\"\\$`", s[i + 1])) i++;
                if (!agx_strbuf_putc(&w, s[i])) goto oom;
                i++;
            }
            in_word = true;
            i++;
        } else if (c == '\\' && s[i + 1]) {
            if (!agx_strbuf_putc(&w, s[i + 1])) goto oom;
            in_word = true;
            i += 2;
        } else if (strchr("|;&<>`", c) || (c == '$' && s[i + 1] == '(')) {
            st = agx_error_set(err, AGX_ERR_PARSE,
                               "'%.80s' uses the shell operator '%c'; each plan step must be one "
                               "tool with its arguments (use input_from_task to connect steps)",
                               s, c);
            goto fail;
        } else {
            if (!agx_strbuf_putc(&w, c)) goto oom;
            in_word = true;
            i++;
        }
    }
    if (in_word && !push_word(&words, &n, &cap, &w)) goto oom;
    agx_strbuf_free(&w);
    *words_out = words;
    *n_out = n;
    return AGX_OK;
oom:
    st = agx_error_set(err, AGX_ERR_NOMEM, "out of memory splitting a command line");
fail:
    agx_strbuf_free(&w);
    agx_plan_free_words(words, n);
    *words_out = NULL;
    *n_out = 0;
    return st;
}

/* Splits "a | b | c" at unquoted single pipes into malloc'ed segments. */
static agx_status split_pipeline(const char *s, char ***segs, size_t *n_segs, agx_error *err) {
    char **out = NULL;
    size_t n = 0, cap = 0;
    size_t start = 0;
    char q = 0;
    for (size_t i = 0;; i++) {
        char c = s[i];
        if (c && q) {
            if (c == '\\' && q == '"' && s[i + 1]) i++;
            else if (c == q) q = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            q = c;
            continue;
        }
        if (c == '\\' && s[i + 1]) {
            i++;
            continue;
        }
        if (c == '|' && s[i + 1] == '|')
            return agx_plan_free_words(out, n),
                   agx_error_set(err, AGX_ERR_PARSE, "'%.80s' uses the shell operator '||'", s);
        if (c == '|' || !c) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                char **p = realloc(out, cap * sizeof *p);
                if (!p) {
                    agx_plan_free_words(out, n);
                    return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
                }
                out = p;
            }
            out[n] = agx_strndup(s + start, i - start);
            if (!out[n]) {
                agx_plan_free_words(out, n);
                return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
            }
            n++;
            start = i + 1;
            if (!c) break;
        }
    }
    *segs = out;
    *n_segs = n;
    return AGX_OK;
}

/* --------------------------------------------------- candidate scanning -- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool is_ident(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* A '{' or '[' that can start JSON: prose like "[see below]" or "{braces}" is skipped. */
static bool plausible_start(const char *t, size_t len, size_t i) {
    size_t j = i + 1;
    while (j < len && is_ws(t[j])) j++;
    if (j >= len) return false;
    char c = t[j];
    if (t[i] == '{') {
        if (c == '"' || c == '}' || c == '\'') return true;
        /* an unquoted key: {command: "ls"} */
        while (j < len && is_ident(t[j])) j++;
        while (j < len && is_ws(t[j])) j++;
        return j < len && t[j] == ':' && (isalpha((unsigned char)c) || c == '_');
    }
    return c == '"' || c == '\'' || c == '{' || c == '[' || c == ']' || c == '-' ||
           (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

/* End (exclusive) of the bracketed value starting at t[start], tracking JSON
 * strings. 0 when the brackets do not balance: *too_deep says it nested past
 * PARSE_MAX_DEPTH (hopeless), *mismatch that a closer did not match; otherwise
 * the text ran out first. */
static size_t span_end(const char *t, size_t len, size_t start, bool *too_deep, bool *mismatch) {
    char stack[PARSE_MAX_DEPTH];
    size_t depth = 0;
    bool in_str = false;
    *too_deep = false;
    *mismatch = false;
    for (size_t i = start; i < len; i++) {
        char c = t[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (depth == PARSE_MAX_DEPTH) {
                *too_deep = true;
                return 0;
            }
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (!depth || stack[depth - 1] != c) {
                *mismatch = true;
                return 0;
            }
            if (--depth == 0) return i + 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- repair -- */

static bool is_structural_after(const char *t, size_t len, size_t i) {
    while (i < len && is_ws(t[i])) i++;
    return i >= len || t[i] == ',' || t[i] == '}' || t[i] == ']' || t[i] == ':';
}


/* Rewrites the most common model breakage into valid JSON. Only used after a
 * plain parse failed, so valid input is never altered. */
static bool repair(const char *t, size_t len, agx_strbuf *out) {
    size_t i = 0;
    /* A value just ended: another value starting here lacks its comma
     * ("ls" "args", newline-separated objects) — the only valid reading. */
    bool after_value = false;
    while (i < len) {
        char c = t[i];
        if (c == '"' || c == '\'') {
            char q = c;
            if (after_value && !agx_strbuf_putc(out, ',')) return false;
            after_value = true; /* once the string closes */
            if (!agx_strbuf_putc(out, '"')) return false;
            i++;
            for (;;) {
                if (i >= len) return true; /* unterminated: let the parser report it */
                char d = t[i];
                if (d == '\\') {
                    char e = i + 1 < len ? t[i + 1] : 0;
                    if (q == '\'' && e == '\'') {
                        if (!agx_strbuf_putc(out, '\'')) return false;
                        i += 2;
                    } else if (e && strchr("\"\\/bfnrt", e)) {
                        if (!agx_strbuf_append(out, t + i, 2)) return false;
                        i += 2;
                    } else if (e == 'u' && i + 5 < len && isxdigit((unsigned char)t[i + 2]) &&
                               isxdigit((unsigned char)t[i + 3]) && isxdigit((unsigned char)t[i + 4]) &&
                               isxdigit((unsigned char)t[i + 5])) {
                        if (!agx_strbuf_append(out, t + i, 6)) return false;
                        i += 6;
                    } else {
                        /* "\d", "\." in a regex: the model meant a literal backslash. */
                        if (!agx_strbuf_append(out, "\\\\", 2)) return false;
                        i++;
                    }
                } else if (d == q) {
                    /* Closing quote only when JSON structure follows; "say "hi"" keeps
                     * the inner quotes as text. A quote, blanks, then another quote is a
                     * close too (a missing comma is not ours to guess). */
                    size_t j = i + 1;
                    while (j < len && is_ws(t[j])) j++;
                    bool close = is_structural_after(t, len, i + 1) ||
                                 (j > i + 1 && j < len && (t[j] == '"' || t[j] == '\''));
                    if (close) {
                        if (!agx_strbuf_putc(out, '"')) return false;
                        i++;
                        break;
                    }
                    if (!agx_strbuf_append(out, q == '"' ? "\\\"" : "'", q == '"' ? 2 : 1)) return false;
                    i++;
                } else if (d == '"') { /* a double quote inside a single-quoted string */
                    if (!agx_strbuf_append(out, "\\\"", 2)) return false;
                    i++;
                } else if ((unsigned char)d < 0x20) {
                    const char *esc = d == '\n' ? "\\n" : d == '\t' ? "\\t" : d == '\r' ? "\\r" : NULL;
                    bool ok = esc ? agx_strbuf_puts(out, esc) : agx_strbuf_printf(out, "\\u%04x", d);
                    if (!ok) return false;
                    i++;
                } else {
                    size_t j = i + 1; /* copy a run of plain string bytes at once */
                    while (j < len && t[j] != '\\' && t[j] != q && t[j] != '"' &&
                           (unsigned char)t[j] >= 0x20)
                        j++;
                    if (!agx_strbuf_append(out, t + i, j - i)) return false;
                    i = j;
                }
            }
        } else if (c == ',') {
            size_t j = i + 1;
            while (j < len && is_ws(t[j])) j++;
            if (j < len && (t[j] == '}' || t[j] == ']')) {
                i++; /* trailing comma */
                continue;
            }
            if (!agx_strbuf_putc(out, c)) return false;
            after_value = false;
            i++;
        } else if (c == '/' && i + 1 < len && t[i + 1] == '/') {
            while (i < len && t[i] != '\n') i++;
        } else if (c == '/' && i + 1 < len && t[i + 1] == '*') {
            const char *e = NULL;
            for (size_t k = i + 2; k + 1 < len; k++)
                if (t[k] == '*' && t[k + 1] == '/') {
                    e = t + k;
                    break;
                }
            i = e ? (size_t)(e - t) + 2 : len;
        } else if (isdigit((unsigned char)c) ||
                   (c == '-' && i + 1 < len && isdigit((unsigned char)t[i + 1]))) {
            size_t j = i + 1; /* a number, whole */
            while (j < len && (isdigit((unsigned char)t[j]) || (t[j] && strchr(".eE+-", t[j])))) j++;
            if (after_value && !agx_strbuf_putc(out, ',')) return false;
            if (!agx_strbuf_append(out, t + i, j - i)) return false;
            after_value = true;
            i = j;
        } else if (is_ident(c)) {
            size_t j = i;
            while (j < len && is_ident(t[j])) j++;
            size_t n = j - i;
            size_t k = j;
            while (k < len && is_ws(t[k])) k++;
            const char *rep = NULL;
            if (n == 4 && !memcmp(t + i, "True", 4)) rep = "true";
            else if (n == 5 && !memcmp(t + i, "False", 5)) rep = "false";
            else if (n == 4 && !memcmp(t + i, "None", 4)) rep = "null";
            if (after_value && !agx_strbuf_putc(out, ',')) return false;
            bool ok;
            if (!rep && k < len && t[k] == ':') /* an unquoted key: {command: "ls"} */
                ok = agx_strbuf_putc(out, '"') && agx_strbuf_append(out, t + i, n) &&
                     agx_strbuf_putc(out, '"');
            else
                ok = rep ? agx_strbuf_puts(out, rep) : agx_strbuf_append(out, t + i, n);
            if (!ok) return false;
            after_value = true; /* a key is followed by ':', which resets this */
            i = j;
        } else {
            if (c == '{' || c == '[') {
                if (after_value && !agx_strbuf_putc(out, ',')) return false;
                after_value = false;
            } else if (c == '}' || c == ']') {
                after_value = true;
            } else if (!is_ws(c)) {
                after_value = false; /* ':' and anything else */
            }
            if (!agx_strbuf_putc(out, c)) return false;
            i++;
        }
    }
    return true;
}

/* ------------------------------------------------------------ reasons -- */

typedef struct reasons {
    agx_strbuf sb;
    size_t count;
} reasons;

static void reason_add(reasons *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason_add(reasons *r, const char *fmt, ...) {
    r->count++;
    if (r->count > PARSE_MAX_REASONS) return;
    if (r->sb.len) agx_strbuf_puts(&r->sb, "; ");
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    agx_strbuf_puts(&r->sb, buf);
}

/* Model output talks about numbers, not integers: "args[1] is a number (20)". */
static const char *jtype(const json_t *v) {
    return json_is_integer(v) ? "a number" : agx_plan_json_type_name(v);
}

/* ------------------------------------------------------------- shapes -- */

static const char *const command_keys[] = {"command", "cmd", "tool", NULL};
static const char *const args_keys[] = {"args", "arguments", "argv", NULL};
static const char *const number_keys[] = {"task_number", "step", "step_number", "task", "id", NULL};
static const char *const ref_keys[] = {"input_from_task", "input_from_step", "input_from", NULL};
static const char *const timeout_keys[] = {"timeout_secs", "timeout", "timeout_seconds", NULL};
static const char *const list_keys[] = {"tasks", "plan", "steps", NULL};

static json_t *get_any(const json_t *obj, const char *const *keys, const char **which) {
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(obj, keys[i]);
        if (v) {
            if (which) *which = keys[i];
            return v;
        }
    }
    return NULL;
}

static bool is_step_object(const json_t *v) {
    return json_is_object(v) && get_any(v, command_keys, NULL) != NULL;
}

/* An object with any step field: a step even if its command is missing. */
static bool is_stepish(const json_t *v) {
    return json_is_object(v) && (get_any(v, command_keys, NULL) || get_any(v, args_keys, NULL) ||
                                 get_any(v, ref_keys, NULL));
}

/* Does this JSON value look like a plan (as opposed to some other JSON in the prose)? */
static bool plan_shaped(const json_t *v, int depth) {
    if (json_is_object(v)) {
        if (is_step_object(v)) return true;
        json_t *l = get_any(v, list_keys, NULL);
        if (!l) return false;
        if (json_is_array(l) || depth == 0) return true; /* {"tasks": <anything>} is meant as a plan */
        return false;
    }
    if (json_is_array(v)) {
        /* [] or all command strings, or at least one step object among the items. */
        size_t i;
        json_t *e;
        bool all_strings = true;
        json_array_foreach(v, i, e) {
            if (is_stepish(e)) return true;
            all_strings &= json_is_string(e);
        }
        return all_strings;
    }
    return false;
}

/* Integer from a number, an integral real or a numeric string. */
static bool get_int(const json_t *v, long long *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != (double)(long long)d || d > 1e15 || d < -1e15) return false;
        *out = (long long)d;
        return true;
    }
    if (json_is_string(v)) {
        /* "3", and the labels models write: "task 3", "step_3", "#3" */
        const char *s = json_string_value(v);
        if (!strncasecmp(s, "task", 4) || !strncasecmp(s, "step", 4)) s += 4;
        while (*s == ' ' || *s == '_' || *s == '-' || *s == '#') s++;
        if (!isdigit((unsigned char)*s)) return false;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end == s || *end || errno) return false;
        *out = x;
        return true;
    }
    return false;
}

/* One task in progress: the original numbering is kept for mapping references. */
typedef struct raw_task {
    long long orig_number;
    bool has_number;
    long long ref;
    bool has_ref;
} raw_task;

typedef struct builder {
    agx_plan *plan;
    raw_task *raw;
    size_t n_raw, cap_raw;
    reasons *why;
} builder;

static bool raw_push(builder *b, raw_task r) {
    if (b->n_raw == b->cap_raw) {
        size_t c = b->cap_raw ? b->cap_raw * 2 : 16;
        raw_task *p = realloc(b->raw, c * sizeof *p);
        if (!p) return false;
        b->raw = p;
        b->cap_raw = c;
    }
    b->raw[b->n_raw++] = r;
    return true;
}

/* Appends words[0] as command and words[1..] + extra as args (takes ownership of nothing). */
static agx_status add_words(builder *b, char **words, size_t n_words, char **extra, size_t n_extra,
                            int timeout, raw_task r, agx_error *err) {
    size_t n_args = n_words - 1 + n_extra;
    char *cmd = agx_strdup(words[0]);
    char **args = calloc(n_args ? n_args : 1, sizeof *args);
    if (!cmd || !args) {
        free(cmd);
        free(args);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory parsing a plan");
    }
    size_t k = 0;
    for (size_t i = 1; i < n_words; i++) args[k++] = agx_strdup(words[i]);
    for (size_t i = 0; i < n_extra; i++) args[k++] = agx_strdup(extra[i]);
    for (size_t i = 0; i < n_args; i++)
        if (!args[i]) {
            free(cmd);
            agx_plan_free_words(args, n_args);
            return agx_error_set(err, AGX_ERR_NOMEM, "out of memory parsing a plan");
        }
    agx_status st = agx_plan_push_task_owned(b->plan, cmd, args, n_args, timeout, 0, err);
    if (st != AGX_OK) return st;
    if (!raw_push(b, r)) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory parsing a plan");
    return AGX_OK;
}

/* A step given as a string: "sort -r", or a pipeline "grep x | wc -l" (each stage
 * becomes a task fed by the one before). */
static agx_status add_string_step(builder *b, const char *s, size_t pos, bool chain, agx_error *err) {
    char **segs = NULL;
    size_t n_segs = 0;
    agx_error e2;
    if (split_pipeline(s, &segs, &n_segs, &e2) != AGX_OK) {
        if (e2.code == AGX_ERR_NOMEM) return agx_error_set(err, AGX_ERR_NOMEM, "%s", e2.message);
        reason_add(b->why, "step %zu: %s", pos, e2.message);
        return AGX_OK;
    }
    agx_status st = AGX_OK;
    for (size_t i = 0; i < n_segs && st == AGX_OK; i++) {
        char **words = NULL;
        size_t n_words = 0;
        if (agx_plan_split_words(segs[i], &words, &n_words, &e2) != AGX_OK) {
            if (e2.code == AGX_ERR_NOMEM) st = agx_error_set(err, AGX_ERR_NOMEM, "%s", e2.message);
            else reason_add(b->why, "step %zu: %s", pos, e2.message);
            break;
        }
        if (n_words == 0 || !words[0][0]) {
            reason_add(b->why, "step %zu: empty command", pos);
        } else if (n_words > PARSE_MAX_ARGS) {
            reason_add(b->why, "step %zu: more than %d arguments", pos, PARSE_MAX_ARGS);
        } else {
            /* Chained string steps (and pipeline stages) read the previous task's output. */
            raw_task r = {0};
            bool link = (i > 0) || (chain && b->plan->n_tasks > 0);
            if (link) {
                r.has_ref = true;
                r.ref = -(long long)b->plan->n_tasks; /* negative: already a final position */
            }
            st = add_words(b, words, n_words, NULL, 0, AGX_DEFAULT_TIMEOUT_SECS, r, err);
        }
        agx_plan_free_words(words, n_words);
    }
    agx_plan_free_words(segs, n_segs);
    return st;
}

static agx_status add_object_step(builder *b, const json_t *o, size_t pos, agx_error *err) {
    const char *which = NULL;
    json_t *jc = get_any(o, command_keys, &which);
    if (!jc) {
        reason_add(b->why, "step %zu: no \"command\" (or \"cmd\"/\"tool\") field", pos);
        return AGX_OK;
    }
    if (!json_is_string(jc)) {
        reason_add(b->why, "step %zu: \"%s\" must be a string, not %s", pos, which, jtype(jc));
        return AGX_OK;
    }
    size_t before = b->why->count;
    raw_task r = {0};
    int timeout = AGX_DEFAULT_TIMEOUT_SECS;
    long long x;
    json_t *v;
    if ((v = get_any(o, number_keys, NULL)) && get_int(v, &x)) {
        r.has_number = true;
        r.orig_number = x;
    }
    if ((v = get_any(o, ref_keys, &which)) && !json_is_null(v)) {
        if (!get_int(v, &x))
            reason_add(b->why, "step %zu: \"%s\" must be a task number, not %s", pos, which, jtype(v));
        else if (x < 0)
            reason_add(b->why, "step %zu: \"%s\" must be a task number, not %lld", pos, which, x);
        else {
            r.has_ref = true;
            r.ref = x;
        }
    }
    if ((v = get_any(o, timeout_keys, &which)) && !json_is_null(v)) {
        if (!get_int(v, &x) || x < INT_MIN || x > INT_MAX)
            reason_add(b->why, "step %zu: \"%s\" must be a whole number of seconds", pos, which);
        else
            timeout = (int)x;
    }
    /* Arguments: an array of strings (zero trust: numbers are not silently
     * converted), or one string split with shell quoting rules. */
    char **extra = NULL;
    size_t n_extra = 0;
    bool extra_is_words = false;
    json_t *ja = get_any(o, args_keys, &which);
    agx_error e2;
    if (ja && json_is_array(ja)) {
        n_extra = json_array_size(ja);
        if (n_extra > PARSE_MAX_ARGS) {
            reason_add(b->why, "step %zu: more than %d arguments", pos, PARSE_MAX_ARGS);
            n_extra = 0;
        }
        extra = calloc(n_extra ? n_extra : 1, sizeof *extra);
        if (!extra) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory parsing a plan");
        for (size_t i = 0; i < n_extra; i++) {
            json_t *a = json_array_get(ja, i);
            if (json_is_string(a)) {
                extra[i] = (char *)json_string_value(a);
            } else {
                char *dump = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
                reason_add(b->why, "step %zu: %s[%zu] is %s (%.40s), not a string; args must be strings",
                           pos, which, i, jtype(a), dump ? dump : "?");
                free(dump);
                extra[i] = "";
            }
        }
    } else if (ja && json_is_string(ja)) {
        if (agx_plan_split_words(json_string_value(ja), &extra, &n_extra, &e2) != AGX_OK) {
            if (e2.code == AGX_ERR_NOMEM) return agx_error_set(err, AGX_ERR_NOMEM, "%s", e2.message);
            reason_add(b->why, "step %zu: %s: %s", pos, which, e2.message);
        }
        extra_is_words = true;
    } else if (ja && !json_is_null(ja)) {
        reason_add(b->why, "step %zu: \"%s\" must be an array of strings, not %s", pos, which, jtype(ja));
    }
    /* "command": "grep -rn" carries arguments of its own. */
    char **words = NULL;
    size_t n_words = 0;
    agx_status st = AGX_OK;
    if (agx_plan_split_words(json_string_value(jc), &words, &n_words, &e2) != AGX_OK) {
        if (e2.code == AGX_ERR_NOMEM) st = agx_error_set(err, AGX_ERR_NOMEM, "%s", e2.message);
        else reason_add(b->why, "step %zu: command %s", pos, e2.message);
    } else if (n_words == 0 || !words[0][0]) {
        reason_add(b->why, "step %zu: empty command", pos);
    }
    if (st == AGX_OK && b->why->count == before)
        st = add_words(b, words, n_words, extra, n_extra, timeout, r, err);
    agx_plan_free_words(words, n_words);
    if (extra_is_words) agx_plan_free_words(extra, n_extra);
    else free(extra);
    return st;
}

/* Maps original task numbers in references to positions 1..n. */
static void resolve_refs(builder *b) {
    size_t n = b->n_raw;
    bool all_numbered = n > 0;
    bool zero_based = false;
    for (size_t i = 0; i < n; i++) {
        all_numbered &= b->raw[i].has_number;
        if (b->raw[i].has_number && b->raw[i].orig_number == 0) zero_based = true;
    }
    zero_based &= all_numbered;
    for (size_t i = 0; i < n; i++) {
        raw_task *r = &b->raw[i];
        agx_task *t = &b->plan->tasks[i];
        t->task_number = (int)i + 1;
        if (!r->has_ref) continue;
        if (r->ref < 0) { /* chained string step: a final position already */
            t->input_from_task = (int)(-r->ref);
            continue;
        }
        if (r->ref == 0 && !zero_based) continue; /* 0 = no input */
        long long found = -1;
        size_t matches = 0;
        for (size_t j = 0; j < n; j++) {
            long long num = all_numbered ? b->raw[j].orig_number : (long long)j + 1;
            if (num == r->ref) {
                if (!matches) found = (long long)j + 1;
                matches++;
            }
        }
        if (matches == 0)
            reason_add(b->why, "task %zu: input_from_task %lld names no task", i + 1, r->ref);
        else if (matches > 1)
            reason_add(b->why, "task %zu: input_from_task %lld is ambiguous (task numbers repeat)",
                       i + 1, r->ref);
        else
            t->input_from_task = (int)found;
    }
}

static agx_status build_plan(const json_t *root, agx_plan *out, reasons *why, agx_error *err) {
    builder b = {out, NULL, 0, 0, why};
    const json_t *list = root;
    bool chain_strings = false;
    bool single = false;
    if (json_is_object(root)) {
        if (is_step_object(root)) {
            single = true;
        } else {
            const json_t *holder = root;
            list = get_any(root, list_keys, NULL);
            if (is_step_object(list)) { /* {"tasks": {"command": ...}}: one step */
                root = list;
                single = true;
            } else if (json_is_object(list)) { /* {"plan": {"tasks": [...]}} */
                holder = list;
                list = get_any(list, list_keys, NULL);
            }
            json_t *v;
            if ((v = json_object_get(holder, "plan_id")) && json_is_string(v))
                out->plan_id = agx_strdup(json_string_value(v));
            if (((v = json_object_get(holder, "plan_description")) ||
                 (v = json_object_get(holder, "description"))) &&
                json_is_string(v))
                out->plan_description = agx_strdup(json_string_value(v));
            if ((json_is_string(json_object_get(holder, "plan_id")) && !out->plan_id) ||
                (v && json_is_string(v) && !out->plan_description))
                return agx_error_set(err, AGX_ERR_NOMEM, "out of memory parsing a plan");
            if (!single && !json_is_array(list)) {
                reason_add(why, "\"tasks\" must be an array of steps");
                return AGX_OK;
            }
        }
    }
    agx_status st = AGX_OK;
    if (single) {
        st = add_object_step(&b, root, 1, err);
    } else {
        size_t n = json_array_size(list);
        if (n > PARSE_MAX_TASKS) {
            reason_add(why, "the plan has %zu steps; the parser stops at %d", n, PARSE_MAX_TASKS);
            return AGX_OK;
        }
        /* A list of command strings is a pipeline: each reads the previous output. */
        chain_strings = true;
        for (size_t i = 0; i < n; i++)
            if (!json_is_string(json_array_get(list, i))) chain_strings = false;
        for (size_t i = 0; i < n && st == AGX_OK; i++) {
            json_t *e = json_array_get(list, i);
            if (json_is_string(e)) st = add_string_step(&b, json_string_value(e), i + 1, chain_strings, err);
            else if (json_is_object(e)) st = add_object_step(&b, e, i + 1, err);
            else reason_add(why, "step %zu is %s; a step is an object or a command string", i + 1, jtype(e));
        }
    }
    if (st == AGX_OK && why->count == 0) resolve_refs(&b);
    free(b.raw);
    if (st == AGX_OK && why->count == 0 && out->n_tasks == 0) reason_add(why, "the plan has no tasks");
    return st;
}

/* ---------------------------------------------------------------- entry -- */

/* Does the text at t[i] open something that is clearly meant as a plan
 * ({"tasks", {"plan", {"command", [{ or [")? If such a value never closes, the
 * output was cut off and a complete step nested in it must not pass as the plan. */
static bool planlike_opening(const char *t, size_t len, size_t i) {
    size_t j = i + 1;
    while (j < len && is_ws(t[j])) j++;
    if (j >= len) return false;
    if (t[i] == '[') return t[j] == '{' || t[j] == '"';
    if (t[j] != '"' && t[j] != '\'') return false;
    static const char *const *const groups[] = {list_keys, command_keys};
    for (size_t g = 0; g < 2; g++)
        for (size_t k = 0; groups[g][k]; k++) {
            size_t kl = strlen(groups[g][k]);
            if (j + 1 + kl < len && !memcmp(t + j + 1, groups[g][k], kl) && t[j + 1 + kl] == t[j])
                return true;
        }
    return false;
}

static json_t *try_load(const char *t, size_t len, size_t flags, json_error_t *jerr) {
    return json_loadb(t, len, flags, jerr);
}

/* Reasoning models think aloud first (<think>...</think>), often with a draft
 * plan in it: the answer is what follows the last closing tag. A tag inside a
 * JSON string ("args": ["</think>"]) is data, not the end of the reasoning.
 * JSON strings never span lines, so the string state restarts at each newline:
 * an unbalanced quote in the prose can only hide a tag on its own line. */
static size_t after_thinking(const char *text, size_t len) {
    static const char tag[] = "</think>";
    size_t tl = sizeof tag - 1, at = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\n') in_string = false;
        else if (in_string) {
            if (c == '\\' && i + 1 < len && text[i + 1] != '\n') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') in_string = true;
        else if (c == '<' && i + tl <= len && !memcmp(text + i, tag, tl)) at = i + tl;
    }
    return at;
}

static agx_status parse_text(const char *text, size_t len, agx_plan *out, agx_error *err, int depth);

/* The whole reply is one JSON string holding the plan ("{\"tasks\": ...}"): decode it once. */
static agx_status parse_quoted(const char *text, size_t len, agx_plan *out, agx_error *err, int depth,
                               bool *tried) {
    *tried = false;
    size_t i = 0;
    while (i < len && is_ws(text[i])) i++;
    if (depth > 0 || i >= len || text[i] != '"') return AGX_ERR_PARSE;
    json_error_t jerr;
    json_t *v = json_loadb(text + i, len - i, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
    if (!json_is_string(v)) {
        json_decref(v);
        return AGX_ERR_PARSE;
    }
    *tried = true;
    agx_status st = parse_text(json_string_value(v), json_string_length(v), out, err, depth + 1);
    json_decref(v);
    return st;
}

static agx_status parse_lenient(const char *text, size_t len, agx_plan *out, agx_error *err);

agx_status agx_plan_parse_lenient(const char *text, size_t len, agx_plan *out, agx_error *err) {
    agx_status st = parse_lenient(text, len, out, err);
    return st == AGX_OK ? st : (agx_plan_sanitize_error(err), st);
}

static agx_status parse_lenient(const char *text, size_t len, agx_plan *out, agx_error *err) {
    agx_plan_init(out);
    if (!text) return agx_error_set(err, AGX_ERR_PARSE, "model output is empty");
    if (len > PARSE_MAX_BYTES)
        return agx_error_set(err, AGX_ERR_PARSE,
                             "model output is %zu bytes; plans larger than %u bytes are refused",
                             len, PARSE_MAX_BYTES);
    size_t skip = after_thinking(text, len);
    /* Only an answer with no JSON at all falls back to the whole reply. */
    if (skip && (memchr(text + skip, '{', len - skip) || memchr(text + skip, '[', len - skip)))
        return parse_text(text + skip, len - skip, out, err, 0);
    return parse_text(text, len, out, err, 0);
}

static agx_status parse_text(const char *text, size_t len, agx_plan *out, agx_error *err, int depth) {
    agx_plan_init(out);
    char first_err[256] = "";
    size_t tried = 0;
    size_t repair_budget = PARSE_REPAIR_BUDGET;
    size_t i = 0;
    while (i < len) {
        if ((text[i] != '{' && text[i] != '[') || !plausible_start(text, len, i)) {
            i++;
            continue;
        }
        if (++tried > PARSE_MAX_CANDIDATES) break;
        bool too_deep, mismatch;
        size_t end = span_end(text, len, i, &too_deep, &mismatch);
        size_t slen = end ? end - i : len - i;
        json_error_t jerr;
        memset(&jerr, 0, sizeof jerr);
        json_t *root = end ? try_load(text + i, slen, 0, &jerr) : NULL;
        bool repaired = false;
        if (!root && too_deep) {
            if (!first_err[0])
                snprintf(first_err, sizeof first_err, "JSON at offset %zu nests deeper than %d levels",
                         i, PARSE_MAX_DEPTH);
            i++;
            continue;
        }
        /* Repair rewrites its span; a bounded total keeps hostile input linear. */
        if (!root && repair_budget >= slen) {
            repair_budget -= slen;
            if (end && !first_err[0])
                snprintf(first_err, sizeof first_err, "JSON at offset %zu: line %d column %d: %s", i,
                         jerr.line, jerr.column, jerr.text);
            agx_strbuf fixed;
            agx_strbuf_init(&fixed);
            if (!repair(text + i, slen, &fixed)) {
                agx_strbuf_free(&fixed);
                return agx_error_set(err, AGX_ERR_NOMEM, "out of memory repairing model output");
            }
            root = fixed.data ? try_load(fixed.data, fixed.len, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
            if (!root && !first_err[0])
                snprintf(first_err, sizeof first_err, "JSON at offset %zu: line %d column %d: %s", i,
                         jerr.line, jerr.column, jerr.text);
            agx_strbuf_free(&fixed);
            repaired = root != NULL;
        }
        if (!root && !end && !mismatch && planlike_opening(text, len, i))
            return agx_error_set(err, AGX_ERR_PARSE,
                                 "model output: the JSON plan at offset %zu is incomplete (its "
                                 "brackets never close; was the output cut off?)",
                                 i);
        if (!root && (end || mismatch) && planlike_opening(text, len, i))
            return agx_error_set(err, AGX_ERR_PARSE,
                                 "model output: malformed JSON plan at offset %zu (not repairable): "
                                 "line %d column %d: %s",
                                 i, jerr.line, jerr.column, jerr.text);
        if (!root || !plan_shaped(root, 0)) {
            json_decref(root);
            /* A balanced value (broken or not a plan) is skipped whole: what is
             * inside it is a fragment, not a plan of its own. */
            i = end ? end : i + 1;
            continue;
        }
        reasons why = {{0}, 0};
        agx_status st = build_plan(root, out, &why, err);
        json_decref(root);
        if (st == AGX_OK && why.count) {
            st = agx_error_set(err, AGX_ERR_PARSE, "model output%s: %s%s",
                               repaired ? " (after repair)" : "", why.sb.data ? why.sb.data : "",
                               why.count > PARSE_MAX_REASONS ? "; ..." : "");
        }
        agx_strbuf_free(&why.sb);
        if (st != AGX_OK) agx_plan_free(out);
        return st;
    }
    bool quoted;
    agx_status qs = parse_quoted(text, len, out, err, depth, &quoted);
    if (quoted) return qs;
    if (first_err[0])
        return agx_error_set(err, AGX_ERR_PARSE,
                             "model output contains no parseable JSON plan (first attempt: %s)",
                             first_err);
    return agx_error_set(err, AGX_ERR_PARSE,
                         "model output contains no JSON plan (expected {\"tasks\": [...]} or a list "
                         "of steps)");
}
