/* plan_validate.c — zero-trust validation of a plan against the tool registry
 * and limits (collecting every problem, not only the first), and upstream's
 * normalization rule (a `uniq` not fed by `sort` gets a `sort` before it). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agx/plan.h"
#include "agx/registry.h"
#include "agx/util.h"
#include "plan/plan_internal.h"

agx_plan_limits agx_plan_limits_default(void) {
    agx_plan_limits l = {
        .max_tasks = 20,
        .max_args = 64,
        .max_arg_len = 4096,
        .max_command_len = 64,
        .max_timeout_secs = 86400,
    };
    return l;
}

void agx_plan_problems_free(agx_plan_problems *p) {
    if (!p) return;
    for (size_t i = 0; i < p->count; i++) free(p->items[i].message);
    free(p->items);
    p->items = NULL;
    p->count = 0;
}

typedef struct collector {
    agx_plan_problem *items;
    size_t count, cap;
    bool oom;
} collector;

static void problem(collector *c, int task, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(collector *c, int task, const char *fmt, ...) {
    if (c->oom) return;
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        agx_plan_problem *p = realloc(c->items, cap * sizeof *p);
        if (!p) {
            c->oom = true;
            return;
        }
        c->items = p;
        c->cap = cap;
    }
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    if (task > 0) agx_strbuf_printf(&sb, "task %d: ", task);
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    if (!msg || !agx_strbuf_puts(&sb, msg)) {
        free(msg);
        agx_strbuf_free(&sb);
        c->oom = true;
        return;
    }
    free(msg);
    c->items[c->count].task_number = task;
    c->items[c->count].message = agx_plan_sb_take(&sb);
    c->count++;
}

/* A short printable rendering of untrusted text for messages: control bytes
 * and invalid UTF-8 escaped, long values cut. */
static void display(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    for (size_t i = 0; i < n && o + 8 < cap;) {
        size_t l = agx_plan_utf8_seq_len(p + i, n - i);
        if (l == 1 && p[i] >= 0x20 && p[i] != 0x7f) {
            buf[o++] = (char)p[i++];
        } else if (l > 1) {
            memcpy(buf + o, p + i, l);
            o += l;
            i += l;
        } else {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
            i++;
        }
        if (o > 60 && i < n) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    buf[o] = '\0';
}

/* Control characters other than tab / newline / CR have no business in a plan. */
static bool bad_control(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return true;
    }
    return false;
}

static void check_text(collector *c, const char *what, const char *s, size_t max) {
    if (!s) return;
    size_t n = strlen(s);
    if (n > max) problem(c, 0, "%s is %zu bytes; the limit is %zu", what, n, max);
    if (!agx_plan_utf8_valid(s, n)) problem(c, 0, "%s is not valid UTF-8", what);
    else if (bad_control(s)) problem(c, 0, "%s contains control characters", what);
}

/* ------------------------------------------------------ side effects -- */

/* The worker that runs a plan may hold API keys (AGX_OPENAI_API_KEY...) in its
 * environment; a plan's output must not carry them. Only explicit reads are
 * seen (jq env, awk ENVIRON, /proc/.../environ); a recursive grep over / or a
 * file list fed to xargs cat can still reach /proc, so workers should run
 * plans with a minimal environment as well. */
#define ENV_RULE "it may hold secrets such as API keys, and plans may not read it"

/* The length of the word (letters, digits, '_') that starts at p, and whether it is w. */
static size_t word_len(const char *p) {
    size_t len = 0;
    while (isalnum((unsigned char)p[len]) || p[len] == '_') len++;
    return len;
}

static bool word_is(const char *p, size_t len, const char *w) {
    return strlen(w) == len && !strncmp(p, w, len);
}

/* Does an argument name a process's environment file (/proc/self/environ,
 * --file=/proc/1/environ, ../proc//self/./environ, or inside a script:
 * 'getline < "/proc/self/environ"', sed '1r /proc/1/environ')? */
static bool names_proc_environ(const char *s) {
    bool in_proc = false;
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, "/");
        if (word_is(p, len, "proc")) in_proc = true;
        else if (in_proc && word_is(p, word_len(p), "environ")) return true; /* "environ" or "environ.x" */
        p += len;
        if (*p == '/') p++;
    }
    return false;
}

