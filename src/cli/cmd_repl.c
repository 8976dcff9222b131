/* cmd_repl.c — 'agx repl' (and 'agx' alone on a terminal): the interactive
 * planning session. Line editing and history through libedit, one warm Echo
 * backend for the whole session (a Delta backend made on the first validate),
 * Ctrl-C cancelling the generation or the line, progress (spinner, streamed
 * model output) only on a terminal, and the session state persisted through
 * agx_session (include/agx/session.h) after every change. */
#include <errno.h>
#include <histedit.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "agx/buffer.h"
#include "agx/native.h"
#include "agx/session.h"
#include "cli.h"
#include "cli_planner.h"

/* Longest line read from a pipe (bytes). */
#define REPL_MAX_LINE 65536

/* The only process-wide state: what the SIGINT handler may touch. */
static volatile sig_atomic_t repl_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    repl_interrupted = 1;
}

typedef struct repl {
    agx_planner_config cfg;
    agx_registry reg;
    agx_session session;
    agx_backend *echo;
    agx_backend *delta;
    bool delta_tried;
    bool tty_in;      /* stdin is a terminal: libedit */
    bool tty_err;     /* progress goes to stderr, only when it is a terminal */
    EditLine *el;
    History *hist;
    char *hist_path;
    const char *prompt_text; /* NULL: the main prompt */
    char prompt_buf[64];
    long test_delay_ms; /* AGX_REPL_TEST_DELAY_MS: tests only, see docs/repl.md */
    int editor_env;     /* AGX_REPL_EDITOR for this launch (-1: unset); not persisted */
    /* progress */
    pthread_t spin_thread;
    bool spinning;
    pthread_mutex_t mu;
    bool spin_stop;
    bool spin_visible;
    bool streamed;     /* model text was shown: the spinner stays off */
    const char *spin_label;
    int64_t spin_t0;
} repl;

/* ------------------------------------------------------------ output -- */

static void say_error(const agx_error *err) {
    fprintf(stderr, "error: %s\n", err->message);
}

static void print_problems(const agx_plan_problems *pr, const agx_error *err, const char *what) {
    if (!pr || pr->count == 0) {
        say_error(err);
        return;
    }
    fprintf(stderr, "error: %s has %zu problem%s:\n", what, pr->count, pr->count == 1 ? "" : "s");
    for (size_t i = 0; i < pr->count; i++) fprintf(stderr, "  - %s\n", pr->items[i].message);
}

/* ---------------------------------------------------------- progress -- */

