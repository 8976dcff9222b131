/* test_repl.c — drives `agx` (no arguments) through a pseudo-terminal: every
 * command and its one-letter shortcut, line editing (emacs and vi keys),
 * history and state across two launches, Ctrl-C on a line and during a
 * generation (rules backend slowed by AGX_REPL_TEST_DELAY_MS, and the native
 * backend on the tiny reference model), a corrupt state file, Ctrl-D, and the
 * plain (non-terminal) mode. Output is polled with deadlines, never slept on. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agx/agx.h"
#include "agx/buffer.h"
#include "agx/native.h"
#include "agx_test.h"

#define WAIT_MS 30000 /* generous: sanitizer builds on a loaded machine; success returns at once */

typedef struct {
    pid_t pid;
    int fd;
    agx_strbuf out;
    size_t mark; /* expectations search after this offset */
} term;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts agx with no arguments on a new pseudo-terminal. env: NULL-terminated
 * "NAME=value" list added to the environment. */
static void term_start(term *t, const char *home, const char *const *env) {
    memset(t, 0, sizeof *t);
    agx_strbuf_init(&t->out);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    char *sname = ptsname(m);
    assert_non_null(sname);
    char slave[256];
    snprintf(slave, sizeof slave, "%s", sname);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0) _exit(127);
        ioctl(s, TIOCSCTTY, 0);
        struct winsize ws = {.ws_row = 40, .ws_col = 250};
        ioctl(s, TIOCSWINSZ, &ws);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        if (s > 2) close(s);
        close(m);
        setenv("AGX_HOME", home, 1);
        char *plan = agx_sprintf("%s/plan.json", home);
        setenv("AGX_PLAN_PATH", plan, 1);
        setenv("AGX_BACKEND", "rules", 1);
        setenv("TERM", "xterm", 1);
        setenv("AGX_LOG", "error", 1);
        unsetenv("AGX_REPL_EDITOR");
        unsetenv("AGX_REPL_TEST_DELAY_MS");
        for (size_t i = 0; env && env[i]; i++) putenv((char *)env[i]);
        execl(agx_test_cli_path(), "agx", (char *)NULL);
        _exit(127);
    }
    t->pid = pid;
    t->fd = m;
}

/* Reads what is available within ms milliseconds. */
static void term_pump(term *t, int ms) {
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return;
    char buf[4096];
    ssize_t n = read(t->fd, buf, sizeof buf);
    if (n > 0) agx_strbuf_append(&t->out, buf, (size_t)n);
}

/* Waits until needle appears after the mark; moves the mark past it. */
static bool term_expect(term *t, const char *needle, int timeout_ms) {
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        if (t->out.data && t->out.len > t->mark) {
            char *hit = memmem(t->out.data + t->mark, t->out.len - t->mark, needle, strlen(needle));
            if (hit) {
                t->mark = (size_t)(hit - t->out.data) + strlen(needle);
                return true;
            }
        }
        int64_t left = end - now_ms();
        if (left <= 0) break;
        term_pump(t, left > 50 ? 50 : (int)left);
    }
    fprintf(stderr, "expected '%s' after offset %zu; output so far:\n%s\n", needle, t->mark,
            t->out.data ? t->out.data : "");
    return false;
}

#define EXPECT(t, s) assert_true(term_expect((t), (s), WAIT_MS))

/* The output after the mark up to the next prompt (a copy), then the mark is past it. */
static char *term_until_prompt_ms(term *t, int timeout_ms) {
    size_t from = t->mark;
    assert_true(term_expect(t, "]> ", timeout_ms));
    return agx_strndup(t->out.data + from, t->mark - from);
}

/* Writes s at once (Ctrl-C during a generation: the terminal is then in its
 * normal mode and the line discipline turns it into SIGINT). */
static void term_send_now(term *t, const char *s) {
    size_t n = strlen(s);
    assert_int_equal(write(t->fd, s, n), (ssize_t)n);
}