/* The registry holds read-only tools, but some of them can still write files
 * or run programs through an option (find -delete, sed -i, sort -o, awk
 * system(), xargs rm). Zero trust: those uses are refused here, per tool id. */

static void check_tool_args(collector *c, int num, const char *id, char *const *args, size_t n,
                            const agx_registry *reg, int depth);

static bool is_any(const char *s, const char *const *set) {
    for (; *set; set++)
        if (!strcmp(s, *set)) return true;
    return false;
}

/* Does the short-option cluster "-xyz" contain flag before any option letter
 * in takes_value (whose value is the rest of the cluster)? */
static bool cluster_has(const char *a, char flag, const char *takes_value) {
    if (a[0] != '-' || a[1] == '-' || !a[1]) return false;
    for (const char *p = a + 1; *p; p++) {
        if (*p == flag) return true;
        if (strchr(takes_value, *p)) return false;
    }
    return false;
}

/* A GNU long option naming `name` (given without its dashes), also abbreviated as
 * getopt_long accepts it: "--out=f" and "--o" are --output. Any prefix counts, so an
 * ambiguous one is refused too (the tool would refuse it anyway). */
static bool long_opt(const char *a, const char *name) {
    if (strncmp(a, "--", 2) != 0) return false;
    size_t n = strcspn(a + 2, "=");
    return n > 0 && n <= strlen(name) && strncmp(a + 2, name, n) == 0;
}

static void check_find(collector *c, int num, char *const *args, size_t n) {
    static const char *const bad[] = {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint",
                                      "-fprint0", "-fprintf", "-fls", NULL};
    for (size_t i = 0; i < n; i++)
        if (args[i] && is_any(args[i], bad))
            problem(c, num, "find '%s' changes files or runs commands; plans may only read (feed "
                            "the file list to another task instead)",
                    args[i]);
}

/* Skips a regex or replacement delimited by `delim` (backslash escapes it); NULL when
 * the script ends first. */
static const char *sed_skip_delimited(const char *p, char delim) {
    for (; *p && *p != delim; p++)
        if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : NULL;
}

/* Skips a sed address: a line number (first~step), $, /regex/ or \cregexc with I/M
 * flags, GNU's +N / ~N after a comma. */
static const char *sed_skip_address(const char *p) {
    if (*p == '+' || *p == '~') p++;
    if (isdigit((unsigned char)*p)) {
        while (isdigit((unsigned char)*p) || *p == '~') p++;
    } else if (*p == '$') {
        p++;
    } else if (*p == '/' || (*p == '\\' && p[1] && p[1] != '\n')) {
        const char delim = *p == '/' ? '/' : p[1];
        p = sed_skip_delimited(p + (*p == '/' ? 1 : 2), delim);
        while (p && (*p == 'I' || *p == 'M')) p++;
    }
    return p;
}

/* What in a sed script writes a file or runs a command: the w / W / e commands and the
 * s command's w and e flags. The script is walked command by command; one it cannot
 * follow is refused too, so nothing unread can hide there. NULL when it only reads. */
static const char *sed_script_problem(const char *p) {
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ';' || *p == '}') p++;
        if (!*p) break;
        if (*p == '#') { /* a comment, to the end of the line */
            p += strcspn(p, "\n");
            continue;
        }
        const char *start = p;
        p = sed_skip_address(p);
        if (p && p != start && *p == ',') p = sed_skip_address(p + 1);
        if (!p) return "has an unterminated address";
        while (*p == ' ' || *p == '\t' || *p == '!') p++;
        const char cmd = *p ? *p++ : '\0';
        switch (cmd) {
        case '{': case '=': case 'd': case 'D': case 'g': case 'G': case 'h': case 'H': case 'n':
        case 'N': case 'p': case 'P': case 'x': case 'z': case 'F':
            break;
        case 'l': case 'L': case 'q': case 'Q': /* an optional number */
            while (*p == ' ' || isdigit((unsigned char)*p)) p++;
            break;
        case ':': case 'b': case 't': case 'T': case 'v': /* a label, to ';' or the line's end */
            p += strcspn(p, ";\n");
            break;
        case 'a': case 'i': case 'c': case 'r': case 'R': /* text or a file to read, to the line's end */
            for (; *p && *p != '\n'; p++)
                if (*p == '\\' && p[1]) p++;
            break;
        case 'w':
            return "writes a file (its w command)";
        case 'W':
            return "writes a file (its W command)";
        case 'e':
            return "runs a command (its e command)";
        case 's': case 'y': {
            const char delim = *p;
            if (!delim || delim == '\n' || delim == '\\') return "has an s or y command it cannot read";
            p = sed_skip_delimited(p + 1, delim);
            p = p ? sed_skip_delimited(p, delim) : NULL;
            if (!p) return "has an unterminated s or y command";
            for (; cmd == 's' && *p && !strchr(";}\n", *p); p++) {
                if (*p == 'w') return "writes a file (the w flag of s)";
                if (*p == 'e') return "runs a command (the e flag of s)";
                if (!strchr("gpiImM0123456789 \t", *p)) return "has an s flag it cannot read";
            }
            break;
        }
        default:
            return "has a command it cannot read";
        }
    }
    return NULL;
}