static void *spin_main(void *arg) {
    repl *r = arg;
    static const char frames[] = "|/-\\";
    for (unsigned i = 0;; i++) {
        pthread_mutex_lock(&r->mu);
        if (r->spin_stop) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (!r->streamed) {
            double s = (double)(agx_time_ms() - r->spin_t0) / 1000.0;
            fprintf(stderr, "\r\033[K%c %s %.1fs (Ctrl-C cancels)", frames[i % 4], r->spin_label, s);
            fflush(stderr);
            r->spin_visible = true;
        }
        pthread_mutex_unlock(&r->mu);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void progress_start(repl *r, const char *label) {
    r->streamed = false;
    r->spin_visible = false;
    r->spin_stop = false;
    r->spin_label = label;
    r->spin_t0 = agx_time_ms();
    if (!r->tty_err) return;
    /* the spinner thread must not take the SIGINT meant for the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r->spinning = pthread_create(&r->spin_thread, NULL, spin_main, r) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void progress_stop(repl *r) {
    if (r->spinning) {
        pthread_mutex_lock(&r->mu);
        r->spin_stop = true;
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->spin_thread, NULL);
        r->spinning = false;
    }
    if (r->tty_err) {
        if (r->spin_visible && !r->streamed) fputs("\r\033[K", stderr);
        if (r->streamed) fputs("\033[0m\n", stderr);
        fflush(stderr);
    }
}

/* Streamed model output (native backend): shown dimmed on stderr, control
 * characters (C0, DEL, C1) replaced so a model cannot drive the terminal;
 * pieces are whole UTF-8 characters, so a C1 pair is never split. */
static void on_stream(void *user, const char *text, size_t len) {
    repl *r = user;
    pthread_mutex_lock(&r->mu);
    if (!r->streamed) {
        if (r->spin_visible) fputs("\r\033[K", stderr);
        fputs("\033[2m", stderr);
        r->streamed = true;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] >= 0x80 &&
            (unsigned char)text[i + 1] <= 0x9f) { /* C1 controls (U+0080..U+009F, e.g. CSI) */
            fputc(' ', stderr);
            i++;
            continue;
        }
        fputc(c < 0x20 || c == 0x7f ? (c == '\n' ? '\n' : ' ') : c, stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&r->mu);
}

/* ---------------------------------------------------------- line input -- */

static char *prompt_fn(EditLine *el) {
    repl *r = NULL;
    el_get(el, EL_CLIENTDATA, &r);
    if (r->prompt_text) return (char *)r->prompt_text;
    snprintf(r->prompt_buf, sizeof r->prompt_buf, "agx[%zu]> ", r->session.plan.n_tasks);
    return r->prompt_buf;
}

/* Reads one character for libedit; a SIGINT while waiting ends the line read
 * (el_gets returns NULL with the interrupted flag set) instead of being retried. */
static int getc_fn(EditLine *el, wchar_t *wc) {
    (void)el;
    mbstate_t mbs;
    memset(&mbs, 0, sizeof mbs);
    for (;;) {
        /* poll with a short timeout: a SIGINT may land between the check and
         * the read, or on another thread (the engine's workers), and still
         * has to end the line promptly */
        if (repl_interrupted) return -1;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int pr = poll(&pfd, 1, 100);
        if (pr == 0 || (pr < 0 && errno == EINTR)) continue;
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n == 0) return 0;
        if (n < 0) {
            if (errno == EINTR && !repl_interrupted) continue;
            return -1;
        }
        size_t k = mbrtowc(wc, &c, 1, &mbs);
        if (k == (size_t)-2) continue;                  /* more bytes of this character */
        if (k == (size_t)-1) {                           /* invalid byte: pass it through */
            memset(&mbs, 0, sizeof mbs);
            *wc = (wchar_t)(unsigned char)c;
        }
        return 1;
    }
}

typedef enum { LINE_OK, LINE_INTERRUPTED, LINE_EOF } line_status;

/* Reads a line (without its newline) into *out (malloc'ed). */
static line_status read_line(repl *r, const char *prompt, char **out) {
    *out = NULL;
    if (!r->el) {
        if (prompt && r->tty_err) fputs(prompt, stderr);
        /* bounded: a piped "line" of gigabytes is cut, not slurped */
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        int c;
        bool any = false, cut = false;
        while ((c = getchar()) != EOF) {
            any = true;
            if (c == '\n') break;
            if (sb.len < REPL_MAX_LINE)
                agx_strbuf_putc(&sb, (char)c);
            else
                cut = true;
        }
        if (!any) {
            agx_strbuf_free(&sb);
            return LINE_EOF;
        }
        if (cut) fprintf(stderr, "warning: the line was cut to %d bytes\n", REPL_MAX_LINE);
        while (sb.len > 0 && sb.data[sb.len - 1] == '\r') sb.data[--sb.len] = '\0';
        *out = agx_strbuf_take(&sb);
        return *out ? LINE_OK : LINE_EOF;
    }
    r->prompt_text = prompt;
    repl_interrupted = 0;
    int count = 0;
    const char *line = el_gets(r->el, &count);
    r->prompt_text = NULL;
    if (repl_interrupted) {
        repl_interrupted = 0;
        el_reset(r->el);
        /* drop what was typed: the next el_gets starts from an empty line */
        const LineInfo *li = el_line(r->el);
        if (li && li->lastchar > li->buffer) {
            el_cursor(r->el, (int)(li->lastchar - li->cursor));
            el_deletestr(r->el, (int)(li->lastchar - li->buffer));
        }
        fputs("^C\n", stdout);
        fflush(stdout);
        return LINE_INTERRUPTED;
    }
    if (!line || count <= 0) return LINE_EOF;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    *out = agx_strndup(line, n);
    return *out ? LINE_OK : LINE_EOF;
}

static agx_editor_mode editor_mode(const repl *r) {
    return r->editor_env >= 0 ? (agx_editor_mode)r->editor_env : r->session.editor;
}

static const char *editor_name(const repl *r) {
    return editor_mode(r) == AGX_EDITOR_VI ? "vi" : "emacs";
}

static void apply_editor(repl *r) {
    if (r->el) el_set(r->el, EL_EDITOR, editor_name(r));
}

static void history_add(repl *r, const char *line) {
    if (!r->hist || !*line) return;
    HistEvent ev;
    history(r->hist, &ev, H_ENTER, line);
    if (r->hist_path && history(r->hist, &ev, H_SAVE, r->hist_path) >= 0)
        chmod(r->hist_path, 0600); /* instructions may name private paths */
}

static void editor_open(repl *r) {
    r->el = el_init("agx", stdin, stdout, stderr);
    if (!r->el) return;
    r->hist = history_init();
    if (r->hist) {
        HistEvent ev;
        history(r->hist, &ev, H_SETSIZE, 1000);
        history(r->hist, &ev, H_SETUNIQUE, 1);
        char *home = agx_home_dir();
        agx_error err;
        agx_error_clear(&err);
        if (home && agx_mkdirs(home, &err) == AGX_OK) {
            r->hist_path = agx_sprintf("%s/history", home);
            if (r->hist_path && agx_file_exists(r->hist_path))
                history(r->hist, &ev, H_LOAD, r->hist_path);
        }
        free(home);
        el_set(r->el, EL_HIST, history, r->hist);
    }
    el_set(r->el, EL_CLIENTDATA, r);
    el_set(r->el, EL_PROMPT, prompt_fn);
    el_set(r->el, EL_GETCFN, getc_fn);
    apply_editor(r);
    el_source(r->el, NULL); /* ~/.editrc, as every libedit program */
}

static void editor_close(repl *r) {
    if (r->el) el_end(r->el);
    if (r->hist) history_end(r->hist);
    free(r->hist_path);
    r->el = NULL;
    r->hist = NULL;
}

/* ------------------------------------------------------------ backend -- */

static bool interrupted_now(void) { return repl_interrupted != 0; }

/* Tests only: a slow backend without a slow model. Sleeps in 10 ms slices and
 * stops at Ctrl-C like the native generation loop. */
static bool test_delay(repl *r) {
    for (long t = 0; t < r->test_delay_ms && !interrupted_now(); t += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return !interrupted_now();
}

/* Loads the model of a native backend now, with a spinner, so that the first
 * add only generates. */
static agx_status warm_up(repl *r, agx_backend *b, agx_error *err) {
    if (!agx_backend_is_native(b)) return AGX_OK;
    progress_start(r, "loading the model");
    int64_t t0 = agx_time_ms();
    agx_status st = agx_backend_native_engine(b, err) ? AGX_OK : err->code;
    progress_stop(r);
    if (st == AGX_OK)
        fprintf(stderr, "model %s loaded in %lld ms\n", agx_backend_model_name(b),
                (long long)(agx_time_ms() - t0));
    return st;
}

static void print_stats(agx_backend *b, const agx_generated_plan *gp, int64_t wall_ms) {
    const agx_gen_stats *s = agx_backend_native_last_stats(b);
    if (s)
        printf("time to first token %.0f ms, %.1f tokens/s, %lld tokens; prompt %lld tokens "
               "(%lld reused from the cache); total %lld ms\n",
               s->ttft_ms, s->tokens_per_s, (long long)s->generated_tokens,
               (long long)s->prompt_tokens, (long long)s->reused_tokens, (long long)wall_ms);
    else if (gp->meta.tokens > 0 && wall_ms > 0) /* remote servers report their token count */
        printf("latency %lld ms, %lld tokens (%.1f tokens/s overall) (backend %s%s%s)\n",
               (long long)wall_ms, (long long)gp->meta.tokens,
               (double)gp->meta.tokens * 1000.0 / (double)wall_ms, agx_backend_type(b),
               gp->meta.model ? ", model " : "", gp->meta.model ? gp->meta.model : "");
    else
        printf("latency %lld ms (backend %s%s%s)\n", (long long)wall_ms, agx_backend_type(b),
               gp->meta.model ? ", model " : "", gp->meta.model ? gp->meta.model : "");
}

/* Runs generate_plan with cancel, progress and streaming. Returns AGX_OK,
 * an error, or AGX_ERR_INFERENCE with *cancelled set. */
static agx_status generate(repl *r, agx_backend *b, const char *instruction,
                           const agx_plan_context *ctx, agx_generated_plan *gp, bool *cancelled,
                           int64_t *wall_ms, agx_error *err) {
    *cancelled = false;
    repl_interrupted = 0;
    agx_plan_context c = *ctx;
    c.cancel = &repl_interrupted;
    bool stream = r->tty_err && r->session.stream && agx_backend_is_native(b);
    agx_backend_native_set_stream(b, stream ? on_stream : NULL, r);
    progress_start(r, "generating");
    int64_t t0 = agx_time_ms();
    agx_status st;
    agx_generated_plan_init(gp);
    if (r->test_delay_ms > 0 && !test_delay(r))
        st = agx_error_set(err, AGX_ERR_INFERENCE, "generation cancelled");
    else
        st = agx_backend_generate_plan(b, instruction, &c, gp, err);
    *wall_ms = agx_time_ms() - t0;
    progress_stop(r);
    agx_backend_native_set_stream(b, NULL, NULL);
    if (interrupted_now()) {
        *cancelled = true;
        repl_interrupted = 0;
        agx_generated_plan_free(gp);
        agx_generated_plan_init(gp);
        if (st == AGX_OK) st = agx_error_set(err, AGX_ERR_INFERENCE, "generation cancelled");
    }
    return st;
}

/* ----------------------------------------------------------- commands -- */

/* Strips one pair of matching quotes around the whole text. */
static char *unquote_all(const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0] &&
        !memchr(s + 1, s[0], n - 2))
        return agx_strndup(s + 1, n - 2);
    return agx_strndup(s, n);
}