/* Writes s once the line editor reads keys (raw mode). libedit prints its
 * prompt before it switches the terminal to raw mode; keys typed before that
 * go through the canonical line discipline, which turns a Ctrl-D into a NUL
 * byte, so a test typing at machine speed waits for the switch like a person
 * would. */
static void term_send(term *t, const char *s) {
    int64_t end = now_ms() + WAIT_MS;
    struct termios tio;
    while (tcgetattr(t->fd, &tio) == 0 && (tio.c_lflag & ICANON) && now_ms() < end)
        term_pump(t, 5);
    term_send_now(t, s);
}

static char *term_until_prompt(term *t) { return term_until_prompt_ms(t, WAIT_MS); }

/* Sends a command line and waits for the next prompt; returns its output. */
static char *term_cmd(term *t, const char *line) {
    term_send(t, line);
    term_send(t, "\r");
    return term_until_prompt(t);
}

static int term_wait(term *t) {
    int64_t end = now_ms() + WAIT_MS;
    int status = -1;
    while (now_ms() < end) {
        term_pump(t, 20);
        pid_t r = waitpid(t->pid, &status, WNOHANG);
        if (r == t->pid) {
            t->pid = 0;
            break;
        }
    }
    if (t->pid) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
        t->pid = 0;
        fail_msg("agx did not exit; output:\n%s", t->out.data ? t->out.data : "");
    }
    close(t->fd);
    agx_strbuf_free(&t->out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool contains(const char *hay, const char *needle) { return hay && strstr(hay, needle); }

static char *read_text(const char *path) {
    agx_error err;
    char *text = NULL;
    size_t len = 0;
    return agx_file_read_all(path, 0, &text, &len, &err) == AGX_OK ? text : NULL;
}

/* ------------------------------------------------------------ tests -- */

static void test_every_command(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    term t;
    term_start(&t, home, NULL);
    EXPECT(&t, "type help for commands");
    EXPECT(&t, "agx[0]> ");

    char *o = term_cmd(&t, "add \"show the first 10 lines\"");
    assert_true(contains(o, "head") && contains(o, "-n 10"));
    assert_true(contains(o, "added 1 task; the plan has 1"));
    assert_true(contains(o, "latency ")); /* timing after every generation */
    free(o);
    o = term_cmd(&t, "a count lines");
    assert_true(contains(o, "wc") && contains(o, "the plan has 2"));
    free(o);
    o = term_cmd(&t, "preview");
    assert_true(contains(o, "head") && contains(o, "wc"));
    free(o);
    o = term_cmd(&t, "p json");
    assert_true(contains(o, "\"command\": \"wc\""));
    free(o);

    o = term_cmd(&t, "edit 2 grep -n TODO");
    assert_true(contains(o, "task 2 updated") && contains(o, "grep"));
    free(o);
    o = term_cmd(&t, "e 1 gerp x");
    assert_true(contains(o, "unknown command 'gerp'") && contains(o, "task 1 is unchanged"));
    free(o);
    o = term_cmd(&t, "e 1 find . -delete");
    assert_true(contains(o, "task 1 is unchanged"));
    free(o);
    o = term_cmd(&t, "e 9 ls");
    assert_true(contains(o, "there is no task 9"));
    free(o);
    /* edit without a line: the current one is offered for editing (emacs keys) */
    term_send(&t, "e 1\r");
    EXPECT(&t, "task 1> ");
    EXPECT(&t, "head -n 10");
    o = term_cmd(&t, "\x01\x0btail -n 3"); /* Ctrl-A, Ctrl-K, new text */
    assert_true(contains(o, "task 1 updated") && contains(o, "tail"));
    free(o);

    o = term_cmd(&t, "validate");
    assert_true(contains(o, "plan is valid (2 tasks)"));
    free(o);
    o = term_cmd(&t, "v");
    assert_true(contains(o, "plan is valid (2 tasks)"));
    free(o);

    o = term_cmd(&t, "save");
    assert_true(contains(o, "saved 2 tasks"));
    free(o);
    char *buf = agx_sprintf("%s/plan.json", home);
    agx_plan plan;
    agx_error err;
    assert_int_equal(agx_buffer_load(buf, &plan, &err), AGX_OK);
    assert_int_equal(plan.n_tasks, 2);
    assert_string_equal(plan.tasks[0].command, "tail");
    assert_string_equal(plan.tasks[1].command, "grep");
    agx_plan_free(&plan);
    char *other = agx_sprintf("%s/out dir/other.json", home);
    char *line = agx_sprintf("s '%s'", other);
    o = term_cmd(&t, line);
    assert_true(contains(o, "saved 2 tasks"));
    free(o);
    assert_int_equal(agx_buffer_load(other, &plan, &err), AGX_OK);
    assert_int_equal(plan.n_tasks, 2);
    agx_plan_free(&plan);

    o = term_cmd(&t, "remove 1");
    assert_true(contains(o, "removed task 1; the plan has 1"));
    free(o);
    o = term_cmd(&t, "r 5");
    assert_true(contains(o, "there is no task 5"));
    free(o);
    o = term_cmd(&t, "r x");
    assert_true(contains(o, "usage: remove"));
    free(o);
    o = term_cmd(&t, "clear");
    assert_true(contains(o, "the plan is empty"));
    free(o);
    o = term_cmd(&t, "a count lines");
    assert_true(contains(o, "the plan has 1"));
    free(o);
    o = term_cmd(&t, "c");
    assert_true(contains(o, "the plan is empty"));
    free(o);
    o = term_cmd(&t, "p");
    assert_true(contains(o, "the plan is empty"));
    free(o);
    o = term_cmd(&t, "v");
    assert_true(contains(o, "nothing for Delta to check"));
    free(o);

    o = term_cmd(&t, "help");
    assert_true(contains(o, "Commands") && contains(o, "validate"));
    free(o);
    o = term_cmd(&t, "h");
    assert_true(contains(o, "Commands"));
    free(o);
    o = term_cmd(&t, "a");
    assert_true(contains(o, "usage: add"));
    free(o);
    o = term_cmd(&t, "frobnicate");
    assert_true(contains(o, "unknown command 'frobnicate'"));
    free(o);
    o = term_cmd(&t, "set stream off");
    assert_true(contains(o, "stream off"));
    free(o);
    o = term_cmd(&t, "set nano");
    assert_true(contains(o, "error:"));
    free(o);

    term_send(&t, "quit\r");
    assert_int_equal(term_wait(&t), 0);
    free(buf);
    free(other);
    free(line);
    agx_test_rmtree(home);
    free(home);
}

static void test_persistence_and_history(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    term t;
    term_start(&t, home, NULL);
    EXPECT(&t, "agx[0]> ");
    free(term_cmd(&t, "a show the first 10 lines"));
    free(term_cmd(&t, "a count lines"));
    free(term_cmd(&t, "set vi"));
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);

    char *state_path = agx_sprintf("%s/repl-state.json", home);
    char *text = read_text(state_path);
    assert_true(contains(text, "\"editor\": \"vi\"") && contains(text, "count lines"));
    free(text);
    char *hist = agx_sprintf("%s/history", home);
    text = read_text(hist);
    assert_true(contains(text, "count")); /* libedit encodes blanks as \040 */
    free(text);

    /* second launch: the plan, the settings and the history are back */
    term_start(&t, home, NULL);
    EXPECT(&t, "resumed a plan of 2 tasks");
    EXPECT(&t, "agx[2]> ");
    char *o = term_cmd(&t, "p");
    assert_true(contains(o, "head") && contains(o, "wc"));
    free(o);
    o = term_cmd(&t, "set");
    assert_true(contains(o, "editor vi"));
    free(o);
    free(term_cmd(&t, "set emacs"));
    /* history: Ctrl-P walks back over "set emacs", "set", "p", "q", "set vi", "a count lines" */
    o = term_cmd(&t, "\x10\x10\x10\x10\x10\x10");
    assert_true(contains(o, "the plan has 3"));
    free(o);
    term_send(&t, "\x04"); /* Ctrl-D on an empty line quits */
    assert_int_equal(term_wait(&t), 0);

    term_start(&t, home, NULL);
    EXPECT(&t, "resumed a plan of 3 tasks");
    EXPECT(&t, "agx[3]> ");
    term_send(&t, "\x04");
    assert_int_equal(term_wait(&t), 0);
    free(hist);
    free(state_path);
    agx_test_rmtree(home);
    free(home);
}