static void check_sed_script(collector *c, int num, const char *script) {
    const char *why = sed_script_problem(script);
    if (!why) return;
    char shown[128];
    display(script, shown, sizeof shown);
    problem(c, num, "sed script '%s' %s; plans may only read", shown, why);
}

/* sed -i edits in place; the script (each -e / --expression, else the first operand)
 * is read for commands that write or run something. A script file (-f) is read as
 * it is: plans cannot write one. */
static void check_sed(collector *c, int num, char *const *args, size_t n) {
    bool script_given = false; /* by -e / -f: then every operand is an input file */
    const char *first_operand = NULL;
    bool opts = true;
    for (size_t i = 0; i < n; i++) {
        const char *a = args[i];
        if (!a) continue;
        if (!opts || a[0] != '-' || !a[1]) {
            if (!first_operand) first_operand = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            opts = false;
        } else if (a[1] == '-') {
            if (long_opt(a, "in-place")) {
                problem(c, num, "sed '%s' edits files in place; plans may only read", a);
                continue;
            }
            const bool expr = long_opt(a, "expression"), file = long_opt(a, "file");
            const char *eq = strchr(a, '=');
            if (expr || file) script_given = true;
            const bool valued = expr || file || long_opt(a, "line-length");
            const char *value = eq ? eq + 1 : valued && i + 1 < n ? args[++i] : NULL;
            if (expr && value) check_sed_script(c, num, value);
        } else {
            for (const char *q = a + 1; *q; q++) { /* a cluster: -n, -E, -ne SCRIPT, -e's value */
                if (*q == 'i') {
                    problem(c, num, "sed '%s' edits files in place; plans may only read", a);
                    break;
                }
                if (*q == 'e' || *q == 'f' || *q == 'l') {
                    const char *value = q[1] ? q + 1 : i + 1 < n ? args[++i] : NULL;
                    if (*q != 'l') script_given = true;
                    if (*q == 'e' && value) check_sed_script(c, num, value);
                    break;
                }
            }
        }
    }
    if (!script_given && first_operand) check_sed_script(c, num, first_operand);
}

/* A tool whose -o FILE / --output writes its result to a file (sort, shuf): `valued` are
 * its short options that take a value, separate or as the rest of a cluster. */
static void check_output_option(collector *c, int num, const char *tool, const char *valued, char *const *args,
                                size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *a = args[i];
        if (!a) continue;
        if (a[0] == '-' && a[1] && !a[2] && strchr(valued, a[1])) {
            i++; /* the next word is a value, not an option */
            continue;
        }
        if (long_opt(a, "output") || cluster_has(a, 'o', valued))
            problem(c, num, "%s '%s' writes a file; plans may only read (the output goes to the next task)", tool, a);
        else if (!strcmp(tool, "sort") && long_opt(a, "compress-program"))
            problem(c, num, "sort '%s' runs a program; plans may only read", a);
    }
}

static void check_sort(collector *c, int num, char *const *args, size_t n) {
    check_output_option(c, num, "sort", "ktST", args, n);
}