static bool parse_index(const char *word, size_t *n) {
    if (!word || !*word) return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(word, &end, 10);
    if (errno || *end || word[0] == '-' || v == 0 || v > 100000) return false;
    *n = (size_t)v;
    return true;
}

static void cmd_add(repl *r, const char *rest) {
    char *instruction = unquote_all(rest);
    if (!instruction || !*instruction) {
        fprintf(stderr, "usage: add \"<instruction>\"  (e.g. add \"count lines in every .c file\")\n");
        free(instruction);
        return;
    }
    agx_error err;
    agx_error_clear(&err);
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &r->reg);
    ctx.existing = r->session.plan.n_tasks ? &r->session.plan : NULL;
    agx_generated_plan gp;
    bool cancelled = false;
    int64_t wall = 0;
    agx_plan_problems pr = {0};
    agx_status st = generate(r, r->echo, instruction, &ctx, &gp, &cancelled, &wall, &err);
    if (cancelled) {
        printf("generation cancelled; the plan is unchanged\n");
        goto out;
    }
    if (st != AGX_OK) {
        say_error(&err);
        goto out;
    }
    agx_plan_limits lim = agx_plan_limits_default();
    if (agx_plan_validate(&gp.plan, &r->reg, &lim, &pr, &err) != AGX_OK) {
        print_problems(&pr, &err, "the generated plan");
        goto out;
    }
    agx_plan_problems_free(&pr);
    memset(&pr, 0, sizeof pr);
    if (agx_plan_normalize(&gp.plan, &err) != AGX_OK) {
        say_error(&err);
        goto out;
    }
    int first = 0;
    if (agx_session_append(&r->session, &gp.plan, instruction, &r->reg, &first, &pr, &err) !=
        AGX_OK) {
        print_problems(&pr, &err, "the combined plan");
        if (pr.count) fprintf(stderr, "the plan is unchanged\n");
        goto out;
    }
    agx_cli_print_plan(stdout, &r->session.plan, (size_t)(first - 1));
    printf("added %zu task%s; the plan has %zu\n", gp.plan.n_tasks,
           gp.plan.n_tasks == 1 ? "" : "s", r->session.plan.n_tasks);
    print_stats(r->echo, &gp, wall);