static void test_ctrl_c_line(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    term t;
    term_start(&t, home, NULL);
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "a count lines");
    EXPECT(&t, "count lines");
    term_send(&t, "\x03"); /* Ctrl-C drops the line, stays in the REPL */
    EXPECT(&t, "^C");
    EXPECT(&t, "agx[0]> ");
    char *o = term_cmd(&t, "p");
    assert_true(contains(o, "the plan is empty"));
    free(o);
    term_send(&t, "\x03");
    EXPECT(&t, "agx[0]> ");
    o = term_cmd(&t, "a count lines");
    assert_true(contains(o, "the plan has 1"));
    free(o);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    agx_test_rmtree(home);
    free(home);
}

static void test_ctrl_c_generation_slow_backend(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    const char *env[] = {"AGX_REPL_TEST_DELAY_MS=60000", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "a count lines\r");
    EXPECT(&t, "generating"); /* the spinner: the output is a terminal */
    int64_t t0 = now_ms();
    term_send_now(&t, "\x03");
    EXPECT(&t, "generation cancelled; the plan is unchanged");
    assert_true(now_ms() - t0 < 5000); /* not the 60 s the backend would take */
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    agx_test_rmtree(home);
    free(home);
}

/* A remote backend waiting on a server that accepts the connection and never
 * answers (the kernel's listen backlog does the accepting): Ctrl-C aborts the
 * HTTP request instead of waiting out the 300 s timeout. */