static void check_uniq(collector *c, int num, char *const *args, size_t n) {
    size_t operands = 0;
    bool opts = true;
    for (size_t i = 0; i < n; i++) {
        const char *a = args[i];
        if (!a) continue;
        if (opts && !strcmp(a, "--")) {
            opts = false;
        } else if (opts && (!strcmp(a, "-f") || !strcmp(a, "-s") || !strcmp(a, "-w"))) {
            i++;
        } else if (opts && a[0] == '-' && a[1]) {
            continue;
        } else if (++operands == 2) {
            problem(c, num, "uniq's second operand '%.60s' is an output file it would overwrite; "
                            "plans may only read",
                    a);
        }
    }
}

/* Only the program text is inspected: -F / -v values and file operands may
 * legitimately contain '|' or '>' (awk -F'|'). */
static void check_awk(collector *c, int num, char *const *args, size_t n) {
    const char *program = NULL;
    bool from_file = false;
    for (size_t i = 0; i < n && args[i]; i++) {
        const char *a = args[i];
        if (!strcmp(a, "--")) {
            if (!from_file && i + 1 < n) program = args[i + 1];
            break;
        }
        if (a[0] != '-' || !a[1]) {
            if (!from_file) program = a;
            break;
        }
        if (!strncmp(a, "-l", 2) || long_opt(a, "load")) {
            problem(c, num, "awk '%.40s' loads an extension library; plans may only read", a);
            continue;
        }
        if (!strcmp(a, "-f") || !strncmp(a, "--file", 6)) from_file = true;
        if (!strcmp(a, "-F") || !strcmp(a, "-v") || !strcmp(a, "-f")) i++; /* separate value */
    }
    if (!program) return;
    const char *why = NULL, *rule = "plans may only read";
    if (strstr(program, "@load") || strstr(program, "@include")) why = "loads code (@load/@include)";
    /* Scan outside string and regex literals: split($0, a, "|") and /a|b/ are fine, and so is
     * "system" in a string; the word system is a call however it is spaced ("system\t(").
     * In a print or printf statement, a '>' outside parentheses redirects ("print $1 > $2"
     * writes a file named by the second field); elsewhere it compares ($3 > 10). */
    char prev = '(';
    int depth = 0, print_depth = -1; /* -1: not in a print statement */
    for (const char *p = program; !why && *p; p++) {
        char ch = *p;
        if (ch == '\\' && p[1]) {
            p++;
            continue;
        }
        if ((isalpha((unsigned char)ch) || ch == '_') && (p == program || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            const size_t len = word_len(p);
            if (word_is(p, len, "print") || word_is(p, len, "printf")) print_depth = depth;
            if (word_is(p, len, "system")) why = "runs a command (system())";
            if (word_is(p, len, "ENVIRON")) {
                why = "reads the environment (ENVIRON)";
                rule = ENV_RULE;
            }
            p += len - 1;
            prev = *p;
            continue;
        }
        if (ch == '(') depth++;
        else if (ch == ')' && depth > 0) depth--;
        else if (ch == ';' || ch == '{' || ch == '}' || ch == '\n') print_depth = -1;
        if (ch == '"' || (ch == '/' && strchr("(,~!&|{};=?:\n", prev))) {
            for (p++; *p && *p != ch; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) break;
            prev = 'x';
            continue;
        }
        if (ch == '|' && p[1] != '|' && prev != '|') {
            why = "pipes to or from a command ('|')";
        } else if (ch == '>') {
            const char *q = p + 1;
            if (*q == '>') q++;
            while (*q == ' ' || *q == '\t') q++;
            if (*q == '"' || (print_depth == depth && p[1] != '=')) why = "redirects output to a file ('>')";
        }
        if (ch != ' ' && ch != '\t') prev = ch;
    }
    if (why) problem(c, num, "awk program %s; %s", why, rule);
}

/* Does a jq filter use the environment ($ENV, or the builtin env)? String
 * literals are skipped except their \(...) interpolations, and so are comments;
 * ".env" (a field), "{env: 1}" and "{env}" (keys) are not the builtin. */
static bool jq_reads_env(const char *filter) {
    enum { MAX_NEST = 64 };
    char open[MAX_NEST]; /* the brackets open here; 'i' = an interpolation, closed by ')' */
    int n_open = 0;
    bool in_string = false;
    char prev = ' '; /* last character outside strings that is not blank */
    for (const char *p = filter; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1] == '(') {
                if (n_open == MAX_NEST) return true; /* too deep to read: refuse */
                open[n_open++] = 'i';
                in_string = false;
                prev = '(';
                p++;
            } else if (*p == '\\' && p[1]) {
                p++;
            } else if (*p == '"') {
                in_string = false;
                prev = '"';
            }
            continue;
        }
        char ch = *p;
        if (ch == '"') {
            in_string = true;
        } else if (ch == '#') {
            while (p[1] && p[1] != '\n') p++;
        } else if (ch == '(' || ch == '[' || ch == '{') {
            if (n_open == MAX_NEST) return true;
            open[n_open++] = ch;
        } else if (ch == ')' || ch == ']' || ch == '}') {
            if (n_open > 0 && open[--n_open] == 'i') in_string = true;
        } else if (isalpha((unsigned char)ch) || ch == '_') {
            const size_t len = word_len(p);
            const char *next = p + len;
            while (*next == ' ' || *next == '\t' || *next == '\n') next++;
            bool object_key = *next == ':' || (n_open > 0 && open[n_open - 1] == '{' && strchr("{,", prev) &&
                                               (*next == ',' || *next == '}'));
            if (prev == '$' && word_is(p, len, "ENV")) return true;
            if (prev != '$' && prev != '.' && word_is(p, len, "env") && !object_key) return true;
            p += len - 1;
            ch = 'x';
        }
        if (ch != ' ' && ch != '\t' && ch != '\n') prev = ch;
    }
    return false;
}