out:
    agx_plan_problems_free(&pr);
    agx_generated_plan_free(&gp);
    free(instruction);
}

static void cmd_preview(repl *r, const char *rest) {
    char *arg = unquote_all(rest);
    if (arg && !strcmp(arg, "json")) {
        char *json = agx_plan_to_json(&r->session.plan, AGX_JSON_PRETTY);
        if (json) printf("%s\n", json);
        free(json);
    } else if (r->session.plan.n_tasks == 0) {
        printf("the plan is empty; add steps with: add \"<instruction>\"\n");
    } else {
        agx_cli_print_plan(stdout, &r->session.plan, 0);
    }
    free(arg);
}

static void cmd_edit(repl *r, const char *rest) {
    agx_error err;
    agx_error_clear(&err);
    size_t n = 0;
    const char *p = rest;
    while (*p == ' ' || *p == '\t') p++;
    const char *num_end = p;
    while (*num_end && *num_end != ' ' && *num_end != '\t') num_end++;
    char *num = agx_strndup(p, (size_t)(num_end - p));
    if (!num || !parse_index(num, &n)) {
        fprintf(stderr, "usage: edit <n> [command args...]  (e.g. edit 2 grep -n TODO)\n");
        free(num);
        return;
    }
    free(num);
    if (n < 1 || n > r->session.plan.n_tasks) {
        agx_error_set(&err, AGX_ERR_USAGE, "there is no task %zu (the plan has %zu)", n,
                      r->session.plan.n_tasks);
        say_error(&err);
        return;
    }
    while (*num_end == ' ' || *num_end == '\t') num_end++;
    char *line = NULL;
    if (*num_end) {
        line = agx_strdup(num_end);
    } else {
        /* ask for the new line, starting from the current one */
        char *cur = agx_session_task_line(&r->session, n);
        if (r->el && cur) el_push(r->el, cur);
        else if (cur) printf("task %zu: %s\n", n, cur);
        free(cur);
        char prompt[48];
        snprintf(prompt, sizeof prompt, "task %zu> ", n);
        if (read_line(r, prompt, &line) != LINE_OK) {
            printf("edit abandoned; task %zu is unchanged\n", n);
            free(line);
            return;
        }
    }
    agx_plan_problems pr = {0};
    if (agx_session_edit(&r->session, n, line, &r->reg, &pr, &err) != AGX_OK) {
        print_problems(&pr, &err, "the edited plan");
        if (pr.count) fprintf(stderr, "task %zu is unchanged\n", n);
    } else {
        agx_cli_print_plan(stdout, &r->session.plan, n - 1);
        printf("task %zu updated\n", n);
    }
    agx_plan_problems_free(&pr);
    free(line);
}