static void test_ctrl_c_generation_remote(void **state) {
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    char *home = agx_test_tmpdir();
    char *url = agx_sprintf("AGX_OPENAI_BASE_URL=http://127.0.0.1:%d", ntohs(a.sin_port));
    const char *env[] = {"AGX_BACKEND=openai", url, "AGX_OPENAI_MODEL=test-model",
                         "AGX_OPENAI_TIMEOUT_SECS=300", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "a count lines\r");
    EXPECT(&t, "generating");
    int64_t t0 = now_ms();
    term_send_now(&t, "\x03");
    EXPECT(&t, "generation cancelled; the plan is unchanged");
    assert_true(now_ms() - t0 < 10000); /* libcurl polls about once a second */
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    close(ls);
    free(url);
    agx_test_rmtree(home);
    free(home);
}

/* Serves one OpenAI chat completion on the listening socket ls (in a child). */
static pid_t serve_one_completion(int ls) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    alarm(60); /* never outlive a failed test */
    int c = accept(ls, NULL, NULL);
    if (c < 0) _exit(1);
    char buf[65536];
    size_t got = 0;
    long want = -1;
    for (;;) { /* headers, then Content-Length bytes of body */
        ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        char *cl = strcasestr(buf, "Content-Length:");
        want = cl ? atol(cl + 15) : 0;
        if ((long)(got - (size_t)(end + 4 - buf)) >= want) break;
    }
    static const char body[] =
        "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"test-model\",\"choices\":[{"
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"tasks\\\":[{"
        "\\\"task_number\\\":1,\\\"command\\\":\\\"wc\\\",\\\"args\\\":[\\\"-l\\\"]}]}\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,"
        "\"total_tokens\":120}}";
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      strlen(body));
    if (write(c, head, (size_t)hl) < 0 || write(c, body, strlen(body)) < 0) _exit(1);
    close(c);
    _exit(0);
}