/* The filter is the first operand (unless -f names a file, which is not read). */
static void check_jq(collector *c, int num, char *const *args, size_t n) {
    static const char *const two_values[] = {"--arg", "--argjson", "--slurpfile", "--rawfile", NULL};
    static const char *const one_value[] = {"--indent", "-L", NULL};
    for (size_t i = 0; i < n && args[i]; i++) {
        const char *a = args[i];
        if (!strcmp(a, "-f") || long_opt(a, "from-file")) return;
        if (is_any(a, two_values)) {
            i += 2;
            continue;
        }
        if (is_any(a, one_value)) {
            i++;
            continue;
        }
        if (!strcmp(a, "--")) {
            a = i + 1 < n ? args[i + 1] : NULL;
        } else if (a[0] == '-' && a[1]) {
            continue;
        }
        if (a && jq_reads_env(a))
            problem(c, num, "jq filter reads the environment ($ENV or env); %s", ENV_RULE);
        return;
    }
}

static void check_xargs(collector *c, int num, char *const *args, size_t n, const agx_registry *reg,
                        int depth) {
    static const char *const with_value[] = {"-I", "-n", "-L", "-P", "-s", "-d", "-E", "-a", NULL};
    size_t i = 0;
    for (; i < n; i++) {
        const char *a = args[i];
        if (!a) return;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || !a[1]) break;
        if (is_any(a, with_value)) i++;
    }
    if (i >= n || !args[i]) return; /* no command: xargs runs echo */
    const char *cmd = args[i];
    char shown[80];
    snprintf(shown, sizeof shown, "%.60s", cmd);
    if (!agx_registry_find(reg, cmd)) {
        const char *near = agx_registry_closest(reg, cmd);
        if (near)
            problem(c, num, "xargs runs '%s', which is not in the tool registry (did you mean '%s'?)",
                    shown, near);
        else
            problem(c, num, "xargs runs '%s', which is not in the tool registry", shown);
        return;
    }
    if (depth < 2) check_tool_args(c, num, cmd, args + i + 1, n - i - 1, reg, depth + 1);
}

static void check_file_tool(collector *c, int num, char *const *args, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (args[i] && (long_opt(args[i], "compile") || cluster_has(args[i], 'C', "fFmeP")))
            problem(c, num, "file '%s' writes a compiled magic file; plans may only read", args[i]);
}

static void check_shuf(collector *c, int num, char *const *args, size_t n) {
    check_output_option(c, num, "shuf", "in", args, n);
}

typedef void (*args_check)(collector *c, int num, char *const *args, size_t n);

/* The built-in tools whose arguments can write files or run programs. */
static const struct {
    const char *id;
    args_check check;
} arg_checks[] = {
    {"find", check_find}, {"sed", check_sed},  {"sort", check_sort},      {"uniq", check_uniq},
    {"awk", check_awk},   {"shuf", check_shuf}, {"file", check_file_tool}, {"jq", check_jq},
};