static void cmd_remove(repl *r, const char *rest) {
    char *arg = unquote_all(rest);
    size_t n = 0;
    if (!arg || !parse_index(arg, &n)) {
        fprintf(stderr, "usage: remove <n>\n");
        free(arg);
        return;
    }
    free(arg);
    agx_error err;
    agx_error_clear(&err);
    if (agx_session_remove(&r->session, n, &err) != AGX_OK)
        say_error(&err);
    else
        printf("removed task %zu; the plan has %zu\n", n, r->session.plan.n_tasks);
}

static void cmd_clear(repl *r, const char *rest) {
    (void)rest;
    agx_error err;
    agx_error_clear(&err);
    if (agx_session_clear(&r->session, &err) != AGX_OK)
        say_error(&err);
    else
        printf("the plan is empty\n");
}

/* Task i of p as one line for the diff: command, args, input. */
static char *diff_line(const agx_plan *p, size_t i) {
    agx_session tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.plan = *p;
    char *line = agx_session_task_line(&tmp, i + 1);
    const agx_task *t = &p->tasks[i];
    char *full = t->input_from_task > 0 ? agx_sprintf("%s  < task %d", line ? line : "",
                                                      t->input_from_task)
                                        : agx_strdup(line ? line : "");
    free(line);
    return full;
}

/* Prints a line diff (LCS) of the two plans' tasks; returns whether they differ. */
static bool print_task_diff(const agx_plan *a, const agx_plan *b) {
    size_t na = a->n_tasks, nb = b->n_tasks;
    char **la = calloc(na + 1, sizeof *la), **lb = calloc(nb + 1, sizeof *lb);
    size_t *lcs = calloc((na + 1) * (nb + 1), sizeof *lcs);
    bool differ = false;
    if (!la || !lb || !lcs) goto out;
    for (size_t i = 0; i < na; i++) la[i] = diff_line(a, i);
    for (size_t j = 0; j < nb; j++) lb[j] = diff_line(b, j);
#define L(i, j) lcs[(i) * (nb + 1) + (j)]
    for (size_t i = na; i-- > 0;)
        for (size_t j = nb; j-- > 0;)
            L(i, j) = la[i] && lb[j] && !strcmp(la[i], lb[j])
                          ? L(i + 1, j + 1) + 1
                          : (L(i + 1, j) > L(i, j + 1) ? L(i + 1, j) : L(i, j + 1));
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        if (i < na && j < nb && la[i] && lb[j] && !strcmp(la[i], lb[j])) {
            printf("  %zu: %s\n", j + 1, lb[j]);
            i++, j++;
        } else if (j < nb && (i == na || L(i, j + 1) >= L(i + 1, j))) {
            printf("+ %zu: %s\n", j + 1, lb[j] ? lb[j] : "?");
            differ = true;
            j++;
        } else {
            printf("- %zu: %s\n", i + 1, la[i] ? la[i] : "?");
            differ = true;
            i++;
        }
    }