static void test_remote_add(void **state) {
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 8), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    pid_t server = serve_one_completion(ls);
    assert_true(server > 0);
    char *home = agx_test_tmpdir();
    char *url = agx_sprintf("AGX_OPENAI_BASE_URL=http://127.0.0.1:%d", ntohs(a.sin_port));
    const char *env[] = {"AGX_BACKEND=openai", url, "AGX_OPENAI_MODEL=test-model",
                         "AGX_HTTP_RETRIES=0", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "backend openai");
    EXPECT(&t, "agx[0]> ");
    char *o = term_cmd(&t, "a count lines");
    assert_true(contains(o, "wc") && contains(o, "the plan has 1"));
    assert_true(contains(o, "20 tokens") && contains(o, "backend openai"));
    free(o);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    int status = 0;
    waitpid(server, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ls);
    free(url);
    agx_test_rmtree(home);
    free(home);
}

static void test_ctrl_c_generation_native(void **state) {
    (void)state;
    char *model = agx_test_ref_path("models/qwen2-tiny-Q4_K_M.gguf");
    if (!model || !agx_file_exists(model)) {
        free(model);
        AGX_TEST_SKIP("test_repl: models/qwen2-tiny-Q4_K_M.gguf not in the reference dir");
    }
    char *home = agx_test_tmpdir();
    char *m = agx_sprintf("AGX_ECHO_MODEL=%s", model);
    /* 400 tokens: long enough that Ctrl-C lands mid-stream, short enough for a
     * sanitizer build */
    const char *env[] = {"AGX_BACKEND=native", m, "AGX_CANDLE_SEED=7", "AGX_THREADS=1",
                         "AGX_CANDLE_MAX_TOKENS=400", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "loaded in");
    EXPECT(&t, "agx[0]> ");
    term_send(&t, "a show the first 10 lines\r");
    /* streamed model output past the forced opening (which is shown before the
     * prompt is evaluated): the prompt is in the cache and decoding is under way */
    EXPECT(&t, "\"args\":[");
    term_send_now(&t, "\x03");
    EXPECT(&t, "generation cancelled; the plan is unchanged");
    EXPECT(&t, "agx[0]> ");
    /* the warm model still works, and reuses the cached prompt prefix */
    term_send(&t, "a count the lines\r");
    char *o = term_until_prompt_ms(&t, 120000);
    assert_true(contains(o, "time to first token"));
    assert_true(contains(o, "tokens/s"));
    const char *reused = strstr(o, " reused from the cache");
    assert_non_null(reused);
    const char *num = reused;
    while (num > o && num[-1] != '(') num--;
    assert_true(atol(num) > 100); /* the system prompt and tool list */
    free(o);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    free(m);
    free(model);
    agx_test_rmtree(home);
    free(home);
}

/* validate with a model: Delta's changes are shown as a diff of tasks and
 * applied only after "y" */
static void test_validate_delta_native(void **state) {
    (void)state;
    char *model = agx_test_ref_path("models/qwen2-tiny-Q4_K_M.gguf");
    if (!model || !agx_file_exists(model)) {
        free(model);
        AGX_TEST_SKIP("test_repl: models/qwen2-tiny-Q4_K_M.gguf not in the reference dir");
    }
    char *home = agx_test_tmpdir();
    /* only an Echo model: Delta reviews with the same file */
    char *m = agx_sprintf("AGX_ECHO_MODEL=%s", model);
    /* a short draft: Delta's prompt (tool list + draft, in this model's 1k-token vocabulary)
     * must fit the model's 2048-token context */
    /* Delta's prompt (system text, the 35 tools and this draft) is ~1,900 tokens in this
     * model's 1k-token vocabulary, close to its 2048-token context: a longer tool list needs
     * a model with a larger context here (a shorter draft makes Delta change nothing) */
    const char *env[] = {"AGX_BACKEND=native", m, "AGX_CANDLE_SEED=3", "AGX_THREADS=1",
                         "AGX_CANDLE_MAX_TOKENS=120", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "agx[0]> ");
    free(term_cmd(&t, "set stream off"));
    char *o = term_cmd(&t, "a show the first 10 lines");
    assert_true(contains(o, "added"));
    free(o);
    char *before = agx_sprintf("%s/repl-state.json", home);
    char *state_before = read_text(before);
    term_send(&t, "v\r");
    EXPECT(&t, "Delta uses the Echo model file");
    EXPECT(&t, "Delta shares the Echo model loaded in memory"); /* one model, two contexts */
    EXPECT(&t, "apply these changes? [y/N] "); /* random weights: Delta rewrites the plan */
    o = term_cmd(&t, "n");
    assert_true(contains(o, "not applied"));
    free(o);
    char *state_after = read_text(before);
    assert_string_equal(state_before, state_after);
    free(state_after);
    term_send(&t, "validate\r");
    EXPECT(&t, "apply these changes? [y/N] ");
    o = term_cmd(&t, "y");
    assert_true(contains(o, "applied; the plan has"));
    free(o);
    state_after = read_text(before);
    assert_string_not_equal(state_before, state_after);
    free(state_after);
    free(state_before);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    free(before);
    free(m);
    free(model);
    agx_test_rmtree(home);
    free(home);
}