static void check_tool_args(collector *c, int num, const char *id, char *const *args, size_t n,
                            const agx_registry *reg, int depth) {
    if (!args) return;
    if (!strcmp(id, "xargs")) { /* the command it runs is checked in turn */
        check_xargs(c, num, args, n, reg, depth);
        return;
    }
    for (size_t i = 0; i < sizeof arg_checks / sizeof arg_checks[0]; i++)
        if (!strcmp(id, arg_checks[i].id)) arg_checks[i].check(c, num, args, n);
}

static void check_task(collector *c, const agx_plan *plan, size_t i, const agx_registry *reg,
                       const agx_plan_limits *lim) {
    const agx_task *t = &plan->tasks[i];
    int num = (int)i + 1;
    char shown[128];
    if (t->task_number != num)
        problem(c, num, "numbered %d, expected %d (tasks must be numbered 1..n in order)",
                t->task_number, num);
    if (!t->command || !*t->command) {
        problem(c, num, "command is empty");
    } else {
        size_t n = strlen(t->command);
        display(t->command, shown, sizeof shown);
        if (n > lim->max_command_len)
            problem(c, num, "command '%s' is %zu bytes; the limit is %zu", shown, n,
                    lim->max_command_len);
        if (!agx_registry_find(reg, t->command)) {
            const char *near = agx_registry_closest(reg, t->command);
            if (near)
                problem(c, num, "unknown command '%s' (did you mean '%s'?)", shown, near);
            else
                problem(c, num, "unknown command '%s' (not in the tool registry; see `agx tools`)",
                        shown);
        }
    }
    if (t->n_args > lim->max_args)
        problem(c, num, "%zu arguments; the limit is %zu", t->n_args, lim->max_args);
    for (size_t a = 0; a < t->n_args; a++) {
        const char *s = t->args ? t->args[a] : NULL;
        if (!s) {
            problem(c, num, "args[%zu] is missing; args must be strings", a);
            continue;
        }
        size_t n = strlen(s);
        if (n > lim->max_arg_len)
            problem(c, num, "args[%zu] is %zu bytes; the limit is %zu", a, n, lim->max_arg_len);
        if (!agx_plan_utf8_valid(s, n))
            problem(c, num, "args[%zu] is not valid UTF-8", a);
        else if (bad_control(s))
            problem(c, num, "args[%zu] contains control characters", a);
        if (names_proc_environ(s))
            problem(c, num, "args[%zu] names a process environment (/proc/.../environ); " ENV_RULE, a);
    }
    if (t->command && agx_registry_find(reg, t->command))
        check_tool_args(c, num, t->command, t->args, t->n_args, reg, 0);
    if (t->timeout_secs <= 0 || t->timeout_secs > lim->max_timeout_secs)
        problem(c, num, "timeout_secs %d is out of range 1..%d", t->timeout_secs,
                lim->max_timeout_secs);
    if (t->input_from_task != 0 && (t->input_from_task < 1 || t->input_from_task >= num)) {
        if (num == 1)
            problem(c, num, "input_from_task %d: the first task cannot take input from another task",
                    t->input_from_task);
        else
            problem(c, num, "input_from_task %d must name an earlier task (1..%d)",
                    t->input_from_task, num - 1);
    }
}