#undef L
out:
    for (size_t k = 0; la && k < na; k++) free(la[k]);
    for (size_t k = 0; lb && k < nb; k++) free(lb[k]);
    free(la);
    free(lb);
    free(lcs);
    return differ;
}

static void cmd_validate(repl *r, const char *rest) {
    (void)rest;
    agx_error err;
    agx_error_clear(&err);
    agx_plan_problems pr = {0};
    agx_plan_limits lim = agx_plan_limits_default();
    bool valid = agx_plan_validate(&r->session.plan, &r->reg, &lim, &pr, &err) == AGX_OK;
    if (!valid) print_problems(&pr, &err, "the plan");
    agx_plan_problems_free(&pr);
    if (r->session.plan.n_tasks == 0) {
        printf("the plan is empty; nothing for Delta to check\n");
        return;
    }
    if (r->cfg.backend == AGX_BACKEND_RULES) {
        if (valid)
            printf("plan is valid (%zu task%s); the rules backend has no Delta model, so "
                   "validation is all it does\n",
                   r->session.plan.n_tasks, r->session.plan.n_tasks == 1 ? "" : "s");
        return;
    }
    if (!r->delta) {
        if (r->delta_tried) {
            printf("no Delta review: its backend could not be set up (see the error above); "
                   "the plan was only validated\n");
            return;
        }
        r->delta_tried = true;
        /* No Delta model configured: Delta reviews with the Echo model's file
         * (its own prompt), rather than refusing to review at all. */
        agx_planner_config dcfg = r->cfg;
        if (r->cfg.backend == AGX_BACKEND_NATIVE &&
            !agx_planner_model_for_role(&r->cfg, AGX_ROLE_DELTA) &&
            agx_planner_model_for_role(&r->cfg, AGX_ROLE_ECHO)) {
            dcfg.delta_model = (char *)agx_planner_model_for_role(&r->cfg, AGX_ROLE_ECHO);
            printf("no Delta model configured (AGX_DELTA_MODEL); Delta uses the Echo model file\n");
        }
        if (agx_planner_create_backend(&dcfg, AGX_ROLE_DELTA, &r->delta, &err) != AGX_OK) {
            say_error(&err);
            r->delta = NULL;
            return;
        }
        /* Same file as Echo: one model in memory (one weight upload on a GPU),
         * two contexts. */
        bool shared = false;
        if (agx_backend_native_share_model(r->delta, r->echo, &shared, &err) != AGX_OK) {
            say_error(&err);
            agx_backend_destroy(r->delta);
            r->delta = NULL;
            return;
        }
        if (shared) printf("Delta shares the Echo model loaded in memory (its own context)\n");
        if (warm_up(r, r->delta, &err) != AGX_OK) {
            say_error(&err);
            agx_backend_destroy(r->delta);
            r->delta = NULL;
            return;
        }
    }
    char *request = agx_session_request(&r->session);
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &r->reg);
    ctx.existing = &r->session.plan;
    agx_generated_plan gp;
    bool cancelled = false;
    int64_t wall = 0;
    agx_status st = generate(r, r->delta, request ? request : "check this plan and fix what is wrong",
                             &ctx, &gp, &cancelled, &wall, &err);
    free(request);
    if (cancelled) {
        printf("generation cancelled; the plan is unchanged\n");
    } else if (st != AGX_OK) {
        say_error(&err);
    } else if (agx_plan_validate(&gp.plan, &r->reg, &lim, &pr, &err) != AGX_OK) {
        print_problems(&pr, &err, "Delta's plan");
        printf("the plan is unchanged\n");
    } else {
        print_stats(r->delta, &gp, wall);
        if (!print_task_diff(&r->session.plan, &gp.plan)) {
            printf("Delta made no changes\n");
        } else {
            char *answer = NULL;
            line_status ls = read_line(r, "apply these changes? [y/N] ", &answer);
            if (ls == LINE_OK && answer && (answer[0] == 'y' || answer[0] == 'Y')) {
                if (agx_session_replace(&r->session, &gp.plan, &err) != AGX_OK)
                    say_error(&err);
                else
                    printf("applied; the plan has %zu task%s\n", r->session.plan.n_tasks,
                           r->session.plan.n_tasks == 1 ? "" : "s");
            } else {
                printf("not applied; the plan is unchanged\n");
            }
            free(answer);
        }
    }
    agx_plan_problems_free(&pr);
    agx_generated_plan_free(&gp);
}