/* The cancel hook without a terminal: agx_plan_context.cancel reaches the
 * native loop, which stops before evaluating anything when it is already set,
 * and the engine stays usable. */
static void test_native_cancel_flag(void **state) {
    (void)state;
    char *model = agx_test_ref_path("models/qwen2-tiny-Q4_K_M.gguf");
    if (!model || !agx_file_exists(model)) {
        free(model);
        AGX_TEST_SKIP("test_repl: models/qwen2-tiny-Q4_K_M.gguf not in the reference dir");
    }
    agx_error err;
    agx_native_params p = {.n_ctx = 2048, .n_threads = 1};
    agx_native_engine *e = NULL;
    assert_int_equal(agx_native_engine_open(model, &p, &e, &err), AGX_OK);
    agx_registry reg;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    assert_null(ctx.cancel);
    volatile sig_atomic_t flag = 1;
    ctx.cancel = &flag;
    agx_gen_options o = agx_gen_default_options();
    o.sampler.seed = 5;
    o.max_tokens = 200; /* small budgets close the plan before the prompt is evaluated */
    agx_generated_plan gp;
    agx_gen_stats st;
    assert_int_equal(agx_native_plan(e, AGX_ROLE_ECHO, "count lines", &ctx, &o, &gp, &st, &err),
                     AGX_ERR_INFERENCE);
    assert_non_null(strstr(err.message, "cancelled"));
    assert_int_equal(st.generated_tokens, 0);
    flag = 0;
    assert_int_equal(agx_native_plan(e, AGX_ROLE_ECHO, "count lines", &ctx, &o, &gp, &st, &err),
                     AGX_OK);
    assert_true(gp.plan.n_tasks >= 1);
    assert_true(st.prompt_tokens > 0);
    agx_generated_plan_free(&gp);
    /* same prompt again: everything but the last token comes from the cache */
    assert_int_equal(agx_native_plan(e, AGX_ROLE_ECHO, "count lines", &ctx, &o, &gp, &st, &err),
                     AGX_OK);
    assert_int_equal(st.reused_tokens, st.prompt_tokens - 1);
    agx_generated_plan_free(&gp);
    agx_registry_free(&reg);
    agx_native_engine_free(e);
    free(model);
}