agx_status agx_plan_validate(const agx_plan *plan, const agx_registry *registry,
                             const agx_plan_limits *limits, agx_plan_problems *problems,
                             agx_error *err) {
    if (problems) {
        problems->items = NULL;
        problems->count = 0;
    }
    agx_plan_limits lim = limits ? *limits : agx_plan_limits_default();
    collector c = {0};
    if (plan->n_tasks == 0) problem(&c, 0, "the plan has no tasks");
    if (plan->n_tasks > lim.max_tasks)
        problem(&c, 0, "the plan has %zu tasks; the limit is %zu", plan->n_tasks, lim.max_tasks);
    check_text(&c, "plan_id", plan->plan_id, lim.max_arg_len);
    check_text(&c, "plan_description", plan->plan_description, lim.max_arg_len);
    /* Check every task even past the limit, so one report lists everything;
     * but never spend unbounded effort on a hostile plan. */
    size_t n = plan->n_tasks < 10000 ? plan->n_tasks : 10000;
    for (size_t i = 0; i < n; i++) check_task(&c, plan, i, registry, &lim);
    if (c.oom) {
        agx_plan_problems tmp = {c.items, c.count};
        agx_plan_problems_free(&tmp);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory validating a plan");
    }
    agx_status st = AGX_OK;
    if (c.count) {
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        for (size_t i = 0; i < c.count; i++) {
            if (i) agx_strbuf_puts(&sb, "; ");
            agx_strbuf_puts(&sb, c.items[i].message);
        }
        st = agx_error_set(err, AGX_ERR_VALIDATION, "invalid plan (%zu problem%s): %s", c.count,
                           c.count == 1 ? "" : "s", sb.data ? sb.data : "");
        if (err && sb.len + 40 >= sizeof err->message) {
            /* Say it was cut rather than end mid-word silently. */
            memcpy(err->message + sizeof err->message - 5, " ...", 5);
        }
        agx_strbuf_free(&sb);
    }
    if (problems) {
        problems->items = c.items;
        problems->count = c.count;
    } else {
        agx_plan_problems tmp = {c.items, c.count};
        agx_plan_problems_free(&tmp);
    }
    return st;
}

/* ------------------------------------------------------------ normalize -- */

/* Filters that keep line order and content, so sortedness survives them. */
static bool order_preserving(const char *cmd) {
    return !strcmp(cmd, "grep") || !strcmp(cmd, "head") || !strcmp(cmd, "tail");
}

/* Is task idx (0-based) fed, through order-preserving filters, by a sort? */
static bool fed_by_sort(const agx_plan *plan, size_t idx) {
    int ref = plan->tasks[idx].input_from_task;
    for (size_t hops = 0; hops < plan->n_tasks; hops++) {
        if (ref < 1 || (size_t)ref > idx) return false;
        const agx_task *src = &plan->tasks[ref - 1];
        if (!src->command) return false;
        if (!strcmp(src->command, "sort")) return true;
        if (!order_preserving(src->command)) return false;
        idx = (size_t)ref - 1;
        ref = src->input_from_task;
    }
    return false;
}

/* uniq's input file (its first operand) moves to the sort that now reads it. */
static agx_status move_input_operand(agx_task *uniq, agx_task *sort, agx_error *err) {
    for (size_t a = 0; a < uniq->n_args; a++) {
        const char *s = uniq->args[a];
        if (!s) return AGX_OK;
        if (!strcmp(s, "-f") || !strcmp(s, "-s") || !strcmp(s, "-w")) {
            a++; /* option value */
            continue;
        }
        if (!strcmp(s, "--")) {
            if (a + 1 < uniq->n_args) a++;
            else return AGX_OK;
            s = uniq->args[a];
        } else if (s[0] == '-' && s[1]) {
            continue;
        }
        char **sa = realloc(sort->args, (sort->n_args + 1) * sizeof *sa);
        if (!sa) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory normalizing a plan");
        sort->args = sa;
        sort->args[sort->n_args++] = uniq->args[a];
        memmove(&uniq->args[a], &uniq->args[a + 1], (uniq->n_args - a - 1) * sizeof *uniq->args);
        uniq->n_args--;
        return AGX_OK;
    }
    return AGX_OK;
}

agx_status agx_plan_normalize(agx_plan *plan, agx_error *err) {
    for (size_t i = 0; i < plan->n_tasks; i++) {
        agx_task *t = &plan->tasks[i];
        if (!t->command || strcmp(t->command, "uniq") != 0 || fed_by_sort(plan, i)) continue;
        int from = t->input_from_task;
        /* An invalid reference stays the validator's to report; do not rewire it. */
        if (from < 0 || (size_t)from > i) continue;
        agx_status st = agx_plan_insert_task(plan, i, "sort", from, err);
        if (st != AGX_OK) return st;
        agx_task *sort = &plan->tasks[i];
        agx_task *uniq = &plan->tasks[i + 1];
        uniq->input_from_task = sort->task_number;
        sort->timeout_secs = uniq->timeout_secs;
        if (from == 0 && (st = move_input_operand(uniq, sort, err)) != AGX_OK) return st;
        i++; /* skip the uniq just handled */
    }
    return AGX_OK;
}