static void cmd_save(repl *r, const char *rest) {
    char *file = unquote_all(rest);
    agx_error err;
    agx_error_clear(&err);
    const char *dest = file && *file ? file : r->cfg.plan_path;
    if (agx_buffer_save(dest, &r->session.plan, &err) != AGX_OK)
        say_error(&err);
    else
        printf("saved %zu task%s to '%s'\n", r->session.plan.n_tasks,
               r->session.plan.n_tasks == 1 ? "" : "s", dest);
    free(file);
}

static void cmd_set(repl *r, const char *rest) {
    char **w = NULL;
    size_t nw = 0;
    agx_error err;
    agx_error_clear(&err);
    if (agx_session_split_words(rest, &w, &nw, &err) != AGX_OK) {
        say_error(&err);
        return;
    }
    agx_status st;
    if (nw == 0) {
        printf("editor %s, stream %s\n", editor_name(r), r->session.stream ? "on" : "off");
        agx_session_free_words(w, nw);
        return;
    }
    if (nw == 1 && (!strcmp(w[0], "vi") || !strcmp(w[0], "emacs")))
        st = agx_session_set(&r->session, "editor", w[0], &err);
    else if (nw == 2)
        st = agx_session_set(&r->session, w[0], w[1], &err);
    else
        st = agx_error_set(&err, AGX_ERR_USAGE,
                           "usage: set vi | set emacs | set editor vi|emacs | set stream on|off");
    if (st != AGX_OK) {
        say_error(&err);
    } else {
        if (!strcmp(w[0], "vi") || !strcmp(w[0], "emacs") || !strcmp(w[0], "editor"))
            r->editor_env = -1; /* an explicit choice replaces the launch's override */
        apply_editor(r);
        printf("editor %s, stream %s\n", editor_name(r), r->session.stream ? "on" : "off");
    }
    agx_session_free_words(w, nw);
}

static const char help_text[] =
    "Commands (full word or first letter):\n"
    "  add \"<instruction>\"   a  plan the instruction with the Echo model and append the steps\n"
    "  preview [json]        p  show the plan (a table, or canonical JSON)\n"
    "  edit <n> [cmd args]   e  change task n (without cmd: edit its current line)\n"
    "  remove <n>            r  remove task n (later tasks renumbered)\n"
    "  clear                 c  empty the plan\n"
    "  validate              v  check the plan; with a model, Delta reviews it and shows\n"
    "                           what it would change before asking to apply\n"
    "  save [FILE]           s  write the plan to the plan buffer (AGX_PLAN_PATH) or FILE\n"
    "  set vi|emacs             line-editing keys (also AGX_REPL_EDITOR=vi)\n"
    "  set stream on|off        show the model's output while it generates\n"
    "  help                  h  this text\n"
    "  quit                  q  leave (Ctrl-D too); the session is kept for next time\n"
    "Ctrl-C cancels a generation or the current line. The session is saved in\n"
    "$AGX_HOME/repl-state.json (~/.agx) after every change; history in ~/.agx/history.\n";

static void cmd_help(repl *r, const char *rest) {
    (void)r;
    (void)rest;
    fputs(help_text, stdout);
}

typedef struct {
    const char *name;
    const char *letter; /* NULL: full word only */
    void (*run)(repl *r, const char *rest);
} repl_command;

static const repl_command commands[] = {
    {"add", "a", cmd_add},           {"preview", "p", cmd_preview}, {"edit", "e", cmd_edit},
    {"remove", "r", cmd_remove},     {"clear", "c", cmd_clear},     {"validate", "v", cmd_validate},
    {"save", "s", cmd_save},         {"set", NULL, cmd_set},        {"help", "h", cmd_help},
    {"?", NULL, cmd_help},
};

/* Returns false when the line asks to quit. */
static bool dispatch(repl *r, const char *line) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return true;
    const char *end = p;
    while (*end && *end != ' ' && *end != '\t') end++;
    size_t len = (size_t)(end - p);
    if ((len == 4 && !strncmp(p, "quit", 4)) || (len == 1 && *p == 'q') ||
        (len == 4 && !strncmp(p, "exit", 4)))
        return false;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const repl_command *c = &commands[i];
        if ((strlen(c->name) == len && !strncmp(p, c->name, len)) ||
            (c->letter && len == 1 && *p == c->letter[0])) {
            c->run(r, end);
            fflush(stdout);
            return true;
        }
    }
    fprintf(stderr, "unknown command '%.*s' (type help for the list)\n", (int)(len > 64 ? 64 : len),
            p);
    return true;
}