static void test_corrupt_state(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    char *state_path = agx_sprintf("%s/repl-state.json", home);
    FILE *f = fopen(state_path, "w");
    assert_non_null(f);
    fputs("{\"version\":1,\"plan\":{\"tasks\":[{\"task_n", f);
    fclose(f);
    term t;
    term_start(&t, home, NULL);
    EXPECT(&t, "was corrupt");
    EXPECT(&t, "repl-state.json.corrupt-");
    EXPECT(&t, "agx[0]> ");
    free(term_cmd(&t, "a count lines"));
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    /* the broken file is kept; the new state is valid */
    DIR *d = opendir(home);
    assert_non_null(d);
    struct dirent *e;
    int moved = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "repl-state.json.corrupt-", 24)) continue;
        char *p = agx_sprintf("%s/%s", home, e->d_name);
        char *text = read_text(p);
        assert_true(contains(text, "task_n"));
        free(text);
        free(p);
        moved++;
    }
    closedir(d);
    assert_int_equal(moved, 1);
    term_start(&t, home, NULL);
    EXPECT(&t, "resumed a plan of 1 task");
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    free(state_path);
    agx_test_rmtree(home);
    free(home);
}

static void test_vi_mode(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    const char *env[] = {"AGX_REPL_EDITOR=vi", NULL};
    term t;
    term_start(&t, home, env);
    EXPECT(&t, "agx[0]> ");
    /* insert "xp", Esc to command mode, 0 to the start, x deletes: the line is "p" */
    char *o = term_cmd(&t, "xp\x1b" "0x");
    assert_true(contains(o, "the plan is empty"));
    assert_false(contains(o, "unknown command"));
    free(o);
    o = term_cmd(&t, "set");
    assert_true(contains(o, "editor vi"));
    free(o);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);

    /* the variable is for one launch; `set vi` switches at once and persists */
    term_start(&t, home, NULL);
    EXPECT(&t, "agx[0]> ");
    o = term_cmd(&t, "set");
    assert_true(contains(o, "editor emacs"));
    free(o);
    free(term_cmd(&t, "set vi"));
    o = term_cmd(&t, "xp\x1b" "0x");
    assert_true(contains(o, "the plan is empty"));
    assert_false(contains(o, "unknown command"));
    free(o);
    term_send(&t, "q\r");
    assert_int_equal(term_wait(&t), 0);
    term_start(&t, home, NULL);
    EXPECT(&t, "agx[0]> ");
    o = term_cmd(&t, "set");
    assert_true(contains(o, "editor vi"));
    free(o);
    term_send(&t, "\x04");
    assert_int_equal(term_wait(&t), 0);
    agx_test_rmtree(home);
    free(home);
}

static void test_not_a_terminal(void **state) {
    (void)state;
    char *home = agx_test_tmpdir();
    char *cmd = agx_sprintf("AGX_HOME='%s' AGX_PLAN_PATH='%s/plan.json' AGX_BACKEND=rules "
                            "AGX_REPL_TEST_DELAY_MS=50 '%s' repl",
                            home, home, agx_test_cli_path());
    char *out = NULL, *errout = NULL;
    int rc = agx_test_run(cmd, "a count lines\np\nbogus\nq\n", &out, &errout);
    assert_int_equal(rc, 0);
    assert_true(contains(out, "the plan has 1"));
    assert_true(contains(errout, "unknown command 'bogus'"));
    /* no spinner and no terminal control sequences when the output is not a terminal */
    assert_false(contains(out, "generating") || contains(errout, "generating"));
    assert_false(contains(out, "\033[") || contains(errout, "\033["));
    free(out);
    free(errout);
    free(cmd);
    cmd = agx_sprintf("'%s' repl --bogus", agx_test_cli_path());
    assert_int_equal(agx_test_run(cmd, NULL, NULL, NULL), 2);
    free(cmd);
    agx_test_rmtree(home);
    free(home);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command),
        cmocka_unit_test(test_persistence_and_history),
        cmocka_unit_test(test_ctrl_c_line),
        cmocka_unit_test(test_ctrl_c_generation_slow_backend),
        cmocka_unit_test(test_ctrl_c_generation_remote),
        cmocka_unit_test(test_remote_add),
        cmocka_unit_test(test_ctrl_c_generation_native),
        cmocka_unit_test(test_validate_delta_native),
        cmocka_unit_test(test_native_cancel_flag),
        cmocka_unit_test(test_corrupt_state),
        cmocka_unit_test(test_vi_mode),
        cmocka_unit_test(test_not_a_terminal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