/* ---------------------------------------------------------------- main -- */

static void repl_save_state(repl *r) {
    agx_error err;
    agx_error_clear(&err);
    if (agx_session_save(&r->session, &err) != AGX_OK) say_error(&err);
}

int agx_cmd_repl(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("Usage: agx repl   (or agx alone on a terminal)\n\n%s", help_text);
            return AGX_EXIT_OK;
        }
        return agx_cli_usage("'agx repl' takes no arguments, not '%s'", argv[i]);
    }
    setlocale(LC_CTYPE, "");
    repl r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    int rc = agx_cli_config(&r.cfg);
    if (rc != AGX_EXIT_OK) {
        pthread_mutex_destroy(&r.mu);
        return rc;
    }
    agx_error err;
    agx_error_clear(&err);
    agx_env_long("AGX_REPL_TEST_DELAY_MS", 0, &r.test_delay_ms, &err);
    agx_error_clear(&err);
    r.tty_in = isatty(STDIN_FILENO);
    r.tty_err = isatty(STDERR_FILENO);
    char *state_path = agx_session_default_path();
    char *moved = NULL, *why = NULL;
    if (agx_registry_load_default(&r.reg, &err) != AGX_OK ||
        agx_session_load(&r.session, state_path, &moved, &why, &err) != AGX_OK) {
        rc = agx_cli_fail(&err);
        free(state_path);
        agx_registry_free(&r.reg);
        agx_planner_config_free(&r.cfg);
        pthread_mutex_destroy(&r.mu);
        return rc;
    }
    free(state_path);
    if (moved) {
        fprintf(stderr,
                "agx: the saved REPL state was corrupt (%s); it was moved to '%s' for inspection "
                "and this session starts empty\n",
                why ? why : "unreadable", moved);
        free(moved);
        free(why);
    }
    const char *ed = agx_env("AGX_REPL_EDITOR");
    r.editor_env = -1;
    if (ed && (!strcmp(ed, "vi") || !strcmp(ed, "emacs")))
        r.editor_env = !strcmp(ed, "vi") ? AGX_EDITOR_VI : AGX_EDITOR_EMACS;
    else if (ed)
        fprintf(stderr, "agx: AGX_REPL_EDITOR is vi or emacs, not '%.32s'; using %s\n", ed,
                editor_name(&r));

    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns so Ctrl-C is seen at once */
    sigaction(SIGINT, &sa, &old_sa);

    if ((rc = agx_cli_backend(&r.cfg, AGX_ROLE_ECHO, &r.echo)) != AGX_EXIT_OK) goto out;
    if (r.tty_in) editor_open(&r);
    /* chatter on stderr: stdout carries only results (scripts pipe it) */
    const char *model_name = agx_backend_model_name(r.echo);
    fprintf(stderr, "agx %s interactive planning (backend %s, model %s); type help for commands\n",
            AGX_VERSION, agx_backend_type(r.echo), model_name ? model_name : "-");
    if (r.session.plan.n_tasks)
        fprintf(stderr, "resumed a plan of %zu task%s (preview to show it, clear to start over)\n",
               r.session.plan.n_tasks, r.session.plan.n_tasks == 1 ? "" : "s");
    fflush(stdout);
    if (warm_up(&r, r.echo, &err) != AGX_OK) say_error(&err); /* add reports it again */
    repl_interrupted = 0;
    for (;;) {
        char *line = NULL;
        line_status ls = read_line(&r, NULL, &line);
        if (ls == LINE_EOF) {
            if (r.tty_in) putchar('\n');
            break;
        }
        if (ls == LINE_INTERRUPTED) continue;
        history_add(&r, line);
        bool go_on = dispatch(&r, line);
        free(line);
        if (!go_on) break;
    }
    repl_save_state(&r);
    rc = AGX_EXIT_OK;
out:
    sigaction(SIGINT, &old_sa, NULL);
    editor_close(&r);
    agx_backend_destroy(r.echo);
    agx_backend_destroy(r.delta);
    agx_session_free(&r.session);
    agx_registry_free(&r.reg);
    agx_planner_config_free(&r.cfg);
    pthread_mutex_destroy(&r.mu);
    fflush(stdout);
    return rc;
}
